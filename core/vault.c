/* vault: envelope encryption with libsodium: data keys, payload boxes, streams, keyed
 * hashes, signatures and passwords. The key hierarchy's top (root key, subkeys, the
 * keyring and where it is kept) is in keyring.c. */
#include "core/vault.h"

#include "core/internal.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES

struct vault_dek {
	uint8_t *key;
};

struct vault_stream {
	crypto_secretstream_xchacha20poly1305_state *st; /* sodium_malloc'd */
	char *ad;
	bool sealing, finished;
};

enum qerr vault_sodium_ready(char **reterr)
{
	if (sodium_init() < 0)
		return qerr_set(reterr, QERR_INTERNAL, "libsodium could not be initialised");
	return QERR_OK;
}

bool vault_source_parse(const char *name, enum vault_source *ret)
{
	static const char *const names[] = {[VAULT_SOURCE_FILE] = "file", [VAULT_SOURCE_PASSPHRASE] = "passphrase",
	                                    [VAULT_SOURCE_CREDENTIAL] = "credential", [VAULT_SOURCE_COMMAND] = "command"};
	for (int i = VAULT_SOURCE_FILE; i < VAULT_SOURCE_COUNT; i++)
		if (name && strcmp(name, names[i]) == 0) {
			*ret = (enum vault_source)i;
			return true;
		}
	return false;
}

enum qerr vault_keyfile_create(const char *path, char **reterr)
{
	enum qerr e = vault_sodium_ready(reterr);
	return e ? e : kek_keyfile_create(path, reterr);
}

enum qerr vault_dek_new(struct vault_dek **ret, char **reterr)
{
	enum qerr e = vault_sodium_ready(reterr);
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

/* Associated data binding a ciphertext to its record. Payloads are sealed under their
 * document's own data key, which rotation never changes, so they bind key version 0;
 * wrapped data keys bind the keyring version they are wrapped under. */
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

enum qerr vault_dek_wrap(const struct vault *v, const struct vault_dek *dek, int64_t doc_id, int32_t version,
                         uint8_t **ret, size_t *ret_len, char **reterr)
{
	uint8_t *kek = sodium_malloc(VAULT_KEY_BYTES);
	if (!kek)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	enum qerr e = vault_version_key(v, version, kek, reterr);
	if (!e) {
		g_autofree char *ad = bind_ad(doc_id, "dek", version);
		seal_raw(kek, ad, dek->key, VAULT_KEY_BYTES, ret, ret_len);
	}
	sodium_free(kek);
	return e;
}

enum qerr vault_dek_unwrap(const struct vault *v, const uint8_t *wrapped, size_t len, int64_t doc_id,
                           int32_t key_version, struct vault_dek **ret, char **reterr)
{
	if (len != NONCE_BYTES + VAULT_KEY_BYTES + TAG_BYTES)
		return qerr_set(reterr, QERR_CRYPTO, "wrapped key of document %lld has a bad length", (long long)doc_id);
	struct vault_dek *dek = NULL;
	uint8_t *kek = sodium_malloc(VAULT_KEY_BYTES);
	enum qerr e = kek ? vault_dek_new(&dek, reterr) : qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	if (!e)
		e = vault_version_key(v, key_version, kek, reterr);
	if (!e) {
		g_autofree char *ad = bind_ad(doc_id, "dek", key_version);
		e = open_raw(kek, ad, wrapped, len, dek->key, reterr);
		if (e)
			qerr_set(reterr, e, "the data key of document %lld does not open with key version %d (moved from "
			                    "another row, or tampered with)",
			         (long long)doc_id, (int)key_version);
	}
	if (kek)
		sodium_free(kek);
	if (e) {
		vault_dek_free(dek);
		return e;
	}
	*ret = dek;
	return QERR_OK;
}

/* Layout 2 names its own prefix, so its associated data never equals a layout-1 text. */
static char *bind_row_ad(int64_t doc_id, const char *purpose, int32_t version)
{
	return g_strdup_printf("quire/v2 doc=%lld purpose=%s row=%d", (long long)doc_id, purpose, (int)version);
}

static enum qerr seal_box(const struct vault_dek *dek, const char *ad, const void *plain, size_t len, uint8_t **ret,
                          size_t *ret_len, char **reterr)
{
	if (len > VAULT_MAX_PAYLOAD)
		return qerr_set(reterr, QERR_TOO_LARGE, "payload of %zu bytes exceeds the vault limit", len);
	seal_raw(dek->key, ad, plain, len, ret, ret_len);
	return QERR_OK;
}

static enum qerr open_box(const struct vault_dek *dek, const char *ad, int64_t doc_id, const char *purpose,
                          const uint8_t *sealed, size_t len, struct vault_buf *ret, char **reterr)
{
	if (len < NONCE_BYTES + TAG_BYTES || len - NONCE_BYTES - TAG_BYTES > VAULT_MAX_PAYLOAD)
		return qerr_set(reterr, QERR_CRYPTO, "sealed %s of document %lld has a bad length", purpose,
		                (long long)doc_id);
	size_t plen = len - NONCE_BYTES - TAG_BYTES;
	uint8_t *out = sodium_malloc(plen + 1);
	if (!out)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory for %zu bytes", plen);
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

enum qerr vault_seal(const struct vault_dek *dek, int64_t doc_id, const char *purpose, const void *plain,
                     size_t len, uint8_t **ret, size_t *ret_len, char **reterr)
{
	g_autofree char *ad = bind_ad(doc_id, purpose, 0);
	return seal_box(dek, ad, plain, len, ret, ret_len, reterr);
}

enum qerr vault_unseal(const struct vault_dek *dek, int64_t doc_id, const char *purpose, const uint8_t *sealed,
                       size_t len, struct vault_buf *ret, char **reterr)
{
	g_autofree char *ad = bind_ad(doc_id, purpose, 0);
	return open_box(dek, ad, doc_id, purpose, sealed, len, ret, reterr);
}

enum qerr vault_seal_version(const struct vault_dek *dek, int64_t doc_id, const char *purpose, int32_t version,
                             const void *plain, size_t len, uint8_t **ret, size_t *ret_len, char **reterr)
{
	g_autofree char *ad = bind_row_ad(doc_id, purpose, version);
	return seal_box(dek, ad, plain, len, ret, ret_len, reterr);
}

enum qerr vault_unseal_version(const struct vault_dek *dek, int64_t doc_id, const char *purpose, int32_t version,
                               const uint8_t *sealed, size_t len, struct vault_buf *ret, char **reterr)
{
	g_autofree char *ad = bind_row_ad(doc_id, purpose, version);
	return open_box(dek, ad, doc_id, purpose, sealed, len, ret, reterr);
}

enum qerr vault_buf_alloc(size_t len, struct vault_buf *ret, char **reterr)
{
	uint8_t *p = sodium_malloc(len ? len : 1);
	if (!p)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	sodium_memzero(p, len ? len : 1);
	ret->data = p;
	ret->len = len;
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

static enum qerr stream_new(bool sealing, int64_t doc_id, const char *purpose, struct vault_stream **ret,
                            char **reterr)
{
	enum qerr e = vault_sodium_ready(reterr);
	if (e)
		return e;
	struct vault_stream *s = g_new0(struct vault_stream, 1);
	s->st = sodium_malloc(sizeof *s->st);
	if (!s->st) {
		g_free(s);
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	}
	s->ad = bind_ad(doc_id, purpose, 0);
	s->sealing = sealing;
	*ret = s;
	return QERR_OK;
}

void vault_stream_free(struct vault_stream *s)
{
	if (!s)
		return;
	if (s->st)
		sodium_free(s->st);
	g_free(s->ad);
	g_free(s);
}

enum qerr vault_stream_seal_start(const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                                  uint8_t header[VAULT_STREAM_HEADER_BYTES], struct vault_stream **ret,
                                  char **reterr)
{
	struct vault_stream *s = NULL;
	enum qerr e = stream_new(true, doc_id, purpose, &s, reterr);
	if (e)
		return e;
	crypto_secretstream_xchacha20poly1305_init_push(s->st, header, dek->key);
	*ret = s;
	return QERR_OK;
}

enum qerr vault_stream_seal_push(struct vault_stream *s, const void *chunk, size_t len, bool final, uint8_t *out,
                                 char **reterr)
{
	if (!s->sealing || s->finished || len > VAULT_STREAM_CHUNK)
		return qerr_set(reterr, QERR_INTERNAL, "stream misuse (sealing after the final chunk or oversized chunk)");
	uint8_t tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0;
	crypto_secretstream_xchacha20poly1305_push(s->st, out, NULL, chunk, len, (const uint8_t *)s->ad,
	                                           strlen(s->ad), tag);
	s->finished = final;
	return QERR_OK;
}

enum qerr vault_stream_open_start(const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                                  const uint8_t header[VAULT_STREAM_HEADER_BYTES], struct vault_stream **ret,
                                  char **reterr)
{
	struct vault_stream *s = NULL;
	enum qerr e = stream_new(false, doc_id, purpose, &s, reterr);
	if (e)
		return e;
	if (crypto_secretstream_xchacha20poly1305_init_pull(s->st, header, dek->key) != 0) {
		vault_stream_free(s);
		return qerr_set(reterr, QERR_CRYPTO, "sealed %s of document %lld has a bad stream header", purpose,
		                (long long)doc_id);
	}
	*ret = s;
	return QERR_OK;
}

enum qerr vault_stream_open_pull(struct vault_stream *s, const uint8_t *in, size_t in_len, uint8_t *out,
                                 size_t *ret_len, bool *ret_final, char **reterr)
{
	if (s->sealing || s->finished)
		return qerr_set(reterr, QERR_CRYPTO, "data after the final chunk of a stream (extended ciphertext)");
	if (in_len < VAULT_STREAM_ABYTES || in_len > VAULT_STREAM_CHUNK + VAULT_STREAM_ABYTES)
		return qerr_set(reterr, QERR_CRYPTO, "stream chunk has a bad length");
	unsigned long long n = 0;
	uint8_t tag = 0;
	if (crypto_secretstream_xchacha20poly1305_pull(s->st, out, &n, &tag, in, in_len, (const uint8_t *)s->ad,
	                                               strlen(s->ad)) != 0)
		return qerr_set(reterr, QERR_CRYPTO,
		                "stream chunk does not authenticate (wrong key, another record's data, reordered or "
		                "corrupted chunks)");
	s->finished = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
	*ret_len = (size_t)n;
	*ret_final = s->finished;
	return QERR_OK;
}

enum qerr vault_stream_seal(const struct vault_dek *dek, int64_t doc_id, const char *purpose, const void *plain,
                            size_t len, uint8_t **ret, size_t *ret_len, char **reterr)
{
	if (len > VAULT_MAX_PAYLOAD)
		return qerr_set(reterr, QERR_TOO_LARGE, "payload of %zu bytes exceeds the vault limit", len);
	size_t chunks = len / VAULT_STREAM_CHUNK + 1; /* the last chunk may be empty: it carries the final tag */
	size_t total = VAULT_STREAM_HEADER_BYTES + len + chunks * VAULT_STREAM_ABYTES;
	uint8_t *out = g_malloc(total);
	struct vault_stream *s = NULL;
	enum qerr e = vault_stream_seal_start(dek, doc_id, purpose, out, &s, reterr);
	size_t off = 0, at = VAULT_STREAM_HEADER_BYTES;
	for (size_t c = 0; !e && c < chunks; c++) {
		size_t n = MIN(VAULT_STREAM_CHUNK, len - off);
		e = vault_stream_seal_push(s, (const uint8_t *)plain + off, n, c + 1 == chunks, out + at, reterr);
		off += n;
		at += n + VAULT_STREAM_ABYTES;
	}
	vault_stream_free(s);
	if (e) {
		g_free(out);
		return e;
	}
	*ret = out;
	*ret_len = total;
	return QERR_OK;
}

enum qerr vault_stream_unseal(const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                              const uint8_t *sealed, size_t len, struct vault_buf *ret, char **reterr)
{
	if (len < VAULT_STREAM_HEADER_BYTES + VAULT_STREAM_ABYTES)
		return qerr_set(reterr, QERR_CRYPTO, "sealed %s of document %lld is truncated", purpose, (long long)doc_id);
	size_t body = len - VAULT_STREAM_HEADER_BYTES;
	size_t chunks = (body + VAULT_STREAM_CHUNK + VAULT_STREAM_ABYTES - 1) / (VAULT_STREAM_CHUNK + VAULT_STREAM_ABYTES);
	if (body - chunks * VAULT_STREAM_ABYTES > VAULT_MAX_PAYLOAD)
		return qerr_set(reterr, QERR_TOO_LARGE, "sealed %s exceeds the vault limit", purpose);
	uint8_t *out = sodium_malloc(body - chunks * VAULT_STREAM_ABYTES + 1);
	if (!out)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	struct vault_stream *s = NULL;
	enum qerr e = vault_stream_open_start(dek, doc_id, purpose, sealed, &s, reterr);
	size_t at = VAULT_STREAM_HEADER_BYTES, olen = 0;
	bool final = false;
	while (!e && at < len) {
		size_t in = MIN(VAULT_STREAM_CHUNK + VAULT_STREAM_ABYTES, len - at), n = 0;
		e = vault_stream_open_pull(s, sealed + at, in, out + olen, &n, &final, reterr);
		at += in;
		olen += n;
	}
	if (!e && !final)
		e = qerr_set(reterr, QERR_CRYPTO, "sealed %s of document %lld is truncated (no final chunk)", purpose,
		             (long long)doc_id);
	vault_stream_free(s);
	if (e) {
		sodium_free(out);
		return e;
	}
	out[olen] = 0;
	ret->data = out;
	ret->len = olen;
	return QERR_OK;
}

void vault_keyed_hash(const struct vault *v, const void *data, size_t len, uint8_t out[VAULT_HASH_BYTES])
{
	crypto_generichash(out, VAULT_HASH_BYTES, data, len, vault_subkey(v, SUBKEY_HASH), VAULT_KEY_BYTES);
}

struct vault_hash {
	crypto_generichash_state *st; /* sodium_malloc'd: it holds the keyed state */
	bool done;
};

enum qerr vault_hash_new(const struct vault *v, struct vault_hash **ret, char **reterr)
{
	struct vault_hash *h = g_new0(struct vault_hash, 1);
	h->st = sodium_malloc(sizeof *h->st);
	if (!h->st) {
		g_free(h);
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	}
	crypto_generichash_init(h->st, vault_subkey(v, SUBKEY_HASH), VAULT_KEY_BYTES, VAULT_HASH_BYTES);
	*ret = h;
	return QERR_OK;
}

void vault_hash_update(struct vault_hash *h, const void *data, size_t len)
{
	g_assert(!h->done);
	crypto_generichash_update(h->st, data, len);
}

enum qerr vault_hash_final(struct vault_hash *h, uint8_t out[VAULT_HASH_BYTES], char **reterr)
{
	if (h->done)
		return qerr_set(reterr, QERR_INTERNAL, "keyed hash finished twice");
	h->done = true;
	crypto_generichash_final(h->st, out, VAULT_HASH_BYTES);
	return QERR_OK;
}

void vault_hash_free(struct vault_hash *h)
{
	if (!h)
		return;
	if (h->st)
		sodium_free(h->st);
	g_free(h);
}

void vault_token_hash(const struct vault *v, const char *token, uint8_t out[VAULT_HASH_BYTES])
{
	crypto_generichash(out, VAULT_HASH_BYTES, (const uint8_t *)token, strlen(token), vault_subkey(v, SUBKEY_TOKEN),
	                   VAULT_KEY_BYTES);
}

void vault_token_new(char out[VAULT_TOKEN_CHARS + 1])
{
	uint8_t raw[32];
	randombytes_buf(raw, sizeof raw);
	sodium_bin2base64(out, VAULT_TOKEN_CHARS + 1, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof raw);
}

void vault_sign(const struct vault *v, const void *msg, size_t len, uint8_t sig[VAULT_SIG_BYTES])
{
	crypto_sign_detached(sig, NULL, msg, len, v->sign_sk);
}

void vault_sign_public(const struct vault *v, uint8_t pk[VAULT_PK_BYTES]) { memcpy(pk, v->sign_pk, VAULT_PK_BYTES); }

bool vault_sign_verify(const uint8_t pk[VAULT_PK_BYTES], const void *msg, size_t len,
                       const uint8_t sig[VAULT_SIG_BYTES])
{
	return sodium_init() >= 0 && crypto_sign_verify_detached(sig, msg, len, pk) == 0;
}

enum qerr vault_pw_hash(const char *password, unsigned long long ops, size_t mem, char **ret, char **reterr)
{
	enum qerr e = vault_sodium_ready(reterr);
	if (e)
		return e;
	char out[crypto_pwhash_STRBYTES];
	if (crypto_pwhash_str_alg(out, password, strlen(password), ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return qerr_set(reterr, QERR_NOMEM, "not enough memory to hash the password");
	*ret = g_strdup(out);
	return QERR_OK;
}

bool vault_pw_verify(const char *stored, const char *password)
{
	return sodium_init() >= 0 && crypto_pwhash_str_verify(stored, password, strlen(password)) == 0;
}

bool vault_pw_needs_rehash(const char *stored, unsigned long long ops, size_t mem)
{
	return crypto_pwhash_str_needs_rehash(stored, ops, mem) != 0;
}

bool vault_equal(const void *a, const void *b, size_t n) { return sodium_memcmp(a, b, n) == 0; }

void vault_digest(const void *data, size_t len, uint8_t *out, size_t out_len)
{
	g_assert(out_len >= crypto_generichash_BYTES_MIN && out_len <= crypto_generichash_BYTES_MAX);
	crypto_generichash(out, out_len, data, len, NULL, 0);
}
