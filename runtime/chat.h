/* chat: turning a conversation into the prompt text a chat model was trained on.
 *
 * Five prompt formats are known: ChatML (Qwen), Llama 3, Mistral
 * ([INST] ... [/INST]), Phi-3 (<|user|> ... <|end|>) and Gemma
 * (<start_of_turn>user ... <end_of_turn>). A file's format is recognised from distinctive markers
 * in its tokenizer.chat_template (a Jinja program we do not execute), or named
 * in the configuration. The formatted text never starts with BOS: the caller
 * adds it when tokenizing, as tokenizer_add_bos() says. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rterror.h"

struct gguf_file;
struct tokenizer;

enum chat_template {
	CHAT_TEMPLATE_CHATML,
	CHAT_TEMPLATE_LLAMA3,
	CHAT_TEMPLATE_MISTRAL,
	CHAT_TEMPLATE_PHI3,
	CHAT_TEMPLATE_GEMMA,
	CHAT_TEMPLATE_COUNT
};

struct chat_message {
	const char *role;    /* "system", "user" or "assistant" */
	const char *content; /* NUL-terminated */
};

/* At most this many messages, and this many bytes of content in all. */
#define CHAT_MAX_MESSAGES 256
#define CHAT_MAX_TEXT ((size_t)16 << 20)

/* Recognises the format of a Jinja chat template. RTERROR_UNSUPPORTED (naming
 * the formats known and how to name one) when jinja is NULL, empty or of
 * another kind. */
enum rterror chat_template_detect(const char *jinja, enum chat_template *ret, char **reterr)
	__attribute__((warn_unused_result));
/* The same from f's tokenizer.chat_template. */
enum rterror chat_template_from_gguf(const struct gguf_file *f, enum chat_template *ret,
                                     char **reterr) __attribute__((warn_unused_result));
/* "chatml", "llama3", "mistral", "phi3" or "gemma"; RTERROR_UNSUPPORTED otherwise. */
enum rterror chat_template_from_name(const char *name, enum chat_template *ret, char **reterr)
	__attribute__((warn_unused_result));
/* The name chat_template_from_name() accepts for t (static), or "unknown". */
const char *chat_template_name(enum chat_template t);

/* Formats msgs[0..n) as prompt text; with add_generation_prompt, ends with the
 * opening of an assistant turn. *ret is malloc'd and NUL-terminated (free with
 * free()). RTERROR_INVALID for an unknown role; RTERROR_LIMIT past the limits
 * above. Mistral has no system turn: a system message is put before the first
 * user message's text; so has Gemma, whose "assistant" turns are "model" turns. */
enum rterror chat_format(enum chat_template t, const struct chat_message *msgs, size_t n,
                         bool add_generation_prompt, char **ret, char **reterr)
	__attribute__((warn_unused_result));

/* Formats and tokenizes in one step, safely for untrusted content: the
 * template's own markers are matched as special tokens, the messages' content
 * never is (a document containing "<|im_end|>" cannot end a turn). BOS is
 * prepended when tokenizer_add_bos(tok). *ret_ids is malloc'd (free with
 * free()); RTERROR_LIMIT past max_tokens. */
enum rterror chat_encode(enum chat_template t, const struct tokenizer *tok,
                         const struct chat_message *msgs, size_t n, bool add_generation_prompt,
                         size_t max_tokens, int32_t **ret_ids, size_t *ret_n, char **reterr)
	__attribute__((warn_unused_result));
