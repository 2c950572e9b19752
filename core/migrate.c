/* migrate: the migration runner. */
#include "core/migrate.h"

#include <glib.h>

#include "core/db.h"

#define MIGRATE_LOCK_KEY 7277002

static enum qerr current_version(struct db *db, int *ret, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &res, reterr);
	if (e)
		return e;
	*ret = (int)db_res_int(res, 0, 0);
	db_res_free(res);
	return QERR_OK;
}

static enum qerr too_new(int have, int know, char **reterr)
{
	return qerr_set(reterr, QERR_SCHEMA_TOO_NEW,
	                "the database has schema version %d but this quire knows only up to %d: upgrade quire "
	                "(never run an older quire against a newer database)",
	                have, know);
}

static enum qerr apply_one(struct db *db, const struct migration *m, char **reterr)
{
	enum qerr e = db_begin(db, reterr);
	if (e)
		return e;
	g_autofree char *err = NULL;
	e = db_exec(db, m->sql, &err);
	if (e) {
		db_rollback(db);
		return qerr_set(reterr, e, "migration %04d_%s failed: %s", m->version, m->name, err);
	}
	char ver[16];
	g_snprintf(ver, sizeof ver, "%d", m->version);
	struct db_param p[2] = {DB_TEXT(ver), DB_TEXT(m->name)};
	e = db_query(db, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)", 2, p, NULL, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

enum qerr migrate_apply(struct db *db, const struct migration *list, int n, int *ret_applied, char **reterr)
{
	char lock[64];
	g_snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", MIGRATE_LOCK_KEY);
	enum qerr e = db_exec(db, lock, reterr);
	if (e)
		return e;
	int applied = 0, have = 0;
	e = db_exec(db,
	            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
	            " applied_at timestamptz NOT NULL DEFAULT now())",
	            reterr);
	if (!e)
		e = current_version(db, &have, reterr);
	int know = n > 0 ? list[n - 1].version : 0;
	if (!e && have > know)
		e = too_new(have, know, reterr);
	for (int i = 0; i < n && !e; i++) {
		if (list[i].version <= have)
			continue;
		e = apply_one(db, &list[i], reterr);
		if (!e)
			applied++;
	}
	g_snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%d)", MIGRATE_LOCK_KEY);
	if (db_exec(db, lock, NULL) != QERR_OK && !e)
		e = QERR_DB_UNAVAILABLE;
	if (!e && ret_applied)
		*ret_applied = applied;
	return e;
}

enum qerr migrate_check(struct db *db, const struct migration *list, int n, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &res, reterr);
	if (e)
		return e;
	bool exists = db_res_text(res, 0, 0)[0] == 't';
	db_res_free(res);
	int have = 0, know = n > 0 ? list[n - 1].version : 0;
	if (exists && (e = current_version(db, &have, reterr)))
		return e;
	if (have > know)
		return too_new(have, know, reterr);
	if (have < know)
		return qerr_set(reterr, QERR_CONFLICT,
		                "the database schema is at version %d, this quire needs %d: run `quire migrate`", have, know);
	return QERR_OK;
}
