/* table: header detection, column assignment, page-break stitching. */
#include "extractors/table.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/layout.h"
#include "extractors/rules.h"

#define MAX_COLS 16

struct col {
	const struct table_column *spec; /* NULL: a column nobody asked for ("#") */
	float x0, x1;
};

/* One item: the text of each of the spec's columns (NULL: empty), in spec order. */
struct item {
	char *text[MAX_COLS];
	double adjust; /* discounts and surcharges printed under the item, added to its amount */
};

struct state {
	const struct table_spec *spec;
	struct col cols[MAX_COLS];
	size_t n;
	bool active, finished;
	GArray *items;        /* struct item */
	float last_y1, row_h; /* bottom of the last item's row and its height */
	const struct layout_cell *first;
	float head_h;               /* height of the header's text: much smaller specks are not text of the table */
	GString *pending[MAX_COLS]; /* an item's first line whose amount is on the next one */
	float pending_y1;
	float desc_x0, pending_desc_x0; /* where the last item's description starts on its first line */
};

static void drop_pending(struct state *st)
{
	for (size_t k = 0; k < MAX_COLS; k++)
		if (st->pending[k]) {
			g_string_free(st->pending[k], TRUE);
			st->pending[k] = NULL;
		}
}

static bool whole_match(GRegex *re, const char *text)
{
	g_autoptr(GMatchInfo) mi = NULL;
	int s = 0, e = 0;
	return re && g_regex_match(re, text, 0, &mi) && g_match_info_fetch_pos(mi, 0, &s, &e) &&
	       text[e + strspn(text + e, " :./-")] == '\0';
}

/* A cell, or the part of one that falls under one column. */
struct piece {
	char *text;
	struct pdftext_box box;
	const struct layout_cell *cell;
	int col;
};

/* Words of c [from, to) as a piece of column k. */
static struct piece piece_of(const struct layout_cell *c, size_t from, size_t to, int k)
{
	const struct layout_word *a = &c->words[from], *b = &c->words[to - 1];
	struct pdftext_box box = {a->box.x0, MIN(a->box.y0, b->box.y0), b->box.x1, MAX(a->box.y1, b->box.y1)};
	return (struct piece){g_strndup(c->text + a->start, b->start + b->len - a->start), box, c, k};
}

/* A header cell: its extent and its text, which may be stacked over several lines. */
struct head {
	float x0, x1;
	GString *text;
};

/* A row of words and marks ("#", "%"), no amounts: what a header line looks like. */
static bool words_only(const struct layout_page *pg, const struct layout_row *row)
{
	bool letters = false;
	for (size_t i = row->first; i < row->first + row->n; i++) {
		const char *t = pg->cells[i].text;
		double v = 0;
		if (!pg->cells[i].has_box || strlen(t) > 200 || (rules_parse_amount(t, &v) && strpbrk(t, ",.")))
			return false;
		letters = letters || t[strcspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")];
	}
	return letters;
}

static const struct table_column *named(const struct state *st, const char *text);

/* Adds a header cell's text to the header cell it overlaps, or starts one. */
static void stack_text(struct head *h, size_t *n, const struct pdftext_box *box, const char *text)
{
	size_t k = 0;
	while (k < *n && !(box->x0 < h[k].x1 && box->x1 > h[k].x0))
		k++;
	if (k == *n) {
		if (*n == MAX_COLS)
			return;
		h[(*n)++] = (struct head){box->x0, box->x1, g_string_new(NULL)};
	}
	if (h[k].text->len > 0 && h[k].text->str[h[k].text->len - 1] == '-')
		g_string_truncate(h[k].text, h[k].text->len - 1); /* a word hyphenated at the line's end */
	else if (h[k].text->len > 0)
		g_string_append_c(h[k].text, ' ');
	g_string_append(h[k].text, text);
}

/* The longest run of c's words from `from` that names a column; 0 when none does. */
static size_t named_run(const struct state *st, const struct layout_cell *c, size_t from)
{
	for (size_t to = c->n_words; to > from; to--) {
		const struct layout_word *a = &c->words[from], *b = &c->words[to - 1];
		g_autofree char *t = g_strndup(c->text + a->start, b->start + b->len - a->start);
		if (named(st, t))
			return to - from;
	}
	return 0;
}

/* Stacks one header cell. Header words set close together fall into one cell ("Pos
 * Art.-Nr. Beschreibung"); when the cell as a whole names no column but runs of its words
 * do, each named run is a header cell of its own and the words between them another. */
static void stack_cell(const struct state *st, struct head *h, size_t *n, const struct layout_cell *c)
{
	if (c->n_words < 2 || c->n_words > 64 || named(st, c->text)) {
		stack_text(h, n, &c->box, c->text);
		return;
	}
	size_t from = 0, j = 0;
	while (j < c->n_words) {
		size_t run = named_run(st, c, j);
		if (run == 0) {
			j++;
			continue;
		}
		if (j > from) {
			struct piece p = piece_of(c, from, j, -1);
			stack_text(h, n, &p.box, p.text);
			g_free(p.text);
		}
		struct piece p = piece_of(c, j, j + run, -1);
		stack_text(h, n, &p.box, p.text);
		g_free(p.text);
		j += run;
		from = j;
	}
	if (from < c->n_words) {
		struct piece p = piece_of(c, from, c->n_words, -1);
		stack_text(h, n, &p.box, p.text);
		g_free(p.text);
	}
}

/* Adds the cells of row to the header cells, joining each to the one it overlaps. */
static void stack_row(const struct state *st, struct head *h, size_t *n, const struct layout_page *pg,
                      const struct layout_row *row)
{
	for (size_t i = row->first; i < row->first + row->n; i++)
		stack_cell(st, h, n, &pg->cells[i]);
}

/* The spec column a header cell's text names (whole text, or the first line of a stacked one). */
static const struct table_column *named(const struct state *st, const char *text)
{
	/* the amount first: "Gesamtpreis" is the line's amount though it names a price */
	for (size_t k = 0; k < st->spec->n_cols; k++)
		if (strcmp(st->spec->cols[k].key, st->spec->amount) == 0 && whole_match(st->spec->cols[k].header, text))
			return &st->spec->cols[k];
	for (size_t k = 0; k < st->spec->n_cols; k++)
		if (whole_match(st->spec->cols[k].header, text))
			return &st->spec->cols[k];
	return NULL;
}

static gint by_x0(gconstpointer a, gconstpointer b)
{
	const struct head *x = a, *y = b;
	return (x->x0 > y->x0) - (x->x0 < y->x0);
}

/* The height of a row's type: its cells' median height (a row's box may be taller, and a
 * speck in it smaller). */
static float text_height(const struct layout_page *pg, const struct layout_row *row)
{
	float h[MAX_COLS];
	size_t n = 0;
	for (size_t i = row->first; i < row->first + row->n && n < MAX_COLS; i++)
		h[n++] = pg->cells[i].box.y1 - pg->cells[i].box.y0;
	for (size_t i = 1; i < n; i++) /* insertion sort: a header has a handful of cells */
		for (size_t j = i; j > 0 && h[j - 1] > h[j]; j--) {
			float t = h[j];
			h[j] = h[j - 1];
			h[j - 1] = t;
		}
	return n ? h[n / 2] : row->box.y1 - row->box.y0;
}

/* A header row sets the columns; false when the row is not one. Header cells may be
 * stacked over the word-only lines just above and below ("Positions-" / "betrag"). */
static bool header_row(struct state *st, const struct layout_page *pg, size_t r)
{
	const struct layout_row *row = &pg->rows[r];
	if (row->n < 3 || row->n > MAX_COLS || !words_only(pg, row))
		return false;
	struct head h[MAX_COLS];
	size_t n = 0;
	float lh = text_height(pg, row);
	/* the lines packed tight above and below (a header's lines are closer than its rows),
	 * stacked top to bottom; specks much smaller than the header (a margin's rotated
	 * letters) are passed over */
	size_t lo = r, hi = r;
	float top = row->box.y0, bottom = row->box.y1;
	for (size_t k = r; k > 0 && k + 6 > r; k--) {
		const struct layout_row *x = &pg->rows[k - 1];
		if (x->box.y1 - x->box.y0 < 0.6f * lh)
			continue;
		if (top - x->box.y1 >= 0.6f * lh || !words_only(pg, x))
			break;
		lo = k - 1;
		top = x->box.y0;
	}
	for (size_t k = r + 1; k < pg->n_rows && k < r + 6; k++) {
		const struct layout_row *x = &pg->rows[k];
		if (x->box.y1 - x->box.y0 < 0.6f * lh)
			continue;
		if (x->box.y0 - bottom >= 0.6f * lh || !words_only(pg, x))
			break;
		hi = k;
		bottom = x->box.y1;
	}
	for (size_t k = lo; k <= hi; k++)
		if (k == r || pg->rows[k].box.y1 - pg->rows[k].box.y0 >= 0.6f * lh)
			stack_row(st, h, &n, pg, &pg->rows[k]);
	qsort(h, n, sizeof h[0], by_x0);
	struct col cols[MAX_COLS];
	bool have_desc = false, have_amount = false;
	int known = 0;
	for (size_t i = 0; i < n; i++) {
		const struct table_column *spec = named(st, h[i].text->str);
		g_auto(GStrv) words = spec ? NULL : g_strsplit(h[i].text->str, " ", -1);
		for (size_t w = 0; !spec && words[w]; w++)
			spec = named(st, words[w]);
		cols[i] = (struct col){spec, h[i].x0, h[i].x1};
		g_string_free(h[i].text, TRUE);
		if (!spec)
			continue;
		known++;
		have_desc |= strcmp(spec->key, st->spec->description) == 0;
		have_amount |= strcmp(spec->key, st->spec->amount) == 0;
	}
	if (!have_desc || !have_amount || known < 3)
		return false;
	memcpy(st->cols, cols, n * sizeof cols[0]);
	st->n = n;
	st->head_h = lh;
	st->active = true;
	st->row_h = 0; /* no description continues across a header */
	return true;
}

/* The column text in box belongs to: the one it overlaps most, else the nearest within 40 points. */
static int column_of(const struct state *st, const struct pdftext_box *box, const char *text)
{
	const struct {
		struct pdftext_box box;
		const char *text;
	} cell = {*box, text}, *c = &cell;
	int best = -1;
	float best_overlap = 0, best_dist = 40;
	for (size_t i = 0; i < st->n; i++) {
		float ov = MIN(c->box.x1, st->cols[i].x1) - MAX(c->box.x0, st->cols[i].x0);
		if (ov > best_overlap) {
			best_overlap = ov;
			best = (int)i;
		}
	}
	if (best >= 0)
		return best;
	/* Text left of the first number column under no header of its own: the description,
	 * whose header is often centred over a wide column. */
	int desc = -1;
	float first_number = 1e9f;
	for (size_t i = 0; i < st->n; i++) {
		const struct table_column *spec = st->cols[i].spec;
		if (spec && spec->number)
			first_number = MIN(first_number, st->cols[i].x0);
		if (spec && strcmp(spec->key, st->spec->description) == 0)
			desc = (int)i;
	}
	bool letters = false;
	for (const char *t = c->text; *t && !letters; t = g_utf8_next_char(t))
		letters = g_unichar_isalpha(g_utf8_get_char(t));
	if (desc >= 0 && c->box.x1 <= first_number && letters)
		return desc;
	float cx = (c->box.x0 + c->box.x1) / 2;
	for (size_t i = 0; i < st->n; i++) {
		float d = fabsf(cx - (st->cols[i].x0 + st->cols[i].x1) / 2);
		if (d < best_dist) {
			best_dist = d;
			best = (int)i;
		}
	}
	return best;
}

static bool is_number_col(const struct state *st, int k)
{
	return k >= 0 && st->cols[k].spec && st->cols[k].spec->number;
}

static bool is_desc_col(const struct state *st, int k)
{
	return k >= 0 && st->cols[k].spec && strcmp(st->cols[k].spec->key, st->spec->description) == 0;
}

/* The column of text. A number goes where column_of puts it when that is a number column.
 * Other text is set flush left in its column: of the columns it overlaps, one that holds it
 * whole wins (a later word of a cell), else the one whose left edge is nearest its own,
 * counting columns that start just right of it ("TGA" or "3 m breit" starting a little left
 * of the description's header). */
static int text_column(const struct state *st, const struct pdftext_box *box, const char *text, bool first)
{
	double v = 0;
	int k0 = column_of(st, box, text);
	if (rules_parse_amount(text, &v) && strspn(text, "0123456789.,-+ ") == strlen(text) && is_number_col(st, k0))
		return k0;
	int best = -1;
	float best_d = 1e9f;
	bool overlaps = false;
	for (size_t i = 0; i < st->n; i++) {
		bool over = box->x1 > st->cols[i].x0 && box->x0 < st->cols[i].x1;
		overlaps |= over;
		if (!first && over && box->x0 >= st->cols[i].x0 - 1 && box->x1 <= st->cols[i].x1 + 1)
			return (int)i;
		float d = fabsf(box->x0 - st->cols[i].x0);
		if ((over || (first && d < 30 && !is_number_col(st, (int)i))) && d < best_d) {
			best_d = d;
			best = (int)i;
		}
	}
	return overlaps && best >= 0 ? best : k0;
}

/* A word of punctuation only ("-", "/"): it has no column of its own. */
static bool punctuation(const char *w)
{
	for (const char *p = w; *p; p = g_utf8_next_char(p))
		if (g_unichar_isalnum(g_utf8_get_char(p)))
			return false;
	return true;
}

static void add_text(GString **cells, int col, const char *text)
{
	if (!cells[col])
		cells[col] = g_string_new(text);
	else
		g_string_append_printf(cells[col], " %s", text);
}

/* Text far smaller than the header's (a margin's rotated letters crossing the table). */
static bool speck(const struct state *st, const struct layout_cell *c)
{
	return c->has_box && c->box.y1 - c->box.y0 < 0.6f * st->head_h;
}

/* A remark printed under an item ("Bestellt wurden 5 kg ..."): a sentence of more than eight
 * words, where a wrapped description gives short pieces. */
static bool note(const char *text)
{
	int words = 0;
	for (const char *p = text; *p; p++)
		words += (p == text || p[-1] == ' ') && *p != ' ';
	return words > 8;
}

/* A description's line and the one that continues it. After a hyphen that ends a word the
 * lines join without a space: a compound keeps its hyphen ("Personen-" over
 * "Unfallversicherung"), a word broken in the middle loses it ("Liefe-" over "rung"). */
static char *join_wrapped(const char *line, const char *next)
{
	size_t n = strlen(line);
	bool hyphen =
	    n >= 2 && line[n - 1] == '-' && g_unichar_isalnum(g_utf8_get_char(g_utf8_prev_char(line + n - 1)));
	gunichar c = g_utf8_get_char(next);
	if (n > 0 && c == '-' && g_unichar_isalpha(g_utf8_get_char(next + 1)))
		return g_strconcat(line, next,
		                   NULL); /* a compound broken before its hyphen ("Fahrten" over "-Karte") */
	if (hyphen && g_unichar_isupper(c))
		return g_strconcat(line, next, NULL);
	if (hyphen && g_unichar_islower(c) && g_unichar_isalpha(g_utf8_get_char(g_utf8_prev_char(line + n - 1))))
		return g_strdup_printf("%.*s%s", (int)(n - 1), line, next);
	return g_strdup_printf("%s %s", line, next);
}

/* Cuts a cell whose words run under several columns ("1 Toolbox 0815 Stahlcoil" under
 * position, article code and description; "Kunstrasen 3,00" under description and quantity)
 * at the columns' edges, from its word boxes. A run under a number column must start with a
 * number, and text right of the description stays with it (a long description running under
 * the next header), else the run joins the one before it. */
static size_t cut_cell(const struct state *st, const struct layout_cell *c, struct piece *out, size_t max)
{
	int whole = text_column(st, &c->box, c->text, true);
	size_t n = 0;
	/* a "label: value" note under an item stays whole, wherever its words fall */
	if (c->n_words >= 2 && c->n_words <= 64 && max > 0 && !strchr(c->text, ':')) {
		int col[64];
		for (size_t j = 0; j < c->n_words; j++) {
			g_autofree char *w = g_strndup(c->text + c->words[j].start, c->words[j].len);
			double v = 0;
			int k = text_column(st, &c->words[j].box, w, j == 0);
			bool joins = j > 0 && (k < 0 || k == col[j - 1] || punctuation(w) ||
			                       (is_number_col(st, k) && !rules_parse_amount(w, &v)) ||
			                       (is_desc_col(st, col[j - 1]) && !is_number_col(st, k)));
			col[j] = joins ? col[j - 1] : k;
		}
		/* punctuation that opens the cell goes with the word after it ("- Garantie") */
		for (size_t j = 0; j + 1 < c->n_words; j++) {
			g_autofree char *w = g_strndup(c->text + c->words[j].start, c->words[j].len);
			if (!punctuation(w))
				break;
			for (size_t i = 0; i <= j; i++)
				col[i] = col[j + 1];
		}
		size_t from = 0;
		for (size_t j = 1; j <= c->n_words && n + 1 < max; j++)
			if (j == c->n_words || col[j] != col[from]) {
				out[n++] = piece_of(c, from, j, col[from]);
				from = j;
			}
		if (n > 1 && from == c->n_words)
			return n;
		for (size_t i = 0; i < n; i++)
			g_free(out[i].text);
		n = 0;
	}
	if (max == 0)
		return 0;
	out[0] = (struct piece){g_strdup(c->text), c->box, c, whole};
	return 1;
}

/* Whether a negative amount on row is a discount on the item just above: that item's amount
 * is positive and larger, and the row follows it closely. */
static bool discounted(const struct state *st, const struct layout_row *row, double amount)
{
	if (st->items->len == 0 || st->row_h <= 0 || row->box.y0 - st->last_y1 > 3 * st->row_h)
		return false;
	const struct item *last = &g_array_index(st->items, struct item, st->items->len - 1);
	for (size_t k = 0; k < st->spec->n_cols && k < MAX_COLS; k++) {
		double v = 0;
		if (strcmp(st->spec->cols[k].key, st->spec->amount) == 0)
			return last->text[k] && rules_parse_amount(last->text[k], &v) && v + last->adjust + amount > 0;
	}
	return false;
}

/* The amount on the line under an item's quantity and price: the pending first line's cells
 * join this row's; a description on both lines is one wrapped description, less a
 * "key: value" note ("Basismenge: 1 Stk") on the second. */
static void take_pending(struct state *st, GString **cells, float *desc_x0)
{
	for (size_t k = 0; k < st->n; k++) {
		if (!st->pending[k])
			continue;
		if (cells[k] && is_desc_col(st, (int)k)) {
			if (!strchr(cells[k]->str, ':') && !note(cells[k]->str)) {
				g_autofree char *joined = join_wrapped(st->pending[k]->str, cells[k]->str);
				g_string_assign(st->pending[k], joined);
			}
			g_string_free(cells[k], TRUE);
			cells[k] = NULL;
		}
		if (!cells[k]) {
			cells[k] = st->pending[k];
			st->pending[k] = NULL;
			*desc_x0 = st->pending_desc_x0;
		}
	}
}

#define MAX_PIECES 64

/* A new item from the row's cells (one per column, borrowed). */
static void add_item(struct state *st, GString *const *cells, const struct layout_row *row,
                     const struct layout_cell *amount_cell, float desc_x0)
{
	struct item it = {0};
	for (size_t k = 0; k < st->spec->n_cols && k < MAX_COLS; k++)
		for (size_t i = 0; i < st->n; i++)
			if (st->cols[i].spec == &st->spec->cols[k] && cells[i])
				it.text[k] = g_strdup(cells[i]->str);
	if (st->items->len < RULES_MAX_ITEMS)
		g_array_append_val(st->items, it);
	else
		for (size_t k = 0; k < MAX_COLS; k++)
			g_free(it.text[k]);
	st->first = st->first ? st->first : amount_cell;
	st->last_y1 = row->box.y1;
	st->row_h = row->box.y1 - row->box.y0;
	st->desc_x0 = desc_x0 < 1e9f ? desc_x0 : 0;
}

/* A wrapped description: the line under an item with text only in the description column.
 * Only what lines up with the item's description (aligned) joins it, not a code column its
 * header shares. */
static void continue_description(struct state *st, GString *const *cells, const char *aligned, float desc_x0)
{
	struct item *last = &g_array_index(st->items, struct item, st->items->len - 1);
	for (size_t k = 0; k < st->spec->n_cols && k < MAX_COLS; k++)
		if (strcmp(st->spec->cols[k].key, st->spec->description) == 0)
			for (size_t i = 0; i < st->n; i++)
				if (cells[i] && st->cols[i].spec == &st->spec->cols[k] && aligned[0] &&
				    !note(aligned)) {
					char *joined = join_wrapped(last->text[k] ? last->text[k] : "", aligned);
					g_free(last->text[k]);
					last->text[k] = g_strstrip(joined);
					/* a description printed under the item's numbers starts here */
					st->desc_x0 = st->desc_x0 > 0 ? st->desc_x0 : desc_x0;
				}
}

/* An item from a row, a continued description, or nothing. */
static void body_row(struct state *st, const struct layout_page *pg, size_t r)
{
	const struct layout_row *row = &pg->rows[r];
	GString *cells[MAX_COLS] = {0};
	const struct layout_cell *amount_cell = NULL;
	const char *amount_text = NULL;
	bool has_desc = false, has_number = false;
	float desc_x0 = 1e9f;
	g_autoptr(GString) aligned = g_string_new(NULL); /* description text flush with the item's */
	g_autoptr(GString) desc_text = g_string_new(NULL);
	struct piece pieces[MAX_PIECES];
	size_t np = 0;
	for (size_t i = 0; i < row->n; i++)
		if (!speck(st, &pg->cells[row->first + i]))
			np += cut_cell(st, &pg->cells[row->first + i], pieces + np, MAX_PIECES - np);
	for (size_t i = 0; i < np; i++) {
		const struct piece *c = &pieces[i];
		int k = c->col;
		if (k < 0)
			continue;
		const struct table_column *spec = st->cols[k].spec;
		bool desc = spec && strcmp(spec->key, st->spec->description) == 0;
		if (desc && i == 0 && np > 1 && strlen(c->text) <= 3 &&
		    strspn(c->text, "0123456789") == strlen(c->text))
			continue; /* the item's position number, under a header cell it shares */
		double v = 0;
		if (spec && strcmp(spec->key, st->spec->amount) == 0 && cells[k] && rules_parse_amount(c->text, &v))
			g_string_assign(cells[k], c->text); /* a rate printed left of the amount under its header */
		else
			add_text(cells, k, c->text);
		has_desc = has_desc || desc;
		has_number = has_number || (spec && spec->number);
		if (desc) {
			desc_x0 = MIN(desc_x0, c->box.x0);
			g_string_append_printf(desc_text, "%s%s", desc_text->len ? " " : "", c->text);
		}
		if (desc && c->box.x0 >= st->desc_x0 - 3)
			g_string_append_printf(aligned, "%s%s", aligned->len ? " " : "", c->text);
		if (spec && strcmp(spec->key, st->spec->amount) == 0) {
			amount_cell = c->cell;
			amount_text = c->text;
		}
	}
	if (!amount_cell && has_desc && has_number) {
		/* quantity and price without the amount: the amount may come on the next line */
		drop_pending(st);
		memcpy(st->pending, cells, sizeof cells);
		st->pending_y1 = row->box.y1;
		st->pending_desc_x0 = desc_x0;
		for (size_t i = 0; i < np; i++)
			g_free(pieces[i].text);
		return;
	}
	bool has_qty = false; /* a number besides the amount */
	for (size_t k = 0; k < st->n; k++)
		has_qty |= cells[k] && is_number_col(st, (int)k) &&
		           strcmp(st->cols[k].spec->key, st->spec->amount) != 0 && !strchr(cells[k]->str, '%');
	if (amount_cell && !has_qty && row->box.y0 - st->pending_y1 < row->box.y1 - row->box.y0)
		take_pending(st, cells, &desc_x0);
	drop_pending(st);
	double amount = 0;
	bool only_desc = true; /* nothing in the number columns, and no "key: value" note */
	for (size_t k = 0; k < st->n; k++) {
		const struct table_column *spec = st->cols[k].spec;
		if (cells[k] && ((spec && spec->number) || strchr(cells[k]->str, ':')))
			only_desc = false;
	}
	size_t filled = 0; /* columns besides the amount: a lone number ("Seite 2") is no item */
	for (size_t k = 0; k < st->n; k++)
		filled += cells[k] && !(st->cols[k].spec && strcmp(st->cols[k].spec->key, st->spec->amount) == 0);
	bool discount_words = !has_desc || (st->spec->discount && desc_text->len &&
	                                    g_regex_match(st->spec->discount, desc_text->str, 0, NULL));
	if (amount_cell && discount_words && !has_qty && rules_parse_amount(amount_text, &amount) && amount < 0 &&
	    discounted(st, row, amount)) {
		/* "abzgl. 16,7 % Rabatt  -2,00" under an item: a discount on it, not an item */
		g_array_index(st->items, struct item, st->items->len - 1).adjust += amount;
		st->last_y1 = row->box.y1;
	} else if (amount_cell && filled > 0 && rules_parse_amount(amount_text, &amount) &&
	           (has_qty || !strchr(desc_text->str, ':'))) { /* not a "key: value" note with a number */
		add_item(st, cells, row, amount_cell, desc_x0);
	} else if (only_desc && st->items->len > 0 && st->row_h > 0 && row->box.y0 - st->last_y1 < 0.8f * st->row_h) {
		continue_description(st, cells, aligned->str, desc_x0);
		st->last_y1 = row->box.y1;
	}
	for (size_t k = 0; k < MAX_COLS; k++)
		if (cells[k])
			g_string_free(cells[k], TRUE);
	for (size_t i = 0; i < np; i++)
		g_free(pieces[i].text);
}

/* A description without the article code in front of it ("TB100A4 Trennblätter A4"): a
 * first word of capitals and digits, when words follow. */
static const char *without_code(const char *text)
{
	const char *sp = strchr(text, ' ');
	if (!sp || !sp[1])
		return text;
	bool digit = false, upper = false;
	for (const char *p = text; p < sp; p++) {
		if (g_ascii_islower(*p))
			return text;
		digit = digit || g_ascii_isdigit(*p);
		upper = upper || g_ascii_isupper(*p) || (unsigned char)*p >= 0x80;
	}
	return digit && upper && sp - text >= 3 ? sp + 1 : text;
}

/* The page's decimal mark, from the amounts of its items: ',' where they end in ",dd"
 * ("27,50"), '.' where they end in ".dd", 0 when they do not tell. */
static char decimal_mark(const struct state *st)
{
	long comma = 0, dot = 0;
	for (guint i = 0; i < st->items->len; i++) {
		const struct item *it = &g_array_index(st->items, struct item, i);
		for (size_t k = 0; k < st->spec->n_cols && k < MAX_COLS; k++) {
			const char *t = it->text[k];
			if (!t || !st->spec->cols[k].number)
				continue;
			size_t n = strcspn(t, " ");
			bool two = n >= 3 && g_ascii_isdigit(t[n - 1]) && g_ascii_isdigit(t[n - 2]) &&
			           !g_ascii_isdigit(t[n - 3]) && (n < 4 || g_ascii_isdigit(t[n - 4]));
			comma += two && t[n - 3] == ',';
			dot += two && t[n - 3] == '.';
		}
	}
	return comma > dot ? ',' : dot > comma ? '.' : 0;
}

/* A number whose only mark is followed by three digits ("5,000") reads as a thousands
 * separator by default; on a page whose decimal mark it is, it is a decimal one. */
static bool number_read(const char *text, char dec, double *ret)
{
	if (!rules_parse_amount(text, ret))
		return false;
	const char *p = text + strspn(text, "+- ");
	size_t i = strspn(p, "0123456789");
	if (dec && i > 0 && p[i] == dec && strspn(p + i + 1, "0123456789") == 3 && !g_ascii_isdigit(p[i + 4]) &&
	    !strchr(p + i + 1, ',') && !strchr(p + i + 1, '.')) {
		double v = g_ascii_strtod(p, NULL) + g_ascii_strtod(p + i + 1, NULL) / 1000.0;
		if (dec == '.')
			v = g_ascii_strtod(p, NULL);
		*ret = strchr(text, '-') ? -v : v;
	}
	return true;
}

/* The item's numbers (have[k]: column k holds one), each read by the page's decimal mark;
 * where quantity × price disagrees with the amount under that reading and agrees under the
 * plain one, the plain one is kept. The amount includes the discounts under the item. */
static void item_numbers(const struct table_spec *spec, const struct item *it, char dec, double *num, bool *have)
{
	double plain[MAX_COLS] = {0};
	int amount = -1, other[2] = {-1, -1}, n_other = 0;
	for (size_t k = 0; k < spec->n_cols && k < MAX_COLS; k++) {
		have[k] = it->text[k] && spec->cols[k].number && number_read(it->text[k], dec, &num[k]);
		if (have[k])
			rules_parse_amount(it->text[k], &plain[k]);
		if (have[k] && strcmp(spec->cols[k].key, spec->amount) == 0)
			amount = (int)k;
		else if (have[k] && n_other < 2)
			other[n_other++] = (int)k;
	}
	if (amount >= 0 && n_other == 2) {
		double a = num[amount], local = num[other[0]] * num[other[1]];
		double simple = plain[other[0]] * plain[other[1]];
		if (fabs(local - a) > 0.01 + 0.005 * fabs(a) && fabs(simple - a) <= 0.01 + 0.005 * fabs(a))
			for (int j = 0; j < 2; j++)
				num[other[j]] = plain[other[j]];
	}
	if (amount >= 0)
		num[amount] += it->adjust;
}

struct json *table_items(const struct layout *lay, const struct table_spec *spec, const struct layout_cell **ret_first)
{
	struct state st = {.spec = spec, .items = g_array_new(FALSE, TRUE, sizeof(struct item))};
	int header_p = -1;
	size_t header_r = 0; /* where the last header was: the lines stacked under it are no other table */
	for (int p = 0; p < lay->n_pages && !st.finished; p++) {
		const struct layout_page *pg = &lay->pages[p];
		for (size_t r = 0; r < pg->n_rows && !st.finished; r++) {
			if (header_row(&st, pg, r)) {
				header_p = p;
				header_r = r;
				continue;
			}
			if (!st.active)
				continue;
			if (pg->rows[r].n >= 3 && words_only(pg, &pg->rows[r]) &&
			    (st.items->len > 0 || p != header_p || r > header_r + 6)) {
				/* another table's header: the end of ours, or, before any item, a table that
				 * was not ours (a later header of ours starts again) */
				st.finished = st.items->len > 0;
				st.active = false;
				continue;
			}
			const struct layout_cell *lead = &pg->cells[pg->rows[r].first];
			for (size_t i = 1; speck(&st, lead) && i < pg->rows[r].n; i++)
				lead = &pg->cells[pg->rows[r].first + i];
			if (spec->carry && g_regex_match(spec->carry, lead->text, 0, NULL))
				continue; /* a subtotal carried over a page break: the table goes on */
			if (spec->stop && g_regex_match(spec->stop, lead->text, 0, NULL)) {
				st.finished = st.items->len > 0;
				st.active = st.finished ? false : st.active;
				continue;
			}
			if (lead->has_box)
				body_row(&st, pg, r);
		}
	}
	if (st.items->len == 0) {
		g_array_free(st.items, TRUE);
		drop_pending(&st);
		return table_list_items(lay, spec, ret_first);
	}
	struct json *items = json_new_array();
	char dec = decimal_mark(&st);
	for (guint i = 0; i < st.items->len; i++) {
		struct item *it = &g_array_index(st.items, struct item, i);
		struct json *o = json_append(items, json_new_object());
		double num[MAX_COLS];
		bool have[MAX_COLS];
		item_numbers(spec, it, dec, num, have);
		for (size_t k = 0; k < spec->n_cols && k < MAX_COLS; k++) {
			if (have[k])
				json_add_number(o, spec->cols[k].key, round(num[k] * 100) / 100);
			else if (it->text[k] && !spec->cols[k].number &&
			         strcmp(spec->cols[k].key, spec->description) == 0)
				json_add_string(o, spec->cols[k].key, without_code(it->text[k]));
			else if (it->text[k] && !spec->cols[k].number)
				json_add_string(o, spec->cols[k].key, it->text[k]);
			else
				json_add_null(o, spec->cols[k].key);
		}
		for (size_t k = 0; k < MAX_COLS; k++)
			g_free(it->text[k]);
	}
	g_array_free(st.items, TRUE);
	drop_pending(&st);
	*ret_first = st.first;
	return items;
}
