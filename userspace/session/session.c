/* session.c - tickets, sealed session records, the hot cache, lifetimes, indexes,
 * revocation and single-flight refresh. See session.h for the ticket format.
 *
 * Memory (issue 7): a cached session is small and holds no token. It keeps the
 * binary id, the hash of the ticket secret, a few timestamps and its identity
 * claims as compact JSON text. Tokens live only in the sealed store record and are
 * read (with the key derived from the ticket the request carries) when they are
 * needed: refresh and sign-out. Parsed claims (what policy and headers read) are
 * kept for a bounded set of recently used sessions (a CLOCK ring), so a warm
 * session costs no parse while 100k idle ones cost ~250 bytes each. Per-session
 * state that a refresh changes is guarded by a striped lock instead of a mutex and
 * a condition variable per session. */
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
#include "store_tomb.h"
#include "util.h"

#define ID_BYTES 16
#define SECRET_BYTES 32
#define ID_B64 22     /* base64url of 16 bytes */
#define SECRET_B64 43 /* base64url of 32 bytes */
#define NBUCKETS 65536 /* short chains at 100k sessions: 512 KiB of heads */
#define NSTRIPES 256
#define PARSED_MAX 4096 /* sessions whose claims stay parsed (working set) */
#define MAX_CACHED 200000
#define PERSIST_EVERY_S 60  /* last-seen write-back interval (idle lifetime) */
#define RECHECK_SHARED_S 5  /* shared store: how stale a cached entry may be */
#define REFRESH_WAIT_S 15
#define SEAL_INFO "edgegate session v1"
#define REC_VERSION 2       /* metadata bound into the AEAD's associated data */
#define TOMB_MEMORY_S 120   /* a confirmed revocation stays in memory (reload race) */
#define TOMB_RETRY_MAX 256  /* pending local revocations retried per pass */

struct sess {
	uint8_t id[32];          /* SHA-256(ticket id); its hex is the public id */
	uint8_t secret_hash[32]; /* SHA-256(ticket secret) */
	char *claims_text;       /* compact JSON object; s->mu */
	json_t *claims;          /* parsed, while in the ring (s->mu); never mutated */
	struct sess *next;
	/* under the session's stripe lock: */
	int64_t last_seen, last_persist, exp_abs, token_exp, checked_at;
	bool refreshing, has_rt; /* has_rt: the record holds a refresh token */
	bool dead;               /* atomic, set when unlinked from the cache */
	bool hot;                /* CLOCK reference bit; s->mu */
	int32_t slot;            /* index in the parsed ring, -1 = none; s->mu */
	uint32_t gen;            /* claims_text generation; s->mu */
	int refs;                /* s->mu */
};

struct eg_sessions {
	pthread_mutex_t mu; /* the table, reference counts, claims and the ring */
	struct sess *b[NBUCKETS];
	size_t n;
	struct sess *ring[PARSED_MAX];
	unsigned hand;
	/* Lock order: mu before a stripe, never the reverse. */
	pthread_mutex_t smu[NSTRIPES];
	pthread_cond_t scv[NSTRIPES]; /* refresh completion */
	eg_refresh_fn refresh;
	bool shared; /* store shared with other nodes (Redis) */
	bool own_store;
	pthread_t gc;
	bool gc_running, stopping;
	bool retry_now; /* mu: wake the GC thread to publish pending revocations now */
	pthread_cond_t gc_cv;
	/* Tickets: the id part is a MAC of the secret under this key, so a ticket this
	 * deployment never issued is told apart from one whose session ended. */
	uint8_t tkey[32];
	int64_t legacy_until; /* until then, v1 tickets (random id) are not called forged */
	struct eg_tombs *tombs;
	uint64_t store_write_failures;
	eg_session_load_hook load_hook; /* tests */
	void *load_hook_arg;
};

/* A decoded store record (all of it, tokens included). */
struct rec {
	json_t *claims;
	char *sub, *sid, *id_token, *access_token, *refresh_token;
	int64_t created, last, exp, token_exp;
};

static void metric(struct eg_daemon *d, const char *event)
{
	if (d->metrics)
		eg_metric_inc(d->metrics, "edgegate_sessions_total", "event", event, NULL, NULL, 1);
}

static void wipe_free(char *p)
{
	if (p) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

void eg_session_new_clear(struct eg_session_new *n)
{
	json_decref(n->claims);
	free(n->sub);
	free(n->sid);
	wipe_free(n->id_token);
	wipe_free(n->access_token);
	wipe_free(n->refresh_token);
	memset(n, 0, sizeof(*n));
}

static void rec_clear(struct rec *r)
{
	json_decref(r->claims);
	free(r->sub);
	free(r->sid);
	wipe_free(r->id_token);
	wipe_free(r->access_token);
	wipe_free(r->refresh_token);
	memset(r, 0, sizeof(*r));
}

static int64_t idle_s(const struct eg_config *c)
{
	return c->cookie.idle_s > 0 ? c->cookie.idle_s : 8 * 3600;
}

static int64_t lifetime_s(const struct eg_config *c)
{
	return c->cookie.lifetime_s > 0 ? c->cookie.lifetime_s : 7 * 86400;
}

static int64_t store_expiry(const struct eg_config *c, int64_t last, int64_t exp_abs)
{
	int64_t idle = last + idle_s(c);
	return idle < exp_abs ? idle : exp_abs;
}

static unsigned bucket(const uint8_t *id)
{
	return ((unsigned)id[0] << 8 | id[1]) % NBUCKETS;
}

static unsigned stripe(const struct sess *e)
{
	return e->id[2] % NSTRIPES;
}

static pthread_mutex_t *smu(struct eg_sessions *s, const struct sess *e)
{
	return &s->smu[stripe(e)];
}

/* --- the parsed-claims ring (CLOCK), all under s->mu ------------------------ */

static void ring_drop_locked(struct eg_sessions *s, struct sess *e)
{
	if (e->slot >= 0) {
		s->ring[e->slot] = NULL;
		e->slot = -1;
	}
	json_decref(e->claims);
	e->claims = NULL;
}

/* Keeps c (a reference the ring takes over) as e's parsed claims, evicting the
 * parsed claims of a session not used since the hand last passed it. */
static void ring_put_locked(struct eg_sessions *s, struct sess *e, json_t *c)
{
	ring_drop_locked(s, e);
	for (;;) {
		unsigned i = s->hand;
		struct sess *o = s->ring[i];

		s->hand = (i + 1) % PARSED_MAX;
		if (o && o->hot) {
			o->hot = false; /* second chance */
			continue;
		}
		if (o)
			ring_drop_locked(s, o);
		s->ring[i] = e;
		e->slot = (int32_t)i;
		e->claims = c;
		e->hot = false;
		return;
	}
}

/* Replaces e's claims (a refresh, another node's refresh): new text, new parsed
 * object (c, a reference taken over). Readers hold their own references. */
static void set_claims(struct eg_sessions *s, struct sess *e, json_t *c)
{
	char *text = json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY);

	if (!text) {
		json_decref(c);
		return;
	}
	pthread_mutex_lock(&s->mu);
	free(e->claims_text);
	e->claims_text = text;
	e->gen++;
	if (__atomic_load_n(&e->dead, __ATOMIC_ACQUIRE))
		json_decref(c);
	else
		ring_put_locked(s, e, c);
	pthread_mutex_unlock(&s->mu);
}

/* --- the table ----------------------------------------------------------------- */

/* Caller holds s->mu when e may be in the ring. */
static void sess_free(struct eg_sessions *s, struct sess *e)
{
	ring_drop_locked(s, e);
	free(e->claims_text);
	free(e);
}

static struct sess *sess_alloc(void)
{
	struct sess *e = xcalloc(1, sizeof(*e));

	e->slot = -1;
	return e;
}

/* Drops a reference; the last one frees. Caller holds mu. */
static void sess_put_locked(struct eg_sessions *s, struct sess *e)
{
	if (--e->refs == 0)
		sess_free(s, e);
}

static struct sess *find_locked(struct eg_sessions *s, const uint8_t *id)
{
	for (struct sess *e = s->b[bucket(id)]; e; e = e->next)
		if (memcmp(e->id, id, 32) == 0)
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
			/* Taking the stripe orders this with a write-back in progress, and
			 * wakes waiters of a refresh. */
			pthread_mutex_lock(smu(s, e));
			pthread_cond_broadcast(&s->scv[stripe(e)]);
			pthread_mutex_unlock(smu(s, e));
			ring_drop_locked(s, e);
			s->n--;
			sess_put_locked(s, e);
			return;
		}
	}
}

/* Inserts e (taking a reference) unless the id is already cached; returns the
 * cached entry with a reference for the caller. c (may be NULL): e's parsed
 * claims, a reference the ring takes over when e is inserted. */
static struct sess *insert_locked(struct eg_sessions *s, struct sess *e, json_t *c)
{
	struct sess *old = find_locked(s, e->id);

	if (old) {
		old->refs++;
		json_decref(c);
		return old;
	}
	if (s->n >= MAX_CACHED) {
		e->refs++; /* not cached: only the caller holds it */
		json_decref(c);
		return e;
	}
	e->next = s->b[bucket(e->id)];
	s->b[bucket(e->id)] = e;
	s->n++;
	e->refs += 2; /* cache + caller */
	if (c)
		ring_put_locked(s, e, c);
	return e;
}

/* --- ticket and keys ------------------------------------------------------ */

/* base64url's alphabet, one lookup a byte (a ticket's 65 are read on every request) */
static bool b64url_byte[256];

__attribute__((constructor)) static void b64url_table(void)
{
	for (int c = 0; c < 256; c++)
		b64url_byte[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
				 c == '_';
}

static bool b64url_chars(const char *p, size_t n)
{
	bool ok = true;
	for (size_t i = 0; i < n; i++)
		ok &= b64url_byte[(unsigned char)p[i]];
	return ok;
}

struct ticket {
	char idpart[ID_B64 + 1];
	char secret[SECRET_B64 + 1];
	char id[EG_SESSION_ID_LEN + 1];
	uint8_t idraw[32];
	uint8_t secret_hash[32];
	int8_t genuine; /* the id part is our MAC of the secret (1), not (0), not computed (-1) */
};

/* The id part of a ticket: base64url of the first 16 bytes of HMAC(tkey, secret). */
static void ticket_idpart(const struct eg_sessions *s, const char *secret, char out[ID_B64 + 1])
{
	uint8_t mac[32];

	eg_hmac_sha256(s->tkey, sizeof(s->tkey), secret, SECRET_B64, mac);
	b64url_encode(mac, ID_BYTES, out);
	out[ID_B64] = 0;
	OPENSSL_cleanse(mac, sizeof(mac));
}

/* A ticket's store id, SHA-256 of its id part: a pure function of the id part, which a
 * browser sends on every request, so a thread remembers the last few (no secret among
 * them: the id part is the ticket's public half, the id is what the store and logs name). */
#define ID_MEMO 8
static __thread struct id_memo {
	bool used;
	char idpart[ID_B64];
	uint8_t idraw[32];
	char id[EG_SESSION_ID_LEN + 1];
} id_memo[ID_MEMO];

static void ticket_id(struct ticket *out)
{
	struct id_memo *m = &id_memo[((unsigned char)out->idpart[0] ^ (unsigned char)out->idpart[1]) % ID_MEMO];
	if (!m->used || !ct_equal_words(m->idpart, out->idpart, ID_B64)) {
		memcpy(m->idpart, out->idpart, ID_B64);
		eg_sha256(out->idpart, ID_B64, m->idraw);
		hex_encode(m->idraw, 32, m->id);
		m->id[EG_SESSION_ID_LEN] = '\0';
		m->used = true;
	}
	memcpy(out->idraw, m->idraw, 32);
	memcpy(out->id, m->id, sizeof(out->id));
}

static int parse_ticket(const struct eg_sessions *s, const char *t, struct ticket *out)
{
	(void)s;
	if (!t || strlen(t) != ID_B64 + 1 + SECRET_B64 || t[ID_B64] != '.' ||
	    !b64url_chars(t, ID_B64) || !b64url_chars(t + ID_B64 + 1, SECRET_B64))
		return -1;
	memcpy(out->idpart, t, ID_B64);
	out->idpart[ID_B64] = 0;
	memcpy(out->secret, t + ID_B64 + 1, SECRET_B64);
	out->secret[SECRET_B64] = 0;
	ticket_id(out);
	eg_sha256(out->secret, SECRET_B64, out->secret_hash);
	out->genuine = -1;
	return 0;
}

/* Whether this deployment issued the ticket. Computed only when needed (a cache miss,
 * sign-out): a cached session is authenticated by its secret's hash already. */
static bool ticket_genuine(const struct eg_sessions *s, struct ticket *t)
{
	char want[ID_B64 + 1];

	if (t->genuine < 0) {
		ticket_idpart(s, t->secret, want);
		t->genuine = ct_equal(want, t->idpart, ID_B64);
	}
	return t->genuine == 1;
}

static void ticket_wipe(struct ticket *t)
{
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
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

/* The associated data of a record's seal: the store key and every clear field, so
 * a store writer can neither move a record to another id nor change its subject, sid,
 * lifetimes or last use (issue 17). JSON-encoded strings keep the fields apart. */
static char *rec_aad(const char *id, const char *sub, const char *sid, int64_t created, int64_t last,
		     int64_t exp, int64_t token_exp)
{
	json_t *js = jstr_or_null(sub), *jd = jstr_or_null(sid);
	char *ss = json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT), *sd = json_dumps(jd, JSON_ENCODE_ANY | JSON_COMPACT);
	char *aad = ss && sd ? xasprintf("%s|v%d|%s|%s|%lld|%lld|%lld|%lld", id, REC_VERSION, ss, sd,
					 (long long)created, (long long)last, (long long)exp,
					 (long long)token_exp)
			     : NULL;

	json_decref(js);
	json_decref(jd);
	free(ss);
	free(sd);
	return aad;
}

/* Writes the record: metadata in clear but bound into the seal's associated data,
 * tokens and claims sealed. */
static int rec_write(struct eg_daemon *d, const char *id, const uint8_t key[EG_SEAL_KEY_LEN],
		     const struct rec *r)
{
	json_t *inner, *rec;
	char *itext, *sealed, *rtext, *aad;
	int rc = -1;

	/* An absent token is left out rather than written as null (smaller record;
	 * a reader takes either as "none", older versions included). */
	inner = json_pack("{s:O}", "claims", r->claims ? r->claims : json_null());
	if (inner && r->id_token)
		json_object_set_new(inner, "id_token", json_string(r->id_token));
	if (inner && r->access_token)
		json_object_set_new(inner, "access_token", json_string(r->access_token));
	if (inner && r->refresh_token)
		json_object_set_new(inner, "refresh_token", json_string(r->refresh_token));
	itext = inner ? json_dumps(inner, JSON_COMPACT) : NULL;
	json_decref(inner);
	if (!itext)
		return -1;
	aad = rec_aad(id, r->sub, r->sid, r->created, r->last, r->exp, r->token_exp);
	sealed = aad ? eg_seal(key, aad, itext, strlen(itext)) : NULL;
	free(aad);
	OPENSSL_cleanse(itext, strlen(itext));
	free(itext);
	if (!sealed)
		return -1;
	rec = json_pack("{s:i, s:o, s:o, s:I, s:I, s:I, s:I, s:s}", "v", REC_VERSION, "sub",
			jstr_or_null(r->sub), "sid", jstr_or_null(r->sid), "created",
			(json_int_t)r->created, "last", (json_int_t)r->last, "exp",
			(json_int_t)r->exp, "token_exp", (json_int_t)r->token_exp, "data", sealed);
	free(sealed);
	rtext = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	if (rtext) {
		rc = eg_store_put(d->store, EG_NS_SESSION, id, rtext, strlen(rtext),
				  store_expiry(d->cfg, r->last, r->exp));
		free(rtext);
	}
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

/* rec_read results */
#define R_OK 0
#define R_ABSENT (-1)  /* no record, or the session was revoked */
#define R_REFUSED (-2) /* the ticket does not open it, or its metadata does not verify */
#define R_STORE (-3)   /* the store could not be read */

/* A record's clear string field: absent or null reads as NULL; -1 any other type. */
static int meta_str(const json_t *rec, const char *k, const char **out)
{
	const json_t *v = json_object_get(rec, k);

	*out = json_string_value(v);
	return !v || json_is_null(v) || json_is_string(v) ? 0 : -1;
}

/* Opens a stored record (already parsed) with key: its sealed part must verify
 * together with the clear metadata. Returns the plaintext (malloc'd) or NULL. */
static char *rec_open(const char *id, const json_t *rec, const uint8_t key[EG_SEAL_KEY_LEN], size_t *ptlen)
{
	const char *data = json_string_value(json_object_get(rec, "data")), *sub, *sid;
	char *aad, *pt;

	if (!data || get_int(rec, "v") != REC_VERSION || meta_str(rec, "sub", &sub) || meta_str(rec, "sid", &sid))
		return NULL; /* v1 records (metadata outside the seal) are refused */
	aad = rec_aad(id, sub, sid, get_int(rec, "created"), get_int(rec, "last"), get_int(rec, "exp"),
		      get_int(rec, "token_exp"));
	pt = aad ? eg_unseal(key, aad, data, strlen(data), ptlen) : NULL;
	free(aad);
	return pt;
}

/* Whether the session was revoked: a tombstone here (recent or pending) or the
 * revoked marker in the store. 1 yes, 0 no, -1 the store could not be read. */
static int is_revoked(struct eg_daemon *d, const char *id)
{
	void *v = NULL;
	int rc;

	if (eg_tombs_has(d->sessions->tombs, id))
		return 1;
	rc = eg_store_get(d->store, EG_NS_REVOKED, id, &v, NULL, NULL);
	free(v);
	return rc;
}

/* Reads a record from the store and opens it with the ticket. R_OK (r filled; key,
 * when not NULL, receives the record key) or R_ABSENT/R_REFUSED/R_STORE. Every load
 * checks the revocation tombstones and the store's revoked marker, so a record that
 * came back (a racing write-back, a store restored from a backup) is never served. */
static int rec_read(struct eg_daemon *d, const struct ticket *t, struct rec *r,
		    uint8_t key_out[EG_SEAL_KEY_LEN])
{
	uint8_t key[EG_SEAL_KEY_LEN];
	void *val = NULL;
	size_t len = 0, ptlen;
	json_t *rec = NULL, *inner = NULL;
	char *pt;
	int rc = R_REFUSED, g;

	memset(r, 0, sizeof(*r));
	g = eg_store_get(d->store, EG_NS_SESSION, t->id, &val, &len, NULL);
	if (g != 1)
		return g < 0 ? R_STORE : R_ABSENT;
	rec = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	free(val);
	if (!rec || derive_key(t, key))
		goto out;
	pt = rec_open(t->id, rec, key, &ptlen);
	if (!pt)
		goto out; /* wrong secret, or metadata changed in the store */
	inner = json_loadb(pt, ptlen, JSON_REJECT_DUPLICATES, NULL);
	OPENSSL_cleanse(pt, ptlen);
	free(pt);
	if (!json_is_object(inner))
		goto out;
	r->claims = json_incref(json_object_get(inner, "claims"));
	if (!json_is_object(r->claims)) {
		json_decref(r->claims);
		r->claims = json_object();
	}
	r->id_token = dup_str(inner, "id_token");
	r->access_token = dup_str(inner, "access_token");
	r->refresh_token = dup_str(inner, "refresh_token");
	r->sub = dup_str(rec, "sub");
	r->sid = dup_str(rec, "sid");
	r->created = get_int(rec, "created");
	r->last = get_int(rec, "last");
	r->exp = get_int(rec, "exp");
	r->token_exp = get_int(rec, "token_exp");
	g = is_revoked(d, t->id);
	if (g != 0) {
		rec_clear(r);
		rc = g < 0 ? R_STORE : R_ABSENT;
		goto out;
	}
	if (key_out)
		memcpy(key_out, key, EG_SEAL_KEY_LEN);
	rc = R_OK;
out:
	OPENSSL_cleanse(key, sizeof(key));
	if (inner) {
		/* the token strings inside the parsed plaintext */
		json_t *v;
		const char *k;
		json_object_foreach(inner, k, v)
			if (json_is_string(v) && strcmp(k, "claims") != 0)
				OPENSSL_cleanse((void *)json_string_value(v), json_string_length(v));
	}
	json_decref(inner);
	json_decref(rec);
	return rc;
}

/* Last-seen write-back: "last" is bound into the seal, so the sealed part is opened
 * with the ticket's key and sealed again over the new metadata (tokens untouched). */
static int rec_touch(struct eg_daemon *d, const struct ticket *t, int64_t last)
{
	uint8_t key[EG_SEAL_KEY_LEN];
	void *val = NULL;
	size_t len = 0, ptlen = 0;
	json_t *rec;
	char *text = NULL, *pt = NULL, *aad = NULL, *sealed = NULL;
	const char *sub = NULL, *sid = NULL;
	int rc = -1;

	if (eg_store_get(d->store, EG_NS_SESSION, t->id, &val, &len, NULL) != 1)
		return -1;
	rec = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	free(val);
	if (!json_is_object(rec) || derive_key(t, key))
		goto out;
	pt = rec_open(t->id, rec, key, &ptlen);
	if (!pt)
		goto out;
	meta_str(rec, "sub", &sub);
	meta_str(rec, "sid", &sid);
	aad = rec_aad(t->id, sub, sid, get_int(rec, "created"), last, get_int(rec, "exp"), get_int(rec, "token_exp"));
	sealed = aad ? eg_seal(key, aad, pt, ptlen) : NULL;
	if (!sealed)
		goto out;
	json_object_set_new(rec, "last", json_integer(last));
	json_object_set_new(rec, "data", json_string(sealed));
	text = json_dumps(rec, JSON_COMPACT);
	if (text)
		rc = eg_store_put(d->store, EG_NS_SESSION, t->id, text, strlen(text),
				  store_expiry(d->cfg, last, get_int(rec, "exp")));
out:
	OPENSSL_cleanse(key, sizeof(key));
	if (pt) {
		OPENSSL_cleanse(pt, ptlen);
		free(pt);
	}
	free(aad);
	free(sealed);
	free(text);
	json_decref(rec);
	return rc;
}

/* A cache entry for a record (claims as compact text; no token). */
static struct sess *sess_from_rec(const struct ticket *t, const struct rec *r)
{
	char *text = json_dumps(r->claims, JSON_COMPACT);
	struct sess *e;

	if (!text)
		return NULL;
	e = sess_alloc();
	memcpy(e->id, t->idraw, 32);
	memcpy(e->secret_hash, t->secret_hash, 32);
	e->claims_text = text;
	e->has_rt = r->refresh_token != NULL;
	e->last_seen = e->last_persist = r->last;
	e->exp_abs = r->exp;
	e->token_exp = r->token_exp;
	e->checked_at = now_realtime_s();
	return e;
}
/* --- ending sessions ----------------------------------------------------------- */

enum durability { DUR_STORE, DUR_LOCAL, DUR_NONE };

static void index_del(struct eg_daemon *d, const char *kind, const char *value, const char *id)
{
	char *k = index_key(kind, value, id);

	eg_store_del(d->store, EG_NS_INDEX, k);
	free(k);
}

/* Records a revocation in the store: the revoked marker first (every load checks it),
 * then the record goes; both read back. 0 only when the store holds it. */
static int store_revocation(struct eg_daemon *d, const char *id, const char *reason, const char *sub,
			    const char *sid, int64_t at, int64_t until)
{
	json_t *rev = json_pack("{s:s, s:I, s:o}", "reason", reason ? reason : "revoked", "at", (json_int_t)at,
				"sub", jstr_or_null(sub));
	char *rtext = rev ? json_dumps(rev, JSON_COMPACT) : NULL;
	void *v = NULL;
	int rc = -1;

	json_decref(rev);
	/* ... and the event every other node follows (events.c): the revocation counts as
	 * recorded only once it is published too (with Sentinel: on a replica as well). */
	if (rtext && eg_store_put(d->store, EG_NS_REVOKED, id, rtext, strlen(rtext), until) == 0 &&
	    eg_store_del(d->store, EG_NS_SESSION, id) == 0 &&
	    eg_store_get(d->store, EG_NS_SESSION, id, &v, NULL, NULL) == 0 &&
	    eg_store_get(d->store, EG_NS_REVOKED, id, &v, NULL, NULL) == 1 &&
	    eg_store_publish(d->store, "revoke", id, rtext) == 0)
		rc = 0;
	free(v);
	free(rtext);
	/* Index entries only lead to sessions; a stale one finds no record. Not tried
	 * against a store that just failed (each attempt may wait for its timeout). */
	if (rc == 0 && sub)
		index_del(d, "sub", sub, id);
	if (rc == 0 && sid)
		index_del(d, "sid", sid, id);
	return rc;
}

static void store_failed(struct eg_daemon *d)
{
	__atomic_add_fetch(&d->sessions->store_write_failures, 1, __ATOMIC_RELAXED);
	if (d->metrics)
		eg_metric_inc(d->metrics, "edgegate_store_write_failures_total", "what", "revocation", NULL, NULL, 1);
}

static void pending_gauge(struct eg_daemon *d)
{
	if (d->metrics)
		eg_metric_set(d->metrics, "edgegate_revocations_pending", NULL, NULL,
			      (double)eg_tombs_pending_count(d->sessions->tombs));
}

/* The pending revocations are retried at once (not at the next periodic pass): the
 * store answers again after an outage, or one was just recorded locally while it
 * answers (a WAIT a replica did not confirm in time). */
static void retry_soon(struct eg_sessions *s)
{
	pthread_mutex_lock(&s->mu);
	s->retry_now = true;
	pthread_cond_broadcast(&s->gc_cv);
	pthread_mutex_unlock(&s->mu);
}

static void store_reachable(void *arg)
{
	retry_soon(arg);
}

static void durability_metric(struct eg_daemon *d, enum durability dur)
{
	static const char *const where[] = { "store", "local", "none" };

	if (d->metrics)
		eg_metric_inc(d->metrics, "edgegate_revocations_recorded_total", "where", where[dur], NULL, NULL, 1);
}

/* Ends a session: a tombstone in memory first (a load racing with this cannot put it
 * back into the cache), the cache entry, its live flows, then the store. When the
 * store does not take it, the tombstone is made durable in state_dir and retried.
 * Returns 1 if a session existed (or may have: the store could not be read). */
static int end_session(struct eg_daemon *d, const char *id, const char *reason, enum durability *dur)
{
	struct eg_sessions *s = d->sessions;
	void *val = NULL;
	size_t len = 0;
	int64_t now = now_realtime_s();
	json_t *rec = NULL;
	int found;

	*dur = DUR_STORE;
	found = eg_store_get(d->store, EG_NS_SESSION, id, &val, &len, NULL);
	if (found == 1)
		rec = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	free(val);
	/* a store that cannot say: revoke anyway (fail closed) */
	found = found != 0;
	const char *sub = json_string_value(json_object_get(rec, "sub"));
	const char *sid = json_string_value(json_object_get(rec, "sid"));
	/* The revoked marker outlives any record this id could still have: its absolute end
	 * (sealed, cannot be extended), or the idle deadline of a last-seen write-back that
	 * races this revocation, whichever comes first; unknown: the whole lifetime. */
	int64_t until = now + lifetime_s(d->cfg), exp_abs = get_int(rec, "exp");
	if (rec) {
		until = now + idle_s(d->cfg) + 60;
		if (exp_abs <= now)
			until = now + 60; /* over anyway: its sealed end says so */
		else if (exp_abs < until)
			until = exp_abs;
	}
	uint8_t raw[32];
	bool cached = false;
	if (hex_decode(id, raw, sizeof(raw)) == 0) {
		pthread_mutex_lock(&s->mu);
		cached = find_locked(s, raw) != NULL;
		pthread_mutex_unlock(&s->mu);
	}
	if (!found && !cached) {
		json_decref(rec);
		return 0;
	}
	eg_tombs_note(s->tombs, id, reason, sub, now, until);
	if (cached) {
		pthread_mutex_lock(&s->mu);
		struct sess *e = find_locked(s, raw);
		if (e)
			unlink_locked(s, e);
		pthread_mutex_unlock(&s->mu);
	}
	/* Its live connections die now (kernel maps + socket destroy); no lock held. */
	eg_revoke_session_flows(d, id, reason);
	if (store_revocation(d, id, reason, sub, sid, now, until) == 0) {
		eg_tombs_confirm(s->tombs, id);
	} else if (reason && strcmp(reason, "expired") == 0) {
		/* an expired record cannot be used anyway (its lifetimes are sealed) */
		store_failed(d);
	} else {
		store_failed(d);
		*dur = eg_tombs_persist(s->tombs, id) == 0 ? DUR_LOCAL : DUR_NONE;
		if (*dur == DUR_LOCAL)
			log_warn("session %.12s…: the store did not take the revocation; recorded in state_dir, "
				 "retrying", id);
		else
			log_err("session %.12s…: revocation recorded neither in the store nor in state_dir", id);
		pending_gauge(d);
		/* the prober may have seen the store answer again before this was recorded */
		if (!eg_store_down_since_ms(d->store))
			retry_soon(s);
	}
	durability_metric(d, *dur);
	json_decref(rec);
	log_info("session %.12s… ended (%s)", id, reason ? reason : "revoked");
	metric(d, "ended");
	return 1;
}

static void result_add(struct eg_revoke_result *res, int ended, enum durability dur)
{
	if (!res || !ended)
		return;
	res->ended++;
	res->local += dur == DUR_LOCAL;
	res->failed += dur == DUR_NONE;
}

const char *eg_revoke_result_durability(const struct eg_revoke_result *res)
{
	if (res->failed || res->lookup_failed)
		return "none";
	return res->local ? "local" : "store";
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

/* 0 ok, -1 the store could not list them. */
static int ids_by_index(struct eg_daemon *d, const char *kind, const char *value,
			struct idlist *l)
{
	char *prefix = index_key(kind, value, NULL);
	int rc;

	l->prefix = prefix;
	rc = eg_store_foreach_prefix(d->store, EG_NS_INDEX, prefix, collect_ids, l);
	l->prefix = NULL;
	free(prefix);
	return rc == 0 ? 0 : -1;
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
	return eg_session_revoke_ex(d, session_id, sub, sid, reason, NULL);
}

int eg_session_revoke_ex(struct eg_daemon *d, const char *session_id, const char *sub,
			 const char *sid, const char *reason, struct eg_revoke_result *res)
{
	struct idlist l = { 0 };
	int count = 0, lf = 0;
	enum durability dur;

	if (res)
		memset(res, 0, sizeof(*res));
	if (!d->sessions || (!session_id && !sub && !sid))
		return -1;
	if (session_id && *session_id) {
		l.prefix = "";
		collect_ids(session_id, NULL, 0, 0, &l);
	}
	if (sid)
		lf = ids_by_index(d, "sid", sid, &l);
	else if (sub)
		lf = ids_by_index(d, "sub", sub, &l);
	if (lf && res)
		res->lookup_failed = true; /* not acknowledged: the caller answers an error */
	for (size_t i = 0; i < l.n; i++) {
		/* sid and sub together: only sessions of that subject (logout_token rule) */
		if (!(sid && sub && !record_sub_is(d, l.v[i], sub))) {
			int e = end_session(d, l.v[i], reason, &dur);
			count += e;
			result_add(res, e, dur);
		}
		free(l.v[i]);
	}
	free(l.v);
	return count;
}

int eg_session_end_ticket(struct eg_daemon *d, const char *ticket, const char *reason,
			  char **id_token)
{
	return eg_session_end_ticket_ex(d, ticket, reason, id_token, NULL);
}

int eg_session_end_ticket_ex(struct eg_daemon *d, const char *ticket, const char *reason,
			     char **id_token, struct eg_revoke_result *res)
{
	struct eg_sessions *s = d->sessions;
	struct ticket t;
	struct rec r;
	struct sess *e;
	enum durability dur = DUR_STORE;
	int found = 0, rr = R_ABSENT;

	if (id_token)
		*id_token = NULL;
	if (res)
		memset(res, 0, sizeof(*res));
	if (!s || parse_ticket(s, ticket, &t))
		return 0;
	/* Only the holder of the secret may end (and learn the id_token of) a session. */
	pthread_mutex_lock(&s->mu);
	e = find_locked(s, t.idraw);
	if (e && ct_equal_words(e->secret_hash, t.secret_hash, 32))
		found = 1;
	pthread_mutex_unlock(&s->mu);
	/* The id_token is only in the sealed record: the ticket opens it. */
	if ((!found || id_token) && (rr = rec_read(d, &t, &r, NULL)) == R_OK) {
		found = 1;
		if (id_token && r.id_token)
			*id_token = xstrdup(r.id_token);
		rec_clear(&r);
	}
	/* The store cannot say whether a genuine ticket's session lives: end it anyway. */
	if (!found && rr == R_STORE && (ticket_genuine(s, &t) || now_realtime_s() < s->legacy_until))
		found = 1;
	if (found) {
		found = end_session(d, t.id, reason, &dur);
		result_add(res, found, dur);
	}
	ticket_wipe(&t);
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
	uint8_t sec[SECRET_BYTES], key[EG_SEAL_KEY_LEN];
	char tbuf[EG_TICKET_MAX], idb64[ID_B64 + 1];
	struct ticket t;
	struct sess *e;
	json_t *empty = NULL;
	int64_t now = now_realtime_s();
	int rc;

	if (!s || ticket_len < ID_B64 + SECRET_B64 + 2)
		return -1;
	/* A fresh secret at every login (no session fixation); the id is its MAC. */
	if (random_bytes(sec, sizeof(sec)))
		return -1;
	b64url_encode(sec, sizeof(sec), tbuf + ID_B64 + 1);
	OPENSSL_cleanse(sec, sizeof(sec));
	ticket_idpart(s, tbuf + ID_B64 + 1, idb64);
	memcpy(tbuf, idb64, ID_B64);
	tbuf[ID_B64] = '.';
	if (parse_ticket(s, tbuf, &t) || !ticket_genuine(s, &t) || derive_key(&t, key)) {
		OPENSSL_cleanse(tbuf, sizeof(tbuf));
		ticket_wipe(&t);
		return -1;
	}
	/* Borrowed: nothing in r is freed here. */
	struct rec r = {
		.claims = in->claims ? in->claims : (empty = json_object()),
		.sub = in->sub,
		.sid = in->sid,
		.id_token = in->id_token,
		.access_token = in->access_token,
		.refresh_token = in->refresh_token,
		.created = now,
		.last = now,
		.exp = now + lifetime_s(d->cfg),
		.token_exp = in->token_exp,
	};
	rc = rec_write(d, t.id, key, &r);
	OPENSSL_cleanse(key, sizeof(key));
	e = rc ? NULL : sess_from_rec(&t, &r);
	json_decref(empty);
	if (!e) {
		OPENSSL_cleanse(tbuf, sizeof(tbuf));
		ticket_wipe(&t);
		return -1;
	}
	e->checked_at = now;
	if (in->sub)
		put_index(d, "sub", in->sub, t.id, r.exp);
	if (in->sid)
		put_index(d, "sid", in->sid, t.id, r.exp);
	snprintf(ticket, ticket_len, "%s", tbuf);
	OPENSSL_cleanse(tbuf, sizeof(tbuf));
	ticket_wipe(&t);
	if (session_id)
		memcpy(session_id, t.id, EG_SESSION_ID_LEN + 1);
	/* Claims are parsed on the first verdict, not here: a login does not push a
	 * session that is in use out of the parsed ring. */
	pthread_mutex_lock(&s->mu);
	struct sess *c = insert_locked(s, e, NULL);
	sess_put_locked(s, c); /* drop the caller reference: the cache keeps it */
	pthread_mutex_unlock(&s->mu);
	metric(d, "created");
	return 0;
}

/* --- lookup and refresh --------------------------------------------------------- */

static void refresh_done(struct eg_sessions *s, struct sess *e)
{
	/* caller holds the stripe */
	e->refreshing = false;
	pthread_cond_broadcast(&s->scv[stripe(e)]);
}

/* Refreshes e's tokens (the caller won the single-flight; t is the request's
 * ticket: it opens the record that holds the refresh token). 0 ok, 1 another
 * node refreshes, -1 failed (the session ends). */
static int do_refresh(struct eg_daemon *d, struct sess *e, const struct ticket *t)
{
	struct eg_sessions *s = d->sessions;
	struct eg_session_new out = { 0 };
	uint8_t key[EG_SEAL_KEY_LEN];
	struct rec r;
	char *lock = NULL;
	int rc;

	if (rec_read(d, t, &r, key)) {
		pthread_mutex_lock(smu(s, e));
		refresh_done(s, e);
		pthread_mutex_unlock(smu(s, e));
		return -1; /* the record is gone or does not open: nothing to refresh with */
	}
	if (!r.refresh_token) {
		pthread_mutex_lock(smu(s, e));
		e->has_rt = false;
		refresh_done(s, e);
		pthread_mutex_unlock(smu(s, e));
		rec_clear(&r);
		OPENSSL_cleanse(key, sizeof(key));
		return 0;
	}
	if (s->shared) {
		/* Other nodes share the refresh token (rotation): one refresher cluster-wide. */
		lock = xasprintf("refresh:%s", t->id);
		if (eg_store_add(d->store, EG_NS_META, lock, "1", 1, now_realtime_s() + 30) != 1) {
			free(lock);
			rec_clear(&r);
			OPENSSL_cleanse(key, sizeof(key));
			pthread_mutex_lock(smu(s, e));
			refresh_done(s, e);
			pthread_mutex_unlock(smu(s, e));
			return 1; /* another node refreshes; its result arrives via recheck_shared */
		}
	}
	rc = s->refresh(d, r.refresh_token, r.sub, &out);
	if (rc == 0) {
		if (out.claims) {
			json_decref(r.claims);
			r.claims = out.claims; /* replaced, never mutated: readers hold refs */
			out.claims = NULL;
		}
		if (out.id_token) {
			wipe_free(r.id_token);
			r.id_token = out.id_token;
			out.id_token = NULL;
		}
		if (out.access_token) {
			wipe_free(r.access_token);
			r.access_token = out.access_token;
			out.access_token = NULL;
		}
		if (out.refresh_token) { /* rotation: keep the new one */
			wipe_free(r.refresh_token);
			r.refresh_token = out.refresh_token;
			out.refresh_token = NULL;
		}
		r.token_exp = out.token_exp;
		/* New claims first: waiters read them as soon as refreshing drops. */
		set_claims(s, e, json_incref(r.claims));
	}
	pthread_mutex_lock(smu(s, e));
	if (rc == 0) {
		e->token_exp = r.token_exp;
		e->has_rt = r.refresh_token != NULL;
		r.last = e->last_seen;
		if (!__atomic_load_n(&e->dead, __ATOMIC_ACQUIRE)) {
			if (rec_write(d, t->id, key, &r))
				log_warn("session: could not persist refreshed session");
			else
				e->last_persist = r.last;
		}
		metric(d, "refreshed");
	} else {
		metric(d, "refresh_failed");
	}
	refresh_done(s, e);
	pthread_mutex_unlock(smu(s, e));
	rec_clear(&r);
	OPENSSL_cleanse(key, sizeof(key));
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
	struct eg_sessions *s = d->sessions;
	struct rec r;
	bool newer;
	int rr = rec_read(d, t, &r, NULL);

	if (rr != R_OK)
		return rr;
	pthread_mutex_lock(smu(s, e));
	newer = !e->refreshing && r.token_exp > e->token_exp;
	if (newer) {
		e->token_exp = r.token_exp;
		e->has_rt = r.refresh_token != NULL;
	}
	if (r.last > e->last_seen)
		e->last_seen = r.last;
	e->checked_at = now;
	pthread_mutex_unlock(smu(s, e));
	if (newer)
		set_claims(s, e, json_incref(r.claims));
	rec_clear(&r);
	return 0;
}

/* Outage behaviour (docs/sessions.md, "Several hosts"): while the shared store cannot be
 * read, a session this node holds in memory, last confirmed by the store less than
 * store.outage_grace ago, is still served. A revocation here removed it from memory and
 * left a tombstone; one decided on another node during the outage reaches this node
 * only when the store is back (or the grace ends): that is the bound. */
static bool outage_grace(struct eg_daemon *d, struct sess *e, int rr, int64_t now)
{
	int64_t grace = d->cfg->store.outage_grace_s;

	if (rr != R_STORE || grace <= 0 || __atomic_load_n(&e->dead, __ATOMIC_ACQUIRE))
		return false;
	if (now - __atomic_load_n(&e->checked_at, __ATOMIC_RELAXED) >= grace)
		return false;
	metric(d, "outage_grace");
	return true;
}

/* The cached session of t, loading it from the store on a miss. NULL with *why set
 * (an enum eg_session_result) when there is none. */
static struct sess *lookup(struct eg_daemon *d, struct ticket *t, int *why, enum eg_store_use use)
{
	struct eg_sessions *s = d->sessions;
	struct sess *e, *n;
	struct rec r;
	int rr;

	pthread_mutex_lock(&s->mu);
	e = find_locked(s, t->idraw);
	if (e)
		e->refs++;
	pthread_mutex_unlock(&s->mu);
	if (!e) {
		if (!ticket_genuine(s, t) && now_realtime_s() >= s->legacy_until) {
			/* Not issued here: no store read for it, and counted as an attack. */
			metric(d, "forged");
			*why = EG_SESSION_FORGED;
			return NULL;
		}
		if (use != EG_STORE_USE_ANY) {
			/* not in memory: only the store knows it */
			if (use == EG_STORE_USE_DOWN)
				metric(d, "store_error");
			*why = use == EG_STORE_USE_DOWN ? EG_SESSION_STORE_ERROR : EG_SESSION_NEEDS_STORE;
			return NULL;
		}
		rr = rec_read(d, t, &r, NULL);
		n = rr == R_OK ? sess_from_rec(t, &r) : NULL;
		if (n && s->load_hook)
			s->load_hook(d, t->id, s->load_hook_arg);
		if (!n) {
			rec_clear(&r);
			metric(d, rr == R_STORE ? "store_error" : rr == R_REFUSED ? "refused" : "miss");
			if (rr == R_REFUSED && t->genuine == 1)
				log_warn("session %.12s…: stored record does not verify (changed in the store, or "
					 "written before metadata was sealed); refused", t->id);
			*why = rr == R_STORE ? EG_SESSION_STORE_ERROR : EG_SESSION_NONE;
			return NULL;
		}
		pthread_mutex_lock(&s->mu);
		/* The reload race: a revocation that began after our read left a tombstone
		 * before it unlinked the cache; inserting now would bring the session back. */
		if (eg_tombs_has(s->tombs, t->id)) {
			pthread_mutex_unlock(&s->mu);
			sess_free(s, n);
			rec_clear(&r);
			metric(d, "revoked_during_load");
			*why = EG_SESSION_NONE;
			return NULL;
		}
		/* the claims were just parsed: keep them (the session is in use) */
		e = insert_locked(s, n, json_incref(r.claims));
		if (e != n)
			sess_free(s, n); /* lost a race with another loader */
		pthread_mutex_unlock(&s->mu);
		rec_clear(&r);
	}
	/* Constant time: the ticket secret must match the cached hash. */
	if (!ct_equal_words(e->secret_hash, t->secret_hash, 32)) {
		pthread_mutex_lock(&s->mu);
		sess_put_locked(s, e);
		pthread_mutex_unlock(&s->mu);
		metric(d, "bad_secret");
		*why = EG_SESSION_FORGED;
		return NULL;
	}
	return e;
}

static void release(struct eg_daemon *d, struct sess *e)
{
	pthread_mutex_lock(&d->sessions->mu);
	sess_put_locked(d->sessions, e);
	pthread_mutex_unlock(&d->sessions->mu);
}

/* A new reference to e's claims, parsing them when they left the ring; drops the
 * caller's reference to e. NULL when the session ended meanwhile. */
static json_t *claims_ref_release(struct eg_sessions *s, struct sess *e)
{
	json_t *c = NULL;
	char *text;
	uint32_t gen;

	pthread_mutex_lock(&s->mu);
	if (__atomic_load_n(&e->dead, __ATOMIC_ACQUIRE))
		goto out;
	if (e->claims) {
		e->hot = true;
		c = json_incref(e->claims);
		goto out;
	}
	text = xstrdup(e->claims_text);
	gen = e->gen;
	pthread_mutex_unlock(&s->mu);
	/* Our own serialisation of an object that was validated when it came in. */
	c = json_loads(text, JSON_ALLOW_NUL, NULL);
	free(text);
	if (!json_is_object(c)) {
		json_decref(c);
		c = json_object();
	}
	pthread_mutex_lock(&s->mu);
	if (__atomic_load_n(&e->dead, __ATOMIC_ACQUIRE)) {
		json_decref(c);
		c = NULL;
	} else if (!e->claims && e->gen == gen) {
		ring_put_locked(s, e, json_incref(c));
	}
out:
	sess_put_locked(s, e);
	pthread_mutex_unlock(&s->mu);
	return c;
}

static bool persist_due(const struct sess *e, int64_t now)
{
	return now - e->last_persist >= PERSIST_EVERY_S && !__atomic_load_n(&e->dead, __ATOMIC_ACQUIRE);
}

/* Last seen now; written back to the store at most once a minute (idle deadline), unless
 * the store must not be used now (the write-back is left to the next request that may).
 * Caller holds the stripe; a dead session is not written (it was removed). */
static void touch_locked(struct eg_daemon *d, struct sess *e, const struct ticket *t, int64_t now, bool may_store)
{
	if (now > e->last_seen)
		e->last_seen = now;
	if (!may_store || !persist_due(e, now))
		return;
	if (rec_touch(d, t, now))
		log_debug("session %.12s…: last-seen write-back failed", t->id);
	e->last_persist = now; /* no retry per request: the next one is a minute away */
}

/* What the cached session e needs before it can be served (the stripe held): the store
 * reasons a pass that must not use the store stops short for. */
struct needs {
	bool expired;
	bool refresh;  /* this request would refresh the tokens (or wait for another's refresh) */
	bool persist;  /* the last-seen write-back is due */
};

static struct needs needs_locked(struct eg_daemon *d, const struct sess *e, int64_t now)
{
	const struct eg_config *c = d->cfg;
	int64_t before = c->oidc.refresh_before_s > 0 ? c->oidc.refresh_before_s : 60;
	struct needs n = { .expired = now >= e->exp_abs || now >= e->last_seen + idle_s(c) };

	if (!n.expired && d->sessions->refresh && e->has_rt && e->token_exp && e->token_exp - now <= before)
		n.refresh = !e->refreshing || e->token_exp <= now;
	n.persist = persist_due(e, now);
	return n;
}

/* A cached session when the store must not be used (docs/sessions.md, "Several hosts"):
 * EG_STORE_USE_NONE stops short (EG_SESSION_NEEDS_STORE) whenever the full path would
 * read or write the store; EG_STORE_USE_DOWN decides as during an outage without asking
 * it: an expired session has ended, tokens that expired cannot be refreshed now (fail
 * closed, the session stays), a due write-back waits for the next request. 1: serve e
 * (touched); otherwise *rc is set and e released. */
static int serve_without_store(struct eg_daemon *d, struct sess *e, const struct ticket *t, int64_t now,
			       enum eg_store_use use, int *rc)
{
	struct eg_sessions *s = d->sessions;
	pthread_mutex_t *mu = smu(s, e);

	pthread_mutex_lock(mu);
	struct needs n = needs_locked(d, e, now);
	bool stop = use == EG_STORE_USE_NONE ? n.expired || n.refresh || n.persist
					     : n.expired || (n.refresh && e->token_exp <= now);
	if (!stop)
		touch_locked(d, e, t, now, false);
	pthread_mutex_unlock(mu);
	if (!stop)
		return 1;
	release(d, e);
	*rc = use == EG_STORE_USE_NONE ? EG_SESSION_NEEDS_STORE
	      : n.expired		 ? EG_SESSION_NONE
					 : EG_SESSION_STORE_ERROR;
	return 0;
}

int eg_session_identity_ticket_ex(struct eg_daemon *d, const char *ticket, struct eg_identity *id,
				  enum eg_store_use use)
{
	struct eg_sessions *s = d->sessions;
	const struct eg_config *c = d->cfg;
	struct ticket t;
	struct sess *e;
	json_t *claims;
	int64_t now = now_realtime_s();
	int64_t before = c->oidc.refresh_before_s > 0 ? c->oidc.refresh_before_s : 60;
	bool expired, mine = false;
	pthread_mutex_t *mu;
	enum durability dur;
	int rc = EG_SESSION_NONE, rr;

	if (!s || !ticket)
		return EG_SESSION_NONE;
	if (parse_ticket(s, ticket, &t))
		return EG_SESSION_FORGED; /* not even the shape of a ticket */
	/* A store known to be down fails every command at once: decide here what it would
	 * (no hop to a store worker for each request of an outage) */
	if (use == EG_STORE_USE_NONE && eg_store_down_since_ms(d->store))
		use = EG_STORE_USE_DOWN;
	e = lookup(d, &t, &rc, use);
	if (!e)
		goto out;
	rc = EG_SESSION_NONE;
	if (s->shared && now - __atomic_load_n(&e->checked_at, __ATOMIC_RELAXED) >= RECHECK_SHARED_S) {
		if (use == EG_STORE_USE_NONE) {
			release(d, e);
			rc = EG_SESSION_NEEDS_STORE;
			goto out;
		}
		/* not asked (DOWN): as if it could not be read, but not evicted for that */
		rr = use == EG_STORE_USE_DOWN ? R_STORE : recheck_shared(d, e, &t, now);
		if (rr != R_OK && !outage_grace(d, e, rr, now)) {
			/* gone, revoked or unreadable: never served from the cache (fail closed) */
			pthread_mutex_lock(&s->mu);
			if (!e->dead && use == EG_STORE_USE_ANY)
				unlink_locked(s, e);
			sess_put_locked(s, e);
			pthread_mutex_unlock(&s->mu);
			if (rr == R_STORE)
				rc = EG_SESSION_STORE_ERROR;
			goto out;
		}
	}
	if (use != EG_STORE_USE_ANY) {
		if (!serve_without_store(d, e, &t, now, use, &rc))
			goto out;
		goto serve;
	}
	mu = smu(s, e);
	pthread_mutex_lock(mu);
	expired = now >= e->exp_abs || now >= e->last_seen + idle_s(c);
	if (!expired && s->refresh && e->has_rt && e->token_exp && e->token_exp - now <= before) {
		if (!e->refreshing) {
			e->refreshing = true;
			mine = true;
		} else if (e->token_exp <= now) {
			/* Token already expired and someone else is refreshing: wait for it. */
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += REFRESH_WAIT_S;
			while (e->refreshing && !__atomic_load_n(&e->dead, __ATOMIC_ACQUIRE))
				if (pthread_cond_timedwait(&s->scv[stripe(e)], mu, &until) ==
				    ETIMEDOUT)
					break;
		}
	}
	if (!expired && !mine)
		touch_locked(d, e, &t, now, true);
	pthread_mutex_unlock(mu);
	if (expired) {
		end_session(d, t.id, "expired", &dur);
		release(d, e);
		goto out;
	}
	if (mine) {
		if (do_refresh(d, e, &t) < 0) {
			end_session(d, t.id, "refresh_failed", &dur);
			release(d, e);
			goto out;
		}
		pthread_mutex_lock(mu);
		touch_locked(d, e, &t, now, true);
		pthread_mutex_unlock(mu);
	}
serve:
	claims = claims_ref_release(s, e); /* e is not ours after this */
	if (!claims)
		goto out;
	id->kind = EG_ID_SESSION;
	id->claims = claims;
	_Static_assert(sizeof(id->session_id) >= sizeof(t.id), "a session id fits the identity");
	memcpy(id->session_id, t.id, sizeof(t.id));
	rc = 0;
out:
	ticket_wipe(&t);
	return rc;
}

int eg_session_identity_ticket(struct eg_daemon *d, const char *ticket, struct eg_identity *id)
{
	return eg_session_identity_ticket_ex(d, ticket, id, EG_STORE_USE_ANY);
}

int eg_session_identity(struct eg_daemon *d, const struct eg_req *r, struct eg_identity *id)
{
	char buf[EG_TICKET_MAX + 8];
	int rc;

	if (!d->sessions)
		return -1;
	if (!eg_req_cookie(r, d->cfg->cookie.name, buf, sizeof(buf)))
		return -1;
	/* Two session cookies: one may have been tossed in by another host of the
	 * domain. Neither is believed (the caller answers 401 for a present cookie). */
	if (eg_req_cookie_count(r, d->cfg->cookie.name) > 1) {
		log_debug("session: the session cookie appears more than once; refused");
		OPENSSL_cleanse(buf, sizeof(buf));
		return -1;
	}
	rc = eg_session_identity_ticket_ex(d, buf, id, r->pass ? r->pass->use : EG_STORE_USE_ANY);
	if (rc == EG_SESSION_NEEDS_STORE)
		r->pass->store_needed = true;
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
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
	char hex[EG_SESSION_ID_LEN + 1];

	pthread_mutex_lock(&s->mu);
	for (int b = 0; b < NBUCKETS; b++)
		for (struct sess *e = s->b[b]; e; e = e->next) {
			pthread_mutex_lock(smu(s, e));
			bool gone = now >= e->exp_abs || now >= e->last_seen + idle_s(d->cfg);
			pthread_mutex_unlock(smu(s, e));
			if (gone) {
				hex_encode(e->id, 32, hex);
				l.prefix = "";
				collect_ids(hex, NULL, 0, 0, &l);
			}
		}
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < l.n; i++) {
		enum durability dur;
		end_session(d, l.v[i], "expired", &dur);
		free(l.v[i]);
	}
	free(l.v);
}

/* --- local revocations waiting for the store --------------------------------------- */

long eg_sessions_retry_tombs(struct eg_daemon *d)
{
	struct eg_sessions *s = d->sessions;
	struct eg_tomb *v;
	size_t n;
	long took = 0;

	if (!s || !eg_tombs_pending_count(s->tombs))
		return 0;
	v = xcalloc(TOMB_RETRY_MAX, sizeof(*v));
	n = eg_tombs_pending(s->tombs, v, TOMB_RETRY_MAX);
	for (size_t i = 0; i < n; i++) {
		if (store_revocation(d, v[i].id, v[i].reason, v[i].sub, NULL, v[i].at, v[i].exp) == 0) {
			eg_tombs_confirm(s->tombs, v[i].id);
			took++;
			log_info("session %.12s…: revocation now recorded in the store", v[i].id);
		} else {
			store_failed(d);
			eg_tomb_clear(&v[i]);
			for (size_t j = i + 1; j < n; j++)
				eg_tomb_clear(&v[j]);
			break; /* the store is still down: next pass */
		}
		eg_tomb_clear(&v[i]);
	}
	free(v);
	pending_gauge(d);
	return took;
}

size_t eg_sessions_tombs_pending(struct eg_daemon *d)
{
	return d->sessions ? eg_tombs_pending_count(d->sessions->tombs) : 0;
}

/* Every second, and at once when the store answers again (store_reachable): pending
 * revocations to the store; old tombstones out. Once a minute: expired sessions. */
static void *gc_main(void *arg)
{
	struct eg_daemon *d = arg;
	struct eg_sessions *s = d->sessions;
	uint64_t last_expire = now_mono_ns();

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		if (!s->retry_now) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&s->gc_cv, &s->mu, &until);
		}
		if (s->stopping)
			break;
		s->retry_now = false;
		pthread_mutex_unlock(&s->mu);
		eg_sessions_retry_tombs(d);
		eg_tombs_sweep(s->tombs, now_realtime_s(), TOMB_MEMORY_S);
		if (now_mono_ns() - last_expire >= 60ull * 1000000000ull) {
			last_expire = now_mono_ns();
			expire_cache(d);
			long n = eg_store_gc(d->store);
			if (n > 0)
				log_debug("store: %ld expired entries removed", n);
		}
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* The ticket MAC key: from cookie.secret, or one random key kept in the store (so
 * every node sharing the store agrees; it only tells forged tickets from ended ones). */
static int ticket_key_init(struct eg_daemon *d, struct eg_sessions *s, char *err, size_t errlen)
{
	uint8_t raw[32];
	char hex[65], buf[65];
	void *v = NULL;
	size_t len = 0;

	if (d->cfg->cookie.secret)
		return eg_seal_derive(d->cfg->cookie.secret, strlen(d->cfg->cookie.secret), NULL, 0,
				      "edgegate ticket v1", s->tkey);
	if (random_bytes(raw, sizeof(raw)))
		return -1;
	hex_encode(raw, 32, hex);
	OPENSSL_cleanse(raw, sizeof(raw));
	/* read first: a store that takes no writes right now still lets the daemon start */
	if (eg_store_get(d->store, EG_NS_META, "ticket_key", &v, &len, NULL) != 1 &&
	    (eg_store_add(d->store, EG_NS_META, "ticket_key", hex, 64, 0) < 0 ||
	     eg_store_get(d->store, EG_NS_META, "ticket_key", &v, &len, NULL) != 1))
		len = 0;
	if (len != 64) {
		free(v);
		snprintf(err, errlen, "store: cannot read or write the ticket key");
		return -1;
	}
	memcpy(buf, v, 64);
	buf[64] = 0;
	OPENSSL_cleanse(v, len);
	free(v);
	int rc = hex_decode(buf, s->tkey, sizeof(s->tkey));
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(hex, sizeof(hex));
	if (rc)
		snprintf(err, errlen, "store: malformed ticket key");
	return rc ? -1 : 0;
}

static int any_old_record(const char *key, const void *val, size_t len, int64_t exp, void *arg)
{
	json_t *rec = json_loadb(val, len, 0, NULL);
	bool old = get_int(rec, "v") != REC_VERSION;

	json_decref(rec);
	*(bool *)arg = old;
	return old;
}

/* Sessions from before tickets were MACs (and records sealed their metadata) end at
 * the upgrade; until their lifetime is over, a v1-shaped ticket is called an ended
 * session rather than a forgery (no bans for users of the old version). */
static void legacy_init(struct eg_daemon *d, struct eg_sessions *s)
{
	void *v = NULL;
	size_t len = 0;
	char buf[32];
	bool old = false;

	if (eg_store_get(d->store, EG_NS_META, "legacy_tickets_until", &v, &len, NULL) != 1) {
		eg_store_foreach(d->store, EG_NS_SESSION, any_old_record, &old);
		int64_t until = old ? now_realtime_s() + lifetime_s(d->cfg) : 0;
		snprintf(buf, sizeof(buf), "%lld", (long long)until);
		eg_store_add(d->store, EG_NS_META, "legacy_tickets_until", buf, strlen(buf), until ? until : 0);
		if (eg_store_get(d->store, EG_NS_META, "legacy_tickets_until", &v, &len, NULL) != 1) {
			s->legacy_until = until;
			return;
		}
	}
	snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1), (const char *)v);
	free(v);
	s->legacy_until = strtoll(buf, NULL, 10);
	if (s->legacy_until > now_realtime_s())
		log_warn("session: sessions of the previous version were found; they must sign in again "
			 "(docs/sessions.md)");
}

static void describe_metrics(struct eg_daemon *d)
{
	if (!d->metrics)
		return;
	eg_metric_help(d->metrics, "edgegate_revocations_pending", "gauge",
		       "revocations recorded only in state_dir (the store did not take them yet)");
	eg_metric_help(d->metrics, "edgegate_store_write_failures_total", "counter",
		       "revocation writes the store refused or could not confirm");
	eg_metric_help(d->metrics, "edgegate_revocations_recorded_total", "counter",
		       "revocations by where they were recorded: store, local (state_dir) or none");
}

int eg_sessions_init(struct eg_daemon *d, char *err, size_t errlen)
{
	struct eg_sessions *s;

	if (d->sessions)
		return 0;
	eg_revoke_on_remote(d, eg_session_forget);
	s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->gc_cv, NULL);
	for (int i = 0; i < NSTRIPES; i++) {
		pthread_mutex_init(&s->smu[i], NULL);
		pthread_cond_init(&s->scv[i], NULL);
	}
	if (!d->store) {
		d->store = eg_store_open(d->cfg, err, errlen);
		if (!d->store) {
			for (int i = 0; i < NSTRIPES; i++) {
				pthread_mutex_destroy(&s->smu[i]);
				pthread_cond_destroy(&s->scv[i]);
			}
			free(s);
			return -1;
		}
		s->own_store = true;
	}
	s->shared = strcmp(eg_store_backend(d->store), "lmdb") != 0;
	s->tombs = eg_tombs_open(d->cfg->state_dir ? d->cfg->state_dir : "/var/lib/edgegate", err, errlen);
	if (!s->tombs || ticket_key_init(d, s, err, errlen)) {
		if (s->tombs && !err[0])
			snprintf(err, errlen, "session: cannot derive the ticket key");
		eg_tombs_close(s->tombs);
		if (s->own_store) {
			eg_store_close(d->store);
			d->store = NULL;
		}
		for (int i = 0; i < NSTRIPES; i++) {
			pthread_mutex_destroy(&s->smu[i]);
			pthread_cond_destroy(&s->scv[i]);
		}
		free(s);
		return -1;
	}
	legacy_init(d, s);
	d->sessions = s;
	describe_metrics(d);
	pending_gauge(d);
	eg_store_on_reachable(d->store, store_reachable, s);
	if (pthread_create(&s->gc, NULL, gc_main, d) == 0)
		s->gc_running = true;
	return 0;
}

void eg_sessions_set_load_hook(struct eg_sessions *s, eg_session_load_hook fn, void *arg)
{
	s->load_hook = fn;
	s->load_hook_arg = arg;
}

void eg_sessions_set_refresher(struct eg_sessions *s, eg_refresh_fn fn)
{
	if (s)
		s->refresh = fn;
}

void eg_session_forget(struct eg_daemon *d, const char *session_id)
{
	struct eg_sessions *s = d->sessions;
	uint8_t id[32];

	if (!s || !session_id || strlen(session_id) != 64 || hex_decode(session_id, id, sizeof(id)) != 0)
		return;
	/* A tombstone (memory only; the store holds the revocation) before the eviction, as in
	 * end_session: a load that read the record before the other node revoked it must not
	 * put it back into the cache after this. */
	int64_t now = now_realtime_s();
	eg_tombs_note(s->tombs, session_id, "remote", NULL, now, now + lifetime_s(d->cfg));
	pthread_mutex_lock(&s->mu);
	struct sess *e = find_locked(s, id);
	if (e)
		unlink_locked(s, e);
	pthread_mutex_unlock(&s->mu);
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
	eg_store_on_reachable(d->store, NULL, NULL);
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->gc_cv);
	pthread_mutex_unlock(&s->mu);
	if (s->gc_running)
		pthread_join(s->gc, NULL);
	eg_sessions_flush_cache(d);
	eg_tombs_close(s->tombs);
	if (s->own_store) {
		eg_store_close(d->store);
		d->store = NULL;
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->gc_cv);
	for (int i = 0; i < NSTRIPES; i++) {
		pthread_mutex_destroy(&s->smu[i]);
		pthread_cond_destroy(&s->scv[i]);
	}
	free(s);
	d->sessions = NULL;
}
