/* cmd_docs: init, migrate, submit, show, start, stop. */
#include "appliance/commands.h"

#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/config.h"
#include "appliance/pgembed.h"
#include "appliance/progress.h"
#include "core/audit.h"
#include "core/db.h"
#include "core/json.h"
#include "core/log.h"
#include "core/vault.h"
#include "extractors/doctype.h"
#include "extractors/extract.h"
#include "extractors/modelfields.h"
#include "extractors/pdftext.h"
#include "extractors/sandbox.h"
#include "pipeline/store.h"
#include "pipeline/worker.h"
#include "web/tlscert.h"

/* The files config_tls() names: made self-signed when there are none (init --tls). */
static enum qerr init_tls(const struct config *cfg, const char *const *names, char **reterr)
{
	g_autofree char *dir = config_tls_dir(cfg);
	bool configured = cfg->web_tls_cert[0] || cfg->web_tls_key[0];
	if (configured && !(cfg->web_tls_cert[0] && cfg->web_tls_key[0]))
		return qerr_set(reterr, QERR_CONFIG, "web.tls_cert and web.tls_key must be set together");
	g_autofree char *cert = configured ? g_strdup(cfg->web_tls_cert) : g_build_filename(dir, "cert.pem", NULL);
	g_autofree char *key = configured ? g_strdup(cfg->web_tls_key) : g_build_filename(dir, "key.pem", NULL);
	bool have_cert = g_file_test(cert, G_FILE_TEST_EXISTS), have_key = g_file_test(key, G_FILE_TEST_EXISTS);
	if (have_cert && have_key) {
		printf("TLS certificate %s kept (delete it and %s to make a new one)\n", cert, key);
		return QERR_OK;
	}
	if (have_cert || have_key)
		return qerr_set(reterr, QERR_CONFLICT, "%s exists without %s: restore it, or delete it to make both anew",
		                have_cert ? cert : key, have_cert ? key : cert);
	if (!configured && g_mkdir_with_parents(dir, 0700) != 0)
		return qerr_set(reterr, QERR_IO, "cannot create %s: %s", dir, g_strerror(errno));
	if (!configured)
		chmod(dir, 0700);
	struct tlscert_options o = {.cert_path = cert, .key_path = key, .names = names};
	enum qerr e = tlscert_create(&o, reterr);
	if (e)
		return e;
	printf("created a self-signed TLS certificate %s and its key %s (mode 0600): `quire serve` speaks HTTPS;\n"
	       "clients trust that certificate file (curl --cacert %s, or the browser or system trust store)\n",
	       cert, key, cert);
	return QERR_OK;
}

int cmd_init(int argc, char **argv, struct config *cfg)
{
	gboolean tls = FALSE;
	g_auto(GStrv) names = NULL;
	GOptionEntry entries[] = {
		{"tls", 0, 0, G_OPTION_ARG_NONE, &tls,
		 "Make a self-signed certificate and key for HTTPS (in <data_dir>/tls unless web.tls_cert and web.tls_key "
		 "name other files), unless they exist",
		 NULL},
		{"tls-name", 0, 0, G_OPTION_ARG_STRING_ARRAY, &names,
		 "A host name or IP address clients use, besides this host's name, localhost, 127.0.0.1 and ::1 (repeatable)",
		 "NAME"},
		{NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "", "Create the data directory, the key file and the database.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	if (names && !tls)
		return cmd_fail("init", "--tls-name goes with --tls");
	g_autofree char *err = NULL;
	g_autofree char *key = config_key_path(cfg);
	g_autofree char *keydir = g_path_get_dirname(key);
	if (g_mkdir_with_parents(cfg->data_dir, 0700) != 0 || g_mkdir_with_parents(keydir, 0700) != 0)
		return cmd_fail("init", g_strdup_printf("cannot create %s: %s", keydir, g_strerror(errno)));
	chmod(keydir, 0700);
	if (keys_init(cfg, &err))
		return cmd_fail("init", err);
	struct app app;
	if (app_open(cfg, APP_MIGRATE | APP_VAULT, &app, &err))
		return cmd_fail("init", err);
	int n = 0;
	app_migrations(&n);
	printf("database ready (%s, schema version %d)\n", cfg->db_url[0] ? "database.url" : "embedded", n);
	app_close(&app);
	if (tls && init_tls(cfg, (const char *const *)names, &err))
		return cmd_fail("init", err);
	return 0;
}

int cmd_migrate(int argc, char **argv, struct config *cfg)
{
	if (cmd_parse(&argc, &argv, "", "Apply pending database migrations, each once, in order.", NULL))
		return 2;
	g_autofree char *err = NULL;
	struct app app;
	if (app_open(cfg, 0, &app, &err) == QERR_OK) {
		printf("schema is up to date\n");
		app_close(&app);
		return 0;
	}
	g_clear_pointer(&err, g_free);
	if (app_open(cfg, APP_MIGRATE, &app, &err))
		return cmd_fail("migrate", err);
	printf("migrations applied\n");
	app_close(&app);
	return 0;
}

#define SUBMIT_MAX_FILES 100000

static gint by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files to submit: each argument, or for a folder the PDFs in it (not below), by name. */
static enum qerr expand(int n, char **args, GPtrArray **ret, char **reterr)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	for (int i = 0; i < n; i++) {
		if (!g_file_test(args[i], G_FILE_TEST_IS_DIR)) {
			g_ptr_array_add(out, g_strdup(args[i]));
			continue;
		}
		g_autoptr(GError) gerr = NULL;
		g_autoptr(GDir) d = g_dir_open(args[i], 0, &gerr);
		if (!d) {
			g_ptr_array_free(out, TRUE);
			return qerr_set(reterr, QERR_IO, "%s", gerr->message);
		}
		guint first = out->len;
		for (const char *name; (name = g_dir_read_name(d)) && out->len <= SUBMIT_MAX_FILES;) {
			g_autofree char *lower = g_ascii_strdown(name, -1);
			g_autofree char *path = g_build_filename(args[i], name, NULL);
			if (g_str_has_suffix(lower, ".pdf") && g_file_test(path, G_FILE_TEST_IS_REGULAR))
				g_ptr_array_add(out, g_steal_pointer(&path));
		}
		if (out->len == first) {
			g_ptr_array_free(out, TRUE);
			return qerr_set(reterr, QERR_NOT_FOUND, "%s holds no PDF file", args[i]);
		}
		qsort(out->pdata + first, out->len - first, sizeof(gpointer), by_name);
	}
	if (out->len > SUBMIT_MAX_FILES) {
		g_ptr_array_free(out, TRUE);
		return qerr_set(reterr, QERR_TOO_LARGE, "more than %d files at once", SUBMIT_MAX_FILES);
	}
	*ret = out;
	return QERR_OK;
}

/* The first line of a file ("-": standard input), its line end dropped, in guarded memory. A
 * password never travels on the command line, where ps would show it. */
static enum qerr read_password_file(const char *path, struct vault_buf *ret, char **reterr)
{
	bool std_in = strcmp(path, "-") == 0;
	const char *name = std_in ? "standard input" : path;
	FILE *f = std_in ? stdin : fopen(path, "re");
	if (!f)
		return qerr_set(reterr, QERR_IO, "%s: %s", path, g_strerror(errno));
	char line[STORE_MAX_PASSWORD + 3]; /* the password, a CR LF and the NUL */
	bool got = fgets(line, sizeof line, f) != NULL;
	if (!std_in)
		fclose(f);
	size_t n = got ? strcspn(line, "\r\n") : 0;
	enum qerr e = QERR_OK;
	if (n > STORE_MAX_PASSWORD)
		e = qerr_set(reterr, QERR_BAD_INPUT, "%s: the password is longer than %d bytes", name, STORE_MAX_PASSWORD);
	else if (n == 0)
		e = qerr_set(reterr, QERR_BAD_INPUT, "%s holds no password", name);
	else
		e = vault_buf_alloc(n + 1, ret, reterr);
	if (!e) {
		memcpy(ret->data, line, n);
		ret->data[n] = 0;
		ret->len = n;
	}
	explicit_bzero(line, sizeof line);
	return e;
}

int cmd_submit(int argc, char **argv, struct config *cfg)
{
	g_autofree char *type = NULL, *key = NULL, *run_at = NULL, *password_file = NULL;
	int priority = 0;
	GOptionEntry entries[] = {{"type", 't', 0, G_OPTION_ARG_STRING, &type,
	                           "Document type of every file (invoice, receipt, medical_record, contract or one from "
	                           "fields.schemas_dir); default: classified",
	                           "TYPE"},
	                          {"idempotency-key", 'k', 0, G_OPTION_ARG_STRING, &key,
	                           "Client key of this upload: submitting again with the same key returns the same "
	                           "document (one file only)",
	                           "KEY"},
	                          {"priority", 'p', 0, G_OPTION_ARG_INT, &priority, "Job priority; higher runs first (0)",
	                           "N"},
	                          {"run-at", 0, 0, G_OPTION_ARG_STRING, &run_at,
	                           "Process not before this time, e.g. \"2026-03-01 08:00+00\"", "TIME"},
	                          {"password-file", 0, 0, G_OPTION_ARG_FILENAME, &password_file,
	                           "Read the password of encrypted PDFs from the first line of FILE (\"-\": standard "
	                           "input); it is stored sealed with each document and used by the worker",
	                           "FILE"},
	                          {NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "FILE|FOLDER...",
	              "Store PDFs encrypted and queue them; a folder gives the PDFs in it. Every file is checked "
	              "first; if any is unusable, nothing is submitted. Progress goes to standard error.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	if (argc < 2)
		return cmd_fail("submit", "no file given");
	const struct doctypes *types = NULL;
	g_autofree char *terr = NULL;
	if (type && doctypes_shared(cfg->schemas_dir, &types, &terr))
		return cmd_fail("submit", terr);
	if (type && !doctypes_find(types, type))
		return cmd_fail("submit", g_strdup_printf("unknown document type \"%s\"", type));
	size_t max = (size_t)cfg->max_file_mb << 20;
	g_autoptr(GPtrArray) paths = NULL;
	g_autofree char *xerr = NULL;
	if (expand(argc - 1, argv + 1, &paths, &xerr))
		return cmd_fail("submit", xerr);
	if (key && paths->len != 1)
		return cmd_fail("submit", "--idempotency-key applies to one file at a time");
	int n = (int)paths->len, rc = 0;
	/* Every file is checked before anything is stored; each is read again to store it, so a
	 * folder of any size needs the memory of one file. */
	struct progress pr;
	progress_start(&pr, "submit: checking", "files", (uint64_t)n);
	for (int i = 0; i < n && !rc; i++) {
		g_autofree char *err = NULL;
		struct loaded f = {0};
		if (cmd_load_pdf(paths->pdata[i], max, &f, &err)) {
			progress_clear(&pr);
			rc = cmd_fail("submit", err);
		}
		g_free(f.path);
		g_free(f.data);
		progress_update(&pr, (uint64_t)i + 1);
	}
	if (!rc)
		progress_end(&pr);
	struct app app = {0};
	g_autofree char *err = NULL;
	if (!rc && app_open(cfg, APP_DB | APP_VAULT, &app, &err))
		rc = cmd_fail("submit", err);
	struct vault_buf password = {0}; /* guarded memory: read once the vault is open */
	if (!rc && password_file && read_password_file(password_file, &password, &err))
		rc = cmd_fail("submit", err);
	if (!rc)
		progress_start(&pr, "submit: storing", "files", (uint64_t)n);
	for (int i = 0; !rc && i < n; i++) {
		struct store_submitted s;
		struct loaded f = {0};
		g_autofree char *base = g_path_get_basename(paths->pdata[i]);
		struct store_submit_options so = {.idempotency_key = key,
		                                  .job = {.max_attempts = cfg->max_attempts, .priority = priority,
		                                          .run_at = run_at},
		                                  .doc_type = type,
		                                  .password = (const char *)password.data};
		enum qerr e = cmd_load_pdf(paths->pdata[i], max, &f, &err);
		if (!e)
			e = store_submit_with(app.db, app.vault, base, f.data, f.len, app.actor, &so, &s, &err);
		progress_clear(&pr);
		if (e) {
			rc = cmd_fail("submit", err);
		} else {
			printf("%s: document %lld, job %lld%s\n", f.path, (long long)s.doc_id, (long long)s.job_id,
			       s.existing ? " (already submitted)" : "");
			fflush(stdout);
			progress_update(&pr, (uint64_t)i + 1);
		}
		g_free(f.path);
		g_free(f.data);
	}
	if (!rc)
		progress_end(&pr);
	app_close(&app);
	vault_buf_free(&password);
	return rc;
}

static void print_rows(struct db_res *res, int cols, const char *const *headers)
{
	for (int c = 0; c < cols; c++)
		printf("%s%s", c ? "\t" : "", headers[c]);
	printf("\n");
	for (int r = 0; r < db_res_rows(res); r++) {
		for (int c = 0; c < cols; c++)
			printf("%s%s", c ? "\t" : "", db_res_text(res, r, c));
		printf("\n");
	}
}

static int show_history(struct db *db, const char *doc)
{
	struct db_param p[1] = {DB_TEXT(doc)};
	struct db_res *res = NULL;
	if (db_query(db,
	             "SELECT id, state, attempts, coalesce(progress, ''), coalesce(last_error, ''),"
	             " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
	             " FROM jobs WHERE document_id = $1::bigint ORDER BY id",
	             1, p, &res, NULL) == QERR_OK) {
		static const char *const h[] = {"job", "state", "attempts", "progress", "error", "created (UTC)"};
		printf("\njobs:\n");
		print_rows(res, 6, h);
	}
	db_res_free(res);
	res = NULL;
	if (db_query(db,
	             "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), actor, action, outcome, detail"
	             " FROM audit_log WHERE object_type = 'document' AND object_id = $1::bigint ORDER BY id",
	             1, p, &res, NULL) == QERR_OK) {
		static const char *const h[] = {"at (UTC)", "actor", "action", "outcome", "detail"};
		printf("\nhistory:\n");
		print_rows(res, 5, h);
	}
	db_res_free(res);
	return 0;
}

/* Records that the CLI user saw the document (its result, if any) and its audit history. */
static enum qerr show_record(struct app *app, int64_t id, bool has_result, char **reterr)
{
	struct audit_event viewed = {.actor = app->actor, .action = "document.viewed", .object_type = "document",
	                             .object_id = id, .outcome = "ok", .client = "cli",
	                             .detail = has_result ? "quire show, result" : "quire show, no result yet"};
	struct audit_event read = {.actor = app->actor, .action = "audit.read", .object_type = "document",
	                           .object_id = id, .outcome = "ok", .client = "cli",
	                           .detail = "quire show, the document's history"};
	enum qerr e = db_begin(app->db, reterr);
	if (!e)
		e = audit_append(app->db, &viewed, reterr);
	if (!e)
		e = audit_append(app->db, &read, reterr);
	if (!e)
		e = db_commit(app->db, reterr);
	if (e)
		db_rollback(app->db);
	return e;
}

int cmd_show(int argc, char **argv, struct config *cfg)
{
	if (cmd_parse(&argc, &argv, "DOC",
	              "Print a document's decrypted result and its history; the viewing is recorded in the audit log.",
	              NULL))
		return 2;
	if (argc != 2)
		return cmd_fail("show", "give one document id");
	char *end = NULL;
	long long id = g_ascii_strtoll(argv[1], &end, 10);
	if (!end || *end || id <= 0)
		return cmd_fail("show", "the document id must be a positive number");
	struct app app;
	g_autofree char *err = NULL;
	if (app_open(cfg, APP_DB | APP_VAULT, &app, &err))
		return cmd_fail("show", err);
	struct vault_dek *dek = NULL;
	struct vault_buf result = {0};
	int rc = 0;
	bool has_result = false;
	enum qerr e = store_dek(app.db, app.vault, id, &dek, &err);
	if (!e) {
		e = store_get(app.db, dek, id, "result", &result, &err);
		has_result = !e;
		if (e == QERR_NOT_FOUND) {
			g_clear_pointer(&err, g_free);
			e = QERR_OK;
		}
	}
	if (!e)
		e = show_record(&app, id, has_result, &err);
	if (!e) {
		if (!has_result) {
			printf("document %lld has no result yet\n", id);
		} else {
			struct json *j = NULL;
			if (json_parse((const char *)result.data, result.len, &j, &err) == QERR_OK) {
				g_autofree char *pretty = json_format(j, true);
				printf("%s\n", pretty);
				json_free(j);
			}
		}
	}
	if (e)
		rc = cmd_fail("show", err);
	else
		show_history(app.db, argv[1]);
	vault_buf_free(&result);
	vault_dek_free(dek);
	app_close(&app);
	return rc;
}

int cmd_start(int argc, char **argv, struct config *cfg)
{
	if (cmd_parse(&argc, &argv, "", "Start the embedded PostgreSQL server and leave it running (for tools such as "
	                                "pg_dump); `quire stop` stops it.",
	              NULL))
		return 2;
	if (cfg->db_url[0])
		return cmd_fail("start", "database.url is set: quire uses that server and runs no embedded one");
	struct pgembed *pg = NULL;
	g_autofree char *err = NULL;
	if (pgembed_start(cfg->data_dir, cfg->db_run_as, &pg, &err))
		return cmd_fail("start", err);
	printf("%s\n", pgembed_conninfo(pg));
	pgembed_keep_running(pg);
	pgembed_stop(pg);
	return 0;
}

int cmd_stop(int argc, char **argv, struct config *cfg)
{
	if (cmd_parse(&argc, &argv, "", "Stop the embedded PostgreSQL server.", NULL))
		return 2;
	g_autofree char *err = NULL;
	if (pgembed_stop_now(cfg->data_dir, cfg->db_run_as, &err))
		return cmd_fail("stop", err);
	return 0;
}
