/* mtlsbench.c - what a verdict with a client certificate costs in mtls.c, and its parts:
 * percent-decoding nginx's $ssl_client_escaped_cert, the base64 of the PEM (OpenSSL's
 * PEM_read_bio beside a plain base64 decode of the body), d2i_X509, the whole parse with
 * the identity fields, and eg_mtls_identity_from without a daemon state (no cache, no
 * revocation lists), with one (the repeated header: the cache's case), and with a
 * different header every call (every call a miss). Single thread, then the cached case
 * on THREADS threads.
 *   mtlsbench [ITERATIONS] [THREADS]      (EG_ROOT: the source tree, for the test certificate) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "daemon.h"
#include "identity.h"
#include "mtls.h"
#include "util.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *what, double dt, long n)
{
	printf("%10.2f us  %s\n", dt / (double)n * 1e6, what);
	fflush(stdout);
}

static char *hdr;    /* the escaped PEM, as nginx sends it */
static char **misses; /* the same certificate, each with different leading whitespace */
static long n_iter;

struct worker {
	struct eg_daemon *d;
	long n, bad;
};

static void *cached_worker(void *arg)
{
	struct worker *w = arg;
	for (long i = 0; i < w->n; i++) {
		struct eg_cert_identity *c = NULL;
		const char *why = NULL;
		if (eg_mtls_identity_from(w->d, "SUCCESS", hdr, &c, &why) != 1)
			w->bad++;
		eg_cert_identity_free(c);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *root = getenv("EG_ROOT");
	char *path = xasprintf("%s/tests/unit/data/mtls/client.crt", root ? root : ".");
	size_t len;
	char *pem = read_file(path, 1 << 20, &len);
	int threads = argc > 2 ? atoi(argv[2]) : 2;
	double t0;

	n_iter = argc > 1 ? atol(argv[1]) : 20000;
	if (!pem) {
		fprintf(stderr, "%s: cannot read (set EG_ROOT)\n", path);
		return 1;
	}
	hdr = pct_encode(pem);
	size_t hlen = strlen(hdr);
	printf("certificate %s: PEM %zu bytes, escaped header %zu bytes, %ld iterations\n", path, len, hlen, n_iter);

	/* the parts */
	char *dec = xmalloc(hlen + 1);
	t0 = now_s();
	for (long i = 0; i < n_iter; i++)
		pct_decode(hdr, hlen, dec);
	report("percent-decoding the header", now_s() - t0, n_iter);

	long dlen = 0;
	unsigned char *der = NULL;
	t0 = now_s();
	for (long i = 0; i < n_iter; i++) {
		char *name = NULL, *header = NULL;
		BIO *b = BIO_new_mem_buf(dec, -1);
		OPENSSL_free(der);
		der = NULL;
		if (PEM_read_bio(b, &name, &header, &der, &dlen) != 1)
			return 1;
		OPENSSL_free(name);
		OPENSSL_free(header);
		BIO_free(b);
	}
	report("PEM_read_bio (BIO, armour, base64)", now_s() - t0, n_iter);

	/* the body alone, newlines removed, as mtls.c's own decoder sees it */
	char *body = strstr(dec, "-----\n") + 6, *end = strstr(body, "-----END");
	char *flat = xcalloc(1, (size_t)(end - body) + 1), *o = flat;
	for (char *q = body; q < end; q++)
		if (*q != '\n')
			*o++ = *q;
	uint8_t *der2 = xmalloc(strlen(flat));
	t0 = now_s();
	long d2 = 0;
	for (long i = 0; i < n_iter; i++)
		d2 = b64_decode(flat, strlen(flat), der2);
	report("b64_decode of the body (util.c)", now_s() - t0, n_iter);
	if (d2 != dlen || memcmp(der, der2, (size_t)dlen) != 0)
		return 1;

	t0 = now_s();
	for (long i = 0; i < n_iter; i++) {
		const unsigned char *q = der;
		X509 *x = d2i_X509(NULL, &q, dlen);
		if (!x)
			return 1;
		X509_free(x);
	}
	report("d2i_X509 + X509_free", now_s() - t0, n_iter);

	t0 = now_s();
	for (long i = 0; i < n_iter; i++) {
		const char *why;
		struct eg_cert_identity *c = eg_mtls_parse_escaped(hdr, hlen, &why);
		if (!c)
			return 1;
		eg_cert_identity_free(c);
	}
	report("eg_mtls_parse_escaped (decode, parse, identity fields)", now_s() - t0, n_iter);

	t0 = now_s();
	for (long i = 0; i < n_iter; i++) {
		struct eg_cert_identity *c = NULL;
		const char *why;
		if (eg_mtls_identity_from(NULL, "SUCCESS", hdr, &c, &why) != 1)
			return 1;
		eg_cert_identity_free(c);
	}
	report("eg_mtls_identity_from, no daemon state (never cached)", now_s() - t0, n_iter);

	/* a daemon state: no revocation lists configured, recheck due once a second */
	struct eg_config cfg;
	struct eg_daemon d;
	char err[256];
	memset(&cfg, 0, sizeof(cfg));
	memset(&d, 0, sizeof(d));
	d.cfg = &cfg;
	if (eg_mtls_init(&d, err, sizeof(err)) != 0) {
		fprintf(stderr, "eg_mtls_init: %s\n", err);
		return 1;
	}
	struct worker w = { .d = &d, .n = n_iter };
	t0 = now_s();
	cached_worker(&w);
	report("eg_mtls_identity_from, the same header every call (cache hits when cached)", now_s() - t0, n_iter);

	/* every call a different header (the same certificate behind different leading whitespace) */
	enum { VARIANTS = 8192 };
	misses = xcalloc(VARIANTS, sizeof(char *));
	for (int i = 0; i < VARIANTS; i++) {
		char pre[13 * 3 + 1] = "";
		for (int bit = 0; bit < 13; bit++) /* i in binary: 13 blanks, each a space or a newline */
			strcat(pre, (i >> bit) & 1 ? "%0A" : "%20");
		misses[i] = xasprintf("%s%%0A%s", pre, hdr);
	}
	long nm = n_iter < VARIANTS ? n_iter : VARIANTS;
	t0 = now_s();
	for (long i = 0; i < nm; i++) {
		struct eg_cert_identity *c = NULL;
		const char *why;
		if (eg_mtls_identity_from(&d, "SUCCESS", misses[i], &c, &why) != 1)
			return 1;
		eg_cert_identity_free(c);
	}
	report("eg_mtls_identity_from, a different header every call (misses)", now_s() - t0, nm);

	pthread_t th[16];
	struct worker ws[16];
	if (threads < 1 || threads > 16)
		threads = 2;
	t0 = now_s();
	for (int i = 0; i < threads; i++) {
		ws[i] = (struct worker){ .d = &d, .n = n_iter };
		pthread_create(&th[i], NULL, cached_worker, &ws[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	double dt = now_s() - t0;
	char what[128];
	snprintf(what, sizeof(what), "the same header, %d threads (wall time per call per thread)", threads);
	report(what, dt, n_iter);
	for (int i = 0; i < threads; i++)
		if (ws[i].bad)
			return 1;
	eg_mtls_free(&d);
	return 0;
}
