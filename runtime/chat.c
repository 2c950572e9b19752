/* chat: prompt formats for chat models.
 *
 * A formatted conversation is built as a list of parts, each marked trusted
 * (the template's own markers) or not (message content), so that the same list
 * gives both the prompt text and a tokenization in which only the markers can
 * become special tokens. */
#include "runtime/chat.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/gguf.h"
#include "runtime/tokenizer.h"

static const char *const template_names[CHAT_TEMPLATE_COUNT] = {
	[CHAT_TEMPLATE_CHATML] = "chatml",
	[CHAT_TEMPLATE_LLAMA3] = "llama3",
	[CHAT_TEMPLATE_MISTRAL] = "mistral",
	[CHAT_TEMPLATE_PHI3] = "phi3",
	[CHAT_TEMPLATE_GEMMA] = "gemma",
};

/* A marker that only the template of that format contains. */
static const char *const template_markers[CHAT_TEMPLATE_COUNT] = {
	[CHAT_TEMPLATE_CHATML] = "<|im_start|>",
	[CHAT_TEMPLATE_LLAMA3] = "<|start_header_id|>",
	[CHAT_TEMPLATE_MISTRAL] = "[INST]",
	[CHAT_TEMPLATE_PHI3] = "<|end|>",
	[CHAT_TEMPLATE_GEMMA] = "<start_of_turn>",
};

const char *chat_template_name(enum chat_template t)
{
	return (unsigned)t < CHAT_TEMPLATE_COUNT ? template_names[t] : "unknown";
}

enum rterror chat_template_from_name(const char *name, enum chat_template *ret, char **reterr)
{
	for (int i = 0; name && i < CHAT_TEMPLATE_COUNT; i++) {
		if (strcmp(name, template_names[i]) == 0) {
			*ret = (enum chat_template)i;
			return RTERROR_OK;
		}
	}
	return rterror_set(reterr, RTERROR_UNSUPPORTED,
	                   "unknown chat template name \"%.64s\" (known: chatml, llama3, mistral, phi3, gemma)",
	                   name ? name : "");
}

static enum rterror detect(const char *jinja, size_t len, enum chat_template *ret, char **reterr)
{
	for (int i = 0; jinja && i < CHAT_TEMPLATE_COUNT; i++) {
		if (memmem(jinja, len, template_markers[i], strlen(template_markers[i]))) {
			*ret = (enum chat_template)i;
			return RTERROR_OK;
		}
	}
	return rterror_set(reterr, RTERROR_UNSUPPORTED,
	                   "%s chat template: only ChatML, Llama 3, Mistral, Phi-3 and Gemma formats are "
	                   "supported; name one in the configuration (chatml, llama3, mistral, phi3, gemma)",
	                   jinja && len ? "unrecognised" : "the model has no");
}

enum rterror chat_template_detect(const char *jinja, enum chat_template *ret, char **reterr)
{
	return detect(jinja, jinja ? strlen(jinja) : 0, ret, reterr);
}

enum rterror chat_template_from_gguf(const struct gguf_file *f, enum chat_template *ret,
                                     char **reterr)
{
	struct gguf_str s = {0};
	if (!f || !gguf_get_str(f, "tokenizer.chat_template", &s))
		return detect(NULL, 0, ret, reterr);
	return detect(s.ptr, (size_t)s.len, ret, reterr);
}

struct parts {
	struct tokenizer_part v[5 * CHAT_MAX_MESSAGES + 1]; /* at most five per message, one more to answer */
	size_t n;
};

static void add(struct parts *p, const char *text, bool trusted)
{
	p->v[p->n++] = (struct tokenizer_part){text, strlen(text), trusted};
}

static bool role_ok(const char *r)
{
	return r && (!strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant"));
}

static void build_mistral(const struct chat_message *m, size_t n, struct parts *p)
{
	const char *sys = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(m[i].role, "system")) {
			sys = m[i].content;
		} else if (!strcmp(m[i].role, "user")) {
			add(p, "[INST] ", true);
			if (sys) {
				add(p, sys, false);
				add(p, "\n\n", true);
				sys = NULL;
			}
			add(p, m[i].content, false);
			add(p, " [/INST]", true);
		} else {
			add(p, m[i].content, false);
			add(p, "</s>", true);
		}
	}
}

/* <|role|>\n content <|end|>\n for each message. */
static void build_phi3(const struct chat_message *m, size_t n, bool gen, struct parts *p)
{
	for (size_t i = 0; i < n; i++) {
		add(p, !strcmp(m[i].role, "system") ? "<|system|>\n" : !strcmp(m[i].role, "user") ? "<|user|>\n"
		                                                                                 : "<|assistant|>\n",
		    true);
		add(p, m[i].content, false);
		add(p, "<|end|>\n", true);
	}
	if (gen)
		add(p, "<|assistant|>\n", true);
}

/* Gemma has user and model turns only: a system message opens the next user turn. */
static void build_gemma(const struct chat_message *m, size_t n, bool gen, struct parts *p)
{
	const char *sys = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(m[i].role, "system")) {
			sys = m[i].content;
			continue;
		}
		bool user = !strcmp(m[i].role, "user");
		add(p, user ? "<start_of_turn>user\n" : "<start_of_turn>model\n", true);
		if (sys && user) {
			add(p, sys, false);
			add(p, "\n\n", true);
			sys = NULL;
		}
		add(p, m[i].content, false);
		add(p, "<end_of_turn>\n", true);
	}
	if (gen)
		add(p, "<start_of_turn>model\n", true);
}

/* Fills p; the caller has checked n and the roles. */
static void build(enum chat_template t, const struct chat_message *m, size_t n, bool gen,
                  struct parts *p)
{
	p->n = 0;
	if (t == CHAT_TEMPLATE_MISTRAL) {
		build_mistral(m, n, p);
		return;
	}
	if (t == CHAT_TEMPLATE_PHI3) {
		build_phi3(m, n, gen, p);
		return;
	}
	if (t == CHAT_TEMPLATE_GEMMA) {
		build_gemma(m, n, gen, p);
		return;
	}
	bool chatml = t == CHAT_TEMPLATE_CHATML;
	for (size_t i = 0; i < n; i++) {
		add(p, chatml ? "<|im_start|>" : "<|start_header_id|>", true);
		add(p, m[i].role, true);
		add(p, chatml ? "\n" : "<|end_header_id|>\n\n", true);
		add(p, m[i].content, false);
		add(p, chatml ? "<|im_end|>\n" : "<|eot_id|>", true);
	}
	if (gen)
		add(p, chatml ? "<|im_start|>assistant\n" : "<|start_header_id|>assistant<|end_header_id|>\n\n",
		    true);
}

static enum rterror check(enum chat_template t, const struct chat_message *m, size_t n,
                          char **reterr)
{
	if ((unsigned)t >= CHAT_TEMPLATE_COUNT || (n && !m))
		return rterror_set(reterr, RTERROR_INVALID, "chat: invalid argument");
	if (n > CHAT_MAX_MESSAGES)
		return rterror_set(reterr, RTERROR_LIMIT, "chat: %zu messages (at most %d)", n,
		                   CHAT_MAX_MESSAGES);
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (!role_ok(m[i].role))
			return rterror_set(reterr, RTERROR_INVALID,
			                   "chat: message %zu has role \"%.32s\" (system, user or assistant)",
			                   i, m[i].role ? m[i].role : "");
		if (!m[i].content)
			return rterror_set(reterr, RTERROR_INVALID, "chat: message %zu has no content", i);
		total += strlen(m[i].content);
		if (total > CHAT_MAX_TEXT)
			return rterror_set(reterr, RTERROR_LIMIT, "chat: messages longer than %zu bytes",
			                   CHAT_MAX_TEXT);
	}
	return RTERROR_OK;
}

enum rterror chat_format(enum chat_template t, const struct chat_message *msgs, size_t n,
                         bool add_generation_prompt, char **ret, char **reterr)
{
	enum rterror err = check(t, msgs, n, reterr);
	if (err)
		return err;
	struct parts *p = malloc(sizeof *p);
	if (!p)
		return rterror_set(reterr, RTERROR_NOMEM, "chat: out of memory");
	build(t, msgs, n, add_generation_prompt, p);
	size_t total = 0;
	for (size_t i = 0; i < p->n; i++)
		total += p->v[i].len;
	char *s = malloc(total + 1);
	if (!s) {
		free(p);
		return rterror_set(reterr, RTERROR_NOMEM, "chat: out of memory");
	}
	size_t off = 0;
	for (size_t i = 0; i < p->n; i++) {
		memcpy(s + off, p->v[i].text, p->v[i].len);
		off += p->v[i].len;
	}
	s[off] = 0;
	free(p);
	*ret = s;
	return RTERROR_OK;
}

enum rterror chat_encode(enum chat_template t, const struct tokenizer *tok,
                         const struct chat_message *msgs, size_t n, bool add_generation_prompt,
                         size_t max_tokens, int32_t **ret_ids, size_t *ret_n, char **reterr)
{
	enum rterror err = check(t, msgs, n, reterr);
	if (err)
		return err;
	if (!tok)
		return rterror_set(reterr, RTERROR_INVALID, "chat: no tokenizer");
	struct parts *p = malloc(sizeof *p);
	if (!p)
		return rterror_set(reterr, RTERROR_NOMEM, "chat: out of memory");
	build(t, msgs, n, add_generation_prompt, p);
	err = tokenizer_encode_parts(tok, p->v, p->n, tokenizer_add_bos(tok), max_tokens, ret_ids,
	                             ret_n, reterr);
	free(p);
	return err;
}
