/* tokcache.c - a set-associative cache of bearer verdicts (see tokcache.h).
 *
 * Why not SHA-256 of the token as the key, as before: it was the largest single cost of a
 * cached verdict (about 1.5 µs of CPU for a 700-byte RS256 token here, 23,000 instructions
 * in callgrind). SipHash of the token plus a word-wise compare of the stored copy is a
 * fraction of that and still proves the match. SipHash-1-3, not 2-4: still keyed (a flood
 * aimed at one set needs the key; see siphash.h), and half the rounds over the token. */
#include "tokcache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"
#include "json_arena.h"
#include "log.h"
#include "siphash.h"
#include "util.h"

#define WAYS 4
#define STRIPES 64

struct entry {
	uint64_t tag;  /* keyed SipHash of the token: its set, and a filter before the proof */
	size_t len;    /* the token's length */
	int64_t until; /* 0 = empty */
	json_t *claims;
	int err;
	char *tok;          /* positive: a copy of the token (the proof of a hit) */
	uint8_t digest[32]; /* negative: SHA-256 of the token (the proof of a hit) */
	uint8_t key_fp[32]; /* the signing key of a positive verdict */
	uint64_t used;      /* for choosing a victim */
};

struct eg_verdict_cache {
	struct entry *e;
	size_t sets; /* power of two */
	uint8_t sipkey[16];
	pthread_mutex_t lock[STRIPES];
	uint64_t tick;
};

/* The token being looked up: its tag, and its digest once a negative entry needed it. */
struct probe {
	const char *tok;
	size_t len;
	uint64_t tag;
	bool have_digest;
	uint8_t digest[32];
};

struct eg_verdict_cache *eg_tokcache_new(size_t entries)
{
	struct eg_verdict_cache *c = xcalloc(1, sizeof(*c));
	size_t sets = 1;
	while (sets * WAYS < entries)
		sets <<= 1;
	c->sets = sets;
	c->e = xcalloc(sets * WAYS, sizeof(struct entry));
	if (random_bytes(c->sipkey, sizeof(c->sipkey)) != 0) {
		/* a known key would let anyone aim tokens at one set and evict others' verdicts */
		log_err("token cache: no random bytes for its hash key");
		abort();
	}
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&c->lock[i], NULL);
	return c;
}

static void entry_empty(struct entry *e)
{
	json_decref(e->claims);
	free(e->tok);
	memset(e, 0, sizeof(*e));
}

void eg_tokcache_clear(struct eg_verdict_cache *c)
{
	for (size_t s = 0; s < c->sets; s++) {
		pthread_mutex_t *l = &c->lock[s % STRIPES];
		pthread_mutex_lock(l);
		for (int w = 0; w < WAYS; w++)
			entry_empty(&c->e[s * WAYS + w]);
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

/* Whether e is the verdict on the probed token. The tag and length only filter (both
 * follow from the token; the tag is keyed); the bytes or the digest decide. */
static bool entry_is(const struct entry *e, struct probe *p)
{
	if (e->until == 0 || e->tag != p->tag || e->len != p->len)
		return false;
	if (e->tok)
		return ct_equal_words(e->tok, p->tok, p->len);
	if (!p->have_digest) {
		eg_sha256(p->tok, p->len, p->digest);
		p->have_digest = true;
	}
	return ct_equal(e->digest, p->digest, 32);
}

/* The tag of a JWS is a keyed SipHash of its last TAG_TAIL bytes when they all lie in its
 * last segment, the signature, not of all ~700: a signature is unique to the signed
 * content and unpredictable (24 of its bytes here), and hashing the rest was ~1,700 of a
 * cached verdict's ~18,000 instructions. Anything else (an opaque token for
 * introspection, whose format may end in a fixed suffix; a JWE, whose last segment is a
 * short tag) is hashed whole. The tag only picks the set and filters; entry_is proves a
 * hit on every byte. Tokens that share a tail (junk chosen by a client) share one set
 * that the key keeps them from choosing, and only evict each other there: no more than as
 * many distinct tokens could evict when spread over every set. */
#define TAG_TAIL 32

uint64_t eg_tokcache_tag(const struct eg_verdict_cache *c, const char *tok, size_t len)
{
	bool signature_tail = len > TAG_TAIL && memchr(tok + (len - TAG_TAIL), '.', TAG_TAIL) == NULL &&
			      memchr(tok, '.', len - TAG_TAIL) != NULL;
	if (signature_tail)
		return eg_siphash13(c->sipkey, tok + (len - TAG_TAIL), TAG_TAIL); /* keyed: see siphash.h */
	return eg_siphash13(c->sipkey, tok, len);
}

static size_t probe_init(const struct eg_verdict_cache *c, struct probe *p, const char *tok, size_t len, uint64_t tag)
{
	*p = (struct probe){ .tok = tok, .len = len, .tag = tag };
	return (size_t)(p->tag & (c->sets - 1));
}

int eg_tokcache_get(struct eg_verdict_cache *c, const char *tok, size_t len, int64_t now, json_t **claims, int *err,
		    uint8_t key_fp[32])
{
	return eg_tokcache_get_at(c, tok, len, eg_tokcache_tag(c, tok, len), now, claims, err, key_fp);
}

int eg_tokcache_get_at(struct eg_verdict_cache *c, const char *tok, size_t len, uint64_t tag, int64_t now,
		       json_t **claims, int *err, uint8_t key_fp[32])
{
	struct probe p;
	size_t s = probe_init(c, &p, tok, len, tag);
	pthread_mutex_t *l = &c->lock[s % STRIPES];
	int hit = 0;
	pthread_mutex_lock(l);
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &c->e[s * WAYS + w];
		if (!entry_is(e, &p))
			continue;
		if (e->until <= now) { /* expired: free the way now */
			entry_empty(e);
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

void eg_tokcache_put(struct eg_verdict_cache *c, const char *tok, size_t len, int64_t until, json_t *claims, int err,
		     const uint8_t key_fp[32])
{
	eg_tokcache_put_at(c, tok, len, eg_tokcache_tag(c, tok, len), until, claims, err, key_fp);
}

void eg_tokcache_put_at(struct eg_verdict_cache *c, const char *tok, size_t len, uint64_t tag, int64_t until,
			json_t *claims, int err, const uint8_t key_fp[32])
{
	struct probe p;
	size_t s = probe_init(c, &p, tok, len, tag);
	/* prepared outside the lock: the copy, or the digest */
	char *copy = NULL;
	if (claims) {
		copy = xmalloc(len ? len : 1);
		memcpy(copy, tok, len);
	} else if (!p.have_digest) {
		eg_sha256(tok, len, p.digest);
		p.have_digest = true;
	}
	pthread_mutex_t *l = &c->lock[s % STRIPES];
	pthread_mutex_lock(l);
	struct entry *victim = NULL;
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &c->e[s * WAYS + w];
		if (entry_is(e, &p)) {
			victim = e;
			break;
		}
		if (!victim || e->until == 0 || (victim->until != 0 && e->used < victim->used))
			victim = e;
	}
	/* the evicted verdict's claims (a few dozen allocations) are freed after the unlock; by
	 * then cold, so their loads start now (json_arena.h) */
	json_t *old_claims = victim->claims;
	eg_json_arena_prefetch(old_claims);
	char *old_tok = victim->tok;
	memset(victim, 0, sizeof(*victim));
	victim->tag = p.tag;
	victim->len = len;
	victim->until = until;
	victim->claims = claims ? json_incref(claims) : NULL;
	victim->err = err;
	victim->tok = copy;
	if (!copy)
		memcpy(victim->digest, p.digest, 32);
	if (key_fp)
		memcpy(victim->key_fp, key_fp, 32);
	victim->used = __atomic_add_fetch(&c->tick, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(l);
	json_decref(old_claims);
	free(old_tok);
}

void eg_tokcache_drop(struct eg_verdict_cache *c, const char *tok, size_t len)
{
	struct probe p;
	size_t s = probe_init(c, &p, tok, len, eg_tokcache_tag(c, tok, len));
	pthread_mutex_t *l = &c->lock[s % STRIPES];
	pthread_mutex_lock(l);
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &c->e[s * WAYS + w];
		if (entry_is(e, &p))
			entry_empty(e);
	}
	pthread_mutex_unlock(l);
}
