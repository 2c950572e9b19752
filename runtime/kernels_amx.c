/* kernels_amx: batched products on the AMX tile unit (Intel AMX-INT8), for
 * prompts, where the same weights meet many tokens.
 *
 * A chunk of 16 weight rows is decoded once into a panel of signed int8 codes
 * (row-major, n bytes per row) with a float scale per sub-block and row (and,
 * for Q4_K/Q5_K, a float "min" per sub-block and row). The activations of
 * each group of 16 tokens are rounded exactly as the other kernels round them
 * (to kernels_act_type, bit for bit as quant_quantize_row) and laid out as the tile unit wants
 * its second operand: four consecutive codes of each of the 16 tokens per
 * 64-byte row. One tile product per sub-block gives the 16 x 16 exact integer
 * sums, which are then scaled and added in F32 as in the other kernels.
 *
 * Codes: Q8_0 as stored, Q4_0 q-8, Q5_0 q-16, Q6_K q-32 (all signed, so no
 * offset terms), Q4_K/Q5_K q (unsigned, below 32) with the min applied
 * through the activations' per-sub-block sums. */
#include "runtime/kernels.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_ARCH_REQ_XCOMP_PERM 0x1023
#define AMX_XFEATURE_XTILEDATA 18

struct amx_tilecfg {
	uint8_t palette, start_row;
	uint8_t reserved[14];
	uint16_t colsb[16];
	uint8_t rows[16];
};

/* Sub-block length: the span of one scale (and of one tile product). */
static int amx_sub(enum quant_type t)
{
	return t == QUANT_Q6_K ? 16 : 32;
}

static bool amx_kquant(enum quant_type t)
{
	return t == QUANT_Q4_K || t == QUANT_Q5_K || t == QUANT_Q6_K;
}

bool kernels_amx_supports(enum quant_type t, int64_t n)
{
	switch (t) {
	case QUANT_Q8_0:
	case QUANT_Q4_0:
	case QUANT_Q5_0: return n % QK8_0 == 0;
	case QUANT_Q4_K:
	case QUANT_Q5_K:
	case QUANT_Q6_K: return n % QK_K == 0;
	default: return false;
	}
}

bool kernels_amx_init(void)
{
	static atomic_int state; /* 0 unknown, 1 usable, 2 not */
	int s = atomic_load(&state);
	if (s == 0) {
		s = syscall(SYS_arch_prctl, AMX_ARCH_REQ_XCOMP_PERM, AMX_XFEATURE_XTILEDATA) == 0 ? 1 : 2;
		atomic_store(&state, s);
	}
	return s == 1;
}

/* ---- activations ---- */

static int64_t amx_act_block(enum quant_type t)
{
	return amx_kquant(t) ? QK_K : QK8_0;
}

/* Bytes of one 16-token group's panel. */
static size_t amx_group_size(enum quant_type t, int64_t n)
{
	size_t s = (size_t)n * 16 + (size_t)(n / amx_act_block(t)) * 16 * sizeof(float);
	if (amx_kquant(t))
		s += (size_t)(n / 32) * 16 * sizeof(float);
	return (s + 63) & ~(size_t)63;
}

size_t kernels_amx_act_size(enum quant_type t, int64_t n, int64_t nt)
{
	return amx_group_size(t, n) * (size_t)((nt + 15) / 16);
}

/* Writes token slot ts (0..15) of a group panel from the F32 row x. */
static void amx_prepare_token(enum quant_type t, const float *x, int64_t n, uint8_t *g, int ts)
{
	int64_t blk = amx_act_block(t), nblk = n / blk;
	float *dx = (float *)(g + (size_t)n * 16);
	float *xsum = dx + nblk * 16;
	for (int64_t b = 0; b < nblk; b++) {
		const int8_t *q;
		union {
			struct block_q8_K k;
			struct block_q8_0 z;
		} u;
		if (amx_kquant(t)) {
			kernels_avx512_q8_K(x + b * blk, &u.k);
			q = u.k.qs;
			dx[b * 16 + ts] = u.k.d;
			for (int j = 0; j < 8; j++)
				xsum[(b * 8 + j) * 16 + ts] = u.k.d * (float)(u.k.bsums[2 * j] + u.k.bsums[2 * j + 1]);
		} else {
			kernels_avx512_q8_0(x + b * blk, &u.z);
			q = u.z.qs;
			dx[b * 16 + ts] = _cvtsh_ss(u.z.d);
		}
		uint8_t *dst = g + (size_t)(b * blk / 4) * 64 + (size_t)ts * 4;
		for (int64_t k = 0; k < blk; k += 4)
			memcpy(dst + (size_t)(k / 4) * 64, q + k, 4);
	}
}

void kernels_amx_prepare(enum quant_type t, const float *x, int64_t n, int64_t t0, int64_t t1, void *dst)
{
	size_t gs = amx_group_size(t, n);
	for (int64_t tk = t0; tk < t1; tk++) {
		uint8_t *g = (uint8_t *)dst + (size_t)(tk / 16) * gs;
		if (tk % 16 == 0)
			memset(g, 0, gs);
		amx_prepare_token(t, x + tk * n, n, g, (int)(tk % 16));
	}
}

/* ---- weight panels ---- */

struct amx_panel {
	int8_t *codes; /* 16 rows of n */
	float *sw;     /* [sub-block][16] */
	float *mw;     /* [sub-block of 32][16], Q4_K/Q5_K */
};

size_t kernels_amx_scratch_size(int64_t n)
{
	return (size_t)n * 16 + (size_t)(n / 16) * 16 * sizeof(float) + (size_t)(n / 32) * 16 * sizeof(float) +
	       16 * 16 * sizeof(int32_t) + 256;
}

static inline void amx_kq_scale_min(int j, const uint8_t *q, int *sc, int *mn)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*mn = q[j + 4] & 63;
	} else {
		*sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
		*mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
	}
}

/* Nibbles of 16 bytes as 32 codes in element order, minus off. */
static inline __m256i amx_nibbles(const uint8_t *qs, int off)
{
	__m128i v = _mm_loadu_si128((const __m128i *)qs);
	__m128i lo = _mm_and_si128(v, _mm_set1_epi8(15)), hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(15));
	__m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
	return _mm256_sub_epi8(z, _mm256_set1_epi8((char)off));
}

static void amx_decode_row(enum quant_type t, const uint8_t *w, int64_t n, int r, struct amx_panel *p)
{
	int8_t *c = p->codes + (size_t)r * (size_t)n;
	if (t == QUANT_Q8_0 || t == QUANT_Q4_0 || t == QUANT_Q5_0) {
		for (int64_t b = 0; b < n / 32; b++, c += 32) {
			__m256i z;
			quant_f16 d;
			if (t == QUANT_Q8_0) {
				const struct block_q8_0 *bb = (const struct block_q8_0 *)w + b;
				z = _mm256_loadu_si256((const __m256i *)bb->qs);
				d = bb->d;
			} else if (t == QUANT_Q4_0) {
				const struct block_q4_0 *bb = (const struct block_q4_0 *)w + b;
				z = amx_nibbles(bb->qs, 8);
				d = bb->d;
			} else {
				const struct block_q5_0 *bb = (const struct block_q5_0 *)w + b;
				uint32_t qh;
				memcpy(&qh, bb->qh, 4);
				z = _mm256_add_epi8(amx_nibbles(bb->qs, 16),
				                    _mm256_maskz_mov_epi8(_cvtu32_mask32(qh), _mm256_set1_epi8(16)));
				d = bb->d;
			}
			_mm256_storeu_si256((__m256i *)c, z);
			p->sw[b * 16 + r] = _cvtsh_ss(d);
		}
		return;
	}
	for (int64_t b = 0; b < n / QK_K; b++, c += QK_K) {
		if (t == QUANT_Q6_K) {
			const struct block_q6_K *bb = (const struct block_q6_K *)w + b;
			for (int h = 0; h < 2; h++) {
				__m512i l = _mm512_loadu_si512(bb->ql + 64 * h);
				__m256i qh = _mm256_loadu_si256((const __m256i *)(bb->qh + 32 * h));
				__m512i h01 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
				__m512i h23 = _mm512_srli_epi16(h01, 4);
				__m512i lo4 = _mm512_set1_epi8(15), lo2 = _mm512_set1_epi8(3), o = _mm512_set1_epi8(32);
				__m512i a = _mm512_or_si512(_mm512_and_si512(l, lo4), _mm512_slli_epi16(_mm512_and_si512(h01, lo2), 4));
				__m512i e = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), lo4),
				                            _mm512_slli_epi16(_mm512_and_si512(h23, lo2), 4));
				_mm512_storeu_si512(c + 128 * h, _mm512_sub_epi8(a, o));
				_mm512_storeu_si512(c + 128 * h + 64, _mm512_sub_epi8(e, o));
			}
			float d = _cvtsh_ss(bb->d);
			for (int g = 0; g < 16; g++)
				p->sw[(b * 16 + g) * 16 + r] = d * (float)bb->scales[g];
			continue;
		}
		bool q5 = t == QUANT_Q5_K;
		const uint8_t *blk = w + (size_t)b * (q5 ? sizeof(struct block_q5_K) : sizeof(struct block_q4_K));
		const uint8_t *qs = q5 ? ((const struct block_q5_K *)blk)->qs : ((const struct block_q4_K *)blk)->qs;
		const uint8_t *scales = q5 ? ((const struct block_q5_K *)blk)->scales : ((const struct block_q4_K *)blk)->scales;
		quant_f16 dd[2];
		memcpy(dd, blk, 4);
		__m256i hv = q5 ? _mm256_loadu_si256((const __m256i *)((const struct block_q5_K *)blk)->qh)
		                : _mm256_setzero_si256();
		for (int k = 0; k < 4; k++) {
			__m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * k));
			__m256i lo = _mm256_and_si256(v, _mm256_set1_epi8(15));
			__m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(15));
			if (q5) {
				__m256i one = _mm256_set1_epi8(1);
				lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 2 * k), one), 4));
				hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 2 * k + 1), one), 4));
			}
			_mm256_storeu_si256((__m256i *)(c + 64 * k), lo);
			_mm256_storeu_si256((__m256i *)(c + 64 * k + 32), hi);
		}
		float d = _cvtsh_ss(dd[0]), dmin = _cvtsh_ss(dd[1]);
		for (int j = 0; j < 8; j++) {
			int sc, mn;
			amx_kq_scale_min(j, scales, &sc, &mn);
			p->sw[(b * 8 + j) * 16 + r] = d * (float)sc;
			p->mw[(b * 8 + j) * 16 + r] = dmin * (float)mn;
		}
	}
}

/* ---- products ---- */

static void amx_config(int sub)
{
	struct amx_tilecfg cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.palette = 1;
	cfg.rows[0] = 16; /* C: 16 rows x 16 int32 */
	cfg.colsb[0] = 64;
	cfg.rows[1] = 16; /* A: 16 weight rows x sub codes */
	cfg.colsb[1] = (uint16_t)sub;
	cfg.rows[2] = (uint8_t)(sub / 4); /* B: sub/4 rows of 16 tokens x 4 codes */
	cfg.colsb[2] = 64;
	_tile_loadconfig(&cfg);
}

/* 16 rows of the panel times one 16-token group; acc[r] gets the 16 tokens' sums of row r. */
static void amx_group(enum quant_type t, int64_t n, const struct amx_panel *p, const uint8_t *g,
                      int32_t *ct, __m512 *acc)
{
	int sub = amx_sub(t);
	int64_t blk = amx_act_block(t), nblk = n / blk, per = blk / sub;
	const float *dx = (const float *)(g + (size_t)n * 16);
	const float *xsum = dx + nblk * 16;
	for (int r = 0; r < 16; r++)
		acc[r] = _mm512_setzero_ps();
	for (int64_t b = 0; b < nblk; b++) {
		__m512 tmp[16];
		for (int r = 0; r < 16; r++)
			tmp[r] = _mm512_setzero_ps();
		for (int64_t s = b * per; s < (b + 1) * per; s++) {
			_tile_zero(0);
			_tile_loadd(1, p->codes + s * sub, n);
			_tile_loadd(2, g + (size_t)(s * sub / 4) * 64, 64);
			_tile_dpbssd(0, 1, 2);
			_tile_stored(0, ct, 64);
			const float *sw = p->sw + s * 16;
			for (int r = 0; r < 16; r++)
				tmp[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(ct + 16 * r)),
				                         _mm512_set1_ps(sw[r]), tmp[r]);
		}
		__m512 dxv = _mm512_loadu_ps(dx + b * 16);
		for (int r = 0; r < 16; r++)
			acc[r] = _mm512_fmadd_ps(tmp[r], dxv, acc[r]);
		if (t == QUANT_Q4_K || t == QUANT_Q5_K) {
			for (int j = 0; j < 8; j++) {
				__m512 xs = _mm512_loadu_ps(xsum + (b * 8 + j) * 16);
				const float *mw = p->mw + (b * 8 + j) * 16;
				for (int r = 0; r < 16; r++)
					acc[r] = _mm512_fnmadd_ps(_mm512_set1_ps(mw[r]), xs, acc[r]);
			}
		}
	}
}

void kernels_amx_rows(enum quant_type t, int64_t n, const void *w, size_t ws, int nr, const void *xb,
                      int64_t nt, float *y, size_t ys, void *scratch)
{
	uint8_t *s = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
	int32_t *ct = (int32_t *)s;
	struct amx_panel p;
	p.codes = (int8_t *)(s + 1024);
	p.sw = (float *)(p.codes + (size_t)n * 16);
	p.mw = p.sw + (size_t)(n / 16) * 16;
	if (nr < 16) {
		memset(p.codes, 0, (size_t)n * 16);
		memset(p.sw, 0, (size_t)(n / 16) * 16 * sizeof(float));
		memset(p.mw, 0, (size_t)(n / 32) * 16 * sizeof(float));
	}
	for (int r = 0; r < nr; r++)
		amx_decode_row(t, (const uint8_t *)w + (size_t)r * ws, n, r, &p);

	amx_config(amx_sub(t));
	size_t gs = amx_group_size(t, n);
	for (int64_t t0 = 0; t0 < nt; t0 += 16) {
		__m512 acc[16];
		float out[16][16];
		amx_group(t, n, &p, (const uint8_t *)xb + (size_t)(t0 / 16) * gs, ct, acc);
		for (int r = 0; r < 16; r++)
			_mm512_storeu_ps(out[r], acc[r]);
		int ntg = nt - t0 < 16 ? (int)(nt - t0) : 16;
		for (int tk = 0; tk < ntg; tk++)
			for (int r = 0; r < nr; r++)
				y[(size_t)(t0 + tk) * ys + (size_t)r] = out[r][tk];
	}
	_tile_release();
}
