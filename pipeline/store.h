/* store: documents and their sealed payloads in the database.
 *
 * A document row holds metadata only; the original, its file name, the
 * extracted text and the results are payload rows sealed under the document's
 * own data key (core/vault.h), which is stored wrapped. Submitting the same
 * content twice returns the existing document (matched by a keyed hash). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"
#include "pipeline/queue.h"

struct db;
struct vault;
struct vault_buf;
struct vault_dek;

struct store_submitted {
	int64_t doc_id;
	int64_t job_id;
	bool existing; /* the same content was already submitted */
};

/* Checks the bytes (non-empty, a PDF, at most max_bytes) before anything is stored. */
enum qerr store_check_pdf(const void *pdf, size_t len, size_t max_bytes, char **reterr) QUIRE_MUST_CHECK;

/* Seals and stores the original and its name, enqueues a job and audits it, in one transaction. */
enum qerr store_submit(struct db *db, const struct vault *v, const char *filename, const void *pdf, size_t len,
                       const char *actor, int max_attempts, struct store_submitted *ret, char **reterr)
	QUIRE_MUST_CHECK;

#define STORE_MAX_IDEMPOTENCY_KEY 200

struct store_submit_options {
	/* The client's key for this upload: the same key returns the same document, whatever the
	 * bytes (a retried upload). Stored only as a keyed hash. NULL: none. */
	const char *idempotency_key;
	struct queue_new job; /* priority, run-at, attempt limit of the job */
	const char *doc_type; /* document type given by the submitter (overrides classification); NULL: none */
};

/* store_submit() with an idempotency key and the job's priority and schedule. */
enum qerr store_submit_with(struct db *db, const struct vault *v, const char *filename, const void *pdf, size_t len,
                            const char *actor, const struct store_submit_options *o, struct store_submitted *ret,
                            char **reterr) QUIRE_MUST_CHECK;

/* The document type given at submission (g_free), or NULL in *ret when none was. */
enum qerr store_doc_type_given(struct db *db, int64_t doc_id, char **ret, char **reterr) QUIRE_MUST_CHECK;

/* The document's data key, unwrapped (vault_dek_free). QERR_NOT_FOUND for an unknown id. */
enum qerr store_dek(struct db *db, const struct vault *v, int64_t doc_id, struct vault_dek **ret, char **reterr)
	QUIRE_MUST_CHECK;
/* Seals and stores (replacing) a payload. */
enum qerr store_put(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose, const void *data,
                    size_t len, char **reterr) QUIRE_MUST_CHECK;
/* Loads and opens a payload into guarded memory (vault_buf_free). QERR_NOT_FOUND when absent. */
enum qerr store_get(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                    struct vault_buf *ret, char **reterr) QUIRE_MUST_CHECK;
