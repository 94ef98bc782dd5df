/* test_wycheproof.c - the JWS signature primitives against C2SP Wycheproof vectors.
 *
 * Every public key goes through our own JWK parser (publicKeyJwk / keyJwk, or a JWK
 * built from the uncompressed point when a group has none), so the JWK path is
 * tested too. Policy:
 *  - valid: must verify; invalid: must not;
 *  - acceptable: we follow OpenSSL's strict choice and REJECT them (the only ones
 *    in this set are RSA PKCS#1 signatures whose DigestInfo lacks the NULL
 *    parameter); they are counted and printed;
 *  - HMAC vectors with a truncated tag (tagSize < hash size) must be rejected:
 *    JWS HS* carries the full tag;
 *  - RSA-PSS groups whose MGF hash or salt length differ from what PS* means
 *    (MGF1 with the same hash, salt = hash length) are skipped and counted. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "jose.h"
#include "util.h"

enum kind { K_ECDSA, K_RSA, K_PSS, K_ED25519, K_HMAC };

struct file_spec {
	const char *name;
	enum kind kind;
	enum eg_alg alg;
	const char *crv;
};

static const struct file_spec files[] = {
	{ "ecdsa_secp256r1_sha256_p1363_test.json", K_ECDSA, EG_ALG_ES256, "P-256" },
	{ "ecdsa_secp384r1_sha384_p1363_test.json", K_ECDSA, EG_ALG_ES384, "P-384" },
	{ "ecdsa_secp521r1_sha512_p1363_test.json", K_ECDSA, EG_ALG_ES512, "P-521" },
	{ "rsa_signature_2048_sha256_test.json", K_RSA, EG_ALG_RS256, NULL },
	{ "rsa_signature_2048_sha384_test.json", K_RSA, EG_ALG_RS384, NULL },
	{ "rsa_signature_2048_sha512_test.json", K_RSA, EG_ALG_RS512, NULL },
	{ "rsa_pss_2048_sha256_mgf1_32_test.json", K_PSS, EG_ALG_PS256, NULL },
	{ "rsa_pss_2048_sha384_mgf1_48_test.json", K_PSS, EG_ALG_PS384, NULL },
	{ "ed25519_test.json", K_ED25519, EG_ALG_EDDSA, NULL },
	{ "hmac_sha256_test.json", K_HMAC, EG_ALG_HS256, NULL },
	{ "hmac_sha384_test.json", K_HMAC, EG_ALG_HS384, NULL },
	{ "hmac_sha512_test.json", K_HMAC, EG_ALG_HS512, NULL },
};
#define N_FILES (sizeof(files) / sizeof(files[0]))

struct counts {
	unsigned valid, invalid, acceptable, acceptable_accepted, skipped, total;
};

static char *vectors_path(const char *file)
{
	const char *v = getenv("EG_VECTORS"), *root = getenv("EG_ROOT");

	if (v)
		return xasprintf("%s/wycheproof/%s", v, file);
	if (root)
		return xasprintf("%s/tests/vectors/wycheproof/%s", root, file);
	return xasprintf("%s/wycheproof/%s", eg_vectors_dir(), file);
}

static uint8_t *unhex(const char *s, size_t *n)
{
	size_t l = strlen(s);
	uint8_t *b = xmalloc(l / 2 + 1);

	assert_int_equal(l % 2, 0);
	*n = l / 2;
	assert_int_equal(hex_decode(s, b, *n), 0);
	return b;
}

static char *b64u(const uint8_t *b, size_t n)
{
	char *o = xmalloc(b64url_encoded_len(n) + 1);
	b64url_encode(b, n, o);
	return o;
}

/* A JWK for the group's key: the group's own JWK, else one built from the point. */
static char *group_jwk(const json_t *g, const struct file_spec *fs)
{
	const json_t *j = json_object_get(g, "publicKeyJwk");
	const char *unc;
	uint8_t *pt;
	size_t n, c;
	char *x, *y, *r;

	if (!j)
		j = json_object_get(g, "keyJwk");
	if (j)
		return json_dumps(j, JSON_COMPACT);
	assert_int_equal(fs->kind, K_ECDSA);
	unc = json_string_value(json_object_get(json_object_get(g, "publicKey"), "uncompressed"));
	assert_non_null(unc);
	pt = unhex(unc, &n);
	assert_true(n % 2 == 1 && pt[0] == 0x04);
	c = (n - 1) / 2;
	x = b64u(pt + 1, c);
	y = b64u(pt + 1 + c, c);
	r = xasprintf("{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", fs->crv, x, y);
	free(pt);
	free(x);
	free(y);
	return r;
}

static bool pss_group_matches(const json_t *g, enum eg_alg alg)
{
	const char *sha = json_string_value(json_object_get(g, "sha"));
	const char *mgf = json_string_value(json_object_get(g, "mgf"));
	const char *mgfsha = json_string_value(json_object_get(g, "mgfSha"));
	json_int_t slen = json_integer_value(json_object_get(g, "sLen"));
	const char *want = alg == EG_ALG_PS256 ? "SHA-256" : alg == EG_ALG_PS384 ? "SHA-384" : "SHA-512";
	json_int_t wlen = alg == EG_ALG_PS256 ? 32 : alg == EG_ALG_PS384 ? 48 : 64;

	return sha && mgf && mgfsha && strcmp(sha, want) == 0 && strcmp(mgf, "MGF1") == 0 &&
	       strcmp(mgfsha, want) == 0 && slen == wlen;
}

static size_t hash_bits(enum eg_alg alg)
{
	return alg == EG_ALG_HS256 ? 256 : alg == EG_ALG_HS384 ? 384 : 512;
}

static void run_group(const json_t *g, const struct file_spec *fs, struct counts *c)
{
	struct eg_jwks *ks = NULL;
	const struct eg_jwk *key = NULL;
	const json_t *tests = json_object_get(g, "tests"), *t;
	uint8_t *hkey = NULL;
	size_t hkeylen = 0, i;
	bool truncated = false;

	assert_true(json_is_array(tests));
	if (fs->kind == K_PSS && !pss_group_matches(g, fs->alg)) {
		c->skipped += (unsigned)json_array_size(tests);
		c->total += (unsigned)json_array_size(tests);
		return;
	}
	if (fs->kind == K_HMAC) {
		truncated = (size_t)json_integer_value(json_object_get(g, "tagSize")) != hash_bits(fs->alg);
	} else {
		char *jwk = group_jwk(g, fs), err[256], warn[512];
		ks = eg_jwks_parse(jwk, strlen(jwk), err, sizeof(err), warn, sizeof(warn));
		assert_non_null(ks);
		key = eg_jwks_key(ks, 0);
		if (!key)
			print_message("# key rejected by JWK parser: %s (%s)\n", warn, jwk);
		free(jwk);
	}

	json_array_foreach(tests, i, t) {
		const char *res = json_string_value(json_object_get(t, "result"));
		const char *sigf = fs->kind == K_HMAC ? "tag" : "sig";
		int tc = (int)json_integer_value(json_object_get(t, "tcId"));
		size_t ml, sl;
		uint8_t *msg = unhex(json_string_value(json_object_get(t, "msg")), &ml);
		uint8_t *sig = unhex(json_string_value(json_object_get(t, sigf)), &sl);
		bool ok;

		if (fs->kind == K_HMAC) {
			if (!hkey)
				hkey = unhex(json_string_value(json_object_get(t, "key")), &hkeylen);
			else {
				free(hkey);
				hkey = unhex(json_string_value(json_object_get(t, "key")), &hkeylen);
			}
			ok = eg_hmac_verify_raw(fs->alg, hkey, hkeylen, msg, ml, sig, sl) == EG_JOSE_OK;
		} else {
			ok = key && eg_jws_verify_raw(key, fs->alg, msg, ml, sig, sl) == EG_JOSE_OK;
		}
		c->total++;
		if (strcmp(res, "valid") == 0 && !truncated) {
			if (!ok)
				fail_msg("%s tcId %d: valid signature rejected", fs->name, tc);
			c->valid++;
		} else if (strcmp(res, "acceptable") == 0 && !truncated) {
			c->acceptable++;
			if (ok)
				c->acceptable_accepted++;
		} else {
			if (ok)
				fail_msg("%s tcId %d: invalid signature accepted", fs->name, tc);
			c->invalid++;
		}
		free(msg);
		free(sig);
	}
	free(hkey);
	eg_jwks_unref(ks);
}

static void run_file(void **state)
{
	const struct file_spec *fs = *state;
	char *path = vectors_path(fs->name);
	json_error_t je;
	json_t *root = json_load_file(path, 0, &je), *groups, *g;
	struct counts c = { 0 };
	size_t i;

	if (!root)
		fail_msg("cannot load %s: %s", path, je.text);
	groups = json_object_get(root, "testGroups");
	assert_true(json_is_array(groups));
	json_array_foreach(groups, i, g)
		run_group(g, fs, &c);

	print_message("# %s: %u tests: %u valid accepted, %u invalid rejected, %u acceptable "
		      "(%u accepted), %u skipped\n",
		      fs->name, c.total, c.valid, c.invalid, c.acceptable, c.acceptable_accepted,
		      c.skipped);
	/* the file must have been exercised, and must match its declared count */
	assert_int_equal(c.total, (unsigned)json_integer_value(json_object_get(root, "numberOfTests")));
	assert_true(c.valid > 0 && c.invalid > 0);
	assert_true(c.skipped < c.total);
	/* our acceptable policy: reject */
	assert_int_equal(c.acceptable_accepted, 0);
	json_decref(root);
	free(path);
}

/* Every vector file but AES-GCM (not a JWS algorithm) must be in the table above. */
static void all_files_covered(void **state)
{
	char *dir = vectors_path("");
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned seen = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t i, n = strlen(e->d_name);
		bool known = false;
		if (n < 10 || strcmp(e->d_name + n - 10, "_test.json") != 0)
			continue;
		if (strncmp(e->d_name, "aes_gcm", 7) == 0)
			continue;
		for (i = 0; i < N_FILES; i++)
			known = known || strcmp(files[i].name, e->d_name) == 0;
		if (!known)
			fail_msg("vector file %s is not mapped to a JWS algorithm", e->d_name);
		seen++;
	}
	closedir(d);
	assert_int_equal(seen, N_FILES);
	free(dir);
}

#define FILE_TEST(i) { files[i].name, run_file, NULL, NULL, (void *)&files[i] }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(all_files_covered),
		FILE_TEST(0), FILE_TEST(1), FILE_TEST(2), FILE_TEST(3), FILE_TEST(4),
		FILE_TEST(5), FILE_TEST(6), FILE_TEST(7), FILE_TEST(8), FILE_TEST(9),
		FILE_TEST(10), FILE_TEST(11),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
