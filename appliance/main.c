/* main: the quire programs: global options, configuration, subcommand dispatch.
 *
 * Built twice. quire-full (in quire's libexec folder) runs every command.
 * quire (QUIRE_FRONT), the program users start, runs `extract` and `config`
 * itself and execs quire-full for the others: those two load neither the
 * database client nor the web server's TLS libraries, so one PDF read from a
 * shell (`quire extract`) does not pay for loading them. */
#include <glib.h>
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "appliance/commands.h"
#include "appliance/config.h"
#include "core/program.h"
#include "extractors/extract.h"
#include "extractors/sandbox.h"

struct command {
	const char *name;
	command_fn fn;
	const char *summary;
};

#ifdef QUIRE_FRONT
#define FULL(fn) NULL /* run by quire-full */
#else
#define FULL(fn) fn
#endif

static const struct command commands[] = {
	{"init", FULL(cmd_init), "create the data directory, key file and database"},
	{"migrate", FULL(cmd_migrate), "apply pending database migrations"},
	{"submit", FULL(cmd_submit), "store PDFs encrypted and queue them for processing"},
	{"worker", FULL(cmd_worker), "process queued documents"},
	{"serve", FULL(cmd_serve), "run the web server and a worker (the daemon)"},
	{"web", FULL(cmd_web), "run the web server only"},
	{"export", FULL(cmd_export), "export approved results (CSV, JSON Lines) or training examples"},
	{"status", FULL(cmd_status), "show the queue: counts by state, oldest waiting job, throughput, failures"},
	{"retry", FULL(cmd_retry), "queue failed, dead or cancelled jobs again"},
	{"cancel", FULL(cmd_cancel), "cancel queued or running jobs"},
	{"show", FULL(cmd_show), "print a document's extracted fields and history"},
	{"extract", cmd_extract, "extract one PDF and print JSON (no database)"},
	{"model", FULL(cmd_model), "model tools: info, bench, run"},
	{"eval", FULL(cmd_eval), "measure field extraction on a labelled folder of PDFs"},
	{"audit", FULL(cmd_audit), "audit log: verify (against a checkpoint), checkpoint"},
	{"keys", FULL(cmd_keys), "key management: rotate, status, retire"},
	{"erase", FULL(cmd_erase), "erase documents for good (crypto-shredding)"},
	{"user", FULL(cmd_user), "user accounts: add, passwd, role, disable, list"},
	{"token", FULL(cmd_token), "API tokens: create, list, revoke"},
	{"config", cmd_config, "print the sample or the effective configuration"},
	{"start", FULL(cmd_start), "start the embedded PostgreSQL server and leave it running"},
	{"stop", FULL(cmd_stop), "stop the embedded PostgreSQL server"},
	{"watch", FULL(cmd_watch), "ingest the PDFs dropped into a folder"},
	{"backup", FULL(cmd_backup), "write the encrypted database and the wrapped keys to a file"},
	{"restore", FULL(cmd_restore), "restore a backup into a fresh instance"},
	{"doctor", FULL(cmd_doctor), "check the installation and say what to fix"},
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

#ifdef QUIRE_FRONT
#ifndef QUIRE_FULL_PATH
#define QUIRE_FULL_PATH "/usr/libexec/quire/quire-full"
#endif

/* Runs the command in quire-full, found beside this program (a build tree)
 * or in the installed libexec folder; returns only when that fails. */
static int run_full(char **argv)
{
	g_autofree char *path = program_path("quire-full", QUIRE_FULL_PATH);
	execv(path, argv);
	fprintf(stderr, "quire: cannot run %s: %s (install quire completely)\n", path, g_strerror(errno));
	return 1;
}
#endif

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
#ifdef QUIRE_FRONT
	if (!cmd->fn)
		return run_full(argv);
#endif
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
