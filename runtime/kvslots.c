/* kvslots: saved prompt starts (see kvslots.h). A start shorter than
 * KVSLOTS_MIN tokens costs little to evaluate again; one longer than a quarter
 * of the context is not kept, which bounds the slots' memory by the size of
 * the context's own KV cache. */
#include "runtime/kvslots.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/model.h"

#define KVSLOTS_COUNT 4
#define KVSLOTS_MIN 128

struct kvslot {
	int32_t *ids;
	int32_t n;
	void *state;
	uint64_t used;
};

struct kvslots {
	struct kvslot slot[KVSLOTS_COUNT];
	uint64_t tick;
};

struct kvslots *kvslots_new(void)
{
	return calloc(1, sizeof(struct kvslots));
}

void kvslots_free(struct kvslots *s)
{
	if (!s)
		return;
	for (int i = 0; i < KVSLOTS_COUNT; i++) {
		free(s->slot[i].ids);
		free(s->slot[i].state);
	}
	free(s);
}

int32_t kvslots_restore(struct kvslots *s, struct model_ctx *ctx, const int32_t *ids, int32_t n, int32_t have,
                        int32_t *kv_ids)
{
	struct kvslot *best = NULL;
	for (int i = 0; i < KVSLOTS_COUNT; i++) {
		struct kvslot *k = &s->slot[i];
		if (k->n > have && k->n < n && (!best || k->n > best->n) &&
		    memcmp(k->ids, ids, (size_t)k->n * sizeof(*ids)) == 0)
			best = k;
	}
	if (!best)
		return have;
	model_ctx_restore(ctx, best->n, best->state);
	memcpy(kv_ids, best->ids, (size_t)best->n * sizeof(*ids));
	best->used = ++s->tick;
	return best->n;
}

enum rterror kvslots_save(struct kvslots *s, const struct model_ctx *ctx, const int32_t *ids, int32_t n_fixed,
                          char **reterr)
{
	if (n_fixed < KVSLOTS_MIN || n_fixed > model_ctx_size(ctx) / 4 || n_fixed > model_ctx_pos(ctx))
		return RTERROR_OK;
	struct kvslot *victim = &s->slot[0];
	for (int i = 0; i < KVSLOTS_COUNT; i++) {
		struct kvslot *k = &s->slot[i];
		if (k->n == n_fixed && memcmp(k->ids, ids, (size_t)n_fixed * sizeof(*ids)) == 0) {
			k->used = ++s->tick;
			return RTERROR_OK;
		}
		if (k->used < victim->used)
			victim = k;
	}
	int32_t *nids = malloc((size_t)n_fixed * sizeof(*ids));
	void *state = malloc(model_ctx_state_size(ctx, n_fixed));
	if (!nids || !state) {
		free(nids);
		free(state);
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory for a saved prompt start");
	}
	memcpy(nids, ids, (size_t)n_fixed * sizeof(*ids));
	model_ctx_save(ctx, n_fixed, state);
	free(victim->ids);
	free(victim->state);
	*victim = (struct kvslot){nids, n_fixed, state, ++s->tick};
	return RTERROR_OK;
}
