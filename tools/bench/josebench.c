/* josebench.c - cost of one eg_jws_verify (split, base64url, header JSON, key choice,
 * signature, payload JSON) on distinct tokens, single thread, for the cold-verdict
 * comparison with `openssl speed`.   josebench JWKS TOKENS_FILE [SECONDS [KEEP]]
 * The figure is CPU time per verify, as `openssl speed` reports user CPU time and the
 * bench the daemon's CPU time: on a shared machine wall time also counts the time the
 * thread waited for a CPU (printed beside it).
 * KEEP (default 0): each verify's claims are kept in a ring of KEEP and the oldest freed,
 * as the daemon's verdict cache holds and evicts them (bench.mjs's cold cases run with
 * cache_entries 1024); 0 frees them at once, which leaves the allocator's chunks hot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int main(int argc, char **argv)
{
	size_t jl, tl, n = 0;
	char err[256];
	if (argc < 3) {
		fprintf(stderr, "usage: josebench JWKS TOKENS [SECONDS [KEEP]]\n");
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
	json_t **ring = keep ? calloc(keep, sizeof(*ring)) : NULL;
	unsigned long ops = 0;
	double start = now_s(), cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), el;
	do {
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
	double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	printf("%.2f us per eg_jws_verify (CPU time; wall %.2f us; %lu ops, %zu distinct tokens, claims kept %zu)\n",
	       cpu * 1e6 / ops, el * 1e6 / ops, ops, n, keep);
	for (size_t i = 0; i < keep; i++)
		json_decref(ring[i]);
	free(ring);
	eg_jwks_unref(keys);
	return 0;
}
