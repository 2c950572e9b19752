/* qerr: Quire's one result type.
 *
 * Every fallible function outside runtime/ returns an enum qerr. Codes are
 * grouped so that a caller (above all the worker) can decide what to do:
 * transient failures are retried later, permanent ones fail the job with a
 * message a person understands, internal ones are bugs. The meaning of each
 * code is written once, in qerr.c. A readable cause, when one exists, goes
 * into an optional `char **reterr` out-parameter (last in the list), set only
 * on failure and freed by the caller with g_free(). */
#pragma once

enum qerr {
	QERR_OK = 0,
	/* transient: retry later */
	QERR_DB_UNAVAILABLE,
	QERR_TIMEOUT,
	QERR_BUSY,
	/* permanent: bad or unsupported input, or a condition an operator must fix */
	QERR_NOT_FOUND,
	QERR_BAD_INPUT,
	QERR_NOT_PDF,
	QERR_EMPTY,
	QERR_TOO_LARGE,
	QERR_UNSUPPORTED,
	QERR_PARSE_FAILED,
	QERR_CONFIG,
	QERR_IO,
	QERR_CRYPTO,
	QERR_KEY,
	QERR_DB,
	QERR_SCHEMA_TOO_NEW,
	QERR_DEPENDENCY,
	QERR_MODEL,
	QERR_CONFLICT,
	QERR_DENIED,
	/* internal: a bug or resource exhaustion */
	QERR_NOMEM,
	QERR_INTERNAL,
	QERR_COUNT
};

enum qerr_group { QERR_GROUP_OK, QERR_GROUP_TRANSIENT, QERR_GROUP_PERMANENT, QERR_GROUP_INTERNAL };

/* Short static description of a code. */
const char *qerr_str(enum qerr e);
/* Which group a code belongs to. */
enum qerr_group qerr_group(enum qerr e);

/* Sets *reterr (when reterr is not NULL) to a newly formatted message, freeing
 * a previous one, and returns e. */
enum qerr qerr_set(char **reterr, enum qerr e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define QUIRE_MUST_CHECK __attribute__((warn_unused_result))
