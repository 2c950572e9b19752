/* rterror: descriptions of runtime/'s status codes and the error-message helper. */
#include "runtime/rterror.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const descriptions[RTERROR_COUNT] = {
	[RTERROR_OK] = "success",
	[RTERROR_IO] = "input/output error",
	[RTERROR_FORMAT] = "malformed input",
	[RTERROR_UNSUPPORTED] = "unsupported feature",
	[RTERROR_LIMIT] = "limit reached",
	[RTERROR_NOMEM] = "out of memory",
	[RTERROR_TIMEOUT] = "time limit reached",
	[RTERROR_BUSY] = "backend busy or unavailable",
	[RTERROR_BACKEND] = "backend error",
	[RTERROR_INVALID] = "invalid argument",
};

const char *rterror_str(enum rterror err)
{
	if ((unsigned)err >= RTERROR_COUNT)
		return "unknown error";
	return descriptions[err];
}

int rterror_is_transient(enum rterror err)
{
	return err == RTERROR_TIMEOUT || err == RTERROR_BUSY;
}

enum rterror rterror_set(char **reterr, enum rterror err, const char *fmt, ...)
{
	if (!reterr)
		return err;
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	free(*reterr);
	*reterr = msg;
	return err;
}
