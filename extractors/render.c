/* render: page images in a limited child process.
 *
 * The child writes one status byte, then the PNG, then exits; the parent
 * reads until end of file or the deadline, whichever comes first, and kills
 * the child in any case before it waits for it. Status bytes: 0 ok, 1 the
 * document does not open, 2 no such page, 3 rendering failed. */
#include "extractors/render.h"

#include <stdio.h>
#include <cairo-pdf.h>
#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <poppler.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "extractors/pdfcheck.h"

#define CHILD_FD 3
#define MAX_PIXELS ((double)RENDER_MAX_WIDTH * RENDER_MAX_WIDTH * 2)

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static cairo_status_t png_out(void *closure, const unsigned char *data, unsigned int length)
{
	return write_all(*(int *)closure, data, length) == 0 ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static void child_limits(int fd, const struct render_limits *lim)
{
	if (fd != CHILD_FD && dup2(fd, CHILD_FD) < 0)
		_exit(4);
	syscall(SYS_close_range, CHILD_FD + 1, ~0u, 0);
	struct rlimit as = {lim->memory_bytes, lim->memory_bytes};
#ifndef __SANITIZE_ADDRESS__
	setrlimit(RLIMIT_AS, &as); /* ASan's shadow memory cannot live under an address-space limit */
#else
	(void)as;
#endif
	struct rlimit cpu = {(rlim_t)lim->timeout_s, (rlim_t)lim->timeout_s + 1}, zero = {0, 0};
	setrlimit(RLIMIT_CPU, &cpu);
	setrlimit(RLIMIT_FSIZE, &zero);
	setrlimit(RLIMIT_CORE, &zero);
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static G_NORETURN void child_main(int fd, const void *pdf, size_t len, int page, int width,
                                  const struct render_limits *lim)
{
	child_limits(fd, lim);
	int out = CHILD_FD;
	uint8_t status = 1;
	if (pdfcheck_scan(pdf, len, NULL) != QERR_OK) {
		write_all(out, &status, 1);
		_exit(0);
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
	write_all(out, &status, 1);
	if (status)
		_exit(0);
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, (int)(h * scale + 0.5));
	cairo_t *cr = cairo_create(s);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	cairo_scale(cr, scale, scale);
	poppler_page_render(pg, cr);
	cairo_destroy(cr);
	cairo_surface_write_to_png_stream(s, png_out, &out);
	_exit(0);
}

static double left_s(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(deadline->tv_sec - now.tv_sec) + (double)(deadline->tv_nsec - now.tv_nsec) / 1e9;
}

/* Reads the child's reply; 0 at end of file, 1 past the deadline, 2 too big, 3 read error. */
static int read_reply(int fd, GByteArray *into, const struct timespec *deadline)
{
	uint8_t buf[65536];
	for (;;) {
		double left = left_s(deadline);
		if (left <= 0)
			return 1;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return 1;
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 3;
		if (n == 0)
			return 0;
		if (into->len + (size_t)n > RENDER_MAX_PNG + 1)
			return 2;
		g_byte_array_append(into, buf, (guint)n);
	}
}

static enum qerr judge(int how, int status, GByteArray *reply, int page, uint8_t **ret, size_t *ret_len,
                       char **reterr)
{
	if (how == 1)
		return qerr_set(reterr, QERR_TOO_LARGE, "rendering page %d took too long", page);
	if (how == 2)
		return qerr_set(reterr, QERR_TOO_LARGE, "the image of page %d exceeds %zu MiB", page, RENDER_MAX_PNG >> 20);
	if (how != 0 || reply->len == 0)
		return qerr_set(reterr, QERR_PARSE_FAILED, "the page renderer ended without a reply (status %d)", status);
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
	struct render_limits l = *lim;
	if (l.timeout_s <= 0)
		l.timeout_s = 20;
	if (l.memory_bytes == 0)
		l.memory_bytes = (size_t)1 << 30;
	width = CLAMP(width, 100, RENDER_MAX_WIDTH);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return qerr_set(reterr, QERR_IO, "cannot create a pipe: %s", g_strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return qerr_set(reterr, QERR_BUSY, "cannot start the page renderer: %s", g_strerror(errno));
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(fds[1], pdf, len, page, width, &l);
	}
	close(fds[1]);
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += l.timeout_s;
	GByteArray *reply = g_byte_array_new();
	int how = read_reply(fds[0], reply, &deadline);
	if (how != 0)
		kill(pid, SIGKILL);
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	enum qerr e = judge(how, status, reply, page, ret, ret_len, reterr);
	g_byte_array_unref(reply);
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
