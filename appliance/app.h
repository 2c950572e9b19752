/* app: what a subcommand needs to run, opened from the configuration.
 *
 * Opening starts the embedded PostgreSQL when no database.url is configured
 * (and closing stops it again if this process started it), connects, checks or
 * applies the migrations compiled into the binary, and loads the vault key.
 * After the migrations, the connection and every one the process opens until
 * app_close() work as database.role (core/db.h, db_set_work_role); call
 * app_open before starting threads. */
#pragma once

#include <stdbool.h>

#include "core/migrate.h"
#include "core/qerr.h"

struct config;
struct db;
struct pgembed;
struct vault;

enum app_needs {
	APP_DB = 1 << 0,      /* a database connection with the current schema */
	APP_VAULT = 1 << 1,   /* the key-encryption key */
	APP_MIGRATE = 1 << 2, /* apply pending migrations instead of refusing */
};

struct app {
	struct config *cfg;
	struct pgembed *pg;
	struct db *db;
	struct vault *vault;
	struct ringstore *ring; /* the keyring's connection, with vault.keyring_in = database */
	char *actor; /* "cli:<user>" */
};

enum qerr app_open(struct config *cfg, unsigned needs, struct app *ret, char **reterr) QUIRE_MUST_CHECK;
/* Closes what app_open opened; the config stays the caller's. */
void app_close(struct app *app);

/* The migrations compiled into this binary, sorted by version (static storage). */
const struct migration *app_migrations(int *ret_n);
