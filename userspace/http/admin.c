/* admin.c - the admin socket: one JSON request per line, one JSON response per line.
 *
 * Unix stream socket, mode 0600 (only the daemon's user and root can manage it). A
 * single thread multiplexes up to EG_ADMIN_MAX_CLIENTS clients with poll(): a held-open
 * or slow client cannot delay another's revocation, and commands still run one at a
 * time (a command that mutates maps runs alone, as the handlers expect). */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "unixsock.h"
#include "util.h"

#define MAX_CMDS 48
#define MAX_LINE (1 << 20)
#define EG_STR_(x) #x
#define EG_STR(x) EG_STR_(x)

struct cmd {
	const char *name;
	eg_admin_fn fn;
};

static struct cmd cmds[MAX_CMDS];
static size_t n_cmds;
static int listen_fd = -1;
static int stop_pipe[2] = { -1, -1 };
static pthread_t thread;
static bool running;
static char sock_path[108];
static ino_t sock_inode; /* the admin socket this process bound */

void eg_admin_register(const char *name, eg_admin_fn fn)
{
	for (size_t i = 0; i < n_cmds; i++)
		if (strcmp(cmds[i].name, name) == 0) {
			cmds[i].fn = fn;
			return;
		}
	if (n_cmds < MAX_CMDS)
		cmds[n_cmds++] = (struct cmd){ name, fn };
}

static json_t *cmd_help(struct eg_daemon *d, const json_t *req, const char **err)
{
	json_t *list = json_array();
	for (size_t i = 0; i < n_cmds; i++)
		json_array_append_new(list, json_string(cmds[i].name));
	return json_pack("{s:o}", "commands", list);
}

static json_t *dispatch(struct eg_daemon *d, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(req)) {
		json_decref(req);
		return json_pack("{s:b,s:s}", "ok", 0, "error", "request is not a JSON object");
	}
	const char *name = json_string_value(json_object_get(req, "cmd"));
	json_t *resp = NULL;
	const char *err = NULL;
	if (!name) {
		err = "missing \"cmd\"";
	} else if (strcmp(name, "help") == 0) {
		resp = cmd_help(d, req, &err);
	} else {
		size_t i;
		for (i = 0; i < n_cmds; i++)
			if (strcmp(cmds[i].name, name) == 0)
				break;
		if (i == n_cmds)
			err = "unknown command";
		else
			resp = cmds[i].fn(d, req, &err);
	}
	if (!resp) {
		resp = json_pack("{s:b,s:s}", "ok", 0, "error", err ? err : "command failed");
	} else if (!json_object_get(resp, "ok")) {
		json_object_set_new(resp, "ok", json_true());
	}
	if (name)
		log_info("admin: %s -> %s", name, json_is_true(json_object_get(resp, "ok")) ? "ok" : "error");
	json_decref(req);
	return resp;
}

/* One connected client: what it sent that is not yet a whole line, what it has not
 * read yet of our answers, and when it is dropped. */
struct client {
	int fd;		 /* -1: free slot */
	char *in;	 /* grows up to MAX_LINE */
	size_t in_len, in_cap;
	char *out;	 /* answers not yet written (the socket was full) */
	size_t out_len, out_off;
	int64_t deadline; /* CLOCK_MONOTONIC ms: each request line must be whole by then */
};

static struct client clients[EG_ADMIN_MAX_CLIENTS];

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c->in);
	free(c->out);
	*c = (struct client){ .fd = -1 };
}

/* Writes what the socket takes now; 0 when all is out or some is left, -1 on error. */
static int client_flush(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		c->out_off += (size_t)w;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return 0;
}

/* Answers the complete lines buffered, in order. It stops while an answer is still
 * unsent, so a client that does not read its answers only stalls itself. */
static int client_answer(struct eg_daemon *d, struct client *c)
{
	char *nl;
	while (!c->out && (nl = memchr(c->in, '\n', c->in_len))) {
		size_t ll = (size_t)(nl - c->in);
		/* the command runs to completion (a revocation is recorded) before it is answered */
		json_t *resp = dispatch(d, c->in, ll);
		char *out = json_dumps(resp, JSON_COMPACT);
		json_decref(resp);
		if (!out) /* out of memory or an unencodable answer: drop the client */
			return -1;
		size_t ol = strlen(out);
		out[ol] = '\n'; /* json_dumps' NUL becomes the line end */
		c->out = out;
		c->out_len = ol + 1;
		memmove(c->in, nl + 1, c->in_len - ll - 1);
		c->in_len -= ll + 1;
		c->deadline = mono_ms() + EG_ADMIN_IDLE_MS;
		if (client_flush(c) != 0)
			return -1;
	}
	return 0;
}

/* Reads what is there; -1 when the client is done (closed, error, line too long). */
static int client_read(struct eg_daemon *d, struct client *c)
{
	if (c->in_len == c->in_cap) {
		if (c->in_cap == MAX_LINE)
			return -1; /* no newline within the limit */
		c->in_cap = c->in_cap ? c->in_cap * 2 : 4096;
		if (c->in_cap > MAX_LINE)
			c->in_cap = MAX_LINE;
		char *grown = realloc(c->in, c->in_cap);
		if (!grown)
			return -1;
		c->in = grown;
	}
	ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	c->in_len += (size_t)n;
	return client_answer(d, c);
}

/* Takes a new connection into a free slot, or tells it plainly that there is none:
 * never waits on it, so a crowd of clients cannot stall the loop. */
static void accept_client(void)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (size_t i = 0; i < EG_ADMIN_MAX_CLIENTS; i++)
		if (clients[i].fd < 0) {
			clients[i] = (struct client){ .fd = fd, .deadline = mono_ms() + EG_ADMIN_IDLE_MS };
			return;
		}
	static const char busy[] = "{\"ok\":false,\"error\":\"admin socket busy: too many clients connected "
				   "(limit " EG_STR(EG_ADMIN_MAX_CLIENTS) "); retry\"}\n";
	ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	log_warn("admin: refused a client: %d already connected", EG_ADMIN_MAX_CLIENTS);
	close(fd);
}

/* One thread serves every client through poll(): commands still run one at a time
 * (handlers keep the serialisation they were written for), but a client that is idle,
 * slow to send or slow to read no longer delays the others. */
static void *admin_thread(void *arg)
{
	struct eg_daemon *d = arg;
	struct pollfd p[2 + EG_ADMIN_MAX_CLIENTS];
	struct client *owner[2 + EG_ADMIN_MAX_CLIENTS];

	for (size_t i = 0; i < EG_ADMIN_MAX_CLIENTS; i++)
		clients[i] = (struct client){ .fd = -1 };
	for (;;) {
		int64_t now = mono_ms(), next = -1;
		nfds_t n = 2;
		p[0] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = stop_pipe[0], .events = POLLIN };
		for (size_t i = 0; i < EG_ADMIN_MAX_CLIENTS; i++) {
			struct client *c = &clients[i];
			if (c->fd < 0)
				continue;
			if (now >= c->deadline) {
				client_close(c);
				continue;
			}
			if (next < 0 || c->deadline < next)
				next = c->deadline;
			owner[n] = c;
			p[n++] = (struct pollfd){ .fd = c->fd, .events = c->out ? POLLOUT : POLLIN };
		}
		int timeout = next < 0 ? -1 : (int)(next - now);
		if (poll(p, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		for (nfds_t i = 2; i < n; i++) {
			struct client *c = owner[i];
			int rc = 0;
			if (!p[i].revents)
				continue;
			if (c->out) {
				rc = client_flush(c);
				if (rc == 0 && !c->out)
					rc = client_answer(d, c); /* lines that waited for the answer to drain */
			} else {
				rc = client_read(d, c);
			}
			if (rc != 0)
				client_close(c);
		}
		if (p[0].revents)
			accept_client();
	}
	for (size_t i = 0; i < EG_ADMIN_MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			client_close(&clients[i]);
	return NULL;
}

int eg_admin_start(struct eg_daemon *d, const char *path)
{
	if (strlen(path) >= sizeof(sock_path)) {
		log_err("admin_socket: path too long");
		return -1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (eg_unix_claim(path) != 0) { /* a live one is another daemon's; a stale one is removed */
		log_err("admin_socket %s: %s%s", path, strerror(errno),
			errno == EADDRINUSE ? " (another edgegated serves it; not taking it over)" : "");
		close(listen_fd);
		listen_fd = -1;
		return -1;
	}
	mode_t old = umask(0177);
	int rc = bind(listen_fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc != 0 || listen(listen_fd, 16) != 0 || pipe2(stop_pipe, O_CLOEXEC) != 0) {
		log_err("admin_socket %s: %s", path, strerror(errno));
		close(listen_fd);
		listen_fd = -1;
		return -1;
	}
	sock_inode = eg_unix_inode(path);
	if (pthread_create(&thread, NULL, admin_thread, d) != 0) {
		log_err("admin_socket: cannot start thread");
		return -1;
	}
	running = true;
	return 0;
}

void eg_admin_stop(void)
{
	if (!running)
		return;
	ssize_t w = write(stop_pipe[1], "x", 1);
	(void)w;
	pthread_join(thread, NULL);
	close(listen_fd);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	eg_unix_release(sock_path, sock_inode);
	running = false;
}

json_t *eg_admin_call(const char *path, const json_t *req, char *err, size_t errlen)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		snprintf(err, errlen, "cannot reach the daemon at %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char *s = json_dumps(req, JSON_COMPACT);
	if (!s) {
		snprintf(err, errlen, "cannot encode the request");
		close(fd);
		return NULL;
	}
	size_t sl = strlen(s);
	s[sl] = '\n';
	/* No SIGPIPE, and a failed write is not the end: a daemon at its client bound
	 * answers "busy" and closes without reading, and that answer is what to show. */
	ssize_t w = send(fd, s, sl + 1, MSG_NOSIGNAL);
	int werr = errno;
	free(s);
	if (w < 0 && werr != EPIPE && werr != ECONNRESET) {
		snprintf(err, errlen, "write to %s: %s", path, strerror(werr));
		close(fd);
		return NULL;
	}
	char *buf = xmalloc(MAX_LINE);
	size_t len = 0;
	json_t *resp = NULL;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 30000) <= 0) {
			snprintf(err, errlen, "no answer from the daemon at %s", path);
			break;
		}
		ssize_t n = read(fd, buf + len, MAX_LINE - 1 - len);
		if (n <= 0) {
			snprintf(err, errlen, "the daemon closed the connection");
			break;
		}
		len += (size_t)n;
		char *nl = memchr(buf, '\n', len);
		if (nl) {
			json_error_t jerr;
			resp = json_loadb(buf, (size_t)(nl - buf), 0, &jerr);
			if (!resp)
				snprintf(err, errlen, "bad answer from the daemon: %s", jerr.text);
			break;
		}
		if (len >= MAX_LINE - 1) {
			snprintf(err, errlen, "answer too long");
			break;
		}
	}
	free(buf);
	close(fd);
	return resp;
}
