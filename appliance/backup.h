/* backup: the file format of `quire backup` and the PostgreSQL tools behind it.
 *
 * A backup file is:
 *   "QUIRE-BACKUP 1\n"
 *   one line of JSON (at most BACKUP_MAX_HEADER bytes): format, quire version,
 *     creation time, schema version, number of documents, the database roles
 *     the dump grants to, and the sections in file order, each with its name,
 *     length and SHA-256;
 *   the sections' bytes, back to back, nothing after them.
 * Sections: "keyring" (the wrapping keys, sealed under the key-encryption key;
 * absent when the instance has no keyring file) and "database" (pg_dump's
 * custom format: metadata and ciphertext, never plaintext). The key-encryption
 * key itself is never in a backup.
 *
 * Files are written to a temporary name in the target folder, mode 0600,
 * synced, then renamed into place without replacing anything. */
#pragma once

#include <stdint.h>

#include "core/qerr.h"

struct progress;

#define BACKUP_MAGIC "QUIRE-BACKUP 1\n"
#define BACKUP_MAX_HEADER (64 * 1024)
#define BACKUP_MAX_SECTIONS 8
#define BACKUP_MAX_ROLES 32
#define BACKUP_MAX_KEYRING (16u << 20)

struct backup_section {
	char name[32];
	uint64_t offset; /* from the start of the file */
	uint64_t bytes;
	char sha256[65]; /* lower-case hex */
};

struct backup_info {
	char quire_version[32];
	char created_at[32];
	int schema_version;
	int64_t documents;
	int n_roles;
	char roles[BACKUP_MAX_ROLES][64];
	int n_sections;
	struct backup_section sections[BACKUP_MAX_SECTIONS];
};

/* Writes path from info (its offsets and checksums are filled in here) and, for each of
 * info->sections in order, the whole content of the file files[i]. Refuses an existing path. */
enum qerr backup_write(const char *path, struct backup_info *info, const char *const *files, char **reterr)
	QUIRE_MUST_CHECK;
/* Reads the header of path and checks every section's length and checksum. */
enum qerr backup_read(const char *path, struct backup_info *ret, char **reterr) QUIRE_MUST_CHECK;
/* The section named name, or NULL. */
const struct backup_section *backup_find(const struct backup_info *info, const char *name);
/* Copies a section of path into a new file dest (mode 0600). */
enum qerr backup_extract(const char *path, const struct backup_section *s, const char *dest, char **reterr)
	QUIRE_MUST_CHECK;

/* Path of a PostgreSQL client program (pg_dump, pg_restore): the newest in
 * /usr/lib/postgresql/N/bin, else on PATH. NULL when none; g_free(). */
char *backup_pg_tool(const char *name);
/* Runs argv (argv[0] a full path); QERR_DB with the program's last error lines when it fails. */
enum qerr backup_run(const char *const *argv, char **reterr) QUIRE_MUST_CHECK;

/* From now on, every byte backup_write(), backup_read() and backup_extract() copy or check
 * advances p (appliance/progress.h); NULL stops that. p is borrowed. */
void backup_progress(struct progress *p);
