/* extractors/internal.h: what the invoice reader's files (reader.c, totals.c) share. */
#pragma once

#include <stdbool.h>

#include "extractors/reader.h"

struct layout;
struct layout_cell;
typedef struct _GRegex GRegex;

/* Keeps the candidate in *v when its score beats the one there (an equal score
 * keeps the earlier one, which comes first on the page). text is copied. */
void reader_offer(struct reader_value *v, const char *text, double number, double score,
                  const struct layout_cell *cell);

/* The cell under c that a reader's eye goes to: in the next rows (within about
 * three line heights), overlapping c or starting under it and ending left of the
 * next column, the one nearest to c's left edge. NULL when none. */
const struct layout_cell *reader_below(const struct layout *l, const struct layout_cell *c);

/* Net, tax, total and tax lines (totals.c), sets r->net, r->tax, r->total, r->tax_lines. */
void totals_read(const struct layout *lay, struct reader_invoice *r);

/* The regex of a pattern of the reader's (a static string; compiled once, case-blind; borrowed). */
GRegex *reader_re(const char *pattern);

/* Whether a regex of the reader's (compiled once, case-blind) matches text. */
bool reader_has(const char *pattern_id, const char *text);

/* Supplier and buyer (parties.c), sets r->supplier and r->buyer. */
void reader_parties(const struct layout *lay, struct reader_invoice *r);
