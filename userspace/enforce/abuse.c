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
 * Only attack signals count (eg_abuse_counts): bad signatures, malformed tokens,
 * forged session tickets, rejected client certificates. Expiry does not, nor a session
 * that ended normally (sessions tell the two apart by the ticket's MAC), nor a request
 * without any credential: a polling single-page app or a NAT of users is never banned.
 *
 * Allowlisted sources (gate.allow, gate.never_ban for the admin's own addresses,
 * dynamic allow entries in the kernel map, and the trusted_proxies, i.e. nginx
 * itself) are never banned nor limited.
 *
 * Table: 64 striped hash tables, bounded (sweeps drop idle entries; a full stripe
 * stops tracking new sources rather than evicting a ban).
 *
 * Shared store (Redis, several nodes): a ban and a lifted ban are also events in the
 * store's stream; events.c follows it and applies the bans other nodes decided (table +
 * kernel, eg_abuse_remote_ban) and lifts those another node lifted (ban.del,
 * eg_abuse_remote_unban). Only a node that missed events the stream no longer keeps
 * reads EG_NS_BAN whole (eg_abuse_sync: applies live bans, lifts those whose record is
 * gone). */
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

/* The reasons that count, in the order `edgegatectl bans` lists them. */
static const char *const counted[] = {
	"signature", "malformed", "malformed_token", "alg", "crit", "forged_session",
	"bad_client_cert", "certificate_revoked", "certificate_binding",
};
#define N_COUNTED (sizeof(counted) / sizeof(counted[0]))

struct src {
	struct src *next;
	uint16_t why[N_COUNTED];     /* failures by reason in the current window */
	uint16_t ban_why[N_COUNTED]; /* ... in the window that led to the ban in force */
	int64_t first_unix, last_unix;         /* first/last failure of the current window */
	int64_t ban_first_unix, ban_last_unix; /* ... of the window that led to the ban */
	uint8_t addr[16]; /* canonical, masked */
	uint8_t plen;
	uint32_t fails;
	uint32_t offenses;
	uint64_t win_start_ns;
	uint64_t ban_until_ns;  /* monotonic; 0 = not banned */
	uint64_t ban_end_ns;    /* end of the last ban (repeat-offender memory) */
	uint64_t tat_ns;        /* verdict rate GCRA */
	uint64_t seen_ns;
	/* last time the store was known to hold this ban (scan saw it / our write landed);
	 * 0 = unconfirmed: a sync pass never lifts it for a missing record */
	uint64_t confirmed_ns;
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
	/* reconciliation with a shared store */
	bool shared;
	uint64_t next_gc_ns;
	uint64_t sync_events, sync_passes, sync_applied, sync_removed, sync_errors;
	size_t sync_last_keys;
	int64_t sync_last_unix;
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

static int counted_index(const char *reason)
{
	for (size_t i = 0; reason && i < N_COUNTED; i++)
		if (strcmp(reason, counted[i]) == 0)
			return (int)i;
	return -1;
}

/* An explicit list: a reason added later does not start banning users by default. */
bool eg_abuse_counts(int status, const char *reason)
{
	return (status == 401 || status == 403) && counted_index(reason) >= 0;
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
	for (size_t i = 0; i < cfg->gate.n_never_ban; i++)
		if (eg_prefix_contains(&cfg->gate.never_ban[i], src))
			return true;
	return false;
}

/* Dynamic allow entries live in the kernel maps (edgegatectl allow add): looked up
 * only when a source is about to be banned or limited, never per request. */
static bool kernel_allowed(struct eg_daemon *d, const uint8_t src[16])
{
	return d->gate && eg_gate_allowed(d->gate, src);
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

/* Why a ban happened: what `edgegatectl bans` shows, and what the ban record keeps. */
struct ban_why {
	uint16_t n[N_COUNTED];
	int64_t first_unix, last_unix;
};

static json_t *why_json(const uint16_t n[N_COUNTED])
{
	json_t *o = json_object();

	for (size_t i = 0; i < N_COUNTED; i++)
		if (n[i])
			json_object_set_new(o, counted[i], json_integer(n[i]));
	return o;
}

/* Reads {"reasons":{...},"first":T,"last":T} of a ban record (all optional). */
static void why_parse(const json_t *j, struct ban_why *w)
{
	const json_t *r = json_object_get(j, "reasons");
	const char *k;
	json_t *v;

	memset(w, 0, sizeof(*w));
	json_object_foreach((json_t *)r, k, v) {
		int i = counted_index(k);
		if (i >= 0 && json_is_integer(v) && json_integer_value(v) > 0)
			w->n[i] = json_integer_value(v) > 65535 ? 65535 : (uint16_t)json_integer_value(v);
	}
	w->first_unix = (int64_t)json_integer_value(json_object_get(j, "first"));
	w->last_unix = (int64_t)json_integer_value(json_object_get(j, "last"));
}

static int persist(struct eg_daemon *d, const struct eg_prefix *p, int64_t until, uint32_t offenses,
		   const struct ban_why *w)
{
	struct eg_abuse *a = d->abuse;
	char key[64];

	if (!d->store)
		return -1;
	eg_gate_prefix_format(p, key, sizeof(key));
	json_t *j = json_pack("{s:I, s:i, s:o, s:I, s:I}", "until", (json_int_t)until, "offenses", (int)offenses,
			      "reasons", why_json(w->n), "first", (json_int_t)w->first_unix, "last",
			      (json_int_t)w->last_unix);
	char *val = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	/* kept past the ban: the offence count is what makes the next ban longer */
	if (!val ||
	    eg_store_put(d->store, EG_NS_BAN, key, val, strlen(val), until + (int64_t)(a->memory_ns / NS)) != 0) {
		free(val);
		log_warn("abuse: could not persist the ban of %s", key);
		return -1;
	}
	/* other nodes apply it as it arrives (a failed publish: they learn it at a resync) */
	if (eg_store_publish(d->store, "ban", key, val) != 0)
		log_warn("abuse: the ban of %s is stored but not published to the other nodes", key);
	free(val);
	return 0;
}

static void mark_confirmed(struct eg_abuse *a, const struct eg_prefix *p)
{
	struct stripe *st;
	struct src **head = slot(a, p, &st);

	pthread_mutex_lock(&st->mu);
	struct src *e = find_locked(head, p);
	if (e && e->ban_until_ns > mono(a))
		e->confirmed_ns = mono(a);
	pthread_mutex_unlock(&st->mu);
}

static void kernel_ban(struct eg_daemon *d, const struct eg_prefix *p, int64_t secs)
{
	char t[64];

	if (!d->gate || secs <= 0)
		return;
	/* A deny entry that is not a ban (manual, static) already drops everything: rewritten
	 * as a ban it would expire with the ban, and its stored record with it. */
	int held = eg_gate_deny_reason(d->gate, p);
	if (held >= 0 && held != EG_RULE_BAN)
		return;
	if (eg_gate_deny_add(d->gate, p, secs, EG_RULE_BAN) != 0) {
		eg_gate_prefix_format(p, t, sizeof(t));
		log_warn("abuse: kernel ban of %s failed: %s (enforced in userspace)", t, strerror(errno));
	}
}

static void ban(struct eg_daemon *d, const struct eg_prefix *p, uint64_t dur_ns, uint32_t offenses, uint32_t fails,
		const struct ban_why *w)
{
	struct eg_abuse *a = d->abuse;
	char t[64];
	int64_t secs = (int64_t)((dur_ns + NS - 1) / NS);

	/* Recorded before it is enforced: a ban anyone can observe survives a crash and
	 * lost pins (a store failure still bans, it is logged). */
	if (persist(d, p, wall(a) + secs, offenses, w) == 0)
		mark_confirmed(a, p);
	kernel_ban(d, p, secs);
	__atomic_add_fetch(&a->bans_total, 1, __ATOMIC_RELAXED);
	eg_metric_inc(d->metrics, "edgegate_bans_total", "where", d->gate ? "xdp" : "userspace", NULL, NULL, 1);
	eg_metric_set(d->metrics, "edgegate_bans_active", NULL, NULL, (double)eg_abuse_bans_active(d));
	eg_gate_prefix_format(p, t, sizeof(t));
	json_t *wj = why_json(w->n);
	char *ws = json_dumps(wj, JSON_COMPACT);
	json_decref(wj);
	log_warn("abuse: banned %s for %llds (offence %u, %u failures in %llus window: %s)%s", t, (long long)secs,
		 offenses, fails, (unsigned long long)(a->window_ns / NS), ws ? ws : "?",
		 d->gate ? "" : " in userspace (no XDP gate)");
	free(ws);
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

/* A ban decided, not yet recorded nor in the kernel maps (eg_abuse_ban_commit). */
struct eg_abuse_ban {
	struct eg_prefix p;
	uint64_t dur;
	uint32_t offenses, fails;
	struct ban_why w;
};

void eg_abuse_ban_commit(struct eg_daemon *d, struct eg_abuse_ban *b)
{
	ban(d, &b->p, b->dur, b->offenses, b->fails, &b->w);
	free(b);
}

void eg_abuse_note(struct eg_daemon *d, const uint8_t src[16], int status, const char *reason)
{
	eg_abuse_note_ex(d, src, status, reason, NULL);
}

void eg_abuse_note_ex(struct eg_daemon *d, const uint8_t src[16], int status, const char *reason,
		      struct eg_abuse_ban **pending)
{
	struct eg_abuse *a = d ? d->abuse : NULL;
	struct eg_prefix p;
	struct stripe *st;
	struct ban_why w;
	uint64_t dur = 0;
	uint32_t offenses = 0, fails = 0;

	/* the status first: an allowed verdict (most of them) compares no reason strings */
	if (!a || !a->threshold || !eg_abuse_counts(status, reason) || statically_allowed(d->cfg, src))
		return;
	int ri = counted_index(reason);
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
			memset(e->why, 0, sizeof(e->why));
			e->first_unix = wall(a);
		}
		if (ri >= 0 && e->why[ri] < UINT16_MAX)
			e->why[ri]++;
		e->last_unix = wall(a);
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
			memcpy(e->ban_why, e->why, sizeof(e->why));
			memset(e->why, 0, sizeof(e->why));
			e->ban_first_unix = e->first_unix;
			e->ban_last_unix = e->last_unix;
			memcpy(w.n, e->ban_why, sizeof(w.n));
			w.first_unix = e->ban_first_unix;
			w.last_unix = e->ban_last_unix;
			e->ban_until_ns = e->ban_end_ns = now + dur;
			e->confirmed_ns = 0; /* not in the store until persist() says so */
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
	if (pending) {
		/* refused from now on (the table above); recorded where the store may be used */
		struct eg_abuse_ban *b = xmalloc(sizeof(*b));
		*b = (struct eg_abuse_ban){ .p = p, .dur = dur, .offenses = offenses, .fails = fails, .w = w };
		*pending = b;
		return;
	}
	ban(d, &p, dur, offenses, fails, &w);
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
	/* the ban's own entry only: a manual or static deny of the same prefix stays */
	if (d->gate && eg_gate_deny_reason(d->gate, &p) == EG_RULE_BAN && eg_gate_deny_del(d->gate, &p) == 0)
		rc = 0;
	if (d->store) {
		eg_gate_prefix_format(&p, key, sizeof(key));
		eg_store_del(d->store, EG_NS_BAN, key);
		if (eg_store_publish(d->store, "unban", key, NULL) != 0)
			log_warn("abuse: the lifted ban of %s is not published to the other nodes", key);
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
	json_array_append_new(arg, json_pack("{s:s, s:I, s:i, s:o, s:I, s:I}", "prefix", t, "ttl_s",
					     (json_int_t)((e->ban_until_ns - now + NS - 1) / NS), "offenses",
					     (int)e->offenses, "reasons", why_json(e->ban_why), "first_offense",
					     (json_int_t)e->ban_first_unix, "last_offense",
					     (json_int_t)e->ban_last_unix));
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

static void sync_pass(struct eg_daemon *d);

static void *sweeper(void *arg)
{
	struct eg_daemon *d = arg;
	struct eg_abuse *a = d->abuse;
	uint64_t step = (uint64_t)SWEEP_MS * 1000000ull;

	pthread_mutex_lock(&a->tmu);
	while (!a->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + step;
		ts.tv_sec += (time_t)(ns / NS);
		ts.tv_nsec = (long)(ns % NS);
		pthread_cond_timedwait(&a->tcv, &a->tmu, &ts);
		if (a->stop)
			break;
		pthread_mutex_unlock(&a->tmu);
		uint64_t now = now_mono_ns();
		if (now >= a->next_gc_ns) {
			a->next_gc_ns = now + (uint64_t)SWEEP_MS * 1000000ull;
			eg_abuse_gc(d);
		}
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

/* One EG_NS_BAN record: {"until":UNIX,"offenses":N[,"reasons":{..},"first":T,"last":T]}.
 * 0 ok, -1 malformed. */
static int parse_record(const char *key, const void *val, size_t len, struct eg_prefix *p, int64_t *until,
			uint32_t *offenses, struct ban_why *w)
{
	json_t *j = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *ju = json_object_get(j, "until"), *jo = json_object_get(j, "offenses");
	int rc = -1;

	why_parse(j, w);
	if (json_is_integer(ju) && json_is_integer(jo) && eg_gate_prefix_parse(key, p) == 0) {
		json_int_t off = json_integer_value(jo);
		*until = json_integer_value(ju);
		*offenses = off > 0 && off < 64 ? (uint32_t)off : 1;
		rc = 0;
	}
	json_decref(j);
	return rc;
}

static int restore_one(const char *key, const void *val, size_t len, int64_t exp, void *arg)
{
	struct eg_daemon *d = arg;
	struct eg_abuse *a = d->abuse;
	struct eg_prefix p;
	struct stripe *st;
	struct ban_why w;
	int64_t until;
	uint32_t off;

	if (parse_record(key, val, len, &p, &until, &off, &w) != 0) {
		log_warn("abuse: ignoring a malformed ban record");
		return 0;
	}
	int64_t left = until - wall(a);
	uint64_t now = mono(a);
	struct src **head = slot(a, &p, &st);
	pthread_mutex_lock(&st->mu);
	struct src *e = get_locked(st, head, &p);
	if (e) {
		e->offenses = off;
		e->seen_ns = now;
		memcpy(e->ban_why, w.n, sizeof(w.n));
		e->ban_first_unix = w.first_unix;
		e->ban_last_unix = w.last_unix;
		/* the end of a ban already over is in the past: clamp to "just ended" */
		e->ban_end_ns = left > 0 ? now + (uint64_t)left * NS : now;
		e->ban_until_ns = left > 0 ? e->ban_end_ns : 0;
		e->confirmed_ns = now;
	}
	pthread_mutex_unlock(&st->mu);
	if (left > 0) {
		kernel_ban(d, &p, left); /* pins lost (reboot) or a new pin root */
		log_info("abuse: ban of %s re-applied (%llds left)", key, (long long)left);
	}
	return 0;
}

/* --- shared store: reconciliation ---------------------------------------------------------- */

struct sync_pass {
	struct eg_daemon *d;
	size_t keys;
};

static void sync_metric(struct eg_daemon *d, const char *result, double n)
{
	eg_metric_inc(d->metrics, "edgegate_sync_total", "what", "bans", "result", result, n);
}

/* A ban record another node may have written: apply it here when it is live, not
 * allowlisted and not already in force until (about) the same time. */
static int sync_one(const char *key, const void *val, size_t len, int64_t exp, void *arg)
{
	struct sync_pass *sp = arg;
	struct eg_daemon *d = sp->d;
	struct eg_abuse *a = d->abuse;
	struct eg_prefix p;
	struct stripe *st;
	int64_t until;
	uint32_t off;
	struct ban_why w;
	bool applied = false;

	sp->keys++;
	if (parse_record(key, val, len, &p, &until, &off, &w) != 0)
		return 0;
	int64_t left = until - wall(a);
	uint64_t now = mono(a);
	struct src **head = slot(a, &p, &st);
	if (left <= 0) {
		/* over: only keep the offence count, for an entry we already have */
		pthread_mutex_lock(&st->mu);
		struct src *e = find_locked(head, &p);
		if (e && e->offenses < off)
			e->offenses = off;
		pthread_mutex_unlock(&st->mu);
		return 0;
	}
	if (statically_allowed(d->cfg, p.addr) || kernel_allowed(d, p.addr))
		return 0;
	uint64_t target = now + (uint64_t)left * NS;
	pthread_mutex_lock(&st->mu);
	struct src *e = get_locked(st, head, &p);
	if (e) {
		e->confirmed_ns = now;
		if (e->offenses < off)
			e->offenses = off;
		/* until is whole seconds on another clock: within 2 s it is the ban we hold */
		if (e->ban_until_ns + 2 * NS < target) {
			e->ban_until_ns = e->ban_end_ns = target;
			e->seen_ns = now;
			memcpy(e->ban_why, w.n, sizeof(w.n));
			e->ban_first_unix = w.first_unix;
			e->ban_last_unix = w.last_unix;
			applied = true;
		}
	}
	pthread_mutex_unlock(&st->mu);
	if (applied) {
		kernel_ban(d, &p, left);
		__atomic_add_fetch(&a->sync_applied, 1, __ATOMIC_RELAXED);
		sync_metric(d, "applied", 1);
		log_info("abuse: ban of %s from the shared store applied (%llds left, offence %u)", key,
			 (long long)left, off);
	}
	return 0;
}

/* After a complete scan that started at t0: a ban the store confirmed before t0 but
 * the scan did not see was deleted by another node (ban.del). Lift it here. */
static size_t sync_lift(struct eg_daemon *d, uint64_t t0)
{
	struct eg_abuse *a = d->abuse;
	struct eg_prefix *lift = NULL;
	size_t n = 0, cap = 0;
	uint64_t now = mono(a);

	for (unsigned s = 0; s < STRIPES; s++) {
		pthread_mutex_lock(&a->st[s].mu);
		for (unsigned b = 0; b < BUCKETS; b++)
			for (struct src *e = a->st[s].b[b]; e; e = e->next) {
				if (e->ban_until_ns <= now || !e->confirmed_ns || e->confirmed_ns >= t0)
					continue;
				e->ban_until_ns = 0;
				e->confirmed_ns = 0;
				if (n == cap) {
					cap = cap ? cap * 2 : 16;
					lift = realloc(lift, cap * sizeof(*lift));
					if (!lift)
						abort();
				}
				prefix_of(e, &lift[n++]);
			}
		pthread_mutex_unlock(&a->st[s].mu);
	}
	for (size_t i = 0; i < n; i++) {
		char t[64];
		if (d->gate && eg_gate_deny_reason(d->gate, &lift[i]) == EG_RULE_BAN)
			eg_gate_deny_del(d->gate, &lift[i]);
		eg_gate_prefix_format(&lift[i], t, sizeof(t));
		log_info("abuse: ban of %s lifted (its record left the shared store)", t);
	}
	free(lift);
	return n;
}

/* One reconciliation pass (sweeper thread; also callable by tests). */
static void sync_pass(struct eg_daemon *d)
{
	struct eg_abuse *a = d->abuse;
	struct sync_pass sp = { .d = d };
	uint64_t t0 = mono(a);

	int rc = eg_store_foreach(d->store, EG_NS_BAN, sync_one, &sp);
	__atomic_add_fetch(&a->sync_passes, 1, __ATOMIC_RELAXED);
	a->sync_last_keys = sp.keys;
	a->sync_last_unix = wall(a);
	if (rc != 0) {
		__atomic_add_fetch(&a->sync_errors, 1, __ATOMIC_RELAXED);
		sync_metric(d, "error", 1);
		return;
	}
	sync_metric(d, "scan", 1);
	size_t lifted = sync_lift(d, t0);
	if (lifted) {
		__atomic_add_fetch(&a->sync_removed, lifted, __ATOMIC_RELAXED);
		sync_metric(d, "removed", (double)lifted);
	}
	eg_metric_set(d->metrics, "edgegate_bans_active", NULL, NULL, (double)eg_abuse_bans_active(d));
}

void eg_abuse_sync_interval_ms(unsigned ms)
{
	(void)ms; /* deprecated: bans arrive as events (events.c) */
}

int eg_abuse_remote_ban(struct eg_daemon *d, const char *key, const char *val, size_t len)
{
	struct eg_abuse *a = d ? d->abuse : NULL;
	struct sync_pass sp = { .d = d };

	if (!a)
		return -1;
	__atomic_add_fetch(&a->sync_events, 1, __ATOMIC_RELAXED);
	uint64_t before = a->sync_applied;
	sync_one(key, val, len, 0, &sp);
	return a->sync_applied != before;
}

int eg_abuse_remote_unban(struct eg_daemon *d, const char *key)
{
	struct eg_abuse *a = d ? d->abuse : NULL;
	struct eg_prefix p;
	struct stripe *st;
	bool lifted = false;

	if (!a || eg_gate_prefix_parse(key, &p) != 0)
		return -1;
	__atomic_add_fetch(&a->sync_events, 1, __ATOMIC_RELAXED);
	struct src **head = slot(a, &p, &st);
	pthread_mutex_lock(&st->mu);
	struct src *e = find_locked(head, &p);
	if (e && e->ban_until_ns > mono(a)) {
		e->ban_until_ns = 0;
		e->confirmed_ns = 0;
		lifted = true;
	}
	pthread_mutex_unlock(&st->mu);
	char gk[80];
	snprintf(gk, sizeof(gk), "deny %s", key);
	/* kernel only: the deciding node already deleted the record and published this */
	if (d->gate && eg_gate_deny_reason(d->gate, &p) == EG_RULE_BAN &&
	    eg_gate_apply_remote(d->gate, false, gk, NULL, 0) == 1)
		lifted = true;
	if (lifted) {
		__atomic_add_fetch(&a->sync_removed, 1, __ATOMIC_RELAXED);
		sync_metric(d, "removed", 1);
		log_info("abuse: ban of %s lifted (lifted on another node)", key);
		eg_metric_set(d->metrics, "edgegate_bans_active", NULL, NULL, (double)eg_abuse_bans_active(d));
	}
	return lifted;
}

long eg_abuse_sync(struct eg_daemon *d)
{
	struct eg_abuse *a = d ? d->abuse : NULL;

	if (!a || !a->shared)
		return -1;
	uint64_t before = a->sync_applied + a->sync_removed;
	sync_pass(d);
	return (long)(a->sync_applied + a->sync_removed - before);
}

static json_t *sync_json(struct eg_abuse *a)
{
	if (!a->shared)
		return json_pack("{s:b}", "enabled", 0);
	return json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled", 1, "mode", "events", "events",
			 (json_int_t)a->sync_events, "resyncs", (json_int_t)a->sync_passes, "applied",
			 (json_int_t)a->sync_applied, "lifted", (json_int_t)a->sync_removed, "errors",
			 (json_int_t)a->sync_errors, "last_resync_keys", (json_int_t)a->sync_last_keys,
			 "last_resync_unix", (json_int_t)a->sync_last_unix);
}

/* --- admin ------------------------------------------------------------------------------------ */

static json_t *adm_abuse(struct eg_daemon *d, const json_t *req, const char **err)
{
	struct eg_abuse *a = d->abuse;

	if (!a) {
		*err = "abuse control is not initialised";
		return NULL;
	}
	return json_pack("{s:s, s:I, s:I, s:i, s:I, s:I, s:I, s:i, s:i, s:s, s:I, s:I, s:o}", "enforcement",
			 d->gate ? "xdp+userspace" : "userspace", "bans_active", (json_int_t)eg_abuse_bans_active(d),
			 "bans_total", (json_int_t)a->bans_total, "ban_threshold", (int)a->threshold, "ban_window_s",
			 (json_int_t)(a->window_ns / NS), "ban_time_s", (json_int_t)(a->ban_ns / NS), "ban_max_s",
			 (json_int_t)(a->ban_max_ns / NS), "verdict_rate", (int)a->rate, "verdict_burst", (int)a->burst,
			 "verdict_rate_from", a->rate_source, "rejected_banned", (json_int_t)a->rejected_banned,
			 "rejected_rate_limited", (json_int_t)a->rejected_rate, "sync", sync_json(a));
}

static json_t *adm_bans(struct eg_daemon *d, const json_t *req, const char **err)
{
	if (!d->abuse) {
		*err = "abuse control is not initialised";
		return NULL;
	}
	return json_pack("{s:s, s:o, s:o}", "enforcement", d->gate ? "xdp+userspace" : "userspace", "bans",
			 eg_abuse_bans_json(d), "sync", sync_json(d->abuse));
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
	eg_metric_help(m, "edgegate_sync_total", "counter",
		       "reconciliation with the shared store: scans, errors, bans/revocations applied or lifted");
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
	/* like session.c: any backend but the embedded one is shared with other nodes */
	a->shared = d->store && strcmp(eg_store_backend(d->store), "lmdb") != 0;
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
