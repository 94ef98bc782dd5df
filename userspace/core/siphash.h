/* siphash.h - SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit PRF for hash
 * tables that attacker-chosen keys must not be able to flood. Not a digest: a match
 * says "probably the same", never "the same". */
#ifndef EG_SIPHASH_H
#define EG_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t eg_siphash24(const uint8_t key[16], const void *data, size_t len);
/* SipHash-1-3: the same keyed construction with one compression round per 8-byte word
 * and three finalization rounds, about half the work on long inputs. Still a keyed PRF
 * as far as published analysis goes (no key recovery, no key-less collisions), which is
 * what a table of attacker-chosen keys needs: the same trade Python's str hash and Rust's
 * HashMap make. The token cache hashes a whole ~700-byte token on every verdict. */
uint64_t eg_siphash13(const uint8_t key[16], const void *data, size_t len);

#endif
