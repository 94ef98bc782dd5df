/* fuzz_jws.c - token bytes -> eg_jws_verify against a fixed small JWKS, then the
 * claim checks; the same bytes also go to eg_jwt_check_claims as a claims object.
 * Keys are the test fixtures (tests/unit/data/jose), embedded so the target needs
 * no files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"

static const char jwks_json[] =
	"{\"keys\":[{\"kid\":\"rsa\",\"kty\":\"RSA\",\"n\":\"umafJzt83dq-iQA0KVHk30-iw-wrUWsfVpGCUvS9TN2dTZjKsch"
	"vPN5zNbiLDu3MnExHPGKRtdmaEG49jwqhh9xU0RCxqPM0KFWPD6D1x60ELn7lUxGXbGo10YpaM_NEI-t0bu-QWOyZT"
	"FYuuVy1yI1XHQucnfVzBj9xhZN6SPTg_Z6VpfMN14cDiPJYCuIjFYtKEIwnytlHayu9uSox_uxaDKsCBJK3Y5D4wZf"
	"S3Qt_teKXQEQsr-gKcDSg-KlJt1gCTzS3peEzL4PiJ4iCs6V6w08yWiDyjX_RZ-S9TBaGUMHqH6VmaEEVJQSmere_Y"
	"XFUhahAnbkfK68h9lmMwQ\",\"e\":\"AQAB\"},{\"kid\":\"ec256\",\"kty\":\"EC\",\"x\":\"qS9JjJWSxKNGSg0yFT46Vknn"
	"GwVlurfo-YO8ZDTtQPk\",\"y\":\"XYXVqs_3rN3eN2xi_Y6xhJJfnSQK0a1dizw33-eJvDk\",\"crv\":\"P-256\"},{\"ki"
	"d\":\"ed25519\",\"crv\":\"Ed25519\",\"x\":\"Mm25HvwPGHJNBq5BiVMnFh27P25lSzobB1IckeNyZB8\",\"kty\":\"OKP\""
	"},{\"kid\":\"hs\",\"kty\":\"oct\",\"k\":\"b-C2U97Sv8maiCpFEvOY98bBNtos_nr1Jl61RYUQ2GG68vwfa7uYNn4vzuT"
	"yCw_oniihYjARAO36G91uDmy-hw\"}]}";

static struct eg_jwks *keys;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	keys = eg_jwks_parse(jwks_json, sizeof(jwks_json) - 1, NULL, 0, NULL, 0);
	if (!keys || eg_jwks_count(keys) != 4)
		abort();
	return 0;
}

static void check_claims(const json_t *c)
{
	const char *const iss[] = { "https://issuer.test" }, *const aud[] = { "api" };
	struct eg_jwt_expect x = { iss, 1, aud, 1, 60, true, false, false, 3600 };
	const char *why;
	int64_t exp;

	eg_jwt_check_claims(c, &x, 1800000000, &exp, &why);
	x.n_issuers = x.n_audiences = 0;
	x.leeway_s = INT64_MAX;
	eg_jwt_check_claims(c, &x, INT64_MIN, &exp, &why);
}

/* The second look at a token is answered from the header remembered on the first (jose.c):
 * it must be the first answer exactly (result, alg, kid, header), for a narrower
 * allow-list too. */
static void same_answer_again(const uint8_t *data, size_t size)
{
	static const eg_algset lists[] = { EG_ALGSET_ALL, 1u << EG_ALG_RS256 | 1u << EG_ALG_HS256 };
	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		struct eg_jws a, b;
		enum eg_jose_err ea = eg_jws_verify((const char *)data, size, keys, lists[l], false, &a);
		enum eg_jose_err eb = eg_jws_verify((const char *)data, size, keys, lists[l], false, &b);
		if (ea != eb || a.alg != b.alg || strcmp(a.kid, b.kid) != 0 || !a.header != !b.header ||
		    (a.header && !json_equal(a.header, b.header)))
			abort();
		eg_jws_clear(&a);
		eg_jws_clear(&b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eg_jws j;
	json_t *c;

	if (eg_jws_verify((const char *)data, size, keys, EG_ALGSET_ALL, false, &j) == EG_JOSE_OK) {
		if (j.payload) {
			const char *why;
			check_claims(j.payload);
			eg_jwt_check_access_token(j.header, j.payload, false, &why);
			eg_jwt_check_access_token(j.header, j.payload, true, &why);
		}
		eg_jws_clear(&j);
	}
	if (eg_jws_verify((const char *)data, size, keys, EG_ALGSET_ALL, true, &j) == EG_JOSE_OK)
		eg_jws_clear(&j);
	same_answer_again(data, size);
	c = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (c) {
		check_claims(c);
		json_decref(c);
	}
	return 0;
}
