/* queue: enqueue, claim, heartbeat, fenced completion, failure and release,
 * the reaper, retention, and the operator's cancel and retry.
 *
 * Every statement that changes a running job names the job's id and lease
 * token and requires state = 'running': that is the fence. Numbers go to the
 * server as text parameters; nothing is formatted into SQL.
 *
 * The statements of a job's way through the queue (add, claim, heartbeat,
 * progress, complete, fail, release) are prepared once per connection and
 * each does its work in one round trip; the rare ones (reaper, retention,
 * operator actions) are plain queries. */
#include "pipeline/queue.h"

#include <glib.h>
#include <string.h>

#include "core/audit.h"
#include "core/db.h"

#define DEFAULT_ATTEMPTS 3
#define MAX_BACKOFF_S 600
#define REAP_BATCH "500"
#define PRUNE_BATCH "5000"

static void int_text(char *buf, size_t size, long long v) { g_snprintf(buf, size, "%lld", v); }

/* Valid UTF-8 of at most QUEUE_MAX_ERROR bytes, cut on a character boundary; g_free(). */
static char *clip_error(const char *message)
{
	char *s = g_utf8_make_valid(message ? message : "", -1);
	if (strlen(s) > QUEUE_MAX_ERROR) {
		char *end = g_utf8_find_prev_char(s, s + QUEUE_MAX_ERROR);
		if (end)
			*end = '\0';
	}
	return s;
}

static enum qerr notify(struct db *db, char **reterr) { return db_exec(db, "NOTIFY " QUEUE_CHANNEL, reterr); }

static enum qerr audit_job(struct db *db, const char *actor, int64_t doc_id, const char *action, const char *outcome,
                           const char *detail, char **reterr)
{
	struct audit_event ev = {.actor = actor, .action = action, .object_type = "document", .object_id = doc_id,
	                         .outcome = outcome, .client = "queue", .detail = detail};
	return audit_append(db, &ev, reterr);
}

/* The insert and the NOTIFY in one statement (delivered at commit). */
static const struct db_stmt add_stmt = {
	"queue_add",
	"WITH j AS (INSERT INTO jobs (document_id, priority, max_attempts, run_at)"
	" VALUES ($1::bigint, $2::int, $3::int,"
	"  greatest(coalesce($4::timestamptz, now()), now() + make_interval(secs => $5::int)))"
	" RETURNING id)"
	" SELECT id, pg_notify('" QUEUE_CHANNEL "', '') FROM j",
	5};

enum qerr queue_add(struct db *db, int64_t doc_id, const struct queue_new *n, int64_t *ret_job_id, char **reterr)
{
	char id[24], prio[16], max[16], delay[16];
	int_text(id, sizeof id, doc_id);
	int_text(prio, sizeof prio, n->priority);
	int_text(max, sizeof max, n->max_attempts > 0 ? n->max_attempts : DEFAULT_ATTEMPTS);
	int_text(delay, sizeof delay, n->delay_s > 0 ? n->delay_s : 0);
	struct db_param p[5] = {DB_TEXT(id), DB_TEXT(prio), DB_TEXT(max), DB_TEXT(n->run_at), DB_TEXT(delay)};
	struct db_res *res = NULL;
	enum qerr e = db_run(db, &add_stmt, p, &res, reterr);
	if (e)
		return e;
	*ret_job_id = db_res_int(res, 0, 0);
	db_res_free(res);
	return QERR_OK;
}

enum qerr queue_enqueue(struct db *db, int64_t doc_id, int priority, int max_attempts, int64_t *ret_job_id,
                        char **reterr)
{
	struct queue_new n = {.priority = priority, .max_attempts = max_attempts};
	return queue_add(db, doc_id, &n, ret_job_id, reterr);
}

/* One statement picks and marks: the sub-select locks the first due row nobody else has
 * locked, in the order jobs_claim_idx stores them. Page progress was cleared when the job
 * went (back) to the queue, so the claim leaves those columns alone. */
static const struct db_stmt claim_stmt = {
	"queue_claim",
	"UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = gen_random_uuid(),"
	" lease_expires_at = now() + make_interval(secs => $2::int), heartbeat_at = now(), worker = $1,"
	" started_at = now(), progress = 'claimed'"
	" WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= now()"
	"             ORDER BY priority DESC, run_at, id FOR UPDATE SKIP LOCKED LIMIT 1)"
	" RETURNING id, document_id, attempts, max_attempts, lease_token",
	2};

enum qerr queue_claim(struct db *db, const char *worker, int lease_s, struct job *ret, bool *ret_found, char **reterr)
{
	char lease[16];
	int_text(lease, sizeof lease, lease_s);
	struct db_param p[2] = {DB_TEXT(worker), DB_TEXT(lease)};
	struct db_res *res = NULL;
	enum qerr e = db_run(db, &claim_stmt, p, &res, reterr);
	if (e)
		return e;
	*ret_found = db_res_rows(res) == 1;
	if (*ret_found) {
		ret->id = db_res_int(res, 0, 0);
		ret->document_id = db_res_int(res, 0, 1);
		ret->attempt = (int)db_res_int(res, 0, 2);
		ret->max_attempts = (int)db_res_int(res, 0, 3);
		ret->lease_s = lease_s;
		g_strlcpy(ret->lease_token, db_res_text(res, 0, 4), sizeof ret->lease_token);
	}
	db_res_free(res);
	return QERR_OK;
}

static const struct db_stmt heartbeat_stmt = {
	"queue_heartbeat",
	"UPDATE jobs j SET lease_expires_at = now() + make_interval(secs => h.lease), heartbeat_at = now()"
	" FROM unnest($1::bigint[], $2::uuid[], $3::int[]) AS h(id, token, lease)"
	" WHERE j.id = h.id AND j.lease_token = h.token AND j.state = 'running'"
	" RETURNING j.id",
	3};

enum qerr queue_heartbeat(struct db *db, const struct job *jobs, int n, bool *ret_held, char **reterr)
{
	g_assert(n >= 0 && n <= QUEUE_MAX_HEARTBEAT);
	if (n == 0)
		return QERR_OK;
	g_autoptr(GString) ids = g_string_new("{"), tokens = g_string_new("{"), leases = g_string_new("{");
	for (int i = 0; i < n; i++) {
		const char *sep = i ? "," : "";
		g_string_append_printf(ids, "%s%lld", sep, (long long)jobs[i].id);
		g_string_append_printf(tokens, "%s%s", sep, jobs[i].lease_token[0] ? jobs[i].lease_token : "NULL");
		g_string_append_printf(leases, "%s%d", sep, jobs[i].lease_s > 0 ? jobs[i].lease_s : 60);
	}
	g_string_append_c(ids, '}');
	g_string_append_c(tokens, '}');
	g_string_append_c(leases, '}');
	struct db_param p[3] = {DB_TEXT(ids->str), DB_TEXT(tokens->str), DB_TEXT(leases->str)};
	struct db_res *res = NULL;
	enum qerr e = db_run(db, &heartbeat_stmt, p, &res, reterr);
	if (e)
		return e;
	for (int i = 0; i < n; i++) {
		ret_held[i] = false;
		for (int r = 0; r < db_res_rows(res); r++)
			if (db_res_int(res, r, 0) == jobs[i].id)
				ret_held[i] = true;
	}
	db_res_free(res);
	return QERR_OK;
}

/* Runs st with $1 = job id, $2 = lease token and n_extra (up to 6) more parameters; the
 * statement must return one row when the fence holds. */
static enum qerr fenced_update(struct db *db, const struct job *job, const struct db_stmt *st, int n_extra,
                               const struct db_param *extra, char **reterr)
{
	g_assert(n_extra >= 0 && n_extra <= 6 && st->n_params == 2 + n_extra);
	char id[24];
	int_text(id, sizeof id, job->id);
	struct db_param p[8] = {DB_TEXT(id), DB_TEXT(job->lease_token[0] ? job->lease_token : NULL)};
	for (int i = 0; i < n_extra; i++)
		p[2 + i] = extra[i];
	struct db_res *res = NULL;
	enum qerr e = db_run(db, st, p, &res, reterr);
	if (e)
		return e;
	int rows = db_res_rows(res);
	db_res_free(res);
	if (rows != 1)
		return qerr_set(reterr, QERR_CONFLICT, "job %lld is no longer held by this worker (lease lost)",
		                (long long)job->id);
	return QERR_OK;
}

static const struct db_stmt complete_stmt = {
	"queue_complete",
	"UPDATE jobs SET state = 'done', finished_at = now(), lease_token = NULL, lease_expires_at = NULL,"
	" progress = 'done', last_error = NULL"
	" WHERE id = $1::bigint AND lease_token = $2::uuid AND state = 'running' RETURNING id",
	2};

enum qerr queue_complete(struct db *db, const struct job *job, char **reterr)
{
	return fenced_update(db, job, &complete_stmt, 0, NULL, reterr);
}

int queue_backoff_s(int attempt)
{
	int delay = 1 << (attempt < 1 ? 1 : attempt < 10 ? attempt : 10);
	if (delay > MAX_BACKOFF_S)
		delay = MAX_BACKOFF_S;
	/* Jitter spreads out jobs that failed together (the database went away for all of them). */
	return delay + g_random_int_range(0, delay / 2 + 1);
}

static const struct db_stmt fail_stmt = {
	"queue_fail",
	"UPDATE jobs SET state = $3::text, last_error = $4, lease_token = NULL, lease_expires_at = NULL,"
	" run_at = now() + make_interval(secs => $5::int),"
	" finished_at = CASE WHEN $3 = 'queued' THEN NULL ELSE now() END, progress = $3,"
	" progress_page = CASE WHEN $3 = 'queued' THEN NULL ELSE progress_page END,"
	" progress_pages = CASE WHEN $3 = 'queued' THEN NULL ELSE progress_pages END"
	" WHERE id = $1::bigint AND lease_token = $2::uuid AND state = 'running' RETURNING id",
	5};

enum qerr queue_fail(struct db *db, const struct job *job, enum qerr cause, const char *message, char **reterr)
{
	bool transient = qerr_group(cause) == QERR_GROUP_TRANSIENT;
	bool retry = transient && job->attempt < job->max_attempts;
	const char *state = retry ? "queued" : transient ? "dead" : "failed";
	char d[16];
	int_text(d, sizeof d, retry ? queue_backoff_s(job->attempt) : 0);
	g_autofree char *msg = clip_error(message ? message : qerr_str(cause));
	struct db_param extra[3] = {DB_TEXT(state), DB_TEXT(msg), DB_TEXT(d)};
	return fenced_update(db, job, &fail_stmt, 3, extra, reterr);
}

static enum qerr set_document_state(struct db *db, int64_t doc_id, const char *state, char **reterr)
{
	char id[24];
	int_text(id, sizeof id, doc_id);
	struct db_param p[2] = {DB_TEXT(id), DB_TEXT(state)};
	return db_query(db, "UPDATE documents SET state = $2 WHERE id = $1::bigint", 2, p, NULL, reterr);
}

static const struct db_stmt release_stmt = {
	"queue_release",
	"UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0), lease_token = NULL,"
	" lease_expires_at = NULL, progress = 'released', last_error = $3,"
	" progress_page = NULL, progress_pages = NULL"
	" WHERE id = $1::bigint AND lease_token = $2::uuid AND state = 'running' RETURNING id",
	3};

enum qerr queue_release(struct db *db, const struct job *job, const char *why, char **reterr)
{
	g_autofree char *msg = clip_error(why);
	struct db_param extra[1] = {DB_TEXT(msg)};
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = fenced_update(db, job, &release_stmt, 1, extra, reterr);
	if (!e)
		e = set_document_state(db, job->document_id, "queued", reterr);
	if (!e)
		e = audit_job(db, "system:worker", job->document_id, "job.released", "requeued", msg, reterr);
	if (!e)
		e = notify(db, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

static const struct db_stmt progress_stmt = {
	"queue_progress",
	"UPDATE jobs SET progress = $3, progress_page = $4::int, progress_pages = $5::int, heartbeat_at = now(),"
	" lease_expires_at = greatest(lease_expires_at, now() + make_interval(secs => $6::int))"
	" WHERE id = $1::bigint AND lease_token = $2::uuid AND state = 'running' RETURNING id",
	6};

enum qerr queue_progress_pages(struct db *db, const struct job *job, const char *step, int page, int pages,
                               char **reterr)
{
	char spage[16], spages[16], lease[16];
	int_text(spage, sizeof spage, page);
	int_text(spages, sizeof spages, pages);
	int_text(lease, sizeof lease, job->lease_s > 0 ? job->lease_s : 60);
	g_autofree char *note = clip_error(step);
	struct db_param extra[4] = {DB_TEXT(note), DB_TEXT(pages > 0 ? spage : NULL), DB_TEXT(pages > 0 ? spages : NULL),
	                            DB_TEXT(lease)};
	return fenced_update(db, job, &progress_stmt, 4, extra, reterr);
}

enum qerr queue_progress(struct db *db, const struct job *job, const char *note, char **reterr)
{
	return queue_progress_pages(db, job, note, 0, 0, reterr);
}

static enum qerr reap_tx(struct db *db, int *requeued, int *dead, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(
		db,
		"WITH expired AS (SELECT id FROM jobs WHERE state = 'running' AND lease_expires_at < now()"
		"                 ORDER BY lease_expires_at FOR UPDATE SKIP LOCKED LIMIT " REAP_BATCH "),"
		" moved AS (UPDATE jobs j SET"
		"   state = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'queued' END,"
		"   last_error = 'the lease of attempt ' || j.attempts || ' of ' || j.max_attempts || ' expired: worker '"
		"     || coalesce(j.worker, '?') || ' stopped responding (crashed, hung or cut off from the database)',"
		"   lease_token = NULL, lease_expires_at = NULL,"
		"   finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,"
		"   progress = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'queued' END,"
		"   progress_page = NULL, progress_pages = NULL"
		"   FROM expired x WHERE j.id = x.id RETURNING j.id, j.document_id, j.state, j.last_error),"
		" docs AS (UPDATE documents d SET state = CASE WHEN m.state = 'queued' THEN 'queued' ELSE 'failed' END"
		"   FROM moved m WHERE d.id = m.document_id)"
		" SELECT id, document_id, state, last_error FROM moved ORDER BY id",
		0, NULL, &res, reterr);
	for (int r = 0; !e && r < db_res_rows(res); r++) {
		bool back = strcmp(db_res_text(res, r, 2), "queued") == 0;
		*(back ? requeued : dead) += 1;
		e = audit_job(db, "system:reaper", db_res_int(res, r, 1), "job.lease_expired", back ? "requeued" : "dead",
		              db_res_text(res, r, 3), reterr);
	}
	db_res_free(res);
	if (!e && *requeued > 0)
		e = notify(db, reterr);
	return e;
}

enum qerr queue_reap(struct db *db, int *ret_requeued, int *ret_dead, char **reterr)
{
	int requeued = 0, dead = 0;
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = reap_tx(db, &requeued, &dead, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e) {
		db_rollback(db);
		return e;
	}
	if (ret_requeued)
		*ret_requeued = requeued;
	if (ret_dead)
		*ret_dead = dead;
	return QERR_OK;
}

enum qerr queue_prune(struct db *db, int done_h, int failed_h, int *ret_deleted, char **reterr)
{
	char d[16], f[16];
	int_text(d, sizeof d, done_h > 0 ? done_h : 0);
	int_text(f, sizeof f, failed_h > 0 ? failed_h : 0);
	struct db_param p[2] = {DB_TEXT(d), DB_TEXT(f)};
	struct db_res *res = NULL;
	enum qerr e = db_query(
		db,
		"WITH old AS (SELECT id FROM jobs WHERE finished_at IS NOT NULL AND ("
		"   (state IN ('done', 'cancelled') AND $1::int > 0 AND finished_at < now() - make_interval(hours => $1::int))"
		"   OR (state IN ('failed', 'dead') AND $2::int > 0"
		"       AND finished_at < now() - make_interval(hours => $2::int))) LIMIT " PRUNE_BATCH "),"
		" gone AS (DELETE FROM jobs WHERE id IN (SELECT id FROM old) RETURNING 1)"
		" SELECT count(*) FROM gone",
		2, p, &res, reterr);
	if (e)
		return e;
	if (ret_deleted)
		*ret_deleted = (int)db_res_int(res, 0, 0);
	db_res_free(res);
	return QERR_OK;
}

/* Why an operator action matched no row: the job is unknown or in another state. */
static enum qerr explain_refusal(struct db *db, const char *id, const char *action, char **reterr)
{
	struct db_param p[1] = {DB_TEXT(id)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db, "SELECT state FROM jobs WHERE id = $1::bigint", 1, p, &res, reterr);
	if (e)
		return e;
	if (db_res_rows(res) == 0)
		e = qerr_set(reterr, QERR_NOT_FOUND, "job %s does not exist (or was pruned)", id);
	else
		e = qerr_set(reterr, QERR_CONFLICT, "job %s is %s: it cannot be %s", id, db_res_text(res, 0, 0), action);
	db_res_free(res);
	return e;
}

/* One operator action: sql ($1 = job id) returns the document id when it applied. */
static enum qerr operator_action(struct db *db, int64_t job_id, const char *actor, const char *sql,
                                 const char *action, const char *doc_state, char **reterr)
{
	char id[24];
	int_text(id, sizeof id, job_id);
	struct db_param p[1] = {DB_TEXT(id)};
	struct db_res *res = NULL;
	int64_t doc = 0;
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = db_query(db, sql, 1, p, &res, reterr);
	if (!e && db_res_rows(res) != 1)
		e = explain_refusal(db, id, action, reterr);
	if (!e)
		doc = db_res_int(res, 0, 0);
	db_res_free(res);
	if (!e)
		e = set_document_state(db, doc, doc_state, reterr);
	g_autofree char *detail = g_strdup_printf("job %s", id);
	g_autofree char *what = g_strdup_printf("job.%s", action);
	if (!e)
		e = audit_job(db, actor, doc, what, "ok", detail, reterr);
	if (!e && strcmp(doc_state, "queued") == 0)
		e = notify(db, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

enum qerr queue_cancel(struct db *db, int64_t job_id, const char *actor, char **reterr)
{
	return operator_action(db, job_id, actor,
	                       "UPDATE jobs SET state = 'cancelled', lease_token = NULL, lease_expires_at = NULL,"
	                       " finished_at = now(), progress = 'cancelled'"
	                       " WHERE id = $1::bigint AND state IN ('queued', 'running') RETURNING document_id",
	                       "cancelled", "cancelled", reterr);
}

enum qerr queue_retry(struct db *db, int64_t job_id, const char *actor, char **reterr)
{
	return operator_action(db, job_id, actor,
	                       "UPDATE jobs SET state = 'queued', attempts = 0, run_at = now(), finished_at = NULL,"
	                       " lease_token = NULL, lease_expires_at = NULL, progress = 'queued again by an operator',"
	                       " progress_page = NULL, progress_pages = NULL"
	                       " WHERE id = $1::bigint AND state IN ('failed', 'dead', 'cancelled') RETURNING document_id",
	                       "retried", "queued", reterr);
}

enum qerr queue_retry_pending(struct db *db, bool *ret, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db, "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND attempts > 0)", 0,
	                       NULL, &res, reterr);
	if (e)
		return e;
	*ret = strcmp(db_res_text(res, 0, 0), "t") == 0;
	db_res_free(res);
	return QERR_OK;
}

enum qerr queue_next_due_ms(struct db *db, int64_t *ret_ms, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT coalesce(greatest(0, ceil(extract(epoch FROM min(run_at) - now()) * 1000))::bigint,"
	                       " -1) FROM jobs WHERE state = 'queued'",
	                       0, NULL, &res, reterr);
	if (e)
		return e;
	*ret_ms = db_res_int(res, 0, 0);
	db_res_free(res);
	return QERR_OK;
}
