/* ringstore: the sealed keyring in the database, written by compare and swap. */
#include "core/ringstore.h"

#include <glib.h>

#include "core/db.h"
#include "core/vault.h"

struct ringstore {
	char *conninfo;
	struct db *db; /* NULL after a lost connection, until the next call */
};

enum qerr ringstore_open(const char *conninfo, struct ringstore **ret, char **reterr)
{
	struct db *db = NULL;
	enum qerr e = db_connect(conninfo, &db, reterr);
	if (e)
		return e;
	struct ringstore *rs = g_new0(struct ringstore, 1);
	rs->conninfo = g_strdup(conninfo);
	rs->db = db;
	*ret = rs;
	return QERR_OK;
}

void ringstore_close(struct ringstore *rs)
{
	if (!rs)
		return;
	db_close(rs->db);
	g_free(rs->conninfo);
	g_free(rs);
}

/* Runs sql on the store's connection, connecting again once when the connection was lost. */
static enum qerr run(struct ringstore *rs, const char *sql, int n, const struct db_param *p, struct db_res **ret,
                     char **reterr)
{
	enum qerr e = QERR_DB_UNAVAILABLE;
	for (int tries = 0; tries < 2 && e == QERR_DB_UNAVAILABLE; tries++) {
		if (reterr)
			g_clear_pointer(reterr, g_free);
		if (!rs->db && (e = db_connect(rs->conninfo, &rs->db, reterr)))
			continue;
		e = db_query(rs->db, sql, n, p, ret, reterr);
		if (e == QERR_DB_UNAVAILABLE)
			g_clear_pointer(&rs->db, db_close);
	}
	return e;
}

static enum qerr store_read(void *ctx, uint8_t **ret, size_t *ret_len, int64_t *ret_generation, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = run(ctx, "SELECT sealed, generation FROM keyring", 0, NULL, &res, reterr);
	if (e)
		return e;
	if (db_res_rows(res) != 1) {
		db_res_free(res);
		return qerr_set(reterr, QERR_NOT_FOUND, "no keyring in the database");
	}
	size_t len = 0;
	uint8_t *blob = db_res_bytea(res, 0, 0, &len);
	int64_t gen = db_res_int(res, 0, 1);
	db_res_free(res);
	if (!blob)
		return qerr_set(reterr, QERR_KEY, "the keyring in the database is unreadable");
	*ret = blob;
	*ret_len = len;
	*ret_generation = gen;
	return QERR_OK;
}

static enum qerr store_write(void *ctx, const uint8_t *data, size_t len, int64_t generation, char **reterr)
{
	char gen[24];
	g_snprintf(gen, sizeof gen, "%lld", (long long)generation);
	struct db_param p[2] = {DB_BIN(data, len), DB_TEXT(gen)};
	const char *sql = generation == 0
	                      ? "INSERT INTO keyring (sealed, generation) VALUES ($1, 1) ON CONFLICT DO NOTHING"
	                        " RETURNING generation"
	                      : "UPDATE keyring SET sealed = $1, generation = generation + 1, updated_at = now()"
	                        " WHERE generation = $2::bigint RETURNING generation";
	struct db_res *res = NULL;
	enum qerr e = run(ctx, sql, generation == 0 ? 1 : 2, p, &res, reterr);
	if (e)
		return e;
	int rows = db_res_rows(res);
	db_res_free(res);
	if (rows != 1)
		return qerr_set(reterr, QERR_CONFLICT, "the keyring in the database was changed meanwhile");
	return QERR_OK;
}

void ringstore_bind(struct ringstore *rs, struct vault_store *ret)
{
	*ret = (struct vault_store){.read = store_read, .write = store_write, .ctx = rs, .where = "in the database"};
}
