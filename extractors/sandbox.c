/* sandbox: fork, isolate, limit, parse page by page, report back through a
 * bounded pipe; the parent reads, kills at the deadline and explains.
 *
 * Invariant: whatever the child does, the parent reads at most
 * SANDBOX_MAX_REPLY bytes, waits at most the wall-clock limit (plus the time
 * to reap a killed child), always reaps it, and builds a document only from a
 * reply that channel_parse accepted. */
#include "extractors/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "extractors/channel.h"
#include "extractors/pdftext.h"

#define SANDBOX_MAX_REPLY ((size_t)PDFTEXT_MAX_TEXT * 4 + ((size_t)64 << 20))
#define REPLY_FD 3

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#endif

/* ---- the child ---- */

/* Syscalls a PDF parser never needs; refused with EACCES. */
static const int denied[] = {
    SYS_socket,
    SYS_socketpair,
    SYS_execve,
    SYS_execveat,
    SYS_ptrace,
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    SYS_mount,
    SYS_umount2,
    SYS_pivot_root,
    SYS_chroot,
    SYS_unshare,
    SYS_setns,
    SYS_keyctl,
    SYS_add_key,
    SYS_request_key,
    SYS_bpf,
    SYS_perf_event_open,
    SYS_userfaultfd,
    SYS_kexec_load,
    SYS_init_module,
    SYS_finit_module,
    SYS_delete_module,
    SYS_reboot,
};

static void install_seccomp(void)
{
#ifdef SANDBOX_ARCH
	enum { N = G_N_ELEMENTS(denied) };
	struct sock_filter f[6 + 2 * N];
	size_t i = 0;
	f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0);
	f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	/* the x32 ABI shares the x86-64 arch value; its numbers have bit 30 set */
	f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 2 * N, 0);
	for (size_t k = 0; k < N; k++) {
		f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied[k], 0, 1);
		f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EACCES & SECCOMP_RET_DATA));
	}
	f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = {.len = (unsigned short)i, .filter = f};
	prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
#endif
}

/* An empty network namespace (where the kernel allows unprivileged user
 * namespaces; the seccomp filter refuses sockets either way). Creating one
 * costs milliseconds of kernel time, as much as parsing a page, so the parent
 * creates one pair of user and network namespaces once and every child joins
 * them: as the owner of the user namespace it may, and it then drops the
 * capabilities that joining gave it. */
static int ns_user_fd = -1, ns_net_fd = -1;

static gpointer make_namespaces(gpointer unused)
{
	int ready[2], hold[2];
	if (pipe2(ready, O_CLOEXEC) != 0)
		return NULL;
	if (pipe2(hold, O_CLOEXEC) != 0) {
		close(ready[0]);
		close(ready[1]);
		return NULL;
	}
	pid_t pid = fork();
	if (pid == 0) {
		char c = 0;
		close(ready[0]);
		close(hold[1]);
		if (unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0 && write(ready[1], &c, 1) == 1)
			while (read(hold[0], &c, 1) < 0 && errno == EINTR)
				;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	char c;
	if (pid > 0 && read(ready[0], &c, 1) == 1) {
		char path[64];
		g_snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
		ns_user_fd = open(path, O_RDONLY | O_CLOEXEC);
		g_snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
		ns_net_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	close(ready[0]);
	close(hold[1]);
	while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return NULL;
}

static void enter_empty_netns(void)
{
	bool joined = ns_user_fd >= 0 && ns_net_fd >= 0 && setns(ns_user_fd, CLONE_NEWUSER) == 0 &&
	              setns(ns_net_fd, CLONE_NEWNET) == 0;
	if (!joined && unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
		return;
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	syscall(SYS_capset, &h, d);
}

/* Keeps only stdin/stdout/stderr and the reply pipe (as REPLY_FD): the child
 * must not hold the worker's database connection or another job's pipe. */
static void keep_only_reply_fd(int fd)
{
	if (fd != REPLY_FD && dup2(fd, REPLY_FD) < 0)
		_exit(4);
	/* stdin and stdout belong to the caller (a command's output, a test's TAP
	 * stream): the child reads none of the first and writes none of the second */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0)
		_exit(4);
	syscall(SYS_close_range, REPLY_FD + 1, ~0u, 0);
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
	install_seccomp();
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

static void flush(struct channel_out *o)
{
	if (write_all(REPLY_FD, o->data, o->len) != 0)
		_exit(3);
	o->len = 0;
}

static void fault(enum sandbox_fault f)
{
	switch (f) {
	case SANDBOX_FAULT_CRASH:
		/* ends as a real crash would, whatever handler a sanitizer installed */
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
		break;
	case SANDBOX_FAULT_HANG:
		for (;;)
			pause();
	case SANDBOX_FAULT_SPIN:
		for (volatile unsigned long i = 0;; i++)
			;
	case SANDBOX_FAULT_MEMORY:
		for (;;)
			memset(g_malloc(1u << 20), 1, 1u << 20);
	case SANDBOX_FAULT_GARBAGE:
		write_all(REPLY_FD, "P\x07\0\0\0garbage", 12);
		_exit(0);
	default:
		break;
	}
}

/* Extracts every page, one frame each, as soon as it is done. */
static enum qerr child_pages(struct pdftext *p, const struct sandbox_limits *lim, struct channel_out *o, char **err)
{
	int total = pdftext_meta(p)->total_pages;
	for (int i = 0; i < total; i++) {
		if (lim->test_fault && lim->test_fault_page == i + 1)
			fault(lim->test_fault);
		struct pdftext_page page;
		struct pdftext_field *fields = NULL;
		uint32_t n_fields = 0;
		enum qerr e = pdftext_page_extract(p, i, &page, &fields, &n_fields, err);
		if (e)
			return e;
		channel_put_page(o, (uint32_t)i, &page);
		for (uint32_t f = 0; f < n_fields; f++) {
			channel_put_field(o, &fields[f]);
			pdftext_field_done(&fields[f]);
		}
		g_free(fields);
		pdftext_page_done(&page);
		flush(o);
	}
	return QERR_OK;
}

static G_NORETURN void child_main(int fd, const void *pdf, size_t len, const char *password,
                                  const struct sandbox_limits *lim)
{
	enter_empty_netns();
	keep_only_reply_fd(fd);
	apply_limits(lim);
	pdftext_capture_diagnostics();
	struct pdftext_options opt = {.password = password,
	                              .max_pages = lim->max_pages,
	                              .ocr = !lim->no_ocr,
	                              .ocr_lang = lim->ocr_lang,
	                              .ocr_dpi = lim->ocr_dpi};
	struct channel_out o = {0};
	struct pdftext *p = NULL;
	char *err = NULL;
	if (lim->test_fault && lim->test_fault_page <= 0)
		fault(lim->test_fault);
	enum qerr e = pdftext_open(pdf, len, &opt, &p, &err);
	if (!e) {
		channel_put_meta(&o, pdftext_meta(p));
		flush(&o);
		e = child_pages(p, lim, &o, &err);
	}
	if (!e) {
		struct pdftext_attachment *files = NULL;
		uint32_t n = 0;
		pdftext_attachments(p, &files, &n);
		for (uint32_t i = 0; i < n; i++) {
			channel_put_attachment(&o, &files[i]);
			pdftext_attachment_done(&files[i]);
		}
		g_free(files);
	}
	if (e) {
		channel_put_error(&o, e, err ? err : qerr_str(e));
	} else {
		uint32_t n = 0;
		const char *const *w = pdftext_warnings(p, &n);
		for (uint32_t i = 0; i < n; i++)
			channel_put_warning(&o, w[i]);
		channel_put_end(&o, (uint32_t)pdftext_meta(p)->total_pages);
	}
	flush(&o);
	_exit(0);
}

/* ---- the parent ---- */

static long ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

enum read_end { READ_EOF, READ_TIMEOUT, READ_TOO_BIG, READ_ERROR };

/* Reads the whole reply into out until EOF, the deadline or the size limit. */
static enum read_end read_reply(int fd, struct channel_out *out, const struct timespec *deadline)
{
	for (;;) {
		long left = ms_left(deadline);
		if (left <= 0)
			return READ_TIMEOUT;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR)
			return READ_ERROR;
		if (r <= 0)
			continue;
		if (out->cap - out->len < 65536) {
			out->cap = out->cap ? out->cap * 2 : 262144;
			out->data = g_realloc(out->data, out->cap);
		}
		ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return READ_ERROR;
		if (n == 0)
			return READ_EOF;
		out->len += (size_t)n;
		if (out->len > SANDBOX_MAX_REPLY)
			return READ_TOO_BIG;
	}
}

/* Where the child was: "while opening the document", "on page N" or after the last page. */
static char *where(const struct channel_progress *pr)
{
	if (!pr->opened)
		return g_strdup("while opening the document");
	if (pr->pages >= pr->total)
		return g_strdup("while reading its embedded files");
	return g_strdup_printf("on page %d", pr->pages + 1);
}

static enum qerr child_died(int status, const struct sandbox_limits *lim, const struct channel_progress *pr,
                            char **reterr)
{
	g_autofree char *at = where(pr);
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		if (sig == SIGXCPU)
			return qerr_set(reterr, QERR_TOO_LARGE,
			                "PDF exceeded its CPU time limit of %d s %s (limits.parse_timeout_s)",
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

/* Judges a finished child from how it ended and what it said. */
static enum qerr judge(enum read_end how, int status, double cpu_s, const struct channel_out *reply,
                       const struct sandbox_limits *lim, struct pdftext_doc **ret, char **reterr)
{
	struct channel_progress pr = {0};
	g_autofree char *perr = NULL;
	enum qerr e = channel_parse(reply->data, reply->len, lim->max_pages, ret, &pr, &perr);
	g_autofree char *at = where(&pr);
	/* Out of time while computing: the document asks too much. Out of time while
	 * hardly computing: the parser was blocked or starved of the processor,
	 * which says nothing about the document, so the error is one to retry. */
	if (how == READ_TIMEOUT && cpu_s < lim->timeout_s / 2.0)
		return qerr_set(reterr, QERR_TIMEOUT,
		                "the PDF parser made no progress within the %d s limit %s (%.1f s of processor time); "
		                "it can be tried again",
		                lim->timeout_s, at, cpu_s);
	if (how == READ_TIMEOUT)
		return qerr_set(reterr, QERR_TOO_LARGE, "PDF exceeded the %d s limit %s (limits.parse_timeout_s)",
		                lim->timeout_s, at);
	if (how == READ_TOO_BIG)
		return qerr_set(reterr, QERR_TOO_LARGE, "the PDF parser's reply exceeded %zu MiB",
		                SANDBOX_MAX_REPLY >> 20);
	bool clean_exit = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (e == QERR_OK && !clean_exit) {
		/* a complete reply followed by an odd exit: the reply stands */
		return QERR_OK;
	}
	if (!clean_exit && !pr.finished)
		return child_died(status, lim, &pr, reterr);
	if (e == QERR_PARSE_FAILED && !pr.finished)
		return qerr_set(reterr, e, "PDF parser ended without a complete reply %s", at);
	if (e)
		qerr_set(reterr, e, "%s", perr ? perr : qerr_str(e));
	return e;
}

enum qerr sandbox_extract(const void *pdf, size_t len, const char *password, const struct sandbox_limits *lim,
                          struct pdftext_doc **ret, char **reterr)
{
	static GOnce namespaces = G_ONCE_INIT;
	g_once(&namespaces, make_namespaces, NULL);
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
	struct channel_out reply = {0};
	enum read_end how = read_reply(fds[0], &reply, &deadline);
	if (how != READ_EOF)
		kill(pid, SIGKILL);
	close(fds[0]);
	int status = 0;
	struct rusage ru = {0};
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
		;
	double cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
	struct pdftext_doc *doc = NULL;
	enum qerr e = judge(how, status, cpu_s, &reply, lim, &doc, reterr);
	channel_out_done(&reply);
	if (e) {
		pdftext_doc_free(doc);
		return e;
	}
	*ret = doc;
	return QERR_OK;
}
