/* pdfcheck: structural checks on raw PDF bytes before Poppler parses them.
 *
 * Poppler repairs what it can: it rebuilds a broken cross-reference table by
 * scanning the file's objects and reads a truncated file as far as it goes,
 * as browsers and pdftotext do; Quire reads such files too, and says that
 * they were repaired (the reader should know the text comes from a repaired
 * file). What no repair makes safe is refused, at once rather than at the time
 * limit: nesting deeper than PDFCHECK_MAX_DEPTH and a Flate stream inflating
 * past PDFCHECK_MAX_INFLATED. One linear pass over the bytes, with fixed
 * limits. It runs in the parser process, like everything that reads the
 * document. */
#pragma once

#include <stddef.h>

#include "core/qerr.h"

#define PDFCHECK_MAX_DEPTH 128
#define PDFCHECK_MAX_INFLATED ((size_t)256 << 20)

/* QERR_OK, or QERR_PARSE_FAILED (too deep) / QERR_TOO_LARGE (decompression
 * bomb) with the reason in *reterr. On success *ret_repair (may be NULL; g_free)
 * names what Poppler will have to repair (no end marker, no startxref, a
 * startxref or table entry pointing where no object is), or is NULL. */
enum qerr pdfcheck_scan(const void *pdf, size_t len, char **ret_repair, char **reterr) QUIRE_MUST_CHECK;
