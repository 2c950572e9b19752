/* Integration tests of the streaming writer (pipeline/store.h) against a real PostgreSQL:
 * many MiB written through fixed memory and read back whole, refused files leaving nothing
 * while the files around them stay, dedupe against committed and concurrent uploads, and
 * idempotency keys seen before the content. */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/vault.h"
#include "pipeline/store.h"
#include "tests/integration/pgtest.h"

static struct db *db;
static struct vault *vault;

static int64_t count(const char *sql)
{
	struct db_res *res = NULL;
	g_autofree char *err = NULL;
	QT_OK(db_query(db, sql, 0, NULL, &res, &err), err);
	int64_t n = db_res_int(res, 0, 0);
	db_res_free(res);
	return n;
}

/* Every row the store writes for documents, as one figure that any leftover changes. */
static int64_t rows_stored(void)
{
	return count("SELECT (SELECT count(*) FROM documents) + (SELECT count(*) FROM payloads)"
	             " + (SELECT count(*) FROM payload_chunks) + (SELECT count(*) FROM jobs)");
}

/* Content that is the same for the same seed and offset, made piece by piece: byte i of
 * stream seed is a function of (seed, i), and the stream starts with %PDF-. */
static void content_at(uint32_t seed, uint64_t off, uint8_t *out, size_t len)
{
	static const char head[] = "%PDF-1.7\n";
	for (size_t i = 0; i < len; i++) {
		uint64_t at = off + i;
		if (at < sizeof head - 1) {
			out[i] = (uint8_t)head[at];
			continue;
		}
		uint64_t x = (at >> 3) * 0x9E3779B97F4A7C15ull ^ seed;
		x ^= x >> 29;
		x *= 0xBF58476D1CE4E5B9ull;
		x ^= x >> 32;
		out[i] = (uint8_t)(x >> ((at & 7) * 8));
	}
}

/* kB from a line of /proc/self/status. */
static long status_kb(const char *key)
{
	g_autofree char *text = NULL;
	g_assert_true(g_file_get_contents("/proc/self/status", &text, NULL, NULL));
	const char *p = strstr(text, key);
	g_assert_nonnull(p);
	return strtol(p + strlen(key) + 1, NULL, 10);
}

/* Streams total bytes of seed in pieces of varying size through one fixed buffer. */
static enum qerr stream_content(struct store_writer *w, uint32_t seed, uint64_t total, char **reterr)
{
	static const size_t sizes[] = {1, 7, 4093, 65536, 100000, 65535, 8192};
	uint8_t *piece = g_malloc(100000);
	enum qerr e = QERR_OK;
	for (uint64_t off = 0, k = 0; !e && off < total; k++) {
		size_t n = (size_t)MIN(sizes[k % G_N_ELEMENTS(sizes)], total - off);
		content_at(seed, off, piece, n);
		e = store_writer_write(w, piece, n, reterr);
		off += n;
	}
	g_free(piece);
	return e;
}

static struct store_submitted stream_file(struct db *conn, uint32_t seed, uint64_t total, const char *name)
{
	struct store_writer_options o = {.require_pdf = true};
	struct store_writer *w = NULL;
	struct store_submitted s = {0};
	g_autofree char *err = NULL;
	QT_OK(store_writer_open(conn, vault, &o, &w, &err), err);
	QT_OK(stream_content(w, seed, total, &err), err);
	g_assert_cmpuint(store_writer_size(w), ==, total);
	QT_OK(store_writer_finish(w, name, &s, &err), err);
	return s;
}

static void check_original(int64_t doc, uint32_t seed, uint64_t total)
{
	struct vault_dek *dek = NULL;
	struct vault_buf buf = {0};
	g_autofree char *err = NULL;
	QT_OK(store_dek(db, vault, doc, &dek, &err), err);
	QT_OK(store_get(db, dek, doc, "original", &buf, &err), err);
	g_assert_cmpuint(buf.len, ==, total);
	uint8_t *want = g_malloc(1 << 16);
	for (uint64_t off = 0; off < total; off += 1 << 16) {
		size_t n = (size_t)MIN((uint64_t)1 << 16, total - off);
		content_at(seed, off, want, n);
		g_assert_true(memcmp(buf.data + off, want, n) == 0);
	}
	g_free(want);
	vault_buf_free(&buf);
	vault_dek_free(dek);
}

static void test_bounded_memory(void)
{
	const uint64_t total = (uint64_t)48 << 20; /* an exact number of chunks: the last full one is final */
	g_autofree char *err = NULL;
	/* warm up: the first file brings libpq's buffers and the prepared paths to their size */
	QT_OK(db_begin(db, &err), err);
	stream_file(db, 1, 300000, "warm.pdf");
	db_rollback(db);
	/* The high-water mark starts again from the current resident size (Linux 4.0 and later);
	 * where that is refused, the growth of the mark itself is measured. */
	FILE *f = fopen("/proc/self/clear_refs", "w");
	bool reset = f && fputs("5", f) >= 0;
	if (f && fclose(f) != 0)
		reset = false;
	long rss = status_kb(reset ? "VmRSS:" : "VmHWM:");
	QT_OK(db_begin(db, &err), err);
	struct store_submitted s = stream_file(db, 2, total, "big.pdf");
	QT_OK(db_commit(db, &err), err);
	long grown = status_kb("VmHWM:") - rss;
	g_test_message("48 MiB streamed; peak resident size grew by %ld kB", grown);
	g_assert_cmpint(grown, <, 8 * 1024);
	g_assert_false(s.existing);
	g_autofree char *q = g_strdup_printf("SELECT d.size_bytes + p.chunks FROM documents d JOIN payloads p"
	                                     " ON p.document_id = d.id AND p.purpose = 'original' WHERE d.id = %lld",
	                                     (long long)s.doc_id);
	g_assert_cmpint(count(q), ==, (int64_t)total + (int64_t)(total / VAULT_STREAM_CHUNK));
	check_original(s.doc_id, 2, total);
	/* the same content streamed again (and given whole) is the same document */
	QT_OK(db_begin(db, &err), err);
	struct store_submitted again = stream_file(db, 2, total, "again.pdf");
	QT_OK(db_commit(db, &err), err);
	g_assert_true(again.existing);
	g_assert_cmpint(again.doc_id, ==, s.doc_id);
	g_assert_cmpint(again.job_id, ==, s.job_id);
}

/* Opens a writer, feeds len bytes of seed (or text), finishes; returns the result code. */
static enum qerr one_file(size_t max, uint32_t seed, const char *text, size_t len, struct store_submitted *ret)
{
	struct store_writer_options o = {.max_bytes = max, .require_pdf = true};
	struct store_writer *w = NULL;
	g_autofree char *err = NULL;
	QT_OK(store_writer_open(db, vault, &o, &w, &err), err);
	enum qerr e = text ? store_writer_write(w, text, len, &err) : stream_content(w, seed, len, &err);
	if (e) {
		store_writer_abort(w);
		return e;
	}
	return store_writer_finish(w, "f.pdf", ret, &err);
}

static void test_refusals_leave_nothing(void)
{
	g_autofree char *err = NULL;
	int64_t before = rows_stored();
	struct store_submitted first = {0}, s = {0};
	QT_OK(db_begin(db, &err), err);
	QT_OK(one_file(200000, 10, NULL, 150000, &first), NULL);
	int64_t with_first = rows_stored();
	g_assert_cmpint(one_file(200000, 11, NULL, 300000, &s), ==, QERR_TOO_LARGE);
	g_assert_cmpint(one_file(200000, 0, "hello", 5, &s), ==, QERR_NOT_PDF);
	g_autofree char *html = g_strnfill(5000, 'x');
	g_assert_cmpint(one_file(200000, 0, html, 5000, &s), ==, QERR_NOT_PDF);
	g_assert_cmpint(one_file(200000, 0, "", 0, &s), ==, QERR_EMPTY);
	/* a signature after the first KiB does not count */
	memcpy(html + 2000, "%PDF-1.4", 8);
	g_assert_cmpint(one_file(200000, 0, html, 5000, &s), ==, QERR_NOT_PDF);
	g_assert_cmpint(rows_stored(), ==, with_first);
	QT_OK(one_file(200000, 10, NULL, 150000, &s), NULL); /* the first file's twin, in the same transaction */
	g_assert_true(s.existing);
	g_assert_cmpint(s.doc_id, ==, first.doc_id);
	struct store_writer_options o = {.require_pdf = true};
	struct store_writer *w = NULL;
	QT_OK(store_writer_open(db, vault, &o, &w, &err), err);
	QT_OK(stream_content(w, 12, 70000, &err), err);
	store_writer_abort(w); /* abandoned half way */
	QT_OK(db_commit(db, &err), err);
	/* one document: its row, original and name, its chunks, its job */
	g_assert_cmpint(rows_stored(), ==, before + 1 + 2 + 3 + 1);
	check_original(first.doc_id, 10, 150000);
	/* a whole transaction rolled back leaves nothing either */
	QT_OK(db_begin(db, &err), err);
	QT_OK(one_file(0, 13, NULL, 1000, &s), NULL);
	db_rollback(db);
	g_assert_cmpint(rows_stored(), ==, before + 7);
}

struct racer {
	struct db *conn;
	struct store_writer *w;
	struct store_submitted got;
	enum qerr e;
};

static gpointer finish_racer(gpointer p)
{
	struct racer *r = p;
	r->e = store_writer_finish(r->w, "racer.pdf", &r->got, NULL);
	return NULL;
}

/* Two uploads of the same content at once: the second's hash update waits for the first
 * transaction, then finds its document. */
static void test_concurrent_same_content(void)
{
	g_autofree char *err = NULL;
	struct db *other = pgtest_connect();
	struct store_writer_options o = {.require_pdf = true};
	struct racer r = {.conn = other};
	int64_t before = count("SELECT count(*) FROM documents");
	QT_OK(db_begin(db, &err), err);
	QT_OK(db_begin(other, &err), err);
	struct store_submitted mine = stream_file(db, 20, 100000, "mine.pdf");
	QT_OK(store_writer_open(other, vault, &o, &r.w, &err), err);
	QT_OK(stream_content(r.w, 20, 100000, &err), err);
	GThread *t = g_thread_new("racer", finish_racer, &r);
	g_usleep(300 * 1000); /* the racer is now waiting on the unique index */
	QT_OK(db_commit(db, &err), err);
	g_thread_join(t);
	QT_OK(r.e, "racer");
	QT_OK(db_commit(other, &err), err);
	g_assert_true(r.got.existing);
	g_assert_cmpint(r.got.doc_id, ==, mine.doc_id);
	g_assert_cmpint(count("SELECT count(*) FROM documents"), ==, before + 1);
	db_close(other);
}

static void test_idempotency_keys(void)
{
	g_autofree char *err = NULL;
	struct store_submitted s = {0}, found = {0};
	bool hit = true;
	QT_OK(store_find_key(db, vault, "upload-1", &found, &hit, &err), err);
	g_assert_false(hit);
	QT_OK(db_begin(db, &err), err);
	s = stream_file(db, 30, 5000, "k.pdf");
	QT_OK(store_set_key(db, vault, s.doc_id, "upload-1", &err), err);
	QT_OK(db_commit(db, &err), err);
	QT_OK(store_find_key(db, vault, "upload-1", &found, &hit, &err), err);
	g_assert_true(hit && found.existing);
	g_assert_cmpint(found.doc_id, ==, s.doc_id);
	g_assert_cmpint(found.job_id, ==, s.job_id);
	QT_OK(db_begin(db, &err), err);
	struct store_submitted t = stream_file(db, 31, 5000, "k2.pdf");
	g_assert_cmpint(store_set_key(db, vault, t.doc_id, "upload-1", &err), ==, QERR_CONFLICT);
	db_rollback(db);
	g_autofree char *longkey = g_strnfill(STORE_MAX_IDEMPOTENCY_KEY + 1, 'k');
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(store_find_key(db, vault, longkey, &found, &hit, &err), ==, QERR_BAD_INPUT);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	db = pgtest_start();
	vault = pgtest_vault(NULL);
	g_test_add_func("/store/stream/bounded-memory", test_bounded_memory);
	g_test_add_func("/store/stream/refusals-leave-nothing", test_refusals_leave_nothing);
	g_test_add_func("/store/stream/concurrent-same-content", test_concurrent_same_content);
	g_test_add_func("/store/stream/idempotency-keys", test_idempotency_keys);
	int rc = g_test_run();
	db_close(db);
	pgtest_stop();
	return rc;
}
