/* launcher: starts parser processes ahead of need and hands them to the worker.
 *
 * The launcher is forked by quire's main() before it loads a key or starts a
 * thread (sandbox_launch), or else started as `quire-parse launcher` with
 * posix_spawn, so it never held anything of the worker's. Parsers are
 * started from it with exec. It moves into an empty user and network namespace that all
 * parsers inherit, keeps a few parsers started and waiting (a pool per set of
 * options), and for each request hands one over: the worker gets the
 * parser's channel, its standard error and an event socket, and the launcher
 * starts a replacement. Each parser serves one document and exits.
 *
 * Invariants: every parser has PR_SET_PDEATHSIG(SIGKILL) towards the
 * launcher (a process of one thread); the launcher exits (killing every
 * parser) when its control socket closes or its parent process changes, so
 * nothing outlives the worker; a parser whose event socket closes is killed;
 * every parser is reaped, and its exit status and processor time go to the
 * worker that holds it. */
#include "extractors/sandbox_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PARSERS 128
#define MAX_POOL 16

struct parser {
	pid_t pid;
	bool ready;  /* started, not handed out */
	int ev;      /* the launcher's end of the event socket; -1 once closed */
	int give[3]; /* channel, stderr read end, worker's event end: until handed out */
	struct launch_key key;
};

static struct parser parsers[MAX_PARSERS];
static int n_parsers;
static const char *self_path;
static int dev_null = -1;

char **parser_argv(const char *self, const struct launch_key *k)
{
	char **v = g_new0(char *, 9);
	v[0] = g_strdup(self);
	v[1] = g_strdup("parse");
	v[2] = g_strdup_printf("%" G_GUINT64_FORMAT, k->memory_bytes);
	v[3] = g_strdup_printf("%d", k->cpu_s);
	v[4] = g_strdup(k->ocr ? (k->ocr_lang[0] ? k->ocr_lang : "eng") : "-");
	v[5] = g_strdup_printf("%d", k->ocr_dpi);
	v[6] = g_strdup(k->dumpable ? "dumpable" : "-");
	return v;
}

int fd_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void forget(int i)
{
	for (int k = 0; k < 3; k++)
		close_fd(&parsers[i].give[k]);
	close_fd(&parsers[i].ev);
	parsers[i] = parsers[--n_parsers];
}

/* The child of vfork: it shares the launcher's memory until execv, so it only
 * makes system calls (no allocation, no write to a variable). */
static G_NORETURN void exec_parser(int chan, int err_w, pid_t launcher, char **argv)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != launcher)
		_exit(1);
	if (dup2(dev_null, 0) < 0 || dup2(dev_null, 1) < 0 || dup2(err_w, 2) < 0 || dup2(chan, PARSER_FD) < 0)
		_exit(1);
	syscall(SYS_close_range, PARSER_FD + 1, ~0u, 0);
	sigset_t none;
	sigemptyset(&none);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(self_path, argv);
	_exit(127);
}

/* Starts a parser for k; its index, or -1 with errno set. */
static int spawn(const struct launch_key *k)
{
	if (n_parsers >= MAX_PARSERS) {
		errno = EAGAIN;
		return -1;
	}
	int chan[2] = {-1, -1}, err[2] = {-1, -1}, ev[2] = {-1, -1};
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ev) != 0)
		goto fail;
	pid_t me = getpid();
	char **argv = parser_argv(self_path, k);
	/* vfork: the launcher's page tables are not copied for a child that
	 * execs at once (a page-table copy is most of a fork's cost) */
	pid_t pid = vfork();
	if (pid == 0)
		exec_parser(chan[1], err[1], me, argv);
	g_strfreev(argv);
	if (pid < 0)
		goto fail;
	close(chan[1]);
	close(err[1]);
	struct parser *p = &parsers[n_parsers++];
	*p = (struct parser){.pid = pid, .ready = true, .ev = ev[0], .give = {chan[0], err[0], ev[1]}, .key = *k};
	return n_parsers - 1;
fail:;
	int saved = errno;
	for (int i = 0; i < 2; i++) {
		close_fd(&chan[i]);
		close_fd(&err[i]);
		close_fd(&ev[i]);
	}
	errno = saved;
	return -1;
}

static void reply(int ctl, int32_t err, int32_t pid, const int *fds)
{
	struct launch_rep rep = {.err = err, .pid = pid};
	struct iovec iov = {&rep, sizeof rep};
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fds) {
		memset(&u, 0, sizeof u);
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof u.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(3 * sizeof(int));
		memcpy(CMSG_DATA(c), fds, 3 * sizeof(int));
	}
	while (sendmsg(ctl, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* Keeps `want` parsers of key k ready; beyond MAX_POOL ready ones in all,
 * those of other keys go (a changed configuration leaves none behind). */
static void top_up(const struct launch_key *k, int want)
{
	int have = 0, total = 0;
	for (int i = 0; i < n_parsers; i++) {
		total += parsers[i].ready;
		have += parsers[i].ready && memcmp(&parsers[i].key, k, sizeof *k) == 0;
	}
	for (int i = n_parsers - 1; i >= 0 && total + (want - have) > MAX_POOL; i--) {
		if (!parsers[i].ready || memcmp(&parsers[i].key, k, sizeof *k) == 0)
			continue;
		kill(parsers[i].pid, SIGKILL);
		parsers[i].ready = false; /* reaped later */
		for (int f = 0; f < 3; f++)
			close_fd(&parsers[i].give[f]);
		close_fd(&parsers[i].ev);
		total--;
	}
	for (; have < want; have++)
		if (spawn(k) < 0)
			break;
}

static void serve(int ctl, const struct launch_req *req)
{
	int idx = -1;
	for (int i = 0; i < n_parsers && idx < 0; i++)
		if (parsers[i].ready && memcmp(&parsers[i].key, &req->key, sizeof req->key) == 0)
			idx = i;
	if (idx < 0)
		idx = spawn(&req->key);
	if (idx < 0) {
		reply(ctl, errno ? errno : EAGAIN, 0, NULL);
		return;
	}
	struct parser *p = &parsers[idx];
	reply(ctl, 0, p->pid, p->give);
	for (int f = 0; f < 3; f++)
		close_fd(&p->give[f]);
	p->ready = false;
	top_up(&req->key, req->pool < 0 ? 0 : req->pool > MAX_POOL ? MAX_POOL : req->pool);
}

static void reap(void)
{
	int status = 0;
	struct rusage ru;
	pid_t pid;
	while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
		for (int i = 0; i < n_parsers; i++) {
			if (parsers[i].pid != pid)
				continue;
			struct launch_exit ex = {.status = status,
			                         .cpu_us =
			                             (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
			                             ru.ru_utime.tv_usec + ru.ru_stime.tv_usec};
			if (!parsers[i].ready && parsers[i].ev >= 0)
				send(parsers[i].ev, &ex, sizeof ex, MSG_NOSIGNAL);
			forget(i);
			break;
		}
	}
}

/* A message (or hang-up) on a handed-out parser's event socket. */
static void event(int i)
{
	char op = 0;
	ssize_t n = recv(parsers[i].ev, &op, 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	kill(parsers[i].pid, SIGKILL); /* 'K', or the worker went away */
	if (n <= 0)
		close_fd(&parsers[i].ev);
}

static void kill_all(void)
{
	for (int i = 0; i < n_parsers; i++)
		kill(parsers[i].pid, SIGKILL);
}

/* One round of waiting; false when the launcher should end. */
static bool step(int ctl, int sig, pid_t parent)
{
	struct pollfd pfd[MAX_PARSERS + 2];
	int who[MAX_PARSERS + 2];
	int n = 0;
	pfd[n++] = (struct pollfd){.fd = ctl, .events = POLLIN};
	pfd[n++] = (struct pollfd){.fd = sig, .events = POLLIN};
	for (int i = 0; i < n_parsers; i++)
		if (!parsers[i].ready && parsers[i].ev >= 0) {
			who[n] = parsers[i].pid;
			pfd[n++] = (struct pollfd){.fd = parsers[i].ev, .events = POLLIN};
		}
	int r = poll(pfd, (nfds_t)n, 500);
	if (getppid() != parent)
		return false;
	if (r < 0)
		return errno == EINTR;
	if (pfd[1].revents) {
		struct signalfd_siginfo si;
		while (read(sig, &si, sizeof si) == sizeof si)
			;
		reap();
	}
	for (int k = 2; k < n; k++)
		if (pfd[k].revents)
			for (int i = 0; i < n_parsers; i++)
				if (parsers[i].pid == who[k] && parsers[i].ev >= 0)
					event(i);
	if (pfd[0].revents) {
		struct launch_req req;
		ssize_t got = recv(ctl, &req, sizeof req, MSG_DONTWAIT);
		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
			return false;
		if (got == (ssize_t)sizeof req && req.op == 'G') {
			serve(ctl, &req);
		} else if (got == (ssize_t)sizeof req && req.op == 'P') {
			top_up(&req.key, req.pool < 0 ? 0 : req.pool > MAX_POOL ? MAX_POOL : req.pool);
			reply(ctl, 0, 0, NULL);
		} else if (got > 0)
			reply(ctl, EINVAL, 0, NULL);
	}
	return true;
}

int launcher_run(const char *self, bool forked)
{
	self_path = self;
	pid_t parent = getppid();
	/* The parent-death signal follows the thread that started us, not the
	 * process: a launcher spawned by a worker's pool thread would die (and take
	 * every parser at work with it) when that thread ends. Only the launcher
	 * forked by main() may use it; otherwise the control socket's end of file
	 * and the parent check below tell that the worker is gone. */
	if (forked)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	syscall(SYS_close_range, PARSER_FD + 1, ~0u, 0);
	dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (dev_null >= 0 && (dup2(dev_null, STDIN_FILENO) < 0 || dup2(dev_null, STDOUT_FILENO) < 0))
		return 1;
	/* an empty network namespace for every parser, where the kernel lets an
	 * unprivileged process have one; the allow list refuses sockets either way */
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
		(void)0;
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sig = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (dev_null < 0 || sig < 0 || getppid() != parent)
		return 1;
	while (step(PARSER_FD, sig, parent))
		;
	kill_all();
	return 0;
}
