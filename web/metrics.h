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
 *   quire_ocr_pages_total                pages read by OCR
 *   quire_pages_read_total{method}       pages by method: text, ocr, none
 *   quire_model_documents_total          jobs whose fields the model read
 *   quire_model_tokens_total{kind}       model tokens: prompt, generated
 *   quire_model_generation_seconds_total time the model spent generating
 *   quire_model_tokens_per_second        generated tokens per generation second, overall
 * Counters come from the append-only audit log or the counters table
 * (pipeline/counters.h, added to when a job completes), so they never go down.
 * Label values are fixed texts (states, qerr descriptions), never document data. */
#pragma once

#include "core/qerr.h"

struct db;

/* Formats the metrics; *ret is owned by the caller (g_free). On a database error the text
 * still comes back, with quire_db_up 0 and nothing else. */
enum qerr metrics_format(struct db *db, char **ret, char **reterr) QUIRE_MUST_CHECK;
