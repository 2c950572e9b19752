/* test_openai: the OpenAI-compatible client against a scripted HTTP server
 * running in a thread on 127.0.0.1 (an ephemeral port).
 *
 * Each scenario queues canned answers (status and body, or "never answer");
 * the server records the last request body so the test can check what was
 * sent (the schema as response_format). */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/jsonschema.h"
#include "runtime/openai.h"
#include "runtime/runtime.h"
#include "tests/runtime/tap.h"

#define MAX_SCRIPT 8

struct answer {
	int status; /* 0: read the request, then never answer */
	const char *body;
};

struct server {
	int fd;
	int port;
	pthread_t thread;
	atomic_int stop;
	pthread_mutex_t lock;
	struct answer script[MAX_SCRIPT];
	int n_script, next;
	int requests;
	char last_body[65536];
};

static void read_request(int c, struct server *s)
{
	char buf[65536];
	size_t len = 0;
	long want = -1;
	while (len < sizeof(buf) - 1) {
		struct pollfd p = {c, POLLIN, 0};
		if (poll(&p, 1, 2000) <= 0)
			break;
		ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		char *hdr_end = strstr(buf, "\r\n\r\n");
		if (!hdr_end)
			continue;
		if (want < 0) {
			char *cl = strcasestr(buf, "Content-Length:");
			want = cl ? strtol(cl + 15, NULL, 10) : 0;
		}
		size_t body_len = len - (size_t)(hdr_end + 4 - buf);
		if ((long)body_len >= want) {
			pthread_mutex_lock(&s->lock);
			snprintf(s->last_body, sizeof(s->last_body), "%s", hdr_end + 4);
			pthread_mutex_unlock(&s->lock);
			return;
		}
	}
}

static void *serve(void *arg)
{
	struct server *s = arg;
	while (!atomic_load(&s->stop)) {
		struct pollfd p = {s->fd, POLLIN, 0};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		read_request(c, s);
		pthread_mutex_lock(&s->lock);
		struct answer a = s->next < s->n_script ? s->script[s->next++] : (struct answer){500, "{}"};
		s->requests++;
		pthread_mutex_unlock(&s->lock);
		if (a.status == 0) {
			while (!atomic_load(&s->stop))
				usleep(10000);
		} else {
			char head[256];
			int n = snprintf(head, sizeof(head),
			                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			                 a.status, strlen(a.body));
			if (write(c, head, (size_t)n) < 0 || write(c, a.body, strlen(a.body)) < 0)
				tap_diag("server write failed");
		}
		close(c);
	}
	return NULL;
}

static bool server_start(struct server *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof(a);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 8) != 0 ||
	    getsockname(s->fd, (struct sockaddr *)&a, &al) != 0)
		return false;
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->thread, NULL, serve, s) == 0;
}

static void server_stop(struct server *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->thread, NULL);
	close(s->fd);
	pthread_mutex_destroy(&s->lock);
}

static void script(struct server *s, int n, const struct answer *a)
{
	pthread_mutex_lock(&s->lock);
	memcpy(s->script, a, (size_t)n * sizeof(*a));
	s->n_script = n;
	s->next = 0;
	s->requests = 0;
	s->last_body[0] = '\0';
	pthread_mutex_unlock(&s->lock);
}

static const char *const schema_text =
    "{\"type\":\"object\",\"properties\":{\"total\":{\"type\":\"number\"},"
    "\"currency\":{\"enum\":[\"EUR\",\"USD\"]}},\"required\":[\"total\",\"currency\"]}";

static const char *const good_reply =
    "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"{\\\"total\\\": 12.5, \\\"currency\\\": \\\"EUR\\\"}\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":9}}";

static const char *const ignoring_reply =
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"The total is 12.50 EUR.\"},"
    "\"finish_reason\":\"stop\"}]}";

static const char *const wrong_enum_reply =
    "{\"choices\":[{\"message\":{\"content\":\"{\\\"total\\\":1,\\\"currency\\\":\\\"GBP\\\"}\"}}]}";

static enum rterror call(struct server *srv, const struct jsonschema *s, long timeout_ms, int retries,
                         struct openai_reply *r, char **err)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", srv->port);
	struct openai_config cfg = {.base_url = url,
	                            .model = "m",
	                            .api_key = "k",
	                            .connect_timeout_ms = 1000,
	                            .timeout_ms = timeout_ms,
	                            .retries = retries,
	                            .backoff_ms = 20};
	struct openai_message msgs[2] = {{"system", "Extract."}, {"user", "Total 12.50 EUR"}};
	struct openai_request req = {
	    .msgs = msgs, .n_msgs = 2, .schema_json = schema_text, .schema = s, .max_tokens = 64};
	memset(r, 0, sizeof(*r));
	return openai_chat(&cfg, &req, r, err);
}

static bool body_has_schema(struct server *srv)
{
	pthread_mutex_lock(&srv->lock);
	cJSON *j = cJSON_Parse(srv->last_body);
	pthread_mutex_unlock(&srv->lock);
	const cJSON *rf = cJSON_GetObjectItemCaseSensitive(j, "response_format");
	const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
	const cJSON *sc = cJSON_GetObjectItemCaseSensitive(js, "schema");
	cJSON *want = cJSON_Parse(schema_text);
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
	bool ok = cJSON_IsString(type) && strcmp(type->valuestring, "json_schema") == 0 && sc &&
	          cJSON_Compare(sc, want, 1) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(js, "strict")) &&
	          cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "messages")) == 2;
	cJSON_Delete(want);
	cJSON_Delete(j);
	return ok;
}

int main(void)
{
	struct server srv;
	struct jsonschema *s = NULL;
	char *err = NULL;
	if (!server_start(&srv) || jsonschema_compile(schema_text, strlen(schema_text), &s, &err)) {
		tap_ok(false, "/openai/setup", "%s", err);
		return tap_done();
	}
	struct openai_reply r;

	script(&srv, 1, (struct answer[]){{200, good_reply}});
	enum rterror e = call(&srv, s, 2000, 0, &r, &err);
	tap_ok(e == RTERROR_OK && r.content && strstr(r.content, "12.5") && r.prompt_tokens == 20 &&
	           r.completion_tokens == 9,
	       "/openai/valid-reply-accepted", "e=%d %s", e, err);
	tap_ok(body_has_schema(&srv), "/openai/request-carries-schema", "body: %.300s", srv.last_body);
	openai_reply_done(&r);

	script(&srv, 1, (struct answer[]){{200, ignoring_reply}});
	free(err);
	err = NULL;
	e = call(&srv, s, 2000, 0, &r, &err);
	tap_ok(e == RTERROR_BACKEND && err && strstr(err, "does not match the schema"),
	       "/openai/schema-ignored-is-error", "e=%d %s", e, err);

	script(&srv, 1, (struct answer[]){{200, wrong_enum_reply}});
	free(err);
	err = NULL;
	e = call(&srv, s, 2000, 0, &r, &err);
	tap_ok(e == RTERROR_BACKEND && err && strstr(err, "/currency"), "/openai/invalid-value-is-error", "e=%d %s", e,
	       err);

	script(&srv, 3,
	       (struct answer[]){{500, "{\"error\":{\"message\":\"loading\"}}"}, {429, "{}"}, {200, good_reply}});
	free(err);
	err = NULL;
	e = call(&srv, s, 2000, 3, &r, &err);
	tap_ok(e == RTERROR_OK && r.attempts == 3 && srv.requests == 3, "/openai/retried-after-5xx-and-429",
	       "e=%d attempts=%d requests=%d %s", e, r.attempts, srv.requests, err);
	openai_reply_done(&r);

	script(&srv, 2, (struct answer[]){{503, "{\"error\":{\"message\":\"busy\"}}"}, {503, "{}"}});
	free(err);
	err = NULL;
	e = call(&srv, s, 2000, 1, &r, &err);
	tap_ok(e == RTERROR_BUSY && rterror_is_transient(e) && srv.requests == 2, "/openai/gives-up-after-retries",
	       "e=%d requests=%d %s", e, srv.requests, err);

	script(&srv, 1, (struct answer[]){{400, "{\"error\":{\"message\":\"bad schema\"}}"}});
	free(err);
	err = NULL;
	e = call(&srv, s, 2000, 3, &r, &err);
	tap_ok(e == RTERROR_BACKEND && srv.requests == 1 && err && strstr(err, "bad schema"), "/openai/4xx-not-retried",
	       "e=%d requests=%d %s", e, srv.requests, err);

	/* the same through the public API */
	free(err);
	err = NULL;
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", srv.port);
	struct rt_remote_options ro = {.base_url = url, .timeout_ms = 2000, .retries = 1};
	struct rt_model *m = NULL;
	struct rt_result *res = NULL;
	struct rt_request rq = {.system = "Extract.", .prompt = "Total 12.50 EUR", .schema = schema_text};
	script(&srv, 2, (struct answer[]){{502, "{}"}, {200, good_reply}});
	e = rt_model_open_remote(&ro, &m, &err);
	if (!e)
		e = rt_generate(m, &rq, &res, &err);
	tap_ok(e == RTERROR_OK && res && strstr(res->text, "EUR") && res->stop == RT_STOP_END && res->n_prompt == 20 &&
	           body_has_schema(&srv),
	       "/openai/runtime-api/remote-generate", "e=%d %s", e, err);
	rt_result_free(res);
	res = NULL;
	script(&srv, 1, (struct answer[]){{200, ignoring_reply}});
	free(err);
	err = NULL;
	e = rt_generate(m, &rq, &res, &err);
	tap_ok(e == RTERROR_BACKEND && !res, "/openai/runtime-api/invalid-reply-refused", "e=%d %s", e, err);
	rt_model_close(m);

	script(&srv, 1, (struct answer[]){{0, NULL}});
	free(err);
	err = NULL;
	e = call(&srv, s, 300, 2, &r, &err);
	tap_ok(e == RTERROR_TIMEOUT && srv.requests == 1, "/openai/never-answers-times-out", "e=%d requests=%d %s", e,
	       srv.requests, err);

	free(err);
	err = NULL;
	server_stop(&srv);
	/* nothing listens there any more */
	e = call(&srv, s, 500, 1, &r, &err);
	tap_ok(e == RTERROR_BUSY && err && strstr(err, "2 attempts"), "/openai/connection-refused-retried", "e=%d %s",
	       e, err);
	free(err);
	jsonschema_free(s);
	return tap_done();
}
