/* tokenizer_impl: the inside of struct tokenizer, shared by tokenizer.c (loading,
 * lookup, special tokens, decoding) and the two encoders, tokenizer_spm.c and
 * tokenizer_bpe.c. Not part of the runtime's interface.
 *
 * Invariants once built: every id in [0, n_vocab); text_off/piece_off have
 * n_vocab + 1 entries into arena; the text hash holds every token text (for a
 * text present twice, the later id, as the files' own readers do); merge
 * entries only join ids that exist and produce an id that exists. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/pretok.h"
#include "runtime/rterror.h"
#include "runtime/tokenizer.h"

/* GGUF token types. */
enum {
	TOKTYPE_NORMAL = 1,
	TOKTYPE_UNKNOWN = 2,
	TOKTYPE_CONTROL = 3,
	TOKTYPE_USER_DEFINED = 4,
	TOKTYPE_UNUSED = 5,
	TOKTYPE_BYTE = 6,
};

enum tokenizer_family { TOKENIZER_SPM, TOKENIZER_BPE };

struct tokenizer_merge {
	uint64_t key; /* left id << 32 | right id; 0 with rank -1 when the slot is empty */
	int32_t rank;
	int32_t result;
};

struct tokenizer {
	enum tokenizer_family family;
	enum pretok_kind pretok;
	int32_t n_vocab;
	char *arena;         /* token texts, then decoded pieces */
	uint32_t *text_off;  /* n_vocab + 1 */
	uint32_t *piece_off; /* n_vocab + 1 */
	float *scores;
	uint8_t *types;
	uint8_t *eog;
	int32_t *hash; /* text -> id, open addressing, -1 empty */
	size_t hash_mask;
	struct tokenizer_merge *merges;
	size_t merge_mask;
	int32_t byte_id[256]; /* SentencePiece <0xNN> / byte-level single-byte tokens, -1 none */
	char byte_text[256][3]; /* byte-level BPE: the UTF-8 of each byte's stand-in */
	uint8_t byte_text_len[256];
	int32_t bos, eos, unk, eot, eom;
	bool add_bos, add_space_prefix, ignore_merges;
	/* Tokens matched whole in text (control, unknown, user-defined), sorted by
	 * first byte then longest first; special_first[b]..special_first[b+1]. */
	int32_t *special;
	uint32_t special_first[257];
};

/* A growing list of ids with a hard maximum. */
struct idvec {
	int32_t *v;
	size_t n, cap, max;
};

enum rterror idvec_push(struct idvec *iv, int32_t id, char **reterr)
	__attribute__((warn_unused_result));

/* Lookup of an exact token text; -1 if none. */
int32_t tokenizer_lookup(const struct tokenizer *t, const char *s, size_t len);

/* Encodes one stretch of plain text (no special tokens in it) and appends the
 * ids. space_prefix: the stretch starts a text (SentencePiece only). */
enum rterror tokenizer_spm_encode(const struct tokenizer *t, const char *text, size_t len,
                                  bool space_prefix, struct idvec *out, char **reterr)
	__attribute__((warn_unused_result));
enum rterror tokenizer_bpe_encode(const struct tokenizer *t, const char *text, size_t len,
                                  struct idvec *out, char **reterr)
	__attribute__((warn_unused_result));

/* The (rank, result) of merging left and right; false when they do not merge. */
bool tokenizer_bpe_merge(const struct tokenizer *t, int32_t left, int32_t right, int32_t *rank,
                         int32_t *result);
