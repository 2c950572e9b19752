/* pretok: the pre-tokenizers of byte-level BPE vocabularies.
 *
 * A pre-tokenizer cuts text into pieces that BPE merges never cross. Each one
 * is the published sequence of regular expressions of its tokenizer, written
 * by hand as matchers over code points: every expression in turn splits each
 * current piece into its matches and the gaps between them ("isolated"
 * splitting), so pieces always tile the text and are never empty. A match
 * never looks past the end of the piece it splits. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "runtime/rterror.h"

enum pretok_kind {
	PRETOK_GPT2,        /* "gpt-2": 's|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
	PRETOK_DEFAULT,     /* "default": punctuation runs, then GPT-2, then digit runs, then [0-9]{3} */
	PRETOK_LLAMA3,      /* "llama-bpe"/"llama3": case-insensitive contractions, digits in threes */
	PRETOK_QWEN2,       /* "qwen2": as llama3 with one digit per piece */
	PRETOK_SMOLLM,      /* "smollm"/"starcoder": every digit alone, then GPT-2 */
	PRETOK_DEEPSEEK_LLM, /* "deepseek-llm": newlines, cased-letter runs, ASCII/CJK punctuation, CJK runs, digits */
	PRETOK_COUNT
};

/* The pre-tokenizer named name[0..len) (tokenizer.ggml.pre). RTERROR_UNSUPPORTED
 * with the name in the message when it is not one of the above or an alias. */
enum rterror pretok_from_name(const char *name, size_t len, enum pretok_kind *ret, char **reterr)
	__attribute__((warn_unused_result));

/* Splits text[0..len) (len < 4 GiB). On success *ret_ends is malloc'd (free with
 * free()) and holds *ret_n byte offsets: piece i is [ends[i-1], ends[i]) with
 * ends[-1] = 0, and ends[*ret_n - 1] == len. Invalid UTF-8 bytes are pieces'
 * members like any other character that is not a letter, digit or space. */
enum rterror pretok_split(enum pretok_kind kind, const char *text, size_t len,
                          uint32_t **ret_ends, size_t *ret_n, char **reterr)
	__attribute__((warn_unused_result));
