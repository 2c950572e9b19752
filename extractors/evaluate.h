/* evaluate: precision, recall and F1 of extracted fields against expected values.
 *
 * Each expected document is {"document_type":..,"fields":{name: value}}.
 * Amounts compare as numbers (within half a cent), dates as dates (any written
 * form of the same day), text after folding case and runs of spaces. A
 * scalar right is a true positive; wrong, a false positive and a false
 * negative; missing, a false negative; present where none is expected, a false
 * positive. Lists (line items, diagnoses, parties) count per element: each
 * expected element matched by an equal extracted one (every expected property
 * equal) is a true positive, the rest of either side false negatives or
 * positives. Counts are kept per "type.field", and for groups: every field,
 * an invoice's header fields (number, dates, supplier, currency, net, tax,
 * total: EVAL_HEADER_FIELDS) and its line items. Besides F1, the share of
 * expected header values extracted right ("header fields right"). */
#pragma once

#include <stdbool.h>
#include <stdio.h>

struct json;
struct eval;

struct eval_score {
	long tp, fp, fn;
	double precision, recall, f1;
};

struct eval_totals {
	long documents;
	long schema_valid;          /* results whose values are an instance of their type's schema */
	long values;                /* non-null values extracted */
	long unsupported;           /* of which flagged "supported": false (not found in the document) */
	long approved;              /* documents approved automatically */
	long approved_wrong;        /* of which at least one field was wrong or missing */
	long approved_wrong_header; /* of which at least one header field (EVAL_HEADER_FIELDS) */
	double threshold;           /* the auto-approval threshold the results name (the last seen), or -1 */
	long header_total;          /* invoice header fields (EVAL_HEADER_FIELDS) with an expected value */
	long header_right;          /* of which extracted equal to it */
};

/* The invoice fields counted as "header fields" in eval_totals and the "invoice_header" group. */
#define EVAL_HEADER_FIELDS                                                                                             \
	"invoice_number, issue_date, due_date, supplier_name, currency, net_amount, tax_amount, total_amount"

struct eval *eval_new(void);
void eval_free(struct eval *ev);

/* Adds one document: expected (the labelled file) and result (extract.h's JSON); both borrowed. */
void eval_add(struct eval *ev, const struct json *expected, const struct json *result);

/* The score of "type.field", or of a group: "all", "invoice_header", "invoice_line_items",
 * "document_type". Zero counts when unknown. */
struct eval_score eval_score(const struct eval *ev, const char *key);

struct eval_totals eval_totals(const struct eval *ev);

/* Prints the table: one row per field, then the groups, then the auto-approvals (how many,
 * how many of them with a wrong field, the precision, and the same at other thresholds from
 * the documents' confidences), then documents per minute when per_minute > 0. */
void eval_print(const struct eval *ev, FILE *out, double per_minute);

/* The language a page's text is most likely in, from its commonest words: "de", "en", "fr",
 * "es", "it", "nl", or "?" when none stands out (static). */
const char *eval_language(const char *text);

/* Whether two values are equal in the sense above (exposed for tests). */
bool eval_same(const struct json *expected, const struct json *got);
