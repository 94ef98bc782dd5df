/* introspect.h - opaque bearer tokens checked at the authorization server's token
 * introspection endpoint (RFC 7662, jwt.introspection_url).
 *
 * Used for bearer tokens that are not a compact JWS. The caller caches the verdict
 * (verdict cache: positive until the token's exp, capped; negative briefly). */
#ifndef EG_INTROSPECT_H
#define EG_INTROSPECT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jose.h"

struct eg_config;

/* POSTs token (client_secret_basic with jwt.introspection_client_id/_secret) and
 * checks the answer: active true; token_type, when given, an access token (Bearer);
 * exp/nbf with the jwt leeway (exp required when jwt.require_exp); iss and aud, when
 * given, as configured. EG_JOSE_OK: *claims = the response (without "active"),
 * *exp_out = its exp (INT64_MAX when absent). why: a short reason. An unreachable
 * endpoint is EG_JOSE_NO_KEY (not cached: it may heal). */
enum eg_jose_err eg_introspect(const struct eg_config *cfg, const char *tok, size_t len, json_t **claims,
			       int64_t *exp_out, const char **why);

/* The introspection response, checked against the config (split out for unit tests). */
enum eg_jose_err eg_introspect_check(const struct eg_config *cfg, json_t *resp, int64_t now, int64_t *exp_out,
				     const char **why);

#endif
