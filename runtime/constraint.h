/* constraint: a pushdown automaton over bytes that accepts exactly the compact
 * JSON texts valid for a compiled schema, and the token masks it induces.
 *
 * Whitespace policy: none. The automaton accepts canonical compact JSON only
 * (no spaces, object keys in schema order, optional keys may be left out), so a
 * model cannot wander in whitespace. Numbers have no exponent and at most
 * CONSTRAINT_MAX_INT_DIGITS / CONSTRAINT_MAX_FRAC_DIGITS digits; strings are
 * valid UTF-8 with JSON escapes (no surrogate \u escapes, no raw control
 * characters), their length counted in code points. Nesting never goes past
 * CONSTRAINT_MAX_FRAMES, and an optional value is only begun when a smallest
 * instance of it still fits, so every state the automaton reaches can still be
 * completed: the automaton has no dead ends.
 *
 * A struct constraint_vocab is a byte trie over a vocabulary's token pieces,
 * laid out in preorder so that computing a mask is one forward scan that skips
 * a subtree at its first rejected byte. A struct constraint pairs a schema with
 * a vocabulary and caches masks per automaton state (counters that are far
 * from any limit are ignored in the cache key). A cursor is one generation's
 * position in the automaton. None of these are safe to share between threads
 * while in use; a cursor borrows its constraint, which borrows its schema and
 * vocabulary. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/jsonschema.h"
#include "runtime/rterror.h"

#define CONSTRAINT_MAX_FRAMES (JSONSCHEMA_MAX_DEPTH + 1)
#define CONSTRAINT_MAX_INT_DIGITS 15
#define CONSTRAINT_MAX_FRAC_DIGITS 12
#define CONSTRAINT_MAX_PIECE 256  /* longer token pieces are never allowed */
#define CONSTRAINT_MAX_FORCED 512 /* bytes of forced text examined at once */
#define CONSTRAINT_CACHE_SLOTS 64 /* masks remembered per constraint */

enum {
	CONSTRAINT_TOK_NORMAL = 0,
	CONSTRAINT_TOK_EOG = 1,   /* ends generation: allowed exactly when the value is complete */
	CONSTRAINT_TOK_NEVER = 2, /* control tokens and the like: never allowed */
};

struct constraint_piece {
	const char *ptr; /* the exact bytes the token decodes to (borrowed) */
	size_t len;
	uint8_t kind; /* CONSTRAINT_TOK_* */
};

struct constraint_vocab;
struct constraint;
struct constraint_cursor;

/* Builds the trie over pieces[0..n) (token id = index). The pieces are copied.
 * *ret is owned by the caller; free with constraint_vocab_free(). */
enum rterror constraint_vocab_new(const struct constraint_piece *pieces, int32_t n, struct constraint_vocab **ret,
                                  char **reterr) __attribute__((warn_unused_result));
void constraint_vocab_free(struct constraint_vocab *v);
int32_t constraint_vocab_size(const struct constraint_vocab *v);
/* uint32_t words in a mask for this vocabulary (bit i of word i/32 = token i). */
size_t constraint_mask_words(const struct constraint_vocab *v);

/* Pairs s with v (either borrowed, both must outlive the result; v may be NULL for
 * byte-level use only). Free with constraint_free(). */
enum rterror constraint_new(const struct jsonschema *s, const struct constraint_vocab *v, struct constraint **ret,
                            char **reterr) __attribute__((warn_unused_result));
void constraint_free(struct constraint *c);

/* A cursor at the start of a value. Free with constraint_cursor_free(). */
enum rterror constraint_cursor_new(struct constraint *c, struct constraint_cursor **ret, char **reterr)
    __attribute__((warn_unused_result));
void constraint_cursor_free(struct constraint_cursor *cur);
void constraint_cursor_reset(struct constraint_cursor *cur);

/* Feeds bytes; false (and the cursor unchanged) if any byte is rejected. */
bool constraint_cursor_feed(struct constraint_cursor *cur, const char *bytes, size_t len);
/* Whether the text fed so far is a complete value (end of generation allowed). */
bool constraint_cursor_complete(const struct constraint_cursor *cur);

/* Fills mask (constraint_mask_words() words) with the tokens allowed next: a
 * token is allowed when all its bytes are accepted in sequence; EOG tokens when
 * the value is complete. Needs a vocabulary. The result may come from the cache. */
void constraint_cursor_mask(struct constraint_cursor *cur, uint32_t *mask);
/* Feeds token id's piece (EOG tokens: only when complete, changing nothing).
 * False, cursor unchanged, if the token is not allowed. */
bool constraint_cursor_accept(struct constraint_cursor *cur, int32_t id);

/* When the automaton allows exactly one next byte, the bytes it forces, taken
 * as the longest token whose piece is a prefix of them: true and *ret_id set.
 * False when the next byte is not forced or no token starts the forced text. */
bool constraint_cursor_forced(struct constraint_cursor *cur, int32_t *ret_id);

/* A shortest-effort completion of the value from the cursor's state: malloc'd
 * bytes in *ret (free with free()), *ret_len of them; the cursor is unchanged.
 * Used to close a value when a token or time limit stops generation early. */
enum rterror constraint_cursor_completion(const struct constraint_cursor *cur, char **ret, size_t *ret_len,
                                          char **reterr) __attribute__((warn_unused_result));
