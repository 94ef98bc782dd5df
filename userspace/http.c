/* http.c - libmicrohttpd glue: listeners, the endpoint table, request accessors and
 * responses. Endpoints register themselves; this file knows none of them.
 *
 * Responses are queued on the second access-handler call, never the first: MHD sends
 * "Connection: close" when a response is queued before it has finished reading the
 * request, which would defeat nginx's upstream keep-alive. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "unixsock.h"
#include "util.h"

#define MAX_ENDPOINTS 32
#define MAX_BODY (64 * 1024)

struct endpoint {
	const char *path;
	const char *methods;
	eg_handler_fn fn;
};

static struct endpoint endpoints[MAX_ENDPOINTS];
static size_t n_endpoints;

void eg_http_register(const char *path, const char *methods, eg_handler_fn fn)
{
	for (size_t i = 0; i < n_endpoints; i++) {
		if (strcmp(endpoints[i].path, path) == 0) {
			endpoints[i].methods = methods;
			endpoints[i].fn = fn;
			return;
		}
	}
	if (n_endpoints == MAX_ENDPOINTS)
		abort(); /* a programming error, not a runtime condition */
	endpoints[n_endpoints++] = (struct endpoint){ path, methods, fn };
}

static const struct endpoint *find_endpoint(const char *path)
{
	for (size_t i = 0; i < n_endpoints; i++)
		if (strcmp(endpoints[i].path, path) == 0)
			return &endpoints[i];
	for (size_t i = 0; i < n_endpoints; i++) {
		size_t l = strlen(endpoints[i].path);
		if (l >= 2 && strcmp(endpoints[i].path + l - 2, "/*") == 0 && strncmp(endpoints[i].path, path, l - 1) == 0)
			return &endpoints[i];
	}
	return NULL;
}

static bool method_allowed(const char *list, const char *m)
{
	if (strcmp(list, "*") == 0)
		return true;
	size_t ml = strlen(m);
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);
		if (l == ml && strncmp(p, m, l) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

/* --- request accessors --------------------------------------------------------------- */

struct count_ctx {
	const char *name;
	int count;
	const char *first;
};

static enum MHD_Result count_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct count_ctx *c = cls;
	if (key && strcasecmp(key, c->name) == 0) {
		if (c->count++ == 0)
			c->first = value;
	}
	return MHD_YES;
}

/* Query arguments: a value that decodes to a NUL ("rd=/%00/evil") would be read cut
 * short; it counts twice, so every caller that insists on exactly one refuses it. */
static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
				 const char *value, size_t value_size)
{
	struct count_ctx *c = cls;
	count_value(cls, kind, key, value);
	if (key && value && strcasecmp(key, c->name) == 0 && strlen(value) != value_size)
		c->count++;
	return MHD_YES;
}

/* The headers the verdict path reads, found with one pass over the request instead of
 * one scan per lookup (a dozen lookups per verdict). Other names fall back to MHD. */
static const char *const known_names[] = {
	"Host", "Accept", "Cookie", "X-Real-IP", "X-Real-Port", "X-Server-Addr", "X-Server-Port",
	"Authorization", "X-Original-URI", "X-Original-URL", "X-Forwarded-Uri", "X-Forwarded-Host",
	"X-Forwarded-Proto", "X-Original-Method", "X-Requested-With", "X-SSL-Client-Cert",
	"X-SSL-Client-Verify",
};
#define N_KNOWN (sizeof(known_names) / sizeof(known_names[0]))

struct eg_hdr_index {
	const char *value[N_KNOWN];
	unsigned count[N_KNOWN];
};

static size_t known_len[N_KNOWN];

__attribute__((constructor)) static void known_lengths(void)
{
	for (size_t i = 0; i < N_KNOWN; i++)
		known_len[i] = strlen(known_names[i]);
}

static int known_index(const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < N_KNOWN; i++)
		if (known_len[i] == len && strcasecmp(known_names[i], name) == 0)
			return (int)i;
	return -1;
}

static enum MHD_Result index_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct eg_hdr_index *x = cls;
	int k = key ? known_index(key) : -1;
	if (k >= 0 && x->count[k]++ == 0)
		x->value[k] = value;
	return MHD_YES;
}

const char *eg_req_header_dup(const struct eg_req *r, const char *name, bool *dup)
{
	int k = r->hidx ? known_index(name) : -1;
	if (k >= 0) {
		if (dup)
			*dup = r->hidx->count[k] > 1;
		return r->hidx->value[k];
	}
	struct count_ctx c = { .name = name };
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_value, &c);
	if (dup)
		*dup = c.count > 1;
	return c.first;
}

const char *eg_req_header(const struct eg_req *r, const char *name)
{
	int k = r->hidx ? known_index(name) : -1;
	if (k >= 0)
		return r->hidx->value[k];
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *eg_req_arg(const struct eg_req *r, const char *name, int *count)
{
	struct count_ctx c = { .name = name };
	MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, count_arg, &c);
	if (count)
		*count = c.count;
	/* MHD reports "?a" (no '=') with a NULL value; treat as empty. */
	return c.count && !c.first ? "" : c.first;
}

struct cookie_ctx {
	const char *name;
	char *buf;
	size_t len;
	bool found;
	bool decided; /* the first cookie of that name was seen (perhaps too long) */
};

/* Cookie: a=b; c=d. Parsed here (not by MHD) so the rules are ours: the first cookie
 * of that name wins, values are taken verbatim, surrounding quotes are stripped. */
static void cookie_scan(const char *hdr, struct cookie_ctx *c)
{
	size_t nl = strlen(c->name);
	const char *p = hdr;
	while (*p && !c->found) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t seg = end ? (size_t)(end - p) : strlen(p);
		if (seg > nl && strncmp(p, c->name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1;
			size_t vl = seg - nl - 1;
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"')
				v++, vl -= 2;
			if (vl < c->len) {
				memcpy(c->buf, v, vl);
				c->buf[vl] = '\0';
				c->found = true;
			}
			c->decided = true;
			return; /* first occurrence decides, even if too long */
		}
		p += seg;
	}
}

const char *eg_cookie_value(const char *header, const char *name, char *buf, size_t len)
{
	struct cookie_ctx c = { .name = name, .buf = buf, .len = len };
	if (header && len)
		cookie_scan(header, &c);
	return c.found ? buf : NULL;
}

static enum MHD_Result cookie_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct cookie_ctx *c = cls;
	if (key && value && strcasecmp(key, "Cookie") == 0)
		cookie_scan(value, c);
	return c->decided ? MHD_NO : MHD_YES;
}

const char *eg_req_cookie(const struct eg_req *r, const char *name, char *buf, size_t len)
{
	struct cookie_ctx c = { .name = name, .buf = buf, .len = len };
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, cookie_value, &c);
	return c.found ? buf : NULL;
}

struct cookie_count_ctx {
	const char *name;
	int n;
};

static enum MHD_Result cookie_count_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct cookie_count_ctx *c = cls;
	size_t nl = strlen(c->name);
	if (!key || !value || strcasecmp(key, "Cookie") != 0)
		return MHD_YES;
	for (const char *p = value; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		if (strncmp(p, c->name, nl) == 0 && p[nl] == '=')
			c->n++;
		p += strcspn(p, ";");
	}
	return MHD_YES;
}

int eg_req_cookie_count(const struct eg_req *r, const char *name)
{
	struct cookie_count_ctx c = { .name = name };
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, cookie_count_value, &c);
	return c.n;
}

/* --- responses ------------------------------------------------------------------------ */

void eg_resp_header(struct eg_resp *resp, const char *name, const char *value)
{
	if (resp->n_headers == EG_RESP_MAX_HEADERS) {
		log_warn("response header limit reached, dropping %s", name);
		return;
	}
	/* CR/LF in a value would split the header: never emit them. */
	char *v = xstrdup(value);
	for (char *p = v; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	resp->hname[resp->n_headers] = xstrdup(name);
	resp->hvalue[resp->n_headers++] = v;
}

void eg_resp_body(struct eg_resp *resp, int status, const char *ctype, const char *body)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = ctype;
	resp->body = xstrdup(body ? body : "");
	resp->body_len = strlen(resp->body);
}

void eg_resp_text(struct eg_resp *resp, int status, const char *text)
{
	eg_resp_body(resp, status, "text/plain; charset=utf-8", text);
}

void eg_resp_json(struct eg_resp *resp, int status, const char *json)
{
	eg_resp_body(resp, status, "application/json", json);
}

void eg_resp_redirect(struct eg_resp *resp, const char *location)
{
	eg_resp_header(resp, "Location", location);
	eg_resp_body(resp, 302, "text/plain; charset=utf-8", "Redirecting\n");
}

static char *html_escape(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += strchr("<>&\"'", *p) ? 6 : 1;
	char *out = xmalloc(n + 1), *o = out;
	for (const char *p = s; *p; p++) {
		const char *rep = NULL;
		switch (*p) {
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '&': rep = "&amp;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		}
		if (rep)
			o = stpcpy(o, rep);
		else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

void eg_resp_html_error(struct eg_resp *resp, int status, const char *title, const char *msg)
{
	char *t = html_escape(title), *m = html_escape(msg);
	char *page = xasprintf("<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title></head>"
			       "<body><h1>%s</h1><p>%s</p></body></html>\n", t, t, m);
	eg_resp_body(resp, status, "text/html; charset=utf-8", page);
	free(page);
	free(t);
	free(m);
}

void eg_resp_free(struct eg_resp *resp)
{
	free(resp->body);
	for (size_t i = 0; i < resp->n_headers; i++) {
		free(resp->hname[i]);
		free(resp->hvalue[i]);
	}
	memset(resp, 0, sizeof(*resp));
}

/* --- the access handler ------------------------------------------------------------------ */

struct req_ctx {
	char *body;
	size_t len;
	bool too_large;
	bool started;     /* the first handler call was seen (responses are queued on the second) */
	char *raw_target; /* the request-target before MHD decodes it */
};

/* MHD hands the request-target to this callback before it percent-decodes the path: the
 * only place the target is seen as the proxy sent it (Envoy puts the original one there). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct req_ctx *rc = xcalloc(1, sizeof(*rc));
	rc->raw_target = xstrdup(uri ? uri : "");
	return rc;
}

static bool peer_trusted(const struct eg_config *cfg, const struct sockaddr *sa, uint8_t addr[16], bool *is_unix)
{
	*is_unix = false;
	memset(addr, 0, 16);
	if (!sa)
		return false;
	if (sa->sa_family == AF_UNIX) {
		*is_unix = true; /* only processes that can reach the socket file: nginx by design */
		return true;
	}
	if (eg_addr_from_sockaddr(sa, addr) != 0)
		return false;
	for (size_t i = 0; i < cfg->n_trusted_proxies; i++)
		if (eg_prefix_contains(&cfg->trusted_proxies[i], addr))
			return true;
	return false;
}

static enum MHD_Result queue(struct MHD_Connection *conn, struct eg_resp *resp)
{
	struct MHD_Response *mr =
		MHD_create_response_from_buffer(resp->body_len, resp->body ? resp->body : "", MHD_RESPMEM_MUST_COPY);
	if (!mr)
		return MHD_NO;
	if (resp->content_type)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
	MHD_add_response_header(mr, "Cache-Control", "no-store");
	for (size_t i = 0; i < resp->n_headers; i++)
		MHD_add_response_header(mr, resp->hname[i], resp->hvalue[i]);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, mr);
	MHD_destroy_response(mr);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct eg_daemon *d = cls;
	struct req_ctx *rc = *con_cls;
	if (!rc)
		*con_cls = rc = xcalloc(1, sizeof(*rc));
	if (!rc->started) {
		rc->started = true;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!rc->too_large) {
			if (rc->len + *upload_data_size > MAX_BODY) {
				rc->too_large = true;
			} else {
				rc->body = realloc(rc->body, rc->len + *upload_data_size + 1);
				if (!rc->body)
					abort();
				memcpy(rc->body + rc->len, upload_data, *upload_data_size);
				rc->len += *upload_data_size;
				rc->body[rc->len] = '\0';
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	struct eg_req r = { .conn = conn, .method = method, .url = url, .body = rc->body, .body_len = rc->len,
			    .raw_target = rc->raw_target, .proxy = d->cfg->proxy };
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	r.peer_trusted = peer_trusted(d->cfg, ci ? ci->client_addr : NULL, r.peer_addr, &r.peer_unix);
	struct eg_hdr_index hidx = { 0 };
	MHD_get_connection_values(conn, MHD_HEADER_KIND, index_value, &hidx);
	r.hidx = &hidx;

	struct eg_resp resp = { 0 };
	const struct endpoint *ep = find_endpoint(url);
	if (rc->too_large)
		eg_resp_text(&resp, 413, "request body too large\n");
	else if (!ep)
		eg_resp_text(&resp, 404, "not found\n");
	else if (!method_allowed(ep->methods, method)) {
		eg_resp_header(&resp, "Allow", ep->methods);
		eg_resp_text(&resp, 405, "method not allowed\n");
	} else
		ep->fn(d, &r, &resp);
	if (resp.status == 0)
		eg_resp_text(&resp, 500, "internal error\n");
	eg_metric_inc(d->metrics, "edgegate_http_requests_total", "endpoint", ep ? ep->path : "other", NULL, NULL, 1);
	enum MHD_Result ret = queue(conn, &resp);
	eg_resp_free(&resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct req_ctx *rc = *con_cls;
	if (rc) {
		free(rc->body);
		free(rc->raw_target);
		free(rc);
		*con_cls = NULL;
	}
}

/* Counts accepted connections: with nginx keep-alive working, far fewer than requests. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct eg_daemon *d = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		eg_metric_inc(d->metrics, "edgegate_http_connections_total", NULL, NULL, NULL, NULL, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("microhttpd: %s", msg);
}

/* The unix sockets this process bound (by listen index), removed on stop if still ours. */
static ino_t unix_inode[8];

/* 0660: only the daemon's user and listen_group (nginx's) may connect, because any peer
 * on this socket is believed as the proxy. */
static int unix_listen(const char *path, gid_t group)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (eg_unix_claim(path) != 0) { /* a live one is another daemon's; a stale one is removed */
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || chmod(path, 0660) != 0 ||
	    (group != (gid_t)-1 && chown(path, (uid_t)-1, group) != 0) || listen(fd, 1024) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int eg_http_start(struct eg_daemon *d)
{
	const struct eg_config *cfg = d->cfg;
	unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1)
		threads = 1;
	for (size_t i = 0; i < cfg->n_listen && i < sizeof(d->mhd) / sizeof(d->mhd[0]); i++) {
		const struct eg_listen *l = &cfg->listen[i];
		unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
		struct MHD_OptionItem opts[9];
		int n = 0;
		int fd = -1;
		if (l->is_unix) {
			gid_t group = (gid_t)-1;
			if (cfg->listen_group && eg_group_id(cfg->listen_group, &group) != 0) {
				log_err("listen_group: no group \"%s\"", cfg->listen_group);
				return -1;
			}
			fd = unix_listen(l->path, group);
			if (fd < 0) {
				log_err("listen %s: %s%s", l->text, strerror(errno),
					errno == EADDRINUSE ? " (another edgegated serves it; not taking it over)" : "");
				return -1;
			}
			unix_inode[i] = eg_unix_inode(l->path);
			opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd, NULL };
		} else {
			if (l->ss.ss_family == AF_INET6)
				flags |= MHD_USE_IPv6;
			opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, (void *)&l->ss };
			opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL };
		}
		if (threads > 1)
			opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, threads, NULL };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL };
		/* Room for large Cookie/Authorization headers (MHD answers 431 past this), but no
		 * more: MHD 0.9.75 zeroes the whole pool before every keep-alive request. */
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, NULL };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
		struct MHD_Daemon *md = MHD_start_daemon(flags, 0, NULL, NULL, on_request, d,
							 MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
							 MHD_OPTION_NOTIFY_CONNECTION, on_connection, d,
							 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
		if (!md) {
			log_err("listen %s: cannot start HTTP server (address in use or not permitted?)", l->text);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		d->mhd[d->n_mhd++] = md;
		log_info("listening on %s (%u threads)", l->text, threads);
	}
	return 0;
}

void eg_http_stop(struct eg_daemon *d)
{
	for (int i = 0; i < d->n_mhd; i++) {
		MHD_stop_daemon(d->mhd[i]);
		d->mhd[i] = NULL;
	}
	d->n_mhd = 0;
	for (size_t i = 0; i < d->cfg->n_listen && i < sizeof(unix_inode) / sizeof(unix_inode[0]); i++)
		if (d->cfg->listen[i].is_unix)
			eg_unix_release(d->cfg->listen[i].path, unix_inode[i]);
}
