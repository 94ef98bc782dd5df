/* config.c - JSON configuration -> struct eg_config, strictly validated.
 *
 * Every error names the key path ("routes[2].allow.domains[0]: expected a string").
 * Unknown keys are errors: a typo must not silently weaken policy. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "jose.h"
#include "loopback.h"
#include "proxy.h"
#include "redirect.h"
#include "edgegate/abi.h"
#include "revoke.h"
#include "util.h"

struct cctx {
	char path[256];
	char *err;
	size_t errlen;
	bool failed;
};

static bool fail(struct cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(struct cctx *c, const char *fmt, ...)
{
	if (c->failed)
		return false;
	c->failed = true;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s", c->path[0] ? c->path : "(top level)", msg);
	return false;
}

/* Path stack: push returns the previous length so pop can restore it. */
static size_t push_key(struct cctx *c, const char *key)
{
	size_t n = strlen(c->path);
	snprintf(c->path + n, sizeof(c->path) - n, "%s%s", n ? "." : "", key);
	return n;
}

static size_t push_idx(struct cctx *c, size_t i)
{
	size_t n = strlen(c->path);
	snprintf(c->path + n, sizeof(c->path) - n, "[%zu]", i);
	return n;
}

static void pop(struct cctx *c, size_t n)
{
	c->path[n] = '\0';
}

/* fail() with one more key on the path: the usual way to reject a value. */
static bool fail_at(struct cctx *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail_at(struct cctx *c, const char *key, const char *fmt, ...)
{
	size_t n = push_key(c, key);
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail(c, "%s", msg);
	pop(c, n);
	return false;
}

static bool check_keys(struct cctx *c, json_t *obj, const char *const *allowed)
{
	if (!json_is_object(obj))
		return fail(c, "expected an object");
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				ok = true;
		if (!ok)
			return fail_at(c, key, "unknown key");
	}
	return true;
}

static bool get_str(struct cctx *c, json_t *obj, const char *key, char **out)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return true;
	size_t n = push_key(c, key);
	bool ok = true;
	if (!json_is_string(v))
		ok = fail(c, "expected a string");
	else if (strlen(json_string_value(v)) != json_string_length(v))
		ok = fail(c, "string contains a NUL byte");
	else {
		free(*out);
		*out = xstrdup(json_string_value(v));
	}
	pop(c, n);
	return ok;
}

/* A path that must be readable now (a CA bundle): a typo is a config error, not a
 * TLS failure on the first fetch. */
static bool get_readable_file(struct cctx *c, json_t *obj, const char *key, char **out)
{
	if (!get_str(c, obj, key, out))
		return false;
	if (*out && access(*out, R_OK) != 0)
		return fail_at(c, key, "cannot read %s: %s", *out, strerror(errno));
	return true;
}

static bool get_bool(struct cctx *c, json_t *obj, const char *key, bool *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return true;
	size_t n = push_key(c, key);
	bool ok = json_is_boolean(v) ? (*out = json_is_true(v), true) : fail(c, "expected true or false");
	pop(c, n);
	return ok;
}

static bool get_int(struct cctx *c, json_t *obj, const char *key, long long lo, long long hi,
		    long long *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return true;
	size_t n = push_key(c, key);
	bool ok = true;
	if (!json_is_integer(v))
		ok = fail(c, "expected an integer");
	else if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		ok = fail(c, "must be between %lld and %lld", lo, hi);
	else
		*out = json_integer_value(v);
	pop(c, n);
	return ok;
}

static bool get_u32(struct cctx *c, json_t *obj, const char *key, uint32_t *out)
{
	long long v = *out;
	if (!get_int(c, obj, key, 0, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool get_duration(struct cctx *c, json_t *obj, const char *key, int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return true;
	size_t n = push_key(c, key);
	bool ok = true;
	if (!json_is_string(v) || eg_parse_duration(json_string_value(v), out) != 0)
		ok = fail(c, "expected a duration such as \"30s\", \"5m\", \"8h\" or \"7d\"");
	pop(c, n);
	return ok;
}

static bool get_strlist(struct cctx *c, json_t *obj, const char *key, struct eg_strlist *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return true;
	size_t n = push_key(c, key);
	bool ok = true;
	if (json_is_string(v)) { /* a single string is accepted for convenience */
		out->v = xcalloc(1, sizeof(char *));
		out->v[0] = xstrdup(json_string_value(v));
		out->n = 1;
	} else if (!json_is_array(v)) {
		ok = fail(c, "expected an array of strings");
	} else {
		out->v = xcalloc(json_array_size(v) + 1, sizeof(char *));
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e)) {
				size_t m = push_idx(c, i);
				ok = fail(c, "expected a string");
				pop(c, m);
				break;
			}
			out->v[out->n++] = xstrdup(json_string_value(e));
		}
	}
	pop(c, n);
	return ok;
}

/* "file_key" variants: the secret itself or a file holding it (trailing newline trimmed). */
static bool get_secret(struct cctx *c, json_t *obj, const char *key, char **out)
{
	char filekey[64];
	snprintf(filekey, sizeof(filekey), "%s_file", key);
	if (json_object_get(obj, key) && json_object_get(obj, filekey))
		return fail_at(c, key, "give either %s or %s, not both", key, filekey);
	char *file = NULL;
	if (!get_str(c, obj, key, out) || !get_str(c, obj, filekey, &file))
		return false;
	if (!file)
		return true;
	size_t len;
	char *data = read_file(file, 1 << 16, &len);
	if (!data) {
		fail_at(c, filekey, "cannot read %s: %s", file, strerror(errno));
		free(file);
		return false;
	}
	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	free(file);
	free(*out);
	*out = data;
	return true;
}

/* --- durations, addresses, prefixes ----------------------------------------------- */

int eg_parse_duration(const char *s, int64_t *out_s)
{
	if (!s || !*s)
		return -1;
	int64_t total = 0;
	const char *p = s;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return -1;
		errno = 0;
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		if (errno || end == p || v > (1ull << 40))
			return -1;
		p = end;
		int64_t mult;
		if (strncmp(p, "ms", 2) == 0) {
			v = (v + 999) / 1000; /* rounded up: a non-zero duration stays non-zero */
			mult = 1;
			p += 2;
		} else if (*p == 's') {
			mult = 1, p++;
		} else if (*p == 'm') {
			mult = 60, p++;
		} else if (*p == 'h') {
			mult = 3600, p++;
		} else if (*p == 'd') {
			mult = 86400, p++;
		} else if (*p == 'w') {
			mult = 7 * 86400, p++;
		} else {
			return -1;
		}
		total += (int64_t)v * mult;
		if (total > ((int64_t)1 << 45))
			return -1;
	}
	*out_s = total;
	return 0;
}

bool eg_addr_is_v4mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a, pfx, 12) == 0;
}

/* Dotted-quad IPv4 as inet_pton reads it (four decimal octets up to 255, no leading zero,
 * nothing else), by hand: it is read on every verdict (X-Real-IP). Anything else, or -1
 * here, goes to inet_pton, so what is accepted stays exactly inet_pton's. */
static int ipv4_quad(const char *s, uint8_t out[4])
{
	for (int i = 0; i < 4; i++) {
		if (i && *s++ != '.')
			return -1;
		if (*s < '0' || *s > '9')
			return -1;
		unsigned v = (unsigned)(*s++ - '0');
		for (int k = 0; k < 2 && *s >= '0' && *s <= '9'; k++) {
			if (v == 0)
				return -1; /* a leading zero */
			v = v * 10 + (unsigned)(*s++ - '0');
		}
		if (v > 255 || (*s >= '0' && *s <= '9'))
			return -1;
		out[i] = (uint8_t)v;
	}
	return *s ? -1 : 0;
}

int eg_addr_parse(const char *s, uint8_t out16[16])
{
	struct in_addr a4;
	struct in6_addr a6;
	uint8_t q[4];
	if (ipv4_quad(s, q) == 0) {
		memset(out16, 0, 10);
		out16[10] = out16[11] = 0xff;
		memcpy(out16 + 12, q, 4);
		return 0;
	}
	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out16, 0, 10);
		out16[10] = out16[11] = 0xff;
		memcpy(out16 + 12, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(out16, &a6, 16);
		return 0;
	}
	return -1;
}

int eg_addr_from_sockaddr(const struct sockaddr *sa, uint8_t out16[16])
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memset(out16, 0, 10);
		out16[10] = out16[11] = 0xff;
		memcpy(out16 + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out16, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

void eg_addr_format(const uint8_t a[16], char *buf, size_t len)
{
	if (eg_addr_is_v4mapped(a))
		inet_ntop(AF_INET, a + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a, buf, (socklen_t)len);
}

int eg_parse_prefix(const char *s, struct eg_prefix *out)
{
	char buf[64];
	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	char *slash = strchr(buf, '/');
	long plen = -1;
	if (slash) {
		*slash = '\0';
		char *end;
		if (!isdigit((unsigned char)slash[1]))
			return -1;
		plen = strtol(slash + 1, &end, 10);
		if (*end || plen < 0 || plen > 128)
			return -1;
	}
	memset(out, 0, sizeof(*out));
	if (eg_addr_parse(buf, out->addr) != 0)
		return -1;
	out->v4 = strchr(buf, ':') == NULL;
	if (out->v4) {
		if (plen > 32)
			return -1;
		out->plen = (uint8_t)(plen < 0 ? 128 : plen + 96);
	} else {
		out->plen = (uint8_t)(plen < 0 ? 128 : plen);
	}
	/* Host bits are cleared so "10.1.2.3/8" and "10.0.0.0/8" are the same prefix. */
	for (int bit = out->plen; bit < 128; bit++)
		out->addr[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
	return 0;
}

bool eg_prefix_contains(const struct eg_prefix *p, const uint8_t a[16])
{
	unsigned full = p->plen / 8, rest = p->plen % 8;
	if (memcmp(p->addr, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (p->addr[full] & mask) == (a[full] & mask);
}

unsigned eg_method_bit(const char *m)
{
	static const char *const names[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
					     "PATCH", "OPTIONS", "CONNECT", "TRACE" };
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(m, names[i]) == 0)
			return 1u << i;
	return EG_M_OTHER;
}

/* --- sections ------------------------------------------------------------------------ */

static bool parse_listen_one(struct cctx *c, const char *s, struct eg_listen *l)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->text, sizeof(l->text), "%s", s);
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/' || strlen(s + 5) >= sizeof(l->path))
			return fail(c, "unix socket path must be absolute and shorter than %zu bytes",
				    sizeof(l->path));
		l->is_unix = true;
		strcpy(l->path, s + 5);
		return true;
	}
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || strlen(s) >= sizeof(host))
		return fail(c, "expected \"ADDRESS:PORT\", \"[IPv6]:PORT\" or \"unix:/path\"");
	size_t hl = (size_t)(colon - s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || colon[1] == '\0' || port < 1 || port > 65535)
		return fail(c, "bad port in \"%s\"", s);
	if (host[0] == '[') {
		if (hl < 3 || host[hl - 1] != ']')
			return fail(c, "bad IPv6 address in \"%s\"", s);
		host[hl - 1] = '\0';
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&l->ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
			return fail(c, "bad IPv6 address in \"%s\"", s);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&l->ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return fail(c, "bad IPv4 address in \"%s\" (use [addr] for IPv6)", s);
	}
	return true;
}

static bool parse_listen(struct cctx *c, json_t *root, struct eg_config *cfg)
{
	json_t *v = json_object_get(root, "listen");
	size_t n = push_key(c, "listen");
	bool ok = true;
	if (!v) {
		ok = fail(c, "required (e.g. \"127.0.0.1:9180\" or \"unix:/run/edgegate/auth.sock\")");
	} else if (json_is_string(v)) {
		ok = parse_listen_one(c, json_string_value(v), &cfg->listen[0]);
		cfg->n_listen = 1;
	} else if (json_is_array(v) && json_array_size(v) > 0 && json_array_size(v) <= EG_MAX_LISTEN) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			size_t m = push_idx(c, i);
			ok = json_is_string(e) ? parse_listen_one(c, json_string_value(e), &cfg->listen[i])
					       : fail(c, "expected a string");
			pop(c, m);
			if (!ok)
				break;
			cfg->n_listen++;
		}
	} else {
		ok = fail(c, "expected a string or an array of 1 to %d strings", EG_MAX_LISTEN);
	}
	pop(c, n);
	return ok;
}

static bool parse_prefixes(struct cctx *c, json_t *obj, const char *key, struct eg_prefix **out,
			   size_t *n_out)
{
	struct eg_strlist l = { 0 };
	bool ok = get_strlist(c, obj, key, &l);
	if (ok && l.n) {
		*out = xcalloc(l.n, sizeof(**out));
		size_t n = push_key(c, key);
		for (size_t i = 0; i < l.n && ok; i++) {
			size_t m = push_idx(c, i);
			if (eg_parse_prefix(l.v[i], &(*out)[i]) != 0)
				ok = fail(c, "\"%s\" is not an IP address or CIDR prefix", l.v[i]);
			pop(c, m);
		}
		pop(c, n);
		*n_out = l.n;
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return ok;
}

static bool str_in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static bool check_algorithms(struct cctx *c, json_t *o, const struct eg_strlist *l)
{
	eg_algset set;
	size_t bad = 0;
	if (l->n == 0 || eg_algset_parse((const char *const *)l->v, l->n, &set, &bad) == 0)
		return true;
	size_t n = push_key(c, "algorithms");
	size_t m = push_idx(c, bad);
	bool ok = fail(c, "unknown or unsupported algorithm \"%s\"", l->v[bad]);
	pop(c, m);
	pop(c, n);
	return ok;
}

/* __Host- cookies: Secure, Path=/ and no Domain, so no sibling or parent domain can
 * set or shadow them; __Secure- only needs Secure (RFC 6265bis 4.1.3). */
static bool cookie_host_prefix_ok(const struct eg_cookie_config *x)
{
	return x->secure && !x->domain && (!x->path || strcmp(x->path, "/") == 0);
}

static bool check_cookie_prefix(struct cctx *c, const struct eg_cookie_config *x)
{
	if (!x->name)
		return true;
	if (strncasecmp(x->name, "__Host-", 7) == 0 && !cookie_host_prefix_ok(x)) {
		snprintf(c->path, sizeof(c->path), "cookie.name");
		return fail(c, "a __Host- cookie needs secure: true, no domain and path \"/\"");
	}
	if (strncasecmp(x->name, "__Secure-", 9) == 0 && !x->secure) {
		snprintf(c->path, sizeof(c->path), "cookie.name");
		return fail(c, "a __Secure- cookie needs secure: true");
	}
	return true;
}

static bool parse_oidc(struct cctx *c, json_t *o, struct eg_oidc_config *x)
{
	static const char *const keys[] = { "issuer", "client_id", "client_secret", "client_secret_file",
		"redirect_url", "scopes", "token_auth_method", "use_userinfo", "algorithms", "leeway",
		"post_logout_redirect_url", "groups_claim", "email_claim", "user_claim", "refresh_before",
		"max_states", "state_ttl", "jwks_min_refetch", "trust_unverified_email", "ca_file", "client_key_file",
		"client_key_id", "client_key_alg", NULL };
	x->present = true;
	x->use_userinfo = true;
	x->leeway_s = 60;
	x->refresh_before_s = 60;
	x->max_states = 8;
	x->state_ttl_s = 600;
	x->jwks_min_refetch_s = 10;
	long long max_states = x->max_states;
	if (!check_keys(c, o, keys) || !get_str(c, o, "issuer", &x->issuer) ||
	    !get_str(c, o, "client_id", &x->client_id) || !get_secret(c, o, "client_secret", &x->client_secret) ||
	    !get_str(c, o, "redirect_url", &x->redirect_url) || !get_strlist(c, o, "scopes", &x->scopes) ||
	    !get_str(c, o, "token_auth_method", &x->token_auth_method) ||
	    !get_bool(c, o, "use_userinfo", &x->use_userinfo) ||
	    !get_strlist(c, o, "algorithms", &x->algorithms) || !get_duration(c, o, "leeway", &x->leeway_s) ||
	    !get_str(c, o, "post_logout_redirect_url", &x->post_logout_redirect_url) ||
	    !get_str(c, o, "groups_claim", &x->groups_claim) || !get_str(c, o, "email_claim", &x->email_claim) ||
	    !get_str(c, o, "user_claim", &x->user_claim) ||
	    !get_duration(c, o, "refresh_before", &x->refresh_before_s) ||
	    !get_int(c, o, "max_states", 1, 64, &max_states) || !get_duration(c, o, "state_ttl", &x->state_ttl_s) ||
	    !get_duration(c, o, "jwks_min_refetch", &x->jwks_min_refetch_s) ||
	    !get_bool(c, o, "trust_unverified_email", &x->trust_unverified_email) ||
	    !get_readable_file(c, o, "ca_file", &x->ca_file) ||
	    !get_readable_file(c, o, "client_key_file", &x->client_key_file) ||
	    !get_str(c, o, "client_key_id", &x->client_key_id) || !get_str(c, o, "client_key_alg", &x->client_key_alg))
		return false;
	x->max_states = max_states;
	static const char *const required[] = { "issuer", "client_id", "redirect_url", NULL };
	for (const char *const *r = required; *r; r++) {
		if (!json_object_get(o, *r))
			return fail_at(c, *r, "required in the oidc section");
	}
	if (x->token_auth_method) {
		static const char *const m[] = { "client_secret_basic", "client_secret_post", "private_key_jwt", "none", NULL };
		if (!str_in(x->token_auth_method, m))
			return fail_at(c, "token_auth_method",
				       "must be client_secret_basic, client_secret_post, private_key_jwt or none");
	} else {
		x->token_auth_method = xstrdup("client_secret_basic");
	}
	bool pkjwt = strcmp(x->token_auth_method, "private_key_jwt") == 0;
	if (pkjwt && !x->client_key_file)
		return fail_at(c, "client_key_file", "required for token_auth_method private_key_jwt");
	if (x->client_key_alg && eg_alg_from_name(x->client_key_alg) == EG_ALG_NONE)
		return fail_at(c, "client_key_alg", "unknown algorithm");
	if (strcmp(x->token_auth_method, "none") != 0 && !pkjwt && !x->client_secret)
		return fail_at(c, "client_secret", "required for token_auth_method %s", x->token_auth_method);
	if (x->issuer && eg_url_https_or_loopback(x->issuer, NULL) != 0)
		return fail_at(c, "issuer", "must be an https:// URL (http:// only on a loopback address)");
	if (!check_algorithms(c, o, &x->algorithms))
		return false;
	/* HS* id_tokens are keyed with the client_secret's octets (OIDC Core 10.1), which must be
	 * at least as long as the hash (RFC 7518 3.2). */
	for (size_t i = 0; i < x->algorithms.n; i++) {
		enum eg_alg a = eg_alg_from_name(x->algorithms.v[i]);
		size_t need = a == EG_ALG_HS256 ? 32 : a == EG_ALG_HS384 ? 48 : a == EG_ALG_HS512 ? 64 : 0;
		if (need && (!x->client_secret || strlen(x->client_secret) < need)) {
			size_t n = push_key(c, "algorithms"), m = push_idx(c, i);
			bool ok = fail(c, "%s needs a client_secret of at least %zu bytes (its key, RFC 7518 3.2)",
				       x->algorithms.v[i], need);
			pop(c, m);
			pop(c, n);
			return ok;
		}
	}
	if (x->scopes.n == 0) {
		x->scopes.v = xcalloc(4, sizeof(char *));
		x->scopes.v[0] = xstrdup("openid");
		x->scopes.v[1] = xstrdup("email");
		x->scopes.v[2] = xstrdup("profile");
		x->scopes.n = 3;
	}
	if (!x->groups_claim)
		x->groups_claim = xstrdup("groups");
	if (!x->email_claim)
		x->email_claim = xstrdup("email");
	if (!x->user_claim)
		x->user_claim = xstrdup("sub");
	return true;
}

static bool parse_cookie(struct cctx *c, json_t *o, struct eg_cookie_config *x)
{
	static const char *const keys[] = { "name", "domain", "path", "secure", "idle", "lifetime",
					    "secret", "secret_file", NULL };
	if (o && (!check_keys(c, o, keys) || !get_str(c, o, "name", &x->name) ||
		  !get_str(c, o, "domain", &x->domain) || !get_str(c, o, "path", &x->path) ||
		  !get_bool(c, o, "secure", &x->secure) || !get_duration(c, o, "idle", &x->idle_s) ||
		  !get_duration(c, o, "lifetime", &x->lifetime_s) || !get_secret(c, o, "secret", &x->secret)))
		return false;
	if (x->name) {
		for (const char *p = x->name; *p; p++) {
			if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
				return fail_at(c, "name", "cookie names use letters, digits, '_' and '-'");
		}
	}
	if (x->secret && strlen(x->secret) < 32)
		return fail_at(c, "secret", "must be at least 32 characters");
	return true;
}

/* "key": "*" (alone) means "any"; otherwise the list must not be empty. */
static bool wildcard_or_list(struct cctx *c, json_t *o, const char *one, const char *many,
			     struct eg_strlist *l, bool *any)
{
	const char *key = json_object_get(o, many) ? many : one;
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], "*") != 0)
			continue;
		if (l->n != 1)
			return fail_at(c, key, "\"*\" (any) cannot be combined with other values");
		*any = true;
		free(l->v[0]);
		l->n = 0;
		return true;
	}
	if (l->n == 0)
		return fail_at(c, one, "required in the jwt section (or \"*\" to accept any %s)", one);
	return true;
}

static bool parse_jwt(struct cctx *c, json_t *o, struct eg_jwt_config *x)
{
	static const char *const keys[] = { "jwks_file", "jwks_url", "issuer", "issuers", "audience",
		"audiences", "algorithms", "leeway", "require_exp", "cookie", "query_param", "jwks_refresh",
		"jwks_min_refetch", "cache_max_ttl", "cache_entries", "required_claims", "require_at_jwt",
		"trust_unverified_email", "ca_file", "introspection_url", "introspection_client_id",
		"introspection_client_secret", "introspection_client_secret_file", "introspection_cache", NULL };
	long long entries = (long long)x->cache_entries;
	x->present = true;
	if (json_object_get(o, "issuer") && json_object_get(o, "issuers"))
		return fail_at(c, "issuers", "give issuer or issuers, not both");
	if (json_object_get(o, "audience") && json_object_get(o, "audiences"))
		return fail_at(c, "audiences", "give audience or audiences, not both");
	if (!check_keys(c, o, keys) || !get_str(c, o, "jwks_file", &x->jwks_file) ||
	    !get_str(c, o, "jwks_url", &x->jwks_url) || !get_strlist(c, o, "issuer", &x->issuers) ||
	    (!x->issuers.n && !get_strlist(c, o, "issuers", &x->issuers)) ||
	    !get_strlist(c, o, "audience", &x->audiences) ||
	    (!x->audiences.n && !get_strlist(c, o, "audiences", &x->audiences)) ||
	    !get_strlist(c, o, "algorithms", &x->algorithms) || !get_duration(c, o, "leeway", &x->leeway_s) ||
	    !get_bool(c, o, "require_exp", &x->require_exp) || !get_str(c, o, "cookie", &x->cookie) ||
	    !get_str(c, o, "query_param", &x->query_param) ||
	    !get_duration(c, o, "jwks_refresh", &x->jwks_refresh_s) ||
	    !get_duration(c, o, "jwks_min_refetch", &x->jwks_min_refetch_s) ||
	    !get_duration(c, o, "cache_max_ttl", &x->cache_max_ttl_s) ||
	    !get_int(c, o, "cache_entries", 0, 1 << 24, &entries) ||
	    !get_strlist(c, o, "required_claims", &x->required_claims) ||
	    !get_bool(c, o, "require_at_jwt", &x->require_at_jwt) ||
	    !get_bool(c, o, "trust_unverified_email", &x->trust_unverified_email) ||
	    !get_readable_file(c, o, "ca_file", &x->ca_file) ||
	    !get_str(c, o, "introspection_url", &x->introspection_url) ||
	    !get_str(c, o, "introspection_client_id", &x->introspection_client_id) ||
	    !get_secret(c, o, "introspection_client_secret", &x->introspection_client_secret) ||
	    !get_duration(c, o, "introspection_cache", &x->introspection_cache_s))
		return false;
	x->cache_entries = (size_t)entries;
	if (x->introspection_url && eg_url_https_or_loopback(x->introspection_url, NULL) != 0)
		return fail_at(c, "introspection_url", "must be an https:// URL (http:// only on a loopback address)");
	if (x->introspection_url && (!x->introspection_client_id || !x->introspection_client_secret))
		return fail_at(c, x->introspection_client_id ? "introspection_client_secret" : "introspection_client_id",
			       "required with introspection_url");
	if (!!x->jwks_file == !!x->jwks_url)
		return fail(c, "give exactly one of jwks_file and jwks_url");
	if (x->jwks_url && eg_url_https_or_loopback(x->jwks_url, NULL) != 0)
		return fail_at(c, "jwks_url", "must be an https:// URL (http:// only on a loopback address)");
	/* Bearer tokens of any issuer or for any audience only when the config says so. */
	if (!wildcard_or_list(c, o, "issuer", "issuers", &x->issuers, &x->any_issuer) ||
	    !wildcard_or_list(c, o, "audience", "audiences", &x->audiences, &x->any_audience) ||
	    !check_algorithms(c, o, &x->algorithms))
		return false;
	return true;
}

static bool parse_conditions(struct cctx *c, json_t *o, struct eg_conditions *x)
{
	static const char *const keys[] = { "emails", "domains", "groups", "claims", "cert_subjects",
					    "cert_issuers", "cert_sans", "cert_fingerprints", NULL };
	x->present = true;
	if (!check_keys(c, o, keys) || !get_strlist(c, o, "emails", &x->emails) ||
	    !get_strlist(c, o, "domains", &x->domains) || !get_strlist(c, o, "groups", &x->groups) ||
	    !get_strlist(c, o, "cert_subjects", &x->cert_subjects) ||
	    !get_strlist(c, o, "cert_issuers", &x->cert_issuers) || !get_strlist(c, o, "cert_sans", &x->cert_sans) ||
	    !get_strlist(c, o, "cert_fingerprints", &x->cert_fingerprints))
		return false;
	for (size_t i = 0; i < x->domains.n; i++) {
		const char *d = x->domains.v[i];
		if (!*d || strcmp(d, ".") == 0 || strchr(d, '@') || strchr(d, '/') || d[strlen(d) - 1] == '.') {
			size_t n = push_key(c, "domains");
			size_t m = push_idx(c, i);
			fail(c, "\"%s\" is not a domain (\"x.test\" exact, \".x.test\" subdomains)", d);
			pop(c, m);
			pop(c, n);
			return false;
		}
		for (char *p = x->domains.v[i]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	for (size_t i = 0; i < x->cert_fingerprints.n; i++) {
		const char *f = x->cert_fingerprints.v[i];
		uint8_t raw[32];
		if (strncasecmp(f, "sha256:", 7) != 0 || strlen(f) != 7 + 64 || hex_decode(f + 7, raw, 32) != 0) {
			size_t n = push_key(c, "cert_fingerprints");
			size_t m = push_idx(c, i);
			fail(c, "expected \"sha256:\" followed by 64 hex digits");
			pop(c, m);
			pop(c, n);
			return false;
		}
		for (char *p = x->cert_fingerprints.v[i]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	json_t *claims = json_object_get(o, "claims");
	if (!claims)
		return true;
	size_t n = push_key(c, "claims");
	if (!json_is_object(claims)) {
		fail(c, "expected an object of claim name to value(s)");
		pop(c, n);
		return false;
	}
	x->claims = xcalloc(json_object_size(claims) + 1, sizeof(*x->claims));
	const char *name;
	json_t *val;
	json_object_foreach(claims, name, val) {
		struct eg_claim_cond *cc = &x->claims[x->n_claims++];
		cc->name = xstrdup(name);
		json_t *wrap = json_object();
		/* Values may be strings, numbers or booleans; kept as their JSON text for numbers/bools. */
		if (json_is_array(val)) {
			json_object_set(wrap, name, val);
		} else {
			json_t *arr = json_array();
			json_array_append(arr, val);
			json_object_set_new(wrap, name, arr);
		}
		json_t *arr = json_object_get(wrap, name);
		cc->values.v = xcalloc(json_array_size(arr) + 1, sizeof(char *));
		size_t i;
		json_t *e;
		json_array_foreach(arr, i, e) {
			if (json_is_string(e)) {
				cc->values.v[cc->values.n++] = xstrdup(json_string_value(e));
			} else if (json_is_integer(e) || json_is_boolean(e)) {
				cc->values.v[cc->values.n++] = json_dumps(e, JSON_ENCODE_ANY);
			} else {
				size_t m = push_key(c, name);
				fail(c, "claim values are strings, integers or booleans");
				pop(c, m);
				json_decref(wrap);
				pop(c, n);
				return false;
			}
		}
		json_decref(wrap);
	}
	pop(c, n);
	return true;
}

static bool parse_route(struct cctx *c, json_t *o, struct eg_route *r)
{
	static const char *const keys[] = { "host", "path", "methods", "auth", "api", "allow", "deny",
					    "headers", "explain", NULL };
	char *auth = NULL;
	struct eg_strlist methods = { 0 };
	bool ok = check_keys(c, o, keys) && get_str(c, o, "host", &r->host) && get_str(c, o, "path", &r->path) &&
		  get_strlist(c, o, "methods", &methods) && get_str(c, o, "auth", &auth) &&
		  get_bool(c, o, "api", &r->api) && get_bool(c, o, "explain", &r->explain);
	if (ok && r->host) {
		for (char *p = r->host; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (!*r->host || strchr(r->host, '/') || strchr(r->host, '@')) {
			ok = fail_at(c, "host", "expected a host name");
		}
	}
	if (ok && r->path && r->path[0] != '/') {
		ok = fail_at(c, "path", "must start with '/'");
	}
	if (ok && !r->path)
		r->path = xstrdup("/");
	for (size_t i = 0; ok && i < methods.n; i++) {
		unsigned bit = eg_method_bit(methods.v[i]);
		if (bit == EG_M_OTHER) {
			size_t n = push_key(c, "methods");
			size_t m = push_idx(c, i);
			ok = fail(c, "unknown HTTP method \"%s\" (use upper case)", methods.v[i]);
			pop(c, m);
			pop(c, n);
		}
		r->methods |= bit;
	}
	for (size_t i = 0; i < methods.n; i++)
		free(methods.v[i]);
	free(methods.v);
	if (ok) {
		static const struct { const char *name; enum eg_auth_mode m; } modes[] = {
			{ "public", EG_AUTH_PUBLIC }, { "any", EG_AUTH_ANY }, { "session", EG_AUTH_SESSION },
			{ "bearer", EG_AUTH_BEARER }, { "mtls", EG_AUTH_MTLS },
		};
		r->auth = EG_AUTH_ANY;
		if (auth) {
			bool found = false;
			for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
				if (strcmp(auth, modes[i].name) == 0)
					r->auth = modes[i].m, found = true;
			if (!found) {
				ok = fail_at(c, "auth", "must be one of public, any, session, bearer, mtls");
			}
		}
	}
	free(auth);
	if (ok && json_object_get(o, "allow")) {
		size_t n = push_key(c, "allow");
		ok = parse_conditions(c, json_object_get(o, "allow"), &r->allow);
		pop(c, n);
	}
	if (ok && json_object_get(o, "deny")) {
		size_t n = push_key(c, "deny");
		ok = parse_conditions(c, json_object_get(o, "deny"), &r->deny);
		pop(c, n);
	}
	json_t *h = json_object_get(o, "headers");
	if (ok && h) {
		size_t n = push_key(c, "headers");
		if (!json_is_object(h)) {
			ok = fail(c, "expected an object of header name to claim name");
		} else {
			r->headers = xcalloc(json_object_size(h) + 1, sizeof(*r->headers));
			const char *name;
			json_t *val;
			json_object_foreach(h, name, val) {
				bool good_name = *name != '\0';
				for (const char *p = name; *p; p++)
					if (!isalnum((unsigned char)*p) && *p != '-')
						good_name = false;
				size_t m = push_key(c, name);
				if (!good_name)
					ok = fail(c, "header names use letters, digits and '-'");
				else if (!json_is_string(val))
					ok = fail(c, "expected a claim name");
				pop(c, m);
				if (!ok)
					break;
				r->headers[r->n_headers].header = xstrdup(name);
				r->headers[r->n_headers++].claim = xstrdup(json_string_value(val));
			}
		}
		pop(c, n);
	}
	if (ok && r->auth == EG_AUTH_PUBLIC && (r->allow.present || r->deny.present)) {
		ok = fail(c, "a public route cannot have allow or deny conditions");
	}
	return ok;
}

static bool parse_routes(struct cctx *c, json_t *root, struct eg_config *cfg)
{
	json_t *v = json_object_get(root, "routes");
	if (!v)
		return true;
	size_t n = push_key(c, "routes");
	bool ok = true;
	if (!json_is_array(v)) {
		ok = fail(c, "expected an array of routes");
	} else {
		cfg->routes = xcalloc(json_array_size(v) + 1, sizeof(*cfg->routes));
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			size_t m = push_idx(c, i);
			struct eg_route *r = &cfg->routes[cfg->n_routes++];
			snprintf(r->where, sizeof(r->where), "routes[%zu]", i);
			ok = parse_route(c, e, r);
			pop(c, m);
			if (!ok)
				break;
		}
	}
	pop(c, n);
	return ok;
}

static bool parse_gate(struct cctx *c, json_t *o, struct eg_gate_config *g)
{
	static const char *const keys[] = { "interfaces", "xdp_mode", "pin_root", "protected_ports", "never_ban",
		"syn_rate", "syn_burst", "pkt_rate", "pkt_burst", "observe", "deny", "allow", "max_sources",
		"max_deny", "ban_threshold", "ban_window", "ban_time", "ban_max", "ipv6_group_prefix",
		"verdict_rate", "verdict_burst", "ban_scope", "xdp_dispatcher", "run_priority", "flood_new_sources", NULL };
	g->present = true;
	g->xdp_dispatcher = true;
	g->run_priority = 1;
	long long v6 = g->ipv6_group_plen;
	if (!check_keys(c, o, keys) || !get_strlist(c, o, "interfaces", &g->interfaces) ||
	    !get_str(c, o, "xdp_mode", &g->xdp_mode) || !get_str(c, o, "pin_root", &g->pin_root) ||
	    !get_u32(c, o, "syn_rate", &g->syn_rate) || !get_u32(c, o, "syn_burst", &g->syn_burst) ||
	    !get_u32(c, o, "pkt_rate", &g->pkt_rate) || !get_u32(c, o, "pkt_burst", &g->pkt_burst) ||
	    !get_bool(c, o, "observe", &g->observe) || !parse_prefixes(c, o, "deny", &g->deny, &g->n_deny) ||
	    !parse_prefixes(c, o, "allow", &g->allow, &g->n_allow) ||
	    !get_u32(c, o, "max_sources", &g->max_sources) || !get_u32(c, o, "max_deny", &g->max_deny) ||
	    !get_u32(c, o, "ban_threshold", &g->ban_threshold) || !get_duration(c, o, "ban_window", &g->ban_window_s) ||
	    !get_duration(c, o, "ban_time", &g->ban_time_s) || !get_duration(c, o, "ban_max", &g->ban_max_s) ||
	    !get_int(c, o, "ipv6_group_prefix", 32, 128, &v6) || !get_u32(c, o, "verdict_rate", &g->verdict_rate) ||
	    !get_u32(c, o, "verdict_burst", &g->verdict_burst) ||
	    !get_bool(c, o, "xdp_dispatcher", &g->xdp_dispatcher) ||
	    !get_u32(c, o, "run_priority", &g->run_priority) ||
	    !get_u32(c, o, "flood_new_sources", &g->flood_new_sources))
		return false;
	g->ipv6_group_plen = (uint8_t)v6;
	json_t *scope = json_object_get(o, "ban_scope");
	if (scope) {
		const char *sv = json_string_value(scope);
		if (!sv || (strcmp(sv, "protected") && strcmp(sv, "all")))
			return fail_at(c, "ban_scope", "must be \"protected\" or \"all\"");
		g->ban_scope_all = !strcmp(sv, "all");
	}
	static const char *const modes[] = { "native", "generic", "auto", NULL };
	if (g->xdp_mode && !str_in(g->xdp_mode, modes))
		return fail_at(c, "xdp_mode", "must be native, generic or auto");
	if (!g->xdp_mode)
		g->xdp_mode = xstrdup("auto");
	if (!g->pin_root)
		g->pin_root = xstrdup("/sys/fs/bpf/edgegate");
	if (g->pin_root[0] != '/')
		return fail_at(c, "pin_root", "must be an absolute path on a bpf filesystem");
	if (!parse_prefixes(c, o, "never_ban", &g->never_ban, &g->n_never_ban))
		return false;
	json_t *ports = json_object_get(o, "protected_ports");
	if (ports) {
		size_t n = push_key(c, "protected_ports");
		if (!json_is_array(ports)) {
			fail(c, "expected an array of port numbers");
			pop(c, n);
			return false;
		}
		g->protected_ports = xcalloc(json_array_size(ports) + 1, sizeof(uint16_t));
		size_t i;
		json_t *e;
		json_array_foreach(ports, i, e) {
			if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > 65535) {
				size_t m = push_idx(c, i);
				fail(c, "expected a port number 1..65535");
				pop(c, m);
				pop(c, n);
				return false;
			}
			g->protected_ports[g->n_protected_ports++] = (uint16_t)json_integer_value(e);
		}
		pop(c, n);
	}
	if (g->syn_rate && g->syn_burst < g->syn_rate / 10 + 1 && json_object_get(o, "syn_burst") == NULL)
		g->syn_burst = g->syn_rate * 2;
	return true;
}

/* A duration kept in milliseconds ("250ms" or "2s"); lo..hi in ms. */
static bool get_ms(struct cctx *c, json_t *o, const char *key, long long lo, long long hi, int64_t *out)
{
	json_t *j = json_object_get(o, key);
	if (!j)
		return true;
	const char *v = json_string_value(j);
	char *end = NULL;
	long long ms = v && isdigit((unsigned char)v[0]) ? strtoll(v, &end, 10) : -1;
	if (ms >= 0 && strcmp(end, "s") == 0 && ms <= 86400)
		ms *= 1000;
	else if (ms >= 0 && strcmp(end, "ms") != 0)
		ms = -1;
	if (ms < lo || ms > hi)
		return fail_at(c, key, "expected a duration between %lldms and %llds (ms or s)", lo, hi / 1000);
	*out = ms;
	return true;
}

/* Several hosts (issue 12): Sentinel, timeouts, outage grace, stream length. */
static bool parse_store_shared(struct cctx *c, json_t *o, struct eg_store_config *s)
{
	long long maxlen = s->stream_maxlen ? s->stream_maxlen : 100000;
	int64_t grace_ms = 60000; /* default outage grace */
	if (!get_strlist(c, o, "sentinels", &s->sentinels) || !get_str(c, o, "master_name", &s->master_name) ||
	    !get_ms(c, o, "timeout", 10, 5000, &s->timeout_ms) || !get_ms(c, o, "outage_grace", 0, 86400000, &grace_ms) ||
	    !get_int(c, o, "stream_maxlen", 1000, 100000000, &maxlen))
		return false;
	s->outage_grace_s = grace_ms / 1000;
	s->outage_grace_set = json_object_get(o, "outage_grace") != NULL;
	s->stream_maxlen = maxlen;
	for (size_t i = 0; i < s->sentinels.n; i++) {
		const char *colon = strrchr(s->sentinels.v[i], ':');
		if (!colon || colon == s->sentinels.v[i] || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535)
			return fail_at(c, "sentinels", "expected \"host:port\" entries");
	}
	if (s->sentinels.n && !s->master_name)
		return fail_at(c, "master_name", "required with store.sentinels");
	if (s->master_name && !s->sentinels.n)
		return fail_at(c, "sentinels", "required with store.master_name");
	return true;
}

static bool parse_store(struct cctx *c, json_t *o, struct eg_store_config *s)
{
	static const char *const keys[] = { "redis", "prefix", "sync", "map_size", "sentinels", "master_name",
					    "timeout", "outage_grace", "stream_maxlen", NULL };
	json_t *sync = json_object_get(o, "sync");
	long long map = s->map_size;
	if (!check_keys(c, o, keys) || !get_str(c, o, "redis", &s->redis) || !get_str(c, o, "prefix", &s->prefix) ||
	    !parse_store_shared(c, o, s))
		return false;
	/* bytes; small maps are for tests of a full store (docs/config.md) */
	if (!get_int(c, o, "map_size", 65536, 1LL << 40, &map))
		return false;
	s->map_size = map;
	if (sync) {
		/* Sub-second values matter here, so this duration is kept in milliseconds. */
		const char *v = json_string_value(sync);
		char *end = NULL;
		long long ms = v && isdigit((unsigned char)v[0]) ? strtoll(v, &end, 10) : -1;
		if (ms >= 0 && strcmp(end, "s") == 0 && ms <= 600)
			ms *= 1000;
		else if (ms >= 0 && strcmp(end, "ms") != 0)
			ms = -1;
		if (ms < 100 || ms > 600000)
			return fail_at(c, "sync", "expected a duration between \"100ms\" and \"600s\" (ms or s)");
		s->sync_ms = ms;
	}
	if (s->redis && strncmp(s->redis, "redis://", 8) != 0 && strncmp(s->redis, "unix:", 5) != 0)
		return fail_at(c, "redis", "expected redis://HOST:PORT[/DB] or unix:/path");
	return true;
}

static bool parse_mtls(struct cctx *c, json_t *o, struct eg_mtls_config *m)
{
	static const char *const keys[] = { "revoked_file", "crl_files", "cert_files", NULL };
	return check_keys(c, o, keys) && get_str(c, o, "revoked_file", &m->revoked_file) &&
	       get_strlist(c, o, "crl_files", &m->crl_files) && get_strlist(c, o, "cert_files", &m->cert_files);
}

static bool parse_http(struct cctx *c, json_t *o, struct eg_http_config *h)
{
	static const char *const keys[] = { "max_connections", "max_connections_per_ip", "reserved_for_proxies",
		"header_timeout", "idle_timeout", "lane", "lane_threads", "store_workers", "store_queue",
		"store_queue_wait", NULL };
	if (!check_keys(c, o, keys) || !get_u32(c, o, "max_connections", &h->max_connections) ||
	    !get_u32(c, o, "max_connections_per_ip", &h->max_connections_per_ip) ||
	    !get_u32(c, o, "reserved_for_proxies", &h->reserved_for_proxies) ||
	    !get_duration(c, o, "header_timeout", &h->header_timeout_s) ||
	    !get_duration(c, o, "idle_timeout", &h->idle_timeout_s) || !get_bool(c, o, "lane", &h->lane) ||
	    !get_u32(c, o, "store_workers", &h->store_workers) || !get_u32(c, o, "store_queue", &h->store_queue) ||
	    !get_ms(c, o, "store_queue_wait", 10, 9000, &h->store_queue_wait_ms) ||
	    !get_u32(c, o, "lane_threads", &h->lane_threads))
		return false;
	if (h->max_connections < 16 || h->max_connections > 65536)
		return fail_at(c, "max_connections", "must be between 16 and 65536");
	if (h->reserved_for_proxies >= h->max_connections)
		return fail_at(c, "reserved_for_proxies", "must be less than max_connections (%u)", h->max_connections);
	if (h->header_timeout_s < 1 || h->header_timeout_s > 3600)
		return fail_at(c, "header_timeout", "must be between 1s and 1h");
	if (h->idle_timeout_s < 1 || h->idle_timeout_s > 86400)
		return fail_at(c, "idle_timeout", "must be between 1s and 1d");
	if (h->store_workers < 1 || h->store_workers > 64)
		return fail_at(c, "store_workers", "must be between 1 and 64");
	if (h->store_queue < 1 || h->store_queue > 65536)
		return fail_at(c, "store_queue", "must be between 1 and 65536");
	if (json_object_get(o, "lane_threads") && (h->lane_threads < 1 || h->lane_threads > 256))
		return fail_at(c, "lane_threads", "must be between 1 and 256");
	return true;
}

static bool parse_revocation(struct cctx *c, json_t *o, struct eg_revocation_config *v)
{
	static const char *const keys[] = { "flows_per_session", "flows_per_subject", NULL };
	long long n = 0, ns = 0;
	if (!check_keys(c, o, keys) || !get_int(c, o, "flows_per_session", 1, 4096, &n) ||
	    !get_int(c, o, "flows_per_subject", 1, EG_MAX_FLOWS, &ns))
		return false;
	v->flows_per_session = (uint32_t)n;
	/* below one session's bound, every session of the subject would be bound by it instead:
	 * a subject bound that silently overrides flows_per_session is a mistake, not a setting */
	long long per_session = n ? n : EG_FLOWS_PER_SESSION;
	if (ns && ns < per_session)
		return fail_at(c, "flows_per_subject", "must be at least flows_per_session (%lld)", per_session);
	v->flows_per_subject = (uint32_t)ns;
	return true;
}

static bool parse_metrics(struct cctx *c, json_t *o, struct eg_metrics_config *m)
{
	static const char *const keys[] = { "allow", NULL };
	return check_keys(c, o, keys) && parse_prefixes(c, o, "allow", &m->allow, &m->n_allow);
}

static bool section(struct cctx *c, json_t *root, const char *key, json_t **out)
{
	*out = json_object_get(root, key);
	return *out != NULL;
}

static void set_defaults(struct eg_config *cfg)
{
	cfg->jwt.leeway_s = 60;
	cfg->jwt.require_exp = true;
	cfg->jwt.jwks_refresh_s = 300;
	cfg->jwt.jwks_min_refetch_s = 10;
	cfg->jwt.cache_max_ttl_s = 3600;
	cfg->jwt.cache_entries = 65536;
	cfg->jwt.introspection_cache_s = 60;
	cfg->cookie.secure = true;
	cfg->cookie.idle_s = 8 * 3600;
	cfg->cookie.lifetime_s = 7 * 86400;
	cfg->gate.syn_rate = 50;
	cfg->gate.syn_burst = 100;
	cfg->gate.max_sources = 262144;
	cfg->gate.max_deny = 1048576;
	cfg->gate.ban_threshold = 20;
	cfg->gate.ban_window_s = 60;
	cfg->gate.ban_time_s = 600;
	cfg->gate.ban_max_s = 86400;
	cfg->gate.ipv6_group_plen = 64;
	cfg->http.max_connections = 4096;
	cfg->http.max_connections_per_ip = 32;
	cfg->http.reserved_for_proxies = 256;
	cfg->http.header_timeout_s = 10;
	cfg->http.idle_timeout_s = 75;
	cfg->http.lane = true;
	cfg->http.store_workers = 4;
	cfg->http.store_queue = 4096;
	cfg->http.store_queue_wait_ms = 5000;
}

int eg_group_id(const char *name, gid_t *out)
{
	char *end;
	unsigned long v = strtoul(name, &end, 10);
	if (*name >= '0' && *name <= '9' && !*end && v < (gid_t)-1) {
		*out = (gid_t)v;
		return 0;
	}
	struct group g, *res = NULL;
	char buf[4096];
	if (getgrnam_r(name, &g, buf, sizeof(buf), &res) != 0 || !res)
		return -1;
	*out = res->gr_gid;
	return 0;
}

bool eg_user_known(const char *name)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	return getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res;
}

static bool parse_proxy(struct cctx *c, json_t *root, struct eg_config *cfg)
{
	char *name = NULL;
	if (!get_str(c, root, "proxy", &name))
		return false;
	cfg->proxy = name ? eg_proxy_find(name) : eg_proxy_default();
	free(name);
	if (!cfg->proxy)
		return fail_at(c, "proxy", "must be %s", eg_proxy_names());
	return true;
}

static bool parse_root(struct cctx *c, json_t *root, struct eg_config *cfg)
{
	static const char *const keys[] = { "listen", "admin_socket", "trusted_proxies", "state_dir", "user",
		"log_level", "public_url", "default_allow", "threads", "redirect_domains", "oidc", "cookie",
		"jwt", "routes", "gate", "store", "mtls", "proxy", "listen_group", "http", "revocation", "metrics",
		NULL };
	long long threads = 0;
	json_t *s;
	if (!check_keys(c, root, keys) || !parse_listen(c, root, cfg) ||
	    !get_str(c, root, "admin_socket", &cfg->admin_socket) ||
	    !parse_prefixes(c, root, "trusted_proxies", &cfg->trusted_proxies, &cfg->n_trusted_proxies) ||
	    !get_str(c, root, "state_dir", &cfg->state_dir) || !get_str(c, root, "user", &cfg->user) ||
	    !get_str(c, root, "log_level", &cfg->log_level) || !get_str(c, root, "public_url", &cfg->public_url) ||
	    !get_bool(c, root, "default_allow", &cfg->default_allow) ||
	    !get_int(c, root, "threads", 1, 256, &threads) ||
	    !get_strlist(c, root, "redirect_domains", &cfg->redirect_domains) ||
	    !parse_proxy(c, root, cfg) || !get_str(c, root, "listen_group", &cfg->listen_group))
		return false;
	gid_t gid;
	if (cfg->listen_group && eg_group_id(cfg->listen_group, &gid) != 0)
		return fail_at(c, "listen_group", "no group \"%s\" on this system (nginx's group, e.g. www-data)",
			       cfg->listen_group);
	/* the account it drops to: a typo found by --check, not at the first start as root */
	if (cfg->user && !eg_user_known(cfg->user))
		return fail_at(c, "user", "no user \"%s\" on this system (the account edgegated drops to)",
			       cfg->user);
	cfg->threads = (int)threads;
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	if (cfg->log_level && !str_in(cfg->log_level, levels))
		return fail_at(c, "log_level", "must be error, warn, info or debug");
	if (cfg->public_url && strncmp(cfg->public_url, "https://", 8) != 0 &&
	    strncmp(cfg->public_url, "http://", 7) != 0) {
		return fail_at(c, "public_url", "expected an http(s):// URL");
	}
#define SECTION(name, fn, field)                                                   \
	if (section(c, root, name, &s)) {                                           \
		size_t n = push_key(c, name);                                       \
		bool ok = json_is_object(s) ? fn(c, s, field) : fail(c, "expected an object"); \
		pop(c, n);                                                          \
		if (!ok)                                                            \
			return false;                                               \
	}
	SECTION("oidc", parse_oidc, &cfg->oidc)
	SECTION("jwt", parse_jwt, &cfg->jwt)
	SECTION("gate", parse_gate, &cfg->gate)
	SECTION("store", parse_store, &cfg->store)
	SECTION("mtls", parse_mtls, &cfg->mtls)
	SECTION("http", parse_http, &cfg->http)
	SECTION("revocation", parse_revocation, &cfg->revocation)
	SECTION("metrics", parse_metrics, &cfg->metrics)
#undef SECTION
	s = json_object_get(root, "cookie");
	if (s) {
		size_t n = push_key(c, "cookie");
		bool ok = json_is_object(s) ? parse_cookie(c, s, &cfg->cookie) : fail(c, "expected an object");
		pop(c, n);
		if (!ok)
			return false;
	}
	if (!cfg->cookie.secure && !eg_url_is_loopback(cfg->public_url)) {
		snprintf(c->path, sizeof(c->path), "cookie.secure");
		return fail(c, "false is only allowed when public_url is a loopback address (a demo)");
	}
	if (!check_cookie_prefix(c, &cfg->cookie))
		return false;
	if (!parse_routes(c, root, cfg))
		return false;
	for (size_t i = 0; i < cfg->n_routes; i++) {
		enum eg_auth_mode m = cfg->routes[i].auth;
		if ((m == EG_AUTH_SESSION) && !cfg->oidc.present) {
			snprintf(c->path, sizeof(c->path), "routes[%zu].auth", i);
			return fail(c, "\"session\" needs an oidc section");
		}
		if (m == EG_AUTH_BEARER && !cfg->jwt.present) {
			snprintf(c->path, sizeof(c->path), "routes[%zu].auth", i);
			return fail(c, "\"bearer\" needs a jwt section");
		}
		if (m == EG_AUTH_ANY && !cfg->jwt.present && !cfg->oidc.present) {
			snprintf(c->path, sizeof(c->path), "routes[%zu].auth", i);
			return fail(c, "\"any\" needs an oidc or a jwt section");
		}
	}
	return true;
}

static void fill_defaults_after(struct eg_config *cfg)
{
	if (!cfg->cookie.name)
		cfg->cookie.name = xstrdup(!cfg->cookie.secure		    ? "_edgegate"
					   : cookie_host_prefix_ok(&cfg->cookie) ? "__Host-edgegate"
										 : "__Secure-edgegate");
	if (!cfg->cookie.path)
		cfg->cookie.path = xstrdup("/");
	if (!cfg->state_dir)
		cfg->state_dir = xstrdup("/var/lib/edgegate");
	if (!cfg->admin_socket)
		cfg->admin_socket = xstrdup("/run/edgegate/admin.sock");
	if (!cfg->gate.pin_root)
		cfg->gate.pin_root = xstrdup("/sys/fs/bpf/edgegate");
	if (!cfg->gate.xdp_mode)
		cfg->gate.xdp_mode = xstrdup("auto");
	if (!cfg->store.prefix)
		cfg->store.prefix = xstrdup("edgegate:");
	if (!cfg->store.timeout_ms)
		cfg->store.timeout_ms = 300;
	if (!cfg->store.stream_maxlen)
		cfg->store.stream_maxlen = 100000;
	if (!cfg->store.outage_grace_set)
		cfg->store.outage_grace_s = 60;
	if (!cfg->log_level)
		cfg->log_level = xstrdup("info");
	if (cfg->n_trusted_proxies == 0) {
		cfg->trusted_proxies = xcalloc(2, sizeof(struct eg_prefix));
		/* the proxy on this host; not all of 127/8, which any local user can bind */
		eg_parse_prefix("127.0.0.1/32", &cfg->trusted_proxies[0]);
		eg_parse_prefix("::1/128", &cfg->trusted_proxies[1]);
		cfg->n_trusted_proxies = 2;
	}
}

struct eg_config *config_parse(const char *json, size_t len, const char *file, char *err, size_t errlen)
{
	struct cctx c = { .err = err, .errlen = errlen };
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", file ? file : "config", jerr.line,
			 jerr.column, jerr.text);
		return NULL;
	}
	struct eg_config *cfg = xcalloc(1, sizeof(*cfg));
	set_defaults(cfg);
	cfg->path = file ? xstrdup(file) : NULL;
	bool ok = parse_root(&c, root, cfg);
	json_decref(root);
	if (!ok) {
		config_free(cfg);
		return NULL;
	}
	fill_defaults_after(cfg);
	return cfg;
}

struct eg_config *config_load(const char *file, char *err, size_t errlen)
{
	size_t len;
	char *data = read_file(file, 4 << 20, &len);
	if (!data) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return NULL;
	}
	struct eg_config *cfg = config_parse(data, len, file, err, errlen);
	free(data);
	return cfg;
}

static void strlist_free(struct eg_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static void conditions_free(struct eg_conditions *x)
{
	strlist_free(&x->emails);
	strlist_free(&x->domains);
	strlist_free(&x->groups);
	strlist_free(&x->cert_subjects);
	strlist_free(&x->cert_issuers);
	strlist_free(&x->cert_sans);
	strlist_free(&x->cert_fingerprints);
	for (size_t i = 0; i < x->n_claims; i++) {
		free(x->claims[i].name);
		strlist_free(&x->claims[i].values);
	}
	free(x->claims);
}

void config_free(struct eg_config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->listen_group);
	free(c->admin_socket);
	free(c->trusted_proxies);
	free(c->metrics.allow);
	free(c->state_dir);
	free(c->user);
	free(c->log_level);
	free(c->public_url);
	strlist_free(&c->redirect_domains);
	struct eg_oidc_config *o = &c->oidc;
	free(o->issuer);
	free(o->client_id);
	free(o->client_secret);
	free(o->redirect_url);
	strlist_free(&o->scopes);
	free(o->token_auth_method);
	strlist_free(&o->algorithms);
	free(o->post_logout_redirect_url);
	free(o->groups_claim);
	free(o->email_claim);
	free(o->user_claim);
	free(o->ca_file);
	free(o->client_key_file);
	free(o->client_key_id);
	free(o->client_key_alg);
	free(c->cookie.name);
	free(c->cookie.domain);
	free(c->cookie.path);
	free(c->cookie.secret);
	struct eg_jwt_config *j = &c->jwt;
	free(j->jwks_file);
	free(j->jwks_url);
	strlist_free(&j->issuers);
	strlist_free(&j->audiences);
	strlist_free(&j->algorithms);
	strlist_free(&j->required_claims);
	free(j->ca_file);
	free(j->introspection_url);
	free(j->introspection_client_id);
	if (j->introspection_client_secret)
		OPENSSL_cleanse(j->introspection_client_secret, strlen(j->introspection_client_secret));
	free(j->introspection_client_secret);
	free(j->cookie);
	free(j->query_param);
	for (size_t i = 0; i < c->n_routes; i++) {
		struct eg_route *r = &c->routes[i];
		free(r->host);
		free(r->path);
		conditions_free(&r->allow);
		conditions_free(&r->deny);
		for (size_t k = 0; k < r->n_headers; k++) {
			free(r->headers[k].header);
			free(r->headers[k].claim);
		}
		free(r->headers);
	}
	free(c->routes);
	struct eg_gate_config *g = &c->gate;
	strlist_free(&g->interfaces);
	free(g->xdp_mode);
	free(g->pin_root);
	free(g->protected_ports);
	free(g->deny);
	free(g->allow);
	free(g->never_ban);
	free(c->store.redis);
	free(c->store.prefix);
	strlist_free(&c->store.sentinels);
	free(c->store.master_name);
	free(c->mtls.revoked_file);
	strlist_free(&c->mtls.crl_files);
	strlist_free(&c->mtls.cert_files);
	free(c);
}
