/* jwks.h - a source of verification keys: a JWKS file or a jwks_url, cached.
 *
 * URL sources are fetched with libcurl (https; plain http only to a loopback
 * address), refreshed periodically in the background, and refetched on an unknown
 * kid: such refetches are coalesced (one in flight, others wait for it). The first
 * one after a scheduled fetch (start-up, periodic refresh) always goes, so a key
 * rotation right after start-up is seen at once; the rest are throttled by a token
 * bucket (burst 2, one per min_refetch_s), and a kid that a fresh fetch lacked is
 * not refetched for min_refetch_s. When the endpoint is down the last good set
 * is kept. File sources are re-read when the file changes. */
#ifndef EG_JWKS_H
#define EG_JWKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct eg_jwks;
struct eg_metrics;

struct eg_keysource_opts {
	const char *file;   /* exactly one of file/url */
	const char *url;
	int64_t refresh_s;       /* periodic refresh of URL sources; default 300 */
	int64_t min_refetch_s;   /* throttle for unknown-kid refetches; default 10 */
	int64_t timeout_ms;      /* per fetch; default 3000 */
	const char *ca_file;     /* CA bundle for https (CURLOPT_CAINFO); NULL = system default */
	struct eg_metrics *metrics; /* may be NULL */
};

struct eg_keysource;

/* Creates the source and loads it once (a URL that is down is not fatal: the set
 * starts empty and is retried). NULL with err on bad options or an unreadable file. */
struct eg_keysource *eg_keysource_new(const struct eg_keysource_opts *o, char *err, size_t errlen);
void eg_keysource_free(struct eg_keysource *ks);

/* Current set (a new reference; caller unrefs). Never NULL. */
struct eg_jwks *eg_keysource_get(struct eg_keysource *ks);

/* Called when a token names a kid the current set lacks. Refetches if the throttle
 * allows (coalesced with concurrent callers) and returns the (possibly new) set. */
struct eg_jwks *eg_keysource_refetch(struct eg_keysource *ks, const char *kid);

/* Starts/stops the background refresher thread (URL sources only). */
int eg_keysource_start(struct eg_keysource *ks);

/* Stats for /metrics and status. */
struct eg_keysource_stats {
	uint64_t fetch_ok, fetch_fail, refetch_throttled;
	int64_t last_ok_unix;
	unsigned keys;
};
void eg_keysource_stats(struct eg_keysource *ks, struct eg_keysource_stats *out);

#endif
