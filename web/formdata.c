/* formdata: multipart/form-data through libmicrohttpd's post processor.
 *
 * The post processor calls back with a part's name, file name and type and a
 * piece of its content at an offset; a piece at offset 0 whose part differs
 * from the open one (or when the open one already had content) starts a new
 * part, and the open part ends when the next starts or the body ends. What the
 * library does not do and is added here: a limit on the number of parts, an
 * end-of-part event, a message saying why a body was refused, and refusing
 * every call after an error. What it gives up against a hand-written parser:
 * a malformed body gets one message ("malformed") rather than the place of the
 * fault, and a part without a Content-Disposition name is skipped by the
 * library rather than refused. */
#include "web/formdata.h"

#include <glib.h>
#include <microhttpd.h>
#include <string.h>

struct formdata {
	struct MHD_PostProcessor *pp;
	const struct formdata_handler *h;
	void *ctx;
	int parts;
	bool open, open_had_data, quiet;
	char *key, *filename, *type; /* the open part's */
	enum qerr err;
	char *errmsg;
};

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static enum qerr end_part(struct formdata *f)
{
	if (!f->open)
		return QERR_OK;
	f->open = false;
	return f->h->part_end(f->ctx, &f->errmsg);
}

static enum qerr begin_part(struct formdata *f, const char *key, const char *filename, const char *type)
{
	enum qerr e = end_part(f);
	if (e)
		return e;
	if (++f->parts > FORMDATA_MAX_PARTS)
		return qerr_set(&f->errmsg, QERR_BAD_INPUT, "more than %d parts", FORMDATA_MAX_PARTS);
	g_free(f->key);
	g_free(f->filename);
	g_free(f->type);
	f->key = g_strdup(key);
	f->filename = g_strdup(filename);
	f->type = g_strdup(type);
	f->open = true;
	f->open_had_data = false;
	return f->h->part_begin(f->ctx, key, filename, type ? type : "", &f->errmsg);
}

static enum MHD_Result iterate(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                               const char *type, const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
	(void)kind;
	(void)transfer_encoding;
	struct formdata *f = cls;
	if (f->err || f->quiet)
		return MHD_NO;
	if (!key)
		key = "";
	if (off == 0 && (!f->open || f->open_had_data || !same(key, f->key) || !same(filename, f->filename) ||
	                 !same(type, f->type)))
		f->err = begin_part(f, key, filename, type);
	if (!f->err && size) {
		f->open_had_data = true;
		f->err = f->h->part_data(f->ctx, data, size, &f->errmsg);
	}
	return f->err ? MHD_NO : MHD_YES;
}

enum qerr formdata_new(struct MHD_Connection *c, const struct formdata_handler *h, void *ctx, struct formdata **ret,
                       char **reterr)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ct || g_ascii_strncasecmp(ct, "multipart/form-data", 19) != 0)
		return qerr_set(reterr, QERR_BAD_INPUT, "the body must be multipart/form-data");
	struct formdata *f = g_new0(struct formdata, 1);
	f->h = h;
	f->ctx = ctx;
	f->pp = MHD_create_post_processor(c, FORMDATA_BUFFER, iterate, f);
	if (!f->pp) {
		g_free(f);
		return qerr_set(reterr, QERR_BAD_INPUT, "the multipart Content-Type has no valid boundary");
	}
	*ret = f;
	return QERR_OK;
}

static enum qerr failed(struct formdata *f, char **reterr)
{
	if (!f->err)
		f->err = QERR_BAD_INPUT;
	return qerr_set(reterr, f->err, "%s", f->errmsg ? f->errmsg : "the multipart body is malformed");
}

enum qerr formdata_feed(struct formdata *f, const void *data, size_t len, char **reterr)
{
	if (f->err || !f->pp)
		return failed(f, reterr);
	if (len && MHD_post_process(f->pp, data, len) != MHD_YES)
		return failed(f, reterr);
	return QERR_OK;
}

enum qerr formdata_finish(struct formdata *f, char **reterr)
{
	if (f->err || !f->pp)
		return failed(f, reterr);
	bool complete = MHD_destroy_post_processor(f->pp) == MHD_YES;
	f->pp = NULL;
	if (f->err)
		return failed(f, reterr);
	if (!complete) {
		f->err = QERR_BAD_INPUT;
		return qerr_set(reterr, QERR_BAD_INPUT, "the multipart body ends before its closing boundary");
	}
	f->err = end_part(f);
	return f->err ? failed(f, reterr) : QERR_OK;
}

void formdata_free(struct formdata *f)
{
	if (!f)
		return;
	f->quiet = true; /* what the library still hands out goes nowhere */
	if (f->pp)
		(void)MHD_destroy_post_processor(f->pp);
	g_free(f->key);
	g_free(f->filename);
	g_free(f->type);
	g_free(f->errmsg);
	g_free(f);
}

bool formdata_filename_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > FORMDATA_MAX_NAME || name[0] == '.' || !g_utf8_validate(name, (gssize)n, NULL))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
			return false;
	}
	return true;
}
