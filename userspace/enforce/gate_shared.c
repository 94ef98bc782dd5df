/* gate_shared.c - which deny/allow entries of this node's maps the shared store holds,
 * and the resync of those entries with the store.
 *
 * The maps also hold entries the store never had: the config's static lists, bulk
 * loads (edgegatectl deny load), an entry whose store write failed. A resync must not
 * lift those. So this node remembers the keys ("deny <prefix>", "allow <prefix>") it
 * knows to be in the store: written by itself, applied from another node's event, or
 * read from the store (at start, at a resync). When a resync finds such a key gone from
 * the store, another node deleted it while this one missed the event: the entry is
 * removed here too. The set lives in memory: after a restart it is rebuilt from the
 * store, so a deletion missed while this node was down is not seen (docs/sessions.md).
 * Every function here is called with eg_gate_wlock held. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "gate.h"
#include "gate_priv.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define SET_BUCKETS 1024

struct key {
	struct key *next;
	uint64_t gen; /* the set's counter when marked (a resync keeps what is newer than it) */
	char text[];
};

struct eg_gate_keyset {
	struct key *b[SET_BUCKETS];
	size_t n;
	uint64_t gen;
};

static unsigned bucket(const char *k)
{
	uint32_t h = 2166136261u;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 16777619u;
	return h % SET_BUCKETS;
}

static struct key **find(struct eg_gate_keyset *s, const char *k)
{
	struct key **pp = &s->b[bucket(k)];
	while (*pp && strcmp((*pp)->text, k) != 0)
		pp = &(*pp)->next;
	return pp;
}

static bool set_has(struct eg_gate_keyset *s, const char *k)
{
	return s && *find(s, k) != NULL;
}

static struct key *set_add(struct eg_gate_keyset *s, const char *text)
{
	struct key **pp = find(s, text);
	if (!*pp) {
		size_t n = strlen(text) + 1;
		*pp = xcalloc(1, sizeof(**pp) + n);
		memcpy((*pp)->text, text, n);
		s->n++;
	}
	(*pp)->gen = ++s->gen;
	return *pp;
}

static void set_free(struct eg_gate_keyset *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < SET_BUCKETS; i++)
		for (struct key *k = s->b[i], *n; k; k = n) {
			n = k->next;
			free(k);
		}
	free(s);
}

void eg_gate_shared_mark(struct eg_gate *g, const char *key, bool in_store)
{
	if (!g || !key)
		return;
	if (!g->shared)
		g->shared = xcalloc(1, sizeof(*g->shared));
	struct key **pp = find(g->shared, key);
	if (in_store) {
		set_add(g->shared, key);
	} else if (*pp) {
		struct key *k = *pp;
		*pp = k->next;
		free(k);
		g->shared->n--;
	}
}

void eg_gate_shared_free(struct eg_gate *g)
{
	set_free(g->shared);
	g->shared = NULL;
}

/* --- resync ------------------------------------------------------------------------------- */

static void *grow(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q)
		abort(); /* as xcalloc does */
	return q;
}

struct rec {
	char *key, *val;
	size_t len;
	int64_t exp;
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

static int collect(const char *key, const void *val, size_t len, int64_t exp, void *arg)
{
	struct recs *r = arg;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->v = grow(r->v, r->cap * sizeof(*r->v));
	}
	char *v = xcalloc(1, len + 1);
	memcpy(v, val, len);
	r->v[r->n++] = (struct rec){ xstrdup(key), v, len, exp };
	return 0;
}

struct lift {
	struct eg_gate *g;
	struct eg_gate_keyset *now; /* the store's keys */
	uint64_t since;             /* keys marked after the store was read are left alone */
	bool allow;
	struct eg_prefix *gone;
	size_t n, cap;
};

/* A map entry the store had and has no more: to be removed (after the listing). */
static int consider(const struct eg_gate_entry *e, void *arg)
{
	struct lift *l = arg;
	char key[96];

	/* static: this node's config; bans: abuse.c lifts them (eg_abuse_sync) */
	if (e->reason == EG_RULE_STATIC || e->reason == EG_RULE_BAN)
		return 0;
	eg_gate_store_key(l->allow, e->addr, e->plen, key, sizeof(key));
	struct key *k = l->g->shared ? *find(l->g->shared, key) : NULL;
	if (!k || k->gen > l->since || set_has(l->now, key))
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->gone = grow(l->gone, l->cap * sizeof(*l->gone));
	}
	memcpy(l->gone[l->n].addr, e->addr, 16);
	l->gone[l->n++].plen = e->plen;
	return 0;
}

/* The record as the event of an addition carries it: the stored JSON plus its expiry. */
static char *as_event(const struct rec *r)
{
	json_t *o = json_loadb(r->val, r->len, JSON_REJECT_DUPLICATES, NULL);
	char *ev;

	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "exp", json_integer(r->exp));
	ev = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return ev;
}

static void recs_free(struct recs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].key);
		free(r->v[i].val);
	}
	free(r->v);
}

long eg_gate_resync(struct eg_gate *g, long *lifted)
{
	struct recs r = { 0 };
	long applied = 0;

	*lifted = 0;
	if (!g || !g->store)
		return 0;
	eg_gate_wlock(g);
	uint64_t since = g->shared ? g->shared->gen : 0;
	eg_gate_wunlock(g);
	/* Read first: a store that cannot be read lifts nothing. */
	if (eg_store_foreach(g->store, EG_NS_DENY, collect, &r) != 0) {
		recs_free(&r);
		return -1;
	}
	struct eg_gate_keyset *now = xcalloc(1, sizeof(*now));
	for (size_t i = 0; i < r.n; i++) {
		set_add(now, r.v[i].key);
		json_t *j = json_loadb(r.v[i].val, r.v[i].len, JSON_REJECT_DUPLICATES, NULL);
		json_int_t reason = json_integer_value(json_object_get(j, "reason"));
		json_decref(j);
		if (reason == EG_RULE_BAN)
			continue; /* abuse.c applies ban records */
		/* an addition this node missed (or changed since): as if its event came now */
		char *ev = as_event(&r.v[i]);
		if (ev && eg_gate_apply_remote(g, true, r.v[i].key, ev, strlen(ev)) == 1)
			applied++;
		free(ev);
	}
	recs_free(&r);
	eg_gate_wlock(g);
	for (int allow = 0; allow < 2; allow++) {
		struct lift l = { .g = g, .now = now, .since = since, .allow = allow };
		if ((allow ? eg_gate_allow_list : eg_gate_deny_list)(g, consider, &l) >= 0)
			for (size_t i = 0; i < l.n; i++)
				if (eg_rules_del(g, allow, l.gone[i].addr, l.gone[i].plen) == 0)
					(*lifted)++;
		free(l.gone);
	}
	/* What this node now knows to be in the store: what the store held, and what was
	 * marked since it was read (a local add racing this resync). */
	for (unsigned b = 0; g->shared && b < SET_BUCKETS; b++)
		for (struct key *k = g->shared->b[b]; k; k = k->next)
			if (k->gen > since)
				set_add(now, k->text);
	now->gen = g->shared && g->shared->gen > now->gen ? g->shared->gen : now->gen;
	set_free(g->shared);
	g->shared = now;
	eg_gate_wunlock(g);
	return applied;
}
