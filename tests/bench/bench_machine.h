/* bench_machine: the line a benchmark prints first, naming where its figures were measured. */
#pragma once

/* Prints "processor: MODEL, N cores; load average at start L" and a newline. */
void bench_print_machine(void);
