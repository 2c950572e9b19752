/* main: the quire binary: global options, configuration, subcommand dispatch. */
#include <glib.h>
#include <locale.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "appliance/commands.h"
#include "appliance/config.h"
#include "extractors/extract.h"
#include "extractors/sandbox.h"

struct command {
	const char *name;
	command_fn fn;
	const char *summary;
};

static const struct command commands[] = {
	{"init", cmd_init, "create the data directory, key file and database"},
	{"migrate", cmd_migrate, "apply pending database migrations"},
	{"submit", cmd_submit, "store PDFs encrypted and queue them for processing"},
	{"worker", cmd_worker, "process queued documents"},
	{"serve", cmd_serve, "run the web server and a worker (the daemon)"},
	{"web", cmd_web, "run the web server only"},
	{"export", cmd_export, "export approved results (CSV, JSON Lines) or training examples"},
	{"status", cmd_status, "show the queue: counts by state, oldest waiting job, throughput, failures"},
	{"retry", cmd_retry, "queue failed, dead or cancelled jobs again"},
	{"cancel", cmd_cancel, "cancel queued or running jobs"},
	{"show", cmd_show, "print a document's extracted fields and history"},
	{"extract", cmd_extract, "extract one PDF and print JSON (no database)"},
	{"model", cmd_model, "model tools: info, bench, run"},
	{"eval", cmd_eval, "measure field extraction on a labelled folder of PDFs"},
	{"audit", cmd_audit, "audit log: verify (against a checkpoint), checkpoint"},
	{"keys", cmd_keys, "key management: rotate, status, retire"},
	{"erase", cmd_erase, "erase documents for good (crypto-shredding)"},
	{"user", cmd_user, "user accounts: add, passwd, role, disable, list"},
	{"token", cmd_token, "API tokens: create, list, revoke"},
	{"config", cmd_config, "print the sample or the effective configuration"},
	{"start", cmd_start, "start the embedded PostgreSQL server and leave it running"},
	{"stop", cmd_stop, "stop the embedded PostgreSQL server"},
	{"watch", cmd_watch, "ingest the PDFs dropped into a folder"},
	{"backup", cmd_backup, "write the encrypted database and the wrapped keys to a file"},
	{"restore", cmd_restore, "restore a backup into a fresh instance"},
	{"doctor", cmd_doctor, "check the installation and say what to fix"},
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: quire [--config FILE] COMMAND [OPTIONS]\n\nCommands:\n");
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nRun `quire COMMAND --help` for a command's options.\n");
}

static bool parses_pdfs(const char *name)
{
	static const char *const parsing[] = {"extract", "worker", "serve", "web", "eval"};
	for (size_t i = 0; i < G_N_ELEMENTS(parsing); i++)
		if (strcmp(name, parsing[i]) == 0)
			return true;
	return false;
}

/* The commands that parse PDFs have parsers started ahead for the configured
 * limits (extractors/sandbox.h). A failure is left for the first document to
 * report. */
static void start_parsers(const char *name, const struct config *cfg)
{
	if (!parses_pdfs(name))
		return;
	struct extract_options o = extract_options_of(cfg);
	int pool = strcmp(name, "extract") == 0 ? 0 : strcmp(name, "web") == 0 ? 1 : cfg->worker_concurrency;
	g_autofree char *err = NULL;
	enum qerr e = sandbox_start(&o.limits, pool, &err);
	(void)e;
}

int main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	/* Plaintext documents and keys must never end up in a core file. */
	struct rlimit nocore = {0, 0};
	setrlimit(RLIMIT_CORE, &nocore);
	const char *config_path = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config_path = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("quire %s\n", QUIRE_VERSION);
			return 0;
		} else {
			fprintf(stderr, "quire: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const struct command *cmd = NULL;
	for (size_t c = 0; c < G_N_ELEMENTS(commands); c++)
		if (strcmp(argv[i], commands[c].name) == 0)
			cmd = &commands[c];
	if (!cmd) {
		fprintf(stderr, "quire: unknown command \"%s\"\n", argv[i]);
		usage(stderr);
		return 2;
	}
	/* The parser's launcher is forked now: no key is loaded and no thread runs yet. */
	g_autofree char *err = NULL;
	if (parses_pdfs(cmd->name) && sandbox_launch(&err) != QERR_OK)
		g_clear_pointer(&err, g_free); /* the first document reports it */
	struct config *cfg = NULL;
	if (config_load(config_path, &cfg, &err) != QERR_OK) {
		fprintf(stderr, "quire: %s\n", err);
		return 1;
	}
	start_parsers(cmd->name, cfg);
	int rc = cmd->fn(argc - i, argv + i, cfg);
	config_free(cfg);
	return rc;
}
