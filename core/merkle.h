/* merkle: a Merkle tree over the audit log's entries, in the manner of RFC 9162
 * (Certificate Transparency 2.0), section 2.1.
 *
 * The leaves are the entries' chain hashes in log order. A leaf's node is
 * BLAKE2b-256(0x00 || leaf), an inner node BLAKE2b-256(0x01 || left || right);
 * a tree of n leaves splits at k, the largest power of two below n. The root
 * of the first m leaves and the root of all n, with a consistency proof of
 * O(log n) hashes, are enough to show that the larger tree extends the smaller
 * one: a witness that kept an earlier head checks a later one without reading
 * the log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_BYTES 32
#define MERKLE_MAX_PROOF 128 /* hashes in a consistency proof: about 2 log2(n), n < 2^63 */

/* The root of the tree over the n leaves (each MERKLE_HASH_BYTES); n = 0 gives the hash of nothing. */
void merkle_root(const uint8_t *leaves, size_t n, uint8_t out[MERKLE_HASH_BYTES]);
/* The consistency proof from the tree of the first m leaves to the tree of all n (0 < m <= n):
 * proof receives *ret_len hashes (at most MERKLE_MAX_PROOF). */
void merkle_consistency_proof(const uint8_t *leaves, size_t m, size_t n, uint8_t proof[][MERKLE_HASH_BYTES],
                              size_t *ret_len);
/* Whether proof shows that the tree of n leaves with root new_root extends the tree of m leaves
 * with root old_root (RFC 9162 2.1.4.2). Needs no leaf. */
bool merkle_consistency_verify(uint64_t m, uint64_t n, const uint8_t old_root[MERKLE_HASH_BYTES],
                               const uint8_t new_root[MERKLE_HASH_BYTES], const uint8_t proof[][MERKLE_HASH_BYTES],
                               size_t len);
