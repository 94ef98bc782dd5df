/* privbench.c - what privilege separation costs (docs/privsep.md): round trips to the
 * privileged process over its socketpair, as the verdict path pays them once per new nginx
 * connection (NOTE_FLOW), from 1 and from 4 threads at once (requests are serialised on one
 * channel), and a revocation's per-flow PROBE + KILL on real loopback TCP connections.
 *   build/bench/privbench [N]    (root: the privileged side keeps CAP_NET_ADMIN)
 * Prints one JSON object. The privileged side runs in a forked process without a gate. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "gate.h"
#include "log.h"
#include "priv.h"
#include "sockdestroy.h"

static long n_req = 100000;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void tuple_of(long i, unsigned thread, struct eg_sock_tuple *t)
{
	memset(t, 0, sizeof(*t));
	t->local[10] = t->local[11] = t->remote[10] = t->remote[11] = 0xff;
	t->local[12] = 198, t->local[13] = 18, t->local[15] = 1;
	t->remote[12] = 198, t->remote[13] = 19, t->remote[14] = (uint8_t)thread, t->remote[15] = (uint8_t)(i >> 16);
	t->local_port = 443;
	t->remote_port = (uint16_t)i;
}

struct job {
	unsigned id;
	long n;
	uint64_t *lat;
};

static void *notes(void *arg)
{
	struct job *j = arg;
	uint8_t sess[16] = { (uint8_t)j->id };

	for (long i = 0; i < j->n; i++) {
		struct eg_sock_tuple t;
		uint64_t t0 = now_ns();

		tuple_of(i, j->id, &t);
		if (eg_privc_note_flow(&t, sess) != 0) {
			perror("note");
			exit(1);
		}
		if (j->lat)
			j->lat[i] = now_ns() - t0;
	}
	return NULL;
}

/* NOTE_FLOW is rate-limited (50,000/s, burst 100,000): runs longer than the burst measure
 * the limit, not the channel, so each run stays under it and waits for the bucket. */
static void refill(void)
{
	sleep(3);
}

int main(int argc, char **argv)
{
	static struct eg_config cfg;
	int sv[2], lfd, status;
	struct eg_gate *gate = NULL;
	char err[256];
	pid_t pid;

	if (argc > 1)
		n_req = atol(argv[1]);
	if (n_req < 100 || n_req > 90000)
		n_req = 90000;
	eg_log_set_level("warn");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return 1;
	pid = fork();
	if (pid == 0) {
		close(sv[1]);
		eg_priv_run(&cfg, sv[0]);
	}
	close(sv[0]);
	if (eg_privc_start(sv[1], &gate, err, sizeof(err)) != 0) {
		fprintf(stderr, "privbench: %s\n", err);
		return 1;
	}

	/* 1 thread: latency of each round trip */
	uint64_t *lat = calloc((size_t)n_req, sizeof(*lat));
	struct job one = { .id = 0, .n = n_req, .lat = lat };
	uint64_t t0 = now_ns();
	notes(&one);
	double one_s = (double)(now_ns() - t0) / 1e9;
	qsort(lat, (size_t)n_req, sizeof(*lat), cmp);

	/* 4 threads at once */
	refill();
	pthread_t th[4];
	struct job jobs[4];
	t0 = now_ns();
	for (unsigned i = 0; i < 4; i++) {
		jobs[i] = (struct job){ .id = i + 1, .n = n_req / 4 };
		pthread_create(&th[i], NULL, notes, &jobs[i]);
	}
	for (unsigned i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	double four_s = (double)(now_ns() - t0) / 1e9;

	/* a revocation's work per flow on real connections: PROBE + KILL */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	enum { K = 200 };
	int cfd[K], sfd[K];
	uint64_t kill_ns[K];
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	bind(lfd, (struct sockaddr *)&a, sizeof(a));
	listen(lfd, K);
	getsockname(lfd, (struct sockaddr *)&a, &len);
	for (int i = 0; i < K; i++) {
		struct sockaddr_in c;
		struct eg_sock_tuple t = { 0 };
		uint8_t sess[16] = { 7 };

		cfd[i] = socket(AF_INET, SOCK_STREAM, 0);
		connect(cfd[i], (struct sockaddr *)&a, sizeof(a));
		sfd[i] = accept(lfd, NULL, NULL);
		len = sizeof(c);
		getsockname(cfd[i], (struct sockaddr *)&c, &len);
		t.local[10] = t.local[11] = t.remote[10] = t.remote[11] = 0xff;
		memcpy(t.local + 12, &a.sin_addr, 4);
		memcpy(t.remote + 12, &c.sin_addr, 4);
		t.local_port = ntohs(a.sin_port);
		t.remote_port = ntohs(c.sin_port);
		eg_privc_note_flow(&t, sess);
		uint64_t k0 = now_ns();
		if (eg_privc_probe_flow(&t) != 1 || eg_privc_kill_flow(&t) != 0) {
			fprintf(stderr, "privbench: kill %d failed (root needed)\n", i);
			return 1;
		}
		kill_ns[i] = now_ns() - k0;
	}
	qsort(kill_ns, K, sizeof(kill_ns[0]), cmp);

	printf("{\"note_flow_1_thread\": {\"requests\": %ld, \"per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
	       "\"max_us\": %.1f},\n \"note_flow_4_threads\": {\"requests\": %ld, \"per_s\": %.0f},\n"
	       " \"probe_and_kill_loopback\": {\"flows\": %d, \"p50_us\": %.1f, \"p99_us\": %.1f}}\n",
	       n_req, (double)n_req / one_s, (double)lat[n_req / 2] / 1e3, (double)lat[n_req * 99 / 100] / 1e3,
	       (double)lat[n_req - 1] / 1e3, (n_req / 4) * 4, (double)((n_req / 4) * 4) / four_s,
	       K, (double)kill_ns[K / 2] / 1e3, (double)kill_ns[K * 99 / 100] / 1e3);
	for (int i = 0; i < K; i++) {
		close(cfd[i]);
		close(sfd[i]);
	}
	close(sv[1]);
	waitpid(pid, &status, 0);
	free(lat);
	return 0;
}
