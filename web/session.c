/* session: who is asking: browser sessions, API tokens, CSRF, login and logout.
 *
 * A session token is 32 random bytes, in the user's cookie only; the
 * database holds its keyed hash (the vault's token subkey), so neither a
 * database reader nor a backup can take a session over. The cookie is
 * HttpOnly and SameSite=Strict, and under TLS it is a __Host- cookie with
 * Secure. A session ends after session_idle_s without use and session_max_s
 * after login whatever happens; logging in always makes a new token (the old
 * one, if any, is deleted), logging out and changing the password end it.
 * Each session has its own CSRF token, which every form carries; browsers'
 * Origin and Sec-Fetch-Site headers are checked on every POST as well. The
 * login form, having no session yet, carries a token that must match a
 * short-lived cookie (double submit). Failed logins slow down per account and
 * per address (server.c). */
#include "web/internal.h"

#include <string.h>

#include "core/db.h"
#include "core/vault.h"

#define LOGIN_COOKIE "quire_login"

const char *session_cookie_name(const struct web_req *req) { return req->tls ? "__Host-quire" : "quire"; }

static void set_cookie(struct web_req *req, struct web_resp *resp, const char *name, const char *value, int max_age)
{
	g_autofree char *c = g_strdup_printf("%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", name, value,
	                                     max_age, req->tls ? "; Secure" : "");
	web_resp_header(resp, "Set-Cookie", c);
}

static enum qerr end_session(struct db *db, int64_t id, char **reterr)
{
	char sid[24];
	g_snprintf(sid, sizeof sid, "%lld", (long long)id);
	struct db_param p[1] = {DB_TEXT(sid)};
	return db_query(db, "DELETE FROM web_sessions WHERE id = $1::bigint", 1, p, NULL, reterr);
}

static enum qerr by_token(struct web_req *req, const char *auth, char **reterr)
{
	if (g_ascii_strncasecmp(auth, "Bearer ", 7) != 0)
		return QERR_OK;
	const char *token = auth + 7;
	if (strlen(token) > 200)
		return QERR_OK;
	enum qerr e = users_token_check(req->db, web_vault(req), token, req->client, &req->who, reterr);
	if (e == QERR_DENIED || e == QERR_NOT_FOUND)
		return QERR_OK;
	if (!e)
		req->authed = true;
	return e;
}

static void fill_principal(struct web_req *req, struct db_res *res)
{
	req->session_id = db_res_int(res, 0, 0);
	req->csrf = g_strdup(db_res_text(res, 0, 1));
	req->who.id = db_res_int(res, 0, 2);
	req->who.is_token = false;
	req->user_name = g_strdup(db_res_text(res, 0, 3));
	if (!users_role_parse(db_res_text(res, 0, 4), &req->who.role))
		return; /* an unknown role grants nothing */
	g_snprintf(req->who.actor, sizeof req->who.actor, "user:%s", req->user_name);
	req->authed = true;
	req->by_cookie = true;
}

static enum qerr by_cookie(struct web_req *req, const char *token, char **reterr)
{
	if (strlen(token) != VAULT_TOKEN_CHARS)
		return QERR_OK;
	uint8_t mac[VAULT_HASH_BYTES];
	vault_token_hash(web_vault(req), token, mac);
	int idle_s = web_opt(req)->session_idle_s;
	char idle[16], max[16], touch[16];
	g_snprintf(idle, sizeof idle, "%d", idle_s);
	g_snprintf(max, sizeof max, "%d", web_opt(req)->session_max_s);
	/* last_seen_at is written at most every idle/4 seconds (15 at most), not on every request:
	 * a page view then costs no write, and the idle limit is kept within that margin. */
	g_snprintf(touch, sizeof touch, "%d", MAX(1, MIN(15, idle_s / 4)));
	struct db_param p[4] = {DB_BIN(mac, sizeof mac), DB_TEXT(idle), DB_TEXT(max), DB_TEXT(touch)};
	struct db_res *res = NULL;
	/* Expired sessions of anyone are swept on the way: the table stays small. */
	enum qerr e = db_query(req->db,
	                       "WITH gone AS (DELETE FROM web_sessions WHERE last_seen_at < now() - $2::int * interval '1 s'"
	                       " OR created_at < now() - $3::int * interval '1 s'),"
	                       " seen AS (UPDATE web_sessions SET last_seen_at = now() WHERE token_mac = $1"
	                       " AND last_seen_at < now() - $4::int * interval '1 s'"
	                       " AND last_seen_at >= now() - $2::int * interval '1 s')"
	                       " SELECT s.id, s.csrf, u.id, u.name, u.role FROM web_sessions s JOIN users u ON u.id = s.user_id"
	                       " WHERE s.token_mac = $1 AND NOT u.disabled AND s.last_seen_at >= now() - $2::int * interval '1 s'"
	                       " AND s.created_at >= now() - $3::int * interval '1 s'",
	                       4, p, &res, reterr);
	if (e)
		return e;
	if (db_res_rows(res) == 1)
		fill_principal(req, res);
	db_res_free(res);
	return QERR_OK;
}

enum qerr session_authenticate(struct web_req *req, bool api, char **reterr)
{
	const char *auth = web_header(req, "Authorization");
	if (auth)
		return by_token(req, auth, reterr);
	const char *cookie = web_cookie(req, session_cookie_name(req));
	if (cookie)
		return by_cookie(req, cookie, reterr);
	return QERR_OK;
}

bool session_origin_ok(const struct web_req *req)
{
	const char *site = web_header(req, "Sec-Fetch-Site");
	if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
		return false;
	const char *origin = web_header(req, "Origin");
	if (!origin)
		return true; /* not a browser, or an old one: the CSRF token still applies to sessions */
	const char *host = web_header(req, "Host");
	if (!host)
		return false;
	g_autofree char *want = g_strdup_printf("%s://%s", req->tls ? "https" : "http", host);
	return strcmp(origin, want) == 0;
}

bool session_csrf_ok(const struct web_req *req)
{
	const char *t = web_form(req, "csrf");
	if (!t)
		t = web_header(req, "X-CSRF-Token");
	return t && req->csrf && strlen(t) == strlen(req->csrf) && vault_equal(t, req->csrf, strlen(t));
}

/* ---- pages ---- */

static const char *safe_next(const char *next)
{
	/* Only paths of this site: no scheme, no //host, no backslash tricks. */
	if (!next || next[0] != '/' || next[1] == '/' || next[1] == '\\' || strchr(next, ':') || strlen(next) > 200)
		return "/";
	return next;
}

static void login_form(struct web_req *req, struct web_resp *resp, unsigned status, const char *message)
{
	char token[VAULT_TOKEN_CHARS + 1];
	vault_token_new(token);
	set_cookie(req, resp, LOGIN_COOKIE, token, 600);
	html_begin(req, resp, "Log in", NULL);
	resp->status = status;
	GString *b = resp->body;
	g_string_append(b, "<section class=\"login\"><h1>Log in to Quire</h1>");
	if (message)
		html_message(b, "error", message);
	g_string_append(b, "<form method=\"post\" action=\"/login\">");
	g_string_append_printf(b, "<input type=\"hidden\" name=\"login_token\" value=\"%s\">", token);
	g_string_append(b, "<input type=\"hidden\" name=\"next\" value=\"");
	html_escape(b, safe_next(web_query(req, "next") ? web_query(req, "next") : web_form(req, "next")));
	g_string_append(b, "\"><label>User name <input name=\"name\" autocomplete=\"username\" required autofocus></label>"
	                   "<label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\""
	                   " required></label><button type=\"submit\">Log in</button></form></section>");
	html_end(resp);
}

static void get_login(struct web_req *req, struct web_resp *resp)
{
	/* Shown to a signed-in user as well: logging in again replaces the session (rotation). */
	login_form(req, resp, 200, NULL);
}

static enum qerr new_session(struct web_req *req, struct web_resp *resp, const struct users_principal *who,
                             char **reterr)
{
	char token[VAULT_TOKEN_CHARS + 1], csrf[VAULT_TOKEN_CHARS + 1], uid[24];
	vault_token_new(token);
	vault_token_new(csrf);
	uint8_t mac[VAULT_HASH_BYTES];
	vault_token_hash(web_vault(req), token, mac);
	g_snprintf(uid, sizeof uid, "%lld", (long long)who->id);
	struct db_param p[4] = {DB_BIN(mac, sizeof mac), DB_TEXT(uid), DB_TEXT(csrf), DB_TEXT(req->client)};
	enum qerr e = db_query(req->db,
	                       "INSERT INTO web_sessions (token_mac, user_id, csrf, client) VALUES ($1, $2::bigint, $3, $4)",
	                       4, p, NULL, reterr);
	if (!e)
		set_cookie(req, resp, session_cookie_name(req), token, web_opt(req)->session_max_s);
	explicit_bzero(token, sizeof token);
	return e;
}

static void post_login(struct web_req *req, struct web_resp *resp)
{
	const char *name = web_form(req, "name"), *password = web_form(req, "password");
	const char *lt = web_form(req, "login_token"), *lc = web_cookie(req, LOGIN_COOKIE);
	if (!lt || !lc || strlen(lt) != strlen(lc) || !vault_equal(lt, lc, strlen(lt))) {
		login_form(req, resp, 403, "The login form expired. Please try again.");
		return;
	}
	if (!name || !password || !name[0]) {
		login_form(req, resp, 400, "Enter your user name and password.");
		return;
	}
	int wait = web_throttle_wait(req, name);
	if (wait > 0) {
		g_autofree char *msg = g_strdup_printf("Too many failed attempts. Try again in %d seconds.", wait);
		login_form(req, resp, 429, msg);
		g_autofree char *ra = g_strdup_printf("%d", wait);
		web_resp_header(resp, "Retry-After", ra);
		return;
	}
	struct users_policy pol = {web_opt(req)->password_ops, web_opt(req)->password_mem};
	struct users_principal who = {0};
	g_autofree char *err = NULL;
	enum qerr e = users_login(req->db, &pol, name, password, req->client, &who, &err);
	web_throttle_note(req, name, e == QERR_OK);
	if (e == QERR_DENIED) {
		login_form(req, resp, 401, "Wrong user name or password.");
		return;
	}
	if (!e && req->session_id) /* rotation: the session before this login ends */
		e = end_session(req->db, req->session_id, &err);
	if (!e)
		e = new_session(req, resp, &who, &err);
	if (e) {
		html_error(req, resp, 503, "Logging in failed; please try again shortly.");
		return;
	}
	set_cookie(req, resp, LOGIN_COOKIE, "", 0);
	web_redirect(resp, safe_next(web_form(req, "next")));
}

static void post_logout(struct web_req *req, struct web_resp *resp)
{
	if (req->authed && req->by_cookie) {
		if (!session_csrf_ok(req)) {
			html_error(req, resp, 403, "The form's security token is missing or stale; reload the page.");
			return;
		}
		g_autofree char *err = NULL;
		if (end_session(req->db, req->session_id, &err) || users_logout(req->db, &req->who, req->client, &err)) {
			html_error(req, resp, 503, "Logging out failed; please try again.");
			return;
		}
	}
	set_cookie(req, resp, session_cookie_name(req), "", 0);
	web_redirect(resp, "/login");
}

static void get_account(struct web_req *req, struct web_resp *resp)
{
	html_begin(req, resp, "Account", "account");
	GString *b = resp->body;
	g_string_append(b, "<h1>Your account</h1><p>Signed in as <strong>");
	html_escape(b, req->who.actor);
	g_string_append_printf(b, "</strong>, role <strong>%s</strong>.</p>", users_role_name(req->who.role));
	if (web_query(req, "changed"))
		html_message(b, "ok", "Password changed.");
	g_string_append(b, "<h2>Change password</h2><form method=\"post\" action=\"/account/password\">");
	html_csrf(req, b);
	g_string_append_printf(b, "<label>Current password <input type=\"password\" name=\"current\" required"
	                          " autocomplete=\"current-password\"></label><label>New password (at least %d characters)"
	                          " <input type=\"password\" name=\"password\" required minlength=\"%d\""
	                          " autocomplete=\"new-password\"></label><button type=\"submit\">Change password</button>"
	                          "</form><p class=\"hint\">Changing the password ends every session of this account,"
	                          " this one included.</p>",
	                       USERS_PASSWORD_MIN, USERS_PASSWORD_MIN);
	html_end(resp);
}

static void post_password(struct web_req *req, struct web_resp *resp)
{
	const char *cur = web_form(req, "current"), *pw = web_form(req, "password");
	if (!req->by_cookie || !cur || !pw) {
		html_error(req, resp, 400, "Enter the current and the new password.");
		return;
	}
	struct users_policy pol = {web_opt(req)->password_ops, web_opt(req)->password_mem};
	struct users_principal check = {0};
	g_autofree char *err = NULL;
	enum qerr e = users_login(req->db, &pol, req->user_name, cur, req->client, &check, &err);
	if (e) {
		html_error(req, resp, e == QERR_DENIED ? 403 : 503, "The current password is wrong.");
		return;
	}
	e = users_passwd(req->db, &pol, req->user_name, pw, req->who.actor, req->client, &err);
	if (e) {
		html_error(req, resp, e == QERR_BAD_INPUT ? 400 : 503, err ? err : "The password was not changed.");
		return;
	}
	char uid[24];
	g_snprintf(uid, sizeof uid, "%lld", (long long)req->who.id);
	struct db_param p[1] = {DB_TEXT(uid)};
	g_clear_pointer(&err, g_free);
	if (db_query(req->db, "DELETE FROM web_sessions WHERE user_id = $1::bigint", 1, p, NULL, &err) != QERR_OK) {
		html_error(req, resp, 503, "The password changed, but sessions could not be ended; log out everywhere.");
		return;
	}
	set_cookie(req, resp, session_cookie_name(req), "", 0);
	web_redirect(resp, "/login");
}

const struct web_route session_routes[] = {
	{"GET", "/login", 0, WEB_PUBLIC, get_login},
	{"POST", "/login", 0, WEB_PUBLIC, post_login},
	{"POST", "/logout", 0, WEB_PUBLIC, post_logout},
	{"GET", "/account", 0, WEB_ANY_ROLE, get_account},
	{"POST", "/account/password", 0, WEB_ANY_ROLE, post_password},
	{NULL, NULL, 0, 0, NULL},
};
