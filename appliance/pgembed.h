/* pgembed: Quire's private PostgreSQL cluster.
 *
 * With no database.url configured, Quire keeps its own cluster in the data
 * directory: <data_dir>/postgres (PGDATA), a Unix socket in <data_dir>/run and
 * no TCP listener at all, everything owner-only. The cluster is created with
 * initdb on first use, started when a command needs it and stopped again by the
 * command that started it. As root, the server runs under an unprivileged
 * account (database.run_as), because postgres refuses to run as root.
 * Concurrent quire processes serialise creation and start-up with a lock file. */
#pragma once

#include "core/qerr.h"

struct pgembed;

/* Creates the cluster if needed and starts it if it is not running.
 * run_as: the account to use when running as root. *ret is owned by the caller;
 * pgembed_stop() stops the server if this call started it, and frees *ret. */
enum qerr pgembed_start(const char *data_dir, const char *run_as, struct pgembed **ret, char **reterr)
	QUIRE_MUST_CHECK;
/* A libpq connection string for the cluster (borrowed). */
const char *pgembed_conninfo(const struct pgembed *pg);
/* Stops the server if pgembed_start() started it; frees pg. Accepts NULL. */
void pgembed_stop(struct pgembed *pg);
/* Leaves the server running when pg is stopped or freed (quire start). */
void pgembed_keep_running(struct pgembed *pg);
/* Stops the server whoever started it (quire stop, tests). */
enum qerr pgembed_stop_now(const char *data_dir, const char *run_as, char **reterr) QUIRE_MUST_CHECK;
