/* bench_matmul: throughput of one matmul at a real model's shape, for each
 * kernel version: weight bytes per second with one token (generation is bound
 * by memory reads) and multiply-adds per second with a batch (prompts are
 * bound by arithmetic).
 *
 * usage: bench_matmul [TYPE [N_IN [N_OUT [TOKENS [THREADS]]]]] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/kernels.h"
#include "runtime/matmul.h"
#include "runtime/quant.h"
#include "runtime/threadpool.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static enum quant_type parse_type(const char *s)
{
	for (int t = 0; t < QUANT_TYPE_COUNT; t++)
		if (quant_type_name((enum quant_type)t) && strcmp(quant_type_name((enum quant_type)t), s) == 0)
			return (enum quant_type)t;
	return QUANT_TYPE_COUNT;
}

int main(int argc, char **argv)
{
	enum quant_type type = argc > 1 ? parse_type(argv[1]) : QUANT_Q4_K;
	int64_t n_in = argc > 2 ? strtoll(argv[2], NULL, 10) : 3584;
	int64_t n_out = argc > 3 ? strtoll(argv[3], NULL, 10) : 18944;
	int64_t n_tok = argc > 4 ? strtoll(argv[4], NULL, 10) : 1;
	int n_threads = argc > 5 ? (int)strtol(argv[5], NULL, 10) : 2;
	size_t rb = quant_row_size(type, n_in);
	if (type == QUANT_TYPE_COUNT || rb == 0 || n_out <= 0 || n_tok <= 0 || n_tok > 4096) {
		fprintf(stderr, "bench_matmul: bad arguments\n");
		return 2;
	}
	uint8_t *w = malloc(rb * (size_t)n_out);
	float *x = malloc(sizeof(float) * (size_t)(n_in * n_tok)), *y = malloc(sizeof(float) * (size_t)(n_out * n_tok));
	float *row = malloc(sizeof(float) * (size_t)n_in);
	if (!w || !x || !y || !row)
		return 1;
	uint32_t s = 1;
	for (int64_t i = 0; i < n_in; i++) {
		s = s * 1664525u + 1013904223u;
		row[i] = (float)((int32_t)s >> 8) * 1e-8f;
	}
	for (int64_t r = 0; r < n_out; r++)
		quant_quantize_row(type, row, w + (size_t)r * rb, n_in);
	for (int64_t i = 0; i < n_in * n_tok; i++)
		x[i] = row[i % n_in];
	struct threadpool *tp = threadpool_new(n_threads);
	static const char *const versions[] = {"scalar", "avx2", "avx512", "amx"};
	for (int v = 0; v < 4; v++) {
		const char *only = getenv("BENCH_KERNELS");
		if ((only && strcmp(only, versions[v]) != 0) || !kernels_force(versions[v]) || (v == 0 && n_tok > 8))
			continue;
		struct matmul_weight mw = {.type = type, .data = w, .n_in = n_in, .n_out = n_out};
		matmul(tp, MATMUL_ROUNDED, &mw, x, n_tok, y);
		/* the best of many runs: the machine may be shared, and the best is what the code can do */
		double start = now(), per = 1e30;
		do {
			double t0 = now();
			matmul(tp, MATMUL_ROUNDED, &mw, x, n_tok, y);
			double dt = now() - t0;
			per = dt < per ? dt : per;
		} while (now() - start < 1.0);
		printf("%-6s %s %lldx%lld x %lld tok, %d threads: %.3f ms, %.1f GB/s weights, %.1f GMAC/s\n",
		       versions[v], quant_type_name(type), (long long)n_out, (long long)n_in, (long long)n_tok,
		       n_threads, per * 1e3, (double)rb * (double)n_out / per * 1e-9,
		       (double)n_in * (double)n_out * (double)n_tok / per * 1e-9);
	}
	threadpool_free(tp);
	free(w); free(x); free(y); free(row);
	return 0;
}
