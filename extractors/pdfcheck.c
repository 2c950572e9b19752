/* pdfcheck: end marker, cross-reference offsets, nesting depth and inflation
 * size, checked on the raw bytes. The lexer knows just enough PDF syntax to
 * skip comments, strings and stream data; everything it does is bounded by
 * the file's length and the limits in the header. */
#include "extractors/pdfcheck.h"

#include <gio/gio.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* A deflate stream expands at most about 1032 times; smaller streams cannot
 * reach the limit and are not inflated at all. */
#define DEFLATE_MAX_RATIO 1032
#define TAIL_WINDOW 1024
#define MAX_XREF_ENTRIES 1000000

static bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0;
}

static bool is_delim(unsigned char c)
{
	return is_ws(c) || c == '(' || c == ')' || c == '<' || c == '>' || c == '[' || c == ']' || c == '{' ||
	       c == '}' || c == '/' || c == '%';
}

/* Last occurrence of needle in the final TAIL_WINDOW bytes; NULL if none. */
static const char *find_in_tail(const char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	size_t from = len > TAIL_WINDOW ? len - TAIL_WINDOW : 0;
	const char *found = NULL;
	for (const char *q = p + from; (q = memmem(q, (size_t)(p + len - q), needle, n)) != NULL; q++)
		found = q;
	return found;
}

/* Reads an unsigned decimal at *pos (after whitespace); false if there is none. */
static bool read_uint(const char *p, size_t len, size_t *pos, uint64_t *out)
{
	while (*pos < len && is_ws((unsigned char)p[*pos]))
		(*pos)++;
	size_t start = *pos;
	uint64_t v = 0;
	while (*pos < len && g_ascii_isdigit(p[*pos]) && *pos - start < 19)
		v = v * 10 + (uint64_t)(p[(*pos)++] - '0');
	*out = v;
	return *pos > start;
}

/* Whether "N G obj" starts at off (after whitespace), with N == num unless num is 0. */
static bool object_at(const char *p, size_t len, uint64_t off, uint64_t num)
{
	if (off >= len)
		return false;
	size_t pos = (size_t)off;
	uint64_t n = 0, gen = 0;
	if (!read_uint(p, len, &pos, &n) || !read_uint(p, len, &pos, &gen) || (num && n != num))
		return false;
	while (pos < len && is_ws((unsigned char)p[pos]))
		pos++;
	return len - pos >= 3 && memcmp(p + pos, "obj", 3) == 0;
}

/* Checks every in-use entry of the classic table at pos ("xref" already seen). */
static enum qerr check_xref_table(const char *p, size_t len, size_t pos, char **reterr)
{
	uint64_t first = 0, count = 0, checked = 0;
	while (read_uint(p, len, &pos, &first) && read_uint(p, len, &pos, &count)) {
		for (uint64_t i = 0; i < count; i++) {
			uint64_t off = 0, gen = 0;
			if (!read_uint(p, len, &pos, &off) || !read_uint(p, len, &pos, &gen))
				return qerr_set(
				    reterr, QERR_PARSE_FAILED,
				    "the PDF's cross-reference table is broken: it ends inside its entries");
			while (pos < len && is_ws((unsigned char)p[pos]))
				pos++;
			if (pos >= len || ++checked > MAX_XREF_ENTRIES)
				return qerr_set(reterr, QERR_PARSE_FAILED, "the PDF's cross-reference table is broken");
			char kind = p[pos++];
			if (kind == 'n' && !object_at(p, len, off, first + i))
				return qerr_set(
				    reterr, QERR_PARSE_FAILED,
				    "the PDF's cross-reference table is broken: object %llu is not at byte %llu",
				    (unsigned long long)(first + i), (unsigned long long)off);
		}
	}
	return QERR_OK;
}

/* A damaged end of file that Poppler repairs (it rebuilds the table by
 * scanning the objects): a note for the reader, never a refusal. */
static char *check_tail(const char *p, size_t len)
{
	if (!find_in_tail(p, len, "%%EOF"))
		return g_strdup("the PDF is truncated: it does not end with an %%EOF marker");
	const char *sx = find_in_tail(p, len, "startxref");
	size_t pos = sx ? (size_t)(sx - p) + 9 : 0;
	uint64_t off = 0;
	if (!sx || !read_uint(p, len, &pos, &off))
		return g_strdup("the PDF's cross-reference table is broken: no startxref");
	if (off < len) {
		size_t at = (size_t)off;
		while (at < len && is_ws((unsigned char)p[at]))
			at++;
		if (len - at >= 4 && memcmp(p + at, "xref", 4) == 0) {
			char *why = NULL;
			enum qerr e = check_xref_table(p, len, at + 4, &why);
			if (e)
				return why;
			return NULL;
		}
		if (object_at(p, len, off, 0)) /* a cross-reference stream */
			return NULL;
	}
	return g_strdup_printf(
	    "the PDF's cross-reference table is broken: startxref points to byte %llu, where no table is",
	    (unsigned long long)off);
}

/* Inflated size of a zlib stream, counting at most limit + 1 bytes. */
static size_t inflated_size(const char *data, size_t len, size_t limit)
{
	g_autoptr(GConverter) z = G_CONVERTER(g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_ZLIB));
	enum { OUT = 65536 };
	g_autofree char *out = g_malloc(OUT);
	size_t total = 0;
	while (total <= limit) {
		gsize nread = 0, nwritten = 0;
		GConverterResult r =
		    g_converter_convert(z, data, len, out, OUT, G_CONVERTER_INPUT_AT_END, &nread, &nwritten, NULL);
		total += nwritten;
		data += nread;
		len -= nread;
		if (r == G_CONVERTER_ERROR || r == G_CONVERTER_FINISHED || (nread == 0 && nwritten == 0))
			break;
	}
	return total;
}

/* Handles the stream whose keyword is at pos and whose dictionary starts at dict;
 * returns the position after its data. */
static enum qerr check_stream(const char *p, size_t len, size_t dict, size_t *pos, char **reterr)
{
	size_t data = *pos + 6;
	if (data < len && p[data] == '\r')
		data++;
	if (data < len && p[data] == '\n')
		data++;
	const char *end = memmem(p + data, len - data, "endstream", 9);
	size_t data_end = end ? (size_t)(end - p) : len;
	*pos = end ? data_end + 9 : len;
	size_t clen = data_end - data;
	if (clen <= PDFCHECK_MAX_INFLATED / DEFLATE_MAX_RATIO)
		return QERR_OK;
	if (!memmem(p + dict, data - dict, "/FlateDecode", 12))
		return QERR_OK;
	if (inflated_size(p + data, clen, PDFCHECK_MAX_INFLATED) > PDFCHECK_MAX_INFLATED)
		return qerr_set(reterr, QERR_TOO_LARGE,
		                "the PDF contains a decompression bomb: a %zu-byte stream inflates past %zu MiB", clen,
		                PDFCHECK_MAX_INFLATED >> 20);
	return QERR_OK;
}

/* Skips a literal string starting at pos ('('), with nested parentheses and escapes. */
static size_t skip_string(const char *p, size_t len, size_t pos)
{
	int depth = 0;
	for (; pos < len; pos++) {
		if (p[pos] == '\\')
			pos++;
		else if (p[pos] == '(')
			depth++;
		else if (p[pos] == ')' && --depth == 0)
			return pos + 1;
	}
	return len;
}

static enum qerr scan_body(const char *p, size_t len, char **reterr)
{
	int depth = 0;
	size_t dict = 0, pos = 0;
	while (pos < len) {
		unsigned char c = (unsigned char)p[pos];
		if (c == '%') {
			while (pos < len && p[pos] != '\n' && p[pos] != '\r')
				pos++;
		} else if (c == '(') {
			pos = skip_string(p, len, pos);
		} else if (c == '<' && pos + 1 < len && p[pos + 1] == '<') {
			if (depth == 0)
				dict = pos;
			if (++depth > PDFCHECK_MAX_DEPTH)
				return qerr_set(reterr, QERR_PARSE_FAILED,
				                "the PDF nests objects more than %d levels deep", PDFCHECK_MAX_DEPTH);
			pos += 2;
		} else if (c == '<') {
			const char *gt = memchr(p + pos, '>', len - pos);
			pos = gt ? (size_t)(gt - p) + 1 : len;
		} else if (c == '[') {
			if (++depth > PDFCHECK_MAX_DEPTH)
				return qerr_set(reterr, QERR_PARSE_FAILED,
				                "the PDF nests objects more than %d levels deep", PDFCHECK_MAX_DEPTH);
			pos++;
		} else if (c == ']' || (c == '>' && pos + 1 < len && p[pos + 1] == '>')) {
			depth = depth > 0 ? depth - 1 : 0;
			pos += c == ']' ? 1 : 2;
		} else if (c == 's' && len - pos > 6 && memcmp(p + pos, "stream", 6) == 0 &&
		           (pos == 0 || is_delim((unsigned char)p[pos - 1])) &&
		           (p[pos + 6] == '\r' || p[pos + 6] == '\n')) {
			enum qerr e = check_stream(p, len, dict, &pos, reterr);
			if (e)
				return e;
			depth = 0;
		} else {
			pos++;
		}
	}
	return QERR_OK;
}

enum qerr pdfcheck_scan(const void *pdf, size_t len, char **ret_repair, char **reterr)
{
	enum qerr e = scan_body(pdf, len, reterr);
	if (!e && ret_repair)
		*ret_repair = check_tail(pdf, len);
	return e;
}
