/* gate_rules.c - the deny/allow tables of the XDP gate (layouts: abi.h; design:
 * docs/gate.md "Kernel maps").
 *
 * A rule lives in one hash per family and table (every prefix length in the same
 * hash, the length in the key). XDP finds the longest live rule by looking up only
 * the lengths in use (eg_tables_v2.lens) and, for IPv4, only the length groups the
 * /24's (IPv6: the /48's) index byte names. Writers keep four things consistent, in
 * this order, so XDP never misses a rule: the hash entry, the index bit, the rule's
 * bucket slot (deny rules and IPv4 allow rules; a rule that exists changes there first),
 * the length bit. Deletes: the hash entry, then its slot (an allow rule: the slot first,
 * so a crash fails closed), then the counts; index bits are a "may" (left
 * set; GC rebuilds them). All of it happens under eg_gate_wlock(): a pthread
 * mutex plus flock() on the pin root, which the daemon, edgegatectl with the
 * daemon down and GC all take, so counts and bits cannot be lost to a race. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include <bpf/bpf.h>

#include "config.h"
#include "gate.h"
#include "gate_priv.h"
#include "log.h"
#include "priv.h"
#include "store.h"

#define IDX4_SLOTS (1u << 24)

void eg_gate_wlock(struct eg_gate *g)
{
	pthread_mutex_lock(&g->mu);
	if (g->lockfd >= 0)
		while (flock(g->lockfd, LOCK_EX) && errno == EINTR)
			;
}

void eg_gate_wunlock(struct eg_gate *g)
{
	if (g->lockfd >= 0)
		flock(g->lockfd, LOCK_UN);
	pthread_mutex_unlock(&g->mu);
}

/* --- keys ------------------------------------------------------------------------- */

struct rkey {
	bool v6;
	bool s6;       /* an IPv6 deny rule of /64 or shorter: the short-key hash */
	unsigned tbl;  /* enum eg_table_id */
	unsigned len;  /* in the family's own space: 0..32 or 0..128 */
	uint8_t a[16]; /* the address, host bits cleared */
	union {
		struct eg_key4 k4;
		struct eg_key6 k6;
		struct eg_key6s k6s;
	};
};

static void rkey_make(bool allow, const uint8_t addr[16], unsigned plen, struct rkey *k)
{
	uint8_t a[16];

	memcpy(a, addr, 16);
	eg_gate_mask_addr(a, plen);
	memset(k, 0, sizeof(*k));
	k->v6 = !(eg_gate_is_v4mapped(a) && plen >= 96);
	k->tbl = (allow ? EG_TBL_ALLOW4 : EG_TBL_DENY4) + (k->v6 ? 2 : 0);
	memcpy(k->a, a, 16);
	if (k->v6 && !allow && plen <= EG_DENY6S_MAXLEN) {
		k->s6 = true;
		k->len = plen;
		k->k6s.plen = plen;
		memcpy(k->k6s.a, a, 8);
	} else if (k->v6) {
		k->len = plen;
		k->k6.plen = plen;
		memcpy(k->k6.a, a, 16);
	} else {
		k->len = plen - 96;
		k->k4.plen = k->len;
		memcpy(&k->k4.addr, a + 12, 4);
	}
}

static const void *rkey_ptr(const struct rkey *k)
{
	return k->s6 ? (const void *)&k->k6s : k->v6 ? (const void *)&k->k6 : (const void *)&k->k4;
}

static int rkey_fd(struct eg_gate *g, const struct rkey *k)
{
	return k->s6 ? g->fd[M_DENY6S] : g->fd[M_DENY4 + k->tbl];
}

static void note_key(bool allow, const uint8_t addr[16], unsigned plen, struct eg_note_key *nk)
{
	memset(nk, 0, sizeof(*nk));
	memcpy(nk->a, addr, 16);
	eg_gate_mask_addr(nk->a, plen);
	nk->plen = (uint8_t)plen;
	nk->allow = allow;
}

/* --- tables (lengths in use) ------------------------------------------------------- */

static int tbl_read(struct eg_gate *g, unsigned tbl, struct eg_table *t)
{
	__u32 k = tbl;

	return bpf_map_lookup_elem(g->fd[M_TABLES], &k, t);
}

static int tbl_write(struct eg_gate *g, unsigned tbl, const struct eg_table *t)
{
	__u32 k = tbl;

	return bpf_map_update_elem(g->fd[M_TABLES], &k, t, BPF_ANY);
}

static void tbl_lens(struct eg_table *t)
{
	memset(t->lens, 0, sizeof(t->lens));
	for (unsigned l = 0; l <= 128; l++)
		if (t->count[l])
			t->lens[l / 64] |= 1ull << (l % 64);
}

/* --- the IPv4 index ------------------------------------------------------------------ */

/* Sets the rule's group bit in every /24 the prefix touches. */
static int idx4_set(struct eg_gate *g, bool allow, uint32_t addr_be, unsigned len)
{
	int fd = g->fd[allow ? M_ALLOW4_IDX : M_DENY4_IDX];
	uint32_t s = ntohl(addr_be) >> 8, end = s + (len >= 24 ? 1 : 1u << (24 - len));
	unsigned grp = eg_group4(len);

	while (s < end) {
		__u32 w = s >> 3;
		__u64 v = 0, old;

		if (bpf_map_lookup_elem(fd, &w, &v))
			return -1;
		old = v;
		do {
			v |= 1ull << ((s & 7) * 8 + grp);
			s++;
		} while ((s & 7) && s < end);
		if (v != old && bpf_map_update_elem(fd, &w, &v, BPF_ANY))
			return -1;
	}
	return 0;
}

static uint64_t hi64(const uint8_t *a /* 8 bytes or more */)
{
	uint64_t h = 0;

	for (int i = 0; i < 8; i++)
		h = h << 8 | a[i];
	return h;
}

/* Sets the rule's length group bit in its /48's byte of the IPv6 deny or allow index. */
static int idx6_set(struct eg_gate *g, bool allow, const uint8_t a[16], unsigned len)
{
	int fd = g->fd[allow ? M_ALLOW6_IDX : M_DENY6_IDX];
	__u32 b = eg_idx6_slot(hi64(a)), w = b >> 3;
	__u64 v, bit = 1ull << ((b & 7) * 8 + eg_group6(len));

	if (bpf_map_lookup_elem(fd, &w, &v))
		return -1;
	if (v & bit)
		return 0;
	v |= bit;
	return bpf_map_update_elem(fd, &w, &v, BPF_ANY);
}

/* Writes an array of words where it differs from what the map holds. */
static int array_sync(int fd, const __u64 *want, __u32 nwords)
{
	enum { CHUNK = 65536 };
	__u32 *ks = malloc(CHUNK * sizeof(*ks));
	__u64 *vs = malloc(CHUNK * sizeof(*vs));
	int rc = -1;

	if (!ks || !vs)
		goto out;
	for (__u32 w0 = 0; w0 < nwords; w0 += CHUNK) {
		__u32 cnt = CHUNK < nwords - w0 ? CHUNK : nwords - w0, out_b, in_b = w0 - 1;
		__u32 asked = cnt;

		/* an array's batch cursor is the last index returned */
		if (bpf_map_lookup_batch(fd, w0 ? &in_b : NULL, &out_b, ks, vs, &cnt, NULL) &&
		    errno != ENOENT)
			goto out;
		if (cnt != asked) {
			errno = EIO;
			goto out;
		}
		for (__u32 i = 0; i < cnt; i++)
			if (want[ks[i]] != vs[i] && bpf_map_update_elem(fd, &ks[i], &want[ks[i]], BPF_ANY))
				goto out;
	}
	rc = 0;
out:
	free(ks);
	free(vs);
	return rc;
}

static int idx6_rebuild(struct eg_gate *g, bool allow, const struct eg_key6 *keys, size_t n)
{
	uint8_t *want = calloc(EG_IDX6_WORDS, sizeof(__u64));
	int rc;

	if (!want)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (keys[i].plen >= 48)
			want[eg_idx6_slot(hi64(keys[i].a))] |= (uint8_t)(1u << eg_group6(keys[i].plen));
	/* byte s of the array is slot s on a little-endian host, as XDP reads it */
	rc = array_sync(g->fd[allow ? M_ALLOW6_IDX : M_DENY6_IDX], (const __u64 *)want, EG_IDX6_WORDS);
	free(want);
	return rc;
}

/* Rebuilds an IPv4 index from the rules the table holds: bits of deleted or
 * expired rules go, bits a crashed writer never set come. */
static int idx4_rebuild(struct eg_gate *g, bool allow, const struct eg_key4 *keys, size_t n)
{
	uint8_t *want = calloc(IDX4_SLOTS, 1);
	int rc;

	if (!want)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned len = keys[i].plen, grp = eg_group4(len);
		uint32_t s0 = ntohl(keys[i].addr) >> 8, cnt = len >= 24 ? 1 : 1u << (24 - len);

		for (uint32_t j = 0; j < cnt; j++)
			want[s0 + j] |= (uint8_t)(1u << grp);
	}
	/* byte s of the array is slot s on a little-endian host, as XDP reads it */
	rc = array_sync(g->fd[allow ? M_ALLOW4_IDX : M_DENY4_IDX], (const __u64 *)want, EG_IDX4_WORDS);
	free(want);
	return rc;
}

/* --- walking a table ------------------------------------------------------------------- */

struct rent {
	union {
		struct eg_key4 k4;
		struct eg_key6 k6;
	};
	struct eg_rule r;
};

/* --- the deny rules' buckets (abi.h eg_slots4, eg_slots6) ---------------------------------- */

/* Stores a reader (XDP) must see in this order: release stores, on x86 plain moves
 * that neither the compiler nor the CPU reorders. */
#define STORE64(p, v) __atomic_store_n((p), (__u64)(v), __ATOMIC_RELEASE)
#define STORE32(p, v) __atomic_store_n((p), (__u32)(v), __ATOMIC_RELEASE)
#define STORE16(p, v) __atomic_store_n((p), (__u16)(v), __ATOMIC_RELEASE)

/* A deny rule into its bucket: in place when a slot holds it (expiry, then key), else
 * into an empty slot (expiry, then key), else the bucket is marked `more` (the rule is
 * in the hash only, which XDP then asks). eg_rules_put orders it with the hash entry. */
static void slot4_put(struct eg_slots4 *b, __u32 addr, unsigned len, const struct eg_rule *r)
{
	__u64 key = eg_slot4_key(addr, len, r->reason);
	int empty = -1;

	for (int i = 0; i < 3; i++) {
		__u64 cur = b->s[i].key;

		if (cur && cur >> 8 == key >> 8) {
			STORE64(&b->s[i].expires_ns, r->expires_ns);
			STORE64(&b->s[i].key, key);
			return;
		}
		if (!cur && empty < 0)
			empty = i;
	}
	if (empty < 0) {
		STORE32(&b->more, 1);
		return;
	}
	STORE64(&b->s[empty].expires_ns, r->expires_ns);
	STORE64(&b->s[empty].key, key);
}

static void slot6_put(struct eg_slots6 *b, __u64 hi, unsigned len, const struct eg_rule *r)
{
	__u32 tag = eg_slot6_tag(len, r->reason);
	int empty = -1;

	for (int i = 0; i < 2; i++) {
		__u32 cur = b->s[i].tag;

		if (cur && cur >> 8 == tag >> 8 && b->s[i].hi == hi) {
			STORE64(&b->s[i].expires_ns, r->expires_ns);
			STORE32(&b->s[i].tag, tag);
			return;
		}
		if (!cur && empty < 0)
			empty = i;
	}
	if (empty < 0) {
		STORE32(&b->more, 1);
		return;
	}
	/* the address before the tag: XDP reads the tag first */
	STORE64(&b->s[empty].hi, hi);
	STORE64(&b->s[empty].expires_ns, r->expires_ns);
	STORE32(&b->s[empty].tag, tag);
}

static uint64_t lo64(const uint8_t *a /* 16 bytes */)
{
	return hi64(a + 8);
}

/* As slot6_put, for a long IPv6 rule (abi.h eg_slots6l): the tag last. */
static void slot6l_put(struct eg_slots6l *b, __u64 hi, __u64 lo, unsigned len, const struct eg_rule *r)
{
	__u16 tag = eg_slot6l_tag(len, r->reason);
	int empty = -1;

	for (int i = 0; i < 2; i++) {
		__u16 cur = b->tag[i];

		if (cur && cur >> 8 == tag >> 8 && b->s[i].hi == hi && b->s[i].lo == lo) {
			STORE64(&b->s[i].expires_ns, r->expires_ns);
			STORE16(&b->tag[i], tag);
			return;
		}
		if (!cur && empty < 0)
			empty = i;
	}
	if (empty < 0) {
		STORE32(&b->more, 1);
		return;
	}
	STORE64(&b->s[empty].hi, hi);
	STORE64(&b->s[empty].lo, lo);
	STORE64(&b->s[empty].expires_ns, r->expires_ns);
	STORE16(&b->tag[empty], tag);
}

static bool rkey_slotted(const struct rkey *k)
{
	return k->tbl <= EG_TBL_ALLOW6; /* every table is direct-mapped */
}

static bool slots_mapped(const struct eg_gate *g)
{
	return g->slots4 && g->slots6 && g->slots6l && g->aslots4 && g->aslots6 && g->aslots6l;
}

/* The IPv6 buckets of a rule in the deny or the allow arrays: short (0..64), long (65..128). */
static struct eg_slots6 *bucket6_of(struct eg_gate *g, bool allow, __u64 hi, unsigned len)
{
	return allow ? &g->aslots6[eg_slots6_of(hi, len, EG_ALLOW6_SLOTS_LOG2)]
		     : &g->slots6[eg_slots6_of(hi, len, g->slots6_log2)];
}

static struct eg_slots6l *bucket6l_of(struct eg_gate *g, bool allow, __u64 hi, __u64 lo, unsigned len)
{
	return allow ? &g->aslots6l[eg_slots6l_of(hi, lo, len, EG_ALLOW6_SLOTS_LOG2)]
		     : &g->slots6l[eg_deny6l_of(hi, lo, len, g->slots6l_log2)];
}

/* The IPv4 bucket of (addr, len) in the deny or the allow array. */
static struct eg_slots4 *bucket4_of(struct eg_gate *g, bool allow, __u32 addr, unsigned len)
{
	return allow ? &g->aslots4[eg_slots4_of(addr, len, EG_ALLOW4_SLOTS_LOG2)]
		     : &g->slots4[eg_slots4_of(addr, len, g->slots4_log2)];
}

static int slot_put(struct eg_gate *g, const struct rkey *k, const struct eg_rule *r)
{
	if (!slots_mapped(g)) {
		errno = ENODEV;
		return -1;
	}
	if (!k->v6) {
		__u32 a = ntohl(k->k4.addr);

		slot4_put(bucket4_of(g, k->tbl == EG_TBL_ALLOW4, a, k->len), a, k->len, r);
	} else if (k->len > EG_DENY6S_MAXLEN) {
		__u64 hi = hi64(k->a), lo = lo64(k->a);

		slot6l_put(bucket6l_of(g, k->tbl == EG_TBL_ALLOW6, hi, lo, k->len), hi, lo, k->len, r);
	} else {
		__u64 hi = hi64(k->a);

		slot6_put(bucket6_of(g, k->tbl == EG_TBL_ALLOW6, hi, k->len), hi, k->len, r);
	}
	return 0;
}

/* A deleted rule leaves its slot (the tag cleared; `more` stays until GC). */
static void slot_del(struct eg_gate *g, const struct rkey *k)
{
	if (!slots_mapped(g))
		return;
	if (k->v6 && k->len > EG_DENY6S_MAXLEN) {
		__u64 hi = hi64(k->a), lo = lo64(k->a);
		struct eg_slots6l *b = bucket6l_of(g, k->tbl == EG_TBL_ALLOW6, hi, lo, k->len);

		for (int i = 0; i < 2; i++)
			if (b->tag[i] >> 8 == (k->len & 0xff) && b->tag[i] && b->s[i].hi == hi && b->s[i].lo == lo)
				STORE16(&b->tag[i], 0);
	} else if (!k->v6) {
		__u32 a = ntohl(k->k4.addr);
		struct eg_slots4 *b = bucket4_of(g, k->tbl == EG_TBL_ALLOW4, a, k->len);
		__u64 key = eg_slot4_key(a, k->len, 0);

		for (int i = 0; i < 3; i++)
			if (b->s[i].key && b->s[i].key >> 8 == key >> 8)
				STORE64(&b->s[i].key, 0);
	} else {
		__u64 hi = hi64(k->a);
		struct eg_slots6 *b = bucket6_of(g, k->tbl == EG_TBL_ALLOW6, hi, k->len);
		__u32 tag = eg_slot6_tag(k->len, 0);

		for (int i = 0; i < 2; i++)
			if (b->s[i].tag && b->s[i].tag >> 8 == tag >> 8 && b->s[i].hi == hi)
				STORE32(&b->s[i].tag, 0);
	}
}

/* The buckets from the live rules (GC): a rule already in a slot keeps it, the others
 * fill free slots, the rest of a bucket is `more`; slots of rules that are gone are
 * emptied. A changing bucket gets `more` first, so XDP asks the hash meanwhile, and a
 * slot changes rule only through empty. */
static int slots4_sync(struct eg_gate *g, bool allow, const struct rent *v, const bool *keep, size_t n)
{
	struct eg_slots4 *arr = allow ? g->aslots4 : g->slots4;
	__u32 log2 = allow ? EG_ALLOW4_SLOTS_LOG2 : g->slots4_log2;
	struct eg_slots4 *want = calloc((size_t)1 << log2, sizeof(*want));
	uint8_t *placed = calloc(n + 1, 1);

	if (!want || !placed || !arr) {
		free(want);
		free(placed);
		errno = want && placed ? ENODEV : ENOMEM;
		return -1;
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			__u32 a = ntohl(v[i].k4.addr), bi = eg_slots4_of(a, v[i].k4.plen, log2);
			__u64 key = eg_slot4_key(a, v[i].k4.plen, v[i].r.reason);
			struct eg_slots4 *w = &want[bi];

			if (!keep[i] || placed[i])
				continue;
			for (int j = 0; j < 3 && !placed[i]; j++)
				if (pass ? !w->s[j].key : arr[bi].s[j].key >> 8 == key >> 8) {
					w->s[j].key = key;
					w->s[j].expires_ns = v[i].r.expires_ns;
					placed[i] = 1;
				}
			if (pass && !placed[i])
				w->more = 1;
		}
	for (__u32 bi = 0; bi < 1u << log2; bi++) {
		struct eg_slots4 *b = &arr[bi], *w = &want[bi];

		if (!memcmp(b, w, sizeof(*b)))
			continue;
		STORE32(&b->more, 1);
		for (int j = 0; j < 3; j++) {
			/* another rule (or none): through empty; the same rule stays */
			if (b->s[j].key && b->s[j].key >> 8 != w->s[j].key >> 8)
				STORE64(&b->s[j].key, 0);
			if (b->s[j].expires_ns != w->s[j].expires_ns)
				STORE64(&b->s[j].expires_ns, w->s[j].expires_ns);
			if (b->s[j].key != w->s[j].key)
				STORE64(&b->s[j].key, w->s[j].key);
		}
		STORE32(&b->more, w->more);
	}
	free(want);
	free(placed);
	return 0;
}

static int slots6_sync(struct eg_gate *g, bool allow, const struct rent *v, const bool *keep, size_t n)
{
	struct eg_slots6 *arr = allow ? g->aslots6 : g->slots6;
	__u32 log2 = allow ? EG_ALLOW6_SLOTS_LOG2 : g->slots6_log2;
	struct eg_slots6 *want = calloc((size_t)1 << log2, sizeof(*want));
	uint8_t *placed = calloc(n + 1, 1);

	if (!want || !placed || !arr) {
		free(want);
		free(placed);
		errno = want && placed ? ENODEV : ENOMEM;
		return -1;
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			unsigned len = v[i].k6.plen;
			__u64 hi = hi64(v[i].k6.a);
			__u32 bi = eg_slots6_of(hi, len, log2), tag = eg_slot6_tag(len, v[i].r.reason);
			struct eg_slots6 *w = &want[bi], *b = &arr[bi];

			if (!keep[i] || placed[i] || len > EG_DENY6S_MAXLEN)
				continue;
			for (int j = 0; j < 2 && !placed[i]; j++)
				if (pass ? !w->s[j].tag
					 : b->s[j].tag && b->s[j].tag >> 8 == tag >> 8 && b->s[j].hi == hi) {
					w->s[j].hi = hi;
					w->s[j].tag = tag;
					w->s[j].expires_ns = v[i].r.expires_ns;
					placed[i] = 1;
				}
			if (pass && !placed[i])
				w->more = 1;
		}
	for (__u32 bi = 0; bi < 1u << log2; bi++) {
		struct eg_slots6 *b = &arr[bi], *w = &want[bi];

		if (!memcmp(b, w, sizeof(*b)))
			continue;
		STORE32(&b->more, 1);
		for (int j = 0; j < 2; j++) {
			bool same = b->s[j].tag >> 8 == w->s[j].tag >> 8 && b->s[j].hi == w->s[j].hi;

			if (!same && b->s[j].tag)
				STORE32(&b->s[j].tag, 0);
			if (b->s[j].hi != w->s[j].hi)
				STORE64(&b->s[j].hi, w->s[j].hi);
			if (b->s[j].expires_ns != w->s[j].expires_ns)
				STORE64(&b->s[j].expires_ns, w->s[j].expires_ns);
			if (b->s[j].tag != w->s[j].tag)
				STORE32(&b->s[j].tag, w->s[j].tag);
		}
		STORE32(&b->more, w->more);
	}
	free(want);
	free(placed);
	return 0;
}

/* As slots6_sync, for the long rules (65..128): eg_deny6_slots_v2 (a /96's rules of
 * 96..128 share its bucket, abi.h eg_deny6l_of) or eg_allow6_slots_v1. */
static int slots6l_sync(struct eg_gate *g, bool allow, const struct rent *v, const bool *keep, size_t n)
{
	struct eg_slots6l *arr = allow ? g->aslots6l : g->slots6l;
	__u32 log2 = allow ? EG_ALLOW6_SLOTS_LOG2 : g->slots6l_log2;
	struct eg_slots6l *want = calloc((size_t)1 << log2, sizeof(*want));
	uint8_t *placed = calloc(n + 1, 1);

	if (!want || !placed || !arr) {
		free(want);
		free(placed);
		errno = want && placed ? ENODEV : ENOMEM;
		return -1;
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			unsigned len = v[i].k6.plen;
			__u64 hi = hi64(v[i].k6.a), lo = lo64(v[i].k6.a);
			__u32 bi = allow ? eg_slots6l_of(hi, lo, len, log2) : eg_deny6l_of(hi, lo, len, log2);
			__u16 tag = eg_slot6l_tag(len, v[i].r.reason);
			struct eg_slots6l *w = &want[bi], *b = &arr[bi];

			if (!keep[i] || placed[i] || len <= EG_DENY6S_MAXLEN)
				continue;
			for (int j = 0; j < 2 && !placed[i]; j++)
				if (pass ? !w->tag[j]
					 : b->tag[j] && b->tag[j] >> 8 == tag >> 8 && b->s[j].hi == hi &&
						   b->s[j].lo == lo) {
					w->s[j].hi = hi;
					w->s[j].lo = lo;
					w->s[j].expires_ns = v[i].r.expires_ns;
					w->tag[j] = tag;
					placed[i] = 1;
				}
			if (pass && !placed[i])
				w->more = 1;
		}
	for (__u32 bi = 0; bi < 1u << log2; bi++) {
		struct eg_slots6l *b = &arr[bi], *w = &want[bi];

		if (!memcmp(b, w, sizeof(*b)))
			continue;
		STORE32(&b->more, 1);
		for (int j = 0; j < 2; j++) {
			bool same = b->tag[j] >> 8 == w->tag[j] >> 8 && b->s[j].hi == w->s[j].hi &&
				    b->s[j].lo == w->s[j].lo;

			if (!same && b->tag[j])
				STORE16(&b->tag[j], 0);
			if (b->s[j].hi != w->s[j].hi)
				STORE64(&b->s[j].hi, w->s[j].hi);
			if (b->s[j].lo != w->s[j].lo)
				STORE64(&b->s[j].lo, w->s[j].lo);
			if (b->s[j].expires_ns != w->s[j].expires_ns)
				STORE64(&b->s[j].expires_ns, w->s[j].expires_ns);
			if (b->tag[j] != w->tag[j])
				STORE16(&b->tag[j], w->tag[j]);
		}
		STORE32(&b->more, w->more);
	}
	free(want);
	free(placed);
	return 0;
}

/* Appends every entry of one rule map (live or not) to *v, with batch lookups. A
 * short IPv6 key (eg_key6s) is widened to an eg_key6. */
static int map_collect(int fd, size_t ksz, bool v6, struct rent **v, size_t *n, size_t *cap)
{
	__u32 chunk = 8192, in_b = 0, out_b = 0;
	uint8_t *keys = malloc(chunk * ksz);
	struct eg_rule *vals = malloc(chunk * sizeof(*vals));
	bool first = true;
	int ret = -1;

	if (!keys || !vals)
		goto out;
	for (;;) {
		__u32 cnt = chunk;
		int rc = bpf_map_lookup_batch(fd, first ? NULL : &in_b, &out_b, keys, vals, &cnt, NULL);

		if (rc && errno != ENOENT)
			goto out;
		if (*n + cnt > *cap) {
			size_t nc = *cap ? *cap * 2 : 4096;
			struct rent *nv;

			while (nc < *n + cnt)
				nc *= 2;
			nv = realloc(*v, nc * sizeof(**v));
			if (!nv)
				goto out;
			*v = nv;
			*cap = nc;
		}
		for (__u32 i = 0; i < cnt; i++) {
			struct rent *e = &(*v)[(*n)++];

			memset(e, 0, sizeof(*e));
			if (ksz == sizeof(struct eg_key6s)) {
				const struct eg_key6s *ks = (const void *)(keys + i * ksz);

				e->k6.plen = ks->plen;
				memcpy(e->k6.a, ks->a, 8);
			} else {
				memcpy(v6 ? (void *)&e->k6 : (void *)&e->k4, keys + i * ksz, ksz);
			}
			e->r = vals[i];
		}
		if (rc) /* ENOENT: that was the last batch */
			break;
		in_b = out_b;
		first = false;
	}
	ret = 0;
out:
	free(keys);
	free(vals);
	return ret;
}

/* Every entry of a table (live or not); the IPv6 deny table is two maps. */
static long tbl_collect(struct eg_gate *g, unsigned tbl, struct rent **out)
{
	bool v6 = tbl >= EG_TBL_DENY6;
	struct rent *v = NULL;
	size_t n = 0, cap = 0;

	*out = NULL;
	if (map_collect(g->fd[M_DENY4 + tbl], v6 ? sizeof(struct eg_key6) : sizeof(struct eg_key4), v6,
			&v, &n, &cap) ||
	    (tbl == EG_TBL_DENY6 &&
	     map_collect(g->fd[M_DENY6S], sizeof(struct eg_key6s), true, &v, &n, &cap))) {
		free(v);
		return -1;
	}
	*out = v;
	return (long)n;
}

static void rent_addr(const struct rent *e, bool v6, uint8_t addr[16], unsigned *plen)
{
	memset(addr, 0, 16);
	if (v6) {
		memcpy(addr, e->k6.a, 16);
		*plen = e->k6.plen;
	} else {
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &e->k4.addr, 4);
		*plen = e->k4.plen + 96;
	}
}

/* --- put / delete ------------------------------------------------------------------------ */

static void note_put(struct eg_gate *g, bool allow, const uint8_t addr[16], unsigned plen,
		     const char *note)
{
	struct eg_note_key nk;
	struct eg_note nv = { { 0 } };

	note_key(allow, addr, plen, &nk);
	if (!note || !*note) {
		bpf_map_delete_elem(g->fd[M_NOTES], &nk);
		return;
	}
	snprintf(nv.text, sizeof(nv.text), "%s", note);
	if (bpf_map_update_elem(g->fd[M_NOTES], &nk, &nv, BPF_ANY))
		log_warn("gate: could not store the note of a rule: %s", strerror(errno));
}

int eg_rules_put(struct eg_gate *g, bool allow, const uint8_t addr[16], unsigned plen,
		 const struct eg_rule *r, uint64_t flags, const char *note)
{
	struct eg_rule old;
	struct eg_table t;
	struct rkey k;
	bool exists;
	int fd;

	if (g->remote)
		return eg_privc_rule_put(allow, addr, plen, r, flags, note);
	rkey_make(allow, addr, plen, &k);
	fd = rkey_fd(g, &k);
	exists = bpf_map_lookup_elem(fd, rkey_ptr(&k), &old) == 0;
	if (exists && flags == BPF_NOEXIST) {
		errno = EEXIST;
		return -1;
	}
	/* A rule that exists changes in its slot first, then in the hash: a writer killed
	 * between the two leaves XDP with the new rule and GC with the old one, which
	 * expires it no later than asked before (a slot behind its hash entry would change
	 * no count and stay until GC's next rebuild). A new rule: the hash first, so no
	 * slot ever holds a rule the record lacks. */
	if (exists && rkey_slotted(&k) && slot_put(g, &k, r))
		return -1;
	if (bpf_map_update_elem(fd, rkey_ptr(&k), r, BPF_ANY)) {
		if (exists && rkey_slotted(&k))
			slot_put(g, &k, &old); /* back to what the hash holds */
		return -1;
	}
	if (!k.v6 && idx4_set(g, allow, k.k4.addr, k.len))
		goto undo;
	if (!exists && rkey_slotted(&k) && slot_put(g, &k, r))
		goto undo;
	if (k.v6 && k.len >= 48 && idx6_set(g, allow, k.a, k.len))
		goto undo;
	if (tbl_read(g, k.tbl, &t))
		goto undo;
	if (!exists)
		t.count[k.len]++;
	tbl_lens(&t);
	if (tbl_write(g, k.tbl, &t))
		goto undo;
	note_put(g, allow, addr, plen, note);
	return 0;
undo: /* fail closed toward the caller: report the error, leave no half rule */
	{
		int e = errno;

		if (!exists) {
			bpf_map_delete_elem(fd, rkey_ptr(&k));
			if (rkey_slotted(&k))
				slot_del(g, &k);
		}
		errno = e;
	}
	return -1;
}

int eg_rules_del(struct eg_gate *g, bool allow, const uint8_t addr[16], unsigned plen)
{
	struct eg_note_key nk;
	struct eg_table t;
	struct rkey k;

	if (g->remote)
		return eg_privc_rule_del(allow, addr, plen);
	rkey_make(allow, addr, plen, &k);
	/* An allow rule leaves its slot before the record: a writer killed in between leaves
	 * a record XDP no longer honours (fail closed, until GC next rebuilds the slots: a
	 * delete, an expiry, a start), never a slot that lets a deleted allow through. A
	 * deny rule the other way round. */
	if (allow && rkey_slotted(&k)) {
		struct eg_rule old;
		bool had = bpf_map_lookup_elem(rkey_fd(g, &k), rkey_ptr(&k), &old) == 0;

		slot_del(g, &k);
		if (bpf_map_delete_elem(rkey_fd(g, &k), rkey_ptr(&k))) {
			int e = errno;

			if (had)
				slot_put(g, &k, &old);
			errno = e;
			return -1;
		}
	} else {
		if (bpf_map_delete_elem(rkey_fd(g, &k), rkey_ptr(&k)))
			return -1;
		if (rkey_slotted(&k)) /* after the hash: until here the rule holds, as before */
			slot_del(g, &k);
	}
	if (tbl_read(g, k.tbl, &t) == 0) {
		if (t.count[k.len])
			t.count[k.len]--;
		t.stale = 1;
		tbl_lens(&t);
		tbl_write(g, k.tbl, &t);
	}
	note_key(allow, addr, plen, &nk);
	bpf_map_delete_elem(g->fd[M_NOTES], &nk);
	return 0;
}

/* --- GC ---------------------------------------------------------------------------------- */

long eg_rules_gc(struct eg_gate *g, uint64_t now, bool force)
{
	long removed = 0;

	for (unsigned tbl = 0; tbl < EG_TBL__COUNT; tbl++) {
		bool v6 = tbl >= EG_TBL_DENY6, allow = tbl == EG_TBL_ALLOW4 || tbl == EG_TBL_ALLOW6;
		struct eg_table t, old;
		struct eg_key4 *k4 = NULL;
		struct eg_key6 *k6 = NULL;
		struct rent *v;
		long n = tbl_collect(g, tbl, &v), here = 0;
		size_t nk4 = 0;
		bool *keep;

		memset(&t, 0, sizeof(t));
		memset(&old, 0, sizeof(old));
		if (n < 0)
			return -1;
		keep = calloc((size_t)n + 1, sizeof(*keep));
		if (!keep || (!v6 && !(k4 = malloc(((size_t)n + 1) * sizeof(*k4)))) ||
		    (v6 && !(k6 = malloc(((size_t)n + 1) * sizeof(*k6))))) {
			free(keep);
			free(k4);
			free(v);
			return -1;
		}
		for (long i = 0; i < n; i++) {
			uint8_t a[16];
			unsigned pl;
			struct rkey rk;

			if (!v[i].r.expires_ns || v[i].r.expires_ns > now)
				goto keep;
			rent_addr(&v[i], v6, a, &pl);
			rkey_make(allow, a, pl, &rk);
			if (bpf_map_delete_elem(rkey_fd(g, &rk), rkey_ptr(&rk)) == 0) {
				struct eg_note_key nk;

				note_key(allow, a, pl, &nk);
				bpf_map_delete_elem(g->fd[M_NOTES], &nk);
				here++;
				continue;
			}
keep:
			keep[i] = true;
			t.count[v6 ? v[i].k6.plen : v[i].k4.plen]++;
			if (!v6)
				k4[nk4++] = v[i].k4;
			else
				k6[nk4++] = v[i].k6;
		}
		tbl_lens(&t);
		tbl_read(g, tbl, &old);
		/* lengths only after the rules are gone; the index before any length that
		 * a crashed writer left unset appears */
		bool rebuild = force || here || old.stale || memcmp(old.count, t.count, sizeof(t.count));

		if (rebuild && ((v6 ? idx6_rebuild(g, allow, k6, nk4) : idx4_rebuild(g, allow, k4, nk4)) ||
				(!v6 && slots4_sync(g, allow, v, keep, (size_t)n)) ||
				(v6 && (slots6_sync(g, allow, v, keep, (size_t)n) ||
					slots6l_sync(g, allow, v, keep, (size_t)n))))) {
			log_warn("gate: rebuilding the %s index failed: %s", v6 ? "IPv6" : "IPv4",
				 strerror(errno));
			free(keep);
			free(k4);
			free(k6);
			free(v);
			return -1;
		}
		if (memcmp(&old, &t, sizeof(t)) && tbl_write(g, tbl, &t)) {
			free(keep);
			free(k4);
			free(k6);
			free(v);
			return -1;
		}
		removed += here;
		free(keep);
		free(k4);
		free(k6);
		free(v);
	}
	/* notes whose rule is gone (a writer that died between the two) */
	{
		struct eg_note_key cur, prev;
		bool have = false;

		while (bpf_map_get_next_key(g->fd[M_NOTES], have ? &prev : NULL, &cur) == 0) {
			struct rkey k;
			struct eg_rule r;

			rkey_make(cur.allow, cur.a, cur.plen, &k);
			if (bpf_map_lookup_elem(rkey_fd(g, &k), rkey_ptr(&k), &r) &&
			    bpf_map_delete_elem(g->fd[M_NOTES], &cur) == 0)
				continue;
			prev = cur;
			have = true;
		}
	}
	return removed;
}

int eg_rules_drop_static(struct eg_gate *g)
{
	for (unsigned tbl = 0; tbl < EG_TBL__COUNT; tbl++) {
		bool v6 = tbl >= EG_TBL_DENY6, allow = tbl == EG_TBL_ALLOW4 || tbl == EG_TBL_ALLOW6;
		struct rent *v;
		long n = tbl_collect(g, tbl, &v);

		if (n < 0)
			return -1;
		for (long i = 0; i < n; i++) {
			uint8_t a[16];
			unsigned pl;

			if (v[i].r.reason != EG_RULE_STATIC)
				continue;
			rent_addr(&v[i], v6, a, &pl);
			eg_rules_del(g, allow, a, pl);
		}
		free(v);
	}
	return 0;
}

/* --- persistence ---------------------------------------------------------------- */

void eg_gate_store_key(bool allow, const uint8_t addr[16], unsigned plen, char *buf, size_t len)
{
	char t[64];
	uint8_t a[16];

	memcpy(a, addr, 16);
	eg_gate_mask_addr(a, plen);
	eg_gate_prefix_text(a, plen, t, sizeof(t));
	snprintf(buf, len, "%s %s", allow ? "allow" : "deny", t);
}

static int persist(struct eg_gate *g, bool allow, const struct eg_prefix *p, int64_t ttl_s,
		   uint32_t reason, const char *note)
{
	char key[96];
	int64_t exp = ttl_s > 0 ? (int64_t)time(NULL) + ttl_s : 0;
	json_t *j;
	char *val;
	int rc;

	if (!g->store)
		return 0;
	eg_gate_store_key(allow, p->addr, p->plen, key, sizeof(key));
	j = json_pack("{s:i}", "reason", (int)reason);
	if (note && *note)
		json_object_set_new(j, "note", json_string(note));
	val = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!val)
		return -1;
	rc = eg_store_put(g->store, EG_NS_DENY, key, val, strlen(val), exp);
	free(val);
	if (rc) {
		log_warn("gate: could not persist %s", key);
		return rc;
	}
	eg_gate_shared_mark(g, key, true);
	/* Other nodes apply it as it arrives (events.c); bans have events of their own. */
	if (reason != EG_RULE_BAN) {
		j = json_pack("{s:i, s:I}", "reason", (int)reason, "exp", (json_int_t)exp);
		if (note && *note)
			json_object_set_new(j, "note", json_string(note));
		val = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		if (!val || eg_store_publish(g->store, "deny", key, val) != 0)
			log_warn("gate: %s is stored but not published to the other nodes", key);
		free(val);
	}
	return 0;
}

static void unpersist(struct eg_gate *g, bool allow, const struct eg_prefix *p)
{
	char key[96];

	if (!g->store)
		return;
	eg_gate_store_key(allow, p->addr, p->plen, key, sizeof(key));
	eg_store_del(g->store, EG_NS_DENY, key);
	eg_gate_shared_mark(g, key, false);
	if (eg_store_publish(g->store, "undeny", key, NULL) != 0)
		log_warn("gate: the removal of %s is not published to the other nodes", key);
}

/* This node's config entry for the prefix (read-only fds suffice). */
static bool is_static_here(struct eg_gate *g, bool allow, const uint8_t addr[16], unsigned plen)
{
	struct eg_rule old;
	struct rkey k;

	rkey_make(allow, addr, plen, &k);
	return bpf_map_lookup_elem(rkey_fd(g, &k), rkey_ptr(&k), &old) == 0 && old.reason == EG_RULE_STATIC;
}

/* The reason of the deny entry of exactly p (-1: none). abuse.c lifts only its own bans. */
int eg_gate_deny_reason(struct eg_gate *g, const struct eg_prefix *p)
{
	struct eg_rule old;
	struct rkey k;

	if (!g || !p || p->plen > 128)
		return -1;
	rkey_make(false, p->addr, p->plen, &k);
	return bpf_map_lookup_elem(rkey_fd(g, &k), rkey_ptr(&k), &old) == 0 ? (int)old.reason : -1;
}

/* A change another node published (events.c): into the maps only, under the writers'
 * lock (in the unprivileged process: through the privileged one, like any write). */
int eg_gate_apply_remote(struct eg_gate *g, bool add, const char *key, const char *val, size_t len)
{
	struct eg_prefix p;
	struct eg_rule r = { .reason = EG_RULE_MANUAL };
	const char *sp = key ? strchr(key, ' ') : NULL, *n;
	char note[EG_NOTE_MAX] = "";
	bool allow;
	int rc;
	json_t *j;
	json_int_t reason;
	int64_t exp;

	if (!g || !sp || eg_gate_prefix_parse(sp + 1, &p) != 0)
		return -1;
	allow = strncmp(key, "allow ", 6) == 0;
	if (!allow && strncmp(key, "deny ", 5) != 0)
		return -1;
	char ckey[96]; /* the key as this node writes it (gate_shared.c compares those) */
	if (p.plen <= 128)
		eg_gate_store_key(allow, p.addr, p.plen, ckey, sizeof(ckey));
	else
		snprintf(ckey, sizeof(ckey), "%s", key);
	/* Static entries come from this node's config and are not in the shared store: another
	 * node's undeny (or a deny with an expiry) of the same prefix must not open it here. */
	if (p.plen <= 128 && is_static_here(g, allow, p.addr, p.plen))
		return 0;
	if (!add) {
		eg_gate_wlock(g);
		rc = eg_rules_del(g, allow, p.addr, p.plen);
		eg_gate_shared_mark(g, ckey, false);
		eg_gate_wunlock(g);
		return rc == 0;
	}
	j = json_loadb(val ? val : "", len, JSON_REJECT_DUPLICATES, NULL);
	reason = json_integer_value(json_object_get(j, "reason"));
	exp = (int64_t)json_integer_value(json_object_get(j, "exp"));
	n = json_string_value(json_object_get(j, "note"));
	if (n && eg_gate_note_valid(n))
		snprintf(note, sizeof(note), "%s", n);
	json_decref(j);
	if (reason > 0 && reason < EG_RULE__COUNT && reason != EG_RULE_STATIC)
		r.reason = (uint32_t)reason;
	if (exp) {
		int64_t left = exp - (int64_t)time(NULL);

		if (left <= 0)
			return 0;
		r.expires_ns = eg_gate_now_ns(g) + (uint64_t)left * 1000000000ull;
	}
	eg_gate_wlock(g);
	rc = eg_rules_put(g, allow, p.addr, p.plen, &r, BPF_ANY, note);
	if (rc == 0)
		eg_gate_shared_mark(g, ckey, true);
	eg_gate_wunlock(g);
	return rc == 0 ? 1 : -1;
}

/* --- the API ------------------------------------------------------------------------- */

bool eg_gate_note_valid(const char *note)
{
	size_t n = 0;

	if (!note)
		return true;
	for (const unsigned char *c = (const unsigned char *)note; *c; c++, n++)
		if (*c < 0x20 || *c == 0x7f)
			return false;
	return n < EG_NOTE_MAX;
}

static int entry_add(struct eg_gate *g, bool allow, const struct eg_prefix *p, int64_t ttl_s,
		     uint32_t reason, const char *note)
{
	struct eg_rule r = { .reason = reason };
	int rc;

	if (!p || p->plen > 128 || ttl_s < 0 || reason >= EG_RULE__COUNT ||
	    !eg_gate_note_valid(note)) {
		errno = EINVAL;
		return -1;
	}
	if (ttl_s > 0)
		r.expires_ns = eg_gate_now_ns(g) + (uint64_t)ttl_s * 1000000000ull;
	eg_gate_wlock(g);
	rc = eg_rules_put(g, allow, p->addr, p->plen, &r, BPF_ANY, note);
	if (rc == 0 && reason != EG_RULE_STATIC)
		persist(g, allow, p, ttl_s, reason, note);
	eg_gate_wunlock(g);
	return rc ? -1 : 0;
}

static int entry_del(struct eg_gate *g, bool allow, const struct eg_prefix *p)
{
	int rc, e;

	if (!p || p->plen > 128) {
		errno = EINVAL;
		return -1;
	}
	eg_gate_wlock(g);
	rc = eg_rules_del(g, allow, p->addr, p->plen);
	e = errno;
	unpersist(g, allow, p);
	eg_gate_wunlock(g);
	errno = e;
	return rc ? -1 : 0;
}

int eg_gate_deny_add(struct eg_gate *g, const struct eg_prefix *p, int64_t ttl_s, uint32_t reason)
{
	return entry_add(g, false, p, ttl_s, reason, NULL);
}

int eg_gate_deny_add_note(struct eg_gate *g, const struct eg_prefix *p, int64_t ttl_s,
			  uint32_t reason, const char *note)
{
	return entry_add(g, false, p, ttl_s, reason, note);
}

int eg_gate_deny_del(struct eg_gate *g, const struct eg_prefix *p)
{
	return entry_del(g, false, p);
}

int eg_gate_allow_add(struct eg_gate *g, const struct eg_prefix *p, int64_t ttl_s, uint32_t reason)
{
	return entry_add(g, true, p, ttl_s, reason, NULL);
}

int eg_gate_allow_add_note(struct eg_gate *g, const struct eg_prefix *p, int64_t ttl_s,
			   uint32_t reason, const char *note)
{
	return entry_add(g, true, p, ttl_s, reason, note);
}

int eg_gate_allow_del(struct eg_gate *g, const struct eg_prefix *p)
{
	return entry_del(g, true, p);
}

/* --- bulk load -------------------------------------------------------------------------- */

/* Bits to OR into words of an array map, gathered in memory first: a bulk load then
 * reads and writes each touched word once, with batch updates. */
struct orset {
	__u64 *delta;     /* nwords: bits to add */
	__u32 *touched;   /* words with a non-zero delta, each once */
	size_t n, cap;
	__u32 nwords;
};

static int orset_init(struct orset *s, __u32 nwords)
{
	memset(s, 0, sizeof(*s));
	s->nwords = nwords;
	s->delta = calloc(nwords, sizeof(*s->delta));
	return s->delta ? 0 : -1;
}

static void orset_free(struct orset *s)
{
	free(s->delta);
	free(s->touched);
}

static int orset_add(struct orset *s, __u32 w, __u64 bits)
{
	if (!s->delta[w]) {
		if (s->n == s->cap) {
			size_t nc = s->cap ? s->cap * 2 : 4096;
			__u32 *nt = realloc(s->touched, nc * sizeof(*nt));

			if (!nt)
				return -1;
			s->touched = nt;
			s->cap = nc;
		}
		s->touched[s->n++] = w;
	}
	s->delta[w] |= bits;
	return 0;
}

/* The touched words' current values: one lookup each, or the whole array in
 * batches when most of it is touched anyway. */
static int orset_read(const struct orset *s, int fd, __u64 *cur)
{
	enum { CHUNK = 65536 };

	if (s->n < s->nwords / 16) {
		for (size_t i = 0; i < s->n; i++)
			if (bpf_map_lookup_elem(fd, &s->touched[i], &cur[i]))
				return -1;
		return 0;
	}
	__u64 *all = malloc((size_t)s->nwords * sizeof(*all));
	__u32 *ks = malloc(CHUNK * sizeof(*ks));
	int rc = -1;

	if (!all || !ks)
		goto out;
	for (__u32 w0 = 0; w0 < s->nwords; w0 += CHUNK) {
		__u32 cnt = CHUNK < s->nwords - w0 ? CHUNK : s->nwords - w0, asked = cnt;
		__u32 in_b = w0 - 1, out_b;

		if (bpf_map_lookup_batch(fd, w0 ? &in_b : NULL, &out_b, ks, all + w0, &cnt, NULL) &&
		    errno != ENOENT)
			goto out;
		if (cnt != asked) {
			errno = EIO;
			goto out;
		}
	}
	for (size_t i = 0; i < s->n; i++)
		cur[i] = all[s->touched[i]];
	rc = 0;
out:
	free(all);
	free(ks);
	return rc;
}

/* ORs the gathered bits into the map, writing only words that change. */
static int orset_apply(const struct orset *s, int fd)
{
	__u64 *cur = malloc((s->n + 1) * sizeof(*cur));
	__u32 *ks = malloc((s->n + 1) * sizeof(*ks));
	__u32 nch = 0;
	int rc = -1;

	if (!cur || !ks || orset_read(s, fd, cur))
		goto out;
	for (size_t i = 0; i < s->n; i++) {
		__u64 v = cur[i] | s->delta[s->touched[i]];

		if (v != cur[i]) {
			ks[nch] = s->touched[i];
			cur[nch++] = v;
		}
	}
	rc = nch ? bpf_map_update_batch(fd, ks, cur, &nch, NULL) : 0;
out:
	free(cur);
	free(ks);
	return rc;
}

/* What a bulk load adds beside the hash entries: counts per length of the entries
 * that are new, and the index bits of every loaded entry. */
struct bulk_acc {
	bool allow;
	__u32 cnt4[33], cnt6[129];
	struct orset idx4, idx6;
};

static int bulk_note4(struct bulk_acc *a, const struct eg_key4 *k, bool fresh)
{
	uint32_t s = ntohl(k->addr) >> 8, end = s + (k->plen >= 24 ? 1 : 1u << (24 - k->plen));
	unsigned grp = eg_group4(k->plen);

	if (fresh)
		a->cnt4[k->plen]++;
	while (s < end) {
		__u32 w = s >> 3;
		__u64 bits = 0;

		do {
			bits |= 1ull << ((s & 7) * 8 + grp);
			s++;
		} while ((s & 7) && s < end);
		if (orset_add(&a->idx4, w, bits))
			return -1;
	}
	return 0;
}

/* The three kinds of rule key a bulk load writes. */
enum bkind { BK4, BK6, BK6S };

static size_t bk_ksz(enum bkind kind)
{
	return kind == BK4 ? sizeof(struct eg_key4) : kind == BK6 ? sizeof(struct eg_key6)
								  : sizeof(struct eg_key6s);
}

static unsigned bk_len(enum bkind kind, const void *k)
{
	return kind == BK4 ? ((const struct eg_key4 *)k)->plen : kind == BK6 ? ((const struct eg_key6 *)k)->plen
									      : ((const struct eg_key6s *)k)->plen;
}

static int bulk_note6(struct bulk_acc *a, enum bkind kind, const void *k, bool fresh)
{
	unsigned len = bk_len(kind, k);
	const uint8_t *addr = kind == BK6 ? ((const struct eg_key6 *)k)->a : ((const struct eg_key6s *)k)->a;

	if (fresh)
		a->cnt6[len]++;
	if (len >= 48) {
		__u32 b = eg_idx6_slot(hi64(addr));

		return orset_add(&a->idx6, b >> 3, 1ull << ((b & 7) * 8 + eg_group6(len)));
	}
	return 0;
}

static int key4_cmp(const void *x, const void *y)
{
	return memcmp(x, y, sizeof(struct eg_key4));
}

static int key6_cmp(const void *x, const void *y)
{
	return memcmp(x, y, sizeof(struct eg_key6));
}

static int key6s_cmp(const void *x, const void *y)
{
	return memcmp(x, y, sizeof(struct eg_key6s));
}

/* Sorts the keys and drops repeats; returns how many are left. */
static size_t keys_unique(void *keys, size_t n, size_t ksz, int (*cmp)(const void *, const void *))
{
	uint8_t *k = keys;
	size_t m = 0;

	if (!n)
		return 0;
	qsort(keys, n, ksz, cmp);
	for (size_t i = 1; i < n; i++)
		if (cmp(k + m * ksz, k + i * ksz))
			memcpy(k + ++m * ksz, k + i * ksz, ksz);
	return m + 1;
}

/* Which keys the map lacks (they will count as new). A length with no entries has
 * none to look up: counts are exact under the writers' lock, and where a crashed
 * writer left one short, GC's recount corrects it. Batch updates cannot say
 * (their only element flag is BPF_F_LOCK). */
static int keys_fresh(int fd, const void *keys, size_t n, enum bkind kind, const struct eg_table *t,
		      bool *fresh)
{
	size_t ksz = bk_ksz(kind);
	struct eg_rule r;

	for (size_t i = 0; i < n; i++) {
		const void *k = (const uint8_t *)keys + i * ksz;

		if (!t->count[bk_len(kind, k)]) {
			fresh[i] = true;
			continue;
		}
		fresh[i] = bpf_map_lookup_elem(fd, k, &r) != 0;
		if (fresh[i] && errno != ENOENT)
			return -1;
	}
	return 0;
}

/* Inserts the keys with batch updates, a chunk at a time; *done: how many went in. */
static int bulk_insert(int fd, const void *keys, size_t ksz, const struct eg_rule *rv, size_t n,
		       size_t chunk, size_t *done)
{
	for (*done = 0; *done < n;) {
		__u32 cnt = (__u32)(n - *done < chunk ? n - *done : chunk);
		int rc = bpf_map_update_batch(fd, (const uint8_t *)keys + *done * ksz, rv, &cnt, NULL);

		*done += cnt;
		if (rc)
			return -1;
	}
	return 0;
}

/* The index bits, then the counts and lengths (the order eg_rules_put keeps). */
static int bulk_commit(struct eg_gate *g, struct bulk_acc *a)
{
	unsigned t4 = a->allow ? EG_TBL_ALLOW4 : EG_TBL_DENY4, t6 = t4 + 2;
	struct eg_table t;

	if (orset_apply(&a->idx4, g->fd[a->allow ? M_ALLOW4_IDX : M_DENY4_IDX]) ||
	    orset_apply(&a->idx6, g->fd[a->allow ? M_ALLOW6_IDX : M_DENY6_IDX]))
		return -1;
	for (int fam = 0; fam < 2; fam++) {
		const __u32 *cnt = fam ? a->cnt6 : a->cnt4;
		unsigned maxl = fam ? 128 : 32;
		bool any = false;

		for (unsigned l = 0; l <= maxl; l++)
			any |= cnt[l] != 0;
		if (!any)
			continue;
		if (tbl_read(g, fam ? t6 : t4, &t))
			return -1;
		for (unsigned l = 0; l <= maxl; l++)
			t.count[l] += cnt[l];
		tbl_lens(&t);
		if (tbl_write(g, fam ? t6 : t4, &t))
			return -1;
	}
	return 0;
}

/* Many rules at once: batch updates of the hashes, then the index words and the
 * counts of what was loaded only (read and written once each), so a load costs
 * in proportion to its size, not to the tables'. Not persisted (edgegatectl deny
 * load writes the pinned maps; the file is the record). On an error, what did go
 * in is indexed and counted before returning -1. */
long eg_gate_bulk_add(struct eg_gate *g, bool allow, const struct eg_prefix *v, size_t n,
		      int64_t ttl_s, uint32_t reason)
{
	enum { CHUNK = 16384 };
	struct eg_rule r = { .reason = reason };
	struct eg_key4 *k4 = malloc((n + 1) * sizeof(*k4));
	struct eg_key6 *k6 = malloc((n + 1) * sizeof(*k6));
	struct eg_key6s *k6s = malloc((n + 1) * sizeof(*k6s));
	struct eg_rule *rv = malloc(CHUNK * sizeof(*rv));
	bool *fresh = malloc((n + 1) * sizeof(*fresh));
	struct bulk_acc *a = calloc(1, sizeof(*a));
	size_t n4 = 0, n6 = 0, n6s = 0, done;
	struct eg_table t;
	long rc = -1;
	int err = 0;

	if (g->remote) { /* no bulk request in the protocol: edgegatectl writes pins, daemon down */
		errno = EPERM;
		goto out;
	}
	if (!k4 || !k6 || !k6s || !rv || !fresh || !a || ttl_s < 0 || reason >= EG_RULE__COUNT) {
		errno = k4 && k6 && k6s && rv && fresh && a ? EINVAL : ENOMEM;
		goto out;
	}
	a->allow = allow;
	if (orset_init(&a->idx4, EG_IDX4_WORDS) ||
	    orset_init(&a->idx6, EG_IDX6_WORDS))
		goto out;
	if (ttl_s > 0)
		r.expires_ns = eg_gate_now_ns(g) + (uint64_t)ttl_s * 1000000000ull;
	for (size_t i = 0; i < CHUNK; i++)
		rv[i] = r;
	for (size_t i = 0; i < n; i++) {
		struct rkey k;

		rkey_make(allow, v[i].addr, v[i].plen, &k);
		if (k.s6)
			k6s[n6s++] = k.k6s;
		else if (k.v6)
			k6[n6++] = k.k6;
		else
			k4[n4++] = k.k4;
	}
	n4 = keys_unique(k4, n4, sizeof(*k4), key4_cmp);
	n6 = keys_unique(k6, n6, sizeof(*k6), key6_cmp);
	n6s = keys_unique(k6s, n6s, sizeof(*k6s), key6s_cmp);
	eg_gate_wlock(g);
	for (enum bkind kind = BK4; kind <= BK6S && !err; kind++) {
		const void *keys = kind == BK4 ? (const void *)k4 : kind == BK6 ? (const void *)k6 : (const void *)k6s;
		size_t nk = kind == BK4 ? n4 : kind == BK6 ? n6 : n6s, ksz = bk_ksz(kind);
		unsigned tbl = (allow ? EG_TBL_ALLOW4 : EG_TBL_DENY4) + (kind == BK4 ? 0 : 2);
		int fd = kind == BK6S ? g->fd[M_DENY6S] : g->fd[M_DENY4 + tbl];

		if (!nk)
			continue;
		/* which keys are new, insert, note what went in */
		if (tbl_read(g, tbl, &t) || keys_fresh(fd, keys, nk, kind, &t, fresh)) {
			err = errno;
			break;
		}
		if (bulk_insert(fd, keys, ksz, rv, nk, CHUNK, &done))
			err = errno;
		for (size_t j = 0; j < done; j++) {
			const void *k = (const uint8_t *)keys + j * ksz;

			if ((kind == BK4 ? bulk_note4(a, k, fresh[j]) : bulk_note6(a, kind, k, fresh[j])) &&
			    !err)
				err = errno;
		}
		/* the buckets of what went in, straight after the hash */
		if (!slots_mapped(g) && !err)
			err = ENODEV;
		for (size_t j = 0; j < done && slots_mapped(g); j++) {
			if (kind == BK4) {
				__u32 a4 = ntohl(k4[j].addr);

				slot4_put(bucket4_of(g, allow, a4, k4[j].plen), a4, k4[j].plen, &r);
			} else if (kind == BK6) {
				__u64 hi = hi64(k6[j].a), lo = lo64(k6[j].a);

				/* an allow of /64 or shorter is a BK6 key too (one hash) */
				if (k6[j].plen > EG_DENY6S_MAXLEN)
					slot6l_put(bucket6l_of(g, allow, hi, lo, k6[j].plen), hi, lo, k6[j].plen, &r);
				else
					slot6_put(bucket6_of(g, allow, hi, k6[j].plen), hi, k6[j].plen, &r);
			} else {
				__u64 hi = hi64(k6s[j].a);

				slot6_put(bucket6_of(g, false, hi, k6s[j].plen), hi, k6s[j].plen, &r);
			}
		}
	}
	/* what did go in is indexed and counted, error or not */
	if (bulk_commit(g, a) && !err)
		err = errno;
	eg_gate_wunlock(g);
	if (err)
		errno = err;
	else
		rc = (long)n;
out:
	if (a) {
		orset_free(&a->idx4);
		orset_free(&a->idx6);
	}
	free(a);
	free(k4);
	free(k6);
	free(k6s);
	free(rv);
	free(fresh);
	return rc;
}

/* Longest-match the way XDP does it, for userspace callers that must not ban an
 * allowed source (abuse.c). */
bool eg_gate_allowed(struct eg_gate *g, const uint8_t addr[16])
{
	bool v4 = eg_gate_is_v4mapped(addr);
	uint64_t now = eg_gate_now_ns(g);
	struct eg_table t;

	if (tbl_read(g, v4 ? EG_TBL_ALLOW4 : EG_TBL_ALLOW6, &t))
		return false;
	for (int l = v4 ? 32 : 128; l >= 0; l--) {
		struct eg_rule r;
		struct rkey k;

		if (!(t.lens[l / 64] & (1ull << (l % 64))))
			continue;
		rkey_make(true, addr, (unsigned)l + (v4 ? 96 : 0), &k);
		if (bpf_map_lookup_elem(rkey_fd(g, &k), rkey_ptr(&k), &r) == 0 &&
		    (!r.expires_ns || r.expires_ns > now))
			return true;
	}
	return false;
}

static long list_rules(struct eg_gate *g, bool allow, eg_gate_list_fn fn, void *arg)
{
	uint64_t now = eg_gate_now_ns(g);
	long count = 0;

	for (int fam = 0; fam < 2; fam++) {
		unsigned tbl = (allow ? EG_TBL_ALLOW4 : EG_TBL_DENY4) + (fam ? 2 : 0);
		struct rent *v;
		long n = tbl_collect(g, tbl, &v);

		if (n < 0)
			return -1;
		for (long i = 0; i < n; i++) {
			struct eg_gate_entry e = { .reason = v[i].r.reason,
						   .expires_ns = v[i].r.expires_ns };
			struct eg_note_key nk;
			struct eg_note nv;
			unsigned pl;

			if (e.expires_ns && e.expires_ns <= now)
				continue;
			rent_addr(&v[i], fam, e.addr, &pl);
			e.plen = (uint8_t)pl;
			e.v4 = !fam;
			e.ttl_left_s = e.expires_ns
					       ? (int64_t)((e.expires_ns - now + 999999999ull) / 1000000000ull)
					       : -1;
			note_key(allow, e.addr, pl, &nk);
			if (fn && bpf_map_lookup_elem(g->fd[M_NOTES], &nk, &nv) == 0) {
				nv.text[sizeof(nv.text) - 1] = 0;
				snprintf(e.note, sizeof(e.note), "%s", nv.text);
			}
			count++;
			if (fn && fn(&e, arg)) {
				free(v);
				return count;
			}
		}
		free(v);
	}
	return count;
}

long eg_gate_deny_list(struct eg_gate *g, eg_gate_list_fn fn, void *arg)
{
	return list_rules(g, false, fn, arg);
}

long eg_gate_allow_list(struct eg_gate *g, eg_gate_list_fn fn, void *arg)
{
	return list_rules(g, true, fn, arg);
}

static int list_json_one(const struct eg_gate_entry *e, void *arg)
{
	char t[64];
	json_t *o;

	eg_gate_prefix_text(e->addr, e->plen, t, sizeof(t));
	o = json_pack("{s:s, s:s, s:I}", "prefix", t, "reason", eg_gate_rule_name(e->reason), "ttl",
		      (json_int_t)e->ttl_left_s);
	if (e->note[0])
		json_object_set_new(o, "note", json_string(e->note));
	json_array_append_new(arg, o);
	return 0;
}

json_t *eg_gate_list_json(struct eg_gate *g, bool allow)
{
	json_t *a = json_array();

	if (list_rules(g, allow, list_json_one, a) < 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}
