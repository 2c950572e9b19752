/* sampler: greedy and seeded temperature/top-k/top-p sampling over masked logits.
 *
 * Candidates whose tempered probability relative to the best is below e^-30
 * are dropped before sorting: together they weigh less than 1e-7 even for a
 * vocabulary of a million tokens, and dropping them keeps sampling cheap with
 * large vocabularies. The PRNG is splitmix64-seeded xorshift64*. */
#include "runtime/sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#define SAMPLER_CUTOFF 30.0f

struct cand {
	float logit;
	int32_t id;
};

struct sampler {
	struct sampler_params p;
	uint64_t rng;
	struct cand *cands;
	int32_t cap;
};

enum rterror sampler_new(const struct sampler_params *p, struct sampler **ret, char **reterr)
{
	if (!p || !ret)
		return rterror_set(reterr, RTERROR_INVALID, "sampler_new: NULL argument");
	if (!isfinite(p->temperature) || !isfinite(p->top_p))
		return rterror_set(reterr, RTERROR_INVALID, "sampler: temperature and top_p must be finite");
	struct sampler *s = calloc(1, sizeof(*s));
	if (!s)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	s->p = *p;
	/* splitmix64 of the seed, so that nearby seeds give unrelated streams */
	uint64_t z = p->seed + 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	s->rng = z ? z : 0x2545F4914F6CDD1Dull;
	*ret = s;
	return RTERROR_OK;
}

void sampler_free(struct sampler *s)
{
	if (!s)
		return;
	free(s->cands);
	free(s);
}

static double next_uniform(struct sampler *s)
{
	uint64_t x = s->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->rng = x;
	return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

static bool is_allowed(const uint32_t *allowed, int32_t i, const float *logits)
{
	if (allowed && !((allowed[i >> 5] >> (i & 31)) & 1))
		return false;
	return isfinite(logits[i]);
}

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->logit != y->logit)
		return x->logit > y->logit ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Probability of id under softmax of the raw logits over the allowed tokens. */
static float model_prob(const float *logits, int32_t n, const uint32_t *allowed, float max, int32_t id)
{
	double sum = 0;
	for (int32_t i = 0; i < n; i++)
		if (is_allowed(allowed, i, logits))
			sum += exp((double)logits[i] - max);
	return (float)(exp((double)logits[id] - max) / sum);
}

static int32_t sample_tempered(struct sampler *s, const float *logits, int32_t n, const uint32_t *allowed, float max)
{
	float t = s->p.temperature;
	int32_t m = 0;
	for (int32_t i = 0; i < n; i++)
		if (is_allowed(allowed, i, logits) && (max - logits[i]) / t < SAMPLER_CUTOFF)
			s->cands[m++] = (struct cand){logits[i], i};
	qsort(s->cands, (size_t)m, sizeof(*s->cands), cmp_cand);
	if (s->p.top_k > 0 && m > s->p.top_k)
		m = s->p.top_k;
	double sum = 0;
	for (int32_t i = 0; i < m; i++)
		sum += exp((double)(s->cands[i].logit - max) / t);
	if (s->p.top_p > 0 && s->p.top_p < 1) {
		double acc = 0;
		int32_t keep = 0;
		while (keep < m && acc < s->p.top_p * sum)
			acc += exp((double)(s->cands[keep++].logit - max) / t);
		m = keep > 0 ? keep : 1;
		sum = acc > 0 ? acc : sum;
	}
	double r = next_uniform(s) * sum, acc = 0;
	for (int32_t i = 0; i < m; i++) {
		acc += exp((double)(s->cands[i].logit - max) / t);
		if (r < acc)
			return s->cands[i].id;
	}
	return s->cands[m - 1].id;
}

int32_t sampler_sample(struct sampler *s, const float *logits, int32_t n, const uint32_t *allowed, float *ret_prob)
{
	int32_t best = -1;
	for (int32_t i = 0; i < n; i++)
		if (is_allowed(allowed, i, logits) && (best < 0 || logits[i] > logits[best]))
			best = i;
	if (best < 0)
		return -1;
	float max = logits[best];
	int32_t id = best;
	if (s->p.temperature > 0) {
		if (n > s->cap) {
			struct cand *c = realloc(s->cands, (size_t)n * sizeof(*c));
			if (!c)
				goto out; /* fall back to the greedy choice rather than fail */
			s->cands = c;
			s->cap = n;
		}
		id = sample_tempered(s, logits, n, allowed, max);
	}
out:
	if (ret_prob)
		*ret_prob = model_prob(logits, n, allowed, max, id);
	return id;
}
