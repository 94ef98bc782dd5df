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

/* The slot of the bucket holding k, else an empty one, else -1. */
static int slot_for(const struct eg_flow_bucket *b, const struct eg_flow_key *k)
{
	for (int j = 0; j < 2; j++)
		if (key_eq(&b->s[j].key, k))
			return j;
	for (int j = 0; j < 2; j++)
		if (key_empty(&b->s[j].key))
			return j;
	return -1;
}

/* The record first, then the bucket (a slot or `more`): once both are written XDP
 * finds the flow either way; an error is returned, never swallowed. Only one slot's
 * words (or `more`) change per write. */
int eg_flows_put(struct eg_gate *g, const struct eg_flow_key *k, const struct eg_flow_val *v)
{
	__u32 i = eg_flow_slot_of(k);
	struct eg_flow_bucket b;
	int j;

	if (bucket_read(g, i, &b) || bpf_map_update_elem(g->fd[M_FLOWS], k, v, BPF_ANY))
		return -1;
	j = slot_for(&b, k);
	if (j >= 0) {
		b.s[j].key = *k;
		b.s[j].expires_ns = v->expires_ns;
	} else if (b.more) {
		return 0;
	} else {
		b.more = 1;
	}
	return bucket_write(g, i, &b);
}

/* The slot first (emptied, `more` kept), then the record. */
int eg_flows_del(struct eg_gate *g, const struct eg_flow_key *k)
{
	__u32 i = eg_flow_slot_of(k);
	struct eg_flow_bucket b;

	if (bucket_read(g, i, &b) == 0)
		for (int j = 0; j < 2; j++)
			if (key_eq(&b.s[j].key, k)) {
				memset(&b.s[j], 0, sizeof(b.s[j]));
				if (bucket_write(g, i, &b))
					return -1;
			}
	return bpf_map_delete_elem(g->fd[M_FLOWS], k) ? -1 : 0;
}

/* The buckets from the record (GC, after expired flows went): a slot keeps its flow
 * while the record has it, empty slots take a flow, `more` is set exactly where a
 * bucket overflows. A slot changing flow is emptied with `more` set first (XDP then
 * asks the record, which holds both), never rewritten from one key to another. */
int eg_flows_rebuild(struct eg_gate *g)
{
	struct eg_flow_bucket *cur = calloc(EG_FLOWSLOTS, sizeof(*cur));
	struct eg_flow_bucket *want = calloc(EG_FLOWSLOTS, sizeof(*want));
	struct eg_flow_key k, prev;
	struct eg_flow_val v;
	bool have = false;
	int rc = -1;

	if (!cur || !want)
		goto out;
	for (__u32 i = 0; i < EG_FLOWSLOTS; i++) {
		if (bucket_read(g, i, &cur[i]))
			goto out;
		for (int j = 0; j < 2; j++) /* keep the flows the record still has */
			if (!key_empty(&cur[i].s[j].key) &&
			    bpf_map_lookup_elem(g->fd[M_FLOWS], &cur[i].s[j].key, &v) == 0) {
				want[i].s[j].key = cur[i].s[j].key;
				want[i].s[j].expires_ns = v.expires_ns;
			}
	}
	while (bpf_map_get_next_key(g->fd[M_FLOWS], have ? &prev : NULL, &k) == 0) {
		__u32 i = eg_flow_slot_of(&k);
		int j = slot_for(&want[i], &k);

		prev = k;
		have = true;
		if (j < 0) {
			want[i].more = 1;
			continue;
		}
		if (key_eq(&want[i].s[j].key, &k) || bpf_map_lookup_elem(g->fd[M_FLOWS], &k, &v))
			continue;
		want[i].s[j].key = k;
		want[i].s[j].expires_ns = v.expires_ns;
	}
	for (__u32 i = 0; i < EG_FLOWSLOTS; i++) {
		struct eg_flow_bucket mid = cur[i];
		bool moved = false;

		if (!memcmp(&cur[i], &want[i], sizeof(want[i])))
			continue;
		for (int j = 0; j < 2; j++)
			if (!key_empty(&cur[i].s[j].key) && !key_eq(&cur[i].s[j].key, &want[i].s[j].key)) {
				memset(&mid.s[j], 0, sizeof(mid.s[j]));
				mid.more = 1;
				moved = true;
			}
		if ((moved && bucket_write(g, i, &mid)) || bucket_write(g, i, &want[i]))
			goto out;
	}
	rc = 0;
out:
	free(cur);
	free(want);
	return rc;
}
