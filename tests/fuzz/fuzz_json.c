/* Fuzz target: core/json parsing with its depth and size limits. */
#include "tests/fuzz/fuzz_main.h"

#include <glib.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json *j = NULL;
	g_autofree char *err = NULL;
	if (json_parse((const char *)data, size, &j, &err) == QERR_OK) {
		g_autofree char *text = json_format(j, false);
		g_assert_nonnull(text);
		json_free(j);
	} else {
		g_assert_nonnull(err);
	}
	return 0;
}
