/* revoke.h - revocation that reaches the wire: the TCP flows each session has used,
 * and what happens to them when the session ends (XDP revoked-flow/session maps,
 * server-side socket destroy, expiry). */
#ifndef EG_REVOKE_H
#define EG_REVOKE_H

#include <stddef.h>
#include <stdint.h>

struct eg_daemon;

/* The client's TCP connection as nginx saw it (X-Real-IP/X-Real-Port = client,
 * X-Server-Addr/X-Server-Port = nginx's side). Addresses IPv4-mapped. */
struct eg_flow_tuple {
	uint8_t client[16];
	uint8_t server[16];
	uint16_t client_port;
	uint16_t server_port;
};

int eg_revoke_init(struct eg_daemon *d, char *err, size_t errlen);
void eg_revoke_free(struct eg_daemon *d);

/* What eg_flows_note did with a flow. */
enum eg_flow_note {
	EG_FLOW_NOTED = 0,    /* tracked (or nothing could kill it anyway: served as before) */
	EG_FLOW_SESSION_FULL, /* the session holds flows_per_session live flows: not tracked */
	EG_FLOW_TABLE_FULL,   /* all sessions together hold max_flows: not tracked */
	EG_FLOW_SUBJECT_FULL, /* all sessions of the subject hold flows_per_subject: not tracked */
};

/* Verdict path, for every allowed session request: remembers the flow (bounded,
 * expiring). Must be cheap: a known flow is one lookup under a striped lock. A new flow
 * past the bounds is not tracked, and a revocation could not undo an allow on it: the
 * verdict must then refuse the request (403 too_many_connections). Closed flows of a
 * session at its cap are probed and dropped first; a live one is never dropped. */
enum eg_flow_note eg_flows_note(struct eg_daemon *d, const char *session_id, const struct eg_flow_tuple *t);
/* The same, also bounding the live flows of all sessions of one subject (the session's
 * `sub`) to flows_per_subject, so that one user signing in many times cannot fill the
 * table for everyone. subject NULL or "": no subject bound (eg_flows_note). A session's
 * subject is the one given with its first flow. */
enum eg_flow_note eg_flows_note_subject(struct eg_daemon *d, const char *session_id, const char *subject,
					const struct eg_flow_tuple *t);

/* A session ended (sign-out, back-channel logout, admin revoke, refresh failure):
 * its flows go into the kernel maps and their server sockets are destroyed.
 * Returns the number of flows acted on, -1 on error. Safe from any thread. */
int eg_revoke_session_flows(struct eg_daemon *d, const char *session_id, const char *reason);

struct eg_req;
/* The request's own client flow from X-Real-IP/X-Real-Port/X-Server-Addr/X-Server-Port;
 * 0 when all four parts are present and valid. */
int eg_flow_from_request(const struct eg_req *r, struct eg_flow_tuple *f);
/* Spares one flow from the revocations this thread runs until called with NULL: the
 * connection carrying a sign-out must live to carry its answer. */
void eg_revoke_spare(const struct eg_flow_tuple *t);

/* --- issue-5 extensions (docs/revocation.md) ------------------------------------------- */

/* eg_sess_val.reason / eg_flow_val.reason in the kernel's revoked-session map. */
enum eg_revoke_reason {
	EG_REVOKE_OTHER = 0,
	EG_REVOKE_ADMIN,          /* edgegatectl revoke */
	EG_REVOKE_SIGN_OUT,       /* /oauth2/sign_out */
	EG_REVOKE_BACKCHANNEL,    /* OIDC back-channel logout */
	EG_REVOKE_REFRESH_FAILED, /* the OP refused the refresh token */
	EG_REVOKE_EXPIRED,        /* idle or absolute lifetime over */
	EG_REVOKE_RELOGIN,        /* replaced by a new login in the same browser */
	EG_REVOKE__COUNT
};
uint32_t eg_revoke_reason_code(const char *reason);
const char *eg_revoke_reason_name(uint32_t code);

/* revocation.flows_per_session: browsers open ~6 connections per host, to several hosts,
 * plus WebSockets; behind a load balancer a session's requests spread over its pool. */
#define EG_FLOWS_PER_SESSION 128

/* Tunables (defaults in brackets); tests shorten them. Zero fields keep the default. */
struct eg_revoke_opts {
	unsigned per_session;       /* live flows per session [EG_FLOWS_PER_SESSION]; past it, refused */
	unsigned max_flows;         /* all sessions together [EG_MAX_FLOWS] */
	unsigned per_subject;       /* all sessions of one subject [max_flows / 16, at least per_session] */
	unsigned idle_s;            /* a flow unseen this long is probed; dead ones are dropped [300] */
	unsigned unprobed_max_s;    /* without sock_diag, dropped after this [3600] */
	unsigned flow_ttl_s;        /* revoked-flow map entry when the socket was destroyed [30] */
	unsigned flow_ttl_unconfirmed_s; /* ... when it could not be destroyed [600] */
	unsigned session_ttl_s;     /* revoked-session map entry [86400] */
	unsigned tombstone_s;       /* a revoked id kills flows noted by in-flight verdicts [60] */
	unsigned gc_interval_ms;    /* [10000] */
	unsigned sync_ms;           /* deprecated (store.sync): events replaced the polling; ignored */
};
/* Applies before eg_revoke_init (tests). */
void eg_revoke_set_opts(const struct eg_revoke_opts *o);
/* Runs one expiry pass now (tests); returns flows dropped. */
long eg_revoke_gc(struct eg_daemon *d);
size_t eg_flows_tracked(struct eg_daemon *d);
/* Copies up to max flows of a session; returns the count. */
size_t eg_flows_of(struct eg_daemon *d, const char *session_id, struct eg_flow_tuple *out, size_t max);

/* Shared store (Redis): one pass over EG_NS_REVOKED now (a resync, run by events.c only
 * when this node missed events the stream no longer keeps): sessions revoked on other
 * nodes at or after the high-water mark have their flows on this node killed (no store
 * write, not counted in edgegate_revocations_total again). Returns sessions acted on,
 * -1 when the store is not shared. */
long eg_revoke_sync(struct eg_daemon *d);
/* The same, from since_unix (minus a slack for clock skew) on. */
long eg_revoke_resync(struct eg_daemon *d, int64_t since_unix);
/* A revocation event from the stream (another node): the session leaves this node's
 * cache and its flows here die. 1 flows acted on, 0 none, -1 bad input. */
int eg_revoke_remote(struct eg_daemon *d, const char *session_id, const char *reason, int64_t at);

/* What a revocation from another node must also do to this node's session cache. The
 * session layer registers it (eg_sessions_init): revocation depends on no session code,
 * sessions call down into revocation, never the other way round. */
typedef void (*eg_revoke_forget_fn)(struct eg_daemon *d, const char *session_id);
void eg_revoke_on_remote(struct eg_daemon *d, eg_revoke_forget_fn forget);

#endif
