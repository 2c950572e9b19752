/* multipart: the streaming form-data parser.
 *
 * The stream is read as if it began with CRLF, so the first delimiter and
 * every later one have the same form "\r\n--boundary" and the preamble is
 * simply content that belongs to no part. pending holds bytes not yet
 * decided: in content, at most one delimiter length minus one (a delimiter
 * may straddle two feeds); in a header block, at most MULTIPART_MAX_HEADERS. */
#include "web/multipart.h"

#include <glib.h>
#include <string.h>

enum mp_state { MP_PREAMBLE, MP_AFTER_DELIM, MP_HEADERS, MP_CONTENT, MP_DONE, MP_FAILED };

struct multipart {
	const struct multipart_handler *h;
	void *ctx;
	char delim[MULTIPART_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
	size_t dlen;
	enum mp_state state;
	GByteArray *pending;
	int parts;
};

enum qerr multipart_boundary(const char *ct, char out[MULTIPART_MAX_BOUNDARY + 1], char **reterr)
{
	if (!ct || g_ascii_strncasecmp(ct, "multipart/form-data", 19) != 0)
		return qerr_set(reterr, QERR_BAD_INPUT, "the body must be multipart/form-data");
	const char *p = ct + 19;
	while (*p) {
		while (*p == ';' || *p == ' ' || *p == '\t')
			p++;
		if (g_ascii_strncasecmp(p, "boundary=", 9) == 0) {
			p += 9;
			bool quoted = *p == '"';
			if (quoted)
				p++;
			size_t n = 0;
			while (p[n] && (quoted ? p[n] != '"' : (p[n] != ';' && p[n] != ' ')))
				n++;
			if (n == 0 || n > MULTIPART_MAX_BOUNDARY)
				return qerr_set(reterr, QERR_BAD_INPUT, "the multipart boundary must have 1 to 70 characters");
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
					return qerr_set(reterr, QERR_BAD_INPUT, "the multipart boundary has invalid characters");
			memcpy(out, p, n);
			out[n] = 0;
			return QERR_OK;
		}
		while (*p && *p != ';')
			p++;
	}
	return qerr_set(reterr, QERR_BAD_INPUT, "the multipart Content-Type has no boundary");
}

enum qerr multipart_new(const char *boundary, const struct multipart_handler *h, void *ctx, struct multipart **ret,
                        char **reterr)
{
	size_t n = strlen(boundary);
	if (n == 0 || n > MULTIPART_MAX_BOUNDARY)
		return qerr_set(reterr, QERR_BAD_INPUT, "the multipart boundary must have 1 to 70 characters");
	struct multipart *m = g_new0(struct multipart, 1);
	m->h = h;
	m->ctx = ctx;
	m->dlen = (size_t)g_snprintf(m->delim, sizeof m->delim, "\r\n--%s", boundary);
	m->pending = g_byte_array_new();
	g_byte_array_append(m->pending, (const guint8 *)"\r\n", 2);
	*ret = m;
	return QERR_OK;
}

void multipart_free(struct multipart *m)
{
	if (!m)
		return;
	if (m->pending)
		g_byte_array_unref(m->pending);
	g_free(m);
}

static void consume(struct multipart *m, size_t n) { g_byte_array_remove_range(m->pending, 0, (guint)n); }

static const char *find(const guint8 *hay, size_t n, const char *needle, size_t nlen)
{
	return nlen <= n ? memmem(hay, n, needle, nlen) : NULL;
}

/* Value of parameter key (name, filename) in a Content-Disposition value; g_free. */
static char *disposition_param(const char *v, const char *key)
{
	size_t klen = strlen(key);
	const char *p = v;
	while ((p = strchr(p, ';'))) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (g_ascii_strncasecmp(p, key, klen) != 0 || p[klen] != '=')
			continue;
		p += klen + 1;
		GString *s = g_string_new(NULL);
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				g_string_append_c(s, *p);
			}
		} else {
			for (; *p && *p != ';' && *p != ' '; p++)
				g_string_append_c(s, *p);
		}
		return g_string_free(s, FALSE);
	}
	return NULL;
}

static enum qerr parse_headers(struct multipart *m, const char *block, char **reterr)
{
	g_autofree char *name = NULL, *filename = NULL, *type = NULL;
	bool disposition = false;
	g_auto(GStrv) lines = g_strsplit(block, "\r\n", -1);
	for (int i = 0; lines[i]; i++) {
		if (!lines[i][0])
			continue;
		char *colon = strchr(lines[i], ':');
		if (!colon)
			return qerr_set(reterr, QERR_BAD_INPUT, "part %d has a header line without a colon", m->parts + 1);
		*colon = 0;
		char *value = g_strstrip(colon + 1);
		if (g_ascii_strcasecmp(lines[i], "Content-Disposition") == 0) {
			if (g_ascii_strncasecmp(value, "form-data", 9) != 0)
				return qerr_set(reterr, QERR_BAD_INPUT, "part %d is not form-data", m->parts + 1);
			disposition = true;
			g_free(name);
			g_free(filename);
			name = disposition_param(value, "name");
			filename = disposition_param(value, "filename");
		} else if (g_ascii_strcasecmp(lines[i], "Content-Type") == 0) {
			g_free(type);
			type = g_strdup(value);
		}
	}
	if (!disposition || !name)
		return qerr_set(reterr, QERR_BAD_INPUT, "part %d has no Content-Disposition with a name", m->parts + 1);
	if (++m->parts > MULTIPART_MAX_PARTS)
		return qerr_set(reterr, QERR_BAD_INPUT, "more than %d parts", MULTIPART_MAX_PARTS);
	return m->h->part_begin(m->ctx, name, filename, type ? type : "", reterr);
}

/* Content (or preamble) until the next delimiter; *progress false when more input is needed. */
static enum qerr step_content(struct multipart *m, bool *progress, char **reterr)
{
	const guint8 *d = m->pending->data;
	size_t n = m->pending->len;
	const char *hit = find(d, n, m->delim, m->dlen);
	size_t emit = hit ? (size_t)((const guint8 *)hit - d) : (n >= m->dlen ? n - m->dlen + 1 : 0);
	enum qerr e = QERR_OK;
	if (emit && m->state == MP_CONTENT)
		e = m->h->part_data(m->ctx, d, emit, reterr);
	if (e)
		return e;
	if (hit && m->state == MP_CONTENT)
		e = m->h->part_end(m->ctx, reterr);
	consume(m, emit + (hit ? m->dlen : 0));
	if (hit)
		m->state = MP_AFTER_DELIM;
	*progress = hit != NULL;
	return e;
}

static enum qerr step_after_delim(struct multipart *m, bool *progress, char **reterr)
{
	const guint8 *d = m->pending->data;
	size_t n = m->pending->len, i = 0;
	if (n >= 2 && d[0] == '-' && d[1] == '-') {
		m->state = MP_DONE;
		g_byte_array_set_size(m->pending, 0);
		return QERR_OK;
	}
	while (i < n && (d[i] == ' ' || d[i] == '\t') && i < 64) /* transport padding */
		i++;
	if (i >= 64)
		return qerr_set(reterr, QERR_BAD_INPUT, "too much padding after a boundary");
	if (n < i + 2) {
		*progress = false;
		return QERR_OK;
	}
	if (d[i] != '\r' || d[i + 1] != '\n')
		return qerr_set(reterr, QERR_BAD_INPUT, "a boundary is not followed by a line break");
	consume(m, i + 2);
	m->state = MP_HEADERS;
	return QERR_OK;
}

static enum qerr step_headers(struct multipart *m, bool *progress, char **reterr)
{
	const guint8 *d = m->pending->data;
	size_t n = m->pending->len;
	/* An empty header block is a bare CRLF; otherwise the block ends with CRLF CRLF. */
	const char *end = (n >= 2 && d[0] == '\r' && d[1] == '\n') ? (const char *)d : find(d, n, "\r\n\r\n", 4);
	if (!end) {
		if (n > MULTIPART_MAX_HEADERS)
			return qerr_set(reterr, QERR_BAD_INPUT, "a part's headers exceed %d bytes", MULTIPART_MAX_HEADERS);
		*progress = false;
		return QERR_OK;
	}
	size_t hlen = (size_t)((const guint8 *)end - d);
	if (hlen > MULTIPART_MAX_HEADERS)
		return qerr_set(reterr, QERR_BAD_INPUT, "a part's headers exceed %d bytes", MULTIPART_MAX_HEADERS);
	if (memchr(d, 0, hlen))
		return qerr_set(reterr, QERR_BAD_INPUT, "a part's headers contain a NUL byte");
	g_autofree char *block = g_strndup((const char *)d, hlen);
	consume(m, hlen + (hlen ? 4 : 2));
	m->state = MP_CONTENT;
	return parse_headers(m, block, reterr);
}

enum qerr multipart_feed(struct multipart *m, const void *data, size_t len, char **reterr)
{
	if (m->state == MP_FAILED)
		return qerr_set(reterr, QERR_BAD_INPUT, "the multipart body was already refused");
	if (m->state == MP_DONE) /* the epilogue is ignored */
		return QERR_OK;
	g_byte_array_append(m->pending, data, (guint)len);
	enum qerr e = QERR_OK;
	bool progress = true;
	while (!e && progress && m->state != MP_DONE) {
		switch (m->state) {
		case MP_PREAMBLE:
		case MP_CONTENT:
			e = step_content(m, &progress, reterr);
			break;
		case MP_AFTER_DELIM:
			e = step_after_delim(m, &progress, reterr);
			break;
		case MP_HEADERS:
			e = step_headers(m, &progress, reterr);
			break;
		default:
			progress = false;
		}
	}
	if (e)
		m->state = MP_FAILED;
	return e;
}

enum qerr multipart_finish(struct multipart *m, char **reterr)
{
	if (m->state == MP_DONE)
		return QERR_OK;
	if (m->state == MP_FAILED)
		return qerr_set(reterr, QERR_BAD_INPUT, "the multipart body was refused");
	m->state = MP_FAILED;
	return qerr_set(reterr, QERR_BAD_INPUT, "the multipart body ends before its closing boundary");
}

bool multipart_filename_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > MULTIPART_MAX_NAME || name[0] == '.' || !g_utf8_validate(name, (gssize)n, NULL))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
			return false;
	}
	return true;
}
