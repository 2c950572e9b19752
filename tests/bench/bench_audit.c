/* bench_audit: audit appends per second with the witness outside the database and without it.
 *
 * Starts a private PostgreSQL in a temporary directory, applies the migrations, opens a vault
 * on a new key file, and has CLIENTS threads (each on its own connection) append N entries
 * between them, one transaction each (BEGIN, audit_append, COMMIT), as the application does.
 * Without the witness, a commit returns when PostgreSQL has it; with it, a signed prepared line
 * is written and fdatasync()ed before each COMMIT (inside the log's append lock, so these cannot
 * be batched), and a committed line after it (batched across the threads, made durable by the
 * next prepared line's sync). The two
 * alternate for ROUNDS rounds; the best round of each is reported, with the ratio
 * (target >= 0.80) and the processor's name.
 *
 * Usage: bench_audit [N] [CLIENTS]   (default 4000 entries, 4 clients) */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "appliance/app.h"
#include "appliance/pgembed.h"
#include "core/audit.h"
#include "core/db.h"
#include "core/migrate.h"
#include "core/vault.h"
#include "core/witness.h"

#define ROUNDS 3
#define MAX_CLIENTS 64

static const char *conninfo;
static int per_client;

static void must(enum qerr e, const char *what, const char *err)
{
	if (e) {
		fprintf(stderr, "bench_audit: %s: %s\n", what, err ? err : qerr_str(e));
		exit(1);
	}
}

static struct db *connect_db(void)
{
	struct db *db = NULL;
	g_autofree char *err = NULL;
	must(db_connect(conninfo, &db, &err), "connect", err);
	return db;
}

static gpointer client(gpointer data)
{
	struct db *db = connect_db();
	for (int i = 0; i < per_client; i++) {
		struct audit_event ev = {.actor = "system:bench",
		                         .action = "job.claimed",
		                         .object_type = "job",
		                         .object_id = GPOINTER_TO_INT(data) * 10000000 + i,
		                         .outcome = "ok",
		                         .client = "bench"};
		g_autofree char *err = NULL;
		must(db_begin(db, &err), "begin", err);
		must(audit_append(db, &ev, &err), "append", err);
		must(db_commit(db, &err), "commit", err);
	}
	db_close(db);
	return NULL;
}

/* Appends per second over all clients. */
static double run_round(int clients)
{
	GThread *t[MAX_CLIENTS];
	gint64 start = g_get_monotonic_time();
	for (int i = 0; i < clients; i++)
		t[i] = g_thread_new("append", client, GINT_TO_POINTER(i + 1));
	for (int i = 0; i < clients; i++)
		g_thread_join(t[i]);
	double s = (double)(g_get_monotonic_time() - start) / 1e6;
	return (double)per_client * clients / s;
}

static char *processor_name(void)
{
	g_autofree char *text = NULL;
	if (g_file_get_contents("/proc/cpuinfo", &text, NULL, NULL)) {
		g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
		for (int i = 0; lines[i]; i++)
			if (g_str_has_prefix(lines[i], "model name") && strchr(lines[i], ':'))
				return g_strdup(g_strstrip(strchr(lines[i], ':') + 1));
	}
	return g_strdup("unknown processor");
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? (int)g_ascii_strtoll(argv[1], NULL, 10) : 4000;
	int clients = argc > 2 ? (int)g_ascii_strtoll(argv[2], NULL, 10) : 4;
	if (n < 1 || n > 10000000 || clients < 1 || clients > MAX_CLIENTS) {
		fprintf(stderr, "usage: bench_audit [N (1..10000000)] [CLIENTS (1..%d)]\n", MAX_CLIENTS);
		return 2;
	}
	per_client = (n + clients - 1) / clients;
	g_autofree char *dir = g_dir_make_tmp("quire-bench-XXXXXX", NULL);
	chmod(dir, 0711);
	g_autofree char *data = g_build_filename(dir, "data", NULL);
	g_autofree char *key = g_build_filename(dir, "kek.key", NULL);
	g_autofree char *witness = g_build_filename(dir, WITNESS_FILE_NAME, NULL);
	struct pgembed *pg = NULL;
	struct vault *vault = NULL;
	g_autofree char *err = NULL;
	must(pgembed_start(data, "postgres", &pg, &err), "start PostgreSQL", err);
	conninfo = pgembed_conninfo(pg);
	struct db *db = connect_db();
	int nm = 0;
	const struct migration *list = app_migrations(&nm);
	must(migrate_apply(db, list, nm, NULL, &err), "migrations", err);
	must(vault_keyfile_create(key, &err), "key file", err);
	must(vault_open(key, &vault, &err), "vault", err);
	audit_set_signer(vault, 1000, 3600);
	g_autofree char *cpu = processor_name();
	printf("audit append benchmark on %s (%u CPUs online): %d entries per round, %d clients, one transaction each,"
	       " best of %d rounds\n",
	       cpu, g_get_num_processors(), per_client * clients, clients, ROUNDS);
	double best_plain = 0, best_witness = 0;
	for (int r = 1; r <= ROUNDS; r++) {
		audit_set_witness(NULL, false);
		double plain = run_round(clients);
		audit_set_witness(witness, false);
		double with = run_round(clients);
		printf("  round %d: without witness %.0f appends/s, with witness %.0f appends/s\n", r, plain, with);
		best_plain = MAX(best_plain, plain);
		best_witness = MAX(best_witness, with);
	}
	struct witness_head *heads = NULL;
	size_t lines = 0, prepared = 0;
	uint8_t pk[VAULT_PK_BYTES];
	vault_sign_public(vault, pk);
	must(witness_read(witness, pk, &heads, &lines, &err), "read the witness", err);
	for (size_t i = 0; i < lines; i++)
		prepared += heads[i].prepared;
	g_free(heads);
	printf("without witness (reference): %.0f appends/s\n", best_plain);
	printf("with witness (prepared line written before each COMMIT, committed line synced after): %.0f "
	       "appends/s\n",
	       best_witness);
	printf("witness lines written for %d commits: %zu prepared (one each), %zu committed (batched)\n",
	       ROUNDS * per_client * clients, prepared, lines - prepared);
	printf("ratio with/without: %.2f (target >= 0.80)\n", best_witness / best_plain);
	audit_set_witness(NULL, false);
	audit_set_signer(NULL, 0, 0);
	vault_close(vault);
	db_close(db);
	pgembed_stop(pg);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_audit: could not remove %s\n", dir);
	return 0;
}
