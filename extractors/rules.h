/* rules: field extraction without a model, driven by the document type's hints.
 *
 * What to look for comes from the type's schema file (extractors/doctype.h,
 * "x-quire"): label patterns for each field (in English, German, French, Dutch
 * and Spanish for the built-in types), patterns for identifiers found
 * anywhere (IBAN, VAT numbers), the letterhead, lists under a heading, label
 * rows of a table. A label's value is the rest of its cell, the cell to its
 * right, or the cell below (extractors/layout.h), whichever parses as the
 * field's kind. A cell that several fields' labels match belongs to the field
 * whose label covers most of it ("Total HT" is the net, not the total).
 * Values are normalised: dates to ISO 8601, amounts to numbers (1.234,56,
 * 1,234.56, 1 234,56 and 1'234.56 forms), currencies to ISO 4217 codes,
 * IBANs without spaces. Every field carries a confidence in [0, 1], the page
 * and the box (points, top-left origin) where its value was read. */
#pragma once

#include "core/qerr.h"

struct doctype;
struct json;
struct layout;
struct pdftext_doc;

#define RULES_MAX_ITEMS 500 /* items of one list or table */

/* Extracts the fields of type from doc (and its layout; both borrowed).
 * *ret (json_free) looks like {"document_type":..,"method":"rules","fields":{
 * "name":{"value":..,"confidence":..,"page":..,"box":[x0,y0,x1,y1]},..}}, with a
 * null value, confidence 0 and no page for each field that was not found. */
enum qerr rules_extract(const struct doctype *type, const struct pdftext_doc *doc, const struct layout *lay,
                        struct json **ret, char **reterr) QUIRE_MUST_CHECK;

/* rules_extract() with the built-in invoice type. */
enum qerr rules_invoice(const struct pdftext_doc *doc, struct json **ret, char **reterr) QUIRE_MUST_CHECK;

/* Helpers, exposed for tests and the other extractors. An amount like
 * "1.234,56", "1,234.56 EUR", "1 234,56 €" or "€ 12" becomes a number; false when
 * text holds none. */
int rules_parse_amount(const char *text, double *ret);
/* A date in a common written form ("2026-03-14", "14.03.2026", "14/03/2026",
 * "14 March 2026", "14. März 2026", "March 14, 2026", "14 de marzo de 2026")
 * becomes "YYYY-MM-DD" (buffer of 11 bytes); false when none. */
int rules_parse_date(const char *text, char out[11]);
/* The ISO 4217 code of a currency code or symbol in text (static), or NULL. */
const char *rules_currency(const char *text);
