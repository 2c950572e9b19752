/* pdfcheck: structural checks on raw PDF bytes before Poppler parses them.
 *
 * Poppler silently repairs what it can: it rebuilds a broken cross-reference
 * table by guessing, reads a truncated file as far as it goes, and inflates a
 * stream of any size. For documents whose text must be right, a guess is
 * worse than a clear refusal (a rebuilt table may pick content an editor
 * meant to hide), and a decompression bomb should fail at once, not at the
 * time limit. One linear pass over the bytes, with fixed limits, finds:
 * a missing end marker (truncation), a startxref or classic table entry that
 * points where no object is, nesting deeper than PDFCHECK_MAX_DEPTH, and a
 * Flate stream inflating past PDFCHECK_MAX_INFLATED. It runs in the sandbox
 * child, like everything that reads the document. */
#pragma once

#include <stddef.h>

#include "core/qerr.h"

#define PDFCHECK_MAX_DEPTH 128
#define PDFCHECK_MAX_INFLATED ((size_t)256 << 20)

/* QERR_OK, or QERR_PARSE_FAILED (truncated, broken cross-reference table, too
 * deep) / QERR_TOO_LARGE (decompression bomb) with the reason in *reterr. */
enum qerr pdfcheck_scan(const void *pdf, size_t len, char **reterr) QUIRE_MUST_CHECK;
