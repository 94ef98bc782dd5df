/* test_config.c - configuration parsing: defaults, and that every malformed value is
 * refused with an error naming its key path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "testutil.h"

#include "config.h"
#include "proxy.h"

static struct eg_config *parse(const char *json, char *err, size_t errlen)
{
	return config_parse(json, strlen(json), "t.json", err, errlen);
}

static void test_minimal(void **state)
{
	char err[256];
	struct eg_config *c = parse("{\"listen\":\"127.0.0.1:9180\"}", err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->n_listen, 1);
	assert_false(c->listen[0].is_unix);
	assert_string_equal(c->cookie.name, "__Host-edgegate"); /* secure, host-only, path / */
	assert_true(c->cookie.secure);
	assert_int_equal(c->n_trusted_proxies, 2); /* 127.0.0.1/32 and ::1/128, not all of 127/8 */
	uint8_t a[16];
	assert_int_equal(eg_addr_parse("127.0.0.1", a), 0);
	assert_true(eg_prefix_contains(&c->trusted_proxies[0], a) || eg_prefix_contains(&c->trusted_proxies[1], a));
	assert_int_equal(eg_addr_parse("127.0.0.2", a), 0);
	assert_false(eg_prefix_contains(&c->trusted_proxies[0], a) || eg_prefix_contains(&c->trusted_proxies[1], a));
	assert_int_equal(eg_addr_parse("::1", a), 0);
	assert_true(eg_prefix_contains(&c->trusted_proxies[0], a) || eg_prefix_contains(&c->trusted_proxies[1], a));
	assert_non_null(c->proxy);
	assert_string_equal(c->proxy->name, "nginx"); /* the default profile */
	assert_null(c->listen_group);
	assert_false(c->oidc.present);
	assert_false(c->jwt.present);
	assert_false(c->default_allow);
	assert_int_equal(c->http.max_connections, 4096);
	assert_int_equal(c->http.reserved_for_proxies, 256);
	assert_int_equal(c->http.max_connections_per_ip, 32);
	assert_int_equal(c->http.header_timeout_s, 10);
	assert_int_equal(c->http.idle_timeout_s, 75);
	assert_int_equal(c->http.store_workers, 4);
	assert_int_equal(c->http.store_queue, 4096);
	assert_int_equal(c->http.store_queue_wait_ms, 5000);
	assert_int_equal(c->http.lane_threads, 0); /* unset: http.c takes max(1, CPUs / 4) */
	assert_int_equal(c->revocation.flows_per_session, 0); /* revoke.c's default (128) */
	config_free(c);

	c = parse("{\"listen\":\"127.0.0.1:1\",\"revocation\":{\"flows_per_session\":512}}", err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->revocation.flows_per_session, 512);
	assert_int_equal(c->revocation.flows_per_subject, 0); /* revoke.c's default (max_flows / 16, >= 512) */
	config_free(c);

	c = parse("{\"listen\":\"127.0.0.1:1\",\"revocation\":{\"flows_per_subject\":128}}", err, sizeof(err));
	assert_non_null(c); /* equal to the default flows_per_session: allowed */
	assert_int_equal(c->revocation.flows_per_subject, 128);
	config_free(c);

	c = parse("{\"listen\":[\"unix:/run/eg.sock\",\"[::1]:9180\"],\"trusted_proxies\":[\"10.0.0.0/8\"]}", err,
		  sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->n_listen, 2);
	assert_true(c->listen[0].is_unix);
	assert_string_equal(c->listen[0].path, "/run/eg.sock");
	assert_int_equal(c->n_trusted_proxies, 1);
	config_free(c);

	static const char *const names[] = { "nginx", "traefik", "caddy", "envoy" };
	for (size_t i = 0; i < 4; i++) {
		char json[128];
		snprintf(json, sizeof(json), "{\"listen\":\"127.0.0.1:1\",\"proxy\":\"%s\",\"listen_group\":\"0\"}", names[i]);
		c = parse(json, err, sizeof(err));
		assert_non_null(c);
		assert_string_equal(c->proxy->name, names[i]);
		assert_string_equal(c->listen_group, "0");
		config_free(c);
	}
}

struct bad {
	const char *json;
	const char *want; /* prefix of the error message */
};

static void test_errors_name_the_key(void **state)
{
	static const struct bad cases[] = {
		{ "{}", "listen: required" },
		{ "{\"listen\":\"127.0.0.1:1\",\"proxy\":\"haproxy\"}", "proxy: must be nginx, traefik, caddy or envoy" },
		{ "{\"listen\":\"127.0.0.1:1\",\"proxy\":1}", "proxy: expected a string" },
		{ "{\"listen\":\"127.0.0.1:1\",\"listen_group\":\"no-such-group-eg\"}", "listen_group: no group" },
		{ "{\"listen\":\"127.0.0.1:1\",\"user\":\"no-such-user-eg\"}", "user: no user \"no-such-user-eg\"" },
		{ "{\"listen\":\"127.0.0.1:1\",\"metrics\":{\"allow\":[\"10.0.0.0/8\",\"prom\"]}}", "metrics.allow[1]: \"prom\" is not" },
		{ "{\"listen\":\"127.0.0.1:1\",\"metrics\":{\"listen\":\"127.0.0.1:2\"}}", "metrics.listen: unknown key" },
		{ "{\"listen\":\"127.0.0.1:1\",\"metrics\":[]}", "metrics: expected an object" },
		{ "{\"listen\":\"127.0.0.1\"}", "listen: expected" },
		{ "{\"listen\":\"127.0.0.1:99999\"}", "listen: bad port" },
		{ "{\"listen\":[\"127.0.0.1:1\",7]}", "listen[1]: expected a string" },
		{ "{\"listen\":\"127.0.0.1:1\",\"lisen\":1}", "lisen: unknown key" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"leeway\":\"5 minutes\"}}", "jwt.leeway: expected a duration" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{}}", "jwt: give exactly one of jwks_file and jwks_url" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_url\":\"ftp://x\"}}", "jwt.jwks_url:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"a\",\"issuers\":[\"b\"]}}", "jwt.issuers: give issuer or issuers" },
		{ "{\"listen\":\"127.0.0.1:1\",\"cookie\":{\"secure\":false},\"public_url\":\"https://app.test\"}", "cookie.secure: false is only allowed" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"audience\":[1]}}", "jwt.audience[0]: expected a string" },
		{ "{\"listen\":\"127.0.0.1:1\",\"routes\":[{\"path\":\"/\",\"auth\":\"public\"},{\"path\":\"x\",\"auth\":\"public\"}]}", "routes[1].path: must start with '/'" },
		{ "{\"listen\":\"127.0.0.1:1\",\"routes\":[{\"auth\":\"magic\"}]}", "routes[0].auth: must be one of" },
		{ "{\"listen\":\"127.0.0.1:1\",\"routes\":[{\"auth\":\"bearer\"}]}", "routes[0].auth: \"bearer\" needs a jwt section" },
		{ "{\"listen\":\"127.0.0.1:1\",\"routes\":[{\"auth\":\"public\",\"alow\":{}}]}", "routes[0].alow: unknown key" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audience\":\"*\"},\"routes\":[{\"allow\":{\"domains\":[\"@x\"]}}]}", "routes[0].allow.domains[0]:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audience\":\"*\"},\"routes\":[{\"allow\":{\"claims\":{\"a\":{\"b\":1}}}}]}", "routes[0].allow.claims.a:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audience\":\"*\"},\"routes\":[{\"methods\":[\"get\"]}]}", "routes[0].methods[0]: unknown HTTP method" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audience\":\"*\"},\"routes\":[{\"headers\":{\"X Bad\":\"sub\"}}]}", "routes[0].headers.X Bad:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audience\":\"*\"},\"routes\":[{\"allow\":{\"cert_fingerprints\":[\"abc\"]}}]}", "routes[0].allow.cert_fingerprints[0]:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"gate\":{\"deny\":[\"10.0.0.0/33\"]}}", "gate.deny[0]:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"gate\":{\"xdp_mode\":\"fast\"}}", "gate.xdp_mode:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"gate\":{\"ban_scope\":\"some\"}}", "gate.ban_scope: must be" },
		{ "{\"listen\":\"127.0.0.1:1\",\"gate\":{\"ban_scope\":1}}", "gate.ban_scope: must be" },
		{ "{\"listen\":\"127.0.0.1:1\",\"gate\":{\"protected_ports\":[0]}}", "gate.protected_ports[0]:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"gate\":{\"syn_rate\":-1}}", "gate.syn_rate: must be between" },
		{ "{\"listen\":\"127.0.0.1:1\",\"oidc\":{\"issuer\":\"http://127.0.0.1:1\"}}", "oidc.client_id: required" },
		{ "{\"listen\":\"127.0.0.1:1\",\"oidc\":{\"issuer\":\"i\",\"client_id\":\"c\",\"redirect_url\":\"r\"}}", "oidc.client_secret: required" },
		{ "{\"listen\":\"127.0.0.1:1\",\"cookie\":{\"secret\":\"short\"}}", "cookie.secret: must be at least" },
		{ "{\"listen\":\"127.0.0.1:1\",\"cookie\":{\"name\":\"a;b\"}}", "cookie.name:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"redis\":\"http://x\"}}", "store.redis:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"sync\":\"5\"}}", "store.sync: expected a duration" },
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"sync\":\"50ms\"}}", "store.sync: expected a duration" },
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"map_size\":1024}}", "store.map_size: must be between" },
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"map_size\":\"1G\"}}", "store.map_size: expected an integer" },
		{ "{\"listen\":\"127.0.0.1:1\",\"gate\":{\"never_ban\":[\"198.51.100.0/33\"]}}", "gate.never_ban[0]:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"log_level\":\"loud\"}", "log_level:" },
		{ "{\"listen\":\"127.0.0.1:1\",\"oidc\":{\"issuer\":\"i\",\"client_id\":\"c\",\"redirect_url\":\"r\",\"client_secret_file\":\"/nonexistent/x\"}}", "oidc.client_secret_file: cannot read" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"audience\":\"api\"}}", "jwt.issuer: required in the jwt section" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"https://i\"}}", "jwt.audience: required in the jwt section" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audiences\":[\"a\",\"*\"]}}", "jwt.audiences: \"*\" (any) cannot be combined" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audience\":\"*\",\"algorithms\":[\"RS256\",\"none\"]}}", "jwt.algorithms[1]: unknown" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_url\":\"http://127.evil.example/jwks\",\"issuer\":\"*\",\"audience\":\"*\"}}", "jwt.jwks_url: must be an https://" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audience\":\"*\",\"ca_file\":\"/nonexistent/ca.pem\"}}", "jwt.ca_file: cannot read" },
		{ "{\"listen\":\"127.0.0.1:1\",\"oidc\":{\"issuer\":\"http://127.evil.example\",\"client_id\":\"c\",\"redirect_url\":\"r\",\"token_auth_method\":\"none\"}}", "oidc.issuer: must be an https://" },
		{ "{\"listen\":\"127.0.0.1:1\",\"cookie\":{\"secure\":false},\"public_url\":\"http://127.evil.example\"}", "cookie.secure: false is only allowed" },
		{ "{\"listen\":\"127.0.0.1:1\",\"cookie\":{\"name\":\"__Host-x\",\"domain\":\"app.test\"}}", "cookie.name: a __Host- cookie needs" },
		{ "{\"listen\":\"127.0.0.1:1\",\"cookie\":{\"name\":\"__Secure-x\",\"secure\":false},\"public_url\":\"http://127.0.0.1:8\"}", "cookie.name: a __Secure- cookie needs" },
		{ "{\"listen\":\"127.0.0.1:1\",\"oidc\":{\"issuer\":\"https://i\",\"client_id\":\"c\",\"redirect_url\":\"r\",\"token_auth_method\":\"private_key_jwt\"}}", "oidc.client_key_file: required" },
		{ "{\"listen\":\"127.0.0.1:1\",\"oidc\":{\"issuer\":\"https://i\",\"client_id\":\"c\",\"redirect_url\":\"r\",\"client_secret\":\"0123456789abcdef0123456789abcde\",\"algorithms\":[\"RS256\",\"HS256\"]}}", "oidc.algorithms[1]: HS256 needs a client_secret of at least 32 bytes" },
		{ "{\"listen\":\"127.0.0.1:1\",\"oidc\":{\"issuer\":\"https://i\",\"client_id\":\"c\",\"redirect_url\":\"r\",\"client_secret\":\"0123456789abcdef0123456789abcdef\",\"algorithms\":[\"HS512\"]}}", "oidc.algorithms[0]: HS512 needs a client_secret of at least 64 bytes" },
		{ "{\"listen\":\"127.0.0.1:1\",\"oidc\":{\"issuer\":\"https://i\",\"client_id\":\"c\",\"redirect_url\":\"r\",\"token_auth_method\":\"private_key_jwt\",\"client_key_file\":\"/nonexistent/k.pem\"}}", "oidc.client_key_file: cannot read" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"max_conections\":10}}", "http.max_conections: unknown key" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"max_connections\":8}}", "http.max_connections: must be between" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"max_connections\":100,\"reserved_for_proxies\":100}}", "http.reserved_for_proxies: must be less" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"header_timeout\":\"0s\"}}", "http.header_timeout: must be between" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"idle_timeout\":30}}", "http.idle_timeout: expected a duration" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"max_connections_per_ip\":-1}}", "http.max_connections_per_ip: must be between" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":[]}", "http: expected an object" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"store_workers\":0}}", "http.store_workers: must be between 1 and 64" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"lane_threads\":0}}", "http.lane_threads: must be between 1 and 256" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"lane_threads\":257}}", "http.lane_threads: must be between 1 and 256" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"lane_threads\":\"2\"}}", "http.lane_threads" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"store_workers\":65}}", "http.store_workers: must be between 1 and 64" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"store_queue\":0}}", "http.store_queue: must be between 1 and 65536" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"store_queue\":\"8\"}}", "http.store_queue: expected" },
		{ "{\"listen\":\"127.0.0.1:1\",\"http\":{\"store_queue_wait\":\"10s\"}}",
		  "http.store_queue_wait: expected a duration between 10ms and 9s" },
		{ "{\"listen\":\"127.0.0.1:1\",\"revocation\":{\"flows_per_session\":0}}", "revocation.flows_per_session: must be between 1 and 4096" },
		{ "{\"listen\":\"127.0.0.1:1\",\"revocation\":{\"flows_per_session\":4097}}", "revocation.flows_per_session: must be between 1 and 4096" },
		{ "{\"listen\":\"127.0.0.1:1\",\"revocation\":{\"per_session\":8}}", "revocation.per_session" },
		{ "{\"listen\":\"127.0.0.1:1\",\"revocation\":{\"flows_per_subject\":0}}", "revocation.flows_per_subject: must be between 1 and 65536" },
		{ "{\"listen\":\"127.0.0.1:1\",\"revocation\":{\"flows_per_subject\":65537}}", "revocation.flows_per_subject: must be between 1 and 65536" },
		{ "{\"listen\":\"127.0.0.1:1\",\"revocation\":{\"flows_per_subject\":\"9\"}}", "revocation.flows_per_subject: expected an integer" },
		{ "{\"listen\":\"127.0.0.1:1\",\"revocation\":{\"flows_per_subject\":127}}", "revocation.flows_per_subject: must be at least flows_per_session (128)" },
		{ "{\"listen\":\"127.0.0.1:1\",\"revocation\":{\"flows_per_session\":64,\"flows_per_subject\":63}}", "revocation.flows_per_subject: must be at least flows_per_session (64)" },
		{ "{\"listen\":\"127.0.0.1:1\",\"listen\":\"127.0.0.1:2\"}", "t.json:1:" }, /* duplicate key */
		{ "{\"listen\":\"127.0.0.1:1\"", "t.json:1:" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		struct eg_config *c = parse(cases[i].json, err, sizeof(err));
		if (c || strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
			print_error("case %zu: %s\n  got: %s\n  want prefix: %s\n", i, cases[i].json, c ? "(accepted)" : err,
				    cases[i].want);
		assert_null(c);
		assert_memory_equal(err, cases[i].want, strlen(cases[i].want));
	}
}

static void test_cookie_and_jwt_defaults(void **state)
{
	char err[256];
	struct eg_config *c = parse("{\"listen\":\"127.0.0.1:1\",\"cookie\":{\"domain\":\"app.test\"}}", err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->cookie.name, "__Secure-edgegate"); /* a Domain rules out __Host- */
	config_free(c);
	c = parse("{\"listen\":\"127.0.0.1:1\",\"cookie\":{\"secure\":false},\"public_url\":\"http://[::1]:8080\"}", err,
		  sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->cookie.name, "_edgegate"); /* loopback demo without Secure */
	config_free(c);
	/* control: a 32-byte client_secret keys HS256 */
	c = parse("{\"listen\":\"127.0.0.1:1\",\"oidc\":{\"issuer\":\"https://i\",\"client_id\":\"c\",\"redirect_url\":\"r\","
		  "\"client_secret\":\"0123456789abcdef0123456789abcdef\",\"algorithms\":[\"RS256\",\"HS256\"]}}", err, sizeof(err));
	if (!c)
		print_error("%s\n", err);
	assert_non_null(c);
	config_free(c);
	c = parse("{\"listen\":\"127.0.0.1:1\",\"cookie\":{\"name\":\"mine\"}}", err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->cookie.name, "mine"); /* a configured name is kept */
	config_free(c);
	c = parse("{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_url\":\"http://127.0.0.1:9/j\",\"issuer\":\"*\",\"audiences\":[\"*\"],"
		  "\"cache_entries\":0,\"require_at_jwt\":true}}",
		  err, sizeof(err));
	if (!c)
		print_error("%s\n", err);
	assert_non_null(c);
	assert_true(c->jwt.any_issuer);
	assert_true(c->jwt.any_audience);
	assert_int_equal(c->jwt.issuers.n, 0);
	assert_int_equal(c->jwt.cache_entries, 0);
	assert_true(c->jwt.require_at_jwt);
	assert_false(c->jwt.trust_unverified_email);
	config_free(c);
	c = parse("{\"listen\":\"127.0.0.1:1\",\"oidc\":{\"issuer\":\"http://localhost:9\",\"client_id\":\"c\",\"redirect_url\":\"r\","
		  "\"token_auth_method\":\"none\"}}",
		  err, sizeof(err));
	if (!c)
		print_error("%s\n", err);
	assert_non_null(c);
	assert_true(c->oidc.use_userinfo); /* on by default */
	assert_false(c->oidc.trust_unverified_email);
	config_free(c);
}

static void test_duration(void **state)
{
	int64_t s;
	assert_int_equal(eg_parse_duration("30s", &s), 0);
	assert_int_equal(s, 30);
	assert_int_equal(eg_parse_duration("5m", &s), 0);
	assert_int_equal(s, 300);
	assert_int_equal(eg_parse_duration("1h30m", &s), 0);
	assert_int_equal(s, 5400);
	assert_int_equal(eg_parse_duration("7d", &s), 0);
	assert_int_equal(s, 7 * 86400);
	assert_int_equal(eg_parse_duration("250ms", &s), 0);
	assert_int_equal(s, 1);
	assert_int_equal(eg_parse_duration("0s", &s), 0);
	assert_int_equal(s, 0);
	const char *bad[] = { "", "s", "10", "-5s", "5x", "5 s", "1e3s", "99999999999999999999s", "5m-" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(eg_parse_duration(bad[i], &s), -1);
}

static void test_prefix(void **state)
{
	struct eg_prefix p;
	uint8_t a[16];
	assert_int_equal(eg_parse_prefix("10.1.2.3/8", &p), 0);
	assert_true(p.v4);
	assert_int_equal(p.plen, 104);
	assert_int_equal(eg_addr_parse("10.200.0.1", a), 0);
	assert_true(eg_prefix_contains(&p, a));
	assert_int_equal(eg_addr_parse("11.0.0.1", a), 0);
	assert_false(eg_prefix_contains(&p, a));
	assert_int_equal(eg_addr_parse("::ffff:10.0.0.1", a), 0); /* mapped notation, same address */
	assert_true(eg_prefix_contains(&p, a));
	assert_int_equal(eg_parse_prefix("2001:db8::/32", &p), 0);
	assert_false(p.v4);
	assert_int_equal(eg_addr_parse("2001:db8:1::5", a), 0);
	assert_true(eg_prefix_contains(&p, a));
	assert_int_equal(eg_parse_prefix("198.18.0.1", &p), 0);
	assert_int_equal(p.plen, 128);
	const char *bad[] = { "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "x", "10.0.0.0/8/8", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(eg_parse_prefix(bad[i], &p), -1);
	char buf[64];
	assert_int_equal(eg_addr_parse("192.0.2.7", a), 0);
	eg_addr_format(a, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.7");
}

static void test_full_example(void **state)
{
	const char *json = "{\"listen\":\"unix:/run/edgegate/auth.sock\",\"admin_socket\":\"/run/edgegate/admin.sock\","
			   "\"jwt\":{\"jwks_url\":\"https://idp.test/jwks\",\"issuer\":\"https://idp.test\","
			   "\"audience\":[\"api\",\"web\"],\"algorithms\":[\"RS256\",\"ES256\"],\"leeway\":\"30s\"},"
			   "\"routes\":[{\"host\":\"App.Example.Test\",\"path\":\"/api/\",\"methods\":[\"GET\",\"POST\"],"
			   "\"auth\":\"bearer\",\"allow\":{\"emails\":[\"a@x.test\"],\"domains\":[\"x.test\"],\"groups\":[\"ops\"],"
			   "\"claims\":{\"tier\":\"gold\",\"level\":3,\"admin\":true}},\"deny\":{\"emails\":[],\"groups\":[]},"
			   "\"headers\":{\"X-User-Sub\":\"sub\"}}],"
			   "\"gate\":{\"interfaces\":[\"eth0\"],\"protected_ports\":[80,443],\"deny\":[\"203.0.113.0/24\"],"
			   "\"ban_scope\":\"all\",\"flood_new_sources\":5000}}";
	char err[256];
	struct eg_config *c = parse(json, err, sizeof(err));
	if (!c)
		print_error("%s\n", err);
	assert_non_null(c);
	assert_string_equal(c->routes[0].host, "app.example.test");
	assert_int_equal(c->routes[0].methods, EG_M_GET | EG_M_POST);
	assert_int_equal(c->routes[0].allow.n_claims, 3);
	assert_string_equal(c->routes[0].allow.claims[1].values.v[0], "3");
	assert_string_equal(c->routes[0].allow.claims[2].values.v[0], "true");
	assert_int_equal(c->jwt.audiences.n, 2);
	assert_int_equal(c->jwt.leeway_s, 30);
	assert_int_equal(c->gate.n_protected_ports, 2);
	assert_int_equal(c->gate.n_deny, 1);
	assert_true(c->gate.ban_scope_all);
	assert_int_equal(c->gate.flood_new_sources, 5000);
	assert_true(c->gate.xdp_dispatcher);
	assert_int_equal(c->gate.run_priority, 1);
	config_free(c);
}

/* issue 11: store.map_size (tests of a full store), gate.never_ban (the admin's own addresses) */
static void test_durable_keys(void **state)
{
	char err[256];
	struct eg_config *c = parse("{\"listen\":\"127.0.0.1:1\",\"store\":{\"map_size\":1048576},"
				    "\"gate\":{\"never_ban\":[\"198.51.100.7\",\"2001:db8::/64\"]}}",
				    err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->store.map_size, 1048576);
	assert_int_equal(c->gate.n_never_ban, 2);
	assert_int_equal(c->gate.never_ban[1].plen, 64);
	config_free(c);
}

/* Several hosts (issue 12): Sentinel, timeout, outage grace, stream length; errors name the key. */
static void test_shared_store_keys(void **state)
{
	char err[256];
	struct eg_config *c = parse("{\"listen\":\"127.0.0.1:1\",\"store\":{\"sentinels\":[\"127.0.0.1:26379\","
				    "\"[::1]:26380\"],\"master_name\":\"m\",\"timeout\":\"250ms\",\"outage_grace\":\"0s\","
				    "\"stream_maxlen\":5000}}",
				    err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->store.sentinels.n, 2);
	assert_string_equal(c->store.master_name, "m");
	assert_int_equal(c->store.timeout_ms, 250);
	assert_int_equal(c->store.outage_grace_s, 0);
	assert_int_equal(c->store.stream_maxlen, 5000);
	config_free(c);
	c = parse("{\"listen\":\"127.0.0.1:1\",\"store\":{\"redis\":\"redis://127.0.0.1:6379\",\"sync\":\"1s\"}}", err,
		  sizeof(err));
	assert_non_null(c); /* deprecated, still accepted */
	assert_int_equal(c->store.timeout_ms, 300);
	assert_int_equal(c->store.outage_grace_s, 60);
	assert_int_equal(c->store.stream_maxlen, 100000);
	config_free(c);
	static const struct bad cases[] = {
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"sentinels\":[\"127.0.0.1:26379\"]}}", "store.master_name: required" },
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"master_name\":\"m\"}}", "store.sentinels: required" },
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"sentinels\":[\"nohost\"],\"master_name\":\"m\"}}", "store.sentinels: expected" },
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"timeout\":\"20s\"}}", "store.timeout: expected a duration" },
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"outage_grace\":\"soon\"}}", "store.outage_grace: expected" },
		{ "{\"listen\":\"127.0.0.1:1\",\"store\":{\"stream_maxlen\":10}}", "store.stream_maxlen: must be between" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		c = parse(cases[i].json, err, sizeof(err));
		if (c || !strstr(err, cases[i].want))
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].json, err, cases[i].want);
	}
}

/* eg_addr_parse reads IPv4 by hand first: it accepts exactly what inet_pton does, with the
 * same bytes (IPv4-mapped), on listed edge cases and on random strings of digits and dots. */
static void test_addr_parse_like_inet_pton(void **state)
{
	static const char *const cases[] = { "0.0.0.0", "255.255.255.255", "198.18.0.10", "256.0.0.1", "01.2.3.4",
					     "1.2.3.04", "00.1.2.3", "0.0.0.00", "1.2.3", "1.2.3.4.", "1.2.3.4 ",
					     " 1.2.3.4", "1..2.3", "1.2.3.4x", "1234.1.1.1", "", "1.2.3.25a",
					     "1.2.3.999", "10.0.0.1\n", "+1.2.3.4", "1.2.3.-4", "::1", "::ffff:1.2.3.4" };
	srand(7);
	for (size_t n = 0; n < sizeof(cases) / sizeof(cases[0]) + 200000; n++) {
		char buf[20];
		const char *s = buf;
		if (n < sizeof(cases) / sizeof(cases[0])) {
			s = cases[n];
		} else {
			size_t len = (size_t)(rand() % 16);
			for (size_t i = 0; i < len; i++)
				buf[i] = "0123456789...12"[rand() % 15];
			buf[len] = '\0';
		}
		uint8_t got[16], want[16] = { 0 };
		struct in_addr a4;
		struct in6_addr a6;
		int rc = -1;
		if (inet_pton(AF_INET, s, &a4) == 1) {
			want[10] = want[11] = 0xff;
			memcpy(want + 12, &a4, 4);
			rc = 0;
		} else if (inet_pton(AF_INET6, s, &a6) == 1) {
			memcpy(want, &a6, 16);
			rc = 0;
		}
		assert_int_equal(eg_addr_parse(s, got), rc);
		if (rc == 0)
			assert_memory_equal(got, want, 16);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_store_keys),
		cmocka_unit_test(test_durable_keys),
		cmocka_unit_test(test_minimal),  cmocka_unit_test(test_errors_name_the_key),
		cmocka_unit_test(test_addr_parse_like_inet_pton),
		cmocka_unit_test(test_duration), cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_full_example), cmocka_unit_test(test_cookie_and_jwt_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
