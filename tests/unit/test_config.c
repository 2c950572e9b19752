/* Unit tests of appliance/config: defaults, file, environment, errors with file and line. */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "appliance/config.h"

static char *write_conf(const char *text)
{
	g_autofree char *dir = g_dir_make_tmp("quire-conf-XXXXXX", NULL);
	char *path = g_build_filename(dir, "quire.conf", NULL);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	return path;
}

static void test_defaults_and_file(void)
{
	g_autofree char *path = write_conf("# comment\n[general]\ndata_dir = /srv/quire\n\n[limits]\nmax_pages = 12\n");
	struct config *cfg = NULL;
	g_assert_cmpint(config_load(path, &cfg, NULL), ==, QERR_OK);
	g_assert_cmpstr(cfg->data_dir, ==, "/srv/quire");
	g_assert_cmpint(cfg->max_pages, ==, 12);
	g_assert_cmpint(cfg->parse_timeout_s, ==, 60);
	g_assert_cmpstr(cfg->db_url, ==, "");
	config_free(cfg);
}

static void test_unknown_key_names_line(void)
{
	g_autofree char *path = write_conf("[general]\nlog_level = info\n\n[limits]\nmax_pagez = 3\n");
	struct config *cfg = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(config_load(path, &cfg, &err), ==, QERR_CONFIG);
	g_autofree char *want = g_strdup_printf("%s:5: unknown key \"max_pagez\"", path);
	g_assert_nonnull(strstr(err, want));
}

static void test_bad_value_names_line(void)
{
	g_autofree char *path = write_conf("[limits]\n\nparse_timeout_s = soon\n");
	struct config *cfg = NULL;
	g_autofree char *err = NULL;
	g_assert_cmpint(config_load(path, &cfg, &err), ==, QERR_CONFIG);
	g_autofree char *want = g_strdup_printf("%s:3: limits.parse_timeout_s must be an integer", path);
	g_assert_nonnull(strstr(err, want));
	g_clear_pointer(&err, g_free);
	g_autofree char *path2 = write_conf("[nosuch]\nx = 1\n");
	g_assert_cmpint(config_load(path2, &cfg, &err), ==, QERR_CONFIG);
	g_assert_nonnull(strstr(err, ":1: unknown section [nosuch]"));
}

static void test_env_override(void)
{
	g_autofree char *path = write_conf("[limits]\nmax_pages = 12\n");
	g_setenv("QUIRE_LIMITS_MAX_PAGES", "34", TRUE);
	struct config *cfg = NULL;
	g_assert_cmpint(config_load(path, &cfg, NULL), ==, QERR_OK);
	g_assert_cmpint(cfg->max_pages, ==, 34);
	config_free(cfg);
	g_setenv("QUIRE_LIMITS_MAX_PAGES", "-1", TRUE);
	g_autofree char *err = NULL;
	g_assert_cmpint(config_load(path, &cfg, &err), ==, QERR_CONFIG);
	g_assert_nonnull(strstr(err, "QUIRE_LIMITS_MAX_PAGES"));
	g_unsetenv("QUIRE_LIMITS_MAX_PAGES");
}

/* Mistakes refused at start, each naming where the value was set. */
static void test_mistakes_refused(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"[general]\nlog_level = verbose\n", ":2: general.log_level must be error, warn, info or debug"},
		{"[web]\n\nlisten = localhost:80\n", ":3: web.listen must be an IPv4 address and a port"},
		{"[web]\nlisten = 127.0.0.1:99999\n", ":2: web.listen must be"},
		{"[web]\nlisten = 127.0.0.1\n", ":2: web.listen must be"},
		{"[vault]\nkek_source = tpm\n", ":2: vault.kek_source must be file, passphrase or credential"},
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *path = write_conf(cases[i].text);
		struct config *cfg = NULL;
		g_autofree char *err = NULL;
		g_assert_cmpint(config_load(path, &cfg, &err), ==, QERR_CONFIG);
		g_autofree char *want = g_strdup_printf("%s%s", path, cases[i].want);
		if (!strstr(err, want))
			g_error("expected \"%s\" in: %s", want, err);
	}
	g_autofree char *path = write_conf("[web]\nlisten = 0.0.0.0:0\n");
	struct config *cfg = NULL;
	g_assert_cmpint(config_load(path, &cfg, NULL), ==, QERR_OK);
	config_free(cfg);
	/* a QUIRE_* variable that names no setting: a typo would leave the default in force unseen */
	g_setenv("QUIRE_WEB_LISTN", "0.0.0.0:80", TRUE);
	g_autofree char *err = NULL;
	g_assert_cmpint(config_load(path, &cfg, &err), ==, QERR_CONFIG);
	g_assert_nonnull(strstr(err, "unknown environment variable QUIRE_WEB_LISTN"));
	g_unsetenv("QUIRE_WEB_LISTN");
	g_setenv("QUIRE_GENERAL_LOG_LEVEL", "loud", TRUE);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(config_load(path, &cfg, &err), ==, QERR_CONFIG);
	g_assert_nonnull(strstr(err, "environment variable QUIRE_GENERAL_LOG_LEVEL: general.log_level must be"));
	g_unsetenv("QUIRE_GENERAL_LOG_LEVEL");
}

static void test_sample_parses(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	config_print_sample(f);
	fclose(f);
	g_assert_nonnull(strstr(buf, "[database]"));
	g_assert_nonnull(strstr(buf, "#url ="));
	/* Uncommenting every key of the sample must give a valid file. */
	GString *live = g_string_new(NULL);
	g_auto(GStrv) lines = g_strsplit(buf, "\n", -1);
	for (int i = 0; lines[i]; i++) {
		const char *l = lines[i];
		if (l[0] == '#' && strchr(l, '=') && g_ascii_islower(l[1]))
			g_string_append_printf(live, "%s\n", l + 1);
		else if (l[0] == '[')
			g_string_append_printf(live, "%s\n", l);
	}
	free(buf);
	g_autofree char *path = write_conf(live->str);
	g_string_free(live, TRUE);
	struct config *cfg = NULL;
	g_autofree char *err = NULL;
	g_setenv("QUIRE_GENERAL_DATA_DIR", "/tmp/quire-sample", TRUE);
	g_assert_cmpint(config_load(path, &cfg, &err), ==, QERR_OK);
	g_unsetenv("QUIRE_GENERAL_DATA_DIR");
	g_assert_cmpint(cfg->max_file_mb, ==, 100);
	config_free(cfg);
}

/* web.tls_cert and web.tls_key when set; else the files `quire init --tls` makes, when both exist. */
static void test_tls_paths(void)
{
	g_autofree char *dir = g_dir_make_tmp("quire-conf-XXXXXX", NULL);
	g_autofree char *text = g_strdup_printf("[general]\ndata_dir = %s\n", dir);
	g_autofree char *path = write_conf(text);
	struct config *cfg = NULL;
	g_assert_cmpint(config_load(path, &cfg, NULL), ==, QERR_OK);
	g_autofree char *tls = config_tls_dir(cfg);
	g_autofree char *cert_path = g_build_filename(tls, "cert.pem", NULL);
	g_autofree char *key_path = g_build_filename(tls, "key.pem", NULL);
	char *cert = NULL, *key = NULL, *err = NULL;
	g_assert_cmpint(config_tls(cfg, &cert, &key, NULL), ==, QERR_OK);
	g_assert_cmpstr(cert, ==, "");
	g_assert_cmpstr(key, ==, "");
	g_clear_pointer(&cert, g_free);
	g_clear_pointer(&key, g_free);
	g_assert_cmpint(g_mkdir_with_parents(tls, 0700), ==, 0);
	g_assert_true(g_file_set_contents(cert_path, "cert", -1, NULL));
	g_assert_cmpint(config_tls(cfg, &cert, &key, &err), ==, QERR_CONFIG);
	g_assert_nonnull(strstr(err, "key.pem"));
	g_clear_pointer(&err, g_free);
	g_assert_true(g_file_set_contents(key_path, "key", -1, NULL));
	g_assert_cmpint(config_tls(cfg, &cert, &key, NULL), ==, QERR_OK);
	g_assert_cmpstr(cert, ==, cert_path);
	g_assert_cmpstr(key, ==, key_path);
	g_clear_pointer(&cert, g_free);
	g_clear_pointer(&key, g_free);
	g_free(cfg->web_tls_cert);
	cfg->web_tls_cert = g_strdup("/etc/ssl/quire.pem");
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(config_tls(cfg, &cert, &key, &err), ==, QERR_CONFIG); /* one without the other */
	g_assert_cmpstr(err, ==, "web.tls_cert and web.tls_key must be set together");
	g_clear_pointer(&err, g_free);
	g_free(cfg->web_tls_key);
	cfg->web_tls_key = g_strdup("/etc/ssl/quire.key");
	g_assert_cmpint(config_tls(cfg, &cert, &key, NULL), ==, QERR_OK);
	g_assert_cmpstr(cert, ==, "/etc/ssl/quire.pem");
	g_assert_cmpstr(key, ==, "/etc/ssl/quire.key");
	g_free(cert);
	g_free(key);
	config_free(cfg);
	g_assert_cmpint(remove(cert_path), ==, 0);
	g_assert_cmpint(remove(key_path), ==, 0);
	g_assert_cmpint(remove(tls), ==, 0);
	g_assert_cmpint(remove(path), ==, 0);
	g_assert_cmpint(remove(dir), ==, 0);
}

int main(int argc, char **argv)
{
	g_unsetenv("QUIRE_CONFIG");
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/config/defaults-and-file", test_defaults_and_file);
	g_test_add_func("/config/unknown-key-names-line", test_unknown_key_names_line);
	g_test_add_func("/config/bad-value-names-line", test_bad_value_names_line);
	g_test_add_func("/config/env-override", test_env_override);
	g_test_add_func("/config/sample-parses", test_sample_parses);
	g_test_add_func("/config/mistakes-refused", test_mistakes_refused);
	g_test_add_func("/config/tls-paths", test_tls_paths);
	return g_test_run();
}
