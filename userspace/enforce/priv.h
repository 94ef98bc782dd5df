/* priv.h - privilege separation: a small privileged process and the unprivileged
 * daemon that asks it (docs/privsep.md; messages in priv_proto.h).
 *
 *   eg_priv_split()    forks before any thread exists. The parent becomes the privileged
 *                      process (priv.c) and never returns; the child returns 0 and is the
 *                      daemon proper, talking to the parent through priv_client.c.
 *   eg_privc_*()       the client calls; thread-safe (one request at a time on the channel).
 *                      All return 0 / -1 with errno unless said otherwise. */
#ifndef EG_PRIV_H
#define EG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgegate/abi.h"

struct eg_config;
struct eg_gate;
struct eg_sock_tuple;

/* In the unprivileged child: the channel's fd (for eg_privc_start); -1 with err set when the
 * split could not be made. The parent never returns (it exits with the child's status). */
int eg_priv_split(const struct eg_config *cfg, char *err, size_t errlen);

/* The privileged process on an existing channel: gate, sock_diag, the drop, the request
 * loop; exits when the channel closes (with the child's status when it forked one). Never
 * returns. eg_priv_split() calls it; tests call it in a process of their own. */
void eg_priv_run(const struct eg_config *cfg, int fd) __attribute__((noreturn));

/* One datagram from the child (the privileged loop, and fuzz_priv): -1 when it is malformed
 * and the channel must close, else 0 with *reply filled (rc 0 or -errno). Without a loaded
 * gate and sock_diag (fuzzing) gate requests answer -ENODEV and socket ones -EBADF. */
struct eg_priv_reply;
int eg_priv_answer(const void *buf, size_t len, struct eg_priv_reply *reply);
/* The size a datagram carrying request q must have: sizeof(*q), or more for NOTE_FLOWS
 * (its flows follow); 0 when its count is out of bounds. */
struct eg_priv_req;
size_t eg_priv_req_size(const struct eg_priv_req *q);
/* The privileged side's check of a RULE_PUT/RULE_DEL body: prefix bounds, allow, and for
 * a put the reason, flags, expiry and note (terminated, eg_gate_note_valid). 0 or -EPERM. */
struct eg_priv_rule;
int eg_priv_rule_ok(const struct eg_priv_rule *r, bool put);
/* The privileged side's check of a noted flow: both ports, one address family. */
bool eg_priv_flow_ok(const struct eg_sock_tuple *t);

/* --- unprivileged side (priv_client.c) ---------------------------------------------------- */
/* Takes over the channel and reads the privileged side's hello: *gate is the read-only view
 * of the gate (NULL without one). -1 with err set when the privileged side failed. */
int eg_privc_start(int fd, struct eg_gate **gate, char *err, size_t errlen);
bool eg_privc_active(void);
bool eg_privc_has_sockdiag(void);
/* Drops every capability of every thread and, with user set, to that user (setuid in
 * all threads through glibc), sets no_new_privs, then checks /proc/self/task/<all>. */
int eg_privc_drop_all(const char *user);
/* Right after the split, single-threaded: without user, no capability at all from here on;
 * with user, only what binding and the later setuid need (CAP_SETUID, CAP_SETGID,
 * CAP_NET_BIND_SERVICE, CAP_DAC_OVERRIDE), which eg_privc_drop_all() then clears. */
int eg_privc_trim_caps(bool will_setuid);

int eg_privc_note_flow(const struct eg_sock_tuple *t, const uint8_t session[16]);
/* The verdict path's note: checked here as the privileged side would (-1, EPERM), then
 * queued; the queue goes out in one NOTE_FLOWS datagram when it is full and, always,
 * before any other request is sent (so a probe, kill or revoked-flow write never
 * overtakes a note queued before it). A flow the privileged side then refuses (its rate)
 * is logged once. */
int eg_privc_note_flow_queued(const struct eg_sock_tuple *t, const uint8_t session[16]);
/* Sends the queued notes now (the next request would). 0, or -1 with errno. */
int eg_privc_flush_notes(void);
int eg_privc_probe_flow(const struct eg_sock_tuple *t); /* 1 alive, 0 gone, -errno */
int eg_privc_kill_flow(const struct eg_sock_tuple *t);  /* 0, -ENOENT, -errno */
int eg_privc_revoke_flow(const struct eg_flow_key *k, const struct eg_flow_val *v);
int eg_privc_revoke_session(const struct eg_sess_key *k, const struct eg_sess_val *v);
int eg_privc_rule_put(bool allow, const uint8_t addr[16], unsigned plen, const struct eg_rule *r,
		      uint64_t flags, const char *note);
int eg_privc_rule_del(bool allow, const uint8_t addr[16], unsigned plen);
long eg_privc_gate_gc(void);

#endif
