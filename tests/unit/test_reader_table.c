/* Line items from tables drawn with cairo and read back through the real PDF text
 * extraction and the rules extractor: an article-code column set close to the description
 * (one layout cell, cut at the columns' edges from its word boxes), a description wrapped
 * onto the next line and a note under it, a discount row under an item, quantities with
 * three decimals in German and English notation, a subtotal carried over a page break and
 * the table continued on the next page without its header; items listed with no header
 * over the sum they add up to. */
#include <glib.h>
#include <math.h>

#include "core/json.h"
#include "tests/unit/test_reader_pdf.h"

static const struct json *items_of(const struct json *r)
{
	return json_get(json_get(json_get(r, "fields"), "line_items"), "value");
}

static void assert_item(const struct json *it, const char *desc, double qty, double price, double amount)
{
	double v = NAN;
	g_assert_nonnull(it);
	g_assert_cmpstr(json_get_string(it, "description"), ==, desc);
	g_assert_true(json_get_number(it, "quantity", &v));
	g_assert_cmpfloat_with_epsilon(v, qty, 0.001);
	g_assert_true(json_get_number(it, "unit_price", &v));
	g_assert_cmpfloat_with_epsilon(v, price, 0.001);
	g_assert_true(json_get_number(it, "amount", &v));
	g_assert_cmpfloat_with_epsilon(v, amount, 0.001);
}

/* German: "Pos Art.-Nr." and the description close together, so "KR-7 Kunstrasen grün" is
 * one cell; "3,000" is three on a page of "12,00"; "Rabatt 10 %  -1,20" lowers the item
 * above it; the table goes on after "Übertrag" on page two, under page one's columns. */
static void test_table_german_codes_discount_pages(void)
{
	const struct ink inks[] = {{1, 60, 60, 16, 'l', "Gartenbau Linde GmbH"},
	                           {1, 60, 200, 14, 'l', "Rechnung Nr. GL-5521 vom 12.03.2024"},
	                           {1, 50, 300, 9, 'l', "Pos"},
	                           {1, 68, 300, 9, 'l', "Art.-Nr."},
	                           {1, 112, 300, 9, 'l', "Beschreibung"},
	                           {1, 330, 300, 9, 'r', "Menge"},
	                           {1, 420, 300, 9, 'r', "Einzelpreis"},
	                           {1, 530, 300, 9, 'r', "Betrag"},
	                           {1, 52, 315, 9, 'l', "1"},
	                           {1, 68, 315, 9, 'l', "KR-7"},
	                           {1, 95, 315, 9, 'l', "Kunstrasen grün"},
	                           {1, 330, 315, 9, 'r', "3,000"},
	                           {1, 420, 315, 9, 'r', "4,00"},
	                           {1, 530, 315, 9, 'r', "12,00"},
	                           {1, 95, 326, 9, 'l', "3 m breit"},
	                           {1, 95, 337, 9, 'l', "GTIN: 4012345001235"},
	                           {1, 95, 348, 9, 'l', "Rabatt 10 %"},
	                           {1, 530, 348, 9, 'r', "-1,20"},
	                           {1, 52, 368, 9, 'l', "2"},
	                           {1, 68, 368, 9, 'l', "SF-5"},
	                           {1, 95, 368, 9, 'l', "Schweinesteak"},
	                           {1, 330, 368, 9, 'r', "5,000"},
	                           {1, 420, 368, 9, 'r', "5,50"},
	                           {1, 530, 368, 9, 'r', "27,50"},
	                           {1, 95, 780, 9, 'l', "Übertrag"},
	                           {1, 530, 780, 9, 'r', "38,30"},
	                           {2, 95, 100, 9, 'l', "Übertrag"},
	                           {2, 530, 100, 9, 'r', "38,30"},
	                           {2, 52, 118, 9, 'l', "3"},
	                           {2, 68, 118, 9, 'l', "PF-1"},
	                           {2, 95, 118, 9, 'l', "Pfand"},
	                           {2, 330, 118, 9, 'r', "20"},
	                           {2, 420, 118, 9, 'r', "0,15"},
	                           {2, 530, 118, 9, 'r', "3,00"},
	                           {2, 330, 145, 9, 'l', "Nettobetrag"},
	                           {2, 530, 145, 9, 'r', "41,30"},
	                           {2, 330, 158, 9, 'l', "USt. 19 %"},
	                           {2, 530, 158, 9, 'r', "7,85"},
	                           {2, 330, 171, 9, 'l', "Gesamtbetrag"},
	                           {2, 530, 171, 9, 'r', "49,15"},
	                           {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 2);
	const struct json *items = items_of(r);
	g_assert_cmpuint(json_array_size(items), ==, 3);
	/* 12,00 less 1,20: the unit price is the net one, 10,80 / 3 */
	assert_item(json_array_at(items, 0), "Kunstrasen grün 3 m breit", 3, 3.6, 10.8);
	assert_item(json_array_at(items, 1), "Schweinesteak", 5, 5.5, 27.5);
	assert_item(json_array_at(items, 2), "Pfand", 20, 0.15, 3);
	json_free(r);
}

/* English: a code column of its own and "1.500" hours (1.5 on a page of "120.00", as
 * quantity × rate shows); the description of the second item printed under its numbers;
 * the subtotal row ends the table. */
static void test_table_english_decimals_desc_below(void)
{
	const struct ink inks[] = {{1, 60, 60, 16, 'l', "Brightline Consulting Ltd"},
	                           {1, 60, 200, 14, 'l', "Invoice No. BC-118"},
	                           {1, 60, 300, 9, 'l', "Code"},
	                           {1, 110, 300, 9, 'l', "Description"},
	                           {1, 340, 300, 9, 'r', "Qty"},
	                           {1, 430, 300, 9, 'r', "Unit price"},
	                           {1, 530, 300, 9, 'r', "Amount"},
	                           {1, 60, 315, 9, 'l', "C-10"},
	                           {1, 110, 315, 9, 'l', "Workshop facilitation"},
	                           {1, 340, 315, 9, 'r', "1.500"},
	                           {1, 430, 315, 9, 'r', "80.00"},
	                           {1, 530, 315, 9, 'r', "120.00"},
	                           {1, 60, 335, 9, 'l', "T-2"},
	                           {1, 340, 335, 9, 'r', "2"},
	                           {1, 430, 335, 9, 'r', "45.00"},
	                           {1, 530, 335, 9, 'r', "90.00"},
	                           {1, 110, 346, 9, 'l', "Travel allowance"},
	                           {1, 330, 370, 9, 'l', "Subtotal"},
	                           {1, 530, 370, 9, 'r', "210.00"},
	                           {1, 330, 383, 9, 'l', "VAT 20%"},
	                           {1, 530, 383, 9, 'r', "42.00"},
	                           {1, 330, 396, 9, 'l', "Total"},
	                           {1, 530, 396, 9, 'r', "252.00"},
	                           {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 1);
	const struct json *items = items_of(r);
	g_assert_cmpuint(json_array_size(items), ==, 2);
	assert_item(json_array_at(items, 0), "Workshop facilitation", 1.5, 80, 120);
	assert_item(json_array_at(items, 1), "Travel allowance", 2, 45, 90);
	json_free(r);
}

/* A premium invoice with no table header: "text ... amount" rows over the sum that adds them
 * up are the items, one unit each; notes between them are passed over. */
static void test_table_list_without_header(void)
{
	const struct ink inks[] = {{1, 60, 60, 16, 'l', "Nordlicht Versicherung AG"},
	                           {1, 60, 200, 12, 'l', "Beitragsrechnung Nr. 2024-77812 vom 02.01.2024"},
	                           {1, 60, 280, 10, 'l', "Folgende Risiken sind versichert:"},
	                           {1, 60, 295, 10, 'l', "Privathaftpflicht"},
	                           {1, 400, 295, 10, 'r', "84,00 €"},
	                           {1, 60, 308, 10, 'l', "- Deckungssumme 10 Mio. € pauschal"},
	                           {1, 60, 321, 10, 'l', "Hausratversicherung"},
	                           {1, 400, 321, 10, 'r', "126,50 €"},
	                           {1, 60, 334, 10, 'l', "Gesamtbeitrag"},
	                           {1, 400, 334, 10, 'r', "210,50 €"},
	                           {1, 60, 347, 10, 'l', "Versicherungsteuer 19 %"},
	                           {1, 400, 347, 10, 'r', "40,00 €"},
	                           {1, 60, 360, 10, 'l', "Rechnungsbetrag"},
	                           {1, 400, 360, 10, 'r', "250,50 €"},
	                           {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 1);
	const struct json *items = items_of(r);
	g_assert_cmpuint(json_array_size(items), ==, 2);
	assert_item(json_array_at(items, 0), "Privathaftpflicht", 1, 84, 84);
	assert_item(json_array_at(items, 1), "Hausratversicherung", 1, 126.5, 126.5);
	json_free(r);
}

/* Amounts over a "total" that they do not add up to are no list of items. */
static void test_table_list_must_add_up(void)
{
	const struct ink inks[] = {{1, 60, 60, 16, 'l', "Nordlicht Versicherung AG"},
	                           {1, 60, 200, 12, 'l', "Beitragsrechnung Nr. 2024-77813 vom 02.01.2024"},
	                           {1, 60, 295, 10, 'l', "Privathaftpflicht"},
	                           {1, 400, 295, 10, 'r', "84,00 €"},
	                           {1, 60, 321, 10, 'l', "Hausratversicherung"},
	                           {1, 400, 321, 10, 'r', "126,50 €"},
	                           {1, 60, 334, 10, 'l', "Gesamtbeitrag"},
	                           {1, 400, 334, 10, 'r', "300,00 €"},
	                           {0, 0, 0, 0, 0, NULL}};
	struct json *r = read_pdf(inks, 1);
	g_assert_cmpuint(json_array_size(items_of(r)), ==, 0);
	json_free(r);
}

void reader_table_tests(void)
{
	g_test_add_func("/reader/table/list-without-header", test_table_list_without_header);
	g_test_add_func("/reader/table/list-must-add-up", test_table_list_must_add_up);
	g_test_add_func("/reader/table/german-codes-discount-pages", test_table_german_codes_discount_pages);
	g_test_add_func("/reader/table/english-decimals-description-below", test_table_english_decimals_desc_below);
}
