/* openai: a client for OpenAI-compatible chat completion servers on the local
 * network (llama-server, vLLM, Ollama), used when the model runs elsewhere.
 *
 * One call is one POST to {base}/v1/chat/completions (or {base}/chat/completions
 * when base already ends in /v1), non-streaming, with the schema sent as
 * response_format json_schema (strict). Connection failures, 429 and 5xx answers
 * are retried with exponential backoff; a total timeout is not (the server was
 * reached and is slow; retrying would multiply the wait). Whatever the server
 * claims, the reply's content is validated against the schema here: servers
 * that ignore response_format still answer 200. Reply bodies larger than
 * OPENAI_MAX_BODY are refused. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "runtime/jsonschema.h"
#include "runtime/rterror.h"

#define OPENAI_MAX_BODY ((size_t)8 << 20)
#define OPENAI_MAX_RETRIES 10

struct openai_config {
	const char *base_url;    /* http:// or https:// */
	const char *model;       /* sent as "model"; may be NULL */
	const char *api_key;     /* sent as a bearer token; may be NULL */
	long connect_timeout_ms; /* <= 0: 10 s */
	long timeout_ms;         /* whole request; <= 0: 120 s */
	int retries;             /* extra attempts after the first, at most OPENAI_MAX_RETRIES */
	long backoff_ms;         /* first retry delay, doubled each time; <= 0: 500 ms */
};

struct openai_message {
	const char *role; /* "system", "user", "assistant" */
	const char *content;
};

struct openai_request {
	const struct openai_message *msgs;
	size_t n_msgs;
	const char *schema_json;         /* NULL: free text */
	const struct jsonschema *schema; /* compiled schema_json, for checking the reply */
	int32_t max_tokens;              /* <= 0: not sent */
	float temperature;
	float top_p; /* sent when in (0, 1) */
	uint64_t seed;
	const char *const *stop;
	size_t n_stop;
};

struct openai_reply {
	char *content; /* malloc'd, NUL-terminated */
	size_t content_len;
	char *finish_reason;   /* malloc'd; "stop", "length", ... or NULL */
	int32_t prompt_tokens; /* from "usage"; -1 when absent */
	int32_t completion_tokens;
	int attempts; /* requests made */
};

/* Sends req. On success *ret is filled (free its members with openai_reply_done()).
 * Errors: RTERROR_TIMEOUT (no complete answer in time), RTERROR_BUSY (could not
 * connect, or 429/5xx after every retry), RTERROR_BACKEND (any other error status,
 * an unreadable reply, or content that does not match the schema), RTERROR_LIMIT
 * (reply too large), RTERROR_INVALID (bad configuration). */
enum rterror openai_chat(const struct openai_config *cfg, const struct openai_request *req, struct openai_reply *ret,
                         char **reterr) __attribute__((warn_unused_result));
void openai_reply_done(struct openai_reply *r);
