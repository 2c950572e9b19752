/* pdftext: text and metadata of a PDF, page by page, with Poppler.
 *
 * This runs on hostile input: call it only inside the sandbox child
 * (extractors/sandbox.h), never in the worker itself. Limits: the page count
 * cap and PDFTEXT_MAX_TEXT bytes of text in all. The result can travel as JSON
 * (pdftext_doc_to_json / pdftext_doc_from_json) through the sandbox's channel. */
#pragma once

#include <stddef.h>

#include "core/qerr.h"

struct json;

#define PDFTEXT_MAX_TEXT (64u << 20)

struct pdftext_page {
	char *text;         /* UTF-8, reading order */
	double width, height; /* points */
	char *method;       /* "text" (text layer) or "none" (no usable text) */
};

struct pdftext_doc {
	int n_pages;        /* pages extracted */
	int total_pages;    /* pages in the file */
	struct pdftext_page *pages;
	char *title, *author, *producer, *creation_date;
};

/* Extracts up to max_pages pages. *ret owned by the caller (pdftext_doc_free). Errors:
 * QERR_EMPTY, QERR_NOT_PDF, QERR_PARSE_FAILED (damaged), QERR_KEY (encrypted, wrong or
 * no password), QERR_TOO_LARGE (page or text limits). */
enum qerr pdftext_extract(const void *pdf, size_t len, const char *password, int max_pages,
                          struct pdftext_doc **ret, char **reterr) QUIRE_MUST_CHECK;
void pdftext_doc_free(struct pdftext_doc *doc);

/* Whether the bytes start like a PDF (a "%PDF-" header within the first 1024 bytes). */
int pdftext_looks_like_pdf(const void *data, size_t len);

/* JSON form: {"total_pages":N,"meta":{...},"pages":[{"text":..,"width":..,...}]}. Caller frees (json_free). */
struct json *pdftext_doc_to_json(const struct pdftext_doc *doc);
enum qerr pdftext_doc_from_json(const struct json *j, struct pdftext_doc **ret, char **reterr) QUIRE_MUST_CHECK;
