/* rterror: the status codes every fallible function in runtime/ returns.
 *
 * runtime/ depends on nothing else of Quire's, so it carries its own small
 * status enum; extractors/ maps it onto the project-wide result type
 * (core/error.h). Each code's meaning is written once, in rterror.c. */
#pragma once

enum rterror {
	RTERROR_OK = 0,
	RTERROR_IO,          /* a file could not be opened, read or mapped */
	RTERROR_FORMAT,      /* a model file or input is malformed or truncated */
	RTERROR_UNSUPPORTED, /* well-formed but not supported (architecture, tensor type, template) */
	RTERROR_LIMIT,       /* a configured or built-in limit was reached (context, tokens, size) */
	RTERROR_NOMEM,       /* an allocation failed */
	RTERROR_TIMEOUT,     /* a time limit was reached */
	RTERROR_BUSY,        /* a backend is busy or unavailable; retry later */
	RTERROR_BACKEND,     /* a remote backend answered with an error or an invalid reply */
	RTERROR_INVALID,     /* the caller passed an invalid argument (a bug in the caller) */
	RTERROR_COUNT
};

/* A short, static English description of a status code. */
const char *rterror_str(enum rterror err);

/* Whether retrying the same call later may succeed (timeouts, busy backends). */
int rterror_is_transient(enum rterror err);

/* Formats an error message into a newly malloc'd string stored in *reterr
 * (if reterr is not NULL) and returns err. The caller frees *reterr with free(). */
enum rterror rterror_set(char **reterr, enum rterror err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
