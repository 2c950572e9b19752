/* bench_reader: the cost of the invoice page reader in field extraction.
 *
 *   bench_reader [--docs N] [--rounds N]
 *
 * Draws N one-page invoices with cairo (four languages, a table of items and a
 * totals block), extracts their text once, then times the field step
 * (layout_build + rules_extract) on one core with the built-in invoice type,
 * whose hints run the page reader, and with the same type without the reader
 * (the schema's label rules alone) as the reference, in the same run. Prints
 * documents per second of each, the ratio, and what the field step alone
 * would allow per minute on one core; it asserts nothing about speed. The
 * end-to-end figure (`quire eval` on the generated set with --concurrency 2)
 * is in the README. */
#include <cairo-pdf.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "extractors/doctype.h"
#include "extractors/layout.h"
#include "extractors/pdftext.h"
#include "extractors/rules.h"

static const char *const labels[4][6] = {
    {"Invoice no.", "Invoice date", "Due date", "Subtotal", "VAT 20%", "Total due"},
    {"Rechnungsnummer", "Rechnungsdatum", "Fällig am", "Nettobetrag", "MwSt. 19 %", "Gesamtbetrag"},
    {"Facture n°", "Date de facture", "Échéance", "Total HT", "TVA 20 %", "Total TTC"},
    {"Factuurnummer", "Factuurdatum", "Vervaldatum", "Subtotaal", "BTW 21%", "Totaal te betalen"},
};
static const double rates[4] = {20, 19, 20, 21};

static struct pdftext_doc *draw(int i, const char *dir)
{
	g_autofree char *path = g_strdup_printf("%s/%d.pdf", dir, i);
	cairo_surface_t *s = cairo_pdf_surface_create(path, 595, 842);
	cairo_t *cr = cairo_create(s);
	int l = i % 4;
	char buf[128];
	cairo_set_font_size(cr, 18);
	cairo_move_to(cr, 60, 60);
	g_snprintf(buf, sizeof buf, "Company %d GmbH", i);
	cairo_show_text(cr, buf);
	cairo_set_font_size(cr, 10);
	const char *vals[3] = {"INV-1001", "14.03.2026", "13.04.2026"};
	for (int k = 0; k < 3; k++) {
		cairo_move_to(cr, 350, 120 + 14 * k);
		cairo_show_text(cr, labels[l][k]);
		cairo_move_to(cr, 470, 120 + 14 * k);
		cairo_show_text(cr, vals[k]);
	}
	double net = 0;
	for (int k = 0; k < 12; k++) {
		double amount = 10.0 * (k + 1) + i % 7;
		net += amount;
		cairo_move_to(cr, 60, 240 + 14 * k);
		g_snprintf(buf, sizeof buf, "Item number %d of the order", k + 1);
		cairo_show_text(cr, buf);
		cairo_move_to(cr, 480, 240 + 14 * k);
		g_snprintf(buf, sizeof buf, "%.2f", amount);
		cairo_show_text(cr, buf);
	}
	double tax = net * rates[l] / 100;
	double v[3] = {net, tax, net + tax};
	for (int k = 0; k < 3; k++) {
		cairo_move_to(cr, 330, 430 + 14 * k);
		cairo_show_text(cr, labels[l][3 + k]);
		cairo_move_to(cr, 480, 430 + 14 * k);
		g_snprintf(buf, sizeof buf, "%.2f EUR", v[k]);
		cairo_show_text(cr, buf);
	}
	cairo_show_page(cr);
	cairo_destroy(cr);
	cairo_surface_destroy(s);
	g_autofree char *data = NULL;
	gsize len = 0;
	struct pdftext_doc *doc = NULL;
	struct pdftext_options opt = {.max_pages = 4};
	if (!g_file_get_contents(path, &data, &len, NULL) || pdftext_extract(data, len, &opt, &doc, NULL))
		return NULL;
	g_unlink(path);
	return doc;
}

/* The built-in invoice type without its "reader" hint, from a folder of operator types. */
static const struct doctype *plain_invoice(const char *dir, struct doctypes **ret)
{
	const struct doctypes *builtin = NULL;
	if (doctypes_shared(NULL, &builtin, NULL))
		return NULL;
	g_autofree char *text = json_format(doctypes_find(builtin, "invoice")->schema, false);
	g_autoptr(GString) s = g_string_new(text);
	g_string_replace(s, "\"reader\":\"invoice\",", "", 0);
	g_autofree char *path = g_strdup_printf("%s/invoice.json", dir);
	if (!g_file_set_contents(path, s->str, (gssize)s->len, NULL) || doctypes_load(dir, ret, NULL))
		return NULL;
	g_unlink(path);
	return doctypes_find(*ret, "invoice");
}

static double docs_per_second(const struct doctype *type, struct pdftext_doc **docs, int n, int rounds)
{
	gint64 t0 = g_get_monotonic_time();
	for (int r = 0; r < rounds; r++)
		for (int i = 0; i < n; i++) {
			struct layout *lay = layout_build(docs[i]);
			struct json *out = NULL;
			if (!rules_extract(type, docs[i], lay, &out, NULL))
				json_free(out);
			layout_free(lay);
		}
	return (double)n * rounds / ((double)(g_get_monotonic_time() - t0) / 1e6);
}

static void print_cpu(void)
{
	g_autofree char *info = NULL;
	if (g_file_get_contents("/proc/cpuinfo", &info, NULL, NULL)) {
		const char *m = strstr(info, "model name");
		const char *c = m ? strchr(m, ':') : NULL;
		if (c) {
			g_autofree char *line = g_strndup(c + 2, strcspn(c + 2, "\n"));
			printf("processor: %s\n", line);
		}
	}
}

int main(int argc, char **argv)
{
	gint n = 40, rounds = 5;
	GOptionEntry entries[] = {{"docs", 0, 0, G_OPTION_ARG_INT, &n, "Invoices drawn (default 40)", "N"},
	                          {"rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "Passes over them (default 5)", "N"},
	                          {NULL, 0, 0, 0, NULL, NULL, NULL}};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- the invoice page reader's cost");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, NULL) || n < 1 || n > 10000 || rounds < 1 || rounds > 1000)
		return 2;
	g_autofree char *dir = g_dir_make_tmp("quire-bench-reader-XXXXXX", NULL);
	struct pdftext_doc **docs = g_new0(struct pdftext_doc *, n);
	for (int i = 0; i < n; i++)
		if (!(docs[i] = draw(i, dir)))
			return 1;
	const struct doctypes *builtin = NULL;
	struct doctypes *plain_types = NULL;
	const struct doctype *plain = plain_invoice(dir, &plain_types);
	if (doctypes_shared(NULL, &builtin, NULL) || !plain)
		return 1;
	g_rmdir(dir);
	print_cpu();
	docs_per_second(doctypes_find(builtin, "invoice"), docs, n, 1); /* warm the regex caches */
	double with = docs_per_second(doctypes_find(builtin, "invoice"), docs, n, rounds);
	double without = docs_per_second(plain, docs, n, rounds);
	printf("field step, one core, %d invoices x %d rounds\n", n, rounds);
	printf("  with the page reader:     %8.1f documents/s\n", with);
	printf("  schema label rules alone: %8.1f documents/s (reference)\n", without);
	printf("  ratio: %.2f of the reference; the field step alone allows %.0f invoices/min per core\n",
	       with / without, with * 60);
	for (int i = 0; i < n; i++)
		pdftext_doc_free(docs[i]);
	g_free(docs);
	doctypes_free(plain_types);
	return 0;
}
