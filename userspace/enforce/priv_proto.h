/* priv_proto.h - the messages between edgegated's two processes (docs/privsep.md).
 *
 * The privileged process (priv.c) owns the XDP attachment, the writable BPF map fds
 * and the NETLINK_SOCK_DIAG socket. The unprivileged process (everything else: HTTP,
 * admin socket, store, OIDC) holds no capability and asks it over a SOCK_SEQPACKET
 * socketpair. Every request is one struct eg_priv_req and gets exactly one struct
 * eg_priv_reply; sizes are fixed, so a datagram of any other size, another version or
 * an unknown op makes the privileged side close the channel (and both processes exit).
 *
 * At start the privileged side sends one struct eg_priv_hello, with read-only
 * (BPF_F_RDONLY) duplicates of the gate's map fds attached (SCM_RIGHTS) when a gate is
 * loaded: the unprivileged side reads statistics and lists itself, it never writes. */
#ifndef EG_PRIV_PROTO_H
#define EG_PRIV_PROTO_H

#include <stdint.h>

#include "edgegate/abi.h"
#include "sockdestroy.h"

#define EG_PRIV_VERSION 3 /* 2: RULE_PUT carries the rule's note; 3: NOTE_FLOWS */
#define EG_PRIV_MAX_IF 16
#define EG_PRIV_MAX_FDS 32 /* the gate has 25 maps */

enum eg_priv_op {
	EG_PRIV_NOTE_FLOW = 1,  /* this flow carried an allowed request of session S */
	EG_PRIV_PROBE_FLOW,     /* does a noted flow's server socket still exist */
	EG_PRIV_KILL_FLOW,      /* destroy a noted flow's server socket (SOCK_DESTROY) */
	EG_PRIV_REVOKE_FLOW,    /* revoked-flow map entry for a noted flow of session S */
	EG_PRIV_REVOKE_SESSION, /* revoked-session map entry */
	EG_PRIV_RULE_PUT,       /* deny/allow prefix P until T (reason) */
	EG_PRIV_RULE_DEL,       /* remove a deny/allow prefix */
	EG_PRIV_GC,             /* expire the gate's maps now */
	EG_PRIV_NOTE_FLOWS,     /* NOTE_FLOW for each of u.notes.count flows that follow the request */
	EG_PRIV__OP_COUNT
};

/* A flow as the socket sees it: local = nginx's side, remote = the client. */
struct eg_priv_flow {
	struct eg_sock_tuple t;
	uint8_t session[16]; /* first 16 bytes of SHA-256(session id) */
};

struct eg_priv_rule {
	uint8_t addr[16]; /* IPv4-mapped or IPv6 */
	uint32_t plen;    /* mapped space, 0..128 */
	uint32_t allow;   /* 0 deny, 1 allow */
	struct eg_rule r; /* expires_ns (CLOCK_MONOTONIC, 0 = never), reason */
	uint64_t flags;   /* BPF_ANY or BPF_NOEXIST */
	char note[EG_NOTE_MAX]; /* operator's text (--reason), NUL-terminated, "" = none */
};

struct eg_priv_req {
	uint32_t version; /* EG_PRIV_VERSION */
	uint32_t op;      /* enum eg_priv_op */
	uint64_t seq;     /* echoed in the reply */
	union {
		struct eg_priv_flow flow;       /* NOTE, PROBE, KILL (session ignored by PROBE/KILL) */
		struct {
			struct eg_flow_key k;
			struct eg_flow_val v;   /* v.session must be the session the flow was noted for */
		} revoke_flow;
		struct {
			struct eg_sess_key k;
			struct eg_sess_val v;   /* revoked_unix is set by the privileged side */
		} revoke_session;
		struct eg_priv_rule rule;       /* RULE_PUT, RULE_DEL (r and flags ignored) */
		struct {
			uint32_t count; /* 1..EG_PRIV_NOTE_BATCH struct eg_priv_flow after the request */
		} notes;
		uint8_t raw[112];
	} u;
};

/* NOTE_FLOWS is the one request longer than struct eg_priv_req: the request, then exactly
 * u.notes.count flows (the datagram's size must say so). The unprivileged side queues the
 * verdict path's notes and sends them in one datagram before any other request (and when
 * the queue is full), so the privileged side knows every noted flow before it is asked to
 * probe, kill or revoke one, and wakes once per batch instead of once per new flow. */
#define EG_PRIV_NOTE_BATCH 64

struct eg_priv_reply {
	uint32_t version;
	uint32_t op;
	uint64_t seq;
	int32_t rc;    /* 0, or -errno (-EPERM: refused by validation, -EAGAIN: over the rate);
			* NOTE_FLOWS: the first flow's error when any was not recorded */
	uint32_t pad;
	int64_t value; /* PROBE: 1 alive / 0 gone; GC: entries removed; NOTE_FLOWS: flows recorded */
};

/* The wire format: both sides are the same binary, but the sizes are the protocol. */
_Static_assert(sizeof(struct eg_priv_rule) == 112, "eg_priv_rule is 112 bytes on the wire");
_Static_assert(sizeof(struct eg_priv_req) == 128, "eg_priv_req is 128 bytes on the wire");
_Static_assert(sizeof(struct eg_priv_reply) == 32, "eg_priv_reply is 32 bytes on the wire");
_Static_assert(sizeof(struct eg_priv_flow) == 52, "eg_priv_flow is 52 bytes on the wire");
#define EG_PRIV_MAX_DGRAM (sizeof(struct eg_priv_req) + EG_PRIV_NOTE_BATCH * sizeof(struct eg_priv_flow))

struct eg_priv_hello {
	uint32_t version;
	uint32_t n_fds;      /* read-only map fds attached, in gate.c's map order (0: no gate) */
	uint32_t n_if;
	uint32_t sockdiag;   /* 1 when the sock_diag socket is open */
	struct {
		char name[16];
		uint32_t xdp_flags;
	} ifs[EG_PRIV_MAX_IF];
	char pin_root[256];
};

#endif
