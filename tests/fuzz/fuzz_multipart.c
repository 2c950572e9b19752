/* Fuzz target: web/multipart, the streaming form-data parser. The input is fed in
 * pieces whose sizes come from the input itself, so boundaries straddle feeds; the
 * content handed out never exceeds the input, parts stay within the limit, and a
 * refused body gets no callbacks afterwards. */
#include "tests/fuzz/fuzz_main.h"

#include <glib.h>
#include <string.h>

#include "web/multipart.h"

struct seen {
	size_t bytes;
	int parts, open;
	bool failed;
};

static enum qerr begin(void *ctx, const char *name, const char *filename, const char *type, char **reterr)
{
	struct seen *s = ctx;
	g_assert_false(s->failed);
	g_assert_nonnull(name);
	g_assert_nonnull(type);
	g_assert_cmpint(s->open, ==, 0);
	s->open = 1;
	s->parts++;
	g_assert_cmpint(s->parts, <=, MULTIPART_MAX_PARTS);
	(void)multipart_filename_ok(filename);
	return QERR_OK;
}

static enum qerr data_cb(void *ctx, const void *data, size_t len, char **reterr)
{
	struct seen *s = ctx;
	g_assert_false(s->failed);
	g_assert_cmpint(s->open, ==, 1);
	s->bytes += len;
	return QERR_OK;
}

static enum qerr end(void *ctx, char **reterr)
{
	struct seen *s = ctx;
	g_assert_cmpint(s->open, ==, 1);
	s->open = 0;
	return QERR_OK;
}

static const struct multipart_handler handler = {begin, data_cb, end};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = {0};
	struct multipart *m = NULL;
	if (multipart_new("XyZ", &handler, &s, &m, NULL) != QERR_OK)
		return 0;
	size_t step = size ? (size_t)data[0] % 17 + 1 : 1;
	enum qerr e = QERR_OK;
	for (size_t off = 0; off < size && !e; off += step) {
		g_autofree char *err = NULL;
		e = multipart_feed(m, data + off, MIN(step, size - off), &err);
		if (e) {
			g_assert_nonnull(err);
			s.failed = true;
		}
	}
	g_autofree char *err = NULL;
	if (!e && multipart_finish(m, &err) != QERR_OK)
		g_assert_nonnull(err);
	g_assert_cmpuint(s.bytes, <=, size);
	multipart_free(m);
	char boundary[MULTIPART_MAX_BOUNDARY + 1];
	g_autofree char *ct = g_strndup((const char *)data, MIN(size, 200));
	g_autofree char *err2 = NULL;
	if (multipart_boundary(ct, boundary, &err2) == QERR_OK)
		g_assert_cmpuint(strlen(boundary), <=, MULTIPART_MAX_BOUNDARY);
	return 0;
}
