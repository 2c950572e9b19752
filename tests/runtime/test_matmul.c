/* test_matmul: every kernel version (scalar, AVX2, AVX-512, as far as the CPU
 * has them) against a double-precision reference, for every weight type, at
 * shapes that do not divide evenly over threads, token blocks or tiles.
 *
 * The reference for MATMUL_F32 is the dequantized weight times the
 * activations; for MATMUL_ROUNDED it is the dequantized weight times the
 * activations rounded to the kernels' activation type, so both are tight
 * (only float summation order differs). A looser check against the unrounded
 * product catches a kernel paired with the wrong activation type. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels.h"
#include "runtime/matmul.h"
#include "runtime/quant.h"
#include "runtime/threadpool.h"
#include "tests/runtime/tap.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double rng_uniform(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}

static float rng_normal(void)
{
	double u = rng_uniform() + 1e-12, v = rng_uniform();
	return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static const enum quant_type types[] = {QUANT_F32,  QUANT_F16,  QUANT_BF16, QUANT_Q8_0, QUANT_Q4_0,
                                        QUANT_Q5_0, QUANT_Q4_K, QUANT_Q5_K, QUANT_Q6_K};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

struct shape {
	int64_t n_in, n_out, n_tokens;
};
/* 288 and 96: an odd number of 32-blocks (no K-quant fits those rows) */
static const struct shape shapes[] = {{256, 7, 1}, {512, 33, 5}, {768, 67, 70}, {1536, 130, 3}, {288, 11, 6}, {96, 5, 1}, {512, 37, 77}};
#define N_SHAPES (sizeof(shapes) / sizeof(shapes[0]))

/* rms(dequant(quant(x)) - x) / rms(x) bounds for gaussian data */
static double roundtrip_bound(enum quant_type t)
{
	switch (t) {
	case QUANT_F32: return 0.0;
	case QUANT_F16: return 1e-3;
	case QUANT_BF16: return 5e-3;
	case QUANT_Q8_0: return 0.01;
	case QUANT_Q4_0:
	case QUANT_Q4_K: return 0.13;
	case QUANT_Q5_0:
	case QUANT_Q5_K: return 0.065;
	case QUANT_Q6_K: return 0.035;
	default: return 0.0;
	}
}

static void test_roundtrip(enum quant_type t)
{
	int64_t n = 4096;
	float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
	void *q = malloc(quant_row_size(t, n));
	for (int64_t i = 0; i < n; i++)
		x[i] = rng_normal() * 0.05f;
	x[5] = 0.0f;
	quant_quantize_row(t, x, q, n);
	quant_dequantize_row(t, q, y, n);
	double e = 0, s = 0;
	for (int64_t i = 0; i < n; i++) {
		e += (double)(y[i] - x[i]) * (y[i] - x[i]);
		s += (double)x[i] * x[i];
	}
	double rel = sqrt(e / s);
	char name[96];
	snprintf(name, sizeof name, "/quant/roundtrip/%s", quant_type_name(t));
	tap_ok(rel <= roundtrip_bound(t), name, "relative rms error %.5f > %.5f", rel, roundtrip_bound(t));
	free(x);
	free(y);
	free(q);
}

/* max |got - want| / scale over the outputs, scale = max sum |w||x| of an output */
static double compare(const float *got, const double *want, const double *mag, int64_t n)
{
	double worst = 0;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs((double)got[i] - want[i]) / (mag[i] + 1e-30);
		if (!(e <= worst))
			worst = isnan(e) ? INFINITY : e;
	}
	return worst;
}

static void reference(const float *w, const float *x, const struct shape *s, double *y, double *mag)
{
	for (int64_t t = 0; t < s->n_tokens; t++)
		for (int64_t r = 0; r < s->n_out; r++) {
			double acc = 0, m = 0;
			for (int64_t k = 0; k < s->n_in; k++) {
				double p = (double)w[r * s->n_in + k] * x[t * s->n_in + k];
				acc += p;
				m += fabs(p);
			}
			y[t * s->n_out + r] = acc;
			mag[t * s->n_out + r] = m;
		}
}

static void test_shape(const char *kname, enum quant_type t, const struct shape *s, struct threadpool *tp)
{
	int64_t nw = s->n_in * s->n_out, nx = s->n_in * s->n_tokens, ny = s->n_out * s->n_tokens;
	float *wf = malloc(nw * sizeof(float)), *wd = malloc(nw * sizeof(float));
	float *x = malloc(nx * sizeof(float)), *xr = malloc(nx * sizeof(float));
	float *y = malloc(ny * sizeof(float));
	double *ref = malloc(ny * sizeof(double)), *mag = malloc(ny * sizeof(double));
	double *ref_exact = malloc(ny * sizeof(double)), *mag2 = malloc(ny * sizeof(double));
	size_t rb = quant_row_size(t, s->n_in);
	uint8_t *wq = malloc(rb * s->n_out);
	enum quant_type act = kernels_act_type(t);
	void *xq = malloc(quant_row_size(act, s->n_in));

	for (int64_t i = 0; i < nw; i++)
		wf[i] = rng_normal() * 0.05f;
	for (int64_t i = 0; i < nx; i++)
		x[i] = rng_normal() * (i % 17 == 0 ? 4.0f : 1.0f);
	for (int64_t r = 0; r < s->n_out; r++) {
		quant_quantize_row(t, wf + r * s->n_in, wq + r * rb, s->n_in);
		quant_dequantize_row(t, wq + r * rb, wd + r * s->n_in, s->n_in);
	}
	for (int64_t tk = 0; tk < s->n_tokens; tk++) {
		quant_quantize_row(act, x + tk * s->n_in, xq, s->n_in);
		quant_dequantize_row(act, xq, xr + tk * s->n_in, s->n_in);
	}
	struct matmul_weight w = {.type = t, .data = wq, .n_in = s->n_in, .n_out = s->n_out};
	char name[160];
	const char *tn = quant_type_name(t);
	int nth = threadpool_size(tp);

	reference(wd, x, s, ref_exact, mag2);
	memset(y, 0xff, ny * sizeof(float));
	matmul(tp, MATMUL_F32, &w, x, s->n_tokens, y);
	double e = compare(y, ref_exact, mag2, ny);
	snprintf(name, sizeof name, "/matmul/%s/f32/%s/%lldx%lldx%lld/t%d", kname, tn, (long long)s->n_out,
	         (long long)s->n_in, (long long)s->n_tokens, nth);
	tap_ok(e < 2e-6, name, "relative error %.3g", e);

	reference(wd, xr, s, ref, mag);
	memset(y, 0xff, ny * sizeof(float));
	matmul(tp, MATMUL_ROUNDED, &w, x, s->n_tokens, y);
	e = compare(y, ref, mag, ny);
	snprintf(name, sizeof name, "/matmul/%s/rounded/%s/%lldx%lldx%lld/t%d", kname, tn,
	         (long long)s->n_out, (long long)s->n_in, (long long)s->n_tokens, nth);
	tap_ok(e < 2e-6, name, "relative error %.3g against the rounded-activation reference", e);
	e = compare(y, ref_exact, mag2, ny);
	snprintf(name, sizeof name, "/matmul/%s/rounded-close/%s/%lldx%lldx%lld/t%d", kname, tn,
	         (long long)s->n_out, (long long)s->n_in, (long long)s->n_tokens, nth);
	tap_ok(e < 2e-2, name, "relative error %.3g against the exact product", e);

	free(wf); free(wd); free(x); free(xr); free(y); free(ref); free(mag);
	free(ref_exact); free(mag2); free(wq); free(xq);
}

/* A kernel computes each output with the same operations whatever the tile it
 * falls in: a block of rows and tokens gives bit for bit the products of each
 * row with each token alone (batched verification of drafted tokens relies on
 * it). 7 rows and 19 tokens leave remainders for every tile size, and 19 is
 * enough tokens for the kernels to use their many-row tiles (KERNELS_NR_MIN_NT). */
static void test_tile_independent(const char *kname, enum quant_type t, int64_t n)
{
	enum { NR = 7, NT = 19 };
	const struct kernels *k = kernels_get();
	size_t rb = quant_row_size(t, n), xb = k->act_row_size(t, n);
	float *wf = malloc(n * sizeof(float)), *xf = malloc(n * sizeof(float));
	uint8_t *w = malloc(rb * NR), *x = NULL;
	float y[NR * NT], y1[NR * NT];
	if (posix_memalign((void **)&x, 64, xb * NT) != 0)
		abort();
	for (int r = 0; r < NR; r++) {
		for (int64_t i = 0; i < n; i++)
			wf[i] = rng_normal() * 0.05f;
		quant_quantize_row(t, wf, w + r * rb, n);
	}
	for (int tk = 0; tk < NT; tk++) {
		for (int64_t i = 0; i < n; i++)
			xf[i] = rng_normal();
		k->act_quantize(t, xf, x + tk * xb, n);
	}
	memset(y, 0xff, sizeof y); /* an output left unwritten differs from y1's */
	memset(y1, 0, sizeof y1);
	k->gemm[t](n, w, rb, NR, x, xb, NT, y, NR);
	for (int r = 0; r < NR; r++)
		for (int tk = 0; tk < NT; tk++)
			k->gemm[t](n, w + r * rb, rb, 1, x + tk * xb, xb, 1, y1 + tk * NR + r, NR);
	char name[128];
	snprintf(name, sizeof name, "/matmul/%s/tile-independent/%s/%lld", kname, quant_type_name(t), (long long)n);
	tap_ok(memcmp(y, y1, sizeof y) == 0, name, "a %dx%d tile differs from single products", NR, NT);
	free(wf);
	free(xf);
	free(w);
	free(x);
}

/* Where a kernel set keeps activations in the standard layout of their type, it
 * rounds them bit for bit as quant_quantize_row: ties, zeros, a block of zeros,
 * and values of every size. */
static void test_act_quantize(const char *kname, enum quant_type t)
{
	const struct kernels *k = kernels_get();
	enum quant_type act = kernels_act_type(t);
	int64_t n = 512;
	size_t rb = quant_row_size(act, n);
	if (k->act_row_size(t, n) != rb)
		return;
	float *x = malloc(n * sizeof(float));
	uint8_t *got = malloc(rb), *want = malloc(rb);
	for (int64_t i = 0; i < n; i++)
		x[i] = rng_normal() * (i % 13 == 0 ? 8.0f : 1.0f);
	for (int64_t i = 0; i < 32; i++)
		x[i] = 0.0f; /* a block of zeros */
	for (int64_t i = 32; i < 64; i++)
		x[i] = (float)(i - 48) * 0.5f; /* 127 / 8 per step: halves after scaling */
	x[64] = 127.0f;
	x[65] = 0.5f;
	x[66] = -0.5f;
	x[67] = 1.5f;
	memset(got, 0xa5, rb);
	k->act_quantize(t, x, got, n);
	quant_quantize_row(act, x, want, n);
	char name[96];
	snprintf(name, sizeof name, "/matmul/%s/act-quantize/%s", kname, quant_type_name(t));
	tap_ok(memcmp(got, want, rb) == 0, name, "activations rounded otherwise than quant_quantize_row");
	free(x), free(got), free(want);
}

int main(void)
{
	static const char *const versions[] = {"scalar", "avx2", "avx512", "amx"};
	struct threadpool *tp = threadpool_new(3);
	tap_ok(tp != NULL && threadpool_size(tp) == 3, "/threadpool/new", "could not start 3 threads");

	for (size_t i = 0; i < N_TYPES; i++)
		test_roundtrip(types[i]);
	for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
		if (!kernels_force(versions[v])) {
			tap_diag("kernels %s: not available on this CPU, skipped", versions[v]);
			continue;
		}
		for (size_t i = 0; i < N_TYPES; i++)
			for (size_t j = 0; j < N_SHAPES; j++)
				if (quant_row_size(types[i], shapes[j].n_in) != 0)
					test_shape(versions[v], types[i], &shapes[j], j % 2 ? NULL : tp);
		for (size_t i = 0; i < N_TYPES; i++)
			test_act_quantize(versions[v], types[i]);
		for (size_t i = 0; i < N_TYPES; i++)
			for (int64_t n = 288; n <= 768; n += 480)
				if (quant_row_size(types[i], n) != 0)
					test_tile_independent(versions[v], types[i], n);
	}
	threadpool_free(tp);
	return tap_done();
}
