/* matmul: products of weight matrices (any quant_type) with F32 activations.
 *
 * The weight is stored as GGUF stores it: n_out rows of n_in elements each,
 * row r at data + r * quant_row_size(type, n_in). */
#pragma once

#include <stdint.h>

#include "runtime/quant.h"

struct threadpool;

struct matmul_weight {
	enum quant_type type;
	const void *data;
	int64_t n_in;  /* elements per row (columns) */
	int64_t n_out; /* rows */
};

enum matmul_precision {
	/* F32 arithmetic on the exactly dequantized weights */
	MATMUL_F32,
	/* activations rounded before the product as the reference engine does
	 * (F16 for F16 weights, BF16 for BF16, Q8_0 blocks for Q4_0/Q5_0/Q8_0,
	 * Q8_K blocks for K-quants): faster, slightly different results */
	MATMUL_ROUNDED,
	MATMUL_PRECISION_COUNT
};

/* y[t * n_out + r] = sum_k W[r][k] * x[t * n_in + k] for t < n_tokens, r < n_out.
 * x and y must not overlap. */
void matmul(struct threadpool *tp, enum matmul_precision prec, const struct matmul_weight *w,
            const float *x, int64_t n_tokens, float *y);
