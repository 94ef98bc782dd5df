/* test_loopback.c - the one "is this URL on this host?" check (issue 17): parsed with
 * libcurl's URL API, then inet_pton; never a string prefix. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "loopback.h"

static void test_urls(void **state)
{
	static const struct {
		const char *url;
		bool loopback;
	} cases[] = {
		{ "http://127.0.0.1/", true },
		{ "http://127.0.0.1:8080/x", true },
		{ "http://127.1.2.3/", true },
		{ "http://[::1]/", true },
		{ "http://[::1]:9/jwks", true },
		{ "http://[::ffff:127.0.0.1]/", true },
		{ "http://localhost/", true }, /* by name: curl and browsers resolve it to loopback */
		{ "http://LOCALHOST:80/", true },
		{ "http://127.evil.example/", false },
		{ "http://127.0.0.1.evil.example/", false },
		{ "http://localhost.evil.example/", false },
		{ "http://evil.localhost/", false },
		{ "http://127.0.0.1@evil.example/", false },
		{ "http://evil.example/127.0.0.1", false },
		{ "http://evil.example#@127.0.0.1/", false },
		{ "http://[::2]/", false },
		{ "http://10.0.0.1/", false },
		{ "http://0.0.0.0/", false },
		{ "ftp://127.0.0.1/", false },
		{ "127.0.0.1", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (eg_url_is_loopback(cases[i].url) != cases[i].loopback)
			print_error("%s: expected %s\n", cases[i].url, cases[i].loopback ? "loopback" : "remote");
		assert_int_equal(eg_url_is_loopback(cases[i].url), cases[i].loopback);
	}
	assert_false(eg_url_is_loopback(NULL));
}

static void test_https_or_loopback(void **state)
{
	bool http = true;
	assert_int_equal(eg_url_https_or_loopback("https://idp.example/jwks", &http), 0);
	assert_false(http);
	assert_int_equal(eg_url_https_or_loopback("http://127.0.0.1:4000/jwks", &http), 0);
	assert_true(http);
	assert_int_equal(eg_url_https_or_loopback("http://[::1]/", &http), 0);
	assert_int_equal(eg_url_https_or_loopback("http://localhost/", NULL), 0);
	assert_int_equal(eg_url_https_or_loopback("http://127.evil.example/", NULL), -1);
	assert_int_equal(eg_url_https_or_loopback("http://idp.example/", NULL), -1);
	assert_int_equal(eg_url_https_or_loopback("file:///etc/passwd", NULL), -1);
	assert_int_equal(eg_url_https_or_loopback("not a url", NULL), -1);
}

static void test_hosts(void **state)
{
	assert_true(eg_host_is_loopback("127.0.0.1"));
	assert_true(eg_host_is_loopback("[::1]"));
	assert_false(eg_host_is_loopback("::1")); /* libcurl gives IPv6 hosts in brackets */
	assert_false(eg_host_is_loopback("[fe80::1%25lo]"));
	assert_false(eg_host_is_loopback("127."));
	assert_false(eg_host_is_loopback("127.0.0.1 "));
	assert_false(eg_host_is_loopback(""));
	assert_false(eg_host_is_loopback(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_https_or_loopback),
		cmocka_unit_test(test_hosts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
