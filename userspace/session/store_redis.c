/* store_redis.c - the shared store: Redis through hiredis, for several daemons.
 *
 * Keys are "<prefix><namespace>:<key>"; values carry the same 8-byte big-endian
 * expiry stamp as the embedded backend (so a read can report it) and Redis expires
 * them itself (PX). One connection guarded by a mutex, reconnected on error. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"
#include "store.h"

struct redis_store {
	pthread_mutex_t mu;
	redisContext *c;
	char host[256];
	int port;
	int db;
	char password[256];
	char prefix[64];
	int64_t down_until_ms; /* after a timeout or failed reconnect: fail fast until then */
};

#define DOWN_MS 1000 /* how long a store that just failed is not waited for again */

static int parse_url(struct redis_store *s, const char *url, char *err, size_t errlen)
{
	const char *p, *at, *colon, *slash;
	size_t hl;

	if (strncmp(url, "redis://", 8) != 0) {
		snprintf(err, errlen, "store.redis: expected redis://host:port[/db]");
		return -1;
	}
	p = url + 8;
	at = strchr(p, '@');
	if (at) {
		const char *pw = memchr(p, ':', (size_t)(at - p));
		pw = pw ? pw + 1 : p;
		if ((size_t)(at - pw) >= sizeof(s->password))
			goto bad;
		memcpy(s->password, pw, (size_t)(at - pw));
		p = at + 1;
	}
	slash = strchr(p, '/');
	colon = strrchr(p, ':');
	if (colon && slash && colon > slash)
		colon = NULL;
	hl = colon ? (size_t)(colon - p) : slash ? (size_t)(slash - p) : strlen(p);
	if (hl == 0 || hl >= sizeof(s->host))
		goto bad;
	memcpy(s->host, p, hl);
	s->port = colon ? atoi(colon + 1) : 6379;
	s->db = slash && slash[1] ? atoi(slash + 1) : 0;
	if (s->port <= 0 || s->port > 65535 || s->db < 0)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "store.redis: malformed URL");
	return -1;
}

static redisReply *cmd(struct redis_store *s, int argc, const char **argv, const size_t *lens);

static int connect_locked(struct redis_store *s, char *err, size_t errlen)
{
	struct timeval tv = { 2, 0 };

	if (s->c)
		redisFree(s->c);
	s->c = redisConnectWithTimeout(s->host, s->port, tv);
	if (!s->c || s->c->err) {
		snprintf(err, errlen, "store.redis: cannot connect to %s:%d: %s", s->host, s->port,
			 s->c ? s->c->errstr : "out of memory");
		if (s->c)
			redisFree(s->c);
		s->c = NULL;
		return -1;
	}
	redisSetTimeout(s->c, tv);
	if (s->password[0]) {
		redisReply *r = redisCommand(s->c, "AUTH %s", s->password);
		int bad = !r || r->type == REDIS_REPLY_ERROR;
		freeReplyObject(r);
		if (bad) {
			snprintf(err, errlen, "store.redis: AUTH failed");
			goto drop;
		}
	}
	if (s->db) {
		redisReply *r = redisCommand(s->c, "SELECT %d", s->db);
		int bad = !r || r->type == REDIS_REPLY_ERROR;
		freeReplyObject(r);
		if (bad) {
			snprintf(err, errlen, "store.redis: SELECT %d failed", s->db);
			goto drop;
		}
	}
	return 0;
drop:
	/* A connection that is not authenticated or not on our database is no connection:
	 * kept, the next command would run on database 0 (issue 17). */
	redisFree(s->c);
	s->c = NULL;
	return -1;
}

void *eg_store_redis_open(const char *url, const char *prefix, char *err, size_t errlen)
{
	struct redis_store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	snprintf(s->prefix, sizeof(s->prefix), "%s", prefix ? prefix : "edgegate:");
	if (parse_url(s, url, err, errlen) || connect_locked(s, err, errlen)) {
		if (s->c)
			redisFree(s->c);
		free(s);
		return NULL;
	}
	redisReply *r = redisCommand(s->c, "PING");
	int bad = !r || r->type == REDIS_REPLY_ERROR;
	freeReplyObject(r);
	if (bad) {
		snprintf(err, errlen, "store.redis: PING failed");
		redisFree(s->c);
		free(s);
		return NULL;
	}
	return s;
}

static void redis_close(void *impl)
{
	struct redis_store *s = impl;

	if (s->c)
		redisFree(s->c);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Runs one command; on a connection error reconnects once and retries. Caller holds mu. */
static int64_t now_ms(void);

/* Runs one command; on a connection error reconnects once and retries. A timeout (a
 * server paused or overloaded) is not retried, and for DOWN_MS after a failure every
 * command fails at once: callers fail closed (deny, local tombstone) without queueing
 * behind the mutex for seconds each. Caller holds mu. */
static redisReply *cmd(struct redis_store *s, int argc, const char **argv, const size_t *lens)
{
	char err[256];

	if (s->down_until_ms > now_ms())
		return NULL;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!s->c && connect_locked(s, err, sizeof(err))) {
			log_warn("%s", err);
			break;
		}
		redisReply *r = redisCommandArgv(s->c, argc, argv, lens);
		if (r)
			return r;
		bool timeout = s->c->err == REDIS_ERR_IO && strstr(s->c->errstr, "temporarily") != NULL;
		log_warn("store.redis: %s; %s", s->c->errstr, timeout ? "not retried" : "reconnecting");
		redisFree(s->c);
		s->c = NULL;
		if (timeout)
			break;
	}
	s->down_until_ms = now_ms() + DOWN_MS;
	return NULL;
}

static char *full_key(struct redis_store *s, enum eg_store_ns ns, const char *key)
{
	size_t n = strlen(s->prefix) + strlen(eg_store_ns_name(ns)) + strlen(key) + 2;
	char *k = malloc(n);

	if (k)
		snprintf(k, n, "%s%s:%s", s->prefix, eg_store_ns_name(ns), key);
	return k;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int redis_del(void *impl, enum eg_store_ns ns, const char *key);

static int redis_put(void *impl, enum eg_store_ns ns, const char *key, const void *val,
		     size_t len, int64_t exp, int only_if_absent)
{
	struct redis_store *s = impl;
	char *k = full_key(s, ns, key), pxs[32];
	uint8_t *v = malloc(len + 8);
	const char *argv[6];
	size_t lens[6];
	int argc = 0, ret = -1;
	int64_t px = 0;

	if (!k || !v)
		goto out;
	for (int i = 7, x = 0; i >= 0; i--, x++)
		v[i] = (uint8_t)(((uint64_t)exp >> (8 * x)) & 0xff);
	if (len)
		memcpy(v + 8, val, len);
	if (exp) {
		px = exp * 1000 - now_ms();
		if (px <= 0) {
			/* already expired: same as absent (an add "inserts" nothing lasting) */
			free(k);
			free(v);
			return redis_del(impl, ns, key) == 0 ? (only_if_absent ? 1 : 0) : -1;
		}
	}
	argv[argc] = "SET", lens[argc++] = 3;
	argv[argc] = k, lens[argc++] = strlen(k);
	argv[argc] = (const char *)v, lens[argc++] = len + 8;
	if (px) {
		snprintf(pxs, sizeof(pxs), "%lld", (long long)px);
		argv[argc] = "PX", lens[argc++] = 2;
		argv[argc] = pxs, lens[argc++] = strlen(pxs);
	}
	if (only_if_absent)
		argv[argc] = "NX", lens[argc++] = 2;
	pthread_mutex_lock(&s->mu);
	redisReply *r = cmd(s, argc, argv, lens);
	pthread_mutex_unlock(&s->mu);
	if (!r)
		goto out;
	if (r->type == REDIS_REPLY_ERROR)
		ret = -1;
	else if (only_if_absent)
		ret = r->type == REDIS_REPLY_NIL ? 0 : 1;
	else
		ret = 0;
	freeReplyObject(r);
out:
	free(k);
	free(v);
	return ret;
}

static int decode_value(const char *data, size_t n, void **val, size_t *len, int64_t *expires)
{
	uint64_t e = 0;
	uint8_t *p;

	if (n < 8)
		return 0;
	for (int i = 0; i < 8; i++)
		e = (e << 8) | (uint8_t)data[i];
	if (e && (int64_t)e <= (int64_t)time(NULL))
		return 0;
	p = malloc(n - 8 + 1);
	if (!p)
		return -1;
	memcpy(p, data + 8, n - 8);
	p[n - 8] = 0;
	if (val)
		*val = p;
	else
		free(p);
	if (len)
		*len = n - 8;
	if (expires)
		*expires = (int64_t)e;
	return 1;
}

/* One "VERB key" command on a namespaced key, under the connection lock; NULL on error. */
static redisReply *key_cmd(struct redis_store *s, const char *verb, enum eg_store_ns ns, const char *key)
{
	char *k = full_key(s, ns, key);
	if (!k)
		return NULL;
	const char *argv[2] = { verb, k };
	size_t lens[2] = { strlen(verb), strlen(k) };
	pthread_mutex_lock(&s->mu);
	redisReply *r = cmd(s, 2, argv, lens);
	pthread_mutex_unlock(&s->mu);
	free(k);
	return r;
}

static int redis_get(void *impl, enum eg_store_ns ns, const char *key, void **val, size_t *len,
		     int64_t *expires)
{
	redisReply *r = key_cmd(impl, "GET", ns, key);
	int ret = -1;

	if (r) {
		if (r->type == REDIS_REPLY_NIL)
			ret = 0;
		else if (r->type == REDIS_REPLY_STRING)
			ret = decode_value(r->str, r->len, val, len, expires);
		freeReplyObject(r);
	}
	return ret;
}

static int redis_del(void *impl, enum eg_store_ns ns, const char *key)
{
	redisReply *r = key_cmd(impl, "DEL", ns, key);
	int ret = -1;

	if (r) {
		ret = r->type == REDIS_REPLY_ERROR ? -1 : 0;
		freeReplyObject(r);
	}
	return ret;
}

/* Glob-escapes a literal for SCAN MATCH. */
static char *glob_escape(const char *in)
{
	char *out = malloc(strlen(in) * 2 + 2), *o = out;

	if (!out)
		return NULL;
	for (; *in; in++) {
		if (strchr("*?[]\\", *in))
			*o++ = '\\';
		*o++ = *in;
	}
	*o++ = '*';
	*o = 0;
	return out;
}

static int redis_foreach(void *impl, enum eg_store_ns ns, const char *prefix, eg_store_iter_fn fn,
			 void *arg)
{
	struct redis_store *s = impl;
	char *base = full_key(s, ns, prefix), *pat = base ? glob_escape(base) : NULL;
	size_t skip = strlen(s->prefix) + strlen(eg_store_ns_name(ns)) + 1;
	char cursor[32] = "0";
	int ret = 0, stop = 0;

	if (!pat) {
		free(base);
		return -1;
	}
	do {
		const char *argv[6] = { "SCAN", cursor, "MATCH", pat, "COUNT", "500" };
		size_t lens[6] = { 4, strlen(cursor), 5, strlen(pat), 5, 3 };

		pthread_mutex_lock(&s->mu);
		redisReply *r = cmd(s, 6, argv, lens);
		pthread_mutex_unlock(&s->mu);
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			freeReplyObject(r);
			ret = -1;
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; !stop && i < r->element[1]->elements; i++) {
			redisReply *kr = r->element[1]->element[i];
			const char *gargv[2] = { "GET", kr->str };
			size_t glens[2] = { 3, kr->len };

			if (kr->len <= skip)
				continue;
			pthread_mutex_lock(&s->mu);
			redisReply *v = cmd(s, 2, gargv, glens);
			pthread_mutex_unlock(&s->mu);
			if (v && v->type == REDIS_REPLY_STRING) {
				void *val = NULL;
				size_t len = 0;
				int64_t exp = 0;

				if (decode_value(v->str, v->len, &val, &len, &exp) == 1) {
					if (fn(kr->str + skip, val, len, exp, arg))
						stop = 1;
					free(val);
				}
			}
			freeReplyObject(v);
		}
		freeReplyObject(r);
	} while (!stop && strcmp(cursor, "0") != 0);
	free(base);
	free(pat);
	return ret;
}

static long redis_gc(void *impl)
{
	return 0; /* Redis expires keys itself */
}

const struct eg_store_ops eg_store_redis_ops = {
	.name = "redis",
	.close = redis_close,
	.put = redis_put,
	.get = redis_get,
	.del = redis_del,
	.foreach = redis_foreach,
	.gc = redis_gc,
};
