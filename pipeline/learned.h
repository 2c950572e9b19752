/* learned: corrections remembered per supplier, in the database.
 *
 * The hints of extractors/learn.h, one row per (supplier identity, field) in
 * learned_fields (migration 0012): the identity as a keyed hash, the hint
 * sealed with the data key of the document it was learned on. A newer
 * correction of the same field for the same supplier replaces the older one.
 * A row whose document was erased (its key gone) is skipped when read. */
#pragma once

#include <stdint.h>

#include "core/qerr.h"

struct db;
struct json;
struct layout;
struct pdftext_doc;
struct vault;

/* Learns from a correction of document doc_id: for each field named in
 * fields (comma-separated) that has a single value in result (extract.h's
 * JSON after the correction, borrowed), where that value is on the pages of
 * doc (the document's text, borrowed), under every identity of the supplier
 * that result names. Runs inside the caller's transaction. *ret_learned (may
 * be NULL) receives how many fields were remembered. */
enum qerr learned_from_correction(struct db *db, const struct vault *v, int64_t doc_id, const struct json *result,
                                  const struct pdftext_doc *doc, const char *fields, const char *actor,
                                  int *ret_learned, char **reterr) QUIRE_MUST_CHECK;

/* The hints of the first of keys (NULL-terminated) that has any, {field: hint}
 * into *ret (json_free), or NULL when none is known. */
enum qerr learned_lookup(struct db *db, const struct vault *v, char *const *keys, struct json **ret,
                         char **reterr) QUIRE_MUST_CHECK;
