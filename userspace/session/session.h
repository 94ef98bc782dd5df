/* session.h - login sessions: opaque tickets, sealed server-side records, an
 * in-memory hot cache in front of the store, idle/absolute lifetimes, sid/sub
 * indexes for logout, single-flight refresh.
 *
 * Ticket (the cookie value): "<id>.<secret>", both base64url (16 and 32 random
 * bytes). The public session id (admin, revocation, identity->session_id) is
 * hex(SHA-256(id)); it is also the store key, so a store dump reveals no ticket.
 * The record's tokens and claims are sealed with a key derived from the ticket
 * secret (HKDF), so a store dump cannot be turned into a working session either. */
#ifndef EG_SESSION_H
#define EG_SESSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h" /* enum eg_store_use */

struct eg_daemon;
struct eg_req;
struct eg_identity;
struct eg_config;
struct eg_sessions;

#define EG_TICKET_MAX 80
#define EG_SESSION_ID_LEN 64 /* hex */

/* What a login (or a refresh) produces. Creation borrows everything; a refresher
 * fills malloc'd strings and a new claims reference (released by
 * eg_session_new_clear). */
struct eg_session_new {
	json_t *claims;
	char *sub;
	char *sid;
	char *id_token;
	char *access_token;
	char *refresh_token;
	int64_t token_exp; /* expiry of the access/id token (UNIX s), 0 = unknown */
};
void eg_session_new_clear(struct eg_session_new *n);

/* Exchanges a refresh token; 0 ok (out filled), -1 failed (the session ends).
 * sub is the session's subject (a refreshed id_token must carry the same). */
typedef int (*eg_refresh_fn)(struct eg_daemon *d, const char *refresh_token, const char *sub,
			     struct eg_session_new *out);

/* Creates d->sessions (opens d->store from the config when it is NULL). 0 ok. */
int eg_sessions_init(struct eg_daemon *d, char *err, size_t errlen);
void eg_sessions_free(struct eg_daemon *d);
void eg_sessions_set_refresher(struct eg_sessions *s, eg_refresh_fn fn);

/* Creates a session, writes the ticket (cookie value) and the public session id. */
int eg_session_create(struct eg_daemon *d, const struct eg_session_new *in, char *ticket,
		      size_t ticket_len, char session_id[EG_SESSION_ID_LEN + 1]);

/* What eg_session_identity found (docs/sessions.md, "Tickets"). Only FORGED is an
 * attack signal (counted toward a ban); NONE covers no cookie and a genuine ticket
 * whose session expired, was signed out or revoked. */
enum eg_session_result {
	EG_SESSION_OK = 0,
	EG_SESSION_NONE = -1,        /* no session, or one that ended normally */
	EG_SESSION_FORGED = -2,      /* malformed cookie, a ticket this deployment never issued */
	EG_SESSION_STORE_ERROR = -3, /* the store could not be read: deny (fail closed) */
	EG_SESSION_NEEDS_STORE = -4, /* EG_STORE_USE_NONE: only the store can decide (nothing done) */
};

/* Reads the session cookie (cfg->cookie.name) from r; 0 = valid session: fills
 * id->kind = EG_ID_SESSION, id->claims (new reference), id->session_id; otherwise an
 * enum eg_session_result < 0. A cached session costs a hash lookup and a
 * constant-time secret compare; refresh-before-expiry is single-flight. */
int eg_session_identity(struct eg_daemon *d, const struct eg_req *r, struct eg_identity *id);
/* Same, from a ticket string (tests, non-HTTP callers). */
int eg_session_identity_ticket(struct eg_daemon *d, const char *ticket, struct eg_identity *id);
/* With the store used as `use` says (http.h; eg_session_identity takes it from r->pass):
 * EG_STORE_USE_NONE answers from memory or returns EG_SESSION_NEEDS_STORE having done
 * nothing (a miss, the shared store's recheck, expiry, a refresh or a last-seen
 * write-back due); EG_STORE_USE_DOWN decides as during a store outage without asking it
 * (docs/sessions.md, "Several hosts"). */
int eg_session_identity_ticket_ex(struct eg_daemon *d, const char *ticket, struct eg_identity *id,
				  enum eg_store_use use);

/* How revocations were recorded (docs/revocation.md, "Durable revocation"): in the
 * store (revoked marker written and read back, record deleted), or only in the local
 * tombstone file of state_dir (the store failed; retried in the background), or
 * nowhere durable (both failed: the caller must not answer success). */
struct eg_revoke_result {
	int ended;          /* sessions ended */
	int local;          /* ... recorded only in the local tombstone file */
	int failed;         /* ... recorded nowhere durable */
	bool lookup_failed; /* sessions of a sub/sid could not be listed (store error) */
};
/* "store", "local" or "none" (failed or lookup_failed). */
const char *eg_revoke_result_durability(const struct eg_revoke_result *res);

/* Ends the session the ticket names (sign-out). Returns 1 if one ended, 0 if none;
 * *id_token (may be NULL) receives a malloc'd copy of its id_token for id_token_hint;
 * res (may be NULL) says how the revocation was recorded: a caller that acknowledges
 * the revocation to someone uses the _ex form and answers an error for "none". */
int eg_session_end_ticket_ex(struct eg_daemon *d, const char *ticket, const char *reason,
			     char **id_token, struct eg_revoke_result *res);
int eg_session_end_ticket(struct eg_daemon *d, const char *ticket, const char *reason,
			  char **id_token);

/* For admin: array of {session_id, sub, sid, created, last_seen, expires}. */
json_t *eg_sessions_list(struct eg_daemon *d, const char *sub_filter);

/* Ends every session matching session_id, or sid (restricted to sub when both
 * are given), or sub; returns the count ended (-1 if nothing was given). Each is
 * recorded in EG_NS_REVOKED (key = session id) for the kernel side. */
int eg_session_revoke_ex(struct eg_daemon *d, const char *session_id, const char *sub,
			 const char *sid, const char *reason, struct eg_revoke_result *res);
int eg_session_revoke(struct eg_daemon *d, const char *session_id, const char *sub,
		      const char *sid, const char *reason);

/* Tests: called on a cache miss between the store read and the cache insert (the
 * window of the reload race). */
typedef void (*eg_session_load_hook)(struct eg_daemon *d, const char *session_id, void *arg);
void eg_sessions_set_load_hook(struct eg_sessions *s, eg_session_load_hook fn, void *arg);

/* Revocations recorded only locally, waiting for the store (metrics, tests). */
size_t eg_sessions_tombs_pending(struct eg_daemon *d);
/* Retries the pending local revocations against the store now (the session GC
 * thread does every second); returns how many the store took. */
long eg_sessions_retry_tombs(struct eg_daemon *d);

/* Builds a Set-Cookie value with the configured domain/Secure/HttpOnly/SameSite=Lax.
 * max_age < 0: no Max-Age (browser session); 0: deletes the cookie. Caller frees. */
char *eg_cookie_header(const struct eg_config *cfg, const char *name, const char *value,
		       const char *path, int64_t max_age);

/* Number of sessions in the hot cache (metrics/tests). */
size_t eg_sessions_cached(struct eg_daemon *d);
/* Drops the hot cache (tests: simulates a restart or another node). */
void eg_sessions_flush_cache(struct eg_daemon *d);
/* Drops one session (public id, 64 hex) from this node's cache, e.g. when another node
 * revoked it: the next request reads the store and finds it gone. */
void eg_session_forget(struct eg_daemon *d, const char *session_id);

#endif
