/* watch: the watched folder's passes, completeness checks and moves.
 *
 * One pass lists DIR, updates what is known of each candidate (size, mtime,
 * when it was last seen to change, whether a close-after-write or a rename was
 * reported), and ingests the ones that are complete, one at a time, in name
 * order. The folder itself is the only state kept across restarts: what is
 * still in DIR has not been moved, and the store's keyed content hash makes a
 * second submission of an already committed file return the same document. */
#include "pipeline/watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/db.h"
#include "core/log.h"
#include "pipeline/store.h"

#define PROCESSED "processed"
#define FAILED "failed"
#define MAX_BACKOFF_MS 30000

struct pending {
	off_t size;
	int64_t mtime_ns;
	gint64 since_us;    /* when size and mtime last changed (monotonic) */
	bool closed;        /* a close-after-write or rename was reported since */
	gint64 retry_at_us; /* after a failed attempt: not before this */
	int tries;
	unsigned seen;      /* pass number of the last listing that showed it */
};

struct watcher {
	const struct watch_options *o;
	const struct vault *v;
	struct db *db;
	bool own_db;
	int dirfd, processedfd, failedfd, inofd;
	GHashTable *pending; /* name -> struct pending */
	unsigned pass;
	gint64 reconnect_at_us;
	int backoff_ms;
	struct watch_stats st;
};

static int settle_ms(const struct watch_options *o) { return o->settle_ms > 0 ? o->settle_ms : 2000; }
static int scan_ms(const struct watch_options *o) { return o->scan_ms > 0 ? o->scan_ms : 1000; }

static bool is_candidate(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 4 && g_ascii_strcasecmp(name + n - 4, ".pdf") == 0;
}

static enum qerr make_subdir(const char *dir, const char *sub, char **reterr)
{
	g_autofree char *path = g_build_filename(dir, sub, NULL);
	if (mkdir(path, 0750) != 0 && errno != EEXIST)
		return qerr_set(reterr, QERR_IO, "cannot create %s: %s", path, g_strerror(errno));
	if (!g_file_test(path, G_FILE_TEST_IS_DIR))
		return qerr_set(reterr, QERR_CONFIG, "%s exists and is not a folder", path);
	return QERR_OK;
}

enum qerr watch_prepare(const char *dir, char **reterr)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return qerr_set(reterr, QERR_NOT_FOUND, "watched folder %s: %s", dir, g_strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return qerr_set(reterr, QERR_CONFIG, "watched folder %s is not a folder", dir);
	if (access(dir, W_OK | X_OK) != 0)
		return qerr_set(reterr, QERR_CONFIG, "watched folder %s is not writable: files could not be moved out of it",
		                dir);
	enum qerr e = make_subdir(dir, PROCESSED, reterr);
	return e ? e : make_subdir(dir, FAILED, reterr);
}

/* True when a process other than us has the file open for writing. Read leases are
 * refused exactly then; where leases are not available (not our file without
 * CAP_LEASE, some network file systems) we cannot tell and say no. The lease is
 * dropped at once; a writer opening the file in between breaks it, which the
 * kernel reports with SIGIO, so watch_run ignores that signal. */
static bool writer_holds(int fd)
{
	if (fcntl(fd, F_SETLEASE, F_RDLCK) != 0)
		return errno == EAGAIN;
	(void)fcntl(fd, F_SETLEASE, F_UNLCK);
	return false;
}

static void drain_events(struct watcher *w)
{
	/* Aligned as inotify(7) asks; events are variable length. */
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(w->inofd, buf, sizeof buf);
		if (n <= 0)
			return;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->len && is_candidate(ev->name) && (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))) {
				struct pending *pd = g_hash_table_lookup(w->pending, ev->name);
				if (!pd && g_hash_table_size(w->pending) < WATCH_MAX_PENDING) {
					pd = g_new0(struct pending, 1);
					pd->size = -1;
					g_hash_table_insert(w->pending, g_strdup(ev->name), pd);
				}
				if (pd)
					pd->closed = true;
			}
			p += sizeof *ev + ev->len;
		}
	}
}

/* Updates one listed file; true when it is complete and due. */
static bool observe(struct watcher *w, const char *name, const struct stat *st, gint64 now)
{
	struct pending *pd = g_hash_table_lookup(w->pending, name);
	if (!pd) {
		if (g_hash_table_size(w->pending) >= WATCH_MAX_PENDING)
			return false;
		pd = g_new0(struct pending, 1);
		pd->size = -1;
		g_hash_table_insert(w->pending, g_strdup(name), pd);
	}
	pd->seen = w->pass;
	int64_t mtime = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	if (pd->size != st->st_size || pd->mtime_ns != mtime) {
		bool first = pd->size < 0;
		pd->size = st->st_size;
		pd->mtime_ns = mtime;
		pd->since_us = now;
		/* A change seen after the close was reported means a writer came back. */
		if (!first)
			pd->closed = false;
	}
	if (now < pd->retry_at_us)
		return false;
	return pd->closed || now - pd->since_us >= (gint64)settle_ms(w->o) * 1000;
}

static int by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists DIR; returns the names of complete files, sorted (g_ptr_array_unref). */
static GPtrArray *list_ready(struct watcher *w, char **reterr, enum qerr *ret_e)
{
	GPtrArray *ready = g_ptr_array_new_with_free_func(g_free);
	*ret_e = QERR_OK;
	int fd = dup(w->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		*ret_e = qerr_set(reterr, QERR_IO, "cannot list %s: %s", w->o->dir, g_strerror(errno));
		return ready;
	}
	rewinddir(d);
	w->pass++;
	gint64 now = g_get_monotonic_time();
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (!is_candidate(de->d_name) || fstatat(w->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (observe(w, de->d_name, &st, now))
			g_ptr_array_add(ready, g_strdup(de->d_name));
	}
	closedir(d);
	/* Forget files that went away (moved by someone else, or by us). */
	GHashTableIter it;
	gpointer key, val;
	g_hash_table_iter_init(&it, w->pending);
	while (g_hash_table_iter_next(&it, &key, &val))
		if (((struct pending *)val)->seen != w->pass)
			g_hash_table_iter_remove(&it);
	g_ptr_array_sort(ready, by_name);
	return ready;
}

/* Moves DIR/name into subfd under the same name, or name.N.pdf when taken; never replaces. */
static enum qerr move_out(struct watcher *w, const char *name, int subfd, const char *sub, char **ret_name,
                          char **reterr)
{
	size_t n = strlen(name);
	g_autofree char *stem = g_strndup(name, n - 4);
	for (int i = 0; i < 1000; i++) {
		g_autofree char *target = i ? g_strdup_printf("%s.%d%s", stem, i, name + n - 4) : g_strdup(name);
		if (strlen(target) > NAME_MAX)
			break;
		int r = renameat2(w->dirfd, name, subfd, target, RENAME_NOREPLACE);
		if (r != 0 && errno == EINVAL) { /* file system without RENAME_NOREPLACE */
			r = linkat(w->dirfd, name, subfd, target, 0);
			if (r == 0 && unlinkat(w->dirfd, name, 0) != 0)
				return qerr_set(reterr, QERR_IO, "cannot remove the moved file from the watched folder: %s",
				                g_strerror(errno));
		}
		if (r == 0) {
			/* The move must survive a power cut as the commit before it does. */
			(void)fsync(subfd);
			(void)fsync(w->dirfd);
			*ret_name = g_steal_pointer(&target);
			return QERR_OK;
		}
		if (errno != EEXIST)
			return qerr_set(reterr, QERR_IO, "cannot move a file to %s/%s: %s", w->o->dir, sub, g_strerror(errno));
	}
	return qerr_set(reterr, QERR_IO, "cannot move a file to %s/%s: no free name", w->o->dir, sub);
}

static void write_reason(struct watcher *w, const char *moved_name, const char *why)
{
	g_autofree char *ename = g_strconcat(moved_name, ".error", NULL);
	if (strlen(ename) > NAME_MAX)
		return;
	int fd = openat(w->failedfd, ename, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return;
	g_autofree char *text = g_strdup_printf("%s\n", why);
	if (write(fd, text, strlen(text)) < 0)
		log_warn("watch: cannot write the reason beside a failed file: %s", g_strerror(errno));
	close(fd);
}

static bool ensure_db(struct watcher *w, char **reterr)
{
	if (w->db)
		return true;
	if (!w->o->conninfo) {
		qerr_set(reterr, QERR_INTERNAL, "watch: no database connection");
		return false;
	}
	gint64 now = g_get_monotonic_time();
	if (now < w->reconnect_at_us)
		return false;
	g_autofree char *err = NULL;
	if (db_connect(w->o->conninfo, &w->db, &err) == QERR_OK) {
		w->backoff_ms = 0;
		return true;
	}
	w->backoff_ms = w->backoff_ms ? MIN(w->backoff_ms * 2, MAX_BACKOFF_MS) : 500;
	w->reconnect_at_us = now + (gint64)w->backoff_ms * 1000;
	log_warn("watch: database unavailable (%s), will retry in %d ms", err, w->backoff_ms);
	qerr_set(reterr, QERR_DB_UNAVAILABLE, "database unavailable: %s", err);
	return false;
}

/* After a database failure: drop an own connection so the next pass reconnects. */
static void db_failed(struct watcher *w, enum qerr e)
{
	if (w->own_db && w->db && e == QERR_DB_UNAVAILABLE) {
		db_close(w->db);
		w->db = NULL;
	}
}

static void retry_later(struct watcher *w, const char *name)
{
	struct pending *pd = g_hash_table_lookup(w->pending, name);
	if (!pd)
		return;
	pd->tries++;
	int ms = MIN(1000 << MIN(pd->tries, 5), MAX_BACKOFF_MS);
	pd->retry_at_us = g_get_monotonic_time() + (gint64)ms * 1000;
}

/* Records the refusal (audit, committed), then moves the file to failed/ with its reason. */
static enum qerr reject(struct watcher *w, const char *name, enum qerr cause, const char *why, char **reterr)
{
	struct audit_event ev = {.actor = w->o->actor ? w->o->actor : "system:watch", .action = "watch.rejected",
	                         .object_type = "file", .outcome = "failed", .client = "watch",
	                         .detail = qerr_str(cause)};
	enum qerr e = db_begin(w->db, reterr);
	if (!e)
		e = audit_append(w->db, &ev, reterr);
	if (!e)
		e = db_commit(w->db, reterr);
	if (e) {
		db_rollback(w->db);
		return e;
	}
	g_autofree char *moved = NULL;
	e = move_out(w, name, w->failedfd, FAILED, &moved, reterr);
	if (e)
		return e;
	write_reason(w, moved, why);
	w->st.failed++;
	log_warn("watch: a file was refused (%s); moved to failed/ with the reason beside it", qerr_str(cause));
	return QERR_OK;
}

static bool input_error(enum qerr e)
{
	return e == QERR_NOT_PDF || e == QERR_EMPTY || e == QERR_TOO_LARGE || e == QERR_BAD_INPUT ||
	       e == QERR_UNSUPPORTED || e == QERR_PARSE_FAILED;
}

/* Reads DIR/name whole (at most max_bytes). QERR_BUSY when it is not complete after all. */
static enum qerr read_file(struct watcher *w, const char *name, char **ret, size_t *ret_len, char **reterr)
{
	int fd = openat(w->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return qerr_set(reterr, errno == ENOENT ? QERR_NOT_FOUND : QERR_IO, "cannot open: %s", g_strerror(errno));
	struct stat st;
	enum qerr e = QERR_OK;
	char *buf = NULL;
	size_t got = 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		e = qerr_set(reterr, QERR_BAD_INPUT, "not a regular file");
	} else if (writer_holds(fd)) {
		e = qerr_set(reterr, QERR_BUSY, "still open for writing");
	} else if ((size_t)st.st_size > w->o->max_bytes) {
		e = qerr_set(reterr, QERR_TOO_LARGE, "%lld bytes exceeds the limit of %zu (limits.max_file_mb)",
		             (long long)st.st_size, w->o->max_bytes);
	} else {
		buf = g_malloc((size_t)st.st_size + 1);
		ssize_t n = 1;
		while (got <= (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size + 1 - got)) > 0)
			got += (size_t)n;
		if (n < 0)
			e = qerr_set(reterr, QERR_IO, "cannot read: %s", g_strerror(errno));
		else if (got != (size_t)st.st_size)
			e = qerr_set(reterr, QERR_BUSY, "changed while being read");
	}
	close(fd);
	if (e) {
		g_free(buf);
		return e;
	}
	*ret = buf;
	*ret_len = got;
	return QERR_OK;
}

/* Ingests one complete file. Returns an error only for what should end a --once run. */
static enum qerr ingest(struct watcher *w, const char *name, char **reterr)
{
	g_autofree char *data = NULL;
	g_autofree char *why = NULL;
	size_t len = 0;
	enum qerr e = read_file(w, name, &data, &len, &why);
	if (e == QERR_OK)
		e = store_check_pdf(data, len, w->o->max_bytes, &why);
	if (e == QERR_BUSY || e == QERR_NOT_FOUND) {
		struct pending *pd = g_hash_table_lookup(w->pending, name);
		if (pd) { /* not complete after all: watch it settle again */
			pd->closed = false;
			pd->since_us = g_get_monotonic_time();
		}
		return QERR_OK;
	}
	if (!ensure_db(w, reterr))
		return QERR_DB_UNAVAILABLE;
	if (input_error(e)) {
		e = reject(w, name, e, why, reterr);
	} else if (e == QERR_OK) {
		struct store_submitted s;
		e = store_submit(w->db, w->v, name, data, len, w->o->actor ? w->o->actor : "system:watch",
		                 w->o->max_attempts, &s, reterr);
		g_autofree char *moved = NULL;
		if (!e)
			e = move_out(w, name, w->processedfd, PROCESSED, &moved, reterr);
		if (!e && s.existing) {
			w->st.duplicates++;
			log_info("watch: a file was already stored as document %lld; moved to processed/", (long long)s.doc_id);
		} else if (!e) {
			w->st.ingested++;
			log_info("watch: stored document %lld, job %lld; file moved to processed/", (long long)s.doc_id,
			         (long long)s.job_id);
		}
	} else {
		qerr_set(reterr, e, "%s", why ? why : qerr_str(e));
	}
	if (e) {
		db_failed(w, e);
		retry_later(w, name);
		log_warn("watch: a file could not be taken (%s), will retry", *reterr ? *reterr : qerr_str(e));
	}
	return e;
}

static enum qerr open_dirs(struct watcher *w, char **reterr)
{
	enum qerr e = watch_prepare(w->o->dir, reterr);
	if (e)
		return e;
	w->dirfd = open(w->o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	w->processedfd = w->dirfd >= 0 ? openat(w->dirfd, PROCESSED, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
	w->failedfd = w->dirfd >= 0 ? openat(w->dirfd, FAILED, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (w->dirfd < 0 || w->processedfd < 0 || w->failedfd < 0)
		return qerr_set(reterr, QERR_IO, "cannot open the watched folder %s: %s", w->o->dir, g_strerror(errno));
	w->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->inofd >= 0 && inotify_add_watch(w->inofd, w->o->dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
		close(w->inofd);
		w->inofd = -1;
	}
	if (w->inofd < 0)
		log_warn("watch: no inotify for %s (%s); files are taken once they settle", w->o->dir, g_strerror(errno));
	return QERR_OK;
}

static void close_dirs(struct watcher *w)
{
	int fds[] = {w->dirfd, w->processedfd, w->failedfd, w->inofd};
	for (size_t i = 0; i < G_N_ELEMENTS(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Sleeps until an event, the next settle deadline or the next scan, whichever is first. */
static void wait_next(struct watcher *w)
{
	gint64 now = g_get_monotonic_time();
	gint64 timeout_us = (gint64)scan_ms(w->o) * 1000;
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, w->pending);
	while (g_hash_table_iter_next(&it, NULL, &val)) {
		const struct pending *pd = val;
		gint64 due = MAX(pd->since_us + (gint64)settle_ms(w->o) * 1000, pd->retry_at_us) - now;
		timeout_us = MIN(timeout_us, MAX(due, 10000));
	}
	struct pollfd p = {.fd = w->inofd, .events = POLLIN};
	(void)poll(w->inofd >= 0 ? &p : NULL, w->inofd >= 0 ? 1 : 0, (int)(timeout_us / 1000) + 1);
}

enum qerr watch_run(struct db *db, const struct vault *v, const struct watch_options *o, volatile int *stop,
                    struct watch_stats *ret, char **reterr)
{
	struct watcher w = {.o = o, .v = v, .db = o->conninfo ? NULL : db, .own_db = o->conninfo != NULL,
	                    .dirfd = -1, .processedfd = -1, .failedfd = -1, .inofd = -1,
	                    .pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free)};
	/* A lease break (see writer_holds) must not end the process; nothing else here uses SIGIO. */
	struct sigaction old_io;
	if (sigaction(SIGIO, NULL, &old_io) == 0 && old_io.sa_handler == SIG_DFL) {
		struct sigaction ign = {.sa_handler = SIG_IGN};
		sigaction(SIGIO, &ign, NULL);
	}
	enum qerr e = open_dirs(&w, reterr);
	if (!e)
		log_info("watch: watching %s (settle %d ms)", o->dir, settle_ms(o));
	while (!e && !*stop) {
		if (w.inofd >= 0)
			drain_events(&w);
		g_autoptr(GPtrArray) ready = list_ready(&w, reterr, &e);
		for (guint i = 0; !e && i < ready->len && !*stop; i++) {
			g_autofree char *err = NULL;
			enum qerr fe = ingest(&w, g_ptr_array_index(ready, i), &err);
			if (fe && o->once) /* a one-shot run reports what it could not do */
				e = qerr_set(reterr, fe, "%s", err ? err : qerr_str(fe));
		}
		if (e || (o->once && g_hash_table_size(w.pending) == 0))
			break;
		wait_next(&w);
	}
	close_dirs(&w);
	g_hash_table_unref(w.pending);
	if (w.own_db)
		db_close(w.db);
	if (ret)
		*ret = w.st;
	return e;
}
