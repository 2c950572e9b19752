/* lora: reading LoRA adapter files and pairing their tensors.
 *
 * Checks follow what the reference engine refuses: a file that is not an
 * adapter, an adapter of another architecture, a tensor that is not half of a
 * lora_a/lora_b pair, or a pair whose shapes do not fit together. Whether each
 * pair fits a weight of the model is checked by the model, which knows them. */
#include "runtime/lora.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gguf.h"
#include "runtime/quant.h"

#define LORA_MAX_RANK 8192

static bool str_is(struct gguf_str s, const char *want)
{
	return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static enum rterror check_metadata(const struct gguf_file *g, const char *arch, float *alpha, char **reterr)
{
	struct gguf_str s;
	if (!gguf_get_str(g, "general.type", &s) || !str_is(s, "adapter"))
		return rterror_set(reterr, RTERROR_FORMAT, "not an adapter file (general.type is not \"adapter\")");
	if (!gguf_get_str(g, "adapter.type", &s) || !str_is(s, "lora"))
		return rterror_set(reterr, RTERROR_UNSUPPORTED,
		                   "adapter.type is not \"lora\" (only LoRA adapters are supported)");
	if (!gguf_get_str(g, "general.architecture", &s))
		return rterror_set(reterr, RTERROR_FORMAT, "metadata 'general.architecture' is missing");
	if (!str_is(s, arch))
		return rterror_set(reterr, RTERROR_UNSUPPORTED, "adapter is for architecture '%.*s', the model is '%s'",
		                   (int)(s.len > 64 ? 64 : s.len), s.ptr, arch);
	*alpha = 0.0f;
	if (gguf_find_key(g, "adapter.lora.alpha") >= 0 &&
	    (!gguf_get_f32(g, "adapter.lora.alpha", alpha) || !isfinite(*alpha) || *alpha < 0.0f))
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "metadata 'adapter.lora.alpha' is not a non-negative number");
	return RTERROR_OK;
}

/* The name without its ".lora_a"/".lora_b" suffix; *is_a says which. NULL if neither. */
static char *target_of(const char *name, bool *is_a)
{
	size_t n = strlen(name);
	if (n <= 7 || (strcmp(name + n - 7, ".lora_a") != 0 && strcmp(name + n - 7, ".lora_b") != 0))
		return NULL;
	*is_a = name[n - 1] == 'a';
	return strndup(name, n - 7);
}

static enum rterror add_tensor(struct lora_adapter *ad, const struct gguf_tensor *t, char **reterr)
{
	bool is_a;
	char *target = target_of(t->name, &is_a);
	if (!target)
		return rterror_set(reterr, RTERROR_FORMAT, "tensor '%s' is not a LoRA tensor (.lora_a or .lora_b)",
		                   t->name);
	if (t->n_dims != 2) {
		free(target);
		return rterror_set(reterr, RTERROR_FORMAT, "tensor '%s' is not a matrix", t->name);
	}
	struct lora_pair *p = lora_find(ad, target);
	if (!p) {
		p = &ad->pairs[ad->n_pairs++];
		p->target = target;
	} else {
		free(target);
	}
	if ((is_a && p->a) || (!is_a && p->b))
		return rterror_set(reterr, RTERROR_FORMAT, "tensor '%s' appears twice", t->name);
	if (is_a)
		p->a = t;
	else
		p->b = t;
	return RTERROR_OK;
}

static enum rterror check_pair(struct lora_adapter *ad, const struct lora_pair *p, char **reterr)
{
	if (!p->a || !p->b)
		return rterror_set(reterr, RTERROR_FORMAT, "tensor '%s.%s' is missing", p->target,
		                   p->a ? "lora_b" : "lora_a");
	int64_t rank = p->b->ne[0];
	if (p->a->ne[1] != rank || rank < 1 || rank > LORA_MAX_RANK)
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "'%s': lora_a has %" PRId64 " rows and lora_b rows of %" PRId64
		                   " (both are the rank, 1 to %d)",
		                   p->target, p->a->ne[1], rank, LORA_MAX_RANK);
	if (rank > ad->rank)
		ad->rank = (int32_t)rank;
	return RTERROR_OK;
}

enum rterror lora_open(const char *path, const char *arch, float scale, struct lora_adapter **ret, char **reterr)
{
	if (!isfinite(scale))
		return rterror_set(reterr, RTERROR_INVALID, "%s: the scale is not a number", path);
	struct lora_adapter *ad = calloc(1, sizeof *ad);
	if (!ad)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	ad->scale = scale;
	char *why = NULL;
	enum rterror err = gguf_open(path, &ad->g, &why);
	if (!err)
		err = check_metadata(ad->g, arch, &ad->alpha, &why);
	int64_t n = err ? 0 : gguf_n_tensors(ad->g);
	if (!err && n == 0)
		err = rterror_set(&why, RTERROR_FORMAT, "the adapter has no tensors");
	ad->path = strdup(path);
	ad->pairs = n ? calloc((size_t)n, sizeof *ad->pairs) : NULL;
	if (!err && (!ad->path || !ad->pairs))
		err = rterror_set(&why, RTERROR_NOMEM, "out of memory");
	for (int64_t i = 0; !err && i < n; i++)
		err = add_tensor(ad, gguf_tensor_at(ad->g, i), &why);
	for (size_t i = 0; !err && i < ad->n_pairs; i++)
		err = check_pair(ad, &ad->pairs[i], &why);
	if (err) {
		rterror_set(reterr, err, "adapter %s: %s", path, why ? why : rterror_str(err));
		free(why);
		lora_close(ad);
		return err;
	}
	*ret = ad;
	return RTERROR_OK;
}

void lora_close(struct lora_adapter *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n_pairs; i++)
		free(a->pairs[i].target);
	free(a->pairs);
	free(a->path);
	gguf_close(a->g);
	free(a);
}

struct lora_pair *lora_find(struct lora_adapter *a, const char *name)
{
	for (size_t i = 0; i < a->n_pairs; i++)
		if (strcmp(a->pairs[i].target, name) == 0)
			return &a->pairs[i];
	return NULL;
}

float lora_factor(const struct lora_adapter *a, const struct lora_pair *p)
{
	return a->alpha > 0.0f ? a->scale * a->alpha / (float)p->b->ne[0] : a->scale;
}

static enum rterror check_fit(const struct lora_pair *p, const struct lora_target *t, char **reterr)
{
	if (p->a->ne[0] == t->n_in && p->b->ne[1] == t->n_total)
		return RTERROR_OK;
	return rterror_set(reterr, RTERROR_FORMAT,
	                   "'%s' adapts a [%" PRId64 ", %" PRId64 "] weight; the model's is [%" PRId64 ", %" PRId64 "]",
	                   p->target, p->a->ne[0], p->b->ne[1], t->n_in, t->n_total);
}

static enum rterror check_all_used(const struct lora_adapter *ad, char **reterr)
{
	for (size_t i = 0; i < ad->n_pairs; i++) {
		if (ad->pairs[i].used)
			continue;
		if (strcmp(ad->pairs[i].target, "token_embd.weight") == 0)
			return rterror_set(reterr, RTERROR_UNSUPPORTED,
			                   "adapting the token embedding is not supported");
		return rterror_set(reterr, RTERROR_FORMAT, "'%s' adapts no weight of the model", ad->pairs[i].target);
	}
	return RTERROR_OK;
}

enum rterror lora_attach(struct lora_adapter *ad, const struct lora_target *t, size_t n_targets,
                         struct lora_link **ret_links, int32_t *ret_n_links, char **reterr)
{
	size_t n_links = 0;
	enum rterror err = RTERROR_OK;
	for (size_t i = 0; i < ad->n_pairs; i++)
		ad->pairs[i].used = false;
	for (size_t i = 0; !err && i < n_targets; i++) {
		struct lora_pair *p = lora_find(ad, t[i].name);
		if (p && !(err = check_fit(p, &t[i], reterr))) {
			p->used = true;
			n_links++;
		}
	}
	if (err || (err = check_all_used(ad, reterr)))
		return err;
	struct lora_link *links = calloc(n_links ? n_links : 1, sizeof *links);
	if (!links)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n_targets; i++) {
		const struct lora_pair *p = lora_find(ad, t[i].name);
		if (!p)
			continue;
		int64_t rank = p->b->ne[0];
		size_t b_row = quant_row_size(p->b->type, rank);
		links[k] = (struct lora_link){
		    .a = {.type = p->a->type, .data = p->a->data, .n_in = p->a->ne[0], .n_out = rank},
		    .b = {.type = p->b->type,
		          .data = (const uint8_t *)p->b->data + (size_t)t[i].row0 * b_row,
		          .n_in = rank,
		          .n_out = t[i].n_out},
		    .factor = lora_factor(ad, p),
		};
		struct lora_link **tail = t[i].chain;
		while (*tail)
			tail = &(*tail)->next;
		*tail = &links[k++];
	}
	*ret_links = links;
	*ret_n_links = (int32_t)ad->n_pairs; /* each pair was used: tensors changed */
	return RTERROR_OK;
}
