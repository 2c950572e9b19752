/* worker: claims jobs and takes each document through extraction.
 *
 * One attempt: claim (audited), open the sealed original in guarded memory,
 * extract in the sandbox, seal the page text and the result, mark the document
 * processed and complete the job under its lease, all in one transaction with
 * the audit entry. A failure is recorded on the job (retried or failed by its
 * cause) and never stops the worker. */
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
};

struct worker_stats {
	int done;
	int failed;
};

/* Runs jobs until the queue is empty (drain) or *stop becomes true. */
enum qerr worker_run(struct db *db, const struct vault *v, const struct worker_options *opt, volatile int *stop,
                     struct worker_stats *ret, char **reterr) QUIRE_MUST_CHECK;
