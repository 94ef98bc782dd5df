/* admission.c - connection limits, the proxies' reserve and deadlines (see admission.h).
 *
 * libmicrohttpd 0.9.75 offers a total and a per-IP limit, but both count nginx like
 * anyone else, and at its total limit it stops accepting altogether (the listening socket
 * leaves its epoll set): that is how a slowloris took every verdict down. So its total
 * limit stays the hard cap and the policy lives here: other peers are refused (in its
 * accept-policy callback, or in the verdict lane's accept: lane.c) while the proxies'
 * reserve is the only room left. Its idle timeout is reset by every byte received; the
 * deadlines here are not. A listener the lane owns has one budget of max_connections for
 * both fronts (eg_conn.slots), and its connection keeps its entry here when handed over. */
#include "admission.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define SWEEP_MS 250
/* Connections shut down per hold of a pool's lock: a wave of thousands expiring at once (a
 * slowloris reconnecting in step) never holds the lock for all of them (each shutdown() of
 * a TCP socket sends its FIN from here). */
#define SWEEP_BATCH 32

/* Open connections of non-proxy peers per address group: open addressing, linear
 * probing, deletion by backward shift. n == 0 marks a free slot. */
struct ip_slot {
	uint8_t key[16];
	uint32_t n;
};

/* The open connections of one kind. The proxies' have their own lock: opening or closing
 * one never waits for others' (thousands of attacker connections accepted, closed and swept
 * at once), so the configured proxy's new connections are admitted whatever the others do. */
struct pool {
	pthread_mutex_t lock;
	struct eg_conn *head;
	_Atomic uint32_t n;
};

enum { POOL_OTHER, POOL_PROXY };

struct eg_admission {
	struct pool pool[2]; /* POOL_OTHER's lock also guards ips */
	pthread_mutex_t stop_lock;
	uint32_t other_max; /* max_connections - reserved_for_proxies */
	uint32_t per_ip;
	int64_t header_ms, idle_ms;
	unsigned v6plen;
	struct ip_slot *ips;
	size_t ip_mask;
	struct eg_metrics *metrics;
	pthread_t sweeper;
	bool sweeper_started;
	pthread_cond_t stop_cond;
	bool stop;
	_Atomic int64_t last_reject_log_ms; /* one warning a minute at most, per kind */
	int64_t last_timeout_log_ms;        /* sweeper thread only */
	uint64_t timeouts_since_log;
	_Atomic uint64_t rejects_since_log;
};

#define LOG_EVERY_MS 60000

static int64_t mono_ms(void)
{
	return (int64_t)(now_mono_ns() / 1000000);
}

/* --- per-address counts ------------------------------------------------------------------- */

static size_t ip_hash(const struct eg_admission *a, const uint8_t key[16])
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29)) & a->ip_mask;
}

static struct ip_slot *ip_find(struct eg_admission *a, const uint8_t key[16], bool create)
{
	for (size_t i = ip_hash(a, key);; i = (i + 1) & a->ip_mask) {
		struct ip_slot *s = &a->ips[i];
		if (s->n == 0) {
			if (!create)
				return NULL;
			memcpy(s->key, key, 16);
			return s;
		}
		if (memcmp(s->key, key, 16) == 0)
			return s;
	}
}

static void ip_delete(struct eg_admission *a, struct ip_slot *hole)
{
	size_t i = (size_t)(hole - a->ips);
	hole->n = 0;
	for (size_t j = (i + 1) & a->ip_mask; a->ips[j].n; j = (j + 1) & a->ip_mask) {
		size_t home = ip_hash(a, a->ips[j].key);
		/* move j into the hole unless its home lies cyclically in (i, j] */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			a->ips[i] = a->ips[j];
			a->ips[j].n = 0;
			i = j;
		}
	}
}

static void group_of(const struct eg_admission *a, const uint8_t addr[16], uint8_t out[16])
{
	memcpy(out, addr, 16);
	if (eg_addr_is_v4mapped(addr))
		return;
	unsigned plen = a->v6plen ? a->v6plen : 128;
	for (unsigned bit = plen; bit < 128; bit++)
		out[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
}

static const char *const pool_peer[2] = { "other", "proxy" };

/* Under the pool's lock: each gauge is written in the order its count changed. */
static void set_open_gauge(struct eg_admission *a, int pool)
{
	eg_metric_set(a->metrics, "edgegate_http_connections_open", "peer", pool_peer[pool],
		      atomic_load_explicit(&a->pool[pool].n, memory_order_relaxed));
}

/* --- the sweeper ---------------------------------------------------------------------------- */

static const char *const phase_name[] = { "request", "answer", "idle" };

/* shutdown(), not close(): the descriptor stays libmicrohttpd's, which sees the end of the
 * stream and closes the connection itself. Under the pool's lock, so the descriptor cannot be
 * closed (and reused) meanwhile: the close notification takes the same lock first. At most
 * SWEEP_BATCH per hold; the next hold starts again from the head (those already shut down
 * are skipped). */
static void sweep_pool(struct pool *pl, int64_t now, unsigned expired[3])
{
	for (bool more = true; more;) {
		unsigned done = 0;
		more = false;
		pthread_mutex_lock(&pl->lock);
		for (struct eg_conn *c = pl->head; c; c = c->next) {
			if (c->closing || atomic_load_explicit(&c->deadline_ms, memory_order_relaxed) > now)
				continue;
			if (done == SWEEP_BATCH) {
				more = true;
				break;
			}
			int p = atomic_load_explicit(&c->phase, memory_order_relaxed);
			shutdown(c->fd, SHUT_RDWR);
			c->closing = true;
			expired[p >= 0 && p < 3 ? p : 0]++; /* EG_CONN_BUSY never expires */
			done++;
		}
		pthread_mutex_unlock(&pl->lock);
	}
}

static void sweep(struct eg_admission *a)
{
	unsigned expired[3] = { 0 };
	int64_t now = mono_ms();
	sweep_pool(&a->pool[POOL_PROXY], now, expired);
	sweep_pool(&a->pool[POOL_OTHER], now, expired);
	for (int p = 0; p < 3; p++)
		if (expired[p])
			eg_metric_inc(a->metrics, "edgegate_http_connections_timed_out_total", "phase", phase_name[p],
				      NULL, NULL, expired[p]);
	a->timeouts_since_log += expired[0] + expired[1] + expired[2];
	if (a->timeouts_since_log && now - a->last_timeout_log_ms >= LOG_EVERY_MS) {
		log_warn("http: %llu connections closed at their deadline (requests not complete within "
			 "http.header_timeout, or idle past http.idle_timeout) since the last report",
			 (unsigned long long)a->timeouts_since_log);
		a->timeouts_since_log = 0;
		a->last_timeout_log_ms = now;
	}
}

static void *sweeper_main(void *arg)
{
	struct eg_admission *a = arg;
	pthread_setname_np(pthread_self(), "eg-http-sweep");
	pthread_mutex_lock(&a->stop_lock);
	while (!a->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += SWEEP_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_sec++, ts.tv_nsec -= 1000000000L;
		pthread_cond_timedwait(&a->stop_cond, &a->stop_lock, &ts);
		if (a->stop)
			break;
		pthread_mutex_unlock(&a->stop_lock);
		sweep(a);
		pthread_mutex_lock(&a->stop_lock);
	}
	pthread_mutex_unlock(&a->stop_lock);
	return NULL;
}

/* --- the interface --------------------------------------------------------------------------- */

struct eg_admission *eg_admission_new(const struct eg_http_config *h, unsigned ipv6_group_plen,
				      struct eg_metrics *metrics)
{
	struct eg_admission *a = xcalloc(1, sizeof(*a));
	a->other_max = h->max_connections - h->reserved_for_proxies;
	a->per_ip = h->max_connections_per_ip;
	a->header_ms = h->header_timeout_s * 1000;
	a->idle_ms = h->idle_timeout_s * 1000;
	a->v6plen = ipv6_group_plen;
	a->metrics = metrics;
	size_t cap = 64;
	while (cap < 2 * (size_t)a->other_max + 2)
		cap *= 2;
	a->ips = xcalloc(cap, sizeof(*a->ips));
	a->ip_mask = cap - 1;
	for (int i = 0; i < 2; i++)
		pthread_mutex_init(&a->pool[i].lock, NULL);
	pthread_mutex_init(&a->stop_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	eg_metric_help(metrics, "edgegate_http_connections_rejected_total", "counter",
		       "connections refused at accept: limit (only the proxies' reserve is left), per_ip");
	eg_metric_help(metrics, "edgegate_http_connections_timed_out_total", "counter",
		       "connections closed at their deadline, by phase (request: not complete in header_timeout)");
	eg_metric_help(metrics, "edgegate_http_connections_open", "gauge", "open HTTP connections by peer");
	eg_metric_inc(metrics, "edgegate_http_connections_rejected_total", "reason", "limit", NULL, NULL, 0);
	eg_metric_inc(metrics, "edgegate_http_connections_rejected_total", "reason", "per_ip", NULL, NULL, 0);
	for (int p = 0; p < 3; p++)
		eg_metric_inc(metrics, "edgegate_http_connections_timed_out_total", "phase", phase_name[p], NULL, NULL, 0);
	set_open_gauge(a, POOL_PROXY);
	set_open_gauge(a, POOL_OTHER);
	if (pthread_create(&a->sweeper, NULL, sweeper_main, a) == 0)
		a->sweeper_started = true;
	else
		log_err("http: cannot start the connection sweeper: deadlines are not enforced");
	return a;
}

void eg_admission_free(struct eg_admission *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->stop_lock);
	a->stop = true;
	pthread_cond_signal(&a->stop_cond);
	pthread_mutex_unlock(&a->stop_lock);
	if (a->sweeper_started)
		pthread_join(a->sweeper, NULL);
	pthread_cond_destroy(&a->stop_cond);
	pthread_mutex_destroy(&a->stop_lock);
	for (int i = 0; i < 2; i++)
		pthread_mutex_destroy(&a->pool[i].lock);
	free(a->ips);
	free(a);
}

bool eg_admission_accept(struct eg_admission *a, bool trusted, const uint8_t addr[16])
{
	if (trusted)
		return true;
	const char *refused = NULL;
	uint8_t g[16];
	group_of(a, addr, g);
	struct pool *pl = &a->pool[POOL_OTHER];
	pthread_mutex_lock(&pl->lock);
	if (atomic_load_explicit(&pl->n, memory_order_relaxed) >= a->other_max) {
		refused = "limit";
	} else if (a->per_ip) {
		struct ip_slot *s = ip_find(a, g, false);
		if (s && s->n >= a->per_ip)
			refused = "per_ip";
	}
	pthread_mutex_unlock(&pl->lock);
	if (refused) {
		eg_metric_inc(a->metrics, "edgegate_http_connections_rejected_total", "reason", refused, NULL, NULL, 1);
		atomic_fetch_add(&a->rejects_since_log, 1);
		int64_t now = mono_ms(), last = atomic_load(&a->last_reject_log_ms);
		if ((last == 0 || now - last >= LOG_EVERY_MS) &&
		    atomic_compare_exchange_strong(&a->last_reject_log_ms, &last, now)) {
			char ip[64];
			eg_addr_format(addr, ip, sizeof(ip));
			log_warn("http: %llu connections refused since the last report (latest from %s: %s); "
				 "the configured proxies keep their reserved slots",
				 (unsigned long long)atomic_exchange(&a->rejects_since_log, 0), ip,
				 strcmp(refused, "limit") == 0 ? "only the proxies' reserve is left"
							       : "over http.max_connections_per_ip");
		}
	}
	return refused == NULL;
}

void eg_admission_open(struct eg_admission *a, struct eg_conn *c)
{
	group_of(a, c->addr, c->group);
	atomic_store(&c->phase, EG_CONN_REQUEST);
	atomic_store(&c->deadline_ms, mono_ms() + a->header_ms);
	int k = c->trusted ? POOL_PROXY : POOL_OTHER;
	struct pool *pl = &a->pool[k];
	pthread_mutex_lock(&pl->lock);
	c->prev = NULL;
	c->next = pl->head;
	if (pl->head)
		pl->head->prev = c;
	pl->head = c;
	atomic_fetch_add_explicit(&pl->n, 1, memory_order_relaxed);
	if (!c->trusted)
		ip_find(a, c->group, true)->n++;
	set_open_gauge(a, k);
	pthread_mutex_unlock(&pl->lock);
}

void eg_admission_close(struct eg_admission *a, struct eg_conn *c)
{
	int k = c->trusted ? POOL_PROXY : POOL_OTHER;
	struct pool *pl = &a->pool[k];
	pthread_mutex_lock(&pl->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		pl->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	atomic_fetch_sub_explicit(&pl->n, 1, memory_order_relaxed);
	if (!c->trusted) {
		struct ip_slot *s = ip_find(a, c->group, false);
		if (s && --s->n == 0)
			ip_delete(a, s);
	}
	set_open_gauge(a, k);
	pthread_mutex_unlock(&pl->lock);
}

void eg_admission_phase(struct eg_admission *a, struct eg_conn *c, enum eg_conn_phase p)
{
	int64_t span = p == EG_CONN_IDLE ? a->idle_ms : a->header_ms;
	atomic_store_explicit(&c->deadline_ms, p == EG_CONN_BUSY ? INT64_MAX : mono_ms() + span, memory_order_relaxed);
	atomic_store_explicit(&c->phase, p, memory_order_relaxed);
}
