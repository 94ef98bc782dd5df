/* test_idmemo.c - the per-thread memo of what a verdict reads from a claims set: the identity
 * headers and verified address it gives are the ones worked out from the claims each time,
 * per kind of identity and per config, and it keeps the claims it describes alive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "testcfg.h"
#include "identity.h"
#include "idmemo.h"
#include "policy.h"

#define CFG(extra)                                                                                                   \
	"{\"listen\":\"127.0.0.1:1\",\"jwt\":{\"jwks_file\":\"/dev/null\",\"issuer\":\"*\",\"audience\":\"*\"},"  \
	"\"oidc\":{\"issuer\":\"https://op.test\",\"client_id\":\"c\",\"redirect_url\":\"https://a.test/cb\","      \
	"\"token_auth_method\":\"none\",\"trust_unverified_email\":true" extra "},\"routes\":[{\"path\":\"/\"}]}"

/* the value the memo sends for header name, or NULL when it sends none */
static const char *header(const struct eg_idmemo *m, const char *name)
{
	for (size_t i = 0; i < m->n_headers; i++)
		if (strcmp(m->hname[i], name) == 0) {
			assert_int_equal(m->hname_len[i], strlen(name));
			assert_int_equal(m->hvalue_len[i], strlen(m->hvalue[i]));
			return m->hvalue[i];
		}
	return NULL;
}

static json_t *claims(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		print_error("claims %s: %s\n", s, e.text);
	assert_non_null(j);
	return j;
}

static void test_headers(void **state)
{
	struct eg_config *c = load(CFG(""));
	struct eg_identity id = {
		.kind = EG_ID_BEARER,
		.claims = claims("{\"sub\":\"u1\",\"email\":\"a@x.test\",\"email_verified\":true,"
				 "\"groups\":[\"ops\",\"ops,admins\",7,\"dev\",\"bad\\u0001\"],\"preferred_username\":\"al\\r\\nX-Evil: 1\"}"),
	};
	const struct eg_idmemo *m = eg_idmemo_get(c, &id);
	assert_non_null(m);
	assert_int_equal(m->n_headers, 4);
	/* in the order identity headers always went out */
	assert_string_equal(m->hname[0], "X-Auth-Request-User");
	assert_string_equal(m->hname[1], "X-Auth-Request-Email");
	assert_string_equal(m->hname[2], "X-Auth-Request-Groups");
	assert_string_equal(m->hname[3], "X-Auth-Request-Preferred-Username");
	assert_string_equal(header(m, "X-Auth-Request-User"), "u1");
	assert_string_equal(header(m, "X-Auth-Request-Email"), "a@x.test");
	assert_string_equal(m->email, "a@x.test");
	/* an element that would read as two groups, a non-string and a control: left out */
	assert_string_equal(header(m, "X-Auth-Request-Groups"), "ops,dev");
	/* CR LF never split the header */
	assert_string_equal(header(m, "X-Auth-Request-Preferred-Username"), "al  X-Evil: 1");
	json_decref(id.claims);
	/* a number as JSON, null and absent claims send nothing; an unverified address is not
	 * passed on for a bearer token (jwt.trust_unverified_email is false) */
	id.claims = claims("{\"sub\":42,\"email\":\"a@x.test\",\"groups\":null}");
	m = eg_idmemo_get(c, &id);
	assert_int_equal(m->n_headers, 1);
	assert_string_equal(header(m, "X-Auth-Request-User"), "42");
	assert_null(m->email);
	/* the same claims as a session (oidc.trust_unverified_email): another memo */
	id.kind = EG_ID_SESSION;
	m = eg_idmemo_get(c, &id);
	assert_string_equal(m->email, "a@x.test");
	assert_string_equal(header(m, "X-Auth-Request-Email"), "a@x.test");
	assert_string_equal(m->email, eg_policy_verified_email(c, &id));
	json_decref(id.claims);
	id.kind = EG_ID_NONE;
	id.claims = NULL;
	assert_null(eg_idmemo_get(c, &id));
	config_free(c);
}

/* the config's claim names: another config, another memo of the same claims */
static void test_per_config(void **state)
{
	struct eg_config *a = load(CFG("")), *b = load(CFG(",\"user_claim\":\"email\",\"groups_claim\":\"roles\""));
	struct eg_identity id = { .kind = EG_ID_SESSION,
				  .claims = claims("{\"sub\":\"u1\",\"email\":\"a@x.test\",\"groups\":[\"g\"],\"roles\":[\"r1\",\"r2\"]}") };
	assert_string_equal(header(eg_idmemo_get(a, &id), "X-Auth-Request-User"), "u1");
	assert_string_equal(header(eg_idmemo_get(a, &id), "X-Auth-Request-Groups"), "g");
	assert_string_equal(header(eg_idmemo_get(b, &id), "X-Auth-Request-User"), "a@x.test");
	assert_string_equal(header(eg_idmemo_get(b, &id), "X-Auth-Request-Groups"), "r1,r2");
	assert_string_equal(header(eg_idmemo_get(a, &id), "X-Auth-Request-User"), "u1");
	json_decref(id.claims);
	config_free(a);
	config_free(b);
}

/* The memo holds its claims: once the caller lets go they stay readable (ASan would see a
 * use after free), and a hit is the same memo. Many other sets later, the first set's
 * answer is still its own. */
static void test_holds_claims(void **state)
{
	struct eg_config *c = load(CFG(""));
	json_t *first = claims("{\"sub\":\"first\",\"email\":\"f@x.test\",\"email_verified\":true}"), *kept = claims("{\"sub\":\"kept\"}");
	struct eg_identity id = { .kind = EG_ID_BEARER, .claims = first }, k = { .kind = EG_ID_BEARER, .claims = kept };
	const struct eg_idmemo *m = eg_idmemo_get(c, &id);
	assert_int_equal(first->refcount, 2);
	assert_ptr_equal(eg_idmemo_get(c, &id), m); /* a hit */
	json_decref(first);
	assert_string_equal(header(m, "X-Auth-Request-User"), "first");
	assert_string_equal(m->email, "f@x.test"); /* a string of the claims: still theirs */
	assert_string_equal(header(eg_idmemo_get(c, &k), "X-Auth-Request-User"), "kept");
	for (int i = 0; i < 500; i++) {
		char s[64], want[16];
		snprintf(want, sizeof(want), "u%d", i);
		snprintf(s, sizeof(s), "{\"sub\":\"%s\"}", want);
		struct eg_identity o = { .kind = EG_ID_BEARER, .claims = claims(s) };
		assert_string_equal(header(eg_idmemo_get(c, &o), "X-Auth-Request-User"), want);
		json_decref(o.claims);
	}
	assert_string_equal(header(eg_idmemo_get(c, &k), "X-Auth-Request-User"), "kept");
	json_decref(kept);
	config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_per_config),
		cmocka_unit_test(test_holds_claims),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
