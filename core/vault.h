/* vault: encryption at rest.
 *
 * Envelope encryption: every document has its own random 256-bit data key
 * (DEK). Payloads (the original, extracted text, results) are sealed with
 * XChaCha20-Poly1305 under the DEK; the DEK itself is wrapped under a subkey of
 * the key-encryption key (KEK). Every ciphertext binds, as associated data, the
 * document id, the purpose and the key version, so a ciphertext moved to
 * another row or purpose fails to open. Keys and plaintexts live in
 * sodium_malloc'd memory and are wiped when freed.
 *
 * Sealed layout: 24-byte nonce || ciphertext || 16-byte tag.
 * Wrapped DEK layout: the same, over the 32-byte key. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

#define VAULT_KEY_BYTES 32
#define VAULT_HASH_BYTES 32
#define VAULT_MAX_PAYLOAD ((size_t)1 << 30)

struct vault;
struct vault_dek;

/* Plaintext in guarded memory; free with vault_buf_free(), which wipes it. */
struct vault_buf {
	uint8_t *data;
	size_t len;
};

/* Creates a new random key file at path with mode 0600; refuses to overwrite. */
enum qerr vault_keyfile_create(const char *path, char **reterr) QUIRE_MUST_CHECK;
/* Loads the KEK from a key file (refused if group or others can read it). Free with vault_close(). */
enum qerr vault_open(const char *keyfile, struct vault **ret, char **reterr) QUIRE_MUST_CHECK;
void vault_close(struct vault *v);
int32_t vault_key_version(const struct vault *v);

/* A fresh random DEK; free with vault_dek_free(). */
enum qerr vault_dek_new(struct vault_dek **ret, char **reterr) QUIRE_MUST_CHECK;
void vault_dek_free(struct vault_dek *dek);
/* Wraps dek for document doc_id; *ret (g_free) and *ret_len receive the wrapped key. */
enum qerr vault_dek_wrap(const struct vault *v, const struct vault_dek *dek, int64_t doc_id, uint8_t **ret,
                         size_t *ret_len, char **reterr) QUIRE_MUST_CHECK;
enum qerr vault_dek_unwrap(const struct vault *v, const uint8_t *wrapped, size_t len, int64_t doc_id,
                           int32_t key_version, struct vault_dek **ret, char **reterr) QUIRE_MUST_CHECK;

/* Seals len bytes for (doc_id, purpose); *ret (g_free) holds nonce || ciphertext || tag. */
enum qerr vault_seal(const struct vault_dek *dek, int64_t doc_id, const char *purpose, const void *plain,
                     size_t len, uint8_t **ret, size_t *ret_len, char **reterr) QUIRE_MUST_CHECK;
/* Opens a sealed payload; *ret is guarded plaintext (vault_buf_free). QERR_CRYPTO when it does not authenticate. */
enum qerr vault_unseal(const struct vault_dek *dek, int64_t doc_id, const char *purpose, const uint8_t *sealed,
                       size_t len, struct vault_buf *ret, char **reterr) QUIRE_MUST_CHECK;
void vault_buf_free(struct vault_buf *buf);

/* Keyed hash (BLAKE2b under a subkey of the KEK) for equality look-ups such as dedupe;
 * never a plain hash of content. */
void vault_keyed_hash(const struct vault *v, const void *data, size_t len, uint8_t out[VAULT_HASH_BYTES]);
