/* bench_pdfscale: does Quire's own PDF processing grow linearly with the input?
 *
 *   bench_pdfscale [--steps N] [--scale K] [--trait T]
 *
 * Writes PDFs of one trait each at sizes that double (K times a base size,
 * then 2K, 4K, ...): many single-glyph text runs on long lines, form-field
 * widgets with appearance streams (with and without an /AcroForm, spread over
 * 8 pages as in scanned forms filled in by a program), many annotations on one
 * page, and many small pages. Each is read by pdftext_extract in this process
 * (Poppler, words and boxes, rotation, form fields, attachments; OCR off, so
 * that the figure is Quire's processing, not Tesseract's) and by `pdftotext`
 * for reference; best of 3 wall times. Printed per size: milliseconds, time per
 * unit, the growth exponent against the previous size (log2 of the time
 * ratio when the size doubles: 1.0 is linear, 2.0 quadratic), and the words
 * each found (Quire: words of the pages plus form-field values). The last
 * line of each trait compares Quire's exponent with pdftotext's. Prints
 * figures only. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "extractors/pdftext.h"
#include "tests/bench/bench_machine.h"
#include "tests/unit/test_pdf_fixtures.h"

enum trait { GLYPH_RUNS, WIDGETS, WIDGETS_ACROFORM, ANNOTATIONS, SMALL_PAGES, TRAIT_COUNT };

static const struct {
	const char *name, *unit;
	int base; /* units at scale 1 */
} traits[TRAIT_COUNT] = {
    [GLYPH_RUNS] = {"single-glyph runs, lines of 150", "run", 1500},
    [WIDGETS] = {"widgets with appearances, no AcroForm, 8 pages", "widget", 250},
    [WIDGETS_ACROFORM] = {"widgets in an AcroForm, 8 pages", "widget", 250},
    [ANNOTATIONS] = {"annotations on one page", "annotation", 250},
    [SMALL_PAGES] = {"small pages of one line", "page", 100},
};

/* A page's content: units single-glyph runs, each placed by its own matrix. */
static GBytes *glyph_content(int units)
{
	GString *c = g_string_new("BT /F1 5 Tf\n");
	for (int i = 0; i < units; i++)
		g_string_append_printf(c, "1 0 0 1 %.1f %.1f Tm (%c) Tj\n", 20 + (i % 150) * 3.8,
		                       1580 - (i / 150) * 7.0, 'a' + i % 26);
	g_string_append(c, "ET");
	GBytes *b = fixture_stream(NULL, c->str, c->len);
	g_string_free(c, TRUE);
	return b;
}

static GBytes *line_content(int page)
{
	g_autofree char *c = g_strdup_printf("BT /F1 11 Tf 40 500 Td (Page %d of a long document) Tj ET", page + 1);
	return fixture_stream(NULL, c, strlen(c));
}

/* Objects: 1 catalog, 2 pages, 3 font, then per page its page and content,
 * then per annotation its dictionary and (widgets) its appearance stream. */
static GBytes *make_pdf(enum trait t, int units)
{
	int pages = t == SMALL_PAGES ? units : (t == WIDGETS || t == WIDGETS_ACROFORM) ? 8 : 1;
	int annots = t == GLYPH_RUNS || t == SMALL_PAGES ? 0 : units;
	bool widget = t == WIDGETS || t == WIDGETS_ACROFORM;
	int first_annot = 4 + 2 * pages;
	GPtrArray *objs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	GString *fields = g_string_new(NULL);
	for (int a = 0; widget && a < annots; a++)
		g_string_append_printf(fields, "%d 0 R ", first_annot + 2 * a);
	g_autofree char *form =
	    t == WIDGETS_ACROFORM ? g_strdup_printf("/AcroForm << /Fields [%s] >>", fields->str) : g_strdup("");
	g_ptr_array_add(objs, fixture_obj("<< /Type /Catalog /Pages 2 0 R %s >>", form));
	GString *kids = g_string_new(NULL);
	for (int p = 0; p < pages; p++)
		g_string_append_printf(kids, "%d 0 R ", 4 + 2 * p);
	g_ptr_array_add(objs, fixture_obj("<< /Type /Pages /Kids [%s] /Count %d >>", kids->str, pages));
	g_ptr_array_add(objs, fixture_obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"));
	int per_page = (annots + pages - 1) / pages;
	for (int p = 0; p < pages; p++) {
		GString *refs = g_string_new(NULL);
		for (int a = p * per_page; a < MIN(annots, (p + 1) * per_page); a++)
			g_string_append_printf(refs, "%d 0 R ", first_annot + 2 * a);
		g_ptr_array_add(objs, fixture_obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
		                                  "/Resources << /Font << /F1 3 0 R >> >> /Annots [%s] >>",
		                                  t == SMALL_PAGES ? 300 : 1200, t == SMALL_PAGES ? 600 : 1600,
		                                  5 + 2 * p, refs->str));
		g_ptr_array_add(objs, t == GLYPH_RUNS ? glyph_content(units) : line_content(p));
		g_string_free(refs, TRUE);
	}
	for (int a = 0; a < annots; a++) {
		double x = 20 + (a % 10) * 115, y = 1560 - ((a % per_page) / 10) * 14.0;
		if (widget) {
			g_ptr_array_add(
			    objs, fixture_obj("<< /Type /Annot /Subtype /Widget /FT /Tx /T (field%d) /V (Value %d) "
			                      "/Rect [%.1f %.1f %.1f %.1f] /F 4 /AP << /N %d 0 R >> >>",
			                      a, a, x, y, x + 110, y + 12, first_annot + 2 * a + 1));
			g_autofree char *ap = g_strdup_printf("BT /F1 8 Tf 2 3 Td (Value %d) Tj ET", a);
			g_autofree char *dict = g_strdup("/Type /XObject /Subtype /Form /BBox [0 0 110 12] "
			                                 "/Resources << /Font << /F1 3 0 R >> >>");
			g_ptr_array_add(objs, fixture_stream(dict, ap, strlen(ap)));
		} else {
			g_ptr_array_add(objs,
			                fixture_obj("<< /Type /Annot /Subtype /Square /Rect [%.1f %.1f %.1f %.1f] "
			                            "/Contents (Note %d) >>",
			                            x, y, x + 110, y + 12, a));
			g_ptr_array_add(objs, fixture_obj("null"));
		}
	}
	GBytes *pdf = fixture_raw((GBytes *const *)objs->pdata, objs->len, NULL);
	g_ptr_array_unref(objs);
	g_string_free(fields, TRUE);
	g_string_free(kids, TRUE);
	return pdf;
}

static double now(void)
{
	return (double)g_get_monotonic_time() / 1e6;
}

static size_t quire_words; /* words and form-field values of the last extraction */

static double quire_once(GBytes *pdf)
{
	gsize len = 0;
	const void *d = g_bytes_get_data(pdf, &len);
	struct pdftext_options opt = {.max_pages = 100000};
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	double t0 = now();
	if (pdftext_extract(d, len, &opt, &doc, &err) != QERR_OK)
		g_error("extraction failed: %s", err);
	double t = now() - t0;
	quire_words = doc->n_fields;
	for (int i = 0; i < doc->n_pages; i++)
		quire_words += doc->pages[i].n_words;
	pdftext_doc_free(doc);
	return t;
}

/* Words (runs of non-space) in the text file at path. */
static size_t words_in(const char *path)
{
	g_autofree char *text = NULL;
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	size_t n = 0;
	for (const char *c = text; *c; c++)
		n += !g_ascii_isspace(*c) && (c == text || g_ascii_isspace(c[-1]));
	return n;
}

static double pdftotext_once(const char *path, const char *out)
{
	char *argv[] = {(char *)"pdftotext", (char *)path, (char *)out, NULL};
	int status = 0;
	double t0 = now();
	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
	                  &status, NULL) ||
	    !g_spawn_check_wait_status(status, NULL))
		return -1;
	return now() - t0;
}

static void run_trait(enum trait t, int scale, int steps, const char *dir)
{
	printf("%s\n  %8s %10s %12s %8s %12s %12s %8s %9s %9s\n", traits[t].name, traits[t].unit, "quire ms", "us/unit",
	       "growth", "pdftotext ms", "us/unit", "growth", "words(q)", "words(p)");
	g_autofree char *path = g_build_filename(dir, "scale.pdf", NULL);
	g_autofree char *out = g_build_filename(dir, "scale.txt", NULL);
	double prev_q = 0, prev_p = 0, first_q = 0, first_p = 0, last_q = 0, last_p = 0;
	for (int s = 0; s < steps; s++) {
		int units = traits[t].base * scale << s;
		g_autoptr(GBytes) pdf = make_pdf(t, units);
		gsize len = 0;
		const char *d = g_bytes_get_data(pdf, &len);
		if (!g_file_set_contents(path, d, (gssize)len, NULL))
			g_error("cannot write %s", path);
		double q = 1e9, p = 1e9;
		for (int r = 0; r < 3; r++) {
			q = MIN(q, quire_once(pdf));
			p = MIN(p, pdftotext_once(path, out));
		}
		char gq[16] = "", gp[16] = "";
		if (s) {
			g_snprintf(gq, sizeof gq, "%.2f", log2(q / prev_q));
			g_snprintf(gp, sizeof gp, "%.2f", log2(p / prev_p));
		}
		printf("  %8d %10.1f %12.1f %8s %12.1f %12.1f %8s %9zu %9zu\n", units, q * 1e3, q * 1e6 / units, gq,
		       p * 1e3, p * 1e6 / units, gp, quire_words, words_in(out));
		if (s == 0) {
			first_q = q;
			first_p = p;
		}
		prev_q = last_q = q;
		prev_p = last_p = p;
	}
	if (steps > 1)
		printf("  growth over %dx the size: quire %.2f, pdftotext %.2f (1.00: linear; 2.00: quadratic)\n\n",
		       1 << (steps - 1), log2(last_q / first_q) / (steps - 1), log2(last_p / first_p) / (steps - 1));
	g_unlink(path);
	g_unlink(out);
}

int main(int argc, char **argv)
{
	int steps = 4, scale = 1, only = -1;
	GOptionEntry entries[] = {{"steps", 0, 0, G_OPTION_ARG_INT, &steps, "Sizes per trait (each doubles)", "N"},
	                          {"trait", 0, 0, G_OPTION_ARG_INT, &only, "Only this trait (0-4, as printed)", "T"},
	                          {"scale", 0, 0, G_OPTION_ARG_INT, &scale, "Multiplier of the smallest size", "K"},
	                          {NULL, 0, 0, 0, NULL, NULL, NULL}};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- growth of PDF processing time with the input");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, NULL) || steps < 1 || steps > 12 || scale < 1 || scale > 64)
		return 2;
	g_autofree char *dir = g_dir_make_tmp("quire-scale-XXXXXX", NULL);
	if (!dir)
		return 1;
	bench_print_machine();
	putchar('\n');
	for (int t = 0; t < TRAIT_COUNT; t++)
		if (only < 0 || only == t)
			run_trait((enum trait)t, scale, steps, dir);
	g_rmdir(dir);
	return 0;
}
