/* lifecycle: service start and stop, and configuration changes, in the audit log.
 *
 * config_state holds, per host, {"section.key": {"h": keyed hash hex, "v":
 * value}} ("v" absent for secret settings). Starts on one host are serialised
 * by a transaction-scoped advisory lock, so two services starting at once
 * record one change, not two. Settings that appear or disappear between
 * versions of quire are not changes an operator made and are not reported. */
#include "appliance/lifecycle.h"

#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/config.h"
#include "core/audit.h"
#include "core/db.h"
#include "core/json.h"
#include "core/log.h"
#include "core/vault.h"

#define VALUE_SHOWN 60  /* bytes of a value written in an audit entry */
#define DETAIL_MAX 1500 /* bytes of the list of changes */
#define CONFIG_LOCK "hashtext('quire.config_state')"

static gint64 started_at;

static char *where(void)
{
	return g_strdup_printf("%s/%d", g_get_host_name(), (int)getpid());
}

/* A value as it may appear in an audit entry: valid UTF-8, no control characters, short. */
static char *shown(const char *value)
{
	g_autofree char *v = g_utf8_make_valid(value, -1);
	GString *out = g_string_new(NULL);
	for (const char *c = v; *c && out->len < VALUE_SHOWN; c = g_utf8_next_char(c)) {
		gunichar u = g_utf8_get_char(c);
		if (g_unichar_iscntrl(u))
			g_string_append_c(out, '?');
		else
			g_string_append_unichar(out, u);
	}
	if (*v && strlen(v) > out->len)
		g_string_append(out, "...");
	return g_string_free(out, FALSE);
}

struct snapshot {
	const struct vault *v;
	struct json *settings; /* the new state */
	GChecksum *all;        /* over every key and hash, for the start entry */
};

static void add_setting(const char *key, const char *value, bool secret, void *data)
{
	struct snapshot *s = data;
	g_autofree char *input = g_strdup_printf("quire-config%c%s%c%s", 0, key, 0, value);
	size_t len = strlen("quire-config") + 1 + strlen(key) + 1 + strlen(value);
	uint8_t h[VAULT_HASH_BYTES];
	vault_keyed_hash(s->v, input, len, h);
	g_autofree char *hex = g_malloc(2 * 16 + 1);
	for (int i = 0; i < 16; i++)
		g_snprintf(hex + 2 * i, 3, "%02x", h[i]);
	struct json *e = json_add_item(s->settings, key, json_new_object());
	json_add_string(e, "h", hex);
	if (!secret)
		json_add_string(e, "v", value);
	g_checksum_update(s->all, (const guchar *)key, (gssize)strlen(key) + 1);
	g_checksum_update(s->all, (const guchar *)hex, (gssize)strlen(hex) + 1);
}

/* "key: old -> new; key: changed (secret)"; NULL when nothing a person set has changed. */
static char *changes(const struct json *before, const struct json *now)
{
	GString *d = g_string_new(NULL);
	int n = 0, left_out = 0;
	for (size_t i = 0; i < json_object_size(now); i++) {
		const char *key = NULL;
		const struct json *cur = json_object_at(now, i, &key);
		const struct json *old = json_get(before, key);
		const char *oh = json_get_string(old, "h"), *nh = json_get_string(cur, "h");
		if (!oh || !nh || strcmp(oh, nh) == 0)
			continue;
		n++;
		const char *ov = json_get_string(old, "v"), *nv = json_get_string(cur, "v");
		g_autofree char *item = NULL;
		if (ov && nv) {
			g_autofree char *a = shown(ov), *b = shown(nv);
			item = g_strdup_printf("%s: \"%s\" -> \"%s\"", key, a, b);
		} else {
			item = g_strdup_printf("%s: changed (not shown)", key);
		}
		if (d->len + strlen(item) > DETAIL_MAX) {
			left_out++;
			continue;
		}
		g_string_append_printf(d, "%s%s", d->len ? "; " : "", item);
	}
	if (left_out)
		g_string_append_printf(d, "; and %d more", left_out);
	if (n == 0) {
		g_string_free(d, TRUE);
		return NULL;
	}
	return g_string_free(d, FALSE);
}

static enum qerr append(struct db *db, const char *service, const char *action, const char *outcome, const char *detail,
                        char **reterr)
{
	g_autofree char *actor = g_strdup_printf("system:%s", service);
	g_autofree char *client = where();
	struct audit_event ev = {.actor = actor,
	                         .action = action,
	                         .object_type = "service",
	                         .outcome = outcome,
	                         .client = client,
	                         .detail = detail};
	return audit_append(db, &ev, reterr);
}

/* Compares and stores this host's configuration; *ret_fingerprint (g_free) names it in short. */
static enum qerr config_check(struct app *app, const char *service, char **ret_fingerprint, char **reterr)
{
	struct snapshot s = {.v = app->vault, .settings = json_new_object(), .all = g_checksum_new(G_CHECKSUM_SHA256)};
	config_each(app->cfg, add_setting, &s);
	*ret_fingerprint = g_strndup(g_checksum_get_string(s.all), 16);
	g_checksum_free(s.all);
	g_autofree char *text = json_format(s.settings, false);
	const char *host = g_get_host_name();
	struct db_param p[3] = {DB_TEXT(host), DB_TEXT(text), DB_TEXT(app->cfg->source ? app->cfg->source : "")};
	struct db_res *res = NULL;
	enum qerr e = db_query(app->db, "SELECT pg_advisory_xact_lock(" CONFIG_LOCK ")", 0, NULL, NULL, reterr);
	if (!e)
		e = db_query(app->db, "SELECT settings::text FROM config_state WHERE host = $1", 1, p, &res, reterr);
	struct json *before = NULL;
	if (!e && db_res_rows(res) == 1) {
		const char *t = db_res_text(res, 0, 0);
		if (json_parse(t, strlen(t), &before, NULL) != QERR_OK)
			before = NULL; /* unreadable: taken as a first start */
	}
	db_res_free(res);
	g_autofree char *changed = before ? changes(before, s.settings) : NULL;
	if (!e && changed) {
		log_info("configuration changed since the last start on this host: %s", changed);
		e = append(app->db, service, "config.changed", "ok", changed, reterr);
	}
	if (!e && (!before || changed))
		e = db_query(app->db,
		             "INSERT INTO config_state (host, settings, source) VALUES ($1, $2::jsonb, $3)"
		             " ON CONFLICT (host) DO UPDATE SET settings = EXCLUDED.settings, source = EXCLUDED.source,"
		             " updated_at = now()",
		             3, p, NULL, reterr);
	json_free(before);
	json_free(s.settings);
	return e;
}

enum qerr lifecycle_started(struct app *app, const char *service, char **reterr)
{
	g_assert(app->db && app->vault);
	started_at = g_get_monotonic_time();
	g_autofree char *fingerprint = NULL;
	enum qerr e = db_begin(app->db, reterr);
	if (!e)
		e = config_check(app, service, &fingerprint, reterr);
	if (!e) {
		g_autofree char *detail =
		    g_strdup_printf("quire %s; configuration %s (%s)", QUIRE_VERSION,
		                    app->cfg->source ? app->cfg->source : "defaults and environment", fingerprint);
		e = append(app->db, service, "service.started", "ok", detail, reterr);
	}
	if (!e)
		e = db_commit(app->db, reterr);
	if (e)
		db_rollback(app->db);
	return e;
}

void lifecycle_stopped(const char *conninfo, const char *service, const char *outcome)
{
	struct db *db = NULL;
	g_autofree char *err = NULL;
	g_autofree char *detail =
	    started_at
	        ? g_strdup_printf("after %lld s", (long long)((g_get_monotonic_time() - started_at) / G_USEC_PER_SEC))
	        : NULL;
	enum qerr e = db_connect(conninfo, &db, &err);
	if (!e)
		e = db_begin(db, &err);
	if (!e)
		e = append(db, service, "service.stopped", outcome, detail, &err);
	if (!e)
		e = db_commit(db, &err);
	if (e && db)
		db_rollback(db);
	if (e)
		log_warn("could not record the stop in the audit log: %s", err ? err : qerr_str(e));
	db_close(db);
}
