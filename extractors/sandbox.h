/* sandbox: the worker's side of the PDF parser process.
 *
 * Documents are parsed by quire-parse, a separate program that the launcher
 * (extractors/launcher.c) starts with exec ahead of need: it never held a
 * key, a database connection or a descriptor of the worker's. Before it reads
 * the document it confines itself: empty user and network namespaces, no
 * capabilities, address-space, processor-time and file-size limits, Landlock
 * leaving only the font, CMap and OCR data folders readable, and a seccomp
 * allow list whose breach kills it (extractors/confine.c). The worker streams
 * the PDF to it through a socket and reads length-prefixed frames back
 * (extractors/channel.h), one per page as soon as it is done, with a size
 * limit, while it reads the parser's standard error (bounded) from a pipe. A
 * crash, hang, forbidden system call or memory blow-up in the parser becomes a
 * clear error for this one document, naming the page it happened on, and never
 * affects the caller. Safe to call from several threads at once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

struct pdftext_doc;

/* Deliberate failures of the child, for tests of the parent's handling. */
enum sandbox_fault {
	SANDBOX_FAULT_NONE,
	SANDBOX_FAULT_CRASH,       /* SIGSEGV */
	SANDBOX_FAULT_HANG,        /* sleeps forever: the wall-clock limit */
	SANDBOX_FAULT_SPIN,        /* burns CPU forever: the CPU-time limit */
	SANDBOX_FAULT_MEMORY,      /* allocates until the address-space limit stops it */
	SANDBOX_FAULT_GARBAGE,     /* writes bytes that are not a valid reply */
	SANDBOX_FAULT_SYSCALL,     /* makes a system call outside the allow list (opens a socket) */
	SANDBOX_FAULT_OPEN,        /* opens $QUIRE_TEST_OPEN; fails with "open refused" or "open succeeded" */
	SANDBOX_FAULT_EXEC_MEMORY, /* maps anonymous memory as code, as injected code would need */
	SANDBOX_FAULT_COUNT
};

struct sandbox_limits {
	int timeout_s; /* processor time; the wall-clock limit is SANDBOX_WALL_FACTOR times it */
	size_t memory_bytes;
	int max_pages;
	bool no_ocr;                   /* leave pages without a text layer unread (method "none") */
	const char *ocr_lang;          /* Tesseract language(s); NULL: "eng" */
	int ocr_dpi;                   /* 0: 300 */
	enum sandbox_fault test_fault; /* tests only: fail this way ... */
	int test_fault_page;           /* ... on this page (1-based), before extracting it */
	bool test_dumpable;            /* tests only: leave the parser's memory readable by its user */
};

/* A parser that gets its full processor time on a busy machine needs longer on
 * the clock; past this many times timeout_s it is stopped either way. */
#define SANDBOX_WALL_FACTOR 3

/* Where the document comes from, read chunk by chunk into the parser (a stored
 * original is decrypted as it goes, never held whole by the worker). read puts
 * up to cap bytes into buf and sets *got (0 only at the end); len is exact. */
struct sandbox_source {
	size_t len;
	enum qerr (*read)(void *ctx, void *buf, size_t cap, size_t *got, char **reterr);
	void *ctx;
};

/* A source over len bytes at p (borrowed); m holds its position. */
struct sandbox_memory {
	const uint8_t *p;
	size_t pos, len;
};
struct sandbox_source sandbox_source_memory(struct sandbox_memory *m, const void *p, size_t len);

/* Forks the launcher from the calling process, which must not have loaded a
 * key nor started a thread: call it first thing in main(). Without it, the
 * first use starts the launcher as `quire-parse launcher` with posix_spawn
 * (which copies nothing). Errors: QERR_DEPENDENCY when quire-parse is not
 * found (it looks at $QUIRE_PARSER, then beside the running program, then in
 * the installed libexec folder), QERR_IO when it cannot be started. */
enum qerr sandbox_launch(char **reterr) QUIRE_MUST_CHECK;
/* Has a parser started now for limits lim, and after each document handed out
 * keeps `pool` of them started and waiting (0: none after the first; a
 * command that reads one document). Errors: as sandbox_launch. */
enum qerr sandbox_start(const struct sandbox_limits *lim, int pool, char **reterr) QUIRE_MUST_CHECK;
/* main() of quire-parse: "launcher" or "parse ..." as the launcher starts it. */
int sandbox_program_main(int argc, char **argv);

/* The launcher's process id, 0 when none runs (for tests). */
int sandbox_launcher_pid(void);

/* Parses pdf (len bytes) in a parser process. *ret owned by the caller (pdftext_doc_free).
 * Errors: those of pdftext_open and pdftext_page_extract (pdftext.h) as the child
 * reports them; QERR_TOO_LARGE when the parser used its processor time (it is never worth
 * another try); QERR_TIMEOUT when the wall-clock limit came first on a machine
 * too busy to give it that time (worth another try); QERR_PARSE_FAILED when the
 * parser crashes, hangs without using the processor, runs out of memory or
 * makes a forbidden system call (a hostile document); QERR_INTERNAL for a
 * malformed reply; QERR_IO / QERR_BUSY / QERR_DEPENDENCY when no parser can be
 * started. */
enum qerr sandbox_extract(const void *pdf, size_t len, const char *password, const struct sandbox_limits *lim,
                          struct pdftext_doc **ret, char **reterr) QUIRE_MUST_CHECK;
/* The same, reading the document from src. Errors also: the source's own. */
enum qerr sandbox_extract_from(const struct sandbox_source *src, const char *password, const struct sandbox_limits *lim,
                               struct pdftext_doc **ret, char **reterr) QUIRE_MUST_CHECK;
