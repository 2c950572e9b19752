/* queue: the job queue in PostgreSQL.
 *
 * A job row is the durable state of a job; struct job lives for one attempt.
 * Claiming picks the first queued job by priority then run-at with FOR UPDATE
 * SKIP LOCKED and marks it running in the same statement, with a fresh lease
 * token. Completion and failure are fenced: they take effect only while the
 * job is still running under the caller's lease token, so a worker that lost
 * its lease cannot overwrite a newer attempt. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/qerr.h"

struct db;

struct job {
	int64_t id;
	int64_t document_id;
	int attempt;
	int max_attempts;
	char lease_token[40];
};

/* Enqueues a processing job for doc_id (call inside the document's transaction). */
enum qerr queue_enqueue(struct db *db, int64_t doc_id, int priority, int max_attempts, int64_t *ret_job_id,
                        char **reterr) QUIRE_MUST_CHECK;
/* Claims the next due job. *ret_found is false when none is waiting. */
enum qerr queue_claim(struct db *db, const char *worker, int lease_s, struct job *ret, bool *ret_found,
                      char **reterr) QUIRE_MUST_CHECK;
/* Marks the job done if the caller still holds its lease (call inside the transaction that
 * stores the result). QERR_CONFLICT when the lease was lost. */
enum qerr queue_complete(struct db *db, const struct job *job, char **reterr) QUIRE_MUST_CHECK;
/* Records a failed attempt. Transient causes are retried later with capped exponential
 * backoff until max_attempts, then the job is dead; other causes fail it at once. */
enum qerr queue_fail(struct db *db, const struct job *job, enum qerr cause, const char *message, char **reterr)
	QUIRE_MUST_CHECK;
/* Stores a short progress note ("extracting page 3 of 10"). */
enum qerr queue_progress(struct db *db, const struct job *job, const char *note, char **reterr) QUIRE_MUST_CHECK;
