/* extract: one document from PDF bytes to checked fields.
 *
 * Parses the PDF in the sandbox, decides the document type (given at
 * submission, or classified by the model or by keywords), extracts the fields
 * of that type with the rules extractor and, when one is configured, the
 * model, validates them, and scores how sure it is of each field and of the
 * document. Nothing here touches the database.
 *
 * The result is JSON: document_type, classification {method, confidence},
 * method (rules or model), fields {name: {value, confidence, page, box,
 * supported, agrees}}, schema_valid (the values as a whole are an instance
 * of the type's JSON Schema), checks (validate.h), confidence (the document's: the
 * lowest of its key fields', lowered by calibrate.h's rules: a failed check, amounts not
 * checked, values the page announces left unread, OCR), auto_approve
 * (the threshold applied), status
 * ("approved" when confidence reaches the auto-approval threshold and every
 * check passed, else "review"), review_reasons, a page summary (pages
 * [{page, method}], page_count) and, when the model read the fields, model
 * {prompt_tokens, generated_tokens, chunks, generation_seconds}.
 *
 * Confidence of a field: the extractor's own (label position, OCR quality;
 * token probabilities for the model), raised when rules and model agree and
 * lowered when they differ, halved by each failed check it takes part in,
 * and raised a little by each passed cross-check (totals, line sums). */
#pragma once

#include <stdbool.h>

#include <stddef.h>

#include "core/qerr.h"
#include "extractors/sandbox.h"

struct json;
struct modelfields;
struct pdftext_doc;

#define EXTRACT_DEFAULT_APPROVE 0.85

/* Corrections remembered per supplier (extractors/learn.h): lookup receives the
 * supplier's possible identities on this page (learn_supplier_keys, NULL-terminated,
 * borrowed) and returns the hints learned for the first that has any, {field: hint}
 * (the caller json_frees it), or NULL. Called from the thread that extracts. */
struct extract_learned {
	struct json *(*lookup)(void *ctx, char *const *keys);
	void *ctx;
};

struct extract_options {
	struct sandbox_limits limits;
	const char *password;      /* may be NULL */
	struct modelfields *model; /* NULL: the rules extractor only (see modelfields.h) */
	const char *schemas_dir;   /* operator's document types (doctype.h); NULL or "": built-in only */
	const char *doc_type;      /* the type given at submission; NULL: classify */
	/* Document confidence at or above which results are approved without review: 0 approves
	 * every result whose checks pass, above 1 none. Used only when auto_approve_set, so a
	 * zeroed struct gets EXTRACT_DEFAULT_APPROVE and a configured 0 stays 0. */
	double auto_approve;
	bool auto_approve_set;
	/* Read the fields from the pages only, leaving embedded e-invoice XML aside (to measure
	 * the page reader on e-invoices, whose XML is then the truth). */
	bool pages_only;
	/* Where lookup is set, an invoice's fields that a reviewer corrected on an earlier
	 * document of the same supplier are read where the correction was found
	 * (learn_apply), overriding the reader; those fields carry "learned": true. */
	struct extract_learned learned;
};

/* *ret_result (json_free) receives the fields; *ret_doc (pdftext_doc_free, may be
 * NULL if not wanted) the page text. */
enum qerr extract_document(const void *pdf, size_t len, const struct extract_options *opt, struct json **ret_result,
                           struct pdftext_doc **ret_doc, char **reterr) QUIRE_MUST_CHECK;
/* The same, reading the PDF from src chunk by chunk (extractors/sandbox.h). */
struct sandbox_source;
enum qerr extract_document_from(const struct sandbox_source *src, const struct extract_options *opt,
                                struct json **ret_result, struct pdftext_doc **ret_doc, char **reterr) QUIRE_MUST_CHECK;

/* The same from already extracted text (doc borrowed), without the sandbox. An
 * unknown opt->doc_type is QERR_BAD_INPUT. */
enum qerr extract_fields(const struct pdftext_doc *doc, const struct extract_options *opt, struct json **ret_result,
                         char **reterr) QUIRE_MUST_CHECK;

/* The same for a PDF that carries a structured invoice (Factur-X / ZUGFeRD /
 * XRechnung, CII or UBL XML; extractors/einvoice.h): the XML's values are the
 * fields ("method": "einvoice", classification method "einvoice"), the page
 * read by the rules extractor is compared with them ("agrees" per field, and
 * the check "einvoice_matches_page"), and a disagreement sends the document to
 * review. extract_document() takes this path for a PDF whose embedded files
 * (pdftext.h, struct pdftext_attachment) carry an invoice, unless a type other
 * than invoice was given or opt->pages_only is set; classification then names the file. Where no
 * embedded XML reads, the page's fields stand, with "einvoice_error" saying
 * why and the document sent to review. */
enum qerr extract_fields_einvoice(const struct pdftext_doc *doc, const char *xml, size_t len,
                                  const struct extract_options *opt, struct json **ret_result,
                                  char **reterr) QUIRE_MUST_CHECK;

/* The plain values of a result's fields: {"name": value, ...} (json_free). */
struct json *extract_values(const struct json *result);
