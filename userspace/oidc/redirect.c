/* redirect.c - the open-redirect validator. Strict allow-listing: a target is
 * accepted only when it parses as one of two simple shapes, and every byte that
 * browsers are known to reinterpret (backslash, whitespace, controls, encoded
 * separators) is refused outright instead of being normalised. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "redirect.h"
#include "util.h"

static bool is_ctl_or_space(unsigned char c)
{
	return c <= 0x20 || c == 0x7f;
}

/* Raw bytes: no controls, whitespace, backslash or non-ASCII anywhere. */
static bool raw_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (is_ctl_or_space(*p) || *p >= 0x80 || *p == '\\')
			return false;
	return true;
}

/* Percent escapes: well-formed everywhere; before the query (pre) no encoded
 * "/", "\", "%", ".", whitespace or controls; in the query/fragment no encoded
 * controls or backslash, also after a second or third decoding round. */
static bool escapes_ok(const char *s, size_t pre)
{
	char buf[EG_REDIRECT_MAX + 1];
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%')
			continue;
		int h = hex_digit(s[i + 1]), l = h < 0 ? -1 : hex_digit(s[i + 2]);
		if (h < 0 || l < 0)
			return false;
		unsigned char c = (unsigned char)(h * 16 + l);
		if (i < pre && (c == '/' || c == '\\' || c == '%' || c == '.' || c == '@' ||
				is_ctl_or_space(c)))
			return false;
		if (c < 0x20 || c == 0x7f || c == '\\')
			return false;
	}
	/* Nested encodings in the query: decode and look again (bounded rounds). */
	memcpy(buf, s, n + 1);
	for (int round = 0; round < 3; round++) {
		size_t o = 0;
		bool changed = false;

		for (size_t i = 0; buf[i]; i++) {
			int h, l;
			if (buf[i] == '%' && (h = hex_digit(buf[i + 1])) >= 0 &&
			    (l = hex_digit(buf[i + 2])) >= 0) {
				unsigned char c = (unsigned char)(h * 16 + l);
				if (c < 0x20 || c == 0x7f || c == '\\')
					return false;
				buf[o++] = (char)c;
				i += 2;
				changed = true;
			} else {
				buf[o++] = buf[i];
			}
		}
		buf[o] = 0;
		if (!changed)
			break;
	}
	return true;
}

/* The path part [p, end): no "//" and no "." / ".." segments. */
static bool path_ok(const char *p, const char *end)
{
	for (const char *q = p; q < end; q++) {
		if (*q != '/')
			continue;
		if (q + 1 < end && q[1] == '/')
			return false;
		const char *seg = q + 1, *e = seg;
		while (e < end && *e != '/')
			e++;
		if ((e - seg == 1 && seg[0] == '.') ||
		    (e - seg == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
	}
	return true;
}

static bool host_syntax_ok(const char *h, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > 253 || h[n - 1] == '.' || h[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return h[n - 1] != '-';
}

static bool ieq_n(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++) {
		char x = a[i], y = b[i];
		if (x >= 'A' && x <= 'Z')
			x = (char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (char)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

/* host (len hn) with port against one allowlist entry "[.]domain[:port]". */
static bool entry_matches(const char *entry, const char *host, size_t hn, long port)
{
	const char *colon = strchr(entry, ':');
	size_t en = colon ? (size_t)(colon - entry) : strlen(entry);

	if (colon) {
		char *endp;
		long p = strtol(colon + 1, &endp, 10);
		if (*endp || p != port)
			return false;
	}
	if (en == 0)
		return false;
	if (entry[0] != '.')
		return ieq_n(entry, en, host, hn);
	/* ".d": d itself or a strict subdomain "x.d" - never "xd" (GHSA-4mf2-f3wh-gvf2). */
	if (ieq_n(entry + 1, en - 1, host, hn))
		return true;
	return hn > en && ieq_n(entry, en, host + (hn - en), en);
}

bool eg_redirect_allowed(const char *t, const char *const *domains, size_t n)
{
	size_t len, pre;
	const char *auth, *aend, *colon;
	long port;
	bool https;

	if (!t || !*t || (len = strlen(t)) > EG_REDIRECT_MAX)
		return false;
	if (!raw_ok(t))
		return false;
	pre = strcspn(t, "?#");
	if (!escapes_ok(t, pre))
		return false;
	if (t[0] == '/')
		return path_ok(t, t + pre);

	if (strncasecmp(t, "https://", 8) == 0) {
		https = true;
		auth = t + 8;
	} else if (strncasecmp(t, "http://", 7) == 0) {
		https = false;
		auth = t + 7;
	} else {
		return false; /* relative without "/", javascript:, data:, //host ... */
	}
	aend = auth + strcspn(auth, "/?#");
	if (aend == auth || memchr(auth, '@', (size_t)(aend - auth)) ||
	    memchr(auth, '%', (size_t)(aend - auth)))
		return false;
	colon = memchr(auth, ':', (size_t)(aend - auth));
	port = https ? 443 : 80;
	if (colon) {
		if (colon + 1 == aend || aend - colon > 6)
			return false;
		port = 0;
		for (const char *p = colon + 1; p < aend; p++) {
			if (*p < '0' || *p > '9')
				return false;
			port = port * 10 + (*p - '0');
		}
		if (port < 1 || port > 65535)
			return false;
	}
	size_t hn = (size_t)((colon ? colon : aend) - auth);
	if (!host_syntax_ok(auth, hn))
		return false;
	if (*aend == '/' && !path_ok(aend, t + pre))
		return false;
	for (size_t i = 0; i < n; i++)
		if (domains[i] && entry_matches(domains[i], auth, hn, port))
			return true;
	return false;
}

int eg_url_host(const char *url, char *buf, size_t len)
{
	const char *a, *e, *c;
	size_t n;

	if (!url)
		return -1;
	if (strncasecmp(url, "https://", 8) == 0)
		a = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		a = url + 7;
	else
		return -1;
	e = a + strcspn(a, "/?#");
	if (memchr(a, '@', (size_t)(e - a)))
		return -1;
	c = memchr(a, ':', (size_t)(e - a));
	n = (size_t)((c ? c : e) - a);
	if (n == 0 || n >= len)
		return -1;
	for (size_t i = 0; i < n; i++)
		buf[i] = (a[i] >= 'A' && a[i] <= 'Z') ? (char)(a[i] + 32) : a[i];
	buf[n] = 0;
	return 0;
}

bool eg_redirect_ok(const struct eg_config *cfg, const char *target)
{
	const char *list[66];
	char h1[256], h2[256];
	size_t n = 0;

	for (size_t i = 0; i < cfg->redirect_domains.n && n < 64; i++)
		list[n++] = cfg->redirect_domains.v[i];
	if (eg_url_host(cfg->public_url, h1, sizeof(h1)) == 0)
		list[n++] = h1;
	if (eg_url_host(cfg->oidc.redirect_url, h2, sizeof(h2)) == 0)
		list[n++] = h2;
	return eg_redirect_allowed(target, list, n);
}
