/* model: a transformer (llama, qwen2, phi3, gemma2 or gemma3 architecture)
 * loaded from a GGUF file, optionally with LoRA adapters, and evaluation
 * contexts that hold a KV cache.
 *
 * A struct model is read-only once loaded and may be shared by several
 * contexts; a struct model_ctx is used by one thread at a time (it runs its
 * own thread pool inside model_eval). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/matmul.h"
#include "runtime/rterror.h"

struct gguf_file;
struct model;
struct model_ctx;

enum model_arch {
	MODEL_ARCH_LLAMA,
	MODEL_ARCH_QWEN2,
	MODEL_ARCH_PHI3,
	MODEL_ARCH_GEMMA2,
	MODEL_ARCH_GEMMA3,
	MODEL_ARCH_COUNT
};

struct model_info {
	enum model_arch arch;
	const char *arch_name; /* "llama", "qwen2", "phi3", "gemma2", "gemma3" */
	int32_t n_vocab;
	int32_t n_ctx_train;
	int32_t n_embd;
	int32_t n_layer;
	int32_t n_head;
	int32_t n_head_kv;
	int32_t head_dim;
	int32_t n_ff;
	float rope_base;
	float rms_eps;
	bool tied_output;    /* no output.weight: the token embedding is the output projection */
	int32_t n_swa;       /* sliding attention window of the windowed layers; 0: none */
	uint64_t n_params;   /* number of weights */
	uint64_t weight_bytes;
};

/* Loads the model at path (memory-mapped). *ret is owned by the caller; free with
 * model_free(). Errors name what is missing or wrong (unknown architecture, a
 * missing tensor, a tensor of the wrong shape or an unsupported type). */
enum rterror model_load(const char *path, struct model **ret, char **reterr)
	__attribute__((warn_unused_result));
void model_free(struct model *m);
const struct model_info *model_get_info(const struct model *m);
/* The GGUF file the model was loaded from (borrowed; lives as long as m). */
const struct gguf_file *model_gguf(const struct model *m);

#define MODEL_MAX_ADAPTERS 16

struct model_adapter_info {
	const char *path;  /* as given to model_add_adapter() */
	float alpha;       /* adapter.lora.alpha; 0: the file gives none */
	int32_t rank;      /* the largest rank of its pairs */
	float scale;
	int32_t n_weights; /* weight matrices it changes */
	uint64_t bytes;    /* file size */
};

/* Applies the LoRA adapter at path (lora.h) with the given scale, on top of
 * the adapters already applied: each weight it names gets the term
 * scale * alpha / rank * B (A x) after its product. Call before any context
 * of m exists. Nothing changes on failure: RTERROR_FORMAT / UNSUPPORTED naming
 * what does not fit (another architecture, a tensor that adapts no weight of
 * the model, a shape that differs), RTERROR_LIMIT past MODEL_MAX_ADAPTERS. */
enum rterror model_add_adapter(struct model *m, const char *path, float scale, char **reterr)
	__attribute__((warn_unused_result));
int model_n_adapters(const struct model *m);
/* Adapter i < model_n_adapters(m), in the order added (borrowed from m). */
const struct model_adapter_info *model_adapter(const struct model *m, int i);

/* A context with room for n_ctx positions (<= 0: the model's training context),
 * n_threads threads (<= 0: one per core) and the given matmul precision.
 * Free with model_ctx_free(). */
enum rterror model_ctx_new(const struct model *m, int32_t n_ctx, int n_threads,
                           enum matmul_precision prec, struct model_ctx **ret, char **reterr)
	__attribute__((warn_unused_result));
void model_ctx_free(struct model_ctx *c);
int32_t model_ctx_size(const struct model_ctx *c);
/* Positions already in the KV cache. */
int32_t model_ctx_pos(const struct model_ctx *c);
/* Forgets every position from n_past on (n_past <= model_ctx_pos), so that a
 * shared prefix such as a system prompt is evaluated once and reused. */
void model_ctx_truncate(struct model_ctx *c, int32_t n_past);

/* A copy of the KV cache's first n positions (n <= model_ctx_pos()), so that a
 * prefix shared by many requests survives other requests in between:
 * model_ctx_state_size() bytes, written by model_ctx_save() and put back into
 * a context of the same model and size by model_ctx_restore(), after which
 * model_ctx_pos() is n. */
size_t model_ctx_state_size(const struct model_ctx *c, int32_t n);
void model_ctx_save(const struct model_ctx *c, int32_t n, void *dst);
void model_ctx_restore(struct model_ctx *c, int32_t n, const void *src);

/* Evaluates n_tokens tokens as one batch at positions model_ctx_pos() onwards
 * and appends them to the KV cache. logits (caller's storage) receives n_vocab
 * floats for the last token, or n_tokens * n_vocab floats (one row per token)
 * when all_logits is true; it may be NULL when no logits are wanted.
 * RTERROR_LIMIT when the context would overflow; nothing is changed then. */
enum rterror model_eval(struct model_ctx *c, const int32_t *tokens, int32_t n_tokens,
                        float *logits, bool all_logits, char **reterr)
	__attribute__((warn_unused_result));
