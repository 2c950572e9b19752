/* attention: see attention.h. Compiled for AVX-512 by target attributes and
 * called only where the CPU has it (model.c checks). */
#include "runtime/attention.h"

#include <immintrin.h>
#include <math.h>

#include "runtime/model_arch.h"

#define AVX512 __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))

/* Lanes i < n of a 16-lane block. */
AVX512 INLINE __mmask16 lanes(int n)
{
	return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* e^x for x <= 0: x = k ln2 + r with |r| <= ln2 / 2, e^r by its Taylor series
 * to r^6 (relative error under 2e-7 there), scaled by 2^k. */
AVX512 INLINE __m512 exp_neg(__m512 x)
{
	__m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
	                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145751953125f), x);
	r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.42860682030941723e-06f), r);
	__m512 p = _mm512_set1_ps(1.0f / 720.0f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	return _mm512_scalef_ps(p, k);
}

/* scores[g][j] = q_g . k_j * scale for every head g and key j: each key is
 * loaded once for all heads. */
AVX512 static void scores_qk(const float *q, int ng, int hd, const float *k, size_t stride, int j0, int n, float scale,
                             float *scores, size_t sstride)
{
	int nch = hd / 16;
	for (int j = j0; j < n; j++) {
		const float *kj = k + (size_t)j * stride;
		__m512 kr[ATTENTION_MAX_HD / 16];
		for (int c = 0; c < nch; c++)
			kr[c] = _mm512_loadu_ps(kj + 16 * c);
		for (int g = 0; g < ng; g++) {
			const float *qg = q + (size_t)g * (size_t)hd;
			__m512 a0 = _mm512_mul_ps(_mm512_loadu_ps(qg), kr[0]), a1 = _mm512_setzero_ps();
			int c = 1;
			for (; c + 1 < nch; c += 2) {
				a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 16 * c), kr[c], a1);
				a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 16 * c + 16), kr[c + 1], a0);
			}
			if (c < nch)
				a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 16 * c), kr[c], a1);
			scores[(size_t)g * sstride + (size_t)j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * scale;
		}
	}
}

/* s[j0..n) = e^(s - max), zero below e^-80 as the scalar loop does; returns 1 / their sum. */
AVX512 static float softmax_row(float *s, int j0, int n)
{
	__m512 mx = _mm512_set1_ps(-INFINITY);
	for (int j = j0; j < n; j += 16)
		mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, lanes(n - j), s + j));
	__m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
	for (int j = j0; j < n; j += 16) {
		__mmask16 l = lanes(n - j);
		__m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(l, s + j), m);
		__mmask16 live = _mm512_mask_cmp_ps_mask(l, d, _mm512_set1_ps(-80.0f), _CMP_GE_OQ);
		__m512 e = _mm512_maskz_mov_ps(live, exp_neg(_mm512_max_ps(d, _mm512_set1_ps(-80.0f))));
		_mm512_mask_storeu_ps(s + j, l, e);
		sum = _mm512_add_ps(sum, e);
	}
	return 1.0f / _mm512_reduce_add_ps(sum);
}

/* out_g = inv_g * sum_j p_g[j] v_j for NG heads, 16 of the hd floats at a time:
 * each value chunk is loaded once for all heads, whose sums stay in registers. */
#define PV_BLOCK(NG)                                                                                                   \
	for (int c = 0; c < hd; c += 16) {                                                                             \
		__m512 acc[NG];                                                                                        \
		for (int g = 0; g < (NG); g++)                                                                         \
			acc[g] = _mm512_setzero_ps();                                                                  \
		for (int j = j0; j < n; j++) {                                                                         \
			__m512 vj = _mm512_loadu_ps(v + (size_t)j * stride + c);                                       \
			for (int g = 0; g < (NG); g++)                                                                 \
				acc[g] =                                                                               \
				    _mm512_fmadd_ps(_mm512_set1_ps(p[(size_t)g * sstride + (size_t)j]), vj, acc[g]);   \
		}                                                                                                      \
		for (int g = 0; g < (NG); g++)                                                                         \
			_mm512_storeu_ps(out + (size_t)g * (size_t)hd + c,                                             \
			                 _mm512_mul_ps(acc[g], _mm512_set1_ps(inv[g])));                               \
	}

AVX512 static void weighted_values(int ng, int hd, const float *v, size_t stride, int j0, int n, const float *p,
                                   size_t sstride, const float *inv, float *out)
{
	switch (ng) {
	case 1:
		PV_BLOCK(1) break;
	case 2:
		PV_BLOCK(2) break;
	case 3:
		PV_BLOCK(3) break;
	case 4:
		PV_BLOCK(4) break;
	case 5:
		PV_BLOCK(5) break;
	case 6:
		PV_BLOCK(6) break;
	case 7:
		PV_BLOCK(7) break;
	default:
		PV_BLOCK(8) break;
	}
}

AVX512 void attention_heads_avx512(const float *q, int ng, int hd, const float *k, const float *v, size_t stride,
                                   int j0, int n, float scale, float cap, float *scores, size_t sstride, float *out)
{
	float inv[ATTENTION_MAX_HEADS];
	scores_qk(q, ng, hd, k, stride, j0, n, scale, scores, sstride);
	for (int g = 0; g < ng; g++) {
		float *s = scores + (size_t)g * sstride;
		if (cap > 0)
			arch_softcap(s + j0, (size_t)(n - j0), cap);
		inv[g] = softmax_row(s, j0, n);
	}
	weighted_values(ng, hd, v, stride, j0, n, scores, sstride, inv, out);
}
