/* learn: hints from corrected values, and values read back through hints.
 *
 * Everything works on a cell's words (split at spaces): an anchor is a run of
 * at most MAX_ANCHOR_WORDS words, folded (case, spaces, a trailing colon);
 * a value spans `words` words. Only words free of digits go into an anchor,
 * so "Invoice No. 4711 of 05.03.2018" gives the date the anchor "of" only
 * when nothing better precedes it, and never "4711", which the next invoice
 * will not repeat. */
#include "extractors/learn.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/layout.h"
#include "extractors/pdftext.h"
#include "extractors/rules.h"

#define MAX_CELL_WORDS 60
#define MAX_VALUE_WORDS 12
#define MAX_ANCHOR_WORDS 3
#define ROWS_ABOVE 3

enum kind { K_TEXT, K_DATE, K_AMOUNT };

static const char *const KIND_NAMES[] = {"text", "date", "amount"};

/* Case folded, runs of spaces as one, a trailing colon and spaces dropped (g_free). */
static char *fold(const char *s)
{
	g_autofree char *f = g_utf8_casefold(s, -1);
	g_auto(GStrv) w = g_strsplit_set(g_strstrip(f), " \t\n", -1);
	GString *o = g_string_new(NULL);
	for (size_t i = 0; w[i]; i++)
		if (w[i][0])
			g_string_append_printf(o, "%s%s", o->len ? " " : "", w[i]);
	while (o->len && (o->str[o->len - 1] == ':' || o->str[o->len - 1] == ' '))
		g_string_truncate(o, o->len - 1);
	return g_string_free(o, FALSE);
}

/* s without its spaces (g_free). */
static char *squash(const char *s)
{
	GString *o = g_string_new(NULL);
	for (; *s; s++)
		if (*s != ' ')
			g_string_append_c(o, *s);
	return g_string_free(o, FALSE);
}

static bool has_letter(const char *s)
{
	for (const char *p = s; *p; p = g_utf8_next_char(p))
		if (g_unichar_isalpha(g_utf8_get_char(p)))
			return true;
	return false;
}

static bool has_digit(const char *s)
{
	for (; *s; s++)
		if (g_ascii_isdigit(*s))
			return true;
	return false;
}

/* The words of a cell (g_strfreev), at most MAX_CELL_WORDS. */
static char **words_of(const char *text, size_t *n)
{
	g_auto(GStrv) all = g_strsplit_set(text, " \t\n", -1);
	GPtrArray *w = g_ptr_array_new();
	for (size_t i = 0; all[i] && w->len < MAX_CELL_WORDS; i++)
		if (all[i][0])
			g_ptr_array_add(w, g_strdup(all[i]));
	*n = w->len;
	g_ptr_array_add(w, NULL);
	return (char **)g_ptr_array_free(w, FALSE);
}

static char *join(char **w, size_t from, size_t to)
{
	GString *s = g_string_new(NULL);
	for (size_t i = from; i < to; i++)
		g_string_append_printf(s, "%s%s", i > from ? " " : "", w[i]);
	return g_string_free(s, FALSE);
}

static enum kind kind_of(const struct json *value)
{
	const char *s = json_string_value(value);
	if (!s)
		return K_AMOUNT;
	return strlen(s) == 10 && s[4] == '-' && s[7] == '-' && g_ascii_isdigit(s[0]) ? K_DATE : K_TEXT;
}

/* The value text reads as, or NULL. */
static struct json *parse_as(enum kind k, const char *text)
{
	if (!text || !text[0])
		return NULL;
	if (k == K_AMOUNT) {
		double v = 0;
		return rules_parse_amount(text, &v) ? json_number(round(v * 100) / 100) : NULL;
	}
	if (k == K_DATE) {
		char d[11];
		return rules_parse_date(text, d) ? json_string(d) : NULL;
	}
	g_autofree char *t = g_strstrip(g_strdup(text));
	return t[0] && strlen(t) <= 200 ? json_string(t) : NULL;
}

static bool same(enum kind k, const struct json *want, const char *text)
{
	struct json *got = parse_as(k, text);
	bool eq = false;
	double a = 0, b = 0;
	if (got && k == K_AMOUNT)
		eq = json_number_value(want, &a) && json_number_value(got, &b) && fabs(a - b) < 0.005;
	else if (got && k == K_DATE)
		eq = strcmp(json_string_value(want), json_string_value(got)) == 0;
	else if (got) {
		g_autofree char *x = fold(json_string_value(want));
		g_autofree char *y = fold(text);
		eq = strcmp(x, y) == 0;
		if (!eq && !strchr(x, ' ')) { /* "DE08 7009 0100" written for DE087009... */
			g_autofree char *z = squash(y);
			eq = strcmp(x, z) == 0;
		}
	}
	json_free(got);
	return eq;
}

/* ---- supplier identities ---- */

static void add_key(GPtrArray *keys, const char *prefix, const char *value)
{
	if (!value || !value[0] || keys->len >= LEARN_MAX_KEYS)
		return;
	GString *k = g_string_new(prefix);
	bool name = strcmp(prefix, "name:") == 0;
	g_autofree char *f = name ? fold(value) : g_ascii_strup(value, -1);
	for (const char *p = f; *p && k->len < LEARN_MAX_KEY - 1; p++)
		if (name ? *p != ',' && *p != '.' : g_ascii_isalnum(*p))
			g_string_append_c(k, *p);
	for (guint i = 0; i < keys->len; i++)
		if (strcmp(g_ptr_array_index(keys, i), k->str) == 0) {
			g_string_free(k, TRUE);
			return;
		}
	if (k->len > strlen(prefix) + 3)
		g_ptr_array_add(keys, g_string_free(k, FALSE));
	else
		g_string_free(k, TRUE);
}

static void add_matches(GPtrArray *keys, const char *prefix, const char *pattern, const char *text)
{
	g_autoptr(GRegex) re = g_regex_new(pattern, G_REGEX_OPTIMIZE, 0, NULL);
	g_autoptr(GMatchInfo) mi = NULL;
	for (g_regex_match(re, text, 0, &mi); g_match_info_matches(mi) && keys->len < LEARN_MAX_KEYS;
	     g_match_info_next(mi, NULL)) {
		g_autofree char *m = g_match_info_fetch(mi, 0);
		add_key(keys, prefix, m);
	}
}

char **learn_supplier_keys(const struct json *values, const struct pdftext_doc *doc)
{
	GPtrArray *keys = g_ptr_array_new();
	add_key(keys, "vat:", json_get_string(values, "supplier_vat_id"));
	add_key(keys, "iban:", json_get_string(values, "iban"));
	for (int i = 0; doc && i < doc->n_pages; i++) {
		const char *t = doc->pages[i].text ? doc->pages[i].text : "";
		add_matches(keys, "vat:", "\\b(?:[A-Z]{2} ?[0-9]{8,12}|ATU[0-9]{8}|[A-Z]{2}[0-9A-Z]{2}[0-9]{7,10})\\b",
		            t);
		add_matches(keys, "iban:", "\\b[A-Z]{2}[0-9]{2}(?: ?[0-9A-Z]{4}){3,7}(?: ?[0-9A-Z]{1,3})?\\b", t);
	}
	add_key(keys, "name:", json_get_string(values, "supplier_name"));
	g_ptr_array_add(keys, NULL);
	return (char **)g_ptr_array_free(keys, FALSE);
}

/* ---- hints ---- */

struct found {
	const struct layout_cell *cell;
	char *anchor;    /* folded, or NULL */
	const char *rel; /* "inline", "right", "below", "box" */
	int words;       /* words the value spans */
	int at;          /* the word of its cell it starts at */
	bool squash;     /* written with spaces the value has not */
	int rank;
};

/* The words just before word i of w that can anchor a value (folded), or NULL. */
static char *anchor_before(char **w, size_t i)
{
	size_t from = i;
	while (from > 0 && i - from < MAX_ANCHOR_WORDS && !has_digit(w[from - 1]))
		from--;
	if (from == i)
		return NULL;
	g_autofree char *a = join(w, from, i);
	char *f = fold(a);
	if (!has_letter(f) || strlen(f) > LEARN_MAX_ANCHOR) {
		g_free(f);
		return NULL;
	}
	return f;
}

/* A cell above c whose next cell below is c, with letters (folded text), or NULL. */
static char *anchor_above(const struct layout *lay, const struct layout_cell *c)
{
	const struct layout_page *p = &lay->pages[c->page - 1];
	for (int r = c->row - 1; r >= 0 && r >= c->row - ROWS_ABOVE; r--)
		for (size_t i = p->rows[r].first; i < p->rows[r].first + p->rows[r].n; i++)
			if (layout_below(lay, &p->cells[i]) == c && has_letter(p->cells[i].text) &&
			    !has_digit(p->cells[i].text) && strlen(p->cells[i].text) <= LEARN_MAX_ANCHOR)
				return fold(p->cells[i].text);
	return NULL;
}

/* How the value at word `at` of cell c (spanning n words) is anchored. */
static void anchor_cell(const struct layout *lay, const struct layout_cell *c, char **w, size_t at, int n,
                        struct found *f)
{
	f->cell = c;
	f->words = n;
	f->at = (int)at;
	f->anchor = anchor_before(w, at);
	if (f->anchor) {
		f->rel = "inline";
		f->rank = 3;
		return;
	}
	const struct layout_page *p = &lay->pages[c->page - 1];
	const struct layout_row *row = &p->rows[c->row];
	const struct layout_cell *left = c > &p->cells[row->first] ? c - 1 : NULL;
	if (at == 0 && left && has_letter(left->text) && !has_digit(left->text) &&
	    strlen(left->text) <= LEARN_MAX_ANCHOR) {
		f->anchor = fold(left->text);
		f->rel = "right";
		f->rank = 3;
		return;
	}
	f->anchor = at == 0 ? anchor_above(lay, c) : NULL;
	f->rel = f->anchor ? "below" : "box";
	f->rank = f->anchor ? 2 : 1;
}

/* Where value sits in cell c: the word it starts at and the words it spans, the shortest span
 * that reads as it (amounts and dates are also found inside longer text). */
static bool value_in_cell(enum kind k, const struct json *value, char **w, size_t n, size_t *ret_at, int *ret_n)
{
	for (size_t len = 1; len <= MAX_VALUE_WORDS && len <= n; len++)
		for (size_t i = 0; i + len <= n; i++) {
			g_autofree char *t = join(w, i, i + len);
			if (same(k, value, t)) {
				*ret_at = i;
				*ret_n = (int)len;
				return true;
			}
		}
	return false;
}

static void box_json(struct json *h, const struct layout *lay, const struct layout_cell *c)
{
	const struct layout_page *p = &lay->pages[c->page - 1];
	struct json *b = json_add_item(h, "box", json_new_array());
	double w = p->width > 0 ? p->width : 1, ht = p->height > 0 ? p->height : 1;
	double v[4] = {c->box.x0 / w, c->box.y0 / ht, c->box.x1 / w, c->box.y1 / ht};
	for (int i = 0; i < 4; i++)
		json_append(b, json_number(c->has_box ? round(v[i] * 10000) / 10000 : 0));
}

struct json *learn_hint(const struct layout *lay, const char *field, const struct json *value)
{
	if (!lay || !value || json_is_null(value) || json_array_size(value) > 0 || json_object_size(value) > 0)
		return NULL;
	g_autofree char *vt = json_format(value, false);
	if (!vt || vt[0] == '[' || vt[0] == '{' || strcmp(vt, "true") == 0 || strcmp(vt, "false") == 0)
		return NULL;
	enum kind k = kind_of(value);
	struct found best = {0};
	for (int p = 0; p < lay->n_pages; p++)
		for (size_t i = 0; i < lay->pages[p].n_cells; i++) {
			const struct layout_cell *c = &lay->pages[p].cells[i];
			size_t n = 0, at = 0;
			int len = 0;
			g_auto(GStrv) w = words_of(c->text, &n);
			if (!value_in_cell(k, value, w, n, &at, &len))
				continue;
			struct found f = {0};
			anchor_cell(lay, c, w, at, len, &f);
			if (k == K_TEXT) {
				g_autofree char *span = join(w, at, at + (size_t)len);
				f.squash = !strchr(json_string_value(value), ' ') && strchr(span, ' ');
			}
			/* amounts: the last of equal rank (totals close the page); others the first */
			if (f.rank > best.rank || (f.rank == best.rank && k == K_AMOUNT)) {
				g_free(best.anchor);
				best = f;
			} else {
				g_free(f.anchor);
			}
		}
	if (!best.cell)
		return NULL;
	struct json *h = json_new_object();
	json_add_string(h, "field", field);
	json_add_string(h, "kind", KIND_NAMES[k]);
	json_add_string(h, "rel", best.rel);
	if (best.anchor)
		json_add_string(h, "anchor", best.anchor);
	json_add_number(h, "words", best.words);
	json_add_number(h, "at", best.at);
	if (best.squash)
		json_add_bool(h, "squash", true);
	json_add_number(h, "page", best.cell->page);
	box_json(h, lay, best.cell);
	g_free(best.anchor);
	return h;
}

/* ---- reading through hints ---- */

struct hint {
	enum kind kind;
	const char *rel, *anchor;
	int words, page, at;
	bool squash;
	double box[4]; /* fractions of the page */
};

static bool hint_of(const struct json *j, struct hint *h)
{
	const char *kind = json_get_string(j, "kind");
	double words = 0, page = 0;
	h->rel = json_get_string(j, "rel");
	h->anchor = json_get_string(j, "anchor");
	if (!kind || !h->rel || !json_get_number(j, "words", &words) || !json_get_number(j, "page", &page) ||
	    words < 1 || words > MAX_VALUE_WORDS || page < 1 || json_array_size(json_get(j, "box")) != 4)
		return false;
	h->kind = strcmp(kind, "amount") == 0 ? K_AMOUNT : strcmp(kind, "date") == 0 ? K_DATE : K_TEXT;
	double at = 0;
	json_get_number(j, "at", &at);
	h->at = at >= 0 && at < MAX_CELL_WORDS ? (int)at : 0;
	h->squash = json_get(j, "squash") != NULL;
	h->words = (int)words;
	h->page = (int)page;
	for (int i = 0; i < 4; i++)
		if (!json_number_value(json_array_at(json_get(j, "box"), (size_t)i), &h->box[i]))
			return false;
	return strcmp(h->rel, "box") == 0 || (h->anchor && h->anchor[0]);
}

/* The value of words [from, from + want) of w, or one word fewer or more. */
static struct json *parse_span(enum kind k, char **w, size_t n, size_t from, int want)
{
	const int tries[3] = {want, want - 1, want + 1};
	for (int t = 0; t < 3; t++) {
		if (tries[t] < 1 || from + (size_t)tries[t] > n)
			continue;
		g_autofree char *s = join(w, from, from + (size_t)tries[t]);
		struct json *v = parse_as(k, s);
		if (v)
			return v;
	}
	return NULL;
}

/* The value of a whole cell: for text the words where it was (from word at), else what parses. */
static struct json *parse_cell(enum kind k, const char *text, int at, int want)
{
	size_t n = 0;
	g_auto(GStrv) w = words_of(text, &n);
	if (k == K_TEXT) {
		if ((size_t)at >= n)
			return NULL;
		g_autofree char *span = join(w, (size_t)at, MIN(n, (size_t)(at + want)));
		return parse_as(k, span);
	}
	struct json *v = parse_as(k, text);
	if (v)
		return v;
	for (size_t i = 0; i < n; i++)
		if ((v = parse_span(k, w, n, i, want)))
			return v;
	return NULL;
}

static double distance(const struct layout *lay, const struct layout_cell *c, const struct hint *h)
{
	const struct layout_page *p = &lay->pages[c->page - 1];
	double w = p->width > 0 ? p->width : 1, ht = p->height > 0 ? p->height : 1;
	double dx = (c->box.x0 + c->box.x1) / (2 * w) - (h->box[0] + h->box[2]) / 2;
	double dy = (c->box.y0 + c->box.y1) / (2 * ht) - (h->box[1] + h->box[3]) / 2;
	return sqrt(dx * dx + dy * dy) + (c->page != h->page ? 1 : 0);
}

/* The value in the stated relation to an anchor found at cell c; *ret_cell the cell it is in. */
static struct json *read_at_anchor(const struct layout *lay, const struct layout_cell *c, const struct hint *h,
                                   const struct layout_cell **ret_cell)
{
	*ret_cell = NULL;
	if (strcmp(h->rel, "inline") == 0) {
		size_t n = 0;
		g_auto(GStrv) w = words_of(c->text, &n);
		size_t na = 1;
		for (const char *p = h->anchor; *p; p++)
			na += *p == ' ';
		for (size_t i = 0; i + na < n; i++) {
			g_autofree char *a = join(w, i, i + na);
			g_autofree char *f = fold(a);
			struct json *v = strcmp(f, h->anchor) == 0 ? parse_span(h->kind, w, n, i + na, h->words) : NULL;
			if (v) {
				*ret_cell = c;
				return v;
			}
		}
		return NULL;
	}
	g_autofree char *f = fold(c->text);
	if (strcmp(f, h->anchor) != 0)
		return NULL;
	const struct layout_cell *t = strcmp(h->rel, "right") == 0 ? layout_right_of(lay, c) : layout_below(lay, c);
	struct json *v = t ? parse_cell(h->kind, t->text, h->at, h->words) : NULL;
	*ret_cell = v ? t : NULL;
	return v;
}

/* The cell of the hint's page that overlaps the remembered box most. */
static const struct layout_cell *cell_at_box(const struct layout *lay, const struct hint *h)
{
	if (h->page > lay->n_pages)
		return NULL;
	const struct layout_page *p = &lay->pages[h->page - 1];
	double w = p->width > 0 ? p->width : 1, ht = p->height > 0 ? p->height : 1, best = 0;
	const struct layout_cell *found = NULL;
	for (size_t i = 0; i < p->n_cells; i++) {
		const struct layout_cell *c = &p->cells[i];
		double ox = MIN(c->box.x1 / w, h->box[2]) - MAX(c->box.x0 / w, h->box[0]);
		double oy = MIN(c->box.y1 / ht, h->box[3]) - MAX(c->box.y0 / ht, h->box[1]);
		double area = (h->box[2] - h->box[0]) * (h->box[3] - h->box[1]);
		double share = ox > 0 && oy > 0 && area > 0 ? ox * oy / area : 0;
		if (c->has_box && share > best) {
			best = share;
			found = c;
		}
	}
	return best >= 0.3 ? found : NULL;
}

struct json *learn_read(const struct layout *lay, const struct json *hint, int *ret_page, double ret_box[4])
{
	struct hint h;
	if (!lay || !hint_of(hint, &h))
		return NULL;
	struct json *best = NULL;
	const struct layout_cell *at = NULL;
	double best_d = INFINITY;
	for (int p = 0; h.anchor && strcmp(h.rel, "box") != 0 && p < lay->n_pages; p++)
		for (size_t i = 0; i < lay->pages[p].n_cells; i++) {
			const struct layout_cell *cell = NULL;
			struct json *v = read_at_anchor(lay, &lay->pages[p].cells[i], &h, &cell);
			double d = v ? distance(lay, cell, &h) : INFINITY;
			if (v && d < best_d) {
				json_free(best);
				best = v;
				best_d = d;
				at = cell;
			} else {
				json_free(v);
			}
		}
	/* Without its anchor the value is taken from the remembered place only where that cell
	 * holds a value of its kind and nothing else: a cell of other words that happens to sit
	 * there ("5 Mio. € je Schadenereignis") is a layout that moved, not the value. */
	if (!best && (at = cell_at_box(lay, &h)))
		best = h.kind == K_TEXT ? parse_cell(h.kind, at->text, h.at, h.words) : parse_as(h.kind, at->text);
	if (best && h.squash && json_string_value(best)) {
		g_autofree char *z = squash(json_string_value(best));
		json_free(best);
		best = json_string(z);
	}
	if (best) {
		*ret_page = at->page;
		double b[4] = {at->box.x0, at->box.y0, at->box.x1, at->box.y1};
		memcpy(ret_box, b, sizeof b);
	}
	return best;
}

static const char *const AMOUNTS[] = {"net_amount", "tax_amount", "total_amount"};

/* Whether fields' net, tax and total are all there and net + tax = total. */
static bool amounts_add_up(const struct json *fields)
{
	double n = 0, t = 0, g = 0;
	return json_get_number(json_get(fields, "net_amount"), "value", &n) &&
	       json_get_number(json_get(fields, "tax_amount"), "value", &t) &&
	       json_get_number(json_get(fields, "total_amount"), "value", &g) && fabs(n + t - g) < 0.015;
}

/* Amounts read through hints that break a set of amounts that added up: the page's layout
 * changed under the hint, and the reader's consistent set is kept. */
static int keep_consistent_amounts(struct json *fields, struct json *before)
{
	int undone = 0;
	if (!amounts_add_up(before) || amounts_add_up(fields))
		return 0;
	for (size_t i = 0; i < G_N_ELEMENTS(AMOUNTS); i++) {
		if (!json_get(json_get(fields, AMOUNTS[i]), "learned"))
			continue;
		json_set_item(fields, AMOUNTS[i], json_duplicate(json_get(before, AMOUNTS[i])));
		undone++;
	}
	return undone;
}

int learn_apply(struct json *extracted, const struct layout *lay, const struct json *hints)
{
	struct json *fields = json_get(extracted, "fields");
	struct json *before = fields ? json_new_object() : NULL;
	int set = 0;
	for (size_t i = 0; before && i < G_N_ELEMENTS(AMOUNTS); i++)
		if (json_get(fields, AMOUNTS[i]))
			json_set_item(before, AMOUNTS[i], json_duplicate(json_get(fields, AMOUNTS[i])));
	for (size_t i = 0; fields && i < json_object_size(hints); i++) {
		const char *name = NULL;
		const struct json *hint = json_object_at(hints, i, &name);
		if (!name || !json_get(fields, name))
			continue;
		int page = 0;
		double box[4];
		struct json *v = learn_read(lay, hint, &page, box);
		if (!v)
			continue;
		struct json *f = json_new_object();
		json_add_item(f, "value", v);
		json_add_number(f, "confidence", 0.9);
		json_add_number(f, "page", page);
		struct json *b = json_add_item(f, "box", json_new_array());
		for (int k = 0; k < 4; k++)
			json_append(b, json_number(round(box[k] * 10) / 10));
		json_add_bool(f, "learned", true);
		json_set_item(fields, name, f);
		set++;
	}
	if (before)
		set -= keep_consistent_amounts(fields, before);
	json_free(before);
	return set;
}

/* ---- in memory ---- */

struct learn_memory {
	GHashTable *by_key; /* key -> struct json {field: hint} */
};

struct learn_memory *learn_memory_new(void)
{
	struct learn_memory *m = g_new0(struct learn_memory, 1);
	m->by_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)json_free);
	return m;
}

void learn_memory_free(struct learn_memory *m)
{
	if (!m)
		return;
	g_hash_table_destroy(m->by_key);
	g_free(m);
}

void learn_memory_put(struct learn_memory *m, char *const *keys, const char *field, const struct json *hint)
{
	for (size_t i = 0; keys && keys[i]; i++) {
		struct json *o = g_hash_table_lookup(m->by_key, keys[i]);
		if (!o) {
			o = json_new_object();
			g_hash_table_insert(m->by_key, g_strdup(keys[i]), o);
		}
		json_set_item(o, field, json_duplicate(hint));
	}
}

struct json *learn_memory_lookup(const struct learn_memory *m, char *const *keys)
{
	for (size_t i = 0; keys && keys[i]; i++) {
		const struct json *o = g_hash_table_lookup(m->by_key, keys[i]);
		if (o)
			return json_duplicate(o);
	}
	return NULL;
}
