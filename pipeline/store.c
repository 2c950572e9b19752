/* store: sealed documents and payloads. */
#include "pipeline/store.h"

#include <glib.h>
#include <string.h>

#include "core/audit.h"
#include "core/db.h"
#include "core/vault.h"
#include "extractors/pdftext.h"
#include "pipeline/queue.h"

/* Originals can be large: they are sealed as a chunked secretstream, which detects
 * truncated, reordered and extended ciphertexts. Small payloads are one AEAD box. */
static bool streamed(const char *purpose) { return strcmp(purpose, "original") == 0; }

enum qerr store_check_pdf(const void *pdf, size_t len, size_t max_bytes, char **reterr)
{
	if (len == 0)
		return qerr_set(reterr, QERR_EMPTY, "the file is empty");
	if (len > max_bytes)
		return qerr_set(reterr, QERR_TOO_LARGE, "the file has %zu bytes; the limit is %zu (limits.max_file_mb)", len,
		                max_bytes);
	if (!pdftext_looks_like_pdf(pdf, len))
		return qerr_set(reterr, QERR_NOT_PDF, "the file is not a PDF (it does not start with %%PDF-)");
	return QERR_OK;
}

/* A document with the same content, or submitted under the same idempotency key (key_mac,
 * may be NULL); a key match wins. */
static enum qerr find_existing(struct db *db, const uint8_t mac[VAULT_HASH_BYTES], const uint8_t *key_mac,
                               struct store_submitted *ret, bool *found, char **reterr)
{
	struct db_param p[2] = {DB_BIN(mac, VAULT_HASH_BYTES),
	                        key_mac ? DB_BIN(key_mac, VAULT_HASH_BYTES) : DB_TEXT(NULL)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT d.id, coalesce((SELECT max(j.id) FROM jobs j WHERE j.document_id = d.id), 0)"
	                       " FROM documents d WHERE d.content_mac = $1 OR d.idempotency_mac = $2"
	                       " ORDER BY d.idempotency_mac = $2 DESC NULLS LAST LIMIT 1",
	                       2, p, &res, reterr);
	if (e)
		return e;
	*found = db_res_rows(res) == 1;
	if (*found) {
		ret->doc_id = db_res_int(res, 0, 0);
		ret->job_id = db_res_int(res, 0, 1);
		ret->existing = true;
	}
	db_res_free(res);
	return QERR_OK;
}

/* The key version new data keys are wrapped under. FOR SHARE holds it until the
 * transaction ends, so a rotation (which demotes it) waits for this document and
 * then finds it to rewrap. */
static enum qerr active_version(struct db *db, int32_t *ret, char **reterr)
{
	/* A statement that waited for a rotation to commit re-reads the demoted row but not the
	 * newly inserted one (its snapshot predates it) and sees none: asking again sees it. */
	for (int attempt = 0; attempt < 3; attempt++) {
		struct db_res *res = NULL;
		enum qerr e = db_query(db, "SELECT version FROM key_versions WHERE state = 'active' FOR SHARE", 0, NULL,
		                       &res, reterr);
		if (e)
			return e;
		bool found = db_res_rows(res) == 1;
		if (found)
			*ret = (int32_t)db_res_int(res, 0, 0);
		db_res_free(res);
		if (found)
			return QERR_OK;
	}
	return qerr_set(reterr, QERR_KEY, "no active key version in the database: run `quire keys rotate`");
}

static enum qerr insert_document(struct db *db, const struct vault *v, const struct vault_dek *dek,
                                 const uint8_t mac[VAULT_HASH_BYTES], size_t len, int64_t *ret_id, char **reterr)
{
	int32_t version = 0;
	enum qerr e = active_version(db, &version, reterr);
	if (e)
		return e;
	struct db_res *res = NULL;
	e = db_query(db, "SELECT nextval('documents_id_seq')", 0, NULL, &res, reterr);
	if (e)
		return e;
	int64_t id = db_res_int(res, 0, 0);
	db_res_free(res);
	g_autofree uint8_t *wrapped = NULL;
	size_t wlen = 0;
	e = vault_dek_wrap(v, dek, id, version, &wrapped, &wlen, reterr);
	if (e)
		return e;
	char sid[24], ssize[24], sver[16];
	g_snprintf(sid, sizeof sid, "%lld", (long long)id);
	g_snprintf(ssize, sizeof ssize, "%zu", len);
	g_snprintf(sver, sizeof sver, "%d", (int)version);
	struct db_param p[5] = {DB_TEXT(sid), DB_TEXT(ssize), DB_BIN(mac, VAULT_HASH_BYTES), DB_BIN(wrapped, wlen),
	                        DB_TEXT(sver)};
	e = db_query(db,
	             "INSERT INTO documents (id, size_bytes, content_mac, wrapped_key, key_version)"
	             " VALUES ($1::bigint, $2::bigint, $3, $4, $5::int)",
	             5, p, NULL, reterr);
	if (!e)
		*ret_id = id;
	return e;
}

/* Before the job can be claimed: the worker reads it when it starts. */
static enum qerr set_doc_type(struct db *db, int64_t id, const char *type, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)id);
	struct db_param p[2] = {DB_TEXT(sid), DB_TEXT(type)};
	return db_query(db, "UPDATE documents SET doc_type_given = $2 WHERE id = $1::bigint", 2, p, NULL, reterr);
}

enum qerr store_doc_type_given(struct db *db, int64_t doc_id, char **ret, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	struct db_param p[1] = {DB_TEXT(sid)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db, "SELECT doc_type_given FROM documents WHERE id = $1::bigint", 1, p, &res, reterr);
	if (!e && db_res_rows(res) == 0)
		e = qerr_set(reterr, QERR_NOT_FOUND, "no document %lld", (long long)doc_id);
	if (!e)
		*ret = db_res_isnull(res, 0, 0) ? NULL : g_strdup(db_res_text(res, 0, 0));
	db_res_free(res);
	return e;
}

static enum qerr submit_tx(struct db *db, const struct vault *v, const char *filename, const void *pdf, size_t len,
                           const char *actor, const struct store_submit_options *o, const uint8_t *mac,
                           const uint8_t *key_mac, struct store_submitted *ret, char **reterr)
{
	struct vault_dek *dek = NULL;
	int64_t id = 0, job = 0;
	enum qerr e = vault_dek_new(&dek, reterr);
	if (!e)
		e = insert_document(db, v, dek, mac, len, &id, reterr);
	if (!e)
		e = store_put(db, dek, id, "original", pdf, len, reterr);
	if (!e)
		e = store_put(db, dek, id, "filename", filename, strlen(filename), reterr);
	if (!e && o->doc_type)
		e = set_doc_type(db, id, o->doc_type, reterr);
	if (!e)
		e = queue_add(db, id, &o->job, &job, reterr);
	if (!e && key_mac) {
		char sid[24];
		g_snprintf(sid, sizeof sid, "%lld", (long long)id);
		struct db_param p[2] = {DB_TEXT(sid), DB_BIN(key_mac, VAULT_HASH_BYTES)};
		e = db_query(db, "UPDATE documents SET idempotency_mac = $2 WHERE id = $1::bigint", 2, p, NULL, reterr);
	}
	if (!e) {
		struct audit_event ev = {.actor = actor, .action = "document.submitted", .object_type = "document",
		                         .object_id = id, .outcome = "ok", .client = "cli"};
		e = audit_append(db, &ev, reterr);
	}
	vault_dek_free(dek);
	if (!e) {
		ret->doc_id = id;
		ret->job_id = job;
		ret->existing = false;
	}
	return e;
}

enum qerr store_submit(struct db *db, const struct vault *v, const char *filename, const void *pdf, size_t len,
                       const char *actor, int max_attempts, struct store_submitted *ret, char **reterr)
{
	struct store_submit_options o = {.job = {.max_attempts = max_attempts}};
	return store_submit_with(db, v, filename, pdf, len, actor, &o, ret, reterr);
}

enum qerr store_submit_with(struct db *db, const struct vault *v, const char *filename, const void *pdf, size_t len,
                            const char *actor, const struct store_submit_options *o, struct store_submitted *ret,
                            char **reterr)
{
	size_t klen = o->idempotency_key ? strlen(o->idempotency_key) : 0;
	if (klen > STORE_MAX_IDEMPOTENCY_KEY)
		return qerr_set(reterr, QERR_BAD_INPUT, "the idempotency key has %zu bytes; at most %d are accepted", klen,
		                STORE_MAX_IDEMPOTENCY_KEY);
	uint8_t mac[VAULT_HASH_BYTES], key_mac[VAULT_HASH_BYTES];
	vault_keyed_hash(v, pdf, len, mac);
	if (klen) {
		/* Prefixed so a key can never collide with a document's content. */
		g_autofree char *tagged = g_strconcat("idempotency-key:", o->idempotency_key, NULL);
		vault_keyed_hash(v, tagged, strlen(tagged), key_mac);
	}
	enum qerr e = QERR_CONFLICT;
	/* Two submissions of the same content (or key) at once: the loser's insert violates the
	 * unique index; its second try finds the winner's document. */
	for (int attempt = 0; attempt < 2 && e == QERR_CONFLICT; attempt++) {
		if (reterr)
			g_clear_pointer(reterr, g_free);
		e = db_begin(db, reterr);
		if (e)
			return e;
		bool found = false;
		e = find_existing(db, mac, klen ? key_mac : NULL, ret, &found, reterr);
		if (!e && !found)
			e = submit_tx(db, v, filename, pdf, len, actor, o, mac, klen ? key_mac : NULL, ret, reterr);
		if (!e)
			e = db_commit(db, reterr);
		if (e)
			db_rollback(db);
	}
	return e;
}

enum qerr store_dek(struct db *db, const struct vault *v, int64_t doc_id, struct vault_dek **ret, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	struct db_param p[1] = {DB_TEXT(sid)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db, "SELECT wrapped_key, key_version FROM documents WHERE id = $1::bigint", 1, p, &res,
	                       reterr);
	if (e)
		return e;
	if (db_res_rows(res) != 1) {
		db_res_free(res);
		return qerr_set(reterr, QERR_NOT_FOUND, "document %lld does not exist", (long long)doc_id);
	}
	size_t wlen = 0;
	g_autofree uint8_t *wrapped = db_res_bytea(res, 0, 0, &wlen);
	int32_t ver = (int32_t)db_res_int(res, 0, 1);
	db_res_free(res);
	if (!wrapped)
		return qerr_set(reterr, QERR_NOT_FOUND, "document %lld was erased: its data key no longer exists",
		                (long long)doc_id);
	return vault_dek_unwrap(v, wrapped, wlen, doc_id, ver, ret, reterr);
}

enum qerr store_put(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose, const void *data,
                    size_t len, char **reterr)
{
	g_autofree uint8_t *sealed = NULL;
	size_t slen = 0;
	enum qerr e = streamed(purpose) ? vault_stream_seal(dek, doc_id, purpose, data, len, &sealed, &slen, reterr)
	                                : vault_seal(dek, doc_id, purpose, data, len, &sealed, &slen, reterr);
	if (e)
		return e;
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	struct db_param p[3] = {DB_TEXT(sid), DB_TEXT(purpose), DB_BIN(sealed, slen)};
	return db_query(db,
	                "INSERT INTO payloads (document_id, purpose, sealed) VALUES ($1::bigint, $2, $3)"
	                " ON CONFLICT (document_id, purpose, version) DO UPDATE SET sealed = EXCLUDED.sealed,"
	                " created_at = now()",
	                3, p, NULL, reterr);
}

enum qerr store_get(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                    struct vault_buf *ret, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	struct db_param p[2] = {DB_TEXT(sid), DB_TEXT(purpose)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT sealed FROM payloads WHERE document_id = $1::bigint AND purpose = $2"
	                       " ORDER BY version DESC LIMIT 1",
	                       2, p, &res, reterr);
	if (e)
		return e;
	if (db_res_rows(res) != 1) {
		db_res_free(res);
		return qerr_set(reterr, QERR_NOT_FOUND, "document %lld has no %s", (long long)doc_id, purpose);
	}
	size_t slen = 0;
	g_autofree uint8_t *sealed = db_res_bytea(res, 0, 0, &slen);
	db_res_free(res);
	if (!sealed)
		return qerr_set(reterr, QERR_CRYPTO, "stored %s of document %lld is unreadable", purpose, (long long)doc_id);
	if (streamed(purpose))
		return vault_stream_unseal(dek, doc_id, purpose, sealed, slen, ret, reterr);
	return vault_unseal(dek, doc_id, purpose, sealed, slen, ret, reterr);
}
