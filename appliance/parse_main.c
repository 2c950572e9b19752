/* parse_main: quire-parse, the PDF parser program and its launcher.
 *
 * Installed in quire's libexec folder and started by quire only: `quire-parse
 * launcher` by a worker or web server, `quire-parse parse ...` by the launcher
 * (extractors/sandbox.h says what each may do). */
#include "extractors/sandbox.h"

int main(int argc, char **argv)
{
	return sandbox_program_main(argc, argv);
}
