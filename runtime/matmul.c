/* matmul: products of weight matrices (any quant_type) with F32 activations.
 *
 * Rows of the weight are split evenly over the pool's threads; each thread
 * dequantizes a chunk of one row at a time into its own stack buffer and
 * takes F32 dot products with every token's activations, so no whole matrix
 * is ever dequantized. */
#include "runtime/matmul.h"

#include <assert.h>
#include <string.h>

#include "runtime/threadpool.h"

/* Elements dequantized at a time: a multiple of every block size, 16 KiB of F32. */
#define MATMUL_CHUNK 4096

struct matmul_task {
	const struct matmul_weight *w;
	const float *x;
	int64_t n_tokens;
	float *y;
	size_t row_bytes;
};

static float matmul_dot_f32(const float *a, const float *b, int64_t n)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	int64_t i = 0;
	for (; i + 4 <= n; i += 4) {
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < n; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

static void matmul_rows(void *p, int ith, int nth)
{
	const struct matmul_task *t = p;
	const struct matmul_weight *w = t->w;
	int64_t r0 = w->n_out * ith / nth;
	int64_t r1 = w->n_out * (ith + 1) / nth;
	size_t bs = quant_block_size(w->type);
	float buf[MATMUL_CHUNK];

	for (int64_t r = r0; r < r1; r++) {
		const uint8_t *row = (const uint8_t *)w->data + (size_t)r * t->row_bytes;
		for (int64_t tk = 0; tk < t->n_tokens; tk++)
			t->y[tk * w->n_out + r] = 0.0f;
		for (int64_t k0 = 0; k0 < w->n_in; k0 += MATMUL_CHUNK) {
			int64_t n = w->n_in - k0 < MATMUL_CHUNK ? w->n_in - k0 : MATMUL_CHUNK;
			const float *wr;
			if (w->type == QUANT_F32) {
				wr = (const float *)row + k0;
			} else {
				quant_dequantize_row(w->type, row + (size_t)(k0 / (int64_t)bs) * quant_type_size(w->type), buf, n);
				wr = buf;
			}
			for (int64_t tk = 0; tk < t->n_tokens; tk++)
				t->y[tk * w->n_out + r] += matmul_dot_f32(wr, t->x + tk * w->n_in + k0, n);
		}
	}
}

void matmul(struct threadpool *tp, enum matmul_precision prec, const struct matmul_weight *w,
            const float *x, int64_t n_tokens, float *y)
{
	(void)prec;
	assert(quant_row_size(w->type, w->n_in) != 0);
	struct matmul_task t = {
		.w = w, .x = x, .n_tokens = n_tokens, .y = y,
		.row_bytes = quant_row_size(w->type, w->n_in),
	};
	threadpool_run(tp, matmul_rows, &t);
}
