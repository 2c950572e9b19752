/* test_attention: attention.h's AVX-512 loops against a double-precision
 * softmax attention, for every number of heads per group, head sizes 16 to
 * 256, context lengths that leave a partial block, a first key other than 0
 * (a windowed layer) and a score cap (gemma2). Skips where the CPU has no
 * AVX-512. */
#include <math.h>
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

static void one_case(int ng, int hd, int j0, int n, float spread, float cap)
{
	size_t stride = (size_t)hd * 2 + 16; /* a key/value row holds other heads too */
	float *q = malloc((size_t)ng * hd * sizeof *q), *k = malloc((size_t)n * stride * sizeof *k);
	float *v = malloc((size_t)n * stride * sizeof *v), *out = malloc((size_t)ng * hd * sizeof *out);
	size_t sstride = (size_t)n + 5;
	float *scores = malloc(ATTENTION_MAX_HEADS * sstride * sizeof *scores);
	double *want = malloc((size_t)ng * hd * sizeof *want);
	for (int i = 0; i < ng * hd; i++)
		q[i] = rng_signed() * spread;
	for (size_t i = 0; i < (size_t)n * stride; i++) {
		k[i] = rng_signed();
		v[i] = rng_signed();
	}
	float scale = 1.0f / sqrtf((float)hd);
	attention_heads_avx512(q, ng, hd, k, v, stride, j0, n, scale, cap, scores, sstride, out);
	reference(q, ng, hd, k, v, stride, j0, n, scale, cap, want);
	double worst = 0;
	for (int i = 0; i < ng * hd; i++)
		worst = fmax(worst, fabs(out[i] - want[i]) / (fabs(want[i]) + 1e-3));
	char name[128];
	snprintf(name, sizeof name, "/attention/heads-%d/hd-%d/keys-%d-%d%s%s", ng, hd, j0, n,
	         spread > 4 ? "/peaked" : "", cap > 0 ? "/capped" : "");
	tap_ok(worst < 2e-4, name, "largest relative error %.3g", worst);
	free(q), free(k), free(v), free(out), free(scores), free(want);
}

int main(void)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx512f"))
		return tap_skip_all("this CPU has no AVX-512");
	static const int hds[] = {16, 32, 64, 80, 128, 256};
	static const int lens[][2] = {{0, 1}, {0, 15}, {0, 16}, {0, 37}, {5, 40}, {0, 300}, {250, 300}};
	for (int ng = 1; ng <= ATTENTION_MAX_HEADS; ng++)
		for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++)
			for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
				one_case(ng, hds[h], lens[l][0], lens[l][1], 1.0f, 0.0f);
	/* sharp distributions, where most weights underflow, and capped scores */
	for (int ng = 1; ng <= 3; ng++) {
		one_case(ng, 64, 0, 200, 40.0f, 0.0f);
		one_case(ng, 128, 3, 90, 40.0f, 50.0f);
		one_case(ng, 16, 0, 33, 1.0f, 2.0f);
	}
	return tap_done();
}
