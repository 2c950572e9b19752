/* pdftext: Poppler (glib) text extraction. Poppler and GError stay in this file. */
#include "extractors/pdftext.h"

#include <glib.h>
#include <poppler.h>
#include <string.h>

#include "core/json.h"

int pdftext_looks_like_pdf(const void *data, size_t len)
{
	size_t n = len < 1024 ? len : 1024;
	return n >= 5 && memmem(data, n, "%PDF-", 5) != NULL;
}

static char *dup_or_null(const char *s) { return s ? g_strdup(s) : NULL; }

static enum qerr open_error(const GError *err, char **reterr)
{
	if (g_error_matches(err, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED))
		return qerr_set(reterr, QERR_KEY, "the PDF is password-protected; submit it with its password");
	return qerr_set(reterr, QERR_PARSE_FAILED, "the PDF is damaged and cannot be opened: %s",
	                err ? err->message : "unknown reason");
}

static void fill_meta(PopplerDocument *pd, struct pdftext_doc *doc)
{
	g_autofree char *title = poppler_document_get_title(pd);
	g_autofree char *author = poppler_document_get_author(pd);
	g_autofree char *producer = poppler_document_get_producer(pd);
	doc->title = dup_or_null(title);
	doc->author = dup_or_null(author);
	doc->producer = dup_or_null(producer);
	GDateTime *created = poppler_document_get_creation_date_time(pd);
	if (created) {
		doc->creation_date = g_date_time_format_iso8601(created);
		g_date_time_unref(created);
	}
}

enum qerr pdftext_extract(const void *pdf, size_t len, const char *password, int max_pages,
                          struct pdftext_doc **ret, char **reterr)
{
	if (len == 0)
		return qerr_set(reterr, QERR_EMPTY, "the file is empty");
	if (!pdftext_looks_like_pdf(pdf, len))
		return qerr_set(reterr, QERR_NOT_PDF, "the file is not a PDF (no %%PDF- header)");
	g_autoptr(GBytes) bytes = g_bytes_new_static(pdf, len);
	g_autoptr(GError) gerr = NULL;
	PopplerDocument *pd = poppler_document_new_from_bytes(bytes, password, &gerr);
	if (!pd)
		return open_error(gerr, reterr);
	int total = poppler_document_get_n_pages(pd);
	enum qerr e = QERR_OK;
	if (total <= 0)
		e = qerr_set(reterr, QERR_PARSE_FAILED, "the PDF has no pages");
	else if (total > max_pages)
		e = qerr_set(reterr, QERR_TOO_LARGE, "the PDF has %d pages; the limit is %d (limits.max_pages)", total,
		             max_pages);
	struct pdftext_doc *doc = g_new0(struct pdftext_doc, 1);
	size_t text_bytes = 0;
	if (!e) {
		doc->total_pages = total;
		doc->pages = g_new0(struct pdftext_page, total);
		fill_meta(pd, doc);
	}
	for (int i = 0; !e && i < total; i++) {
		PopplerPage *page = poppler_document_get_page(pd, i);
		if (!page) {
			e = qerr_set(reterr, QERR_PARSE_FAILED, "page %d of the PDF cannot be read", i + 1);
			break;
		}
		struct pdftext_page *p = &doc->pages[i];
		poppler_page_get_size(page, &p->width, &p->height);
		p->text = poppler_page_get_text(page);
		if (!p->text)
			p->text = g_strdup("");
		g_strstrip(p->text);
		p->method = g_strdup(p->text[0] ? "text" : "none");
		text_bytes += strlen(p->text);
		doc->n_pages = i + 1;
		g_object_unref(page);
		if (text_bytes > PDFTEXT_MAX_TEXT)
			e = qerr_set(reterr, QERR_TOO_LARGE, "the PDF's text exceeds %u MiB", PDFTEXT_MAX_TEXT >> 20);
	}
	g_object_unref(pd);
	if (e) {
		pdftext_doc_free(doc);
		return e;
	}
	*ret = doc;
	return QERR_OK;
}

void pdftext_doc_free(struct pdftext_doc *doc)
{
	if (!doc)
		return;
	for (int i = 0; doc->pages && i < doc->n_pages; i++) {
		g_free(doc->pages[i].text);
		g_free(doc->pages[i].method);
	}
	g_free(doc->pages);
	g_free(doc->title);
	g_free(doc->author);
	g_free(doc->producer);
	g_free(doc->creation_date);
	g_free(doc);
}

static void add_opt(struct json *o, const char *key, const char *v)
{
	if (v)
		json_add_string(o, key, v);
	else
		json_add_null(o, key);
}

struct json *pdftext_doc_to_json(const struct pdftext_doc *doc)
{
	struct json *root = json_new_object();
	json_add_number(root, "total_pages", doc->total_pages);
	struct json *meta = json_add_item(root, "meta", json_new_object());
	add_opt(meta, "title", doc->title);
	add_opt(meta, "author", doc->author);
	add_opt(meta, "producer", doc->producer);
	add_opt(meta, "creation_date", doc->creation_date);
	struct json *pages = json_add_item(root, "pages", json_new_array());
	for (int i = 0; i < doc->n_pages; i++) {
		const struct pdftext_page *p = &doc->pages[i];
		struct json *pj = json_append(pages, json_new_object());
		json_add_number(pj, "page", i + 1);
		json_add_number(pj, "width", p->width);
		json_add_number(pj, "height", p->height);
		json_add_string(pj, "method", p->method);
		json_add_string(pj, "text", p->text);
	}
	return root;
}

enum qerr pdftext_doc_from_json(const struct json *j, struct pdftext_doc **ret, char **reterr)
{
	const struct json *pages = json_get(j, "pages");
	size_t n = json_array_size(pages);
	double total = 0;
	if (!json_get_number(j, "total_pages", &total) || total < (double)n || n > 1000000)
		return qerr_set(reterr, QERR_INTERNAL, "malformed page data from the parser process");
	struct pdftext_doc *doc = g_new0(struct pdftext_doc, 1);
	doc->total_pages = (int)n;
	doc->n_pages = (int)n;
	doc->pages = g_new0(struct pdftext_page, n ? n : 1);
	const struct json *meta = json_get(j, "meta");
	doc->title = dup_or_null(json_get_string(meta, "title"));
	doc->author = dup_or_null(json_get_string(meta, "author"));
	doc->producer = dup_or_null(json_get_string(meta, "producer"));
	doc->creation_date = dup_or_null(json_get_string(meta, "creation_date"));
	for (size_t i = 0; i < n; i++) {
		const struct json *pj = json_array_at(pages, i);
		struct pdftext_page *p = &doc->pages[i];
		const char *text = json_get_string(pj, "text");
		const char *method = json_get_string(pj, "method");
		if (!text || !method || !json_get_number(pj, "width", &p->width) ||
		    !json_get_number(pj, "height", &p->height)) {
			pdftext_doc_free(doc);
			return qerr_set(reterr, QERR_INTERNAL, "malformed page %zu from the parser process", i + 1);
		}
		p->text = g_strdup(text);
		p->method = g_strdup(method);
	}
	doc->total_pages = (int)total;
	*ret = doc;
	return QERR_OK;
}
