/* sandbox: runs the PDF parser in a child process with limits.
 *
 * The child closes every file descriptor it inherited but its reply pipe,
 * moves into an empty network namespace where the kernel allows unprivileged
 * user namespaces, and gets an address-space, CPU-time and file-size limit, no
 * core dumps, no new privileges and a seccomp filter that refuses sockets,
 * exec, ptrace and other syscalls a parser never needs. The parent enforces a
 * wall-clock limit with SIGKILL. The child answers through a pipe with
 * length-prefixed frames (extractors/channel.h), one per page as soon as it is
 * done, then the embedded files that carry an e-invoice, which the parent reads with a size limit and parses with limits. A
 * crash, hang or memory blow-up in the child becomes a clear error for this
 * one document, naming the page it happened on, and never affects the caller.
 * Safe to call from several threads at once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/qerr.h"

struct pdftext_doc;

/* Deliberate failures of the child, for tests of the parent's handling. */
enum sandbox_fault {
	SANDBOX_FAULT_NONE,
	SANDBOX_FAULT_CRASH,   /* SIGSEGV */
	SANDBOX_FAULT_HANG,    /* sleeps forever: the wall-clock limit */
	SANDBOX_FAULT_SPIN,    /* burns CPU forever: the CPU-time limit */
	SANDBOX_FAULT_MEMORY,  /* allocates until the address-space limit stops it */
	SANDBOX_FAULT_GARBAGE, /* writes bytes that are not a valid reply */
	SANDBOX_FAULT_COUNT
};

struct sandbox_limits {
	int timeout_s;
	size_t memory_bytes;
	int max_pages;
	bool no_ocr;                   /* leave pages without a text layer unread (method "none") */
	const char *ocr_lang;          /* Tesseract language(s); NULL: "eng" */
	int ocr_dpi;                   /* 0: 300 */
	enum sandbox_fault test_fault; /* tests only: fail this way ... */
	int test_fault_page;           /* ... on this page (1-based), before extracting it */
};

/* Parses pdf (len bytes) in a child. *ret owned by the caller (pdftext_doc_free).
 * Errors: those of pdftext_open and pdftext_page_extract (pdftext.h) as the child
 * reports them; QERR_TOO_LARGE when the wall-clock or CPU limit is reached;
 * QERR_PARSE_FAILED when the child crashes or runs out of memory; QERR_INTERNAL
 * for a malformed reply; QERR_IO / QERR_BUSY when no child can be started. */
enum qerr sandbox_extract(const void *pdf, size_t len, const char *password, const struct sandbox_limits *lim,
                          struct pdftext_doc **ret, char **reterr) QUIRE_MUST_CHECK;
