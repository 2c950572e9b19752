/* rules: labelled values, patterns, lists and tables, as the type's hints say.
 *
 * One pass assigns label cells to fields (longest label wins), then each field
 * is found by its strategy ("find" in its hints: label (default), label_all,
 * letterhead, below, pattern, currency, lines, table). Label regexes come from
 * schema files an operator may write: a pattern that does not compile is
 * skipped, never fatal, and every list is capped at RULES_MAX_ITEMS. */
#include "extractors/rules.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/doctype.h"
#include "extractors/layout.h"
#include "extractors/pdftext.h"
#include "extractors/reader.h"
#include "extractors/table.h"

#define MAX_CELL 4096

/* ---- values ---- */

static GRegex *amount_re(void)
{
	static GRegex *re;
	if (g_once_init_enter(&re))
		g_once_init_leave(
		    &re,
		    g_regex_new(
		        "(-?)\\s*(\\d{1,3}(?:(?:[.,\\x{2019}'\\x{202f}\\x{a0}]|\\s)\\d{3})+(?:[.,]\\d{1,2}(?:\\d\\d)?)?"
		        "|\\d+(?:[.,]\\d{1,2}(?:\\d\\d)?)?)(?!\\d)",
		        G_REGEX_OPTIMIZE, 0, NULL));
	return re;
}

int rules_parse_amount(const char *text, double *ret)
{
	g_autoptr(GMatchInfo) mi = NULL;
	if (!text || strlen(text) > MAX_CELL || !g_regex_match(amount_re(), text, 0, &mi))
		return 0;
	g_autofree char *sign = g_match_info_fetch(mi, 1);
	g_autofree char *num = g_match_info_fetch(mi, 2);
	/* The decimal separator is a '.' or ',' followed by one or two digits at the end, or by
	 * four (unit prices), or the last one where both kinds appear. */
	size_t len = strlen(num);
	long dec = -1;
	bool dot = strchr(num, '.') != NULL, comma = strchr(num, ',') != NULL;
	for (long i = (long)len - 1; i >= 0; i--)
		if (num[i] == '.' || num[i] == ',') {
			long after = (long)len - 1 - i;
			if (after <= 2 || after == 4 || (dot && comma))
				dec = i;
			break;
		}
	GString *clean = g_string_new(NULL);
	for (size_t i = 0; i < len; i++) {
		if (g_ascii_isdigit(num[i]))
			g_string_append_c(clean, num[i]);
		else if ((long)i == dec)
			g_string_append_c(clean, '.');
	}
	double v = g_ascii_strtod(clean->str, NULL);
	g_string_free(clean, TRUE);
	*ret = sign[0] == '-' ? -v : v;
	return 1;
}

static const char *const month_names[][12] = {
    {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"},
    {"jan", "feb", "mär", "apr", "mai", "jun", "jul", "aug", "sep", "okt", "nov", "dez"},
    {"janv", "févr", "mars", "avr", "mai", "juin", "juil", "août", "sept", "oct", "nov", "déc"},
    {"jan", "feb", "maa", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"},
    {"ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"},
    {"gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"},
    {"jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"},
};

static int month_of(const char *word)
{
	g_autofree char *w = g_utf8_strdown(word, -1);
	if (g_utf8_strlen(w, -1) < 3)
		return 0;
	for (size_t l = 0; l < G_N_ELEMENTS(month_names); l++)
		for (int m = 0; m < 12; m++)
			if (g_str_has_prefix(w, month_names[l][m]))
				return m + 1;
	return 0;
}

static int valid_date(int y, int m, int d, char out[11])
{
	if (y < 1900 || y > 2200 || m < 1 || m > 12 || d < 1 || d > 31 ||
	    !g_date_valid_dmy((GDateDay)d, (GDateMonth)m, (GDateYear)y))
		return 0;
	g_snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
	return 1;
}

enum { D_ISO, D_DMY, D_D_MONTH_Y, D_MONTH_D_Y, D_PATTERNS };

static GRegex **date_res(void)
{
	static GRegex *res[D_PATTERNS];
	static gsize done;
	if (g_once_init_enter(&done)) {
		static const char *const patterns[D_PATTERNS] = {
		    "(?<!\\d)(\\d{4})-(\\d{1,2})-(\\d{1,2})(?!\\d)",
		    "(?<!\\d)(\\d{1,2})[./-](\\d{1,2})[./-](\\d{4})(?!\\d)",
		    "(?<!\\d)(\\d{1,2})(?:st|nd|rd|th)?\\.?\\s+(?:de\\s+|of\\s+)?(\\p{L}{3,})\\.?,?\\s+(?:de\\s+)?(\\d{"
		    "4})(?!\\d)",
		    "(\\p{L}{3,})\\.?\\s+(\\d{1,2})(?:st|nd|rd|th)?,?\\s+(\\d{4})(?!\\d)",
		};
		for (int i = 0; i < D_PATTERNS; i++)
			res[i] = g_regex_new(patterns[i], G_REGEX_OPTIMIZE | G_REGEX_CASELESS, 0, NULL);
		g_once_init_leave(&done, 1);
	}
	return res;
}

static int n_of(GMatchInfo *mi, int group)
{
	g_autofree char *s = g_match_info_fetch(mi, group);
	return (int)g_ascii_strtoll(s, NULL, 10);
}

int rules_parse_date(const char *text, char out[11])
{
	if (!text || strlen(text) > MAX_CELL)
		return 0;
	GRegex **res = date_res();
	for (int p = 0; p < D_PATTERNS; p++) {
		g_autoptr(GMatchInfo) mi = NULL;
		if (!g_regex_match(res[p], text, 0, &mi))
			continue;
		int ok = 0;
		if (p == D_ISO)
			ok = valid_date(n_of(mi, 1), n_of(mi, 2), n_of(mi, 3), out);
		else if (p == D_DMY)
			ok = valid_date(n_of(mi, 3), n_of(mi, 2), n_of(mi, 1), out);
		else {
			g_autofree char *word = g_match_info_fetch(mi, p == D_D_MONTH_Y ? 2 : 1);
			int m = month_of(word);
			ok = p == D_D_MONTH_Y ? valid_date(n_of(mi, 3), m, n_of(mi, 1), out)
			                      : valid_date(n_of(mi, 3), m, n_of(mi, 2), out);
		}
		if (ok)
			return 1;
	}
	return 0;
}

const char *rules_currency(const char *text)
{
	static const char *const codes[] = {"EUR", "USD", "GBP", "CHF", "SEK", "NOK",
	                                    "DKK", "PLN", "CZK", "JPY", "CAD", "AUD"};
	if (!text)
		return NULL;
	for (size_t i = 0; i < G_N_ELEMENTS(codes); i++) {
		const char *p = strstr(text, codes[i]);
		if (p && (p == text || !g_ascii_isalpha(p[-1])) && !g_ascii_isalpha(p[3]))
			return codes[i];
	}
	if (strstr(text, "€"))
		return "EUR";
	if (strstr(text, "£"))
		return "GBP";
	if (strstr(text, "¥"))
		return "JPY";
	if (strchr(text, '$'))
		return "USD";
	return NULL;
}

/* ---- the extraction context ---- */

enum kind { K_TEXT, K_ID, K_DATE, K_AMOUNT, K_KIND_COUNT };

struct hit {
	const struct layout_cell *label; /* the label's cell, or NULL */
	const struct layout_cell *cell;  /* where the value was read */
	struct json *value;
	double confidence;
	char *rate; /* the label's "rate" group, when it has one */
};

struct field {
	const char *name;
	const struct json *hints;
	GRegex *labels;
	enum kind kind;
	struct hit hit;
	bool read; /* set by the invoice reader; later strategies leave it */
};

struct ctx {
	const struct doctype *type;
	const struct pdftext_doc *doc;
	const struct layout *lay;
	struct field *fields;
	size_t n_fields;
	GHashTable *owner; /* label cell -> struct field * */
	bool credit_note;  /* the reader saw one: items' amounts are magnitudes too */
};

static enum kind kind_of(const struct doctype *t, const char *name, const struct json *hints)
{
	const char *k = json_get_string(hints, "kind");
	if (k)
		return strcmp(k, "id") == 0       ? K_ID
		       : strcmp(k, "date") == 0   ? K_DATE
		       : strcmp(k, "amount") == 0 ? K_AMOUNT
		                                  : K_TEXT;
	const struct json *p = doctype_property(t, name);
	g_autofree char *type = json_format(json_get(p, "type"), false);
	if (json_get_string(p, "format") && strcmp(json_get_string(p, "format"), "date") == 0)
		return K_DATE;
	return type && strstr(type, "number") ? K_AMOUNT : K_TEXT;
}

/* An anchored, case-blind label regex; NULL when the pattern does not compile. */
static GRegex *label_regex(const char *labels)
{
	if (!labels || !labels[0])
		return NULL;
	g_autofree char *pat = g_strdup_printf("^\\s*(?:%s)(?![\\p{L}\\p{N}])\\s*(?:[:#.]\\s*)?", labels);
	return g_regex_new(pat, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, NULL);
}

static GRegex *anchored(const char *pattern)
{
	if (!pattern || !pattern[0])
		return NULL;
	g_autofree char *pat = g_strdup_printf("^\\s*(?:%s)(?![\\p{L}])", pattern);
	return g_regex_new(pat, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, NULL);
}

static bool is_label(const struct ctx *c, const struct layout_cell *cell)
{
	return g_hash_table_contains(c->owner, cell);
}

/* Gives every cell that a label matches to the field with the longest match. */
static void assign_labels(struct ctx *c)
{
	GHashTable *len = g_hash_table_new(NULL, NULL);
	for (int p = 0; p < c->lay->n_pages; p++) {
		const struct layout_page *pg = &c->lay->pages[p];
		for (size_t i = 0; i < pg->n_cells; i++) {
			const struct layout_cell *cell = &pg->cells[i];
			if (strlen(cell->text) > MAX_CELL)
				continue;
			int best = 0;
			for (size_t f = 0; f < c->n_fields; f++) {
				g_autoptr(GMatchInfo) mi = NULL;
				if (!c->fields[f].labels || !g_regex_match(c->fields[f].labels, cell->text, 0, &mi))
					continue;
				int s = 0, e = 0;
				g_match_info_fetch_pos(mi, 0, &s, &e);
				if (e > best) {
					best = e;
					g_hash_table_insert(c->owner, (gpointer)cell, &c->fields[f]);
				}
			}
		}
	}
	g_hash_table_destroy(len);
}

/* The value of kind in text, or NULL. */
static struct json *parse_kind(enum kind k, const char *text, double *conf)
{
	if (!text || !text[0])
		return NULL;
	if (k == K_DATE) {
		char iso[11];
		return rules_parse_date(text, iso) ? json_string(iso) : NULL;
	}
	if (k == K_AMOUNT) {
		double v = 0;
		return rules_parse_amount(text, &v) ? json_number(round(v * 100) / 100) : NULL;
	}
	if (k == K_ID) {
		static GRegex *re;
		if (g_once_init_enter(&re))
			g_once_init_leave(
			    &re, g_regex_new("^[:#\\s]*([\\p{L}\\p{N}][\\p{L}\\p{N}\\-/._]{0,63})", 0, 0, NULL));
		g_autoptr(GMatchInfo) mi = NULL;
		if (!g_regex_match(re, text, 0, &mi))
			return NULL;
		g_autofree char *id = g_match_info_fetch(mi, 1);
		while (strlen(id) > 1 && strchr("./-", id[strlen(id) - 1]))
			id[strlen(id) - 1] = '\0';
		if (!strpbrk(id, "0123456789"))
			*conf *= 0.6; /* identifiers nearly always carry digits */
		return json_string(id);
	}
	g_autofree char *t = g_strstrip(g_strdup(text));
	size_t n = strlen(t);
	while (n > 0 && (t[n - 1] == ',' || t[n - 1] == ';' || t[n - 1] == ':'))
		t[--n] = '\0';
	return n > 0 && n <= 200 ? json_string(t) : NULL;
}

static double ocr_factor(const struct ctx *c, int page)
{
	const struct pdftext_page *pg = &c->doc->pages[page - 1];
	if (!pg->method || strcmp(pg->method, "ocr") != 0 || pg->ocr_confidence < 0)
		return 1.0;
	return CLAMP(pg->ocr_confidence / 100.0, 0.5, 1.0);
}

/* Reads the value of a label cell: the rest of the cell, the cell to the right, the cell below. */
static bool value_of_label(struct ctx *c, struct field *f, const struct layout_cell *cell, struct hit *ret)
{
	g_autoptr(GMatchInfo) mi = NULL;
	if (!g_regex_match(f->labels, cell->text, 0, &mi))
		return false;
	int s = 0, e = 0;
	g_match_info_fetch_pos(mi, 0, &s, &e);
	const struct layout_cell *cands[3] = {cell, layout_right_of(c->lay, cell), layout_below(c->lay, cell)};
	const double confs[3] = {0.9, 0.85, 0.75};
	for (int i = 0; i < 3; i++) {
		const struct layout_cell *v = cands[i];
		if (!v || (i > 0 && is_label(c, v)))
			continue;
		if (f->kind == K_TEXT && i == 2 && cands[1] && !is_label(c, cands[1]))
			continue;
		double conf = confs[i] * ocr_factor(c, v->page);
		struct json *val = parse_kind(f->kind, i == 0 ? cell->text + e : v->text, &conf);
		if (!val)
			continue;
		ret->label = cell;
		ret->cell = v;
		ret->value = val;
		ret->confidence = conf;
		g_autofree char *rate = g_match_info_fetch_named(mi, "rate");
		ret->rate = rate && rate[0] ? g_strdup(rate) : NULL;
		return true;
	}
	return false;
}

static void hit_done(struct hit *h)
{
	json_free(h->value);
	g_free(h->rate);
	memset(h, 0, sizeof *h);
}

/* Every labelled value of f in document order (callback per hit; the hit is the callee's). */
static void each_label_hit(struct ctx *c, struct field *f, void (*fn)(struct hit *, void *), void *data)
{
	for (int p = 0; p < c->lay->n_pages; p++) {
		const struct layout_page *pg = &c->lay->pages[p];
		for (size_t i = 0; i < pg->n_cells; i++) {
			struct hit h = {0};
			if (g_hash_table_lookup(c->owner, &pg->cells[i]) == f &&
			    value_of_label(c, f, &pg->cells[i], &h))
				fn(&h, data);
		}
	}
}

struct collect {
	GArray *hits;
};

static void collect_hit(struct hit *h, void *data)
{
	struct collect *col = data;
	if (col->hits->len < RULES_MAX_ITEMS)
		g_array_append_val(col->hits, *h);
	else
		hit_done(h);
}

static GArray *label_hits(struct ctx *c, struct field *f)
{
	struct collect col = {g_array_new(FALSE, TRUE, sizeof(struct hit))};
	each_label_hit(c, f, collect_hit, &col);
	return col.hits;
}

static void free_hits(GArray *hits)
{
	for (guint i = 0; i < hits->len; i++)
		hit_done(&g_array_index(hits, struct hit, i));
	g_array_free(hits, TRUE);
}

/* One value per rate ("VAT 19%" and "VAT 7%" lines) is summed; otherwise the last. */
static void sum_by_rate(GArray *hits, struct hit *ret)
{
	GHashTable *last = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = 0; i < hits->len; i++) {
		struct hit *h = &g_array_index(hits, struct hit, i);
		if (h->rate)
			g_hash_table_insert(last, h->rate, h);
	}
	if (g_hash_table_size(last) > 1) {
		double sum = 0, conf = 1;
		GHashTableIter it;
		gpointer k, v;
		g_hash_table_iter_init(&it, last);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			struct hit *h = v;
			g_autofree char *t = json_format(h->value, false);
			sum += g_ascii_strtod(t, NULL);
			conf = MIN(conf, h->confidence);
		}
		struct hit *l = &g_array_index(hits, struct hit, hits->len - 1);
		*ret = (struct hit){.label = l->label,
		                    .cell = l->cell,
		                    .value = json_number(round(sum * 100) / 100),
		                    .confidence = conf * 0.95};
	}
	g_hash_table_destroy(last);
}

static void find_labelled(struct ctx *c, struct field *f)
{
	if (!f->labels)
		return;
	GArray *hits = label_hits(c, f);
	if (hits->len > 0) {
		const char *sum = json_get_string(f->hints, "sum_by");
		if (sum && strcmp(sum, "rate") == 0)
			sum_by_rate(hits, &f->hit);
		if (!f->hit.value) {
			bool last = json_get(f->hints, "last") && !json_is_null(json_get(f->hints, "last"));
			struct hit *h = &g_array_index(hits, struct hit, last ? hits->len - 1 : 0);
			f->hit = *h;
			memset(h, 0, sizeof *h);
		}
	}
	free_hits(hits);
}

static struct field *field_named(struct ctx *c, const char *name)
{
	for (size_t i = 0; name && i < c->n_fields; i++)
		if (strcmp(c->fields[i].name, name) == 0)
			return &c->fields[i];
	return NULL;
}

static void set_hit(struct field *f, const struct layout_cell *cell, struct json *value, double conf)
{
	hit_done(&f->hit);
	f->hit.cell = cell;
	f->hit.value = value;
	f->hit.confidence = conf;
}

static bool has_letters(const char *s)
{
	for (; *s; s = g_utf8_next_char(s))
		if (g_unichar_isalpha(g_utf8_get_char(s)))
			return true;
	return false;
}

/* The name at the head of the first page: the largest type in its top part that is
 * neither a heading ("INVOICE") nor a label, nor mostly digits. */
static void find_letterhead(struct ctx *c, struct field *f)
{
	if (c->lay->n_pages == 0)
		return;
	g_autoptr(GRegex) heading = anchored(json_get_string(c->type->hints, "headings"));
	const struct layout_page *pg = &c->lay->pages[0];
	const struct layout_cell *best = NULL;
	float best_h = 0, second_h = 0;
	for (size_t i = 0; i < pg->n_cells; i++) {
		const struct layout_cell *cell = &pg->cells[i];
		bool top = cell->has_box ? cell->box.y1 < 0.3 * pg->height : cell->row < 8;
		if (!top || is_label(c, cell) || !has_letters(cell->text) || strlen(cell->text) > 120 ||
		    g_ascii_isdigit(cell->text[0]) || strchr(cell->text, ':') || strchr(cell->text, '@'))
			continue;
		if (heading) {
			g_autoptr(GMatchInfo) mi = NULL;
			int s = 0, e = 0;
			if (g_regex_match(heading, cell->text, 0, &mi) && g_match_info_fetch_pos(mi, 0, &s, &e) &&
			    cell->text[e] == '\0')
				continue;
		}
		float h = cell->has_box ? cell->box.y1 - cell->box.y0 : (float)(8 - cell->row);
		if (!best || h > best_h + 0.5f) {
			second_h = best_h;
			best = cell;
			best_h = h;
		} else {
			second_h = MAX(second_h, h);
		}
	}
	if (best) {
		/* Surer when its type stands out from everything else at the top. */
		double conf = (best->has_box && best_h >= 1.25f * second_h ? 0.85 : 0.6) * ocr_factor(c, 1);
		set_hit(f, best, parse_kind(K_TEXT, best->text, &conf), conf);
	}
}

/* The cell under another field's value (the address under the supplier's name). */
static void find_below(struct ctx *c, struct field *f)
{
	struct field *of = field_named(c, json_get_string(f->hints, "of"));
	if (!of || !of->hit.cell)
		return;
	const struct layout_cell *b = layout_below(c->lay, of->hit.cell);
	if (!b || is_label(c, b) || !has_letters(b->text))
		return;
	double conf = 0.5 * ocr_factor(c, b->page);
	set_hit(f, b, parse_kind(f->kind, b->text, &conf), conf);
}

static bool iban_valid(const char *iban)
{
	size_t n = strlen(iban);
	if (n < 15 || n > 34)
		return false;
	int rem = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = iban[(i + 4) % n];
		if (g_ascii_isdigit(ch))
			rem = (rem * 10 + (ch - '0')) % 97;
		else if (g_ascii_isupper(ch))
			rem = (rem * 100 + (ch - 'A' + 10)) % 97;
		else
			return false;
	}
	return rem == 1;
}

/* The first match of the field's pattern anywhere; IBANs must have valid check digits. */
static void find_pattern(struct ctx *c, struct field *f)
{
	const char *pattern = json_get_string(f->hints, "pattern");
	g_autoptr(GRegex) re = pattern ? g_regex_new(pattern, G_REGEX_OPTIMIZE, 0, NULL) : NULL;
	if (!re)
		return;
	const char *kind = json_get_string(f->hints, "kind");
	bool iban = kind && strcmp(kind, "iban") == 0;
	for (int p = 0; p < c->lay->n_pages; p++) {
		const struct layout_page *pg = &c->lay->pages[p];
		for (size_t i = 0; i < pg->n_cells; i++) {
			g_autoptr(GMatchInfo) mi = NULL;
			if (strlen(pg->cells[i].text) > MAX_CELL)
				continue;
			for (g_regex_match(re, pg->cells[i].text, 0, &mi); g_match_info_matches(mi);
			     g_match_info_next(mi, NULL)) {
				g_autofree char *m = g_match_info_fetch(mi, 0);
				GString *v = g_string_new(NULL);
				for (const char *s = m; *s; s++)
					if (!g_ascii_isspace(*s) && *s != '.' && *s != '-')
						g_string_append_c(v, g_ascii_toupper(*s));
				if (iban && !iban_valid(v->str)) {
					g_string_free(v, TRUE);
					continue;
				}
				set_hit(f, &pg->cells[i], json_string(v->str),
				        (iban ? 0.95 : 0.85) * ocr_factor(c, p + 1));
				g_string_free(v, TRUE);
				return;
			}
		}
	}
}

/* The currency written with the amount of field "near", else the first one in the document. */
static void find_currency(struct ctx *c, struct field *f)
{
	struct field *near = field_named(c, json_get_string(f->hints, "near"));
	if (near && near->hit.cell) {
		const char *code = rules_currency(near->hit.cell->text);
		if (code) {
			set_hit(f, near->hit.cell, json_string(code), 0.9);
			return;
		}
	}
	for (int p = 0; p < c->lay->n_pages; p++) {
		const struct layout_page *pg = &c->lay->pages[p];
		for (size_t i = 0; i < pg->n_cells; i++) {
			const char *code = rules_currency(pg->cells[i].text);
			if (code) {
				set_hit(f, &pg->cells[i], json_string(code), 0.6);
				return;
			}
		}
	}
}

/* Every labelled value, as a list: of strings (parties), or of objects from another
 * field's labels with their "rate" (tax lines). */
static void find_label_all(struct ctx *c, struct field *f)
{
	struct field *of = field_named(c, json_get_string(f->hints, "of"));
	struct field *src = of ? of : f;
	if (!src->labels)
		return;
	GArray *hits = label_hits(c, src);
	const char *key = json_get_string(f->hints, "value");
	struct json *list = json_new_array();
	double conf = 1;
	for (guint i = 0; i < hits->len; i++) {
		struct hit *h = &g_array_index(hits, struct hit, i);
		if (key) {
			double rate = 0;
			if (!h->rate || !rules_parse_amount(h->rate, &rate))
				continue;
			struct json *o = json_append(list, json_new_object());
			json_add_number(o, "rate", rate);
			json_add_item(o, key, h->value);
			h->value = NULL;
		} else {
			json_append(list, h->value);
			h->value = NULL;
		}
		conf = MIN(conf, h->confidence);
	}
	if (json_array_size(list) > 0)
		set_hit(f, g_array_index(hits, struct hit, 0).cell, list, conf);
	else
		json_free(list);
	free_hits(hits);
}

/* Typed values of a list item's properties from the item regex's named groups. */
static struct json *item_of(struct ctx *c, struct field *f, GRegex *re, const char *text)
{
	g_autoptr(GMatchInfo) mi = NULL;
	if (!g_regex_match(re, text, 0, &mi))
		return NULL;
	const struct json *item = json_get(doctype_property(c->type, f->name), "items");
	const struct json *req = json_get(item, "required");
	struct json *o = json_new_object();
	for (size_t i = 0; i < json_array_size(req); i++) {
		const char *k = json_string_value(json_array_at(req, i));
		g_autofree char *v = k ? g_match_info_fetch_named(mi, k) : NULL;
		g_autofree char *type = json_format(json_get(json_get(json_get(item, "properties"), k), "type"), false);
		double conf = 1, num = 0;
		if (!v || !v[0])
			json_add_null(o, k);
		else if (type && strstr(type, "number") && rules_parse_amount(v, &num))
			json_add_number(o, k, round(num * 100) / 100);
		else
			json_add_item(o, k, parse_kind(K_TEXT, v, &conf));
	}
	return o;
}

/* Items from the rows between a row starting with "after" and one starting with "before". */
static void find_lines(struct ctx *c, struct field *f)
{
	g_autoptr(GRegex) after = anchored(json_get_string(f->hints, "after"));
	g_autoptr(GRegex) before = anchored(json_get_string(f->hints, "before"));
	const char *ip = json_get_string(f->hints, "item");
	g_autoptr(GRegex) item = ip ? g_regex_new(ip, G_REGEX_OPTIMIZE, 0, NULL) : NULL;
	if (!item)
		return;
	struct json *list = json_new_array();
	const struct layout_cell *first = NULL;
	bool inside = !after, finished = false;
	for (int p = 0; p < c->lay->n_pages && !finished; p++) {
		const struct layout_page *pg = &c->lay->pages[p];
		for (size_t r = 0; r < pg->n_rows && !finished && json_array_size(list) < RULES_MAX_ITEMS; r++) {
			g_autofree char *raw = layout_row_text(pg, r);
			if (strlen(raw) > MAX_CELL)
				continue;
			if (!inside) {
				inside = g_regex_match(after, raw, 0, NULL);
				continue;
			}
			if (before && g_regex_match(before, raw, 0, NULL)) {
				inside = false;
				finished = json_array_size(list) > 0;
				continue;
			}
			struct json *o = item_of(c, f, item, raw);
			if (o) {
				json_append(list, o);
				first = first ? first : &pg->cells[pg->rows[r].first];
			}
		}
	}
	if (json_array_size(list) > 0)
		set_hit(f, first, list, 0.8 * ocr_factor(c, first->page));
	else
		json_free(list);
}

/* An item whose amount is less than quantity × the printed price had a discount: its unit
 * price is the net one (amount / quantity), as an invoice's lines carry it. */
static void net_unit_price(struct json *item)
{
	double q = 0, p = 0, a = 0;
	if (!json_get_number(item, "quantity", &q) || !json_get_number(item, "unit_price", &p) ||
	    !json_get_number(item, "amount", &a) || fabs(q) < 1e-9)
		return;
	double net = a / q;
	if (fabs(q * p - a) > 0.01 + 0.005 * fabs(a) && fabs(net) < fabs(p) && fabs(net) > 0)
		json_set_item(item, "unit_price", json_number(round(fabs(net) * 100) / 100 * (p < 0 ? -1 : 1)));
}

/* Line items from a table (extractors/table.h); the columns' header patterns are the hints'. */
static void find_table(struct ctx *c, struct field *f)
{
	const struct json *item = json_get(doctype_property(c->type, f->name), "items");
	const struct json *req = json_get(item, "required");
	const struct json *heads = json_get(f->hints, "columns");
	struct table_column cols[16];
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(req) && n < G_N_ELEMENTS(cols); i++) {
		const char *k = json_string_value(json_array_at(req, i));
		const char *h = json_get_string(heads, k);
		g_autofree char *type = json_format(json_get(json_get(json_get(item, "properties"), k), "type"), false);
		cols[n++] = (struct table_column){k, anchored(h), type && strstr(type, "number")};
	}
	const char *desc = json_get_string(f->hints, "description_column");
	const char *amount = json_get_string(f->hints, "amount_column");
	struct table_spec spec = {cols,
	                          n,
	                          desc ? desc : "description",
	                          amount ? amount : "amount",
	                          anchored(json_get_string(f->hints, "stop")),
	                          anchored(json_get_string(f->hints, "carry")),
	                          anchored(json_get_string(f->hints, "discount")),
	                          NULL,
	                          NULL};
	for (size_t i = 0; i < n; i++) {
		/* the columns a list without a header fills with one unit at the line's amount */
		const char *qty = json_get_string(f->hints, "quantity_column");
		const char *price = json_get_string(f->hints, "price_column");
		if (strcmp(cols[i].key, qty ? qty : "quantity") == 0)
			spec.quantity = cols[i].key;
		if (strcmp(cols[i].key, price ? price : "unit_price") == 0)
			spec.unit_price = cols[i].key;
	}
	const struct layout_cell *first = NULL;
	struct json *items = table_items(c->lay, &spec, &first);
	for (size_t i = 0; i < json_array_size(items); i++)
		net_unit_price(json_array_at(items, i));
	for (size_t i = 0; c->credit_note && i < json_array_size(items); i++)
		for (size_t k = 0; k < n; k++) {
			double v = 0;
			struct json *o = json_array_at(items, i);
			if (cols[k].number && json_get_number(o, cols[k].key, &v) && v < 0)
				json_set_item(o, cols[k].key, json_number(-v));
		}
	if (items)
		set_hit(f, first, items, 0.85 * ocr_factor(c, first ? first->page : 1));
	for (size_t i = 0; i < n; i++)
		if (cols[i].header)
			g_regex_unref(cols[i].header);
	if (spec.stop)
		g_regex_unref(spec.stop);
	if (spec.carry)
		g_regex_unref(spec.carry);
	if (spec.discount)
		g_regex_unref(spec.discount);
}

static void find_field(struct ctx *c, struct field *f)
{
	const char *how = json_get_string(f->hints, "find");
	if (!how || strcmp(how, "label") == 0)
		find_labelled(c, f);
	else if (strcmp(how, "letterhead") == 0)
		find_letterhead(c, f);
	else if (strcmp(how, "below") == 0)
		find_below(c, f);
	else if (strcmp(how, "pattern") == 0)
		find_pattern(c, f);
	else if (strcmp(how, "currency") == 0)
		find_currency(c, f);
	else if (strcmp(how, "label_all") == 0)
		find_label_all(c, f);
	else if (strcmp(how, "lines") == 0)
		find_lines(c, f);
	else if (strcmp(how, "table") == 0)
		find_table(c, f);
}

/* Whether a string value is longer than its property allows (the result must stay valid). */
static bool too_long(const struct doctype *t, const struct field *f)
{
	const char *s = json_string_value(f->hit.value);
	double max = 0;
	return s && json_get_number(doctype_property(t, f->name), "maxLength", &max) &&
	       g_utf8_strlen(s, -1) > (glong)max;
}

static void emit(const struct doctype *type, struct json *fields, const struct field *f)
{
	struct json *o = json_add_item(fields, f->name, json_new_object());
	if (!f->hit.value || too_long(type, f)) {
		json_add_null(o, "value");
		json_add_number(o, "confidence", 0);
		return;
	}
	g_autofree char *t = json_format(f->hit.value, false);
	struct json *copy = NULL;
	if (json_parse(t, strlen(t), &copy, NULL))
		copy = NULL;
	json_add_item(o, "value", copy);
	json_add_number(o, "confidence", round(f->hit.confidence * 1000) / 1000);
	if (f->hit.cell) {
		json_add_number(o, "page", f->hit.cell->page);
		if (f->hit.cell->has_box) {
			struct json *b = json_add_item(o, "box", json_new_array());
			const struct pdftext_box *x = &f->hit.cell->box;
			json_append(b, json_number(round(x->x0 * 10) / 10));
			json_append(b, json_number(round(x->y0 * 10) / 10));
			json_append(b, json_number(round(x->x1 * 10) / 10));
			json_append(b, json_number(round(x->y1 * 10) / 10));
		}
	}
}

/* Fields in the order later strategies need them: labelled ones first, those that
 * refer to another field ("below", "currency", label_all "of") after. */
static int order_of(const struct field *f)
{
	const char *how = json_get_string(f->hints, "find");
	if (!how || strcmp(how, "label") == 0 || strcmp(how, "letterhead") == 0)
		return 0;
	return 1;
}

static void take(struct ctx *c, const char *name, const struct reader_value *v)
{
	bool amount = g_str_has_suffix(name, "_amount");
	struct field *f = field_named(c, name);
	if (!f || !v->set)
		return;
	double conf = v->confidence * (v->cell ? ocr_factor(c, v->cell->page) : 1.0);
	/* another value nearly as well placed: the choice between them is close (amounts are
	 * chosen by their arithmetic instead, which validate.c checks) */
	if (!amount && v->runner_up >= READER_CONTESTED * v->confidence)
		conf *= READER_CONTESTED_FACTOR;
	set_hit(f, v->cell, v->text ? json_string(v->text) : json_number(round(v->number * 100) / 100), conf);
	f->read = true;
}

/* The invoice reader's fields (reader.h) replace the labelled ones where it found a value. */
static void read_invoice(struct ctx *c)
{
	struct reader_invoice r;
	reader_invoice_read(c->lay, &r);
	take(c, "invoice_number", &r.number);
	take(c, "issue_date", &r.issue_date);
	take(c, "due_date", &r.due_date);
	take(c, "supplier_name", &r.supplier);
	take(c, "buyer_name", &r.buyer);
	take(c, "currency", &r.currency);
	take(c, "net_amount", &r.net);
	take(c, "tax_amount", &r.tax);
	take(c, "total_amount", &r.total);
	struct field *tl = field_named(c, "tax_lines");
	if (tl && r.n_tax_lines > 0) {
		struct json *list = json_new_array();
		for (size_t i = 0; i < r.n_tax_lines; i++) {
			struct json *o = json_append(list, json_new_object());
			json_add_number(o, "rate", r.tax_lines[i].rate);
			json_add_number(o, "tax", round(r.tax_lines[i].tax * 100) / 100);
		}
		set_hit(tl, r.tax.cell, list, r.tax.confidence);
		tl->read = true;
	}
	c->credit_note = r.credit_note;
	reader_invoice_done(&r);
}

enum qerr rules_extract(const struct doctype *type, const struct pdftext_doc *doc, const struct layout *lay,
                        struct json **ret, char **reterr)
{
	(void)reterr;
	const struct json *names = doctype_fields(type);
	struct ctx c = {.type = type,
	                .doc = doc,
	                .lay = lay,
	                .n_fields = json_array_size(names),
	                .owner = g_hash_table_new(NULL, NULL)};
	c.fields = g_new0(struct field, MAX(c.n_fields, 1));
	for (size_t i = 0; i < c.n_fields; i++) {
		struct field *f = &c.fields[i];
		f->name = json_string_value(json_array_at(names, i));
		f->hints = doctype_field_hints(type, f->name);
		f->kind = kind_of(type, f->name, f->hints);
		f->labels = label_regex(json_get_string(f->hints, "labels"));
	}
	assign_labels(&c);
	const char *reader = json_get_string(type->hints, "reader");
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < c.n_fields; i++)
			if (order_of(&c.fields[i]) == pass && !c.fields[i].read)
				find_field(&c, &c.fields[i]);
		if (pass == 0 && reader && strcmp(reader, "invoice") == 0)
			read_invoice(&c);
	}
	struct json *root = json_new_object();
	json_add_string(root, "document_type", type->name);
	json_add_string(root, "method", "rules");
	struct json *fields = json_add_item(root, "fields", json_new_object());
	for (size_t i = 0; i < c.n_fields; i++) {
		emit(type, fields, &c.fields[i]);
		hit_done(&c.fields[i].hit);
		if (c.fields[i].labels)
			g_regex_unref(c.fields[i].labels);
	}
	g_free(c.fields);
	g_hash_table_destroy(c.owner);
	*ret = root;
	return QERR_OK;
}

enum qerr rules_invoice(const struct pdftext_doc *doc, struct json **ret, char **reterr)
{
	const struct doctypes *types = NULL;
	enum qerr e = doctypes_shared(NULL, &types, reterr);
	if (e)
		return e;
	struct layout *lay = layout_build(doc);
	e = rules_extract(doctypes_find(types, "invoice"), doc, lay, ret, reterr);
	layout_free(lay);
	return e;
}
