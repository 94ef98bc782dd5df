/* abuse.h - per-source accounting on the verdict path: failed verdicts past a
 * threshold within a window ban the source (kernel deny map when the gate is
 * attached, userspace otherwise), with exponential back-off for repeat offenders;
 * optional per-source verdict rate limits. Sources are canonicalised (IPv4-mapped
 * IPv6 folded to IPv4, IPv6 grouped to gate.ipv6_group_prefix). Allowlisted sources
 * are never banned. */
#ifndef EG_ABUSE_H
#define EG_ABUSE_H

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

#endif
