/* test_quant: type sizes, half-precision conversions and dequantization.
 *
 * Conversions are checked against the compiler's own _Float16 arithmetic
 * where it exists, and exhaustively over all 65536 half bit patterns. Each
 * block format is checked with hand-built blocks whose values are computed
 * here from the format's element-by-element definition. */
#include "runtime/quant.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/runtime/tap.h"

static uint32_t rng_state = 12345;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static void test_sizes(void)
{
	tap_ok(quant_row_size(QUANT_F32, 10) == 40, "/quant/size/f32", NULL);
	tap_ok(quant_row_size(QUANT_BF16, 10) == 20, "/quant/size/bf16", NULL);
	tap_ok(quant_row_size(QUANT_Q4_0, 64) == 36, "/quant/size/q4_0", NULL);
	tap_ok(quant_row_size(QUANT_Q5_0, 64) == 44, "/quant/size/q5_0", NULL);
	tap_ok(quant_row_size(QUANT_Q8_0, 32) == 34, "/quant/size/q8_0", NULL);
	tap_ok(quant_row_size(QUANT_Q4_K, 512) == 288, "/quant/size/q4_k", NULL);
	tap_ok(quant_row_size(QUANT_Q5_K, 256) == 176, "/quant/size/q5_k", NULL);
	tap_ok(quant_row_size(QUANT_Q6_K, 256) == 210, "/quant/size/q6_k", NULL);
	tap_ok(quant_row_size(QUANT_Q8_K, 256) == 292, "/quant/size/q8_k", NULL);
	tap_ok(quant_row_size(QUANT_Q4_K, 100) == 0, "/quant/size/not-multiple", NULL);
	tap_ok(quant_row_size(QUANT_Q4_1, 32) == 0 && quant_block_size(QUANT_Q2_K) == 0,
	       "/quant/size/unsupported", NULL);
	tap_ok(quant_type_name((enum quant_type)99) == NULL && quant_type_size((enum quant_type)5) == 0,
	       "/quant/size/unknown-id", NULL);
	tap_ok(strcmp(quant_type_name(QUANT_Q6_K), "Q6_K") == 0, "/quant/name", NULL);
}

static void test_f16(void)
{
	/* every half survives f16 -> f32 -> f16 bit-exactly (NaNs stay NaNs) */
	int bad = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		float f = quant_f16_to_f32((quant_f16)h);
		quant_f16 back = quant_f32_to_f16(f);
		bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
		if (nan ? !(isnan(f) && (back & 0x7c00) == 0x7c00 && (back & 0x3ff)) : back != h)
			bad++;
	}
	tap_ok(bad == 0, "/quant/f16/roundtrip-all", "%d halves differ", bad);
	tap_ok(quant_f16_to_f32(0x0001) == ldexpf(1.0f, -24), "/quant/f16/smallest-subnormal", NULL);
	tap_ok(quant_f16_to_f32(0x7bff) == 65504.0f && quant_f16_to_f32(0xfc00) == -INFINITY,
	       "/quant/f16/max-and-inf", NULL);
	tap_ok(quant_f32_to_f16(65519.99f) == 0x7bff && quant_f32_to_f16(65520.0f) == 0x7c00,
	       "/quant/f16/overflow-boundary", NULL);
	tap_ok(quant_f32_to_f16(ldexpf(1.0f, -25)) == 0 &&
	               quant_f32_to_f16(ldexpf(1.5f, -25)) == 1 &&
	               quant_f32_to_f16(ldexpf(3.0f, -25)) == 2,
	       "/quant/f16/subnormal-ties", NULL);
	/* 1 + 2^-11 is halfway between 1 and the next half: ties to even (1) */
	tap_ok(quant_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00 &&
	               quant_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02,
	       "/quant/f16/ties-to-even", NULL);
#ifdef __FLT16_MAX__
	int diff = 0;
	for (int i = 0; i < 2000000; i++) {
		float f = bits_f32(rnd());
		if (i % 3 == 0) /* bias towards the half range */
			f = bits_f32((rnd() & 0x87ffffff) | 0x30000000);
		__extension__ typedef _Float16 half_t;
		half_t ref = (half_t)f;
		uint16_t rb;
		memcpy(&rb, &ref, sizeof rb);
		quant_f16 got = quant_f32_to_f16(f);
		if (isnan(f) ? (got & 0x7fff) <= 0x7c00 : got != rb)
			diff++;
	}
	tap_ok(diff == 0, "/quant/f16/matches-compiler", "%d of 2000000 differ", diff);
#endif
}

static void test_bf16(void)
{
	tap_ok(quant_f32_to_bf16(1.0f) == 0x3f80 && quant_bf16_to_f32(0x3f80) == 1.0f, "/quant/bf16/one",
	       NULL);
	/* 1 + 2^-8 is halfway: ties to even (1); 1 + 3*2^-8 ties up */
	tap_ok(quant_f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80 &&
	               quant_f32_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)) == 0x3f82,
	       "/quant/bf16/ties-to-even", NULL);
	quant_bf16 n = quant_f32_to_bf16(bits_f32(0x7f800001)); /* NaN whose payload is in the low bits */
	tap_ok((n & 0x7f80) == 0x7f80 && (n & 0x7f), "/quant/bf16/nan-stays-nan", "got %04x", n);
	tap_ok(quant_f32_to_bf16(INFINITY) == 0x7f80 && quant_f32_to_bf16(bits_f32(0x7f7fffff)) == 0x7f80,
	       "/quant/bf16/inf-and-overflow", NULL);
	int bad = 0;
	for (int i = 0; i < 1000000; i++) {
		uint32_t x = rnd();
		float f = bits_f32(x);
		if (isnan(f))
			continue;
		/* reference: the nearest of the two candidates by exact double arithmetic */
		uint32_t lo = x & 0xffff0000, hi = lo + 0x10000;
		double dl = fabs((double)bits_f32(lo) - (double)f);
		double dh = fabs((double)bits_f32(hi) - (double)f);
		uint32_t want = dl < dh ? lo : dh < dl ? hi : ((lo >> 16) & 1) ? hi : lo;
		if ((x & 0x7fffffff) >= 0x7f7f8000 && (x & 0xffff) >= 0x8000 && (lo & 0x7fffffff) == 0x7f7f0000)
			want = hi; /* rounds past the largest finite value: infinity */
		if (quant_f32_to_bf16(f) != (quant_bf16)(want >> 16))
			bad++;
	}
	tap_ok(bad == 0, "/quant/bf16/nearest-even", "%d differ", bad);
	(void)f32_bits;
}

static void test_q4_0_q5_0_q8_0(void)
{
	struct block_q4_0 b4;
	b4.d = quant_f32_to_f16(0.5f);
	for (int j = 0; j < 16; j++)
		b4.qs[j] = (uint8_t)(j | ((15 - j) << 4));
	float y[QK_K];
	quant_dequantize_row(QUANT_Q4_0, &b4, y, 32);
	int bad = 0;
	for (int j = 0; j < 16; j++)
		bad += y[j] != (j - 8) * 0.5f || y[j + 16] != (7 - j) * 0.5f;
	tap_ok(bad == 0, "/quant/dequant/q4_0", NULL);

	struct block_q5_0 b5;
	b5.d = quant_f32_to_f16(0.25f);
	uint32_t qh = 0xa5c3f00f;
	memcpy(b5.qh, &qh, 4);
	for (int j = 0; j < 16; j++)
		b5.qs[j] = (uint8_t)((j * 7 & 15) | ((j * 3 & 15) << 4));
	quant_dequantize_row(QUANT_Q5_0, &b5, y, 32);
	bad = 0;
	for (int e = 0; e < 32; e++) {
		int nib = e < 16 ? (b5.qs[e] & 15) : (b5.qs[e - 16] >> 4);
		int q = nib + (int)(((qh >> e) & 1) * 16);
		bad += y[e] != (q - 16) * 0.25f;
	}
	tap_ok(bad == 0, "/quant/dequant/q5_0", NULL);

	struct block_q8_0 b8;
	b8.d = quant_f32_to_f16(-0.125f);
	for (int j = 0; j < 32; j++)
		b8.qs[j] = (int8_t)(j * 7 - 100);
	quant_dequantize_row(QUANT_Q8_0, &b8, y, 32);
	bad = 0;
	for (int j = 0; j < 32; j++)
		bad += y[j] != (j * 7 - 100) * -0.125f;
	tap_ok(bad == 0, "/quant/dequant/q8_0", NULL);
}

/* Packs eight 6-bit scales and mins the way Q4_K/Q5_K store them. */
static void pack_scales(const uint8_t sc[8], const uint8_t mn[8], uint8_t out[12])
{
	for (int j = 0; j < 4; j++) {
		out[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
		out[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
		out[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
	}
}

static void test_k_quants(void)
{
	uint8_t sc[8] = {1, 63, 17, 32, 5, 48, 60, 33}, mn[8] = {0, 7, 63, 16, 49, 2, 31, 62};
	float d = 0.0625f, dmin = 0.03125f;
	float y[QK_K];
	int bad = 0;

	struct block_q4_K k4;
	k4.d = quant_f32_to_f16(d);
	k4.dmin = quant_f32_to_f16(dmin);
	pack_scales(sc, mn, k4.scales);
	for (int j = 0; j < 128; j++)
		k4.qs[j] = (uint8_t)rnd();
	quant_dequantize_row(QUANT_Q4_K, &k4, y, QK_K);
	for (int e = 0; e < QK_K; e++) {
		int s = e / 32, byte = (e / 64) * 32 + e % 32;
		int q = (s & 1) ? k4.qs[byte] >> 4 : k4.qs[byte] & 15;
		bad += fabsf(y[e] - (d * sc[s] * q - dmin * mn[s])) > 1e-6f;
	}
	tap_ok(bad == 0, "/quant/dequant/q4_k", "%d differ", bad);

	struct block_q5_K k5;
	k5.d = quant_f32_to_f16(d);
	k5.dmin = quant_f32_to_f16(dmin);
	pack_scales(sc, mn, k5.scales);
	for (int j = 0; j < 128; j++)
		k5.qs[j] = (uint8_t)rnd();
	for (int j = 0; j < 32; j++)
		k5.qh[j] = (uint8_t)rnd();
	quant_dequantize_row(QUANT_Q5_K, &k5, y, QK_K);
	bad = 0;
	for (int e = 0; e < QK_K; e++) {
		int s = e / 32, byte = (e / 64) * 32 + e % 32;
		int q = (s & 1) ? k5.qs[byte] >> 4 : k5.qs[byte] & 15;
		q += ((k5.qh[e % 32] >> s) & 1) * 16;
		bad += fabsf(y[e] - (d * sc[s] * q - dmin * mn[s])) > 1e-6f;
	}
	tap_ok(bad == 0, "/quant/dequant/q5_k", "%d differ", bad);
}

static void test_q6_k_q8_k(void)
{
	float d = 0.0625f;
	float y[QK_K];
	int bad = 0;
	struct block_q6_K k6;
	k6.d = quant_f32_to_f16(d);
	for (int j = 0; j < 16; j++)
		k6.scales[j] = (int8_t)(j * 17 - 128);
	for (int j = 0; j < 128; j++)
		k6.ql[j] = (uint8_t)rnd();
	for (int j = 0; j < 64; j++)
		k6.qh[j] = (uint8_t)rnd();
	quant_dequantize_row(QUANT_Q6_K, &k6, y, QK_K);
	bad = 0;
	for (int e = 0; e < QK_K; e++) {
		/* element e: half h, quarter k of 32 within the half, lane l */
		int h = e / 128, k = (e % 128) / 32, l = e % 32;
		uint8_t lowb = k6.ql[h * 64 + (k & 1) * 32 + l];
		int low = (k < 2) ? (lowb & 15) : (lowb >> 4);
		int high = (k6.qh[h * 32 + l] >> (2 * k)) & 3;
		int q = (low | (high << 4)) - 32;
		bad += fabsf(y[e] - d * k6.scales[e / 16] * q) > 1e-6f;
	}
	tap_ok(bad == 0, "/quant/dequant/q6_k", "%d differ", bad);

	struct block_q8_K k8;
	k8.d = 0.75f;
	for (int j = 0; j < QK_K; j++)
		k8.qs[j] = (int8_t)(rnd() & 0xff);
	quant_dequantize_row(QUANT_Q8_K, &k8, y, QK_K);
	bad = 0;
	for (int j = 0; j < QK_K; j++)
		bad += y[j] != 0.75f * k8.qs[j];
	tap_ok(bad == 0, "/quant/dequant/q8_k", NULL);
}

static void test_plain(void)
{
	quant_f16 h[4] = {0x3c00, 0xc000, 0x0001, 0x7c00};
	quant_bf16 b[4] = {0x3f80, 0xc000, 0x0001, 0xff80};
	float y[4];
	quant_dequantize_row(QUANT_F16, h, y, 4);
	tap_ok(y[0] == 1.0f && y[1] == -2.0f && y[2] == ldexpf(1.0f, -24) && isinf(y[3]),
	       "/quant/dequant/f16", NULL);
	quant_dequantize_row(QUANT_BF16, b, y, 4);
	tap_ok(y[0] == 1.0f && y[1] == -2.0f && y[2] == bits_f32(0x10000) && y[3] == -INFINITY,
	       "/quant/dequant/bf16", NULL);
	float f[4] = {1.5f, -0.0f, 3e38f, 1e-40f};
	quant_dequantize_row(QUANT_F32, f, y, 4);
	tap_ok(memcmp(f, y, sizeof f) == 0, "/quant/dequant/f32", NULL);
}

int main(void)
{
	test_sizes();
	test_f16();
	test_bf16();
	test_plain();
	test_q4_0_q5_0_q8_0();
	test_k_quants();
	test_q6_k_q8_k();
	return tap_done();
}
