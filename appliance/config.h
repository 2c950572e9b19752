/* config: every setting of Quire, in one table.
 *
 * Settings come from, in increasing priority: the defaults in the table, the
 * configuration file (INI, read with GKeyFile), and environment variables
 * QUIRE_<SECTION>_<KEY> (upper case). The same table prints the documented
 * sample (`quire config sample`) and checks every key and value: an unknown
 * key or a bad value is an error naming the file and line (or the variable). */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "core/qerr.h"

struct config {
	char *data_dir;
	char *log_level;
	char *db_url;
	char *db_run_as;
	char *db_role;
	char *key_file;
	char *kek_source;
	char *credential;
	char *kek_command;
	char *keyring_in;
	char *keyring;
	int argon2_ops;
	int argon2_mem_mb;
	int checkpoint_entries;
	int checkpoint_minutes;
	int witness_syslog;
	int password_ops;
	int password_mem_mb;
	int token_days;
	int max_file_mb;
	int max_pages;
	int parse_timeout_s;
	int parse_memory_mb;
	char *ocr_language;
	int ocr_dpi;
	int worker_concurrency;
	int max_attempts;
	int lease_s;
	int worker_grace_s;
	int worker_poll_ms;
	int retention_h;
	int dead_retention_h;
	char *model_path;
	char *model_endpoint;
	char *model_template;
	char *model_adapters;
	int model_threads;
	int model_context;
	char *schemas_dir;
	int auto_approve;
	char *web_listen;
	int web_threads;
	char *web_tls_cert;
	char *web_tls_key;
	int web_max_connections;
	int web_max_per_address;
	int web_timeout_s;
	int web_max_request_mb;
	int web_max_uploads;
	int web_session_idle_s;
	int web_session_max_h;
	char *watch_dir;
	int watch_settle_ms;
	char *source; /* the file read, or NULL */
};

/* Loads defaults, then path (if not NULL; else $QUIRE_CONFIG, else
 * /etc/quire/quire.conf when it exists), then the environment. *ret is owned by the
 * caller; free with config_free(). */
enum qerr config_load(const char *path, struct config **ret, char **reterr) QUIRE_MUST_CHECK;
void config_free(struct config *cfg);

/* Writes the documented sample configuration (every key with its default). */
void config_print_sample(FILE *out);
/* Writes the current effective values. */
void config_print(const struct config *cfg, FILE *out);
/* Calls fn for every setting in table order with its key ("section.key") and
 * effective value as text (both borrowed for the call). secret: the value may
 * hold a credential (database.url, model.endpoint) and must not be shown. */
typedef void (*config_each_fn)(const char *key, const char *value, bool secret, void *data);
void config_each(const struct config *cfg, config_each_fn fn, void *data);
/* Path of the key file (key_file, or <data_dir>/keys/kek.key); g_free(). */
char *config_key_path(const struct config *cfg);
/* Where `quire init --tls` puts the web server's certificate and key: <data_dir>/tls; g_free(). */
char *config_tls_dir(const struct config *cfg);
/* The web server's certificate and key files (g_free both): web.tls_cert and web.tls_key when
 * they are set (QERR_CONFIG when only one is), else cert.pem and key.pem of config_tls_dir()
 * when both exist, else "" and "" (plain HTTP). QERR_CONFIG when only one of the two files there
 * exists. */
enum qerr config_tls(const struct config *cfg, char **ret_cert, char **ret_key, char **reterr) QUIRE_MUST_CHECK;
