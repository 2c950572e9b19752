/* sandbox: runs the PDF parser in a child process with limits.
 *
 * The child gets an address-space, CPU-time and file-size limit, no core
 * dumps, no new privileges and (where the kernel allows) a seccomp filter
 * refusing network sockets; the parent enforces a wall-clock limit with
 * SIGKILL. The child answers through a pipe with one length-prefixed JSON
 * message that the parent reads with a size limit. A crash, hang or memory
 * blow-up in the child becomes a clear error for this one document and never
 * affects the caller. */
#pragma once

#include <stddef.h>

#include "core/qerr.h"

struct pdftext_doc;

struct sandbox_limits {
	int timeout_s;
	size_t memory_bytes;
	int max_pages;
};

/* Parses pdf (len bytes) in a child. *ret owned by the caller (pdftext_doc_free). */
enum qerr sandbox_extract(const void *pdf, size_t len, const char *password, const struct sandbox_limits *lim,
                          struct pdftext_doc **ret, char **reterr) QUIRE_MUST_CHECK;
