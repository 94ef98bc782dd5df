/* sockdestroy.h - kill one server-side TCP socket by its exact 4-tuple, the way
 * `ss -K` does: an inet_diag request of type SOCK_DESTROY over NETLINK_SOCK_DIAG
 * (kernel: tcp_diag_destroy -> tcp_abort: the socket's owner, nginx, gets
 * ECONNABORTED on its next call and the peer gets a RST). Needs CAP_NET_ADMIN in
 * the socket's network namespace and CONFIG_INET_DIAG_DESTROY=y.
 *
 * Why netlink and not a bpf_sock_destroy() iterator: a revocation kills the few
 * flows of one session, and the exact-tuple request is a hash lookup in the kernel
 * (inet_diag_find_one_icsk), while an iter/tcp program walks every TCP socket of
 * the host on each run; the netlink answer is per socket (0, ENOENT = already
 * gone), which is what time-to-revoke measures; and it needs no extra BPF program,
 * BTF or >= 6.5 kernel. See docs/revocation.md. */
#ifndef EG_SOCKDESTROY_H
#define EG_SOCKDESTROY_H

#include <stdbool.h>
#include <stdint.h>

struct eg_sockdiag;

/* Addresses are 16-byte IPv4-mapped/IPv6, ports host order. local = the server
 * socket's own address (nginx: $server_addr:$server_port), remote = the client. */
struct eg_sock_tuple {
	uint8_t local[16];
	uint8_t remote[16];
	uint16_t local_port;
	uint16_t remote_port;
};

/* One netlink socket, serialised internally (thread-safe). NULL with errno set.
 * Under privilege separation: a handle on the privileged process, returned even when that
 * process has no sock_diag socket (flows are still noted: eg_sock_note). */
struct eg_sockdiag *eg_sockdiag_open(void);
void eg_sockdiag_close(struct eg_sockdiag *s);
/* Whether eg_sock_destroy/eg_sock_exists can work at all (false for NULL). */
bool eg_sockdiag_can_destroy(const struct eg_sockdiag *s);

/* 0 destroyed; -ENOENT no such socket; -EPERM no CAP_NET_ADMIN; -EOPNOTSUPP kernel
 * without INET_DIAG_DESTROY, or no sock_diag socket in the privileged process; other -errno. */
int eg_sock_destroy(struct eg_sockdiag *s, const struct eg_sock_tuple *t);

/* 1 a TCP socket with that tuple exists and can still carry data, 0 not (none, or one nginx
 * closed whose data is all acknowledged: FIN_WAIT2, LAST_ACK), -errno on error.
 * Used to keep tracking flows that are idle but alive (long WebSockets). */
int eg_sock_exists(struct eg_sockdiag *s, const struct eg_sock_tuple *t);

/* Registers t as a flow of the session whose hash is owner (first 16 bytes of SHA-256 of
 * the id). Under privilege separation (docs/privsep.md) the privileged process destroys
 * and probes only flows registered this way; in one process it is a no-op. The note is
 * queued (eg_privc_note_flow_queued): it reaches the privileged process before any later
 * probe, destroy or revoked-flow write does. 0 or -errno. */
int eg_sock_note(struct eg_sockdiag *s, const struct eg_sock_tuple *t, const uint8_t owner[16]);

#endif
