/* Unit tests of core/: result codes, JSON limits, vault. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"
#include "core/qerr.h"
#include "core/vault.h"

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

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qerr/groups", test_qerr_groups);
	g_test_add_func("/json/roundtrip", test_json_roundtrip);
	g_test_add_func("/json/limits", test_json_limits);
	g_test_add_func("/vault/roundtrip-and-binding", test_vault_roundtrip_and_binding);
	g_test_add_func("/vault/keyfile-checks", test_vault_keyfile_checks);
	g_test_add_func("/log/journal", test_log_journal);
	g_test_add_data_func("/log/journal/child-under", GINT_TO_POINTER(1), log_child);
	g_test_add_data_func("/log/journal/child-elsewhere", GINT_TO_POINTER(0), log_child);
	return g_test_run();
}
