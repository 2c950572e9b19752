/* channel: writing and parsing the sandbox reply (format in channel.h).
 *
 * Invariant of the parser: a document is built only from frames that passed
 * every check; the first failed check abandons the reply, frees what was
 * built and names the frame and byte offset. */
#include "extractors/channel.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "extractors/pdftext.h"

#define STR_ABSENT 0xffffffffu
#define WORD_BYTES 28u
#define LINE_BYTES 24u
#define MAX_EXTENT 1e6 /* points; larger than any real page (14,400 pt * UserUnit) */

/* ---- writing ---- */

static void put(struct channel_out *o, const void *p, size_t n)
{
	if (o->cap - o->len < n) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap - o->len < n)
			cap *= 2;
		o->data = g_realloc(o->data, cap);
		o->cap = cap;
	}
	memcpy(o->data + o->len, p, n);
	o->len += n;
}

static void put_u32(struct channel_out *o, uint32_t v)
{
	put(o, &v, 4);
}
static void put_f32(struct channel_out *o, float v)
{
	put(o, &v, 4);
}
static void put_f64(struct channel_out *o, double v)
{
	put(o, &v, 8);
}

static void put_str(struct channel_out *o, const char *s)
{
	if (!s) {
		put_u32(o, STR_ABSENT);
		return;
	}
	uint32_t n = (uint32_t)strlen(s);
	put_u32(o, n);
	put(o, s, n);
}

static void put_box(struct channel_out *o, const struct pdftext_box *b)
{
	put_f32(o, b->x0);
	put_f32(o, b->y0);
	put_f32(o, b->x1);
	put_f32(o, b->y1);
}

/* Starts a frame; returns the offset of its length, patched by end_frame. */
static size_t begin_frame(struct channel_out *o, char type)
{
	put(o, &type, 1);
	size_t at = o->len;
	put_u32(o, 0);
	return at;
}

static void end_frame(struct channel_out *o, size_t at)
{
	uint32_t n = (uint32_t)(o->len - at - 4);
	memcpy(o->data + at, &n, 4);
}

void channel_out_done(struct channel_out *o)
{
	if (!o)
		return;
	g_free(o->data);
	memset(o, 0, sizeof *o);
}

void channel_put_meta(struct channel_out *o, const struct pdftext_doc *meta)
{
	size_t at = begin_frame(o, 'M');
	put_u32(o, (uint32_t)meta->total_pages);
	put_str(o, meta->title);
	put_str(o, meta->author);
	put_str(o, meta->producer);
	put_str(o, meta->creation_date);
	end_frame(o, at);
}

void channel_put_page(struct channel_out *o, uint32_t index, const struct pdftext_page *page)
{
	size_t at = begin_frame(o, 'P');
	put_u32(o, index);
	put_f64(o, page->width);
	put_f64(o, page->height);
	put_u32(o, (uint32_t)page->rotation);
	put_f64(o, page->ocr_confidence);
	put_str(o, page->method);
	put_str(o, page->text);
	put_u32(o, page->n_words);
	for (uint32_t i = 0; i < page->n_words; i++) {
		const struct pdftext_word *w = &page->words[i];
		put_u32(o, w->start);
		put_u32(o, w->len);
		put_box(o, &w->box);
		put_f32(o, w->confidence);
	}
	put_u32(o, page->n_lines);
	for (uint32_t i = 0; i < page->n_lines; i++) {
		put_u32(o, page->lines[i].first_word);
		put_u32(o, page->lines[i].n_words);
		put_box(o, &page->lines[i].box);
	}
	end_frame(o, at);
}

void channel_put_field(struct channel_out *o, const struct pdftext_field *f)
{
	size_t at = begin_frame(o, 'F');
	put_u32(o, (uint32_t)f->page);
	put_str(o, f->name);
	put_str(o, f->type);
	put_str(o, f->value);
	put_box(o, &f->box);
	end_frame(o, at);
}

void channel_put_warning(struct channel_out *o, const char *text)
{
	size_t at = begin_frame(o, 'W');
	put_str(o, text);
	end_frame(o, at);
}

void channel_put_attachment(struct channel_out *o, const struct pdftext_attachment *a)
{
	size_t at = begin_frame(o, 'A');
	put_str(o, a->name);
	put_u32(o, a->len);
	put(o, a->data, a->len);
	end_frame(o, at);
}

void channel_put_error(struct channel_out *o, enum qerr e, const char *message)
{
	size_t at = begin_frame(o, 'E');
	put_u32(o, (uint32_t)e);
	put_str(o, message);
	end_frame(o, at);
}

void channel_put_end(struct channel_out *o, uint32_t n_pages)
{
	size_t at = begin_frame(o, 'Z');
	put_u32(o, n_pages);
	end_frame(o, at);
}

void channel_put_doc(struct channel_out *o, const struct pdftext_doc *doc)
{
	channel_put_meta(o, doc);
	for (int i = 0; i < doc->n_pages; i++) {
		channel_put_page(o, (uint32_t)i, &doc->pages[i]);
		for (uint32_t f = 0; f < doc->n_fields; f++)
			if (doc->fields[f].page == i + 1)
				channel_put_field(o, &doc->fields[f]);
	}
	for (uint32_t i = 0; i < doc->n_attachments; i++)
		channel_put_attachment(o, &doc->attachments[i]);
	for (uint32_t i = 0; i < doc->n_warnings; i++)
		channel_put_warning(o, doc->warnings[i]);
	channel_put_end(o, (uint32_t)doc->n_pages);
}

/* ---- parsing ---- */

struct reader {
	const uint8_t *p;
	size_t len, pos;
};

static bool rd(struct reader *r, void *out, size_t n)
{
	if (r->len - r->pos < n)
		return false;
	memcpy(out, r->p + r->pos, n);
	r->pos += n;
	return true;
}

static bool rd_u32(struct reader *r, uint32_t *v)
{
	return rd(r, v, 4);
}

static bool rd_f64(struct reader *r, double *v, double lo, double hi)
{
	return rd(r, v, 8) && isfinite(*v) && *v >= lo && *v <= hi;
}

static bool rd_box(struct reader *r, struct pdftext_box *b)
{
	float v[4];
	if (!rd(r, v, sizeof v))
		return false;
	for (int i = 0; i < 4; i++)
		if (!isfinite(v[i]) || fabsf(v[i]) > (float)MAX_EXTENT)
			return false;
	*b = (struct pdftext_box){v[0], v[1], v[2], v[3]};
	return b->x0 <= b->x1 && b->y0 <= b->y1;
}

/* A string of at most max bytes: *out newly allocated (NULL if absent and allowed). */
static bool rd_str(struct reader *r, size_t max, bool may_be_absent, char **out, uint32_t *ret_len)
{
	uint32_t n = 0;
	if (!rd_u32(r, &n))
		return false;
	if (n == STR_ABSENT) {
		*out = NULL;
		return may_be_absent;
	}
	if (n > max || r->len - r->pos < n || !g_utf8_validate_len((const char *)r->p + r->pos, n, NULL))
		return false;
	*out = g_strndup((const char *)r->p + r->pos, n);
	r->pos += n;
	if (ret_len)
		*ret_len = n;
	return true;
}

struct parse {
	struct pdftext_doc *doc;
	int max_pages;
	uint32_t pages_cap, fields_cap, attachments_cap;
	size_t text_bytes;
	struct channel_progress prog;
};

static bool parse_meta(struct parse *ps, struct reader *r)
{
	struct pdftext_doc *d = ps->doc;
	uint32_t total = 0;
	if (ps->prog.opened || !rd_u32(r, &total) || total < 1 || total > (uint32_t)ps->max_pages)
		return false;
	d->total_pages = (int)total;
	ps->prog.opened = true;
	ps->prog.total = (int)total;
	return rd_str(r, PDFTEXT_MAX_STRING, true, &d->title, NULL) &&
	       rd_str(r, PDFTEXT_MAX_STRING, true, &d->author, NULL) &&
	       rd_str(r, PDFTEXT_MAX_STRING, true, &d->producer, NULL) &&
	       rd_str(r, PDFTEXT_MAX_STRING, true, &d->creation_date, NULL);
}

static bool parse_words(struct reader *r, struct pdftext_page *pg, uint32_t text_len)
{
	if (!rd_u32(r, &pg->n_words) || pg->n_words > PDFTEXT_MAX_WORDS || (r->len - r->pos) / WORD_BYTES < pg->n_words)
		return false;
	pg->words = g_new0(struct pdftext_word, pg->n_words ? pg->n_words : 1);
	for (uint32_t i = 0; i < pg->n_words; i++) {
		struct pdftext_word *w = &pg->words[i];
		if (!rd_u32(r, &w->start) || !rd_u32(r, &w->len) || w->start > text_len ||
		    w->len > text_len - w->start || !rd_box(r, &w->box) || !rd(r, &w->confidence, 4) ||
		    !isfinite(w->confidence) || w->confidence < -1 || w->confidence > 100)
			return false;
	}
	if (!rd_u32(r, &pg->n_lines) || pg->n_lines > pg->n_words || (r->len - r->pos) / LINE_BYTES < pg->n_lines)
		return false;
	pg->lines = g_new0(struct pdftext_line, pg->n_lines ? pg->n_lines : 1);
	for (uint32_t i = 0; i < pg->n_lines; i++) {
		struct pdftext_line *l = &pg->lines[i];
		if (!rd_u32(r, &l->first_word) || !rd_u32(r, &l->n_words) || l->first_word > pg->n_words ||
		    l->n_words > pg->n_words - l->first_word || !rd_box(r, &l->box))
			return false;
	}
	return true;
}

static bool known_method(const char *m)
{
	return m && (strcmp(m, "text") == 0 || strcmp(m, "ocr") == 0 || strcmp(m, "none") == 0);
}

static bool parse_page(struct parse *ps, struct reader *r)
{
	struct pdftext_doc *d = ps->doc;
	uint32_t index = 0, rot = 0, text_len = 0;
	if (!ps->prog.opened || !rd_u32(r, &index) || index != (uint32_t)d->n_pages ||
	    index >= (uint32_t)d->total_pages)
		return false;
	if (d->n_pages == (int)ps->pages_cap) {
		ps->pages_cap = ps->pages_cap ? ps->pages_cap * 2 : 8;
		d->pages = g_renew(struct pdftext_page, d->pages, ps->pages_cap);
	}
	struct pdftext_page *pg = &d->pages[d->n_pages++];
	memset(pg, 0, sizeof *pg);
	bool ok = rd_f64(r, &pg->width, 0, MAX_EXTENT) && rd_f64(r, &pg->height, 0, MAX_EXTENT) && rd_u32(r, &rot) &&
	          rot % 90 == 0 && rot < 360 && rd_f64(r, &pg->ocr_confidence, -1, 100) &&
	          rd_str(r, 16, false, &pg->method, NULL) && known_method(pg->method) &&
	          rd_str(r, PDFTEXT_MAX_PAGE_TEXT, false, &pg->text, &text_len) &&
	          (ps->text_bytes += text_len) <= PDFTEXT_MAX_TEXT && parse_words(r, pg, text_len);
	pg->rotation = (int)rot;
	if (ok)
		ps->prog.pages = d->n_pages;
	return ok;
}

static bool parse_field(struct parse *ps, struct reader *r)
{
	struct pdftext_doc *d = ps->doc;
	uint32_t page = 0;
	if (!rd_u32(r, &page) || page < 1 || page > (uint32_t)d->n_pages || d->n_fields >= PDFTEXT_MAX_FIELDS)
		return false;
	if (d->n_fields == ps->fields_cap) {
		ps->fields_cap = ps->fields_cap ? ps->fields_cap * 2 : 8;
		d->fields = g_renew(struct pdftext_field, d->fields, ps->fields_cap);
	}
	struct pdftext_field *f = &d->fields[d->n_fields++];
	memset(f, 0, sizeof *f);
	f->page = (int)page;
	return rd_str(r, PDFTEXT_MAX_STRING, false, &f->name, NULL) && rd_str(r, 16, false, &f->type, NULL) &&
	       rd_str(r, PDFTEXT_MAX_STRING, false, &f->value, NULL) && rd_box(r, &f->box);
}

static bool parse_warning(struct parse *ps, struct reader *r)
{
	struct pdftext_doc *d = ps->doc;
	char *w = NULL;
	if (d->n_warnings >= PDFTEXT_MAX_WARNINGS || !rd_str(r, PDFTEXT_MAX_STRING, false, &w, NULL))
		return false;
	d->warnings = g_renew(char *, d->warnings, d->n_warnings + 1);
	d->warnings[d->n_warnings++] = w;
	return true;
}

/* An embedded e-invoice: after every page, a bounded number of bounded files. */
static bool parse_attachment(struct parse *ps, struct reader *r)
{
	struct pdftext_doc *d = ps->doc;
	if (d->n_pages != d->total_pages || d->n_attachments >= PDFTEXT_MAX_ATTACHMENTS)
		return false;
	if (d->n_attachments == ps->attachments_cap) {
		ps->attachments_cap = ps->attachments_cap ? ps->attachments_cap * 2 : 2;
		d->attachments = g_renew(struct pdftext_attachment, d->attachments, ps->attachments_cap);
	}
	struct pdftext_attachment *a = &d->attachments[d->n_attachments++];
	memset(a, 0, sizeof *a);
	if (!rd_str(r, PDFTEXT_MAX_NAME, true, &a->name, NULL) || !rd_u32(r, &a->len) ||
	    a->len > PDFTEXT_MAX_ATTACHMENT || r->len - r->pos < a->len)
		return false;
	a->data = g_malloc((size_t)a->len + 1);
	memcpy(a->data, r->p + r->pos, a->len);
	a->data[a->len] = 0;
	r->pos += a->len;
	return true;
}

/* The child's own error: its code (a permanent or limit error only; a child
 * cannot claim to be a transient database failure) and message. */
static enum qerr parse_error(struct reader *r, char **reterr)
{
	uint32_t code = 0;
	char *msg = NULL;
	if (!rd_u32(r, &code) || !rd_str(r, PDFTEXT_MAX_STRING, false, &msg, NULL))
		return QERR_INTERNAL;
	enum qerr e = (code > 0 && code < QERR_COUNT && qerr_group((enum qerr)code) == QERR_GROUP_PERMANENT)
	                  ? (enum qerr)code
	                  : QERR_PARSE_FAILED;
	qerr_set(reterr, e, "%s", msg);
	g_free(msg);
	return e;
}

/* One frame at r's position. QERR_OK to go on; *done set after 'Z'/'E'. */
static enum qerr parse_frame(struct parse *ps, struct reader *r, bool *done, char **reterr)
{
	uint8_t type = 0;
	uint32_t n = 0;
	size_t start = r->pos;
	if (!rd(r, &type, 1) || !rd_u32(r, &n) || r->len - r->pos < n)
		return qerr_set(reterr, QERR_PARSE_FAILED, "the parser process's reply stops early");
	struct reader f = {r->p, r->pos + n, r->pos};
	r->pos += n;
	bool ok = false;
	uint32_t n_pages = 0;
	switch (type) {
	case 'M':
		ok = parse_meta(ps, &f);
		break;
	case 'P':
		ok = parse_page(ps, &f);
		break;
	case 'F':
		ok = parse_field(ps, &f);
		break;
	case 'W':
		ok = parse_warning(ps, &f);
		break;
	case 'A':
		ok = parse_attachment(ps, &f);
		break;
	case 'Z':
		ok = ps->prog.opened && rd_u32(&f, &n_pages) && n_pages == (uint32_t)ps->doc->n_pages;
		*done = true;
		break;
	case 'E': {
		*done = true;
		enum qerr e = parse_error(&f, reterr);
		if (e != QERR_INTERNAL && f.pos == f.len)
			return e;
		break;
	}
	default:
		break;
	}
	if (!ok || f.pos != f.len)
		return qerr_set(reterr, QERR_INTERNAL,
		                "malformed reply from the parser process (frame '%c' at byte %zu)",
		                g_ascii_isprint(type) ? type : '?', start);
	return QERR_OK;
}

enum qerr channel_parse(const void *buf, size_t len, int max_pages, struct pdftext_doc **ret,
                        struct channel_progress *progress, char **reterr)
{
	struct parse ps = {.doc = g_new0(struct pdftext_doc, 1), .max_pages = max_pages};
	struct reader r = {buf, len, 0};
	bool done = false;
	enum qerr e = QERR_OK;
	while (!e && !done)
		e = parse_frame(&ps, &r, &done, reterr);
	ps.prog.finished = done;
	if (!e && r.pos != len)
		e = qerr_set(reterr, QERR_INTERNAL, "malformed reply from the parser process (bytes after its end)");
	if (progress)
		*progress = ps.prog;
	if (e) {
		pdftext_doc_free(ps.doc);
		return e;
	}
	*ret = ps.doc;
	return QERR_OK;
}
