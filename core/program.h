/* program: where quire's own programs are. */
#pragma once

/* The program called name in the folder of the running program (a build tree,
 * or the libexec folder once installed) when it is there and executable, else
 * installed. Free with g_free. */
char *program_path(const char *name, const char *installed);
