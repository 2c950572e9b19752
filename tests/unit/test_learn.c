/* Unit tests of extractors/learn: hints made from corrected values on generated
 * pages, read back on the same supplier's next page, and through extract_fields. */
#include <glib.h>
#include <string.h>

#include "core/json.h"
#include "extractors/extract.h"
#include "extractors/layout.h"
#include "extractors/learn.h"
#include "extractors/pdftext.h"
#include "extractors/sandbox.h"
#include "tests/unit/test_pdf_fixtures.h"

static const struct sandbox_limits limits = {.timeout_s = 60, .memory_bytes = (size_t)2048 << 20, .max_pages = 10};

struct text {
	double x, y;
	const char *s;
};

struct page {
	const struct text *t;
	size_t n;
};

static void draw_texts(cairo_t *cr, int page, void *data)
{
	(void)page;
	const struct page *p = data;
	for (size_t i = 0; i < p->n; i++)
		fixture_text(cr, p->t[i].x, p->t[i].y, 10, p->t[i].s);
}

/* The text of a generated A4 page with the given texts, read through the sandbox. */
static struct pdftext_doc *doc_of(const struct text *t, size_t n)
{
	struct page p = {t, n};
	g_autoptr(GBytes) pdf = fixture_cairo(1, 595, 842, NULL, NULL, draw_texts, &p);
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(sandbox_extract(data, len, NULL, &limits, &doc, &err), ==, QERR_OK);
	return doc;
}

/* An invoice of one supplier; what changes between its invoices is given. */
static struct pdftext_doc *supplier_page(const char *order, const char *date_line, const char *total,
                                         const char *corner, const char *label_above_value)
{
	struct text t[] = {
	    {50, 60, "Acme Tools Ltd"},   {50, 75, "VAT DE811234567"},   {50, 140, "Invoice 4711"}, {50, 170, order},
	    {50, 190, date_line},         {300, 400, "Grand total"},     {420, 400, total},         {480, 800, corner},
	    {300, 250, "Purchase order"}, {300, 265, label_above_value},
	};
	return doc_of(t, G_N_ELEMENTS(t));
}

static struct json *read_back(struct pdftext_doc *doc, const struct json *hint)
{
	struct layout *lay = layout_build(doc);
	int page = 0;
	double box[4];
	struct json *v = learn_read(lay, hint, &page, box);
	if (v)
		g_assert_cmpint(page, ==, 1);
	layout_free(lay);
	return v;
}

static struct json *hint_on(struct pdftext_doc *doc, const char *field, struct json *value)
{
	struct layout *lay = layout_build(doc);
	struct json *h = learn_hint(lay, field, value);
	layout_free(lay);
	json_free(value);
	return h;
}

/* Each relation: the value after its label in a sentence, in the next cell, below, or only a place. */
static void test_relations(void)
{
	struct pdftext_doc *a = supplier_page("Order ref: PO-1111 thank you", "Rechnung Nr. 17 vom 05.03.2018",
	                                      "1.234,56 EUR", "K-77", "PO-9");
	struct pdftext_doc *b = supplier_page("Order ref: PO-2222 thank you", "Rechnung Nr. 18 vom 19.05.2019",
	                                      "987,65 EUR", "K-78", "PO-10");
	struct json *inl = hint_on(a, "invoice_number", json_string("PO-1111"));
	struct json *date = hint_on(a, "issue_date", json_string("2018-03-05"));
	struct json *right = hint_on(a, "total_amount", json_number(1234.56));
	struct json *box = hint_on(a, "supplier_vat_id", json_string("K-77"));
	struct json *below = hint_on(a, "buyer_name", json_string("PO-9"));
	g_assert_cmpstr(json_get_string(inl, "rel"), ==, "inline");
	g_assert_cmpstr(json_get_string(inl, "anchor"), ==, "order ref");
	g_assert_cmpstr(json_get_string(date, "rel"), ==, "inline");
	g_assert_cmpstr(json_get_string(date, "anchor"), ==, "vom"); /* "17" is no anchor: the next invoice differs */
	g_assert_cmpstr(json_get_string(right, "rel"), ==, "right");
	g_assert_cmpstr(json_get_string(right, "anchor"), ==, "grand total");
	g_assert_cmpstr(json_get_string(right, "kind"), ==, "amount");
	g_assert_cmpstr(json_get_string(box, "rel"), ==, "box");
	g_assert_null(json_get(box, "anchor"));
	g_assert_cmpstr(json_get_string(below, "rel"), ==, "below");
	g_assert_cmpstr(json_get_string(below, "anchor"), ==, "purchase order");

	struct json *v = read_back(b, inl);
	g_assert_cmpstr(json_string_value(v), ==, "PO-2222");
	json_free(v);
	v = read_back(b, date);
	g_assert_cmpstr(json_string_value(v), ==, "2019-05-19");
	json_free(v);
	v = read_back(b, right);
	double d = 0;
	g_assert_true(json_number_value(v, &d));
	g_assert_cmpfloat_with_epsilon(d, 987.65, 1e-9);
	json_free(v);
	v = read_back(b, box);
	g_assert_cmpstr(json_string_value(v), ==, "K-78");
	json_free(v);
	v = read_back(b, below);
	g_assert_cmpstr(json_string_value(v), ==, "PO-10");
	json_free(v);
	json_free(inl);
	json_free(date);
	json_free(right);
	json_free(box);
	json_free(below);
	pdftext_doc_free(a);
	pdftext_doc_free(b);
}

/* A value the page does not show, a list, or nothing: no hint. */
static void test_no_hint(void)
{
	struct pdftext_doc *a = supplier_page("Order ref: PO-1111", "Date 05.03.2018", "10,00 EUR", "K-77", "PO-9");
	g_assert_null(hint_on(a, "invoice_number", json_string("NOT-ON-PAGE")));
	g_assert_null(hint_on(a, "total_amount", json_number(99.99)));
	g_assert_null(hint_on(a, "line_items", json_new_array()));
	g_assert_null(hint_on(a, "due_date", NULL));
	/* a hint whose anchor is gone from the page and whose box is empty reads nothing */
	struct json *h = hint_on(a, "invoice_number", json_string("PO-1111"));
	struct text other[] = {{50, 60, "Another Supplier SA"}, {50, 700, "Merci"}};
	struct pdftext_doc *c = doc_of(other, G_N_ELEMENTS(other));
	g_assert_null(read_back(c, h));
	json_free(h);
	pdftext_doc_free(c);
	pdftext_doc_free(a);
}

static void test_supplier_keys(void)
{
	struct json *values = json_new_object();
	json_add_string(values, "supplier_vat_id", "de 811 234 567");
	json_add_string(values, "iban", "DE89 3704 0044 0532 0130 00");
	json_add_string(values, "supplier_name", "  Acme   Tools, Ltd. ");
	char **keys = learn_supplier_keys(values, NULL);
	g_assert_cmpuint(g_strv_length(keys), ==, 3);
	g_assert_cmpstr(keys[0], ==, "vat:DE811234567");
	g_assert_cmpstr(keys[1], ==, "iban:DE89370400440532013000");
	g_assert_cmpstr(keys[2], ==, "name:acme tools ltd");
	g_strfreev(keys);
	/* with the page: identities written on it join, after the values' own */
	struct pdftext_doc *a = supplier_page("IBAN DE02 1203 0000 0000 2020 51", "x", "1,00", "y", "z");
	json_free(values);
	values = json_new_object();
	keys = learn_supplier_keys(values, a);
	g_assert_cmpuint(g_strv_length(keys), ==, 2);
	g_assert_cmpstr(keys[0], ==, "vat:DE811234567");
	g_assert_cmpstr(keys[1], ==, "iban:DE02120300000000202051");
	g_strfreev(keys);
	json_free(values);
	pdftext_doc_free(a);
}

static struct json *lookup(void *ctx, char *const *keys)
{
	return learn_memory_lookup(ctx, keys);
}

/* Through extract_fields: the supplier's remembered field overrides the reader, flagged as learned;
 * another supplier's document is read as before. */
static void test_extract_uses_memory(void)
{
	struct pdftext_doc *a = supplier_page("Order ref: PO-1111", "Date 05.03.2018", "10,00 EUR", "K-77", "PO-9");
	struct pdftext_doc *b = supplier_page("Order ref: PO-2222", "Date 06.03.2018", "12,00 EUR", "K-78", "PO-10");
	struct learn_memory *m = learn_memory_new();
	struct json *values = json_new_object();
	json_add_string(values, "supplier_vat_id", "DE811234567");
	char **keys = learn_supplier_keys(values, NULL);
	struct json *h = hint_on(a, "invoice_number", json_string("PO-1111"));
	learn_memory_put(m, keys, "invoice_number", h);
	struct extract_options opt = {.limits = limits, .doc_type = "invoice", .learned = {lookup, m}};
	struct json *r = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(extract_fields(b, &opt, &r, &err), ==, QERR_OK);
	const struct json *f = json_get(json_get(r, "fields"), "invoice_number");
	g_assert_cmpstr(json_get_string(f, "value"), ==, "PO-2222");
	g_assert_nonnull(json_get(f, "learned"));
	json_free(r);
	struct text other[] = {{50, 60, "Other Supplier SA"},
	                       {50, 75, "TVA FR40303265045"},
	                       {50, 170, "Order ref: PO-3333"},
	                       {50, 200, "Facture n° F-9"}};
	struct pdftext_doc *c = doc_of(other, G_N_ELEMENTS(other));
	g_assert_cmpint(extract_fields(c, &opt, &r, &err), ==, QERR_OK);
	f = json_get(json_get(r, "fields"), "invoice_number");
	g_assert_null(json_get(f, "learned"));
	g_assert_cmpstr(json_get_string(f, "value"), !=, "PO-3333");
	json_free(r);
	json_free(h);
	json_free(values);
	g_strfreev(keys);
	learn_memory_free(m);
	pdftext_doc_free(a);
	pdftext_doc_free(b);
	pdftext_doc_free(c);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/learn/relations", test_relations);
	g_test_add_func("/learn/no-hint", test_no_hint);
	g_test_add_func("/learn/supplier-keys", test_supplier_keys);
	g_test_add_func("/learn/extract-uses-memory", test_extract_uses_memory);
	return g_test_run();
}
