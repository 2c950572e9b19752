/* test_attention: attention.h's AVX-512 and AVX2 loops against a
 * double-precision softmax attention, for every number of heads per group, head
 * sizes 8 (AVX2) or 16 to 256, context lengths that leave a partial block, a
 * first key other than 0 (a windowed layer) and a score cap (gemma2). Each set
 * is skipped where the CPU lacks its instructions. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/attention.h"
#include "tests/runtime/tap.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static float rng_signed(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (float)((double)(rng_state >> 11) / 4503599627370496.0 - 1.0);
}

/* out (ng * hd) as attention.h defines it, in double. */
static void reference(const float *q, int ng, int hd, const float *k, const float *v, size_t stride, int j0, int n,
                      float scale, float cap, double *out)
{
	double *s = malloc((size_t)n * sizeof *s);
	for (int g = 0; g < ng; g++) {
		double mx = -INFINITY, sum = 0;
		for (int j = j0; j < n; j++) {
			double d = 0;
			for (int i = 0; i < hd; i++)
				d += (double)q[g * hd + i] * k[(size_t)j * stride + (size_t)i];
			d *= scale;
			if (cap > 0)
				d = cap * tanh(d / cap);
			s[j] = d;
			mx = d > mx ? d : mx;
		}
		for (int j = j0; j < n; j++)
			sum += s[j] = exp(s[j] - mx);
		for (int i = 0; i < hd; i++) {
			double o = 0;
			for (int j = j0; j < n; j++)
				o += s[j] * v[(size_t)j * stride + (size_t)i];
			out[g * hd + i] = o / sum;
		}
	}
	free(s);
}

static void one_case(const char *set, attention_heads_fn *heads, int ng, int hd, int j0, int n, float spread, float cap)
{
	size_t stride = (size_t)hd * 2 + 16; /* a key/value row holds other heads too */
	float *q = malloc((size_t)ng * hd * sizeof *q), *k = malloc((size_t)n * stride * sizeof *k);
	float *v = malloc((size_t)n * stride * sizeof *v), *out = malloc((size_t)ng * hd * sizeof *out);
	size_t sstride = (size_t)n + 5;
	float *scores = malloc(ATTENTION_MAX_HEADS * sstride * sizeof *scores);
	double *want = malloc((size_t)ng * hd * sizeof *want);
	/* the same data for a case in every set */
	rng_state = 0x2545f4914f6cdd1dull ^ ((uint64_t)ng << 56 | (uint64_t)hd << 40 | (uint64_t)j0 << 24 |
	                                     (uint64_t)n << 8 | (uint64_t)(spread > 4) << 1 | (uint64_t)(cap > 0));
	for (int i = 0; i < ng * hd; i++)
		q[i] = rng_signed() * spread;
	for (size_t i = 0; i < (size_t)n * stride; i++) {
		k[i] = rng_signed();
		v[i] = rng_signed();
	}
	float scale = 1.0f / sqrtf((float)hd);
	heads(q, ng, hd, k, v, stride, j0, n, scale, cap, scores, sstride, out);
	reference(q, ng, hd, k, v, stride, j0, n, scale, cap, want);
	double worst = 0;
	for (int i = 0; i < ng * hd; i++)
		worst = fmax(worst, fabs(out[i] - want[i]) / (fabs(want[i]) + 1e-3));
	char name[128];
	snprintf(name, sizeof name, "/attention/%s/heads-%d/hd-%d/keys-%d-%d%s%s", set, ng, hd, j0, n,
	         spread > 4 ? "/peaked" : "", cap > 0 ? "/capped" : "");
	/* Peaked scores are tens: a float's rounding of one (a few units in 1e-6 of it) moves
	 * its weight by some 1e-5, and outputs whose terms nearly cancel show it larger. */
	tap_ok(worst < (spread > 4 ? 1e-3 : 2e-4), name, "largest relative error %.3g", worst);
	free(q), free(k), free(v), free(out), free(scores), free(want);
}

static void one_set(const char *set, attention_heads_fn *heads, int min_hd)
{
	static const int hds[] = {8, 16, 24, 32, 64, 80, 128, 256};
	static const int lens[][2] = {{0, 1}, {0, 7}, {0, 15}, {0, 16}, {0, 37}, {5, 40}, {0, 300}, {250, 300}};
	for (int ng = 1; ng <= ATTENTION_MAX_HEADS; ng++)
		for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++)
			for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
				if (hds[h] % min_hd == 0)
					one_case(set, heads, ng, hds[h], lens[l][0], lens[l][1], 1.0f, 0.0f);
	/* sharp distributions, where most weights underflow, and capped scores */
	for (int ng = 1; ng <= 3; ng++) {
		one_case(set, heads, ng, 64, 0, 200, 40.0f, 0.0f);
		one_case(set, heads, ng, 128, 3, 90, 40.0f, 50.0f);
		one_case(set, heads, ng, 16, 0, 33, 1.0f, 2.0f);
	}
}

int main(void)
{
	__builtin_cpu_init();
	bool avx512 = __builtin_cpu_supports("avx512f");
	bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (!avx512 && !avx2)
		return tap_skip_all("this CPU has neither AVX-512 nor AVX2 with FMA");
	if (avx512)
		one_set("avx512", attention_heads_avx512, 16);
	else
		tap_diag("the AVX-512 loops are not tested: this CPU has no AVX-512");
	if (avx2)
		one_set("avx2", attention_heads_avx2, 8);
	else
		tap_diag("the AVX2 loops are not tested: this CPU has no AVX2 with FMA");
	return tap_done();
}
