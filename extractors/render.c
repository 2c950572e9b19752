/* render: page images, drawn by a parser process (extractors/sandbox.h;
 * the drawing itself is in parser.c).
 *
 * The parser writes one status byte, then the PNG, then exits; the caller
 * reads until end of file or the deadline, whichever comes first, and has it
 * killed otherwise. Status bytes: 0 ok, 1 the document does not open, 2 no
 * such page, 3 rendering failed. */
#include "extractors/render.h"

#include <stdio.h>
#include <cairo-pdf.h>
#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "extractors/sandbox_proto.h"

static enum qerr judge(enum run_end how, int status, const struct channel_out *reply, int page, uint8_t **ret,
                       size_t *ret_len, char **reterr)
{
	if (how == RUN_TIMEOUT)
		return qerr_set(reterr, QERR_TOO_LARGE, "rendering page %d took too long", page);
	if (how == RUN_TOO_BIG)
		return qerr_set(reterr, QERR_TOO_LARGE, "the image of page %d exceeds %zu MiB", page,
		                RENDER_MAX_PNG >> 20);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		return qerr_set(reterr, QERR_PARSE_FAILED,
		                "hostile PDF: rendering page %d made the parser attempt a forbidden system call", page);
	if (how != RUN_EOF || reply->len == 0)
		return qerr_set(reterr, QERR_PARSE_FAILED, "the page renderer ended without a reply (status %d)",
		                status);
	switch (reply->data[0]) {
	case 0:
		break;
	case 2:
		return qerr_set(reterr, QERR_NOT_FOUND, "the document has no page %d", page);
	case 1:
		return qerr_set(reterr, QERR_PARSE_FAILED, "the document cannot be opened for rendering");
	default:
		return qerr_set(reterr, QERR_PARSE_FAILED, "page %d cannot be rendered", page);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || reply->len < 9)
		return qerr_set(reterr, QERR_PARSE_FAILED, "the page renderer failed on page %d", page);
	*ret_len = reply->len - 1;
	*ret = g_memdup2(reply->data + 1, reply->len - 1);
	return QERR_OK;
}

enum qerr render_page_png(const void *pdf, size_t len, int page, int width, const struct render_limits *lim,
                          uint8_t **ret, size_t *ret_len, char **reterr)
{
	struct sandbox_memory m;
	struct sandbox_source src = sandbox_source_memory(&m, pdf, len);
	return render_page_png_from(&src, page, width, lim, ret, ret_len, reterr);
}

enum qerr render_page_png_from(const struct sandbox_source *src, int page, int width, const struct render_limits *lim,
                               uint8_t **ret, size_t *ret_len, char **reterr)
{
	struct render_limits l = *lim;
	if (l.timeout_s <= 0)
		l.timeout_s = 20;
	if (l.memory_bytes == 0)
		l.memory_bytes = (size_t)1 << 30;
	width = CLAMP(width, 100, RENDER_MAX_WIDTH);
	struct parser_run r = {.src = src,
	                       .rq = {.mode = PARSE_RENDER, .render_page = page, .render_width = width},
	                       .key = sandbox_key(l.memory_bytes, l.timeout_s, false, NULL, 0),
	                       .wall_s = l.timeout_s,
	                       .max_reply = RENDER_MAX_PNG + 1};
	enum qerr e = parser_run(&r, reterr);
	if (!e)
		e = judge(r.how, r.status, &r.reply, page, ret, ret_len, reterr);
	parser_run_done(&r);
	return e;
}

/* ---- image-only copies ---- */

struct membuf {
	const uint8_t *data;
	size_t len, at;
};

static cairo_status_t png_in(void *closure, unsigned char *data, unsigned int length)
{
	struct membuf *m = closure;
	if (length > m->len - m->at)
		return CAIRO_STATUS_READ_ERROR;
	memcpy(data, m->data + m->at, length);
	m->at += length;
	return CAIRO_STATUS_SUCCESS;
}

static cairo_status_t pdf_out(void *closure, const unsigned char *data, unsigned int length)
{
	GByteArray *b = closure;
	if (length > RENDER_MAX_SCAN_PDF - b->len)
		return CAIRO_STATUS_WRITE_ERROR;
	g_byte_array_append(b, data, length);
	return CAIRO_STATUS_SUCCESS;
}

/* Draws one PNG (our renderer's output) over the whole current page of cr, w x h points. */
static enum qerr place_png(cairo_t *cr, const uint8_t *png, size_t len, double w, double h, int page, char **reterr)
{
	struct membuf m = {png, len, 0};
	cairo_surface_t *img = cairo_image_surface_create_from_png_stream(png_in, &m);
	if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
		cairo_surface_destroy(img);
		return qerr_set(reterr, QERR_PARSE_FAILED, "the image of page %d does not decode", page);
	}
	cairo_save(cr);
	cairo_scale(cr, w / cairo_image_surface_get_width(img), h / cairo_image_surface_get_height(img));
	cairo_set_source_surface(cr, img, 0, 0);
	cairo_paint(cr);
	cairo_restore(cr);
	cairo_surface_destroy(img);
	cairo_show_page(cr);
	return QERR_OK;
}

enum qerr render_scan_pdf(const void *pdf, size_t len, const double *page_w, const double *page_h, int n, int width,
                          const struct render_limits *lim, uint8_t **ret, size_t *ret_len, char **reterr)
{
	if (n < 1)
		return qerr_set(reterr, QERR_BAD_INPUT, "no pages to render");
	for (int i = 0; i < n; i++)
		if (!(page_w[i] >= 1 && page_w[i] <= 14400 && page_h[i] >= 1 && page_h[i] <= 14400))
			return qerr_set(reterr, QERR_BAD_INPUT, "page %d has no usable size", i + 1);
	GByteArray *out = g_byte_array_new();
	cairo_surface_t *surf = cairo_pdf_surface_create_for_stream(pdf_out, out, page_w[0], page_h[0]);
	cairo_t *cr = cairo_create(surf);
	enum qerr e = QERR_OK;
	for (int i = 0; !e && i < n; i++) {
		uint8_t *png = NULL;
		size_t png_len = 0;
		cairo_pdf_surface_set_size(surf, page_w[i], page_h[i]);
		e = render_page_png(pdf, len, i + 1, width, lim, &png, &png_len, reterr);
		if (!e)
			e = place_png(cr, png, png_len, page_w[i], page_h[i], i + 1, reterr);
		g_free(png);
	}
	cairo_destroy(cr);
	cairo_surface_finish(surf);
	if (!e && cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS)
		e = qerr_set(reterr, QERR_TOO_LARGE, "the image-only copy exceeds %zu MiB", RENDER_MAX_SCAN_PDF >> 20);
	cairo_surface_destroy(surf);
	if (e) {
		g_byte_array_unref(out);
		return e;
	}
	*ret_len = out->len;
	*ret = g_byte_array_free(out, FALSE);
	return QERR_OK;
}
