/* admin.c - the admin socket: one JSON request per line, one JSON response per line.
 *
 * Unix stream socket, mode 0600 (only the daemon's user and root can manage it). A
 * single thread serves clients one at a time: admin traffic is rare, and a command
 * that mutates maps then runs alone. */
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
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "unixsock.h"
#include "util.h"

#define MAX_CMDS 48
#define MAX_LINE (1 << 20)

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

/* Reads one line (bounded), answers it, repeats until the client closes. */
static void serve_client(struct eg_daemon *d, int fd)
{
	char *buf = xmalloc(MAX_LINE);
	size_t len = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5000) <= 0)
			break;
		ssize_t n = read(fd, buf + len, MAX_LINE - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		char *nl;
		while ((nl = memchr(buf, '\n', len))) {
			size_t ll = (size_t)(nl - buf);
			json_t *resp = dispatch(d, buf, ll);
			char *out = json_dumps(resp, JSON_COMPACT);
			json_decref(resp);
			if (!out) /* out of memory or an unencodable answer: drop the client */
				goto done;
			size_t ol = strlen(out);
			out[ol] = '\n'; /* json_dumps' NUL becomes the line end */
			ssize_t w = write(fd, out, ol + 1);
			free(out);
			if (w < 0)
				goto done;
			memmove(buf, nl + 1, len - ll - 1);
			len -= ll + 1;
		}
		if (len == MAX_LINE)
			break; /* no newline within the limit: drop the client */
	}
done:
	free(buf);
}

static void *admin_thread(void *arg)
{
	struct eg_daemon *d = arg;
	for (;;) {
		struct pollfd p[2] = { { .fd = listen_fd, .events = POLLIN }, { .fd = stop_pipe[0], .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_client(d, fd);
		close(fd);
	}
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
	ssize_t w = write(fd, s, sl + 1);
	free(s);
	if (w < 0) {
		snprintf(err, errlen, "write to %s: %s", path, strerror(errno));
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
