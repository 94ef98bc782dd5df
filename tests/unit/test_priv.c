/* test_priv.c - the privileged process's protocol (priv_proto.h, docs/privsep.md) on a real
 * socketpair, a real sock_diag socket and real loopback TCP connections: the hello; a flow
 * that was never noted is neither probed nor destroyed; a noted one is (the peer sees a
 * reset, the listener lives on); a note must name a connection (ports, one address family);
 * gate requests without a gate are refused; rate limits
 * answer EAGAIN; a malformed datagram closes the channel for good. Queued notes (the verdict
 * path's, sent in NOTE_FLOWS batches) reach the privileged side before any later request:
 * a kill right after a queued note finds the flow; more notes than a batch holds are all
 * recorded; a batch's size must match its count and a refused flow in it spares the others.
 * A full noted-flow table forgets a closed flow, never an open one it can probe.
 * The privileged side runs in a forked process (eg_priv_run) with CAP_NET_ADMIN only;
 * needs root: skipped without it (failed under CI=true). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "flowfix.h"
#include "config.h"
#include "gate.h"
#include "log.h"
#include "priv.h"
#include "priv_proto.h"
#include "sockdestroy.h"

static struct eg_config cfg;
static int chan = -1, lfd = -1;
static pid_t priv_pid;

struct conn {
	int c, s;
	struct eg_sock_tuple t; /* the accepted (server) socket's view */
};

static void open_conn(struct conn *k)
{
	struct flowfix_conn f;

	flowfix_open(lfd, &f);
	k->c = f.c;
	k->s = f.s;
	flowfix_sock(&f.t, &k->t);
}

static bool reset_seen(int fd)
{
	char b;
	return recv(fd, &b, 1, MSG_DONTWAIT) < 0 && errno == ECONNRESET;
}

static bool listener_accepts(void)
{
	struct conn k;

	open_conn(&k);
	close(k.c);
	close(k.s);
	return true;
}

static int setup(void **state)
{
	struct eg_gate *gate = (struct eg_gate *)1;
	char err[256];

	if (geteuid() != 0) {
		if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
			fail_msg("needs root under CI=true");
		return 0;
	}
	eg_log_set_level("warn");
	signal(SIGTERM, SIG_IGN); /* a lost channel makes the client signal itself */
	lfd = flowfix_listener();
	priv_pid = flowfix_priv_fork(&cfg, lfd, NULL, &chan); /* no gate, no user */
	assert_int_equal(eg_privc_start(chan, &gate, err, sizeof(err)), 0);
	assert_null(gate); /* no gate configured: no map fds */
	assert_true(eg_privc_active());
	assert_true(eg_privc_has_sockdiag());
	return 0;
}

static int teardown(void **state)
{
	int status;

	if (priv_pid > 0) {
		close(chan);
		assert_int_equal(waitpid(priv_pid, &status, 0), priv_pid);
	}
	if (lfd >= 0)
		close(lfd);
	return 0;
}

#define NEED_ROOT()                    \
	do {                           \
		if (priv_pid <= 0)     \
			skip();        \
	} while (0)

static void test_unnoted_flow_is_refused(void **state)
{
	struct conn k;

	NEED_ROOT();
	open_conn(&k);
	assert_int_equal(eg_privc_probe_flow(&k.t), -EPERM);
	assert_int_equal(eg_privc_kill_flow(&k.t), -EPERM);
	assert_false(reset_seen(k.c));
	assert_int_equal(send(k.c, "x", 1, 0), 1); /* the connection still works */
	close(k.c);
	close(k.s);
}

static void test_noted_flow_is_destroyed(void **state)
{
	static const uint8_t sess[16] = { 1, 2, 3 };
	struct conn k, other;

	NEED_ROOT();
	open_conn(&k);
	open_conn(&other);
	assert_int_equal(eg_privc_note_flow(&k.t, sess), 0);
	assert_int_equal(eg_privc_probe_flow(&k.t), 1);
	assert_int_equal(eg_privc_kill_flow(&k.t), 0);
	usleep(10000);
	assert_true(reset_seen(k.c));
	assert_false(reset_seen(other.c));
	assert_int_equal(eg_privc_probe_flow(&k.t), 0);
	assert_int_equal(eg_privc_kill_flow(&k.t), -ENOENT); /* already gone */
	assert_true(listener_accepts());
	close(k.c);
	close(k.s);
	close(other.c);
	close(other.s);
}

/* A noted tuple whose connection ended: the kernel's lookup would fall back to the
 * listener; the privileged side must answer ENOENT and leave it alone. */
static void test_gone_tuple_spares_listener(void **state)
{
	static const uint8_t sess[16] = { 9 };
	struct conn k;

	NEED_ROOT();
	open_conn(&k);
	assert_int_equal(eg_privc_note_flow(&k.t, sess), 0);
	close(k.c);
	close(k.s);
	usleep(10000);
	assert_int_equal(eg_privc_kill_flow(&k.t), -ENOENT);
	assert_true(listener_accepts());
}

static void test_note_needs_a_connection(void **state)
{
	static const uint8_t sess[16] = { 3 };
	struct conn k;
	struct eg_sock_tuple t;

	NEED_ROOT();
	open_conn(&k);
	t = k.t;
	t.remote_port = 0; /* not a connection */
	assert_int_equal(eg_privc_note_flow(&t, sess), -1);
	assert_int_equal(errno, EPERM);
	t = k.t;
	memset(t.remote, 0, 16); /* mixed families */
	t.remote[15] = 1;
	assert_int_equal(eg_privc_note_flow(&t, sess), -1);
	assert_int_equal(errno, EPERM);
	close(k.c);
	close(k.s);
}

/* The verdict path's note is queued, not sent: the kill that follows must still find it (the
 * queue goes out first, on the same channel). */
static void test_queued_note_precedes_kill(void **state)
{
	static const uint8_t sess[16] = { 7, 7 };
	struct conn k;

	NEED_ROOT();
	open_conn(&k);
	assert_int_equal(eg_privc_note_flow_queued(&k.t, sess), 0);
	assert_int_equal(eg_privc_kill_flow(&k.t), 0);
	usleep(10000);
	assert_true(reset_seen(k.c));
	close(k.c);
	close(k.s);
}

/* More notes than one batch: the full queue is sent, the rest waits for the next request;
 * every flow is then known (probed alive), and one that was never noted still is not. */
static void test_queued_notes_overflow_batch(void **state)
{
	static const uint8_t sess[16] = { 8 };
	enum { N = EG_PRIV_NOTE_BATCH * 2 + 5 };
	struct conn *k = calloc(N + 1, sizeof(*k));

	NEED_ROOT();
	assert_non_null(k);
	for (int i = 0; i <= N; i++)
		open_conn(&k[i]);
	for (int i = 0; i < N; i++)
		assert_int_equal(eg_privc_note_flow_queued(&k[i].t, sess), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(eg_privc_probe_flow(&k[i].t), 1);
	assert_int_equal(eg_privc_probe_flow(&k[N].t), -EPERM);
	assert_int_equal(eg_privc_note_flow_queued(&k[N].t, sess), 0);
	assert_int_equal(eg_privc_flush_notes(), 0);
	assert_int_equal(eg_privc_probe_flow(&k[N].t), 1);
	for (int i = 0; i <= N; i++) {
		close(k[i].c);
		close(k[i].s);
	}
	free(k);
}

/* A queued note that is not a connection is refused at once, as the privileged side would. */
static void test_queued_note_checked(void **state)
{
	static const uint8_t sess[16] = { 4 };
	struct conn k;
	struct eg_sock_tuple t;

	NEED_ROOT();
	open_conn(&k);
	t = k.t;
	t.local_port = 0;
	assert_int_equal(eg_privc_note_flow_queued(&t, sess), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(eg_privc_probe_flow(&t), -EPERM);
	close(k.c);
	close(k.s);
}

/* NOTE_FLOWS on the privileged side's parser (this process's own table): the datagram's size
 * must be the request and exactly `count` flows, 1..EG_PRIV_NOTE_BATCH; a refused flow in a
 * batch does not stop the others, and the reply says how many were recorded. */
static void test_note_flows_datagram(void **state)
{
	struct {
		struct eg_priv_req q;
		struct eg_priv_flow f[EG_PRIV_NOTE_BATCH + 1];
	} d; /* no padding: the flows are 2-byte aligned and follow 128 bytes */
	struct eg_priv_reply a;
	struct conn k;

	_Static_assert(offsetof(__typeof__(d), f) == sizeof(struct eg_priv_req), "flows follow the request");

	NEED_ROOT();
	open_conn(&k);
	memset(&d, 0, sizeof(d));
	d.q.version = EG_PRIV_VERSION;
	d.q.op = EG_PRIV_NOTE_FLOWS;
	d.q.seq = 42;
	for (int i = 0; i < 3; i++) {
		d.f[i].t = k.t;
		d.f[i].t.remote_port = (uint16_t)(k.t.remote_port + i);
		d.f[i].session[0] = 0x5a;
	}
	d.f[1].t.remote_port = 0; /* not a connection */
	d.q.u.notes.count = 3;
	assert_int_equal(eg_priv_req_size(&d.q), sizeof(d.q) + 3 * sizeof(d.f[0]));
	assert_int_equal(eg_priv_answer(&d, sizeof(d.q) + 3 * sizeof(d.f[0]), &a), 0);
	assert_int_equal(a.seq, 42);
	assert_int_equal(a.op, EG_PRIV_NOTE_FLOWS);
	assert_int_equal(a.rc, -EPERM);
	assert_int_equal(a.value, 2);
	/* the size must match the count */
	assert_int_equal(eg_priv_answer(&d, sizeof(d.q) + 2 * sizeof(d.f[0]), &a), -1);
	assert_int_equal(eg_priv_answer(&d, sizeof(d.q) + 4 * sizeof(d.f[0]), &a), -1);
	assert_int_equal(eg_priv_answer(&d, sizeof(d.q), &a), -1);
	d.q.u.notes.count = 0;
	assert_int_equal(eg_priv_req_size(&d.q), 0);
	assert_int_equal(eg_priv_answer(&d, sizeof(d.q), &a), -1);
	d.q.u.notes.count = EG_PRIV_NOTE_BATCH + 1;
	assert_int_equal(eg_priv_req_size(&d.q), 0);
	assert_int_equal(eg_priv_answer(&d, sizeof(d), &a), -1);
	d.q.u.notes.count = 1;
	d.f[0].t = k.t;
	assert_int_equal(eg_priv_answer(&d, sizeof(d.q) + sizeof(d.f[0]), &a), 0);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.value, 1);
	close(k.c);
	close(k.s);
}

static void test_gate_requests_without_gate(void **state)
{
	struct eg_rule r = { .reason = EG_RULE_MANUAL };
	struct eg_sess_key sk = { { 1 } };
	struct eg_sess_val sv = { .reason = 1 };
	uint8_t a[16] = { [10] = 0xff, [11] = 0xff, 198, 18, 0, 7 };

	NEED_ROOT();
	assert_int_equal(eg_privc_rule_put(false, a, 128, &r, 0, NULL), -1);
	assert_int_equal(errno, ENODEV);
	assert_int_equal(eg_privc_rule_put(false, a, 128, &r, 0, "abuse report 42"), -1);
	assert_int_equal(errno, ENODEV);
	assert_int_equal(eg_privc_revoke_session(&sk, &sv), -1);
	assert_int_equal(errno, ENODEV);
}

/* The note travels in RULE_PUT (protocol version 2) and is checked on the privileged side:
 * terminated, printable; the other bounds (prefix length, reason) still apply. */
static void test_rule_note_validated(void **state)
{
	struct eg_priv_rule q = { .plen = 128, .r = { .reason = EG_RULE_MANUAL } };
	char too_long[EG_NOTE_MAX + 1];

	q.addr[10] = q.addr[11] = 0xff;
	q.addr[12] = 198;
	q.addr[13] = 18;
	assert_int_equal(eg_priv_rule_ok(&q, true), 0); /* no note */
	snprintf(q.note, sizeof(q.note), "%s", "operator: abuse report 42");
	assert_int_equal(eg_priv_rule_ok(&q, true), 0);
	q.note[3] = '\n';
	assert_int_equal(eg_priv_rule_ok(&q, true), -EPERM);
	q.note[3] = 0x7f;
	assert_int_equal(eg_priv_rule_ok(&q, true), -EPERM);
	memset(q.note, 'a', sizeof(q.note)); /* unterminated */
	assert_int_equal(eg_priv_rule_ok(&q, true), -EPERM);
	assert_int_equal(eg_priv_rule_ok(&q, false), 0); /* a delete ignores it */
	memset(q.note, 0, sizeof(q.note));
	q.plen = 96 + 4; /* a /4: the prefix bound still holds */
	assert_int_equal(eg_priv_rule_ok(&q, true), -EPERM);
	memset(too_long, 'b', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = 0;
	assert_int_equal(eg_privc_rule_put(false, q.addr, 128, &q.r, 0, too_long), -1);
	assert_int_equal(errno, EINVAL); /* refused before it is sent */
	assert_int_equal(sizeof(struct eg_priv_req), 128);
}

/* The noted-flow table is a pool of 131,072: once full, the least recently noted flow is
 * forgotten only if it is closed. An open one (a WebSocket noted long ago) is probed, moved to
 * the front and still killed on revocation; a closed one noted before it is forgotten. */
static void test_open_noted_flow_outlives_pool(void **state)
{
	static const uint8_t sess[16] = { 9, 9 };
	struct conn k;
	struct eg_sock_tuple fake = { .local_port = 443 }, first;
	int fail = 0;

	NEED_ROOT();
	fake.local[10] = fake.local[11] = fake.remote[10] = fake.remote[11] = 0xff;
	fake.local[12] = 198, fake.local[13] = 18, fake.local[15] = 1;
	fake.remote[12] = 198, fake.remote[13] = 19;
	first = fake;
	first.remote_port = 1;
	first.remote[14] = 0xff; /* not among the fakes below */
	assert_int_equal(eg_privc_note_flow(&first, sess), 0); /* closed, the oldest */
	open_conn(&k);
	assert_int_equal(eg_privc_note_flow(&k.t, sess), 0); /* open, next oldest */
	for (uint32_t i = 0; i < (1u << 17) + 64; i++) {
		fake.remote[14] = (uint8_t)(i >> 16);
		fake.remote[15] = (uint8_t)(i >> 8);
		fake.remote_port = (uint16_t)(1000 + (i & 0xff));
		fail += eg_privc_note_flow_queued(&fake, sess) != 0;
		if (i >= 80000 && (i & 63) == 63)
			usleep(1500); /* under NOTE_FLOW's 50,000/s once the burst is spent */
	}
	assert_int_equal(eg_privc_flush_notes(), 0);
	assert_int_equal(fail, 0);
	assert_int_equal(eg_privc_probe_flow(&first), -EPERM); /* forgotten: it was closed */
	assert_int_equal(eg_privc_kill_flow(&k.t), 0);         /* still known: it was open */
	usleep(10000);
	assert_true(reset_seen(k.c));
	close(k.c);
	close(k.s);
}

static void test_rate_limited(void **state)
{
	int again = 0;

	NEED_ROOT();
	for (int i = 0; i < 20; i++)
		if (eg_privc_gate_gc() < 0 && errno == EAGAIN)
			again++;
	assert_true(again >= 9); /* GC: burst 10, 2/s */
}

/* Last: closes the channel for good. */
static void test_malformed_closes_channel(void **state)
{
	static const uint8_t sess[16] = { 5 };
	struct eg_priv_req q = { .version = EG_PRIV_VERSION + 1, .op = EG_PRIV_NOTE_FLOW };
	struct eg_priv_reply a;
	struct conn k;

	NEED_ROOT();
	assert_int_equal(send(chan, &q, sizeof(q), 0), (ssize_t)sizeof(q));
	assert_int_equal(recv(chan, &a, sizeof(a), 0), 0); /* EOF, no answer */
	open_conn(&k);
	assert_int_equal(eg_privc_note_flow(&k.t, sess), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(eg_privc_kill_flow(&k.t), -EPIPE);
	close(k.c);
	close(k.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unnoted_flow_is_refused),
		cmocka_unit_test(test_noted_flow_is_destroyed),
		cmocka_unit_test(test_gone_tuple_spares_listener),
		cmocka_unit_test(test_note_needs_a_connection),
		cmocka_unit_test(test_queued_note_precedes_kill),
		cmocka_unit_test(test_queued_notes_overflow_batch),
		cmocka_unit_test(test_queued_note_checked),
		cmocka_unit_test(test_note_flows_datagram),
		cmocka_unit_test(test_gate_requests_without_gate),
		cmocka_unit_test(test_rule_note_validated),
		cmocka_unit_test(test_open_noted_flow_outlives_pool),
		cmocka_unit_test(test_rate_limited),
		cmocka_unit_test(test_malformed_closes_channel),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
