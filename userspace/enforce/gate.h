/* gate.h - the XDP edge gate from userspace: load (libbpf skeleton), pin/reuse maps,
 * attach/detach, feed deny/allow/revocation maps, read statistics, expire entries.
 * Map layouts: include/edgegate/abi.h. Design and figures: docs/gate.md.
 *
 * Threading: every function taking a struct eg_gate * may be called from several
 * threads (admin socket, verdict threads, GC); writes are serialised internally. */
#ifndef EG_GATE_H
#define EG_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "edgegate/abi.h"

struct eg_gate;
struct eg_store;
struct eg_config;
struct eg_gate_config;
struct eg_prefix;

/* Loads the program (reusing maps pinned under cfg->gate.pin_root, creating and
 * pinning them otherwise), pushes the config (protected ports, rates, observe) and
 * the static deny/allow lists, and attaches to cfg->gate.interfaces in
 * cfg->gate.xdp_mode (auto = native, then generic). Needs root (CAP_BPF,
 * CAP_NET_ADMIN, CAP_SYS_ADMIN for bpffs pins). Returns NULL with err set. */
struct eg_gate *eg_gate_open(const struct eg_config *cfg, char *err, size_t errlen);
/* Detaches from every interface; pinned maps (and their entries) stay. */
void eg_gate_close(struct eg_gate *g);

/* Persistence of dynamic deny/allow entries (store namespace EG_NS_DENY). Re-pushes
 * every stored entry the maps do not hold (pins lost after a reboot). s may be NULL
 * (no persistence). Returns the number of entries re-pushed or -1. */
long eg_gate_use_store(struct eg_gate *g, struct eg_store *s);
/* A deny/allow change another node published (events.c): key "deny <prefix>" or
 * "allow <prefix>", val {"reason":N,"exp":UNIX} for an addition; applied to the kernel
 * maps only (the store already holds it; nothing is published again). 1 applied, 0
 * nothing to do, -1 bad input or a map error. */
int eg_gate_deny_reason(struct eg_gate *g, const struct eg_prefix *p);
/* A node that missed events the stream no longer keeps (events.c): reads the store's
 * deny/allow records whole, applies each (an addition it missed), and removes the map
 * entries the store held and no longer does (a deletion it missed); static entries, bans
 * (abuse.c's) and entries the store never held are left alone. Returns the entries
 * applied, *lifted the entries removed; -1 when the store cannot be read (nothing lifted). */
long eg_gate_resync(struct eg_gate *g, long *lifted);
int eg_gate_apply_remote(struct eg_gate *g, bool add, const char *key, const char *val, size_t len);

/* Dynamic entries. ttl_s 0 = never expires; reason is an enum eg_rule_reason.
 * 0 ok, -1 error (errno). del returns 0 when removed, -1 with errno ENOENT when absent. */
int eg_gate_deny_add(struct eg_gate *g, const struct eg_prefix *p, int64_t ttl_s, uint32_t reason);
int eg_gate_deny_del(struct eg_gate *g, const struct eg_prefix *p);
int eg_gate_allow_add(struct eg_gate *g, const struct eg_prefix *p, int64_t ttl_s, uint32_t reason);
int eg_gate_allow_del(struct eg_gate *g, const struct eg_prefix *p);
/* The same with a free-text note (edgegatectl --reason TEXT; shown by list, kept
 * in the store). reason stays the category the counters use. note: printable,
 * shorter than EG_NOTE_MAX, NULL or "" for none; EINVAL otherwise. */
int eg_gate_deny_add_note(struct eg_gate *g, const struct eg_prefix *p, int64_t ttl_s,
			  uint32_t reason, const char *note);
int eg_gate_allow_add_note(struct eg_gate *g, const struct eg_prefix *p, int64_t ttl_s,
			   uint32_t reason, const char *note);
bool eg_gate_note_valid(const char *note);
/* Bulk load (batch map updates, one recount): n entries, not persisted. Returns n or -1. */
long eg_gate_bulk_add(struct eg_gate *g, bool allow, const struct eg_prefix *v, size_t n,
		      int64_t ttl_s, uint32_t reason);
/* Whether a live allow rule covers addr (16-byte, IPv4-mapped for IPv4), matched as
 * XDP matches it. */
bool eg_gate_allowed(struct eg_gate *g, const uint8_t addr[16]);

struct eg_gate_entry {
	uint8_t addr[16]; /* mapped */
	uint8_t plen;     /* mapped space */
	bool v4;
	uint32_t reason;
	uint64_t expires_ns; /* 0 = never */
	int64_t ttl_left_s;  /* -1 = never */
	char note[EG_NOTE_MAX]; /* free text, "" for none */
};
typedef int (*eg_gate_list_fn)(const struct eg_gate_entry *e, void *arg); /* non-zero stops */
/* Lists live (unexpired) entries. Returns the count or -1. */
long eg_gate_deny_list(struct eg_gate *g, eg_gate_list_fn fn, void *arg);
long eg_gate_allow_list(struct eg_gate *g, eg_gate_list_fn fn, void *arg);
/* The same as a JSON array of {"prefix","reason","ttl","note"?} (ttl -1 = never). */
json_t *eg_gate_list_json(struct eg_gate *g, bool allow);

/* Sum over CPUs of packets (and bytes, may be NULL) per enum eg_reason. 0 ok. */
int eg_gate_stats(struct eg_gate *g, uint64_t out[EG_REASON__COUNT]);
int eg_gate_stats_bytes(struct eg_gate *g, uint64_t pkts[EG_REASON__COUNT],
			uint64_t bytes[EG_REASON__COUNT]);
/* {"pass":N, ...} packets per reason name. */
json_t *eg_gate_stats_json(struct eg_gate *g);

/* Revocation (issue 5). Addresses are 16-byte mapped; client = source of the packets
 * arriving at the gate. ttl_s 0 = until GC'd by an explicit delete. */
struct eg_flow {
	uint8_t client[16];
	uint8_t server[16];
	uint16_t client_port;
	uint16_t server_port;
};
int eg_gate_revoke_flow(struct eg_gate *g, const struct eg_flow *f, const uint8_t session[16],
			int64_t ttl_s);
int eg_gate_unrevoke_flow(struct eg_gate *g, const struct eg_flow *f);
/* session_hash: first 16 bytes of SHA-256(session id). */
int eg_gate_revoke_session(struct eg_gate *g, const uint8_t session_hash[16], uint32_t reason,
			   int64_t ttl_s);
bool eg_gate_session_revoked(struct eg_gate *g, const uint8_t session_hash[16]);

/* Removes expired deny/allow/flow/session entries, recounts the lengths in use
 * (eg_tables_v2) and rebuilds the IPv4 indexes when anything changed, all under
 * the pin-root lock. Returns the number removed or -1. */
long eg_gate_gc(struct eg_gate *g);

/* Status: pin root, attached interfaces and modes, map fill levels, config flags. */
json_t *eg_gate_status_json(struct eg_gate *g);

/* Admin commands (gate_admin.c): deny.add|del|list, allow.add|del|list, stats,
 * gate.status. */
void eg_gate_register_admin(void);

/* Opens the maps pinned under pin_root (NULL = default) without loading or
 * attaching anything: edgegatectl uses it when the daemon is down. The result
 * supports every call above except attach-related ones; eg_gate_close() frees it. */
struct eg_gate *eg_gate_open_pinned(const char *pin_root, char *err, size_t errlen);

/* Tests and benchmarks. */
int eg_gate_prog_fd(struct eg_gate *g);                 /* the XDP program (-1 if pinned-only) */
int eg_gate_map_fd(struct eg_gate *g, const char *name); /* by EG_MAP_* name */
int eg_gate_set_clock_offset(struct eg_gate *g, int64_t offset_ns);
int eg_gate_set_observe(struct eg_gate *g, bool on);
uint64_t eg_gate_now_ns(struct eg_gate *g); /* CLOCK_MONOTONIC + test offset */
/* Loads, pushes config, but attaches nothing and pins under cfg->gate.pin_root. */
struct eg_gate *eg_gate_load(const struct eg_gate_config *gc, char *err, size_t errlen);

/* --- privilege separation (docs/privsep.md) ------------------------------------------------ */
/* Privileged side: read-only (BPF_F_RDONLY) duplicates of every map fd, in the order
 * eg_gate_remote() takes them; returns the count or -1. Needs CAP_SYS_ADMIN (by-id open). */
int eg_gate_ro_fds(struct eg_gate *g, int *fds, int max);
/* Where the gate sits in libxdp's dispatcher, forks the helper that takes it out at
 * eg_gate_close(), before the caller drops the capabilities that needs (gate_detacher.c).
 * 0 (also when there is nothing to do), or -1 (errno) when it could not be started. */
int eg_gate_detacher_start(struct eg_gate *g);
/* The interfaces it is attached to (name, XDP mode flags, plus EG_GATE_IF_DISPATCHER when
 * through libxdp's dispatcher); returns the count. */
#define EG_GATE_IF_DISPATCHER (1u << 31) /* no XDP_FLAGS_* bit: travels in the privsep hello */
int eg_gate_attachments(struct eg_gate *g, char (*names)[16], uint32_t *flags, int max);
/* Writes a validated request of the unprivileged process into the maps. 0 or -1 (errno). */
int eg_gate_rule_apply(struct eg_gate *g, bool allow, const uint8_t addr[16], unsigned plen,
		       const struct eg_rule *r, uint64_t flags, const char *note);
int eg_gate_rule_remove(struct eg_gate *g, bool allow, const uint8_t addr[16], unsigned plen);
int eg_gate_flow_apply(struct eg_gate *g, const struct eg_flow_key *k, const struct eg_flow_val *v);
int eg_gate_session_apply(struct eg_gate *g, const struct eg_sess_key *k, const struct eg_sess_val *v);
/* Unprivileged side: a gate over read-only map fds (taken over; closed by eg_gate_close,
 * which never detaches it). Reads (lists, stats, status, eg_gate_map_fd lookups) use them;
 * every write above (deny/allow add/del, revocations, GC) becomes a request to the
 * privileged process (priv_client.c). */
struct eg_gate *eg_gate_remote(const char *pin_root, const int *fds, int n, const char (*names)[16],
			       const uint32_t *flags, int n_if, char *err, size_t errlen);

/* Reason names: "pass", "nonip", "allow", "deny", "ban", "revoked", "ratelimit",
 * "pktlimit", "malformed", "shed", "observed". */
const char *eg_gate_reason_name(unsigned reason);
/* Rule reasons: "static", "manual", "ban", "abuse", "scanner"; parse accepts those
 * names or a number < EG_RULE__COUNT. -1 if unknown. */
const char *eg_gate_rule_name(uint32_t reason);
int eg_gate_rule_parse(const char *s, uint32_t *out);

/* "198.51.100.7", "198.51.100.0/24", "2001:db8::/32" -> struct eg_prefix (mapped;
 * host bits cleared). 0 ok, -1 invalid. format is the inverse. */
int eg_gate_prefix_parse(const char *s, struct eg_prefix *out);
void eg_gate_prefix_format(const struct eg_prefix *p, char *buf, size_t len);

#endif
