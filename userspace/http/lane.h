/* lane.h - the verdict lane: edgegated's own HTTP/1.1 path for nginx's auth subrequest.
 *
 * The lane owns the listening socket (unix or TCP): threads accept, admit (admission.h:
 * the limits, reserve and deadlines libmicrohttpd's accept applies) and read each request
 * with MSG_PEEK. The exact simple shape nginx
 * sends for the verdict (lane_parse.h) is answered here by the same handler as
 * libmicrohttpd's path, tried without the store (offload.h: eg_verdict_local); anything
 * else, and any verdict that needs the store, is handed to libmicrohttpd
 * (MHD_add_connection) with the request still unread. libmicrohttpd answers it (parking it
 * for a store worker when it needs the store) and closes the connection. Admission
 * (admission.h) sees every connection on either side, once: a connection handed over
 * keeps its entry, its deadline and its slot in the listener's one budget. */
#ifndef EG_LANE_H
#define EG_LANE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct eg_admission;
struct eg_conn;
struct eg_daemon;
struct eg_lane;
struct eg_lane_msg;
struct eg_resp;
struct MHD_Daemon;

/* Takes listen_fd (closed by eg_lane_stop). slots counts the listener's connections on both
 * fronts (eg_conn.slots): none is accepted while max_connections are open. NULL on failure
 * (nothing started). */
struct eg_lane *eg_lane_start(struct eg_daemon *d, int listen_fd, struct MHD_Daemon *mhd, struct eg_admission *adm,
			      unsigned threads, _Atomic unsigned *slots, unsigned max_connections);
/* Stops the threads and closes their connections; call before MHD_stop_daemon. */
void eg_lane_stop(struct eg_lane *l);

/* http.c: the peer of an accepted connection. True for a configured proxy (trusted_proxies,
 * or any peer of a unix socket); addr is its address as the handler sees it (IPv4-mapped). */
bool eg_http_peer(const struct eg_daemon *d, const struct sockaddr *sa, uint8_t addr[16], bool *is_unix);
/* http.c: libmicrohttpd takes the connection on c->fd with its request unread, and c with
 * it, still admitted (its slot, deadline and peer kept; close_after, lane_tried and
 * counted set by the caller), with the peer's real address sa. False: it could not, and
 * the connection is closed and released. */
bool eg_http_hand_over(struct MHD_Daemon *mhd, struct eg_conn *c, const struct sockaddr *sa, socklen_t salen);
/* http.c: the end of a connection on either front (admission, slot, memory); the caller
 * closes the descriptor, after this (admission's sweeper may shut it down until then). */
void eg_http_conn_release(struct eg_conn *c);

enum eg_lane_verdict {
	EG_LANE_ANSWERED,    /* resp holds the answer */
	EG_LANE_HANDOVER,    /* not tried: libmicrohttpd answers it (resp empty) */
	EG_LANE_NEEDS_STORE, /* tried without the store: it needs the store (resp empty) */
};
/* http.c: the verdict for one lane request, tried without the store (offload.h). */
enum eg_lane_verdict eg_http_lane_answer(struct eg_daemon *d, struct eg_conn *c, const struct eg_lane_msg *m,
					 struct eg_resp *resp);

#endif
