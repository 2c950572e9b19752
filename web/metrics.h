/* metrics: Quire's figures in the Prometheus text exposition format (GET /metrics).
 *
 * Everything is read from the database, so every worker process on every host
 * is counted, and a scrape after a restart sees the same counters:
 *   quire_db_up                          1 when the queries below answered
 *   quire_jobs{state}                    jobs by state (gauge)
 *   quire_job_oldest_queued_seconds      age of the oldest due queued job
 *   quire_job_duration_seconds           claim-to-finish time of the jobs done in
 *                                        the last hour (summary: 0.5, 0.9, 0.99)
 *   quire_jobs_completed_total           completions ever (from the audit log)
 *   quire_job_failures_total{reason}     failed attempts ever, by reason (audit log)
 *   quire_documents{state}               documents by state (gauge)
 *   quire_pages_processed_total          pages of processed documents
 *   quire_watch_rejected_total           files the watched folder refused
 * Counters come from the append-only audit log, so they never go down.
 * Label values are fixed texts (states, qerr descriptions), never document data. */
#pragma once

#include "core/qerr.h"

struct db;

/* Formats the metrics; *ret is owned by the caller (g_free). On a database error the text
 * still comes back, with quire_db_up 0 and nothing else. */
enum qerr metrics_format(struct db *db, char **ret, char **reterr) QUIRE_MUST_CHECK;
