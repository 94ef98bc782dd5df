/* abi.h - the one contract between the XDP edge gate (bpf/edgegate.bpf.c) and
 * userspace (userspace/enforce/gate.c, edgegatectl): map names, keys, values, reasons.
 *
 * Every map is pinned by name under gate.pin_root (default /sys/fs/bpf/edgegate)
 * and BTF-typed, so `bpftool map dump pinned /sys/fs/bpf/edgegate/<name>` prints
 * the field names below. A map's name carries a layout version (_v1): change a
 * key or value layout and bump the suffix, so libbpf creates a new map instead
 * of failing to reuse the old pin.
 *
 * Deny/allow rules (v2, issue 14): IPv4 and IPv6 are separate tables. IPv4 keys
 * are the 4-byte address plus its prefix length (struct eg_key4), IPv6 keys the
 * 16-byte address plus length (struct eg_key6), except IPv6 deny rules of /64 or
 * shorter (most real IPv6 deny lists), which live in a hash of their own keyed on
 * the upper 64 bits (struct eg_key6s: 12 bytes, hashed as cheaply as an IPv4 key).
 * Every other prefix length lives in the same hash and XDP looks up, longest first, only the lengths that are in use
 * (eg_tables_v2.lens) and only the length groups a per-/24 (IPv4) or per-/48 (IPv6)
 * index says may match; deny rules and IPv4 allow rules are also held whole in
 * direct-mapped bucket arrays (eg_slots4, eg_slots6, eg_slots6l), so a candidate
 * length costs an array read, the hash only behind a full bucket. No LPM trie on the
 * hot path. See docs/gate.md.
 * Flows, sessions and rate buckets keep 16-byte addresses, IPv4 as IPv4-mapped
 * IPv6 (::ffff:a.b.c.d), the form of struct eg_prefix in userspace/core/config.h.
 * Time stamps are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) plus the
 * config's clock offset (tests only); 0 means "never expires".
 * Only fixed-size types from <linux/types.h>: this file compiles for BPF and C. */
#ifndef EDGEGATE_ABI_H
#define EDGEGATE_ABI_H

#include <linux/types.h>

#define EG_PIN_ROOT_DEFAULT "/sys/fs/bpf/edgegate"

/* Map names (= pin file names). Keep in sync with bpf/edgegate.bpf.c. */
#define EG_MAP_CFG "eg_cfg_v1"             /* ARRAY[1] struct eg_cfg */
#define EG_MAP_PORTS "eg_ports_v1"         /* ARRAY[1024] __u64 bitmap of protected ports */
#define EG_MAP_DENY4 "eg_deny4_v2"         /* HASH  eg_key4 -> eg_rule (every IPv4 length) */
#define EG_MAP_ALLOW4 "eg_allow4_v2"       /* HASH  eg_key4 -> eg_rule */
#define EG_MAP_DENY6 "eg_deny6_v3"         /* HASH  eg_key6 -> eg_rule (IPv6 deny lengths 65..128; v2 held all) */
#define EG_MAP_DENY6S "eg_deny6s_v1"       /* HASH  eg_key6s -> eg_rule (IPv6 deny lengths 0..64) */
#define EG_MAP_ALLOW6 "eg_allow6_v2"       /* HASH  eg_key6 -> eg_rule */
#define EG_MAP_DENY4_IDX "eg_deny4_idx_v2"   /* ARRAY[EG_IDX4_WORDS] __u64: per-/24 length groups */
#define EG_MAP_ALLOW4_IDX "eg_allow4_idx_v2" /* ARRAY[EG_IDX4_WORDS] __u64 */
#define EG_MAP_DENY4_SLOTS "eg_deny4_slots_v1" /* ARRAY[EG_SLOTS4] eg_slots4: IPv4 deny rules, direct-mapped (v2's /32 filter eg_deny4_x32_v2 is gone) */
#define EG_MAP_ALLOW4_SLOTS "eg_allow4_slots_v1" /* ARRAY[EG_ALLOW4_SLOTS] eg_slots4: IPv4 allow rules, direct-mapped */
#define EG_MAP_DENY6S_SLOTS "eg_deny6s_slots_v1" /* ARRAY[EG_SLOTS6] eg_slots6: IPv6 deny rules of /64 or shorter, direct-mapped */
#define EG_MAP_DENY6_SLOTS "eg_deny6_slots_v2" /* ARRAY[EG_SLOTS6] eg_slots6l: IPv6 deny rules of /65../128, direct-mapped (v2: the bucket of /96../128 is their /96's, eg_deny6l_of) */
#define EG_MAP_ALLOW6S_SLOTS "eg_allow6s_slots_v1" /* ARRAY[EG_ALLOW6_SLOTS] eg_slots6: IPv6 allow rules of /64 or shorter, direct-mapped */
#define EG_MAP_ALLOW6_SLOTS "eg_allow6_slots_v1" /* ARRAY[EG_ALLOW6_SLOTS] eg_slots6l: IPv6 allow rules of /65../128, direct-mapped */
#define EG_MAP_ALLOW6_IDX "eg_allow6_idx_v1" /* ARRAY[EG_IDX6_WORDS] __u64: per-/48 length groups of IPv6 allows */
#define EG_MAP_DENY6_IDX "eg_deny6_idx_v3"   /* ARRAY[EG_IDX6_WORDS] __u64: per-/48 length groups of IPv6 denies */
#define EG_MAP_TABLES "eg_tables_v2"       /* ARRAY[EG_TBL__COUNT] eg_table: lengths in use */
#define EG_MAP_NOTES "eg_notes_v2"         /* HASH  eg_note_key -> eg_note (free-text reasons; userspace only) */
#define EG_MAP_RATE "eg_rate_v1"           /* LRU_HASH eg_addr -> eg_bucket */
#define EG_MAP_FLOWS "eg_rflow_v1"         /* HASH  eg_flow_key -> eg_flow_val (revoked flows) */
#define EG_MAP_SESSIONS "eg_rsess_v1"      /* HASH  eg_sess_key -> eg_sess_val (revoked sessions) */
#define EG_MAP_STATS "eg_stats_v2"         /* PERCPU_ARRAY[EG_REASON__COUNT] eg_stat */
#define EG_MAP_FLOWSLOTS "eg_rflow_slots_v1" /* ARRAY[EG_FLOWSLOTS] eg_flow_bucket: revoked flows, direct-mapped */
#define EG_MAP_SYNBOX "eg_synbox_v1"     /* ARRAY[EG_SYNBOX_SLOTS] __u64: IPv4 sources over their SYN bucket */
#define EG_MAP_FLOOD "eg_flood_v1"         /* PERCPU_ARRAY[1] eg_flood (new-source window) */

#define EG_PORTS_WORDS 1024 /* 65536 bits */
#define EG_MAX_FLOWS 65536
#define EG_MAX_SESSIONS 65536
#define EG_MAX_ALLOW 65536
#define EG_V6_EXT_MAX 8 /* IPv6 extension headers walked before giving up (malformed) */
#define EG_MAX_NOTES 65536
#define EG_FLOWSLOTS_LOG2 16 /* buckets (of two flows) of the direct-mapped revoked-flow table */
#define EG_FLOWSLOTS (1u << EG_FLOWSLOTS_LOG2)
/* IPv4 sources over their SYN bucket (issue 14): slot eg_synbox_slot(ip) holds
 * ip << 32 | (t >> EG_SYNBOX_SHIFT), t being the first time (bpf clock, ns) a SYN of
 * that source can conform again; 0 = empty. A GCRA bucket that refuses a packet does
 * not change, so until t every SYN of the source is refused: XDP drops it on one
 * array read instead of a bucket lookup. t is rounded down (16.8 ms units), so the
 * slot never refuses a SYN the bucket would take. The 32-bit time wraps after 2^32
 * units and is compared as a signed difference, good for 1.1 years; the daemon's GC
 * empties slots whose time has passed long before. One u64: CPUs write it whole, no
 * torn entry. Used while pkt_rate is off (a SYN must charge the packet bucket then). */
#define EG_SYNBOX_SHIFT 24
#define EG_SYNBOX_LOG2 16
#define EG_SYNBOX_SLOTS (1u << EG_SYNBOX_LOG2)
static inline __u32 eg_synbox_slot(__u32 ip /* host order */)
{
	return (ip * 0x9e3779b1u) >> (32 - EG_SYNBOX_LOG2);
}
#define EG_NOTE_MAX 64

/* eg_tables_v2 index */
enum eg_table_id { EG_TBL_DENY4 = 0, EG_TBL_ALLOW4, EG_TBL_DENY6, EG_TBL_ALLOW6, EG_TBL__COUNT };

/* The IPv4 index: one byte per /24 (2^24 bytes = 2^21 words). Bit g of the byte is
 * set when a rule of length group g may intersect that /24 (a rule of the group
 * covering it, or lying inside it). A set bit is a "may": deletes leave it and GC
 * rebuilds the index; a clear bit is a promise (set before the rule is visible). */
#define EG_IDX4_WORDS (1u << 21)
/* The deny rules, direct-mapped (issue 14): every IPv4 deny rule and every IPv6 deny
 * rule of /64 or shorter is also held in a bucket of an array, so XDP confirms a rule
 * of a given length with one array read and compares, no hash lookup (a BPF hash
 * lookup costs 10-12 ns here, the whole budget a third of it). The hashes stay the
 * record (bpftool, GC, edgegatectl list); the buckets are derived from them under the
 * writers' lock, written through a shared mapping (BPF_F_MMAPABLE) with ordered
 * 8-byte stores. A bucket holds up to three (IPv4) or two (IPv6) rules whole, with
 * their reason and expiry; `more` says further rules of the bucket live in the hash
 * only, and XDP then asks the hash when no slot matches. XDP reads `more` before the
 * slots, and a slot's tag before its address, so a rule being written is either
 * seen whole or not at all; a rule leaves its slot (tag cleared) only when deleted. */
#define EG_SLOT_USED 0x80 /* in a slot's tag: plen | EG_SLOT_USED, so an empty (0) tag never matches */
/* Bucket counts are powers of two sized from gate.max_deny at load (eg_slots_log2()):
 * the array's max_entries, and its log2 handed to XDP in .rodata before load. A
 * pinned array keeps its size (docs/gate.md "Memory"); writers read it from the map. */
#define EG_SLOTS4_LOG2 20 /* IPv4 buckets at the default max_deny (1,048,576): 3M slots, 64 MiB */
#define EG_SLOTS4 (1u << EG_SLOTS4_LOG2)
#define EG_SLOTS_MIN_LOG2 10 /* the floor: 1,024 buckets of 64 bytes (64 KiB) per array */
#define EG_SLOTS4_MAX_LOG2 24 /* the ceiling: 16M buckets, 1 GiB */
/* The IPv4 allow rules' buckets (eg_allow4_slots_v1, same layout and bucket function as
 * the deny ones): a fixed 2^16, one per rule at EG_MAX_ALLOW, 4 MiB. */
#define EG_ALLOW4_SLOTS_LOG2 16
#define EG_ALLOW4_SLOTS (1u << EG_ALLOW4_SLOTS_LOG2)
/* The IPv6 allow rules' buckets (eg_allow6s_slots_v1 for /0../64, eg_allow6_slots_v1 for
 * /65../128; the deny ones' layouts and bucket functions): a fixed 2^15 each, two slots
 * a bucket, one slot per rule at EG_MAX_ALLOW, 2 MiB each. The record stays the one
 * hash eg_allow6_v2 (every length); `more` sends XDP there. */
#define EG_ALLOW6_SLOTS_LOG2 15
#define EG_ALLOW6_SLOTS (1u << EG_ALLOW6_SLOTS_LOG2)
#define EG_SLOTS6_SHIFT 3 /* IPv6 short-rule buckets: an eighth of the IPv4 count */
/* log2 of the bucket count for max_deny rules: IPv4 one bucket (three slots) per
 * rule, rounded up to a power of two; IPv6 (family 6) an eighth of that. */
static inline __u32 eg_slots_log2(__u32 max_deny, int family)
{
	__u32 l = 0;

	while (l < EG_SLOTS4_MAX_LOG2 && (1ull << l) < max_deny)
		l++;
	if (family == 6)
		l = l > EG_SLOTS6_SHIFT ? l - EG_SLOTS6_SHIFT : 0;
	return l < EG_SLOTS_MIN_LOG2 ? EG_SLOTS_MIN_LOG2 : l;
}
struct eg_slot4 {
	/* addr (host order, host bits cleared) << 32 | (plen | EG_SLOT_USED) << 8 | reason;
	 * 0 = empty. One word, so a reader sees a key whole. */
	__u64 key;
	__u64 expires_ns; /* the rule's, as in eg_deny4_v2 */
};
struct eg_slots4 {
	__u32 more; /* other deny rules of this bucket live in eg_deny4_v2 only */
	__u32 pad;
	struct eg_slot4 s[3];
	__u64 pad2; /* one cache line */
};
static inline __u64 eg_slot4_key(__u32 addr /* host order, masked */, __u32 plen, __u32 reason)
{
	return (__u64)addr << 32 | (__u64)(plen | EG_SLOT_USED) << 8 | (reason & 0xff);
}
/* The bucket: a hash of the /24 and the length, plus the last byte, so the rules of one
 * /24 (a flood from a /24 of denied /32s) lie in consecutive buckets, a few pages, not
 * one page each; /24s spread like any hash. */
static inline __u32 eg_slots4_of(__u32 addr /* host order, masked */, __u32 plen,
				 __u32 log2 /* the array's, EG_SLOTS_MIN_LOG2..EG_SLOTS4_MAX_LOG2 */)
{
	__u32 h = (__u32)((((__u64)(addr >> 8) << 6 | plen) * 0x9e3779b97f4a7c15ull) >> ((64 - log2) & 63));

	return (h + (addr & 0xff)) & ((1u << (log2 & 31)) - 1);
}
#define EG_SLOTS6_LOG2 17 /* IPv6 buckets at the default max_deny: 256k slots, 8 MiB */
#define EG_SLOTS6 (1u << EG_SLOTS6_LOG2)
struct eg_slot6 {
	__u64 hi;   /* the upper 64 bits (host order), host bits cleared */
	__u32 tag;  /* (plen | EG_SLOT_USED) << 8 | reason; 0 = empty. Written after hi. */
	__u32 pad;
	__u64 expires_ns;
};
struct eg_slots6 {
	__u32 more; /* other short IPv6 deny rules of this bucket live in eg_deny6s_v1 only */
	__u32 pad;
	struct eg_slot6 s[2];
	__u64 pad2;
};
static inline __u32 eg_slot6_tag(__u32 plen, __u32 reason)
{
	return (plen | EG_SLOT_USED) << 8 | (reason & 0xff);
}
static inline __u32 eg_slots6_of(__u64 hi /* host order, masked */, __u32 plen, __u32 log2)
{
	return (__u32)(((hi ^ plen) * 0x9e3779b97f4a7c15ull) >> ((64 - log2) & 63)) &
	       ((1u << (log2 & 31)) - 1);
}
/* IPv6 deny rules of /65 to /128 (the eg_deny6_v3 hash), direct-mapped like the short
 * ones: two whole 128-bit rules per 64-byte bucket, the tags of both in the bucket's
 * first word beside `more`, so XDP reads `more` and both tags with one load, then the
 * addresses of a slot whose tag matches. A tag is plen << 8 | reason (plen 65..128, so
 * 0 = empty); writers store hi, lo and the expiry before the tag, and clear the tag
 * first when a slot changes rule. Sized like eg_deny6s_slots_v1 (an eighth of the
 * IPv4 count) with its own log2 in .rodata. */
struct eg_slot6l {
	__u64 hi; /* host order, host bits cleared */
	__u64 lo;
	__u64 expires_ns;
};
struct eg_slots6l {
	__u32 more; /* other long IPv6 deny rules of this bucket live in eg_deny6_v3 only */
	__u16 tag[2]; /* of s[0], s[1]: plen << 8 | reason; 0 = empty */
	struct eg_slot6l s[2];
	__u64 pad;
};
static inline __u16 eg_slot6l_tag(__u32 plen /* 65..128 */, __u32 reason)
{
	return (__u16)((plen & 0xff) << 8 | (reason & 0xff));
}
static inline __u32 eg_slots6l_of(__u64 hi, __u64 lo /* host order, masked */, __u32 plen, __u32 log2)
{
	return (__u32)((((hi ^ (lo * 0xff51afd7ed558ccdull)) ^ plen) * 0x9e3779b97f4a7c15ull) >>
		       ((64 - log2) & 63)) & ((1u << (log2 & 31)) - 1);
}
/* The bucket of a long IPv6 deny rule in eg_deny6_slots_v2 (v1 placed every length by
 * eg_slots6l_of): a rule of /96 or longer goes to the bucket of the /96 that holds it,
 * so every deny rule of 96..128 that can contain a given address lies in one bucket:
 * while that bucket's `more` is clear, its two slots are all the rules of those lengths
 * around the address, and XDP answers the lengths 96..128 with one bucket read (v1 read
 * one bucket per candidate length: a /96 behind a /128 that missed paid two). /65../95
 * keep eg_slots6l_of. The /96 itself lands where v1 put it. */
static inline __u32 eg_deny6l_of(__u64 hi, __u64 lo /* host order, masked */, __u32 plen, __u32 log2)
{
	if (plen >= 96)
		return eg_slots6l_of(hi, lo & 0xffffffff00000000ull, 96, log2);
	return eg_slots6l_of(hi, lo, plen, log2);
}
/* The IPv6 deny index (v3; v2 was one bit per /48): one byte per hash of a /48, bit
 * g set when a deny rule of length group g (128 | 97-127 | 65-96 | 64 | 56-63 |
 * 49-55 | 48) lies in that /48. XDP looks up a length of 48 or more only when its
 * group's bit is set in the source's byte: a source in a /48 with only a /48 rule
 * costs one lookup, not one per length in use. Lengths under 48 cover /48s that
 * have no byte of their own and are always looked up. A set bit is a "may" (hash
 * collisions, deletes until GC), a clear bit a promise, as in the IPv4 index. */
#define EG_IDX6_LOG2 21 /* bytes */
#define EG_IDX6_WORDS (1u << (EG_IDX6_LOG2 - 3))
static inline __u32 eg_idx6_slot(__u64 hi /* the address's first 8 bytes, host order */)
{
	return (__u32)(((hi >> 16) * 0x9e3779b97f4a7c15ull) >> (64 - EG_IDX6_LOG2));
}
static inline unsigned eg_group6(unsigned len /* 48..128 */)
{
	return len == 128 ? 0 : len >= 97 ? 1 : len >= 65 ? 2 : len == 64 ? 3 :
	       len >= 56 ? 4 : len >= 49 ? 5 : 6;
}
#define EG_LENS6_SHORT 0x0000ffffffffffffull /* lens[0] bits of lengths 0..47 */
/* length groups: 32 | 25-31 | 24 | 17-23 | 16 | 9-15 | 8 | 0-7 */
#define EG_G4_LENS(g) ((g) == 0 ? 0x100000000ull : (g) == 1 ? 0xfe000000ull : \
		       (g) == 2 ? 0x01000000ull : (g) == 3 ? 0x00fe0000ull : \
		       (g) == 4 ? 0x00010000ull : (g) == 5 ? 0x0000fe00ull : \
		       (g) == 6 ? 0x00000100ull : 0x000000ffull)
static inline unsigned eg_group4(unsigned len)
{
	return len == 32 ? 0 : len >= 25 ? 1 : len == 24 ? 2 : len >= 17 ? 3 :
	       len == 16 ? 4 : len >= 9 ? 5 : len == 8 ? 6 : 7;
}

/* Verdict reasons: the index of eg_stats_v2. Every packet is counted under exactly
 * one reason, except EG_REASON_OBSERVED, which counts (in addition) packets that
 * would have been dropped but passed because observe mode is on. */
enum eg_reason {
	EG_REASON_PASS = 0,   /* IP, no rule matched */
	EG_REASON_NONIP,      /* not IPv4/IPv6 (ARP, LLDP, ...): passed */
	EG_REASON_ALLOW,      /* source on the allow list: bypasses everything */
	EG_REASON_DENY,       /* source on the deny list (static or manual) */
	EG_REASON_BAN,        /* source banned (deny entry with reason EG_RULE_BAN) */
	EG_REASON_REVOKED,    /* TCP flow of a revoked session */
	EG_REASON_RATELIMIT,  /* SYN over the per-source token bucket */
	EG_REASON_PKTLIMIT,   /* packet over the per-source packet bucket */
	EG_REASON_MALFORMED,  /* truncated/invalid IP or L4 header */
	EG_REASON_SHED,       /* flood mode: source not tracked, packet passed */
	EG_REASON_OBSERVED,   /* would have been dropped, observe mode passed it */
	EG_REASON_FRAGMENT,   /* first fragment to a protected port (docs/gate.md "Fragments") */
	EG_REASON__COUNT
};

/* Why a deny/allow entry exists (eg_rule.reason). */
enum eg_rule_reason {
	EG_RULE_NONE = 0,
	EG_RULE_STATIC,  /* from the config file */
	EG_RULE_MANUAL,  /* edgegatectl deny/allow add */
	EG_RULE_BAN,     /* automatic brute-force ban (issue 5) */
	EG_RULE_ABUSE,   /* operator: abuse report */
	EG_RULE_SCANNER, /* operator: scanner */
	EG_RULE__COUNT
};

/* eg_cfg.flags */
#define EG_CFG_OBSERVE (1u << 0)   /* count, never drop */
#define EG_CFG_ENABLED (1u << 1)   /* pushed by userspace; without it the program passes all */
#define EG_CFG_BAN_ALL (1u << 2)   /* gate.ban_scope "all": bans drop every port, not only protected */

struct eg_cfg {
	__u32 flags;
	__u32 syn_rate;        /* new TCP connections per second per source, 0 = off */
	__u32 syn_burst;
	__u32 pkt_rate;        /* packets per second per source to protected ports, 0 = off */
	__u32 pkt_burst;
	__u32 flood_max_new;   /* new rate-limit sources per CPU per flood_interval; 0 = no limit */
	__u64 flood_interval_ns;
	__s64 clock_offset_ns; /* added to bpf_ktime_get_ns(); tests only, 0 in production */
	__u32 v6_plen;         /* IPv6 sources are rate-limited per /v6_plen (mapped space = plen) */
	/* 1e9 / syn_rate and 1e9 / pkt_rate, computed by userspace so the per-packet
	 * path has no 64-bit division; 0 = compute it (a rate written by hand). */
	__u32 syn_t_ns;
	__u32 pkt_t_ns;
	/* Formerly per-map entry counts (v1). Unused: the lengths in use live in
	 * eg_tables_v2, written only under the pin-root lock. Kept for the layout. */
	__u32 reserved[3];
};

struct eg_addr {
	__u8 a[16]; /* IPv4-mapped for IPv4 */
};

struct eg_key4 {
	__u32 addr; /* network byte order, host bits cleared */
	__u32 plen; /* 0..32 */
};

struct eg_key6 {
	__u32 plen; /* 0..128 (the deny table: 65..128) */
	__u8 a[16]; /* host bits cleared */
};

/* An IPv6 deny rule of length 0..64: the address's first 8 bytes. 12 bytes, so the
 * kernel's hash runs one jhash2 final round on it, as on an eg_key4, not the extra
 * mixing round of a 20-byte eg_key6 (issue 14: 17-19 ns a lookup against 10-12). */
struct eg_key6s {
	__u32 plen; /* 0..64 */
	__u8 a[8];  /* the upper 64 bits, host bits cleared */
};
#define EG_DENY6S_MAXLEN 64

/* Per table: which prefix lengths hold entries. XDP reads only lens; count is the
 * writers' bookkeeping. Both are changed only under flock() on the pin root (the
 * daemon, edgegatectl with the daemon down and GC all take it), and GC recounts
 * from the hash, so neither can be lost to a concurrent writer. */
struct eg_table {
	__u64 lens[3];     /* bit L (0..128) set: entries of length L exist */
	__u32 count[129];  /* entries per length */
	__u32 stale;       /* a delete left index/filter bits for GC to clear */
};

/* A free-text reason ("--reason TEXT") beside a rule; the rule keeps its category. */
struct eg_note_key {
	__u8 a[16];  /* IPv4-mapped for IPv4, host bits cleared */
	__u8 plen;   /* mapped space */
	__u8 allow;  /* 1 = allow table */
	__u8 pad[2];
};

struct eg_note {
	char text[EG_NOTE_MAX]; /* NUL-terminated */
};

struct eg_rule {
	__u64 expires_ns; /* CLOCK_MONOTONIC; 0 = never */
	__u32 reason;     /* enum eg_rule_reason */
	__u32 flags;      /* reserved */
};

/* Per-source state. Each bucket is a GCRA "theoretical arrival time" in ns: a token
 * bucket of (rate, burst) expressed as one 64-bit word so it can be updated with
 * one compare-and-swap (see docs/gate.md). */
struct eg_bucket {
	__u64 syn_tat;
	__u64 pkt_tat;
	__u64 created_ns;
};

/* A TCP flow as seen arriving at the gate: saddr/sport = client. */
struct eg_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 proto;  /* IPPROTO_TCP */
	__u8 pad[3];
};

struct eg_flow_val {
	__u64 expires_ns;
	__u8 session[16]; /* eg_sess_key of the session it belonged to (0 = unknown) */
	__u32 reason;
	__u32 pad;
};

/* The revoked flows, direct-mapped (issue 14): bucket eg_flow_slot_of(key) holds up
 * to two revoked flows whole, so XDP confirms a flow with one array read and a
 * compare, no hash lookup. A third flow of the same bucket goes to a free slot of
 * the neighbour bucket (eg_flow_spill_of: the other half of the same pair) and the
 * home bucket's `more` gets EG_FLOW_MORE_NEXT; one that finds both full stays in
 * eg_rflow_v1 only, and `more` gets EG_FLOW_MORE_HASH. A program that knows only
 * the hash (any `more` -> eg_rflow_v1) still answers right. eg_rflow_v1 stays the
 * record (bpftool, GC); the buckets are derived from it under the writers' lock.
 * An all-zero key is an empty slot (no packet has protocol 0 there). A slot goes
 * key -> empty (EG_FLOW_MORE_HASH set) -> other key, never key -> other key in one
 * write, so a torn read sees the old flow, the new one, or a key no packet carries. */
struct eg_flow_slot {
	struct eg_flow_key key;
	__u64 expires_ns; /* the flow's, as in eg_rflow_v1 */
};

struct eg_flow_bucket {
	struct eg_flow_slot s[2];
	__u32 more; /* EG_FLOW_MORE_*: where the other revoked flows of this bucket are */
	__u32 pad;
};

#define EG_FLOW_MORE_HASH 1u /* in eg_rflow_v1 only */
#define EG_FLOW_MORE_NEXT 2u /* in a slot of bucket eg_flow_spill_of(this one) */

/* The bucket a full bucket's flows spill to: its pair's other half, 104 bytes on. */
static inline __u32 eg_flow_spill_of(__u32 i)
{
	return i ^ 1;
}

/* The bucket of a flow key given as its five 8-byte words (host memory order). */
static inline __u32 eg_flow_slot_of_words(__u64 w0, __u64 w1, __u64 w2, __u64 w3, __u64 w4)
{
	return (__u32)(((w0 ^ w1 ^ w2 ^ w3 ^ w4) * 0x9e3779b97f4a7c15ull) >> (64 - EG_FLOWSLOTS_LOG2));
}

static inline __u32 eg_flow_slot_of(const struct eg_flow_key *k)
{
	__u64 w[5];

	__builtin_memcpy(w, k, sizeof(w));
	return eg_flow_slot_of_words(w[0], w[1], w[2], w[3], w[4]);
}

struct eg_sess_key {
	__u8 hash[16]; /* first 16 bytes of SHA-256(session id) */
};

struct eg_sess_val {
	__u64 revoked_unix; /* wall-clock seconds of the revocation */
	__u64 expires_ns;   /* CLOCK_MONOTONIC; GC removes it after */
	__u32 reason;
	__u32 pad;
};

struct eg_stat {
	__u64 packets;
	__u64 bytes;
};

struct eg_flood {
	__u64 window_start_ns;
	__u64 inserted;
};

#endif
