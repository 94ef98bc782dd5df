/* oidc.h - the OpenID Connect relying party: discovery, /oauth2/start,
 * /oauth2/callback, /oauth2/sign_out, /oauth2/backchannel-logout, /oauth2/userinfo,
 * token exchange and refresh (libcurl), and the admin commands "sessions"/"revoke". */
#ifndef EG_OIDC_H
#define EG_OIDC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct eg_daemon;
struct eg_jwks;

/* Discovery (retried in the background if the OP is down at start; /readyz false
 * until it succeeds), registers the /oauth2/ endpoints and the admin commands. */
int eg_oidc_init(struct eg_daemon *d, char *err, size_t errlen);
void eg_oidc_free(struct eg_daemon *d);
bool eg_oidc_ready(struct eg_daemon *d);

/* The state-cookie prefix; the full name is this plus 8 characters of the state. */
#define EG_STATE_COOKIE_PREFIX "_edgegate_state_"

/* Exposed for tests: validates an id_token against keys. nonce NULL = not checked
 * (refresh); want_sub NULL = any. On success *claims is a new reference. */
int eg_oidc_check_id_token(const char *token, const struct eg_jwks *keys, uint32_t algs,
			   const char *issuer, const char *client_id, int64_t leeway_s,
			   const char *nonce, const char *want_sub, int64_t now, json_t **claims,
			   char *why, size_t whylen);

/* Validates a back-channel logout_token's claims (signature checked by the caller).
 * 0 ok, -1 with why. */
int eg_oidc_check_logout_claims(const json_t *claims, const char *issuer, const char *client_id,
				int64_t leeway_s, int64_t now, char *why, size_t whylen);

#endif
