/* flowfix.h - fixtures of the tests that note, revoke or reset real flows: a loopback TCP
 * listener, connections through it seen from both ends as IPv4-mapped addresses, and the
 * privileged process forked on a socketpair the way edgegated starts it. */
#ifndef EG_FLOWFIX_H
#define EG_FLOWFIX_H

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "testutil.h"
#include "priv.h"
#include "revoke.h"
#include "sockdestroy.h"

struct flowfix_conn {
	int c, s;		 /* client end, accepted (server) end */
	struct eg_flow_tuple t; /* as the verdict path sees it (client -> nginx) */
};

static inline void flowfix_mapped(const struct sockaddr_in *a, uint8_t out[16], uint16_t *port)
{
	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, &a->sin_addr, 4);
	*port = ntohs(a->sin_port);
}

/* 127.0.0.1, a port the kernel picks */
static inline int flowfix_listener(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	return fd;
}

static inline void flowfix_open(int lfd, struct flowfix_conn *k)
{
	struct sockaddr_in sa, ca;
	socklen_t n = sizeof(sa);

	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &n), 0);
	k->c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(k->c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	k->s = accept(lfd, NULL, NULL);
	assert_true(k->s >= 0);
	n = sizeof(ca);
	assert_int_equal(getsockname(k->c, (struct sockaddr *)&ca, &n), 0);
	flowfix_mapped(&sa, k->t.server, &k->t.server_port);
	flowfix_mapped(&ca, k->t.client, &k->t.client_port);
}

/* The accepted socket's view, as sock_diag names it. */
static inline void flowfix_sock(const struct eg_flow_tuple *f, struct eg_sock_tuple *t)
{
	memcpy(t->local, f->server, 16);
	memcpy(t->remote, f->client, 16);
	t->local_port = f->server_port;
	t->remote_port = f->client_port;
}

static inline void flowfix_close(struct flowfix_conn *k)
{
	close(k->c);
	close(k->s);
}

/* Forks the privileged process on a SOCK_SEQPACKET pair as main.c does; `before` runs in the
 * child first (e.g. a seccomp filter), a non-zero return ends it with status 3. Returns the
 * child's pid; *chan is the unprivileged end. */
static inline pid_t flowfix_priv_fork(const struct eg_config *cfg, int lfd, int (*before)(void), int *chan)
{
	int sv[2];
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[1]);
		if (lfd >= 0)
			close(lfd);
		if (before && before() != 0)
			_exit(3);
		eg_priv_run(cfg, sv[0]);
	}
	close(sv[0]);
	*chan = sv[1];
	return pid;
}

#endif
