/* einvoice: structured invoices (Factur-X / ZUGFeRD / XRechnung) read from their XML.
 *
 * Three syntaxes: UN/CEFACT Cross Industry Invoice (CII: Factur-X, ZUGFeRD
 * 2.x, XRechnung CII), its predecessor ZUGFeRD 1.0 (CrossIndustryDocument,
 * its own namespaces and element names) and OASIS UBL 2.1 Invoice
 * (XRechnung UBL, Peppol). The XML
 * is the authoritative source of the fields when a PDF carries one: its
 * values become the invoice's fields (method "einvoice"), and the visible page
 * is read by the rules extractor only to cross-check them; a disagreement is
 * a failed check that sends the document to review.
 *
 * libxml2 stays behind this module. The XML is hostile input: at most
 * EINVOICE_MAX_XML bytes, no network access, no external entities or DTDs
 * loaded, entities not substituted, libxml2's own depth limit. */
#pragma once

#include <stddef.h>

#include "core/qerr.h"

struct json;

#define EINVOICE_MAX_XML (8u << 20)
#define EINVOICE_MAX_LINES 2000

/* Reads the invoice fields of xml into *ret (json_free): the invoice type's field
 * names (doctype.h) with plain values, dates as YYYY-MM-DD, amounts as numbers,
 * line_items and tax_lines as lists (a line with none of the item's values, a
 * note, is left out). *ret_syntax: "cii", "zugferd1" or "ubl" (static).
 * QERR_PARSE_FAILED for XML that does not parse, QERR_UNSUPPORTED for XML
 * that is none of them, QERR_TOO_LARGE above the limit. */
enum qerr einvoice_parse(const char *xml, size_t len, struct json **ret, const char **ret_syntax, char **reterr)
	QUIRE_MUST_CHECK;

/* Compares the e-invoice's values with those read from the page (both plain
 * {"field": value} objects, borrowed): for each of number, dates, currency,
 * net, tax and total present in both, whether they agree. Returns a check
 * object for validate.h's list: {"check":"einvoice_matches_page","ok":..,
 * "fields":[disagreeing fields],"reason":..} (json_free). */
struct json *einvoice_crosscheck(const struct json *einvoice, const struct json *page);
