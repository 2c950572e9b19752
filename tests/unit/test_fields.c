/* Field extraction: document types, layout cells, tables across pages, validation,
 * classification, confidence and approval, evaluation. PDFs are drawn with cairo and
 * go through the real sandbox. */
#include <cairo-pdf.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "extractors/classify.h"
#include "extractors/doctype.h"
#include "extractors/einvoice.h"
#include "extractors/evaluate.h"
#include "extractors/extract.h"
#include "extractors/pdftext.h"
#include "extractors/channel.h"
#include "extractors/validate.h"
#include "tests/fixtures/pdfattach.h"

static const struct sandbox_limits limits = {.timeout_s = 30, .memory_bytes = 1024u << 20, .max_pages = 50};

struct text {
	double x, y;
	const char *s;
	int page;
	bool right; /* right-aligned at x */
};

/* A PDF of the given texts (10 pt), as bytes. */
static GBytes *draw(const struct text *t, size_t n)
{
	g_autofree char *dir = g_dir_make_tmp("quire-fields-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "doc.pdf", NULL);
	cairo_surface_t *s = cairo_pdf_surface_create(path, 595, 842);
	cairo_t *cr = cairo_create(s);
	cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, 10);
	int page = 0;
	for (size_t i = 0; i < n; i++) {
		while (t[i].page > page) {
			cairo_show_page(cr);
			page++;
		}
		double x = t[i].x;
		if (t[i].right) {
			cairo_text_extents_t e;
			cairo_text_extents(cr, t[i].s, &e);
			x -= e.x_advance;
		}
		cairo_move_to(cr, x, t[i].y);
		cairo_show_text(cr, t[i].s);
	}
	cairo_destroy(cr);
	cairo_surface_destroy(s);
	gchar *data = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_unlink(path);
	g_rmdir(dir);
	return g_bytes_new_take(data, len);
}

static struct json *extract(GBytes *pdf, const char *type)
{
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct extract_options opt = {.limits = limits, .doc_type = type};
	struct json *r = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(extract_document(data, len, &opt, &r, NULL, &err), ==, QERR_OK);
	return r;
}

static const struct json *value(const struct json *r, const char *field)
{
	return json_get(json_get(json_get(r, "fields"), field), "value");
}

static double number(const struct json *r, const char *field)
{
	double v = NAN;
	g_assert_true(json_get_number(json_get(json_get(r, "fields"), field), "value", &v));
	return v;
}

/* Two columns: labels and values in separate cells; the table breaks over a page with no
 * repeated header; German number format. */
static void test_two_columns_and_page_break(void)
{
	GPtrArray *keep = g_ptr_array_new_with_free_func(g_free);
	GArray *t = g_array_new(FALSE, FALSE, sizeof(struct text));
	struct text head[] = {
		{50, 60, "Keystone Technik GmbH", 0, false}, {360, 60, "RECHNUNG", 0, false},
		{330, 130, "Rechnungsnummer:", 0, false},    {545, 130, "RE-7781", 0, true},
		{330, 145, "Rechnungsdatum:", 0, false},     {545, 145, "03.02.2026", 0, true},
		{330, 160, "Fällig am:", 0, false},          {545, 160, "05.03.2026", 0, true},
		{50, 230, "Bezeichnung", 0, false},          {350, 230, "Menge", 0, true},
		{450, 230, "Einzelpreis", 0, true},          {545, 230, "Betrag", 0, true},
	};
	g_array_append_vals(t, head, G_N_ELEMENTS(head));
	double y = 250, sum = 0;
	int page = 0;
	for (int i = 0; i < 40; i++) {
		if (y > 780) {
			page++;
			y = 70;
		}
		char *d = g_strdup_printf("Position %d", i + 1), *a = g_strdup_printf("%d,50", 100 + i);
		g_ptr_array_add(keep, d);
		g_ptr_array_add(keep, a);
		struct text row[] = {{50, y, d, page, false}, {350, y, "1", page, true}, {450, y, a, page, true},
		                     {545, y, a, page, true}};
		g_array_append_vals(t, row, 4);
		sum += 100 + i + 0.5;
		y += 16;
	}
	char *net = g_strdup_printf("%.2f", sum), *tax = g_strdup_printf("%.2f", round(sum * 19) / 100);
	char *tot = g_strdup_printf("%.2f", sum + round(sum * 19) / 100);
	for (char *p = net; *p; p++)
		*p = *p == '.' ? ',' : *p;
	g_ptr_array_add(keep, net);
	g_ptr_array_add(keep, tax);
	g_ptr_array_add(keep, tot);
	struct text foot[] = {{330, y + 20, "Nettobetrag:", page, false}, {545, y + 20, net, page, true},
	                      {330, y + 36, "MwSt. 19%:", page, false},   {545, y + 36, tax, page, true},
	                      {330, y + 52, "Gesamtbetrag:", page, false}, {545, y + 52, tot, page, true}};
	g_array_append_vals(t, foot, G_N_ELEMENTS(foot));
	g_autoptr(GBytes) pdf = draw((const struct text *)(void *)t->data, t->len);
	struct json *r = extract(pdf, NULL);
	g_assert_cmpstr(json_get_string(r, "document_type"), ==, "invoice");
	g_assert_cmpstr(json_string_value(value(r, "invoice_number")), ==, "RE-7781");
	g_assert_cmpstr(json_string_value(value(r, "issue_date")), ==, "2026-02-03");
	g_assert_cmpstr(json_string_value(value(r, "due_date")), ==, "2026-03-05");
	g_assert_cmpstr(json_string_value(value(r, "supplier_name")), ==, "Keystone Technik GmbH");
	g_assert_cmpfloat_with_epsilon(number(r, "net_amount"), sum, 0.001);
	const struct json *items = value(r, "line_items");
	g_assert_cmpuint(json_array_size(items), ==, 40); /* stitched over the page break */
	g_assert_cmpstr(json_get_string(json_array_at(items, 39), "description"), ==, "Position 40");
	double a = 0;
	g_assert_true(json_get_number(json_array_at(items, 39), "amount", &a));
	g_assert_cmpfloat_with_epsilon(a, 139.5, 0.001);
	/* provenance: the value's page and box */
	const struct json *f = json_get(json_get(r, "fields"), "invoice_number");
	double pg = 0;
	g_assert_true(json_get_number(f, "page", &pg));
	g_assert_cmpfloat(pg, ==, 1);
	g_assert_cmpuint(json_array_size(json_get(f, "box")), ==, 4);
	/* checks ran and passed */
	g_assert_cmpuint(json_array_size(json_get(r, "checks")), >=, 3);
	json_free(r);
	g_array_free(t, TRUE);
	g_ptr_array_free(keep, TRUE);
}

static struct json *extract_approving(GBytes *pdf, bool set, double threshold)
{
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct extract_options opt = {
	    .limits = limits, .doc_type = "invoice", .auto_approve = threshold, .auto_approve_set = set};
	struct json *r = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(extract_document(data, len, &opt, &r, NULL, &err), ==, QERR_OK);
	return r;
}

/* fields.auto_approve is honoured as given, 0 included (it once fell back to the default):
 * at or above the threshold a document is approved, below it reviewed; unset means the
 * default. */
static void test_auto_approve_threshold(void)
{
	struct text t[] = {
	    {50, 60, "Harbor Office Ltd", 0, false},         {50, 100, "Invoice number: INV-10", 0, false},
	    {50, 115, "Invoice date: 2026-01-10", 0, false}, {50, 130, "Due date: 2026-02-09", 0, false},
	    {300, 200, "Subtotal: 100.00 EUR", 0, false},    {300, 215, "VAT 20%: 20.00 EUR", 0, false},
	    {300, 230, "Total: 120.00 EUR", 0, false},
	};
	g_autoptr(GBytes) pdf = draw(t, G_N_ELEMENTS(t));
	struct json *r = extract_approving(pdf, false, 0);
	double c = 0, th = 0;
	g_assert_true(json_get_number(r, "confidence", &c));
	g_assert_true(json_get_number(r, "auto_approve", &th));
	g_assert_cmpfloat(th, ==, EXTRACT_DEFAULT_APPROVE);
	g_assert_cmpfloat(c, >, 0.5);
	json_free(r);
	r = extract_approving(pdf, true, c);
	g_assert_cmpstr(json_get_string(r, "status"), ==, "approved");
	json_free(r);
	r = extract_approving(pdf, true, c + 0.01);
	g_assert_cmpstr(json_get_string(r, "status"), ==, "review");
	json_free(r);
	r = extract_approving(pdf, true, 1.01); /* fields.auto_approve = 101: never */
	g_assert_cmpstr(json_get_string(r, "status"), ==, "review");
	json_free(r);
	/* no total found: confidence 0, reviewed by default, approved when the threshold is 0 */
	t[6].s = "Amount: 120.00 EUR";
	g_autoptr(GBytes) weak = draw(t, G_N_ELEMENTS(t));
	r = extract_approving(weak, false, 0);
	g_assert_true(json_get_number(r, "confidence", &c));
	g_assert_cmpfloat(c, <, EXTRACT_DEFAULT_APPROVE);
	g_assert_cmpstr(json_get_string(r, "status"), ==, "review");
	json_free(r);
	r = extract_approving(weak, true, 0);
	g_assert_true(json_get_number(r, "auto_approve", &th));
	g_assert_cmpfloat(th, ==, 0);
	g_assert_cmpstr(json_get_string(r, "status"), ==, "approved");
	json_free(r);
}

/* A total that does not add up: the check fails, confidence drops, the document waits for review. */
static void test_failed_check_means_review(void)
{
	struct text t[] = {
		{50, 60, "Harbor Office Ltd", 0, false}, {50, 100, "Invoice number: INV-9", 0, false},
		{50, 115, "Invoice date: 2026-01-10", 0, false}, {50, 130, "Due date: 2026-02-09", 0, false},
		{300, 200, "Subtotal: 100.00 EUR", 0, false}, {300, 215, "VAT 20%: 20.00 EUR", 0, false},
		{300, 230, "Total: 125.00 EUR", 0, false},
	};
	g_autoptr(GBytes) pdf = draw(t, G_N_ELEMENTS(t));
	struct json *r = extract(pdf, "invoice");
	g_assert_cmpstr(json_get_string(r, "status"), ==, "review");
	double c = 1;
	g_assert_true(json_get_number(r, "confidence", &c));
	g_assert_cmpfloat(c, <=, 0.5);
	double total_conf = 1;
	g_assert_true(json_get_number(json_get(json_get(r, "fields"), "total_amount"), "confidence", &total_conf));
	g_assert_cmpfloat(total_conf, <, 0.5);
	g_autofree char *reasons = json_format(json_get(r, "review_reasons"), false);
	g_assert_nonnull(strstr(reasons, "totals: net 100.00 + tax 20.00 = 120.00, total 125.00"));
	json_free(r);
}

static void test_validators(void)
{
	g_assert_true(validate_iban("DE89370400440532013000"));
	g_assert_false(validate_iban("DE89370400440532013001"));
	g_assert_false(validate_iban("DE89 3704"));
	g_assert_true(validate_vat_id("DE811234567"));
	g_assert_false(validate_vat_id("DE81123456"));
	g_assert_true(validate_vat_id("NL123456789B01"));
	g_assert_false(validate_vat_id("XX123456789"));
	g_assert_true(validate_vat_id("ESB12345678"));
	g_assert_true(validate_icd10("J18.9"));
	g_assert_true(validate_icd10("S52.501A"));
	g_assert_false(validate_icd10("U07.1X")); /* U is reserved */
	g_assert_false(validate_icd10("J1"));
	g_assert_true(validate_date("2024-02-29"));
	g_assert_false(validate_date("2026-02-29"));
	const char *v = "{\"net_amount\":100,\"tax_amount\":19,\"total_amount\":119,\"issue_date\":\"2026-03-01\","
	                "\"due_date\":\"2026-02-01\",\"line_items\":[{\"quantity\":2,\"unit_price\":25,\"amount\":50},"
	                "{\"quantity\":1,\"unit_price\":50,\"amount\":50}]}";
	struct json *j = NULL;
	g_assert_cmpint(json_parse(v, strlen(v), &j, NULL), ==, QERR_OK);
	struct json *checks = validate_values(j);
	g_autofree char *text = json_format(checks, false);
	g_assert_nonnull(strstr(text, "\"check\":\"totals\",\"ok\":true"));
	g_assert_nonnull(strstr(text, "\"check\":\"line_items_sum\",\"ok\":true"));
	g_assert_nonnull(strstr(text, "\"check\":\"line_item_arithmetic\",\"ok\":true"));
	g_assert_nonnull(strstr(text, "\"check\":\"issue_date_before_due_date\",\"ok\":false"));
	json_free(checks);
	json_free(j);
}

static struct json *parse(const char *s)
{
	struct json *j = NULL;
	g_assert_cmpint(json_parse(s, strlen(s), &j, NULL), ==, QERR_OK);
	return j;
}

static void test_eval_counts(void)
{
	struct json *a = parse("\"2026-03-14\""), *b = parse("\"14 March 2026\""), *c = parse("1234.5"),
	            *d = parse("\"1.234,50\""), *e = parse("\"Acme  GmbH \""), *f = parse("\"acme gmbh\"");
	g_assert_true(eval_same(a, b));
	g_assert_true(eval_same(c, d));
	g_assert_true(eval_same(e, f));
	g_assert_false(eval_same(c, a));
	json_free(a), json_free(b), json_free(c), json_free(d), json_free(e), json_free(f);
	struct eval *ev = eval_new();
	struct json *exp = parse("{\"document_type\":\"invoice\",\"fields\":{\"invoice_number\":\"A1\",\"total_amount\":10,"
	                         "\"due_date\":null,\"line_items\":[{\"description\":\"x\",\"amount\":1},"
	                         "{\"description\":\"y\",\"amount\":2}]}}");
	struct json *got = parse("{\"document_type\":\"invoice\",\"fields\":{\"invoice_number\":{\"value\":\"A2\"},"
	                         "\"total_amount\":{\"value\":10},\"due_date\":{\"value\":\"2026-01-01\"},"
	                         "\"line_items\":{\"value\":[{\"description\":\"X\",\"amount\":1,\"quantity\":null},"
	                         "{\"description\":\"z\",\"amount\":3}]}},\"status\":\"approved\"}");
	eval_add(ev, exp, got);
	struct eval_score s = eval_score(ev, "invoice.invoice_number");
	g_assert_cmpint(s.tp, ==, 0);
	g_assert_cmpint(s.fp, ==, 1);
	g_assert_cmpint(s.fn, ==, 1);
	s = eval_score(ev, "invoice.total_amount");
	g_assert_cmpint(s.tp, ==, 1);
	s = eval_score(ev, "invoice.due_date");
	g_assert_cmpint(s.fp, ==, 1);
	s = eval_score(ev, "invoice_line_items");
	g_assert_cmpint(s.tp, ==, 1);
	g_assert_cmpint(s.fp, ==, 1);
	g_assert_cmpint(s.fn, ==, 1);
	g_assert_cmpfloat_with_epsilon(s.f1, 0.5, 1e-9);
	g_assert_cmpint(eval_totals(ev).approved_wrong, ==, 1);
	eval_free(ev);
	json_free(exp);
	json_free(got);
}

/* An operator's type from a folder: loaded beside the built-in ones, classified by its keywords,
 * extracted by its labels, no rebuild. */
static void test_operator_type(void)
{
	g_autofree char *dir = g_dir_make_tmp("quire-schemas-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "delivery_note.json", NULL);
	const char *schema =
		"{\"title\":\"delivery_note\",\"type\":\"object\",\"properties\":{"
		"\"note_number\":{\"type\":[\"string\",\"null\"],\"maxLength\":40},"
		"\"delivery_date\":{\"type\":[\"string\",\"null\"],\"maxLength\":10,\"format\":\"date\"}},"
		"\"required\":[\"note_number\",\"delivery_date\"],"
		"\"x-quire\":{\"keywords\":[\"delivery\\\\s+note\",\"delivered\"],\"key_fields\":[\"note_number\"],"
		"\"fields\":{\"note_number\":{\"kind\":\"id\",\"labels\":\"delivery\\\\s+note\\\\s+no\\\\.?\"},"
		"\"delivery_date\":{\"labels\":\"delivery\\\\s+date\"}}}}";
	g_assert_true(g_file_set_contents(path, schema, -1, NULL));
	struct doctypes *types = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(doctypes_load(dir, &types, &err), ==, QERR_OK);
	g_assert_cmpuint(doctypes_count(types), ==, 5);
	const struct doctype *d = doctypes_find(types, "delivery_note");
	g_assert_nonnull(d);
	g_assert_null(strstr(d->schema_text, "x-quire")); /* the model gets the plain schema */
	const char *lines[] = {"DELIVERY NOTE", "Delivery note no. DN-5531", "Delivery date: 2 May 2026",
	                       "Goods delivered in good order"};
	struct pdftext_page pg = {.text = g_strjoinv("\n", (char **)lines), .method = "text"};
	struct pdftext_doc doc = {.n_pages = 1, .total_pages = 1, .pages = &pg};
	struct classify_result c = classify_keywords(types, &doc);
	g_assert_cmpstr(c.type, ==, "delivery_note");
	g_free(pg.text);
	doctypes_free(types);
	/* A broken file names itself. */
	g_assert_true(g_file_set_contents(path, "{\"type\":\"object\"}", -1, NULL));
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(doctypes_load(dir, &types, &err), ==, QERR_CONFIG);
	g_assert_nonnull(strstr(err, "delivery_note.json"));
	g_unlink(path);
	g_rmdir(dir);
}

static void test_unknown_type_refused(void)
{
	struct text t[] = {{50, 60, "Some text", 0, false}};
	g_autoptr(GBytes) pdf = draw(t, 1);
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct extract_options opt = {.limits = limits, .doc_type = "no_such_type"};
	struct json *r = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(extract_document(data, len, &opt, &r, NULL, &err), ==, QERR_BAD_INPUT);
	g_assert_nonnull(strstr(err, "no_such_type"));
}

static const char CII_XML[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<rsm:CrossIndustryInvoice xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100\""
	" xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\""
	" xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\">"
	"<rsm:ExchangedDocument><ram:ID>FX-2026-17</ram:ID><ram:IssueDateTime>"
	"<udt:DateTimeString format=\"102\">20260314</udt:DateTimeString></ram:IssueDateTime></rsm:ExchangedDocument>"
	"<rsm:SupplyChainTradeTransaction>"
	"<ram:IncludedSupplyChainTradeLineItem><ram:SpecifiedTradeProduct><ram:Name>Archive boxes</ram:Name>"
	"</ram:SpecifiedTradeProduct><ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice>"
	"<ram:ChargeAmount>5.00</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>"
	"<ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode=\"C62\">20</ram:BilledQuantity>"
	"</ram:SpecifiedLineTradeDelivery><ram:SpecifiedLineTradeSettlement>"
	"<ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>100.00</ram:LineTotalAmount>"
	"</ram:SpecifiedTradeSettlementLineMonetarySummation></ram:SpecifiedLineTradeSettlement>"
	"</ram:IncludedSupplyChainTradeLineItem>"
	"<ram:ApplicableHeaderTradeAgreement><ram:SellerTradeParty><ram:Name>Northwind Supplies GmbH</ram:Name>"
	"<ram:SpecifiedTaxRegistration><ram:ID schemeID=\"VA\">DE811234567</ram:ID></ram:SpecifiedTaxRegistration>"
	"</ram:SellerTradeParty><ram:BuyerTradeParty><ram:Name>Contoso Legal LLP</ram:Name></ram:BuyerTradeParty>"
	"</ram:ApplicableHeaderTradeAgreement>"
	"<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>"
	"<ram:ApplicableTradeTax><ram:CalculatedAmount>19.00</ram:CalculatedAmount>"
	"<ram:RateApplicablePercent>19</ram:RateApplicablePercent></ram:ApplicableTradeTax>"
	"<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>"
	"<ram:TaxTotalAmount currencyID=\"EUR\">19.00</ram:TaxTotalAmount><ram:GrandTotalAmount>119.00</ram:GrandTotalAmount>"
	"</ram:SpecifiedTradeSettlementHeaderMonetarySummation></ram:ApplicableHeaderTradeSettlement>"
	"</rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>";

static struct json *einvoice_of(const char *total_on_page)
{
	struct text t[] = {
		{50, 60, "Northwind Supplies GmbH", 0, false}, {50, 100, "Invoice number: FX-2026-17", 0, false},
		{50, 115, "Invoice date: 14.03.2026", 0, false}, {300, 200, "Subtotal: 100,00 EUR", 0, false},
		{300, 215, "VAT 19%: 19,00 EUR", 0, false},     {300, 230, total_on_page, 0, false},
	};
	g_autoptr(GBytes) pdf = draw(t, G_N_ELEMENTS(t));
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct extract_options opt = {.limits = limits};
	struct pdftext_doc *doc = NULL;
	struct json *r = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(sandbox_extract(data, len, NULL, &limits, &doc, &err), ==, QERR_OK);
	g_assert_cmpint(extract_fields_einvoice(doc, CII_XML, strlen(CII_XML), &opt, &r, &err), ==, QERR_OK);
	pdftext_doc_free(doc);
	return r;
}

/* The embedded XML is the source; the page agrees, or a disagreement sends the document to review. */
static void test_einvoice_cii(void)
{
	struct json *r = einvoice_of("Total: 119,00 EUR");
	g_assert_cmpstr(json_get_string(r, "method"), ==, "einvoice");
	g_assert_cmpstr(json_string_value(value(r, "invoice_number")), ==, "FX-2026-17");
	g_assert_cmpstr(json_string_value(value(r, "issue_date")), ==, "2026-03-14");
	g_assert_cmpstr(json_string_value(value(r, "supplier_vat_id")), ==, "DE811234567");
	g_assert_cmpfloat_with_epsilon(number(r, "total_amount"), 119, 1e-9);
	g_assert_cmpuint(json_array_size(value(r, "line_items")), ==, 1);
	g_autofree char *checks = json_format(json_get(r, "checks"), false);
	g_assert_nonnull(strstr(checks, "\"check\":\"einvoice_matches_page\",\"ok\":true"));
	json_free(r);
	r = einvoice_of("Total: 191,00 EUR");
	g_assert_cmpfloat_with_epsilon(number(r, "total_amount"), 119, 1e-9); /* the XML wins */
	g_assert_cmpstr(json_get_string(r, "status"), ==, "review");
	g_autofree char *reasons = json_format(json_get(r, "review_reasons"), false);
	g_assert_nonnull(strstr(reasons, "total_amount differs between the embedded invoice and the page"));
	json_free(r);
}

/* pdf with the files embedded (tests/fixtures/pdfattach.h). */
static GBytes *with_files(GBytes *pdf, const struct pdfattach_file *files, size_t n)
{
	gsize len = 0;
	const unsigned char *p = g_bytes_get_data(pdf, &len);
	unsigned char *out = NULL;
	size_t out_len = 0;
	g_assert_cmpint(pdfattach_append(p, len, files, n, &out, &out_len), ==, 0);
	GBytes *b = g_bytes_new(out, out_len);
	free(out);
	return b;
}

static GBytes *with_file(GBytes *pdf, const char *name, const void *data, size_t len)
{
	struct pdfattach_file f = {name, "text/xml", data, len, 0};
	return with_files(pdf, &f, 1);
}

static GBytes *einvoice_page(const char *total_on_page)
{
	struct text t[] = {
		{50, 60, "Northwind Supplies GmbH", 0, false}, {50, 100, "Invoice number: FX-2026-17", 0, false},
		{50, 115, "Invoice date: 14.03.2026", 0, false}, {300, 200, "Subtotal: 100,00 EUR", 0, false},
		{300, 215, "VAT 19%: 19,00 EUR", 0, false},     {300, 230, total_on_page, 0, false},
	};
	return draw(t, G_N_ELEMENTS(t));
}

/* A Factur-X PDF through the sandbox: the embedded XML is the source, named in the result. */
static void test_einvoice_embedded(void)
{
	g_autoptr(GBytes) page = einvoice_page("Total: 119,00 EUR");
	g_autoptr(GBytes) pdf = with_file(page, "factur-x.xml", CII_XML, strlen(CII_XML));
	struct json *r = extract(pdf, NULL);
	g_assert_cmpstr(json_get_string(r, "method"), ==, "einvoice");
	g_assert_cmpstr(json_get_string(json_get(r, "classification"), "method"), ==, "einvoice");
	g_assert_cmpstr(json_get_string(json_get(r, "classification"), "file"), ==, "factur-x.xml");
	g_assert_cmpstr(json_string_value(value(r, "invoice_number")), ==, "FX-2026-17");
	g_assert_cmpuint(json_array_size(value(r, "line_items")), ==, 1); /* only the XML has them */
	g_assert_cmpstr(json_get_string(r, "status"), ==, "approved");
	json_free(r);
	/* the page says otherwise: the XML's value stands, and a person looks */
	g_autoptr(GBytes) other = einvoice_page("Total: 191,00 EUR");
	g_autoptr(GBytes) pdf2 = with_file(other, "factur-x.xml", CII_XML, strlen(CII_XML));
	r = extract(pdf2, NULL);
	g_assert_cmpstr(json_get_string(r, "method"), ==, "einvoice");
	g_assert_cmpfloat_with_epsilon(number(r, "total_amount"), 119, 1e-9);
	g_assert_cmpstr(json_get_string(r, "status"), ==, "review");
	g_autofree char *reasons = json_format(json_get(r, "review_reasons"), false);
	g_assert_nonnull(strstr(reasons, "total_amount differs between the embedded invoice and the page"));
	json_free(r);
	/* a type other than invoice given at submission: the page is read as that type */
	r = extract(pdf, "receipt");
	g_assert_cmpstr(json_get_string(r, "document_type"), ==, "receipt");
	g_assert_cmpstr(json_get_string(r, "method"), !=, "einvoice");
	json_free(r);
}

/* A name written in UTF-16 (as many PDF writers do) reads the same through the sandbox,
 * whose parser converts it after the file system is closed to it. */
static void test_einvoice_utf16_name(void)
{
	g_autoptr(GBytes) page = einvoice_page("Total: 119,00 EUR");
	struct pdfattach_file f = {"zugferd-invoice.xml", "text/xml", CII_XML, strlen(CII_XML), 1};
	g_autoptr(GBytes) pdf = with_files(page, &f, 1);
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(sandbox_extract(data, len, NULL, &limits, &doc, &err), ==, QERR_OK);
	g_assert_cmpuint(doc->n_attachments, ==, 1);
	g_assert_cmpstr(doc->attachments[0].name, ==, "zugferd-invoice.xml");
	g_assert_cmpmem(doc->attachments[0].data, doc->attachments[0].len, CII_XML, strlen(CII_XML));
	pdftext_doc_free(doc);
	struct json *r = extract(pdf, NULL);
	g_assert_cmpstr(json_get_string(r, "method"), ==, "einvoice");
	json_free(r);
}

/* An XML file under another name is taken by its root element; other files are not read. */
static void test_einvoice_found_by_root(void)
{
	g_autoptr(GBytes) page = einvoice_page("Total: 119,00 EUR");
	const char notes[] = "<?xml version=\"1.0\"?><notes><note>not an invoice</note></notes>";
	const char png[] = "\x89PNG\r\n\x1a\n";
	struct pdfattach_file files[] = {{"notes.xml", "text/xml", notes, strlen(notes), 0},
	                                 {"logo.png", "image/png", png, 8, 0},
	                                 {"RE-17_data.xml", "application/xml", CII_XML, strlen(CII_XML), 0}};
	g_autoptr(GBytes) pdf = with_files(page, files, G_N_ELEMENTS(files));
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(sandbox_extract(data, len, NULL, &limits, &doc, &err), ==, QERR_OK);
	g_assert_cmpuint(doc->n_attachments, ==, 1);
	g_assert_cmpstr(doc->attachments[0].name, ==, "RE-17_data.xml");
	g_assert_cmpmem(doc->attachments[0].data, doc->attachments[0].len, CII_XML, strlen(CII_XML));
	pdftext_doc_free(doc);
	struct json *r = extract(pdf, NULL);
	g_assert_cmpstr(json_get_string(r, "method"), ==, "einvoice");
	json_free(r);

	g_assert_cmpint(pdftext_einvoice_score("ZUGFeRD-invoice.xml", NULL, 0), ==, 2);
	g_assert_cmpint(pdftext_einvoice_score("dir/xrechnung.xml", NULL, 0), ==, 2);
	const char ubl[] = "\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- x -->\n<!DOCTYPE Invoice [<!ENTITY a \"b>\">]>"
	                   "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"/>";
	g_assert_cmpint(pdftext_einvoice_score("a.xml", ubl, strlen(ubl)), ==, 1);
	g_assert_cmpint(pdftext_einvoice_score("a.xml", notes, strlen(notes)), ==, 0);
	g_assert_cmpint(pdftext_einvoice_score("a.xml", "<InvoiceList/>", 14), ==, 0);
	g_assert_cmpint(pdftext_einvoice_score("a.xml", "<Invoice><Total>1</Total></Invoice>", 35), ==, 0);
	g_assert_cmpint(pdftext_einvoice_score("a.xml", CII_XML, strlen(CII_XML)), ==, 1);
	g_assert_cmpint(pdftext_einvoice_score(NULL, "<!-- never closed", 17), ==, 0);
}

/* An embedded invoice that does not parse, or is too large: the page's fields, sent to review. */
static void test_einvoice_refused(void)
{
	g_autoptr(GBytes) page = einvoice_page("Total: 119,00 EUR");
	const char broken[] = "<rsm:CrossIndustryInvoice xmlns:rsm=\"x\"><unclosed>";
	g_autoptr(GBytes) pdf = with_file(page, "factur-x.xml", broken, strlen(broken));
	struct json *r = extract(pdf, NULL);
	g_assert_cmpstr(json_get_string(r, "method"), ==, "rules");
	g_assert_cmpstr(json_get_string(r, "status"), ==, "review");
	g_assert_nonnull(strstr(json_get_string(r, "einvoice_error"), "factur-x.xml"));
	g_assert_cmpstr(json_string_value(value(r, "invoice_number")), ==, "FX-2026-17");
	json_free(r);

	gsize big = PDFTEXT_MAX_ATTACHMENT + 1;
	g_autofree char *huge = g_malloc(big);
	memset(huge, ' ', big);
	memcpy(huge, "<a>", 3);
	g_autoptr(GBytes) pdf2 = with_file(page, "factur-x.xml", huge, big);
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf2, &len);
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(sandbox_extract(data, len, NULL, &limits, &doc, &err), ==, QERR_OK);
	g_assert_cmpuint(doc->n_attachments, ==, 0);
	g_assert_cmpuint(doc->n_warnings, ==, 1);
	g_assert_nonnull(strstr(doc->warnings[0], "larger than 8 MiB"));
	pdftext_doc_free(doc);
}

/* The channel carries attachments after the pages only, within the limits. */
static void test_einvoice_channel(void)
{
	struct pdftext_page pg = {.text = (char *)"x", .method = (char *)"text", .width = 10, .height = 10,
	                          .ocr_confidence = -1};
	struct pdftext_doc meta = {.total_pages = 1};
	struct pdftext_attachment a = {.name = (char *)"factur-x.xml", .data = (uint8_t *)"<a/>", .len = 4};
	struct channel_out o = {0};
	channel_put_meta(&o, &meta);
	channel_put_page(&o, 0, &pg);
	channel_put_attachment(&o, &a);
	channel_put_end(&o, 1);
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(channel_parse(o.data, o.len, 10, &doc, NULL, &err), ==, QERR_OK);
	g_assert_cmpuint(doc->n_attachments, ==, 1);
	g_assert_cmpstr(doc->attachments[0].name, ==, "factur-x.xml");
	g_assert_cmpmem(doc->attachments[0].data, doc->attachments[0].len, "<a/>", 4);
	pdftext_doc_free(doc);
	channel_out_done(&o);
	/* before the last page: refused */
	struct pdftext_doc two = {.total_pages = 2};
	channel_put_meta(&o, &two);
	channel_put_page(&o, 0, &pg);
	channel_put_attachment(&o, &a);
	channel_put_page(&o, 1, &pg);
	channel_put_end(&o, 2); /* a complete stream: only the attachment's place is wrong */
	g_free(err);
	err = NULL;
	g_assert_cmpint(channel_parse(o.data, o.len, 10, &doc, NULL, &err), ==, QERR_INTERNAL);
	g_assert_nonnull(err);
	channel_out_done(&o);
	/* more than the limit: refused */
	channel_put_meta(&o, &meta);
	channel_put_page(&o, 0, &pg);
	for (int i = 0; i <= PDFTEXT_MAX_ATTACHMENTS; i++)
		channel_put_attachment(&o, &a);
	channel_put_end(&o, 1);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(channel_parse(o.data, o.len, 10, &doc, NULL, &err), ==, QERR_INTERNAL);
	channel_out_done(&o);
}

static void test_einvoice_ubl_and_hostile(void)
{
	const char *ubl = "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\""
	                  " xmlns:cac=\"urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2\""
	                  " xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">"
	                  "<cbc:ID>UBL-9</cbc:ID><cbc:IssueDate>2026-05-02</cbc:IssueDate>"
	                  "<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>"
	                  "<cac:TaxTotal><cbc:TaxAmount currencyID=\"EUR\">21.00</cbc:TaxAmount><cac:TaxSubtotal>"
	                  "<cbc:TaxAmount>21.00</cbc:TaxAmount><cac:TaxCategory><cbc:Percent>21</cbc:Percent>"
	                  "</cac:TaxCategory></cac:TaxSubtotal></cac:TaxTotal>"
	                  "<cac:LegalMonetaryTotal><cbc:TaxExclusiveAmount>100.00</cbc:TaxExclusiveAmount>"
	                  "<cbc:TaxInclusiveAmount>121.00</cbc:TaxInclusiveAmount></cac:LegalMonetaryTotal></Invoice>";
	struct json *v = NULL;
	const char *syntax = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(einvoice_parse(ubl, strlen(ubl), &v, &syntax, &err), ==, QERR_OK);
	g_assert_cmpstr(syntax, ==, "ubl");
	g_assert_cmpstr(json_get_string(v, "invoice_number"), ==, "UBL-9");
	double tax = 0;
	g_assert_true(json_get_number(json_array_at(json_get(v, "tax_lines"), 0), "rate", &tax));
	g_assert_cmpfloat(tax, ==, 21);
	json_free(v);
	/* An external entity is neither fetched nor substituted. */
	const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
	                  "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\""
	                  " xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">"
	                  "<cbc:ID>&e;</cbc:ID></Invoice>";
	g_assert_cmpint(einvoice_parse(xxe, strlen(xxe), &v, &syntax, &err), ==, QERR_OK);
	g_assert_true(json_is_null(json_get(v, "invoice_number")) || !strstr(json_get_string(v, "invoice_number"), "root"));
	json_free(v);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(einvoice_parse("<a>", 3, &v, &syntax, &err), ==, QERR_PARSE_FAILED);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(einvoice_parse("<a/>", 4, &v, &syntax, &err), ==, QERR_UNSUPPORTED);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/fields/rules/two-columns-and-page-break", test_two_columns_and_page_break);
	g_test_add_func("/fields/validate/failed-check-means-review", test_failed_check_means_review);
	g_test_add_func("/fields/validate/checks", test_validators);
	g_test_add_func("/fields/validate/auto-approve-threshold", test_auto_approve_threshold);
	g_test_add_func("/fields/eval/counts", test_eval_counts);
	g_test_add_func("/fields/doctype/operator-type", test_operator_type);
	g_test_add_func("/fields/doctype/unknown-refused", test_unknown_type_refused);
	g_test_add_func("/fields/einvoice/cii-source-and-cross-check", test_einvoice_cii);
	g_test_add_func("/fields/einvoice/ubl-and-hostile-xml", test_einvoice_ubl_and_hostile);
	g_test_add_func("/fields/einvoice/embedded-in-pdf", test_einvoice_embedded);
	g_test_add_func("/fields/einvoice/utf16-name", test_einvoice_utf16_name);
	g_test_add_func("/fields/einvoice/found-by-root-element", test_einvoice_found_by_root);
	g_test_add_func("/fields/einvoice/refused-xml-means-review", test_einvoice_refused);
	g_test_add_func("/fields/einvoice/channel-frames", test_einvoice_channel);
	return g_test_run();
}
