/* admin.c - the admin socket: one JSON request per line, one JSON response per line.
 *
 * Unix stream socket, mode 0600 (only the daemon's user and root can manage it). One
 * thread multiplexes up to EG_ADMIN_MAX_CLIENTS clients with poll(): a held-open or slow
 * client cannot delay another's revocation. Commands run on EG_ADMIN_WORKERS worker
 * threads, so a slow command (a listing over a large store) does not hold up another
 * client's revoke either. The handlers take the locks their modules already take for the
 * HTTP threads (a back-channel logout revokes, a verdict bans, side by side). A client has
 * at most one command running: its lines are answered in order, each once it completed
 * (a revocation is recorded before it is acknowledged). */
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
	bool busy;	  /* a command of this client is on a worker */
	bool eof;	  /* it sent all it will send (half-closed): answered, then closed */
	uint64_t gen;	  /* tells a worker's answer for this connection from one for a slot reused */
};

static struct client clients[EG_ADMIN_MAX_CLIENTS];
static uint64_t next_gen;

/* A command line on its way to a worker and its answer on the way back. */
struct job {
	struct job *next;
	size_t slot;
	uint64_t gen;
	char *line;
	size_t len;
	char *out; /* the answer line; NULL: unencodable, drop the client */
	size_t out_len;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo, **todo_tail, *done;
	bool stop;
	int wake[2]; /* a worker's answer is ready (non-blocking pipe) */
	pthread_t threads[EG_ADMIN_WORKERS];
	size_t n_threads;
	struct eg_daemon *d;
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .wake = { -1, -1 } };

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

/* Half-closed, every line answered and sent: nothing more to do for this client. */
static bool client_finished(const struct client *c)
{
	return c->eof && !c->busy && !c->out;
}

/* Hands the next complete line to a worker. Nothing while a command of this client runs
 * or an answer is still unsent, so a client that does not read its answers only stalls
 * itself, and its lines are answered in order. */
static int client_answer(struct eg_daemon *d, struct client *c)
{
	char *nl;
	if (c->out || c->busy || !(nl = memchr(c->in, '\n', c->in_len)))
		return 0;
	size_t ll = (size_t)(nl - c->in);
	struct job *j = xcalloc(1, sizeof(*j));
	j->slot = (size_t)(c - clients);
	j->gen = c->gen;
	j->line = xmalloc(ll + 1);
	memcpy(j->line, c->in, ll);
	j->len = ll;
	memmove(c->in, nl + 1, c->in_len - ll - 1);
	c->in_len -= ll + 1;
	c->busy = true;
	pthread_mutex_lock(&pool.mu);
	*pool.todo_tail = j;
	pool.todo_tail = &j->next;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	return 0;
}

/* A worker: runs each command to completion (a revocation is recorded) before its answer
 * goes back to the poll thread. */
static void *admin_worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pool.mu);
	for (;;) {
		while (!pool.todo && !pool.stop)
			pthread_cond_wait(&pool.cv, &pool.mu);
		if (pool.stop)
			break; /* lines not started are not answered: nothing was acknowledged */
		struct job *j = pool.todo;
		pool.todo = j->next;
		if (!pool.todo)
			pool.todo_tail = &pool.todo;
		pthread_mutex_unlock(&pool.mu);

		json_t *resp = dispatch(pool.d, j->line, j->len);
		char *out = json_dumps(resp, JSON_COMPACT);
		json_decref(resp);
		if (out) {
			j->out_len = strlen(out) + 1;
			out[j->out_len - 1] = '\n'; /* json_dumps' NUL becomes the line end */
			j->out = out;
		}
		pthread_mutex_lock(&pool.mu);
		j->next = pool.done;
		pool.done = j;
		pthread_mutex_unlock(&pool.mu);
		ssize_t w = write(pool.wake[1], "x", 1); /* full pipe: a wake-up is pending anyway */
		(void)w;
	}
	pthread_mutex_unlock(&pool.mu);
	return NULL;
}

static void job_free(struct job *j)
{
	free(j->line);
	free(j->out);
	free(j);
}

/* On the poll thread: the workers' answers go to their clients (a client gone meanwhile
 * loses it; the command has completed all the same), and each client's next line starts. */
static void take_answers(struct eg_daemon *d)
{
	char buf[64];
	while (read(pool.wake[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&pool.mu);
	struct job *j = pool.done;
	pool.done = NULL;
	pthread_mutex_unlock(&pool.mu);
	while (j) {
		struct job *next = j->next;
		struct client *c = &clients[j->slot];
		if (c->fd >= 0 && c->gen == j->gen) {
			c->busy = false;
			c->deadline = mono_ms() + EG_ADMIN_IDLE_MS;
			if (!j->out) { /* out of memory or an unencodable answer: drop the client */
				client_close(c);
			} else {
				c->out = j->out;
				c->out_len = j->out_len;
				j->out = NULL;
				if (client_flush(c) != 0 || client_answer(d, c) != 0 || client_finished(c))
					client_close(c);
			}
		}
		job_free(j);
		j = next;
	}
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
	if (n < 0)
		return -1;
	if (n == 0) {
		/* `nc -N`, shutdown(SHUT_WR): the lines it sent are still answered */
		c->eof = true;
		return client_answer(d, c) == 0 && !client_finished(c) ? 0 : -1;
	}
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
			clients[i] = (struct client){ .fd = fd, .deadline = mono_ms() + EG_ADMIN_IDLE_MS,
						      .gen = ++next_gen };
			return;
		}
	static const char busy[] = "{\"ok\":false,\"error\":\"admin socket busy: too many clients connected "
				   "(limit " EG_STR(EG_ADMIN_MAX_CLIENTS) "); retry\"}\n";
	ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	log_warn("admin: refused a client: %d already connected", EG_ADMIN_MAX_CLIENTS);
	close(fd);
}

/* One thread serves every client through poll() and hands complete lines to the
 * workers: a client that is idle, slow to send or slow to read, or whose command is slow,
 * does not delay the others. */
static void *admin_thread(void *arg)
{
	struct eg_daemon *d = arg;
	struct pollfd p[3 + EG_ADMIN_MAX_CLIENTS];
	struct client *owner[3 + EG_ADMIN_MAX_CLIENTS];

	for (;;) {
		int64_t now = mono_ms(), next = -1;
		nfds_t n = 3;
		p[0] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = stop_pipe[0], .events = POLLIN };
		p[2] = (struct pollfd){ .fd = pool.wake[0], .events = POLLIN };
		for (size_t i = 0; i < EG_ADMIN_MAX_CLIENTS; i++) {
			struct client *c = &clients[i];
			if (c->fd < 0)
				continue;
			if (now >= c->deadline && !c->busy) { /* a running command is not idleness */
				client_close(c);
				continue;
			}
			if (!c->busy && (next < 0 || c->deadline < next))
				next = c->deadline;
			if (c->eof && !c->out)
				continue; /* nothing to read any more; its answer is on a worker */
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
		if (p[2].revents)
			take_answers(d);
		for (nfds_t i = 3; i < n; i++) {
			struct client *c = owner[i];
			int rc = 0;
			if (!p[i].revents || c->fd != p[i].fd)
				continue; /* nothing, or closed by take_answers above */
			if (c->out) {
				rc = client_flush(c);
				if (rc == 0 && !c->out)
					rc = client_answer(d, c); /* lines that waited for the answer to drain */
				if (rc == 0 && client_finished(c))
					rc = -1;
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

/* Lets the running commands complete; lines not started are dropped unanswered. */
static void workers_stop(void)
{
	pthread_mutex_lock(&pool.mu);
	pool.stop = true;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	for (size_t i = 0; i < pool.n_threads; i++)
		pthread_join(pool.threads[i], NULL);
	pool.n_threads = 0;
	for (struct job *j = pool.todo, *next; j; j = next) {
		next = j->next;
		job_free(j);
	}
	for (struct job *j = pool.done, *next; j; j = next) {
		next = j->next;
		job_free(j);
	}
	pool.todo = pool.done = NULL;
	pool.todo_tail = &pool.todo;
	for (int i = 0; i < 2; i++)
		if (pool.wake[i] >= 0) {
			close(pool.wake[i]);
			pool.wake[i] = -1;
		}
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
	for (size_t i = 0; i < EG_ADMIN_MAX_CLIENTS; i++)
		clients[i] = (struct client){ .fd = -1 };
	pool.d = d;
	pool.stop = false;
	pool.todo = NULL;
	pool.todo_tail = &pool.todo;
	pool.done = NULL;
	if (pipe2(pool.wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		log_err("admin_socket: %s", strerror(errno));
		return -1;
	}
	/* started before the privilege drop, like every thread: eg_privc_drop_all checks each */
	for (pool.n_threads = 0; pool.n_threads < EG_ADMIN_WORKERS; pool.n_threads++)
		if (pthread_create(&pool.threads[pool.n_threads], NULL, admin_worker, NULL) != 0)
			break;
	if (pool.n_threads == 0 || pthread_create(&thread, NULL, admin_thread, d) != 0) {
		log_err("admin_socket: cannot start its threads");
		workers_stop();
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
	workers_stop();
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
