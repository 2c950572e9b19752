/* quant: sizes of GGUF tensor types, half-precision conversions, and the
 * conversion of stored rows back to F32.
 *
 * Dequantization here is the exact definition of each format: the kernels in
 * matmul.c may compute faster by other routes, but must agree with these
 * functions to F32 rounding. Conversions to half precision round to nearest,
 * ties to even, and keep infinities, NaNs and subnormals. */
#include "runtime/quant.h"

#include <assert.h>
#include <string.h>

struct type_desc {
	const char *name;
	size_t block;  /* elements per block; 0 = not computable here */
	size_t nbytes; /* bytes per block */
};

static const struct type_desc types[QUANT_TYPE_COUNT] = {
	[QUANT_F32] = {"F32", 1, 4},
	[QUANT_F16] = {"F16", 1, 2},
	[QUANT_Q4_0] = {"Q4_0", QK4_0, sizeof(struct block_q4_0)},
	[QUANT_Q4_1] = {"Q4_1", 0, 0},
	[QUANT_Q5_0] = {"Q5_0", QK5_0, sizeof(struct block_q5_0)},
	[QUANT_Q5_1] = {"Q5_1", 0, 0},
	[QUANT_Q8_0] = {"Q8_0", QK8_0, sizeof(struct block_q8_0)},
	[QUANT_Q8_1] = {"Q8_1", 0, 0},
	[QUANT_Q2_K] = {"Q2_K", 0, 0},
	[QUANT_Q3_K] = {"Q3_K", 0, 0},
	[QUANT_Q4_K] = {"Q4_K", QK_K, sizeof(struct block_q4_K)},
	[QUANT_Q5_K] = {"Q5_K", QK_K, sizeof(struct block_q5_K)},
	[QUANT_Q6_K] = {"Q6_K", QK_K, sizeof(struct block_q6_K)},
	[QUANT_Q8_K] = {"Q8_K", QK_K, sizeof(struct block_q8_K)},
	[16] = {"IQ2_XXS", 0, 0},
	[17] = {"IQ2_XS", 0, 0},
	[18] = {"IQ3_XXS", 0, 0},
	[19] = {"IQ1_S", 0, 0},
	[20] = {"IQ4_NL", 0, 0},
	[21] = {"IQ3_S", 0, 0},
	[22] = {"IQ2_S", 0, 0},
	[23] = {"IQ4_XS", 0, 0},
	[QUANT_I8] = {"I8", 0, 0},
	[QUANT_I16] = {"I16", 0, 0},
	[QUANT_I32] = {"I32", 0, 0},
	[QUANT_I64] = {"I64", 0, 0},
	[QUANT_F64] = {"F64", 0, 0},
	[29] = {"IQ1_M", 0, 0},
	[QUANT_BF16] = {"BF16", 1, 2},
	[34] = {"TQ1_0", 0, 0},
	[35] = {"TQ2_0", 0, 0},
};

/* The on-disk sizes are part of the format; a padded struct would misread every file. */
_Static_assert(sizeof(struct block_q4_0) == 18, "block_q4_0 layout");
_Static_assert(sizeof(struct block_q5_0) == 22, "block_q5_0 layout");
_Static_assert(sizeof(struct block_q8_0) == 34, "block_q8_0 layout");
_Static_assert(sizeof(struct block_q4_K) == 144, "block_q4_K layout");
_Static_assert(sizeof(struct block_q5_K) == 176, "block_q5_K layout");
_Static_assert(sizeof(struct block_q6_K) == 210, "block_q6_K layout");
_Static_assert(sizeof(struct block_q8_K) == 292, "block_q8_K layout");

const char *quant_type_name(enum quant_type t)
{
	if ((unsigned)t >= QUANT_TYPE_COUNT)
		return NULL;
	return types[t].name;
}

size_t quant_block_size(enum quant_type t)
{
	if ((unsigned)t >= QUANT_TYPE_COUNT)
		return 0;
	return types[t].block;
}

size_t quant_type_size(enum quant_type t)
{
	if ((unsigned)t >= QUANT_TYPE_COUNT || types[t].block == 0)
		return 0;
	return types[t].nbytes;
}

size_t quant_row_size(enum quant_type t, int64_t n)
{
	size_t bs = quant_block_size(t);
	if (bs == 0 || n < 0 || (uint64_t)n % bs != 0)
		return 0;
	uint64_t blocks = (uint64_t)n / bs;
	if (blocks > SIZE_MAX / types[t].nbytes)
		return 0;
	return (size_t)(blocks * types[t].nbytes);
}

static inline uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static inline float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

float quant_f16_to_f32(quant_f16 h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f;
	uint32_t man = h & 0x3ff;
	if (exp == 0x1f) /* inf or NaN: keep the payload */
		return bits_f32(sign | 0x7f800000 | (man << 13));
	if (exp != 0)
		return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
	if (man == 0)
		return bits_f32(sign);
	/* subnormal half: man * 2^-24, normal as an F32 */
	int shift = 0;
	while (!(man & 0x400)) {
		man <<= 1;
		shift++;
	}
	man &= 0x3ff;
	return bits_f32(sign | ((uint32_t)(113 - shift) << 23) | (man << 13));
}

quant_f16 quant_f32_to_f16(float f)
{
	uint32_t x = f32_bits(f);
	uint32_t sign = (x >> 16) & 0x8000;
	uint32_t ax = x & 0x7fffffff;
	if (ax > 0x7f800000) /* NaN: stays a quiet NaN */
		return (quant_f16)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
	if (ax >= 0x477ff000) /* 65520 and above round to infinity */
		return (quant_f16)(sign | 0x7c00);
	if (ax < 0x38800000) { /* below the smallest normal half, 2^-14 */
		if (ax <= 0x33000000) /* at most half of the smallest subnormal: ties to zero */
			return (quant_f16)sign;
		uint32_t e = ax >> 23;
		uint32_t m = (ax & 0x7fffff) | 0x800000;
		uint32_t shift = 126 - e; /* m * 2^(e-150) in units of 2^-24 */
		uint32_t r = m >> shift;
		uint32_t rem = m & ((1u << shift) - 1);
		uint32_t half = 1u << (shift - 1);
		if (rem > half || (rem == half && (r & 1)))
			r++;
		return (quant_f16)(sign | r);
	}
	uint32_t r = (ax >> 13) - (112u << 10);
	uint32_t rem = ax & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
		r++; /* a carry into the exponent is the correct result */
	return (quant_f16)(sign | r);
}

float quant_bf16_to_f32(quant_bf16 h)
{
	return bits_f32((uint32_t)h << 16);
}

quant_bf16 quant_f32_to_bf16(float f)
{
	uint32_t x = f32_bits(f);
	if ((x & 0x7fffffff) > 0x7f800000) /* NaN: force quiet so truncation cannot make it inf */
		return (quant_bf16)((x >> 16) | 0x40);
	x += 0x7fff + ((x >> 16) & 1);
	return (quant_bf16)(x >> 16);
}

static void deq_q4_0(const struct block_q4_0 *b, float *y, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++, y += QK4_0) {
		float d = quant_f16_to_f32(b[i].d);
		for (int j = 0; j < QK4_0 / 2; j++) {
			y[j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
			y[j + QK4_0 / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
		}
	}
}

static void deq_q5_0(const struct block_q5_0 *b, float *y, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++, y += QK5_0) {
		float d = quant_f16_to_f32(b[i].d);
		uint32_t qh;
		memcpy(&qh, b[i].qh, sizeof qh);
		for (int j = 0; j < QK5_0 / 2; j++) {
			int lo = (b[i].qs[j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
			int hi = (b[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
			y[j] = (float)(lo - 16) * d;
			y[j + QK5_0 / 2] = (float)(hi - 16) * d;
		}
	}
}

static void deq_q8_0(const struct block_q8_0 *b, float *y, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++, y += QK8_0) {
		float d = quant_f16_to_f32(b[i].d);
		for (int j = 0; j < QK8_0; j++)
			y[j] = (float)b[i].qs[j] * d;
	}
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block:
 * sub-blocks 0-3 use the low 6 bits of bytes 0-3 (scales) and 4-7 (mins);
 * 4-7 take their low 4 bits from bytes 8-11 and their top 2 bits from the
 * spare high bits of bytes 0-7. */
static inline void kq_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*mn = q[j + 4] & 63;
	} else {
		*sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
		*mn = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
	}
}

static void deq_q4_K(const struct block_q4_K *b, float *y, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++) {
		float d = quant_f16_to_f32(b[i].d);
		float dmin = quant_f16_to_f32(b[i].dmin);
		const uint8_t *q = b[i].qs;
		/* 4 groups of 64: 32 bytes whose low nibbles are sub-block 2g, high nibbles 2g+1 */
		for (int g = 0; g < 4; g++, q += 32) {
			uint8_t sc, mn;
			kq_scale_min(2 * g, b[i].scales, &sc, &mn);
			float d1 = d * sc, m1 = dmin * mn;
			kq_scale_min(2 * g + 1, b[i].scales, &sc, &mn);
			float d2 = d * sc, m2 = dmin * mn;
			for (int l = 0; l < 32; l++)
				*y++ = d1 * (float)(q[l] & 0x0f) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (float)(q[l] >> 4) - m2;
		}
	}
}

static void deq_q5_K(const struct block_q5_K *b, float *y, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++) {
		float d = quant_f16_to_f32(b[i].d);
		float dmin = quant_f16_to_f32(b[i].dmin);
		const uint8_t *q = b[i].qs;
		const uint8_t *qh = b[i].qh;
		/* as Q4_K, with sub-block s's fifth bit in bit s of qh[l] */
		for (int g = 0; g < 4; g++, q += 32) {
			uint8_t sc, mn;
			kq_scale_min(2 * g, b[i].scales, &sc, &mn);
			float d1 = d * sc, m1 = dmin * mn;
			kq_scale_min(2 * g + 1, b[i].scales, &sc, &mn);
			float d2 = d * sc, m2 = dmin * mn;
			uint8_t u1 = (uint8_t)(1u << (2 * g)), u2 = (uint8_t)(2u << (2 * g));
			for (int l = 0; l < 32; l++)
				*y++ = d1 * (float)((q[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (float)((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
		}
	}
}

static void deq_q6_K(const struct block_q6_K *b, float *y, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++) {
		float d = quant_f16_to_f32(b[i].d);
		const uint8_t *ql = b[i].ql;
		const uint8_t *qh = b[i].qh;
		const int8_t *sc = b[i].scales;
		/* two halves of 128: 64 bytes of low nibbles and 32 bytes of 2-bit highs each */
		for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8) {
			for (int l = 0; l < 32; l++) {
				int is = l / 16;
				int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
				int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
				int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
				int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
				y[l] = d * (float)sc[is] * (float)q1;
				y[l + 32] = d * (float)sc[is + 2] * (float)q2;
				y[l + 64] = d * (float)sc[is + 4] * (float)q3;
				y[l + 96] = d * (float)sc[is + 6] * (float)q4;
			}
		}
	}
}

static void deq_q8_K(const struct block_q8_K *b, float *y, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++, y += QK_K)
		for (int j = 0; j < QK_K; j++)
			y[j] = b[i].d * (float)b[i].qs[j];
}

void quant_dequantize_row(enum quant_type t, const void *src, float *dst, int64_t n)
{
	size_t bs = quant_block_size(t);
	assert(bs != 0 && n >= 0 && (uint64_t)n % bs == 0);
	int64_t nb = n / (int64_t)bs;
	switch (t) {
	case QUANT_F32:
		memcpy(dst, src, (size_t)n * sizeof(float));
		break;
	case QUANT_F16: {
		const quant_f16 *h = src;
		for (int64_t i = 0; i < n; i++)
			dst[i] = quant_f16_to_f32(h[i]);
		break;
	}
	case QUANT_BF16: {
		const quant_bf16 *h = src;
		for (int64_t i = 0; i < n; i++)
			dst[i] = quant_bf16_to_f32(h[i]);
		break;
	}
	case QUANT_Q4_0: deq_q4_0(src, dst, nb); break;
	case QUANT_Q5_0: deq_q5_0(src, dst, nb); break;
	case QUANT_Q8_0: deq_q8_0(src, dst, nb); break;
	case QUANT_Q4_K: deq_q4_K(src, dst, nb); break;
	case QUANT_Q5_K: deq_q5_K(src, dst, nb); break;
	case QUANT_Q6_K: deq_q6_K(src, dst, nb); break;
	case QUANT_Q8_K: deq_q8_K(src, dst, nb); break;
	default:
		assert(!"quant_dequantize_row: type without a block size");
	}
}
