/* tokcache.c - a set-associative cache of bearer verdicts (see tokcache.h). */
#include "tokcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define WAYS 4
#define STRIPES 64

struct entry {
	uint8_t key[32];
	int64_t until; /* 0 = empty */
	json_t *claims;
	int err;
	uint8_t key_fp[32]; /* the signing key of a positive verdict */
	uint64_t used; /* for choosing a victim */
};

struct eg_verdict_cache {
	struct entry *e;
	size_t sets; /* power of two */
	pthread_mutex_t lock[STRIPES];
	uint64_t tick;
};

struct eg_verdict_cache *eg_tokcache_new(size_t entries)
{
	struct eg_verdict_cache *c = xcalloc(1, sizeof(*c));
	size_t sets = 1;
	while (sets * WAYS < entries)
		sets <<= 1;
	c->sets = sets;
	c->e = xcalloc(sets * WAYS, sizeof(struct entry));
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&c->lock[i], NULL);
	return c;
}

void eg_tokcache_clear(struct eg_verdict_cache *c)
{
	for (size_t s = 0; s < c->sets; s++) {
		pthread_mutex_t *l = &c->lock[s % STRIPES];
		pthread_mutex_lock(l);
		for (int w = 0; w < WAYS; w++) {
			struct entry *e = &c->e[s * WAYS + w];
			json_decref(e->claims);
			memset(e, 0, sizeof(*e));
		}
		pthread_mutex_unlock(l);
	}
}

void eg_tokcache_free(struct eg_verdict_cache *c)
{
	if (!c)
		return;
	eg_tokcache_clear(c);
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&c->lock[i]);
	free(c->e);
	free(c);
}

static size_t set_of(const struct eg_verdict_cache *c, const uint8_t key[32])
{
	uint64_t h;
	memcpy(&h, key, sizeof(h)); /* the key is already a cryptographic hash */
	return (size_t)(h & (c->sets - 1));
}

int eg_tokcache_get(struct eg_verdict_cache *c, const uint8_t key[32], int64_t now, json_t **claims, int *err,
		    uint8_t key_fp[32])
{
	size_t s = set_of(c, key);
	pthread_mutex_t *l = &c->lock[s % STRIPES];
	int hit = 0;
	pthread_mutex_lock(l);
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &c->e[s * WAYS + w];
		if (e->until == 0 || memcmp(e->key, key, 32) != 0)
			continue;
		if (e->until <= now) { /* expired: free the way now */
			json_decref(e->claims);
			memset(e, 0, sizeof(*e));
			break;
		}
		e->used = __atomic_add_fetch(&c->tick, 1, __ATOMIC_RELAXED);
		*claims = e->claims ? json_incref(e->claims) : NULL;
		*err = e->err;
		if (key_fp)
			memcpy(key_fp, e->key_fp, 32);
		hit = 1;
		break;
	}
	pthread_mutex_unlock(l);
	return hit;
}

void eg_tokcache_put(struct eg_verdict_cache *c, const uint8_t key[32], int64_t until, json_t *claims, int err,
		     const uint8_t key_fp[32])
{
	size_t s = set_of(c, key);
	pthread_mutex_t *l = &c->lock[s % STRIPES];
	pthread_mutex_lock(l);
	struct entry *victim = NULL;
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &c->e[s * WAYS + w];
		if (e->until != 0 && memcmp(e->key, key, 32) == 0) {
			victim = e;
			break;
		}
		if (!victim || e->until == 0 || (victim->until != 0 && e->used < victim->used))
			victim = e;
	}
	json_decref(victim->claims);
	memcpy(victim->key, key, 32);
	victim->until = until;
	victim->claims = claims ? json_incref(claims) : NULL;
	victim->err = err;
	if (key_fp)
		memcpy(victim->key_fp, key_fp, 32);
	else
		memset(victim->key_fp, 0, 32);
	victim->used = __atomic_add_fetch(&c->tick, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(l);
}

void eg_tokcache_drop(struct eg_verdict_cache *c, const uint8_t key[32])
{
	size_t s = set_of(c, key);
	pthread_mutex_t *l = &c->lock[s % STRIPES];
	pthread_mutex_lock(l);
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &c->e[s * WAYS + w];
		if (e->until != 0 && memcmp(e->key, key, 32) == 0) {
			json_decref(e->claims);
			memset(e, 0, sizeof(*e));
		}
	}
	pthread_mutex_unlock(l);
}
