/* jose.c - JWS compact verification, JWK parsing and JWT claim checks (OpenSSL 3 EVP).
 *
 * The verify path is: strict split -> strict base64url -> header JSON (no duplicate
 * keys) -> alg/crit/kid rules -> key choice (alg pinned by the key) -> one-shot
 * EVP_DigestVerify or HMAC. Keys become EVP_PKEYs once, when the set is parsed.
 *
 * Speed: on OpenSSL 3.0 every EVP_DigestVerifyInit fetches the signature algorithm
 * and builds a provider context, which costs about as much as an RSA-2048 verify.
 * So each RSA/EC key also carries, per algorithm it allows, a verify context that
 * was initialised once (padding, salt length, MGF1 and signature digest set) when
 * the set was parsed. A verify hashes the signing input with a prefetched digest,
 * duplicates that template (cheap, no fetch; a context is never shared between
 * threads) and calls EVP_PKEY_verify on the digest (RS*: on DigestInfo || digest,
 * compared whole, see digest_info): the same checks DigestVerify makes, without the
 * set-up. */
#include "jose.h"
#include "json_fast.h"
#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#define JWS_MAX_LEN 16384      /* whole token */
#define JWS_HDR_B64_MAX 4096   /* header segment */
#define JWS_SIG_MAX 2048       /* RSA-16384 */
#define JWK_RSA_MIN_BITS 2048
#define JWK_RSA_MAX_BITS 16384
#define JWKS_MAX_KEYS 100      /* bounds the kid-less trial loop */
#define KID_MAX 127
#define VCTX_SPARES 8          /* reusable verify contexts per key (about one per thread) */

enum fam { FAM_NONE, FAM_HS, FAM_RS, FAM_PS, FAM_ES, FAM_ED };
enum kty { KTY_RSA = 1, KTY_EC, KTY_OKP, KTY_OCT };

struct alginfo {
	const char *name;
	enum fam fam;
	int hash;     /* index into mds[]: 0 SHA-256, 1 SHA-384, 2 SHA-512 */
	size_t hlen;
};

static const struct alginfo algtab[EG_ALG__COUNT] = {
	[EG_ALG_NONE] = { "none", FAM_NONE, 0, 0 },
	[EG_ALG_HS256] = { "HS256", FAM_HS, 0, 32 },
	[EG_ALG_HS384] = { "HS384", FAM_HS, 1, 48 },
	[EG_ALG_HS512] = { "HS512", FAM_HS, 2, 64 },
	[EG_ALG_RS256] = { "RS256", FAM_RS, 0, 32 },
	[EG_ALG_RS384] = { "RS384", FAM_RS, 1, 48 },
	[EG_ALG_RS512] = { "RS512", FAM_RS, 2, 64 },
	[EG_ALG_PS256] = { "PS256", FAM_PS, 0, 32 },
	[EG_ALG_PS384] = { "PS384", FAM_PS, 1, 48 },
	[EG_ALG_PS512] = { "PS512", FAM_PS, 2, 64 },
	[EG_ALG_ES256] = { "ES256", FAM_ES, 0, 32 },
	[EG_ALG_ES384] = { "ES384", FAM_ES, 1, 48 },
	[EG_ALG_ES512] = { "ES512", FAM_ES, 2, 64 },
	[EG_ALG_EDDSA] = { "EdDSA", FAM_ED, 0, 0 },
};

static const char *const hashnames[3] = { "SHA256", "SHA384", "SHA512" };

struct curve {
	const char *crv, *group;
	size_t clen;
	enum eg_alg alg;
	const char *order_hex;
};

static const struct curve curves[] = {
	{ "P-256", "prime256v1", 32, EG_ALG_ES256,
	  "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551" },
	{ "P-384", "secp384r1", 48, EG_ALG_ES384,
	  "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
	  "581a0db248b0a77aecec196accc52973" },
	{ "P-521", "secp521r1", 66, EG_ALG_ES512,
	  "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	  "fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409" },
};
#define N_CURVES (sizeof(curves) / sizeof(curves[0]))

struct eg_jwk {
	char *kid; /* NULL when the JWK has none */
	size_t kid_len;
	enum kty kty;
	eg_algset algs;
	EVP_PKEY *pkey;   /* RSA, EC, OKP */
	uint8_t *k;       /* oct */
	size_t klen;
	const struct curve *curve;
	EVP_PKEY_CTX *vctx[EG_ALG__COUNT]; /* initialised verify templates (RS, PS, ES) */
	/* Spare copies of the template of k->algs' one algorithm (most keys pin one):
	 * taken and returned with atomic exchanges, so a verify usually neither
	 * duplicates nor frees a context. */
	_Atomic(EVP_PKEY_CTX *) spare[VCTX_SPARES];
	enum eg_alg spare_alg;
	uint8_t fp[32]; /* SHA-256 of the JWK as parsed (sorted, compact): its identity in a set */
};

struct eg_jwks {
	atomic_int ref;
	size_t n;
	struct eg_jwk *keys;
};

/* --- one-time init: digests and the HMAC implementation are fetched once ------ */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static EVP_MD *mds[3];
static EVP_MAC *hmac_impl;
static uint8_t orders[N_CURVES][66];
static pthread_key_t seen_key; /* frees a thread's remembered headers when it exits */
static bool seen_key_ok;
static pthread_key_t sha_key; /* frees a thread's SHA-256 context when it exits */
static bool sha_key_ok;
static __thread EVP_MD_CTX *sha_tls;

static void sha_ctx_free(void *p)
{
	sha_tls = NULL; /* a later destructor hashing again gets a new one */
	EVP_MD_CTX_free(p);
}

static void seen_headers_free(void *p);

static void jose_init(void)
{
	size_t i;

	seen_key_ok = pthread_key_create(&seen_key, seen_headers_free) == 0;
	sha_key_ok = pthread_key_create(&sha_key, sha_ctx_free) == 0;

	for (i = 0; i < 3; i++)
		mds[i] = EVP_MD_fetch(NULL, hashnames[i], NULL);
	hmac_impl = EVP_MAC_fetch(NULL, "HMAC", NULL);
	for (i = 0; i < N_CURVES; i++)
		if (hex_decode(curves[i].order_hex, orders[i], curves[i].clen))
			abort(); /* a typo in the table above */
}

static bool ready(void)
{
	pthread_once(&init_once, jose_init);
	return mds[0] && mds[1] && mds[2] && hmac_impl;
}

/* --- names ----------------------------------------------------------------------- */

enum eg_alg eg_alg_from_name(const char *name)
{
	int a;

	if (!name)
		return EG_ALG_NONE;
	for (a = EG_ALG_NONE + 1; a < EG_ALG__COUNT; a++)
		if (strcmp(name, algtab[a].name) == 0)
			return (enum eg_alg)a;
	return EG_ALG_NONE;
}

const char *eg_alg_name(enum eg_alg alg)
{
	if ((unsigned)alg >= EG_ALG__COUNT)
		return "none";
	return algtab[alg].name;
}

int eg_algset_parse(const char *const *names, size_t n, eg_algset *out, size_t *bad)
{
	eg_algset s = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		enum eg_alg a = eg_alg_from_name(names[i]);
		if (a == EG_ALG_NONE) {
			if (bad)
				*bad = i;
			return -1;
		}
		s |= 1u << a;
	}
	*out = s;
	return 0;
}

const char *eg_jose_err_name(enum eg_jose_err e)
{
	static const char *const names[] = {
		[EG_JOSE_OK] = "ok",		[EG_JOSE_MALFORMED] = "malformed",
		[EG_JOSE_ALG] = "alg",		[EG_JOSE_CRIT] = "crit",
		[EG_JOSE_NO_KEY] = "no_key",	[EG_JOSE_SIGNATURE] = "signature",
		[EG_JOSE_EXPIRED] = "expired",	[EG_JOSE_NOT_YET] = "not_yet",
		[EG_JOSE_ISSUER] = "issuer",	[EG_JOSE_AUDIENCE] = "audience",
		[EG_JOSE_CLAIM] = "claim",	[EG_JOSE_TOKEN_TYPE] = "token_type",
		[EG_JOSE_INACTIVE] = "inactive",
	};
	if ((unsigned)e >= sizeof(names) / sizeof(names[0]) || !names[e])
		return "unknown";
	return names[e];
}

/* --- hashes ---------------------------------------------------------------------- */

/* This thread's SHA-256 context, reused: EVP_Digest makes and frees one (and the
 * provider's state) per call, about a third of the cost of hashing a session ticket's parts
 * (two per session verdict). NULL when none can be kept: EVP_Digest then. */
static EVP_MD_CTX *sha_ctx(void)
{
	EVP_MD_CTX *c = sha_tls;

	if (c || !sha_key_ok)
		return c;
	c = EVP_MD_CTX_new();
	if (c && pthread_setspecific(sha_key, c) != 0) {
		EVP_MD_CTX_free(c);
		return NULL;
	}
	return sha_tls = c;
}

void eg_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 32;
	EVP_MD_CTX *c;

	if (!ready())
		abort(); /* SHA-256 missing means a broken OpenSSL install */
	c = sha_ctx();
	if (c ? EVP_DigestInit_ex2(c, mds[0], NULL) != 1 || EVP_DigestUpdate(c, data, len) != 1 ||
			EVP_DigestFinal_ex(c, out, &n) != 1
	      : EVP_Digest(data, len, out, &n, mds[0], NULL) != 1)
		abort();
}

static int hmac_compute(int hash, const void *key, size_t keylen, const void *data, size_t len,
			uint8_t *out, size_t outmax, size_t *outlen)
{
	OSSL_PARAM p[2];
	EVP_MAC_CTX *c;
	int ok;

	if (!ready())
		return -1;
	c = EVP_MAC_CTX_new(hmac_impl);
	if (!c)
		return -1;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)hashnames[hash], 0);
	p[1] = OSSL_PARAM_construct_end();
	ok = EVP_MAC_init(c, key, keylen, p) == 1 && EVP_MAC_update(c, data, len) == 1 &&
	     EVP_MAC_final(c, out, outlen, outmax) == 1;
	EVP_MAC_CTX_free(c);
	return ok ? 0 : -1;
}

int eg_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32])
{
	size_t n = 0;
	uint8_t zero = 0;

	/* OpenSSL refuses a NULL key; an empty key is still a key */
	if (hmac_compute(0, keylen ? key : &zero, keylen, data, len, out, 32, &n) || n != 32)
		return -1;
	return 0;
}

/* --- signature primitives ----------------------------------------------------------- */

/* DER INTEGER from a big-endian unsigned value (leading zeros stripped). */
static size_t der_int(uint8_t *o, const uint8_t *v, size_t n)
{
	size_t pad;

	while (n > 1 && v[0] == 0) {
		v++;
		n--;
	}
	pad = (v[0] & 0x80) ? 1 : 0;
	o[0] = 0x02;
	o[1] = (uint8_t)(n + pad);
	if (pad)
		o[2] = 0;
	memcpy(o + 2 + pad, v, n);
	return 2 + pad + n;
}

/* 1 when the big-endian v (clen bytes) is zero or >= the group order. */
static bool scalar_out_of_range(const uint8_t *v, const uint8_t *order, size_t clen)
{
	size_t i;
	bool zero = true;

	for (i = 0; i < clen; i++)
		if (v[i]) {
			zero = false;
			break;
		}
	if (zero)
		return true;
	return memcmp(v, order, clen) >= 0;
}

/* JWS carries ECDSA as raw r||s; EVP wants DER. The range check is ours so that
 * r = s = 0 (CVE-2022-21449) can never reach any verifier. */
static size_t ecdsa_to_der(const struct curve *cv, const uint8_t *order, const uint8_t *sig,
			   size_t siglen, uint8_t *der)
{
	uint8_t body[2 * (3 + 66)];
	size_t bl, o = 0;

	if (siglen != 2 * cv->clen)
		return 0;
	if (scalar_out_of_range(sig, order, cv->clen) ||
	    scalar_out_of_range(sig + cv->clen, order, cv->clen))
		return 0;
	bl = der_int(body, sig, cv->clen);
	bl += der_int(body + bl, sig + cv->clen, cv->clen);
	der[o++] = 0x30;
	if (bl >= 128)
		der[o++] = 0x81;
	der[o++] = (uint8_t)bl;
	memcpy(der + o, body, bl);
	return o + bl;
}

/* Sets the RSA padding parameters of alg on a context that is initialised for verify. */
static bool rsa_params(EVP_PKEY_CTX *pc, const struct alginfo *ai, const EVP_MD *md)
{
	if (ai->fam == FAM_RS)
		return EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1;
	if (ai->fam == FAM_PS)
		return EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
		       EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1 &&
		       EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) == 1;
	return true;
}

/* RFC 8017 §9.2 note 1: the DER DigestInfo of SHA-256/384/512 before the hash value. A
 * PKCS#1 v1.5 context without a signature digest compares the whole decrypted block after
 * the padding with what it is given, byte for byte and length for length: given this prefix
 * and the hash, that is the encoding comparison RSA_verify makes (and as strict: the variant
 * without the NULL parameter fails both), minus its two allocations and the re-encoding. */
static const uint8_t digest_info[3][19] = {
	{ 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 },
	{ 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 },
	{ 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 },
};

/* A verify context for (key, alg), initialised once; NULL when OpenSSL refuses (the
 * verify then takes the one-shot path, so behaviour does not depend on this). RS* get no
 * signature digest: verify_prepared hands them DigestInfo || hash (digest_info above). */
static EVP_PKEY_CTX *verify_template(EVP_PKEY *pkey, enum eg_alg alg)
{
	const struct alginfo *ai = &algtab[alg];
	const EVP_MD *md = mds[ai->hash];
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

	if (!pc || EVP_PKEY_verify_init(pc) != 1 || !rsa_params(pc, ai, md) ||
	    (ai->fam != FAM_RS && EVP_PKEY_CTX_set_signature_md(pc, md) != 1)) {
		EVP_PKEY_CTX_free(pc);
		ERR_clear_error();
		return NULL;
	}
	return pc;
}

static void prepare_templates(struct eg_jwk *k)
{
	int a;

	if (!k->pkey || !ready())
		return;
	k->spare_alg = EG_ALG_NONE;
	for (a = EG_ALG_NONE + 1; a < EG_ALG__COUNT; a++) {
		enum fam f = algtab[a].fam;
		if ((k->algs & (1u << a)) && (f == FAM_RS || f == FAM_PS || f == FAM_ES))
			k->vctx[a] = verify_template(k->pkey, (enum eg_alg)a);
	}
	/* Spares for the key's algorithm when it has exactly one (alg pinned, or EC). */
	if (k->algs && !(k->algs & (k->algs - 1)) && k->vctx[__builtin_ctz(k->algs)])
		k->spare_alg = (enum eg_alg)__builtin_ctz(k->algs);
}

/* A private verify context for (k, alg): a spare one, else a copy of the template.
 * The template itself is never used to verify (RSA keeps a scratch buffer in it). */
static EVP_PKEY_CTX *ctx_take(struct eg_jwk *k, enum eg_alg alg)
{
	size_t i;

	if (alg == k->spare_alg)
		for (i = 0; i < VCTX_SPARES; i++) {
			EVP_PKEY_CTX *pc = atomic_exchange(&k->spare[i], NULL);
			if (pc)
				return pc;
		}
	return EVP_PKEY_CTX_dup(k->vctx[alg]);
}

static void ctx_give(struct eg_jwk *k, enum eg_alg alg, EVP_PKEY_CTX *pc)
{
	size_t i;

	if (alg == k->spare_alg)
		for (i = 0; i < VCTX_SPARES; i++) {
			EVP_PKEY_CTX *none = NULL;
			if (atomic_compare_exchange_strong(&k->spare[i], &none, pc))
				return;
		}
	EVP_PKEY_CTX_free(pc);
}

/* sig over msg with the prepared context: digest, then EVP_PKEY_verify. */
static bool verify_prepared(struct eg_jwk *k, enum eg_alg alg, const uint8_t *msg, size_t msglen,
			    const uint8_t *sig, size_t siglen)
{
	const struct alginfo *ai = &algtab[alg];
	uint8_t tbs[sizeof(digest_info[0]) + EVP_MAX_MD_SIZE];
	/* RS*: the DigestInfo, then the hash (verify_template); others: the hash alone */
	size_t pre = ai->fam == FAM_RS ? sizeof(digest_info[0]) : 0;
	uint8_t *dgst = tbs + pre;
	unsigned int dlen = 0;
	EVP_PKEY_CTX *pc;
	bool ok;

	memcpy(tbs, digest_info[ai->hash], pre);
	if (ai->hash == 0) { /* SHA-256: this thread's reused context (eg_sha256) */
		eg_sha256(msg, msglen, dgst);
		dlen = 32;
	} else if (EVP_Digest(msg, msglen, dgst, &dlen, mds[ai->hash], NULL) != 1 || dlen != ai->hlen) {
		return false;
	}
	pc = ctx_take(k, alg);
	if (!pc)
		return false;
	ok = EVP_PKEY_verify(pc, sig, siglen, tbs, pre + dlen) == 1;
	ctx_give(k, alg, pc);
	return ok;
}

static bool verify_pkey(const struct eg_jwk *k, enum eg_alg alg, const uint8_t *msg, size_t msglen,
			const uint8_t *sig, size_t siglen)
{
	const struct alginfo *ai = &algtab[alg];
	const EVP_MD *md = ai->fam == FAM_ED ? NULL : mds[ai->hash];
	uint8_t der[8 + 2 * (3 + 66)];
	EVP_PKEY_CTX *pc = NULL;
	EVP_MD_CTX *c;
	bool ok = false;

	switch (ai->fam) {
	case FAM_RS:
	case FAM_PS:
		if (siglen != (size_t)EVP_PKEY_get_size(k->pkey))
			return false;
		break;
	case FAM_ES: {
		size_t ci = (size_t)(k->curve - curves);
		siglen = ecdsa_to_der(k->curve, orders[ci], sig, siglen, der);
		if (!siglen)
			return false;
		sig = der;
		break;
	}
	case FAM_ED:
		if (siglen != 64)
			return false;
		break;
	default:
		return false;
	}

	if (k->vctx[alg]) {
		/* the spares are a cache, not part of the key's value: const stays true */
		ok = verify_prepared((struct eg_jwk *)k, alg, msg, msglen, sig, siglen);
		/* failed verifies queue errors per thread; clearing walks all 16 slots of the
		 * queue, so only when there is something to clear */
		if (!ok || ERR_peek_last_error())
			ERR_clear_error();
		return ok;
	}
	c = EVP_MD_CTX_new();
	if (!c)
		return false;
	if (EVP_DigestVerifyInit(c, &pc, md, NULL, k->pkey) != 1)
		goto out;
	if (!rsa_params(pc, ai, md))
		goto out;
	ok = EVP_DigestVerify(c, sig, siglen, msg, msglen) == 1;
out:
	EVP_MD_CTX_free(c);
	ERR_clear_error(); /* failed verifies queue errors per thread; do not let them pile up */
	return ok;
}

static bool verify_hmac(enum eg_alg alg, const uint8_t *key, size_t keylen, const uint8_t *msg,
			size_t msglen, const uint8_t *sig, size_t siglen)
{
	const struct alginfo *ai = &algtab[alg];
	uint8_t mac[64], zero = 0;
	size_t n = 0;
	bool ok;

	/* JWS HS* carries the full tag; a truncated one is a forgery attempt */
	if (siglen != ai->hlen)
		return false;
	if (hmac_compute(ai->hash, keylen ? key : &zero, keylen, msg, msglen, mac, sizeof(mac), &n) ||
	    n != ai->hlen)
		return false;
	ok = ct_equal(mac, sig, n);
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok;
}

enum eg_jose_err eg_jws_verify_raw(const struct eg_jwk *k, enum eg_alg alg, const uint8_t *msg,
				   size_t msglen, const uint8_t *sig, size_t siglen)
{
	if (!ready() || (unsigned)alg >= EG_ALG__COUNT || alg == EG_ALG_NONE)
		return EG_JOSE_ALG;
	if (!(k->algs & (1u << alg)))
		return EG_JOSE_NO_KEY;
	if (algtab[alg].fam == FAM_HS)
		return verify_hmac(alg, k->k, k->klen, msg, msglen, sig, siglen) ? EG_JOSE_OK
										 : EG_JOSE_SIGNATURE;
	return verify_pkey(k, alg, msg, msglen, sig, siglen) ? EG_JOSE_OK : EG_JOSE_SIGNATURE;
}

enum eg_jose_err eg_hmac_verify_raw(enum eg_alg alg, const uint8_t *key, size_t keylen,
				    const uint8_t *msg, size_t msglen, const uint8_t *sig,
				    size_t siglen)
{
	if (!ready() || (unsigned)alg >= EG_ALG__COUNT || algtab[alg].fam != FAM_HS)
		return EG_JOSE_ALG;
	return verify_hmac(alg, key, keylen, msg, msglen, sig, siglen) ? EG_JOSE_OK
									 : EG_JOSE_SIGNATURE;
}

/* --- JWK parsing ------------------------------------------------------------------- */

/* Strictly decodes a base64url member into a new buffer; -1 if absent or bad. */
static int b64_member(const json_t *o, const char *name, uint8_t **out, size_t *outlen, size_t max)
{
	const json_t *v = json_object_get(o, name);
	size_t n;
	long r;

	if (!json_is_string(v))
		return -1;
	n = json_string_length(v);
	if (n == 0 || n > max)
		return -1;
	*out = xmalloc(b64url_decoded_max(n));
	r = b64url_decode(json_string_value(v), n, *out);
	if (r <= 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*outlen = (size_t)r;
	return 0;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *b)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pk = NULL;

	if (!params || !c || EVP_PKEY_fromdata_init(c) != 1 ||
	    EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(c);
	return pk;
}

static const char *jwk_rsa(const json_t *j, struct eg_jwk *k)
{
	uint8_t *n = NULL, *e = NULL;
	size_t nl = 0, el = 0, off = 0, bits;
	const char *why = NULL;
	OSSL_PARAM_BLD *b = NULL;
	BIGNUM *bn = NULL, *be = NULL;

	if (b64_member(j, "n", &n, &nl, 4 * JWK_RSA_MAX_BITS / 8 / 3 + 8) ||
	    b64_member(j, "e", &e, &el, 16)) {
		why = "RSA key needs base64url n and e";
		goto out;
	}
	while (off < nl && n[off] == 0)
		off++;
	bits = off < nl ? 8 * (nl - off - 1) + (size_t)(32 - __builtin_clz(n[off])) : 0;
	if (bits < JWK_RSA_MIN_BITS || bits > JWK_RSA_MAX_BITS) {
		why = "RSA modulus must be 2048..16384 bits";
		goto out;
	}
	if (el > 8 || !(e[el - 1] & 1) || (el == 1 && e[0] < 3)) {
		why = "RSA exponent is not an odd number >= 3 of at most 64 bits";
		goto out;
	}
	bn = BN_bin2bn(n + off, (int)(nl - off), NULL);
	be = BN_bin2bn(e, (int)el, NULL);
	b = OSSL_PARAM_BLD_new();
	if (!bn || !be || !b || !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) ||
	    !(k->pkey = pkey_fromdata("RSA", b))) {
		why = "RSA key rejected by OpenSSL";
		goto out;
	}
	k->kty = KTY_RSA;
	k->algs = 1u << EG_ALG_RS256 | 1u << EG_ALG_RS384 | 1u << EG_ALG_RS512 |
		  1u << EG_ALG_PS256 | 1u << EG_ALG_PS384 | 1u << EG_ALG_PS512;
out:
	OSSL_PARAM_BLD_free(b);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	return why;
}

static const char *jwk_ec(const json_t *j, struct eg_jwk *k)
{
	const char *crv = json_string_value(json_object_get(j, "crv")), *why = NULL;
	const struct curve *cv = NULL;
	uint8_t *x = NULL, *y = NULL, pub[1 + 2 * 66];
	size_t xl = 0, yl = 0, i;
	OSSL_PARAM_BLD *b = NULL;
	EVP_PKEY_CTX *chk = NULL;

	for (i = 0; crv && i < N_CURVES; i++)
		if (strcmp(crv, curves[i].crv) == 0)
			cv = &curves[i];
	if (!cv)
		return "EC crv must be P-256, P-384 or P-521";
	if (b64_member(j, "x", &x, &xl, 100) || b64_member(j, "y", &y, &yl, 100) ||
	    xl != cv->clen || yl != cv->clen) {
		why = "EC x and y must be base64url of exactly the coordinate length";
		goto out;
	}
	pub[0] = 0x04;
	memcpy(pub + 1, x, xl);
	memcpy(pub + 1 + xl, y, yl);
	b = OSSL_PARAM_BLD_new();
	if (!b || !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, cv->group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * cv->clen) ||
	    !(k->pkey = pkey_fromdata("EC", b))) {
		why = "EC point rejected (not on the curve?)";
		goto out;
	}
	/* explicit, so an off-curve or infinity point is refused at load time */
	chk = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (!chk || EVP_PKEY_public_check(chk) != 1) {
		why = "EC point is not a valid public key on the curve";
		EVP_PKEY_free(k->pkey);
		k->pkey = NULL;
		goto out;
	}
	k->kty = KTY_EC;
	k->curve = cv;
	k->algs = 1u << cv->alg;
out:
	EVP_PKEY_CTX_free(chk);
	OSSL_PARAM_BLD_free(b);
	free(x);
	free(y);
	return why;
}

static const char *jwk_okp(const json_t *j, struct eg_jwk *k)
{
	const char *crv = json_string_value(json_object_get(j, "crv"));
	uint8_t *x = NULL;
	size_t xl = 0;

	if (!crv || strcmp(crv, "Ed25519") != 0)
		return "OKP crv must be Ed25519";
	if (b64_member(j, "x", &x, &xl, 64) || xl != 32) {
		free(x);
		return "Ed25519 x must be 32 bytes of base64url";
	}
	k->pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, xl);
	free(x);
	ERR_clear_error();
	if (!k->pkey)
		return "Ed25519 key rejected by OpenSSL";
	k->kty = KTY_OKP;
	k->algs = 1u << EG_ALG_EDDSA;
	return NULL;
}

static const char *jwk_oct(const json_t *j, struct eg_jwk *k)
{
	if (b64_member(j, "k", &k->k, &k->klen, 8192))
		return "oct key needs a non-empty base64url k";
	k->kty = KTY_OCT;
	/* RFC 7518 §3.2: the key must be at least as long as the hash output */
	if (k->klen >= 32)
		k->algs |= 1u << EG_ALG_HS256;
	if (k->klen >= 48)
		k->algs |= 1u << EG_ALG_HS384;
	if (k->klen >= 64)
		k->algs |= 1u << EG_ALG_HS512;
	if (!k->algs)
		return "oct key shorter than 32 bytes";
	return NULL;
}

static bool ops_allow_verify(const json_t *ops)
{
	size_t i;
	json_t *v;
	bool verify = false;

	if (!json_is_array(ops))
		return false;
	json_array_foreach(ops, i, v) {
		if (!json_is_string(v))
			return false;
		if (strcmp(json_string_value(v), "verify") == 0)
			verify = true;
	}
	return verify;
}

static void jwk_free(struct eg_jwk *k)
{
	int a;

	for (a = 0; a < EG_ALG__COUNT; a++)
		EVP_PKEY_CTX_free(k->vctx[a]);
	for (a = 0; a < VCTX_SPARES; a++)
		EVP_PKEY_CTX_free(atomic_exchange(&k->spare[a], NULL));
	EVP_PKEY_free(k->pkey);
	if (k->k)
		OPENSSL_cleanse(k->k, k->klen);
	free(k->k);
	free(k->kid);
	memset(k, 0, sizeof(*k));
}

/* Fills k from one JWK object; NULL or the reason it is unusable. */
/* Any change of the JWK (key material, kid, alg, use) gives another fingerprint, so
 * a verdict remembered for one key never outlives that key's removal. */
static int jwk_fingerprint(const json_t *j, uint8_t fp[32])
{
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);

	if (!s)
		return -1;
	eg_sha256(s, strlen(s), fp);
	OPENSSL_cleanse(s, strlen(s)); /* an oct key's secret */
	free(s);
	return 0;
}

static const char *jwk_parse(const json_t *j, struct eg_jwk *k)
{
	const json_t *use, *ops, *kid, *alg;
	const char *kty, *why;

	memset(k, 0, sizeof(*k));
	if (!json_is_object(j))
		return "not a JSON object";
	kty = json_string_value(json_object_get(j, "kty"));
	if (!kty)
		return "kty missing";
	use = json_object_get(j, "use");
	if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
		return "use is not \"sig\"";
	ops = json_object_get(j, "key_ops");
	if (ops && !ops_allow_verify(ops))
		return "key_ops without \"verify\"";
	kid = json_object_get(j, "kid");
	if (kid && (!json_is_string(kid) || json_string_length(kid) > KID_MAX))
		return "kid is not a string of at most 127 bytes";
	alg = json_object_get(j, "alg");
	if (alg && !json_is_string(alg))
		return "alg is not a string";

	if (strcmp(kty, "RSA") == 0)
		why = jwk_rsa(j, k);
	else if (strcmp(kty, "EC") == 0)
		why = jwk_ec(j, k);
	else if (strcmp(kty, "OKP") == 0)
		why = jwk_okp(j, k);
	else if (strcmp(kty, "oct") == 0)
		why = jwk_oct(j, k);
	else
		why = "unsupported kty";
	if (why)
		goto bad;
	if (alg) {
		enum eg_alg a = eg_alg_from_name(json_string_value(alg));
		if (a == EG_ALG_NONE || !(k->algs & (1u << a))) {
			why = "alg unsupported or does not fit the key";
			goto bad;
		}
		k->algs = 1u << a;
	}
	if (kid) {
		k->kid_len = json_string_length(kid);
		k->kid = xstrdup(json_string_value(kid));
	}
	if (jwk_fingerprint(j, k->fp) != 0) {
		why = "cannot serialise the key";
		goto bad;
	}
	prepare_templates(k);
	return NULL;
bad:
	jwk_free(k);
	return why;
}

static void appendf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (!buf || !len)
		return;
	used = strnlen(buf, len);
	if (used >= len - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

struct eg_jwks *eg_jwks_parse(const char *json, size_t len, char *err, size_t errlen, char *warn,
			      size_t warnlen)
{
	json_error_t je;
	json_t *root, *arr, *single = NULL;
	struct eg_jwks *s;
	size_t i, n;

	if (err && errlen)
		err[0] = '\0';
	if (warn && warnlen)
		warn[0] = '\0';
	if (!ready()) {
		appendf(err, errlen, "OpenSSL lacks SHA-2 or HMAC");
		return NULL;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		appendf(err, errlen, "JSON error at line %d: %s", je.line, je.text);
		return NULL;
	}
	arr = json_object_get(root, "keys");
	if (!json_is_object(root) || (arr && !json_is_array(arr)) ||
	    (!arr && !json_object_get(root, "kty"))) {
		appendf(err, errlen, "not a JWK Set ({\"keys\": [...]}) or a JWK");
		json_decref(root);
		return NULL;
	}
	if (!arr)
		single = root;
	n = arr ? json_array_size(arr) : 1;

	s = xcalloc(1, sizeof(*s));
	atomic_init(&s->ref, 1);
	s->keys = xcalloc(n ? n : 1, sizeof(*s->keys));
	for (i = 0; i < n; i++) {
		const json_t *j = arr ? json_array_get(arr, i) : single;
		const char *why;

		if (s->n >= JWKS_MAX_KEYS) {
			appendf(warn, warnlen, "key %zu: more than %d keys, ignored; ", i, JWKS_MAX_KEYS);
			continue;
		}
		why = jwk_parse(j, &s->keys[s->n]);
		if (why)
			appendf(warn, warnlen, "key %zu: %s; ", i, why);
		else
			s->n++;
	}
	json_decref(root);
	return s;
}

struct eg_jwks *eg_jwks_ref(struct eg_jwks *s)
{
	if (s)
		atomic_fetch_add(&s->ref, 1);
	return s;
}

void eg_jwks_unref(struct eg_jwks *s)
{
	size_t i;

	if (!s || atomic_fetch_sub(&s->ref, 1) != 1)
		return;
	for (i = 0; i < s->n; i++)
		jwk_free(&s->keys[i]);
	free(s->keys);
	free(s);
}

size_t eg_jwks_count(const struct eg_jwks *s)
{
	return s ? s->n : 0;
}

bool eg_jwks_has_kid(const struct eg_jwks *s, const char *kid)
{
	size_t i, n = strlen(kid);

	for (i = 0; s && i < s->n; i++)
		if (s->keys[i].kid && s->keys[i].kid_len == n && memcmp(s->keys[i].kid, kid, n) == 0)
			return true;
	return false;
}

bool eg_jwks_has_fingerprint(const struct eg_jwks *s, const uint8_t fp[32])
{
	for (size_t i = 0; s && i < s->n; i++)
		if (memcmp(s->keys[i].fp, fp, 32) == 0)
			return true;
	return false;
}

const struct eg_jwk *eg_jwks_key(const struct eg_jwks *s, size_t i)
{
	return s && i < s->n ? &s->keys[i] : NULL;
}

eg_algset eg_jwk_algs(const struct eg_jwk *k)
{
	return k ? k->algs : 0;
}

const char *eg_jwk_kid(const struct eg_jwk *k)
{
	return k ? k->kid : NULL;
}

/* --- JWS compact ------------------------------------------------------------------ */

void eg_jws_clear(struct eg_jws *j)
{
	if (!j)
		return;
	json_decref(j->header);
	json_decref(j->payload);
	free(j->raw_payload);
	memset(j, 0, sizeof(*j));
}

/* Header rules that do not depend on keys: alg, crit, b64, kid. */
static enum eg_jose_err check_header(const json_t *h, eg_algset allowed, enum eg_alg *alg,
				     const char **kid, size_t *kid_len)
{
	const json_t *a = json_object_get(h, "alg"), *crit = json_object_get(h, "crit");
	const json_t *k = json_object_get(h, "kid"), *b64 = json_object_get(h, "b64");

	if (!json_is_string(a))
		return EG_JOSE_ALG;
	*alg = eg_alg_from_name(json_string_value(a));
	if (*alg == EG_ALG_NONE || !(allowed & (1u << *alg)))
		return EG_JOSE_ALG;
	if (crit) {
		size_t i;
		json_t *v;
		if (!json_is_array(crit) || json_array_size(crit) == 0)
			return EG_JOSE_MALFORMED;
		json_array_foreach(crit, i, v)
			if (!json_is_string(v))
				return EG_JOSE_MALFORMED;
		return EG_JOSE_CRIT; /* we implement no extension */
	}
	/* RFC 7797 b64:false changes the signing input; without crit it is invalid */
	if (b64 && !json_is_true(b64))
		return EG_JOSE_MALFORMED;
	/* "zip" is a JWE parameter (RFC 7516 4.1.3): a JWS that claims a compressed payload
	 * is read one way by us (never inflated) and another by libraries that inflate it
	 * (mod_auth_openidc's 10 MB zlib-bomb cap). Refused, so no decompression is ever owed. */
	if (json_object_get(h, "zip"))
		return EG_JOSE_MALFORMED;
	*kid = NULL;
	*kid_len = 0;
	if (k) {
		if (!json_is_string(k) || json_string_length(k) > KID_MAX ||
		    strlen(json_string_value(k)) != json_string_length(k))
			return EG_JOSE_MALFORMED;
		*kid = json_string_value(k);
		*kid_len = json_string_length(k);
	}
	return EG_JOSE_OK;
}

static enum eg_jose_err verify_with_keys(const struct eg_jwks *keys, enum eg_alg alg,
					 const char *kid, size_t kid_len, const uint8_t *msg,
					 size_t msglen, const uint8_t *sig, size_t siglen,
					 uint8_t fp_out[32])
{
	bool usable = false;
	size_t i;

	for (i = 0; keys && i < keys->n; i++) {
		const struct eg_jwk *k = &keys->keys[i];

		if (kid && (!k->kid || k->kid_len != kid_len || memcmp(k->kid, kid, kid_len) != 0))
			continue;
		if (!(k->algs & (1u << alg)))
			continue;
		usable = true;
		if (eg_jws_verify_raw(k, alg, msg, msglen, sig, siglen) == EG_JOSE_OK) {
			memcpy(fp_out, k->fp, 32);
			return EG_JOSE_OK;
		}
	}
	return usable ? EG_JOSE_SIGNATURE : EG_JOSE_NO_KEY;
}

/* --- protected headers seen before ------------------------------------------------------
 * The tokens of one issuer and key carry the same protected header, byte for byte
 * ({"alg":"RS256","kid":"k1","typ":"at+jwt"}): only payload and signature differ. Decoding
 * and parsing it is a fifth of what a verify costs besides the signature (jansson builds an
 * object, strings and a hash table each time), so each thread remembers its last few header
 * segments that passed check_header, keyed by their exact bytes, with the parsed object
 * (immutable from then on, shared by reference), alg and kid. Only the allow-list of the call
 * is checked again: it is the one rule of check_header that depends on the caller, and the
 * first one it applies, so a hit answers exactly what parsing the header again would.
 * Per thread, so nothing is locked and no entry is freed under another thread's feet. */
#define SEEN_HEADERS 4
#define SEEN_SEG_MAX 256 /* base64url bytes; longer headers are simply parsed every time */

struct seen_header {
	size_t len; /* 0: empty */
	char seg[SEEN_SEG_MAX];
	json_t *hdr;
	enum eg_alg alg;
	const char *kid; /* inside hdr, or NULL */
	size_t kid_len;
};

struct seen_headers {
	struct seen_header e[SEEN_HEADERS];
	unsigned next;
};

static __thread struct seen_headers *seen_tls;

static void seen_headers_free(void *p)
{
	struct seen_headers *m = p;

	for (size_t i = 0; i < SEEN_HEADERS; i++)
		json_decref(m->e[i].hdr);
	free(m);
	seen_tls = NULL;
}

static const struct seen_header *seen_header_find(const char *seg, size_t len)
{
	struct seen_headers *m = seen_tls;

	if (!m || len > SEEN_SEG_MAX)
		return NULL;
	for (size_t i = 0; i < SEEN_HEADERS; i++)
		if (m->e[i].len == len && memcmp(m->e[i].seg, seg, len) == 0)
			return &m->e[i];
	return NULL;
}

/* Remembers a header that passed check_header (hdr: a new reference is taken). */
static void seen_header_add(const char *seg, size_t len, json_t *hdr, enum eg_alg alg, const char *kid,
			    size_t kid_len)
{
	struct seen_headers *m = seen_tls;

	if (len == 0 || len > SEEN_SEG_MAX || !seen_key_ok)
		return;
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (!m || pthread_setspecific(seen_key, m) != 0) {
			free(m);
			return;
		}
		seen_tls = m;
	}
	struct seen_header *e = &m->e[m->next];
	m->next = (m->next + 1) % SEEN_HEADERS;
	json_decref(e->hdr);
	memcpy(e->seg, seg, len);
	e->len = len;
	e->hdr = json_incref(hdr);
	e->alg = alg;
	e->kid = kid;
	e->kid_len = kid_len;
}

/* The protected header of a token: remembered, or decoded, parsed and checked. On success
 * *hdr is a new reference (shared: never modified) and kid points into it. */
static enum eg_jose_err protected_header(const char *seg, size_t len, eg_algset allowed, json_t **hdr,
					 enum eg_alg *alg, const char **kid, size_t *kid_len)
{
	uint8_t hbuf[b64url_decoded_max(JWS_HDR_B64_MAX) + EG_JSON_PADDING];
	const struct seen_header *seen = seen_header_find(seg, len);
	enum eg_jose_err rc;
	long hn;

	*hdr = NULL;
	if (seen) {
		if (!(allowed & (1u << seen->alg)))
			return EG_JOSE_ALG;
		*hdr = json_incref(seen->hdr);
		*alg = seen->alg;
		*kid = seen->kid;
		*kid_len = seen->kid_len;
		return EG_JOSE_OK;
	}
	hn = b64url_decode(seg, len, hbuf);
	if (hn <= 0)
		return EG_JOSE_MALFORMED;
	/* the same reader as the payload's: one reading of a token's JSON */
	memset(hbuf + hn, 0, EG_JSON_PADDING);
	*hdr = eg_json_object_parse((const char *)hbuf, (size_t)hn);
	if (!*hdr)
		return EG_JOSE_MALFORMED;
	rc = check_header(*hdr, allowed, alg, kid, kid_len);
	if (rc == EG_JOSE_OK)
		seen_header_add(seg, len, *hdr, *alg, *kid, *kid_len);
	return rc;
}

enum eg_jose_err eg_jws_verify(const char *token, size_t len, const struct eg_jwks *keys,
			       eg_algset allowed, bool need_json_payload, struct eg_jws *out)
{
	uint8_t sbuf[b64url_decoded_max(2732)];
	const char *d1, *d2, *kid = NULL;
	size_t hl, pl, sl, kid_len = 0;
	long pn, sn;
	enum eg_alg alg = EG_ALG_NONE;
	enum eg_jose_err rc;
	json_t *hdr;
	uint8_t *payload;

	memset(out, 0, sizeof(*out));
	if (!ready())
		return EG_JOSE_ALG;
	if (!token || len == 0 || len > JWS_MAX_LEN || memchr(token, '\0', len))
		return EG_JOSE_MALFORMED;
	d1 = memchr(token, '.', len);
	if (!d1)
		return EG_JOSE_MALFORMED;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
		return EG_JOSE_MALFORMED; /* exactly three segments; JWE has five */
	hl = (size_t)(d1 - token);
	pl = (size_t)(d2 - d1 - 1);
	sl = len - (size_t)(d2 + 1 - token);
	/* RFC 7515 allows an empty payload; a JWT (a JSON payload) never has one. */
	if (!hl || (!pl && need_json_payload) || !sl || hl > JWS_HDR_B64_MAX || sl > 2732)
		return EG_JOSE_MALFORMED;

	sn = b64url_decode(d2 + 1, sl, sbuf);
	if (sn <= 0)
		return EG_JOSE_MALFORMED;
	rc = protected_header(token, hl, allowed, &hdr, &alg, &kid, &kid_len);
	if (rc != EG_JOSE_OK)
		goto fail_hdr;

	/* room for the JSON reader's padding (json_fast.h); zeroed, so no byte it reads is unset */
	payload = xmalloc(b64url_decoded_max(pl) + EG_JSON_PADDING);
	pn = pl ? b64url_decode(d1 + 1, pl, payload) : 0;
	if (pn < 0 || (pn == 0 && pl)) {
		free(payload);
		rc = EG_JOSE_MALFORMED;
		goto fail_hdr;
	}
	memset(payload + pn, 0, EG_JSON_PADDING);

	rc = verify_with_keys(keys, alg, kid, kid_len, (const uint8_t *)token, (size_t)(d2 - token),
			      sbuf, (size_t)sn, out->key_fp);
	if (rc != EG_JOSE_OK) {
		free(payload);
		goto fail_hdr;
	}
	/* jansson's reading of the claims (json_loadb, JSON_REJECT_DUPLICATES), at a tenth of
	 * its cost; anything but an object is NULL as before */
	out->payload = pn ? eg_json_object_parse((const char *)payload, (size_t)pn) : NULL;
	if (need_json_payload && !out->payload) {
		free(payload);
		rc = EG_JOSE_MALFORMED;
		goto fail_hdr;
	}
	out->alg = alg;
	out->header = hdr;
	out->raw_payload = payload;
	out->raw_payload_len = (size_t)pn;
	if (kid)
		memcpy(out->kid, kid, kid_len + 1);
	return EG_JOSE_OK;

fail_hdr:
	memset(out, 0, sizeof(*out));
	/* The kid survives a failure: an unknown kid is the caller's cue to refetch keys. */
	if (kid && kid_len < sizeof(out->kid))
		memcpy(out->kid, kid, kid_len + 1);
	json_decref(hdr);
	return rc;
}

/* --- JWT claims ----------------------------------------------------------------------- */

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

int eg_claim_time(const json_t *claims, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(claims, name);
	double d;

	if (!v)
		return 1;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_real(v))
		return -1;
	d = json_real_value(v);
	if (!isfinite(d))
		return -1;
	if (d >= 9223372036854775807.0)
		*out = INT64_MAX;
	else if (d <= -9223372036854775807.0)
		*out = INT64_MIN;
	else
		*out = (int64_t)floor(d);
	return 0;
}

static bool str_in(const char *s, size_t n, const char *const *list, size_t cnt)
{
	size_t i;

	for (i = 0; i < cnt; i++)
		if (list[i] && strlen(list[i]) == n && memcmp(list[i], s, n) == 0)
			return true;
	return false;
}

static enum eg_jose_err check_aud(const json_t *aud, const struct eg_jwt_expect *x, const char **why)
{
	size_t i;
	json_t *v;
	bool hit = false;

	if (!aud) {
		*why = "aud missing";
		return EG_JOSE_AUDIENCE;
	}
	if (json_is_string(aud)) {
		hit = str_in(json_string_value(aud), json_string_length(aud), x->audiences,
			     x->n_audiences);
	} else if (json_is_array(aud)) {
		json_array_foreach(aud, i, v) {
			if (!json_is_string(v)) {
				*why = "aud array holds a non-string";
				return EG_JOSE_CLAIM;
			}
			hit = hit || str_in(json_string_value(v), json_string_length(v), x->audiences,
					    x->n_audiences);
		}
	} else {
		*why = "aud is neither a string nor an array";
		return EG_JOSE_CLAIM;
	}
	if (!hit) {
		*why = "aud does not name this service";
		return EG_JOSE_AUDIENCE;
	}
	return EG_JOSE_OK;
}

enum eg_jose_err eg_jwt_check_claims(const json_t *claims, const struct eg_jwt_expect *x,
				     int64_t now, int64_t *exp_out, const char **why)
{
	static const struct eg_jwt_expect none;
	int64_t exp = INT64_MAX, nbf = 0, iat = 0, leeway;
	int re, rn, ri;
	const char *dummy;

	if (!why)
		why = &dummy;
	*why = NULL;
	if (exp_out)
		*exp_out = INT64_MAX;
	if (!x)
		x = &none;
	leeway = x->leeway_s > 0 ? x->leeway_s : 0;
	if (!json_is_object(claims)) {
		*why = "claims are not a JSON object";
		return EG_JOSE_CLAIM;
	}
	re = eg_claim_time(claims, "exp", &exp);
	rn = eg_claim_time(claims, "nbf", &nbf);
	ri = eg_claim_time(claims, "iat", &iat);
	if (re < 0 || rn < 0 || ri < 0) {
		*why = "exp, nbf or iat is not a number";
		return EG_JOSE_CLAIM;
	}
	if (re == 1 && x->require_exp) {
		*why = "exp missing";
		return EG_JOSE_CLAIM;
	}
	if (ri == 1 && (x->require_iat || x->max_iat_age_s > 0)) {
		*why = "iat missing";
		return EG_JOSE_CLAIM;
	}
	if (re == 0 && now >= sat_add(exp, leeway)) {
		*why = "token expired";
		return EG_JOSE_EXPIRED;
	}
	if (rn == 0 && sat_add(now, leeway) < nbf) {
		*why = "token not yet valid (nbf)";
		return EG_JOSE_NOT_YET;
	}
	if (ri == 0 && iat > sat_add(now, leeway)) {
		*why = "token issued in the future (iat)";
		return EG_JOSE_NOT_YET;
	}
	if (ri == 0 && x->max_iat_age_s > 0 &&
	    sat_add(iat, sat_add(x->max_iat_age_s, leeway)) < now) {
		*why = "token too old (iat)";
		return EG_JOSE_EXPIRED;
	}
	if (x->require_sub) {
		const json_t *sub = json_object_get(claims, "sub");
		if (!json_is_string(sub) || json_string_length(sub) == 0) {
			*why = "sub missing";
			return EG_JOSE_CLAIM;
		}
	}
	if (x->n_issuers) {
		const json_t *iss = json_object_get(claims, "iss");
		if (!json_is_string(iss) || !str_in(json_string_value(iss), json_string_length(iss),
						    x->issuers, x->n_issuers)) {
			*why = "iss is not an accepted issuer";
			return EG_JOSE_ISSUER;
		}
	}
	if (x->n_audiences) {
		enum eg_jose_err rc = check_aud(json_object_get(claims, "aud"), x, why);
		if (rc != EG_JOSE_OK)
			return rc;
	}
	if (exp_out)
		*exp_out = exp;
	return EG_JOSE_OK;
}

/* --- access tokens ------------------------------------------------------------------ */

/* typ values compare case-insensitively and may omit "application/" (RFC 7515 4.1.9). */
static bool typ_is(const char *typ, const char *want)
{
	if (strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	return strcasecmp(typ, want) == 0;
}

enum eg_jose_err eg_jwt_check_access_token(const json_t *header, const json_t *claims,
					   bool require_at_jwt, const char **why)
{
	const json_t *t = json_object_get(header, "typ");
	const char *typ = json_string_value(t);
	static const char *const id_token_claims[] = { "nonce", "at_hash", "c_hash" };

	if (t && !typ) {
		*why = "typ is not a string";
		return EG_JOSE_TOKEN_TYPE;
	}
	if (require_at_jwt && (!typ || !typ_is(typ, "at+jwt"))) {
		*why = "typ is not at+jwt (RFC 9068)";
		return EG_JOSE_TOKEN_TYPE;
	}
	if (typ && (typ_is(typ, "logout+jwt") || typ_is(typ, "secevent+jwt") ||
		    typ_is(typ, "id_token+jwt"))) {
		*why = "typ names an ID or logout token";
		return EG_JOSE_TOKEN_TYPE;
	}
	if (json_object_get(claims, "events")) {
		*why = "events claim: a logout token or security event";
		return EG_JOSE_TOKEN_TYPE;
	}
	for (size_t i = 0; i < sizeof(id_token_claims) / sizeof(id_token_claims[0]); i++) {
		if (json_object_get(claims, id_token_claims[i])) {
			*why = "an ID token (nonce, at_hash or c_hash)";
			return EG_JOSE_TOKEN_TYPE;
		}
	}
	return EG_JOSE_OK;
}
