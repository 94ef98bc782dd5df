/* sockdestroy.c - SOCK_DESTROY / exact-tuple lookups over NETLINK_SOCK_DIAG.
 *
 * Every destroy is two requests: an exact lookup (SOCK_DIAG_BY_FAMILY without
 * NLM_F_DUMP) that returns the socket's state and cookie, then SOCK_DESTROY with
 * that cookie. The kernel's exact-tuple lookup (inet_lookup) falls back to a
 * listening socket when no established one matches, and tcp_abort() on a listener
 * closes it: a flow that ended just before the revocation would otherwise take
 * nginx's listening socket with it. With the cookie the kernel only ever destroys
 * the socket we looked at (sock_diag_check_cookie), and we never send a destroy
 * for a LISTEN or TIME_WAIT answer. */
#include "sockdestroy.h"
#include "priv.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef SOCK_DESTROY
#define SOCK_DESTROY 21
#endif

/* TCP states as inet_diag reports them (include/net/tcp_states.h). */
enum { ST_ESTABLISHED = 1, ST_FIN_WAIT2 = 5, ST_TIME_WAIT = 6, ST_CLOSE = 7, ST_LAST_ACK = 9, ST_LISTEN = 10 };

struct eg_sockdiag {
	bool remote;  /* the unprivileged process: every call is a request to priv.c */
	bool destroy; /* sockets can be probed and destroyed (remote: priv.c has sock_diag) */
	int fd;
	uint32_t seq;
	pthread_mutex_t mu;
};

struct eg_sockdiag *eg_sockdiag_open(void)
{
	struct eg_sockdiag *s = calloc(1, sizeof(*s));
	struct timeval tv = { .tv_sec = 1 };

	if (!s)
		return NULL;
	/* Under privilege separation the handle exists even when the privileged process has
	 * no sock_diag socket: flows must still be noted there, or it refuses their
	 * revoked-flow map entries and XDP would not drop them either. */
	if (eg_privc_active()) {
		s->remote = true;
		s->destroy = eg_privc_has_sockdiag();
		s->fd = -1;
		return s;
	}
	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (s->fd < 0) {
		free(s);
		return NULL;
	}
	/* A kernel that never answers must not hang a revocation. */
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	pthread_mutex_init(&s->mu, NULL);
	s->destroy = true;
	return s;
}

bool eg_sockdiag_can_destroy(const struct eg_sockdiag *s)
{
	return s && s->destroy;
}

void eg_sockdiag_close(struct eg_sockdiag *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static bool is_mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a, pfx, 12) == 0;
}

static void fill_req(struct inet_diag_req_v2 *r, const struct eg_sock_tuple *t, const uint32_t cookie[2])
{
	bool v4 = is_mapped(t->local) && is_mapped(t->remote);

	memset(r, 0, sizeof(*r));
	r->sdiag_family = v4 ? AF_INET : AF_INET6;
	r->sdiag_protocol = IPPROTO_TCP;
	r->idiag_states = ~0u;
	r->id.idiag_sport = htons(t->local_port);
	r->id.idiag_dport = htons(t->remote_port);
	if (v4) {
		memcpy(&r->id.idiag_src[0], t->local + 12, 4);
		memcpy(&r->id.idiag_dst[0], t->remote + 12, 4);
	} else {
		memcpy(r->id.idiag_src, t->local, 16);
		memcpy(r->id.idiag_dst, t->remote, 16);
	}
	r->id.idiag_cookie[0] = cookie ? cookie[0] : INET_DIAG_NOCOOKIE;
	r->id.idiag_cookie[1] = cookie ? cookie[1] : INET_DIAG_NOCOOKIE;
}

/* One request, one answer. For a lookup, *msg receives the socket (returns 0);
 * otherwise returns the kernel's error code (0 = done). Called with s->mu held. */
static int roundtrip(struct eg_sockdiag *s, uint16_t type, const struct inet_diag_req_v2 *req,
		     struct inet_diag_msg *msg)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} out = { 0 };
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	union {
		char buf[8192];
		struct nlmsghdr align;
	} in;
	uint32_t seq = ++s->seq;

	out.nh.nlmsg_len = sizeof(out);
	out.nh.nlmsg_type = type;
	out.nh.nlmsg_flags = NLM_F_REQUEST | (type == SOCK_DESTROY ? NLM_F_ACK : 0);
	out.nh.nlmsg_seq = seq;
	out.r = *req;
	if (sendto(s->fd, &out, sizeof(out), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(s->fd, in.buf, sizeof(in.buf), 0);
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		for (struct nlmsghdr *h = &in.align; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue; /* a late answer to an earlier, timed-out request */
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					return -EBADMSG;
				return e->error;
			}
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && msg) {
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*msg)))
					return -EBADMSG;
				memcpy(msg, NLMSG_DATA(h), sizeof(*msg));
				return 0;
			}
			if (h->nlmsg_type == NLMSG_DONE)
				return -ENOENT;
		}
	}
}

/* The exact established-side socket for t: 0 and *m, or -ENOENT (none, or only a
 * listener / a TIME_WAIT leftover answered). Called with s->mu held. */
static int lookup(struct eg_sockdiag *s, const struct eg_sock_tuple *t, struct inet_diag_msg *m)
{
	struct inet_diag_req_v2 req;
	int rc;

	fill_req(&req, t, NULL);
	rc = roundtrip(s, SOCK_DIAG_BY_FAMILY, &req, m);
	if (rc)
		return rc;
	if (m->idiag_state == ST_LISTEN || m->idiag_state == ST_TIME_WAIT || m->idiag_state == ST_CLOSE ||
	    m->id.idiag_dport != htons(t->remote_port) || m->id.idiag_sport != htons(t->local_port))
		return -ENOENT;
	return 0;
}

int eg_sock_destroy(struct eg_sockdiag *s, const struct eg_sock_tuple *t)
{
	struct inet_diag_req_v2 req;
	struct inet_diag_msg m;
	int rc;

	if (!s)
		return -EBADF;
	if (!s->destroy)
		return -EOPNOTSUPP;
	if (s->remote)
		return eg_privc_kill_flow(t);
	pthread_mutex_lock(&s->mu);
	rc = lookup(s, t, &m);
	if (rc == 0) {
		fill_req(&req, t, m.id.idiag_cookie);
		rc = roundtrip(s, SOCK_DESTROY, &req, NULL);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int eg_sock_exists(struct eg_sockdiag *s, const struct eg_sock_tuple *t)
{
	struct inet_diag_msg m;
	int rc;

	if (!s)
		return -EBADF;
	if (!s->destroy)
		return -EOPNOTSUPP;
	if (s->remote)
		return eg_privc_probe_flow(t);
	pthread_mutex_lock(&s->mu);
	rc = lookup(s, t, &m);
	pthread_mutex_unlock(&s->mu);
	/* nginx has closed it and every byte it sent is acknowledged (FIN_WAIT2, LAST_ACK): no
	 * request or answer can pass on it any more, however long the peer takes to finish */
	if (rc == 0 && (m.idiag_state == ST_FIN_WAIT2 || m.idiag_state == ST_LAST_ACK))
		return 0;
	return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

int eg_sock_note(struct eg_sockdiag *s, const struct eg_sock_tuple *t, const uint8_t owner[16])
{
	if (!s || !s->remote)
		return 0; /* in one process there is nobody to tell */
	return eg_privc_note_flow_queued(t, owner) ? -errno : 0;
}
