/* test_mtls.c - client certificates from nginx headers: decoding, parsing, identity
 * fields, revocation (fingerprint list with reload, CRL PEM/DER), validity, RFC 8705
 * binding, expiry metric and status. Certificates in tests/unit/data/mtls were made
 * by tools/mtls/edgegate-mtls (see gen.sh there); expected fingerprints by the
 * openssl CLI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "testutil.h"
#include "config.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "identity.h"
#include "certcache.h"
#include "metrics.h"
#include "mtls.h"
#include "util.h"

/* Exported by mtls.c for tests (not in mtls.h). */
int eg_mtls_identity_from(struct eg_daemon *d, const char *verify, const char *cert_hdr,
			  struct eg_cert_identity **out, const char **why);
struct eg_cert_identity *eg_mtls_parse_escaped(const char *hdr, size_t len, const char **why);
void eg_mtls_set_recheck_ms(struct eg_daemon *d, unsigned ms);
json_t *eg_mtls_status_json(struct eg_daemon *d);
int eg_mtls_revoked_count(struct eg_daemon *d);
void eg_mtls_cache_clear(struct eg_daemon *d);

/* --- helpers ------------------------------------------------------------------------------ */

static char *data_path(const char *name)
{
	const char *root = getenv("EG_ROOT");
	return xasprintf("%s/tests/unit/data/mtls/%s", root ? root : ".", name);
}

static char *slurp(const char *name)
{
	char *p = data_path(name);
	size_t len;
	char *s = read_file(p, 1 << 20, &len);
	if (!s)
		fail_msg("cannot read %s", p);
	free(p);
	/* expected-value files end with a newline */
	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

/* Like nginx's $ssl_client_escaped_cert: everything but unreserved characters escaped. */
static char *escaped(const char *name)
{
	char *pem = data_path(name);
	size_t len;
	char *s = read_file(pem, 1 << 20, &len);
	free(pem);
	assert_non_null(s);
	char *e = pct_encode(s);
	free(s);
	return e;
}

/* Only newlines and spaces escaped; '+', '/' and '=' left as they are. */
static char *lightly_escaped(const char *name)
{
	char *pem = data_path(name);
	size_t len;
	char *s = read_file(pem, 1 << 20, &len);
	free(pem);
	assert_non_null(s);
	char *e = xcalloc(1, len * 3 + 1), *o = e;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			o += sprintf(o, "%%0A");
		else if (s[i] == ' ')
			o += sprintf(o, "%%20");
		else
			*o++ = s[i];
	}
	free(s);
	return e;
}

struct fixture {
	struct eg_config cfg;
	struct eg_daemon d;
	char revoked_path[64];
};

static struct fixture *fixture_new(void)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->d.cfg = &f->cfg;
	f->d.metrics = eg_metrics_new();
	strcpy(f->revoked_path, "/tmp/eg-test-mtls-XXXXXX");
	int fd = mkstemp(f->revoked_path);
	assert_true(fd >= 0);
	close(fd);
	return f;
}

static void fixture_free(struct fixture *f)
{
	eg_mtls_free(&f->d);
	unlink(f->revoked_path);
	for (size_t i = 0; i < f->cfg.mtls.crl_files.n; i++)
		free(f->cfg.mtls.crl_files.v[i]);
	free(f->cfg.mtls.crl_files.v);
	for (size_t i = 0; i < f->cfg.mtls.cert_files.n; i++)
		free(f->cfg.mtls.cert_files.v[i]);
	free(f->cfg.mtls.cert_files.v);
	eg_metrics_free(f->d.metrics);
	free(f);
}

static void strlist1(struct eg_strlist *l, char *v)
{
	l->v = xcalloc(1, sizeof(char *));
	l->v[0] = v;
	l->n = 1;
}

static void write_text(const char *path, const char *text)
{
	/* atomically, as the tool does; a new inode is a change even within one second */
	assert_int_equal(write_file_atomic(path, text, strlen(text), 0600), 0);
}

/* identity of a data certificate through the full header path */
static int ident(struct eg_daemon *d, const char *crt, struct eg_cert_identity **out, const char **why)
{
	char *e = escaped(crt);
	int rc = eg_mtls_identity_from(d, "SUCCESS", e, out, why);
	free(e);
	return rc;
}

/* --- parsing ------------------------------------------------------------------------------ */

static void test_parse_client_fields(void **state)
{
	const char *why = NULL;
	struct eg_cert_identity *c = NULL;
	char *fp = slurp("client.fp"), *spki = slurp("client.spki");

	assert_int_equal(ident(NULL, "client.crt", &c, &why), 1);
	assert_non_null(c);
	assert_true(c->verified);
	assert_string_equal(c->subject, "CN=client,O=edgegate");
	assert_string_equal(c->issuer, "CN=edgegate test CA,O=edgegate");
	assert_string_equal(c->fingerprint, fp);
	assert_string_equal(c->spki, spki);
	assert_string_not_equal(c->fingerprint, c->spki);
	assert_int_equal(c->n_sans, 5);
	assert_string_equal(c->sans[0], "DNS:svc-a.example.test");
	assert_string_equal(c->sans[1], "email:svc-a@example.test");
	assert_string_equal(c->sans[2], "URI:spiffe://example.test/ns/a/sa/b");
	assert_string_equal(c->sans[3], "IP:127.0.0.1");
	assert_string_equal(c->sans[4], "IP:::1");
	eg_cert_identity_free(c);
	free(fp);
	free(spki);
}

static void test_parse_no_sans(void **state)
{
	const char *why = NULL;
	struct eg_cert_identity *c = NULL;
	char *fp = slurp("plain.fp");

	assert_int_equal(ident(NULL, "plain.crt", &c, &why), 1);
	assert_string_equal(c->subject, "CN=plain,O=edgegate");
	assert_int_equal(c->n_sans, 0);
	assert_null(c->sans);
	assert_string_equal(c->fingerprint, fp);
	eg_cert_identity_free(c);
	free(fp);
}

static void test_escaping_variants(void **state)
{
	const char *why = NULL;
	char *full = escaped("client.crt"), *light = lightly_escaped("client.crt");
	char *fp = slurp("client.fp");

	/* fully escaped has no raw '/', '+' or '=' left */
	assert_null(strchr(full, '/'));
	assert_null(strchr(full, '\n'));
	struct eg_cert_identity *a = eg_mtls_parse_escaped(full, strlen(full), &why);
	struct eg_cert_identity *b = eg_mtls_parse_escaped(light, strlen(light), &why);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->fingerprint, fp);
	assert_string_equal(b->fingerprint, fp);
	/* parse_escaped alone does not say "verified": only the header path does */
	assert_false(a->verified);
	eg_cert_identity_free(a);
	eg_cert_identity_free(b);
	free(full);
	free(light);
	free(fp);
}

static void test_verify_header_states(void **state)
{
	const char *why = NULL;
	struct eg_cert_identity *c = (struct eg_cert_identity *)1;
	char *e = escaped("client.crt");

	assert_int_equal(eg_mtls_identity_from(NULL, NULL, NULL, &c, &why), 0);
	assert_null(c);
	assert_int_equal(eg_mtls_identity_from(NULL, "NONE", NULL, &c, &why), 0);
	/* only SUCCESS counts: a failed verification with a certificate is no identity */
	assert_int_equal(eg_mtls_identity_from(NULL, "FAILED:certificate has expired", e, &c, &why), 0);
	assert_null(c);
	assert_int_equal(eg_mtls_identity_from(NULL, "success", e, &c, &why), 0);
	assert_int_equal(eg_mtls_identity_from(NULL, "SUCCESS ", e, &c, &why), 0);
	/* nginx says verified but the certificate was not forwarded: deny, never allow */
	assert_int_equal(eg_mtls_identity_from(NULL, "SUCCESS", NULL, &c, &why), -1);
	assert_string_equal(why, "client_cert_missing");
	assert_int_equal(eg_mtls_identity_from(NULL, "SUCCESS", "", &c, &why), -1);
	assert_null(c);
	free(e);
}

static void test_untrusted_peer_ignored(void **state)
{
	/* headers from a peer that is not our nginx are never read (conn stays untouched) */
	struct eg_req r = { .conn = NULL, .peer_trusted = false };
	struct eg_cert_identity *c = NULL;
	const char *why = NULL;

	assert_int_equal(eg_mtls_identity(NULL, &r, &c, &why), 0);
	assert_null(c);
}

static char *b64(const unsigned char *in, int len)
{
	char *o = xcalloc(1, (size_t)(len / 3 + 2) * 4 + 1);
	EVP_EncodeBlock((unsigned char *)o, in, len);
	return o;
}

/* A PEM wrapping of arbitrary DER bytes, escaped. */
static char *pem_of(const char *label, const unsigned char *der, int len)
{
	char *body = b64(der, len);
	char *pem = xasprintf("-----BEGIN %s-----\n%s\n-----END %s-----\n", label, body, label);
	char *e = pct_encode(pem);
	free(body);
	free(pem);
	return e;
}

static unsigned char *client_der(int *len)
{
	char *p = data_path("client.crt");
	size_t n;
	char *pem = read_file(p, 1 << 20, &n);
	free(p);
	/* between the armour lines: base64 with newlines */
	char *s = strstr(pem, "-----\n") + 6, *end = strstr(s, "-----END");
	char *clean = xcalloc(1, (size_t)(end - s) + 1), *o = clean;
	for (char *q = s; q < end; q++)
		if (*q != '\n')
			*o++ = *q;
	unsigned char *der = xcalloc(1, strlen(clean));
	long dl = b64_decode(clean, strlen(clean), der);
	assert_true(dl > 100);
	*len = (int)dl;
	free(clean);
	free(pem);
	return der;
}

static void expect_bad(const char *hdr)
{
	const char *why = NULL;
	struct eg_cert_identity *c = NULL;
	int rc = eg_mtls_identity_from(NULL, "SUCCESS", hdr, &c, &why);
	if (rc != -1)
		fail_msg("accepted a malformed certificate header: %.80s", hdr);
	assert_null(c);
	assert_string_equal(why, "bad_client_cert");
}

static void test_malformed_inputs(void **state)
{
	char *good = escaped("client.crt");
	size_t n = strlen(good);
	char *s;
	int dlen;
	unsigned char *der = client_der(&dlen);

	expect_bad("-----BEGIN%20CERTIFICATE-----");
	expect_bad("%ZZ");
	expect_bad("%0");
	expect_bad("garbage");
	/* a decoded NUL anywhere */
	s = xasprintf("%s%%00", good);
	expect_bad(s);
	free(s);
	/* truncated */
	s = xstrdup(good);
	s[n / 2] = '\0';
	expect_bad(s);
	free(s);
	/* leading garbage, trailing garbage, two certificates */
	s = xasprintf("x%s", good);
	expect_bad(s);
	free(s);
	s = xasprintf("%sjunk", good);
	expect_bad(s);
	free(s);
	s = xasprintf("%s%s", good, good);
	expect_bad(s);
	free(s);
	/* a flipped base64 character in the body */
	s = xstrdup(good);
	char *body = strstr(s, "%0A") + 3;
	body[10] = body[10] == 'A' ? 'B' : 'A';
	expect_bad(s);
	free(s);
	/* DER with a trailing byte inside the PEM */
	unsigned char *longer = xcalloc(1, (size_t)dlen + 1);
	memcpy(longer, der, (size_t)dlen);
	s = pem_of("CERTIFICATE", longer, dlen + 1);
	expect_bad(s);
	free(s);
	free(longer);
	/* the right bytes under another label */
	s = pem_of("X509 CERTIFICATE", der, dlen);
	expect_bad(s);
	free(s);
	s = pem_of("PUBLIC KEY", der, dlen);
	expect_bad(s);
	free(s);
	/* and the same bytes under the right label are fine (the helper itself works) */
	s = pem_of("CERTIFICATE", der, dlen);
	const char *why = NULL;
	struct eg_cert_identity *c = NULL;
	assert_int_equal(eg_mtls_identity_from(NULL, "SUCCESS", s, &c, &why), 1);
	eg_cert_identity_free(c);
	free(s);
	/* whitespace around is fine */
	s = xasprintf("%%0A%%20%s%%0A%%0A", good);
	c = NULL;
	assert_int_equal(eg_mtls_identity_from(NULL, "SUCCESS", s, &c, &why), 1);
	eg_cert_identity_free(c);
	free(s);
	/* oversized header */
	s = xcalloc(1, 70 * 1024 + 1);
	memset(s, 'A', 70 * 1024);
	expect_bad(s);
	free(s);
	free(der);
	free(good);
}

/* The armour as mtls.c reads it (pem_body): CRLF line ends and a missing final newline are
 * fine; PEM headers, blank lines, spaces inside the base64 and a wrong END label are not. */
static char *pem_variant(const char *from, const char *to, bool all)
{
	char *p = data_path("client.crt");
	size_t len;
	char *pem = read_file(p, 1 << 20, &len);
	free(p);
	char *out = xcalloc(1, len * 4 + 64), *o = out;
	const char *q = pem;
	size_t fl = strlen(from);
	bool done = false;
	while (*q) {
		if (!done && strncmp(q, from, fl) == 0) {
			o += sprintf(o, "%s", to);
			q += fl;
			done = !all;
		} else {
			*o++ = *q++;
		}
	}
	char *e = pct_encode(out);
	free(out);
	free(pem);
	return e;
}

static void test_pem_armour_forms(void **state)
{
	const char *why = NULL;
	struct eg_cert_identity *c = NULL;
	char *fp = slurp("client.fp"), *s;

	s = pem_variant("\n", "\r\n", true);
	assert_int_equal(eg_mtls_identity_from(NULL, "SUCCESS", s, &c, &why), 1);
	assert_string_equal(c->fingerprint, fp);
	eg_cert_identity_free(c);
	free(s);
	s = pem_variant("-----END CERTIFICATE-----\n", "-----END CERTIFICATE-----", false);
	assert_int_equal(eg_mtls_identity_from(NULL, "SUCCESS", s, &c, &why), 1);
	eg_cert_identity_free(c);
	free(s);
	s = pem_variant("-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\n", false);
	expect_bad(s);
	free(s);
	s = pem_variant("-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\n\n", false);
	expect_bad(s);
	free(s);
	s = pem_variant("-----END CERTIFICATE-----", "\n-----END CERTIFICATE-----", false);
	expect_bad(s);
	free(s);
	s = pem_variant("-----BEGIN CERTIFICATE-----\nMII", "-----BEGIN CERTIFICATE-----\nMI I", false);
	expect_bad(s);
	free(s);
	s = pem_variant("-----END CERTIFICATE-----", "-----END X509 CRL-----", false);
	expect_bad(s);
	free(s);
	s = pem_variant("-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE----- \n", false);
	expect_bad(s);
	free(s);
	free(fp);
}

static void test_validity_window(void **state)
{
	const char *why = NULL;
	struct eg_cert_identity *c = NULL;

	assert_int_equal(ident(NULL, "expired.crt", &c, &why), -1);
	assert_string_equal(why, "certificate_expired");
	assert_null(c);
	assert_int_equal(ident(NULL, "future.crt", &c, &why), -1);
	assert_string_equal(why, "certificate_not_yet_valid");
	assert_null(c);
}

/* --- revocation ------------------------------------------------------------------------- */

static void test_revoked_list_and_reload(void **state)
{
	struct fixture *f = fixture_new();
	char err[256] = "";
	const char *why = NULL;
	struct eg_cert_identity *c = NULL;
	char *rfp = slurp("revoked.fp"), *cfp = slurp("client.fp"), *pspki = slurp("plain.spki");

	f->cfg.mtls.revoked_file = f->revoked_path;
	char *text = xasprintf("# revoked\n\n  %s  # revoked 2026\n", rfp);
	write_text(f->revoked_path, text);
	free(text);
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), 0);
	assert_int_equal(eg_mtls_revoked_count(&f->d), 1);
	eg_mtls_set_recheck_ms(&f->d, 600000);

	assert_int_equal(ident(&f->d, "revoked.crt", &c, &why), -1);
	assert_string_equal(why, "certificate_revoked");
	assert_int_equal(ident(&f->d, "client.crt", &c, &why), 1);
	eg_cert_identity_free(c);

	/* the list changes: bare upper-case hex for the client, an SPKI entry for plain */
	char upper[65];
	for (int i = 0; i < 64; i++)
		upper[i] = (char)(cfp[7 + i] >= 'a' ? cfp[7 + i] - 32 : cfp[7 + i]);
	upper[64] = '\0';
	text = xasprintf("%s\r\n%s\n%s\n", rfp, upper, pspki);
	write_text(f->revoked_path, text);
	free(text);
	/* within the recheck interval the old list still answers */
	assert_int_equal(ident(&f->d, "client.crt", &c, &why), 1);
	eg_cert_identity_free(c);
	eg_mtls_set_recheck_ms(&f->d, 0);
	assert_int_equal(ident(&f->d, "client.crt", &c, &why), -1);
	assert_string_equal(why, "certificate_revoked");
	assert_int_equal(ident(&f->d, "plain.crt", &c, &why), -1);
	assert_int_equal(eg_mtls_revoked_count(&f->d), 3);

	/* a broken file keeps the previous list (a typo never un-revokes) */
	write_text(f->revoked_path, "sha256:1234\n");
	assert_int_equal(ident(&f->d, "client.crt", &c, &why), -1);
	assert_int_equal(eg_mtls_revoked_count(&f->d), 3);
	/* so does a vanished file */
	unlink(f->revoked_path);
	assert_int_equal(ident(&f->d, "client.crt", &c, &why), -1);

	/* an emptied list lets everyone back in */
	write_text(f->revoked_path, "# nothing revoked\n");
	assert_int_equal(ident(&f->d, "client.crt", &c, &why), 1);
	eg_cert_identity_free(c);
	assert_int_equal(ident(&f->d, "revoked.crt", &c, &why), 1);
	eg_cert_identity_free(c);
	assert_int_equal(eg_mtls_revoked_count(&f->d), 0);

	free(rfp);
	free(cfp);
	free(pspki);
	fixture_free(f);
}

/* Verdict threads check while the list is rewritten: no torn reads (ASan would
 * catch a freed list), and every answer is one of the two lists' answers. */
struct race {
	struct eg_daemon *d;
	char *hdr;
	volatile int stop;
	int bad;
};

static void *race_reader(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < 300; i++) {
		struct eg_cert_identity *c = NULL;
		const char *why = NULL;
		int rc = eg_mtls_identity_from(r->d, "SUCCESS", r->hdr, &c, &why);
		if (rc == 1)
			eg_cert_identity_free(c);
		else if (rc != -1 || strcmp(why, "certificate_revoked") != 0)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_concurrent_reload(void **state)
{
	struct fixture *f = fixture_new();
	char err[256] = "";
	char *cfp = slurp("client.fp");
	struct race r = { .d = &f->d, .hdr = escaped("client.crt") };
	pthread_t th[4];

	f->cfg.mtls.revoked_file = f->revoked_path;
	write_text(f->revoked_path, "");
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), 0);
	eg_mtls_set_recheck_ms(&f->d, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race_reader, &r), 0);
	for (int i = 0; i < 40; i++) {
		char *text = i % 2 ? xasprintf("%s\n", cfp) : xstrdup("# empty\n");
		write_text(f->revoked_path, text);
		free(text);
		usleep(500);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(r.bad, 0);
	/* the last write (i = 39) revoked the client */
	struct eg_cert_identity *c = NULL;
	const char *why = NULL;
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", r.hdr, &c, &why), -1);
	free(r.hdr);
	free(cfp);
	fixture_free(f);
}

/* The state registry is read without a lock: verdicts of one daemon (the client revoked
 * there) keep finding their own state while other daemons' states come and go in the
 * registry; a verdict without a certificate answers 0 throughout. */
struct churn {
	struct eg_daemon *d;
	char *hdr;
	int stop;
	int bad, checks;
};

static void *churn_reader(void *arg)
{
	struct churn *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		struct eg_cert_identity *c = NULL;
		const char *why = NULL;
		int rc = eg_mtls_identity_from(r->d, "SUCCESS", r->hdr, &c, &why);
		bool good = rc == -1 && why && strcmp(why, "certificate_revoked") == 0;

		if (rc == 1)
			eg_cert_identity_free(c);
		good = good && eg_mtls_identity_from(r->d, "NONE", NULL, &c, &why) == 0 && !c;
		if (!good)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&r->checks, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_registry_churn(void **state)
{
	struct fixture *f = fixture_new(), *other[3];
	char err[256] = "";
	char *cfp = slurp("client.fp");
	struct churn r = { .d = &f->d, .hdr = escaped("client.crt") };
	pthread_t th[2];

	f->cfg.mtls.revoked_file = f->revoked_path;
	write_text(f->revoked_path, cfp);
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, churn_reader, &r), 0);
	for (int round = 0; round < 30; round++) {
		for (int i = 0; i < 3; i++) { /* daemons without a revoked list: they would allow */
			other[i] = fixture_new();
			assert_int_equal(eg_mtls_init(&other[i]->d, err, sizeof(err)), 0);
		}
		for (int i = 0; i < 3; i++)
			fixture_free(other[i]);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_true(r.checks > 0);
	assert_int_equal(r.bad, 0);
	free(r.hdr);
	free(cfp);
	fixture_free(f);
}

static void test_revoked_file_errors_at_start(void **state)
{
	struct fixture *f = fixture_new();
	char err[256] = "";

	f->cfg.mtls.revoked_file = f->revoked_path;
	write_text(f->revoked_path, "sha256:zz\n");
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 1"));
	write_text(f->revoked_path, "sha256:0000000000000000000000000000000000000000000000000000000000000000 extra\n");
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), -1);
	write_text(f->revoked_path, "sha256:000000000000000000000000000000000000000000000000000000000000000g\n");
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), -1);
	f->cfg.mtls.revoked_file = "/nonexistent/revoked.txt";
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/revoked.txt"));
	fixture_free(f);
}

static void crl_case(const char *crl)
{
	struct fixture *f = fixture_new();
	char err[256] = "";
	const char *why = NULL;
	struct eg_cert_identity *c = NULL;

	strlist1(&f->cfg.mtls.crl_files, data_path(crl));
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), 0);
	assert_int_equal(ident(&f->d, "revoked.crt", &c, &why), -1);
	assert_string_equal(why, "certificate_revoked");
	assert_int_equal(ident(&f->d, "client.crt", &c, &why), 1);
	eg_cert_identity_free(c);
	/* the same serial from another issuer is not revoked by this CRL */
	assert_int_equal(ident(&f->d, "twin.crt", &c, &why), 1);
	eg_cert_identity_free(c);
	json_t *st = eg_mtls_status_json(&f->d);
	assert_int_equal(json_integer_value(json_object_get(st, "crls")), 1);
	json_decref(st);
	fixture_free(f);
}

static void test_crl_pem(void **state)
{
	crl_case("crl.pem");
}

static void test_crl_der(void **state)
{
	crl_case("crl.der");
}

static void test_crl_broken(void **state)
{
	struct fixture *f = fixture_new();
	char err[256] = "";

	write_text(f->revoked_path, "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
	strlist1(&f->cfg.mtls.crl_files, xstrdup(f->revoked_path));
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "revocation list"));
	/* a certificate is not a CRL */
	free(f->cfg.mtls.crl_files.v[0]);
	f->cfg.mtls.crl_files.v[0] = data_path("client.crt");
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), -1);
	fixture_free(f);
}

/* --- RFC 8705 binding ---------------------------------------------------------------------- */

static void test_token_binding(void **state)
{
	const char *why = NULL;
	struct eg_cert_identity *client = NULL, *plain = NULL;
	char *x5t = slurp("client.x5t");
	json_t *claims;

	assert_int_equal(ident(NULL, "client.crt", &client, &why), 1);
	assert_int_equal(ident(NULL, "plain.crt", &plain, &why), 1);
	assert_int_equal(strlen(x5t), 43);

	/* not bound: fine with or without a certificate */
	claims = json_pack("{s:s}", "sub", "svc");
	assert_true(eg_mtls_token_binding_ok(claims, NULL));
	assert_true(eg_mtls_token_binding_ok(claims, client));
	json_decref(claims);

	claims = json_pack("{s:s,s:{s:s}}", "sub", "svc", "cnf", "x5t#S256", x5t);
	assert_true(eg_mtls_token_binding_ok(claims, client));
	assert_false(eg_mtls_token_binding_ok(claims, plain));  /* another certificate */
	assert_false(eg_mtls_token_binding_ok(claims, NULL));   /* no certificate */
	client->verified = false;
	assert_false(eg_mtls_token_binding_ok(claims, client)); /* not verified by nginx */
	client->verified = true;
	json_decref(claims);

	/* malformed or unsupported confirmations never degrade to plain bearer */
	char *padded = xasprintf("%s=", x5t);
	char *hex = xstrdup(client->fingerprint + 7);
	const char *bad[] = { padded, hex, "", "DtUUMRRfeaHauiOuDQ5Z9DKOiXqGlLVK2h/OyjI2UiA" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		claims = json_pack("{s:{s:s}}", "cnf", "x5t#S256", bad[i]);
		assert_false(eg_mtls_token_binding_ok(claims, client));
		json_decref(claims);
	}
	claims = json_pack("{s:s}", "cnf", x5t);
	assert_false(eg_mtls_token_binding_ok(claims, client));
	json_decref(claims);
	claims = json_pack("{s:{s:i}}", "cnf", "x5t#S256", 1);
	assert_false(eg_mtls_token_binding_ok(claims, client));
	json_decref(claims);
	claims = json_pack("{s:{s:s}}", "cnf", "jkt", "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
	assert_false(eg_mtls_token_binding_ok(claims, client));
	json_decref(claims);

	free(padded);
	free(hex);
	free(x5t);
	eg_cert_identity_free(client);
	eg_cert_identity_free(plain);
}

/* --- expiry metric and status ------------------------------------------------------------------ */

static void test_expiry_metric_and_status(void **state)
{
	struct fixture *f = fixture_new();
	char err[256] = "";
	char *path = data_path("client.crt");
	size_t len;

	strlist1(&f->cfg.mtls.cert_files, xstrdup(path));
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), 0);
	char *text = eg_metrics_render(f->d.metrics, &len);
	char *want = xasprintf("edgegate_cert_expiry_days{file=\"%s\"} ", path);
	char *line = strstr(text, want);
	if (!line)
		fail_msg("no expiry gauge in:\n%s", text);
	double days = strtod(line + strlen(want), NULL);
	assert_true(days > 36000 && days < 36600);
	free(want);
	free(text);

	json_t *st = eg_mtls_status_json(&f->d);
	json_t *c0 = json_array_get(json_object_get(st, "certs"), 0);
	assert_string_equal(json_string_value(json_object_get(c0, "file")), path);
	assert_true(json_real_value(json_object_get(c0, "days_left")) > 36000);
	assert_true(json_integer_value(json_object_get(c0, "not_after")) > 4000000000LL);
	json_decref(st);
	free(path);
	fixture_free(f);
}


/* --- the outcome cache (certcache.c) ------------------------------------------------------ */

/* edgegate_mtls_cache_total{result="hit"|"miss"} as rendered */
static long cache_count(struct eg_daemon *d, const char *result)
{
	size_t len;
	char *text = eg_metrics_render(d->metrics, &len);
	char *want = xasprintf("edgegate_mtls_cache_total{result=\"%s\"} ", result);
	char *line = strstr(text, want);
	long n = line ? strtol(line + strlen(want), NULL, 10) : 0;
	free(want);
	free(text);
	return n;
}

static struct eg_cert_identity *test_identity(const char *subject)
{
	struct eg_cert_identity *c = xcalloc(1, sizeof(*c));
	c->verified = true;
	c->subject = xstrdup(subject);
	c->issuer = xstrdup("CN=ca");
	c->n_sans = 2;
	c->sans = xcalloc(2, sizeof(char *));
	c->sans[0] = xstrdup("DNS:a.test");
	c->sans[1] = xstrdup("URI:spiffe://x/y");
	strcpy(c->fingerprint, "sha256:00");
	return c;
}

/* The table itself: a hit needs the same bytes, the same generation and a time inside
 * the window; refusals are kept apart from allows. */
static void test_certcache_table(void **state)
{
	struct eg_certcache *cc = eg_certcache_new(16, 8);
	struct eg_cert_identity *id = test_identity("CN=one"), *out = NULL;
	const char *why = NULL;
	const char hdr[] = "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A", other[] = "-----BEGIN%20CERTIFICATE-----%0AAAAB%0A";
	size_t n = strlen(hdr);

	assert_int_equal(eg_certcache_get(cc, hdr, n, 1, 1000, &out, &why), 0);
	eg_certcache_put(cc, hdr, n, 1, 900, 1100, id, NULL);
	assert_int_equal(eg_certcache_get(cc, hdr, n, 1, 1000, &out, &why), 1);
	/* a copy the caller owns, equal in every field */
	assert_non_null(out);
	assert_ptr_not_equal(out, id);
	assert_ptr_not_equal(out->subject, id->subject);
	assert_string_equal(out->subject, "CN=one");
	assert_int_equal(out->n_sans, 2);
	assert_string_equal(out->sans[1], "URI:spiffe://x/y");
	assert_true(out->verified);
	eg_cert_identity_free(out);
	/* one byte different, same length: a miss (the bytes decide, not the hash) */
	assert_int_equal(strlen(other), n);
	assert_int_equal(eg_certcache_get(cc, other, n, 1, 1000, &out, &why), 0);
	/* a prefix, or the header and more: misses */
	assert_int_equal(eg_certcache_get(cc, hdr, n - 1, 1, 1000, &out, &why), 0);
	/* the window: from is in, until is out (notAfter passed); before from is out */
	assert_int_equal(eg_certcache_get(cc, hdr, n, 1, 900, &out, &why), 1);
	eg_cert_identity_free(out);
	assert_int_equal(eg_certcache_get(cc, hdr, n, 1, 899, &out, &why), 0);
	assert_int_equal(eg_certcache_get(cc, hdr, n, 1, 1100, &out, &why), 0);
	assert_null(out);
	/* the stale entry was dropped: back in the window it is gone, not revived */
	assert_int_equal(eg_certcache_get(cc, hdr, n, 1, 1000, &out, &why), 0);
	/* another generation (a list changed) */
	eg_certcache_put(cc, hdr, n, 1, 900, 1100, id, NULL);
	assert_int_equal(eg_certcache_get(cc, hdr, n, 2, 1000, &out, &why), 0);
	assert_int_equal(eg_certcache_get(cc, hdr, n, 1, 1000, &out, &why), 0); /* dropped */
	/* a refusal, and the same header's allow dropped with it */
	eg_certcache_put(cc, hdr, n, 3, 900, 1100, id, NULL);
	eg_certcache_put(cc, hdr, n, 4, 900, 1100, NULL, "certificate_revoked");
	why = NULL;
	assert_int_equal(eg_certcache_get(cc, hdr, n, 4, 1000, &out, &why), -1);
	assert_null(out);
	assert_string_equal(why, "certificate_revoked");
	assert_int_equal(eg_certcache_get(cc, hdr, n, 3, 1000, &out, &why), 0);
	/* not cached: empty windows, empty or oversized headers */
	eg_certcache_put(cc, other, n, 1, 1000, 1000, id, NULL);
	assert_int_equal(eg_certcache_get(cc, other, n, 1, 1000, &out, &why), 0);
	char *big = xcalloc(1, EG_CERTCACHE_MAX_HEADER + 2);
	memset(big, 'A', EG_CERTCACHE_MAX_HEADER + 1);
	eg_certcache_put(cc, big, EG_CERTCACHE_MAX_HEADER + 1, 1, 900, 1100, id, NULL);
	assert_int_equal(eg_certcache_get(cc, big, EG_CERTCACHE_MAX_HEADER + 1, 1, 1000, &out, &why), 0);
	eg_certcache_put(cc, big, EG_CERTCACHE_MAX_HEADER, 1, 900, 1100, id, NULL);
	assert_int_equal(eg_certcache_get(cc, big, EG_CERTCACHE_MAX_HEADER, 1, 1000, &out, &why), 1);
	eg_cert_identity_free(out);
	/* clear */
	eg_certcache_clear(cc);
	assert_int_equal(eg_certcache_get(cc, big, EG_CERTCACHE_MAX_HEADER, 1, 1000, &out, &why), 0);
	free(big);
	eg_cert_identity_free(id);
	eg_certcache_free(cc);
}

/* Refused headers, however many, never push out an allowed one; allowed ones are bounded
 * (least recently used goes). */
static void test_certcache_refusals_cannot_evict(void **state)
{
	struct eg_certcache *cc = eg_certcache_new(64, 16);
	struct eg_cert_identity *id = test_identity("CN=kept"), *out = NULL;
	const char *why = NULL;
	char *good[64];

	for (int i = 0; i < 64; i++) {
		good[i] = xasprintf("good-%d", i);
		eg_certcache_put(cc, good[i], strlen(good[i]), 7, 0, 5000, id, NULL);
	}
	for (int i = 0; i < 100000; i++) {
		char junk[32];
		int n = snprintf(junk, sizeof(junk), "junk-%d", i);
		eg_certcache_put(cc, junk, (size_t)n, 7, 0, 5000, NULL, "bad_client_cert");
	}
	int kept = 0;
	for (int i = 0; i < 64; i++) {
		if (eg_certcache_get(cc, good[i], strlen(good[i]), 7, 100, &out, &why) == 1)
			kept++;
		eg_cert_identity_free(out);
		out = NULL;
	}
	/* set-associative: a full table keeps what fits its sets; the refusals took none */
	assert_true(kept >= 32);
	int before = kept;
	/* a second round of junk changes nothing */
	for (int i = 0; i < 10000; i++) {
		char junk[32];
		int n = snprintf(junk, sizeof(junk), "more-junk-%d", i);
		eg_certcache_put(cc, junk, (size_t)n, 7, 0, 5000, NULL, "bad_client_cert");
	}
	kept = 0;
	for (int i = 0; i < 64; i++) {
		if (eg_certcache_get(cc, good[i], strlen(good[i]), 7, 100, &out, &why) == 1)
			kept++;
		eg_cert_identity_free(out);
		out = NULL;
	}
	assert_int_equal(kept, before);
	/* the refused table holds at most its size: the earliest junk is gone */
	int junk_hits = 0;
	for (int i = 0; i < 1000; i++) {
		char junk[32];
		int n = snprintf(junk, sizeof(junk), "junk-%d", i);
		if (eg_certcache_get(cc, junk, (size_t)n, 7, 100, &out, &why) == -1)
			junk_hits++;
	}
	assert_int_equal(junk_hits, 0);
	for (int i = 0; i < 64; i++)
		free(good[i]);
	eg_cert_identity_free(id);
	eg_certcache_free(cc);
}

/* Through mtls.c: the same header twice is one parse and the same answer; a header that
 * differs (even only in whitespace around the PEM) is its own entry; SIGHUP's clear makes
 * the next one a miss. */
static void test_cache_hit_miss(void **state)
{
	struct fixture *f = fixture_new();
	char err[256] = "";
	const char *why = NULL;
	struct eg_cert_identity *a = NULL, *b = NULL;
	char *hdr = escaped("client.crt");

	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), 0);
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &a, &why), 1);
	assert_int_equal(cache_count(&f->d, "miss"), 1);
	assert_int_equal(cache_count(&f->d, "hit"), 0);
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &b, &why), 1);
	assert_int_equal(cache_count(&f->d, "hit"), 1);
	assert_ptr_not_equal(a, b);
	assert_true(b->verified);
	assert_string_equal(a->subject, b->subject);
	assert_string_equal(a->issuer, b->issuer);
	assert_string_equal(a->fingerprint, b->fingerprint);
	assert_string_equal(a->spki, b->spki);
	assert_int_equal(a->n_sans, b->n_sans);
	for (size_t i = 0; i < a->n_sans; i++)
		assert_string_equal(a->sans[i], b->sans[i]);
	eg_cert_identity_free(a);
	eg_cert_identity_free(b);

	/* the same certificate behind other bytes: a miss, decided again */
	char *ws = xasprintf("%%0A%s", hdr);
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", ws, &a, &why), 1);
	eg_cert_identity_free(a);
	assert_int_equal(cache_count(&f->d, "miss"), 2);
	/* a refusal is cached too, and answers the same */
	char *bad = xstrdup(hdr);
	char *body = strstr(bad, "%0A") + 3;
	body[10] = body[10] == 'A' ? 'B' : 'A';
	for (int i = 0; i < 2; i++) {
		a = NULL;
		assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", bad, &a, &why), -1);
		assert_null(a);
		assert_string_equal(why, "bad_client_cert");
	}
	assert_int_equal(cache_count(&f->d, "miss"), 3);
	assert_int_equal(cache_count(&f->d, "hit"), 2);
	/* an unverified header is never looked up */
	assert_int_equal(eg_mtls_identity_from(&f->d, "NONE", hdr, &a, &why), 0);
	assert_int_equal(cache_count(&f->d, "hit") + cache_count(&f->d, "miss"), 5);

	eg_mtls_cache_clear(&f->d);
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &a, &why), 1);
	eg_cert_identity_free(a);
	assert_int_equal(cache_count(&f->d, "miss"), 4);
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &a, &why), 1);
	eg_cert_identity_free(a);
	assert_int_equal(cache_count(&f->d, "hit"), 3);
	/* a new configuration (eg_mtls_init again) starts with an empty cache */
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), 0);
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &a, &why), 1);
	eg_cert_identity_free(a);
	assert_int_equal(cache_count(&f->d, "miss"), 5);
	assert_int_equal(cache_count(&f->d, "hit"), 3);
	free(ws);
	free(bad);
	free(hdr);
	fixture_free(f);
}

/* A fresh EC key and a certificate of it valid from now-100s to now+secs, self-signed
 * (edgegated does not check chains: nginx did). PEM, escaped as nginx does. */
static char *short_lived_cert(long secs, EVP_PKEY **key_out, X509 **x_out)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	assert_non_null(k);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"short", -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), -100);
	X509_gmtime_adj(X509_getm_notAfter(x), secs);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	char *p;
	long len = BIO_get_mem_data(b, &p);
	char *pem = xcalloc(1, (size_t)len + 1);
	memcpy(pem, p, (size_t)len);
	BIO_free(b);
	X509_NAME_free(n);
	char *e = pct_encode(pem);
	free(pem);
	*key_out = k;
	*x_out = x;
	return e;
}

/* notAfter passing ends a cached allow. */
static void test_cache_expiry(void **state)
{
	struct fixture *f = fixture_new();
	char err[256] = "";
	const char *why = NULL;
	struct eg_cert_identity *c = NULL;
	EVP_PKEY *k;
	X509 *x;
	char *hdr = short_lived_cert(2, &k, &x);

	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), 0);
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &c, &why), 1);
	eg_cert_identity_free(c);
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &c, &why), 1);
	eg_cert_identity_free(c);
	assert_int_equal(cache_count(&f->d, "hit"), 1);
	/* the test's clock and the certificate's dates are whole seconds: wait out notAfter */
	sleep(3);
	c = NULL;
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &c, &why), -1);
	assert_null(c);
	assert_string_equal(why, "certificate_expired");
	/* decided again, not answered from the cache */
	assert_int_equal(cache_count(&f->d, "hit"), 1);
	/* and the refusal is what is cached now */
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &c, &why), -1);
	assert_string_equal(why, "certificate_expired");
	assert_int_equal(cache_count(&f->d, "hit"), 2);
	free(hdr);
	X509_free(x);
	EVP_PKEY_free(k);
	fixture_free(f);
}

/* A CRL naming (issuer, serial) of x, or none; written as PEM to path. edgegated matches
 * CRL entries by issuer and serial. */
static void write_crl(const char *path, X509 *x, EVP_PKEY *k, bool revoke)
{
	X509_CRL *crl = X509_CRL_new();
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_issuer_name(x));
	ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL));
	X509_CRL_set1_lastUpdate(crl, t);
	if (revoke) {
		X509_REVOKED *r = X509_REVOKED_new();
		X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(x));
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
	}
	ASN1_TIME_free(t);
	X509_CRL_sort(crl);
	assert_true(X509_CRL_sign(crl, k, EVP_sha256()) > 0);
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509_CRL(b, crl);
	char *p;
	long len = BIO_get_mem_data(b, &p);
	assert_int_equal(write_file_atomic(path, p, (size_t)len, 0600), 0);
	BIO_free(b);
	X509_CRL_free(crl);
}

/* A CRL reload takes cached outcomes with it: an allowed certificate, cached, is refused
 * once a CRL naming it is loaded; un-revoked, it passes again. */
static void test_cache_crl_change(void **state)
{
	struct fixture *f = fixture_new();
	char err[256] = "";
	const char *why = NULL;
	struct eg_cert_identity *c = NULL;
	EVP_PKEY *k;
	X509 *x;
	char *hdr = short_lived_cert(86400, &k, &x);

	write_crl(f->revoked_path, x, k, false);
	strlist1(&f->cfg.mtls.crl_files, xstrdup(f->revoked_path));
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), 0);
	eg_mtls_set_recheck_ms(&f->d, 600000);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &c, &why), 1);
		eg_cert_identity_free(c);
	}
	assert_int_equal(cache_count(&f->d, "hit"), 2);

	write_crl(f->revoked_path, x, k, true);
	/* not yet rechecked: the cached allow still answers, as the uncached check would */
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &c, &why), 1);
	eg_cert_identity_free(c);
	eg_mtls_set_recheck_ms(&f->d, 0);
	c = NULL;
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &c, &why), -1);
	assert_null(c);
	assert_string_equal(why, "certificate_revoked");
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &c, &why), -1);
	assert_string_equal(why, "certificate_revoked");

	/* removed from the CRL: the cached refusal goes too */
	usleep(10000); /* another mtime, should the inode be reused */
	write_crl(f->revoked_path, x, k, false);
	assert_int_equal(eg_mtls_identity_from(&f->d, "SUCCESS", hdr, &c, &why), 1);
	eg_cert_identity_free(c);
	free(hdr);
	X509_free(x);
	EVP_PKEY_free(k);
	fixture_free(f);
}


/* Verdict threads hit, miss and store while the cache is cleared under them (SIGHUP):
 * every answer is the uncached one (ASan watches the entries' lifetimes). */
struct cache_race {
	struct eg_daemon *d;
	char *hdr[4];
	char *fp[4]; /* NULL: refused */
	int bad, calls;
};

static void *cache_race_reader(void *arg)
{
	struct cache_race *r = arg;
	for (int i = 0; i < 400; i++) {
		int k = i % 4;
		struct eg_cert_identity *c = NULL;
		const char *why = NULL;
		int rc = eg_mtls_identity_from(r->d, "SUCCESS", r->hdr[k], &c, &why);
		bool good = r->fp[k] ? rc == 1 && c && strcmp(c->fingerprint, r->fp[k]) == 0
				     : rc == -1 && !c && why && strcmp(why, "bad_client_cert") == 0;
		if (!good)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&r->calls, 1, __ATOMIC_RELAXED);
		eg_cert_identity_free(c);
	}
	return NULL;
}

static void test_cache_concurrent(void **state)
{
	struct fixture *f = fixture_new();
	char err[256] = "";
	struct cache_race r = { .d = &f->d };
	pthread_t th[4];

	r.hdr[0] = escaped("client.crt");
	r.fp[0] = slurp("client.fp");
	r.hdr[1] = escaped("plain.crt");
	r.fp[1] = slurp("plain.fp");
	r.hdr[2] = xasprintf("%%0A%s", r.hdr[0]);
	r.fp[2] = slurp("client.fp");
	r.hdr[3] = xstrdup(r.hdr[0]);
	char *body = strstr(r.hdr[3], "%0A") + 3;
	body[10] = body[10] == 'A' ? 'B' : 'A';
	assert_int_equal(eg_mtls_init(&f->d, err, sizeof(err)), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, cache_race_reader, &r), 0);
	for (int i = 0; i < 50; i++) {
		eg_mtls_cache_clear(&f->d);
		usleep(2000);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(r.calls, 1600);
	assert_int_equal(r.bad, 0);
	assert_true(cache_count(&f->d, "hit") > 0);
	for (int i = 0; i < 4; i++) {
		free(r.hdr[i]);
		free(r.fp[i]);
	}
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_client_fields),
		cmocka_unit_test(test_parse_no_sans),
		cmocka_unit_test(test_escaping_variants),
		cmocka_unit_test(test_verify_header_states),
		cmocka_unit_test(test_untrusted_peer_ignored),
		cmocka_unit_test(test_malformed_inputs),
		cmocka_unit_test(test_pem_armour_forms),
		cmocka_unit_test(test_validity_window),
		cmocka_unit_test(test_revoked_list_and_reload),
		cmocka_unit_test(test_revoked_file_errors_at_start),
		cmocka_unit_test(test_concurrent_reload),
		cmocka_unit_test(test_crl_pem),
		cmocka_unit_test(test_crl_der),
		cmocka_unit_test(test_crl_broken),
		cmocka_unit_test(test_token_binding),
		cmocka_unit_test(test_expiry_metric_and_status),
		cmocka_unit_test(test_registry_churn),
		cmocka_unit_test(test_certcache_table),
		cmocka_unit_test(test_certcache_refusals_cannot_evict),
		cmocka_unit_test(test_cache_hit_miss),
		cmocka_unit_test(test_cache_expiry),
		cmocka_unit_test(test_cache_crl_change),
		cmocka_unit_test(test_cache_concurrent),
	};
	eg_log_set_level("warn"); /* reload chatter of the race test */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
