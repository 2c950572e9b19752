/* tokenizer: text <-> token ids for the vocabularies GGUF files carry.
 *
 * Two families are supported, chosen by the file's tokenizer.ggml.model:
 * "llama" (SentencePiece-style: scores, byte fallback, space prefix) and
 * "gpt2" (byte-level BPE: merges, with the pre-tokenizer named by
 * tokenizer.ggml.pre). A struct tokenizer copies everything it needs out of
 * the gguf_file, so it may outlive it, and is read-only after loading: any
 * number of threads may use one at the same time.
 *
 * Ids are int32_t in [0, tokenizer_n_vocab()); -1 means "none". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rterror.h"

struct gguf_file;
struct tokenizer;

/* Built-in limits: vocabularies, token texts and inputs larger than these are
 * refused with RTERROR_LIMIT instead of being processed. */
#define TOKENIZER_MAX_VOCAB 1000000
#define TOKENIZER_MAX_TOKEN_LEN 1024
#define TOKENIZER_MAX_INPUT ((size_t)16 << 20)

/* Builds a tokenizer from f's tokenizer.* metadata. *ret is owned by the caller;
 * free with tokenizer_free(). Errors name the missing or malformed key, or the
 * unsupported tokenizer model or pre-tokenizer. */
enum rterror tokenizer_load(const struct gguf_file *f, struct tokenizer **ret, char **reterr)
	__attribute__((warn_unused_result));
void tokenizer_free(struct tokenizer *t);

/* A vocabulary given directly rather than read from a file (tests, fuzzing,
 * and other containers). Strings are not NUL-terminated. */
struct tokenizer_str {
	const char *ptr;
	size_t len;
};
struct tokenizer_vocab {
	const char *model; /* "llama" (SentencePiece) or "gpt2" (byte-level BPE) */
	const char *pre;   /* pre-tokenizer name for "gpt2"; NULL means "default" */
	size_t n_tokens;
	const struct tokenizer_str *tokens;
	const float *scores;  /* n_tokens, or NULL (all 0) */
	const int32_t *types; /* n_tokens GGUF token types, or NULL (all normal) */
	size_t n_merges;
	const struct tokenizer_str *merges; /* "left right", in priority order */
	/* Special ids; -1 for none, -2 for the model's default. */
	int64_t bos, eos, unk, eot, eom;
	int add_bos, add_space_prefix; /* 0 or 1; -1 for the model's default */
};
/* Builds a tokenizer from v (all borrowed; copied). Same ownership and errors
 * as tokenizer_load(). */
enum rterror tokenizer_new(const struct tokenizer_vocab *v, struct tokenizer **ret, char **reterr)
	__attribute__((warn_unused_result));

int32_t tokenizer_n_vocab(const struct tokenizer *t);
int32_t tokenizer_bos(const struct tokenizer *t); /* -1 if none */
int32_t tokenizer_eos(const struct tokenizer *t); /* -1 if none */
/* Whether the file asks for BOS to be prepended to a prompt. */
bool tokenizer_add_bos(const struct tokenizer *t);
/* Whether id ends generation: eos, eot, and end-of-turn markers such as
 * <|im_end|>, <|eot_id|>, <|endoftext|>. False for ids out of range. */
bool tokenizer_is_eog(const struct tokenizer *t, int32_t id);
/* Whether id is a control/special token that plain text never produces. */
bool tokenizer_is_control(const struct tokenizer *t, int32_t id);

/* The bytes id stands for in decoded text: SentencePiece's U+2581 becomes ' ',
 * <0xNN> byte tokens become that byte, byte-level BPE text is mapped back to
 * raw bytes, control tokens give their text. Not NUL-terminated in general
 * (a byte token may be "\0"); *ret_len gets the length. Borrowed: valid while t
 * lives. NULL with *ret_len 0 for ids out of range. */
const char *tokenizer_piece(const struct tokenizer *t, int32_t id, size_t *ret_len);
/* The vocabulary entry id exactly as stored in the file (borrowed, not
 * NUL-terminated), or NULL for ids out of range. */
const char *tokenizer_text(const struct tokenizer *t, int32_t id, size_t *ret_len);
/* The id of the vocabulary entry whose stored text is exactly text[0..len), -1 if none. */
int32_t tokenizer_find(const struct tokenizer *t, const char *text, size_t len);

/* Tokenizes text[0..len) (UTF-8; invalid sequences are handled, never rejected).
 * add_bos: prepend BOS if the vocabulary has one. parse_special: the text of
 * control (and unknown) tokens is matched whole and becomes that token;
 * otherwise such text is tokenized as plain text. User-defined tokens (words
 * added to a vocabulary) are always matched whole. On success *ret_ids is
 * malloc'd (free with free()) and holds *ret_n ids. RTERROR_LIMIT when more
 * than max_tokens ids would be produced or len exceeds TOKENIZER_MAX_INPUT. */
enum rterror tokenizer_encode(const struct tokenizer *t, const char *text, size_t len,
                              bool add_bos, bool parse_special, size_t max_tokens,
                              int32_t **ret_ids, size_t *ret_n, char **reterr)
	__attribute__((warn_unused_result));

/* One stretch of text for tokenizer_encode_parts(), with its own choice of
 * special-token matching: a prompt's template markers may be matched while
 * the document text inside it is not. */
struct tokenizer_part {
	const char *text;
	size_t len;
	bool parse_special;
};
/* Tokenizes the concatenation of parts[0..n) as one text (adjacent stretches
 * of plain text are tokenized together); otherwise as tokenizer_encode(). */
enum rterror tokenizer_encode_parts(const struct tokenizer *t, const struct tokenizer_part *parts,
                                    size_t n, bool add_bos, size_t max_tokens, int32_t **ret_ids,
                                    size_t *ret_n, char **reterr)
	__attribute__((warn_unused_result));

/* Detokenizes ids[0..n). *ret is malloc'd and NUL-terminated (free with free());
 * *ret_len (if not NULL) gets its length without the NUL. BOS, EOS and control
 * tokens are dropped unless keep_special. For SentencePiece vocabularies with a
 * space prefix, the single space the prefix added before the first piece is
 * removed. RTERROR_INVALID for an id out of range. */
enum rterror tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n,
                              bool keep_special, char **ret, size_t *ret_len, char **reterr)
	__attribute__((warn_unused_result));
