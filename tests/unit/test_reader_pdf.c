/* Invoices in layouts and languages of their own, drawn with cairo and read back through
 * the real PDF text extraction and the rules extractor with its page reader: labels over
 * right-aligned values, totals on a second page, a sender line, month names. */
#include <cairo-pdf.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/pdftext.h"
#include "extractors/rules.h"

void reader_pdf_tests(void);

/* Text at (x, y); align 'l', or 'r' for its right edge at x. */
struct ink {
	int page;
	double x, y, size;
	char align;
	const char *text;
};

static struct json *read_pdf(const struct ink *inks, int pages)
{
	g_autofree char *dir = g_dir_make_tmp("quire-reader-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "invoice.pdf", NULL);
	cairo_surface_t *s = cairo_pdf_surface_create(path, 595, 842);
	cairo_t *cr = cairo_create(s);
	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
	for (int p = 1; p <= pages; p++) {
		for (const struct ink *k = inks; k->text; k++) {
			if (k->page != p)
				continue;
			cairo_set_font_size(cr, k->size);
			cairo_text_extents_t e;
			cairo_text_extents(cr, k->text, &e);
			cairo_move_to(cr, k->align == 'r' ? k->x - e.x_advance : k->x, k->y);
			cairo_show_text(cr, k->text);
		}
		cairo_show_page(cr);
	}
	cairo_destroy(cr);
	cairo_surface_destroy(s);
	g_autofree char *data = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_unlink(path);
	g_rmdir(dir);
	struct pdftext_options opt = {.max_pages = 10};
	struct pdftext_doc *doc = NULL;
	g_assert_cmpint(pdftext_extract(data, len, &opt, &doc, NULL), ==, QERR_OK);
	struct json *r = NULL;
	g_assert_cmpint(rules_invoice(doc, &r, NULL), ==, QERR_OK);
	pdftext_doc_free(doc);
	return r;
}

static const char *str_of(const struct json *r, const char *name)
{
	return json_get_string(json_get(json_get(r, "fields"), name), "value");
}

static double num_of(const struct json *r, const char *name)
{
	double v = NAN;
	if (!json_get_number(json_get(json_get(r, "fields"), name), "value", &v))
		return NAN;
	return v;
}

/* German, right column of labels with their values under them and right-aligned; a
 * sender line above the window; a total with two rates. */
static void test_pdf_label_over_value(void)
{
	const struct ink inks[] = {{1, 60, 120, 7, 'l', "Elektro Sommer e.K. - Lindenweg 3 - 04109 Leipzig"},
	                           {1, 60, 140, 10, 'l', "Stadtwerke Nord GmbH"},
	                           {1, 60, 153, 10, 'l', "Hafenweg 1"},
	                           {1, 60, 166, 10, 'l', "24103 Kiel"},
	                           {1, 400, 120, 9, 'l', "Rechnungsnummer"},
	                           {1, 540, 132, 10, 'r', "ES-2019-0311"},
	                           {1, 400, 148, 9, 'l', "Leistungsdatum"},
	                           {1, 540, 160, 10, 'r', "28. Februar 2019"},
	                           {1, 400, 176, 9, 'l', "Rechnungsdatum"},
	                           {1, 540, 188, 10, 'r', "4. März 2019"},
	                           {1, 60, 240, 15, 'l', "Rechnung"},
	                           {1, 60, 280, 9, 'l', "Leistung"},
	                           {1, 540, 280, 9, 'r', "Betrag"},
	                           {1, 60, 295, 10, 'l', "Wartung Schaltanlage"},
	                           {1, 540, 295, 10, 'r', "1.250,00"},
	                           {1, 60, 310, 10, 'l', "Ersatzteile"},
	                           {1, 540, 310, 10, 'r', "300,00"},
	                           {1, 330, 350, 10, 'l', "Nettobetrag"},
	                           {1, 540, 350, 10, 'r', "1.550,00 EUR"},
	                           {1, 330, 365, 10, 'l', "USt. 19 % auf 1.250,00"},
	                           {1, 540, 365, 10, 'r', "237,50 EUR"},
	                           {1, 330, 380, 10, 'l', "USt. 7 % auf 300,00"},
	                           {1, 540, 380, 10, 'r', "21,00 EUR"},
	                           {1, 330, 398, 11, 'l', "Gesamtbetrag"},
	                           {1, 540, 398, 11, 'r', "1.808,50 EUR"},
	                           {1, 60, 430, 10, 'l', "Zahlbar bis 18.03.2019"},
	                           {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 1);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Elektro Sommer e.K.");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "ES-2019-0311");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2019-03-04");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2019-03-18");
	g_assert_cmpfloat_with_epsilon(num_of(r, "net_amount"), 1550, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "tax_amount"), 258.5, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "total_amount"), 1808.5, 0.001);
	g_assert_cmpstr(str_of(r, "currency"), ==, "EUR");
	json_free(r);
}

/* British English, day-first dates (31/05 shows the order), the totals on page two. */
static void test_pdf_totals_on_page_two(void)
{
	const struct ink inks[] = {{1, 60, 60, 20, 'l', "Harbour Lights Ltd"},
	                           {1, 60, 80, 8, 'l', "7 Quay Street, Bristol BS1 4DJ - VAT GB123456789"},
	                           {1, 60, 130, 10, 'l', "Invoice to:"},
	                           {1, 60, 143, 10, 'l', "Oakwood School"},
	                           {1, 360, 130, 10, 'l', "Invoice no."},
	                           {1, 450, 130, 10, 'l', "HL/2231"},
	                           {1, 360, 143, 10, 'l', "Date"},
	                           {1, 450, 143, 10, 'l', "03/05/2014"},
	                           {1, 360, 156, 10, 'l', "Payment due"},
	                           {1, 450, 156, 10, 'l', "31/05/2014"},
	                           {1, 60, 220, 10, 'l', "Stage lighting hire, 3 days"},
	                           {1, 540, 220, 10, 'r', "£600.00"},
	                           {1, 60, 800, 8, 'l', "continued overleaf"},
	                           {2, 330, 100, 10, 'l', "Sub-total"},
	                           {2, 540, 100, 10, 'r', "£600.00"},
	                           {2, 330, 115, 10, 'l', "VAT @ 20%"},
	                           {2, 540, 115, 10, 'r', "£120.00"},
	                           {2, 330, 130, 11, 'l', "Amount due"},
	                           {2, 540, 130, 11, 'r', "£720.00"},
	                           {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 2);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Harbour Lights Ltd");
	g_assert_cmpstr(str_of(r, "buyer_name"), ==, "Oakwood School");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "HL/2231");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2014-05-03");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2014-05-31");
	g_assert_cmpfloat_with_epsilon(num_of(r, "net_amount"), 600, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "tax_amount"), 120, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "total_amount"), 720, 0.001);
	g_assert_cmpstr(str_of(r, "currency"), ==, "GBP");
	json_free(r);
}

/* French, the number and date in the heading, a prepayment that is not the total. */
static void test_pdf_french_prepayment(void)
{
	const struct ink inks[] = {{1, 60, 60, 18, 'l', "Atelier Marchand SAS"},
	                           {1, 60, 110, 13, 'l', "Facture N° 2019-118 du 12 avril 2019"},
	                           {1, 60, 150, 10, 'l', "Client : Mairie de Vienne"},
	                           {1, 60, 165, 10, 'l', "Échéance : 12/05/2019"},
	                           {1, 330, 300, 10, 'l', "Total HT"},
	                           {1, 540, 300, 10, 'r', "2 500,00 €"},
	                           {1, 330, 315, 10, 'l', "TVA (20,0 %)"},
	                           {1, 540, 315, 10, 'r', "500,00 €"},
	                           {1, 330, 330, 10, 'l', "Total TTC"},
	                           {1, 540, 330, 10, 'r', "3 000,00 €"},
	                           {1, 330, 345, 10, 'l', "Acompte versé"},
	                           {1, 540, 345, 10, 'r', "-1 000,00 €"},
	                           {1, 330, 360, 10, 'l', "Net à payer"},
	                           {1, 540, 360, 10, 'r', "2 000,00 €"},
	                           {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 1);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Atelier Marchand SAS");
	g_assert_cmpstr(str_of(r, "buyer_name"), ==, "Mairie de Vienne");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "2019-118");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2019-04-12");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2019-05-12");
	g_assert_cmpfloat_with_epsilon(num_of(r, "net_amount"), 2500, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "tax_amount"), 500, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "total_amount"), 3000, 0.001);
	json_free(r);
}

void reader_pdf_tests(void)
{
	g_test_add_func("/reader/pdf/label-over-value", test_pdf_label_over_value);
	g_test_add_func("/reader/pdf/totals-on-page-two", test_pdf_totals_on_page_two);
	g_test_add_func("/reader/pdf/french-prepayment", test_pdf_french_prepayment);
}
