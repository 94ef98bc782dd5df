/* fuzz_jwks.c - bytes -> eg_jwks_parse; every key that loads is then exercised
 * once per algorithm it allows, with a junk signature (never valid). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t msg[] = "eyJhbGciOiJub25lIn0.e30";
	uint8_t sig[512];
	char err[128], warn[256];
	struct eg_jwks *s;
	size_t i;
	int a;

	s = eg_jwks_parse((const char *)data, size, err, sizeof(err), warn, sizeof(warn));
	if (!s)
		return 0;
	memset(sig, 0x41, sizeof(sig));
	for (i = 0; i < eg_jwks_count(s); i++) {
		const struct eg_jwk *k = eg_jwks_key(s, i);
		if (eg_jwk_kid(k))
			eg_jwks_has_kid(s, eg_jwk_kid(k));
		for (a = 1; a < EG_ALG__COUNT; a++) {
			size_t len = a == EG_ALG_EDDSA ? 64 : 32 + (size_t)(a % 3) * 16;
			if (!(eg_jwk_algs(k) & (1u << a)))
				continue;
			/* a constant signature never verifies: a success here is a bug */
			if (eg_jws_verify_raw(k, (enum eg_alg)a, msg, sizeof(msg) - 1, sig, len) ==
			    EG_JOSE_OK)
				abort();
		}
	}
	eg_jwks_unref(s);
	return 0;
}
