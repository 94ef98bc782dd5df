/* abi.h - the one contract between the XDP edge gate (bpf/edgegate.bpf.c) and
 * userspace (userspace/enforce/gate.c, edgegatectl): map names, keys, values, reasons.
 *
 * Every map is pinned by name under gate.pin_root (default /sys/fs/bpf/edgegate)
 * and BTF-typed, so `bpftool map dump pinned /sys/fs/bpf/edgegate/<name>` prints
 * the field names below. A map's name carries a layout version (_v1): change a
 * key or value layout and bump the suffix, so libbpf creates a new map instead
 * of failing to reuse the old pin.
 *
 * Addresses are 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), the same
 * form as struct eg_prefix in userspace/core/config.h; one key type serves both
 * families and prefix lengths are in the mapped space (IPv4 /24 => 120).
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
#define EG_MAP_DENY "eg_deny_v1"           /* HASH  eg_addr -> eg_rule (exact /128, /32) */
#define EG_MAP_DENY_LPM "eg_deny_lpm_v1"   /* LPM   eg_lpm_key -> eg_rule (shorter prefixes) */
#define EG_MAP_ALLOW "eg_allow_v1"         /* HASH  eg_addr -> eg_rule */
#define EG_MAP_ALLOW_LPM "eg_allow_lpm_v1" /* LPM   eg_lpm_key -> eg_rule */
#define EG_MAP_RATE "eg_rate_v1"           /* LRU_HASH eg_addr -> eg_bucket */
#define EG_MAP_FLOWS "eg_rflow_v1"         /* HASH  eg_flow_key -> eg_flow_val (revoked flows) */
#define EG_MAP_SESSIONS "eg_rsess_v1"      /* HASH  eg_sess_key -> eg_sess_val (revoked sessions) */
#define EG_MAP_STATS "eg_stats_v1"         /* PERCPU_ARRAY[EG_REASON__COUNT] eg_stat */
#define EG_MAP_FLOOD "eg_flood_v1"         /* PERCPU_ARRAY[1] eg_flood (new-source window) */

#define EG_PORTS_WORDS 1024 /* 65536 bits */
#define EG_MAX_FLOWS 65536
#define EG_MAX_SESSIONS 65536
#define EG_MAX_ALLOW 65536
#define EG_V6_EXT_MAX 8 /* IPv6 extension headers walked before giving up (malformed) */

/* Verdict reasons: the index of eg_stats_v1. Every packet is counted under exactly
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
	/* Non-zero when the corresponding map may hold entries; lets the program skip a
	 * lookup (the LPM walk in particular) on empty maps. Userspace increments on add
	 * and recounts exactly during GC, so a stale value is only ever too high. */
	__u32 n_deny;
	__u32 n_deny_lpm;
	__u32 n_allow;
	__u32 n_allow_lpm;
	__u32 pad;
};

struct eg_addr {
	__u8 a[16]; /* IPv4-mapped for IPv4 */
};

struct eg_lpm_key {
	__u32 plen; /* 0..128, mapped space */
	__u8 a[16];
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
