/* kernels_tile: the loops over tiles of weight rows and tokens that the
 * AVX2 and AVX-512 kernel files share. The including file defines KERNELS_NR
 * and KERNELS_NT (its largest tile) and, for each weight type, a tile
 * function tile_NAME(n, w, ws, x, xs, y, ys, R, N) taking R <= KERNELS_NR rows
 * and N <= KERNELS_NT tokens as compile-time constants. */
#pragma once

/* The fewest tokens that get tiles of several rows (below, see KERNELS_TILE_RN). */
#define KERNELS_NR_MIN_NT 16

/* Tiles of up to KERNELS_NR rows times KERNELS_NT tokens: tokens outside, so a
 * group of tokens' activations stays in the L1 cache while the rows go by.
 * Below KERNELS_NR_MIN_NT tokens (generation, drafts, forced tokens) rows go
 * one at a time: the weights are then streamed from memory, and one stream per
 * thread reads them faster than KERNELS_NR interleaved ones (a fifth more
 * bytes per second with one token). An output's operations are the same in
 * either case. */
#define KERNELS_TILE_RN(fn, n, w, ws, nr, x, xs, nt, y, ys)                                                            \
	do {                                                                                                           \
		for (int t_ = 0; t_ < (nt); t_ += KERNELS_NT) {                                                        \
			const uint8_t *xt_ = (const uint8_t *)(x) + (size_t)t_ * (xs);                                 \
			int n_ = (nt)-t_ < KERNELS_NT ? (nt)-t_ : KERNELS_NT;                                          \
			for (int r_ = 0; r_ < (nr);) {                                                                 \
				const uint8_t *wr_ = (const uint8_t *)(w) + (size_t)r_ * (ws);                         \
				float *yt_ = (y) + (size_t)t_ * (ys) + r_;                                             \
				if ((nr)-r_ >= KERNELS_NR && (nt) >= KERNELS_NR_MIN_NT) {                              \
					KERNELS_TILE_N(fn, n, wr_, ws, xt_, xs, yt_, ys, KERNELS_NR, n_);              \
					r_ += KERNELS_NR;                                                              \
				} else {                                                                               \
					KERNELS_TILE_N(fn, n, wr_, ws, xt_, xs, yt_, ys, 1, n_);                       \
					r_++;                                                                          \
				}                                                                                      \
			}                                                                                              \
		}                                                                                                      \
	} while (0)

#define KERNELS_TILE_N(fn, n, w, ws, x, xs, y, ys, R, N)                                                               \
	do {                                                                                                           \
		switch (N) {                                                                                           \
		case 1:                                                                                                \
			fn(n, w, ws, x, xs, y, ys, R, 1);                                                              \
			break;                                                                                         \
		case 2:                                                                                                \
			fn(n, w, ws, x, xs, y, ys, R, 2);                                                              \
			break;                                                                                         \
		case 3:                                                                                                \
			fn(n, w, ws, x, xs, y, ys, R, 3);                                                              \
			break;                                                                                         \
		default:                                                                                               \
			fn(n, w, ws, x, xs, y, ys, R, 4);                                                              \
			break;                                                                                         \
		}                                                                                                      \
	} while (0)

#define KERNELS_DEFINE_GEMM_RN(name)                                                                                   \
	static void gemm_##name(int64_t n, const void *w, size_t ws, int nr, const void *x, size_t xs, int nt,         \
	                        float *y, size_t ys)                                                                   \
	{                                                                                                              \
		KERNELS_TILE_RN(tile_##name, n, w, ws, nr, x, xs, nt, y, ys);                                          \
	}
