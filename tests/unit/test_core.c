/* Unit tests of core/: result codes, JSON limits, vault, the Merkle tree, witness lines. */
#include <glib.h>
#include <glib/gstdio.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"
#include "core/merkle.h"
#include "core/qerr.h"
#include "core/vault.h"
#include "core/witness.h"

static void test_qerr_groups(void)
{
	g_assert_cmpint(qerr_group(QERR_OK), ==, QERR_GROUP_OK);
	g_assert_cmpint(qerr_group(QERR_DB_UNAVAILABLE), ==, QERR_GROUP_TRANSIENT);
	g_assert_cmpint(qerr_group(QERR_NOT_PDF), ==, QERR_GROUP_PERMANENT);
	g_assert_cmpint(qerr_group(QERR_INTERNAL), ==, QERR_GROUP_INTERNAL);
	for (int e = 0; e < QERR_COUNT; e++)
		g_assert_nonnull(qerr_str((enum qerr)e));
	g_assert_cmpstr(qerr_str((enum qerr)999), ==, "unknown error");
}

static void test_json_roundtrip(void)
{
	struct json *o = json_new_object();
	json_add_string(o, "s", "a\"b");
	json_add_number(o, "n", 1234.5);
	g_autofree char *text = json_format(o, false);
	json_free(o);
	struct json *p = NULL;
	g_assert_cmpint(json_parse(text, strlen(text), &p, NULL), ==, QERR_OK);
	g_assert_cmpstr(json_get_string(p, "s"), ==, "a\"b");
	double n = 0;
	g_assert_true(json_get_number(p, "n", &n));
	g_assert_cmpfloat(n, ==, 1234.5);
	json_free(p);
}

static void test_json_limits(void)
{
	GString *deep = g_string_new(NULL);
	for (int i = 0; i < 1000; i++)
		g_string_append_c(deep, '[');
	struct json *j = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(json_parse(deep->str, deep->len, &j, &err), ==, QERR_BAD_INPUT);
	g_assert_nonnull(strstr(err, "deeper"));
	g_string_free(deep, TRUE);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(json_parse("{\"a\":", 5, &j, &err), ==, QERR_BAD_INPUT);
	g_assert_nonnull(strstr(err, "invalid JSON"));
}

static char *new_keyfile(void)
{
	g_autofree char *dir = g_dir_make_tmp("quire-vault-XXXXXX", NULL);
	char *path = g_build_filename(dir, "kek.key", NULL);
	g_assert_cmpint(vault_keyfile_create(path, NULL), ==, QERR_OK);
	return path;
}

static void test_vault_roundtrip_and_binding(void)
{
	g_autofree char *key = new_keyfile();
	struct stat st;
	g_assert_cmpint(stat(key, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	struct vault *v = NULL;
	g_assert_cmpint(vault_open(key, &v, NULL), ==, QERR_OK);
	struct vault_dek *dek = NULL;
	g_assert_cmpint(vault_dek_new(&dek, NULL), ==, QERR_OK);
	const char *plain = "Patient: Jane Roe, DOB 1970-01-01";
	uint8_t *sealed = NULL;
	size_t slen = 0;
	g_assert_cmpint(vault_seal(dek, 7, "text", plain, strlen(plain), &sealed, &slen, NULL), ==, QERR_OK);
	g_assert_null(memmem(sealed, slen, "Jane", 4));
	struct vault_buf out = {0};
	g_assert_cmpint(vault_unseal(dek, 7, "text", sealed, slen, &out, NULL), ==, QERR_OK);
	g_assert_cmpmem(out.data, out.len, plain, strlen(plain));
	vault_buf_free(&out);
	/* moved to another record or purpose: refused */
	g_assert_cmpint(vault_unseal(dek, 8, "text", sealed, slen, &out, NULL), ==, QERR_CRYPTO);
	g_assert_cmpint(vault_unseal(dek, 7, "result", sealed, slen, &out, NULL), ==, QERR_CRYPTO);
	sealed[slen - 1] ^= 1;
	g_assert_cmpint(vault_unseal(dek, 7, "text", sealed, slen, &out, NULL), ==, QERR_CRYPTO);
	g_assert_cmpint(vault_unseal(dek, 7, "text", sealed, 3, &out, NULL), ==, QERR_CRYPTO);
	/* layout 2 binds the row version too, and never opens as layout 1 */
	uint8_t *boxed = NULL;
	size_t blen = 0;
	g_assert_cmpint(vault_seal_version(dek, 7, "result", 2, plain, strlen(plain), &boxed, &blen, NULL), ==, QERR_OK);
	g_assert_cmpint(vault_unseal_version(dek, 7, "result", 2, boxed, blen, &out, NULL), ==, QERR_OK);
	g_assert_cmpmem(out.data, out.len, plain, strlen(plain));
	vault_buf_free(&out);
	g_assert_cmpint(vault_unseal_version(dek, 7, "result", 1, boxed, blen, &out, NULL), ==, QERR_CRYPTO);
	g_assert_cmpint(vault_unseal_version(dek, 8, "result", 2, boxed, blen, &out, NULL), ==, QERR_CRYPTO);
	g_assert_cmpint(vault_unseal(dek, 7, "result", boxed, blen, &out, NULL), ==, QERR_CRYPTO);
	g_free(boxed);
	/* wrapped data key: bound to its document */
	uint8_t *wrapped = NULL;
	size_t wlen = 0;
	g_assert_cmpint(vault_dek_wrap(v, dek, 7, 1, &wrapped, &wlen, NULL), ==, QERR_OK);
	struct vault_dek *back = NULL;
	g_assert_cmpint(vault_dek_unwrap(v, wrapped, wlen, 7, 1, &back, NULL), ==, QERR_OK);
	vault_dek_free(back);
	g_assert_cmpint(vault_dek_unwrap(v, wrapped, wlen, 9, 1, &back, NULL), ==, QERR_CRYPTO);
	uint8_t h1[VAULT_HASH_BYTES], h2[VAULT_HASH_BYTES];
	vault_keyed_hash(v, "abc", 3, h1);
	vault_keyed_hash(v, "abd", 3, h2);
	g_assert_true(memcmp(h1, h2, sizeof h1) != 0);
	g_free(wrapped);
	g_free(sealed);
	vault_dek_free(dek);
	vault_close(v);
}

static void test_vault_keyfile_checks(void)
{
	g_autofree char *key = new_keyfile();
	g_autofree char *err = NULL;
	struct vault *v = NULL;
	g_assert_cmpint(vault_keyfile_create(key, &err), ==, QERR_IO); /* never overwrites */
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(g_chmod(key, 0644), ==, 0);
	g_assert_cmpint(vault_open(key, &v, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "chmod 600"));
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(vault_open("/nonexistent/kek.key", &v, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "/nonexistent/kek.key"));
}

/* In the child: JOURNAL_STREAM names stderr (journal) or another file; one line is logged. */
static void log_child(gconstpointer journal)
{
	if (!g_test_subprocess()) {
		g_test_skip("run by /log/journal");
		return;
	}
	struct stat st;
	g_assert_cmpint(fstat(GPOINTER_TO_INT(journal) ? STDERR_FILENO : STDIN_FILENO, &st), ==, 0);
	g_autofree char *v = g_strdup_printf("%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
	g_setenv("JOURNAL_STREAM", v, TRUE);
	log_warn("disk %d%% full", 93);
	log_debug("not shown");
}

/* Under the journal a line has no timestamp of its own, but its priority. */
static void test_log_journal(void)
{
	g_test_trap_subprocess("/log/journal/child-under", 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
	g_test_trap_assert_stderr_unmatched("*Z quire*");
	g_test_trap_assert_stderr("<4>quire warn: disk 93% full\n");
	g_test_trap_subprocess("/log/journal/child-elsewhere", 0, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_passed();
	g_test_trap_assert_stderr("20*-*-*T*:*:*.*Z quire warn: disk 93% full\n");
	g_assert_false(log_stream_is_journal(NULL, STDERR_FILENO));
	g_assert_false(log_stream_is_journal("", STDERR_FILENO));
	g_assert_false(log_stream_is_journal("12:34x", STDERR_FILENO));
	g_assert_false(log_stream_is_journal("garbage", STDERR_FILENO));
}

/* Leaves 0..n-1, each a distinct hash. */
static uint8_t *make_leaves(size_t n)
{
	uint8_t *l = g_malloc0(n * MERKLE_HASH_BYTES + 1);
	for (size_t i = 0; i < n; i++) {
		uint64_t v = i * 2654435761u + 1;
		crypto_generichash(l + i * MERKLE_HASH_BYTES, MERKLE_HASH_BYTES, (const uint8_t *)&v, sizeof v, NULL, 0);
	}
	return l;
}

static void h_tagged(uint8_t tag, const uint8_t *a, const uint8_t *b, uint8_t out[MERKLE_HASH_BYTES])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, MERKLE_HASH_BYTES);
	crypto_generichash_update(&st, &tag, 1);
	crypto_generichash_update(&st, a, MERKLE_HASH_BYTES);
	if (b)
		crypto_generichash_update(&st, b, MERKLE_HASH_BYTES);
	crypto_generichash_final(&st, out, MERKLE_HASH_BYTES);
}

/* The tree's shape, written out by hand for three leaves: ((a b) c), leaves and nodes tagged apart. */
static void test_merkle_shape(void)
{
	g_autofree uint8_t *l = make_leaves(3);
	uint8_t a[32], b[32], c[32], ab[32], want[32], got[32];
	h_tagged(0, l, NULL, a);
	h_tagged(0, l + 32, NULL, b);
	h_tagged(0, l + 64, NULL, c);
	h_tagged(1, a, b, ab);
	h_tagged(1, ab, c, want);
	merkle_root(l, 3, got);
	g_assert_cmpmem(got, 32, want, 32);
	merkle_root(l, 1, got);
	g_assert_cmpmem(got, 32, a, 32);
}

/* Every pair of sizes up to 40: the proof links the two roots, and nothing else does. */
static void test_merkle_consistency(void)
{
	const size_t max = 40;
	g_autofree uint8_t *l = make_leaves(max);
	uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_BYTES];
	for (size_t n = 1; n <= max; n++) {
		uint8_t rn[32];
		merkle_root(l, n, rn);
		for (size_t m = 1; m <= n; m++) {
			uint8_t rm[32], other[32];
			merkle_root(l, m, rm);
			size_t len = 0;
			merkle_consistency_proof(l, m, n, proof, &len);
			g_assert_cmpuint(len, <=, 2 * 6 + 2);
			g_assert_true(merkle_consistency_verify(m, n, rm, rn, (const uint8_t(*)[32])proof, len));
			if (m == n)
				continue;
			g_assert_false(merkle_consistency_verify(m, n, rn, rn, (const uint8_t(*)[32])proof, len));
			g_assert_false(merkle_consistency_verify(m + 1, n, rm, rn, (const uint8_t(*)[32])proof, len));
			g_assert_false(merkle_consistency_verify(m, n, rm, rn, (const uint8_t(*)[32])proof, len - 1));
			proof[len - 1][0] ^= 1;
			g_assert_false(merkle_consistency_verify(m, n, rm, rn, (const uint8_t(*)[32])proof, len));
			/* a tree whose first m leaves differ: the old root is not extended */
			memcpy(other, l, 32);
			l[0] ^= 1;
			merkle_root(l, n, other);
			l[0] ^= 1;
			merkle_consistency_proof(l, m, n, proof, &len);
			g_assert_false(merkle_consistency_verify(m, n, rm, other, (const uint8_t(*)[32])proof, len));
		}
	}
}

/* A witness line: what it signs comes back; any change to it fails the signature. */
static void test_witness_line(void)
{
	g_autofree char *dir = g_dir_make_tmp("quire-witness-XXXXXX", NULL);
	g_autofree char *key = g_build_filename(dir, "kek.key", NULL);
	g_autofree char *ring = g_build_filename(dir, "keyring", NULL);
	g_autofree char *path = g_build_filename(dir, WITNESS_FILE_NAME, NULL);
	struct vault *v = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(vault_keyfile_create(key, &err), ==, QERR_OK);
	g_assert_cmpint(vault_open(key, &v, &err), ==, QERR_OK);
	uint8_t pk[VAULT_PK_BYTES];
	vault_sign_public(v, pk);
	struct witness_head h = {.seq = 12, .id = 40, .n_ranges = 2, .ranges = {{3, 5}, {12, 12}}}, back;
	memset(h.hash, 0xab, sizeof h.hash);
	g_autofree char *line = witness_line_format(&h, v);
	g_assert_true(g_str_has_suffix(line, "\n"));
	line[strlen(line) - 1] = '\0';
	g_assert_cmpint(witness_line_parse(line, pk, &back, &err), ==, QERR_OK);
	g_assert_cmpint(back.seq, ==, 12);
	g_assert_cmpint(back.id, ==, 40);
	g_assert_cmpint(back.n_ranges, ==, 2);
	g_assert_cmpint(back.ranges[1].first, ==, 12);
	g_assert_cmpmem(back.hash, 32, h.hash, 32);
	g_assert_false(back.prepared);
	g_assert_cmpint(back.ring, ==, 0);
	char *covers = strstr(line, "covers=3");
	covers[7] = '1';
	g_assert_cmpint(witness_line_parse(line, pk, &back, &err), ==, QERR_CRYPTO);
	g_clear_pointer(&err, g_free);
	/* a prepared line with a keyring generation: both signed, so neither can be dropped */
	h.prepared = true;
	h.ring = 5;
	g_autofree char *prep = witness_line_format(&h, v);
	prep[strlen(prep) - 1] = '\0';
	g_assert_nonnull(strstr(prep, " state=prepared ring=5 "));
	g_assert_cmpint(witness_line_parse(prep, pk, &back, &err), ==, QERR_OK);
	g_assert_true(back.prepared);
	g_assert_cmpint(back.ring, ==, 5);
	g_autoptr(GString) cut = g_string_new(prep);
	g_string_replace(cut, " state=prepared", "", 1);
	g_assert_cmpint(witness_line_parse(cut->str, pk, &back, &err), ==, QERR_CRYPTO);
	g_clear_pointer(&err, g_free);
	g_string_assign(cut, prep);
	g_string_replace(cut, " ring=5", " ring=4", 1);
	g_assert_cmpint(witness_line_parse(cut->str, pk, &back, &err), ==, QERR_CRYPTO);
	g_clear_pointer(&err, g_free);
	/* the writer: lines appended, one cut short at the end is skipped */
	struct witness *w = witness_new(path, v, false);
	g_assert_cmpint(witness_prepare(w, 1, 2, 7, h.hash, &err), ==, QERR_OK);
	g_assert_cmpint(witness_record(w, 1, 2, 7, h.hash, false, &err), ==, QERR_OK);
	g_assert_cmpint(witness_record(w, 3, 3, 9, h.hash, true, &err), ==, QERR_OK);
	g_assert_cmpint(witness_prepare(w, 4, 4, 11, h.hash, &err), ==, QERR_OK);
	g_assert_cmpint(witness_withdraw(w, 4, 4, 11, h.hash, &err), ==, QERR_OK);
	witness_free(w);
	FILE *f = fopen(path, "a");
	fputs("quire-witness-v1 seq=4 id=", f);
	fclose(f);
	struct witness_head *heads = NULL;
	size_t n = 0;
	g_assert_cmpint(witness_read(path, pk, &heads, &n, &err), ==, QERR_OK);
	g_assert_cmpuint(n, ==, 5);
	g_assert_true(heads[0].prepared);
	g_assert_false(heads[1].prepared);
	g_assert_cmpint(heads[2].seq, ==, 3);
	g_assert_cmpint(heads[2].ranges[0].first, ==, 3);
	g_assert_true(heads[3].prepared && !heads[3].withdrawn);
	g_assert_true(heads[4].withdrawn && !heads[4].prepared);
	g_assert_cmpint(heads[4].id, ==, 11);
	g_free(heads);
	vault_close(v);
	g_remove(path);
	g_remove(ring);
	g_remove(key);
	g_rmdir(dir);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qerr/groups", test_qerr_groups);
	g_test_add_func("/json/roundtrip", test_json_roundtrip);
	g_test_add_func("/json/limits", test_json_limits);
	g_test_add_func("/vault/roundtrip-and-binding", test_vault_roundtrip_and_binding);
	g_test_add_func("/vault/keyfile-checks", test_vault_keyfile_checks);
	g_test_add_func("/log/journal", test_log_journal);
	g_test_add_func("/merkle/shape", test_merkle_shape);
	g_test_add_func("/merkle/consistency", test_merkle_consistency);
	g_test_add_func("/witness/line", test_witness_line);
	g_test_add_data_func("/log/journal/child-under", GINT_TO_POINTER(1), log_child);
	g_test_add_data_func("/log/journal/child-elsewhere", GINT_TO_POINTER(0), log_child);
	return g_test_run();
}
