/* test_introspect.c - RFC 7662 answers checked against the jwt config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "config.h"
#include "introspect.h"

static struct eg_config *cfg(const char *jwt_extra)
{
	char err[256], *json = NULL;
	int n = asprintf(&json, "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"/dev/null\",\"issuer\":\"https://as.test\","
			      "\"audience\":\"api\",\"introspection_url\":\"https://as.test/introspect\","
			      "\"introspection_client_id\":\"rs\",\"introspection_client_secret\":\"s3cret\"%s}}",
			 jwt_extra);
	assert_true(n > 0);
	struct eg_config *c = config_parse(json, strlen(json), "t", err, sizeof(err));
	if (!c)
		print_error("%s\n", err);
	assert_non_null(c);
	free(json);
	return c;
}

static enum eg_jose_err check(struct eg_config *c, const char *resp_json, int64_t now)
{
	json_t *r = json_loads(resp_json, 0, NULL);
	const char *why = NULL;
	int64_t exp = 0;
	assert_non_null(r);
	enum eg_jose_err e = eg_introspect_check(c, r, now, &exp, &why);
	if (e == EG_JOSE_OK)
		assert_null(json_object_get(r, "active")); /* not a claim for policy */
	else
		assert_non_null(why);
	json_decref(r);
	return e;
}

static void answers(void **state)
{
	struct eg_config *c = cfg("");
	const int64_t now = 1800000000;
	assert_int_equal(check(c, "{\"active\":true,\"sub\":\"a\",\"exp\":1800000600}", now), EG_JOSE_OK);
	assert_int_equal(check(c, "{\"active\":true,\"sub\":\"a\",\"exp\":1800000600,\"iss\":\"https://as.test\",\"aud\":[\"x\",\"api\"],"
				  "\"token_type\":\"Bearer\"}", now),
			 EG_JOSE_OK);
	assert_int_equal(check(c, "{\"active\":false}", now), EG_JOSE_INACTIVE);
	assert_int_equal(check(c, "{\"active\":\"true\",\"exp\":1800000600}", now), EG_JOSE_INACTIVE);
	assert_int_equal(check(c, "{\"sub\":\"a\",\"exp\":1800000600}", now), EG_JOSE_INACTIVE);
	assert_int_equal(check(c, "{\"active\":true,\"exp\":1700000000}", now), EG_JOSE_EXPIRED);
	assert_int_equal(check(c, "{\"active\":true}", now), EG_JOSE_CLAIM); /* require_exp */
	assert_int_equal(check(c, "{\"active\":true,\"exp\":1800000600,\"iss\":\"https://evil.test\"}", now), EG_JOSE_ISSUER);
	assert_int_equal(check(c, "{\"active\":true,\"exp\":1800000600,\"aud\":\"other\"}", now), EG_JOSE_AUDIENCE);
	assert_int_equal(check(c, "{\"active\":true,\"exp\":1800000600,\"token_type\":\"refresh_token\"}", now),
			 EG_JOSE_TOKEN_TYPE);
	config_free(c);
	c = cfg(",\"require_exp\":false");
	assert_int_equal(check(c, "{\"active\":true}", now), EG_JOSE_OK);
	config_free(c);
}

static void config_errors(void **state)
{
	static const struct {
		const char *json, *want;
	} bad[] = {
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audience\":\"*\",\"introspection_url\":\"https://as.test/i\"}}",
		  "jwt.introspection_client_id: required" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audience\":\"*\",\"introspection_url\":\"https://as.test/i\","
		  "\"introspection_client_id\":\"rs\"}}",
		  "jwt.introspection_client_secret: required" },
		{ "{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"f\",\"issuer\":\"*\",\"audience\":\"*\",\"introspection_url\":\"http://127.evil.example/i\","
		  "\"introspection_client_id\":\"rs\",\"introspection_client_secret\":\"s\"}}",
		  "jwt.introspection_url: must be an https://" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		struct eg_config *c = config_parse(bad[i].json, strlen(bad[i].json), "t", err, sizeof(err));
		if (c || strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
			print_error("case %zu: got %s\n", i, c ? "(accepted)" : err);
		assert_null(c);
		assert_memory_equal(err, bad[i].want, strlen(bad[i].want));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(answers),
		cmocka_unit_test(config_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
