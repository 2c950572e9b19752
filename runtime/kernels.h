/* kernels: the inner loops of matmul, in a scalar version and SIMD versions
 * (AVX2/FMA, AVX-512 with VNNI and BF16), chosen once at run time from what
 * the CPU supports.
 *
 * A kernel computes a tile of dot products between weight rows stored in
 * their GGUF type and activation rows already rounded to the type that
 * kernels_act_type() names for that weight type. Every version of a kernel
 * computes the same integer sums per block, so versions differ only in the
 * order of float additions. A table entry a SIMD version does not provide is
 * the scalar one. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/quant.h"

/* Software prefetch distances of the SIMD kernels, in bytes ahead of the block
 * being decoded. With one token, a core streams weights from memory and the
 * hardware prefetcher alone keeps too few lines in flight (it stops at every
 * 4 KiB page); fetching whole blocks 4-8 KiB ahead measured 25-40% more bytes
 * per second on one core for every type. The Q8_0 family's blocks are small,
 * so it looks a little less far ahead than the K-quants. Rows of a work item
 * are contiguous, so the distance runs on into the next row. */
#define KERNELS_PREFETCH_Q8 4096
#define KERNELS_PREFETCH_K 8192

/* y[t * ys + r] = dot(weight row r, activation row t) for r < nr, t < nt.
 * Weight rows of n elements lie ws bytes apart, activation rows xs bytes apart. */
typedef void (*kernels_gemm_fn)(int64_t n, const void *w, size_t ws, int nr, const void *x, size_t xs,
                                int nt, float *y, size_t ys);

struct kernels {
	const char *name; /* "scalar", "avx2", "avx512" */
	/* product with activations rounded to kernels_act_type(type); NULL: unsupported type */
	kernels_gemm_fn gemm[QUANT_TYPE_COUNT];
	/* The activation rows gemm[wtype] reads: bytes for a row of n elements, and the
	 * rounding of n floats into one. A version may lay the rounded values out its own
	 * way, but the values are always those quant_quantize_row gives for
	 * kernels_act_type(wtype). */
	size_t (*act_row_size)(enum quant_type wtype, int64_t n);
	void (*act_quantize)(enum quant_type wtype, const float *x, void *dst, int64_t n);

	/* Optional batched path for many tokens (NULL when the version has none):
	 * activations of nt tokens prepared in groups of 16 (batch_prepare fills
	 * tokens t0..t1-1, t0 a multiple of 16, so threads can share the work), then
	 * batch_rows multiplies nr <= 16 weight rows with all nt tokens, using
	 * batch_scratch_size(n) bytes of the calling thread's scratch. */
	bool (*batch_supports)(enum quant_type wtype, int64_t n);
	size_t (*batch_act_size)(enum quant_type wtype, int64_t n, int64_t nt);
	void (*batch_prepare)(enum quant_type wtype, const float *x, int64_t n, int64_t t0, int64_t t1,
	                      void *dst);
	size_t (*batch_scratch_size)(int64_t n);
	void (*batch_rows)(enum quant_type wtype, int64_t n, const void *w, size_t ws, int nr, const void *xb,
	                   int64_t nt, float *y, size_t ys, void *scratch);
};

/* The type activations are rounded to before a product with weights of type wtype
 * (QUANT_F32 for F32 weights), or QUANT_TYPE_COUNT for a type without kernels. */
enum quant_type kernels_act_type(enum quant_type wtype);

/* The kernels in use: the best the CPU supports, or the version named by the
 * environment variable QUIRE_KERNELS ("scalar", "avx2", "avx512", "amx") if the
 * CPU has it. "amx" is "avx512" plus a batched path on the AMX tile unit. */
const struct kernels *kernels_get(void);
/* A given version, or NULL when unknown or when the CPU lacks it. */
const struct kernels *kernels_by_name(const char *name);
/* Makes kernels_get() return the named version from now on (tests); false if unavailable. */
bool kernels_force(const char *name);

/* Tables of each version, filled by its own file; the SIMD ones only when compiled in. */
void kernels_scalar_fill(struct kernels *k);
void kernels_avx2_fill(struct kernels *k);
void kernels_avx512_fill(struct kernels *k);

/* One block of activations rounded to Q8_0 (32 values) or Q8_K (256) with AVX-512,
 * bit for bit as quant_quantize_row rounds it (kernels_avx512.c). */
void kernels_avx512_q8_0(const float *x, struct block_q8_0 *b);
void kernels_avx512_q8_K(const float *x, struct block_q8_K *b);

/* The AMX batched path (kernels_amx.c), used through the batch_ fields above. */
bool kernels_amx_init(void); /* asks the kernel for the tile state; false if refused */
bool kernels_amx_supports(enum quant_type wtype, int64_t n);
size_t kernels_amx_act_size(enum quant_type wtype, int64_t n, int64_t nt);
void kernels_amx_prepare(enum quant_type wtype, const float *x, int64_t n, int64_t t0, int64_t t1, void *dst);
size_t kernels_amx_scratch_size(int64_t n);
void kernels_amx_rows(enum quant_type wtype, int64_t n, const void *w, size_t ws, int nr, const void *xb,
                      int64_t nt, float *y, size_t ys, void *scratch);
