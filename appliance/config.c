/* config: the settings table, the INI reader and environment overrides. */
#include "appliance/config.h"

#include "core/log.h"

#include <errno.h>
#include <glib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "core/vault.h"

enum setting_type { SET_STRING, SET_INT };

struct setting {
	const char *section;
	const char *key;
	enum setting_type type;
	size_t offset;
	const char *def; /* default, as text; NULL: computed */
	int min, max;
	bool reloadable;
	const char *help;
	bool secret; /* the value may hold a credential: never shown or recorded, only whether it changed */
	/* a string's own rule (NULL: any): false with *why (static text) for a bad value */
	bool (*valid)(const char *text, const char **why);
};

static bool valid_listen(const char *text, const char **why);
static bool valid_kek_source(const char *text, const char **why);
static bool valid_log_level(const char *text, const char **why);

#define S(sec, k, field, d, rel, h) {sec, k, SET_STRING, offsetof(struct config, field), d, 0, 0, rel, h, false, NULL}
#define SV(sec, k, field, d, rel, h, v) {sec, k, SET_STRING, offsetof(struct config, field), d, 0, 0, rel, h, false, v}
#define SECRET(sec, k, field, d, rel, h) \
	{sec, k, SET_STRING, offsetof(struct config, field), d, 0, 0, rel, h, true, NULL}
#define I(sec, k, field, d, lo, hi, rel, h) \
	{sec, k, SET_INT, offsetof(struct config, field), d, lo, hi, rel, h, false, NULL}

/* Variables quire reads besides the settings' QUIRE_<SECTION>_<KEY>, and those the project's own
 * build, test and packaging tools pass through the environment; any other QUIRE_* is a mistake. */
static const char *const other_variables[] = {
	"QUIRE_CONFIG", "QUIRE_PASSWORD", "QUIRE_PASSPHRASE", "QUIRE_KERNELS", "QUIRE_FORCE_SCALAR", "QUIRE_DEBUG",
	"QUIRE_SOURCE_DIR", "QUIRE_BUILD_DIR", "QUIRE_SHARED_DIR", "QUIRE_LIBFUZZER", "QUIRE_SCREENSHOTS",
	"QUIRE_PACKAGE_DEB", "QUIRE_PARSER", "QUIRE_LOAD_DURATION", "QUIRE_TIMEOUT_MULTIPLIER", NULL};

static const struct setting settings[] = {
	S("general", "data_dir", data_dir, NULL, false,
	  "Where Quire keeps its database cluster, keys and state (default /var/lib/quire as root, else ~/.local/share/quire)"),
	SV("general", "log_level", log_level, "info", true, "Log threshold: error, warn, info or debug", valid_log_level),
	SECRET("database", "url", db_url, "", false,
	  "libpq connection string of an existing PostgreSQL server; empty: run a private embedded cluster"),
	S("database", "run_as", db_run_as, "postgres", false,
	  "Account that runs the embedded PostgreSQL server when quire runs as root"),
	S("database", "role", db_role, "quire_app", false,
	  "Role the application works as after connecting (SET ROLE; INSERT and SELECT only on the audit log); "
	  "migrations run as the login role. Empty: the login role's own rights"),
	S("vault", "key_file", key_file, "", false,
	  "Key-encryption key file (mode 0600); empty: <data_dir>/keys/kek.key"),
	SV("vault", "kek_source", kek_source, "file", false,
	   "Where the key-encryption key comes from: file (vault.key_file), passphrase (Argon2id; $QUIRE_PASSPHRASE or "
	   "asked on the terminal) or credential (systemd $CREDENTIALS_DIRECTORY/<vault.credential>)",
	   valid_kek_source),
	S("vault", "credential", credential, "quire-kek", false, "Name of the systemd credential holding the key"),
	S("vault", "keyring", keyring, "", false,
	  "Keyring file of wrapping-key versions (mode 0600); empty: keyring next to the key file"),
	I("vault", "argon2_ops", argon2_ops, "3", 1, 64, false,
	  "Argon2id passes for a passphrase; used when the keyring is created, then pinned in it"),
	I("vault", "argon2_mem_mb", argon2_mem_mb, "256", 8, 4096, false,
	  "Argon2id memory for a passphrase, in MiB; used when the keyring is created, then pinned in it"),
	I("audit", "checkpoint_entries", checkpoint_entries, "1000", 1, 10000000, true,
	  "A signed audit checkpoint is made after this many entries..."),
	I("audit", "checkpoint_minutes", checkpoint_minutes, "60", 1, 525600, true, "...or after this many minutes"),
	I("audit", "witness_syslog", witness_syslog, "1", 0, 1, false,
	  "1: each signed head of the audit log also goes to syslog (so it can be shipped off the host); 0: only to "
	  "the witness file (audit.witness in the key folder)"),
	I("auth", "password_ops", password_ops, "2", 1, 64, true,
	  "Argon2id passes for password hashes; a change rehashes each password at its next login"),
	I("auth", "password_mem_mb", password_mem_mb, "64", 8, 4096, true,
	  "Argon2id memory for password hashes, in MiB; a change rehashes each password at its next login"),
	I("auth", "token_days", token_days, "90", 1, 3650, true, "Default lifetime of a new API token, in days"),
	I("limits", "max_file_mb", max_file_mb, "100", 1, 4096, true, "Largest PDF accepted, in MiB"),
	I("limits", "max_pages", max_pages, "2000", 1, 100000, true, "Most pages processed per document"),
	I("limits", "parse_timeout_s", parse_timeout_s, "60", 1, 3600, true, "Processor time for parsing one document (wall clock: 3 times it)"),
	I("limits", "parse_memory_mb", parse_memory_mb, "2048", 64, 65536, true,
	  "Address-space limit of the parser process, in MiB"),
	S("ocr", "language", ocr_language, "eng", true,
	  "Tesseract language(s) for pages without a text layer, joined by + (deu+eng); each needs its Debian "
	  "package tesseract-ocr-<lang>"),
	I("ocr", "dpi", ocr_dpi, "300", 72, 600, true, "Resolution at which such pages are rendered for OCR"),
	I("worker", "concurrency", worker_concurrency, "1", 1, 256, false, "Jobs one worker process runs at once"),
	I("worker", "max_attempts", max_attempts, "3", 1, 100, true, "Attempts before a job is declared dead"),
	I("worker", "lease_s", lease_s, "300", 5, 86400, true, "Lease of a claimed job; renewed by heartbeat"),
	I("worker", "grace_s", worker_grace_s, "30", 1, 3600, true,
	  "On SIGTERM, time jobs in flight get to finish before they are handed back to the queue"),
	I("worker", "poll_ms", worker_poll_ms, "5000", 100, 600000, true,
	  "Idle workers look for jobs at least this often even without a notification"),
	I("worker", "retention_h", retention_h, "72", 0, 87600, true,
	  "Hours after which done and cancelled jobs are deleted from the queue (0: keep)"),
	I("worker", "dead_retention_h", dead_retention_h, "720", 0, 87600, true,
	  "Hours after which failed and dead jobs are deleted from the queue (0: keep)"),
	S("model", "path", model_path, "", false, "GGUF model file for field extraction; empty: rules only"),
	SECRET("model", "endpoint", model_endpoint, "", false,
	  "Base URL of an on-premise OpenAI-compatible server (instead of model.path)"),
	S("model", "template", model_template, "", false,
	  "Chat template (chatml, llama3, mistral, phi3, gemma); empty: from the model file"),
	S("model", "adapters", model_adapters, "", false,
	  "LoRA adapters (GGUF) applied to model.path at load, without merging: FILE or FILE@SCALE (scale 1 when "
	  "left out), several separated by commas; `quire model info` shows them with their SHA-256"),
	I("model", "threads", model_threads, "0", 0, 1024, false, "Inference threads; 0: one per core"),
	I("model", "context", model_context, "4096", 256, 131072, false, "Context length in tokens"),
	S("fields", "schemas_dir", schemas_dir, "", true,
	  "Folder of document type schemas (NAME.json) added to or replacing the built-in ones; empty: built-in only"),
	I("fields", "auto_approve", auto_approve, "85", 0, 101, true,
	  "Document confidence in percent at or above which results are approved without review (101: never)"),
	SV("web", "listen", web_listen, "127.0.0.1:8640", false,
	   "Address and port of the web server: an IPv4 address, a colon, a port (0: any free one)", valid_listen),
	I("web", "threads", web_threads, "4", 1, 256, false, "Threads of the web server (each with a database connection)"),
	S("web", "tls_cert", web_tls_cert, "", false,
	  "PEM certificate for HTTPS (with web.tls_key); empty: <data_dir>/tls/cert.pem when `quire init --tls` made "
	  "one, else plain HTTP"),
	S("web", "tls_key", web_tls_key, "", false,
	  "PEM private key for HTTPS (mode 0600); empty: <data_dir>/tls/key.pem, with the certificate above"),
	I("web", "max_connections", web_max_connections, "256", 1, 100000, false, "Open connections at most"),
	I("web", "max_per_address", web_max_per_address, "64", 1, 100000, false, "Open connections per client address"),
	I("web", "timeout_s", web_timeout_s, "30", 1, 3600, false, "A connection idle this long is closed"),
	I("web", "max_request_mb", web_max_request_mb, "256", 1, 16384, false,
	  "Largest request body (an upload of several files), in MiB"),
	I("web", "max_uploads", web_max_uploads, "8", 1, 1000, false,
	  "Uploads received at once (each holds a database connection until its body is in); more wait with 503"),
	I("web", "session_idle_s", web_session_idle_s, "1800", 2, 604800, false, "A session unused this many seconds ends"),
	I("web", "session_max_h", web_session_max_h, "12", 1, 720, false, "A session ends this long after login"),
	S("watch", "dir", watch_dir, "", false,
	  "Watched folder: `quire serve` ingests the PDFs dropped there (into processed/ or failed/); empty: none"),
	I("watch", "settle_ms", watch_settle_ms, "2000", 100, 600000, false,
	  "A watched file unchanged this long counts as completely written (a close after writing counts at once)"),
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

static char **str_field(struct config *c, const struct setting *s) { return (char **)((char *)c + s->offset); }
static int *int_field(struct config *c, const struct setting *s) { return (int *)((char *)c + s->offset); }

static char *default_data_dir(void)
{
	if (geteuid() == 0)
		return g_strdup("/var/lib/quire");
	return g_build_filename(g_get_user_data_dir(), "quire", NULL);
}

static bool valid_listen(const char *text, const char **why)
{
	const char *colon = strrchr(text, ':');
	char *end = NULL;
	long long port = colon ? g_ascii_strtoll(colon + 1, &end, 10) : -1;
	*why = "an IPv4 address and a port, as 127.0.0.1:8640";
	if (!colon || colon[1] == '\0' || !end || *end || port < 0 || port > 65535)
		return false;
	g_autofree char *host = g_strndup(text, (gsize)(colon - text));
	struct in_addr a;
	return inet_pton(AF_INET, host, &a) == 1;
}

static bool valid_kek_source(const char *text, const char **why)
{
	enum vault_source src;
	*why = "file, passphrase or credential";
	return vault_source_parse(text, &src);
}

static bool valid_log_level(const char *text, const char **why)
{
	*why = "error, warn, info or debug";
	return strcmp(text, "error") == 0 || strcmp(text, "warn") == 0 || strcmp(text, "info") == 0 ||
	       strcmp(text, "debug") == 0;
}

static enum qerr set_value(struct config *c, const struct setting *s, const char *text, const char *where,
                           char **reterr)
{
	const char *why = NULL;
	if (s->valid && !s->valid(text, &why))
		return qerr_set(reterr, QERR_CONFIG, "%s: %s.%s must be %s, not \"%s\"", where, s->section, s->key, why,
		                text);
	if (s->type == SET_STRING) {
		g_free(*str_field(c, s));
		*str_field(c, s) = g_strdup(text);
		return QERR_OK;
	}
	char *end = NULL;
	errno = 0;
	long long v = g_ascii_strtoll(text, &end, 10);
	if (errno || end == text || *end != '\0' || v < s->min || v > s->max)
		return qerr_set(reterr, QERR_CONFIG, "%s: %s.%s must be an integer from %d to %d, not \"%s\"", where,
		                s->section, s->key, s->min, s->max, text);
	*int_field(c, s) = (int)v;
	return QERR_OK;
}

static const struct setting *find_setting(const char *section, const char *key)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].section, section) == 0 && strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

static bool known_section(const char *section)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].section, section) == 0)
			return true;
	return false;
}

/* GKeyFile does not report line numbers; find the line of [section] key = ... in the text. */
static int line_of(const char *text, const char *section, const char *key)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	bool in_section = false;
	for (int i = 0; lines[i]; i++) {
		char *l = g_strstrip(lines[i]);
		if (l[0] == '[') {
			in_section = g_str_has_prefix(l + 1, section) && l[1 + strlen(section)] == ']';
			if (!key && in_section)
				return i + 1;
		} else if (key && in_section && g_str_has_prefix(l, key)) {
			const char *rest = l + strlen(key);
			while (*rest == ' ' || *rest == '\t')
				rest++;
			if (*rest == '=')
				return i + 1;
		}
	}
	return 0;
}

static enum qerr read_file(struct config *c, const char *path, char **reterr)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) gerr = NULL;
	if (!g_file_get_contents(path, &text, NULL, &gerr))
		return qerr_set(reterr, QERR_CONFIG, "cannot read configuration %s: %s", path, gerr->message);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	if (!g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE, &gerr))
		return qerr_set(reterr, QERR_CONFIG, "%s: %s", path, gerr->message);
	g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
	for (int g = 0; groups[g]; g++) {
		if (!known_section(groups[g]))
			return qerr_set(reterr, QERR_CONFIG, "%s:%d: unknown section [%s]", path,
			                line_of(text, groups[g], NULL), groups[g]);
		g_auto(GStrv) keys = g_key_file_get_keys(kf, groups[g], NULL, NULL);
		for (int k = 0; keys && keys[k]; k++) {
			int line = line_of(text, groups[g], keys[k]);
			const struct setting *s = find_setting(groups[g], keys[k]);
			if (!s)
				return qerr_set(reterr, QERR_CONFIG, "%s:%d: unknown key \"%s\" in section [%s]", path, line,
				                keys[k], groups[g]);
			g_autofree char *v = g_key_file_get_string(kf, groups[g], keys[k], NULL);
			g_autofree char *where = g_strdup_printf("%s:%d", path, line);
			enum qerr e = set_value(c, s, v ? g_strstrip(v) : "", where, reterr);
			if (e)
				return e;
		}
	}
	c->source = g_strdup(path);
	return QERR_OK;
}

static bool known_variable(const char *name)
{
	if (g_str_has_prefix(name, "QUIRE_TEST_")) /* the test tools' own */
		return true;
	for (int i = 0; other_variables[i]; i++)
		if (strcmp(name, other_variables[i]) == 0)
			return true;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		g_autofree char *var = g_ascii_strup(settings[i].section, -1);
		g_autofree char *key = g_ascii_strup(settings[i].key, -1);
		g_autofree char *full = g_strdup_printf("QUIRE_%s_%s", var, key);
		if (strcmp(name, full) == 0)
			return true;
	}
	return false;
}

/* A QUIRE_* variable that names no setting is a typo that would silently leave the default. */
static enum qerr check_env_names(char **reterr)
{
	g_auto(GStrv) env = g_get_environ();
	for (int i = 0; env[i]; i++) {
		if (!g_str_has_prefix(env[i], "QUIRE_"))
			continue;
		g_autofree char *name = g_strndup(env[i], strcspn(env[i], "="));
		if (!known_variable(name))
			return qerr_set(reterr, QERR_CONFIG,
			                "unknown environment variable %s: settings are QUIRE_<SECTION>_<KEY> (`quire config "
			                "sample` lists them); unset it or correct its name",
			                name);
	}
	return QERR_OK;
}

static enum qerr read_env(struct config *c, char **reterr)
{
	enum qerr e0 = check_env_names(reterr);
	if (e0)
		return e0;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		g_autofree char *name = g_ascii_strup(settings[i].section, -1);
		g_autofree char *key = g_ascii_strup(settings[i].key, -1);
		g_autofree char *var = g_strdup_printf("QUIRE_%s_%s", name, key);
		const char *v = g_getenv(var);
		if (!v)
			continue;
		g_autofree char *where = g_strdup_printf("environment variable %s", var);
		enum qerr e = set_value(c, &settings[i], v, where, reterr);
		if (e)
			return e;
	}
	return QERR_OK;
}

enum qerr config_load(const char *path, struct config **ret, char **reterr)
{
	struct config *c = g_new0(struct config, 1);
	enum qerr e = QERR_OK;
	for (size_t i = 0; i < N_SETTINGS && !e; i++) {
		g_autofree char *def = settings[i].def ? g_strdup(settings[i].def) : default_data_dir();
		e = set_value(c, &settings[i], def, "default", reterr);
	}
	if (!path)
		path = g_getenv("QUIRE_CONFIG");
	if (!path && g_file_test("/etc/quire/quire.conf", G_FILE_TEST_EXISTS))
		path = "/etc/quire/quire.conf";
	if (!e && path)
		e = read_file(c, path, reterr);
	if (!e)
		e = read_env(c, reterr);
	if (!e && log_set_level_name(c->log_level) != 0) /* refused above already, with where it was set */
		e = qerr_set(reterr, QERR_CONFIG, "general.log_level must be error, warn, info or debug, not \"%s\"",
		             c->log_level);
	if (!e && c->data_dir[0] != '/')
		e = qerr_set(reterr, QERR_CONFIG, "general.data_dir must be an absolute path, not \"%s\"", c->data_dir);
	if (e) {
		config_free(c);
		return e;
	}
	*ret = c;
	return QERR_OK;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (settings[i].type == SET_STRING)
			g_free(*str_field(cfg, &settings[i]));
	g_free(cfg->source);
	g_free(cfg);
}

void config_print_sample(FILE *out)
{
	fprintf(out, "# Quire configuration. Every key is shown with its default.\n"
	             "# Environment variables QUIRE_<SECTION>_<KEY> override this file.\n");
	const char *section = "";
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		if (strcmp(section, s->section) != 0) {
			fprintf(out, "\n[%s]\n", s->section);
			section = s->section;
		}
		fprintf(out, "# %s%s\n", s->help, s->reloadable ? "" : " (restart to change)");
		if (s->def)
			fprintf(out, "#%s = %s\n", s->key, s->def);
		else
			fprintf(out, "#%s =\n", s->key);
	}
}

void config_print(const struct config *cfg, FILE *out)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		if (s->type == SET_STRING)
			fprintf(out, "%s.%s = %s\n", s->section, s->key, *str_field((struct config *)cfg, s));
		else
			fprintf(out, "%s.%s = %d\n", s->section, s->key, *int_field((struct config *)cfg, s));
	}
}

void config_each(const struct config *cfg, config_each_fn fn, void *data)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		g_autofree char *key = g_strdup_printf("%s.%s", s->section, s->key);
		g_autofree char *value = s->type == SET_STRING
		                             ? g_strdup(*str_field((struct config *)cfg, s))
		                             : g_strdup_printf("%d", *int_field((struct config *)cfg, s));
		fn(key, value ? value : "", s->secret, data);
	}
}

char *config_key_path(const struct config *cfg)
{
	if (cfg->key_file && cfg->key_file[0])
		return g_strdup(cfg->key_file);
	return g_build_filename(cfg->data_dir, "keys", "kek.key", NULL);
}

char *config_tls_dir(const struct config *cfg) { return g_build_filename(cfg->data_dir, "tls", NULL); }

enum qerr config_tls(const struct config *cfg, char **ret_cert, char **ret_key, char **reterr)
{
	if (!cfg->web_tls_cert[0] != !cfg->web_tls_key[0])
		return qerr_set(reterr, QERR_CONFIG, "web.tls_cert and web.tls_key must be set together");
	if (cfg->web_tls_cert[0]) {
		*ret_cert = g_strdup(cfg->web_tls_cert);
		*ret_key = g_strdup(cfg->web_tls_key);
		return QERR_OK;
	}
	g_autofree char *dir = config_tls_dir(cfg);
	g_autofree char *cert = g_build_filename(dir, "cert.pem", NULL);
	g_autofree char *key = g_build_filename(dir, "key.pem", NULL);
	bool have_cert = g_file_test(cert, G_FILE_TEST_EXISTS), have_key = g_file_test(key, G_FILE_TEST_EXISTS);
	if (have_cert != have_key)
		return qerr_set(reterr, QERR_CONFIG, "%s exists without %s: restore it, or delete both and run `quire init --tls`",
		                have_cert ? cert : key, have_cert ? key : cert);
	*ret_cert = have_cert ? g_steal_pointer(&cert) : g_strdup("");
	*ret_key = have_key ? g_steal_pointer(&key) : g_strdup("");
	return QERR_OK;
}
