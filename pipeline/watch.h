/* watch: ingestion from a watched folder.
 *
 * PDFs dropped into DIR are stored encrypted and queued (store_submit) once
 * they are completely written, then moved out of the way:
 *   DIR/processed/NAME  after the transaction that stored them committed;
 *   DIR/failed/NAME     when they are not a usable PDF (not a PDF, empty, too
 *                       large), with the reason in DIR/failed/NAME.error,
 *                       after the audit entry of the refusal committed.
 *
 * Exactly once, across crashes: the database commit always comes before the
 * move. A crash between the two leaves the file in DIR; the next pass submits
 * it again, the store recognises the content by its keyed hash and returns
 * the existing document, and the file is moved without a second document.
 * A file is never deleted.
 *
 * "Completely written" means: a close after writing or a rename into DIR was
 * seen (inotify) and the file has not changed since, or its size and
 * modification time have not changed for settle_ms (writers on network file
 * systems, files already there at start); and in both cases no process holds
 * it open for writing, where the kernel can tell (a read lease is refused).
 * Names starting with '.' and names not ending in ".pdf" (any case) are left
 * alone, so a writer may copy under a temporary name and rename at the end.
 * Subfolders and anything that is not a regular file are left alone too.
 *
 * File names are stored sealed with the document; they are never logged.
 * watch_run sets SIGIO to be ignored when it has its default action (see watch.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/qerr.h"

struct db;
struct vault;

/* Most files tracked at once; more are picked up by later passes. */
#define WATCH_MAX_PENDING 10000

struct watch_options {
	const char *dir;      /* the watched folder (must exist) */
	const char *conninfo; /* own connection, reopened when it breaks; NULL: use the db given */
	size_t max_bytes;     /* larger files go to failed/ */
	int max_attempts;     /* of the jobs queued; 0: the queue's default */
	int settle_ms;        /* unchanged this long counts as complete; 0: 2000 */
	int scan_ms;          /* look at the folder at least this often; 0: 1000 */
	const char *actor;    /* audit actor; NULL: "system:watch" */
	bool once;            /* return when no file is left that is ready or still settling */
};

struct watch_stats {
	int ingested;   /* new documents */
	int duplicates; /* already stored (same content, or a pass interrupted after its commit) */
	int failed;     /* moved to failed/ */
};

/* Creates DIR/processed and DIR/failed if needed and checks that DIR is a writable folder. */
enum qerr watch_prepare(const char *dir, char **reterr) QUIRE_MUST_CHECK;

/* Watches o->dir until *stop becomes non-zero (or, with o->once, until nothing is left).
 * db is borrowed and used only without o->conninfo. Errors on single files are logged and
 * the file retried or moved to failed/; only a folder that cannot be watched at all, or a
 * database that cannot be reached with o->once, ends the run with an error. ret may be NULL. */
enum qerr watch_run(struct db *db, const struct vault *v, const struct watch_options *o, volatile int *stop,
                    struct watch_stats *ret, char **reterr) QUIRE_MUST_CHECK;
