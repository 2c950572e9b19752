/* Fuzz target: the configuration file reader (GKeyFile plus our settings table). */
#include "tests/fuzz/fuzz_main.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "appliance/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *path;
	if (!path) {
		g_autofree char *dir = g_dir_make_tmp("quire-fuzz-config-XXXXXX", NULL);
		path = g_build_filename(dir, "quire.conf", NULL);
	}
	if (!g_file_set_contents(path, (const char *)data, (gssize)size, NULL))
		return 0;
	struct config *cfg = NULL;
	g_autofree char *err = NULL;
	if (config_load(path, &cfg, &err) == QERR_OK)
		config_free(cfg);
	else
		g_assert_nonnull(err);
	return 0;
}
