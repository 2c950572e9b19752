/* sampler: picks the next token from a row of logits, greedily or by seeded
 * sampling with temperature, top-k and top-p, restricted to an allowed mask.
 *
 * Determinism: for the same parameters, seed, logits and masks, the sequence
 * of choices is the same on every machine (own PRNG, no libc rand()).
 *
 * The probability reported with each choice is the model's own belief, not
 * the sampling distribution: softmax of the raw logits (temperature 1, before
 * top-k/top-p) over the allowed tokens only. With no mask it is the plain
 * softmax probability of the token; under a schema constraint it is the
 * probability among the tokens the schema allows at that step. */
#pragma once

#include <stdint.h>

#include "runtime/rterror.h"

struct sampler_params {
	float temperature; /* <= 0: greedy (highest logit, lowest id on ties) */
	int32_t top_k;     /* <= 0: no limit */
	float top_p;       /* >= 1 or <= 0: no limit */
	uint64_t seed;
};

struct sampler;

/* *ret is owned by the caller; free with sampler_free(). */
enum rterror sampler_new(const struct sampler_params *p, struct sampler **ret, char **reterr)
    __attribute__((warn_unused_result));
void sampler_free(struct sampler *s);

/* Chooses a token among logits[0..n) whose bit is set in allowed (bit i of word
 * i/32), or among all when allowed is NULL. Tokens with non-finite logits are
 * never chosen. Returns the id, or -1 when no token is allowed; *ret_prob (if
 * not NULL) gets the probability described above. */
int32_t sampler_sample(struct sampler *s, const float *logits, int32_t n, const uint32_t *allowed, float *ret_prob);
