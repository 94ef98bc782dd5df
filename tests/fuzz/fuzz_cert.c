/* fuzz_cert.c - libFuzzer target: the client-certificate header path of mtls.c.
 * First byte picks the shape of the rest:
 *   even: the raw X-SSL-Client-Cert value ($ssl_client_escaped_cert), decoded and parsed;
 *   odd:  DER bytes, wrapped in PEM and escaped as nginx does, to reach the X.509 and
 *         SAN code quickly.
 * Either way an accepted certificate must have well-formed identity fields, and the
 * outcome cache (a daemon state, the header seen twice: a miss, then a hit) must give
 * the answer the uncached check gives. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "config.h"
#include "daemon.h"
#include "identity.h"
#include "mtls.h"
#include "util.h"

int eg_mtls_identity_from(struct eg_daemon *d, const char *verify, const char *cert_hdr,
			  struct eg_cert_identity **out, const char **why);

static char *wrap_der(const uint8_t *der, size_t len)
{
	char *b64 = xcalloc(1, (len / 3 + 2) * 4 + 1);
	EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
	char *pem = xasprintf("-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n", b64);
	char *e = pct_encode(pem);
	free(b64);
	free(pem);
	return e;
}

static void check(const struct eg_cert_identity *c)
{
	if (!c)
		return;
	if (!c->verified || !c->subject || !c->issuer || strncmp(c->fingerprint, "sha256:", 7) != 0 ||
	    strlen(c->fingerprint) != 71 || strlen(c->spki) != 71)
		abort();
	for (size_t i = 0; i < c->n_sans; i++)
		for (const char *p = c->sans[i]; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort(); /* would go into an upstream header */
	json_t *claims = json_pack("{s:{s:s}}", "cnf", "x5t#S256", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	if (eg_mtls_token_binding_ok(claims, c))
		abort(); /* a zero thumbprint cannot match a SHA-256 of real DER */
	json_decref(claims);
}

/* A daemon with an mTLS state and no revocation lists: its answers are the uncached ones. */
static struct eg_daemon *cached_daemon(void)
{
	static struct eg_config cfg;
	static struct eg_daemon d = { .cfg = &cfg };
	static int ready;
	char err[256];

	if (!ready) {
		if (eg_mtls_init(&d, err, sizeof(err)) != 0)
			abort();
		ready = 1;
	}
	return &d;
}

static void same_answer(int rc, const struct eg_cert_identity *c, const char *why, const char *hdr)
{
	for (int round = 0; round < 2; round++) {
		struct eg_cert_identity *k = NULL;
		const char *kwhy = NULL;
		int krc = eg_mtls_identity_from(cached_daemon(), "SUCCESS", hdr, &k, &kwhy);
		if (krc != rc || (rc == 1 && (!k || strcmp(k->fingerprint, c->fingerprint) != 0 ||
					      strcmp(k->subject, c->subject) != 0 || k->n_sans != c->n_sans)))
			abort();
		/* the clock may pass notAfter between the calls; anything else must agree */
		if (rc < 0 && strcmp(kwhy, why) != 0 && strcmp(kwhy, "certificate_expired") != 0)
			abort();
		eg_cert_identity_free(k);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eg_cert_identity *c = NULL;
	const char *why = NULL;
	char *hdr;

	if (size < 1 || size > 65536)
		return 0;
	if (data[0] & 1) {
		hdr = wrap_der(data + 1, size - 1);
	} else {
		hdr = xcalloc(1, size);
		memcpy(hdr, data + 1, size - 1);
	}
	int rc = eg_mtls_identity_from(NULL, "SUCCESS", hdr, &c, &why);
	if ((rc == 1) != (c != NULL) || (rc < 0 && !why))
		abort();
	check(c);
	same_answer(rc, c, why, hdr);
	eg_cert_identity_free(c);
	free(hdr);
	return 0;
}
