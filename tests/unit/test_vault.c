/* Unit tests of core/vault: key sources, keyring versions, wrapping, streams, signatures, passwords. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/vault.h"

#define CHUNK_SEALED (VAULT_STREAM_CHUNK + VAULT_STREAM_ABYTES)

struct dir {
	char *path, *key, *ring;
};

static struct dir new_dir(void)
{
	struct dir d;
	d.path = g_dir_make_tmp("quire-vault-XXXXXX", NULL);
	d.key = g_build_filename(d.path, "kek.key", NULL);
	d.ring = g_build_filename(d.path, "keyring", NULL);
	return d;
}

static void dir_done(struct dir *d)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", d->path);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(d->path);
	g_free(d->key);
	g_free(d->ring);
}

static struct vault *open_file_vault(struct dir *d)
{
	if (!g_file_test(d->key, G_FILE_TEST_EXISTS))
		g_assert_cmpint(vault_keyfile_create(d->key, NULL), ==, QERR_OK);
	struct vault *v = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(vault_open(d->key, &v, &err), ==, QERR_OK);
	return v;
}

static void test_keyfile_errors(void)
{
	struct dir d = new_dir();
	struct vault *v = open_file_vault(&d);
	vault_close(v);
	g_autofree char *err = NULL;
	/* world-readable key file: refused with the fix in the message */
	g_assert_cmpint(g_chmod(d.key, 0644), ==, 0);
	g_assert_cmpint(vault_open(d.key, &v, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "readable or writable by group or others"));
	g_assert_nonnull(strstr(err, "chmod 600"));
	g_assert_cmpint(g_chmod(d.key, 0600), ==, 0);
	/* another installation's key file against this keyring */
	g_assert_cmpint(g_unlink(d.key), ==, 0);
	g_assert_cmpint(vault_keyfile_create(d.key, NULL), ==, QERR_OK);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(vault_open(d.key, &v, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "does not open with the key file"));
	/* a keyring readable by others is refused too */
	g_assert_cmpint(g_chmod(d.ring, 0640), ==, 0);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(vault_open(d.key, &v, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "chmod 600"));
	dir_done(&d);
}

static struct vault_options pass_options(struct dir *d, const char *pass, bool create)
{
	struct vault_options o = {.source = VAULT_SOURCE_PASSPHRASE, .passphrase = pass, .passphrase_len = strlen(pass),
	                          .keyring = d->ring, .create = create, .argon2_ops = 1, .argon2_mem = 8 << 20};
	return o;
}

static void test_passphrase(void)
{
	struct dir d = new_dir();
	struct vault *v = NULL, *w = NULL;
	g_autofree char *err = NULL;
	struct vault_options o = pass_options(&d, "short", true);
	g_assert_cmpint(vault_open_with(&o, &v, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "too short"));
	o = pass_options(&d, "correct horse battery staple", true);
	g_assert_cmpint(vault_open_with(&o, &v, NULL), ==, QERR_OK);
	/* the same passphrase opens it again and yields the same keys */
	o.create = false;
	g_assert_cmpint(vault_open_with(&o, &w, NULL), ==, QERR_OK);
	uint8_t a[VAULT_HASH_BYTES], b[VAULT_HASH_BYTES];
	vault_keyed_hash(v, "x", 1, a);
	vault_keyed_hash(w, "x", 1, b);
	g_assert_cmpmem(a, sizeof a, b, sizeof b);
	vault_close(w);
	/* a wrong one gives a clear error that does not repeat it */
	o = pass_options(&d, "incorrect horse battery", false);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(vault_open_with(&o, &w, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "wrong passphrase"));
	g_assert_null(strstr(err, "incorrect horse"));
	/* the keyring remembers its source */
	struct vault_options f = {.source = VAULT_SOURCE_FILE, .key_file = d.key, .keyring = d.ring};
	g_assert_cmpint(vault_keyfile_create(d.key, NULL), ==, QERR_OK);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(vault_open_with(&f, &w, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "sealed for a passphrase key"));
	vault_close(v);
	dir_done(&d);
}

static void test_credential(void)
{
	struct dir d = new_dir();
	struct vault_options o = {.source = VAULT_SOURCE_CREDENTIAL, .credential = "quire-kek", .keyring = d.ring,
	                          .create = true};
	struct vault *v = NULL;
	g_autofree char *err = NULL;
	g_unsetenv("CREDENTIALS_DIRECTORY");
	g_assert_cmpint(vault_open_with(&o, &v, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "CREDENTIALS_DIRECTORY"));
	g_autofree char *cred = g_build_filename(d.path, "quire-kek", NULL);
	g_assert_true(g_file_set_contents(cred, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", -1, NULL));
	g_setenv("CREDENTIALS_DIRECTORY", d.path, TRUE);
	g_assert_cmpint(vault_open_with(&o, &v, NULL), ==, QERR_OK);
	vault_close(v);
	g_assert_true(g_file_set_contents(cred, "not a key", -1, NULL));
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(vault_open_with(&o, &v, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "64 hexadecimal digits"));
	g_unsetenv("CREDENTIALS_DIRECTORY");
	dir_done(&d);
}

static void test_rotation_and_binding(void)
{
	struct dir d = new_dir();
	struct vault *v = open_file_vault(&d);
	struct vault_dek *dek = NULL, *back = NULL;
	g_assert_cmpint(vault_dek_new(&dek, NULL), ==, QERR_OK);
	uint8_t *w1 = NULL, *w2 = NULL;
	size_t l1 = 0, l2 = 0;
	g_assert_cmpint(vault_key_version(v), ==, 1);
	g_assert_cmpint(vault_dek_wrap(v, dek, 7, 1, &w1, &l1, NULL), ==, QERR_OK);
	int32_t ver = 0;
	g_assert_cmpint(vault_rotate(v, &ver, NULL), ==, QERR_OK);
	g_assert_cmpint(ver, ==, 2);
	g_assert_cmpint(vault_dek_wrap(v, dek, 7, 2, &w2, &l2, NULL), ==, QERR_OK);
	/* a second handle opened before the rotation learns version 2 from the file */
	struct vault *other = NULL;
	g_assert_cmpint(vault_open(d.key, &other, NULL), ==, QERR_OK);
	g_assert_cmpint(vault_dek_unwrap(other, w2, l2, 7, 2, &back, NULL), ==, QERR_OK);
	vault_dek_free(back);
	/* the key version is bound: a version-1 wrapping claimed as version 2 is refused */
	g_assert_cmpint(vault_dek_unwrap(v, w1, l1, 7, 2, &back, NULL), ==, QERR_CRYPTO);
	/* and the document id: the wrapped key of document 7 does not open as document 8's */
	g_assert_cmpint(vault_dek_unwrap(v, w2, l2, 8, 2, &back, NULL), ==, QERR_CRYPTO);
	/* the newest version cannot be retired; an older one can, and is then gone for good */
	g_assert_cmpint(vault_retire(v, 2, NULL), ==, QERR_CONFLICT);
	g_assert_cmpint(vault_retire(v, 1, NULL), ==, QERR_OK);
	/* another process notices a retirement within a second */
	g_usleep(1100000);
	g_autofree char *err = NULL;
	g_assert_cmpint(vault_dek_unwrap(other, w1, l1, 7, 1, &back, &err), ==, QERR_KEY);
	g_assert_nonnull(strstr(err, "not in the keyring"));
	g_assert_false(vault_has_version(v, 1));
	vault_close(other);
	g_free(w1);
	g_free(w2);
	vault_dek_free(dek);
	vault_close(v);
	dir_done(&d);
}

static uint8_t *pattern(size_t n)
{
	uint8_t *p = g_malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + 7);
	return p;
}

static enum qerr unseal(struct vault_dek *dek, const uint8_t *s, size_t n)
{
	struct vault_buf out = {0};
	enum qerr e = vault_stream_unseal(dek, 5, "original", s, n, &out, NULL);
	vault_buf_free(&out);
	return e;
}

static void test_stream(void)
{
	struct vault_dek *dek = NULL;
	g_assert_cmpint(vault_dek_new(&dek, NULL), ==, QERR_OK);
	size_t sizes[] = {0, 1, VAULT_STREAM_CHUNK, 3 * VAULT_STREAM_CHUNK + 123};
	for (size_t k = 0; k < G_N_ELEMENTS(sizes); k++) {
		g_autofree uint8_t *plain = pattern(sizes[k]);
		g_autofree uint8_t *s = NULL;
		size_t n = 0;
		g_assert_cmpint(vault_stream_seal(dek, 5, "original", plain, sizes[k], &s, &n, NULL), ==, QERR_OK);
		struct vault_buf out = {0};
		g_assert_cmpint(vault_stream_unseal(dek, 5, "original", s, n, &out, NULL), ==, QERR_OK);
		g_assert_cmpmem(out.data, out.len, plain, sizes[k]);
		vault_buf_free(&out);
		/* bound to the record: another document or purpose does not open it */
		g_assert_cmpint(vault_stream_unseal(dek, 6, "original", s, n, &out, NULL), ==, QERR_CRYPTO);
		g_assert_cmpint(vault_stream_unseal(dek, 5, "text", s, n, &out, NULL), ==, QERR_CRYPTO);
	}
	size_t len = 3 * VAULT_STREAM_CHUNK + 123;
	g_autofree uint8_t *plain = pattern(len);
	g_autofree uint8_t *s = NULL;
	size_t n = 0;
	g_assert_cmpint(vault_stream_seal(dek, 5, "original", plain, len, &s, &n, NULL), ==, QERR_OK);
	g_assert_cmpuint(n, ==, VAULT_STREAM_HEADER_BYTES + 3 * CHUNK_SEALED + 123 + VAULT_STREAM_ABYTES);
	/* truncated: at a chunk boundary (the final chunk missing), inside a chunk, header only */
	g_assert_cmpint(unseal(dek, s, VAULT_STREAM_HEADER_BYTES + 3 * CHUNK_SEALED), ==, QERR_CRYPTO);
	g_assert_cmpint(unseal(dek, s, n - 1), ==, QERR_CRYPTO);
	g_assert_cmpint(unseal(dek, s, VAULT_STREAM_HEADER_BYTES), ==, QERR_CRYPTO);
	/* reordered: chunks 1 and 2 swapped */
	g_autofree uint8_t *swapped = g_memdup2(s, n);
	memcpy(swapped + VAULT_STREAM_HEADER_BYTES, s + VAULT_STREAM_HEADER_BYTES + CHUNK_SEALED, CHUNK_SEALED);
	memcpy(swapped + VAULT_STREAM_HEADER_BYTES + CHUNK_SEALED, s + VAULT_STREAM_HEADER_BYTES, CHUNK_SEALED);
	g_assert_cmpint(unseal(dek, swapped, n), ==, QERR_CRYPTO);
	/* extended: bytes, or a whole copied chunk, after the final chunk */
	g_autofree uint8_t *longer = g_malloc(n + CHUNK_SEALED);
	memcpy(longer, s, n);
	memcpy(longer + n, s + VAULT_STREAM_HEADER_BYTES, CHUNK_SEALED);
	g_assert_cmpint(unseal(dek, longer, n + 20), ==, QERR_CRYPTO);
	g_assert_cmpint(unseal(dek, longer, n + CHUNK_SEALED), ==, QERR_CRYPTO);
	/* a flipped bit anywhere */
	s[n / 2] ^= 1;
	g_assert_cmpint(unseal(dek, s, n), ==, QERR_CRYPTO);
	vault_dek_free(dek);
}

static void test_subkeys_signatures_passwords(void)
{
	struct dir d = new_dir();
	struct vault *v = open_file_vault(&d);
	uint8_t a[VAULT_HASH_BYTES], b[VAULT_HASH_BYTES];
	vault_keyed_hash(v, "qt_abc", 6, a);
	vault_token_hash(v, "qt_abc", b);
	g_assert_false(vault_equal(a, b, sizeof a)); /* separate subkeys for separate purposes */
	/* the keyed hash of content given in pieces equals the one of the whole */
	struct vault_hash *h = NULL;
	g_assert_cmpint(vault_hash_new(v, &h, NULL), ==, QERR_OK);
	vault_hash_update(h, "qt_", 3);
	vault_hash_update(h, "", 0);
	vault_hash_update(h, "abc", 3);
	g_assert_cmpint(vault_hash_final(h, b, NULL), ==, QERR_OK);
	g_assert_true(vault_equal(a, b, sizeof a));
	g_assert_cmpint(vault_hash_final(h, b, NULL), ==, QERR_INTERNAL);
	vault_hash_free(h);
	vault_hash_free(NULL);
	char tok1[VAULT_TOKEN_CHARS + 1], tok2[VAULT_TOKEN_CHARS + 1];
	vault_token_new(tok1);
	vault_token_new(tok2);
	g_assert_cmpuint(strlen(tok1), ==, VAULT_TOKEN_CHARS);
	g_assert_cmpstr(tok1, !=, tok2);
	uint8_t pk[VAULT_PK_BYTES], sig[VAULT_SIG_BYTES];
	vault_sign_public(v, pk);
	vault_sign(v, "checkpoint", 10, sig);
	g_assert_true(vault_sign_verify(pk, "checkpoint", 10, sig));
	g_assert_false(vault_sign_verify(pk, "checkpoinT", 10, sig));
	char *hash = NULL;
	g_assert_cmpint(vault_pw_hash("hunter2hunter2", 1, 8 << 20, &hash, NULL), ==, QERR_OK);
	g_assert_true(g_str_has_prefix(hash, "$argon2id$"));
	g_assert_true(vault_pw_verify(hash, "hunter2hunter2"));
	g_assert_false(vault_pw_verify(hash, "hunter2hunter3"));
	g_assert_false(vault_pw_needs_rehash(hash, 1, 8 << 20));
	g_assert_true(vault_pw_needs_rehash(hash, 2, 8 << 20));
	g_free(hash);
	vault_close(v);
	dir_done(&d);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vault/keyfile/errors", test_keyfile_errors);
	g_test_add_func("/vault/passphrase", test_passphrase);
	g_test_add_func("/vault/credential", test_credential);
	g_test_add_func("/vault/keyring/rotation-and-binding", test_rotation_and_binding);
	g_test_add_func("/vault/stream/tampering", test_stream);
	g_test_add_func("/vault/subkeys-signatures-passwords", test_subkeys_signatures_passwords);
	return g_test_run();
}
