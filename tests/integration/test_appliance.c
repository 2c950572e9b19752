/* Integration tests of appliance/ against a real PostgreSQL: service start and
 * stop entries, configuration changes named without their secret values, and
 * the application working as database.role (quire_app), which may append to
 * the audit log but never change it, with or without the triggers. */
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/config.h"
#include "appliance/lifecycle.h"
#include "core/audit.h"
#include "core/db.h"
#include "core/migrate.h"
#include "core/vault.h"
#include "tests/integration/pgtest.h"

static struct db *db;
static struct vault *vault;
static char *dir;

static int64_t count(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int64_t count(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *sql = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	struct db_res *res = NULL;
	g_autofree char *err = NULL;
	QT_OK(db_query(db, sql, 0, NULL, &res, &err), err);
	int64_t n = db_res_int(res, 0, 0);
	db_res_free(res);
	return n;
}

static char *last(const char *action, const char *column)
{
	g_autofree char *sql =
	    g_strdup_printf("SELECT %s FROM audit_log WHERE action = '%s' ORDER BY id DESC LIMIT 1", column, action);
	struct db_res *res = NULL;
	g_autofree char *err = NULL;
	QT_OK(db_query(db, sql, 0, NULL, &res, &err), err);
	char *v = db_res_rows(res) ? g_strdup(db_res_text(res, 0, 0)) : NULL;
	db_res_free(res);
	return v;
}

/* A configuration from an INI text, as quire loads it. */
static struct config *config_of(const char *ini)
{
	g_autofree char *path = g_build_filename(dir, "quire.conf", NULL);
	g_assert_true(g_file_set_contents(path, ini, -1, NULL));
	struct config *cfg = NULL;
	g_autofree char *err = NULL;
	QT_OK(config_load(path, &cfg, &err), err);
	return cfg;
}

static void start(const char *ini, const char *service)
{
	struct config *cfg = config_of(ini);
	struct app app = {.cfg = cfg, .db = db, .vault = vault};
	g_autofree char *err = NULL;
	QT_OK(lifecycle_started(&app, service, &err), err);
	config_free(cfg);
}

static void test_start_stop_and_changes(void)
{
	g_autofree char *data = g_build_filename(dir, "data", NULL);
	g_autofree char *base = g_strdup_printf("[general]\ndata_dir = %s\n", data);
	g_autofree char *where = g_strdup_printf("%s/%d", g_get_host_name(), (int)getpid());

	/* first start on this host: the start, no change */
	start(base, "serve");
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE action = 'service.started'"), ==, 1);
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE action = 'config.changed'"), ==, 0);
	g_autofree char *actor = last("service.started", "actor");
	g_autofree char *client = last("service.started", "client");
	g_assert_cmpstr(actor, ==, "system:serve");
	g_assert_cmpstr(client, ==, where);

	/* the same settings again (a comment added): no change */
	g_autofree char *commented = g_strdup_printf("# edited\n%s", base);
	start(commented, "worker");
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE action = 'config.changed'"), ==, 0);

	/* two settings changed, one of them a credential */
	g_autofree char *changed = g_strdup_printf("%s[limits]\nmax_pages = 77\n[model]\nendpoint = "
	                                           "http://svc:hunter2-s3cret@127.0.0.1:9/\n",
	                                           base);
	start(changed, "web");
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE action = 'config.changed'"), ==, 1);
	g_autofree char *detail = last("config.changed", "detail");
	g_autofree char *who = last("config.changed", "actor");
	g_assert_cmpstr(who, ==, "system:web");
	g_assert_nonnull(strstr(detail, "limits.max_pages: \"2000\" -> \"77\""));
	g_assert_nonnull(strstr(detail, "model.endpoint: changed (not shown)"));
	g_assert_null(strstr(detail, "hunter2"));
	/* the secret is nowhere in the database */
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE detail LIKE '%%hunter2%%'"), ==, 0);
	g_assert_cmpint(count("SELECT count(*) FROM config_state WHERE settings::text LIKE '%%hunter2%%'"), ==, 0);
	g_assert_cmpint(count("SELECT count(*) FROM config_state WHERE settings->'limits.max_pages'->>'v' = '77'"), ==,
	                1);

	/* the secret changes alone: named, not shown */
	g_autofree char *secret2 = g_strdup_printf("%s[limits]\nmax_pages = 77\n[model]\nendpoint = "
	                                           "http://svc:other-s3cret@127.0.0.1:9/\n",
	                                           base);
	start(secret2, "worker");
	g_autofree char *detail2 = last("config.changed", "detail");
	g_assert_cmpstr(detail2, ==, "model.endpoint: changed (not shown)");

	/* stop, on a connection of its own */
	lifecycle_stopped(pgtest_conninfo(), "worker", "ok");
	g_autofree char *outcome = last("service.stopped", "outcome");
	g_autofree char *stop_client = last("service.stopped", "client");
	g_assert_cmpstr(outcome, ==, "ok");
	g_assert_cmpstr(stop_client, ==, where);
	int64_t n = 0;
	g_autofree char *err = NULL;
	QT_OK(audit_verify(db, &n, &err), err);
}

static const char *one(struct db *conn, const char *sql, struct db_res **hold)
{
	g_autofree char *err = NULL;
	QT_OK(db_query(conn, sql, 0, NULL, hold, &err), err);
	return db_res_text(*hold, 0, 0);
}

/* The application's connections (app_open's and every later one) work as quire_app. */
static void test_app_role(void)
{
	g_autofree char *ini = g_strdup_printf("[general]\ndata_dir = %s/data\n[database]\nurl = %s\n"
	                                       "[vault]\nkey_file = %s/kek.key\n",
	                                       dir, pgtest_conninfo(), dir);
	struct config *cfg = config_of(ini);
	struct app app;
	g_autofree char *err = NULL;
	QT_OK(app_open(cfg, APP_DB | APP_VAULT, &app, &err), err);
	struct db *later = NULL;
	QT_OK(db_connect(pgtest_conninfo(), &later, &err), err);
	struct db *conns[] = {app.db, later};
	for (size_t i = 0; i < G_N_ELEMENTS(conns); i++) {
		struct db *c = conns[i];
		struct db_res *res = NULL;
		g_assert_cmpstr(one(c, "SELECT current_user", &res), ==, "quire_app");
		db_res_free(res);
		/* appending is allowed */
		struct audit_event ev = {.actor = "system:test", .action = "role.checked", .outcome = "ok"};
		QT_OK(db_begin(c, &err), err);
		QT_OK(audit_append(c, &ev, &err), err);
		QT_OK(db_commit(c, &err), err);
		/* changing is refused by the role's rights, before any trigger could refuse it */
		g_assert_cmpint(db_exec(c, "UPDATE audit_log SET outcome = 'forged'", &err), ==, QERR_DB);
		g_assert_nonnull(strstr(err, "permission denied for table audit_log"));
		g_clear_pointer(&err, g_free);
		g_assert_cmpint(db_exec(c, "DELETE FROM audit_log", &err), ==, QERR_DB);
		g_assert_nonnull(strstr(err, "permission denied for table audit_log"));
		g_clear_pointer(&err, g_free);
		g_assert_cmpint(db_exec(c, "DELETE FROM audit_checkpoints", &err), ==, QERR_DB);
		g_assert_nonnull(strstr(err, "permission denied"));
		g_clear_pointer(&err, g_free);
		/* and the triggers cannot be switched off by it */
		g_assert_cmpint(db_exec(c, "ALTER TABLE audit_log DISABLE TRIGGER USER", &err), ==, QERR_DB);
		g_assert_nonnull(strstr(err, "must be owner"));
		g_clear_pointer(&err, g_free);
	}
	/* the owner (migrations) is still the owner */
	struct db_res *res = NULL;
	g_assert_cmpstr(one(db, "SELECT current_user", &res), ==, "quire");
	db_res_free(res);
	g_assert_cmpint(count("SELECT count(*) FROM audit_log WHERE action = 'role.checked'"), ==, 2);
	db_close(later);
	app_close(&app);
	config_free(cfg);
	db_set_work_role(NULL);
}

/* A login role that may not take database.role keeps its own rights and works on. */
static void test_app_role_not_granted(void)
{
	g_autofree char *err = NULL;
	QT_OK(db_exec(db,
	              "CREATE ROLE quire_stranger LOGIN; GRANT USAGE ON SCHEMA public TO quire_stranger;"
	              "GRANT SELECT ON schema_migrations TO quire_stranger",
	              &err),
	      err);
	g_autofree char *url = g_strdup_printf("%s user=quire_stranger", pgtest_conninfo());
	g_autofree char *ini = g_strdup_printf("[general]\ndata_dir = %s/data\n[database]\nurl = %s\n", dir, url);
	struct config *cfg = config_of(ini);
	struct app app;
	QT_OK(app_open(cfg, APP_DB, &app, &err), err);
	struct db_res *res = NULL;
	g_assert_cmpstr(one(app.db, "SELECT current_user", &res), ==, "quire_stranger");
	db_res_free(res);
	app_close(&app);
	config_free(cfg);
	db_set_work_role(NULL);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	db = pgtest_start();
	dir = g_dir_make_tmp("quire-it-life-XXXXXX", NULL);
	g_autofree char *key = g_build_filename(dir, "kek.key", NULL);
	g_autofree char *err = NULL;
	QT_OK(vault_keyfile_create(key, &err), err);
	QT_OK(vault_open(key, &vault, &err), err);
	g_test_add_func("/lifecycle/start-stop-and-config-changes", test_start_stop_and_changes);
	g_test_add_func("/app/role/audit-log-append-only", test_app_role);
	g_test_add_func("/app/role/not-granted", test_app_role_not_granted);
	int rc = g_test_run();
	vault_close(vault);
	db_close(db);
	pgtest_stop();
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
