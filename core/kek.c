/* kek: the root key-encryption key from a key file, a systemd credential or a command. */
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

bool kek_write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

enum qerr kek_keyfile_create(const char *path, char **reterr)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return qerr_set(reterr, QERR_IO, "cannot create key file %s: %s", path, g_strerror(errno));
	uint8_t *key = sodium_malloc(VAULT_KEY_BYTES);
	if (!key) {
		close(fd);
		unlink(path);
		return qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	}
	crypto_kdf_keygen(key);
	bool written = kek_write_all(fd, key, VAULT_KEY_BYTES) && fsync(fd) == 0;
	int err = errno;
	sodium_free(key);
	close(fd);
	if (!written) {
		unlink(path);
		return qerr_set(reterr, QERR_IO, "cannot write key file %s: %s", path, g_strerror(err));
	}
	return QERR_OK;
}

static enum qerr read_keyfile(const char *path, uint8_t *key, char **reterr)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return qerr_set(reterr, QERR_KEY, "cannot open key file %s: %s", path, g_strerror(errno));
	struct stat st;
	enum qerr e = QERR_OK;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		e = qerr_set(reterr, QERR_KEY, "key file %s is not a regular file", path);
	else if (st.st_mode & 0077)
		e = qerr_set(reterr, QERR_KEY,
		             "key file %s is readable or writable by group or others (mode %03o); refusing to use it: "
		             "run chmod 600 %s",
		             path, (unsigned)(st.st_mode & 0777), path);
	else if (st.st_size != VAULT_KEY_BYTES)
		e = qerr_set(reterr, QERR_KEY, "key file %s has %lld bytes, expected %d", path, (long long)st.st_size,
		             VAULT_KEY_BYTES);
	else if (read(fd, key, VAULT_KEY_BYTES) != VAULT_KEY_BYTES)
		e = qerr_set(reterr, QERR_KEY, "cannot read key file %s", path);
	close(fd);
	return e;
}

/* Decodes n bytes of buf (a trailing newline allowed): 32 raw bytes or 64 hex digits. */
static bool decode_key(const uint8_t *buf, ssize_t n, uint8_t *key)
{
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	size_t bin_len = 0;
	if (n == VAULT_KEY_BYTES) {
		memcpy(key, buf, VAULT_KEY_BYTES);
		return true;
	}
	return n == 2 * VAULT_KEY_BYTES &&
	       sodium_hex2bin(key, VAULT_KEY_BYTES, (const char *)buf, (size_t)n, NULL, &bin_len, NULL) == 0 &&
	       bin_len == VAULT_KEY_BYTES;
}

static enum qerr read_credential(const char *name, uint8_t *key, char **reterr)
{
	const char *dir = g_getenv("CREDENTIALS_DIRECTORY");
	if (!dir || !dir[0])
		return qerr_set(
		    reterr, QERR_KEY,
		    "vault.kek_source is \"credential\" but $CREDENTIALS_DIRECTORY is not set: run quire as a "
		    "systemd service with LoadCredential= or LoadCredentialEncrypted=%s:...",
		    name);
	if (!name[0] || strchr(name, '/'))
		return qerr_set(reterr, QERR_CONFIG, "vault.credential must be a plain file name, not \"%s\"", name);
	g_autofree char *path = g_build_filename(dir, name, NULL);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return qerr_set(reterr, QERR_KEY, "cannot open credential %s: %s", path, g_strerror(errno));
	uint8_t *buf = sodium_malloc(KEK_COMMAND_MAX_OUTPUT);
	ssize_t n = buf ? read(fd, buf, KEK_COMMAND_MAX_OUTPUT) : -1;
	close(fd);
	enum qerr e = QERR_OK;
	if (!buf)
		e = qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	else if (!decode_key(buf, n, key))
		e = qerr_set(reterr, QERR_KEY, "credential %s must hold 32 bytes or 64 hexadecimal digits", path);
	if (buf)
		sodium_free(buf);
	return e;
}

/* Reads the child's output into buf (at most cap bytes) until it closes it or the deadline
 * passes; *ret_len the bytes read, *ret_timeout whether the time ran out. */
static void read_output(int fd, uint8_t *buf, size_t cap, ssize_t *ret_len, bool *ret_timeout)
{
	gint64 end = g_get_monotonic_time() + (gint64)KEK_COMMAND_TIMEOUT_S * G_USEC_PER_SEC;
	size_t got = 0;
	*ret_timeout = false;
	for (;;) {
		gint64 left = (end - g_get_monotonic_time()) / 1000;
		if (left <= 0) {
			*ret_timeout = true;
			break;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)MIN(left, 1000));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		uint8_t sink[256];
		bool full = got >= cap;
		ssize_t n = read(fd, full ? sink : buf + got, full ? sizeof sink : cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += full ? 0 : (size_t)n;
		if (full)
			got = cap + 1; /* too much output: remembered as such */
	}
	*ret_len = got > cap ? -1 : (ssize_t)got;
}

/* Waits for pid; kills it first when kill_it. Returns its wait status, or -1. */
static int reap_child(GPid pid, bool kill_it)
{
	if (kill_it)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

static enum qerr run_command(const char *command, uint8_t *key, char **reterr)
{
	g_auto(GStrv) argv = NULL;
	g_autoptr(GError) gerr = NULL;
	if (!command || !command[0] || !g_shell_parse_argv(command, NULL, &argv, &gerr))
		return qerr_set(reterr, QERR_CONFIG, "vault.kek_command is not a usable command line%s%s",
		                gerr ? ": " : "", gerr ? gerr->message : "");
	GPid pid = 0;
	int out = -1;
	if (!g_spawn_async_with_pipes(NULL, argv, NULL,
	                              G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH | G_SPAWN_STDIN_FROM_DEV_NULL |
	                                  G_SPAWN_CLOEXEC_PIPES,
	                              NULL, NULL, &pid, NULL, &out, NULL, &gerr))
		return qerr_set(reterr, QERR_KEY, "cannot run vault.kek_command (%s): %s", argv[0], gerr->message);
	uint8_t *buf = sodium_malloc(KEK_COMMAND_MAX_OUTPUT);
	ssize_t n = -1;
	bool timeout = false;
	if (buf)
		read_output(out, buf, KEK_COMMAND_MAX_OUTPUT, &n, &timeout);
	close(out);
	int status = reap_child(pid, timeout || !buf);
	enum qerr e = QERR_OK;
	if (!buf)
		e = qerr_set(reterr, QERR_NOMEM, "out of secure memory");
	else if (timeout)
		e = qerr_set(reterr, QERR_KEY, "vault.kek_command (%s) did not finish within %d s", argv[0],
		             KEK_COMMAND_TIMEOUT_S);
	else if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		e = qerr_set(reterr, QERR_KEY, "vault.kek_command (%s) failed (exit status %d)", argv[0],
		             status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	else if (!decode_key(buf, n, key))
		e = qerr_set(reterr, QERR_KEY,
		             "vault.kek_command (%s) must print the key as 32 bytes or 64 hexadecimal digits", argv[0]);
	if (buf)
		sodium_free(buf);
	return e;
}

enum qerr kek_read(const struct vault_options *o, uint8_t *key, char **reterr)
{
	switch (o->source) {
	case VAULT_SOURCE_FILE:
		return read_keyfile(o->key_file, key, reterr);
	case VAULT_SOURCE_CREDENTIAL:
		return read_credential(o->credential ? o->credential : "", key, reterr);
	case VAULT_SOURCE_COMMAND:
		return run_command(o->command, key, reterr);
	default:
		return qerr_set(reterr, QERR_CONFIG, "the key source has no key of its own");
	}
}
