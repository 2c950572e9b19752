/* worker: claims jobs and takes each document through extraction.
 *
 * One attempt: claim (audited), open the sealed original in guarded memory,
 * extract in the sandbox, seal the page text and the result, mark the document
 * processed and complete the job under its lease, all in one transaction with
 * the audit entry. A failure is recorded on the job (retried or failed by its
 * cause) and never stops the worker.
 *
 * With a connection string the worker runs `concurrency` job threads, each
 * with its own database connection (libpq connections are not shared between
 * threads), and the calling thread becomes the keeper: it renews the leases of
 * the jobs in flight (heartbeat), runs the reaper (expired leases of crashed
 * workers, on any host) and prunes finished jobs. A connection that breaks is
 * reopened with capped exponential backoff; a result computed while the
 * database was away is saved once it is back, if the lease still holds. The
 * model, when there is one, serves one thread at a time.
 *
 * Stopping (*stop becomes non-zero): no new job is claimed; jobs in flight get
 * grace_s seconds to finish, then the keeper releases them to the queue (their
 * late completion is fenced off) and worker_run returns once every thread has
 * returned (a thread in the sandbox is bounded by the parse time limit). */
#pragma once

#include <stdbool.h>

#include "core/qerr.h"
#include "extractors/extract.h"

struct db;
struct vault;

struct worker_options {
	const char *name; /* e.g. "host:pid" */
	int lease_s;
	bool drain;       /* stop when no job is waiting */
	struct extract_options extract;
	/* Connection string for the job threads and the keeper. NULL: one job at a time on the
	 * caller's connection, no reconnection, no heartbeat while a document is extracted. */
	const char *conninfo;
	int concurrency;      /* job threads (with conninfo); 0: 1 */
	int grace_s;          /* time jobs in flight get after a stop request; 0: 30 */
	int poll_ms;          /* claim at least this often without a notification; 0: 5000 */
	int retention_h;      /* prune done and cancelled jobs after this many hours; 0: keep */
	int dead_retention_h; /* prune failed and dead jobs after this many hours; 0: keep */
};

struct worker_stats {
	int done;
	int failed;
	int released; /* handed back to the queue at shutdown */
};

/* Runs jobs until the queue is empty (drain) or *stop becomes non-zero. db is borrowed and
 * used only without opt->conninfo (it may then be NULL). */
enum qerr worker_run(struct db *db, const struct vault *v, const struct worker_options *opt, volatile int *stop,
                     struct worker_stats *ret, char **reterr) QUIRE_MUST_CHECK;
