/* store_redis.c - the shared store: Redis through hiredis, for several daemons.
 *
 * Keys are "<prefix><namespace>:<key>"; values carry the same 8-byte big-endian
 * expiry stamp as the embedded backend (so a read can report it) and Redis expires
 * them itself (PX).
 *
 * Connections by role (issue 12): the commands of the verdict path, the sign-out and
 * the admin socket share a small pool (POOL connections, each behind its own mutex: a
 * thread takes a free one, so a slow SCAN or a revocation never holds up a verdict);
 * the event follower (events.c) dials a connection of its own (eg_store_redis_dial).
 * Every command has store.timeout (300 ms by default, far under nginx's 10 s
 * proxy_read_timeout).
 *
 * Outage: the first command that fails (timeout, refused connection) declares the
 * store unreachable, logged once; from then on every command fails at once, without
 * waiting, and a prober thread pings Redis every PROBE_MS on a fresh connection until
 * it answers (with sentinels: backing off to PROBE_MAX_MS, woken by failover events); the end of the outage is logged with its duration. Callers fail closed
 * (docs/sessions.md, "Several hosts").
 *
 * Every outage, and every change of the master's address, starts a new connection
 * generation: a pooled connection dialled before it is dropped when next taken, not
 * used until it fails (against a master that vanished from the network each would wait
 * out its own timeout and declare a new outage). When the prober sees the store answer
 * again it calls the on_up hook (session.c: the revocations recorded locally during the
 * outage are published at once, not at the next periodic retry).
 *
 * Sentinel: with store.sentinels the master's address is asked from the sentinels
 * (SENTINEL get-master-addr-by-name) at every dial, and a dialled server must say ROLE
 * master; when it does not (that sentinel has not heard of a failover yet), the next
 * sentinel's answer is tried, so the store follows the first sentinel that knows. A
 * READONLY answer (the master was demoted by a failover) drops the connection and the
 * command is retried once on the new master. Events are published
 * with WAIT 1 when the master lists a replica (ROLE), so an acknowledged revocation is
 * on a replica before it is acknowledged and survives a failover; a master without
 * replicas acknowledges alone, like a single Redis, and without waiting. WAIT's own
 * timeout is two thirds of store.timeout: its answer must come before the socket's
 * timeout, or a WAIT that merely timed out would be taken for a dead store. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sentinel_watch.h"
#include "store.h"
#include "util.h"

#define POOL 4
#define PROBE_MS 100
#define PROBE_MAX_MS 1000 /* with sentinels, the longest pause between probes */
#define MAX_SENTINELS 8

struct conn {
	pthread_mutex_t mu;
	redisContext *c;
	unsigned gen; /* the generation it was dialled in */
};

struct redis_store {
	struct conn pool[POOL];
	unsigned next; /* round robin start (atomic) */
	unsigned gen;  /* connection generation (atomic): bumped by an outage or a new master */
	pthread_mutex_t amu; /* the master's address (Sentinel may move it) */
	char host[256];
	int port;
	int db;
	char password[256];
	char prefix[64];
	char stream[96];
	char node[17]; /* this process's id in the events it publishes */
	int timeout_ms;
	long long maxlen;
	char *sentinels[MAX_SENTINELS];
	size_t n_sentinels;
	size_t good_sentinel; /* the one whose answer last led to the master (atomic) */
	char master_name[128];
	/* outage */
	int64_t down_since_ms; /* atomic; 0 = reachable */
	uint64_t failed_fast;  /* commands refused during the current outage (atomic) */
	uint64_t outages;
	pthread_t prober;
	bool prober_running, stop;
	pthread_mutex_t pmu;
	pthread_cond_t pcv;
	/* called by the prober when the store answers again (cbmu: unset waits for a call) */
	pthread_mutex_t cbmu;
	void (*on_up)(void *arg);
	void *on_up_arg;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static struct timeval tv_of(int ms)
{
	return (struct timeval){ ms / 1000, (ms % 1000) * 1000 };
}

/* Asks sentinel i where the master is. 0 ok (host/port filled). */
static int ask_sentinel(struct redis_store *s, size_t i, char *host, size_t hostlen, int *port)
{
	char h[256];
	const char *colon = strrchr(s->sentinels[i], ':');
	snprintf(h, sizeof(h), "%.*s", (int)(colon - s->sentinels[i]), s->sentinels[i]);
	redisContext *c = redisConnectWithTimeout(h, atoi(colon + 1), tv_of(s->timeout_ms));
	if (!c || c->err) {
		if (c)
			redisFree(c);
		return -1;
	}
	redisSetTimeout(c, tv_of(s->timeout_ms));
	redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", s->master_name);
	bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		  r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING;
	if (ok) {
		snprintf(host, hostlen, "%s", r->element[0]->str);
		*port = atoi(r->element[1]->str);
	}
	freeReplyObject(r);
	redisFree(c);
	return ok ? 0 : -1;
}

static bool reply_ok(redisReply *r)
{
	bool ok = r && r->type != REDIS_REPLY_ERROR;
	freeReplyObject(r);
	return ok;
}

/* A new connection to host:port, authenticated and on our database, and (with
 * sentinels) saying ROLE master; NULL on error. */
static redisContext *dial_at(struct redis_store *s, const char *host, int port, int timeout_ms, char *err,
			     size_t errlen)
{
	redisContext *c = redisConnectWithTimeout(host, port, tv_of(timeout_ms));
	if (!c || c->err) {
		snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv_of(timeout_ms));
	/* A connection that is not authenticated or not on our database is no connection:
	 * kept, the next command would run on database 0 (issue 17). */
	if (s->password[0] && !reply_ok(redisCommand(c, "AUTH %s", s->password))) {
		snprintf(err, errlen, "AUTH failed on %s:%d", host, port);
		goto drop;
	}
	if (s->db && !reply_ok(redisCommand(c, "SELECT %d", s->db))) {
		snprintf(err, errlen, "SELECT %d failed on %s:%d", s->db, host, port);
		goto drop;
	}
	if (s->n_sentinels) {
		/* the sentinels may not have noticed a failover yet: never write to a replica */
		redisReply *r = redisCommand(c, "ROLE");
		bool master = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
			      r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
		freeReplyObject(r);
		if (!master) {
			snprintf(err, errlen, "%s:%d is not the master (yet)", host, port);
			goto drop;
		}
	}
	return c;
drop:
	redisFree(c);
	return NULL;
}

/* The master the sentinels name, as soon as any one of them names it: each is asked in
 * turn (the last one that led to the master first), and an answer that does not lead to
 * a server saying ROLE master (a sentinel that has not heard of the failover yet, a
 * master that hangs) passes on to the next sentinel's. */
static redisContext *dial_sentinels(struct redis_store *s, int timeout_ms, char *err, size_t errlen)
{
	char tried[MAX_SENTINELS][256 + 8];
	size_t n_tried = 0, first = __atomic_load_n(&s->good_sentinel, __ATOMIC_RELAXED);

	snprintf(err, errlen, "store.sentinels: no sentinel knows master \"%s\"", s->master_name);
	for (size_t k = 0; k < s->n_sentinels; k++) {
		size_t i = (first + k) % s->n_sentinels;
		char host[256], addr[256 + 8];
		int port;
		bool seen = false;

		if (ask_sentinel(s, i, host, sizeof(host), &port) != 0)
			continue;
		snprintf(addr, sizeof(addr), "%s:%d", host, port);
		for (size_t t = 0; t < n_tried && !seen; t++)
			seen = strcmp(tried[t], addr) == 0;
		if (seen)
			continue;
		snprintf(tried[n_tried++], sizeof(tried[0]), "%s", addr);
		redisContext *c = dial_at(s, host, port, timeout_ms, err, errlen);
		if (!c)
			continue;
		__atomic_store_n(&s->good_sentinel, i, __ATOMIC_RELAXED);
		pthread_mutex_lock(&s->amu);
		if (port != s->port || strcmp(host, s->host) != 0) {
			/* a failover: connections to the old master are of no use any more */
			if (s->host[0])
				__atomic_add_fetch(&s->gen, 1, __ATOMIC_ACQ_REL);
			snprintf(s->host, sizeof(s->host), "%s", host);
			s->port = port;
		}
		pthread_mutex_unlock(&s->amu);
		return c;
	}
	return NULL;
}

/* A new connection to the master; NULL on error. */
static redisContext *dial(struct redis_store *s, int timeout_ms, char *err, size_t errlen)
{
	char host[256];
	int port;

	if (s->n_sentinels)
		return dial_sentinels(s, timeout_ms, err, errlen);
	pthread_mutex_lock(&s->amu);
	snprintf(host, sizeof(host), "%s", s->host);
	port = s->port;
	pthread_mutex_unlock(&s->amu);
	return dial_at(s, host, port, timeout_ms, err, errlen);
}

redisContext *eg_store_redis_dial(void *impl, int timeout_ms, char *err, size_t errlen)
{
	return dial(impl, timeout_ms, err, errlen);
}

const char *eg_store_redis_stream(void *impl)
{
	return ((struct redis_store *)impl)->stream;
}

const char *eg_store_redis_prefix(void *impl)
{
	return ((struct redis_store *)impl)->prefix;
}

/* --- outage --------------------------------------------------------------------------- */

static bool is_down(struct redis_store *s)
{
	return __atomic_load_n(&s->down_since_ms, __ATOMIC_ACQUIRE) != 0;
}

static void mark_down(struct redis_store *s, const char *why)
{
	int64_t zero = 0, t = now_ms();

	if (!__atomic_compare_exchange_n(&s->down_since_ms, &zero, t, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	s->outages++;
	__atomic_store_n(&s->failed_fast, 0, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->gen, 1, __ATOMIC_ACQ_REL);
	log_warn("store.redis: unreachable (%s): outage begins; store commands fail at once until it answers "
		 "again (docs/sessions.md, \"Several hosts\")", why);
	pthread_mutex_lock(&s->pmu);
	pthread_cond_signal(&s->pcv);
	pthread_mutex_unlock(&s->pmu);
}

void eg_store_redis_report_down(void *impl, const char *why)
{
	mark_down(impl, why);
}

static void mark_up(struct redis_store *s)
{
	int64_t since = __atomic_exchange_n(&s->down_since_ms, 0, __ATOMIC_ACQ_REL);

	if (!since)
		return;
	log_warn("store.redis: reachable again: outage over after %.1f s (%llu commands refused meanwhile)",
		 (double)(now_ms() - since) / 1000.0,
		 (unsigned long long)__atomic_load_n(&s->failed_fast, __ATOMIC_RELAXED));
	pthread_mutex_lock(&s->cbmu);
	if (s->on_up)
		s->on_up(s->on_up_arg);
	pthread_mutex_unlock(&s->cbmu);
}

static void redis_set_on_up(void *impl, void (*fn)(void *arg), void *arg)
{
	struct redis_store *s = impl;

	pthread_mutex_lock(&s->cbmu);
	s->on_up = fn;
	s->on_up_arg = arg;
	pthread_mutex_unlock(&s->cbmu);
}

/* Waits ms on the condition variable (pmu held); a signal (an outage declared, stop)
 * ends the wait early. */
static void wait_pcv(struct redis_store *s, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&s->pcv, &s->pmu, &ts);
}

/* While the store is down: a fresh connection and a PING, every PROBE_MS without
 * sentinels. With sentinels each probe asks them in turn (a short connection to each),
 * so the pause doubles after every failed probe up to PROBE_MAX_MS and is cut short by
 * any failover event a sentinel publishes (sentinel_watch.c): a failover is followed as
 * fast as before, a long outage costs a few sentinel connections a second, not ~30. */
static void *prober_main(void *arg)
{
	struct redis_store *s = arg;
	struct eg_sentinel_watch *watch = NULL;
	int pause_ms = PROBE_MS;
	char err[256];

	pthread_mutex_lock(&s->pmu);
	while (!s->stop) {
		if (!is_down(s)) {
			eg_sentinel_watch_free(watch);
			watch = NULL;
			pause_ms = PROBE_MS;
			pthread_cond_wait(&s->pcv, &s->pmu);
			continue;
		}
		pthread_mutex_unlock(&s->pmu);
		redisContext *c = dial(s, s->timeout_ms, err, sizeof(err));
		bool up = c && reply_ok(redisCommand(c, "PING"));
		if (c)
			redisFree(c);
		if (up)
			mark_up(s);
		if (!up && s->n_sentinels) {
			if (!watch)
				watch = eg_sentinel_watch_new(s->sentinels, s->n_sentinels, s->timeout_ms);
			/* an event: probe now, and quickly again while the failover completes */
			if (eg_sentinel_watch_wait(watch, pause_ms, &s->stop))
				pause_ms = PROBE_MS;
			else
				pause_ms = pause_ms * 2 < PROBE_MAX_MS ? pause_ms * 2 : PROBE_MAX_MS;
		}
		pthread_mutex_lock(&s->pmu);
		if (!up && !s->n_sentinels && !s->stop)
			wait_pcv(s, PROBE_MS);
	}
	pthread_mutex_unlock(&s->pmu);
	eg_sentinel_watch_free(watch);
	return NULL;
}

int64_t eg_store_redis_down_since_ms(void *impl)
{
	return __atomic_load_n(&((struct redis_store *)impl)->down_since_ms, __ATOMIC_ACQUIRE);
}

/* --- the pool ------------------------------------------------------------------------- */

/* A connection of an older generation (dialled before an outage or a failover) is
 * dropped here: the next command dials the current master. */
static struct conn *fresh(struct redis_store *s, struct conn *k)
{
	if (k->c && k->gen != __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE)) {
		redisFree(k->c);
		k->c = NULL;
	}
	return k;
}

static struct conn *acquire(struct redis_store *s)
{
	unsigned start = __atomic_fetch_add(&s->next, 1, __ATOMIC_RELAXED);

	for (unsigned i = 0; i < POOL; i++) {
		struct conn *k = &s->pool[(start + i) % POOL];
		if (pthread_mutex_trylock(&k->mu) == 0)
			return fresh(s, k);
	}
	struct conn *k = &s->pool[start % POOL];
	pthread_mutex_lock(&k->mu);
	return fresh(s, k);
}

static void release(struct conn *k)
{
	pthread_mutex_unlock(&k->mu);
}

/* An answer that says this server no longer takes our writes (a failover demoted it,
 * or it is loading its data): the connection is dropped and the next dial asks again. */
static bool reply_moved(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR &&
	       (strncmp(r->str, "READONLY", 8) == 0 || strncmp(r->str, "LOADING", 7) == 0 ||
		strncmp(r->str, "MASTERDOWN", 10) == 0);
}

/* Runs one command on a held connection; reconnects once on a connection error or a
 * demoted master. A timeout is not retried: the store is declared down. */
static redisReply *cmd_on(struct redis_store *s, struct conn *k, int argc, const char **argv, const size_t *lens)
{
	char err[256] = "error";

	for (int attempt = 0; attempt < 2; attempt++) {
		if (!k->c) {
			/* the generation before the dial: a failover seen meanwhile makes it stale */
			k->gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
			if (!(k->c = dial(s, s->timeout_ms, err, sizeof(err))))
				break;
		}
		redisReply *r = redisCommandArgv(k->c, argc, argv, lens);
		if (r && !reply_moved(r))
			return r;
		bool timeout = !r && k->c->err == REDIS_ERR_IO && strstr(k->c->errstr, "temporarily") != NULL;
		snprintf(err, sizeof(err), "%s", r ? r->str : timeout ? "timeout" : k->c->errstr);
		freeReplyObject(r);
		redisFree(k->c);
		k->c = NULL;
		if (timeout)
			break;
	}
	mark_down(s, err);
	return NULL;
}

/* Takes a pooled connection, or NULL (counted) while the store is down: checked again
 * after waiting for a busy connection, whose holder may have declared the outage
 * meanwhile; a command must not then wait out a timeout of its own on a fresh dial. */
static struct conn *acquire_live(struct redis_store *s)
{
	if (is_down(s)) {
		__atomic_add_fetch(&s->failed_fast, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	struct conn *k = acquire(s);
	if (is_down(s)) {
		release(k);
		__atomic_add_fetch(&s->failed_fast, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	return k;
}

static redisReply *cmd(struct redis_store *s, int argc, const char **argv, const size_t *lens)
{
	struct conn *k = acquire_live(s);
	if (!k)
		return NULL;
	redisReply *r = cmd_on(s, k, argc, argv, lens);
	release(k);
	return r;
}

/* --- open / close ----------------------------------------------------------------------- */

void *eg_store_redis_open_ex(const struct eg_store_redis_opts *o, char *err, size_t errlen)
{
	struct redis_store *s = xcalloc(1, sizeof(*s));
	char e2[256];
	uint8_t rnd[8];

	for (unsigned i = 0; i < POOL; i++)
		pthread_mutex_init(&s->pool[i].mu, NULL);
	pthread_mutex_init(&s->amu, NULL);
	pthread_mutex_init(&s->pmu, NULL);
	pthread_cond_init(&s->pcv, NULL);
	pthread_mutex_init(&s->cbmu, NULL);
	snprintf(s->prefix, sizeof(s->prefix), "%s", o->prefix ? o->prefix : "edgegate:");
	snprintf(s->stream, sizeof(s->stream), "%sevents", s->prefix);
	s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 300;
	s->maxlen = o->stream_maxlen > 0 ? o->stream_maxlen : 100000;
	if (random_bytes(rnd, sizeof(rnd)) != 0)
		memset(rnd, 0x5a, sizeof(rnd));
	hex_encode(rnd, sizeof(rnd), s->node);
	for (size_t i = 0; i < o->n_sentinels && i < MAX_SENTINELS; i++)
		s->sentinels[s->n_sentinels++] = xstrdup(o->sentinels[i]);
	if (o->master_name)
		snprintf(s->master_name, sizeof(s->master_name), "%s", o->master_name);
	if (o->url && parse_url(s, o->url, err, errlen) != 0)
		goto fail;
	if (!o->url && !s->n_sentinels) {
		snprintf(err, errlen, "store.redis: no URL and no sentinels");
		goto fail;
	}
	/* At start the store must answer (a daemon cannot get its ticket key otherwise). */
	s->pool[0].c = dial(s, s->timeout_ms > 2000 ? s->timeout_ms : 2000, e2, sizeof(e2));
	if (!s->pool[0].c || !reply_ok(redisCommand(s->pool[0].c, "PING"))) {
		snprintf(err, errlen, "store.redis: %s", s->pool[0].c ? "PING failed" : e2);
		goto fail;
	}
	redisSetTimeout(s->pool[0].c, tv_of(s->timeout_ms));
	s->pool[0].gen = s->gen; /* the first dial learnt the master's address: not stale */
	if (pthread_create(&s->prober, NULL, prober_main, s) == 0)
		s->prober_running = true;
	return s;
fail:
	for (unsigned i = 0; i < POOL; i++)
		if (s->pool[i].c)
			redisFree(s->pool[i].c);
	for (size_t i = 0; i < s->n_sentinels; i++)
		free(s->sentinels[i]);
	free(s);
	return NULL;
}

void *eg_store_redis_open(const char *url, const char *prefix, char *err, size_t errlen)
{
	struct eg_store_redis_opts o = { .url = url, .prefix = prefix };

	return eg_store_redis_open_ex(&o, err, errlen);
}

static void redis_close(void *impl)
{
	struct redis_store *s = impl;

	if (s->prober_running) {
		pthread_mutex_lock(&s->pmu);
		__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE); /* also read by sentinel_watch.c */
		pthread_cond_broadcast(&s->pcv);
		pthread_mutex_unlock(&s->pmu);
		pthread_join(s->prober, NULL);
	}
	for (unsigned i = 0; i < POOL; i++) {
		if (s->pool[i].c)
			redisFree(s->pool[i].c);
		pthread_mutex_destroy(&s->pool[i].mu);
	}
	for (size_t i = 0; i < s->n_sentinels; i++)
		free(s->sentinels[i]);
	pthread_mutex_destroy(&s->amu);
	pthread_mutex_destroy(&s->pmu);
	pthread_cond_destroy(&s->pcv);
	pthread_mutex_destroy(&s->cbmu);
	free(s);
}

/* --- commands ------------------------------------------------------------------------- */

static char *full_key(struct redis_store *s, enum eg_store_ns ns, const char *key)
{
	size_t n = strlen(s->prefix) + strlen(eg_store_ns_name(ns)) + strlen(key) + 2;
	char *k = malloc(n);

	if (k)
		snprintf(k, n, "%s%s:%s", s->prefix, eg_store_ns_name(ns), key);
	return k;
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
	redisReply *r = cmd(s, argc, argv, lens);
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

int eg_store_redis_decode(const char *data, size_t n, void **val, size_t *len, int64_t *expires)
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

/* One "VERB key" command on a namespaced key; NULL on error. */
static redisReply *key_cmd(struct redis_store *s, const char *verb, enum eg_store_ns ns, const char *key)
{
	char *k = full_key(s, ns, key);
	if (!k)
		return NULL;
	const char *argv[2] = { verb, k };
	size_t lens[2] = { strlen(verb), strlen(k) };
	redisReply *r = cmd(s, 2, argv, lens);
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
			ret = eg_store_redis_decode(r->str, r->len, val, len, expires);
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

/* SCAN + MGET per batch: two round trips per 500 keys instead of one per key. */
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

		redisReply *r = cmd(s, 6, argv, lens);
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			freeReplyObject(r);
			ret = -1;
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		size_t nk = r->element[1]->elements;
		if (nk) {
			const char **margv = xcalloc(nk + 1, sizeof(char *));
			size_t *mlens = xcalloc(nk + 1, sizeof(size_t));
			margv[0] = "MGET", mlens[0] = 4;
			for (size_t i = 0; i < nk; i++)
				margv[i + 1] = r->element[1]->element[i]->str, mlens[i + 1] = r->element[1]->element[i]->len;
			redisReply *v = cmd(s, (int)nk + 1, margv, mlens);
			free(margv);
			free(mlens);
			if (!v || v->type != REDIS_REPLY_ARRAY || v->elements != nk) {
				freeReplyObject(v);
				freeReplyObject(r);
				ret = -1;
				break;
			}
			for (size_t i = 0; !stop && i < nk; i++) {
				redisReply *kr = r->element[1]->element[i], *vr = v->element[i];
				void *val = NULL;
				size_t len = 0;
				int64_t exp = 0;

				if (kr->len <= skip || vr->type != REDIS_REPLY_STRING)
					continue;
				if (eg_store_redis_decode(vr->str, vr->len, &val, &len, &exp) == 1) {
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
	(void)impl;
	return 0; /* Redis expires keys itself */
}

/* Replicas the master lists (ROLE): 0 when it has none left (the replica was promoted
 * and the old master is gone): then the master alone holds what it acknowledged, as a
 * single Redis does, rather than nothing being acknowledged until a replica returns.
 * -1 on error. */
static int replicas(struct redis_store *s, struct conn *k)
{
	const char *argv[1] = { "ROLE" };
	size_t lens[1] = { 4 };
	redisReply *r = cmd_on(s, k, 1, argv, lens);
	int n = -1;

	if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY)
		n = (int)r->element[2]->elements;
	freeReplyObject(r);
	return n;
}

/* XADD <prefix>events MAXLEN ~ N * t <type> k <key> v <val> n <node>; with sentinels,
 * when the master lists a replica, then WAIT 1 (a replica has it, and every write before
 * it on the master) so that an acknowledged event survives a failover. 0 ok, -1 error. */
static int redis_publish(void *impl, const char *type, const char *key, const char *val)
{
	struct redis_store *s = impl;
	char ml[32];
	const char *argv[14] = { "XADD", s->stream, "MAXLEN", "~", ml, "*", "t", type, "k", key, "v", val ? val : "",
				 "n", s->node };
	size_t lens[14];
	int rc = -1;

	snprintf(ml, sizeof(ml), "%lld", s->maxlen);
	for (int i = 0; i < 14; i++)
		lens[i] = strlen(argv[i]);
	struct conn *k = acquire_live(s);
	if (!k)
		return -1;
	redisReply *r = cmd_on(s, k, 14, argv, lens);
	if (r && r->type == REDIS_REPLY_STRING)
		rc = 0;
	freeReplyObject(r);
	if (rc == 0 && s->n_sentinels) {
		int n = replicas(s, k);
		if (n < 0) {
			rc = -1;
		} else if (n > 0) {
			/* WAIT answers after its timeout at the latest: keep that well inside the
			 * socket's, so a WAIT that timed out is an answer, not a dead store */
			char to[16];
			snprintf(to, sizeof(to), "%d", s->timeout_ms * 2 / 3 > 0 ? s->timeout_ms * 2 / 3 : 1);
			const char *wargv[3] = { "WAIT", "1", to };
			size_t wlens[3] = { 4, 1, strlen(to) };
			redisReply *w = cmd_on(s, k, 3, wargv, wlens);
			if (!w || w->type != REDIS_REPLY_INTEGER || (w->integer < 1 && replicas(s, k) != 0))
				rc = -1; /* not on a replica yet: the caller keeps it and retries */
			freeReplyObject(w);
		}
	}
	release(k);
	return rc;
}

static const char *redis_node(void *impl)
{
	return ((struct redis_store *)impl)->node;
}

static int64_t redis_down_since(void *impl)
{
	return eg_store_redis_down_since_ms(impl);
}

const struct eg_store_ops eg_store_redis_ops = {
	.name = "redis",
	.close = redis_close,
	.put = redis_put,
	.get = redis_get,
	.del = redis_del,
	.foreach = redis_foreach,
	.gc = redis_gc,
	.publish = redis_publish,
	.node = redis_node,
	.down_since_ms = redis_down_since,
	.set_on_up = redis_set_on_up,
};
