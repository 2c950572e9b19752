/* draft: guesses of the next tokens taken from the context itself (prompt
 * lookup). An extraction's answer copies values from the page in its prompt:
 * once the answer's last tokens occur earlier in the context, the tokens that
 * followed them there are a likely continuation. The model then checks the
 * guess in one batch (runtime.c), so a right guess costs about one step for
 * several tokens and a wrong one changes nothing in the output. */
#pragma once

#include <stdint.h>

/* Longest run of the context's last tokens that draft_lookup matches. */
#define DRAFT_NGRAM_MAX 4

/* Writes to out (room for max) the tokens that followed the latest earlier
 * occurrence of ctx's longest suffix (1 to DRAFT_NGRAM_MAX tokens) in
 * ctx[0..n); with a match of one token only, at most min_one of them. Returns
 * how many were written: 0 without a match. */
int32_t draft_lookup(const int32_t *ctx, int32_t n, int32_t *out, int32_t max, int32_t min_one);
