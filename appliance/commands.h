/* commands: the subcommands of the quire binary.
 *
 * Each takes the arguments after its name (argv[0] is the subcommand's name)
 * and the loaded configuration, and returns the process exit status. They
 * print results on stdout and errors on stderr, once, where they decide. */
#pragma once

#include <stddef.h>

#include "core/qerr.h"
#include "extractors/extract.h"

struct config;

typedef int (*command_fn)(int argc, char **argv, struct config *cfg);

int cmd_init(int argc, char **argv, struct config *cfg);
int cmd_migrate(int argc, char **argv, struct config *cfg);
int cmd_submit(int argc, char **argv, struct config *cfg);
int cmd_worker(int argc, char **argv, struct config *cfg);
int cmd_status(int argc, char **argv, struct config *cfg);
int cmd_retry(int argc, char **argv, struct config *cfg);
int cmd_cancel(int argc, char **argv, struct config *cfg);
int cmd_show(int argc, char **argv, struct config *cfg);
int cmd_extract(int argc, char **argv, struct config *cfg);
int cmd_config(int argc, char **argv, struct config *cfg);
int cmd_audit(int argc, char **argv, struct config *cfg);
int cmd_keys(int argc, char **argv, struct config *cfg);
int cmd_erase(int argc, char **argv, struct config *cfg);
int cmd_user(int argc, char **argv, struct config *cfg);
int cmd_token(int argc, char **argv, struct config *cfg);
int cmd_model(int argc, char **argv, struct config *cfg);
int cmd_eval(int argc, char **argv, struct config *cfg);
int cmd_serve(int argc, char **argv, struct config *cfg);
int cmd_web(int argc, char **argv, struct config *cfg);
int cmd_export(int argc, char **argv, struct config *cfg);
int cmd_start(int argc, char **argv, struct config *cfg);
int cmd_stop(int argc, char **argv, struct config *cfg);
int cmd_watch(int argc, char **argv, struct config *cfg);
int cmd_backup(int argc, char **argv, struct config *cfg);
int cmd_restore(int argc, char **argv, struct config *cfg);
int cmd_doctor(int argc, char **argv, struct config *cfg);

/* The daemon's watched folder (watch.dir) in a thread of its own with its own connection;
 * NULL when none is configured or it cannot be watched (logged). (cmd_ops.c) */
struct ops_watcher;
struct vault;
struct ops_watcher *ops_watch_start(const struct config *cfg, const struct vault *v, const char *conninfo);
/* Stops the thread and frees w; accepts NULL. */
void ops_watch_stop(struct ops_watcher *w);

/* Extraction settings from the configuration (no model opened). */
struct extract_options extract_options_of(const struct config *cfg);
/* Opens the configured model (model.path or model.endpoint); *ret stays NULL when none is configured. */
struct modelfields;
enum qerr open_model(const struct config *cfg, struct modelfields **ret, char **reterr);

/* A PDF read whole from path, checked against the size limit max and for a PDF's header;
 * free data and path with g_free. */
struct loaded {
	char *path;
	char *data;
	size_t len;
};
enum qerr cmd_load_pdf(const char *path, size_t max, struct loaded *out, char **reterr);

/* Prints "quire <what>: <message>" on stderr and returns exit status 1 (2 for usage errors). */
int cmd_fail(const char *what, const char *message);
/* Parses options for a subcommand; returns 0, or prints the error and returns 2. */
struct _GOptionEntry;
int cmd_parse(int *argc, char ***argv, const char *params, const char *summary, const struct _GOptionEntry *entries);

/* Vault from the configuration (key source, keyring); registers it as the audit checkpoint
 * signer. With vault.keyring_in = database the keyring is read through a connection of its
 * own to conninfo (the database must have the current schema); *ret_store receives it.
 * Free both with keys_close_vault(). (cmd_keys.c) */
struct vault;
struct ringstore;
enum qerr keys_open_vault(const struct config *cfg, const char *conninfo, struct vault **ret,
                          struct ringstore **ret_store, char **reterr);
void keys_close_vault(struct vault *v, struct ringstore *store);
/* `quire init`'s part: the key file (file source) and the passphrase; the keyring is created
 * by the next keys_open_vault() when missing. */
enum qerr keys_init(const struct config *cfg, char **reterr);
