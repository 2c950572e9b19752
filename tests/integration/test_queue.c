/* The job queue against a real PostgreSQL, in process: claim order and index,
 * concurrent claims, heartbeats, the reaper (a requeued job keeps its place),
 * fenced late completion, cancel and
 * retry, idempotent submission, retention, progress, wake-up by NOTIFY, and the
 * worker pool with several threads. */
#include <glib.h>
#include <string.h>

#include "core/db.h"
#include "core/vault.h"
#include "pipeline/queue.h"
#include "pipeline/store.h"
#include "pipeline/worker.h"
#include "tests/integration/pgtest.h"
#include "tests/integration/test_queue_util.h"

static struct qt t;

/* Every test starts with an empty queue. */
static void clear_queue(void) { qt_exec(t.db, "DELETE FROM jobs"); }

static struct job claim_one(struct db *db, int lease_s)
{
	struct job j = {0};
	bool found = false;
	g_autofree char *err = NULL;
	QT_OK(queue_claim(db, "test", lease_s, &j, &found, &err), err);
	g_assert_true(found);
	return j;
}

static bool claim_none(struct db *db)
{
	struct job j = {0};
	bool found = true;
	g_autofree char *err = NULL;
	QT_OK(queue_claim(db, "test", 60, &j, &found, &err), err);
	return !found;
}

static char *state_of(int64_t job) { return qt_text(t.db, "SELECT state FROM jobs WHERE id = %lld", (long long)job); }

static void test_claim_order_and_schedule(void)
{
	clear_queue();
	int64_t low = qt_submit(&t, "ORD-LOW", 1, 0, NULL);
	int64_t high = qt_submit(&t, "ORD-HIGH", 1, 5, NULL);
	int64_t low2 = qt_submit(&t, "ORD-LOW2", 1, 0, NULL);
	/* a scheduled job with the highest priority waits for its time */
	int64_t doc = 0;
	int64_t later = qt_submit(&t, "ORD-LATER", 1, 9, &doc);
	qt_exec(t.db, "UPDATE jobs SET run_at = now() + interval '1 hour' WHERE id = %lld", (long long)later);
	g_assert_cmpint(claim_one(t.db, 60).id, ==, high);
	g_assert_cmpint(claim_one(t.db, 60).id, ==, low);
	g_assert_cmpint(claim_one(t.db, 60).id, ==, low2);
	g_assert_true(claim_none(t.db));
	int64_t due = -1;
	g_autofree char *err = NULL;
	QT_OK(queue_next_due_ms(t.db, &due, &err), err);
	g_assert_cmpint(due, >, 3500 * 1000);
	g_assert_cmpint(due, <=, 3600 * 1000);
	/* queue_add's own schedule */
	int64_t j2 = 0;
	struct queue_new n = {.priority = 1, .delay_s = 3600};
	QT_OK(queue_add(t.db, doc, &n, &j2, &err), err);
	g_assert_cmpint(qt_int(t.db, "SELECT (run_at > now() + interval '59 minutes')::int FROM jobs WHERE id = %lld",
	                       (long long)j2), ==, 1);
	qt_exec(t.db, "UPDATE jobs SET run_at = now() WHERE id = %lld", (long long)later);
	g_assert_cmpint(claim_one(t.db, 60).id, ==, later);
}

static void test_claim_uses_index(void)
{
	struct db *db = qt_connect(&t);
	g_autofree char *err = NULL;
	/* Rule out the sequential scan a tiny table would get, to see which index the query can use. */
	QT_OK(db_exec(db, "SET enable_seqscan = off", &err), err);
	struct db_res *res = NULL;
	QT_OK(db_query(db,
	               "EXPLAIN SELECT id FROM jobs WHERE state = 'queued' AND run_at <= now()"
	               " ORDER BY priority DESC, run_at, id FOR UPDATE SKIP LOCKED LIMIT 1",
	               0, NULL, &res, &err),
	      err);
	bool uses_index = false;
	for (int r = 0; r < db_res_rows(res); r++) {
		uses_index |= strstr(db_res_text(res, r, 0), "Index Scan using jobs_claim_idx") != NULL;
		g_assert_null(strstr(db_res_text(res, r, 0), "Sort")); /* the index gives the order */
	}
	g_assert_true(uses_index);
	db_res_free(res);
	db_close(db);
}

#define RACE_JOBS 200
#define RACE_THREADS 4

struct racer {
	struct db *db;
	GArray *ids;
};

static gpointer race(gpointer data)
{
	struct racer *r = data;
	for (;;) {
		struct job j = {0};
		bool found = false;
		g_autofree char *err = NULL;
		QT_OK(queue_claim(r->db, "racer", 60, &j, &found, &err), err);
		if (!found)
			return NULL;
		g_array_append_val(r->ids, j.id);
		QT_OK(queue_complete(r->db, &j, &err), err);
	}
}

static void test_two_workers_never_hold_the_same_job(void)
{
	clear_queue();
	int64_t doc = 0;
	qt_submit(&t, "RACE", 1, 0, &doc);
	g_autofree char *err = NULL;
	for (int i = 1; i < RACE_JOBS; i++) {
		int64_t id = 0;
		QT_OK(queue_enqueue(t.db, doc, 0, 3, &id, &err), err);
	}
	struct racer r[RACE_THREADS];
	GThread *th[RACE_THREADS];
	for (int i = 0; i < RACE_THREADS; i++) {
		r[i] = (struct racer){.db = qt_connect(&t), .ids = g_array_new(FALSE, FALSE, sizeof(int64_t))};
		th[i] = g_thread_new("racer", race, &r[i]);
	}
	g_autoptr(GHashTable) seen = g_hash_table_new(g_int64_hash, g_int64_equal);
	int total = 0, busy = 0;
	for (int i = 0; i < RACE_THREADS; i++) {
		g_thread_join(th[i]);
		for (guint k = 0; k < r[i].ids->len; k++) {
			int64_t *id = &g_array_index(r[i].ids, int64_t, k);
			g_assert_false(g_hash_table_contains(seen, id)); /* claimed twice */
			g_hash_table_add(seen, id);
		}
		total += (int)r[i].ids->len;
		busy += r[i].ids->len > 0;
	}
	g_assert_cmpint(total, ==, RACE_JOBS);
	g_assert_cmpint(busy, >=, 2);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM jobs WHERE state = 'done' AND attempts = 1"), ==, RACE_JOBS);
	for (int i = 0; i < RACE_THREADS; i++) {
		g_array_free(r[i].ids, TRUE);
		db_close(r[i].db);
	}
}

static void test_heartbeat_and_late_completion(void)
{
	clear_queue();
	int64_t doc = 0;
	int64_t id = qt_submit(&t, "LATE", 1, 0, &doc);
	struct db *other = qt_connect(&t);
	g_autofree char *err = NULL;
	struct job a = claim_one(t.db, 5);
	g_assert_cmpint(a.id, ==, id);
	/* a heartbeat pushes the expiry out to now + lease */
	qt_exec(t.db, "UPDATE jobs SET lease_expires_at = now() + interval '1 second' WHERE id = %lld", (long long)id);
	bool held = false;
	QT_OK(queue_heartbeat(t.db, &a, 1, &held, &err), err);
	g_assert_true(held);
	g_assert_cmpint(qt_int(t.db, "SELECT (lease_expires_at > now() + interval '4 seconds')::int FROM jobs"
	                             " WHERE id = %lld", (long long)id), ==, 1);
	/* the worker stalls past its lease: the reaper requeues, another worker takes it */
	qt_exec(t.db, "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %lld", (long long)id);
	int requeued = 0, dead = 0;
	QT_OK(queue_reap(other, &requeued, &dead, &err), err);
	g_assert_cmpint(requeued, ==, 1);
	g_assert_cmpint(dead, ==, 0);
	struct job b = claim_one(other, 60);
	g_assert_cmpint(b.id, ==, id);
	g_assert_cmpint(b.attempt, ==, 2);
	g_assert_cmpstr(a.lease_token, !=, b.lease_token);
	/* the first worker wakes up: its heartbeat, progress, completion and failure are all refused */
	QT_OK(queue_heartbeat(t.db, &a, 1, &held, &err), err);
	g_assert_false(held);
	g_assert_cmpint(queue_progress(t.db, &a, "late", &err), ==, QERR_CONFLICT);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(queue_complete(t.db, &a, &err), ==, QERR_CONFLICT);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(queue_fail(t.db, &a, QERR_PARSE_FAILED, "late failure", &err), ==, QERR_CONFLICT);
	g_clear_pointer(&err, g_free);
	g_autofree char *s1 = state_of(id);
	g_assert_cmpstr(s1, ==, "running");
	QT_OK(queue_complete(other, &b, &err), err);
	g_autofree char *s2 = state_of(id);
	g_assert_cmpstr(s2, ==, "done");
	g_assert_cmpint(queue_complete(t.db, &a, &err), ==, QERR_CONFLICT);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM audit_log WHERE action = 'job.lease_expired'"
	                             " AND object_id = %lld", (long long)doc), ==, 1);
	db_close(other);
}

static void test_reaper_declares_dead(void)
{
	clear_queue();
	int64_t doc = 0;
	int64_t id = qt_submit(&t, "DEAD", 1, 0, &doc);
	g_autofree char *err = NULL;
	for (int attempt = 1; attempt <= 3; attempt++) {
		struct job j = claim_one(t.db, 60);
		g_assert_cmpint(j.attempt, ==, attempt);
		qt_exec(t.db, "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %lld",
		        (long long)id);
		int requeued = 0, dead = 0;
		QT_OK(queue_reap(t.db, &requeued, &dead, &err), err);
		g_assert_cmpint(requeued, ==, attempt < 3);
		g_assert_cmpint(dead, ==, attempt == 3);
	}
	g_autofree char *st = state_of(id);
	g_assert_cmpstr(st, ==, "dead");
	g_autofree char *why = qt_text(t.db, "SELECT last_error FROM jobs WHERE id = %lld", (long long)id);
	g_assert_nonnull(strstr(why, "lease of attempt 3 of 3 expired"));
	g_autofree char *ds = qt_text(t.db, "SELECT state FROM documents WHERE id = %lld", (long long)doc);
	g_assert_cmpstr(ds, ==, "failed");
	g_assert_true(claim_none(t.db));
}

/* A job put back after its lease expired, or released at shutdown, keeps its run-at and so
 * its place in line: it runs before jobs queued after it, never behind the backlog. */
static void test_requeue_keeps_place(void)
{
	clear_queue();
	int64_t first = qt_submit(&t, "PLACE-1", 1, 0, NULL);
	int64_t second = qt_submit(&t, "PLACE-2", 1, 0, NULL);
	g_autofree char *run_at = qt_text(t.db, "SELECT run_at FROM jobs WHERE id = %lld", (long long)first);
	g_autofree char *err = NULL;
	struct job a = claim_one(t.db, 60);
	g_assert_cmpint(a.id, ==, first);
	/* a backlog arrives while the first job runs; then its worker dies */
	int64_t third = qt_submit(&t, "PLACE-3", 1, 0, NULL);
	qt_exec(t.db, "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %lld",
	        (long long)first);
	int requeued = 0;
	QT_OK(queue_reap(t.db, &requeued, NULL, &err), err);
	g_assert_cmpint(requeued, ==, 1);
	g_autofree char *after_reap = qt_text(t.db, "SELECT run_at FROM jobs WHERE id = %lld", (long long)first);
	g_assert_cmpstr(after_reap, ==, run_at);
	struct job b = claim_one(t.db, 60);
	g_assert_cmpint(b.id, ==, first);
	g_assert_cmpint(b.attempt, ==, 2);
	/* handed back at a worker's shutdown: the same */
	QT_OK(queue_release(t.db, &b, "released at worker shutdown", &err), err);
	g_autofree char *after_release = qt_text(t.db, "SELECT run_at FROM jobs WHERE id = %lld", (long long)first);
	g_assert_cmpstr(after_release, ==, run_at);
	g_assert_cmpint(claim_one(t.db, 60).id, ==, first);
	g_assert_cmpint(claim_one(t.db, 60).id, ==, second);
	g_assert_cmpint(claim_one(t.db, 60).id, ==, third);
	g_assert_true(claim_none(t.db));
}

static void test_fail_backoff_and_messages(void)
{
	for (int i = 0; i < 50; i++) {
		int b1 = queue_backoff_s(1), b5 = queue_backoff_s(5), b30 = queue_backoff_s(30);
		g_assert_cmpint(b1, >=, 2);
		g_assert_cmpint(b1, <=, 3);
		g_assert_cmpint(b5, >=, 32);
		g_assert_cmpint(b5, <=, 48);
		g_assert_cmpint(b30, >=, 600); /* capped */
		g_assert_cmpint(b30, <=, 900);
	}
	clear_queue();
	int64_t id = qt_submit(&t, "MSG", 1, 0, NULL);
	struct job j = claim_one(t.db, 60);
	g_autofree char *err = NULL;
	g_autofree char *longmsg = g_strnfill(10000, 'x');
	QT_OK(queue_fail(t.db, &j, QERR_DB_UNAVAILABLE, longmsg, &err), err);
	g_assert_cmpint(qt_int(t.db, "SELECT length(last_error) FROM jobs WHERE id = %lld", (long long)id), <=,
	                QUEUE_MAX_ERROR);
	g_assert_cmpint(qt_int(t.db, "SELECT (run_at > now() + interval '1 second')::int FROM jobs WHERE id = %lld",
	                       (long long)id), ==, 1);
}

static void test_cancel_and_retry(void)
{
	clear_queue();
	int64_t doc = 0;
	int64_t queued = qt_submit(&t, "CANCEL-Q", 1, 0, &doc);
	g_autofree char *err = NULL;
	QT_OK(queue_cancel(t.db, queued, "cli:test", &err), err);
	g_autofree char *s1 = state_of(queued);
	g_assert_cmpstr(s1, ==, "cancelled");
	g_autofree char *d1 = qt_text(t.db, "SELECT state FROM documents WHERE id = %lld", (long long)doc);
	g_assert_cmpstr(d1, ==, "cancelled");
	g_assert_true(claim_none(t.db));
	g_assert_cmpint(queue_cancel(t.db, queued, "cli:test", &err), ==, QERR_CONFLICT);
	g_assert_nonnull(strstr(err, "cancelled"));
	g_clear_pointer(&err, g_free);
	QT_OK(queue_retry(t.db, queued, "cli:test", &err), err);
	struct job j = claim_one(t.db, 60);
	g_assert_cmpint(j.id, ==, queued);
	g_assert_cmpint(j.attempt, ==, 1);
	/* cancelling a running job takes its lease away */
	QT_OK(queue_cancel(t.db, queued, "cli:test", &err), err);
	g_assert_cmpint(queue_complete(t.db, &j, &err), ==, QERR_CONFLICT);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(queue_retry(t.db, 987654321, "cli:test", &err), ==, QERR_NOT_FOUND);
	g_clear_pointer(&err, g_free);
	QT_OK(queue_retry(t.db, queued, "cli:test", &err), err);
	j = claim_one(t.db, 60);
	QT_OK(queue_complete(t.db, &j, &err), err);
	g_assert_cmpint(queue_retry(t.db, queued, "cli:test", &err), ==, QERR_CONFLICT);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM audit_log WHERE object_id = %lld AND actor = 'cli:test'"
	                             " AND action IN ('job.cancelled', 'job.retried')", (long long)doc), ==, 4);
}

static void test_idempotent_submit(void)
{
	clear_queue();
	size_t l1 = 0, l2 = 0;
	g_autofree char *p1 = qt_invoice("IDEM-1", 1, &l1);
	g_autofree char *p2 = qt_invoice("IDEM-2", 1, &l2);
	struct store_submit_options o = {.idempotency_key = "upload-7f3a", .job = {.priority = 2}};
	struct store_submitted a, b, c, d;
	g_autofree char *err = NULL;
	QT_OK(store_submit_with(t.db, t.vault, "a.pdf", p1, l1, "test", &o, &a, &err), err);
	/* the same key with other bytes (a retried upload): the same document, no second job */
	QT_OK(store_submit_with(t.db, t.vault, "a.pdf", p2, l2, "test", &o, &b, &err), err);
	g_assert_false(a.existing);
	g_assert_true(b.existing);
	g_assert_cmpint(a.doc_id, ==, b.doc_id);
	g_assert_cmpint(a.job_id, ==, b.job_id);
	/* the same content without a key: the same document too */
	QT_OK(store_submit(t.db, t.vault, "b.pdf", p1, l1, "test", 3, &c, &err), err);
	g_assert_true(c.existing);
	g_assert_cmpint(c.doc_id, ==, a.doc_id);
	/* other content, no key: a new document */
	QT_OK(store_submit(t.db, t.vault, "b.pdf", p2, l2, "test", 3, &d, &err), err);
	g_assert_false(d.existing);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM jobs"), ==, 2);
	g_assert_cmpint(qt_int(t.db, "SELECT priority FROM jobs WHERE id = %lld", (long long)a.job_id), ==, 2);
	/* the key is stored only as a keyed hash */
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM documents WHERE position('upload-7f3a'::bytea IN"
	                             " coalesce(idempotency_mac, ''::bytea)) > 0"), ==, 0);
	g_autofree char *huge = g_strnfill(STORE_MAX_IDEMPOTENCY_KEY + 1, 'k');
	o.idempotency_key = huge;
	g_assert_cmpint(store_submit_with(t.db, t.vault, "a.pdf", p1, l1, "test", &o, &a, &err), ==, QERR_BAD_INPUT);
}

static void test_retention(void)
{
	clear_queue();
	int64_t done = qt_submit(&t, "RET-1", 1, 0, NULL), failed = qt_submit(&t, "RET-2", 1, 0, NULL);
	int64_t recent = qt_submit(&t, "RET-3", 1, 0, NULL);
	qt_exec(t.db, "UPDATE jobs SET state = 'done', finished_at = now() - interval '5 hours' WHERE id = %lld",
	        (long long)done);
	qt_exec(t.db, "UPDATE jobs SET state = 'failed', finished_at = now() - interval '5 hours' WHERE id = %lld",
	        (long long)failed);
	qt_exec(t.db, "UPDATE jobs SET state = 'done', finished_at = now() - interval '1 hour' WHERE id = %lld",
	        (long long)recent);
	int gone = -1;
	g_autofree char *err = NULL;
	QT_OK(queue_prune(t.db, 2, 0, &gone, &err), err);
	g_assert_cmpint(gone, ==, 1);
	QT_OK(queue_prune(t.db, 2, 4, &gone, &err), err);
	g_assert_cmpint(gone, ==, 1);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM jobs"), ==, 1);
	g_assert_cmpint(qt_int(t.db, "SELECT id FROM jobs"), ==, recent);
	/* the autovacuum settings of migration 0002 are on the table */
	g_autofree char *opts = qt_text(t.db, "SELECT array_to_string(reloptions, ',') FROM pg_class"
	                                      " WHERE relname = 'jobs'");
	g_assert_nonnull(strstr(opts, "autovacuum_vacuum_scale_factor=0.01"));
}

static void test_progress(void)
{
	clear_queue();
	int64_t id = qt_submit(&t, "PROG", 1, 0, NULL);
	struct job j = claim_one(t.db, 30);
	g_autofree char *err = NULL;
	QT_OK(queue_progress_pages(t.db, &j, "extracting", 3, 10, &err), err);
	g_autofree char *p = qt_text(t.db, "SELECT progress || ':' || progress_page || '/' || progress_pages FROM jobs"
	                                   " WHERE id = %lld", (long long)id);
	g_assert_cmpstr(p, ==, "extracting:3/10");
	QT_OK(queue_release(t.db, &j, "test release", &err), err);
	g_autofree char *s = state_of(id);
	g_assert_cmpstr(s, ==, "queued");
	g_assert_cmpint(qt_int(t.db, "SELECT attempts FROM jobs WHERE id = %lld", (long long)id), ==, 0);
	g_assert_cmpint(queue_progress(t.db, &j, "after release", &err), ==, QERR_CONFLICT);
	g_clear_pointer(&err, g_free);
	/* back in the queue, a job shows no pages of an earlier attempt, whichever way it went back */
#define NO_PAGES "SELECT count(*) FROM jobs WHERE id = %lld AND progress_page IS NULL AND progress_pages IS NULL"
	g_assert_cmpint(qt_int(t.db, NO_PAGES, (long long)id), ==, 1);
	j = claim_one(t.db, 30);
	g_assert_cmpint(qt_int(t.db, NO_PAGES, (long long)id), ==, 1);
	QT_OK(queue_progress_pages(t.db, &j, "extracting", 2, 10, &err), err);
	QT_OK(queue_fail(t.db, &j, QERR_TIMEOUT, "slow", &err), err);
	g_assert_cmpint(qt_int(t.db, NO_PAGES, (long long)id), ==, 1);
	qt_exec(t.db, "UPDATE jobs SET run_at = now() WHERE id = %lld", (long long)id);
	j = claim_one(t.db, 30);
	QT_OK(queue_progress_pages(t.db, &j, "extracting", 4, 10, &err), err);
	QT_OK(queue_fail(t.db, &j, QERR_PARSE_FAILED, "damaged", &err), err);
	/* a final failure keeps the page it stopped at */
	g_assert_cmpint(qt_int(t.db, "SELECT progress_page FROM jobs WHERE id = %lld", (long long)id), ==, 4);
	QT_OK(queue_retry(t.db, id, "test", &err), err);
	g_assert_cmpint(qt_int(t.db, NO_PAGES, (long long)id), ==, 1);
	/* the rules on the row's values hold (job_state and job_page domains) */
	g_autofree char *bad_state = g_strdup_printf("UPDATE jobs SET state = 'lost' WHERE id = %lld", (long long)id);
	g_autofree char *bad_page = g_strdup_printf("UPDATE jobs SET progress_page = -1 WHERE id = %lld", (long long)id);
	g_assert_cmpint(db_exec(t.db, bad_state, &err), ==, QERR_DB);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(db_exec(t.db, bad_page, &err), ==, QERR_DB);
}

struct notify_wait {
	struct db *db;
	gint64 woke;
};

static gpointer wait_for_notify(gpointer data)
{
	struct notify_wait *w = data;
	bool notified = false;
	g_autofree char *err = NULL;
	/* the bound only stops a hang: a notification, not the time limit, must end the wait */
	QT_OK(db_wait_notify(w->db, 120000, &notified, &err), err);
	w->woke = notified ? g_get_monotonic_time() : 0;
	return NULL;
}

static void test_notify_wakes_idle_worker(void)
{
	clear_queue();
	struct notify_wait w = {.db = qt_connect(&t)};
	g_autofree char *err = NULL;
	QT_OK(db_exec(w.db, "LISTEN " QUEUE_CHANNEL, &err), err);
	GThread *th = g_thread_new("listener", wait_for_notify, &w);
	g_usleep(200000);
	gint64 before = g_get_monotonic_time();
	qt_submit(&t, "WAKE", 1, 0, NULL);
	g_thread_join(th);
	g_assert_cmpint(w.woke, >, 0);
	double ms = (double)(w.woke - before) / 1000.0;
	/* how fast is for the queue benchmark to say; a loaded machine may take longer than a poll */
	g_test_message("notification arrived %.1f ms after the submission began", ms);
	db_close(w.db);
}

static void test_worker_pool_threads(void)
{
	clear_queue();
	enum { N = 12 };
	int64_t docs[N];
	for (int i = 0; i < N; i++) {
		g_autofree char *num = g_strdup_printf("POOL-%d", i);
		qt_submit(&t, num, 1, 0, &docs[i]);
	}
	int64_t bad = qt_submit_damaged(&t, 1);
	struct worker_options opt = {.name = "pool-test", .lease_s = 30, .drain = true,
	                             .extract = {.limits = {.timeout_s = 30, .memory_bytes = (size_t)2048 << 20,
	                                                    .max_pages = 10}},
	                             .conninfo = t.conninfo, .concurrency = 3, .retention_h = 1};
	struct worker_stats stats = {0};
	g_autofree char *err = NULL;
	QT_OK(worker_run(NULL, t.vault, &opt, NULL, &stats, &err), err);
	g_assert_cmpint(stats.done, ==, N);
	g_assert_cmpint(stats.failed, ==, 1);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM jobs WHERE state = 'done' AND attempts = 1"), ==, N);
	g_autofree char *bs = state_of(bad);
	g_assert_cmpstr(bs, ==, "failed");
	g_autofree char *why = qt_text(t.db, "SELECT last_error FROM jobs WHERE id = %lld", (long long)bad);
	g_assert_cmpuint(strlen(why), >, 10); /* the parser's message, whatever the damage found */
	for (int i = 0; i < N; i++) {
		g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM audit_log WHERE action = 'job.completed'"
		                             " AND object_id = %lld", (long long)docs[i]), ==, 1);
		g_autofree char *ds = qt_text(t.db, "SELECT state FROM documents WHERE id = %lld", (long long)docs[i]);
		g_assert_cmpstr(ds, ==, "processed");
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	qt_start(&t);
	g_test_add_func("/queue/claim/priority-then-run-at", test_claim_order_and_schedule);
	g_test_add_func("/queue/claim/uses-claim-index", test_claim_uses_index);
	g_test_add_func("/queue/claim/never-twice", test_two_workers_never_hold_the_same_job);
	g_test_add_func("/queue/lease/late-completion-ignored", test_heartbeat_and_late_completion);
	g_test_add_func("/queue/lease/reaper-declares-dead", test_reaper_declares_dead);
	g_test_add_func("/queue/lease/requeue-keeps-place", test_requeue_keeps_place);
	g_test_add_func("/queue/fail/backoff-and-messages", test_fail_backoff_and_messages);
	g_test_add_func("/queue/cancel-and-retry", test_cancel_and_retry);
	g_test_add_func("/queue/submit/idempotent", test_idempotent_submit);
	g_test_add_func("/queue/retention", test_retention);
	g_test_add_func("/queue/progress-and-release", test_progress);
	g_test_add_func("/queue/notify/wakes-idle-worker", test_notify_wakes_idle_worker);
	g_test_add_func("/worker/pool/threads", test_worker_pool_threads);
	int rc = g_test_run();
	qt_stop(&t);
	return rc;
}
