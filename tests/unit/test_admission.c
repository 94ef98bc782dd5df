/* test_admission.c - connection admission: the proxies' reserve, the per-address limit
 * (its table under many opens and closes), deadlines enforced by the sweeper, and a wave
 * of expiring connections swept in batches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "admission.h"
#include "config.h"
#include "metrics.h"

static struct eg_http_config small(void)
{
	return (struct eg_http_config){ .max_connections = 64, .reserved_for_proxies = 16, .max_connections_per_ip = 4,
					.header_timeout_s = 1, .idle_timeout_s = 3 };
}

static void v4(uint8_t a[16], unsigned host)
{
	memset(a, 0, 16);
	a[10] = a[11] = 0xff;
	a[12] = 10, a[13] = (uint8_t)(host >> 16), a[14] = (uint8_t)(host >> 8), a[15] = (uint8_t)host;
}

static struct eg_conn *conn_from(const uint8_t addr[16], bool trusted)
{
	struct eg_conn *c = calloc(1, sizeof(*c));
	c->fd = -1;
	c->trusted = trusted;
	memcpy(c->addr, addr, 16);
	return c;
}

static void test_reserve_and_per_ip(void **state)
{
	struct eg_metrics *m = eg_metrics_new();
	struct eg_http_config h = small();
	struct eg_admission *a = eg_admission_new(&h, 64, m);
	struct eg_conn *c[64];
	size_t n = 0;
	uint8_t addr[16];

	/* one address: 4 connections, then refused */
	v4(addr, 1);
	for (int i = 0; i < 4; i++) {
		assert_true(eg_admission_accept(a, false, addr));
		eg_admission_open(a, c[n++] = conn_from(addr, false));
	}
	assert_false(eg_admission_accept(a, false, addr));
	/* other addresses fill the shared slots: 64 - 16 = 48 */
	for (unsigned host = 2; n < 48; host++) {
		v4(addr, host);
		for (int i = 0; i < 4 && n < 48; i++) {
			assert_true(eg_admission_accept(a, false, addr));
			eg_admission_open(a, c[n++] = conn_from(addr, false));
		}
	}
	v4(addr, 1000);
	assert_false(eg_admission_accept(a, false, addr)); /* a fresh address: only the reserve is left */
	assert_true(eg_admission_accept(a, true, addr));   /* a proxy is always let in */
	/* one closes: one more fits */
	eg_admission_close(a, c[47]);
	free(c[47]);
	n--;
	assert_true(eg_admission_accept(a, false, addr));
	v4(addr, 1);
	eg_admission_close(a, c[0]);
	free(c[0]);
	c[0] = NULL;
	assert_true(eg_admission_accept(a, false, addr)); /* address 1 is under its limit again */
	for (size_t i = 1; i < n; i++) {
		eg_admission_close(a, c[i]);
		free(c[i]);
	}
	size_t len;
	char *text = eg_metrics_render(m, &len);
	assert_non_null(strstr(text, "edgegate_http_connections_rejected_total{reason=\"per_ip\"} 1"));
	assert_non_null(strstr(text, "edgegate_http_connections_rejected_total{reason=\"limit\"} 1"));
	assert_non_null(strstr(text, "edgegate_http_connections_open{peer=\"other\"} 0"));
	free(text);
	eg_admission_free(a);
	eg_metrics_free(m);
}

/* Many addresses opened and closed in a scrambled order: the per-address table (linear
 * probing, backward-shift deletion) must agree with a plain count at every step. */
static void test_per_ip_table(void **state)
{
	struct eg_metrics *m = eg_metrics_new();
	struct eg_http_config h = { .max_connections = 1040, .reserved_for_proxies = 16, .max_connections_per_ip = 3,
				    .header_timeout_s = 3600, .idle_timeout_s = 3600 };
	struct eg_admission *a = eg_admission_new(&h, 64, m);
	enum { HOSTS = 1000, ROUNDS = 40000 };
	unsigned total = 0;
	static unsigned count[HOSTS];
	static struct eg_conn *open[HOSTS][3];
	unsigned seed = 12345;
	for (int r = 0; r < ROUNDS; r++) {
		seed = seed * 1103515245u + 12345u;
		unsigned host = (seed >> 8) % HOSTS;
		uint8_t addr[16];
		v4(addr, host * 7919u); /* spread over the hash */
		bool want_open = (seed >> 4) & 1;
		if (want_open) {
			bool ok = eg_admission_accept(a, false, addr);
			assert_int_equal(ok, count[host] < 3 && total < 1024);
			if (ok) {
				struct eg_conn *c = conn_from(addr, false);
				eg_admission_open(a, c);
				open[host][count[host]++] = c;
				total++;
			}
		} else if (count[host]) {
			total--;
			struct eg_conn *c = open[host][--count[host]];
			eg_admission_close(a, c);
			free(c);
		}
	}
	for (unsigned host = 0; host < HOSTS; host++)
		while (count[host]) {
			struct eg_conn *c = open[host][--count[host]];
			eg_admission_close(a, c);
			free(c);
		}
	uint8_t addr[16];
	v4(addr, 5);
	assert_true(eg_admission_accept(a, false, addr));
	eg_admission_free(a);
	eg_metrics_free(m);
}

static int64_t mono_ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int readable_eof(int fd)
{
	char b;
	struct timeval tv = { 0, 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return recv(fd, &b, 1, 0) == 0;
}

/* The deadline holds whatever arrives meanwhile; a kept-alive connection gets idle_timeout. */
static void test_deadlines(void **state)
{
	struct eg_metrics *m = eg_metrics_new();
	struct eg_http_config h = small();
	struct eg_admission *a = eg_admission_new(&h, 64, m);
	int req[2], idle[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, req), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, idle), 0);
	uint8_t addr[16];
	v4(addr, 9);
	struct eg_conn *cr = conn_from(addr, false), *ci = conn_from(addr, true);
	cr->fd = req[0];
	ci->fd = idle[0];
	eg_admission_open(a, cr);
	eg_admission_open(a, ci);
	eg_admission_phase(a, ci, EG_CONN_IDLE); /* 3 s */
	for (int i = 0; i < 6; i++) { /* a byte every 0.25 s does not help */
		(void)!send(req[1], "x", 1, MSG_NOSIGNAL); /* fails once the daemon side is shut down */
		struct timespec ts = { 0, 250000000L };
		nanosleep(&ts, NULL);
	}
	assert_true(readable_eof(req[1]));   /* shut down at ~1 s (+ a sweep) */
	assert_false(readable_eof(idle[1])); /* idle for 1.5 s of its 3 */
	struct timespec ts = { 2, 0 };
	nanosleep(&ts, NULL);
	assert_true(readable_eof(idle[1]));
	eg_admission_close(a, cr);
	eg_admission_close(a, ci);
	size_t len;
	char *text = eg_metrics_render(m, &len);
	assert_non_null(strstr(text, "edgegate_http_connections_timed_out_total{phase=\"request\"} 1"));
	assert_non_null(strstr(text, "edgegate_http_connections_timed_out_total{phase=\"idle\"} 1"));
	free(text);
	free(cr);
	free(ci);
	close(req[0]), close(req[1]), close(idle[0]), close(idle[1]);
	eg_admission_free(a);
	eg_metrics_free(m);
}

/* A wave: many more connections than one sweep batch expire at once (a slowloris whose
 * connections all reached the header deadline together). Every one is shut down in the
 * same sweep, counted once; a proxy's connection opened and closed meanwhile is not held
 * up, keeps its own deadline and its own gauge. */
static void test_sweep_wave(void **state)
{
	enum { WAVE = 200 };
	struct eg_metrics *m = eg_metrics_new();
	struct eg_http_config h = { .max_connections = 1024, .reserved_for_proxies = 16, .max_connections_per_ip = 0,
				    .header_timeout_s = 1, .idle_timeout_s = 3 };
	struct eg_admission *a = eg_admission_new(&h, 64, m);
	static int sp[WAVE][2];
	static struct eg_conn *c[WAVE];
	uint8_t addr[16];
	for (int i = 0; i < WAVE; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp[i]), 0);
		v4(addr, 100 + (unsigned)i % 7);
		assert_true(eg_admission_accept(a, false, addr));
		c[i] = conn_from(addr, false);
		c[i]->fd = sp[i][0];
		eg_admission_open(a, c[i]);
	}
	int px[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, px), 0);
	v4(addr, 1);
	struct eg_conn *proxy = conn_from(addr, true);
	proxy->fd = px[0];
	eg_admission_open(a, proxy);
	eg_admission_phase(a, proxy, EG_CONN_IDLE); /* 3 s */
	size_t len;
	char *text = eg_metrics_render(m, &len);
	assert_non_null(strstr(text, "edgegate_http_connections_open{peer=\"other\"} 200"));
	assert_non_null(strstr(text, "edgegate_http_connections_open{peer=\"proxy\"} 1"));
	free(text);
	struct timespec ts = { 1, 300000000L }; /* the deadline (1 s) and a sweep */
	nanosleep(&ts, NULL);
	/* while the wave is swept or just after: a proxy's connection comes and goes */
	struct eg_conn *p2 = conn_from(addr, true);
	p2->fd = -1;
	eg_admission_open(a, p2);
	eg_admission_close(a, p2);
	free(p2);
	/* a loaded machine may delay the sweeper: up to 1 s more, still inside the proxy's 3 s */
	int64_t until = mono_ms_now() + 1000;
	for (int i = 0; i < WAVE; i++) {
		bool eof = readable_eof(sp[i][1]);
		while (!eof && mono_ms_now() < until)
			eof = readable_eof(sp[i][1]);
		assert_true(eof);
	}
	assert_false(readable_eof(px[1]));
	text = eg_metrics_render(m, &len);
	assert_non_null(strstr(text, "edgegate_http_connections_timed_out_total{phase=\"request\"} 200"));
	assert_non_null(strstr(text, "edgegate_http_connections_timed_out_total{phase=\"idle\"} 0"));
	assert_non_null(strstr(text, "edgegate_http_connections_open{peer=\"proxy\"} 1"));
	free(text);
	for (int i = 0; i < WAVE; i++) {
		eg_admission_close(a, c[i]);
		free(c[i]);
		close(sp[i][0]), close(sp[i][1]);
	}
	eg_admission_close(a, proxy);
	free(proxy);
	close(px[0]), close(px[1]);
	text = eg_metrics_render(m, &len);
	assert_non_null(strstr(text, "edgegate_http_connections_open{peer=\"other\"} 0"));
	assert_non_null(strstr(text, "edgegate_http_connections_open{peer=\"proxy\"} 0"));
	free(text);
	eg_admission_free(a);
	eg_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reserve_and_per_ip),
		cmocka_unit_test(test_per_ip_table),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_sweep_wave),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
