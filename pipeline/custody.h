/* custody: what happens to documents' keys after they are stored.
 *
 * Rotation: a new keyring version (core/vault.h: vault_rotate) is made the
 * active one in key_versions, then every data key wrapped under an older
 * version is unwrapped and rewrapped under it, in short batches, online; the
 * payloads are never touched (they are sealed under the data keys, which do
 * not change). Retirement marks a version no document uses as retired, after
 * which the caller destroys it in the keyring (vault_retire). Erasure
 * (crypto-shredding) deletes a document's wrapped data key, its payloads and
 * the keyed hashes of its content, keeping a content-free row for the audit
 * trail; once the key version its data key was wrapped under is rotated away
 * and retired, copies of its rows taken earlier cannot be decrypted without a
 * keyring copy from before the retirement (a `quire backup` file holds one).
 *
 * Submissions take the active version FOR SHARE (pipeline/store.c), so a
 * rotation waits for submissions in flight and then finds their documents. */
#pragma once

#include <stdint.h>

#include "core/qerr.h"

struct db;
struct vault;

struct custody_version {
	int32_t version;
	char state[12];    /* "active", "decrypt" or "retired" */
	int64_t documents; /* data keys wrapped under it */
};

/* Makes version (already in the keyring) the active one; the previous one becomes decrypt-only. */
enum qerr custody_activate(struct db *db, int32_t version, const char *actor, char **reterr) QUIRE_MUST_CHECK;
/* Rewraps, batch rows per transaction, every data key not under version; *ret_done counts them. */
enum qerr custody_rewrap(struct db *db, const struct vault *v, int32_t version, int batch, int64_t *ret_done,
                         char **reterr) QUIRE_MUST_CHECK;
/* custody_rewrap() telling step(ctx, done so far) after each batch (step may be NULL). */
enum qerr custody_rewrap_with(struct db *db, const struct vault *v, int32_t version, int batch,
                              void (*step)(void *ctx, int64_t done), void *ctx, int64_t *ret_done,
                              char **reterr) QUIRE_MUST_CHECK;
/* Marks a version retired; QERR_CONFLICT while it is active or any data key is wrapped under it. */
enum qerr custody_retire(struct db *db, int32_t version, const char *actor, char **reterr) QUIRE_MUST_CHECK;
/* Every version with its state and number of documents; *ret (g_free) holds *ret_n entries. */
enum qerr custody_status(struct db *db, struct custody_version **ret, int *ret_n, char **reterr) QUIRE_MUST_CHECK;
/* Versions other than the active one that no document uses and are not yet retired. */
enum qerr custody_unused(struct db *db, int32_t **ret, int *ret_n, char **reterr) QUIRE_MUST_CHECK;
/* Erases a document: QERR_NOT_FOUND for an unknown id, QERR_CONFLICT when already erased. */
enum qerr custody_erase(struct db *db, int64_t doc_id, const char *actor, const char *client, char **reterr)
	QUIRE_MUST_CHECK;
