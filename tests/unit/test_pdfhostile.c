/* Unit tests of extractors/sandbox on hostile input: truncations, byte
 * mutations, a decompression bomb, reference loops, deep nesting, a false page
 * count, a broken cross-reference table, and children that crash, hang, spin,
 * blow up their memory or send garbage. Every case must end in a clear error
 * for that document while the caller carries on. */
#include "extractors/sandbox.h"

#include <gio/gio.h>
#include <stdbool.h>
#include <string.h>

#include "extractors/pdftext.h"
#include "tests/unit/test_pdf_fixtures.h"

static const struct sandbox_limits limits = {.timeout_s = 20, .memory_bytes = (size_t)1024 << 20, .max_pages = 50};

static enum qerr run(const void *data, size_t len, const struct sandbox_limits *lim, char **err)
{
	struct pdftext_doc *doc = NULL;
	g_clear_pointer(err, g_free);
	enum qerr e = sandbox_extract(data, len, NULL, lim, &doc, err);
	if (e == QERR_OK)
		pdftext_doc_free(doc);
	else
		g_assert_nonnull(*err);
	return e;
}

static enum qerr run_bytes(GBytes *pdf, char **err)
{
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	return run(data, len, &limits, err);
}

static void draw_invoice(cairo_t *cr, int page, void *data)
{
	fixture_text(cr, 72, 100, 14, "Invoice 2026-0042");
	fixture_text(cr, 72, 130, 10, "Total: 1,234.51 EUR");
}

static GBytes *valid_pdf(void)
{
	return fixture_cairo(2, 595, 842, "Invoice", NULL, draw_invoice, NULL);
}

static bool has_warning(const struct pdftext_doc *doc, const char *words)
{
	for (uint32_t i = 0; i < doc->n_warnings; i++)
		if (strstr(doc->warnings[i], words))
			return true;
	return false;
}

/* A file with a damaged end that Poppler repairs is read, with a warning that says so. */
static void expect_repaired(const char *data, size_t len, const char *words)
{
	struct pdftext_doc *doc = NULL;
	g_autofree char *err = NULL;
	enum qerr e = sandbox_extract(data, len, NULL, &limits, &doc, &err);
	if (e)
		g_error("%s: %s", qerr_str(e), err);
	g_assert_nonnull(strstr(doc->pages[0].text, "Hello"));
	if (!has_warning(doc, words) || !has_warning(doc, "read as Poppler repaired it"))
		g_error("no warning \"%s\"", words);
	pdftext_doc_free(doc);
}

static void test_truncations(void)
{
	g_autoptr(GBytes) pdf = valid_pdf();
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(pdf, &len);
	g_autofree char *err = NULL;
	g_assert_cmpint(run(data, len, &limits, &err), ==, QERR_OK);
	/* 48 cut points spread over the file, plus the last bytes one by one */
	for (int i = 0; i < 56; i++) {
		size_t cut = i < 48 ? (size_t)i * (len / 48) : len - 8 + (size_t)(i - 48) - 1;
		if (cut >= len - 1)
			continue;
		struct pdftext_doc *doc = NULL;
		g_clear_pointer(&err, g_free);
		enum qerr e = sandbox_extract(data, cut, NULL, &limits, &doc, &err);
		if (cut == 0)
			g_assert_cmpint(e, ==, QERR_EMPTY);
		else if (cut < 5)
			g_assert_cmpint(e, ==, QERR_NOT_PDF);
		else if (e == QERR_OK)
			/* what Poppler reads of it is read, and said to be repaired */
			g_assert_true(has_warning(doc, "truncated") && has_warning(doc, "repaired"));
		else if (e != QERR_PARSE_FAILED || !strstr(err, "truncated"))
			g_error("cut at %zu: %s: %s", cut, qerr_str(e), err);
		pdftext_doc_free(doc);
	}
}

static void test_mutations(void)
{
	g_autoptr(GBytes) pdf = valid_pdf();
	gsize len = 0;
	const guint8 *orig = g_bytes_get_data(pdf, &len);
	g_autofree guint8 *data = g_memdup2(orig, len);
	g_autofree char *err = NULL;
	GRand *rng = g_rand_new_with_seed(20260314);
	int ok = 0, failed = 0;
	for (int i = 0; i < 60; i++) {
		memcpy(data, orig, len);
		int n = g_rand_int_range(rng, 1, 12);
		for (int k = 0; k < n; k++)
			data[g_rand_int_range(rng, 0, (gint32)len)] = (guint8)g_rand_int_range(rng, 0, 256);
		enum qerr e = run(data, len, &limits, &err);
		/* a mutation may be harmless (inside a font, say); whatever it breaks ends
		 * as a permanent error of this document, never as an internal one */
		if (e == QERR_OK) {
			ok++;
		} else {
			g_assert_cmpint(qerr_group(e), ==, QERR_GROUP_PERMANENT);
			failed++;
		}
	}
	g_rand_free(rng);
	g_test_message("mutations: %d read, %d refused", ok, failed);
	g_assert_cmpint(failed, >, 0);
}

static GBytes *one_page(GBytes *pages_obj, GBytes *page_obj, GBytes *content, GBytes *extra)
{
	GBytes *objs[] = {
	    fixture_obj("<< /Type /Catalog /Pages 2 0 R >>"),
	    pages_obj,
	    page_obj,
	    content,
	    fixture_obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"),
	    extra ? extra : fixture_obj("null"),
	};
	GBytes *pdf = fixture_raw(objs, G_N_ELEMENTS(objs), NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(objs); i++)
		g_bytes_unref(objs[i]);
	return pdf;
}

#define PAGE_OBJ                                                                                                       \
	"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> "    \
	">> %s >>"
#define CONTENT "BT /F1 12 Tf 72 700 Td (Hello) Tj ET"

static void expect(GBytes *pdf, enum qerr want, const char *words)
{
	g_autofree char *err = NULL;
	g_assert_cmpint(run_bytes(pdf, &err), ==, want);
	if (!strstr(err, words))
		g_error("\"%s\" not in \"%s\"", words, err);
}

static void test_bomb(void)
{
	/* 512 MiB of spaces in a Flate stream of about half a megabyte */
	size_t raw = (size_t)512 << 20, chunk = (size_t)1 << 20;
	g_autoptr(GConverter) z = G_CONVERTER(g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_ZLIB, 9));
	g_autofree guint8 *spaces = g_malloc(chunk);
	memset(spaces, ' ', chunk);
	GByteArray *out = g_byte_array_new();
	guint8 buf[65536];
	for (size_t done = 0; done < raw;) {
		gsize nread = 0, nwritten = 0;
		bool last = done + chunk >= raw;
		GConverterResult r = g_converter_convert(z, spaces, chunk, buf, sizeof buf,
		                                         last ? G_CONVERTER_INPUT_AT_END : G_CONVERTER_NO_FLAGS, &nread,
		                                         &nwritten, NULL);
		g_assert_cmpint(r, !=, G_CONVERTER_ERROR);
		g_byte_array_append(out, buf, (guint)nwritten);
		done += nread;
		if (r == G_CONVERTER_FINISHED)
			break;
	}
	gsize nwritten = 0, nread = 0;
	while (g_converter_convert(z, NULL, 0, buf, sizeof buf, G_CONVERTER_INPUT_AT_END, &nread, &nwritten, NULL) ==
	       G_CONVERTER_CONVERTED)
		g_byte_array_append(out, buf, (guint)nwritten);
	g_byte_array_append(out, buf, (guint)nwritten);
	g_autoptr(GBytes) pdf =
	    one_page(fixture_obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"), fixture_obj(PAGE_OBJ, ""),
	             fixture_stream("/Filter /FlateDecode", out->data, out->len), NULL);
	g_byte_array_unref(out);
	expect(pdf, QERR_TOO_LARGE, "decompression bomb");
}

static void test_reference_loop(void)
{
	/* the page tree lists itself as its own kid */
	g_autoptr(GBytes) pdf =
	    one_page(fixture_obj("<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>"), fixture_obj(PAGE_OBJ, ""),
	             fixture_stream(NULL, CONTENT, strlen(CONTENT)), NULL);
	expect(pdf, QERR_PARSE_FAILED, "reference loop");
}

static void test_huge_page_count(void)
{
	g_autoptr(GBytes) pdf =
	    one_page(fixture_obj("<< /Type /Pages /Kids [3 0 R] /Count 2000000000 >>"), fixture_obj(PAGE_OBJ, ""),
	             fixture_stream(NULL, CONTENT, strlen(CONTENT)), NULL);
	expect(pdf, QERR_PARSE_FAILED, "claims 2000000000 pages");
}

static void test_deep_nesting(void)
{
	GString *deep = g_string_new("/Deep ");
	for (int i = 0; i < 20000; i++)
		g_string_append(deep, "[");
	for (int i = 0; i < 20000; i++)
		g_string_append(deep, "]");
	g_autoptr(GBytes) pdf =
	    one_page(fixture_obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"), fixture_obj(PAGE_OBJ, deep->str),
	             fixture_stream(NULL, CONTENT, strlen(CONTENT)), NULL);
	g_string_free(deep, TRUE);
	expect(pdf, QERR_PARSE_FAILED, "nests objects");
}

static void test_broken_xref(void)
{
	const char *lines[] = {"Hello", NULL};
	g_autoptr(GBytes) pdf = fixture_simple(lines, NULL, NULL);
	gsize len = 0;
	const char *orig = g_bytes_get_data(pdf, &len);
	g_autofree char *data = g_malloc0(len + 1);
	memcpy(data, orig, len);
	/* the third object's offset points into the middle of the first */
	char *entry = strstr(data, "xref\n");
	for (int i = 0; i < 3; i++)
		entry = strstr(entry + 1, " 00000 n \n");
	memcpy(entry - 10, "0000000020", 10);
	expect_repaired(data, len, "cross-reference table is broken: object 3 is not at byte 20");
	/* and a startxref that points nowhere */
	char *sx = g_strrstr(data, "startxref\n");
	memcpy(sx + 10, "9", 1);
	expect_repaired(data, len, "startxref points to byte");
	/* and none at all */
	memcpy(sx, "startxrex", 9);
	expect_repaired(data, len, "no startxref");
}

static void test_simple_refusals(void)
{
	g_autofree char *err = NULL;
	g_assert_cmpint(run("", 0, &limits, &err), ==, QERR_EMPTY);
	g_assert_cmpint(run("GIF89a not a pdf at all", 23, &limits, &err), ==, QERR_NOT_PDF);
	g_autoptr(GBytes) pdf = valid_pdf();
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct sandbox_limits one = limits;
	one.max_pages = 1;
	g_assert_cmpint(run(data, len, &one, &err), ==, QERR_TOO_LARGE);
	g_assert_nonnull(strstr(err, "has 2 pages; the limit is 1"));
}

static void fault_either(enum sandbox_fault f, int page, int timeout_s, enum qerr want, enum qerr or_want,
                         const char *words);

static void fault(enum sandbox_fault f, int page, int timeout_s, enum qerr want, const char *words)
{
	fault_either(f, page, timeout_s, want, want, words);
}

/* The fault f on page ends the parse with want (or or_want) and words in the message. */
static void fault_either(enum sandbox_fault f, int page, int timeout_s, enum qerr want, enum qerr or_want,
                         const char *words)
{
	g_autoptr(GBytes) pdf = valid_pdf();
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct sandbox_limits lim = limits;
	lim.timeout_s = timeout_s;
	lim.test_fault = f;
	lim.test_fault_page = page;
	gint64 t0 = 0;
	g_autofree char *err = NULL;
	enum qerr got = QERR_TIMEOUT;
	/* "the machine is busy" (the parser starved before the fault) is what a worker tries again,
	 * and so does this test, a few times, unless that verdict is one of those wanted */
	for (int attempt = 0; attempt < 5 && got == QERR_TIMEOUT; attempt++) {
		g_clear_pointer(&err, g_free);
		t0 = g_get_monotonic_time();
		got = run(data, len, &lim, &err);
		if (want == QERR_TIMEOUT || or_want == QERR_TIMEOUT)
			break;
		if (got == QERR_TIMEOUT)
			g_test_message("starved on a busy machine, tried again: %s", err);
	}
	if (got != want && got != or_want)
		g_error("got %s: %s", qerr_str(got), err ? err : "");
	if (!strstr(err, words))
		g_error("\"%s\" not in \"%s\"", words, err);
	/* the worker waited no longer than the wall-clock limit (and a little to reap) */
	g_assert_cmpint(g_get_monotonic_time() - t0, <, (timeout_s * SANDBOX_WALL_FACTOR + 3) * G_USEC_PER_SEC);
	/* and the next document is processed normally */
	g_assert_cmpint(run(data, len, &limits, &err), ==, QERR_OK);
}

static void test_child_crash(void)
{
	fault(SANDBOX_FAULT_CRASH, 2, 20, QERR_PARSE_FAILED, "PDF parser crashed on page 2");
}
static void test_child_hang(void)
{
	/* a parser that blocks uses no processor time: it hung, which a parser that reads from
	 * memory only does on a document made for it, so it is refused rather than tried again */
	fault(SANDBOX_FAULT_HANG, 2, 2, QERR_PARSE_FAILED, "the PDF parser hung on page 2");
}
static void test_child_syscall(void)
{
	/* a system call outside the allow list kills the parser; the document is called hostile */
	fault(SANDBOX_FAULT_SYSCALL, 2, 20, QERR_PARSE_FAILED,
	      "hostile PDF: it made the parser attempt a system call outside its allow list on page 2");
}
static void test_child_spin(void)
{
	/* spinning uses the processor: the document's fault, unless the machine is so busy that
	 * the parser got less than its processor time within the wall-clock limit (starved) */
	fault_either(SANDBOX_FAULT_SPIN, 1, 1, QERR_TOO_LARGE, QERR_TIMEOUT, "limit");
}
static void test_child_garbage(void)
{
	fault(SANDBOX_FAULT_GARBAGE, 1, 20, QERR_INTERNAL, "malformed reply");
}

static void test_child_memory(void)
{
#ifdef __SANITIZE_ADDRESS__
	g_test_skip("no address-space limit under AddressSanitizer");
#else
	fault(SANDBOX_FAULT_MEMORY, 1, 20, QERR_PARSE_FAILED, "out of memory");
#endif
}

/* A crashing document next to a good one, on two threads at once. */
static gpointer crash_thread(gpointer data)
{
	fault(SANDBOX_FAULT_CRASH, 1, 20, QERR_PARSE_FAILED, "crashed on page 1");
	return NULL;
}

static void test_concurrent(void)
{
	GThread *t = g_thread_new("crash", crash_thread, NULL);
	g_autoptr(GBytes) pdf = valid_pdf();
	for (int i = 0; i < 5; i++) {
		g_autofree char *err = NULL;
		g_assert_cmpint(run_bytes(pdf, &err), ==, QERR_OK);
	}
	g_thread_join(t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pdfhostile/truncations", test_truncations);
	g_test_add_func("/pdfhostile/mutations", test_mutations);
	g_test_add_func("/pdfhostile/decompression-bomb", test_bomb);
	g_test_add_func("/pdfhostile/reference-loop", test_reference_loop);
	g_test_add_func("/pdfhostile/huge-page-count", test_huge_page_count);
	g_test_add_func("/pdfhostile/deep-nesting", test_deep_nesting);
	g_test_add_func("/pdfhostile/broken-xref", test_broken_xref);
	g_test_add_func("/pdfhostile/refusals", test_simple_refusals);
	g_test_add_func("/pdfhostile/child-crash", test_child_crash);
	g_test_add_func("/pdfhostile/child-hang", test_child_hang);
	g_test_add_func("/pdfhostile/child-spin", test_child_spin);
	g_test_add_func("/pdfhostile/child-memory", test_child_memory);
	g_test_add_func("/pdfhostile/child-garbage", test_child_garbage);
	g_test_add_func("/pdfhostile/child-syscall", test_child_syscall);
	g_test_add_func("/pdfhostile/concurrent-crash", test_concurrent);
	return g_test_run();
}
