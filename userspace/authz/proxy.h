/* proxy.h - the proxy boundary: which headers of the auth request carry the original
 * request, per reverse proxy (the config's "proxy" profile).
 *
 * A profile names only headers that proxy always sets itself, overwriting whatever the
 * client sent. Nothing else is read: no fallback from one header family to another, no
 * default method, no client Host when the proxy routes on another. docs/trust-model.md. */
#ifndef EG_PROXY_H
#define EG_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct eg_req;

struct eg_proxy_profile {
	const char *name;
	const char *method; /* NULL: the auth request's own method (Envoy ext_authz) */
	const char *target; /* NULL: the auth request's own target after EG_PROXY_PATH_PREFIX */
	const char *host;
	const char *scheme;
	const char *client_addr;
	bool client_addr_list;   /* X-Forwarded-For: the proxy's own peer is the last element */
	const char *client_port; /* the rest: NULL when that proxy does not send it */
	const char *server_addr;
	const char *server_port;
	const char *cert;
	const char *cert_verify;
	/* The client's own Host header as the proxy received it (nginx: $http_host), which an
	 * upstream behind `proxy_set_header Host $http_host` gets: judged as another reading of
	 * the host. Optional (older snippets lack it); NULL when that proxy does not send it. */
	const char *client_host;
	const char *fix; /* what to do when one of its headers is missing */
};

/* Envoy ext_authz HTTP: path_prefix "/auth" puts the original path after it. */
#define EG_PROXY_PATH_PREFIX "/auth"

const struct eg_proxy_profile *eg_proxy_find(const char *name); /* NULL: unknown */
const struct eg_proxy_profile *eg_proxy_default(void);          /* nginx */
/* "nginx, traefik, caddy or envoy", for error messages */
const char *eg_proxy_names(void);

/* The original request as the proxy states it. Pointers into the request. */
struct eg_forwarded {
	const char *method;
	const char *target;
	const char *host;
	const char *scheme; /* "http" or "https" */
	const char *client_host; /* the profile's client_host header; NULL when absent */
	uint8_t client[16]; /* IPv4-mapped when v4 */
};

/* 0 ok; -1 with *reason (missing_proxy_header, duplicate_proxy_header, bad_scheme,
 * bad_client_address). A missing header is logged once a minute with the fix; a missing
 * client_host header once per process (an older snippet). */
int eg_proxy_read(const struct eg_req *r, struct eg_forwarded *f, const char **reason);

/* The last element of an X-Forwarded-For list (the address the proxy itself saw). 0 ok. */
int eg_proxy_last_addr(const char *list, uint8_t out[16]);

/* The path of a target the proxy states for the host it routed on (normalised, as
 * eg_host_normalize gives it). Origin form is itself; an absolute http(s) target must name
 * that host, else *reason = host_mismatch (bad_host, bad_path). NULL on failure. */
const char *eg_proxy_target_path(const char *target, const char *routed_host, const char **reason);

/* An X-Forwarded-Prefix value an app reads one way only: a plain absolute path (no "//",
 * dot segment, escape, comma, backslash, control or other delimiter), at most 1024 bytes.
 * *len: the bytes to prepend to the path (trailing '/' dropped, as Spring and ASP.NET do;
 * 0 for "/"). */
bool eg_proxy_prefix(const char *value, size_t *len);

/* One optional header of the profile (port, server address, certificate): NULL when the
 * profile has none or the request lacks it; *dup set when it is repeated. */
const char *eg_proxy_optional(const struct eg_req *r, const char *header, bool *dup);

#endif
