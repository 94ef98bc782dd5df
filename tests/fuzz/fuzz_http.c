/* fuzz_http.c - whole requests through the daemon's HTTP front: libmicrohttpd's parser,
 * then http.c's header index and header-block check (which walks libmicrohttpd's read
 * buffer), connection admission and the /auth verdict. The bytes go over a real unix
 * socket to an in-process listener, as nginx's would. Checks that every answer is one
 * the front may give (never a 5xx from edgegate's own code) and that a request whose
 * header block holds a NUL is never allowed. */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "verdict.h"

static char sock_path[108];

static void h_healthz(struct eg_daemon *d, const struct eg_req *r, struct eg_resp *resp)
{
	eg_resp_text(resp, 200, "ok\n");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static struct eg_daemon d;
	char err[256], json[640];
	snprintf(sock_path, sizeof(sock_path), "/tmp/eg-fuzz-http-%d.sock", (int)getpid());
	snprintf(json, sizeof(json),
		 "{\"listen\":\"unix:%s\",\"threads\":1,\"log_level\":\"error\","
		 "\"http\":{\"header_timeout\":\"2s\",\"max_connections\":512,\"reserved_for_proxies\":8},"
		 "\"routes\":[{\"host\":\"admin.test\",\"path\":\"/x/\",\"auth\":\"public\",\"methods\":[\"GET\"]},"
		 "{\"path\":\"/public/\",\"auth\":\"public\"},{\"path\":\"/\",\"auth\":\"public\","
		 "\"methods\":[\"POST\"]}]}",
		 sock_path);
	d.cfg = config_parse(json, strlen(json), "fuzz", err, sizeof(err));
	if (!d.cfg) {
		fprintf(stderr, "fuzz_http: %s\n", err);
		abort();
	}
	eg_log_set_level("error");
	d.metrics = eg_metrics_new();
	eg_http_register("/auth", "*", eg_verdict);
	eg_http_store_offload("/auth"); /* as main.c: tried without the store first */
	eg_http_register("/healthz", "GET,HEAD", h_healthz);
	if (eg_verdict_init(&d) != 0 || eg_http_start(&d) != 0)
		abort();
	return 0;
}

/* Every status line in the answer must be acceptable, and the first request's answer must
 * not be a 200 when its header block held a NUL. */
static void check_answer(const char *out, size_t n, bool has_nul_header)
{
	if (has_nul_header && n >= 12 && memcmp(out, "HTTP/1.", 7) == 0 && atoi(out + 9) == 200) {
		fprintf(stderr, "fuzz_http: a header block holding a NUL was answered 200\n");
		abort();
	}
	/* 100: the interim answer to "Expect: 100-continue" before a body */
	static const int ok[] = { 100, 200, 400, 401, 403, 404, 405, 413, 414, 417, 431, 501, 505 };
	for (const char *p = out; (p = memmem(p, n - (size_t)(p - out), "HTTP/1.", 7)) != NULL; p += 7) {
		if ((size_t)(p - out) + 12 > n || (p != out && p[-1] != '\n'))
			continue;
		int status = atoi(p + 9);
		bool good = false;
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			good |= status == ok[i];
		if (!good) {
			fprintf(stderr, "fuzz_http: unexpected status %d in the answer\n", status);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 70000)
		return 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		abort();
	size_t off = 0;
	while (off < size) {
		ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* the daemon closed: an error answer is already on its way */
		off += (size_t)w;
	}
	shutdown(fd, SHUT_WR);
	static char out[1 << 16];
	size_t n = 0;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	while (n < sizeof(out) - 1 && poll(&pfd, 1, 100) > 0) { /* an incomplete request would wait for the deadline: stop listening sooner */
		ssize_t r = recv(fd, out + n, sizeof(out) - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	out[n] = '\0';
	/* a NUL after the request line, before the end of the first request's headers (CR LF
	 * line ends only, so that the end found is that request's; leading empty lines skipped) */
	const uint8_t *start = data;
	while (start < data + size && (*start == '\r' || *start == '\n'))
		start++;
	size_t left = size - (size_t)(start - data);
	const uint8_t *eol = memchr(start, '\n', left);
	const uint8_t *eoh = memmem(start, left, "\r\n\r\n", 4);
	bool nul_header = eol && eoh && eol < eoh && memchr(eol, 0, (size_t)(eoh - eol)) != NULL;
	for (const uint8_t *p = start; nul_header && p < eoh + 4; p++)
		if (*p == '\n' && (p == start || p[-1] != '\r'))
			nul_header = false;
	check_answer(out, n, nul_header);
	return 0;
}
