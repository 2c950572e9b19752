/* kvslots: saved KV caches of prompt starts that many requests share (the
 * system text with a document type's schema), so that each is evaluated once
 * per process even when requests of other kinds come in between and replace
 * the context's cache. A few slots, the least recently used one replaced. */
#pragma once

#include <stdint.h>

#include "runtime/rterror.h"

struct model_ctx;
struct kvslots;

/* Slots for contexts of one model; NULL when out of memory. Free with kvslots_free(). */
struct kvslots *kvslots_new(void);
void kvslots_free(struct kvslots *s);

/* When a slot holds a start of ids[0..n) longer than have (the tokens the
 * context's cache already shares with ids), puts it into ctx and kv_ids and
 * returns its length; else returns have and changes nothing. */
int32_t kvslots_restore(struct kvslots *s, struct model_ctx *ctx, const int32_t *ids, int32_t n, int32_t have,
                        int32_t *kv_ids);

/* Saves the context's first n_fixed positions, whose tokens are ids, unless a
 * slot holds them already or they are too short to be worth it or too long to
 * keep (then nothing happens). RTERROR_NOMEM leaves the slots as they were. */
enum rterror kvslots_save(struct kvslots *s, const struct model_ctx *ctx, const int32_t *ids, int32_t n_fixed,
                          char **reterr) __attribute__((warn_unused_result));
