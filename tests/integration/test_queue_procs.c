/* The job queue with real `quire worker` processes against a real PostgreSQL:
 * kill -9 in the middle of a job, a worker frozen past its lease whose late
 * completion must be ignored, SIGTERM in the middle of a job (finished within
 * the grace period, or handed back when the grace period ends), PostgreSQL
 * stopped and restarted under 500 jobs, and 1,000 jobs across 4 worker
 * processes with injected permanent failures.
 * "Completes once in effect" is checked on the durable traces: exactly one
 * job.completed audit entry per document, the job done, the document processed. */
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "core/db.h"
#include "tests/integration/test_queue_util.h"

static struct qt t;

#define LEASE_S 5

static void clear_queue(void) { qt_exec(t.db, "DELETE FROM jobs"); }

/* Every document of the current jobs completed exactly once, with its job done. */
static void assert_each_completed_once(int64_t want)
{
	struct db_res *res = NULL;
	if (db_query(t.db, "SELECT id, state, attempts, last_error FROM jobs WHERE state <> 'done' LIMIT 20", 0, NULL,
	             &res, NULL) == QERR_OK) {
		for (int r = 0; r < db_res_rows(res); r++)
			g_test_message("job %s %s after %s attempt(s): %s", db_res_text(res, r, 0), db_res_text(res, r, 1),
			               db_res_text(res, r, 2), db_res_text(res, r, 3));
		db_res_free(res);
	}
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM jobs WHERE state = 'done'"), ==, want);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM jobs j JOIN documents d ON d.id = j.document_id"
	                             " WHERE j.state = 'done' AND d.state = 'processed'"),
	                ==, want);
	/* no document of a done job has other than one completion in the audit log */
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM jobs j WHERE j.state = 'done' AND (SELECT count(*)"
	                             " FROM audit_log a WHERE a.action = 'job.completed' AND a.object_id = j.document_id)"
	                             " <> 1"),
	                ==, 0);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM jobs j WHERE j.state = 'done' AND (SELECT count(*)"
	                             " FROM payloads p WHERE p.document_id = j.document_id AND p.purpose = 'result') <> 1"),
	                ==, 0);
}

static void stop_worker(pid_t pid)
{
	kill(pid, SIGTERM);
	g_assert_cmpint(qt_wait(pid, 60), ==, 0);
}

/* Waits until the job is running under the given worker process, then freezes that process. */
static bool freeze_mid_job(int64_t job, pid_t pid)
{
	g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM jobs WHERE id = %lld AND state = 'running'"
	                                       " AND worker LIKE '%%:%d'",
	                                       (long long)job, (int)pid);
	if (!qt_until(t.db, 1, 90, sql)) /* generous: a loaded machine starts workers slowly */
		return false;
	kill(pid, SIGSTOP);
	/* still running after the freeze: the worker was really in the middle of it */
	return qt_int(t.db, "%s", sql) == 1;
}

static void test_kill9_mid_job(void)
{
	clear_queue();
	int64_t doc = 0;
	/* many pages, so the parse takes long enough to be caught in the middle */
	int64_t job = qt_submit(&t, "KILL-9", 1500, 0, &doc);
	pid_t w1 = qt_worker(&t, LEASE_S, NULL);
	g_assert_true(freeze_mid_job(job, w1));
	kill(w1, SIGKILL);
	g_assert_cmpint(qt_wait(w1, 10), ==, 128 + SIGKILL);
	pid_t w2 = qt_worker(&t, LEASE_S, NULL);
	g_autofree char *done = g_strdup_printf("SELECT count(*) FROM jobs WHERE id = %lld AND state = 'done'",
	                                        (long long)job);
	g_assert_true(qt_until(t.db, 1, 240, done));
	stop_worker(w2);
	g_assert_cmpint(qt_int(t.db, "SELECT attempts FROM jobs WHERE id = %lld", (long long)job), ==, 2);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM audit_log WHERE action = 'job.lease_expired'"
	                             " AND object_id = %lld", (long long)doc), ==, 1);
	g_autofree char *by = qt_text(t.db, "SELECT worker FROM jobs WHERE id = %lld", (long long)job);
	g_autofree char *w2s = g_strdup_printf(":%d", (int)w2);
	g_assert_true(g_str_has_suffix(by, w2s));
	assert_each_completed_once(1);
}

static void test_frozen_worker_late_completion_ignored(void)
{
	clear_queue();
	int64_t doc = 0;
	int64_t job = qt_submit(&t, "FROZEN", 1500, 0, &doc);
	pid_t w1 = qt_worker(&t, LEASE_S, NULL);
	g_assert_true(freeze_mid_job(job, w1));
	/* w1 is cut off past its lease; w2 takes the job over and completes it */
	pid_t w2 = qt_worker(&t, LEASE_S, NULL);
	g_autofree char *done = g_strdup_printf("SELECT count(*) FROM jobs WHERE id = %lld AND state = 'done'",
	                                        (long long)job);
	g_assert_true(qt_until(t.db, 1, 240, done));
	g_autofree char *token = qt_text(t.db, "SELECT finished_at FROM jobs WHERE id = %lld", (long long)job);
	/* w1 comes back and finishes its stale attempt: nothing of it may take effect */
	kill(w1, SIGCONT);
	g_usleep(3 * G_USEC_PER_SEC);
	stop_worker(w1);
	stop_worker(w2);
	g_autofree char *after = qt_text(t.db, "SELECT finished_at FROM jobs WHERE id = %lld", (long long)job);
	g_assert_cmpstr(token, ==, after);
	g_assert_cmpint(qt_int(t.db, "SELECT attempts FROM jobs WHERE id = %lld", (long long)job), ==, 2);
	assert_each_completed_once(1);
	g_autofree char *log = g_strdup_printf("%s/worker-%d.log", t.dir, (int)w1);
	g_autofree char *text = NULL;
	g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
	g_assert_nonnull(strstr(text, "lease"));
}

/* The heartbeat meets the worker's own completion: the completion's transaction holds the job
 * row (document row held by the test, so it cannot commit yet) when a heartbeat comes; once
 * both go on, the heartbeat finds the lease gone because the job is done. That is no lost
 * lease, and the worker must not say so. */
static void test_heartbeat_meets_own_completion(void)
{
	clear_queue();
	int64_t doc = 0;
	int64_t job = qt_submit(&t, "BEAT-RACE", 1500, 0, &doc);
	struct db *x = qt_connect(&t);
	pid_t w = qt_worker(&t, 5, NULL); /* lease 5 s: a heartbeat every second */
	g_autofree char *running = g_strdup_printf("SELECT count(*) FROM jobs WHERE id = %lld AND state = 'running'",
	                                           (long long)job);
	g_assert_true(qt_until(t.db, 1, 90, running));
	qt_exec(x, "BEGIN");
	qt_exec(x, "SELECT 1 FROM documents WHERE id = %lld FOR UPDATE", (long long)doc);
	g_assert_cmpint(qt_int(t.db, "%s", running), ==, 1); /* held before the worker could finish */
	/* the completion waits for the document row, and a heartbeat for the job row */
	g_assert_true(qt_until(t.db, 2, 90,
	                       "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
	                       " AND datname = current_database()"));
	qt_exec(x, "COMMIT");
	g_autofree char *done = g_strdup_printf("SELECT count(*) FROM jobs WHERE id = %lld AND state = 'done'",
	                                        (long long)job);
	g_assert_true(qt_until(t.db, 1, 60, done));
	g_assert_true(qt_until(t.db, 1, 60,
	                       "SELECT (count(*) = 0)::int FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
	                       " AND datname = current_database()"));
	stop_worker(w);
	db_close(x);
	assert_each_completed_once(1);
	g_autofree char *log = g_strdup_printf("%s/worker-%d.log", t.dir, (int)w);
	g_autofree char *text = NULL;
	g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
	g_autofree char *processed = g_strdup_printf("document %lld processed", (long long)doc);
	g_assert_nonnull(strstr(text, processed));
	g_assert_null(strstr(text, "lease lost"));
	g_assert_null(strstr(text, "outcome is dropped"));
}

/* Starts a worker with worker.grace_s = grace_s and waits until it runs the job. */
static pid_t worker_on_job(int64_t job, const char *grace_s)
{
	g_setenv("QUIRE_WORKER_GRACE_S", grace_s, TRUE);
	pid_t pid = qt_worker(&t, 30, NULL);
	g_unsetenv("QUIRE_WORKER_GRACE_S");
	g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM jobs WHERE id = %lld AND state = 'running'"
	                                       " AND worker LIKE '%%:%d'",
	                                       (long long)job, (int)pid);
	g_assert_true(qt_until(t.db, 1, 90, sql));
	return pid;
}

static int64_t seconds_since(gint64 t0) { return (g_get_monotonic_time() - t0) / G_USEC_PER_SEC; }

/* The parent of process pid, or 0. */
static pid_t parent_of(pid_t pid)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
	g_autofree char *stat = NULL;
	if (!g_file_get_contents(path, &stat, NULL, NULL))
		return 0;
	const char *after = strrchr(stat, ')'); /* "pid (comm) state ppid ..." */
	char state = 0;
	int ppid = 0;
	if (!after || sscanf(after + 1, " %c %d", &state, &ppid) != 2 || state == 'Z')
		return 0;
	return (pid_t)ppid;
}

/* The worker's parsers: the processes with a seccomp filter that its parser
 * launcher (a child of the worker) started; one works on the job, the others
 * wait for the next. */
static GArray *worker_parsers(pid_t worker)
{
	GArray *found = g_array_new(FALSE, FALSE, sizeof(pid_t));
	g_autoptr(GDir) proc = g_dir_open("/proc", 0, NULL);
	for (const char *name; proc && (name = g_dir_read_name(proc));) {
		if (!g_ascii_isdigit(name[0]))
			continue;
		pid_t pid = (pid_t)g_ascii_strtoll(name, NULL, 10);
		pid_t parent = parent_of(pid);
		if (!parent || (parent != worker && parent_of(parent) != worker))
			continue;
		g_autofree char *status_path = g_strdup_printf("/proc/%s/status", name);
		g_autofree char *status = NULL;
		if (g_file_get_contents(status_path, &status, NULL, NULL) && strstr(status, "\nSeccomp:\t2"))
			g_array_append_val(found, pid);
	}
	return found;
}

/* Sends sig to every parser of the worker; how many there were. */
static guint signal_parsers(pid_t worker, int sig)
{
	g_autoptr(GArray) parsers = worker_parsers(worker);
	for (guint i = 0; i < parsers->len; i++)
		kill(g_array_index(parsers, pid_t, i), sig);
	return parsers->len;
}

/* Holds the worker's parsers stopped (SIGSTOP), the one on its job among
 * them, so that the job lasts until release_parsers. */
static void hold_parsers(pid_t worker)
{
	guint held = 0;
	for (gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC; !held && g_get_monotonic_time() < end;)
		if (!(held = signal_parsers(worker, SIGSTOP)))
			g_usleep(2000);
	g_assert_cmpuint(held, >, 0);
}

static void release_parsers(pid_t worker) { signal_parsers(worker, SIGCONT); }

/* SIGTERM with a grace period long enough: the worker claims nothing more, finishes the job it
 * runs (held for a few seconds past the signal), and exits; the job is done once, by that
 * worker, on its first attempt. */
static void test_sigterm_finishes_within_grace(void)
{
	clear_queue();
	int64_t doc = 0;
	int64_t job = qt_submit(&t, "TERM-FINISH", 1500, 0, &doc);
	int64_t other = qt_submit(&t, "TERM-WAITING", 1, -1, NULL);
	pid_t w = worker_on_job(job, "120");
	hold_parsers(w);
	gint64 t0 = g_get_monotonic_time();
	kill(w, SIGTERM);
	/* still at it, job still held */
	g_assert_cmpint(qt_wait(w, 3), ==, -1);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM jobs WHERE id = %lld AND state = 'running'", (long long)job),
	                ==, 1);
	release_parsers(w);
	g_assert_cmpint(qt_wait(w, 120), ==, 0);
	g_test_message("the worker finished its job and exited %lld s after SIGTERM", (long long)seconds_since(t0));
	g_autofree char *state = qt_text(t.db, "SELECT state FROM jobs WHERE id = %lld", (long long)job);
	g_assert_cmpstr(state, ==, "done");
	g_autofree char *by = qt_text(t.db, "SELECT worker FROM jobs WHERE id = %lld", (long long)job);
	g_autofree char *ws = g_strdup_printf(":%d", (int)w);
	g_assert_true(g_str_has_suffix(by, ws));
	g_assert_cmpint(qt_int(t.db, "SELECT attempts FROM jobs WHERE id = %lld", (long long)job), ==, 1);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM audit_log WHERE action = 'job.released'"
	                             " AND object_id = %lld", (long long)doc), ==, 0);
	/* a stopping worker claims nothing new */
	g_autofree char *waiting = qt_text(t.db, "SELECT state FROM jobs WHERE id = %lld", (long long)other);
	g_assert_cmpstr(waiting, ==, "queued");
	qt_exec(t.db, "DELETE FROM jobs WHERE id = %lld", (long long)other);
	assert_each_completed_once(1);
}

/* SIGTERM with a grace period shorter than the job (its parser is held stopped): when the
 * grace period ends the job goes back to the queue without costing an attempt, while the
 * stopping worker still waits for its parser; that worker's own finish later takes no effect,
 * and the next worker completes the job exactly once. */
static void test_sigterm_hands_back_after_grace(void)
{
	clear_queue();
	int64_t doc = 0;
	int64_t job = qt_submit(&t, "TERM-RELEASE", 1500, 0, &doc);
	pid_t w1 = worker_on_job(job, "1");
	hold_parsers(w1);
	gint64 t0 = g_get_monotonic_time();
	kill(w1, SIGTERM);
	g_autofree char *queued = g_strdup_printf("SELECT count(*) FROM jobs WHERE id = %lld AND state = 'queued'",
	                                          (long long)job);
	/* the grace period (1 s) and the keeper's next turn, with room for a loaded machine */
	g_assert_true(qt_until(t.db, 1, 15, queued));
	g_test_message("job handed back %lld s after SIGTERM", (long long)seconds_since(t0));
	g_assert_cmpint(qt_int(t.db, "SELECT attempts FROM jobs WHERE id = %lld", (long long)job), ==, 0);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM audit_log WHERE action = 'job.released'"
	                             " AND object_id = %lld", (long long)doc), ==, 1);
	g_autofree char *doc_state = qt_text(t.db, "SELECT state FROM documents WHERE id = %lld", (long long)doc);
	g_assert_cmpstr(doc_state, ==, "queued");
	/* the stopping worker exits once its parse is over, and may no longer save the result */
	g_assert_cmpint(qt_wait(w1, 1), ==, -1);
	release_parsers(w1);
	g_assert_cmpint(qt_wait(w1, 240), ==, 0);
	g_test_message("the worker exited %lld s after SIGTERM", (long long)seconds_since(t0));
	g_assert_cmpint(qt_int(t.db, "%s", queued), ==, 1);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM audit_log WHERE action = 'job.completed'"
	                             " AND object_id = %lld", (long long)doc), ==, 0);
	pid_t w2 = qt_worker(&t, 30, NULL);
	g_autofree char *done = g_strdup_printf("SELECT count(*) FROM jobs WHERE id = %lld AND state = 'done'",
	                                        (long long)job);
	g_assert_true(qt_until(t.db, 1, 240, done));
	stop_worker(w2);
	g_autofree char *by = qt_text(t.db, "SELECT worker FROM jobs WHERE id = %lld", (long long)job);
	g_autofree char *w2s = g_strdup_printf(":%d", (int)w2);
	g_assert_true(g_str_has_suffix(by, w2s));
	g_assert_cmpint(qt_int(t.db, "SELECT attempts FROM jobs WHERE id = %lld", (long long)job), ==, 1);
	assert_each_completed_once(1);
}

#define RESTART_JOBS 500

static void test_postgres_restart_mid_run(void)
{
	clear_queue();
	for (int i = 0; i < RESTART_JOBS; i++) {
		g_autofree char *num = g_strdup_printf("RESTART-%d", i);
		qt_submit(&t, num, 1, 0, NULL);
	}
	pid_t w[2];
	for (int i = 0; i < 2; i++)
		w[i] = qt_worker(&t, LEASE_S, "--concurrency", "2", NULL);
	g_assert_true(qt_until(t.db, RESTART_JOBS / 5, 120, "SELECT count(*) FROM jobs WHERE state = 'done'"));
	qt_pg_down(&t);
	g_usleep(2 * G_USEC_PER_SEC);
	qt_pg_up(&t);
	db_close(t.db);
	t.db = qt_connect(&t);
	int64_t at_restart = qt_int(t.db, "SELECT count(*) FROM jobs WHERE state = 'done'");
	g_test_message("%lld of %d jobs done when PostgreSQL came back", (long long)at_restart, RESTART_JOBS);
	g_assert_cmpint(at_restart, <, RESTART_JOBS);
	g_assert_true(qt_until(t.db, RESTART_JOBS, 240,
	                       "SELECT count(*) FROM jobs WHERE state IN ('done', 'failed', 'dead', 'cancelled')"));
	for (int i = 0; i < 2; i++)
		stop_worker(w[i]);
	assert_each_completed_once(RESTART_JOBS);
}

#define MANY_JOBS 1000
#define DAMAGED 10

static void test_many_jobs_four_workers(void)
{
	clear_queue();
	GHashTable *damaged = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	for (int i = 0; i < MANY_JOBS; i++) {
		if (i % (MANY_JOBS / DAMAGED) == 7) {
			int64_t *id = g_new(int64_t, 1);
			*id = qt_submit_damaged(&t, i);
			g_hash_table_add(damaged, id);
			continue;
		}
		g_autofree char *num = g_strdup_printf("MANY-%d", i);
		qt_submit(&t, num, 1, i % 3, NULL);
	}
	g_assert_cmpint(g_hash_table_size(damaged), ==, DAMAGED);
	pid_t w[4];
	for (int i = 0; i < 4; i++)
		w[i] = qt_worker(&t, 30, NULL);
	g_assert_true(qt_until(t.db, MANY_JOBS, 300,
	                       "SELECT count(*) FROM jobs WHERE state IN ('done', 'failed', 'dead', 'cancelled')"));
	for (int i = 0; i < 4; i++)
		stop_worker(w[i]);
	assert_each_completed_once(MANY_JOBS - DAMAGED);
	/* failures only where injected, each failed at once with the parser's message */
	struct db_res *res = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(db_query(t.db, "SELECT id, attempts, last_error FROM jobs WHERE state <> 'done'", 0, NULL, &res,
	                         &err),
	                ==, QERR_OK);
	g_assert_cmpint(db_res_rows(res), ==, DAMAGED);
	for (int r = 0; r < db_res_rows(res); r++) {
		int64_t id = db_res_int(res, r, 0);
		g_assert_true(g_hash_table_contains(damaged, &id));
		g_assert_cmpint(db_res_int(res, r, 1), ==, 1);
		g_assert_cmpuint(strlen(db_res_text(res, r, 2)), >, 10);
	}
	db_res_free(res);
	g_assert_cmpint(qt_int(t.db, "SELECT count(*) FROM jobs WHERE state = 'failed'"), ==, DAMAGED);
	/* all four processes took part */
	g_assert_cmpint(qt_int(t.db, "SELECT count(DISTINCT worker) FROM jobs"), ==, 4);
	g_hash_table_destroy(damaged);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	qt_start(&t);
	g_test_add_func("/queue/procs/kill-9-mid-job", test_kill9_mid_job);
	g_test_add_func("/queue/procs/frozen-worker-late-completion-ignored", test_frozen_worker_late_completion_ignored);
	g_test_add_func("/queue/procs/heartbeat-meets-own-completion", test_heartbeat_meets_own_completion);
	g_test_add_func("/queue/procs/sigterm-finishes-within-grace", test_sigterm_finishes_within_grace);
	g_test_add_func("/queue/procs/sigterm-hands-back-after-grace", test_sigterm_hands_back_after_grace);
	g_test_add_func("/queue/procs/postgres-restart-500-jobs", test_postgres_restart_mid_run);
	g_test_add_func("/queue/procs/1000-jobs-4-workers", test_many_jobs_four_workers);
	int rc = g_test_run();
	qt_stop(&t);
	return rc;
}
