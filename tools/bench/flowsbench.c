/* flowsbench.c - the verdict path's flow note (revoke.c eg_flows_note), one thread, optimised
 * build, no privileged process (sock_diag in this process, as root):
 *   known:   a known flow of a session holding N flows, the flow looked up last in its array
 *            (the worst case of the scan), N = 1, 16, 128;
 *   full:    a new flow for a session at its cap whose flows are all live and were probed less
 *            than a second ago: refused without a probe;
 *   reclaim: a new flow for a session at its cap (128) whose flows are all closed: one probe
 *            pass (128 exact sock_diag lookups) and the insert;
 *   new:     50,000 new flows, 100 per session, without a subject and with one (50 subjects):
 *            the cost of the per-subject count on an insert (a known flow never takes it).
 * Run by hand: build/bench/flowsbench (tools/bench/run.sh builds it). docs/bench.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "revoke.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 198.18.0.2:port -> 198.18.0.1:443: nothing behind it, a probe finds it closed */
static void tuple(struct eg_flow_tuple *t, uint32_t i)
{
	memset(t, 0, sizeof(*t));
	t->client[10] = t->client[11] = t->server[10] = t->server[11] = 0xff;
	t->client[12] = 198, t->client[13] = 18, t->client[14] = (uint8_t)(i >> 16), t->client[15] = 2;
	t->server[12] = 198, t->server[13] = 18, t->server[15] = 1;
	t->client_port = (uint16_t)(1024 + (i & 0xffff));
	t->server_port = 443;
}

int main(void)
{
	static struct eg_config cfg;
	static struct eg_daemon d;
	char err[256];
	const unsigned sizes[] = { 1, 16, 128 };
	const long iters = 2000000;

	eg_log_set_level("error");
	d.cfg = &cfg;
	d.metrics = eg_metrics_new();
	if (eg_revoke_init(&d, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		char id[32];
		struct eg_flow_tuple t;
		snprintf(id, sizeof(id), "known-%u", sizes[k]);
		for (unsigned i = 0; i < sizes[k]; i++) {
			tuple(&t, k * 1000 + i);
			eg_flows_note(&d, id, &t);
		}
		tuple(&t, k * 1000 + sizes[k] - 1);
		uint64_t t0 = now_ns();
		for (long i = 0; i < iters; i++)
			eg_flows_note(&d, id, &t);
		printf("known flow, session of %3u flows: %6.1f ns per note\n", sizes[k], (double)(now_ns() - t0) / (double)iters);
	}
	/* a session at its cap of closed flows: each new note reclaims (a probe pass) */
	{
		struct eg_flow_tuple t;
		const int n = 200;
		for (unsigned i = 0; i < 128; i++) {
			tuple(&t, 100000 + i);
			eg_flows_note(&d, "reclaim", &t);
		}
		uint64_t t0 = now_ns();
		for (int i = 0; i < n; i++) {
			tuple(&t, 200000 + i);
			int rc = eg_flows_note(&d, "reclaim", &t); /* the previous flows: closed, reclaimed */
			if (rc != EG_FLOW_NOTED)
				printf("reclaim: note %d refused (%d)\n", i, rc);
			for (unsigned j = 1; j < 128; j++) { /* fill the cap again */
				tuple(&t, 300000 + (uint32_t)i * 128 + j);
				eg_flows_note(&d, "reclaim", &t);
			}
		}
		printf("new flow at the cap (128 closed flows): %.1f us per note (one probe pass; includes 127 inserts)\n",
		       (double)(now_ns() - t0) / n / 1e3);
	}
	/* new flows: without a subject, then with one (the subject's count under its own lock) */
	for (int with = 0; with < 2; with++) {
		struct eg_flow_tuple t;
		const uint32_t n = 50000;
		eg_revoke_free(&d);
		if (eg_revoke_init(&d, err, sizeof(err)) != 0)
			return 1;
		uint64_t t0 = now_ns();
		for (uint32_t i = 0; i < n; i++) {
			char id[32], sub[32];
			snprintf(id, sizeof(id), "new-%u", i / 100);
			snprintf(sub, sizeof(sub), "user-%u", i / 1000);
			tuple(&t, 400000 + i);
			if (eg_flows_note_subject(&d, id, with ? sub : NULL, &t) != EG_FLOW_NOTED)
				printf("new: note %u refused\n", i);
		}
		printf("new flow, %s: %6.1f ns per note (incl. two snprintf)\n", with ? "with a subject   " : "without a subject",
		       (double)(now_ns() - t0) / n);
	}
	eg_revoke_free(&d);
	eg_metrics_free(d.metrics);
	return 0;
}
