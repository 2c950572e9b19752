/* runtime: the public API (runtime.h) over the model, tokenizer, chat formats,
 * sampler, schema constraint and the OpenAI-compatible client.
 *
 * Local generation keeps, next to the model context, the ids of the tokens its
 * KV cache holds (kv_ids[0..n_kv), always model_ctx_pos() of them). A new
 * request keeps the longest common prefix with them and evaluates the rest,
 * which is how an identical system prompt is evaluated once; the KV caches of
 * long system prompts are also saved aside (kvslots.h), so that requests with
 * another system prompt in between do not cost their evaluation again. Tokens the schema
 * forces are queued and evaluated together with the next batch, so a forced
 * run of keys and punctuation costs one forward pass. Greedy decoding adds a
 * draft (draft.h) to that batch, takes logits for every position of it, and
 * keeps the drafted tokens as long as they are what the model (under the
 * constraint) would have chosen; the KV cache is cut back past the first
 * wrong one. A token's logits do not depend on how the tokens before it were
 * batched (no batch after the prompt reaches the kernels' batched path,
 * RT_BATCH_MAX), so the output equals plain one-step-at-a-time decoding. The
 * compiled schema and its constraint (with its mask cache) are kept while
 * requests bring the same schema text. */
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/chat.h"
#include "runtime/constraint.h"
#include "runtime/draft.h"
#include "runtime/gguf.h"
#include "runtime/jsonschema.h"
#include "runtime/kvslots.h"
#include "runtime/model.h"
#include "runtime/openai.h"
#include "runtime/sampler.h"
#include "runtime/tokenizer.h"

#define RT_DEFAULT_MAX_TOKENS 512
#define RT_MAX_TEXT ((size_t)4 << 20)
/* Most tokens in one forward pass after the prompt (queued forced tokens and a
 * draft): below the kernels' batched-path threshold (matmul.c), so every
 * token's arithmetic is that of a single step. */
#define RT_BATCH_MAX 31
/* Longest draft; a draft grows while the model accepts whole drafts. */
#define RT_DRAFT_MAX 16
#define RT_DRAFT_START 4

struct rt_model {
	bool remote;
	struct rt_model_info info;
	/* remote */
	char *base_url, *remote_model, *api_key;
	struct openai_config ocfg;
	/* local */
	struct model *model;
	struct model_ctx *ctx;
	struct tokenizer *tok;
	bool raw;
	enum chat_template tmpl;
	int32_t n_ctx, n_vocab;
	int32_t *kv_ids;
	int32_t n_kv;
	float *logits;
	float *batch_logits; /* RT_BATCH_MAX rows, allocated at the first draft */
	struct kvslots *slots;
	struct constraint_vocab *cvocab;
	char *schema_text;
	struct jsonschema *schema;
	struct constraint *cons;
	char tokenizer_name[16];
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *rt_stop_name(enum rt_stop s)
{
	static const char *const names[RT_STOP_COUNT] = {"end", "stop string", "max tokens", "time limit"};
	return (unsigned)s < RT_STOP_COUNT ? names[s] : "unknown";
}

void rt_model_close(struct rt_model *m)
{
	if (!m)
		return;
	free(m->base_url);
	free(m->remote_model);
	free(m->api_key);
	model_ctx_free(m->ctx);
	model_free(m->model);
	tokenizer_free(m->tok);
	free(m->kv_ids);
	free(m->logits);
	free(m->batch_logits);
	kvslots_free(m->slots);
	constraint_free(m->cons);
	jsonschema_free(m->schema);
	free(m->schema_text);
	constraint_vocab_free(m->cvocab);
	free(m);
}

static enum rterror pick_template(struct rt_model *m, const struct gguf_file *f, const char *name, char **reterr)
{
	if (name && strcmp(name, "raw") == 0) {
		m->raw = true;
		return RTERROR_OK;
	}
	if (name) {
		char *why = NULL;
		enum rterror e = chat_template_from_name(name, &m->tmpl, &why);
		if (e)
			rterror_set(reterr, e, "%s; or raw for no chat formatting", why ? why : rterror_str(e));
		free(why);
		return e;
	}
	if (gguf_find_key(f, "tokenizer.chat_template") < 0) {
		m->raw = true; /* a completion model */
		return RTERROR_OK;
	}
	return chat_template_from_gguf(f, &m->tmpl, reterr);
}

static void describe_local(struct rt_model *m)
{
	const struct model_info *mi = model_get_info(m->model);
	const struct gguf_file *f = model_gguf(m->model);
	struct rt_model_info *in = &m->info;
	in->arch = mi->arch_name;
	in->chat_template = m->raw ? "raw" : chat_template_name(m->tmpl);
	struct gguf_str ts;
	if (gguf_get_str(f, "tokenizer.ggml.model", &ts))
		snprintf(m->tokenizer_name, sizeof(m->tokenizer_name), "%.*s", (int)ts.len, ts.ptr);
	in->tokenizer = m->tokenizer_name;
	in->n_vocab = m->n_vocab;
	in->n_ctx_train = mi->n_ctx_train;
	in->n_ctx = m->n_ctx;
	in->n_embd = mi->n_embd;
	in->n_layer = mi->n_layer;
	in->n_head = mi->n_head;
	in->n_head_kv = mi->n_head_kv;
	in->n_ff = mi->n_ff;
	in->n_params = mi->n_params;
	in->weight_bytes = mi->weight_bytes;
	in->file_bytes = gguf_file_size(f);
	for (int i = 0; i < model_n_adapters(m->model) && i < RT_MAX_ADAPTERS; i++) {
		const struct model_adapter_info *a = model_adapter(m->model, i);
		in->adapters[in->n_adapters++] = (struct rt_adapter_info){a->path, a->alpha, a->scale, a->rank,
		                                                          a->n_weights, a->bytes};
	}
	for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(f, i);
		const char *name = quant_type_name(t->type);
		uint32_t k = 0;
		while (k < in->n_types && strcmp(in->types[k].name, name ? name : "?") != 0)
			k++;
		if (k == in->n_types) {
			if (k == RT_MAX_TYPES)
				continue;
			in->types[in->n_types++].name = name ? name : "?";
		}
		in->types[k].tensors++;
		in->types[k].bytes += t->nbytes;
	}
}

/* Applies the adapters of spec ("FILE[@SCALE], ...") to model in order. */
static enum rterror apply_adapters(struct model *model, const char *spec, char **reterr)
{
	enum rterror e = RTERROR_OK;
	for (const char *p = spec; p && *p && !e;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		char *item = strndup(p, len), *at = item ? strrchr(item, '@') : NULL, *num_end = NULL;
		float scale = 1.0f;
		if (at) {
			*at = '\0';
			scale = strtof(at + 1, &num_end);
		}
		if (!item)
			e = rterror_set(reterr, RTERROR_NOMEM, "out of memory");
		else if (at && (num_end == at + 1 || *num_end || !(scale > -1e6f && scale < 1e6f)))
			e = rterror_set(reterr, RTERROR_INVALID, "adapter \"%.256s\": the scale after '@' is not a number",
			                item);
		else if (item[0])
			e = model_add_adapter(model, item, scale, reterr);
		free(item);
		p = end ? end + 1 : NULL;
	}
	return e;
}

enum rterror rt_model_open_local(const char *path, const struct rt_local_options *opts, struct rt_model **ret,
                                 char **reterr)
{
	if (!path || !ret)
		return rterror_set(reterr, RTERROR_INVALID, "rt_model_open_local: NULL argument");
	struct rt_local_options o = opts ? *opts : (struct rt_local_options){0};
	struct rt_model *m = calloc(1, sizeof(*m));
	if (!m)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	enum rterror e = model_load(path, &m->model, reterr);
	if (!e)
		e = apply_adapters(m->model, o.adapters, reterr);
	if (!e)
		e = tokenizer_load(model_gguf(m->model), &m->tok, reterr);
	if (!e)
		e = pick_template(m, model_gguf(m->model), o.chat_template, reterr);
	if (e)
		goto out;
	const struct model_info *mi = model_get_info(m->model);
	m->n_vocab = tokenizer_n_vocab(m->tok);
	if (m->n_vocab != mi->n_vocab) {
		e = rterror_set(reterr, RTERROR_FORMAT, "%s: tokenizer has %d tokens, the model %d", path, m->n_vocab,
		                mi->n_vocab);
		goto out;
	}
	int32_t n_ctx = o.n_ctx > 0 ? o.n_ctx : mi->n_ctx_train;
	if (o.n_ctx <= 0 && (n_ctx <= 0 || n_ctx > RT_DEFAULT_CTX))
		n_ctx = RT_DEFAULT_CTX;
	e = model_ctx_new(m->model, n_ctx, o.n_threads, o.exact ? MATMUL_F32 : MATMUL_ROUNDED, &m->ctx, reterr);
	if (e)
		goto out;
	m->n_ctx = model_ctx_size(m->ctx);
	m->kv_ids = malloc((size_t)m->n_ctx * sizeof(int32_t));
	m->logits = malloc((size_t)m->n_vocab * sizeof(float));
	m->slots = kvslots_new();
	if (!m->kv_ids || !m->logits || !m->slots) {
		e = rterror_set(reterr, RTERROR_NOMEM, "out of memory");
		goto out;
	}
	describe_local(m);
out:
	if (e) {
		rt_model_close(m);
		return e;
	}
	*ret = m;
	return RTERROR_OK;
}

enum rterror rt_model_open_remote(const struct rt_remote_options *opts, struct rt_model **ret, char **reterr)
{
	if (!opts || !opts->base_url || !ret)
		return rterror_set(reterr, RTERROR_INVALID, "rt_model_open_remote: no base URL");
	if (strncmp(opts->base_url, "http://", 7) != 0 && strncmp(opts->base_url, "https://", 8) != 0)
		return rterror_set(reterr, RTERROR_INVALID, "backend URL must start with http:// or https://");
	struct rt_model *m = calloc(1, sizeof(*m));
	if (!m)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	m->remote = true;
	m->base_url = strdup(opts->base_url);
	m->remote_model = opts->model ? strdup(opts->model) : NULL;
	m->api_key = opts->api_key ? strdup(opts->api_key) : NULL;
	if (!m->base_url || (opts->model && !m->remote_model) || (opts->api_key && !m->api_key)) {
		rt_model_close(m);
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	}
	m->ocfg = (struct openai_config){
	    .base_url = m->base_url,
	    .model = m->remote_model,
	    .api_key = m->api_key,
	    .connect_timeout_ms = opts->connect_timeout_ms,
	    .timeout_ms = opts->timeout_ms,
	    .retries = opts->retries,
	};
	m->info.remote = true;
	m->info.arch = m->base_url;
	m->info.chat_template = "server";
	m->info.tokenizer = "server";
	*ret = m;
	return RTERROR_OK;
}

void rt_model_describe(const struct rt_model *m, struct rt_model_info *ret)
{
	*ret = m->info;
}

void rt_result_free(struct rt_result *r)
{
	if (!r)
		return;
	free(r->text);
	free(r->tokens);
	free(r);
}

enum rterror rt_count_tokens(struct rt_model *m, const char *text, int32_t *ret, char **reterr)
{
	if (!m || m->remote || !text || !ret)
		return rterror_set(reterr, RTERROR_INVALID, "rt_count_tokens: a local model and a text are needed");
	int32_t *ids = NULL;
	size_t n = 0;
	enum rterror e = tokenizer_encode(m->tok, text, strlen(text), false, false, (size_t)INT32_MAX, &ids, &n, reterr);
	free(ids);
	if (!e)
		*ret = (int32_t)n;
	return e;
}

enum rterror rt_schema_validate(const char *schema_text, const char *json_text, size_t len, char **reterr)
{
	if (!schema_text || !json_text)
		return rterror_set(reterr, RTERROR_INVALID, "rt_schema_validate: NULL argument");
	struct jsonschema *s = NULL;
	enum rterror e = jsonschema_compile(schema_text, strlen(schema_text), &s, reterr);
	if (!e)
		e = jsonschema_validate(s, json_text, len, reterr);
	jsonschema_free(s);
	return e;
}

/* Compiles schema_text unless it is the one compiled last time. */
static enum rterror prepare_schema(struct rt_model *m, const char *schema_text, char **reterr)
{
	if (m->schema_text && strcmp(m->schema_text, schema_text) == 0)
		return RTERROR_OK;
	struct jsonschema *s = NULL;
	struct constraint *c = NULL;
	char *copy = strdup(schema_text);
	if (!copy)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	enum rterror e = jsonschema_compile(schema_text, strlen(schema_text), &s, reterr);
	if (!e && !m->remote && !m->cvocab) {
		struct constraint_piece *p = calloc((size_t)m->n_vocab, sizeof(*p));
		if (!p)
			e = rterror_set(reterr, RTERROR_NOMEM, "out of memory");
		for (int32_t i = 0; p && i < m->n_vocab; i++) {
			p[i].ptr = tokenizer_piece(m->tok, i, &p[i].len);
			p[i].kind = tokenizer_is_eog(m->tok, i)       ? CONSTRAINT_TOK_EOG
			            : tokenizer_is_control(m->tok, i) ? CONSTRAINT_TOK_NEVER
			                                              : CONSTRAINT_TOK_NORMAL;
		}
		if (!e)
			e = constraint_vocab_new(p, m->n_vocab, &m->cvocab, reterr);
		free(p);
	}
	if (!e && !m->remote)
		e = constraint_new(s, m->cvocab, &c, reterr);
	if (e) {
		jsonschema_free(s);
		free(copy);
		return e;
	}
	constraint_free(m->cons);
	jsonschema_free(m->schema);
	free(m->schema_text);
	m->cons = c;
	m->schema = s;
	m->schema_text = copy;
	return RTERROR_OK;
}

static enum rterror generate_remote(struct rt_model *m, const struct rt_request *req, struct rt_result *r,
                                    char **reterr)
{
	struct openai_message msgs[2];
	size_t n = 0;
	if (req->system)
		msgs[n++] = (struct openai_message){"system", req->system};
	msgs[n++] = (struct openai_message){"user", req->prompt};
	struct openai_request oreq = {
	    .msgs = msgs,
	    .n_msgs = n,
	    .schema_json = req->schema,
	    .schema = req->schema ? m->schema : NULL,
	    .max_tokens = req->max_tokens,
	    .temperature = req->temperature,
	    .top_p = req->top_p,
	    .seed = req->seed,
	    .stop = req->schema ? NULL : req->stop,
	    .n_stop = req->schema ? 0 : req->n_stop,
	};
	struct openai_config cfg = m->ocfg;
	if (req->time_limit_ms > 0 && (cfg.timeout_ms <= 0 || cfg.timeout_ms > req->time_limit_ms))
		cfg.timeout_ms = (long)req->time_limit_ms;
	struct openai_reply rep;
	double t0 = now_ms();
	enum rterror e = openai_chat(&cfg, &oreq, &rep, reterr);
	if (e)
		return e;
	r->gen_ms = now_ms() - t0;
	r->text = rep.content;
	r->text_len = rep.content_len;
	r->n_prompt = rep.prompt_tokens;
	r->stop = rep.finish_reason && strcmp(rep.finish_reason, "length") == 0 ? RT_STOP_MAX_TOKENS : RT_STOP_END;
	if (rep.completion_tokens > 0 && r->gen_ms > 0)
		r->gen_tps = rep.completion_tokens / (r->gen_ms / 1e3);
	free(rep.finish_reason);
	return RTERROR_OK;
}

static enum rterror encode_prompt(struct rt_model *m, const struct rt_request *req, int32_t **ids, size_t *n,
                                  char **reterr)
{
	size_t max = (size_t)m->n_ctx;
	if (!m->raw) {
		struct chat_message msgs[2];
		size_t k = 0;
		if (req->system)
			msgs[k++] = (struct chat_message){"system", req->system};
		msgs[k++] = (struct chat_message){"user", req->prompt};
		return chat_encode(m->tmpl, m->tok, msgs, k, true, max, ids, n, reterr);
	}
	char *text = NULL;
	if (asprintf(&text, "%s%s", req->system ? req->system : "", req->prompt) < 0)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	enum rterror e =
	    tokenizer_encode(m->tok, text, strlen(text), tokenizer_add_bos(m->tok), false, max, ids, n, reterr);
	free(text);
	return e;
}

/* One local generation in progress. */
struct gen {
	struct rt_model *m;
	const struct rt_request *req;
	struct rt_result *r;
	size_t text_cap, tok_cap;
	int32_t *pending; /* tokens chosen but not yet evaluated; room for n_ctx */
	int32_t n_pending;
	struct sampler *smp;
	struct constraint_cursor *cur;
	uint32_t *mask;
	bool prompt_done; /* later batches stay within RT_BATCH_MAX */
	bool speculate;   /* greedy and not plain: drafts allowed */
	/* A checked batch: rows[i] are the logits after draft[0..i) (row 0: after the
	 * last queued token); draft[draft_pos..n_draft) are in the KV cache but not yet
	 * accepted. rows is NULL when no such batch is waiting. */
	const float *rows;
	int32_t draft[RT_DRAFT_MAX];
	int32_t n_draft, draft_pos, draft_len;
};

/* Evaluates ids (appending them to the KV cache and kv_ids); logits as model_eval. */
static enum rterror eval_ids(struct gen *g, const int32_t *ids, int32_t n, float *logits, bool all, char **reterr)
{
	struct rt_model *m = g->m;
	enum rterror e = model_eval(m->ctx, ids, n, logits, all, reterr);
	if (e) {
		/* the cache no longer matches kv_ids for certain: start afresh next time */
		model_ctx_truncate(m->ctx, 0);
		m->n_kv = 0;
		return e;
	}
	memmove(m->kv_ids + m->n_kv, ids, (size_t)n * sizeof(int32_t));
	m->n_kv += n;
	g->r->n_evals += g->prompt_done;
	return RTERROR_OK;
}

/* Evaluates the queued tokens except the last keep (in batches of at most RT_BATCH_MAX
 * after the prompt); with keep 0, m->logits gets the last one's logits. */
static enum rterror eval_queue(struct gen *g, int32_t keep, char **reterr)
{
	int32_t n = g->n_pending - keep, done = 0;
	while (done < n) {
		int32_t nb = g->prompt_done && n - done > RT_BATCH_MAX ? RT_BATCH_MAX : n - done;
		bool last = done + nb == n && keep == 0;
		enum rterror e = eval_ids(g, g->pending + done, nb, last ? g->m->logits : NULL, false, reterr);
		if (e)
			return e;
		done += nb;
	}
	memmove(g->pending, g->pending + n, (size_t)keep * sizeof(int32_t));
	g->n_pending = keep;
	return RTERROR_OK;
}

static enum rterror eval_pending(struct gen *g, char **reterr)
{
	return eval_queue(g, 0, reterr);
}

/* Drops the drafted tokens not accepted from the KV cache. */
static void drop_draft(struct gen *g)
{
	struct rt_model *m = g->m;
	m->n_kv -= g->n_draft - g->draft_pos;
	model_ctx_truncate(m->ctx, m->n_kv);
	g->rows = NULL;
	g->n_draft = g->draft_pos = 0;
}

/* Evaluates the queued tokens and a draft of what may follow them in one batch,
 * with logits for the last queued token and every drafted one (g->rows). */
static enum rterror eval_with_draft(struct gen *g, char **reterr)
{
	struct rt_model *m = g->m;
	if (!m->batch_logits && !(m->batch_logits = malloc((size_t)RT_BATCH_MAX * (size_t)m->n_vocab * sizeof(float))))
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	enum rterror e = eval_queue(g, g->n_pending > RT_BATCH_MAX / 2 ? RT_BATCH_MAX / 2 : g->n_pending, reterr);
	if (e)
		return e;
	/* the context for the lookup: the cache's tokens, then the queued ones */
	memcpy(m->kv_ids + m->n_kv, g->pending, (size_t)g->n_pending * sizeof(int32_t));
	int32_t room = m->n_ctx - m->n_kv - g->n_pending - 1;
	int32_t max = RT_BATCH_MAX - g->n_pending;
	max = max < g->draft_len ? max : g->draft_len;
	max = max < room ? max : room;
	g->n_draft = draft_lookup(m->kv_ids, m->n_kv + g->n_pending, g->draft, max, 2);
	g->draft_pos = 0;
	memcpy(g->pending + g->n_pending, g->draft, (size_t)g->n_draft * sizeof(int32_t));
	int32_t n = g->n_pending + g->n_draft;
	e = eval_ids(g, g->pending, n, m->batch_logits, true, reterr);
	if (e)
		return e;
	g->rows = m->batch_logits + (size_t)(g->n_pending - 1) * (size_t)m->n_vocab;
	g->n_pending = 0;
	g->r->n_drafted += g->n_draft;
	return RTERROR_OK;
}

/* After choosing id: whether it is the next drafted token (already in the KV
 * cache); otherwise the rest of the draft is dropped. Adapts the draft length. */
static bool settle_draft(struct gen *g, int32_t id)
{
	if (!g->rows)
		return false;
	if (g->draft_pos < g->n_draft && g->draft[g->draft_pos] == id) {
		g->draft_pos++;
		g->r->n_accepted++;
		return true;
	}
	if (g->n_draft > 0 && g->draft_pos == g->n_draft)
		g->draft_len = g->draft_len * 2 > RT_DRAFT_MAX ? RT_DRAFT_MAX : g->draft_len * 2;
	else if (g->n_draft > 0 && g->draft_pos == 0)
		g->draft_len = g->draft_len > 1 ? g->draft_len / 2 : 1;
	drop_draft(g);
	return false;
}

static enum rterror grow(void **p, size_t *cap, size_t need, size_t elem, size_t max, char **reterr)
{
	if (need <= *cap)
		return RTERROR_OK;
	if (need > max)
		return rterror_set(reterr, RTERROR_LIMIT, "generated text longer than %zu bytes", max);
	size_t cap2 = *cap ? *cap : 256;
	while (cap2 < need)
		cap2 *= 2;
	void *q = realloc(*p, cap2 * elem);
	if (!q)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	*p = q;
	*cap = cap2;
	return RTERROR_OK;
}

static enum rterror append_text(struct gen *g, const char *s, size_t len, char **reterr)
{
	struct rt_result *r = g->r;
	enum rterror e = grow((void **)&r->text, &g->text_cap, r->text_len + len + 1, 1, RT_MAX_TEXT, reterr);
	if (e)
		return e;
	memcpy(r->text + r->text_len, s, len);
	r->text_len += len;
	r->text[r->text_len] = '\0';
	return RTERROR_OK;
}

/* Adds id to the output; queued for evaluation unless it is already in the KV cache. */
static enum rterror append_token(struct gen *g, int32_t id, float prob, bool forced, bool in_kv, char **reterr)
{
	struct rt_result *r = g->r;
	size_t len = 0;
	const char *piece = tokenizer_is_control(g->m->tok, id) ? "" : tokenizer_piece(g->m->tok, id, &len);
	size_t off = r->text_len;
	enum rterror e = append_text(g, piece, len, reterr);
	if (!e)
		e = grow((void **)&r->tokens, &g->tok_cap, r->n_tokens + 1, sizeof(*r->tokens), (size_t)INT32_MAX,
		         reterr);
	if (e)
		return e;
	r->tokens[r->n_tokens++] = (struct rt_token){id, (uint32_t)off, (uint32_t)len, prob, forced};
	r->n_forced += forced;
	if (!in_kv)
		g->pending[g->n_pending++] = id;
	return RTERROR_OK;
}

/* Cuts the text at the first stop string that the last token completed. */
static bool cut_stop_string(struct gen *g, size_t old_len)
{
	struct rt_result *r = g->r;
	for (size_t i = 0; i < g->req->n_stop; i++) {
		const char *s = g->req->stop[i];
		size_t n = s ? strlen(s) : 0;
		if (n == 0 || r->text_len < n)
			continue;
		size_t from = old_len + 1 > n ? old_len + 1 - n : 0;
		const char *hit = memmem(r->text + from, r->text_len - from, s, n);
		if (!hit)
			continue;
		size_t p = (size_t)(hit - r->text);
		r->text_len = p;
		r->text[p] = '\0';
		while (r->n_tokens > 0 && r->tokens[r->n_tokens - 1].offset >= p && p > 0)
			r->n_tokens--;
		if (r->n_tokens > 0 && r->tokens[r->n_tokens - 1].offset + r->tokens[r->n_tokens - 1].len > p)
			r->tokens[r->n_tokens - 1].len = (uint32_t)(p - r->tokens[r->n_tokens - 1].offset);
		return true;
	}
	return false;
}

/* Picks the next token: forced by the schema, or sampled from fresh logits. */
static enum rterror next_token(struct gen *g, int32_t *id, float *prob, bool *forced, char **reterr)
{
	*prob = 1;
	enum rterror e = RTERROR_OK;
	if (g->req->plain && (e = eval_pending(g, reterr))) /* each token a step of its own */
		return e;
	*forced = g->cur && constraint_cursor_forced(g->cur, id);
	if (*forced)
		return RTERROR_OK;
	const float *logits = g->m->logits;
	if (g->speculate && (g->rows || g->n_pending > 0)) { /* else the prompt's logits are fresh */
		if (!g->rows && (e = eval_with_draft(g, reterr)))
			return e;
		logits = g->rows + (size_t)g->draft_pos * (size_t)g->m->n_vocab;
	} else if ((e = eval_pending(g, reterr))) {
		return e;
	}
	if (g->cur)
		constraint_cursor_mask(g->cur, g->mask);
	*id = sampler_sample(g->smp, logits, g->m->n_vocab, g->cur ? g->mask : NULL, prob);
	if (*id < 0 && !(g->cur && constraint_cursor_complete(g->cur)))
		return rterror_set(reterr, RTERROR_INVALID, "no token can follow (internal error)");
	return RTERROR_OK;
}

static enum rterror decode_loop(struct gen *g, double t0, char **reterr)
{
	struct rt_model *m = g->m;
	const struct rt_request *req = g->req;
	int32_t max_tokens = req->max_tokens > 0 ? req->max_tokens : RT_DEFAULT_MAX_TOKENS;
	for (;;) {
		int32_t used = m->n_kv - (g->n_draft - g->draft_pos) + g->n_pending; /* drafts not yet accepted aside */
		if ((int32_t)g->r->n_tokens >= max_tokens || used >= m->n_ctx) {
			g->r->stop = RT_STOP_MAX_TOKENS;
			return RTERROR_OK;
		}
		if (req->time_limit_ms > 0 && now_ms() - t0 >= (double)req->time_limit_ms) {
			g->r->stop = RT_STOP_TIME;
			return RTERROR_OK;
		}
		int32_t id;
		float prob;
		bool forced;
		enum rterror e = next_token(g, &id, &prob, &forced, reterr);
		if (e)
			return e;
		if (id < 0 || tokenizer_is_eog(m->tok, id)) {
			g->r->stop = RT_STOP_END;
			return RTERROR_OK;
		}
		if (g->cur && !constraint_cursor_accept(g->cur, id))
			return rterror_set(reterr, RTERROR_INVALID, "constraint refused its own token %d", id);
		size_t old_len = g->r->text_len;
		e = append_token(g, id, prob, forced, settle_draft(g, id), reterr);
		if (e)
			return e;
		if (!g->cur && cut_stop_string(g, old_len)) {
			g->r->stop = RT_STOP_STRING;
			return RTERROR_OK;
		}
	}
}

/* Keeps the longest prefix of ids that the KV cache already holds and queues the rest. */
static enum rterror reuse_prefix(struct gen *g, const int32_t *ids, size_t n, char **reterr)
{
	struct rt_model *m = g->m;
	int32_t lcp = 0;
	while (!g->req->plain && lcp < m->n_kv && (size_t)lcp < n && m->kv_ids[lcp] == ids[lcp])
		lcp++;
	if (!g->req->plain)
		lcp = kvslots_restore(m->slots, m->ctx, ids, (int32_t)n, lcp, m->kv_ids);
	if ((size_t)lcp == n)
		lcp--; /* evaluate at least the last prompt token, for its logits */
	model_ctx_truncate(m->ctx, lcp);
	m->n_kv = lcp;
	g->r->n_prompt = (int32_t)n;
	g->r->n_reused = lcp;
	g->pending = malloc(((size_t)m->n_ctx + RT_DRAFT_MAX) * sizeof(int32_t));
	if (!g->pending)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	memcpy(g->pending, ids + lcp, (n - (size_t)lcp) * sizeof(int32_t));
	g->n_pending = (int32_t)n - lcp;
	return RTERROR_OK;
}

/* How many of the prompt's tokens ids[0..n) are its fixed start: those it shares
 * with the same request with an empty user message (the system text and the
 * template's markers); 0 without a system text. */
static int32_t fixed_start(struct rt_model *m, const struct rt_request *req, const int32_t *ids, size_t n)
{
	if (!req->system || req->plain)
		return 0;
	struct rt_request empty = *req;
	empty.prompt = "";
	int32_t *ids2 = NULL;
	size_t n2 = 0, k = 0;
	if (encode_prompt(m, &empty, &ids2, &n2, NULL) == RTERROR_OK)
		while (k < n && k < n2 && ids[k] == ids2[k])
			k++;
	free(ids2);
	return (int32_t)k;
}

static enum rterror generate_local(struct rt_model *m, const struct rt_request *req, struct rt_result *r, double t0,
                                   char **reterr)
{
	struct gen g = {.m = m, .req = req, .r = r, .draft_len = RT_DRAFT_START};
	g.speculate = !req->plain && req->temperature <= 0;
	int32_t *ids = NULL;
	size_t n = 0;
	enum rterror e = encode_prompt(m, req, &ids, &n, reterr);
	if (e)
		goto out;
	if (n == 0 || n >= (size_t)m->n_ctx) {
		e = rterror_set(reterr, RTERROR_LIMIT, "prompt has %zu tokens; the context holds %d", n, m->n_ctx);
		goto out;
	}
	e = reuse_prefix(&g, ids, n, reterr);
	struct sampler_params sp = {req->temperature, req->top_k, req->top_p, req->seed};
	if (!e)
		e = sampler_new(&sp, &g.smp, reterr);
	if (!e && req->schema) {
		e = constraint_cursor_new(m->cons, &g.cur, reterr);
		g.mask = e ? NULL : malloc(constraint_mask_words(m->cvocab) * sizeof(uint32_t));
		if (!e && !g.mask)
			e = rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	}
	double tp = now_ms();
	if (!e)
		e = eval_pending(&g, reterr);
	if (e)
		goto out;
	g.prompt_done = true;
	char *why = NULL; /* a start not saved is only evaluated again next time */
	if (kvslots_save(m->slots, m->ctx, ids, fixed_start(m, req, ids, n), &why))
		free(why);
	r->prompt_ms = now_ms() - tp;
	r->prompt_tps = r->prompt_ms > 0 ? (double)(r->n_prompt - r->n_reused) / (r->prompt_ms / 1e3) : 0;
	double tg = now_ms();
	e = decode_loop(&g, t0, reterr);
	if (g.rows)
		drop_draft(&g);
	r->gen_ms = now_ms() - tg;
	r->gen_tps = r->gen_ms > 0 ? (double)r->n_tokens / (r->gen_ms / 1e3) : 0;
	if (!e && g.cur && !constraint_cursor_complete(g.cur)) {
		/* a limit stopped a value half-way: close it so the text stays valid */
		char *tail = NULL;
		size_t tail_len = 0;
		e = constraint_cursor_completion(g.cur, &tail, &tail_len, reterr);
		if (!e)
			e = append_text(&g, tail, tail_len, reterr);
		r->closed_len = tail_len;
		free(tail);
	}
	if (!e && !r->text)
		e = append_text(&g, "", 0, reterr);
out:
	free(ids);
	free(g.pending);
	free(g.mask);
	sampler_free(g.smp);
	constraint_cursor_free(g.cur);
	return e;
}

enum rterror rt_generate(struct rt_model *m, const struct rt_request *req, struct rt_result **ret, char **reterr)
{
	if (!m || !req || !req->prompt || !ret)
		return rterror_set(reterr, RTERROR_INVALID, "rt_generate: NULL argument");
	struct rt_result *r = calloc(1, sizeof(*r));
	if (!r)
		return rterror_set(reterr, RTERROR_NOMEM, "out of memory");
	double t0 = now_ms();
	enum rterror e = RTERROR_OK;
	if (req->schema)
		e = prepare_schema(m, req->schema, reterr);
	if (!e)
		e = m->remote ? generate_remote(m, req, r, reterr) : generate_local(m, req, r, t0, reterr);
	if (e) {
		rt_result_free(r);
		return e;
	}
	*ret = r;
	return RTERROR_OK;
}
