/* backup: writing, checking and unpacking backup files; running pg_dump/pg_restore. */
#include "appliance/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/progress.h"
#include "core/json.h"

#define COPY_CHUNK (256 * 1024)

static struct progress *copy_progress; /* the command's one progress line, or NULL */

void backup_progress(struct progress *p) { copy_progress = p; }

/* Copies len bytes (or all, with len == UINT64_MAX) from in to out, hashing them. */
static enum qerr copy_hash(int in, int out, uint64_t len, GChecksum *sum, uint64_t *ret_copied, char **reterr)
{
	g_autofree char *buf = g_malloc(COPY_CHUNK);
	uint64_t done = 0;
	while (done < len) {
		size_t want = len - done < COPY_CHUNK ? (size_t)(len - done) : COPY_CHUNK;
		ssize_t n = read(in, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qerr_set(reterr, QERR_IO, "read failed: %s", g_strerror(errno));
		if (n == 0)
			break;
		g_checksum_update(sum, (const guchar *)buf, n);
		for (ssize_t w = 0; out >= 0 && w < n;) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));
			if (k < 0 && errno != EINTR)
				return qerr_set(reterr, QERR_IO, "write failed: %s", g_strerror(errno));
			w += k > 0 ? k : 0;
		}
		done += (uint64_t)n;
		if (copy_progress)
			progress_update(copy_progress, copy_progress->done + (uint64_t)n);
	}
	*ret_copied = done;
	return QERR_OK;
}

static char *header_json(const struct backup_info *info)
{
	struct json *root = json_new_object();
	json_add_number(root, "format", 1);
	json_add_string(root, "quire_version", info->quire_version);
	json_add_string(root, "created_at", info->created_at);
	json_add_number(root, "schema_version", info->schema_version);
	json_add_number(root, "documents", (double)info->documents);
	struct json *roles = json_add_item(root, "roles", json_new_array());
	for (int i = 0; i < info->n_roles; i++)
		json_append(roles, json_string(info->roles[i]));
	struct json *secs = json_add_item(root, "sections", json_new_array());
	for (int i = 0; i < info->n_sections; i++) {
		struct json *s = json_append(secs, json_new_object());
		json_add_string(s, "name", info->sections[i].name);
		json_add_number(s, "bytes", (double)info->sections[i].bytes);
		json_add_string(s, "sha256", info->sections[i].sha256);
	}
	char *text = json_format(root, false);
	json_free(root);
	return text;
}

/* Hashes each section file to fill in lengths and checksums. */
static enum qerr measure(struct backup_info *info, const char *const *files, char **reterr)
{
	for (int i = 0; i < info->n_sections; i++) {
		int fd = open(files[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return qerr_set(reterr, QERR_IO, "cannot open %s: %s", files[i], g_strerror(errno));
		g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
		enum qerr e = copy_hash(fd, -1, UINT64_MAX, sum, &info->sections[i].bytes, reterr);
		close(fd);
		if (e)
			return e;
		g_strlcpy(info->sections[i].sha256, g_checksum_get_string(sum), sizeof info->sections[i].sha256);
	}
	return QERR_OK;
}

static enum qerr write_all(int fd, const char *text, char **reterr)
{
	size_t len = strlen(text);
	for (size_t w = 0; w < len;) {
		ssize_t k = write(fd, text + w, len - w);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return qerr_set(reterr, QERR_IO, "write failed: %s", g_strerror(errno));
		w += (size_t)k;
	}
	return QERR_OK;
}

enum qerr backup_write(const char *path, struct backup_info *info, const char *const *files, char **reterr)
{
	if (g_file_test(path, G_FILE_TEST_EXISTS))
		return qerr_set(reterr, QERR_CONFLICT, "%s already exists; choose a new file name", path);
	enum qerr e = measure(info, files, reterr);
	if (e)
		return e;
	g_autofree char *header = header_json(info);
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *tmp = g_build_filename(dir, ".quire-backup-XXXXXX", NULL);
	int fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return qerr_set(reterr, QERR_IO, "cannot create a file in %s: %s", dir, g_strerror(errno));
	e = write_all(fd, BACKUP_MAGIC, reterr);
	if (!e)
		e = write_all(fd, header, reterr);
	if (!e)
		e = write_all(fd, "\n", reterr);
	for (int i = 0; !e && i < info->n_sections; i++) {
		int in = open(files[i], O_RDONLY | O_CLOEXEC);
		if (in < 0) {
			e = qerr_set(reterr, QERR_IO, "cannot open %s: %s", files[i], g_strerror(errno));
			break;
		}
		g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
		uint64_t n = 0;
		e = copy_hash(in, fd, info->sections[i].bytes, sum, &n, reterr);
		close(in);
		if (!e && (n != info->sections[i].bytes || strcmp(g_checksum_get_string(sum), info->sections[i].sha256)))
			e = qerr_set(reterr, QERR_IO, "%s changed while the backup was written", files[i]);
	}
	if (!e && fsync(fd) != 0)
		e = qerr_set(reterr, QERR_IO, "cannot sync %s: %s", tmp, g_strerror(errno));
	close(fd);
	/* link() never replaces: a file that appeared meanwhile is kept. */
	if (!e && link(tmp, path) != 0)
		e = qerr_set(reterr, errno == EEXIST ? QERR_CONFLICT : QERR_IO, "cannot create %s: %s", path,
		             g_strerror(errno));
	g_unlink(tmp);
	return e;
}

static enum qerr parse_sections(const struct json *secs, struct backup_info *ret, uint64_t offset, char **reterr)
{
	size_t n = json_array_size(secs);
	if (n > BACKUP_MAX_SECTIONS)
		return qerr_set(reterr, QERR_BAD_INPUT, "backup header lists too many sections");
	for (size_t i = 0; i < n; i++) {
		const struct json *s = json_array_at(secs, i);
		const char *name = json_get_string(s, "name");
		const char *sha = json_get_string(s, "sha256");
		double bytes = -1;
		if (!name || !sha || strlen(name) >= sizeof ret->sections[0].name || strlen(sha) != 64 ||
		    !json_get_number(s, "bytes", &bytes) || bytes < 0 || bytes > 9.0e15)
			return qerr_set(reterr, QERR_BAD_INPUT, "backup header: section %zu is malformed", i + 1);
		struct backup_section *d = &ret->sections[ret->n_sections++];
		g_strlcpy(d->name, name, sizeof d->name);
		g_strlcpy(d->sha256, sha, sizeof d->sha256);
		d->bytes = (uint64_t)bytes;
		d->offset = offset;
		offset += d->bytes;
	}
	return QERR_OK;
}

static enum qerr parse_header(const char *text, size_t len, uint64_t offset, struct backup_info *ret, char **reterr)
{
	struct json *h = NULL;
	g_autofree char *err = NULL;
	if (json_parse(text, len, &h, &err))
		return qerr_set(reterr, QERR_BAD_INPUT, "backup header is not valid JSON: %s", err);
	double format = 0, schema = -1, docs = -1;
	const char *ver = json_get_string(h, "quire_version");
	const char *at = json_get_string(h, "created_at");
	const struct json *roles = json_get(h, "roles");
	const struct json *secs = json_get(h, "sections");
	enum qerr e = QERR_OK;
	if (!json_get_number(h, "format", &format) || format != 1)
		e = qerr_set(reterr, QERR_UNSUPPORTED, "backup format is not 1: made by a newer quire?");
	else if (!ver || !at || !roles || !secs || !json_get_number(h, "schema_version", &schema) ||
	         !json_get_number(h, "documents", &docs) || schema < 0 || schema > 1e6 || docs < 0)
		e = qerr_set(reterr, QERR_BAD_INPUT, "backup header lacks a field or has a bad value");
	else if (json_array_size(roles) > BACKUP_MAX_ROLES)
		e = qerr_set(reterr, QERR_BAD_INPUT, "backup header lists too many roles");
	for (size_t i = 0; !e && i < json_array_size(roles); i++) {
		const char *r = json_string_value(json_array_at(roles, i));
		if (!r || !r[0] || strlen(r) >= sizeof ret->roles[0])
			e = qerr_set(reterr, QERR_BAD_INPUT, "backup header: bad role name");
		else
			g_strlcpy(ret->roles[ret->n_roles++], r, sizeof ret->roles[0]);
	}
	if (!e) {
		g_strlcpy(ret->quire_version, ver, sizeof ret->quire_version);
		g_strlcpy(ret->created_at, at, sizeof ret->created_at);
		ret->schema_version = (int)schema;
		ret->documents = (int64_t)docs;
		e = parse_sections(secs, ret, offset, reterr);
	}
	json_free(h);
	return e;
}

static enum qerr read_header(int fd, struct backup_info *ret, char **reterr)
{
	g_autofree char *buf = g_malloc(BACKUP_MAX_HEADER + sizeof BACKUP_MAGIC);
	ssize_t n = pread(fd, buf, BACKUP_MAX_HEADER + sizeof BACKUP_MAGIC - 1, 0);
	size_t ml = strlen(BACKUP_MAGIC);
	if (n < (ssize_t)ml || memcmp(buf, BACKUP_MAGIC, ml) != 0)
		return qerr_set(reterr, QERR_BAD_INPUT, "not a quire backup file");
	const char *start = buf + ml;
	const char *nl = memchr(start, '\n', (size_t)n - ml);
	if (!nl)
		return qerr_set(reterr, QERR_BAD_INPUT, "backup header is missing or longer than %d bytes",
		                BACKUP_MAX_HEADER);
	return parse_header(start, (size_t)(nl - start), (uint64_t)(nl + 1 - buf), ret, reterr);
}

enum qerr backup_read(const char *path, struct backup_info *ret, char **reterr)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qerr_set(reterr, errno == ENOENT ? QERR_NOT_FOUND : QERR_IO, "%s: %s", path, g_strerror(errno));
	struct backup_info info;
	memset(&info, 0, sizeof info);
	struct stat st;
	enum qerr e = fstat(fd, &st) == 0 ? read_header(fd, &info, reterr)
	                                  : qerr_set(reterr, QERR_IO, "%s: %s", path, g_strerror(errno));
	uint64_t end = info.n_sections ? info.sections[info.n_sections - 1].offset +
	                                     info.sections[info.n_sections - 1].bytes
	                               : 0;
	if (!e && (info.n_sections == 0 || end != (uint64_t)st.st_size))
		e = qerr_set(reterr, QERR_BAD_INPUT, "%s is truncated or has extra bytes (%lld bytes, header says %llu)",
		             path, (long long)st.st_size, (unsigned long long)end);
	for (int i = 0; !e && i < info.n_sections; i++) {
		const struct backup_section *s = &info.sections[i];
		g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
		uint64_t got = 0;
		if (lseek(fd, (off_t)s->offset, SEEK_SET) < 0)
			e = qerr_set(reterr, QERR_IO, "%s: %s", path, g_strerror(errno));
		if (!e)
			e = copy_hash(fd, -1, s->bytes, sum, &got, reterr);
		if (!e && (got != s->bytes || strcmp(g_checksum_get_string(sum), s->sha256) != 0))
			e = qerr_set(reterr, QERR_CRYPTO, "%s: section \"%s\" does not match its checksum (damaged file)", path,
			             s->name);
	}
	close(fd);
	if (!e)
		*ret = info;
	return e;
}

const struct backup_section *backup_find(const struct backup_info *info, const char *name)
{
	for (int i = 0; i < info->n_sections; i++)
		if (strcmp(info->sections[i].name, name) == 0)
			return &info->sections[i];
	return NULL;
}

enum qerr backup_extract(const char *path, const struct backup_section *s, const char *dest, char **reterr)
{
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return qerr_set(reterr, QERR_IO, "%s: %s", path, g_strerror(errno));
	int out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	enum qerr e = QERR_OK;
	if (out < 0)
		e = qerr_set(reterr, QERR_IO, "cannot create %s: %s", dest, g_strerror(errno));
	else if (lseek(in, (off_t)s->offset, SEEK_SET) < 0)
		e = qerr_set(reterr, QERR_IO, "%s: %s", path, g_strerror(errno));
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	uint64_t got = 0;
	if (!e)
		e = copy_hash(in, out, s->bytes, sum, &got, reterr);
	if (!e && (got != s->bytes || strcmp(g_checksum_get_string(sum), s->sha256) != 0))
		e = qerr_set(reterr, QERR_CRYPTO, "%s: section \"%s\" changed while it was read", path, s->name);
	if (!e && fsync(out) != 0)
		e = qerr_set(reterr, QERR_IO, "cannot sync %s: %s", dest, g_strerror(errno));
	if (out >= 0)
		close(out);
	close(in);
	if (e && out >= 0)
		g_unlink(dest);
	return e;
}

char *backup_pg_tool(const char *name)
{
	g_autoptr(GDir) dir = g_dir_open("/usr/lib/postgresql", 0, NULL);
	char *best = NULL;
	long best_ver = -1;
	const char *entry;
	while (dir && (entry = g_dir_read_name(dir))) {
		long ver = strtol(entry, NULL, 10);
		g_autofree char *p = g_build_filename("/usr/lib/postgresql", entry, "bin", name, NULL);
		if (ver > best_ver && g_file_test(p, G_FILE_TEST_IS_EXECUTABLE)) {
			g_free(best);
			best = g_steal_pointer(&p);
			best_ver = ver;
		}
	}
	return best ? best : g_find_program_in_path(name);
}

enum qerr backup_run(const char *const *argv, char **reterr)
{
	g_autoptr(GError) gerr = NULL;
	g_autoptr(GSubprocess) p =
		g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &gerr);
	g_autofree char *errtext = NULL;
	if (!p || !g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &errtext, &gerr))
		return qerr_set(reterr, QERR_DEPENDENCY, "cannot run %s: %s", argv[0], gerr->message);
	if (g_subprocess_get_if_exited(p) && g_subprocess_get_exit_status(p) == 0)
		return QERR_OK;
	/* The last lines say what went wrong; keep the message short. */
	g_autofree char *tail = g_strdup(errtext ? g_strstrip(errtext) : "");
	size_t len = strlen(tail);
	return qerr_set(reterr, QERR_DB, "%s failed: %s", argv[0], len > 600 ? tail + len - 600 : tail);
}
