/* pages.h - the HTML pages edgegated shows people: access denied (403), login failed,
 * and the sign-out confirmation. One template, no external assets, no JavaScript,
 * readable without CSS; every field is HTML-escaped and every page carries a strict
 * Content-Security-Policy (default-src 'none', the inline style by hash). Pure
 * rendering: callers decide what is safe to show. */
#ifndef EG_PAGES_H
#define EG_PAGES_H

#include <stdint.h>

struct eg_resp;

/* Request ids: 16 random bytes, base64url (22 characters). They name one event in the
 * daemon's log and on the page, so a user can quote it to an operator. */
#define EG_REQUEST_ID_LEN 22
void eg_request_id(char out[EG_REQUEST_ID_LEN + 1]);
/* True for a string of exactly that shape (what a header may name). */
int eg_request_id_valid(const char *s);

/* HTML-escapes & < > " ' (text and attribute values). Caller frees. */
char *eg_html_escape(const char *s);

/* One sentence a person can act on, for a verdict reason code (never NULL). */
const char *eg_reason_text(const char *reason);
/* What to try after a login failure at step (oidc.c's step names; never NULL). */
const char *eg_login_hint(const char *step);

/* The page headers: CSP (form-action 'self' plus form_origin's origin when given),
 * nosniff, no referrer, no framing. Exposed so other HTML answers can share them. */
void eg_page_headers(struct eg_resp *resp, const char *form_origin);

struct eg_forbidden_view {
	const char *request_id; /* NULL: the denial is unknown here (expired, or not ours) */
	const char *reason;     /* code, e.g. "not_allowed"; NULL = not shown */
	const char *route;      /* the route's path prefix; NULL = not shown */
	const char *target;     /* host and path the browser asked for; NULL = not shown */
	const char *user;       /* identity, shown only when the caller proved it is theirs */
	const char *email;
	const char *groups;
	const char *rule;       /* what the route asks for (routes[].explain); NULL = not shown */
	const char *signin_url; /* "sign in as another user" */
	const char *signout_url;
	int64_t at;             /* UNIX time of the denial, 0 = not shown */
};
void eg_page_forbidden(struct eg_resp *resp, const struct eg_forbidden_view *v);

/* Login failed: what happened (msg), what to try (from step), the request id, and a
 * link to start again. */
void eg_page_login_error(struct eg_resp *resp, int status, const char *msg, const char *step,
			 const char *request_id, const char *retry_url);

/* Any other page a browser may see (a bad request, a refused sign-out...): a title, one
 * paragraph, and the request id when there is one. The CSP-strict replacement for
 * eg_resp_html_error(). */
void eg_page_message(struct eg_resp *resp, int status, const char *title, const char *msg,
		     const char *request_id);

struct eg_sign_out_view {
	const char *action;      /* where the form posts, e.g. "/oauth2/sign_out" */
	const char *user;        /* who is signed in; NULL = not shown */
	const char *csrf_field;  /* hidden input name, e.g. "csrf" */
	const char *csrf_token;
	const char *rd;          /* where to go afterwards (hidden input "rd"); NULL = none */
	const char *cancel_url;  /* "stay signed in" link; NULL = "/" */
	const char *form_origin; /* URL whose origin the POST may redirect to (the OP's
				    end_session_endpoint): browsers apply form-action to redirects */
};
void eg_page_sign_out(struct eg_resp *resp, const struct eg_sign_out_view *v);

#endif
