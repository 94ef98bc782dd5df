/* sentinel_watch.c - a subscription to every sentinel's failover events, for the store's
 * prober (store_redis.c).
 *
 * While no master answers, the prober backs off (100 ms doubling to 1 s) instead of asking
 * every sentinel ten times a second. So that the back-off never delays following a
 * failover, the prober waits on these subscriptions: the moment any sentinel publishes
 * that a replica was promoted, that the master changed, or that the master is back
 * (-sdown/-odown), it probes at once. One long-lived connection per sentinel, opened when
 * an outage needs it and closed when it ends, instead of a short one per sentinel per probe. */
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sentinel_watch.h"
#include "util.h"

#define MAX_WATCHED 8
#define STOP_CHECK_MS 100

/* The events published by the sentinel that leads a failover (the promotion, its end
 * everywhere) and by any sentinel that sees the master answer again. */
#define WATCHED_EVENTS "+promoted-slave +failover-state-reconf-slaves +switch-master -sdown -odown"

struct eg_sentinel_watch {
	char *addr[MAX_WATCHED];
	redisContext *c[MAX_WATCHED];
	size_t n;
	int timeout_ms;
};

struct eg_sentinel_watch *eg_sentinel_watch_new(char *const *sentinels, size_t n, int timeout_ms)
{
	struct eg_sentinel_watch *w = xcalloc(1, sizeof(*w));

	for (size_t i = 0; i < n && i < MAX_WATCHED; i++)
		w->addr[w->n++] = xstrdup(sentinels[i]);
	w->timeout_ms = timeout_ms;
	return w;
}

static void drop(struct eg_sentinel_watch *w, size_t i)
{
	if (w->c[i])
		redisFree(w->c[i]);
	w->c[i] = NULL;
}

static redisContext *subscribe(const char *addr, int timeout_ms)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

	if (!colon)
		return NULL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	redisContext *c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
	if (!c || c->err)
		goto fail;
	redisSetTimeout(c, tv);
	/* the first confirmation is read here, the others are drained as replies below */
	redisReply *r = redisCommand(c, "SUBSCRIBE " WATCHED_EVENTS);
	bool ok = r && r->type == REDIS_REPLY_ARRAY;
	freeReplyObject(r);
	if (ok)
		return c;
fail:
	if (c)
		redisFree(c);
	return NULL;
}

/* Replies already read from sentinel i: true when one is a published event (not a
 * subscription's confirmation). */
static bool drain(struct eg_sentinel_watch *w, size_t i)
{
	bool event = false;
	void *rp = NULL;

	while (w->c[i] && redisGetReplyFromReader(w->c[i], &rp) == REDIS_OK && rp) {
		redisReply *r = rp;
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[0]->str, "message") == 0)
			event = true;
		freeReplyObject(r);
		rp = NULL;
	}
	if (w->c[i] && w->c[i]->err)
		drop(w, i);
	return event;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool eg_sentinel_watch_wait(struct eg_sentinel_watch *w, int ms, const bool *stop)
{
	int64_t end = mono_ms() + ms;
	bool event = false;

	for (size_t i = 0; i < w->n; i++) {
		if (!w->c[i])
			w->c[i] = subscribe(w->addr[i], w->timeout_ms);
		event |= drain(w, i);
	}
	while (!event && !__atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
		int64_t left = end - mono_ms();
		if (left <= 0)
			break;
		struct pollfd pf[MAX_WATCHED];
		size_t idx[MAX_WATCHED], np = 0;
		for (size_t i = 0; i < w->n; i++)
			if (w->c[i]) {
				pf[np] = (struct pollfd){ .fd = w->c[i]->fd, .events = POLLIN };
				idx[np++] = i;
			}
		if (poll(pf, np, left < STOP_CHECK_MS ? (int)left : STOP_CHECK_MS) <= 0)
			continue;
		for (size_t k = 0; k < np; k++) {
			if (!pf[k].revents)
				continue;
			if (redisBufferRead(w->c[idx[k]]) != REDIS_OK)
				drop(w, idx[k]);
			else
				event |= drain(w, idx[k]);
		}
	}
	return event;
}

void eg_sentinel_watch_free(struct eg_sentinel_watch *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++) {
		drop(w, i);
		free(w->addr[i]);
	}
	free(w);
}
