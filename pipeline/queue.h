/* queue: the job queue in PostgreSQL.
 *
 * A job row is the durable state of a job; struct job lives for one attempt.
 * States: queued -> running -> done | failed | dead | cancelled, and back to
 * queued on a retry. Delivery is at least once; completion takes effect once:
 *
 * - Claiming picks the first due queued job by priority (higher first), then
 *   run-at, then id, with FOR UPDATE SKIP LOCKED, and marks it running in the
 *   same statement with a fresh lease token and a lease expiry. The partial
 *   index jobs_claim_idx serves exactly that query.
 * - The worker renews the lease by heartbeat. When a lease runs out (the
 *   worker crashed, hung or lost the database) queue_reap() puts the job back
 *   in the queue, or declares it dead once it used all its attempts. A job put
 *   back (lease expired, or released at shutdown) keeps its run-at, and so its
 *   place in line: it runs before the jobs queued after it, not behind them.
 * - Completion, failure, progress and release are fenced: they take effect
 *   only while the job is still running under the caller's lease token, so a
 *   worker that lost its lease cannot overwrite a newer attempt (QERR_CONFLICT).
 * - Everything that makes a job claimable sends NOTIFY quire_jobs (delivered
 *   at commit), so idle workers wake at once; they poll slowly as a fallback.
 *
 * Functions that change more than the job row (document state, audit entries)
 * open their own transaction and say so; the others run in the caller's. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/qerr.h"

struct db;

#define QUEUE_CHANNEL "quire_jobs"
/* Longest error message kept on a job row; longer ones are cut. */
#define QUEUE_MAX_ERROR 2000
/* Most leases renewed by one heartbeat statement. */
#define QUEUE_MAX_HEARTBEAT 256

struct job {
	int64_t id;
	int64_t document_id;
	int attempt;
	int max_attempts;
	int lease_s;
	char lease_token[40];
};

/* How a new job is queued. Zero values are the defaults. */
struct queue_new {
	int priority;         /* higher runs first; default 0 */
	int max_attempts;     /* 0: 3 */
	const char *run_at;   /* not before this time (timestamptz text, e.g. "2026-03-01 08:00+00"); NULL: now */
	int delay_s;          /* or not before now + delay_s */
};

/* Enqueues a processing job for doc_id (call inside the document's transaction). */
enum qerr queue_add(struct db *db, int64_t doc_id, const struct queue_new *n, int64_t *ret_job_id, char **reterr)
	QUIRE_MUST_CHECK;
/* queue_add() with only a priority and an attempt limit. */
enum qerr queue_enqueue(struct db *db, int64_t doc_id, int priority, int max_attempts, int64_t *ret_job_id,
                        char **reterr) QUIRE_MUST_CHECK;

/* Claims the next due job with a lease of lease_s seconds. *ret_found is false when none is
 * waiting (then *ret is untouched). */
enum qerr queue_claim(struct db *db, const char *worker, int lease_s, struct job *ret, bool *ret_found,
                      char **reterr) QUIRE_MUST_CHECK;

/* Renews the leases of n running jobs (n <= QUEUE_MAX_HEARTBEAT) in one statement.
 * ret_held[i] becomes false where job i is no longer held under its token. */
enum qerr queue_heartbeat(struct db *db, const struct job *jobs, int n, bool *ret_held, char **reterr)
	QUIRE_MUST_CHECK;

/* Marks the job done if the caller still holds its lease (call inside the transaction that
 * stores the result). QERR_CONFLICT when the lease was lost. */
enum qerr queue_complete(struct db *db, const struct job *job, char **reterr) QUIRE_MUST_CHECK;
/* Records a failed attempt. Transient causes are retried later with capped exponential
 * backoff and jitter until max_attempts, then the job is dead; other causes fail it at once.
 * QERR_CONFLICT when the lease was lost. */
enum qerr queue_fail(struct db *db, const struct job *job, enum qerr cause, const char *message, char **reterr)
	QUIRE_MUST_CHECK;
/* Seconds to wait before attempt number attempt+1 after a transient failure of attempt
 * number `attempt`: 2^attempt capped at 600, plus up to half again of jitter. */
int queue_backoff_s(int attempt);
/* Gives a running job back to the queue without counting the attempt (worker shutdown):
 * job row, document state, audit entry and NOTIFY in its own transaction. */
enum qerr queue_release(struct db *db, const struct job *job, const char *why, char **reterr) QUIRE_MUST_CHECK;

/* Stores the current step and, when pages > 0, "page N of M"; also renews the lease. */
enum qerr queue_progress(struct db *db, const struct job *job, const char *note, char **reterr) QUIRE_MUST_CHECK;
enum qerr queue_progress_pages(struct db *db, const struct job *job, const char *step, int page, int pages,
                               char **reterr) QUIRE_MUST_CHECK;

/* Returns running jobs whose lease expired to the queue, or to dead past their attempt limit,
 * at most 500 per call, in its own transaction (document states and audit entries included).
 * Either count pointer may be NULL. */
enum qerr queue_reap(struct db *db, int *ret_requeued, int *ret_dead, char **reterr) QUIRE_MUST_CHECK;
/* Deletes done and cancelled jobs finished more than done_h hours ago and failed and dead jobs
 * finished more than failed_h hours ago (0: keep), at most 5000 per call. */
enum qerr queue_prune(struct db *db, int done_h, int failed_h, int *ret_deleted, char **reterr) QUIRE_MUST_CHECK;

/* Operator actions, each in its own transaction with an audit entry by actor.
 * Cancel: a queued or running job becomes cancelled (a running attempt loses its lease).
 * Retry: a failed, dead or cancelled job is queued again now with a fresh set of attempts.
 * QERR_NOT_FOUND for an unknown job, QERR_CONFLICT when the state does not allow it. */
enum qerr queue_cancel(struct db *db, int64_t job_id, const char *actor, char **reterr) QUIRE_MUST_CHECK;
enum qerr queue_retry(struct db *db, int64_t job_id, const char *actor, char **reterr) QUIRE_MUST_CHECK;

/* *ret: whether a queued job waits for another attempt after a transient error
 * (a draining worker waits for those before it stops). */
enum qerr queue_retry_pending(struct db *db, bool *ret, char **reterr) QUIRE_MUST_CHECK;
/* Milliseconds until the earliest scheduled queued job is due (0 when one is due now);
 * *ret_ms is -1 when nothing is queued. */
enum qerr queue_next_due_ms(struct db *db, int64_t *ret_ms, char **reterr) QUIRE_MUST_CHECK;
