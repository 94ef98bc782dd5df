/* smuggle.c - refuse requests carrying an underscore spelling of an identity header.
 *
 * The shipped snippet overwrites every identity header edgegated emits (proxy_set_header),
 * and nginx drops names with '_' by default. An operator who turns on
 * `underscores_in_headers` makes nginx pass `X_Auth_Request_User: admin` to the upstream
 * untouched (proxy_set_header only replaces the '-' spelling), and CGI, PHP, Django, Rack
 * and others read it as X-Auth-Request-User. The auth subrequest carries the client's
 * headers too, so edgegated sees the variant and refuses the request: no proxy setting
 * then lets a forged identity through. The '-' spellings are left alone (the proxy
 * replaces them). */
#include "smuggle.h"

#include <string.h>
#include <strings.h>

#include "config.h"
#include "http.h"

static const char *const fixed_names[] = {
	"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups",
	"X-Auth-Request-Preferred-Username", "X-Auth-Request-Cert-Subject",
	"X-Auth-Request-Cert-Fingerprint", "X-Auth-Request-Cert-Sans",
	/* set by the snippet on the auth request; upstreams that take a certificate from a
	 * header (CGI-style: X_SSL_Client_Cert reads as X-SSL-Client-Cert) use these names */
	"X-SSL-Client-Cert", "X-SSL-Client-Verify",
};

/* Each byte as same_header reads it: ASCII letters lowercased, '_' as '-' (one table
 * lookup per byte: a verdict compares a dozen names against a few spellings each) */
static unsigned char fold[256];

__attribute__((constructor)) static void fold_table(void)
{
	for (int c = 0; c < 256; c++)
		fold[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c == '_' ? '-' : c);
}

/* name (with '_' read as '-') equals want, case-insensitively */
static bool same_header(const char *name, const char *want)
{
	const unsigned char *a = (const unsigned char *)name, *b = (const unsigned char *)want;
	for (; *a && fold[*a] == fold[*b]; a++, b++)
		;
	return !*a && !*b;
}

bool eg_identity_header_variant(const struct eg_config *cfg, const char *name)
{
	return name && eg_identity_header_variant_n(cfg, name, strlen(name));
}

bool eg_identity_header_variant_n(const struct eg_config *cfg, const char *name, size_t len)
{
	if (!name || !memchr(name, '_', len))
		return false;
	for (size_t i = 0; i < sizeof(fixed_names) / sizeof(fixed_names[0]); i++)
		if (same_header(name, fixed_names[i]))
			return true;
	for (size_t i = 0; cfg && i < cfg->n_routes; i++)
		for (size_t k = 0; k < cfg->routes[i].n_headers; k++)
			if (same_header(name, cfg->routes[i].headers[k].header))
				return true;
	return false;
}

struct spellings {
	const char *const *names;
	size_t n;
	size_t *counts;
	void (*fn)(const char *value, void *arg);
	void *arg;
};

static bool spelling_value(void *cls, const char *key, const char *value)
{
	struct spellings *s = cls;
	if (!key || !value)
		return true;
	for (size_t i = 0; i < s->n; i++) {
		if (same_header(key, s->names[i])) {
			s->counts[i]++;
			s->fn(value, s->arg);
			break;
		}
	}
	return true;
}

void eg_req_header_spellings(const struct eg_req *r, const char *const *names, size_t n, size_t *counts,
			     void (*fn)(const char *value, void *arg), void *arg)
{
	struct spellings s = { names, n, counts, fn, arg };
	for (size_t i = 0; i < n; i++)
		counts[i] = 0;
	if (r)
		eg_req_headers_iter(r, spelling_value, &s);
}

bool eg_header_name_is(const char *name, const char *want)
{
	return name && same_header(name, want);
}

bool eg_header_name_is_n(const char *name, size_t len, const char *want, size_t want_len)
{
	/* the last byte first: names of one length mostly differ there (X-Original-URI and
	 * X-Original-URL, X-Server-Port and X-Script-Name), so most calls stop at once */
	return name && len == want_len && len && fold[(unsigned char)name[len - 1]] == fold[(unsigned char)want[len - 1]] &&
	       same_header(name, want);
}

struct each {
	void (*fn)(const char *key, size_t key_len, const char *value, void *arg);
	void *arg;
};

static bool each_value(void *cls, const char *key, size_t key_len, const char *value)
{
	struct each *e = cls;
	if (key && value)
		e->fn(key, key_len, value, e->arg);
	return true;
}

void eg_req_headers_each(const struct eg_req *r, void (*fn)(const char *key, size_t key_len, const char *value, void *arg),
			 void *arg)
{
	struct each e = { fn, arg };
	if (r)
		eg_req_headers_iter_n(r, each_value, &e);
}
