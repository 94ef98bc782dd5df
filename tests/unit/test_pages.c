/* test_pages.c - the HTML pages (escaping, CSP, what each page shows and hides) and the
 * ring of recent denials (key check, TTL, eviction, truncation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "denials.h"
#include "http.h"
#include "pages.h"

#define EVIL "<script>alert(1)</script>\"'&"
#define EVIL_ESC "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"

static const char *header(const struct eg_resp *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->hname[i], name) == 0)
			return r->hvalue[i];
	return NULL;
}

static void test_escape(void **state)
{
	char *e = eg_html_escape(EVIL);
	assert_string_equal(e, EVIL_ESC);
	free(e);
	e = eg_html_escape("plain ü text");
	assert_string_equal(e, "plain ü text");
	free(e);
	e = eg_html_escape(NULL);
	assert_string_equal(e, "");
	free(e);
}

static void test_request_id(void **state)
{
	char a[EG_REQUEST_ID_LEN + 1], b[EG_REQUEST_ID_LEN + 1];
	eg_request_id(a);
	eg_request_id(b);
	assert_int_equal(strlen(a), EG_REQUEST_ID_LEN);
	assert_true(eg_request_id_valid(a));
	assert_string_not_equal(a, b);
	assert_false(eg_request_id_valid(NULL));
	assert_false(eg_request_id_valid("short"));
	assert_false(eg_request_id_valid("AAAAAAAAAAAAAAAAAAAA<>"));
	assert_false(eg_request_id_valid("AAAAAAAAAAAAAAAAAAAAAAA"));
	assert_true(eg_request_id_valid("AAAAAAAAAA-_AAAAAAAAzz"));
}

/* Every page: strict CSP with the style hash, no script, nothing external. */
static void common_checks(const struct eg_resp *r)
{
	const char *csp = header(r, "Content-Security-Policy");
	assert_non_null(csp);
	assert_non_null(strstr(csp, "default-src 'none'"));
	assert_non_null(strstr(csp, "style-src 'sha256-"));
	assert_null(strstr(csp, "unsafe"));
	assert_non_null(strstr(csp, "frame-ancestors 'none'"));
	assert_string_equal(header(r, "X-Content-Type-Options"), "nosniff");
	assert_string_equal(header(r, "X-Frame-Options"), "DENY");
	assert_string_equal(r->content_type, "text/html; charset=utf-8");
	assert_null(strstr(r->body, "<script"));
	assert_null(strstr(r->body, "src="));
}

static void test_forbidden_page(void **state)
{
	struct eg_resp r = { 0 };
	struct eg_forbidden_view v = {
		.request_id = "ABCDEFGHIJKLMNOPQRSTUV", .reason = "not_allowed", .route = "/admin/" EVIL,
		.target = "app.test/admin/" EVIL, .user = "bob" EVIL, .email = "bob@x.test" EVIL, .groups = "dev, " EVIL, .rule = "group " EVIL,
		.signin_url = "/oauth2/start?prompt=login&rd=x\"><script>", .signout_url = "/oauth2/sign_out", .at = 1700000000,
	};
	eg_page_forbidden(&r, &v);
	assert_int_equal(r.status, 403);
	common_checks(&r);
	assert_non_null(strstr(r.body, "signed in as <strong>bob" EVIL_ESC "</strong>"));
	assert_non_null(strstr(r.body, "bob@x.test" EVIL_ESC));
	assert_non_null(strstr(r.body, "/admin/" EVIL_ESC));
	assert_non_null(strstr(r.body, "<dt>Required</dt><dd>group " EVIL_ESC "</dd>"));
	assert_non_null(strstr(r.body, "ABCDEFGHIJKLMNOPQRSTUV"));
	assert_non_null(strstr(r.body, "not among those allowed"));
	assert_non_null(strstr(r.body, "2023-11-14 22:13:20 UTC"));
	assert_non_null(strstr(r.body, "href=\"/oauth2/start?prompt=login&amp;rd=x&quot;&gt;&lt;script&gt;\""));
	assert_non_null(strstr(r.body, ">Sign out</a>"));
	assert_null(strstr(r.body, EVIL));
	eg_resp_free(&r);

	/* Unknown denial: no identity, no details, no sign-out (nobody known to sign out). */
	struct eg_forbidden_view anon = { .signin_url = "/oauth2/start?prompt=login", .signout_url = "/oauth2/sign_out" };
	eg_page_forbidden(&r, &anon);
	assert_int_equal(r.status, 403);
	common_checks(&r);
	assert_null(strstr(r.body, "signed in as"));
	assert_null(strstr(r.body, "Request id"));
	assert_null(strstr(r.body, ">Sign out</a>"));
	assert_non_null(strstr(r.body, "no longer available"));
	assert_non_null(strstr(r.body, "Sign in as another user"));
	eg_resp_free(&r);
}

static void test_login_error_page(void **state)
{
	struct eg_resp r = { 0 };
	eg_page_login_error(&r, 400, "The identity provider answered: " EVIL, "op_error", "ABCDEFGHIJKLMNOPQRSTUV",
			    "https://app.test/oauth2/start");
	assert_int_equal(r.status, 400);
	common_checks(&r);
	assert_non_null(strstr(r.body, "<title>Login failed</title>"));
	assert_non_null(strstr(r.body, "answered: " EVIL_ESC));
	assert_non_null(strstr(r.body, "ask your administrator"));
	assert_non_null(strstr(r.body, "ABCDEFGHIJKLMNOPQRSTUV"));
	assert_non_null(strstr(r.body, "href=\"https://app.test/oauth2/start\""));
	assert_null(strstr(r.body, EVIL));
	eg_resp_free(&r);
	/* Unknown steps still say what to try. */
	assert_non_null(strstr(eg_login_hint("nope"), "request id"));
	assert_non_null(strstr(eg_login_hint(NULL), "request id"));
	assert_non_null(strstr(eg_reason_text(NULL), "not allowed"));
	assert_non_null(strstr(eg_reason_text("cert_revoked"), "certificate"));
}

static void test_message_page(void **state)
{
	struct eg_resp r = { 0 };
	eg_page_message(&r, 415, "Bad " EVIL, "The form " EVIL, NULL);
	assert_int_equal(r.status, 415);
	common_checks(&r);
	assert_non_null(strstr(r.body, "<title>Bad " EVIL_ESC "</title>"));
	assert_non_null(strstr(r.body, "<p>The form " EVIL_ESC "</p>"));
	assert_null(strstr(r.body, "Request id"));
	assert_null(strstr(r.body, EVIL));
	eg_resp_free(&r);
	eg_page_message(&r, 403, NULL, "x", "ABCDEFGHIJKLMNOPQRSTUV");
	assert_non_null(strstr(r.body, "<title>Error</title>"));
	assert_non_null(strstr(r.body, "<code>ABCDEFGHIJKLMNOPQRSTUV</code>"));
	eg_resp_free(&r);
}

static void test_sign_out_page(void **state)
{
	struct eg_resp r = { 0 };
	struct eg_sign_out_view v = {
		.action = "/oauth2/sign_out", .user = "alice" EVIL, .csrf_field = "csrf", .csrf_token = "tok\"en<",
		.rd = "/after" EVIL, .form_origin = "https://op.example.test:8443/session/end?x=1",
	};
	eg_page_sign_out(&r, &v);
	assert_int_equal(r.status, 200);
	common_checks(&r);
	assert_non_null(strstr(r.body, "<form method=\"post\" action=\"/oauth2/sign_out\">"));
	assert_non_null(strstr(r.body, "<input type=\"hidden\" name=\"csrf\" value=\"tok&quot;en&lt;\">"));
	assert_non_null(strstr(r.body, "name=\"rd\" value=\"/after" EVIL_ESC "\""));
	assert_non_null(strstr(r.body, "alice" EVIL_ESC));
	assert_null(strstr(r.body, EVIL));
	/* The POST may be redirected to the OP's end-session endpoint: its origin, nothing more. */
	assert_non_null(strstr(header(&r, "Content-Security-Policy"), "form-action 'self' https://op.example.test:8443;"));
	eg_resp_free(&r);

	/* An origin that could smuggle CSP syntax is left out, not copied. */
	v.form_origin = "https://op.test;script-src *";
	eg_page_sign_out(&r, &v);
	assert_non_null(strstr(header(&r, "Content-Security-Policy"), "form-action 'self';"));
	eg_resp_free(&r);
	v.form_origin = "javascript:alert(1)";
	eg_page_sign_out(&r, &v);
	assert_non_null(strstr(header(&r, "Content-Security-Policy"), "form-action 'self';"));
	eg_resp_free(&r);
}

static struct eg_denial denial(const char *id, const char *key, int64_t at)
{
	struct eg_denial e = { .at = at, .kind = EG_ID_SESSION };
	strcpy(e.id, id);
	strcpy(e.key, key);
	strcpy(e.reason, "not_allowed");
	strcpy(e.user, "bob");
	return e;
}

#define ID1 "AAAAAAAAAAAAAAAAAAAAA1"
#define KEY1 "KKKKKKKKKKKKKKKKKKKKK1"

static void test_ring(void **state)
{
	struct eg_denials *r = eg_denials_new(4, 600);
	struct eg_denial out;
	struct eg_denial e = denial(ID1, KEY1, 1000);
	eg_denials_put(r, &e);
	assert_true(eg_denials_get(r, ID1, KEY1, 1000, &out));
	assert_string_equal(out.user, "bob");
	assert_true(eg_denials_get(r, ID1, KEY1, 1600, &out));
	/* The id alone, a wrong key, a malformed key: nothing. */
	assert_false(eg_denials_get(r, ID1, NULL, 1000, &out));
	assert_false(eg_denials_get(r, ID1, "KKKKKKKKKKKKKKKKKKKKK2", 1000, &out));
	assert_false(eg_denials_get(r, ID1, "KKKK", 1000, &out));
	assert_false(eg_denials_get(r, NULL, KEY1, 1000, &out));
	/* Expired, and not yet (a clock step back) */
	assert_false(eg_denials_get(r, ID1, KEY1, 1601, &out));
	assert_false(eg_denials_get(r, ID1, KEY1, 999, &out));
	/* Full: the oldest goes first. */
	char id[EG_REQUEST_ID_LEN + 1];
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "BBBBBBBBBBBBBBBBBBBBB%c", (char)('0' + i));
		e = denial(id, KEY1, 1000 + i);
		eg_denials_put(r, &e);
	}
	assert_false(eg_denials_get(r, ID1, KEY1, 1010, &out));
	assert_true(eg_denials_get(r, "BBBBBBBBBBBBBBBBBBBBB0", KEY1, 1010, &out));
	assert_true(eg_denials_get(r, "BBBBBBBBBBBBBBBBBBBBB3", KEY1, 1010, &out));
	assert_int_equal(out.at, 1003);
	eg_denials_free(r);
}

static void test_copy(void **state)
{
	char buf[6];
	assert_true(eg_denial_copy(buf, sizeof(buf), "abcde"));
	assert_string_equal(buf, "abcde");
	assert_false(eg_denial_copy(buf, sizeof(buf), "abcdef"));
	assert_string_equal(buf, "abcde");
	/* "abcü": ü is two bytes; cutting at 5 would split "üü" */
	assert_false(eg_denial_copy(buf, sizeof(buf), "abc\xc3\xbc\xc3\xbc"));
	assert_string_equal(buf, "abc\xc3\xbc");
	assert_false(eg_denial_copy(buf, sizeof(buf), "abcd\xc3\xbc"));
	assert_string_equal(buf, "abcd");
	assert_true(eg_denial_copy(buf, sizeof(buf), NULL));
	assert_string_equal(buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_request_id),
		cmocka_unit_test(test_forbidden_page),
		cmocka_unit_test(test_login_error_page),
		cmocka_unit_test(test_message_page),
		cmocka_unit_test(test_sign_out_page),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
