/* cmd_keys: the security subcommands: keys (rotate, status, retire), erase,
 * user (add, passwd, role, disable, list), token (create, list, revoke) and
 * audit (verify, checkpoint); and opening the vault from the configuration.
 *
 * Secrets typed by a person (passphrase, passwords) come from an environment
 * variable for automation (QUIRE_PASSPHRASE, QUIRE_PASSWORD) or from the
 * terminal without echo; they are wiped once used and never printed. */
#include "appliance/commands.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/app.h"
#include "appliance/config.h"
#include "appliance/progress.h"
#include "core/audit.h"
#include "core/witness.h"
#include "core/db.h"
#include "core/log.h"
#include "core/ringstore.h"
#include "core/users.h"
#include "core/vault.h"
#include "pipeline/custody.h"

#define SECRET_MAX 1024
#define REWRAP_BATCH 500

/* A passphrase asked for by `quire init` is kept until the vault is opened once more; that
 * open creates the keyring when there is none. */
static char *pending_passphrase;
static bool initialising;

static void secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	g_free(s);
}

/* Reads a line from the terminal without echo; NULL when there is no terminal. */
static char *ask_tty(const char *prompt)
{
	FILE *tty = fopen("/dev/tty", "r+e");
	if (!tty)
		return NULL;
	struct termios old, quiet;
	bool restore = tcgetattr(fileno(tty), &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	}
	fprintf(tty, "%s", prompt);
	fflush(tty);
	char *buf = g_malloc0(SECRET_MAX + 2);
	bool got = fgets(buf, SECRET_MAX + 2, tty) != NULL;
	if (restore)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fprintf(tty, "\n");
	fclose(tty);
	if (!got) {
		secret_free(buf);
		return NULL;
	}
	buf[strcspn(buf, "\r\n")] = 0;
	return buf;
}

/* A secret from env (if set) or the terminal (twice when confirm). NULL with *reterr set. */
static char *read_secret(const char *env, const char *what, bool confirm, char **reterr)
{
	const char *v = g_getenv(env);
	if (v)
		return g_strdup(v);
	g_autofree char *prompt = g_strdup_printf("%s: ", what);
	char *first = ask_tty(prompt);
	if (!first) {
		qerr_set(reterr, QERR_KEY, "a %s is needed: set $%s or run on a terminal", what, env);
		return NULL;
	}
	if (confirm) {
		g_autofree char *again_prompt = g_strdup_printf("%s (again): ", what);
		char *again = ask_tty(again_prompt);
		bool same = again && strcmp(first, again) == 0;
		secret_free(again);
		if (!same) {
			secret_free(first);
			qerr_set(reterr, QERR_BAD_INPUT, "the two entries differ");
			return NULL;
		}
	}
	return first;
}

/* vault.keyring, else "keyring" next to the key file (as vault_open() has it). */
static char *keyring_path(const struct config *cfg)
{
	if (cfg->keyring && cfg->keyring[0])
		return g_strdup(cfg->keyring);
	g_autofree char *key = config_key_path(cfg);
	g_autofree char *dir = g_path_get_dirname(key);
	return g_build_filename(dir, "keyring", NULL);
}

/* The folder of the keys (and of the audit witness) must not be readable or writable by others
 * (searchable is allowed: a data directory shared with the PostgreSQL account may need it). */
static enum qerr check_key_folder(const char *path, char **reterr)
{
	g_autofree char *dir = g_path_get_dirname(path);
	struct stat st;
	if (stat(dir, &st) != 0)
		return QERR_OK; /* a missing folder: the file checks name the cause */
	if (st.st_mode & (S_IROTH | S_IWOTH))
		return qerr_set(reterr, QERR_KEY,
		                "the key folder %s can be read or written by others (mode %03o): run chmod 700 %s (and "
		                "check what may have been read)",
		                dir, (unsigned)(st.st_mode & 07777), dir);
	return QERR_OK;
}

/* Tells once what became of the keyring file when the database took the keyring over. */
static void tell_origin(const struct vault *v, const char *ring)
{
	if (vault_ring_origin(v) == VAULT_RING_IMPORTED)
		log_info("the keyring file %s was imported into the database, which keeps the keyring from now on; the "
		         "file is renamed %s.imported: destroy it once a backup holds the database (it still holds every "
		         "version retired from now on)",
		         ring, ring);
	else if (vault_ring_origin(v) == VAULT_RING_CREATED)
		log_info("created the keyring %s (key version 1)", vault_ring_where(v));
}

static enum qerr open_store(const struct config *cfg, const char *conninfo, struct ringstore **ret, char **reterr)
{
	*ret = NULL;
	if (strcmp(cfg->keyring_in, "file") == 0)
		return QERR_OK;
	if (strcmp(cfg->keyring_in, "database") != 0)
		return qerr_set(reterr, QERR_CONFIG, "vault.keyring_in must be database or file, not \"%s\"",
		                cfg->keyring_in);
	if (!conninfo)
		return qerr_set(reterr, QERR_INTERNAL, "the keyring is in the database but none is open");
	return ringstore_open(conninfo, ret, reterr);
}

static enum qerr open_vault(const struct config *cfg, const char *conninfo, bool create, char *passphrase,
                            struct vault **ret, struct ringstore **ret_store, char **reterr)
{
	enum vault_source src;
	if (!vault_source_parse(cfg->kek_source, &src)) {
		secret_free(passphrase);
		return qerr_set(reterr, QERR_CONFIG,
		                "vault.kek_source must be file, passphrase, credential or command, not \"%s\"",
		                cfg->kek_source);
	}
	g_autofree char *key = config_key_path(cfg);
	g_autofree char *ring = keyring_path(cfg);
	struct ringstore *rs = NULL;
	enum qerr e = QERR_OK;
	if (src == VAULT_SOURCE_FILE && !g_file_test(key, G_FILE_TEST_EXISTS))
		e = qerr_set(reterr, QERR_KEY, "no key file at %s: run `quire init` first", key);
	if (!e)
		e = check_key_folder(ring, reterr);
	if (!e && src == VAULT_SOURCE_FILE)
		e = check_key_folder(key, reterr);
	if (!e && src == VAULT_SOURCE_PASSPHRASE && !passphrase &&
	    !(passphrase = read_secret("QUIRE_PASSPHRASE", "vault passphrase", false, reterr)))
		e = QERR_KEY;
	if (!e)
		e = open_store(cfg, conninfo, &rs, reterr);
	struct vault_store store;
	if (rs)
		ringstore_bind(rs, &store);
	struct vault_options o = {.source = src, .key_file = key, .credential = cfg->credential,
	                          .command = cfg->kek_command, .keyring = ring, .store = rs ? &store : NULL,
	                          .create = create, .argon2_ops = (unsigned long long)cfg->argon2_ops,
	                          .argon2_mem = (size_t)cfg->argon2_mem_mb << 20,
	                          .passphrase = passphrase, .passphrase_len = passphrase ? strlen(passphrase) : 0};
	if (!e)
		e = vault_open_with(&o, ret, reterr);
	secret_free(passphrase);
	if (e) {
		ringstore_close(rs);
		return e;
	}
	tell_origin(*ret, ring);
	g_autofree char *dir = g_path_get_dirname(ring);
	g_autofree char *witness = g_build_filename(dir, WITNESS_FILE_NAME, NULL);
	audit_set_signer(*ret, cfg->checkpoint_entries, cfg->checkpoint_minutes * 60);
	audit_set_witness(witness, cfg->witness_syslog != 0);
	*ret_store = rs;
	return QERR_OK;
}

enum qerr keys_open_vault(const struct config *cfg, const char *conninfo, struct vault **ret,
                          struct ringstore **ret_store, char **reterr)
{
	char *pass = pending_passphrase;
	pending_passphrase = NULL;
	bool create = initialising;
	initialising = false;
	return open_vault(cfg, conninfo, create, pass, ret, ret_store, reterr);
}

void keys_close_vault(struct vault *v, struct ringstore *store)
{
	if (v)
		audit_set_signer(NULL, 0, 0);
	vault_close(v);
	ringstore_close(store);
}

enum qerr keys_init(const struct config *cfg, char **reterr)
{
	g_autofree char *key = config_key_path(cfg);
	g_autofree char *ring = keyring_path(cfg);
	g_autofree char *keydir = g_path_get_dirname(ring);
	if (g_mkdir_with_parents(keydir, 0700) != 0)
		return qerr_set(reterr, QERR_IO, "cannot create %s: %s", keydir, g_strerror(errno));
	if (strcmp(cfg->kek_source, "file") == 0 && !g_file_test(key, G_FILE_TEST_EXISTS)) {
		enum qerr e = vault_keyfile_create(key, reterr);
		if (e)
			return e;
		printf("created key file %s (mode 0600); back it up separately from the database\n", key);
	}
	if (strcmp(cfg->kek_source, "passphrase") == 0) {
		/* Asked twice unless a keyring file exists (a keyring in the database, which the caller
		 * opens next, checks the passphrase then). */
		bool fresh = !g_file_test(ring, G_FILE_TEST_EXISTS);
		char *pass = read_secret("QUIRE_PASSPHRASE", "vault passphrase", fresh, reterr);
		if (!pass)
			return QERR_KEY;
		g_clear_pointer(&pending_passphrase, secret_free);
		pending_passphrase = pass;
	}
	initialising = true;
	return QERR_OK;
}

static int64_t parse_id(const char *text)
{
	char *end = NULL;
	long long v = g_ascii_strtoll(text, &end, 10);
	return end && end != text && !*end && v > 0 && v < G_MAXINT64 ? v : 0;
}

static int keys_status(struct app *app)
{
	struct custody_version *list = NULL;
	int n = 0;
	g_autofree char *err = NULL;
	if (custody_status(app->db, &list, &n, &err))
		return cmd_fail("keys status", err);
	printf("version\tstate\tin keyring\tdocuments\n");
	for (int i = 0; i < n; i++)
		printf("%d\t%s\t%s\t%lld\n", (int)list[i].version, list[i].state,
		       vault_has_version(app->vault, list[i].version) ? "yes" : "no", (long long)list[i].documents);
	g_free(list);
	return 0;
}

/* Data keys not wrapped under version: what a rotation to it rewraps. */
static uint64_t to_rewrap(struct db *db, int32_t version)
{
	struct custody_version *list = NULL;
	int n = 0;
	uint64_t total = 0;
	g_autofree char *err = NULL;
	if (custody_status(db, &list, &n, &err) == QERR_OK)
		for (int i = 0; i < n; i++)
			total += list[i].version != version && list[i].documents > 0 ? (uint64_t)list[i].documents : 0;
	g_free(list);
	return total;
}

static void rewrap_step(void *ctx, int64_t done) { progress_update(ctx, (uint64_t)done); }

/* Rotates to a new version and rewraps everything under it; *ret_version receives it. */
static enum qerr rotate(struct app *app, int batch, int32_t *ret_version, int64_t *ret_done, char **reterr)
{
	int32_t version = 0;
	enum qerr e = vault_rotate(app->vault, &version, reterr);
	if (!e)
		e = custody_activate(app->db, version, app->actor, reterr);
	struct progress pr;
	if (!e) {
		progress_start(&pr, "keys rotate: rewrapping data keys", "documents", to_rewrap(app->db, version));
		e = custody_rewrap_with(app->db, app->vault, version, batch, rewrap_step, &pr, ret_done, reterr);
		if (!e)
			progress_end(&pr);
	}
	if (!e) {
		g_autofree char *detail = g_strdup_printf("data keys rewrapped: %lld", (long long)*ret_done);
		struct audit_event ev = {.actor = app->actor, .action = "key.rewrapped", .object_type = "key_version",
		                         .object_id = version, .outcome = "ok", .client = "cli", .detail = detail};
		e = db_begin(app->db, reterr);
		if (!e)
			e = audit_append(app->db, &ev, reterr);
		e = e ? e : db_commit(app->db, reterr);
		if (e)
			db_rollback(app->db);
	}
	if (!e)
		*ret_version = version;
	return e;
}

/* Retires one version: in the database first, then destroys it in the keyring. The entry
 * recording the destruction is signed by the witness with the keyring's new generation, so that
 * an older keyring (still holding the version) put back in the database is caught by verify. */
static enum qerr retire(struct app *app, int32_t version, char **reterr)
{
	enum qerr e = custody_retire(app->db, version, app->actor, reterr);
	if (e || !vault_has_version(app->vault, version))
		return e;
	e = vault_retire(app->vault, version, reterr);
	char detail[64];
	g_snprintf(detail, sizeof detail, "keyring generation %lld", (long long)vault_ring_generation(app->vault));
	struct audit_event ev = {.actor = app->actor, .action = "key.destroyed", .object_type = "key_version",
	                         .object_id = version, .outcome = "ok", .client = "cli", .detail = detail};
	return e ? e : audit_append(app->db, &ev, reterr);
}

/* Retires every version that is neither active nor used; prints them. */
static enum qerr retire_unused(struct app *app, char **reterr)
{
	int32_t *list = NULL;
	int n = 0;
	enum qerr e = custody_unused(app->db, &list, &n, reterr);
	for (int i = 0; !e && i < n; i++) {
		e = retire(app, list[i], reterr);
		if (!e)
			printf("key version %d retired and destroyed\n", (int)list[i]);
	}
	g_free(list);
	return e;
}

int cmd_keys(int argc, char **argv, struct config *cfg)
{
	int batch = REWRAP_BATCH;
	GOptionEntry entries[] = {{"batch", 0, 0, G_OPTION_ARG_INT, &batch, "Data keys rewrapped per transaction", "N"},
	                          {NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "rotate|status|retire VERSION",
	              "Key management: `rotate` adds a key version and rewraps every data key under it (online, in "
	              "batches); `status` shows documents per key version; `retire` destroys a version no document uses.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	const char *sub = argc >= 2 ? argv[1] : "";
	bool is_retire = strcmp(sub, "retire") == 0;
	if (!(argc == 2 && (strcmp(sub, "rotate") == 0 || strcmp(sub, "status") == 0)) && !(argc == 3 && is_retire))
		return cmd_fail("keys", "expected `rotate`, `status` or `retire VERSION`");
	int64_t version = is_retire ? parse_id(argv[2]) : 0;
	if (is_retire && (version <= 0 || version > INT32_MAX))
		return cmd_fail("keys retire", "the version must be a positive number");
	struct app app;
	g_autofree char *err = NULL;
	if (app_open(cfg, APP_DB | APP_VAULT, &app, &err))
		return cmd_fail("keys", err);
	int rc = 0;
	if (strcmp(sub, "status") == 0) {
		rc = keys_status(&app);
	} else if (is_retire) {
		if (retire(&app, (int32_t)version, &err))
			rc = cmd_fail("keys retire", err);
		else
			printf("key version %lld retired and destroyed\n", (long long)version);
	} else {
		int32_t v = 0;
		int64_t done = 0;
		if (rotate(&app, batch, &v, &done, &err))
			rc = cmd_fail("keys rotate", err);
		else
			printf("key version %d is active; %lld data keys rewrapped; retire older versions with "
			       "`quire keys retire VERSION` (see `quire keys status`)\n",
			       (int)v, (long long)done);
	}
	app_close(&app);
	return rc;
}

/* What an erasure leaves behind: the keyring copies made before it (`quire backup` files among them)
 * still hold the key version that wrapped the erased documents' data keys. */
static void erase_reminder(const char *when, bool rotated)
{
	if (rotated)
		printf("erased at %s. Copies of the database rows taken before no longer open with the keyring as it "
		       "is now, but they do with a keyring copy from before %s. With the keyring in the database "
		       "(vault.keyring_in = database), every copy of the database from before (dumps, a standby's base "
		       "backup or archived WAL) holds such a keyring. Every `quire backup` file made before %s "
		       "holds both the rows and such a keyring: with the key-encryption key it restores the erased "
		       "documents. Destroy those backup files (and any other keyring copy from before), or take a new "
		       "backup now and destroy the older ones.\n",
		       when, when, when);
	else
		printf("erased at %s without rotating: the key version that wrapped the erased documents' data keys is "
		       "still in the keyring, so copies of their rows taken before (every `quire backup` file made before "
		       "%s among them) can still be decrypted. Run `quire keys rotate` and `quire keys retire` for the "
		       "old version, then destroy the backups made before the retirement.\n",
		       when, when);
}

/* Asks on the terminal before documents are erased; --yes answers for scripts. */
static bool erase_confirmed(int argc, char **argv, bool yes, char **reterr)
{
	if (yes)
		return true;
	if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) {
		qerr_set(reterr, QERR_BAD_INPUT, "erasing cannot be undone: not on a terminal, so pass --yes to confirm");
		return false;
	}
	g_autofree char *ids = g_strjoinv(" ", argv + 1);
	fprintf(stderr, "Erase %d document%s (%s) for good? This cannot be undone. Type yes to go on: ", argc - 1,
	        argc == 2 ? "" : "s", ids);
	char answer[16] = "";
	if (!fgets(answer, sizeof answer, stdin) || strcmp(g_strstrip(answer), "yes") != 0) {
		qerr_set(reterr, QERR_BAD_INPUT, "not confirmed: nothing was erased");
		return false;
	}
	return true;
}

/* The rotation after an erasure failed: the erased documents' rows, copied before, still open. */
static int erase_rotation_failed(const char *why)
{
	fprintf(stderr,
	        "quire erase: THE ERASURE IS NOT COMPLETE. The documents' data keys are gone from the database, but "
	        "rotating away and retiring the key version that wrapped them failed: %s\n"
	        "Copies of their rows taken before (every `quire backup` file among them) STILL DECRYPT with the keyring "
	        "as it is. Finish it: fix the cause, then run `quire keys rotate` and `quire keys retire` for every older "
	        "version (`quire keys status` lists them), then destroy the backups made before.\n",
	        why ? why : "unknown error");
	return 1;
}

int cmd_erase(int argc, char **argv, struct config *cfg)
{
	gboolean keep = FALSE, yes = FALSE;
	GOptionEntry entries[] = {{"no-rotate", 0, 0, G_OPTION_ARG_NONE, &keep,
	                           "Do not rotate and retire the key version now (copies of the rows stay decryptable "
	                           "with the keyring until then)",
	                           NULL},
	                          {"yes", 'y', 0, G_OPTION_ARG_NONE, &yes,
	                           "Do not ask for confirmation (needed when not on a terminal)", NULL},
	                          {NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "[--yes] DOC...",
	              "Erase documents for good (crypto-shredding): their data keys, originals, text and results are "
	              "destroyed; then the key version is rotated away and retired, so that copies of the database rows "
	              "taken before the erasure cannot be decrypted without a keyring copy from before it (or the "
	              "documents' data keys, unwrapped with one). Backups made by `quire backup` before the erasure hold "
	              "such a keyring: with the key-encryption key they still restore the erased documents, so destroy "
	              "them and take a new backup.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	if (argc < 2)
		return cmd_fail("erase", "give one or more document ids");
	for (int i = 1; i < argc; i++)
		if (parse_id(argv[i]) <= 0)
			return cmd_fail("erase", "document ids are positive numbers");
	struct app app;
	g_autofree char *err = NULL;
	if (!erase_confirmed(argc, argv, yes, &err))
		return cmd_fail("erase", err);
	if (app_open(cfg, APP_DB | APP_VAULT, &app, &err))
		return cmd_fail("erase", err);
	int rc = 0;
	for (int i = 1; i < argc && !rc; i++) {
		if (custody_erase(app.db, parse_id(argv[i]), app.actor, "cli", &err))
			rc = cmd_fail("erase", err);
		else
			printf("document %s erased\n", argv[i]);
	}
	int32_t v = 0;
	int64_t done = 0;
	if (!rc && !keep && (rotate(&app, REWRAP_BATCH, &v, &done, &err) || retire_unused(&app, &err)))
		rc = erase_rotation_failed(err);
	else if (!rc && !keep)
		printf("key version %d is active (%lld data keys rewrapped); the older versions are destroyed in the "
		       "keyring\n",
		       (int)v, (long long)done);
	if (!rc) {
		/* Taken after the retirement: a keyring copied before this moment may still hold the old version. */
		g_autoptr(GDateTime) now = g_date_time_new_now_utc();
		g_autofree char *when = g_date_time_format(now, "%Y-%m-%d %H:%M:%S UTC");
		erase_reminder(when, !keep);
	}
	app_close(&app);
	return rc;
}

static struct users_policy policy_of(const struct config *cfg)
{
	return (struct users_policy){.ops = (unsigned long long)cfg->password_ops,
	                             .mem = (size_t)cfg->password_mem_mb << 20};
}

static void print_users(struct db *db)
{
	struct users_info *list = NULL;
	int n = 0;
	g_autofree char *err = NULL;
	if (users_list(db, &list, &n, &err)) {
		cmd_fail("user list", err);
		return;
	}
	printf("name\trole\tstate\tcreated (UTC)\tlast login (UTC)\n");
	for (int i = 0; i < n; i++)
		printf("%s\t%s\t%s\t%s\t%s\n", list[i].name, users_role_name(list[i].role),
		       list[i].disabled ? "disabled" : "enabled", list[i].created_at,
		       list[i].last_login_at[0] ? list[i].last_login_at : "never");
	users_info_free(list, n);
}

/* user add|passwd|role|disable|list, once the database is open. */
static enum qerr user_do(struct app *app, int argc, char **argv, const char *role_name, char **reterr)
{
	struct users_policy pol = policy_of(app->cfg);
	const char *sub = argv[1];
	enum users_role role = USERS_ROLE_COUNT;
	bool wants_role = strcmp(sub, "add") == 0 || strcmp(sub, "role") == 0;
	const char *rn = strcmp(sub, "role") == 0 && argc == 4 ? argv[3] : role_name;
	if (wants_role && !users_role_parse(rn, &role))
		return qerr_set(reterr, QERR_BAD_INPUT, "a role is one of admin, operator, reviewer, auditor");
	if (strcmp(sub, "list") == 0) {
		print_users(app->db);
		return QERR_OK;
	}
	if (strcmp(sub, "disable") == 0)
		return users_disable(app->db, argv[2], app->actor, "cli", reterr);
	if (strcmp(sub, "role") == 0)
		return users_set_role(app->db, argv[2], role, app->actor, "cli", reterr);
	char *pw = read_secret("QUIRE_PASSWORD", "new password", true, reterr);
	if (!pw)
		return QERR_BAD_INPUT;
	int64_t id = 0;
	enum qerr e = strcmp(sub, "add") == 0 ? users_add(app->db, &pol, argv[2], pw, role, app->actor, "cli", &id, reterr)
	                                      : users_passwd(app->db, &pol, argv[2], pw, app->actor, "cli", reterr);
	secret_free(pw);
	return e;
}

int cmd_user(int argc, char **argv, struct config *cfg)
{
	char *role = NULL;
	GOptionEntry entries[] = {{"role", 0, 0, G_OPTION_ARG_STRING, &role, "admin, operator, reviewer or auditor", "ROLE"},
	                          {NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "add NAME --role ROLE | passwd NAME | role NAME ROLE | disable NAME | list",
	              "Manage user accounts. Passwords are read from $QUIRE_PASSWORD or asked for on the terminal.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	const char *sub = argc >= 2 ? argv[1] : "";
	bool named = (strcmp(sub, "add") == 0 || strcmp(sub, "passwd") == 0 || strcmp(sub, "disable") == 0) && argc == 3;
	if (!named && !(strcmp(sub, "list") == 0 && argc == 2) && !(strcmp(sub, "role") == 0 && argc == 4)) {
		g_free(role);
		return cmd_fail("user", "expected `add NAME --role ROLE`, `passwd NAME`, `role NAME ROLE`, `disable NAME` or "
		                        "`list`");
	}
	struct app app;
	g_autofree char *err = NULL;
	int rc = 0;
	if (app_open(cfg, APP_DB | APP_VAULT, &app, &err)) {
		g_free(role);
		return cmd_fail("user", err);
	}
	static const char *const done[][2] = {
		{"add", "added"}, {"passwd", "password changed"}, {"role", "role changed"}, {"disable", "disabled"}};
	if (user_do(&app, argc, argv, role, &err))
		rc = cmd_fail("user", err);
	for (size_t i = 0; !rc && i < G_N_ELEMENTS(done); i++)
		if (strcmp(sub, done[i][0]) == 0)
			printf("user %s %s\n", argv[2], done[i][1]);
	app_close(&app);
	g_free(role);
	return rc;
}

static void print_tokens(struct db *db)
{
	struct users_token_info *list = NULL;
	int n = 0;
	g_autofree char *err = NULL;
	if (users_token_list(db, &list, &n, &err)) {
		cmd_fail("token list", err);
		return;
	}
	printf("id\tname\trole\tstate\tcreated by\tcreated (UTC)\texpires (UTC)\n");
	for (int i = 0; i < n; i++)
		printf("%lld\t%s\t%s\t%s\t%s\t%s\t%s\n", (long long)list[i].id, list[i].name, users_role_name(list[i].role),
		       list[i].revoked ? "revoked" : list[i].expired ? "expired" : "valid", list[i].created_by,
		       list[i].created_at, list[i].expires_at);
	users_token_list_free(list, n);
}

static enum qerr token_do(struct app *app, int argc, char **argv, const char *role_name, int days, char **reterr)
{
	const char *sub = argv[1];
	if (strcmp(sub, "list") == 0) {
		print_tokens(app->db);
		return QERR_OK;
	}
	if (strcmp(sub, "revoke") == 0) {
		int64_t id = parse_id(argv[2]);
		if (id <= 0)
			return qerr_set(reterr, QERR_BAD_INPUT, "a token id is a positive number");
		enum qerr e = users_token_revoke(app->db, id, app->actor, "cli", reterr);
		if (!e)
			printf("token %lld revoked\n", (long long)id);
		return e;
	}
	enum users_role role;
	if (!users_role_parse(role_name, &role))
		return qerr_set(reterr, QERR_BAD_INPUT, "--role must be one of admin, operator, reviewer, auditor");
	int64_t id = 0;
	char *token = NULL;
	enum qerr e = users_token_create(app->db, app->vault, argv[2], role, (int64_t)days * 86400, app->actor, "cli",
	                                 &token, &id, reterr);
	if (e)
		return e;
	printf("token %lld (%s, role %s, valid %d days):\n%s\nIt is shown only now: store it safely.\n", (long long)id,
	       argv[2], users_role_name(role), days, token);
	secret_free(token);
	return QERR_OK;
}

int cmd_token(int argc, char **argv, struct config *cfg)
{
	char *role = NULL;
	int days = cfg->token_days;
	GOptionEntry entries[] = {{"role", 0, 0, G_OPTION_ARG_STRING, &role, "admin, operator, reviewer or auditor", "ROLE"},
	                          {"days", 0, 0, G_OPTION_ARG_INT, &days, "Lifetime in days (auth.token_days)", "N"},
	                          {NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv, "create NAME --role ROLE [--days N] | list | revoke ID",
	              "Manage API tokens: random, shown once, stored hashed, scoped to a role, with an expiry.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	const char *sub = argc >= 2 ? argv[1] : "";
	bool ok = (strcmp(sub, "list") == 0 && argc == 2) ||
	          ((strcmp(sub, "create") == 0 || strcmp(sub, "revoke") == 0) && argc == 3);
	if (!ok || days < 1 || days > 3650) {
		g_free(role);
		return cmd_fail("token", "expected `create NAME --role ROLE [--days 1..3650]`, `list` or `revoke ID`");
	}
	struct app app;
	g_autofree char *err = NULL;
	int rc = 0;
	if (app_open(cfg, APP_DB | APP_VAULT, &app, &err)) {
		g_free(role);
		return cmd_fail("token", err);
	}
	if (token_do(&app, argc, argv, role, days, &err))
		rc = cmd_fail("token", err);
	app_close(&app);
	g_free(role);
	return rc;
}

static enum qerr audit_read_event(struct app *app, const char *action, const char *outcome, const char *detail,
                                  char **reterr)
{
	struct audit_event ev = {.actor = app->actor, .action = action, .object_type = "audit_log",
	                         .outcome = outcome, .client = "cli", .detail = detail};
	enum qerr e = db_begin(app->db, reterr);
	if (!e)
		e = audit_append(app->db, &ev, reterr);
	if (!e)
		e = db_commit(app->db, reterr);
	if (e)
		db_rollback(app->db);
	return e;
}

/* Reads and checks an exported checkpoint file into *ret. */
static enum qerr read_checkpoint(const char *path, struct audit_checkpoint *ret, char **reterr)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) gerr = NULL;
	gsize len = 0;
	if (!g_file_get_contents(path, &text, &len, &gerr))
		return qerr_set(reterr, QERR_IO, "%s", gerr->message);
	if (strlen(text) != len)
		return qerr_set(reterr, QERR_BAD_INPUT, "%s: not a quire audit checkpoint", path);
	g_autofree char *why = NULL;
	enum qerr e = audit_checkpoint_parse(text, ret, &why);
	if (e)
		qerr_set(reterr, e, "%s: %s", path, why);
	return e;
}

struct audit_args {
	char *checkpoint, *since, *out;
	char **witness;
};

static int audit_verify_cmd(struct app *app, const struct audit_args *a)
{
	g_autofree char *err = NULL;
	struct audit_checkpoint *given = g_new0(struct audit_checkpoint, 2);
	uint8_t pk[VAULT_PK_BYTES];
	vault_sign_public(app->vault, pk);
	struct audit_verify_options o = {.pk = pk,
	                                 .witness_files = (const char *const *)a->witness,
	                                 .check_ring = true,
	                                 .ring_generation = vault_ring_generation(app->vault)};
	enum qerr e = QERR_OK;
	if (a->checkpoint && !(e = read_checkpoint(a->checkpoint, &given[0], &err)))
		o.checkpoint = &given[0];
	if (!e && a->since && !(e = read_checkpoint(a->since, &given[1], &err)))
		o.since = &given[1];
	struct audit_report r = {0};
	if (!e)
		e = audit_verify_with(app->db, &o, &r, &err);
	g_free(given);
	g_autofree char *detail = g_strdup_printf("entries=%lld%s%s", (long long)r.entries, a->checkpoint ? " checkpoint" : "",
	                                          a->since ? " since" : "");
	if (audit_read_event(app, "audit.verified", e ? "failed" : "ok", detail, NULL) != QERR_OK && !e)
		return cmd_fail("audit verify", "the audit log is intact but recording this check failed");
	if (e)
		return cmd_fail("audit verify", err);
	printf("audit log intact: %lld entries verified, every one covered by the %lld signed witness lines; %lld signed "
	       "checkpoints match%s%s\n",
	       (long long)r.entries, (long long)r.witness_heads, (long long)r.checkpoints,
	       a->checkpoint ? " (including the given checkpoint)" : "",
	       a->since ? "; the log extends the earlier checkpoint" : "");
	if (r.prepared)
		printf("note: %lld commit%s signed by %s prepared head only (the process ended between its commit and "
		       "its committed line, e.g. killed); the log matches %s exactly\n",
		       (long long)r.prepared, r.prepared == 1 ? " is" : "s are", r.prepared == 1 ? "its" : "their",
		       r.prepared == 1 ? "it" : "them");
	return 0;
}

static int audit_checkpoint_cmd(struct app *app, const struct audit_args *a)
{
	g_autofree char *err = NULL;
	struct audit_checkpoint *cp = g_new0(struct audit_checkpoint, 2);
	enum qerr e = a->since ? read_checkpoint(a->since, &cp[1], &err) : QERR_OK;
	if (!e)
		e = audit_checkpoint_export(app->db, app->vault, a->since ? &cp[1] : NULL, &cp[0], &err);
	g_autofree char *text = e ? NULL : audit_checkpoint_format(&cp[0]);
	int64_t entries = cp[0].entries, last = cp[0].last_entry_id;
	g_free(cp);
	if (e)
		return cmd_fail("audit checkpoint", err);
	if (!a->out) {
		printf("%s", text);
		return 0;
	}
	g_autoptr(GError) gerr = NULL;
	if (!g_file_set_contents(a->out, text, -1, &gerr))
		return cmd_fail("audit checkpoint", gerr->message);
	printf("checkpoint of %lld entries (up to entry %lld) written to %s%s\n", (long long)entries, (long long)last,
	       a->out, a->since ? ", with a consistency proof from the earlier one" : "");
	return 0;
}

int cmd_audit(int argc, char **argv, struct config *cfg)
{
	struct audit_args a = {0};
	GOptionEntry entries[] = {
		{"checkpoint", 0, 0, G_OPTION_ARG_FILENAME, &a.checkpoint, "verify: also check against this exported checkpoint",
		 "FILE"},
		{"since", 0, 0, G_OPTION_ARG_FILENAME, &a.since,
		 "verify: the log must extend this earlier exported checkpoint (and so must --checkpoint's, by its proof); "
		 "checkpoint: include a consistency proof from it",
		 "FILE"},
		{"witness", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &a.witness,
		 "verify: read these witness files (every host's that appends) instead of this host's; repeatable", "FILE"},
		{"out", 0, 0, G_OPTION_ARG_FILENAME, &a.out, "checkpoint: write it to FILE instead of standard output", "FILE"},
		{NULL, 0, 0, 0, NULL, NULL, NULL}};
	if (cmd_parse(&argc, &argv,
	              "verify [--witness FILE]... [--checkpoint FILE] [--since FILE] | checkpoint [--out FILE] [--since FILE]",
	              "`verify` recomputes the audit log's hash chain and checks it against the signed heads of the "
	              "witness file outside the database, every signed checkpoint and the exported ones given; "
	              "`checkpoint` signs the current state with the Merkle root of the log and exports it for an "
	              "outside witness.",
	              (const struct _GOptionEntry *)entries))
		return 2;
	int rc = 0;
	bool verify = argc == 2 && strcmp(argv[1], "verify") == 0;
	if (!verify && !(argc == 2 && strcmp(argv[1], "checkpoint") == 0)) {
		rc = cmd_fail("audit", "expected `verify` or `checkpoint`");
	} else {
		struct app app;
		g_autofree char *err = NULL;
		if (app_open(cfg, APP_DB | APP_VAULT, &app, &err)) {
			rc = cmd_fail("audit", err);
		} else {
			rc = verify ? audit_verify_cmd(&app, &a) : audit_checkpoint_cmd(&app, &a);
			app_close(&app);
		}
	}
	g_free(a.checkpoint);
	g_free(a.since);
	g_free(a.out);
	g_strfreev(a.witness);
	return rc;
}
