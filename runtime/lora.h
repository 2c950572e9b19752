/* lora: LoRA adapters in the GGUF adapter format (general.type "adapter",
 * adapter.type "lora", adapter.lora.alpha; for each adapted weight W a pair of
 * tensors "<W>.lora_a", ne [n_in, rank], and "<W>.lora_b", ne [rank, n_out]).
 *
 * An adapter is applied without merging: the model keeps, for each adapted
 * weight, a chain of lora_links, and every product y = W x is followed by
 * y += factor * B (A x) for each link (model.c). The adapter file stays
 * mapped for as long as the model uses it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/matmul.h"
#include "runtime/rterror.h"

struct gguf_file;
struct gguf_tensor;

/* One adapter's term on one weight (or on a row range of a fused weight). */
struct lora_link {
	struct matmul_weight a, b; /* a: rank rows of n_in; b: n_out rows of rank */
	float factor;              /* scale * alpha / rank */
	struct lora_link *next;
};

struct lora_pair {
	char *target; /* the base tensor's name, "blk.0.attn_q.weight" */
	const struct gguf_tensor *a, *b;
	bool used;
};

struct lora_adapter {
	struct gguf_file *g;
	char *path;
	float alpha; /* 0 when the file gives none: the factor is then the scale alone */
	float scale;
	int32_t rank; /* the largest of its pairs' ranks */
	struct lora_pair *pairs;
	size_t n_pairs;
};

/* Opens the adapter at path for a model of architecture arch ("llama"...),
 * checking its metadata and that its tensors come in well-shaped pairs.
 * *ret is the caller's; free with lora_close(). */
enum rterror lora_open(const char *path, const char *arch, float scale, struct lora_adapter **ret, char **reterr)
    __attribute__((warn_unused_result));
void lora_close(struct lora_adapter *a);

/* The pair that adapts the base tensor named name, or NULL. */
struct lora_pair *lora_find(struct lora_adapter *a, const char *name);

/* What the pair's product is multiplied by: scale * alpha / rank (scale alone without alpha). */
float lora_factor(const struct lora_adapter *a, const struct lora_pair *p);

/* A weight an adapter may change: rows [row0, row0 + n_out) of the tensor
 * name (n_total rows of n_in), whose product is followed by chain's terms. */
struct lora_target {
	const char *name;
	int64_t n_in, row0, n_out, n_total;
	struct lora_link **chain;
};

/* Appends one link to the chain of each target that a pair of ad names.
 * Every pair must fit the shape of the tensor it names and name one of the
 * targets; nothing changes otherwise. *ret_links (free() once no chain uses
 * it) holds the links; *ret_n_links counts the tensors changed (a fused
 * tensor's parts are one). */
enum rterror lora_attach(struct lora_adapter *ad, const struct lora_target *t, size_t n_targets,
                         struct lora_link **ret_links, int32_t *ret_n_links, char **reterr)
    __attribute__((warn_unused_result));
