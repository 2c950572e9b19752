/* pdftext_doc: the extracted document as data: freeing it and its JSON form,
 * shared by the parser and the worker. No Poppler here, so that the programs
 * that only receive documents (quire) do not load it. */
#include "extractors/pdftext.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"

char *pdftext_clip_utf8(char *v, size_t max)
{
	if (strlen(v) > max) {
		char *end = g_utf8_find_prev_char(v, v + max);
		*(end ? end : v) = '\0';
	}
	return v;
}

char *pdftext_clean_string(const char *s)
{
	if (!s)
		return NULL;
	return pdftext_clip_utf8(g_utf8_make_valid(s, -1), PDFTEXT_MAX_STRING);
}

int pdftext_looks_like_pdf(const void *data, size_t len)
{
	size_t n = len < 1024 ? len : 1024;
	return n >= 5 && memmem(data, n, "%PDF-", 5) != NULL;
}

void pdftext_attachment_done(struct pdftext_attachment *a)
{
	if (!a)
		return;
	g_free(a->name);
	g_free(a->data);
	memset(a, 0, sizeof *a);
}

void pdftext_page_done(struct pdftext_page *pg)
{
	if (!pg)
		return;
	g_free(pg->text);
	g_free(pg->method);
	g_free(pg->words);
	g_free(pg->lines);
	memset(pg, 0, sizeof *pg);
}

void pdftext_field_done(struct pdftext_field *f)
{
	if (!f)
		return;
	g_free(f->name);
	g_free(f->type);
	g_free(f->value);
	memset(f, 0, sizeof *f);
}

void pdftext_doc_free(struct pdftext_doc *doc)
{
	if (!doc)
		return;
	for (int i = 0; doc->pages && i < doc->n_pages; i++)
		pdftext_page_done(&doc->pages[i]);
	g_free(doc->pages);
	for (uint32_t i = 0; doc->fields && i < doc->n_fields; i++)
		pdftext_field_done(&doc->fields[i]);
	g_free(doc->fields);
	for (uint32_t i = 0; doc->warnings && i < doc->n_warnings; i++)
		g_free(doc->warnings[i]);
	g_free(doc->warnings);
	for (uint32_t i = 0; doc->attachments && i < doc->n_attachments; i++)
		pdftext_attachment_done(&doc->attachments[i]);
	g_free(doc->attachments);
	g_free(doc->title);
	g_free(doc->author);
	g_free(doc->producer);
	g_free(doc->creation_date);
	g_free(doc);
}

/* ---- JSON ---- */

static void add_opt(struct json *o, const char *key, const char *v)
{
	if (v)
		json_add_string(o, key, v);
	else
		json_add_null(o, key);
}

static struct json *box_array(struct json *arr, const struct pdftext_box *b)
{
	/* two decimals are finer than any highlight needs and keep the JSON short */
	json_append(arr, json_number(round(b->x0 * 100) / 100));
	json_append(arr, json_number(round(b->y0 * 100) / 100));
	json_append(arr, json_number(round(b->x1 * 100) / 100));
	json_append(arr, json_number(round(b->y1 * 100) / 100));
	return arr;
}

static void page_to_json(struct json *pj, int index, const struct pdftext_page *p)
{
	json_add_number(pj, "page", index + 1);
	json_add_number(pj, "width", p->width);
	json_add_number(pj, "height", p->height);
	json_add_number(pj, "rotation", p->rotation);
	json_add_string(pj, "method", p->method);
	if (p->ocr_confidence >= 0)
		json_add_number(pj, "ocr_confidence", round(p->ocr_confidence * 10) / 10);
	json_add_string(pj, "text", p->text);
	struct json *words = json_add_item(pj, "words", json_new_array());
	for (uint32_t i = 0; i < p->n_words; i++) {
		struct json *w = json_append(words, json_new_array());
		json_append(w, json_number(p->words[i].start));
		json_append(w, json_number(p->words[i].len));
		box_array(w, &p->words[i].box);
		json_append(w, json_number(round(p->words[i].confidence * 10) / 10));
	}
	struct json *lines = json_add_item(pj, "lines", json_new_array());
	for (uint32_t i = 0; i < p->n_lines; i++) {
		struct json *l = json_append(lines, json_new_array());
		json_append(l, json_number(p->lines[i].first_word));
		json_append(l, json_number(p->lines[i].n_words));
		box_array(l, &p->lines[i].box);
	}
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
	for (int i = 0; i < doc->n_pages; i++)
		page_to_json(json_append(pages, json_new_object()), i, &doc->pages[i]);
	struct json *fields = json_add_item(root, "fields", json_new_array());
	for (uint32_t i = 0; i < doc->n_fields; i++) {
		const struct pdftext_field *f = &doc->fields[i];
		struct json *fj = json_append(fields, json_new_object());
		json_add_string(fj, "name", f->name);
		json_add_string(fj, "type", f->type);
		json_add_string(fj, "value", f->value);
		json_add_number(fj, "page", f->page);
		box_array(json_add_item(fj, "box", json_new_array()), &f->box);
	}
	struct json *warnings = json_add_item(root, "warnings", json_new_array());
	for (uint32_t i = 0; i < doc->n_warnings; i++)
		json_append(warnings, json_string(doc->warnings[i]));
	struct json *files = json_add_item(root, "attachments", json_new_array());
	for (uint32_t i = 0; i < doc->n_attachments; i++) {
		struct json *a = json_append(files, json_new_object());
		add_opt(a, "name", doc->attachments[i].name);
		json_add_number(a, "bytes", doc->attachments[i].len);
	}
	return root;
}

/* The words' spans and boxes ([start, len, x0, y0, x1, y1, confidence]); one that does not
 * fit the page's text or has no sensible box is left out, so what remains is usable as is. */
static void words_from_json(const struct json *words, struct pdftext_page *p)
{
	size_t n = MIN(json_array_size(words), (size_t)PDFTEXT_MAX_WORDS), len = strlen(p->text);
	p->words = g_new0(struct pdftext_word, n ? n : 1);
	for (size_t i = 0; i < n; i++) {
		const struct json *w = json_array_at(words, i);
		double v[7] = {0};
		bool ok = json_array_size(w) == 7;
		for (size_t k = 0; ok && k < 7; k++)
			ok = json_number_value(json_array_at(w, k), &v[k]) && isfinite(v[k]);
		if (!ok || v[0] < 0 || v[1] < 1 || v[0] + v[1] > (double)len || v[2] > v[4] || v[3] > v[5] ||
		    fabs(v[2]) > 1e6 || fabs(v[3]) > 1e6 || fabs(v[4]) > 1e6 || fabs(v[5]) > 1e6)
			continue;
		struct pdftext_word *x = &p->words[p->n_words++];
		x->start = (uint32_t)v[0];
		x->len = (uint32_t)v[1];
		x->box = (struct pdftext_box){(float)v[2], (float)v[3], (float)v[4], (float)v[5]};
		x->confidence = (float)v[6];
	}
}

static bool page_from_json(const struct json *pj, struct pdftext_page *p, size_t *text_bytes)
{
	const char *text = json_get_string(pj, "text");
	const char *method = json_get_string(pj, "method");
	double rot = 0, conf = -1;
	json_get_number(pj, "rotation", &rot);
	json_get_number(pj, "ocr_confidence", &conf);
	if (!text || !method || !json_get_number(pj, "width", &p->width) || !json_get_number(pj, "height", &p->height))
		return false;
	*text_bytes += strlen(text);
	if (strlen(text) > PDFTEXT_MAX_PAGE_TEXT || *text_bytes > PDFTEXT_MAX_TEXT)
		return false;
	p->text = g_strdup(text);
	p->method = g_strdup(method);
	words_from_json(json_get(pj, "words"), p);
	p->rotation = rot == 90 || rot == 180 || rot == 270 ? (int)rot : 0;
	p->ocr_confidence = conf >= 0 && conf <= 100 ? conf : -1;
	return true;
}

enum qerr pdftext_doc_from_json(const struct json *j, struct pdftext_doc **ret, char **reterr)
{
	const struct json *pages = json_get(j, "pages");
	size_t n = json_array_size(pages);
	double total = 0;
	if (!json_get_number(j, "total_pages", &total) || total < (double)n || total > 1e7 || n > 1000000)
		return qerr_set(reterr, QERR_BAD_INPUT, "malformed document text: page counts");
	struct pdftext_doc *doc = g_new0(struct pdftext_doc, 1);
	doc->total_pages = (int)total;
	doc->pages = g_new0(struct pdftext_page, n ? n : 1);
	const struct json *meta = json_get(j, "meta");
	doc->title = pdftext_clean_string(json_get_string(meta, "title"));
	doc->author = pdftext_clean_string(json_get_string(meta, "author"));
	doc->producer = pdftext_clean_string(json_get_string(meta, "producer"));
	doc->creation_date = pdftext_clean_string(json_get_string(meta, "creation_date"));
	size_t text_bytes = 0;
	for (size_t i = 0; i < n; i++) {
		doc->n_pages = (int)i + 1;
		if (!page_from_json(json_array_at(pages, i), &doc->pages[i], &text_bytes)) {
			pdftext_doc_free(doc);
			return qerr_set(reterr, QERR_BAD_INPUT, "malformed document text: page %zu", i + 1);
		}
	}
	const struct json *fields = json_get(j, "fields");
	size_t nf = json_array_size(fields);
	doc->fields = g_new0(struct pdftext_field, nf ? MIN(nf, PDFTEXT_MAX_FIELDS) : 1);
	for (size_t i = 0; i < nf && i < PDFTEXT_MAX_FIELDS; i++) {
		const struct json *fj = json_array_at(fields, i);
		double page = 0;
		const char *name = json_get_string(fj, "name"), *type = json_get_string(fj, "type");
		const char *value = json_get_string(fj, "value");
		if (!name || !type || !value || !json_get_number(fj, "page", &page) || page < 1 || page > (double)n)
			continue;
		struct pdftext_field *f = &doc->fields[doc->n_fields++];
		f->name = pdftext_clean_string(name);
		f->type = pdftext_clean_string(type);
		f->value = pdftext_clean_string(value);
		f->page = (int)page;
	}
	const struct json *warnings = json_get(j, "warnings");
	size_t nw = MIN(json_array_size(warnings), PDFTEXT_MAX_WARNINGS);
	doc->warnings = g_new0(char *, nw + 1);
	for (size_t i = 0; i < nw; i++) {
		const char *w = json_string_value(json_array_at(warnings, i));
		if (w)
			doc->warnings[doc->n_warnings++] = pdftext_clean_string(w);
	}
	*ret = doc;
	return QERR_OK;
}
