/* test_policy.c - request-target normalisation, host folding, route matching and
 * rule evaluation, including the bypass spellings attackers try. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "testcfg.h"
#include "identity.h"
#include "policy.h"

static void norm_ok(const char *in, const char *want)
{
	char out[512];
	int rc = eg_path_normalize(in, out, sizeof(out));
	if (rc != 0 || strcmp(out, want) != 0)
		print_error("normalize(%s) = %d \"%s\", want \"%s\"\n", in, rc, rc == 0 ? out : "", want);
	assert_int_equal(rc, 0);
	assert_string_equal(out, want);
}

static void norm_bad(const char *in)
{
	char out[512];
	int rc = eg_path_normalize(in, out, sizeof(out));
	if (rc == 0)
		print_error("normalize(%s) accepted as \"%s\"\n", in, out);
	assert_int_equal(rc, -1);
}

static void test_path_normalize(void **state)
{
	/* The strict reading (readings.h); ambiguous targets are rejected. */
	norm_ok("/", "/");
	norm_ok("/api/x?y=1", "/api/x");
	norm_ok("/api/../admin", "/admin");
	norm_ok("/api/./x", "/api/x");
	norm_ok("//admin", "/admin");
	norm_ok("/api//x", "/api/x");
	norm_ok("/a/b/../../../../admin", "/admin");
	norm_ok("/%61dmin/", "/admin/");        /* unreserved decoded */
	norm_ok("/%2e%2e/admin", "/admin");     /* encoded dot segments */
	norm_ok("/api/%2E/x", "/api/x");
	norm_ok("/x/%2e%2E/admin", "/admin");
	norm_ok("/a%20b", "/a b");              /* decoded: routes are written decoded */
	norm_ok("/a%3fb", "/a?b");
	norm_ok("/admin;jsessionid=1/x", "/admin;jsessionid=1/x"); /* ;params are text here */
	norm_ok("/public;/../admin", "/admin");
	/* "..;" is not a dot segment to nginx, Express or Go: the strict reading stays under
	 * /admin/ (the Tomcat reading /public/x is another reading, see test_readings). */
	norm_ok("/admin/..;/public/x", "/admin/..;/public/x");
	norm_ok("/api/", "/api/");
	norm_ok("/api/.", "/api/");
	norm_ok("/api/..", "/");
	norm_ok("http://evil.test/admin?x", "/admin");
	norm_ok("https://h/", "/");
	norm_ok("/a?x=/../../b", "/a");
	norm_ok("/caf%C3%A9", "/caf\xc3\xa9");
	norm_bad("");
	norm_bad("admin");
	norm_bad("/api/x#frag");   /* raw '#': nginx forwards it, parsers disagree */
	norm_bad("/a%2fb");        /* encoded slash: two parsers, two meanings */
	norm_bad("/a%2Fb");
	norm_bad("/a%5cb");        /* encoded backslash */
	norm_bad("/a\\b");
	norm_bad("/a%00b");
	norm_bad("/a%0ab");
	norm_bad("/a%");
	norm_bad("/a%g1");
	norm_bad("/a%1");
	norm_bad("/a b");
	norm_bad("/a\tb");
	norm_bad("/a%3bb");        /* encoded ';' */
	norm_bad("/a%c0%ae");      /* overlong '.' */
	norm_bad("/a%ff");         /* not UTF-8 */
	norm_bad("/a%2500");       /* NUL after one more decoding */
	norm_bad(NULL);
}

static void test_host_normalize(void **state)
{
	char out[256];
	assert_int_equal(eg_host_normalize("App.Example.TEST", out, sizeof(out)), 0);
	assert_string_equal(out, "app.example.test");
	assert_int_equal(eg_host_normalize("app.example.test:8443", out, sizeof(out)), 0);
	assert_string_equal(out, "app.example.test");
	assert_int_equal(eg_host_normalize("app.example.test.", out, sizeof(out)), 0);
	assert_string_equal(out, "app.example.test");
	assert_int_equal(eg_host_normalize("[::1]:80", out, sizeof(out)), 0);
	assert_string_equal(out, "[::1]");
	assert_int_equal(eg_host_normalize("", out, sizeof(out)), -1);
	assert_int_equal(eg_host_normalize("a b", out, sizeof(out)), -1);
	assert_int_equal(eg_host_normalize("evil.test/x", out, sizeof(out)), -1);
	assert_int_equal(eg_host_normalize("user@evil.test", out, sizeof(out)), -1);
	assert_int_equal(eg_host_normalize("h:", out, sizeof(out)), -1);
	assert_int_equal(eg_host_normalize("h:80x", out, sizeof(out)), -1);
	assert_int_equal(eg_host_normalize("[::1", out, sizeof(out)), -1);
	/* every byte in a name: kept (letters lowercased) exactly when it is an ASCII letter,
	 * a digit, '-', '.' or '_' (the rule before the lookup table) */
	for (int c = 1; c < 256; c++) {
		if (c == ':' || c == '[' || c == '.')
			continue; /* a port, an IPv6 literal; a trailing dot is dropped */
		char in[4] = { 'a', (char)c, 'b', '\0' };
		bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
		bool keep = letter || (c >= '0' && c <= '9') || c == '-' || c == '_';
		int rc = eg_host_normalize(in, out, sizeof(out));
		if (rc != (keep ? 0 : -1))
			fail_msg("byte 0x%02x: %d", c, rc);
		if (keep && (out[0] != 'a' || out[1] != (letter ? (char)(c | 0x20) : (char)c) || out[2] != 'b' || out[3]))
			fail_msg("byte 0x%02x read as %s", c, out);
	}
}

static const char *ROUTES = "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"/dev/null\",\"issuer\":\"*\",\"audience\":\"*\","
	"\"trust_unverified_email\":true},\"routes\":["
	"{\"path\":\"/public/\",\"auth\":\"public\"},"
	"{\"host\":\"admin.x.test\",\"path\":\"/\",\"allow\":{\"groups\":[\"ops\"]}},"
	"{\"path\":\"/api\",\"methods\":[\"GET\"],\"auth\":\"bearer\"},"
	"{\"path\":\"/mail/\",\"allow\":{\"domains\":[\"x.test\",\".corp.test\"]},\"deny\":{\"emails\":[\"bad@x.test\"]}},"
	"{\"path\":\"/gold/\",\"allow\":{\"claims\":{\"tier\":\"gold\",\"org\":[\"a\",\"b\"]}}},"
	"{\"path\":\"/nested/\",\"allow\":{\"claims\":{\"realm_access.roles\":\"admin\"}}},"
	"{\"host\":\"*.wild.test\",\"path\":\"/\",\"auth\":\"public\"}"
	"]}";

static void test_route_match(void **state)
{
	struct eg_config *c = load(ROUTES);
	const struct eg_route *r;
	r = eg_policy_match(c, "any.test", "/public/x", EG_M_GET);
	assert_non_null(r);
	assert_int_equal(r->auth, EG_AUTH_PUBLIC);
	assert_null(eg_policy_match(c, "any.test", "/publicx", EG_M_GET));
	r = eg_policy_match(c, "admin.x.test", "/anything", EG_M_POST);
	assert_non_null(r);
	assert_string_equal(r->where, "routes[1]");
	/* file order: /public/ on the admin host still matches routes[0] first */
	assert_string_equal(eg_policy_match(c, "admin.x.test", "/public/a", EG_M_GET)->where, "routes[0]");
	assert_string_equal(eg_policy_match(c, "h", "/api", EG_M_GET)->where, "routes[2]");
	assert_string_equal(eg_policy_match(c, "h", "/api/v1", EG_M_GET)->where, "routes[2]");
	assert_null(eg_policy_match(c, "h", "/apix", EG_M_GET));
	assert_null(eg_policy_match(c, "h", "/api/v1", EG_M_POST)); /* method not listed */
	assert_null(eg_policy_match(c, NULL, "/", EG_M_GET));      /* host-less request, host route */
	assert_string_equal(eg_policy_match(c, "a.wild.test", "/", EG_M_GET)->where, "routes[6]");
	assert_null(eg_policy_match(c, "wild.test", "/", EG_M_GET));
	assert_null(eg_policy_match(c, "evilwild.test", "/", EG_M_GET));
	/* A prefix ending in '/' covers the bare name and its ;params (issue 17). */
	assert_string_equal(eg_policy_match(c, "h", "/public", EG_M_GET)->where, "routes[0]");
	assert_string_equal(eg_policy_match(c, "h", "/public;x", EG_M_GET)->where, "routes[0]");
	assert_string_equal(eg_policy_match(c, "h", "/public;x/y", EG_M_GET)->where, "routes[0]");
	assert_string_equal(eg_policy_match(c, "h", "/mail", EG_M_GET)->where, "routes[3]");
	assert_string_equal(eg_policy_match(c, "h", "/api;v=1", EG_M_GET)->where, "routes[2]");
	assert_null(eg_policy_match(c, "h", "/mailx", EG_M_GET));
	assert_null(eg_policy_match(c, "h", "/mail.", EG_M_GET));
	/* folded readings compare case-insensitively; others do not */
	assert_null(eg_policy_match(c, "h", "/MAIL/x", EG_M_GET));
	assert_string_equal(eg_policy_match_reading(c, "h", "/MAIL/x", EG_M_GET, true)->where, "routes[3]");
	assert_string_equal(eg_policy_match_reading(c, "h", "/Mail", EG_M_GET, true)->where, "routes[3]");
	config_free(c);
}

static bool allows(struct eg_config *c, const char *path, const char *claims_json)
{
	const struct eg_route *r = eg_policy_match(c, "h", path, EG_M_GET);
	assert_non_null(r);
	json_error_t e;
	struct eg_identity id = { .kind = EG_ID_BEARER, .claims = json_loads(claims_json, 0, &e) };
	assert_non_null(id.claims);
	const char *why = NULL;
	bool ok = eg_policy_allows(c, r, &id, &why);
	json_decref(id.claims);
	return ok;
}

static void test_domains(void **state)
{
	struct eg_config *c = load(ROUTES);
	assert_true(allows(c, "/mail/", "{\"email\":\"a@x.test\"}"));
	assert_true(allows(c, "/mail/", "{\"email\":\"a@X.TEST\"}"));
	assert_false(allows(c, "/mail/", "{\"email\":\"a@sub.x.test\"}"));     /* exact only */
	assert_false(allows(c, "/mail/", "{\"email\":\"a@evilx.test\"}"));     /* look-alike */
	assert_false(allows(c, "/mail/", "{\"email\":\"a@x.test.evil\"}"));
	assert_true(allows(c, "/mail/", "{\"email\":\"a@eng.corp.test\"}"));   /* .corp.test: subdomain */
	assert_false(allows(c, "/mail/", "{\"email\":\"a@corp.test\"}"));      /* not the apex */
	assert_false(allows(c, "/mail/", "{\"email\":\"a@evilcorp.test\"}"));
	assert_false(allows(c, "/mail/", "{\"email\":\"a@x.test@evil.test\"}"));
	assert_false(allows(c, "/mail/", "{\"email\":\"bad@x.test\"}"));       /* deny wins */
	assert_false(allows(c, "/mail/", "{\"email\":\"BAD@x.test\"}"));
	assert_false(allows(c, "/mail/", "{\"email\":\"a@x.test\",\"email_verified\":false}"));
	assert_true(allows(c, "/mail/", "{\"email\":\"a@x.test\",\"email_verified\":true}"));
	assert_false(allows(c, "/mail/", "{\"email\":[\"a@x.test\"]}"));
	assert_false(allows(c, "/mail/", "{}"));
	config_free(c);
}

/* email_verified (issue 13): by default a missing email_verified is "not verified" for
 * allow rules; a deny rule reads the address even unverified; the trust flags are per
 * kind of identity. */
static bool allows_as(struct eg_config *c, enum eg_id_kind kind, const char *claims_json)
{
	const struct eg_route *r = eg_policy_match(c, "h", "/mail/", EG_M_GET);
	assert_non_null(r);
	struct eg_identity id = { .kind = kind, .claims = json_loads(claims_json, 0, NULL) };
	assert_non_null(id.claims);
	const char *why = NULL;
	bool ok = eg_policy_allows(c, r, &id, &why);
	json_decref(id.claims);
	return ok;
}

static void test_email_verified(void **state)
{
	struct eg_config *c = load("{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"/dev/null\",\"issuer\":\"*\",\"audience\":\"*\"},"
				   "\"oidc\":{\"issuer\":\"https://op.test\",\"client_id\":\"c\",\"redirect_url\":\"https://a.test/cb\","
				   "\"token_auth_method\":\"none\",\"trust_unverified_email\":true},\"routes\":["
				   "{\"path\":\"/mail/\",\"allow\":{\"domains\":[\"x.test\"]},\"deny\":{\"emails\":[\"bad@x.test\"]}}]}");
	/* bearer: jwt.trust_unverified_email is false */
	assert_false(allows_as(c, EG_ID_BEARER, "{\"email\":\"a@x.test\"}"));
	assert_true(allows_as(c, EG_ID_BEARER, "{\"email\":\"a@x.test\",\"email_verified\":true}"));
	assert_true(allows_as(c, EG_ID_BEARER, "{\"email\":\"a@x.test\",\"email_verified\":\"true\"}"));
	assert_false(allows_as(c, EG_ID_BEARER, "{\"email\":\"a@x.test\",\"email_verified\":\"yes\"}"));
	/* session: oidc.trust_unverified_email is true, but an explicit false still counts */
	assert_true(allows_as(c, EG_ID_SESSION, "{\"email\":\"a@x.test\"}"));
	assert_false(allows_as(c, EG_ID_SESSION, "{\"email\":\"a@x.test\",\"email_verified\":false}"));
	/* deny rules read the address unverified: no escape by dropping email_verified */
	assert_false(allows_as(c, EG_ID_SESSION, "{\"email\":\"bad@x.test\",\"email_verified\":false}"));
	struct eg_identity id = { .kind = EG_ID_BEARER, .claims = json_loads("{\"email\":\"a@x.test\"}", 0, NULL) };
	assert_null(eg_policy_verified_email(c, &id)); /* nor passed on in X-Auth-Request-Email */
	id.kind = EG_ID_SESSION;
	assert_string_equal(eg_policy_verified_email(c, &id), "a@x.test");
	json_decref(id.claims);
	config_free(c);
}

/* The memo a verdict keeps: the policy's answer is given again for the same claims and kind,
 * and worked out afresh for another kind or other claims; the decision is the memo-less one. */
static void test_email_memo(void **state)
{
	struct eg_config *c = load("{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"/dev/null\",\"issuer\":\"*\",\"audience\":\"*\"},"
				   "\"oidc\":{\"issuer\":\"https://op.test\",\"client_id\":\"c\",\"redirect_url\":\"https://a.test/cb\","
				   "\"token_auth_method\":\"none\",\"trust_unverified_email\":true},\"routes\":["
				   "{\"path\":\"/mail/\",\"allow\":{\"domains\":[\"x.test\"]}}]}");
	const struct eg_route *r = eg_policy_match(c, "h", "/mail/", EG_M_GET);
	assert_non_null(r);
	struct eg_email_memo memo = { 0 };
	const char *why = NULL;
	/* unverified: a bearer identity may not use it, a session identity may */
	struct eg_identity id = { .kind = EG_ID_BEARER, .claims = json_loads("{\"email\":\"a@x.test\"}", 0, NULL) };
	assert_false(eg_policy_allows_memo(c, r, &id, &why, &memo));
	assert_ptr_equal(memo.claims, id.claims);
	assert_null(eg_policy_verified_email_memo(c, &id, &memo));
	id.kind = EG_ID_SESSION; /* another kind: not the memo's answer */
	assert_true(eg_policy_allows_memo(c, r, &id, &why, &memo));
	assert_string_equal(eg_policy_verified_email_memo(c, &id, &memo), "a@x.test");
	/* other claims while the first are still held: their own answer */
	struct eg_identity other = { .kind = EG_ID_SESSION,
				     .claims = json_loads("{\"email\":\"b@x.test\",\"email_verified\":false}", 0, NULL) };
	assert_null(eg_policy_verified_email_memo(c, &other, &memo));
	assert_false(eg_policy_allows_memo(c, r, &other, &why, &memo));
	assert_string_equal(eg_policy_verified_email_memo(c, &id, &memo), "a@x.test");
	/* a memo of the same claims and kind answers without reading them: the one it holds */
	memo = (struct eg_email_memo){ id.claims, id.kind, "memo@x.test" };
	assert_string_equal(eg_policy_verified_email_memo(c, &id, &memo), "memo@x.test");
	assert_string_equal(eg_policy_verified_email(c, &id), "a@x.test"); /* no memo: read */
	json_decref(id.claims);
	json_decref(other.claims);
	config_free(c);
}

/* oauth2-proxy GHSA-c5c4-8r6x-56w3: "a@evil.test@x.test" passed a domains check that split
 * on the last '@'. Only a plain addr-spec (one '@', no quoting) is believed by allow
 * rules and passed on; a deny domains rule matches an address parsers split differently. */
static void test_email_addr_spec(void **state)
{
	struct eg_config *c = load("{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"/dev/null\",\"issuer\":\"*\",\"audience\":\"*\"},"
				   "\"routes\":[{\"path\":\"/mail/\",\"allow\":{\"domains\":[\"x.test\"]},"
				   "\"deny\":{\"domains\":[\"evil.test\"]}}]}");
	static const char *const v = ",\"email_verified\":true}";
	char buf[256];
#define AS(email) (snprintf(buf, sizeof(buf), "{\"email\":\"%s\"%s", email, v), buf)
	assert_true(allows_as(c, EG_ID_BEARER, AS("a@x.test")));           /* control */
	assert_true(allows_as(c, EG_ID_BEARER, AS("first.last+tag@x.test")));
	assert_true(allows_as(c, EG_ID_BEARER, AS("a..b.@x.test")));       /* dots in the local part: its own */
	assert_false(allows_as(c, EG_ID_BEARER, AS("a@.x.test")));         /* empty labels in the domain */
	assert_false(allows_as(c, EG_ID_BEARER, AS("a@x..test")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("a@x.test.")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("a@.")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("a@evil.test@x.test")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("\\\"a@evil.test\\\"@x.test")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("a@x.test@x.test")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("@x.test")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("a@")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("a b@x.test")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("a\\t@x.test")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("(evil.test)a@x.test")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("<a@evil.test>@x.test")));
	assert_false(allows_as(c, EG_ID_BEARER, AS("a@evil.test")));       /* deny domain (control) */
	/* not passed on as X-Auth-Request-Email either */
	struct eg_identity id = { .kind = EG_ID_BEARER, .claims = json_loads(AS("a@evil.test@x.test"), 0, NULL) };
	assert_non_null(id.claims);
	assert_null(eg_policy_verified_email(c, &id));
	json_decref(id.claims);
	id.claims = json_loads(AS("a@x.test"), 0, NULL);
	assert_string_equal(eg_policy_verified_email(c, &id), "a@x.test");
	json_decref(id.claims);
#undef AS
	config_free(c);
	/* a deny domains rule matches a split-ambiguous address whichever way it is split */
	c = load("{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"/dev/null\",\"issuer\":\"*\",\"audience\":\"*\"},"
		 "\"routes\":[{\"path\":\"/mail/\",\"allow\":{\"emails\":[\"a@evil.test@x.test\",\"ok@x.test\"]},"
		 "\"deny\":{\"domains\":[\"evil.test\"]}}]}");
	assert_true(allows_as(c, EG_ID_BEARER, "{\"email\":\"ok@x.test\",\"email_verified\":true}"));
	assert_false(allows_as(c, EG_ID_BEARER, "{\"email\":\"a@evil.test@x.test\",\"email_verified\":true}"));
	config_free(c);
}

/* An address whose domain ends in a dot (a fully qualified name: mail to it is delivered to
 * the same domain) or has an empty label is the same mailbox to the mail system: a deny rule
 * must still match it, and allow rules and the email header do not believe it. */
static void test_email_trailing_dot(void **state)
{
	struct eg_config *c = load("{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"/dev/null\",\"issuer\":\"*\",\"audience\":\"*\"},"
				   "\"routes\":[{\"path\":\"/any/\",\"deny\":{\"emails\":[\"mallory@x.test\"],\"domains\":[\"evil.test\"]}},"
				   "{\"path\":\"/mail/\",\"allow\":{\"domains\":[\"x.test\"],\"emails\":[\"bob@y.test\"]}}]}");
	char buf[256];
#define AS(email) (snprintf(buf, sizeof(buf), "{\"email\":\"%s\",\"email_verified\":true}", email), buf)
	assert_true(allows(c, "/mail/", AS("alice@x.test")));             /* control */
	assert_true(allows(c, "/mail/", AS("bob@y.test")));               /* control */
	assert_true(allows(c, "/any/", AS("alice@x.test")));              /* control */
	assert_false(allows(c, "/any/", AS("mallory@x.test")));           /* control: deny */
	assert_false(allows(c, "/any/", AS("mallory@x.test.")));
	assert_false(allows(c, "/any/", AS("Mallory@X.Test..")));
	assert_false(allows(c, "/any/", AS("a@evil.test.")));
	assert_false(allows(c, "/mail/", AS("alice@x.test.")));
	assert_false(allows(c, "/mail/", AS("bob@y.test.")));
	assert_false(allows(c, "/mail/", AS("alice@.x.test")));
	assert_false(allows(c, "/mail/", AS("alice@x..test")));
	struct eg_identity id = { .kind = EG_ID_BEARER, .claims = json_loads(AS("alice@x.test."), 0, NULL) };
	assert_non_null(id.claims);
	assert_null(eg_policy_verified_email(c, &id));
	json_decref(id.claims);
#undef AS
	config_free(c);
}

/* A dotted claim name has two readings when the token has both a literal key of that name and
 * the nested path: an allow rule needs both to match, a deny rule either. */
static void test_dotted_claim_readings(void **state)
{
	struct eg_config *c = load("{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"/dev/null\",\"issuer\":\"*\",\"audience\":\"*\"},"
				   "\"routes\":[{\"path\":\"/any/\",\"deny\":{\"claims\":{\"acct.state\":\"suspended\"}}},"
				   "{\"path\":\"/adm/\",\"allow\":{\"claims\":{\"realm_access.roles\":\"admin\"}}}]}");
	assert_true(allows(c, "/adm/", "{\"realm_access\":{\"roles\":[\"admin\"]}}"));             /* control */
	assert_true(allows(c, "/adm/", "{\"realm_access.roles\":[\"admin\"]}"));                     /* control */
	assert_true(allows(c, "/adm/", "{\"realm_access.roles\":[\"admin\"],\"realm_access\":{\"roles\":[\"admin\"]}}"));
	assert_false(allows(c, "/adm/", "{\"realm_access.roles\":[\"admin\"],\"realm_access\":{\"roles\":[\"user\"]}}"));
	assert_false(allows(c, "/adm/", "{\"realm_access.roles\":[\"user\"],\"realm_access\":{\"roles\":[\"admin\"]}}"));
	assert_true(allows(c, "/any/", "{\"acct\":{\"state\":\"active\"}}"));                      /* control */
	assert_false(allows(c, "/any/", "{\"acct\":{\"state\":\"suspended\"}}"));                  /* control */
	assert_false(allows(c, "/any/", "{\"acct.state\":\"active\",\"acct\":{\"state\":\"suspended\"}}"));
	assert_false(allows(c, "/any/", "{\"acct.state\":\"suspended\",\"acct\":{\"state\":\"active\"}}"));
	config_free(c);
}

/* Distributed claims (Entra groups overage): not resolved, so fail closed. */
static void test_distributed_claims(void **state)
{
	struct eg_config *c = load("{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"/dev/null\",\"issuer\":\"*\",\"audience\":\"*\"},\"routes\":["
				   "{\"path\":\"/ops/\",\"allow\":{\"groups\":[\"ops\"]}},"
				   "{\"path\":\"/any/\",\"deny\":{\"groups\":[\"suspended\"]}},"
				   "{\"path\":\"/tier/\",\"allow\":{\"claims\":{\"realm_access.roles\":\"admin\"}}}]}");
	const char *overage = "{\"sub\":\"a\",\"groups\":[\"ops\"],\"realm_access\":{\"roles\":[\"admin\"]},"
			      "\"_claim_names\":{\"groups\":\"src1\",\"realm_access\":\"src1\"},"
			      "\"_claim_sources\":{\"src1\":{\"endpoint\":\"https://graph.test/x\"}}}";
	assert_true(allows(c, "/ops/", "{\"sub\":\"a\",\"groups\":[\"ops\"]}"));
	assert_false(allows(c, "/ops/", overage));  /* allow on a distributed claim: no */
	assert_true(allows(c, "/any/", "{\"sub\":\"a\",\"groups\":[\"dev\"]}"));
	assert_false(allows(c, "/any/", overage));  /* deny on a distributed claim: yes */
	assert_false(allows(c, "/tier/", overage)); /* nested claim under a distributed one */
	assert_true(allows(c, "/tier/", "{\"realm_access\":{\"roles\":[\"admin\"]}}"));
	config_free(c);
}

static void test_groups_claims(void **state)
{
	struct eg_config *c = load(ROUTES);
	const struct eg_route *r = eg_policy_match(c, "admin.x.test", "/", EG_M_GET);
	json_error_t e;
	struct eg_identity id = { .kind = EG_ID_BEARER, .claims = json_loads("{\"groups\":[\"dev\",\"ops\"]}", 0, &e) };
	const char *why;
	assert_true(eg_policy_allows(c, r, &id, &why));
	json_decref(id.claims);
	id.claims = json_loads("{\"groups\":\"ops\"}", 0, &e);
	assert_true(eg_policy_allows(c, r, &id, &why));
	json_decref(id.claims);
	id.claims = json_loads("{\"groups\":[\"opsx\",\"OPS\"]}", 0, &e);
	assert_false(eg_policy_allows(c, r, &id, &why));
	assert_string_equal(why, "not_allowed");
	json_decref(id.claims);

	assert_true(allows(c, "/gold/", "{\"tier\":\"gold\",\"org\":\"b\"}"));
	assert_true(allows(c, "/gold/", "{\"tier\":[\"silver\",\"gold\"],\"org\":[\"z\",\"a\"]}"));
	assert_false(allows(c, "/gold/", "{\"tier\":\"gold\"}"));           /* all claims must match */
	assert_false(allows(c, "/gold/", "{\"tier\":\"Gold\",\"org\":\"a\"}"));
	assert_true(allows(c, "/nested/", "{\"realm_access\":{\"roles\":[\"user\",\"admin\"]}}"));
	assert_false(allows(c, "/nested/", "{\"realm_access\":{\"roles\":[\"user\"]}}"));
	assert_false(allows(c, "/nested/", "{\"realm_access\":\"admin\"}"));
	config_free(c);
}

static void test_cert_conditions(void **state)
{
	struct eg_config *c = load("{\"listen\":\"127.0.0.1:1\",\"routes\":[{\"path\":\"/\",\"auth\":\"mtls\",\"allow\":{"
				   "\"cert_sans\":[\"URI:spiffe://x.test/a\",\"DNS:svc.x.test\"]},\"deny\":{\"cert_fingerprints\":["
				   "\"sha256:00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\"]}}]}");
	const struct eg_route *r = eg_policy_match(c, "h", "/", EG_M_GET);
	char *sans[] = { "URI:spiffe://x.test/a" };
	struct eg_cert_identity cert = { .verified = true, .sans = sans, .n_sans = 1 };
	strcpy(cert.fingerprint, "sha256:ffff");
	struct eg_identity id = { .kind = EG_ID_MTLS, .cert = &cert };
	const char *why;
	assert_true(eg_policy_allows(c, r, &id, &why));
	char *sans2[] = { "DNS:SVC.x.test" };
	cert.sans = sans2;
	assert_true(eg_policy_allows(c, r, &id, &why));
	char *sans3[] = { "URI:spiffe://x.test/ab" };
	cert.sans = sans3;
	assert_false(eg_policy_allows(c, r, &id, &why));
	cert.sans = sans;
	strcpy(cert.fingerprint, "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	assert_false(eg_policy_allows(c, r, &id, &why));
	assert_string_equal(why, "deny_rule");
	cert.verified = false;
	strcpy(cert.fingerprint, "sha256:ffff");
	assert_false(eg_policy_allows(c, r, &id, &why));
	config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_normalize), cmocka_unit_test(test_host_normalize),
		cmocka_unit_test(test_route_match),    cmocka_unit_test(test_domains),
		cmocka_unit_test(test_email_verified), cmocka_unit_test(test_email_memo), cmocka_unit_test(test_distributed_claims),
		cmocka_unit_test(test_email_addr_spec),
		cmocka_unit_test(test_email_trailing_dot),
		cmocka_unit_test(test_dotted_claim_readings),
		cmocka_unit_test(test_groups_claims),  cmocka_unit_test(test_cert_conditions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
