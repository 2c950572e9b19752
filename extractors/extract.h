/* extract: one document from PDF bytes to extracted fields.
 *
 * Parses the PDF in the sandbox, then extracts the fields of the document
 * type, with the rules extractor (no model configured) or the model. The
 * result is JSON: document_type, method, fields (each with value, confidence
 * and page) and a page summary (count and the method that produced each
 * page's text). Nothing here touches the database. */
#pragma once

#include <stddef.h>

#include "core/qerr.h"
#include "extractors/sandbox.h"

struct json;
struct modelfields;
struct pdftext_doc;

struct extract_options {
	struct sandbox_limits limits;
	const char *password; /* may be NULL */
	struct modelfields *model; /* NULL: the rules extractor (see modelfields.h) */
};

/* *ret_result (json_free) receives the fields; *ret_doc (pdftext_doc_free, may be
 * NULL if not wanted) the page text. */
enum qerr extract_document(const void *pdf, size_t len, const struct extract_options *opt, struct json **ret_result,
                           struct pdftext_doc **ret_doc, char **reterr) QUIRE_MUST_CHECK;
