/* core/internal.h: declarations shared by core's files only.
 *
 * audit (audit.c, audit_verify.c): the chain hash and the checkpoint message.
 *
 * kek (kek.c): reading the root key-encryption key from where a host keeps it.
 * Sources (enum vault_source): a key file of 32 raw bytes (refused if group or
 * others may touch it), a systemd credential ($CREDENTIALS_DIRECTORY/<name>,
 * 32 raw bytes or 64 hex digits), or an external command that prints the key
 * (32 raw bytes or 64 hex digits, a trailing newline allowed) — a KMS or HSM
 * client, for example. The command runs without a shell, with its standard
 * input closed, for at most KEK_COMMAND_TIMEOUT_S seconds; at most
 * KEK_COMMAND_MAX_OUTPUT bytes of its output are read, and its exit status
 * must be 0. The passphrase source is Argon2id over the keyring's salt and
 * stays in the vault, which owns the keyring header.
 *
 * vault (vault.c, keyring.c): the vault handle both files work on. */
#pragma once

#include <stdint.h>

#include "core/audit.h"
#include "core/qerr.h"
#include "core/vault.h"

/* The chain hash of an entry: BLAKE2b-256(prev || canonical text of at and the seven fields). */
void audit_entry_hash(const uint8_t prev[AUDIT_HASH_BYTES], const char *at, const char *const fields[7],
                      uint8_t out[AUDIT_HASH_BYTES]);
/* The message a checkpoint's signature covers (g_free). */
char *audit_checkpoint_message(const struct audit_checkpoint *cp);

#define KEK_COMMAND_TIMEOUT_S 30
#define KEK_COMMAND_MAX_OUTPUT 130

/* Creates a new random key file at path with mode 0600; refuses to overwrite. */
enum qerr kek_keyfile_create(const char *path, char **reterr) QUIRE_MUST_CHECK;
/* Reads the key of a file, credential or command source into key (VAULT_KEY_BYTES, the
 * caller's guarded memory). QERR_KEY with a message naming the cause; the key never
 * appears in it. */
enum qerr kek_read(const struct vault_options *o, uint8_t *key, char **reterr) QUIRE_MUST_CHECK;

/* vault (vault.c, keyring.c): the handle both files work on. */
#include <glib.h>
#include <stdbool.h>

#define VAULT_RING_HEADER 40

/* Subkey ids under the root; never renumber. */
enum { SUBKEY_RING = 1, SUBKEY_HASH = 2, SUBKEY_TOKEN = 3, SUBKEY_SIGN = 4, SUBKEY_COUNT_ };

struct vault_ring {
	GMutex lock;
	int n;
	int64_t generation; /* of the stored keyring this copy was read from (store only) */
	int64_t sealed;     /* generation, when the seal authenticates it (0: not sealed in) */
	gint64 loaded_at;   /* monotonic microseconds of the last read */
	int32_t versions[VAULT_MAX_VERSIONS];
	uint8_t *keys; /* sodium_malloc'd, n * VAULT_KEY_BYTES */
};

struct vault {
	uint8_t *sub;     /* sodium_malloc'd subkeys, indexed by SUBKEY_* */
	uint8_t *sign_sk; /* sodium_malloc'd Ed25519 secret key */
	uint8_t sign_pk[VAULT_PK_BYTES];
	uint8_t header[VAULT_RING_HEADER];
	char *ring_path;     /* the keyring file (file mode), or the one imported once (store mode) */
	char *where;         /* where the keyring is, for messages */
	bool has_store;      /* the keyring is kept in store, not in the file */
	enum vault_ring_origin origin;
	struct vault_store store;
	struct vault_ring *ring; /* behind a pointer: reloading it leaves the handle logically const */
};

static inline const uint8_t *vault_subkey(const struct vault *v, int id)
{
	return v->sub + (size_t)id * VAULT_KEY_BYTES;
}

/* QERR_INTERNAL when libsodium cannot start. */
enum qerr vault_sodium_ready(char **reterr) QUIRE_MUST_CHECK;
/* Copies the wrapping key of version into out (VAULT_KEY_BYTES, guarded memory), reading
 * the keyring again when the version is not cached (keyring.c). */
enum qerr vault_version_key(const struct vault *v, int32_t version, uint8_t *out, char **reterr) QUIRE_MUST_CHECK;

/* Writes all of buf to fd (key and keyring files); false with errno set on failure. */
bool kek_write_all(int fd, const uint8_t *buf, size_t len);
