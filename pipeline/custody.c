/* custody: key rotation, retirement and erasure of stored documents. */
#include "pipeline/custody.h"

#include <glib.h>
#include <string.h>

#include "core/audit.h"
#include "core/db.h"
#include "core/vault.h"

#define MAX_BATCH 10000

static enum qerr audit_key(struct db *db, const char *actor, const char *action, int32_t version,
                           const char *detail, char **reterr)
{
	struct audit_event ev = {.actor = actor, .action = action, .object_type = "key_version", .object_id = version,
	                         .outcome = "ok", .client = "cli", .detail = detail};
	return audit_append(db, &ev, reterr);
}

/* Ends a transaction: commits when e is OK, else rolls back; returns e or the commit's error. */
static enum qerr finish(struct db *db, enum qerr e, char **reterr)
{
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

enum qerr custody_activate(struct db *db, int32_t version, const char *actor, char **reterr)
{
	char sv[16];
	g_snprintf(sv, sizeof sv, "%d", (int)version);
	struct db_param p[1] = {DB_TEXT(sv)};
	enum qerr e = db_begin(db, reterr);
	if (e)
		return e;
	/* Waits for submissions holding the active version FOR SHARE. */
	e = db_query(db, "UPDATE key_versions SET state = 'decrypt' WHERE state = 'active'", 0, NULL, NULL, reterr);
	if (!e)
		e = db_query(db, "INSERT INTO key_versions (version, state) VALUES ($1::int, 'active')", 1, p, NULL, reterr);
	if (!e)
		e = audit_key(db, actor, "key.rotated", version, NULL, reterr);
	if (e == QERR_CONFLICT)
		qerr_set(reterr, e, "key version %d is already known to the database", (int)version);
	return finish(db, e, reterr);
}

/* Rewraps the rows of one batch; the caller's transaction holds them FOR UPDATE. */
static enum qerr rewrap_rows(struct db *db, const struct vault *v, int32_t version, struct db_res *res,
                             char **reterr)
{
	enum qerr e = QERR_OK;
	char sv[16];
	g_snprintf(sv, sizeof sv, "%d", (int)version);
	for (int r = 0; r < db_res_rows(res) && !e; r++) {
		int64_t id = db_res_int(res, r, 0);
		int32_t old = (int32_t)db_res_int(res, r, 2);
		size_t wlen = 0, nlen = 0;
		g_autofree uint8_t *wrapped = db_res_bytea(res, r, 1, &wlen);
		g_autofree uint8_t *rewrapped = NULL;
		struct vault_dek *dek = NULL;
		if (!wrapped)
			e = qerr_set(reterr, QERR_CRYPTO, "the data key of document %lld is unreadable", (long long)id);
		if (!e)
			e = vault_dek_unwrap(v, wrapped, wlen, id, old, &dek, reterr);
		if (!e)
			e = vault_dek_wrap(v, dek, id, version, &rewrapped, &nlen, reterr);
		vault_dek_free(dek);
		char sid[24];
		g_snprintf(sid, sizeof sid, "%lld", (long long)id);
		struct db_param p[3] = {DB_TEXT(sid), DB_BIN(rewrapped, nlen), DB_TEXT(sv)};
		if (!e)
			e = db_query(db, "UPDATE documents SET wrapped_key = $2, key_version = $3::int WHERE id = $1::bigint", 3,
			             p, NULL, reterr);
	}
	return e;
}

enum qerr custody_rewrap(struct db *db, const struct vault *v, int32_t version, int batch, int64_t *ret_done,
                         char **reterr)
{
	return custody_rewrap_with(db, v, version, batch, NULL, NULL, ret_done, reterr);
}

enum qerr custody_rewrap_with(struct db *db, const struct vault *v, int32_t version, int batch,
                              void (*step)(void *ctx, int64_t done), void *ctx, int64_t *ret_done, char **reterr)
{
	char sv[16], sb[16];
	g_snprintf(sv, sizeof sv, "%d", (int)version);
	g_snprintf(sb, sizeof sb, "%d", CLAMP(batch, 1, MAX_BATCH));
	struct db_param p[2] = {DB_TEXT(sv), DB_TEXT(sb)};
	int64_t done = 0;
	for (;;) {
		struct db_res *res = NULL;
		enum qerr e = db_begin(db, reterr);
		if (!e)
			e = db_query(db,
			             "SELECT id, wrapped_key, key_version FROM documents WHERE wrapped_key IS NOT NULL"
			             " AND key_version <> $1::int ORDER BY id LIMIT $2::int FOR UPDATE",
			             2, p, &res, reterr);
		int rows = e ? 0 : db_res_rows(res);
		if (!e)
			e = rewrap_rows(db, v, version, res, reterr);
		db_res_free(res);
		e = finish(db, e, reterr);
		if (e)
			return e;
		done += rows;
		if (rows == 0)
			break;
		if (step)
			step(ctx, done);
	}
	*ret_done = done;
	return QERR_OK;
}

enum qerr custody_retire(struct db *db, int32_t version, const char *actor, char **reterr)
{
	char sv[16];
	g_snprintf(sv, sizeof sv, "%d", (int)version);
	struct db_param p[1] = {DB_TEXT(sv)};
	struct db_res *res = NULL;
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = db_query(db,
		             "SELECT state, (SELECT count(*) FROM documents WHERE key_version = $1::int AND wrapped_key IS NOT"
		             " NULL) FROM key_versions WHERE version = $1::int FOR UPDATE",
		             1, p, &res, reterr);
	if (!e && db_res_rows(res) != 1)
		e = qerr_set(reterr, QERR_NOT_FOUND, "key version %d is unknown", (int)version);
	else if (!e && strcmp(db_res_text(res, 0, 0), "active") == 0)
		e = qerr_set(reterr, QERR_CONFLICT, "key version %d is active: rotate first", (int)version);
	else if (!e && db_res_int(res, 0, 1) > 0)
		e = qerr_set(reterr, QERR_CONFLICT, "%lld documents still use key version %d: run `quire keys rotate` first",
		             (long long)db_res_int(res, 0, 1), (int)version);
	bool already = !e && strcmp(db_res_text(res, 0, 0), "retired") == 0;
	db_res_free(res);
	if (!e && !already)
		e = db_query(db, "UPDATE key_versions SET state = 'retired', retired_at = now() WHERE version = $1::int", 1, p,
		             NULL, reterr);
	if (!e && !already)
		e = audit_key(db, actor, "key.retired", version, NULL, reterr);
	return finish(db, e, reterr);
}

enum qerr custody_status(struct db *db, struct custody_version **ret, int *ret_n, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT k.version, k.state, count(d.id) FROM key_versions k LEFT JOIN documents d"
	                       " ON d.key_version = k.version AND d.wrapped_key IS NOT NULL"
	                       " GROUP BY k.version, k.state ORDER BY k.version",
	                       0, NULL, &res, reterr);
	if (e)
		return e;
	int n = db_res_rows(res);
	struct custody_version *list = g_new0(struct custody_version, (size_t)n + 1);
	for (int r = 0; r < n; r++) {
		list[r].version = (int32_t)db_res_int(res, r, 0);
		g_strlcpy(list[r].state, db_res_text(res, r, 1), sizeof list[r].state);
		list[r].documents = db_res_int(res, r, 2);
	}
	db_res_free(res);
	*ret = list;
	*ret_n = n;
	return QERR_OK;
}

enum qerr custody_unused(struct db *db, int32_t **ret, int *ret_n, char **reterr)
{
	struct custody_version *list = NULL;
	int n = 0;
	enum qerr e = custody_status(db, &list, &n, reterr);
	if (e)
		return e;
	int32_t *out = g_new0(int32_t, (size_t)n + 1);
	int k = 0;
	for (int i = 0; i < n; i++)
		if (strcmp(list[i].state, "decrypt") == 0 && list[i].documents == 0)
			out[k++] = list[i].version;
	g_free(list);
	*ret = out;
	*ret_n = k;
	return QERR_OK;
}

enum qerr custody_erase(struct db *db, int64_t doc_id, const char *actor, const char *client, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)doc_id);
	struct db_param p[1] = {DB_TEXT(sid)};
	struct db_res *res = NULL;
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = db_query(db, "SELECT state FROM documents WHERE id = $1::bigint FOR UPDATE", 1, p, &res, reterr);
	if (!e && db_res_rows(res) != 1)
		e = qerr_set(reterr, QERR_NOT_FOUND, "document %lld does not exist", (long long)doc_id);
	else if (!e && strcmp(db_res_text(res, 0, 0), "erased") == 0)
		e = qerr_set(reterr, QERR_CONFLICT, "document %lld was already erased", (long long)doc_id);
	db_res_free(res);
	if (!e)
		e = db_query(db, "DELETE FROM payloads WHERE document_id = $1::bigint", 1, p, NULL, reterr);
	if (!e) /* what was learned from its corrections is its text too */
		e = db_query(db, "DELETE FROM learned_fields WHERE document_id = $1::bigint", 1, p, NULL, reterr);
	if (!e)
		e = db_query(db,
		             "UPDATE jobs SET state = 'cancelled', finished_at = now() WHERE document_id = $1::bigint"
		             " AND state = 'queued'",
		             1, p, NULL, reterr);
	if (!e)
		e = db_query(db,
		             "UPDATE documents SET wrapped_key = NULL, content_mac = NULL, idempotency_mac = NULL,"
		             " doc_type = NULL, state = 'erased', erased_at = now() WHERE id = $1::bigint",
		             1, p, NULL, reterr);
	if (!e) {
		struct audit_event ev = {.actor = actor, .action = "document.erased", .object_type = "document",
		                         .object_id = doc_id, .outcome = "ok", .client = client ? client : "cli"};
		e = audit_append(db, &ev, reterr);
	}
	return finish(db, e, reterr);
}
