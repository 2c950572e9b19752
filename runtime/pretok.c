/* pretok: hand-written matchers for the pre-tokenizer regular expressions.
 *
 * The text is decoded once into code points with their category flags; every
 * matcher is a function (buf, pos, end) -> length of the match starting at pos
 * (0: none), seeing only [pos, end). Splitting scans left to right, so each
 * expression costs O(length of the text) apart from the backtracking-free
 * look-ahead of \s+(?!\S), which is also linear. */
#include "runtime/pretok.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/unicode.h"

struct cpbuf {
	uint32_t *cp;  /* code point or UNICODE_INVALID per unit */
	uint8_t *fl;   /* unicode_flags() per unit */
	uint32_t *off; /* byte offset of each unit, n + 1 entries */
	size_t n;
};

typedef size_t (*matcher)(const struct cpbuf *b, size_t pos, size_t end);

#define L(i) (b->fl[i] & UNICODE_LETTER)
#define N(i) (b->fl[i] & UNICODE_NUMBER)
#define S(i) (b->fl[i] & UNICODE_SPACE)
#define OTHER(i) (!(b->fl[i] & (UNICODE_LETTER | UNICODE_NUMBER | UNICODE_SPACE)))
#define IS_NL(i) (b->cp[i] == '\r' || b->cp[i] == '\n')

static size_t run(const struct cpbuf *b, size_t p, size_t end, unsigned flag)
{
	while (p < end && (b->fl[p] & flag))
		p++;
	return p;
}

static size_t run_other(const struct cpbuf *b, size_t p, size_t end)
{
	while (p < end && OTHER(p))
		p++;
	return p;
}

static uint32_t lower_ascii(uint32_t c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* 's 't 're 've 'm 'll 'd, optionally case-insensitive. */
static size_t contraction(const struct cpbuf *b, size_t pos, size_t end, bool ci)
{
	if (b->cp[pos] != '\'' || pos + 1 >= end)
		return 0;
	uint32_t c1 = ci ? lower_ascii(b->cp[pos + 1]) : b->cp[pos + 1];
	if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
		return 2;
	if (pos + 2 >= end)
		return 0;
	uint32_t c2 = ci ? lower_ascii(b->cp[pos + 2]) : b->cp[pos + 2];
	if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
		return 3;
	return 0;
}

/* \s+(?!\S) and then \s+: a run of spaces followed by a non-space gives that
 * character all but its last space, a single space stands alone. */
static size_t spaces_tail(const struct cpbuf *b, size_t pos, size_t end)
{
	if (!S(pos))
		return 0;
	size_t r = run(b, pos, end, UNICODE_SPACE);
	if (r < end && r - pos > 1)
		return r - 1 - pos;
	return r - pos;
}

static size_t m_gpt2(const struct cpbuf *b, size_t pos, size_t end)
{
	size_t m = contraction(b, pos, end, false);
	if (m)
		return m;
	size_t p = pos + (b->cp[pos] == ' ' && pos + 1 < end);
	if (L(p))
		return run(b, p, end, UNICODE_LETTER) - pos;
	if (N(p))
		return run(b, p, end, UNICODE_NUMBER) - pos;
	if (OTHER(p))
		return run_other(b, p, end) - pos;
	return spaces_tail(b, pos, end);
}

static size_t m_llama3_like(const struct cpbuf *b, size_t pos, size_t end, size_t max_digits)
{
	size_t m = contraction(b, pos, end, true);
	if (m)
		return m;
	/* [^\r\n\p{L}\p{N}]?\p{L}+ */
	if (L(pos))
		return run(b, pos, end, UNICODE_LETTER) - pos;
	if (!IS_NL(pos) && !N(pos) && pos + 1 < end && L(pos + 1))
		return run(b, pos + 1, end, UNICODE_LETTER) - pos;
	/* \p{N}{1,max} */
	if (N(pos)) {
		size_t p = pos;
		while (p < end && p - pos < max_digits && N(p))
			p++;
		return p - pos;
	}
	/*  ?[^\s\p{L}\p{N}]+[\r\n]* */
	size_t p = pos + (b->cp[pos] == ' ' && pos + 1 < end);
	if (OTHER(p)) {
		p = run_other(b, p, end);
		while (p < end && IS_NL(p))
			p++;
		return p - pos;
	}
	if (!S(pos))
		return 0;
	/* \s*[\r\n]+ ends after the last newline of the space run. */
	size_t r = run(b, pos, end, UNICODE_SPACE);
	for (size_t q = r; q > pos; q--) {
		if (IS_NL(q - 1))
			return q - pos;
	}
	return spaces_tail(b, pos, end);
}

static size_t m_llama3(const struct cpbuf *b, size_t pos, size_t end)
{
	return m_llama3_like(b, pos, end, 3);
}

static size_t m_qwen2(const struct cpbuf *b, size_t pos, size_t end)
{
	return m_llama3_like(b, pos, end, 1);
}

/* \p{N} */
static size_t m_one_number(const struct cpbuf *b, size_t pos, size_t end)
{
	return N(pos) ? 1 : 0;
}

/* \p{N}+ */
static size_t m_numbers(const struct cpbuf *b, size_t pos, size_t end)
{
	return run(b, pos, end, UNICODE_NUMBER) - pos;
}

/* [0-9][0-9][0-9] */
static size_t m_ascii_digits3(const struct cpbuf *b, size_t pos, size_t end)
{
	if (end - pos < 3)
		return 0;
	for (size_t i = pos; i < pos + 3; i++) {
		if (b->cp[i] < '0' || b->cp[i] > '9')
			return 0;
	}
	return 3;
}

static bool default_punct(uint32_t c, unsigned fl)
{
	return (fl & UNICODE_PUNCT) || (c < 0x80 && strchr("$+<=>^~|", (int)c) && c != 0);
}

/* [\p{P}\$\+<=>\^~\|]+ */
static size_t m_default_punct(const struct cpbuf *b, size_t pos, size_t end)
{
	size_t p = pos;
	while (p < end && default_punct(b->cp[p], b->fl[p]))
		p++;
	return p - pos;
}

/* [\r\n] */
static size_t m_newline(const struct cpbuf *b, size_t pos, size_t end)
{
	return IS_NL(pos) ? 1 : 0;
}

static bool ds_punct(uint32_t c)
{
	return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x7e) || (c >= 0xff01 && c <= 0xff0f) ||
	       (c >= 0xff1a && c <= 0xff5e) || (c >= 0x2018 && c <= 0x201f) ||
	       (c >= 0x3000 && c <= 0x3002);
}

static bool ds_cjk(uint32_t c)
{
	return (c >= 0x4e00 && c <= 0x9fa5) || (c >= 0x0800 && c <= 0x4e00) ||
	       (c >= 0xac00 && c <= 0xd7ff);
}

/* \s?[cased letters]+: deepseek-llm lists the cased letters (Lu, Ll, Lt) as ranges. */
static size_t m_ds_letters(const struct cpbuf *b, size_t pos, size_t end)
{
	size_t p = pos + (S(pos) && pos + 1 < end);
	size_t r = run(b, p, end, UNICODE_CASED);
	return r > p ? r - pos : 0;
}

/* \s?[!-/:-~！-／：-～‘-‟　-。]+ */
static size_t m_ds_punct(const struct cpbuf *b, size_t pos, size_t end)
{
	size_t p = pos + (S(pos) && pos + 1 < end && ds_punct(b->cp[pos + 1]));
	size_t r = p;
	while (r < end && ds_punct(b->cp[r]))
		r++;
	return r > p ? r - pos : 0;
}

/* \s+$ */
static size_t m_trailing_spaces(const struct cpbuf *b, size_t pos, size_t end)
{
	size_t r = run(b, pos, end, UNICODE_SPACE);
	return r == end ? r - pos : 0;
}

/* [一-龥ࠀ-一가-퟿]+ */
static size_t m_ds_cjk(const struct cpbuf *b, size_t pos, size_t end)
{
	size_t p = pos;
	while (p < end && ds_cjk(b->cp[p]))
		p++;
	return p - pos;
}

#define MAX_STAGES 6

static const matcher stages[PRETOK_COUNT][MAX_STAGES] = {
	[PRETOK_GPT2] = {m_gpt2},
	[PRETOK_DEFAULT] = {m_default_punct, m_gpt2, m_numbers, m_ascii_digits3},
	[PRETOK_LLAMA3] = {m_llama3},
	[PRETOK_QWEN2] = {m_qwen2},
	[PRETOK_SMOLLM] = {m_one_number, m_gpt2},
	[PRETOK_DEEPSEEK_LLM] = {m_newline, m_ds_letters, m_ds_punct, m_trailing_spaces, m_ds_cjk,
	                         m_numbers},
};

static const struct {
	const char *name;
	enum pretok_kind kind;
} names[] = {
	{"gpt-2", PRETOK_GPT2},         {"gpt2", PRETOK_GPT2},
	{"phi-2", PRETOK_GPT2},         {"default", PRETOK_DEFAULT},
	{"llama-bpe", PRETOK_LLAMA3},   {"llama3", PRETOK_LLAMA3},
	{"llama-v3", PRETOK_LLAMA3},    {"falcon3", PRETOK_LLAMA3},
	{"qwen2", PRETOK_QWEN2},        {"deepseek-r1-qwen", PRETOK_QWEN2},
	{"smollm", PRETOK_SMOLLM},      {"starcoder", PRETOK_SMOLLM},
	{"refact", PRETOK_SMOLLM},      {"codeshell", PRETOK_SMOLLM},
	{"deepseek-llm", PRETOK_DEEPSEEK_LLM},
};

enum rterror pretok_from_name(const char *name, size_t len, enum pretok_kind *ret, char **reterr)
{
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0) {
			*ret = names[i].kind;
			return RTERROR_OK;
		}
	}
	int shown = len > 64 ? 64 : (int)len;
	return rterror_set(reterr, RTERROR_UNSUPPORTED,
	                   "unsupported pre-tokenizer \"%.*s\" (tokenizer.ggml.pre); known: gpt-2, "
	                   "default, llama-bpe, llama3, qwen2, smollm, starcoder, deepseek-llm",
	                   shown, name);
}

static void cpbuf_free(struct cpbuf *b)
{
	free(b->cp);
	free(b->fl);
	free(b->off);
}

static bool cpbuf_fill(struct cpbuf *b, const char *text, size_t len)
{
	b->cp = malloc((len + 1) * sizeof *b->cp);
	b->fl = malloc(len + 1);
	b->off = malloc((len + 1) * sizeof *b->off);
	if (!b->cp || !b->fl || !b->off)
		return false;
	size_t n = 0, i = 0;
	while (i < len) {
		uint32_t c;
		size_t k = unicode_decode(text + i, len - i, &c);
		b->cp[n] = c;
		b->fl[n] = (uint8_t)unicode_flags(c);
		b->off[n] = (uint32_t)i;
		n++;
		i += k;
	}
	b->off[n] = (uint32_t)len;
	b->n = n;
	return true;
}

/* One isolated split: every piece of in (end indices) is cut into matches and gaps. */
static size_t split_stage(const struct cpbuf *b, matcher m, const uint32_t *in, size_t n_in,
                          uint32_t *out)
{
	size_t n_out = 0, start = 0;
	for (size_t k = 0; k < n_in; k++) {
		size_t end = in[k], pos = start, gap = start;
		while (pos < end) {
			size_t len = m(b, pos, end);
			if (!len) {
				pos++;
				continue;
			}
			if (gap < pos)
				out[n_out++] = (uint32_t)pos;
			pos += len;
			out[n_out++] = (uint32_t)pos;
			gap = pos;
		}
		if (gap < end)
			out[n_out++] = (uint32_t)end;
		start = end;
	}
	return n_out;
}

enum rterror pretok_split(enum pretok_kind kind, const char *text, size_t len,
                          uint32_t **ret_ends, size_t *ret_n, char **reterr)
{
	if ((unsigned)kind >= PRETOK_COUNT || len >= UINT32_MAX)
		return rterror_set(reterr, RTERROR_INVALID, "pre-tokenizer: invalid argument");
	enum rterror err = RTERROR_OK;
	struct cpbuf b = {0};
	uint32_t *a = malloc((len + 1) * sizeof *a), *c = malloc((len + 1) * sizeof *c);
	if (!a || !c || !cpbuf_fill(&b, text, len)) {
		err = rterror_set(reterr, RTERROR_NOMEM, "pre-tokenizer: out of memory");
		goto out;
	}
	size_t n = 0;
	if (b.n > 0)
		a[n++] = (uint32_t)b.n;
	for (int s = 0; s < MAX_STAGES && stages[kind][s]; s++) {
		n = split_stage(&b, stages[kind][s], a, n, c);
		uint32_t *t = a;
		a = c;
		c = t;
	}
	/* Unit indices to byte offsets. */
	for (size_t i = 0; i < n; i++)
		a[i] = b.off[a[i]];
	*ret_ends = a;
	*ret_n = n;
	a = NULL;
out:
	free(a);
	free(c);
	cpbuf_free(&b);
	return err;
}
