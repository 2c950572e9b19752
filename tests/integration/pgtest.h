/* pgtest: a throwaway PostgreSQL for integration tests, started with the same
 * embedded mechanism quire uses (appliance/pgembed), migrations applied. */
#pragma once

struct db;

/* Starts a private cluster in a new temporary directory and connects;
 * aborts the test on failure. */
struct db *pgtest_start(void);
/* The libpq connection string of the database (borrowed). */
const char *pgtest_conninfo(void);
/* A second connection to the same database. */
struct db *pgtest_connect(void);
/* Stops the cluster and removes the directory. */
void pgtest_stop(void);
