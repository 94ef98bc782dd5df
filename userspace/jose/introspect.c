/* introspect.c - RFC 7662 token introspection for opaque bearer tokens (see introspect.h). */
#include "introspect.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "loopback.h"
#include "util.h"

#define MAX_BODY (64u << 10)

struct body {
	char *p;
	size_t n;
	bool overflow;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;

	if (n > MAX_BODY - b->n) {
		b->overflow = true;
		return 0;
	}
	b->p = realloc(b->p, b->n + n + 1);
	if (!b->p)
		abort();
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* The POST; the parsed JSON object or NULL (reason logged, never the token). */
static json_t *post(const struct eg_jwt_config *j, const char *tok, size_t len)
{
	bool plain_http = false;
	struct body b = { 0 };
	struct curl_slist *h = NULL;
	long status = 0;
	json_t *r = NULL;
	CURL *c;

	if (eg_url_https_or_loopback(j->introspection_url, &plain_http) != 0 || !(c = curl_easy_init()))
		return NULL;
	char *t = xmalloc(len + 1);
	memcpy(t, tok, len);
	t[len] = '\0';
	char *e_tok = pct_encode(t);
	char *form = xasprintf("token=%s&token_type_hint=access_token", e_tok);
	/* RFC 6749 2.3.1: both parts form-encoded before base64 */
	char *id = pct_encode(j->introspection_client_id), *sec = pct_encode(j->introspection_client_secret);
	curl_easy_setopt(c, CURLOPT_URL, j->introspection_url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, plain_http ? "http" : "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "edgegate-introspect/1");
	if (j->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, j->ca_file);
	curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(c, CURLOPT_USERNAME, id);
	curl_easy_setopt(c, CURLOPT_PASSWORD, sec);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	h = curl_slist_append(h, "Accept: application/json");
	h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	if (rc != CURLE_OK)
		log_warn("introspection %s: %s", j->introspection_url, curl_easy_strerror(rc));
	else if (status != 200 || b.overflow)
		log_warn("introspection %s: HTTP %ld%s", j->introspection_url, status, b.overflow ? " (too large)" : "");
	else
		r = json_loadb(b.p ? b.p : "", b.n, JSON_REJECT_DUPLICATES, NULL);
	if (r && !json_is_object(r)) {
		json_decref(r);
		r = NULL;
	}
	OPENSSL_cleanse(t, len);
	OPENSSL_cleanse(e_tok, strlen(e_tok));
	OPENSSL_cleanse(form, strlen(form));
	OPENSSL_cleanse(sec, strlen(sec));
	free(t);
	free(e_tok);
	free(form);
	free(id);
	free(sec);
	free(b.p);
	return r;
}

enum eg_jose_err eg_introspect_check(const struct eg_config *cfg, json_t *resp, int64_t now, int64_t *exp_out,
				     const char **why)
{
	const struct eg_jwt_config *j = &cfg->jwt;
	if (!json_is_true(json_object_get(resp, "active"))) {
		*why = "inactive";
		return EG_JOSE_INACTIVE;
	}
	const char *tt = json_string_value(json_object_get(resp, "token_type"));
	if (json_object_get(resp, "token_type") &&
	    (!tt || (strcasecmp(tt, "Bearer") != 0 && strcasecmp(tt, "access_token") != 0))) {
		*why = "token_type is not an access token";
		return EG_JOSE_TOKEN_TYPE;
	}
	/* iss/aud are optional in RFC 7662; when present they are checked like a JWT's. */
	struct eg_jwt_expect x = {
		.issuers = json_object_get(resp, "iss") ? (const char *const *)j->issuers.v : NULL,
		.n_issuers = json_object_get(resp, "iss") ? j->issuers.n : 0,
		.audiences = json_object_get(resp, "aud") ? (const char *const *)j->audiences.v : NULL,
		.n_audiences = json_object_get(resp, "aud") ? j->audiences.n : 0,
		.leeway_s = j->leeway_s,
		.require_exp = j->require_exp,
	};
	enum eg_jose_err e = eg_jwt_check_claims(resp, &x, now, exp_out, why);
	if (e != EG_JOSE_OK)
		return e;
	json_object_del(resp, "active");
	return EG_JOSE_OK;
}

enum eg_jose_err eg_introspect(const struct eg_config *cfg, const char *tok, size_t len, json_t **claims,
			       int64_t *exp_out, const char **why)
{
	json_t *resp = post(&cfg->jwt, tok, len);
	if (!resp) {
		*why = "introspection endpoint unavailable";
		return EG_JOSE_NO_KEY;
	}
	enum eg_jose_err e = eg_introspect_check(cfg, resp, now_realtime_s(), exp_out, why);
	if (e == EG_JOSE_OK)
		*claims = resp;
	else
		json_decref(resp);
	return e;
}
