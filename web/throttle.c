/* throttle: failed logins slow down per account and per address, across web servers.
 *
 * Nothing for the first three failures, then 1, 2, 4 ... seconds, at most 5 minutes. The
 * counts live in the table login_throttle, keyed by a keyed hash of "user:NAME" or
 * "addr:ADDRESS" (the vault's token subkey), so the table names neither accounts nor
 * addresses; rows idle for a day are removed. */
#include "web/internal.h"

#include <string.h>

#include "core/db.h"
#include "core/log.h"
#include "core/vault.h"

#define KEY_MAX 256 /* a longer name is cut: the hash still tells accounts apart in practice */

/* Hex of the keyed hash of "<kind>:<value>" into out (2 * VAULT_HASH_BYTES + 1). */
static void throttle_key(struct web_req *req, const char *kind, const char *value, char *out)
{
	g_autofree char *text = g_strdup_printf("%s:%.*s", kind, KEY_MAX, value ? value : "");
	uint8_t mac[VAULT_HASH_BYTES];
	vault_token_hash(web_vault(req), text, mac);
	for (size_t i = 0; i < sizeof mac; i++)
		g_snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

int web_throttle_wait(struct web_req *req, const char *name)
{
	char ku[2 * VAULT_HASH_BYTES + 1], ka[2 * VAULT_HASH_BYTES + 1];
	throttle_key(req, "user", name, ku);
	throttle_key(req, "addr", req->client, ka);
	struct db_param p[2] = {DB_TEXT(ku), DB_TEXT(ka)};
	struct db_res *res = NULL;
	g_autofree char *err = NULL;
	if (db_query(req->db,
	             "SELECT coalesce(ceil(extract(epoch FROM max(until_at) - now())), 0)::int FROM login_throttle"
	             " WHERE key IN ($1, $2) AND until_at > now()",
	             2, p, &res, &err) != QERR_OK) {
		log_warn("login throttling: %s", err);
		return 0;
	}
	int wait = db_res_rows(res) == 1 ? (int)db_res_int(res, 0, 0) : 0;
	db_res_free(res);
	return wait > 0 ? wait : 0;
}

void web_throttle_note(struct web_req *req, const char *name, bool ok)
{
	char ku[2 * VAULT_HASH_BYTES + 1], ka[2 * VAULT_HASH_BYTES + 1];
	throttle_key(req, "user", name, ku);
	throttle_key(req, "addr", req->client, ka);
	struct db_param p[2] = {DB_TEXT(ku), DB_TEXT(ka)};
	g_autofree char *err = NULL;
	enum qerr e = QERR_OK;
	if (ok) {
		e = db_query(req->db, "DELETE FROM login_throttle WHERE key IN ($1, $2)", 2, p, NULL, &err);
	} else {
		e = db_query(
		    req->db,
		    "INSERT INTO login_throttle AS t (key, failures) SELECT k, 1 FROM unnest(ARRAY[$1, $2]) AS k"
		    " ON CONFLICT (key) DO UPDATE SET failures = t.failures + 1, updated_at = now(),"
		    " until_at = CASE WHEN t.failures + 1 >= 3 THEN now() + least(make_interval(secs =>"
		    " 2 ^ least(t.failures + 1 - 3, 8)), interval '300 seconds') ELSE t.until_at END",
		    2, p, NULL, &err);
		if (!e)
			e = db_query(req->db, "DELETE FROM login_throttle WHERE updated_at < now() - interval '1 day'",
			             0, NULL, NULL, &err);
	}
	if (e)
		log_warn("login throttling: %s", err);
}
