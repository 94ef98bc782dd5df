/* test_conformance.c - the conformance audit's unit cases (docs/conformance.md):
 *  - published JWS vectors: RFC 7520 section 4 (4.1 RS256, 4.2 PS384, 4.3 ES512, 4.4 HS256,
 *    4.5 detached content) and RFC 7515 appendix A.1, checked with node's crypto when the
 *    data file was written (tests/unit/data/jose/rfc7520.json);
 *  - ES256 with a valid DER signature (not raw r||s), duplicate kids in a JWK Set, a nested
 *    JWT (cty JWT), whitespace around or inside a compact token;
 *  - the ID token and logout token claim rules of oidc.c (OIDC Core 3.1.3.7, Back-Channel
 *    Logout 1.0 2.6), one rule per case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "testutil.h"
#include "jose.h"
#include "oidc.h"
#include "util.h"

static char *data_path(const char *f)
{
	const char *root = getenv("EG_ROOT");
	return xasprintf("%s/tests/unit/data/jose/%s", root ? root : ".", f);
}

static json_t *vectors(void)
{
	char *p = data_path("rfc7520.json");
	json_t *j = json_load_file(p, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		fail_msg("cannot read %s", p);
	free(p);
	return j;
}

static struct eg_jwks *jwks_of(const json_t *set)
{
	char *s = json_dumps(set, JSON_COMPACT), err[256], warn[512];
	struct eg_jwks *ks = eg_jwks_parse(s, strlen(s), err, sizeof(err), warn, sizeof(warn));
	if (!ks)
		fail_msg("jwks: %s", err);
	free(s);
	return ks;
}

static enum eg_jose_err vfy(const char *tok, const struct eg_jwks *ks, eg_algset allowed, bool json,
			    struct eg_jws *out)
{
	struct eg_jws j;
	enum eg_jose_err e = eg_jws_verify(tok, strlen(tok), ks, allowed, json, out ? out : &j);
	if (!out)
		eg_jws_clear(&j);
	return e;
}

static char *b64us(const void *d, size_t n)
{
	char *o = xmalloc(b64url_encoded_len(n) + 1);
	b64url_encode(d, n, o);
	return o;
}

/* A compact JWS over hdr.payload with HS256 and the raw key. */
static char *hs256(const uint8_t *key, size_t kl, const char *hdr, const char *payload)
{
	char *h = b64us(hdr, strlen(hdr)), *p = b64us(payload, strlen(payload));
	char *in = xasprintf("%s.%s", h, p), *sig, *t;
	uint8_t mac[32];
	size_t ml = 0;

	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, kl, (const uint8_t *)in, strlen(in),
				  mac, sizeof(mac), &ml));
	sig = b64us(mac, ml);
	t = xasprintf("%s.%s", in, sig);
	free(h);
	free(p);
	free(in);
	free(sig);
	return t;
}

/* --- JWS vectors ------------------------------------------------------------------------- */

static void rfc7520_vectors(void **state)
{
	static const struct {
		const char *sec;
		enum eg_alg alg;
	} cases[] = { { "4.1", EG_ALG_RS256 }, { "4.2", EG_ALG_PS384 }, { "4.3", EG_ALG_ES512 }, { "4.4", EG_ALG_HS256 } };
	json_t *v = vectors();
	struct eg_jwks *ks = jwks_of(json_object_get(v, "keys"));
	const char *text = json_string_value(json_object_get(v, "payload_text"));
	const json_t *compact = json_object_get(v, "compact");

	/* the RSA and the EC key share a kid (RFC 7517 4.5 allows it across key types) */
	assert_int_equal(eg_jwks_count(ks), 3);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *tok = json_string_value(json_object_get(compact, cases[i].sec));
		struct eg_jws j;
		assert_non_null(tok);
		if (vfy(tok, ks, EG_ALGSET_ALL, false, &j) != EG_JOSE_OK)
			fail_msg("RFC 7520 %s did not verify", cases[i].sec);
		assert_int_equal(j.alg, cases[i].alg);
		assert_int_equal(j.raw_payload_len, strlen(text));
		assert_memory_equal(j.raw_payload, text, strlen(text));
		assert_null(j.payload); /* prose, not a JSON object */
		eg_jws_clear(&j);
		/* as a JWT (JSON payload required): refused */
		assert_int_equal(vfy(tok, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_MALFORMED);
		/* that algorithm not allowed */
		assert_int_equal(vfy(tok, ks, EG_ALGSET_ALL & ~(1u << cases[i].alg), false, NULL), EG_JOSE_ALG);
		/* one signature character changed (the first, so no spare bits are involved) */
		char *bad = xstrdup(tok), *sig = strrchr(bad, '.') + 1;
		sig[0] = sig[0] == 'A' ? 'B' : 'A';
		assert_int_equal(vfy(bad, ks, EG_ALGSET_ALL, false, NULL), EG_JOSE_SIGNATURE);
		free(bad);
	}
	/* 4.5 detached content: the compact form has an empty payload; we take no detached
	 * content, so the signature is checked over the empty payload and fails */
	assert_int_equal(vfy(json_string_value(json_object_get(compact, "4.5")), ks, EG_ALGSET_ALL, false, NULL),
			 EG_JOSE_SIGNATURE);
	eg_jwks_unref(ks);

	/* RFC 7515 A.1: a JWT whose JSON has CR LF and spaces between members */
	const json_t *a1 = json_object_get(v, "rfc7515_a1");
	ks = jwks_of(json_object_get(a1, "jwk"));
	struct eg_jws j;
	const char *tok = json_string_value(json_object_get(a1, "token"));
	assert_int_equal(vfy(tok, ks, 1u << EG_ALG_HS256, true, &j), EG_JOSE_OK);
	assert_string_equal(json_string_value(json_object_get(j.payload, "iss")), "joe");
	assert_true(json_is_true(json_object_get(j.payload, "http://example.com/is_root")));
	struct eg_jwt_expect x = { .require_exp = true };
	int64_t exp;
	assert_int_equal(eg_jwt_check_claims(j.payload, &x, 1300819379, &exp, NULL), EG_JOSE_OK);
	assert_int_equal(exp, 1300819380);
	assert_int_equal(eg_jwt_check_claims(j.payload, &x, 1300819380, &exp, NULL), EG_JOSE_EXPIRED);
	eg_jws_clear(&j);
	eg_jwks_unref(ks);
	json_decref(v);
}

/* ES256 must be raw r||s (RFC 7518 3.4): a genuine DER signature by the right key is refused. */
static void ecdsa_der_signature(void **state)
{
	char *p = data_path("ec256.key.pem"), *jp = data_path("ec256.jwk.json");
	FILE *f = fopen(p, "r");
	EVP_PKEY *k;
	json_t *jwk = json_load_file(jp, 0, NULL), *set = json_pack("{s:[O]}", "keys", jwk);
	struct eg_jwks *ks = jwks_of(set);
	const char *hdr = "{\"alg\":\"ES256\",\"kid\":\"ec256\"}", *pl = "{\"sub\":\"a\"}";
	char *h = b64us(hdr, strlen(hdr)), *b = b64us(pl, strlen(pl)), *in = xasprintf("%s.%s", h, b);
	uint8_t der[80], raw[64];
	size_t dl = sizeof(der);
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	assert_non_null(f);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	assert_int_equal(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(c, der, &dl, (const uint8_t *)in, strlen(in)), 1);
	char *s = b64us(der, dl), *t = xasprintf("%s.%s", in, s);
	assert_int_equal(vfy(t, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_SIGNATURE);
	/* the same signature as r||s verifies, so the DER one was otherwise genuine */
	const uint8_t *dp = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &dp, (long)dl);
	assert_non_null(es);
	BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
	BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
	ECDSA_SIG_free(es);
	char *rs = b64us(raw, 64), *t2 = xasprintf("%s.%s", in, rs);
	assert_int_equal(vfy(t2, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_OK);
	/* r||s one byte short (a leading zero dropped, as some DER-to-raw converters do) */
	char *rs63 = b64us(raw + 1, 63), *t3 = xasprintf("%s.%s", in, rs63);
	assert_int_equal(vfy(t3, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_SIGNATURE);
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
	json_decref(set);
	json_decref(jwk);
	eg_jwks_unref(ks);
	free(p), free(jp), free(h), free(b), free(in), free(s), free(t), free(rs), free(t2), free(rs63), free(t3);
}

/* Two keys of one type under one kid: each is tried (bounded by the set's 100 keys), so
 * the holder of either verifies and nobody else does. */
static void duplicate_kids(void **state)
{
	uint8_t k1[32], k2[32], k3[32];
	memset(k1, 0x11, 32);
	memset(k2, 0x22, 32);
	memset(k3, 0x33, 32);
	char *e1 = b64us(k1, 32), *e2 = b64us(k2, 32);
	char *set = xasprintf("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"dup\",\"k\":\"%s\"},"
			      "{\"kty\":\"oct\",\"kid\":\"dup\",\"k\":\"%s\"}]}", e1, e2);
	char err[128], warn[256];
	struct eg_jwks *ks = eg_jwks_parse(set, strlen(set), err, sizeof(err), warn, sizeof(warn));
	const char *hdr = "{\"alg\":\"HS256\",\"kid\":\"dup\"}", *pl = "{\"sub\":\"a\"}";
	char *t1 = hs256(k1, 32, hdr, pl), *t2 = hs256(k2, 32, hdr, pl), *t3 = hs256(k3, 32, hdr, pl);
	char *t4 = hs256(k1, 32, "{\"alg\":\"HS256\",\"kid\":\"other\"}", pl);

	assert_non_null(ks);
	assert_int_equal(eg_jwks_count(ks), 2);
	assert_int_equal(vfy(t1, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_OK);
	assert_int_equal(vfy(t2, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_OK);
	assert_int_equal(vfy(t3, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_SIGNATURE);
	assert_int_equal(vfy(t4, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_NO_KEY);
	eg_jwks_unref(ks);
	free(e1), free(e2), free(set), free(t1), free(t2), free(t3), free(t4);
}

/* A nested JWT (RFC 7519 5.2, cty "JWT") has a JWT as its payload, not claims: refused,
 * and so is a compact token with whitespace anywhere. */
static void nested_and_whitespace(void **state)
{
	uint8_t key[32];
	memset(key, 0x42, 32);
	char *kb = b64us(key, 32), *set = xasprintf("{\"keys\":[{\"kty\":\"oct\",\"k\":\"%s\"}]}", kb);
	char err[128], warn[256];
	struct eg_jwks *ks = eg_jwks_parse(set, strlen(set), err, sizeof(err), warn, sizeof(warn));
	char *inner = hs256(key, 32, "{\"alg\":\"HS256\"}", "{\"sub\":\"admin\"}");
	char *outer = hs256(key, 32, "{\"alg\":\"HS256\",\"cty\":\"JWT\"}", inner);
	static const char *const pre[] = { " ", "", "", "", "\t" }, *const post[] = { "", " ", "\n", "\r\n", "" };

	assert_non_null(ks);
	assert_int_equal(vfy(inner, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_OK);
	assert_int_equal(vfy(outer, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_MALFORMED);
	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
		char *t = xasprintf("%s%s%s", pre[i], inner, post[i]);
		assert_int_equal(vfy(t, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_MALFORMED);
		free(t);
	}
	/* a space after each dot */
	char *sp = xmalloc(strlen(inner) + 3), *o = sp;
	for (const char *c = inner; *c; c++) {
		*o++ = *c;
		if (*c == '.')
			*o++ = ' ';
	}
	*o = '\0';
	assert_int_equal(vfy(sp, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_MALFORMED);
	eg_jwks_unref(ks);
	free(kb), free(set), free(inner), free(outer), free(sp);
}

/* JSON that parsers read differently is refused, never read one way: invalid UTF-8, an
 * escaped NUL, a lone surrogate, a number past double range, a byte-order mark, trailing
 * bytes after the object (RFC 8259; RFC 7515 5.2 step 8). */
static void json_edge_cases(void **state)
{
	uint8_t key[32];
	memset(key, 0x42, 32);
	char *kb = b64us(key, 32), *set = xasprintf("{\"keys\":[{\"kty\":\"oct\",\"k\":\"%s\"}]}", kb);
	char err[128], warn[256];
	struct eg_jwks *ks = eg_jwks_parse(set, strlen(set), err, sizeof(err), warn, sizeof(warn));
	static const char *const bad_payloads[] = {
		"{\"sub\":\"a\xff\"}", "{\"sub\":\"a\xc0\xaf\"}", "{\"sub\":\"adm\\u0000in\"}",
		"{\"sub\":\"\\ud800\"}", "{\"sub\":\"a\",\"exp\":1e400}", "\xef\xbb\xbf{\"sub\":\"a\"}",
		"{\"sub\":\"a\"} x", "{\"sub\":\"a\"}{}", "{\"sub\":'a'}", "{\"sub\":\"a\",}",
	};
	static const char *const bad_headers[] = {
		"\xef\xbb\xbf{\"alg\":\"HS256\"}", "{\"alg\":\"HS256\"} x", "{\"alg\":\"HS256\\u0000\"}",
		"{\"alg\":\"HS256 \"}", "{\"alg\":[\"HS256\"]}",
	};
	char *t;

	assert_non_null(ks);
	t = hs256(key, 32, "{\"alg\":\"HS256\"}", "{\"sub\":\"caf\xc3\xa9\",\"n\":\"\\u00e9\"}");
	assert_int_equal(vfy(t, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_OK); /* control: valid UTF-8 */
	free(t);
	/* control: JSON whitespace (RFC 8259) around members and after the object is JSON */
	t = hs256(key, 32, "{ \"alg\" : \"HS256\" }\r\n", "{\r\n \"sub\": \"a\"\t} ");
	assert_int_equal(vfy(t, ks, EG_ALGSET_ALL, true, NULL), EG_JOSE_OK);
	free(t);
	for (size_t i = 0; i < sizeof(bad_payloads) / sizeof(bad_payloads[0]); i++) {
		t = hs256(key, 32, "{\"alg\":\"HS256\"}", bad_payloads[i]);
		if (vfy(t, ks, EG_ALGSET_ALL, true, NULL) != EG_JOSE_MALFORMED)
			fail_msg("payload %zu accepted: %s", i, bad_payloads[i]);
		free(t);
	}
	for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
		t = hs256(key, 32, bad_headers[i], "{\"sub\":\"a\"}");
		if (vfy(t, ks, EG_ALGSET_ALL, true, NULL) == EG_JOSE_OK)
			fail_msg("header %zu accepted: %s", i, bad_headers[i]);
		free(t);
	}
	eg_jwks_unref(ks);
	free(kb), free(set);
}

/* --- OIDC claim rules ------------------------------------------------------------------------ */

#define ISS "https://op.example.test"
#define CID "client-1"
#define NOW 1800000000

static const uint8_t idkey[32] = "0123456789abcdef0123456789abcdef";

static int id_token(const char *claims, const char *nonce, const char *want_sub)
{
	char *set, *kb = b64us(idkey, 32), why[256] = "";
	char err[128], warn[256];
	json_t *c = NULL;
	int rc;

	set = xasprintf("{\"keys\":[{\"kty\":\"oct\",\"k\":\"%s\"}]}", kb);
	struct eg_jwks *ks = eg_jwks_parse(set, strlen(set), err, sizeof(err), warn, sizeof(warn));
	char *tok = hs256(idkey, 32, "{\"alg\":\"HS256\"}", claims);
	rc = eg_oidc_check_id_token(tok, ks, 1u << EG_ALG_HS256, ISS, CID, 30, nonce, want_sub, NOW, &c, why,
				    sizeof(why));
	if (rc)
		assert_true(strlen(why) > 0);
	else
		assert_non_null(c);
	json_decref(c);
	eg_jwks_unref(ks);
	free(set), free(kb), free(tok);
	return rc;
}

/* claims: a valid ID token's members followed by `extra` (which may repeat none of them). */
#define IDT(extra) "{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"sub\":\"alice\",\"nonce\":\"n-1\"" extra "}"
#define IDT_T ",\"iat\":1800000000,\"exp\":1800000300"

static void id_token_rules(void **state)
{
	assert_int_equal(id_token(IDT(IDT_T), "n-1", NULL), 0);
	assert_int_equal(id_token(IDT(IDT_T), NULL, NULL), 0); /* refresh: nonce not checked */
	assert_int_equal(id_token(IDT(IDT_T), "n-2", NULL), -1); /* rp-nonce-invalid */
	assert_int_equal(id_token(IDT(IDT_T), "n-", NULL), -1);
	assert_int_equal(id_token(IDT(IDT_T), "n-1", "alice"), 0);
	assert_int_equal(id_token(IDT(IDT_T), "n-1", "bob"), -1); /* refresh: sub changed */
	/* rp-id_token-iat, exp */
	assert_int_equal(id_token(IDT(",\"exp\":1800000300"), "n-1", NULL), -1);
	assert_int_equal(id_token(IDT(",\"iat\":1800000000"), "n-1", NULL), -1);
	assert_int_equal(id_token(IDT(",\"iat\":1800000000,\"exp\":1799999971"), "n-1", NULL), 0); /* leeway 30 */
	assert_int_equal(id_token(IDT(",\"iat\":1800000000,\"exp\":1799999970"), "n-1", NULL), -1);
	assert_int_equal(id_token(IDT(",\"iat\":1800000031,\"exp\":1800000300"), "n-1", NULL), -1);
	assert_int_equal(id_token(IDT(",\"iat\":\"1800000000\",\"exp\":1800000300"), "n-1", NULL), -1);
	assert_int_equal(id_token(IDT(",\"iat\":1800000000,\"exp\":1800000300,\"nbf\":1800000100"), "n-1", NULL), -1);
	/* rp-id_token-sub */
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), -1);
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"sub\":\"\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), -1);
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"sub\":7,\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), -1);
	/* rp-id_token-issuer-mismatch: exact */
	assert_int_equal(id_token("{\"iss\":\"" ISS "/\",\"aud\":\"" CID "\",\"sub\":\"a\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), -1);
	/* rp-id_token-aud, azp (OIDC Core 3.1.3.7 items 3-5) */
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":\"other\",\"sub\":\"a\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), -1);
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":[\"" CID "\"],\"sub\":\"a\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), 0);
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":[\"" CID "\",\"x\"],\"sub\":\"a\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), -1);
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":[\"" CID "\",\"x\"],\"azp\":\"" CID "\",\"sub\":\"a\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), 0);
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":[\"" CID "\",\"x\"],\"azp\":\"x\",\"sub\":\"a\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), -1);
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"azp\":\"x\",\"sub\":\"a\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), -1);
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"azp\":[\"" CID "\"],\"sub\":\"a\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), -1);
	/* duplicate members are a malformed token, whichever value would have won */
	assert_int_equal(id_token("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"sub\":\"a\",\"sub\":\"b\",\"nonce\":\"n-1\"" IDT_T "}", "n-1", NULL), -1);
}

#define EV "\"events\":{\"http://schemas.openid.net/event/backchannel-logout\":{}}"
#define LT(extra) "{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"iat\":1800000000,\"jti\":\"j-1\"" extra "}"

static int logout(const char *claims)
{
	json_t *c = json_loads(claims, JSON_REJECT_DUPLICATES, NULL);
	char why[256] = "";
	int rc;

	if (!c)
		fail_msg("bad JSON in the test: %s", claims);
	rc = eg_oidc_check_logout_claims(c, ISS, CID, 30, NOW, why, sizeof(why));
	if (rc)
		assert_true(strlen(why) > 0);
	json_decref(c);
	return rc;
}

static void logout_token_rules(void **state)
{
	assert_int_equal(logout(LT(",\"sub\":\"alice\"," EV)), 0);
	assert_int_equal(logout(LT(",\"sid\":\"s-1\"," EV)), 0);
	assert_int_equal(logout(LT(",\"sid\":\"s-1\",\"sub\":\"alice\"," EV)), 0);
	assert_int_equal(logout(LT("," EV)), -1);                               /* neither sid nor sub */
	assert_int_equal(logout(LT(",\"sid\":5," EV)), -1);
	assert_int_equal(logout(LT(",\"sub\":\"alice\",\"nonce\":\"n\"," EV)), -1); /* nonce: MUST NOT */
	assert_int_equal(logout(LT(",\"sub\":\"alice\",\"nonce\":null," EV)), -1);
	/* events: the exact member, an object value */
	assert_int_equal(logout(LT(",\"sub\":\"alice\"")), -1);
	assert_int_equal(logout(LT(",\"sub\":\"alice\",\"events\":{}")), -1);
	assert_int_equal(logout(LT(",\"sub\":\"alice\",\"events\":{\"http://schemas.openid.net/event/backchannel-logout\":true}")), -1);
	assert_int_equal(logout(LT(",\"sub\":\"alice\",\"events\":{\"HTTP://schemas.openid.net/event/backchannel-logout\":{}}")), -1);
	assert_int_equal(logout(LT(",\"sub\":\"alice\",\"events\":[\"http://schemas.openid.net/event/backchannel-logout\"]")), -1);
	assert_int_equal(logout(LT(",\"sub\":\"alice\",\"events\":\"http://schemas.openid.net/event/backchannel-logout\"")), -1);
	/* jti */
	assert_int_equal(logout("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"iat\":1800000000,\"sub\":\"a\"," EV "}"), -1);
	assert_int_equal(logout("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"iat\":1800000000,\"jti\":\"\",\"sub\":\"a\"," EV "}"), -1);
	assert_int_equal(logout("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"iat\":1800000000,\"jti\":7,\"sub\":\"a\"," EV "}"), -1);
	/* iat required, within 600 s (+ leeway) of now; exp honoured when present */
	assert_int_equal(logout("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"jti\":\"j\",\"sub\":\"a\"," EV "}"), -1);
	assert_int_equal(logout("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"iat\":1799999370,\"jti\":\"j\",\"sub\":\"a\"," EV "}"), 0);
	assert_int_equal(logout("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"iat\":1799999369,\"jti\":\"j\",\"sub\":\"a\"," EV "}"), -1);
	assert_int_equal(logout("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"iat\":1800000031,\"jti\":\"j\",\"sub\":\"a\"," EV "}"), -1);
	assert_int_equal(logout(LT(",\"sub\":\"a\",\"exp\":1799999970," EV)), -1);
	assert_int_equal(logout(LT(",\"sub\":\"a\",\"exp\":1800000120," EV)), 0);
	assert_int_equal(logout(LT(",\"sub\":\"a\",\"exp\":\"1800000120\"," EV)), -1);
	/* iss, aud, azp */
	assert_int_equal(logout("{\"iss\":\"https://other.test\",\"aud\":\"" CID "\",\"iat\":1800000000,\"jti\":\"j\",\"sub\":\"a\"," EV "}"), -1);
	assert_int_equal(logout("{\"iss\":\"" ISS "\",\"aud\":\"x\",\"iat\":1800000000,\"jti\":\"j\",\"sub\":\"a\"," EV "}"), -1);
	assert_int_equal(logout("{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"" CID "\"],\"azp\":\"" CID "\",\"iat\":1800000000,\"jti\":\"j\",\"sub\":\"a\"," EV "}"), 0);
	assert_int_equal(logout("{\"iss\":\"" ISS "\",\"aud\":\"" CID "\",\"azp\":\"x\",\"iat\":1800000000,\"jti\":\"j\",\"sub\":\"a\"," EV "}"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc7520_vectors),
		cmocka_unit_test(ecdsa_der_signature),
		cmocka_unit_test(duplicate_kids),
		cmocka_unit_test(nested_and_whitespace),
		cmocka_unit_test(json_edge_cases),
		cmocka_unit_test(id_token_rules),
		cmocka_unit_test(logout_token_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
