/* tokcache.h - bearer-token verdict cache: a repeated token costs a hash and a lookup,
 * not a signature check. Looked up by a keyed SipHash of the token (of a JWS, of its
 * signature's last 32 bytes; a random key per cache, so no one can aim tokens at one set); a hit is
 * proven, not presumed: a positive entry keeps the token's bytes and a hit compares all
 * of them in constant time, a negative one keeps the token's SHA-256 (junk must not cost the cache more than a
 * digest) and a hit compares digests. Positive entries live until the token's exp
 * (capped), negative ones briefly, so a client retrying a bad token does not cost a
 * verify each time. Thread-safe (striped locks). A positive entry keeps the fingerprint
 * of the key that verified it: the caller checks that the key is still in the current
 * set, so a key removed from the JWKS takes its verdicts with it. */
#ifndef EG_TOKCACHE_H
#define EG_TOKCACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct eg_verdict_cache;

struct eg_verdict_cache *eg_tokcache_new(size_t entries);
void eg_tokcache_free(struct eg_verdict_cache *c);

/* 1 hit (positive: *claims gets a new reference and key_fp the signing key's
 * fingerprint; negative: *claims NULL and *err the cached error code), 0 miss.
 * now: UNIX seconds. key_fp may be NULL. */
int eg_tokcache_get(struct eg_verdict_cache *c, const char *tok, size_t len, int64_t now, json_t **claims, int *err,
		    uint8_t key_fp[32]);
/* claims NULL = negative entry with err (key_fp NULL). until: UNIX seconds. */
void eg_tokcache_put(struct eg_verdict_cache *c, const char *tok, size_t len, int64_t until, json_t *claims, int err,
		     const uint8_t key_fp[32]);
/* The same with the token's tag (eg_tokcache_tag of these very bytes) computed by the caller:
 * a miss and the insert that follows it hash the token once. */
uint64_t eg_tokcache_tag(const struct eg_verdict_cache *c, const char *tok, size_t len);
int eg_tokcache_get_at(struct eg_verdict_cache *c, const char *tok, size_t len, uint64_t tag, int64_t now,
		       json_t **claims, int *err, uint8_t key_fp[32]);
void eg_tokcache_put_at(struct eg_verdict_cache *c, const char *tok, size_t len, uint64_t tag, int64_t until,
			json_t *claims, int err, const uint8_t key_fp[32]);
/* Drops the token's entry (a positive verdict whose key left the set). */
void eg_tokcache_drop(struct eg_verdict_cache *c, const char *tok, size_t len);
void eg_tokcache_clear(struct eg_verdict_cache *c);

#endif
