/* jose.h - JWS compact verification, JWK sets and JWT claim checks on OpenSSL 3 EVP.
 *
 * Strict by construction:
 *  - the algorithm is pinned by the key: a JWK with "alg" allows only that alg; one
 *    without allows only the algs of its kty/crv (RSA: RS*, PS*; EC P-256: ES256 ...;
 *    OKP Ed25519: EdDSA; oct: HS*); `use: enc` or key_ops without "verify" never verify;
 *  - "none" never verifies; keys in token headers (jwk, jku, x5u, x5c) are ignored,
 *    never trusted; unknown `crit` entries reject the token;
 *  - base64url is strict (no padding, canonical), JSON duplicate keys are rejected;
 *  - ECDSA signatures are raw r||s of exactly 2*coordinate bytes;
 *  - an HMAC key is only ever an `oct` JWK, so an RSA public key cannot be used as an
 *    HMAC secret. */
#ifndef EG_JOSE_H
#define EG_JOSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum eg_alg {
	EG_ALG_NONE = 0, /* never verifies; only a parse result */
	EG_ALG_HS256, EG_ALG_HS384, EG_ALG_HS512,
	EG_ALG_RS256, EG_ALG_RS384, EG_ALG_RS512,
	EG_ALG_PS256, EG_ALG_PS384, EG_ALG_PS512,
	EG_ALG_ES256, EG_ALG_ES384, EG_ALG_ES512,
	EG_ALG_EDDSA,
	EG_ALG__COUNT
};
typedef uint32_t eg_algset; /* bit (1u << alg) per allowed algorithm */
#define EG_ALGSET_ALL (((1u << EG_ALG__COUNT) - 1) & ~1u)

enum eg_alg eg_alg_from_name(const char *name); /* EG_ALG_NONE if unknown */
const char *eg_alg_name(enum eg_alg alg);
/* Parses a list of names into a set; -1 (and *bad = offending index) if one is unknown. */
int eg_algset_parse(const char *const *names, size_t n, eg_algset *out, size_t *bad);

enum eg_jose_err {
	EG_JOSE_OK = 0,
	EG_JOSE_MALFORMED,   /* not three base64url segments, bad JSON, duplicate keys ... */
	EG_JOSE_ALG,         /* alg missing, none, unknown, or not allowed */
	EG_JOSE_CRIT,        /* crit present with an unsupported extension */
	EG_JOSE_NO_KEY,      /* no key with that kid (or none usable for the alg) */
	EG_JOSE_SIGNATURE,   /* signature did not verify */
	EG_JOSE_EXPIRED,
	EG_JOSE_NOT_YET,     /* nbf or iat in the future */
	EG_JOSE_ISSUER,
	EG_JOSE_AUDIENCE,
	EG_JOSE_CLAIM,       /* a time claim is not a number, a required claim is absent ... */
	EG_JOSE_TOKEN_TYPE,  /* an ID token or a logout token offered as an access token */
	EG_JOSE_INACTIVE,    /* introspection (RFC 7662) says the token is not active */
};
const char *eg_jose_err_name(enum eg_jose_err e); /* short reason for logs/metrics */

struct eg_jwk;  /* one verification key */
struct eg_jwks; /* an immutable, reference-counted key set */

/* Parses a JWK Set ({"keys":[...]}) or a single JWK. Keys that are unusable
 * (unsupported kty, enc-only, bad parameters) are skipped, and their reason is
 * appended to warn (if given); a set with no usable key is still returned (empty).
 * NULL on JSON errors, with the reason in err. */
struct eg_jwks *eg_jwks_parse(const char *json, size_t len, char *err, size_t errlen,
			      char *warn, size_t warnlen);
struct eg_jwks *eg_jwks_ref(struct eg_jwks *s);
void eg_jwks_unref(struct eg_jwks *s);
size_t eg_jwks_count(const struct eg_jwks *s);
bool eg_jwks_has_kid(const struct eg_jwks *s, const char *kid);
/* The set still holds the key whose fingerprint eg_jws_verify reported. */
bool eg_jwks_has_fingerprint(const struct eg_jwks *s, const uint8_t fp[32]);

/* Result of a successful verification. Owns a reference to each of its JSON objects;
 * header may be shared with other results (a header seen before is not parsed again):
 * read it, never modify it. */
struct eg_jws {
	enum eg_alg alg;
	json_t *header;
	json_t *payload; /* NULL if the payload is not a JSON object (jws verify prints raw) */
	uint8_t *raw_payload;
	size_t raw_payload_len;
	char kid[128];
	uint8_t key_fp[32]; /* fingerprint of the key that verified (eg_jwks_has_fingerprint) */
};
void eg_jws_clear(struct eg_jws *j);

/* Verifies a JWS compact serialisation against keys, allowing only algs in allowed.
 * Key choice: a token kid selects the key with that kid (no match => EG_JOSE_NO_KEY);
 * without a kid, every key usable for the alg is tried. On success fills out
 * (caller calls eg_jws_clear). need_json_payload: payload must be a JSON object (so
 * not empty); without it an empty payload (RFC 7515) verifies with raw_payload_len 0.
 * On failure out is cleared except out->kid, which keeps the token's kid when the
 * header parsed: an unknown kid is the cue to refetch the key set. */
enum eg_jose_err eg_jws_verify(const char *token, size_t len, const struct eg_jwks *keys,
			       eg_algset allowed, bool need_json_payload, struct eg_jws *out);

/* Claim expectations for a JWT. */
struct eg_jwt_expect {
	const char *const *issuers; /* exact; n_issuers == 0: not checked */
	size_t n_issuers;
	const char *const *audiences; /* aud (string or array) must contain one of these */
	size_t n_audiences;
	int64_t leeway_s;
	bool require_exp;
	bool require_iat;
	bool require_sub;
	int64_t max_iat_age_s; /* 0 = no limit */
};

/* Checks exp/nbf/iat (numbers, fractional allowed, saturating to int64; anything
 * else is EG_JOSE_CLAIM), iss and aud. now is UNIX seconds. *exp_out gets exp
 * (INT64_MAX when absent or saturated) for cache lifetimes. why gets a reason. */
enum eg_jose_err eg_jwt_check_claims(const json_t *claims, const struct eg_jwt_expect *x,
				     int64_t now, int64_t *exp_out, const char **why);

/* An access token, not another kind of JWT signed by the same issuer (RFC 8725 3.11,
 * RFC 9068): refuses an ID token (nonce, at_hash, c_hash, typ id_token+jwt), a logout
 * token or other Security Event Token (events, typ logout+jwt / secevent+jwt); with
 * require_at_jwt the header typ must be at+jwt (or application/at+jwt).
 * EG_JOSE_TOKEN_TYPE with why on refusal. */
enum eg_jose_err eg_jwt_check_access_token(const json_t *header, const json_t *claims,
					   bool require_at_jwt, const char **why);

/* NumericDate reading shared with other modules: 0 ok, -1 not a number, 1 absent. */
int eg_claim_time(const json_t *claims, const char *name, int64_t *out);

/* Lower-level pieces, for tests (Wycheproof), edgegatectl and the fuzzers. */
const struct eg_jwk *eg_jwks_key(const struct eg_jwks *s, size_t i); /* NULL past the end */
eg_algset eg_jwk_algs(const struct eg_jwk *k);   /* algorithms this key may verify */
const char *eg_jwk_kid(const struct eg_jwk *k);  /* NULL when the JWK has no kid */
/* Verifies sig over msg with one key; EG_JOSE_NO_KEY when the key does not allow alg.
 * ES* take raw r||s; HS* need the full-length tag. */
enum eg_jose_err eg_jws_verify_raw(const struct eg_jwk *k, enum eg_alg alg, const uint8_t *msg,
				   size_t msglen, const uint8_t *sig, size_t siglen);
/* HS* with a raw key of any length: the RFC 7518 §3.2 minimum applies to JWKs only. */
enum eg_jose_err eg_hmac_verify_raw(enum eg_alg alg, const uint8_t *key, size_t keylen,
				    const uint8_t *msg, size_t msglen, const uint8_t *sig,
				    size_t siglen);

/* Hash helpers on EVP. */
void eg_sha256(const void *data, size_t len, uint8_t out[32]);
int eg_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32]);

#endif
