/* users: people, roles and API tokens.
 *
 * Four roles, deny by default: admin (everything), operator (upload, watch the
 * queue, retry), reviewer (view, correct and approve results), auditor
 * (read-only, including the audit log). users_allowed() is the one place that
 * says what a role may do; an unknown role or permission is refused.
 *
 * Passwords are stored as Argon2id strings (crypto_pwhash_str) at the cost of
 * the configured policy, and rehashed at the next successful login when the
 * policy has changed. API tokens are random (32 bytes), shown once, stored only
 * as a keyed hash under the vault's token subkey, scoped to a role, with an
 * expiry, revocable. Every change and every login, failed or not, is appended
 * to the audit log in the same transaction; passwords and tokens never are. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

struct db;
struct vault;

enum users_role { USERS_ROLE_ADMIN, USERS_ROLE_OPERATOR, USERS_ROLE_REVIEWER, USERS_ROLE_AUDITOR, USERS_ROLE_COUNT };

enum users_perm {
	USERS_PERM_UPLOAD,
	USERS_PERM_QUEUE_VIEW,
	USERS_PERM_JOB_RETRY,
	USERS_PERM_DOC_VIEW,
	USERS_PERM_DOC_CORRECT,
	USERS_PERM_DOC_APPROVE,
	USERS_PERM_DOC_EXPORT,
	USERS_PERM_DOC_ERASE,
	USERS_PERM_AUDIT_READ,
	USERS_PERM_USER_ADMIN,
	USERS_PERM_KEY_ADMIN,
	USERS_PERM_CONFIG,
	USERS_PERM_COUNT
};

#define USERS_NAME_MAX 64
#define USERS_PASSWORD_MIN 10
#define USERS_PASSWORD_MAX 1024
#define USERS_TOKEN_PREFIX "qt_"

/* Argon2id cost of new password hashes. */
struct users_policy {
	unsigned long long ops;
	size_t mem;
};

/* Who is acting: a logged-in user or an API token. */
struct users_principal {
	int64_t id;
	bool is_token;
	enum users_role role;
	char actor[USERS_NAME_MAX + 16]; /* "user:alice" or "token:7", for audit entries */
};

struct users_info {
	int64_t id;
	char *name;
	enum users_role role;
	bool disabled;
	char *created_at;
	char *last_login_at; /* "" when never */
};

struct users_token_info {
	int64_t id;
	char *name;
	enum users_role role;
	char *created_by;
	char *created_at;
	char *expires_at;
	bool revoked;
	bool expired;
};

const char *users_role_name(enum users_role r);
bool users_role_parse(const char *name, enum users_role *ret);
/* Whether role r may do p. Deny by default: anything not listed is refused. */
bool users_allowed(enum users_role r, enum users_perm p);

/* actor and client (borrowed) name who makes a change, for its audit entry. */
enum qerr users_add(struct db *db, const struct users_policy *pol, const char *name, const char *password,
                    enum users_role role, const char *actor, const char *client, int64_t *ret_id, char **reterr)
	QUIRE_MUST_CHECK;
/* users_passwd(), users_set_role() and users_disable() end the user's web sessions in the same
 * transaction; users_disable() also revokes the API tokens the user made (created_by "user:NAME"). */
enum qerr users_passwd(struct db *db, const struct users_policy *pol, const char *name, const char *password,
                       const char *actor, const char *client, char **reterr) QUIRE_MUST_CHECK;
enum qerr users_set_role(struct db *db, const char *name, enum users_role role, const char *actor,
                         const char *client, char **reterr) QUIRE_MUST_CHECK;
enum qerr users_disable(struct db *db, const char *name, const char *actor, const char *client, char **reterr)
	QUIRE_MUST_CHECK;
/* *ret (users_info_free) holds *ret_n users, by name. */
enum qerr users_list(struct db *db, struct users_info **ret, int *ret_n, char **reterr) QUIRE_MUST_CHECK;
void users_info_free(struct users_info *list, int n);

/* Checks a password; QERR_DENIED (one message for every cause) when the user is unknown,
 * disabled or the password wrong. Rehashes when pol differs from the stored hash. */
enum qerr users_login(struct db *db, const struct users_policy *pol, const char *name, const char *password,
                      const char *client, struct users_principal *ret, char **reterr) QUIRE_MUST_CHECK;
enum qerr users_logout(struct db *db, const struct users_principal *who, const char *client, char **reterr)
	QUIRE_MUST_CHECK;

/* Creates a token valid for expires_s seconds; *ret_token (g_free, shown once, never stored) and *ret_id. */
enum qerr users_token_create(struct db *db, const struct vault *v, const char *name, enum users_role role,
                             int64_t expires_s, const char *actor, const char *client, char **ret_token,
                             int64_t *ret_id, char **reterr) QUIRE_MUST_CHECK;
enum qerr users_token_revoke(struct db *db, int64_t id, const char *actor, const char *client, char **reterr)
	QUIRE_MUST_CHECK;
/* *ret (users_token_list_free) holds *ret_n tokens, newest first. */
enum qerr users_token_list(struct db *db, struct users_token_info **ret, int *ret_n, char **reterr)
	QUIRE_MUST_CHECK;
void users_token_list_free(struct users_token_info *list, int n);
/* Checks a presented token; QERR_DENIED when unknown, revoked or expired. */
enum qerr users_token_check(struct db *db, const struct vault *v, const char *token, const char *client,
                            struct users_principal *ret, char **reterr) QUIRE_MUST_CHECK;
