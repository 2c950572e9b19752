/* bench_queue: the job queue's throughput against a plain SKIP LOCKED loop.
 *
 * Starts a private PostgreSQL in a temporary directory, applies the
 * migrations, enqueues N no-op jobs with queue_add() (one transaction each,
 * NOTIFY included) and works them with C client threads, each on its own
 * connection, through queue_claim() + queue_complete() (lease, fresh token,
 * fenced completion). Then the reference: the minimal claim-and-complete loop
 * on a bare table in the same database, same clients, same wrapper, its two
 * statements sent with db_query() (parsed and planned by the server at each
 * call, as a minimal client does); and the same loop once more on prepared
 * statements (db_run(), as the queue sends its own). Each side runs ROUNDS
 * times, alternating; the best round of each is reported with the ratios.
 *
 * Usage: bench_queue [N] [CLIENTS]   (default 5000 jobs, 4 clients) */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "appliance/app.h"
#include "appliance/pgembed.h"
#include "core/db.h"
#include "core/migrate.h"
#include "pipeline/queue.h"

#define ROUNDS 3
#define MAX_CLIENTS 64

static const char *conninfo;

static void must(enum qerr e, const char *what, const char *err)
{
	if (e) {
		fprintf(stderr, "bench_queue: %s: %s\n", what, err ? err : qerr_str(e));
		exit(1);
	}
}

static struct db *connect_db(void)
{
	struct db *db = NULL;
	g_autofree char *err = NULL;
	must(db_connect(conninfo, &db, &err), "connect", err);
	return db;
}

static gpointer real_client(gpointer data)
{
	int *done = data;
	struct db *db = connect_db();
	for (;;) {
		struct job j = {0};
		bool found = false;
		g_autofree char *err = NULL;
		must(queue_claim(db, "bench", 60, &j, &found, &err), "claim", err);
		if (!found)
			break;
		must(queue_complete(db, &j, &err), "complete", err);
		(*done)++;
	}
	db_close(db);
	return NULL;
}

static const struct db_stmt plain_claim = {
	"bench_plain_claim",
	"UPDATE plain_jobs SET state = 'running' WHERE id = (SELECT id FROM plain_jobs"
	" WHERE state = 'queued' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id",
	0};
static const struct db_stmt plain_complete = {"bench_plain_complete",
                                              "UPDATE plain_jobs SET state = 'done' WHERE id = $1::bigint", 1};

/* The minimal loop: claim one row, mark it done; prepared or not. */
static void plain_loop(int *done, bool prepared)
{
	struct db *db = connect_db();
	for (;;) {
		struct db_res *res = NULL;
		g_autofree char *err = NULL;
		must(prepared ? db_run(db, &plain_claim, NULL, &res, &err)
		              : db_query(db, plain_claim.sql, 0, NULL, &res, &err),
		     "plain claim", err);
		if (db_res_rows(res) == 0) {
			db_res_free(res);
			break;
		}
		struct db_param p[1] = {DB_TEXT(db_res_text(res, 0, 0))};
		must(prepared ? db_run(db, &plain_complete, p, NULL, &err)
		              : db_query(db, plain_complete.sql, 1, p, NULL, &err),
		     "plain complete", err);
		db_res_free(res);
		(*done)++;
	}
	db_close(db);
}

static gpointer plain_client(gpointer data)
{
	plain_loop(data, false);
	return NULL;
}

static gpointer plain_prepared_client(gpointer data)
{
	plain_loop(data, true);
	return NULL;
}

/* Runs the clients until the queue is empty; returns jobs per second. */
static double run_clients(GThreadFunc fn, int clients, int want)
{
	GThread *th[MAX_CLIENTS];
	int done[MAX_CLIENTS] = {0};
	gint64 t0 = g_get_monotonic_time();
	for (int i = 0; i < clients; i++)
		th[i] = g_thread_new("client", fn, &done[i]);
	int total = 0;
	for (int i = 0; i < clients; i++) {
		g_thread_join(th[i]);
		total += done[i];
	}
	double s = (double)(g_get_monotonic_time() - t0) / 1e6;
	if (total != want) {
		fprintf(stderr, "bench_queue: %d jobs worked, %d expected\n", total, want);
		exit(1);
	}
	return total / s;
}

static int64_t make_document(struct db *db)
{
	struct db_res *res = NULL;
	g_autofree char *err = NULL;
	must(db_query(db,
	              "INSERT INTO documents (size_bytes, content_mac, wrapped_key, key_version)"
	              " VALUES (1, gen_random_uuid()::text::bytea, '\\x00', 1) RETURNING id",
	              0, NULL, &res, &err),
	     "document row", err);
	int64_t id = db_res_int(res, 0, 0);
	db_res_free(res);
	return id;
}

static double enqueue(struct db *db, int64_t doc, int n)
{
	g_autofree char *err = NULL;
	gint64 t0 = g_get_monotonic_time();
	for (int i = 0; i < n; i++) {
		struct queue_new q = {.priority = i % 3};
		int64_t id = 0;
		must(queue_add(db, doc, &q, &id, &err), "enqueue", err);
	}
	return n / ((double)(g_get_monotonic_time() - t0) / 1e6);
}

static void fill_plain(struct db *db, int n)
{
	g_autofree char *sql = g_strdup_printf("TRUNCATE plain_jobs; INSERT INTO plain_jobs (state)"
	                                       " SELECT 'queued' FROM generate_series(1, %d)",
	                                       n);
	g_autofree char *err = NULL;
	must(db_exec(db, sql, &err), "fill plain table", err);
	must(db_exec(db, "VACUUM ANALYZE plain_jobs", &err), "vacuum plain table", err);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? (int)g_ascii_strtoll(argv[1], NULL, 10) : 5000;
	int clients = argc > 2 ? (int)g_ascii_strtoll(argv[2], NULL, 10) : 4;
	if (n < 1 || n > 10000000 || clients < 1 || clients > MAX_CLIENTS) {
		fprintf(stderr, "usage: bench_queue [N (1..10000000)] [CLIENTS (1..%d)]\n", MAX_CLIENTS);
		return 2;
	}
	g_autofree char *dir = g_dir_make_tmp("quire-bench-XXXXXX", NULL);
	chmod(dir, 0711);
	g_autofree char *data = g_build_filename(dir, "data", NULL);
	struct pgembed *pg = NULL;
	g_autofree char *err = NULL;
	must(pgembed_start(data, "postgres", &pg, &err), "start PostgreSQL", err);
	conninfo = pgembed_conninfo(pg);
	struct db *db = connect_db();
	int nm = 0;
	const struct migration *list = app_migrations(&nm);
	must(migrate_apply(db, list, nm, NULL, &err), "migrations", err);
	must(db_exec(db,
	             "CREATE TABLE plain_jobs (id bigserial PRIMARY KEY, state text NOT NULL);"
	             "CREATE INDEX plain_jobs_queued ON plain_jobs (id) WHERE state = 'queued'",
	             &err),
	     "plain table", err);
	int64_t doc = make_document(db);
	printf("queue benchmark: %d no-op jobs, %d clients, best of %d rounds\n", n, clients, ROUNDS);
	double best_enq = 0, best_real = 0, best_plain = 0, best_prep = 0;
	for (int r = 0; r < ROUNDS; r++) {
		must(db_exec(db, "TRUNCATE jobs", &err), "clear jobs", err);
		double enq = enqueue(db, doc, n);
		/* the same start as the plain table's: fresh statistics, visibility map set */
		must(db_exec(db, "VACUUM ANALYZE jobs", &err), "vacuum jobs", err);
		double real = run_clients(real_client, clients, n);
		fill_plain(db, n);
		double plain = run_clients(plain_client, clients, n);
		fill_plain(db, n);
		double prep = run_clients(plain_prepared_client, clients, n);
		printf("  round %d: enqueue %.0f jobs/s, quire claim+complete %.0f jobs/s, plain loop %.0f jobs/s,"
		       " prepared plain loop %.0f jobs/s\n",
		       r + 1, enq, real, plain, prep);
		best_enq = MAX(best_enq, enq);
		best_real = MAX(best_real, real);
		best_plain = MAX(best_plain, plain);
		best_prep = MAX(best_prep, prep);
	}
	printf("enqueue (queue_add, one transaction each, with NOTIFY): %.0f jobs/s\n", best_enq);
	printf("claim+complete, quire queue (lease, token, fenced completion): %.0f jobs/s\n", best_real);
	printf("claim+complete, plain SKIP LOCKED loop (reference): %.0f jobs/s\n", best_plain);
	printf("claim+complete, plain SKIP LOCKED loop on prepared statements: %.0f jobs/s\n", best_prep);
	printf("ratio quire/plain: %.2f (target >= 0.70)\n", best_real / best_plain);
	printf("ratio quire/prepared plain: %.2f\n", best_real / best_prep);
	db_close(db);
	pgembed_stop(pg);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_queue: could not remove %s\n", dir);
	return 0;
}
