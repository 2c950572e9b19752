/* ringstore: the vault's keyring kept in the database (table keyring, one row), so that
 * every host sharing the database sees a rotation or retirement at once while each host
 * holds only the key-encryption key.
 *
 * The store has a connection of its own, opened at ringstore_open() and opened again once
 * when it was lost (a database restart, a failover to a standby), so a vault shared by
 * threads can reload the keyring whatever the other connections are doing. */
#pragma once

#include "core/qerr.h"

struct ringstore;
struct vault_store;

/* Connects with conninfo. *ret is freed with ringstore_close(), after the vault that uses it. */
enum qerr ringstore_open(const char *conninfo, struct ringstore **ret, char **reterr) QUIRE_MUST_CHECK;
void ringstore_close(struct ringstore *rs);
/* Fills *ret with the callbacks and context a vault needs (struct vault_options.store). */
void ringstore_bind(struct ringstore *rs, struct vault_store *ret);
