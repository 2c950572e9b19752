/* audit: hash-chained audit entries in PostgreSQL. */
#include "core/audit.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "core/db.h"

#define AUDIT_LOCK_KEY 7277001 /* advisory lock id serialising appends */
#define HASH_BYTES 32
#define TS_FORMAT(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

static const char *nz(const char *s) { return s ? s : ""; }

/* Canonical text: fixed field order, one field per line, lengths prefixed so
 * that no choice of field values can produce another entry's text. */
static void entry_hash(const uint8_t prev[HASH_BYTES], const char *at, const char *const fields[7],
                       uint8_t out[HASH_BYTES])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, HASH_BYTES);
	crypto_generichash_update(&st, prev, HASH_BYTES);
	GString *canon = g_string_new("quire-audit-v1\n");
	g_string_append_printf(canon, "%zu:%s\n", strlen(at), at);
	for (int i = 0; i < 7; i++)
		g_string_append_printf(canon, "%zu:%s\n", strlen(fields[i]), fields[i]);
	crypto_generichash_update(&st, (const uint8_t *)canon->str, canon->len);
	crypto_generichash_final(&st, out, HASH_BYTES);
	g_string_free(canon, TRUE);
}

static enum qerr last_hash(struct db *db, uint8_t prev[HASH_BYTES], char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db, "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1", 0, NULL, &res, reterr);
	if (e)
		return e;
	memset(prev, 0, HASH_BYTES);
	if (db_res_rows(res) == 1) {
		size_t n = 0;
		g_autofree uint8_t *h = db_res_bytea(res, 0, 0, &n);
		if (h && n == HASH_BYTES)
			memcpy(prev, h, HASH_BYTES);
	}
	db_res_free(res);
	return QERR_OK;
}

enum qerr audit_append(struct db *db, const struct audit_event *ev, char **reterr)
{
	char lock_sql[64];
	g_snprintf(lock_sql, sizeof lock_sql, "SELECT pg_advisory_xact_lock(%d)", AUDIT_LOCK_KEY);
	enum qerr e = db_exec(db, lock_sql, reterr);
	if (e)
		return e;
	uint8_t prev[HASH_BYTES], hash[HASH_BYTES];
	e = last_hash(db, prev, reterr);
	if (e)
		return e;
	struct db_res *res = NULL;
	e = db_query(db, "SELECT " TS_FORMAT("clock_timestamp()"), 0, NULL, &res, reterr);
	if (e)
		return e;
	g_autofree char *at = g_strdup(db_res_text(res, 0, 0));
	db_res_free(res);

	char oid[24];
	g_snprintf(oid, sizeof oid, "%lld", (long long)ev->object_id);
	const char *fields[7] = {nz(ev->actor),  nz(ev->action), nz(ev->object_type), oid,
	                         nz(ev->outcome), nz(ev->client), nz(ev->detail)};
	entry_hash(prev, at, fields, hash);
	struct db_param p[10] = {DB_TEXT(at),        DB_TEXT(fields[0]), DB_TEXT(fields[1]), DB_TEXT(fields[2]),
	                         DB_TEXT(oid),       DB_TEXT(fields[4]), DB_TEXT(fields[5]), DB_TEXT(fields[6]),
	                         DB_BIN(prev, HASH_BYTES), DB_BIN(hash, HASH_BYTES)};
	return db_query(db,
	                "INSERT INTO audit_log (at, actor, action, object_type, object_id, outcome, client, detail,"
	                " prev_hash, hash) VALUES ($1::timestamptz, $2, $3, $4, $5::bigint, $6, $7, $8, $9, $10)",
	                10, p, NULL, reterr);
}

enum qerr audit_verify(struct db *db, int64_t *ret_entries, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT id, " TS_FORMAT("at") ", actor, action, object_type, object_id::text, outcome, client,"
	                       " detail, prev_hash, hash FROM audit_log ORDER BY id",
	                       0, NULL, &res, reterr);
	if (e)
		return e;
	uint8_t prev[HASH_BYTES] = {0}, want[HASH_BYTES];
	int rows = db_res_rows(res);
	for (int r = 0; r < rows && !e; r++) {
		const char *fields[7];
		for (int i = 0; i < 7; i++)
			fields[i] = db_res_text(res, r, 2 + i);
		size_t plen = 0, hlen = 0;
		g_autofree uint8_t *p = db_res_bytea(res, r, 9, &plen);
		g_autofree uint8_t *h = db_res_bytea(res, r, 10, &hlen);
		entry_hash(prev, db_res_text(res, r, 1), fields, want);
		if (!p || !h || plen != HASH_BYTES || hlen != HASH_BYTES || memcmp(p, prev, HASH_BYTES) != 0 ||
		    memcmp(h, want, HASH_BYTES) != 0)
			e = qerr_set(reterr, QERR_CRYPTO, "audit chain broken at entry %s", db_res_text(res, r, 0));
		else
			memcpy(prev, h, HASH_BYTES);
	}
	db_res_free(res);
	if (!e)
		*ret_entries = rows;
	return e;
}
