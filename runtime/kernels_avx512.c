/* kernels_avx512: AVX-512 (F, BW, VL, VNNI, BF16) versions of the kernels,
 * compiled with those instructions enabled and only called when the CPU has
 * them (kernels.c checks).
 *
 * The quantized kernels work on tiles of up to KERNELS_NR weight rows times
 * KERNELS_NT tokens: a block of weights is decoded into registers once and
 * used for each token of the tile, and a block of activations, loaded once,
 * serves each of its rows while it is in the L1 cache. A prompt thus reads
 * each activation row once per group of rows instead of once per row, while
 * generation (one token) still streams the weights at memory speed. Each
 * output's operations are the same whatever the tile's size. Integer sums are
 * exact and equal to the scalar kernels'; only the order of the float
 * additions differs.
 *
 * Unsigned-times-signed byte products (vpmaddubsw, vpdpbusd): K-quant codes
 * are unsigned, and their offsets are applied through the activations' block
 * sums; the Q8_0 family keeps its weight codes signed and makes the
 * activations unsigned instead (vpdpbusd, which sums in 32 bits and so cannot
 * saturate), see x8_pair. */
#include "runtime/kernels.h"
#include "runtime/kernels_tile.h"

#include <immintrin.h>
#include <string.h>

#define KERNELS_NT 4
#define KERNELS_NR 4
#define INLINE static inline __attribute__((always_inline))

INLINE float f16(quant_f16 h)
{
	return _cvtsh_ss(h);
}

/* Calls body(N) with a compile-time N for each group of up to KERNELS_NT tokens of each row. */
#define KERNELS_TILE(fn, n, w, ws, nr, x, xs, nt, y, ys)                                             \
	do {                                                                                         \
		for (int r_ = 0; r_ < (nr); r_++) {                                                  \
			const uint8_t *wr_ = (const uint8_t *)(w) + (size_t)r_ * (ws);               \
			for (int t_ = 0; t_ < (nt); t_ += KERNELS_NT) {                              \
				const uint8_t *xt_ = (const uint8_t *)(x) + (size_t)t_ * (xs);       \
				float *yt_ = (y) + (size_t)t_ * (ys) + r_;                           \
				switch ((nt) - t_ < KERNELS_NT ? (nt) - t_ : KERNELS_NT) {           \
				case 1: fn(n, wr_, xt_, xs, yt_, ys, 1); break;                      \
				case 2: fn(n, wr_, xt_, xs, yt_, ys, 2); break;                      \
				case 3: fn(n, wr_, xt_, xs, yt_, ys, 3); break;                      \
				default: fn(n, wr_, xt_, xs, yt_, ys, 4); break;                     \
				}                                                                    \
			}                                                                            \
		}                                                                                    \
	} while (0)

#define KERNELS_DEFINE_GEMM(name)                                                                 \
	static void gemm_##name(int64_t n, const void *w, size_t ws, int nr, const void *x, size_t xs, \
	                        int nt, float *y, size_t ys)                                           \
	{                                                                                              \
		KERNELS_TILE(row_##name, n, w, ws, nr, x, xs, nt, y, ys);                              \
	}

/* ---- F32, F16, BF16: float products ---- */

INLINE __m512 load_f32(const void *p)
{
	return _mm512_loadu_ps(p);
}
INLINE __m512 load_f16(const void *p)
{
	return _mm512_cvtph_ps(_mm256_loadu_si256(p));
}
INLINE __m512 load_bf16(const void *p)
{
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(p)), 16));
}

#define KERNELS_FLOAT_ROW(name, elt, load, tail)                                                  \
	INLINE void row_##name(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, float *y,    \
	                       size_t ys, const int N)                                                 \
	{                                                                                              \
		__m512 acc[KERNELS_NT];                                                                \
		for (int t = 0; t < N; t++)                                                            \
			acc[t] = _mm512_setzero_ps();                                                  \
		int64_t i = 0;                                                                         \
		for (; i + 16 <= n; i += 16) {                                                         \
			__m512 wv = load(w + i * (elt));                                               \
			for (int t = 0; t < N; t++)                                                    \
				acc[t] = _mm512_fmadd_ps(wv, load(x + (size_t)t * xs + i * (elt)), acc[t]); \
		}                                                                                      \
		for (int t = 0; t < N; t++) {                                                          \
			float s = _mm512_reduce_add_ps(acc[t]);                                        \
			for (int64_t j = i; j < n; j++)                                                \
				s += tail(w, j) * tail(x + (size_t)t * xs, j);                         \
			y[(size_t)t * ys] = s;                                                         \
		}                                                                                      \
	}

#define TAIL_F32(p, j) (((const float *)(p))[j])
#define TAIL_F16(p, j) quant_f16_to_f32(((const quant_f16 *)(p))[j])
#define TAIL_BF16(p, j) quant_bf16_to_f32(((const quant_bf16 *)(p))[j])
KERNELS_FLOAT_ROW(f32, 4, load_f32, TAIL_F32)
KERNELS_FLOAT_ROW(f16, 2, load_f16, TAIL_F16)
KERNELS_FLOAT_ROW(bf16, 2, load_bf16, TAIL_BF16)
KERNELS_DEFINE_GEMM(f32)
KERNELS_DEFINE_GEMM(f16)
KERNELS_DEFINE_GEMM(bf16)

/* ---- rounding activations ----
 *
 * The same arithmetic as quantize.c's Q8_0 and Q8_K, sixteen values at a time:
 * maxima are exact, products are the same single multiplications, and the
 * conversion rounds to nearest-even as quantize.c does, so the codes and
 * scales are bit for bit those of quant_quantize_row. */

void kernels_avx512_q8_0(const float *x, struct block_q8_0 *b)
{
	__m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
	float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
	float d = amax / 127.0f;
	float id = d != 0.0f ? 1.0f / d : 0.0f;
	b->d = quant_f32_to_f16(d);
	__m512 vid = _mm512_set1_ps(id);
	_mm_storeu_si128((__m128i *)b->qs, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, vid))));
	_mm_storeu_si128((__m128i *)(b->qs + 16), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, vid))));
}

void kernels_avx512_q8_K(const float *x, struct block_q8_K *b)
{
	__m512 m = _mm512_setzero_ps();
	for (int j = 0; j < QK_K; j += 16)
		m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
	float amax = _mm512_reduce_max_ps(m), max = 0.0f;
	for (int j = 0; j < QK_K; j += 16) {
		__mmask16 k = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
		if (k) { /* the first value of largest magnitude, as the scalar scan finds it */
			max = x[j + __builtin_ctz(k)];
			break;
		}
	}
	if (amax == 0.0f || max == 0.0f) {
		memset(b, 0, sizeof(*b));
		return;
	}
	float iscale = -127.0f / max; /* as quantize.c: the extreme value maps to -127 */
	__m512 vs = _mm512_set1_ps(iscale);
	for (int j = 0; j < QK_K; j += 16) {
		__m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(x + j)));
		q = _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-128));
		_mm_storeu_si128((__m128i *)(b->qs + j), _mm512_cvtepi32_epi8(q));
		b->bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(q);
	}
	b->d = 1.0f / iscale;
}

/* ---- Q8_0, Q4_0, Q5_0 with Q8_0 activations, two blocks per register ----
 *
 * The activations are laid out for these kernels: per pair of blocks, the 64
 * codes plus 128 (unsigned bytes for vpdpbusd) and each block's scale (as F32)
 * repeated over the 8 lanes that hold its sums. Weight codes are taken signed
 * (Q4_0: q - 8, Q5_0: q - 16), and the integer accumulator of a weight pair
 * starts at -128 times the sum of each lane's 4 weights, which takes the +128
 * of the activations out again; that start is computed once per weight pair
 * and shared by every token of a tile. A row with an odd number of blocks ends
 * with a half pair whose missing half is zero.
 *
 * A tile is up to KERNELS_NR weight rows times up to KERNELS_NT tokens: each
 * decoded weight pair is used for every token and each activation pair for
 * every row, from registers. Each output's sequence of operations is the same
 * whatever the tile's size, so a product does not depend on how many rows or
 * tokens were computed with it. */

struct x8_pair {
	uint8_t qs[64];
	float d[16];
};

static size_t x8_row_size(int64_t n)
{
	return (size_t)((n / QK8_0 + 1) / 2) * sizeof(struct x8_pair);
}

static void x8_quantize(const float *x, void *dst, int64_t n)
{
	struct x8_pair *p = dst;
	int64_t nb = n / QK8_0;
	for (int64_t ib = 0; ib < nb; ib += 2, p++) {
		struct block_q8_0 b;
		memset(p, 0, sizeof(*p));
		for (int j = 0; j < 2 && ib + j < nb; j++) {
			kernels_avx512_q8_0(x + (ib + j) * QK8_0, &b);
			__m256i q = _mm256_loadu_si256((const __m256i *)b.qs);
			_mm256_storeu_si256((__m256i *)(p->qs + 32 * j),
			                    _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)));
			_mm256_storeu_ps(p->d + 8 * j, _mm256_set1_ps(f16(b.d)));
		}
	}
}

/* Lanes 0-7 the F16 scale a, lanes 8-15 b, as F32. */
INLINE __m512 pair_scales(quant_f16 a, quant_f16 b)
{
	__m256i h = _mm256_mask_blend_epi16(0xff00, _mm256_set1_epi16((short)a), _mm256_set1_epi16((short)b));
	return _mm512_cvtph_ps(h);
}

/* The F16 scales of 16 consecutive blocks bsz bytes apart, as F32. */
INLINE __m512 gather_scales(const uint8_t *d0, int bsz)
{
	const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
	                                       _mm512_set1_epi32(bsz));
	return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(idx, d0, 1)));
}

/* Scales of pair p out of 16 gathered ones: lanes 0-7 block 2p, 8-15 block 2p+1. */
INLINE __m512 pair_of(__m512 d16, int p)
{
	__m512i idx = _mm512_inserti64x4(_mm512_set1_epi32(2 * p), _mm256_set1_epi32(2 * p + 1), 1);
	return _mm512_permutexvar_ps(idx, d16);
}

/* Nibbles of two Q4_0/Q5_0 blocks (16 bytes each) into element order, 64 bytes. */
INLINE __m512i nibbles_pair(const uint8_t *qs0, const uint8_t *qs1)
{
	__m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)qs0)),
	                                    _mm_loadu_si128((const __m128i *)qs1), 1);
	/* 128-bit lanes (b0, b0, b1, b1), the second of each pair shifted to its high nibbles */
	const __m512i lanes = _mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3);
	const __m512i shift = _mm512_setr_epi64(0, 0, 0x0004000400040004ll, 0x0004000400040004ll, 0, 0,
	                                        0x0004000400040004ll, 0x0004000400040004ll);
	__m512i z = _mm512_permutexvar_epi64(lanes, _mm512_castsi256_si512(v));
	return _mm512_and_si512(_mm512_srlv_epi16(z, shift), _mm512_set1_epi8(15));
}

/* Signed codes of blocks ib and ib+1 of a row of type wt (the second zero when half). */
INLINE __m512i q8_codes(enum quant_type wt, const uint8_t *w, int64_t ib, bool half)
{
	if (wt == QUANT_Q8_0) {
		const struct block_q8_0 *b = (const struct block_q8_0 *)w + ib;
		__m256i lo = _mm256_loadu_si256((const __m256i *)b[0].qs);
		return half ? _mm512_zextsi256_si512(lo)
		            : _mm512_inserti64x4(_mm512_castsi256_si512(lo),
		                                 _mm256_loadu_si256((const __m256i *)b[1].qs), 1);
	}
	__m512i z, off;
	if (wt == QUANT_Q4_0) {
		const struct block_q4_0 *b = (const struct block_q4_0 *)w + ib;
		z = nibbles_pair(b[0].qs, half ? b[0].qs : b[1].qs);
		off = _mm512_set1_epi8(8);
	} else {
		const struct block_q5_0 *b = (const struct block_q5_0 *)w + ib;
		uint32_t h0, h1 = 0;
		memcpy(&h0, b[0].qh, 4);
		if (!half)
			memcpy(&h1, b[1].qh, 4);
		__mmask64 hb = _cvtu64_mask64((uint64_t)h0 | ((uint64_t)h1 << 32));
		z = _mm512_or_si512(nibbles_pair(b[0].qs, half ? b[0].qs : b[1].qs),
		                    _mm512_maskz_mov_epi8(hb, _mm512_set1_epi8(16)));
		off = _mm512_set1_epi8(16);
	}
	return _mm512_maskz_sub_epi8(half ? 0xffffffffull : ~0ull, z, off);
}

INLINE size_t q8_block_size(enum quant_type wt)
{
	return wt == QUANT_Q8_0   ? sizeof(struct block_q8_0)
	       : wt == QUANT_Q4_0 ? sizeof(struct block_q4_0)
	                          : sizeof(struct block_q5_0);
}

/* -128 times the sum of each lane's 4 signed weights: the start that cancels the activations' +128. */
INLINE __m512i q8_start(__m512i wq)
{
	return _mm512_sub_epi32(_mm512_setzero_si512(),
	                        _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), wq));
}

/* One pair of blocks (pair ip of the activations) for R rows (codes wq, scales dw) and N tokens. */
INLINE void q8_pair_tile(const __m512i *wq, const __m512 *dw, const uint8_t *x, size_t xs, int64_t ip,
                         __m512 (*acc)[KERNELS_NT], const int R, const int N)
{
	__m512i start[KERNELS_NR];
	for (int r = 0; r < R; r++)
		start[r] = q8_start(wq[r]);
	for (int t = 0; t < N; t++) {
		const struct x8_pair *xp = (const struct x8_pair *)(x + (size_t)t * xs) + ip;
		__m512i xq = _mm512_load_si512(xp->qs);
		__m512 xd = _mm512_load_ps(xp->d);
		for (int r = 0; r < R; r++) {
			__m512i s = _mm512_dpbusd_epi32(start[r], xq, wq[r]);
			acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw[r], xd), acc[r][t]);
		}
	}
}

/* R rows (ws bytes apart) of a Q8_0-family type times N tokens. */
INLINE void tile_q8(enum quant_type wt, int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y,
                    size_t ys, const int R, const int N)
{
	const size_t bsz = q8_block_size(wt);
	int64_t nb = n / 32, ib = 0;
	__m512 acc[KERNELS_NR][KERNELS_NT];
	__m512i wq[KERNELS_NR];
	__m512 dw[KERNELS_NR];
	for (int r = 0; r < R; r++)
		for (int t = 0; t < N; t++)
			acc[r][t] = _mm512_setzero_ps();
	for (; ib + 16 <= nb; ib += 16) {
		__m512 d16[KERNELS_NR];
		for (int r = 0; r < R; r++) {
			const uint8_t *b = w + (size_t)r * ws + (size_t)ib * bsz;
			for (size_t o = 0; o < 16 * bsz; o += 64)
				_mm_prefetch((const char *)b + KERNELS_PREFETCH_Q8 + o, _MM_HINT_T0);
			d16[r] = gather_scales(b, (int)bsz);
		}
		for (int p = 0; p < 8; p++) {
			for (int r = 0; r < R; r++) {
				wq[r] = q8_codes(wt, w + (size_t)r * ws, ib + 2 * p, false);
				dw[r] = pair_of(d16[r], p);
			}
			q8_pair_tile(wq, dw, x, xs, ib / 2 + p, acc, R, N);
		}
	}
	for (int r = 0; r < R; r++)
		for (size_t o = (size_t)ib * bsz; o < (size_t)nb * bsz; o += 64)
			_mm_prefetch((const char *)w + (size_t)r * ws + KERNELS_PREFETCH_Q8 + o, _MM_HINT_T0);
	for (; ib < nb; ib += 2) {
		bool half = ib + 1 == nb;
		for (int r = 0; r < R; r++) {
			const uint8_t *b = w + (size_t)r * ws + (size_t)ib * bsz;
			quant_f16 d0, d1 = 0;
			memcpy(&d0, b, sizeof d0);
			if (!half)
				memcpy(&d1, b + bsz, sizeof d1);
			wq[r] = q8_codes(wt, w + (size_t)r * ws, ib, half);
			dw[r] = pair_scales(d0, d1);
		}
		q8_pair_tile(wq, dw, x, xs, ib / 2, acc, R, N);
	}
	for (int r = 0; r < R; r++)
		for (int t = 0; t < N; t++)
			y[(size_t)t * ys + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define KERNELS_Q8_TILE(name, wt)                                                                                      \
	INLINE void tile_##name(int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y,         \
	                        size_t ys, const int R, const int N)                                                   \
	{                                                                                                              \
		tile_q8(wt, n, w, ws, x, xs, y, ys, R, N);                                                             \
	}
KERNELS_Q8_TILE(q8_0, QUANT_Q8_0)
KERNELS_Q8_TILE(q4_0, QUANT_Q4_0)
KERNELS_Q8_TILE(q5_0, QUANT_Q5_0)
KERNELS_DEFINE_GEMM_RN(q8_0)
KERNELS_DEFINE_GEMM_RN(q4_0)
KERNELS_DEFINE_GEMM_RN(q5_0)

/* ---- K-quants with Q8_K activations ---- */

/* The eight 6-bit scales (int16 lanes 0-7) and mins (lanes 8-15) of a Q4_K/Q5_K block. */
INLINE __m256i kq_scales_mins(const uint8_t *q)
{
	uint32_t a, b, c;
	memcpy(&a, q, 4);
	memcpy(&b, q + 4, 4);
	memcpy(&c, q + 8, 4);
	uint32_t sc_lo = a & 0x3f3f3f3f, mn_lo = b & 0x3f3f3f3f;
	uint32_t sc_hi = (c & 0x0f0f0f0f) | (((a >> 6) & 0x03030303) << 4);
	uint32_t mn_hi = ((c >> 4) & 0x0f0f0f0f) | (((b >> 6) & 0x03030303) << 4);
	return _mm256_cvtepu8_epi16(_mm_set_epi32((int)mn_hi, (int)mn_lo, (int)sc_hi, (int)sc_lo));
}

/* int16 pairs for vpdpwssd over 64 codes: lanes 0-15 scale a, lanes 16-31 scale b (indices into s). */
INLINE __m512i scale_pairs(__m256i s, int a, int b)
{
	__m512i idx = _mm512_inserti64x4(_mm512_set1_epi16((short)a), _mm256_set1_epi16((short)b), 1);
	return _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(s));
}

/* The bsums of N tokens' block ib, weighted by m16 (16 int16), into N float accumulators
 * scaled by -coef * d of each token. */
INLINE void bsums_accumulate(__m256i m16, float coef, const uint8_t *x, size_t xs, int64_t ib,
                             __m256 *accm, const int N)
{
	for (int t = 0; t < N; t++) {
		const struct block_q8_K *xb = (const struct block_q8_K *)(x + (size_t)t * xs) + ib;
		__m256i bs = _mm256_loadu_si256((const __m256i *)xb->bsums);
		__m256 v = _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, m16));
		accm[t] = _mm256_fmadd_ps(v, _mm256_set1_ps(-coef * xb->d), accm[t]);
	}
}

/* Four registers of 64 unsigned codes (w[c] = elements 64c..64c+63) times N tokens' codes,
 * weighted by sc[c] per int16 pair; adds d_w * d_x * sum into acc. */
INLINE void kq_codes_accumulate(const __m512i *wc, const __m512i *sc, float dw, const uint8_t *x,
                                size_t xs, int64_t ib, __m512 *acc, const int N)
{
	for (int t = 0; t < N; t++) {
		const struct block_q8_K *xb = (const struct block_q8_K *)(x + (size_t)t * xs) + ib;
		/* two independent chains: the four products of a block need not wait on each other */
		__m512i s0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(),
		                                 _mm512_maddubs_epi16(wc[0], _mm512_loadu_si512(xb->qs)), sc[0]);
		__m512i s1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(),
		                                 _mm512_maddubs_epi16(wc[1], _mm512_loadu_si512(xb->qs + 64)), sc[1]);
		s0 = _mm512_dpwssd_epi32(s0, _mm512_maddubs_epi16(wc[2], _mm512_loadu_si512(xb->qs + 128)), sc[2]);
		s1 = _mm512_dpwssd_epi32(s1, _mm512_maddubs_epi16(wc[3], _mm512_loadu_si512(xb->qs + 192)), sc[3]);
		acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_set1_ps(dw * xb->d),
		                         acc[t]);
	}
}

/* A tile's two sets of accumulators: the codes' products and (8 lanes) the offset terms. */
INLINE void zero2(__m512 acc[][KERNELS_NT], __m256 accm[][KERNELS_NT], const int R, const int N)
{
	for (int r = 0; r < R; r++)
		for (int t = 0; t < N; t++) {
			acc[r][t] = _mm512_setzero_ps();
			accm[r][t] = _mm256_setzero_ps();
		}
}

INLINE void reduce_store2(const __m512 *acc, const __m256 *accm, float *y, size_t ys, const int N)
{
	for (int t = 0; t < N; t++)
		y[(size_t)t * ys] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t], _mm512_zextps256_ps512(accm[t])));
}

/* Activations for Q4_K/Q5_K weights, one block of 256: the codes of each half
 * of 128 reordered as elements 0-31, 64-95, 32-63, 96-127, so that one 64-byte
 * load of weight nibbles, split into low and high nibbles, lines up with two
 * 64-byte loads of codes; the block scale; and the block scale times the sum
 * of each 32 codes, for the mins. Values equal quant_quantize_row's Q8_K. */
struct xk_block {
	int8_t qs[QK_K];
	float d;
	float pad[7];
	float bs32[8];
};

static void xk_quantize(const float *x, void *dst, int64_t n)
{
	struct xk_block *o = dst;
	for (int64_t ib = 0; ib < n / QK_K; ib++, o++) {
		struct block_q8_K b;
		kernels_avx512_q8_K(x + ib * QK_K, &b);
		for (int h = 0; h < 2; h++) {
			memcpy(o->qs + 128 * h, b.qs + 128 * h, 32);
			memcpy(o->qs + 128 * h + 32, b.qs + 128 * h + 64, 32);
			memcpy(o->qs + 128 * h + 64, b.qs + 128 * h + 32, 32);
			memcpy(o->qs + 128 * h + 96, b.qs + 128 * h + 96, 32);
		}
		o->d = b.d;
		memset(o->pad, 0, sizeof o->pad);
		for (int j = 0; j < 8; j++)
			o->bs32[j] = b.d * (float)(b.bsums[2 * j] + b.bsums[2 * j + 1]);
	}
}

/* The codes of a Q4_K/Q5_K block (has_qh: the fifth bits of Q5_K) as four
 * registers of 64 (wc[2h]: sub-blocks 4h, 4h+2 from the low nibbles; wc[2h+1]:
 * 4h+1, 4h+3 from the high ones), their scale pairs, the mins times dmin. */
INLINE void kq_decode(const uint8_t *blk, size_t off_qs, size_t off_qh, bool has_qh, __m512i *wc, __m512i *sc,
                      __m256 *mins)
{
	const __m512i lo4 = _mm512_set1_epi8(15);
	quant_f16 dmin;
	memcpy(&dmin, blk + 2, sizeof dmin);
	__m256i sm = kq_scales_mins(blk + 4);
	*mins = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(sm, 1))),
	                      _mm256_set1_ps(f16(dmin)));
	for (int h = 0; h < 2; h++) {
		__m512i v = _mm512_loadu_si512(blk + off_qs + 64 * h);
		wc[2 * h] = _mm512_and_si512(v, lo4);
		wc[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo4);
		if (has_qh) {
			__m256i hv = _mm256_loadu_si256((const __m256i *)(blk + off_qh));
			__m512i h2 = _mm512_inserti64x4(_mm512_castsi256_si512(hv), hv, 1);
			const __m512i one = _mm512_set1_epi8(1);
			__m512i sh_lo = _mm512_inserti64x4(_mm512_set1_epi16((short)(4 * h)),
			                                   _mm256_set1_epi16((short)(4 * h + 2)), 1);
			__m512i b_lo = _mm512_and_si512(_mm512_srlv_epi16(h2, sh_lo), one);
			__m512i b_hi =
			    _mm512_and_si512(_mm512_srlv_epi16(h2, _mm512_add_epi16(sh_lo, _mm512_set1_epi16(1))), one);
			wc[2 * h] = _mm512_or_si512(wc[2 * h], _mm512_slli_epi16(b_lo, 4));
			wc[2 * h + 1] = _mm512_or_si512(wc[2 * h + 1], _mm512_slli_epi16(b_hi, 4));
		}
		sc[2 * h] = scale_pairs(sm, 4 * h, 4 * h + 2);
		sc[2 * h + 1] = scale_pairs(sm, 4 * h + 1, 4 * h + 3);
	}
}

/* R rows of Q4_K or Q5_K against N tokens' xk_block activations. Block by
 * block, each row's decoded block meets the N tokens' activation blocks, which
 * stay in the L1 cache for the next row: long rows (ffn_down) no longer read
 * every token's whole row from L2 once per weight row. */
INLINE void tile_kq(int64_t n, const uint8_t *w, size_t ws, size_t bsz, size_t off_qs, size_t off_qh, bool has_qh,
                    const uint8_t *x, size_t xs, float *y, size_t ys, const int R, const int N)
{
	__m512 acc[KERNELS_NR][KERNELS_NT];
	__m256 accm[KERNELS_NR][KERNELS_NT];
	zero2(acc, accm, R, N);
	for (int64_t ib = 0; ib < n / QK_K; ib++) {
		for (int r = 0; r < R; r++) {
			const uint8_t *blk = w + (size_t)r * ws + (size_t)ib * bsz;
			/* weights are read once per token: fetch well ahead */
			for (size_t o = 0; o < bsz; o += 64)
				_mm_prefetch((const char *)blk + KERNELS_PREFETCH_K + o, _MM_HINT_T0);
			__m512i wc[4], sc[4];
			__m256 mins;
			kq_decode(blk, off_qs, off_qh, has_qh, wc, sc, &mins);
			quant_f16 d16;
			memcpy(&d16, blk, sizeof d16);
			float dw = f16(d16);
			for (int t = 0; t < N; t++) {
				const struct xk_block *xb = (const struct xk_block *)(x + (size_t)t * xs) + ib;
				__m512i s0 =
				    _mm512_dpwssd_epi32(_mm512_setzero_si512(),
				                        _mm512_maddubs_epi16(wc[0], _mm512_load_si512(xb->qs)), sc[0]);
				__m512i s1 = _mm512_dpwssd_epi32(
				    _mm512_setzero_si512(), _mm512_maddubs_epi16(wc[1], _mm512_load_si512(xb->qs + 64)),
				    sc[1]);
				s0 = _mm512_dpwssd_epi32(
				    s0, _mm512_maddubs_epi16(wc[2], _mm512_load_si512(xb->qs + 128)), sc[2]);
				s1 = _mm512_dpwssd_epi32(
				    s1, _mm512_maddubs_epi16(wc[3], _mm512_load_si512(xb->qs + 192)), sc[3]);
				acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
				                            _mm512_set1_ps(dw * xb->d), acc[r][t]);
				/* the mins' terms negated as they are added (exactly -(a * b) + c) */
				accm[r][t] = _mm256_fnmadd_ps(mins, _mm256_load_ps(xb->bs32), accm[r][t]);
			}
		}
	}
	for (int r = 0; r < R; r++)
		reduce_store2(acc[r], accm[r], y + r, ys, N);
}

INLINE void tile_q4_K(int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, size_t ys,
                      const int R, const int N)
{
	tile_kq(n, w, ws, sizeof(struct block_q4_K), offsetof(struct block_q4_K, qs), 0, false, x, xs, y, ys, R, N);
}

INLINE void tile_q5_K(int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, size_t ys,
                      const int R, const int N)
{
	tile_kq(n, w, ws, sizeof(struct block_q5_K), offsetof(struct block_q5_K, qs), offsetof(struct block_q5_K, qh),
	        true, x, xs, y, ys, R, N);
}

/* Q6_K: codes 0..63 (value + 32) as four registers of 64 and the scale of each
 * 16 elements as int16 pairs; the offset 32 goes through the bsums. */
INLINE void q6_decode(const struct block_q6_K *bb, __m512i *wc, __m512i *sc, __m256i *sc16)
{
	const __m512i lo4 = _mm512_set1_epi8(15), lo2 = _mm512_set1_epi8(3);
	*sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)bb->scales));
	for (int h = 0; h < 2; h++) {
		__m512i l = _mm512_loadu_si512(bb->ql + 64 * h);
		__m256i qh = _mm256_loadu_si256((const __m256i *)(bb->qh + 32 * h));
		__m512i h01 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
		__m512i h23 = _mm512_srli_epi16(h01, 4);
		wc[2 * h] = _mm512_or_si512(_mm512_and_si512(l, lo4), _mm512_slli_epi16(_mm512_and_si512(h01, lo2), 4));
		wc[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), lo4),
		                                _mm512_slli_epi16(_mm512_and_si512(h23, lo2), 4));
	}
	for (int c = 0; c < 4; c++) {
		/* int16 lanes 8g..8g+7 of chunk c get scale 4c + g */
		__m512i idx =
		    _mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
		                                       15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
		                      3);
		idx = _mm512_add_epi16(idx, _mm512_set1_epi16((short)(4 * c)));
		sc[c] = _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(*sc16));
	}
}

/* R rows of Q6_K against N tokens' Q8_K activations, block by block as tile_kq. */
INLINE void tile_q6_K(int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, size_t ys,
                      const int R, const int N)
{
	__m512 acc[KERNELS_NR][KERNELS_NT];
	__m256 accm[KERNELS_NR][KERNELS_NT];
	zero2(acc, accm, R, N);
	for (int64_t ib = 0; ib < n / QK_K; ib++) {
		for (int r = 0; r < R; r++) {
			const struct block_q6_K *bb = (const struct block_q6_K *)(w + (size_t)r * ws) + ib;
			for (size_t o = 0; o < sizeof(*bb); o += 64)
				_mm_prefetch((const char *)bb + KERNELS_PREFETCH_K + o, _MM_HINT_T0);
			__m512i wc[4], sc[4];
			__m256i sc16;
			q6_decode(bb, wc, sc, &sc16);
			float d = f16(bb->d);
			kq_codes_accumulate(wc, sc, d, x, xs, ib, acc[r], N);
			bsums_accumulate(sc16, 32.0f * d, x, xs, ib, accm[r], N);
		}
	}
	for (int r = 0; r < R; r++)
		reduce_store2(acc[r], accm[r], y + r, ys, N);
}

KERNELS_DEFINE_GEMM_RN(q4_K)
KERNELS_DEFINE_GEMM_RN(q5_K)
KERNELS_DEFINE_GEMM_RN(q6_K)

static bool q8_0_family(enum quant_type wtype)
{
	return wtype == QUANT_Q8_0 || wtype == QUANT_Q4_0 || wtype == QUANT_Q5_0;
}

static size_t act_row_size(enum quant_type wtype, int64_t n)
{
	if (wtype == QUANT_Q4_K || wtype == QUANT_Q5_K)
		return (size_t)(n / QK_K) * sizeof(struct xk_block);
	return q8_0_family(wtype) ? x8_row_size(n) : quant_row_size(kernels_act_type(wtype), n);
}

static void act_quantize(enum quant_type wtype, const float *x, void *dst, int64_t n)
{
	if (q8_0_family(wtype))
		x8_quantize(x, dst, n);
	else if (wtype == QUANT_Q4_K || wtype == QUANT_Q5_K)
		xk_quantize(x, dst, n);
	else if (wtype == QUANT_Q6_K)
		for (int64_t ib = 0; ib < n / QK_K; ib++)
			kernels_avx512_q8_K(x + ib * QK_K, (struct block_q8_K *)dst + ib);
	else
		quant_quantize_row(kernels_act_type(wtype), x, dst, n);
}

void kernels_avx512_fill(struct kernels *k)
{
	k->act_row_size = act_row_size;
	k->act_quantize = act_quantize;
	k->gemm[QUANT_F32] = gemm_f32;
	k->gemm[QUANT_F16] = gemm_f16;
	k->gemm[QUANT_BF16] = gemm_bf16;
	k->gemm[QUANT_Q8_0] = gemm_q8_0;
	k->gemm[QUANT_Q4_0] = gemm_q4_0;
	k->gemm[QUANT_Q5_0] = gemm_q5_0;
	k->gemm[QUANT_Q4_K] = gemm_q4_K;
	k->gemm[QUANT_Q5_K] = gemm_q5_K;
	k->gemm[QUANT_Q6_K] = gemm_q6_K;
}
