/* store.h - the one cache/persistence abstraction: sessions, login states, revocations,
 * bans. Backends: embedded LMDB (default, crash-safe, one host) and Redis (several
 * hosts share state). Values are opaque bytes; each key lives in a namespace and may
 * carry an absolute expiry (UNIX seconds, 0 = none). Expired keys read as absent. */
#ifndef EG_STORE_H
#define EG_STORE_H

#include <stddef.h>
#include <stdint.h>

struct eg_store;
struct eg_config;

enum eg_store_ns {
	EG_NS_SESSION = 0, /* session id -> sealed session record */
	EG_NS_STATE,       /* login state -> sealed state (PKCE verifier, nonce, rd) */
	EG_NS_INDEX,       /* "sub:<sub>" / "sid:<sid>" -> list of session ids */
	EG_NS_REVOKED,     /* session id hash -> revocation record */
	EG_NS_BAN,         /* canonical source prefix -> ban record */
	EG_NS_DENY,        /* dynamic deny/allow entries of the gate */
	EG_NS_JTI,         /* replay cache of back-channel logout jti */
	EG_NS_META,        /* misc daemon state */
	EG_NS__COUNT
};

/* Opens the backend the config names (embedded under state_dir, or store.redis). */
struct eg_store *eg_store_open(const struct eg_config *cfg, char *err, size_t errlen);
void eg_store_close(struct eg_store *s);
const char *eg_store_backend(const struct eg_store *s); /* "lmdb" or "redis" */

/* 0 ok, -1 error. put overwrites. */
int eg_store_put(struct eg_store *s, enum eg_store_ns ns, const char *key, const void *val,
		 size_t len, int64_t expires_unix);
/* Only if absent (atomic); 1 inserted, 0 existed, -1 error. For replay caches/locks. */
int eg_store_add(struct eg_store *s, enum eg_store_ns ns, const char *key, const void *val,
		 size_t len, int64_t expires_unix);
/* 1 found (*val malloc'd, caller frees), 0 absent/expired, -1 error. */
int eg_store_get(struct eg_store *s, enum eg_store_ns ns, const char *key, void **val,
		 size_t *len, int64_t *expires_unix);
int eg_store_del(struct eg_store *s, enum eg_store_ns ns, const char *key);

/* Iterates a namespace (unexpired keys). fn returns non-zero to stop. */
typedef int (*eg_store_iter_fn)(const char *key, const void *val, size_t len,
				int64_t expires_unix, void *arg);
int eg_store_foreach(struct eg_store *s, enum eg_store_ns ns, eg_store_iter_fn fn, void *arg);

/* Like eg_store_foreach, restricted to keys starting with prefix (index lookups). */
int eg_store_foreach_prefix(struct eg_store *s, enum eg_store_ns ns, const char *prefix,
			    eg_store_iter_fn fn, void *arg);

/* Removes expired keys (embedded backend; Redis expires by itself). Returns count. */
long eg_store_gc(struct eg_store *s);

const char *eg_store_ns_name(enum eg_store_ns ns);

/* --- several hosts (issue 12): the event stream and the outage state ----------------- */
/* Appends an event (type "revoke", "ban", "unban", "deny", "undeny") to the shared
 * store's stream, which every node follows (events.c). 0 ok (also: a store with no
 * stream, i.e. the embedded one: nothing to tell), -1 error. */
int eg_store_publish(struct eg_store *s, const char *type, const char *key, const char *val);
/* This process's id in the events it publishes ("" without a stream). */
const char *eg_store_node(struct eg_store *s);
/* Wall time (ms) the shared store became unreachable; 0 while it answers. */
int64_t eg_store_down_since_ms(struct eg_store *s);
/* fn(arg) is called (from the store's prober thread) each time the shared store answers
 * again after an outage; NULL unsets it (and waits for a call in progress). Nothing for
 * the embedded store. */
void eg_store_on_reachable(struct eg_store *s, void (*fn)(void *arg), void *arg);
/* The backend's own data (events.c dials the Redis backend through it). */
void *eg_store_impl(struct eg_store *s);

/* --- backend interface (store.c dispatches; store_lmdb.c / store_redis.c implement) --- */
struct eg_store_ops {
	const char *name;
	void (*close)(void *impl);
	int (*put)(void *impl, enum eg_store_ns ns, const char *key, const void *val, size_t len,
		   int64_t expires_unix, int only_if_absent);
	int (*get)(void *impl, enum eg_store_ns ns, const char *key, void **val, size_t *len,
		   int64_t *expires_unix);
	int (*del)(void *impl, enum eg_store_ns ns, const char *key);
	int (*foreach)(void *impl, enum eg_store_ns ns, const char *prefix, eg_store_iter_fn fn,
		       void *arg);
	long (*gc)(void *impl);
	/* optional (shared stores) */
	int (*publish)(void *impl, const char *type, const char *key, const char *val);
	const char *(*node)(void *impl);
	int64_t (*down_since_ms)(void *impl);
	void (*set_on_up)(void *impl, void (*fn)(void *arg), void *arg);
};
extern const struct eg_store_ops eg_store_lmdb_ops;
extern const struct eg_store_ops eg_store_redis_ops;
/* Backend constructors, usable directly by tests. */
void *eg_store_lmdb_open(const char *dir, size_t map_size, char *err, size_t errlen);
void *eg_store_redis_open(const char *url, const char *prefix, char *err, size_t errlen);
struct eg_store *eg_store_wrap(const struct eg_store_ops *ops, void *impl);

/* Redis specifics (store_redis.c). */
struct eg_store_redis_opts {
	const char *url;    /* redis://[:password@]host:port[/db]; host ignored with sentinels */
	const char *prefix;
	char **sentinels;   /* "host:port" */
	size_t n_sentinels;
	const char *master_name;
	int timeout_ms;     /* per command [300] */
	long long stream_maxlen; /* [100000] */
};
void *eg_store_redis_open_ex(const struct eg_store_redis_opts *o, char *err, size_t errlen);
struct redisContext;
/* A new connection of its own to the current master (events.c's follower). */
struct redisContext *eg_store_redis_dial(void *impl, int timeout_ms, char *err, size_t errlen);
const char *eg_store_redis_stream(void *impl); /* the stream's key */
const char *eg_store_redis_prefix(void *impl);
int64_t eg_store_redis_down_since_ms(void *impl);
/* The event follower could not dial the master: the store's prober takes over (one
 * backing-off searcher per node, not two). */
void eg_store_redis_report_down(void *impl, const char *why);
/* Decodes a stored value (8-byte expiry stamp + bytes); as eg_store_get. */
int eg_store_redis_decode(const char *data, size_t n, void **val, size_t *len, int64_t *expires);

#endif
