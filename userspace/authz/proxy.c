/* proxy.c - proxy profiles and reading the original request from the auth request.
 *
 * Each profile lists the headers its proxy sets on the auth request itself, overwriting
 * any the client sent (checked against each proxy's documentation and, for nginx and
 * Caddy, by the integration tests). A header outside the profile is never read, even if
 * another proxy would have sent it: a proxy passes unknown client headers through. */
#include "proxy.h"

#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "policy.h"
#include "util.h"

static const struct eg_proxy_profile profiles[] = {
	{
		/* tools/nginx/edgegate.conf: proxy_set_header replaces the client's header of that
		 * name; Host is $host, the name nginx chose the server block by, X-Original-Host
		 * the client's raw Host ($http_host), empty (so not sent) when it sent none. */
		.name = "nginx",
		.method = "X-Original-Method",
		.target = "X-Original-URI",
		.host = "Host",
		.scheme = "X-Forwarded-Proto",
		.client_addr = "X-Real-IP",
		.client_port = "X-Real-Port",
		.server_addr = "X-Server-Addr",
		.server_port = "X-Server-Port",
		.cert = "X-SSL-Client-Cert",
		.cert_verify = "X-SSL-Client-Verify",
		.client_host = "X-Original-Host",
		.fix = "include tools/nginx/edgegate.conf in the server block and protect locations with "
		       "edgegate-protect.conf; do not set these headers elsewhere",
	},
	{
		/* forwardAuth sets X-Forwarded-{Method,Proto,Host,Uri,For} from the request it
		 * received; with trustForwardHeader false (the default) the client's are replaced. */
		.name = "traefik",
		.method = "X-Forwarded-Method",
		.target = "X-Forwarded-Uri",
		.host = "X-Forwarded-Host",
		.scheme = "X-Forwarded-Proto",
		.client_addr = "X-Forwarded-For",
		.client_addr_list = true,
		.fix = "use tools/traefik/edgegate.yml (forwardAuth with trustForwardHeader: false)",
	},
	{
		/* forward_auth sets X-Forwarded-Method and X-Forwarded-Uri; its reverse_proxy sets
		 * X-Forwarded-{For,Proto,Host}, ignoring the client's unless it is a trusted proxy. */
		.name = "caddy",
		.method = "X-Forwarded-Method",
		.target = "X-Forwarded-Uri",
		.host = "X-Forwarded-Host",
		.scheme = "X-Forwarded-Proto",
		.client_addr = "X-Forwarded-For",
		.client_addr_list = true,
		.fix = "use tools/caddy/Caddyfile (forward_auth, no trusted_proxies)",
	},
	{
		/* ext_authz HTTP: the check request keeps the original method and :authority and
		 * carries the original path after path_prefix; x-forwarded-proto and
		 * x-forwarded-for are the connection manager's (use_remote_address: true). */
		.name = "envoy",
		.method = NULL,
		.target = NULL,
		.host = "Host",
		.scheme = "X-Forwarded-Proto",
		.client_addr = "X-Forwarded-For",
		.client_addr_list = true,
		.fix = "use tools/envoy/edgegate.yaml (path_prefix /auth, allowed_headers x-forwarded-proto "
		       "and x-forwarded-for, use_remote_address: true)",
	},
};

#define N_PROFILES (sizeof(profiles) / sizeof(profiles[0]))

const struct eg_proxy_profile *eg_proxy_find(const char *name)
{
	for (size_t i = 0; name && i < N_PROFILES; i++)
		if (strcmp(profiles[i].name, name) == 0)
			return &profiles[i];
	return NULL;
}

const struct eg_proxy_profile *eg_proxy_default(void)
{
	return &profiles[0];
}

const char *eg_proxy_names(void)
{
	return "nginx, traefik, caddy or envoy";
}

/* One warning per header per minute: a misconfigured proxy sends every request without
 * it, and the log must name the fix without drowning. */
enum { SLOT_METHOD, SLOT_TARGET, SLOT_HOST, SLOT_SCHEME, SLOT_CLIENT, N_SLOTS };
static _Atomic int64_t last_warned[N_SLOTS];

static void warn_missing(const struct eg_proxy_profile *p, int slot, const char *header)
{
	int64_t now = now_realtime_s(), last = atomic_load(&last_warned[slot]);
	if (now - last < 60 || !atomic_compare_exchange_strong(&last_warned[slot], &last, now))
		return;
	log_warn("proxy %s: the auth request has no %s header, every request is denied (403 "
		 "missing_proxy_header); fix: %s", p->name, header, p->fix);
}

static const char *required(const struct eg_req *r, const struct eg_proxy_profile *p, int slot, const char *header,
			    const char **reason)
{
	bool dup = false;
	const char *v = eg_req_header_dup(r, header, &dup);
	if (!v) {
		warn_missing(p, slot, header);
		*reason = "missing_proxy_header";
	} else if (dup) {
		*reason = "duplicate_proxy_header";
		v = NULL;
	}
	return v;
}

/* The client's raw Host. Absent: a snippet older than the header (the host nginx routed on
 * alone is judged, as before), or a client that sent no Host (HTTP/1.0), which nginx
 * leaves out of an empty proxy_set_header. Said once, and not at all once the header has
 * been seen: then the snippet is current. */
static atomic_bool client_host_seen, client_host_warned;

static int read_client_host(const struct eg_req *r, const struct eg_proxy_profile *p, struct eg_forwarded *f,
			    const char **reason)
{
	bool dup = false;
	f->client_host = eg_req_header_dup(r, p->client_host, &dup);
	if (dup) {
		*reason = "duplicate_proxy_header";
		return -1;
	}
	if (f->client_host) {
		if (!atomic_load_explicit(&client_host_seen, memory_order_relaxed))
			atomic_store(&client_host_seen, true); /* one store, not one per verdict */
	} else if (!atomic_load(&client_host_seen) && !atomic_exchange(&client_host_warned, true)) {
		log_warn("proxy %s: the auth request has no %s header: the proxy snippet is older than it, so "
			 "the client's own Host header (what an upstream behind proxy_set_header Host $http_host "
			 "gets) is not judged, only the host the proxy routed on; fix: update the snippet from "
			 "tools/%s/ (said once; a client that sends no Host, HTTP/1.0, omits it too)",
			 p->name, p->client_host, p->name);
	}
	return 0;
}

int eg_proxy_last_addr(const char *list, uint8_t out[16])
{
	const char *comma = strrchr(list, ',');
	const char *s = comma ? comma + 1 : list;
	while (*s == ' ' || *s == '\t')
		s++;
	char buf[64];
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return eg_addr_parse(buf, out);
}

/* Envoy: the check request's own target is EG_PROXY_PATH_PREFIX + the original one. */
static const char *own_target(const struct eg_req *r, const char **reason)
{
	size_t pl = strlen(EG_PROXY_PATH_PREFIX);
	if (!r->raw_target || strncmp(r->raw_target, EG_PROXY_PATH_PREFIX, pl) != 0 || r->raw_target[pl] != '/') {
		*reason = "missing_proxy_header";
		return NULL;
	}
	return r->raw_target + pl;
}

int eg_proxy_read(const struct eg_req *r, struct eg_forwarded *f, const char **reason)
{
	const struct eg_proxy_profile *p = r->proxy ? r->proxy : eg_proxy_default();
	memset(f, 0, sizeof(*f));
	f->method = p->method ? required(r, p, SLOT_METHOD, p->method, reason) : r->method;
	if (!f->method)
		return -1;
	f->target = p->target ? required(r, p, SLOT_TARGET, p->target, reason) : own_target(r, reason);
	if (!f->target)
		return -1;
	f->host = required(r, p, SLOT_HOST, p->host, reason);
	if (!f->host)
		return -1;
	const char *scheme = required(r, p, SLOT_SCHEME, p->scheme, reason);
	if (!scheme)
		return -1;
	if (strcmp(scheme, "https") == 0 || strcmp(scheme, "http") == 0) {
		f->scheme = scheme;
	} else {
		*reason = "bad_scheme";
		return -1;
	}
	const char *client = required(r, p, SLOT_CLIENT, p->client_addr, reason);
	if (!client)
		return -1;
	if ((p->client_addr_list ? eg_proxy_last_addr(client, f->client) : eg_addr_parse(client, f->client)) != 0) {
		*reason = "bad_client_address";
		return -1;
	}
	return p->client_host ? read_client_host(r, p, f, reason) : 0;
}

/* An absolute-form target names the host itself: it must be the host the proxy routed on
 * (nginx and Go servers route by the request line's host), or two readings differ. */
const char *eg_proxy_target_path(const char *target, const char *routed_host, const char **reason)
{
	if (target[0] == '/')
		return target;
	size_t sl = strncasecmp(target, "https://", 8) == 0 ? 8 : strncasecmp(target, "http://", 7) == 0 ? 7 : 0;
	if (!sl) {
		*reason = "bad_path";
		return NULL;
	}
	const char *auth = target + sl, *path = auth + strcspn(auth, "/?#");
	size_t hl = (size_t)(path - auth);
	char raw[256], norm[256];
	if (hl == 0 || hl >= sizeof(raw) || memchr(auth, '@', hl)) {
		*reason = "bad_host";
		return NULL;
	}
	memcpy(raw, auth, hl);
	raw[hl] = '\0';
	if (eg_host_normalize(raw, norm, sizeof(norm)) != 0 || strcmp(norm, routed_host) != 0) {
		*reason = "host_mismatch";
		return NULL;
	}
	if (*path != '/' && *path != '\0') {
		*reason = "bad_path"; /* "http://host?x": no path to judge */
		return NULL;
	}
	return *path == '/' ? path : "/";
}

const char *eg_proxy_optional(const struct eg_req *r, const char *header, bool *dup)
{
	*dup = false;
	return header ? eg_req_header_dup(r, header, dup) : NULL;
}

/* Comma: Spring joins list elements, Flask and ASP.NET keep it. "//": a link or redirect
 * built from it leaves the site. Escapes and dot segments: decoded or resolved by some. */
bool eg_proxy_prefix(const char *p, size_t *len)
{
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		n--;
	if (n == 0 || p[0] != '/' || n > 1024)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch <= 0x20 || ch >= 0x7f || strchr("%,\\?#\"<>`{}|^[]", ch))
			return false;
		if (ch != '/')
			continue;
		const char *seg = p + i + 1;
		size_t sl = strcspn(seg, "/");
		if (i + 1 + sl > n)
			sl = n - i - 1;
		if ((sl == 0 && i + 1 < n) || (sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
			return false; /* "//", "/.", "/.." */
	}
	*len = n == 1 ? 0 : n;
	return true;
}
