/* store.c - dispatch of the store interface to the configured backend.
 *
 * LMDB is the embedded default (see docs/sessions.md for why); Redis is used when
 * store.redis is set so several daemons share sessions, revocations and bans. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "store.h"

struct eg_store {
	const struct eg_store_ops *ops;
	void *impl;
};

static const char *const ns_names[EG_NS__COUNT] = {
	[EG_NS_SESSION] = "session", [EG_NS_STATE] = "state", [EG_NS_INDEX] = "index",
	[EG_NS_REVOKED] = "revoked", [EG_NS_BAN] = "ban",     [EG_NS_DENY] = "deny",
	[EG_NS_JTI] = "jti",         [EG_NS_META] = "meta",
};

const char *eg_store_ns_name(enum eg_store_ns ns)
{
	if ((unsigned)ns >= EG_NS__COUNT)
		return NULL;
	return ns_names[ns];
}

struct eg_store *eg_store_wrap(const struct eg_store_ops *ops, void *impl)
{
	struct eg_store *s;

	if (!impl)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		ops->close(impl);
		return NULL;
	}
	s->ops = ops;
	s->impl = impl;
	return s;
}

struct eg_store *eg_store_open(const struct eg_config *cfg, char *err, size_t errlen)
{
	char dir[4096];
	const char *state = cfg->state_dir ? cfg->state_dir : "/var/lib/edgegate";

	if (cfg->store.redis || cfg->store.sentinels.n) {
		struct eg_store_redis_opts o = {
			.url = cfg->store.redis,
			.prefix = cfg->store.prefix ? cfg->store.prefix : "edgegate:",
			.sentinels = cfg->store.sentinels.v,
			.n_sentinels = cfg->store.sentinels.n,
			.master_name = cfg->store.master_name,
			.timeout_ms = (int)cfg->store.timeout_ms,
			.stream_maxlen = cfg->store.stream_maxlen,
		};
		return eg_store_wrap(&eg_store_redis_ops, eg_store_redis_open_ex(&o, err, errlen));
	}
	if (snprintf(dir, sizeof(dir), "%s/store", state) >= (int)sizeof(dir)) {
		snprintf(err, errlen, "state_dir: path too long");
		return NULL;
	}
	if (mkdir(state, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "state_dir: cannot create %s: %s", state, strerror(errno));
		return NULL;
	}
	return eg_store_wrap(&eg_store_lmdb_ops, eg_store_lmdb_open(dir, (size_t)cfg->store.map_size, err, errlen));
}

void eg_store_close(struct eg_store *s)
{
	if (!s)
		return;
	s->ops->close(s->impl);
	free(s);
}

const char *eg_store_backend(const struct eg_store *s)
{
	return s->ops->name;
}

static int ns_ok(enum eg_store_ns ns, const char *key)
{
	return (unsigned)ns < EG_NS__COUNT && key && *key && strlen(key) <= 480;
}

int eg_store_put(struct eg_store *s, enum eg_store_ns ns, const char *key, const void *val,
		 size_t len, int64_t expires_unix)
{
	if (!ns_ok(ns, key))
		return -1;
	return s->ops->put(s->impl, ns, key, val, len, expires_unix, 0);
}

int eg_store_add(struct eg_store *s, enum eg_store_ns ns, const char *key, const void *val,
		 size_t len, int64_t expires_unix)
{
	if (!ns_ok(ns, key))
		return -1;
	return s->ops->put(s->impl, ns, key, val, len, expires_unix, 1);
}

int eg_store_get(struct eg_store *s, enum eg_store_ns ns, const char *key, void **val,
		 size_t *len, int64_t *expires_unix)
{
	if (!ns_ok(ns, key))
		return -1;
	return s->ops->get(s->impl, ns, key, val, len, expires_unix);
}

int eg_store_del(struct eg_store *s, enum eg_store_ns ns, const char *key)
{
	if (!ns_ok(ns, key))
		return -1;
	return s->ops->del(s->impl, ns, key);
}

int eg_store_foreach(struct eg_store *s, enum eg_store_ns ns, eg_store_iter_fn fn, void *arg)
{
	if ((unsigned)ns >= EG_NS__COUNT)
		return -1;
	return s->ops->foreach(s->impl, ns, "", fn, arg);
}

int eg_store_foreach_prefix(struct eg_store *s, enum eg_store_ns ns, const char *prefix,
			    eg_store_iter_fn fn, void *arg)
{
	if ((unsigned)ns >= EG_NS__COUNT || !prefix)
		return -1;
	return s->ops->foreach(s->impl, ns, prefix, fn, arg);
}

long eg_store_gc(struct eg_store *s)
{
	return s->ops->gc(s->impl);
}

int eg_store_publish(struct eg_store *s, const char *type, const char *key, const char *val)
{
	if (!s || !s->ops->publish)
		return 0;
	return s->ops->publish(s->impl, type, key, val);
}

const char *eg_store_node(struct eg_store *s)
{
	return s && s->ops->node ? s->ops->node(s->impl) : "";
}

int64_t eg_store_down_since_ms(struct eg_store *s)
{
	return s && s->ops->down_since_ms ? s->ops->down_since_ms(s->impl) : 0;
}

void eg_store_on_reachable(struct eg_store *s, void (*fn)(void *arg), void *arg)
{
	if (s && s->ops->set_on_up)
		s->ops->set_on_up(s->impl, fn, arg);
}

void *eg_store_impl(struct eg_store *s)
{
	return s ? s->impl : NULL;
}
