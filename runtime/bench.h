/* bench: speed of a GGUF model on this machine, measured as the reference
 * engine's llama-bench measures it (pp: one prompt of n_prompt tokens as a
 * batch from an empty context; tg: n_gen tokens one at a time from an empty
 * context), with peak memory and the machine's memory read bandwidth measured in
 * the same run. Where the reference engine's llama-bench is at hand
 * (bench_ref.h) it runs on the same file with the same threads and lengths in
 * the same run, and the ratios compare the two; without it, Quire's figures
 * stand alone. No figure is ever compared with one from another machine. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/bench_ref.h"
#include "runtime/matmul.h"
#include "runtime/rterror.h"

struct bench_opts {
	int n_threads;              /* <= 0: one per core */
	int n_prompt;               /* default 512 */
	int n_gen;                  /* default 128 */
	int n_ctx;                  /* context to allocate; <= 0: 4096 (or the model's, if smaller) */
	int reps;                   /* repetitions of each measurement, averaged; <= 0: 1 */
	bool bandwidth;             /* also measure memory read bandwidth */
	enum matmul_precision prec; /* MATMUL_ROUNDED for speed */
	const char *reference;      /* llama-bench to run beside; NULL: bench_ref_find's search */
	bool no_reference;          /* Quire's figures only */
};

/* Options as `quire model bench` uses them by default. */
void bench_opts_default(struct bench_opts *o);

struct bench_result {
	char arch[16];
	char file_type[16]; /* "Q4_K_M", ... from general.file_type, "?" if unknown */
	int32_t n_embd, n_layer, n_vocab, n_ctx;
	int n_threads;
	const char *kernels; /* kernel version in use (static string) */
	uint64_t file_bytes;
	uint64_t bytes_per_token; /* weight bytes read to generate one token */
	int n_prompt, n_gen;
	double pp_tps, tg_tps; /* tokens per second, averaged over the repetitions */
	double pp_best_tps;    /* the fastest repetition of pp */
	double tg_median_tps;  /* from the median time of one generated token: on a
	                        * shared machine, what the code does when it has the cores */
	char cpu[96];          /* the processor's name */
	bool ref_asked;        /* a reference was wanted (not no_reference) */
	bool ref_ran;          /* the reference tool ran: ref holds its figures */
	struct bench_ref_result ref;
	char ref_tool[256];      /* the tool's path, "" when none was found */
	char ref_error[512];     /* why it gave no figures, "" if it did or was not found */
	double bandwidth_gbs;    /* measured read bandwidth, 0 if not measured */
	uint64_t peak_rss_bytes; /* getrusage maxrss */
	uint64_t vm_hwm_bytes;   /* /proc/self/status VmHWM, 0 if unavailable */
	uint64_t vm_peak_bytes;  /* VmPeak: address space, as if the whole context (KV cache)
	                          * and every allocation were resident; 0 if unavailable */
};

/* Loads path and measures it. On failure *reterr (if not NULL) gets a malloc'd message. */
enum rterror bench_run(const char *path, const struct bench_opts *o, struct bench_result *ret, char **reterr)
    __attribute__((warn_unused_result));
/* Prints a result as lines of text. */
void bench_print(FILE *out, const struct bench_result *r);
/* Measures memory read bandwidth with n_threads threads over a buffer of mib MiB;
 * GB/s, or 0 when the buffer cannot be had. */
double bench_bandwidth(int n_threads, int mib);
