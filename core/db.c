/* db: libpq wrapper with error classification.
 *
 * A connection remembers which struct db_stmt it has prepared (name -> SQL, both
 * borrowed from the static structs). Prepared statements are the session's, not a
 * transaction's: a rollback keeps them, a new connection starts with none. */
#include "core/db.h"

#include <glib.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct db {
	PGconn *conn;
	GHashTable *prepared; /* db_stmt name -> sql, both borrowed; NULL until the first db_run() */
	/* Work for after the open transaction commits (db_on_commit()); dropped when it does not. */
	db_commit_fn *on_commit;
	void *on_commit_data;
	void (*on_commit_free)(void *data);
	bool partly_rolled_back; /* a ROLLBACK TO SAVEPOINT ran since the hook was set */
};

struct db_res {
	PGresult *res;
};

static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static char *work_role; /* set once, before threads start (db_set_work_role) */

void db_set_work_role(const char *role)
{
	g_free(work_role);
	work_role = role && role[0] ? g_strdup(role) : NULL;
}

enum qerr db_set_role(struct db *db, const char *role, char **reterr)
{
	if (!role)
		return db_exec(db, "RESET ROLE", reterr);
	char *quoted = PQescapeIdentifier(db->conn, role, strlen(role));
	if (!quoted)
		return qerr_set(reterr, QERR_NOMEM, "out of memory quoting a role name");
	g_autofree char *sql = g_strdup_printf("SET ROLE %s", quoted);
	PQfreemem(quoted);
	return db_exec(db, sql, reterr);
}

enum qerr db_connect(const char *conninfo, struct db **ret, char **reterr)
{
	PGconn *conn = PQconnectdb(conninfo);
	if (!conn)
		return qerr_set(reterr, QERR_NOMEM, "out of memory connecting to the database");
	if (PQstatus(conn) != CONNECTION_OK) {
		char *msg = g_strstrip(g_strdup(PQerrorMessage(conn)));
		qerr_set(reterr, QERR_DB_UNAVAILABLE, "cannot connect to the database: %s", msg);
		g_free(msg);
		PQfinish(conn);
		return QERR_DB_UNAVAILABLE;
	}
	PQsetNoticeProcessor(conn, quiet_notice, NULL);
	struct db *db = g_new0(struct db, 1);
	db->conn = conn;
	if (work_role) {
		enum qerr e = db_set_role(db, work_role, reterr);
		if (e) {
			db_close(db);
			return e;
		}
	}
	*ret = db;
	return QERR_OK;
}

static void drop_commit_hook(struct db *db)
{
	if (db->on_commit_free && db->on_commit_data)
		db->on_commit_free(db->on_commit_data);
	db->on_commit = NULL;
	db->on_commit_data = NULL;
	db->on_commit_free = NULL;
	db->partly_rolled_back = false;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	if (db->conn)
		PQfinish(db->conn);
	if (db->prepared)
		g_hash_table_destroy(db->prepared);
	drop_commit_hook(db);
	g_free(db);
}

static enum qerr classify(struct db *db, PGresult *res, char **reterr)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn);
	enum qerr e = QERR_DB;
	if (PQstatus(db->conn) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
	    strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
		e = QERR_DB_UNAVAILABLE;
	else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
		e = QERR_BUSY;
	else if (strcmp(state, "23505") == 0)
		e = QERR_CONFLICT;
	char *clean = g_strstrip(g_strdup(msg ? msg : "unknown error"));
	qerr_set(reterr, e, "database: %s", clean);
	g_free(clean);
	return e;
}

enum qerr db_exec(struct db *db, const char *sql, char **reterr)
{
	if (db->on_commit && g_ascii_strncasecmp(sql, "ROLLBACK TO", 11) == 0)
		db->partly_rolled_back = true;
	PGresult *res = PQexec(db->conn, sql);
	ExecStatusType st = PQresultStatus(res);
	enum qerr e = QERR_OK;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		e = classify(db, res, reterr);
	PQclear(res);
	return e;
}

#define DB_MAX_PARAMS 64

/* libpq's parallel arrays for n parameters. */
struct pq_params {
	const char *values[DB_MAX_PARAMS];
	int lengths[DB_MAX_PARAMS];
	int formats[DB_MAX_PARAMS];
};

static enum qerr pq_params_init(struct pq_params *pp, int n_params, const struct db_param *params, char **reterr)
{
	g_assert(n_params >= 0 && n_params <= DB_MAX_PARAMS);
	for (int i = 0; i < n_params; i++) {
		pp->values[i] = params[i].value;
		if (params[i].binary && params[i].len > INT32_MAX)
			return qerr_set(reterr, QERR_TOO_LARGE, "parameter %d is too large for the database", i + 1);
		pp->lengths[i] = params[i].binary ? (int)params[i].len : 0;
		pp->formats[i] = params[i].binary ? 1 : 0;
	}
	return QERR_OK;
}

/* Hands a successful result to *ret (or drops it); classifies a failed one. Takes res. */
static enum qerr take_result(struct db *db, PGresult *res, struct db_res **ret, char **reterr)
{
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		enum qerr e = classify(db, res, reterr);
		PQclear(res);
		return e;
	}
	if (ret) {
		struct db_res *r = g_new0(struct db_res, 1);
		r->res = res;
		*ret = r;
	} else {
		PQclear(res);
	}
	return QERR_OK;
}

enum qerr db_query(struct db *db, const char *sql, int n_params, const struct db_param *params,
                   struct db_res **ret, char **reterr)
{
	struct pq_params pp;
	enum qerr e = pq_params_init(&pp, n_params, params, reterr);
	if (e)
		return e;
	PGresult *res = PQexecParams(db->conn, sql, n_params, NULL, pp.values, pp.lengths, pp.formats, 0);
	return take_result(db, res, ret, reterr);
}

static enum qerr prepare(struct db *db, const struct db_stmt *st, char **reterr)
{
	if (!db->prepared)
		db->prepared = g_hash_table_new(g_str_hash, g_str_equal);
	const char *known = g_hash_table_lookup(db->prepared, st->name);
	if (known) {
		g_assert(known == st->sql || strcmp(known, st->sql) == 0); /* one name, one statement */
		return QERR_OK;
	}
	PGresult *res = PQprepare(db->conn, st->name, st->sql, st->n_params, NULL);
	enum qerr e = PQresultStatus(res) == PGRES_COMMAND_OK ? QERR_OK : classify(db, res, reterr);
	PQclear(res);
	if (!e)
		g_hash_table_insert(db->prepared, (char *)st->name, (char *)st->sql);
	return e;
}

/* The server no longer knows a statement this connection prepared (DISCARD ALL, or a
 * pooler that moved the session). */
static bool statement_lost(PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return PQresultStatus(res) == PGRES_FATAL_ERROR && state && strcmp(state, "26000") == 0;
}

enum qerr db_run(struct db *db, const struct db_stmt *st, const struct db_param *params, struct db_res **ret,
                 char **reterr)
{
	struct pq_params pp;
	enum qerr e = pq_params_init(&pp, st->n_params, params, reterr);
	/* Outside a transaction a failed run leaves nothing behind, so it may be tried again. */
	bool may_retry = PQtransactionStatus(db->conn) == PQTRANS_IDLE;
	for (int attempt = 0; !e; attempt++) {
		e = prepare(db, st, reterr);
		if (e)
			break;
		PGresult *res = PQexecPrepared(db->conn, st->name, st->n_params, pp.values, pp.lengths, pp.formats, 0);
		if (!statement_lost(res))
			return take_result(db, res, ret, reterr);
		PQclear(res);
		/* only this one: preparing again a statement the server still has would fail */
		g_hash_table_remove(db->prepared, st->name);
		if (!may_retry || attempt > 0)
			e = qerr_set(reterr, QERR_BUSY,
			             "database: the connection lost its prepared statement %s; it is prepared again at the"
			             " next try",
			             st->name);
	}
	return e;
}

void db_res_free(struct db_res *res)
{
	if (!res)
		return;
	PQclear(res->res);
	g_free(res);
}

int db_res_rows(const struct db_res *res) { return PQntuples(res->res); }
bool db_res_isnull(const struct db_res *res, int row, int col) { return PQgetisnull(res->res, row, col); }
const char *db_res_text(const struct db_res *res, int row, int col) { return PQgetvalue(res->res, row, col); }

int64_t db_res_int(const struct db_res *res, int row, int col)
{
	return g_ascii_strtoll(PQgetvalue(res->res, row, col), NULL, 10);
}

uint8_t *db_res_bytea(const struct db_res *res, int row, int col, size_t *ret_len)
{
	if (PQgetisnull(res->res, row, col))
		return NULL;
	size_t n = 0;
	unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res->res, row, col), &n);
	if (!raw)
		return NULL;
	uint8_t *out = g_memdup2(raw, n ? n : 1);
	PQfreemem(raw);
	*ret_len = n;
	return out;
}

enum qerr db_begin(struct db *db, char **reterr) { return db_exec(db, "BEGIN", reterr); }
void db_on_commit(struct db *db, db_commit_fn *fn, void *data, void (*free_data)(void *data))
{
	drop_commit_hook(db);
	db->on_commit = fn;
	db->on_commit_data = data;
	db->on_commit_free = free_data;
}

void *db_commit_data(struct db *db, db_commit_fn *fn) { return db->on_commit == fn ? db->on_commit_data : NULL; }

bool db_in_transaction(struct db *db) { return PQtransactionStatus(db->conn) != PQTRANS_IDLE; }

enum qerr db_commit(struct db *db, char **reterr)
{
	enum qerr e = QERR_OK;
	if (db->on_commit)
		e = db->on_commit(db, db->on_commit_data, DB_BEFORE_COMMIT, db->partly_rolled_back, reterr);
	PGresult *res = e ? NULL : PQexec(db->conn, "COMMIT");
	if (res && PQresultStatus(res) != PGRES_COMMAND_OK)
		e = classify(db, res, reterr);
	/* COMMIT of a transaction that failed earlier answers ROLLBACK: nothing was committed */
	bool committed = res && !e && strcmp(PQcmdStatus(res), "COMMIT") == 0;
	if (res && !e && !committed)
		e = qerr_set(reterr, QERR_DB, "database: the transaction was rolled back (an earlier statement failed)");
	bool answered = res && PQstatus(db->conn) == CONNECTION_OK;
	PQclear(res);
	if (committed && db->on_commit) {
		e = db->on_commit(db, db->on_commit_data, DB_AFTER_COMMIT, false, reterr);
	} else if (answered && db->on_commit) {
		char *ignored = NULL;
		(void)db->on_commit(db, db->on_commit_data, DB_NOT_COMMITTED, false, &ignored);
		g_free(ignored);
	}
	drop_commit_hook(db);
	return e;
}

void db_rollback(struct db *db)
{
	drop_commit_hook(db);
	PGresult *res = PQexec(db->conn, "ROLLBACK");
	PQclear(res);
}

enum qerr db_wait_notify(struct db *db, int timeout_ms, bool *ret_notified, char **reterr)
{
	*ret_notified = false;
	PGnotify *n;
	if (!PQconsumeInput(db->conn))
		return classify(db, NULL, reterr);
	if ((n = PQnotifies(db->conn))) {
		PQfreemem(n);
		*ret_notified = true;
		return QERR_OK;
	}
	struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};
	if (pfd.fd < 0)
		return classify(db, NULL, reterr);
	if (poll(&pfd, 1, timeout_ms) > 0) {
		if (!PQconsumeInput(db->conn))
			return classify(db, NULL, reterr);
		while ((n = PQnotifies(db->conn))) {
			PQfreemem(n);
			*ret_notified = true;
		}
	}
	return QERR_OK;
}

/* The value of one connection option, or NULL (borrowed from opts). */
static const char *conn_option(PQconninfoOption *opts, const char *keyword)
{
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0)
			return o->val;
	return NULL;
}

void db_transport(const struct db *db, struct db_transport *ret)
{
	memset(ret, 0, sizeof *ret);
	const char *host = PQhost(db->conn);
	g_strlcpy(ret->host, host ? host : "", sizeof ret->host);
	ret->socket = ret->host[0] == '/' || ret->host[0] == '@';
	ret->loopback = !ret->socket && (strcmp(ret->host, "localhost") == 0 || g_str_has_prefix(ret->host, "127.") ||
	                                 strcmp(ret->host, "::1") == 0);
	ret->tls = PQsslInUse(db->conn) != 0;
	const char *proto = ret->tls ? PQsslAttribute(db->conn, "protocol") : NULL;
	g_strlcpy(ret->protocol, proto ? proto : "", sizeof ret->protocol);
	PQconninfoOption *opts = PQconninfo(db->conn);
	const char *mode = conn_option(opts, "sslmode"), *cert = conn_option(opts, "sslcert");
	g_strlcpy(ret->sslmode, mode ? mode : "", sizeof ret->sslmode);
	ret->verify_ca = ret->tls && (strcmp(ret->sslmode, "verify-ca") == 0 || strcmp(ret->sslmode, "verify-full") == 0);
	ret->verify_name = ret->tls && strcmp(ret->sslmode, "verify-full") == 0;
	ret->client_cert = ret->tls && cert && cert[0] && g_file_test(cert, G_FILE_TEST_EXISTS);
	PQconninfoFree(opts);
}
