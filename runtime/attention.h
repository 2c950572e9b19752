/* attention: the inner loop of softmax attention for the query heads that
 * share one key/value head, with AVX-512 or with AVX2 and FMA (model.c's
 * attend_heads calls the first where the kernels use AVX-512 and a head's size
 * is a multiple of 16, the second where they use AVX2 and it is a multiple of 8;
 * elsewhere it uses its own loops).
 *
 * q holds ng query heads of hd floats each, one after another; key and value j
 * are the hd floats at k + j * stride and v + j * stride, for j0 <= j < n. out
 * receives the ng heads' outputs (ng * hd floats). scores is scratch of ng rows
 * of sstride floats (sstride >= n). Scores are q.k * scale, capped as
 * cap * tanh(s / cap) when cap > 0 (arch_softcap), then softmax-weighted. */
#pragma once

#include <stddef.h>

#define ATTENTION_MAX_HEADS 8
#define ATTENTION_MAX_HD 256

typedef void attention_heads_fn(const float *q, int ng, int hd, const float *k, const float *v, size_t stride, int j0,
                                int n, float scale, float cap, float *scores, size_t sstride, float *out);
attention_heads_fn attention_heads_avx512, attention_heads_avx2;
