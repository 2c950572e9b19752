/* modelfields: field extraction with the local model (or an OpenAI-compatible
 * endpoint), under the document type's JSON schema.
 *
 * The page text goes into the prompt (cut to fit the context), the model
 * answers under the schema constraint of runtime/ so the answer always parses
 * and validates, and each value gets a confidence from the probabilities of
 * the tokens that spelled it and the page where it occurs. A value that occurs
 * nowhere in the document is marked "supported": false and its confidence
 * lowered: a guard against invented values. */
#pragma once

#include "core/qerr.h"

struct classify_result;
struct doctype;
struct doctypes;
struct json;
struct layout;
struct pdftext_doc;
struct modelfields;

struct modelfields_options {
	const char *model_path; /* a GGUF file */
	const char *endpoint;   /* or a remote base URL (when model_path is empty) */
	const char *chat_template; /* NULL/"": from the file */
	const char *adapters;      /* LoRA adapters of the local model: "FILE[@SCALE], ..." (runtime.h); may be NULL */
	int threads;
	int context;
	int time_limit_s;
};

/* Loads the model once; reuse it for many documents (one thread at a time).
 * *ret owned by the caller; modelfields_close() frees it. */
enum qerr modelfields_open(const struct modelfields_options *opt, struct modelfields **ret, char **reterr)
	QUIRE_MUST_CHECK;
void modelfields_close(struct modelfields *mf);

/* Extracts the fields of type from doc (lay: its layout, for the boxes of values;
 * may be NULL). *ret (json_free) has the rules extractor's shape (rules.h) with
 * "method": "model" and, per value, "supported": whether it occurs in the
 * document. Documents longer than the context go in chunks of pages; scalar
 * fields take the first chunk's non-null value, lists are joined (an item
 * repeated across a chunk boundary once). */
enum qerr modelfields_extract(struct modelfields *mf, const struct doctype *type, const struct pdftext_doc *doc,
                              const struct layout *lay, struct json **ret, char **reterr) QUIRE_MUST_CHECK;

/* Asks the model which of the registry's types doc is (constrained to their names). */
enum qerr modelfields_classify(struct modelfields *mf, const struct doctypes *types, const struct pdftext_doc *doc,
                               struct classify_result *ret, char **reterr) QUIRE_MUST_CHECK;

/* The texts an extraction of type sends: the system message (the instructions and
 * the type's schema) and what comes before and after the pages' text in the
 * user's message. All but the pages' text is the same for every document of the
 * type, and comes first, so that its KV cache is reused. Each g_free'd by the
 * caller. */
void modelfields_request_parts(const struct doctype *type, char **system, char **head, char **tail);

/* modelfields_extract() with the built-in invoice type. */
enum qerr modelfields_invoice(struct modelfields *mf, const struct pdftext_doc *doc, struct json **ret,
                              char **reterr) QUIRE_MUST_CHECK;
