/* verdict.c - GET /auth, the nginx auth_request target: request -> identity -> policy
 * -> answer. The hot path, meant to be read top to bottom in eg_verdict().
 *
 * Answers are only 200, 401 or 403 (nginx turns anything else into a 500). Anything
 * that cannot be parsed is a deny, never an allow. */
#include "verdict.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "abuse.h"
#include "config.h"
#include "daemon.h"
#include "forbidden.h"
#include "http.h"
#include "identity.h"
#include "idmemo.h"
#include "introspect.h"
#include "jose.h"
#include "jwks.h"
#include "log.h"
#include "metrics.h"
#include "mtls.h"
#include "offload.h"
#include "policy.h"
#include "proxy.h"
#include "readings.h"
#include "redirect.h"
#include "revoke.h"
#include "session.h"
#include "smuggle.h"
#include "tokcache.h"
#include "util.h"

#define MAX_TOKEN 16384
#define NEGATIVE_TTL 30 /* seconds a rejected token's verdict is remembered */

/* What the request says about the original request, read once. */
struct target {
	char host[256];
	bool has_host;
	char client_host[256]; /* the client's raw Host, normalised ("" when the proxy sent none) */
	char path[4096];
	unsigned method;
	unsigned alt_methods; /* methods an upstream may serve it as (method-override headers) */
	const char *scheme;
	const char *raw_uri;
};

struct outcome {
	int status;          /* 200, 401 or 403 */
	const char *reason;  /* metrics label and JSON "error" */
	const char *detail;  /* human text for the JSON body; never a secret */
	bool bearer_error;   /* add WWW-Authenticate: Bearer error="invalid_token" */
};

static bool wants_json(const struct eg_req *r, const struct eg_route *route)
{
	if (route && route->api)
		return true;
	const char *accept = eg_req_header(r, "Accept");
	if (accept && strstr(accept, "application/json") && !strstr(accept, "text/html"))
		return true;
	const char *xrw = eg_req_header(r, "X-Requested-With");
	if (xrw && str_ieq(xrw, "XMLHttpRequest"))
		return true;
	return eg_req_header(r, "Authorization") != NULL;
}

/* --- the original request's target --------------------------------------------------------- */

/* The original request, from exactly the headers of the configured proxy profile. */
static bool read_target(const struct eg_forwarded *fw, struct target *t, const char **reason)
{
	if (eg_host_normalize(fw->host, t->host, sizeof(t->host)) != 0) {
		*reason = "bad_host";
		return false;
	}
	t->has_host = true;
	/* the client's raw Host: an upstream behind proxy_set_header Host $http_host gets it,
	 * so it is another reading of the host (judge_header_hosts); unreadable, a 403 */
	if (fw->client_host && strcmp(fw->client_host, fw->host) == 0) {
		/* the same bytes as Host (nginx: $http_host is $host, the usual case): the same reading */
		memcpy(t->client_host, t->host, strlen(t->host) + 1);
	} else if (fw->client_host && eg_host_normalize(fw->client_host, t->client_host, sizeof(t->client_host)) != 0) {
		*reason = "bad_original_host";
		return false;
	}
	const char *uri = eg_proxy_target_path(fw->target, t->host, reason);
	if (!uri)
		return false;
	t->raw_uri = uri;
	if (eg_path_strict(uri, t->path, sizeof(t->path)) != 0) {
		*reason = "bad_path";
		return false;
	}
	t->method = eg_method_bit(fw->method);
	t->scheme = fw->scheme;
	return true;
}

/* Method-override headers: Express's method-override reads X-HTTP-Method-Override by default
 * (the value up to the first comma, upper-cased), other frameworks X-HTTP-Method or
 * X-Method-Override. The upstream may serve the request as any method named there, so each
 * is judged like a reading of the target: the most restrictive wins. */
#define NAME_LEN(s) { s, sizeof(s) - 1 }
static const struct {
	const char *name;
	size_t len; /* a spelling has the name's length: same_header reads '_' as '-' */
} override_headers[] = { NAME_LEN("X-HTTP-Method-Override"), NAME_LEN("X-HTTP-Method"), NAME_LEN("X-Method-Override") };
#undef NAME_LEN

/* every comma element of one override header's value, trimmed and upper-cased */
static void override_value(const char *v, void *arg)
{
	unsigned *m = arg;
	for (const char *p = v; *p;) {
		char name[16];
		size_t n = 0;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		bool long_name = false;
		for (; *p && *p != ','; p++) {
			if (*p == ' ' || *p == '\t')
				continue;
			if (n + 1 < sizeof(name))
				name[n++] = (char)toupper((unsigned char)*p);
			else
				long_name = true;
		}
		name[n] = '\0';
		*m |= long_name ? EG_M_OTHER : eg_method_bit(name);
	}
}

/* Every spelling counts: with underscores_in_headers on, nginx passes X_HTTP_Method_Override
 * on, and PHP, CGI and Rack read it as X-HTTP-Method-Override. Each value is judged; the
 * values are collected in the one pass over the headers (extra_header). */
#define N_OVERRIDE (sizeof(override_headers) / sizeof(override_headers[0]))
static unsigned override_methods(const unsigned *bits, const size_t *counts)
{
	unsigned m = *bits;
	for (size_t i = 0; i < N_OVERRIDE; i++)
		if (counts[i] > 1)
			m |= EG_M_OTHER;
	return m;
}

/* Symfony with its method parameter override on (Laravel turns it on) serves a POST as the
 * method named by _method in the query string too; PHP reads ".method", " method" and
 * "[method" as "_method". Judged like the headers; more than one, or a malformed one, is
 * EG_M_OTHER (the most restrictive). */
static unsigned query_override_methods(const char *raw_uri)
{
	static const char *const names[] = { "_method", ".method", " method", "[method" };
	const char *q = raw_uri ? strchr(raw_uri, '?') : NULL;
	unsigned m = 0;
	int total = 0;
	if (!q)
		return 0;
	/* Decoding turns '+' into a space and nothing else unless there is a '%': without one
	 * and without "method" no name can read as one of these (four decoding passes saved
	 * on nearly every verdict). */
	size_t qlen = strcspn(q + 1, "#");
	if (!memchr(q + 1, '%', qlen) && !memmem(q + 1, qlen, "method", 6))
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int count = 0;
		char *v = form_get(q + 1, qlen, names[i], &count);
		total += count;
		if (v)
			override_value(v, &m);
		else if (count)
			m |= EG_M_OTHER;
		free(v);
	}
	return total > 1 ? m | EG_M_OTHER : m;
}

/* Protocol upgrades: behind the usual WebSocket recipe (proxy_set_header Upgrade
 * $http_upgrade) nginx passes any Upgrade on, and an upstream that speaks h2c switches
 * protocols: the client then sends HTTP/2 requests for any path through the tunnel, none of
 * them judged (h2c smuggling). Only "websocket" is a protocol whose frames are not requests;
 * any other token, or an HTTP2-Settings header, refuses the request on every route. */
static void upgrade_value(const char *v, void *arg)
{
	bool *bad = arg;
	for (const char *p = v; *p;) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, ",");
		size_t k = n;
		while (k && (p[k - 1] == ' ' || p[k - 1] == '\t'))
			k--;
		if (k && !(k == 9 && strncasecmp(p, "websocket", 9) == 0))
			*bad = true;
		p += n;
	}
}

/* The client headers of the judged extras, collected in one pass over the request. */
#define HEADER_TARGETS_MAX 4
/* Headers that tell an app the path it is mounted at: Spring and Traefik X-Forwarded-Prefix,
 * Flask/WSGI recipes X-Script-Name, ASP.NET recipes X-Forwarded-PathBase, Kong
 * X-Forwarded-Path (there the whole original path, so it is also judged as a target). */
static const struct {
	const char *name;
	size_t len;
} prefix_headers[] = {
	{ "X-Forwarded-Prefix", 18 },
	{ "X-Script-Name", 13 },
	{ "X-Forwarded-PathBase", 20 },
	{ "X-Forwarded-Path", 16 },
};
#define N_PREFIX_HEADERS (sizeof(prefix_headers) / sizeof(prefix_headers[0]))
#define PREFIX_FORWARDED_PATH 3
struct extras {
	const char *target[HEADER_TARGETS_MAX]; /* X-Original-URL, X-Rewrite-URL values */
	size_t n_target;
	bool target_overflow;
	/* X-Forwarded-Prefix and its kin (a client's, or a proxy's that passed it on): the last
	 * value of each name and how often the name came */
	const char *prefix[N_PREFIX_HEADERS];
	unsigned n_prefix[N_PREFIX_HEADERS];
	bool upgrade_bad; /* an Upgrade (or nginx's X-Original-Upgrade) to another protocol */
	bool h2_settings;
	const struct eg_config *cfg;
	bool smuggled;                 /* an underscore spelling of an identity header (smuggle.c) */
	unsigned override_bits;        /* the methods named by the override headers */
	size_t override_counts[N_OVERRIDE];
};

/* an override header (any spelling): its value judged, its count kept (more than one of a
 * name is EG_M_OTHER) */
static void override_header(struct extras *e, const char *key, size_t len, const char *value)
{
	for (size_t i = 0; i < N_OVERRIDE; i++)
		if (len == override_headers[i].len && eg_header_name_is_n(key, len, override_headers[i].name, len)) {
			e->override_counts[i]++;
			override_value(value, &e->override_bits);
			return;
		}
}

/* a header-borne target (X-Original-URL, X-Rewrite-URL, Kong's X-Forwarded-Path), judged
 * like the request's; more than HEADER_TARGETS_MAX of them is a refusal */
static void target_header(struct extras *e, const char *value)
{
	if (e->n_target < HEADER_TARGETS_MAX)
		e->target[e->n_target++] = value;
	else
		e->target_overflow = true;
}

/* a prefix header (X-Forwarded-Prefix and kin): its last value and its count kept */
static void prefix_header(struct extras *e, const char *key, size_t len, const char *value)
{
	for (size_t i = 0; i < N_PREFIX_HEADERS; i++) {
		if (len != prefix_headers[i].len || !eg_header_name_is_n(key, len, prefix_headers[i].name, len))
			continue;
		e->prefix[i] = value;
		e->n_prefix[i]++;
		if (i == PREFIX_FORWARDED_PATH) /* Kong: the whole original path */
			target_header(e, value);
		return;
	}
}

/* The lengths of the names extra_header looks for (a '_' spelling has its name's length),
 * one bit each: most of nginx's own headers have none of them and are passed over at once. */
static uint32_t extra_lengths;

__attribute__((constructor)) static void extra_lengths_init(void)
{
	static const size_t fixed[] = { 7, 13, 14, 18 }; /* Upgrade, X-Rewrite-URL, X-Original-URL and
							     HTTP2-Settings, X-Original-Upgrade */
	for (size_t i = 0; i < N_OVERRIDE + N_PREFIX_HEADERS; i++)
		if ((i < N_OVERRIDE ? override_headers[i].len : prefix_headers[i - N_OVERRIDE].len) >= 32)
			abort(); /* a name added that the mask cannot hold: a build error */
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		extra_lengths |= 1u << fixed[i];
	for (size_t i = 0; i < N_OVERRIDE; i++)
		extra_lengths |= 1u << override_headers[i].len;
	for (size_t i = 0; i < N_PREFIX_HEADERS; i++)
		extra_lengths |= 1u << prefix_headers[i].len;
}

static void extra_header(const char *key, size_t len, const char *value, void *arg)
{
	struct extras *e = arg;
	if (memchr(key, '_', len)) /* the only names eg_identity_header_variant_n can refuse */
		e->smuggled |= eg_identity_header_variant_n(e->cfg, key, len);
	if (len >= 32 || !(extra_lengths >> len & 1))
		return;
	/* by length first: most of nginx's own headers are X-... names of other lengths */
	override_header(e, key, len, value);
	switch (len) {
	case 13: /* X-Rewrite-URL, X-Script-Name */
	case 14: /* X-Original-URL, HTTP2-Settings */
		if (len == 14 ? eg_header_name_is_n(key, len, "X-Original-URL", 14) : eg_header_name_is_n(key, len, "X-Rewrite-URL", 13)) {
			target_header(e, value);
		} else {
			e->h2_settings |= len == 14 && eg_header_name_is_n(key, len, "HTTP2-Settings", 14);
			prefix_header(e, key, len, value);
		}
		break;
	case 18:
		/* nginx never passes Upgrade to the auth request (proxy_set_header Upgrade "" is
		 * its default): the shipped snippet sends it as X-Original-Upgrade */
		if (eg_header_name_is_n(key, len, "X-Original-Upgrade", 18))
			upgrade_value(value, &e->upgrade_bad);
		else
			prefix_header(e, key, len, value);
		break;
	case 16: /* X-Forwarded-Path */
	case 20: /* X-Forwarded-PathBase */
		prefix_header(e, key, len, value);
		break;
	case 7:
		if (eg_header_name_is_n(key, len, "Upgrade", 7))
			upgrade_value(value, &e->upgrade_bad);
		break;
	}
}

/* --- bearer tokens --------------------------------------------------------------------------- */

/* base64url and '.' (a JWS compact token), and RFC 6750 b64token's ~ + / = (opaque tokens
 * for introspection): b64token_chars_ok (util.c), sixteen bytes a step. */
static bool token_chars_ok(const char *s, size_t n)
{
	return n > 0 && n <= MAX_TOKEN && b64token_chars_ok(s, n);
}

static bool token_len_ok(size_t n)
{
	return n > 0 && n <= MAX_TOKEN;
}

/* 1 found (*tok, *len), 0 none, -1 malformed (a present but broken credential is a
 * failure, not an anonymous request). buf holds decoded query/cookie values. Only the
 * length is checked here: the characters are checked on a cache miss (bearer_identity),
 * since only tokens that passed that check are ever cached. */
static int find_bearer(struct eg_daemon *d, const struct eg_req *r, const struct target *t, const char **tok,
		       size_t *len, char *buf, size_t buflen)
{
	bool dup = false;
	const char *auth = eg_req_header_dup(r, "Authorization", &dup);
	if (auth) {
		if (dup || strncasecmp(auth, "Bearer ", 7) != 0)
			return strncasecmp(auth, "Bearer", 6) == 0 || dup ? -1 : 0;
		const char *p = auth + 7;
		while (*p == ' ')
			p++;
		size_t n = strlen(p);
		while (n && p[n - 1] == ' ')
			n--;
		if (!token_len_ok(n))
			return -1;
		*tok = p, *len = n;
		return 1;
	}
	const struct eg_jwt_config *j = &d->cfg->jwt;
	if (j->cookie && eg_req_cookie(r, j->cookie, buf, buflen)) {
		/* Twice: one may have been tossed in by another host of the domain, and which
		 * one a backend reads differs; neither is believed (as the session cookie). */
		if (eg_req_cookie_count(r, j->cookie) > 1)
			return -1;
		*tok = buf, *len = strlen(buf);
		return token_len_ok(*len) ? 1 : -1;
	}
	if (j->query_param) {
		const char *q = strchr(t->raw_uri, '?');
		if (q) {
			int count = 0;
			char *v = form_get(q + 1, strcspn(q + 1, "#"), j->query_param, &count);
			if (count > 1 || (v && strlen(v) >= buflen)) {
				free(v);
				return -1;
			}
			if (v) {
				strcpy(buf, v);
				free(v);
				*tok = buf, *len = strlen(buf);
				return token_len_ok(*len) ? 1 : -1;
			}
		}
	}
	return 0;
}

static void build_expect(const struct eg_config *cfg, struct eg_jwt_expect *x, eg_algset *algs)
{
	const struct eg_jwt_config *j = &cfg->jwt;
	*x = (struct eg_jwt_expect){
		.issuers = (const char *const *)j->issuers.v,
		.n_issuers = j->issuers.n,
		.audiences = (const char *const *)j->audiences.v,
		.n_audiences = j->audiences.n,
		.leeway_s = j->leeway_s,
		.require_exp = j->require_exp,
	};
	size_t bad;
	/* No list: each key allows only what it declares (its alg, else its kty's algs).
	 * A list the config check let through cannot fail here; if it did, allow nothing. */
	if (j->algorithms.n == 0)
		*algs = EG_ALGSET_ALL;
	else if (eg_algset_parse((const char *const *)j->algorithms.v, j->algorithms.n, algs, &bad) != 0)
		*algs = 0;
}

/* Three segments, two dots: a JWS; anything else is opaque. */
static bool is_compact_jws(const char *tok, size_t len)
{
	size_t dots = 0;
	for (size_t i = 0; i < len; i++)
		dots += tok[i] == '.';
	return dots == 2;
}

static enum eg_jose_err verify_token(struct eg_daemon *d, const char *tok, size_t len, json_t **claims_out,
				     int64_t *exp_out, uint8_t key_fp[32], const char **why)
{
	struct eg_jwt_expect x;
	eg_algset algs;
	if (d->cfg->jwt.introspection_url && !is_compact_jws(tok, len)) {
		/* an opaque token: the authorization server decides (RFC 7662); no signing key */
		memset(key_fp, 0, 32);
		return eg_introspect(d->cfg, tok, len, claims_out, exp_out, why);
	}
	build_expect(d->cfg, &x, &algs);
	struct eg_jwks *keys = eg_keysource_get(d->jwt_keys);
	struct eg_jws jws = { 0 };
	enum eg_jose_err e = eg_jws_verify(tok, len, keys, algs, true, &jws);
	if (e == EG_JOSE_NO_KEY && jws.kid[0] && !eg_jwks_has_kid(keys, jws.kid)) {
		/* An unknown kid may be a rotation: refetch (coalesced, throttled) and retry once. */
		char kid[sizeof(jws.kid)];
		memcpy(kid, jws.kid, sizeof(kid));
		eg_jws_clear(&jws);
		eg_jwks_unref(keys);
		keys = eg_keysource_refetch(d->jwt_keys, kid);
		e = eg_jws_verify(tok, len, keys, algs, true, &jws);
	}
	eg_jwks_unref(keys);
	if (e != EG_JOSE_OK) {
		*why = eg_jose_err_name(e);
		eg_jws_clear(&jws);
		return e;
	}
	e = eg_jwt_check_claims(jws.payload, &x, now_realtime_s(), exp_out, why);
	if (e == EG_JOSE_OK)
		e = eg_jwt_check_access_token(jws.header, jws.payload, d->cfg->jwt.require_at_jwt, why);
	for (size_t i = 0; e == EG_JOSE_OK && i < d->cfg->jwt.required_claims.n; i++) {
		if (!eg_claim_get(jws.payload, d->cfg->jwt.required_claims.v[i])) {
			e = EG_JOSE_CLAIM;
			*why = "missing required claim";
		}
	}
	if (e == EG_JOSE_OK) {
		*claims_out = json_incref(jws.payload);
		memcpy(key_fp, jws.key_fp, 32);
	}
	eg_jws_clear(&jws);
	return e;
}

/* A remembered verdict; a positive one only while its signing key is still in the
 * current key set (a key removed from the JWKS takes its verdicts with it). */
static bool cached_verdict(struct eg_daemon *d, const char *tok, size_t len, uint64_t tag, int64_t now, json_t **claims,
			   int *err)
{
	uint8_t fp[32];
	if (!d->tokcache || !eg_tokcache_get_at(d->tokcache, tok, len, tag, now, claims, err, fp))
		return false;
	static const uint8_t introspected[32]; /* zero: vouched for by introspection, no key */
	if (!*claims || memcmp(fp, introspected, 32) == 0)
		return true;
	struct eg_jwks *keys = eg_keysource_get(d->jwt_keys);
	bool still = eg_jwks_has_fingerprint(keys, fp);
	eg_jwks_unref(keys);
	if (still)
		return true;
	json_decref(*claims);
	*claims = NULL;
	*err = 0;
	eg_tokcache_drop(d->tokcache, tok, len);
	return false;
}

/* Bearer identity through the verdict cache. 1 identified, 0 no token, -1 rejected. */
static int bearer_identity(struct eg_daemon *d, const struct eg_req *r, const struct target *t,
			   struct eg_identity *id, struct outcome *o)
{
	if (!d->jwt_keys)
		return 0;
	const char *tok;
	size_t len;
	char buf[MAX_TOKEN + 1];
	int found = find_bearer(d, r, t, &tok, &len, buf, sizeof(buf));
	if (found == 0)
		return 0;
	if (found < 0) {
		*o = (struct outcome){ 401, "malformed_token", "the bearer token is malformed", true };
		return -1;
	}
	int64_t now = now_realtime_s();
	json_t *claims = NULL;
	int err = 0;
	uint8_t key_fp[32];
	/* hashed once: for the lookup and for the insert after a miss */
	uint64_t tag = d->tokcache ? eg_tokcache_tag(d->tokcache, tok, len) : 0;
	if (cached_verdict(d, tok, len, tag, now, &claims, &err)) {
		/* the same bytes as a token that passed token_chars_ok when it was cached */
		static __thread struct eg_metric_site hit;
		eg_metric_inc_site(&hit, d->metrics, "edgegate_token_cache_total", "result", "hit", NULL, NULL, 1);
	} else {
		if (!token_chars_ok(tok, len)) {
			*o = (struct outcome){ 401, "malformed_token", "the bearer token is malformed", true };
			return -1;
		}
		if (d->tokcache)
			eg_metric_inc_lit(d->metrics, "edgegate_token_cache_total", "result", "miss", NULL, NULL, 1);
		int64_t exp = INT64_MAX;
		const char *why = NULL;
		err = verify_token(d, tok, len, &claims, &exp, key_fp, &why);
		if (!d->tokcache) {
			/* cache_entries 0: nothing is remembered */
		} else if (err == EG_JOSE_OK) {
			static const uint8_t none[32];
			/* an introspected token may be revoked at the server: believed briefly */
			int64_t cap = now + (memcmp(key_fp, none, 32) == 0 ? d->cfg->jwt.introspection_cache_s
									  : d->cfg->jwt.cache_max_ttl_s);
			/* exp is checked with leeway, so the entry may outlive exp by the leeway. */
			int64_t until = exp > INT64_MAX - d->cfg->jwt.leeway_s ? INT64_MAX : exp + d->cfg->jwt.leeway_s;
			eg_tokcache_put_at(d->tokcache, tok, len, tag, until < cap ? until : cap, claims, 0, key_fp);
		} else if (err != EG_JOSE_NO_KEY && err != EG_JOSE_NOT_YET) {
			/* NO_KEY may heal after a JWKS refresh and NOT_YET with time: not cached. */
			eg_tokcache_put_at(d->tokcache, tok, len, tag, now + NEGATIVE_TTL, NULL, err, NULL);
		}
		log_debug("bearer token rejected or accepted: %s", why ? why : "ok");
	}
	if (!claims) {
		*o = (struct outcome){ 401, eg_jose_err_name((enum eg_jose_err)err), "the bearer token is not valid", true };
		return -1;
	}
	id->kind = EG_ID_BEARER;
	id->claims = claims;
	return 1;
}

/* --- identity headers ----------------------------------------------------------------------- */

static void claim_header(struct eg_resp *resp, const char *header, const json_t *v)
{
	if (json_is_string(v)) { /* the usual case: no copy of its own */
		eg_resp_header(resp, header, json_string_value(v));
		return;
	}
	char *s = eg_claim_header_value(v);
	if (s)
		eg_resp_header(resp, header, s);
	free(s);
}

static void identity_headers(struct eg_daemon *d, const struct eg_route *route, const struct eg_identity *id,
			     struct eg_resp *resp)
{
	const struct eg_config *cfg = d->cfg;
	const json_t *c = id->claims;
	/* the headers of the claims, worked out once per claims set (idmemo.h); an unverified
	 * address is not passed on */
	const struct eg_idmemo *m = eg_idmemo_get(cfg, id);
	for (size_t i = 0; m && i < m->n_headers; i++)
		eg_resp_header_n(resp, m->hname[i], m->hname_len[i], m->hvalue[i], m->hvalue_len[i]);
	if (id->cert) {
		if (!c && id->cert->subject)
			eg_resp_header(resp, "X-Auth-Request-User", id->cert->subject);
		if (id->cert->subject)
			eg_resp_header(resp, "X-Auth-Request-Cert-Subject", id->cert->subject);
		if (id->cert->fingerprint[0])
			eg_resp_header(resp, "X-Auth-Request-Cert-Fingerprint", id->cert->fingerprint);
		if (id->cert->n_sans) {
			json_t *arr = json_array();
			for (size_t i = 0; i < id->cert->n_sans; i++)
				json_array_append_new(arr, json_string(id->cert->sans[i]));
			claim_header(resp, "X-Auth-Request-Cert-Sans", arr);
			json_decref(arr);
		}
	}
	for (size_t i = 0; route && i < route->n_headers; i++)
		claim_header(resp, route->headers[i].header, eg_claim_get(c, route->headers[i].claim));
}

/* The identity headers go to nginx in one proxy buffer (16 KiB in the shipped snippet; past it
 * nginx answers 500 on every request of that user). Past this budget the request is a 403
 * with a reason and one log line, never a 500 and never a cut-down identity: an upstream
 * handed part of a group list could read the missing part as "not a member". */
#define IDENTITY_HEADERS_MAX 12288

static bool identity_headers_fit(struct eg_daemon *d, const struct eg_route *route, const struct eg_identity *id,
				 struct eg_resp *resp)
{
	size_t first = resp->n_headers, total = 0;
	identity_headers(d, route, id, resp);
	for (size_t i = first; i < resp->n_headers; i++)
		total += resp->hname_len[i] + resp->hvalue_len[i] + 4;
	/* a full header table may have dropped some (eg_resp_header): a cut-down identity too */
	if (total <= IDENTITY_HEADERS_MAX && resp->n_headers < EG_RESP_MAX_HEADERS)
		return true;
	log_warn("verdict: identity headers of %zu bytes (limit %d) for %s: denied; map fewer groups or claims "
		 "(oidc.groups_claim, the route's headers)", total, IDENTITY_HEADERS_MAX, route ? route->where : "-");
	resp->n_headers = first; /* the copies live in the answer's arena until it is freed */
	return false;
}

/* --- answers ----------------------------------------------------------------------------------- */

/* The origin the user returns to after login: a configured one (public_url, the
 * redirect_url, redirect_domains) whose host is the host the proxy routed on, never one
 * built from a client's Host. NULL: none is configured, rd stays relative. */
static char *rd_origin(const struct eg_config *cfg, const struct target *t)
{
	const char *urls[] = { cfg->public_url, cfg->oidc.redirect_url };
	char h[256];
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		if (eg_url_host(urls[i], h, sizeof(h)) != 0 || strcmp(h, t->host) != 0)
			continue;
		const char *auth = strstr(urls[i], "://") + 3;
		return xasprintf("%.*s", (int)(auth - urls[i] + strcspn(auth, "/?#")), urls[i]);
	}
	char *o = xasprintf("%s://%s", t->scheme, t->host);
	char *root = xasprintf("%s/", o);
	bool listed = eg_redirect_ok(cfg, root);
	free(root);
	if (listed)
		return o;
	free(o);
	return NULL;
}

/* Location of a 401 stays under EG_LOCATION_MAX: nginx holds the auth answer's headers
 * in one proxy buffer, and /oauth2/start refuses long rd values. A target too long to
 * carry is shortened (query dropped, then the site's root): the user still lands there. */
#define EG_LOCATION_MAX 2048

static void login_location(struct eg_daemon *d, const struct target *t, struct eg_resp *resp)
{
	const struct eg_config *cfg = d->cfg;
	if (!cfg->oidc.present || !t->raw_uri)
		return;
	const char *base = cfg->public_url ? cfg->public_url : "";
	char *origin = rd_origin(cfg, t);
	const char *o = origin ? origin : "";
	size_t plen = strcspn(t->raw_uri, "?#");
	char *cands[] = {
		xasprintf("%s%s", o, t->raw_uri),
		xasprintf("%s%.*s", o, (int)plen, t->raw_uri),
		xasprintf("%s/", o),
	};
	char *loc = NULL;
	for (size_t i = 0; !loc && i < sizeof(cands) / sizeof(cands[0]); i++) {
		if (!eg_redirect_ok(cfg, cands[i]))
			continue;
		char *enc = pct_encode(cands[i]);
		if (strlen(base) + strlen("/oauth2/start?rd=") + strlen(enc) < EG_LOCATION_MAX)
			loc = xasprintf("%s/oauth2/start?rd=%s", base, enc);
		free(enc);
	}
	if (!loc)
		loc = xasprintf("%s/oauth2/start", base);
	eg_resp_header(resp, "Location", loc);
	free(loc);
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
		free(cands[i]);
	free(origin);
}

static void deny(struct eg_daemon *d, const struct eg_req *r, const struct eg_route *route, const struct target *t,
		 const struct outcome *o, struct eg_resp *resp)
{
	bool json = wants_json(r, route);
	if (o->status == 401) {
		/* Browsers on routes that can log in are sent to the login start; API and
		 * XHR clients get the JSON body and handle the 401 themselves. */
		bool can_login = route && (route->auth == EG_AUTH_SESSION || route->auth == EG_AUTH_ANY);
		if (can_login && !json && t)
			login_location(d, t, resp);
		if (o->bearer_error)
			eg_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"edgegate\", error=\"invalid_token\"");
		else if (d->cfg->jwt.present)
			eg_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"edgegate\"");
	}
	if (json) {
		json_t *body = json_pack("{s:i,s:s,s:s}", "status", o->status, "error", o->reason, "message",
					 o->detail ? o->detail : (o->status == 401 ? "authentication required" : "forbidden"));
		char *s = json_dumps(body, JSON_COMPACT);
		eg_resp_json(resp, o->status, s);
		free(s);
		json_decref(body);
	} else {
		eg_resp_text(resp, o->status, o->status == 401 ? "authentication required\n" : "forbidden\n");
	}
}

/* A 403 is noted for the page nginx shows instead (the shipped snippet's error_page):
 * its request id goes to the log and, with the note's key, to nginx. */
static void note_forbidden(struct eg_daemon *d, const struct eg_req *r, const struct eg_route *route,
			   const struct target *t, const struct eg_identity *id, const struct outcome *o,
			   struct eg_resp *resp)
{
	/* "sign in as another user" returns where a 401's login would: the same rd origin */
	char *origin = t->raw_uri && t->has_host ? rd_origin(d->cfg, t) : NULL;
	char *rd = t->raw_uri ? xasprintf("%s%s", origin ? origin : "", t->raw_uri) : NULL;
	struct eg_denial_note n = {
		.reason = o->reason, .route = route, .id = id, .json = wants_json(r, route),
		.host = t->has_host ? t->host : NULL, .path = t->path[0] ? t->path : NULL, .uri = rd,
	};
	eg_forbidden_note(d, &n, resp);
	free(rd);
	free(origin);
}

/* Identity for the route's auth mode. 1 identified, 0 anonymous, -1 rejected (o set).
 * A verified client certificate is attached to every identity so that certificate
 * conditions and certificate-bound tokens work on any route. */
static int authenticate(struct eg_daemon *d, const struct eg_req *r, const struct eg_route *route,
			const struct target *t, struct eg_identity *id, struct outcome *o)
{
	const char *why = NULL;
	struct eg_cert_identity *cert = NULL;
	int m = eg_mtls_identity(d, r, &cert, &why);
	if (m < 0) {
		*o = (struct outcome){ 403, why, "the client certificate is not acceptable", false };
		return -1;
	}
	id->cert = cert;
	enum eg_auth_mode mode = route->auth;
	if (mode == EG_AUTH_MTLS) {
		if (!cert)
			return 0;
		id->kind = EG_ID_MTLS;
	}
	if (mode == EG_AUTH_BEARER || mode == EG_AUTH_ANY || mode == EG_AUTH_MTLS) {
		int b = bearer_identity(d, r, t, id, o);
		if (b > 0 && !eg_mtls_token_binding_ok(id->claims, cert)) {
			*o = (struct outcome){ 401, "certificate_binding", "the token is bound to another certificate", true };
			return -1;
		}
		if (b < 0 && mode == EG_AUTH_MTLS)
			return -1;
		if (b != 0 || mode == EG_AUTH_BEARER)
			return b;
	}
	if ((mode == EG_AUTH_SESSION || mode == EG_AUTH_ANY || mode == EG_AUTH_MTLS) && d->sessions) {
		int sr = eg_session_identity(d, r, id);
		if (sr == EG_SESSION_OK)
			return 1;
		if (sr == EG_SESSION_NEEDS_STORE) {
			/* a pass without the store (r->pass): eg_verdict answers nothing, the
			 * verdict is taken again where the store may be used (offload.c) */
			*o = (struct outcome){ 401, "session_store_needed", "the session store is needed", false };
			return -1;
		}
		if (sr == EG_SESSION_STORE_ERROR) {
			/* Fail closed, without a 5xx from nginx (auth_request turns any status but
			 * 2xx/401/403 into a 500): a 401 sends a browser to sign in, and the callback
			 * answers honestly that sign-in is unavailable (docs/sessions.md, outage). */
			*o = (struct outcome){ 401, "session_store_unavailable",
					       "the session store cannot be reached", false };
			return -1;
		}
		char buf[EG_TICKET_MAX + 8];
		if (eg_req_cookie(r, d->cfg->cookie.name, buf, sizeof(buf)) && mode != EG_AUTH_MTLS) {
			/* Forged: a ticket never issued here (counts toward a ban); ended: a genuine
			 * ticket of an expired, signed-out or revoked session (does not). */
			*o = sr == EG_SESSION_FORGED
				     ? (struct outcome){ 401, "forged_session", "the session is not valid", false }
				     : (struct outcome){ 401, "session_ended", "the session has ended", false };
			return -1;
		}
	}
	return mode == EG_AUTH_MTLS ? 1 : 0;
}

/* --- the readings' routes ------------------------------------------------------------------- */

/* Identities by auth mode: a token or session is verified once per request however
 * many routes the readings of its target reach. */
struct auth_cache {
	bool done[EG_AUTH_MTLS + 1];
	int result[EG_AUTH_MTLS + 1];
	struct eg_identity id[EG_AUTH_MTLS + 1];
	struct outcome o[EG_AUTH_MTLS + 1];
	/* the verified address the policy reads, from the claims' memo (idmemo.h): valid for
	 * this verdict, whose identities keep their claims alive until it ends */
	struct eg_email_memo email;
	/* the readings of the other targets judged (judge_alt_target_as), each computed once:
	 * an ambiguous target's control readings come back for every host reading */
	struct alt_readings *alt;
};

struct alt_readings {
	struct alt_readings *next;
	char *uri;
	int rc; /* eg_readings_compute's */
	struct eg_readings rd;
};

/* uri's readings, computed on the first call of this verdict; valid until it ends. */
static const struct alt_readings *alt_readings(struct auth_cache *c, const char *uri)
{
	for (struct alt_readings *a = c->alt; a; a = a->next)
		if (strcmp(a->uri, uri) == 0)
			return a;
	struct alt_readings *a = xmalloc(sizeof(*a));
	a->uri = xstrdup(uri);
	a->rc = eg_readings_compute(uri, &a->rd);
	a->next = c->alt;
	c->alt = a;
	return a;
}

static void auth_cache_clear(struct auth_cache *c)
{
	for (size_t m = 0; m <= EG_AUTH_MTLS; m++)
		eg_identity_clear(&c->id[m]);
	while (c->alt) {
		struct alt_readings *next = c->alt->next;
		if (c->alt->rc == 0)
			eg_readings_free(&c->alt->rd);
		free(c->alt->uri);
		free(c->alt);
		c->alt = next;
	}
}

/* One non-public route's verdict: 200, or 401/403 with *o set. */
static int route_verdict(struct eg_daemon *d, const struct eg_req *r, const struct eg_route *route,
			 const struct target *t, struct auth_cache *c, struct outcome *o)
{
	enum eg_auth_mode m = route->auth;
	if (!c->done[m]) {
		c->result[m] = authenticate(d, r, route, t, &c->id[m], &c->o[m]);
		c->done[m] = true;
	}
	if (c->result[m] < 0) {
		*o = c->o[m];
		return o->status;
	}
	if (c->result[m] == 0) {
		*o = (struct outcome){ 401, "no_identity", "authentication required", false };
		return 401;
	}
	const char *why = NULL;
	const struct eg_idmemo *im = eg_idmemo_get(d->cfg, &c->id[m]);
	if (im)
		c->email = (struct eg_email_memo){ c->id[m].claims, c->id[m].kind, im->email };
	if (!eg_policy_allows_memo(d->cfg, route, &c->id[m], &why, &c->email)) {
		*o = (struct outcome){ 403, why, "access to this resource is not allowed", false };
		return 403;
	}
	return 200;
}

/* The distinct routes the readings reach (under the method and each override method), in
 * reading order; *uncovered when some reading reaches none. At most one route per pair.
 * An ambiguous target stops at the first reading outside public routes: that alone
 * denies it (judge), whatever the other readings reach. */
#define METHOD_BITS 10 /* EG_M_GET .. EG_M_OTHER */
_Static_assert(EG_M_OTHER == 1u << (METHOD_BITS - 1), "METHOD_BITS covers every method bit");
#define JUDGED_MAX (2 * EG_READINGS_MAX * METHOD_BITS) /* each reading as is and case-insensitively */
static size_t reading_routes(const struct eg_config *cfg, const struct target *t, const struct eg_readings *rd,
			     const struct eg_route **routes, bool *uncovered)
{
	size_t n = 0;
	unsigned methods = t->method | t->alt_methods;
	*uncovered = false;
	for (unsigned b = 0; b < METHOD_BITS; b++) {
		unsigned m = 1u << b;
		if (!(methods & m))
			continue;
		/* Each reading also case-insensitively: a router that ignores ASCII case but does
		 * no compatibility folding reads "/ADMIN/x%EF%BC%8F.." under /admin/, while the
		 * folded reading (NFKC: the fullwidth '/' splits, ".." climbs) leaves it. */
		for (size_t i = 0; i < 2 * rd->n; i++) {
			const struct eg_reading *rg = &rd->v[i / 2];
			if ((i & 1) && rg->folded)
				continue;
			const struct eg_route *rt = eg_policy_match_reading(cfg, t->has_host ? t->host : NULL,
									    rg->path, m, rg->folded || (i & 1));
			bool seen = rt == NULL;
			*uncovered |= rt == NULL;
			for (size_t k = 0; k < n && !seen; k++)
				seen = routes[k] == rt;
			if (!seen)
				routes[n++] = rt;
			if (rd->ambiguous && (!rt || rt->auth != EG_AUTH_PUBLIC))
				return n;
		}
	}
	return n;
}

/* The most restrictive reading wins: every route a reading reaches must allow the
 * request. A 403 outranks a 401 (logging in would not help every reading). Returns,
 * on deny, the route that answered (the strict reading's when it denied alike); on
 * allow, the route whose identity and headers go upstream: the strict reading's
 * route, or, when that one is public, the first route that needed an identity. */
static const struct eg_route *judge(struct eg_daemon *d, const struct eg_req *r, const struct target *t,
				    const struct eg_readings *rd, struct auth_cache *c, struct outcome *o)
{
	const struct eg_route *routes[JUDGED_MAX];
	bool uncovered;
	size_t n = reading_routes(d->cfg, t, rd, routes, &uncovered);
	const struct eg_route *strict = eg_policy_match_reading(d->cfg, t->has_host ? t->host : NULL, rd->v[0].path,
								 t->method, false);
	bool all_public = true;
	for (size_t i = 0; i < n; i++)
		all_public &= routes[i]->auth == EG_AUTH_PUBLIC;
	if (rd->ambiguous && (uncovered || !all_public)) {
		/* What no two parsers read alike reaches public routes only. */
		*o = (struct outcome){ 403, "ambiguous_path", "the request path can be read more than one way", false };
		log_debug("verdict: ambiguous target (%s) outside public routes", rd->ambiguous);
		return strict;
	}
	if (uncovered && !d->cfg->default_allow) {
		*o = (struct outcome){ 403, "no_route", "no route matches this request", false };
		return strict;
	}
	if (all_public) {
		o->reason = n ? "public" : "default_allow";
		return strict;
	}
	const struct eg_route *denied = NULL, *id_route = NULL;
	for (size_t i = 0; i < n; i++) {
		if (routes[i]->auth == EG_AUTH_PUBLIC)
			continue;
		struct outcome ro;
		int st = route_verdict(d, r, routes[i], t, c, &ro);
		if (st == 200) {
			if (!id_route || routes[i] == strict)
				id_route = routes[i];
			continue;
		}
		if (!denied || (st == 403 && o->status != 403) || (st == o->status && routes[i] == strict)) {
			*o = ro;
			denied = routes[i];
		}
	}
	return denied ? denied : id_route;
}

/* Header-borne targets: Symfony before CVE-2018-14773, Zend Framework / Laminas and IIS
 * applications take the path from X-Original-URL or X-Rewrite-URL when the request carries
 * one, and nginx passes the client's on to the upstream. No proxy profile sets them, so any
 * value is the client's: each is judged like another target (most restrictive wins). */

static const struct eg_route *judge_control_readings(struct eg_daemon *d, const struct eg_req *r,
						     const struct target *t, const struct eg_route *route,
						     struct auth_cache *c, struct outcome *o, const char *ambiguous);

/* Judges another target of the same request (same host, method, credentials): 200 with
 * *o untouched, or the denial in *o and its route in *ar. -1 when uri is no path.
 * ambiguous: the target it is a reading of is one no two parsers read alike (then so is
 * this one: its readings may only reach public routes), or NULL. An ambiguous alt target
 * (an X-Original-URL with %00 in it) gets its control readings too, like the request's.
 * refuse_ambiguous: an uri no two parsers read alike is -1 itself (header-borne targets). */
static int judge_alt_target_as(struct eg_daemon *d, const struct eg_req *r, const struct target *t, const char *uri,
			       const char *ambiguous, bool refuse_ambiguous, struct auth_cache *c,
			       struct outcome *o, const struct eg_route **ar)
{
	struct target alt = *t;
	const struct alt_readings *a = NULL;
	if (eg_path_strict(uri, alt.path, sizeof(alt.path)) != 0 || (a = alt_readings(c, uri))->rc != 0 ||
	    (refuse_ambiguous && a->rd.ambiguous))
		return -1;
	/* a shallow copy (the paths stay the cache's) that may inherit the ambiguity */
	struct eg_readings rd = a->rd;
	if (!rd.ambiguous)
		rd.ambiguous = ambiguous;
	alt.raw_uri = uri;
	alt.alt_methods |= query_override_methods(uri) & ~alt.method;
	struct outcome ao = { 200, "allowed", NULL, false };
	*ar = judge(d, r, &alt, &rd, c, &ao);
	if (ao.status == 200 && rd.ambiguous)
		*ar = judge_control_readings(d, r, &alt, *ar, c, &ao, rd.ambiguous);
	if (ao.status != 200)
		*o = ao;
	return ao.status;
}

static int judge_alt_target(struct eg_daemon *d, const struct eg_req *r, const struct target *t, const char *uri,
			    struct auth_cache *c, struct outcome *o, const struct eg_route **ar)
{
	return judge_alt_target_as(d, r, t, uri, NULL, false, c, o, ar);
}

/* The primary target allowed: judge each header-borne one the same way. A value that is
 * not a path of the routed host is a 403; an allow keeps the primary's route. */
static const struct eg_route *judge_header_targets(struct eg_daemon *d, const struct eg_req *r,
						   const struct extras *x, const struct target *t,
						   const struct eg_route *route, struct auth_cache *c, struct outcome *o)
{
	for (size_t i = 0; i < x->n_target; i++) {
		const char *why = "bad_path";
		const char *uri = x->target_overflow ? NULL : eg_proxy_target_path(x->target[i], t->host, &why);
		const struct eg_route *ar = route;
		/* A request target no two parsers read alike may still be served on public
		 * routes; a header-borne one never: nothing legitimate needs one, and its
		 * readers (IIS %u escapes, ...) go beyond the request's. */
		int st = uri ? judge_alt_target_as(d, r, t, uri, NULL, true, c, o, &ar) : -1;
		if (st < 0)
			*o = (struct outcome){ 403, "bad_header_target",
					       "X-Original-URL or X-Rewrite-URL names no path of this site", false };
		if (st != 200)
			return ar;
	}
	return route;
}

/* X-Forwarded-Prefix: Spring's ForwardedHeaderFilter serves prefix + path as the request
 * URI, ASP.NET (PathBase), Flask (ProxyFix x_prefix, SCRIPT_NAME) and others build links and
 * redirects from it; X-Script-Name, X-Forwarded-PathBase and X-Forwarded-Path do the same in
 * other stacks. The shipped nginx snippet strips them on the way to the upstream; a proxy
 * that passes one on (Caddy, Traefik, an older snippet) makes prefix + path another reading
 * of the request. The target allowed, prefix + path is judged for each of them (most
 * restrictive wins); a name sent twice (Spring joins them, others take one) or a value that
 * is not plain (eg_proxy_prefix) is a 403. */
static const struct eg_route *judge_one_prefix(struct eg_daemon *d, const struct eg_req *r, const struct target *t,
					       const char *prefix, const char *path, const struct eg_route *route,
					       struct auth_cache *c, struct outcome *o)
{
	size_t plen = 0;
	if (!eg_proxy_prefix(prefix, &plen) || !path) {
		*o = (struct outcome){ 403, "bad_header_target", "a path-prefix header is not a plain path prefix", false };
		return route;
	}
	if (!plen)
		return route;
	char *uri = xasprintf("%.*s%s", (int)plen, prefix, path);
	const struct eg_route *ar = route;
	int st = judge_alt_target(d, r, t, uri, c, o, &ar);
	free(uri);
	if (st < 0)
		*o = (struct outcome){ 403, "bad_header_target", "a path-prefix header and the path make no path", false };
	return st == 200 ? route : ar;
}

static const struct eg_route *judge_header_prefix(struct eg_daemon *d, const struct eg_req *r,
						  const struct extras *x, const struct target *t,
						  const struct eg_route *route, struct auth_cache *c, struct outcome *o)
{
	const char *path = t->raw_uri;
	if (path && path[0] != '/') { /* absolute form (checked against the host already) */
		const char *auth = strstr(path, "://");
		path = auth ? strchr(auth + 3, '/') : NULL;
	}
	for (size_t i = 0; i < N_PREFIX_HEADERS && o->status == 200; i++) {
		if (!x->n_prefix[i])
			continue;
		if (x->n_prefix[i] != 1) {
			*o = (struct outcome){ 403, "bad_header_target", "a path-prefix header came more than once", false };
			return route;
		}
		route = judge_one_prefix(d, r, t, x->prefix[i], path, route, c, o);
	}
	return route;
}

/* An encoded control character in the path (%09, or %2500 decoded twice) keeps the target
 * to public routes only when every reading is public, but upstreams read it two more ways:
 * C code that decodes (twice) and stops at the NUL, and normalisers that drop controls or
 * trim them like whitespace ("..%09" climbs). Both are judged: the path cut at the first
 * such escape, and the path with every one removed. */
static bool control_escape(const char *p, size_t *len)
{
	int v = -1;
	if (p[0] == '%' && hex_digit((unsigned char)p[1]) >= 0 && hex_digit((unsigned char)p[2]) >= 0) {
		v = hex_digit((unsigned char)p[1]) * 16 + hex_digit((unsigned char)p[2]);
		*len = 3;
		if (v == '%' && hex_digit((unsigned char)p[3]) >= 0 && hex_digit((unsigned char)p[4]) >= 0) {
			v = hex_digit((unsigned char)p[3]) * 16 + hex_digit((unsigned char)p[4]);
			*len = 5;
		}
	}
	return v >= 0 && (v < 0x20 || v == 0x7f);
}

static const struct eg_route *judge_control_readings(struct eg_daemon *d, const struct eg_req *r,
						     const struct target *t, const struct eg_route *route,
						     struct auth_cache *c, struct outcome *o, const char *ambiguous)
{
	size_t plen = strcspn(t->raw_uri, "?"), len = 0, first = plen;
	char *stripped = xmalloc(plen + 1), *cut = NULL;
	size_t n = 0;
	for (size_t i = 0; i < plen;) {
		if (control_escape(t->raw_uri + i, &len)) {
			first = first < i ? first : i;
			i += len;
			continue;
		}
		stripped[n++] = t->raw_uri[i++];
	}
	stripped[n] = '\0';
	const struct eg_route *ar = route;
	if (first < plen) {
		cut = xasprintf("%.*s", (int)first, t->raw_uri);
		/* Readings of an ambiguous target: public routes only, like its own readings
		 * ("/API%0a" is "/API" to a trimming normaliser: never served under /api/). */
		/* the two are one target when the escapes end the path ("/x%0d%0a"): judged once */
		if (judge_alt_target_as(d, r, t, cut, ambiguous, false, c, o, &ar) == 200 &&
		    (strcmp(cut, stripped) == 0 ||
		     judge_alt_target_as(d, r, t, stripped, ambiguous, false, c, o, &ar) == 200))
			ar = route;
		else if (o->status == 200)
			*o = (struct outcome){ 403, "ambiguous_path", "the request path can be read more than one way", false };
	}
	free(cut);
	free(stripped);
	return ar;
}

/* Client-sent X-Forwarded-Host and RFC 7239 Forwarded host=: Express ("trust proxy"),
 * Django (USE_X_FORWARDED_HOST), Symfony, Rails and Spring take the host from them when the
 * request comes from their proxy, and nginx passes the client's on. Each host named there
 * (X-Forwarded-Host only under a profile whose host header is another one: Traefik and
 * Caddy set it themselves) is judged as another host of the same target, and so is the
 * client's raw Host when it is not the host the proxy routed on (an absolute-form request
 * line names the routed one; behind proxy_set_header Host $http_host the upstream gets the
 * raw one). Only host-scoped routes tell hosts apart; without them there is nothing to judge. */
struct header_hosts {
	char v[HEADER_TARGETS_MAX + 1][256]; /* + the client's raw Host */
	size_t n;
	bool bad;
};

static void header_host(const char *v, void *arg)
{
	struct header_hosts *h = arg;
	for (const char *p = v;;) {
		size_t len = strcspn(p, ",");
		char raw[256];
		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (h->n >= HEADER_TARGETS_MAX || len == 0 || len >= sizeof(raw))
			h->bad = true;
		else {
			memcpy(raw, p, len);
			raw[len] = '\0';
			h->bad |= eg_host_normalize(raw, h->v[h->n++], sizeof(h->v[0])) != 0;
		}
		p += strcspn(p, ",");
		if (!*p++)
			break;
	}
}

/* RFC 7239 Forwarded (Spring's ForwardedHeaderFilter and others route on it): the host=
 * parameter of every element, quotes removed; an element without one names no host. */
static void forwarded_host(const char *v, void *arg)
{
	struct header_hosts *h = arg;
	for (const char *p = v; *p;) {
		size_t len = strcspn(p, ",;");
		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		if (len > 5 && strncasecmp(p, "host=", 5) == 0) {
			char val[256];
			const char *q = p + 5;
			size_t ql = len - 5;
			while (ql && (q[ql - 1] == ' ' || q[ql - 1] == '\t'))
				ql--;
			if (ql >= 2 && q[0] == '"' && q[ql - 1] == '"')
				q++, ql -= 2;
			if (ql >= sizeof(val) || memchr(q, '"', ql)) {
				h->bad = true;
			} else {
				memcpy(val, q, ql);
				val[ql] = '\0';
				header_host(val, h);
			}
		}
		p += len;
		if (*p)
			p++;
	}
}

static bool any_host_route(const struct eg_config *cfg)
{
	for (size_t i = 0; i < cfg->n_routes; i++)
		if (cfg->routes[i].host)
			return true;
	return false;
}

static const struct eg_route *judge_header_hosts(struct eg_daemon *d, const struct eg_req *r,
						 const struct extras *x, const struct target *t, const struct eg_readings *rd,
						 const struct eg_route *route, struct auth_cache *c, struct outcome *o)
{
	if (!any_host_route(d->cfg))
		return route;
	struct header_hosts h = { .n = 0, .bad = false };
	static const char *const fwd[] = { "Forwarded" };
	/* Besides X-Forwarded-Host, the other host overrides apps route on: X-Forwarded-Server
	 * (Ktor's XForwardedHeaders), X-Host and X-HTTP-Host-Override (the host-override headers
	 * attack corpora send). Traefik sets X-Forwarded-Server to its own hostname. */
	const char *hosts[4];
	size_t n = 0, count, counts[4];
	if (!d->cfg->proxy || strcasecmp(d->cfg->proxy->host, "X-Forwarded-Host") != 0)
		hosts[n++] = "X-Forwarded-Host";
	hosts[n++] = "X-Host";
	hosts[n++] = "X-HTTP-Host-Override";
	if (!d->cfg->proxy || strcmp(d->cfg->proxy->name, "traefik") != 0)
		hosts[n++] = "X-Forwarded-Server";
	eg_req_header_spellings(r, hosts, n, counts, header_host, &h);
	eg_req_header_spellings(r, fwd, 1, &count, forwarded_host, &h);
	if (h.bad) {
		*o = (struct outcome){ 403, "bad_header_host", "a host override header (X-Forwarded-Host, Forwarded, X-Host ...) names no plausible host", false };
		return route;
	}
	if (t->client_host[0]) /* the client's raw Host (nginx: X-Original-Host), read_target */
		snprintf(h.v[h.n++], sizeof(h.v[0]), "%s", t->client_host);
	for (size_t i = 0; i < h.n; i++) {
		if (strcmp(h.v[i], t->host) == 0)
			continue;
		struct target alt = *t;
		snprintf(alt.host, sizeof(alt.host), "%s", h.v[i]);
		struct outcome ao = { 200, "allowed", NULL, false };
		const struct eg_route *ar = judge(d, r, &alt, rd, c, &ao);
		if (ao.status == 200) /* the app may take the path from X-Original-URL, the host from here */
			ar = judge_header_targets(d, r, x, &alt, ar, c, &ao);
		if (ao.status == 200)
			ar = judge_header_prefix(d, r, x, &alt, ar, c, &ao);
		if (ao.status == 200 && rd->ambiguous)
			ar = judge_control_readings(d, r, &alt, ar, c, &ao, rd->ambiguous);
		if (ao.status != 200) {
			log_debug("verdict: %s for another host reading (%s) of %s", ao.reason, h.v[i], t->host);
			*o = ao;
			return ar;
		}
	}
	return route;
}

static void commit_ban(struct eg_daemon *d, void *ban)
{
	eg_abuse_ban_commit(d, ban);
}

void eg_verdict(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	uint64_t t0 = now_mono_ns();
	/* No initializer (it would zero 4.4 KB per verdict): the buffers start empty. */
	struct target t;
	t.has_host = false, t.method = 0, t.scheme = NULL, t.raw_uri = NULL;
	t.host[0] = t.path[0] = t.client_host[0] = '\0';
	struct eg_identity id = { 0 };
	struct outcome o = { 200, "allowed", NULL, false };
	const struct eg_route *route = NULL;
	const char *why = NULL;
	struct eg_readings rd; /* empty, not zeroed: its 1 KB of readings are written before read */
	rd.n = 0, rd.ambiguous = NULL, rd.one_block = false;
	struct auth_cache cache = { 0 };

	/* The client address is the proxy's word only when the peer is a trusted proxy:
	 * an untrusted peer is judged (and counted) as itself. */
	struct eg_forwarded fw;
	const char *fw_why = NULL;
	bool fw_ok = r->peer_trusted && eg_proxy_read(r, &fw, &fw_why) == 0;
	uint8_t src[16];
	memcpy(src, fw_ok ? fw.client : r->peer_addr, 16);
	/* once per request: a verdict taken again on a store worker is not counted twice */
	if (d->abuse && !(r->pass && r->pass->admitted) && eg_abuse_check(d, src, &why) != 0) {
		/* Banned or over its verdict rate: no token is even looked at. */
		o = (struct outcome){ 403, why, "too many failed attempts from this address", false };
		goto answer;
	}
	if (r->pass)
		r->pass->admitted = true;
	if (!r->peer_trusted) {
		/* X-Original-* from anyone but our nginx could claim any path. */
		o = (struct outcome){ 403, "untrusted_peer", "request did not come from a trusted proxy", false };
		goto answer;
	}
	if (!fw_ok) {
		o = (struct outcome){ 403, fw_why, "the proxy did not send the original request as configured", false };
		goto answer;
	}
	/* one pass over the headers for the smuggled spellings, the extra targets, upgrades
	 * and method overrides */
	struct extras extras = { .n_target = 0, .target_overflow = false, .upgrade_bad = false, .h2_settings = false,
				 .cfg = d->cfg };
	eg_req_headers_each(r, extra_header, &extras);
	if (extras.smuggled) {
		/* underscores_in_headers on: nginx would pass it on to the upstream as is */
		o = (struct outcome){ 403, "smuggled_header", "the request carries another spelling of an identity header", false };
		goto answer;
	}
	if (extras.upgrade_bad || extras.h2_settings) {
		o = (struct outcome){ 403, "upgrade_refused", "only WebSocket upgrades are allowed", false };
		goto answer;
	}
	if (!read_target(&fw, &t, &why)) {
		o = (struct outcome){ 403, why, "the original request could not be parsed", false };
		goto answer;
	}
	t.alt_methods = (override_methods(&extras.override_bits, extras.override_counts) |
			 query_override_methods(t.raw_uri)) & ~t.method;
	if (eg_readings_compute(t.raw_uri, &rd) != 0) {
		o = (struct outcome){ 403, "bad_path", "the original request could not be parsed", false };
		goto answer;
	}
	route = judge(d, r, &t, &rd, &cache, &o);
	if (o.status == 200)
		route = judge_header_targets(d, r, &extras, &t, route, &cache, &o);
	if (o.status == 200)
		route = judge_header_prefix(d, r, &extras, &t, route, &cache, &o);
	if (o.status == 200 && rd.ambiguous)
		route = judge_control_readings(d, r, &t, route, &cache, &o, rd.ambiguous);
	if (o.status == 200)
		route = judge_header_hosts(d, r, &extras, &t, &rd, route, &cache, &o);
	if (o.status == 200 && route) {
		id = cache.id[route->auth]; /* moved: the cache no longer owns it */
		cache.id[route->auth] = (struct eg_identity){ 0 };
	}

answer:
	if (r->pass && r->pass->store_needed)
		goto out; /* nothing decided, nothing counted: the whole verdict is taken again */
	if (o.status == 200 && !identity_headers_fit(d, route, &id, resp))
		o = (struct outcome){ 403, "identity_too_large",
				      "the identity is too large to pass on (too many groups or claims)", false };
	struct eg_flow_tuple f;
	/* An allow on a flow revocation could not find again is one it could not undo:
	 * refused (403: nginx passes only 401/403 of an auth answer; a 401 would send a signed-in
	 * browser to log in again). docs/revocation.md, "Bounds". */
	if (o.status == 200 && id.kind == EG_ID_SESSION && d->revoke && eg_flow_from_request(r, &f) == 0 &&
	    eg_flows_note_subject(d, id.session_id, eg_claim_str(id.claims, "sub"), &f) != EG_FLOW_NOTED)
		o = (struct outcome){ 403, "too_many_connections",
				      "this session, or its user over all sessions, holds too many open connections: "
				      "close some (tabs, WebSockets) and try again", false };
	if (o.status == 200) {
		eg_resp_text(resp, 200, "");
	} else {
		deny(d, r, route, r->peer_trusted ? &t : NULL, &o, resp);
		/* who was denied: the identity the denying route authenticated (still in the cache) */
		if (o.status == 403 && r->peer_trusted)
			note_forbidden(d, r, route, &t, route && id.kind == EG_ID_NONE ? &cache.id[route->auth] : &id,
				       &o, resp); /* id is set when an allow became identity_too_large */
	}
	if (d->abuse) {
		/* a ban this verdict decides is recorded (store, kernel maps) on a store worker
		 * when this pass must not wait for the store; it is refused here at once */
		struct eg_abuse_ban *ban = NULL;
		bool front = r->pass && r->pass->use != EG_STORE_USE_ANY;
		eg_abuse_note_ex(d, src, o.status, o.reason, front ? &ban : NULL);
		if (ban)
			eg_offload_call(d, d->offload, commit_ban, ban);
	}
	static __thread struct eg_metric_site allowed, duration;
	if (o.status == 200) /* an allow's reasons are literals of this file */
		eg_metric_inc_site(&allowed, d->metrics, "edgegate_verdicts_total", "result", "allow", "reason", o.reason, 1);
	else /* a deny's reason may come from elsewhere (policy, JOSE) */
		eg_metric_inc(d->metrics, "edgegate_verdicts_total", "result",
			      o.status == 401 ? "unauthenticated" : "forbidden", "reason", o.reason, 1);
	eg_metric_observe_site(&duration, d->metrics, "edgegate_verdict_duration_seconds", NULL, NULL,
			       (double)(now_mono_ns() - t0) / 1e9);
out:
	auth_cache_clear(&cache);
	eg_readings_free(&rd);
	eg_identity_clear(&id);
}

int eg_verdict_init(struct eg_daemon *d)
{
	if (d->cfg->jwt.present && !d->tokcache && d->cfg->jwt.cache_entries) {
		log_err("jwt: verdict cache missing");
		return -1;
	}
	if (d->cfg->n_routes == 0 && !d->cfg->default_allow)
		log_warn("no routes configured: every request is denied (set routes or default_allow)");
	return 0;
}
