/* users: accounts, roles and API tokens in PostgreSQL. */
#include "core/users.h"

#include <glib.h>
#include <string.h>

#include "core/audit.h"
#include "core/db.h"
#include "core/vault.h"

#define U(p) (1u << (p))

static const char *const role_names[USERS_ROLE_COUNT] = {
	[USERS_ROLE_ADMIN] = "admin",
	[USERS_ROLE_OPERATOR] = "operator",
	[USERS_ROLE_REVIEWER] = "reviewer",
	[USERS_ROLE_AUDITOR] = "auditor",
};

/* The whole access policy. A permission not listed for a role is refused. */
static const unsigned role_perms[USERS_ROLE_COUNT] = {
	[USERS_ROLE_ADMIN] = (1u << USERS_PERM_COUNT) - 1,
	[USERS_ROLE_OPERATOR] = U(USERS_PERM_UPLOAD) | U(USERS_PERM_QUEUE_VIEW) | U(USERS_PERM_JOB_RETRY),
	[USERS_ROLE_REVIEWER] = U(USERS_PERM_DOC_VIEW) | U(USERS_PERM_DOC_CORRECT) | U(USERS_PERM_DOC_APPROVE),
	[USERS_ROLE_AUDITOR] = U(USERS_PERM_QUEUE_VIEW) | U(USERS_PERM_DOC_VIEW) | U(USERS_PERM_AUDIT_READ),
};

const char *users_role_name(enum users_role r)
{
	return (unsigned)r < USERS_ROLE_COUNT ? role_names[r] : "none";
}

bool users_role_parse(const char *name, enum users_role *ret)
{
	for (int r = 0; r < USERS_ROLE_COUNT; r++)
		if (name && strcmp(name, role_names[r]) == 0) {
			*ret = (enum users_role)r;
			return true;
		}
	return false;
}

bool users_allowed(enum users_role r, enum users_perm p)
{
	if ((unsigned)r >= USERS_ROLE_COUNT || (unsigned)p >= USERS_PERM_COUNT)
		return false;
	return (role_perms[r] & U(p)) != 0;
}

static bool valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > USERS_NAME_MAX || !g_ascii_isalnum(name[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isalnum(name[i]) && !strchr("._@-", name[i]))
			return false;
	return true;
}

static enum qerr check_password(const char *pw, char **reterr)
{
	size_t n = strlen(pw);
	if (n < USERS_PASSWORD_MIN)
		return qerr_set(reterr, QERR_BAD_INPUT, "the password is too short: use at least %d characters",
		                USERS_PASSWORD_MIN);
	if (n > USERS_PASSWORD_MAX)
		return qerr_set(reterr, QERR_BAD_INPUT, "the password is longer than %d characters", USERS_PASSWORD_MAX);
	return QERR_OK;
}

static enum qerr audit(struct db *db, const char *actor, const char *action, const char *type, int64_t id,
                       const char *outcome, const char *client, const char *detail, char **reterr)
{
	struct audit_event ev = {.actor = actor, .action = action, .object_type = type, .object_id = id,
	                         .outcome = outcome, .client = client ? client : "cli", .detail = detail};
	return audit_append(db, &ev, reterr);
}

/* Ends every web session of the user named $1 at once. */
#define END_SESSIONS "DELETE FROM web_sessions WHERE user_id = (SELECT id FROM users WHERE name = $1)"
/* ...and revokes the API tokens the user made. */
#define END_SESSIONS_AND_TOKENS                                                                                        \
	"WITH s AS (" END_SESSIONS ") UPDATE api_tokens SET revoked_at = now()"                                          \
	" WHERE created_by = 'user:' || $1 AND revoked_at IS NULL"

/* Runs sql (params p, returning the row id), then then_sql (may be NULL) with p[0] alone, and
 * audits it, in one transaction. QERR_NOT_FOUND when no row matched. */
static enum qerr change(struct db *db, const char *sql, int n, const struct db_param *p, const char *then_sql,
                        const char *actor, const char *action, const char *type, const char *client,
                        const char *detail, int64_t *ret_id, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = db_query(db, sql, n, p, &res, reterr);
	if (!e && then_sql && db_res_rows(res) == 1)
		e = db_query(db, then_sql, 1, p, NULL, reterr);
	int64_t id = 0;
	if (!e && db_res_rows(res) != 1)
		e = qerr_set(reterr, QERR_NOT_FOUND, "no such %s", type);
	if (!e)
		id = db_res_int(res, 0, 0);
	db_res_free(res);
	if (!e)
		e = audit(db, actor, action, type, id, "ok", client, detail, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e) {
		db_rollback(db);
		return e;
	}
	if (ret_id)
		*ret_id = id;
	return QERR_OK;
}

enum qerr users_add(struct db *db, const struct users_policy *pol, const char *name, const char *password,
                    enum users_role role, const char *actor, const char *client, int64_t *ret_id, char **reterr)
{
	if (!valid_name(name))
		return qerr_set(reterr, QERR_BAD_INPUT,
		                "a user name is 1 to %d letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
		                USERS_NAME_MAX);
	if ((unsigned)role >= USERS_ROLE_COUNT)
		return qerr_set(reterr, QERR_BAD_INPUT, "unknown role");
	enum qerr e = check_password(password, reterr);
	g_autofree char *hash = NULL;
	if (!e)
		e = vault_pw_hash(password, pol->ops, pol->mem, &hash, reterr);
	if (e)
		return e;
	struct db_param p[3] = {DB_TEXT(name), DB_TEXT(users_role_name(role)), DB_TEXT(hash)};
	g_autofree char *detail = g_strdup_printf("name=%s role=%s", name, users_role_name(role));
	e = change(db, "INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3) RETURNING id", 3, p, NULL,
	           actor, "user.added", "user", client, detail, ret_id, reterr);
	if (e == QERR_CONFLICT)
		return qerr_set(reterr, e, "a user named %s already exists", name);
	return e;
}

enum qerr users_passwd(struct db *db, const struct users_policy *pol, const char *name, const char *password,
                       const char *actor, const char *client, char **reterr)
{
	enum qerr e = check_password(password, reterr);
	g_autofree char *hash = NULL;
	if (!e)
		e = vault_pw_hash(password, pol->ops, pol->mem, &hash, reterr);
	if (e)
		return e;
	struct db_param p[2] = {DB_TEXT(name), DB_TEXT(hash)};
	g_autofree char *detail = g_strdup_printf("name=%s", name);
	e = change(db, "UPDATE users SET password_hash = $2, updated_at = now() WHERE name = $1 RETURNING id", 2, p,
	           END_SESSIONS, actor, "user.password_changed", "user", client, detail, NULL, reterr);
	return e == QERR_NOT_FOUND ? qerr_set(reterr, e, "no user named %s", name) : e;
}

enum qerr users_set_role(struct db *db, const char *name, enum users_role role, const char *actor,
                         const char *client, char **reterr)
{
	if ((unsigned)role >= USERS_ROLE_COUNT)
		return qerr_set(reterr, QERR_BAD_INPUT, "unknown role");
	struct db_param p[2] = {DB_TEXT(name), DB_TEXT(users_role_name(role))};
	g_autofree char *detail = g_strdup_printf("name=%s role=%s", name, users_role_name(role));
	enum qerr e = change(db, "UPDATE users SET role = $2, updated_at = now() WHERE name = $1 RETURNING id", 2, p,
	                     END_SESSIONS, actor, "user.role_changed", "user", client, detail, NULL, reterr);
	return e == QERR_NOT_FOUND ? qerr_set(reterr, e, "no user named %s", name) : e;
}

enum qerr users_disable(struct db *db, const char *name, const char *actor, const char *client, char **reterr)
{
	struct db_param p[1] = {DB_TEXT(name)};
	g_autofree char *detail = g_strdup_printf("name=%s", name);
	enum qerr e = change(db, "UPDATE users SET disabled = true, updated_at = now() WHERE name = $1 RETURNING id", 1,
	                     p, END_SESSIONS_AND_TOKENS, actor, "user.disabled", "user", client, detail, NULL, reterr);
	return e == QERR_NOT_FOUND ? qerr_set(reterr, e, "no user named %s", name) : e;
}

enum qerr users_list(struct db *db, struct users_info **ret, int *ret_n, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT id, name, role, disabled, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),"
	                       " coalesce(to_char(last_login_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '')"
	                       " FROM users ORDER BY name",
	                       0, NULL, &res, reterr);
	if (e)
		return e;
	int n = db_res_rows(res);
	struct users_info *list = g_new0(struct users_info, (size_t)n + 1);
	for (int r = 0; r < n; r++) {
		list[r].id = db_res_int(res, r, 0);
		list[r].name = g_strdup(db_res_text(res, r, 1));
		if (!users_role_parse(db_res_text(res, r, 2), &list[r].role))
			list[r].role = USERS_ROLE_COUNT;
		list[r].disabled = db_res_text(res, r, 3)[0] == 't';
		list[r].created_at = g_strdup(db_res_text(res, r, 4));
		list[r].last_login_at = g_strdup(db_res_text(res, r, 5));
	}
	db_res_free(res);
	*ret = list;
	*ret_n = n;
	return QERR_OK;
}

void users_info_free(struct users_info *list, int n)
{
	for (int i = 0; list && i < n; i++) {
		g_free(list[i].name);
		g_free(list[i].created_at);
		g_free(list[i].last_login_at);
	}
	g_free(list);
}

/* Records a failed login and returns the one message every cause gets. */
static enum qerr login_failed(struct db *db, const char *actor, int64_t id, const char *client, const char *why,
                              char **reterr)
{
	enum qerr e = audit(db, actor, "auth.login", id ? "user" : NULL, id, "failed", client, why, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e) {
		db_rollback(db);
		return e;
	}
	return qerr_set(reterr, QERR_DENIED, "wrong user name or password, or the account is disabled");
}

static enum qerr login_ok(struct db *db, const struct users_policy *pol, int64_t id, const char *stored,
                          const char *password, const char *actor, const char *client, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)id);
	g_autofree char *rehash = NULL;
	enum qerr e = QERR_OK;
	if (vault_pw_needs_rehash(stored, pol->ops, pol->mem))
		e = vault_pw_hash(password, pol->ops, pol->mem, &rehash, reterr);
	struct db_param p[2] = {DB_TEXT(sid), DB_TEXT(rehash)};
	if (!e)
		e = db_query(db,
		             "UPDATE users SET last_login_at = now(), password_hash = coalesce($2, password_hash)"
		             " WHERE id = $1::bigint",
		             2, p, NULL, reterr);
	if (!e)
		e = audit(db, actor, "auth.login", "user", id, "ok", client, rehash ? "password rehashed" : NULL, reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

enum qerr users_login(struct db *db, const struct users_policy *pol, const char *name, const char *password,
                      const char *client, struct users_principal *ret, char **reterr)
{
	if (strlen(name) > USERS_NAME_MAX || strlen(password) > USERS_PASSWORD_MAX)
		return qerr_set(reterr, QERR_DENIED, "wrong user name or password, or the account is disabled");
	g_autofree char *actor = g_strdup_printf("user:%s", valid_name(name) ? name : "(invalid name)");
	struct db_param p[1] = {DB_TEXT(name)};
	struct db_res *res = NULL;
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = db_query(db, "SELECT id, role, password_hash, disabled FROM users WHERE name = $1 FOR UPDATE", 1, p,
		             &res, reterr);
	if (e) {
		db_rollback(db);
		return e;
	}
	bool found = db_res_rows(res) == 1;
	int64_t id = found ? db_res_int(res, 0, 0) : 0;
	enum users_role role = USERS_ROLE_COUNT;
	g_autofree char *stored = g_strdup(found ? db_res_text(res, 0, 2) : "");
	bool disabled = found && db_res_text(res, 0, 3)[0] == 't';
	bool role_ok = found && users_role_parse(db_res_text(res, 0, 1), &role);
	db_res_free(res);
	/* Verify even for an unknown name, so the time taken does not tell which names exist. */
	bool pw_ok = false;
	if (found) {
		pw_ok = vault_pw_verify(stored, password);
	} else {
		g_autofree char *dummy = NULL;
		if (vault_pw_hash(password, pol->ops, pol->mem, &dummy, NULL) == QERR_OK)
			pw_ok = false;
	}
	if (!found || !pw_ok || disabled || !role_ok) {
		const char *why = !found ? "unknown user" : !pw_ok ? "wrong password" : disabled ? "account disabled" : "bad role";
		return login_failed(db, actor, id, client, why, reterr);
	}
	e = login_ok(db, pol, id, stored, password, actor, client, reterr);
	if (e)
		return e;
	memset(ret, 0, sizeof *ret);
	ret->id = id;
	ret->role = role;
	g_strlcpy(ret->actor, actor, sizeof ret->actor);
	return QERR_OK;
}

enum qerr users_logout(struct db *db, const struct users_principal *who, const char *client, char **reterr)
{
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = audit(db, who->actor, "auth.logout", who->is_token ? "token" : "user", who->id, "ok", client, NULL,
		          reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e)
		db_rollback(db);
	return e;
}

enum qerr users_token_create(struct db *db, const struct vault *v, const char *name, enum users_role role,
                             int64_t expires_s, const char *actor, const char *client, char **ret_token,
                             int64_t *ret_id, char **reterr)
{
	if (!name[0] || strlen(name) > USERS_NAME_MAX || (unsigned)role >= USERS_ROLE_COUNT)
		return qerr_set(reterr, QERR_BAD_INPUT, "a token needs a name of 1 to %d characters and a role", USERS_NAME_MAX);
	if (expires_s <= 0 || expires_s > (int64_t)10 * 366 * 86400)
		return qerr_set(reterr, QERR_BAD_INPUT, "a token's lifetime must be between 1 second and 10 years");
	char secret[VAULT_TOKEN_CHARS + 1];
	vault_token_new(secret);
	char *token = g_strconcat(USERS_TOKEN_PREFIX, secret, NULL);
	memset(secret, 0, sizeof secret);
	uint8_t mac[VAULT_HASH_BYTES];
	vault_token_hash(v, token, mac);
	char sexp[24];
	g_snprintf(sexp, sizeof sexp, "%lld", (long long)expires_s);
	struct db_param p[5] = {DB_TEXT(name), DB_TEXT(users_role_name(role)), DB_BIN(mac, sizeof mac), DB_TEXT(actor),
	                        DB_TEXT(sexp)};
	g_autofree char *detail = g_strdup_printf("name=%s role=%s", name, users_role_name(role));
	enum qerr e = change(db,
	                     "INSERT INTO api_tokens (name, role, token_mac, created_by, expires_at)"
	                     " VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::bigint)) RETURNING id",
	                     5, p, NULL, actor, "token.created", "token", client, detail, ret_id, reterr);
	if (e) {
		memset(token, 0, strlen(token));
		g_free(token);
		return e;
	}
	*ret_token = token;
	return QERR_OK;
}

enum qerr users_token_revoke(struct db *db, int64_t id, const char *actor, const char *client, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)id);
	struct db_param p[1] = {DB_TEXT(sid)};
	enum qerr e = change(db,
	                     "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1::bigint"
	                     " RETURNING id",
	                     1, p, NULL, actor, "token.revoked", "token", client, NULL, NULL, reterr);
	return e == QERR_NOT_FOUND ? qerr_set(reterr, e, "no token %lld", (long long)id) : e;
}

enum qerr users_token_list(struct db *db, struct users_token_info **ret, int *ret_n, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT id, name, role, created_by, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),"
	                       " to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), revoked_at IS NOT NULL,"
	                       " expires_at <= now() FROM api_tokens ORDER BY id DESC",
	                       0, NULL, &res, reterr);
	if (e)
		return e;
	int n = db_res_rows(res);
	struct users_token_info *list = g_new0(struct users_token_info, (size_t)n + 1);
	for (int r = 0; r < n; r++) {
		list[r].id = db_res_int(res, r, 0);
		list[r].name = g_strdup(db_res_text(res, r, 1));
		if (!users_role_parse(db_res_text(res, r, 2), &list[r].role))
			list[r].role = USERS_ROLE_COUNT;
		list[r].created_by = g_strdup(db_res_text(res, r, 3));
		list[r].created_at = g_strdup(db_res_text(res, r, 4));
		list[r].expires_at = g_strdup(db_res_text(res, r, 5));
		list[r].revoked = db_res_text(res, r, 6)[0] == 't';
		list[r].expired = db_res_text(res, r, 7)[0] == 't';
	}
	db_res_free(res);
	*ret = list;
	*ret_n = n;
	return QERR_OK;
}

void users_token_list_free(struct users_token_info *list, int n)
{
	for (int i = 0; list && i < n; i++) {
		g_free(list[i].name);
		g_free(list[i].created_by);
		g_free(list[i].created_at);
		g_free(list[i].expires_at);
	}
	g_free(list);
}

enum qerr users_token_check(struct db *db, const struct vault *v, const char *token, const char *client,
                            struct users_principal *ret, char **reterr)
{
	uint8_t mac[VAULT_HASH_BYTES];
	vault_token_hash(v, strlen(token) <= 128 ? token : "", mac);
	struct db_param p[1] = {DB_BIN(mac, sizeof mac)};
	struct db_res *res = NULL;
	enum qerr e = db_begin(db, reterr);
	if (!e)
		e = db_query(db,
		             "UPDATE api_tokens SET last_used_at = now() WHERE token_mac = $1 AND revoked_at IS NULL"
		             " AND expires_at > now() RETURNING id, role",
		             1, p, &res, reterr);
	bool found = !e && db_res_rows(res) == 1;
	struct users_principal who = {.is_token = true};
	bool role_ok = found && users_role_parse(db_res_text(res, 0, 1), &who.role);
	who.id = found ? db_res_int(res, 0, 0) : 0;
	db_res_free(res);
	g_snprintf(who.actor, sizeof who.actor, "token:%lld", (long long)who.id);
	/* A good token is audited with the action it authorises; a bad one here. */
	if (!e && !role_ok)
		e = audit(db, "token:unknown", "auth.token", NULL, 0, "failed", client, "unknown, revoked or expired token",
		          reterr);
	if (!e)
		e = db_commit(db, reterr);
	if (e) {
		db_rollback(db);
		return e;
	}
	if (!role_ok)
		return qerr_set(reterr, QERR_DENIED, "the API token is unknown, revoked or expired");
	*ret = who;
	return QERR_OK;
}
