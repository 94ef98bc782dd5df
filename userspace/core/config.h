/* config.h - the daemon's configuration, parsed from one JSON file.
 *
 * Every section but `listen` is optional. config_load() validates everything and
 * reports the first problem as "<key path>: <problem>", e.g. "routes[2].allow.domains[0]:
 * expected a string". Unknown keys are errors. */
#ifndef EG_CONFIG_H
#define EG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#define EG_MAX_LISTEN 8

struct eg_proxy_profile;

/* An IPv4 or IPv6 prefix; IPv4 is kept as IPv4-mapped IPv6 so one compare serves both. */
struct eg_prefix {
	uint8_t addr[16];
	uint8_t plen; /* 0..128, in the mapped space (IPv4 /24 => 120) */
	bool v4;
};

struct eg_listen {
	bool is_unix;
	char path[108];             /* unix socket path */
	struct sockaddr_storage ss; /* TCP address */
	char text[128];             /* as written in the config, for logs */
};

enum eg_auth_mode {
	EG_AUTH_PUBLIC = 0,
	EG_AUTH_ANY,     /* session or bearer */
	EG_AUTH_SESSION,
	EG_AUTH_BEARER,
	EG_AUTH_MTLS,
};

struct eg_strlist {
	char **v;
	size_t n;
};

/* One claim condition: claim name => accepted values (any of). A claim that is an
 * array matches when any element equals any accepted value. */
struct eg_claim_cond {
	char *name;
	struct eg_strlist values;
};

struct eg_conditions {
	bool present;
	struct eg_strlist emails;  /* exact, compared case-insensitively */
	struct eg_strlist domains; /* "x.test" exact; ".x.test" strict subdomains */
	struct eg_strlist groups;
	struct eg_claim_cond *claims;
	size_t n_claims;
	struct eg_strlist cert_subjects;
	struct eg_strlist cert_issuers;  /* RFC 4514 issuer DN, exact */
	struct eg_strlist cert_sans;
	struct eg_strlist cert_fingerprints;
};

struct eg_header_map {
	char *header; /* e.g. X-User-Sub */
	char *claim;  /* e.g. sub */
};

struct eg_route {
	char *host; /* NULL = any; lower-case */
	char *path; /* prefix, default "/" */
	unsigned methods; /* bitmask of EG_M_*, 0 = any */
	enum eg_auth_mode auth;
	bool api; /* answer 401/403 with JSON, never with a login Location */
	bool explain; /* the 403 page may name the groups, domains and claims allow asks for */
	struct eg_conditions allow;
	struct eg_conditions deny;
	struct eg_header_map *headers;
	size_t n_headers;
	char where[32]; /* "routes[3]" for logs */
};

enum {
	EG_M_GET = 1u << 0,
	EG_M_HEAD = 1u << 1,
	EG_M_POST = 1u << 2,
	EG_M_PUT = 1u << 3,
	EG_M_DELETE = 1u << 4,
	EG_M_PATCH = 1u << 5,
	EG_M_OPTIONS = 1u << 6,
	EG_M_CONNECT = 1u << 7,
	EG_M_TRACE = 1u << 8,
	EG_M_OTHER = 1u << 9,
};
unsigned eg_method_bit(const char *method);

struct eg_jwt_config {
	bool present;
	char *jwks_file;
	char *jwks_url;
	struct eg_strlist issuers;   /* exact match; required unless any_issuer */
	struct eg_strlist audiences; /* token aud must contain one; required unless any_audience */
	bool any_issuer;             /* "issuer": "*" - the config says any issuer is accepted */
	bool any_audience;           /* "audience": "*" */
	bool require_at_jwt;         /* RFC 9068: header typ must be at+jwt */
	bool trust_unverified_email; /* email rules accept a token without email_verified: true */
	char *ca_file;               /* CA bundle for jwks_url and introspection (CURLOPT_CAINFO); NULL = system */
	char *introspection_url;     /* RFC 7662 endpoint for opaque (non-JWS) tokens; NULL = none */
	char *introspection_client_id;
	char *introspection_client_secret;
	int64_t introspection_cache_s;  /* how long an active answer is believed, default 60 (capped by exp) */
	struct eg_strlist algorithms; /* allow-list; empty = what each key declares (alg, else its kty) */
	int64_t leeway_s;             /* default 60 */
	bool require_exp;             /* default true */
	char *cookie;                 /* optional cookie carrying the token */
	char *query_param;            /* optional query parameter carrying the token */
	int64_t jwks_refresh_s;       /* periodic refetch, default 300 */
	int64_t jwks_min_refetch_s;   /* throttle of unknown-kid refetch, default 10 */
	int64_t cache_max_ttl_s;      /* cap of a cached verdict, default 3600 */
	size_t cache_entries;         /* default 65536; 0 = no verdict cache */
	struct eg_strlist required_claims; /* claims that must be present */
};

struct eg_oidc_config {
	bool present;
	char *issuer;
	char *client_id;
	char *client_secret;
	char *redirect_url;
	struct eg_strlist scopes; /* default openid email profile */
	char *token_auth_method;  /* client_secret_basic (default) | client_secret_post | private_key_jwt | none */
	char *client_key_file;    /* private_key_jwt: PEM private key (RSA, EC, Ed25519) */
	char *client_key_id;      /* private_key_jwt: kid of its public key at the OP */
	char *client_key_alg;     /* private_key_jwt: default by key type (RS256, ES256 ...) */
	bool use_userinfo;        /* default true: claims from the userinfo endpoint are merged */
	bool trust_unverified_email; /* default false: a missing email_verified is "not verified" */
	char *ca_file;            /* CA bundle for the OP's endpoints (CURLOPT_CAINFO); NULL = system */
	struct eg_strlist algorithms;
	int64_t leeway_s;
	char *post_logout_redirect_url;
	char *groups_claim; /* default "groups" */
	char *email_claim;  /* default "email" */
	char *user_claim;   /* default "sub" */
	int64_t refresh_before_s; /* refresh when token expires within, default 60 */
	int64_t max_states;       /* concurrent login states per browser, default 8 */
	int64_t state_ttl_s;      /* default 600 */
	int64_t jwks_min_refetch_s; /* throttle of unknown-kid refetches of the OP's keys, default 10 */
};

struct eg_cookie_config {
	char *name;   /* default "__Host-edgegate" (secure, no domain, path /), "__Secure-edgegate"
		       * (secure otherwise), "_edgegate" (an insecure loopback demo); always set
		       * once loaded (fill_defaults_after): the modules use it as is */
	char *domain; /* NULL = host-only */
	char *path;   /* default "/" */
	bool secure;  /* default true */
	int64_t idle_s;     /* default 8h */
	int64_t lifetime_s; /* absolute, default 7d */
	char *secret;       /* sealing key material; generated into state_dir when absent */
};

struct eg_gate_config {
	bool present;
	struct eg_strlist interfaces;
	char *xdp_mode; /* native | generic | auto (default) */
	char *pin_root; /* default /sys/fs/bpf/edgegate */
	uint16_t *protected_ports;
	size_t n_protected_ports;
	uint32_t syn_rate;  /* new TCP connections per second per source, default 50 */
	uint32_t syn_burst; /* default 100 */
	uint32_t pkt_rate;  /* packets per second per source, 0 = off */
	uint32_t pkt_burst;
	bool observe; /* count, never drop */
	struct eg_prefix *deny;
	size_t n_deny;
	struct eg_prefix *allow;
	size_t n_allow;
	uint32_t max_sources; /* rate-limit table size, default 262144 */
	uint32_t max_deny;    /* deny table size, default 1048576 */
	/* brute-force bans (issue 5) */
	uint32_t ban_threshold; /* failed verdicts per window, default 20 */
	int64_t ban_window_s;   /* default 60 */
	int64_t ban_time_s;     /* default 600; doubles for repeat offenders */
	int64_t ban_max_s;      /* default 86400 */
	bool ban_scope_all;     /* gate.ban_scope: "protected" (default) or "all" ports */
	bool xdp_dispatcher;    /* gate.xdp_dispatcher: attach through libxdp's dispatcher (default true) */
	uint32_t run_priority;  /* gate.run_priority: the dispatcher's order, lower first (default 1) */
	uint32_t flood_new_sources; /* gate.flood_new_sources: new tracked sources/s before flood
				     * mode (all CPUs); 0 = max_sources / 4 */
	uint8_t ipv6_group_plen; /* canonicalise IPv6 sources to this prefix, default 64 */
	uint32_t verdict_rate;  /* userspace per-source verdicts/s, 0 = off */
	uint32_t verdict_burst;
	struct eg_prefix *never_ban; /* never banned nor verdict-limited (the admin's own addresses) */
	size_t n_never_ban;
};

struct eg_store_config {
	char *redis;  /* redis://host:port[/db]; NULL = embedded */
	char *prefix; /* Redis key prefix, default "edgegate:" */
	int64_t sync_ms; /* shared store: how often bans/revocations of other nodes are applied, default 1000 */
	int64_t map_size; /* embedded store: LMDB map size in bytes, default 1 GiB */
	/* issue 12: several hosts (docs/sessions.md, "Several hosts") */
	struct eg_strlist sentinels; /* "host:port" of Redis Sentinels; store.master_name names the master */
	char *master_name;
	int64_t timeout_ms;     /* one Redis command, default 300 ms (well under nginx's proxy_read_timeout) */
	int64_t outage_grace_s; /* sessions in memory served while Redis is unreachable, default 60 s */
	bool outage_grace_set;
	int64_t stream_maxlen;  /* events kept in the stream (XADD MAXLEN ~), default 100000 */
};

/* Connection admission on the HTTP listeners (issue 15): limits, the reserve for the
 * configured proxies, and deadlines a trickling client cannot extend. */
struct eg_http_config {
	uint32_t max_connections;        /* per listener, default 4096 */
	uint32_t max_connections_per_ip; /* other peers, per address (IPv6: per ipv6_group_prefix); 0 = no limit; default 32 */
	uint32_t reserved_for_proxies;   /* slots other peers can never take, default 256 */
	int64_t header_timeout_s;        /* accept (or a response) -> complete request, default 10 */
	int64_t idle_timeout_s;          /* keep-alive: response -> next complete request, default 75 */
	bool lane;                       /* unix listeners: verdicts answered by lane.c, the rest by MHD; default on */
	uint32_t lane_threads;           /* verdict-lane threads per listener; 0 (unset): max(1, CPUs / 4) */
	uint32_t store_workers;          /* threads deciding requests that need the store, default 4 */
	uint32_t store_queue;            /* requests waiting for them; past it: as in an outage, default 4096 */
	int64_t store_queue_wait_ms;     /* a verdict not started by a worker this long after it was queued: as in an outage, default 5000 */
};

struct eg_mtls_config {
	char *revoked_file;
	struct eg_strlist crl_files;
	struct eg_strlist cert_files; /* certificates whose expiry is reported */
};

struct eg_revocation_config {
	uint32_t flows_per_session; /* live flows tracked per session; past it, 403. 0 = the default (128) */
	uint32_t flows_per_subject; /* ... over all sessions of one subject (sub); past it, 403. 0 = the default
				     * (max_flows / 16, at least flows_per_session: revoke.c) */
};

/* GET /metrics: who may read it besides the trusted proxies and the unix socket. */
struct eg_metrics_config {
	struct eg_prefix *allow; /* e.g. the Prometheus server; empty = trusted peers only */
	size_t n_allow;
};

struct eg_config {
	char *path; /* file it came from */
	struct eg_listen listen[EG_MAX_LISTEN];
	size_t n_listen;
	char *admin_socket;  /* default /run/edgegate/admin.sock */
	struct eg_prefix *trusted_proxies; /* default 127.0.0.1/32 and ::1/128 */
	size_t n_trusted_proxies;
	const struct eg_proxy_profile *proxy; /* "proxy": which headers carry the original request */
	char *listen_group; /* group of the unix listen sockets (mode 0660); NULL = the daemon's */
	char *state_dir; /* default /var/lib/edgegate */
	char *user;      /* drop privileges to this user after start-up */
	char *log_level; /* error | warn | info | debug */
	char *public_url; /* external base URL of the /oauth2/ endpoints, e.g. https://app.test */
	bool default_allow; /* unmatched requests allowed (default false) */
	int threads;        /* HTTP worker threads, default = CPUs */
	struct eg_strlist redirect_domains; /* allowed rd= hosts; ".x.test" = subdomains */
	struct eg_oidc_config oidc;
	struct eg_cookie_config cookie;
	struct eg_jwt_config jwt;
	struct eg_route *routes;
	size_t n_routes;
	struct eg_gate_config gate;
	struct eg_store_config store;
	struct eg_mtls_config mtls;
	struct eg_http_config http;
	struct eg_revocation_config revocation;
	struct eg_metrics_config metrics;
};

/* Loads and validates. On error returns NULL and writes "<path>: <problem>" to err. */
struct eg_config *config_load(const char *file, char *err, size_t errlen);
struct eg_config *config_parse(const char *json, size_t len, const char *file, char *err,
			       size_t errlen);
void config_free(struct eg_config *c);

/* Helpers shared with other modules. */
int eg_parse_duration(const char *s, int64_t *out_s); /* "30s" "5m" "8h" "7d" "250ms"(rounded up) */
int eg_parse_prefix(const char *s, struct eg_prefix *out);
bool eg_prefix_contains(const struct eg_prefix *p, const uint8_t addr16[16]);
/* Canonical 16-byte form (IPv4 mapped) of a textual or socket address; 0 on success. */
int eg_addr_parse(const char *s, uint8_t out16[16]);
int eg_addr_from_sockaddr(const struct sockaddr *sa, uint8_t out16[16]);
bool eg_addr_is_v4mapped(const uint8_t a[16]);
void eg_addr_format(const uint8_t a[16], char *buf, size_t len);
/* A group name or a decimal gid; 0 on success. */
int eg_group_id(const char *name, gid_t *out);
bool eg_user_known(const char *name); /* an account of that name exists (getpwnam) */

#endif
