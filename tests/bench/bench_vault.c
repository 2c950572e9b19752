/* bench_vault: what encryption at rest costs, against references measured in the same run.
 *
 * 1. Sealing and opening a MB-sized original with the chunked secretstream, against one
 *    XChaCha20-Poly1305 box over the same bytes (the reference: same cipher, no framing).
 * 2. `keys rotate`'s rewrap: N documents are stored, then every data key is unwrapped and
 *    rewrapped under a new key version in batches; the reference is the same batched
 *    SELECT ... FOR UPDATE + UPDATE of the same rows with the old bytes written back (same
 *    locks, same writes, no cryptography), in the same database.
 * 3. Opening a passphrase keyring (Argon2id at the default cost), once.
 * Each timed part runs ROUNDS times, the best is reported.
 *
 * Usage: bench_vault [N_DOCS] [MB]   (default 2000 documents, 16 MiB) */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "appliance/app.h"
#include "appliance/pgembed.h"
#include "core/db.h"
#include "core/migrate.h"
#include "core/vault.h"
#include "pipeline/custody.h"
#include "pipeline/store.h"

#define ROUNDS 3
#define BATCH 500

static void must(enum qerr e, const char *what, const char *err)
{
	if (e) {
		fprintf(stderr, "bench_vault: %s: %s\n", what, err ? err : qerr_str(e));
		exit(1);
	}
}

static double now_s(void) { return (double)g_get_monotonic_time() / 1e6; }

static void bench_stream(size_t mb)
{
	size_t len = mb << 20;
	uint8_t *plain = g_malloc(len);
	for (size_t i = 0; i < len; i++)
		plain[i] = (uint8_t)(i * 2654435761u >> 13);
	struct vault_dek *dek = NULL;
	g_autofree char *err = NULL;
	must(vault_dek_new(&dek, &err), "dek", err);
	double best_stream = 1e9, best_box = 1e9;
	for (int r = 0; r < ROUNDS; r++) {
		uint8_t *s = NULL;
		size_t n = 0;
		struct vault_buf out = {0};
		double t0 = now_s();
		must(vault_stream_seal(dek, 1, "original", plain, len, &s, &n, &err), "stream seal", err);
		must(vault_stream_unseal(dek, 1, "original", s, n, &out, &err), "stream open", err);
		best_stream = MIN(best_stream, now_s() - t0);
		vault_buf_free(&out);
		g_free(s);
		t0 = now_s();
		must(vault_seal(dek, 1, "original", plain, len, &s, &n, &err), "box seal", err);
		must(vault_unseal(dek, 1, "original", s, n, &out, &err), "box open", err);
		best_box = MIN(best_box, now_s() - t0);
		vault_buf_free(&out);
		g_free(s);
	}
	printf("seal+open %zu MiB original: secretstream %.1f MiB/s, one AEAD box (reference) %.1f MiB/s, "
	       "ratio %.2f\n",
	       mb, (double)mb / best_stream, (double)mb / best_box, best_box / best_stream);
	vault_dek_free(dek);
	g_free(plain);
}

/* The reference: the rewrap's batches without cryptography. */
static double plain_pass(struct db *db, int n_docs)
{
	g_autofree char *err = NULL;
	double t0 = now_s();
	for (int64_t after = 0;;) {
		char sa[24], sb[16];
		g_snprintf(sa, sizeof sa, "%lld", (long long)after);
		g_snprintf(sb, sizeof sb, "%d", BATCH);
		struct db_param p[2] = {DB_TEXT(sa), DB_TEXT(sb)};
		struct db_res *res = NULL;
		must(db_begin(db, &err), "begin", err);
		must(db_query(db,
		              "SELECT id, wrapped_key, key_version FROM documents WHERE wrapped_key IS NOT NULL"
		              " AND id > $1::bigint ORDER BY id LIMIT $2::int FOR UPDATE",
		              2, p, &res, &err),
		     "select", err);
		int rows = db_res_rows(res);
		for (int r = 0; r < rows; r++) {
			size_t wl = 0;
			g_autofree uint8_t *w = db_res_bytea(res, r, 1, &wl);
			struct db_param q[3] = {DB_TEXT(db_res_text(res, r, 0)), DB_BIN(w, wl), DB_TEXT(db_res_text(res, r, 2))};
			must(db_query(db, "UPDATE documents SET wrapped_key = $2, key_version = $3::int WHERE id = $1::bigint", 3,
			              q, NULL, &err),
			     "update", err);
			after = db_res_int(res, r, 0);
		}
		db_res_free(res);
		must(db_commit(db, &err), "commit", err);
		if (rows == 0)
			break;
	}
	(void)n_docs;
	return now_s() - t0;
}

static void bench_rewrap(struct db *db, struct vault *v, int n_docs)
{
	g_autofree char *err = NULL;
	for (int i = 0; i < n_docs; i++) {
		g_autofree char *pdf = g_strdup_printf("%%PDF-1.4\n%% bench document %d\n%%%%EOF\n", i);
		struct store_submitted s;
		must(store_submit(db, v, "b.pdf", pdf, strlen(pdf), "bench", 3, &s, &err), "submit", err);
	}
	double best = 1e9, best_ref = 1e9;
	for (int r = 0; r < ROUNDS; r++) {
		int32_t next = 0;
		int64_t done = 0;
		must(vault_rotate(v, &next, &err), "rotate", err);
		must(custody_activate(db, next, "bench", &err), "activate", err);
		double t0 = now_s();
		must(custody_rewrap(db, v, next, BATCH, &done, &err), "rewrap", err);
		best = MIN(best, now_s() - t0);
		if (done != n_docs) {
			fprintf(stderr, "bench_vault: rewrapped %lld of %d\n", (long long)done, n_docs);
			exit(1);
		}
		best_ref = MIN(best_ref, plain_pass(db, n_docs));
	}
	printf("rotation of %d data keys in batches of %d: %.0f keys/s, same batches without cryptography "
	       "(reference) %.0f rows/s, ratio %.2f\n",
	       n_docs, BATCH, n_docs / best, n_docs / best_ref, best_ref / best);
}

static void bench_passphrase(const char *dir)
{
	g_autofree char *ring = g_build_filename(dir, "pass-keyring", NULL);
	const char *pass = "a passphrase for the benchmark";
	struct vault_options o = {.source = VAULT_SOURCE_PASSPHRASE, .passphrase = pass, .passphrase_len = strlen(pass),
	                          .keyring = ring, .create = true};
	struct vault *v = NULL;
	g_autofree char *err = NULL;
	must(vault_open_with(&o, &v, &err), "passphrase keyring", err);
	vault_close(v);
	double t0 = now_s();
	o.create = false;
	must(vault_open_with(&o, &v, &err), "passphrase keyring", err);
	printf("opening a passphrase keyring (Argon2id, 3 passes, 256 MiB): %.2f s\n", now_s() - t0);
	vault_close(v);
}

int main(int argc, char **argv)
{
	int n_docs = argc > 1 ? (int)g_ascii_strtoll(argv[1], NULL, 10) : 2000;
	long long mbs = argc > 2 ? g_ascii_strtoll(argv[2], NULL, 10) : 16;
	if (n_docs < 1 || n_docs > 1000000 || mbs < 1 || mbs > 1024) {
		fprintf(stderr, "usage: bench_vault [N_DOCS 1..1000000] [MB 1..1024]\n");
		return 2;
	}
	bench_stream((size_t)mbs);
	g_autofree char *dir = g_dir_make_tmp("quire-bench-vault-XXXXXX", NULL);
	chmod(dir, 0711);
	g_autofree char *data = g_build_filename(dir, "data", NULL);
	g_autofree char *key = g_build_filename(dir, "kek.key", NULL);
	g_autofree char *err = NULL;
	struct pgembed *pg = NULL;
	struct db *db = NULL;
	struct vault *v = NULL;
	must(pgembed_start(data, "postgres", &pg, &err), "start PostgreSQL", err);
	must(db_connect(pgembed_conninfo(pg), &db, &err), "connect", err);
	int nm = 0;
	const struct migration *list = app_migrations(&nm);
	must(migrate_apply(db, list, nm, NULL, &err), "migrations", err);
	must(vault_keyfile_create(key, &err), "key file", err);
	must(vault_open(key, &v, &err), "vault", err);
	bench_rewrap(db, v, n_docs);
	bench_passphrase(dir);
	vault_close(v);
	db_close(db);
	pgembed_stop(pg);
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
