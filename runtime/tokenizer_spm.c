/* tokenizer_spm: SentencePiece-style encoding of plain text.
 *
 * Spaces become U+2581 (with one more in front when the text starts a prompt
 * and the vocabulary asks for a space prefix); the text is cut into
 * characters; then the adjacent pair whose joined text is the vocabulary entry
 * with the highest score is merged, leftmost first on a tie, until no pair
 * joins into an entry. A character that is no entry falls back to its bytes'
 * <0xNN> tokens. Candidate pairs wait in a binary heap and are checked when
 * taken, so the whole text costs O(n log n). */
#include "runtime/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/unicode.h"

struct sym {
	uint32_t start, len; /* bytes in the escaped text; len 0 once merged away */
	int32_t prev, next;  /* -1 at the ends */
};

struct bigram {
	float score;
	uint32_t left;
	uint32_t len; /* joined length when queued: stale if either side changed */
	int32_t id;
};

struct heap {
	struct bigram *v;
	size_t n, cap;
};

/* Higher score first; on a tie, the leftmost. */
static bool before(const struct bigram *a, const struct bigram *b)
{
	return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(struct heap *h, struct bigram g)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct bigram *v = realloc(h->v, cap * sizeof *v);
		if (!v)
			return false;
		h->v = v, h->cap = cap;
	}
	size_t i = h->n++;
	while (i > 0 && before(&g, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = g;
	return true;
}

static struct bigram heap_pop(struct heap *h)
{
	struct bigram top = h->v[0], last = h->v[--h->n];
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

static bool try_pair(const struct tokenizer *t, const char *s, const struct sym *sy, int32_t l,
                     struct heap *h)
{
	if (l < 0 || sy[l].next < 0)
		return true;
	int32_t r = sy[l].next;
	uint32_t len = sy[l].len + sy[r].len;
	int32_t id = tokenizer_lookup(t, s + sy[l].start, len);
	if (id < 0)
		return true;
	struct bigram g = {t->scores[id], (uint32_t)l, len, id};
	return heap_push(h, g);
}

/* Escapes text into a new buffer: ' ' -> U+2581, optionally one in front. */
static char *escape(const char *text, size_t len, bool prefix, size_t *ret_len)
{
	size_t spaces = prefix;
	for (size_t i = 0; i < len; i++)
		spaces += text[i] == ' ';
	char *s = malloc(len + 2 * spaces + 1);
	if (!s)
		return NULL;
	size_t n = 0;
	if (prefix)
		memcpy(s, "\xe2\x96\x81", 3), n = 3;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == ' ')
			memcpy(s + n, "\xe2\x96\x81", 3), n += 3;
		else
			s[n++] = text[i];
	}
	*ret_len = n;
	return s;
}

static enum rterror emit(const struct tokenizer *t, const char *s, const struct sym *y,
                         struct idvec *out, char **reterr)
{
	int32_t id = tokenizer_lookup(t, s + y->start, y->len);
	if (id >= 0)
		return idvec_push(out, id, reterr);
	for (uint32_t j = 0; j < y->len; j++) {
		int32_t b = t->byte_id[(uint8_t)s[y->start + j]];
		if (b < 0)
			b = t->unk;
		if (b < 0)
			continue; /* neither byte tokens nor <unk>: the byte cannot be shown */
		enum rterror err = idvec_push(out, b, reterr);
		if (err)
			return err;
	}
	return RTERROR_OK;
}

/* Cuts s into characters (an invalid byte is a character of its own). */
static struct sym *split_chars(const char *s, size_t slen, size_t *ret_n)
{
	struct sym *sy = malloc((slen + 1) * sizeof *sy);
	if (!sy)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < slen;) {
		uint32_t cp;
		size_t k = unicode_decode(s + i, slen - i, &cp);
		sy[n] = (struct sym){(uint32_t)i, (uint32_t)k, (int32_t)n - 1, -1};
		if (n > 0)
			sy[n - 1].next = (int32_t)n;
		n++;
		i += k;
	}
	*ret_n = n;
	return sy;
}

/* Merges the best pairs until none is left; false when memory ran out. */
static bool merge_all(const struct tokenizer *t, const char *s, struct sym *sy, size_t n)
{
	struct heap h = {0};
	bool ok = true;
	for (size_t i = 0; ok && i + 1 < n; i++)
		ok = try_pair(t, s, sy, (int32_t)i, &h);
	while (ok && h.n > 0) {
		struct bigram g = heap_pop(&h);
		struct sym *l = &sy[g.left];
		if (l->len == 0 || l->next < 0)
			continue;
		struct sym *r = &sy[l->next];
		/* Lengths only grow, so a changed side never adds up to the queued length. */
		if (l->len + r->len != g.len)
			continue;
		l->len += r->len;
		r->len = 0;
		l->next = r->next;
		if (r->next >= 0)
			sy[r->next].prev = (int32_t)g.left;
		ok = try_pair(t, s, sy, l->prev, &h) && try_pair(t, s, sy, (int32_t)g.left, &h);
	}
	free(h.v);
	return ok;
}

enum rterror tokenizer_spm_encode(const struct tokenizer *t, const char *text, size_t len,
                                  bool space_prefix, struct idvec *out, char **reterr)
{
	enum rterror err = RTERROR_OK;
	size_t n = 0, slen = 0;
	struct sym *sy = NULL;
	char *s = escape(text, len, space_prefix, &slen);
	if (s)
		sy = split_chars(s, slen, &n);
	if (!s || !sy || !merge_all(t, s, sy, n)) {
		err = rterror_set(reterr, RTERROR_NOMEM, "tokenizer: out of memory");
		goto out;
	}
	for (int32_t i = n ? 0 : -1; i >= 0; i = sy[i].next) {
		err = emit(t, s, &sy[i], out, reterr);
		if (err)
			goto out;
	}
out:
	free(sy);
	free(s);
	return err;
}
