/* test_advisories.c - validator-level regression tests for peers' advisories that no other
 * unit test file owns (docs/advisories.md lists where the others live):
 *   oauth2-proxy GHSA-vjrc-mh2v-45x6 / CVE-2025-64484: identity headers smuggled under an
 *   underscore spelling (eg_identity_header_variant). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "testcfg.h"
#include "smuggle.h"

static void test_identity_header_variants(void **state)
{
	struct eg_config *c = load("{\"listen\":\"127.0.0.1:1\",\"routes\":[{\"path\":\"/\",\"auth\":\"public\","
				   "\"headers\":{\"X-User-Sub\":\"sub\",\"X-Tenant\":\"tid\"}}]}");
	static const char *const smuggled[] = {
		"X_Auth_Request_User", "x_auth_request_user", "X_AUTH_REQUEST_USER", "X-Auth_Request-User",
		"x_auth-request_email", "X_Auth_Request_Email", "X_Auth_Request_Groups",
		"X_Auth_Request_Preferred_Username", "X_Auth_Request_Cert_Subject",
		"X_Auth_Request_Cert_Fingerprint", "x_auth_request_cert_sans",
		"X_User_Sub", "x_user_sub", "X_TENANT", /* the route's claim headers too */
		"X_SSL_Client_Cert", "x_ssl_client_verify", "X-SSL_Client-Cert", /* nginx's certificate */
	};
	for (size_t i = 0; i < sizeof(smuggled) / sizeof(smuggled[0]); i++) {
		if (!eg_identity_header_variant(c, smuggled[i]))
			fail_msg("%s should be refused", smuggled[i]);
	}
	static const char *const fine[] = {
		/* the '-' spellings: the proxy replaces them (proxy_set_header) */
		"X-Auth-Request-User", "x-auth-request-email", "X-User-Sub", "X-SSL-Client-Cert",
		/* other underscore names, and near misses */
		"X_Forwarded_For", "X_Request_Id", "X_Auth_Request_User2", "X_Auth_Request_Use",
		"X__Auth_Request_User", "_X_Auth_Request_User", "X_Auth_Request", "X_User_Sub_", "", "_",
	};
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		if (eg_identity_header_variant(c, fine[i]))
			fail_msg("%s should pass", fine[i]);
	}
	assert_false(eg_identity_header_variant(c, NULL));
	/* with no config the fixed X-Auth-Request-* set still applies */
	assert_true(eg_identity_header_variant(NULL, "X_Auth_Request_User"));
	assert_false(eg_identity_header_variant(NULL, "X_User_Sub"));
	config_free(c);
}

/* eg_header_name_is_n (the extras' names, verdict.c): the same answer as eg_header_name_is,
 * '_' read as '-', any case; a name of another length, or differing anywhere, is not it */
static void test_header_name_is_n(void **state)
{
	static const struct {
		const char *name, *want;
		bool is;
	} cases[] = {
		{ "X-Original-URL", "X-Original-URL", true },  { "x_original_url", "X-Original-URL", true },
		{ "X-ORIGINAL-URL", "X-Original-URL", true },  { "X-Original-URI", "X-Original-URL", false },
		{ "Y-Original-URL", "X-Original-URL", false }, { "X-Original-UrL", "X-Original-URL", true },
		{ "X-Original-URLs", "X-Original-URL", false }, { "X-Original-UR", "X-Original-URL", false },
		{ "X-Server-Port", "X-Script-Name", false },   { "UPGRADE", "Upgrade", true },
		{ "Upgrad_", "Upgrade", false },               { "", "", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = eg_header_name_is_n(cases[i].name, strlen(cases[i].name), cases[i].want, strlen(cases[i].want));
		if (got != cases[i].is || (*cases[i].name && got != eg_header_name_is(cases[i].name, cases[i].want)))
			fail_msg("%s vs %s: %d", cases[i].name, cases[i].want, got);
	}
	assert_false(eg_header_name_is_n(NULL, 0, "X", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_header_variants),
		cmocka_unit_test(test_header_name_is_n),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
