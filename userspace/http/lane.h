/* lane.h - the verdict lane: edgegated's own HTTP/1.1 path for nginx's auth subrequest.
 *
 * On a unix listener (its only peer is the proxy) the lane owns the listening socket:
 * threads accept and read each request with MSG_PEEK. The exact simple shape nginx
 * sends for the verdict (lane_parse.h) is answered here by the same handler as
 * libmicrohttpd's path, tried without the store (offload.h: eg_verdict_local); anything
 * else, and any verdict that needs the store, is handed to libmicrohttpd
 * (MHD_add_connection) with the request still unread. libmicrohttpd answers it (parking it
 * for a store worker when it needs the store) and closes the connection. Admission
 * (admission.h) sees every connection on either side. */
#ifndef EG_LANE_H
#define EG_LANE_H

#include <stdbool.h>

struct eg_admission;
struct eg_conn;
struct eg_daemon;
struct eg_lane;
struct eg_lane_msg;
struct eg_resp;
struct MHD_Daemon;

/* Takes listen_fd (closed by eg_lane_stop). NULL on failure (nothing started). */
struct eg_lane *eg_lane_start(struct eg_daemon *d, int listen_fd, struct MHD_Daemon *mhd, struct eg_admission *adm,
			      unsigned threads, unsigned max_connections);
/* Stops the threads and closes their connections; call before MHD_stop_daemon. */
void eg_lane_stop(struct eg_lane *l);

/* http.c: how libmicrohttpd treats the connection on fd the lane is about to hand over
 * (0 to clear): */
#define EG_HANDOVER_CLOSE 1u /* answer once, then close (nginx reconnects, to the lane) */
#define EG_HANDOVER_STORE 2u /* its first request was tried here without the store (the
			      * source admitted): parked for a store worker without a second
			      * pass, so it is checked and counted once, as on libmicrohttpd */
#define EG_HANDOVER_COUNTED 4u /* the lane counted it in edgegate_http_connections_total */
void eg_http_handover_mark(int fd, unsigned flags);

enum eg_lane_verdict {
	EG_LANE_ANSWERED,    /* resp holds the answer */
	EG_LANE_HANDOVER,    /* not tried: libmicrohttpd answers it (resp empty) */
	EG_LANE_NEEDS_STORE, /* tried without the store: it needs the store (resp empty) */
};
/* http.c: the verdict for one lane request, tried without the store (offload.h). */
enum eg_lane_verdict eg_http_lane_answer(struct eg_daemon *d, struct eg_conn *c, const struct eg_lane_msg *m,
					 struct eg_resp *resp);

#endif
