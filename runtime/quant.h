/* quant: the tensor element types of GGUF files and their block layouts.
 *
 * Type ids and block layouts are those of the GGUF format (they are on disk).
 * A "block" holds quant_block_size() elements in quant_type_size() bytes; a row
 * of n elements of a block type needs n to be a multiple of the block size.
 * All multi-byte fields are little-endian, as on every machine Quire runs on. */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum quant_type {
	QUANT_F32 = 0,
	QUANT_F16 = 1,
	QUANT_Q4_0 = 2,
	QUANT_Q4_1 = 3,
	QUANT_Q5_0 = 6,
	QUANT_Q5_1 = 7,
	QUANT_Q8_0 = 8,
	QUANT_Q8_1 = 9,
	QUANT_Q2_K = 10,
	QUANT_Q3_K = 11,
	QUANT_Q4_K = 12,
	QUANT_Q5_K = 13,
	QUANT_Q6_K = 14,
	QUANT_Q8_K = 15,
	QUANT_I8 = 24,
	QUANT_I16 = 25,
	QUANT_I32 = 26,
	QUANT_I64 = 27,
	QUANT_F64 = 28,
	QUANT_BF16 = 30,
	QUANT_TYPE_COUNT = 40 /* one past the largest id GGUF defines that we name */
};

#define QK4_0 32
#define QK5_0 32
#define QK8_0 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef uint16_t quant_f16;  /* IEEE half, as stored */
typedef uint16_t quant_bf16; /* bfloat16, as stored */

/* value = (q - 8) * d; element j < 16 in the low nibble of qs[j], j >= 16 in the high nibble of qs[j-16] */
struct block_q4_0 {
	quant_f16 d;
	uint8_t qs[QK4_0 / 2];
};
/* value = (q - 16) * d; q's fifth bit in bit j of qh (little-endian uint32) */
struct block_q5_0 {
	quant_f16 d;
	uint8_t qh[4];
	uint8_t qs[QK5_0 / 2];
};
struct block_q8_0 {
	quant_f16 d;
	int8_t qs[QK8_0];
};
/* 8 sub-blocks of 32; 6-bit scales and mins packed in scales[12];
 * value = d * scale * q - dmin * min */
struct block_q4_K {
	quant_f16 d;
	quant_f16 dmin;
	uint8_t scales[K_SCALE_SIZE];
	uint8_t qs[QK_K / 2];
};
struct block_q5_K {
	quant_f16 d;
	quant_f16 dmin;
	uint8_t scales[K_SCALE_SIZE];
	uint8_t qh[QK_K / 8];
	uint8_t qs[QK_K / 2];
};
/* 16 sub-blocks of 16; value = d * scales[i] * (q - 32) */
struct block_q6_K {
	uint8_t ql[QK_K / 2];
	uint8_t qh[QK_K / 4];
	int8_t scales[QK_K / 16];
	quant_f16 d;
};
/* activations rounded for the K-quant dot products; bsums[i] = sum of qs[16i..16i+15] */
struct block_q8_K {
	float d;
	int8_t qs[QK_K];
	int16_t bsums[QK_K / 16];
};

/* Name of a type as GGUF tools print it ("Q4_K"), or NULL for an unknown id. */
const char *quant_type_name(enum quant_type t);
/* Elements per block (1 for plain types); 0 for a type this runtime cannot compute with. */
size_t quant_block_size(enum quant_type t);
/* Bytes per block; 0 for a type this runtime cannot compute with. */
size_t quant_type_size(enum quant_type t);
/* Bytes for a row of n elements, or 0 if n is not a multiple of the block size
 * or the type is unsupported. */
size_t quant_row_size(enum quant_type t, int64_t n);

float quant_f16_to_f32(quant_f16 h);
quant_f16 quant_f32_to_f16(float f);
float quant_bf16_to_f32(quant_bf16 h);
quant_bf16 quant_f32_to_bf16(float f);

/* Converts n elements (a multiple of the block size) of type t at src to F32. */
void quant_dequantize_row(enum quant_type t, const void *src, float *dst, int64_t n);

/* Converts n F32 values (a multiple of the block size) to type t at dst.
 * Supported for every type quant_dequantize_row supports, and for Q8_K. */
void quant_quantize_row(enum quant_type t, const float *src, void *dst, int64_t n);
