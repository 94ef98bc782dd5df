/* abuse.h - per-source accounting on the verdict path: failed verdicts past a
 * threshold within a window ban the source (kernel deny map when the gate is
 * attached, userspace otherwise), with exponential back-off for repeat offenders;
 * optional per-source verdict rate limits. Sources are canonicalised (IPv4-mapped
 * IPv6 folded to IPv4, IPv6 grouped to gate.ipv6_group_prefix). Allowlisted sources
 * are never banned. */
#ifndef EG_ABUSE_H
#define EG_ABUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct eg_daemon;

int eg_abuse_init(struct eg_daemon *d, char *err, size_t errlen);
void eg_abuse_free(struct eg_daemon *d);

/* Before a verdict: 0 proceed; -1 the source is banned or over its verdict rate
 * (*reason = "banned" | "rate_limited"), answer 403. */
int eg_abuse_check(struct eg_daemon *d, const uint8_t src[16], const char **reason);

/* After a verdict: counts failures (401/403 for credential reasons) per source. */
void eg_abuse_note(struct eg_daemon *d, const uint8_t src[16], int status, const char *reason);
/* The same, for a caller that must not wait for the store (a verdict on an HTTP thread,
 * offload.h): a ban this failure decides is refused by eg_abuse_check at once, and handed
 * back in *pending (when pending is given) instead of being recorded in the store and the
 * kernel maps here; the caller passes it to eg_abuse_ban_commit (which frees it). */
struct eg_abuse_ban;
void eg_abuse_note_ex(struct eg_daemon *d, const uint8_t src[16], int status, const char *reason,
		      struct eg_abuse_ban **pending);
void eg_abuse_ban_commit(struct eg_daemon *d, struct eg_abuse_ban *b);

/* --- issue-5 extensions (docs/revocation.md) ------------------------------------------- */
#include <stdbool.h>
#include <jansson.h>

struct eg_config;
struct eg_prefix;

/* Whether a verdict outcome counts as a failed credential attempt: 401s other than
 * "no_identity" (no credential at all) and the self-healing "no_key"/"not_yet";
 * 403s for rejected client certificates. Policy denials and no_route do not count. */
bool eg_abuse_counts(int status, const char *reason);
/* The canonical source a counter/ban applies to: IPv4 (also written IPv4-mapped)
 * as a /32, IPv6 as its /gate.ipv6_group_prefix (default /64). */
void eg_abuse_canonical(const struct eg_config *cfg, const uint8_t src[16], struct eg_prefix *out);
/* Active bans (gauge), and the list as JSON [{prefix, ttl_s, offenses}]. */
size_t eg_abuse_bans_active(struct eg_daemon *d);
json_t *eg_abuse_bans_json(struct eg_daemon *d);
/* Lifts a ban (userspace and kernel). 0 ok, -1 none. */
int eg_abuse_unban(struct eg_daemon *d, const struct eg_prefix *p);
/* Tests: shifts the abuse module's clocks (monotonic and wall) by offset_ns. */
void eg_abuse_set_clock_offset(struct eg_daemon *d, int64_t offset_ns);
/* Runs one sweep now (tests). Returns entries removed. */
long eg_abuse_gc(struct eg_daemon *d);

/* --- shared store (Redis): cross-node ban reconciliation ------------------------------- */
/* Deprecated (store.sync): bans arrive as events; kept for callers, does nothing. */
void eg_abuse_sync_interval_ms(unsigned ms);
/* One full reconciliation pass now (a resync, run by events.c only when this node missed
 * events the stream no longer keeps): applies live EG_NS_BAN records this node lacks,
 * lifts local bans whose record was deleted. Returns bans applied + lifted, -1 when the
 * store is not shared. */
long eg_abuse_sync(struct eg_daemon *d);
/* Ban events from the stream (another node): key is the canonical prefix, val the ban
 * record. 1 applied / lifted here, 0 nothing to do, -1 bad input. */
int eg_abuse_remote_ban(struct eg_daemon *d, const char *key, const char *val, size_t len);
int eg_abuse_remote_unban(struct eg_daemon *d, const char *key);

#endif
