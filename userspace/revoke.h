/* revoke.h - revocation that reaches the wire: the TCP flows each session has used,
 * and what happens to them when the session ends (XDP revoked-flow/session maps,
 * server-side socket destroy, expiry). */
#ifndef EG_REVOKE_H
#define EG_REVOKE_H

#include <stddef.h>
#include <stdint.h>

struct eg_daemon;

/* The client's TCP connection as nginx saw it (X-Real-IP/X-Real-Port = client,
 * X-Server-Addr/X-Server-Port = nginx's side). Addresses IPv4-mapped. */
struct eg_flow_tuple {
	uint8_t client[16];
	uint8_t server[16];
	uint16_t client_port;
	uint16_t server_port;
};

int eg_revoke_init(struct eg_daemon *d, char *err, size_t errlen);
void eg_revoke_free(struct eg_daemon *d);

/* Verdict path, for every allowed session request: remembers the flow (bounded,
 * expiring). Must be cheap: a hash insert under a striped lock. */
void eg_flows_note(struct eg_daemon *d, const char *session_id, const struct eg_flow_tuple *t);

/* A session ended (sign-out, back-channel logout, admin revoke, refresh failure):
 * its flows go into the kernel maps and their server sockets are destroyed.
 * Returns the number of flows acted on, -1 on error. Safe from any thread. */
int eg_revoke_session_flows(struct eg_daemon *d, const char *session_id, const char *reason);

#endif
