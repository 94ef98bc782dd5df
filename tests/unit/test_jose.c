/* test_jose.c - JWS/JWK/JWT behaviour and attack cases.
 * Keys and node-signed tokens are fixtures in tests/unit/data/jose (gen.mjs made
 * them); attack tokens are built here with OpenSSL so each case is explicit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "jose.h"
#include "jws_sign.h"
#include "jwks.h"
#include "util.h"

#define FAR_FUTURE 4102444800 /* 2100-01-01 */

/* --- fixtures ---------------------------------------------------------------------- */

static char *data_path(const char *f)
{
	const char *root = getenv("EG_ROOT");
	return xasprintf("%s/tests/unit/data/jose/%s", root ? root : ".", f);
}

static char *slurp(const char *f, size_t *len)
{
	char *p = data_path(f), *d = read_file(p, 1 << 20, len);
	if (!d)
		fail_msg("cannot read %s", p);
	free(p);
	return d;
}

static struct eg_jwks *jwks_from(const char *json)
{
	char err[256], warn[512];
	struct eg_jwks *s = eg_jwks_parse(json, strlen(json), err, sizeof(err), warn, sizeof(warn));
	if (!s)
		fail_msg("jwks parse: %s", err);
	return s;
}

static struct eg_jwks *all_keys(void)
{
	size_t n;
	char *j = slurp("jwks.json", &n);
	struct eg_jwks *s = jwks_from(j);
	free(j);
	assert_int_equal(eg_jwks_count(s), 6);
	return s;
}

/* The fixture JWK `name`, with members of `extra` set (a null value deletes). */
static char *jwk_with(const char *name, const char *extra)
{
	char *f = xasprintf("%s.jwk.json", name), *d, *out;
	size_t n;
	json_t *j, *x, *v;
	const char *k;

	d = slurp(f, &n);
	j = json_loads(d, 0, NULL);
	assert_non_null(j);
	if (extra) {
		x = json_loads(extra, 0, NULL);
		assert_non_null(x);
		json_object_foreach(x, k, v) {
			if (json_is_null(v))
				json_object_del(j, k);
			else
				json_object_set(j, k, v);
		}
		json_decref(x);
	}
	out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	free(d);
	free(f);
	return out;
}

static struct eg_jwks *set_of(const char *jwk1, const char *jwk2)
{
	char *s = jwk2 ? xasprintf("{\"keys\":[%s,%s]}", jwk1, jwk2) : xasprintf("{\"keys\":[%s]}", jwk1);
	struct eg_jwks *r = jwks_from(s);
	free(s);
	return r;
}

static uint8_t *hs_key(size_t *n)
{
	size_t l;
	char *b = slurp("hs.key.b64u", &l);
	uint8_t *k = xmalloc(b64url_decoded_max(l));
	while (l && (b[l - 1] == '\n'))
		l--;
	long r = b64url_decode(b, l, k);
	assert_true(r == 64);
	*n = (size_t)r;
	free(b);
	return k;
}

static char *b64u(const void *d, size_t n)
{
	char *o = xmalloc(b64url_encoded_len(n) + 1);
	b64url_encode(d, n, o);
	return o;
}

static char *b64us(const char *s)
{
	return b64u(s, strlen(s));
}

/* --- signing (test side only) --------------------------------------------------------- */

static const char *hash_of(const char *alg)
{
	const char *h = alg + 2;
	return strcmp(h, "256") == 0 ? "SHA256" : strcmp(h, "384") == 0 ? "SHA384" : "SHA512";
}

static char *join(const char *input, const uint8_t *sig, size_t sl)
{
	char *s = b64u(sig, sl), *t = xasprintf("%s.%s", input, s);
	free(s);
	return t;
}

static char *signing_input(const char *hdr, const char *payload)
{
	char *h = b64us(hdr), *p = b64us(payload), *r = xasprintf("%s.%s", h, p);
	free(h);
	free(p);
	return r;
}

static char *hs_sign_raw(const char *alg, const uint8_t *key, size_t kl, const char *hdr,
			 const char *payload)
{
	char *in = signing_input(hdr, payload), *t;
	uint8_t mac[64];
	size_t ml = 0;

	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, hash_of(alg), NULL, key, kl,
				  (const uint8_t *)in, strlen(in), mac, sizeof(mac), &ml));
	t = join(in, mac, ml);
	free(in);
	return t;
}

static EVP_PKEY *priv(const char *name)
{
	char *f = xasprintf("%s.key.pem", name), *p = data_path(f);
	FILE *fp = fopen(p, "r");
	EVP_PKEY *k;

	assert_non_null(fp);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	assert_non_null(k);
	fclose(fp);
	free(p);
	free(f);
	return k;
}

/* Signs with fixture key `name` ("hs" for the oct key). ES* come out as raw r||s. */
static char *sign(const char *alg, const char *name, const char *hdr, const char *payload)
{
	char *in, *t;
	uint8_t sig[1024], raw[132];
	size_t sl = sizeof(sig);
	EVP_MD_CTX *c;
	EVP_PKEY_CTX *pc = NULL;
	EVP_PKEY *k;
	const EVP_MD *md = NULL;

	if (alg[0] == 'H') {
		size_t kl;
		uint8_t *key = hs_key(&kl);
		t = hs_sign_raw(alg, key, kl, hdr, payload);
		free(key);
		return t;
	}
	in = signing_input(hdr, payload);
	k = priv(name);
	if (strcmp(alg, "EdDSA") != 0)
		md = EVP_get_digestbyname(hash_of(alg));
	c = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(c, &pc, md, NULL, k), 1);
	if (alg[0] == 'P') {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST), 1);
	}
	assert_int_equal(EVP_DigestSign(c, sig, &sl, (const uint8_t *)in, strlen(in)), 1);
	if (alg[0] == 'E' && alg[1] == 'S') {
		size_t cl = strcmp(alg, "ES256") == 0 ? 32 : strcmp(alg, "ES384") == 0 ? 48 : 66;
		const uint8_t *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
		assert_non_null(es);
		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)cl);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + cl, (int)cl);
		ECDSA_SIG_free(es);
		memcpy(sig, raw, 2 * cl);
		sl = 2 * cl;
	}
	t = join(in, sig, sl);
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
	free(in);
	return t;
}

static const char *PAYLOAD = "{\"sub\":\"alice\",\"iss\":\"https://issuer.test\",\"aud\":\"api\","
			     "\"exp\":4102444800}";

static enum eg_jose_err vfy(const char *tok, const struct eg_jwks *ks, eg_algset allowed)
{
	struct eg_jws j;
	enum eg_jose_err e = eg_jws_verify(tok, strlen(tok), ks, allowed, true, &j);
	if (e == EG_JOSE_OK) {
		assert_non_null(j.header);
		assert_non_null(j.payload);
	} else {
		assert_null(j.header);
		assert_null(j.payload);
		assert_null(j.raw_payload);
	}
	eg_jws_clear(&j);
	return e;
}

static void expect(const char *tok, const struct eg_jwks *ks, enum eg_jose_err want)
{
	enum eg_jose_err got = vfy(tok, ks, EG_ALGSET_ALL);
	if (got != want)
		fail_msg("token %.80s...: want %s, got %s", tok, eg_jose_err_name(want),
			 eg_jose_err_name(got));
}

/* --- tests -------------------------------------------------------------------------------- */

/* Every algorithm, tokens minted by an independent implementation (node jose). */
static void node_tokens_verify(void **state)
{
	static const char *algs[] = { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
				      "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512" };
	const char *const iss[] = { "https://issuer.test" }, *const aud[] = { "api" };
	struct eg_jwt_expect x = { iss, 1, aud, 1, 0, true, true, true, 0 };
	struct eg_jwks *ks = all_keys();
	size_t n, i;
	char *d = slurp("tokens.json", &n);
	json_t *toks = json_loads(d, 0, NULL);

	assert_non_null(toks);
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		const char *t = json_string_value(json_object_get(toks, algs[i])), *why;
		struct eg_jws j;
		int64_t exp;
		assert_non_null(t);
		if (eg_jws_verify(t, strlen(t), ks, EG_ALGSET_ALL, true, &j) != EG_JOSE_OK)
			fail_msg("%s token from node jose did not verify", algs[i]);
		assert_int_equal(j.alg, eg_alg_from_name(algs[i]));
		assert_string_equal(eg_alg_name(j.alg), algs[i]);
		assert_string_equal(json_string_value(json_object_get(j.payload, "sub")), "alice");
		assert_int_equal(eg_jwt_check_claims(j.payload, &x, 1800000000, &exp, &why), EG_JOSE_OK);
		assert_int_equal(exp, FAR_FUTURE);
		eg_jws_clear(&j);
		/* only that one algorithm allowed: still fine; everything else: rejected */
		assert_int_equal(vfy(t, ks, 1u << eg_alg_from_name(algs[i])), EG_JOSE_OK);
		assert_int_equal(vfy(t, ks, EG_ALGSET_ALL & ~(1u << eg_alg_from_name(algs[i]))),
				 EG_JOSE_ALG);
	}
	json_decref(toks);
	free(d);
	eg_jwks_unref(ks);
}

static void our_signer_roundtrip(void **state)
{
	struct eg_jwks *ks = all_keys();
	char *t = sign("ES512", "ec521", "{\"alg\":\"ES512\",\"kid\":\"ec521\"}", PAYLOAD);
	expect(t, ks, EG_JOSE_OK);
	free(t);
	t = sign("PS512", "rsa", "{\"alg\":\"PS512\"}", PAYLOAD); /* no kid: trial */
	expect(t, ks, EG_JOSE_OK);
	free(t);
	eg_jwks_unref(ks);
}

static void alg_none(void **state)
{
	static const char *names[] = { "none", "None", "nOnE", "NONE", "" };
	struct eg_jwks *ks = all_keys();
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *h = xasprintf("{\"alg\":\"%s\"}", names[i]);
		char *in = signing_input(h, PAYLOAD);
		char *empty = xasprintf("%s.", in), *junk = xasprintf("%s.AAAA", in);
		assert_int_not_equal(vfy(empty, ks, EG_ALGSET_ALL), EG_JOSE_OK);
		assert_int_equal(vfy(junk, ks, EG_ALGSET_ALL), EG_JOSE_ALG);
		assert_int_equal(vfy(junk, ks, 0xffffffffu), EG_JOSE_ALG); /* even if "allowed" */
		free(h);
		free(in);
		free(empty);
		free(junk);
	}
	/* missing or non-string alg */
	char *t = hs_sign_raw("HS256", (const uint8_t *)"x", 1, "{\"typ\":\"JWT\"}", PAYLOAD);
	assert_int_equal(vfy(t, ks, EG_ALGSET_ALL), EG_JOSE_ALG);
	free(t);
	t = hs_sign_raw("HS256", (const uint8_t *)"x", 1, "{\"alg\":256}", PAYLOAD);
	assert_int_equal(vfy(t, ks, EG_ALGSET_ALL), EG_JOSE_ALG);
	free(t);
	assert_int_equal(eg_alg_from_name("none"), EG_ALG_NONE);
	assert_int_equal(eg_alg_from_name("hs256"), EG_ALG_NONE);
	eg_jwks_unref(ks);
}

/* Key confusion: HMAC keyed with the RSA public key's PEM (or its JWK n) bytes. */
static void hs256_with_rsa_public_key(void **state)
{
	size_t pl;
	char *pem = slurp("rsa.pub.pem", &pl), *jwk = jwk_with("rsa", NULL);
	struct eg_jwks *ks = set_of(jwk, NULL);
	char *t1 = hs_sign_raw("HS256", (uint8_t *)pem, pl, "{\"alg\":\"HS256\",\"kid\":\"rsa\"}", PAYLOAD);
	char *t2 = hs_sign_raw("HS256", (uint8_t *)pem, pl, "{\"alg\":\"HS256\"}", PAYLOAD);

	expect(t1, ks, EG_JOSE_NO_KEY);
	expect(t2, ks, EG_JOSE_NO_KEY);
	assert_int_equal(eg_jwk_algs(eg_jwks_key(ks, 0)) & (1u << EG_ALG_HS256), 0);
	free(t1);
	free(t2);
	free(pem);
	free(jwk);
	eg_jwks_unref(ks);
}

/* Keys embedded in the header are never used. */
static void embedded_header_keys(void **state)
{
	char *rsa = jwk_with("rsa", NULL), *ec384 = jwk_with("ec384", NULL);
	char *attacker = jwk_with("ec256", NULL), *h, *t;
	struct eg_jwks *ks = set_of(rsa, ec384);

	h = xasprintf("{\"alg\":\"ES256\",\"jwk\":%s}", attacker);
	t = sign("ES256", "ec256", h, PAYLOAD);
	expect(t, ks, EG_JOSE_NO_KEY);
	free(h);
	free(t);
	h = xasprintf("{\"alg\":\"ES256\",\"kid\":\"ec256\",\"jwk\":%s,"
		      "\"jku\":\"https://attacker.test/jwks\",\"x5u\":\"https://attacker.test/c\","
		      "\"x5c\":[\"MIIB\"]}", attacker);
	t = sign("ES256", "ec256", h, PAYLOAD);
	expect(t, ks, EG_JOSE_NO_KEY);
	free(h);
	free(t);
	/* an oct key in the header with a matching HMAC */
	t = hs_sign_raw("HS256", (const uint8_t *)"0123456789abcdef0123456789abcdef", 32,
			"{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\",\"k\":"
			"\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"}}", PAYLOAD);
	expect(t, ks, EG_JOSE_NO_KEY);
	free(t);
	/* the header keys do not disturb a genuine token either */
	h = xasprintf("{\"alg\":\"ES384\",\"jwk\":%s,\"jku\":\"https://attacker.test/\"}", attacker);
	t = sign("ES384", "ec384", h, PAYLOAD);
	expect(t, ks, EG_JOSE_OK);
	free(h);
	free(t);
	free(rsa);
	free(ec384);
	free(attacker);
	eg_jwks_unref(ks);
}

static void kid_rules(void **state)
{
	struct eg_jwks *ks = all_keys();
	char long_kid[140], *h, *t;

	t = sign("RS256", "rsa", "{\"alg\":\"RS256\",\"kid\":\"../../etc/passwd\"}", PAYLOAD);
	expect(t, ks, EG_JOSE_NO_KEY);
	free(t);
	t = sign("RS256", "rsa", "{\"alg\":\"RS256\",\"kid\":\"RSA\"}", PAYLOAD); /* exact match only */
	expect(t, ks, EG_JOSE_NO_KEY);
	free(t);
	t = sign("RS256", "rsa", "{\"alg\":\"RS256\",\"kid\":\"rsa \"}", PAYLOAD);
	expect(t, ks, EG_JOSE_NO_KEY);
	free(t);
	memset(long_kid, 'a', 128);
	long_kid[128] = '\0';
	h = xasprintf("{\"alg\":\"RS256\",\"kid\":\"%s\"}", long_kid);
	t = sign("RS256", "rsa", h, PAYLOAD);
	expect(t, ks, EG_JOSE_MALFORMED);
	free(h);
	free(t);
	t = sign("RS256", "rsa", "{\"alg\":\"RS256\",\"kid\":\"rs\\u0000a\"}", PAYLOAD);
	expect(t, ks, EG_JOSE_MALFORMED);
	free(t);
	t = sign("RS256", "rsa", "{\"alg\":\"RS256\",\"kid\":7}", PAYLOAD);
	expect(t, ks, EG_JOSE_MALFORMED);
	free(t);
	/* a kid naming a key of another type: no usable key */
	t = sign("RS256", "rsa", "{\"alg\":\"RS256\",\"kid\":\"ec256\"}", PAYLOAD);
	expect(t, ks, EG_JOSE_NO_KEY);
	free(t);
	assert_true(eg_jwks_has_kid(ks, "rsa"));
	assert_false(eg_jwks_has_kid(ks, "../../etc/passwd"));
	eg_jwks_unref(ks);
}

static char *with_sig(const char *hdr, const uint8_t *sig, size_t sl)
{
	char *in = signing_input(hdr, PAYLOAD), *t = join(in, sig, sl);
	free(in);
	return t;
}

/* CVE-2022-21449: r = s = 0 (and r, s = n) must never verify. */
static void psychic_signature(void **state)
{
	static const uint8_t n256[32] = { 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
					  0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
					  0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51 };
	struct eg_jwks *ks = all_keys();
	uint8_t sig[64];
	char *t;

	memset(sig, 0, sizeof(sig));
	t = with_sig("{\"alg\":\"ES256\",\"kid\":\"ec256\"}", sig, 64);
	expect(t, ks, EG_JOSE_SIGNATURE);
	free(t);
	memcpy(sig, n256, 32);
	memcpy(sig + 32, n256, 32);
	t = with_sig("{\"alg\":\"ES256\",\"kid\":\"ec256\"}", sig, 64);
	expect(t, ks, EG_JOSE_SIGNATURE);
	free(t);
	/* r = 0, s valid-looking */
	memset(sig, 0, 32);
	memset(sig + 32, 1, 32);
	t = with_sig("{\"alg\":\"ES256\"}", sig, 64);
	expect(t, ks, EG_JOSE_SIGNATURE);
	free(t);
	/* DER instead of raw, and a one-byte signature */
	t = with_sig("{\"alg\":\"ES256\",\"kid\":\"ec256\"}", (const uint8_t *)"\x30\x06\x02\x01\x00\x02\x01\x00", 8);
	expect(t, ks, EG_JOSE_SIGNATURE);
	free(t);
	eg_jwks_unref(ks);
}

static void wrong_curve(void **state)
{
	struct eg_jwks *ks = all_keys();
	char *t;

	/* ES256 token, kid names the P-384 key */
	t = sign("ES256", "ec256", "{\"alg\":\"ES256\",\"kid\":\"ec384\"}", PAYLOAD);
	expect(t, ks, EG_JOSE_NO_KEY);
	free(t);
	/* ES384 alg, signed with and naming the P-256 key */
	t = sign("ES256", "ec256", "{\"alg\":\"ES384\",\"kid\":\"ec256\"}", PAYLOAD);
	expect(t, ks, EG_JOSE_NO_KEY);
	free(t);
	/* a real P-384 signature labelled ES256, no kid: the only ES256 key says no */
	t = sign("ES384", "ec384", "{\"alg\":\"ES256\"}", PAYLOAD);
	expect(t, ks, EG_JOSE_SIGNATURE);
	free(t);
	/* alg pinned by the JWK: RSA key with alg RS256 refuses PS256 */
	char *jwk = jwk_with("rsa", "{\"alg\":\"RS256\"}");
	struct eg_jwks *one = set_of(jwk, NULL);
	t = sign("PS256", "rsa", "{\"alg\":\"PS256\"}", PAYLOAD);
	expect(t, one, EG_JOSE_NO_KEY);
	free(t);
	t = sign("RS256", "rsa", "{\"alg\":\"RS256\"}", PAYLOAD);
	expect(t, one, EG_JOSE_OK);
	free(t);
	/* PSS signature presented as RS256 */
	t = sign("PS256", "rsa", "{\"alg\":\"RS256\"}", PAYLOAD);
	expect(t, one, EG_JOSE_SIGNATURE);
	free(t);
	free(jwk);
	eg_jwks_unref(one);
	eg_jwks_unref(ks);
}

static char *replace_seg(const char *tok, int seg, const char *with)
{
	const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
	if (seg == 0)
		return xasprintf("%s%s", with, d1);
	if (seg == 1)
		return xasprintf("%.*s.%s%s", (int)(d1 - tok), tok, with, d2);
	return xasprintf("%.*s.%s", (int)(d2 - tok), tok, with);
}

static void base64url_strictness(void **state)
{
	struct eg_jwks *ks = all_keys();
	char *t = sign("ES256", "ec256", "{\"alg\":\"ES256\",\"kid\":\"ec256\"}", PAYLOAD);
	char *v, *seg;
	size_t n = strlen(t), i;

	expect(t, ks, EG_JOSE_OK);
	v = xasprintf("%s=", t); /* 64-byte sig: 86 chars, so '=' would be padding */
	expect(v, ks, EG_JOSE_MALFORMED);
	free(v);
	v = xasprintf("%s==", t);
	expect(v, ks, EG_JOSE_MALFORMED);
	free(v);
	v = xasprintf("%.*s", (int)(n - 1), t); /* truncated signature */
	assert_int_not_equal(vfy(v, ks, EG_ALGSET_ALL), EG_JOSE_OK);
	free(v);
	v = xasprintf("%.*s", (int)(n - 2), t);
	assert_int_not_equal(vfy(v, ks, EG_ALGSET_ALL), EG_JOSE_OK);
	free(v);
	/* a padded header segment */
	seg = xasprintf("%s=", "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjMjU2In0");
	v = replace_seg(t, 0, seg);
	expect(v, ks, EG_JOSE_MALFORMED);
	free(v);
	free(seg);
	/* '+' and '/' from the standard alphabet, and whitespace */
	for (i = 0; i < 3; i++) {
		v = xstrdup(t);
		char *p = strrchr(v, '.') + 5;
		*p = "+/ "[i];
		expect(v, ks, EG_JOSE_MALFORMED);
		free(v);
	}
	/* non-canonical last character: 86 chars = 64 bytes + 4 spare bits that must be 0 */
	v = xstrdup(t);
	{
		char *last = v + strlen(v) - 1;
		static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		int idx = (int)(strchr(a, *last) - a);
		*last = a[idx | 1];
		expect(v, ks, EG_JOSE_MALFORMED);
	}
	free(v);
	free(t);
	eg_jwks_unref(ks);
}

static void segments(void **state)
{
	struct eg_jwks *ks = all_keys();
	char *t = sign("HS256", "hs", "{\"alg\":\"HS256\"}", PAYLOAD), *v;
	static const char *bad[] = { "", ".", "..", "...", "a", "a.b", ".a.b", "a..b", "a.b.",
				     "eyJhbGciOiJIUzI1NiJ9..AAAA" };
	size_t i;

	expect(t, ks, EG_JOSE_OK);
	v = xasprintf("%s.AAAA", t); /* four parts */
	expect(v, ks, EG_JOSE_MALFORMED);
	free(v);
	v = xasprintf("%s.AAAA.AAAA", t); /* five parts, JWE-shaped */
	expect(v, ks, EG_JOSE_MALFORMED);
	free(v);
	v = xasprintf("%s.", t);
	expect(v, ks, EG_JOSE_MALFORMED);
	free(v);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(bad[i], ks, EG_JOSE_MALFORMED);
	/* NUL inside the given length, and oversize */
	{
		struct eg_jws j;
		size_t n = strlen(t);
		char *z = xstrdup(t), *big = xmalloc(20000);
		z[5] = '\0';
		assert_int_equal(eg_jws_verify(z, n, ks, EG_ALGSET_ALL, true, &j), EG_JOSE_MALFORMED);
		memset(big, 'A', 20000);
		big[100] = '.';
		big[200] = '.';
		assert_int_equal(eg_jws_verify(big, 20000, ks, EG_ALGSET_ALL, true, &j), EG_JOSE_MALFORMED);
		free(z);
		free(big);
	}
	/* a tampered payload or signature */
	v = replace_seg(t, 1, "eyJzdWIiOiJtYWxsb3J5In0");
	expect(v, ks, EG_JOSE_SIGNATURE);
	free(v);
	free(t);
	eg_jwks_unref(ks);
}

static void duplicate_keys(void **state)
{
	struct eg_jwks *ks = all_keys();
	char *t;

	t = sign("HS256", "hs", "{\"alg\":\"HS256\",\"alg\":\"none\"}", PAYLOAD);
	expect(t, ks, EG_JOSE_MALFORMED);
	free(t);
	t = sign("HS256", "hs", "{\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"sub\":\"admin\",\"exp\":4102444800}");
	expect(t, ks, EG_JOSE_MALFORMED);
	free(t);
	/* payload must be a JSON object when asked for */
	t = sign("HS256", "hs", "{\"alg\":\"HS256\"}", "[1,2]");
	expect(t, ks, EG_JOSE_MALFORMED);
	free(t);
	/* ... but a raw payload is fine for jws verify */
	t = sign("HS256", "hs", "{\"alg\":\"HS256\"}", "hello");
	{
		struct eg_jws j;
		assert_int_equal(eg_jws_verify(t, strlen(t), ks, EG_ALGSET_ALL, false, &j), EG_JOSE_OK);
		assert_null(j.payload);
		assert_int_equal(j.raw_payload_len, 5);
		assert_memory_equal(j.raw_payload, "hello", 5);
		eg_jws_clear(&j);
	}
	free(t);
	/* the header itself must be an object */
	t = sign("HS256", "hs", "[\"HS256\"]", PAYLOAD);
	expect(t, ks, EG_JOSE_MALFORMED);
	free(t);
	eg_jwks_unref(ks);
}

static void crit_header(void **state)
{
	struct eg_jwks *ks = all_keys();
	static const struct {
		const char *hdr;
		enum eg_jose_err want;
	} cases[] = {
		{ "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", EG_JOSE_CRIT },
		{ "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", EG_JOSE_CRIT },
		{ "{\"alg\":\"HS256\",\"crit\":[]}", EG_JOSE_MALFORMED },
		{ "{\"alg\":\"HS256\",\"crit\":\"exp\"}", EG_JOSE_MALFORMED },
		{ "{\"alg\":\"HS256\",\"crit\":[1]}", EG_JOSE_MALFORMED },
		{ "{\"alg\":\"HS256\",\"b64\":false}", EG_JOSE_MALFORMED },
		{ "{\"alg\":\"HS256\",\"b64\":true}", EG_JOSE_OK },
		/* zip is JWE-only: never inflated, so a JWS claiming it is refused (zlib bombs) */
		{ "{\"alg\":\"HS256\",\"zip\":\"DEF\"}", EG_JOSE_MALFORMED },
		{ "{\"alg\":\"HS256\",\"zip\":null}", EG_JOSE_MALFORMED },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = sign("HS256", "hs", cases[i].hdr, PAYLOAD);
		expect(t, ks, cases[i].want);
		free(t);
	}
	eg_jwks_unref(ks);
}

static void alg_allow_list(void **state)
{
	struct eg_jwks *ks = all_keys();
	const char *names[] = { "RS256", "ES256" }, *bad[] = { "RS256", "none" };
	eg_algset s = 0;
	size_t badi = 99;
	char *t = sign("RS256", "rsa", "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", PAYLOAD);

	assert_int_equal(eg_algset_parse(names, 2, &s, &badi), 0);
	assert_int_equal(s, (1u << EG_ALG_RS256) | (1u << EG_ALG_ES256));
	assert_int_equal(eg_algset_parse(bad, 2, &s, &badi), -1);
	assert_int_equal(badi, 1);
	assert_int_equal(vfy(t, ks, 1u << EG_ALG_ES256), EG_JOSE_ALG);
	assert_int_equal(vfy(t, ks, 1u << EG_ALG_PS256), EG_JOSE_ALG);
	assert_int_equal(vfy(t, ks, 1u << EG_ALG_RS256), EG_JOSE_OK);
	assert_int_equal(vfy(t, ks, 0), EG_JOSE_ALG);
	free(t);
	eg_jwks_unref(ks);
}

/* A protected header seen before on this thread is not parsed again (jose.c remembers it):
 * the answer must stay the one a fresh parse gives. Each case runs several times so the
 * later runs are answered from the remembered header. */
static void repeated_headers(void **state)
{
	struct eg_jwks *ks = all_keys();
	const char *hdr = "{\"alg\":\"RS256\",\"kid\":\"rsa\"}";
	char *t = sign("RS256", "rsa", hdr, PAYLOAD);
	char *forged = replace_seg(t, 2, "AAAA");
	char *crit = sign("HS256", "hs", "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", PAYLOAD);
	char *other = sign("RS256", "rsa", "{\"alg\":\"RS256\",\"kid\":\"other\"}", PAYLOAD);

	for (int round = 0; round < 3; round++) {
		/* the allow-list is the caller's: checked again on every call */
		assert_int_equal(vfy(t, ks, 1u << EG_ALG_RS256), EG_JOSE_OK);
		assert_int_equal(vfy(t, ks, 1u << EG_ALG_ES256), EG_JOSE_ALG);
		assert_int_equal(vfy(t, ks, 0), EG_JOSE_ALG);
		assert_int_equal(vfy(t, ks, EG_ALGSET_ALL), EG_JOSE_OK);
		/* the same header with a bad signature: refused, the kid still reported */
		struct eg_jws j;
		assert_int_equal(eg_jws_verify(forged, strlen(forged), ks, EG_ALGSET_ALL, true, &j),
				 EG_JOSE_SIGNATURE);
		assert_string_equal(j.kid, "rsa");
		eg_jws_clear(&j);
		/* an unknown kid: NO_KEY with the kid, the cue to refetch, every time */
		assert_int_equal(eg_jws_verify(other, strlen(other), ks, EG_ALGSET_ALL, true, &j),
				 EG_JOSE_NO_KEY);
		assert_string_equal(j.kid, "other");
		eg_jws_clear(&j);
		/* a refused header is never remembered as good */
		expect(crit, ks, EG_JOSE_CRIT);
		/* the header object handed out is whole, and the next caller's too */
		assert_int_equal(eg_jws_verify(t, strlen(t), ks, EG_ALGSET_ALL, true, &j), EG_JOSE_OK);
		assert_int_equal(j.alg, EG_ALG_RS256);
		assert_string_equal(j.kid, "rsa");
		assert_string_equal(json_string_value(json_object_get(j.header, "alg")), "RS256");
		assert_int_equal(json_object_size(j.header), 2);
		eg_jws_clear(&j);
	}
	/* more distinct headers than a thread remembers, then the first again */
	for (int k = 0; k < 12; k++) {
		char *h = xasprintf("{\"alg\":\"RS256\",\"kid\":\"rsa\",\"n\":%d}", k);
		char *tk = sign("RS256", "rsa", h, PAYLOAD);
		expect(tk, ks, EG_JOSE_OK);
		free(tk);
		free(h);
	}
	expect(t, ks, EG_JOSE_OK);
	free(t);
	free(forged);
	free(crit);
	free(other);
	eg_jwks_unref(ks);
}

/* Threads verify the same tokens while the key set is swapped under them (a JWKS refresh):
 * each thread's remembered headers and each key's spare verify contexts must neither be
 * shared unsafely nor outlive their set (ASan and the results tell). Threads exit and
 * free what they remembered. */
struct swap_shared {
	pthread_mutex_t mu;
	struct eg_jwks *cur;
	char *tok[2];
	atomic_int bad;
};

static void *verify_thread(void *arg)
{
	struct swap_shared *sh = arg;

	for (int i = 0; i < 300; i++) {
		pthread_mutex_lock(&sh->mu);
		struct eg_jwks *ks = eg_jwks_ref(sh->cur);
		pthread_mutex_unlock(&sh->mu);
		struct eg_jws j;
		const char *t = sh->tok[i % 2];
		if (eg_jws_verify(t, strlen(t), ks, EG_ALGSET_ALL, true, &j) != EG_JOSE_OK ||
		    !json_is_object(j.header) || !json_is_object(j.payload))
			atomic_fetch_add(&sh->bad, 1);
		eg_jws_clear(&j);
		eg_jwks_unref(ks);
	}
	return NULL;
}

static void threads_and_key_swaps(void **state)
{
	struct swap_shared sh = { .cur = all_keys() };
	pthread_t th[4];

	pthread_mutex_init(&sh.mu, NULL);
	sh.tok[0] = sign("RS256", "rsa", "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", PAYLOAD);
	sh.tok[1] = sign("ES256", "ec256", "{\"alg\":\"ES256\",\"kid\":\"ec256\"}", PAYLOAD);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, verify_thread, &sh), 0);
	for (int i = 0; i < 40; i++) {
		struct eg_jwks *fresh = all_keys(), *old;
		pthread_mutex_lock(&sh.mu);
		old = sh.cur;
		sh.cur = fresh;
		pthread_mutex_unlock(&sh.mu);
		eg_jwks_unref(old);
		usleep(1000);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&sh.bad), 0);
	eg_jwks_unref(sh.cur);
	free(sh.tok[0]);
	free(sh.tok[1]);
	pthread_mutex_destroy(&sh.mu);
}

static void key_use_and_ops(void **state)
{
	char *t = sign("RS256", "rsa", "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", PAYLOAD);
	static const struct {
		const char *extra;
		bool usable;
	} cases[] = {
		{ "{\"use\":\"enc\"}", false },
		{ "{\"use\":\"sig\"}", true },
		{ "{\"use\":5}", false },
		{ "{\"key_ops\":[\"encrypt\"]}", false },
		{ "{\"key_ops\":[]}", false },
		{ "{\"key_ops\":\"verify\"}", false },
		{ "{\"key_ops\":[\"sign\",\"verify\"]}", true },
		{ "{\"use\":\"sig\",\"key_ops\":[\"verify\"]}", true },
		{ "{\"alg\":\"ES256\"}", false },
		{ "{\"alg\":\"none\"}", false },
		{ "{\"alg\":\"HS256\"}", false },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *jwk = jwk_with("rsa", cases[i].extra), *set = xasprintf("{\"keys\":[%s]}", jwk);
		char err[128], warn[256];
		struct eg_jwks *ks = eg_jwks_parse(set, strlen(set), err, sizeof(err), warn, sizeof(warn));
		assert_non_null(ks);
		if (eg_jwks_count(ks) != (cases[i].usable ? 1u : 0u))
			fail_msg("%s: usable=%d expected, warn=%s", cases[i].extra, cases[i].usable, warn);
		if (!cases[i].usable)
			assert_true(strlen(warn) > 0);
		expect(t, ks, cases[i].usable ? EG_JOSE_OK : EG_JOSE_NO_KEY);
		eg_jwks_unref(ks);
		free(jwk);
		free(set);
	}
	free(t);
}

/* Without a kid every key usable for the alg is tried, in order. */
static void kid_absent_several_keys(void **state)
{
	size_t kl;
	uint8_t *k = hs_key(&kl);
	char *kb = b64u(k, kl), *wrong = b64us("a different secret of 32+ bytes!!");
	char *set = xasprintf("{\"keys\":[{\"kty\":\"oct\",\"k\":\"%s\"},{\"kty\":\"oct\",\"k\":\"%s\"}]}",
			      wrong, kb);
	struct eg_jwks *ks = jwks_from(set);
	char *t = sign("HS256", "hs", "{\"alg\":\"HS256\"}", PAYLOAD);

	assert_int_equal(eg_jwks_count(ks), 2);
	expect(t, ks, EG_JOSE_OK);
	free(t);
	/* HS512 needs a 64-byte key: the 33-byte one is not even tried, the 64-byte one is */
	t = sign("HS512", "hs", "{\"alg\":\"HS512\"}", PAYLOAD);
	expect(t, ks, EG_JOSE_OK);
	free(t);
	eg_jwks_unref(ks);
	free(set);
	/* a short oct key is no HS key at all */
	set = xasprintf("{\"keys\":[{\"kty\":\"oct\",\"k\":\"%s\"}]}", "c2hvcnQ");
	ks = jwks_from(set);
	assert_int_equal(eg_jwks_count(ks), 0);
	eg_jwks_unref(ks);
	free(set);
	free(k);
	free(kb);
	free(wrong);
}

static enum eg_jose_err claims(const char *json, const struct eg_jwt_expect *x, int64_t now)
{
	json_t *c = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	const char *why = NULL;
	int64_t exp;
	enum eg_jose_err e;

	assert_non_null(c);
	e = eg_jwt_check_claims(c, x, now, &exp, &why);
	if (e != EG_JOSE_OK)
		assert_non_null(why);
	json_decref(c);
	return e;
}

static void exp_forms(void **state)
{
	struct eg_jwt_expect x = { .require_exp = true };
	json_t *c;
	int64_t exp;
	const char *why;

	assert_int_equal(claims("{\"exp\":4102444800}", &x, 1800000000), EG_JOSE_OK);
	assert_int_equal(claims("{\"exp\":1e300}", &x, 1800000000), EG_JOSE_OK);
	assert_int_equal(claims("{\"exp\":-1e300}", &x, 1800000000), EG_JOSE_EXPIRED);
	assert_int_equal(claims("{\"exp\":9223372036854775807}", &x, 1800000000), EG_JOSE_OK);
	assert_int_equal(claims("{\"exp\":-9223372036854775807}", &x, 1800000000), EG_JOSE_EXPIRED);
	assert_int_equal(claims("{\"exp\":-1}", &x, 1800000000), EG_JOSE_EXPIRED);
	assert_int_equal(claims("{\"exp\":0}", &x, 1800000000), EG_JOSE_EXPIRED);
	assert_int_equal(claims("{\"exp\":1500000000.5}", &x, 1800000000), EG_JOSE_EXPIRED);
	assert_int_equal(claims("{\"exp\":4102444800.75}", &x, 1800000000), EG_JOSE_OK);
	assert_int_equal(claims("{\"exp\":\"4102444800\"}", &x, 1800000000), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"exp\":true}", &x, 1800000000), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"exp\":null}", &x, 1800000000), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"exp\":[4102444800]}", &x, 1800000000), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"exp\":{}}", &x, 1800000000), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"sub\":\"a\"}", &x, 1800000000), EG_JOSE_CLAIM);
	x.require_exp = false;
	assert_int_equal(claims("{\"sub\":\"a\"}", &x, 1800000000), EG_JOSE_OK);
	assert_int_equal(claims("{\"nbf\":\"0\"}", &x, 1800000000), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"iat\":false}", &x, 1800000000), EG_JOSE_CLAIM);

	/* saturated value is reported for cache lifetimes */
	c = json_loads("{\"exp\":1e300}", 0, NULL);
	assert_int_equal(eg_jwt_check_claims(c, &x, 0, &exp, &why), EG_JOSE_OK);
	assert_true(exp == INT64_MAX);
	json_decref(c);

	/* an integer jansson cannot hold: the token is malformed, never "no exp" */
	{
		struct eg_jwks *ks = all_keys();
		char *t = sign("HS256", "hs", "{\"alg\":\"HS256\"}",
			       "{\"sub\":\"a\",\"exp\":99999999999999999999999}");
		expect(t, ks, EG_JOSE_MALFORMED);
		free(t);
		eg_jwks_unref(ks);
	}
	/* not an object */
	c = json_array();
	assert_int_equal(eg_jwt_check_claims(c, &x, 0, &exp, &why), EG_JOSE_CLAIM);
	json_decref(c);
}

static void audience_forms(void **state)
{
	const char *const aud[] = { "api", "other" };
	struct eg_jwt_expect x = { .audiences = aud, .n_audiences = 1 };

	assert_int_equal(claims("{\"aud\":\"api\"}", &x, 0), EG_JOSE_OK);
	assert_int_equal(claims("{\"aud\":[\"x\",\"api\"]}", &x, 0), EG_JOSE_OK);
	assert_int_equal(claims("{\"aud\":[\"api\"]}", &x, 0), EG_JOSE_OK);
	assert_int_equal(claims("{\"aud\":[\"x\"]}", &x, 0), EG_JOSE_AUDIENCE);
	assert_int_equal(claims("{\"aud\":[]}", &x, 0), EG_JOSE_AUDIENCE);
	assert_int_equal(claims("{\"aud\":\"API\"}", &x, 0), EG_JOSE_AUDIENCE);
	assert_int_equal(claims("{\"aud\":\"api \"}", &x, 0), EG_JOSE_AUDIENCE);
	assert_int_equal(claims("{\"aud\":\"ap\"}", &x, 0), EG_JOSE_AUDIENCE);
	assert_int_equal(claims("{\"sub\":\"a\"}", &x, 0), EG_JOSE_AUDIENCE);
	assert_int_equal(claims("{\"aud\":[1,\"api\"]}", &x, 0), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"aud\":[\"api\",null]}", &x, 0), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"aud\":5}", &x, 0), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"aud\":{\"api\":1}}", &x, 0), EG_JOSE_CLAIM);
	x.n_audiences = 2;
	assert_int_equal(claims("{\"aud\":\"other\"}", &x, 0), EG_JOSE_OK);
}

static void issuer_match(void **state)
{
	const char *const iss[] = { "https://issuer.test" };
	struct eg_jwt_expect x = { .issuers = iss, .n_issuers = 1 };

	assert_int_equal(claims("{\"iss\":\"https://issuer.test\"}", &x, 0), EG_JOSE_OK);
	assert_int_equal(claims("{\"iss\":\"https://issuer.test/\"}", &x, 0), EG_JOSE_ISSUER);
	assert_int_equal(claims("{\"iss\":\"https://ISSUER.test\"}", &x, 0), EG_JOSE_ISSUER);
	assert_int_equal(claims("{\"iss\":\"https://issuer.test.evil\"}", &x, 0), EG_JOSE_ISSUER);
	assert_int_equal(claims("{\"iss\":[\"https://issuer.test\"]}", &x, 0), EG_JOSE_ISSUER);
	assert_int_equal(claims("{\"sub\":\"a\"}", &x, 0), EG_JOSE_ISSUER);
	x.require_sub = true;
	assert_int_equal(claims("{\"iss\":\"https://issuer.test\"}", &x, 0), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"iss\":\"https://issuer.test\",\"sub\":\"\"}", &x, 0), EG_JOSE_CLAIM);
	assert_int_equal(claims("{\"iss\":\"https://issuer.test\",\"sub\":\"a\"}", &x, 0), EG_JOSE_OK);
}

static void time_leeway_boundaries(void **state)
{
	struct eg_jwt_expect x = { .leeway_s = 10 };

	/* exp: valid while now < exp + leeway */
	assert_int_equal(claims("{\"exp\":991}", &x, 1000), EG_JOSE_OK);
	assert_int_equal(claims("{\"exp\":990}", &x, 1000), EG_JOSE_EXPIRED);
	/* nbf: valid once now + leeway >= nbf */
	assert_int_equal(claims("{\"nbf\":1010}", &x, 1000), EG_JOSE_OK);
	assert_int_equal(claims("{\"nbf\":1011}", &x, 1000), EG_JOSE_NOT_YET);
	assert_int_equal(claims("{\"nbf\":1e300}", &x, 1000), EG_JOSE_NOT_YET);
	/* iat in the future beyond leeway */
	assert_int_equal(claims("{\"iat\":1010}", &x, 1000), EG_JOSE_OK);
	assert_int_equal(claims("{\"iat\":1011}", &x, 1000), EG_JOSE_NOT_YET);
	/* require_iat and max age */
	x.require_iat = true;
	assert_int_equal(claims("{\"exp\":2000}", &x, 1000), EG_JOSE_CLAIM);
	x.require_iat = false;
	x.max_iat_age_s = 100;
	assert_int_equal(claims("{\"iat\":890}", &x, 1000), EG_JOSE_OK);
	assert_int_equal(claims("{\"iat\":889}", &x, 1000), EG_JOSE_EXPIRED);
	assert_int_equal(claims("{\"exp\":2000}", &x, 1000), EG_JOSE_CLAIM);
	/* no leeway */
	x = (struct eg_jwt_expect){ 0 };
	assert_int_equal(claims("{\"exp\":1000}", &x, 1000), EG_JOSE_EXPIRED);
	assert_int_equal(claims("{\"exp\":1001}", &x, 1000), EG_JOSE_OK);
	assert_int_equal(claims("{\"nbf\":1001}", &x, 1000), EG_JOSE_NOT_YET);
	/* huge leeway does not overflow */
	x.leeway_s = INT64_MAX;
	assert_int_equal(claims("{\"exp\":9223372036854775807,\"nbf\":5}", &x, 1000), EG_JOSE_OK);
}

static void jwk_parsing(void **state)
{
	static const struct {
		const char *json;
		int count; /* -1: parse error */
	} cases[] = {
		{ "{\"keys\":[]}", 0 },
		{ "{\"keys\":{}}", -1 },
		{ "{\"keys\":[],\"keys\":[]}", -1 },
		{ "[]", -1 },
		{ "{}", -1 },
		{ "not json", -1 },
		{ "{\"keys\":[1,\"x\",null,{}]}", 0 },
		{ "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}", 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AAAA\"}]}", 0 },
		{ "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":"
		  "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}", 0 },
		{ "{\"keys\":[{\"kty\":\"oct\",\"k\":\"\"}]}", 0 },
		{ "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]}", 0 },
		{ "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}", 1 },
		{ "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		  "\"kid\":{}}]}", 0 },
		{ "{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", 1 },
		{ "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", 0 },
		{ "{\"keys\":[{\"kty\":\"dir\"}]}", 0 },
	};
	size_t i;
	char *j;
	struct eg_jwks *ks;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[128], warn[256];
		ks = eg_jwks_parse(cases[i].json, strlen(cases[i].json), err, sizeof(err), warn,
				   sizeof(warn));
		if (cases[i].count < 0) {
			if (ks)
				fail_msg("case %zu parsed: %s", i, cases[i].json);
			assert_true(strlen(err) > 0);
			continue;
		}
		if (!ks)
			fail_msg("case %zu: %s", i, err);
		if ((int)eg_jwks_count(ks) != cases[i].count)
			fail_msg("case %zu: %zu keys (%s)", i, eg_jwks_count(ks), warn);
		eg_jwks_unref(ks);
	}

	/* RSA-1024 is refused */
	j = jwk_with("rsa1024", NULL);
	ks = set_of(j, NULL);
	assert_int_equal(eg_jwks_count(ks), 0);
	eg_jwks_unref(ks);
	free(j);
	/* an EC point off the curve, x of the wrong length, a curve mismatch */
	j = jwk_with("ec256", "{\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}");
	ks = set_of(j, NULL);
	assert_int_equal(eg_jwks_count(ks), 0);
	eg_jwks_unref(ks);
	free(j);
	j = jwk_with("ec256", "{\"crv\":\"P-384\"}");
	ks = set_of(j, NULL);
	assert_int_equal(eg_jwks_count(ks), 0);
	eg_jwks_unref(ks);
	free(j);
	j = jwk_with("ec256", "{\"crv\":\"P-256K\"}");
	ks = set_of(j, NULL);
	assert_int_equal(eg_jwks_count(ks), 0);
	eg_jwks_unref(ks);
	free(j);
	/* a refcounted set outlives its first owner */
	ks = all_keys();
	{
		struct eg_jwks *r = eg_jwks_ref(ks);
		eg_jwks_unref(ks);
		assert_int_equal(eg_jwks_count(r), 6);
		assert_string_equal(eg_jwk_kid(eg_jwks_key(r, 0)), "rsa");
		assert_null(eg_jwks_key(r, 6));
		eg_jwks_unref(r);
	}
}

static void hashes_and_names(void **state)
{
	uint8_t h[32], m[32];
	char hex[65];

	eg_sha256("abc", 3, h);
	hex_encode(h, 32, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* RFC 4231 test case 2 */
	assert_int_equal(eg_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, m), 0);
	hex_encode(m, 32, hex);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	assert_string_equal(eg_jose_err_name(EG_JOSE_EXPIRED), "expired");
	assert_string_equal(eg_jose_err_name((enum eg_jose_err)99), "unknown");
	assert_string_equal(eg_alg_name(EG_ALG_EDDSA), "EdDSA");
}


/* --- key sources ----------------------------------------------------------------------------- */

/* A one-connection-at-a-time HTTP server on loopback serving `body` with `status`. */
static struct {
	int fd, port;
	pthread_t thr;
	atomic_bool stop;
	atomic_int requests;
	pthread_mutex_t mu;
	char *body;
	int status;
	int delay_ms;
} srv;

static void srv_set(const char *body, int status, int delay_ms)
{
	pthread_mutex_lock(&srv.mu);
	free(srv.body);
	srv.body = xstrdup(body);
	srv.status = status;
	srv.delay_ms = delay_ms;
	pthread_mutex_unlock(&srv.mu);
}

static void *srv_main(void *arg)
{
	while (!atomic_load(&srv.stop)) {
		struct pollfd p = { srv.fd, POLLIN, 0 };
		char req[4096], *resp;
		size_t got = 0;
		int c, status, delay;

		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept(srv.fd, NULL, NULL);
		if (c < 0)
			continue;
		while (got < sizeof(req) - 1) {
			ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		atomic_fetch_add(&srv.requests, 1);
		pthread_mutex_lock(&srv.mu);
		status = srv.status;
		delay = srv.delay_ms;
		resp = xasprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
				 "Location: http://127.0.0.1:%d/elsewhere\r\nContent-Length: %zu\r\n"
				 "Connection: close\r\n\r\n%s",
				 status, srv.port, strlen(srv.body), srv.body);
		pthread_mutex_unlock(&srv.mu);
		if (delay)
			usleep((useconds_t)delay * 1000);
		{
			size_t off = 0, len = strlen(resp);
			while (off < len) {
				ssize_t n = write(c, resp + off, len - off);
				if (n <= 0)
					break;
				off += (size_t)n;
			}
		}
		free(resp);
		close(c);
	}
	return NULL;
}

static int srv_start(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);

	pthread_mutex_init(&srv.mu, NULL);
	srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&a, sizeof(a)) || listen(srv.fd, 64) ||
	    getsockname(srv.fd, (struct sockaddr *)&a, &l))
		return -1;
	srv.port = ntohs(a.sin_port);
	srv_set("{\"keys\":[]}", 200, 0);
	atomic_store(&srv.stop, false);
	return pthread_create(&srv.thr, NULL, srv_main, NULL) ? -1 : 0;
}

static int srv_stop(void **state)
{
	atomic_store(&srv.stop, true);
	pthread_join(srv.thr, NULL);
	close(srv.fd);
	free(srv.body);
	srv.body = NULL;
	return 0;
}

static char *jwks_json(const char *k1, const char *k2)
{
	char *a = jwk_with(k1, NULL), *b = k2 ? jwk_with(k2, NULL) : NULL;
	char *r = b ? xasprintf("{\"keys\":[%s,%s]}", a, b) : xasprintf("{\"keys\":[%s]}", a);
	free(a);
	free(b);
	return r;
}

static void keysource_options(void **state)
{
	static const char *bad_urls[] = { "http://example.com/jwks", "http://10.0.0.1/jwks",
					  "ftp://127.0.0.1/jwks", "file:///etc/passwd",
					  "http://127.0.0.1.example.com/", "not a url", "gopher://[::1]/" };
	char err[256];
	size_t i;
	struct eg_keysource_opts o = { 0 };
	struct eg_keysource *ks;

	assert_null(eg_keysource_new(&o, err, sizeof(err)));
	assert_true(strlen(err) > 0);
	o.file = "/x";
	o.url = "https://x.test/";
	assert_null(eg_keysource_new(&o, err, sizeof(err)));
	o.url = NULL;
	o.file = "/nonexistent/jwks.json";
	assert_null(eg_keysource_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/jwks.json"));
	o.file = NULL;
	for (i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		o.url = bad_urls[i];
		if (eg_keysource_new(&o, err, sizeof(err)))
			fail_msg("accepted jwks_url %s", bad_urls[i]);
	}
	/* loopback http is fine even when nothing listens: starts empty */
	o.timeout_ms = 500;
	o.url = "http://127.0.0.1:1/jwks";
	ks = eg_keysource_new(&o, err, sizeof(err));
	assert_non_null(ks);
	{
		struct eg_jwks *s = eg_keysource_get(ks);
		struct eg_keysource_stats st;
		assert_int_equal(eg_jwks_count(s), 0);
		eg_jwks_unref(s);
		eg_keysource_stats(ks, &st);
		assert_int_equal(st.fetch_fail, 1);
	}
	eg_keysource_free(ks);
	o.url = "http://[::1]:1/jwks";
	ks = eg_keysource_new(&o, err, sizeof(err));
	assert_non_null(ks);
	eg_keysource_free(ks);
	o.url = "http://localhost:1/jwks";
	ks = eg_keysource_new(&o, err, sizeof(err));
	assert_non_null(ks);
	eg_keysource_free(ks);
}

static void keysource_file_reload(void **state)
{
	char dir[] = "/tmp/eg_jwks_XXXXXX", *path, *one = jwks_json("rsa", NULL), *two = jwks_json("rsa", "ec256");
	struct eg_keysource_opts o = { 0 };
	struct eg_keysource *ks;
	struct eg_jwks *s;
	char err[256];

	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/jwks.json", dir);
	assert_int_equal(write_file_atomic(path, one, strlen(one), 0644), 0);
	o.file = path;
	ks = eg_keysource_new(&o, err, sizeof(err));
	assert_non_null(ks);
	s = eg_keysource_get(ks);
	assert_int_equal(eg_jwks_count(s), 1);
	eg_jwks_unref(s);

	assert_int_equal(write_file_atomic(path, two, strlen(two), 0644), 0);
	usleep(1100 * 1000); /* the file is looked at no more than once a second */
	s = eg_keysource_get(ks);
	assert_int_equal(eg_jwks_count(s), 2);
	eg_jwks_unref(s);

	/* a broken file keeps the last good set */
	assert_int_equal(write_file_atomic(path, "{\"keys\":[", 9, 0644), 0);
	usleep(1100 * 1000);
	s = eg_keysource_refetch(ks, "ec256");
	assert_int_equal(eg_jwks_count(s), 2);
	assert_true(eg_jwks_has_kid(s, "ec256"));
	eg_jwks_unref(s);
	unlink(path);
	usleep(1100 * 1000);
	s = eg_keysource_get(ks);
	assert_int_equal(eg_jwks_count(s), 2);
	eg_jwks_unref(s);
	eg_keysource_free(ks);

	/* unparsable at start-up is an error */
	assert_int_equal(write_file_atomic(path, "nope", 4, 0644), 0);
	assert_null(eg_keysource_new(&o, err, sizeof(err)));
	unlink(path);
	rmdir(dir);
	free(path);
	free(one);
	free(two);
}

struct refetcher {
	struct eg_keysource *ks;
	bool had_kid;
};

static void *refetch_thread(void *arg)
{
	struct refetcher *r = arg;
	struct eg_jwks *s = eg_keysource_refetch(r->ks, "ec256");
	r->had_kid = eg_jwks_has_kid(s, "ec256");
	eg_jwks_unref(s);
	return NULL;
}

/* Unknown kid: concurrent refetches become one request; the first one right after
 * start-up goes at once (a rotation); then a bucket and per-kid memory throttle. */
static void keysource_url_refetch(void **state)
{
	char *one = jwks_json("rsa", NULL), *two = jwks_json("rsa", "ec256"), err[256];
	char *url = xasprintf("http://127.0.0.1:%d/jwks", srv.port);
	struct eg_keysource_opts o = { .url = url, .min_refetch_s = 1, .timeout_ms = 2000 };
	struct refetcher r[8];
	pthread_t t[8];
	struct eg_keysource *ks;
	struct eg_keysource_stats st;
	struct eg_jwks *s;
	int base, i;

	srv_set(one, 200, 0);
	base = atomic_load(&srv.requests);
	ks = eg_keysource_new(&o, err, sizeof(err));
	assert_non_null(ks);
	assert_int_equal(atomic_load(&srv.requests), base + 1);
	s = eg_keysource_get(ks);
	assert_int_equal(eg_jwks_count(s), 1);
	eg_jwks_unref(s);

	/* rotation right after start-up: the provider now has ec256; 8 callers ask at once */
	srv_set(two, 200, 300);
	for (i = 0; i < 8; i++) {
		r[i] = (struct refetcher){ ks, false };
		assert_int_equal(pthread_create(&t[i], NULL, refetch_thread, &r[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_true(r[i].had_kid);
	}
	assert_int_equal(atomic_load(&srv.requests), base + 2);

	/* a made-up kid: one fetch (a bucket token); asked again, it is known to be absent */
	srv_set(two, 200, 0);
	s = eg_keysource_refetch(ks, "nope");
	eg_jwks_unref(s);
	assert_int_equal(atomic_load(&srv.requests), base + 3);
	for (i = 0; i < 20; i++) {
		s = eg_keysource_refetch(ks, "nope");
		assert_int_equal(eg_jwks_count(s), 2);
		eg_jwks_unref(s);
	}
	assert_int_equal(atomic_load(&srv.requests), base + 3);
	/* a flood of different made-up kids: the second bucket token, then nothing */
	for (i = 0; i < 20; i++) {
		char kid[32];
		snprintf(kid, sizeof(kid), "flood%d", i);
		eg_jwks_unref(eg_keysource_refetch(ks, kid));
	}
	assert_int_equal(atomic_load(&srv.requests), base + 4);
	eg_keysource_stats(ks, &st);
	assert_true(st.refetch_throttled >= 39);
	assert_int_equal(st.fetch_ok, 4);
	assert_int_equal(st.keys, 2);

	/* provider errors: 500, garbage, a redirect, an oversized body -> last good set kept */
	{
		static const struct {
			const char *body;
			int status;
		} bad[] = { { "{\"keys\":[]}", 500 }, { "<html>", 200 }, { "", 302 } };
		size_t k;
		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			char kid[32];
			snprintf(kid, sizeof(kid), "err%zu", k);
			srv_set(bad[k].body, bad[k].status, 0);
			usleep(1050 * 1000);
			s = eg_keysource_refetch(ks, kid);
			assert_int_equal(eg_jwks_count(s), 2);
			eg_jwks_unref(s);
		}
		assert_int_equal(atomic_load(&srv.requests), base + 7);
		eg_keysource_stats(ks, &st);
		assert_int_equal(st.fetch_fail, 3);
	}
	{
		char *big = xmalloc((2u << 20) + 1);
		memset(big, ' ', 2u << 20);
		big[2u << 20] = '\0';
		memcpy(big, "{\"keys\":[]}", 11);
		srv_set(big, 200, 0);
		free(big);
		usleep(1050 * 1000);
		s = eg_keysource_refetch(ks, "big");
		assert_int_equal(eg_jwks_count(s), 2);
		eg_jwks_unref(s);
		eg_keysource_stats(ks, &st);
		assert_int_equal(st.fetch_fail, 4);
	}
	eg_keysource_free(ks);
	free(url);
	free(one);
	free(two);
}

static void keysource_background_refresh(void **state)
{
	char *one = jwks_json("rsa", NULL), *two = jwks_json("ec384", "ed25519"), err[256];
	char *url = xasprintf("http://127.0.0.1:%d/jwks", srv.port);
	struct eg_keysource_opts o = { .url = url, .refresh_s = 1, .min_refetch_s = 1 };
	struct eg_keysource *ks;
	struct eg_jwks *s;
	int i;
	bool rotated = false;

	srv_set(one, 200, 0);
	ks = eg_keysource_new(&o, err, sizeof(err));
	assert_non_null(ks);
	assert_int_equal(eg_keysource_start(ks), 0);
	srv_set(two, 200, 0);
	for (i = 0; i < 40 && !rotated; i++) {
		usleep(100 * 1000);
		s = eg_keysource_get(ks);
		rotated = eg_jwks_has_kid(s, "ed25519") && !eg_jwks_has_kid(s, "rsa");
		eg_jwks_unref(s);
	}
	assert_true(rotated);
	eg_keysource_free(ks); /* joins the refresher */
	free(url);
	free(one);
	free(two);
}

/* Our signer (private_key_jwt assertions) against our verifier, every key type. */
static void signer_roundtrip(void **state)
{
	static const struct {
		const char *pem, *kid;
		enum eg_alg want_default, other;
	} cases[] = {
		{ "rsa.key.pem", "rsa", EG_ALG_RS256, EG_ALG_PS384 },
		{ "ec256.key.pem", "ec256", EG_ALG_ES256, EG_ALG_NONE },
		{ "ec384.key.pem", "ec384", EG_ALG_ES384, EG_ALG_NONE },
		{ "ec521.key.pem", "ec521", EG_ALG_ES512, EG_ALG_NONE },
		{ "ed25519.key.pem", "ed25519", EG_ALG_EDDSA, EG_ALG_NONE },
	};
	struct eg_jwks *ks = all_keys();
	char err[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = data_path(cases[i].pem);
		for (int pass = 0; pass < 2; pass++) {
			enum eg_alg alg = pass ? cases[i].other : EG_ALG_NONE;
			if (pass && alg == EG_ALG_NONE)
				continue;
			EVP_PKEY *k = eg_sign_key_load(p, &alg, err, sizeof(err));
			assert_non_null(k);
			if (!pass)
				assert_int_equal(alg, cases[i].want_default);
			char *tok = eg_jws_sign(k, alg, cases[i].kid, PAYLOAD);
			assert_non_null(tok);
			expect(tok, ks, EG_JOSE_OK);
			free(tok);
			EVP_PKEY_free(k);
		}
		/* an algorithm that does not fit the key is refused at load */
		enum eg_alg wrong = cases[i].want_default == EG_ALG_ES256 ? EG_ALG_ES384 : EG_ALG_ES256;
		assert_null(eg_sign_key_load(p, &wrong, err, sizeof(err)));
		free(p);
	}
	enum eg_alg a = EG_ALG_NONE;
	assert_null(eg_sign_key_load("/nonexistent.pem", &a, err, sizeof(err)));
	eg_jwks_unref(ks);
}

/* RFC 7515: a JWS may have an empty payload; a JWT (JSON payload) may not. */
static void empty_payload(void **state)
{
	struct eg_jwks *ks = all_keys();
	struct eg_jws j;
	const char *algs[] = { "HS256", "ES256", "RS256", "EdDSA" };
	const char *names[] = { "hs", "ec256", "rsa", "ed25519" };

	for (size_t i = 0; i < 4; i++) {
		char *hdr = xasprintf("{\"alg\":\"%s\",\"kid\":\"%s\"}", algs[i], names[i]);
		char *tok = sign(algs[i], names[i], hdr, "");
		assert_non_null(strstr(tok, ".."));
		assert_int_equal(eg_jws_verify(tok, strlen(tok), ks, EG_ALGSET_ALL, false, &j), EG_JOSE_OK);
		assert_int_equal(j.raw_payload_len, 0);
		assert_null(j.payload);
		eg_jws_clear(&j);
		/* as a JWT: refused */
		assert_int_equal(eg_jws_verify(tok, strlen(tok), ks, EG_ALGSET_ALL, true, &j), EG_JOSE_MALFORMED);
		/* a forged signature over the empty payload still fails */
		char *last = strrchr(tok, '.');
		last[1] = last[1] == 'A' ? 'B' : 'A';
		assert_int_not_equal(eg_jws_verify(tok, strlen(tok), ks, EG_ALGSET_ALL, false, &j), EG_JOSE_OK);
		free(tok);
		free(hdr);
	}
	eg_jwks_unref(ks);
}

/* The verifying key's fingerprint is reported and found only in sets holding that key. */
static void key_fingerprint(void **state)
{
	char *both = jwks_json("ec256", "rsa"), *other = jwks_json("rsa", NULL);
	char *changed = jwk_with("ec256", "{\"alg\":\"ES256\"}");
	char *changed_set = xasprintf("{\"keys\":[%s]}", changed);
	struct eg_jwks *a = jwks_from(both), *b = jwks_from(other), *c = jwks_from(changed_set);
	char *tok = sign("ES256", "ec256", "{\"alg\":\"ES256\",\"kid\":\"ec256\"}", PAYLOAD);
	struct eg_jws j;

	assert_int_equal(eg_jws_verify(tok, strlen(tok), a, EG_ALGSET_ALL, true, &j), EG_JOSE_OK);
	assert_true(eg_jwks_has_fingerprint(a, j.key_fp));
	assert_false(eg_jwks_has_fingerprint(b, j.key_fp)); /* removed from the set */
	assert_false(eg_jwks_has_fingerprint(c, j.key_fp)); /* same kid, the JWK changed */
	eg_jws_clear(&j);
	eg_jwks_unref(a);
	eg_jwks_unref(b);
	eg_jwks_unref(c);
	free(tok);
	free(both);
	free(other);
	free(changed);
	free(changed_set);
}

static enum eg_jose_err at_check(const char *hdr, const char *claims, bool at_jwt)
{
	json_t *h = json_loads(hdr, 0, NULL), *c = json_loads(claims, 0, NULL);
	const char *why = NULL;
	enum eg_jose_err e;

	assert_non_null(h);
	assert_non_null(c);
	e = eg_jwt_check_access_token(h, c, at_jwt, &why);
	if (e != EG_JOSE_OK)
		assert_non_null(why);
	json_decref(h);
	json_decref(c);
	return e;
}

/* An ID token or a logout token is never an access token (RFC 8725 3.11, RFC 9068). */
static void access_token_type(void **state)
{
	const char *at = "{\"sub\":\"a\",\"aud\":\"api\",\"scope\":\"read\"}";
	assert_int_equal(at_check("{\"alg\":\"RS256\"}", at, false), EG_JOSE_OK);
	assert_int_equal(at_check("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", at, false), EG_JOSE_OK);
	assert_int_equal(at_check("{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", at, true), EG_JOSE_OK);
	assert_int_equal(at_check("{\"alg\":\"RS256\",\"typ\":\"application/AT+JWT\"}", at, true), EG_JOSE_OK);
	assert_int_equal(at_check("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", at, true), EG_JOSE_TOKEN_TYPE);
	assert_int_equal(at_check("{\"alg\":\"RS256\"}", at, true), EG_JOSE_TOKEN_TYPE);
	assert_int_equal(at_check("{\"alg\":\"RS256\",\"typ\":7}", at, false), EG_JOSE_TOKEN_TYPE);
	assert_int_equal(at_check("{\"alg\":\"RS256\",\"typ\":\"logout+jwt\"}", at, false), EG_JOSE_TOKEN_TYPE);
	assert_int_equal(at_check("{\"alg\":\"RS256\",\"typ\":\"secevent+jwt\"}", at, false), EG_JOSE_TOKEN_TYPE);
	/* ID tokens: nonce, at_hash, c_hash */
	assert_int_equal(at_check("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "{\"sub\":\"a\",\"nonce\":\"n\"}", false),
			 EG_JOSE_TOKEN_TYPE);
	assert_int_equal(at_check("{\"alg\":\"RS256\"}", "{\"sub\":\"a\",\"at_hash\":\"x\"}", false), EG_JOSE_TOKEN_TYPE);
	assert_int_equal(at_check("{\"alg\":\"RS256\"}", "{\"sub\":\"a\",\"c_hash\":\"x\"}", false), EG_JOSE_TOKEN_TYPE);
	/* logout token: events */
	assert_int_equal(at_check("{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
				"{\"sub\":\"a\",\"events\":{\"http://schemas.openid.net/event/backchannel-logout\":{}}}", false),
			 EG_JOSE_TOKEN_TYPE);
	assert_string_equal(eg_jose_err_name(EG_JOSE_TOKEN_TYPE), "token_type");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(node_tokens_verify),
		cmocka_unit_test(empty_payload),
		cmocka_unit_test(signer_roundtrip),
		cmocka_unit_test(key_fingerprint),
		cmocka_unit_test(access_token_type),
		cmocka_unit_test(our_signer_roundtrip),
		cmocka_unit_test(alg_none),
		cmocka_unit_test(hs256_with_rsa_public_key),
		cmocka_unit_test(embedded_header_keys),
		cmocka_unit_test(kid_rules),
		cmocka_unit_test(psychic_signature),
		cmocka_unit_test(wrong_curve),
		cmocka_unit_test(base64url_strictness),
		cmocka_unit_test(segments),
		cmocka_unit_test(duplicate_keys),
		cmocka_unit_test(crit_header),
		cmocka_unit_test(alg_allow_list),
		cmocka_unit_test(repeated_headers),
		cmocka_unit_test(threads_and_key_swaps),
		cmocka_unit_test(key_use_and_ops),
		cmocka_unit_test(kid_absent_several_keys),
		cmocka_unit_test(exp_forms),
		cmocka_unit_test(audience_forms),
		cmocka_unit_test(issuer_match),
		cmocka_unit_test(time_leeway_boundaries),
		cmocka_unit_test(jwk_parsing),
		cmocka_unit_test(hashes_and_names),
		cmocka_unit_test(keysource_options),
		cmocka_unit_test(keysource_file_reload),
		cmocka_unit_test_setup_teardown(keysource_url_refetch, srv_start, srv_stop),
		cmocka_unit_test_setup_teardown(keysource_background_refresh, srv_start, srv_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
