/* test_lane_parse.c - the verdict lane's request reader (userspace/http/lane_parse.c):
 * nginx's subrequest is accepted with its headers in order; every shape libmicrohttpd must
 * read instead is never accepted; an incomplete block waits only while it may still end in bounds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "lane_parse.h"

static long parse(const char *text, struct eg_lane_msg *m)
{
	static char buf[EG_LANE_MAX_BLOCK + 64];
	size_t n = strlen(text);
	memcpy(buf, text, n);
	return eg_lane_parse(buf, n, "/auth", m);
}

static void test_nginx_shape(void **state)
{
	(void)state;
	struct eg_lane_msg m;
	const char *r = "HEAD /auth HTTP/1.1\r\nHost: app.test\r\nX-Original-URI: /api/a?b=c\r\n"
			"Authorization: Bearer x.y.z\r\nAccept:\t*/*\r\nContent-Length: 0\r\n\r\nGET /auth";
	long used = parse(r, &m);
	assert_int_equal(used, (long)(strstr(r, "\r\n\r\n") - r) + 4);
	assert_string_equal(m.method, "HEAD");
	assert_string_equal(m.target, "/auth");
	assert_int_equal(m.n, 5);
	assert_string_equal(m.name[0], "Host");
	assert_string_equal(m.value[0], "app.test");
	assert_string_equal(m.name[1], "X-Original-URI");
	assert_string_equal(m.value[1], "/api/a?b=c");
	for (size_t i = 0; i < m.n; i++)
		assert_int_equal(m.name_len[i], strlen(m.name[i]));
	assert_string_equal(m.value[3], "*/*"); /* leading HTAB skipped */
	assert_true(parse("GET /auth HTTP/1.1\r\nhost: a\r\n\r\n", &m) > 0);
	assert_true(parse("GET /auth HTTP/1.1\r\nhost: a\r\nX-Sixteen-Letters_a.b~c!: v\tw\r\n\r\n", &m) > 0);
	assert_string_equal(m.name[1], "X-Sixteen-Letters_a.b~c!");
	assert_string_equal(m.value[1], "v\tw");
	assert_string_equal(m.method, "GET");
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"POST /auth HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /auth?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /authz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /auth HTTP/1.0\r\nHost: a\r\n\r\n",
		"GET  /auth HTTP/1.1\r\nHost: a\r\n\r\n",
		"get /auth HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /auth HTTP/1.1\r\n\r\n",                          /* no Host */
		"GET /auth HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",    /* two */
		"GET /auth HTTP/1.1\nHost: a\n\n",                     /* bare LF */
		"GET /auth HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", /* obs-fold */
		"GET /auth HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n",      /* space before the colon */
		"GET /auth HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n",
		/* the same past the sixteen-byte chunks the name scan reads at once */
		"GET /auth HTTP/1.1\r\nHost: a\r\nX-Sixteen-Letters(y): b\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nX-Sixteen-Letters\xc3\xa9: b\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nX-Sixteen-Letter@: b\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nX-Sixteen-Letters : b\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nX: a-value-longer-than-sixteen-bytes\x7f\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nX: a-value-longer-than-sixteen-bytes\rx\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n",        /* empty value */
		"GET /auth HTTP/1.1\r\nHost: a\r\nX: b \r\n\r\n",      /* trailing whitespace */
		"GET /auth HTTP/1.1\r\nHost: a\r\nX: b\x01\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"GET /auth HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nconnection: close\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n",
		"\r\nGET /auth HTTP/1.1\r\nHost: a\r\n\r\n",
	};
	struct eg_lane_msg m;
	/* never accepted (a bare-LF block has no CRLF CRLF: incomplete, also handed over) */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &m) > 0)
			fail_msg("accepted #%zu", i);
	}
	/* a NUL inside a value (strlen would stop there) */
	char nul[] = "GET /auth HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
	assert_int_equal(eg_lane_parse(nul, sizeof(nul) - 1, "/auth", &m), EG_LANE_NOT_OURS);
}

static void test_bounds(void **state)
{
	(void)state;
	struct eg_lane_msg m;
	assert_int_equal(parse("GET /auth HTTP/1.1\r\nHost: a\r\n", &m), EG_LANE_INCOMPLETE);
	assert_int_equal(parse("", &m), EG_LANE_INCOMPLETE);
	/* 64 headers pass, 65 do not */
	char *r = malloc(8192);
	strcpy(r, "GET /auth HTTP/1.1\r\nHost: a\r\n");
	for (int i = 1; i < EG_LANE_MAX_HEADERS; i++)
		sprintf(r + strlen(r), "X-%d: v\r\n", i);
	size_t base = strlen(r);
	strcat(r, "\r\n");
	assert_true(parse(r, &m) > 0);
	assert_int_equal(m.n, EG_LANE_MAX_HEADERS);
	strcpy(r + base, "X-last: v\r\n\r\n");
	assert_int_equal(parse(r, &m), EG_LANE_NOT_OURS);
	free(r);
	/* a block that has not ended within the bound is not ours, not incomplete */
	char *big = malloc(EG_LANE_MAX_BLOCK + 64);
	strcpy(big, "GET /auth HTTP/1.1\r\nHost: a\r\nX-Pad: ");
	size_t n = strlen(big);
	memset(big + n, 'p', EG_LANE_MAX_BLOCK - n);
	big[EG_LANE_MAX_BLOCK] = '\0';
	assert_int_equal(parse(big, &m), EG_LANE_NOT_OURS);
	free(big);
}

/* Every byte of a long value is checked wherever it falls in the 16-byte steps: a tab or
 * a space inside is kept, a control byte, DEL or obs-text anywhere refuses the request. */
static void test_value_bytes(void **state)
{
	const char ok[] = { '\t', ' ' }, bad[] = { '\x01', '\x7f', '\x80', '\xff', '\n' };
	for (size_t pos = 1; pos < 47; pos++) {
		char value[49], req[256];
		struct eg_lane_msg m;
		for (size_t k = 0; k < sizeof(ok) + sizeof(bad); k++) {
			memset(value, 'v', 48);
			value[48] = '\0';
			value[pos] = k < sizeof(ok) ? ok[k] : bad[k - sizeof(ok)];
			snprintf(req, sizeof(req), "GET /auth HTTP/1.1\r\nHost: a\r\nX-Long: %s\r\n\r\n", value);
			long r = parse(req, &m);
			if (k < sizeof(ok)) {
				assert_true(r > 0);
				assert_string_equal(m.value[1], value);
			} else {
				assert_int_equal(r, EG_LANE_NOT_OURS);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nginx_shape),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_value_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
