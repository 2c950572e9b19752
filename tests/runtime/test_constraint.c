/* test_constraint: the schema compiler, the validator and the byte automaton.
 *
 * Byte-level cases check each construct with texts that must and must not be
 * accepted, and that every accepted text also passes the validator. Random
 * walks over a small synthetic vocabulary check that masks only allow tokens
 * the automaton accepts, that forced tokens are forced, that the automaton
 * never reaches a dead end, and that every finished text validates. Then the
 * same promise end to end: 1,000 sampled generations with the random-weight
 * and tiny models of ../shared, across schemas with nested objects, arrays of
 * objects, enums, nullable fields and $ref, all parse and validate. Last, the
 * cost of a mask over a 150,000-token vocabulary. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/constraint.h"
#include "runtime/jsonschema.h"
#include "runtime/gguf.h"
#include "runtime/runtime.h"
#include "runtime/sampler.h"
#include "runtime/tokenizer.h"
#include "tests/runtime/tap.h"

static const char *const schema_person =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"maxLength\":5},"
    "\"age\":{\"type\":\"integer\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"ab\",\"b\"]},\"maxItems\":2},"
    "\"spouse\":{\"type\":[\"string\",\"null\"]},"
    "\"ok\":{\"type\":\"boolean\"}},"
    "\"required\":[\"name\",\"ok\"]}";

static const char *const schema_nested =
    "{\"$defs\":{\"line\":{\"type\":\"object\",\"properties\":{"
    "\"qty\":{\"type\":\"number\"},\"unit\":{\"enum\":[\"kg\",\"pcs\",null]}},"
    "\"required\":[\"qty\",\"unit\"]}},"
    "\"type\":\"object\",\"properties\":{"
    "\"lines\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/line\"},\"minItems\":1,\"maxItems\":3},"
    "\"total\":{\"type\":[\"number\",\"null\"]},"
    "\"meta\":{\"type\":\"object\",\"properties\":{\"k\":{\"const\":\"v\"}},\"required\":[\"k\"]}},"
    "\"required\":[\"lines\",\"total\"]}";

static const char *const schema_tree =
    "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{"
    "\"v\":{\"type\":\"integer\"},"
    "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}},"
    "\"required\":[\"v\"]}},\"$ref\":\"#/$defs/node\"}";

static const char *const schema_strings =
    "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":3},"
    "\"maxItems\":4}";

struct bcase {
	const char *schema;
	const char *text;
	bool valid;
};

static const struct bcase bcases[] = {
    {schema_person, "{\"name\":\"Ann\",\"ok\":true}", true},
    {schema_person, "{\"name\":\"Ann\",\"age\":-12,\"ok\":false}", true},
    {schema_person, "{\"name\":\"Ann\",\"age\":0,\"tags\":[\"ab\",\"a\"],\"spouse\":null,\"ok\":true}", true},
    {schema_person, "{\"name\":\"\\u00e9\\n\",\"spouse\":\"B\",\"ok\":true}", true},
    {schema_person, "{\"name\":\"h\xc3\xa9llo\",\"ok\":true}", true},
    {schema_person, "{\"name\":\"hello!\",\"ok\":true}", false}, /* maxLength */
    {schema_person, "{\"ok\":true,\"name\":\"A\"}", false},      /* schema order */
    {schema_person, "{\"name\":\"A\"}", false},                  /* required */
    {schema_person, "{\"name\":\"A\",\"ok\":true,}", false},
    {schema_person, "{\"name\":\"A\", \"ok\":true}", false},            /* no whitespace */
    {schema_person, "{\"name\":\"A\",\"age\":1.5,\"ok\":true}", false}, /* integer */
    {schema_person, "{\"name\":\"A\",\"age\":01,\"ok\":true}", false},
    {schema_person, "{\"name\":\"A\",\"tags\":[\"c\"],\"ok\":true}", false},             /* enum */
    {schema_person, "{\"name\":\"A\",\"tags\":[\"a\",\"a\",\"a\"],\"ok\":true}", false}, /* maxItems */
    {schema_person, "{\"name\":\"\\ud800\",\"ok\":true}", false},                        /* surrogate escape */
    {schema_person, "{\"name\":\"\xc3\",\"ok\":true}", false},                           /* broken UTF-8 */
    {schema_person, "{\"name\":\"\xed\xa0\x80\",\"ok\":true}", false},                   /* UTF-8 surrogate */
    {schema_person, "{\"name\":\"a\tb\",\"ok\":true}", false},                           /* raw control */
    {schema_person, "{\"name\":\"A\",\"ok\":tru}", false},
    {schema_person, "{\"name\":\"A\",\"other\":1,\"ok\":true}", false},
    {schema_nested, "{\"lines\":[{\"qty\":1.25,\"unit\":\"kg\"}],\"total\":null}", true},
    {schema_nested,
     "{\"lines\":[{\"qty\":-0.5,\"unit\":null},{\"qty\":3,\"unit\":\"pcs\"}],\"total\":12.5,\"meta\":{\"k\":\"v\"}}",
     true},
    {schema_nested, "{\"lines\":[],\"total\":null}", false}, /* minItems */
    {schema_nested, "{\"lines\":[{\"qty\":1.,\"unit\":\"kg\"}],\"total\":null}", false},
    {schema_nested, "{\"lines\":[{\"qty\":1,\"unit\":\"g\"}],\"total\":null}", false},
    {schema_nested, "{\"lines\":[{\"qty\":1,\"unit\":\"kg\"}],\"total\":1e5}", false},
    {schema_nested, "{\"lines\":[{\"qty\":1,\"unit\":\"kg\"}],\"total\":null,\"meta\":{\"k\":\"w\"}}", false},
    {schema_tree, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3,\"kids\":[]}]}", true},
    {schema_tree, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3},{\"v\":4}]}", false},
    {schema_strings, "[\"abc\",\"\\\"\",\"\xe2\x82\xac\xe2\x82\xac\"]", true},
    {schema_strings, "[\"\"]", false},
    {schema_strings, "[\"abcd\"]", false},
    {"{\"type\":\"integer\"}", "-1234", true},
    {"{\"type\":\"integer\"}", "-", false},
    {"{\"type\":\"number\"}", "0.000001", true},
    {"{\"enum\":[1,12,\"x\"]}", "12", true},
    {"{\"enum\":[1,12,\"x\"]}", "1", true},
    {"{\"enum\":[1,12,\"x\"]}", "13", false},
    {"{\"type\":[\"boolean\",\"null\"]}", "null", true},
    {"{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"array\",\"items\":{\"type\":\"null\"}}]}", "[null,null]", true},
};

static bool feed_all(struct constraint_cursor *cur, const char *t, size_t *bad_at)
{
	for (size_t i = 0; t[i]; i++)
		if (!constraint_cursor_feed(cur, t + i, 1)) {
			*bad_at = i;
			return false;
		}
	*bad_at = strlen(t);
	return constraint_cursor_complete(cur);
}

static void test_bytes(void)
{
	for (size_t i = 0; i < sizeof(bcases) / sizeof(bcases[0]); i++) {
		const struct bcase *bc = &bcases[i];
		struct jsonschema *s = NULL;
		struct constraint *c = NULL;
		struct constraint_cursor *cur = NULL;
		char *err = NULL;
		char name[96];
		snprintf(name, sizeof(name), "/constraint/bytes/%zu-%s", i, bc->valid ? "valid" : "invalid");
		if (jsonschema_compile(bc->schema, strlen(bc->schema), &s, &err) || constraint_new(s, NULL, &c, &err) ||
		    constraint_cursor_new(c, &cur, &err)) {
			tap_ok(false, name, "setup: %s", err);
		} else {
			size_t at = 0;
			bool acc = feed_all(cur, bc->text, &at);
			tap_ok(acc == bc->valid, name, "text %s: accepted=%d (stopped at byte %zu)", bc->text, acc, at);
			if (acc) {
				enum rterror e = jsonschema_validate(s, bc->text, strlen(bc->text), &err);
				tap_ok(e == RTERROR_OK, "/constraint/bytes/accepted-validates", "%s: %s", bc->text,
				       err);
			}
		}
		free(err);
		constraint_cursor_free(cur);
		constraint_free(c);
		jsonschema_free(s);
	}
}

struct scase {
	const char *schema;
	enum rterror want;
	const char *needle; /* in the message */
};

static const struct scase scases[] = {
    {"{\"type\":\"string\",\"pattern\":\"a+\"}", RTERROR_UNSUPPORTED, "pattern"},
    {"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\",\"minimum\":0}}}", RTERROR_UNSUPPORTED,
     "#/properties/a"},
    {"{\"$ref\":\"http://x/y\"}", RTERROR_UNSUPPORTED, "not local"},
    {"{\"$ref\":\"#/$defs/missing\"}", RTERROR_FORMAT, "points nowhere"},
    {"{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}", RTERROR_FORMAT, "cycle"},
    {"{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"n\":{\"$ref\":\"#/$defs/n\"}},"
     "\"required\":[\"n\"]}},\"$ref\":\"#/$defs/n\"}",
     RTERROR_UNSUPPORTED, "no instance"},
    {"{\"type\":[\"number\",\"integer\",\"string\"]}", RTERROR_OK, NULL},
    {"{\"anyOf\":[{\"type\":\"string\"},{\"enum\":[\"x\"]}]}", RTERROR_UNSUPPORTED, "same character"},
    {"{\"type\":\"string\",\"minLength\":3,\"maxLength\":2}", RTERROR_FORMAT, "minLength"},
    {"{}", RTERROR_UNSUPPORTED, "any value"},
    {"[1,2", RTERROR_FORMAT, "not valid JSON"},
    {"{\"type\":\"object\",\"required\":[\"x\"]}", RTERROR_UNSUPPORTED, "not in properties"},
    {"{\"type\":\"array\"}", RTERROR_UNSUPPORTED, "without items"},
    {"{\"type\":\"string\",\"description\":\"d\",\"title\":\"t\",\"format\":\"date\"}", RTERROR_OK, NULL},
};

static void test_compile_errors(void)
{
	for (size_t i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		struct jsonschema *s = NULL;
		char *err = NULL;
		enum rterror e = jsonschema_compile(scases[i].schema, strlen(scases[i].schema), &s, &err);
		bool pass = e == scases[i].want && (!scases[i].needle || (err && strstr(err, scases[i].needle)));
		tap_ok(pass, "/jsonschema/compile/errors", "schema %s: got %d (%s)", scases[i].schema, e,
		       err ? err : "");
		free(err);
		jsonschema_free(s);
	}
}

static void test_validate(void)
{
	struct jsonschema *s = NULL;
	char *err = NULL;
	if (jsonschema_compile(schema_person, strlen(schema_person), &s, &err)) {
		tap_ok(false, "/jsonschema/validate/setup", "%s", err);
		free(err);
		return;
	}
	static const char *good = "{ \"ok\" : true, \"name\" : \"Zoe\", \"spouse\": null }";
	tap_ok(jsonschema_validate(s, good, strlen(good), &err) == RTERROR_OK,
	       "/jsonschema/validate/any-order-and-whitespace", "%s", err);
	static const char *dup = "{\"name\":\"a\",\"name\":\"b\",\"ok\":true}";
	tap_ok(jsonschema_validate(s, dup, strlen(dup), &err) == RTERROR_FORMAT && strstr(err, "repeated"),
	       "/jsonschema/validate/duplicate-key", "%s", err);
	static const char *trail = "{\"name\":\"a\",\"ok\":true} x";
	tap_ok(jsonschema_validate(s, trail, strlen(trail), &err) == RTERROR_FORMAT, "/jsonschema/validate/trailing",
	       "%s", err);
	static const char *badtype = "{\"name\":\"a\",\"ok\":true,\"tags\":[\"a\",3]}";
	tap_ok(jsonschema_validate(s, badtype, strlen(badtype), &err) == RTERROR_FORMAT && strstr(err, "/tags/1"),
	       "/jsonschema/validate/path-in-message", "%s", err);
	free(err);
	jsonschema_free(s);
}

/* A synthetic vocabulary: every single byte, plus multi-byte pieces typical of
 * JSON and text, plus one EOG and one control token. */
static const char *const multi[] = {
    "{\"", "\":",      "\",\"",    "\"}",   "},{",  "\":\"", "null", "true", "false", "[{",          "}]",
    "ab",  "abc",      "\\n",      "\\u00", "12",   "0.",    ".5",   "-1",   "name",  "\"name\":\"", "kg",
    "pcs", "\xc3\xa9", "\xe2\x82", "\xac",  " the", "\",",   "\":[", "]}",   "\"]",   "\"ok\":",
};

struct synth_vocab {
	struct constraint_piece *pieces;
	char store[256];
	int32_t n;
	int32_t eog;
};

static void synth_init(struct synth_vocab *sv)
{
	int32_t nm = (int32_t)(sizeof(multi) / sizeof(multi[0]));
	sv->n = 256 + nm + 2;
	sv->pieces = calloc((size_t)sv->n, sizeof(*sv->pieces));
	for (int i = 0; i < 256; i++) {
		sv->store[i] = (char)i;
		sv->pieces[i] = (struct constraint_piece){&sv->store[i], 1, CONSTRAINT_TOK_NORMAL};
	}
	for (int32_t i = 0; i < nm; i++)
		sv->pieces[256 + i] = (struct constraint_piece){multi[i], strlen(multi[i]), CONSTRAINT_TOK_NORMAL};
	sv->eog = 256 + nm;
	sv->pieces[sv->eog] = (struct constraint_piece){"", 0, CONSTRAINT_TOK_EOG};
	sv->pieces[sv->eog + 1] = (struct constraint_piece){"<ctl>", 5, CONSTRAINT_TOK_NEVER};
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* One random walk; returns false and a message on the first broken promise. */
static bool walk_once(const struct synth_vocab *sv, struct constraint *c, struct jsonschema *s, uint64_t *rng,
                      char *msg, size_t msglen)
{
	struct constraint_cursor *cur = NULL, *probe = NULL;
	uint32_t mask[16];
	char text[4096];
	size_t tl = 0;
	bool ok = false;
	char *err = NULL;
	if (constraint_cursor_new(c, &cur, &err) || constraint_cursor_new(c, &probe, &err))
		goto out;
	for (int steps = 0; steps < 60; steps++) {
		int32_t forced;
		if (constraint_cursor_forced(cur, &forced)) {
			if (forced == sv->eog)
				break;
			if (!constraint_cursor_accept(cur, forced)) {
				snprintf(msg, msglen, "forced token %d rejected", forced);
				goto out;
			}
			memcpy(text + tl, sv->pieces[forced].ptr, sv->pieces[forced].len);
			tl += sv->pieces[forced].len;
			continue;
		}
		constraint_cursor_mask(cur, mask);
		int32_t allowed[512], na = 0;
		for (int32_t t = 0; t < sv->n; t++) {
			bool bit = (mask[t >> 5] >> (t & 31)) & 1;
			/* the mask must agree with feeding the token to a copy */
			constraint_cursor_reset(probe);
			bool fine = constraint_cursor_feed(probe, text, tl) && constraint_cursor_accept(probe, t);
			if (bit != fine) {
				snprintf(msg, msglen, "mask bit %d for token %d after \"%.*s\"", bit, t, (int)tl, text);
				goto out;
			}
			if (bit)
				allowed[na++] = t;
		}
		if (na == 0) {
			snprintf(msg, msglen, "dead end after \"%.*s\"", (int)tl, text);
			goto out;
		}
		int32_t t = allowed[rng_next(rng) % (uint64_t)na];
		if (t == sv->eog)
			break;
		constraint_cursor_accept(cur, t);
		memcpy(text + tl, sv->pieces[t].ptr, sv->pieces[t].len);
		tl += sv->pieces[t].len;
	}
	char *tail = NULL;
	size_t tail_len = 0;
	if (constraint_cursor_completion(cur, &tail, &tail_len, &err))
		goto out;
	if (tl + tail_len < sizeof(text)) {
		memcpy(text + tl, tail, tail_len);
		tl += tail_len;
	}
	free(tail);
	if (jsonschema_validate(s, text, tl, &err)) {
		snprintf(msg, msglen, "\"%.*s\" does not validate: %s", (int)tl, text, err);
		goto out;
	}
	ok = true;
out:
	if (err && !msg[0])
		snprintf(msg, msglen, "%s", err);
	free(err);
	constraint_cursor_free(cur);
	constraint_cursor_free(probe);
	return ok;
}

static void test_walks(void)
{
	struct synth_vocab sv;
	synth_init(&sv);
	struct constraint_vocab *v = NULL;
	char *err = NULL;
	if (constraint_vocab_new(sv.pieces, sv.n, &v, &err)) {
		tap_ok(false, "/constraint/walk/vocab", "%s", err);
		free(err);
		free(sv.pieces);
		return;
	}
	const char *schemas[] = {schema_person, schema_nested, schema_tree, schema_strings};
	for (size_t k = 0; k < 4; k++) {
		struct jsonschema *s = NULL;
		struct constraint *c = NULL;
		char msg[600] = "";
		bool all = jsonschema_compile(schemas[k], strlen(schemas[k]), &s, &err) == RTERROR_OK &&
		           constraint_new(s, v, &c, &err) == RTERROR_OK;
		uint64_t rng = 0x1234567 + k;
		for (int i = 0; all && i < 150; i++)
			all = walk_once(&sv, c, s, &rng, msg, sizeof(msg));
		char name[64];
		snprintf(name, sizeof(name), "/constraint/walk/schema-%zu", k);
		tap_ok(all, name, "%s %s", msg, err ? err : "");
		free(err);
		err = NULL;
		constraint_free(c);
		jsonschema_free(s);
	}
	constraint_vocab_free(v);
	free(sv.pieces);
}

/* Forced tokens take the longest piece matching the forced bytes. */
static void test_forced(void)
{
	struct synth_vocab sv;
	synth_init(&sv);
	struct constraint_vocab *v = NULL;
	struct jsonschema *s = NULL;
	struct constraint *c = NULL;
	struct constraint_cursor *cur = NULL;
	char *err = NULL;
	const char *sch = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},"
	                  "\"required\":[\"name\"]}";
	if (constraint_vocab_new(sv.pieces, sv.n, &v, &err) || jsonschema_compile(sch, strlen(sch), &s, &err) ||
	    constraint_new(s, v, &c, &err) || constraint_cursor_new(c, &cur, &err)) {
		tap_ok(false, "/constraint/forced/setup", "%s", err);
	} else {
		int32_t id = -1;
		bool f = constraint_cursor_forced(cur, &id);
		/* forced text is {"name":" ; the longest piece that starts it is {" */
		tap_ok(f && id >= 256 && strcmp(multi[id - 256], "{\"") == 0, "/constraint/forced/longest",
		       "forced=%d id=%d", f, id);
		constraint_cursor_accept(cur, id);
		f = constraint_cursor_forced(cur, &id);
		tap_ok(f && id >= 256 && strcmp(multi[id - 256], "name") == 0, "/constraint/forced/key",
		       "forced=%d id=%d", f, id);
		constraint_cursor_feed(cur, "name\":\"x", 8);
		tap_ok(!constraint_cursor_forced(cur, &id), "/constraint/forced/free-string", NULL);
		constraint_cursor_feed(cur, "\"}", 2);
		tap_ok(constraint_cursor_forced(cur, &id) && id == sv.eog, "/constraint/forced/eog", "id=%d", id);
	}
	free(err);
	constraint_cursor_free(cur);
	constraint_free(c);
	jsonschema_free(s);
	constraint_vocab_free(v);
	free(sv.pieces);
}

static const char *const gen_schemas[] = {
    /* nested objects, nullable fields, enum */
    "{\"type\":\"object\",\"properties\":{"
    "\"invoice\":{\"type\":\"object\",\"properties\":{"
    "\"number\":{\"type\":\"string\",\"maxLength\":12},"
    "\"date\":{\"type\":[\"string\",\"null\"],\"maxLength\":10}},\"required\":[\"number\",\"date\"]},"
    "\"currency\":{\"enum\":[\"EUR\",\"USD\",\"GBP\"]},"
    "\"total\":{\"type\":[\"number\",\"null\"]}},"
    "\"required\":[\"invoice\",\"currency\",\"total\"]}",
    /* arrays of objects through $ref */
    "{\"$defs\":{\"line\":{\"type\":\"object\",\"properties\":{"
    "\"desc\":{\"type\":\"string\",\"maxLength\":8},\"qty\":{\"type\":\"integer\"},"
    "\"unit\":{\"enum\":[\"kg\",\"pcs\",null]}},\"required\":[\"desc\",\"qty\"]}},"
    "\"type\":\"object\",\"properties\":{\"lines\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/$defs/line\"},\"minItems\":1,\"maxItems\":3},"
    "\"paid\":{\"type\":\"boolean\"}},\"required\":[\"lines\",\"paid\"]}",
    /* a recursive tree, optional fields */
    "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"maxLength\":4},"
    "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}},"
    "\"required\":[\"name\"]}},\"$ref\":\"#/$defs/node\"}",
    /* top-level array of scalars and a nullable enum */
    ("{\"type\":\"array\",\"items\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"null\"},"
     "{\"type\":\"string\",\"enum\":[\"n/a\",\"unknown\"]}]},\"maxItems\":5}"),
};

static void test_models(void)
{
	const char *shared = getenv("QUIRE_SHARED_DIR");
	const char *models[] = {"synth-llama-Q8_0.gguf", "synth-qwen2-Q4_K_M.gguf", "stories260K.gguf"};
	char path[4096];
	snprintf(path, sizeof(path), "%s/models/stories260K.gguf", shared ? shared : "");
	FILE *probe = shared ? fopen(path, "rb") : NULL;
	if (!probe) {
		tap_ok(true, "/constraint/models # SKIP ../shared not present", NULL);
		return;
	}
	fclose(probe);
	int total = 0, valid = 0, natural = 0;
	char first_bad[512] = "";
	for (int mi = 0; mi < 3; mi++) {
		snprintf(path, sizeof(path), "%s/models/%s", shared, models[mi]);
		struct rt_model *m = NULL;
		char *err = NULL;
		struct rt_local_options o = {.n_ctx = 256, .n_threads = 1};
		if (rt_model_open_local(path, &o, &m, &err) != RTERROR_OK) {
			tap_ok(false, "/constraint/models/open", "%s: %s", models[mi], err);
			free(err);
			continue;
		}
		for (int k = 0; k < 334; k++) {
			const char *sch = gen_schemas[k % 4];
			struct rt_request req = {.prompt = "Invoice 2024-17, total 1,234.56 EUR.",
			                         .schema = sch,
			                         .max_tokens = 40,
			                         .temperature = 0.5f + (float)(k % 5) * 0.3f,
			                         .top_k = k % 3 == 0 ? 40 : 0,
			                         .top_p = k % 2 ? 0.95f : 1.0f,
			                         .seed = (uint64_t)k * 7919u + (uint64_t)mi};
			struct rt_result *r = NULL;
			total++;
			enum rterror e = rt_generate(m, &req, &r, &err);
			cJSON *j = e ? NULL : cJSON_ParseWithLength(r->text, r->text_len);
			if (j && rt_schema_validate(sch, r->text, r->text_len, &err) == RTERROR_OK) {
				valid++;
				natural += r->closed_len == 0;
			} else if (!first_bad[0]) {
				snprintf(first_bad, sizeof(first_bad), "%s schema %d: %s (%s)", models[mi], k % 4,
				         r ? r->text : "", err ? err : "");
			}
			cJSON_Delete(j);
			rt_result_free(r);
		}
		free(err);
		rt_model_close(m);
	}
	tap_diag("%d of %d generations valid; %d ended by themselves, the rest closed at the limit", valid, total,
	         natural);
	tap_ok(total == 1002 && valid == total, "/constraint/models/1000-generations-validate", "%s", first_bad);
	tap_ok(natural > 0, "/constraint/models/some-end-by-themselves", NULL);
}

/* Random logits over real vocabularies (byte-level BPE and SentencePiece):
 * sampled generations under a schema validate, whatever the logits. */
static void test_real_vocab(void)
{
	const char *shared = getenv("QUIRE_SHARED_DIR");
	const char *files[] = {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf"};
	for (int fi = 0; fi < 2; fi++) {
		char path[4096], name[96];
		snprintf(path, sizeof(path), "%s/models/vocab/%s", shared ? shared : "", files[fi]);
		snprintf(name, sizeof(name), "/constraint/real-vocab/%s", files[fi]);
		struct gguf_file *f = NULL;
		struct tokenizer *tok = NULL;
		if (!shared || gguf_open(path, &f, NULL) != RTERROR_OK) {
			tap_ok(true, "/constraint/real-vocab # SKIP ../shared not present", NULL);
			return;
		}
		char *err = NULL;
		struct constraint_vocab *v = NULL;
		int32_t n = 0;
		struct constraint_piece *p = NULL;
		bool ok = tokenizer_load(f, &tok, &err) == RTERROR_OK;
		if (ok) {
			n = tokenizer_n_vocab(tok);
			p = calloc((size_t)n, sizeof(*p));
			for (int32_t i = 0; i < n; i++) {
				p[i].ptr = tokenizer_piece(tok, i, &p[i].len);
				p[i].kind = tokenizer_is_eog(tok, i)       ? CONSTRAINT_TOK_EOG
				            : tokenizer_is_control(tok, i) ? CONSTRAINT_TOK_NEVER
				                                           : CONSTRAINT_TOK_NORMAL;
			}
			ok = constraint_vocab_new(p, n, &v, &err) == RTERROR_OK;
		}
		float *logits = malloc((size_t)(n ? n : 1) * sizeof(float));
		uint32_t *mask = v ? malloc(constraint_mask_words(v) * sizeof(uint32_t)) : NULL;
		char msg[600] = "";
		uint64_t rng = 99 + (uint64_t)fi;
		for (int g = 0; ok && g < 40; g++) {
			const char *sch = gen_schemas[g % 4];
			struct jsonschema *s = NULL;
			struct constraint *c = NULL;
			struct constraint_cursor *cur = NULL;
			struct sampler *smp = NULL;
			struct sampler_params sp = {.temperature = 1.5f, .seed = (uint64_t)g};
			char text[8192];
			size_t tl = 0;
			ok = jsonschema_compile(sch, strlen(sch), &s, &err) == RTERROR_OK &&
			     constraint_new(s, v, &c, &err) == RTERROR_OK &&
			     constraint_cursor_new(c, &cur, &err) == RTERROR_OK &&
			     sampler_new(&sp, &smp, &err) == RTERROR_OK;
			for (int step = 0; ok && step < 60; step++) {
				int32_t id;
				if (!constraint_cursor_forced(cur, &id)) {
					for (int32_t i = 0; i < n; i++)
						logits[i] = (float)(rng_next(&rng) % 2000) / 100.0f;
					constraint_cursor_mask(cur, mask);
					id = sampler_sample(smp, logits, n, mask, NULL);
				}
				if (id < 0 || tokenizer_is_eog(tok, id))
					break;
				ok = constraint_cursor_accept(cur, id);
				size_t len = 0;
				const char *piece = tokenizer_piece(tok, id, &len);
				if (ok && tl + len < 4096) {
					memcpy(text + tl, piece, len);
					tl += len;
				}
			}
			char *tail = NULL;
			size_t tail_len = 0;
			if (ok && constraint_cursor_completion(cur, &tail, &tail_len, &err) == RTERROR_OK) {
				memcpy(text + tl, tail, tail_len);
				tl += tail_len;
				ok = jsonschema_validate(s, text, tl, &err) == RTERROR_OK;
			}
			if (!ok)
				snprintf(msg, sizeof(msg), "schema %d: %.*s (%s)", g % 4, (int)tl, text,
				         err ? err : "");
			free(tail);
			sampler_free(smp);
			constraint_cursor_free(cur);
			constraint_free(c);
			jsonschema_free(s);
		}
		tap_ok(ok, name, "%s %s", msg, err ? err : "");
		free(err);
		free(logits);
		free(mask);
		free(p);
		constraint_vocab_free(v);
		tokenizer_free(tok);
		gguf_close(f);
	}
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Masks over 150,000 random pieces: the first computation in a state walks the
 * trie, later ones in an equivalent state come from the cache. */
static void test_mask_cost(void)
{
	enum { N = 150000 };
	struct constraint_piece *p = calloc(N, sizeof(*p));
	char *store = malloc((size_t)N * 12);
	uint64_t r = 88172645463325252ull;
	for (int i = 0; i < N; i++) {
		char *s = store + (size_t)i * 12;
		size_t len = i < 256 ? 1 : 1 + rng_next(&r) % 11;
		for (size_t k = 0; k < len; k++) {
			uint64_t x = rng_next(&r) % 100;
			s[k] = x < 75   ? (char)('a' + x % 26)
			       : x < 85 ? ' '
			       : x < 90 ? (char)('0' + x % 10)
			                : "\",{}[]:\\"[x % 8];
		}
		if (i < 256)
			s[0] = (char)i;
		p[i] = (struct constraint_piece){s, len, CONSTRAINT_TOK_NORMAL};
	}
	struct constraint_vocab *v = NULL;
	struct jsonschema *s = NULL;
	struct constraint *c = NULL;
	struct constraint_cursor *cur = NULL;
	const char *sch = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}}}";
	uint32_t *mask = malloc((N + 31) / 32 * sizeof(uint32_t));
	double t0 = now_ms(), build = 0, first = 0, again = 0;
	bool ok = constraint_vocab_new(p, N, &v, NULL) == RTERROR_OK;
	build = now_ms() - t0;
	ok = ok && jsonschema_compile(sch, strlen(sch), &s, NULL) == RTERROR_OK &&
	     constraint_new(s, v, &c, NULL) == RTERROR_OK && constraint_cursor_new(c, &cur, NULL) == RTERROR_OK &&
	     constraint_cursor_feed(cur, "{\"name\":\"ab", 11);
	if (ok) {
		t0 = now_ms();
		constraint_cursor_mask(cur, mask);
		first = now_ms() - t0;
		ok = constraint_cursor_feed(cur, "cd", 2);
		t0 = now_ms();
		constraint_cursor_mask(cur, mask);
		again = now_ms() - t0;
	}
	tap_diag("150k vocabulary: trie %.1f ms, mask in a string %.2f ms, same state again %.3f ms", build, first,
	         again);
	/* generous bounds: the machine is shared and sanitizers slow it down */
	tap_ok(ok && first < 250 && again < 5, "/constraint/mask/150k-vocabulary", "%.2f / %.3f ms", first, again);
	free(mask);
	constraint_cursor_free(cur);
	constraint_free(c);
	jsonschema_free(s);
	constraint_vocab_free(v);
	free(store);
	free(p);
}

int main(void)
{
	test_bytes();
	test_compile_errors();
	test_validate();
	test_forced();
	test_walks();
	test_mask_cost();
	test_real_vocab();
	test_models();
	return tap_done();
}
