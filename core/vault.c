/* vault: envelope encryption with libsodium. */
#include "core/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

enum { SUBKEY_WRAP = 1, SUBKEY_HASH = 2 };
static const char KDF_CONTEXT[crypto_kdf_CONTEXTBYTES] = {'q', 'u', 'i', 'r', 'e', 'k', 'e', 'k'};

struct vault {
	uint8_t *wrap_key; /* sodium_malloc'd */
	uint8_t *hash_key;
	int32_t version;
};

struct vault_dek {
	uint8_t *key;
};

static enum qerr sodium_ready(char **reterr)
{
	if (sodium_init() < 0)
		return qerr_set(reterr, QERR_INTERNAL, "libsodium could not be initialised");
	return QERR_OK;
}

enum qerr vault_keyfile_create(const char *path, char **reterr)
{
	enum qerr e = sodium_ready(reterr);
	if (e)
		return e;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return qerr_set(reterr, QERR_IO, "cannot create key file %s: %s", path, g_strerror(errno));
	uint8_t *key = sodium_malloc(VAULT_KEY_BYTES);
	if (!key) {
		close(fd);
		unlink(path);
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	}
	crypto_kdf_keygen(key);
	ssize_t n = write(fd, key, VAULT_KEY_BYTES);
	sodium_free(key);
	if (n != VAULT_KEY_BYTES || fsync(fd) != 0) {
		int err = errno;
		close(fd);
		unlink(path);
		return qerr_set(reterr, QERR_IO, "cannot write key file %s: %s", path, g_strerror(err));
	}
	close(fd);
	return QERR_OK;
}

static enum qerr read_keyfile(const char *path, uint8_t *key, char **reterr)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return qerr_set(reterr, QERR_KEY, "cannot open key file %s: %s", path, g_strerror(errno));
	struct stat st;
	enum qerr e = QERR_OK;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		e = qerr_set(reterr, QERR_KEY, "key file %s is not a regular file", path);
	else if (st.st_mode & 0077)
		e = qerr_set(reterr, QERR_KEY, "key file %s is accessible by group or others (mode %03o); run chmod 600 %s",
		             path, (unsigned)(st.st_mode & 0777), path);
	else if (st.st_size != VAULT_KEY_BYTES)
		e = qerr_set(reterr, QERR_KEY, "key file %s has %lld bytes, expected %d", path, (long long)st.st_size,
		             VAULT_KEY_BYTES);
	else if (read(fd, key, VAULT_KEY_BYTES) != VAULT_KEY_BYTES)
		e = qerr_set(reterr, QERR_KEY, "cannot read key file %s", path);
	close(fd);
	return e;
}

enum qerr vault_open(const char *keyfile, struct vault **ret, char **reterr)
{
	enum qerr e = sodium_ready(reterr);
	if (e)
		return e;
	uint8_t *kek = sodium_malloc(VAULT_KEY_BYTES);
	struct vault *v = g_new0(struct vault, 1);
	v->wrap_key = sodium_malloc(VAULT_KEY_BYTES);
	v->hash_key = sodium_malloc(VAULT_KEY_BYTES);
	v->version = 1;
	if (!kek || !v->wrap_key || !v->hash_key) {
		e = qerr_set(reterr, QERR_NOMEM, "out of secure memory");
		goto out;
	}
	e = read_keyfile(keyfile, kek, reterr);
	if (e)
		goto out;
	crypto_kdf_derive_from_key(v->wrap_key, VAULT_KEY_BYTES, SUBKEY_WRAP, KDF_CONTEXT, kek);
	crypto_kdf_derive_from_key(v->hash_key, VAULT_KEY_BYTES, SUBKEY_HASH, KDF_CONTEXT, kek);
out:
	if (kek)
		sodium_free(kek);
	if (e) {
		vault_close(v);
		return e;
	}
	*ret = v;
	return QERR_OK;
}

void vault_close(struct vault *v)
{
	if (!v)
		return;
	if (v->wrap_key)
		sodium_free(v->wrap_key);
	if (v->hash_key)
		sodium_free(v->hash_key);
	g_free(v);
}

int32_t vault_key_version(const struct vault *v) { return v->version; }

enum qerr vault_dek_new(struct vault_dek **ret, char **reterr)
{
	enum qerr e = sodium_ready(reterr);
	if (e)
		return e;
	struct vault_dek *dek = g_new0(struct vault_dek, 1);
	dek->key = sodium_malloc(VAULT_KEY_BYTES);
	if (!dek->key) {
		g_free(dek);
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	}
	crypto_aead_xchacha20poly1305_ietf_keygen(dek->key);
	*ret = dek;
	return QERR_OK;
}

void vault_dek_free(struct vault_dek *dek)
{
	if (!dek)
		return;
	if (dek->key)
		sodium_free(dek->key);
	g_free(dek);
}

static char *bind_ad(int64_t doc_id, const char *purpose, int32_t version)
{
	return g_strdup_printf("quire/v1 doc=%lld purpose=%s keyver=%d", (long long)doc_id, purpose, (int)version);
}

static void seal_raw(const uint8_t *key, const char *ad, const void *plain, size_t len, uint8_t **ret,
                     size_t *ret_len)
{
	size_t n = NONCE_BYTES + len + TAG_BYTES;
	uint8_t *out = g_malloc(n);
	randombytes_buf(out, NONCE_BYTES);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE_BYTES, &clen, plain, len, (const uint8_t *)ad,
	                                           strlen(ad), NULL, out, key);
	*ret = out;
	*ret_len = NONCE_BYTES + (size_t)clen;
}

static enum qerr open_raw(const uint8_t *key, const char *ad, const uint8_t *sealed, size_t len, uint8_t *out,
                          char **reterr)
{
	unsigned long long plen = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL, sealed + NONCE_BYTES, len - NONCE_BYTES,
	                                               (const uint8_t *)ad, strlen(ad), sealed, key) != 0)
		return qerr_set(reterr, QERR_CRYPTO,
		                "ciphertext does not authenticate (wrong key, another record's data, or corruption)");
	return QERR_OK;
}

enum qerr vault_dek_wrap(const struct vault *v, const struct vault_dek *dek, int64_t doc_id, uint8_t **ret,
                         size_t *ret_len, char **reterr)
{
	(void)reterr;
	g_autofree char *ad = bind_ad(doc_id, "dek", v->version);
	seal_raw(v->wrap_key, ad, dek->key, VAULT_KEY_BYTES, ret, ret_len);
	return QERR_OK;
}

enum qerr vault_dek_unwrap(const struct vault *v, const uint8_t *wrapped, size_t len, int64_t doc_id,
                           int32_t key_version, struct vault_dek **ret, char **reterr)
{
	if (key_version != v->version)
		return qerr_set(reterr, QERR_KEY, "document %lld is wrapped with key version %d, which is not loaded",
		                (long long)doc_id, (int)key_version);
	if (len != NONCE_BYTES + VAULT_KEY_BYTES + TAG_BYTES)
		return qerr_set(reterr, QERR_CRYPTO, "wrapped key of document %lld has a bad length", (long long)doc_id);
	struct vault_dek *dek = NULL;
	enum qerr e = vault_dek_new(&dek, reterr);
	if (e)
		return e;
	g_autofree char *ad = bind_ad(doc_id, "dek", key_version);
	e = open_raw(v->wrap_key, ad, wrapped, len, dek->key, reterr);
	if (e) {
		vault_dek_free(dek);
		return e;
	}
	*ret = dek;
	return QERR_OK;
}

enum qerr vault_seal(const struct vault_dek *dek, int64_t doc_id, const char *purpose, const void *plain,
                     size_t len, uint8_t **ret, size_t *ret_len, char **reterr)
{
	if (len > VAULT_MAX_PAYLOAD)
		return qerr_set(reterr, QERR_TOO_LARGE, "payload of %zu bytes exceeds the vault limit", len);
	g_autofree char *ad = bind_ad(doc_id, purpose, 0);
	seal_raw(dek->key, ad, plain, len, ret, ret_len);
	return QERR_OK;
}

enum qerr vault_unseal(const struct vault_dek *dek, int64_t doc_id, const char *purpose, const uint8_t *sealed,
                       size_t len, struct vault_buf *ret, char **reterr)
{
	if (len < NONCE_BYTES + TAG_BYTES || len - NONCE_BYTES - TAG_BYTES > VAULT_MAX_PAYLOAD)
		return qerr_set(reterr, QERR_CRYPTO, "sealed %s of document %lld has a bad length", purpose,
		                (long long)doc_id);
	size_t plen = len - NONCE_BYTES - TAG_BYTES;
	uint8_t *out = sodium_malloc(plen + 1);
	if (!out)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory for %zu bytes", plen);
	g_autofree char *ad = bind_ad(doc_id, purpose, 0);
	enum qerr e = open_raw(dek->key, ad, sealed, len, out, reterr);
	if (e) {
		sodium_free(out);
		return e;
	}
	out[plen] = 0; /* convenient for text payloads; not counted in len */
	ret->data = out;
	ret->len = plen;
	return QERR_OK;
}

void vault_buf_free(struct vault_buf *buf)
{
	if (!buf || !buf->data)
		return;
	sodium_free(buf->data);
	buf->data = NULL;
	buf->len = 0;
}

void vault_keyed_hash(const struct vault *v, const void *data, size_t len, uint8_t out[VAULT_HASH_BYTES])
{
	crypto_generichash(out, VAULT_HASH_BYTES, data, len, v->hash_key, VAULT_KEY_BYTES);
}
