/* render: page images, drawn by a parser process (extractors/sandbox.h;
 * the drawing itself is in parser.c).
 *
 * The parser writes one status byte, then the PNG (or, for an image-only
 * copy of the document, the PDF), then exits; the caller reads until end of
 * file or the deadline, whichever comes first, and has it killed otherwise.
 * Status bytes: 0 ok, 1 the document does not open, 2 no such page, 3
 * rendering failed, 4 the copy is too large. */
#include "extractors/render.h"

#include <stdio.h>
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

static enum qerr judge_scan(const struct parser_run *r, int n, uint8_t **ret, size_t *ret_len, char **reterr)
{
	if (r->how == RUN_TIMEOUT)
		return qerr_set(reterr, QERR_TOO_LARGE, "rendering the %d pages took too long", n);
	if (r->how == RUN_TOO_BIG)
		return qerr_set(reterr, QERR_TOO_LARGE, "the image-only copy exceeds %zu MiB",
		                RENDER_MAX_SCAN_PDF >> 20);
	if (WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGSYS)
		return qerr_set(reterr, QERR_PARSE_FAILED,
		                "hostile PDF: rendering it made the parser attempt a forbidden system call");
	if (r->how != RUN_EOF || r->reply.len == 0)
		return qerr_set(reterr, QERR_PARSE_FAILED, "the page renderer ended without a reply (status %d)",
		                r->status);
	switch (r->reply.data[0]) {
	case 0:
		break;
	case 1:
		return qerr_set(reterr, QERR_PARSE_FAILED, "the document cannot be opened for rendering");
	case 2:
		return qerr_set(reterr, QERR_NOT_FOUND, "the document has fewer than %d pages", n);
	case 4:
		return qerr_set(reterr, QERR_TOO_LARGE, "the image-only copy exceeds %zu MiB",
		                RENDER_MAX_SCAN_PDF >> 20);
	default:
		return qerr_set(reterr, QERR_PARSE_FAILED, "a page of the document cannot be rendered");
	}
	if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0 || r->reply.len < 9)
		return qerr_set(reterr, QERR_PARSE_FAILED, "the page renderer failed");
	*ret_len = r->reply.len - 1;
	*ret = g_memdup2(r->reply.data + 1, r->reply.len - 1);
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
	struct render_limits l = *lim;
	if (l.timeout_s <= 0)
		l.timeout_s = 20;
	if (l.memory_bytes == 0)
		l.memory_bytes = (size_t)1 << 30;
	/* the parser draws the copy itself (quire loads no Poppler nor cairo), with each
	 * page's time */
	int cpu_s = (int)MIN((long long)l.timeout_s * n, 86400);
	struct sandbox_memory m;
	struct sandbox_source src = sandbox_source_memory(&m, pdf, len);
	struct parser_run r = {
	    .src = &src,
	    .rq = {.mode = PARSE_SCAN, .render_page = n, .render_width = CLAMP(width, 100, RENDER_MAX_WIDTH)},
	    .key = sandbox_key(l.memory_bytes, cpu_s, false, NULL, 0),
	    .wall_s = cpu_s,
	    .max_reply = RENDER_MAX_SCAN_PDF + 1};
	enum qerr e = parser_run(&r, reterr);
	if (!e)
		e = judge_scan(&r, n, ret, ret_len, reterr);
	parser_run_done(&r);
	return e;
}
