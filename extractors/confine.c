/* confine: what the parser process may still do once it holds a document.
 *
 * Applied by the parser itself after exec and after its libraries are loaded,
 * before it reads a byte of the document: resource limits, no capabilities,
 * no new privileges, a Landlock ruleset that leaves only the read-only data
 * folders Poppler, fontconfig and Tesseract read lazily (fonts, CMaps, OCR
 * language data), and a seccomp-bpf allow list. A parser that may OCR also
 * keeps the system's library folders readable, and may map their files as
 * code, so that Tesseract loads only when a page needs it; memory it can write
 * is never made executable. A system call outside the list
 * kills the process (SIGSYS), which the worker reports as a hostile document.
 * A few calls that libraries make harmlessly are refused with an error
 * instead: ioctl (terminal probes), getpeername and getsockname (GLib's
 * question whether standard error is the journal), clone3, opening a file
 * for writing, and every open at all where the kernel has no Landlock. */
#include "extractors/sandbox_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define CONFINE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define CONFINE_ARCH AUDIT_ARCH_AARCH64
#endif

/* Read-only data the parser may open after confinement (where present). */
static const char *const data_dirs[] = {
    "/usr/share/fonts",      "/usr/local/share/fonts", "/etc/fonts",
    "/var/cache/fontconfig", "/usr/share/poppler",     "/usr/share/tesseract-ocr",
    "/usr/share/tessdata",   "/usr/share/fontconfig",  "/usr/share/X11/fonts",
};

/* The system's shared libraries and the dynamic loader's cache, for a parser
 * that loads Tesseract when a page needs OCR: installed, root-owned files only. */
static const char *const code_dirs[] = {"/usr/lib", "/lib", "/usr/lib64", "/lib64", "/usr/local/lib"};
static const char *const code_files[] = {"/etc/ld.so.cache"};

static void limit(int what, rlim_t soft, rlim_t hard)
{
	struct rlimit r = {soft, hard};
	setrlimit(what, &r);
}

void confine_limits(size_t memory_bytes, int cpu_s)
{
#ifndef __SANITIZE_ADDRESS__
	/* AddressSanitizer reserves terabytes of shadow address space, so a sanitizer
	 * build cannot run under an address-space limit; release builds always do. */
	limit(RLIMIT_AS, memory_bytes, memory_bytes);
#endif
	limit(RLIMIT_CPU, (rlim_t)cpu_s, (rlim_t)cpu_s + 1);
	limit(RLIMIT_FSIZE, 0, 0); /* it has no file to write; its standard error is a pipe */
	limit(RLIMIT_CORE, 0, 0);
	limit(RLIMIT_NOFILE, 64, 64);
	limit(RLIMIT_NPROC, 0, 0);
}

static void drop_capabilities(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	syscall(SYS_capset, &h, d);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

bool confine_has_landlock(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) >= 1;
}

/* Lets rs read below path (a folder) or path itself (a file), where it exists. */
static void landlock_read(int rs, const char *path, bool is_dir)
{
	int fd = open(path, O_PATH | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
	if (fd < 0)
		return;
	struct landlock_path_beneath_attr pb = {.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE |
	                                                          (is_dir ? LANDLOCK_ACCESS_FS_READ_DIR : 0),
	                                        .parent_fd = fd};
	syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	close(fd);
}

/* True when Landlock now confines every open to the data (and code) folders. */
static bool landlock_data_only(bool load_code)
{
	if (!confine_has_landlock())
		return false;
	/* every kind of access the first ABI knows is handled, so all is refused
	 * but reading below data_dirs (and code_dirs) */
	struct landlock_ruleset_attr attr = {.handled_access_fs = (1ull << 13) - 1};
	int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
	if (rs < 0)
		return false;
	for (size_t i = 0; i < G_N_ELEMENTS(data_dirs); i++)
		landlock_read(rs, data_dirs[i], true);
	for (size_t i = 0; load_code && i < G_N_ELEMENTS(code_dirs); i++)
		landlock_read(rs, code_dirs[i], true);
	for (size_t i = 0; load_code && i < G_N_ELEMENTS(code_files); i++)
		landlock_read(rs, code_files[i], false);
	bool ok = syscall(SYS_landlock_restrict_self, rs, 0) == 0;
	close(rs);
	return ok;
}

/* ---- the seccomp program ---- */

struct prog {
	struct sock_filter f[256];
	unsigned n;
};

static void emit(struct prog *p, struct sock_filter ins)
{
	g_assert(p->n < G_N_ELEMENTS(p->f));
	p->f[p->n++] = ins;
}

#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
/* TRAP, not KILL_PROCESS, so that the handler below can name the call on
 * standard error before the process dies of SIGSYS all the same */
#define KILL RET(SECCOMP_RET_TRAP)
#define ALLOW RET(SECCOMP_RET_ALLOW)
#define ARG_LO(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[(i)]))
#define ARG_HI(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[(i)]) + 4)

/* nr: then the k instructions that follow (which must end in a return) */
static void when(struct prog *p, long nr, unsigned k)
{
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, k));
}

static void allow(struct prog *p, long nr)
{
	when(p, nr, 1);
	emit(p, (struct sock_filter)ALLOW);
}

static void refuse(struct prog *p, long nr, int err)
{
	when(p, nr, 1);
	emit(p, (struct sock_filter)RET(SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)));
}

/* Allowed when none of mask's bits is set in argument i, else `otherwise`. */
static void allow_without(struct prog *p, long nr, int i, unsigned mask, unsigned otherwise)
{
	when(p, nr, 4);
	emit(p, (struct sock_filter)ARG_LO(i));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, mask, 1, 0));
	emit(p, (struct sock_filter)ALLOW);
	emit(p, (struct sock_filter)RET(otherwise));
}

/* Allowed when argument i (all 64 bits) equals v. */
static void allow_if(struct prog *p, long nr, int i, uint64_t v)
{
	when(p, nr, 6);
	emit(p, (struct sock_filter)ARG_LO(i));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)v, 0, 3));
	emit(p, (struct sock_filter)ARG_HI(i));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)(v >> 32), 0, 1));
	emit(p, (struct sock_filter)ALLOW);
	emit(p, (struct sock_filter)KILL);
}

/* What parsing needs: the channel and standard error, memory, time, the
 * process's own signals, reading files that Landlock leaves, and exit. */
static const long plain[] = {
    SYS_read,
    SYS_write,
    SYS_readv,
    SYS_writev,
    SYS_pread64,
    SYS_lseek,
    SYS_close,
    SYS_fstat,
    SYS_newfstatat,
    SYS_statx,
    SYS_fstatfs,
    SYS_getdents64,
    SYS_fcntl,
    SYS_readlinkat,
    SYS_faccessat,
    SYS_faccessat2,
    SYS_brk,
    SYS_munmap,
    SYS_mremap,
    SYS_madvise,
    SYS_futex,
    SYS_clock_gettime,
    SYS_clock_getres,
    SYS_gettimeofday,
    SYS_nanosleep,
    SYS_clock_nanosleep,
    SYS_getpid,
    SYS_gettid,
    SYS_getppid,
    SYS_getuid,
    SYS_geteuid,
    SYS_getgid,
    SYS_getegid,
    SYS_getrandom,
    SYS_rt_sigaction,
    SYS_rt_sigprocmask,
    SYS_rt_sigreturn,
    SYS_sigaltstack,
    SYS_exit,
    SYS_exit_group,
    SYS_sched_yield,
    SYS_sched_getaffinity,
    SYS_getrusage,
    SYS_uname,
    SYS_sysinfo,
    SYS_restart_syscall,
    SYS_set_robust_list,
    SYS_rseq,
    SYS_membarrier,
#ifdef SYS_stat
    SYS_stat,
    SYS_lstat,
    SYS_access,
    SYS_readlink,
    SYS_time,
#endif
};

/* mmap: never executable, or (load_code) executable only from a file, so that
 * libraries load but no new code can be made in memory; argument 3 holds the
 * flags, 2 the protection. */
static void allow_mmap(struct prog *p, bool load_code)
{
	if (!load_code) {
		allow_without(p, SYS_mmap, 2, PROT_EXEC, SECCOMP_RET_TRAP);
		return;
	}
	when(p, SYS_mmap, 7);
	emit(p, (struct sock_filter)ARG_LO(2));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 1, 0));
	emit(p, (struct sock_filter)ALLOW);
	emit(p, (struct sock_filter)ARG_LO(3));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MAP_ANONYMOUS, 1, 0));
	emit(p, (struct sock_filter)ALLOW);
	emit(p, (struct sock_filter)KILL);
}

static void build(struct prog *p, bool may_open, bool load_code, pid_t self)
{
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CONFINE_ARCH, 1, 0));
	emit(p, (struct sock_filter)KILL);
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
	/* the x32 ABI shares the x86-64 arch value; its numbers have bit 30 set */
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
	emit(p, (struct sock_filter)KILL);
	for (size_t i = 0; i < G_N_ELEMENTS(plain); i++)
		allow(p, plain[i]);
	/* memory, but never new executable code */
	allow_mmap(p, load_code);
	allow_without(p, SYS_mprotect, 2, PROT_EXEC, SECCOMP_RET_TRAP);
	/* reading the data folders (Landlock decides which); never writing */
	unsigned writes = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | __O_TMPFILE;
	unsigned eacces = SECCOMP_RET_ERRNO | EACCES;
	if (may_open) {
		allow_without(p, SYS_openat, 2, writes, eacces);
#ifdef SYS_open
		allow_without(p, SYS_open, 1, writes, eacces);
#endif
	} else {
		refuse(p, SYS_openat, EACCES);
#ifdef SYS_open
		refuse(p, SYS_open, EACCES);
#endif
	}
	/* reading its own limits, never raising them; signals to itself only */
	allow_if(p, SYS_prlimit64, 2, 0);
	allow_if(p, SYS_tgkill, 0, (uint64_t)self);
	allow_if(p, SYS_kill, 0, (uint64_t)self);
	refuse(p, SYS_ioctl, ENOTTY);
	/* GLib's logging asks whether standard error is the journal's socket */
	refuse(p, SYS_getpeername, ENOTSOCK);
	refuse(p, SYS_getsockname, ENOTSOCK);
	refuse(p, SYS_clone3, ENOSYS);
	emit(p, (struct sock_filter)KILL);
}

/* Names the refused call on standard error (which the worker logs), then
 * dies of SIGSYS, which the worker reports as a hostile document. */
static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	char msg[64] = "quire-parse: forbidden system call ";
	size_t n = strlen(msg);
	char digits[12];
	int d = 0;
	unsigned v = (unsigned)si->si_syscall;
	do
		digits[d++] = (char)('0' + v % 10);
	while ((v /= 10) && d < (int)sizeof digits);
	while (d > 0)
		msg[n++] = digits[--d];
	msg[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, msg, n);
	(void)w;
	signal(SIGSYS, SIG_DFL);
	sigset_t sys;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	sigprocmask(SIG_UNBLOCK, &sys, NULL);
	raise(SIGSYS);
	_exit(128 + SIGSYS);
}

bool confine_enter(size_t memory_bytes, int cpu_s, bool dumpable, bool load_code)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	sigaction(SIGSYS, &sa, NULL);
	confine_limits(memory_bytes, cpu_s);
	drop_capabilities();
	prctl(PR_SET_DUMPABLE, dumpable ? 1 : 0);
	bool may_open = landlock_data_only(load_code);
#ifdef CONFINE_ARCH
	struct prog p = {0};
	/* without Landlock nothing opens, so nothing could be loaded either */
	build(&p, may_open, load_code && may_open, getpid());
	struct sock_fprog fp = {.len = (unsigned short)p.n, .filter = p.f};
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp) != 0)
		_exit(5);
#endif
	return may_open;
}
