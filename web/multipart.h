/* multipart: a streaming multipart/form-data parser (RFC 7578).
 *
 * Bytes go in as they arrive, in pieces of any size; each part's headers are
 * parsed once complete and its content is handed to the caller in pieces, so
 * an upload is never held whole by the parser. Memory is bounded: the parser
 * keeps at most one header block (MULTIPART_MAX_HEADERS bytes) or one
 * boundary's worth of content pending. Anything malformed (no boundary, a
 * header block too long, a part without Content-Disposition, more than
 * MULTIPART_MAX_PARTS parts, a body that ends before the closing boundary)
 * is QERR_BAD_INPUT with a message saying what was wrong. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/qerr.h"

#define MULTIPART_MAX_BOUNDARY 70 /* RFC 2046 */
#define MULTIPART_MAX_HEADERS 8192
#define MULTIPART_MAX_PARTS 64
#define MULTIPART_MAX_NAME 255

struct multipart;

/* Callbacks; a non-zero return stops the parse with that code (the callback sets reterr). */
struct multipart_handler {
	/* A part starts: its field name, file name (NULL for a plain field) and content type ("" if none),
	 * all borrowed for the duration of the call. */
	enum qerr (*part_begin)(void *ctx, const char *name, const char *filename, const char *type, char **reterr);
	enum qerr (*part_data)(void *ctx, const void *data, size_t len, char **reterr);
	enum qerr (*part_end)(void *ctx, char **reterr);
};

/* The boundary parameter of a multipart/form-data Content-Type, into out. */
enum qerr multipart_boundary(const char *content_type, char out[MULTIPART_MAX_BOUNDARY + 1], char **reterr)
	QUIRE_MUST_CHECK;
/* A parser for one body; h and ctx are borrowed. *ret: multipart_free(). */
enum qerr multipart_new(const char *boundary, const struct multipart_handler *h, void *ctx, struct multipart **ret,
                        char **reterr) QUIRE_MUST_CHECK;
/* Feeds len more bytes. After an error the parser refuses further input. */
enum qerr multipart_feed(struct multipart *m, const void *data, size_t len, char **reterr) QUIRE_MUST_CHECK;
/* The body ended: QERR_BAD_INPUT unless the closing boundary was seen. */
enum qerr multipart_finish(struct multipart *m, char **reterr) QUIRE_MUST_CHECK;
void multipart_free(struct multipart *m);

/* Whether a client's file name is acceptable as it is: 1 to MULTIPART_MAX_NAME bytes of valid
 * UTF-8, no control characters, no '/' or '\\', not "." or "..", not starting with '.'. Names
 * are refused rather than cleaned, so a traversal attempt is visible to the client. */
bool multipart_filename_ok(const char *name);
