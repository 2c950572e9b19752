/* server: Quire's HTTP server (libmicrohttpd stays behind this header).
 *
 * For now it serves a health check and a read-only JSON view of the queue;
 * the admin UI and the REST API build on it. It binds 127.0.0.1 unless told
 * otherwise, runs a small thread pool, limits connections and request sizes,
 * and answers every request with security headers and Cache-Control: no-store. */
#pragma once

#include <stdint.h>

#include "core/qerr.h"

struct server;

struct server_options {
	const char *listen;   /* "127.0.0.1:8640" */
	const char *conninfo; /* libpq connection string for status queries */
	unsigned threads;
};

/* Starts serving. *ret owned by the caller; server_stop() stops and frees it. */
enum qerr server_start(const struct server_options *opt, struct server **ret, char **reterr) QUIRE_MUST_CHECK;
void server_stop(struct server *s);
/* The port actually bound (useful with port 0). */
uint16_t server_port(const struct server *s);
