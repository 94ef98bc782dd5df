/* session.c - tickets, sealed session records, the hot cache, lifetimes, indexes,
 * revocation and single-flight refresh. See session.h for the ticket format. */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "identity.h"
#include "jose.h"
#include "log.h"
#include "metrics.h"
#include "revoke.h"
#include "seal.h"
#include "session.h"
#include "store.h"
#include "util.h"

#define ID_BYTES 16
#define SECRET_BYTES 32
#define ID_B64 22     /* base64url of 16 bytes */
#define SECRET_B64 43 /* base64url of 32 bytes */
#define NBUCKETS 4096
#define MAX_CACHED 200000
#define PERSIST_EVERY_S 60  /* last-seen write-back interval (idle lifetime) */
#define RECHECK_SHARED_S 5  /* shared store: how stale a cached entry may be */
#define REFRESH_WAIT_S 15
#define SEAL_INFO "edgegate session v1"

struct sess {
	char id[EG_SESSION_ID_LEN + 1]; /* public id = hex(sha256(ticket id)) */
	uint8_t secret_hash[32];
	uint8_t key[EG_SEAL_KEY_LEN];
	json_t *claims;
	char *sub, *sid, *id_token, *access_token, *refresh_token;
	int64_t created, last_seen, last_persist, exp_abs, token_exp, checked_at;
	bool refreshing, dead; /* dead: atomic, set when unlinked from the cache */
	int refs;              /* under eg_sessions.mu */
	pthread_mutex_t mu;    /* the fields above refs */
	pthread_cond_t cv;     /* refresh completion */
	struct sess *next;
};

struct eg_sessions {
	pthread_mutex_t mu; /* the table and reference counts */
	struct sess *b[NBUCKETS];
	size_t n;
	eg_refresh_fn refresh;
	bool shared; /* store shared with other nodes (Redis) */
	bool own_store;
	pthread_t gc;
	bool gc_running, stopping;
	pthread_cond_t gc_cv;
};

static void metric(struct eg_daemon *d, const char *event)
{
	if (d->metrics)
		eg_metric_inc(d->metrics, "edgegate_sessions_total", "event", event, NULL, NULL, 1);
}

void eg_session_new_clear(struct eg_session_new *n)
{
	json_decref(n->claims);
	free(n->sub);
	free(n->sid);
	free(n->id_token);
	free(n->access_token);
	free(n->refresh_token);
	memset(n, 0, sizeof(*n));
}

static int64_t idle_s(const struct eg_config *c)
{
	return c->cookie.idle_s > 0 ? c->cookie.idle_s : 8 * 3600;
}

static int64_t lifetime_s(const struct eg_config *c)
{
	return c->cookie.lifetime_s > 0 ? c->cookie.lifetime_s : 7 * 86400;
}

static const char *cookie_name(const struct eg_config *c)
{
	return c->cookie.name ? c->cookie.name : "_edgegate";
}

static int64_t store_expiry(const struct eg_config *c, const struct sess *e)
{
	int64_t idle = e->last_seen + idle_s(c);
	return idle < e->exp_abs ? idle : e->exp_abs;
}

static unsigned bucket(const char *id)
{
	unsigned h = 0;

	for (int i = 0; i < 8; i++)
		h = h * 16 + (unsigned)(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
	return h % NBUCKETS;
}

static void wipe_free(char *p)
{
	if (p) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

static void sess_free(struct sess *e)
{
	json_decref(e->claims);
	free(e->sub);
	free(e->sid);
	wipe_free(e->id_token);
	wipe_free(e->access_token);
	wipe_free(e->refresh_token);
	OPENSSL_cleanse(e->key, sizeof(e->key));
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	free(e);
}

static struct sess *sess_alloc(void)
{
	struct sess *e = xcalloc(1, sizeof(*e));

	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	return e;
}

/* Drops a reference; the last one frees. Caller holds mu. */
static void sess_put_locked(struct sess *e)
{
	if (--e->refs == 0)
		sess_free(e);
}

static struct sess *find_locked(struct eg_sessions *s, const char *id)
{
	for (struct sess *e = s->b[bucket(id)]; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static void unlink_locked(struct eg_sessions *s, struct sess *e)
{
	for (struct sess **pp = &s->b[bucket(e->id)]; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			e->next = NULL;
			__atomic_store_n(&e->dead, true, __ATOMIC_RELEASE);
			pthread_mutex_lock(&e->mu);
			pthread_cond_broadcast(&e->cv);
			pthread_mutex_unlock(&e->mu);
			s->n--;
			sess_put_locked(e);
			return;
		}
	}
}

/* Inserts e (taking a reference) unless the id is already cached; returns the
 * cached entry with a reference for the caller. */
static struct sess *insert_locked(struct eg_sessions *s, struct sess *e)
{
	struct sess *old = find_locked(s, e->id);

	if (old) {
		old->refs++;
		return old;
	}
	if (s->n >= MAX_CACHED) {
		e->refs++; /* not cached: only the caller holds it */
		return e;
	}
	e->next = s->b[bucket(e->id)];
	s->b[bucket(e->id)] = e;
	s->n++;
	e->refs += 2; /* cache + caller */
	return e;
}

/* --- ticket and keys ------------------------------------------------------ */

static bool b64url_chars(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

struct ticket {
	char idpart[ID_B64 + 1];
	char secret[SECRET_B64 + 1];
	char id[EG_SESSION_ID_LEN + 1];
	uint8_t secret_hash[32];
};

static int parse_ticket(const char *t, struct ticket *out)
{
	uint8_t h[32];

	if (!t || strlen(t) != ID_B64 + 1 + SECRET_B64 || t[ID_B64] != '.' ||
	    !b64url_chars(t, ID_B64) || !b64url_chars(t + ID_B64 + 1, SECRET_B64))
		return -1;
	memcpy(out->idpart, t, ID_B64);
	out->idpart[ID_B64] = 0;
	memcpy(out->secret, t + ID_B64 + 1, SECRET_B64);
	out->secret[SECRET_B64] = 0;
	eg_sha256(out->idpart, ID_B64, h);
	hex_encode(h, 32, out->id);
	eg_sha256(out->secret, SECRET_B64, out->secret_hash);
	return 0;
}

static int derive_key(const struct ticket *t, uint8_t key[EG_SEAL_KEY_LEN])
{
	return eg_seal_derive(t->secret, SECRET_B64, t->idpart, ID_B64, SEAL_INFO, key);
}

/* --- records ----------------------------------------------------------------- */

static void hash_name(const char *s, char out[33])
{
	uint8_t h[32];

	eg_sha256(s, strlen(s), h);
	hex_encode(h, 16, out);
}

static char *index_key(const char *kind, const char *value, const char *id)
{
	char h[33];

	hash_name(value, h);
	return id ? xasprintf("%s:%s:%s", kind, h, id) : xasprintf("%s:%s:", kind, h);
}

static json_t *jstr_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Writes the record (metadata in clear, tokens and claims sealed). */
static int persist(struct eg_daemon *d, struct sess *e)
{
	const struct eg_config *c = d->cfg;
	json_t *inner, *rec;
	char *itext, *sealed, *rtext;
	int rc = -1;

	inner = json_pack("{s:O, s:o, s:o, s:o}", "claims", e->claims ? e->claims : json_null(),
			  "id_token", jstr_or_null(e->id_token), "access_token",
			  jstr_or_null(e->access_token), "refresh_token",
			  jstr_or_null(e->refresh_token));
	itext = inner ? json_dumps(inner, JSON_COMPACT) : NULL;
	json_decref(inner);
	if (!itext)
		return -1;
	sealed = eg_seal(e->key, e->id, itext, strlen(itext));
	OPENSSL_cleanse(itext, strlen(itext));
	free(itext);
	if (!sealed)
		return -1;
	rec = json_pack("{s:i, s:o, s:o, s:I, s:I, s:I, s:I, s:s}", "v", 1, "sub",
			jstr_or_null(e->sub), "sid", jstr_or_null(e->sid), "created",
			(json_int_t)e->created, "last", (json_int_t)e->last_seen, "exp",
			(json_int_t)e->exp_abs, "token_exp", (json_int_t)e->token_exp, "data",
			sealed);
	free(sealed);
	rtext = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	if (rtext) {
		rc = eg_store_put(d->store, EG_NS_SESSION, e->id, rtext, strlen(rtext),
				  store_expiry(c, e));
		free(rtext);
	}
	if (rc == 0)
		e->last_persist = e->last_seen;
	return rc;
}

static char *dup_str(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? xstrdup(v) : NULL;
}

static int64_t get_int(const json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

/* Loads a record from the store and opens it with the ticket; NULL if absent or
 * the ticket does not open it. */
static struct sess *load(struct eg_daemon *d, const struct ticket *t)
{
	void *val = NULL;
	size_t len = 0;
	json_t *rec = NULL, *inner = NULL;
	struct sess *e = NULL;
	char *pt = NULL;
	const char *data;
	size_t ptlen;

	if (eg_store_get(d->store, EG_NS_SESSION, t->id, &val, &len, NULL) != 1)
		return NULL;
	rec = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	free(val);
	data = json_string_value(json_object_get(rec, "data"));
	if (!data)
		goto out;
	e = sess_alloc();
	if (derive_key(t, e->key))
		goto fail;
	pt = eg_unseal(e->key, t->id, data, strlen(data), &ptlen);
	if (!pt)
		goto fail; /* wrong secret: AEAD tag mismatch */
	inner = json_loadb(pt, ptlen, JSON_REJECT_DUPLICATES, NULL);
	OPENSSL_cleanse(pt, ptlen);
	free(pt);
	if (!json_is_object(inner))
		goto fail;
	memcpy(e->id, t->id, sizeof(e->id));
	memcpy(e->secret_hash, t->secret_hash, 32);
	e->claims = json_incref(json_object_get(inner, "claims"));
	if (!json_is_object(e->claims)) {
		json_decref(e->claims);
		e->claims = json_object();
	}
	e->id_token = dup_str(inner, "id_token");
	e->access_token = dup_str(inner, "access_token");
	e->refresh_token = dup_str(inner, "refresh_token");
	e->sub = dup_str(rec, "sub");
	e->sid = dup_str(rec, "sid");
	e->created = get_int(rec, "created");
	e->last_seen = e->last_persist = get_int(rec, "last");
	e->exp_abs = get_int(rec, "exp");
	e->token_exp = get_int(rec, "token_exp");
	e->checked_at = now_realtime_s();
	goto out;
fail:
	sess_free(e);
	e = NULL;
out:
	json_decref(inner);
	json_decref(rec);
	return e;
}

/* --- ending sessions ----------------------------------------------------------- */

/* Removes the record, its index entries and the cache entry, and records the
 * revocation. Returns 1 if a session existed. */
static int end_session(struct eg_daemon *d, const char *id, const char *reason)
{
	struct eg_sessions *s = d->sessions;
	void *val = NULL;
	size_t len = 0;
	int64_t exp = 0, now = now_realtime_s();
	json_t *rec = NULL, *rev;
	int found;

	found = eg_store_get(d->store, EG_NS_SESSION, id, &val, &len, &exp) == 1;
	if (found)
		rec = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	free(val);
	pthread_mutex_lock(&s->mu);
	struct sess *e = find_locked(s, id);
	if (e) {
		found = 1;
		unlink_locked(s, e);
	}
	pthread_mutex_unlock(&s->mu);
	if (!found)
		return 0;
	/* Its live connections die now (kernel maps + socket destroy); no lock held. */
	eg_revoke_session_flows(d, id, reason);
	eg_store_del(d->store, EG_NS_SESSION, id);
	const char *sub = json_string_value(json_object_get(rec, "sub"));
	const char *sid = json_string_value(json_object_get(rec, "sid"));
	if (sub) {
		char *k = index_key("sub", sub, id);
		eg_store_del(d->store, EG_NS_INDEX, k);
		free(k);
	}
	if (sid) {
		char *k = index_key("sid", sid, id);
		eg_store_del(d->store, EG_NS_INDEX, k);
		free(k);
	}
	rev = json_pack("{s:s, s:I, s:o}", "reason", reason ? reason : "revoked", "at",
			(json_int_t)now, "sub", jstr_or_null(sub));
	char *rtext = rev ? json_dumps(rev, JSON_COMPACT) : NULL;
	if (rtext)
		eg_store_put(d->store, EG_NS_REVOKED, id, rtext, strlen(rtext),
			     exp > now ? exp : now + lifetime_s(d->cfg));
	free(rtext);
	json_decref(rev);
	json_decref(rec);
	log_info("session %.12s… ended (%s)", id, reason ? reason : "revoked");
	metric(d, "ended");
	return 1;
}

struct idlist {
	char **v;
	size_t n, cap;
	const char *prefix;
};

static int collect_ids(const char *key, const void *val, size_t len, int64_t exp, void *arg)
{
	struct idlist *l = arg;
	const char *id = key + strlen(l->prefix);

	if (strlen(id) != EG_SESSION_ID_LEN)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = realloc(l->v, l->cap * sizeof(char *));
		if (!l->v)
			abort();
	}
	l->v[l->n++] = xstrdup(id);
	return 0;
}

static void ids_by_index(struct eg_daemon *d, const char *kind, const char *value,
			 struct idlist *l)
{
	char *prefix = index_key(kind, value, NULL);

	l->prefix = prefix;
	eg_store_foreach_prefix(d->store, EG_NS_INDEX, prefix, collect_ids, l);
	l->prefix = NULL;
	free(prefix);
}

static bool record_sub_is(struct eg_daemon *d, const char *id, const char *sub)
{
	void *val = NULL;
	size_t len;
	bool ok = false;

	if (eg_store_get(d->store, EG_NS_SESSION, id, &val, &len, NULL) == 1) {
		json_t *rec = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
		const char *s = json_string_value(json_object_get(rec, "sub"));
		ok = s && strcmp(s, sub) == 0;
		json_decref(rec);
	}
	free(val);
	return ok;
}

int eg_session_revoke(struct eg_daemon *d, const char *session_id, const char *sub,
		      const char *sid, const char *reason)
{
	struct idlist l = { 0 };
	int count = 0;

	if (!d->sessions || (!session_id && !sub && !sid))
		return -1;
	if (session_id && *session_id) {
		l.prefix = "";
		collect_ids(session_id, NULL, 0, 0, &l);
	}
	if (sid)
		ids_by_index(d, "sid", sid, &l);
	else if (sub)
		ids_by_index(d, "sub", sub, &l);
	for (size_t i = 0; i < l.n; i++) {
		/* sid and sub together: only sessions of that subject (logout_token rule) */
		if (!(sid && sub && !record_sub_is(d, l.v[i], sub)))
			count += end_session(d, l.v[i], reason);
		free(l.v[i]);
	}
	free(l.v);
	return count;
}

int eg_session_end_ticket(struct eg_daemon *d, const char *ticket, const char *reason,
			  char **id_token)
{
	struct ticket t;
	struct sess *e;
	int found = 0;

	if (id_token)
		*id_token = NULL;
	if (!d->sessions || parse_ticket(ticket, &t))
		return 0;
	/* Only the holder of the secret may end (and learn the id_token of) a session. */
	pthread_mutex_lock(&d->sessions->mu);
	e = find_locked(d->sessions, t.id);
	if (e && ct_equal(e->secret_hash, t.secret_hash, 32)) {
		found = 1;
		pthread_mutex_lock(&e->mu);
		if (id_token && e->id_token)
			*id_token = xstrdup(e->id_token);
		pthread_mutex_unlock(&e->mu);
	}
	pthread_mutex_unlock(&d->sessions->mu);
	if (!found) {
		e = load(d, &t);
		if (e) {
			found = 1;
			if (id_token && e->id_token)
				*id_token = xstrdup(e->id_token);
			sess_free(e);
		}
	}
	if (found)
		end_session(d, t.id, reason);
	return found;
}

/* --- creation ------------------------------------------------------------------ */

static void put_index(struct eg_daemon *d, const char *kind, const char *value, const char *id,
		      int64_t exp)
{
	char *k = index_key(kind, value, id);

	if (eg_store_put(d->store, EG_NS_INDEX, k, "", 0, exp))
		log_warn("session: index write failed");
	free(k);
}

int eg_session_create(struct eg_daemon *d, const struct eg_session_new *in, char *ticket,
		      size_t ticket_len, char session_id[EG_SESSION_ID_LEN + 1])
{
	struct eg_sessions *s = d->sessions;
	uint8_t idb[ID_BYTES], sec[SECRET_BYTES];
	char tbuf[EG_TICKET_MAX];
	struct ticket t;
	struct sess *e;
	int64_t now = now_realtime_s();

	if (!s || ticket_len < ID_B64 + SECRET_B64 + 2)
		return -1;
	/* A fresh id and secret at every login: no session fixation. */
	if (random_bytes(idb, sizeof(idb)) || random_bytes(sec, sizeof(sec)))
		return -1;
	b64url_encode(idb, sizeof(idb), tbuf);
	tbuf[ID_B64] = '.';
	b64url_encode(sec, sizeof(sec), tbuf + ID_B64 + 1);
	OPENSSL_cleanse(sec, sizeof(sec));
	if (parse_ticket(tbuf, &t))
		return -1;
	e = sess_alloc();
	if (derive_key(&t, e->key)) {
		sess_free(e);
		return -1;
	}
	memcpy(e->id, t.id, sizeof(e->id));
	memcpy(e->secret_hash, t.secret_hash, 32);
	e->claims = in->claims ? json_deep_copy(in->claims) : json_object();
	e->sub = in->sub ? xstrdup(in->sub) : NULL;
	e->sid = in->sid ? xstrdup(in->sid) : NULL;
	e->id_token = in->id_token ? xstrdup(in->id_token) : NULL;
	e->access_token = in->access_token ? xstrdup(in->access_token) : NULL;
	e->refresh_token = in->refresh_token ? xstrdup(in->refresh_token) : NULL;
	e->token_exp = in->token_exp;
	e->created = e->last_seen = e->checked_at = now;
	e->exp_abs = now + lifetime_s(d->cfg);
	if (persist(d, e)) {
		sess_free(e);
		return -1;
	}
	if (e->sub)
		put_index(d, "sub", e->sub, e->id, e->exp_abs);
	if (e->sid)
		put_index(d, "sid", e->sid, e->id, e->exp_abs);
	snprintf(ticket, ticket_len, "%s", tbuf);
	OPENSSL_cleanse(tbuf, sizeof(tbuf));
	if (session_id)
		memcpy(session_id, e->id, EG_SESSION_ID_LEN + 1);
	pthread_mutex_lock(&s->mu);
	struct sess *c = insert_locked(s, e);
	sess_put_locked(c); /* drop the caller reference: the cache keeps it */
	pthread_mutex_unlock(&s->mu);
	metric(d, "created");
	return 0;
}

/* --- lookup and refresh --------------------------------------------------------- */

/* Refreshes e's tokens (the caller won the single-flight). 0 ok. */
static int do_refresh(struct eg_daemon *d, struct sess *e)
{
	struct eg_sessions *s = d->sessions;
	struct eg_session_new out = { 0 };
	char *rt, *sub, *lock = NULL;
	int rc;

	pthread_mutex_lock(&e->mu);
	rt = xstrdup(e->refresh_token);
	sub = e->sub ? xstrdup(e->sub) : NULL;
	pthread_mutex_unlock(&e->mu);
	if (s->shared) {
		/* Other nodes share the refresh token (rotation): one refresher cluster-wide. */
		lock = xasprintf("refresh:%s", e->id);
		if (eg_store_add(d->store, EG_NS_META, lock, "1", 1, now_realtime_s() + 30) != 1) {
			free(lock);
			wipe_free(rt);
			free(sub);
			pthread_mutex_lock(&e->mu);
			e->refreshing = false;
			pthread_cond_broadcast(&e->cv);
			pthread_mutex_unlock(&e->mu);
			return 1; /* another node refreshes; its result arrives via recheck_shared */
		}
	}
	rc = s->refresh(d, rt, sub, &out);
	wipe_free(rt);
	free(sub);
	pthread_mutex_lock(&e->mu);
	if (rc == 0) {
		if (out.claims) {
			json_decref(e->claims);
			e->claims = out.claims; /* replaced, never mutated: readers hold refs */
			out.claims = NULL;
		}
		if (out.id_token) {
			wipe_free(e->id_token);
			e->id_token = out.id_token;
			out.id_token = NULL;
		}
		if (out.access_token) {
			wipe_free(e->access_token);
			e->access_token = out.access_token;
			out.access_token = NULL;
		}
		if (out.refresh_token) { /* rotation: keep the new one */
			wipe_free(e->refresh_token);
			e->refresh_token = out.refresh_token;
			out.refresh_token = NULL;
		}
		e->token_exp = out.token_exp;
		if (persist(d, e))
			log_warn("session: could not persist refreshed session");
		metric(d, "refreshed");
	} else {
		metric(d, "refresh_failed");
	}
	e->refreshing = false;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	eg_session_new_clear(&out);
	if (lock) {
		eg_store_del(d->store, EG_NS_META, lock);
		free(lock);
	}
	return rc ? -1 : 0;
}

/* Shared store: a cached entry is re-read when it is older than RECHECK_SHARED_S,
 * so a logout on another node (or a refresh there) is seen within seconds. */
static int recheck_shared(struct eg_daemon *d, struct sess *e, const struct ticket *t,
			  int64_t now)
{
	struct sess *fresh = load(d, t);

	if (!fresh)
		return -1;
	pthread_mutex_lock(&e->mu);
	if (!e->refreshing && fresh->token_exp > e->token_exp) {
		json_decref(e->claims);
		e->claims = json_incref(fresh->claims);
		wipe_free(e->id_token);
		e->id_token = fresh->id_token;
		fresh->id_token = NULL;
		wipe_free(e->access_token);
		e->access_token = fresh->access_token;
		fresh->access_token = NULL;
		wipe_free(e->refresh_token);
		e->refresh_token = fresh->refresh_token;
		fresh->refresh_token = NULL;
		e->token_exp = fresh->token_exp;
	}
	if (fresh->last_seen > e->last_seen)
		e->last_seen = fresh->last_seen;
	e->checked_at = now;
	pthread_mutex_unlock(&e->mu);
	sess_free(fresh);
	return 0;
}

static struct sess *lookup(struct eg_daemon *d, const struct ticket *t)
{
	struct eg_sessions *s = d->sessions;
	struct sess *e, *n;

	pthread_mutex_lock(&s->mu);
	e = find_locked(s, t->id);
	if (e)
		e->refs++;
	pthread_mutex_unlock(&s->mu);
	if (!e) {
		n = load(d, t);
		if (!n) {
			metric(d, "miss");
			return NULL;
		}
		pthread_mutex_lock(&s->mu);
		e = insert_locked(s, n);
		pthread_mutex_unlock(&s->mu);
		if (e != n)
			sess_free(n); /* lost a race with another loader */
	}
	/* Constant time: the ticket secret must match the cached hash. */
	if (!ct_equal(e->secret_hash, t->secret_hash, 32)) {
		pthread_mutex_lock(&s->mu);
		sess_put_locked(e);
		pthread_mutex_unlock(&s->mu);
		metric(d, "bad_secret");
		return NULL;
	}
	return e;
}

static void release(struct eg_daemon *d, struct sess *e)
{
	pthread_mutex_lock(&d->sessions->mu);
	sess_put_locked(e);
	pthread_mutex_unlock(&d->sessions->mu);
}

int eg_session_identity_ticket(struct eg_daemon *d, const char *ticket, struct eg_identity *id)
{
	struct eg_sessions *s = d->sessions;
	const struct eg_config *c = d->cfg;
	struct ticket t;
	struct sess *e;
	int64_t now = now_realtime_s();
	int64_t before = c->oidc.refresh_before_s > 0 ? c->oidc.refresh_before_s : 60;
	bool expired, mine = false, persist_now;

	if (!s || parse_ticket(ticket, &t))
		return -1;
	e = lookup(d, &t);
	if (!e)
		return -1;
	if (s->shared && now - e->checked_at >= RECHECK_SHARED_S && recheck_shared(d, e, &t, now)) {
		pthread_mutex_lock(&s->mu);
		if (!e->dead)
			unlink_locked(s, e);
		sess_put_locked(e);
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	pthread_mutex_lock(&e->mu);
	expired = now >= e->exp_abs || now >= e->last_seen + idle_s(c);
	if (!expired && s->refresh && e->refresh_token && e->token_exp &&
	    e->token_exp - now <= before) {
		if (!e->refreshing) {
			e->refreshing = true;
			mine = true;
		} else if (e->token_exp <= now) {
			/* Token already expired and someone else is refreshing: wait for it. */
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += REFRESH_WAIT_S;
			while (e->refreshing && !__atomic_load_n(&e->dead, __ATOMIC_ACQUIRE))
				if (pthread_cond_timedwait(&e->cv, &e->mu, &until) == ETIMEDOUT)
					break;
		}
	}
	pthread_mutex_unlock(&e->mu);
	if (expired) {
		end_session(d, e->id, "expired");
		release(d, e);
		return -1;
	}
	if (mine && do_refresh(d, e) < 0) {
		end_session(d, e->id, "refresh_failed");
		release(d, e);
		return -1;
	}
	pthread_mutex_lock(&e->mu);
	if (__atomic_load_n(&e->dead, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&e->mu);
		release(d, e);
		return -1;
	}
	e->last_seen = now;
	persist_now = now - e->last_persist >= PERSIST_EVERY_S;
	if (persist_now)
		persist(d, e); /* keeps the idle deadline in the store current */
	id->kind = EG_ID_SESSION;
	id->claims = json_incref(e->claims);
	snprintf(id->session_id, sizeof(id->session_id), "%s", e->id);
	pthread_mutex_unlock(&e->mu);
	release(d, e);
	return 0;
}

int eg_session_identity(struct eg_daemon *d, const struct eg_req *r, struct eg_identity *id)
{
	char buf[EG_TICKET_MAX + 8];

	if (!d->sessions)
		return -1;
	if (!eg_req_cookie(r, cookie_name(d->cfg), buf, sizeof(buf)))
		return -1;
	return eg_session_identity_ticket(d, buf, id);
}

/* --- admin listing -------------------------------------------------------------- */

struct list_ctx {
	json_t *arr;
	const char *sub;
};

static int list_fn(const char *key, const void *val, size_t len, int64_t exp, void *arg)
{
	struct list_ctx *l = arg;
	json_t *rec = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	const char *sub = json_string_value(json_object_get(rec, "sub"));

	if (rec && (!l->sub || (sub && strcmp(sub, l->sub) == 0)))
		json_array_append_new(
			l->arr, json_pack("{s:s, s:o, s:o, s:I, s:I, s:I}", "session_id", key, "sub",
					  jstr_or_null(sub), "sid",
					  json_incref(json_object_get(rec, "sid")
							      ? json_object_get(rec, "sid")
							      : json_null()),
					  "created", (json_int_t)get_int(rec, "created"), "last_seen",
					  (json_int_t)get_int(rec, "last"), "expires",
					  (json_int_t)exp));
	json_decref(rec);
	return 0;
}

json_t *eg_sessions_list(struct eg_daemon *d, const char *sub_filter)
{
	struct list_ctx l = { json_array(), sub_filter };

	if (d->store)
		eg_store_foreach(d->store, EG_NS_SESSION, list_fn, &l);
	return l.arr;
}

/* --- cookies ----------------------------------------------------------------------- */

char *eg_cookie_header(const struct eg_config *cfg, const char *name, const char *value,
		       const char *path, int64_t max_age)
{
	char age[64] = "";

	if (max_age == 0)
		snprintf(age, sizeof(age), "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
	else if (max_age > 0)
		snprintf(age, sizeof(age), "; Max-Age=%lld", (long long)max_age);
	return xasprintf("%s=%s; Path=%s%s%s%s; HttpOnly%s; SameSite=Lax", name, value ? value : "",
			 path ? path : (cfg->cookie.path ? cfg->cookie.path : "/"),
			 cfg->cookie.domain ? "; Domain=" : "",
			 cfg->cookie.domain ? cfg->cookie.domain : "", age,
			 cfg->cookie.secure ? "; Secure" : "");
}

/* --- lifecycle ------------------------------------------------------------------------ */

static void expire_cache(struct eg_daemon *d)
{
	struct eg_sessions *s = d->sessions;
	int64_t now = now_realtime_s();
	struct idlist l = { 0 };

	pthread_mutex_lock(&s->mu);
	for (int b = 0; b < NBUCKETS; b++)
		for (struct sess *e = s->b[b]; e; e = e->next) {
			pthread_mutex_lock(&e->mu);
			bool gone = now >= e->exp_abs || now >= e->last_seen + idle_s(d->cfg);
			pthread_mutex_unlock(&e->mu);
			if (gone) {
				l.prefix = "";
				collect_ids(e->id, NULL, 0, 0, &l);
			}
		}
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < l.n; i++) {
		end_session(d, l.v[i], "expired");
		free(l.v[i]);
	}
	free(l.v);
}

static void *gc_main(void *arg)
{
	struct eg_daemon *d = arg;
	struct eg_sessions *s = d->sessions;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 60;
		pthread_cond_timedwait(&s->gc_cv, &s->mu, &until);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->mu);
		expire_cache(d);
		long n = eg_store_gc(d->store);
		if (n > 0)
			log_debug("store: %ld expired entries removed", n);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int eg_sessions_init(struct eg_daemon *d, char *err, size_t errlen)
{
	struct eg_sessions *s;

	if (d->sessions)
		return 0;
	s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->gc_cv, NULL);
	if (!d->store) {
		d->store = eg_store_open(d->cfg, err, errlen);
		if (!d->store) {
			free(s);
			return -1;
		}
		s->own_store = true;
	}
	s->shared = strcmp(eg_store_backend(d->store), "lmdb") != 0;
	d->sessions = s;
	if (pthread_create(&s->gc, NULL, gc_main, d) == 0)
		s->gc_running = true;
	return 0;
}

void eg_sessions_set_refresher(struct eg_sessions *s, eg_refresh_fn fn)
{
	if (s)
		s->refresh = fn;
}

void eg_sessions_flush_cache(struct eg_daemon *d)
{
	struct eg_sessions *s = d->sessions;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	for (int b = 0; b < NBUCKETS; b++)
		while (s->b[b])
			unlink_locked(s, s->b[b]);
	pthread_mutex_unlock(&s->mu);
}

size_t eg_sessions_cached(struct eg_daemon *d)
{
	size_t n;

	if (!d->sessions)
		return 0;
	pthread_mutex_lock(&d->sessions->mu);
	n = d->sessions->n;
	pthread_mutex_unlock(&d->sessions->mu);
	return n;
}

void eg_sessions_free(struct eg_daemon *d)
{
	struct eg_sessions *s = d->sessions;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->gc_cv);
	pthread_mutex_unlock(&s->mu);
	if (s->gc_running)
		pthread_join(s->gc, NULL);
	eg_sessions_flush_cache(d);
	if (s->own_store) {
		eg_store_close(d->store);
		d->store = NULL;
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->gc_cv);
	free(s);
	d->sessions = NULL;
}
