/* pgtest: throwaway PostgreSQL for integration tests. */
#include "tests/integration/pgtest.h"

#include <glib.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "appliance/app.h"
#include "appliance/pgembed.h"
#include "core/db.h"

static struct pgembed *pg;
static char *dir;

struct db *pgtest_start(void)
{
	dir = g_dir_make_tmp("quire-it-XXXXXX", NULL);
	g_assert_nonnull(dir);
	chmod(dir, 0711);
	g_autofree char *data = g_build_filename(dir, "data", NULL);
	g_autofree char *err = NULL;
	if (pgembed_start(data, "postgres", &pg, &err) != QERR_OK)
		g_error("cannot start PostgreSQL: %s", err);
	struct db *db = pgtest_connect();
	int n = 0;
	const struct migration *list = app_migrations(&n);
	if (migrate_apply(db, list, n, NULL, &err) != QERR_OK)
		g_error("migrations failed: %s", err);
	return db;
}

const char *pgtest_conninfo(void) { return pgembed_conninfo(pg); }

struct db *pgtest_connect(void)
{
	struct db *db = NULL;
	g_autofree char *err = NULL;
	if (db_connect(pgembed_conninfo(pg), &db, &err) != QERR_OK)
		g_error("cannot connect: %s", err);
	return db;
}

void pgtest_stop(void)
{
	pgembed_stop(pg);
	pg = NULL;
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(dir);
}
