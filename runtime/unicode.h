/* unicode: the little Unicode the tokenizers need, over UTF-8 text.
 *
 * Text is never rejected for being invalid UTF-8: a byte that does not start a
 * well-formed sequence decodes as one "invalid" unit of length 1 whose code
 * point is UNICODE_INVALID, which belongs to no category (not a letter, digit
 * or space). Every decoded unit remembers its byte length so that callers can
 * cut the original bytes, not a re-encoding, at unit boundaries. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Marks a byte that is not part of a well-formed UTF-8 sequence. */
#define UNICODE_INVALID 0x110000u

/* Category flags of a code point (several may be set). */
enum {
	UNICODE_LETTER = 1u << 0,  /* \p{L} */
	UNICODE_NUMBER = 1u << 1,  /* \p{N} */
	UNICODE_SPACE = 1u << 2,   /* \s: the White_Space property */
	UNICODE_PUNCT = 1u << 3,   /* \p{P} */
	UNICODE_CASED = 1u << 4,   /* a letter with case: Lu, Ll or Lt */
};

/* Decodes one unit at s[0..len) (len >= 1); returns its byte length (1..4) and
 * stores the code point, or UNICODE_INVALID, in *cp. */
size_t unicode_decode(const char *s, size_t len, uint32_t *cp);
/* Encodes cp (< 0x110000) as UTF-8 into out (room for 4); returns the length. */
size_t unicode_encode(uint32_t cp, char *out);
/* The category flags of cp (0 for UNICODE_INVALID). */
unsigned unicode_flags(uint32_t cp);

/* The byte-level BPE alphabet: every byte value is shown as a printable code
 * point (printable ASCII and most of Latin-1 stand for themselves, the rest
 * are moved to U+0100 onwards). */
uint32_t unicode_byte_to_cp(uint8_t b);
/* The inverse; -1 when cp stands for no byte. */
int unicode_cp_to_byte(uint32_t cp);
