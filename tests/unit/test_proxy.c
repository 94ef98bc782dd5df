/* test_proxy.c - proxy profiles: each names only headers its proxy sets itself, the
 * X-Forwarded-For reading takes the proxy's own (last) entry, and an absolute target is
 * accepted only for the host the proxy routed on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "config.h"
#include "proxy.h"

static void test_profiles(void **state)
{
	const struct eg_proxy_profile *n = eg_proxy_find("nginx"), *t = eg_proxy_find("traefik"),
				      *c = eg_proxy_find("caddy"), *e = eg_proxy_find("envoy");
	assert_non_null(n);
	assert_ptr_equal(n, eg_proxy_default());
	assert_string_equal(n->target, "X-Original-URI");
	assert_string_equal(n->host, "Host"); /* $host, never X-Forwarded-Host $http_host */
	assert_string_equal(n->client_addr, "X-Real-IP");
	assert_false(n->client_addr_list);
	assert_non_null(n->cert);
	/* the client's raw Host ($http_host), judged as another reading of the host */
	assert_string_equal(n->client_host, "X-Original-Host");
	assert_string_equal(t->target, "X-Forwarded-Uri");
	assert_string_equal(t->host, "X-Forwarded-Host");
	assert_true(t->client_addr_list);
	assert_null(t->cert); /* no certificate identity through a proxy that does not state it */
	assert_null(t->server_addr);
	assert_null(t->client_host);
	assert_string_equal(c->method, "X-Forwarded-Method");
	assert_null(c->cert);
	assert_null(e->method); /* the check request's own method and path */
	assert_null(e->target);
	assert_string_equal(e->host, "Host");
	assert_null(e->client_host); /* :authority is the one host Envoy states */
	assert_null(c->client_host);
	assert_null(eg_proxy_find("haproxy"));
	assert_null(eg_proxy_find(NULL));
	assert_null(eg_proxy_find("NGINX")); /* exact names only */
}

static void test_last_addr(void **state)
{
	uint8_t a[16], want[16];
	assert_int_equal(eg_proxy_last_addr("198.18.3.3, 127.0.0.1", a), 0);
	assert_int_equal(eg_addr_parse("127.0.0.1", want), 0);
	assert_memory_equal(a, want, 16);
	assert_int_equal(eg_proxy_last_addr(" 2001:db8::1 ", a), 0);
	assert_int_equal(eg_addr_parse("2001:db8::1", want), 0);
	assert_memory_equal(a, want, 16);
	assert_int_equal(eg_proxy_last_addr("198.18.3.3,", a), -1); /* empty last element */
	assert_int_equal(eg_proxy_last_addr("", a), -1);
	assert_int_equal(eg_proxy_last_addr("127.0.0.1, unknown", a), -1);
	assert_int_equal(eg_proxy_last_addr("127.0.0.1:8080", a), -1);
}

static void test_target_path(void **state)
{
	const char *why = NULL;
	assert_string_equal(eg_proxy_target_path("/a?b", "www.example", &why), "/a?b");
	assert_string_equal(eg_proxy_target_path("http://Admin.Example:8080/x?y", "admin.example", &why), "/x?y");
	assert_string_equal(eg_proxy_target_path("https://admin.example", "admin.example", &why), "/");
	why = NULL;
	assert_null(eg_proxy_target_path("http://admin.example/x", "www.example", &why));
	assert_string_equal(why, "host_mismatch");
	assert_null(eg_proxy_target_path("http://u@www.example/x", "www.example", &why));
	assert_string_equal(why, "bad_host");
	assert_null(eg_proxy_target_path("*", "www.example", &why));
	assert_string_equal(why, "bad_path");
	assert_null(eg_proxy_target_path("ftp://www.example/x", "www.example", &why));
	assert_null(eg_proxy_target_path("http://www.example?x", "www.example", &why));
	assert_string_equal(why, "bad_path");
	assert_null(eg_proxy_target_path("x/y", "www.example", &why));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_last_addr),
		cmocka_unit_test(test_target_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
