/* layout: rows and cells from word boxes. */
#include "extractors/layout.h"

#include <glib.h>
#include <math.h>
#include <string.h>

struct wref {
	const struct pdftext_word *w;
	float cy, h;
};

static int by_centre(const void *a, const void *b)
{
	const struct wref *x = a, *y = b;
	return x->cy < y->cy ? -1 : x->cy > y->cy ? 1 : (x->w->box.x0 > y->w->box.x0) - (x->w->box.x0 < y->w->box.x0);
}

static int by_x(const void *a, const void *b)
{
	const struct wref *x = a, *y = b;
	return (x->w->box.x0 > y->w->box.x0) - (x->w->box.x0 < y->w->box.x0);
}

static void box_union(struct pdftext_box *b, const struct pdftext_box *o, bool first)
{
	if (first) {
		*b = *o;
		return;
	}
	b->x0 = MIN(b->x0, o->x0), b->y0 = MIN(b->y0, o->y0);
	b->x1 = MAX(b->x1, o->x1), b->y1 = MAX(b->y1, o->y1);
}

/* Cuts one row (words sorted by x) into cells at wide gaps. */
static void add_row(GArray *cells, GArray *rows, const char *text, struct wref *w, size_t n, int page)
{
	qsort(w, n, sizeof *w, by_x);
	float h = 0;
	for (size_t i = 0; i < n; i++)
		h = MAX(h, w[i].h);
	struct layout_row row = {.first = cells->len};
	GString *t = NULL;
	GArray *words = NULL;
	struct layout_cell cell = {0};
	for (size_t i = 0; i <= n; i++) {
		bool cut = i == n || i == 0 || w[i].w->box.x0 - w[i - 1].w->box.x1 > MAX(0.9f * h, 6.0f);
		if (cut && t) {
			cell.text = g_string_free(t, FALSE);
			cell.n_words = words->len;
			cell.words = (struct layout_word *)(void *)g_array_free(words, FALSE);
			g_array_append_val(cells, cell);
		}
		if (i == n)
			break;
		if (cut) {
			t = g_string_new(NULL);
			words = g_array_new(FALSE, FALSE, sizeof(struct layout_word));
			cell = (struct layout_cell){
			    .page = page, .row = (int)rows->len, .has_box = true, .box = w[i].w->box};
		} else {
			g_string_append_c(t, ' ');
			box_union(&cell.box, &w[i].w->box, false);
		}
		struct layout_word lw = {t->len, w[i].w->len, w[i].w->box};
		g_array_append_val(words, lw);
		g_string_append_len(t, text + w[i].w->start, w[i].w->len);
		box_union(&row.box, &w[i].w->box, i == 0);
	}
	row.n = cells->len - row.first;
	g_array_append_val(rows, row);
}

static void page_from_words(const struct pdftext_page *pg, int page, GArray *cells, GArray *rows)
{
	struct wref *w = g_new(struct wref, pg->n_words);
	size_t n = 0, len = strlen(pg->text);
	for (uint32_t i = 0; i < pg->n_words; i++) {
		const struct pdftext_word *x = &pg->words[i];
		if ((size_t)x->start + x->len > len || x->len == 0)
			continue; /* never trust offsets blindly */
		w[n++] = (struct wref){x, (x->box.y0 + x->box.y1) / 2, x->box.y1 - x->box.y0};
	}
	qsort(w, n, sizeof *w, by_centre);
	size_t start = 0;
	for (size_t i = 1; i <= n; i++) {
		bool same = i < n && fabsf(w[i].cy - w[start].cy) < 0.5f * MIN(w[i].h, w[start].h) + 0.5f;
		if (!same) {
			add_row(cells, rows, pg->text, w + start, i - start, page);
			start = i;
		}
	}
	g_free(w);
}

static void page_from_text(const struct pdftext_page *pg, int page, GArray *cells, GArray *rows)
{
	g_auto(GStrv) lines = g_strsplit(pg->text ? pg->text : "", "\n", -1);
	for (int i = 0; lines[i]; i++) {
		char *t = g_strstrip(lines[i]);
		if (!t[0])
			continue;
		struct layout_row row = {.first = cells->len, .n = 1};
		struct layout_cell cell = {.text = g_strdup(t), .page = page, .row = (int)rows->len};
		g_array_append_val(cells, cell);
		g_array_append_val(rows, row);
	}
}

struct layout *layout_build(const struct pdftext_doc *doc)
{
	struct layout *l = g_new0(struct layout, 1);
	l->n_pages = doc->n_pages;
	l->pages = g_new0(struct layout_page, (size_t)MAX(doc->n_pages, 1));
	for (int p = 0; p < doc->n_pages; p++) {
		const struct pdftext_page *pg = &doc->pages[p];
		GArray *cells = g_array_new(FALSE, FALSE, sizeof(struct layout_cell));
		GArray *rows = g_array_new(FALSE, FALSE, sizeof(struct layout_row));
		if (pg->n_words > 0 && pg->words && pg->text)
			page_from_words(pg, p + 1, cells, rows);
		else
			page_from_text(pg, p + 1, cells, rows);
		struct layout_page *lp = &l->pages[p];
		lp->n_cells = cells->len;
		lp->n_rows = rows->len;
		lp->cells = (struct layout_cell *)(void *)g_array_free(cells, FALSE);
		lp->rows = (struct layout_row *)(void *)g_array_free(rows, FALSE);
		lp->width = pg->width;
		lp->height = pg->height;
	}
	return l;
}

void layout_free(struct layout *l)
{
	if (!l)
		return;
	for (int p = 0; p < l->n_pages; p++) {
		for (size_t i = 0; i < l->pages[p].n_cells; i++) {
			g_free(l->pages[p].cells[i].text);
			g_free(l->pages[p].cells[i].words);
		}
		g_free(l->pages[p].cells);
		g_free(l->pages[p].rows);
	}
	g_free(l->pages);
	g_free(l);
}

const struct layout_cell *layout_right_of(const struct layout *l, const struct layout_cell *c)
{
	const struct layout_page *p = &l->pages[c->page - 1];
	const struct layout_row *r = &p->rows[c->row];
	for (size_t i = r->first; i + 1 < r->first + r->n; i++)
		if (&p->cells[i] == c)
			return &p->cells[i + 1];
	return NULL;
}

const struct layout_cell *layout_below(const struct layout *l, const struct layout_cell *c)
{
	const struct layout_page *p = &l->pages[c->page - 1];
	if (!c->has_box) /* plain text: the next line */
		return (size_t)c->row + 1 < p->n_rows ? &p->cells[p->rows[c->row + 1].first] : NULL;
	float h = c->box.y1 - c->box.y0;
	for (size_t r = (size_t)c->row + 1; r < p->n_rows; r++) {
		const struct layout_row *row = &p->rows[r];
		if (row->box.y0 > c->box.y1 + 3 * h)
			break;
		for (size_t i = row->first; i < row->first + row->n; i++) {
			const struct layout_cell *x = &p->cells[i];
			if (x->box.x0 < c->box.x1 && x->box.x1 > c->box.x0)
				return x;
		}
	}
	return NULL;
}

char *layout_row_text(const struct layout_page *p, size_t row)
{
	GString *s = g_string_new(NULL);
	const struct layout_row *r = &p->rows[row];
	for (size_t i = r->first; i < r->first + r->n; i++) {
		if (i > r->first)
			g_string_append(s, "  ");
		g_string_append(s, p->cells[i].text);
	}
	return g_string_free(s, FALSE);
}
