/* bench_model: `quire model bench` as a stand-alone program: prompt and
 * generation speed of a GGUF file, peak memory, memory bandwidth, and, where
 * llama.cpp's llama-bench is at hand, its figures for the same file measured in
 * the same run, with the ratios.
 *
 * usage: bench_model FILE [-t THREADS] [-p PROMPT] [-n GEN] [-c CTX] [-r REPS] [-f] [-B] [-R LLAMA_BENCH] [-N]
 *   -f: compute in F32 (MATMUL_F32) instead of rounding activations
 *   -B: skip the bandwidth measurement
 *   -R: the llama-bench to run (default: searched as `quire model bench` does); -N: none */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/bench.h"

int main(int argc, char **argv)
{
	struct bench_opts o;
	bench_opts_default(&o);
	int c;
	while ((c = getopt(argc, argv, "t:p:n:c:r:fBR:N")) != -1) {
		switch (c) {
		case 't': o.n_threads = (int)strtol(optarg, NULL, 10); break;
		case 'p': o.n_prompt = (int)strtol(optarg, NULL, 10); break;
		case 'n': o.n_gen = (int)strtol(optarg, NULL, 10); break;
		case 'c': o.n_ctx = (int)strtol(optarg, NULL, 10); break;
		case 'r': o.reps = (int)strtol(optarg, NULL, 10); break;
		case 'f': o.prec = MATMUL_F32; break;
		case 'B': o.bandwidth = false; break;
		case 'R': o.reference = optarg; break;
		case 'N': o.no_reference = true; break;
		default:
			fprintf(stderr, "usage: bench_model FILE [-t THREADS] [-p PROMPT] [-n GEN] [-c CTX] [-r REPS] [-f] [-B] [-R LLAMA_BENCH] [-N]\n");
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "bench_model: name one GGUF file\n");
		return 2;
	}
	struct bench_result r;
	char *msg = NULL;
	enum rterror err = bench_run(argv[optind], &o, &r, &msg);
	if (err) {
		fprintf(stderr, "bench_model: %s: %s\n", argv[optind], msg ? msg : rterror_str(err));
		free(msg);
		return 1;
	}
	bench_print(stdout, &r);
	return 0;
}
