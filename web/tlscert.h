/* tlscert: a self-signed certificate and key for the web server's HTTPS
 * (GnuTLS stays behind this header).
 *
 * The key is ECDSA P-256, written as unencrypted PKCS#8 PEM with mode 0600;
 * the certificate is X.509 v3, SHA-256, not a CA (basicConstraints CA:FALSE,
 * extended key usage serverAuth), naming the host's name, localhost,
 * 127.0.0.1, ::1 and any names given in subjectAltName. Clients trust it by
 * pinning the certificate file itself (curl --cacert, a browser's exception or
 * an operating system's trust store). Nothing is overwritten: existing files
 * are an error, and a failure leaves neither file behind. */
#pragma once

#include "core/qerr.h"

#define TLSCERT_MAX_NAMES 32

struct tlscert_options {
	const char *cert_path; /* written with mode 0644 */
	const char *key_path;  /* written with mode 0600 */
	/* Extra DNS names or IP addresses (IPv4 or IPv6 text) clients use; NULL-terminated, may be NULL. */
	const char *const *names;
	int days; /* validity from now (an hour earlier, for clocks a little behind); 0: 825 */
};

/* Creates the key and the certificate. QERR_BAD_INPUT for an unusable name, QERR_CONFLICT
 * when a file exists already, QERR_IO when one cannot be written. */
enum qerr tlscert_create(const struct tlscert_options *o, char **reterr) QUIRE_MUST_CHECK;
