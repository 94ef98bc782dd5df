/* pages.c - the HTML pages (see pages.h). Pages are built with stdio into a memory
 * stream; every value that is not a literal of this file goes through put_esc(). */
#include "pages.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "jose.h"
#include "util.h"

/* The whole look. Plain semantic HTML underneath, so the page reads the same without it. */
static const char STYLE[] =
	"body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f3f4f6;color:#1c2230}"
	"main{max-width:38rem;margin:3rem auto;padding:1.5rem 2rem;background:#fff;"
	"border:1px solid #d6dae1;border-radius:8px}"
	"h1{font-size:1.4rem;margin:0 0 1rem}"
	"dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}"
	"dt{color:#596171}dd{margin:0;overflow-wrap:anywhere}"
	"code{font:.9rem ui-monospace,monospace}"
	"ul.actions{list-style:none;padding:0;margin:1.2rem 0 0}"
	"ul.actions li{display:inline-block;margin:0 .6rem .6rem 0}"
	".actions a,button{display:inline-block;padding:.45rem .9rem;border-radius:6px;"
	"border:1px solid #2d5bd0;color:#2d5bd0;background:#fff;text-decoration:none;font:inherit;cursor:pointer}"
	".actions a.primary,button{background:#2d5bd0;color:#fff}"
	".note{color:#596171;font-size:.9rem}";

static char style_hash[64]; /* 'sha256-<base64>' source for style-src */
static pthread_once_t style_once = PTHREAD_ONCE_INIT;

static void hash_style(void)
{
	uint8_t h[32];
	unsigned char b64[48];
	eg_sha256(STYLE, strlen(STYLE), h);
	EVP_EncodeBlock(b64, h, sizeof(h));
	snprintf(style_hash, sizeof(style_hash), "'sha256-%s'", (const char *)b64);
}

void eg_request_id(char out[EG_REQUEST_ID_LEN + 1])
{
	uint8_t b[16];
	if (random_bytes(b, sizeof(b)))
		abort(); /* no randomness: nothing safe can be done */
	b64url_encode(b, sizeof(b), out);
}

int eg_request_id_valid(const char *s)
{
	if (!s || strlen(s) != EG_REQUEST_ID_LEN)
		return 0;
	for (const char *p = s; *p; p++)
		if (!(*p == '-' || *p == '_' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return 0;
	return 1;
}

static const char *entity(char c)
{
	switch (c) {
	case '<': return "&lt;";
	case '>': return "&gt;";
	case '&': return "&amp;";
	case '"': return "&quot;";
	case '\'': return "&#39;";
	}
	return NULL;
}

static void put_esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		const char *e = entity(*s);
		if (e)
			fputs(e, f);
		else
			fputc(*s, f);
	}
}

char *eg_html_escape(const char *s)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	if (!f)
		abort();
	put_esc(f, s ? s : "");
	fclose(f);
	return out;
}

/* --- reasons and hints -------------------------------------------------------------------- */

struct text {
	const char *code;
	const char *text;
};

static const struct text reasons[] = {
	{ "not_allowed", "Your account is not among those allowed on this page." },
	{ "deny_rule", "A rule for this page excludes your account." },
	{ "no_route", "No access rule covers this address, so it is closed." },
	{ "banned", "Too many failed attempts came from your network address; it is blocked for a while." },
	{ "rate_limited", "Too many requests came from your network address. Wait a little and try again." },
	{ "bad_path", "The address could not be read unambiguously, so it was refused." },
	{ "bad_host", "The host name could not be read unambiguously, so it was refused." },
	{ "too_many_connections", "You have too many connections open (tabs, live pages, other sign-ins). Close some and try again." },
};

/* The text for code in a table, or NULL. */
static const char *text_of(const struct text *t, size_t n, const char *code)
{
	for (size_t i = 0; code && i < n; i++)
		if (strcmp(t[i].code, code) == 0)
			return t[i].text;
	return NULL;
}

const char *eg_reason_text(const char *reason)
{
	const char *t = text_of(reasons, sizeof(reasons) / sizeof(reasons[0]), reason);
	if (t)
		return t;
	if (reason && strncmp(reason, "cert", 4) == 0)
		return "Your client certificate is not accepted here.";
	return "Access to this page is not allowed.";
}

static const struct text hints[] = {
	{ "state", "Open the page you wanted again and finish the login in the same browser, within a few minutes." },
	{ "replay", "Do not use the Back button or reload during the login. Open the page you wanted again." },
	{ "duplicate", "Open the page you wanted again to start a fresh login." },
	{ "malformed", "Open the page you wanted again to start a fresh login." },
	{ "op_error", "If you cancelled, sign in again when you are ready. If access was refused, "
		      "ask your administrator for access." },
	{ "iss", "Start the login again. If this keeps happening, tell your administrator." },
	{ "bad_redirect", "The link that started this login points outside this site. Open the site's address directly." },
	{ "not_ready", "The identity provider may be down. Wait a moment and try again." },
	{ "token", "The identity provider may be having trouble. Wait a moment and try again." },
};

const char *eg_login_hint(const char *step)
{
	const char *t = text_of(hints, sizeof(hints) / sizeof(hints[0]), step);
	if (t)
		return t;
	return "Try again. If it keeps happening, give the request id below to your administrator.";
}

/* --- the template ----------------------------------------------------------------------- */

/* scheme://authority of url, or NULL. Only http(s) origins go into a CSP. */
static char *origin_of(const char *url)
{
	if (!url || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
		return NULL;
	const char *auth = strstr(url, "://") + 3;
	size_t n = strcspn(auth, "/?#");
	if (n == 0 || strcspn(auth, " ;,'\"\r\n") < n)
		return NULL;
	return xasprintf("%.*s%.*s", (int)(auth - url), url, (int)n, auth);
}

void eg_page_headers(struct eg_resp *resp, const char *form_origin)
{
	pthread_once(&style_once, hash_style);
	char *extra = origin_of(form_origin);
	char *csp = xasprintf("default-src 'none'; style-src %s; form-action 'self'%s%s; "
			      "frame-ancestors 'none'; base-uri 'none'",
			      style_hash, extra ? " " : "", extra ? extra : "");
	eg_resp_header(resp, "Content-Security-Policy", csp);
	eg_resp_header(resp, "X-Content-Type-Options", "nosniff");
	eg_resp_header(resp, "Referrer-Policy", "no-referrer");
	eg_resp_header(resp, "X-Frame-Options", "DENY");
	free(csp);
	free(extra);
}

static FILE *page_open(char **buf, size_t *len, const char *title)
{
	FILE *f = open_memstream(buf, len);
	if (!f)
		abort();
	fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	      "<meta name=\"robots\" content=\"noindex\"><title>", f);
	put_esc(f, title);
	fprintf(f, "</title><style>%s</style></head>\n<body><main>\n<h1>", STYLE);
	put_esc(f, title);
	fputs("</h1>\n", f);
	return f;
}

static void page_close(FILE *f, char **buf, struct eg_resp *resp, int status, const char *form_origin)
{
	fputs("</main></body></html>\n", f);
	fclose(f);
	eg_page_headers(resp, form_origin);
	eg_resp_body(resp, status, "text/html; charset=utf-8", *buf);
	free(*buf);
}

static void row(FILE *f, const char *label, const char *value, bool code)
{
	if (!value || !*value)
		return;
	fprintf(f, "<dt>%s</dt><dd>%s", label, code ? "<code>" : "");
	put_esc(f, value);
	fprintf(f, "%s</dd>\n", code ? "</code>" : "");
}

static void action_link(FILE *f, const char *href, const char *text, bool primary)
{
	if (!href)
		return;
	fprintf(f, "<li><a%s href=\"", primary ? " class=\"primary\"" : "");
	put_esc(f, href);
	fprintf(f, "\">%s</a></li>\n", text);
}

static void utc(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	buf[0] = '\0';
	if (t > 0 && gmtime_r(&tt, &tm))
		strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* --- the pages ------------------------------------------------------------------------------ */

void eg_page_forbidden(struct eg_resp *resp, const struct eg_forbidden_view *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = page_open(&buf, &len, "Access denied");
	if (v->user) {
		fputs("<p>You are signed in as <strong>", f);
		put_esc(f, v->user);
		fputs("</strong>", f);
		if (v->email && strcmp(v->email, v->user) != 0) {
			fputs(" (", f);
			put_esc(f, v->email);
			fputs(")", f);
		}
		fputs(", but this account may not open this page.</p>\n", f);
	} else {
		fputs("<p>You may not open this page.</p>\n", f);
	}
	if (v->reason) {
		fputs("<p>", f);
		put_esc(f, eg_reason_text(v->reason));
		fputs("</p>\n", f);
	}
	char when[40];
	utc(v->at, when, sizeof(when));
	fputs("<dl>\n", f);
	row(f, "Page", v->target, false);
	row(f, "Route", v->route, true);
	row(f, "Reason", v->reason, true);
	row(f, "Required", v->rule, false);
	row(f, "Your groups", v->user ? v->groups : NULL, false);
	row(f, "Time", when, false);
	row(f, "Request id", v->request_id, true);
	fputs("</dl>\n", f);
	if (!v->request_id)
		fputs("<p class=\"note\">The details of this denial are no longer available here.</p>\n", f);
	else
		fputs("<p class=\"note\">If you think you should have access, send the request id to your "
		      "administrator.</p>\n", f);
	fputs("<ul class=\"actions\">\n", f);
	action_link(f, v->signin_url, "Sign in as another user", true);
	action_link(f, v->user ? v->signout_url : NULL, "Sign out", false);
	fputs("</ul>\n", f);
	page_close(f, &buf, resp, 403, NULL);
}

void eg_page_login_error(struct eg_resp *resp, int status, const char *msg, const char *step,
			 const char *request_id, const char *retry_url)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = page_open(&buf, &len, "Login failed");
	fputs("<p>", f);
	put_esc(f, msg ? msg : "The login could not be completed.");
	fputs("</p>\n<p>", f);
	put_esc(f, eg_login_hint(step));
	fputs("</p>\n<dl>\n", f);
	row(f, "Request id", request_id, true);
	fputs("</dl>\n<ul class=\"actions\">\n", f);
	action_link(f, retry_url ? retry_url : "/", "Sign in again", true);
	fputs("</ul>\n", f);
	page_close(f, &buf, resp, status, NULL);
}

void eg_page_message(struct eg_resp *resp, int status, const char *title, const char *msg,
		     const char *request_id)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = page_open(&buf, &len, title ? title : "Error");
	fputs("<p>", f);
	put_esc(f, msg);
	fputs("</p>\n", f);
	if (request_id) {
		fputs("<dl>\n", f);
		row(f, "Request id", request_id, true);
		fputs("</dl>\n", f);
	}
	page_close(f, &buf, resp, status, NULL);
}

static void hidden(FILE *f, const char *name, const char *value)
{
	if (!name || !value)
		return;
	fputs("<input type=\"hidden\" name=\"", f);
	put_esc(f, name);
	fputs("\" value=\"", f);
	put_esc(f, value);
	fputs("\">\n", f);
}

void eg_page_sign_out(struct eg_resp *resp, const struct eg_sign_out_view *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = page_open(&buf, &len, "Sign out");
	if (v->user) {
		fputs("<p>You are signed in as <strong>", f);
		put_esc(f, v->user);
		fputs("</strong>. Sign out now?</p>\n", f);
	} else {
		fputs("<p>Sign out now?</p>\n", f);
	}
	fputs("<form method=\"post\" action=\"", f);
	put_esc(f, v->action ? v->action : "/oauth2/sign_out");
	fputs("\">\n", f);
	hidden(f, v->csrf_field, v->csrf_token);
	hidden(f, "rd", v->rd);
	fputs("<ul class=\"actions\"><li><button type=\"submit\" id=\"sign-out\">Sign out</button></li>\n", f);
	action_link(f, v->cancel_url ? v->cancel_url : "/", "Stay signed in", false);
	fputs("</ul>\n</form>\n", f);
	page_close(f, &buf, resp, 200, v->form_origin);
}
