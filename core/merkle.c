/* merkle: RFC 9162-style tree hashes and consistency proofs over in-memory leaves.
 * Trees are computed recursively (depth at most 64); proofs follow the
 * SUBPROOF definition of RFC 9162 2.1.4.1, their check 2.1.4.2. */
#include "core/merkle.h"

#include <sodium.h>
#include <string.h>

#define H MERKLE_HASH_BYTES

static void leaf_hash(const uint8_t *leaf, uint8_t out[H])
{
	crypto_generichash_state st;
	const uint8_t tag = 0;
	crypto_generichash_init(&st, NULL, 0, H);
	crypto_generichash_update(&st, &tag, 1);
	crypto_generichash_update(&st, leaf, H);
	crypto_generichash_final(&st, out, H);
}

static void node_hash(const uint8_t left[H], const uint8_t right[H], uint8_t out[H])
{
	crypto_generichash_state st;
	const uint8_t tag = 1;
	crypto_generichash_init(&st, NULL, 0, H);
	crypto_generichash_update(&st, &tag, 1);
	crypto_generichash_update(&st, left, H);
	crypto_generichash_update(&st, right, H);
	crypto_generichash_final(&st, out, H);
}

/* The largest power of two below n (n > 1). */
static size_t split(size_t n)
{
	size_t k = 1;
	while (k << 1 < n)
		k <<= 1;
	return k;
}

static void root_of(const uint8_t *leaves, size_t n, uint8_t out[H])
{
	if (n == 1) {
		leaf_hash(leaves, out);
		return;
	}
	size_t k = split(n);
	uint8_t l[H], r[H];
	root_of(leaves, k, l);
	root_of(leaves + k * H, n - k, r);
	node_hash(l, r, out);
}

void merkle_root(const uint8_t *leaves, size_t n, uint8_t out[H])
{
	if (n == 0)
		crypto_generichash(out, H, NULL, 0, NULL, 0);
	else
		root_of(leaves, n, out);
}

/* SUBPROOF(m, D[n], b), appending to proof. */
static void subproof(const uint8_t *leaves, size_t m, size_t n, bool whole, uint8_t proof[][H], size_t *len)
{
	if (m == n) {
		if (!whole)
			root_of(leaves, n, proof[(*len)++]);
		return;
	}
	size_t k = split(n);
	if (m <= k) {
		subproof(leaves, m, k, whole, proof, len);
		root_of(leaves + k * H, n - k, proof[(*len)++]);
	} else {
		subproof(leaves + k * H, m - k, n - k, false, proof, len);
		root_of(leaves, k, proof[(*len)++]);
	}
}

void merkle_consistency_proof(const uint8_t *leaves, size_t m, size_t n, uint8_t proof[][H], size_t *ret_len)
{
	*ret_len = 0;
	if (m > 0 && m < n)
		subproof(leaves, m, n, true, proof, ret_len);
}

bool merkle_consistency_verify(uint64_t m, uint64_t n, const uint8_t old_root[H], const uint8_t new_root[H],
                               const uint8_t proof[][H], size_t len)
{
	if (m == 0 || m > n)
		return false;
	if (m == n)
		return len == 0 && sodium_memcmp(old_root, new_root, H) == 0;
	/* when m is a power of two the old root is the proof's implicit first element */
	const uint8_t *first = old_root;
	size_t i = 0;
	if ((m & (m - 1)) != 0) {
		if (len == 0)
			return false;
		first = proof[0];
		i = 1;
	}
	uint64_t fn = m - 1, sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	uint8_t fr[H], sr[H];
	memcpy(fr, first, H);
	memcpy(sr, first, H);
	for (; i < len; i++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			node_hash(proof[i], fr, fr);
			node_hash(proof[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			node_hash(sr, proof[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && sodium_memcmp(fr, old_root, H) == 0 && sodium_memcmp(sr, new_root, H) == 0;
}
