/* test_pdf_fixtures: PDFs made by the tests, with known content.
 *
 * Two makers: cairo's PDF surface for real-looking pages (text, columns,
 * tables, scripts, images of text), and a raw object writer for what cairo
 * cannot make: rotated pages, form fields, encryption, and deliberately
 * hostile structure (loops, bombs, deep nesting, false page counts). Every
 * result is a GBytes the caller unrefs. */
#pragma once

#include <cairo.h>
#include <glib.h>

/* cairo: n_pages pages of width x height points; draw(cr, page, data) paints
 * page (0-based). title/author may be NULL. */
typedef void (*fixture_draw_fn)(cairo_t *cr, int page, void *data);
GBytes *fixture_cairo(int n_pages, double width, double height, const char *title, const char *author,
                      fixture_draw_fn draw, void *data);

/* Draws text at (x, y baseline) in DejaVu Sans of the given size. */
void fixture_text(cairo_t *cr, double x, double y, double size, const char *text);

/* Paints lines of text as a 300 dpi greyscale image covering the page (a
 * scan): the page has no text layer. */
void fixture_scan(cairo_t *cr, double width, double height, const char *const *lines);

/* Raw PDF: objs[i] is object i + 1 (its body), object 1 the catalog. The
 * cross-reference table and trailer are computed; trailer_extra goes into the
 * trailer dictionary (may be NULL). */
GBytes *fixture_raw(GBytes *const *objs, size_t n, const char *trailer_extra);
/* Helpers for fixture_raw's objects. */
GBytes *fixture_obj(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
GBytes *fixture_stream(const char *dict_extra, const void *data, size_t len);

/* One page of Helvetica text lines (raw writer), with page_extra in the page
 * dictionary ("/Rotate 90") and catalog_extra in the catalog. */
GBytes *fixture_simple(const char *const *lines, const char *page_extra, const char *catalog_extra);

/* One page of text, encrypted with the standard security handler (RC4, 40
 * bits) under user password user_pw. */
GBytes *fixture_encrypted(const char *text, const char *user_pw);
