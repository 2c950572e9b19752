/* sandbox: the worker's side: the launcher, feeding a parser, reading its
 * reply and its standard error, and judging how it ended.
 *
 * Invariant: whatever the parser does, the worker reads at most max_reply
 * bytes of reply and SANDBOX_MAX_STDERR of standard error, waits at most the
 * wall-clock limit (plus the moment the launcher needs to reap a killed
 * parser), and builds a document only from a reply that channel_parse
 * accepted. The worker never forks: the launcher is started with posix_spawn
 * and the parsers by the launcher. */
#include "extractors/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/program.h"
#include "extractors/sandbox_proto.h"
#include "extractors/pdftext.h"

#define SANDBOX_MAX_REPLY ((size_t)PDFTEXT_MAX_TEXT * 4 + ((size_t)64 << 20))
#define SANDBOX_MAX_STDERR 8192
#define CHUNK 65536

#ifndef QUIRE_PARSER_PATH
#define QUIRE_PARSER_PATH "/usr/libexec/quire/quire-parse"
#endif

extern char **environ;

/* ---- the launcher ---- */

static GMutex launcher_lock;
static int launcher_fd = -1;
static pid_t launcher_pid;

static char *parser_path(void)
{
	const char *env = g_getenv("QUIRE_PARSER");
	if (env && env[0])
		return g_strdup(env);
	return program_path("quire-parse", QUIRE_PARSER_PATH);
}

/* Starts the launcher unless it runs; call with launcher_lock held. */
static enum qerr launcher_up(char **reterr)
{
	if (launcher_fd >= 0)
		return QERR_OK;
	g_autofree char *path = parser_path();
	if (!g_file_test(path, G_FILE_TEST_IS_EXECUTABLE))
		return qerr_set(reterr, QERR_DEPENDENCY,
		                "the PDF parser program %s is missing (install quire completely, or set QUIRE_PARSER)",
		                path);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return qerr_set(reterr, QERR_IO, "cannot create a socket for the PDF parser: %s", g_strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], PARSER_FD);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	char *argv[] = {path, (char *)"launcher", NULL};
	pid_t pid = 0;
	int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		return qerr_set(reterr, QERR_IO, "cannot start the PDF parser %s: %s", path, g_strerror(rc));
	}
	launcher_fd = sv[0];
	launcher_pid = pid;
	return QERR_OK;
}

enum qerr sandbox_launch(char **reterr)
{
	g_mutex_lock(&launcher_lock);
	g_autofree char *path = launcher_fd < 0 ? parser_path() : NULL;
	enum qerr e = QERR_OK;
	int sv[2] = {-1, -1};
	if (path && !g_file_test(path, G_FILE_TEST_IS_EXECUTABLE))
		e = qerr_set(reterr, QERR_DEPENDENCY,
		             "the PDF parser program %s is missing (install quire completely, or set QUIRE_PARSER)",
		             path);
	else if (path && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		e = qerr_set(reterr, QERR_IO, "cannot create a socket for the PDF parser: %s", g_strerror(errno));
	pid_t pid = path && !e ? fork() : 0;
	if (path && !e && pid == 0) {
		/* the launcher: a copy of a process that holds no key and runs one thread */
		if (dup2(sv[1], PARSER_FD) < 0)
			_exit(1);
		_exit(launcher_run(path, true));
	}
	if (sv[1] >= 0)
		close(sv[1]);
	if (path && !e && pid < 0) {
		close(sv[0]);
		e = qerr_set(reterr, QERR_IO, "cannot start the PDF parser's launcher: %s", g_strerror(errno));
	} else if (path && !e) {
		launcher_fd = sv[0];
		launcher_pid = pid;
	}
	g_mutex_unlock(&launcher_lock);
	return e;
}

/* After a failed exchange: the launcher is gone; reap it so that the next call starts one. */
static void launcher_lost(void)
{
	close(launcher_fd);
	launcher_fd = -1;
	kill(launcher_pid, SIGKILL);
	while (waitpid(launcher_pid, NULL, 0) < 0 && errno == EINTR)
		;
	launcher_pid = 0;
}

static bool exchange(const struct launch_req *req, struct launch_rep *rep, int fds[3])
{
	if (send(launcher_fd, req, sizeof *req, MSG_NOSIGNAL) != (ssize_t)sizeof *req)
		return false;
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {rep, sizeof *rep};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	ssize_t n;
	while ((n = recvmsg(launcher_fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof *rep)
		return false;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(3 * sizeof(int)))
		memcpy(fds, CMSG_DATA(c), 3 * sizeof(int));
	return true;
}

/* One request to the launcher, started or restarted as needed. */
static enum qerr ask(const struct launch_req *req, struct launch_rep *rep, int fds[3], char **reterr)
{
	g_mutex_lock(&launcher_lock);
	enum qerr e = QERR_OK;
	bool done = false;
	for (int attempt = 0; attempt < 2 && !done && !e; attempt++) {
		e = launcher_up(reterr);
		if (!e && !(done = exchange(req, rep, fds)))
			launcher_lost();
	}
	g_mutex_unlock(&launcher_lock);
	if (!e && !done)
		e = qerr_set(reterr, QERR_IO, "the PDF parser's launcher does not answer");
	if (!e && rep->err)
		e = qerr_set(reterr, QERR_BUSY, "cannot start a PDF parser: %s", g_strerror(rep->err));
	return e;
}

struct launch_key sandbox_key(size_t memory_bytes, int cpu_s, bool ocr, const char *lang, int dpi)
{
	struct launch_key k;
	memset(&k, 0, sizeof k);
	k.memory_bytes = memory_bytes;
	k.cpu_s = cpu_s;
	k.ocr = ocr;
	k.ocr_dpi = dpi;
	g_strlcpy(k.ocr_lang, ocr && lang && lang[0] ? lang : ocr ? "eng" : "", sizeof k.ocr_lang);
	return k;
}

static struct launch_key limits_key(const struct sandbox_limits *lim)
{
	struct launch_key k = sandbox_key(lim->memory_bytes, lim->timeout_s, !lim->no_ocr, lim->ocr_lang, lim->ocr_dpi);
	k.dumpable = lim->test_dumpable;
	return k;
}

static int pool_size = 1;

enum qerr sandbox_start(const struct sandbox_limits *lim, int pool, char **reterr)
{
	pool_size = pool < 0 ? 0 : pool;
	struct launch_req req = {.op = 'P', .pool = MAX(pool_size, 1), .key = limits_key(lim)};
	struct launch_rep rep = {0};
	int fds[3] = {-1, -1, -1};
	return ask(&req, &rep, fds, reterr);
}

int sandbox_launcher_pid(void)
{
	g_mutex_lock(&launcher_lock);
	int pid = launcher_fd >= 0 ? (int)launcher_pid : 0;
	g_mutex_unlock(&launcher_lock);
	return pid;
}

/* ---- one run ---- */

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct io {
	int chan, err, ev;
	GString *stderr_text;
	uint8_t *out; /* bytes of the request still to send */
	size_t out_len, out_pos;
	size_t src_left;
	bool eof;
};

static void drain_stderr(struct io *io)
{
	char buf[4096];
	ssize_t n = read(io->err, buf, sizeof buf);
	if (n <= 0) {
		close(io->err);
		io->err = -1;
		return;
	}
	size_t room = SANDBOX_MAX_STDERR - io->stderr_text->len;
	g_string_append_len(io->stderr_text, buf, (gssize)MIN((size_t)n, room));
}

/* Refills io->out from the source once it is sent. */
static enum qerr refill(struct parser_run *r, struct io *io, char **reterr)
{
	if (io->out_pos < io->out_len || io->src_left == 0)
		return QERR_OK;
	size_t got = 0;
	enum qerr e = r->src->read(r->src->ctx, io->out, MIN(io->src_left, (size_t)CHUNK), &got, reterr);
	if (!e && (got == 0 || got > io->src_left))
		e = qerr_set(reterr, QERR_IO, "the document's source ended early");
	if (e)
		return e;
	io->out_len = got;
	io->out_pos = 0;
	io->src_left -= got;
	return QERR_OK;
}

static bool read_reply(struct parser_run *r, struct io *io)
{
	struct channel_out *o = &r->reply;
	if (o->cap - o->len < CHUNK) {
		o->cap = o->cap ? o->cap * 2 : 262144;
		o->data = g_realloc(o->data, o->cap);
	}
	ssize_t n = read(io->chan, o->data + o->len, o->cap - o->len);
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0) {
		r->how = n == 0 ? RUN_EOF : RUN_ERROR;
		return false;
	}
	o->len += (size_t)n;
	if (o->len > r->max_reply) {
		r->how = RUN_TOO_BIG;
		return false;
	}
	return true;
}

/* Sends the request while reading what comes back; until the reply ends. */
static enum qerr pump(struct parser_run *r, struct io *io, double deadline, char **reterr)
{
	for (;;) {
		double left = deadline - now_s();
		if (left <= 0) {
			r->how = RUN_TIMEOUT;
			return QERR_OK;
		}
		enum qerr e = refill(r, io, reterr);
		if (e)
			return e;
		bool sending = io->out_pos < io->out_len;
		struct pollfd p[2] = {{.fd = io->chan, .events = (short)(POLLIN | (sending ? POLLOUT : 0))},
		                      {.fd = io->err, .events = POLLIN}};
		int rc = poll(p, io->err >= 0 ? 2 : 1, (int)MIN(left * 1000 + 1, 1000));
		if (rc < 0 && errno != EINTR)
			return qerr_set(reterr, QERR_IO, "poll: %s", g_strerror(errno));
		if (rc <= 0)
			continue;
		if (io->err >= 0 && p[1].revents)
			drain_stderr(io);
		if (sending && (p[0].revents & POLLOUT)) {
			ssize_t n = send(io->chan, io->out + io->out_pos, io->out_len - io->out_pos,
			                 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				io->out_pos += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				io->out_pos = io->out_len = io->src_left = 0; /* it died: its exit says why */
		}
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !read_reply(r, io))
			return QERR_OK;
	}
}

/* Whether process pid is runnable (state R) in any of a few looks at it over
 * 50 ms: a parser that computes or waits for a processor is; one that hung
 * in a lock or a sleep is not. */
static bool runnable(pid_t pid)
{
	char path[64];
	g_snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 10; i++) {
		g_autofree char *stat = NULL;
		if (!g_file_get_contents(path, &stat, NULL, NULL))
			return false;
		const char *paren = strrchr(stat, ')');
		if (paren && paren[1] == ' ' && paren[2] == 'R')
			return true;
		g_usleep(5000);
	}
	return false;
}

/* The launcher's report of the parser's end; kills it first unless it ended by itself. */
static void collect_exit(struct parser_run *r, struct io *io)
{
	if (r->how != RUN_EOF)
		send(io->ev, "K", 1, MSG_NOSIGNAL);
	/* after EOF the parser is exiting; the rest of its standard error comes first */
	while (io->err >= 0) {
		struct pollfd p = {.fd = io->err, .events = POLLIN};
		if (poll(&p, 1, 2000) <= 0) {
			send(io->ev, "K", 1, MSG_NOSIGNAL);
			break;
		}
		drain_stderr(io);
	}
	struct launch_exit ex = {.status = -1};
	ssize_t n;
	while ((n = recv(io->ev, &ex, sizeof ex, 0)) < 0 && errno == EINTR)
		;
	r->status = n == (ssize_t)sizeof ex ? ex.status : W_EXITCODE(0, SIGKILL);
	r->cpu_s = n == (ssize_t)sizeof ex ? (double)ex.cpu_us / 1e6 : 0;
}

enum qerr parser_run(struct parser_run *r, char **reterr)
{
	struct launch_req req = {.op = 'G', .pool = pool_size, .key = r->key};
	struct launch_rep rep = {0};
	int fds[3] = {-1, -1, -1};
	enum qerr e = ask(&req, &rep, fds, reterr);
	if (e)
		return e;
	if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) {
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return qerr_set(reterr, QERR_IO, "the PDF parser's launcher sent no channel");
	}
	size_t pw = r->password ? strlen(r->password) : 0;
	r->rq.magic = PARSE_MAGIC;
	r->rq.pdf_len = r->src->len;
	r->rq.password_len = (uint32_t)pw;
	struct io io = {.chan = fds[0],
	                .err = fds[1],
	                .ev = fds[2],
	                .stderr_text = g_string_new(NULL),
	                .out = g_malloc(MAX(CHUNK, sizeof r->rq + pw)),
	                .src_left = r->src->len};
	memcpy(io.out, &r->rq, sizeof r->rq);
	if (pw)
		memcpy(io.out + sizeof r->rq, r->password, pw);
	io.out_len = sizeof r->rq + pw;
	double start = now_s();
	e = pump(r, &io, start + r->wall_s, reterr);
	if (e)
		r->how = RUN_ERROR;
	if (r->how == RUN_TIMEOUT)
		r->was_running = runnable(rep.pid);
	close(io.chan);
	collect_exit(r, &io);
	r->wall_used_s = now_s() - start;
	if (io.err >= 0)
		close(io.err);
	close(io.ev);
	if (pw)
		memset(io.out, 0, MAX(CHUNK, sizeof r->rq + pw));
	g_free(io.out);
	r->stderr_text = g_string_free(io.stderr_text, FALSE);
	return e;
}

void parser_run_done(struct parser_run *r)
{
	channel_out_done(&r->reply);
	g_free(r->stderr_text);
	r->stderr_text = NULL;
}

/* ---- extraction ---- */

static enum qerr mem_read(void *ctx, void *buf, size_t cap, size_t *got, char **reterr)
{
	struct sandbox_memory *m = ctx;
	size_t n = MIN(cap, m->len - m->pos);
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	*got = n;
	return QERR_OK;
}

struct sandbox_source sandbox_source_memory(struct sandbox_memory *m, const void *p, size_t len)
{
	*m = (struct sandbox_memory){p, 0, len};
	return (struct sandbox_source){.len = len, .read = mem_read, .ctx = m};
}

enum qerr sandbox_extract(const void *pdf, size_t len, const char *password, const struct sandbox_limits *lim,
                          struct pdftext_doc **ret, char **reterr)
{
	struct sandbox_memory m;
	struct sandbox_source src = sandbox_source_memory(&m, pdf, len);
	return sandbox_extract_from(&src, password, lim, ret, reterr);
}

/* Where the parser was: "while opening the document", "on page N" or after the last page. */
static char *where(const struct channel_progress *pr)
{
	if (!pr->opened)
		return g_strdup("while opening the document");
	if (pr->pages >= pr->total)
		return g_strdup("while reading its embedded files");
	return g_strdup_printf("on page %d", pr->pages + 1);
}

static enum qerr parser_died(const struct parser_run *r, const struct sandbox_limits *lim, const char *at,
                             char **reterr)
{
	int status = r->status;
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		if (sig == SIGSYS)
			return qerr_set(
			    reterr, QERR_PARSE_FAILED,
			    "hostile PDF: it made the parser attempt a system call outside its allow list %s; "
			    "the parser was killed",
			    at);
		if (sig == SIGXCPU)
			return qerr_set(reterr, QERR_TOO_LARGE,
			                "PDF exceeded its processor time limit of %d s %s (limits.parse_timeout_s)",
			                lim->timeout_s, at);
		if (sig == SIGABRT || sig == SIGTRAP)
			return qerr_set(
			    reterr, QERR_PARSE_FAILED,
			    "PDF parser aborted %s, most likely out of memory (limit %zu MiB, limits.parse_memory_mb)",
			    at, lim->memory_bytes >> 20);
		return qerr_set(reterr, QERR_PARSE_FAILED, "PDF parser crashed %s (signal %d, %s)", at, sig,
		                strsignal(sig));
	}
	return qerr_set(reterr, QERR_PARSE_FAILED, "PDF parser failed %s (exit status %d)", at,
	                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* Out of wall-clock time: decided by the processor time the parser got. All
 * of its budget: the document asks too much, and another try would cost as
 * much again. Less, and it was blocked rather than runnable at the deadline:
 * it hung, which a parser reading from memory only
 * does on a document made to hang it. In between: the machine was too busy to
 * give it its time, which says nothing about the document. */
static enum qerr timed_out(const struct parser_run *r, const struct sandbox_limits *lim, const char *at, char **reterr)
{
	if (r->cpu_s >= lim->timeout_s * 0.9)
		return qerr_set(reterr, QERR_TOO_LARGE,
		                "PDF used its processor time limit of %d s %s (limits.parse_timeout_s)", lim->timeout_s,
		                at);
	if (!r->was_running)
		return qerr_set(reterr, QERR_PARSE_FAILED,
		                "the PDF parser hung %s: %.2f s of processor time in %.0f s; the document is refused",
		                at, r->cpu_s, r->wall_used_s);
	return qerr_set(
	    reterr, QERR_TIMEOUT,
	    "the PDF parser got only %.1f s of processor time in %.0f s %s (its limit is %d s); the machine "
	    "is busy, and the document can be tried again",
	    r->cpu_s, r->wall_used_s, at, lim->timeout_s);
}

/* Judges a finished parser from how it ended and what it said. */
static enum qerr judge(const struct parser_run *r, const struct sandbox_limits *lim, struct pdftext_doc **ret,
                       char **reterr)
{
	struct channel_progress pr = {0};
	g_autofree char *perr = NULL;
	enum qerr e = channel_parse(r->reply.data, r->reply.len, lim->max_pages, ret, &pr, &perr);
	g_autofree char *at = where(&pr);
	bool killed_by_us = r->how != RUN_EOF;
	if (WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGSYS)
		return parser_died(r, lim, at, reterr);
	if (r->how == RUN_TIMEOUT)
		return timed_out(r, lim, at, reterr);
	if (r->how == RUN_TOO_BIG)
		return qerr_set(reterr, QERR_TOO_LARGE, "the PDF parser's reply exceeded %zu MiB", r->max_reply >> 20);
	bool clean_exit = WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
	if (e == QERR_OK && !clean_exit && !killed_by_us)
		return QERR_OK; /* a complete reply followed by an odd exit: the reply stands */
	if (!clean_exit && !pr.finished)
		return parser_died(r, lim, at, reterr);
	if (e == QERR_PARSE_FAILED && !pr.finished)
		return qerr_set(reterr, e, "PDF parser ended without a complete reply %s", at);
	if (e)
		qerr_set(reterr, e, "%s", perr ? perr : qerr_str(e));
	return e;
}

/* The parser's standard error (Poppler's and Tesseract's complaints), line by line, for people debugging. */
static void log_stderr(const char *text)
{
	if (!text || !text[0])
		return;
	g_auto(GStrv) lines = g_strsplit(text, "\n", 64);
	for (int i = 0; lines[i]; i++)
		if (lines[i][0])
			log_debug("PDF parser: %s", lines[i]);
}

enum qerr sandbox_extract_from(const struct sandbox_source *src, const char *password, const struct sandbox_limits *lim,
                               struct pdftext_doc **ret, char **reterr)
{
	struct parser_run r = {.src = src,
	                       .password = password,
	                       .rq = {.mode = PARSE_EXTRACT,
	                              .max_pages = lim->max_pages,
	                              .test_fault = lim->test_fault,
	                              .test_fault_page = lim->test_fault_page},
	                       .key = limits_key(lim),
	                       .wall_s = lim->timeout_s * SANDBOX_WALL_FACTOR,
	                       .max_reply = SANDBOX_MAX_REPLY};
	enum qerr e = parser_run(&r, reterr);
	log_stderr(r.stderr_text);
	struct pdftext_doc *doc = NULL;
	if (!e)
		e = judge(&r, lim, &doc, reterr);
	parser_run_done(&r);
	if (e) {
		pdftext_doc_free(doc);
		return e;
	}
	*ret = doc;
	return QERR_OK;
}
