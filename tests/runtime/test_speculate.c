/* test_speculate: the extraction speed-ups of rt_generate (forced tokens in one
 * batch, drafts from the prompt checked in one batch, the KV cache of a shared
 * prefix) give exactly the output of plain decoding, one token per forward
 * pass, with the real stories260K model and random-weight models of several
 * architectures and weight types, under each kernel set this processor has;
 * and drafts are accepted when the answer copies its prompt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/draft.h"
#include "runtime/kernels.h"
#include "runtime/runtime.h"
#include "tests/runtime/tap.h"

static const char SCHEMA[] = "{\"type\":\"object\",\"properties\":{"
                             "\"name\":{\"type\":[\"string\",\"null\"],\"maxLength\":24},"
                             "\"friend\":{\"type\":\"string\",\"maxLength\":24},"
                             "\"count\":{\"type\":[\"integer\",\"null\"]},"
                             "\"toys\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
                             "\"what\":{\"type\":\"string\",\"maxLength\":16},\"colour\":{\"enum\":[\"red\",\"blue\","
                             "null]}},\"required\":[\"what\",\"colour\"]},\"maxItems\":3}},"
                             "\"required\":[\"name\",\"friend\",\"count\",\"toys\"]}";

static void test_lookup(void)
{
	int32_t out[8];
	const int32_t a[] = {1, 2, 3, 4, 5, 9, 2, 3};
	int32_t n = draft_lookup(a, 8, out, 8, 2);
	tap_ok(n == 5 && out[0] == 4 && out[1] == 5 && out[2] == 9 && out[3] == 2 && out[4] == 3,
	       "/speculate/lookup/continues-the-match", "%d", n);
	n = draft_lookup(a, 8, out, 2, 2);
	tap_ok(n == 2 && out[0] == 4 && out[1] == 5, "/speculate/lookup/at-most-max", "%d", n);
	const int32_t b[] = {7, 1, 8, 6, 1, 2, 3, 1};
	n = draft_lookup(b, 8, out, 8, 1);
	tap_ok(n == 1 && out[0] == 2, "/speculate/lookup/one-token-match-latest-and-short", "%d %d", n, out[0]);
	const int32_t c[] = {1, 2, 3, 4};
	tap_ok(draft_lookup(c, 4, out, 8, 2) == 0, "/speculate/lookup/no-match", NULL);
	const int32_t d[] = {5, 6, 7, 1, 6, 7, 2, 5, 6, 7};
	n = draft_lookup(d, 10, out, 8, 2);
	tap_ok(n == 7 && out[0] == 1 && out[1] == 6 && out[6] == 7, "/speculate/lookup/longest-match-wins", "%d %d", n,
	       out[0]);
}

static struct rt_result *gen(struct rt_model *m, const struct rt_request *req)
{
	struct rt_result *r = NULL;
	char *err = NULL;
	if (rt_generate(m, req, &r, &err) != RTERROR_OK) {
		tap_diag("generate: %s", err);
		r = NULL;
	}
	free(err);
	return r;
}

static bool same_output(const struct rt_result *a, const struct rt_result *b)
{
	if (!a || !b || a->n_tokens != b->n_tokens || a->text_len != b->text_len || strcmp(a->text, b->text) != 0)
		return false;
	for (size_t i = 0; i < a->n_tokens; i++)
		if (a->tokens[i].id != b->tokens[i].id || a->tokens[i].prob != b->tokens[i].prob ||
		    a->tokens[i].forced != b->tokens[i].forced)
			return false;
	return true;
}

/* The same requests, plain and not: equal outputs; returns the drafts' tally. */
static void compare(const char *name, const char *path, const char *kernels, int32_t *drafted, int32_t *accepted)
{
	struct rt_model *m = NULL;
	char *err = NULL;
	struct rt_local_options o = {.n_ctx = 512, .n_threads = 2};
	if (rt_model_open_local(path, &o, &m, &err) != RTERROR_OK) {
		tap_ok(false, "/speculate/open", "%s: %s", path, err);
		free(err);
		return;
	}
	const char *story = "Lily had a red ball and a blue car. Her friend Tom had three toys: a red ball, a blue "
	                    "boat and a big dog. Lily and Tom played in the park all day.";
	const char *tails[] = {" Lily", " Tom had", " The park was big. Lily had a red ball and"};
	bool same = true, fewer = true, forced = true;
	for (int with_schema = 0; with_schema < 2; with_schema++)
		for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
			char prompt[512];
			snprintf(prompt, sizeof prompt, "%s%s", story, tails[i]);
			struct rt_request req = {.system = "Read the story.",
			                         .prompt = prompt,
			                         .max_tokens = 48,
			                         .schema = with_schema ? SCHEMA : NULL};
			struct rt_result *fast = gen(m, &req);
			req.plain = true;
			struct rt_result *plain = gen(m, &req);
			bool ok = same_output(fast, plain);
			if (!ok)
				tap_diag("%s %s: '%s' | plain '%s'", name, kernels, fast ? fast->text : "?",
				         plain ? plain->text : "?");
			same &= ok;
			/* forced tokens always save passes; drafts only where accepted */
			fewer &= fast && plain && fast->n_evals <= plain->n_evals &&
			         (!with_schema || fast->n_evals < plain->n_evals);
			forced &=
			    !with_schema || (fast && fast->n_forced > 0 && plain && plain->n_forced == fast->n_forced);
			*drafted += fast ? fast->n_drafted : 0;
			*accepted += fast ? fast->n_accepted : 0;
			rt_result_free(fast);
			rt_result_free(plain);
		}
	char tname[256];
	snprintf(tname, sizeof tname, "/speculate/%s/%s/same-as-plain", name, kernels);
	tap_ok(same, tname, NULL);
	snprintf(tname, sizeof tname, "/speculate/%s/%s/fewer-forward-passes", name, kernels);
	tap_ok(fewer && forced, tname, NULL);
	rt_model_close(m);
}

/* A story in the prompt, continued: the continuation copies it, drafts are accepted. */
static void test_acceptance(const char *path)
{
	struct rt_model *m = NULL;
	char *err = NULL;
	struct rt_local_options o = {.n_ctx = 512, .n_threads = 2};
	if (rt_model_open_local(path, &o, &m, &err) != RTERROR_OK) {
		tap_ok(false, "/speculate/acceptance/open", "%s", err);
		free(err);
		return;
	}
	struct rt_request req = {.prompt = "Once upon a time", .max_tokens = 100, .plain = true};
	struct rt_result *story = gen(m, &req);
	char *prompt = NULL;
	struct rt_result *fast = NULL, *plain = NULL;
	if (story && asprintf(&prompt, "Once upon a time%s\nOnce upon a time", story->text) > 0) {
		req.prompt = prompt;
		plain = gen(m, &req);
		req.plain = false;
		fast = gen(m, &req);
	}
	tap_ok(same_output(fast, plain), "/speculate/acceptance/same-as-plain", NULL);
	tap_ok(fast && fast->n_accepted * 5 >= (int32_t)fast->n_tokens && fast->n_evals < plain->n_evals,
	       "/speculate/acceptance/story-in-prompt", "%d of %d drafted accepted, %zu tokens, %d passes",
	       fast ? fast->n_accepted : -1, fast ? fast->n_drafted : -1, fast ? fast->n_tokens : 0,
	       fast ? fast->n_evals : -1);
	if (fast)
		tap_diag("stories260K continuing its own story: %d of %d drafted tokens accepted; %zu tokens in %d "
		         "forward passes (plain: %d)",
		         fast->n_accepted, fast->n_drafted, fast->n_tokens, fast->n_evals, plain ? plain->n_evals : -1);
	free(prompt);
	rt_result_free(story);
	rt_result_free(fast);
	rt_result_free(plain);
	rt_model_close(m);
}

/* A long system text, then another, then the first again: its KV cache comes back
 * from a saved slot and the answer is that of plain decoding. */
static void test_saved_start(const char *path)
{
	struct rt_model *m = NULL;
	char *err = NULL;
	struct rt_local_options o = {.n_ctx = 1024, .n_threads = 2};
	if (rt_model_open_local(path, &o, &m, &err) != RTERROR_OK) {
		tap_ok(false, "/speculate/saved-start/open", "%s", err);
		free(err);
		return;
	}
	char sys1[2048] = "", sys2[256];
	for (int i = 0; i < 8; i++) {
		size_t len = strlen(sys1);
		snprintf(sys1 + len, sizeof sys1 - len, "Rule %d: the little dog and the big cat play in the sun. ", i);
	}
	snprintf(sys2, sizeof sys2, "Be brief.");
	struct rt_request a = {.system = sys1, .prompt = "Lily had a ball.", .max_tokens = 24, .schema = SCHEMA};
	struct rt_request b = {.system = sys2, .prompt = "Tom had a car.", .max_tokens = 8};
	struct rt_request a2 = a;
	a2.prompt = "Tom had a red car and a dog.";
	struct rt_result *ra = gen(m, &a), *rb = gen(m, &b), *ra2 = gen(m, &a2);
	a2.plain = true;
	struct rt_result *plain = gen(m, &a2);
	tap_ok(ra && rb && ra2 && ra->n_reused == 0 && ra2->n_reused > 128 && ra2->n_reused > rb->n_reused + 100,
	       "/speculate/saved-start/restored", "reused %d (between: %d)", ra2 ? ra2->n_reused : -1,
	       rb ? rb->n_reused : -1);
	tap_ok(same_output(ra2, plain) && plain->n_reused == 0, "/speculate/saved-start/same-as-plain", "%s | %s",
	       ra2 ? ra2->text : "?", plain ? plain->text : "?");
	rt_result_free(ra);
	rt_result_free(rb);
	rt_result_free(ra2);
	rt_result_free(plain);
	rt_model_close(m);
}

int main(void)
{
	test_lookup();
	const char *shared = getenv("QUIRE_SHARED_DIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/models/stories260K.gguf", shared ? shared : "");
	FILE *f = shared ? fopen(path, "rb") : NULL;
	if (!f) {
		tap_diag("../shared not present: the model checks are skipped");
		return tap_done();
	}
	fclose(f);
	test_acceptance(path);
	test_saved_start(path);
	static const char *const files[] = {"stories260K",       "synth-llama-F32",   "synth-llama-Q4_K_M",
	                                    "synth-phi3-Q4_K_M", "synth-gemma2-Q8_0", "synth-gemma3-F32",
	                                    "synth-llama-Q8_0",  "synth-qwen2-F16",   "synth-qwen2-Q5_K_M",
	                                    "synth-qwen2-Q4_0",  "synth-llama-BF16",  "synth-qwen2-Q6_K"};
	static const char *const sets[] = {"avx512", "avx2", "scalar"};
	for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
		if (!kernels_force(sets[k]))
			continue;
		int32_t drafted = 0, accepted = 0;
		/* every file with the best kernels; a few with the others (the same code paths) */
		size_t n = k == 0 ? sizeof files / sizeof files[0] : 4;
		for (size_t i = 0; i < n; i++) {
			snprintf(path, sizeof path, "%s/models/%s.gguf", shared, files[i]);
			compare(files[i], path, sets[k], &drafted, &accepted);
		}
		tap_ok(drafted > 0, "/speculate/drafts-tried", "%s", sets[k]);
	}
	return tap_done();
}
