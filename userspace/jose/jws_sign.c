/* jws_sign.c - see jws_sign.h. */
#include "jws_sign.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static enum eg_alg default_alg(EVP_PKEY *k)
{
	char group[64] = "";

	if (EVP_PKEY_is_a(k, "RSA"))
		return EG_ALG_RS256;
	if (EVP_PKEY_is_a(k, "ED25519"))
		return EG_ALG_EDDSA;
	if (EVP_PKEY_is_a(k, "EC") &&
	    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL)) {
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
			return EG_ALG_ES256;
		if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
			return EG_ALG_ES384;
		if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
			return EG_ALG_ES512;
	}
	return EG_ALG_NONE;
}

static bool alg_fits(EVP_PKEY *k, enum eg_alg alg)
{
	enum eg_alg d = default_alg(k);

	if (d == EG_ALG_RS256)
		return alg >= EG_ALG_RS256 && alg <= EG_ALG_PS512;
	return d != EG_ALG_NONE && alg == d; /* a curve fixes its algorithm */
}

EVP_PKEY *eg_sign_key_load(const char *pem_file, enum eg_alg *alg, char *err, size_t errlen)
{
	FILE *f = fopen(pem_file, "r");
	EVP_PKEY *k;

	if (!f) {
		snprintf(err, errlen, "cannot read %s", pem_file);
		return NULL;
	}
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k) {
		snprintf(err, errlen, "%s: not a PEM private key", pem_file);
		return NULL;
	}
	if (*alg == EG_ALG_NONE)
		*alg = default_alg(k);
	if (*alg == EG_ALG_NONE || !alg_fits(k, *alg) || *alg == EG_ALG_HS256) {
		snprintf(err, errlen, "%s: unsupported key type or an algorithm that does not fit it", pem_file);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

static const EVP_MD *md_of(enum eg_alg alg)
{
	switch (alg) {
	case EG_ALG_RS256: case EG_ALG_PS256: case EG_ALG_ES256: return EVP_sha256();
	case EG_ALG_RS384: case EG_ALG_PS384: case EG_ALG_ES384: return EVP_sha384();
	case EG_ALG_RS512: case EG_ALG_PS512: case EG_ALG_ES512: return EVP_sha512();
	default: return NULL; /* EdDSA: no separate digest */
	}
}

/* DER ECDSA-Sig-Value -> r||s of 2 * clen bytes. */
static int ecdsa_raw(const uint8_t *der, size_t len, size_t clen, uint8_t *out)
{
	const uint8_t *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
	int rc = -1;

	if (s && BN_bn2binpad(ECDSA_SIG_get0_r(s), out, (int)clen) == (int)clen &&
	    BN_bn2binpad(ECDSA_SIG_get0_s(s), out + clen, (int)clen) == (int)clen)
		rc = 0;
	ECDSA_SIG_free(s);
	return rc;
}

char *eg_jws_sign(EVP_PKEY *key, enum eg_alg alg, const char *kid, const char *payload_json)
{
	json_t *h = json_pack("{s:s, s:s}", "alg", eg_alg_name(alg), "typ", "JWT");
	char *hs, *input = NULL, *out = NULL;
	uint8_t sig[1024], raw[132];
	size_t sl = sizeof(sig);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;

	if (kid)
		json_object_set_new(h, "kid", json_string(kid));
	hs = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(h);
	if (!hs || !c)
		goto out;
	char *h64 = xmalloc(b64url_encoded_len(strlen(hs)) + 1);
	char *p64 = xmalloc(b64url_encoded_len(strlen(payload_json)) + 1);
	b64url_encode((const uint8_t *)hs, strlen(hs), h64);
	b64url_encode((const uint8_t *)payload_json, strlen(payload_json), p64);
	input = xasprintf("%s.%s", h64, p64);
	free(h64);
	free(p64);
	if (EVP_DigestSignInit(c, &pc, md_of(alg), NULL, key) != 1)
		goto out;
	if (alg >= EG_ALG_PS256 && alg <= EG_ALG_PS512 &&
	    (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	if (EVP_DigestSign(c, sig, &sl, (const uint8_t *)input, strlen(input)) != 1)
		goto out;
	if (alg >= EG_ALG_ES256 && alg <= EG_ALG_ES512) {
		size_t clen = alg == EG_ALG_ES256 ? 32 : alg == EG_ALG_ES384 ? 48 : 66;
		if (ecdsa_raw(sig, sl, clen, raw))
			goto out;
		memcpy(sig, raw, 2 * clen);
		sl = 2 * clen;
	}
	char *s64 = xmalloc(b64url_encoded_len(sl) + 1);
	b64url_encode(sig, sl, s64);
	out = xasprintf("%s.%s", input, s64);
	free(s64);
out:
	EVP_MD_CTX_free(c);
	free(hs);
	free(input);
	return out;
}
