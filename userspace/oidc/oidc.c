/* oidc.c - OpenID Connect relying party (authorization code + PKCE S256, nonce,
 * browser-bound sealed state cookies), logout (RP-initiated and back-channel),
 * refresh with rotation, and the session admin commands. */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "admin.h"
#include "config.h"
#include "daemon.h"
#include "http.h"
#include "identity.h"
#include "jose.h"
#include "jwks.h"
#include "jws_sign.h"
#include "log.h"
#include "loopback.h"
#include "metrics.h"
#include "oidc.h"
#include "pages.h"
#include "redirect.h"
#include "revoke.h"
#include "seal.h"
#include "session.h"
#include "store.h"
#include "util.h"

#define HTTP_MAX_BODY (1u << 20)
#define LOGOUT_MAX_AGE_S 600 /* logout_token iat window; bounds the jti replay cache */
#define BCL_EVENT "http://schemas.openid.net/event/backchannel-logout"

struct eg_oidc {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	volatile bool ready;
	bool stopping;
	bool loopback_ok; /* issuer on loopback: plain http allowed (tests, demo) */
	pthread_t disc;
	bool disc_running;
	char *authorization_endpoint, *token_endpoint, *userinfo_endpoint, *end_session_endpoint;
	char *jwks_uri;
	struct eg_keysource *keys;
	bool iss_param_required; /* the OP sends iss in authorization responses (RFC 9207) */
	eg_algset algs;
	uint8_t state_key[EG_SEAL_KEY_LEN];
	char *redirect_url;
	EVP_PKEY *client_key; /* private_key_jwt */
	enum eg_alg client_key_alg;
};

/* --- small helpers ------------------------------------------------------------------ */

static void count(struct eg_daemon *d, const char *what, const char *result)
{
	if (d->metrics)
		eg_metric_inc(d->metrics, "edgegate_oidc_total", "step", what, "result", result, 1);
}

static bool url_allowed(const struct eg_oidc *o, const char *url)
{
	bool plain_http = false;

	if (!url || eg_url_https_or_loopback(url, &plain_http) != 0)
		return false;
	return !plain_http || o->loopback_ok;
}

static char *rand_b64(size_t nbytes)
{
	uint8_t b[64];
	char *out = xmalloc(b64url_encoded_len(nbytes) + 1);

	if (nbytes > sizeof(b) || random_bytes(b, nbytes))
		abort(); /* no randomness: nothing safe can be done */
	b64url_encode(b, nbytes, out);
	return out;
}

/* --- libcurl -------------------------------------------------------------------------- */

struct buf {
	char *p;
	size_t n;
	bool overflow;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;

	if (b->n + n > HTTP_MAX_BODY) {
		b->overflow = true;
		return 0;
	}
	char *np = realloc(b->p, b->n + n + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

/* A private_key_jwt client assertion: iss = sub = client_id, aud = the issuer
 * identifier (accepted by OPs for every endpoint, and not confusable with another
 * server's endpoint), a fresh jti, valid for 60 s. */
static char *client_assertion(struct eg_daemon *d)
{
	const struct eg_oidc_config *oc = &d->cfg->oidc;
	int64_t now = now_realtime_s();
	char *jti = rand_b64(16);
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", oc->client_id, "sub", oc->client_id,
			      "aud", oc->issuer, "jti", jti, "iat", (json_int_t)now, "exp", (json_int_t)(now + 60));
	char *payload = json_dumps(c, JSON_COMPACT);
	char *jws = payload ? eg_jws_sign(d->oidc->client_key, d->oidc->client_key_alg, oc->client_key_id, payload)
			    : NULL;

	if (!jws)
		log_err("oidc: cannot sign the client assertion");
	json_decref(c);
	free(payload);
	free(jti);
	return jws;
}

/* GET (form == NULL) or POST form. Returns HTTP status (0 on transport error); body
 * malloc'd. Client authentication per token_auth_method when client_auth. */
static long http_call(struct eg_daemon *d, const char *url, const char *form, bool client_auth,
		      const char *bearer, char **body)
{
	const struct eg_oidc_config *oc = &d->cfg->oidc;
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct buf b = { 0 };
	long status = 0;
	char *auth = NULL, *fullform = NULL;

	*body = NULL;
	if (!c)
		return 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "edgegate");
	if (oc->ca_file) /* an OP behind a private CA */
		curl_easy_setopt(c, CURLOPT_CAINFO, oc->ca_file);
	h = curl_slist_append(h, "Accept: application/json");
	if (bearer) {
		auth = xasprintf("Authorization: Bearer %s", bearer);
		h = curl_slist_append(h, auth);
	}
	if (form) {
		bool basic = client_auth && oc->client_secret &&
			     strcmp(oc->token_auth_method, "client_secret_basic") == 0;
		char *id = pct_encode(oc->client_id);
		char *assertion = client_auth && d->oidc->client_key ? client_assertion(d) : NULL;
		if (assertion) {
			/* RFC 7523 2.2: the client authenticates with a JWT signed by its key */
			fullform = xasprintf("%s&client_id=%s&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth"
					     "%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=%s",
					     form, id, assertion);
			free(assertion);
		} else if (basic) {
			/* RFC 6749 2.3.1: both parts form-encoded before base64. */
			char *sec = pct_encode(oc->client_secret);
			curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(c, CURLOPT_USERNAME, id);
			curl_easy_setopt(c, CURLOPT_PASSWORD, sec);
			fullform = xstrdup(form);
			OPENSSL_cleanse(sec, strlen(sec));
			free(sec);
		} else if (client_auth && oc->client_secret &&
			   strcmp(oc->token_auth_method, "client_secret_post") == 0) {
			char *sec = pct_encode(oc->client_secret);
			fullform = xasprintf("%s&client_id=%s&client_secret=%s", form, id, sec);
			OPENSSL_cleanse(sec, strlen(sec));
			free(sec);
		} else {
			fullform = xasprintf("%s&client_id=%s", form, id);
		}
		free(id);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, fullform);
		h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		log_warn("oidc: %s: %s", url, curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (auth) {
		OPENSSL_cleanse(auth, strlen(auth));
		free(auth);
	}
	if (fullform) {
		OPENSSL_cleanse(fullform, strlen(fullform));
		free(fullform);
	}
	if (status == 0 || b.overflow) {
		free(b.p);
		return 0;
	}
	*body = b.p ? b.p : xstrdup("");
	return status;
}

static json_t *http_json(struct eg_daemon *d, const char *url, const char *form, bool client_auth,
			 const char *bearer, long *status)
{
	char *body = NULL;
	json_t *j = NULL;

	*status = http_call(d, url, form, client_auth, bearer, &body);
	if (body) {
		j = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
		OPENSSL_cleanse(body, strlen(body));
		free(body);
	}
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* --- discovery ------------------------------------------------------------------------ */

static int discover(struct eg_daemon *d, char *err, size_t errlen)
{
	struct eg_oidc *o = d->oidc;
	const struct eg_oidc_config *oc = &d->cfg->oidc;
	size_t il = strlen(oc->issuer);
	char *url = xasprintf("%.*s/.well-known/openid-configuration",
			      (int)(il && oc->issuer[il - 1] == '/' ? il - 1 : il), oc->issuer);
	long status;
	json_t *doc = http_json(d, url, NULL, false, NULL, &status);
	int rc = -1;

	free(url);
	if (!doc) {
		snprintf(err, errlen, "discovery: no JSON document (HTTP %ld)", status);
		goto out;
	}
	const char *iss = json_string_value(json_object_get(doc, "issuer"));
	if (!iss || strcmp(iss, oc->issuer) != 0) {
		/* OpenID Connect Discovery 4.3: must be identical to the configured issuer. */
		snprintf(err, errlen, "discovery: issuer mismatch (document says %.200s)",
			 iss ? iss : "nothing");
		goto out;
	}
	const char *ae = json_string_value(json_object_get(doc, "authorization_endpoint"));
	const char *te = json_string_value(json_object_get(doc, "token_endpoint"));
	const char *ju = json_string_value(json_object_get(doc, "jwks_uri"));
	const char *ue = json_string_value(json_object_get(doc, "userinfo_endpoint"));
	const char *ee = json_string_value(json_object_get(doc, "end_session_endpoint"));
	if (!url_allowed(o, ae) || !url_allowed(o, te) || !url_allowed(o, ju) ||
	    (ue && !url_allowed(o, ue)) || (ee && !url_allowed(o, ee))) {
		snprintf(err, errlen, "discovery: endpoints missing or not https");
		goto out;
	}
	struct eg_keysource_opts ko = { .url = ju, .metrics = d->metrics,
					  .min_refetch_s = d->cfg->oidc.jwks_min_refetch_s,
					  .ca_file = d->cfg->oidc.ca_file };
	char kerr[256] = "";
	struct eg_keysource *ks = eg_keysource_new(&ko, kerr, sizeof(kerr));
	if (!ks) {
		snprintf(err, errlen, "jwks_uri: %s", kerr);
		goto out;
	}
	eg_keysource_start(ks);
	pthread_mutex_lock(&o->mu);
	o->authorization_endpoint = xstrdup(ae);
	o->token_endpoint = xstrdup(te);
	o->jwks_uri = xstrdup(ju);
	o->userinfo_endpoint = ue ? xstrdup(ue) : NULL;
	o->end_session_endpoint = ee ? xstrdup(ee) : NULL;
	/* RFC 9207 2.4: an OP that says it sends iss must be held to it, or a mix-up attacker
	 * simply leaves the parameter out. */
	o->iss_param_required = json_is_true(json_object_get(doc, "authorization_response_iss_parameter_supported"));
	o->keys = ks;
	__atomic_store_n(&o->ready, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&o->mu);
	log_info("oidc: discovered %s", oc->issuer);
	rc = 0;
out:
	json_decref(doc);
	return rc;
}

static void *discovery_main(void *arg)
{
	struct eg_daemon *d = arg;
	struct eg_oidc *o = d->oidc;
	int delay = 1;
	char err[512];

	for (;;) {
		if (discover(d, err, sizeof(err)) == 0)
			return NULL;
		log_warn("oidc: %s; retrying in %ds", err, delay);
		pthread_mutex_lock(&o->mu);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += delay;
		while (!o->stopping &&
		       pthread_cond_timedwait(&o->cv, &o->mu, &until) != ETIMEDOUT)
			;
		bool stop = o->stopping;
		pthread_mutex_unlock(&o->mu);
		if (stop)
			return NULL;
		delay = delay < 16 ? delay * 2 : 30;
	}
}

bool eg_oidc_ready(struct eg_daemon *d)
{
	return d->oidc && __atomic_load_n(&d->oidc->ready, __ATOMIC_ACQUIRE);
}

/* --- token validation ------------------------------------------------------------------- */

/* kid of a compact JWS header, for the unknown-kid refetch; NULL if none. *alg: the
 * algorithm the header names (EG_ALG_NONE when none or unknown). */
static char *token_kid(const char *token, enum eg_alg *alg)
{
	const char *dot = strchr(token, '.');
	size_t n = dot ? (size_t)(dot - token) : 0;
	uint8_t *raw;
	char *kid = NULL;
	long m;

	if (!n || n > 4096)
		return NULL;
	raw = xmalloc(b64url_decoded_max(n));
	m = b64url_decode(token, n, raw);
	if (m > 0) {
		json_t *h = json_loadb((const char *)raw, (size_t)m, JSON_REJECT_DUPLICATES, NULL);
		const char *k = json_string_value(json_object_get(h, "kid"));
		const char *a = json_string_value(json_object_get(h, "alg"));
		if (k)
			kid = xstrdup(k);
		*alg = eg_alg_from_name(a);
		json_decref(h);
	}
	free(raw);
	return kid;
}

#define HS_ALGS ((1u << EG_ALG_HS256) | (1u << EG_ALG_HS384) | (1u << EG_ALG_HS512))

/* HS* (only when oidc.algorithms names it): the key is the client_secret's octets (OIDC
 * Core 10.1), whatever kid the header names; never a key from the OP's public JWKS. */
static enum eg_jose_err verify_hmac_secret(const struct eg_daemon *d, const char *token, const char *kid,
					   struct eg_jws *jws)
{
	const char *sec = d->cfg->oidc.client_secret;
	eg_algset algs = d->oidc->algs & HS_ALGS;
	enum eg_jose_err e = EG_JOSE_ALG;

	if (!algs || !sec)
		return e;
	char *k = xmalloc(b64url_encoded_len(strlen(sec)) + 1);
	b64url_encode((const uint8_t *)sec, strlen(sec), k);
	json_t *jwk = json_pack("{s:s, s:s}", "kty", "oct", "k", k);
	if (kid)
		json_object_set_new(jwk, "kid", json_string(kid));
	char *set = json_dumps(jwk, JSON_COMPACT);
	struct eg_jwks *ks = set ? eg_jwks_parse(set, strlen(set), NULL, 0, NULL, 0) : NULL;
	if (ks)
		e = eg_jws_verify(token, strlen(token), ks, algs, true, jws);
	eg_jwks_unref(ks);
	if (set) {
		OPENSSL_cleanse(set, strlen(set));
		free(set);
	}
	json_decref(jwk);
	OPENSSL_cleanse(k, strlen(k));
	free(k);
	return e;
}

/* Keys of the set that may verify alg: an OP publishes one key per type (RSA, EC, OKP ...)
 * and signs with one of them, so only these compete for a token without kid. */
static size_t keys_for_alg(const struct eg_jwks *ks, enum eg_alg alg)
{
	size_t n = 0;

	for (size_t i = 0; i < eg_jwks_count(ks); i++)
		if (eg_jwk_algs(eg_jwks_key(ks, i)) & (1u << alg))
			n++;
	return n;
}

/* Signature with the OP's keys: unknown kid -> one (throttled) refetch. A token
 * without kid is accepted only when a single key of the set fits its alg (OIDC Core
 * 10.1; the OpenID RP test kid-absent-single-jwks publishes one key of each type). */
static int verify_sig(struct eg_daemon *d, const char *token, struct eg_jws *jws, char *why,
		      size_t whylen)
{
	struct eg_oidc *o = d->oidc;
	enum eg_alg alg = EG_ALG_NONE;
	char *kid = token_kid(token, &alg);
	enum eg_jose_err e;

	if ((1u << alg) & HS_ALGS) {
		e = verify_hmac_secret(d, token, kid, jws);
		free(kid);
		if (e != EG_JOSE_OK) {
			snprintf(why, whylen, "signature: %s", eg_jose_err_name(e));
			return -1;
		}
		return 0;
	}
	struct eg_jwks *keys = eg_keysource_get(o->keys);
	if (!kid && keys_for_alg(keys, alg) > 1) {
		snprintf(why, whylen, "token has no kid and several of the provider's keys fit its alg");
		eg_jwks_unref(keys);
		return -1;
	}
	/* a JWKS is public: an oct key published there is no secret, so never an HS* key */
	e = eg_jws_verify(token, strlen(token), keys, o->algs & ~HS_ALGS, true, jws);
	if (e == EG_JOSE_NO_KEY && kid) {
		eg_jwks_unref(keys);
		keys = eg_keysource_refetch(o->keys, kid);
		e = eg_jws_verify(token, strlen(token), keys, o->algs & ~HS_ALGS, true, jws);
	}
	eg_jwks_unref(keys);
	free(kid);
	if (e == EG_JOSE_ALG && alg != EG_ALG_NONE) {
		/* the one refusal an operator fixes in the configuration: say how */
		snprintf(why, whylen, "signature: alg %s is not in oidc.algorithms (default RS256)", eg_alg_name(alg));
		return -1;
	}
	if (e != EG_JOSE_OK) {
		snprintf(why, whylen, "signature: %s", eg_jose_err_name(e));
		return -1;
	}
	return 0;
}

static int check_azp(const json_t *claims, const char *client_id, char *why, size_t whylen)
{
	const json_t *aud = json_object_get(claims, "aud");
	const char *azp = json_string_value(json_object_get(claims, "azp"));

	if (json_object_get(claims, "azp") && !azp) {
		snprintf(why, whylen, "azp is not a string");
		return -1;
	}
	if (json_is_array(aud) && json_array_size(aud) > 1 && !azp) {
		snprintf(why, whylen, "several audiences and no azp");
		return -1;
	}
	if (azp && strcmp(azp, client_id) != 0) {
		snprintf(why, whylen, "azp is not our client_id");
		return -1;
	}
	return 0;
}

/* Claim half of the id_token check (signature already verified). */
static int check_id_claims(const json_t *c, const char *issuer, const char *client_id,
			   int64_t leeway_s, const char *nonce, const char *want_sub, int64_t now,
			   int64_t *exp, char *why, size_t whylen)
{
	const char *iss[1] = { issuer }, *aud[1] = { client_id };
	struct eg_jwt_expect x = { .issuers = iss, .n_issuers = 1, .audiences = aud,
				   .n_audiences = 1, .leeway_s = leeway_s, .require_exp = true,
				   .require_iat = true, .require_sub = true };
	const char *w = NULL;
	enum eg_jose_err e = eg_jwt_check_claims(c, &x, now, exp, &w);

	if (e != EG_JOSE_OK) {
		snprintf(why, whylen, "%s%s%s", eg_jose_err_name(e), w ? ": " : "", w ? w : "");
		return -1;
	}
	const char *sub = json_string_value(json_object_get(c, "sub"));
	if (!sub || !*sub) {
		snprintf(why, whylen, "sub missing");
		return -1;
	}
	if (check_azp(c, client_id, why, whylen))
		return -1;
	if (nonce) {
		const char *n = json_string_value(json_object_get(c, "nonce"));
		if (!n || strlen(n) != strlen(nonce) || !ct_equal(n, nonce, strlen(nonce))) {
			snprintf(why, whylen, "nonce mismatch");
			return -1;
		}
	}
	if (want_sub && strcmp(sub, want_sub) != 0) {
		snprintf(why, whylen, "sub changed");
		return -1;
	}
	return 0;
}

int eg_oidc_check_id_token(const char *token, const struct eg_jwks *keys, uint32_t algs,
			   const char *issuer, const char *client_id, int64_t leeway_s,
			   const char *nonce, const char *want_sub, int64_t now, json_t **claims,
			   char *why, size_t whylen)
{
	struct eg_jws jws;
	int64_t exp;
	enum eg_jose_err e;

	*claims = NULL;
	memset(&jws, 0, sizeof(jws));
	e = eg_jws_verify(token, strlen(token), keys, algs, true, &jws);
	if (e != EG_JOSE_OK) {
		snprintf(why, whylen, "signature: %s", eg_jose_err_name(e));
		return -1;
	}
	json_t *c = json_incref(jws.payload);
	eg_jws_clear(&jws);
	if (check_id_claims(c, issuer, client_id, leeway_s, nonce, want_sub, now, &exp, why,
			    whylen)) {
		json_decref(c);
		return -1;
	}
	*claims = c;
	return 0;
}

/* OIDC Core 3.1.3.6/3.3.2.11: at_hash and c_hash are the base64url left half of the hash
 * of the value, with the hash of the id_token's alg (SHA-512 for EdDSA on Ed25519). A code
 * flow need not carry them; when the OP put one in, it must match (a token swapped in from
 * another response fails). 0 when absent or matching. */
static int check_half_hash(const json_t *claims, const char *name, enum eg_alg alg, const char *value,
			   char *why, size_t whylen)
{
	const json_t *h = json_object_get(claims, name);
	const char *an = eg_alg_name(alg), *mdname;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char want[b64url_encoded_len(EVP_MAX_MD_SIZE / 2) + 1];

	if (!h || !value)
		return 0;
	mdname = alg == EG_ALG_EDDSA ? "SHA512" : strstr(an, "384") ? "SHA384" : strstr(an, "512") ? "SHA512" : "SHA256";
	if (!json_is_string(h)) {
		snprintf(why, whylen, "%s is not a string", name);
		return -1;
	}
	if (EVP_Digest(value, strlen(value), md, &mdlen, EVP_get_digestbyname(mdname), NULL) != 1) {
		snprintf(why, whylen, "%s cannot be computed", name);
		return -1;
	}
	b64url_encode(md, mdlen / 2, want);
	if (json_string_length(h) != strlen(want) || !ct_equal(json_string_value(h), want, strlen(want))) {
		snprintf(why, whylen, "%s does not match", name);
		return -1;
	}
	return 0;
}

/* Full id_token check with the live key source (refetch on unknown kid); at_hash and c_hash
 * checked against access_token and code when the token has them. */
static int check_id_token(struct eg_daemon *d, const char *token, const char *nonce,
			  const char *want_sub, const char *access_token, const char *code,
			  json_t **claims, int64_t *exp, char *why, size_t whylen)
{
	const struct eg_oidc_config *oc = &d->cfg->oidc;
	struct eg_jws jws;

	*claims = NULL;
	memset(&jws, 0, sizeof(jws));
	if (verify_sig(d, token, &jws, why, whylen))
		return -1;
	json_t *c = json_incref(jws.payload);
	enum eg_alg alg = jws.alg;
	eg_jws_clear(&jws);
	if (check_id_claims(c, oc->issuer, oc->client_id, oc->leeway_s, nonce, want_sub,
			    now_realtime_s(), exp, why, whylen) ||
	    check_half_hash(c, "at_hash", alg, access_token, why, whylen) ||
	    check_half_hash(c, "c_hash", alg, code, why, whylen)) {
		json_decref(c);
		return -1;
	}
	*claims = c;
	return 0;
}

int eg_oidc_check_logout_claims(const json_t *c, const char *issuer, const char *client_id,
				int64_t leeway_s, int64_t now, char *why, size_t whylen)
{
	const char *iss[1] = { issuer }, *aud[1] = { client_id };
	struct eg_jwt_expect x = { .issuers = iss, .n_issuers = 1, .audiences = aud,
				   .n_audiences = 1, .leeway_s = leeway_s, .require_exp = false,
				   .require_iat = true };
	const char *w = NULL;
	int64_t exp, iat;
	enum eg_jose_err e = eg_jwt_check_claims(c, &x, now, &exp, &w);

	if (e != EG_JOSE_OK) {
		snprintf(why, whylen, "%s%s%s", eg_jose_err_name(e), w ? ": " : "", w ? w : "");
		return -1;
	}
	if (eg_claim_time(c, "iat", &iat) != 0) {
		snprintf(why, whylen, "iat missing");
		return -1;
	}
	if (iat < now - LOGOUT_MAX_AGE_S - leeway_s) {
		snprintf(why, whylen, "logout_token too old");
		return -1;
	}
	const char *jti = json_string_value(json_object_get(c, "jti"));
	if (!jti || !*jti) {
		snprintf(why, whylen, "jti missing");
		return -1;
	}
	const json_t *ev = json_object_get(c, "events");
	if (!json_is_object(ev) || !json_is_object(json_object_get(ev, BCL_EVENT))) {
		snprintf(why, whylen, "events claim without the back-channel logout event");
		return -1;
	}
	if (json_object_get(c, "nonce")) {
		snprintf(why, whylen, "nonce present");
		return -1;
	}
	const json_t *sub = json_object_get(c, "sub"), *sid = json_object_get(c, "sid");
	if ((sub && !json_is_string(sub)) || (sid && !json_is_string(sid)) || (!sub && !sid)) {
		snprintf(why, whylen, "needs sid and/or sub (strings)");
		return -1;
	}
	if (check_azp(c, client_id, why, whylen))
		return -1;
	return 0;
}

/* --- token endpoint ----------------------------------------------------------------------- */

struct tokens {
	char *id_token, *access_token, *refresh_token;
	int64_t expires_in;
};

static void tokens_clear(struct tokens *t)
{
	free(t->id_token);
	if (t->access_token)
		OPENSSL_cleanse(t->access_token, strlen(t->access_token));
	free(t->access_token);
	if (t->refresh_token)
		OPENSSL_cleanse(t->refresh_token, strlen(t->refresh_token));
	free(t->refresh_token);
	memset(t, 0, sizeof(*t));
}

static int token_request(struct eg_daemon *d, const char *form, struct tokens *t, char *why,
			 size_t whylen)
{
	long status;
	json_t *j = http_json(d, d->oidc->token_endpoint, form, true, NULL, &status);
	const char *s;
	int rc = -1;

	memset(t, 0, sizeof(*t));
	if (!j || status != 200) {
		s = json_string_value(json_object_get(j, "error"));
		snprintf(why, whylen, "token endpoint: HTTP %ld%s%.100s", status, s ? " " : "",
			 s ? s : "");
		goto out;
	}
	s = json_string_value(json_object_get(j, "token_type"));
	if (s && strcasecmp(s, "Bearer") != 0 && strcasecmp(s, "DPoP") != 0) {
		snprintf(why, whylen, "token endpoint: unexpected token_type");
		goto out;
	}
	if ((s = json_string_value(json_object_get(j, "id_token"))))
		t->id_token = xstrdup(s);
	if ((s = json_string_value(json_object_get(j, "access_token"))))
		t->access_token = xstrdup(s);
	if ((s = json_string_value(json_object_get(j, "refresh_token"))))
		t->refresh_token = xstrdup(s);
	if (json_is_integer(json_object_get(j, "expires_in")))
		t->expires_in = json_integer_value(json_object_get(j, "expires_in"));
	rc = 0;
out:
	json_decref(j);
	return rc;
}

/* Userinfo claims merged over the id_token claims; sub must match (OIDC Core 5.3.2). */
static int merge_userinfo(struct eg_daemon *d, const char *access_token, json_t *claims, char *why,
			  size_t whylen)
{
	struct eg_oidc *o = d->oidc;
	long status;
	json_t *u;
	const char *k;
	json_t *v;

	if (!d->cfg->oidc.use_userinfo || !o->userinfo_endpoint || !access_token)
		return 0;
	u = http_json(d, o->userinfo_endpoint, NULL, false, access_token, &status);
	if (!u || status != 200) {
		snprintf(why, whylen, "userinfo: HTTP %ld", status);
		json_decref(u);
		return -1;
	}
	const char *us = json_string_value(json_object_get(u, "sub"));
	const char *is = json_string_value(json_object_get(claims, "sub"));
	if (!us || !is || strcmp(us, is) != 0) {
		snprintf(why, whylen, "userinfo: sub does not match the id_token");
		json_decref(u);
		return -1;
	}
	json_object_foreach(u, k, v)
	{
		if (strcmp(k, "iss") && strcmp(k, "aud") && strcmp(k, "exp") && strcmp(k, "iat") &&
		    strcmp(k, "nonce") && strcmp(k, "azp"))
			json_object_set(claims, k, v);
	}
	json_decref(u);
	return 0;
}

static int64_t token_expiry(const struct tokens *t, int64_t id_exp)
{
	int64_t now = now_realtime_s();

	if (t->expires_in > 0 && t->expires_in < 10 * 365 * 86400LL)
		return now + t->expires_in;
	return id_exp != INT64_MAX ? id_exp : 0;
}

static int refresh_cb(struct eg_daemon *d, const char *refresh_token, const char *sub,
		      struct eg_session_new *out)
{
	struct tokens t;
	char why[256] = "", *rt = pct_encode(refresh_token);
	char *form = xasprintf("grant_type=refresh_token&refresh_token=%s", rt);
	int64_t id_exp = INT64_MAX;
	json_t *claims = NULL;
	int rc;

	OPENSSL_cleanse(rt, strlen(rt));
	free(rt);
	if (!eg_oidc_ready(d)) {
		free(form);
		return -1;
	}
	rc = token_request(d, form, &t, why, sizeof(why));
	OPENSSL_cleanse(form, strlen(form));
	free(form);
	if (rc == 0 && t.id_token) {
		/* OIDC Core 12.2: same iss/sub/aud, no nonce requirement. */
		rc = check_id_token(d, t.id_token, NULL, sub, t.access_token, NULL, &claims, &id_exp, why,
				    sizeof(why));
		if (rc == 0)
			rc = merge_userinfo(d, t.access_token, claims, why, sizeof(why));
	}
	if (rc) {
		log_warn("oidc: refresh failed: %s", why);
		count(d, "refresh", "fail");
		json_decref(claims);
		tokens_clear(&t);
		return -1;
	}
	out->claims = claims;
	out->id_token = t.id_token;
	out->access_token = t.access_token;
	out->refresh_token = t.refresh_token; /* NULL when the OP does not rotate */
	out->token_exp = token_expiry(&t, id_exp);
	count(d, "refresh", "ok");
	return 0;
}

/* --- cookies of the login state -------------------------------------------------------- */

static char *state_cookie(struct eg_daemon *d, const char *name, const char *value,
			  int64_t max_age)
{
	/* Host-only, scoped to the callback path; Lax so the OP's top-level redirect
	 * back carries it. */
	return xasprintf("%s=%s; Path=/oauth2/; Max-Age=%lld; HttpOnly%s; SameSite=Lax", name,
			 value, (long long)max_age, d->cfg->cookie.secure ? "; Secure" : "");
}

/* Bytes of state cookies a browser is asked to keep (h_start): well under the 8 KB line
 * nginx reads, with room for the session cookie and the app's own. */
#define STATE_COOKIES_BUDGET 4096

/* Names of the state cookies the browser sent, in header order (oldest first per
 * RFC 6265 5.4 for cookies of equal path). */
static size_t state_cookie_names(const struct eg_req *r, char names[][64], size_t sizes[], size_t max)
{
	const char *h = eg_req_header(r, "Cookie");
	size_t n = 0, pl = strlen(EG_STATE_COOKIE_PREFIX);

	for (const char *p = h; p && *p && n < max;) {
		while (*p == ' ' || *p == ';')
			p++;
		const char *eq = strchr(p, '='), *end = strchr(p, ';');
		if (!eq)
			break;
		if ((!end || eq < end) && strncmp(p, EG_STATE_COOKIE_PREFIX, pl) == 0 &&
		    (size_t)(eq - p) < 64) {
			memcpy(names[n], p, (size_t)(eq - p));
			names[n][eq - p] = 0;
			sizes[n] = end ? (size_t)(end - p) : strlen(p); /* "name=value" */
			n++;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return n;
}

/* Login binding: the state cookie is scoped to /oauth2/, so it cannot carry the __Host-
 * prefix and a sibling subdomain can toss one into a victim's browser (Domain=), with the
 * callback URL of the attacker's own login: the victim would be signed in as the attacker
 * (login CSRF). Every login is bound to a __Host- cookie of the browser that started it,
 * which no other host can set. Only with secure cookies (the prefix needs Secure). */
#define LOGIN_BINDING_COOKIE "__Host-edgegate_login"
#define LOGIN_BINDING_LEN 22 /* 16 random bytes, base64url */

static bool login_binding_ok(const char *v)
{
	if (strlen(v) != LOGIN_BINDING_LEN)
		return false;
	for (const char *p = v; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_'))
			return false;
	return true;
}

/* The browser's binding, a new one when it has none; the cookie is (re)set for ttl. NULL
 * when cookies are not secure. */
static char *login_binding(const struct eg_config *cfg, const struct eg_req *r, struct eg_resp *resp, int64_t ttl)
{
	char have[64];
	if (!cfg->cookie.secure)
		return NULL;
	char *v = eg_req_cookie(r, LOGIN_BINDING_COOKIE, have, sizeof(have)) && login_binding_ok(have)
			  ? xstrdup(have)
			  : rand_b64(16);
	char *sc = xasprintf("%s=%s; Path=/; Max-Age=%lld; HttpOnly; Secure; SameSite=Lax", LOGIN_BINDING_COOKIE, v,
			     (long long)ttl);
	eg_resp_header(resp, "Set-Cookie", sc);
	free(sc);
	return v;
}

/* The state was started by this browser: its binding cookie matches the sealed one. */
static bool login_binding_matches(const struct eg_config *cfg, const struct eg_req *r, const json_t *st)
{
	if (!cfg->cookie.secure)
		return true;
	const char *want = json_string_value(json_object_get(st, "b"));
	char have[64];
	return want && strlen(want) == LOGIN_BINDING_LEN && eg_req_cookie(r, LOGIN_BINDING_COOKIE, have, sizeof(have)) &&
	       strlen(have) == LOGIN_BINDING_LEN && ct_equal(have, want, LOGIN_BINDING_LEN);
}

/* The "Login failed" page (pages.c) with a request id that is also in this log line. */
static void login_error(struct eg_daemon *d, struct eg_resp *resp, const char *step, int status,
			const char *msg)
{
	char rid[EG_REQUEST_ID_LEN + 1];

	eg_request_id(rid);
	log_warn("oidc: login failed at step %s request=%s", step, rid);
	char *retry = xasprintf("%s/oauth2/start", d->cfg->public_url ? d->cfg->public_url : "");
	eg_page_login_error(resp, status, msg, step, rid, retry);
	free(retry);
}

/* --- /oauth2/start ------------------------------------------------------------------------- */

static void h_start(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	struct eg_oidc *o = d->oidc;
	const struct eg_config *cfg = d->cfg;
	int n = 0;
	const char *rd = eg_req_arg(r, "rd", &n);
	char names[72][64], cname[64];
	int64_t ttl = cfg->oidc.state_ttl_s > 0 ? cfg->oidc.state_ttl_s : 600;
	size_t max = cfg->oidc.max_states > 0 ? (size_t)cfg->oidc.max_states : 8;

	/* OpenID Connect Core 4, a login initiated by the OP or a third party: /oauth2/start is
	 * the initiate_login_uri. iss must name our OP; target_link_uri is where to go (checked
	 * like rd); login_hint goes on to the OP. */
	int ni = 0, nt = 0, nh = 0;
	const char *iss = eg_req_arg(r, "iss", &ni), *target = eg_req_arg(r, "target_link_uri", &nt);
	const char *hint = eg_req_arg(r, "login_hint", &nh);

	eg_resp_header(resp, "Cache-Control", "no-store");
	if (n > 1 || ni > 1 || nt > 1 || nh > 1) {
		login_error(d, resp, "duplicate", 400, "A login parameter appears more than once.");
		return;
	}
	if (iss && strcmp(iss, cfg->oidc.issuer) != 0) {
		count(d, "start", "iss");
		login_error(d, resp, "iss", 400, "The login was started for another identity provider.");
		return;
	}
	if ((!rd || !*rd) && target && *target)
		rd = target;
	if (!rd || !*rd)
		rd = "/";
	/* The sealed state cookie carries rd and must stay under the 4 KiB cookie limit. */
	if (strlen(rd) > 2000 || !eg_redirect_ok(cfg, rd)) {
		count(d, "start", "bad_redirect");
		login_error(d, resp, "bad_redirect", 400, "The page to return to after login is not allowed.");
		return;
	}
	if (!eg_oidc_ready(d)) {
		login_error(d, resp, "not_ready", 503, "The identity provider cannot be reached yet.");
		return;
	}
	char *state = rand_b64(24), *nonce = rand_b64(24), *verifier = rand_b64(32);
	uint8_t ch[32];
	char challenge[48];
	eg_sha256(verifier, strlen(verifier), ch);
	b64url_encode(ch, 32, challenge);
	snprintf(cname, sizeof(cname), "%s%.8s", EG_STATE_COOKIE_PREFIX, state);

	json_t *st = json_pack("{s:s, s:s, s:s, s:s, s:I}", "s", state, "n", nonce, "v", verifier,
			       "rd", rd, "exp", (json_int_t)(now_realtime_s() + ttl));
	char *binding = login_binding(cfg, r, resp, ttl);
	if (binding) {
		json_object_set_new(st, "b", json_string(binding));
		free(binding);
	}
	char *pt = json_dumps(st, JSON_COMPACT);
	char *sealed = pt ? eg_seal(o->state_key, cname, pt, strlen(pt)) : NULL;
	json_decref(st);
	if (pt) {
		OPENSSL_cleanse(pt, strlen(pt));
		free(pt);
	}
	if (!sealed) {
		login_error(d, resp, "internal", 500, "Internal error.");
		goto out;
	}
	/* Cap concurrent logins: drop the oldest state cookies beyond max - 1, and while all of
	 * them with the new one would exceed STATE_COOKIES_BUDGET bytes: a page that sends the
	 * browser here again and again with a long rd must not grow the Cookie header past what
	 * nginx reads in one line (8 KB by default), or every /oauth2/ request is a 400. */
	size_t sizes[72], total = strlen(cname) + 1 + strlen(sealed);
	size_t have = state_cookie_names(r, names, sizes, 72);
	for (size_t i = 0; i < have; i++)
		total += sizes[i] + 2;
	for (size_t i = 0; i < have && (have - i >= max || total > STATE_COOKIES_BUDGET); i++) {
		char *del = state_cookie(d, names[i], "", 0);
		eg_resp_header(resp, "Set-Cookie", del);
		free(del);
		total -= sizes[i] + 2;
	}
	char *sc = state_cookie(d, cname, sealed, ttl);
	eg_resp_header(resp, "Set-Cookie", sc);
	free(sc);
	free(sealed);

	char *e_cid = pct_encode(cfg->oidc.client_id), *e_ru = pct_encode(o->redirect_url);
	char scopes[1024] = "";
	for (size_t i = 0; i < cfg->oidc.scopes.n; i++)
		snprintf(scopes + strlen(scopes), sizeof(scopes) - strlen(scopes), "%s%s",
			 i ? " " : "", cfg->oidc.scopes.v[i]);
	char *e_sc = pct_encode(scopes);
	char *e_hint = hint && *hint && strlen(hint) <= 256 ? pct_encode(hint) : NULL;
	/* prompt=login: "sign in as another user" from the 403 page makes the OP ask again. */
	const char *prompt = eg_req_arg(r, "prompt", NULL);
	bool relogin = prompt && strcmp(prompt, "login") == 0;
	char *loc = xasprintf("%s%sresponse_type=code&client_id=%s&redirect_uri=%s&scope=%s"
			      "&state=%s&nonce=%s&code_challenge=%s&code_challenge_method=S256%s%s%s",
			      o->authorization_endpoint,
			      strchr(o->authorization_endpoint, '?') ? "&" : "?", e_cid, e_ru, e_sc,
			      state, nonce, challenge, relogin ? "&prompt=login" : "", e_hint ? "&login_hint=" : "",
			      e_hint ? e_hint : "");
	eg_resp_redirect(resp, loc);
	count(d, "start", "ok");
	free(loc);
	free(e_cid);
	free(e_ru);
	free(e_sc);
	free(e_hint);
out:
	free(state);
	free(nonce);
	OPENSSL_cleanse(verifier, strlen(verifier));
	free(verifier);
}

/* --- /oauth2/callback ------------------------------------------------------------------- */

static void fail_page(struct eg_daemon *d, struct eg_resp *resp, const char *step, int status,
		      const char *msg)
{
	count(d, "callback", step);
	login_error(d, resp, step, status, msg);
}

/* A login that cannot complete because the session store is unreachable (an outage,
 * docs/sessions.md "Several hosts"): the honest page, but not a 5xx, which nginx passes
 * on and monitoring counts as the server failing (the outage is logged once already).
 * 409: the request is fine, the state of the server does not allow it now, and trying
 * again later can succeed (Retry-After); a status of its own, so an access log tells
 * these apart from the other failed logins (400 bad state, 401 bad token). */
static void store_unavailable_page(struct eg_daemon *d, struct eg_resp *resp)
{
	eg_resp_header(resp, "Retry-After", "5");
	fail_page(d, resp, "store_unavailable", 409,
		  "Sign-in is temporarily unavailable (the session store cannot be reached). Please try again "
		  "in a moment.");
}

static void h_callback(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	struct eg_oidc *o = d->oidc;
	const struct eg_config *cfg = d->cfg;
	static const char *const single[] = { "state", "code", "error", "error_description", "iss",
					      "session_state", "error_uri", NULL };
	char cname[64], cval[4096], why[256] = "";
	json_t *st = NULL, *claims = NULL;
	struct tokens t = { 0 };
	int64_t id_exp = INT64_MAX;

	eg_resp_header(resp, "Cache-Control", "no-store");
	for (const char *const *p = single; *p; p++) {
		int n = 0;
		eg_req_arg(r, *p, &n);
		if (n > 1) {
			fail_page(d, resp, "duplicate", 400,
				  "A login parameter appears more than once; the request was refused.");
			return;
		}
	}
	const char *state = eg_req_arg(r, "state", NULL);
	const char *code = eg_req_arg(r, "code", NULL);
	const char *error = eg_req_arg(r, "error", NULL);
	const char *iss = eg_req_arg(r, "iss", NULL);
	if (state && strlen(state) >= 8) {
		snprintf(cname, sizeof(cname), "%s%.8s", EG_STATE_COOKIE_PREFIX, state);
		char *del = state_cookie(d, cname, "", 0); /* one use, whatever happens */
		eg_resp_header(resp, "Set-Cookie", del);
		free(del);
	}
	/* RFC 9207 2.4: iss must name our issuer, in error responses too, and is required when
	 * the OP advertises it (mix-up defence). */
	if ((iss && strcmp(iss, cfg->oidc.issuer) != 0) || (!iss && eg_oidc_ready(d) && o->iss_param_required)) {
		fail_page(d, resp, "iss", 400, "The login response came from another issuer.");
		return;
	}
	if (error) {
		const char *desc = eg_req_arg(r, "error_description", NULL);
		char *msg = xasprintf("The identity provider answered: %.100s%s%.300s", error,
				      desc ? " — " : "", desc ? desc : "");
		fail_page(d, resp, "op_error", 400, msg);
		free(msg);
		return;
	}
	if (!state || !code || strlen(state) != 32) {
		fail_page(d, resp, "malformed", 400, "The login response is incomplete.");
		return;
	}
	if (!eg_oidc_ready(d)) {
		fail_page(d, resp, "not_ready", 503, "The identity provider cannot be reached.");
		return;
	}
	size_t ptlen;
	char *pt = eg_req_cookie(r, cname, cval, sizeof(cval))
			   ? eg_unseal(o->state_key, cname, cval, strlen(cval), &ptlen)
			   : NULL;
	if (pt) {
		st = json_loadb(pt, ptlen, JSON_REJECT_DUPLICATES, NULL);
		OPENSSL_cleanse(pt, ptlen);
		free(pt);
	}
	const char *s_state = json_string_value(json_object_get(st, "s"));
	const char *nonce = json_string_value(json_object_get(st, "n"));
	const char *verifier = json_string_value(json_object_get(st, "v"));
	const char *rd = json_string_value(json_object_get(st, "rd"));
	int64_t exp = (int64_t)json_integer_value(json_object_get(st, "exp"));
	if (!s_state || !nonce || !verifier || !rd || strlen(s_state) != strlen(state) ||
	    !ct_equal(s_state, state, strlen(state)) || exp < now_realtime_s() || !login_binding_matches(cfg, r, st)) {
		fail_page(d, resp, "state", 400,
			  "The login expired or was started in another browser. Please start again.");
		goto out;
	}
	/* One use per state, also across nodes sharing the store. */
	uint8_t sh[32];
	char shx[65];
	eg_sha256(state, strlen(state), sh);
	hex_encode(sh, 32, shx);
	int added = eg_store_add(d->store, EG_NS_STATE, shx, "1", 1, exp + 60);
	if (added < 0) {
		/* the store is unreachable: not a replay, and a session could not be kept anyway */
		store_unavailable_page(d, resp);
		goto out;
	}
	if (added == 0) {
		fail_page(d, resp, "replay", 400, "This login response was already used.");
		goto out;
	}
	char *e_code = pct_encode(code), *e_ru = pct_encode(o->redirect_url),
	     *e_v = pct_encode(verifier);
	char *form = xasprintf("grant_type=authorization_code&code=%s&redirect_uri=%s"
			       "&code_verifier=%s",
			       e_code, e_ru, e_v);
	free(e_code);
	free(e_ru);
	free(e_v);
	int rc = token_request(d, form, &t, why, sizeof(why));
	OPENSSL_cleanse(form, strlen(form));
	free(form);
	if (rc || !t.id_token) {
		log_warn("oidc: callback: %s", rc ? why : "no id_token");
		fail_page(d, resp, "token", 502, "The identity provider did not issue tokens.");
		goto out;
	}
	if (check_id_token(d, t.id_token, nonce, NULL, t.access_token, code, &claims, &id_exp, why,
			   sizeof(why))) {
		log_warn("oidc: id_token rejected: %s", why);
		fail_page(d, resp, "id_token", 401, "The identity token was not valid.");
		goto out;
	}
	if (merge_userinfo(d, t.access_token, claims, why, sizeof(why))) {
		log_warn("oidc: %s", why);
		fail_page(d, resp, "userinfo", 401, "The user information was not valid.");
		goto out;
	}
	/* A login replaces whatever session the browser had (no fixation, no leftovers). */
	char old[EG_TICKET_MAX + 8];
	if (eg_req_cookie(r, cfg->cookie.name, old, sizeof(old)))
		eg_session_end_ticket(d, old, "relogin", NULL);
	struct eg_session_new sn = {
		.claims = claims,
		.sub = (char *)json_string_value(json_object_get(claims, "sub")),
		.sid = (char *)json_string_value(json_object_get(claims, "sid")),
		.id_token = t.id_token,
		.access_token = t.access_token,
		.refresh_token = t.refresh_token,
		.token_exp = token_expiry(&t, id_exp),
	};
	char ticket[EG_TICKET_MAX], sid[EG_SESSION_ID_LEN + 1];
	if (eg_session_create(d, &sn, ticket, sizeof(ticket), sid)) {
		/* the store went away since the state was checked: the same honest answer */
		if (eg_store_down_since_ms(d->store))
			store_unavailable_page(d, resp);
		else
			fail_page(d, resp, "session", 500, "The session could not be stored.");
		goto out;
	}
	int64_t life = cfg->cookie.lifetime_s > 0 ? cfg->cookie.lifetime_s : 7 * 86400;
	char *sc = eg_cookie_header(cfg, cfg->cookie.name, ticket, NULL, life);
	OPENSSL_cleanse(ticket, sizeof(ticket));
	eg_resp_header(resp, "Set-Cookie", sc);
	OPENSSL_cleanse(sc, strlen(sc));
	free(sc);
	log_info("oidc: login sub=%.64s session %.12s…", sn.sub, sid);
	count(d, "callback", "ok");
	eg_resp_redirect(resp, rd);
out:
	json_decref(st);
	json_decref(claims);
	tokens_clear(&t);
}

/* Content-Type application/x-www-form-urlencoded, optionally with parameters
 * (";charset=UTF-8"); exactly one such header. */
static bool is_form_post(const struct eg_req *r)
{
	static const char form[] = "application/x-www-form-urlencoded";
	bool dup = false;
	const char *ct = eg_req_header_dup(r, "Content-Type", &dup);
	size_t n = sizeof(form) - 1;

	if (!ct || dup || strncasecmp(ct, form, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* --- /oauth2/sign_out ----------------------------------------------------------------------- */

/* The sign-out form's CSRF token: an HMAC of the session ticket under the state key,
 * so it is bound to this browser's session and no other page can produce it. */
static void sign_out_token(const struct eg_oidc *o, const char *ticket, char out[48])
{
	uint8_t mac[32];
	char *msg = xasprintf("edgegate sign_out\n%s", ticket);

	if (eg_hmac_sha256(o->state_key, sizeof(o->state_key), msg, strlen(msg), mac) != 0)
		abort(); /* no HMAC: nothing safe can be done */
	OPENSSL_cleanse(msg, strlen(msg));
	free(msg);
	b64url_encode(mac, sizeof(mac), out);
	OPENSSL_cleanse(mac, sizeof(mac));
}

/* GET: a confirmation page whose form POSTs the token back (a link or an image on
 * any page must not end a session). */
static void sign_out_page(struct eg_daemon *d, const char *ticket, const char *rd,
			  struct eg_resp *resp)
{
	char tok[48];

	sign_out_token(d->oidc, ticket, tok);
	struct eg_sign_out_view v = { .action = "sign_out", .csrf_field = "csrf", .csrf_token = tok, .rd = rd,
				      .form_origin = d->oidc->end_session_endpoint };
	eg_page_sign_out(resp, &v);
	OPENSSL_cleanse(tok, sizeof(tok));
}

static bool sign_out_token_ok(struct eg_daemon *d, const struct eg_req *r, const char *ticket)
{
	char want[48];
	int n = 0;
	char *got = r->body ? form_get(r->body, r->body_len, "csrf", &n) : NULL;
	bool ok;

	sign_out_token(d->oidc, ticket, want);
	ok = got && n == 1 && strlen(got) == strlen(want) && ct_equal(got, want, strlen(want));
	OPENSSL_cleanse(want, sizeof(want));
	free(got);
	return ok;
}

static void h_sign_out(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	struct eg_oidc *o = d->oidc;
	const struct eg_config *cfg = d->cfg;
	bool post = strcmp(r->method, "POST") == 0;
	int n = 0;
	char *rd_form = NULL;
	const char *rd;
	char ticket[EG_TICKET_MAX + 8], *id_token = NULL;

	eg_resp_header(resp, "Cache-Control", "no-store");
	if (post && !is_form_post(r)) {
		eg_resp_html_error(resp, 415, "Bad request", "The sign-out form was not sent as a form.");
		return;
	}
	if (post) {
		rd_form = r->body ? form_get(r->body, r->body_len, "rd", &n) : NULL;
		rd = rd_form;
	} else {
		rd = eg_req_arg(r, "rd", &n);
	}
	if (n > 1 || (rd && *rd && !eg_redirect_ok(cfg, rd))) {
		count(d, "sign_out", "bad_redirect");
		eg_resp_html_error(resp, 400, "Bad redirect",
				   "The page to return to after sign-out is not allowed.");
		goto out;
	}
	if (!rd || !*rd)
		rd = "/";
	bool have = eg_req_cookie(r, cfg->cookie.name, ticket, sizeof(ticket)) != NULL;
	if (!post && have) {
		sign_out_page(d, ticket, rd, resp);
		goto out;
	}
	if (post && have && !sign_out_token_ok(d, r, ticket)) {
		count(d, "sign_out", "csrf");
		eg_resp_html_error(resp, 403, "Sign-out not confirmed",
				   "The sign-out request did not come from the sign-out page. "
				   "Open the sign-out page and confirm there.");
		goto out;
	}
	if (have) {
		struct eg_flow_tuple own;
		bool spare = r->peer_trusted && eg_flow_from_request(r, &own) == 0;
		struct eg_revoke_result res;
		eg_revoke_spare(spare ? &own : NULL);
		eg_session_end_ticket_ex(d, ticket, "sign_out", &id_token, &res);
		eg_revoke_spare(NULL);
		const char *dur = eg_revoke_result_durability(&res);
		if (strcmp(dur, "none") == 0) {
			/* Not recorded anywhere durable: saying "signed out" would be a lie. */
			count(d, "sign_out", "not_recorded");
			eg_resp_html_error(resp, 503, "Sign-out failed",
					   "The sign-out could not be recorded. Please try again.");
			goto out;
		}
		if (res.ended)
			eg_resp_header(resp, "Edgegate-Revocation", dur);
	}
	char *del = eg_cookie_header(cfg, cfg->cookie.name, "", NULL, 0);
	eg_resp_header(resp, "Set-Cookie", del);
	free(del);
	count(d, "sign_out", "ok");
	if (o && eg_oidc_ready(d) && o->end_session_endpoint && id_token) {
		/* RP-initiated logout 1.0: id_token_hint + a registered post-logout URI. */
		char *abs_rd = NULL;
		const char *plr = cfg->oidc.post_logout_redirect_url;
		if (!plr) {
			if (rd[0] == '/' && cfg->public_url)
				abs_rd = xasprintf("%s%s", cfg->public_url, rd);
			plr = abs_rd ? abs_rd : rd;
		}
		char *e_hint = pct_encode(id_token), *e_plr = pct_encode(plr),
		     *e_cid = pct_encode(cfg->oidc.client_id);
		char *loc = xasprintf("%s%sid_token_hint=%s&post_logout_redirect_uri=%s&client_id=%s",
				      o->end_session_endpoint,
				      strchr(o->end_session_endpoint, '?') ? "&" : "?", e_hint,
				      e_plr, e_cid);
		eg_resp_redirect(resp, loc);
		free(loc);
		free(e_hint);
		free(e_plr);
		free(e_cid);
		free(abs_rd);
	} else {
		eg_resp_redirect(resp, rd);
	}
out:
	OPENSSL_cleanse(ticket, sizeof(ticket));
	free(id_token);
	free(rd_form);
}

/* --- /oauth2/backchannel-logout ----------------------------------------------------------- */

static void bcl_error(struct eg_daemon *d, struct eg_resp *resp, const char *why)
{
	json_t *j = json_pack("{s:s, s:s}", "error", "invalid_request", "error_description", why);
	char *s = json_dumps(j, JSON_COMPACT);

	log_warn("oidc: back-channel logout rejected: %s", why);
	count(d, "backchannel", "rejected");
	eg_resp_json(resp, 400, s);
	free(s);
	json_decref(j);
}

static void h_backchannel(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	const struct eg_oidc_config *oc = &d->cfg->oidc;
	struct eg_jws jws;
	char why[256] = "";
	int n = 0;
	char *tok;

	eg_resp_header(resp, "Cache-Control", "no-store");
	if (!eg_oidc_ready(d)) {
		eg_resp_json(resp, 503, "{\"error\":\"temporarily_unavailable\"}");
		return;
	}
	/* Back-Channel Logout 1.0 2.5: the logout_token comes as a form POST. */
	if (!is_form_post(r)) {
		log_warn("oidc: back-channel logout rejected: Content-Type is not "
			 "application/x-www-form-urlencoded");
		count(d, "backchannel", "rejected");
		eg_resp_json(resp, 415,
			     "{\"error\":\"invalid_request\",\"error_description\":"
			     "\"Content-Type must be application/x-www-form-urlencoded\"}");
		return;
	}
	tok = r->body ? form_get(r->body, r->body_len, "logout_token", &n) : NULL;
	if (!tok || n != 1) {
		free(tok);
		bcl_error(d, resp, n > 1 ? "logout_token appears more than once" : "no logout_token");
		return;
	}
	memset(&jws, 0, sizeof(jws));
	if (verify_sig(d, tok, &jws, why, sizeof(why))) {
		free(tok);
		bcl_error(d, resp, why);
		return;
	}
	free(tok);
	/* typ logout+jwt (Back-Channel Logout 1.0 2.4), or JWT from OPs older than it; RFC 7515
	 * 4.1.9: case-insensitive, "application/" may be left out. Anything else is another
	 * kind of token (at+jwt, secevent+jwt ...). A typ that is not a string is refused. */
	const json_t *typ_j = json_object_get(jws.header, "typ");
	const char *typ = json_string_value(typ_j);
	if (typ && strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	if ((typ_j && !typ) || (typ && strcasecmp(typ, "logout+jwt") != 0 && strcasecmp(typ, "JWT") != 0)) {
		eg_jws_clear(&jws);
		bcl_error(d, resp, "unexpected typ");
		return;
	}
	json_t *c = json_incref(jws.payload);
	eg_jws_clear(&jws);
	int64_t now = now_realtime_s();
	if (eg_oidc_check_logout_claims(c, oc->issuer, oc->client_id, oc->leeway_s, now, why,
					sizeof(why))) {
		json_decref(c);
		bcl_error(d, resp, why);
		return;
	}
	/* Replay cache keyed by issuer and jti, kept as long as the token could pass. */
	const char *jti = json_string_value(json_object_get(c, "jti"));
	char *k = xasprintf("%s\n%s", oc->issuer, jti);
	uint8_t h[32];
	char hx[65];
	eg_sha256(k, strlen(k), h);
	hex_encode(h, 32, hx);
	free(k);
	int64_t iat = 0;
	eg_claim_time(c, "iat", &iat);
	/* The jti is looked up first and kept only once the logout is recorded: a logout
	 * that was not acknowledged (503) must be deliverable again, and a write to a store
	 * that timed out may still land later. A store that cannot be read does not block a
	 * logout: a replayed logout token can only end the sessions it already names. */
	void *seen = NULL;
	int had = eg_store_get(d->store, EG_NS_JTI, hx, &seen, NULL, NULL);
	free(seen);
	if (had == 1) {
		json_decref(c);
		bcl_error(d, resp, "logout_token replayed");
		return;
	}
	if (had < 0)
		log_warn("oidc: back-channel logout: jti replay cache unavailable (store error)");
	const char *sub = json_string_value(json_object_get(c, "sub"));
	const char *sid = json_string_value(json_object_get(c, "sid"));
	struct eg_revoke_result res;
	int ended = eg_session_revoke_ex(d, NULL, sub, sid, "backchannel_logout", &res);
	const char *dur = eg_revoke_result_durability(&res);
	json_decref(c);
	if (strcmp(dur, "none") == 0) {
		/* Not acknowledged: the OP may deliver it again (the jti was not kept). During a
		 * store outage (the sessions of a sid are listed from the store's index) the
		 * answer is the one Back-Channel Logout 1.0 section 2.8 names for a failed logout,
		 * 400, not a 5xx through nginx (docs/sessions.md, "Several hosts"). */
		bool outage = eg_store_down_since_ms(d->store) != 0;
		log_err("oidc: back-channel logout could not be recorded (store unavailable)");
		count(d, "backchannel", "not_recorded");
		eg_resp_json(resp, outage ? 400 : 503, "{\"error\":\"temporarily_unavailable\","
				      "\"error_description\":\"the logout could not be recorded\"}");
		return;
	}
	/* Two deliveries racing past the lookup both end the same sessions: harmless. */
	if (eg_store_add(d->store, EG_NS_JTI, hx, "1", 1, iat + LOGOUT_MAX_AGE_S + 2 * oc->leeway_s + 10) < 0)
		log_warn("oidc: back-channel logout: jti not recorded (store error)");
	log_info("oidc: back-channel logout ended %d session(s) (recorded: %s)", ended, dur);
	count(d, "backchannel", "ok");
	eg_resp_body(resp, 200, "application/json",
		     strcmp(dur, "local") == 0 ? "{\"durable\":\"local\"}" : "{}");
}

/* --- /oauth2/frontchannel-logout ------------------------------------------------------------- */

/* OpenID Connect Front-Channel Logout 1.0: the OP loads this URL in an iframe with iss
 * and sid. Only sid-based logout is done (the browser's cookie rarely reaches a
 * third-party iframe); the sid is the OP's secret session id, so a page that does not
 * know it cannot end anyone's session. */
static void h_frontchannel(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	const struct eg_oidc_config *oc = &d->cfg->oidc;
	int ni = 0, ns = 0;
	const char *iss = eg_req_arg(r, "iss", &ni), *sid = eg_req_arg(r, "sid", &ns);

	eg_resp_header(resp, "Cache-Control", "no-store");
	if (ni != 1 || ns != 1 || !sid || !*sid || strlen(sid) > 256 || strcmp(iss, oc->issuer) != 0) {
		count(d, "frontchannel", "rejected");
		eg_resp_html_error(resp, 400, "Bad logout request", "iss and sid are required, once each.");
		return;
	}
	struct eg_revoke_result res;
	int ended = eg_session_revoke_ex(d, NULL, NULL, sid, "frontchannel_logout", &res);
	if (ended < 0 || strcmp(eg_revoke_result_durability(&res), "none") == 0) {
		/* Not recorded: "signed out" would be a lie (docs/revocation.md). */
		count(d, "frontchannel", "not_recorded");
		if (eg_store_down_since_ms(d->store))
			eg_resp_header(resp, "Retry-After", "5"); /* a store outage: 409 as for a login */
		eg_resp_html_error(resp, eg_store_down_since_ms(d->store) ? 409 : 503, "Logout failed",
				   "The sign-out could not be recorded. Please try again.");
		return;
	}
	log_info("oidc: front-channel logout ended %d session(s)", ended);
	count(d, "frontchannel", "ok");
	eg_resp_body(resp, 200, "text/html; charset=utf-8",
		     "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signed out</title></head>"
		     "<body>Signed out.</body></html>\n");
}

/* --- /oauth2/userinfo ------------------------------------------------------------------------- */

/* Every store worker is busy (http.store_queue is full): nothing was done, the user may
 * simply try again (a 409 with Retry-After, as for a store outage: no 5xx). */
static void h_busy_page(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	count(d, "busy", "store_workers");
	eg_resp_header(resp, "Retry-After", "5");
	eg_resp_html_error(resp, 409, "Temporarily unavailable",
			   "The server is busy and did not handle this request. Please try again in a moment.");
}

/* The same for the OP's back-channel logout: 400 temporarily_unavailable, as in an outage
 * (it was not acknowledged; the OP may deliver it again). */
static void h_busy_backchannel(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	count(d, "backchannel", "busy");
	eg_resp_json(resp, 400, "{\"error\":\"temporarily_unavailable\","
				"\"error_description\":\"the logout could not be handled now\"}");
}

static void h_userinfo(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	struct eg_identity id;

	memset(&id, 0, sizeof(id));
	eg_resp_header(resp, "Cache-Control", "no-store");
	if (eg_session_identity(d, r, &id) != 0) {
		eg_resp_json(resp, 401, "{\"error\":\"unauthorized\"}");
		return;
	}
	char *s = json_dumps(id.claims, JSON_COMPACT);
	eg_resp_json(resp, 200, s ? s : "{}");
	free(s);
	json_decref(id.claims);
}

/* --- admin -------------------------------------------------------------------------------- */

static json_t *adm_sessions(struct eg_daemon *d, const json_t *req, const char **err)
{
	const char *sub = json_string_value(json_object_get(req, "sub"));

	return json_pack("{s:b, s:o}", "ok", 1, "sessions", eg_sessions_list(d, sub));
}

static json_t *adm_revoke(struct eg_daemon *d, const json_t *req, const char **err)
{
	const char *id = json_string_value(json_object_get(req, "session"));
	const char *sub = json_string_value(json_object_get(req, "sub"));
	const char *sid = json_string_value(json_object_get(req, "sid"));
	const char *reason = json_string_value(json_object_get(req, "reason"));

	if (!id && !sub && !sid) {
		*err = "revoke needs session, sub or sid";
		return NULL;
	}
	struct eg_revoke_result res;
	int n = eg_session_revoke_ex(d, id, sub, sid, reason ? reason : "admin", &res);
	const char *dur = eg_revoke_result_durability(&res);
	if (strcmp(dur, "none") == 0) {
		/* never acknowledged unless recorded (docs/revocation.md) */
		*err = res.lookup_failed ? "revocation not recorded: the store cannot list the sessions of that sub/sid"
					 : "revocation not recorded: neither the store nor state_dir took it";
		return NULL;
	}
	json_t *out = json_pack("{s:b, s:i, s:s}", "ok", 1, "revoked", n < 0 ? 0 : n, "durable", dur);
	if (res.local)
		json_object_set_new(out, "warning",
				    json_string("the store did not take the revocation: recorded in state_dir on this "
						"node only and retried until the store takes it"));
	return out;
}

/* --- lifecycle -------------------------------------------------------------------------------- */

/* The sealing secret: configured, or generated once into state_dir (0600). */
static int load_secret(const struct eg_config *cfg, uint8_t key[EG_SEAL_KEY_LEN], char *err,
		       size_t errlen)
{
	char *path = NULL, *data = NULL;
	size_t len = 0;
	int rc = -1;

	if (cfg->cookie.secret) {
		rc = eg_seal_derive(cfg->cookie.secret, strlen(cfg->cookie.secret), NULL, 0,
				    "edgegate state v1", key);
		goto out;
	}
	path = xasprintf("%s/cookie.key", cfg->state_dir ? cfg->state_dir : "/var/lib/edgegate");
	data = read_file(path, 4096, &len);
	if (!data) {
		uint8_t raw[32];
		char hex[65];
		if (random_bytes(raw, sizeof(raw))) {
			snprintf(err, errlen, "no randomness for %s", path);
			goto out;
		}
		hex_encode(raw, 32, hex);
		OPENSSL_cleanse(raw, sizeof(raw));
		if (write_file_atomic(path, hex, 64, 0600)) {
			snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
			goto out;
		}
		data = xstrdup(hex);
		len = 64;
		OPENSSL_cleanse(hex, sizeof(hex));
	}
	if (len < 32) {
		snprintf(err, errlen, "%s: too short", path);
		goto out;
	}
	rc = eg_seal_derive(data, len, NULL, 0, "edgegate state v1", key);
out:
	if (data) {
		OPENSSL_cleanse(data, len);
		free(data);
	}
	free(path);
	return rc;
}

int eg_oidc_init(struct eg_daemon *d, char *err, size_t errlen)
{
	const struct eg_config *cfg = d->cfg;
	const struct eg_oidc_config *oc = &cfg->oidc;
	struct eg_oidc *o;

	if (!oc->present || !oc->issuer || !oc->client_id) {
		snprintf(err, errlen, "oidc: issuer and client_id are required");
		return -1;
	}
	bool issuer_http = false;
	if (eg_url_https_or_loopback(oc->issuer, &issuer_http) != 0) {
		snprintf(err, errlen, "oidc.issuer: must be https (plain http only on loopback)");
		return -1;
	}
	/* A cookie without Secure is only acceptable where nothing leaves the host. */
	if (!cfg->cookie.secure && !eg_url_is_loopback(cfg->public_url)) {
		snprintf(err, errlen, "cookie.secure: false is only allowed with a loopback public_url");
		return -1;
	}
	if (!d->sessions && eg_sessions_init(d, err, errlen))
		return -1;
	/* Bearer tokens for our own client_id are what ID tokens look like; only their
	 * nonce/at_hash/c_hash tells them apart unless at+jwt is required. */
	for (size_t i = 0; cfg->jwt.present && !cfg->jwt.require_at_jwt && i < cfg->jwt.audiences.n; i++)
		if (strcmp(cfg->jwt.audiences.v[i], oc->client_id) == 0)
			log_warn("jwt.audience includes oidc.client_id: set jwt.require_at_jwt (RFC 9068) "
				 "so that an ID token cannot pass as an access token");
	o = xcalloc(1, sizeof(*o));
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	o->loopback_ok = issuer_http;
	/* RS256 unless configured: the registration default (OIDC Core 3.1.3.7 step 7, Registration
	 * id_token_signed_response_alg), for ID and logout tokens alike (Back-Channel Logout 2.6):
	 * a token in another algorithm, even by one of the OP's keys, is not what was registered. */
	o->algs = 1u << EG_ALG_RS256;
	if (oc->algorithms.n) {
		size_t bad = 0;
		if (eg_algset_parse((const char *const *)oc->algorithms.v, oc->algorithms.n,
				    &o->algs, &bad)) {
			snprintf(err, errlen, "oidc.algorithms[%zu]: unknown algorithm", bad);
			goto fail;
		}
	}
	o->redirect_url = oc->redirect_url ? xstrdup(oc->redirect_url)
					   : xasprintf("%s/oauth2/callback",
						       cfg->public_url ? cfg->public_url : "");
	if (load_secret(cfg, o->state_key, err, errlen))
		goto fail;
	if (strcmp(oc->token_auth_method, "private_key_jwt") == 0) {
		char kerr[256];
		o->client_key_alg = oc->client_key_alg ? eg_alg_from_name(oc->client_key_alg) : EG_ALG_NONE;
		o->client_key = eg_sign_key_load(oc->client_key_file, &o->client_key_alg, kerr, sizeof(kerr));
		if (!o->client_key) {
			snprintf(err, errlen, "oidc.client_key_file: %s", kerr);
			goto fail;
		}
	}
	d->oidc = o;
	eg_sessions_set_refresher(d->sessions, refresh_cb);
	eg_http_register("/oauth2/start", "GET", h_start);
	eg_http_register("/oauth2/callback", "GET", h_callback);
	eg_http_register("/oauth2/sign_out", "GET,POST", h_sign_out);
	eg_http_register("/oauth2/backchannel-logout", "POST", h_backchannel);
	eg_http_register("/oauth2/frontchannel-logout", "GET", h_frontchannel);
	eg_http_register("/oauth2/userinfo", "GET", h_userinfo);
	/* Off the threads that answer verdicts: these wait for the store or the OP. */
	eg_http_store_always("/oauth2/callback", h_busy_page);
	eg_http_store_always("/oauth2/sign_out", h_busy_page);
	eg_http_store_always("/oauth2/frontchannel-logout", h_busy_page);
	eg_http_store_always("/oauth2/backchannel-logout", h_busy_backchannel);
	eg_http_store_offload("/oauth2/userinfo");
	eg_admin_register("sessions", adm_sessions);
	eg_admin_register("revoke", adm_revoke);
	/* Discovery runs in the background so a down OP never blocks start-up. */
	if (pthread_create(&o->disc, NULL, discovery_main, d) == 0)
		o->disc_running = true;
	else
		log_err("oidc: cannot start the discovery thread");
	return 0;
fail:
	pthread_mutex_destroy(&o->mu);
	pthread_cond_destroy(&o->cv);
	free(o->redirect_url);
	EVP_PKEY_free(o->client_key);
	free(o);
	return -1;
}

void eg_oidc_free(struct eg_daemon *d)
{
	struct eg_oidc *o = d->oidc;

	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->stopping = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	if (o->disc_running)
		pthread_join(o->disc, NULL);
	if (d->sessions)
		eg_sessions_set_refresher(d->sessions, NULL);
	if (o->keys)
		eg_keysource_free(o->keys);
	free(o->authorization_endpoint);
	free(o->token_endpoint);
	free(o->userinfo_endpoint);
	free(o->end_session_endpoint);
	free(o->jwks_uri);
	free(o->redirect_url);
	EVP_PKEY_free(o->client_key);
	OPENSSL_cleanse(o->state_key, sizeof(o->state_key));
	pthread_mutex_destroy(&o->mu);
	pthread_cond_destroy(&o->cv);
	free(o);
	d->oidc = NULL;
}
