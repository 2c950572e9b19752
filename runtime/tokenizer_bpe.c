/* tokenizer_bpe: byte-level BPE encoding of plain text.
 *
 * The pre-tokenizer cuts the text into pieces; each piece starts as one
 * symbol per byte (the token of that byte's stand-in character), then the
 * adjacent pair with the lowest merge rank is joined, leftmost first on a
 * tie, until no pair has a merge. Merges are looked up by the pair of ids, so
 * no text is built while merging. Candidate pairs wait in a binary heap and
 * are checked when taken: O(n log n) per piece. */
#include "runtime/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

struct bsym {
	int32_t id; /* -1: a byte that has no token */
	int32_t prev, next;
	bool dead;
};

struct cand {
	int32_t rank;
	int32_t left;
	int32_t left_id, right_id; /* the ids when queued: stale if either changed */
	int32_t result;
};

struct cheap {
	struct cand *v;
	size_t n, cap;
};

static bool before(const struct cand *a, const struct cand *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool cheap_push(struct cheap *h, struct cand c)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct cand *v = realloc(h->v, cap * sizeof *v);
		if (!v)
			return false;
		h->v = v, h->cap = cap;
	}
	size_t i = h->n++;
	while (i > 0 && before(&c, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = c;
	return true;
}

static struct cand cheap_pop(struct cheap *h)
{
	struct cand top = h->v[0], last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c]))
			c++;
		if (!before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

static bool try_pair(const struct tokenizer *t, const struct bsym *sy, int32_t l, struct cheap *h)
{
	if (l < 0 || sy[l].next < 0)
		return true;
	int32_t r = sy[l].next, rank, result;
	if (sy[l].id < 0 || sy[r].id < 0 || !tokenizer_bpe_merge(t, sy[l].id, sy[r].id, &rank, &result))
		return true;
	return cheap_push(h, (struct cand){rank, l, sy[l].id, sy[r].id, result});
}

static bool merge_all(const struct tokenizer *t, struct bsym *sy, size_t n)
{
	struct cheap h = {0};
	bool ok = true;
	for (size_t i = 0; ok && i + 1 < n; i++)
		ok = try_pair(t, sy, (int32_t)i, &h);
	while (ok && h.n > 0) {
		struct cand c = cheap_pop(&h);
		struct bsym *l = &sy[c.left];
		if (l->dead || l->next < 0 || l->id != c.left_id)
			continue;
		struct bsym *r = &sy[l->next];
		/* A merged symbol's id is a longer token than before, so ids never repeat. */
		if (r->id != c.right_id)
			continue;
		l->id = c.result;
		r->dead = true;
		l->next = r->next;
		if (r->next >= 0)
			sy[r->next].prev = c.left;
		ok = try_pair(t, sy, l->prev, &h) && try_pair(t, sy, c.left, &h);
	}
	free(h.v);
	return ok;
}

/* A piece that is itself a token, spelled in the byte alphabet (llama3's
 * ignore_merges); -1 if not, or too long to be one. */
static int32_t whole_piece(const struct tokenizer *t, const uint8_t *p, size_t n)
{
	char buf[TOKENIZER_MAX_TOKEN_LEN];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k + 3 > sizeof buf)
			return -1;
		memcpy(buf + k, t->byte_text[p[i]], t->byte_text_len[p[i]]);
		k += t->byte_text_len[p[i]];
	}
	return tokenizer_lookup(t, buf, k);
}

static enum rterror encode_piece(const struct tokenizer *t, const uint8_t *p, size_t n,
                                 struct bsym *sy, struct idvec *out, char **reterr)
{
	if (t->ignore_merges) {
		int32_t id = whole_piece(t, p, n);
		if (id >= 0)
			return idvec_push(out, id, reterr);
	}
	for (size_t i = 0; i < n; i++)
		sy[i] = (struct bsym){t->byte_id[p[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, false};
	if (!merge_all(t, sy, n))
		return rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
	for (int32_t i = n ? 0 : -1; i >= 0; i = sy[i].next) {
		int32_t id = sy[i].id >= 0 ? sy[i].id : t->unk;
		if (id < 0)
			continue; /* a byte without a token and no <unk>: it cannot be shown */
		enum rterror err = idvec_push(out, id, reterr);
		if (err)
			return err;
	}
	return RTERROR_OK;
}

enum rterror tokenizer_bpe_encode(const struct tokenizer *t, const char *text, size_t len,
                                  struct idvec *out, char **reterr)
{
	uint32_t *ends = NULL;
	size_t n = 0;
	enum rterror err = pretok_split(t->pretok, text, len, &ends, &n, reterr);
	if (err)
		return err;
	struct bsym *sy = malloc((len + 1) * sizeof *sy);
	if (!sy) {
		err = rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
		goto out;
	}
	for (size_t i = 0, start = 0; i < n; start = ends[i++]) {
		err = encode_piece(t, (const uint8_t *)text + start, ends[i] - start, sy, out, reterr);
		if (err)
			goto out;
	}
out:
	free(sy);
	free(ends);
	return err;
}
