/* queue: enqueue, claim, fenced completion and failure. */
#include "pipeline/queue.h"

#include <glib.h>
#include <string.h>

#include "core/db.h"

enum qerr queue_enqueue(struct db *db, int64_t doc_id, int priority, int max_attempts, int64_t *ret_job_id,
                        char **reterr)
{
	char id[24], prio[16], max[16];
	g_snprintf(id, sizeof id, "%lld", (long long)doc_id);
	g_snprintf(prio, sizeof prio, "%d", priority);
	g_snprintf(max, sizeof max, "%d", max_attempts);
	struct db_param p[3] = {DB_TEXT(id), DB_TEXT(prio), DB_TEXT(max)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "INSERT INTO jobs (document_id, priority, max_attempts) VALUES ($1::bigint, $2::int, $3::int)"
	                       " RETURNING id",
	                       3, p, &res, reterr);
	if (e)
		return e;
	*ret_job_id = db_res_int(res, 0, 0);
	db_res_free(res);
	return db_exec(db, "NOTIFY quire_jobs", reterr);
}

enum qerr queue_claim(struct db *db, const char *worker, int lease_s, struct job *ret, bool *ret_found, char **reterr)
{
	char lease[16];
	g_snprintf(lease, sizeof lease, "%d", lease_s);
	struct db_param p[2] = {DB_TEXT(worker), DB_TEXT(lease)};
	struct db_res *res = NULL;
	enum qerr e = db_query(
		db,
		"UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = gen_random_uuid(),"
		" lease_expires_at = now() + make_interval(secs => $2::int), worker = $1, started_at = now(),"
		" progress = 'claimed'"
		" WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= now()"
		"             ORDER BY priority DESC, run_at, id FOR UPDATE SKIP LOCKED LIMIT 1)"
		" RETURNING id, document_id, attempts, max_attempts, lease_token",
		2, p, &res, reterr);
	if (e)
		return e;
	*ret_found = db_res_rows(res) == 1;
	if (*ret_found) {
		ret->id = db_res_int(res, 0, 0);
		ret->document_id = db_res_int(res, 0, 1);
		ret->attempt = (int)db_res_int(res, 0, 2);
		ret->max_attempts = (int)db_res_int(res, 0, 3);
		g_strlcpy(ret->lease_token, db_res_text(res, 0, 4), sizeof ret->lease_token);
	}
	db_res_free(res);
	return QERR_OK;
}

static enum qerr fenced_update(struct db *db, const struct job *job, const char *sql, int n_extra,
                               const struct db_param *extra, char **reterr)
{
	char id[24];
	g_snprintf(id, sizeof id, "%lld", (long long)job->id);
	struct db_param p[6] = {DB_TEXT(id), DB_TEXT(job->lease_token)};
	for (int i = 0; i < n_extra && i < 4; i++)
		p[2 + i] = extra[i];
	struct db_res *res = NULL;
	enum qerr e = db_query(db, sql, 2 + n_extra, p, &res, reterr);
	if (e)
		return e;
	int rows = db_res_rows(res);
	db_res_free(res);
	if (rows != 1)
		return qerr_set(reterr, QERR_CONFLICT, "job %lld is no longer held by this worker (lease lost)",
		                (long long)job->id);
	return QERR_OK;
}

enum qerr queue_complete(struct db *db, const struct job *job, char **reterr)
{
	return fenced_update(db, job,
	                     "UPDATE jobs SET state = 'done', finished_at = now(), lease_token = NULL,"
	                     " lease_expires_at = NULL, progress = 'done', last_error = NULL"
	                     " WHERE id = $1::bigint AND lease_token = $2::uuid AND state = 'running' RETURNING id",
	                     0, NULL, reterr);
}

enum qerr queue_fail(struct db *db, const struct job *job, enum qerr cause, const char *message, char **reterr)
{
	bool retry = qerr_group(cause) == QERR_GROUP_TRANSIENT && job->attempt < job->max_attempts;
	const char *state = retry ? "queued" : (qerr_group(cause) == QERR_GROUP_TRANSIENT ? "dead" : "failed");
	/* Capped exponential backoff with jitter: 2^attempt seconds, at most 10 minutes. */
	int delay = 1 << (job->attempt < 9 ? job->attempt : 9);
	if (delay > 600)
		delay = 600;
	delay += g_random_int_range(0, delay / 2 + 1);
	char d[16];
	g_snprintf(d, sizeof d, "%d", retry ? delay : 0);
	struct db_param extra[3] = {DB_TEXT(state), DB_TEXT(message), DB_TEXT(d)};
	return fenced_update(db, job,
	                     "UPDATE jobs SET state = $3, last_error = $4, lease_token = NULL, lease_expires_at = NULL,"
	                     " run_at = now() + make_interval(secs => $5::int),"
	                     " finished_at = CASE WHEN $3 = 'queued' THEN NULL ELSE now() END, progress = $3"
	                     " WHERE id = $1::bigint AND lease_token = $2::uuid AND state = 'running' RETURNING id",
	                     3, extra, reterr);
}

enum qerr queue_progress(struct db *db, const struct job *job, const char *note, char **reterr)
{
	struct db_param extra[1] = {DB_TEXT(note)};
	return fenced_update(db, job,
	                     "UPDATE jobs SET progress = $3 WHERE id = $1::bigint AND lease_token = $2::uuid"
	                     " AND state = 'running' RETURNING id",
	                     1, extra, reterr);
}
