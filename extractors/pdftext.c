/* pdftext: Poppler (glib) text, layout, form fields and page rendering for
 * OCR. Poppler, cairo and GError stay in this file.
 *
 * Invariants: a page's words are byte spans of its text, in order, never
 * overlapping; lines are consecutive runs of words covering them all; every
 * box is normalised (x0 <= x1, y0 <= y1). A page's text is rebuilt from its
 * words (one space between words, '\n' between lines), which is what makes
 * the spans exact. */
#include "extractors/pdftext.h"

#include <cairo.h>
#include <gio/gio.h>
#include <glib.h>
#include <math.h>
#include <poppler.h>
#include <stdio.h>
#include <string.h>

#include "extractors/hugemem.h"
#include "extractors/ocr.h"
#include "extractors/pdfcheck.h"

#define DIAG_MAX 65536
#define OCR_MAX_PIXELS (120u * 1000 * 1000) /* a 300 dpi A0 sheet is ~140 Mpx */
#define USABLE_ALNUM 3                      /* fewer letters and digits than this: no text layer */
#define SHORT_TEXT_ALNUM 200                /* below this, a page mostly covered by an image is a scan */

struct pdftext {
	PopplerDocument *pd;
	GBytes *bytes;
	struct pdftext_doc meta;
	struct pdftext_options opt;
	char *ocr_lang;
	struct ocr *ocr;
	bool ocr_borrowed; /* the preloaded one */
	size_t text_bytes;
};

/* ---- Poppler's diagnostics ---- */

/* poppler-glib passes its parser's complaints to g_log (domain "Poppler", level
 * INFO, dropped by default); the child keeps them to name what is wrong. */
static GString *diag_text;
G_LOCK_DEFINE_STATIC(diag);

static void diag_handler(const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
	G_LOCK(diag);
	if (diag_text->len < DIAG_MAX)
		g_string_append_printf(diag_text, "%s\n", message);
	G_UNLOCK(diag);
}

void pdftext_capture_diagnostics(void)
{
	G_LOCK(diag);
	if (!diag_text) {
		diag_text = g_string_new(NULL);
		g_log_set_handler("Poppler", G_LOG_LEVEL_MASK, diag_handler, NULL);
	}
	G_UNLOCK(diag);
}

/* A copy of what Poppler reported since the last call, cleared; NULL when not capturing. */
static char *diag_take(void)
{
	G_LOCK(diag);
	char *d = diag_text ? g_strdup(diag_text->str) : NULL;
	if (diag_text)
		g_string_truncate(diag_text, 0);
	G_UNLOCK(diag);
	return d;
}

/* A reference loop that Poppler reported (it then carries on with part of the
 * document, which would be silently incomplete text). */
static enum qerr diag_check(char **reterr)
{
	g_autofree char *d = diag_take();
	if (!d)
		return QERR_OK;
	static const char *const loops[] = {"Loop in ", "loop in ", "Loop detected", "Infinite loop"};
	for (size_t i = 0; i < G_N_ELEMENTS(loops); i++) {
		const char *at = strstr(d, loops[i]);
		if (at) {
			const char *eol = strchr(at, '\n');
			int n = eol ? (int)(eol - at) : (int)strlen(at);
			return qerr_set(reterr, QERR_PARSE_FAILED, "the PDF contains a reference loop (%.*s)",
			                n > 80 ? 80 : n, at);
		}
	}
	const char *claim = strstr(d, "Page count (");
	long long pages = 0, objects = 0;
	if (claim && sscanf(claim, "Page count (%lld) larger than number of objects (%lld)", &pages, &objects) == 2)
		return qerr_set(reterr, QERR_PARSE_FAILED, "the PDF claims %lld pages but holds only %lld objects",
		                pages, objects);
	return QERR_OK;
}

/* ---- opening ---- */

static char *dup_or_null(const char *s)
{
	return s ? g_strdup(s) : NULL;
}

static enum qerr open_error(const GError *err, const char *password, const char *repair, char **reterr)
{
	if (g_error_matches(err, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED))
		return password
		           ? qerr_set(reterr, QERR_KEY, "the password given does not open this PDF")
		           : qerr_set(reterr, QERR_KEY, "the PDF is password-protected; submit it with its password");
	return qerr_set(reterr, QERR_PARSE_FAILED, "the PDF is damaged and cannot be opened: %s%s%s",
	                err ? err->message : "unknown reason", repair ? "; " : "", repair ? repair : "");
}

static void fill_meta(PopplerDocument *pd, struct pdftext_doc *doc)
{
	g_autofree char *title = poppler_document_get_title(pd);
	g_autofree char *author = poppler_document_get_author(pd);
	g_autofree char *producer = poppler_document_get_producer(pd);
	doc->title = pdftext_clean_string(title);
	doc->author = pdftext_clean_string(author);
	doc->producer = pdftext_clean_string(producer);
	GDateTime *created = poppler_document_get_creation_date_time(pd);
	if (created) {
		doc->creation_date = g_date_time_format_iso8601(created);
		g_date_time_unref(created);
	}
}

static void warn(struct pdftext *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

enum qerr pdftext_open(const void *pdf, size_t len, const struct pdftext_options *opt, struct pdftext **ret,
                       char **reterr)
{
	if (len == 0)
		return qerr_set(reterr, QERR_EMPTY, "the file is empty");
	if (!pdftext_looks_like_pdf(pdf, len))
		return qerr_set(reterr, QERR_NOT_PDF, "the file is not a PDF (no %%PDF- header)");
	g_autofree char *repair = NULL;
	enum qerr e = pdfcheck_scan(pdf, len, &repair, reterr);
	if (e)
		return e;
	g_free(diag_take());
	struct pdftext *p = g_new0(struct pdftext, 1);
	p->bytes = g_bytes_new_static(pdf, len);
	p->opt = *opt;
	p->ocr_lang = g_strdup(opt->ocr_lang && opt->ocr_lang[0] ? opt->ocr_lang : "eng");
	p->opt.ocr_lang = p->ocr_lang;
	p->opt.password = NULL; /* not kept */
	if (p->opt.ocr_dpi <= 0)
		p->opt.ocr_dpi = 300;
	g_autoptr(GError) gerr = NULL;
	/* not _new_from_bytes: with a wrong password it retries on a stream it has
	 * already freed (Poppler 22.12); a GInputStream survives the retry */
	g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes(p->bytes);
	p->pd = poppler_document_new_from_stream(in, (goffset)len, opt->password, NULL, &gerr);
	int total = p->pd ? poppler_document_get_n_pages(p->pd) : 0;
	if (!p->pd)
		e = open_error(gerr, opt->password, repair, reterr);
	if (!e)
		e = diag_check(reterr);
	if (!e && total <= 0)
		e = qerr_set(reterr, QERR_PARSE_FAILED, "the PDF has no pages");
	if (!e && total > opt->max_pages)
		e = qerr_set(reterr, QERR_TOO_LARGE, "the PDF has %d pages; the limit is %d (limits.max_pages)", total,
		             opt->max_pages);
	if (e) {
		pdftext_close(p);
		return e;
	}
	p->meta.total_pages = total;
	fill_meta(p->pd, &p->meta);
	if (repair)
		warn(p, "%s; it was read as Poppler repaired it", repair);
	*ret = p;
	return QERR_OK;
}

void pdftext_close(struct pdftext *p)
{
	if (!p)
		return;
	if (p->pd)
		g_object_unref(p->pd);
	g_bytes_unref(p->bytes);
	if (!p->ocr_borrowed)
		ocr_free(p->ocr);
	for (uint32_t i = 0; i < p->meta.n_warnings; i++)
		g_free(p->meta.warnings[i]);
	g_free(p->meta.warnings);
	g_free(p->meta.title);
	g_free(p->meta.author);
	g_free(p->meta.producer);
	g_free(p->meta.creation_date);
	g_free(p->ocr_lang);
	g_free(p);
}

const struct pdftext_doc *pdftext_meta(const struct pdftext *p)
{
	return &p->meta;
}

const char *const *pdftext_warnings(const struct pdftext *p, uint32_t *n)
{
	*n = p->meta.n_warnings;
	return (const char *const *)p->meta.warnings;
}

static void warn(struct pdftext *p, const char *fmt, ...)
{
	if (p->meta.n_warnings >= PDFTEXT_MAX_WARNINGS)
		return;
	va_list ap;
	va_start(ap, fmt);
	p->meta.warnings = g_renew(char *, p->meta.warnings, p->meta.n_warnings + 1);
	p->meta.warnings[p->meta.n_warnings++] = g_strdup_vprintf(fmt, ap);
	va_end(ap);
}

/* ---- building a page from words ---- */

struct builder {
	GString *text;
	GArray *words; /* struct pdftext_word */
	GArray *lines; /* struct pdftext_line */
	bool in_word;
	bool box_empty; /* the current word has no box yet */
	size_t max_words;
};

static void box_add(struct pdftext_box *b, bool first, double x0, double y0, double x1, double y1)
{
	if (x0 > x1) {
		double t = x0;
		x0 = x1;
		x1 = t;
	}
	if (y0 > y1) {
		double t = y0;
		y0 = y1;
		y1 = t;
	}
	if (first || x0 < b->x0)
		b->x0 = (float)x0;
	if (first || y0 < b->y0)
		b->y0 = (float)y0;
	if (first || x1 > b->x1)
		b->x1 = (float)x1;
	if (first || y1 > b->y1)
		b->y1 = (float)y1;
}

static void builder_end_word(struct builder *b)
{
	if (!b->in_word)
		return;
	struct pdftext_word *w = &g_array_index(b->words, struct pdftext_word, b->words->len - 1);
	w->len = (uint32_t)(b->text->len - w->start);
	struct pdftext_line *l = &g_array_index(b->lines, struct pdftext_line, b->lines->len - 1);
	box_add(&l->box, l->n_words == 0, w->box.x0, w->box.y0, w->box.x1, w->box.y1);
	l->n_words++;
	b->in_word = false;
}

static void builder_new_line(struct builder *b)
{
	builder_end_word(b);
	if (b->lines->len && g_array_index(b->lines, struct pdftext_line, b->lines->len - 1).n_words == 0)
		return;
	struct pdftext_line l = {.first_word = b->words->len};
	g_array_append_val(b->lines, l);
}

/* Starts a word (false when the page has too many); separators go before it. */
static bool builder_start_word(struct builder *b, float confidence)
{
	if (b->words->len >= b->max_words)
		return false;
	struct pdftext_line *l = &g_array_index(b->lines, struct pdftext_line, b->lines->len - 1);
	if (l->n_words > 0)
		g_string_append_c(b->text, ' ');
	else if (b->words->len > 0)
		g_string_append_c(b->text, '\n');
	struct pdftext_word w = {.start = (uint32_t)b->text->len, .confidence = confidence};
	g_array_append_val(b->words, w);
	b->in_word = true;
	b->box_empty = true;
	return true;
}

static void builder_init(struct builder *b)
{
	b->text = g_string_new(NULL);
	b->words = g_array_new(FALSE, FALSE, sizeof(struct pdftext_word));
	b->lines = g_array_new(FALSE, FALSE, sizeof(struct pdftext_line));
	b->in_word = false;
	b->max_words = PDFTEXT_MAX_WORDS;
	builder_new_line(b);
}

/* Moves the result into pg (text, words, lines); b is consumed. */
static void builder_finish(struct builder *b, struct pdftext_page *pg)
{
	builder_end_word(b);
	if (b->lines->len && g_array_index(b->lines, struct pdftext_line, b->lines->len - 1).n_words == 0)
		g_array_set_size(b->lines, b->lines->len - 1);
	pg->n_words = b->words->len;
	pg->n_lines = b->lines->len;
	pg->words = (struct pdftext_word *)(void *)g_array_free(b->words, FALSE);
	pg->lines = (struct pdftext_line *)(void *)g_array_free(b->lines, FALSE);
	pg->text = g_string_free(b->text, FALSE);
}

/* Whether b, the character after a with no space between them, still belongs
 * to a's word: poppler-glib's text joins its blocks (table cells, columns)
 * with no separator, which only the boxes reveal. Lines run along x, or along
 * y on pages rotated by 90 or 270 degrees. 0: same word, 1: new word on the
 * same line, 2: new line. */
static void span(const PopplerRectangle *r, bool along_y, double *lo, double *hi)
{
	*lo = along_y ? MIN(r->y1, r->y2) : MIN(r->x1, r->x2);
	*hi = along_y ? MAX(r->y1, r->y2) : MAX(r->x1, r->x2);
}

static int glued_break(const PopplerRectangle *a, const PopplerRectangle *b, bool vertical)
{
	double a_lo, a_hi, b_lo, b_hi, a_c0, a_c1, b_c0, b_c1;
	span(a, vertical, &a_lo, &a_hi);
	span(b, vertical, &b_lo, &b_hi);
	span(a, !vertical, &a_c0, &a_c1);
	span(b, !vertical, &b_c0, &b_c1);
	double size = MAX(a_c1 - a_c0, b_c1 - b_c0);
	if (!(size > 0))
		return 0;
	double centre = (b_c0 + b_c1) / 2;
	if (centre < a_c0 || centre > a_c1)
		return 2;
	return MAX(b_lo - a_hi, a_lo - b_hi) > size ? 1 : 0;
}

/* Splits Poppler's text (lines by '\n') into words boxed by its per-character
 * rectangles, which follow the characters of that same text. */
static void layout_from_text(const char *raw, const PopplerRectangle *rects, guint n_rects, bool vertical,
                             struct builder *b)
{
	guint ci = 0;
	const PopplerRectangle *prev = NULL; /* last character of the current word */
	for (const char *s = raw; *s; s = g_utf8_next_char(s), ci++) {
		gunichar c = g_utf8_get_char(s);
		const PopplerRectangle *r = ci < n_rects ? &rects[ci] : NULL;
		if (c == '\n') {
			builder_new_line(b);
			prev = NULL;
			continue;
		}
		if (g_unichar_isspace(c) || c == 0xfeff || c == 0x200b) {
			builder_end_word(b);
			prev = NULL;
			continue;
		}
		int brk = b->in_word && prev && r ? glued_break(prev, r, vertical) : 0;
		if (brk == 2)
			builder_new_line(b);
		else if (brk == 1)
			builder_end_word(b);
		if (!b->in_word && !builder_start_word(b, -1))
			break;
		g_string_append_len(b->text, s, g_utf8_next_char(s) - s);
		struct pdftext_word *w = &g_array_index(b->words, struct pdftext_word, b->words->len - 1);
		if (r) {
			box_add(&w->box, b->box_empty, r->x1, r->y1, r->x2, r->y2);
			b->box_empty = false;
		}
		prev = r;
	}
}

static size_t count_alnum(const char *s)
{
	size_t n = 0;
	for (; *s; s = g_utf8_next_char(s))
		n += g_unichar_isalnum(g_utf8_get_char(s)) ? 1 : 0;
	return n;
}

/* Whether images cover at least half of the page (a scan with a stray text layer). */
static bool mostly_image(PopplerPage *page, double w, double h)
{
	GList *images = poppler_page_get_image_mapping(page);
	double area = 0;
	for (GList *l = images; l; l = l->next) {
		const PopplerRectangle *r = &((PopplerImageMapping *)l->data)->area;
		area += fabs((r->x2 - r->x1) * (r->y2 - r->y1));
	}
	poppler_page_free_image_mapping(images);
	return area >= 0.5 * w * h;
}

static void text_layer(PopplerPage *page, struct pdftext_page *pg)
{
	g_autofree char *raw = poppler_page_get_text(page);
	if (raw && !g_utf8_validate(raw, -1, NULL)) {
		char *valid = g_utf8_make_valid(raw, -1);
		g_free(raw);
		raw = valid;
	}
	PopplerRectangle *rects = NULL;
	guint n_rects = 0;
	if (raw && raw[0] && !poppler_page_get_text_layout(page, &rects, &n_rects))
		n_rects = 0;
	struct builder b;
	builder_init(&b);
	layout_from_text(raw ? raw : "", rects, n_rects, pg->rotation % 180 != 0, &b);
	g_free(rects);
	builder_finish(&b, pg);
}

/* ---- OCR of pages without a text layer ---- */

/* A page rendered for OCR: 8-bit grey, width x height, rows packed without
 * padding at the start of a hugemem block of size bytes. */
struct page_image {
	guint8 *grey;
	size_t size;
	int width, height;
};

static void page_image_done(struct page_image *img)
{
	hugemem_free(img->grey, img->size);
	memset(img, 0, sizeof *img);
}

/* Renders the page as displayed (rotation applied) into *img at *scale (pixels
 * a point), lowering the resolution for pages too large to render in memory.
 * cairo draws 32-bit pixels; each is turned into grey in the same memory, so
 * the page is in memory once and faulted in as huge pages. */
static bool render_grey(PopplerPage *page, double w, double h, double *scale, struct page_image *img)
{
	double s = *scale;
	if (w * s * h * s > OCR_MAX_PIXELS)
		s = sqrt(OCR_MAX_PIXELS / (w * h));
	int pw = (int)ceil(w * s), ph = (int)ceil(h * s);
	int stride = pw > 0 ? cairo_format_stride_for_width(CAIRO_FORMAT_RGB24, pw) : -1;
	if (stride < 0 || ph < 1)
		return false;
	size_t size = (size_t)stride * (size_t)ph;
	guint8 *px = hugemem_new(size);
	if (!px)
		return false;
	cairo_surface_t *surf = cairo_image_surface_create_for_data(px, CAIRO_FORMAT_RGB24, pw, ph, stride);
	cairo_t *cr = cairo_create(surf);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	cairo_scale(cr, s, s);
	poppler_page_render(page, cr); /* applies the page's own rotation */
	cairo_destroy(cr);
	cairo_surface_flush(surf);
	bool ok = cairo_surface_status(surf) == CAIRO_STATUS_SUCCESS;
	cairo_surface_destroy(surf);
	/* the grey of pixel (x, y) goes to y * pw + x, never past that pixel's own
	 * bytes at y * stride + 4 * x, which are read first: no pixel is
	 * overwritten before it is read */
	for (int y = 0; ok && y < ph; y++) {
		const guint32 *row = (const guint32 *)(const void *)(px + (size_t)y * (size_t)stride);
		guint8 *out = px + (size_t)y * (size_t)pw;
		for (int x = 0; x < pw; x++) {
			guint32 v = row[x];
			out[x] = (guint8)((((v >> 16) & 0xff) * 77 + ((v >> 8) & 0xff) * 150 + (v & 0xff) * 29) >> 8);
		}
	}
	if (!ok) {
		hugemem_free(px, size);
		return false;
	}
	*scale = s;
	*img = (struct page_image){.grey = px, .size = size, .width = pw, .height = ph};
	return true;
}

static struct ocr *preloaded_ocr;
static char *preloaded_lang;

void pdftext_preload_ocr(const char *lang)
{
	if (preloaded_ocr || ocr_new(lang, &preloaded_ocr, NULL) != QERR_OK)
		return;
	preloaded_lang = g_strdup(lang);
}

/* One page with one line in an unembedded standard font. */
static const char warm_pdf[] = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                               "2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
                               "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 100 40]/Contents 4 0 R"
                               "/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
                               "4 0 obj<</Length 37>>stream\nBT /F1 12 Tf 5 15 Td (Warm up) Tj ET\nendstream endobj\n"
                               "5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
                               "trailer<</Root 1 0 R>>\n%%EOF\n";

static GIConv keep_iconv[3];

static void warm_poppler(void)
{
	g_autoptr(GBytes) bytes = g_bytes_new_static(warm_pdf, sizeof warm_pdf - 1);
	PopplerDocument *pd = poppler_document_new_from_bytes(bytes, NULL, NULL);
	PopplerPage *page = pd ? poppler_document_get_page(pd, 0) : NULL;
	if (page) {
		g_free(poppler_page_get_text(page));
		cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 50, 20);
		cairo_t *cr = cairo_create(s);
		poppler_page_render(page, cr);
		cairo_destroy(cr);
		cairo_surface_destroy(s);
		g_object_unref(page);
	}
	if (pd)
		g_object_unref(pd);
	g_free(diag_take());
}

void pdftext_warm_up(bool fonts_later)
{
	if (!fonts_later)
		warm_poppler();
	/* Text strings of the PDF in UTF-16 (an embedded file's name, say) are converted
	 * through iconv, whose modules load from files on first use: they are loaded now and
	 * kept, or every such name would read as none once the file system is closed. */
	static const char *const kept[] = {"UTF-16BE", "UTF-16LE", "UTF-16"};
	for (size_t i = 0; i < G_N_ELEMENTS(kept); i++)
		if (!keep_iconv[i])
			keep_iconv[i] = g_iconv_open("UTF-8", kept[i]);
}

/* OCR boxes hold a word's ink, a text layer's boxes its font's full height: "GmbH" is a
 * cap's height tall, "vom" an x-height. Everything that reads boxes (layout.h's rows and
 * its cell gaps measured in heights) expects font boxes, so each OCR word gets the height of
 * its text line, widened by OCR_LINE_PAD of it above and below for the ascenders and
 * descenders that ink boxes leave out. */
#define OCR_LINE_PAD 0.15

static void layout_from_ocr(const struct ocr_result *r, double scale, struct builder *b)
{
	for (size_t i = 0, line = 0; i < r->n_words; i++) {
		const struct ocr_word *w = &r->words[i];
		if (w->line_start || i == 0) {
			builder_new_line(b);
			line = i;
		}
		int top = w->y0, bottom = w->y1;
		for (size_t k = line; k < r->n_words && (k == line || !r->words[k].line_start); k++) {
			top = MIN(top, r->words[k].y0);
			bottom = MAX(bottom, r->words[k].y1);
		}
		double pad = OCR_LINE_PAD * (bottom - top);
		builder_end_word(b);
		if (!builder_start_word(b, w->confidence))
			break;
		g_string_append(b->text, w->text);
		struct pdftext_word *pw = &g_array_index(b->words, struct pdftext_word, b->words->len - 1);
		box_add(&pw->box, true, w->x0 / scale, (top - pad) / scale, w->x1 / scale, (bottom + pad) / scale);
	}
}

static enum qerr ocr_page(struct pdftext *p, PopplerPage *page, int index, struct pdftext_page *pg, char **reterr)
{
	if (!p->ocr && preloaded_ocr && strcmp(preloaded_lang, p->opt.ocr_lang) == 0) {
		p->ocr = preloaded_ocr;
		p->ocr_borrowed = true;
	}
	if (p->opt.own_process)
		hugemem_heap_advise();
	if (!p->ocr) {
		enum qerr e = ocr_new(p->opt.ocr_lang, &p->ocr, reterr);
		if (e)
			return e;
	}
	double scale = p->opt.ocr_dpi / 72.0;
	struct page_image img;
	if (!render_grey(page, pg->width, pg->height, &scale, &img))
		return qerr_set(reterr, QERR_PARSE_FAILED, "page %d cannot be rendered for OCR", index + 1);
	if (scale * 72.0 < p->opt.ocr_dpi - 0.5)
		warn(p, "page %d is too large to render at %d dpi; OCR used %.0f dpi", index + 1, p->opt.ocr_dpi,
		     scale * 72.0);
	struct ocr_result r = {0};
	enum qerr e =
	    ocr_recognize(p->ocr, img.grey, img.width, img.height, img.width, (int)lround(scale * 72.0), &r, reterr);
	page_image_done(&img);
	if (e)
		return e;
	struct builder b;
	builder_init(&b);
	layout_from_ocr(&r, scale, &b);
	pg->ocr_confidence = r.mean_confidence;
	ocr_result_done(&r);
	g_free(pg->text);
	g_free(pg->words);
	g_free(pg->lines);
	builder_finish(&b, pg);
	g_free(pg->method);
	pg->method = g_strdup("ocr");
	return QERR_OK;
}

/* ---- form fields ---- */

static char *field_value(PopplerFormField *f, const char **type)
{
	switch (poppler_form_field_get_field_type(f)) {
	case POPPLER_FORM_FIELD_TEXT:
		*type = "text";
		return poppler_form_field_text_get_text(f);
	case POPPLER_FORM_FIELD_BUTTON:
		if (poppler_form_field_button_get_button_type(f) == POPPLER_FORM_BUTTON_PUSH)
			return NULL;
		*type =
		    poppler_form_field_button_get_button_type(f) == POPPLER_FORM_BUTTON_RADIO ? "radio" : "checkbox";
		return g_strdup(poppler_form_field_button_get_state(f) ? "on" : "off");
	case POPPLER_FORM_FIELD_CHOICE: {
		*type = "choice";
		GString *v = g_string_new(NULL);
		int n = poppler_form_field_choice_get_n_items(f);
		for (int i = 0; i < n && i < 1000; i++) {
			if (!poppler_form_field_choice_is_item_selected(f, i))
				continue;
			g_autofree char *item = poppler_form_field_choice_get_item(f, i);
			g_string_append_printf(v, "%s%s", v->len ? "\n" : "", item ? item : "");
		}
		if (v->len == 0 && poppler_form_field_choice_is_editable(f)) {
			g_autofree char *t = poppler_form_field_choice_get_text(f);
			g_string_append(v, t ? t : "");
		}
		return g_string_free(v, FALSE);
	}
	case POPPLER_FORM_FIELD_SIGNATURE:
		*type = "signature";
		return g_strdup("");
	default:
		return NULL;
	}
}

static void page_fields(PopplerPage *page, int index, double page_h, struct pdftext_field **fields, uint32_t *n)
{
	GList *map = poppler_page_get_form_field_mapping(page);
	for (GList *l = map; l && *n < PDFTEXT_MAX_FIELDS; l = l->next) {
		PopplerFormFieldMapping *m = l->data;
		const char *type = NULL;
		g_autofree char *value = field_value(m->field, &type);
		g_autofree char *name = poppler_form_field_get_name(m->field);
		if (!value || !type)
			continue;
		*fields = g_renew(struct pdftext_field, *fields, *n + 1);
		struct pdftext_field *f = &(*fields)[(*n)++];
		memset(f, 0, sizeof *f);
		f->name = pdftext_clean_string(name ? name : "");
		f->type = g_strdup(type);
		f->value = pdftext_clean_string(value);
		f->page = index + 1;
		/* form areas are in PDF space (origin bottom-left) */
		box_add(&f->box, true, m->area.x1, page_h - m->area.y2, m->area.x2, page_h - m->area.y1);
	}
	poppler_page_free_form_field_mapping(map);
}

/* ---- embedded files: structured invoices ---- */

#define MAX_CANDIDATES 16 /* embedded XML files read at most, per document */

/* The local name of the XML's root element starts at the returned pointer
 * (NULL when there is none in the first bytes): a BOM, white space, the XML
 * declaration, comments, processing instructions and a DOCTYPE are skipped. */
static const char *root_element(const char *s, const char *end)
{
	if (end - s >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	while (s < end) {
		while (s < end && g_ascii_isspace(*s))
			s++;
		if (end - s < 2 || *s != '<')
			return NULL;
		const char *close = NULL; /* the last character of what is skipped */
		if (s[1] == '?') {
			close = g_strstr_len(s, end - s, "?>");
			close = close ? close + 1 : NULL;
		} else if (end - s >= 4 && memcmp(s, "<!--", 4) == 0) {
			close = g_strstr_len(s + 4, end - s - 4, "-->");
			close = close ? close + 2 : NULL;
		} else if (s[1] == '!') {
			int depth = 0; /* a DOCTYPE's internal subset holds '>' inside [...] */
			for (const char *c = s; c < end && !close; c++) {
				depth += *c == '[' ? 1 : *c == ']' ? -1 : 0;
				if (*c == '>' && depth <= 0)
					close = c;
			}
		} else {
			return s + 1;
		}
		if (!close)
			return NULL;
		s = close + 1;
	}
	return NULL;
}

int pdftext_einvoice_score(const char *name, const void *data, size_t len)
{
	static const char *const standard[] = {"factur-x.xml", "zugferd-invoice.xml", "zugferd_invoice.xml",
	                                       "xrechnung.xml", "zugferd-invoice-1p0.xml"};
	if (name) {
		const char *base = strrchr(name, '/');
		base = base ? base + 1 : name;
		for (size_t i = 0; i < G_N_ELEMENTS(standard); i++)
			if (g_ascii_strcasecmp(base, standard[i]) == 0)
				return 2;
	}
	if (!data)
		return 0;
	const char *s = data, *end = s + MIN(len, 65536);
	const char *el = root_element(s, end);
	if (!el)
		return 0;
	const char *stop = el;
	while (stop < end && (g_ascii_isalnum(*stop) || *stop == ':' || *stop == '_' || *stop == '-' || *stop == '.'))
		stop++;
	const char *colon = memchr(el, ':', (size_t)(stop - el));
	const char *local = colon ? colon + 1 : el;
	size_t n = (size_t)(stop - local);
	/* the root's name and its standard's namespace: another program's <Invoice> is not one */
	static const struct {
		const char *root, *ns;
	} roots[] = {{"CrossIndustryInvoice", "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:"},
	             {"CrossIndustryDocument", "urn:ferd:CrossIndustryDocument:invoice:1p0"},
	             {"Invoice", "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"}};
	for (size_t i = 0; i < G_N_ELEMENTS(roots); i++)
		if (n == strlen(roots[i].root) && memcmp(local, roots[i].root, n) == 0 &&
		    memmem(el, (size_t)(end - el), roots[i].ns, strlen(roots[i].ns)))
			return 1;
	return 0;
}

static bool has_xml_suffix(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n >= 4 && g_ascii_strcasecmp(name + n - 4, ".xml") == 0;
}

struct capped {
	GByteArray *bytes;
	bool over;
};

static gboolean save_capped(const gchar *buf, gsize count, gpointer data, GError **error)
{
	struct capped *c = data;
	if (count > PDFTEXT_MAX_ATTACHMENT - c->bytes->len) {
		c->over = true;
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "too large");
		return FALSE;
	}
	g_byte_array_append(c->bytes, (const guint8 *)buf, (guint)count);
	return TRUE;
}

/* Reads one embedded file into a (at most PDFTEXT_MAX_ATTACHMENT bytes); false with a warning when it cannot. */
static bool read_attachment(struct pdftext *p, PopplerAttachment *pa, const char *shown, struct pdftext_attachment *a)
{
	/* A file spec without /Params /Size reads as (gsize)-1: unknown, so the copy's cap decides. */
	gsize declared = poppler_attachment_get_size(pa);
	if (declared != (gsize)-1 && declared > PDFTEXT_MAX_ATTACHMENT) {
		warn(p, "embedded file \"%s\" is larger than %u MiB; not read", shown, PDFTEXT_MAX_ATTACHMENT >> 20);
		return false;
	}
	struct capped c = {.bytes = g_byte_array_new()};
	g_autoptr(GError) gerr = NULL;
	if (!poppler_attachment_save_to_callback(pa, save_capped, &c, &gerr)) {
		if (c.over)
			warn(p, "embedded file \"%s\" is larger than %u MiB; not read", shown,
			     PDFTEXT_MAX_ATTACHMENT >> 20);
		else
			warn(p, "embedded file \"%s\" cannot be read: %s", shown,
			     gerr ? gerr->message : "unknown reason");
		g_byte_array_unref(c.bytes);
		return false;
	}
	a->len = c.bytes->len;
	g_byte_array_append(c.bytes, (const guint8 *)"", 1);
	a->data = g_byte_array_free(c.bytes, FALSE);
	return true;
}

struct ranked {
	int score, index; /* index into the files read */
};

static gint by_score(gconstpointer a, gconstpointer b)
{
	const struct ranked *x = a, *y = b;
	return y->score != x->score ? y->score - x->score : x->index - y->index; /* higher first, then PDF order */
}

void pdftext_attachments(struct pdftext *p, struct pdftext_attachment **ret, uint32_t *n_ret)
{
	*ret = NULL;
	*n_ret = 0;
	if (!poppler_document_has_attachments(p->pd))
		return;
	GList *list = poppler_document_get_attachments(p->pd);
	GArray *found = g_array_new(FALSE, TRUE, sizeof(struct pdftext_attachment));
	GArray *order = g_array_new(FALSE, FALSE, sizeof(struct ranked));
	int candidates = 0;
	for (GList *l = list; l; l = l->next) {
		PopplerAttachment *pa = l->data;
		const char *name = poppler_attachment_get_name(pa);
		/* names are the PDF's: any bytes, any length */
		g_autofree char *shown = pdftext_clip_utf8(g_utf8_make_valid(name ? name : "(unnamed)", -1), 200);
		int named = pdftext_einvoice_score(name, NULL, 0);
		if (!named && !has_xml_suffix(name))
			continue;
		if (++candidates > MAX_CANDIDATES) {
			warn(p, "more than %d embedded XML files; the rest are not read", MAX_CANDIDATES);
			break;
		}
		struct pdftext_attachment a = {0};
		if (!read_attachment(p, pa, shown, &a))
			continue;
		a.name = name ? pdftext_clip_utf8(g_utf8_make_valid(name, -1), PDFTEXT_MAX_NAME) : NULL;
		int score = MAX(named, pdftext_einvoice_score(NULL, a.data, a.len));
		if (!score) {
			pdftext_attachment_done(&a);
			continue;
		}
		struct ranked key = {score, (int)found->len};
		g_array_append_val(found, a);
		g_array_append_val(order, key);
	}
	g_list_free_full(list, g_object_unref);
	g_array_sort(order, by_score);
	uint32_t keep = MIN(order->len, PDFTEXT_MAX_ATTACHMENTS);
	if (order->len > keep)
		warn(p, "%u embedded invoice files; only the first %d are used", order->len, PDFTEXT_MAX_ATTACHMENTS);
	struct pdftext_attachment *out = keep ? g_new0(struct pdftext_attachment, keep) : NULL;
	for (uint32_t i = 0; i < order->len; i++) {
		int at = g_array_index(order, struct ranked, i).index;
		struct pdftext_attachment *a = &g_array_index(found, struct pdftext_attachment, at);
		if (i < keep)
			out[i] = *a;
		else
			pdftext_attachment_done(a);
	}
	g_array_free(order, TRUE);
	g_array_free(found, TRUE);
	*ret = out;
	*n_ret = keep;
}

/* ---- pages ---- */

/* The page's /Rotate. poppler-glib has no getter, but it maps the rectangle of
 * an annotation added in displayed coordinates back to unrotated ones; where a
 * probe rectangle lands tells the rotation. The probe is removed at once. */
static int page_rotation(PopplerDocument *pd, PopplerPage *page)
{
	PopplerRectangle in = {10, 20, 30, 60}, out = {0};
	PopplerAnnot *probe = poppler_annot_square_new(pd, &in);
	poppler_page_add_annot(page, probe);
	poppler_annot_get_rectangle(probe, &out);
	poppler_page_remove_annot(page, probe);
	g_object_unref(probe);
	if (fabs(out.x1 - in.x1) < 0.5 && fabs(out.y1 - in.y1) < 0.5)
		return 0;
	if (fabs(out.y1 - in.x1) < 0.5)
		return 90;
	if (fabs(out.x1 - in.y1) < 0.5)
		return 270;
	return 180;
}

static enum qerr page_text(struct pdftext *p, PopplerPage *page, int index, struct pdftext_page *pg, char **reterr)
{
	text_layer(page, pg);
	size_t alnum = count_alnum(pg->text);
	bool scan = alnum < USABLE_ALNUM || (alnum < SHORT_TEXT_ALNUM && mostly_image(page, pg->width, pg->height));
	pg->method = g_strdup(alnum > 0 ? "text" : "none");
	if (scan && p->opt.ocr) {
		enum qerr e = ocr_page(p, page, index, pg, reterr);
		if (e)
			return e;
	}
	size_t n = strlen(pg->text);
	p->text_bytes += n;
	if (n > PDFTEXT_MAX_PAGE_TEXT)
		return qerr_set(reterr, QERR_TOO_LARGE, "page %d has more than %u MiB of text", index + 1,
		                PDFTEXT_MAX_PAGE_TEXT >> 20);
	if (p->text_bytes > PDFTEXT_MAX_TEXT)
		return qerr_set(reterr, QERR_TOO_LARGE, "the PDF's text exceeds %u MiB", PDFTEXT_MAX_TEXT >> 20);
	return QERR_OK;
}

enum qerr pdftext_page_extract(struct pdftext *p, int index, struct pdftext_page *pg, struct pdftext_field **fields,
                               uint32_t *n_fields, char **reterr)
{
	memset(pg, 0, sizeof *pg);
	pg->ocr_confidence = -1;
	if (index < 0 || index >= p->meta.total_pages)
		return qerr_set(reterr, QERR_INTERNAL, "page %d does not exist", index + 1);
	PopplerPage *page = poppler_document_get_page(p->pd, index);
	if (!page)
		return qerr_set(reterr, QERR_PARSE_FAILED, "page %d of the PDF cannot be read", index + 1);
	poppler_page_get_size(page, &pg->width, &pg->height);
	pg->rotation = page_rotation(p->pd, page);
	if (!(pg->width > 0 && pg->height > 0 && pg->width < 1e6 && pg->height < 1e6)) {
		pg->width = 612;
		pg->height = 792;
		warn(p, "page %d has no valid size; taken as US Letter", index + 1);
	}
	enum qerr e = page_text(p, page, index, pg, reterr);
	if (!e)
		e = diag_check(reterr);
	if (!e)
		page_fields(page, index, pg->rotation % 180 ? pg->width : pg->height, fields, n_fields);
	g_object_unref(page);
	if (e)
		pdftext_page_done(pg);
	return e;
}

enum qerr pdftext_extract(const void *pdf, size_t len, const struct pdftext_options *opt, struct pdftext_doc **ret,
                          char **reterr)
{
	struct pdftext *p = NULL;
	enum qerr e = pdftext_open(pdf, len, opt, &p, reterr);
	if (e)
		return e;
	struct pdftext_doc *doc = g_new0(struct pdftext_doc, 1);
	doc->total_pages = p->meta.total_pages;
	doc->title = dup_or_null(p->meta.title);
	doc->author = dup_or_null(p->meta.author);
	doc->producer = dup_or_null(p->meta.producer);
	doc->creation_date = dup_or_null(p->meta.creation_date);
	doc->pages = g_new0(struct pdftext_page, doc->total_pages);
	for (int i = 0; !e && i < doc->total_pages; i++) {
		e = pdftext_page_extract(p, i, &doc->pages[i], &doc->fields, &doc->n_fields, reterr);
		if (!e)
			doc->n_pages = i + 1;
	}
	if (!e)
		pdftext_attachments(p, &doc->attachments, &doc->n_attachments);
	doc->warnings = g_new0(char *, p->meta.n_warnings + 1);
	for (uint32_t i = 0; i < p->meta.n_warnings; i++)
		doc->warnings[doc->n_warnings++] = g_strdup(p->meta.warnings[i]);
	pdftext_close(p);
	if (e) {
		pdftext_doc_free(doc);
		return e;
	}
	*ret = doc;
	return QERR_OK;
}
