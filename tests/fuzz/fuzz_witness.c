/* Fuzz target: the audit witness line parser (core/witness.h). The input is signed with a
 * fixed test key before it is parsed, so that the fields behind the signature check are
 * reached too; the input is also parsed as it is (a line with no valid signature). */
#include "tests/fuzz/fuzz_main.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "core/witness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	static bool ready;
	if (!ready) {
		uint8_t seed[crypto_sign_SEEDBYTES] = {7};
		g_assert_cmpint(sodium_init(), >=, 0);
		crypto_sign_seed_keypair(pk, sk, seed);
		ready = true;
	}
	if (size > WITNESS_MAX_LINE)
		return 0;
	g_autofree char *body = g_strndup((const char *)data, size); /* stops at a NUL byte */
	uint8_t sig[crypto_sign_BYTES];
	crypto_sign_detached(sig, NULL, (const uint8_t *)body, strlen(body), sk);
	char hex[2 * crypto_sign_BYTES + 1];
	sodium_bin2hex(hex, sizeof hex, sig, sizeof sig);
	g_autofree char *line = g_strdup_printf("%s sig=%s", body, hex);
	const char *inputs[2] = {line, body};
	for (int i = 0; i < 2; i++) {
		struct witness_head h;
		g_autofree char *err = NULL;
		if (witness_line_parse(inputs[i], pk, &h, &err) == QERR_OK) {
			g_assert_cmpint(h.seq, >=, 1);
			g_assert_cmpint(h.n_ranges, >=, 1);
			g_assert_cmpint(h.n_ranges, <=, WITNESS_MAX_RANGES);
			for (int r = 0; r < h.n_ranges; r++)
				g_assert_true(h.ranges[r].first >= 1 && h.ranges[r].first <= h.ranges[r].last &&
				              h.ranges[r].last <= h.seq);
			g_assert_false(h.prepared && h.withdrawn);
		} else {
			g_assert_nonnull(err);
		}
	}
	return 0;
}
