/* siphash.c - SipHash-2-4 and SipHash-1-3, written from the paper's description (see siphash.h). */
#include "siphash.h"

#include <string.h>

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

#define SIPROUND(v0, v1, v2, v3)                                                               \
	do {                                                                                   \
		v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);                      \
		v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                                         \
		v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                                         \
		v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);                      \
	} while (0)

/* c compression rounds per word, d finalization rounds: constants at each call below, so
 * the compiler unrolls them. */
static inline __attribute__((always_inline)) uint64_t siphash(const uint8_t key[16], const void *data, size_t len,
							      int c, int d)
{
	const uint8_t *p = data;
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
	uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
	size_t words = len / 8;
	for (size_t i = 0; i < words; i++, p += 8) {
		uint64_t m = load_le64(p);
		v3 ^= m;
		for (int r = 0; r < c; r++)
			SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	/* the last 0-7 bytes, little-endian, with the length's low byte on top */
	uint64_t b = (uint64_t)(len & 0xff) << 56;
	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	for (int r = 0; r < c; r++)
		SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int r = 0; r < d; r++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t eg_siphash24(const uint8_t key[16], const void *data, size_t len)
{
	return siphash(key, data, len, 2, 4);
}

uint64_t eg_siphash13(const uint8_t key[16], const void *data, size_t len)
{
	return siphash(key, data, len, 1, 3);
}
