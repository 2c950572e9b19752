/* kernels_scalar: portable versions of every kernel, and the definition of
 * what each computes.
 *
 * Quantized products follow the reference engine's arithmetic: per block an
 * exact integer sum of weight codes times activation codes, scaled by the
 * block's float factors, and summed in float over the blocks. The SIMD
 * versions compute the same integer sums. */
#include "runtime/kernels.h"

#include <string.h>

typedef float (*kernels_dot_fn)(int64_t n, const void *w, const void *x);

static float dot_f32(int64_t n, const void *wv, const void *xv)
{
	const float *w = wv, *x = xv;
	float s[8] = {0};
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int l = 0; l < 8; l++)
			s[l] += w[i + l] * x[i + l];
	for (; i < n; i++)
		s[0] += w[i] * x[i];
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static float dot_f16(int64_t n, const void *wv, const void *xv)
{
	const quant_f16 *w = wv, *x = xv;
	float s = 0.0f;
	for (int64_t i = 0; i < n; i++)
		s += quant_f16_to_f32(w[i]) * quant_f16_to_f32(x[i]);
	return s;
}

static float dot_bf16(int64_t n, const void *wv, const void *xv)
{
	const quant_bf16 *w = wv, *x = xv;
	float s = 0.0f;
	for (int64_t i = 0; i < n; i++)
		s += quant_bf16_to_f32(w[i]) * quant_bf16_to_f32(x[i]);
	return s;
}

static float dot_q8_0(int64_t n, const void *wv, const void *xv)
{
	const struct block_q8_0 *w = wv, *x = xv;
	float s = 0.0f;
	for (int64_t i = 0; i < n / QK8_0; i++) {
		int sum = 0;
		for (int j = 0; j < QK8_0; j++)
			sum += w[i].qs[j] * x[i].qs[j];
		s += quant_f16_to_f32(w[i].d) * quant_f16_to_f32(x[i].d) * (float)sum;
	}
	return s;
}

static float dot_q4_0(int64_t n, const void *wv, const void *xv)
{
	const struct block_q4_0 *w = wv;
	const struct block_q8_0 *x = xv;
	float s = 0.0f;
	for (int64_t i = 0; i < n / QK8_0; i++) {
		int sum = 0;
		for (int j = 0; j < QK4_0 / 2; j++) {
			sum += ((w[i].qs[j] & 15) - 8) * x[i].qs[j];
			sum += ((w[i].qs[j] >> 4) - 8) * x[i].qs[j + 16];
		}
		s += quant_f16_to_f32(w[i].d) * quant_f16_to_f32(x[i].d) * (float)sum;
	}
	return s;
}

static float dot_q5_0(int64_t n, const void *wv, const void *xv)
{
	const struct block_q5_0 *w = wv;
	const struct block_q8_0 *x = xv;
	float s = 0.0f;
	for (int64_t i = 0; i < n / QK8_0; i++) {
		uint32_t qh;
		memcpy(&qh, w[i].qh, sizeof qh);
		int sum = 0;
		for (int j = 0; j < QK5_0 / 2; j++) {
			int lo = (w[i].qs[j] & 15) | (int)(((qh >> j) & 1) << 4);
			int hi = (w[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
			sum += (lo - 16) * x[i].qs[j] + (hi - 16) * x[i].qs[j + 16];
		}
		s += quant_f16_to_f32(w[i].d) * quant_f16_to_f32(x[i].d) * (float)sum;
	}
	return s;
}

/* Scale and min j (0..7) of a Q4_K/Q5_K block; the packing is described in quant.c. */
static inline void kq_scale_min(int j, const uint8_t *q, int *sc, int *mn)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*mn = q[j + 4] & 63;
	} else {
		*sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
		*mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
	}
}

/* Q4_K and Q5_K (qh NULL for Q4_K): d*sum_j sc_j*sum(q*x) - dmin*sum_j mn_j*sum(x) per block. */
static float dot_kq(int64_t n, const uint8_t *qs, const uint8_t *qh, const quant_f16 *dd,
                    const uint8_t *scales, size_t stride, const struct block_q8_K *x)
{
	float s = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *q = qs + (size_t)i * stride, *sb = scales + (size_t)i * stride;
		const uint8_t *h = qh ? qh + (size_t)i * stride : NULL;
		const quant_f16 *d2 = (const quant_f16 *)((const uint8_t *)dd + (size_t)i * stride);
		int sumq = 0, summ = 0;
		for (int j = 0; j < 8; j++) {
			int sc, mn, part = 0;
			kq_scale_min(j, sb, &sc, &mn);
			for (int l = 0; l < 32; l++) {
				int v = (j & 1) ? q[32 * (j / 2) + l] >> 4 : q[32 * (j / 2) + l] & 15;
				if (h && (h[l] >> j) & 1)
					v += 16;
				part += v * x[i].qs[32 * j + l];
			}
			sumq += sc * part;
			summ += mn * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
		}
		s += x[i].d * (quant_f16_to_f32(d2[0]) * (float)sumq - quant_f16_to_f32(d2[1]) * (float)summ);
	}
	return s;
}

static float dot_q4_K(int64_t n, const void *wv, const void *xv)
{
	const struct block_q4_K *w = wv;
	return dot_kq(n, w->qs, NULL, &w->d, w->scales, sizeof(*w), xv);
}

static float dot_q5_K(int64_t n, const void *wv, const void *xv)
{
	const struct block_q5_K *w = wv;
	return dot_kq(n, w->qs, w->qh, &w->d, w->scales, sizeof(*w), xv);
}

static float dot_q6_K(int64_t n, const void *wv, const void *xv)
{
	const struct block_q6_K *w = wv;
	const struct block_q8_K *x = xv;
	float s = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		int q[QK_K];
		for (int h = 0; h < 2; h++) {
			const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;
			int *qq = q + 128 * h;
			for (int l = 0; l < 32; l++) {
				qq[l] = ((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32;
				qq[l + 32] = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
				qq[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
				qq[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
			}
		}
		int sum = 0;
		for (int g = 0; g < 16; g++) {
			int part = 0;
			for (int l = 0; l < 16; l++)
				part += q[16 * g + l] * x[i].qs[16 * g + l];
			sum += w[i].scales[g] * part;
		}
		s += quant_f16_to_f32(w[i].d) * x[i].d * (float)sum;
	}
	return s;
}

static void gemm_by_dot(kernels_dot_fn dot, int64_t n, const void *w, size_t ws, int nr,
                        const void *x, size_t xs, int nt, float *y, size_t ys)
{
	for (int t = 0; t < nt; t++)
		for (int r = 0; r < nr; r++)
			y[(size_t)t * ys + (size_t)r] =
				dot(n, (const uint8_t *)w + (size_t)r * ws, (const uint8_t *)x + (size_t)t * xs);
}

#define KERNELS_GEMM(name)                                                                        \
	static void gemm_##name(int64_t n, const void *w, size_t ws, int nr, const void *x, size_t xs, \
	                        int nt, float *y, size_t ys)                                           \
	{                                                                                              \
		gemm_by_dot(dot_##name, n, w, ws, nr, x, xs, nt, y, ys);                               \
	}
KERNELS_GEMM(f32)
KERNELS_GEMM(f16)
KERNELS_GEMM(bf16)
KERNELS_GEMM(q8_0)
KERNELS_GEMM(q4_0)
KERNELS_GEMM(q5_0)
KERNELS_GEMM(q4_K)
KERNELS_GEMM(q5_K)
KERNELS_GEMM(q6_K)

static size_t act_row_size(enum quant_type wtype, int64_t n)
{
	return quant_row_size(kernels_act_type(wtype), n);
}

static void act_quantize(enum quant_type wtype, const float *x, void *dst, int64_t n)
{
	quant_quantize_row(kernels_act_type(wtype), x, dst, n);
}

void kernels_scalar_fill(struct kernels *k)
{
	memset(k, 0, sizeof(*k));
	k->name = "scalar";
	k->gemm[QUANT_F32] = gemm_f32;
	k->gemm[QUANT_F16] = gemm_f16;
	k->gemm[QUANT_BF16] = gemm_bf16;
	k->gemm[QUANT_Q8_0] = gemm_q8_0;
	k->gemm[QUANT_Q4_0] = gemm_q4_0;
	k->gemm[QUANT_Q5_0] = gemm_q5_0;
	k->gemm[QUANT_Q4_K] = gemm_q4_K;
	k->gemm[QUANT_Q5_K] = gemm_q5_K;
	k->gemm[QUANT_Q6_K] = gemm_q6_K;
	k->act_row_size = act_row_size;
	k->act_quantize = act_quantize;
}
