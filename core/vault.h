/* vault: encryption at rest and every key Quire holds.
 *
 * Key hierarchy:
 *   root key-encryption key (KEK), from one of four sources: a key file
 *     (32 random bytes, refused if group or others may read it), a passphrase
 *     stretched with Argon2id (salt and parameters pinned in the keyring
 *     header), a systemd credential ($CREDENTIALS_DIRECTORY/<name>), or an
 *     external command that prints it (a KMS or HSM client);
 *   subkeys of the root, derived with crypto_kdf, one per purpose: sealing the
 *     keyring, keyed hashes for dedupe, hashing API tokens, the Ed25519 seed
 *     that signs audit checkpoints;
 *   the keyring: numbered wrapping-key versions (random 256-bit keys),
 *     sealed as one blob under the keyring subkey. `keys rotate` adds a
 *     version, `keys retire` destroys one. The blob is kept either in a store
 *     (struct vault_store: the database, so that every host sharing it sees a
 *     rotation or retirement at once while each holds only the KEK), or in a
 *     file next to the key (one host; destroying a version there also defeats
 *     copies of the database taken before). A store that holds no keyring yet
 *     imports the keyring file once, if there is one;
 *   per-document data keys (DEKs), random, stored wrapped under one keyring
 *     version, the wrapping binding document id and key version.
 *
 * Payloads are sealed under the DEK: small ones with XChaCha20-Poly1305
 * (nonce || ciphertext || tag), originals with crypto_secretstream in chunks
 * (header || chunk...), so truncation, reordering and appended data are
 * detected. Every ciphertext binds "doc id, purpose" (and, for wrapped keys,
 * the key version) as associated data, so one moved to another row or purpose
 * fails to open. Boxes sealed with vault_seal_version() also bind the payload
 * row's version (layout 2), so an older version of a result copied over a
 * newer one fails too; vault_seal() is the layout-1 form, still read for boxes
 * written before that. Keys and plaintexts live in sodium_malloc'd memory (not
 * swapped, not in core dumps) and are wiped when freed. No key, plaintext or
 * passphrase ever appears in an error message.
 *
 * A vault handle may be shared by threads: the keyring cache reloads itself
 * (under a lock) when asked for a version it has not seen, so a version added
 * by another process or host is found instead of failing. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

#define VAULT_KEY_BYTES 32
#define VAULT_HASH_BYTES 32
#define VAULT_SIG_BYTES 64
#define VAULT_PK_BYTES 32
#define VAULT_MAX_PAYLOAD ((size_t)1 << 30)
#define VAULT_MAX_VERSIONS 1024
/* Secretstream framing: a header, then chunks of at most VAULT_STREAM_CHUNK
 * plaintext bytes, each VAULT_STREAM_ABYTES longer once sealed. */
#define VAULT_STREAM_HEADER_BYTES 24
#define VAULT_STREAM_ABYTES 17
#define VAULT_STREAM_CHUNK 65536
#define VAULT_TOKEN_CHARS 43 /* base64url of 32 random bytes, without padding */

struct vault;
struct vault_dek;
struct vault_stream;
struct vault_hash;

enum vault_source {
	VAULT_SOURCE_FILE = 1,
	VAULT_SOURCE_PASSPHRASE,
	VAULT_SOURCE_CREDENTIAL,
	VAULT_SOURCE_COMMAND,
	VAULT_SOURCE_COUNT
};

/* Where the sealed keyring is kept instead of a file: one blob with a generation number that
 * each write increases, written only if nobody wrote in between (compare and swap). The
 * callbacks are called with the vault's keyring lock held, never concurrently for one vault. */
struct vault_store {
	/* Reads the blob: *ret (g_free), *ret_len and *ret_generation; QERR_NOT_FOUND when none is stored. */
	enum qerr (*read)(void *ctx, uint8_t **ret, size_t *ret_len, int64_t *ret_generation, char **reterr);
	/* Stores the blob if the stored generation is still generation (0: nothing stored yet), as
	 * generation + 1; QERR_CONFLICT when it is not. */
	enum qerr (*write)(void *ctx, const uint8_t *data, size_t len, int64_t generation, char **reterr);
	void *ctx;         /* borrowed: it outlives the vault */
	const char *where; /* for messages, e.g. "in the database" */
};

struct vault_options {
	enum vault_source source;
	const char *key_file;   /* VAULT_SOURCE_FILE */
	const char *passphrase; /* VAULT_SOURCE_PASSPHRASE: borrowed; the caller wipes it */
	size_t passphrase_len;
	const char *credential; /* VAULT_SOURCE_CREDENTIAL: file name in $CREDENTIALS_DIRECTORY */
	const char *command;    /* VAULT_SOURCE_COMMAND: command line (no shell) that prints the key */
	const char *keyring;    /* path of the keyring file (with a store: the file imported once, if any) */
	const struct vault_store *store; /* NULL: the keyring is the file; copied, its ctx borrowed */
	bool create;            /* create the keyring (version 1) when it does not exist */
	/* Argon2id cost, used only when a passphrase keyring is created (0: moderate). */
	unsigned long long argon2_ops;
	size_t argon2_mem;
};

/* Plaintext in guarded memory; free with vault_buf_free(), which wipes it. */
struct vault_buf {
	uint8_t *data;
	size_t len;
};

/* Parses "file", "passphrase", "credential" or "command"; false for anything else. */
bool vault_source_parse(const char *name, enum vault_source *ret);

/* Creates a new random key file at path with mode 0600; refuses to overwrite. */
enum qerr vault_keyfile_create(const char *path, char **reterr) QUIRE_MUST_CHECK;
/* Opens the vault described by o. QERR_KEY with a message naming the cause for a
 * missing or unsafe key file, a wrong passphrase, a missing credential or a keyring
 * that does not open. *ret is freed with vault_close(). */
enum qerr vault_open_with(const struct vault_options *o, struct vault **ret, char **reterr) QUIRE_MUST_CHECK;
/* Shorthand: key-file source, keyring "keyring" next to the key file, created if missing. */
enum qerr vault_open(const char *keyfile, struct vault **ret, char **reterr) QUIRE_MUST_CHECK;
void vault_close(struct vault *v);
/* How vault_open_with() found the keyring: already there, imported from the keyring file
 * into the store (the file is then renamed <keyring>.imported, to be destroyed once a backup
 * holds the store), or created. */
enum vault_ring_origin { VAULT_RING_FOUND, VAULT_RING_IMPORTED, VAULT_RING_CREATED, VAULT_RING_ORIGIN_COUNT };
enum vault_ring_origin vault_ring_origin(const struct vault *v);
/* Where the keyring is kept, for messages (borrowed): "in the database", or the file's path. */
const char *vault_ring_where(const struct vault *v);
/* The generation of the keyring in the store as this handle last read or wrote it, when its
 * seal authenticates it (a keyring sealed by this version of quire); 0 for a keyring file or
 * one sealed before generations were. Signed into the audit witness, so that a keyring rolled
 * back in the database is caught (core/witness.h). */
int64_t vault_ring_generation(const struct vault *v);
/* The newest wrapping-key version in the keyring. */
int32_t vault_key_version(const struct vault *v);
/* Whether the keyring holds version (re-reading the file when it is not cached). */
bool vault_has_version(const struct vault *v, int32_t version);

/* Adds a new random wrapping-key version to the keyring; *ret_version receives it. */
enum qerr vault_rotate(struct vault *v, int32_t *ret_version, char **reterr) QUIRE_MUST_CHECK;
/* Destroys a version in the keyring (the newest one is refused). Data keys still
 * wrapped under it become unrecoverable: check first that none is. */
enum qerr vault_retire(struct vault *v, int32_t version, char **reterr) QUIRE_MUST_CHECK;

/* A fresh random DEK; free with vault_dek_free(). */
enum qerr vault_dek_new(struct vault_dek **ret, char **reterr) QUIRE_MUST_CHECK;
void vault_dek_free(struct vault_dek *dek);
/* Wraps dek for document doc_id under keyring version; *ret (g_free) and *ret_len receive it. */
enum qerr vault_dek_wrap(const struct vault *v, const struct vault_dek *dek, int64_t doc_id, int32_t version,
                         uint8_t **ret, size_t *ret_len, char **reterr) QUIRE_MUST_CHECK;
/* Unwraps; QERR_KEY when the version is not in the keyring, QERR_CRYPTO when it does not authenticate. */
enum qerr vault_dek_unwrap(const struct vault *v, const uint8_t *wrapped, size_t len, int64_t doc_id,
                           int32_t key_version, struct vault_dek **ret, char **reterr) QUIRE_MUST_CHECK;

/* Seals len bytes for (doc_id, purpose); *ret (g_free) holds nonce || ciphertext || tag. */
enum qerr vault_seal(const struct vault_dek *dek, int64_t doc_id, const char *purpose, const void *plain,
                     size_t len, uint8_t **ret, size_t *ret_len, char **reterr) QUIRE_MUST_CHECK;
/* Opens a sealed payload; *ret is guarded plaintext (vault_buf_free). QERR_CRYPTO when it does not authenticate. */
enum qerr vault_unseal(const struct vault_dek *dek, int64_t doc_id, const char *purpose, const uint8_t *sealed,
                       size_t len, struct vault_buf *ret, char **reterr) QUIRE_MUST_CHECK;
/* Seals len bytes for (doc_id, purpose, row version): layout 2, which also binds the version of the
 * payload row it is stored in. *ret (g_free) holds nonce || ciphertext || tag. */
enum qerr vault_seal_version(const struct vault_dek *dek, int64_t doc_id, const char *purpose, int32_t version,
                             const void *plain, size_t len, uint8_t **ret, size_t *ret_len, char **reterr)
	QUIRE_MUST_CHECK;
/* Opens a layout-2 box stored at row version (vault_buf_free); QERR_CRYPTO when it does not authenticate. */
enum qerr vault_unseal_version(const struct vault_dek *dek, int64_t doc_id, const char *purpose, int32_t version,
                               const uint8_t *sealed, size_t len, struct vault_buf *ret, char **reterr)
	QUIRE_MUST_CHECK;
/* Guarded, zeroed memory of len bytes for plaintext the caller fills (vault_buf_free). */
enum qerr vault_buf_alloc(size_t len, struct vault_buf *ret, char **reterr) QUIRE_MUST_CHECK;
void vault_buf_free(struct vault_buf *buf);

/* Secretstream, whole buffers: *ret (g_free) is header || chunks; the last chunk carries the final tag. */
enum qerr vault_stream_seal(const struct vault_dek *dek, int64_t doc_id, const char *purpose, const void *plain,
                            size_t len, uint8_t **ret, size_t *ret_len, char **reterr) QUIRE_MUST_CHECK;
/* Opens a whole stream into guarded memory. QERR_CRYPTO for a forged, reordered, truncated
 * (no final chunk) or extended (bytes after the final chunk) stream. */
enum qerr vault_stream_unseal(const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                              const uint8_t *sealed, size_t len, struct vault_buf *ret, char **reterr)
	QUIRE_MUST_CHECK;
/* Incremental sealing for large inputs: start writes the header; each push seals one chunk of
 * at most VAULT_STREAM_CHUNK bytes into out (len + VAULT_STREAM_ABYTES bytes). Free with vault_stream_free(). */
enum qerr vault_stream_seal_start(const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                                  uint8_t header[VAULT_STREAM_HEADER_BYTES], struct vault_stream **ret,
                                  char **reterr) QUIRE_MUST_CHECK;
enum qerr vault_stream_seal_push(struct vault_stream *s, const void *chunk, size_t len, bool final, uint8_t *out,
                                 char **reterr) QUIRE_MUST_CHECK;
/* Incremental opening: each pull opens one sealed chunk (in_len <= VAULT_STREAM_CHUNK + ABYTES)
 * into out (in_len - ABYTES bytes); *ret_final tells whether it was the last. */
enum qerr vault_stream_open_start(const struct vault_dek *dek, int64_t doc_id, const char *purpose,
                                  const uint8_t header[VAULT_STREAM_HEADER_BYTES], struct vault_stream **ret,
                                  char **reterr) QUIRE_MUST_CHECK;
enum qerr vault_stream_open_pull(struct vault_stream *s, const uint8_t *in, size_t in_len, uint8_t *out,
                                 size_t *ret_len, bool *ret_final, char **reterr) QUIRE_MUST_CHECK;
void vault_stream_free(struct vault_stream *s);

/* Keyed hash (BLAKE2b under the dedupe subkey) for equality look-ups; never a plain hash of content. */
void vault_keyed_hash(const struct vault *v, const void *data, size_t len, uint8_t out[VAULT_HASH_BYTES]);
/* The same keyed hash over content that arrives in pieces: new, update as often as needed,
 * final. final writes out only on success and may be called once; free with
 * vault_hash_free() (which wipes the state) in every case. */
enum qerr vault_hash_new(const struct vault *v, struct vault_hash **ret, char **reterr) QUIRE_MUST_CHECK;
void vault_hash_update(struct vault_hash *h, const void *data, size_t len);
enum qerr vault_hash_final(struct vault_hash *h, uint8_t out[VAULT_HASH_BYTES], char **reterr) QUIRE_MUST_CHECK;
void vault_hash_free(struct vault_hash *h);
/* Keyed hash of an API token (its own subkey), the only form in which tokens are stored. */
void vault_token_hash(const struct vault *v, const char *token, uint8_t out[VAULT_HASH_BYTES]);
/* A new random token: VAULT_TOKEN_CHARS base64url characters and a NUL, into out. */
void vault_token_new(char out[VAULT_TOKEN_CHARS + 1]);

/* Ed25519 signature with the audit signing key (derived from the root; never leaves the vault). */
void vault_sign(const struct vault *v, const void *msg, size_t len, uint8_t sig[VAULT_SIG_BYTES]);
void vault_sign_public(const struct vault *v, uint8_t pk[VAULT_PK_BYTES]);
bool vault_sign_verify(const uint8_t pk[VAULT_PK_BYTES], const void *msg, size_t len,
                       const uint8_t sig[VAULT_SIG_BYTES]);

/* Password hashing (Argon2id, crypto_pwhash_str) at the given cost. *ret is g_free'd text. */
enum qerr vault_pw_hash(const char *password, unsigned long long ops, size_t mem, char **ret, char **reterr)
	QUIRE_MUST_CHECK;
bool vault_pw_verify(const char *stored, const char *password);
/* Whether stored was hashed with other parameters than (ops, mem). */
bool vault_pw_needs_rehash(const char *stored, unsigned long long ops, size_t mem);

/* Constant-time comparison of n bytes. */
bool vault_equal(const void *a, const void *b, size_t n);
/* An unkeyed BLAKE2b digest of n bytes (out_len 16..64), only for data that is not secret
 * itself, such as a ciphertext: never for plaintext (use vault_keyed_hash()). */
void vault_digest(const void *data, size_t len, uint8_t *out, size_t out_len);
