/* model_arch: what sets the phi3, gemma2 and gemma3 architectures apart from
 * llama, read from a GGUF file's metadata, and the few operations only they use
 * (GeGLU with the reference engine's F16 GELU table, logit soft-capping).
 *
 * Every field has a neutral value (false, 0, 1) under which the forward pass
 * is llama's, so model.c tests a field and never the architecture. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/model.h"
#include "runtime/rterror.h"

struct gguf_file;

struct arch_params {
	enum model_arch arch;
	bool gelu;           /* GeGLU feed-forward: gelu(gate) * up (gemma) instead of silu */
	bool post_norms;     /* RMS norms on the attention and feed-forward outputs (gemma2/3) */
	bool qk_norm;        /* per-head RMS norm of q and k before RoPE (gemma3) */
	float embd_scale;    /* token embeddings are multiplied by it (1: none) */
	float kq_scale;      /* multiplies q.k before the soft-cap and softmax */
	float attn_softcap;  /* s = cap * tanh(s / cap) on attention scores; 0: none */
	float final_softcap; /* the same on the output logits; 0: none */
	int32_t n_swa;       /* sliding window: a windowed layer's query at p sees keys p-n_swa+1..p; 0: none */
	float rope_base_swa; /* RoPE base of windowed layers; 0: the model's rope.freq_base */
	float rope_scale;    /* linear RoPE scaling of the other layers: positions are multiplied by it */
	/* LongRoPE (Phi-3.5, Phi-4-mini: rope_factors_long/short tensors): the long
	 * factors serve contexts above n_ctx_orig; cos and sin are multiplied by
	 * rope_mscale (rope.scaling.attn_factor) */
	int32_t n_ctx_orig;
	float rope_mscale;
};

/* Fills *ret for a model of architecture arch (name: its metadata prefix) whose
 * model_info in already holds the common hyperparameters. */
enum rterror arch_params_read(const struct gguf_file *g, enum model_arch arch, const char *name,
                              const struct model_info *in, struct arch_params *ret, char **reterr)
    __attribute__((warn_unused_result));

/* Whether layer il applies the sliding window (and its RoPE base). */
bool arch_layer_windowed(const struct arch_params *ap, int il);

/* F32 values of the reference engine's GELU table, indexed by an F16 input's
 * bits (65536 entries). Owned by the caller (free()); NULL when out of memory. */
float *arch_gelu_table_new(void);

/* gate[i] = gelu(gate[i]) * up[i] for i in [i0, i1), GELU read from table. */
void arch_geglu(const float *table, float *gate, const float *up, size_t i0, size_t i1);

/* v[i] = cap * tanh(v[i] / cap) for i < n. */
void arch_softcap(float *v, size_t n, float cap);
