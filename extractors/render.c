/* render: page images, drawn by a parser process (extractors/sandbox.h).
 *
 * The parser writes one status byte, then the PNG, then exits; the caller
 * reads until end of file or the deadline, whichever comes first, and has it
 * killed otherwise. Status bytes: 0 ok, 1 the document does not open, 2 no
 * such page, 3 rendering failed. */
#include "extractors/render.h"

#include <stdio.h>
#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <poppler.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "extractors/internal.h"
#include "extractors/pdfcheck.h"

#define MAX_PIXELS ((double)RENDER_MAX_WIDTH * RENDER_MAX_WIDTH * 2)

static cairo_status_t png_out(void *closure, const unsigned char *data, unsigned int length)
{
	return fd_write_all(*(int *)closure, data, length) == 0 ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

void render_to_fd(int out, const void *pdf, size_t len, int page, int width)
{
	uint8_t status = 1;
	if (pdfcheck_scan(pdf, len, NULL, NULL) != QERR_OK) {
		fd_write_all(out, &status, 1);
		return;
	}
	GBytes *bytes = g_bytes_new_static(pdf, len);
	PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, NULL);
	PopplerPage *pg = doc && page >= 1 && page <= poppler_document_get_n_pages(doc)
	                      ? poppler_document_get_page(doc, page - 1)
	                      : NULL;
	double w = 0, h = 0;
	if (pg)
		poppler_page_get_size(pg, &w, &h);
	status = !doc ? 1 : !pg ? 2 : (w < 1 || h < 1) ? 3 : 0;
	double scale = status ? 0 : width / w;
	if (!status && w * scale * h * scale > MAX_PIXELS)
		status = 3;
	fd_write_all(out, &status, 1);
	if (status)
		return;
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, (int)(h * scale + 0.5));
	cairo_t *cr = cairo_create(s);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	cairo_scale(cr, scale, scale);
	poppler_page_render(pg, cr);
	cairo_destroy(cr);
	cairo_surface_write_to_png_stream(s, png_out, &out);
}

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
