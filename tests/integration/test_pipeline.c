/* Integration tests against a real PostgreSQL: migrations, queue, audit, store, worker. */
#include <cairo-pdf.h>
#include <glib.h>
#include <string.h>

#include "appliance/app.h"
#include "core/audit.h"
#include "core/db.h"
#include "core/json.h"
#include "core/migrate.h"
#include "core/vault.h"
#include "pipeline/queue.h"
#include "pipeline/store.h"
#include "pipeline/worker.h"
#include "tests/integration/pgtest.h"
#include "tests/unit/test_pdf_fixtures.h"

static struct db *db;
static struct vault *vault;

static GBytes *invoice_pdf(const char *number)
{
	g_autofree char *dir = g_dir_make_tmp("quire-it-pdf-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "inv.pdf", NULL);
	cairo_surface_t *s = cairo_pdf_surface_create(path, 595, 842);
	cairo_t *cr = cairo_create(s);
	cairo_set_font_size(cr, 11);
	g_autofree char *num = g_strdup_printf("Invoice number: %s", number);
	const char *lines[] = {"Fabrikam Records Ltd", num, "Invoice date: 2026-02-01", "Total: 42.00 EUR"};
	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
		cairo_move_to(cr, 50, 60 + 16 * (double)i);
		cairo_show_text(cr, lines[i]);
	}
	cairo_destroy(cr);
	cairo_surface_destroy(s);
	gchar *data = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	return g_bytes_new_take(data, len);
}

static struct store_submitted submit_bytes(GBytes *pdf)
{
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct store_submitted s;
	g_autofree char *err = NULL;
	QT_OK(store_submit(db, vault, "inv.pdf", data, len, "test", 3, &s, &err), err);
	return s;
}

static struct store_submitted submit(const char *number)
{
	g_autoptr(GBytes) pdf = invoice_pdf(number);
	return submit_bytes(pdf);
}

static void test_migrate_idempotent_and_too_new(void)
{
	int n = 0, applied = -1;
	const struct migration *list = app_migrations(&n);
	g_assert_cmpint(n, >=, 1);
	g_autofree char *err = NULL;
	QT_OK(migrate_apply(db, list, n, &applied, &err), err);
	g_assert_cmpint(applied, ==, 0);
	QT_OK(migrate_check(db, list, n, &err), err);
	QT_OK(db_exec(db, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')", &err), err);
	g_assert_cmpint(migrate_check(db, list, n, &err), ==, QERR_SCHEMA_TOO_NEW);
	g_assert_nonnull(strstr(err, "9999"));
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(migrate_apply(db, list, n, NULL, &err), ==, QERR_SCHEMA_TOO_NEW);
	g_clear_pointer(&err, g_free);
	QT_OK(db_exec(db, "DELETE FROM schema_migrations WHERE version = 9999", &err), err);
}

static const struct db_stmt echo_stmt = {"test_echo", "SELECT $1::int + 1", 1};
static const struct db_stmt twice_stmt = {"test_twice", "SELECT $1::int * 2", 1};

static int64_t run_stmt(struct db *c, const struct db_stmt *st, const char *v)
{
	struct db_param p[1] = {DB_TEXT(v)};
	struct db_res *res = NULL;
	g_autofree char *err = NULL;
	QT_OK(db_run(c, st, p, &res, &err), err);
	int64_t n = db_res_int(res, 0, 0);
	db_res_free(res);
	return n;
}

static int64_t run_echo(struct db *c, const char *v) { return run_stmt(c, &echo_stmt, v); }

/* A prepared statement: prepared once, rolled back transactions keep it, and a connection that
 * lost it prepares it again (at once outside a transaction, at the next try inside one). */
static void test_prepared_statements(void)
{
	struct db *c = pgtest_connect();
	g_autofree char *err = NULL;
	g_assert_cmpint(run_echo(c, "1"), ==, 2);
	g_assert_cmpint(run_echo(c, "41"), ==, 42);
	struct db_res *res = NULL;
	QT_OK(db_query(c, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'test_echo'", 0, NULL, &res, &err),
	      err);
	g_assert_cmpint(db_res_int(res, 0, 0), ==, 1);
	g_clear_pointer(&res, db_res_free);
	QT_OK(db_begin(c, &err), err);
	g_assert_cmpint(run_echo(c, "2"), ==, 3);
	db_rollback(c);
	g_assert_cmpint(run_echo(c, "3"), ==, 4);
	/* bad input is the statement's error, not a lost statement */
	struct db_param bad[1] = {DB_TEXT("x")};
	g_assert_cmpint(db_run(c, &echo_stmt, bad, NULL, &err), ==, QERR_DB);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(run_stmt(c, &twice_stmt, "4"), ==, 8);
	QT_OK(db_exec(c, "DISCARD ALL", &err), err);
	g_assert_cmpint(run_echo(c, "4"), ==, 5);
	g_assert_cmpint(run_stmt(c, &twice_stmt, "5"), ==, 10);
	g_assert_cmpint(run_echo(c, "5"), ==, 6);
	QT_OK(db_exec(c, "DEALLOCATE test_echo", &err), err);
	QT_OK(db_begin(c, &err), err);
	struct db_param p[1] = {DB_TEXT("5")};
	g_assert_cmpint(db_run(c, &echo_stmt, p, NULL, &err), ==, QERR_BUSY);
	g_assert_nonnull(strstr(err, "prepared"));
	g_clear_pointer(&err, g_free);
	db_rollback(c);
	g_assert_cmpint(run_echo(c, "6"), ==, 7);
	db_close(c);
}

static void test_claim_skips_locked(void)
{
	struct store_submitted a = submit("SKIP-1"), b = submit("SKIP-2");
	struct db *other = pgtest_connect();
	g_autofree char *err = NULL;
	struct job j1 = {0}, j2 = {0};
	bool f1 = false, f2 = false;
	QT_OK(db_begin(db, &err), err);
	QT_OK(queue_claim(db, "w1", 60, &j1, &f1, &err), err);
	/* j1's row stays locked until commit: the other worker must skip it, not wait */
	QT_OK(queue_claim(other, "w2", 60, &j2, &f2, &err), err);
	QT_OK(db_commit(db, &err), err);
	g_assert_true(f1 && f2);
	g_assert_cmpint(j1.id, !=, j2.id);
	g_assert_true((j1.document_id == a.doc_id && j2.document_id == b.doc_id) ||
	              (j1.document_id == b.doc_id && j2.document_id == a.doc_id));
	g_assert_cmpint(j1.attempt, ==, 1);
	QT_OK(queue_complete(db, &j1, &err), err);
	QT_OK(queue_complete(other, &j2, &err), err);
	db_close(other);
}

static void test_fenced_completion(void)
{
	submit("FENCE-1");
	struct job j = {0};
	bool found = false;
	g_autofree char *err = NULL;
	QT_OK(queue_claim(db, "w1", 60, &j, &found, &err), err);
	g_assert_true(found);
	/* the lease expired and another attempt took the job: a new token */
	g_autofree char *sql = g_strdup_printf("UPDATE jobs SET lease_token = gen_random_uuid() WHERE id = %lld",
	                                       (long long)j.id);
	QT_OK(db_exec(db, sql, &err), err);
	g_assert_cmpint(queue_complete(db, &j, &err), ==, QERR_CONFLICT);
	g_assert_nonnull(strstr(err, "lease lost"));
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(queue_fail(db, &j, QERR_PARSE_FAILED, "x", &err), ==, QERR_CONFLICT);
	g_clear_pointer(&err, g_free);
	struct db_res *res = NULL;
	g_autofree char *q = g_strdup_printf("SELECT state FROM jobs WHERE id = %lld", (long long)j.id);
	QT_OK(db_query(db, q, 0, NULL, &res, &err), err);
	g_assert_cmpstr(db_res_text(res, 0, 0), ==, "running");
	db_res_free(res);
	QT_OK(db_exec(db, "UPDATE jobs SET state = 'cancelled' WHERE state = 'running'", &err), err);
}

static const char *job_state(int64_t id, struct db_res **hold)
{
	g_autofree char *q = g_strdup_printf("SELECT state, run_at > now(), coalesce(last_error, '') FROM jobs"
	                                     " WHERE id = %lld", (long long)id);
	g_autofree char *err = NULL;
	QT_OK(db_query(db, q, 0, NULL, hold, &err), err);
	return db_res_text(*hold, 0, 0);
}

static void test_retry_then_dead_and_permanent_failure(void)
{
	struct store_submitted s = submit("RETRY-1");
	g_autofree char *err = NULL;
	struct db_res *res = NULL;
	for (int attempt = 1; attempt <= 3; attempt++) {
		QT_OK(db_exec(db, "UPDATE jobs SET run_at = now() WHERE state = 'queued'", &err), err);
		struct job j = {0};
		bool found = false;
		QT_OK(queue_claim(db, "w", 60, &j, &found, &err), err);
		g_assert_true(found);
		g_assert_cmpint(j.id, ==, s.job_id);
		g_assert_cmpint(j.attempt, ==, attempt);
		QT_OK(queue_fail(db, &j, QERR_TIMEOUT, "model timed out", &err), err);
		const char *st = job_state(j.id, &res);
		g_assert_cmpstr(st, ==, attempt < 3 ? "queued" : "dead");
		if (attempt < 3)
			g_assert_cmpstr(db_res_text(res, 0, 1), ==, "t"); /* backoff: not due yet */
		g_assert_cmpstr(db_res_text(res, 0, 2), ==, "model timed out");
		db_res_free(res);
	}
	struct store_submitted p = submit("PERM-1");
	struct job j = {0};
	bool found = false;
	QT_OK(queue_claim(db, "w", 60, &j, &found, &err), err);
	g_assert_cmpint(j.id, ==, p.job_id);
	QT_OK(queue_fail(db, &j, QERR_NOT_PDF, "not a PDF", &err), err);
	g_assert_cmpstr(job_state(j.id, &res), ==, "failed");
	db_res_free(res);
}

static void test_audit_chain(void)
{
	g_autofree char *err = NULL;
	for (int i = 0; i < 3; i++) {
		struct audit_event ev = {.actor = "test", .action = "thing.done", .object_type = "document",
		                         .object_id = 100 + i, .outcome = "ok"};
		QT_OK(db_begin(db, &err), err);
		QT_OK(audit_append(db, &ev, &err), err);
		QT_OK(db_commit(db, &err), err);
	}
	int64_t n = 0;
	QT_OK(audit_verify(db, &n, &err), err);
	g_assert_cmpint(n, >=, 3);
	g_assert_cmpint(db_exec(db, "UPDATE audit_log SET outcome = 'failed' WHERE object_id = 101", &err), ==, QERR_DB);
	g_assert_nonnull(strstr(err, "append-only"));
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(db_exec(db, "DELETE FROM audit_log", &err), ==, QERR_DB);
	g_clear_pointer(&err, g_free);
	/* a superuser who disables the trigger can edit a row, but the chain shows it */
	QT_OK(db_exec(db,
	              "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;"
	              "UPDATE audit_log SET outcome = 'failed' WHERE object_id = 101;"
	              "ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update",
	              &err),
	      err);
	g_assert_cmpint(audit_verify(db, &n, &err), ==, QERR_CRYPTO);
	g_assert_nonnull(strstr(err, "audit chain broken at entry"));
	g_clear_pointer(&err, g_free);
	QT_OK(db_exec(db,
	              "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;"
	              "UPDATE audit_log SET outcome = 'ok' WHERE object_id = 101;"
	              "ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update",
	              &err),
	      err);
	QT_OK(audit_verify(db, &n, &err), err);
}

static void test_store_dedupe_and_binding(void)
{
	/* the same bytes twice (a PDF generated twice may differ in its timestamp) */
	g_autoptr(GBytes) pdf = invoice_pdf("DEDUPE-1");
	struct store_submitted a = submit_bytes(pdf), b = submit_bytes(pdf);
	g_assert_false(a.existing);
	g_assert_true(b.existing);
	g_assert_cmpint(a.doc_id, ==, b.doc_id);
	g_autofree char *err = NULL;
	struct vault_dek *dek = NULL;
	QT_OK(store_dek(db, vault, a.doc_id, &dek, &err), err);
	struct vault_buf buf = {0};
	QT_OK(store_get(db, dek, a.doc_id, "original", &buf, &err), err);
	g_assert_nonnull(memmem(buf.data, buf.len, "%PDF-", 5));
	vault_buf_free(&buf);
	QT_OK(store_get(db, dek, a.doc_id, "filename", &buf, &err), err);
	g_assert_cmpmem(buf.data, buf.len, "inv.pdf", 7);
	vault_buf_free(&buf);
	/* a payload copied to another document does not open there */
	struct store_submitted c = submit("DEDUPE-2");
	g_autofree char *sql = g_strdup_printf(
		"UPDATE payloads SET sealed = (SELECT sealed FROM payloads WHERE document_id = %lld AND purpose = 'filename')"
		" WHERE document_id = %lld AND purpose = 'filename'",
		(long long)a.doc_id, (long long)c.doc_id);
	QT_OK(db_exec(db, sql, &err), err);
	struct vault_dek *dek_c = NULL;
	QT_OK(store_dek(db, vault, c.doc_id, &dek_c, &err), err);
	g_assert_cmpint(store_get(db, dek_c, c.doc_id, "filename", &buf, &err), ==, QERR_CRYPTO);
	vault_dek_free(dek_c);
	vault_dek_free(dek);
	g_assert_cmpint(store_dek(db, vault, 999999, &dek, &err), ==, QERR_NOT_FOUND);
}

static void test_worker_drains_queue(void)
{
	g_autofree char *err = NULL;
	QT_OK(db_exec(db, "UPDATE jobs SET state = 'cancelled' WHERE state IN ('queued', 'running')", &err), err);
	struct store_submitted s = submit("WORK-77");
	struct worker_options opt = {.name = "test-worker", .lease_s = 60, .drain = true,
	                             .extract = {.limits = {.timeout_s = 30, .memory_bytes = (size_t)2048 << 20,
	                                                    .max_pages = 10}}};
	struct worker_stats stats = {0};
	QT_OK(worker_run(db, vault, &opt, NULL, &stats, &err), err);
	g_assert_cmpint(stats.done, ==, 1);
	g_assert_cmpint(stats.failed, ==, 0);
	struct vault_dek *dek = NULL;
	QT_OK(store_dek(db, vault, s.doc_id, &dek, &err), err);
	struct vault_buf buf = {0};
	QT_OK(store_get(db, dek, s.doc_id, "result", &buf, &err), err);
	struct json *r = NULL;
	QT_OK(json_parse((const char *)buf.data, buf.len, &r, &err), err);
	const struct json *f = json_get(r, "fields");
	g_assert_cmpstr(json_get_string(json_get(f, "invoice_number"), "value"), ==, "WORK-77");
	g_assert_cmpstr(json_get_string(json_get(f, "issue_date"), "value"), ==, "2026-02-01");
	double total = 0;
	g_assert_true(json_get_number(json_get(f, "total_amount"), "value", &total));
	g_assert_cmpfloat(total, ==, 42.0);
	json_free(r);
	vault_buf_free(&buf);
	vault_dek_free(dek);
	struct db_res *res = NULL;
	g_assert_cmpstr(job_state(s.job_id, &res), ==, "done");
	db_res_free(res);
}

/* A job waiting for another attempt after a transient error (queued, attempts > 0, run_at
 * ahead) keeps a draining worker until it has run. */
static void test_worker_drain_waits_for_retry(void)
{
	g_autofree char *err = NULL;
	QT_OK(db_exec(db, "UPDATE jobs SET state = 'cancelled' WHERE state IN ('queued', 'running')", &err), err);
	struct store_submitted s = submit("WORK-78");
	g_autofree char *q = g_strdup_printf("UPDATE jobs SET attempts = 1, run_at = now() + interval '2 seconds'"
	                                     " WHERE id = %lld",
	                                     (long long)s.job_id);
	QT_OK(db_exec(db, q, &err), err);
	struct worker_options opt = {.name = "test-worker", .lease_s = 60, .drain = true, .poll_ms = 200,
	                             .extract = {.limits = {.timeout_s = 30, .memory_bytes = (size_t)2048 << 20,
	                                                    .max_pages = 10}}};
	struct worker_stats stats = {0};
	gint64 t0 = g_get_monotonic_time();
	QT_OK(worker_run(db, vault, &opt, NULL, &stats, &err), err);
	g_assert_cmpint(stats.done, ==, 1);
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, G_USEC_PER_SEC); /* it waited for run_at */
	struct db_res *res = NULL;
	g_assert_cmpstr(job_state(s.job_id, &res), ==, "done");
	db_res_free(res);
}

static struct store_submitted submit_encrypted(const char *text, const char *password)
{
	g_autoptr(GBytes) pdf = fixture_encrypted(text, "s3cret-pw");
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);
	struct store_submit_options o = {.job = {.max_attempts = 3}, .doc_type = "invoice", .password = password};
	struct store_submitted s;
	g_autofree char *err = NULL;
	QT_OK(store_submit_with(db, vault, "locked.pdf", data, len, "test", &o, &s, &err), err);
	return s;
}

/* The password given at submission is stored sealed and opens the PDF in the worker; without
 * it the job fails at once (no retries) and says a password is needed. */
static void test_worker_encrypted_pdf(void)
{
	g_autofree char *err = NULL;
	QT_OK(db_exec(db, "UPDATE jobs SET state = 'cancelled' WHERE state IN ('queued', 'running')", &err), err);
	struct store_submitted with = submit_encrypted("Invoice number: ENC-2041", "s3cret-pw");
	struct store_submitted without = submit_encrypted("Invoice number: ENC-2042", NULL);
	struct db_res *res = NULL;
	g_autofree char *q = g_strdup_printf("SELECT count(*) FROM payloads WHERE document_id = %lld AND purpose ="
	                                     " 'password' AND position('s3cret-pw'::bytea in sealed) = 0",
	                                     (long long)with.doc_id);
	QT_OK(db_query(db, q, 0, NULL, &res, &err), err);
	g_assert_cmpstr(db_res_text(res, 0, 0), ==, "1"); /* there, and not in the clear */
	db_res_free(res);
	struct worker_options opt = {
	    .name = "test-worker",
	    .lease_s = 60,
	    .drain = true,
	    .extract = {.limits = {.timeout_s = 30, .memory_bytes = (size_t)2048 << 20, .max_pages = 10}}};
	struct worker_stats stats = {0};
	QT_OK(worker_run(db, vault, &opt, NULL, &stats, &err), err);
	g_assert_cmpint(stats.done, ==, 1);
	g_assert_cmpint(stats.failed, ==, 1);
	struct vault_dek *dek = NULL;
	QT_OK(store_dek(db, vault, with.doc_id, &dek, &err), err);
	struct vault_buf buf = {0};
	QT_OK(store_get(db, dek, with.doc_id, "result", &buf, &err), err);
	struct json *r = NULL;
	QT_OK(json_parse((const char *)buf.data, buf.len, &r, &err), err);
	g_assert_cmpstr(json_get_string(json_get(json_get(r, "fields"), "invoice_number"), "value"), ==, "ENC-2041");
	json_free(r);
	vault_buf_free(&buf);
	vault_dek_free(dek);
	g_assert_cmpstr(job_state(with.job_id, &res), ==, "done");
	db_res_free(res);
	g_assert_cmpstr(job_state(without.job_id, &res), ==, "failed");
	g_assert_nonnull(strstr(db_res_text(res, 0, 2), "password"));
	db_res_free(res);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	db = pgtest_start();
	vault = pgtest_vault(NULL);
	g_test_add_func("/migrate/idempotent-and-too-new", test_migrate_idempotent_and_too_new);
	g_test_add_func("/db/prepared-statements", test_prepared_statements);
	g_test_add_func("/queue/claim/skips-locked", test_claim_skips_locked);
	g_test_add_func("/queue/complete/fenced", test_fenced_completion);
	g_test_add_func("/queue/fail/retry-then-dead", test_retry_then_dead_and_permanent_failure);
	g_test_add_func("/audit/chain", test_audit_chain);
	g_test_add_func("/store/dedupe-and-binding", test_store_dedupe_and_binding);
	g_test_add_func("/worker/drains-queue", test_worker_drains_queue);
	g_test_add_func("/worker/encrypted-pdf", test_worker_encrypted_pdf);
	g_test_add_func("/worker/drain-waits-for-retry", test_worker_drain_waits_for_retry);
	int rc = g_test_run();
	db_close(db);
	pgtest_stop();
	return rc;
}
