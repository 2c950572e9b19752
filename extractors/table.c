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
};

struct state {
	const struct table_spec *spec;
	struct col cols[MAX_COLS];
	size_t n;
	bool active, finished;
	GArray *items;        /* struct item */
	float last_y1, row_h; /* bottom of the last item's row and its height */
	const struct layout_cell *first;
};

static bool whole_match(GRegex *re, const char *text)
{
	g_autoptr(GMatchInfo) mi = NULL;
	int s = 0, e = 0;
	return re && g_regex_match(re, text, 0, &mi) && g_match_info_fetch_pos(mi, 0, &s, &e) &&
	       text[e + strspn(text + e, " :.")] == '\0';
}

/* A header row sets the columns; false when the row is not one. */
static bool header_row(struct state *st, const struct layout_page *pg, size_t r)
{
	const struct layout_row *row = &pg->rows[r];
	if (row->n < 3 || row->n > MAX_COLS)
		return false;
	struct col cols[MAX_COLS];
	bool have_desc = false, have_amount = false;
	int known = 0;
	for (size_t i = 0; i < row->n; i++) {
		const struct layout_cell *c = &pg->cells[row->first + i];
		if (!c->has_box)
			return false;
		cols[i] = (struct col){NULL, c->box.x0, c->box.x1};
		for (size_t k = 0; k < st->spec->n_cols && !cols[i].spec; k++)
			if (whole_match(st->spec->cols[k].header, c->text))
				cols[i].spec = &st->spec->cols[k];
		if (!cols[i].spec)
			continue;
		known++;
		have_desc |= strcmp(cols[i].spec->key, st->spec->description) == 0;
		have_amount |= strcmp(cols[i].spec->key, st->spec->amount) == 0;
	}
	if (!have_desc || !have_amount || known < 3)
		return false;
	memcpy(st->cols, cols, row->n * sizeof cols[0]);
	st->n = row->n;
	st->active = true;
	st->row_h = 0; /* no description continues across a header */
	return true;
}

/* The column a cell belongs to: the one it overlaps most, else the nearest within 40 points. */
static int column_of(const struct state *st, const struct layout_cell *c)
{
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

static void add_text(GString **cells, int col, const char *text)
{
	if (!cells[col])
		cells[col] = g_string_new(text);
	else
		g_string_append_printf(cells[col], " %s", text);
}

/* An item from a row, a continued description, or nothing. */
static void body_row(struct state *st, const struct layout_page *pg, size_t r)
{
	const struct layout_row *row = &pg->rows[r];
	GString *cells[MAX_COLS] = {0};
	const struct layout_cell *amount_cell = NULL;
	for (size_t i = 0; i < row->n; i++) {
		const struct layout_cell *c = &pg->cells[row->first + i];
		int k = column_of(st, c);
		if (k < 0)
			continue;
		add_text(cells, k, c->text);
		if (st->cols[k].spec && strcmp(st->cols[k].spec->key, st->spec->amount) == 0)
			amount_cell = c;
	}
	double amount = 0;
	bool only_desc = true;
	for (size_t k = 0; k < st->n; k++) {
		const struct table_column *spec = st->cols[k].spec;
		if (cells[k] && (!spec || strcmp(spec->key, st->spec->description) != 0))
			only_desc = false;
	}
	if (amount_cell && rules_parse_amount(amount_cell->text, &amount)) {
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
	} else if (only_desc && st->items->len > 0 && st->row_h > 0 && row->box.y0 - st->last_y1 < 0.8f * st->row_h) {
		/* A wrapped description: the line under an item with text only in the description column. */
		struct item *last = &g_array_index(st->items, struct item, st->items->len - 1);
		for (size_t k = 0; k < st->spec->n_cols && k < MAX_COLS; k++)
			if (strcmp(st->spec->cols[k].key, st->spec->description) == 0)
				for (size_t i = 0; i < st->n; i++)
					if (cells[i] && st->cols[i].spec == &st->spec->cols[k]) {
						char *joined = g_strdup_printf(
						    "%s %s", last->text[k] ? last->text[k] : "", cells[i]->str);
						g_free(last->text[k]);
						last->text[k] = g_strstrip(joined);
					}
		st->last_y1 = row->box.y1;
	}
	for (size_t k = 0; k < MAX_COLS; k++)
		if (cells[k])
			g_string_free(cells[k], TRUE);
}

struct json *table_items(const struct layout *lay, const struct table_spec *spec, const struct layout_cell **ret_first)
{
	struct state st = {.spec = spec, .items = g_array_new(FALSE, TRUE, sizeof(struct item))};
	for (int p = 0; p < lay->n_pages && !st.finished; p++) {
		const struct layout_page *pg = &lay->pages[p];
		for (size_t r = 0; r < pg->n_rows && !st.finished; r++) {
			if (header_row(&st, pg, r))
				continue;
			if (!st.active)
				continue;
			const struct layout_cell *lead = &pg->cells[pg->rows[r].first];
			if (spec->stop && g_regex_match(spec->stop, lead->text, 0, NULL)) {
				st.finished = st.items->len > 0;
				st.active = st.finished ? false : st.active;
				continue;
			}
			if (lead->has_box)
				body_row(&st, pg, r);
		}
	}
	struct json *items = st.items->len ? json_new_array() : NULL;
	for (guint i = 0; i < st.items->len; i++) {
		struct item *it = &g_array_index(st.items, struct item, i);
		struct json *o = json_append(items, json_new_object());
		for (size_t k = 0; k < spec->n_cols && k < MAX_COLS; k++) {
			double v = 0;
			if (it->text[k] && spec->cols[k].number && rules_parse_amount(it->text[k], &v))
				json_add_number(o, spec->cols[k].key, round(v * 100) / 100);
			else if (it->text[k] && !spec->cols[k].number)
				json_add_string(o, spec->cols[k].key, it->text[k]);
			else
				json_add_null(o, spec->cols[k].key);
		}
		for (size_t k = 0; k < MAX_COLS; k++)
			g_free(it->text[k]);
	}
	g_array_free(st.items, TRUE);
	if (items)
		*ret_first = st.first;
	return items;
}
