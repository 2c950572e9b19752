/* qerr: the meaning of every result code, written once. */
#include "core/qerr.h"

#include <glib.h>
#include <stdarg.h>

static const struct {
	const char *text;
	enum qerr_group group;
} codes[QERR_COUNT] = {
	[QERR_OK] = {"success", QERR_GROUP_OK},
	[QERR_DB_UNAVAILABLE] = {"database unavailable", QERR_GROUP_TRANSIENT},
	[QERR_TIMEOUT] = {"timed out", QERR_GROUP_TRANSIENT},
	[QERR_BUSY] = {"busy, try again later", QERR_GROUP_TRANSIENT},
	[QERR_NOT_FOUND] = {"not found", QERR_GROUP_PERMANENT},
	[QERR_BAD_INPUT] = {"invalid input", QERR_GROUP_PERMANENT},
	[QERR_NOT_PDF] = {"not a PDF file", QERR_GROUP_PERMANENT},
	[QERR_EMPTY] = {"empty file", QERR_GROUP_PERMANENT},
	[QERR_TOO_LARGE] = {"input exceeds a configured limit", QERR_GROUP_PERMANENT},
	[QERR_UNSUPPORTED] = {"unsupported input", QERR_GROUP_PERMANENT},
	[QERR_PARSE_FAILED] = {"the document could not be parsed", QERR_GROUP_PERMANENT},
	[QERR_CONFIG] = {"configuration error", QERR_GROUP_PERMANENT},
	[QERR_IO] = {"input/output error", QERR_GROUP_PERMANENT},
	[QERR_CRYPTO] = {"decryption failed: data corrupted or wrong key", QERR_GROUP_PERMANENT},
	[QERR_KEY] = {"key missing or unusable", QERR_GROUP_PERMANENT},
	[QERR_DB] = {"database error", QERR_GROUP_PERMANENT},
	[QERR_SCHEMA_TOO_NEW] = {"database schema is newer than this program", QERR_GROUP_PERMANENT},
	[QERR_DEPENDENCY] = {"a required program or package is missing", QERR_GROUP_PERMANENT},
	[QERR_MODEL] = {"model error", QERR_GROUP_PERMANENT},
	[QERR_CONFLICT] = {"conflicting state", QERR_GROUP_PERMANENT},
	[QERR_DENIED] = {"authentication failed or permission denied", QERR_GROUP_PERMANENT},
	[QERR_NOMEM] = {"out of memory", QERR_GROUP_INTERNAL},
	[QERR_INTERNAL] = {"internal error", QERR_GROUP_INTERNAL},
};

const char *qerr_str(enum qerr e)
{
	if ((unsigned)e >= QERR_COUNT)
		return "unknown error";
	return codes[e].text;
}

enum qerr_group qerr_group(enum qerr e)
{
	if ((unsigned)e >= QERR_COUNT)
		return QERR_GROUP_INTERNAL;
	return codes[e].group;
}

enum qerr qerr_set(char **reterr, enum qerr e, const char *fmt, ...)
{
	if (!reterr)
		return e;
	va_list ap;
	va_start(ap, fmt);
	char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_free(*reterr);
	*reterr = msg;
	return e;
}
