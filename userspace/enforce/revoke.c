/* revoke.c - revocation that reaches the wire.
 *
 * The verdict path remembers which TCP flows (client ip:port -> nginx ip:port) each
 * session used (eg_flows_note). When a session ends, eg_revoke_session_flows():
 *   1. takes the session's flows out of the table and leaves a tombstone, so a
 *      verdict that was already in flight for that session is killed too;
 *   2. writes the session into the kernel's revoked-session map and each flow into
 *      the revoked-flow map: the XDP gate drops the client's next packet at once;
 *   3. destroys nginx's accepted socket of each flow (sock_diag SOCK_DESTROY, see
 *      sockdestroy.c): nginx gets ECONNABORTED and frees it, the client gets a RST;
 *   4. shortens the revoked-flow entries to flow_ttl_s once the socket is gone
 *      (the entry only has to outlive packets in flight; a long entry would also
 *      drop a later, unrelated connection that reuses the client port).
 * The time from 1 to the last destroy is edgegate_revoke_duration_seconds.
 *
 * Table: 64 stripes, each a mutex over a chained hash of sessions; a session holds
 * at most per_session flows, all sessions of one subject (the user's `sub`) at most
 * per_subject (a count per subject in its own striped hash, taken only for a new flow,
 * under the session's stripe lock: lock order session stripe, then subject stripe), all
 * sessions together at most max_flows. A live flow is
 * never dropped to make room (a WebSocket gets one verdict, at its upgrade, and is then
 * the least recently seen flow of its session): at the cap the session's flows are probed
 * and closed ones dropped; a new flow that still does not fit is not tracked and its
 * verdict is refused (eg_flows_note's answer), since a revocation could not undo its allow.
 * A GC thread probes flows unseen for idle_s (exact sock_diag lookup): a live socket (a
 * quiet WebSocket) stays tracked, a dead one is dropped.
 *
 * Shared store (Redis, several nodes): a session ended on another node only killed the
 * flows that node tracks. Every revocation is also an event in the store's stream
 * (session.c publishes it with the store record); events.c follows the stream and calls
 * eg_revoke_remote, which runs the local kill path for sessions this node holds flows of
 * (and leaves a tombstone for the others, so a verdict this node is still answering
 * from a stale session cache has its flow killed when noted). Only when this node
 * missed events the stream no longer keeps does it read EG_NS_REVOKED whole
 * (eg_revoke_resync: the records at or after the given time). */
#include "revoke.h"
#include "proxy.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "config.h"
#include "daemon.h"
#include "gate.h"
#include "http.h"
#include "jose.h"
#include "log.h"
#include "metrics.h"
#include "sockdestroy.h"
#include "store.h"
#include "util.h"

#define STRIPES 64
#define BUCKETS 256
#define ID_MAX 128
#define SAMPLES 4096
#define PROBE_FULL_NS 1000000000ull          /* a session at its cap is probed at most once a second */
#define REFUSED_LOG_NS (600ull * 1000000000ull) /* a refused session is logged again after 10 min */
#define URGENT_GC_NS (10ull * 1000000000ull)    /* a full table probes every flow at most this often */

struct flow {
	struct eg_flow_tuple t;
	uint64_t seen_ns;
};

struct sess {
	struct sess *next;
	char id[ID_MAX + 1];
	uint8_t sh[16]; /* session_hash(id), for the notes of its flows (set with flows) */
	uint64_t revoked_ns; /* non-zero: tombstone, flows is NULL */
	unsigned n, cap; /* flows in use, allocated (grows up to per_session) */
	struct flow *flows;
	uint32_t *keys; /* flow_key() of each flow: the known-flow scan reads 4 bytes a flow, not 48 */
	uint8_t subj[16]; /* subject_key() of its subject, when has_subj: its flows count there */
	bool has_subj;
	uint64_t probed_ns;  /* last probe pass at the cap (reclaim_gone) */
	uint64_t refused_ns; /* last refusal logged */
	bool refused;
};

struct stripe {
	pthread_mutex_t mu;
	struct sess *b[BUCKETS];
};

/* Live flows of all sessions of one subject; freed when the count drops to 0. */
struct subj {
	struct subj *next;
	uint8_t key[16];
	unsigned n;
	uint64_t refused_ns; /* last refusal logged, 0 never */
};

struct subj_stripe {
	pthread_mutex_t mu;
	struct subj *b[BUCKETS];
};

struct eg_revoke {
	struct stripe st[STRIPES];
	struct subj_stripe sst[STRIPES];
	struct eg_revoke_opts o;
	struct eg_sockdiag *diag;
	size_t n_flows; /* atomic */
	bool note_flows; /* tell the privileged process about new flows (eg_sock_note) */
	bool warned_perm, warned_note;
	bool cannot_kill; /* atomic: a destroy was refused (EPERM) and no gate drops flows either */
	uint64_t table_warned_ns; /* atomic: last "table full" log */
	bool gc_urgent;           /* the table is full: probe every flow, not only idle ones */
	uint64_t last_urgent_ns;
	eg_revoke_forget_fn forget; /* the session cache's eviction (eg_revoke_on_remote) */
	/* time-to-revoke samples (ns), newest last, for the admin "flows" command */
	pthread_mutex_t smu;
	uint64_t samples[SAMPLES];
	size_t n_samples, next_sample;
	/* *_refused: new flows not tracked at a bound, their requests answered 403 */
	uint64_t revocations, destroyed, gone, failed, table_refused, session_refused, reclaimed, subject_refused;
	/* GC thread */
	pthread_t gc;
	bool gc_running;
	bool stop;
	pthread_mutex_t gmu;
	pthread_cond_t gcv;
	/* reconciliation with a shared store */
	bool shared;
	int64_t hwm; /* newest revocation time (UNIX s) seen in the store */
	uint64_t next_gc_ns;
	uint64_t sync_events, sync_passes, sync_applied, sync_errors;
	size_t sync_last_keys;
	int64_t sync_last_unix;
};

#define SYNC_SLACK_S 10     /* clock skew between writers; re-reads are idempotent */

static struct eg_revoke_opts opts_next;

static const char *const reason_names[EG_REVOKE__COUNT] = {
	[EG_REVOKE_OTHER] = "other",
	[EG_REVOKE_ADMIN] = "admin",
	[EG_REVOKE_SIGN_OUT] = "sign_out",
	[EG_REVOKE_BACKCHANNEL] = "backchannel_logout",
	[EG_REVOKE_REFRESH_FAILED] = "refresh_failed",
	[EG_REVOKE_EXPIRED] = "expired",
	[EG_REVOKE_RELOGIN] = "relogin",
};

uint32_t eg_revoke_reason_code(const char *reason)
{
	for (uint32_t i = 1; reason && i < EG_REVOKE__COUNT; i++)
		if (strcmp(reason, reason_names[i]) == 0)
			return i;
	return EG_REVOKE_OTHER;
}

const char *eg_revoke_reason_name(uint32_t code)
{
	return code < EG_REVOKE__COUNT ? reason_names[code] : "other";
}

void eg_revoke_set_opts(const struct eg_revoke_opts *o)
{
	opts_next = o ? *o : (struct eg_revoke_opts){ 0 };
}

static void defaults(struct eg_revoke_opts *o)
{
#define DEF(f, v) if (!o->f) o->f = (v)
	DEF(per_session, EG_FLOWS_PER_SESSION);
	DEF(max_flows, EG_MAX_FLOWS);
	DEF(idle_s, 300);
	DEF(unprobed_max_s, 3600);
	DEF(flow_ttl_s, 30);
	DEF(flow_ttl_unconfirmed_s, 600);
	DEF(session_ttl_s, 86400);
	DEF(tombstone_s, 60);
	DEF(gc_interval_ms, 10000);
	DEF(sync_ms, 1000);
	/* one subject may fill a sixteenth of the table (32 full sessions at the defaults), and
	 * always at least one full session */
	DEF(per_subject, o->max_flows / 16 > o->per_session ? o->max_flows / 16 : o->per_session);
#undef DEF
}

/* --- the table ------------------------------------------------------------------------- */

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a: ids are already uniform hex */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct sess **slot(struct eg_revoke *r, const char *id, struct stripe **st)
{
	uint64_t h = hash_id(id);
	*st = &r->st[h % STRIPES];
	return &(*st)->b[(h / STRIPES) % BUCKETS];
}

static struct sess *find_locked(struct sess **head, const char *id)
{
	for (struct sess *e = *head; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static void unlink_free_locked(struct sess **head, struct sess *e)
{
	for (struct sess **p = head; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	free(e->flows);
	free(e->keys);
	free(e);
}

/* --- subjects: live flows per user ------------------------------------------------------ */

/* A fixed-size key: a subject is whatever string the OP chose (up to the claim's size). */
static void subject_key(const char *subject, uint8_t out[16])
{
	uint8_t h[32];

	eg_sha256(subject, strlen(subject), h);
	memcpy(out, h, 16);
}

static struct subj **subj_slot(struct eg_revoke *r, const uint8_t key[16], struct subj_stripe **st)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h)); /* a hash already */
	*st = &r->sst[h % STRIPES];
	return &(*st)->b[(h / STRIPES) % BUCKETS];
}

/* One more live flow for the subject, unless it holds per_subject (false). Called under a
 * session stripe lock. */
static bool subj_take(struct eg_revoke *r, const uint8_t key[16])
{
	struct subj_stripe *st;
	struct subj **head = subj_slot(r, key, &st);
	bool taken = false;
	struct subj *e;

	pthread_mutex_lock(&st->mu);
	for (e = *head; e && memcmp(e->key, key, 16) != 0; e = e->next)
		;
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		memcpy(e->key, key, 16);
		e->next = *head;
		*head = e;
	}
	if (e->n < r->o.per_subject) {
		e->n++;
		taken = true;
	}
	pthread_mutex_unlock(&st->mu);
	return taken;
}

/* A flow of the subject was refused in the end: log it? Once per REFUSED_LOG_NS. */
static bool subj_first_refusal(struct eg_revoke *r, const char *subject, uint64_t now)
{
	uint8_t key[16];
	struct subj_stripe *st;
	bool first = true;

	if (!subject || !*subject) /* a session given its subject earlier, not this time */
		return true;
	subject_key(subject, key);
	struct subj **head = subj_slot(r, key, &st);
	pthread_mutex_lock(&st->mu);
	for (struct subj *e = *head; e; e = e->next) {
		if (memcmp(e->key, key, 16) != 0)
			continue;
		first = !e->refused_ns || now - e->refused_ns >= REFUSED_LOG_NS;
		if (first)
			e->refused_ns = now;
		break;
	}
	pthread_mutex_unlock(&st->mu);
	return first; /* its flows all closed meanwhile: nothing to remember it by */
}

/* k flows of session e left the table (under its stripe lock). */
static void subj_release(struct eg_revoke *r, const struct sess *e, unsigned k)
{
	struct subj_stripe *st;

	if (!e->has_subj || !k)
		return;
	struct subj **head = subj_slot(r, e->subj, &st);
	pthread_mutex_lock(&st->mu);
	for (struct subj **p = head; *p; p = &(*p)->next) {
		struct subj *s = *p;
		if (memcmp(s->key, e->subj, 16) != 0)
			continue;
		s->n = s->n > k ? s->n - k : 0;
		if (s->n == 0) {
			*p = s->next;
			free(s);
		}
		break;
	}
	pthread_mutex_unlock(&st->mu);
}

static uint32_t flow_key(const struct eg_flow_tuple *t)
{
	uint32_t a;

	memcpy(&a, t->client + 12, 4);
	return a ^ ((uint32_t)t->client_port << 16 | t->server_port);
}

static bool same_tuple(const struct eg_flow_tuple *a, const struct eg_flow_tuple *b)
{
	return a->client_port == b->client_port && a->server_port == b->server_port &&
	       memcmp(a->client, b->client, 16) == 0 && memcmp(a->server, b->server, 16) == 0;
}

static void to_sock(const struct eg_flow_tuple *f, struct eg_sock_tuple *t)
{
	memcpy(t->local, f->server, 16);
	memcpy(t->remote, f->client, 16);
	t->local_port = f->server_port;
	t->remote_port = f->client_port;
}

static void to_gate(const struct eg_flow_tuple *f, struct eg_flow *g)
{
	memcpy(g->client, f->client, 16);
	memcpy(g->server, f->server, 16);
	g->client_port = f->client_port;
	g->server_port = f->server_port;
}

/* --- killing flows ----------------------------------------------------------------------- */

enum kill_result { K_DESTROYED, K_GONE, K_FAILED };

/* What a revoked flow still gets when its socket cannot be destroyed: logged once, and
 * only what is true (the XDP drop needs a gate and a map write that succeeded). */
static void warn_no_destroy(struct eg_revoke *r, int rc, bool xdp_dropped)
{
	if (__atomic_exchange_n(&r->warned_perm, true, __ATOMIC_RELAXED))
		return;
	log_warn("revocation: cannot destroy sockets (%s%s): %s (logged once)",
		 rc == -EOPNOTSUPP && !eg_sockdiag_can_destroy(r->diag) ? "no NETLINK_SOCK_DIAG socket" : strerror(-rc),
		 rc == -EPERM ? "; the privileged process needs CAP_NET_ADMIN" : "",
		 xdp_dropped ? "revoked flows are only dropped in XDP"
			     : "revoked flows are not dropped in XDP either, their connections stay open "
			       "(every further request on them is still denied)");
}

static enum kill_result kill_flow(struct eg_daemon *d, const struct eg_flow_tuple *f, const uint8_t sh[16])
{
	struct eg_revoke *r = d->revoke;
	struct eg_sock_tuple st;
	struct eg_flow gf;
	bool xdp = false;
	int rc;

	to_gate(f, &gf);
	/* Kernel map first: the client's next packet is dropped even if the destroy fails. */
	if (d->gate) {
		xdp = eg_gate_revoke_flow(d->gate, &gf, sh, r->o.flow_ttl_unconfirmed_s) == 0;
		if (!xdp)
			log_warn("revocation: revoked-flow map update failed: %s", strerror(errno));
	}
	to_sock(f, &st);
	rc = r->diag ? eg_sock_destroy(r->diag, &st) : -EOPNOTSUPP;
	if (rc == 0 || rc == -ENOENT) {
		if (d->gate)
			eg_gate_revoke_flow(d->gate, &gf, sh, r->o.flow_ttl_s);
		return rc == 0 ? K_DESTROYED : K_GONE;
	}
	if (rc == -EPERM && !d->gate) /* the privileged process lacks CAP_NET_ADMIN: no flow can be killed */
		__atomic_store_n(&r->cannot_kill, true, __ATOMIC_RELAXED);
	warn_no_destroy(r, rc, xdp);
	return K_FAILED;
}

static void session_hash(const char *id, uint8_t out[16])
{
	uint8_t h[32];

	eg_sha256(id, strlen(id), h);
	memcpy(out, h, 16);
}

static void add_sample(struct eg_revoke *r, uint64_t ns)
{
	pthread_mutex_lock(&r->smu);
	r->samples[r->next_sample] = ns;
	r->next_sample = (r->next_sample + 1) % SAMPLES;
	if (r->n_samples < SAMPLES)
		r->n_samples++;
	pthread_mutex_unlock(&r->smu);
}

static void count_result(struct eg_daemon *d, enum kill_result k)
{
	struct eg_revoke *r = d->revoke;
	static const char *const names[] = { "destroyed", "gone", "failed" };
	uint64_t *c[] = { &r->destroyed, &r->gone, &r->failed };

	__atomic_add_fetch(c[k], 1, __ATOMIC_RELAXED);
	eg_metric_inc(d->metrics, "edgegate_revoked_flows_total", "result", names[k], NULL, NULL, 1);
}

/* --- the request's own flow -------------------------------------------------------------- */

static int parse_port(const char *s, uint16_t *out)
{
	if (!s || !*s)
		return -1;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* Only a proxy that states both ends of the client's connection (nginx) gives a flow;
 * a repeated header gives none rather than a guess. */
int eg_flow_from_request(const struct eg_req *r, struct eg_flow_tuple *f)
{
	const struct eg_proxy_profile *p = r->proxy ? r->proxy : eg_proxy_default();
	bool d1, d2, d3, d4;
	if (!r->peer_trusted)
		return -1;
	const char *cip = eg_proxy_optional(r, p->client_addr_list ? NULL : p->client_addr, &d1);
	const char *sip = eg_proxy_optional(r, p->server_addr, &d2);
	const char *cport = eg_proxy_optional(r, p->client_port, &d3);
	const char *sport = eg_proxy_optional(r, p->server_port, &d4);
	if (d1 || d2 || d3 || d4 || !cip || !sip || eg_addr_parse(cip, f->client) != 0 ||
	    eg_addr_parse(sip, f->server) != 0)
		return -1;
	if (parse_port(cport, &f->client_port) != 0 || parse_port(sport, &f->server_port) != 0)
		return -1;
	return 0;
}

/* The flow carrying the request that ends a session (sign-out): it must live to carry
 * the answer. Per thread, because revocation runs synchronously in the handler. */
static __thread struct eg_flow_tuple spared;
static __thread bool spared_set;

void eg_revoke_spare(const struct eg_flow_tuple *t)
{
	spared_set = t != NULL;
	if (t)
		spared = *t;
}

static bool is_spared(const struct eg_flow_tuple *t)
{
	return spared_set && memcmp(&spared, t, sizeof(*t)) == 0;
}

/* Kills flows taken out of the table (outside any lock): kernel maps, socket destroy,
 * metrics. count_revocation: false when another node revoked the session and counted it. */
static unsigned kill_taken(struct eg_daemon *d, const char *session_id, uint32_t code, struct flow *flows,
			   unsigned n, uint64_t t0, bool count_revocation)
{
	struct eg_revoke *r = d->revoke;
	uint8_t sh[16];

	session_hash(session_id, sh);
	if (d->gate && eg_gate_revoke_session(d->gate, sh, code, r->o.session_ttl_s) != 0)
		log_warn("revocation: revoked-session map update failed: %s", strerror(errno));
	unsigned k[3] = { 0 };
	/* A re-login here replaces the session of the same browser over the same connections:
	 * nothing to cut, its flows are forgotten. One decided on another node (!count_revocation)
	 * came over that node's connections: the flows this node noted for the old session are
	 * other connections (another tab, a WebSocket, a copied cookie) and are cut as for any
	 * other revocation. */
	if (code == EG_REVOKE_RELOGIN && count_revocation)
		n = 0;
	for (unsigned i = 0; i < n; i++) {
		if (is_spared(&flows[i].t))
			continue;
		enum kill_result res = kill_flow(d, &flows[i].t, sh);
		k[res]++;
		count_result(d, res);
	}
	uint64_t dt = now_mono_ns() - t0;
	if (count_revocation) {
		__atomic_add_fetch(&r->revocations, 1, __ATOMIC_RELAXED);
		eg_metric_inc(d->metrics, "edgegate_revocations_total", "reason", eg_revoke_reason_name(code), NULL,
			      NULL, 1);
	}
	if (n) {
		add_sample(r, dt);
		eg_metric_observe(d->metrics, "edgegate_revoke_duration_seconds", NULL, NULL, (double)dt / 1e9);
		log_info("revocation: session %.12s… (%s%s): %u flow(s) — %u destroyed, %u already gone, %u failed — in %.3f ms",
			 session_id, eg_revoke_reason_name(code), count_revocation ? "" : ", from the shared store", n,
			 k[K_DESTROYED], k[K_GONE], k[K_FAILED], (double)dt / 1e6);
	}
	eg_metric_set(d->metrics, "edgegate_flows_tracked", NULL, NULL,
		      (double)__atomic_load_n(&r->n_flows, __ATOMIC_RELAXED));
	return n;
}

int eg_revoke_session_flows(struct eg_daemon *d, const char *session_id, const char *reason)
{
	struct eg_revoke *r = d ? d->revoke : NULL;
	struct stripe *st;
	struct flow *flows = NULL;
	unsigned n = 0;

	if (!r || !session_id || !*session_id || strlen(session_id) > ID_MAX)
		return r ? -1 : 0;
	uint64_t t0 = now_mono_ns();
	uint32_t code = eg_revoke_reason_code(reason);
	struct sess **head = slot(r, session_id, &st);

	pthread_mutex_lock(&st->mu);
	struct sess *e = find_locked(head, session_id);
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		snprintf(e->id, sizeof(e->id), "%s", session_id);
		e->next = *head;
		*head = e;
	}
	flows = e->flows; /* taken over: killed below, outside the lock */
	n = e->n;
	subj_release(r, e, n);
	e->flows = NULL;
	free(e->keys);
	e->keys = NULL;
	e->n = e->cap = 0;
	e->revoked_ns = t0;
	__atomic_sub_fetch(&r->n_flows, n, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&st->mu);

	n = kill_taken(d, session_id, code, flows, n, t0, true);
	free(flows);
	return (int)n;
}

/* A revocation another node recorded in the store. Already revoked here (a tombstone:
 * this node did it, or an earlier pass): nothing. Flows tracked: the local kill path,
 * without counting the revocation again. Unknown here: a tombstone only, no kernel
 * write. Returns 1 when flows were acted on. */
static int sync_revoke(struct eg_daemon *d, const char *session_id, uint32_t code)
{
	struct eg_revoke *r = d->revoke;
	struct stripe *st;
	struct flow *flows = NULL;
	unsigned n = 0;
	bool had = false;
	uint64_t t0 = now_mono_ns();
	struct sess **head = slot(r, session_id, &st);

	/* This node's session cache may still hold it: the next request must see it gone. */
	if (r->forget)
		r->forget(d, session_id);
	pthread_mutex_lock(&st->mu);
	struct sess *e = find_locked(head, session_id);
	if (e && e->revoked_ns) {
		pthread_mutex_unlock(&st->mu);
		return 0;
	}
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		snprintf(e->id, sizeof(e->id), "%s", session_id);
		e->next = *head;
		*head = e;
	} else {
		had = true;
		flows = e->flows;
		n = e->n;
		subj_release(r, e, n);
		e->flows = NULL;
		free(e->keys);
		e->keys = NULL;
		e->n = e->cap = 0;
		__atomic_sub_fetch(&r->n_flows, n, __ATOMIC_RELAXED);
	}
	e->revoked_ns = t0;
	pthread_mutex_unlock(&st->mu);
	if (had)
		kill_taken(d, session_id, code, flows, n, t0, false);
	free(flows);
	return had;
}

/* --- the verdict path -------------------------------------------------------------------- */

static void drop_flow_locked(struct eg_revoke *r, struct sess **head, const char *id, const struct eg_flow_tuple *t,
			     bool refresh, uint64_t now);

/* Privilege separation: the privileged process kills, and writes revoked-flow entries
 * for, only flows it was told about. With a gate they are noted even when it has no
 * sock_diag socket: the XDP drop of a revoked flow must not depend on sock_diag. */
static void note_new_flow(struct eg_revoke *r, const uint8_t sh[16], const struct eg_flow_tuple *t)
{
	struct eg_sock_tuple st;
	int rc;

	if (!r->note_flows)
		return;
	to_sock(t, &st);
	rc = eg_sock_note(r->diag, &st, sh);
	if (rc && !__atomic_exchange_n(&r->warned_note, true, __ATOMIC_RELAXED))
		log_warn("revocation: the privileged process did not record a flow (%s): such a flow is neither "
			 "destroyed nor dropped in XDP when its session is revoked (logged once)", strerror(-rc));
}

/* Room for flow t in e (locked): grows the arrays up to per_session. NULL when full. */
static struct flow *flow_slot_locked(struct eg_revoke *r, struct sess *e, const struct eg_flow_tuple *t)
{
	if (e->n == e->cap) {
		if (e->cap >= r->o.per_session)
			return NULL;
		unsigned cap = e->cap ? e->cap * 2 : 8;
		if (cap > r->o.per_session)
			cap = r->o.per_session;
		struct flow *fl = realloc(e->flows, cap * sizeof(*fl));
		if (fl)
			e->flows = fl;
		uint32_t *keys = fl ? realloc(e->keys, cap * sizeof(*keys)) : NULL;
		if (!keys)
			abort(); /* as xcalloc */
		e->keys = keys;
		e->cap = cap;
	}
	e->keys[e->n] = flow_key(t);
	e->flows[e->n].t = *t;
	return &e->flows[e->n++];
}

static struct sess *sess_new_locked(struct sess **head, const char *session_id, const char *subject)
{
	struct sess *e = xcalloc(1, sizeof(*e));

	snprintf(e->id, sizeof(e->id), "%s", session_id);
	session_hash(session_id, e->sh); /* once per session, not per flow */
	if (subject && *subject) {
		subject_key(subject, e->subj);
		e->has_subj = true;
	}
	e->next = *head;
	*head = e;
	return e;
}

/* A session at its cap: which of its flows are gone? Probed outside the lock (a round trip
 * to the privileged process each), at most once per PROBE_FULL_NS per session, so that a
 * client opening connection after connection over the cap does not buy a probe pass each.
 * Gone flows leave the table; a live flow is never dropped to make room. Returns flows
 * dropped, 0 when nothing could be probed. */
static unsigned reclaim_gone(struct eg_daemon *d, struct stripe *st, struct sess **head, const char *id,
			     struct eg_flow_tuple *tv, unsigned n)
{
	struct eg_revoke *r = d->revoke;
	unsigned dropped = 0;
	int *alive = xcalloc(n, sizeof(*alive));

	for (unsigned i = 0; i < n; i++) {
		struct eg_sock_tuple t;
		to_sock(&tv[i], &t);
		alive[i] = eg_sock_exists(r->diag, &t);
	}
	pthread_mutex_lock(&st->mu);
	for (unsigned i = 0; i < n; i++) {
		if (alive[i] != 0)
			continue; /* alive, or cannot tell: kept */
		drop_flow_locked(r, head, id, &tv[i], false, 0);
		dropped++;
	}
	/* only a pass that found nothing gone makes the next one wait */
	struct sess *e = dropped ? find_locked(head, id) : NULL;
	if (e)
		e->probed_ns = 0;
	pthread_mutex_unlock(&st->mu);
	free(alive);
	if (dropped) {
		__atomic_add_fetch(&r->reclaimed, dropped, __ATOMIC_RELAXED);
		eg_metric_inc(d->metrics, "edgegate_flows_reclaimed_total", NULL, NULL, NULL, NULL, dropped);
	}
	return dropped;
}

/* Refused flows are logged once per session per REFUSED_LOG_NS (the table: once per period),
 * never once per request. */
static void log_refused(struct eg_revoke *r, enum eg_flow_note why, const char *session_id, const char *subject,
			bool first)
{
	if (why == EG_FLOW_SUBJECT_FULL) {
		/* the subject as the OP wrote it, printable ASCII only (it reaches the log verbatim) */
		char who[65];
		size_t i = 0;
		for (; subject && subject[i] && i < sizeof(who) - 1; i++)
			who[i] = subject[i] >= 0x20 && subject[i] < 0x7f ? subject[i] : '?';
		who[i] = 0;
		if (first)
			log_warn("revocation: subject \"%s\"%s holds %u live connections over its sessions "
				 "(revocation.flows_per_subject): requests on further connections of any of its sessions "
				 "are refused (403 too_many_connections) until some close (session %.12s… refused first)",
				 who, subject && subject[i] ? "…" : "", r->o.per_subject, session_id);
		return;
	}
	if (why == EG_FLOW_SESSION_FULL) {
		if (first)
			log_warn("revocation: session %.12s… holds %u live connections (revocation.flows_per_session): "
				 "requests on further connections are refused (403 too_many_connections) until some close",
				 session_id, r->o.per_session);
		return;
	}
	uint64_t now = now_mono_ns(), last = __atomic_load_n(&r->table_warned_ns, __ATOMIC_RELAXED);
	if (last && now - last < REFUSED_LOG_NS)
		return;
	if (__atomic_compare_exchange_n(&r->table_warned_ns, &last, now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		log_warn("revocation: the flow table is full (%u flows of live sessions): requests on new connections "
			 "are refused (403 too_many_connections) until flows close (logged once a minute)",
			 r->o.max_flows);
}

enum eg_flow_note eg_flows_note(struct eg_daemon *d, const char *session_id, const struct eg_flow_tuple *t)
{
	return eg_flows_note_subject(d, session_id, NULL, t);
}

/* A flow the table has room for in e, e->n under per_session: the subject's count is taken
 * first, so that a refusal leaves nothing behind. */
static enum eg_flow_note insert_locked(struct eg_revoke *r, struct sess *e, const struct eg_flow_tuple *t,
				       uint64_t now)
{
	if (e->has_subj && !subj_take(r, e->subj))
		return EG_FLOW_SUBJECT_FULL;
	struct flow *f = flow_slot_locked(r, e, t); /* cannot fail: e->n < per_session */
	__atomic_add_fetch(&r->n_flows, 1, __ATOMIC_RELAXED);
	f->seen_ns = now;
	e->refused = false;
	note_new_flow(r, e->sh, t); /* under the lock: a revocation cannot overtake it */
	return EG_FLOW_NOTED;
}

/* The flow table's room is held by closed connections, maybe: a probe pass over every flow
 * runs now (on the GC thread, at most every URGENT_GC_NS), not in gc_interval. */
static void urge_gc(struct eg_revoke *r, uint64_t now)
{
	pthread_mutex_lock(&r->gmu);
	if (!r->gc_urgent && now - r->last_urgent_ns >= URGENT_GC_NS) {
		r->last_urgent_ns = now;
		r->gc_urgent = true;
		r->next_gc_ns = 0;
		pthread_cond_signal(&r->gcv);
	}
	pthread_mutex_unlock(&r->gmu);
}

enum eg_flow_note eg_flows_note_subject(struct eg_daemon *d, const char *session_id, const char *subject,
					const struct eg_flow_tuple *t)
{
	struct eg_revoke *r = d ? d->revoke : NULL;
	struct stripe *st;
	enum eg_flow_note why = EG_FLOW_NOTED;
	bool late = false, first_refusal = false;

	if (!r || !session_id || !*session_id || strlen(session_id) > ID_MAX || !t)
		return EG_FLOW_NOTED;
	uint64_t now = now_mono_ns();
	struct sess **head = slot(r, session_id, &st);

	for (int pass = 0;; pass++) {
		struct eg_flow_tuple *probe = NULL;
		unsigned np = 0;

		pthread_mutex_lock(&st->mu);
		struct sess *e = find_locked(head, session_id);
		if (e && e->revoked_ns) {
			late = true; /* the session ended while this verdict was being answered */
			pthread_mutex_unlock(&st->mu);
			break;
		}
		struct flow *f = NULL;
		uint32_t key = flow_key(t);
		for (unsigned i = 0; e && i < e->n; i++)
			if (e->keys[i] == key && same_tuple(&e->flows[i].t, t)) {
				f = &e->flows[i];
				break;
			}
		if (f) { /* the common case: a known flow */
			f->seen_ns = now;
			pthread_mutex_unlock(&st->mu);
			return EG_FLOW_NOTED;
		}
		if (__atomic_load_n(&r->n_flows, __ATOMIC_RELAXED) >= r->o.max_flows) {
			why = EG_FLOW_TABLE_FULL;
		} else {
			bool created = !e;
			if (!e)
				e = sess_new_locked(head, session_id, subject);
			why = e->n < r->o.per_session ? insert_locked(r, e, t, now) : EG_FLOW_SESSION_FULL;
			if (why == EG_FLOW_NOTED) {
				pthread_mutex_unlock(&st->mu);
				return EG_FLOW_NOTED;
			}
			if (created) { /* refused by its subject: no empty session is left behind */
				unlink_free_locked(head, e);
				e = NULL;
			}
			/* at a bound, this session's own closed flows are probed and dropped (its
			 * subject's other sessions are the GC's: urge_gc below) */
			if (e && e->n && pass == 0 && eg_sockdiag_can_destroy(r->diag) &&
			    (!e->probed_ns || now - e->probed_ns >= PROBE_FULL_NS)) {
				e->probed_ns = now;
				np = e->n;
				probe = xcalloc(np, sizeof(*probe));
				for (unsigned i = 0; i < np; i++)
					probe[i] = e->flows[i].t;
			} else if (e && why == EG_FLOW_SESSION_FULL) {
				first_refusal = !e->refused || now - e->refused_ns >= REFUSED_LOG_NS;
				if (first_refusal) {
					e->refused = true;
					e->refused_ns = now;
				}
			}
		}
		pthread_mutex_unlock(&st->mu);
		if (!probe)
			break;
		reclaim_gone(d, st, head, session_id, probe, np);
		free(probe); /* the next pass inserts, or refuses without probing again */
	}
	if (late) {
		uint8_t sh[16];
		session_hash(session_id, sh);
		note_new_flow(r, sh, t);
		count_result(d, kill_flow(d, t, sh));
		return EG_FLOW_NOTED;
	}
	if (why == EG_FLOW_TABLE_FULL) {
		__atomic_add_fetch(&r->table_refused, 1, __ATOMIC_RELAXED);
		eg_metric_inc(d->metrics, "edgegate_flows_untracked_total", "why", "table_full", NULL, NULL, 1);
		urge_gc(r, now);
	} else if (why == EG_FLOW_SUBJECT_FULL) {
		first_refusal = subj_first_refusal(r, subject, now);
		__atomic_add_fetch(&r->subject_refused, 1, __ATOMIC_RELAXED);
		eg_metric_inc(d->metrics, "edgegate_flows_untracked_total", "why", "subject_full", NULL, NULL, 1);
		urge_gc(r, now); /* closed connections of the subject's other sessions may hold its room */
	} else {
		__atomic_add_fetch(&r->session_refused, 1, __ATOMIC_RELAXED);
		eg_metric_inc(d->metrics, "edgegate_flows_untracked_total", "why", "session_full", NULL, NULL, 1);
	}
	/* Without a way to kill flows (no sock_diag in the privileged process, or no CAP_NET_ADMIN
	 * there as the first refused destroy showed, and no gate) tracking could not have undone
	 * the allow either: served as before, the documented limit. */
	if (!r->note_flows || __atomic_load_n(&r->cannot_kill, __ATOMIC_RELAXED))
		return EG_FLOW_NOTED;
	if (why == EG_FLOW_TABLE_FULL || first_refusal)
		log_refused(r, why, session_id, subject, first_refusal);
	return why;
}

/* --- expiry ------------------------------------------------------------------------------- */

struct probe {
	char id[ID_MAX + 1];
	struct eg_flow_tuple t;
	int alive; /* 1 alive, 0 gone, <0 cannot tell */
};

/* Drops a flow by tuple from a session (and the session when it has none left). */
static void drop_flow_locked(struct eg_revoke *r, struct sess **head, const char *id, const struct eg_flow_tuple *t,
			     bool refresh, uint64_t now)
{
	struct sess *e = find_locked(head, id);

	for (unsigned i = 0; e && !e->revoked_ns && i < e->n; i++) {
		if (!same_tuple(&e->flows[i].t, t))
			continue;
		if (refresh) {
			e->flows[i].seen_ns = now;
		} else {
			e->flows[i] = e->flows[--e->n];
			e->keys[i] = e->keys[e->n];
			__atomic_sub_fetch(&r->n_flows, 1, __ATOMIC_RELAXED);
			subj_release(r, e, 1);
			if (e->n == 0)
				unlink_free_locked(head, e);
		}
		return;
	}
}

long eg_revoke_gc(struct eg_daemon *d)
{
	struct eg_revoke *r = d ? d->revoke : NULL;
	long removed = 0;

	if (!r)
		return 0;
	uint64_t now = now_mono_ns();
	uint64_t idle = (uint64_t)r->o.idle_s * 1000000000ull;
	/* a full table: every flow is probed, so that room held by closed connections comes back */
	if (__atomic_exchange_n(&r->gc_urgent, false, __ATOMIC_RELAXED))
		idle = 0;
	uint64_t tomb = (uint64_t)r->o.tombstone_s * 1000000000ull;
	uint64_t hard = (uint64_t)r->o.unprobed_max_s * 1000000000ull;
	for (unsigned s = 0; s < STRIPES; s++) {
		struct stripe *st = &r->st[s];
		struct probe *pv = NULL;
		size_t np = 0, cap = 0;

		pthread_mutex_lock(&st->mu);
		for (unsigned b = 0; b < BUCKETS; b++) {
			for (struct sess *e = st->b[b], *next; e; e = next) {
				next = e->next;
				if (e->revoked_ns) {
					if (now - e->revoked_ns >= tomb)
						unlink_free_locked(&st->b[b], e);
					continue;
				}
				for (unsigned i = 0; i < e->n; i++) {
					if (now - e->flows[i].seen_ns < idle)
						continue;
					if (np == cap) {
						cap = cap ? cap * 2 : 64;
						pv = realloc(pv, cap * sizeof(*pv));
						if (!pv)
							abort();
					}
					snprintf(pv[np].id, sizeof(pv[np].id), "%s", e->id);
					pv[np].t = e->flows[i].t;
					/* without a probe, a flow is forgotten after unprobed_max_s */
					pv[np].alive = now - e->flows[i].seen_ns >= hard ? 0 : -1;
					np++;
				}
			}
		}
		pthread_mutex_unlock(&st->mu);
		/* Probing is a netlink round trip each: never under the stripe lock. */
		for (size_t i = 0; i < np; i++) {
			struct eg_sock_tuple t;
			to_sock(&pv[i].t, &t);
			int rc = r->diag ? eg_sock_exists(r->diag, &t) : -EOPNOTSUPP;
			if (rc >= 0)
				pv[i].alive = rc;
		}
		pthread_mutex_lock(&st->mu);
		for (size_t i = 0; i < np; i++) {
			if (pv[i].alive < 0)
				continue;
			struct stripe *st2;
			struct sess **head = slot(r, pv[i].id, &st2);
			drop_flow_locked(r, head, pv[i].id, &pv[i].t, pv[i].alive == 1, now);
			removed += pv[i].alive == 0;
		}
		pthread_mutex_unlock(&st->mu);
		free(pv);
	}
	eg_metric_set(d->metrics, "edgegate_flows_tracked", NULL, NULL,
		      (double)__atomic_load_n(&r->n_flows, __ATOMIC_RELAXED));
	return removed;
}

/* --- shared store: revocations decided on other nodes ------------------------------------ */

struct sync_scan {
	struct eg_daemon *d;
	int64_t floor, newest;
	size_t keys, applied;
};

static void sync_metric(struct eg_daemon *d, const char *result, double n)
{
	eg_metric_inc(d->metrics, "edgegate_sync_total", "what", "revocations", "result", result, n);
}

static int sync_one(const char *key, const void *val, size_t len, int64_t exp, void *arg)
{
	struct sync_scan *sc = arg;

	sc->keys++;
	if (!*key || strlen(key) > ID_MAX)
		return 0;
	json_t *j = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *at = json_object_get(j, "at");
	if (!json_is_integer(at) || json_integer_value(at) < sc->floor) {
		json_decref(j);
		return 0;
	}
	int64_t t = json_integer_value(at);
	uint32_t code = eg_revoke_reason_code(json_string_value(json_object_get(j, "reason")));
	json_decref(j);
	if (t > sc->newest)
		sc->newest = t;
	sc->applied += (size_t)sync_revoke(sc->d, key, code);
	return 0;
}

/* One pass: records at or after hwm - SYNC_SLACK_S. Records are read whole (the store
 * iterates values), but only the recent ones cost more than a JSON parse. */
static void sync_pass(struct eg_daemon *d)
{
	struct eg_revoke *r = d->revoke;
	struct sync_scan sc = { .d = d, .floor = r->hwm - SYNC_SLACK_S, .newest = r->hwm };

	int rc = eg_store_foreach(d->store, EG_NS_REVOKED, sync_one, &sc);
	__atomic_add_fetch(&r->sync_passes, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&r->sync_applied, sc.applied, __ATOMIC_RELAXED);
	r->sync_last_keys = sc.keys;
	r->sync_last_unix = now_realtime_s();
	if (sc.applied)
		sync_metric(d, "applied", (double)sc.applied);
	if (rc != 0) {
		__atomic_add_fetch(&r->sync_errors, 1, __ATOMIC_RELAXED);
		sync_metric(d, "error", 1);
		return;
	}
	sync_metric(d, "scan", 1);
	r->hwm = sc.newest;
}

long eg_revoke_sync(struct eg_daemon *d)
{
	struct eg_revoke *r = d ? d->revoke : NULL;

	if (!r || !r->shared)
		return -1;
	uint64_t before = r->sync_applied;
	sync_pass(d);
	return (long)(r->sync_applied - before);
}

long eg_revoke_resync(struct eg_daemon *d, int64_t since_unix)
{
	struct eg_revoke *r = d ? d->revoke : NULL;

	if (!r || !r->shared)
		return -1;
	if (since_unix < r->hwm)
		r->hwm = since_unix;
	return eg_revoke_sync(d);
}

int eg_revoke_remote(struct eg_daemon *d, const char *session_id, const char *reason, int64_t at)
{
	struct eg_revoke *r = d ? d->revoke : NULL;

	if (!r || !session_id || !*session_id || strlen(session_id) > ID_MAX)
		return -1;
	int applied = sync_revoke(d, session_id, eg_revoke_reason_code(reason));
	__atomic_add_fetch(&r->sync_events, 1, __ATOMIC_RELAXED);
	if (applied) {
		__atomic_add_fetch(&r->sync_applied, 1, __ATOMIC_RELAXED);
		sync_metric(d, "applied", 1);
	}
	if (at > r->hwm)
		r->hwm = at;
	return applied;
}

static json_t *sync_json(struct eg_revoke *r)
{
	if (!r->shared)
		return json_pack("{s:b}", "enabled", 0);
	return json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled", 1, "mode", "events", "events",
			 (json_int_t)r->sync_events, "resyncs", (json_int_t)r->sync_passes, "sessions_applied",
			 (json_int_t)r->sync_applied, "errors", (json_int_t)r->sync_errors, "last_resync_keys",
			 (json_int_t)r->sync_last_keys, "high_water_unix", (json_int_t)r->hwm, "last_resync_unix",
			 (json_int_t)r->sync_last_unix);
}

static void *gc_main(void *arg)
{
	struct eg_daemon *d = arg;
	struct eg_revoke *r = d->revoke;
	uint64_t step = (uint64_t)r->o.gc_interval_ms * 1000000ull;

	pthread_mutex_lock(&r->gmu);
	while (!r->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + step;
		ts.tv_sec += (time_t)(ns / 1000000000ull);
		ts.tv_nsec = (long)(ns % 1000000000ull);
		if (!r->gc_urgent) /* set under gmu: a full table's wake-up is never lost */
			pthread_cond_timedwait(&r->gcv, &r->gmu, &ts);
		if (r->stop)
			break;
		pthread_mutex_unlock(&r->gmu);
		uint64_t now = now_mono_ns();
		if (now >= r->next_gc_ns) {
			r->next_gc_ns = now + (uint64_t)r->o.gc_interval_ms * 1000000ull;
			eg_revoke_gc(d);
		}
		pthread_mutex_lock(&r->gmu);
	}
	pthread_mutex_unlock(&r->gmu);
	return NULL;
}

/* --- queries -------------------------------------------------------------------------------- */

size_t eg_flows_tracked(struct eg_daemon *d)
{
	return d && d->revoke ? __atomic_load_n(&d->revoke->n_flows, __ATOMIC_RELAXED) : 0;
}

size_t eg_flows_of(struct eg_daemon *d, const char *session_id, struct eg_flow_tuple *out, size_t max)
{
	struct eg_revoke *r = d ? d->revoke : NULL;
	struct stripe *st;
	size_t n = 0;

	if (!r || !session_id || strlen(session_id) > ID_MAX)
		return 0;
	struct sess **head = slot(r, session_id, &st);
	pthread_mutex_lock(&st->mu);
	struct sess *e = find_locked(head, session_id);
	for (unsigned i = 0; e && i < e->n && n < max; i++)
		out[n++] = e->flows[i].t;
	pthread_mutex_unlock(&st->mu);
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void flow_text(const struct eg_flow_tuple *f, char *buf, size_t len)
{
	char c[64], s[64];
	struct eg_prefix pc = { .plen = 128 }, ps = { .plen = 128 };

	memcpy(pc.addr, f->client, 16);
	memcpy(ps.addr, f->server, 16);
	eg_gate_prefix_format(&pc, c, sizeof(c));
	eg_gate_prefix_format(&ps, s, sizeof(s));
	/* an IPv6 address takes brackets before ":port" (RFC 3986 authority form) */
	bool c6 = strchr(c, ':') != NULL, s6 = strchr(s, ':') != NULL;
	snprintf(buf, len, "%s%s%s:%u -> %s%s%s:%u", c6 ? "[" : "", c, c6 ? "]" : "", f->client_port, s6 ? "[" : "",
		 s, s6 ? "]" : "", f->server_port);
}

/* admin "flows" [session: ID] [samples: true]: counters, time-to-revoke percentiles
 * over the last SAMPLES revocations, a session's flows. */
static json_t *adm_flows(struct eg_daemon *d, const json_t *req, const char **err)
{
	struct eg_revoke *r = d->revoke;
	uint64_t *v;
	size_t n;

	if (!r) {
		*err = "revocation is not initialised";
		return NULL;
	}
	pthread_mutex_lock(&r->smu);
	n = r->n_samples;
	v = xcalloc(n ? n : 1, sizeof(*v));
	memcpy(v, r->samples, n * sizeof(*v));
	pthread_mutex_unlock(&r->smu);
	json_t *out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "tracked",
				(json_int_t)eg_flows_tracked(d), "revocations", (json_int_t)r->revocations,
				"destroyed", (json_int_t)r->destroyed, "gone", (json_int_t)r->gone, "failed",
				(json_int_t)r->failed, "untracked_table_full", (json_int_t)r->table_refused,
				"untracked_session_full", (json_int_t)r->session_refused, "sock_destroy",
				eg_sockdiag_can_destroy(r->diag));
	json_object_set_new(out, "flows_per_session", json_integer((json_int_t)r->o.per_session));
	json_object_set_new(out, "max_flows", json_integer((json_int_t)r->o.max_flows));
	json_object_set_new(out, "flows_per_subject", json_integer((json_int_t)r->o.per_subject));
	json_object_set_new(out, "untracked_subject_full",
			    json_integer((json_int_t)__atomic_load_n(&r->subject_refused, __ATOMIC_RELAXED)));
	json_object_set_new(out, "reclaimed", json_integer((json_int_t)r->reclaimed));
	json_t *ttr = json_pack("{s:I}", "samples", (json_int_t)n);
	if (json_is_true(json_object_get(req, "samples"))) {
		json_t *arr = json_array();
		/* chronological when the ring has not wrapped */
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_integer((json_int_t)(v[i] / 1000)));
		json_object_set_new(ttr, "us", arr);
	}
	if (n) {
		qsort(v, n, sizeof(*v), cmp_u64);
		json_object_set_new(ttr, "p50_us", json_real((double)v[(n - 1) / 2] / 1e3));
		json_object_set_new(ttr, "p99_us", json_real((double)v[(size_t)((double)(n - 1) * 0.99)] / 1e3));
		json_object_set_new(ttr, "max_us", json_real((double)v[n - 1] / 1e3));
	}
	free(v);
	json_object_set_new(out, "time_to_revoke", ttr);
	json_object_set_new(out, "sync", sync_json(r));
	const char *sid = json_string_value(json_object_get(req, "session"));
	if (sid) {
		struct eg_flow_tuple f[64];
		size_t k = eg_flows_of(d, sid, f, 64);
		json_t *arr = json_array();
		for (size_t i = 0; i < k; i++) {
			char buf[160];
			flow_text(&f[i], buf, sizeof(buf));
			json_array_append_new(arr, json_string(buf));
		}
		json_object_set_new(out, "flows", arr);
	}
	return out;
}

/* --- lifecycle -------------------------------------------------------------------------------- */

static void describe_metrics(struct eg_metrics *m)
{
	if (!m)
		return;
	eg_metric_help(m, "edgegate_revoke_duration_seconds", "histogram",
		       "time to revoke: from the revocation call to the last flow of the session destroyed");
	eg_metric_help(m, "edgegate_revocations_total", "counter", "sessions revoked, by reason");
	eg_metric_help(m, "edgegate_revoked_flows_total", "counter",
		       "flows of revoked sessions: destroyed, already gone, or failed (XDP drop only)");
	eg_metric_help(m, "edgegate_flows_tracked", "gauge", "TCP flows of live sessions being tracked");
	eg_metric_help(m, "edgegate_flows_untracked_total", "counter",
		       "new flows not tracked, their request refused (403 too_many_connections): table, session or subject full");
	eg_metric_help(m, "edgegate_flows_reclaimed_total", "counter",
		       "flows of a session at its cap found closed by a probe and dropped to make room");
}

int eg_revoke_init(struct eg_daemon *d, char *err, size_t errlen)
{
	struct eg_revoke *r = xcalloc(1, sizeof(*r));

	r->o = opts_next;
	if (!r->o.per_session && d->cfg)
		r->o.per_session = d->cfg->revocation.flows_per_session; /* 0: the default */
	if (!r->o.per_subject && d->cfg)
		r->o.per_subject = d->cfg->revocation.flows_per_subject; /* 0: the default */
	defaults(&r->o);
	for (unsigned i = 0; i < STRIPES; i++) {
		pthread_mutex_init(&r->st[i].mu, NULL);
		pthread_mutex_init(&r->sst[i].mu, NULL);
	}
	pthread_mutex_init(&r->smu, NULL);
	pthread_mutex_init(&r->gmu, NULL);
	pthread_cond_init(&r->gcv, NULL);
	r->diag = eg_sockdiag_open();
	r->note_flows = r->diag && (eg_sockdiag_can_destroy(r->diag) || d->gate);
	if (!eg_sockdiag_can_destroy(r->diag))
		log_warn("revocation: no NETLINK_SOCK_DIAG socket%s: sockets of revoked sessions are not destroyed; "
			 "%s",
			 r->diag ? " in the privileged process" : "",
			 d->gate ? "their flows are dropped in XDP"
				 : "without a gate their connections stay open (every further request on them is denied)");
	d->revoke = r;
	/* like session.c: any backend but the embedded one is shared with other nodes */
	r->shared = d->store && strcmp(eg_store_backend(d->store), "lmdb") != 0;
	/* revocations from before this start have no flows here to kill */
	r->hwm = now_realtime_s();
	r->next_gc_ns = now_mono_ns() + (uint64_t)r->o.gc_interval_ms * 1000000ull;
	if (pthread_create(&r->gc, NULL, gc_main, d) == 0)
		r->gc_running = true;
	describe_metrics(d->metrics);
	eg_metric_set(d->metrics, "edgegate_flows_tracked", NULL, NULL, 0);
	eg_admin_register("flows", adm_flows);
	return 0;
}

void eg_revoke_free(struct eg_daemon *d)
{
	struct eg_revoke *r = d ? d->revoke : NULL;

	if (!r)
		return;
	if (r->gc_running) {
		pthread_mutex_lock(&r->gmu);
		r->stop = true;
		pthread_cond_broadcast(&r->gcv);
		pthread_mutex_unlock(&r->gmu);
		pthread_join(r->gc, NULL);
	}
	d->revoke = NULL;
	for (unsigned s = 0; s < STRIPES; s++) {
		for (unsigned b = 0; b < BUCKETS; b++)
			for (struct sess *e = r->st[s].b[b], *next; e; e = next) {
				next = e->next;
				free(e->flows);
				free(e->keys);
				free(e);
			}
		pthread_mutex_destroy(&r->st[s].mu);
		for (unsigned b = 0; b < BUCKETS; b++)
			for (struct subj *e = r->sst[s].b[b], *next; e; e = next) {
				next = e->next;
				free(e);
			}
		pthread_mutex_destroy(&r->sst[s].mu);
	}
	eg_sockdiag_close(r->diag);
	pthread_mutex_destroy(&r->smu);
	pthread_mutex_destroy(&r->gmu);
	pthread_cond_destroy(&r->gcv);
	free(r);
}

void eg_revoke_on_remote(struct eg_daemon *d, eg_revoke_forget_fn forget)
{
	if (d->revoke)
		d->revoke->forget = forget;
}
