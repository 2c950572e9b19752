/* test_tokenizer: both tokenizer families against the shared reference
 * vectors, and hand-written cases for what the vectors do not cover.
 *
 * With ../shared present: every models/vocab/X.gguf reproduces X.gguf.out for
 * X.gguf.inp exactly (no BOS, no special parsing), decoding gives the text
 * back, and every reference/<model>.json prompt tokenizes to its `tokens`
 * (BOS added) with the recorded pieces. Always: the pre-tokenizers without
 * shipped vectors (smollm/starcoder, deepseek-llm) against splits worked out
 * from their published expressions, special tokens, byte fallback, invalid
 * UTF-8, limits and load errors on small in-memory vocabularies. */
#include "runtime/tokenizer.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/gguf.h"
#include "runtime/pretok.h"
#include "runtime/unicode.h"
#include "tests/runtime/tap.h"

#define SEP "\n__ggml_vocab_test__\n"

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	fclose(f);
	if (s) {
		s[n] = 0;
		*len = (size_t)n;
	}
	return s;
}

static struct tokenizer *load(const char *path)
{
	struct gguf_file *g = NULL;
	struct tokenizer *t = NULL;
	char *err = NULL;
	if (gguf_open(path, &g, &err) || tokenizer_load(g, &t, &err)) {
		tap_diag("%s: %s", path, err ? err : "?");
		t = NULL;
	}
	gguf_close(g); /* the tokenizer keeps copies */
	free(err);
	return t;
}

static bool ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void show_ids(const char *what, const int32_t *v, size_t n)
{
	char buf[1024];
	size_t k = 0;
	for (size_t i = 0; i < n && k + 16 < sizeof buf; i++)
		k += (size_t)snprintf(buf + k, sizeof buf - k, " %d", (int)v[i]);
	tap_diag("%s:%s", what, buf);
}

/* One vocab file: every test string, then decoding back. */
static void check_vocab(const char *dir, const char *name)
{
	char path[1024], tname[256];
	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path - 8)
		return;
	struct tokenizer *t = load(path);
	snprintf(tname, sizeof tname, "/tokenizer/vocab/%.200s/load", name);
	if (!tap_ok(t != NULL, tname, "load failed"))
		return;
	size_t il = 0, ol = 0;
	size_t pl = strlen(path);
	memcpy(path + pl, ".inp", 5);
	char *inp = read_file(path, &il);
	memcpy(path + pl, ".out", 5);
	char *out = read_file(path, &ol);
	int n_str = 0, bad = 0, bad_rt = 0;
	char *p = inp, *o = out;
	while (p && o) {
		char *sep = strstr(p, SEP), *eol = strchr(o, '\n');
		if (!sep || !eol)
			break;
		int32_t want[512];
		size_t nw = 0;
		for (char *q = o; q < eol && nw < 512;) {
			char *e;
			long v = strtol(q, &e, 10);
			if (e == q)
				break;
			want[nw++] = (int32_t)v;
			q = e;
		}
		int32_t *ids = NULL;
		size_t n = 0;
		char *err = NULL, *back = NULL;
		size_t blen = 0;
		enum rterror rc = tokenizer_encode(t, p, (size_t)(sep - p), false, false, 100000, &ids, &n, &err);
		if (rc || !ids_equal(ids, n, want, nw)) {
			if (bad++ < 3) {
				tap_diag("%s string %d \"%.*s\": %s", name, n_str, (int)(sep - p), p, err ? err : "");
				show_ids("want", want, nw);
				show_ids("got ", ids, n);
			}
		} else if (tokenizer_decode(t, ids, n, false, &back, &blen, &err) ||
		           blen != (size_t)(sep - p) || memcmp(back, p, blen) != 0) {
			if (bad_rt++ < 3)
				tap_diag("%s string %d does not decode back: \"%s\"", name, n_str, back ? back : "");
		}
		free(back);
		free(err);
		free(ids);
		n_str++;
		p = sep + strlen(SEP);
		o = eol + 1;
	}
	snprintf(tname, sizeof tname, "/tokenizer/vocab/%.200s/encode", name);
	tap_ok(inp && out && n_str >= 40 && bad == 0, tname, "%d of %d strings differ", bad, n_str);
	snprintf(tname, sizeof tname, "/tokenizer/vocab/%.200s/decode", name);
	tap_ok(n_str >= 40 && bad_rt == 0, tname, "%d strings do not round-trip", bad_rt);
	free(inp);
	free(out);
	tokenizer_free(t);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_all_vocabs(const char *shared)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/models/vocab", shared);
	DIR *d = opendir(dir);
	char *names[64];
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) && n < 64) {
		size_t l = strlen(e->d_name);
		if (l > 5 && strcmp(e->d_name + l - 5, ".gguf") == 0)
			names[n++] = strdup(e->d_name);
	}
	if (d)
		closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	tap_ok(n >= 5, "/tokenizer/vocab/files", "found %zu vocab files", n);
	for (size_t i = 0; i < n; i++) {
		check_vocab(dir, names[i]);
		free(names[i]);
	}
}

static bool piece_matches_hex(const struct tokenizer *t, int32_t id, const char *hex)
{
	size_t pl;
	const char *p = tokenizer_piece(t, id, &pl);
	if (!p || strlen(hex) != 2 * pl)
		return false;
	for (size_t i = 0; i < pl; i++) {
		unsigned b;
		char h[3] = {hex[2 * i], hex[2 * i + 1], 0};
		if (sscanf(h, "%2x", &b) != 1 || (uint8_t)p[i] != b)
			return false;
	}
	return true;
}

/* One reference JSON: prompt ids with BOS, and the pieces of the generated ids. */
static void check_reference(const char *shared, const char *json_name)
{
	char path[1024], tname[256];
	size_t len = 0;
	snprintf(path, sizeof path, "%s/reference/%s", shared, json_name);
	char *text = read_file(path, &len);
	cJSON *j = text ? cJSON_Parse(text) : NULL;
	free(text);
	const cJSON *mf = cJSON_GetObjectItem(j, "model_file");
	snprintf(tname, sizeof tname, "/tokenizer/reference/%s", json_name);
	if (!cJSON_IsString(mf)) {
		tap_ok(false, tname, "unreadable reference file");
		cJSON_Delete(j);
		return;
	}
	snprintf(path, sizeof path, "%s/models/%s", shared, mf->valuestring);
	struct tokenizer *t = load(path);
	int bad = 0, n_prompts = 0, bad_pieces = 0;
	const cJSON *pr;
	cJSON_ArrayForEach(pr, cJSON_GetObjectItem(j, "prompts"))
	{
		const cJSON *ptext = cJSON_GetObjectItem(pr, "text"), *tk = cJSON_GetObjectItem(pr, "tokens");
		int32_t want[256], *ids = NULL;
		size_t nw = 0, n = 0;
		const cJSON *x;
		cJSON_ArrayForEach(x, tk) if (nw < 256) want[nw++] = (int32_t)x->valuedouble;
		n_prompts++;
		if (!t || !cJSON_IsString(ptext) ||
		    tokenizer_encode(t, ptext->valuestring, strlen(ptext->valuestring), true, false, 4096,
		                     &ids, &n, NULL) ||
		    !ids_equal(ids, n, want, nw)) {
			if (bad++ < 2 && ids)
				show_ids("got", ids, n), show_ids("want", want, nw);
		}
		free(ids);
		const cJSON *gen = cJSON_GetObjectItem(pr, "generated");
		const cJSON *gt = cJSON_GetObjectItem(gen, "tokens"), *gh = cJSON_GetObjectItem(gen, "pieces_hex");
		for (int i = 0; t && i < cJSON_GetArraySize(gt); i++) {
			int32_t id = (int32_t)cJSON_GetArrayItem(gt, i)->valuedouble;
			const cJSON *h = cJSON_GetArrayItem(gh, i);
			if (!tokenizer_is_control(t, id) && (!cJSON_IsString(h) || !piece_matches_hex(t, id, h->valuestring)))
				bad_pieces++;
		}
	}
	tap_ok(t && n_prompts == 3 && bad == 0, tname, "%d of %d prompts differ", bad, n_prompts);
	snprintf(tname, sizeof tname, "/tokenizer/reference/%s/pieces", json_name);
	tap_ok(t && bad_pieces == 0, tname, "%d generated pieces differ", bad_pieces);
	tokenizer_free(t);
	cJSON_Delete(j);
}

static void check_all_references(const char *shared)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/reference", shared);
	DIR *d = opendir(dir);
	char *names[64];
	size_t n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) && n < 64) {
		size_t l = strlen(e->d_name);
		if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
			names[n++] = strdup(e->d_name);
	}
	if (d)
		closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	tap_ok(n >= 19, "/tokenizer/reference/files", "found %zu reference files", n);
	for (size_t i = 0; i < n; i++) {
		check_reference(shared, names[i]);
		free(names[i]);
	}
}

/* pretok_split against pieces worked out by hand from the published expressions. */
static void check_split(enum pretok_kind k, const char *name, const char *text,
                        const char *const *want)
{
	uint32_t *ends = NULL;
	size_t n = 0, nw = 0;
	bool ok = pretok_split(k, text, strlen(text), &ends, &n, NULL) == RTERROR_OK;
	while (want[nw])
		nw++;
	ok = ok && n == nw;
	for (size_t i = 0, start = 0; ok && i < n; start = ends[i++])
		ok = strlen(want[i]) == ends[i] - start && memcmp(text + start, want[i], ends[i] - start) == 0;
	if (!ok && ends) {
		for (size_t i = 0, start = 0; i < n; start = ends[i++])
			tap_diag("piece %zu: \"%.*s\"", i, (int)(ends[i] - start), text + start);
	}
	tap_ok(ok, name, "split differs");
	free(ends);
}

static void check_pretokenizers(void)
{
	static const char *const sm1[] = {"abc", " ", "1", "2", "3", " x", "4", "5", "!", NULL};
	check_split(PRETOK_SMOLLM, "/tokenizer/pretok/smollm/digits", "abc 123 x45!", sm1);
	static const char *const sm2[] = {"Hello", " world", "'s", " ", " test", "\n\n", NULL};
	check_split(PRETOK_SMOLLM, "/tokenizer/pretok/smollm/spaces", "Hello world's  test\n\n", sm2);
	static const char *const sm3[] = {"I", "'", "M", " ", "2", "0", "2", "4", NULL};
	check_split(PRETOK_SMOLLM, "/tokenizer/pretok/smollm/case", "I'M 2024", sm3);
	static const char *const ds1[] = {"Hello", ",", " World", "!", " ", "123", "\n",
	                                  "\xe4\xbd\xa0\xe5\xa5\xbd", "abc", NULL};
	check_split(PRETOK_DEEPSEEK_LLM, "/tokenizer/pretok/deepseek-llm/mixed",
	            "Hello, World! 123\n\xe4\xbd\xa0\xe5\xa5\xbd" "abc", ds1);
	static const char *const ds2[] = {"1", ",", "234", ".", "56", " EUR", NULL};
	check_split(PRETOK_DEEPSEEK_LLM, "/tokenizer/pretok/deepseek-llm/number", "1,234.56 EUR", ds2);
	static const char *const ds3[] = {"ab", "  ", "\n", "\n", " cd", "\t ", NULL};
	check_split(PRETOK_DEEPSEEK_LLM, "/tokenizer/pretok/deepseek-llm/spaces", "ab  \n\n cd\t ", ds3);
	static const char *const l3[] = {"Total", ":", " ", "123", "456", "7", "'S", " you", "\n\n", "ok", NULL};
	check_split(PRETOK_LLAMA3, "/tokenizer/pretok/llama3/digits", "Total: 1234567'S you\n\nok", l3);
	static const char *const q2[] = {"x", "1", "2", " \xff\xfe", NULL};
	check_split(PRETOK_QWEN2, "/tokenizer/pretok/qwen2/invalid-utf8", "x12 \xff\xfe", q2);
	static const char *const empty[] = {NULL};
	check_split(PRETOK_GPT2, "/tokenizer/pretok/gpt2/empty", "", empty);
	enum pretok_kind k;
	char *err = NULL;
	enum rterror rc = pretok_from_name("nonesuch-7", 10, &k, &err);
	tap_ok(rc == RTERROR_UNSUPPORTED && err && strstr(err, "nonesuch-7"),
	       "/tokenizer/pretok/unknown-name", "rc %d, %s", rc, err ? err : "");
	free(err);
	tap_ok(pretok_from_name("starcoder", 9, &k, NULL) == RTERROR_OK && k == PRETOK_SMOLLM,
	       "/tokenizer/pretok/alias", NULL);
}

/* ---- small in-memory vocabularies ---- */

struct vb {
	char text[300][16];
	struct tokenizer_str tok[300];
	int32_t type[300];
	float score[300];
	size_t n;
};

static int32_t vb_add(struct vb *v, const char *s, int32_t type, float score)
{
	size_t i = v->n++;
	snprintf(v->text[i], sizeof v->text[i], "%s", s);
	v->tok[i] = (struct tokenizer_str){v->text[i], strlen(v->text[i])};
	v->type[i] = type;
	v->score[i] = score;
	return (int32_t)i;
}

static struct tokenizer_vocab vb_vocab(struct vb *v, const char *model)
{
	return (struct tokenizer_vocab){.model = model, .n_tokens = v->n, .tokens = v->tok,
	                                .scores = v->score, .types = v->type, .bos = -2, .eos = -2,
	                                .unk = -2, .eot = -1, .eom = -1, .add_bos = -1,
	                                .add_space_prefix = -1};
}

/* Special tokens, invalid UTF-8 and decoding on the small byte-level vocabulary. */
static void check_bpe_small_specials(const struct tokenizer *t, int32_t end, int32_t tool, int32_t he,
                                     int32_t ll)
{
	int32_t *ids = NULL;
	size_t n = 0;
	bool ok;
	ok = !tokenizer_encode(t, "a<|im_end|>b<tool>", 18, false, true, 100, &ids, &n, NULL);
	int32_t want2[] = {'a', end, 'b', tool};
	tap_ok(ok && ids_equal(ids, n, want2, 4), "/tokenizer/bpe-small/special/parsed", NULL);
	free(ids);
	ok = !tokenizer_encode(t, "a<|im_end|>b<tool>", 18, false, false, 100, &ids, &n, NULL);
	bool has_end = false, has_tool = false;
	for (size_t i = 0; ok && i < n; i++)
		has_end |= ids[i] == end, has_tool |= ids[i] == tool;
	tap_ok(ok && !has_end && has_tool, "/tokenizer/bpe-small/special/not-parsed",
	       "control matched %d, user-defined matched %d", has_end, has_tool);
	free(ids);
	const char bad[] = "\xff\xc3(\xe2\x82\xac\xed\xa0\x80";
	char *back = NULL;
	size_t bl = 0;
	ok = !tokenizer_encode(t, bad, sizeof bad - 1, false, false, 100, &ids, &n, NULL) &&
	     !tokenizer_decode(t, ids, n, false, &back, &bl, NULL);
	tap_ok(ok && bl == sizeof bad - 1 && memcmp(back, bad, bl) == 0, "/tokenizer/bpe-small/invalid-utf8",
	       "does not round-trip");
	free(back);
	free(ids);
	ok = !tokenizer_decode(t, (int32_t[]){he, end, ll}, 3, false, &back, &bl, NULL) &&
	     strcmp(back, "hell") == 0;
	free(back);
	ok = ok && !tokenizer_decode(t, (int32_t[]){he, end, ll}, 3, true, &back, &bl, NULL) &&
	     strcmp(back, "he<|im_end|>ll") == 0;
	tap_ok(ok, "/tokenizer/bpe-small/decode-special", NULL);
	free(back);
}

static void check_bpe_small(void)
{
	static struct vb v;
	v.n = 0;
	for (unsigned b = 0; b < 256; b++) {
		char s[8] = {0};
		unicode_encode(unicode_byte_to_cp((uint8_t)b), s);
		vb_add(&v, s, 1, 0);
	}
	int32_t he = vb_add(&v, "he", 1, 0), ll = vb_add(&v, "ll", 1, 0), hell = vb_add(&v, "hell", 1, 0);
	int32_t hello = vb_add(&v, "hello", 1, 0);
	int32_t end = vb_add(&v, "<|im_end|>", 3, 0), tool = vb_add(&v, "<tool>", 4, 0);
	static const struct tokenizer_str merges[] = {
		{"l l", 3}, {"h e", 3}, {"he ll", 5}, {"hell o", 6}, {"x y", 3} /* no such tokens */,
	};
	struct tokenizer_vocab tv = vb_vocab(&v, "gpt2");
	tv.pre = "qwen2";
	tv.eos = end;
	tv.n_merges = 5;
	tv.merges = merges;
	struct tokenizer *t = NULL;
	char *err = NULL;
	tap_ok(tokenizer_new(&tv, &t, &err) == RTERROR_OK, "/tokenizer/bpe-small/load", "%s", err ? err : "");
	free(err);
	if (!t)
		return;
	int32_t *ids = NULL;
	size_t n = 0;
	bool ok = !tokenizer_encode(t, "hello hellx", 11, false, false, 100, &ids, &n, NULL);
	int32_t want1[] = {hello, ' ', hell, 'x'}; /* the byte tokens are in byte order */
	tap_ok(ok && ids_equal(ids, n, want1, 4), "/tokenizer/bpe-small/merges", "got %zu ids", n);
	free(ids);
	check_bpe_small_specials(t, end, tool, he, ll);
	tap_ok(tokenizer_is_eog(t, end) && !tokenizer_is_eog(t, he) && tokenizer_is_control(t, end) &&
	       !tokenizer_is_control(t, tool) && tokenizer_find(t, "hell", 4) == hell &&
	       tokenizer_find(t, "hel", 3) == -1 && tokenizer_bos(t) == -1,
	       "/tokenizer/bpe-small/accessors", NULL);
	err = NULL;
	enum rterror rc = tokenizer_encode(t, "a b c d e f", 11, false, false, 3, &ids, &n, &err);
	tap_ok(rc == RTERROR_LIMIT && err, "/tokenizer/bpe-small/limit/tokens", "rc %d", rc);
	free(err);
	size_t big = TOKENIZER_MAX_INPUT + 1;
	char *huge = calloc(big, 1);
	rc = huge ? tokenizer_encode(t, huge, big, false, false, big, &ids, &n, NULL) : RTERROR_NOMEM;
	tap_ok(rc == RTERROR_LIMIT, "/tokenizer/bpe-small/limit/input", "rc %d", rc);
	free(huge);
	tokenizer_free(t);
}

static void check_spm_small(void)
{
	static struct vb v;
	v.n = 0;
	vb_add(&v, "<unk>", 2, 0);
	vb_add(&v, "<s>", 3, 0);
	vb_add(&v, "</s>", 3, 0);
	for (unsigned b = 0; b < 256; b++) {
		char s[8];
		snprintf(s, sizeof s, "<0x%02X>", b);
		vb_add(&v, s, 6, 0);
	}
	int32_t sp = vb_add(&v, "\xe2\x96\x81", 1, -1), a = vb_add(&v, "a", 1, -2);
	vb_add(&v, "b", 1, -2);
	int32_t spa = vb_add(&v, "\xe2\x96\x81" "a", 1, -3), ab = vb_add(&v, "ab", 1, -0.5f);
	int32_t spab = vb_add(&v, "\xe2\x96\x81" "ab", 1, -0.1f);
	struct tokenizer_vocab tv = vb_vocab(&v, "llama");
	struct tokenizer *t = NULL;
	tap_ok(tokenizer_new(&tv, &t, NULL) == RTERROR_OK, "/tokenizer/spm-small/load", NULL);
	if (!t)
		return;
	int32_t *ids = NULL;
	size_t n = 0;
	/* "▁a" scores below "ab", so "ab" forms first and then "▁ab". */
	bool ok = !tokenizer_encode(t, "ab ab a", 7, true, false, 100, &ids, &n, NULL);
	int32_t want[] = {1, spab, spab, spa};
	tap_ok(ok && ids_equal(ids, n, want, 4), "/tokenizer/spm-small/scores", NULL);
	free(ids);
	char *back = NULL;
	ok = !tokenizer_encode(t, "\xc3\xa9" "a", 3, false, false, 100, &ids, &n, NULL);
	int32_t want2[] = {sp, 3 + 0xc3, 3 + 0xa9, a};
	ok = ok && ids_equal(ids, n, want2, 4) && !tokenizer_decode(t, ids, n, false, &back, NULL, NULL) &&
	     strcmp(back, "\xc3\xa9" "a") == 0;
	tap_ok(ok, "/tokenizer/spm-small/byte-fallback", NULL);
	free(back);
	free(ids);
	ok = !tokenizer_encode(t, "a<s>ab", 6, false, true, 100, &ids, &n, NULL);
	int32_t want3[] = {spa, 1, spab}; /* text after a special token gets the space prefix */
	tap_ok(ok && ids_equal(ids, n, want3, 3), "/tokenizer/spm-small/special", NULL);
	free(ids);
	ok = !tokenizer_encode(t, "", 0, false, false, 100, &ids, &n, NULL) && n == 0;
	free(ids);
	tap_ok(ok, "/tokenizer/spm-small/empty", NULL);
	tap_ok(tokenizer_add_bos(t) && tokenizer_bos(t) == 1 && tokenizer_eos(t) == 2 &&
	       tokenizer_is_eog(t, 2) && tokenizer_n_vocab(t) == (int32_t)v.n && ab > 0,
	       "/tokenizer/spm-small/defaults", NULL);
	tokenizer_free(t);
}

static void check_load_errors(void)
{
	static struct vb v;
	v.n = 0;
	vb_add(&v, "a", 1, 0);
	vb_add(&v, "b", 1, 0);
	struct tokenizer_vocab tv = vb_vocab(&v, "bert");
	struct tokenizer *t = NULL;
	char *err = NULL;
	enum rterror rc = tokenizer_new(&tv, &t, &err);
	tap_ok(rc == RTERROR_UNSUPPORTED && err && strstr(err, "bert"), "/tokenizer/load/unknown-model", "%s", err ? err : "");
	free(err), err = NULL;
	tv.model = "gpt2";
	tv.pre = "nonesuch";
	rc = tokenizer_new(&tv, &t, &err);
	tap_ok(rc == RTERROR_UNSUPPORTED && err && strstr(err, "nonesuch"), "/tokenizer/load/unknown-pre", "%s", err ? err : "");
	free(err), err = NULL;
	tv.pre = "gpt-2";
	tv.bos = 7;
	rc = tokenizer_new(&tv, &t, &err);
	tap_ok(rc == RTERROR_FORMAT && err, "/tokenizer/load/bos-out-of-range", "%s", err ? err : "");
	free(err), err = NULL;
	tv.bos = -1;
	static char longtok[TOKENIZER_MAX_TOKEN_LEN + 2];
	memset(longtok, 'x', sizeof longtok - 1);
	v.tok[1] = (struct tokenizer_str){longtok, sizeof longtok - 1};
	rc = tokenizer_new(&tv, &t, &err);
	tap_ok(rc == RTERROR_LIMIT && err, "/tokenizer/load/token-too-long", "%s", err ? err : "");
	free(err), err = NULL;
	tv.n_tokens = 0;
	rc = tokenizer_new(&tv, &t, &err);
	tap_ok(rc == RTERROR_FORMAT && err, "/tokenizer/load/empty", "%s", err ? err : "");
	free(err);
}

/* A GGUF with a tokenizer model but no token list. */
static void check_gguf_missing_tokens(void)
{
	uint8_t buf[256];
	size_t n = 0;
	uint32_t v3 = 3, vt = 8;
	uint64_t zero = 0, one = 1;
	const char *key = "tokenizer.ggml.model", *val = "llama";
	uint64_t kl = strlen(key), vl = strlen(val);
	memcpy(buf + n, "GGUF", 4), n += 4;
	memcpy(buf + n, &v3, 4), n += 4;
	memcpy(buf + n, &zero, 8), n += 8;
	memcpy(buf + n, &one, 8), n += 8;
	memcpy(buf + n, &kl, 8), n += 8;
	memcpy(buf + n, key, kl), n += kl;
	memcpy(buf + n, &vt, 4), n += 4;
	memcpy(buf + n, &vl, 8), n += 8;
	memcpy(buf + n, val, vl), n += vl;
	struct gguf_file *g = NULL;
	struct tokenizer *t = NULL;
	char *err = NULL;
	enum rterror rc = gguf_open_memory(buf, n, &g, &err);
	if (!rc)
		rc = tokenizer_load(g, &t, &err);
	tap_ok(rc == RTERROR_FORMAT && err && strstr(err, "tokenizer.ggml.tokens"),
	       "/tokenizer/load/gguf-missing-tokens", "rc %d: %s", rc, err ? err : "");
	free(err);
	tokenizer_free(t);
	gguf_close(g);
}

/* Special tokens and speed on the real GPT-2 and Llama vocabularies. */
static void check_real_specials(const char *shared)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/models/vocab/ggml-vocab-gpt-2.gguf", shared);
	struct tokenizer *g = load(path);
	snprintf(path, sizeof path, "%s/models/vocab/ggml-vocab-llama-spm.gguf", shared);
	struct tokenizer *l = load(path);
	int32_t *ids = NULL;
	size_t n = 0;
	const char *s = "Hi<|endoftext|>there";
	bool ok = g && !tokenizer_encode(g, s, strlen(s), false, true, 100, &ids, &n, NULL) && n == 3 &&
	          ids[1] == 50256;
	free(ids), ids = NULL;
	ok = ok && !tokenizer_encode(g, s, strlen(s), false, false, 100, &ids, &n, NULL) && n > 3;
	for (size_t i = 0; ok && i < n; i++)
		ok = ids[i] != 50256;
	free(ids), ids = NULL;
	tap_ok(ok && tokenizer_is_eog(g, 50256), "/tokenizer/gpt-2/special", NULL);
	s = "<s>Hi</s>";
	ok = l && !tokenizer_encode(l, s, strlen(s), false, true, 100, &ids, &n, NULL) && n >= 3 &&
	     ids[0] == 1 && ids[n - 1] == 2;
	free(ids), ids = NULL;
	ok = ok && !tokenizer_encode(l, s, strlen(s), true, false, 100, &ids, &n, NULL) && ids[0] == 1;
	for (size_t i = 1; ok && i < n; i++)
		ok = ids[i] != 1 && ids[i] != 2;
	free(ids), ids = NULL;
	tap_ok(ok, "/tokenizer/llama-spm/special", NULL);
	/* A 64 KiB document must tokenize in well under a second on either family. */
	size_t len = 64 << 10;
	char *doc = malloc(len);
	const char *words = "Invoice 2024-0017, total 1,234.56 EUR (VAT 19%) due 30 days. Müller GmbH\n";
	for (size_t i = 0; doc && i < len; i++)
		doc[i] = words[i % strlen(words)];
	for (int k = 0; k < 2; k++) {
		struct tokenizer *t = k ? l : g;
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		ok = t && doc && !tokenizer_encode(t, doc, len, false, false, len, &ids, &n, NULL);
		clock_gettime(CLOCK_MONOTONIC, &b);
		double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
		tap_diag("%s: 64 KiB in %.1f ms, %zu tokens", k ? "llama-spm" : "gpt-2", ms, n);
		tap_ok(ok && ms < 2000, k ? "/tokenizer/llama-spm/speed" : "/tokenizer/gpt-2/speed", "%.1f ms", ms);
		free(ids), ids = NULL;
	}
	free(doc);
	tokenizer_free(g);
	tokenizer_free(l);
}

int main(void)
{
	check_pretokenizers();
	check_bpe_small();
	check_spm_small();
	check_load_errors();
	check_gguf_missing_tokens();
	const char *shared = getenv("QUIRE_SHARED_DIR");
	char probe[1024];
	snprintf(probe, sizeof probe, "%s/models/vocab", shared ? shared : "");
	DIR *d = shared ? opendir(probe) : NULL;
	if (d) {
		closedir(d);
		check_all_vocabs(shared);
		check_all_references(shared);
		check_real_specials(shared);
	} else {
		tap_diag("SKIP reference vectors: ../shared not present");
	}
	return tap_done();
}
