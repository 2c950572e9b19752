/* kernels_avx2: AVX2/FMA/F16C versions of the kernels, for CPUs without
 * AVX-512 (compiled with those instructions enabled; kernels.c only calls
 * them when the CPU has them).
 *
 * As in kernels_avx512.c, the quantized kernels work on tiles of up to
 * KERNELS_NR rows times KERNELS_NT tokens (a weight block decoded once serves
 * each token, an activation block each row), each output's operations do not
 * depend on the tile, and the integer sums equal the scalar kernels'. Signed
 * codes (Q4_0, Q5_0, Q8_0) use vpsignb to move the weight's sign onto the
 * activation, which is safe because Q8_0 activations lie in [-127, 127];
 * K-quant codes are unsigned and their offsets go through the activations'
 * block sums. Activations use the standard block layouts. */
#include "runtime/kernels.h"
#include "runtime/kernels_tile.h"

#include <immintrin.h>
#include <string.h>

#define KERNELS_NT 4
#define KERNELS_NR 2
#define INLINE static inline __attribute__((always_inline))

INLINE float f16(quant_f16 h)
{
	return _cvtsh_ss(h);
}

INLINE float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

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

/* ---- F32, F16, BF16 ---- */

INLINE __m256 load_f32(const void *p)
{
	return _mm256_loadu_ps(p);
}
INLINE __m256 load_f16(const void *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128(p));
}
INLINE __m256 load_bf16(const void *p)
{
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(p)), 16));
}

#define KERNELS_FLOAT_ROW(name, elt, load, tail)                                                  \
	INLINE void row_##name(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, float *y,    \
	                       size_t ys, const int N)                                                 \
	{                                                                                              \
		__m256 acc[KERNELS_NT];                                                                \
		for (int t = 0; t < N; t++)                                                            \
			acc[t] = _mm256_setzero_ps();                                                  \
		int64_t i = 0;                                                                         \
		for (; i + 8 <= n; i += 8) {                                                           \
			__m256 wv = load(w + i * (elt));                                               \
			for (int t = 0; t < N; t++)                                                    \
				acc[t] = _mm256_fmadd_ps(wv, load(x + (size_t)t * xs + i * (elt)), acc[t]); \
		}                                                                                      \
		for (int t = 0; t < N; t++) {                                                          \
			float s = hsum(acc[t]);                                                        \
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

/* ---- Q8_0, Q4_0, Q5_0 with Q8_0 activations ---- */

INLINE __m256i nibbles(const uint8_t *qs)
{
	__m128i v = _mm_loadu_si128((const __m128i *)qs);
	__m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
	return _mm256_and_si256(z, _mm256_set1_epi8(15));
}

/* The 32 bits of m as 32 bytes: 0xff where the bit is set. */
INLINE __m256i bits_to_bytes(uint32_t m)
{
	const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
	                                      3, 3, 3, 3, 3, 3, 3, 3);
	const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
	__m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)m), shuf);
	return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

INLINE __m256i q8_0_codes(const uint8_t *w, int64_t ib)
{
	return _mm256_loadu_si256((const __m256i *)((const struct block_q8_0 *)w + ib)->qs);
}

INLINE __m256i q4_0_codes(const uint8_t *w, int64_t ib)
{
	return _mm256_sub_epi8(nibbles(((const struct block_q4_0 *)w + ib)->qs), _mm256_set1_epi8(8));
}

INLINE __m256i q5_0_codes(const uint8_t *w, int64_t ib)
{
	const struct block_q5_0 *b = (const struct block_q5_0 *)w + ib;
	uint32_t qh;
	memcpy(&qh, b->qh, 4);
	__m256i hi = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(16));
	return _mm256_sub_epi8(_mm256_or_si256(nibbles(b->qs), hi), _mm256_set1_epi8(16));
}

/* R rows (ws bytes apart) of a Q8_0-family type times N tokens: each decoded
 * weight block serves every token and each activation block every row. */
#define KERNELS_Q8_0_TILE(name, btype, codes)                                                                          \
	INLINE void tile_##name(int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y,         \
	                        size_t ys, const int R, const int N)                                                   \
	{                                                                                                              \
		__m256 acc[KERNELS_NR][KERNELS_NT];                                                                    \
		for (int r = 0; r < R; r++)                                                                            \
			for (int t = 0; t < N; t++)                                                                    \
				acc[r][t] = _mm256_setzero_ps();                                                       \
		const __m256i ones = _mm256_set1_epi16(1);                                                             \
		for (int64_t ib = 0; ib < n / 32; ib++) {                                                              \
			__m256i wq[KERNELS_NR], aw[KERNELS_NR];                                                        \
			float dw[KERNELS_NR];                                                                          \
			for (int r = 0; r < R; r++) {                                                                  \
				const btype *b = (const btype *)(w + (size_t)r * ws) + ib;                             \
				_mm_prefetch((const char *)b + KERNELS_PREFETCH_Q8, _MM_HINT_T0);                      \
				wq[r] = codes(w + (size_t)r * ws, ib);                                                 \
				aw[r] = _mm256_sign_epi8(wq[r], wq[r]);                                                \
				dw[r] = f16(b->d);                                                                     \
			}                                                                                              \
			for (int t = 0; t < N; t++) {                                                                  \
				const struct block_q8_0 *xb = (const struct block_q8_0 *)(x + (size_t)t * xs) + ib;    \
				__m256i xv = _mm256_loadu_si256((const __m256i *)xb->qs);                              \
				float dx = f16(xb->d);                                                                 \
				for (int r = 0; r < R; r++) {                                                          \
					__m256i p = _mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(xv, wq[r]));          \
					__m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));                     \
					acc[r][t] = _mm256_fmadd_ps(s, _mm256_set1_ps(dw[r] * dx), acc[r][t]);         \
				}                                                                                      \
			}                                                                                              \
		}                                                                                                      \
		for (int r = 0; r < R; r++)                                                                            \
			for (int t = 0; t < N; t++)                                                                    \
				y[(size_t)t * ys + r] = hsum(acc[r][t]);                                               \
	}

KERNELS_Q8_0_TILE(q8_0, struct block_q8_0, q8_0_codes)
KERNELS_Q8_0_TILE(q4_0, struct block_q4_0, q4_0_codes)
KERNELS_Q8_0_TILE(q5_0, struct block_q5_0, q5_0_codes)
KERNELS_DEFINE_GEMM_RN(q8_0)
KERNELS_DEFINE_GEMM_RN(q4_0)
KERNELS_DEFINE_GEMM_RN(q5_0)

/* ---- K-quants with Q8_K activations ---- */

/* Scales (bytes 0-7) and mins (8-15) of a Q4_K/Q5_K block. */
INLINE void kq_unpack(const uint8_t *q, uint8_t out[16])
{
	uint32_t a, b, c;
	memcpy(&a, q, 4);
	memcpy(&b, q + 4, 4);
	memcpy(&c, q + 8, 4);
	uint32_t v[4] = {a & 0x3f3f3f3f, (c & 0x0f0f0f0f) | (((a >> 6) & 0x03030303) << 4), b & 0x3f3f3f3f,
	                 ((c >> 4) & 0x0f0f0f0f) | (((b >> 6) & 0x03030303) << 4)};
	memcpy(out, v, 16);
}

/* Adds sum_t of 8 (Q4_K/Q5_K) sub-blocks into acc/accm; wc[j] holds sub-block j's 32 codes. */
INLINE void kq_accumulate(const __m256i *wc, const uint8_t *sm, float d, float dmin, const uint8_t *x, size_t xs,
                          int64_t ib, __m256 *acc, const int N)
{
	__m256i mins = _mm256_cvtepu8_epi16(_mm_set_epi16(sm[15] * 257, sm[14] * 257, sm[13] * 257, sm[12] * 257,
	                                                  sm[11] * 257, sm[10] * 257, sm[9] * 257, sm[8] * 257));
	for (int t = 0; t < N; t++) {
		const struct block_q8_K *xb = (const struct block_q8_K *)(x + (size_t)t * xs) + ib;
		__m256i s = _mm256_setzero_si256();
		for (int j = 0; j < 8; j++) {
			__m256i p = _mm256_maddubs_epi16(wc[j], _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * j)));
			s = _mm256_add_epi32(s, _mm256_madd_epi16(p, _mm256_set1_epi16(sm[j])));
		}
		__m256i m = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xb->bsums), mins);
		acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * xb->d), acc[t]);
		acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(-dmin * xb->d), acc[t]);
	}
}

/* The 8 registers of 32 codes of a Q4_K (q5: Q5_K) block, wc[j] sub-block j. */
INLINE void kq_decode(const uint8_t *blk, bool q5, __m256i *wc)
{
	const uint8_t *qs = q5 ? ((const struct block_q5_K *)blk)->qs : ((const struct block_q4_K *)blk)->qs;
	__m256i hv =
	    q5 ? _mm256_loadu_si256((const __m256i *)((const struct block_q5_K *)blk)->qh) : _mm256_setzero_si256();
	const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
	for (int c = 0; c < 4; c++) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
		wc[2 * c] = _mm256_and_si256(v, m4);
		wc[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
		if (q5) {
			wc[2 * c] = _mm256_or_si256(
			    wc[2 * c], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 2 * c), one), 4));
			wc[2 * c + 1] = _mm256_or_si256(
			    wc[2 * c + 1],
			    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 2 * c + 1), one), 4));
		}
	}
}

/* R rows of Q4_K/Q5_K times N tokens, block by block: the tile's activation
 * blocks stay in the L1 cache while each row's block meets them. */
INLINE void tile_kq(int64_t n, const uint8_t *w, size_t ws, bool q5, const uint8_t *x, size_t xs, float *y, size_t ys,
                    const int R, const int N)
{
	size_t bsz = q5 ? sizeof(struct block_q5_K) : sizeof(struct block_q4_K);
	__m256 acc[KERNELS_NR][KERNELS_NT];
	for (int r = 0; r < R; r++)
		for (int t = 0; t < N; t++)
			acc[r][t] = _mm256_setzero_ps();
	for (int64_t ib = 0; ib < n / QK_K; ib++) {
		for (int r = 0; r < R; r++) {
			const uint8_t *blk = w + (size_t)r * ws + (size_t)ib * bsz;
			for (size_t o = 0; o < bsz; o += 64)
				_mm_prefetch((const char *)blk + KERNELS_PREFETCH_K + o, _MM_HINT_T0);
			quant_f16 dd[2];
			uint8_t sm[16];
			memcpy(dd, blk, 4);
			kq_unpack(blk + 4, sm);
			__m256i wc[8];
			kq_decode(blk, q5, wc);
			kq_accumulate(wc, sm, f16(dd[0]), f16(dd[1]), x, xs, ib, acc[r], N);
		}
	}
	for (int r = 0; r < R; r++)
		for (int t = 0; t < N; t++)
			y[(size_t)t * ys + r] = hsum(acc[r][t]);
}

INLINE void tile_q4_K(int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, size_t ys,
                      const int R, const int N)
{
	tile_kq(n, w, ws, false, x, xs, y, ys, R, N);
}

INLINE void tile_q5_K(int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, size_t ys,
                      const int R, const int N)
{
	tile_kq(n, w, ws, true, x, xs, y, ys, R, N);
}

/* Adds a Q6_K block (codes wc, int8 scales of each 16 elements) times N tokens' block ib. */
INLINE void q6_accumulate(const struct block_q6_K *bb, const __m256i *wc, const uint8_t *x, size_t xs, int64_t ib,
                          __m256 *acc, const int N)
{
	__m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)bb->scales));
	/* int16 lanes 0-7 of sub-block j's products get scale 2j, lanes 8-15 scale 2j+1 */
	__m256i scp[8];
	for (int j = 0; j < 8; j++)
		scp[j] = _mm256_setr_m128i(_mm_set1_epi16((short)bb->scales[2 * j]),
		                           _mm_set1_epi16((short)bb->scales[2 * j + 1]));
	float d = f16(bb->d);
	for (int t = 0; t < N; t++) {
		const struct block_q8_K *xb = (const struct block_q8_K *)(x + (size_t)t * xs) + ib;
		__m256i s = _mm256_setzero_si256();
		for (int j = 0; j < 8; j++) {
			__m256i p = _mm256_maddubs_epi16(wc[j], _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * j)));
			s = _mm256_add_epi32(s, _mm256_madd_epi16(p, scp[j]));
		}
		__m256i m = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xb->bsums), sc16);
		acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * xb->d), acc[t]);
		acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(-32.0f * d * xb->d), acc[t]);
	}
}

/* Q6_K: codes 0..63 (value + 32) as 8 registers of 32, wc[j] elements 32j..32j+31. */
INLINE void q6_decode(const struct block_q6_K *bb, __m256i *wc)
{
	const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
	for (int h = 0; h < 2; h++) {
		__m256i l0 = _mm256_loadu_si256((const __m256i *)(bb->ql + 64 * h));
		__m256i l1 = _mm256_loadu_si256((const __m256i *)(bb->ql + 64 * h + 32));
		__m256i qh = _mm256_loadu_si256((const __m256i *)(bb->qh + 32 * h));
		wc[4 * h] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
		wc[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
		                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
		wc[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
		                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
		wc[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
		                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
	}
}

/* R rows of Q6_K times N tokens, block by block as tile_kq. The offset 32 goes through the bsums. */
INLINE void tile_q6_K(int64_t n, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, size_t ys,
                      const int R, const int N)
{
	__m256 acc[KERNELS_NR][KERNELS_NT];
	for (int r = 0; r < R; r++)
		for (int t = 0; t < N; t++)
			acc[r][t] = _mm256_setzero_ps();
	for (int64_t ib = 0; ib < n / QK_K; ib++) {
		for (int r = 0; r < R; r++) {
			const struct block_q6_K *bb = (const struct block_q6_K *)(w + (size_t)r * ws) + ib;
			for (size_t o = 0; o < sizeof(*bb); o += 64)
				_mm_prefetch((const char *)bb + KERNELS_PREFETCH_K + o, _MM_HINT_T0);
			__m256i wc[8];
			q6_decode(bb, wc);
			q6_accumulate(bb, wc, x, xs, ib, acc[r], N);
		}
	}
	for (int r = 0; r < R; r++)
		for (int t = 0; t < N; t++)
			y[(size_t)t * ys + r] = hsum(acc[r][t]);
}

KERNELS_DEFINE_GEMM_RN(q4_K)
KERNELS_DEFINE_GEMM_RN(q5_K)
KERNELS_DEFINE_GEMM_RN(q6_K)

/* One block of 32 activations as Q8_0, bit for bit as quant_quantize_row: the
 * largest magnitude over 127 as scale, codes rounded to nearest (ties to even). */
static void q8_0_block(const float *x, struct block_q8_0 *b)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 v[4], m = _mm256_setzero_ps();
	for (int i = 0; i < 4; i++) {
		v[i] = _mm256_loadu_ps(x + 8 * i);
		m = _mm256_max_ps(_mm256_andnot_ps(sign, v[i]), m);
	}
	__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
	m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
	m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
	float d = _mm_cvtss_f32(m4) / 127.0f;
	float id = d != 0.0f ? 1.0f / d : 0.0f;
	b->d = quant_f32_to_f16(d);
	__m256 vid = _mm256_set1_ps(id);
	__m256i q[4];
	for (int i = 0; i < 4; i++)
		q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid));
	/* packing works within 128-bit halves: 4-value groups come out as 0,2,4,6,1,3,5,7 */
	__m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
	p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
	_mm256_storeu_si256((__m256i *)b->qs, p);
}

static void act_quantize(enum quant_type wtype, const float *x, void *dst, int64_t n)
{
	if (kernels_act_type(wtype) == QUANT_Q8_0)
		for (int64_t ib = 0; ib < n / QK8_0; ib++)
			q8_0_block(x + ib * QK8_0, (struct block_q8_0 *)dst + ib);
	else
		quant_quantize_row(kernels_act_type(wtype), x, dst, n);
}

void kernels_avx2_fill(struct kernels *k)
{
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
