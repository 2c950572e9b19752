/* Unit tests of the invoice page reader (extractors/reader.h) through the rules extractor:
 * small pages in several languages and layouts, written here as cells at positions on an
 * A4 page (words with boxes, as pdftext gives them), and a few invoices drawn with cairo
 * and read back through the real PDF text extraction. */
#include <cairo-pdf.h>
#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/layout.h"
#include "extractors/pdftext.h"
#include "extractors/reader.h"
#include "extractors/rules.h"

/* A cell of text at (x, y), font size pt. */
struct cell {
	float x, y, size;
	const char *text;
};

/* One A4 page whose words have boxes: each cell's words at about half a point per
 * point of size and character, a quarter of the size apart. Caller frees (pdftext_doc_free). */
static struct pdftext_doc *page_of(const struct cell *cells)
{
	GString *text = g_string_new(NULL);
	GArray *words = g_array_new(FALSE, TRUE, sizeof(struct pdftext_word));
	for (const struct cell *c = cells; c->text; c++) {
		float x = c->x;
		g_auto(GStrv) parts = g_strsplit(c->text, " ", -1);
		for (int i = 0; parts[i]; i++) {
			if (!parts[i][0])
				continue;
			float w = 0.5f * c->size * (float)g_utf8_strlen(parts[i], -1);
			struct pdftext_word wd = {.start = (uint32_t)text->len,
			                          .len = (uint32_t)strlen(parts[i]),
			                          .box = {x, c->y, x + w, c->y + c->size},
			                          .confidence = -1};
			g_array_append_val(words, wd);
			g_string_append(text, parts[i]);
			g_string_append_c(text, ' ');
			x += w + 0.25f * c->size;
		}
		g_string_append_c(text, '\n');
	}
	struct pdftext_doc *doc = g_new0(struct pdftext_doc, 1);
	doc->n_pages = doc->total_pages = 1;
	doc->pages = g_new0(struct pdftext_page, 1);
	doc->pages[0].width = 595;
	doc->pages[0].height = 842;
	doc->pages[0].method = g_strdup("text");
	doc->pages[0].ocr_confidence = -1;
	doc->pages[0].n_words = words->len;
	doc->pages[0].words = (struct pdftext_word *)(void *)g_array_free(words, FALSE);
	doc->pages[0].text = g_string_free(text, FALSE);
	return doc;
}

static struct json *read_cells(const struct cell *cells)
{
	struct pdftext_doc *doc = page_of(cells);
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

#define assert_amount(r, name, want) g_assert_cmpfloat_with_epsilon(num_of(r, name), want, 0.001)

/* A German letter: sender line over the address window, labels left of their values,
 * the tax line's rate beside its amount. */
static void test_german_letter(void)
{
	const struct cell page[] = {
	    {60, 40, 16, "Muster Bau"},
	    {60, 140, 7, "Muster Bau GmbH · Hauptstraße 5 · 10115 Berlin"},
	    {60, 160, 10, "Kunden AG Mitte"},
	    {60, 172, 10, "Kundenstraße 15"},
	    {60, 184, 10, "69876 Frankfurt"},
	    {380, 160, 10, "Rechnung Nr."},
	    {470, 160, 10, "R-2014-117"},
	    {380, 172, 10, "Lieferdatum"},
	    {470, 172, 10, "02.05.2014"},
	    {380, 184, 10, "Datum"},
	    {470, 184, 10, "19.05.2014"},
	    {60, 260, 14, "Rechnung"},
	    {60, 290, 10, "Gemäß Ihrer Bestellung vom 28.04.2014 berechnen wir:"},
	    {60, 320, 10, "Pos"},
	    {100, 320, 10, "Bezeichnung"},
	    {330, 320, 10, "Menge"},
	    {400, 320, 10, "Einzelpreis"},
	    {490, 320, 10, "Betrag"},
	    {60, 334, 10, "1"},
	    {100, 334, 10, "Mauerwerk Erdgeschoss"},
	    {330, 334, 10, "1"},
	    {400, 334, 10, "1.234,56"},
	    {490, 334, 10, "1.234,56"},
	    {330, 380, 10, "Summe netto"},
	    {490, 380, 10, "1.234,56 €"},
	    {330, 394, 10, "zzgl. 19 % MwSt."},
	    {490, 394, 10, "234,57 €"},
	    {330, 408, 10, "Rechnungsbetrag"},
	    {490, 408, 10, "1.469,13 €"},
	    {60, 450, 10, "Zahlbar bis 18.06.2014 ohne Abzug."},
	    {60, 780, 7, "Muster Bau GmbH  USt-IdNr. DE123456789  IBAN DE02 1203 0000 0000 2020 51"},
	    {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Muster Bau GmbH");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "R-2014-117");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2014-05-19");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2014-06-18");
	g_assert_cmpstr(str_of(r, "currency"), ==, "EUR");
	assert_amount(r, "net_amount", 1234.56);
	assert_amount(r, "tax_amount", 234.57); /* never the rate, 19 */
	assert_amount(r, "total_amount", 1469.13);
	json_free(r);
}

/* French, inline: "Facture n° X du DATE", supplier and buyer by their labels, space-grouped amounts. */
static void test_french_inline(void)
{
	const struct cell page[] = {{60, 50, 16, "Facture n° FA-778 du 19 mai 2014"},
	                            {60, 100, 10, "Fournisseur : Boulangerie Dupont SARL"},
	                            {320, 100, 10, "Facturé à : Hôtel Lumière"},
	                            {60, 130, 10, "Date d'échéance : 18/06/2014"},
	                            {60, 144, 10, "Date de livraison : 12/05/2014"},
	                            {330, 300, 10, "Total HT"},
	                            {480, 300, 10, "1 234,56 €"},
	                            {330, 314, 10, "TVA 20 %"},
	                            {480, 314, 10, "246,91 €"},
	                            {330, 328, 10, "Total TTC"},
	                            {480, 328, 10, "1 481,47 €"},
	                            {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Boulangerie Dupont SARL");
	g_assert_cmpstr(str_of(r, "buyer_name"), ==, "Hôtel Lumière");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "FA-778");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2014-05-19");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2014-06-18");
	assert_amount(r, "net_amount", 1234.56);
	assert_amount(r, "tax_amount", 246.91);
	assert_amount(r, "total_amount", 1481.47);
	g_assert_cmpstr(str_of(r, "currency"), ==, "EUR");
	json_free(r);
}

/* American English: "Invoice # X dated Month D, YYYY", month-first dates, the letterhead, Bill to. */
static void test_english_us(void)
{
	const struct cell page[] = {{60, 40, 20, "Pinecrest Analytics LLC"},
	                            {60, 66, 9, "400 Market Street, Suite 2, Denver CO 80202"},
	                            {60, 110, 12, "Invoice # 4471 dated May 19, 2014"},
	                            {60, 150, 10, "Bill to"},
	                            {60, 164, 10, "Riverside Clinic"},
	                            {60, 176, 10, "12 Elm Road, Boulder CO 80301"},
	                            {380, 150, 10, "Due Date"},
	                            {460, 150, 10, "06/08/2014"},
	                            {380, 164, 10, "Ship Date"},
	                            {460, 164, 10, "05/02/2014"},
	                            {330, 400, 10, "Subtotal"},
	                            {480, 400, 10, "$1,234.56"},
	                            {330, 414, 10, "Sales Tax (8.25%)"},
	                            {480, 414, 10, "$101.85"},
	                            {330, 428, 10, "Total Due"},
	                            {480, 428, 10, "$1,336.41"},
	                            {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Pinecrest Analytics LLC");
	g_assert_cmpstr(str_of(r, "buyer_name"), ==, "Riverside Clinic");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "4471");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2014-05-19");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2014-06-08"); /* month first on this page */
	g_assert_cmpstr(str_of(r, "currency"), ==, "USD");
	assert_amount(r, "net_amount", 1234.56);
	assert_amount(r, "tax_amount", 101.85);
	assert_amount(r, "total_amount", 1336.41);
	json_free(r);
}

/* Spanish: labels with the value in the same cell, "Base imponible", "IVA 21%". */
static void test_spanish(void)
{
	const struct cell page[] = {{60, 40, 16, "Talleres Ruiz S.L."},
	                            {60, 100, 10, "Factura nº: A-2014/55"},
	                            {60, 114, 10, "Fecha de emisión: 19/05/2014"},
	                            {60, 128, 10, "Fecha de vencimiento: 18/06/2014"},
	                            {320, 100, 10, "Cliente:"},
	                            {320, 114, 10, "Distribuciones Norte S.A."},
	                            {330, 300, 10, "Base imponible"},
	                            {480, 300, 10, "1.000,00"},
	                            {330, 314, 10, "IVA 21%"},
	                            {480, 314, 10, "210,00"},
	                            {330, 328, 10, "Total factura"},
	                            {480, 328, 10, "1.210,00 EUR"},
	                            {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Talleres Ruiz S.L.");
	g_assert_cmpstr(str_of(r, "buyer_name"), ==, "Distribuciones Norte S.A.");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "A-2014/55");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2014-05-19");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2014-06-18");
	assert_amount(r, "net_amount", 1000);
	assert_amount(r, "tax_amount", 210);
	assert_amount(r, "total_amount", 1210);
	g_assert_cmpstr(str_of(r, "currency"), ==, "EUR");
	json_free(r);
}

/* Italian: "Fattura n. X del DATE", "Imponibile", "Totale documento", the supplier's label. */
static void test_italian(void)
{
	const struct cell page[] = {{60, 60, 12, "Fattura n. 2014/77 del 19/05/2014"},
	                            {60, 100, 10, "Fornitore:"},
	                            {60, 114, 10, "Rossi Forniture S.r.l."},
	                            {60, 128, 10, "Via Roma 1, 20121 Milano"},
	                            {320, 100, 10, "Destinatario:"},
	                            {320, 114, 10, "Bianchi Costruzioni S.p.A."},
	                            {60, 160, 10, "Scadenza: 18/06/2014"},
	                            {330, 300, 10, "Imponibile"},
	                            {480, 300, 10, "500,00"},
	                            {330, 314, 10, "IVA 22%"},
	                            {480, 314, 10, "110,00"},
	                            {330, 328, 10, "Totale documento"},
	                            {480, 328, 10, "€ 610,00"},
	                            {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Rossi Forniture S.r.l.");
	g_assert_cmpstr(str_of(r, "buyer_name"), ==, "Bianchi Costruzioni S.p.A.");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "2014/77");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2014-05-19");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2014-06-18");
	assert_amount(r, "net_amount", 500);
	assert_amount(r, "tax_amount", 110);
	assert_amount(r, "total_amount", 610);
	json_free(r);
}

/* Dutch: values in the cell right of their labels; "Totaal te betalen". */
static void test_dutch(void)
{
	const struct cell page[] = {{60, 40, 18, "Bakkerij De Vries B.V."},
	                            {360, 100, 10, "Factuurnummer"},
	                            {460, 100, 10, "2014-0042"},
	                            {360, 114, 10, "Factuurdatum"},
	                            {460, 114, 10, "19-05-2014"},
	                            {360, 128, 10, "Vervaldatum"},
	                            {460, 128, 10, "18-06-2014"},
	                            {330, 300, 10, "Subtotaal"},
	                            {480, 300, 10, "€ 800,00"},
	                            {330, 314, 10, "BTW 21%"},
	                            {480, 314, 10, "€ 168,00"},
	                            {330, 328, 10, "Totaal te betalen"},
	                            {480, 328, 10, "€ 968,00"},
	                            {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Bakkerij De Vries B.V.");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "2014-0042");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2014-05-19");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2014-06-18");
	assert_amount(r, "net_amount", 800);
	assert_amount(r, "tax_amount", 168);
	assert_amount(r, "total_amount", 968);
	json_free(r);
}

/* Totals as a table: a header row over its values, two rates and their sum row; the
 * consistent last row wins over the first rate's row. */
static void test_totals_table(void)
{
	const struct cell page[] = {{60, 40, 16, "Lieferant GmbH"},
	                            {60, 100, 10, "Rechnungsnummer: 471102"},
	                            {60, 114, 10, "Rechnungsdatum: 05.03.2018"},
	                            {60, 300, 9, "Warenwert"},
	                            {200, 300, 9, "Nettobetrag"},
	                            {300, 300, 9, "MwSt-Betrag"},
	                            {400, 300, 9, "MwSt-%"},
	                            {480, 300, 9, "Endbetrag"},
	                            {60, 312, 9, "198,00"},
	                            {200, 312, 9, "198,00"},
	                            {300, 312, 9, "37,62"},
	                            {400, 312, 9, "19,0"},
	                            {480, 312, 9, "235,62"},
	                            {60, 324, 9, "275,00"},
	                            {200, 324, 9, "275,00"},
	                            {300, 324, 9, "19,25"},
	                            {400, 324, 9, "7,0"},
	                            {480, 324, 9, "294,25"},
	                            {60, 336, 9, "473,00"},
	                            {200, 336, 9, "473,00"},
	                            {300, 336, 9, "56,87"},
	                            {400, 336, 9, "EUR"},
	                            {480, 336, 9, "529,87"},
	                            {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	assert_amount(r, "net_amount", 473);
	assert_amount(r, "tax_amount", 56.87);
	assert_amount(r, "total_amount", 529.87);
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "471102");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2018-03-05");
	/* both rates are tax lines */
	const struct json *tl = json_get(json_get(json_get(r, "fields"), "tax_lines"), "value");
	g_assert_cmpuint(json_array_size(tl), ==, 2);
	json_free(r);
}

/* A credit note: the page's negative amounts are the credit's magnitudes; Swiss grouping. */
static void test_credit_note(void)
{
	const struct cell page[] = {{60, 40, 16, "Alpen Software AG"},  {60, 80, 14, "Gutschrift Nr. G-12"},
	                            {60, 110, 10, "Datum: 19.05.2014"}, {330, 300, 10, "Total netto"},
	                            {480, 300, 10, "CHF -1'000.00"},    {330, 314, 10, "MWST 8.1%"},
	                            {480, 314, 10, "CHF -81.00"},       {330, 328, 10, "Total inkl. MWST"},
	                            {480, 328, 10, "CHF -1'081.00"},    {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "G-12");
	assert_amount(r, "net_amount", 1000);
	assert_amount(r, "tax_amount", 81);
	assert_amount(r, "total_amount", 1081);
	g_assert_cmpstr(str_of(r, "currency"), ==, "CHF");
	json_free(r);
}

/* Party labels: "Verkäufer:" with the name a few lines down, past "key : value" lines; the
 * buyer's block is never the supplier even when it comes first and has a legal form. */
static void test_party_blocks(void)
{
	const struct cell page[] = {{60, 40, 9, "Stylesheet für die Anzeige von Rechnungen"},
	                            {60, 90, 13, "Handelsrechnung Nr. 471102 vom 05.03.2018"},
	                            {60, 130, 9, "Käufer:"},
	                            {60, 141, 9, "Kunden AG Mitte"},
	                            {60, 152, 9, "Kundenstraße 15"},
	                            {60, 200, 9, "Verkäufer:"},
	                            {60, 211, 9, "Nummer"},
	                            {130, 211, 9, ": 549910"},
	                            {60, 222, 9, "Globale Nummer: 4000001123452"},
	                            {60, 233, 9, "Lieferant GmbH"},
	                            {60, 244, 9, "Lieferantenstraße 20"},
	                            {60, 300, 9, "Rechnung gemäß Bestellung vom 01.03.2018."},
	                            {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Lieferant GmbH");
	g_assert_cmpstr(str_of(r, "buyer_name"), ==, "Kunden AG Mitte");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "471102");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2018-03-05"); /* not the order's date */
	json_free(r);
}

/* Plain text without boxes (a document read back from JSON) still reads. */
static void test_plain_text(void)
{
	struct pdftext_page page = {
	    .text = "Northwind Trading Ltd\nINVOICE\nInvoice No. INV-2209\nInvoice Date: 3 March 2025\n"
	            "Payment due: 2 April 2025\nNet amount: 2,000.00 GBP\nVAT 20%: 400.00 GBP\nTotal: 2,400.00 GBP",
	    .method = "text"};
	struct pdftext_doc doc = {.n_pages = 1, .total_pages = 1, .pages = &page};
	struct json *r = NULL;
	g_assert_cmpint(rules_invoice(&doc, &r, NULL), ==, QERR_OK);
	g_assert_cmpstr(str_of(r, "supplier_name"), ==, "Northwind Trading Ltd");
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "INV-2209");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2025-03-03");
	g_assert_cmpstr(str_of(r, "due_date"), ==, "2025-04-02");
	assert_amount(r, "net_amount", 2000);
	assert_amount(r, "tax_amount", 400);
	assert_amount(r, "total_amount", 2400);
	g_assert_cmpstr(str_of(r, "currency"), ==, "GBP");
	json_free(r);
}

/* A VAT registration number is no tax amount, an ordinal date reads, "Invoice: X" is a number. */
static void test_identifiers_and_ordinals(void)
{
	const struct cell page[] = {{60, 40, 18, "Thames Print Ltd"},
	                            {60, 100, 12, "Invoice: TP-0088"},
	                            {60, 120, 10, "Date: 5th March 2024"},
	                            {330, 300, 10, "Net"},
	                            {480, 300, 10, "£250.00"},
	                            {330, 314, 10, "VAT"},
	                            {480, 314, 10, "£50.00"},
	                            {330, 328, 10, "Total"},
	                            {480, 328, 10, "£300.00"},
	                            {60, 780, 8, "VAT Reg No. 123456789"},
	                            {300, 780, 8, "Company No. 04512345"},
	                            {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	g_assert_cmpstr(str_of(r, "invoice_number"), ==, "TP-0088");
	g_assert_cmpstr(str_of(r, "issue_date"), ==, "2024-03-05");
	assert_amount(r, "net_amount", 250);
	assert_amount(r, "tax_amount", 50);
	assert_amount(r, "total_amount", 300);
	g_assert_cmpstr(str_of(r, "currency"), ==, "GBP");
	json_free(r);
}

/* Month names of every language the reader knows, ordinals, day-first and ISO forms. */
static void test_date_forms(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"19 maggio 2014", "2014-05-19"},     {"19 mei 2014", "2014-05-19"},      {"19 mrt 2014", "2014-03-19"},
	    {"19. Mai 2014", "2014-05-19"},       {"19 mai 2014", "2014-05-19"},      {"May 19th, 2014", "2014-05-19"},
	    {"19 de mayo de 2014", "2014-05-19"}, {"1st of June 2014", "2014-06-01"}, {"19.05.2014", "2014-05-19"}};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char out[11] = "";
		g_assert_true(rules_parse_date(cases[i].text, out));
		g_assert_cmpstr(out, ==, cases[i].want);
	}
	double v = 0;
	g_assert_true(rules_parse_amount("9,9000", &v));
	g_assert_cmpfloat_with_epsilon(v, 9.9, 1e-9);
	g_assert_true(rules_parse_amount("1.234", &v));
	g_assert_cmpfloat_with_epsilon(v, 1234, 1e-9);
}

static const char *item_str(const struct json *items, size_t i, const char *key)
{
	return json_get_string(json_array_at(items, i), key);
}

static double item_num(const struct json *items, size_t i, const char *key)
{
	double v = NAN;
	if (!json_get_number(json_array_at(items, i), key, &v))
		return NAN;
	return v;
}

/* Line items under a header stacked over three tight lines, with a position number and an
 * article code column under a header cell they share with the description, a wrapped
 * description, an amount on the line under its quantity and price, a remark, and specks of
 * a margin's rotated text; a tax breakdown table after the items is not an item. */
static void test_items_table(void)
{
	const struct cell page[] = {
	    {60, 40, 16, "Lieferant GmbH"},
	    {60, 200, 9, "Pos Art-Nr. Beschreibung"},
	    {300, 200, 9, "Nettopreis"},
	    {380, 200, 9, "Menge"},
	    {440, 200, 9, "USt."},
	    {500, 190, 9, "Positions-"},
	    {500, 200, 9, "betrag"},
	    {500, 210, 9, "ohne USt."},
	    {60, 232, 9, "1"},
	    {150, 232, 9, "Trennblätter"},
	    {300, 232, 9, "9,9000"},
	    {380, 232, 9, "20 Stk"},
	    {440, 232, 9, "19 %"},
	    {500, 232, 9, "198,00"},
	    {75, 243, 9, "TB100A4"},
	    {150, 243, 9, "A4"},
	    {20, 250, 2, "Z"},
	    {60, 270, 9, "2"},
	    {150, 270, 9, "Joghurt Banane"},
	    {300, 270, 9, "5,5000"},
	    {380, 270, 9, "50 Stk"},
	    {440, 270, 9, "7 %"},
	    {500, 281, 9, "275,00"},
	    {150, 292, 9, "Die Lieferung erfolgt in zwei Teilen wie mit Ihnen am Telefon besprochen"},
	    {60, 330, 9, "Art"},
	    {150, 330, 9, "Basisbetrag"},
	    {300, 330, 9, "Steuersatz"},
	    {500, 330, 9, "Steuerbetrag"},
	    {60, 342, 9, "Umsatzsteuer"},
	    {150, 342, 9, "275,00"},
	    {300, 342, 9, "7"},
	    {500, 342, 9, "19,25"},
	    {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	const struct json *items = json_get(json_get(json_get(r, "fields"), "line_items"), "value");
	g_assert_cmpuint(json_array_size(items), ==, 2);
	g_assert_cmpstr(item_str(items, 0, "description"), ==, "Trennblätter A4");
	g_assert_cmpfloat_with_epsilon(item_num(items, 0, "quantity"), 20, 1e-9);
	g_assert_cmpfloat_with_epsilon(item_num(items, 0, "unit_price"), 9.9, 1e-9);
	g_assert_cmpfloat_with_epsilon(item_num(items, 0, "amount"), 198, 1e-9);
	g_assert_cmpstr(item_str(items, 1, "description"), ==, "Joghurt Banane");
	g_assert_cmpfloat_with_epsilon(item_num(items, 1, "quantity"), 50, 1e-9);
	g_assert_cmpfloat_with_epsilon(item_num(items, 1, "amount"), 275, 1e-9);
	json_free(r);
}

/* Descriptions wrapped at a hyphen: a compound keeps its hyphen and joins without a space,
 * a word broken in the middle loses the hyphen, other wraps join with a space. */
static void test_items_hyphen_wrap(void)
{
	const struct cell page[] = {{60, 40, 16, "Werkstatt Brandl GmbH"},
	                            {60, 200, 9, "Pos"},
	                            {90, 200, 9, "Bezeichnung"},
	                            {300, 200, 9, "Menge"},
	                            {380, 200, 9, "Einzelpreis"},
	                            {480, 200, 9, "Betrag"},
	                            {60, 225, 9, "1"},
	                            {90, 225, 9, "Kühlwasser-"},
	                            {300, 225, 9, "3"},
	                            {380, 225, 9, "4,00"},
	                            {480, 225, 9, "12,00"},
	                            {90, 236, 9, "Pumpe"},
	                            {60, 255, 9, "2"},
	                            {90, 255, 9, "Einbau und Ein-"},
	                            {300, 255, 9, "2"},
	                            {380, 255, 9, "60,00"},
	                            {480, 255, 9, "120,00"},
	                            {90, 266, 9, "stellung"},
	                            {60, 285, 9, "3"},
	                            {90, 285, 9, "Altteile"},
	                            {300, 285, 9, "1"},
	                            {380, 285, 9, "5,00"},
	                            {480, 285, 9, "5,00"},
	                            {90, 296, 9, "entsorgt"},
	                            {90, 320, 9, "Summe netto"},
	                            {480, 320, 9, "137,00"},
	                            {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	const struct json *items = json_get(json_get(json_get(r, "fields"), "line_items"), "value");
	g_assert_cmpuint(json_array_size(items), ==, 3);
	g_assert_cmpstr(item_str(items, 0, "description"), ==, "Kühlwasser-Pumpe");
	g_assert_cmpstr(item_str(items, 1, "description"), ==, "Einbau und Einstellung");
	g_assert_cmpstr(item_str(items, 2, "description"), ==, "Altteile entsorgt");
	g_assert_cmpfloat_with_epsilon(item_num(items, 1, "amount"), 120, 1e-9);
	json_free(r);
}

/* Nothing to read: no value is made up. */
static void test_nothing(void)
{
	const struct cell page[] = {
	    {60, 60, 10, "Meeting notes"}, {60, 80, 10, "We talked about the weather."}, {0, 0, 0, NULL}};
	struct json *r = read_cells(page);
	g_assert_null(str_of(r, "invoice_number"));
	g_assert_true(isnan(num_of(r, "total_amount")));
	g_assert_null(str_of(r, "due_date"));
	json_free(r);
}

void reader_pdf_tests(void);
void reader_table_tests(void);

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/reader/german-letter", test_german_letter);
	g_test_add_func("/reader/french-inline", test_french_inline);
	g_test_add_func("/reader/english-us", test_english_us);
	g_test_add_func("/reader/spanish", test_spanish);
	g_test_add_func("/reader/italian", test_italian);
	g_test_add_func("/reader/dutch", test_dutch);
	g_test_add_func("/reader/totals-table", test_totals_table);
	g_test_add_func("/reader/credit-note", test_credit_note);
	g_test_add_func("/reader/party-blocks", test_party_blocks);
	g_test_add_func("/reader/plain-text", test_plain_text);
	g_test_add_func("/reader/identifiers-and-ordinals", test_identifiers_and_ordinals);
	g_test_add_func("/reader/date-forms", test_date_forms);
	g_test_add_func("/reader/items-table", test_items_table);
	g_test_add_func("/reader/items-hyphen-wrap", test_items_hyphen_wrap);
	g_test_add_func("/reader/nothing", test_nothing);
	reader_pdf_tests();
	reader_table_tests();
	return g_test_run();
}
