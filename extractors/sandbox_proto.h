/* sandbox_proto: what the parser sandbox's files (sandbox.c, launcher.c, parser.c,
 * confine.c, render.c) share; private to extractors/.
 *
 * The parser process (quire-parse) and the worker's side of the sandbox speak
 * through three kinds of connection, all made by the launcher:
 *
 *   worker <-> launcher  SOCK_SEQPACKET, one launch_req, one launch_rep with
 *                        three descriptors (SCM_RIGHTS): the channel, the read
 *                        end of the parser's standard error, its event socket
 *   worker <-> parser    the channel, SOCK_STREAM: parse_request, password,
 *                        PDF bytes in; frames of extractors/channel.h out
 *   worker <-> launcher  the event socket, SOCK_SEQPACKET, per parser: the
 *                        worker may send 'K' (kill it); the launcher sends one
 *                        launch_exit when it has reaped the parser, then closes.
 *                        A worker that goes away closes it, which kills the parser.
 *
 * All of them are the same binary on the same machine: host byte order. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"
#include "extractors/channel.h"
#include "extractors/ocr.h"
#include "extractors/sandbox.h"

#define PARSE_MAGIC 0x31525051u /* "QPR1" */
#define PARSER_FD 3             /* the channel, in the parser; the control socket, in the launcher */

enum parse_mode { PARSE_EXTRACT = 1, PARSE_RENDER = 2, PARSE_SCAN = 3 };

/* What a pre-started parser was started with: a request is served by a ready
 * parser only when these are equal (memcmp; zero the padding). */
struct launch_key {
	uint64_t memory_bytes;
	int32_t cpu_s;
	int32_t ocr_dpi;
	uint8_t ocr;
	uint8_t dumpable; /* tests only: leave /proc/PID/mem readable by the same user */
	char ocr_lang[OCR_MAX_LANG + 1];
};

struct launch_req {
	uint32_t op;  /* 'G': hand me a parser; 'P': only keep pool ready */
	int32_t pool; /* how many to keep ready with this key afterwards */
	struct launch_key key;
};

struct launch_rep {
	int32_t err; /* 0, or the errno of the failed start */
	int32_t pid;
};

struct launch_exit {
	int32_t status; /* as waitpid reports it */
	int64_t cpu_us; /* user + system time the parser used */
};

struct parse_request {
	uint32_t magic;
	uint32_t mode; /* enum parse_mode */
	uint64_t pdf_len;
	uint32_t password_len;
	int32_t max_pages;
	int32_t test_fault; /* enum sandbox_fault */
	int32_t test_fault_page;
	int32_t render_page;  /* PARSE_RENDER: 1-based */
	int32_t render_width; /* PARSE_RENDER: pixels */
};

/* confine.c: limits, capabilities, Landlock and the seccomp allow list (in
 * that order) for the calling process, which must hold one thread. With
 * load_code, the system's library folders stay readable and their files may be
 * mapped as code (Tesseract is loaded when a page needs OCR). Returns whether
 * files in the data folders can still be opened (Landlock present); without
 * it every open is refused. Exits the process when seccomp fails. */
bool confine_enter(size_t memory_bytes, int cpu_s, bool dumpable, bool load_code);
void confine_limits(size_t memory_bytes, int cpu_s);
/* Whether the kernel has Landlock, so that data files may be read lazily. */
bool confine_has_landlock(void);

/* launcher.c: the launcher's loop on control socket PARSER_FD; returns the exit
 * status. forked: forked by main() (sandbox_launch), not spawned by some thread. */
int launcher_run(const char *self, bool forked);

/* parser.c: one document through the channel on PARSER_FD; argv as the launcher builds it. */
int parser_main(int argc, char **argv);
/* Writes all len bytes to fd; 0, or -1 when it cannot. */
int fd_write_all(int fd, const void *buf, size_t len);
/* The argument vector for a parser of key k (g_strfreev). */
char **parser_argv(const char *self, const struct launch_key *k);

/* sandbox.c: one run of a parser, for extraction and rendering alike. */
enum run_end { RUN_EOF, RUN_TIMEOUT, RUN_TOO_BIG, RUN_ERROR };

struct parser_run {
	/* in */
	const struct sandbox_source *src;
	const char *password;
	struct parse_request rq; /* magic, pdf_len and password_len are filled in */
	struct launch_key key;
	int wall_s;
	size_t max_reply;
	/* out (parser_run_done frees) */
	struct channel_out reply;
	char *stderr_text; /* bounded, NUL-terminated, may be "" */
	enum run_end how;
	int status;
	double cpu_s;
	double wall_used_s;
	bool was_running; /* RUN_TIMEOUT: runnable at the deadline (computing or starved), not blocked */
};

/* Starts a parser, feeds it, reads its reply and standard error until it ends
 * or wall_s pass (then kills it), and collects its exit. Errors only when no
 * parser could be started or fed (QERR_BUSY, QERR_IO), or the source failed. */
enum qerr parser_run(struct parser_run *r, char **reterr) QUIRE_MUST_CHECK;
void parser_run_done(struct parser_run *r);
struct launch_key sandbox_key(size_t memory_bytes, int cpu_s, bool ocr, const char *lang, int dpi);

/* parser.c, for render.c: renders page (1-based) at width pixels into fd as
 * status byte + PNG; or pages 1..n_pages as status byte + an image-only PDF
 * (status bytes in render.c). */
void render_to_fd(int fd, const void *pdf, size_t len, int page, int width);
void scan_to_fd(int fd, const void *pdf, size_t len, int n_pages, int width);
