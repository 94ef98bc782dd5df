/* admission.h - who gets an HTTP connection, and for how long.
 *
 * Peers that are not a configured proxy share max_connections - reserved_for_proxies
 * slots (and max_connections_per_ip each), so nginx always finds a free slot however many
 * connections others open. Every connection has a deadline that only the daemon moves:
 * a request must be complete within header_timeout of the accept (or of the previous
 * answer), a keep-alive connection may idle for idle_timeout. A client that trickles a
 * header line every few seconds cannot extend either; a sweeper thread shuts such
 * connections down and libmicrohttpd then closes them. */
#ifndef EG_ADMISSION_H
#define EG_ADMISSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct eg_http_config;
struct eg_metrics;
struct eg_admission;
struct eg_parked;

enum eg_conn_phase {
	EG_CONN_REQUEST, /* waiting for a complete request (headers and body) */
	EG_CONN_ANSWER,  /* the answer is queued, being sent */
	EG_CONN_IDLE,    /* keep-alive, between requests */
	EG_CONN_BUSY,    /* a handler is deciding: no deadline (a token exchange has its own timeouts) */
};

/* One accepted connection (libmicrohttpd's socket context). */
struct eg_conn {
	struct eg_conn *prev, *next; /* the sweeper's list of its kind (proxies, others), under that list's lock */
	int fd;
	bool trusted; /* a configured proxy: trusted_proxies or the unix socket */
	bool is_unix;
	bool closing; /* the sweeper shut it down */
	uint8_t addr[16];  /* IPv4-mapped when v4; zero for unix peers */
	uint8_t group[16]; /* the per-IP limit's key (IPv6 grouped by prefix) */
	_Atomic int64_t deadline_ms; /* CLOCK_MONOTONIC */
	_Atomic int phase;
	/* the request being read: http.c's, one at a time per connection */
	char *body;
	size_t body_len;
	bool too_large;
	char *raw_target; /* the request-target before MHD decodes it (http.c on_uri) */
	bool close_after; /* handed over by the verdict lane: close after the answer */
	bool lane_tried;  /* its first request was tried by the lane without the store (lane.h) */
	bool counted;     /* in edgegate_http_connections_total (by whichever front answered first) */
	_Atomic unsigned *slots; /* its lane listener's budget (lane.h), released at its end; or NULL */
	struct eg_parked *parked; /* waiting for a store worker (http.c park) */
};

struct eg_admission *eg_admission_new(const struct eg_http_config *h, unsigned ipv6_group_plen,
				      struct eg_metrics *metrics);
/* Stops the sweeper. Call after every listener has stopped. */
void eg_admission_free(struct eg_admission *a);

/* Before a connection is set up: false refuses it (counted by reason). Proxies always pass. */
bool eg_admission_accept(struct eg_admission *a, bool trusted, const uint8_t addr[16]);
/* c->fd, trusted, is_unix and addr filled in by the caller. */
void eg_admission_open(struct eg_admission *a, struct eg_conn *c);
void eg_admission_close(struct eg_admission *a, struct eg_conn *c);
/* A phase change moves the deadline; called from the connection's own thread. */
void eg_admission_phase(struct eg_admission *a, struct eg_conn *c, enum eg_conn_phase p);

#endif
