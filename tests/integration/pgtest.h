/* pgtest: a throwaway PostgreSQL for integration tests, started with the same
 * embedded mechanism quire uses (appliance/pgembed), migrations applied. */
#pragma once

#include <glib.h>

#include "core/qerr.h"

/* Fails the test when call returns an error, printing the message it left in err. The call
 * is made before err is read: a function's arguments are evaluated in no set order, so a
 * helper function taking both would often print the message from before the call. */
#define QT_OK(call, err)                                                                                               \
	do {                                                                                                           \
		enum qerr qt_ok_e_ = (call);                                                                           \
		if (qt_ok_e_ != QERR_OK)                                                                               \
			g_error("unexpected error %d: %s", (int)qt_ok_e_, (err) ? (err) : "");                         \
	} while (0)

struct db;

/* Starts a private cluster in a new temporary directory and connects;
 * aborts the test on failure. */
struct db *pgtest_start(void);
/* The libpq connection string of the database (borrowed). */
const char *pgtest_conninfo(void);
/* A second connection to the same database. */
struct db *pgtest_connect(void);
/* Makes sure the server started under tmpdir (tmpdir/data/postgres) does not
 * outlive this process: when the process ends without stopping it (a failed
 * assertion aborts, a timeout kills), a watchdog process in a session of its
 * own stops the server and removes tmpdir. */
void pgtest_watchdog(const char *tmpdir);
struct vault;
/* A vault opened on a new key file in the cluster's directory (the same one on every call);
 * *ret_key_path (may be NULL) gets the file's path. Both borrowed until pgtest_stop(). */
struct vault *pgtest_vault(const char **ret_key_path);
/* Closes the vault, stops the cluster and removes the directory. */
void pgtest_stop(void);
