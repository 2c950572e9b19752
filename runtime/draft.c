/* draft: prompt lookup (see draft.h). A linear scan from the end: contexts are
 * a few thousand tokens and a scan is far cheaper than one forward pass. */
#include "runtime/draft.h"

#include <string.h>

int32_t draft_lookup(const int32_t *ctx, int32_t n, int32_t *out, int32_t max, int32_t min_one)
{
	if (n < 2 || max <= 0)
		return 0;
	int32_t best_len = 0, best_end = -1;
	/* a match ends at j < n - 1 (so that something follows it) */
	for (int32_t j = n - 2; j >= 0 && best_len < DRAFT_NGRAM_MAX; j--) {
		int32_t k = 0;
		while (k < DRAFT_NGRAM_MAX && k <= j && ctx[j - k] == ctx[n - 1 - k])
			k++;
		if (k > best_len) {
			best_len = k;
			best_end = j;
		}
	}
	if (best_len == 0)
		return 0;
	int32_t avail = n - 1 - best_end;
	int32_t m = avail < max ? avail : max;
	if (best_len == 1 && m > min_one)
		m = min_one;
	memcpy(out, ctx + best_end + 1, (size_t)m * sizeof(*out));
	return m;
}
