/* bench_machine: the processor and load a benchmark's figures come from. */
#include "tests/bench/bench_machine.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_print_machine(void)
{
	g_autofree char *cpu = NULL;
	g_autofree char *model = NULL;
	if (g_file_get_contents("/proc/cpuinfo", &cpu, NULL, NULL)) {
		const char *m = strstr(cpu, "model name");
		const char *colon = m ? strchr(m, ':') : NULL;
		if (colon)
			model = g_strndup(colon + 2, strcspn(colon + 2, "\n"));
	}
	double load[3] = {0};
	if (getloadavg(load, 3) < 0)
		load[0] = -1;
	printf("processor: %s, %u cores; load average at start %.2f\n", model ? model : "unknown",
	       g_get_num_processors(), load[0]);
}
