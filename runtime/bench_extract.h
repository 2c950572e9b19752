/* bench_extract: the time of a whole extraction, as the appliance makes it
 * (system text with the schema, instructions, one page of invoice text, an
 * answer under the schema constraint), with the extraction speed-ups (the
 * fixed start of the prompt taken from the KV cache, forced tokens in one
 * batch, drafts from the page) and plainly (every token a forward pass of its
 * own, nothing cached, no drafts), measured in the same run on the same model.
 * The page is generated: a deterministic invoice grown to the wanted number of
 * tokens with the model's own tokenizer. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/rterror.h"

struct bench_extract_opts {
	int n_threads;             /* <= 0: one per core */
	int32_t n_ctx;             /* <= 0: 4096 */
	int page_tokens;           /* the page's length; <= 0: 1500 */
	int max_tokens;            /* answer limit; <= 0: 768 */
	int reps;                  /* pairs of runs; <= 0: 1 */
	const char *chat_template; /* NULL: the file's */
	/* The request's texts (borrowed): the system message, and the user's message
	 * before and after the page text. */
	const char *system, *head, *tail;
	const char *schema; /* JSON Schema text of the answer */
};

struct bench_extract_run {
	double seconds, prompt_s, answer_s;
	int32_t prompt_tokens, reused, answer_tokens, forced, drafted, accepted, passes;
};

struct bench_extract_result {
	char cpu[96];
	const char *kernels; /* static */
	int n_threads;
	char arch[16];
	uint64_t file_bytes;
	int32_t page_tokens;
	double first_s;                       /* an earlier, shorter document: the fixed start's one evaluation */
	struct bench_extract_run plain, fast; /* averaged over the repetitions */
	bool identical;                       /* the same answer, token for token, every time */
};

/* Measures path. On failure *reterr (if not NULL) gets a malloc'd message. */
enum rterror bench_extract_run(const char *path, const struct bench_extract_opts *o, struct bench_extract_result *ret,
                               char **reterr) __attribute__((warn_unused_result));
void bench_extract_print(FILE *out, const struct bench_extract_result *r);
