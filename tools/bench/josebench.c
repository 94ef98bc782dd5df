/* josebench.c - cost of one eg_jws_verify (split, base64url, header JSON, key choice,
 * signature, payload JSON) on distinct tokens, single thread, for the cold-verdict
 * comparison with `openssl speed`.   josebench JWKS TOKENS_FILE [SECONDS [KEEP [PEM]]]
 * The figure is CPU time per verify, as `openssl speed` reports user CPU time and the
 * bench the daemon's CPU time: on a shared machine wall time also counts the time the
 * thread waited for a CPU (printed beside it).
 * KEEP (default 0): each verify's claims are kept in a ring of KEEP and the oldest freed,
 * as the daemon's verdict cache holds and evicts them (bench.mjs's cold cases run with
 * cache_entries 1024); 0 frees them at once, which leaves the allocator's chunks hot.
 * PEM (the tokens' public key, mint.mjs's rsa.pem or ec.pem): also times the bare signature
 * check on the same signatures, as `openssl speed` makes it (EVP_PKEY_verify on a context
 * set up once, over the precomputed digest: PKCS#1 DigestInfo || SHA-256, or ECDSA's DER),
 * in alternating blocks of 64 with eg_jws_verify, so both see the same load: the paired
 * ratio is what edgegate's JOSE path adds to the raw verify on this machine, this minute. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "jose.h"
#include "util.h"

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* One token's bare check: the signature (DER for ECDSA) and what EVP_PKEY_verify compares. */
struct raw {
	uint8_t sig[512], tbs[19 + 32];
	size_t siglen, tbslen;
};

/* SHA-256's DigestInfo prefix (RFC 8017 §9.2 note 1) */
static const uint8_t sha256_info[19] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
					 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };

static int raw_prepare(const char *tok, bool rsa, struct raw *r)
{
	const char *d2 = strrchr(tok, '.');
	uint8_t sig[512];
	long n = d2 ? b64url_decode(d2 + 1, strlen(d2 + 1), sig) : -1;

	if (n <= 0 || (size_t)n > sizeof(r->sig))
		return -1;
	if (rsa) {
		memcpy(r->sig, sig, (size_t)n);
		r->siglen = (size_t)n;
		memcpy(r->tbs, sha256_info, sizeof(sha256_info));
		eg_sha256(tok, (size_t)(d2 - tok), r->tbs + sizeof(sha256_info));
		r->tbslen = sizeof(r->tbs);
		return 0;
	}
	ECDSA_SIG *es = ECDSA_SIG_new();
	uint8_t *p = r->sig;
	if (n != 64 || !es || !ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL))) {
		ECDSA_SIG_free(es);
		return -1;
	}
	r->siglen = (size_t)i2d_ECDSA_SIG(es, &p);
	ECDSA_SIG_free(es);
	eg_sha256(tok, (size_t)(d2 - tok), r->tbs);
	r->tbslen = 32;
	return 0;
}

int main(int argc, char **argv)
{
	size_t jl, tl, n = 0;
	char err[256];
	if (argc < 3) {
		fprintf(stderr, "usage: josebench JWKS TOKENS [SECONDS [KEEP [PEM]]]\n");
		return 2;
	}
	double secs = argc > 3 ? atof(argv[3]) : 2;
	size_t keep = argc > 4 ? strtoul(argv[4], NULL, 10) : 0;
	char *j = read_file(argv[1], 1 << 20, &jl), *t = read_file(argv[2], 1 << 28, &tl);
	if (!j || !t)
		return 1;
	struct eg_jwks *keys = eg_jwks_parse(j, jl, err, sizeof(err), NULL, 0);
	if (!keys) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	char **tok = NULL;
	for (char *p = strtok(t, "\n"); p; p = strtok(NULL, "\n")) {
		tok = realloc(tok, (n + 1) * sizeof(*tok));
		tok[n++] = p;
	}
	struct raw *raw = NULL;
	EVP_PKEY_CTX *rctx = NULL;
	if (argc > 5) {
		FILE *f = fopen(argv[5], "r");
		EVP_PKEY *pk = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		bool rsa = pk && EVP_PKEY_is_a(pk, "RSA");
		rctx = pk ? EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL) : NULL;
		if (!rctx || EVP_PKEY_verify_init(rctx) != 1 ||
		    (rsa && EVP_PKEY_CTX_set_rsa_padding(rctx, RSA_PKCS1_PADDING) != 1)) {
			fprintf(stderr, "%s: not a usable public key\n", argv[5]);
			return 1;
		}
		EVP_PKEY_free(pk); /* the context holds its own reference */
		raw = calloc(n, sizeof(*raw));
		for (size_t i = 0; i < n; i++)
			if (raw_prepare(tok[i], rsa, &raw[i]) != 0 ||
			    EVP_PKEY_verify(rctx, raw[i].sig, raw[i].siglen, raw[i].tbs, raw[i].tbslen) != 1) {
				fprintf(stderr, "token %zu: the raw check does not verify with %s\n", i, argv[5]);
				return 1;
			}
	}
	json_t **ring = keep ? calloc(keep, sizeof(*ring)) : NULL;
	unsigned long ops = 0, rops = 0;
	double start = now_s(), cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), el, rcpu = 0, rwall = 0;
	do {
		if (raw) { /* a block of bare checks, timed apart and taken out of the total below */
			double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = now_s();
			for (int k = 0; k < 64; k++, rops++) {
				const struct raw *r = &raw[rops % n];
				if (EVP_PKEY_verify(rctx, r->sig, r->siglen, r->tbs, r->tbslen) != 1)
					return 1;
			}
			rcpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
			rwall += now_s() - w0;
		}
		for (int k = 0; k < 64; k++, ops++) {
			struct eg_jws jws;
			const char *s = tok[ops % n];
			if (eg_jws_verify(s, strlen(s), keys, EG_ALGSET_ALL, true, &jws) != EG_JOSE_OK) {
				fprintf(stderr, "token %lu did not verify\n", ops % n);
				return 1;
			}
			if (ring) {
				json_decref(ring[ops % keep]);
				ring[ops % keep] = json_incref(jws.payload);
			}
			eg_jws_clear(&jws);
		}
	} while ((el = now_s() - start) < secs);
	double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0 - rcpu;
	el -= rwall;
	printf("%.2f us per eg_jws_verify (CPU time; wall %.2f us; %lu ops, %zu distinct tokens, claims kept %zu)\n",
	       cpu * 1e6 / ops, el * 1e6 / ops, ops, n, keep);
	if (raw)
		printf("%.2f us per raw EVP_PKEY_verify, same signatures, alternating blocks (%lu ops): eg_jws_verify = %.3f x raw\n",
		       rcpu * 1e6 / rops, rops, (cpu / ops) / (rcpu / rops));
	for (size_t i = 0; i < keep; i++)
		json_decref(ring[i]);
	free(ring);
	free(raw);
	EVP_PKEY_CTX_free(rctx);
	eg_jwks_unref(keys);
	return 0;
}
