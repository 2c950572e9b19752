/* export: approved results and training examples, for other systems.
 *
 * Three forms, each written through a sink a piece at a time, one document at
 * a time (never all results in memory at once):
 * - CSV of approved documents: document_id, file, document_type, approved_by,
 *   approved_at, then one column per field of the first exported document's
 *   type (RFC 4180 quoting; cells starting with = + - @ are prefixed with ' so
 *   a spreadsheet does not run them as formulas);
 * - JSON Lines of approved documents: {"document_id", "file", "document_type",
 *   "approved_by", "approved_at", "version", "fields": {name: value}};
 * - JSON Lines of corrected documents (not rejected) as fine-tuning examples:
 *   {"document_id", "input": the page text, pages separated by form feeds,
 *   "output": {name: corrected value}}.
 * Exports hold decrypted document data: the caller decides where it goes. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

struct db;
struct vault;

enum export_format { EXPORT_CSV, EXPORT_JSONL, EXPORT_TRAINING, EXPORT_FORMAT_COUNT };

/* Receives the bytes; a non-zero return stops the export (QERR_IO). */
typedef int (*export_sink)(void *ctx, const char *data, size_t len);

/* Parses "csv", "jsonl" or "training"; false for anything else. */
int export_format_parse(const char *name, enum export_format *ret);
/* Writes every matching document; *ret_count (may be NULL) gets their number. */
enum qerr export_run(struct db *db, const struct vault *v, enum export_format f, export_sink sink, void *ctx,
                     int64_t *ret_count, char **reterr) QUIRE_MUST_CHECK;
