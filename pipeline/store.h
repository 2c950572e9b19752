/* store: documents and their sealed payloads in the database.
 *
 * A document row holds metadata only; the original, its file name, the
 * extracted text and the results are payload rows sealed under the document's
 * own data key (core/vault.h), which is stored wrapped. Submitting the same
 * content twice returns the existing document (matched by a keyed hash).
 *
 * Originals are written by a store_writer as they arrive, one sealed chunk
 * row (payload_chunks, migration 0006) per 64 KiB, so neither a whole upload
 * nor its ciphertext is ever held in memory by the writer; a store_reader
 * opens it again one chunk at a time (the worker and the page renderer feed
 * the parser so), and store_get() still returns it whole. */
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
                       const char *actor, int max_attempts, struct store_submitted *ret,
                       char **reterr) QUIRE_MUST_CHECK;

#define STORE_MAX_IDEMPOTENCY_KEY 200

struct store_submit_options {
	/* The client's key for this upload: the same key returns the same document, whatever the
	 * bytes (a retried upload). Stored only as a keyed hash. NULL: none. */
	const char *idempotency_key;
	struct queue_new job; /* priority, run-at, attempt limit of the job */
	const char *doc_type; /* document type given by the submitter (overrides classification); NULL: none */
	const char *password; /* an encrypted PDF's password, stored sealed as payload "password"; NULL: none */
};

/* store_submit() with an idempotency key and the job's priority and schedule. */
enum qerr store_submit_with(struct db *db, const struct vault *v, const char *filename, const void *pdf, size_t len,
                            const char *actor, const struct store_submit_options *o, struct store_submitted *ret,
                            char **reterr) QUIRE_MUST_CHECK;

/* A streaming submission of one original, for content that is never held whole.
 *
 * It works inside the caller's open transaction (db_begin), in a savepoint of its own:
 * a refused or abandoned file leaves nothing, files written before it on the same
 * transaction stay. One writer at a time per connection. store_writer_open() makes the
 * document row (its content hash still unknown) and starts the sealed stream;
 * store_writer_write() checks the bytes as they come (the size limit, the %PDF- signature
 * within the first KiB), hashes them with the dedupe key and stores each complete chunk
 * sealed; store_writer_finish() seals the last chunk and either finds a document with the
 * same content (and drops what was written) or stores the file name and enqueues the job.
 * The caller audits and commits. The writer holds two chunks of memory, whatever the size.
 * After an error from store_writer_write(), only store_writer_abort() remains. */
struct store_writer;

struct store_writer_options {
	size_t max_bytes;     /* the file's limit (QERR_TOO_LARGE beyond it); 0: VAULT_MAX_PAYLOAD */
	bool require_pdf;     /* QERR_NOT_PDF unless %PDF- is within the first 1024 bytes */
	struct queue_new job; /* copied, run_at included */
	const char *doc_type; /* as in store_submit_options; copied */
	const char *password; /* as in store_submit_options; copied into guarded memory */
};

/* *ret is finished or aborted by the caller (each frees it). */
enum qerr store_writer_open(struct db *db, const struct vault *v, const struct store_writer_options *o,
                            struct store_writer **ret, char **reterr) QUIRE_MUST_CHECK;
/* The next len bytes of the file. QERR_TOO_LARGE, QERR_NOT_PDF, or a database error. */
enum qerr store_writer_write(struct store_writer *w, const void *data, size_t len, char **reterr) QUIRE_MUST_CHECK;
/* Ends the file and frees w, whatever the outcome; on failure nothing of the file stays.
 * *ret: the new document, or the one with the same content (ret->existing). QERR_EMPTY for
 * no bytes at all. */
enum qerr store_writer_finish(struct store_writer *w, const char *filename, struct store_submitted *ret,
                              char **reterr) QUIRE_MUST_CHECK;
/* Drops the file (back to the writer's savepoint) and frees w; NULL is fine. */
void store_writer_abort(struct store_writer *w);
/* Bytes written so far. */
uint64_t store_writer_size(const struct store_writer *w);

/* Idempotency keys for callers that learn the key before the content (an upload's header):
 * the document submitted under key, if any (*ret_found; *ret only when found)... */
enum qerr store_find_key(struct db *db, const struct vault *v, const char *key, struct store_submitted *ret,
                         bool *ret_found, char **reterr) QUIRE_MUST_CHECK;
/* ...and recording key for doc_id once it is stored (QERR_CONFLICT when another document
 * holds the key; QERR_BAD_INPUT for a key over STORE_MAX_IDEMPOTENCY_KEY bytes). */
enum qerr store_set_key(struct db *db, const struct vault *v, int64_t doc_id, const char *key,
                        char **reterr) QUIRE_MUST_CHECK;

/* The document type given at submission (g_free), or NULL in *ret when none was. */
enum qerr store_doc_type_given(struct db *db, int64_t doc_id, char **ret, char **reterr) QUIRE_MUST_CHECK;

#define STORE_MAX_PASSWORD 1024

/* The password given at submission, in guarded memory (vault_buf_free), NUL-terminated (len
 * excludes the NUL); *ret stays empty when none was given. */
enum qerr store_password(struct db *db, const struct vault_dek *dek, int64_t doc_id, struct vault_buf *ret,
                         char **reterr) QUIRE_MUST_CHECK;

/* The document's data key, unwrapped (vault_dek_free). QERR_NOT_FOUND for an unknown id. */
enum qerr store_dek(struct db *db, const struct vault *v, int64_t doc_id, struct vault_dek **ret,
                    char **reterr) QUIRE_MUST_CHECK;
/* Seals and stores (replacing) a payload at version 1. */
enum qerr store_put(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose, const void *data,
                    size_t len, char **reterr) QUIRE_MUST_CHECK;
/* Seals and stores a new version of a small payload (not "original"; a version already there is a
 * conflict), binding the version into its box (layout 2, migrations/0010_payload_layout.sql): a box
 * copied to another version's row does not open. */
enum qerr store_put_version(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                            int32_t version, const void *data, size_t len, char **reterr) QUIRE_MUST_CHECK;
/* Loads and opens the newest version of a payload into guarded memory (vault_buf_free), in the layout
 * its row names. QERR_NOT_FOUND when absent. */
enum qerr store_get(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                    struct vault_buf *ret, char **reterr) QUIRE_MUST_CHECK;

/* An original opened for reading chunk by chunk: one chunk row fetched and
 * opened at a time, into guarded memory, checked in order and for its final
 * tag. store_reader_read() fits extractors/sandbox.h's source (ctx: the
 * reader); it fills *got with 0 only at the end. Errors: QERR_NOT_FOUND,
 * QERR_CRYPTO (missing, forged, reordered, truncated or extended chunks),
 * database errors. store_reader_close() frees. */
struct store_reader;
enum qerr store_reader_open(struct db *db, const struct vault_dek *dek, int64_t doc_id, struct store_reader **ret,
                            char **reterr) QUIRE_MUST_CHECK;
size_t store_reader_size(const struct store_reader *r);
enum qerr store_reader_read(void *reader, void *buf, size_t cap, size_t *got, char **reterr) QUIRE_MUST_CHECK;
void store_reader_close(struct store_reader *r);
