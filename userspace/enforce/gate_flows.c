/* gate_flows.c - the revoked flows of the XDP gate: eg_rflow_v1 (the record) and the
 * direct-mapped buckets XDP reads first (eg_rflow_slots_v1; layouts and the torn-read
 * argument: abi.h; design: docs/gate.md). Every function here runs under
 * eg_gate_wlock(), so the buckets cannot be lost to a concurrent writer or GC. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "gate_priv.h"

static bool key_empty(const struct eg_flow_key *k)
{
	static const struct eg_flow_key zero;

	return memcmp(k, &zero, sizeof(zero)) == 0;
}

static bool key_eq(const struct eg_flow_key *a, const struct eg_flow_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static int bucket_read(struct eg_gate *g, __u32 i, struct eg_flow_bucket *b)
{
	return bpf_map_lookup_elem(g->fd[M_FLOWSLOTS], &i, b);
}

static int bucket_write(struct eg_gate *g, __u32 i, const struct eg_flow_bucket *b)
{
	return bpf_map_update_elem(g->fd[M_FLOWSLOTS], &i, b, BPF_ANY);
}

/* The slot of the bucket holding k, else -1. */
static int slot_holding(const struct eg_flow_bucket *b, const struct eg_flow_key *k)
{
	for (int j = 0; j < 2; j++)
		if (key_eq(&b->s[j].key, k))
			return j;
	return -1;
}

static int slot_empty(const struct eg_flow_bucket *b)
{
	for (int j = 0; j < 2; j++)
		if (key_empty(&b->s[j].key))
			return j;
	return -1;
}

static void slot_set(struct eg_flow_bucket *b, int j, const struct eg_flow_key *k, __u64 expires_ns)
{
	b->s[j].key = *k;
	b->s[j].expires_ns = expires_ns;
}

/* The record first, then the buckets: the slot already holding k (home, then the
 * neighbour, eg_flow_spill_of), else an empty one of the home bucket, else of the
 * neighbour (written before the home's EG_FLOW_MORE_NEXT), else EG_FLOW_MORE_HASH.
 * Once all is written XDP finds the flow every way; an error is returned, never
 * swallowed. A flow is in one slot at most, so no stale expiry hides behind it. */
int eg_flows_put(struct eg_gate *g, const struct eg_flow_key *k, const struct eg_flow_val *v)
{
	__u32 i = eg_flow_slot_of(k), n = eg_flow_spill_of(i);
	struct eg_flow_bucket b, nb;
	int j;

	if (bucket_read(g, i, &b) || bucket_read(g, n, &nb) ||
	    bpf_map_update_elem(g->fd[M_FLOWS], k, v, BPF_ANY))
		return -1;
	if ((j = slot_holding(&b, k)) >= 0) {
		slot_set(&b, j, k, v->expires_ns);
		return bucket_write(g, i, &b);
	}
	if ((j = slot_holding(&nb, k)) >= 0 || (slot_empty(&b) < 0 && (j = slot_empty(&nb)) >= 0)) {
		slot_set(&nb, j, k, v->expires_ns);
		if (bucket_write(g, n, &nb))
			return -1;
		if (b.more & EG_FLOW_MORE_NEXT)
			return 0;
		b.more |= EG_FLOW_MORE_NEXT;
		return bucket_write(g, i, &b);
	}
	if ((j = slot_empty(&b)) >= 0) {
		slot_set(&b, j, k, v->expires_ns);
		return bucket_write(g, i, &b);
	}
	if (b.more & EG_FLOW_MORE_HASH)
		return 0;
	b.more |= EG_FLOW_MORE_HASH;
	return bucket_write(g, i, &b);
}

/* Emptied from bucket i if a slot there holds k (`more` kept); -1 on a write error. */
static int slot_clear(struct eg_gate *g, __u32 i, const struct eg_flow_key *k)
{
	struct eg_flow_bucket b;
	int j;

	if (bucket_read(g, i, &b) || (j = slot_holding(&b, k)) < 0)
		return 0;
	memset(&b.s[j], 0, sizeof(b.s[j]));
	return bucket_write(g, i, &b);
}

/* The slots first (home and neighbour; `more` kept), then the record. */
int eg_flows_del(struct eg_gate *g, const struct eg_flow_key *k)
{
	__u32 i = eg_flow_slot_of(k);

	if (slot_clear(g, i, k) || slot_clear(g, eg_flow_spill_of(i), k))
		return -1;
	return bpf_map_delete_elem(g->fd[M_FLOWS], k) ? -1 : 0;
}

/* Where GC wants flow k (left where it is when already placed): a slot of its home
 * bucket, else (spill) of the neighbour, else the record only. */
static void place(struct eg_flow_bucket *want, const struct eg_flow_key *k, __u64 expires_ns,
		  bool spill)
{
	__u32 i = eg_flow_slot_of(k), n = eg_flow_spill_of(i);
	int j;

	if (slot_holding(&want[i], k) >= 0 ||
	    ((want[i].more & EG_FLOW_MORE_NEXT) && slot_holding(&want[n], k) >= 0))
		return;
	if ((j = slot_empty(&want[i])) >= 0) {
		slot_set(&want[i], j, k, expires_ns);
	} else if (!spill) {
		return; /* the second round places it */
	} else if ((j = slot_empty(&want[n])) >= 0) {
		slot_set(&want[n], j, k, expires_ns);
		want[i].more |= EG_FLOW_MORE_NEXT;
	} else {
		want[i].more |= EG_FLOW_MORE_HASH;
	}
}

/* Every flow of the record in want: those in a slot keep it, then the others into an
 * empty slot of their home bucket, then (second round, so a spill never takes the
 * slot of a bucket's own flow) of the neighbour, then the record only. */
static int plan(struct eg_gate *g, const struct eg_flow_bucket *cur, struct eg_flow_bucket *want)
{
	struct eg_flow_key k, prev;
	struct eg_flow_val v;

	for (__u32 i = 0; i < EG_FLOWSLOTS; i++)
		for (int j = 0; j < 2; j++) {
			const struct eg_flow_key *ck = &cur[i].s[j].key;
			__u32 h = eg_flow_slot_of(ck);

			if (key_empty(ck) || (h != i && eg_flow_spill_of(h) != i) ||
			    bpf_map_lookup_elem(g->fd[M_FLOWS], ck, &v))
				continue; /* gone from the record (or in no bucket of its own) */
			slot_set(&want[i], j, ck, v.expires_ns);
			if (h != i)
				want[h].more |= EG_FLOW_MORE_NEXT;
		}
	for (int round = 0; round < 2; round++) {
		bool have = false;

		while (bpf_map_get_next_key(g->fd[M_FLOWS], have ? &prev : NULL, &k) == 0) {
			prev = k;
			have = true;
			if (bpf_map_lookup_elem(g->fd[M_FLOWS], &k, &v) == 0)
				place(want, &k, v.expires_ns, round == 1);
		}
		if (errno != ENOENT)
			return -1;
	}
	return 0;
}

/* The buckets from the record (GC, after expired flows went), in three sweeps so XDP
 * finds every flow of the record at every moment: (1) each bucket that changes has
 * the slots that change emptied and EG_FLOW_MORE_HASH set (with every `more` bit it
 * had or will have); (2) its new slots written, `more` still so; (3) its final
 * `more`. A slot is never rewritten from one flow to another in one write. */
int eg_flows_rebuild(struct eg_gate *g)
{
	struct eg_flow_bucket *cur = calloc(EG_FLOWSLOTS, sizeof(*cur));
	struct eg_flow_bucket *want = calloc(EG_FLOWSLOTS, sizeof(*want));
	int rc = -1;

	if (!cur || !want)
		goto out;
	for (__u32 i = 0; i < EG_FLOWSLOTS; i++)
		if (bucket_read(g, i, &cur[i]))
			goto out;
	if (plan(g, cur, want))
		goto out;
	for (int sweep = 0; sweep < 3; sweep++)
		for (__u32 i = 0; i < EG_FLOWSLOTS; i++) {
			struct eg_flow_bucket b = sweep == 0 ? cur[i] : want[i];

			if (!memcmp(&cur[i], &want[i], sizeof(want[i])))
				continue;
			if (sweep == 0)
				for (int j = 0; j < 2; j++)
					if (!key_eq(&cur[i].s[j].key, &want[i].s[j].key))
						memset(&b.s[j], 0, sizeof(b.s[j]));
			if (sweep < 2)
				b.more = cur[i].more | want[i].more | EG_FLOW_MORE_HASH;
			if (bucket_write(g, i, &b))
				goto out;
		}
	rc = 0;
out:
	free(cur);
	free(want);
	return rc;
}
