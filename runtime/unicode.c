/* unicode: UTF-8 decoding that never fails, character categories (from GLib's
 * tables), and the byte-level BPE byte alphabet. */
#include "runtime/unicode.h"

#include <glib.h>

size_t unicode_decode(const char *s, size_t len, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned char c = u[0];
	size_t n;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		*cp = UNICODE_INVALID;
		return 1;
	}
	if (len < n) {
		*cp = UNICODE_INVALID;
		return 1;
	}
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80) {
			*cp = UNICODE_INVALID;
			return 1;
		}
		v = (v << 6) | (u[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are not characters. */
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
		*cp = UNICODE_INVALID;
		return 1;
	}
	*cp = v;
	return n;
}

size_t unicode_encode(uint32_t cp, char *out)
{
	unsigned char *o = (unsigned char *)out;
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The White_Space property, which is what regex \s means in the published
 * pre-tokenizer definitions; GLib's isspace differs (it omits U+0085, U+00A0
 * and other no-break spaces). */
static int is_white_space(uint32_t cp)
{
	if (cp >= 0x09 && cp <= 0x0d)
		return 1;
	switch (cp) {
	case 0x20: case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029:
	case 0x202f: case 0x205f: case 0x3000:
		return 1;
	default:
		return cp >= 0x2000 && cp <= 0x200a;
	}
}

unsigned unicode_flags(uint32_t cp)
{
	if (cp >= UNICODE_INVALID)
		return 0;
	unsigned f = is_white_space(cp) ? UNICODE_SPACE : 0;
	switch (g_unichar_type(cp)) {
	case G_UNICODE_UPPERCASE_LETTER:
	case G_UNICODE_LOWERCASE_LETTER:
	case G_UNICODE_TITLECASE_LETTER:
		return f | UNICODE_LETTER | UNICODE_CASED;
	case G_UNICODE_MODIFIER_LETTER:
	case G_UNICODE_OTHER_LETTER:
		return f | UNICODE_LETTER;
	case G_UNICODE_DECIMAL_NUMBER:
	case G_UNICODE_LETTER_NUMBER:
	case G_UNICODE_OTHER_NUMBER:
		return f | UNICODE_NUMBER;
	case G_UNICODE_CONNECT_PUNCTUATION:
	case G_UNICODE_DASH_PUNCTUATION:
	case G_UNICODE_CLOSE_PUNCTUATION:
	case G_UNICODE_FINAL_PUNCTUATION:
	case G_UNICODE_INITIAL_PUNCTUATION:
	case G_UNICODE_OTHER_PUNCTUATION:
	case G_UNICODE_OPEN_PUNCTUATION:
		return f | UNICODE_PUNCT;
	default:
		return f;
	}
}

/* Bytes that are printable in Latin-1 keep their own code point. */
static int byte_is_self(unsigned b)
{
	return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

uint32_t unicode_byte_to_cp(uint8_t b)
{
	if (byte_is_self(b))
		return b;
	/* The others are numbered from U+0100 in byte order. */
	uint32_t n = 0;
	for (unsigned i = 0; i < b; i++)
		n += !byte_is_self(i);
	return 0x100 + n;
}

int unicode_cp_to_byte(uint32_t cp)
{
	if (cp < 0x100)
		return byte_is_self(cp) ? (int)cp : -1;
	if (cp >= 0x100 + 68)
		return -1;
	uint32_t n = cp - 0x100;
	for (unsigned i = 0; i < 256; i++) {
		if (!byte_is_self(i)) {
			if (n == 0)
				return (int)i;
			n--;
		}
	}
	return -1;
}
