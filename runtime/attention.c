/* attention: see attention.h. Compiled for AVX-512 and for AVX2 with FMA by
 * target attributes, each called only where the CPU has it (model.c checks). */
#include "runtime/attention.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "runtime/model_arch.h"

#define AVX512 __attribute__((target("avx512f")))
#define AVX2 __attribute__((target("avx2,fma")))
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

/* The sums of a0, a1, a2 and a3's lanes, in that order. */
AVX512 INLINE __m128 sum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
	__m512 s01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
	__m512 s23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
	__m512 s = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(s01), _mm512_castps_pd(s23))),
	                         _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(s01), _mm512_castps_pd(s23))));
	s = _mm512_add_ps(s, _mm512_shuffle_f32x4(s, s, 0x4e));
	s = _mm512_add_ps(s, _mm512_shuffle_f32x4(s, s, 0xb1));
	return _mm512_castps512_ps128(s);
}

/* scores[g][j] = q_g . k_j * scale for every head g and key j, four keys at a
 * time: their rows stay in the first-level cache from one head to the next,
 * and four sums are finished together. */
AVX512 static void scores_qk(const float *q, int ng, int hd, const float *k, size_t stride, int j0, int n, float scale,
                             float *scores, size_t sstride)
{
	int j = j0;
	for (; j + 4 <= n; j += 4) {
		const float *k0 = k + (size_t)j * stride;
		for (int g = 0; g < ng; g++) {
			const float *qg = q + (size_t)g * (size_t)hd;
			__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
			for (int c = 0; c < hd; c += 16) {
				__m512 qc = _mm512_loadu_ps(qg + c);
				a0 = _mm512_fmadd_ps(qc, _mm512_loadu_ps(k0 + c), a0);
				a1 = _mm512_fmadd_ps(qc, _mm512_loadu_ps(k0 + stride + c), a1);
				a2 = _mm512_fmadd_ps(qc, _mm512_loadu_ps(k0 + 2 * stride + c), a2);
				a3 = _mm512_fmadd_ps(qc, _mm512_loadu_ps(k0 + 3 * stride + c), a3);
			}
			_mm_storeu_ps(scores + (size_t)g * sstride + (size_t)j,
			              _mm_mul_ps(sum4(a0, a1, a2, a3), _mm_set1_ps(scale)));
		}
	}
	for (; j < n; j++)
		for (int g = 0; g < ng; g++) {
			const float *qg = q + (size_t)g * (size_t)hd, *kj = k + (size_t)j * stride;
			__m512 a = _mm512_setzero_ps();
			for (int c = 0; c < hd; c += 16)
				a = _mm512_fmadd_ps(_mm512_loadu_ps(qg + c), _mm512_loadu_ps(kj + c), a);
			scores[(size_t)g * sstride + (size_t)j] = _mm512_reduce_add_ps(a) * scale;
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

/* BLOCK(NG) with ng as a compile-time constant (1 to ATTENTION_MAX_HEADS), so
 * that the heads' sums are kept in registers. */
#define FOR_NG(BLOCK)                                                                                                  \
	switch (ng) {                                                                                                  \
	case 1:                                                                                                        \
		BLOCK(1) break;                                                                                        \
	case 2:                                                                                                        \
		BLOCK(2) break;                                                                                        \
	case 3:                                                                                                        \
		BLOCK(3) break;                                                                                        \
	case 4:                                                                                                        \
		BLOCK(4) break;                                                                                        \
	case 5:                                                                                                        \
		BLOCK(5) break;                                                                                        \
	case 6:                                                                                                        \
		BLOCK(6) break;                                                                                        \
	case 7:                                                                                                        \
		BLOCK(7) break;                                                                                        \
	default:                                                                                                       \
		BLOCK(8) break;                                                                                        \
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
                                   size_t sstride, const float *inv, float *out){FOR_NG(PV_BLOCK)}

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

/* ---- AVX2 with FMA: the same loops, 8 floats at a time ---- */

/* e^x for x in [-80, 0], as exp_neg; 2^k (k >= -116) is built in the exponent bits. */
AVX2 INLINE __m256 exp_neg8(__m256 x)
{
	__m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
	                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145751953125f), x);
	r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.42860682030941723e-06f), r);
	__m256 p = _mm256_set1_ps(1.0f / 720.0f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
	return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AVX2 INLINE float hsum8(__m256 a)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* The sums of a0, a1, a2 and a3's lanes, in that order. */
AVX2 INLINE __m128 sum4_8(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
	__m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
	return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

AVX2 static void scores_qk8(const float *q, int ng, int hd, const float *k, size_t stride, int j0, int n, float scale,
                            float *scores, size_t sstride)
{
	int j = j0;
	for (; j + 4 <= n; j += 4) {
		const float *k0 = k + (size_t)j * stride;
		for (int g = 0; g < ng; g++) {
			const float *qg = q + (size_t)g * (size_t)hd;
			__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
			for (int c = 0; c < hd; c += 8) {
				__m256 qc = _mm256_loadu_ps(qg + c);
				a0 = _mm256_fmadd_ps(qc, _mm256_loadu_ps(k0 + c), a0);
				a1 = _mm256_fmadd_ps(qc, _mm256_loadu_ps(k0 + stride + c), a1);
				a2 = _mm256_fmadd_ps(qc, _mm256_loadu_ps(k0 + 2 * stride + c), a2);
				a3 = _mm256_fmadd_ps(qc, _mm256_loadu_ps(k0 + 3 * stride + c), a3);
			}
			_mm_storeu_ps(scores + (size_t)g * sstride + (size_t)j,
			              _mm_mul_ps(sum4_8(a0, a1, a2, a3), _mm_set1_ps(scale)));
		}
	}
	for (; j < n; j++)
		for (int g = 0; g < ng; g++) {
			const float *qg = q + (size_t)g * (size_t)hd, *kj = k + (size_t)j * stride;
			__m256 a = _mm256_setzero_ps();
			for (int c = 0; c < hd; c += 8)
				a = _mm256_fmadd_ps(_mm256_loadu_ps(qg + c), _mm256_loadu_ps(kj + c), a);
			scores[(size_t)g * sstride + (size_t)j] = hsum8(a) * scale;
		}
}

/* Up to 8 floats of s from j (fewer at the end of the row: the rest fill). */
AVX2 INLINE __m256 load_part(const float *s, int j, int n, float fill)
{
	if (n - j >= 8)
		return _mm256_loadu_ps(s + j);
	float b[8] = {fill, fill, fill, fill, fill, fill, fill, fill};
	memcpy(b, s + j, (size_t)(n - j) * sizeof *b);
	return _mm256_loadu_ps(b);
}

AVX2 static float softmax_row8(float *s, int j0, int n)
{
	__m256 mx = _mm256_set1_ps(-INFINITY);
	for (int j = j0; j < n; j += 8)
		mx = _mm256_max_ps(mx, load_part(s, j, n, -INFINITY));
	__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
	m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
	m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
	__m256 m = _mm256_set1_ps(_mm_cvtss_f32(m4)), sum = _mm256_setzero_ps(), lo = _mm256_set1_ps(-80.0f);
	for (int j = j0; j < n; j += 8) {
		__m256 d = _mm256_sub_ps(load_part(s, j, n, -INFINITY), m);
		__m256 e = _mm256_and_ps(_mm256_cmp_ps(d, lo, _CMP_GE_OQ), exp_neg8(_mm256_max_ps(d, lo)));
		if (n - j >= 8) {
			_mm256_storeu_ps(s + j, e);
		} else {
			float b[8];
			_mm256_storeu_ps(b, e);
			memcpy(s + j, b, (size_t)(n - j) * sizeof *b);
		}
		sum = _mm256_add_ps(sum, e);
	}
	return 1.0f / hsum8(sum);
}

#define PV_BLOCK8(NG)                                                                                                  \
	for (int c = 0; c < hd; c += 8) {                                                                              \
		__m256 acc[NG];                                                                                        \
		for (int g = 0; g < (NG); g++)                                                                         \
			acc[g] = _mm256_setzero_ps();                                                                  \
		for (int j = j0; j < n; j++) {                                                                         \
			__m256 vj = _mm256_loadu_ps(v + (size_t)j * stride + c);                                       \
			for (int g = 0; g < (NG); g++)                                                                 \
				acc[g] =                                                                               \
				    _mm256_fmadd_ps(_mm256_set1_ps(p[(size_t)g * sstride + (size_t)j]), vj, acc[g]);   \
		}                                                                                                      \
		for (int g = 0; g < (NG); g++)                                                                         \
			_mm256_storeu_ps(out + (size_t)g * (size_t)hd + c,                                             \
			                 _mm256_mul_ps(acc[g], _mm256_set1_ps(inv[g])));                               \
	}

AVX2 static void weighted_values8(int ng, int hd, const float *v, size_t stride, int j0, int n, const float *p,
                                  size_t sstride, const float *inv, float *out){FOR_NG(PV_BLOCK8)}

AVX2 void attention_heads_avx2(const float *q, int ng, int hd, const float *k, const float *v, size_t stride, int j0,
                               int n, float scale, float cap, float *scores, size_t sstride, float *out)
{
	float inv[ATTENTION_MAX_HEADS];
	scores_qk8(q, ng, hd, k, stride, j0, n, scale, scores, sstride);
	for (int g = 0; g < ng; g++) {
		float *s = scores + (size_t)g * sstride;
		if (cap > 0)
			arch_softcap(s + j0, (size_t)(n - j0), cap);
		inv[g] = softmax_row8(s, j0, n);
	}
	weighted_values8(ng, hd, v, stride, j0, n, scores, sstride, inv, out);
}
