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

/* Deny/allow rules, IPv4 and IPv6 apart (abi.h, docs/gate.md "Kernel maps"). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_key4);
	__type(value, struct eg_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_deny4_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EG_MAX_ALLOW);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_key4);
	__type(value, struct eg_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_allow4_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_key6);
	__type(value, struct eg_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_deny6_v3 SEC(".maps");

/* IPv6 deny rules of /64 or shorter, keyed on the upper 64 bits (abi.h eg_key6s). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1048576);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_key6s);
	__type(value, struct eg_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_deny6s_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EG_MAX_ALLOW);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_key6);
	__type(value, struct eg_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_allow6_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_IDX4_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_deny4_idx_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_IDX4_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_allow4_idx_v2 SEC(".maps");

/* The deny rules direct-mapped (abi.h eg_slots4/eg_slots6), mapped into the writers'
 * address space: XDP confirms a rule with an array read and compares. Userspace sizes
 * both from gate.max_deny (or the pinned array) and sets the log2s below to match
 * before load; .rodata is frozen then, so the verifier sees them as constants. */
const volatile __u32 eg_slots4_log2 = EG_SLOTS4_LOG2;
const volatile __u32 eg_slots6_log2 = EG_SLOTS6_LOG2;
const volatile __u32 eg_slots6l_log2 = EG_SLOTS6_LOG2;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_SLOTS4);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct eg_slots4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_deny4_slots_v1 SEC(".maps");

/* The IPv4 allow rules direct-mapped the same way, at a fixed size (EG_MAX_ALLOW rules). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_ALLOW4_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct eg_slots4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_allow4_slots_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_SLOTS6);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct eg_slots6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_deny6s_slots_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_SLOTS6);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct eg_slots6l);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_deny6_slots_v2 SEC(".maps");

/* The IPv6 allow rules direct-mapped the same way, at a fixed size (EG_MAX_ALLOW rules). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_ALLOW6_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct eg_slots6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_allow6s_slots_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_ALLOW6_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct eg_slots6l);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_allow6_slots_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_IDX6_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_deny6_idx_v3 SEC(".maps");

/* The same index for the IPv6 allow rules, so an allow lookup is bounded like a deny. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_IDX6_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_allow6_idx_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_TBL__COUNT);
	__type(key, __u32);
	__type(value, struct eg_table);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_tables_v2 SEC(".maps");

/* Free-text reasons of rules: read and written by userspace only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EG_MAX_NOTES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct eg_note_key);
	__type(value, struct eg_note);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_notes_v2 SEC(".maps");

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
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_FLOWSLOTS);
	__type(key, __u32);
	__type(value, struct eg_flow_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_rflow_slots_v1 SEC(".maps");

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
} eg_stats_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct eg_flood);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_flood_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EG_SYNBOX_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} eg_synbox_v1 SEC(".maps");

#define EG_CAS_TRIES 4

static __always_inline void count(__u32 reason, __u64 bytes)
{
	struct eg_stat *s = bpf_map_lookup_elem(&eg_stats_v2, &reason);

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

/* The clock: bpf_ktime_get_coarse_ns(), CLOCK_MONOTONIC as of the last tick (1-4 ms
 * behind, HZ), because bpf_ktime_get_ns() costs ~35 ns per call in a KVM guest, more
 * than the whole per-packet budget (issue 14). Expiry is then late by at most a tick;
 * buckets keep their rate, with bursts granular to a tick (docs/gate.md). Read only
 * when a rule with an expiry, a bucket or a flow needs it. */
struct eg_clock {
	__u64 now;
	__s64 offset;
};

static __always_inline __u64 clock_now(struct eg_clock *c)
{
	if (!c->now)
		c->now = bpf_ktime_get_coarse_ns() + c->offset;
	return c->now;
}

/* The prefix lengths (bit L = /L) of each combination of IPv4 length groups (abi.h
 * EG_G4_LENS): one read of constant data instead of expanding the /24's byte bit by
 * bit on every packet. */
#define G4(b) (((b) & 1 ? EG_G4_LENS(0) : 0) | ((b) & 2 ? EG_G4_LENS(1) : 0) |           \
	       ((b) & 4 ? EG_G4_LENS(2) : 0) | ((b) & 8 ? EG_G4_LENS(3) : 0) |            \
	       ((b) & 16 ? EG_G4_LENS(4) : 0) | ((b) & 32 ? EG_G4_LENS(5) : 0) |          \
	       ((b) & 64 ? EG_G4_LENS(6) : 0) | ((b) & 128 ? EG_G4_LENS(7) : 0))
#define G4x4(b) G4(b), G4((b) + 1), G4((b) + 2), G4((b) + 3)
#define G4x16(b) G4x4(b), G4x4((b) + 4), G4x4((b) + 8), G4x4((b) + 12)
#define G4x64(b) G4x16(b), G4x16((b) + 16), G4x16((b) + 32), G4x16((b) + 48)
static const volatile __u64 g4_lens[256] = { G4x64(0), G4x64(64), G4x64(128), G4x64(192) };

/* Index of the highest set bit of x (x != 0): the bit isolated, then a de Bruijn
 * multiply and a table read. A candidate set of one length (the usual case: one length
 * of a group in use) is that bit already; others are smeared down first (x | x >> 1 ...
 * then x ^ x >> 1). 4 dependent operations and a load for one bit, 16 for more, where
 * the binary search it replaces took about 27 on every call. Both ways end in the same
 * read with the same bounds, so the verifier's states join again after it. */
#define EG_DEBRUIJN64 0x03f79d71b4cb0a89ull
static const volatile __u8 debruijn64[64] = {
	0,  1,  48, 2,  57, 49, 28, 3,  61, 58, 50, 42, 38, 29, 17, 4,
	62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5,
	63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11,
	46, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9,  13, 8,  7,  6,
};

static __always_inline __u32 hibit(__u64 x)
{
	if (x & (x - 1)) {
		x |= x >> 1;
		x |= x >> 2;
		x |= x >> 4;
		x |= x >> 8;
		x |= x >> 16;
		x |= x >> 32;
		x ^= x >> 1;
	}
	return debruijn64[(x * EG_DEBRUIJN64) >> 58] & 63;
}

static __always_inline int live_at(const struct eg_rule *r, __s64 offset)
{
	return r->expires_ns == 0 || bpf_ktime_get_coarse_ns() + offset < r->expires_ns;
}

/* The lookups below are written once per table (macros) so every
 * bpf_map_lookup_elem() names one map: the verifier can then inline array lookups
 * and call the hash lookup directly. A map pointer chosen at run time would cost
 * an indirect call, which retpolines make expensive. */

/* One rule lookup: 1 + the rule's reason when a live rule of exactly this length
 * contains the address, else 0. */
#define EG_LOOKUP4(name, map)                                                          \
	static __always_inline int name(__u32 ip, __u32 len, __s64 offset)               \
	{                                                                                \
		struct eg_key4 k = { .plen = len };                                      \
		struct eg_rule *r;                                                       \
                                                                                         \
		k.addr = bpf_htonl(len ? ip & (0xffffffffu << ((32 - len) & 31)) : 0);   \
		r = bpf_map_lookup_elem(&map, &k);                                       \
		return r && live_at(r, offset) ? 1 + (int)(r->reason & 0xff) : 0;        \
	}
EG_LOOKUP4(lookup_deny4_hash, eg_deny4_v2)
EG_LOOKUP4(lookup_allow4_hash, eg_allow4_v2)

#define READ_ONCE64(x) (*(volatile __u64 *)&(x))
#define READ_ONCE32(x) (*(volatile __u32 *)&(x))

static __always_inline int slot_live(__u64 exp, __s64 offset)
{
	return exp == 0 || bpf_ktime_get_coarse_ns() + offset < exp;
}

/* The rule (ip, len) from its bucket of an IPv4 slot array (eg_deny4_slots_v1,
 * eg_allow4_slots_v1): 1 + reason when a slot holds it live, 0 when none does (or it
 * expired), -1 when the bucket cannot tell (`more`: rules of this bucket live in the
 * hash only). `more` is read before the slots (a writer clears it only after filling
 * them), a key before its expiry (a writer stores the expiry first). Written once per
 * array (a macro) so each lookup names its map. */
#define EG_SLOT4_FIND(name, map, log2)                                                   \
	static __always_inline int name(__u32 m /* masked */, __u32 len, __s64 offset)   \
	{                                                                                \
		__u32 i = eg_slots4_of(m, len, log2);                                    \
		struct eg_slots4 *b = bpf_map_lookup_elem(&map, &i);                     \
		__u64 want = (__u64)m << 24 | len | EG_SLOT_USED, k;                     \
		__u32 more;                                                              \
                                                                                         \
		if (!b)                                                                  \
			return -1;                                                       \
		more = READ_ONCE32(b->more);                                             \
		k = READ_ONCE64(b->s[0].key);                                            \
		if (k >> 8 == want)                                                      \
			return slot_live(READ_ONCE64(b->s[0].expires_ns), offset) ?      \
				       1 + (int)(k & 0xff) : 0;                          \
		k = READ_ONCE64(b->s[1].key);                                            \
		if (k >> 8 == want)                                                      \
			return slot_live(READ_ONCE64(b->s[1].expires_ns), offset) ?      \
				       1 + (int)(k & 0xff) : 0;                          \
		k = READ_ONCE64(b->s[2].key);                                            \
		if (k >> 8 == want)                                                      \
			return slot_live(READ_ONCE64(b->s[2].expires_ns), offset) ?      \
				       1 + (int)(k & 0xff) : 0;                          \
		return more ? -1 : 0;                                                    \
	}
EG_SLOT4_FIND(slot4_find, eg_deny4_slots_v1, eg_slots4_log2)
EG_SLOT4_FIND(slot4_find_allow, eg_allow4_slots_v1, EG_ALLOW4_SLOTS_LOG2)

/* A rule of exactly this length: its bucket, the hash only when the bucket cannot
 * tell. */
static __always_inline int lookup_deny4(__u32 ip, __u32 len, __s64 offset)
{
	__u32 m = len ? ip & (0xffffffffu << ((32 - len) & 31)) : 0;
	int r = slot4_find(m, len, offset);

	return r >= 0 ? r : lookup_deny4_hash(ip, len, offset);
}

static __always_inline int lookup_allow4(__u32 ip, __u32 len, __s64 offset)
{
	__u32 m = len ? ip & (0xffffffffu << ((32 - len) & 31)) : 0;
	int r = slot4_find_allow(m, len, offset);

	return r >= 0 ? r : lookup_allow4_hash(ip, len, offset);
}

static __always_inline void key6(struct eg_key6 *k, __u64 hi, __u64 lo, __u32 len)
{
	if (len < 64) {
		hi = len ? hi & (~0ull << ((64 - len) & 63)) : 0;
		lo = 0;
	} else if (len < 128) {
		lo = len > 64 ? lo & (~0ull << ((128 - len) & 63)) : 0;
	}
	k->plen = len;
	hi = bpf_cpu_to_be64(hi);
	lo = bpf_cpu_to_be64(lo);
	__builtin_memcpy(k->a, &hi, 8);
	__builtin_memcpy(k->a + 8, &lo, 8);
}

#define EG_LOOKUP6(name, map)                                                          \
	static __always_inline int name(__u64 hi, __u64 lo, __u32 len, __s64 offset)    \
	{                                                                                \
		struct eg_key6 k;                                                        \
		struct eg_rule *r;                                                       \
                                                                                         \
		key6(&k, hi, lo, len);                                                   \
		r = bpf_map_lookup_elem(&map, &k);                                       \
		return r && live_at(r, offset) ? 1 + (int)(r->reason & 0xff) : 0;        \
	}
EG_LOOKUP6(lookup_deny6_hash, eg_deny6_v3)
EG_LOOKUP6(lookup_allow6, eg_allow6_v2)

/* A long IPv6 rule (65..128) from its bucket of eg_deny6_slots_v2 (or the allow one),
 * as slot4_find: `more` and both tags in one load (abi.h eg_slots6l), then the
 * addresses of a slot whose tag names this length. */
#define EG_SLOT6L_FIND(name, map, bucket_of, log2)                                       \
	static __always_inline int name(__u64 hi, __u64 lo /* masked */, __u32 len,      \
					__s64 offset)                                    \
	{                                                                                \
		__u32 i = bucket_of(hi, lo, len, log2);                                  \
		struct eg_slots6l *b = bpf_map_lookup_elem(&map, &i);                    \
		__u64 head;                                                              \
		__u32 tag;                                                               \
                                                                                         \
		if (!b)                                                                  \
			return -1;                                                       \
		head = READ_ONCE64(*(__u64 *)b); /* more | tag[0] << 32 | tag[1] << 48 */ \
		tag = (__u32)(head >> 32) & 0xffff;                                      \
		if (tag >> 8 == len && READ_ONCE64(b->s[0].hi) == hi &&                  \
		    READ_ONCE64(b->s[0].lo) == lo)                                       \
			return slot_live(READ_ONCE64(b->s[0].expires_ns), offset) ?      \
				       1 + (int)(tag & 0xff) : 0;                        \
		tag = (__u32)(head >> 48);                                               \
		if (tag >> 8 == len && READ_ONCE64(b->s[1].hi) == hi &&                  \
		    READ_ONCE64(b->s[1].lo) == lo)                                       \
			return slot_live(READ_ONCE64(b->s[1].expires_ns), offset) ?      \
				       1 + (int)(tag & 0xff) : 0;                        \
		return (__u32)head ? -1 : 0;                                             \
	}
EG_SLOT6L_FIND(slot6l_find, eg_deny6_slots_v2, eg_deny6l_of, eg_slots6l_log2)
EG_SLOT6L_FIND(slot6l_find_allow, eg_allow6_slots_v1, eg_slots6l_of, EG_ALLOW6_SLOTS_LOG2)

/* One slot of a /96's bucket (eg_deny6_slots_v2): 1 + reason when it holds a live rule
 * of 96..128 that contains hi:lo, else 0. tag is the slot's, from the bucket's head. */
static __always_inline int slot6l_holds96(const struct eg_slot6l *sl, __u32 tag, __u64 hi, __u64 lo,
					  __s64 offset)
{
	__u32 len = tag >> 8;

	if (len < 96 || READ_ONCE64(sl->hi) != hi ||
	    READ_ONCE64(sl->lo) != (lo & (~0ull << ((128 - len) & 63))))
		return 0;
	return slot_live(READ_ONCE64(sl->expires_ns), offset) ? 1 + (int)(tag & 0xff) : 0;
}

/* Every deny length of 96..128 at once (abi.h eg_deny6l_of): the address's /96 has one
 * bucket, which holds all such rules around it unless `more` says some live in the
 * hash only. 1 + reason of the longer live slot that contains the address, 0 when
 * none does, -1 when the bucket cannot tell (`more`: then one length at a time). */
static __always_inline int deny6_at96(__u64 hi, __u64 lo, __s64 offset)
{
	__u32 i = eg_deny6l_of(hi, lo, 96, eg_slots6l_log2);
	struct eg_slots6l *b = bpf_map_lookup_elem(&eg_deny6_slots_v2, &i);
	__u64 head;
	__u32 t0, t1;
	int r0, r1;

	if (!b)
		return -1;
	head = READ_ONCE64(*(__u64 *)b); /* more | tag[0] << 32 | tag[1] << 48 */
	if ((__u32)head)
		return -1;
	t0 = (__u32)(head >> 32) & 0xffff;
	t1 = (__u32)(head >> 48);
	r0 = slot6l_holds96(&b->s[0], t0, hi, lo, offset);
	if (r0 && (t0 >> 8) >= (t1 >> 8))
		return r0; /* the other slot's rule, if it contains the address, is not longer */
	r1 = slot6l_holds96(&b->s[1], t1, hi, lo, offset);
	return r1 ? r1 : r0; /* both contain it (a /96 and a /128 in it): the longer */
}

/* The allow table keeps one bucket per length: never answers for a group. */
static __always_inline int allow6_at96(__u64 hi, __u64 lo, __s64 offset)
{
	return -1;
}

/* A deny rule of length 65..128: its bucket, the hash only when the bucket cannot tell. */
static __always_inline int lookup_deny6(__u64 hi, __u64 lo, __u32 len, __s64 offset)
{
	__u64 mlo = len >= 128 ? lo : lo & (~0ull << ((128 - len) & 63));
	int r = slot6l_find(hi, mlo, len, offset);

	return r >= 0 ? r : lookup_deny6_hash(hi, lo, len, offset);
}

/* A deny rule of length 0..64 in the short-key hash (abi.h eg_key6s). lo is unused. */
static __always_inline int lookup_deny6s_hash(__u64 m /* masked */, __u32 len, __s64 offset)
{
	struct eg_key6s k = { .plen = len };
	struct eg_rule *r;
	__u64 be = bpf_cpu_to_be64(m);

	__builtin_memcpy(k.a, &be, 8);
	r = bpf_map_lookup_elem(&eg_deny6s_v1, &k);
	return r && live_at(r, offset) ? 1 + (int)(r->reason & 0xff) : 0;
}

/* As slot4_find, for a short IPv6 rule (eg_deny6s_slots_v1 or the allow one); a
 * slot's tag is read before its address (a writer stores the address first). */
#define EG_SLOT6_FIND(name, map, log2)                                                   \
	static __always_inline int name(__u64 m, __u32 len, __s64 offset)                \
	{                                                                                \
		__u32 i = eg_slots6_of(m, len, log2), want = len | EG_SLOT_USED, tag;    \
		struct eg_slots6 *b = bpf_map_lookup_elem(&map, &i);                     \
		__u32 more;                                                              \
                                                                                         \
		if (!b)                                                                  \
			return -1;                                                       \
		more = READ_ONCE32(b->more);                                             \
		tag = READ_ONCE32(b->s[0].tag);                                          \
		if (tag >> 8 == want && READ_ONCE64(b->s[0].hi) == m)                    \
			return slot_live(READ_ONCE64(b->s[0].expires_ns), offset) ?      \
				       1 + (int)(tag & 0xff) : 0;                        \
		tag = READ_ONCE32(b->s[1].tag);                                          \
		if (tag >> 8 == want && READ_ONCE64(b->s[1].hi) == m)                    \
			return slot_live(READ_ONCE64(b->s[1].expires_ns), offset) ?      \
				       1 + (int)(tag & 0xff) : 0;                        \
		return more ? -1 : 0;                                                    \
	}
EG_SLOT6_FIND(slot6_find, eg_deny6s_slots_v1, eg_slots6_log2)
EG_SLOT6_FIND(slot6_find_allow, eg_allow6s_slots_v1, EG_ALLOW6_SLOTS_LOG2)

static __always_inline int lookup_deny6s(__u64 hi, __u64 lo, __u32 len, __s64 offset)
{
	__u64 m = len ? hi & (~0ull << ((64 - len) & 63)) : 0;
	int r = slot6_find(m, len, offset);

	return r >= 0 ? r : lookup_deny6s_hash(m, len, offset);
}

/* An IPv6 allow rule of length 65..128, or of 0..64: its bucket, the hash (every
 * length) only when the bucket cannot tell. */
static __always_inline int lookup_allow6l(__u64 hi, __u64 lo, __u32 len, __s64 offset)
{
	__u64 mlo = len >= 128 ? lo : lo & (~0ull << ((128 - len) & 63));
	int r = slot6l_find_allow(hi, mlo, len, offset);

	return r >= 0 ? r : lookup_allow6(hi, lo, len, offset);
}

static __always_inline int lookup_allow6s(__u64 hi, __u64 lo, __u32 len, __s64 offset)
{
	__u64 m = len ? hi & (~0ull << ((64 - len) & 63)) : 0;
	int r = slot6_find_allow(m, len, offset);

	return r >= 0 ? r : lookup_allow6(hi, lo, len, offset);
}

/* One IPv6 allow length: a global function, verified once for any length. Inlined
 * into the candidate loop beside the deny one, the slot reads make more states than
 * the verifier walks (E2BIG); a call costs a few ns, and an allow list has few lengths. */
__noinline int eg_allow6_at(__u64 hi, __u64 lo, __u32 len, __s64 offset)
{
	if (len > 128)
		return 0;
	return len > EG_DENY6S_MAXLEN ? lookup_allow6l(hi, lo, len, offset)
				      : lookup_allow6s(hi, lo, len, offset);
}

static __always_inline const struct eg_table *table(__u32 id)
{
	return bpf_map_lookup_elem(&eg_tables_v2, &id);
}

/* Longest live IPv4 rule containing ip (host order). One array read (the /24's
 * byte of length groups) decides which lengths can match at all; then one hash
 * lookup per candidate length, longest first (usually one). Returns 1 + reason
 * or 0. Inlined into eg_match4 (below), a global function: the caller sees a
 * scalar, and the loop is checked without the rest of the program around it. */
#define EG_MATCH4(name, tbl, idxmap, lookup, first32)                                    \
	static __always_inline int name(__u32 ip, __s64 offset)                         \
	{                                                                                \
		const struct eg_table *t = NULL;                                         \
		__u32 slot = ip >> 8, w = slot >> 3, i;                                  \
		__u64 *word, groups, cand = 0;                                           \
		int found = 0;                                                           \
                                                                                         \
		/* The allow table is usually empty: its lengths (a line every packet    \
		 * reads anyway) say so before its index is read. The deny table is      \
		 * usually not: its index byte first, which is a promise when clear, and  \
		 * the lengths only when a group other than the /32 is named (a flood of  \
		 * denied /32s then reads one line fewer). */                            \
		if (!first32) {                                                          \
			t = table(tbl);                                                  \
			if (!t || !t->lens[0])                                           \
				return 0;                                                \
		}                                                                        \
		word = bpf_map_lookup_elem(&idxmap, &w);                                 \
		if (!word)                                                               \
			return 0;                                                        \
		groups = (*word >> ((slot & 7) * 8)) & 0xff;                             \
		if (!groups)                                                             \
			return 0;                                                        \
		/* The /32 first: the longest length decides alone when it matches (a    \
		 * flood of denied sources), and the other lengths are worked out only   \
		 * when it does not. */                                                  \
		if (first32 && (groups & 1)) {                                           \
			found = lookup(ip, 32, offset);                                  \
			if (found)                                                       \
				return found;                                            \
			groups &= ~1ull; /* the /32 is settled */                        \
			if (!groups)                                                     \
				return 0;                                                \
		}                                                                        \
		if (!t)                                                                  \
			t = table(tbl);                                                  \
		if (!t)                                                                  \
			return 0;                                                        \
		cand = g4_lens[groups & 0xff]; /* the lengths of the byte's groups */    \
		cand &= t->lens[0];                                                      \
		for (i = 0; i < 33 && cand && !found; i++) {                             \
			__u32 len = hibit(cand);                                         \
                                                                                         \
			cand &= ~(1ull << (len & 63));                                   \
			found = lookup(ip, len, offset);                                 \
		}                                                                        \
		return found;                                                            \
	}
EG_MATCH4(eg_match_deny4, EG_TBL_DENY4, eg_deny4_idx_v2, lookup_deny4, 1)
EG_MATCH4(eg_match_allow4, EG_TBL_ALLOW4, eg_allow4_idx_v2, lookup_allow4, 0)

/* The lengths of 48 or more that each value of a /48's index byte (eg_deny6_idx_v3,
 * eg_allow6_idx_v1) allows, as the three words of eg_table.lens: one read of constant
 * data (.rodata) instead of some thirty instructions expanding the byte per packet,
 * as g4_lens does for IPv4. */
#define G6M0(b) (((b) >> 4 & 1) * 0xff00000000000000ull | ((b) >> 5 & 1) * 0x00fe000000000000ull | \
		 ((b) >> 6 & 1) * 0x0001000000000000ull)
#define G6M1(b) (((b) >> 1 & 1) * 0xfffffffe00000000ull | ((b) >> 2 & 1) * 0x00000001fffffffeull | \
		 ((b) >> 3 & 1))
#define G6(b) { G6M0(b), G6M1(b), (b) & 1ull }
#define G6x4(b) G6(b), G6((b) + 1), G6((b) + 2), G6((b) + 3)
#define G6x16(b) G6x4(b), G6x4((b) + 4), G6x4((b) + 8), G6x4((b) + 12)
#define G6x64(b) G6x16(b), G6x16((b) + 16), G6x16((b) + 32), G6x16((b) + 48)
static const volatile __u64 g6_lens[256][3] = { G6x64(0), G6x64(64), G6x64(128), G6x64(192) };

/* Longest live IPv6 rule containing hi:lo (host order): one hash lookup per
 * candidate length, longest first. The candidates are the lengths in use under 48
 * and those of 48 or more that the /48's index byte (deny or allow index) names; the
 * deny table's lengths of 64 or less go to the short-key slots (lookup_short). at96
 * settles every length of 96..128 at once when it can (the deny table's /96 group:
 * deny6_at96), or returns -1 and the lengths are looked up one at a time. */
#define EG_MATCH6(name, tbl, lookup, lookup_short, idxmap, at96)                        \
	static __always_inline int name(__u64 hi, __u64 lo, __s64 offset)               \
	{                                                                                \
		const struct eg_table *t = table(tbl);                                   \
		__u64 cand[3], c;                                                        \
		int found = 0;                                                           \
		__u32 i;                                                                 \
                                                                                         \
		if (!t || !(t->lens[0] | t->lens[1] | t->lens[2]))                       \
			return 0;                                                        \
		cand[0] = t->lens[0];                                                    \
		cand[1] = t->lens[1];                                                    \
		cand[2] = t->lens[2];                                                    \
		{                                                                        \
			__u32 xb = eg_idx6_slot(hi), xw = xb >> 3;                       \
			__u64 *x = bpf_map_lookup_elem(&idxmap, &xw);                    \
                                                                                         \
			if (x) {                                                         \
				__u64 g = (*x >> ((xb & 7) * 8)) & 0xff;                 \
                                                                                         \
				/* no rule of 48 or more in this /48, none shorter */    \
				if (!g && !(cand[0] & EG_LENS6_SHORT))                   \
					return 0;                                        \
				cand[0] &= g6_lens[g][0] | EG_LENS6_SHORT;               \
				cand[1] &= g6_lens[g][1];                                \
				cand[2] &= g6_lens[g][2];                                \
			}                                                                \
		}                                                                        \
		/* 96..128 from one bucket when it can tell: those lengths are settled */ \
		if ((cand[2] & 1) || (cand[1] >> 32)) {                                  \
			int r96 = at96(hi, lo, offset);                                  \
                                                                                         \
			if (r96 >= 0) {                                                  \
				found = r96;                                             \
				cand[2] = 0;                                             \
				cand[1] &= 0xffffffffull;                                \
			}                                                                \
		}                                                                        \
		if (cand[2] & 1)                                                         \
			found = lookup(hi, lo, 128, offset);                             \
		c = cand[1] & ~1ull; /* 65..127 */                                       \
		for (i = 0; i < 63 && c && !found; i++) {                                \
			__u32 b = hibit(c) & 63;                                         \
                                                                                         \
			c &= ~(1ull << b);                                               \
			found = lookup(hi, lo, 64 + b, offset);                          \
		}                                                                        \
		if (!found && (cand[1] & 1))                                             \
			found = lookup_short(hi, lo, 64, offset);                        \
		c = cand[0]; /* 0..63 */                                                 \
		for (i = 0; i < 64 && c && !found; i++) {                                \
			__u32 b = hibit(c) & 63;                                         \
                                                                                         \
			c &= ~(1ull << b);                                               \
			found = lookup_short(hi, lo, b, offset);                         \
		}                                                                        \
		return found;                                                            \
	}
EG_MATCH6(eg_match_deny6, EG_TBL_DENY6, lookup_deny6, lookup_deny6s, eg_deny6_idx_v3, deny6_at96)
EG_MATCH6(eg_match_allow6, EG_TBL_ALLOW6, eg_allow6_at, eg_allow6_at, eg_allow6_idx_v1, allow6_at96)

/* The source's verdict from the rule tables: EG_SRC_ALLOW, or 1 + the reason of the
 * longest live deny rule, or 0. One global function per family (verified once, on its
 * own), so the allow and deny checks share one call. */
#define EG_SRC_ALLOW 0x10000
__noinline int eg_match4(__u32 ip, __s64 offset)
{
	if (eg_match_allow4(ip, offset))
		return EG_SRC_ALLOW;
	return eg_match_deny4(ip, offset);
}

__noinline int eg_match6(__u64 hi, __u64 lo, __s64 offset)
{
	if (eg_match_allow6(hi, lo, offset))
		return EG_SRC_ALLOW;
	return eg_match_deny6(hi, lo, offset);
}

static __always_inline __u32 match_src(const struct eg_pkt *p, struct eg_clock *clk)
{
	__u64 hi, lo;

	if (!p->v6)
		return (__u32)eg_match4(bpf_ntohl(p->src4), clk->offset);
	__builtin_memcpy(&hi, p->src.a, 8);
	__builtin_memcpy(&lo, p->src.a + 8, 8);
	return (__u32)eg_match6(bpf_be64_to_cpu(hi), bpf_be64_to_cpu(lo), clk->offset);
}

static __always_inline int v4mapped(const struct eg_addr *a)
{
	__u64 w0;
	__u32 w1;

	__builtin_memcpy(&w0, a->a, 8);
	__builtin_memcpy(&w1, a->a + 8, 4);
	return w0 == 0 && w1 == bpf_htonl(0x0000ffff);
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
static __always_inline int gcra_conform(__u64 *tat, __u64 now, __u32 rate, __u32 t_ns,
					__u32 burst, __u64 *refused_until)
{
	__u64 t = t_ns ? t_ns : 1000000000ull / rate;
	__u64 tol = (burst ? burst - 1 : 0) * t;
	int i;

	if (t == 0)
		t = 1;
#pragma unroll
	for (i = 0; i < EG_CAS_TRIES; i++) {
		__u64 old = *(volatile __u64 *)tat;
		__u64 base = old > now ? old : now;

		if (base - now > tol) {
			*refused_until = base - tol; /* the bucket stays as it is until then */
			return 0;
		}
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

/* The bucket's key: the source as 16 bytes (IPv4-mapped for IPv4, built here: the
 * parser no longer maps IPv4 addresses, which only this needs), an IPv6 source cut to
 * cfg->v6_plen bits. Two 8-byte words, stored whole. */
static __always_inline void rate_key(const struct eg_pkt *p, const struct eg_cfg *cfg,
				     struct eg_addr *k)
{
	__u32 plen = cfg->v6_plen;
	__u64 w0, w1;

	if (!p->v6) {
		w0 = 0;
		w1 = 0xffff0000ull | (__u64)p->src4 << 32; /* ::ffff:a.b.c.d, little-endian */
	} else {
		__builtin_memcpy(&w0, p->src.a, 8);
		__builtin_memcpy(&w1, p->src.a + 8, 8);
		if (plen && plen < 128) {
			__u64 hi = bpf_be64_to_cpu(w0), lo = bpf_be64_to_cpu(w1);

			if (plen < 64) {
				hi &= ~0ull << ((64 - plen) & 63);
				lo = 0;
			} else {
				lo = plen == 64 ? 0 : lo & (~0ull << ((128 - plen) & 63));
			}
			w0 = bpf_cpu_to_be64(hi);
			w1 = bpf_cpu_to_be64(lo);
		}
	}
	__builtin_memcpy(k->a, &w0, 8);
	__builtin_memcpy(k->a + 8, &w1, 8);
}

/* The SYN of an IPv4 source whose bucket refused it until later (abi.h
 * EG_SYNBOX_SLOTS): refused again without the bucket lookup. */
static __always_inline int synbox_refuses(__u32 ip, __u64 now)
{
	__u32 i = eg_synbox_slot(ip);
	__u64 *e = bpf_map_lookup_elem(&eg_synbox_v1, &i), v;

	if (!e)
		return 0;
	v = *e;
	return v && (__u32)(v >> 32) == ip &&
	       (__s32)((__u32)v - (__u32)(now >> EG_SYNBOX_SHIFT)) > 0;
}

static __always_inline void synbox_note(__u32 ip, __u64 until)
{
	__u32 i = eg_synbox_slot(ip);
	__u64 *e = bpf_map_lookup_elem(&eg_synbox_v1, &i),
	      v = (__u64)ip << 32 | (__u32)(until >> EG_SYNBOX_SHIFT);

	if (e && *e != v)
		*e = v; /* one aligned 8-byte store */
}

/* A SYN (no ACK) of an IPv4 source whose SYN refusals go to its slot (pkt_rate off:
 * the SYN need not charge a packet bucket). */
static __always_inline int syn_boxed(const struct eg_pkt *p, const struct eg_cfg *cfg)
{
	return p->l4proto == IPPROTO_TCP && (p->tcp_flags & (EG_TCP_SYN | EG_TCP_ACK)) == EG_TCP_SYN &&
	       cfg->syn_rate && !cfg->pkt_rate && !p->v6;
}

/* Returns an EG_REASON_* for a packet over a bucket, EG_REASON_SHED when the
 * source could not be tracked, EG_REASON_PASS otherwise. */
static __always_inline __u32 rate_check(const struct eg_pkt *p, const struct eg_cfg *cfg,
					 struct eg_clock *clk)
{
	int syn = p->l4proto == IPPROTO_TCP &&
		  (p->tcp_flags & (EG_TCP_SYN | EG_TCP_ACK)) == EG_TCP_SYN;
	int boxed = syn_boxed(p, cfg);
	struct eg_bucket *b;
	struct eg_addr k;
	__u64 now, until = 0;

	if (!(syn && cfg->syn_rate) && !cfg->pkt_rate)
		return EG_REASON_PASS;
	now = clock_now(clk);
	/* a boxed SYN's refusal slot was read before the flow check (edgegate_xdp) */
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
	if (cfg->pkt_rate &&
	    !gcra_conform(&b->pkt_tat, now, cfg->pkt_rate, cfg->pkt_t_ns, cfg->pkt_burst, &until))
		return EG_REASON_PKTLIMIT;
	if (syn && cfg->syn_rate &&
	    !gcra_conform(&b->syn_tat, now, cfg->syn_rate, cfg->syn_t_ns, cfg->syn_burst, &until)) {
		if (boxed && until)
			synbox_note(bpf_ntohl(p->src4), until);
		return EG_REASON_RATELIMIT;
	}
	return EG_REASON_PASS;
}

static __always_inline int slot_holds(const struct eg_flow_slot *s, const __u64 w[5])
{
	const __u64 *sw = (const __u64 *)&s->key;

	/* The words that differ most first: w[1] holds an IPv4 source (w[0] is 0 for
	 * every IPv4 flow and for an empty slot), w[4] the ports; a miss, the common
	 * case, then usually ends on the first compare. */
	return sw[1] == w[1] && sw[4] == w[4] && sw[0] == w[0] && sw[2] == w[2] && sw[3] == w[3];
}

/* The words of the packet's eg_flow_key (abi.h), built in registers: an IPv4 flow's
 * from src4/dst4 (::ffff:a.b.c.d is 0, 0xffff0000 | addr << 32 on a little-endian
 * host), the ports and the protocol as one word. Assembling the key on the stack and
 * reading it back as words stalled each read on the narrower stores before it (store
 * forwarding fails): a third of the protected-port pass path. */
static __always_inline void flow_words(const struct eg_pkt *p, __u64 w[5])
{
	if (p->v6) {
		__builtin_memcpy(&w[0], p->src.a, 8);
		__builtin_memcpy(&w[1], p->src.a + 8, 8);
		__builtin_memcpy(&w[2], p->dst.a, 8);
		__builtin_memcpy(&w[3], p->dst.a + 8, 8);
	} else {
		w[0] = 0;
		w[1] = 0xffff0000ull | (__u64)p->src4 << 32;
		w[2] = 0;
		w[3] = 0xffff0000ull | (__u64)p->dst4 << 32;
	}
	w[4] = (__u64)p->sport | (__u64)p->dport << 16 | (__u64)IPPROTO_TCP << 32;
}

_Static_assert(sizeof(struct eg_flow_key) == 40, "flow_words builds five words");

/* The flow's bucket first (one array read, compares); then, when the bucket says
 * more flows map to it than it holds, its neighbour's slots (EG_FLOW_MORE_NEXT) and
 * the hash (EG_FLOW_MORE_HASH) only if it says some are there. */
static __always_inline int flow_revoked(const struct eg_pkt *p, struct eg_clock *clk)
{
	struct eg_flow_bucket *b;
	struct eg_flow_val *v;
	__u64 w[5], exp;
	__u32 i, more;

	flow_words(p, w);
	i = eg_flow_slot_of_words(w[0], w[1], w[2], w[3], w[4]);
	b = bpf_map_lookup_elem(&eg_rflow_slots_v1, &i);
	if (!b)
		return 0;
	if (slot_holds(&b->s[0], w))
		exp = b->s[0].expires_ns;
	else if (slot_holds(&b->s[1], w))
		exp = b->s[1].expires_ns;
	else if (__builtin_expect(!(more = b->more), 1))
		return 0; /* no other revoked flow maps here */
	else {
		struct eg_flow_bucket *n = NULL;
		struct eg_flow_key k;

		if (more & EG_FLOW_MORE_NEXT) {
			i = eg_flow_spill_of(i);
			n = bpf_map_lookup_elem(&eg_rflow_slots_v1, &i);
		}
		if (n && slot_holds(&n->s[0], w)) {
			exp = n->s[0].expires_ns;
			goto found;
		}
		if (n && slot_holds(&n->s[1], w)) {
			exp = n->s[1].expires_ns;
			goto found;
		}
		if (!(more & EG_FLOW_MORE_HASH))
			return 0;
		__builtin_memcpy(&k, w, sizeof(k)); /* whole words: the layout is five */
		v = bpf_map_lookup_elem(&eg_rflow_v1, &k);
		if (!v)
			return 0;
		exp = v->expires_ns;
	}
found:
	return exp == 0 || clock_now(clk) < exp;
}

SEC("xdp")
int edgegate_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct eg_pkt p = {};
	struct eg_clock clk = {};
	struct eg_cfg *cfg;
	__u32 zero = 0, why, rule;
	int rc, banned = 0;

	cfg = bpf_map_lookup_elem(&eg_cfg_v1, &zero);
	if (!cfg || !(cfg->flags & EG_CFG_ENABLED))
		return XDP_PASS;

	rc = eg_parse_l3(data, data_end, &p);
	if (rc == EG_P_NONIP)
		return verdict_pass(EG_REASON_NONIP, bytes);
	if (rc != EG_P_OK)
		return verdict_drop(cfg, EG_REASON_MALFORMED, bytes);
	/* ::ffff:a.b.c.d must never appear on the wire (RFC 4291 2.5.5.2; Linux drops it
	 * too): it is neither an IPv4 source for the IPv4 rules nor a real IPv6 one. */
	if (p.v6 && v4mapped(&p.src))
		return verdict_drop(cfg, EG_REASON_MALFORMED, bytes);

	clk.offset = cfg->clock_offset_ns;
	rule = match_src(&p, &clk);
	if (!rule && p.has_embed4) {
		/* 6to4, NAT64, Teredo, IPv4-compatible: the IPv4 deny rules apply too (an
		 * IPv4 allow rule does not lift anything here) */
		__u32 r4 = (__u32)eg_match4(bpf_ntohl(p.embed4), clk.offset);

		if (r4 != EG_SRC_ALLOW)
			rule = r4;
	}
	if (rule == EG_SRC_ALLOW)
		return verdict_pass(EG_REASON_ALLOW, bytes);
	if (rule) {
		if (rule - 1 != EG_RULE_BAN)
			return verdict_drop(cfg, EG_REASON_DENY, bytes);
		if (cfg->flags & EG_CFG_BAN_ALL)
			return verdict_drop(cfg, EG_REASON_BAN, bytes);
		banned = 1; /* gate.ban_scope "protected": decided by the port below */
	}

	if (eg_parse_l4(data, data_end, &p) != EG_P_OK)
		return verdict_drop(cfg, EG_REASON_MALFORMED, bytes);
	if (p.frag == EG_FRAG_LATER) {
		/* No port to look at: a banned source's fragments go (fail closed); others
		 * are charged to the source's packet bucket. A datagram to a protected port
		 * cannot be reassembled anyway: its first fragment is dropped below. */
		if (banned)
			return verdict_drop(cfg, EG_REASON_BAN, bytes);
		why = rate_check(&p, cfg, &clk);
		if (why == EG_REASON_PKTLIMIT)
			return verdict_drop(cfg, why, bytes);
		return verdict_pass(why, bytes);
	}
	if (!p.has_ports || !port_protected(p.dport))
		return verdict_pass(EG_REASON_PASS, bytes);
	if (banned)
		return verdict_drop(cfg, EG_REASON_BAN, bytes);
	if (p.frag == EG_FRAG_FIRST)
		return verdict_drop(cfg, EG_REASON_FRAGMENT, bytes);

	/* A SYN its source's slot refuses goes first: a new connection belongs to no
	 * revoked flow yet, and a SYN flood from a limited source then costs what a deny
	 * costs (one array read, no flow lookup). */
	if (syn_boxed(&p, cfg) && synbox_refuses(bpf_ntohl(p.src4), clock_now(&clk)))
		return verdict_drop(cfg, EG_REASON_RATELIMIT, bytes);
	if (p.l4proto == IPPROTO_TCP && flow_revoked(&p, &clk))
		return verdict_drop(cfg, EG_REASON_REVOKED, bytes);
	why = rate_check(&p, cfg, &clk);
	if (why == EG_REASON_RATELIMIT || why == EG_REASON_PKTLIMIT)
		return verdict_drop(cfg, why, bytes);
	return verdict_pass(why, bytes);
}
