/* worker: the job threads and the keeper.
 *
 * Threads share only the pool: the in-flight table (which job each thread
 * holds, and whether the keeper found its lease lost), the counters, and the
 * model lock; all of it under pool->lock except the model lock. Each thread
 * owns its database connection; the keeper owns another. A job struct lives
 * on its thread's stack for one attempt; the keeper sees a copy. */
#include "pipeline/worker.h"

#include <glib.h>
#include <string.h>

#include "core/audit.h"
#include "core/db.h"
#include "core/json.h"
#include "core/log.h"
#include "core/vault.h"
#include "extractors/pdftext.h"
#include "extractors/sandbox.h"
#include "pipeline/counters.h"
#include "pipeline/queue.h"
#include "pipeline/learned.h"
#include "pipeline/store.h"

#define MAX_THREADS QUEUE_MAX_HEARTBEAT
#define DEFAULT_GRACE_S 30
#define DEFAULT_POLL_MS 5000
#define RECONNECT_FIRST_MS 100
#define RECONNECT_MAX_MS 5000
#define PRUNE_EVERY_S 600
#define SAVE_TRIES 20

struct pool;

struct slot {
	struct pool *pool;
	int index;
	struct db *db; /* owned, unless the pool borrows the caller's */
	GThread *thread;
	/* under pool->lock */
	bool busy;
	bool lost; /* the keeper found the lease gone */
	struct job job;
};

struct pool {
	const struct worker_options *opt;
	const struct vault *v;
	volatile int *stop;
	bool borrowed;
	int halt; /* atomic: leave now (grace over, or a fatal error) */
	GMutex lock;
	GMutex model_lock;
	struct slot *slots;
	int n;
	int live; /* job threads still running, under lock */
	struct worker_stats stats; /* under lock */
	enum qerr fatal;            /* under lock */
	char *fatal_msg;            /* under lock */
	gint64 next_reap, next_prune; /* keeper chores (or the single thread's, when borrowed) */
};

static bool stop_requested(const struct pool *p) { return p->stop && *p->stop; }
static bool halted(struct pool *p) { return g_atomic_int_get(&p->halt) != 0; }
static bool stopping(struct pool *p) { return stop_requested(p) || halted(p); }

static void set_fatal(struct pool *p, enum qerr e, const char *msg)
{
	g_mutex_lock(&p->lock);
	if (!p->fatal) {
		p->fatal = e;
		p->fatal_msg = g_strdup(msg);
	}
	g_mutex_unlock(&p->lock);
	g_atomic_int_set(&p->halt, 1);
}

/* Sleeps ms milliseconds in short steps; false when quit() became true meanwhile. */
static bool nap(struct pool *p, int ms, bool (*quit)(struct pool *))
{
	gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
	while (!quit(p)) {
		gint64 left = end - g_get_monotonic_time();
		if (left <= 0)
			return true;
		g_usleep((gulong)MIN(left, 100000));
	}
	return false;
}

static enum qerr open_conn(const char *conninfo, bool listen, struct db **ret, char **reterr)
{
	struct db *db = NULL;
	enum qerr e = db_connect(conninfo, &db, reterr);
	if (!e && listen)
		e = db_exec(db, "LISTEN " QUEUE_CHANNEL, reterr);
	if (e) {
		db_close(db);
		return e;
	}
	*ret = db;
	return QERR_OK;
}

/* Opens *db, retrying with capped exponential backoff and jitter while quit() is false.
 * The database being away is the normal case here (a restart), not an error. */
static enum qerr connect_retry(struct pool *p, struct db **db, bool listen, const char *who, bool (*quit)(struct pool *),
                               char **reterr)
{
	int delay = RECONNECT_FIRST_MS;
	bool told = false;
	for (;;) {
		g_autofree char *err = NULL;
		enum qerr e = open_conn(p->opt->conninfo, listen, db, &err);
		if (!e) {
			if (told)
				log_info("%s: database connection restored", who);
			return QERR_OK;
		}
		if (!told)
			log_warn("%s: %s; reconnecting with backoff", who, err);
		told = true;
		if (!nap(p, delay + g_random_int_range(0, delay / 2 + 1), quit))
			return qerr_set(reterr, e, "%s", err);
		delay = MIN(delay * 2, RECONNECT_MAX_MS);
	}
}

static enum qerr audit_job(struct db *db, const struct job *job, const char *action, const char *outcome,
                           const char *detail, char **reterr)
{
	struct audit_event ev = {.actor = "system:worker", .action = action, .object_type = "document",
	                         .object_id = job->document_id, .outcome = outcome, .client = "worker",
	                         .detail = detail};
	return audit_append(db, &ev, reterr);
}

static enum qerr save_result(struct db *db, const struct vault_dek *dek, const struct job *job,
                             const struct json *result, const struct pdftext_doc *doc, char **reterr)
{
	g_autofree char *result_text = json_format(result, false);
	struct json *tj = pdftext_doc_to_json(doc);
	g_autofree char *text = json_format(tj, false);
	json_free(tj);
	char sid[24], pages[16];
	g_snprintf(sid, sizeof sid, "%lld", (long long)job->document_id);
	g_snprintf(pages, sizeof pages, "%d", doc->total_pages);
	const char *type = json_get_string(result, "document_type");
	const char *review = json_get_string(result, "status");
	char conf[32] = "", threshold[32] = "";
	double c = 0, t = 0;
	if (json_get_number(result, "confidence", &c))
		g_snprintf(conf, sizeof conf, "%.3f", c);
	if (json_get_number(result, "auto_approve", &t))
		g_snprintf(threshold, sizeof threshold, "%.3f", t);
	struct db_param p[6] = {DB_TEXT(sid), DB_TEXT(type ? type : "unknown"), DB_TEXT(pages),
	                        DB_TEXT(review && strcmp(review, "approved") == 0 ? "true" : "false"),
	                        DB_TEXT(conf[0] ? conf : NULL), DB_TEXT(threshold[0] ? threshold : NULL)};
	enum qerr e = db_begin(db, reterr);
	/* The fence first: a worker that lost its lease writes nothing. */
	if (!e)
		e = queue_complete(db, job, reterr);
	if (!e)
		e = store_put(db, dek, job->document_id, "text", text, strlen(text), reterr);
	if (!e)
		e = store_put(db, dek, job->document_id, "result", result_text, strlen(result_text), reterr);
	if (!e)
		e = db_query(db,
		             "UPDATE documents SET state = 'processed', doc_type = $2, page_count = $3::int,"
		             " auto_approved = $4::boolean, confidence = $5::real, approve_threshold = $6::real"
		             " WHERE id = $1::bigint",
		             6, p, NULL, reterr);
	if (!e)
		e = counters_add_job(db, doc, result, reterr);
	if (!e)
		e = audit_job(db, job, "job.completed", "ok", NULL, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

static bool lease_lost(struct slot *s)
{
	g_mutex_lock(&s->pool->lock);
	bool lost = s->lost;
	g_mutex_unlock(&s->pool->lock);
	return lost;
}

static bool give_up_job(struct pool *p) { return halted(p); }
static bool give_up_idle(struct pool *p) { return stopping(p); }

/* Drops a broken connection and opens a new one (not when borrowed: that error is final). */
static enum qerr slot_reconnect(struct slot *s, bool in_job, char **reterr)
{
	struct pool *p = s->pool;
	if (p->borrowed)
		return qerr_set(reterr, QERR_DB_UNAVAILABLE, "the database connection was lost");
	db_close(s->db);
	s->db = NULL;
	g_autofree char *who = g_strdup_printf("worker thread %d", s->index);
	return connect_retry(p, &s->db, true, who, in_job ? give_up_job : give_up_idle, reterr);
}

/* Saves a result; when the database went away, waits for it and saves again while the lease
 * may still hold, so a restart of the database costs no work. */
static enum qerr save_retrying(struct slot *s, const struct vault_dek *dek, const struct job *job,
                               const struct json *result, const struct pdftext_doc *doc, char **reterr)
{
	enum qerr e = QERR_DB_UNAVAILABLE;
	for (int i = 0; i < SAVE_TRIES && e == QERR_DB_UNAVAILABLE; i++) {
		if (i > 0) {
			log_job(LOG_LEVEL_WARN, job->id, job->attempt, "saving the result failed: %s, will retry",
			        *reterr ? *reterr : "database unavailable");
			if (lease_lost(s) || slot_reconnect(s, true, reterr))
				break;
		}
		g_clear_pointer(reterr, g_free);
		e = save_result(s->db, dek, job, result, doc, reterr);
	}
	return e;
}

/* Corrections remembered for the supplier, read on the job's own connection; none on an error. */
static struct json *slot_learned(void *ctx, char *const *keys)
{
	struct slot *s = ctx;
	struct json *hints = NULL;
	if (learned_lookup(s->db, s->pool->v, keys, &hints, NULL) != QERR_OK)
		return NULL;
	return hints;
}

static enum qerr process(struct slot *s, const struct job *job, char **reterr)
{
	struct pool *p = s->pool;
	struct vault_dek *dek = NULL;
	struct vault_buf password = {0};
	struct store_reader *pdf = NULL;
	struct json *result = NULL;
	struct pdftext_doc *doc = NULL;
	enum qerr e = store_dek(s->db, p->v, job->document_id, &dek, reterr);
	if (!e)
		e = store_reader_open(s->db, dek, job->document_id, &pdf, reterr);
	if (!e)
		e = queue_progress(s->db, job, p->opt->extract.model ? "parsing, then fields by the model" : "parsing",
		                   reterr);
	g_autofree char *given = NULL; /* the type given at submission overrides classification */
	if (!e)
		e = store_doc_type_given(s->db, job->document_id, &given, reterr);
	if (!e)
		e = store_password(s->db, dek, job->document_id, &password, reterr);
	struct extract_options xo = p->opt->extract;
	xo.doc_type = given;
	xo.password = password.data ? (const char *)password.data : NULL; /* never logged */
	xo.learned = (struct extract_learned){slot_learned, s};
	if (!e) {
		/* The model serves one thread at a time; parsing alone needs no lock. */
		if (p->opt->extract.model)
			g_mutex_lock(&p->model_lock);
		/* the original goes to the parser as it is decrypted, never whole here */
		struct sandbox_source src = {.len = store_reader_size(pdf), .read = store_reader_read, .ctx = pdf};
		e = extract_document_from(&src, &xo, &result, &doc, reterr);
		if (p->opt->extract.model)
			g_mutex_unlock(&p->model_lock);
	}
	store_reader_close(pdf);
	vault_buf_free(&password);
	if (!e)
		e = queue_progress_pages(s->db, job, "saving", doc->total_pages, doc->total_pages, reterr);
	if (!e || (e == QERR_DB_UNAVAILABLE && result))
		e = save_retrying(s, dek, job, result, doc, reterr);
	json_free(result);
	pdftext_doc_free(doc);
	vault_dek_free(dek);
	return e;
}

static enum qerr record_failure(struct db *db, const struct job *job, enum qerr cause, const char *msg,
                                char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)job->id);
	struct db_param p[1] = {DB_TEXT(sid)};
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = queue_fail(db, job, cause, msg, reterr);
	if (!e)
		e = db_query(db,
		             "UPDATE documents SET state = CASE WHEN (SELECT state FROM jobs WHERE id = $1::bigint)"
		             " = 'queued' THEN 'queued' ELSE 'failed' END WHERE id = (SELECT document_id FROM jobs"
		             " WHERE id = $1::bigint)",
		             1, p, NULL, reterr);
	if (!e)
		e = audit_job(db, job, "job.failed", "failed", qerr_str(cause), reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

static enum qerr claim(struct db *db, const struct worker_options *opt, struct job *job, bool *found,
                       char **reterr)
{
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = queue_claim(db, opt->name, opt->lease_s, job, found, reterr);
	if (!e && *found) {
		char sid[24];
		g_snprintf(sid, sizeof sid, "%lld", (long long)job->document_id);
		struct db_param p[1] = {DB_TEXT(sid)};
		e = db_query(db, "UPDATE documents SET state = 'processing' WHERE id = $1::bigint", 1, p, NULL, reterr);
	}
	if (!e && *found)
		e = audit_job(db, job, "job.claimed", "ok", NULL, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

static void set_busy(struct slot *s, const struct job *job)
{
	g_mutex_lock(&s->pool->lock);
	s->busy = job != NULL;
	s->lost = false;
	if (job)
		s->job = *job;
	g_mutex_unlock(&s->pool->lock);
}

static void count(struct pool *p, int *counter)
{
	g_mutex_lock(&p->lock);
	(*counter)++;
	g_mutex_unlock(&p->lock);
}

/* A failed attempt is written down; if the database is away the lease will run out and the
 * reaper requeues the job instead. */
static void fail_job(struct slot *s, const struct job *job, enum qerr pe, const char *err)
{
	g_autofree char *ferr = NULL;
	enum qerr e = s->db ? record_failure(s->db, job, pe, err, &ferr) : QERR_DB_UNAVAILABLE;
	if (e == QERR_DB_UNAVAILABLE && !s->pool->borrowed && !slot_reconnect(s, true, NULL))
		e = record_failure(s->db, job, pe, err, &ferr);
	if (e)
		log_job(LOG_LEVEL_WARN, job->id, job->attempt, "could not record the failure: %s, the lease will expire",
		        ferr ? ferr : qerr_str(e));
}

static void run_job(struct slot *s, const struct job *job)
{
	struct pool *p = s->pool;
	set_busy(s, job);
	log_job(LOG_LEVEL_INFO, job->id, job->attempt, "processing document %lld", (long long)job->document_id);
	g_autofree char *err = NULL;
	enum qerr pe = process(s, job, &err);
	bool lost = lease_lost(s);
	set_busy(s, NULL);
	if (!pe) {
		count(p, &p->stats.done);
		log_job(LOG_LEVEL_INFO, job->id, job->attempt, "document %lld processed", (long long)job->document_id);
		return;
	}
	if (pe == QERR_CONFLICT || lost) {
		log_job(LOG_LEVEL_WARN, job->id, job->attempt,
		        "the lease was lost (expired, cancelled or released); this attempt's outcome is dropped%s", "");
		return;
	}
	count(p, &p->stats.failed);
	bool retry = qerr_group(pe) == QERR_GROUP_TRANSIENT && job->attempt < job->max_attempts;
	log_job(LOG_LEVEL_WARN, job->id, job->attempt, "document %lld failed: %s%s", (long long)job->document_id,
	        err ? err : qerr_str(pe), retry ? ", will retry" : "");
	fail_job(s, job, pe, err ? err : qerr_str(pe));
}

/* Reaper and retention, when due; on the keeper's connection (or the only one). Returns the
 * last database error so the caller can tell a lost connection. */
static enum qerr chores(struct pool *p, struct db *db)
{
	gint64 now = g_get_monotonic_time();
	int reap_s = CLAMP(p->opt->lease_s / 4, 1, 30);
	g_autofree char *err = NULL;
	enum qerr e = QERR_OK;
	if (now >= p->next_reap) {
		p->next_reap = now + (gint64)reap_s * G_USEC_PER_SEC;
		int requeued = 0, dead = 0;
		if ((e = queue_reap(db, &requeued, &dead, &err)))
			log_warn("reaper: %s, will try again", err);
		else if (requeued + dead > 0)
			log_warn("reaper: %d job(s) with an expired lease requeued, %d dead", requeued, dead);
	}
	if (!e && now >= p->next_prune && (p->opt->retention_h > 0 || p->opt->dead_retention_h > 0)) {
		p->next_prune = now + (gint64)PRUNE_EVERY_S * G_USEC_PER_SEC;
		int gone = 0;
		if ((e = queue_prune(db, p->opt->retention_h, p->opt->dead_retention_h, &gone, &err)))
			log_warn("retention: %s, will try again", err);
		else if (gone > 0)
			log_info("retention: %d finished job(s) pruned", gone);
	}
	return e;
}

/* Waits for a notification, the next scheduled job, the slow poll or a stop request. */
static enum qerr idle_wait(struct slot *s, char **reterr)
{
	struct pool *p = s->pool;
	int64_t due = -1;
	enum qerr e = queue_next_due_ms(s->db, &due, reterr);
	if (e)
		return e;
	int64_t wait = p->opt->poll_ms > 0 ? p->opt->poll_ms : DEFAULT_POLL_MS;
	if (due >= 0 && due < wait)
		wait = MAX(due, 20); /* due now but locked: another worker is claiming it */
	gint64 end = g_get_monotonic_time() + wait * 1000;
	while (!stopping(p)) {
		gint64 left_ms = (end - g_get_monotonic_time()) / 1000;
		if (left_ms <= 0)
			break;
		bool notified = false;
		e = db_wait_notify(s->db, (int)MIN(left_ms, 250), &notified, reterr);
		if (e || notified)
			return e;
	}
	return QERR_OK;
}

/* A database error outside a job: reconnect (transient), pause (busy), or stop (anything else). */
static bool slot_error(struct slot *s, enum qerr e, const char *err)
{
	struct pool *p = s->pool;
	if (e == QERR_DB_UNAVAILABLE && !p->borrowed) {
		g_autofree char *rerr = NULL;
		return slot_reconnect(s, false, &rerr) == QERR_OK;
	}
	if (qerr_group(e) == QERR_GROUP_TRANSIENT && e != QERR_DB_UNAVAILABLE) {
		log_warn("worker thread %d: %s, will retry", s->index, err ? err : qerr_str(e));
		return nap(p, 200, give_up_idle);
	}
	set_fatal(p, e, err ? err : qerr_str(e));
	return false;
}

static gpointer slot_main(gpointer data)
{
	struct slot *s = data;
	struct pool *p = s->pool;
	while (!stopping(p)) {
		g_autofree char *err = NULL;
		if (p->borrowed && chores(p, s->db) == QERR_DB_UNAVAILABLE)
			break;
		struct job job = {0};
		bool found = false;
		enum qerr e = claim(s->db, p->opt, &job, &found, &err);
		if (!e && found) {
			run_job(s, &job);
			continue;
		}
		bool retry_pending = false;
		if (!e && p->opt->drain)
			e = queue_retry_pending(s->db, &retry_pending, &err);
		if (!e && p->opt->drain && !retry_pending)
			break; /* nothing to run now, and no job waiting for another attempt */
		if (!e)
			e = idle_wait(s, &err);
		if (e && !slot_error(s, e, err))
			break;
	}
	g_mutex_lock(&p->lock);
	p->live--;
	g_mutex_unlock(&p->lock);
	return NULL;
}

/* The jobs in flight, copied under the lock. */
static int in_flight(struct pool *p, struct job *jobs, int *slot_of)
{
	int n = 0;
	g_mutex_lock(&p->lock);
	for (int i = 0; i < p->n; i++)
		if (p->slots[i].busy && !p->slots[i].lost) {
			jobs[n] = p->slots[i].job;
			slot_of[n++] = i;
		}
	g_mutex_unlock(&p->lock);
	return n;
}

static void mark_lost(struct pool *p, int slot, int64_t job_id)
{
	g_mutex_lock(&p->lock);
	if (p->slots[slot].busy && p->slots[slot].job.id == job_id)
		p->slots[slot].lost = true;
	g_mutex_unlock(&p->lock);
}

static enum qerr heartbeat(struct pool *p, struct db *db)
{
	struct job jobs[MAX_THREADS];
	int slot_of[MAX_THREADS];
	bool held[MAX_THREADS];
	int n = in_flight(p, jobs, slot_of);
	g_autofree char *err = NULL;
	if (n == 0)
		return QERR_OK;
	enum qerr e = queue_heartbeat(db, jobs, n, held, &err);
	if (e) {
		log_warn("heartbeat: %s, will retry", err);
		return e;
	}
	for (int i = 0; i < n; i++)
		if (!held[i]) {
			log_job(LOG_LEVEL_WARN, jobs[i].id, jobs[i].attempt, "lease lost (expired or cancelled)%s", "");
			mark_lost(p, slot_of[i], jobs[i].id);
		}
	return QERR_OK;
}

/* Grace is over: every job still in flight goes back to the queue, fenced by its token. */
static void release_all(struct pool *p, struct db **db)
{
	struct job jobs[MAX_THREADS];
	int slot_of[MAX_THREADS];
	int n = in_flight(p, jobs, slot_of);
	for (int i = 0; i < n; i++) {
		g_autofree char *err = NULL;
		enum qerr e = *db ? queue_release(*db, &jobs[i], "released at worker shutdown", &err) : QERR_DB_UNAVAILABLE;
		mark_lost(p, slot_of[i], jobs[i].id);
		if (!e) {
			count(p, &p->stats.released);
			log_job(LOG_LEVEL_INFO, jobs[i].id, jobs[i].attempt, "released to the queue at shutdown%s", "");
		} else {
			log_job(LOG_LEVEL_WARN, jobs[i].id, jobs[i].attempt, "could not release: %s; its lease will expire",
			        err ? err : qerr_str(e));
		}
	}
}

static int live_threads(struct pool *p)
{
	g_mutex_lock(&p->lock);
	int n = p->live;
	g_mutex_unlock(&p->lock);
	return n;
}

static bool never(struct pool *p)
{
	(void)p;
	return false;
}

/* The calling thread's loop while job threads run: heartbeats, reaper, retention, shutdown.
 * It wakes every 100 ms but talks to the database only when something is due. */
static void keeper(struct pool *p)
{
	struct db *db = NULL;
	int grace_s = p->opt->grace_s > 0 ? p->opt->grace_s : DEFAULT_GRACE_S;
	int beat_s = CLAMP(p->opt->lease_s / 3, 1, 60);
	gint64 next_beat = 0, next_connect = 0, stop_at = 0;
	while (live_threads(p) > 0) {
		gint64 now = g_get_monotonic_time();
		if (!db && now >= next_connect && open_conn(p->opt->conninfo, false, &db, NULL) != QERR_OK) {
			db = NULL; /* the job threads log the outage; the keeper just tries again */
			next_connect = now + G_USEC_PER_SEC;
		}
		if (stop_requested(p) && !stop_at) {
			stop_at = now + (gint64)grace_s * G_USEC_PER_SEC;
			log_info("stopping: jobs in flight get %d s to finish", grace_s);
		}
		if (stop_at && now >= stop_at && !halted(p)) {
			g_atomic_int_set(&p->halt, 1);
			release_all(p, &db);
		}
		enum qerr e = QERR_OK;
		if (db && now >= next_beat) {
			next_beat = now + (gint64)beat_s * G_USEC_PER_SEC;
			e = heartbeat(p, db);
		}
		if (db && !e && !stop_at)
			e = chores(p, db);
		if (e == QERR_DB_UNAVAILABLE) {
			g_clear_pointer(&db, db_close);
			next_beat = 0;
		}
		nap(p, 100, never);
	}
	db_close(db);
}

static void pool_done(struct pool *p)
{
	for (int i = 0; i < p->n; i++)
		if (!p->borrowed)
			db_close(p->slots[i].db);
	g_free(p->slots);
	g_free(p->fatal_msg);
	g_mutex_clear(&p->lock);
	g_mutex_clear(&p->model_lock);
}

static enum qerr start_threads(struct pool *p, char **reterr)
{
	for (int i = 0; i < p->n; i++) {
		struct slot *s = &p->slots[i];
		g_autofree char *who = g_strdup_printf("worker thread %d", i);
		enum qerr e = connect_retry(p, &s->db, true, who, give_up_idle, reterr);
		if (e)
			return e;
	}
	for (int i = 0; i < p->n; i++) {
		g_autofree char *name = g_strdup_printf("quire-job-%d", i);
		g_mutex_lock(&p->lock);
		p->live++;
		g_mutex_unlock(&p->lock);
		p->slots[i].thread = g_thread_new(name, slot_main, &p->slots[i]);
	}
	return QERR_OK;
}

enum qerr worker_run(struct db *db, const struct vault *v, const struct worker_options *opt, volatile int *stop,
                     struct worker_stats *ret, char **reterr)
{
	struct pool p = {.opt = opt, .v = v, .stop = stop, .borrowed = opt->conninfo == NULL};
	g_mutex_init(&p.lock);
	g_mutex_init(&p.model_lock);
	p.n = p.borrowed ? 1 : CLAMP(opt->concurrency, 1, MAX_THREADS);
	p.slots = g_new0(struct slot, p.n);
	for (int i = 0; i < p.n; i++) {
		p.slots[i].pool = &p;
		p.slots[i].index = i;
	}
	enum qerr e = QERR_OK;
	if (p.borrowed) {
		g_assert(db != NULL);
		p.slots[0].db = db;
		e = db_exec(db, "LISTEN " QUEUE_CHANNEL, reterr);
		if (!e) {
			p.live = 1;
			slot_main(&p.slots[0]);
		}
	} else {
		e = start_threads(&p, reterr);
		keeper(&p);
		for (int i = 0; i < p.n; i++)
			if (p.slots[i].thread)
				g_thread_join(p.slots[i].thread);
	}
	if (!e && p.fatal)
		e = qerr_set(reterr, p.fatal, "%s", p.fatal_msg);
	if (!e && ret)
		*ret = p.stats;
	pool_done(&p);
	return e;
}
