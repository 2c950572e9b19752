/* Unit tests: every e-invoice read from its XML. Generated PDFs carry each
 * attachment structure (name tree with Kids, no declared size) and each syntax
 * (ZUGFeRD 1.0); the real invoices of ../shared/corpora/einvoices-dev, where
 * present, must all be read from their XML with the values the XML holds,
 * read here independently by element names. */
#include <glib.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "extractors/extract.h"
#include "extractors/pdftext.h"
#include "tests/fixtures/pdfattach.h"
#include "tests/unit/test_pdf_fixtures.h"

static const struct sandbox_limits limits = {.timeout_s = 60, .memory_bytes = (size_t)2048 << 20, .max_pages = 20};

static const char ZF1_XML[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<rsm:CrossIndustryDocument xmlns:rsm=\"urn:ferd:CrossIndustryDocument:invoice:1p0\""
    " xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12\""
    " xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15\">"
    "<rsm:HeaderExchangedDocument><ram:ID>ZF1-0815</ram:ID>"
    "<ram:IssueDateTime><udt:DateTimeString format=\"102\">20140519</udt:DateTimeString></ram:IssueDateTime>"
    "</rsm:HeaderExchangedDocument><rsm:SpecifiedSupplyChainTradeTransaction>"
    "<ram:ApplicableSupplyChainTradeAgreement><ram:SellerTradeParty><ram:Name>Lieferant GmbH</ram:Name>"
    "<ram:SpecifiedTaxRegistration><ram:ID schemeID=\"VA\">DE123456789</ram:ID></ram:SpecifiedTaxRegistration>"
    "</ram:SellerTradeParty><ram:BuyerTradeParty><ram:Name>Kunden AG</ram:Name></ram:BuyerTradeParty>"
    "</ram:ApplicableSupplyChainTradeAgreement><ram:ApplicableSupplyChainTradeSettlement>"
    "<ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode><ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime>"
    "<udt:DateTimeString format=\"102\">20140618</udt:DateTimeString></ram:DueDateDateTime>"
    "</ram:SpecifiedTradePaymentTerms><ram:SpecifiedTradeSettlementMonetarySummation>"
    "<ram:TaxBasisTotalAmount currencyID=\"EUR\">200.00</ram:TaxBasisTotalAmount>"
    "<ram:TaxTotalAmount currencyID=\"EUR\">38.00</ram:TaxTotalAmount>"
    "<ram:GrandTotalAmount currencyID=\"EUR\">238.00</ram:GrandTotalAmount>"
    "</ram:SpecifiedTradeSettlementMonetarySummation></ram:ApplicableSupplyChainTradeSettlement>"
    "<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument><ram:IncludedNote>"
    "<ram:Content>Only a note</ram:Content></ram:IncludedNote></ram:AssociatedDocumentLineDocument>"
    "</ram:IncludedSupplyChainTradeLineItem><ram:IncludedSupplyChainTradeLineItem>"
    "<ram:SpecifiedSupplyChainTradeDelivery><ram:BilledQuantity unitCode=\"C62\">2</ram:BilledQuantity>"
    "</ram:SpecifiedSupplyChainTradeDelivery><ram:SpecifiedSupplyChainTradeSettlement>"
    "<ram:SpecifiedTradeSettlementMonetarySummation><ram:LineTotalAmount>200.00</ram:LineTotalAmount>"
    "</ram:SpecifiedTradeSettlementMonetarySummation></ram:SpecifiedSupplyChainTradeSettlement>"
    "<ram:SpecifiedTradeProduct><ram:Name>Trennblätter A4</ram:Name></ram:SpecifiedTradeProduct>"
    "</ram:IncludedSupplyChainTradeLineItem></rsm:SpecifiedSupplyChainTradeTransaction>"
    "</rsm:CrossIndustryDocument>";

static void draw_page(cairo_t *cr, int page, void *data)
{
	(void)page;
	(void)data;
	fixture_text(cr, 50, 60, 12, "Lieferant GmbH");
	fixture_text(cr, 50, 120, 10, "Rechnung ZF1-0815 vom 19.05.2014");
	fixture_text(cr, 300, 300, 10, "Gesamtbetrag 238,00 EUR");
}

static GBytes *attached(const char *name, const char *xml, const struct pdfattach_style *style)
{
	g_autoptr(GBytes) page = fixture_cairo(1, 595, 842, NULL, NULL, draw_page, NULL);
	gsize len = 0;
	const unsigned char *p = g_bytes_get_data(page, &len);
	struct pdfattach_file f = {.name = name, .mime = "text/xml", .data = xml, .len = strlen(xml)};
	unsigned char *out = NULL;
	size_t out_len = 0;
	g_assert_cmpint(pdfattach_append_with(p, len, &f, 1, style, &out, &out_len), ==, 0);
	GBytes *b = g_bytes_new(out, out_len);
	free(out);
	return b;
}

static struct json *extract_bytes(GBytes *pdf, bool pages_only, struct pdftext_doc **ret_doc)
{
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct extract_options opt = {.limits = limits, .pages_only = pages_only};
	struct json *r = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(extract_document(data, len, &opt, &r, ret_doc, &err), ==, QERR_OK);
	return r;
}

static const struct json *value(const struct json *r, const char *field)
{
	return json_get(json_get(json_get(r, "fields"), field), "value");
}

/* ZUGFeRD 1.0 under its standard name, filed in a name tree of Kids without declared sizes. */
static void test_zugferd1_in_kids_tree(void)
{
	struct pdfattach_style style = {.kids = 1, .no_size = 1};
	g_autoptr(GBytes) pdf = attached("ZUGFeRD-invoice.xml", ZF1_XML, &style);
	struct json *r = extract_bytes(pdf, false, NULL);
	g_assert_cmpstr(json_get_string(r, "method"), ==, "einvoice");
	g_assert_cmpstr(json_get_string(json_get(r, "classification"), "syntax"), ==, "zugferd1");
	g_assert_cmpstr(json_get_string(json_get(r, "classification"), "file"), ==, "ZUGFeRD-invoice.xml");
	g_assert_cmpstr(json_string_value(value(r, "invoice_number")), ==, "ZF1-0815");
	g_assert_cmpstr(json_string_value(value(r, "issue_date")), ==, "2014-05-19");
	g_assert_cmpstr(json_string_value(value(r, "due_date")), ==, "2014-06-18");
	g_assert_cmpstr(json_string_value(value(r, "supplier_name")), ==, "Lieferant GmbH");
	g_assert_cmpstr(json_string_value(value(r, "buyer_name")), ==, "Kunden AG");
	g_assert_cmpstr(json_string_value(value(r, "supplier_vat_id")), ==, "DE123456789");
	double total = 0;
	g_assert_true(json_number_value(value(r, "total_amount"), &total));
	g_assert_cmpfloat_with_epsilon(total, 238, 1e-9);
	/* the note-only line is no item */
	g_assert_cmpuint(json_array_size(value(r, "line_items")), ==, 1);
	g_assert_cmpstr(json_get_string(json_array_at(value(r, "line_items"), 0), "description"), ==,
	                "Trennblätter A4");
	json_free(r);
}

/* Each Factur-X / ZUGFeRD / XRechnung name, with and without a declared size; --pages-only leaves it aside. */
static void test_names_and_pages_only(void)
{
	static const char *const names[] = {"factur-x.xml", "zugferd-invoice.xml", "ZUGFeRD-invoice.xml",
	                                    "xrechnung.xml"};
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
		for (int no_size = 0; no_size < 2; no_size++) {
			struct pdfattach_style style = {.no_size = no_size};
			g_autoptr(GBytes) pdf = attached(names[i], ZF1_XML, &style);
			struct json *r = extract_bytes(pdf, false, NULL);
			g_assert_cmpstr(json_get_string(r, "method"), ==, "einvoice");
			json_free(r);
			r = extract_bytes(pdf, true, NULL);
			g_assert_cmpstr(json_get_string(r, "method"), ==, "rules");
			g_assert_null(json_get(r, "einvoice_error"));
			json_free(r);
		}
}

/* ---- the real invoices ---- */

/* The first node's trimmed text for a local-name path, or NULL (g_free). */
static char *xml_text(xmlXPathContextPtr ctx, const char *xpath)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)xpath, ctx);
	char *r = NULL;
	if (o && o->nodesetval && o->nodesetval->nodeNr > 0) {
		xmlChar *c = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
		r = g_strstrip(g_strdup((const char *)c));
		xmlFree(c);
	}
	xmlXPathFreeObject(o);
	return r;
}

#define LN(x) "*[local-name()='" x "']"
#define HEADER_DOC "/*/" LN("ExchangedDocument") "|/*/" LN("HeaderExchangedDocument")
#define SUMMATION                                                                                                      \
	"//*[(local-name()='SpecifiedTradeSettlementHeaderMonetarySummation' or "                                      \
	"local-name()='SpecifiedTradeSettlementMonetarySummation') and not(ancestor::" LN(                             \
	    "IncludedSupplyChainTradeLineItem") ")]/"

static const struct {
	const char *field, *xpath;
	char kind; /* t text, d date, a amount */
} TRUTH[] = {
    {"invoice_number", "(" HEADER_DOC ")/" LN("ID"), 't'},
    {"issue_date", "(" HEADER_DOC ")/" LN("IssueDateTime") "/" LN("DateTimeString"), 'd'},
    {"due_date", "//" LN("SpecifiedTradePaymentTerms") "/" LN("DueDateDateTime") "/" LN("DateTimeString"), 'd'},
    {"currency", "//" LN("InvoiceCurrencyCode"), 't'},
    {"net_amount", SUMMATION LN("TaxBasisTotalAmount"), 'a'},
    {"tax_amount", SUMMATION LN("TaxTotalAmount"), 'a'},
    {"total_amount", SUMMATION LN("GrandTotalAmount"), 'a'},
    {"supplier_name", "//" LN("SellerTradeParty") "/" LN("Name"), 't'},
    {"buyer_name", "//" LN("BuyerTradeParty") "/" LN("Name"), 't'},
};

static void check_field(const char *path, const char *field, char kind, const char *want, const struct json *got)
{
	if (!want) {
		if (got && !json_is_null(got))
			g_error("%s: %s is not in the XML but read as %s", path, field, json_format(got, false));
		return;
	}
	if (kind == 'a') {
		double g = 0;
		if (!json_number_value(got, &g) || fabs(g - g_ascii_strtod(want, NULL)) > 0.005)
			g_error("%s: %s is %s in the XML", path, field, want);
		return;
	}
	g_autofree char *iso = kind == 'd' && strlen(want) == 8
	                           ? g_strdup_printf("%.4s-%.2s-%.2s", want, want + 4, want + 6)
	                           : g_strdup(want);
	if (g_strcmp0(json_string_value(got), iso) != 0)
		g_error("%s: %s is \"%s\" in the XML, read \"%s\"", path, field, iso, json_string_value(got));
}

static void check_invoice(const char *path)
{
	g_autofree char *bytes = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &bytes, &len, NULL));
	g_autoptr(GBytes) pdf = g_bytes_new_take(g_steal_pointer(&bytes), len);
	struct pdftext_doc *doc = NULL;
	struct json *r = extract_bytes(pdf, false, &doc);
	if (g_strcmp0(json_get_string(r, "method"), "einvoice") != 0)
		g_error("%s: read by %s, not from its XML (%s)", path, json_get_string(r, "method"),
		        json_get_string(r, "einvoice_error"));
	g_assert_cmpuint(doc->n_attachments, >=, 1);
	const struct pdftext_attachment *a = &doc->attachments[0];
	xmlDocPtr x = xmlReadMemory((const char *)a->data, (int)a->len, "truth.xml", NULL, XML_PARSE_NONET);
	g_assert_nonnull(x);
	xmlXPathContextPtr ctx = xmlXPathNewContext(x);
	for (size_t i = 0; i < G_N_ELEMENTS(TRUTH); i++) {
		g_autofree char *want = xml_text(ctx, TRUTH[i].xpath);
		check_field(path, TRUTH[i].field, TRUTH[i].kind, want, value(r, TRUTH[i].field));
	}
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(x);
	json_free(r);
	pdftext_doc_free(doc);
}

static void list_pdfs(const char *dir, GPtrArray *out)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	for (const char *n; d && (n = g_dir_read_name(d));) {
		g_autofree char *p = g_build_filename(dir, n, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			list_pdfs(p, out);
		else if (g_str_has_suffix(n, ".pdf"))
			g_ptr_array_add(out, g_steal_pointer(&p));
	}
}

static void test_dev_corpus(void)
{
	const char *shared = g_getenv("QUIRE_SHARED_DIR");
	g_autofree char *dir = shared ? g_build_filename(shared, "corpora", "einvoices-dev", NULL) : NULL;
	if (!dir || !g_file_test(dir, G_FILE_TEST_IS_DIR)) {
		g_test_skip("../shared/corpora/einvoices-dev is not present (QUIRE_SHARED_DIR)");
		return;
	}
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	list_pdfs(dir, files);
	g_assert_cmpuint(files->len, >=, 74);
	for (guint i = 0; i < files->len; i++)
		check_invoice(g_ptr_array_index(files, i));
	g_test_message("%u invoices read from their XML, values equal to the XML's", files->len);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/einvoice/zugferd1-in-kids-tree", test_zugferd1_in_kids_tree);
	g_test_add_func("/einvoice/names-and-pages-only", test_names_and_pages_only);
	g_test_add_func("/einvoice/dev-corpus", test_dev_corpus);
	return g_test_run();
}
