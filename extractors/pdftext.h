/* pdftext: text, layout and metadata of a PDF, page by page, with Poppler.
 *
 * This runs on hostile input: call it only inside the sandbox child
 * (extractors/sandbox.h), never in the worker itself. Before Poppler sees the
 * bytes, pdfcheck (extractors/pdfcheck.h) refuses truncated files, broken
 * cross-reference tables, deep nesting and decompression bombs. Pages with no
 * usable text layer are rendered and read by OCR (extractors/ocr.h) when
 * options ask for it.
 *
 * The result is compact: per page the text in reading order (lines joined by
 * '\n', words by one space), every word as a byte span of that text with its
 * box, lines as runs of words with their box. Boxes are in points with the
 * origin at the top-left corner of the page as displayed (rotation applied),
 * so a viewer can draw them over the rendered page. Limits: the page cap,
 * PDFTEXT_MAX_TEXT bytes of text, PDFTEXT_MAX_WORDS words per page and
 * PDFTEXT_MAX_FIELDS form fields. Embedded files that carry a structured
 * invoice (Factur-X, ZUGFeRD, XRechnung, UBL XML) come along as attachments:
 * at most PDFTEXT_MAX_ATTACHMENTS of PDFTEXT_MAX_ATTACHMENT bytes each; other
 * embedded files are never read. The result travels from the sandbox child to
 * the parent through extractors/channel.h, and can be written as JSON
 * (pdftext_doc_to_json / pdftext_doc_from_json). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

struct json;

#define PDFTEXT_MAX_TEXT (64u << 20)
#define PDFTEXT_MAX_PAGE_TEXT (4u << 20)
#define PDFTEXT_MAX_WORDS 200000
#define PDFTEXT_MAX_FIELDS 10000
#define PDFTEXT_MAX_WARNINGS 32
#define PDFTEXT_MAX_STRING 65536 /* metadata values, field names and values */
#define PDFTEXT_MAX_ATTACHMENTS 4
#define PDFTEXT_MAX_ATTACHMENT (8u << 20) /* bytes of one embedded e-invoice XML */
#define PDFTEXT_MAX_NAME 1024             /* an embedded file's name */

struct pdftext_box {
	float x0, y0, x1, y1; /* points, top-left origin, x0 <= x1, y0 <= y1 */
};

struct pdftext_word {
	uint32_t start, len; /* byte span in the page's text */
	struct pdftext_box box;
	float confidence; /* OCR confidence 0..100; -1 for words of the text layer */
};

struct pdftext_line {
	uint32_t first_word, n_words;
	struct pdftext_box box;
};

struct pdftext_page {
	char *text;            /* UTF-8, reading order */
	double width, height;  /* points, as displayed (rotation applied) */
	char *method;          /* "text" (text layer), "ocr" (recognised image) or "none" (no text) */
	int rotation;          /* 0, 90, 180 or 270 degrees */
	double ocr_confidence; /* mean word confidence 0..100 when method is "ocr", else -1 */
	uint32_t n_words, n_lines;
	struct pdftext_word *words;
	struct pdftext_line *lines;
};

struct pdftext_field {
	char *name;  /* fully qualified field name */
	char *type;  /* "text", "checkbox", "radio", "choice" or "signature" */
	char *value; /* text, "on"/"off", selected items joined by '\n'; "" when empty */
	int page;    /* 1-based */
	struct pdftext_box box;
};

/* An embedded file that looks like a structured invoice: its name says so
 * (factur-x.xml, zugferd-invoice.xml, xrechnung.xml, ...) or it is XML whose
 * root element is a CII CrossIndustryInvoice, a ZUGFeRD 1.0
 * CrossIndustryDocument or a UBL Invoice in its standard's namespace. The
 * bytes are unchecked XML for extractors/einvoice.h to judge. */
struct pdftext_attachment {
	char *name;    /* as the PDF names it (valid UTF-8), or NULL */
	uint8_t *data; /* len bytes, NUL-terminated for convenience */
	uint32_t len;
};

struct pdftext_doc {
	int n_pages;     /* pages extracted */
	int total_pages; /* pages in the file */
	struct pdftext_page *pages;
	char *title, *author, *producer, *creation_date; /* NULL when absent */
	uint32_t n_fields;
	struct pdftext_field *fields;
	uint32_t n_warnings;
	char **warnings; /* things repaired or skipped, for people to read */
	uint32_t n_attachments;
	struct pdftext_attachment *attachments; /* e-invoice XML files, the likeliest first */
};

struct pdftext_options {
	const char *password; /* may be NULL */
	int max_pages;
	bool ocr;             /* read pages without a text layer with OCR */
	const char *ocr_lang; /* Tesseract language(s), "eng" when NULL ("deu+eng" for several) */
	int ocr_dpi;          /* rendering resolution for OCR, 300 when 0 */
	bool own_process;     /* the caller is a process that ends with this document (the parser):
	                       * OCR may keep and advise the process's heap (hugemem_heap_advise) */
};

/* An open document being extracted page by page (so the sandbox can report each
 * page as soon as it is done). */
struct pdftext;

/* Checks and opens pdf (borrowed; must outlive the handle). *ret (pdftext_close)
 * holds the metadata in pdftext_meta(). Errors: QERR_EMPTY, QERR_NOT_PDF,
 * QERR_PARSE_FAILED (damaged, with the reason), QERR_KEY (encrypted, no or wrong
 * password), QERR_TOO_LARGE (page cap, decompression bomb). */
enum qerr pdftext_open(const void *pdf, size_t len, const struct pdftext_options *opt, struct pdftext **ret,
                       char **reterr) QUIRE_MUST_CHECK;
void pdftext_close(struct pdftext *p);
/* The document so far: metadata and total_pages; pages and fields stay empty
 * (borrowed, lives as long as p). */
const struct pdftext_doc *pdftext_meta(const struct pdftext *p);

/* Extracts page index (0-based) into *page (caller's storage; pdftext_page_done)
 * and appends its form fields to *fields / *n_fields (caller frees each with
 * pdftext_field_done and the array with g_free). */
enum qerr pdftext_page_extract(struct pdftext *p, int index, struct pdftext_page *page, struct pdftext_field **fields,
                               uint32_t *n_fields, char **reterr) QUIRE_MUST_CHECK;
/* Reads the embedded files that look like structured invoices (see struct
 * pdftext_attachment) into *ret (n_ret of them; each pdftext_attachment_done,
 * the array g_free; NULL when none). A file over the size limit, or one Poppler
 * cannot read, is skipped with a warning. */
void pdftext_attachments(struct pdftext *p, struct pdftext_attachment **ret, uint32_t *n_ret);
void pdftext_attachment_done(struct pdftext_attachment *a);
/* Whether an embedded file's name or first bytes mark it as a structured
 * invoice; 2 for a name of the standards (factur-x.xml ...), 1 for other XML
 * with an e-invoice root element (name and namespace), 0 otherwise. */
int pdftext_einvoice_score(const char *name, const void *data, size_t len);

/* Warnings gathered so far (borrowed). */
const char *const *pdftext_warnings(const struct pdftext *p, uint32_t *n);

/* Whole document in one call (open, every page, close). *ret owned by the caller
 * (pdftext_doc_free). */
enum qerr pdftext_extract(const void *pdf, size_t len, const struct pdftext_options *opt, struct pdftext_doc **ret,
                          char **reterr) QUIRE_MUST_CHECK;
void pdftext_doc_free(struct pdftext_doc *doc);
void pdftext_page_done(struct pdftext_page *page);
void pdftext_field_done(struct pdftext_field *field);

/* Whether the bytes start like a PDF (a "%PDF-" header within the first 1024 bytes). */
int pdftext_looks_like_pdf(const void *data, size_t len);

/* Cuts valid UTF-8 v to at most max bytes, at a character boundary; returns v. */
char *pdftext_clip_utf8(char *v, size_t max);
/* A string from a PDF can hold anything: a copy of s (g_free) made valid UTF-8
 * and cut to PDFTEXT_MAX_STRING bytes; NULL for NULL. */
char *pdftext_clean_string(const char *s);

/* Keeps Poppler's diagnostics (GLib log domain "Poppler") for pdftext_open and
 * pdftext_page_extract, which then refuse a file with a reference loop or a
 * page count larger than the file, naming the cause. Process-wide and meant
 * for the sandbox child; without it those files are read as far as Poppler
 * gets. */
void pdftext_capture_diagnostics(void);

/* Loads what Poppler reads from files on first use (its global settings,
 * fontconfig's font list, a font for unembedded text, iconv's UTF-16 converters)
 * by reading and rendering a one-page document, so that the parser can close the file system after it.
 * With fonts_later (the data folders stay readable), only the converters are
 * loaded: text extraction mostly needs no font file, and a parser should not
 * pay for fontconfig before a document asks for it. */
void pdftext_warm_up(bool fonts_later);
/* Loads the OCR language data lang now; documents opened later with that
 * language use it instead of loading their own. For a parser that can open no
 * file later. Failure is left for the first page that needs OCR to report. */
void pdftext_preload_ocr(const char *lang);

/* JSON form: {"total_pages":N,"meta":{...},"pages":[{"page":1,"text":..,"method":..,
 * "width":..,"height":..,"rotation":..,"words":[[start,len,x0,y0,x1,y1,conf],..],
 * "lines":[[first,count,x0,y0,x1,y1],..]}],"fields":[..],"warnings":[..],
 * "attachments":[{"name":..,"bytes":N},..]} (the attachments' names and sizes,
 * not their content).
 * Caller frees (json_free). */
struct json *pdftext_doc_to_json(const struct pdftext_doc *doc);
/* Reads the JSON form back (limits as above) with the words and their boxes,
 * so a layout (extractors/layout.h) can be rebuilt from it; without the lines
 * and field boxes, which are for viewers. *ret owned by the caller. */
enum qerr pdftext_doc_from_json(const struct json *j, struct pdftext_doc **ret, char **reterr) QUIRE_MUST_CHECK;
