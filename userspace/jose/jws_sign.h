/* jws_sign.h - the one place edgegated signs a JWT: the private_key_jwt client
 * assertion (RFC 7523) it sends to the OP's token endpoint. */
#ifndef EG_JWS_SIGN_H
#define EG_JWS_SIGN_H

#include <openssl/evp.h>

#include "jose.h"

/* Loads a PEM private key (RSA, EC P-256/384/521, Ed25519) and the algorithm it signs
 * with: *alg given (not EG_ALG_NONE) must fit the key; else RS256 / ES256 / ES384 /
 * ES512 / EdDSA by key type. NULL with err on failure. */
EVP_PKEY *eg_sign_key_load(const char *pem_file, enum eg_alg *alg, char *err, size_t errlen);

/* Compact JWS of payload_json with header {"alg", "typ":"JWT", "kid" (when given)};
 * ES* signatures as raw r||s (RFC 7518 3.4). malloc'd, NULL on error. */
char *eg_jws_sign(EVP_PKEY *key, enum eg_alg alg, const char *kid, const char *payload_json);

#endif
