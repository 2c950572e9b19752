/* keyring: the root of the key hierarchy, the subkeys derived from it, and the keyring
 * of wrapping-key versions, kept in a store (the database) or in a file.
 *
 * Sealed keyring layout, the same in a file and in a store (integers little-endian):
 *   0  "QKR1" or "QKR2"  magic
 *   4  source            1 byte (enum vault_source of the host that created it), 3 zero bytes
 *   8  argon2 opslimit   u64 (0 unless the source is a passphrase)
 *   16 argon2 memlimit   u64
 *   24 salt              16 bytes
 *   40 nonce             24 bytes
 *   64 ciphertext        XChaCha20-Poly1305 of: u32 count, count x (u32 version, 32-byte key),
 *                        under the keyring subkey, the first 40 bytes as associated data,
 *                        and for "QKR2" after them the store's generation of the row (u64)
 * so the Argon2id parameters cannot be weakened without the keyring failing to open, and a
 * keyring in a store is bound to its generation: an older row put back (with its own, older
 * generation) opens, but a process that saw a newer one refuses it, and the audit witness
 * signs the newest generation its writers saw, so that verify catches it later. A file holds
 * "QKR1" (generation 0); a store gets "QKR2" at its first write by this version. Only
 * whether the root is a passphrase or a raw key (file, credential, command) must match.
 * A file is updated through a temporary file renamed over the old one, under a lock file;
 * a store by compare and swap on its generation, retried on a conflict. Because the blob
 * is the same, moving a file into a store is a copy of its bytes. */
#include "core/vault.h"

#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define RING_HEADER VAULT_RING_HEADER
#define RING_FIXED (RING_HEADER + NONCE_BYTES)
#define RING_ENTRY (4 + VAULT_KEY_BYTES)
#define RING_MIN_BLOB (RING_FIXED + 4 + TAG_BYTES)
#define RING_MAX_FILE (RING_FIXED + 4 + VAULT_MAX_VERSIONS * RING_ENTRY + TAG_BYTES)
#define SALT_BYTES 16
#define MIN_PASSPHRASE 8
#define MAX_ARGON2_MEM ((unsigned long long)4 << 30)
#define RING_STALE_US 1000000 /* a version retired elsewhere stops working here within this */
#define STORE_TRIES 8         /* compare-and-swap attempts against writers on other hosts */

static const char KDF_CONTEXT[crypto_kdf_CONTEXTBYTES] = {'q', 'u', 'i', 'r', 'e', 'k', 'e', 'k'};

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

/* Whether len bytes can be a sealed keyring at all. */
static bool blob_plausible(const uint8_t *buf, size_t len)
{
	return len >= RING_MIN_BLOB && len <= RING_MAX_FILE &&
	       (memcmp(buf, "QKR1", 4) == 0 || memcmp(buf, "QKR2", 4) == 0);
}

/* The associated data of a seal: the header, and for a keyring bound to its generation gen too. */
static size_t ring_ad(const uint8_t *file, int64_t gen, uint8_t ad[RING_HEADER + 8])
{
	memcpy(ad, file, RING_HEADER);
	if (memcmp(file, "QKR2", 4) != 0)
		return RING_HEADER;
	put_u64(ad + RING_HEADER, (uint64_t)gen);
	return RING_HEADER + 8;
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
		e = qerr_set(reterr, QERR_KEY,
		             "keyring %s is accessible by group or others (mode %03o): run chmod 600 %s", path,
		             (unsigned)(st.st_mode & 0777), path);
	else if (st.st_size < RING_MIN_BLOB || st.st_size > RING_MAX_FILE)
		e = qerr_set(reterr, QERR_KEY, "keyring %s is damaged (%lld bytes)", path, (long long)st.st_size);
	if (!e) {
		buf = g_malloc((size_t)st.st_size);
		if (read(fd, buf, (size_t)st.st_size) != st.st_size || !blob_plausible(buf, (size_t)st.st_size))
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

/* Reads the sealed keyring from where this vault keeps it; QERR_NOT_FOUND when there is none. */
static enum qerr ring_fetch(const struct vault *v, uint8_t **ret, size_t *ret_len, int64_t *ret_gen, char **reterr)
{
	*ret_gen = 0;
	if (!v->has_store)
		return ring_read_file(v->ring_path, ret, ret_len, reterr);
	uint8_t *buf = NULL;
	size_t len = 0;
	enum qerr e = v->store.read(v->store.ctx, &buf, &len, ret_gen, reterr);
	if (e)
		return e;
	if (!blob_plausible(buf, len)) {
		g_free(buf);
		return qerr_set(reterr, QERR_KEY, "the keyring %s is damaged (%zu bytes, bad header)", v->where, len);
	}
	*ret = buf;
	*ret_len = len;
	return QERR_OK;
}

static void ring_clear(struct vault_ring *r)
{
	if (r->keys)
		sodium_free(r->keys);
	r->keys = NULL;
	r->n = 0;
}

/* Opens the sealed part of a keyring, stored as generation gen, into r (replacing what it
 * held). QERR_CRYPTO when it does not authenticate under this root (or with that generation). */
static enum qerr ring_decode(const struct vault *v, const uint8_t *file, size_t len, int64_t gen, struct vault_ring *r,
                             char **reterr)
{
	size_t clen = len - RING_FIXED, plen = clen - TAG_BYTES;
	uint8_t *plain = sodium_malloc(plen);
	if (!plain)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	unsigned long long got = 0;
	enum qerr e = QERR_OK;
	uint8_t ad[RING_HEADER + 8];
	size_t adlen = ring_ad(file, gen, ad);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &got, NULL, file + RING_FIXED, clen, ad, adlen,
	                                               file + RING_HEADER, vault_subkey(v, SUBKEY_RING)) != 0)
		e = QERR_CRYPTO;
	uint32_t n = e ? 0 : get_u32(plain);
	if (!e && (n == 0 || n > VAULT_MAX_VERSIONS || plen != 4 + (size_t)n * RING_ENTRY))
		e = qerr_set(reterr, QERR_KEY, "the keyring %s is damaged (bad entry count)", v->where);
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
		r->sealed = adlen > RING_HEADER ? gen : 0;
	}
	sodium_free(plain);
	return e;
}

/* Seals r under this vault's header and keyring subkey, bound to generation gen when it is not
 * 0 (a store's); *ret (g_free) and *ret_len. */
static enum qerr ring_seal(const struct vault *v, const struct vault_ring *r, int64_t gen, uint8_t **ret,
                           size_t *ret_len, char **reterr)
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
	uint8_t *file = g_malloc(flen);
	memcpy(file, v->header, RING_HEADER);
	memcpy(file, gen > 0 ? "QKR2" : "QKR1", 4);
	randombytes_buf(file + RING_HEADER, NONCE_BYTES);
	uint8_t ad[RING_HEADER + 8];
	size_t adlen = ring_ad(file, gen, ad);
	crypto_aead_xchacha20poly1305_ietf_encrypt(file + RING_FIXED, NULL, plain, plen, ad, adlen, NULL,
	                                           file + RING_HEADER, vault_subkey(v, SUBKEY_RING));
	sodium_free(plain);
	*ret = file;
	*ret_len = flen;
	return QERR_OK;
}

/* Puts a sealed keyring in place at path (atomically: temporary file, fsync, rename; link
 * instead of rename when exclusive, so a concurrent creator wins cleanly). */
static enum qerr file_place(const char *path, const uint8_t *file, size_t flen, bool exclusive, char **reterr)
{
	g_autofree char *tmp = g_strdup_printf("%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return qerr_set(reterr, QERR_IO, "cannot write keyring %s: %s", tmp, g_strerror(errno));
	bool written = kek_write_all(fd, file, flen) && fsync(fd) == 0;
	int err = errno;
	close(fd);
	int placed = !written ? -1 : exclusive ? link(tmp, path) : rename(tmp, path);
	if (placed != 0 && written)
		err = errno;
	unlink(tmp);
	if (placed != 0)
		return qerr_set(reterr, err == EEXIST ? QERR_CONFLICT : QERR_IO, "cannot write keyring %s: %s", path,
		                g_strerror(err));
	g_autofree char *dir = g_path_get_dirname(path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return QERR_OK;
}

/* Stores a sealed keyring: in the store if the stored generation is still gen (0: create),
 * else in the file (exclusive: only if there is none). QERR_CONFLICT when someone else won. */
static enum qerr ring_place(const struct vault *v, const uint8_t *blob, size_t len, int64_t gen, bool exclusive,
                            char **reterr)
{
	if (v->has_store)
		return v->store.write(v->store.ctx, blob, len, gen, reterr);
	return file_place(v->ring_path, blob, len, exclusive, reterr);
}

/* Serialises keyring file changes between processes of one host. *ret_fd is closed to unlock;
 * -1 with a store, whose compare and swap serialises writers. */
static enum qerr ring_lock(const struct vault *v, int *ret_fd, char **reterr)
{
	*ret_fd = -1;
	if (v->has_store)
		return QERR_OK;
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

/* Re-reads the keyring into the cache; the caller holds v->ring->lock. */
static enum qerr ring_reload(const struct vault *v, char **reterr)
{
	g_autofree uint8_t *file = NULL;
	size_t len = 0;
	int64_t gen = 0;
	enum qerr e = ring_fetch(v, &file, &len, &gen, reterr);
	if (e == QERR_NOT_FOUND)
		return qerr_set(reterr, QERR_KEY, "the keyring %s has disappeared", v->where);
	if (e)
		return e;
	if (memcmp(file + 4, v->header + 4, RING_HEADER - 4) != 0)
		return qerr_set(reterr, QERR_KEY, "the keyring %s was replaced by one of another installation",
		                v->where);
	int64_t sealed = memcmp(file, "QKR2", 4) == 0 ? gen : 0;
	if (v->has_store && sealed < v->ring->sealed) {
		char now[32] = "one not bound to its generation";
		if (sealed)
			g_snprintf(now, sizeof now, "%lld", (long long)sealed);
		return qerr_set(reterr, QERR_KEY,
		                "the keyring %s was rolled back from generation %lld to %s (an older copy was put "
		                "back): refusing it, since key versions retired since would work again and newer ones "
		                "be lost",
		                v->where, (long long)v->ring->sealed, now);
	}
	e = ring_decode(v, file, len, gen, v->ring, reterr);
	if (!e) {
		v->ring->loaded_at = g_get_monotonic_time();
		v->ring->generation = gen;
	}
	if (e == QERR_CRYPTO)
		e = qerr_set(reterr, QERR_KEY, "the keyring %s no longer opens with this key", v->where);
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

static const char *ring_name(const struct vault_options *o)
{
	return o->store ? (o->store->where ? o->store->where : "in the store") : o->keyring;
}

static enum qerr passphrase_root(const struct vault_options *o, const uint8_t h[RING_HEADER], uint8_t *root,
                                 char **reterr)
{
	uint64_t ops = get_u64(h + 8), mem = get_u64(h + 16);
	if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > 64 || mem < crypto_pwhash_MEMLIMIT_MIN || mem > MAX_ARGON2_MEM)
		return qerr_set(reterr, QERR_KEY, "the keyring %s has unusable Argon2id parameters", ring_name(o));
	if (crypto_pwhash(root, VAULT_KEY_BYTES, o->passphrase, o->passphrase_len, h + 24, ops, (size_t)mem,
	                  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return qerr_set(reterr, QERR_NOMEM, "not enough memory for Argon2id (%llu MiB)",
		                (unsigned long long)(mem >> 20));
	return QERR_OK;
}

static const char *source_name(int s)
{
	static const char *const names[] = {"unknown", "file", "passphrase", "credential", "command"};
	return s > 0 && s < VAULT_SOURCE_COUNT ? names[s] : names[0];
}

/* The root KEK from the configured source; h is the keyring header (read or new). */
static enum qerr load_root(const struct vault_options *o, const uint8_t h[RING_HEADER], uint8_t *root, char **reterr)
{
	/* A key file, a credential and a command hold the same kind of key: one host may keep it
	 * in a file and another get it from a command. A passphrase is another kind. */
	bool ring_pw = h[4] == VAULT_SOURCE_PASSPHRASE, want_pw = o->source == VAULT_SOURCE_PASSPHRASE;
	if (ring_pw != want_pw || h[4] == 0 || h[4] >= VAULT_SOURCE_COUNT)
		return qerr_set(reterr, QERR_KEY, "the keyring %s is sealed for a %s key but vault.kek_source is %s",
		                ring_name(o), ring_pw ? "passphrase" : "raw (file, credential or command)",
		                source_name(o->source));
	if (!want_pw)
		return kek_read(o, root, reterr);
	if (!o->passphrase || o->passphrase_len == 0)
		return qerr_set(reterr, QERR_KEY, "a passphrase is needed to open the keyring %s", ring_name(o));
	return passphrase_root(o, h, root, reterr);
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
	crypto_sign_seed_keypair(v->sign_pk, v->sign_sk, vault_subkey(v, SUBKEY_SIGN));
	return QERR_OK;
}

static enum qerr check_options(const struct vault_options *o, bool creating, char **reterr)
{
	if (o->source <= 0 || o->source >= VAULT_SOURCE_COUNT || (!o->keyring && !o->store))
		return qerr_set(reterr, QERR_CONFIG, "incomplete vault options");
	if (o->store && (!o->store->read || !o->store->write))
		return qerr_set(reterr, QERR_CONFIG, "incomplete keyring store");
	if (o->source == VAULT_SOURCE_FILE && !o->key_file)
		return qerr_set(reterr, QERR_CONFIG, "no key file configured");
	if (o->source == VAULT_SOURCE_COMMAND && (!o->command || !o->command[0]))
		return qerr_set(reterr, QERR_CONFIG, "vault.kek_source is \"command\" but vault.kek_command is empty");
	if (creating && o->source == VAULT_SOURCE_PASSPHRASE && o->passphrase && o->passphrase_len < MIN_PASSPHRASE)
		return qerr_set(reterr, QERR_KEY, "the passphrase is too short: use at least %d characters",
		                MIN_PASSPHRASE);
	return QERR_OK;
}

/* Turns a keyring that does not authenticate into a message naming the likely cause. */
static enum qerr wrong_key(const struct vault_options *o, char **reterr)
{
	if (o->source == VAULT_SOURCE_PASSPHRASE)
		return qerr_set(reterr, QERR_KEY, "wrong passphrase: the keyring %s does not open with it",
		                ring_name(o));
	if (o->source == VAULT_SOURCE_FILE)
		return qerr_set(reterr, QERR_KEY, "the keyring %s does not open with the key file %s (wrong key file?)",
		                ring_name(o), o->key_file);
	if (o->source == VAULT_SOURCE_COMMAND)
		return qerr_set(reterr, QERR_KEY, "the keyring %s does not open with the key vault.kek_command printed",
		                ring_name(o));
	return qerr_set(reterr, QERR_KEY, "the keyring %s does not open with credential %s (wrong credential?)",
	                ring_name(o), o->credential);
}

/* A new sealed keyring holding version 1, under v's header, for generation gen; *ret (g_free). */
static enum qerr ring_new_blob(struct vault *v, int64_t gen, uint8_t **ret, size_t *ret_len, char **reterr)
{
	struct vault_ring first = {.n = 1, .versions = {1}};
	first.keys = sodium_malloc(VAULT_KEY_BYTES);
	if (!first.keys)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	randombytes_buf(first.keys, VAULT_KEY_BYTES);
	enum qerr e = ring_seal(v, &first, gen, ret, ret_len, reterr);
	ring_clear(&first);
	return e;
}

/* Where the keyring to open comes from. */
enum origin { FROM_RING, FROM_IMPORT, FROM_NEW };

/* The sealed keyring where it is kept; with a store that holds none, the file to import;
 * failing both, a new one if o->create. */
static enum qerr find_blob(const struct vault *v, const struct vault_options *o, uint8_t **file, size_t *len,
                           int64_t *gen, enum origin *how, char **reterr)
{
	*how = FROM_RING;
	enum qerr e = ring_fetch(v, file, len, gen, reterr);
	if (e != QERR_NOT_FOUND)
		return e;
	if (reterr)
		g_clear_pointer(reterr, g_free);
	if (v->has_store && o->keyring) {
		*how = FROM_IMPORT;
		e = ring_read_file(o->keyring, file, len, reterr);
		if (e != QERR_NOT_FOUND)
			return e;
		if (reterr)
			g_clear_pointer(reterr, g_free);
	}
	*how = FROM_NEW;
	if (o->create)
		return QERR_OK;
	if (v->has_store && o->keyring)
		return qerr_set(reterr, QERR_KEY, "no keyring %s and none to import at %s: run `quire init` first",
		                v->where, o->keyring);
	if (v->has_store)
		return qerr_set(reterr, QERR_KEY, "no keyring %s: run `quire init` first", v->where);
	return qerr_set(reterr, QERR_KEY, "no keyring at %s: run `quire init` first", v->where);
}

/* A keyring in the store sealed before generations were bound in gets bound now, as the next
 * generation. Best effort: when another writer comes first (or the write fails), the next
 * write of the keyring binds it. */
static void bind_generation(struct vault *v)
{
	g_autofree uint8_t *blob = NULL;
	size_t len = 0;
	int64_t next = v->ring->generation + 1;
	if (ring_seal(v, v->ring, next, &blob, &len, NULL) == QERR_OK &&
	    ring_place(v, blob, len, v->ring->generation, false, NULL) == QERR_OK) {
		v->ring->generation = next;
		v->ring->sealed = next;
	}
}

/* Places a new or imported keyring (already known to open) where it is kept. */
static enum qerr place_first(struct vault *v, const struct vault_options *o, const uint8_t *file, size_t len,
                             enum origin how, char **reterr)
{
	g_autofree uint8_t *bound = NULL;
	enum qerr e = QERR_OK;
	if (v->has_store && how == FROM_IMPORT && (e = ring_seal(v, v->ring, 1, &bound, &len, reterr)))
		return e; /* a file's keyring, bound to its first generation in the store */
	e = ring_place(v, bound ? bound : file, len, 0, true, reterr);
	if (e)
		return e;
	v->ring->generation = v->has_store ? 1 : 0;
	v->ring->sealed = v->ring->generation;
	v->origin = how == FROM_IMPORT ? VAULT_RING_IMPORTED : VAULT_RING_CREATED;
	if (how == FROM_IMPORT) {
		/* The file is no longer read; keeping it under another name leaves the choice of when to
		 * destroy it (with the retired versions it holds) to its owner. */
		g_autofree char *done = g_strconcat(o->keyring, ".imported", NULL);
		(void)rename(o->keyring, done);
	}
	return QERR_OK;
}

/* One try at opening; QERR_CONFLICT when another process placed a keyring first. */
static enum qerr open_ring(struct vault *v, const struct vault_options *o, uint8_t *root, char **reterr)
{
	g_autofree uint8_t *file = NULL;
	size_t len = 0;
	int64_t gen = 0;
	enum origin how = FROM_RING;
	enum qerr e = find_blob(v, o, &file, &len, &gen, &how, reterr);
	if (e || (e = check_options(o, how == FROM_NEW, reterr)))
		return e;
	if (how == FROM_NEW) {
		uint64_t ops = o->argon2_ops ? o->argon2_ops : crypto_pwhash_OPSLIMIT_MODERATE;
		uint64_t mem = o->argon2_mem ? o->argon2_mem : crypto_pwhash_MEMLIMIT_MODERATE;
		bool pw = o->source == VAULT_SOURCE_PASSPHRASE;
		make_header(v->header, o->source, pw ? ops : 0, pw ? mem : 0);
	} else {
		memcpy(v->header, file, RING_HEADER);
	}
	if ((e = load_root(o, v->header, root, reterr)) || (e = derive_subkeys(v, root, reterr)))
		return e;
	if (how == FROM_NEW && (e = ring_new_blob(v, v->has_store ? 1 : 0, &file, &len, reterr)))
		return e;
	e = ring_decode(v, file, len, how == FROM_NEW && v->has_store ? 1 : gen, v->ring, reterr);
	if (e == QERR_CRYPTO) {
		e = wrong_key(o, reterr);
		if (how == FROM_RING && memcmp(file, "QKR2", 4) == 0 && reterr && *reterr) {
			char *more =
			    g_strconcat(*reterr, "; or its row (seal or generation) was altered in the database", NULL);
			g_free(*reterr);
			*reterr = more;
		}
		return e;
	}
	v->ring->loaded_at = g_get_monotonic_time();
	v->ring->generation = gen;
	if (!e && how != FROM_RING)
		e = place_first(v, o, file, len, how, reterr);
	if (!e && how == FROM_RING && v->has_store && !v->ring->sealed)
		bind_generation(v);
	return e;
}

enum qerr vault_open_with(const struct vault_options *o, struct vault **ret, char **reterr)
{
	enum qerr e = vault_sodium_ready(reterr);
	if (e || (e = check_options(o, false, reterr)))
		return e;
	uint8_t *root = sodium_malloc(VAULT_KEY_BYTES);
	if (!root)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	struct vault *v = NULL;
	/* A second try finds the keyring that a concurrent first open placed. */
	for (int tries = 0; tries < 2; tries++) {
		vault_close(v);
		v = g_new0(struct vault, 1);
		v->ring = g_new0(struct vault_ring, 1);
		g_mutex_init(&v->ring->lock);
		v->ring_path = g_strdup(o->keyring);
		v->has_store = o->store != NULL;
		if (o->store)
			v->store = *o->store;
		v->where = g_strdup(ring_name(o));
		if (reterr)
			g_clear_pointer(reterr, g_free);
		e = open_ring(v, o, root, reterr);
		if (e != QERR_CONFLICT)
			break;
	}
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
	g_free(v->where);
	sodium_memzero(v, sizeof *v);
	g_free(v);
}

enum vault_ring_origin vault_ring_origin(const struct vault *v)
{
	return v->origin;
}

const char *vault_ring_where(const struct vault *v)
{
	return v->where;
}

int64_t vault_ring_generation(const struct vault *v)
{
	g_mutex_lock(&v->ring->lock);
	int64_t g = v->ring->sealed;
	g_mutex_unlock(&v->ring->lock);
	return g;
}

static int32_t ring_newest(const struct vault_ring *r)
{
	int32_t max = 0;
	for (int i = 0; i < r->n; i++)
		max = MAX(max, r->versions[i]);
	return max;
}

int32_t vault_key_version(const struct vault *v)
{
	g_mutex_lock(&v->ring->lock);
	int32_t max = ring_newest(v->ring);
	g_mutex_unlock(&v->ring->lock);
	return max;
}

static int ring_find(const struct vault_ring *r, int32_t version)
{
	for (int i = 0; i < r->n; i++)
		if (r->versions[i] == version)
			return i;
	return -1;
}

/* Copies the key of version into out. The keyring is re-read when the version is not cached,
 * and also when it is an older one and the cache is more than RING_STALE_US old: another
 * process may have retired it, and a retired version must stop working here too. */
enum qerr vault_version_key(const struct vault *v, int32_t version, uint8_t *out, char **reterr)
{
	g_mutex_lock(&v->ring->lock);
	int i = ring_find(v->ring, version);
	enum qerr e = QERR_OK;
	bool stale = g_get_monotonic_time() - v->ring->loaded_at > RING_STALE_US;
	bool older = i >= 0 && v->ring->versions[i] < ring_newest(v->ring);
	if ((i < 0 || (stale && older)) && (e = ring_reload(v, reterr)) == QERR_OK)
		i = ring_find(v->ring, version);
	if (!e && i < 0)
		e = qerr_set(reterr, QERR_KEY, "key version %d is not in the keyring %s (retired, or another keyring)",
		             (int)version, v->where);
	if (!e)
		memcpy(out, v->ring->keys + (size_t)i * VAULT_KEY_BYTES, VAULT_KEY_BYTES);
	g_mutex_unlock(&v->ring->lock);
	return e;
}

bool vault_has_version(const struct vault *v, int32_t version)
{
	uint8_t *k = sodium_malloc(VAULT_KEY_BYTES);
	bool has = k && vault_version_key(v, version, k, NULL) == QERR_OK;
	if (k)
		sodium_free(k);
	return has;
}

/* The next keyring: the current one (just reloaded) with version add added (0: none) and
 * drop left out (0: none). */
static enum qerr ring_next(const struct vault_ring *cur, int32_t add, int32_t drop, struct vault_ring *next,
                           char **reterr)
{
	next->n = 0;
	next->keys = sodium_malloc((size_t)(cur->n + (add ? 1 : 0)) * VAULT_KEY_BYTES);
	if (!next->keys)
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	for (int i = 0; i < cur->n; i++) {
		if (cur->versions[i] == drop)
			continue;
		next->versions[next->n] = cur->versions[i];
		memcpy(next->keys + (size_t)next->n++ * VAULT_KEY_BYTES, cur->keys + (size_t)i * VAULT_KEY_BYTES,
		       VAULT_KEY_BYTES);
	}
	if (add) {
		next->versions[next->n] = add;
		randombytes_buf(next->keys + (size_t)next->n++ * VAULT_KEY_BYTES, VAULT_KEY_BYTES);
	}
	return QERR_OK;
}

/* One read-change-write of the keyring; the caller holds the locks. *ret_raced: another
 * writer came first (store only), so the change may be tried again on what it wrote. */
static enum qerr ring_update_once(struct vault *v, bool add, int32_t drop, int32_t *ret_added, bool *ret_raced,
                                  char **reterr)
{
	*ret_raced = false;
	enum qerr e = ring_reload(v, reterr);
	if (e)
		return e;
	struct vault_ring *cur = v->ring;
	int32_t newest = ring_newest(cur);
	if (drop && ring_find(cur, drop) < 0)
		return qerr_set(reterr, QERR_NOT_FOUND, "key version %d is not in the keyring", (int)drop);
	if (drop && drop == newest)
		return qerr_set(reterr, QERR_CONFLICT, "key version %d is the newest; rotate before retiring it",
		                (int)drop);
	if (add && cur->n >= VAULT_MAX_VERSIONS)
		return qerr_set(reterr, QERR_TOO_LARGE, "the keyring holds %d versions: retire old ones first",
		                VAULT_MAX_VERSIONS);
	struct vault_ring next = {.n = 0};
	g_autofree uint8_t *blob = NULL;
	size_t len = 0;
	int32_t version = add ? newest + 1 : 0;
	e = ring_next(cur, version, drop, &next, reterr);
	if (!e)
		e = ring_seal(v, &next, v->has_store ? cur->generation + 1 : 0, &blob, &len, reterr);
	if (!e)
		e = ring_place(v, blob, len, cur->generation, false, reterr);
	*ret_raced = e == QERR_CONFLICT && v->has_store;
	if (!e) {
		int64_t gen = cur->generation + 1;
		ring_clear(cur);
		memcpy(cur->versions, next.versions, sizeof next.versions);
		cur->n = next.n;
		cur->keys = next.keys;
		cur->generation = v->has_store ? gen : 0;
		cur->sealed = cur->generation;
		next.keys = NULL;
		if (ret_added)
			*ret_added = version;
	}
	ring_clear(&next);
	return e;
}

/* Adds a version (add) or destroys one (drop), under the file lock or by compare and swap. */
static enum qerr ring_update(struct vault *v, bool add, int32_t drop, int32_t *ret_added, char **reterr)
{
	int fd = -1;
	enum qerr e = ring_lock(v, &fd, reterr);
	if (e)
		return e;
	g_mutex_lock(&v->ring->lock);
	bool raced = false;
	for (int tries = 1;; tries++) {
		e = ring_update_once(v, add, drop, ret_added, &raced, reterr);
		if (!raced || tries >= STORE_TRIES)
			break;
		if (reterr)
			g_clear_pointer(reterr, g_free);
	}
	g_mutex_unlock(&v->ring->lock);
	if (fd >= 0)
		close(fd);
	return e;
}

enum qerr vault_rotate(struct vault *v, int32_t *ret_version, char **reterr)
{
	return ring_update(v, true, 0, ret_version, reterr);
}

enum qerr vault_retire(struct vault *v, int32_t version, char **reterr)
{
	if (version <= 0)
		return qerr_set(reterr, QERR_NOT_FOUND, "key version %d is not in the keyring", (int)version);
	return ring_update(v, false, version, NULL, reterr);
}
