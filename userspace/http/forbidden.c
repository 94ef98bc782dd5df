/* forbidden.c - notes 403 verdicts and serves GET /forbidden (see forbidden.h).
 *
 * Who may read a note: the key is only ever sent to nginx (never shown, never logged),
 * so a request presenting it is nginx's internal redirect of the denied request itself;
 * a request id alone, or a request from an untrusted peer, gets the generic page. A
 * session's identity is shown only when the request also carries that same session. */
#include "forbidden.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "denials.h"
#include "http.h"
#include "identity.h"
#include "log.h"
#include "policy.h"
#include "proxy.h"
#include "pages.h"
#include "session.h"
#include "util.h"

#define RING_SIZE 512 /* 3.9 KiB each: 2 MiB */
#define NOTE_TTL_S 600

static struct eg_denials *ring;

/* A claim as display text: strings as they are, arrays of strings joined with ", ". */
static void claim_text(const json_t *claims, const char *name, char *out, size_t n)
{
	const json_t *v = name ? eg_claim_get(claims, name) : NULL;
	out[0] = '\0';
	if (json_is_string(v)) {
		eg_denial_copy(out, n, json_string_value(v));
	} else if (json_is_array(v)) {
		size_t i, used = 0;
		const json_t *e;
		json_array_foreach(v, i, e) {
			const char *s = json_string_value(e);
			if (!s)
				continue;
			int w = snprintf(out + used, n - used, "%s%s", used ? ", " : "", s);
			if (w < 0 || (size_t)w >= n - used) {
				out[used] = '\0';
				break;
			}
			used += (size_t)w;
		}
	}
}

static void note_identity(const struct eg_config *cfg, const struct eg_identity *id, struct eg_denial *e)
{
	e->kind = id ? id->kind : EG_ID_NONE;
	if (!id)
		return;
	if (id->kind == EG_ID_SESSION)
		eg_denial_copy(e->session_id, sizeof(e->session_id), id->session_id);
	if (id->claims) {
		claim_text(id->claims, "preferred_username", e->user, sizeof(e->user));
		if (!e->user[0])
			claim_text(id->claims, cfg->oidc.user_claim ? cfg->oidc.user_claim : "sub", e->user, sizeof(e->user));
		claim_text(id->claims, cfg->oidc.email_claim ? cfg->oidc.email_claim : "email", e->email, sizeof(e->email));
		claim_text(id->claims, cfg->oidc.groups_claim ? cfg->oidc.groups_claim : "groups", e->groups, sizeof(e->groups));
	} else if (id->cert && id->cert->subject) {
		eg_denial_copy(e->user, sizeof(e->user), id->cert->subject);
	}
}

/* Appends to out (size n); on overflow the text stays as it was and false is returned. */
static bool add(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool add(char *out, size_t n, const char *fmt, ...)
{
	size_t used = strlen(out);
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(out + used, n - used, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= n - used) {
		out[used] = '\0';
		return false;
	}
	return true;
}

/* What a route's allow asks for, for routes that opted in (explain): any one of its groups,
 * e-mail domains or its claims condition. Individual e-mail addresses and certificates are
 * never listed. */
static void route_rule(const struct eg_route *route, char *out, size_t n)
{
	const struct eg_conditions *a = &route->allow;
	bool ok = true;
	out[0] = '\0';
	for (size_t i = 0; ok && i < a->groups.n; i++)
		ok = add(out, n, "%sgroup %s", *out ? " or " : "", a->groups.v[i]);
	for (size_t i = 0; ok && i < a->domains.n; i++)
		ok = add(out, n, "%se-mail domain %s", *out ? " or " : "", a->domains.v[i]);
	for (size_t i = 0; ok && i < a->n_claims; i++) {
		const struct eg_claim_cond *cc = &a->claims[i];
		ok = add(out, n, "%s%s %s", i ? " and " : *out ? " or " : "", cc->name, cc->values.n > 1 ? "in" : "=");
		for (size_t k = 0; ok && k < cc->values.n; k++)
			ok = add(out, n, "%s%s", k ? ", " : " ", cc->values.v[k]);
	}
}

/* For the log line: client-chosen text never brings control characters or spaces. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			*s = '?';
}

static void log_denial(const struct eg_denial *e)
{
	char target[sizeof(e->target)], user[sizeof(e->user)];
	memcpy(target, e->target, sizeof(target));
	memcpy(user, e->user, sizeof(user));
	printable(target);
	printable(user);
	/* A banned source or a flood would fill the log: those stay at debug level. */
	bool noisy = strcmp(e->reason, "banned") == 0 || strcmp(e->reason, "rate_limited") == 0;
	if (noisy && eg_log_threshold < EG_LOG_DEBUG)
		return;
	eg_log(noisy ? EG_LOG_DEBUG : EG_LOG_INFO, "verdict 403 request=%s reason=%s route=%s target=%.300s user=%s session=%.12s",
	       e->id, e->reason, e->route[0] ? e->route : "-", target[0] ? target : "-", user[0] ? user : "-",
	       e->session_id[0] ? e->session_id : "-");
}

/* The HTML page for note e (NULL: unknown here); identity only when show_id. */
static void render_page(struct eg_daemon *d, const struct eg_denial *e, bool show_id, struct eg_resp *resp)
{
	const struct eg_config *cfg = d->cfg;
	const char *base = cfg->public_url ? cfg->public_url : "";
	char *signin = NULL, *signout = NULL;
	if (cfg->oidc.present) {
		char *enc = e && e->rd[0] ? pct_encode(e->rd) : NULL;
		signin = xasprintf("%s/oauth2/start?prompt=login%s%s", base, enc ? "&rd=" : "", enc ? enc : "");
		signout = xasprintf("%s/oauth2/sign_out", base);
		free(enc);
	}
	show_id = show_id && e;
	struct eg_forbidden_view v = {
		.request_id = e ? e->id : NULL,
		.reason = e ? e->reason : NULL,
		.route = e && e->route[0] ? e->route : NULL,
		.target = e && e->target[0] ? e->target : NULL,
		.user = show_id && e->user[0] ? e->user : NULL,
		.email = show_id && e->email[0] ? e->email : NULL,
		.groups = show_id && e->groups[0] ? e->groups : NULL,
		.rule = e && e->rule[0] ? e->rule : NULL,
		.signin_url = signin,
		.signout_url = signout,
		.at = e ? e->at : 0,
	};
	eg_page_forbidden(resp, &v);
	free(signin);
	free(signout);
}

/* nginx drops the body of an auth answer: the page comes through its error_page and
 * /forbidden. Traefik, Caddy and Envoy pass the auth answer on to the client: the page is
 * the answer itself (and the key, which only nginx needs, is never sent). */
static bool answer_is_dropped(const struct eg_config *cfg)
{
	return !cfg->proxy || strcmp(cfg->proxy->name, "nginx") == 0;
}

void eg_forbidden_note(struct eg_daemon *d, const struct eg_denial_note *n, struct eg_resp *resp)
{
	if (!ring)
		return;
	struct eg_denial *e = xcalloc(1, sizeof(*e)); /* ~4 KiB: off the MHD thread's stack */
	eg_request_id(e->id);
	eg_request_id(e->key);
	e->at = now_realtime_s();
	e->json = n->json;
	eg_denial_copy(e->reason, sizeof(e->reason), n->reason ? n->reason : "forbidden");
	if (n->route)
		eg_denial_copy(e->route, sizeof(e->route), n->route->path ? n->route->path : "/");
	if (n->route && n->route->explain && strcmp(e->reason, "not_allowed") == 0)
		route_rule(n->route, e->rule, sizeof(e->rule));
	if (n->path) {
		char *t = xasprintf("%s%s", n->host ? n->host : "", n->path);
		eg_denial_copy(e->target, sizeof(e->target), t);
		free(t);
	}
	/* Where "sign in as another user" returns to (/oauth2/start validates it again). Not
	 * for bearer clients, whose URL may carry their token. */
	if (n->uri && !(n->id && n->id->kind == EG_ID_BEARER) &&
	    !eg_denial_copy(e->rd, sizeof(e->rd), n->uri))
		e->rd[0] = '\0'; /* a cut URL is a wrong URL */
	note_identity(d->cfg, n->id, e);
	eg_denials_put(ring, e);
	log_denial(e);
	eg_resp_header(resp, "X-Edgegate-Request-Id", e->id);
	if (answer_is_dropped(d->cfg))
		eg_resp_header(resp, "X-Edgegate-Denial-Key", e->key);
	else if (!e->json)
		render_page(d, e, true, resp); /* the same request: its own identity */
	free(e);
}

/* --- GET /forbidden -------------------------------------------------------------------------- */

static bool looks_like_api(const struct eg_req *r)
{
	const char *accept = eg_req_header(r, "Accept");
	const char *xrw = eg_req_header(r, "X-Requested-With");
	return (accept && strstr(accept, "application/json") && !strstr(accept, "text/html")) ||
	       (xrw && str_ieq(xrw, "XMLHttpRequest")) || eg_req_header(r, "Authorization");
}

static void json_answer(struct eg_resp *resp, const struct eg_denial *e)
{
	json_t *body = e ? json_pack("{s:i,s:s,s:s,s:s}", "status", 403, "error", e->reason, "message",
				     eg_reason_text(e->reason), "request_id", e->id)
			 : json_pack("{s:i,s:s,s:s}", "status", 403, "error", "forbidden", "message", "forbidden");
	char *s = json_dumps(body, JSON_COMPACT);
	eg_resp_json(resp, 403, s);
	free(s);
	json_decref(body);
}

/* The session presented now is the one that was denied. */
static bool same_session(struct eg_daemon *d, const struct eg_req *r, const struct eg_denial *e)
{
	struct eg_identity now = { 0 };
	bool same = eg_session_identity(d, r, &now) == 0 && strlen(now.session_id) == strlen(e->session_id) &&
		    ct_equal(now.session_id, e->session_id, strlen(e->session_id));
	eg_identity_clear(&now);
	return same;
}

static void h_forbidden(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	struct eg_denial *e = xcalloc(1, sizeof(*e));
	bool found = r->peer_trusted &&
		     eg_denials_get(ring, eg_req_header(r, "X-Edgegate-Request-Id"),
				    eg_req_header(r, "X-Edgegate-Denial-Key"), now_realtime_s(), e);
	if (found ? e->json : looks_like_api(r)) {
		json_answer(resp, found ? e : NULL);
		free(e);
		return;
	}
	bool show_id = found && (e->kind == EG_ID_SESSION ? same_session(d, r, e) : e->kind != EG_ID_NONE);
	if (r->pass && r->pass->store_needed) { /* the session needs the store: answered on a store worker */
		free(e);
		return;
	}
	render_page(d, found ? e : NULL, show_id, resp);
	free(e);
}

int eg_forbidden_init(struct eg_daemon *d)
{
	if (!ring)
		ring = eg_denials_new(RING_SIZE, NOTE_TTL_S);
	eg_http_register("/forbidden", "GET,HEAD", h_forbidden);
	/* nginx asks for this page after every 403: on the verdict lane, and on libmicrohttpd
	 * first without the store, so a flood of denials costs what the denials cost */
	eg_http_store_offload("/forbidden");
	return 0;
}

void eg_forbidden_free(void)
{
	eg_denials_free(ring);
	ring = NULL;
}
