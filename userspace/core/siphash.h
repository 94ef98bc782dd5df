/* siphash.h - SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit PRF for hash
 * tables that attacker-chosen keys must not be able to flood. Not a digest: a match
 * says "probably the same", never "the same". */
#ifndef EG_SIPHASH_H
#define EG_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t eg_siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
