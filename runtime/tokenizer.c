/* tokenizer: loading a vocabulary (from GGUF metadata or given directly),
 * token lookup, special tokens matched whole, the encoding driver and
 * decoding. The merge algorithms live in tokenizer_spm.c / tokenizer_bpe.c.
 *
 * Everything is copied out of the source at load time into one arena (token
 * texts, then the decoded bytes of each token), so a tokenizer never points
 * into a gguf_file and is immutable afterwards. Every size taken from the
 * file is checked against the limits in tokenizer.h before it is used. */
#include "runtime/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gguf.h"
#include "runtime/tokenizer_impl.h"
#include "runtime/unicode.h"

/* All token texts together; keeps arena offsets within 32 bits. */
#define MAX_TOTAL_TEXT ((size_t)256 << 20)
#define MAX_MERGES ((size_t)4 * TOKENIZER_MAX_VOCAB)

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return key;
}

static size_t table_size(size_t n)
{
	size_t s = 16;
	while (s < 2 * n)
		s *= 2;
	return s;
}

int32_t tokenizer_lookup(const struct tokenizer *t, const char *s, size_t len)
{
	for (size_t i = hash_bytes(s, len) & t->hash_mask;; i = (i + 1) & t->hash_mask) {
		int32_t id = t->hash[i];
		if (id < 0)
			return -1;
		size_t l = t->text_off[id + 1] - t->text_off[id];
		if (l == len && memcmp(t->arena + t->text_off[id], s, len) == 0)
			return id;
	}
}

int32_t tokenizer_find(const struct tokenizer *t, const char *text, size_t len)
{
	if (!t || (!text && len))
		return -1;
	return tokenizer_lookup(t, text, len);
}

/* The later of two equal texts wins, as in the files' own readers. */
static void hash_insert(struct tokenizer *t, int32_t id)
{
	const char *s = t->arena + t->text_off[id];
	size_t len = t->text_off[id + 1] - t->text_off[id];
	for (size_t i = hash_bytes(s, len) & t->hash_mask;; i = (i + 1) & t->hash_mask) {
		int32_t o = t->hash[i];
		if (o < 0 || (t->text_off[o + 1] - t->text_off[o] == len &&
		              memcmp(t->arena + t->text_off[o], s, len) == 0)) {
			t->hash[i] = id;
			return;
		}
	}
}

bool tokenizer_bpe_merge(const struct tokenizer *t, int32_t left, int32_t right, int32_t *rank,
                         int32_t *result)
{
	if (!t->merges)
		return false;
	uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
	for (size_t i = hash_pair(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
		const struct tokenizer_merge *m = &t->merges[i];
		if (m->rank < 0)
			return false;
		if (m->key == key) {
			*rank = m->rank;
			*result = m->result;
			return true;
		}
	}
}

enum rterror idvec_push(struct idvec *iv, int32_t id, char **reterr)
{
	if (iv->n >= iv->max)
		return rterror_set(reterr, RTERROR_LIMIT, "tokenizer: more than %zu tokens", iv->max);
	if (iv->n == iv->cap) {
		size_t cap = iv->cap ? iv->cap * 2 : 256;
		int32_t *v = realloc(iv->v, cap * sizeof *v);
		if (!v)
			return rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
		iv->v = v, iv->cap = cap;
	}
	iv->v[iv->n++] = id;
	return RTERROR_OK;
}

void tokenizer_free(struct tokenizer *t)
{
	if (!t)
		return;
	free(t->arena);
	free(t->text_off);
	free(t->piece_off);
	free(t->scores);
	free(t->types);
	free(t->eog);
	free(t->hash);
	free(t->merges);
	free(t->special);
	free(t);
}

/* ---- building ---- */

/* "a b" -> ids of a, b and ab; false when any is not in the vocabulary. */
static bool parse_merge(const struct tokenizer *t, struct tokenizer_str m, int32_t ids[3])
{
	char buf[2 * TOKENIZER_MAX_TOKEN_LEN];
	if (m.len < 3 || m.len > sizeof buf)
		return false;
	/* The separator is the first space after the first byte: a left part may be a space. */
	const char *sp = memchr(m.ptr + 1, ' ', m.len - 1);
	if (!sp)
		return false;
	size_t ll = (size_t)(sp - m.ptr), rl = m.len - ll - 1;
	memcpy(buf, m.ptr, ll);
	memcpy(buf + ll, sp + 1, rl);
	ids[0] = tokenizer_lookup(t, m.ptr, ll);
	ids[1] = tokenizer_lookup(t, sp + 1, rl);
	ids[2] = tokenizer_lookup(t, buf, ll + rl);
	return ids[0] >= 0 && ids[1] >= 0 && ids[2] >= 0;
}

static enum rterror build_merges(struct tokenizer *t, const struct tokenizer_vocab *v,
                                 char **reterr)
{
	if (v->n_merges > MAX_MERGES)
		return rterror_set(reterr, RTERROR_LIMIT, "tokenizer: %zu merges (at most %zu)",
		                   v->n_merges, MAX_MERGES);
	size_t size = table_size(v->n_merges);
	t->merges = malloc(size * sizeof *t->merges);
	if (!t->merges)
		return rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
	t->merge_mask = size - 1;
	for (size_t i = 0; i < size; i++)
		t->merges[i] = (struct tokenizer_merge){0, -1, -1};
	for (size_t r = 0; r < v->n_merges; r++) {
		int32_t ids[3];
		/* A merge naming texts that are no tokens could never apply to ids. */
		if (!parse_merge(t, v->merges[r], ids))
			continue;
		uint64_t key = (uint64_t)(uint32_t)ids[0] << 32 | (uint32_t)ids[1];
		size_t i = hash_pair(key) & t->merge_mask;
		while (t->merges[i].rank >= 0 && t->merges[i].key != key)
			i = (i + 1) & t->merge_mask;
		if (t->merges[i].rank < 0) /* the first (highest-priority) rank of a pair wins */
			t->merges[i] = (struct tokenizer_merge){key, (int32_t)r, ids[2]};
	}
	return RTERROR_OK;
}

/* The decoded bytes of token id, written at out (room for the text's length). */
static size_t make_piece(const struct tokenizer *t, int32_t id, char *out)
{
	const char *s = t->arena + t->text_off[id];
	size_t len = t->text_off[id + 1] - t->text_off[id], n = 0;
	uint8_t type = t->types[id];
	if (type == TOKTYPE_CONTROL || type == TOKTYPE_UNKNOWN ||
	    (t->family == TOKENIZER_BPE && type == TOKTYPE_USER_DEFINED)) {
		memcpy(out, s, len);
		return len;
	}
	if (t->family == TOKENIZER_SPM && type == TOKTYPE_BYTE && len == 6 &&
	    memcmp(s, "<0x", 3) == 0 && s[5] == '>') {
		unsigned b;
		char hex[3] = {s[3], s[4], 0};
		if (sscanf(hex, "%2x", &b) == 1) {
			out[0] = (char)b;
			return 1;
		}
	}
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t k = unicode_decode(s + i, len - i, &cp);
		int b;
		if (t->family == TOKENIZER_SPM && cp == 0x2581)
			out[n++] = ' ';
		else if (t->family == TOKENIZER_BPE && (b = unicode_cp_to_byte(cp)) >= 0)
			out[n++] = (char)b;
		else
			memcpy(out + n, s + i, k), n += k;
		i += k;
	}
	return n;
}

static int cmp_special(const void *a, const void *b, void *arg)
{
	const struct tokenizer *t = arg;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	uint8_t fx = (uint8_t)t->arena[t->text_off[x]], fy = (uint8_t)t->arena[t->text_off[y]];
	if (fx != fy)
		return fx < fy ? -1 : 1;
	uint32_t lx = t->text_off[x + 1] - t->text_off[x], ly = t->text_off[y + 1] - t->text_off[y];
	if (lx != ly)
		return lx > ly ? -1 : 1;
	return x < y ? -1 : x > y;
}

static bool build_specials(struct tokenizer *t)
{
	size_t n = 0;
	t->special = malloc((size_t)t->n_vocab * sizeof *t->special);
	if (!t->special)
		return false;
	for (int32_t id = 0; id < t->n_vocab; id++) {
		uint8_t ty = t->types[id];
		if ((ty == TOKTYPE_CONTROL || ty == TOKTYPE_UNKNOWN || ty == TOKTYPE_USER_DEFINED) &&
		    t->text_off[id + 1] > t->text_off[id])
			t->special[n++] = id;
	}
	qsort_r(t->special, n, sizeof *t->special, cmp_special, t);
	size_t k = 0;
	for (unsigned b = 0; b <= 256; b++) {
		while (k < n && (uint8_t)t->arena[t->text_off[t->special[k]]] < b)
			k++;
		t->special_first[b] = (uint32_t)k;
	}
	t->special_first[256] = (uint32_t)n;
	return true;
}

static enum rterror special_id(const struct tokenizer *t, int64_t v, int32_t dflt, const char *what,
                               int32_t *out, char **reterr)
{
	if (v == -2)
		v = dflt < t->n_vocab ? dflt : -1;
	if (v == -1 || v == 0xffffffffll) { /* the files' "none" */
		*out = -1;
		return RTERROR_OK;
	}
	if (v < 0 || v >= t->n_vocab)
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "tokenizer: %s token id %lld is outside the vocabulary of %d", what,
		                   (long long)v, (int)t->n_vocab);
	*out = (int32_t)v;
	return RTERROR_OK;
}

/* Texts that end a turn in the chat formats we know, whatever id they have. */
static const char *const eog_texts[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>",   "<end_of_turn>", "<|endoftext|>",
	"<|eom_id|>", "<EOT>",      "<|end_of_text|>",
};

static enum rterror set_special_ids(struct tokenizer *t, const struct tokenizer_vocab *v,
                                    char **reterr)
{
	bool spm = t->family == TOKENIZER_SPM;
	enum rterror err;
	if ((err = special_id(t, v->bos, spm ? 1 : -1, "BOS", &t->bos, reterr)) ||
	    (err = special_id(t, v->eos, spm ? 2 : -1, "EOS", &t->eos, reterr)) ||
	    (err = special_id(t, v->unk, spm ? 0 : -1, "unknown", &t->unk, reterr)) ||
	    (err = special_id(t, v->eot, -1, "end-of-turn", &t->eot, reterr)) ||
	    (err = special_id(t, v->eom, -1, "end-of-message", &t->eom, reterr)))
		return err;
	t->add_bos = v->add_bos >= 0 ? v->add_bos : (spm || t->pretok == PRETOK_LLAMA3);
	t->add_space_prefix = spm && (v->add_space_prefix >= 0 ? v->add_space_prefix : 1);
	t->ignore_merges = !spm && t->pretok == PRETOK_LLAMA3;
	int32_t ids[] = {t->eos, t->eot, t->eom};
	for (size_t i = 0; i < 3; i++) {
		if (ids[i] >= 0)
			t->eog[ids[i]] = 1;
	}
	for (size_t i = 0; i < sizeof eog_texts / sizeof eog_texts[0]; i++) {
		int32_t id = tokenizer_lookup(t, eog_texts[i], strlen(eog_texts[i]));
		if (id >= 0 && t->types[id] != TOKTYPE_NORMAL)
			t->eog[id] = 1;
	}
	return RTERROR_OK;
}

static enum rterror copy_texts(struct tokenizer *t, const struct tokenizer_vocab *v, char **reterr)
{
	size_t total = 0;
	for (size_t i = 0; i < v->n_tokens; i++) {
		if (v->tokens[i].len > TOKENIZER_MAX_TOKEN_LEN || (v->tokens[i].len && !v->tokens[i].ptr))
			return rterror_set(reterr, RTERROR_LIMIT,
			                   "tokenizer: token %zu is %zu bytes long (at most %d)", i,
			                   (size_t)v->tokens[i].len, TOKENIZER_MAX_TOKEN_LEN);
		total += v->tokens[i].len;
	}
	if (total > MAX_TOTAL_TEXT)
		return rterror_set(reterr, RTERROR_LIMIT, "tokenizer: token texts total %zu bytes", total);
	/* Pieces are never longer than their texts: room for both. */
	t->arena = malloc(2 * total + 1);
	t->text_off = malloc((v->n_tokens + 1) * sizeof *t->text_off);
	t->piece_off = malloc((v->n_tokens + 1) * sizeof *t->piece_off);
	if (!t->arena || !t->text_off || !t->piece_off)
		return rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
	size_t off = 0;
	for (size_t i = 0; i < v->n_tokens; i++) {
		t->text_off[i] = (uint32_t)off;
		if (v->tokens[i].len)
			memcpy(t->arena + off, v->tokens[i].ptr, v->tokens[i].len);
		off += v->tokens[i].len;
	}
	t->text_off[v->n_tokens] = (uint32_t)off;
	return RTERROR_OK;
}

static void build_pieces(struct tokenizer *t)
{
	size_t off = t->text_off[t->n_vocab];
	for (int32_t id = 0; id < t->n_vocab; id++) {
		t->piece_off[id] = (uint32_t)off;
		off += make_piece(t, id, t->arena + off);
	}
	t->piece_off[t->n_vocab] = (uint32_t)off;
}

static void build_bytes(struct tokenizer *t)
{
	for (unsigned b = 0; b < 256; b++) {
		if (t->family == TOKENIZER_SPM) {
			char name[8];
			snprintf(name, sizeof name, "<0x%02X>", b);
			t->byte_id[b] = tokenizer_lookup(t, name, 6);
		} else {
			t->byte_text_len[b] = (uint8_t)unicode_encode(unicode_byte_to_cp((uint8_t)b), t->byte_text[b]);
			t->byte_id[b] = tokenizer_lookup(t, t->byte_text[b], t->byte_text_len[b]);
		}
	}
}

static enum rterror check_vocab(const struct tokenizer_vocab *v, enum tokenizer_family *fam,
                                enum pretok_kind *pre, char **reterr)
{
	if (!v->model || (strcmp(v->model, "llama") && strcmp(v->model, "gpt2")))
		return rterror_set(reterr, RTERROR_UNSUPPORTED,
		                   "tokenizer: unsupported tokenizer model \"%.64s\" (known: llama, gpt2)",
		                   v->model ? v->model : "");
	*fam = strcmp(v->model, "llama") == 0 ? TOKENIZER_SPM : TOKENIZER_BPE;
	*pre = PRETOK_GPT2;
	if (*fam == TOKENIZER_BPE) {
		const char *p = v->pre ? v->pre : "default";
		enum rterror err = pretok_from_name(p, strlen(p), pre, reterr);
		if (err)
			return err;
	}
	if (v->n_tokens == 0 || !v->tokens)
		return rterror_set(reterr, RTERROR_FORMAT, "tokenizer: the vocabulary is empty");
	if (v->n_tokens > TOKENIZER_MAX_VOCAB)
		return rterror_set(reterr, RTERROR_LIMIT, "tokenizer: %zu tokens (at most %d)",
		                   v->n_tokens, TOKENIZER_MAX_VOCAB);
	if (v->n_merges && !v->merges)
		return rterror_set(reterr, RTERROR_INVALID, "tokenizer: merges missing");
	return RTERROR_OK;
}

enum rterror tokenizer_new(const struct tokenizer_vocab *v, struct tokenizer **ret, char **reterr)
{
	enum tokenizer_family fam = TOKENIZER_SPM;
	enum pretok_kind pre = PRETOK_GPT2;
	enum rterror err = check_vocab(v, &fam, &pre, reterr);
	if (err)
		return err;
	struct tokenizer *t = calloc(1, sizeof *t);
	if (!t)
		return rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
	t->family = fam;
	t->pretok = pre;
	t->n_vocab = (int32_t)v->n_tokens;
	err = copy_texts(t, v, reterr);
	if (err)
		goto out;
	size_t hs = table_size(v->n_tokens);
	t->scores = calloc(v->n_tokens, sizeof *t->scores);
	t->types = malloc(v->n_tokens);
	t->eog = calloc(v->n_tokens, 1);
	t->hash = malloc(hs * sizeof *t->hash);
	if (!t->scores || !t->types || !t->eog || !t->hash) {
		err = rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
		goto out;
	}
	t->hash_mask = hs - 1;
	memset(t->hash, 0xff, hs * sizeof *t->hash);
	for (size_t i = 0; i < v->n_tokens; i++) {
		int32_t ty = v->types ? v->types[i] : TOKTYPE_NORMAL;
		t->types[i] = (uint8_t)(ty >= TOKTYPE_NORMAL && ty <= TOKTYPE_BYTE ? ty : TOKTYPE_NORMAL);
		float sc = v->scores ? v->scores[i] : 0.0f;
		t->scores[i] = sc == sc ? sc : -1e30f; /* a NaN would make the merge order meaningless */
		hash_insert(t, (int32_t)i);
	}
	build_bytes(t);
	build_pieces(t);
	if (!build_specials(t)) {
		err = rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
		goto out;
	}
	err = set_special_ids(t, v, reterr);
	if (!err && fam == TOKENIZER_BPE)
		err = build_merges(t, v, reterr);
out:
	if (err)
		tokenizer_free(t);
	else
		*ret = t;
	return err;
}

/* ---- reading GGUF metadata ---- */

static enum rterror gguf_id(const struct gguf_file *f, const char *key, int64_t *out, char **reterr)
{
	*out = -2;
	if (gguf_find_key(f, key) < 0)
		return RTERROR_OK;
	uint32_t v;
	if (!gguf_get_u32(f, key, &v))
		return rterror_set(reterr, RTERROR_FORMAT, "tokenizer: %s is not a token id", key);
	*out = v;
	return RTERROR_OK;
}

static enum rterror gguf_flag(const struct gguf_file *f, const char *key, int *out, char **reterr)
{
	*out = -1;
	if (gguf_find_key(f, key) < 0)
		return RTERROR_OK;
	bool b;
	if (!gguf_get_bool(f, key, &b))
		return rterror_set(reterr, RTERROR_FORMAT, "tokenizer: %s is not a boolean", key);
	*out = b;
	return RTERROR_OK;
}

/* A numeric array of n elements of type want, copied out (NULL when absent). */
static enum rterror gguf_numbers(const struct gguf_file *f, const char *key, enum gguf_vtype want,
                                 size_t n, void **out, char **reterr)
{
	enum gguf_vtype et;
	uint64_t count;
	*out = NULL;
	if (gguf_find_key(f, key) < 0)
		return RTERROR_OK;
	const void *data = gguf_get_arr(f, key, &et, &count) ? gguf_get_arr_data(f, key) : NULL;
	if (!data || et != want || count != n)
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "tokenizer: %s must be an array of %zu %s", key, n,
		                   want == GGUF_VT_FLOAT32 ? "float32" : "int32");
	*out = malloc(n * 4);
	if (!*out)
		return rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
	memcpy(*out, data, n * 4);
	return RTERROR_OK;
}

static enum rterror gguf_strings(const struct gguf_file *f, const char *key, size_t max,
                                 struct tokenizer_str **out, size_t *ret_n, char **reterr)
{
	enum gguf_vtype et;
	uint64_t n;
	*out = NULL;
	*ret_n = 0;
	if (!gguf_get_arr(f, key, &et, &n) || et != GGUF_VT_STRING)
		return rterror_set(reterr, RTERROR_FORMAT, "tokenizer: %s must be an array of strings", key);
	if (n > max)
		return rterror_set(reterr, RTERROR_LIMIT, "tokenizer: %s has %llu entries (at most %zu)",
		                   key, (unsigned long long)n, max);
	*out = malloc((n ? n : 1) * sizeof **out);
	if (!*out)
		return rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
	for (uint64_t i = 0; i < n; i++) {
		struct gguf_str s;
		if (!gguf_get_arr_str(f, key, i, &s))
			return rterror_set(reterr, RTERROR_FORMAT, "tokenizer: %s[%llu] is unreadable", key,
			                   (unsigned long long)i);
		(*out)[i] = (struct tokenizer_str){s.ptr, (size_t)s.len};
	}
	*ret_n = (size_t)n;
	return RTERROR_OK;
}

/* A string value as a NUL-terminated copy in buf; false when absent or too long. */
static bool gguf_small_str(const struct gguf_file *f, const char *key, char *buf, size_t size)
{
	struct gguf_str s;
	if (!gguf_get_str(f, key, &s) || s.len >= size || memchr(s.ptr, 0, s.len))
		return false;
	memcpy(buf, s.ptr, s.len);
	buf[s.len] = 0;
	return true;
}

static enum rterror read_ids(const struct gguf_file *f, struct tokenizer_vocab *v, char **reterr)
{
	enum rterror err;
	if ((err = gguf_id(f, "tokenizer.ggml.bos_token_id", &v->bos, reterr)) ||
	    (err = gguf_id(f, "tokenizer.ggml.eos_token_id", &v->eos, reterr)) ||
	    (err = gguf_id(f, "tokenizer.ggml.unknown_token_id", &v->unk, reterr)) ||
	    (err = gguf_id(f, "tokenizer.ggml.eot_token_id", &v->eot, reterr)) ||
	    (err = gguf_id(f, "tokenizer.ggml.eom_token_id", &v->eom, reterr)) ||
	    (err = gguf_flag(f, "tokenizer.ggml.add_bos_token", &v->add_bos, reterr)) ||
	    (err = gguf_flag(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, reterr)))
		return err;
	return RTERROR_OK;
}

enum rterror tokenizer_load(const struct gguf_file *f, struct tokenizer **ret, char **reterr)
{
	char model[32], pre[64];
	struct tokenizer_vocab v = {.model = model, .pre = pre};
	struct tokenizer_str *tokens = NULL, *merges = NULL;
	void *scores = NULL, *types = NULL;
	enum rterror err;
	if (!f || !ret)
		return rterror_set(reterr, RTERROR_INVALID, "tokenizer_load: invalid argument");
	if (!gguf_small_str(f, "tokenizer.ggml.model", model, sizeof model))
		return rterror_set(reterr, RTERROR_FORMAT,
		                   "tokenizer: tokenizer.ggml.model is missing or not a short string");
	if (gguf_find_key(f, "tokenizer.ggml.pre") < 0)
		v.pre = NULL;
	else if (!gguf_small_str(f, "tokenizer.ggml.pre", pre, sizeof pre))
		return rterror_set(reterr, RTERROR_UNSUPPORTED,
		                   "tokenizer: tokenizer.ggml.pre is not a known pre-tokenizer name");
	err = gguf_strings(f, "tokenizer.ggml.tokens", TOKENIZER_MAX_VOCAB, &tokens, &v.n_tokens, reterr);
	if (err)
		goto out;
	v.tokens = tokens;
	if ((err = gguf_numbers(f, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, v.n_tokens, &scores, reterr)) ||
	    (err = gguf_numbers(f, "tokenizer.ggml.token_type", GGUF_VT_INT32, v.n_tokens, &types, reterr)) ||
	    (err = read_ids(f, &v, reterr)))
		goto out;
	v.scores = scores;
	v.types = types;
	if (strcmp(model, "gpt2") == 0) {
		err = gguf_strings(f, "tokenizer.ggml.merges", MAX_MERGES, &merges, &v.n_merges, reterr);
		if (err)
			goto out;
		v.merges = merges;
	}
	err = tokenizer_new(&v, ret, reterr);
out:
	free(tokens);
	free(merges);
	free(scores);
	free(types);
	return err;
}

/* ---- encoding ---- */

/* The longest special token whose text starts s[0..len), -1 if none. Without
 * parse_special only user-defined tokens count. */
static int32_t match_special(const struct tokenizer *t, const char *s, size_t len,
                             bool parse_special, size_t *ret_len)
{
	uint8_t c = (uint8_t)s[0];
	for (uint32_t k = t->special_first[c]; k < t->special_first[c + 1]; k++) {
		int32_t id = t->special[k];
		if (!parse_special && t->types[id] != TOKTYPE_USER_DEFINED)
			continue;
		size_t l = t->text_off[id + 1] - t->text_off[id];
		if (l <= len && memcmp(s, t->arena + t->text_off[id], l) == 0) {
			*ret_len = l;
			return id;
		}
	}
	return -1;
}

struct textbuf {
	char *p;
	size_t n, cap;
};

static bool textbuf_add(struct textbuf *b, const char *s, size_t len)
{
	if (b->n + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + len)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return false;
		b->p = p, b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->n, s, len);
	b->n += len;
	return true;
}

/* Tokenizes the plain text gathered so far. A SentencePiece text gets the
 * space prefix when nothing but special tokens came before it. */
static enum rterror flush_text(const struct tokenizer *t, struct textbuf *b, bool *prev_special,
                               struct idvec *out, char **reterr)
{
	if (b->n == 0)
		return RTERROR_OK;
	enum rterror err;
	if (t->family == TOKENIZER_SPM)
		err = tokenizer_spm_encode(t, b->p, b->n, t->add_space_prefix && *prev_special, out, reterr);
	else
		err = tokenizer_bpe_encode(t, b->p, b->n, out, reterr);
	b->n = 0;
	*prev_special = false;
	return err;
}

static enum rterror encode_part(const struct tokenizer *t, const struct tokenizer_part *p,
                                struct textbuf *b, bool *prev_special, struct idvec *out,
                                char **reterr)
{
	size_t seg = 0;
	for (size_t pos = 0; pos < p->len;) {
		size_t ml = 0;
		int32_t id = match_special(t, p->text + pos, p->len - pos, p->parse_special, &ml);
		if (id < 0) {
			pos++;
			continue;
		}
		if (!textbuf_add(b, p->text + seg, pos - seg))
			return rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
		enum rterror err = flush_text(t, b, prev_special, out, reterr);
		if (!err)
			err = idvec_push(out, id, reterr);
		if (err)
			return err;
		*prev_special = true;
		pos += ml;
		seg = pos;
	}
	if (!textbuf_add(b, p->text + seg, p->len - seg))
		return rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
	return RTERROR_OK;
}

enum rterror tokenizer_encode_parts(const struct tokenizer *t, const struct tokenizer_part *parts,
                                    size_t n, bool add_bos, size_t max_tokens, int32_t **ret_ids,
                                    size_t *ret_n, char **reterr)
{
	if (!t || (n && !parts) || !ret_ids || !ret_n)
		return rterror_set(reterr, RTERROR_INVALID, "tokenizer_encode: invalid argument");
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (parts[i].len && !parts[i].text)
			return rterror_set(reterr, RTERROR_INVALID, "tokenizer_encode: NULL text");
		total += parts[i].len;
		if (parts[i].len > TOKENIZER_MAX_INPUT || total > TOKENIZER_MAX_INPUT)
			return rterror_set(reterr, RTERROR_LIMIT, "tokenizer: input longer than %zu bytes",
			                   TOKENIZER_MAX_INPUT);
	}
	struct idvec out = {.max = max_tokens};
	struct textbuf b = {0};
	bool prev_special = true;
	enum rterror err = RTERROR_OK;
	if (add_bos && t->bos >= 0)
		err = idvec_push(&out, t->bos, reterr);
	for (size_t i = 0; !err && i < n; i++)
		err = encode_part(t, &parts[i], &b, &prev_special, &out, reterr);
	if (!err)
		err = flush_text(t, &b, &prev_special, &out, reterr);
	if (!err && !out.v && !(out.v = malloc(sizeof *out.v)))
		err = rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
	free(b.p);
	if (err) {
		free(out.v);
		return err;
	}
	*ret_ids = out.v;
	*ret_n = out.n;
	return RTERROR_OK;
}

enum rterror tokenizer_encode(const struct tokenizer *t, const char *text, size_t len,
                              bool add_bos, bool parse_special, size_t max_tokens,
                              int32_t **ret_ids, size_t *ret_n, char **reterr)
{
	struct tokenizer_part p = {text, len, parse_special};
	return tokenizer_encode_parts(t, &p, 1, add_bos, max_tokens, ret_ids, ret_n, reterr);
}

/* ---- decoding and accessors ---- */

static bool in_range(const struct tokenizer *t, int32_t id)
{
	return t && id >= 0 && id < t->n_vocab;
}

int32_t tokenizer_n_vocab(const struct tokenizer *t)
{
	return t ? t->n_vocab : 0;
}

int32_t tokenizer_bos(const struct tokenizer *t)
{
	return t ? t->bos : -1;
}

int32_t tokenizer_eos(const struct tokenizer *t)
{
	return t ? t->eos : -1;
}

bool tokenizer_add_bos(const struct tokenizer *t)
{
	return t && t->add_bos && t->bos >= 0;
}

bool tokenizer_is_eog(const struct tokenizer *t, int32_t id)
{
	return in_range(t, id) && t->eog[id];
}

bool tokenizer_is_control(const struct tokenizer *t, int32_t id)
{
	if (!in_range(t, id))
		return false;
	uint8_t ty = t->types[id];
	return ty == TOKTYPE_CONTROL || ty == TOKTYPE_UNKNOWN || ty == TOKTYPE_UNUSED ||
	       id == t->bos || id == t->eos || t->eog[id];
}

const char *tokenizer_piece(const struct tokenizer *t, int32_t id, size_t *ret_len)
{
	if (!in_range(t, id)) {
		if (ret_len)
			*ret_len = 0;
		return NULL;
	}
	if (ret_len)
		*ret_len = t->piece_off[id + 1] - t->piece_off[id];
	return t->arena + t->piece_off[id];
}

const char *tokenizer_text(const struct tokenizer *t, int32_t id, size_t *ret_len)
{
	if (!in_range(t, id)) {
		if (ret_len)
			*ret_len = 0;
		return NULL;
	}
	if (ret_len)
		*ret_len = t->text_off[id + 1] - t->text_off[id];
	return t->arena + t->text_off[id];
}

enum rterror tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n,
                              bool keep_special, char **ret, size_t *ret_len, char **reterr)
{
	if (!t || (n && !ids) || !ret)
		return rterror_set(reterr, RTERROR_INVALID, "tokenizer_decode: invalid argument");
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (!in_range(t, ids[i]))
			return rterror_set(reterr, RTERROR_INVALID, "tokenizer_decode: token id %d is not in "
			                   "the vocabulary of %d", (int)ids[i], (int)t->n_vocab);
		total += t->piece_off[ids[i] + 1] - t->piece_off[ids[i]];
	}
	char *s = malloc(total + 1);
	if (!s)
		return rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
	size_t len = 0;
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		if (!keep_special && tokenizer_is_control(t, ids[i]))
			continue;
		size_t pl;
		const char *p = tokenizer_piece(t, ids[i], &pl);
		/* The space the prefix put before the first word was never in the text. */
		if (first && t->add_space_prefix && pl > 0 && p[0] == ' ')
			p++, pl--;
		memcpy(s + len, p, pl);
		len += pl;
		first = first && tokenizer_is_control(t, ids[i]);
	}
	s[len] = 0;
	*ret = s;
	if (ret_len)
		*ret_len = len;
	return RTERROR_OK;
}
