/* test_sampler: greedy choice and ties, masks, reported probabilities,
 * determinism per seed, and that sampling follows the tempered distribution
 * and respects top-k and top-p. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sampler.h"
#include "tests/runtime/tap.h"

static struct sampler *make(float temp, int32_t k, float p, uint64_t seed)
{
	struct sampler_params sp = {.temperature = temp, .top_k = k, .top_p = p, .seed = seed};
	struct sampler *s = NULL;
	if (sampler_new(&sp, &s, NULL))
		return NULL;
	return s;
}

static void test_greedy(void)
{
	struct sampler *s = make(0, 0, 1, 1);
	float l[6] = {1, 3, 2, 3, -INFINITY, 0};
	float p = 0;
	int32_t id = sampler_sample(s, l, 6, NULL, &p);
	double sum = exp(1 - 3.0) + 1 + exp(2 - 3.0) + 1 + exp(0 - 3.0);
	tap_ok(id == 1, "/sampler/greedy/lowest-id-on-tie", "id %d", id);
	tap_ok(fabs(p - 1 / sum) < 1e-6, "/sampler/greedy/probability", "p %f want %f", p, 1 / sum);
	uint32_t mask = (1u << 2) | (1u << 5);
	id = sampler_sample(s, l, 6, &mask, &p);
	double want = 1 / (1 + exp(-2.0));
	tap_ok(id == 2 && fabs(p - want) < 1e-6, "/sampler/greedy/masked", "id %d p %f", id, p);
	mask = 1u << 4; /* only a -inf logit */
	tap_ok(sampler_sample(s, l, 6, &mask, &p) == -1, "/sampler/greedy/nothing-allowed", NULL);
	sampler_free(s);
}

static void test_distribution(void)
{
	enum { N = 5, DRAWS = 40000 };
	float l[N] = {0.0f, 1.0f, 2.0f, 0.5f, -1.0f};
	float t = 0.7f;
	struct sampler *s = make(t, 0, 1, 42);
	int hits[N] = {0};
	for (int i = 0; i < DRAWS; i++)
		hits[sampler_sample(s, l, N, NULL, NULL)]++;
	double z = 0;
	for (int i = 0; i < N; i++)
		z += exp(l[i] / t);
	double worst = 0;
	for (int i = 0; i < N; i++) {
		double want = exp(l[i] / t) / z, got = (double)hits[i] / DRAWS;
		worst = fmax(worst, fabs(want - got));
	}
	tap_ok(worst < 0.01, "/sampler/temperature/follows-softmax", "max deviation %f", worst);
	sampler_free(s);

	s = make(1.0f, 2, 1, 7);
	memset(hits, 0, sizeof(hits));
	for (int i = 0; i < 5000; i++)
		hits[sampler_sample(s, l, N, NULL, NULL)]++;
	tap_ok(hits[0] == 0 && hits[3] == 0 && hits[4] == 0 && hits[1] > 0 && hits[2] > 0, "/sampler/top-k/only-k-best",
	       "%d %d %d %d %d", hits[0], hits[1], hits[2], hits[3], hits[4]);
	sampler_free(s);

	/* probabilities at t=1: 2 -> .49, 1 -> .18, .5 -> .11, 0 -> .067 ; top_p .6 keeps ids 2 and 1 */
	s = make(1.0f, 0, 0.6f, 9);
	memset(hits, 0, sizeof(hits));
	for (int i = 0; i < 5000; i++)
		hits[sampler_sample(s, l, N, NULL, NULL)]++;
	tap_ok(hits[0] == 0 && hits[3] == 0 && hits[4] == 0 && hits[1] > 0 && hits[2] > hits[1],
	       "/sampler/top-p/nucleus", "%d %d %d %d %d", hits[0], hits[1], hits[2], hits[3], hits[4]);
	sampler_free(s);
}

static void test_seed(void)
{
	float l[64];
	for (int i = 0; i < 64; i++)
		l[i] = (float)((i * 37) % 11) * 0.3f;
	struct sampler *a = make(1.0f, 0, 0.95f, 123), *b = make(1.0f, 0, 0.95f, 123), *c = make(1.0f, 0, 0.95f, 124);
	bool same = true, differ = false;
	for (int i = 0; i < 200; i++) {
		int32_t x = sampler_sample(a, l, 64, NULL, NULL), y = sampler_sample(b, l, 64, NULL, NULL),
		        z = sampler_sample(c, l, 64, NULL, NULL);
		same &= x == y;
		differ |= x != z;
	}
	tap_ok(same, "/sampler/seed/deterministic", NULL);
	tap_ok(differ, "/sampler/seed/other-seed-differs", NULL);
	uint32_t mask[2] = {0x0000F000u, 0};
	bool inside = true;
	float p;
	for (int i = 0; i < 500; i++) {
		int32_t x = sampler_sample(a, l, 64, mask, &p);
		inside &= x >= 12 && x < 16 && p > 0 && p <= 1;
	}
	tap_ok(inside, "/sampler/mask/respected", NULL);
	sampler_free(a);
	sampler_free(b);
	sampler_free(c);
	struct sampler_params bad = {.temperature = NAN};
	struct sampler *s = NULL;
	tap_ok(sampler_new(&bad, &s, NULL) == RTERROR_INVALID, "/sampler/params/nan-refused", NULL);
}

int main(void)
{
	test_greedy();
	test_distribution();
	test_seed();
	return tap_done();
}
