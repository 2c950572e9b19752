/* core/internal.h: what the audit log's files share inside core/. */
#pragma once

#include <stdint.h>

#include "core/audit.h"

/* The chain hash of an entry: BLAKE2b-256(prev || canonical text of at and the seven fields). */
void audit_entry_hash(const uint8_t prev[AUDIT_HASH_BYTES], const char *at, const char *const fields[7],
                      uint8_t out[AUDIT_HASH_BYTES]);
/* The message a checkpoint's signature covers (g_free). */
char *audit_checkpoint_message(const struct audit_checkpoint *cp);
