/* quantize: F32 rows to the block types of quant.h (quant_quantize_row).
 *
 * Used for two things: rounding activations before a quantized product
 * (Q8_0 and Q8_K, on every matmul, so these two are kept simple and fast),
 * and writing test and benchmark models. The weight quantizers aim for a
 * faithful round trip, not for the best error: each block's scale maps its
 * largest magnitude to the end of the integer range, values are rounded to
 * nearest (ties to even), and the result always decodes with
 * quant_dequantize_row to within one step of the input. */
#include "runtime/quant.h"

#include <assert.h>
#include <math.h>
#include <string.h>

/* Round to nearest, ties to even (as lrintf in the default rounding mode), without
 * a library call: adding 1.5 * 2^23 leaves the rounded integer in the low mantissa
 * bits. Activations are rounded on every product, so this is on the hot path. */
static inline int quantize_nearest(float v)
{
	if (!(fabsf(v) < 4194304.0f))
		return (int)lrintf(v);
	float t = v + 12582912.0f;
	int32_t i;
	memcpy(&i, &t, sizeof i);
	return i - 0x4b400000;
}

static inline int quantize_clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* The value of largest magnitude (with its sign) among n. */
static float quantize_absmax_signed(const float *x, int n)
{
	float amax = 0.0f, max = 0.0f;
	for (int i = 0; i < n; i++) {
		float a = fabsf(x[i]);
		if (a > amax) {
			amax = a;
			max = x[i];
		}
	}
	return max;
}

static void quantize_q8_0(const float *x, struct block_q8_0 *b, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++, x += QK8_0) {
		float amax = 0.0f;
		for (int j = 0; j < QK8_0; j++)
			amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
		float d = amax / 127.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		b[i].d = quant_f32_to_f16(d);
		for (int j = 0; j < QK8_0; j++)
			b[i].qs[j] = (int8_t)quantize_nearest(x[j] * id);
	}
}

/* Q8_K: the extreme value maps to -127 and codes are clamped at 127, the same
 * rounding the reference engine applies to activations before K-quant dot
 * products (its results are what the model tests compare against). */
static void quantize_q8_K(const float *x, struct block_q8_K *b, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++, x += QK_K) {
		float max = quantize_absmax_signed(x, QK_K);
		if (max == 0.0f) {
			memset(&b[i], 0, sizeof(b[i]));
			continue;
		}
		float iscale = -127.0f / max;
		for (int j = 0; j < QK_K; j++)
			b[i].qs[j] = (int8_t)quantize_clamp(quantize_nearest(iscale * x[j]), -128, 127);
		for (int j = 0; j < QK_K / 16; j++) {
			int s = 0;
			for (int l = 0; l < 16; l++)
				s += b[i].qs[16 * j + l];
			b[i].bsums[j] = (int16_t)s;
		}
		b[i].d = 1.0f / iscale;
	}
}

static void quantize_q4_0(const float *x, struct block_q4_0 *b, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++, x += QK4_0) {
		float d = quantize_absmax_signed(x, QK4_0) / -8.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		b[i].d = quant_f32_to_f16(d);
		for (int j = 0; j < QK4_0 / 2; j++) {
			int lo = quantize_clamp(quantize_nearest(x[j] * id) + 8, 0, 15);
			int hi = quantize_clamp(quantize_nearest(x[j + QK4_0 / 2] * id) + 8, 0, 15);
			b[i].qs[j] = (uint8_t)(lo | (hi << 4));
		}
	}
}

static void quantize_q5_0(const float *x, struct block_q5_0 *b, int64_t nb)
{
	for (int64_t i = 0; i < nb; i++, x += QK5_0) {
		float d = quantize_absmax_signed(x, QK5_0) / -16.0f;
		float id = d != 0.0f ? 1.0f / d : 0.0f;
		uint32_t qh = 0;
		b[i].d = quant_f32_to_f16(d);
		for (int j = 0; j < QK5_0 / 2; j++) {
			int lo = quantize_clamp(quantize_nearest(x[j] * id) + 16, 0, 31);
			int hi = quantize_clamp(quantize_nearest(x[j + QK5_0 / 2] * id) + 16, 0, 31);
			b[i].qs[j] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
			qh |= (uint32_t)(lo >> 4) << j;
			qh |= (uint32_t)(hi >> 4) << (j + 16);
		}
		memcpy(b[i].qh, &qh, sizeof qh);
	}
}

/* Packs the eight 6-bit scales and mins of a Q4_K/Q5_K block (layout in quant.c). */
static void quantize_pack_scales(const int *sc, const int *mn, uint8_t *out)
{
	memset(out, 0, K_SCALE_SIZE);
	for (int j = 0; j < 8; j++) {
		if (j < 4) {
			out[j] |= (uint8_t)sc[j];
			out[j + 4] |= (uint8_t)mn[j];
		} else {
			out[j + 4] = (uint8_t)((sc[j] & 15) | ((mn[j] & 15) << 4));
			out[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
			out[j] |= (uint8_t)((mn[j] >> 4) << 6);
		}
	}
}

/* Shared part of Q4_K and Q5_K: per 32-element sub-block an affine map
 * value = d*sc*q - dmin*mn with q in [0, levels]; writes q (one per element)
 * and the packed scales, returns d and dmin. */
static void quantize_kq_affine(const float *x, int levels, uint8_t *q, uint8_t *scales,
                               float *ret_d, float *ret_dmin)
{
	float scale[8], mins[8], max_scale = 0.0f, max_min = 0.0f;
	int sc[8], mn[8];
	for (int j = 0; j < 8; j++) {
		float lo = 0.0f, hi = 0.0f;
		for (int l = 0; l < 32; l++) {
			lo = fminf(lo, x[32 * j + l]);
			hi = fmaxf(hi, x[32 * j + l]);
		}
		scale[j] = (hi - lo) / (float)levels;
		mins[j] = -lo;
		max_scale = fmaxf(max_scale, scale[j]);
		max_min = fmaxf(max_min, mins[j]);
	}
	float d = max_scale / 63.0f, dmin = max_min / 63.0f;
	for (int j = 0; j < 8; j++) {
		sc[j] = d != 0.0f ? quantize_clamp(quantize_nearest(scale[j] / d), 0, 63) : 0;
		mn[j] = dmin != 0.0f ? quantize_clamp(quantize_nearest(mins[j] / dmin), 0, 63) : 0;
	}
	quantize_pack_scales(sc, mn, scales);
	/* the scales are stored as F16: quantize against the values that will be decoded */
	d = quant_f16_to_f32(quant_f32_to_f16(d));
	dmin = quant_f16_to_f32(quant_f32_to_f16(dmin));
	for (int j = 0; j < 8; j++) {
		float step = d * (float)sc[j], off = dmin * (float)mn[j];
		for (int l = 0; l < 32; l++) {
			int v = step != 0.0f ? quantize_nearest((x[32 * j + l] + off) / step) : 0;
			q[32 * j + l] = (uint8_t)quantize_clamp(v, 0, levels);
		}
	}
	*ret_d = d;
	*ret_dmin = dmin;
}

static void quantize_q4_K(const float *x, struct block_q4_K *b, int64_t nb)
{
	uint8_t q[QK_K];
	for (int64_t i = 0; i < nb; i++, x += QK_K) {
		float d, dmin;
		quantize_kq_affine(x, 15, q, b[i].scales, &d, &dmin);
		b[i].d = quant_f32_to_f16(d);
		b[i].dmin = quant_f32_to_f16(dmin);
		for (int g = 0; g < 4; g++)
			for (int l = 0; l < 32; l++)
				b[i].qs[32 * g + l] = (uint8_t)(q[64 * g + l] | (q[64 * g + 32 + l] << 4));
	}
}

static void quantize_q5_K(const float *x, struct block_q5_K *b, int64_t nb)
{
	uint8_t q[QK_K];
	for (int64_t i = 0; i < nb; i++, x += QK_K) {
		float d, dmin;
		quantize_kq_affine(x, 31, q, b[i].scales, &d, &dmin);
		b[i].d = quant_f32_to_f16(d);
		b[i].dmin = quant_f32_to_f16(dmin);
		memset(b[i].qh, 0, sizeof b[i].qh);
		for (int g = 0; g < 4; g++) {
			for (int l = 0; l < 32; l++) {
				int lo = q[64 * g + l], hi = q[64 * g + 32 + l];
				b[i].qs[32 * g + l] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
				b[i].qh[l] |= (uint8_t)(((lo >> 4) << (2 * g)) | ((hi >> 4) << (2 * g + 1)));
			}
		}
	}
}

static void quantize_q6_K(const float *x, struct block_q6_K *b, int64_t nb)
{
	int8_t q[QK_K];
	for (int64_t i = 0; i < nb; i++, x += QK_K) {
		float scale[16], max_scale = 0.0f, amax_scale = 0.0f;
		for (int j = 0; j < 16; j++) {
			scale[j] = quantize_absmax_signed(x + 16 * j, 16) / -32.0f;
			if (fabsf(scale[j]) > amax_scale) {
				amax_scale = fabsf(scale[j]);
				max_scale = scale[j];
			}
		}
		float iscale = max_scale != 0.0f ? -128.0f / max_scale : 0.0f;
		float d = iscale != 0.0f ? quant_f16_to_f32(quant_f32_to_f16(1.0f / iscale)) : 0.0f;
		b[i].d = quant_f32_to_f16(d);
		for (int j = 0; j < 16; j++) {
			int s = quantize_clamp(quantize_nearest(iscale * scale[j]), -128, 127);
			b[i].scales[j] = (int8_t)s;
			float step = d * (float)s;
			for (int l = 0; l < 16; l++) {
				int v = step != 0.0f ? quantize_nearest(x[16 * j + l] / step) : 0;
				q[16 * j + l] = (int8_t)quantize_clamp(v, -32, 31);
			}
		}
		for (int h = 0; h < 2; h++) {
			const int8_t *qq = q + 128 * h;
			uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
			for (int l = 0; l < 32; l++) {
				int q1 = qq[l] + 32, q2 = qq[l + 32] + 32, q3 = qq[l + 64] + 32, q4 = qq[l + 96] + 32;
				ql[l] = (uint8_t)((q1 & 15) | ((q3 & 15) << 4));
				ql[l + 32] = (uint8_t)((q2 & 15) | ((q4 & 15) << 4));
				qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
			}
		}
	}
}

void quant_quantize_row(enum quant_type t, const float *src, void *dst, int64_t n)
{
	size_t bs = quant_block_size(t);
	if (t == QUANT_Q8_K)
		bs = QK_K;
	assert(bs != 0 && n >= 0 && (uint64_t)n % bs == 0);
	int64_t nb = n / (int64_t)bs;

	switch (t) {
	case QUANT_F32:
		memcpy(dst, src, (size_t)n * sizeof(float));
		break;
	case QUANT_F16:
		for (int64_t i = 0; i < n; i++)
			((quant_f16 *)dst)[i] = quant_f32_to_f16(src[i]);
		break;
	case QUANT_BF16:
		for (int64_t i = 0; i < n; i++)
			((quant_bf16 *)dst)[i] = quant_f32_to_bf16(src[i]);
		break;
	case QUANT_Q8_0: quantize_q8_0(src, dst, nb); break;
	case QUANT_Q8_K: quantize_q8_K(src, dst, nb); break;
	case QUANT_Q4_0: quantize_q4_0(src, dst, nb); break;
	case QUANT_Q5_0: quantize_q5_0(src, dst, nb); break;
	case QUANT_Q4_K: quantize_q4_K(src, dst, nb); break;
	case QUANT_Q5_K: quantize_q5_K(src, dst, nb); break;
	case QUANT_Q6_K: quantize_q6_K(src, dst, nb); break;
	default:
		assert(!"quant_quantize_row: unsupported type");
	}
}
