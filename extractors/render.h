/* render: one page of a PDF as a PNG image, for viewers.
 *
 * Like every reader of a document, rendering runs on hostile input, so it
 * happens in a parser process (quire-parse, extractors/sandbox.h) under the
 * same confinement as extraction, killed at the wall-clock limit. The caller
 * reads the PNG through a socket with a size limit. The image is scaled
 * to a fixed width (RENDER_MAX_WIDTH at most) so boxes given in points
 * (extractors/pdftext.h) map onto it by one factor: pixels = points * width /
 * page width. The bytes are checked (pdfcheck) before Poppler sees them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

#define RENDER_MAX_WIDTH 2000
#define RENDER_MAX_PNG ((size_t)32 << 20)

struct render_limits {
	int timeout_s;       /* wall clock and CPU; 0: 20 */
	size_t memory_bytes; /* address space of the child; 0: 1 GiB */
};

/* Renders page (1-based) of pdf at width pixels (clamped to 100..RENDER_MAX_WIDTH).
 * *ret (g_free) holds *ret_len bytes of PNG. QERR_NOT_FOUND for a page out of range,
 * QERR_PARSE_FAILED for a document Poppler cannot open or a crashed child,
 * QERR_TOO_LARGE at the time limit. */
enum qerr render_page_png(const void *pdf, size_t len, int page, int width, const struct render_limits *lim,
                          uint8_t **ret, size_t *ret_len, char **reterr) QUIRE_MUST_CHECK;
/* The same, reading the document from src chunk by chunk (extractors/sandbox.h). */
struct sandbox_source;
enum qerr render_page_png_from(const struct sandbox_source *src, int page, int width, const struct render_limits *lim,
                               uint8_t **ret, size_t *ret_len, char **reterr) QUIRE_MUST_CHECK;

#define RENDER_MAX_SCAN_PDF ((size_t)256 << 20)

/* An image-only copy of pdf, as a scanner would make it: each of the n pages
 * (sizes in points, page_w[i] x page_h[i], as pdftext reports them) rendered
 * by render_page_png at width pixels and placed as one picture filling a page
 * of the same size, with no text layer. *ret (g_free) holds *ret_len bytes
 * of PDF, at most RENDER_MAX_SCAN_PDF. Errors: those of render_page_png;
 * QERR_BAD_INPUT for no pages or a size out of range. */
enum qerr render_scan_pdf(const void *pdf, size_t len, const double *page_w, const double *page_h, int n, int width,
                          const struct render_limits *lim, uint8_t **ret, size_t *ret_len, char **reterr)
	QUIRE_MUST_CHECK;
