/* cmd_queue: the queue's subcommands: worker, status, retry, cancel.
 *
 * `quire worker` runs worker.concurrency (or --concurrency) job threads and a
 * keeper in one process; several such processes, on one host or several,
 * share one database. SIGTERM or SIGINT stops claiming, lets jobs in flight
 * finish for worker.grace_s seconds and then hands them back to the queue. */
#include "appliance/commands.h"

#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/config.h"
#include "appliance/lifecycle.h"
#include "appliance/pgembed.h"
#include "core/db.h"
#include "core/log.h"
#include "extractors/modelfields.h"
#include "extractors/sandbox.h"
#include "pipeline/queue.h"
#include "pipeline/worker.h"

static volatile int stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int cmd_worker(int argc, char **argv, struct config *cfg)
{
	gboolean drain = FALSE;
	int concurrency = cfg->worker_concurrency;
	GOptionEntry entries[] = {
		{"drain", 0, 0, G_OPTION_ARG_NONE, &drain, "Stop when no job is left to run (jobs waiting for a retry included)", NULL},
		{"concurrency", 'c', 0, G_OPTION_ARG_INT, &concurrency, "Jobs run at once (default worker.concurrency)", "N"},
		{NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "", "Process queued documents until SIGTERM or SIGINT.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	if (concurrency < 1 || concurrency > QUEUE_MAX_HEARTBEAT) {
		fprintf(stderr, "quire worker: --concurrency must be from 1 to %d\n", QUEUE_MAX_HEARTBEAT);
		return 2;
	}
	struct app app;
	g_autofree char *err = NULL;
	struct extract_options pre = extract_options_of(cfg);
	/* one parser started ahead per job thread; main() started the launcher */
	if (sandbox_start(&pre.limits, concurrency, &err))
		log_warn("the PDF parser does not start: %s; documents will fail until it does", err);
	g_clear_pointer(&err, g_free);
	if (app_open(cfg, APP_DB | APP_VAULT, &app, &err))
		return cmd_fail("worker", err);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	g_autofree char *name = g_strdup_printf("%s:%d", g_get_host_name(), (int)getpid());
	struct worker_options opt = {.name = name, .lease_s = cfg->lease_s, .drain = drain,
	                             .extract = extract_options_of(cfg),
	                             .conninfo = cfg->db_url[0] ? cfg->db_url : pgembed_conninfo(app.pg),
	                             .concurrency = concurrency, .grace_s = cfg->worker_grace_s,
	                             .poll_ms = cfg->worker_poll_ms, .retention_h = cfg->retention_h,
	                             .dead_retention_h = cfg->dead_retention_h};
	if (open_model(cfg, &opt.extract.model, &err) || lifecycle_started(&app, "worker", &err)) {
		modelfields_close(opt.extract.model);
		app_close(&app);
		return cmd_fail("worker", err);
	}
	/* The job threads open their own connections. */
	db_close(app.db);
	app.db = NULL;
	log_info("worker %s started: %d job thread(s)%s, fields by %s", name, concurrency, drain ? ", drain" : "",
	         opt.extract.model ? "model" : "rules");
	struct worker_stats stats = {0};
	int rc = 0;
	if (worker_run(NULL, app.vault, &opt, &stop_requested, &stats, &err))
		rc = cmd_fail("worker", err);
	else
		log_info("worker %s stopped: %d done, %d failed, %d handed back to the queue", name, stats.done,
		         stats.failed, stats.released);
	modelfields_close(opt.extract.model);
	lifecycle_stopped(opt.conninfo, "worker", rc ? "failed" : "ok");
	app_close(&app);
	return rc;
}

static void print_table(struct db_res *res, int cols, const char *const *headers)
{
	for (int c = 0; c < cols; c++)
		printf("%s%s", c ? "\t" : "  ", headers[c]);
	printf("\n");
	for (int r = 0; r < db_res_rows(res); r++) {
		for (int c = 0; c < cols; c++)
			printf("%s%s", c ? "\t" : "  ", db_res_text(res, r, c));
		printf("\n");
	}
}

/* One section of the status: a query, then either a table or lines built by fmt. */
static enum qerr section(struct db *db, const char *title, const char *sql, int cols, const char *const *headers,
                         char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db, sql, 0, NULL, &res, reterr);
	if (e)
		return e;
	if (db_res_rows(res) > 0) {
		printf("\n%s:\n", title);
		print_table(res, cols, headers);
	}
	db_res_free(res);
	return QERR_OK;
}

static enum qerr status_summary(struct db *db, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT state, count(*), count(*) FILTER (WHERE state = 'queued' AND run_at > now())"
	                       " FROM jobs GROUP BY state ORDER BY state",
	                       0, NULL, &res, reterr);
	if (e)
		return e;
	printf("jobs by state:\n");
	if (db_res_rows(res) == 0)
		printf("  (none)\n");
	for (int r = 0; r < db_res_rows(res); r++) {
		int64_t later = db_res_int(res, r, 2);
		printf("  %-10s %s", db_res_text(res, r, 0), db_res_text(res, r, 1));
		if (later > 0)
			printf(" (%lld scheduled for later)", (long long)later);
		printf("\n");
	}
	db_res_free(res);
	res = NULL;
	e = db_query(db,
	             "SELECT id, document_id, to_char(now() - run_at, 'HH24:MI:SS'), priority FROM jobs"
	             " WHERE state = 'queued' AND run_at <= now() ORDER BY run_at, id LIMIT 1",
	             0, NULL, &res, reterr);
	if (e)
		return e;
	if (db_res_rows(res) == 1)
		printf("oldest waiting: job %s (document %s, priority %s), waiting %s\n", db_res_text(res, 0, 0),
		       db_res_text(res, 0, 1), db_res_text(res, 0, 3), db_res_text(res, 0, 2));
	else
		printf("oldest waiting: none\n");
	db_res_free(res);
	res = NULL;
	e = db_query(db,
	             "SELECT count(*) FILTER (WHERE finished_at > now() - interval '1 minute'),"
	             " count(*) FILTER (WHERE finished_at > now() - interval '5 minutes'),"
	             " count(*), round(count(*) / 15.0, 1)"
	             " FROM jobs WHERE state = 'done' AND finished_at > now() - interval '15 minutes'",
	             0, NULL, &res, reterr);
	if (e)
		return e;
	printf("throughput: %s done in the last minute, %s in 5 minutes, %s in 15 minutes (%s per minute)\n",
	       db_res_text(res, 0, 0), db_res_text(res, 0, 1), db_res_text(res, 0, 2), db_res_text(res, 0, 3));
	db_res_free(res);
	return QERR_OK;
}

int cmd_status(int argc, char **argv, struct config *cfg)
{
	if (cmd_parse(&argc, &argv, "",
	              "Show the queue: jobs by state, the oldest waiting job, throughput, jobs running with their "
	              "progress, and failed and dead jobs with their errors.",
	              NULL))
		return 2;
	struct app app;
	g_autofree char *err = NULL;
	if (app_open(cfg, APP_DB, &app, &err))
		return cmd_fail("status", err);
	static const char *const running_h[] = {"job", "document", "attempt", "worker", "progress", "lease left"};
	static const char *const failed_h[] = {"job", "document", "state", "attempts", "finished (UTC)", "error"};
	enum qerr e = status_summary(app.db, &err);
	if (!e)
		e = section(app.db, "running",
		            "SELECT id, document_id, attempts || ' of ' || max_attempts, coalesce(worker, ''),"
		            " coalesce(progress, '') || CASE WHEN progress_pages > 0 THEN ', page ' || progress_page"
		            "   || ' of ' || progress_pages ELSE '' END,"
		            " coalesce(to_char(greatest(lease_expires_at - now(), '0'), 'HH24:MI:SS'), '')"
		            " FROM jobs WHERE state = 'running' ORDER BY id LIMIT 50",
		            6, running_h, &err);
	if (!e)
		e = section(app.db, "failed and dead (latest 20; `quire retry JOB` queues one again)",
		            "SELECT id, document_id, state, attempts,"
		            " coalesce(to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), ''),"
		            " replace(coalesce(last_error, ''), E'\\n', ' ')"
		            " FROM jobs WHERE state IN ('failed', 'dead') ORDER BY finished_at DESC NULLS LAST, id DESC"
		            " LIMIT 20",
		            6, failed_h, &err);
	app_close(&app);
	return e ? cmd_fail("status", err) : 0;
}

/* quire retry|cancel JOB...: each job in its own transaction; the exit status is 1 if any failed. */
static int job_action(int argc, char **argv, struct config *cfg, const char *what, const char *summary,
                      enum qerr (*action)(struct db *, int64_t, const char *, char **), const char *done)
{
	if (cmd_parse(&argc, &argv, "JOB...", summary, NULL))
		return 2;
	if (argc < 2)
		return cmd_fail(what, "give one or more job ids (see `quire status`)");
	for (int i = 1; i < argc; i++) {
		char *end = NULL;
		long long id = g_ascii_strtoll(argv[i], &end, 10);
		if (!end || *end || id <= 0)
			return cmd_fail(what, "job ids are positive numbers");
	}
	struct app app;
	g_autofree char *err = NULL;
	if (app_open(cfg, APP_DB | APP_VAULT, &app, &err))
		return cmd_fail(what, err);
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		g_clear_pointer(&err, g_free);
		if (action(app.db, g_ascii_strtoll(argv[i], NULL, 10), app.actor, &err))
			rc = cmd_fail(what, err);
		else
			printf("job %s %s\n", argv[i], done);
	}
	app_close(&app);
	return rc;
}

int cmd_retry(int argc, char **argv, struct config *cfg)
{
	return job_action(argc, argv, cfg, "retry",
	                  "Queue failed, dead or cancelled jobs again, now, with a fresh set of attempts.", queue_retry,
	                  "queued again");
}

int cmd_cancel(int argc, char **argv, struct config *cfg)
{
	return job_action(argc, argv, cfg, "cancel",
	                  "Cancel queued or running jobs; a running attempt loses its lease and its result is dropped.",
	                  queue_cancel, "cancelled");
}
