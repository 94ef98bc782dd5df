/* identity.h - who a request is: the result of authentication, input to policy. */
#ifndef EG_IDENTITY_H
#define EG_IDENTITY_H

#include <jansson.h>
#include <stdbool.h>

enum eg_id_kind { EG_ID_NONE = 0, EG_ID_SESSION, EG_ID_BEARER, EG_ID_MTLS };

/* A client certificate nginx verified (issue 6 fills the details). */
struct eg_cert_identity {
	bool verified;        /* X-SSL-Client-Verify: SUCCESS */
	char *subject;        /* RFC 4514 */
	char *issuer;
	char **sans;          /* "DNS:x", "email:y", "URI:z" */
	size_t n_sans;
	char fingerprint[72]; /* "sha256:" + 64 hex */
	char spki[72];        /* "sha256:" + 64 hex of the SubjectPublicKeyInfo */
};

struct eg_identity {
	enum eg_id_kind kind;
	json_t *claims;       /* owned reference; NULL for certificate-only identities */
	char session_id[80];  /* for EG_ID_SESSION */
	struct eg_cert_identity *cert; /* owned; NULL when no verified certificate */
};

void eg_identity_clear(struct eg_identity *id);
void eg_cert_identity_free(struct eg_cert_identity *c);

/* Claim helpers: a string claim or NULL. */
const char *eg_claim_str(const json_t *claims, const char *name);

#endif
