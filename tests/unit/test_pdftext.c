/* Unit tests of extractors/pdftext (and ocr): generated PDFs with known
 * content, checked for text, reading order, boxes, metadata, rotation, form
 * fields, passwords and OCR of image-only pages. */
#include "extractors/ocr.h"
#include "extractors/pdftext.h"

#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/sandbox.h"
#include "tests/unit/test_pdf_fixtures.h"

static const struct pdftext_options no_ocr = {.max_pages = 100};
static const struct pdftext_options with_ocr = {.max_pages = 100, .ocr = true};

static struct pdftext_doc *extract(GBytes *pdf, const struct pdftext_options *opt)
{
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	enum qerr e = pdftext_extract(data, len, opt, &doc, &err);
	if (e)
		g_error("extraction failed: %s", err);
	return doc;
}

/* The word whose text is exactly w on page p, or NULL. */
static const struct pdftext_word *find_word(const struct pdftext_page *p, const char *w)
{
	for (uint32_t i = 0; i < p->n_words; i++)
		if (p->words[i].len == strlen(w) && memcmp(p->text + p->words[i].start, w, p->words[i].len) == 0)
			return &p->words[i];
	return NULL;
}

/* Structural invariants every page must keep. */
static void check_layout(const struct pdftext_page *p)
{
	size_t tl = strlen(p->text);
	uint32_t prev_end = 0;
	for (uint32_t i = 0; i < p->n_words; i++) {
		const struct pdftext_word *w = &p->words[i];
		g_assert_cmpuint(w->start, >=, prev_end);
		g_assert_cmpuint((size_t)w->start + w->len, <=, tl);
		g_assert_cmpuint(w->len, >, 0);
		g_assert_cmpfloat(w->box.x0, <=, w->box.x1);
		g_assert_cmpfloat(w->box.y0, <=, w->box.y1);
		g_assert_cmpfloat(w->box.x1, <=, p->width + 1);
		g_assert_cmpfloat(w->box.y1, <=, p->height + 1);
		prev_end = w->start + w->len;
	}
	uint32_t next = 0;
	for (uint32_t i = 0; i < p->n_lines; i++) {
		g_assert_cmpuint(p->lines[i].first_word, ==, next);
		g_assert_cmpuint(p->lines[i].n_words, >, 0);
		next += p->lines[i].n_words;
	}
	g_assert_cmpuint(next, ==, p->n_words);
}

static void draw_pages(cairo_t *cr, int page, void *data)
{
	char buf[64];
	g_snprintf(buf, sizeof buf, "This is page %d of three", page + 1);
	fixture_text(cr, 72, 100, 14, buf);
	fixture_text(cr, 72, 130, 10, "Second line of the page");
}

static void test_pages_metadata(void)
{
	g_autoptr(GBytes) pdf = fixture_cairo(3, 595, 842, "Quarterly report", "Ada Lovelace", draw_pages, NULL);
	struct pdftext_doc *doc = extract(pdf, &no_ocr);
	g_assert_cmpint(doc->total_pages, ==, 3);
	g_assert_cmpint(doc->n_pages, ==, 3);
	g_assert_cmpstr(doc->title, ==, "Quarterly report");
	g_assert_cmpstr(doc->author, ==, "Ada Lovelace");
	g_assert_nonnull(doc->producer);
	g_assert_true(g_str_has_prefix(doc->creation_date, "2026-03-14"));
	for (int i = 0; i < 3; i++) {
		const struct pdftext_page *p = &doc->pages[i];
		char want[64];
		g_snprintf(want, sizeof want, "This is page %d of three\nSecond line of the page", i + 1);
		g_assert_cmpstr(p->text, ==, want);
		g_assert_cmpstr(p->method, ==, "text");
		g_assert_cmpint(p->rotation, ==, 0);
		g_assert_cmpfloat_with_epsilon(p->width, 595, 0.01);
		g_assert_cmpfloat_with_epsilon(p->height, 842, 0.01);
		check_layout(p);
		g_assert_cmpuint(p->n_lines, ==, 2);
		g_assert_cmpuint(p->n_words, ==, 11);
		/* "This" starts at x=72, its baseline at y=100 from the top, 14 pt text */
		const struct pdftext_word *w = find_word(p, "This");
		g_assert_nonnull(w);
		g_assert_cmpfloat(fabs(w->box.x0 - 72), <, 1.5);
		g_assert_cmpfloat(w->box.y0, >, 84);
		g_assert_cmpfloat(w->box.y1, <, 106);
		g_assert_cmpfloat(w->confidence, ==, -1);
		/* the first line is above the second */
		g_assert_cmpfloat(p->lines[0].box.y1, <=, p->lines[1].box.y0 + 1);
	}
	pdftext_doc_free(doc);
}

static void test_rotated(void)
{
	const char *lines[] = {"Rotated page text", "second row", NULL};
	for (int rot = 0; rot < 360; rot += 90) {
		g_autofree char *extra = g_strdup_printf("/Rotate %d", rot);
		g_autoptr(GBytes) pdf = fixture_simple(lines, extra, NULL);
		struct pdftext_doc *doc = extract(pdf, &no_ocr);
		const struct pdftext_page *p = &doc->pages[0];
		g_assert_cmpint(p->rotation, ==, rot);
		g_assert_cmpfloat(p->width, ==, rot % 180 ? 792 : 612);
		g_assert_cmpfloat(p->height, ==, rot % 180 ? 612 : 792);
		g_assert_cmpstr(p->text, ==, "Rotated page text\nsecond row");
		check_layout(p);
		/* the boxes are in displayed coordinates: at 90 degrees the line that was
		 * at the top left of the unrotated page is at the right edge */
		const struct pdftext_word *w = find_word(p, "Rotated");
		if (rot == 90)
			g_assert_cmpfloat(w->box.x0, >, 600);
		else if (rot == 0)
			g_assert_cmpfloat(w->box.x0, <, 100);
		pdftext_doc_free(doc);
	}
}

static void draw_columns(cairo_t *cr, int page, void *data)
{
	for (int i = 0; i < 12; i++) {
		char buf[64];
		g_snprintf(buf, sizeof buf, "left column line %d", i + 1);
		fixture_text(cr, 50, 100 + 14.0 * i, 10, buf);
		g_snprintf(buf, sizeof buf, "right column line %d", i + 1);
		fixture_text(cr, 320, 100 + 14.0 * i, 10, buf);
	}
}

static void test_two_columns(void)
{
	g_autoptr(GBytes) pdf = fixture_cairo(1, 595, 842, NULL, NULL, draw_columns, NULL);
	struct pdftext_doc *doc = extract(pdf, &no_ocr);
	const char *t = doc->pages[0].text;
	/* reading order: the whole left column, then the whole right one */
	const char *last_left = strstr(t, "left column line 12");
	const char *first_right = strstr(t, "right column line 1\n");
	g_assert_nonnull(last_left);
	g_assert_nonnull(first_right);
	g_assert_true(last_left < first_right);
	g_assert_true(strstr(t, "left column line 1\nleft column line 2\n") != NULL);
	check_layout(&doc->pages[0]);
	pdftext_doc_free(doc);
}

static const char *const table[4][3] = {
    {"Item", "Quantity", "Price"},
    {"Paper", "12", "3.40"},
    {"Toner", "2", "88.00"},
    {"Stapler", "1", "14.99"},
};

static void draw_table(cairo_t *cr, int page, void *data)
{
	for (int r = 0; r < 4; r++) {
		for (int c = 0; c < 3; c++)
			fixture_text(cr, 60 + 150.0 * c, 200 + 20.0 * r, 11, table[r][c]);
		cairo_move_to(cr, 55, 205 + 20.0 * r);
		cairo_line_to(cr, 500, 205 + 20.0 * r);
		cairo_stroke(cr);
	}
}

static void test_table(void)
{
	g_autoptr(GBytes) pdf = fixture_cairo(1, 595, 842, NULL, NULL, draw_table, NULL);
	struct pdftext_doc *doc = extract(pdf, &no_ocr);
	const struct pdftext_page *p = &doc->pages[0];
	check_layout(p);
	/* every cell is a word boxed where it was drawn: that is what the review UI
	 * highlights, whatever order the cells are read in */
	for (int r = 0; r < 4; r++) {
		for (int c = 0; c < 3; c++) {
			const struct pdftext_word *w = find_word(p, table[r][c]);
			g_assert_nonnull(w);
			g_assert_cmpfloat(fabs(w->box.x0 - (60 + 150.0 * c)), <, 1.5);
			g_assert_cmpfloat(w->box.y1, >, 200 + 20.0 * r - 1);
			g_assert_cmpfloat(w->box.y0, <, 200 + 20.0 * r);
		}
	}
	/* no two cells are glued into one word */
	g_assert_null(strstr(p->text, "ItemQuantity"));
	g_assert_null(strstr(p->text, "QuantityPrice"));
	pdftext_doc_free(doc);
}

static void draw_scripts(cairo_t *cr, int page, void *data)
{
	fixture_text(cr, 72, 100, 12, "Ελληνικά γράμματα: Αθήνα");
	fixture_text(cr, 72, 130, 12, "Кириллица: Москва, счёт");
	fixture_text(cr, 72, 160, 12, "Accents: àéîõü ÇÑß Ærøskøbing");
}

static void test_non_latin(void)
{
	g_autoptr(GBytes) pdf = fixture_cairo(1, 595, 842, NULL, NULL, draw_scripts, NULL);
	struct pdftext_doc *doc = extract(pdf, &no_ocr);
	g_assert_cmpstr(doc->pages[0].text, ==,
	                "Ελληνικά γράμματα: Αθήνα\nКириллица: Москва, счёт\nAccents: àéîõü ÇÑß Ærøskøbing");
	g_assert_nonnull(find_word(&doc->pages[0], "Москва,"));
	check_layout(&doc->pages[0]);
	pdftext_doc_free(doc);
}

static const char *const scan_lines[] = {"INVOICE 4711", "Total amount 1234.56 EUR", "Thank you for your order", NULL};

static void draw_mixed(cairo_t *cr, int page, void *data)
{
	if (page == 0)
		fixture_text(cr, 72, 100, 12, "A page with a real text layer");
	else
		fixture_scan(cr, 595, 842, scan_lines);
}

static void test_ocr_image_page(void)
{
	g_autoptr(GBytes) pdf = fixture_cairo(2, 595, 842, NULL, NULL, draw_mixed, NULL);
	/* without OCR the scanned page has no text */
	struct pdftext_doc *doc = extract(pdf, &no_ocr);
	g_assert_cmpstr(doc->pages[1].method, ==, "none");
	g_assert_cmpstr(doc->pages[1].text, ==, "");
	pdftext_doc_free(doc);
	/* with it, only the image-only page is OCRed */
	doc = extract(pdf, &with_ocr);
	g_assert_cmpstr(doc->pages[0].method, ==, "text");
	g_assert_cmpstr(doc->pages[0].text, ==, "A page with a real text layer");
	const struct pdftext_page *p = &doc->pages[1];
	g_assert_cmpstr(p->method, ==, "ocr");
	g_assert_cmpstr(p->text, ==, "INVOICE 4711\nTotal amount 1234.56 EUR\nThank you for your order");
	g_assert_cmpfloat(p->ocr_confidence, >, 80);
	check_layout(p);
	g_assert_cmpuint(p->n_lines, ==, 3);
	const struct pdftext_word *w = find_word(p, "1234.56");
	g_assert_nonnull(w);
	g_assert_cmpfloat(w->confidence, >, 50);
	/* drawn at 16 pt, baseline y=128, after "Total amount " from x=72 */
	g_assert_cmpfloat(w->box.y1, >, 120);
	g_assert_cmpfloat(w->box.y0, <, 128);
	g_assert_cmpfloat(w->box.x0, >, 130);
	pdftext_doc_free(doc);
}

static void test_form_fields(void)
{
	const char *lines[] = {"Application form", NULL};
	GBytes *objs[] = {
	    fixture_obj("<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [6 0 R 7 0 R] >> >>"),
	    fixture_obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
	    fixture_obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
	                "/Resources << /Font << /F1 5 0 R >> >> /Annots [6 0 R 7 0 R] >>"),
	    fixture_stream(NULL, "BT /F1 12 Tf 72 720 Td (Application form) Tj ET", 47),
	    fixture_obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"),
	    fixture_obj("<< /Type /Annot /Subtype /Widget /FT /Tx /T (applicant) /V (Grace Hopper) "
	                "/Rect [100 600 300 620] /P 3 0 R >>"),
	    fixture_obj("<< /Type /Annot /Subtype /Widget /FT /Btn /T (consent) /V /Yes /AS /Yes "
	                "/Rect [100 560 115 575] /P 3 0 R /AP << /N << /Yes 8 0 R /Off 8 0 R >> >> >>"),
	    fixture_stream("/Type /XObject /Subtype /Form /BBox [0 0 15 15]", "", 0),
	};
	(void)lines;
	g_autoptr(GBytes) pdf = fixture_raw(objs, G_N_ELEMENTS(objs), NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(objs); i++)
		g_bytes_unref(objs[i]);
	struct pdftext_doc *doc = extract(pdf, &no_ocr);
	g_assert_cmpuint(doc->n_fields, ==, 2);
	const struct pdftext_field *f = &doc->fields[0];
	if (strcmp(f->name, "applicant") != 0)
		f = &doc->fields[1];
	g_assert_cmpstr(f->name, ==, "applicant");
	g_assert_cmpstr(f->type, ==, "text");
	g_assert_cmpstr(f->value, ==, "Grace Hopper");
	g_assert_cmpint(f->page, ==, 1);
	/* Rect [100 600 300 620] in PDF space is y 172..192 from the top */
	g_assert_cmpfloat(fabs(f->box.x0 - 100), <, 0.01);
	g_assert_cmpfloat(fabs(f->box.y0 - 172), <, 0.01);
	const struct pdftext_field *g = f == &doc->fields[0] ? &doc->fields[1] : &doc->fields[0];
	g_assert_cmpstr(g->name, ==, "consent");
	g_assert_cmpstr(g->type, ==, "checkbox");
	g_assert_cmpstr(g->value, ==, "on");
	pdftext_doc_free(doc);
}

static void test_password(void)
{
	g_autoptr(GBytes) pdf = fixture_encrypted("Confidential salary statement", "s3cret");
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(pdftext_extract(data, len, &no_ocr, &doc, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "password-protected"));
	struct pdftext_options wrong = no_ocr;
	wrong.password = "guess";
	g_assert_cmpint(pdftext_extract(data, len, &wrong, &doc, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "password given does not open"));
	struct pdftext_options right = no_ocr;
	right.password = "s3cret";
	g_assert_cmpint(pdftext_extract(data, len, &right, &doc, &err), ==, QERR_OK);
	g_assert_cmpstr(doc->pages[0].text, ==, "Confidential salary statement");
	pdftext_doc_free(doc);
	/* the same through the sandbox, password given at submit */
	struct sandbox_limits lim = {.timeout_s = 30, .memory_bytes = (size_t)2048 << 20, .max_pages = 10};
	g_assert_cmpint(sandbox_extract(data, len, "s3cret", &lim, &doc, &err), ==, QERR_OK);
	g_assert_cmpstr(doc->pages[0].text, ==, "Confidential salary statement");
	pdftext_doc_free(doc);
	g_assert_cmpint(sandbox_extract(data, len, NULL, &lim, &doc, &err), ==, QERR_KEY);
}

static void test_json_round_trip(void)
{
	g_autoptr(GBytes) pdf = fixture_cairo(2, 595, 842, "Title", NULL, draw_pages, NULL);
	struct pdftext_doc *doc = extract(pdf, &no_ocr);
	struct json *j = pdftext_doc_to_json(doc);
	g_autofree char *text = json_format(j, false);
	g_assert_nonnull(strstr(text, "\"words\":[[0,4,"));
	struct pdftext_doc *back = NULL;
	g_assert_cmpint(pdftext_doc_from_json(j, &back, NULL), ==, QERR_OK);
	g_assert_cmpint(back->n_pages, ==, 2);
	g_assert_cmpstr(back->pages[1].text, ==, doc->pages[1].text);
	g_assert_cmpstr(back->pages[1].method, ==, "text");
	/* the words come back with their boxes, for a layout built later */
	g_assert_cmpuint(back->pages[1].n_words, ==, doc->pages[1].n_words);
	g_assert_cmpuint(back->pages[1].n_words, >, 0);
	g_assert_cmpuint(back->pages[1].words[0].len, ==, doc->pages[1].words[0].len);
	g_assert_cmpfloat_with_epsilon(back->pages[1].words[0].box.x1, doc->pages[1].words[0].box.x1, 0.06);
	g_assert_cmpstr(back->title, ==, "Title");
	g_assert_null(back->author);
	json_free(j);
	pdftext_doc_free(back);
	pdftext_doc_free(doc);
}

/* Letters OCR reads for digits are mended in numbers, amounts and dates, and only there. */
static void test_ocr_mend_digits(void)
{
	static const char *const cases[][2] = {
	    {"1O0,0O", "100,00"},
	    {"l9.O5.2014", "19.05.2014"},
	    {"1.2I4,5o€", "1.214,50€"},
	    {"(3|5.00)", "(315.00)"},
	    {"EUR", "EUR"},
	    {"enl6931", "enl6931"},
	    {"Nr.", "Nr."},
	    {"lO", "lO"},
	    {"Total:", "Total:"},
	    {"2018-O3-05", "2018-03-05"},
	    {"1OOO", "1OOO"},
	    {"19,00", "19,00"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *w = g_strdup(cases[i][0]);
		bool changed = ocr_mend_digits(w);
		g_assert_cmpstr(w, ==, cases[i][1]);
		g_assert_cmpint(changed, ==, strcmp(cases[i][0], cases[i][1]) != 0);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pdftext/pages-and-metadata", test_pages_metadata);
	g_test_add_func("/pdftext/rotated-pages", test_rotated);
	g_test_add_func("/pdftext/two-columns", test_two_columns);
	g_test_add_func("/pdftext/table", test_table);
	g_test_add_func("/pdftext/non-latin", test_non_latin);
	g_test_add_func("/pdftext/ocr-image-only-page", test_ocr_image_page);
	g_test_add_func("/pdftext/ocr-mend-digits", test_ocr_mend_digits);
	g_test_add_func("/pdftext/form-fields", test_form_fields);
	g_test_add_func("/pdftext/password", test_password);
	g_test_add_func("/pdftext/json-round-trip", test_json_round_trip);
	return g_test_run();
}
