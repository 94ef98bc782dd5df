/* mtls.c - client-certificate identity from what nginx verified, certificate revocation
 * (fingerprint list and CRL files, reloaded when they change) and RFC 8705
 * certificate-bound access tokens.
 *
 * nginx does the TLS handshake and the chain verification; edgegated only sees
 * X-SSL-Client-Verify ($ssl_client_verify) and X-SSL-Client-Cert
 * ($ssl_client_escaped_cert: the leaf in PEM, percent-encoded). Those headers are
 * believed only from a trusted proxy, and anything odd about them is a deny. */
#include "mtls.h"
#include "certcache.h"
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define MAX_CERT_HEADER (64 * 1024)   /* a leaf certificate in escaped PEM is a few KiB */
#define MAX_LIST_FILE (64 * 1024 * 1024)
#define NOT_BEFORE_LEEWAY_S 60
#define EXPIRY_REFRESH_NS (60ull * 1000000000ull)
/* The outcome cache (certcache.h). Memory at most about entries x 16 KiB; a leaf in
 * escaped PEM is 1-3 KiB. Allowed outcomes last until notAfter, at most an hour;
 * refusals at most ten minutes. Both are dropped when a revocation list changes. */
#define CACHE_ALLOWED 1024
#define CACHE_REFUSED 256
#define CACHE_ALLOW_MAX_S 3600
#define CACHE_REFUSE_MAX_S 600

/* Exported beyond mtls.h for the unit tests, the fuzzer and the admin status. */
int eg_mtls_identity_from(struct eg_daemon *d, const char *verify, const char *cert_hdr,
			  struct eg_cert_identity **out, const char **why);
struct eg_cert_identity *eg_mtls_parse_escaped(const char *hdr, size_t len, const char **why);
void eg_mtls_set_recheck_ms(struct eg_daemon *d, unsigned ms);
void eg_mtls_periodic(struct eg_daemon *d);
json_t *eg_mtls_status_json(struct eg_daemon *d);
int eg_mtls_revoked_count(struct eg_daemon *d);

/* --- watched files ------------------------------------------------------------------------ */

struct filestamp {
	bool seen;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

static bool stamp_of(const char *path, struct filestamp *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (stat(path, &st) != 0)
		return false;
	*s = (struct filestamp){ true, st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim };
	return true;
}

static bool stamp_eq(const struct filestamp *a, const struct filestamp *b)
{
	return a->seen == b->seen && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* --- per-daemon state -------------------------------------------------------------------------- */

struct crl_file {
	char *path;
	struct filestamp stamp;
	STACK_OF(X509_CRL) *crls;
};

struct mtls_state {
	struct eg_daemon *d;
	pthread_mutex_t lock; /* guards everything below */
	uint64_t recheck_ns;    /* these two: also read without the lock (maybe_recheck) */
	uint64_t last_check_ns;
	bool checking;        /* one thread reloads; the others keep using the current lists */
	struct filestamp revoked_stamp;
	uint8_t (*revoked)[32]; /* sorted, for bsearch */
	size_t n_revoked;
	struct crl_file *crl;
	size_t n_crl;
	uint64_t last_expiry_ns;
	/* Bumped (release) after the revocation lists change, read (acquire) before a check:
	 * a cached outcome is believed only under the generation it was decided with. */
	uint64_t gen;
	struct eg_certcache *cache; /* its own striped locks; never NULL while published */
};

/* eg_daemon has no slot for this module, so states are found by daemon pointer.
 * Lookups take no lock (every verdict with a certificate makes one): a state is complete
 * before its slot is published (release store, eg_mtls_init) and its slot is cleared
 * before it is freed (eg_mtls_free, after the daemon's HTTP threads have stopped, as
 * before: a lookup never kept a state alive). registry_lock orders the writers only. */
#define MAX_STATES 8
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mtls_state *registry[MAX_STATES];

static struct mtls_state *state_of(struct eg_daemon *d)
{
	for (int i = 0; i < MAX_STATES; i++) {
		struct mtls_state *s = __atomic_load_n(&registry[i], __ATOMIC_ACQUIRE);

		if (s && s->d == d)
			return s;
	}
	return NULL;
}

static void registry_set(int i, struct mtls_state *s)
{
	__atomic_store_n(&registry[i], s, __ATOMIC_RELEASE);
}

/* --- the revoked-fingerprint list ---------------------------------------------------------------- */

static int cmp32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* One entry a line: "sha256:<64 hex>" or bare hex (upper or lower case); '#' starts a
 * comment; blank lines are ignored. Any other line fails the whole file, so a typo
 * never silently un-revokes a certificate. */
static int parse_revoked(const char *text, size_t len, uint8_t (**out)[32], size_t *n_out, char *err, size_t errlen)
{
	uint8_t(*v)[32] = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *hash = memchr(p, '#', (size_t)(le - p));
		const char *q = hash ? hash : le;
		lineno++;
		while (p < q && (*p == ' ' || *p == '\t'))
			p++;
		while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r'))
			q--;
		if (q > p) {
			if ((size_t)(q - p) > 7 && strncasecmp(p, "sha256:", 7) == 0)
				p += 7;
			char hex[65];
			uint8_t bin[32];
			if (q - p != 64) {
				snprintf(err, errlen, "line %zu: expected sha256:<64 hex digits>", lineno);
				free(v);
				return -1;
			}
			for (int i = 0; i < 64; i++)
				hex[i] = (char)((p[i] >= 'A' && p[i] <= 'F') ? p[i] + ('a' - 'A') : p[i]);
			hex[64] = '\0';
			if (hex_decode(hex, bin, sizeof(bin)) != 0) {
				snprintf(err, errlen, "line %zu: not hexadecimal", lineno);
				free(v);
				return -1;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = realloc(v, cap * sizeof(*v));
				if (!v)
					abort();
			}
			memcpy(v[n++], bin, 32);
		}
		p = nl ? nl + 1 : end;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp32);
	*out = v;
	*n_out = n;
	return 0;
}

static int load_revoked(const char *path, uint8_t (**out)[32], size_t *n, char *err, size_t errlen)
{
	size_t len = 0;
	char *text = read_file(path, MAX_LIST_FILE, &len);
	char perr[128];

	if (!text) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	int rc = parse_revoked(text, len, out, n, perr, sizeof(perr));
	free(text);
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", path, perr);
	return rc;
}

/* --- CRL files --------------------------------------------------------------------------------- */

static void crls_free(STACK_OF(X509_CRL) *s)
{
	sk_X509_CRL_pop_free(s, X509_CRL_free);
}

/* PEM (one or more "X509 CRL" blocks) or a single DER CRL. */
static STACK_OF(X509_CRL) *load_crls(const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	char *data = read_file(path, MAX_LIST_FILE, &len);
	STACK_OF(X509_CRL) *s = NULL;
	BIO *b = NULL;

	if (!data) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	s = sk_X509_CRL_new_null();
	b = BIO_new_mem_buf(data, (int)len);
	if (!s || !b)
		goto fail;
	if (memmem(data, len, "-----BEGIN X509 CRL-----", 24)) {
		X509_CRL *c;
		while ((c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL)
			if (!sk_X509_CRL_push(s, c)) {
				X509_CRL_free(c);
				goto fail;
			}
		/* the loop ends on end of data or on a broken block: tell them apart */
		int blocks = 0;
		for (const char *q = data; (q = memmem(q, len - (size_t)(q - data), "-----BEGIN X509 CRL-----", 24)); q += 24)
			blocks++;
		if (sk_X509_CRL_num(s) != blocks)
			goto fail;
	} else {
		X509_CRL *c = d2i_X509_CRL_bio(b, NULL);
		if (!c)
			goto fail;
		if (!sk_X509_CRL_push(s, c)) {
			X509_CRL_free(c);
			goto fail;
		}
		if (BIO_pending(b) != 0)
			goto fail;
	}
	BIO_free(b);
	free(data);
	ERR_clear_error();
	return s;
fail:
	ERR_clear_error();
	snprintf(err, errlen, "%s: not a PEM or DER certificate revocation list", path);
	BIO_free(b);
	crls_free(s);
	free(data);
	return NULL;
}

/* --- reload -------------------------------------------------------------------------------------- */

/* Re-reads what changed. Called without the lock; swaps under it. At start-up (initial)
 * a missing or broken file is an error; later the last good list stays in force, so
 * a half-written file never un-revokes anything. */
static int reload(struct mtls_state *s, bool initial, char *err, size_t errlen)
{
	const struct eg_mtls_config *m = &s->d->cfg->mtls;
	struct filestamp st;

	if (m->revoked_file) {
		pthread_mutex_lock(&s->lock);
		struct filestamp old = s->revoked_stamp;
		pthread_mutex_unlock(&s->lock);
		bool have = stamp_of(m->revoked_file, &st);
		if (!have && initial) {
			snprintf(err, errlen, "revoked_file %s: %s", m->revoked_file, strerror(errno));
			return -1;
		}
		if (have && !stamp_eq(&st, &old)) {
			uint8_t(*v)[32] = NULL;
			size_t n = 0;
			char e[256];
			if (load_revoked(m->revoked_file, &v, &n, e, sizeof(e)) == 0) {
				pthread_mutex_lock(&s->lock);
				free(s->revoked);
				s->revoked = v;
				s->n_revoked = n;
				s->revoked_stamp = st;
				__atomic_add_fetch(&s->gen, 1, __ATOMIC_RELEASE);
				pthread_mutex_unlock(&s->lock);
				log_info("mtls: %zu revoked certificate fingerprints loaded from %s", n, m->revoked_file);
			} else if (initial) {
				snprintf(err, errlen, "revoked_file %s", e);
				return -1;
			} else {
				/* remember the stamp so a broken file is reported once, not every second */
				pthread_mutex_lock(&s->lock);
				s->revoked_stamp = st;
				pthread_mutex_unlock(&s->lock);
				log_err("mtls: revoked_file %s; keeping the previous list", e);
			}
		} else if (!have) {
			log_debug("mtls: revoked_file %s unavailable; keeping the previous list", m->revoked_file);
		}
	}
	for (size_t i = 0; i < s->n_crl; i++) {
		struct crl_file *f = &s->crl[i];
		bool have = stamp_of(f->path, &st);
		if (!have && initial) {
			snprintf(err, errlen, "crl_files %s: %s", f->path, strerror(errno));
			return -1;
		}
		pthread_mutex_lock(&s->lock);
		bool same = stamp_eq(&st, &f->stamp);
		pthread_mutex_unlock(&s->lock);
		if (!have || same)
			continue;
		char e[256];
		STACK_OF(X509_CRL) *c = load_crls(f->path, e, sizeof(e));
		if (!c && initial) {
			snprintf(err, errlen, "crl_files %s", e);
			return -1;
		}
		pthread_mutex_lock(&s->lock);
		f->stamp = st;
		if (c) {
			crls_free(f->crls);
			f->crls = c;
			__atomic_add_fetch(&s->gen, 1, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&s->lock);
		if (c)
			log_info("mtls: %d CRL(s) loaded from %s", sk_X509_CRL_num(c), f->path);
		else
			log_err("mtls: crl_files %s; keeping the previous CRL", e);
	}
	return 0;
}

/* --- certificate expiry (metrics and status) ------------------------------------------------------- */

static X509 *read_first_cert(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x = NULL;

	if (!b)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (!x) {
		/* maybe DER */
		BIO_free(b);
		b = BIO_new_file(path, "rb");
		x = b ? d2i_X509_bio(b, NULL) : NULL;
	}
	BIO_free(b);
	return x;
}

/* Seconds until notAfter (negative once expired); false when unreadable. */
static bool cert_seconds_left(const char *path, int64_t *left, int64_t *not_after)
{
	X509 *x = read_first_cert(path);
	struct tm tm;

	if (!x)
		return false;
	bool ok = ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1;
	X509_free(x);
	if (!ok)
		return false;
	*not_after = (int64_t)timegm(&tm);
	*left = *not_after - now_realtime_s();
	return true;
}

static void update_expiry_metrics(struct eg_daemon *d)
{
	const struct eg_strlist *files = &d->cfg->mtls.cert_files;

	for (size_t i = 0; d->metrics && i < files->n; i++) {
		int64_t left, na;
		if (cert_seconds_left(files->v[i], &left, &na))
			eg_metric_set(d->metrics, "edgegate_cert_expiry_days", "file", files->v[i], (double)left / 86400.0);
		else
			log_warn("mtls: cert_files %s: cannot read a certificate", files->v[i]);
	}
}

/* At most once per recheck interval, and by one thread at a time. */
static void maybe_recheck(struct mtls_state *s)
{
	uint64_t now = now_mono_ns();
	bool expiry = false;
	char err[256];

	/* Not due (nearly every call): no lock. The two are written under the lock, read
	 * here without it: a stale pair only delays or brings forward one recheck. */
	if (now - __atomic_load_n(&s->last_check_ns, __ATOMIC_RELAXED) <
	    __atomic_load_n(&s->recheck_ns, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&s->lock);
	if (s->checking || now - s->last_check_ns < s->recheck_ns) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->checking = true;
	__atomic_store_n(&s->last_check_ns, now, __ATOMIC_RELAXED);
	if (now - s->last_expiry_ns >= EXPIRY_REFRESH_NS) {
		s->last_expiry_ns = now;
		expiry = true;
	}
	pthread_mutex_unlock(&s->lock);

	reload(s, false, err, sizeof(err));
	if (expiry)
		update_expiry_metrics(s->d);

	pthread_mutex_lock(&s->lock);
	s->checking = false;
	pthread_mutex_unlock(&s->lock);
}

/* --- parsing the certificate nginx forwarded -------------------------------------------------------- */

static void sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 32;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
		abort(); /* cannot happen with a working libcrypto */
}

static void hash_label(const uint8_t h[32], char out[72])
{
	memcpy(out, "sha256:", 7);
	hex_encode(h, 32, out + 7);
}

static char *name_rfc4514(const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL, *p;
	long n;

	if (!b)
		return NULL;
	/* the same rendering as nginx's $ssl_client_s_dn, so operators can copy from logs */
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_get_mem_data(b, &p);
		if (n >= 0 && memchr(p, '\0', (size_t)n) == NULL) {
			out = xmalloc((size_t)n + 1);
			memcpy(out, p, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

/* IA5String SAN values go into upstream headers: printable ASCII only. */
static bool printable_ascii(const unsigned char *s, int len)
{
	if (len <= 0)
		return false;
	for (int i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

static void add_san(struct eg_cert_identity *c, char *s)
{
	c->sans = realloc(c->sans, (c->n_sans + 1) * sizeof(*c->sans));
	if (!c->sans)
		abort();
	c->sans[c->n_sans++] = s;
}

/* DNS, email, URI and IP SANs; other kinds are ignored. -1 on a malformed value. */
static int collect_sans(X509 *x, struct eg_cert_identity *c)
{
	int crit = 0, idx = -1;
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, &idx);
	int rc = 0;

	if (!gens)
		return crit == -1 ? 0 : -1; /* -1: absent; -2: present more than once */
	for (int i = 0; i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *prefix = NULL;
		const ASN1_IA5STRING *s = NULL;
		switch (g->type) {
		case GEN_DNS: prefix = "DNS:"; s = g->d.dNSName; break;
		case GEN_EMAIL: prefix = "email:"; s = g->d.rfc822Name; break;
		case GEN_URI: prefix = "URI:"; s = g->d.uniformResourceIdentifier; break;
		case GEN_IPADD: {
			char ip[INET6_ADDRSTRLEN];
			const ASN1_OCTET_STRING *o = g->d.iPAddress;
			int af = o->length == 4 ? AF_INET : o->length == 16 ? AF_INET6 : 0;
			if (!af || !inet_ntop(af, o->data, ip, sizeof(ip)))
				rc = -1;
			else
				add_san(c, xasprintf("IP:%s", ip));
			continue;
		}
		default:
			continue;
		}
		if (!printable_ascii(s->data, s->length))
			rc = -1;
		else
			add_san(c, xasprintf("%s%.*s", prefix, s->length, (const char *)s->data));
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

static struct eg_cert_identity *identity_of(X509 *x, const char **why)
{
	struct eg_cert_identity *c = xcalloc(1, sizeof(*c));
	unsigned char *der = NULL;
	uint8_t h[32];
	int n;

	c->subject = name_rfc4514(X509_get_subject_name(x));
	c->issuer = name_rfc4514(X509_get_issuer_name(x));
	if (!c->subject || !c->issuer)
		goto bad;
	n = i2d_X509(x, &der);
	if (n <= 0)
		goto bad;
	sha256(der, (size_t)n, h);
	OPENSSL_free(der);
	der = NULL;
	hash_label(h, c->fingerprint);
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (n <= 0)
		goto bad;
	sha256(der, (size_t)n, h);
	OPENSSL_free(der);
	hash_label(h, c->spki);
	if (collect_sans(x, c) != 0)
		goto bad;
	return c;
bad:
	*why = "bad_client_cert";
	eg_cert_identity_free(c);
	return NULL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One PEM certificate in text[0..n): whitespace, "-----BEGIN CERTIFICATE-----", lines of
 * base64 only (no PEM headers, no blank lines), "-----END CERTIFICATE-----", whitespace.
 * The body, without its line breaks, goes to b64 (n bytes). Its length, or -1.
 * Written here rather than PEM_read_bio: it is the same text nginx writes, read more
 * strictly, without a BIO (tools/bench/mtlsbench: 9.4 -> 1.5 us). */
static long pem_body(const char *text, size_t n, char *b64)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----", end_line[] = "-----END CERTIFICATE-----";
	const char *p = text, *end = text + n, *nl;
	long o = 0;

	while (p < end && is_space(*p))
		p++;
	if ((size_t)(end - p) < sizeof(begin) - 1 || memcmp(p, begin, sizeof(begin) - 1) != 0)
		return -1;
	p += sizeof(begin) - 1;
	if (p < end && *p == '\r')
		p++;
	if (p >= end || *p != '\n')
		return -1;
	p++;
	for (;;) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end; /* the last line: only the END line may end the text */
		const char *le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
		if ((size_t)(le - p) == sizeof(end_line) - 1 && memcmp(p, end_line, sizeof(end_line) - 1) == 0)
			break;
		if (nl == end || le == p)
			return -1; /* no END line, or a blank one (where PEM headers would end) */
		for (const char *q = p; q < le; q++) {
			char c = *q;
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
			      c == '/' || c == '='))
				return -1; /* a header line ("Proc-Type: ..."), spaces, anything else */
			b64[o++] = c;
		}
		p = nl + 1;
	}
	for (p = nl; p < end; p++)
		if (!is_space(*p))
			return -1;
	return o;
}

/* Decodes $ssl_client_escaped_cert and parses exactly one PEM certificate: nothing
 * before it but whitespace, no PEM headers, DER with no trailing bytes, nothing after
 * it but whitespace. The fingerprint must be of exactly the bytes nginx saw. */
static X509 *parse_escaped(const char *hdr, size_t len, const char **why)
{
	char *pem = NULL, *b64 = NULL;
	unsigned char *der = NULL;
	const unsigned char *q;
	long n, blen, dlen;
	X509 *x = NULL;

	*why = "bad_client_cert";
	if (len == 0 || len > MAX_CERT_HEADER)
		return NULL;
	pem = xmalloc(len + 1);
	n = pct_decode(hdr, len, pem);
	if (n < 0)
		goto out;
	b64 = xmalloc((size_t)n + 1);
	blen = pem_body(pem, (size_t)n, b64);
	if (blen <= 0)
		goto out;
	der = xmalloc((size_t)blen);
	dlen = b64_decode(b64, (size_t)blen, der); /* strict: padding only at the end, canonical */
	if (dlen <= 0)
		goto out;
	q = der;
	x = d2i_X509(NULL, &q, dlen);
	if (x && q != der + dlen) {
		X509_free(x);
		x = NULL;
	}
out:
	ERR_clear_error(); /* failures here are answers, not errors for the next caller */
	free(der);
	free(b64);
	free(pem);
	return x;
}

struct eg_cert_identity *eg_mtls_parse_escaped(const char *hdr, size_t len, const char **why)
{
	X509 *x = parse_escaped(hdr, len, why);
	struct eg_cert_identity *c = x ? identity_of(x, why) : NULL;

	X509_free(x);
	return c;
}

/* --- revocation and validity checks ---------------------------------------------------------------- */

static bool crl_revoked(struct mtls_state *s, X509 *x)
{
	const X509_NAME *issuer = X509_get_issuer_name(x);
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);

	for (size_t i = 0; i < s->n_crl; i++) {
		STACK_OF(X509_CRL) *cs = s->crl[i].crls;
		for (int k = 0; cs && k < sk_X509_CRL_num(cs); k++) {
			X509_CRL *crl = sk_X509_CRL_value(cs, k);
			X509_REVOKED *rev = NULL;
			if (X509_NAME_cmp(X509_CRL_get_issuer(crl), issuer) != 0)
				continue;
			/* 1: revoked; 2: listed as removeFromCRL (no longer revoked) */
			if (X509_CRL_get0_by_serial(crl, &rev, serial) == 1)
				return true;
		}
	}
	return false;
}

static bool revoked(struct mtls_state *s, X509 *x, const struct eg_cert_identity *c)
{
	uint8_t fp[32], spki[32];
	bool r = false;

	if (!s)
		return false;
	if (hex_decode(c->fingerprint + 7, fp, 32) != 0 || hex_decode(c->spki + 7, spki, 32) != 0)
		return true; /* cannot happen; fail closed */
	pthread_mutex_lock(&s->lock);
	/* an entry may name the certificate or its key (SPKI hash) */
	if (s->n_revoked && (bsearch(fp, s->revoked, s->n_revoked, 32, cmp32) ||
			     bsearch(spki, s->revoked, s->n_revoked, 32, cmp32)))
		r = true;
	if (!r)
		r = crl_revoked(s, x);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* nginx checked the dates at the handshake, but a kept-alive or resumed TLS session
 * can outlive a short-lived certificate. */
static const char *validity_problem(X509 *x)
{
	time_t nb = time(NULL) + NOT_BEFORE_LEEWAY_S;

	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
		return "certificate_expired";
	if (X509_cmp_time(X509_get0_notBefore(x), &nb) >= 0)
		return "certificate_not_yet_valid";
	return NULL;
}

/* A certificate time as UNIX seconds (whole seconds: a fraction is dropped). */
static bool time_of(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* When the outcome for x holds, as far as time goes: [*from, *until). An empty window
 * (from >= until) is not cached. validity_problem's tests, inverted: valid while
 * notBefore < now + leeway and now < notAfter. */
static void outcome_window(X509 *x, const char *bad, int64_t now, int64_t *from, int64_t *until)
{
	int64_t nb, na;

	*from = now;
	*until = now + CACHE_REFUSE_MAX_S;
	if (!x)
		return; /* unparsable: the same bytes stay unparsable */
	if (!time_of(X509_get0_notBefore(x), &nb) || !time_of(X509_get0_notAfter(x), &na)) {
		*until = now; /* not cached */
		return;
	}
	if (!bad) {
		*from = nb - NOT_BEFORE_LEEWAY_S + 1;
		*until = min64(na, now + CACHE_ALLOW_MAX_S);
	} else if (strcmp(bad, "certificate_expired") == 0) {
		*from = na;
	} else if (strcmp(bad, "certificate_not_yet_valid") == 0) {
		*until = min64(*until, nb - NOT_BEFORE_LEEWAY_S + 1);
	}
	if (*from > now)
		*until = *from; /* the clock disagrees with the check just made: not cached */
}

/* The full check of a header: parse, identity, dates, revocation. 1 or -1 as
 * eg_mtls_identity_from; [*from, *until) as outcome_window. */
static int decide(struct mtls_state *s, const char *cert_hdr, size_t len, int64_t now, struct eg_cert_identity **out,
		  const char **why, int64_t *from, int64_t *until)
{
	X509 *x = parse_escaped(cert_hdr, len, why);
	struct eg_cert_identity *c = x ? identity_of(x, why) : NULL;
	const char *bad = c ? validity_problem(x) : *why;

	if (c && !bad && revoked(s, x, c))
		bad = "certificate_revoked";
	outcome_window(c ? x : NULL, bad, now, from, until);
	X509_free(x);
	if (bad) {
		*why = bad;
		eg_cert_identity_free(c);
		return -1;
	}
	c->verified = true;
	*out = c;
	return 1;
}

int eg_mtls_identity_from(struct eg_daemon *d, const char *verify, const char *cert_hdr,
			  struct eg_cert_identity **out, const char **why)
{
	struct mtls_state *s;
	int64_t now, from, until;
	uint64_t gen = 0;
	int rc = 0;

	*out = NULL;
	if (!verify || strcmp(verify, "SUCCESS") != 0)
		return 0; /* NONE, FAILED:..., or no header: no verified certificate */
	s = d ? state_of(d) : NULL; /* after that test: a verdict without a certificate does no lookup */
	if (!cert_hdr || !*cert_hdr) {
		/* nginx says verified but did not forward it: a broken include; never allow */
		*why = "client_cert_missing";
		return -1;
	}
	size_t len = strlen(cert_hdr);
	now = now_realtime_s();
	if (s) {
		maybe_recheck(s);
		/* before the lists are read (in decide): an outcome decided under lists that
		 * a reload then replaces carries the old generation, and is never believed */
		gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
		rc = eg_certcache_get(s->cache, cert_hdr, len, gen, now, out, why);
	}
	if (d && d->metrics && s)
		eg_metric_inc(d->metrics, "edgegate_mtls_cache_total", "result", rc ? "hit" : "miss", NULL, NULL, 1);
	if (rc == 0) {
		rc = decide(s, cert_hdr, len, now, out, why, &from, &until);
		if (s)
			eg_certcache_put(s->cache, cert_hdr, len, gen, from, until, rc == 1 ? *out : NULL, *why);
	}
	if (rc < 0 && d && d->metrics)
		eg_metric_inc(d->metrics, "edgegate_mtls_rejected_total", "reason", *why, NULL, NULL, 1);
	return rc;
}

int eg_mtls_identity(struct eg_daemon *d, const struct eg_req *r, struct eg_cert_identity **out, const char **why)
{
	bool dup_v = false, dup_c = false;

	*out = NULL;
	const struct eg_proxy_profile *p = r->proxy ? r->proxy : eg_proxy_default();
	if (!r->peer_trusted || !p->cert || !p->cert_verify)
		return 0; /* anyone could send these headers, or this proxy does not set them */
	const char *verify = eg_proxy_optional(r, p->cert_verify, &dup_v);
	const char *cert = eg_proxy_optional(r, p->cert, &dup_c);
	if (dup_v || dup_c) {
		*why = "bad_client_cert";
		return -1;
	}
	return eg_mtls_identity_from(d, verify, cert, out, why);
}

/* --- RFC 8705 certificate-bound tokens --------------------------------------------------------------- */

bool eg_mtls_token_binding_ok(const json_t *claims, const struct eg_cert_identity *cert)
{
	const json_t *cnf = json_object_get(claims, "cnf");
	uint8_t want[b64url_decoded_max(64)], have[32];

	if (!cnf)
		return true; /* not a bound token */
	/* a confirmation we cannot check (malformed, or another method such as DPoP's jkt)
	 * must not degrade into a plain bearer token */
	const json_t *t = json_object_get(cnf, "x5t#S256");
	if (!json_is_object(cnf) || !json_is_string(t))
		return false;
	if (!cert || !cert->verified || strncmp(cert->fingerprint, "sha256:", 7) != 0)
		return false;
	size_t len = json_string_length(t);
	if (len != 43) /* base64url of 32 bytes, no padding */
		return false;
	if (b64url_decode(json_string_value(t), len, want) != 32)
		return false;
	if (hex_decode(cert->fingerprint + 7, have, sizeof(have)) != 0)
		return false;
	return ct_equal(want, have, 32);
}

/* --- lifetime ---------------------------------------------------------------------------------------- */

void eg_mtls_set_recheck_ms(struct eg_daemon *d, unsigned ms)
{
	struct mtls_state *s = state_of(d);

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->recheck_ns, (uint64_t)ms * 1000000ull, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_check_ns, ms ? now_mono_ns() : 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->lock);
}

static void state_free(struct mtls_state *s)
{
	if (!s)
		return;
	free(s->revoked);
	for (size_t i = 0; i < s->n_crl; i++) {
		free(s->crl[i].path);
		crls_free(s->crl[i].crls);
	}
	free(s->crl);
	eg_certcache_free(s->cache);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int eg_mtls_init(struct eg_daemon *d, char *err, size_t errlen)
{
	const struct eg_mtls_config *m = &d->cfg->mtls;
	struct mtls_state *s = xcalloc(1, sizeof(*s));
	int slot = -1;

	s->d = d;
	pthread_mutex_init(&s->lock, NULL);
	s->cache = eg_certcache_new(CACHE_ALLOWED, CACHE_REFUSED);
	s->recheck_ns = 1000000000ull;
	s->n_crl = m->crl_files.n;
	s->crl = xcalloc(s->n_crl ? s->n_crl : 1, sizeof(*s->crl));
	for (size_t i = 0; i < s->n_crl; i++)
		s->crl[i].path = xstrdup(m->crl_files.v[i]);
	if (reload(s, true, err, errlen) != 0) {
		state_free(s);
		return -1;
	}
	for (size_t i = 0; i < m->cert_files.n; i++) {
		int64_t left, na;
		if (!cert_seconds_left(m->cert_files.v[i], &left, &na))
			log_warn("mtls: cert_files %s: cannot read a certificate", m->cert_files.v[i]);
		else if (left < 86400)
			log_warn("mtls: certificate %s expires in %lld hours", m->cert_files.v[i], (long long)(left / 3600));
	}
	if (d->metrics) {
		eg_metric_help(d->metrics, "edgegate_cert_expiry_days", "gauge",
			       "days until the certificate in a configured mtls.cert_files entry expires");
		eg_metric_help(d->metrics, "edgegate_mtls_rejected_total", "counter",
			       "verified client certificates refused by edgegated, by reason");
		eg_metric_help(d->metrics, "edgegate_mtls_cache_total", "counter",
			       "client-certificate outcome cache lookups (hit: no parsing)");
	}
	update_expiry_metrics(d);
	s->last_expiry_ns = now_mono_ns();
	s->last_check_ns = now_mono_ns();

	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < MAX_STATES; i++) {
		struct mtls_state *old = registry[i]; /* writers hold registry_lock */

		if (old && old->d == d) {
			registry_set(i, NULL);
			state_free(old); /* re-init of the same daemon */
			old = NULL;
		}
		if (!old && slot < 0)
			slot = i;
	}
	if (slot >= 0)
		registry_set(slot, s);
	pthread_mutex_unlock(&registry_lock);
	if (slot < 0) {
		snprintf(err, errlen, "too many daemon instances");
		state_free(s);
		return -1;
	}
	return 0;
}

void eg_mtls_free(struct eg_daemon *d)
{
	struct mtls_state *s = NULL;

	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < MAX_STATES; i++)
		if (registry[i] && registry[i]->d == d) {
			s = registry[i];
			registry_set(i, NULL);
		}
	pthread_mutex_unlock(&registry_lock);
	state_free(s);
}

/* SIGHUP: every cached outcome is decided again. The generation first (lock-free, and an
 * outcome being decided right now is then stored under the old one), then the memory. */
void eg_mtls_cache_clear(struct eg_daemon *d)
{
	struct mtls_state *s = state_of(d);

	if (!s)
		return;
	__atomic_add_fetch(&s->gen, 1, __ATOMIC_RELEASE);
	eg_certcache_clear(s->cache);
}

/* For the daemon's tick: keeps the expiry gauge and the lists fresh without traffic. */
void eg_mtls_periodic(struct eg_daemon *d)
{
	struct mtls_state *s = state_of(d);

	if (s)
		maybe_recheck(s);
}

int eg_mtls_revoked_count(struct eg_daemon *d)
{
	struct mtls_state *s = state_of(d);
	int n;

	if (!s)
		return -1;
	pthread_mutex_lock(&s->lock);
	n = (int)s->n_revoked;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* {"revoked_fingerprints":N,"crls":N,"certs":[{"file","not_after","days_left"}]} */
json_t *eg_mtls_status_json(struct eg_daemon *d)
{
	struct mtls_state *s = state_of(d);
	json_t *o = json_object(), *certs = json_array();
	int crls = 0;

	if (s) {
		pthread_mutex_lock(&s->lock);
		for (size_t i = 0; i < s->n_crl; i++)
			crls += s->crl[i].crls ? sk_X509_CRL_num(s->crl[i].crls) : 0;
		json_object_set_new(o, "revoked_fingerprints", json_integer((json_int_t)s->n_revoked));
		pthread_mutex_unlock(&s->lock);
		json_object_set_new(o, "crls", json_integer(crls));
	}
	for (size_t i = 0; i < d->cfg->mtls.cert_files.n; i++) {
		const char *f = d->cfg->mtls.cert_files.v[i];
		int64_t left, na;
		if (cert_seconds_left(f, &left, &na))
			json_array_append_new(certs, json_pack("{s:s,s:I,s:f}", "file", f, "not_after", (json_int_t)na,
							       "days_left", (double)left / 86400.0));
		else
			json_array_append_new(certs, json_pack("{s:s,s:s}", "file", f, "error", "unreadable"));
	}
	json_object_set_new(o, "certs", certs);
	return o;
}
