/* table_list: line items of an invoice that prints them with no table header.
 *
 * Insurance premiums, rents and fees are often listed as "text ... amount" rows over a
 * sum ("Privathaftpflicht 50,00 € / Lebensgefährte/in zur Privathaftpflicht 0,00 € /
 * Gesamtbeitrag 50,00 €"), each row a text and an amount. The sum row's first cell matches the table's stop pattern and
 * its last cell is an amount; the rows above it whose last cell is an amount set flush right
 * with the sum's are the items, as far up as their amounts add up to the sum. Rows of text
 * between them (conditions, notes) are passed over; a row matching the stop pattern, a row
 * with an amount elsewhere, or a gap of more than four lines ends the walk. Each item is one
 * unit priced at its amount, as such a line is billed. Nothing is returned unless the
 * amounts add up: arithmetic, not position, says these rows are the items. */
#include "extractors/table.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/layout.h"
#include "extractors/rules.h"

#define LIST_MAX_ROWS 40 /* rows walked up from a sum */

static bool has_letters(const char *t)
{
	for (const char *p = t; *p; p = g_utf8_next_char(p))
		if (g_unichar_isalpha(g_utf8_get_char(p)))
			return true;
	return false;
}

/* Whether row is a text and an amount set flush right at x1 (within 3 points); *v its value.
 * A row with more cells (a quantity, a price) is a table's, not such a list's. */
static bool ends_in_amount(const struct layout_page *pg, const struct layout_row *row, float x1, double *v)
{
	if (row->n != 2)
		return false;
	const struct layout_cell *last = &pg->cells[row->first + row->n - 1];
	return last->has_box && fabsf(last->box.x1 - x1) < 3 && rules_parse_amount(last->text, v) &&
	       strpbrk(last->text, ",.") && has_letters(pg->cells[row->first].text);
}

/* The rows above the sum row s whose amounts add up to its amount: their indexes in *rows
 * (bottom up), how many; 0 when none do. */
static size_t rows_summing(const struct layout_page *pg, size_t s, const struct table_spec *spec, size_t *rows)
{
	const struct layout_row *sum_row = &pg->rows[s];
	float x1 = pg->cells[sum_row->first + sum_row->n - 1].box.x1, h = sum_row->box.y1 - sum_row->box.y0;
	double want = 0, sum = 0;
	if (!ends_in_amount(pg, sum_row, x1, &want) || want <= 0)
		return 0;
	size_t n = 0, best = 0;
	float top = sum_row->box.y0;
	for (size_t r = s; r > 0 && s - r < LIST_MAX_ROWS; r--) {
		const struct layout_row *row = &pg->rows[r - 1];
		if (top - row->box.y1 > 4 * h)
			break;
		top = row->box.y0;
		double v = 0;
		const char *lead = pg->cells[row->first].text;
		if (spec->stop && g_regex_match(spec->stop, lead, 0, NULL))
			break;
		if (!ends_in_amount(pg, row, x1, &v)) {
			const struct layout_cell *last = &pg->cells[row->first + row->n - 1];
			if (row->n > 1 && rules_parse_amount(last->text, &v) && strpbrk(last->text, ",."))
				break; /* an amount in another column: something else */
			continue;
		}
		sum += v;
		rows[n++] = r - 1;
		if (fabs(sum - want) < 0.005)
			best = n;
		if (sum > want + 0.005 && v >= 0)
			break;
	}
	return best;
}

static struct json *item_of(const struct layout_page *pg, size_t r, const struct table_spec *spec)
{
	const struct layout_row *row = &pg->rows[r];
	double v = 0;
	rules_parse_amount(pg->cells[row->first + row->n - 1].text, &v);
	GString *desc = g_string_new(NULL);
	for (size_t i = row->first; i + 1 < row->first + row->n; i++)
		g_string_append_printf(desc, "%s%s", desc->len ? " " : "", pg->cells[i].text);
	struct json *o = json_new_object();
	for (size_t k = 0; k < spec->n_cols; k++) {
		const char *key = spec->cols[k].key;
		if (strcmp(key, spec->description) == 0)
			json_add_string(o, key, desc->str);
		else if (strcmp(key, spec->amount) == 0 || (spec->unit_price && strcmp(key, spec->unit_price) == 0))
			json_add_number(o, key, round(v * 100) / 100);
		else if (spec->quantity && strcmp(key, spec->quantity) == 0)
			json_add_number(o, key, 1);
		else
			json_add_null(o, key);
	}
	g_string_free(desc, TRUE);
	return o;
}

struct json *table_list_items(const struct layout *lay, const struct table_spec *spec,
                              const struct layout_cell **ret_first)
{
	size_t rows[LIST_MAX_ROWS];
	for (int p = 0; p < lay->n_pages; p++) {
		const struct layout_page *pg = &lay->pages[p];
		for (size_t s = 0; s < pg->n_rows; s++) {
			const struct layout_row *row = &pg->rows[s];
			if (row->n < 2 || !spec->stop ||
			    !g_regex_match(spec->stop, pg->cells[row->first].text, 0, NULL))
				continue;
			size_t n = rows_summing(pg, s, spec, rows);
			if (n == 0)
				continue;
			struct json *items = json_new_array();
			for (size_t i = n; i > 0 && i <= RULES_MAX_ITEMS; i--)
				json_append(items, item_of(pg, rows[i - 1], spec));
			const struct layout_row *first = &pg->rows[rows[n - 1]];
			*ret_first = &pg->cells[first->first + first->n - 1];
			return items;
		}
	}
	return NULL;
}
