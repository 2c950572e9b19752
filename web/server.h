/* server: Quire's HTTP server, the admin UI and the REST API
 * (libmicrohttpd stays behind this header).
 *
 * One daemon with a thread pool and a pool of database connections (one per
 * thread: libpq connections are not shared). It binds 127.0.0.1 unless told
 * otherwise, serves TLS when a certificate and key are given, limits
 * connections (in all and per address), the time a connection may idle, the
 * size of headers and bodies, and answers every response with security
 * headers (a Content-Security-Policy without inline script, nosniff,
 * frame-ancestors none, no referrer, HSTS under TLS) and Cache-Control:
 * no-store on everything but the static assets. server_stop() finishes the
 * requests in flight and closes everything. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/qerr.h"

struct server;
struct vault;

struct server_options {
	const char *listen;   /* "127.0.0.1:8640" */
	const char *conninfo; /* libpq connection string */
	const struct vault *vault; /* borrowed; must outlive the server */
	unsigned threads;     /* thread pool (and database connections); 0: 4 */
	const char *tls_cert; /* PEM files; both set, or neither */
	const char *tls_key;
	unsigned max_connections;   /* 0: 256 */
	unsigned max_per_address;   /* 0: 64 */
	unsigned timeout_s;         /* idle connection timeout; 0: 30 */
	size_t max_file_bytes;      /* one uploaded PDF */
	size_t max_request_bytes;   /* a whole request body */
	unsigned max_uploads;       /* uploads received at once, each with a database connection; 0: 8 */
	int max_attempts;           /* of the jobs uploads create */
	int session_idle_s;         /* a session unused this long ends */
	int session_max_s;          /* a session ends this long after login, used or not */
	unsigned long long password_ops; /* Argon2id cost of password changes */
	size_t password_mem;
	int token_days;             /* lifetime of API tokens made in the UI */
	const char *schemas_dir;    /* fields.schemas_dir: the operator's document types, which an upload may
	                             * name and corrections are checked against; borrowed */
	int render_timeout_s;       /* page images */
	size_t render_memory;
	/* The effective settings, "section.key = value" lines, for the read-only settings page
	 * (borrowed; secrets left out by the caller). NULL-terminated; may be NULL. */
	const char *const *settings;
};

/* Starts serving. *ret owned by the caller; server_stop() stops and frees it. */
enum qerr server_start(const struct server_options *opt, struct server **ret, char **reterr) QUIRE_MUST_CHECK;
/* Stops accepting, lets requests in flight finish, frees everything (NULL is fine). */
void server_stop(struct server *s);
/* The port actually bound (useful with port 0). */
uint16_t server_port(const struct server *s);
/* Whether the server speaks TLS. */
int server_tls(const struct server *s);
