/* formdata: multipart/form-data request bodies (RFC 7578), read part by part
 * by libmicrohttpd's post processor. Private to web/: it takes the
 * libmicrohttpd connection whose body it reads (the post processor finds the
 * Content-Type and its boundary there).
 *
 * Bytes go in as they arrive; each part's name, file name and type are handed
 * out once, its content in pieces, so an upload is never held whole. Memory is
 * bounded by FORMDATA_BUFFER (the post processor's buffer) whatever the body.
 * A body the post processor cannot read (a bad boundary, a body that ends
 * before the closing boundary), more than FORMDATA_MAX_PARTS parts, or a
 * callback's refusal is QERR_BAD_INPUT (or the callback's code) with a message. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/qerr.h"

#define FORMDATA_BUFFER (32u << 10)
#define FORMDATA_MAX_PARTS 64
#define FORMDATA_MAX_NAME 255

struct MHD_Connection;
struct formdata;

/* Callbacks; a non-zero return stops the parse with that code (the callback sets reterr). */
struct formdata_handler {
	/* A part starts: its field name, file name (NULL for a plain field) and content type ("" if none),
	 * all borrowed for the duration of the call. */
	enum qerr (*part_begin)(void *ctx, const char *name, const char *filename, const char *type, char **reterr);
	enum qerr (*part_data)(void *ctx, const void *data, size_t len, char **reterr);
	enum qerr (*part_end)(void *ctx, char **reterr);
};

/* A reader for the body of connection c, whose Content-Type must be multipart/form-data with a
 * boundary; h and ctx are borrowed. *ret: formdata_free(). */
enum qerr formdata_new(struct MHD_Connection *c, const struct formdata_handler *h, void *ctx, struct formdata **ret,
                       char **reterr) QUIRE_MUST_CHECK;
/* Feeds len more bytes. After an error the reader refuses further input. */
enum qerr formdata_feed(struct formdata *f, const void *data, size_t len, char **reterr) QUIRE_MUST_CHECK;
/* The body ended: QERR_BAD_INPUT unless it was complete (closing boundary seen). */
enum qerr formdata_finish(struct formdata *f, char **reterr) QUIRE_MUST_CHECK;
void formdata_free(struct formdata *f);

/* Whether a client's file name is acceptable as it is: 1 to FORMDATA_MAX_NAME bytes of valid
 * UTF-8, no control characters, no '/' or '\\', not "." or "..", not starting with '.'. Names
 * are refused rather than cleaned, so a traversal attempt is visible to the client. */
bool formdata_filename_ok(const char *name);
