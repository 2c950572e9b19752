/* runtime: Quire's model runtime as the rest of Quire sees it.
 *
 * One opaque struct rt_model is either a local GGUF model (loaded, tokenized,
 * formatted with its chat template and run on the CPU here) or a remote
 * OpenAI-compatible endpoint. rt_generate() answers one request; with a JSON
 * Schema the output is always one compact JSON value valid for the schema
 * (locally by constrained decoding, remotely by validating the reply).
 *
 * A struct rt_model is used by one thread at a time. It remembers which tokens
 * its KV cache holds, so a request that starts like the previous one (the same
 * system prompt) evaluates only what differs. Nothing here logs; every failure
 * comes back as an rterror code with a message. This is the only runtime/
 * header the rest of Quire includes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rterror.h"

struct rt_model;

struct rt_local_options {
	int n_threads; /* <= 0: one per core */
	int32_t n_ctx; /* <= 0: the training context, at most RT_DEFAULT_CTX */
	/* NULL: recognised from the file's tokenizer.chat_template (a file without a
	 * template is a plain completion model, as with "raw"); otherwise "chatml",
	 * "llama3", "mistral", "phi3", "gemma", or "raw" (no chat formatting: the
	 * system text, then the prompt, tokenized as they are). */
	const char *chat_template;
	bool exact; /* F32 arithmetic on dequantized weights (slower) */
	/* LoRA adapters applied at load, without merging: "FILE[@SCALE], ..." (scale
	 * 1 when left out), each a GGUF adapter for the model's architecture.
	 * NULL or empty: none. */
	const char *adapters;
};

#define RT_DEFAULT_CTX 4096

struct rt_remote_options {
	const char *base_url;    /* http(s)://host:port, with or without /v1 */
	const char *model;       /* model name the server knows; may be NULL */
	const char *api_key;     /* may be NULL */
	long connect_timeout_ms; /* <= 0: 10 s */
	long timeout_ms;         /* per attempt; <= 0: 120 s */
	int retries;             /* extra attempts on 5xx/429/connection errors */
};

/* Opens a local model. *ret is owned by the caller; close with rt_model_close().
 * RTERROR_UNSUPPORTED (with the template's kind and how to name one) when the
 * file's chat template is not recognised and none is named. */
enum rterror rt_model_open_local(const char *path, const struct rt_local_options *opts, struct rt_model **ret,
                                 char **reterr) __attribute__((warn_unused_result));
/* A remote endpoint; nothing is contacted until rt_generate(). The strings are copied. */
enum rterror rt_model_open_remote(const struct rt_remote_options *opts, struct rt_model **ret, char **reterr)
    __attribute__((warn_unused_result));
void rt_model_close(struct rt_model *m);

#define RT_MAX_TYPES 16
#define RT_MAX_ADAPTERS 16

struct rt_adapter_info {
	const char *path;
	float alpha, scale; /* alpha 0: the file gives none (the factor is the scale) */
	int32_t rank;
	int32_t n_weights; /* weight matrices it changes */
	uint64_t bytes;
};

struct rt_type_count {
	const char *name; /* "Q4_K", static */
	uint32_t tensors;
	uint64_t bytes;
};

/* What `quire model info` prints. Strings are borrowed from the model. */
struct rt_model_info {
	bool remote;
	const char *arch;          /* "llama", "qwen2", "phi3", "gemma2", "gemma3"; the base URL for a remote model */
	const char *chat_template; /* "chatml", "llama3", "mistral", "phi3", "gemma", "raw" */
	const char *tokenizer;     /* "llama" (SentencePiece) or "gpt2" (byte-level BPE) */
	int32_t n_vocab, n_ctx_train, n_ctx, n_embd, n_layer, n_head, n_head_kv, n_ff;
	uint64_t n_params, weight_bytes, file_bytes;
	uint32_t n_types;
	struct rt_type_count types[RT_MAX_TYPES];
	uint32_t n_adapters;
	struct rt_adapter_info adapters[RT_MAX_ADAPTERS];
};

/* Fills *ret (caller's storage; valid while m is open). */
void rt_model_describe(const struct rt_model *m, struct rt_model_info *ret);

struct rt_request {
	const char *system;    /* may be NULL */
	const char *prompt;    /* the user's text */
	const char *schema;    /* JSON Schema text (subset: see jsonschema.h); NULL: free text */
	int32_t max_tokens;    /* generated tokens; <= 0: 512 */
	int64_t time_limit_ms; /* whole call; <= 0: none */
	float temperature;     /* <= 0: greedy */
	int32_t top_k;         /* <= 0: no limit */
	float top_p;           /* outside (0, 1): no limit */
	uint64_t seed;
	const char *const *stop; /* stop strings (free text only); the match is cut off */
	size_t n_stop;
	/* Local models: every token through the model one step at a time, nothing
	 * taken from the KV cache, no drafts: the baseline the benchmarks compare
	 * with. The output is the same either way. */
	bool plain;
};

enum rt_stop {
	RT_STOP_END,        /* end-of-generation token, or the schema's value is complete */
	RT_STOP_STRING,     /* a stop string appeared */
	RT_STOP_MAX_TOKENS, /* max_tokens reached (or the context is full) */
	RT_STOP_TIME,       /* time limit reached */
	RT_STOP_COUNT
};

struct rt_token {
	int32_t id;
	uint32_t offset, len; /* the token's bytes in rt_result.text */
	/* The model's probability for this token: softmax of the raw logits
	 * (temperature 1) over the tokens allowed at that step, before top-k/top-p.
	 * 1 for tokens the schema forced without asking the model. */
	float prob;
	bool forced;
};

struct rt_result {
	char *text; /* NUL-terminated */
	size_t text_len;
	struct rt_token *tokens; /* local models only; NULL for remote ones */
	size_t n_tokens;
	/* With a schema and a limit reached, the value was closed by appending the
	 * shortest valid ending: text_len - closed_len bytes came from tokens. */
	size_t closed_len;
	int32_t n_prompt; /* prompt tokens */
	int32_t n_reused; /* of which taken from the KV cache */
	int32_t n_forced; /* generated tokens the schema forced */
	/* Greedy decoding drafts tokens by finding the last tokens earlier in the
	 * context (values copied from the page) and has the model check a draft in
	 * one batch; n_accepted of the n_drafted were what it would have chosen. */
	int32_t n_drafted, n_accepted;
	int32_t n_evals; /* forward passes after the prompt */
	double prompt_ms, gen_ms;
	double prompt_tps, gen_tps; /* tokens per second (evaluated prompt tokens; generated) */
	enum rt_stop stop;
};

/* Answers req. *ret is owned by the caller; free with rt_result_free().
 * RTERROR_LIMIT when the prompt does not fit the context; schema errors as
 * jsonschema.h describes (RTERROR_UNSUPPORTED naming the keyword and path);
 * remote errors as openai.h describes. */
enum rterror rt_generate(struct rt_model *m, const struct rt_request *req, struct rt_result **ret, char **reterr)
    __attribute__((warn_unused_result));
void rt_result_free(struct rt_result *r);
const char *rt_stop_name(enum rt_stop s);

/* How many tokens text makes with a local model's tokenizer (no template, no
 * begin-of-text token): RTERROR_INVALID for a remote model. */
enum rterror rt_count_tokens(struct rt_model *m, const char *text, int32_t *ret, char **reterr)
    __attribute__((warn_unused_result));

/* Checks that json_text[0..len) is valid for schema_text: RTERROR_OK, or
 * RTERROR_FORMAT with the path of the first problem (schema errors as above). */
enum rterror rt_schema_validate(const char *schema_text, const char *json_text, size_t len, char **reterr)
    __attribute__((warn_unused_result));
