/* vault: envelope encryption with libsodium.
 *
 * Keyring file layout (all integers little-endian):
 *   0  "QKR1"            magic
 *   4  source            1 byte (enum vault_source), then 3 zero bytes
 *   8  argon2 opslimit   u64 (0 unless the source is a passphrase)
 *   16 argon2 memlimit   u64
 *   24 salt              16 bytes
 *   40 nonce             24 bytes
 *   64 ciphertext        XChaCha20-Poly1305 of: u32 count, count x (u32 version, 32-byte key),
 *                        under the keyring subkey, the first 40 bytes as associated data
 * so the Argon2id parameters cannot be weakened without the keyring failing to open.
 * Updates go to a temporary file renamed over the old one, under a lock file. */
#include "core/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sodium.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define RING_HEADER 40
#define RING_FIXED (RING_HEADER + NONCE_BYTES)
#define RING_ENTRY (4 + VAULT_KEY_BYTES)
#define RING_MAX_FILE (RING_FIXED + 4 + VAULT_MAX_VERSIONS * RING_ENTRY + TAG_BYTES)
#define SALT_BYTES 16
#define MIN_PASSPHRASE 8
#define MAX_ARGON2_MEM ((unsigned long long)4 << 30)
#define RING_STALE_US 1000000 /* a version retired elsewhere stops working here within this */

/* Subkey ids under KDF_CONTEXT; never renumber. */
enum { SUBKEY_RING = 1, SUBKEY_HASH = 2, SUBKEY_TOKEN = 3, SUBKEY_SIGN = 4, SUBKEY_COUNT_ };
static const char KDF_CONTEXT[crypto_kdf_CONTEXTBYTES] = {'q', 'u', 'i', 'r', 'e', 'k', 'e', 'k'};

struct ring {
	GMutex lock;
	int n;
	gint64 loaded_at; /* monotonic microseconds of the last read of the file */
	int32_t versions[VAULT_MAX_VERSIONS];
	uint8_t *keys; /* sodium_malloc'd, n * VAULT_KEY_BYTES */
};

struct vault {
	uint8_t *sub;     /* sodium_malloc'd subkeys, indexed by SUBKEY_* */
	uint8_t *sign_sk; /* sodium_malloc'd Ed25519 secret key */
	uint8_t sign_pk[VAULT_PK_BYTES];
	uint8_t header[RING_HEADER];
	char *ring_path;
	struct ring *ring; /* behind a pointer: reloading it leaves the handle logically const */
};

struct vault_dek {
	uint8_t *key;
};

struct vault_stream {
	crypto_secretstream_xchacha20poly1305_state *st; /* sodium_malloc'd */
	char *ad;
	bool sealing, finished;
};

static const uint8_t *subkey(const struct vault *v, int id) { return v->sub + (size_t)id * VAULT_KEY_BYTES; }

static enum qerr sodium_ready(char **reterr)
{
	if (sodium_init() < 0)
		return qerr_set(reterr, QERR_INTERNAL, "libsodium could not be initialised");
	return QERR_OK;
}

bool vault_source_parse(const char *name, enum vault_source *ret)
{
	static const char *const names[] = {[VAULT_SOURCE_FILE] = "file", [VAULT_SOURCE_PASSPHRASE] = "passphrase",
	                                    [VAULT_SOURCE_CREDENTIAL] = "credential"};
	for (int i = VAULT_SOURCE_FILE; i < VAULT_SOURCE_COUNT; i++)
		if (name && strcmp(name, names[i]) == 0) {
			*ret = (enum vault_source)i;
			return true;
		}
	return false;
}

/* Writes all of buf; false with errno set on failure. */
static bool write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
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
	bool written = write_all(fd, key, VAULT_KEY_BYTES) && fsync(fd) == 0;
	int err = errno;
	sodium_free(key);
	close(fd);
	if (!written) {
		unlink(path);
		return qerr_set(reterr, QERR_IO, "cannot write key file %s: %s", path, g_strerror(err));
	}
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
		e = qerr_set(reterr, QERR_KEY,
		             "key file %s is readable or writable by group or others (mode %03o); refusing to use it: "
		             "run chmod 600 %s",
		             path, (unsigned)(st.st_mode & 0777), path);
	else if (st.st_size != VAULT_KEY_BYTES)
		e = qerr_set(reterr, QERR_KEY, "key file %s has %lld bytes, expected %d", path, (long long)st.st_size,
		             VAULT_KEY_BYTES);
	else if (read(fd, key, VAULT_KEY_BYTES) != VAULT_KEY_BYTES)
		e = qerr_set(reterr, QERR_KEY, "cannot read key file %s", path);
	close(fd);
	return e;
}

/* A credential holds the key as 32 raw bytes or 64 hex digits (a trailing newline allowed). */
static enum qerr read_credential(const char *name, uint8_t *key, char **reterr)
{
	const char *dir = g_getenv("CREDENTIALS_DIRECTORY");
	if (!dir || !dir[0])
		return qerr_set(reterr, QERR_KEY,
		                "vault.kek_source is \"credential\" but $CREDENTIALS_DIRECTORY is not set: run quire as a "
		                "systemd service with LoadCredential= or LoadCredentialEncrypted=%s:...",
		                name);
	if (!name[0] || strchr(name, '/'))
		return qerr_set(reterr, QERR_CONFIG, "vault.credential must be a plain file name, not \"%s\"", name);
	g_autofree char *path = g_build_filename(dir, name, NULL);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return qerr_set(reterr, QERR_KEY, "cannot open credential %s: %s", path, g_strerror(errno));
	uint8_t *buf = sodium_malloc(130);
	ssize_t n = buf ? read(fd, buf, 130) : -1;
	close(fd);
	enum qerr e = QERR_OK;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	size_t bin_len = 0;
	if (n == VAULT_KEY_BYTES)
		memcpy(key, buf, VAULT_KEY_BYTES);
	else if (n != 2 * VAULT_KEY_BYTES ||
	         sodium_hex2bin(key, VAULT_KEY_BYTES, (const char *)buf, (size_t)n, NULL, &bin_len, NULL) != 0 ||
	         bin_len != VAULT_KEY_BYTES)
		e = qerr_set(reterr, QERR_KEY, "credential %s must hold 32 bytes or 64 hexadecimal digits", path);
	if (buf)
		sodium_free(buf);
	return e;
}

static void put_u64(uint8_t *p, uint64_t x)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(x >> (8 * i));
}
static uint64_t get_u64(const uint8_t *p)
{
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = (x << 8) | p[i];
	return x;
}
static void put_u32(uint8_t *p, uint32_t x)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(x >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads the whole keyring file; *ret (g_free) is NULL with QERR_NOT_FOUND when absent. */
static enum qerr ring_read_file(const char *path, uint8_t **ret, size_t *ret_len, char **reterr)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return qerr_set(reterr, QERR_NOT_FOUND, "no keyring at %s", path);
	if (fd < 0)
		return qerr_set(reterr, QERR_KEY, "cannot open keyring %s: %s", path, g_strerror(errno));
	struct stat st;
	enum qerr e = QERR_OK;
	uint8_t *buf = NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		e = qerr_set(reterr, QERR_KEY, "keyring %s is not a regular file", path);
	else if (st.st_mode & 0077)
		e = qerr_set(reterr, QERR_KEY, "keyring %s is accessible by group or others (mode %03o): run chmod 600 %s",
		             path, (unsigned)(st.st_mode & 0777), path);
	else if (st.st_size < RING_FIXED + 4 + TAG_BYTES || st.st_size > RING_MAX_FILE)
		e = qerr_set(reterr, QERR_KEY, "keyring %s is damaged (%lld bytes)", path, (long long)st.st_size);
	if (!e) {
		buf = g_malloc((size_t)st.st_size);
		if (read(fd, buf, (size_t)st.st_size) != st.st_size || memcmp(buf, "QKR1", 4) != 0)
			e = qerr_set(reterr, QERR_KEY, "keyring %s is damaged (bad header)", path);
	}
	close(fd);
	if (e) {
		g_free(buf);
		return e;
	}
	*ret = buf;
	*ret_len = (size_t)st.st_size;
	return QERR_OK;
}

static void ring_clear(struct ring *r)
{
	if (r->keys)
		sodium_free(r->keys);
	r->keys = NULL;
	r->n = 0;
}

/* Opens the sealed part of a keyring file into r (replacing what it held). */
static enum qerr ring_decode(struct vault *v, const uint8_t *file, size_t len, struct ring *r, char **reterr)
{
	size_t clen = len - RING_FIXED, plen = clen - TAG_BYTES;
	uint8_t *plain = sodium_malloc(plen);
	if (!plain)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	unsigned long long got = 0;
	enum qerr e = QERR_OK;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &got, NULL, file + RING_FIXED, clen, file, RING_HEADER,
	                                               file + RING_HEADER, subkey(v, SUBKEY_RING)) != 0)
		e = QERR_CRYPTO;
	uint32_t n = e ? 0 : get_u32(plain);
	if (!e && (n == 0 || n > VAULT_MAX_VERSIONS || plen != 4 + (size_t)n * RING_ENTRY))
		e = qerr_set(reterr, QERR_KEY, "keyring %s is damaged (bad entry count)", v->ring_path);
	uint8_t *keys = e ? NULL : sodium_malloc((size_t)n * VAULT_KEY_BYTES);
	if (!e && !keys)
		e = qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	if (!e) {
		ring_clear(r);
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *ent = plain + 4 + (size_t)i * RING_ENTRY;
			r->versions[i] = (int32_t)get_u32(ent);
			memcpy(keys + (size_t)i * VAULT_KEY_BYTES, ent + 4, VAULT_KEY_BYTES);
		}
		r->keys = keys;
		r->n = (int)n;
	}
	sodium_free(plain);
	return e;
}

/* Seals r into a new keyring file at v->ring_path (atomically: temporary file, fsync, rename;
 * link instead of rename when exclusive, so a concurrent creator wins cleanly). */
static enum qerr ring_write(const struct vault *v, const struct ring *r, bool exclusive, char **reterr)
{
	size_t plen = 4 + (size_t)r->n * RING_ENTRY, flen = RING_FIXED + plen + TAG_BYTES;
	uint8_t *plain = sodium_malloc(plen);
	if (!plain)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	put_u32(plain, (uint32_t)r->n);
	for (int i = 0; i < r->n; i++) {
		put_u32(plain + 4 + (size_t)i * RING_ENTRY, (uint32_t)r->versions[i]);
		memcpy(plain + 4 + (size_t)i * RING_ENTRY + 4, r->keys + (size_t)i * VAULT_KEY_BYTES, VAULT_KEY_BYTES);
	}
	g_autofree uint8_t *file = g_malloc(flen);
	memcpy(file, v->header, RING_HEADER);
	randombytes_buf(file + RING_HEADER, NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(file + RING_FIXED, NULL, plain, plen, file, RING_HEADER, NULL,
	                                           file + RING_HEADER, subkey(v, SUBKEY_RING));
	sodium_free(plain);
	g_autofree char *tmp = g_strdup_printf("%s.tmp.%d", v->ring_path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return qerr_set(reterr, QERR_IO, "cannot write keyring %s: %s", tmp, g_strerror(errno));
	bool written = write_all(fd, file, flen) && fsync(fd) == 0;
	int err = errno;
	close(fd);
	int placed = !written ? -1 : exclusive ? link(tmp, v->ring_path) : rename(tmp, v->ring_path);
	if (placed != 0 && written)
		err = errno;
	unlink(tmp);
	if (placed != 0)
		return qerr_set(reterr, err == EEXIST ? QERR_CONFLICT : QERR_IO, "cannot write keyring %s: %s",
		                v->ring_path, g_strerror(err));
	g_autofree char *dir = g_path_get_dirname(v->ring_path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return QERR_OK;
}

/* Serialises keyring changes between processes. *ret_fd is closed to unlock. */
static enum qerr ring_lock(const struct vault *v, int *ret_fd, char **reterr)
{
	g_autofree char *path = g_strconcat(v->ring_path, ".lock", NULL);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) != 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return qerr_set(reterr, QERR_IO, "cannot lock keyring %s: %s", path, g_strerror(err));
	}
	*ret_fd = fd;
	return QERR_OK;
}

/* Re-reads the keyring file into the cache; the caller holds v->ring->lock. */
static enum qerr ring_reload(const struct vault *v, char **reterr)
{
	g_autofree uint8_t *file = NULL;
	size_t len = 0;
	enum qerr e = ring_read_file(v->ring_path, &file, &len, reterr);
	if (e == QERR_NOT_FOUND)
		return qerr_set(reterr, QERR_KEY, "the keyring %s has disappeared", v->ring_path);
	if (e)
		return e;
	if (memcmp(file, v->header, RING_HEADER) != 0)
		return qerr_set(reterr, QERR_KEY, "the keyring %s was replaced by one of another installation", v->ring_path);
	e = ring_decode((struct vault *)v, file, len, v->ring, reterr);
	if (!e)
		v->ring->loaded_at = g_get_monotonic_time();
	if (e == QERR_CRYPTO)
		e = qerr_set(reterr, QERR_KEY, "the keyring %s no longer opens with this key", v->ring_path);
	return e;
}

static void make_header(uint8_t h[RING_HEADER], enum vault_source src, uint64_t ops, uint64_t mem)
{
	memset(h, 0, RING_HEADER);
	memcpy(h, "QKR1", 4);
	h[4] = (uint8_t)src;
	put_u64(h + 8, ops);
	put_u64(h + 16, mem);
	if (src == VAULT_SOURCE_PASSPHRASE)
		randombytes_buf(h + 24, SALT_BYTES);
}

static enum qerr passphrase_root(const struct vault_options *o, const uint8_t h[RING_HEADER], uint8_t *root,
                                 char **reterr)
{
	uint64_t ops = get_u64(h + 8), mem = get_u64(h + 16);
	if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > 64 || mem < crypto_pwhash_MEMLIMIT_MIN || mem > MAX_ARGON2_MEM)
		return qerr_set(reterr, QERR_KEY, "keyring %s has unusable Argon2id parameters", o->keyring);
	if (crypto_pwhash(root, VAULT_KEY_BYTES, o->passphrase, o->passphrase_len, h + 24, ops, (size_t)mem,
	                  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return qerr_set(reterr, QERR_NOMEM, "not enough memory for Argon2id (%llu MiB)",
		                (unsigned long long)(mem >> 20));
	return QERR_OK;
}

static const char *source_name(int s)
{
	return s == VAULT_SOURCE_FILE ? "file" : s == VAULT_SOURCE_PASSPHRASE ? "passphrase" : "credential";
}

/* The root KEK from the configured source; h is the keyring header (read or new). */
static enum qerr load_root(const struct vault_options *o, const uint8_t h[RING_HEADER], uint8_t *root,
                           char **reterr)
{
	if (h[4] != (uint8_t)o->source)
		return qerr_set(reterr, QERR_KEY, "the keyring %s is sealed for a %s key but vault.kek_source is %s",
		                o->keyring, h[4] > 0 && h[4] < VAULT_SOURCE_COUNT ? source_name(h[4]) : "unknown",
		                source_name(o->source));
	switch (o->source) {
	case VAULT_SOURCE_FILE:
		return read_keyfile(o->key_file, root, reterr);
	case VAULT_SOURCE_CREDENTIAL:
		return read_credential(o->credential ? o->credential : "", root, reterr);
	case VAULT_SOURCE_PASSPHRASE:
		if (!o->passphrase || o->passphrase_len == 0)
			return qerr_set(reterr, QERR_KEY, "a passphrase is needed to open the keyring %s", o->keyring);
		return passphrase_root(o, h, root, reterr);
	default:
		return qerr_set(reterr, QERR_CONFIG, "unknown key source");
	}
}

static enum qerr derive_subkeys(struct vault *v, const uint8_t *root, char **reterr)
{
	v->sub = sodium_malloc((size_t)SUBKEY_COUNT_ * VAULT_KEY_BYTES);
	v->sign_sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	if (!v->sub || !v->sign_sk)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	for (int id = SUBKEY_RING; id < SUBKEY_COUNT_; id++)
		crypto_kdf_derive_from_key(v->sub + (size_t)id * VAULT_KEY_BYTES, VAULT_KEY_BYTES, (uint64_t)id,
		                           KDF_CONTEXT, root);
	crypto_sign_seed_keypair(v->sign_pk, v->sign_sk, subkey(v, SUBKEY_SIGN));
	return QERR_OK;
}

/* A new keyring holding version 1. */
static enum qerr ring_create(struct vault *v, char **reterr)
{
	v->ring->keys = sodium_malloc(VAULT_KEY_BYTES);
	if (!v->ring->keys)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	randombytes_buf(v->ring->keys, VAULT_KEY_BYTES);
	v->ring->versions[0] = 1;
	v->ring->n = 1;
	return ring_write(v, v->ring, true, reterr);
}

static enum qerr check_options(const struct vault_options *o, bool creating, char **reterr)
{
	if (o->source <= 0 || o->source >= VAULT_SOURCE_COUNT || !o->keyring)
		return qerr_set(reterr, QERR_CONFIG, "incomplete vault options");
	if (o->source == VAULT_SOURCE_FILE && !o->key_file)
		return qerr_set(reterr, QERR_CONFIG, "no key file configured");
	if (creating && o->source == VAULT_SOURCE_PASSPHRASE && o->passphrase && o->passphrase_len < MIN_PASSPHRASE)
		return qerr_set(reterr, QERR_KEY, "the passphrase is too short: use at least %d characters", MIN_PASSPHRASE);
	return QERR_OK;
}

/* Turns a keyring that does not authenticate into a message naming the likely cause. */
static enum qerr wrong_key(const struct vault_options *o, char **reterr)
{
	if (o->source == VAULT_SOURCE_PASSPHRASE)
		return qerr_set(reterr, QERR_KEY, "wrong passphrase: the keyring %s does not open with it", o->keyring);
	if (o->source == VAULT_SOURCE_FILE)
		return qerr_set(reterr, QERR_KEY, "the keyring %s does not open with the key file %s (wrong key file?)",
		                o->keyring, o->key_file);
	return qerr_set(reterr, QERR_KEY, "the keyring %s does not open with credential %s (wrong credential?)",
	                o->keyring, o->credential);
}

static enum qerr open_ring(struct vault *v, const struct vault_options *o, uint8_t *root, char **reterr)
{
	g_autofree uint8_t *file = NULL;
	size_t len = 0;
	enum qerr e = ring_read_file(o->keyring, &file, &len, reterr);
	bool creating = e == QERR_NOT_FOUND && o->create;
	if (e && !creating)
		return e == QERR_NOT_FOUND ? qerr_set(reterr, QERR_KEY, "no keyring at %s: run `quire init` first",
		                                      o->keyring)
		                           : e;
	if ((e = check_options(o, creating, reterr)))
		return e;
	if (creating) {
		uint64_t ops = o->argon2_ops ? o->argon2_ops : crypto_pwhash_OPSLIMIT_MODERATE;
		uint64_t mem = o->argon2_mem ? o->argon2_mem : crypto_pwhash_MEMLIMIT_MODERATE;
		bool pw = o->source == VAULT_SOURCE_PASSPHRASE;
		make_header(v->header, o->source, pw ? ops : 0, pw ? mem : 0);
	} else {
		memcpy(v->header, file, RING_HEADER);
	}
	if ((e = load_root(o, v->header, root, reterr)) || (e = derive_subkeys(v, root, reterr)))
		return e;
	if (creating) {
		e = ring_create(v, reterr);
		if (e != QERR_CONFLICT)
			return e;
		ring_clear(v->ring); /* another process created it first: use theirs */
		g_clear_pointer(&file, g_free);
		if ((e = ring_read_file(o->keyring, &file, &len, reterr)))
			return e;
		if (memcmp(file, v->header, RING_HEADER) != 0)
			return wrong_key(o, reterr);
	}
	e = ring_decode(v, file, len, v->ring, reterr);
	v->ring->loaded_at = g_get_monotonic_time();
	return e == QERR_CRYPTO ? wrong_key(o, reterr) : e;
}

enum qerr vault_open_with(const struct vault_options *o, struct vault **ret, char **reterr)
{
	enum qerr e = sodium_ready(reterr);
	if (e)
		return e;
	if ((e = check_options(o, false, reterr)))
		return e;
	struct vault *v = g_new0(struct vault, 1);
	v->ring = g_new0(struct ring, 1);
	g_mutex_init(&v->ring->lock);
	v->ring_path = g_strdup(o->keyring);
	uint8_t *root = sodium_malloc(VAULT_KEY_BYTES);
	if (!root)
		e = qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	else
		e = open_ring(v, o, root, reterr);
	if (root)
		sodium_free(root);
	if (e) {
		vault_close(v);
		return e;
	}
	*ret = v;
	return QERR_OK;
}

enum qerr vault_open(const char *keyfile, struct vault **ret, char **reterr)
{
	g_autofree char *dir = g_path_get_dirname(keyfile);
	g_autofree char *ring = g_build_filename(dir, "keyring", NULL);
	struct vault_options o = {.source = VAULT_SOURCE_FILE, .key_file = keyfile, .keyring = ring, .create = true};
	return vault_open_with(&o, ret, reterr);
}

void vault_close(struct vault *v)
{
	if (!v)
		return;
	if (v->sub)
		sodium_free(v->sub);
	if (v->sign_sk)
		sodium_free(v->sign_sk);
	if (v->ring) {
		ring_clear(v->ring);
		g_mutex_clear(&v->ring->lock);
		g_free(v->ring);
	}
	g_free(v->ring_path);
	sodium_memzero(v, sizeof *v);
	g_free(v);
}

int32_t vault_key_version(const struct vault *v)
{
	g_mutex_lock(&v->ring->lock);
	int32_t max = 0;
	for (int i = 0; i < v->ring->n; i++)
		max = MAX(max, v->ring->versions[i]);
	g_mutex_unlock(&v->ring->lock);
	return max;
}

static int ring_find(const struct ring *r, int32_t version)
{
	for (int i = 0; i < r->n; i++)
		if (r->versions[i] == version)
			return i;
	return -1;
}

static bool ring_is_newest(const struct ring *r, int i)
{
	for (int k = 0; k < r->n; k++)
		if (r->versions[k] > r->versions[i])
			return false;
	return true;
}

/* Copies the key of version into out. The keyring is re-read when the version is not cached,
 * and also when it is an older one and the cache is more than RING_STALE_US old: another
 * process may have retired it, and a retired version must stop working here too. */
static enum qerr version_key(const struct vault *v, int32_t version, uint8_t *out, char **reterr)
{
	g_mutex_lock(&v->ring->lock);
	int i = ring_find(v->ring, version);
	enum qerr e = QERR_OK;
	bool stale = g_get_monotonic_time() - v->ring->loaded_at > RING_STALE_US;
	if ((i < 0 || (stale && !ring_is_newest(v->ring, i))) && (e = ring_reload(v, reterr)) == QERR_OK)
		i = ring_find(v->ring, version);
	if (!e && i < 0)
		e = qerr_set(reterr, QERR_KEY, "key version %d is not in the keyring %s (retired, or another keyring)",
		             (int)version, v->ring_path);
	if (!e)
		memcpy(out, v->ring->keys + (size_t)i * VAULT_KEY_BYTES, VAULT_KEY_BYTES);
	g_mutex_unlock(&v->ring->lock);
	return e;
}

bool vault_has_version(const struct vault *v, int32_t version)
{
	uint8_t *k = sodium_malloc(VAULT_KEY_BYTES);
	bool has = k && version_key(v, version, k, NULL) == QERR_OK;
	if (k)
		sodium_free(k);
	return has;
}

/* Replaces the ring's contents by the n entries (versions, keys) under the file lock. */
static enum qerr ring_update(struct vault *v, int32_t add, int32_t drop, char **reterr)
{
	int fd = -1;
	enum qerr e = ring_lock(v, &fd, reterr);
	if (e)
		return e;
	g_mutex_lock(&v->ring->lock);
	struct ring next = {.n = 0};
	e = ring_reload(v, reterr);
	int n = v->ring->n + (add ? 1 : 0);
	next.keys = e ? NULL : sodium_malloc((size_t)n * VAULT_KEY_BYTES);
	if (!e && !next.keys)
		e = qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	for (int i = 0; !e && i < v->ring->n; i++) {
		if (v->ring->versions[i] == drop)
			continue;
		next.versions[next.n] = v->ring->versions[i];
		memcpy(next.keys + (size_t)next.n++ * VAULT_KEY_BYTES, v->ring->keys + (size_t)i * VAULT_KEY_BYTES,
		       VAULT_KEY_BYTES);
	}
	if (!e && add) {
		next.versions[next.n] = add;
		randombytes_buf(next.keys + (size_t)next.n++ * VAULT_KEY_BYTES, VAULT_KEY_BYTES);
	}
	if (!e && next.n == 0)
		e = qerr_set(reterr, QERR_CONFLICT, "the keyring would be empty");
	if (!e)
		e = ring_write(v, &next, false, reterr);
	if (!e) {
		ring_clear(v->ring);
		memcpy(v->ring->versions, next.versions, sizeof next.versions);
		v->ring->n = next.n;
		v->ring->keys = next.keys;
		next.keys = NULL;
	}
	ring_clear(&next);
	g_mutex_unlock(&v->ring->lock);
	close(fd);
	return e;
}

enum qerr vault_rotate(struct vault *v, int32_t *ret_version, char **reterr)
{
	/* The file may hold versions this process has not seen: the new number comes from a reload. */
	g_mutex_lock(&v->ring->lock);
	enum qerr e = ring_reload(v, reterr);
	g_mutex_unlock(&v->ring->lock);
	if (e)
		return e;
	int32_t next = vault_key_version(v) + 1;
	if (v->ring->n >= VAULT_MAX_VERSIONS)
		return qerr_set(reterr, QERR_TOO_LARGE, "the keyring holds %d versions: retire old ones first",
		                VAULT_MAX_VERSIONS);
	e = ring_update(v, next, 0, reterr);
	if (!e)
		*ret_version = next;
	return e;
}

enum qerr vault_retire(struct vault *v, int32_t version, char **reterr)
{
	if (!vault_has_version(v, version))
		return qerr_set(reterr, QERR_NOT_FOUND, "key version %d is not in the keyring", (int)version);
	if (version == vault_key_version(v))
		return qerr_set(reterr, QERR_CONFLICT, "key version %d is the newest; rotate before retiring it",
		                (int)version);
	return ring_update(v, 0, version, reterr);
}

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
	enum qerr e = version_key(v, version, kek, reterr);
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
		e = version_key(v, key_version, kek, reterr);
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
	enum qerr e = sodium_ready(reterr);
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
	crypto_generichash(out, VAULT_HASH_BYTES, data, len, subkey(v, SUBKEY_HASH), VAULT_KEY_BYTES);
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
	crypto_generichash_init(h->st, subkey(v, SUBKEY_HASH), VAULT_KEY_BYTES, VAULT_HASH_BYTES);
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
	crypto_generichash(out, VAULT_HASH_BYTES, (const uint8_t *)token, strlen(token), subkey(v, SUBKEY_TOKEN),
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
	enum qerr e = sodium_ready(reterr);
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
