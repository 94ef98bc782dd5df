/* http.h - the libmicrohttpd glue: one request/response shape for every endpoint.
 *
 * Handlers see a parsed request (method, path, headers, query, cookies, body)
 * and fill a response; http.c turns it into an MHD response. Responses are
 * queued on the second callback so nginx's upstream keep-alive is honoured. */
#ifndef EG_HTTP_H
#define EG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;
struct eg_daemon;
struct eg_hdr_index;
struct eg_lane_msg;
struct eg_proxy_profile;

/* How a handler may use the store on this pass over a request (offload.h). The verdict
 * is first tried on the libmicrohttpd thread without it; only what needs the store goes
 * to the store workers, so a hung store never holds up a verdict that needs none. */
enum eg_store_use {
	EG_STORE_USE_ANY = 0, /* as needed (a store worker; callers outside HTTP) */
	EG_STORE_USE_NONE,    /* stop short where the store would be used: store_needed */
	EG_STORE_USE_DOWN,    /* the workers are saturated: decide as during a store outage */
};

struct eg_req_pass {
	enum eg_store_use use;
	bool store_needed; /* USE_NONE: the handler stopped short, nothing was answered */
	bool admitted;     /* the source passed the ban/rate check on an earlier pass */
};

struct eg_req {
	struct MHD_Connection *conn;
	const char *method;
	const char *url;  /* path as received, no query */
	bool peer_trusted; /* peer is a configured nginx (trusted_proxies or unix socket) */
	bool peer_unix;
	uint8_t peer_addr[16]; /* IPv4-mapped when v4; zero for unix peers */
	const char *body;  /* request body (POST), NUL-terminated, may be NULL */
	size_t body_len;
	const struct eg_hdr_index *hidx; /* the headers the daemon reads, indexed in one pass */
	const char *raw_target; /* request-target as received (path and query, not decoded) */
	const struct eg_proxy_profile *proxy; /* which headers carry the original request (proxy.h) */
	const struct eg_lane_msg *lane; /* the verdict lane's request (conn is NULL then): its headers */
	struct eg_req_pass *pass; /* NULL: the store may be used as needed */
};

/* Every request header in order, from either front; fn returns false to stop. */
void eg_req_headers_iter(const struct eg_req *r, bool (*fn)(void *arg, const char *key, const char *value), void *arg);
/* The same, with each name's length (the lane's reader has it; libmicrohttpd's are measured) */
void eg_req_headers_iter_n(const struct eg_req *r, bool (*fn)(void *arg, const char *key, size_t key_len, const char *value),
			   void *arg);

/* Header value or NULL. If the header appears more than once, *dup (when given)
 * is set true: callers treat duplicated security headers as malformed. */
const char *eg_req_header(const struct eg_req *r, const char *name);
const char *eg_req_header_dup(const struct eg_req *r, const char *name, bool *dup);
/* Query argument (percent-decoded) or NULL; count receives occurrences. */
const char *eg_req_arg(const struct eg_req *r, const char *name, int *count);
/* Cookie value from the Cookie header(s), or NULL. Copies into buf (size len). */
const char *eg_req_cookie(const struct eg_req *r, const char *name, char *buf, size_t len);
/* How many cookies of that name the request carries (all Cookie headers): more than
 * one means another host (a sibling subdomain) set one too. */
int eg_req_cookie_count(const struct eg_req *r, const char *name);
/* The same rules on one Cookie header value (first cookie of that name wins; a value
 * that does not fit in buf yields NULL). */
const char *eg_cookie_value(const char *header, const char *name, char *buf, size_t len);

#define EG_RESP_MAX_HEADERS 24
#define EG_RESP_ARENA 2048

struct eg_resp_block;

struct eg_resp {
	int status;
	const char *body;
	size_t body_len;
	const char *content_type;
	size_t n_headers;
	const char *hname[EG_RESP_MAX_HEADERS];
	const char *hvalue[EG_RESP_MAX_HEADERS];
	size_t hname_len[EG_RESP_MAX_HEADERS], hvalue_len[EG_RESP_MAX_HEADERS]; /* their strlen */
	/* Copies live in the arena while they fit (no allocation on the verdict path), else
	 * in heap blocks that eg_resp_free releases. */
	size_t arena_used;
	struct eg_resp_block *heap;
	char arena[EG_RESP_ARENA];
};

/* All copy their arguments. */
void eg_resp_header(struct eg_resp *resp, const char *name, const char *value);
/* The same for a value already as eg_resp_header would copy it (no CR, LF or NUL in its
 * value_len bytes), both lengths measured by the caller. */
void eg_resp_header_n(struct eg_resp *resp, const char *name, size_t name_len, const char *value, size_t value_len);
void eg_resp_body(struct eg_resp *resp, int status, const char *ctype, const char *body);
void eg_resp_text(struct eg_resp *resp, int status, const char *text);
void eg_resp_json(struct eg_resp *resp, int status, const char *json);
void eg_resp_redirect(struct eg_resp *resp, const char *location); /* 302 */
void eg_resp_html_error(struct eg_resp *resp, int status, const char *title, const char *msg);
void eg_resp_free(struct eg_resp *resp);

typedef void (*eg_handler_fn)(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp);

/* Registers an exact-path endpoint. methods: "GET", "POST", "GET,POST"...
 * A path ending in "/" "*" matches every path under it when no exact one does.
 * path must be a literal: it labels a metric series by pointer (eg_metric_inc_lit). */
void eg_http_register(const char *path, const char *methods, eg_handler_fn fn);

/* The endpoint at path (registered) is tried without the store first; a request that
 * needs it is decided on a store worker while its connection is parked (offload.h). */
void eg_http_store_offload(const char *path);
/* Every request to path (registered) is decided on a store worker (handlers that always
 * use the store, or wait for the OpenID Provider); busy answers at once when none can
 * take it. */
void eg_http_store_always(const char *path, eg_handler_fn busy);

/* Starts one MHD daemon per listen entry. 0 ok. */
int eg_http_start(struct eg_daemon *d);
void eg_http_stop(struct eg_daemon *d);

#endif
