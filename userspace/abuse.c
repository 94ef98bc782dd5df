/* abuse.c - per-source accounting on the verdict path.
 *
 * Failed credential attempts (eg_abuse_counts) are counted per canonical source
 * in a fixed window of gate.ban_window; at gate.ban_threshold the source is banned
 * for gate.ban_time, doubled for every repeat offence (remembered for ban_max after
 * the last ban ended) up to gate.ban_max. A ban is enforced in three places:
 *   - the kernel deny map with reason "ban" (XDP drops the source's packets before
 *     nginx sees a SYN), when the gate is attached;
 *   - here, in eg_abuse_check (answers 403 "banned"): the only enforcement when the
 *     gate is not attached, and a backstop for paths around the gated interface;
 *   - the store (EG_NS_BAN), so bans and offence counts survive a restart and are
 *     re-applied to the kernel and to this table by eg_abuse_init.
 * Verdict rate limits (GCRA, one word per source like the XDP buckets): gate.verdict_rate
 * /verdict_burst; when they are unset and the gate is configured but could not be
 * attached, the gate's syn_rate/syn_burst are applied per verdict instead, so the
 * configured policy still holds in userspace.
 *
 * Allowlisted sources (gate.allow, dynamic allow entries in the kernel map, and the
 * trusted_proxies, i.e. nginx itself) are never banned nor limited.
 *
 * Table: 64 striped hash tables, bounded (sweeps drop idle entries; a full stripe
 * stops tracking new sources rather than evicting a ban). */
#include "abuse.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "config.h"
#include "daemon.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

#define STRIPES 64
#define BUCKETS 256
#define MAX_SOURCES 65536
#define SWEEP_MS 1000
#define NS 1000000000ull

struct src {
	struct src *next;
	uint8_t addr[16]; /* canonical, masked */
	uint8_t plen;
	uint32_t fails;
	uint32_t offenses;
	uint64_t win_start_ns;
	uint64_t ban_until_ns;  /* monotonic; 0 = not banned */
	uint64_t ban_end_ns;    /* end of the last ban (repeat-offender memory) */
	uint64_t tat_ns;        /* verdict rate GCRA */
	uint64_t seen_ns;
};

struct stripe {
	pthread_mutex_t mu;
	unsigned n;
	struct src *b[BUCKETS];
};

struct eg_abuse {
	struct stripe st[STRIPES];
	uint32_t threshold;
	uint64_t window_ns, ban_ns, ban_max_ns, memory_ns;
	uint32_t rate, burst; /* verdicts per second per source, 0 = off */
	const char *rate_source;
	int64_t offset_ns; /* tests */
	uint64_t bans_total, rejected_banned, rejected_rate;
	pthread_t th;
	bool th_running, stop;
	pthread_mutex_t tmu;
	pthread_cond_t tcv;
};

static uint64_t mono(const struct eg_abuse *a)
{
	return now_mono_ns() + (uint64_t)a->offset_ns;
}

static int64_t wall(const struct eg_abuse *a)
{
	return now_realtime_s() + a->offset_ns / (int64_t)NS;
}

/* --- classification and canonical sources --------------------------------------------------- */

bool eg_abuse_counts(int status, const char *reason)
{
	if (!reason)
		return status == 401;
	if (status == 401)
		return strcmp(reason, "no_identity") != 0 && strcmp(reason, "no_key") != 0 &&
		       strcmp(reason, "not_yet") != 0;
	if (status == 403)
		return strstr(reason, "cert") != NULL && strcmp(reason, "client_cert_missing") != 0;
	return false;
}

static bool is_mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a, pfx, 12) == 0;
}

static void mask(uint8_t a[16], unsigned plen)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = plen > i * 8 ? plen - i * 8 : 0;
		a[i] &= bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
	}
}

void eg_abuse_canonical(const struct eg_config *cfg, const uint8_t src[16], struct eg_prefix *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->addr, src, 16);
	if (is_mapped(src)) {
		out->plen = 128;
		out->v4 = true;
		return;
	}
	unsigned plen = cfg && cfg->gate.ipv6_group_plen ? cfg->gate.ipv6_group_plen : 64;
	out->plen = (uint8_t)(plen > 128 ? 128 : plen);
	mask(out->addr, out->plen);
}

static bool statically_allowed(const struct eg_config *cfg, const uint8_t src[16])
{
	for (size_t i = 0; i < cfg->gate.n_allow; i++)
		if (eg_prefix_contains(&cfg->gate.allow[i], src))
			return true;
	for (size_t i = 0; i < cfg->n_trusted_proxies; i++)
		if (eg_prefix_contains(&cfg->trusted_proxies[i], src))
			return true;
	return false;
}

/* Dynamic allow entries live in the kernel maps (edgegatectl allow add): looked up
 * only when a source is about to be banned or limited, never per request. */
static bool kernel_allowed(struct eg_daemon *d, const uint8_t src[16])
{
	struct eg_rule r;
	struct eg_lpm_key k = { .plen = 128 };
	int fd;

	if (!d->gate)
		return false;
	uint64_t now = eg_gate_now_ns(d->gate);
	fd = eg_gate_map_fd(d->gate, EG_MAP_ALLOW);
	if (fd >= 0 && bpf_map_lookup_elem(fd, src, &r) == 0 && (!r.expires_ns || r.expires_ns > now))
		return true;
	memcpy(k.a, src, 16);
	fd = eg_gate_map_fd(d->gate, EG_MAP_ALLOW_LPM);
	if (fd >= 0 && bpf_map_lookup_elem(fd, &k, &r) == 0 && (!r.expires_ns || r.expires_ns > now))
		return true;
	return false;
}

/* --- the table ------------------------------------------------------------------------------ */

static uint64_t hash_key(const struct eg_prefix *p)
{
	uint64_t h = 1469598103934665603ull;
	for (unsigned i = 0; i < 16; i++)
		h = (h ^ p->addr[i]) * 1099511628211ull;
	return (h ^ p->plen) * 1099511628211ull;
}

static struct src **slot(struct eg_abuse *a, const struct eg_prefix *p, struct stripe **st)
{
	uint64_t h = hash_key(p);
	*st = &a->st[h % STRIPES];
	return &(*st)->b[(h / STRIPES) % BUCKETS];
}

static struct src *find_locked(struct src **head, const struct eg_prefix *p)
{
	for (struct src *e = *head; e; e = e->next)
		if (e->plen == p->plen && memcmp(e->addr, p->addr, 16) == 0)
			return e;
	return NULL;
}

/* NULL when the stripe is full (a flood of distinct sources): not tracked. */
static struct src *get_locked(struct stripe *st, struct src **head, const struct eg_prefix *p)
{
	struct src *e = find_locked(head, p);
	if (e || st->n >= MAX_SOURCES / STRIPES)
		return e;
	e = xcalloc(1, sizeof(*e));
	memcpy(e->addr, p->addr, 16);
	e->plen = p->plen;
	e->next = *head;
	*head = e;
	st->n++;
	return e;
}

static void prefix_of(const struct src *e, struct eg_prefix *p)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->addr, e->addr, 16);
	p->plen = e->plen;
	p->v4 = is_mapped(e->addr);
}

/* --- bans --------------------------------------------------------------------------------- */

static void persist(struct eg_daemon *d, const struct eg_prefix *p, int64_t until, uint32_t offenses)
{
	struct eg_abuse *a = d->abuse;
	char key[64], val[96];

	if (!d->store)
		return;
	eg_gate_prefix_format(p, key, sizeof(key));
	snprintf(val, sizeof(val), "{\"until\":%lld,\"offenses\":%u}", (long long)until, offenses);
	/* kept past the ban: the offence count is what makes the next ban longer */
	if (eg_store_put(d->store, EG_NS_BAN, key, val, strlen(val), until + (int64_t)(a->memory_ns / NS)) != 0)
		log_warn("abuse: could not persist the ban of %s", key);
}

static void kernel_ban(struct eg_daemon *d, const struct eg_prefix *p, int64_t secs)
{
	char t[64];

	if (!d->gate || secs <= 0)
		return;
	if (eg_gate_deny_add(d->gate, p, secs, EG_RULE_BAN) != 0) {
		eg_gate_prefix_format(p, t, sizeof(t));
		log_warn("abuse: kernel ban of %s failed: %s (enforced in userspace)", t, strerror(errno));
	}
}

static void ban(struct eg_daemon *d, const struct eg_prefix *p, uint64_t dur_ns, uint32_t offenses, uint32_t fails)
{
	struct eg_abuse *a = d->abuse;
	char t[64];
	int64_t secs = (int64_t)((dur_ns + NS - 1) / NS);

	kernel_ban(d, p, secs);
	persist(d, p, wall(a) + secs, offenses);
	__atomic_add_fetch(&a->bans_total, 1, __ATOMIC_RELAXED);
	eg_metric_inc(d->metrics, "edgegate_bans_total", "where", d->gate ? "xdp" : "userspace", NULL, NULL, 1);
	eg_metric_set(d->metrics, "edgegate_bans_active", NULL, NULL, (double)eg_abuse_bans_active(d));
	eg_gate_prefix_format(p, t, sizeof(t));
	log_warn("abuse: banned %s for %llds (offence %u, %u failures in %llus window)%s", t, (long long)secs, offenses,
		 fails, (unsigned long long)(a->window_ns / NS), d->gate ? "" : " in userspace (no XDP gate)");
}

int eg_abuse_check(struct eg_daemon *d, const uint8_t src[16], const char **reason)
{
	struct eg_abuse *a = d ? d->abuse : NULL;
	struct eg_prefix p;
	struct stripe *st;
	int rc = 0;

	if (!a || statically_allowed(d->cfg, src))
		return 0;
	eg_abuse_canonical(d->cfg, src, &p);
	uint64_t now = mono(a);
	struct src **head = slot(a, &p, &st);
	pthread_mutex_lock(&st->mu);
	struct src *e = a->rate ? get_locked(st, head, &p) : find_locked(head, &p);
	if (e) {
		e->seen_ns = now;
		if (e->ban_until_ns > now) {
			rc = -1;
			*reason = "banned";
		} else if (a->rate) {
			/* GCRA: conforming while tat - now <= (burst - 1) * T */
			uint64_t T = NS / a->rate, tol = (uint64_t)(a->burst - 1) * T;
			uint64_t tat = e->tat_ns > now ? e->tat_ns : now;
			if (tat - now > tol) {
				rc = -1;
				*reason = "rate_limited";
			} else {
				e->tat_ns = tat + T;
			}
		}
	}
	pthread_mutex_unlock(&st->mu);
	if (rc && strcmp(*reason, "rate_limited") == 0 && kernel_allowed(d, src))
		return 0;
	if (rc) {
		__atomic_add_fetch(*reason[0] == 'b' ? &a->rejected_banned : &a->rejected_rate, 1, __ATOMIC_RELAXED);
		eg_metric_inc(d->metrics, "edgegate_abuse_rejected_total", "reason", *reason, NULL, NULL, 1);
	}
	return rc;
}

void eg_abuse_note(struct eg_daemon *d, const uint8_t src[16], int status, const char *reason)
{
	struct eg_abuse *a = d ? d->abuse : NULL;
	struct eg_prefix p;
	struct stripe *st;
	uint64_t dur = 0;
	uint32_t offenses = 0, fails = 0;

	if (!a || !a->threshold || !eg_abuse_counts(status, reason) || statically_allowed(d->cfg, src))
		return;
	eg_abuse_canonical(d->cfg, src, &p);
	uint64_t now = mono(a);
	struct src **head = slot(a, &p, &st);
	pthread_mutex_lock(&st->mu);
	struct src *e = get_locked(st, head, &p);
	if (e && e->ban_until_ns <= now) {
		e->seen_ns = now;
		if (now - e->win_start_ns >= a->window_ns) {
			e->win_start_ns = now;
			e->fails = 0;
		}
		if (++e->fails >= a->threshold) {
			if (e->ban_end_ns && now - e->ban_end_ns > a->memory_ns)
				e->offenses = 0; /* reformed: back to the base ban time */
			offenses = ++e->offenses;
			dur = a->ban_ns;
			for (uint32_t i = 1; i < offenses && dur < a->ban_max_ns; i++)
				dur *= 2;
			if (dur > a->ban_max_ns)
				dur = a->ban_max_ns;
			fails = e->fails;
			e->fails = 0;
			e->ban_until_ns = e->ban_end_ns = now + dur;
		}
	}
	pthread_mutex_unlock(&st->mu);
	if (!dur)
		return;
	if (kernel_allowed(d, src)) {
		pthread_mutex_lock(&st->mu);
		if ((e = find_locked(head, &p))) {
			e->ban_until_ns = 0;
			e->offenses--;
		}
		pthread_mutex_unlock(&st->mu);
		return;
	}
	ban(d, &p, dur, offenses, fails);
}

int eg_abuse_unban(struct eg_daemon *d, const struct eg_prefix *in)
{
	struct eg_abuse *a = d ? d->abuse : NULL;
	struct eg_prefix p;
	struct stripe *st;
	int rc = -1;
	char key[64];

	if (!a)
		return -1;
	p = *in;
	struct src **head = slot(a, &p, &st);
	pthread_mutex_lock(&st->mu);
	struct src *e = find_locked(head, &p);
	if (e && e->ban_until_ns > mono(a)) {
		e->ban_until_ns = 0;
		rc = 0;
	}
	pthread_mutex_unlock(&st->mu);
	if (d->gate && eg_gate_deny_del(d->gate, &p) == 0)
		rc = 0;
	if (d->store) {
		eg_gate_prefix_format(&p, key, sizeof(key));
		eg_store_del(d->store, EG_NS_BAN, key);
	}
	eg_metric_set(d->metrics, "edgegate_bans_active", NULL, NULL, (double)eg_abuse_bans_active(d));
	return rc;
}

/* --- sweeping, listing ------------------------------------------------------------------------ */

typedef void (*each_fn)(const struct src *e, uint64_t now, void *arg);

static void each(struct eg_abuse *a, each_fn fn, void *arg)
{
	uint64_t now = mono(a);
	for (unsigned s = 0; s < STRIPES; s++) {
		pthread_mutex_lock(&a->st[s].mu);
		for (unsigned b = 0; b < BUCKETS; b++)
			for (struct src *e = a->st[s].b[b]; e; e = e->next)
				fn(e, now, arg);
		pthread_mutex_unlock(&a->st[s].mu);
	}
}

static void count_active(const struct src *e, uint64_t now, void *arg)
{
	*(size_t *)arg += e->ban_until_ns > now;
}

size_t eg_abuse_bans_active(struct eg_daemon *d)
{
	size_t n = 0;

	if (d && d->abuse)
		each(d->abuse, count_active, &n);
	return n;
}

static void list_one(const struct src *e, uint64_t now, void *arg)
{
	struct eg_prefix p;
	char t[64];

	if (e->ban_until_ns <= now)
		return;
	prefix_of(e, &p);
	eg_gate_prefix_format(&p, t, sizeof(t));
	json_array_append_new(arg, json_pack("{s:s, s:I, s:i}", "prefix", t, "ttl_s",
					     (json_int_t)((e->ban_until_ns - now + NS - 1) / NS), "offenses",
					     (int)e->offenses));
}

json_t *eg_abuse_bans_json(struct eg_daemon *d)
{
	json_t *arr = json_array();

	if (d && d->abuse)
		each(d->abuse, list_one, arr);
	return arr;
}

long eg_abuse_gc(struct eg_daemon *d)
{
	struct eg_abuse *a = d ? d->abuse : NULL;
	long removed = 0;

	if (!a)
		return 0;
	uint64_t now = mono(a);
	for (unsigned s = 0; s < STRIPES; s++) {
		struct stripe *st = &a->st[s];
		pthread_mutex_lock(&st->mu);
		for (unsigned b = 0; b < BUCKETS; b++) {
			for (struct src **pp = &st->b[b]; *pp;) {
				struct src *e = *pp;
				bool idle = e->ban_until_ns <= now && now - e->win_start_ns >= a->window_ns &&
					    e->tat_ns <= now && (!e->ban_end_ns || now - e->ban_end_ns > a->memory_ns) &&
					    now - e->seen_ns >= a->window_ns;
				if (idle) {
					*pp = e->next;
					free(e);
					st->n--;
					removed++;
				} else {
					pp = &e->next;
				}
			}
		}
		pthread_mutex_unlock(&st->mu);
	}
	eg_metric_set(d->metrics, "edgegate_bans_active", NULL, NULL, (double)eg_abuse_bans_active(d));
	return removed;
}

static void *sweeper(void *arg)
{
	struct eg_daemon *d = arg;
	struct eg_abuse *a = d->abuse;

	pthread_mutex_lock(&a->tmu);
	while (!a->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += SWEEP_MS / 1000;
		pthread_cond_timedwait(&a->tcv, &a->tmu, &ts);
		if (a->stop)
			break;
		pthread_mutex_unlock(&a->tmu);
		eg_abuse_gc(d);
		pthread_mutex_lock(&a->tmu);
	}
	pthread_mutex_unlock(&a->tmu);
	return NULL;
}

void eg_abuse_set_clock_offset(struct eg_daemon *d, int64_t offset_ns)
{
	if (d && d->abuse)
		d->abuse->offset_ns = offset_ns;
}

/* --- restart: bans from the store ------------------------------------------------------------ */

static int restore_one(const char *key, const void *val, size_t len, int64_t exp, void *arg)
{
	struct eg_daemon *d = arg;
	struct eg_abuse *a = d->abuse;
	struct eg_prefix p;
	struct stripe *st;

	json_t *j = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *ju = json_object_get(j, "until"), *jo = json_object_get(j, "offenses");
	if (!json_is_integer(ju) || !json_is_integer(jo) || eg_gate_prefix_parse(key, &p) != 0) {
		log_warn("abuse: ignoring a malformed ban record");
		json_decref(j);
		return 0;
	}
	int64_t until = json_integer_value(ju), left = until - wall(a);
	json_int_t off = json_integer_value(jo);
	json_decref(j);
	uint64_t now = mono(a);
	struct src **head = slot(a, &p, &st);
	pthread_mutex_lock(&st->mu);
	struct src *e = get_locked(st, head, &p);
	if (e) {
		e->offenses = off > 0 && off < 64 ? (uint32_t)off : 1;
		e->seen_ns = now;
		/* the end of a ban already over is in the past: clamp to "just ended" */
		e->ban_end_ns = left > 0 ? now + (uint64_t)left * NS : now;
		e->ban_until_ns = left > 0 ? e->ban_end_ns : 0;
	}
	pthread_mutex_unlock(&st->mu);
	if (left > 0) {
		kernel_ban(d, &p, left); /* pins lost (reboot) or a new pin root */
		log_info("abuse: ban of %s re-applied (%llds left)", key, (long long)left);
	}
	return 0;
}

/* --- admin ------------------------------------------------------------------------------------ */

static json_t *adm_abuse(struct eg_daemon *d, const json_t *req, const char **err)
{
	struct eg_abuse *a = d->abuse;

	if (!a) {
		*err = "abuse control is not initialised";
		return NULL;
	}
	return json_pack("{s:s, s:I, s:I, s:i, s:I, s:I, s:I, s:i, s:i, s:s, s:I, s:I}", "enforcement",
			 d->gate ? "xdp+userspace" : "userspace", "bans_active", (json_int_t)eg_abuse_bans_active(d),
			 "bans_total", (json_int_t)a->bans_total, "ban_threshold", (int)a->threshold, "ban_window_s",
			 (json_int_t)(a->window_ns / NS), "ban_time_s", (json_int_t)(a->ban_ns / NS), "ban_max_s",
			 (json_int_t)(a->ban_max_ns / NS), "verdict_rate", (int)a->rate, "verdict_burst", (int)a->burst,
			 "verdict_rate_from", a->rate_source, "rejected_banned", (json_int_t)a->rejected_banned,
			 "rejected_rate_limited", (json_int_t)a->rejected_rate);
}

static json_t *adm_bans(struct eg_daemon *d, const json_t *req, const char **err)
{
	return json_pack("{s:s, s:o}", "enforcement", d->gate ? "xdp+userspace" : "userspace", "bans",
			 eg_abuse_bans_json(d));
}

static json_t *adm_unban(struct eg_daemon *d, const json_t *req, const char **err)
{
	const char *s = json_string_value(json_object_get(req, "prefix"));
	struct eg_prefix p;

	if (!s || eg_gate_prefix_parse(s, &p) != 0) {
		*err = "ban.del needs a prefix";
		return NULL;
	}
	if (eg_abuse_unban(d, &p) != 0) {
		*err = "no such ban";
		return NULL;
	}
	return json_object();
}

/* --- lifecycle ------------------------------------------------------------------------------- */

static void describe_metrics(struct eg_metrics *m)
{
	if (!m)
		return;
	eg_metric_help(m, "edgegate_bans_total", "counter", "sources banned for failed verdicts");
	eg_metric_help(m, "edgegate_bans_active", "gauge", "sources banned right now");
	eg_metric_help(m, "edgegate_abuse_rejected_total", "counter",
		       "verdicts refused in userspace: banned source or over the verdict rate");
}

int eg_abuse_init(struct eg_daemon *d, char *err, size_t errlen)
{
	const struct eg_gate_config *g = &d->cfg->gate;
	struct eg_abuse *a = xcalloc(1, sizeof(*a));

	for (unsigned i = 0; i < STRIPES; i++)
		pthread_mutex_init(&a->st[i].mu, NULL);
	pthread_mutex_init(&a->tmu, NULL);
	pthread_cond_init(&a->tcv, NULL);
	a->threshold = g->ban_threshold;
	a->window_ns = (uint64_t)(g->ban_window_s > 0 ? g->ban_window_s : 60) * NS;
	a->ban_ns = (uint64_t)(g->ban_time_s > 0 ? g->ban_time_s : 600) * NS;
	a->ban_max_ns = (uint64_t)(g->ban_max_s > 0 ? g->ban_max_s : 86400) * NS;
	if (a->ban_max_ns < a->ban_ns)
		a->ban_max_ns = a->ban_ns;
	a->memory_ns = a->ban_max_ns;
	a->rate_source = "off";
	if (g->verdict_rate) {
		a->rate = g->verdict_rate;
		a->burst = g->verdict_burst;
		a->rate_source = "gate.verdict_rate";
	} else if (g->present && !d->gate && g->syn_rate) {
		/* The kernel cannot limit: hold the configured per-source rate per verdict. */
		a->rate = g->syn_rate;
		a->burst = g->syn_burst;
		a->rate_source = "gate.syn_rate (XDP gate not attached)";
	}
	if (a->rate && a->burst == 0)
		a->burst = a->rate;
	if (a->rate > NS)
		a->rate = NS;
	d->abuse = a;
	if (d->store)
		eg_store_foreach(d->store, EG_NS_BAN, restore_one, d);
	if (pthread_create(&a->th, NULL, sweeper, d) == 0)
		a->th_running = true;
	describe_metrics(d->metrics);
	eg_metric_set(d->metrics, "edgegate_bans_active", NULL, NULL, (double)eg_abuse_bans_active(d));
	eg_admin_register("abuse", adm_abuse);
	eg_admin_register("bans", adm_bans);
	eg_admin_register("ban.del", adm_unban);
	if (!d->gate)
		log_info("abuse: enforcing bans%s in userspace (no XDP gate attached)",
			 a->rate ? " and verdict rate limits" : "");
	return 0;
}

void eg_abuse_free(struct eg_daemon *d)
{
	struct eg_abuse *a = d ? d->abuse : NULL;

	if (!a)
		return;
	if (a->th_running) {
		pthread_mutex_lock(&a->tmu);
		a->stop = true;
		pthread_cond_broadcast(&a->tcv);
		pthread_mutex_unlock(&a->tmu);
		pthread_join(a->th, NULL);
	}
	d->abuse = NULL;
	for (unsigned s = 0; s < STRIPES; s++) {
		for (unsigned b = 0; b < BUCKETS; b++)
			for (struct src *e = a->st[s].b[b], *next; e; e = next) {
				next = e->next;
				free(e);
			}
		pthread_mutex_destroy(&a->st[s].mu);
	}
	pthread_mutex_destroy(&a->tmu);
	pthread_cond_destroy(&a->tcv);
	free(a);
}
