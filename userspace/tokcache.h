/* tokcache.h - bearer-token verdict cache: a repeated token costs a hash and a lookup,
 * not a signature check. Keyed by SHA-256 of the token; positive entries live until
 * the token's exp (capped), negative ones briefly, so a client retrying a bad token
 * does not cost a verify each time. Thread-safe (striped locks). */
#ifndef EG_TOKCACHE_H
#define EG_TOKCACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct eg_verdict_cache;

struct eg_verdict_cache *eg_tokcache_new(size_t entries);
void eg_tokcache_free(struct eg_verdict_cache *c);

/* 1 hit (positive: *claims gets a new reference; negative: *claims NULL and *err the
 * cached error code), 0 miss. now: UNIX seconds. */
int eg_tokcache_get(struct eg_verdict_cache *c, const uint8_t key[32], int64_t now, json_t **claims, int *err);
/* claims NULL = negative entry with err. until: UNIX seconds. */
void eg_tokcache_put(struct eg_verdict_cache *c, const uint8_t key[32], int64_t until, json_t *claims, int err);
void eg_tokcache_clear(struct eg_verdict_cache *c);

#endif
