// SPDX-License-Identifier: GPL-2.0
/* edgegate.bpf.c - the XDP edge gate.
 *
 * Order of checks (issue 3): parse L3 -> allow (bypass) -> deny (static, manual,
 * bans; with expiry) -> [L4 parse] -> for traffic to a protected port: revoked
 * flows, SYN token bucket, packet token bucket -> pass.
 * The source checks run before anything protocol-specific, so a denied source is
 * dropped whatever it sends (fragments, odd L4, truncated L4).
 * Malformed (an IP ethertype whose headers do not parse) is dropped; non-IP passes.
 * Observe mode turns every drop into a pass, counted under the reason and under
 * EG_REASON_OBSERVED. Layouts: include/edgegate/abi.h; design: docs/gate.md. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "edgegate/abi.h"
#include "parse.h"

char LICENSE[] SEC("license") = "GPL";

/* Sizes of the big tables are set by userspace before load (gate.max_deny,
 * gate.max_sources); these are defaults. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct eg_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_cfg_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_PORTS_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_ports_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_addr);
	__type(value, struct eg_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_deny_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_lpm_key);
	__type(value, struct eg_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_deny_lpm_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EG_MAX_ALLOW);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_addr);
	__type(value, struct eg_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_allow_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, EG_MAX_ALLOW);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_lpm_key);
	__type(value, struct eg_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_allow_lpm_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct eg_addr);
	__type(value, struct eg_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_rate_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EG_MAX_FLOWS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_flow_key);
	__type(value, struct eg_flow_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_rflow_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EG_MAX_SESSIONS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_sess_key);
	__type(value, struct eg_sess_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_rsess_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EG_REASON__COUNT);
	__type(key, __u32);
	__type(value, struct eg_stat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_stats_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct eg_flood);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_flood_v1 SEC(".maps");

#define EG_CAS_TRIES 4

static __always_inline void count(__u32 reason, __u64 bytes)
{
	struct eg_stat *s = bpf_map_lookup_elem(&eg_stats_v1, &reason);

	if (s) { /* per-CPU slot: plain adds are race-free */
		s->packets++;
		s->bytes += bytes;
	}
}

static __always_inline int verdict_drop(const struct eg_cfg *cfg, __u32 reason, __u64 bytes)
{
	count(reason, bytes);
	if (cfg->flags & EG_CFG_OBSERVE) {
		count(EG_REASON_OBSERVED, bytes);
		return XDP_PASS;
	}
	return XDP_DROP;
}

static __always_inline int verdict_pass(__u32 reason, __u64 bytes)
{
	count(reason, bytes);
	return XDP_PASS;
}

static __always_inline int live(const struct eg_rule *r, __u64 now)
{
	return r && (r->expires_ns == 0 || now < r->expires_ns);
}

/* Exact hash first (one hash of the address), LPM only when the trie is non-empty. */
static __always_inline struct eg_rule *match(void *exact, void *lpm, __u32 n_exact, __u32 n_lpm,
					     const struct eg_addr *a, __u64 now)
{
	struct eg_rule *r;

	if (n_exact) {
		r = bpf_map_lookup_elem(exact, a);
		if (live(r, now))
			return r;
	}
	if (n_lpm) {
		struct eg_lpm_key k = { .plen = 128 };

		__builtin_memcpy(k.a, a->a, 16);
		r = bpf_map_lookup_elem(lpm, &k);
		if (live(r, now))
			return r;
	}
	return NULL;
}

static __always_inline int port_protected(__u16 port)
{
	__u32 w = port >> 6;
	__u64 *bits = bpf_map_lookup_elem(&eg_ports_v1, &w);

	return bits && (*bits & (1ull << (port & 63)));
}

/* GCRA (virtual scheduling): tat is when the bucket would be full again. A packet
 * conforms when tat - now <= (burst - 1) * T; it then moves tat to max(tat, now)+T.
 * Equivalent to a token bucket of `burst` tokens refilled at `rate`/s. One u64
 * word, so concurrent CPUs update it with compare-and-swap; a CAS that keeps
 * losing (EG_CAS_TRIES) means the source is hammering several CPUs at once and
 * is treated as over the limit (fail closed). */
static __always_inline int gcra_conform(__u64 *tat, __u64 now, __u32 rate, __u32 burst)
{
	__u64 t = 1000000000ull / rate;
	__u64 tol = (burst ? burst - 1 : 0) * t;
	int i;

	if (t == 0)
		t = 1;
#pragma unroll
	for (i = 0; i < EG_CAS_TRIES; i++) {
		__u64 old = *(volatile __u64 *)tat;
		__u64 base = old > now ? old : now;

		if (base - now > tol)
			return 0;
		if (__sync_val_compare_and_swap(tat, old, base + t) == old)
			return 1;
	}
	return 0;
}

/* New-source insertions per CPU per interval; past the limit the table is churning
 * (a spoofed-source flood) and new sources are not tracked ("shed"). Per-CPU fixed
 * window, no shared cache line on the hot path. */
static __always_inline int flood_allows_insert(const struct eg_cfg *cfg, __u64 now)
{
	__u32 z = 0;
	struct eg_flood *f;

	if (!cfg->flood_max_new)
		return 1;
	f = bpf_map_lookup_elem(&eg_flood_v1, &z);
	if (!f)
		return 1;
	if (now - f->window_start_ns >= cfg->flood_interval_ns) {
		f->window_start_ns = now;
		f->inserted = 0;
	}
	if (f->inserted >= cfg->flood_max_new)
		return 0;
	f->inserted++;
	return 1;
}

static __always_inline void rate_key(const struct eg_pkt *p, const struct eg_cfg *cfg,
				     struct eg_addr *k)
{
	__u32 plen = cfg->v6_plen;
	int i;

	*k = p->src;
	if (!p->v6 || plen >= 128 || plen == 0)
		return;
#pragma unroll
	for (i = 0; i < 16; i++) {
		__u32 lo = i * 8;

		if (lo >= plen)
			k->a[i] = 0;
		else if (lo + 8 > plen)
			k->a[i] &= (__u8)(0xff << (8 - (plen - lo)));
	}
}

/* Returns an EG_REASON_* for a packet over a bucket, EG_REASON_SHED when the
 * source could not be tracked, EG_REASON_PASS otherwise. */
static __always_inline __u32 rate_check(const struct eg_pkt *p, const struct eg_cfg *cfg, __u64 now)
{
	int syn = p->l4proto == IPPROTO_TCP &&
		  (p->tcp_flags & (EG_TCP_SYN | EG_TCP_ACK)) == EG_TCP_SYN;
	struct eg_bucket *b;
	struct eg_addr k;

	if (!(syn && cfg->syn_rate) && !cfg->pkt_rate)
		return EG_REASON_PASS;
	rate_key(p, cfg, &k);
	b = bpf_map_lookup_elem(&eg_rate_v1, &k);
	if (!b) {
		struct eg_bucket nb = { .created_ns = now };

		if (!flood_allows_insert(cfg, now))
			return EG_REASON_SHED;
		/* BPF_NOEXIST: if another CPU created it meanwhile, use theirs */
		bpf_map_update_elem(&eg_rate_v1, &k, &nb, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&eg_rate_v1, &k);
		if (!b)
			return EG_REASON_SHED;
	}
	if (cfg->pkt_rate && !gcra_conform(&b->pkt_tat, now, cfg->pkt_rate, cfg->pkt_burst))
		return EG_REASON_PKTLIMIT;
	if (syn && cfg->syn_rate && !gcra_conform(&b->syn_tat, now, cfg->syn_rate, cfg->syn_burst))
		return EG_REASON_RATELIMIT;
	return EG_REASON_PASS;
}

static __always_inline int flow_revoked(const struct eg_pkt *p, __u64 now)
{
	struct eg_flow_key k = {};
	struct eg_flow_val *v;

	__builtin_memcpy(k.saddr, p->src.a, 16);
	__builtin_memcpy(k.daddr, p->dst.a, 16);
	k.sport = p->sport;
	k.dport = p->dport;
	k.proto = IPPROTO_TCP;
	v = bpf_map_lookup_elem(&eg_rflow_v1, &k);
	return v && (v->expires_ns == 0 || now < v->expires_ns);
}

SEC("xdp")
int edgegate_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct eg_pkt p = {};
	struct eg_cfg *cfg;
	struct eg_rule *r;
	__u32 zero = 0, why;
	__u64 now;
	int rc;

	cfg = bpf_map_lookup_elem(&eg_cfg_v1, &zero);
	if (!cfg || !(cfg->flags & EG_CFG_ENABLED))
		return XDP_PASS;

	rc = eg_parse_l3(data, data_end, &p);
	if (rc == EG_P_NONIP)
		return verdict_pass(EG_REASON_NONIP, bytes);
	if (rc != EG_P_OK)
		return verdict_drop(cfg, EG_REASON_MALFORMED, bytes);

	now = bpf_ktime_get_ns() + cfg->clock_offset_ns;
	if (match(&eg_allow_v1, &eg_allow_lpm_v1, cfg->n_allow, cfg->n_allow_lpm, &p.src, now))
		return verdict_pass(EG_REASON_ALLOW, bytes);
	r = match(&eg_deny_v1, &eg_deny_lpm_v1, cfg->n_deny, cfg->n_deny_lpm, &p.src, now);
	if (r)
		return verdict_drop(cfg, r->reason == EG_RULE_BAN ? EG_REASON_BAN : EG_REASON_DENY,
				    bytes);

	if (eg_parse_l4(data, data_end, &p) != EG_P_OK)
		return verdict_drop(cfg, EG_REASON_MALFORMED, bytes);
	if (!p.has_ports || !port_protected(p.dport))
		return verdict_pass(EG_REASON_PASS, bytes);

	if (p.l4proto == IPPROTO_TCP && flow_revoked(&p, now))
		return verdict_drop(cfg, EG_REASON_REVOKED, bytes);
	why = rate_check(&p, cfg, now);
	if (why == EG_REASON_RATELIMIT || why == EG_REASON_PKTLIMIT)
		return verdict_drop(cfg, why, bytes);
	return verdict_pass(why, bytes);
}
