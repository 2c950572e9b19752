/* pgembed: initdb, start and stop of the private cluster. */
#include "appliance/pgembed.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/db.h"
#include "core/log.h"

struct pgembed {
	char *data_dir;
	char *pgdata;
	char *sockdir;
	char *logfile;
	char *bindir;
	char *conninfo;
	uid_t uid;
	gid_t gid;
	bool started_here;
};

/* Highest-versioned Debian server directory, else pg_ctl on PATH. */
static char *find_bindir(void)
{
	g_autoptr(GDir) dir = g_dir_open("/usr/lib/postgresql", 0, NULL);
	char *best = NULL;
	long best_ver = -1;
	const char *name;
	while (dir && (name = g_dir_read_name(dir))) {
		long ver = strtol(name, NULL, 10);
		g_autofree char *ctl = g_build_filename("/usr/lib/postgresql", name, "bin", "pg_ctl", NULL);
		if (ver > best_ver && g_file_test(ctl, G_FILE_TEST_IS_EXECUTABLE)) {
			g_free(best);
			best = g_build_filename("/usr/lib/postgresql", name, "bin", NULL);
			best_ver = ver;
		}
	}
	if (best)
		return best;
	g_autofree char *ctl = g_find_program_in_path("pg_ctl");
	return ctl ? g_path_get_dirname(ctl) : NULL;
}

/* Runs argv (full path in argv[0]) as pg->uid, output to pg->logfile. Returns the exit status or -1. */
static int run_as(const struct pgembed *pg, char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(pg->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		if (geteuid() == 0 && pg->uid != 0) {
			if (setgroups(0, NULL) != 0 || setgid(pg->gid) != 0 || setuid(pg->uid) != 0)
				_exit(126);
		}
		if (chdir(pg->data_dir) != 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static enum qerr make_dir(const char *path, mode_t mode, uid_t uid, gid_t gid, char **reterr)
{
	if (g_mkdir_with_parents(path, mode) != 0)
		return qerr_set(reterr, QERR_IO, "cannot create %s: %s", path, g_strerror(errno));
	if (chmod(path, mode) != 0 || (geteuid() == 0 && chown(path, uid, gid) != 0))
		return qerr_set(reterr, QERR_IO, "cannot set owner and mode of %s: %s", path, g_strerror(errno));
	return QERR_OK;
}

static enum qerr resolve_account(struct pgembed *pg, const char *account, char **reterr)
{
	pg->uid = geteuid();
	pg->gid = getegid();
	if (geteuid() != 0)
		return QERR_OK;
	struct passwd *pw = getpwnam(account);
	if (!pw)
		return qerr_set(reterr, QERR_CONFIG,
		                "running as root, the embedded PostgreSQL needs an unprivileged account, but \"%s\" does "
		                "not exist: install the Debian package 'postgresql' or set database.run_as",
		                account);
	if (pw->pw_uid == 0)
		return qerr_set(reterr, QERR_CONFIG, "database.run_as must not be a root account");
	pg->uid = pw->pw_uid;
	pg->gid = pw->pw_gid;
	return QERR_OK;
}

/* As root the server's account must be able to reach the data directory. */
static enum qerr check_reachable(const struct pgembed *pg, char **reterr)
{
	if (geteuid() != 0)
		return QERR_OK;
	g_autofree char *p = g_strdup(pg->data_dir);
	while (strcmp(p, "/") != 0) {
		struct stat st;
		if (stat(p, &st) == 0 && st.st_uid != pg->uid && !(st.st_mode & S_IXOTH))
			return qerr_set(reterr, QERR_CONFIG,
			                "the embedded PostgreSQL account cannot reach %s (mode %03o): choose a data "
			                "directory outside it (general.data_dir) or make it searchable (chmod o+x %s)",
			                p, (unsigned)(st.st_mode & 0777), p);
		char *parent = g_path_get_dirname(p);
		g_free(p);
		p = parent;
	}
	return QERR_OK;
}

static struct pgembed *pg_new(const char *data_dir)
{
	struct pgembed *pg = g_new0(struct pgembed, 1);
	pg->data_dir = g_strdup(data_dir);
	pg->pgdata = g_build_filename(data_dir, "postgres", NULL);
	pg->sockdir = g_build_filename(data_dir, "run", NULL);
	pg->logfile = g_build_filename(data_dir, "postgres.log", NULL);
	pg->conninfo = g_strdup_printf("host=%s dbname=quire user=quire connect_timeout=10", pg->sockdir);
	return pg;
}

static void pg_free(struct pgembed *pg)
{
	if (!pg)
		return;
	g_free(pg->data_dir);
	g_free(pg->pgdata);
	g_free(pg->sockdir);
	g_free(pg->logfile);
	g_free(pg->bindir);
	g_free(pg->conninfo);
	g_free(pg);
}

static enum qerr prepare(struct pgembed *pg, const char *account, char **reterr)
{
	pg->bindir = find_bindir();
	if (!pg->bindir)
		return qerr_set(reterr, QERR_DEPENDENCY,
		                "PostgreSQL server programs (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or "
		                "PATH: install the Debian package 'postgresql', or set database.url");
	if (strlen(pg->sockdir) + sizeof "/.s.PGSQL.5432" > sizeof(((struct sockaddr_un *)0)->sun_path))
		return qerr_set(reterr, QERR_CONFIG, "data directory path %s is too long for a Unix socket; choose a shorter one",
		                pg->data_dir);
	enum qerr e = resolve_account(pg, account, reterr);
	if (!e)
		/* Others may traverse (not list) the data directory so a separate server account reaches its subfolders. */
		e = make_dir(pg->data_dir, pg->uid == geteuid() ? 0700 : 0711, geteuid(), getegid(), reterr);
	if (!e)
		e = check_reachable(pg, reterr);
	if (!e)
		e = make_dir(pg->sockdir, 0700, pg->uid, pg->gid, reterr);
	if (!e) {
		int fd = open(pg->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 || (geteuid() == 0 && fchown(fd, pg->uid, pg->gid) != 0))
			e = qerr_set(reterr, QERR_IO, "cannot create %s: %s", pg->logfile, g_strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return e;
}

static enum qerr initdb(struct pgembed *pg, char **reterr)
{
	enum qerr e = make_dir(pg->pgdata, 0700, pg->uid, pg->gid, reterr);
	if (e)
		return e;
	g_autofree char *prog = g_build_filename(pg->bindir, "initdb", NULL);
	g_autofree char *dflag = g_strdup_printf("--pgdata=%s", pg->pgdata);
	char *argv[] = {prog, dflag, "--username=quire", "--auth-local=trust", "--auth-host=reject",
	                "--encoding=UTF8", "--no-locale", "--no-instructions", NULL};
	if (run_as(pg, argv) != 0)
		return qerr_set(reterr, QERR_DB, "initdb failed; see %s", pg->logfile);
	g_autofree char *conf = g_build_filename(pg->pgdata, "postgresql.conf", NULL);
	g_autofree char *extra = g_strdup_printf("\n# Quire: private cluster, Unix socket only\n"
	                                         "listen_addresses = ''\n"
	                                         "unix_socket_directories = '%s'\n"
	                                         "unix_socket_permissions = 0700\n"
	                                         "log_min_messages = warning\n",
	                                         pg->sockdir);
	FILE *f = fopen(conf, "a");
	if (!f || fputs(extra, f) < 0) {
		if (f)
			fclose(f);
		return qerr_set(reterr, QERR_IO, "cannot write %s", conf);
	}
	fclose(f);
	return QERR_OK;
}

static int pg_ctl(struct pgembed *pg, const char *action)
{
	g_autofree char *prog = g_build_filename(pg->bindir, "pg_ctl", NULL);
	char *argv[] = {prog, (char *)action, "-D", pg->pgdata, "-l", pg->logfile, "-w", "-t", "60", "-m", "fast", NULL};
	if (strcmp(action, "status") == 0)
		argv[4] = NULL;
	return run_as(pg, argv);
}

static enum qerr ensure_database(struct pgembed *pg, char **reterr)
{
	g_autofree char *admin = g_strdup_printf("host=%s dbname=postgres user=quire connect_timeout=10", pg->sockdir);
	struct db *db = NULL;
	enum qerr e = db_connect(admin, &db, reterr);
	if (e)
		return e;
	struct db_res *res = NULL;
	e = db_query(db, "SELECT 1 FROM pg_database WHERE datname = 'quire'", 0, NULL, &res, reterr);
	if (!e && db_res_rows(res) == 0)
		e = db_exec(db, "CREATE DATABASE quire", reterr);
	db_res_free(res);
	db_close(db);
	return e;
}

static int lock_dir(const char *data_dir)
{
	g_autofree char *path = g_build_filename(data_dir, "postgres.lock", NULL);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		flock(fd, LOCK_EX);
	return fd;
}

enum qerr pgembed_start(const char *data_dir, const char *account, struct pgembed **ret, char **reterr)
{
	struct pgembed *pg = pg_new(data_dir);
	int lockfd = -1;
	g_autofree char *version = g_build_filename(pg->pgdata, "PG_VERSION", NULL);
	enum qerr e = prepare(pg, account, reterr);
	if (e)
		goto out;
	lockfd = lock_dir(data_dir);
	if (!g_file_test(version, G_FILE_TEST_EXISTS)) {
		log_info("creating the embedded PostgreSQL cluster in %s", pg->pgdata);
		e = initdb(pg, reterr);
		if (e)
			goto out;
	}
	if (pg_ctl(pg, "status") != 0) {
		if (pg_ctl(pg, "start") != 0) {
			e = qerr_set(reterr, QERR_DB_UNAVAILABLE, "the embedded PostgreSQL server did not start; see %s",
			             pg->logfile);
			goto out;
		}
		pg->started_here = true;
	}
	e = ensure_database(pg, reterr);
out:
	if (lockfd >= 0)
		close(lockfd);
	if (e) {
		pgembed_stop(pg);
		return e;
	}
	*ret = pg;
	return QERR_OK;
}

const char *pgembed_conninfo(const struct pgembed *pg) { return pg->conninfo; }

void pgembed_keep_running(struct pgembed *pg) { pg->started_here = false; }

void pgembed_stop(struct pgembed *pg)
{
	if (!pg)
		return;
	if (pg->started_here && pg->bindir && pg_ctl(pg, "stop") != 0)
		log_warn("the embedded PostgreSQL server did not stop cleanly; see %s", pg->logfile);
	pg_free(pg);
}

enum qerr pgembed_stop_now(const char *data_dir, const char *account, char **reterr)
{
	struct pgembed *pg = pg_new(data_dir);
	pg->bindir = find_bindir();
	enum qerr e = pg->bindir ? resolve_account(pg, account, reterr)
	                         : qerr_set(reterr, QERR_DEPENDENCY, "PostgreSQL server programs not found");
	if (!e && pg_ctl(pg, "status") == 0 && pg_ctl(pg, "stop") != 0)
		e = qerr_set(reterr, QERR_DB, "the embedded PostgreSQL server did not stop; see %s", pg->logfile);
	pg_free(pg);
	return e;
}
