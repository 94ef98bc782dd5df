/* certcache.c - a set-associative cache of client-certificate outcomes (see certcache.h).
 * Two tables of the same shape: allowed and refused. */
#include "certcache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "siphash.h"
#include "util.h"

#define WAYS 4
#define STRIPES 64

struct entry {
	uint64_t tag;   /* keyed SipHash of the header: its set, and a filter before the proof */
	size_t len;     /* 0 = empty */
	char *hdr;      /* the header's bytes: the proof of a hit */
	uint64_t gen;   /* the revocation lists' generation it was decided under */
	int64_t from, until;
	struct eg_cert_identity *id; /* allowed; NULL for a refusal */
	const char *why;             /* refused */
	uint64_t used;  /* for choosing a victim */
};

struct table {
	struct entry *e;
	size_t sets; /* power of two */
	pthread_mutex_t lock[STRIPES];
	uint64_t tick;
};

struct eg_certcache {
	uint8_t sipkey[16];
	struct table allowed, refused;
};

struct eg_cert_identity *eg_cert_identity_dup(const struct eg_cert_identity *c)
{
	struct eg_cert_identity *d = xcalloc(1, sizeof(*d));

	*d = *c;
	d->subject = c->subject ? xstrdup(c->subject) : NULL;
	d->issuer = c->issuer ? xstrdup(c->issuer) : NULL;
	d->sans = NULL;
	if (c->n_sans) {
		d->sans = xcalloc(c->n_sans, sizeof(*d->sans));
		for (size_t i = 0; i < c->n_sans; i++)
			d->sans[i] = xstrdup(c->sans[i]);
	}
	return d;
}

static void table_init(struct table *t, size_t entries)
{
	size_t sets = 1;

	while (sets * WAYS < entries)
		sets <<= 1;
	t->sets = sets;
	t->e = xcalloc(sets * WAYS, sizeof(struct entry));
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&t->lock[i], NULL);
}

static void entry_empty(struct entry *e)
{
	eg_cert_identity_free(e->id);
	free(e->hdr);
	memset(e, 0, sizeof(*e));
}

static void table_clear(struct table *t)
{
	for (size_t s = 0; s < t->sets; s++) {
		pthread_mutex_t *l = &t->lock[s % STRIPES];
		pthread_mutex_lock(l);
		for (int w = 0; w < WAYS; w++)
			entry_empty(&t->e[s * WAYS + w]);
		pthread_mutex_unlock(l);
	}
}

static void table_free(struct table *t)
{
	table_clear(t);
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&t->lock[i]);
	free(t->e);
}

struct eg_certcache *eg_certcache_new(size_t allowed, size_t refused)
{
	struct eg_certcache *c = xcalloc(1, sizeof(*c));

	if (random_bytes(c->sipkey, sizeof(c->sipkey)) != 0) {
		/* a known key would let anyone aim headers at one set */
		log_err("certificate cache: no random bytes for its hash key");
		abort();
	}
	table_init(&c->allowed, allowed);
	table_init(&c->refused, refused);
	return c;
}

void eg_certcache_clear(struct eg_certcache *c)
{
	table_clear(&c->allowed);
	table_clear(&c->refused);
}

void eg_certcache_free(struct eg_certcache *c)
{
	if (!c)
		return;
	table_free(&c->allowed);
	table_free(&c->refused);
	free(c);
}

/* The tag and the length only filter; the bytes decide. */
static bool entry_is(const struct entry *e, uint64_t tag, const char *hdr, size_t len)
{
	return e->len != 0 && e->tag == tag && e->len == len && ct_equal_words(e->hdr, hdr, len);
}

static bool entry_current(const struct entry *e, uint64_t gen, int64_t now)
{
	return e->gen == gen && now >= e->from && now < e->until;
}

/* 1 a current entry for hdr (copied out), 0 none; a stale one is emptied. */
static int table_get(struct table *t, uint64_t tag, const char *hdr, size_t len, uint64_t gen, int64_t now,
		     struct eg_cert_identity **out, const char **why)
{
	size_t s = (size_t)(tag & (t->sets - 1));
	pthread_mutex_t *l = &t->lock[s % STRIPES];
	int hit = 0;

	pthread_mutex_lock(l);
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &t->e[s * WAYS + w];
		if (!entry_is(e, tag, hdr, len))
			continue;
		if (!entry_current(e, gen, now)) {
			entry_empty(e); /* decided under other lists, or out of its window: decide again */
			break;
		}
		e->used = __atomic_add_fetch(&t->tick, 1, __ATOMIC_RELAXED);
		if (e->id)
			*out = eg_cert_identity_dup(e->id);
		else
			*why = e->why;
		hit = 1;
		break;
	}
	pthread_mutex_unlock(l);
	return hit;
}

int eg_certcache_get(struct eg_certcache *c, const char *hdr, size_t len, uint64_t gen, int64_t now,
		     struct eg_cert_identity **out, const char **why)
{
	uint64_t tag;

	*out = NULL;
	if (len == 0 || len > EG_CERTCACHE_MAX_HEADER)
		return 0;
	tag = eg_siphash24(c->sipkey, hdr, len);
	if (table_get(&c->allowed, tag, hdr, len, gen, now, out, why))
		return 1;
	if (table_get(&c->refused, tag, hdr, len, gen, now, out, why))
		return -1;
	return 0;
}

void eg_certcache_put(struct eg_certcache *c, const char *hdr, size_t len, uint64_t gen, int64_t from,
		      int64_t until, const struct eg_cert_identity *id, const char *why)
{
	struct table *t = id ? &c->allowed : &c->refused;
	struct table *other = id ? &c->refused : &c->allowed;
	uint64_t tag;

	if (len == 0 || len > EG_CERTCACHE_MAX_HEADER || from >= until)
		return;
	tag = eg_siphash24(c->sipkey, hdr, len);
	/* prepared outside the lock */
	char *copy = xmalloc(len);
	memcpy(copy, hdr, len);
	struct eg_cert_identity *dup = id ? eg_cert_identity_dup(id) : NULL;

	/* the header's outcome changed table (a certificate revoked, or un-revoked): the old
	 * entry is stale by its generation already; dropping it frees its way now */
	size_t so = (size_t)(tag & (other->sets - 1));
	pthread_mutex_lock(&other->lock[so % STRIPES]);
	for (int w = 0; w < WAYS; w++)
		if (entry_is(&other->e[so * WAYS + w], tag, hdr, len))
			entry_empty(&other->e[so * WAYS + w]);
	pthread_mutex_unlock(&other->lock[so % STRIPES]);

	size_t s = (size_t)(tag & (t->sets - 1));
	pthread_mutex_t *l = &t->lock[s % STRIPES];
	pthread_mutex_lock(l);
	struct entry *victim = NULL;
	for (int w = 0; w < WAYS; w++) {
		struct entry *e = &t->e[s * WAYS + w];
		if (entry_is(e, tag, hdr, len)) {
			victim = e;
			break;
		}
		/* an empty or stale way, else the least recently used */
		bool free_e = e->len == 0 || e->gen != gen, free_v = victim && (victim->len == 0 || victim->gen != gen);
		if (!victim || (free_e && !free_v) || (free_e == free_v && e->used < victim->used))
			victim = e;
	}
	entry_empty(victim);
	*victim = (struct entry){
		.tag = tag, .len = len, .hdr = copy, .gen = gen, .from = from, .until = until,
		.id = dup, .why = id ? NULL : why,
		.used = __atomic_add_fetch(&t->tick, 1, __ATOMIC_RELAXED),
	};
	pthread_mutex_unlock(l);
}
