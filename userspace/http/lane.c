/* lane.c - the verdict lane (see lane.h).
 *
 * Why: libmicrohttpd 0.9.75 spends more per keep-alive request than the verdict itself
 * (it zeroes its 64 KiB connection pool before each one; docs/bench.md). The lane reads
 * with MSG_PEEK and consumes only the bytes of a request it answers, so handing a
 * connection over never loses or reorders a byte: earlier answers are fully written
 * before it is handed over, and libmicrohttpd then reads the rest from the socket.
 * On TCP too: nginx reaching the daemon over 127.0.0.1 or another host pays the same
 * libmicrohttpd cost per verdict. There the lane accepts peers that are not proxies, so it
 * admits as libmicrohttpd's accept does (admit below) and answers them once, with
 * Connection: close. */
#include "lane.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admission.h"
#include "daemon.h"
#include "http.h"
#include "lane_parse.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define VERDICT_PATH "/auth"
#define FORBIDDEN_PATH "/forbidden"

struct lane_conn {
	struct eg_conn *ac; /* admission's view; libmicrohttpd takes it over with the connection */
	struct lane_conn *prev, *next; /* the owning thread's list */
	struct sockaddr_storage sa; /* the peer, as accepted: handed over with the connection */
	socklen_t salen;
	char *out; /* the rest of an answer the socket did not take */
	size_t out_len, out_off;
};

struct lane_thread {
	struct eg_lane *l;
	pthread_t tid;
	bool started;
	int ep;
	bool paused; /* the listener is out of ep: the budget is spent */
	struct lane_conn *conns;
	time_t date_at;
	char date[48];
	size_t date_len;
};

struct eg_lane {
	struct eg_daemon *d;
	struct MHD_Daemon *mhd;
	struct eg_admission *adm;
	int lfd, stopfd;
	unsigned n_threads, max_conns;
	_Atomic unsigned *slots; /* the listener's open connections, on both fronts */
	struct lane_thread *t;
};

/* epoll tags for the two shared descriptors */
static char tag_listen, tag_stop;

static void conn_unlink(struct lane_thread *t, struct lane_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	epoll_ctl(t->ep, EPOLL_CTL_DEL, c->ac->fd, NULL);
}

static void count_conn(struct lane_thread *t, struct lane_conn *c)
{
	if (!c->ac->counted)
		eg_metric_inc(t->l->d->metrics, "edgegate_http_connections_total", NULL, NULL, NULL, NULL, 1);
	c->ac->counted = true;
}

static void conn_close(struct lane_thread *t, struct lane_conn *c)
{
	count_conn(t, c);
	conn_unlink(t, c);
	int fd = c->ac->fd;
	/* admission first: its sweeper may shut the descriptor down until then */
	eg_http_conn_release(c->ac);
	close(fd);
	free(c->out);
	free(c);
}

/* libmicrohttpd takes the connection with the unread request, and its admission entry: the
 * same peer address, deadline and slot. It answers that request and closes the connection
 * (Connection: close): what is handed over is rare on a pooled connection (a page under
 * /oauth2/, a verdict or a 403 page that needs the store), and nginx's next request then
 * comes to the lane on a fresh connection instead of staying on the slow path for good. */
static void conn_handover(struct lane_thread *t, struct lane_conn *c, const char *why, bool store)
{
	eg_metric_inc(t->l->d->metrics, "edgegate_http_lane_handovers_total", "reason", why, NULL, NULL, 1);
	conn_unlink(t, c);
	c->ac->close_after = true;
	/* tried here without the store (the source admitted): parked for a store worker
	 * without a second pass, so it is checked and counted once, as on libmicrohttpd */
	c->ac->lane_tried = store;
	eg_http_hand_over(t->l->mhd, c->ac, (const struct sockaddr *)&c->sa, c->salen);
	free(c->out);
	free(c);
}

/* The budget is spent: this thread stops watching the listener (new connections wait in
 * the backlog, as at libmicrohttpd's limit) until a slot is free again (lane_main). */
static void pause_listener(struct lane_thread *t)
{
	if (!t->paused && epoll_ctl(t->ep, EPOLL_CTL_DEL, t->l->lfd, NULL) == 0)
		t->paused = true;
}

static void resume_listener(struct lane_thread *t)
{
	struct epoll_event le = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &tag_listen };
	if (atomic_load(t->l->slots) < t->l->max_conns && epoll_ctl(t->ep, EPOLL_CTL_ADD, t->l->lfd, &le) == 0)
		t->paused = false;
}

/* One accepted connection, admitted as libmicrohttpd's accept-policy callback admits one
 * (http.c on_accept): other peers are refused at once while only the proxies' reserve is
 * left or past their per-address limit, counted in admission's metrics. */
static void admit(struct lane_thread *t, int fd, const struct sockaddr_storage *sa, socklen_t salen)
{
	struct eg_lane *l = t->l;
	uint8_t addr[16];
	bool is_unix;
	bool trusted = eg_http_peer(l->d, (const struct sockaddr *)sa, addr, &is_unix);
	if (!eg_admission_accept(l->adm, trusted, addr)) {
		close(fd);
		atomic_fetch_sub(l->slots, 1);
		return;
	}
	if (!is_unix) { /* an answer is one write: never held back for the previous one's ACK */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	struct lane_conn *c = xcalloc(1, sizeof(*c));
	c->ac = xcalloc(1, sizeof(*c->ac));
	c->ac->fd = fd;
	c->ac->trusted = trusted;
	c->ac->is_unix = is_unix;
	memcpy(c->ac->addr, addr, 16);
	c->ac->slots = l->slots;
	c->sa = *sa;
	c->salen = salen;
	eg_admission_open(l->adm, c->ac);
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		conn_close(t, c);
}

/* At most this many connections per wake-up: the listener is level-triggered, so the rest
 * come at the next epoll_wait, after the events of the connections this thread already
 * serves. Without the bound a burst of thousands (a slowloris reconnecting in step) was
 * accepted and admitted in one go while the proxy's requests on this thread waited. */
#define ACCEPT_BATCH 16

static void accept_some(struct lane_thread *t)
{
	struct eg_lane *l = t->l;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		/* a slot first: the budget holds however many threads accept at once */
		if (atomic_fetch_add(l->slots, 1) >= l->max_conns) {
			atomic_fetch_sub(l->slots, 1);
			pause_listener(t);
			return;
		}
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd = accept4(l->lfd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			atomic_fetch_sub(l->slots, 1);
			if (errno == EMFILE || errno == ENFILE) {
				/* level-triggered: back off instead of spinning on the backlog */
				log_warn("lane: accept: %s", strerror(errno));
				struct timespec ts = { 0, 50 * 1000000L };
				nanosleep(&ts, NULL);
			}
			return;
		}
		admit(t, fd, &sa, salen);
	}
}

/* --- answers -------------------------------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool heap;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = (b->len + n) * 2;
		char *p = xmalloc(cap);
		memcpy(p, b->p, b->len);
		if (b->heap)
			free(b->p);
		b->p = p;
		b->cap = cap;
		b->heap = true;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* "name: value\r\n": room made once, two copies */
static void sb_header_n(struct sbuf *b, const char *name, size_t nl, const char *value, size_t vl)
{
	if (b->len + nl + vl + 4 > b->cap) {
		sb_put(b, name, nl);
		sb_put(b, ": ", 2);
		sb_put(b, value, vl);
		sb_put(b, "\r\n", 2);
		return;
	}
	char *p = b->p + b->len;
	memcpy(p, name, nl);
	p += nl;
	*p++ = ':';
	*p++ = ' ';
	memcpy(p, value, vl);
	p += vl;
	*p++ = '\r';
	*p++ = '\n';
	b->len = (size_t)(p - b->p);
}

static void sb_header(struct sbuf *b, const char *name, const char *value)
{
	sb_header_n(b, name, strlen(name), value, strlen(value));
}

/* decimal digits of v, no snprintf on the hot path */
static void sb_uint(struct sbuf *b, size_t v)
{
	char d[24];
	int i = sizeof(d);
	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) && i > 0);
	sb_put(b, d + i, sizeof(d) - (size_t)i);
}

/* "Date: ...\r\n", made again when the second changes */
static const char *date_line(struct lane_thread *t, size_t *len)
{
	time_t now = time(NULL);
	if (now != t->date_at) {
		struct tm tm;
		gmtime_r(&now, &tm);
		t->date_len = strftime(t->date, sizeof(t->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		t->date_at = now;
	}
	*len = t->date_len;
	return t->date;
}

/* What libmicrohttpd sends for the same eg_resp (http.c build_response): the handler's
 * headers, Cache-Control, Date and the length; a HEAD answer without its body and its
 * length (below); Connection:
 * close to a peer that is not a proxy, which gets no keep-alive (http.c queue). */
static void build_answer(struct lane_thread *t, const struct eg_resp *resp, bool head, bool close, struct sbuf *b)
{
	/* the verdict's statuses as one copy each; others as libmicrohttpd words them */
	static const char s200[] = "HTTP/1.1 200 OK\r\n", s401[] = "HTTP/1.1 401 Unauthorized\r\n",
			  s403[] = "HTTP/1.1 403 Forbidden\r\n";
	if (resp->status == 200) {
		sb_put(b, s200, sizeof(s200) - 1);
	} else if (resp->status == 401) {
		sb_put(b, s401, sizeof(s401) - 1);
	} else if (resp->status == 403) {
		sb_put(b, s403, sizeof(s403) - 1);
	} else {
		const char *reason = MHD_get_reason_phrase_for((unsigned)resp->status);
		sb_put(b, "HTTP/1.1 ", 9);
		sb_uint(b, (size_t)resp->status);
		sb_put(b, " ", 1);
		sb_str(b, reason && *reason ? reason : "Unknown");
		sb_put(b, "\r\n", 2);
	}
	if (resp->content_type && resp->body_len)
		sb_header(b, "Content-Type", resp->content_type);
	static const char cc[] = "Cache-Control: no-store\r\n";
	sb_put(b, cc, sizeof(cc) - 1);
	for (size_t i = 0; i < resp->n_headers; i++)
		sb_header_n(b, resp->hname[i], resp->hname_len[i], resp->hvalue[i], resp->hvalue_len[i]);
	if (close)
		sb_header(b, "Connection", "close");
	size_t dl;
	const char *date = date_line(t, &dl);
	sb_put(b, date, dl);
	/* An answer to HEAD ends at its empty line whatever it says (RFC 9112 6.3) and may leave
	 * Content-Length out (RFC 9110 9.3.2, 8.6): nginx's auth subrequest is a HEAD (the
	 * shipped snippet's proxy_method), and one header fewer is one less for nginx to parse
	 * and for each of its auth_request_set lines to compare (about 1,000 of nginx's
	 * instructions per verdict, callgrind). */
	if (!head) {
		sb_put(b, "Content-Length: ", 16);
		sb_uint(b, resp->body_len);
		sb_put(b, "\r\n", 2);
	}
	sb_put(b, "\r\n", 2);
	if (!head && resp->body_len)
		sb_put(b, resp->body, resp->body_len);
}

/* 1 all written, 0 the rest waits in c->out (EPOLLOUT), -1 the connection failed */
static int send_answer(struct lane_thread *t, struct lane_conn *c, const char *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t w = send(c->ac->fd, p + off, n - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			c->out = xmalloc(n - off);
			memcpy(c->out, p + off, n - off);
			c->out_len = n - off;
			c->out_off = 0;
			eg_admission_phase(t->l->adm, c->ac, EG_CONN_ANSWER);
			struct epoll_event ev = { .events = EPOLLOUT | EPOLLRDHUP, .data.ptr = c };
			return epoll_ctl(t->ep, EPOLL_CTL_MOD, c->ac->fd, &ev) == 0 ? 0 : -1;
		} else {
			return -1;
		}
	}
	return 1;
}

/* 1 flushed (reading again), 0 still pending, -1 failed or done (close it) */
static int flush_out(struct lane_thread *t, struct lane_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->ac->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w > 0)
			c->out_off += (size_t)w;
		else if (w < 0 && errno == EINTR)
			continue;
		else
			return w < 0 && errno == EAGAIN ? 0 : -1;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (!c->ac->trusted)
		return -1; /* its answer is out: closed, as after Connection: close */
	eg_admission_phase(t->l->adm, c->ac, EG_CONN_IDLE);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
	return epoll_ctl(t->ep, EPOLL_CTL_MOD, c->ac->fd, &ev) == 0 ? 1 : -1;
}

/* Removes exactly n bytes (already peeked) from the socket. */
static bool consume(int fd, char *buf, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, buf, n, 0);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return false;
		}
		n -= (size_t)r;
	}
	return true;
}

/* --- requests ------------------------------------------------------------------------------ */

enum { SERVE_OPEN, SERVE_GONE };

/* One request: answered (and consumed), or the connection handed over or closed. */
static int serve_one(struct lane_thread *t, struct lane_conn *c, char *buf, bool *more)
{
	*more = false;
	ssize_t n = recv(c->ac->fd, buf, EG_LANE_MAX_BLOCK, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return SERVE_OPEN;
	if (n <= 0) {
		conn_close(t, c);
		return SERVE_GONE;
	}
	struct eg_lane_msg m;
	long used = eg_lane_parse(buf, (size_t)n, VERDICT_PATH, &m);
	if (used == EG_LANE_NOT_OURS) /* nginx's next request after a 403 (edgegate.conf) */
		used = eg_lane_parse(buf, (size_t)n, FORBIDDEN_PATH, &m);
	struct eg_resp resp;
	if (used <= 0) {
		/* not the verdict's shape, or not complete in one read */
		conn_handover(t, c, used == EG_LANE_INCOMPLETE ? "incomplete" : "shape", false);
		return SERVE_GONE;
	}
	enum eg_lane_verdict v = eg_http_lane_answer(t->l->d, c->ac, &m, &resp);
	if (v != EG_LANE_ANSWERED) {
		/* a path not tried without the store, or a verdict that needs it */
		bool store = v == EG_LANE_NEEDS_STORE;
		conn_handover(t, c, store ? "store" : "shape", store);
		return SERVE_GONE;
	}
	count_conn(t, c);
	char stack[4096];
	struct sbuf b = { .p = stack, .cap = sizeof(stack) };
	bool close_after = !c->ac->trusted;
	build_answer(t, &resp, strcmp(m.method, "HEAD") == 0, close_after, &b);
	eg_resp_free(&resp);
	int sent = consume(c->ac->fd, buf, (size_t)used) ? send_answer(t, c, b.p, b.len) : -1;
	if (b.heap)
		free(b.p);
	if (sent < 0 || (sent == 1 && close_after)) {
		conn_close(t, c);
		return SERVE_GONE;
	}
	if (sent == 1)
		eg_admission_phase(t->l->adm, c->ac, EG_CONN_IDLE);
	/* a pipelined request already waits behind this one: read it now */
	*more = sent == 1 && (size_t)used < (size_t)n;
	return SERVE_OPEN;
}

static void conn_event(struct lane_thread *t, struct lane_conn *c, uint32_t events, char *buf)
{
	if (c->out) {
		int f = flush_out(t, c);
		if (f < 0)
			conn_close(t, c);
		if (f <= 0)
			return;
	}
	bool more = true;
	while (more)
		if (serve_one(t, c, buf, &more) == SERVE_GONE)
			return;
	(void)events;
}

static void *lane_main(void *arg)
{
	struct lane_thread *t = arg;
	pthread_setname_np(pthread_self(), "eg-lane");
	char *buf = xmalloc(EG_LANE_MAX_BLOCK);
	for (;;) {
		struct epoll_event ev[64];
		/* paused: look at the budget again every 50 ms (libmicrohttpd's threads free slots
		 * too, and do not wake this one) */
		int n = epoll_wait(t->ep, ev, 64, t->paused ? 50 : -1);
		if (t->paused)
			resume_listener(t);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("lane: epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == &tag_stop)
				goto out;
			if (ev[i].data.ptr == &tag_listen)
				accept_some(t);
			else
				conn_event(t, ev[i].data.ptr, ev[i].events, buf);
		}
	}
out:
	while (t->conns)
		conn_close(t, t->conns);
	free(buf);
	return NULL;
}

struct eg_lane *eg_lane_start(struct eg_daemon *d, int listen_fd, struct MHD_Daemon *mhd, struct eg_admission *adm,
			      unsigned threads, _Atomic unsigned *slots, unsigned max_connections)
{
	struct eg_lane *l = xcalloc(1, sizeof(*l));
	*l = (struct eg_lane){ .d = d, .mhd = mhd, .adm = adm, .lfd = listen_fd, .n_threads = threads ? threads : 1,
			       .max_conns = max_connections, .slots = slots };
	l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	eg_metric_help(d->metrics, "edgegate_http_lane_handovers_total", "counter",
		       "connections the verdict lane handed to libmicrohttpd, by reason (shape: not the verdict "
		       "request's simple form; incomplete: not whole in one read; store: the verdict needs the store)");
	for (int i = 0; i < 3; i++)
		eg_metric_inc(d->metrics, "edgegate_http_lane_handovers_total", "reason",
			      (const char *[]){ "shape", "incomplete", "store" }[i], NULL, NULL, 0);
	l->t = xcalloc(l->n_threads, sizeof(*l->t));
	int fl = fcntl(listen_fd, F_GETFL);
	bool ok = l->stopfd >= 0 && fl >= 0 && fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) == 0;
	for (unsigned i = 0; ok && i < l->n_threads; i++) {
		struct lane_thread *t = &l->t[i];
		t->l = l;
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		/* EPOLLEXCLUSIVE: a new connection wakes one thread, not all */
		struct epoll_event le = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &tag_listen };
		struct epoll_event se = { .events = EPOLLIN, .data.ptr = &tag_stop };
		ok = t->ep >= 0 && epoll_ctl(t->ep, EPOLL_CTL_ADD, listen_fd, &le) == 0 &&
		     epoll_ctl(t->ep, EPOLL_CTL_ADD, l->stopfd, &se) == 0 && pthread_create(&t->tid, NULL, lane_main, t) == 0;
		t->started = ok;
	}
	if (!ok) {
		log_err("lane: cannot start: %s", strerror(errno));
		eg_lane_stop(l);
		return NULL;
	}
	return l;
}

void eg_lane_stop(struct eg_lane *l)
{
	if (!l)
		return;
	if (l->stopfd >= 0) {
		uint64_t one = 1;
		if (write(l->stopfd, &one, sizeof(one)) < 0)
			log_warn("lane: cannot signal the threads: %s", strerror(errno));
	}
	for (unsigned i = 0; i < l->n_threads; i++) {
		if (l->t[i].started)
			pthread_join(l->t[i].tid, NULL);
		if (l->t[i].ep > 0)
			close(l->t[i].ep);
	}
	if (l->stopfd >= 0)
		close(l->stopfd);
	close(l->lfd);
	free(l->t);
	free(l);
}
