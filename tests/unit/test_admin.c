/* test_admin.c - the admin socket serves clients side by side: a client that holds
 * the socket open, drips a partial line or never reads its answers does not delay
 * another's command, nor does another client's slow command; one client's lines are
 * answered in order, also after it half-closed; the client bound refuses the excess at once
 * with a clear error. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "admin.h"

static char path[108];
static atomic_int recorded; /* what "record" wrote before it answered */

static json_t *cmd_record(struct eg_daemon *d, const json_t *req, const char **err)
{
	atomic_fetch_add(&recorded, 1);
	return json_pack("{s:i}", "recorded", atomic_load(&recorded));
}

static atomic_int slow_started;

/* A command that takes a while (a listing over a large store, a revocation ending many flows). */
static json_t *cmd_slow(struct eg_daemon *d, const json_t *req, const char **err)
{
	atomic_fetch_add(&slow_started, 1);
	usleep(800 * 1000);
	return json_pack("{s:s}", "slow", "done");
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* One command over a fresh connection; returns how long the answer took (ms). */
static int64_t call_timed(const char *cmd, json_t **resp_out)
{
	char err[256] = "";
	json_t *req = json_pack("{s:s}", "cmd", cmd);
	int64_t t0 = now_ms();
	json_t *resp = eg_admin_call(path, req, err, sizeof(err));
	int64_t dt = now_ms() - t0;
	json_decref(req);
	if (!resp)
		fail_msg("admin call %s: %s", cmd, err);
	if (resp_out)
		*resp_out = resp;
	else
		json_decref(resp);
	return dt;
}

/* Waits for the server to have taken the connections (accept runs in its thread). */
static void settle(void)
{
	json_t *r;
	call_timed("help", &r);
	json_decref(r);
}

static void idle_and_slow_clients_do_not_delay_a_command(void **state)
{
	int idle = dial(), slow = dial();
	assert_int_equal(write(slow, "{\"cmd\":", 7), 7); /* a partial line, never finished */
	settle();
	int before = atomic_load(&recorded);
	for (int i = 0; i < 5; i++) {
		json_t *r;
		assert_int_equal(write(slow, " ", 1), 1); /* keeps dripping */
		int64_t dt = call_timed("record", &r);
		assert_true(json_is_true(json_object_get(r, "ok")));
		json_decref(r);
		if (dt >= 500)
			fail_msg("a command took %lld ms behind an idle and a slow client", (long long)dt);
	}
	/* the command ran (was recorded) before its answer came */
	assert_int_equal(atomic_load(&recorded), before + 5);
	close(idle);
	close(slow);
}

static void a_client_that_never_reads_only_stalls_itself(void **state)
{
	int hog = dial();
	int fl = fcntl(hog, F_GETFL);
	fcntl(hog, F_SETFL, fl | O_NONBLOCK);
	static const char line[] = "{\"cmd\":\"help\"}\n";
	size_t sent = 0;
	/* requests until our send buffer is full: the server's answers pile up unread */
	for (int i = 0; i < 200000; i++) {
		ssize_t w = write(hog, line, sizeof(line) - 1);
		if (w < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			break;
		}
		sent += (size_t)w;
	}
	/* the hog stopped being read: its answers fill its own socket, not the loop */
	assert_true(sent > 0);
	fprintf(stderr, "# hog queued %zu bytes of requests before its socket filled\n", sent);
	int64_t dt = call_timed("record", NULL);
	if (dt >= 500)
		fail_msg("a command took %lld ms behind a client that does not read", (long long)dt);
	close(hog);
}

static void pipelined_requests_are_answered_in_order(void **state)
{
	int fd = dial();
	static const char two[] = "{\"cmd\":\"record\"}\n{\"cmd\":\"nope\"}\n{\"cmd\":\"record\"}\n";
	assert_int_equal(write(fd, two, sizeof(two) - 1), (ssize_t)(sizeof(two) - 1));
	char buf[4096];
	size_t len = 0, lines = 0;
	while (lines < 3) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		assert_int_equal(poll(&p, 1, 2000), 1);
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		assert_true(n > 0);
		for (ssize_t i = 0; i < n; i++)
			lines += buf[len + (size_t)i] == '\n';
		len += (size_t)n;
	}
	buf[len] = 0;
	char *l2 = strchr(buf, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
	json_t *a = json_loadb(buf, (size_t)(l2 - buf), 0, NULL), *b = json_loadb(l2, (size_t)(l3 - l2), 0, NULL),
	       *c = json_loads(l3, JSON_DISABLE_EOF_CHECK, NULL);
	assert_true(json_is_true(json_object_get(a, "ok")));
	assert_true(json_is_false(json_object_get(b, "ok")));
	assert_string_equal(json_string_value(json_object_get(b, "error")), "unknown command");
	assert_int_equal(json_integer_value(json_object_get(c, "recorded")),
			 json_integer_value(json_object_get(a, "recorded")) + 1);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	close(fd);
}

static void the_client_bound_refuses_the_excess_at_once(void **state)
{
	int fds[EG_ADMIN_MAX_CLIENTS];
	for (int i = 0; i < EG_ADMIN_MAX_CLIENTS; i++)
		fds[i] = dial();
	/* the server has taken them all once an answer to one of them comes back */
	static const char help[] = "{\"cmd\":\"help\"}\n";
	assert_int_equal(write(fds[0], help, sizeof(help) - 1), (ssize_t)(sizeof(help) - 1));
	struct pollfd p = { .fd = fds[0], .events = POLLIN };
	assert_int_equal(poll(&p, 1, 2000), 1);
	char buf[4096];
	assert_true(read(fds[0], buf, sizeof(buf)) > 0);

	json_t *r;
	int64_t dt = call_timed("record", &r);
	assert_true(dt < 500);
	assert_true(json_is_false(json_object_get(r, "ok")));
	const char *e = json_string_value(json_object_get(r, "error"));
	assert_non_null(e);
	assert_non_null(strstr(e, "too many clients"));
	json_decref(r);

	close(fds[1]);
	/* the freed slot serves again (poll notices the close; retry briefly) */
	bool served = false;
	for (int i = 0; i < 50 && !served; i++) {
		call_timed("record", &r);
		served = json_is_true(json_object_get(r, "ok"));
		json_decref(r);
		if (!served)
			usleep(20000);
	}
	assert_true(served);
	for (int i = 0; i < EG_ADMIN_MAX_CLIENTS; i++)
		if (i != 1)
			close(fds[i]);
}

static void an_idle_client_is_dropped_after_the_limit(void **state)
{
	int fd = dial();
	int64_t t0 = now_ms();
	struct pollfd p = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, EG_ADMIN_IDLE_MS + 3000), 1);
	char c;
	assert_int_equal(read(fd, &c, 1), 0); /* closed by the server */
	int64_t dt = now_ms() - t0;
	assert_true(dt >= EG_ADMIN_IDLE_MS - 100);
	close(fd);
}

/* Reads one answer line from fd (waits up to ms); returns it parsed or NULL. Byte by
 * byte: the next answer may already follow in the socket. */
static json_t *read_answer(int fd, int ms)
{
	char buf[4096];
	size_t len = 0;
	while (len < sizeof(buf) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, ms) != 1 || read(fd, buf + len, 1) != 1)
			return NULL;
		if (buf[len] == '\n')
			return json_loadb(buf, len, 0, NULL);
		len++;
	}
	return NULL;
}

static void wait_slow_started(int n)
{
	for (int i = 0; i < 200 && atomic_load(&slow_started) < n; i++)
		usleep(5000);
	assert_true(atomic_load(&slow_started) >= n);
}

static void a_slow_command_does_not_delay_another_client(void **state)
{
	int fd = dial();
	int base = atomic_load(&slow_started);
	static const char slow[] = "{\"cmd\":\"slow\"}\n{\"cmd\":\"record\"}\n";
	assert_int_equal(write(fd, slow, sizeof(slow) - 1), (ssize_t)(sizeof(slow) - 1));
	wait_slow_started(base + 1);
	int64_t t0 = now_ms();
	json_t *r;
	int64_t dt = call_timed("record", &r); /* another client, while "slow" runs */
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	assert_true(dt < 300);
	/* the slow client's own lines: in order, the second only after the first completed */
	r = read_answer(fd, 3000);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "slow")), "done");
	json_decref(r);
	assert_true(now_ms() - t0 >= 600);
	r = read_answer(fd, 3000);
	assert_non_null(r);
	assert_non_null(json_object_get(r, "recorded"));
	json_decref(r);
	close(fd);
}

static void a_half_closed_client_gets_its_answer(void **state)
{
	int fd = dial();
	static const char slow[] = "{\"cmd\":\"slow\"}\n";
	assert_int_equal(write(fd, slow, sizeof(slow) - 1), (ssize_t)(sizeof(slow) - 1));
	assert_int_equal(shutdown(fd, SHUT_WR), 0); /* nc -N */
	json_t *r = read_answer(fd, 3000);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "slow")), "done");
	json_decref(r);
	char c;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(read(fd, &c, 1), 0); /* then closed by the server */
	close(fd);
}

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/eg-admin-test-%d.sock", (int)getpid());
	eg_admin_register("record", cmd_record);
	eg_admin_register("slow", cmd_slow);
	return eg_admin_start(NULL, path);
}

static int teardown(void **state)
{
	eg_admin_stop();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(idle_and_slow_clients_do_not_delay_a_command),
		cmocka_unit_test(a_client_that_never_reads_only_stalls_itself),
		cmocka_unit_test(pipelined_requests_are_answered_in_order),
		cmocka_unit_test(the_client_bound_refuses_the_excess_at_once),
		cmocka_unit_test(an_idle_client_is_dropped_after_the_limit),
		cmocka_unit_test(a_slow_command_does_not_delay_another_client),
		cmocka_unit_test(a_half_closed_client_gets_its_answer),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
