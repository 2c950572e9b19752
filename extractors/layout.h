/* layout: a page's words regrouped into rows and cells, by geometry.
 *
 * Poppler's reading order interleaves the columns of tables and two-column
 * letterheads; the word boxes do not. A row is the words whose vertical
 * centres line up; a cell is a run of words in a row with no gap wider than
 * about a character height between them ("Invoice number: 42" is one cell, a
 * label and its value in two columns are two). Pages without word boxes (a
 * document read back from JSON) fall back to one cell per text line, so
 * everything built on cells still works on plain text, with less precision.
 * A cell keeps its words' boxes, so a reader that knows where columns are
 * (a table's header) can cut a cell that runs across two of them.
 * Limits come from pdftext (PDFTEXT_MAX_WORDS per page). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "extractors/pdftext.h"

/* A word of a cell: its bytes in the cell's text and its box. */
struct layout_word {
	size_t start, len;
	struct pdftext_box box;
};

struct layout_cell {
	char *text;
	int page; /* 1-based */
	int row;  /* index into the page's rows */
	bool has_box;
	struct pdftext_box box;
	struct layout_word *words; /* left to right; NULL (n_words 0) without word boxes */
	size_t n_words;
};

struct layout_row {
	size_t first, n; /* cells of the page, left to right */
	struct pdftext_box box;
};

struct layout_page {
	struct layout_cell *cells;
	size_t n_cells;
	struct layout_row *rows;
	size_t n_rows;
	double width, height;
};

struct layout {
	struct layout_page *pages;
	int n_pages;
};

/* Builds the layout of doc (borrowed). Caller frees with layout_free. */
struct layout *layout_build(const struct pdftext_doc *doc);
void layout_free(struct layout *l);

/* The nearest cell to the right of c in its row, or NULL. */
const struct layout_cell *layout_right_of(const struct layout *l, const struct layout_cell *c);
/* The first cell below c (within three row heights) that overlaps it horizontally, or NULL. */
const struct layout_cell *layout_below(const struct layout *l, const struct layout_cell *c);
/* The cells of a row joined by two spaces (g_free). */
char *layout_row_text(const struct layout_page *p, size_t row);
