/* table: line items from a table's header row and the cells under it.
 *
 * The header is a row in which the description and amount columns, and at
 * least one more, are recognised by their header patterns; each header cell
 * (recognised or not, like a "#" column) becomes a column with its horizontal
 * extent. Each following row's cells go to the column they overlap most; a row
 * whose amount parses is an item, a row of description text right under an
 * item continues that item's description, a row starting with a stop pattern
 * (subtotal, tax, total) ends the table, one with a carry pattern (a
 * subtotal carried forward) is skipped. Where a cell's words run under
 * several columns (a position number, an article code and the description
 * set close together), the cell is cut at the columns' edges from its word
 * boxes. A row under an item with a negative amount and no quantity (or a
 * description matching the discount pattern) is a discount added to that
 * item's amount. Numbers are read by the decimal mark the items' amounts
 * show ("5,000" is five on a page of "27,50"), and where quantity × price
 * disagrees with the amount under that reading but agrees under the plain
 * one, the plain one stands. A table that reaches the end of a
 * page without a stop continues on the next one, under a repeated header or,
 * without one, under the previous page's columns, so items broken by a page
 * break are stitched into one list. At most RULES_MAX_ITEMS items. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct json;
struct layout;
struct layout_cell;
typedef struct _GRegex GRegex;

struct table_column {
	const char *key; /* property of an item */
	GRegex *header;  /* matches the whole header cell */
	bool number;     /* parsed as an amount */
};

struct table_spec {
	const struct table_column *cols;
	size_t n_cols;
	const char *description; /* key of the description column */
	const char *amount;      /* key of the column every item must have */
	GRegex *stop;            /* anchored; may be NULL */
	GRegex *carry;           /* anchored; a subtotal carried to the next page: skipped; may be NULL */
	GRegex *discount;        /* anchored; a row under an item that discounts it; may be NULL */
	const char *quantity;    /* key of the quantity column, or NULL */
	const char *unit_price;  /* key of the unit price column, or NULL */
};

/* The items (a JSON array of objects with every column's key, json_free), or NULL
 * when no table was found. *ret_first: the first item's amount cell (borrowed). Without a
 * table header, the items of a list with no header (table_list_items). */
struct json *table_items(const struct layout *lay, const struct table_spec *spec, const struct layout_cell **ret_first);

/* Items listed without a table header, as "text ... amount" rows over a row that sums them
 * (table_list.c): each one unit at its amount. NULL when no such rows add up. Same
 * ownership as table_items. */
struct json *table_list_items(const struct layout *lay, const struct table_spec *spec,
                              const struct layout_cell **ret_first);
