/* store: sealed documents and payloads.
 *
 * A streamed original is written inside the caller's transaction: the
 * document row first, with a placeholder content hash that cannot equal a
 * real one ("upload:<id>", not 32 bytes, and unique as the id is), then the
 * stream header in its payload row and one payload_chunks row per sealed
 * chunk, and at the end the real keyed hash, size and chunk count. Nobody
 * else sees the row before the commit, so the placeholder never shows. */
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

/* mac NULL: a placeholder until the content is known (see the top of the file). */
static enum qerr insert_document(struct db *db, const struct vault *v, const struct vault_dek *dek,
                                 const uint8_t *mac, size_t len, int64_t *ret_id, char **reterr)
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
	char placeholder[40];
	size_t mlen = VAULT_HASH_BYTES;
	if (!mac) {
		mlen = (size_t)g_snprintf(placeholder, sizeof placeholder, "upload:%lld", (long long)id);
		mac = (const uint8_t *)placeholder;
	}
	g_autofree uint8_t *wrapped = NULL;
	size_t wlen = 0;
	e = vault_dek_wrap(v, dek, id, version, &wrapped, &wlen, reterr);
	if (e)
		return e;
	char sid[24], ssize[24], sver[16];
	g_snprintf(sid, sizeof sid, "%lld", (long long)id);
	g_snprintf(ssize, sizeof ssize, "%zu", len);
	g_snprintf(sver, sizeof sver, "%d", (int)version);
	struct db_param p[5] = {DB_TEXT(sid), DB_TEXT(ssize), DB_BIN(mac, mlen), DB_BIN(wrapped, wlen),
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

/* ---- the streaming writer ---- */

#define RESULT_STORED "result.stored" /* the audit action recording a result version */
#define PDF_SIGNATURE_WINDOW 1024 /* where %PDF- must appear (pdftext_looks_like_pdf) */

struct store_writer {
	struct db *db;
	const struct vault *v;
	struct store_writer_options o;
	char *run_at, *doc_type; /* copies behind o */
	struct vault_buf password; /* guarded copy of o.password (o.password points into it) */
	struct vault_dek *dek;
	struct vault_stream *stream;
	struct vault_hash *hash;
	int64_t id;
	char sid[24];
	struct vault_buf buf; /* guarded: plaintext of the chunk being filled */
	size_t fill;
	uint8_t *sealed; /* one sealed chunk */
	uint64_t total;
	int chunks; /* chunk rows stored */
	bool checked; /* the signature was looked for */
};

static void writer_free(struct store_writer *w)
{
	if (!w)
		return;
	vault_dek_free(w->dek);
	vault_stream_free(w->stream);
	vault_hash_free(w->hash);
	vault_buf_free(&w->buf); /* wipes */
	g_free(w->sealed);
	g_free(w->run_at);
	g_free(w->doc_type);
	vault_buf_free(&w->password); /* wipes */
	g_free(w);
}

static void writer_rollback(struct store_writer *w)
{
	/* Errors ignored: after a lost connection the transaction is gone anyway. */
	if (db_exec(w->db, "ROLLBACK TO SAVEPOINT store_writer; RELEASE SAVEPOINT store_writer", NULL) != QERR_OK)
		return;
}

/* A copy in guarded memory; an empty password counts as none. */
static enum qerr writer_keep_password(struct store_writer *w, const char *password, char **reterr)
{
	size_t len = password ? strlen(password) : 0;
	if (!len)
		return QERR_OK;
	if (len > STORE_MAX_PASSWORD)
		return qerr_set(reterr, QERR_BAD_INPUT, "the PDF password is longer than %d bytes", STORE_MAX_PASSWORD);
	enum qerr e = vault_buf_alloc(len + 1, &w->password, reterr);
	if (e)
		return e;
	memcpy(w->password.data, password, len + 1);
	w->o.password = (const char *)w->password.data;
	return QERR_OK;
}

enum qerr store_writer_open(struct db *db, const struct vault *v, const struct store_writer_options *o,
                            struct store_writer **ret, char **reterr)
{
	enum qerr e = db_exec(db, "SAVEPOINT store_writer", reterr);
	if (e)
		return e;
	struct store_writer *w = g_new0(struct store_writer, 1);
	w->db = db;
	w->v = v;
	w->o = *o;
	if (!w->o.max_bytes || w->o.max_bytes > VAULT_MAX_PAYLOAD)
		w->o.max_bytes = VAULT_MAX_PAYLOAD;
	w->o.job.run_at = w->run_at = g_strdup(o->job.run_at);
	w->o.doc_type = w->doc_type = g_strdup(o->doc_type);
	w->o.password = NULL;
	w->sealed = g_malloc(VAULT_STREAM_CHUNK + VAULT_STREAM_ABYTES);
	uint8_t header[VAULT_STREAM_HEADER_BYTES];
	e = vault_buf_alloc(VAULT_STREAM_CHUNK, &w->buf, reterr);
	if (!e)
		e = writer_keep_password(w, o->password, reterr);
	if (!e)
		e = vault_dek_new(&w->dek, reterr);
	if (!e)
		e = vault_hash_new(v, &w->hash, reterr);
	if (!e)
		e = insert_document(db, v, w->dek, NULL, 1, &w->id, reterr);
	if (!e)
		e = vault_stream_seal_start(w->dek, w->id, "original", header, &w->stream, reterr);
	g_snprintf(w->sid, sizeof w->sid, "%lld", (long long)w->id);
	struct db_param p[2] = {DB_TEXT(w->sid), DB_BIN(header, sizeof header)};
	if (!e)
		e = db_query(db, "INSERT INTO payloads (document_id, purpose, sealed, chunks) VALUES ($1::bigint,"
		             " 'original', $2, 0)", 2, p, NULL, reterr);
	if (e) {
		store_writer_abort(w);
		return e;
	}
	*ret = w;
	return QERR_OK;
}

/* Seals the filled chunk and stores it as the next row. */
static enum qerr writer_flush(struct store_writer *w, bool final, char **reterr)
{
	enum qerr e = vault_stream_seal_push(w->stream, w->buf.data, w->fill, final, w->sealed, reterr);
	if (e)
		return e;
	char seq[16];
	g_snprintf(seq, sizeof seq, "%d", w->chunks + 1);
	struct db_param p[3] = {DB_TEXT(w->sid), DB_TEXT(seq), DB_BIN(w->sealed, w->fill + VAULT_STREAM_ABYTES)};
	e = db_query(w->db, "INSERT INTO payload_chunks (document_id, purpose, version, seq, sealed) VALUES"
	             " ($1::bigint, 'original', 1, $2::int, $3)", 3, p, NULL, reterr);
	if (e)
		return e;
	w->chunks++;
	explicit_bzero(w->buf.data, w->fill);
	w->fill = 0;
	return QERR_OK;
}

/* The signature check, on the first bytes: they are still in buf, as no chunk is flushed
 * before it is full (64 KiB, beyond the window). */
static enum qerr writer_check(struct store_writer *w, char **reterr)
{
	w->checked = true;
	if (w->o.require_pdf && !pdftext_looks_like_pdf(w->buf.data, (size_t)MIN(w->total, PDF_SIGNATURE_WINDOW)))
		return qerr_set(reterr, QERR_NOT_PDF, "the file is not a PDF (it does not start with %%PDF-)");
	return QERR_OK;
}

enum qerr store_writer_write(struct store_writer *w, const void *data, size_t len, char **reterr)
{
	const uint8_t *in = data;
	if (len > w->o.max_bytes - MIN(w->total, w->o.max_bytes))
		return qerr_set(reterr, QERR_TOO_LARGE, "the file is larger than the limit of %zu bytes (limits.max_file_mb)",
		                w->o.max_bytes);
	while (len) {
		if (w->fill == VAULT_STREAM_CHUNK) {
			enum qerr e = writer_flush(w, false, reterr);
			if (e)
				return e;
		}
		size_t n = MIN(len, VAULT_STREAM_CHUNK - w->fill);
		memcpy(w->buf.data + w->fill, in, n);
		vault_hash_update(w->hash, in, n);
		w->fill += n;
		w->total += n;
		in += n;
		len -= n;
		if (!w->checked && w->total >= PDF_SIGNATURE_WINDOW) {
			enum qerr e = writer_check(w, reterr);
			if (e)
				return e;
		}
	}
	return QERR_OK;
}

uint64_t store_writer_size(const struct store_writer *w) { return w->total; }

/* The stream is complete: the real hash, size and chunk count, then the rest of a submission. */
static enum qerr writer_complete(struct store_writer *w, const uint8_t mac[VAULT_HASH_BYTES], const char *filename,
                                 int64_t *ret_job, char **reterr)
{
	char size[24], chunks[16];
	g_snprintf(size, sizeof size, "%llu", (unsigned long long)w->total);
	g_snprintf(chunks, sizeof chunks, "%d", w->chunks);
	struct db_param p[3] = {DB_TEXT(w->sid), DB_BIN(mac, VAULT_HASH_BYTES), DB_TEXT(size)};
	enum qerr e = db_query(w->db, "UPDATE documents SET content_mac = $2, size_bytes = $3::bigint WHERE id = $1::bigint",
	                       3, p, NULL, reterr);
	struct db_param q[2] = {DB_TEXT(w->sid), DB_TEXT(chunks)};
	if (!e)
		e = db_query(w->db, "UPDATE payloads SET chunks = $2::int WHERE document_id = $1::bigint"
		             " AND purpose = 'original' AND version = 1", 2, q, NULL, reterr);
	if (!e)
		e = store_put(w->db, w->dek, w->id, "filename", filename, strlen(filename), reterr);
	if (!e && w->o.doc_type)
		e = set_doc_type(w->db, w->id, w->o.doc_type, reterr);
	if (!e && w->o.password)
		e = store_put(w->db, w->dek, w->id, "password", w->o.password, strlen(w->o.password), reterr);
	if (!e)
		e = queue_add(w->db, w->id, &w->o.job, ret_job, reterr);
	return e;
}

enum qerr store_writer_finish(struct store_writer *w, const char *filename, struct store_submitted *ret,
                              char **reterr)
{
	uint8_t mac[VAULT_HASH_BYTES];
	enum qerr e = w->total ? QERR_OK : qerr_set(reterr, QERR_EMPTY, "the file is empty");
	if (!e && !w->checked)
		e = writer_check(w, reterr);
	if (!e)
		e = writer_flush(w, true, reterr);
	if (!e)
		e = vault_hash_final(w->hash, mac, reterr);
	bool found = false;
	struct store_submitted sub = {0};
	if (!e)
		e = find_existing(w->db, mac, NULL, &sub, &found, reterr);
	int64_t job = 0;
	if (!e && !found)
		e = writer_complete(w, mac, filename, &job, reterr);
	if (e == QERR_CONFLICT) { /* the same content committed meanwhile by another transaction */
		writer_rollback(w);
		g_autofree char *again = NULL;
		if (find_existing(w->db, mac, NULL, &sub, &found, &again) == QERR_OK && found) {
			if (reterr)
				g_clear_pointer(reterr, g_free);
			writer_free(w);
			*ret = sub;
			return QERR_OK;
		}
		writer_free(w);
		return e;
	}
	if (e || found) {
		store_writer_abort(w);
		if (!e)
			*ret = sub;
		return e;
	}
	e = db_exec(w->db, "RELEASE SAVEPOINT store_writer", reterr);
	if (!e)
		*ret = (struct store_submitted){.doc_id = w->id, .job_id = job, .existing = false};
	writer_free(w);
	return e;
}

void store_writer_abort(struct store_writer *w)
{
	if (!w)
		return;
	writer_rollback(w);
	writer_free(w);
}

/* Writes a whole buffer through a store_writer; then the key and the audit entry. */
static enum qerr submit_tx(struct db *db, const struct vault *v, const char *filename, const void *pdf, size_t len,
                           const char *actor, const struct store_submit_options *o, const char *key,
                           struct store_submitted *ret, char **reterr)
{
	struct store_writer_options wo = {.job = o->job, .doc_type = o->doc_type, .password = o->password};
	struct store_writer *w = NULL;
	enum qerr e = store_writer_open(db, v, &wo, &w, reterr);
	for (size_t off = 0; !e && off < len; off += VAULT_STREAM_CHUNK)
		e = store_writer_write(w, (const uint8_t *)pdf + off, MIN(VAULT_STREAM_CHUNK, len - off), reterr);
	if (e) {
		store_writer_abort(w);
		return e;
	}
	e = store_writer_finish(w, filename, ret, reterr);
	if (e || ret->existing) /* another submission of the same content committed meanwhile */
		return e;
	if (key)
		e = store_set_key(db, v, ret->doc_id, key, reterr);
	if (!e) {
		struct audit_event ev = {.actor = actor, .action = "document.submitted", .object_type = "document",
		                         .object_id = ret->doc_id, .outcome = "ok", .client = "cli"};
		e = audit_append(db, &ev, reterr);
	}
	return e;
}

enum qerr store_submit(struct db *db, const struct vault *v, const char *filename, const void *pdf, size_t len,
                       const char *actor, int max_attempts, struct store_submitted *ret, char **reterr)
{
	struct store_submit_options o = {.job = {.max_attempts = max_attempts}};
	return store_submit_with(db, v, filename, pdf, len, actor, &o, ret, reterr);
}

/* The key's keyed hash, prefixed so a key can never collide with a document's content. */
static enum qerr key_mac_of(const struct vault *v, const char *key, uint8_t out[VAULT_HASH_BYTES], char **reterr)
{
	size_t klen = strlen(key);
	if (klen > STORE_MAX_IDEMPOTENCY_KEY)
		return qerr_set(reterr, QERR_BAD_INPUT, "the idempotency key has %zu bytes; at most %d are accepted", klen,
		                STORE_MAX_IDEMPOTENCY_KEY);
	g_autofree char *tagged = g_strconcat("idempotency-key:", key, NULL);
	vault_keyed_hash(v, tagged, strlen(tagged), out);
	return QERR_OK;
}

enum qerr store_submit_with(struct db *db, const struct vault *v, const char *filename, const void *pdf, size_t len,
                            const char *actor, const struct store_submit_options *o, struct store_submitted *ret,
                            char **reterr)
{
	const char *key = o->idempotency_key && o->idempotency_key[0] ? o->idempotency_key : NULL;
	uint8_t mac[VAULT_HASH_BYTES], key_mac[VAULT_HASH_BYTES];
	enum qerr e = key ? key_mac_of(v, key, key_mac, reterr) : QERR_OK;
	if (e)
		return e;
	vault_keyed_hash(v, pdf, len, mac);
	e = QERR_CONFLICT;
	/* Two submissions of the same content (or key) at once: the loser's insert violates the
	 * unique index; its second try finds the winner's document. */
	for (int attempt = 0; attempt < 2 && e == QERR_CONFLICT; attempt++) {
		if (reterr)
			g_clear_pointer(reterr, g_free);
		e = db_begin(db, reterr);
		if (e)
			return e;
		bool found = false;
		e = find_existing(db, mac, key ? key_mac : NULL, ret, &found, reterr);
		if (!e && !found)
			e = submit_tx(db, v, filename, pdf, len, actor, o, key, ret, reterr);
		if (!e)
			e = db_commit(db, reterr);
		if (e)
			db_rollback(db);
	}
	return e;
}

enum qerr store_find_key(struct db *db, const struct vault *v, const char *key, struct store_submitted *ret,
                         bool *ret_found, char **reterr)
{
	uint8_t key_mac[VAULT_HASH_BYTES];
	enum qerr e = key_mac_of(v, key, key_mac, reterr);
	struct db_param p[1] = {DB_BIN(key_mac, VAULT_HASH_BYTES)};
	struct db_res *res = NULL;
	if (!e)
		e = db_query(db,
		             "SELECT d.id, coalesce((SELECT max(j.id) FROM jobs j WHERE j.document_id = d.id), 0)"
		             " FROM documents d WHERE d.idempotency_mac = $1",
		             1, p, &res, reterr);
	if (e)
		return e;
	*ret_found = db_res_rows(res) == 1;
	if (*ret_found) {
		ret->doc_id = db_res_int(res, 0, 0);
		ret->job_id = db_res_int(res, 0, 1);
		ret->existing = true;
	}
	db_res_free(res);
	return QERR_OK;
}

enum qerr store_set_key(struct db *db, const struct vault *v, int64_t doc_id, const char *key, char **reterr)
{
	uint8_t key_mac[VAULT_HASH_BYTES];
	enum qerr e = key_mac_of(v, key, key_mac, reterr);
	if (e)
		return e;
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	struct db_param p[2] = {DB_TEXT(sid), DB_BIN(key_mac, VAULT_HASH_BYTES)};
	return db_query(db, "UPDATE documents SET idempotency_mac = $2 WHERE id = $1::bigint", 2, p, NULL, reterr);
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

/* Stores a sealed payload row; replace: a row already there at that version is overwritten. */
static enum qerr put_row(struct db *db, int64_t doc_id, const char *purpose, int32_t version, const uint8_t *sealed,
                         size_t slen, bool replace, char **reterr)
{
	char sid[24], ver[16];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	g_snprintf(ver, sizeof ver, "%d", (int)version);
	struct db_param p[4] = {DB_TEXT(sid), DB_TEXT(purpose), DB_TEXT(ver), DB_BIN(sealed, slen)};
	g_autofree char *sql = g_strdup_printf(
		"INSERT INTO payloads (document_id, purpose, version, sealed, layout) VALUES ($1::bigint, $2, $3::int, $4, 2)%s",
		replace ? " ON CONFLICT (document_id, purpose, version) DO UPDATE SET sealed = EXCLUDED.sealed,"
		          " chunks = NULL, layout = 2, created_at = now()"
		        : "");
	return db_query(db, sql, 4, p, NULL, reterr);
}

/* The record of a result version: its number and a hash of its ciphertext (never of the plaintext). */
static char *version_record(int32_t version, const uint8_t *sealed, size_t slen)
{
	uint8_t h[16];
	vault_digest(sealed, slen, h, sizeof h);
	GString *s = g_string_new(NULL);
	g_string_printf(s, "version=%d sealed=", (int)version);
	for (size_t i = 0; i < sizeof h; i++)
		g_string_append_printf(s, "%02x", h[i]);
	return g_string_free(s, FALSE);
}

/* A result written is recorded in the audit log (inside the caller's transaction), so that the
 * database cannot later pass off an older version, or another box, as the current one. */
static enum qerr record_result(struct db *db, int64_t doc_id, int32_t version, const uint8_t *sealed, size_t slen,
                               char **reterr)
{
	g_autofree char *detail = version_record(version, sealed, slen);
	struct audit_event ev = {.actor = "system:store", .action = RESULT_STORED, .object_type = "document",
	                         .object_id = doc_id, .outcome = "ok", .detail = detail};
	return audit_append(db, &ev, reterr);
}

/* The current result version on record must be the newest row, with the very box recorded. */
static enum qerr check_result(struct db *db, int64_t doc_id, int32_t version, const uint8_t *sealed, size_t slen,
                              char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	struct db_param p[1] = {DB_TEXT(sid)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT id, detail FROM audit_log WHERE object_type = 'document' AND object_id = $1::bigint"
	                       " AND action = '" RESULT_STORED "' ORDER BY id DESC LIMIT 1",
	                       1, p, &res, reterr);
	if (e || db_res_rows(res) == 0) { /* none: a result written before versions were recorded */
		db_res_free(res);
		return e;
	}
	g_autofree char *want = version_record(version, sealed, slen);
	const char *have = db_res_text(res, 0, 1);
	if (strcmp(have, want) != 0) {
		int recorded = g_str_has_prefix(have, "version=") ? (int)g_ascii_strtoll(have + 8, NULL, 10) : 0;
		e = qerr_set(reterr, QERR_CRYPTO,
		             "the result of document %lld is not the current one on record: audit entry %s records version "
		             "%d, the database's newest is version %d%s; the newest version was deleted or an older one "
		             "restored (run `quire audit verify`)",
		             (long long)doc_id, db_res_text(res, 0, 0), recorded, (int)version,
		             recorded == version ? " with another content" : "");
	}
	db_res_free(res);
	return e;
}

enum qerr store_put(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose, const void *data,
                    size_t len, char **reterr)
{
	g_autofree uint8_t *sealed = NULL;
	size_t slen = 0;
	enum qerr e = streamed(purpose) ? vault_stream_seal(dek, doc_id, purpose, data, len, &sealed, &slen, reterr)
	                                : vault_seal_version(dek, doc_id, purpose, 1, data, len, &sealed, &slen, reterr);
	if (!e)
		e = put_row(db, doc_id, purpose, 1, sealed, slen, true, reterr);
	if (!e && strcmp(purpose, "result") == 0)
		e = record_result(db, doc_id, 1, sealed, slen, reterr);
	return e;
}

enum qerr store_put_version(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                            int32_t version, const void *data, size_t len, char **reterr)
{
	g_assert(!streamed(purpose) && version >= 1);
	g_autofree uint8_t *sealed = NULL;
	size_t slen = 0;
	enum qerr e = vault_seal_version(dek, doc_id, purpose, version, data, len, &sealed, &slen, reterr);
	if (!e)
		e = put_row(db, doc_id, purpose, version, sealed, slen, false, reterr);
	if (!e && strcmp(purpose, "result") == 0)
		e = record_result(db, doc_id, version, sealed, slen, reterr);
	return e;
}

/* A chunked payload: header (from its payload row) and chunk rows, opened as one stream. */
static enum qerr get_chunks(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                            const char *version, const uint8_t *header, size_t hlen, int64_t chunks,
                            struct vault_buf *ret, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	struct db_param p[3] = {DB_TEXT(sid), DB_TEXT(purpose), DB_TEXT(version)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT seq, sealed FROM payload_chunks WHERE document_id = $1::bigint AND purpose = $2"
	                       " AND version = $3::int ORDER BY seq",
	                       3, p, &res, reterr);
	if (e)
		return e;
	int rows = db_res_rows(res);
	bool dense = rows == chunks && hlen == VAULT_STREAM_HEADER_BYTES;
	for (int r = 0; dense && r < rows; r++)
		dense = db_res_int(res, r, 0) == r + 1;
	if (!dense) {
		db_res_free(res);
		return qerr_set(reterr, QERR_CRYPTO, "stored %s of document %lld is incomplete (%d of %lld chunks)", purpose,
		                (long long)doc_id, rows, (long long)chunks);
	}
	GByteArray *all = g_byte_array_new();
	g_byte_array_append(all, header, (guint)hlen);
	for (int r = 0; r < rows && !e; r++) {
		size_t n = 0;
		g_autofree uint8_t *c = db_res_bytea(res, r, 1, &n);
		if (!c || all->len + n > VAULT_MAX_PAYLOAD + VAULT_MAX_PAYLOAD / 64)
			e = qerr_set(reterr, QERR_CRYPTO, "stored %s of document %lld is unreadable", purpose, (long long)doc_id);
		else
			g_byte_array_append(all, c, (guint)n);
	}
	db_res_free(res);
	if (!e)
		e = vault_stream_unseal(dek, doc_id, purpose, all->data, all->len, ret, reterr);
	g_byte_array_unref(all);
	return e;
}

enum qerr store_password(struct db *db, const struct vault_dek *dek, int64_t doc_id, struct vault_buf *ret,
                         char **reterr)
{
	struct vault_buf sealed = {0}, out = {0};
	g_autofree char *err = NULL;
	enum qerr e = store_get(db, dek, doc_id, "password", &sealed, &err);
	if (e == QERR_NOT_FOUND) {
		*ret = (struct vault_buf){0};
		return QERR_OK;
	}
	if (e)
		return qerr_set(reterr, e, "%s", err);
	e = vault_buf_alloc(sealed.len + 1, &out, reterr);
	if (!e) {
		memcpy(out.data, sealed.data, sealed.len);
		out.data[sealed.len] = 0;
		out.len = sealed.len;
		*ret = out;
	}
	vault_buf_free(&sealed);
	return e;
}

enum qerr store_get(struct db *db, const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                    struct vault_buf *ret, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	struct db_param p[2] = {DB_TEXT(sid), DB_TEXT(purpose)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT sealed, chunks, version, layout FROM payloads WHERE document_id = $1::bigint"
	                       " AND purpose = $2 ORDER BY version DESC LIMIT 1",
	                       2, p, &res, reterr);
	if (e)
		return e;
	if (db_res_rows(res) != 1) {
		db_res_free(res);
		return qerr_set(reterr, QERR_NOT_FOUND, "document %lld has no %s", (long long)doc_id, purpose);
	}
	size_t slen = 0;
	g_autofree uint8_t *sealed = db_res_bytea(res, 0, 0, &slen);
	bool chunked = !db_res_isnull(res, 0, 1);
	int64_t chunks = chunked ? db_res_int(res, 0, 1) : 0;
	g_autofree char *version = g_strdup(db_res_text(res, 0, 2));
	int32_t row_version = (int32_t)db_res_int(res, 0, 2);
	bool layout2 = db_res_int(res, 0, 3) >= 2;
	db_res_free(res);
	if (!sealed)
		return qerr_set(reterr, QERR_CRYPTO, "stored %s of document %lld is unreadable", purpose, (long long)doc_id);
	if (chunked && streamed(purpose))
		return get_chunks(db, dek, doc_id, purpose, version, sealed, slen, chunks, ret, reterr);
	if (chunked)
		return qerr_set(reterr, QERR_CRYPTO, "stored %s of document %lld is chunked, which it never is", purpose,
		                (long long)doc_id);
	if (streamed(purpose))
		return vault_stream_unseal(dek, doc_id, purpose, sealed, slen, ret, reterr);
	enum qerr e2 = strcmp(purpose, "result") == 0 ? check_result(db, doc_id, row_version, sealed, slen, reterr) : QERR_OK;
	if (e2)
		return e2;
	if (layout2)
		return vault_unseal_version(dek, doc_id, purpose, row_version, sealed, slen, ret, reterr);
	return vault_unseal(dek, doc_id, purpose, sealed, slen, ret, reterr); /* written before migration 0010 */
}

/* ---- reading an original chunk by chunk ---- */

struct store_reader {
	struct db *db;
	int64_t doc_id;
	char version[24];
	int64_t chunks, next; /* chunk rows, and the seq of the next one to open */
	size_t size;          /* plaintext bytes in all */
	struct vault_stream *stream;
	struct vault_buf plain; /* the opened chunk (or the whole original, for a row that is not chunked) */
	size_t have, pos;       /* bytes in plain, and read of them */
	bool whole;
};

/* An original stored before chunking (one sealed row) is opened whole, as before. */
static enum qerr reader_whole(struct store_reader *r, const struct vault_dek *dek, char **reterr)
{
	enum qerr e = store_get(r->db, dek, r->doc_id, "original", &r->plain, reterr);
	if (!e) {
		r->whole = true;
		r->have = r->size = r->plain.len;
	}
	return e;
}

static enum qerr reader_sizes(struct store_reader *r, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)r->doc_id);
	struct db_param p[2] = {DB_TEXT(sid), DB_TEXT(r->version)};
	struct db_res *res = NULL;
	enum qerr e = db_query(r->db,
	                       "SELECT count(*), coalesce(sum(octet_length(sealed)), 0) FROM payload_chunks"
	                       " WHERE document_id = $1::bigint AND purpose = 'original' AND version = $2::int",
	                       2, p, &res, reterr);
	if (e)
		return e;
	int64_t rows = db_res_int(res, 0, 0), bytes = db_res_int(res, 0, 1);
	db_res_free(res);
	if (rows != r->chunks || rows < 1 || bytes < rows * VAULT_STREAM_ABYTES)
		return qerr_set(reterr, QERR_CRYPTO,
		                "stored original of document %lld is incomplete (%lld of %lld chunks)",
		                (long long)r->doc_id, (long long)rows, (long long)r->chunks);
	r->size = (size_t)(bytes - rows * VAULT_STREAM_ABYTES);
	return QERR_OK;
}

enum qerr store_reader_open(struct db *db, const struct vault_dek *dek, int64_t doc_id, struct store_reader **ret,
                            char **reterr)
{
	struct store_reader *r = g_new0(struct store_reader, 1);
	r->db = db;
	r->doc_id = doc_id;
	r->next = 1;
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	struct db_param p[1] = {DB_TEXT(sid)};
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT sealed, chunks, version FROM payloads WHERE document_id = $1::bigint"
	                       " AND purpose = 'original' ORDER BY version DESC LIMIT 1",
	                       1, p, &res, reterr);
	if (!e && db_res_rows(res) != 1)
		e = qerr_set(reterr, QERR_NOT_FOUND, "document %lld has no original", (long long)doc_id);
	bool chunked = !e && !db_res_isnull(res, 0, 1);
	size_t hlen = 0;
	g_autofree uint8_t *header = chunked ? db_res_bytea(res, 0, 0, &hlen) : NULL;
	if (chunked) {
		r->chunks = db_res_int(res, 0, 1);
		g_strlcpy(r->version, db_res_text(res, 0, 2), sizeof r->version);
	}
	db_res_free(res);
	if (!e && !chunked)
		e = reader_whole(r, dek, reterr);
	else if (!e && (!header || hlen != VAULT_STREAM_HEADER_BYTES))
		e = qerr_set(reterr, QERR_CRYPTO, "stored original of document %lld is unreadable", (long long)doc_id);
	else if (!e)
		e = reader_sizes(r, reterr);
	if (!e && !r->whole)
		e = vault_stream_open_start(dek, doc_id, "original", header, &r->stream, reterr);
	if (!e && !r->whole)
		e = vault_buf_alloc(VAULT_STREAM_CHUNK, &r->plain, reterr);
	if (e) {
		store_reader_close(r);
		return e;
	}
	*ret = r;
	return QERR_OK;
}

size_t store_reader_size(const struct store_reader *r)
{
	return r->size;
}

/* Opens chunk r->next into r->plain. */
static enum qerr reader_next(struct store_reader *r, char **reterr)
{
	char sid[24], seq[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)r->doc_id);
	g_snprintf(seq, sizeof seq, "%lld", (long long)r->next);
	struct db_param p[3] = {DB_TEXT(sid), DB_TEXT(r->version), DB_TEXT(seq)};
	struct db_res *res = NULL;
	enum qerr e =
	    db_query(r->db,
	             "SELECT sealed FROM payload_chunks WHERE document_id = $1::bigint AND purpose = 'original'"
	             " AND version = $2::int AND seq = $3::int",
	             3, p, &res, reterr);
	if (e)
		return e;
	size_t n = 0;
	g_autofree uint8_t *c = db_res_rows(res) == 1 ? db_res_bytea(res, 0, 0, &n) : NULL;
	db_res_free(res);
	bool final = false;
	if (!c || n > VAULT_STREAM_CHUNK + VAULT_STREAM_ABYTES)
		return qerr_set(reterr, QERR_CRYPTO, "stored original of document %lld is missing chunk %lld",
		                (long long)r->doc_id, (long long)r->next);
	e = vault_stream_open_pull(r->stream, c, n, r->plain.data, &r->have, &final, reterr);
	if (!e && final != (r->next == r->chunks))
		e = qerr_set(reterr, QERR_CRYPTO, "stored original of document %lld is truncated or extended",
		             (long long)r->doc_id);
	r->pos = 0;
	r->next++;
	return e;
}

enum qerr store_reader_read(void *reader, void *buf, size_t cap, size_t *got, char **reterr)
{
	struct store_reader *r = reader;
	*got = 0;
	if (r->pos == r->have && !r->whole && r->next <= r->chunks) {
		enum qerr e = reader_next(r, reterr);
		if (e)
			return e;
	}
	size_t n = MIN(cap, r->have - r->pos);
	memcpy(buf, r->plain.data + r->pos, n);
	r->pos += n;
	*got = n;
	return QERR_OK;
}

void store_reader_close(struct store_reader *r)
{
	if (!r)
		return;
	vault_stream_free(r->stream);
	vault_buf_free(&r->plain);
	g_free(r);
}
