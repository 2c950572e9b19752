/* test_generate: generation through the public API (runtime.h) with the real
 * stories260K model: greedy output equal to the reference engine's, stop
 * strings, token and time limits, reuse of a cached prefix giving the same
 * output as a fresh context, and a schema-constrained answer that validates. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "tests/runtime/tap.h"

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	if (b)
		b[n] = '\0';
	fclose(f);
	return b;
}

static struct rt_result *gen(struct rt_model *m, const struct rt_request *req, char **err)
{
	struct rt_result *r = NULL;
	free(*err);
	*err = NULL;
	if (rt_generate(m, req, &r, err) != RTERROR_OK)
		return NULL;
	return r;
}

static bool same_ids(const struct rt_result *a, const struct rt_result *b)
{
	if (!a || !b || a->n_tokens != b->n_tokens)
		return false;
	for (size_t i = 0; i < a->n_tokens; i++)
		if (a->tokens[i].id != b->tokens[i].id)
			return false;
	return true;
}

static void test_reference(struct rt_model *m, const cJSON *ref)
{
	const cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "prompts"), 0);
	const cJSON *g = cJSON_GetObjectItem(p0, "generated");
	const cJSON *want = cJSON_GetObjectItem(g, "tokens");
	const cJSON *want_text = cJSON_GetObjectItem(g, "text");
	const cJSON *prompt = cJSON_GetObjectItem(p0, "text");
	char *err = NULL;
	struct rt_request req = {.prompt = prompt->valuestring, .max_tokens = cJSON_GetArraySize(want)};
	struct rt_result *r = gen(m, &req, &err);
	bool eq = r && r->n_tokens == (size_t)cJSON_GetArraySize(want);
	for (size_t i = 0; eq && i < r->n_tokens; i++)
		eq = r->tokens[i].id == cJSON_GetArrayItem(want, (int)i)->valueint;
	tap_ok(eq, "/generate/greedy/reference-tokens", "%s %s", err ? err : "", r ? r->text : "");
	tap_ok(r && strcmp(r->text, want_text->valuestring) == 0 && r->stop == RT_STOP_MAX_TOKENS,
	       "/generate/greedy/reference-text", "got \"%s\"", r ? r->text : "");
	tap_ok(r && r->n_prompt == cJSON_GetArraySize(cJSON_GetObjectItem(p0, "tokens")), "/generate/prompt-tokens",
	       "n_prompt %d", r ? r->n_prompt : -1);
	bool probs = r != NULL;
	for (size_t i = 0; probs && i < r->n_tokens; i++)
		probs = r->tokens[i].prob > 0 && r->tokens[i].prob <= 1 && !r->tokens[i].forced &&
		        (i == 0 || r->tokens[i].offset == r->tokens[i - 1].offset + r->tokens[i - 1].len);
	tap_ok(probs, "/generate/token-offsets-and-probabilities", NULL);
	rt_result_free(r);

	const char *stops[] = {"zzz", "Lily"};
	req.stop = stops;
	req.n_stop = 2;
	r = gen(m, &req, &err);
	tap_ok(r && r->stop == RT_STOP_STRING && strcmp(r->text, ", there was a little girl named ") == 0,
	       "/generate/stop-string", "%s", r ? r->text : err);
	rt_result_free(r);

	req.stop = NULL;
	req.n_stop = 0;
	req.max_tokens = 5;
	r = gen(m, &req, &err);
	tap_ok(r && r->stop == RT_STOP_MAX_TOKENS && r->n_tokens == 5 && strcmp(r->text, ", there was a little") == 0,
	       "/generate/token-limit", "%s", r ? r->text : err);
	rt_result_free(r);

	req.max_tokens = 400;
	req.time_limit_ms = 1;
	r = gen(m, &req, &err);
	tap_ok(r && r->stop == RT_STOP_TIME && r->n_tokens < 400, "/generate/time-limit", "stop %d tokens %zu",
	       r ? (int)r->stop : -1, r ? r->n_tokens : 0);
	rt_result_free(r);
	free(err);
}

static void test_prefix_reuse(struct rt_model *m, const char *path)
{
	char *err = NULL;
	struct rt_request a = {
	    .system = "Once upon a time, there was a little dog.", .prompt = " It", .max_tokens = 20};
	struct rt_request b = a;
	b.prompt = " The cat";
	struct rt_result *ra = gen(m, &a, &err);
	struct rt_result *rb = gen(m, &b, &err);
	struct rt_model *fresh = NULL;
	struct rt_local_options o = {.n_ctx = 512, .n_threads = 1};
	struct rt_result *rf = NULL;
	if (rt_model_open_local(path, &o, &fresh, &err) == RTERROR_OK)
		rf = gen(fresh, &b, &err);
	tap_ok(ra && rb && rb->n_reused > 5 && rb->n_reused < rb->n_prompt, "/generate/prefix/reused",
	       "reused %d of %d", rb ? rb->n_reused : -1, rb ? rb->n_prompt : -1);
	tap_ok(rf && rf->n_reused == 0 && same_ids(rb, rf) && strcmp(rb->text, rf->text) == 0,
	       "/generate/prefix/same-as-fresh", "%s | %s", rb ? rb->text : err, rf ? rf->text : "");
	/* the same request again reuses everything but the last prompt token */
	struct rt_result *rb2 = gen(m, &b, &err);
	tap_ok(rb2 && rb2->n_reused == rb2->n_prompt - 1 && same_ids(rb, rb2), "/generate/prefix/repeat", "reused %d",
	       rb2 ? rb2->n_reused : -1);
	rt_result_free(ra);
	rt_result_free(rb);
	rt_result_free(rb2);
	rt_result_free(rf);
	rt_model_close(fresh);
	free(err);
}

static void test_schema(struct rt_model *m)
{
	const char *schema = "{\"type\":\"object\",\"properties\":{"
	                     "\"name\":{\"type\":\"string\",\"maxLength\":12},"
	                     "\"age\":{\"type\":[\"integer\",\"null\"]},"
	                     "\"mood\":{\"enum\":[\"happy\",\"sad\"]}},"
	                     "\"required\":[\"name\",\"age\",\"mood\"]}";
	char *err = NULL;
	struct rt_request req = {.prompt = "Lily was", .schema = schema, .max_tokens = 60};
	struct rt_result *r = gen(m, &req, &err);
	enum rterror e = r ? rt_schema_validate(schema, r->text, r->text_len, &err) : RTERROR_INVALID;
	tap_ok(r && e == RTERROR_OK, "/generate/schema/greedy-validates", "%s %s", r ? r->text : "", err);
	bool forced = false;
	for (size_t i = 0; r && i < r->n_tokens; i++)
		forced |= r->tokens[i].forced && r->tokens[i].prob == 1;
	tap_ok(forced && r->text[0] == '{', "/generate/schema/forced-tokens", NULL);
	rt_result_free(r);

	req.max_tokens = 3; /* stopped half-way, the value is closed */
	r = gen(m, &req, &err);
	e = r ? rt_schema_validate(schema, r->text, r->text_len, &err) : RTERROR_INVALID;
	tap_ok(r && e == RTERROR_OK && r->stop == RT_STOP_MAX_TOKENS && r->closed_len > 0,
	       "/generate/schema/closed-at-limit", "%s %s", r ? r->text : "", err);
	rt_result_free(r);

	req.schema = "{\"type\":\"string\",\"pattern\":\"x\"}";
	r = gen(m, &req, &err);
	tap_ok(!r && err && strstr(err, "pattern"), "/generate/schema/unsupported-keyword", "%s", err);
	rt_result_free(r);
	free(err);
}

int main(void)
{
	const char *shared = getenv("QUIRE_SHARED_DIR");
	char path[4096], refpath[4096];
	snprintf(path, sizeof(path), "%s/models/stories260K.gguf", shared ? shared : "");
	snprintf(refpath, sizeof(refpath), "%s/reference/stories260K.json", shared ? shared : "");
	char *reftext = shared ? read_file(refpath) : NULL;
	if (!reftext)
		return tap_skip_all("../shared not present");
	cJSON *ref = cJSON_Parse(reftext);
	free(reftext);
	struct rt_model *m = NULL;
	char *err = NULL;
	struct rt_local_options o = {.n_ctx = 512, .n_threads = 1};
	if (!ref || rt_model_open_local(path, &o, &m, &err) != RTERROR_OK) {
		tap_ok(false, "/generate/open", "%s", err);
		free(err);
		cJSON_Delete(ref);
		return tap_done();
	}
	struct rt_model_info info;
	rt_model_describe(m, &info);
	tap_ok(strcmp(info.arch, "llama") == 0 && strcmp(info.chat_template, "raw") == 0 && info.n_vocab == 512 &&
	           info.n_layer == 5 && info.n_ctx == 512 && info.n_types >= 1 && strcmp(info.tokenizer, "llama") == 0,
	       "/generate/describe", "%s %s %d %d", info.arch, info.chat_template, info.n_vocab, info.n_layer);
	struct rt_model *other = NULL;
	o.chat_template = "bogus";
	enum rterror e = rt_model_open_local(path, &o, &other, &err);
	tap_ok(e == RTERROR_UNSUPPORTED && err && strstr(err, "bogus") && strstr(err, "chatml"),
	       "/generate/template/unknown-name", "%d %s", e, err);
	free(err);
	err = NULL;
	o.chat_template = "chatml";
	struct rt_result *r = NULL;
	struct rt_request req = {.system = "Be brief.",
	                         .prompt = "Hi",
	                         .max_tokens = 12,
	                         .schema = "{\"type\":\"object\",\"properties\":{\"a\":"
	                                   "{\"type\":\"integer\"}},\"required\":[\"a\"]}"};
	e = rt_model_open_local(path, &o, &other, &err);
	if (!e)
		e = rt_generate(other, &req, &r, &err);
	tap_ok(e == RTERROR_OK && r->n_prompt > 20 &&
	           rt_schema_validate(req.schema, r->text, r->text_len, NULL) == RTERROR_OK,
	       "/generate/template/chatml-named", "%d %s", e, err);
	rt_result_free(r);
	rt_model_close(other);
	free(err);
	test_reference(m, ref);
	test_prefix_reuse(m, path);
	test_schema(m);
	rt_model_close(m);
	cJSON_Delete(ref);
	return tap_done();
}
