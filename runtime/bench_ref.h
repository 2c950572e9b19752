/* bench_ref: the reference engine's benchmark (llama.cpp's llama-bench) run
 * on the same file, threads and lengths as Quire's own measurement, in the
 * same run, so that a ratio compares two programs on one machine. The tool is
 * a developer's aid and never shipped: it is used where it is found, and the
 * benchmark prints Quire's figures alone where it is not. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "runtime/rterror.h"

struct bench_ref_result {
	char variant[64]; /* the CPU variant it loaded ("icelake", "haswell"), "" if not said */
	double pp_tps, tg_tps;
};

/* The llama-bench to use: given (checked to be executable), else the first of
 * llama-bench beside the running program, beside the model file, and
 * ../shared/tools/llama.cpp/llama-bench from the current directory. malloc'd
 * path, or NULL when there is none. */
char *bench_ref_find(const char *given, const char *model_path);

/* Runs tool on model_path with n_threads threads, one n_prompt-token prompt
 * test and one n_gen-token generation test, reps repetitions each. kernels
 * names Quire's kernel set ("avx2", "avx512", ...): the tool is then limited
 * to its CPU variants of that instruction set (a private folder holding a copy
 * of its program and only those variants), so both run the same instructions;
 * NULL: the tool picks its best. On failure *reterr (if not NULL) gets a
 * malloc'd message with the tool's own words. */
enum rterror bench_ref_run(const char *tool, const char *model_path, int n_threads, int n_prompt, int n_gen, int reps,
                           const char *kernels, struct bench_ref_result *ret, char **reterr)
    __attribute__((warn_unused_result));

/* The processor's name from /proc/cpuinfo ("AMD EPYC 9R14"), or "unknown processor". */
void bench_cpu_name(char *buf, size_t size);
