/* migrate: applies numbered SQL migrations, each once, in order, each inside
 * its own transaction, and records them in schema_migrations. A database that
 * has recorded a migration newer than the newest one given is refused, so an
 * old binary never runs against a schema it does not know. Concurrent
 * migrators serialise on an advisory lock. */
#pragma once

#include "core/qerr.h"

struct db;

struct migration {
	int version;
	const char *name;
	const char *sql;
};

/* Applies the migrations (sorted by version, versions unique) not yet recorded.
 * *ret_applied (may be NULL) receives how many were applied now. */
enum qerr migrate_apply(struct db *db, const struct migration *list, int n, int *ret_applied, char **reterr)
	QUIRE_MUST_CHECK;
/* Checks without changing anything: QERR_SCHEMA_TOO_NEW if the database is newer than
 * list, QERR_CONFLICT if migrations are pending. */
enum qerr migrate_check(struct db *db, const struct migration *list, int n, char **reterr) QUIRE_MUST_CHECK;
