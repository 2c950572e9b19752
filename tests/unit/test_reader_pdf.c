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

#include "tests/unit/test_reader_pdf.h"

struct json *read_pdf(const struct ink *inks, int pages)
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

/* American layout: logo-less letterhead, Bill To and Ship To side by side, a table with
 * Description / Qty / Rate / Amount, a discount line, tax, total and a balance after a payment. */
static void test_pdf_us_service_invoice(void)
{
	const struct ink inks[] = {{1, 60, 60, 18, 'l', "Bright Path Consulting Inc."},
	                           {1, 60, 78, 9, 'l', "220 Pine Avenue, Austin, TX 78701"},
	                           {1, 420, 60, 22, 'l', "INVOICE"},
	                           {1, 420, 95, 10, 'l', "Invoice #"},
	                           {1, 540, 95, 10, 'r', "BP-5512"},
	                           {1, 420, 109, 10, 'l', "Date"},
	                           {1, 540, 109, 10, 'r', "04/22/2024"},
	                           {1, 420, 123, 10, 'l', "Due Date"},
	                           {1, 540, 123, 10, 'r', "05/22/2024"},
	                           {1, 60, 150, 10, 'l', "Bill To"},
	                           {1, 60, 164, 10, 'l', "Lakeside Dental Group"},
	                           {1, 60, 178, 10, 'l', "9 Harbor Road, Dallas, TX 75201"},
	                           {1, 300, 150, 10, 'l', "Ship To"},
	                           {1, 300, 164, 10, 'l', "Lakeside Dental, Suite 4"},
	                           {1, 60, 230, 10, 'l', "Description"},
	                           {1, 380, 230, 10, 'r', "Qty"},
	                           {1, 460, 230, 10, 'r', "Rate"},
	                           {1, 540, 230, 10, 'r', "Amount"},
	                           {1, 60, 248, 10, 'l', "Workflow review and report"},
	                           {1, 380, 248, 10, 'r', "12"},
	                           {1, 460, 248, 10, 'r', "150.00"},
	                           {1, 540, 248, 10, 'r', "1,800.00"},
	                           {1, 60, 264, 10, 'l', "Staff training session"},
	                           {1, 380, 264, 10, 'r', "1"},
	                           {1, 460, 264, 10, 'r', "600.00"},
	                           {1, 540, 264, 10, 'r', "600.00"},
	                           {1, 380, 300, 10, 'l', "Subtotal"},
	                           {1, 540, 300, 10, 'r', "2,400.00"},
	                           {1, 380, 314, 10, 'l', "Discount (5%)"},
	                           {1, 540, 314, 10, 'r', "-120.00"},
	                           {1, 380, 328, 10, 'l', "Tax (8.25%)"},
	                           {1, 540, 328, 10, 'r', "188.10"},
	                           {1, 380, 342, 11, 'l', "Total"},
	                           {1, 540, 342, 11, 'r', "$2,468.10"},
	                           {1, 380, 356, 10, 'l', "Paid"},
	                           {1, 540, 356, 10, 'r', "-500.00"},
	                           {1, 380, 370, 11, 'l', "Balance Due"},
	                           {1, 540, 370, 11, 'r', "$1,968.10"},
	                           {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 1);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Bright Path Consulting Inc.");
	g_assert_cmpstr(str_of(r, "buyer_name"), ==, "Lakeside Dental Group");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "BP-5512");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2024-04-22");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2024-05-22");
	g_assert_cmpstr(str_of(r, "currency"), ==, "USD");
	g_assert_cmpfloat_with_epsilon(num_of(r, "tax_amount"), 188.1, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "total_amount"), 2468.1, 0.001);
	const struct json *items = json_get(json_get(json_get(r, "fields"), "line_items"), "value");
	g_assert_cmpuint(json_array_size(items), ==, 2);
	g_assert_cmpstr(json_get_string(json_array_at(items, 0), "description"), ==, "Workflow review and report");
	json_free(r);
}

/* German craft business: info block with "Rechnungs-Nr." and "Kunden-Nr.", quantity and unit
 * before the description, "Zwischensumme netto", "zzgl. 19 % USt.", "Endbetrag". */
static void test_pdf_german_craft(void)
{
	const struct ink inks[] = {
	    {1, 60, 60, 16, 'l', "Malerbetrieb Krause"},
	    {1, 60, 76, 9, 'l', "Inhaber Jens Krause"},
	    {1, 60, 125, 7, 'l', "Malerbetrieb Krause, Gartenstr. 8, 50667 Köln"},
	    {1, 60, 140, 10, 'l', "Familie Neumann"},
	    {1, 60, 153, 10, 'l', "Rosenweg 3"},
	    {1, 60, 166, 10, 'l', "50931 Köln"},
	    {1, 380, 140, 10, 'l', "Rechnungs-Nr.:"},
	    {1, 470, 140, 10, 'l', "2024-031"},
	    {1, 380, 153, 10, 'l', "Kunden-Nr.:"},
	    {1, 470, 153, 10, 'l', "10442"},
	    {1, 380, 166, 10, 'l', "Datum:"},
	    {1, 470, 166, 10, 'l', "7. Juni 2024"},
	    {1, 60, 220, 14, 'l', "Rechnung"},
	    {1, 60, 250, 9, 'l', "Pos."},
	    {1, 120, 250, 9, 'r', "Menge"},
	    {1, 130, 250, 9, 'l', "Einheit"},
	    {1, 180, 250, 9, 'l', "Bezeichnung"},
	    {1, 460, 250, 9, 'r', "Einzelpreis"},
	    {1, 540, 250, 9, 'r', "Gesamtpreis"},
	    {1, 60, 266, 10, 'l', "1"},
	    {1, 120, 266, 10, 'r', "42,5"},
	    {1, 130, 266, 10, 'l', "m²"},
	    {1, 180, 266, 10, 'l', "Wände streichen, zweifach"},
	    {1, 460, 266, 10, 'r', "12,00"},
	    {1, 540, 266, 10, 'r', "510,00"},
	    {1, 60, 282, 10, 'l', "2"},
	    {1, 120, 282, 10, 'r', "6"},
	    {1, 130, 282, 10, 'l', "Std."},
	    {1, 180, 282, 10, 'l', "Abdeckarbeiten"},
	    {1, 460, 282, 10, 'r', "48,00"},
	    {1, 540, 282, 10, 'r', "288,00"},
	    {1, 330, 320, 10, 'l', "Zwischensumme netto"},
	    {1, 540, 320, 10, 'r', "798,00 €"},
	    {1, 330, 334, 10, 'l', "zzgl. 19 % USt."},
	    {1, 540, 334, 10, 'r', "151,62 €"},
	    {1, 330, 350, 11, 'l', "Endbetrag"},
	    {1, 540, 350, 11, 'r', "949,62 €"},
	    {1, 60, 400, 9, 'l', "Bitte überweisen Sie den Betrag bis zum 21.06.2024 auf unser Konto."},
	    {1, 60, 780, 7, 'l', "Sparkasse KölnBonn  IBAN DE89 3704 0044 0532 0130 00  St.-Nr. 215/5123/4567"},
	    {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 1);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Malerbetrieb Krause");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "2024-031");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2024-06-07");
	g_assert_cmpstr(str_of(r, "currency"), ==, "EUR");
	g_assert_cmpfloat_with_epsilon(num_of(r, "net_amount"), 798, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "tax_amount"), 151.62, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "total_amount"), 949.62, 0.001);
	const struct json *items = json_get(json_get(json_get(r, "fields"), "line_items"), "value");
	g_assert_cmpuint(json_array_size(items), ==, 2);
	g_assert_cmpstr(json_get_string(json_array_at(items, 1), "description"), ==, "Abdeckarbeiten");
	json_free(r);
}

/* French trade invoice: "Désignation / Qté / P.U. HT / Montant HT", a reference column, "Net à payer". */
static void test_pdf_french_trade(void)
{
	const struct ink inks[] = {{1, 60, 60, 16, 'l', "Quincaillerie Morel SARL"},
	                           {1, 60, 76, 8, 'l', "SIRET 812 345 678 00019 - TVA FR40812345678"},
	                           {1, 330, 120, 10, 'l', "Facturé à :"},
	                           {1, 330, 134, 10, 'l', "Garage Lefèvre"},
	                           {1, 60, 120, 12, 'l', "FACTURE"},
	                           {1, 60, 136, 10, 'l', "N° : F24-0457"},
	                           {1, 60, 150, 10, 'l', "Date : 02/09/2024"},
	                           {1, 60, 164, 10, 'l', "Échéance : 02/10/2024"},
	                           {1, 60, 220, 9, 'l', "Réf."},
	                           {1, 120, 220, 9, 'l', "Désignation"},
	                           {1, 400, 220, 9, 'r', "Qté"},
	                           {1, 470, 220, 9, 'r', "P.U. HT"},
	                           {1, 540, 220, 9, 'r', "Montant HT"},
	                           {1, 60, 236, 10, 'l', "VIS-6X40"},
	                           {1, 120, 236, 10, 'l', "Vis à bois 6 x 40 (boîte de 200)"},
	                           {1, 400, 236, 10, 'r', "3"},
	                           {1, 470, 236, 10, 'r', "12,50"},
	                           {1, 540, 236, 10, 'r', "37,50"},
	                           {1, 60, 252, 10, 'l', "CHV-M8"},
	                           {1, 120, 252, 10, 'l', "Chevilles M8"},
	                           {1, 400, 252, 10, 'r', "10"},
	                           {1, 470, 252, 10, 'r', "4,25"},
	                           {1, 540, 252, 10, 'r', "42,50"},
	                           {1, 380, 290, 10, 'l', "Total HT"},
	                           {1, 540, 290, 10, 'r', "80,00 €"},
	                           {1, 380, 304, 10, 'l', "TVA 20 %"},
	                           {1, 540, 304, 10, 'r', "16,00 €"},
	                           {1, 380, 320, 11, 'l', "Net à payer"},
	                           {1, 540, 320, 11, 'r', "96,00 €"},
	                           {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 1);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Quincaillerie Morel SARL");
	g_assert_cmpstr(str_of(r, "buyer_name"), ==, "Garage Lefèvre");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "F24-0457");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2024-09-02");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2024-10-02");
	g_assert_cmpfloat_with_epsilon(num_of(r, "net_amount"), 80, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "tax_amount"), 16, 0.001);
	g_assert_cmpfloat_with_epsilon(num_of(r, "total_amount"), 96, 0.001);
	const struct json *items = json_get(json_get(json_get(r, "fields"), "line_items"), "value");
	g_assert_cmpuint(json_array_size(items), ==, 2);
	g_assert_cmpstr(json_get_string(json_array_at(items, 1), "description"), ==, "Chevilles M8");
	double pu = 0;
	g_assert_true(json_get_number(json_array_at(items, 1), "unit_price", &pu));
	g_assert_cmpfloat_with_epsilon(pu, 4.25, 0.001);
	json_free(r);
}

/* No letterhead (a logo would be an image): the supplier is named only in the footer with its
 * VAT number, while the buyer's block has a legal form too. */
static void test_pdf_footer_supplier(void)
{
	const struct ink inks[] = {
	    {1, 400, 60, 22, 'l', "INVOICE"},
	    {1, 60, 130, 10, 'l', "Bill to:"},
	    {1, 60, 144, 10, 'l', "Acme Hospital Ltd"},
	    {1, 60, 158, 10, 'l', "3 Park Row, York YO1 6GA"},
	    {1, 380, 130, 10, 'l', "Invoice No."},
	    {1, 470, 130, 10, 'l', "NW-7781"},
	    {1, 380, 144, 10, 'l', "Invoice Date"},
	    {1, 470, 144, 10, 'l', "14/02/2025"},
	    {1, 330, 300, 10, 'l', "Subtotal"},
	    {1, 540, 300, 10, 'r', "£1,000.00"},
	    {1, 330, 314, 10, 'l', "VAT 20%"},
	    {1, 540, 314, 10, 'r', "£200.00"},
	    {1, 330, 328, 11, 'l', "Total"},
	    {1, 540, 328, 11, 'r', "£1,200.00"},
	    {1, 60, 790, 7, 'l', "Northwind Traders Ltd  ·  12 High Street, Leeds LS1 4AP  ·  VAT GB 123 4567 89"},
	    {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 1);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Northwind Traders Ltd");
	g_assert_cmpstr(str_of(r, "buyer_name"), ==, "Acme Hospital Ltd");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "NW-7781");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2025-02-14");
	g_assert_cmpfloat_with_epsilon(num_of(r, "total_amount"), 1200, 0.001);
	json_free(r);
}

void reader_pdf_tests(void)
{
	g_test_add_func("/reader/pdf/label-over-value", test_pdf_label_over_value);
	g_test_add_func("/reader/pdf/totals-on-page-two", test_pdf_totals_on_page_two);
	g_test_add_func("/reader/pdf/french-prepayment", test_pdf_french_prepayment);
	g_test_add_func("/reader/pdf/us-service-invoice", test_pdf_us_service_invoice);
	g_test_add_func("/reader/pdf/german-craft", test_pdf_german_craft);
	g_test_add_func("/reader/pdf/french-trade", test_pdf_french_trade);
	g_test_add_func("/reader/pdf/footer-supplier", test_pdf_footer_supplier);
}
