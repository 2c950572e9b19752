/* db: the PostgreSQL connection helpers (libpq stays behind this header).
 *
 * Queries use positional parameters ($1, $2, ...). Text parameters are
 * NUL-terminated strings; binary parameters (bytea) carry a length. Results
 * come back in text format; bytea columns are decoded with db_res_bytea().
 * Statements run many times (the queue's) are described by a static struct
 * db_stmt and run with db_run(): prepared on the server once per connection,
 * so later runs skip parsing and planning.
 * Errors are classified: a lost connection or a server shutting down is
 * QERR_DB_UNAVAILABLE (transient), a serialization failure or deadlock is
 * QERR_BUSY (transient), anything else QERR_DB with the server's message. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

struct db;
struct db_res;

struct db_param {
	const void *value; /* NULL for SQL NULL */
	size_t len;        /* bytes, for binary parameters */
	bool binary;       /* false: value is a NUL-terminated string */
};

#define DB_TEXT(s) ((struct db_param){.value = (s), .len = 0, .binary = false})
#define DB_BIN(p, n) ((struct db_param){.value = (p), .len = (n), .binary = true})

/* Connects with a libpq connection string. *ret owned by the caller; db_close() frees it. */
enum qerr db_connect(const char *conninfo, struct db **ret, char **reterr) QUIRE_MUST_CHECK;
void db_close(struct db *db);

/* The role the application works as: every later db_connect() switches each
 * new connection to it (SET ROLE), so the statements it runs have that role's
 * rights and no more (quire_app: INSERT and SELECT only on the audit tables).
 * Migrations and restores keep a connection of the login role (the schema's
 * owner) of their own. Process-wide: set it before starting threads. NULL or
 * "": connections keep the login role's rights. */
void db_set_work_role(const char *role);
/* Switches db to role now (SET ROLE), or back to the login role when role is
 * NULL (RESET ROLE). QERR_DB when the login role may not take role. */
enum qerr db_set_role(struct db *db, const char *role, char **reterr) QUIRE_MUST_CHECK;

/* Runs one or more statements without parameters, discarding results. */
enum qerr db_exec(struct db *db, const char *sql, char **reterr) QUIRE_MUST_CHECK;
/* Runs one statement; *ret (may be NULL when the rows are not wanted) is owned by the caller
 * and freed with db_res_free(). */
enum qerr db_query(struct db *db, const char *sql, int n_params, const struct db_param *params,
                   struct db_res **ret, char **reterr) QUIRE_MUST_CHECK;

/* A statement for db_run(): static data; name is unique among all such statements. */
struct db_stmt {
	const char *name;
	const char *sql;
	int n_params;
};

/* db_query() of a server-side prepared statement: prepared on this connection at its first
 * run, run by name afterwards (a connection that lost it, after DISCARD ALL for example,
 * prepares it again). Same results and errors as db_query(). */
enum qerr db_run(struct db *db, const struct db_stmt *st, const struct db_param *params, struct db_res **ret,
                 char **reterr) QUIRE_MUST_CHECK;

void db_res_free(struct db_res *res);
int db_res_rows(const struct db_res *res);
bool db_res_isnull(const struct db_res *res, int row, int col);
/* Text of a cell, borrowed from res ("" for NULL). */
const char *db_res_text(const struct db_res *res, int row, int col);
int64_t db_res_int(const struct db_res *res, int row, int col);
/* Decoded bytea cell; caller frees with g_free(). NULL for SQL NULL or invalid data. */
uint8_t *db_res_bytea(const struct db_res *res, int row, int col, size_t *ret_len);

enum qerr db_begin(struct db *db, char **reterr) QUIRE_MUST_CHECK;
/* Commits. A hook set with db_on_commit() runs just before (when its error stops the commit)
 * and just after a successful COMMIT (when its error is returned, the transaction being
 * committed all the same); either way the hook is dropped. */
enum qerr db_commit(struct db *db, char **reterr) QUIRE_MUST_CHECK;
/* Rolls back an open transaction, dropping the commit hook; errors are ignored (the connection may be gone). */
void db_rollback(struct db *db);
/* Whether a transaction is open on db (BEGIN without COMMIT or ROLLBACK yet). */
bool db_in_transaction(struct db *db);

/* DB_NOT_COMMITTED: the before-stage succeeded, the COMMIT was sent, and the server answered
 * that nothing was committed (an error at COMMIT, such as a deferred constraint); never when no
 * answer came (the outcome is unknown). Its error is ignored. */
enum db_commit_stage { DB_BEFORE_COMMIT = 1, DB_AFTER_COMMIT, DB_NOT_COMMITTED, DB_COMMIT_STAGE_COUNT };
/* Work tied to the open transaction's commit. partly_rolled_back: a ROLLBACK TO SAVEPOINT ran
 * since the hook was set, so some of what the hook knows of may not be committed. */
typedef enum qerr db_commit_fn(struct db *db, void *data, enum db_commit_stage stage, bool partly_rolled_back,
                               char **reterr);
/* Sets db's commit hook (one per connection; replaces and frees the one before). data is owned
 * by db from now on and released with free_data (may be NULL) when the hook is dropped. */
void db_on_commit(struct db *db, db_commit_fn *fn, void *data, void (*free_data)(void *data));
/* The data of db's commit hook when it is fn, else NULL (borrowed). */
void *db_commit_data(struct db *db, db_commit_fn *fn);

/* How a connection reaches its server. */
struct db_transport {
	char host[256];   /* the host it is connected to, as configured: a name, an address, or a socket directory */
	bool socket;      /* a Unix socket: never leaves the machine */
	bool loopback;    /* TCP to this machine: localhost, 127.0.0.0/8 or ::1 */
	bool tls;         /* TLS in use */
	bool verify_ca;   /* the server's certificate checked against a CA (sslmode verify-ca or verify-full) */
	bool verify_name; /* and its name against the host name (sslmode verify-full) */
	bool client_cert; /* a client certificate is configured (sslcert) */
	char sslmode[16];
	char protocol[16]; /* the TLS version, or "" */
};
void db_transport(const struct db *db, struct db_transport *ret);

/* LISTEN/NOTIFY: waits up to timeout_ms for a notification on any channel this
 * connection listens to. true when one arrived. */
enum qerr db_wait_notify(struct db *db, int timeout_ms, bool *ret_notified, char **reterr) QUIRE_MUST_CHECK;
