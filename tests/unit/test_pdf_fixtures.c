/* test_pdf_fixtures: cairo pages and hand-written PDF objects for the tests.
 * The raw writer lays objects out in order and computes every offset, so
 * fixtures are valid unless a test breaks them on purpose. */
#include "tests/unit/test_pdf_fixtures.h"

#include <cairo-pdf.h>
#include <stdarg.h>
#include <string.h>

static cairo_status_t append_bytes(void *closure, const unsigned char *data, unsigned int len)
{
	g_byte_array_append(closure, data, len);
	return CAIRO_STATUS_SUCCESS;
}

GBytes *fixture_cairo(int n_pages, double width, double height, const char *title, const char *author,
                      fixture_draw_fn draw, void *data)
{
	GByteArray *out = g_byte_array_new();
	cairo_surface_t *s = cairo_pdf_surface_create_for_stream(append_bytes, out, width, height);
	if (title)
		cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, title);
	if (author)
		cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_AUTHOR, author);
	cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATE_DATE, "2026-03-14T10:20:30Z");
	cairo_t *cr = cairo_create(s);
	for (int i = 0; i < n_pages; i++) {
		cairo_save(cr);
		draw(cr, i, data);
		cairo_restore(cr);
		cairo_show_page(cr);
	}
	cairo_destroy(cr);
	cairo_surface_finish(s);
	g_assert_cmpint(cairo_surface_status(s), ==, CAIRO_STATUS_SUCCESS);
	cairo_surface_destroy(s);
	return g_byte_array_free_to_bytes(out);
}

void fixture_text(cairo_t *cr, double x, double y, double size, const char *text)
{
	cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_move_to(cr, x, y);
	cairo_show_text(cr, text);
}

void fixture_scan(cairo_t *cr, double width, double height, const char *const *lines)
{
	double scale = 300.0 / 72.0;
	int w = (int)(width * scale), h = (int)(height * scale);
	cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
	cairo_t *ic = cairo_create(img);
	cairo_set_source_rgb(ic, 1, 1, 1);
	cairo_paint(ic);
	cairo_scale(ic, scale, scale);
	for (int i = 0; lines[i]; i++)
		fixture_text(ic, 72, 100 + 28.0 * i, 16, lines[i]);
	cairo_destroy(ic);
	/* one picture filling the page, as a scanner writes it: cairo stores an
	 * image of greys only as an 8-bit DeviceGray image */
	cairo_save(cr);
	cairo_scale(cr, 1 / scale, 1 / scale);
	cairo_set_source_surface(cr, img, 0, 0);
	cairo_paint(cr);
	cairo_restore(cr);
	cairo_surface_destroy(img);
}

GBytes *fixture_obj(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return g_bytes_new_take(s, strlen(s));
}

GBytes *fixture_stream(const char *dict_extra, const void *data, size_t len)
{
	GByteArray *b = g_byte_array_new();
	char *head = g_strdup_printf("<< /Length %zu %s >>\nstream\n", len, dict_extra ? dict_extra : "");
	g_byte_array_append(b, (const guint8 *)head, (guint)strlen(head));
	g_byte_array_append(b, data, (guint)len);
	g_byte_array_append(b, (const guint8 *)"\nendstream", 10);
	g_free(head);
	return g_byte_array_free_to_bytes(b);
}

static void append_str(GByteArray *b, const char *s)
{
	g_byte_array_append(b, (const guint8 *)s, (guint)strlen(s));
}

GBytes *fixture_raw(GBytes *const *objs, size_t n, const char *trailer_extra)
{
	GByteArray *b = g_byte_array_new();
	append_str(b, "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
	g_autofree size_t *offs = g_new(size_t, n);
	for (size_t i = 0; i < n; i++) {
		offs[i] = b->len;
		g_autofree char *head = g_strdup_printf("%zu 0 obj\n", i + 1);
		append_str(b, head);
		gsize len = 0;
		const guint8 *d = g_bytes_get_data(objs[i], &len);
		g_byte_array_append(b, d, (guint)len);
		append_str(b, "\nendobj\n");
	}
	size_t xref = b->len;
	g_autofree char *sub = g_strdup_printf("xref\n0 %zu\n0000000000 65535 f \n", n + 1);
	append_str(b, sub);
	for (size_t i = 0; i < n; i++) {
		char entry[32];
		g_snprintf(entry, sizeof entry, "%010zu 00000 n \n", offs[i]);
		append_str(b, entry);
	}
	g_autofree char *trailer = g_strdup_printf("trailer\n<< /Size %zu /Root 1 0 R %s >>\nstartxref\n%zu\n%%%%EOF\n",
	                                           n + 1, trailer_extra ? trailer_extra : "", xref);
	append_str(b, trailer);
	return g_byte_array_free_to_bytes(b);
}

static GString *content_of(const char *const *lines)
{
	GString *c = g_string_new("BT /F1 12 Tf 14 TL 72 720 Td\n");
	for (int i = 0; lines[i]; i++)
		g_string_append_printf(c, "(%s) Tj T*\n", lines[i]);
	g_string_append(c, "ET");
	return c;
}

GBytes *fixture_simple(const char *const *lines, const char *page_extra, const char *catalog_extra)
{
	g_autoptr(GString) c = content_of(lines);
	GBytes *objs[] = {
	    fixture_obj("<< /Type /Catalog /Pages 2 0 R %s >>", catalog_extra ? catalog_extra : ""),
	    fixture_obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
	    fixture_obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
	                "/Resources << /Font << /F1 5 0 R >> >> %s >>",
	                page_extra ? page_extra : ""),
	    fixture_stream(NULL, c->str, c->len),
	    fixture_obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"),
	};
	GBytes *pdf = fixture_raw(objs, G_N_ELEMENTS(objs), NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(objs); i++)
		g_bytes_unref(objs[i]);
	return pdf;
}

/* ---- the standard security handler, revision 2 (RC4, 40-bit keys) ---- */

static const guint8 pad[32] = {0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4E,
                               0x56, 0xFF, 0xFA, 0x01, 0x08, 0x2E, 0x2E, 0x00, 0xB6, 0xD0, 0x68,
                               0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A};

static void rc4(const guint8 *key, size_t klen, guint8 *data, size_t len)
{
	guint8 s[256];
	for (int i = 0; i < 256; i++)
		s[i] = (guint8)i;
	for (int i = 0, j = 0; i < 256; i++) {
		j = (j + s[i] + key[i % klen]) & 255;
		guint8 t = s[i];
		s[i] = s[j];
		s[j] = t;
	}
	for (size_t n = 0, i = 0, j = 0; n < len; n++) {
		i = (i + 1) & 255;
		j = (j + s[i]) & 255;
		guint8 t = s[i];
		s[i] = s[j];
		s[j] = t;
		data[n] ^= s[(s[i] + s[j]) & 255];
	}
}

static void padded(const char *pw, guint8 out[32])
{
	size_t n = MIN(strlen(pw), 32);
	memcpy(out, pw, n);
	memcpy(out + n, pad, 32 - n);
}

static void md5(GChecksum *c, guint8 out[16])
{
	gsize n = 16;
	g_checksum_get_digest(c, out, &n);
	g_checksum_free(c);
}

static char *hex(const guint8 *d, size_t n)
{
	GString *s = g_string_new("<");
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%02X", d[i]);
	g_string_append_c(s, '>');
	return g_string_free(s, FALSE);
}

GBytes *fixture_encrypted(const char *text, const char *user_pw)
{
	static const guint8 id[16] = "quire-test-id-01";
	guint8 user[32], owner_key[16], o[32], key[16], u[32], objkey[16];
	padded(user_pw, user);
	GChecksum *c = g_checksum_new(G_CHECKSUM_MD5);
	g_checksum_update(c, (const guint8 *)"owner-secret", 12);
	g_checksum_update(c, pad, 20);
	md5(c, owner_key);
	memcpy(o, user, 32);
	rc4(owner_key, 5, o, 32);
	const guint8 perms[4] = {0xfc, 0xff, 0xff, 0xff}; /* /P -4 */
	c = g_checksum_new(G_CHECKSUM_MD5);
	g_checksum_update(c, user, 32);
	g_checksum_update(c, o, 32);
	g_checksum_update(c, perms, 4);
	g_checksum_update(c, id, 16);
	md5(c, key);
	memcpy(u, pad, 32);
	rc4(key, 5, u, 32);
	/* the content stream is object 4, generation 0 */
	const guint8 salt[5] = {4, 0, 0, 0, 0};
	c = g_checksum_new(G_CHECKSUM_MD5);
	g_checksum_update(c, key, 5);
	g_checksum_update(c, salt, 5);
	md5(c, objkey);
	g_autofree char *content = g_strdup_printf("BT /F1 12 Tf 72 720 Td (%s) Tj ET", text);
	size_t clen = strlen(content);
	rc4(objkey, 10, (guint8 *)content, clen);
	g_autofree char *ho = hex(o, 32), *hu = hex(u, 32), *hid = hex(id, 16);
	GBytes *objs[] = {
	    fixture_obj("<< /Type /Catalog /Pages 2 0 R >>"),
	    fixture_obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
	    fixture_obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
	                "/Resources << /Font << /F1 5 0 R >> >> >>"),
	    fixture_stream(NULL, content, clen),
	    fixture_obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"),
	    fixture_obj("<< /Filter /Standard /V 1 /R 2 /O %s /U %s /P -4 >>", ho, hu),
	};
	g_autofree char *trailer = g_strdup_printf("/Encrypt 6 0 R /ID [%s %s]", hid, hid);
	GBytes *pdf = fixture_raw(objs, G_N_ELEMENTS(objs), trailer);
	for (size_t i = 0; i < G_N_ELEMENTS(objs); i++)
		g_bytes_unref(objs[i]);
	return pdf;
}
