/* gate_priv.h - what gate.c (load, attach, config, statistics, flows) and
 * gate_rules.c (the deny/allow tables) share. Not part of the gate's API. */
#ifndef EG_GATE_PRIV_H
#define EG_GATE_PRIV_H

#include <limits.h>
#include <stddef.h>
#include <net/if.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "edgegate/abi.h"

/* The rule maps come in table order (enum eg_table_id): M_DENY4 + table. */
enum {
	M_CFG,
	M_PORTS,
	M_DENY4,
	M_ALLOW4,
	M_DENY6,
	M_ALLOW6,
	M_DENY4_IDX,
	M_ALLOW4_IDX,
	M_DENY4_SLOTS, /* IPv4 deny rules direct-mapped (mapped: slots4) */
	M_DENY6_IDX,
	M_TABLES,
	M_NOTES,
	M_RATE,
	M_FLOWS,
	M_SESSIONS,
	M_STATS,
	M_FLOWSLOTS,
	M_FLOOD,
	M_SYNBOX,
	M_DENY6S, /* IPv6 deny rules of /64 or shorter (the deny6 table's other half) */
	M_DENY6S_SLOTS, /* those direct-mapped (mapped: slots6) */
	M_DENY6_SLOTS, /* IPv6 deny rules of /65../128 direct-mapped (mapped: slots6l) */
	M_ALLOW4_SLOTS, /* IPv4 allow rules direct-mapped (mapped: aslots4) */
	M_ALLOW6_IDX, /* per-/48 length groups of the IPv6 allow rules */
	M_ALLOW6S_SLOTS, /* IPv6 allow rules of /64 or shorter direct-mapped (mapped: aslots6) */
	M_ALLOW6_SLOTS, /* IPv6 allow rules of /65../128 direct-mapped (mapped: aslots6l) */
	M__COUNT
};

#define EG_GATE_MAX_IF 16
/* under the pin root: the writers' lock (flock), apart from the daemon's pin-root lock */
#define EG_GATE_WLOCK_DIR "eg_wlock" /* bpffs refuses names with a dot */

struct eg_gate_if {
	char name[IF_NAMESIZE];
	int ifindex;
	uint32_t flags; /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE */
	void *xp;       /* struct xdp_program * when attached through libxdp's dispatcher */
	bool dispatcher; /* attached through the dispatcher (also known where xp is not) */
};

struct eg_gate {
	struct edgegate_bpf *skel; /* NULL when opened from pins only */
	int fd[M__COUNT];
	bool own_fd;               /* fds from bpf_obj_get: close them */
	int lockfd;                /* the pin root directory: flock() serialises writers across processes */
	int detacher_fd;           /* gate_detacher.c helper's socket; -1 none */
	int detacher_pid;
	char pin_root[PATH_MAX];
	struct eg_gate_if ifs[EG_GATE_MAX_IF];
	int n_if;
	struct eg_store *store;
	int ncpus;
	bool remote;        /* the unprivileged process: read-only fds, writes via priv_client.c */
	pthread_mutex_t mu; /* serialises cfg read-modify-write and store writes */
	struct eg_gate_keyset *shared; /* keys known to be in the store (gate_shared.c; wlock) */
	/* The deny rules' buckets (eg_deny4_slots_v1, eg_deny6s_slots_v1), mapped shared
	 * where this process writes the tables (not in the unprivileged process). */
	struct eg_slots4 *slots4;
	struct eg_slots6 *slots6;
	struct eg_slots6l *slots6l; /* eg_deny6_slots_v2 */
	struct eg_slots4 *aslots4;  /* eg_allow4_slots_v1 (EG_ALLOW4_SLOTS_LOG2) */
	struct eg_slots6 *aslots6;  /* eg_allow6s_slots_v1 (EG_ALLOW6_SLOTS_LOG2) */
	struct eg_slots6l *aslots6l; /* eg_allow6_slots_v1 (EG_ALLOW6_SLOTS_LOG2) */
	/* log2 of their bucket counts: the arrays' max_entries (abi.h eg_slots_log2) */
	__u32 slots4_log2, slots6_log2, slots6l_log2;
};

extern const char *const eg_gate_map_names[M__COUNT];

/* Writers of the rule tables (this process's threads and other processes). */
void eg_gate_wlock(struct eg_gate *g);
void eg_gate_wunlock(struct eg_gate *g);

/* gate_rules.c: rule put/delete in the mapped address space (plen 0..128); the
 * caller holds eg_gate_wlock. put: flags BPF_ANY or BPF_NOEXIST. On a remote gate
 * (the unprivileged process) both are requests to the privileged process, which
 * validates them and calls these under its own eg_gate_wlock. */
int eg_rules_put(struct eg_gate *g, bool allow, const uint8_t addr[16], unsigned plen,
		 const struct eg_rule *r, uint64_t flags, const char *note);
int eg_rules_del(struct eg_gate *g, bool allow, const uint8_t addr[16], unsigned plen);
/* Removes expired rules, recounts the tables, rebuilds the IPv4 indexes when
 * anything changed (or force). Caller holds the lock. Returns removed or -1. */
long eg_rules_gc(struct eg_gate *g, uint64_t now, bool force);
/* Removes every rule of reason EG_RULE_STATIC. Caller holds the lock. */
int eg_rules_drop_static(struct eg_gate *g);

/* gate_flows.c: the revoked-flow slots beside eg_rflow_v1; callers hold the writers' lock. */
int eg_flows_put(struct eg_gate *g, const struct eg_flow_key *k, const struct eg_flow_val *v);
int eg_flows_del(struct eg_gate *g, const struct eg_flow_key *k);
int eg_flows_rebuild(struct eg_gate *g);

/* gate.c: a map of an object about to load takes its pinned size (want 0) or want. */
struct bpf_map;
struct bpf_object;
void eg_gate_size_map(struct eg_gate *g, struct bpf_map *m, uint32_t want);
/* The deny buckets' sizes into an object before load (sizes already set on its maps;
 * eg_gate_size_map): the arrays' log2s into .rodata, where XDP reads them. */
int eg_gate_set_slots_rodata(struct bpf_object *obj, char *err, size_t errlen);
/* gate_xdp.c: attach through libxdp's dispatcher at run priority prio. 0 ok;
 * EG_XDP_FAILED with why set (the caller falls back to a plain attach);
 * EG_XDP_NO_DISPATCHER: the kernel refuses the dispatcher (no other mode will
 * do better), libxdp's lone copy of the program is left attached for the plain
 * attach to replace atomically. */
enum { EG_XDP_FAILED = -1, EG_XDP_NO_DISPATCHER = -2 };
int eg_gate_xdp_attach(struct eg_gate *g, int ifindex, bool native, unsigned prio, void **out,
		       char *why, size_t whylen);
void eg_gate_xdp_detach(void *xp, int ifindex, bool native);
/* Takes the edgegate_xdp out of the dispatcher on ifindex, found by name (needs root's
 * capabilities: libxdp rebuilds the dispatcher). 1 done, 0 none there, -1 failed. */
int eg_gate_xdp_detach_named(int ifindex);
/* Frees the daemon's handle of a program something else detached. */
void eg_gate_xdp_forget(void *xp);
/* gate_detacher.c: asks the helper (eg_gate_detacher_start) to detach; true when it did. */
bool eg_gate_detacher_finish(struct eg_gate *g);

/* gate_rules.c: an entry's key in the store's deny namespace ("deny <prefix>"). */
void eg_gate_store_key(bool allow, const uint8_t addr[16], unsigned plen, char *buf, size_t len);
/* gate_shared.c: the store holds key (written or applied here), or no longer does.
 * Caller holds eg_gate_wlock. */
void eg_gate_shared_mark(struct eg_gate *g, const char *key, bool in_store);
void eg_gate_shared_free(struct eg_gate *g);

void eg_gate_mask_addr(uint8_t a[16], unsigned plen);
bool eg_gate_is_v4mapped(const uint8_t a[16]);
void eg_gate_prefix_text(const uint8_t addr[16], unsigned plen, char *buf, size_t len);

#endif
