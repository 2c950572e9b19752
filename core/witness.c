/* witness: the signed-head file outside the database, its batched writer and its reader.
 * Invariants: witness_prepare() returns OK only after its prepared line is in the file (written,
 * so in the kernel's hands: a killed process cannot lose it); witness_record() only after a
 * committed line that covers its range is in the file (and synced when asked); a failed write
 * fails every commit waiting on that batch. */
#include "core/witness.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <syslog.h>
#include <unistd.h>

#define MAGIC "quire-witness-v1"
#define MAX_FILE_BYTES ((goffset)16 << 30)

struct witness {
	char *path;
	const struct vault *vault;
	bool to_syslog;
	GMutex lock;
	GCond done;
	/* the batch being gathered: ranges of committed entries and the newest head among them */
	GArray *ranges; /* int64_t pairs */
	struct witness_head newest;
	uint64_t queued, written;        /* tickets: commits queued, commits whose batch is finished */
	uint64_t failed_from, failed_to; /* tickets of the last batch that failed */
	char *failure;
	bool writing;
	bool sync; /* the batch being gathered must be fdatasync()ed */
};

struct witness *witness_new(const char *path, const struct vault *v, bool to_syslog)
{
	struct witness *w = g_new0(struct witness, 1);
	w->path = g_strdup(path);
	w->vault = v;
	w->to_syslog = to_syslog;
	g_mutex_init(&w->lock);
	g_cond_init(&w->done);
	w->ranges = g_array_new(FALSE, FALSE, sizeof(struct witness_range));
	if (to_syslog)
		openlog("quire", LOG_PID, LOG_AUTHPRIV);
	return w;
}

void witness_free(struct witness *w)
{
	if (!w)
		return;
	g_array_free(w->ranges, TRUE);
	g_mutex_clear(&w->lock);
	g_cond_clear(&w->done);
	g_free(w->failure);
	g_free(w->path);
	g_free(w);
}

const char *witness_path(const struct witness *w)
{
	return w->path;
}

static char *line_body(const struct witness_head *h)
{
	char hex[2 * WITNESS_HASH_BYTES + 1];
	sodium_bin2hex(hex, sizeof hex, h->hash, WITNESS_HASH_BYTES);
	GString *s = g_string_new(NULL);
	g_string_printf(s, MAGIC " seq=%lld id=%lld hash=%s covers=", (long long)h->seq, (long long)h->id, hex);
	for (int i = 0; i < h->n_ranges; i++)
		g_string_append_printf(s, "%s%lld-%lld", i ? "," : "", (long long)h->ranges[i].first,
		                       (long long)h->ranges[i].last);
	if (h->prepared || h->withdrawn)
		g_string_append(s, h->withdrawn ? " state=withdrawn" : " state=prepared");
	if (h->ring > 0)
		g_string_append_printf(s, " ring=%lld", (long long)h->ring);
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *at = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
	g_string_append_printf(s, " at=%s host=%s pid=%ld", at, g_get_host_name(), (long)getpid());
	return g_string_free(s, FALSE);
}

char *witness_line_format(const struct witness_head *h, const struct vault *v)
{
	g_autofree char *body = line_body(h);
	uint8_t sig[VAULT_SIG_BYTES];
	vault_sign(v, body, strlen(body), sig);
	char hex[2 * VAULT_SIG_BYTES + 1];
	sodium_bin2hex(hex, sizeof hex, sig, VAULT_SIG_BYTES);
	return g_strdup_printf("%s sig=%s\n", body, hex);
}

/* Appends text to the file under its lock (other processes of the host append too), and
 * fdatasync()s it when sync. */
static enum qerr append_lines(const struct witness *w, const GString *text, bool sync, char **reterr)
{
	enum qerr e = QERR_OK;
	int fd = open(w->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		e = qerr_set(reterr, QERR_IO, "cannot open the audit witness %s: %s", w->path, g_strerror(errno));
	if (!e && flock(fd, LOCK_EX) != 0)
		e = qerr_set(reterr, QERR_IO, "cannot lock the audit witness %s: %s", w->path, g_strerror(errno));
	if (!e && (write(fd, text->str, text->len) != (ssize_t)text->len || (sync && fdatasync(fd) != 0)))
		e = qerr_set(reterr, QERR_IO, "cannot write the audit witness %s: %s", w->path, g_strerror(errno));
	if (fd >= 0)
		close(fd);
	return e;
}

/* Signs h and adds its line to out (and to syslog). */
static void add_line(const struct witness *w, struct witness_head *h, GString *out)
{
	h->ring = vault_ring_generation(w->vault);
	g_autofree char *line = witness_line_format(h, w->vault);
	g_string_append(out, line);
	if (w->to_syslog)
		syslog(LOG_AUTHPRIV | LOG_NOTICE, "%.*s", (int)strlen(line) - 1, line);
}

/* Writes the lines of one batch: its ranges, WITNESS_MAX_RANGES to a line, each line with the batch's head. */
static enum qerr write_batch(struct witness *w, const struct witness_head *head, const GArray *ranges, bool sync,
                             char **reterr)
{
	GString *out = g_string_new(NULL);
	for (guint i = 0; i < ranges->len; i += WITNESS_MAX_RANGES) {
		struct witness_head h = *head;
		h.n_ranges = 0;
		for (guint j = i; j < ranges->len && h.n_ranges < WITNESS_MAX_RANGES; j++) {
			h.ranges[h.n_ranges++] = g_array_index(ranges, struct witness_range, j);
		}
		add_line(w, &h, out);
	}
	enum qerr e = append_lines(w, out, sync, reterr);
	g_string_free(out, TRUE);
	return e;
}

/* Writes one line of the head (from..to, id, hash), prepared or withdrawn; a withdrawn one is
 * synced too. */
static enum qerr write_one(struct witness *w, int64_t from, int64_t to, int64_t id,
                           const uint8_t hash[WITNESS_HASH_BYTES], bool withdrawn, char **reterr)
{
	struct witness_head h = {.seq = to, .id = id, .n_ranges = 1, .ranges = {{from, to}}};
	h.prepared = !withdrawn;
	h.withdrawn = withdrawn;
	memcpy(h.hash, hash, WITNESS_HASH_BYTES);
	GString *out = g_string_new(NULL);
	add_line(w, &h, out);
	enum qerr e = append_lines(w, out, withdrawn, reterr);
	g_string_free(out, TRUE);
	return e;
}

enum qerr witness_prepare(struct witness *w, int64_t from, int64_t to, int64_t id,
                          const uint8_t hash[WITNESS_HASH_BYTES], char **reterr)
{
	return write_one(w, from, to, id, hash, false, reterr);
}

enum qerr witness_withdraw(struct witness *w, int64_t from, int64_t to, int64_t id,
                           const uint8_t hash[WITNESS_HASH_BYTES], char **reterr)
{
	return write_one(w, from, to, id, hash, true, reterr);
}

/* Adds a committed range to the batch being gathered; the caller holds the lock. */
static void queue_range(struct witness *w, int64_t from, int64_t to, int64_t id, const uint8_t hash[WITNESS_HASH_BYTES])
{
	guint n = w->ranges->len;
	struct witness_range *last = n ? &g_array_index(w->ranges, struct witness_range, n - 1) : NULL;
	if (last && last->last + 1 == from) {
		last->last = to;
	} else {
		struct witness_range r = {from, to};
		g_array_append_val(w->ranges, r);
	}
	if (to > w->newest.seq) {
		w->newest.seq = to;
		w->newest.id = id;
		memcpy(w->newest.hash, hash, WITNESS_HASH_BYTES);
	}
}

static int by_start(gconstpointer a, gconstpointer b)
{
	int64_t x = ((const struct witness_range *)a)->first, y = ((const struct witness_range *)b)->first;
	return x < y ? -1 : x > y;
}

/* Writes the batch gathered so far (the caller holds the lock, and it is released meanwhile). */
static void lead_batch(struct witness *w)
{
	w->writing = true;
	GArray *ranges = w->ranges;
	struct witness_head head = w->newest;
	bool sync = w->sync;
	uint64_t from = w->written + 1, to = w->queued;
	w->ranges = g_array_new(FALSE, FALSE, sizeof(struct witness_range));
	memset(&w->newest, 0, sizeof w->newest);
	w->sync = false;
	g_mutex_unlock(&w->lock);
	g_array_sort(ranges, by_start);
	char *err = NULL;
	enum qerr e = write_batch(w, &head, ranges, sync, &err);
	g_array_free(ranges, TRUE);
	g_mutex_lock(&w->lock);
	if (e) {
		w->failed_from = from;
		w->failed_to = to;
		g_free(w->failure);
		w->failure = err;
	}
	w->written = to;
	w->writing = false;
	g_cond_broadcast(&w->done);
}

enum qerr witness_record(struct witness *w, int64_t from, int64_t to, int64_t id,
                         const uint8_t hash[WITNESS_HASH_BYTES], bool sync, char **reterr)
{
	g_mutex_lock(&w->lock);
	queue_range(w, from, to, id, hash);
	w->sync = w->sync || sync;
	uint64_t mine = ++w->queued;
	while (w->written < mine) {
		if (w->writing)
			g_cond_wait(&w->done, &w->lock);
		else
			lead_batch(w);
	}
	enum qerr e = QERR_OK;
	if (mine >= w->failed_from && mine <= w->failed_to)
		e = qerr_set(reterr, QERR_IO, "the change was committed but its audit witness line was not written: %s",
		             w->failure ? w->failure : "unknown error");
	g_mutex_unlock(&w->lock);
	return e;
}

static bool hex_field(const char *text, uint8_t *out, size_t n)
{
	size_t got = 0;
	return text && strlen(text) == 2 * n && sodium_hex2bin(out, n, text, 2 * n, NULL, &got, NULL) == 0 && got == n;
}

static bool int_field(const char *text, int64_t *out)
{
	char *end = NULL;
	long long v = text && g_ascii_isdigit(*text) ? g_ascii_strtoll(text, &end, 10) : -1;
	if (v < 0 || !end || *end)
		return false;
	*out = v;
	return true;
}

static bool parse_ranges(const char *text, struct witness_head *h)
{
	g_auto(GStrv) parts = g_strsplit(text ? text : "", ",", WITNESS_MAX_RANGES + 1);
	h->n_ranges = 0;
	for (int i = 0; parts[i]; i++) {
		if (i >= WITNESS_MAX_RANGES)
			return false;
		g_auto(GStrv) ends = g_strsplit(parts[i], "-", 3);
		int64_t a = 0, b = 0;
		if (g_strv_length(ends) != 2 || !int_field(ends[0], &a) || !int_field(ends[1], &b) || a < 1 || b < a ||
		    b > h->seq)
			return false;
		h->ranges[i] = (struct witness_range){a, b};
		h->n_ranges++;
	}
	return h->n_ranges > 0;
}

/* One "state=" word: prepared or withdrawn, at most once. ok: no bad one so far. */
static bool parse_state(const char *value, bool ok, struct witness_head *h)
{
	if (!ok || h->prepared || h->withdrawn)
		return false;
	h->prepared = strcmp(value, "prepared") == 0;
	h->withdrawn = strcmp(value, "withdrawn") == 0;
	return h->prepared || h->withdrawn;
}

enum qerr witness_line_parse(const char *line, const uint8_t pk[VAULT_PK_BYTES], struct witness_head *ret,
                             char **reterr)
{
	const char *sig_at = strlen(line) < WITNESS_MAX_LINE ? strstr(line, " sig=") : NULL;
	uint8_t sig[VAULT_SIG_BYTES];
	if (!g_str_has_prefix(line, MAGIC " ") || !sig_at || !hex_field(sig_at + 5, sig, sizeof sig))
		return qerr_set(reterr, QERR_CRYPTO, "not a signed witness line");
	if (!vault_sign_verify(pk, line, (size_t)(sig_at - line), sig))
		return qerr_set(reterr, QERR_CRYPTO,
		                "its signature is not valid for this vault's key (altered or forged)");
	g_autofree char *body = g_strndup(line, (size_t)(sig_at - line));
	g_auto(GStrv) words = g_strsplit(body, " ", 16);
	struct witness_head h = {0};
	const char *covers = NULL;
	bool seq = false, id = false, hash = false, ring = true, state = true;
	for (int i = 1; words[i]; i++) {
		if (g_str_has_prefix(words[i], "seq="))
			seq = int_field(words[i] + 4, &h.seq);
		else if (g_str_has_prefix(words[i], "id="))
			id = int_field(words[i] + 3, &h.id);
		else if (g_str_has_prefix(words[i], "hash="))
			hash = hex_field(words[i] + 5, h.hash, WITNESS_HASH_BYTES);
		else if (g_str_has_prefix(words[i], "covers="))
			covers = words[i] + 7;
		else if (g_str_has_prefix(words[i], "state="))
			state = parse_state(words[i] + 6, state, &h);
		else if (g_str_has_prefix(words[i], "ring="))
			ring = int_field(words[i] + 5, &h.ring);
	}
	if (!seq || !id || !hash || !ring || !state || h.seq < 1 || !parse_ranges(covers, &h))
		return qerr_set(reterr, QERR_CRYPTO, "a signed line without a valid head");
	*ret = h;
	return QERR_OK;
}

enum qerr witness_read(const char *path, const uint8_t pk[VAULT_PK_BYTES], struct witness_head **ret, size_t *ret_n,
                       char **reterr)
{
	g_autoptr(GMappedFile) map = NULL;
	g_autoptr(GError) gerr = NULL;
	map = g_mapped_file_new(path, FALSE, &gerr);
	if (!map)
		return qerr_set(reterr,
		                g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? QERR_NOT_FOUND : QERR_IO,
		                "cannot read the audit witness: %s", gerr->message);
	const char *p = g_mapped_file_get_contents(map), *end = p + g_mapped_file_get_length(map);
	if (g_mapped_file_get_length(map) > (gsize)MAX_FILE_BYTES)
		return qerr_set(reterr, QERR_TOO_LARGE, "the audit witness %s is larger than 16 GiB", path);
	GArray *heads = g_array_new(FALSE, FALSE, sizeof(struct witness_head));
	enum qerr e = QERR_OK;
	for (size_t no = 1; p && p < end && !e; no++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break; /* the last line, cut short while it was written */
		struct witness_head h;
		g_autofree char *line = g_strndup(p, (size_t)(nl - p));
		g_autofree char *why = NULL;
		if (heads->len >= WITNESS_MAX_HEADS)
			e = qerr_set(reterr, QERR_TOO_LARGE, "the audit witness %s has more than %d lines", path,
			             WITNESS_MAX_HEADS);
		else if (strlen(line) != (size_t)(nl - p) || witness_line_parse(line, pk, &h, &why))
			e = qerr_set(reterr, QERR_CRYPTO,
			             "the audit witness %s line %zu is not a valid signed head: %s", path, no,
			             why ? why : "it holds a NUL byte");
		else
			g_array_append_val(heads, h);
		p = nl + 1;
	}
	if (e) {
		g_array_free(heads, TRUE);
		return e;
	}
	*ret_n = heads->len;
	*ret = (struct witness_head *)(void *)g_array_free(heads, FALSE);
	return QERR_OK;
}
