/* matmul: products of weight matrices (any quant_type) with F32 activations.
 *
 * MATMUL_ROUNDED rounds the activations once per call to the type the kernels
 * pair with the weight type (kernels_act_type), then runs the kernels directly
 * on the weight's blocks. MATMUL_F32 dequantizes a few weight rows at a time
 * into a per-thread buffer and takes F32 products. No whole matrix is ever
 * dequantized. With many tokens, kernels that have a batched path (the AMX
 * tile unit) take over: they decode 16 weight rows once and multiply them with
 * every token of the pass.
 *
 * Work is cut into items (a block of tokens times a chunk of rows) that the
 * pool's threads take from a shared atomic counter, so a thread slowed by
 * another process does not hold the others up. Items are numbered token block
 * first, so the threads share the activation block in cache at any time. Each
 * item writes a disjoint part of y.
 *
 * Scratch memory is per thread (a pthread key) and kept between calls: the
 * caller's thread holds the rounded activations, which the workers only read
 * while the caller waits in threadpool_run. When memory cannot be had, the
 * call falls back to a path that needs only stack memory. */
#include "runtime/matmul.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels.h"
#include "runtime/threadpool.h"

/* Elements dequantized at a time on the stack-only path: a multiple of every block size. */
#define MATMUL_CHUNK 4096
/* Tokens per work item: their rounded activations stay in the L2 cache. */
#define MATMUL_TOKEN_BLOCK 64
/* Tokens rounded per pass, which bounds the activation scratch. */
#define MATMUL_MAX_TOKENS 512
/* Weight rows dequantized at once on the F32 path. */
#define MATMUL_F32_ROWS 4
/* Fewest tokens for which the kernels' batched path (if any) pays off. */
#define MATMUL_BATCH_MIN 32
/* Rows per item of the batched path. */
#define MATMUL_BATCH_ROWS 16

enum matmul_slot { MATMUL_SLOT_ACT, MATMUL_SLOT_ROWS, MATMUL_SLOT_COUNT };

struct matmul_scratch {
	void *p[MATMUL_SLOT_COUNT];
	size_t n[MATMUL_SLOT_COUNT];
};

static pthread_key_t matmul_key;
static pthread_once_t matmul_key_once = PTHREAD_ONCE_INIT;

static void matmul_scratch_free(void *p)
{
	struct matmul_scratch *s = p;
	if (!s)
		return;
	for (int i = 0; i < MATMUL_SLOT_COUNT; i++)
		free(s->p[i]);
	free(s);
}

static void matmul_key_init(void)
{
	if (pthread_key_create(&matmul_key, matmul_scratch_free) != 0)
		abort(); /* only fails when the process is out of keys: a bug */
}

/* This thread's scratch slot with at least size bytes (64-byte aligned), or NULL. */
static void *matmul_scratch(enum matmul_slot slot, size_t size)
{
	pthread_once(&matmul_key_once, matmul_key_init);
	struct matmul_scratch *s = pthread_getspecific(matmul_key);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || pthread_setspecific(matmul_key, s) != 0) {
			free(s);
			return NULL;
		}
	}
	if (s->n[slot] < size) {
		void *p = NULL;
		size = (size + 4095) & ~(size_t)4095;
		if (posix_memalign(&p, 64, size) != 0)
			return NULL;
		free(s->p[slot]);
		s->p[slot] = p;
		s->n[slot] = size;
	}
	return s->p[slot];
}

struct matmul_task {
	const struct matmul_weight *w;
	const struct kernels *k;
	enum matmul_precision prec;
	kernels_gemm_fn gemm;
	const float *x;   /* F32 activations */
	const void *xq;   /* activations in the kernels' type (ROUNDED) */
	enum quant_type act;
	size_t xq_bytes;  /* bytes per rounded activation row */
	int64_t n_tokens;
	float *y;
	size_t row_bytes;
	int64_t row_chunk, n_row_chunks, n_items;
	atomic_llong next;
};

static void matmul_quantize_part(void *p, int ith, int nth)
{
	struct matmul_task *t = p;
	int64_t t0 = t->n_tokens * ith / nth, t1 = t->n_tokens * (ith + 1) / nth;
	for (int64_t tk = t0; tk < t1; tk++)
		t->k->act_quantize(t->w->type, t->x + tk * t->w->n_in, (uint8_t *)t->xq + (size_t)tk * t->xq_bytes,
		                   t->w->n_in);
}

/* One item on the F32 path: dequantize MATMUL_F32_ROWS rows at a time, F32 products. */
static void matmul_item_f32(struct matmul_task *t, int64_t tk0, int64_t ntk, int64_t r0, int64_t r1,
                            float *rows)
{
	const struct matmul_weight *w = t->w;
	for (int64_t r = r0; r < r1; r += MATMUL_F32_ROWS) {
		int nr = (int)(r1 - r < MATMUL_F32_ROWS ? r1 - r : MATMUL_F32_ROWS);
		for (int i = 0; i < nr; i++)
			quant_dequantize_row(w->type, (const uint8_t *)w->data + (size_t)(r + i) * t->row_bytes,
			                     rows + (size_t)i * (size_t)w->n_in, w->n_in);
		t->gemm(w->n_in, rows, (size_t)w->n_in * sizeof(float), nr, t->x + tk0 * w->n_in,
		        (size_t)w->n_in * sizeof(float), (int)ntk, t->y + tk0 * w->n_out + r, (size_t)w->n_out);
	}
}

static void matmul_items(void *p, int ith, int nth)
{
	struct matmul_task *t = p;
	const struct matmul_weight *w = t->w;
	bool f32 = t->prec == MATMUL_F32 && w->type != QUANT_F32;
	float *rows = NULL;
	(void)ith;
	(void)nth;
	if (f32) {
		rows = matmul_scratch(MATMUL_SLOT_ROWS, (size_t)w->n_in * sizeof(float) * MATMUL_F32_ROWS);
		assert(rows); /* matmul() made sure every thread could get it */
	}
	for (;;) {
		int64_t item = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
		if (item >= t->n_items)
			break;
		int64_t tb = item / t->n_row_chunks, rc = item % t->n_row_chunks;
		int64_t tk0 = tb * MATMUL_TOKEN_BLOCK;
		int64_t ntk = t->n_tokens - tk0 < MATMUL_TOKEN_BLOCK ? t->n_tokens - tk0 : MATMUL_TOKEN_BLOCK;
		int64_t r0 = rc * t->row_chunk;
		int64_t r1 = r0 + t->row_chunk < w->n_out ? r0 + t->row_chunk : w->n_out;
		if (f32) {
			matmul_item_f32(t, tk0, ntk, r0, r1, rows);
			continue;
		}
		const void *x = t->xq ? (const uint8_t *)t->xq + (size_t)tk0 * t->xq_bytes
		                      : (const void *)(t->x + tk0 * w->n_in);
		t->gemm(w->n_in, (const uint8_t *)w->data + (size_t)r0 * t->row_bytes, t->row_bytes,
		        (int)(r1 - r0), x, t->xq ? t->xq_bytes : (size_t)w->n_in * sizeof(float), (int)ntk,
		        t->y + tk0 * w->n_out + r0, (size_t)w->n_out);
	}
}

/* Makes sure every thread of the pool has its F32 row buffer; false if one could not. */
static void matmul_rows_prepare(void *p, int ith, int nth)
{
	struct matmul_task *t = p;
	(void)ith;
	(void)nth;
	if (!matmul_scratch(MATMUL_SLOT_ROWS, (size_t)t->w->n_in * sizeof(float) * MATMUL_F32_ROWS))
		atomic_store(&t->next, 1);
}

/* The stack-only path: one row chunk at a time, F32, for when scratch memory is short. */
static void matmul_lowmem(void *p, int ith, int nth)
{
	const struct matmul_task *t = p;
	const struct matmul_weight *w = t->w;
	int64_t r0 = w->n_out * ith / nth, r1 = w->n_out * (ith + 1) / nth;
	size_t bs = quant_block_size(w->type);
	float buf[MATMUL_CHUNK];

	for (int64_t r = r0; r < r1; r++) {
		const uint8_t *row = (const uint8_t *)w->data + (size_t)r * t->row_bytes;
		for (int64_t tk = 0; tk < t->n_tokens; tk++)
			t->y[tk * w->n_out + r] = 0.0f;
		for (int64_t k0 = 0; k0 < w->n_in; k0 += MATMUL_CHUNK) {
			int64_t n = w->n_in - k0 < MATMUL_CHUNK ? w->n_in - k0 : MATMUL_CHUNK;
			quant_dequantize_row(w->type, row + (size_t)(k0 / (int64_t)bs) * quant_type_size(w->type),
			                     buf, n);
			for (int64_t tk = 0; tk < t->n_tokens; tk++) {
				const float *x = t->x + tk * w->n_in + k0;
				float s = 0.0f;
				for (int64_t i = 0; i < n; i++)
					s += buf[i] * x[i];
				t->y[tk * w->n_out + r] += s;
			}
		}
	}
}

/* ---- the kernels' batched path ---- */

static void matmul_batch_prepare(void *p, int ith, int nth)
{
	struct matmul_task *t = p;
	const struct matmul_weight *w = t->w;
	if (!matmul_scratch(MATMUL_SLOT_ROWS, t->k->batch_scratch_size(w->n_in)))
		atomic_store(&t->next, 1);
	for (int64_t g = ith; g * 16 < t->n_tokens; g += nth) {
		int64_t t1 = (g + 1) * 16 < t->n_tokens ? (g + 1) * 16 : t->n_tokens;
		t->k->batch_prepare(w->type, t->x, w->n_in, g * 16, t1, (void *)t->xq);
	}
}

static void matmul_batch_items(void *p, int ith, int nth)
{
	struct matmul_task *t = p;
	const struct matmul_weight *w = t->w;
	void *scratch = matmul_scratch(MATMUL_SLOT_ROWS, t->k->batch_scratch_size(w->n_in));
	(void)ith;
	(void)nth;
	assert(scratch); /* matmul_batch_prepare made sure of it */
	for (;;) {
		int64_t item = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
		if (item >= t->n_items)
			break;
		int64_t r0 = item * MATMUL_BATCH_ROWS;
		int nr = (int)(w->n_out - r0 < MATMUL_BATCH_ROWS ? w->n_out - r0 : MATMUL_BATCH_ROWS);
		t->k->batch_rows(w->type, w->n_in, (const uint8_t *)w->data + (size_t)r0 * t->row_bytes, t->row_bytes,
		                 nr, t->xq, t->n_tokens, t->y + r0, (size_t)w->n_out, scratch);
	}
}

/* Runs one pass of at most MATMUL_MAX_TOKENS tokens on the batched path; false
 * (and nothing written) when scratch memory could not be had. */
static bool matmul_batch(struct threadpool *tp, struct matmul_task *t)
{
	void *xb = matmul_scratch(MATMUL_SLOT_ACT, t->k->batch_act_size(t->w->type, t->w->n_in, t->n_tokens));
	if (!xb)
		return false;
	t->xq = xb;
	atomic_store(&t->next, 0);
	threadpool_run(tp, matmul_batch_prepare, t);
	if (atomic_load(&t->next) != 0)
		return false;
	t->n_items = (t->w->n_out + MATMUL_BATCH_ROWS - 1) / MATMUL_BATCH_ROWS;
	threadpool_run(tp, matmul_batch_items, t);
	return true;
}

static void matmul_run(struct threadpool *tp, struct matmul_task *t)
{
	int nth = threadpool_size(tp);
	int64_t chunk = t->w->n_out / ((int64_t)nth * 16);
	chunk = chunk < 4 ? 4 : chunk > 32 ? 32 : (chunk + 3) & ~(int64_t)3;
	t->row_chunk = chunk;
	t->n_row_chunks = (t->w->n_out + chunk - 1) / chunk;
	t->n_items = t->n_row_chunks * ((t->n_tokens + MATMUL_TOKEN_BLOCK - 1) / MATMUL_TOKEN_BLOCK);
	atomic_store(&t->next, 0);
	threadpool_run(tp, matmul_items, t);
}

void matmul(struct threadpool *tp, enum matmul_precision prec, const struct matmul_weight *w,
            const float *x, int64_t n_tokens, float *y)
{
	const struct kernels *k = kernels_get();
	struct matmul_task t = {
		.w = w, .k = k, .prec = prec, .x = x, .y = y,
		.row_bytes = quant_row_size(w->type, w->n_in),
		.act = kernels_act_type(w->type),
	};
	assert(t.row_bytes != 0 && t.act != QUANT_TYPE_COUNT && k->gemm[w->type]);
	if (n_tokens <= 0 || w->n_out <= 0)
		return;

	if (prec == MATMUL_F32 || w->type == QUANT_F32) {
		t.gemm = k->gemm[QUANT_F32];
		t.n_tokens = n_tokens;
		if (w->type != QUANT_F32) {
			atomic_store(&t.next, 0);
			threadpool_run(tp, matmul_rows_prepare, &t);
			if (atomic_load(&t.next) != 0) {
				threadpool_run(tp, matmul_lowmem, &t);
				return;
			}
		}
		matmul_run(tp, &t);
		return;
	}

	t.gemm = k->gemm[w->type];
	t.xq_bytes = k->act_row_size(w->type, w->n_in);
	for (int64_t done = 0; done < n_tokens; done += MATMUL_MAX_TOKENS) {
		int64_t n = n_tokens - done < MATMUL_MAX_TOKENS ? n_tokens - done : MATMUL_MAX_TOKENS;
		t.x = x + done * w->n_in;
		t.y = y + done * w->n_out;
		t.n_tokens = n;
		if (n >= MATMUL_BATCH_MIN && k->batch_rows && k->batch_supports(w->type, w->n_in) && matmul_batch(tp, &t))
			continue;
		void *xq = matmul_scratch(MATMUL_SLOT_ACT, (size_t)n * t.xq_bytes);
		if (!xq) {
			t.xq = NULL;
			threadpool_run(tp, matmul_lowmem, &t);
			continue;
		}
		t.xq = xq;
		if (n == 1)
			matmul_quantize_part(&t, 0, 1);
		else
			threadpool_run(tp, matmul_quantize_part, &t);
		matmul_run(tp, &t);
	}
}
