/* floorsrv.c - the floor for edgegated's HTTP front (issue 15): the least a process can do
 * per auth subrequest. One epoll thread on a unix socket reads requests (no body, ended by
 * an empty line) and answers each with a fixed 200. bench.mjs runs it as case (floor) when
 * EGB_FLOOR names this binary. Not a server: no limits, no parsing, bench use only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct conn {
	int fd;
	size_t len;
	char buf[16384];
};

static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

static void serve(int ep, struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n == 0 || (n < 0 && errno != EAGAIN) || (n < 0 && c->len == sizeof(c->buf))) {
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			free(c);
			return;
		}
		if (n < 0)
			return;
		c->len += (size_t)n;
		char *p = c->buf, *end = c->buf + c->len, *e;
		char out[sizeof(answer) * 16];
		size_t outn = 0;
		while ((e = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)) != NULL) {
			if (outn + sizeof(answer) - 1 > sizeof(out)) {
				if (send(c->fd, out, outn, MSG_NOSIGNAL) < 0) {}
				outn = 0;
			}
			memcpy(out + outn, answer, sizeof(answer) - 1);
			outn += sizeof(answer) - 1;
			p = e + 4;
		}
		if (outn && send(c->fd, out, outn, MSG_NOSIGNAL) < 0) {}
		c->len = (size_t)(end - p);
		memmove(c->buf, p, c->len);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: floorsrv SOCKET\n");
		return 2;
	}
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", argv[1]);
	unlink(argv[1]);
	if (bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || chmod(argv[1], 0666) != 0 || listen(lfd, 1024) != 0) {
		perror("listen");
		return 1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct conn *c = calloc(1, sizeof(*c));
					c->fd = fd;
					struct epoll_event ce = { .events = EPOLLIN, .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
				}
			} else {
				serve(ep, evs[i].data.ptr);
			}
		}
	}
}
