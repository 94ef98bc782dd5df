/* test_redirect.c - the open-redirect validator against a large payload list
 * (oauth2-proxy's advisory vectors GHSA-qqxw, GHSA-j7px, GHSA-5m6c, GHSA-4mf2,
 * Vouch 910943a, mod_auth_openidc backslash/CVE-2022-23527, Authelia GHSA-36f2). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "config.h"
#include "redirect.h"

static const char *const allow[] = { "app.example.test", ".corp.test", "api.example.test:8443" };
#define NALLOW (sizeof(allow) / sizeof(allow[0]))

static const char *const good[] = {
	"/",
	"/app",
	"/app/page?x=1&y=2",
	"/app/page?next=%2Fother",      /* encoded slash in the query is data */
	"/search?q=hello%20world",      /* encoded space in the query is data */
	"/a/b/c#frag",
	"/caf%C3%A9",                   /* UTF-8 path, percent-encoded */
	"/app/?rd=//evil.test",         /* "//" inside the query is harmless */
	"/foo:bar",
	"/a.b/c..d/.e",
	"https://app.example.test",
	"https://app.example.test/",
	"https://app.example.test/path?q=1#x",
	"http://app.example.test/",
	"HTTPS://APP.EXAMPLE.TEST/x",
	"https://app.example.test:443/x",
	"https://app.example.test:9443/x", /* entry without port: any port */
	"https://corp.test/",
	"https://x.corp.test/",
	"https://a.b.corp.test/deep/path",
	"https://api.example.test:8443/v1",
};

static const char *const bad[] = {
	/* empty and schemeless */
	"", "app.example.test", "app.example.test/x", "evil.test", "?x=1", "#frag",
	/* protocol-relative and backslash tricks (GHSA-qqxw-m5fj-f7gv) */
	"//evil.test", "//evil.test/", "///evil.test", "////evil.test", "/\\evil.test",
	"\\\\evil.test", "\\/evil.test", "/\\/evil.test", "/./\\evil.test", "/../\\evil.test",
	"\\evil.test", "/a\\b", "https://app.example.test\\@evil.test",
	"https://app.example.test/\\evil.test", "/.//evil.test", "/..//evil.test",
	"/a//b", "/a/./b", "/a/../b", "/a/..", "/a/.",
	"https:/evil.test", "https:evil.test", "https:\\\\evil.test", "http:/\\evil.test",
	/* whitespace and controls, raw (GHSA-j7px-6hwj-hpjg) */
	"/ /evil.test", "/\t/evil.test", "/\n/evil.test", "/\r/evil.test", "/\v/evil.test",
	"/\f/evil.test", " /app", "/app ", "\t/app", "/\x01", "/\x7f",
	"https://app.example.test/a b", "https:// app.example.test/",
	/* whitespace and controls, encoded */
	"/%20/evil.test", "/%09/evil.test", "/%0a/evil.test", "/%0D/evil.test", "/%0b/evil.test",
	"/%0c/evil.test", "/%00", "/app?x=%00", "/app?x=%0d%0aSet-Cookie:x", "/app#%0a",
	"/%2509/evil.test", "/app?x=%250a", "/app?x=%25250a", "/%E2%80%8B/evil.test/%20",
	/* encoded separators before the query (GHSA-5m6c-jp6f-2vcv) */
	"/%2f/evil.test", "/%2F%2Fevil.test", "/%5c/evil.test", "/%5Cevil.test", "%2f%2fevil.test",
	"/%2e%2e/%2fevil.test", "/%2e/x", "/%252f/evil.test", "/%25%32%66evil.test",
	"https://app.example.test/%2f%2fevil.test", "https://app.example.test%2fevil.test",
	"https://app.example.test%2eevil.test/", "https://evil.test%23.app.example.test/",
	"https://app.example.test%40evil.test/", "/app?x=%5c", "/%",
	"/%zz", "/%4", "/app?x=%g1",
	/* other schemes */
	"javascript:alert(1)", "JavaScript:alert(1)", "javascript://app.example.test/%0aalert(1)",
	"java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>",
	"vbscript:msgbox(1)", "file:///etc/passwd", "ftp://app.example.test/", "ws://app.example.test/",
	"mailto:a@app.example.test", "jar:https://app.example.test/", "view-source:https://app.example.test/",
	"%6Aavascript:alert(1)", "/javascript:alert(1)/%0a",
	/* userinfo tricks */
	"https://app.example.test@evil.test/", "https://app.example.test:443@evil.test/",
	"https://user:pass@app.example.test/", "https://evil.test@app.example.test/",
	"https://@app.example.test/", "https://app.example.test%40evil.test",
	/* look-alike and suffix domains (GHSA-4mf2-f3wh-gvf2, Vouch 910943a) */
	"https://evil.test/", "https://app.example.test.evil.test/", "https://app.example.testevil.test/",
	"https://evilapp.example.test/", "https://app-example.test/", "https://xcorp.test/",
	"https://evilcorp.test/", "https://corp.test.evil.test/", "https://corp.testx/",
	"https://app.example.tes/", "https://app.example.test./", "https://x.corp.test./",
	"https://app..example.test/", "https://.app.example.test/", "https://-app.example.test/",
	"https://app.example.test-/", "https://api.example.test/", "https://api.example.test:8444/",
	"http://api.example.test/", "https://app.example.test:0/", "https://app.example.test:65536/",
	"https://app.example.test:/", "https://app.example.test:44x/", "https://app.example.test::443/",
	"https://[::1]/", "https://127.0.0.1/", "https://2130706433/",
	/* IDN and Unicode (homographs, fullwidth dots, punycode not on the list) */
	"https://\xd0\xb0pp.example.test/",         /* Cyrillic a */
	"https://app.example\xe3\x80\x82test/",     /* ideographic full stop */
	"https://app\xef\xbc\x8e" "example.test/",  /* fullwidth full stop */
	"https://xn--pp-8kc.example.test/",         /* punycode look-alike */
	"https://app.example.test\xe2\x80\x8b/",    /* zero-width space */
	"https://xn--app-example-test.evil.test/", "https://app.xn--exmple-cua.test/",
	"/\xc3\xa9",                                 /* raw non-ASCII in the path */
	"https://APP.EXAMPLE.TEST\xc4\xb0/",
};

static void test_good(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!eg_redirect_allowed(good[i], allow, NALLOW))
			fail_msg("rejected good target #%zu: %s", i, good[i]);
	}
}

static void test_bad(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (eg_redirect_allowed(bad[i], allow, NALLOW))
			fail_msg("accepted bad target #%zu: %s", i, bad[i]);
	}
}

static void test_null_and_long(void **state)
{
	char *big = malloc(EG_REDIRECT_MAX + 10);

	assert_false(eg_redirect_allowed(NULL, allow, NALLOW));
	assert_false(eg_redirect_allowed("https://app.example.test/", NULL, 0));
	memset(big, 'a', EG_REDIRECT_MAX + 5);
	big[0] = '/';
	big[EG_REDIRECT_MAX + 5] = 0;
	assert_false(eg_redirect_allowed(big, allow, NALLOW));
	big[200] = 0;
	assert_true(eg_redirect_allowed(big, allow, NALLOW));
	free(big);
}

/* Every good absolute target with an "@evil" or ".evil" appended to the host fails. */
static void test_mutations(void **state)
{
	char buf[512];
	static const char *const hosts[] = { "app.example.test", "x.corp.test" };
	static const char *const suffixes[] = { ".evil.test", "evil.test", "@evil.test", "%2eevil",
						"-evil.test", "_evil", "\\evil", "%00", "." };

	for (size_t h = 0; h < 2; h++)
		for (size_t s = 0; s < sizeof(suffixes) / sizeof(suffixes[0]); s++) {
			snprintf(buf, sizeof(buf), "https://%s%s/", hosts[h], suffixes[s]);
			if (eg_redirect_allowed(buf, allow, NALLOW))
				fail_msg("accepted mutation %s", buf);
		}
}

static void test_config_wrapper(void **state)
{
	struct eg_config cfg;
	char *doms[] = { ".corp.test" };

	memset(&cfg, 0, sizeof(cfg));
	cfg.public_url = "https://Auth.Example.Test:8443";
	cfg.oidc.redirect_url = "https://login.example.test/oauth2/callback";
	cfg.redirect_domains.v = doms;
	cfg.redirect_domains.n = 1;
	assert_true(eg_redirect_ok(&cfg, "/x"));
	assert_true(eg_redirect_ok(&cfg, "https://auth.example.test:8443/x"));
	assert_true(eg_redirect_ok(&cfg, "https://login.example.test/x"));
	assert_true(eg_redirect_ok(&cfg, "https://w.corp.test/x"));
	assert_false(eg_redirect_ok(&cfg, "https://example.test/x"));
	assert_false(eg_redirect_ok(&cfg, "https://auth.example.test.evil.test/x"));
	assert_false(eg_redirect_ok(&cfg, "//auth.example.test/x"));
	/* nothing configured: only relative paths */
	memset(&cfg, 0, sizeof(cfg));
	assert_true(eg_redirect_ok(&cfg, "/ok"));
	assert_false(eg_redirect_ok(&cfg, "https://anything.test/"));
}

static void test_url_host(void **state)
{
	char h[64];

	assert_int_equal(eg_url_host("https://A.B.test:1/x", h, sizeof(h)), 0);
	assert_string_equal(h, "a.b.test");
	assert_int_equal(eg_url_host("http://127.0.0.1:9000", h, sizeof(h)), 0);
	assert_string_equal(h, "127.0.0.1");
	assert_int_equal(eg_url_host("ftp://x", h, sizeof(h)), -1);
	assert_int_equal(eg_url_host("https://u@x/", h, sizeof(h)), -1);
	assert_int_equal(eg_url_host(NULL, h, sizeof(h)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_null_and_long),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_config_wrapper),
		cmocka_unit_test(test_url_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
