/* test_queue_util: what the queue tests share: a throwaway PostgreSQL that a
 * test may stop and start again, a key file, generated PDFs, and the real
 * quire binary run as worker processes against that database. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct db;
struct vault;

struct qt {
	char *dir;      /* temporary directory holding everything */
	char *pgdir;    /* the cluster's data directory */
	char *conninfo;
	char *key;      /* key file */
	struct db *db;
	struct vault *vault;
};

/* Starts the cluster (migrations applied), creates the key file, connects. Aborts on failure. */
void qt_start(struct qt *t);
/* Stops the cluster and removes the directory. */
void qt_stop(struct qt *t);
/* Stops / starts the PostgreSQL server only (the data stays). */
void qt_pg_down(struct qt *t);
void qt_pg_up(struct qt *t);
struct db *qt_connect(const struct qt *t);

/* A real invoice PDF with the given number and pages (g_free). */
char *qt_invoice(const char *number, int pages, size_t *ret_len);
/* Stores a document and queues its job with the given priority; returns the job id. */
int64_t qt_submit(struct qt *t, const char *number, int pages, int priority, int64_t *ret_doc);
/* Stores a document whose parse fails (a damaged PDF): a permanent failure. */
int64_t qt_submit_damaged(struct qt *t, int n);

/* The first cell of a query as a number / as text (g_free). Aborts on error. */
int64_t qt_int(struct db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *qt_text(struct db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qt_exec(struct db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts `quire worker` with extra arguments (NULL-terminated) against the database;
 * lease_s is its worker.lease_s; worker.grace_s is 5 unless the test's environment sets
 * QUIRE_WORKER_GRACE_S. Its stderr goes to <dir>/worker-<pid>.log. */
pid_t qt_worker(struct qt *t, int lease_s, ...) __attribute__((sentinel));
/* Runs `quire ARGS...` (NULL-terminated) with the same settings as qt_worker() and waits for
 * it; *ret_status is its exit status (-1 after 300 s). Returns its stdout and stderr (g_free). */
char *qt_quire(struct qt *t, int *ret_status, ...) __attribute__((sentinel));
/* Waits for a process up to timeout_s; returns its exit status, or -1 on timeout. */
int qt_wait(pid_t pid, int timeout_s);
/* Polls until the query's first cell, as a number, reaches want; false at the timeout. */
bool qt_until(struct db *db, int64_t want, int timeout_s, const char *sql);
