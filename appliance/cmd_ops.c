/* cmd_ops: operating an installation: watch, backup, restore, doctor.
 *
 * Backups hold what is already encrypted (the database dump, the keyring
 * sealed under the key-encryption key) and never the key-encryption key; a
 * restore goes only into an instance that holds no documents, and checks at
 * the end that every document's data key opens with the key in place. As root,
 * these commands refuse a data directory that belongs to another account (the
 * packaged service's): running its embedded PostgreSQL as root would take the
 * directory away from that account. */
#include "appliance/commands.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/backup.h"
#include "appliance/config.h"
#include "appliance/pgembed.h"
#include "appliance/progress.h"
#include "core/audit.h"
#include "core/db.h"
#include "core/log.h"
#include "runtime/runtime.h"
#include "core/vault.h"
#include "pipeline/store.h"
#include "pipeline/watch.h"

static volatile int ops_stop;
static void on_signal(int sig)
{
	(void)sig;
	ops_stop = 1;
}

/* As root, an embedded cluster in a directory owned by someone else is theirs to run. */
static int refuse_foreign_data_dir(const struct config *cfg, const char *what)
{
	struct stat st;
	if (geteuid() != 0 || cfg->db_url[0] || stat(cfg->data_dir, &st) != 0 || st.st_uid == 0)
		return 0;
	struct passwd *pw = getpwuid(st.st_uid);
	g_autofree char *msg = g_strdup_printf("%s belongs to the account %s; run this as that account: sudo -u %s quire %s",
	                                       cfg->data_dir, pw ? pw->pw_name : "?", pw ? pw->pw_name : "<owner>", what);
	return cmd_fail(what, msg);
}

static const char *conninfo_of(const struct app *app)
{
	return app->cfg->db_url[0] ? app->cfg->db_url : pgembed_conninfo(app->pg);
}

/* The keyring file (wrapped key material, sealed under the KEK), as the vault finds it. */
static char *keyring_path(const struct config *cfg)
{
	if (cfg->keyring && cfg->keyring[0])
		return g_strdup(cfg->keyring);
	return g_build_filename(cfg->data_dir, "keys", "keyring", NULL);
}

int cmd_watch(int argc, char **argv, struct config *cfg)
{
	gboolean once = FALSE;
	int settle = cfg->watch_settle_ms;
	GOptionEntry entries[] = {
		{"once", 0, 0, G_OPTION_ARG_NONE, &once, "Take the files that are there, then exit", NULL},
		{"settle-ms", 0, 0, G_OPTION_ARG_INT, &settle, "Unchanged this long counts as complete (watch.settle_ms)",
		 "MS"},
		{NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "[DIR]",
	              "Ingest the PDFs dropped into DIR (default watch.dir) once they are completely written; move each "
	              "to DIR/processed/ or DIR/failed/ after its database commit.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	const char *dir = argc == 2 ? argv[1] : cfg->watch_dir;
	if (argc > 2 || !dir[0])
		return cmd_fail("watch", "give one folder, or set watch.dir");
	if (settle < 0 || settle > 600000)
		return cmd_fail("watch", "--settle-ms must be from 0 to 600000");
	if (refuse_foreign_data_dir(cfg, "watch"))
		return 1;
	struct app app;
	g_autofree char *err = NULL;
	if (app_open(cfg, APP_DB | APP_VAULT, &app, &err))
		return cmd_fail("watch", err);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	struct watch_options wo = {.dir = dir, .max_bytes = (size_t)cfg->max_file_mb << 20,
	                           .max_attempts = cfg->max_attempts, .settle_ms = settle ? settle : 1,
	                           .actor = app.actor, .once = once};
	struct watch_stats st = {0};
	int rc = 0;
	if (watch_run(app.db, app.vault, &wo, &ops_stop, &st, &err))
		rc = cmd_fail("watch", err);
	printf("watch: %d stored, %d already stored, %d refused (in %s/failed)\n", st.ingested, st.duplicates, st.failed,
	       dir);
	app_close(&app);
	return rc;
}

struct ops_watcher {
	GThread *thread;
	struct watch_options o;
	char *dir, *conninfo, *actor;
	const struct vault *v;
	volatile int stop;
};

static gpointer watch_thread(gpointer data)
{
	struct ops_watcher *w = data;
	g_autofree char *err = NULL;
	if (watch_run(NULL, w->v, &w->o, &w->stop, NULL, &err))
		log_error("watch: stopped: %s", err);
	return NULL;
}

struct ops_watcher *ops_watch_start(const struct config *cfg, const struct vault *v, const char *conninfo)
{
	if (!cfg->watch_dir[0])
		return NULL;
	g_autofree char *err = NULL;
	if (watch_prepare(cfg->watch_dir, &err)) {
		log_error("watch: not watching: %s", err);
		return NULL;
	}
	struct ops_watcher *w = g_new0(struct ops_watcher, 1);
	w->dir = g_strdup(cfg->watch_dir);
	w->conninfo = g_strdup(conninfo);
	w->actor = g_strdup("system:watch");
	w->v = v;
	w->o = (struct watch_options){.dir = w->dir, .conninfo = w->conninfo, .max_bytes = (size_t)cfg->max_file_mb << 20,
	                              .max_attempts = cfg->max_attempts, .settle_ms = cfg->watch_settle_ms,
	                              .actor = w->actor};
	w->thread = g_thread_new("watch", watch_thread, w);
	return w;
}

void ops_watch_stop(struct ops_watcher *w)
{
	if (!w)
		return;
	w->stop = 1;
	g_thread_join(w->thread);
	g_free(w->dir);
	g_free(w->conninfo);
	g_free(w->actor);
	g_free(w);
}

static enum qerr query_int(struct db *db, const char *sql, int64_t *ret, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db, sql, 0, NULL, &res, reterr);
	if (!e)
		*ret = db_res_rows(res) ? db_res_int(res, 0, 0) : 0;
	db_res_free(res);
	return e;
}

/* Roles other than the connected user that the schema's tables grant to; a restore creates them. */
static enum qerr granted_roles(struct db *db, struct backup_info *info, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(db,
	                       "SELECT DISTINCT r.rolname FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a"
	                       " JOIN pg_roles r ON r.oid = a.grantee JOIN pg_namespace n ON n.oid = c.relnamespace"
	                       " WHERE n.nspname = 'public' AND r.rolname <> current_user ORDER BY 1",
	                       0, NULL, &res, reterr);
	for (int i = 0; !e && i < db_res_rows(res) && info->n_roles < BACKUP_MAX_ROLES; i++)
		g_strlcpy(info->roles[info->n_roles++], db_res_text(res, i, 0), sizeof info->roles[0]);
	db_res_free(res);
	return e;
}

static enum qerr describe(struct app *app, struct backup_info *info, char **reterr)
{
	memset(info, 0, sizeof *info);
	g_strlcpy(info->quire_version, QUIRE_VERSION, sizeof info->quire_version);
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *at = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
	g_strlcpy(info->created_at, at, sizeof info->created_at);
	int64_t v = 0;
	enum qerr e = query_int(app->db, "SELECT coalesce(max(version), 0) FROM schema_migrations", &v, reterr);
	info->schema_version = (int)v;
	if (!e)
		e = query_int(app->db, "SELECT count(*) FROM documents", &info->documents, reterr);
	if (!e)
		e = granted_roles(app->db, info, reterr);
	return e;
}

static enum qerr dump_database(struct app *app, const char *dest, char **reterr)
{
	g_autofree char *pg_dump = backup_pg_tool("pg_dump");
	if (!pg_dump)
		return qerr_set(reterr, QERR_DEPENDENCY, "pg_dump not found: install the Debian package postgresql-client");
	g_autofree char *file = g_strdup_printf("--file=%s", dest);
	g_autofree char *dbname = g_strdup_printf("--dbname=%s", conninfo_of(app));
	const char *argv[] = {pg_dump, "--format=custom", "--no-owner", file, dbname, NULL};
	return backup_run(argv, reterr);
}

static enum qerr make_backup(struct app *app, const char *path, struct backup_info *info, char **reterr)
{
	enum qerr e = describe(app, info, reterr);
	if (e)
		return e;
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *dump = g_build_filename(dir, ".quire-dump-XXXXXX", NULL);
	int fd = g_mkstemp_full(dump, O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return qerr_set(reterr, QERR_IO, "cannot create a file in %s: %s", dir, g_strerror(errno));
	close(fd);
	struct progress pr;
	progress_start(&pr, "backup: dumping the database", NULL, 0);
	e = dump_database(app, dump, reterr);
	if (!e)
		progress_end(&pr);
	g_autofree char *keyring = keyring_path(app->cfg);
	const char *files[2];
	int n = 0;
	struct stat st;
	if (!e && stat(keyring, &st) == 0) {
		if ((size_t)st.st_size > BACKUP_MAX_KEYRING)
			e = qerr_set(reterr, QERR_TOO_LARGE, "%s is larger than %u bytes", keyring, BACKUP_MAX_KEYRING);
		g_strlcpy(info->sections[n].name, "keyring", sizeof info->sections[n].name);
		files[n++] = keyring;
	}
	g_strlcpy(info->sections[n].name, "database", sizeof info->sections[n].name);
	files[n++] = dump;
	info->n_sections = n;
	if (!e) {
		uint64_t total = 0;
		for (int i = 0; i < n; i++)
			total += stat(files[i], &st) == 0 ? (uint64_t)st.st_size : 0;
		progress_start(&pr, "backup: writing", "bytes", total);
		backup_progress(&pr);
		e = backup_write(path, info, files, reterr);
		backup_progress(NULL);
		if (!e)
			progress_end(&pr);
	}
	g_unlink(dump);
	return e;
}

int cmd_backup(int argc, char **argv, struct config *cfg)
{
	if (cmd_parse(&argc, &argv, "FILE",
	              "Write the encrypted database and the wrapped key material (the keyring) to FILE, mode 0600. "
	              "The key-encryption key is not in it: keep a copy of it apart.",
	              NULL))
		return 2;
	if (argc != 2)
		return cmd_fail("backup", "give one file to write");
	if (refuse_foreign_data_dir(cfg, "backup"))
		return 1;
	struct app app;
	g_autofree char *err = NULL;
	if (app_open(cfg, APP_DB, &app, &err))
		return cmd_fail("backup", err);
	struct backup_info info;
	int rc = 0;
	if (make_backup(&app, argv[1], &info, &err)) {
		rc = cmd_fail("backup", err);
	} else {
		g_autofree char *key = config_key_path(cfg);
		const struct backup_section *k = backup_find(&info, "keyring");
		printf("backup written to %s: %lld documents, schema version %d, %s\n", argv[1], (long long)info.documents,
		       info.schema_version, k ? "database and keyring" : "database (no keyring file)");
		printf("the key-encryption key (%s) is not in the backup: without a copy of it the backup cannot be "
		       "decrypted\n",
		       key);
	}
	app_close(&app);
	return rc;
}

/* Puts the backed-up keyring in place; a different one already there is kept aside. */
static enum qerr restore_keyring(const struct config *cfg, const char *file, const struct backup_section *s,
                                 char **reterr)
{
	g_autofree char *path = keyring_path(cfg);
	g_autofree char *dir = g_path_get_dirname(path);
	if (g_mkdir_with_parents(dir, 0700) != 0)
		return qerr_set(reterr, QERR_IO, "cannot create %s: %s", dir, g_strerror(errno));
	g_autofree char *tmp = g_strconcat(path, ".restoring", NULL);
	g_unlink(tmp);
	enum qerr e = backup_extract(file, s, tmp, reterr);
	if (e)
		return e;
	if (g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_autoptr(GDateTime) now = g_date_time_new_now_utc();
		g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%S");
		g_autofree char *aside = g_strdup_printf("%s.before-restore-%s", path, stamp);
		if (rename(path, aside) != 0)
			e = qerr_set(reterr, QERR_IO, "cannot keep %s aside: %s", path, g_strerror(errno));
		else
			printf("the keyring that was there is kept as %s\n", aside);
	}
	if (!e && rename(tmp, path) != 0)
		e = qerr_set(reterr, QERR_IO, "cannot write %s: %s", path, g_strerror(errno));
	if (e)
		g_unlink(tmp);
	return e;
}

/* Empties the schema and creates the roles the dump grants to. */
static enum qerr prepare_schema(struct db *db, const struct backup_info *info, char **reterr)
{
	enum qerr e = db_exec(db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public", reterr);
	for (int i = 0; !e && i < info->n_roles; i++) {
		struct db_param p[1] = {DB_TEXT(info->roles[i])};
		struct db_res *res = NULL;
		e = db_query(db,
		             "SELECT format('CREATE ROLE %I NOLOGIN', $1::text)"
		             " WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1::text)",
		             1, p, &res, reterr);
		if (!e && db_res_rows(res) == 1)
			e = db_exec(db, db_res_text(res, 0, 0), reterr);
		db_res_free(res);
	}
	return e;
}

static enum qerr load_database(struct app *app, const char *file, const struct backup_info *info, bool force,
                               char **reterr)
{
	int64_t docs = 0;
	enum qerr e = query_int(app->db, "SELECT count(*) FROM documents", &docs, reterr);
	if (!e && docs > 0 && !force)
		return qerr_set(reterr, QERR_CONFLICT,
		                "the database already holds %lld documents: restore into a fresh instance, or give --force "
		                "to replace them",
		                (long long)docs);
	g_autofree char *pg_restore = backup_pg_tool("pg_restore");
	if (!e && !pg_restore)
		e = qerr_set(reterr, QERR_DEPENDENCY, "pg_restore not found: install the Debian package postgresql-client");
	g_autofree char *dump = g_build_filename(app->cfg->data_dir, ".restore-dump", NULL);
	g_unlink(dump);
	struct progress pr;
	if (!e) {
		progress_start(&pr, "restore: unpacking the database", "bytes", backup_find(info, "database")->bytes);
		backup_progress(&pr);
		e = backup_extract(file, backup_find(info, "database"), dump, reterr);
		backup_progress(NULL);
		if (!e)
			progress_end(&pr);
	}
	if (!e)
		e = prepare_schema(app->db, info, reterr);
	if (!e) {
		g_autofree char *dbname = g_strdup_printf("--dbname=%s", conninfo_of(app));
		const char *argv[] = {pg_restore, "--no-owner", "--exit-on-error", "--single-transaction", dbname, dump, NULL};
		progress_start(&pr, "restore: loading the database", NULL, 0);
		e = backup_run(argv, reterr);
		if (!e)
			progress_end(&pr);
	}
	g_unlink(dump);
	return e;
}

/* Every document's data key must open with the key-encryption key in place. */
static enum qerr verify_keys(struct app *app, int64_t *ret_docs, char **reterr)
{
	struct db_res *res = NULL;
	enum qerr e = db_query(app->db, "SELECT id FROM documents WHERE wrapped_key IS NOT NULL ORDER BY id", 0, NULL,
	                       &res, reterr);
	int bad = 0;
	struct progress pr;
	progress_start(&pr, "restore: opening document keys", "documents", e ? 0 : (uint64_t)db_res_rows(res));
	for (int i = 0; !e && i < db_res_rows(res); i++) {
		struct vault_dek *dek = NULL;
		g_autofree char *err = NULL;
		if (store_dek(app->db, app->vault, db_res_int(res, i, 0), &dek, &err) != QERR_OK)
			bad++;
		vault_dek_free(dek);
		progress_update(&pr, (uint64_t)i + 1);
	}
	progress_end(&pr);
	int64_t n = e ? 0 : db_res_rows(res);
	db_res_free(res);
	if (!e && bad)
		e = qerr_set(reterr, QERR_KEY,
		             "%d of %lld document keys do not open with this key-encryption key: put the key file of the "
		             "backed-up instance in place and restore again",
		             bad, (long long)n);
	if (!e)
		*ret_docs = n;
	return e;
}

/* The audit witness after a restore: a new instance's is begun with the restored log; an
 * instance that had one keeps it, and verify will find the log shorter than what it signed. */
static enum qerr restore_witness(struct app *app, char **reterr)
{
	const char *path = audit_witness_path();
	if (!path)
		return QERR_OK;
	if (g_file_test(path, G_FILE_TEST_EXISTS)) {
		printf("note: this host's audit witness %s signed the log as it was before the restore, so `quire audit "
		       "verify` reports the restored log as shorter or forked; if the restore is meant, move that file "
		       "aside and run `quire audit checkpoint` to sign the restored log\n",
		       path);
		return QERR_OK;
	}
	struct audit_checkpoint *cp = g_new0(struct audit_checkpoint, 1);
	enum qerr e = audit_checkpoint_export(app->db, app->vault, NULL, cp, reterr);
	g_free(cp);
	return e;
}

static int restore(struct config *cfg, const char *file, bool force)
{
	struct backup_info info;
	g_autofree char *err = NULL;
	struct stat st;
	struct progress pr;
	progress_start(&pr, "restore: checking the backup", "bytes", stat(file, &st) == 0 ? (uint64_t)st.st_size : 0);
	backup_progress(&pr);
	enum qerr checked = backup_read(file, &info, &err);
	backup_progress(NULL);
	if (checked)
		return cmd_fail("restore", err);
	progress_end(&pr);
	int known = 0;
	const struct migration *m = app_migrations(&known);
	if (!backup_find(&info, "database"))
		return cmd_fail("restore", "the backup has no database section");
	if (known == 0 || info.schema_version > m[known - 1].version)
		return cmd_fail("restore", "the backup's schema is newer than this quire: upgrade quire first");
	g_autofree char *key = config_key_path(cfg);
	if (!g_file_test(key, G_FILE_TEST_EXISTS)) {
		g_autofree char *msg = g_strdup_printf("no key file at %s: copy the key-encryption key of the backed-up "
		                                       "instance there first (mode 0600); backups do not hold it",
		                                       key);
		return cmd_fail("restore", msg);
	}
	struct app app;
	if (app_open(cfg, APP_MIGRATE, &app, &err))
		return cmd_fail("restore", err);
	const struct backup_section *ks = backup_find(&info, "keyring");
	enum qerr e = load_database(&app, file, &info, force, &err);
	if (!e && ks)
		e = restore_keyring(cfg, file, ks, &err);
	app_close(&app);
	if (e)
		return cmd_fail("restore", err);
	/* Migrations newer than the backup's schema, then the check that everything opens. */
	if (app_open(cfg, APP_MIGRATE | APP_VAULT, &app, &err))
		return cmd_fail("restore", err);
	int64_t docs = 0, entries = 0;
	e = verify_keys(&app, &docs, &err);
	if (!e)
		e = audit_verify(app.db, &entries, &err);
	if (!e)
		e = restore_witness(&app, &err);
	if (!e)
		printf("restored %lld documents from %s (made %s); every document key opens; audit log intact: %lld "
		       "entries\n",
		       (long long)docs, file, info.created_at, (long long)entries);
	app_close(&app);
	return e ? cmd_fail("restore", err) : 0;
}

int cmd_restore(int argc, char **argv, struct config *cfg)
{
	gboolean force = FALSE;
	GOptionEntry entries[] = {
		{"force", 0, 0, G_OPTION_ARG_NONE, &force, "Replace a database that already holds documents", NULL},
		{NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "FILE",
	              "Restore a backup into this instance (its key-encryption key must be in place), then check that "
	              "every document key opens.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	if (argc != 2)
		return cmd_fail("restore", "give one backup file");
	if (refuse_foreign_data_dir(cfg, "restore"))
		return 1;
	return restore(cfg, argv[1], force);
}

/* doctor: each check prints one line, and a line saying what to fix when it fails. */
struct doctor {
	int failed, warned;
};

static void report(struct doctor *d, int level, const char *what, const char *fix)
{
	static const char *const tags[] = {"ok  ", "warn", "FAIL"};
	printf("%s  %s\n", tags[level], what);
	if (fix)
		printf("      fix: %s\n", fix);
	d->failed += level == 2;
	d->warned += level == 1;
}

static void check_private(struct doctor *d, const char *label, const char *path, bool dir, bool required)
{
	struct stat st;
	g_autofree char *what = NULL, *fix = NULL;
	if (stat(path, &st) != 0) {
		what = g_strdup_printf("%s %s: %s", label, path, g_strerror(errno));
		fix = g_strdup(dir ? "run `quire init`" : "run `quire init`, or restore the file from your copy");
		report(d, required ? 2 : 1, what, fix);
		return;
	}
	unsigned mode = st.st_mode & 0777;
	if (st.st_uid != geteuid()) {
		struct passwd *pw = getpwuid(st.st_uid);
		what = g_strdup_printf("%s %s belongs to %s, not to the account running quire", label, path,
		                       pw ? pw->pw_name : "another account");
		fix = g_strdup_printf("run quire as that account (sudo -u %s quire ...) or chown it", pw ? pw->pw_name : "?");
		report(d, 2, what, fix);
	} else if (dir ? (mode & 0066) != 0 : (mode & 0077) != 0) {
		what = g_strdup_printf("%s %s has mode %03o: others may read or change it", label, path, mode);
		fix = g_strdup_printf("chmod %s %s", dir ? "700" : "600", path);
		report(d, 2, what, fix);
	} else {
		what = g_strdup_printf("%s %s (mode %03o)", label, path, mode);
		report(d, 0, what, NULL);
	}
}

/* Whether web.listen ("host:port", "[v6]:port") names a loopback address. */
static bool listen_is_loopback(const char *listen)
{
	const char *colon = strrchr(listen, ':');
	g_autofree char *host = g_strndup(listen, colon ? (size_t)(colon - listen) : strlen(listen));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	if (strcmp(host, "localhost") == 0)
		return true;
	g_autoptr(GInetAddress) a = g_inet_address_new_from_string(host);
	return a && g_inet_address_get_is_loopback(a);
}

static void check_tls(struct doctor *d, const struct config *cfg)
{
	g_autofree char *cert = NULL, *key = NULL, *err = NULL;
	enum qerr e = config_tls(cfg, &cert, &key, &err);
	if (e) {
		report(d, 2, err, e == QERR_CONFIG ? "set both, or neither"
		                                   : "restore the missing file, or delete the other and run `quire init --tls`");
		return;
	}
	if (!cert[0] && !key[0]) {
		bool local = listen_is_loopback(cfg->web_listen);
		report(d, local ? 0 : 1, "HTTPS off: the web server speaks plain HTTP",
		       local ? NULL : "web.listen is reachable from other machines: run `quire init --tls`, or set "
		                      "web.tls_cert and web.tls_key");
		return;
	}
	g_autofree char *what = g_strdup_printf("TLS certificate %s", cert);
	if (access(cert, R_OK) != 0)
		report(d, 2, what, "the certificate cannot be read: restore it, or run `quire init --tls`");
	else
		report(d, 0, what, NULL);
	check_private(d, "TLS key", key, false, true);
}

static void check_disk(struct doctor *d, const char *path)
{
	struct statvfs vfs;
	if (statvfs(path, &vfs) != 0)
		return;
	double free_gib = (double)vfs.f_bavail * (double)vfs.f_frsize / (1 << 30);
	double pct = vfs.f_blocks ? 100.0 * (double)vfs.f_bavail / (double)vfs.f_blocks : 0;
	g_autofree char *what = g_strdup_printf("free disk under %s: %.1f GiB (%.0f%%)", path, free_gib, pct);
	if (free_gib < 1)
		report(d, 2, what, "free space: PostgreSQL stops accepting writes when the disk is full");
	else if (free_gib < 5 || pct < 10)
		report(d, 1, what, "free space soon; documents and their extracted text are stored in the database");
	else
		report(d, 0, what, NULL);
}

static void check_database(struct doctor *d, struct config *cfg)
{
	if (!cfg->db_url[0]) {
		g_autofree char *pg_ctl = backup_pg_tool("pg_ctl");
		if (!pg_ctl) {
			report(d, 2, "PostgreSQL server programs (initdb, pg_ctl) not found",
			       "apt-get install postgresql-15, or set database.url");
			return;
		}
	}
	struct app app;
	g_autofree char *err = NULL;
	enum qerr e = app_open(cfg, APP_DB | APP_VAULT, &app, &err);
	if (e == QERR_CONFLICT) {
		report(d, 2, "database schema: migrations are pending", "run `quire migrate`");
		return;
	}
	if (e) {
		g_autofree char *what = g_strdup_printf("database or keys: %s", err);
		report(d, 2, what, e == QERR_KEY ? "put the key-encryption key in place (see the README)" : NULL);
		return;
	}
	int n = 0;
	const struct migration *m = app_migrations(&n);
	g_autofree char *what = g_strdup_printf("database reachable (%s), schema version %d, up to date",
	                                        cfg->db_url[0] ? "database.url" : "embedded", n ? m[n - 1].version : 0);
	report(d, 0, what, NULL);
	struct db_res *res = NULL;
	if (cfg->db_role && cfg->db_role[0] && db_query(app.db, "SELECT current_user::text", 0, NULL, &res, NULL) == QERR_OK &&
	    db_res_rows(res) == 1) {
		const char *user = db_res_text(res, 0, 0);
		if (strcmp(user, cfg->db_role) == 0) {
			g_autofree char *ok = g_strdup_printf("the application works as database role \"%s\"", user);
			report(d, 0, ok, NULL);
		} else {
			g_autofree char *warn = g_strdup_printf("the application works as the login role \"%s\", not as "
			                                        "database.role \"%s\" (the audit log is guarded by its "
			                                        "triggers only)", user, cfg->db_role);
			g_autofree char *fix = g_strdup_printf("as an administrator: GRANT %s TO %s", cfg->db_role, user);
			report(d, 1, warn, fix);
		}
	}
	db_res_free(res);
	res = NULL;
	int64_t docs = 0;
	if (db_query(app.db, "SELECT max(id), count(*) FROM documents WHERE wrapped_key IS NOT NULL", 0, NULL, &res,
	             NULL) == QERR_OK &&
	    db_res_rows(res) == 1 && (docs = db_res_int(res, 0, 1)) > 0) {
		struct vault_dek *dek = NULL;
		g_autofree char *kerr = NULL;
		if (store_dek(app.db, app.vault, db_res_int(res, 0, 0), &dek, &kerr) == QERR_OK) {
			g_autofree char *ok = g_strdup_printf("keys open the newest document's data key (%lld documents)",
			                                      (long long)docs);
			report(d, 0, ok, NULL);
		} else {
			report(d, 2, "the key-encryption key does not open the newest document's data key",
			       "put the key of this instance in place (vault.key_file); a new key cannot read old documents");
		}
		vault_dek_free(dek);
	}
	db_res_free(res);
	app_close(&app);
}

/* model.adapters: loaded onto model.path as a worker would, so that an adapter
 * that does not fit shows here rather than at the next start. */
static void check_adapters(struct doctor *d, const struct config *cfg)
{
	if (!cfg->model_adapters[0])
		return;
	struct rt_local_options lo = {.n_threads = 1, .n_ctx = 256, .chat_template = "raw", .adapters = cfg->model_adapters};
	struct rt_model *m = NULL;
	char *err = NULL;
	enum rterror e = rt_model_open_local(cfg->model_path, &lo, &m, &err);
	g_autofree char *what = NULL;
	if (e) {
		what = g_strdup_printf("model.adapters: %s", err ? err : rterror_str(e));
		report(d, 2, what, "check model.adapters: each adapter must be made for model.path's base model");
	} else {
		struct rt_model_info info;
		rt_model_describe(m, &info);
		what = g_strdup_printf("model.adapters: %u LoRA adapter%s fit %s", info.n_adapters,
		                       info.n_adapters == 1 ? "" : "s", cfg->model_path);
		report(d, 0, what, NULL);
	}
	free(err);
	rt_model_close(m);
}

static void check_model(struct doctor *d, const struct config *cfg)
{
	if (cfg->model_endpoint[0]) {
		g_autofree char *what = g_strdup_printf("model server %s (not contacted by doctor)", cfg->model_endpoint);
		report(d, 0, what, NULL);
	}
	if (!cfg->model_path[0]) {
		if (!cfg->model_endpoint[0])
			report(d, 0, "no model configured: the rules-based extractor runs", NULL);
		return;
	}
	char magic[4] = {0};
	FILE *f = fopen(cfg->model_path, "rb");
	size_t got = f ? fread(magic, 1, 4, f) : 0;
	g_autofree char *what = NULL;
	if (f)
		fclose(f);
	if (!f) {
		what = g_strdup_printf("model file %s: %s", cfg->model_path, g_strerror(errno));
		report(d, 2, what, "check model.path and that the account running quire may read the file");
	} else if (got != 4 || memcmp(magic, "GGUF", 4) != 0) {
		what = g_strdup_printf("model file %s is not a GGUF file", cfg->model_path);
		report(d, 2, what, "point model.path at a .gguf model");
	} else {
		what = g_strdup_printf("model file %s (GGUF)", cfg->model_path);
		report(d, 0, what, NULL);
		check_adapters(d, cfg);
	}
}

static void check_tesseract(struct doctor *d)
{
	const char *env = g_getenv("TESSDATA_PREFIX");
	const char *dirs[] = {env, "/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata"};
	g_autoptr(GString) langs = g_string_new(NULL);
	bool eng = false;
	for (size_t i = 0; i < G_N_ELEMENTS(dirs) && !langs->len; i++) {
		g_autoptr(GDir) dir = dirs[i] ? g_dir_open(dirs[i], 0, NULL) : NULL;
		const char *name;
		while (dir && (name = g_dir_read_name(dir))) {
			if (!g_str_has_suffix(name, ".traineddata") || strcmp(name, "osd.traineddata") == 0)
				continue;
			g_string_append_printf(langs, "%s%.*s", langs->len ? " " : "", (int)(strlen(name) - 12), name);
			eng = eng || strcmp(name, "eng.traineddata") == 0;
		}
	}
	g_autofree char *what = g_strdup_printf("Tesseract languages: %s", langs->len ? langs->str : "none");
	if (!langs->len)
		report(d, 2, what, "apt-get install tesseract-ocr-eng (and tesseract-ocr-<lang> for other languages)");
	else
		report(d, eng ? 0 : 1, what, eng ? NULL : "apt-get install tesseract-ocr-eng");
}

int cmd_doctor(int argc, char **argv, struct config *cfg)
{
	if (cmd_parse(&argc, &argv, "",
	              "Check the installation: configuration, permissions, HTTPS files, database, migrations, keys, model file, "
	              "Tesseract languages, free disk, watched folder. Exits 1 when a check fails.",
	              NULL))
		return 2;
	if (refuse_foreign_data_dir(cfg, "doctor"))
		return 1;
	struct doctor d = {0};
	g_autofree char *conf = g_strdup_printf("configuration: %s", cfg->source ? cfg->source : "defaults (no file)");
	report(&d, 0, conf, NULL);
	check_private(&d, "data directory", cfg->data_dir, true, true);
	g_autofree char *key = config_key_path(cfg);
	check_private(&d, "key file", key, false, true);
	g_autofree char *keyring = keyring_path(cfg);
	if (g_file_test(keyring, G_FILE_TEST_EXISTS))
		check_private(&d, "keyring", keyring, false, false);
	check_tls(&d, cfg);
	check_database(&d, cfg);
	check_model(&d, cfg);
	check_tesseract(&d);
	if (cfg->watch_dir[0]) {
		g_autofree char *err = NULL;
		g_autofree char *what = g_strdup_printf("watched folder %s", cfg->watch_dir);
		if (watch_prepare(cfg->watch_dir, &err))
			report(&d, 2, err, "create the folder and let the account running quire write in it");
		else
			report(&d, 0, what, NULL);
	}
	check_disk(&d, cfg->data_dir);
	if (d.failed)
		printf("doctor: %d problem%s to fix, %d warning%s\n", d.failed, d.failed == 1 ? "" : "s", d.warned,
		       d.warned == 1 ? "" : "s");
	else
		printf("doctor: all checks passed%s\n", d.warned ? " (with warnings)" : "");
	return d.failed ? 1 : 0;
}
