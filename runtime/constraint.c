/* constraint: the byte automaton for schema-constrained JSON and its token masks.
 *
 * The automaton state is a stack of frames, one per value being written (the
 * outermost at index 0). A frame is either an unstarted value (which may be a
 * union, resolved by the first byte), a string, a number, a literal set (enum,
 * const, true/false, null) matched as text, an object or an array. Numbers and
 * numeric literals have no terminator: a byte they cannot take ends them and
 * is handed to the enclosing frame. States are small and copied by value; a
 * mask walk keeps one state per trie depth.
 *
 * Invariant (see constraint.h): a frame at stack index d for node N has
 * d + N.frames_needed <= CONSTRAINT_MAX_FRAMES. */
#include "runtime/constraint.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum fkind { F_VALUE, F_STRING, F_NUMBER, F_LIT, F_OBJECT, F_ARRAY };
enum { S_NORMAL, S_ESC, S_U, S_CONT };
enum { N_START, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC };
enum { O_OPEN, O_KEY, O_COLON, O_VALUE, O_AFTER, O_COMMA };
enum { A_OPEN, A_VALUE, A_AFTER, A_COMMA };

struct cframe {
	uint32_t node;
	uint32_t count; /* string: code points; array: items; number: digits; object: next prop */
	uint32_t j;     /* literal or key: smallest candidate consistent so far */
	uint32_t off;   /* literal or key: bytes matched */
	uint8_t kind, phase;
	uint8_t b1, b2, b3; /* string: \u digits seen / continuation bytes left; next byte range */
	uint8_t pad[3];
};

struct cstate {
	uint32_t depth;
	struct cframe f[CONSTRAINT_MAX_FRAMES];
};

struct constraint_vocab {
	int32_t n_vocab;
	uint32_t n_nodes;
	uint32_t max_len;
	uint8_t *byte;       /* per trie node (preorder) */
	uint16_t *depth;     /* 1 for the root's children */
	uint32_t *end;       /* one past the node's subtree */
	uint32_t *tok_start; /* tokens ending at node i: toks[tok_start[i] .. tok_start[i + 1]) */
	int32_t *toks;
	int32_t *eog;
	uint32_t n_eog;
	char *bytes; /* copies of the pieces */
	uint32_t *piece_off;
	uint32_t *piece_len;
	uint8_t *kind;
};

struct cache_slot {
	uint64_t hash;
	uint64_t stamp;
	uint32_t key_len;
	uint8_t *key;
	uint32_t *mask;
};

struct constraint {
	const struct jsonschema *s;
	const struct constraint_vocab *v;
	struct cache_slot slots[CONSTRAINT_CACHE_SLOTS];
	uint64_t clock;
};

struct constraint_cursor {
	struct constraint *c;
	struct cstate st;
	struct cstate *walk; /* CONSTRAINT_MAX_PIECE + 1 states for mask walks */
};

/* ---- the automaton ---- */

static const struct jsonschema_lit bool_lits[] = {{"false", 5}, {"true", 4}};
static const struct jsonschema_lit null_lits[] = {{"null", 4}};

static const struct jsonschema_lit *lits_of(const struct jsonschema_node *n, uint32_t *count)
{
	if (n->kind == JSONSCHEMA_BOOLEAN) {
		*count = 2;
		return bool_lits;
	}
	if (n->kind == JSONSCHEMA_NULL) {
		*count = 1;
		return null_lits;
	}
	*count = n->n_lits;
	return n->lits;
}

static bool fits(const struct jsonschema *s, uint32_t node, uint32_t index)
{
	return index + s->nodes[node].frames_needed <= CONSTRAINT_MAX_FRAMES;
}

static bool step(const struct jsonschema *s, struct cstate *st, uint8_t b);

/* Ends the top frame: its parent moves past the value. */
static void pop(struct cstate *st)
{
	assert(st->depth > 0);
	st->depth--;
	if (st->depth == 0)
		return;
	struct cframe *p = &st->f[st->depth - 1];
	if (p->kind == F_OBJECT)
		p->phase = O_AFTER;
	else if (p->kind == F_ARRAY) {
		p->phase = A_AFTER;
		p->count++;
	}
}

static void push_value(struct cstate *st, uint32_t node)
{
	assert(st->depth < CONSTRAINT_MAX_FRAMES);
	struct cframe *f = &st->f[st->depth++];
	memset(f, 0, sizeof(*f));
	f->node = node;
	f->kind = F_VALUE;
}

/* Whether some candidate consistent with the literal prefix has exactly off bytes
 * (accept) or more (more). */
static void lit_ends(const struct jsonschema_lit *l, uint32_t n, const struct cframe *f, bool *accept, bool *more)
{
	*accept = *more = false;
	const struct jsonschema_lit *cur = &l[f->j];
	for (uint32_t k = f->j; k < n; k++) {
		if (l[k].len < f->off || memcmp(l[k].text, cur->text, f->off) != 0)
			continue;
		if (l[k].len == f->off)
			*accept = true;
		else
			*more = true;
	}
}

static bool step_lit(const struct jsonschema *s, struct cstate *st, uint8_t b)
{
	struct cframe *f = &st->f[st->depth - 1];
	uint32_t n;
	const struct jsonschema_lit *l = lits_of(&s->nodes[f->node], &n);
	const struct jsonschema_lit *cur = &l[f->j];
	for (uint32_t k = f->j; k < n; k++) {
		if (l[k].len <= f->off || (uint8_t)l[k].text[f->off] != b || memcmp(l[k].text, cur->text, f->off) != 0)
			continue;
		f->j = k;
		f->off++;
		bool accept, more;
		lit_ends(l, n, f, &accept, &more);
		if (!more)
			pop(st);
		return true;
	}
	bool accept, more;
	lit_ends(l, n, f, &accept, &more);
	if (!accept || st->depth == 1)
		return false;
	pop(st);
	return step(s, st, b);
}

static bool step_string(const struct jsonschema_node *n, struct cstate *st, uint8_t b)
{
	struct cframe *f = &st->f[st->depth - 1];
	switch (f->phase) {
	case S_NORMAL:
		if (b == '"') {
			if (f->count < n->min_len)
				return false;
			pop(st);
			return true;
		}
		if (b < 0x20 || f->count >= n->max_len)
			return false;
		if (b == '\\') {
			f->phase = S_ESC;
		} else if (b >= 0x80) {
			/* lead bytes and the range their first continuation byte must lie in */
			if (b >= 0xC2 && b <= 0xDF) {
				f->b2 = 1;
				f->b1 = 0x80, f->b3 = 0xBF;
			} else if (b >= 0xE0 && b <= 0xEF) {
				f->b2 = 2;
				f->b1 = b == 0xE0 ? 0xA0 : 0x80;
				f->b3 = b == 0xED ? 0x9F : 0xBF;
			} else if (b >= 0xF0 && b <= 0xF4) {
				f->b2 = 3;
				f->b1 = b == 0xF0 ? 0x90 : 0x80;
				f->b3 = b == 0xF4 ? 0x8F : 0xBF;
			} else {
				return false;
			}
			f->phase = S_CONT;
		}
		f->count++;
		return true;
	case S_ESC:
		if (b == 'u') {
			f->phase = S_U;
			f->b1 = 0;
			return true;
		}
		if (!strchr("\"\\/bfnrt", b) || b == 0)
			return false;
		f->phase = S_NORMAL;
		return true;
	case S_U: {
		bool hex = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
		if (!hex)
			return false;
		/* no surrogates: after a first digit d/D the second must be 0-7 */
		if (f->b1 == 1 && f->b3 && !(b >= '0' && b <= '7'))
			return false;
		if (f->b1 == 0)
			f->b3 = b == 'd' || b == 'D';
		if (++f->b1 == 4)
			f->phase = S_NORMAL;
		return true;
	}
	case S_CONT:
		if (b < f->b1 || b > f->b3)
			return false;
		f->b1 = 0x80, f->b3 = 0xBF;
		if (--f->b2 == 0)
			f->phase = S_NORMAL;
		return true;
	default:
		return false;
	}
}

static bool number_accepts(const struct cframe *f)
{
	return f->phase == N_ZERO || f->phase == N_INT || f->phase == N_FRAC;
}

static bool step_number(const struct jsonschema *s, struct cstate *st, uint8_t b)
{
	struct cframe *f = &st->f[st->depth - 1];
	bool digit = b >= '0' && b <= '9';
	bool is_int = s->nodes[f->node].kind == JSONSCHEMA_INTEGER;
	switch (f->phase) {
	case N_START:
	case N_MINUS:
		if (b == '-' && f->phase == N_START) {
			f->phase = N_MINUS;
			return true;
		}
		if (!digit)
			return false;
		f->phase = b == '0' ? N_ZERO : N_INT;
		f->count = 1;
		return true;
	case N_INT:
		if (digit) {
			if (f->count >= CONSTRAINT_MAX_INT_DIGITS)
				return false;
			f->count++;
			return true;
		}
		__attribute__((fallthrough));
	case N_ZERO:
		if (b == '.' && !is_int) {
			f->phase = N_DOT;
			f->count = 0;
			return true;
		}
		break;
	case N_DOT:
	case N_FRAC:
		if (digit && f->count < CONSTRAINT_MAX_FRAC_DIGITS) {
			f->phase = N_FRAC;
			f->count++;
			return true;
		}
		if (f->phase == N_DOT)
			return false;
		break;
	default:
		return false;
	}
	/* the number has ended; the byte belongs to the enclosing value */
	if (st->depth == 1)
		return false;
	pop(st);
	return step(s, st, b);
}

/* Last property index a key may name from prop index i on: optional ones may be skipped. */
static uint32_t last_candidate(const struct jsonschema_node *n, uint32_t i)
{
	while (i < n->n_props && !n->props[i].required)
		i++;
	return i < n->n_props ? i : n->n_props - 1;
}

static bool required_left(const struct jsonschema_node *n, uint32_t i)
{
	for (; i < n->n_props; i++)
		if (n->props[i].required)
			return true;
	return false;
}

static bool step_key(const struct jsonschema *s, struct cstate *st, uint8_t b)
{
	struct cframe *f = &st->f[st->depth - 1];
	const struct jsonschema_node *n = &s->nodes[f->node];
	if (n->n_props == 0)
		return false;
	uint32_t last = last_candidate(n, f->count);
	const struct jsonschema_lit *cur = f->phase == O_KEY ? &n->props[f->j].lit : NULL;
	uint32_t from = f->phase == O_KEY ? f->j : f->count;
	uint32_t off = f->phase == O_KEY ? f->off : 0;
	for (uint32_t k = from; k <= last && k < n->n_props; k++) {
		const struct jsonschema_lit *l = &n->props[k].lit;
		if (l->len <= off || (uint8_t)l->text[off] != b || !fits(s, n->props[k].node, st->depth))
			continue;
		if (cur && memcmp(l->text, cur->text, off) != 0)
			continue;
		f->phase = O_KEY;
		f->j = k;
		f->off = off + 1;
		if (f->off == l->len) {
			f->phase = O_COLON;
			f->count = k + 1;
		}
		return true;
	}
	return false;
}

static bool step_object(const struct jsonschema *s, struct cstate *st, uint8_t b)
{
	struct cframe *f = &st->f[st->depth - 1];
	const struct jsonschema_node *n = &s->nodes[f->node];
	switch (f->phase) {
	case O_OPEN:
	case O_AFTER:
		if (b == '}') {
			if (required_left(n, f->count))
				return false;
			pop(st);
			return true;
		}
		if (f->phase == O_AFTER) {
			if (b != ',' || f->count >= n->n_props)
				return false;
			/* a comma needs a key that can follow */
			struct cstate probe = *st;
			probe.f[probe.depth - 1].phase = O_COMMA;
			if (!step_key(s, &probe, '"'))
				return false;
			f->phase = O_COMMA;
			return true;
		}
		return step_key(s, st, b);
	case O_COMMA:
	case O_KEY:
		return step_key(s, st, b);
	case O_COLON:
		if (b != ':')
			return false;
		f->phase = O_VALUE;
		push_value(st, n->props[f->count - 1].node);
		return true;
	default:
		return false;
	}
}

static bool step_array(const struct jsonschema *s, struct cstate *st, uint8_t b)
{
	struct cframe *f = &st->f[st->depth - 1];
	const struct jsonschema_node *n = &s->nodes[f->node];
	switch (f->phase) {
	case A_OPEN:
	case A_AFTER:
		if (b == ']') {
			if (f->count < n->min_items)
				return false;
			pop(st);
			return true;
		}
		if (f->phase == A_AFTER) {
			if (b != ',' || f->count >= n->max_items || !fits(s, n->items, st->depth))
				return false;
			f->phase = A_COMMA;
			return true;
		}
		__attribute__((fallthrough)); /* the first item */
	case A_COMMA:
		if (f->count >= n->max_items || !fits(s, n->items, st->depth))
			return false;
		f->phase = A_VALUE;
		push_value(st, n->items);
		return step(s, st, b);
	default:
		return false;
	}
}

/* Resolves an unstarted value by its first byte and feeds that byte. */
static bool step_value(const struct jsonschema *s, struct cstate *st, uint8_t b)
{
	struct cframe *f = &st->f[st->depth - 1];
	uint32_t node = f->node;
	const struct jsonschema_node *n = &s->nodes[node];
	if (n->kind == JSONSCHEMA_UNION) {
		uint32_t k = 0;
		while (k < n->n_alts &&
		       !(jsonschema_first_has(&s->nodes[n->alts[k]], b) && fits(s, n->alts[k], st->depth - 1)))
			k++;
		if (k == n->n_alts)
			return false;
		node = n->alts[k];
		n = &s->nodes[node];
	}
	if (!jsonschema_first_has(n, b))
		return false;
	memset(f, 0, sizeof(*f));
	f->node = node;
	switch (n->kind) {
	case JSONSCHEMA_STRING:
		f->kind = F_STRING;
		return true;
	case JSONSCHEMA_OBJECT:
		f->kind = F_OBJECT;
		return true;
	case JSONSCHEMA_ARRAY:
		f->kind = F_ARRAY;
		return true;
	case JSONSCHEMA_NUMBER:
	case JSONSCHEMA_INTEGER:
		f->kind = F_NUMBER;
		return step_number(s, st, b);
	default:
		f->kind = F_LIT;
		return step_lit(s, st, b);
	}
}

static bool step(const struct jsonschema *s, struct cstate *st, uint8_t b)
{
	if (st->depth == 0)
		return false;
	struct cframe *f = &st->f[st->depth - 1];
	switch (f->kind) {
	case F_VALUE:
		return step_value(s, st, b);
	case F_STRING:
		return step_string(&s->nodes[f->node], st, b);
	case F_NUMBER:
		return step_number(s, st, b);
	case F_LIT:
		return step_lit(s, st, b);
	case F_OBJECT:
		return step_object(s, st, b);
	case F_ARRAY:
		return step_array(s, st, b);
	default:
		return false;
	}
}

static bool frame_can_end(const struct jsonschema *s, const struct cframe *f)
{
	if (f->kind == F_NUMBER)
		return number_accepts(f);
	if (f->kind == F_LIT) {
		uint32_t n;
		const struct jsonschema_lit *l = lits_of(&s->nodes[f->node], &n);
		bool accept, more;
		lit_ends(l, n, f, &accept, &more);
		return accept;
	}
	return false;
}

static bool state_complete(const struct jsonschema *s, const struct cstate *st)
{
	return st->depth == 0 || (st->depth == 1 && frame_can_end(s, &st->f[0]));
}

static void state_copy(struct cstate *dst, const struct cstate *src)
{
	dst->depth = src->depth;
	memcpy(dst->f, src->f, src->depth * sizeof(src->f[0]));
}

static void state_init(const struct jsonschema *s, struct cstate *st)
{
	st->depth = 0;
	push_value(st, s->root);
}

/* ---- vocabulary trie ---- */

struct sort_item {
	const uint8_t *p;
	uint32_t len;
	int32_t id;
};

static int cmp_item(const void *a, const void *b)
{
	const struct sort_item *x = a, *y = b;
	uint32_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->p, y->p, n);
	if (c)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

void constraint_vocab_free(struct constraint_vocab *v)
{
	if (!v)
		return;
	free(v->byte);
	free(v->depth);
	free(v->end);
	free(v->tok_start);
	free(v->toks);
	free(v->eog);
	free(v->bytes);
	free(v->piece_off);
	free(v->piece_len);
	free(v->kind);
	free(v);
}

int32_t constraint_vocab_size(const struct constraint_vocab *v)
{
	return v->n_vocab;
}

size_t constraint_mask_words(const struct constraint_vocab *v)
{
	return ((size_t)v->n_vocab + 31) / 32;
}

/* Lays the sorted pieces out as a preorder trie; tnode is scratch for n entries. */
static void build_trie(struct constraint_vocab *v, const struct sort_item *items, uint32_t n, uint32_t *tnode)
{
	uint32_t path[CONSTRAINT_MAX_PIECE + 1];
	uint32_t plen = 0;
	const struct sort_item *prev = NULL;
	for (uint32_t t = 0; t < n; t++) {
		const struct sort_item *it = &items[t];
		uint32_t lcp = 0;
		if (prev)
			while (lcp < plen && lcp < it->len && prev->p[lcp] == it->p[lcp])
				lcp++;
		while (plen > lcp)
			v->end[path[--plen]] = v->n_nodes;
		for (uint32_t k = lcp; k < it->len; k++) {
			uint32_t id = v->n_nodes++;
			v->byte[id] = it->p[k];
			v->depth[id] = (uint16_t)(k + 1);
			path[plen++] = id;
		}
		/* sorted order: a piece no longer than the common prefix equals the previous one */
		tnode[t] = path[it->len - 1];
		v->toks[t] = it->id;
		prev = it;
	}
	while (plen > 0)
		v->end[path[--plen]] = v->n_nodes;
	/* token nodes are non-decreasing in t, which makes a compressed row index */
	uint32_t t = 0;
	for (uint32_t i = 0; i <= v->n_nodes; i++) {
		while (t < n && tnode[t] < i)
			t++;
		v->tok_start[i] = t;
	}
}

enum rterror constraint_vocab_new(const struct constraint_piece *pieces, int32_t n, struct constraint_vocab **ret,
                                  char **reterr)
{
	if (!pieces || n <= 0 || n > (1 << 24))
		return rterror_set(reterr, RTERROR_INVALID, "constraint_vocab_new: bad vocabulary size");
	struct constraint_vocab *v = calloc(1, sizeof(*v));
	struct sort_item *items = calloc((size_t)n, sizeof(*items));
	uint32_t *tnode = calloc((size_t)n, sizeof(*tnode));
	enum rterror e = RTERROR_OK;
	size_t total = 0;
	if (!v || !items || !tnode)
		goto nomem;
	v->n_vocab = n;
	for (int32_t i = 0; i < n; i++)
		total += pieces[i].len <= CONSTRAINT_MAX_PIECE ? pieces[i].len : 0;
	v->bytes = malloc(total + 1);
	v->piece_off = calloc((size_t)n, sizeof(uint32_t));
	v->piece_len = calloc((size_t)n, sizeof(uint32_t));
	v->kind = calloc((size_t)n, 1);
	v->eog = calloc((size_t)n, sizeof(int32_t));
	v->byte = malloc(total + 1);
	v->depth = malloc((total + 1) * sizeof(uint16_t));
	v->end = malloc((total + 1) * sizeof(uint32_t));
	v->tok_start = malloc((total + 2) * sizeof(uint32_t));
	v->toks = malloc((size_t)n * sizeof(int32_t));
	if (!v->bytes || !v->piece_off || !v->piece_len || !v->kind || !v->eog || !v->byte || !v->depth || !v->end ||
	    !v->tok_start || !v->toks)
		goto nomem;
	uint32_t n_items = 0, off = 0;
	for (int32_t i = 0; i < n; i++) {
		const struct constraint_piece *p = &pieces[i];
		bool too_long = p->len > CONSTRAINT_MAX_PIECE || (p->len && !p->ptr);
		v->kind[i] = too_long ? CONSTRAINT_TOK_NEVER : p->kind;
		if (p->kind == CONSTRAINT_TOK_EOG) {
			v->eog[v->n_eog++] = i;
			continue;
		}
		if (too_long)
			continue;
		memcpy(v->bytes + off, p->ptr, p->len);
		v->piece_off[i] = off;
		v->piece_len[i] = (uint32_t)p->len;
		off += (uint32_t)p->len;
		if (p->kind != CONSTRAINT_TOK_NORMAL || p->len == 0)
			continue;
		items[n_items++] = (struct sort_item){(const uint8_t *)v->bytes + v->piece_off[i], (uint32_t)p->len, i};
		if (p->len > v->max_len)
			v->max_len = (uint32_t)p->len;
	}
	qsort(items, n_items, sizeof(*items), cmp_item);
	build_trie(v, items, n_items, tnode);
	goto out;
nomem:
	e = rterror_set(reterr, RTERROR_NOMEM, "out of memory building the token trie");
out:
	free(items);
	free(tnode);
	if (e) {
		constraint_vocab_free(v);
		return e;
	}
	*ret = v;
	return RTERROR_OK;
}

/* ---- constraint, cache and cursor ---- */

enum rterror constraint_new(const struct jsonschema *s, const struct constraint_vocab *v, struct constraint **ret,
                            char **reterr)
{
	if (!s || !ret)
		return rterror_set(reterr, RTERROR_INVALID, "constraint_new: NULL argument");
	struct constraint *c = calloc(1, sizeof(*c));
	if (!c)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	c->s = s;
	c->v = v;
	*ret = c;
	return RTERROR_OK;
}

void constraint_free(struct constraint *c)
{
	if (!c)
		return;
	for (int i = 0; i < CONSTRAINT_CACHE_SLOTS; i++) {
		free(c->slots[i].key);
		free(c->slots[i].mask);
	}
	free(c);
}

enum rterror constraint_cursor_new(struct constraint *c, struct constraint_cursor **ret, char **reterr)
{
	if (!c || !ret)
		return rterror_set(reterr, RTERROR_INVALID, "constraint_cursor_new: NULL argument");
	struct constraint_cursor *cur = calloc(1, sizeof(*cur));
	if (cur && c->v)
		cur->walk = malloc((CONSTRAINT_MAX_PIECE + 1) * sizeof(struct cstate));
	if (!cur || (c->v && !cur->walk)) {
		free(cur);
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	}
	cur->c = c;
	state_init(c->s, &cur->st);
	*ret = cur;
	return RTERROR_OK;
}

void constraint_cursor_free(struct constraint_cursor *cur)
{
	if (!cur)
		return;
	free(cur->walk);
	free(cur);
}

void constraint_cursor_reset(struct constraint_cursor *cur)
{
	state_init(cur->c->s, &cur->st);
}

bool constraint_cursor_feed(struct constraint_cursor *cur, const char *bytes, size_t len)
{
	struct cstate st;
	state_copy(&st, &cur->st);
	for (size_t i = 0; i < len; i++)
		if (!step(cur->c->s, &st, (uint8_t)bytes[i]))
			return false;
	state_copy(&cur->st, &st);
	return true;
}

bool constraint_cursor_complete(const struct constraint_cursor *cur)
{
	return state_complete(cur->c->s, &cur->st);
}

/* The cache key: the state with counters that are far from every limit made
 * equal, since no single token can reach a limit from there. */
static uint32_t state_key(const struct constraint *c, const struct cstate *st, uint8_t *key)
{
	uint32_t far = c->v->max_len + 1;
	for (uint32_t d = 0; d < st->depth; d++) {
		struct cframe f = st->f[d];
		const struct jsonschema_node *n = &c->s->nodes[f.node];
		if (f.kind == F_STRING && f.count >= n->min_len && n->max_len - f.count > far)
			f.count = UINT32_MAX;
		if (f.kind == F_STRING && f.phase == S_NORMAL)
			f.b1 = f.b2 = f.b3 = 0; /* left over from the last character */
		if (f.kind == F_ARRAY && f.count >= n->min_items && n->max_items - f.count > far)
			f.count = UINT32_MAX;
		memcpy(key + d * sizeof(f), &f, sizeof(f));
	}
	return st->depth * (uint32_t)sizeof(struct cframe);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void compute_mask(struct constraint_cursor *cur, uint32_t *mask)
{
	const struct constraint_vocab *v = cur->c->v;
	const struct jsonschema *s = cur->c->s;
	memset(mask, 0, constraint_mask_words(v) * sizeof(uint32_t));
	struct cstate *walk = cur->walk;
	state_copy(&walk[0], &cur->st);
	for (uint32_t i = 0; i < v->n_nodes;) {
		struct cstate *st = &walk[v->depth[i]];
		state_copy(st, &walk[v->depth[i] - 1]);
		if (!step(s, st, v->byte[i])) {
			i = v->end[i];
			continue;
		}
		for (uint32_t t = v->tok_start[i]; t < v->tok_start[i + 1]; t++)
			mask[v->toks[t] >> 5] |= 1u << (v->toks[t] & 31);
		i++;
	}
	if (state_complete(s, &cur->st))
		for (uint32_t k = 0; k < v->n_eog; k++)
			mask[v->eog[k] >> 5] |= 1u << (v->eog[k] & 31);
}

void constraint_cursor_mask(struct constraint_cursor *cur, uint32_t *mask)
{
	struct constraint *c = cur->c;
	assert(c->v);
	size_t words = constraint_mask_words(c->v);
	uint8_t key[sizeof(struct cstate)];
	uint32_t key_len = state_key(c, &cur->st, key);
	uint64_t h = fnv1a(key, key_len);
	struct cache_slot *victim = &c->slots[0];
	for (int i = 0; i < CONSTRAINT_CACHE_SLOTS; i++) {
		struct cache_slot *sl = &c->slots[i];
		if (sl->mask && sl->hash == h && sl->key_len == key_len && memcmp(sl->key, key, key_len) == 0) {
			sl->stamp = ++c->clock;
			memcpy(mask, sl->mask, words * sizeof(uint32_t));
			return;
		}
		if (sl->stamp < victim->stamp)
			victim = sl;
	}
	compute_mask(cur, mask);
	uint8_t *k = realloc(victim->key, key_len ? key_len : 1);
	if (k)
		victim->key = k;
	if (!victim->mask)
		victim->mask = malloc(words * sizeof(uint32_t));
	if (!k || !victim->mask)
		return; /* not cached; the mask itself is complete */
	memcpy(victim->key, key, key_len);
	memcpy(victim->mask, mask, words * sizeof(uint32_t));
	victim->key_len = key_len;
	victim->hash = h;
	victim->stamp = ++c->clock;
}

bool constraint_cursor_accept(struct constraint_cursor *cur, int32_t id)
{
	const struct constraint_vocab *v = cur->c->v;
	if (!v || id < 0 || id >= v->n_vocab || v->kind[id] == CONSTRAINT_TOK_NEVER)
		return false;
	if (v->kind[id] == CONSTRAINT_TOK_EOG)
		return constraint_cursor_complete(cur);
	if (v->piece_len[id] == 0)
		return false;
	return constraint_cursor_feed(cur, v->bytes + v->piece_off[id], v->piece_len[id]);
}

/* The only byte st accepts next, or -1 when none or several are accepted. */
static int only_byte(const struct jsonschema *s, const struct cstate *st)
{
	int found = -1;
	struct cstate tmp;
	for (int b = 0; b < 256; b++) {
		state_copy(&tmp, st);
		if (!step(s, &tmp, (uint8_t)b))
			continue;
		if (found >= 0)
			return -1;
		found = b;
	}
	return found;
}

bool constraint_cursor_forced(struct constraint_cursor *cur, int32_t *ret_id)
{
	const struct jsonschema *s = cur->c->s;
	const struct constraint_vocab *v = cur->c->v;
	if (!v)
		return false;
	uint8_t buf[CONSTRAINT_MAX_FORCED];
	size_t n = 0;
	struct cstate st;
	state_copy(&st, &cur->st);
	while (n < sizeof(buf) && !state_complete(s, &st)) {
		int b = only_byte(s, &st);
		if (b < 0)
			break;
		buf[n++] = (uint8_t)b;
		step(s, &st, (uint8_t)b);
	}
	if (n == 0) {
		if (cur->st.depth == 0 && v->n_eog > 0) {
			*ret_id = v->eog[0];
			return true;
		}
		return false;
	}
	int32_t best = -1;
	uint32_t i = 0, limit = v->n_nodes;
	for (size_t k = 0; k < n; k++) {
		while (i < limit && v->byte[i] != buf[k])
			i = v->end[i];
		if (i >= limit)
			break;
		if (v->tok_start[i] < v->tok_start[i + 1])
			best = v->toks[v->tok_start[i]];
		limit = v->end[i];
		i++;
	}
	if (best < 0)
		return false;
	*ret_id = best;
	return true;
}

static int rank_of(enum jsonschema_kind k)
{
	static const int rank[JSONSCHEMA_KIND_COUNT] = {
	    [JSONSCHEMA_NUMBER] = 0,  [JSONSCHEMA_INTEGER] = 0, [JSONSCHEMA_NULL] = 1,
	    [JSONSCHEMA_BOOLEAN] = 2, [JSONSCHEMA_STRING] = 3,  [JSONSCHEMA_LITERALS] = 4,
	    [JSONSCHEMA_ARRAY] = 5,   [JSONSCHEMA_OBJECT] = 6,  [JSONSCHEMA_UNION] = 7,
	};
	return rank[k];
}

/* The first byte of a small instance of node placed at stack index index. */
static int value_first(const struct jsonschema *s, uint32_t node, uint32_t index)
{
	const struct jsonschema_node *n = &s->nodes[node];
	if (n->kind == JSONSCHEMA_UNION) {
		int best = -1;
		for (uint32_t k = 0; k < n->n_alts; k++)
			if (fits(s, n->alts[k], index) &&
			    (best < 0 || rank_of(s->nodes[n->alts[k]].kind) < rank_of(s->nodes[n->alts[best]].kind)))
				best = (int)k;
		if (best < 0)
			return -1;
		n = &s->nodes[n->alts[best]];
	}
	switch (n->kind) {
	case JSONSCHEMA_STRING:
		return '"';
	case JSONSCHEMA_NUMBER:
	case JSONSCHEMA_INTEGER:
		return '0';
	case JSONSCHEMA_BOOLEAN:
		return 't';
	case JSONSCHEMA_NULL:
		return 'n';
	case JSONSCHEMA_OBJECT:
		return '{';
	case JSONSCHEMA_ARRAY:
		return '[';
	case JSONSCHEMA_LITERALS:
		return (uint8_t)n->lits[0].text[0];
	default:
		return -1;
	}
}

/* The byte that leads toward completion from st; -2 means "end the top value here". */
static int pref_byte(const struct jsonschema *s, const struct cstate *st)
{
	const struct cframe *f = &st->f[st->depth - 1];
	const struct jsonschema_node *n = &s->nodes[f->node];
	uint32_t nl;
	const struct jsonschema_lit *l;
	switch (f->kind) {
	case F_VALUE:
		return value_first(s, f->node, st->depth - 1);
	case F_STRING:
		if (f->phase == S_NORMAL)
			return f->count < n->min_len ? 'a' : '"';
		return f->phase == S_ESC ? 'n' : f->phase == S_U ? '0' : f->b1;
	case F_NUMBER:
		return number_accepts(f) ? -2 : '0';
	case F_LIT:
		if (frame_can_end(s, f))
			return -2;
		l = lits_of(n, &nl);
		return (uint8_t)l[f->j].text[f->off];
	case F_OBJECT:
		switch (f->phase) {
		case O_OPEN:
			return required_left(n, f->count) ? '"' : '}';
		case O_KEY:
			return (uint8_t)n->props[f->j].lit.text[f->off];
		case O_COLON:
			return ':';
		case O_AFTER:
			return required_left(n, f->count) ? ',' : '}';
		default:
			return '"';
		}
	case F_ARRAY:
		if (f->phase == A_COMMA || (f->phase == A_OPEN && f->count < n->min_items))
			return value_first(s, n->items, st->depth);
		if (f->phase == A_AFTER && f->count < n->min_items)
			return ',';
		return ']';
	default:
		return -1;
	}
}

enum rterror constraint_cursor_completion(const struct constraint_cursor *cur, char **ret, size_t *ret_len,
                                          char **reterr)
{
	const struct jsonschema *s = cur->c->s;
	size_t cap = 64, n = 0, max = (size_t)8 << 20;
	char *out = malloc(cap);
	if (!out)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	struct cstate st;
	state_copy(&st, &cur->st);
	while (!state_complete(s, &st)) {
		int b = pref_byte(s, &st);
		if (b == -2) {
			pop(&st);
			continue;
		}
		if (n + 1 >= cap) {
			char *o = n + 1 < max ? realloc(out, cap * 2) : NULL;
			if (!o) {
				free(out);
				return rterror_set(reterr, RTERROR_LIMIT, "completion longer than %zu bytes", max);
			}
			out = o;
			cap *= 2;
		}
		if (b < 0 || !step(s, &st, (uint8_t)b)) {
			free(out);
			return rterror_set(reterr, RTERROR_INVALID, "constraint: no completion (internal error)");
		}
		out[n++] = (char)b;
	}
	out[n] = '\0';
	*ret = out;
	*ret_len = n;
	return RTERROR_OK;
}
