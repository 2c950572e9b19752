/* tlscert: self-signed certificates with GnuTLS.
 *
 * The files are created exclusively (O_EXCL), the key with mode 0600 from
 * the start so it is never readable by others, even for a moment; the key's
 * PEM text is wiped from memory once written. */
#include "web/tlscert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum qerr tls_fail(char **reterr, const char *what, int rc)
{
	return qerr_set(reterr, QERR_CRYPTO, "cannot make the TLS certificate (%s): %s", what, gnutls_strerror(rc));
}

/* One subjectAltName entry: an IP address when it parses as one, else a DNS name. */
static enum qerr add_name(gnutls_x509_crt_t crt, const char *name, char **reterr)
{
	unsigned char ip[16];
	int rc;
	if (inet_pton(AF_INET, name, ip) == 1)
		rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4, GNUTLS_FSAN_APPEND);
	else if (inet_pton(AF_INET6, name, ip) == 1)
		rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16, GNUTLS_FSAN_APPEND);
	else {
		size_t n = strlen(name);
		bool ok = n > 0 && n <= 253;
		for (size_t i = 0; ok && i < n; i++)
			ok = g_ascii_isalnum(name[i]) || name[i] == '-' || name[i] == '.' || (name[i] == '*' && i == 0);
		if (!ok)
			return qerr_set(reterr, QERR_BAD_INPUT, "\"%s\" is neither a host name nor an IP address",
			                name);
		rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name, (unsigned)n,
		                                          GNUTLS_FSAN_APPEND);
	}
	return rc < 0 ? tls_fail(reterr, "subject alternative name", rc) : QERR_OK;
}

static enum qerr add_names(gnutls_x509_crt_t crt, const char *host, const char *const *names, char **reterr)
{
	const char *fixed[] = {host, "localhost", "127.0.0.1", "::1"};
	GPtrArray *all = g_ptr_array_new();
	for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
		g_ptr_array_add(all, (gpointer)fixed[i]);
	for (size_t i = 0; names && names[i]; i++)
		g_ptr_array_add(all, (gpointer)names[i]);
	enum qerr e = all->len > TLSCERT_MAX_NAMES + G_N_ELEMENTS(fixed)
	                  ? qerr_set(reterr, QERR_BAD_INPUT, "at most %d names", TLSCERT_MAX_NAMES)
	                  : QERR_OK;
	for (guint i = 0; !e && i < all->len; i++) {
		bool seen = false;
		for (guint j = 0; j < i; j++)
			seen = seen || g_ascii_strcasecmp(all->pdata[i], all->pdata[j]) == 0;
		if (!seen)
			e = add_name(crt, all->pdata[i], reterr);
	}
	g_ptr_array_unref(all);
	return e;
}

static enum qerr make_cert(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const struct tlscert_options *o,
                           char **reterr)
{
	const char *host = g_get_host_name();
	unsigned char serial[16], id[64];
	size_t idlen = sizeof id;
	time_t now = time(NULL);
	int days = o->days > 0 ? o->days : 825;
	int rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
	serial[0] = (serial[0] & 0x7f) | 0x40; /* positive, and 16 bytes long */
	if (rc >= 0)
		rc = gnutls_x509_crt_set_version(crt, 3);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_activation_time(crt, now - 3600);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)days * 86400);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, host, (unsigned)strlen(host));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "Quire appliance", 15);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key(crt, key);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
	if (rc >= 0)
		rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, id, &idlen);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_subject_key_id(crt, id, idlen);
	if (rc < 0)
		return tls_fail(reterr, "fields", rc);
	enum qerr e = add_names(crt, host, o->names, reterr);
	if (e)
		return e;
	rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
	return rc < 0 ? tls_fail(reterr, "signature", rc) : QERR_OK;
}

/* Writes data to a new file (never an existing one) with mode. */
static enum qerr write_new(const char *path, const void *data, size_t len, mode_t mode, char **reterr)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return qerr_set(reterr, errno == EEXIST ? QERR_CONFLICT : QERR_IO, "cannot create %s: %s", path,
		                g_strerror(errno));
	const char *p = data;
	int err = 0;
	if (fchmod(fd, mode) != 0) /* whatever the umask */
		err = errno;
	while (!err && len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (!err && fsync(fd) != 0)
		err = errno;
	if (close(fd) != 0 && !err)
		err = errno;
	if (!err)
		return QERR_OK;
	unlink(path);
	return qerr_set(reterr, QERR_IO, "cannot write %s: %s", path, g_strerror(err));
}

static enum qerr write_files(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const struct tlscert_options *o,
                             char **reterr)
{
	gnutls_datum_t kpem = {0}, cpem = {0};
	int rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &kpem);
	if (rc >= 0)
		rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cpem);
	enum qerr e = rc < 0 ? tls_fail(reterr, "export", rc) : QERR_OK;
	if (!e)
		e = write_new(o->key_path, kpem.data, kpem.size, 0600, reterr);
	if (!e) {
		e = write_new(o->cert_path, cpem.data, cpem.size, 0644, reterr);
		if (e)
			unlink(o->key_path);
	}
	if (kpem.data) {
		explicit_bzero(kpem.data, kpem.size);
		gnutls_free(kpem.data);
	}
	gnutls_free(cpem.data);
	return e;
}

enum qerr tlscert_create(const struct tlscert_options *o, char **reterr)
{
	if (g_file_test(o->cert_path, G_FILE_TEST_EXISTS) || g_file_test(o->key_path, G_FILE_TEST_EXISTS))
		return qerr_set(reterr, QERR_CONFLICT, "%s or %s exists already", o->cert_path, o->key_path);
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	enum qerr e = QERR_OK;
	int rc = gnutls_x509_privkey_init(&key);
	if (rc >= 0)
		rc = gnutls_x509_privkey_generate2(key, GNUTLS_PK_ECDSA,
		                                   GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL, 0);
	if (rc >= 0)
		rc = gnutls_x509_crt_init(&crt);
	if (rc < 0)
		e = tls_fail(reterr, "key", rc);
	if (!e)
		e = make_cert(crt, key, o, reterr);
	if (!e)
		e = write_files(crt, key, o, reterr);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key); /* wipes the key */
	return e;
}
