/* openai: the chat completion client (libcurl + cJSON) described in openai.h.
 *
 * libcurl is loaded (dlopen) and initialised once per process (pthread_once),
 * on the first request: a program that never asks a backend does not pay for
 * loading it and the libraries it brings at every start. Each attempt uses
 * its own easy handle, so nothing is shared between calls or threads. The
 * response body is collected into a buffer capped at OPENAI_MAX_BODY. */
#include "runtime/openai.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct body {
	char *data;
	size_t len;
	bool too_big;
};

/* The libcurl calls used here, looked up in the library at its first use. */
struct curl_api {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode code);
	void (*easy_cleanup)(CURL *h);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static struct curl_api curl;
static bool curl_loaded;

#define CURL_SYM(field, name) (*(void **)&curl.field = dlsym(lib, name)) != NULL

static void curl_init_once(void)
{
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return;
	if (CURL_SYM(global_init, "curl_global_init") && CURL_SYM(easy_init, "curl_easy_init") &&
	    CURL_SYM(easy_setopt, "curl_easy_setopt") && CURL_SYM(easy_perform, "curl_easy_perform") &&
	    CURL_SYM(easy_getinfo, "curl_easy_getinfo") && CURL_SYM(easy_strerror, "curl_easy_strerror") &&
	    CURL_SYM(easy_cleanup, "curl_easy_cleanup") && CURL_SYM(slist_append, "curl_slist_append") &&
	    CURL_SYM(slist_free_all, "curl_slist_free_all"))
		curl_loaded = curl.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	if (!curl_loaded)
		dlclose(lib); /* kept open for the process's life once loaded */
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body *b = ud;
	size_t n = size * nmemb;
	if (b->len + n > OPENAI_MAX_BODY) {
		b->too_big = true;
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	}
	char *d = realloc(b->data, b->len + n + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, ptr, n);
	b->data = d;
	b->len += n;
	d[b->len] = '\0';
	return n;
}

static char *build_body(const struct openai_config *cfg, const struct openai_request *req, char **reterr)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *msgs = cJSON_AddArrayToObject(root, "messages");
	char *out = NULL;
	if (cfg->model)
		cJSON_AddStringToObject(root, "model", cfg->model);
	for (size_t i = 0; i < req->n_msgs; i++) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "role", req->msgs[i].role);
		cJSON_AddStringToObject(m, "content", req->msgs[i].content ? req->msgs[i].content : "");
		cJSON_AddItemToArray(msgs, m);
	}
	cJSON_AddBoolToObject(root, "stream", 0);
	if (req->max_tokens > 0)
		cJSON_AddNumberToObject(root, "max_tokens", req->max_tokens);
	cJSON_AddNumberToObject(root, "temperature", req->temperature > 0 ? req->temperature : 0);
	if (req->top_p > 0 && req->top_p < 1)
		cJSON_AddNumberToObject(root, "top_p", req->top_p);
	cJSON_AddNumberToObject(root, "seed", (double)(req->seed & 0xFFFFFFFFu));
	if (req->n_stop) {
		cJSON *st = cJSON_AddArrayToObject(root, "stop");
		for (size_t i = 0; i < req->n_stop; i++)
			cJSON_AddItemToArray(st, cJSON_CreateString(req->stop[i]));
	}
	if (req->schema_json) {
		cJSON *schema = cJSON_Parse(req->schema_json);
		if (!schema) {
			rterror_set(reterr, RTERROR_INVALID, "schema is not valid JSON");
			goto out;
		}
		cJSON *rf = cJSON_AddObjectToObject(root, "response_format");
		cJSON_AddStringToObject(rf, "type", "json_schema");
		cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
		cJSON_AddStringToObject(js, "name", "extraction");
		cJSON_AddItemToObject(js, "schema", schema);
		cJSON_AddBoolToObject(js, "strict", 1);
	}
	out = cJSON_PrintUnformatted(root);
	if (!out)
		rterror_set(reterr, RTERROR_NOMEM, "out of memory building the request");
out:
	cJSON_Delete(root);
	return out;
}

static char *make_url(const char *base)
{
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	bool has_v1 = n >= 3 && memcmp(base + n - 3, "/v1", 3) == 0;
	char *url = NULL;
	if (asprintf(&url, "%.*s%s/chat/completions", (int)n, base, has_v1 ? "" : "/v1") < 0)
		return NULL;
	return url;
}

/* The server's own error message, if its body is {"error":{"message":...}} or {"error":"..."}. */
static void server_message(const struct body *b, char *buf, size_t len)
{
	buf[0] = '\0';
	cJSON *j = b->data ? cJSON_ParseWithLength(b->data, b->len) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
	if (cJSON_IsString(m))
		snprintf(buf, len, ": %.200s", m->valuestring);
	cJSON_Delete(j);
}

static enum rterror parse_reply(const struct openai_request *req, const struct body *b, struct openai_reply *r,
                                char **reterr)
{
	cJSON *j = cJSON_ParseWithLength(b->data ? b->data : "", b->len);
	enum rterror e = RTERROR_OK;
	const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
	if (!cJSON_IsString(content)) {
		e = rterror_set(reterr, RTERROR_BACKEND, "backend reply has no choices[0].message.content");
		goto out;
	}
	const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
	const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
	const cJSON *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
	const cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
	r->prompt_tokens = cJSON_IsNumber(pt) ? (int32_t)pt->valuedouble : -1;
	r->completion_tokens = cJSON_IsNumber(ct) ? (int32_t)ct->valuedouble : -1;
	r->content_len = strlen(content->valuestring);
	r->content = strdup(content->valuestring);
	r->finish_reason = cJSON_IsString(fr) ? strdup(fr->valuestring) : NULL;
	if (!r->content) {
		e = rterror_set(reterr, RTERROR_NOMEM, "out of memory");
		goto out;
	}
	if (req->schema) {
		char *why = NULL;
		if (jsonschema_validate(req->schema, r->content, r->content_len, &why) != RTERROR_OK) {
			e = rterror_set(reterr, RTERROR_BACKEND, "backend reply does not match the schema: %s",
			                why ? why : "invalid");
			free(why);
		}
	}
out:
	cJSON_Delete(j);
	return e;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* One request. *retry is set when another attempt may succeed. */
static enum rterror attempt(const struct openai_config *cfg, const char *url, const char *payload, struct body *b,
                            bool *retry, char **reterr)
{
	CURL *h = curl.easy_init();
	struct curl_slist *hdrs = NULL;
	char *auth = NULL;
	enum rterror e = RTERROR_OK;
	*retry = false;
	if (!h)
		return rterror_set(reterr, RTERROR_NOMEM, "could not create an HTTP handle");
	hdrs = curl.slist_append(hdrs, "Content-Type: application/json");
	if (cfg->api_key && asprintf(&auth, "Authorization: Bearer %s", cfg->api_key) >= 0)
		hdrs = curl.slist_append(hdrs, auth);
	curl.easy_setopt(h, CURLOPT_URL, url);
	curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl.easy_setopt(h, CURLOPT_POSTFIELDS, payload);
	curl.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
	curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl.easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000L);
	curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, cfg->timeout_ms > 0 ? cfg->timeout_ms : 120000L);
	CURLcode cc = curl.easy_perform(h);
	long status = 0;
	curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (b->too_big) {
		e = rterror_set(reterr, RTERROR_LIMIT, "backend reply larger than %zu bytes", OPENAI_MAX_BODY);
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		e = rterror_set(reterr, RTERROR_TIMEOUT, "backend at %s did not answer in time", url);
	} else if (cc != CURLE_OK) {
		*retry = true;
		e = rterror_set(reterr, RTERROR_BUSY, "backend at %s unreachable: %s", url, curl.easy_strerror(cc));
	} else if (status == 429 || status >= 500) {
		char msg[256];
		server_message(b, msg, sizeof(msg));
		*retry = true;
		e = rterror_set(reterr, RTERROR_BUSY, "backend answered HTTP %ld%s", status, msg);
	} else if (status != 200) {
		char msg[256];
		server_message(b, msg, sizeof(msg));
		e = rterror_set(reterr, RTERROR_BACKEND, "backend answered HTTP %ld%s", status, msg);
	}
	curl.slist_free_all(hdrs);
	free(auth);
	curl.easy_cleanup(h);
	return e;
}

enum rterror openai_chat(const struct openai_config *cfg, const struct openai_request *req, struct openai_reply *ret,
                         char **reterr)
{
	if (!cfg || !req || !ret || !cfg->base_url || req->n_msgs == 0)
		return rterror_set(reterr, RTERROR_INVALID, "openai_chat: missing argument");
	if (strncmp(cfg->base_url, "http://", 7) != 0 && strncmp(cfg->base_url, "https://", 8) != 0)
		return rterror_set(reterr, RTERROR_INVALID, "backend URL must start with http:// or https://");
	if (req->schema_json && !req->schema)
		return rterror_set(reterr, RTERROR_INVALID, "openai_chat: schema not compiled");
	pthread_once(&curl_once, curl_init_once);
	if (!curl_loaded)
		return rterror_set(reterr, RTERROR_IO,
		                   "cannot load libcurl (libcurl.so.4), which the model backend "
		                   "needs: install the libcurl4 package");
	struct openai_reply r = {.prompt_tokens = -1, .completion_tokens = -1};
	struct body b = {0};
	enum rterror e = RTERROR_OK;
	char *url = make_url(cfg->base_url);
	char *payload = build_body(cfg, req, reterr);
	if (!url || !payload) {
		e = payload ? rterror_set(reterr, RTERROR_NOMEM, "out of memory") : RTERROR_INVALID;
		goto out;
	}
	int retries = cfg->retries < 0 ? 0 : cfg->retries > OPENAI_MAX_RETRIES ? OPENAI_MAX_RETRIES : cfg->retries;
	long delay = cfg->backoff_ms > 0 ? cfg->backoff_ms : 500;
	char *aerr = NULL; /* the last attempt's message, passed on only if it is final */
	for (int i = 0; i <= retries; i++) {
		bool retry = false;
		free(b.data);
		free(aerr);
		b = (struct body){0};
		aerr = NULL;
		r.attempts = i + 1;
		e = attempt(cfg, url, payload, &b, &retry, &aerr);
		if (!e || !retry || i == retries)
			break;
		sleep_ms(delay);
		delay = delay * 2 > 30000 ? 30000 : delay * 2;
	}
	if (e)
		rterror_set(reterr, e, "%s (after %d attempt%s)", aerr ? aerr : rterror_str(e), r.attempts,
		            r.attempts == 1 ? "" : "s");
	free(aerr);
	if (!e)
		e = parse_reply(req, &b, &r, reterr);
out:
	free(url);
	free(payload);
	free(b.data);
	if (e) {
		openai_reply_done(&r);
		return e;
	}
	*ret = r;
	return RTERROR_OK;
}

void openai_reply_done(struct openai_reply *r)
{
	if (!r)
		return;
	free(r->content);
	free(r->finish_reason);
	r->content = NULL;
	r->finish_reason = NULL;
}
