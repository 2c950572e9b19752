/* sandbox: fork, limit, parse, report back through a bounded pipe. */
#include "extractors/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <glib.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "extractors/pdftext.h"

#define SANDBOX_MAX_REPLY ((size_t)PDFTEXT_MAX_TEXT * 2 + (1u << 20))

/* Refuses socket creation so a compromised parser cannot reach the network. */
static void deny_network(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = (unsigned short)(sizeof filter / sizeof filter[0]), .filter = filter};
	prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static void apply_limits(const struct sandbox_limits *lim)
{
	struct rlimit as = {lim->memory_bytes, lim->memory_bytes};
#ifndef __SANITIZE_ADDRESS__
	/* AddressSanitizer reserves terabytes of shadow address space, so a sanitizer
	 * build cannot run under an address-space limit; release builds always do. */
	setrlimit(RLIMIT_AS, &as);
#else
	(void)as;
#endif
	struct rlimit cpu = {(rlim_t)lim->timeout_s, (rlim_t)lim->timeout_s + 1};
	struct rlimit zero = {0, 0};
	setrlimit(RLIMIT_CPU, &cpu);
	setrlimit(RLIMIT_FSIZE, &zero);
	setrlimit(RLIMIT_CORE, &zero);
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	deny_network();
}

static int write_all(int fd, const void *buf, size_t len)
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

static void child_main(int fd, const void *pdf, size_t len, const char *password, const struct sandbox_limits *lim)
{
	apply_limits(lim);
	struct pdftext_doc *doc = NULL;
	char *err = NULL;
	enum qerr e = pdftext_extract(pdf, len, password, lim->max_pages, &doc, &err);
	struct json *reply = e ? json_new_object() : pdftext_doc_to_json(doc);
	if (e) {
		json_add_number(reply, "error", e);
		json_add_string(reply, "message", err ? err : qerr_str(e));
	}
	char *text = json_format(reply, false);
	uint64_t n = text ? strlen(text) : 0;
	int rc = !text || write_all(fd, &n, sizeof n) || write_all(fd, text, n);
	_exit(rc ? 3 : 0);
}

static long ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Reads exactly len bytes before the deadline. 0 ok, -1 eof/error, -2 timeout. */
static int read_until(int fd, void *buf, size_t len, const struct timespec *deadline)
{
	uint8_t *p = buf;
	while (len > 0) {
		long left = ms_left(deadline);
		if (left <= 0)
			return -2;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR)
			return -1;
		if (r <= 0)
			continue;
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static enum qerr child_status(pid_t pid, bool killed_for_time, const struct sandbox_limits *lim, char **reterr)
{
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (killed_for_time)
		return qerr_set(reterr, QERR_TIMEOUT, "PDF parsing exceeded the %d s limit (limits.parse_timeout_s)",
		                lim->timeout_s);
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		if (sig == SIGXCPU)
			return qerr_set(reterr, QERR_PARSE_FAILED, "PDF parsing exceeded its CPU time limit of %d s",
			                lim->timeout_s);
		return qerr_set(reterr, QERR_PARSE_FAILED, "the PDF parser crashed (signal %d, %s) on this document", sig,
		                strsignal(sig));
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return qerr_set(reterr, QERR_PARSE_FAILED,
		                "the PDF parser failed (exit status %d), possibly out of memory (limit %zu MiB)",
		                WIFEXITED(status) ? WEXITSTATUS(status) : -1, lim->memory_bytes >> 20);
	return QERR_OK;
}

static enum qerr decode_reply(const char *text, size_t len, struct pdftext_doc **ret, char **reterr)
{
	struct json *j = NULL;
	if (json_parse(text, len, &j, NULL) != QERR_OK)
		return qerr_set(reterr, QERR_INTERNAL, "the parser process sent an unreadable reply");
	double code = 0;
	enum qerr e;
	if (json_get_number(j, "error", &code)) {
		const char *msg = json_get_string(j, "message");
		e = (code > 0 && code < QERR_COUNT) ? (enum qerr)code : QERR_PARSE_FAILED;
		qerr_set(reterr, e, "%s", msg ? msg : qerr_str(e));
	} else {
		e = pdftext_doc_from_json(j, ret, reterr);
	}
	json_free(j);
	return e;
}

enum qerr sandbox_extract(const void *pdf, size_t len, const char *password, const struct sandbox_limits *lim,
                          struct pdftext_doc **ret, char **reterr)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return qerr_set(reterr, QERR_IO, "cannot create a pipe: %s", g_strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return qerr_set(reterr, QERR_BUSY, "cannot start the parser process: %s", g_strerror(errno));
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(fds[1], pdf, len, password, lim);
	}
	close(fds[1]);
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += lim->timeout_s;
	uint64_t n = 0;
	char *text = NULL;
	int r = read_until(fds[0], &n, sizeof n, &deadline);
	if (r == 0 && n > SANDBOX_MAX_REPLY)
		r = -1;
	if (r == 0) {
		text = g_malloc(n + 1);
		r = read_until(fds[0], text, n, &deadline);
	}
	close(fds[0]);
	if (r == -2)
		kill(pid, SIGKILL);
	enum qerr e = child_status(pid, r == -2, lim, reterr);
	if (!e && r != 0)
		e = qerr_set(reterr, QERR_PARSE_FAILED, "the parser process ended without a complete reply");
	if (!e)
		e = decode_reply(text, n, ret, reterr);
	g_free(text);
	return e;
}
