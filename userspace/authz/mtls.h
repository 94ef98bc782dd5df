/* mtls.h - client-certificate identity from what nginx verified (X-SSL-Client-Verify,
 * X-SSL-Client-Cert = $ssl_client_escaped_cert), the revoked-certificate list, and
 * certificate-bound access tokens (RFC 8705). */
#ifndef EG_MTLS_H
#define EG_MTLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "identity.h"

struct eg_daemon;
struct eg_req;

/* 1: a verified certificate (*out owned by the caller); 0: none presented or not
 * verified by nginx; -1: presented and verified but unusable — revoked, unparsable,
 * or not matching what nginx said (*why names the reason). */
int eg_mtls_identity(struct eg_daemon *d, const struct eg_req *r, struct eg_cert_identity **out, const char **why);

/* RFC 8705 §3: a token with cnf["x5t#S256"] is valid only with the certificate whose
 * SHA-256 DER thumbprint matches. true when the token is not bound, or bound to cert. */
bool eg_mtls_token_binding_ok(const json_t *claims, const struct eg_cert_identity *cert);

/* Loads mtls.revoked_file / CRLs (reloaded when they change). 0 ok. */
int eg_mtls_init(struct eg_daemon *d, char *err, size_t errlen);
void eg_mtls_free(struct eg_daemon *d);

/* Lower-level entry points (tests, fuzzing) and housekeeping. */
int eg_mtls_identity_from(struct eg_daemon *d, const char *verify, const char *cert_hdr,
			  struct eg_cert_identity **out, const char **why);
struct eg_cert_identity *eg_mtls_parse_escaped(const char *hdr, size_t len, const char **why);
void eg_mtls_set_recheck_ms(struct eg_daemon *d, unsigned ms);
void eg_mtls_periodic(struct eg_daemon *d); /* cheap; call every second */
/* Outcomes of certificate headers are cached (certcache.h) until notAfter, a revocation
 * list or CRL change, or this call (SIGHUP). */
void eg_mtls_cache_clear(struct eg_daemon *d);
json_t *eg_mtls_status_json(struct eg_daemon *d);
int eg_mtls_revoked_count(struct eg_daemon *d);

#endif
