/* rules: field extraction without a model, from labelled values in the text.
 *
 * Looks for labels in English, German, French, Dutch and Spanish ("Invoice
 * number", "Rechnungsnummer", "Total TTC", ...) followed by a value on the same
 * line or the next, and normalises what it finds: dates to ISO 8601, amounts
 * to numbers (both 1.234,56 and 1,234.56 forms), currencies to ISO 4217 codes.
 * Every field carries a confidence in [0, 1] and the page it came from. */
#pragma once

#include "core/qerr.h"

struct json;
struct pdftext_doc;

/* Extracts invoice fields. *ret (json_free) looks like
 * {"document_type":"invoice","method":"rules","fields":{"invoice_number":{"value":..,"confidence":..,"page":..},..}}
 * with a null value for each field that was not found. */
enum qerr rules_invoice(const struct pdftext_doc *doc, struct json **ret, char **reterr) QUIRE_MUST_CHECK;

/* Helpers, exposed for tests. An amount like "1.234,56", "1,234.56 EUR" or "€ 12" becomes
 * a number; false when text holds none. */
int rules_parse_amount(const char *text, double *ret);
/* A date in a common written form becomes "YYYY-MM-DD" (buffer of 11 bytes); false when none. */
int rules_parse_date(const char *text, char out[11]);
