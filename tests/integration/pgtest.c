/* pgtest: throwaway PostgreSQL for integration tests. */
#include "tests/integration/pgtest.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/pgembed.h"
#include "core/db.h"
#include "core/vault.h"

static struct pgembed *pg;
static char *dir;
static struct vault *vault;
static char *key_path;

void pgtest_watchdog(const char *tmpdir)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		g_error("pipe: %s", g_strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		g_error("fork: %s", g_strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (dup2(p[0], 0) < 0 || null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(127);
		setsid();
		/* the end of the pipe: the test process is gone; a server still running
		 * (postmaster.pid) gets an immediate shutdown, then the directory goes */
		execl("/bin/sh", "sh", "-c",
		      "cat >/dev/null; f=\"$1/data/postgres/postmaster.pid\"; "
		      "if [ -f \"$f\" ]; then kill -QUIT \"$(head -n 1 \"$f\")\" 2>/dev/null; sleep 2; fi; rm -rf \"$1\"",
		      "sh", tmpdir, (char *)NULL);
		_exit(127);
	}
	close(p[0]); /* p[1] stays open, unseen by exec'd children, until this process ends */
}

struct db *pgtest_start(void)
{
	dir = g_dir_make_tmp("quire-it-XXXXXX", NULL);
	g_assert_nonnull(dir);
	chmod(dir, 0711);
	pgtest_watchdog(dir);
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

struct vault *pgtest_vault(const char **ret_key_path)
{
	if (!vault) {
		key_path = g_build_filename(dir, "kek.key", NULL);
		g_autofree char *err = NULL;
		if (vault_keyfile_create(key_path, &err) != QERR_OK || vault_open(key_path, &vault, &err) != QERR_OK)
			g_error("key file: %s", err);
	}
	if (ret_key_path)
		*ret_key_path = key_path;
	return vault;
}

void pgtest_stop(void)
{
	vault_close(vault);
	vault = NULL;
	g_free(key_path);
	key_path = NULL;
	pgembed_stop(pg);
	pg = NULL;
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(dir);
}
