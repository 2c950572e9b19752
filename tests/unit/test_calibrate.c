/* Unit tests of extractors/calibrate: each rule that lowers a document's confidence, on
 * fields and page texts written here, and the same fields left alone where the page gives no
 * reason to doubt them. */
#include <glib.h>
#include <string.h>

#include "core/json.h"
#include "extractors/calibrate.h"

/* An invoice's fields as extract.h's result holds them, each on page 1, every key field sure. */
static const char FIELDS[] =
    "{\"supplier_name\":{\"value\":\"Muster Bau GmbH\",\"confidence\":0.95,\"page\":1},"
    "\"invoice_number\":{\"value\":\"R-2014-117\",\"confidence\":0.99,\"page\":1},"
    "\"issue_date\":{\"value\":\"2014-05-19\",\"confidence\":0.95,\"page\":1},"
    "\"due_date\":{\"value\":null,\"confidence\":0},"
    "\"iban\":{\"value\":null,\"confidence\":0},"
    "\"supplier_vat_id\":{\"value\":null,\"confidence\":0},"
    "\"currency\":{\"value\":\"EUR\",\"confidence\":0.9,\"page\":1},"
    "\"net_amount\":{\"value\":100,\"confidence\":0.99,\"page\":1},"
    "\"tax_amount\":{\"value\":19,\"confidence\":0.99,\"page\":1},"
    "\"total_amount\":{\"value\":119,\"confidence\":0.99,\"page\":1},"
    "\"tax_lines\":{\"value\":[{\"rate\":19,\"tax\":19}],\"confidence\":0.99,\"page\":1},"
    "\"line_items\":{\"value\":[{\"description\":\"Mauerwerk\",\"quantity\":1,\"unit_price\":100,\"amount\":100}],"
    "\"confidence\":0.94,\"page\":1}}";

static const char KEYS[] = "[\"invoice_number\",\"issue_date\",\"total_amount\",\"supplier_name\",\"currency\"]";

/* A page that gives no reason to doubt FIELDS. */
static const char PAGE[] = "Muster Bau GmbH\nRechnung Nr. R-2014-117\nDatum 19.05.2014\nSumme netto 100,00\n"
                           "zzgl. 19 % MwSt. 19,00\nRechnungsbetrag 119,00 EUR\n";

static struct json *parse(const char *text)
{
	struct json *j = NULL;
	g_assert_cmpint(json_parse(text, strlen(text), &j, NULL), ==, QERR_OK);
	return j;
}

/* FIELDS with one field's value replaced (value: JSON text). */
static struct json *fields_with(const char *name, const char *value)
{
	struct json *f = parse(FIELDS);
	if (name) {
		struct json *o = json_get(f, name);
		json_set_item(o, "value", parse(value));
	}
	return f;
}

/* The document's confidence for fields on one page of text (ocr: read by OCR), with checks
 * (JSON text); *ret_reasons (json_free) the reasons given. */
static double run(const struct json *fields, const char *page, bool ocr, const char *checks, struct json **ret_reasons)
{
	struct json *keys = parse(KEYS), *c = parse(checks ? checks : "[]");
	struct json *reasons = json_new_array();
	struct calibrate_page p = {page, ocr};
	double conf = calibrate_document(fields, keys, c, page ? &p : NULL, page ? 1 : 0, reasons);
	json_free(keys);
	json_free(c);
	*ret_reasons = reasons;
	return conf;
}

static bool has_reason(const struct json *reasons, const char *start)
{
	for (size_t i = 0; i < json_array_size(reasons); i++)
		if (g_str_has_prefix(json_string_value(json_array_at(reasons, i)), start))
			return true;
	return false;
}

/* Nothing to doubt: the least sure key field decides, and no reason is given. */
static void test_clean(void)
{
	struct json *f = fields_with(NULL, NULL), *r = NULL;
	g_assert_cmpfloat_with_epsilon(run(f, PAGE, false, NULL, &r), 0.9, 1e-9);
	g_assert_cmpuint(json_array_size(r), ==, 0);
	json_free(r);
	json_free(f);
}

static void test_key_missing_and_failed_check(void)
{
	struct json *f = fields_with("invoice_number", "null"), *r = NULL;
	g_assert_cmpfloat(run(f, PAGE, false, NULL, &r), ==, 0);
	g_assert_true(has_reason(r, "invoice_number: not found"));
	json_free(r);
	json_free(f);
	f = fields_with(NULL, NULL);
	const char *failed = "[{\"check\":\"totals\",\"ok\":false,\"reason\":\"net + tax != total\","
	                     "\"fields\":[\"net_amount\"]},{\"check\":\"iban\",\"ok\":true,\"reason\":\"ok\"}]";
	g_assert_cmpfloat(run(f, PAGE, false, failed, &r), ==, CALIBRATE_FAILED);
	g_assert_true(has_reason(r, "totals: net + tax != total"));
	g_assert_cmpuint(json_array_size(r), ==, 1);
	json_free(r);
	json_free(f);
}

/* Amounts that cannot be checked against each other. */
static void test_amounts_unchecked(void)
{
	struct json *f = fields_with("tax_amount", "null"), *r = NULL;
	g_assert_cmpfloat(run(f, PAGE, false, NULL, &r), ==, CALIBRATE_UNCHECKED);
	g_assert_true(has_reason(r, "amounts:"));
	json_free(r);
	json_free(f);
}

/* A tax rate must be written as a percentage; a base read as the rate is not. */
static void test_tax_rate_written(void)
{
	struct json *f = fields_with("tax_lines", "[{\"rate\":22,\"tax\":1.54}]"), *r = NULL;
	const char *swapped = "Basisbetrag Steuersatz Steuerbetrag\n22,00 7 1,54\nSchweinesteak 4 kg 7%\n";
	g_assert_cmpfloat(run(f, swapped, false, NULL, &r), ==, CALIBRATE_UNCHECKED);
	g_assert_true(has_reason(r, "tax_lines: the rate 22"));
	json_free(r);
	json_free(f);
	/* the same rate written after its sign, "MwSt.-% 19,0", or as "7,00 %" */
	f = fields_with("tax_lines", "[{\"rate\":19,\"tax\":19},{\"rate\":7,\"tax\":0.7}]");
	g_assert_cmpfloat_with_epsilon(run(f, "Basisbetrag: 100,00, MwSt.-% 19,0\nUSt 7,00 % 0,70\n", false, NULL, &r),
	                               0.9, 1e-9);
	g_assert_false(has_reason(r, "tax_lines"));
	json_free(r);
	json_free(f);
	/* a zero-rated line with no tax cannot have its rate and base swapped */
	f = fields_with("tax_lines", "[{\"rate\":0,\"tax\":0}]");
	g_assert_cmpfloat_with_epsilon(run(f, PAGE, false, NULL, &r), 0.9, 1e-9);
	json_free(r);
	json_free(f);
}

/* An IBAN or a due date that the page gives but that was not read. */
static void test_announced_unread(void)
{
	struct json *f = fields_with(NULL, NULL), *r = NULL;
	g_autofree char *iban = g_strconcat(PAGE, "IBAN : DE12 1234 5678 9012 3456 78\n", NULL);
	g_assert_cmpfloat(run(f, iban, false, NULL, &r), ==, CALIBRATE_UNCHECKED);
	g_assert_true(has_reason(r, "iban:"));
	json_free(r);
	g_autofree char *due = g_strconcat(PAGE, "Zahlbar innerhalb 30 Tagen netto bis 04.04.2018, 3% Skonto\n", NULL);
	g_assert_cmpfloat(run(f, due, false, NULL, &r), ==, CALIBRATE_UNCHECKED);
	g_assert_true(has_reason(r, "due_date:"));
	json_free(r);
	json_free(f);
	/* read: nothing to say */
	f = fields_with("due_date", "\"2018-04-04\"");
	g_assert_cmpfloat_with_epsilon(run(f, due, false, NULL, &r), 0.9, 1e-9);
	json_free(r);
	json_free(f);
}

/* The buyer's account (a direct debit) taken for the supplier's IBAN. */
static void test_buyer_account(void)
{
	struct json *f = fields_with("iban", "\"DE21860000000086001055\""), *r = NULL;
	g_autofree char *debit = g_strconcat(PAGE, "Käufer-IBAN\n: DE21 8600 0000 0086 0010 55\n", NULL);
	g_assert_cmpfloat(run(f, debit, false, NULL, &r), ==, CALIBRATE_UNCHECKED);
	g_assert_true(has_reason(r, "iban: the page gives it as the buyer's"));
	json_free(r);
	struct json *v = fields_with("supplier_vat_id", "\"DE234567890\"");
	g_autofree char *yours = g_strconcat(PAGE, "Ihre USt.-IdentNr.: DE234567890\n", NULL);
	g_assert_cmpfloat(run(v, yours, false, NULL, &r), ==, CALIBRATE_UNCHECKED);
	g_assert_true(has_reason(r, "supplier_vat_id: the page gives it as the buyer's"));
	json_free(r);
	json_free(v);
	g_autofree char *own = g_strconcat(PAGE, "Bankverbindung: IBAN DE21860000000086001055\n", NULL);
	g_assert_cmpfloat_with_epsilon(run(f, own, false, NULL, &r), 0.9, 1e-9);
	json_free(r);
	json_free(f);
}

static void test_label_only_item(void)
{
	struct json *f = fields_with("line_items", "[{\"description\":\"GTIN:\",\"quantity\":1,\"amount\":100}]"),
	            *r = NULL;
	g_assert_cmpfloat(run(f, PAGE, false, NULL, &r), ==, CALIBRATE_UNCHECKED);
	g_assert_true(has_reason(r, "line_items:"));
	json_free(r);
	json_free(f);
}

/* Key fields read by OCR stay below the default threshold; values from an e-invoice's XML
 * (no pages) skip the page rules. */
static void test_ocr_and_no_pages(void)
{
	struct json *f = fields_with(NULL, NULL), *r = NULL;
	g_assert_cmpfloat(run(f, PAGE, true, NULL, &r), ==, CALIBRATE_OCR);
	g_assert_true(has_reason(r, "invoice_number: read by OCR") || has_reason(r, "issue_date: read by OCR") ||
	              has_reason(r, "supplier_name: read by OCR"));
	json_free(r);
	json_free(f);
	f = fields_with("tax_lines", "[{\"rate\":22,\"tax\":1.54}]");
	g_assert_cmpfloat_with_epsilon(run(f, NULL, false, NULL, &r), 0.9, 1e-9);
	g_assert_cmpuint(json_array_size(r), ==, 0);
	json_free(r);
	json_free(f);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/calibrate/clean", test_clean);
	g_test_add_func("/calibrate/key-missing-and-failed-check", test_key_missing_and_failed_check);
	g_test_add_func("/calibrate/amounts-unchecked", test_amounts_unchecked);
	g_test_add_func("/calibrate/tax-rate-written", test_tax_rate_written);
	g_test_add_func("/calibrate/announced-unread", test_announced_unread);
	g_test_add_func("/calibrate/buyer-account", test_buyer_account);
	g_test_add_func("/calibrate/label-only-item", test_label_only_item);
	g_test_add_func("/calibrate/ocr-and-no-pages", test_ocr_and_no_pages);
	return g_test_run();
}
