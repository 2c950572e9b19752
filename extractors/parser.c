/* parser: the quire-parse process, one document and exit.
 *
 * Started by the launcher with exec, it loads Poppler and its fonts (and
 * Tesseract with its language data where the kernel has no Landlock to let it
 * load them when a page needs OCR), confines itself (extractors/confine.c),
 * and only then reads a
 * request, the password and the PDF from its channel (PARSER_FD). It answers
 * with the frames of extractors/channel.h, one per page as soon as it is done,
 * or, to render, with a status byte and a PNG. It holds no key, no database
 * connection and no descriptor but the channel, /dev/null and its standard
 * error, which is a pipe the worker reads. */
#include "extractors/sandbox_proto.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poppler.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "extractors/channel.h"
#include "extractors/pdfcheck.h"
#include "extractors/pdftext.h"
#include "extractors/render.h"
#include "extractors/sandbox.h"

#define MAX_PASSWORD 1024
#define MAX_PIXELS ((double)RENDER_MAX_WIDTH * RENDER_MAX_WIDTH * 2)

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- rendering a page ---- */

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

/* ---- an image-only copy of the document ---- */

static cairo_status_t scan_write(void *closure, const unsigned char *data, unsigned int length)
{
	GByteArray *b = closure;
	if (length > RENDER_MAX_SCAN_PDF - b->len)
		return CAIRO_STATUS_WRITE_ERROR;
	g_byte_array_append(b, data, length);
	return CAIRO_STATUS_SUCCESS;
}

/* Draws pg at width pixels as the next page of cr's PDF surface: one picture
 * filling a page of pg's size. False when the page has no usable size. */
static bool scan_page(cairo_surface_t *surf, cairo_t *cr, PopplerPage *pg, int width)
{
	double w = 0, h = 0;
	poppler_page_get_size(pg, &w, &h);
	double scale = width / w;
	if (!(w >= 1 && w <= 14400 && h >= 1 && h <= 14400) || w * scale * h * scale > MAX_PIXELS)
		return false;
	cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, (int)(h * scale + 0.5));
	cairo_t *ic = cairo_create(img);
	cairo_set_source_rgb(ic, 1, 1, 1);
	cairo_paint(ic);
	cairo_scale(ic, scale, scale);
	poppler_page_render(pg, ic);
	cairo_destroy(ic);
	bool ok = cairo_surface_status(img) == CAIRO_STATUS_SUCCESS;
	if (ok) {
		cairo_pdf_surface_set_size(surf, w, h);
		cairo_save(cr);
		cairo_scale(cr, w / cairo_image_surface_get_width(img), h / cairo_image_surface_get_height(img));
		cairo_set_source_surface(cr, img, 0, 0);
		cairo_paint(cr);
		cairo_restore(cr);
		cairo_show_page(cr);
	}
	cairo_surface_destroy(img);
	return ok;
}

void scan_to_fd(int out, const void *pdf, size_t len, int n_pages, int width)
{
	uint8_t status = 1;
	PopplerDocument *doc = NULL;
	if (pdfcheck_scan(pdf, len, NULL, NULL) == QERR_OK) {
		g_autoptr(GBytes) bytes = g_bytes_new_static(pdf, len);
		doc = poppler_document_new_from_bytes(bytes, NULL, NULL);
	}
	status = !doc ? 1 : n_pages < 1 || n_pages > poppler_document_get_n_pages(doc) ? 2 : 0;
	GByteArray *b = g_byte_array_new();
	cairo_surface_t *surf = status ? NULL : cairo_pdf_surface_create_for_stream(scan_write, b, 612, 792);
	cairo_t *cr = surf ? cairo_create(surf) : NULL;
	for (int i = 0; !status && i < n_pages; i++) {
		PopplerPage *pg = poppler_document_get_page(doc, i);
		status = pg && scan_page(surf, cr, pg, width) ? 0 : 3;
		if (pg)
			g_object_unref(pg);
	}
	if (cr)
		cairo_destroy(cr);
	if (surf) {
		cairo_surface_finish(surf);
		if (!status && cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS)
			status = 4;
		cairo_surface_destroy(surf);
	}
	fd_write_all(out, &status, 1);
	if (!status)
		fd_write_all(out, b->data, b->len);
	g_byte_array_unref(b);
}

static void flush(struct channel_out *o)
{
	if (fd_write_all(PARSER_FD, o->data, o->len) != 0)
		_exit(3);
	o->len = 0;
}

static void fault(enum sandbox_fault f)
{
	switch (f) {
	case SANDBOX_FAULT_CRASH:
		/* ends as a real crash would, whatever handler a sanitizer installed */
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
		break;
	case SANDBOX_FAULT_HANG:
		for (;;)
			sleep(3600);
	case SANDBOX_FAULT_SPIN:
		for (volatile unsigned long i = 0;; i++)
			;
	case SANDBOX_FAULT_MEMORY:
		for (;;)
			memset(g_malloc(1u << 20), 1, 1u << 20);
	case SANDBOX_FAULT_GARBAGE:
		fd_write_all(PARSER_FD, "P\x07\0\0\0garbage", 12);
		_exit(0);
	case SANDBOX_FAULT_OPEN: {
		const char *path = getenv("QUIRE_TEST_OPEN");
		int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		struct channel_out o = {0};
		channel_put_error(&o, QERR_PARSE_FAILED, fd >= 0 ? "open succeeded" : "open refused");
		flush(&o);
		_exit(0);
	}
	case SANDBOX_FAULT_EXEC_MEMORY: {
		void *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct channel_out o = {0};
		channel_put_error(&o, QERR_PARSE_FAILED, code != MAP_FAILED ? "executable memory made" : "refused");
		flush(&o);
		_exit(0);
	}
	case SANDBOX_FAULT_SYSCALL:
		/* what an exploit would try first: a connection out */
		syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
		_exit(0);
	default:
		break;
	}
}

/* Extracts every page, one frame each, as soon as it is done. */
static enum qerr pages(struct pdftext *p, const struct parse_request *rq, struct channel_out *o, char **err)
{
	int total = pdftext_meta(p)->total_pages;
	for (int i = 0; i < total; i++) {
		if (rq->test_fault && rq->test_fault_page == i + 1)
			fault((enum sandbox_fault)rq->test_fault);
		struct pdftext_page page;
		struct pdftext_field *fields = NULL;
		uint32_t n_fields = 0;
		enum qerr e = pdftext_page_extract(p, i, &page, &fields, &n_fields, err);
		if (e)
			return e;
		channel_put_page(o, (uint32_t)i, &page);
		for (uint32_t f = 0; f < n_fields; f++) {
			channel_put_field(o, &fields[f]);
			pdftext_field_done(&fields[f]);
		}
		g_free(fields);
		pdftext_page_done(&page);
		flush(o);
	}
	return QERR_OK;
}

static void extract(const struct parse_request *rq, const void *pdf, size_t len, const char *password,
                    const struct pdftext_options *base)
{
	struct pdftext_options opt = *base;
	opt.password = password;
	opt.max_pages = rq->max_pages;
	struct channel_out o = {0};
	struct pdftext *p = NULL;
	char *err = NULL;
	if (rq->test_fault && rq->test_fault_page <= 0)
		fault((enum sandbox_fault)rq->test_fault);
	enum qerr e = pdftext_open(pdf, len, &opt, &p, &err);
	if (!e) {
		channel_put_meta(&o, pdftext_meta(p));
		flush(&o);
		e = pages(p, rq, &o, &err);
	}
	if (!e) {
		struct pdftext_attachment *files = NULL;
		uint32_t n = 0;
		pdftext_attachments(p, &files, &n);
		for (uint32_t i = 0; i < n; i++) {
			channel_put_attachment(&o, &files[i]);
			pdftext_attachment_done(&files[i]);
		}
		g_free(files);
	}
	if (e) {
		channel_put_error(&o, e, err ? err : qerr_str(e));
	} else {
		uint32_t n = 0;
		const char *const *w = pdftext_warnings(p, &n);
		for (uint32_t i = 0; i < n; i++)
			channel_put_warning(&o, w[i]);
		channel_put_end(&o, (uint32_t)pdftext_meta(p)->total_pages);
	}
	flush(&o);
}

static bool parse_number(const char *s, long long lo, long long hi, long long *out)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int parser_main(int argc, char **argv)
{
	long long memory = 0, cpu = 0, dpi = 0;
	if (argc != 7 || !parse_number(argv[2], 1 << 20, (long long)1 << 50, &memory) ||
	    !parse_number(argv[3], 1, 86400, &cpu) || !parse_number(argv[5], 0, 2400, &dpi)) {
		fprintf(stderr, "quire-parse: started with the wrong arguments (it is started by quire only)\n");
		return 2;
	}
	bool ocr = strcmp(argv[4], "-") != 0;
	struct pdftext_options base = {
	    .ocr = ocr, .ocr_lang = ocr ? argv[4] : NULL, .ocr_dpi = (int)dpi, .own_process = true};
	/* everything that reads files outside the data folders happens now, before
	 * the file system closes; without Landlock, everything at all */
	bool landlock = confine_has_landlock();
	pdftext_capture_diagnostics();
	pdftext_warm_up(landlock);
	if (ocr && !landlock)
		pdftext_preload_ocr(argv[4]);
	confine_enter((size_t)memory, (int)cpu, strcmp(argv[6], "dumpable") == 0, ocr);

	struct parse_request rq;
	/* confined from here on: every end is _exit (a sanitizer's exit-time checks
	 * would make calls outside the allow list) */
	if (read_all(PARSER_FD, &rq, sizeof rq) != 0)
		_exit(0); /* handed to nobody: the launcher or the worker went away */
	if (rq.magic != PARSE_MAGIC || rq.password_len > MAX_PASSWORD || rq.pdf_len > (uint64_t)memory)
		_exit(4);
	char password[MAX_PASSWORD + 1] = {0};
	uint8_t *pdf = g_try_malloc(rq.pdf_len ? rq.pdf_len : 1);
	if (!pdf || read_all(PARSER_FD, password, rq.password_len) != 0 || read_all(PARSER_FD, pdf, rq.pdf_len) != 0)
		_exit(4);
	if (rq.mode == PARSE_RENDER)
		render_to_fd(PARSER_FD, pdf, rq.pdf_len, rq.render_page, rq.render_width);
	else if (rq.mode == PARSE_SCAN)
		scan_to_fd(PARSER_FD, pdf, rq.pdf_len, rq.render_page, rq.render_width);
	else
		extract(&rq, pdf, rq.pdf_len, rq.password_len ? password : NULL, &base);
	_exit(0);
}

int sandbox_program_main(int argc, char **argv)
{
	struct rlimit nocore = {0, 0};
	setrlimit(RLIMIT_CORE, &nocore);
	if (argc >= 2 && strcmp(argv[1], "parse") == 0)
		return parser_main(argc, argv);
	if (argc == 2 && strcmp(argv[1], "launcher") == 0) {
		g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
		return self ? launcher_run(self, false) : 1;
	}
	fprintf(stderr, "quire-parse: this program is started by quire, not by hand\n");
	return 2;
}
