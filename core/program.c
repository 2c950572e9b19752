/* program: see program.h. */
#include "core/program.h"

#include <glib.h>

char *program_path(const char *name, const char *installed)
{
	g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
	if (self) {
		g_autofree char *dir = g_path_get_dirname(self);
		char *beside = g_build_filename(dir, name, NULL);
		if (g_file_test(beside, G_FILE_TEST_IS_EXECUTABLE))
			return beside;
		g_free(beside);
	}
	return g_strdup(installed);
}
