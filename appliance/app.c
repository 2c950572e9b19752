/* app: configuration to a ready database and vault. */
#include "appliance/app.h"

#include <gio/gio.h>
#include <glib.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/commands.h"
#include "appliance/config.h"
#include "appliance/pgembed.h"
#include "core/db.h"
#include "core/log.h"
#include "core/vault.h"

#define MAX_MIGRATIONS 256

static struct migration migrations[MAX_MIGRATIONS];
static int n_migrations = -1;

static int by_version(const void *a, const void *b)
{
	return ((const struct migration *)a)->version - ((const struct migration *)b)->version;
}

/* Migrations are compiled in as resources named NNNN_name.sql. */
static void load_migrations(void)
{
	n_migrations = 0;
	char **names = g_resources_enumerate_children("/quire/migrations", 0, NULL);
	for (int i = 0; names && names[i] && n_migrations < MAX_MIGRATIONS; i++) {
		if (!g_str_has_suffix(names[i], ".sql") || !g_ascii_isdigit(names[i][0]))
			continue;
		g_autofree char *path = g_strconcat("/quire/migrations/", names[i], NULL);
		GBytes *data = g_resources_lookup_data(path, 0, NULL);
		if (!data)
			continue;
		struct migration *m = &migrations[n_migrations++];
		m->version = (int)strtol(names[i], NULL, 10);
		const char *us = strchr(names[i], '_');
		m->name = g_strndup(us ? us + 1 : names[i], strlen(us ? us + 1 : names[i]) - 4);
		m->sql = g_bytes_get_data(data, NULL); /* resources are NUL-terminated and live forever */
	}
	g_strfreev(names);
	qsort(migrations, (size_t)n_migrations, sizeof migrations[0], by_version);
}

const struct migration *app_migrations(int *ret_n)
{
	if (n_migrations < 0)
		load_migrations();
	*ret_n = n_migrations;
	return migrations;
}

static char *actor_name(void)
{
	struct passwd *pw = getpwuid(getuid());
	return g_strdup_printf("cli:%s", pw ? pw->pw_name : "unknown");
}

/* After the migrations, which the login role (the schema's owner) runs: the
 * connections opened from now on work as database.role, and so does app->db
 * unless the command changes the schema itself. A login role that may not take
 * database.role (an existing server where it was not granted) keeps its own
 * rights, with a warning. */
static enum qerr take_role(struct app *app, unsigned needs, char **reterr)
{
	const char *role = app->cfg->db_role;
	if (!role || !role[0])
		return QERR_OK;
	g_autofree char *err = NULL;
	enum qerr e = db_set_role(app->db, role, &err);
	if (e == QERR_DB) {
		static gsize told;
		if (g_once_init_enter(&told)) {
			log_warn("the database login role cannot work as \"%s\" (%s); it keeps its own rights: grant it with "
			         "GRANT %s TO <login role>, or set database.role empty",
			         role, err, role);
			g_once_init_leave(&told, 1);
		}
		return QERR_OK;
	}
	if (e)
		return qerr_set(reterr, e, "%s", err);
	db_set_work_role(role);
	if (needs & APP_MIGRATE)
		return db_set_role(app->db, NULL, reterr);
	return QERR_OK;
}

static enum qerr open_db(struct app *app, unsigned needs, const char **ret_conninfo, char **reterr)
{
	db_set_work_role(NULL); /* the login role checks and applies the migrations; take_role() follows */
	const char *conninfo = app->cfg->db_url;
	enum qerr e = QERR_OK;
	if (!conninfo[0]) {
		e = pgembed_start(app->cfg->data_dir, app->cfg->db_run_as, &app->pg, reterr);
		if (e)
			return e;
		conninfo = pgembed_conninfo(app->pg);
	}
	*ret_conninfo = conninfo;
	e = db_connect(conninfo, &app->db, reterr);
	if (e)
		return e;
	int n = 0;
	const struct migration *list = app_migrations(&n);
	e = (needs & APP_MIGRATE) ? migrate_apply(app->db, list, n, NULL, reterr) : migrate_check(app->db, list, n, reterr);
	if (!e)
		e = take_role(app, needs, reterr);
	return e;
}

enum qerr app_open(struct config *cfg, unsigned needs, struct app *ret, char **reterr)
{
	memset(ret, 0, sizeof *ret);
	ret->cfg = cfg;
	ret->actor = actor_name();
	enum qerr e = QERR_OK;
	const char *conninfo = NULL;
	/* The database first: the keyring may live there. */
	if (needs & (APP_DB | APP_MIGRATE))
		e = open_db(ret, needs, &conninfo, reterr);
	if (!e && (needs & APP_VAULT))
		e = keys_open_vault(cfg, conninfo, &ret->vault, &ret->ring, reterr);
	if (e)
		app_close(ret);
	return e;
}

void app_close(struct app *app)
{
	keys_close_vault(app->vault, app->ring); /* its connection goes before the server may stop */
	app->vault = NULL;
	app->ring = NULL;
	db_set_work_role(NULL);
	db_close(app->db);
	app->db = NULL;
	pgembed_stop(app->pg);
	app->pg = NULL;
	g_free(app->actor);
	app->actor = NULL;
}
