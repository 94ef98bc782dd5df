/* test_revoke.c - flows of sessions and what a revocation does to them, on real
 * loopback TCP connections: SOCK_DESTROY kills exactly the named socket (the peer
 * sees a reset, other connections and the listening socket live on, a tuple that
 * is already gone never takes the listener with it); the probe's view of half-closed sockets;
 * per-session, per-subject and global bounds: a live flow is never evicted (a WebSocket outlives any number
 * of later connections), closed ones are reclaimed, a new flow past the cap is refused;
 * revocation through the session module's end paths; in-flight verdicts after a
 * revocation; idle flows probed (live ones kept, dead ones dropped).
 * Socket tests need CAP_NET_ADMIN: skipped without it (failed under CI=true). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"
#include "flowfix.h"
#include "admin.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "revoke.h"
#include "session.h"
#include "sockdestroy.h"
#include "store.h"

static struct eg_config cfg;
static struct eg_daemon d;
static char tmpdir[256];
static int lfd = -1;

#define conn flowfix_conn

static bool privileged(void)
{
	if (geteuid() == 0)
		return true;
	if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
		fail_msg("needs CAP_NET_ADMIN (root) under CI=true");
	return false;
}

static void open_conn(struct conn *k)
{
	flowfix_open(lfd, k);
}

static void close_conn(struct conn *k)
{
	close(k->c);
	close(k->s);
}

/* 0 = the connection carries a byte both ways; otherwise the client's errno */
static int talk(struct conn *k)
{
	char b = 'x';
	struct pollfd p = { .fd = k->c, .events = POLLIN };

	if (send(k->s, &b, 1, MSG_NOSIGNAL) != 1)
		return errno;
	if (poll(&p, 1, 1000) != 1)
		return ETIMEDOUT;
	ssize_t r = recv(k->c, &b, 1, 0);
	return r == 1 ? 0 : r == 0 ? EPIPE : errno;
}

/* the client end after a destroy: reset */
static int client_error(struct conn *k)
{
	char b;
	struct pollfd p = { .fd = k->c, .events = POLLIN };
	if (poll(&p, 1, 1000) != 1)
		return ETIMEDOUT;
	ssize_t r = recv(k->c, &b, 1, 0);
	return r < 0 ? errno : r == 0 ? EPIPE : 0;
}


static bool same_flow(const struct eg_flow_tuple *a, const struct eg_flow_tuple *b)
{
	return a->client_port == b->client_port && a->server_port == b->server_port &&
	       memcmp(a->client, b->client, 16) == 0 && memcmp(a->server, b->server, 16) == 0;
}

static void fake_tuple(struct eg_flow_tuple *t, uint16_t cport)
{
	memset(t, 0, sizeof(*t));
	t->client[10] = t->client[11] = t->server[10] = t->server[11] = 0xff;
	t->client[12] = 198, t->client[13] = 18, t->client[15] = 2;
	t->server[12] = 198, t->server[13] = 18, t->server[15] = 1;
	t->client_port = cport;
	t->server_port = 443;
}

static int setup_each(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char err[256];

	eg_log_set_level("error");
	memset(&cfg, 0, sizeof(cfg));
	memset(&d, 0, sizeof(d));
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/eg-test-revoke-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	cfg.state_dir = tmpdir;
	cfg.cookie.idle_s = 3600;
	cfg.cookie.lifetime_s = 86400;
	d.cfg = &cfg;
	d.metrics = eg_metrics_new();
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 64))
		return -1;
	if (eg_revoke_init(&d, err, sizeof(err)))
		return -1;
	return 0;
}

static int teardown_each(void **state)
{
	char cmd[300];

	eg_revoke_free(&d);
	eg_sessions_free(&d);
	if (d.store)
		eg_store_close(d.store);
	eg_metrics_free(d.metrics);
	close(lfd);
	eg_revoke_set_opts(NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* `edgegatectl flows --session`: an IPv6 endpoint is written [addr]:port, an IPv4 one
 * (IPv4-mapped inside) addr:port, through the admin socket as the tool reads it. */
static void test_flows_text_brackets_ipv6(void **state)
{
	struct eg_flow_tuple t6 = { .client_port = 48928, .server_port = 36811 }, t4;
	char path[300], err[256] = "";

	t6.client[15] = t6.server[15] = 1; /* ::1 */
	fake_tuple(&t4, 40000);
	eg_flows_note(&d, "sessV6", &t6);
	eg_flows_note(&d, "sessV6", &t4);
	snprintf(path, sizeof(path), "%s/admin.sock", tmpdir);
	assert_int_equal(eg_admin_start(&d, path), 0);
	json_t *req = json_pack("{s:s, s:s}", "cmd", "flows", "session", "sessV6");
	json_t *resp = eg_admin_call(path, req, err, sizeof(err));
	json_decref(req);
	eg_admin_stop();
	if (!resp)
		fail_msg("flows: %s", err);
	json_t *flows = json_object_get(resp, "flows");
	assert_int_equal(json_array_size(flows), 2);
	bool v6 = false, v4 = false;
	for (size_t i = 0; i < 2; i++) {
		const char *f = json_string_value(json_array_get(flows, i));
		v6 |= strcmp(f, "[::1]:48928 -> [::1]:36811") == 0;
		v4 |= strcmp(f, "198.18.0.2:40000 -> 198.18.0.1:443") == 0;
	}
	if (!v6 || !v4)
		fail_msg("flows: %s / %s", json_string_value(json_array_get(flows, 0)),
			 json_string_value(json_array_get(flows, 1)));
	json_decref(resp);
}

static void test_reason_codes(void **state)
{
	assert_int_equal(eg_revoke_reason_code("admin"), EG_REVOKE_ADMIN);
	assert_int_equal(eg_revoke_reason_code("sign_out"), EG_REVOKE_SIGN_OUT);
	assert_int_equal(eg_revoke_reason_code("backchannel_logout"), EG_REVOKE_BACKCHANNEL);
	assert_int_equal(eg_revoke_reason_code("refresh_failed"), EG_REVOKE_REFRESH_FAILED);
	assert_int_equal(eg_revoke_reason_code("expired"), EG_REVOKE_EXPIRED);
	assert_int_equal(eg_revoke_reason_code("anything else"), EG_REVOKE_OTHER);
	assert_int_equal(eg_revoke_reason_code(NULL), EG_REVOKE_OTHER);
	assert_string_equal(eg_revoke_reason_name(EG_REVOKE_BACKCHANNEL), "backchannel_logout");
	assert_string_equal(eg_revoke_reason_name(999), "other");
}

static void test_sock_destroy_exact(void **state)
{
	struct conn a, b, c;
	struct eg_sock_tuple t;

	if (!privileged())
		skip();
	struct eg_sockdiag *s = eg_sockdiag_open();
	assert_non_null(s);
	open_conn(&a);
	open_conn(&b);
	assert_int_equal(talk(&a), 0);
	flowfix_sock(&a.t, &t);
	assert_int_equal(eg_sock_exists(s, &t), 1);
	assert_int_equal(eg_sock_destroy(s, &t), 0);
	assert_int_equal(client_error(&a), ECONNRESET);
	char x;
	assert_int_equal(recv(a.s, &x, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, ECONNABORTED); /* what nginx sees on its socket */
	assert_int_equal(eg_sock_exists(s, &t), 0);
	assert_int_equal(eg_sock_destroy(s, &t), -ENOENT);
	/* the other connection and the listening socket are untouched */
	assert_int_equal(talk(&b), 0);
	open_conn(&c);
	assert_int_equal(talk(&c), 0);
	close_conn(&a);
	close_conn(&b);
	close_conn(&c);
	eg_sockdiag_close(s);
}

/* A probe counts a connection nginx has closed as gone once all it sent is acknowledged
 * (FIN_WAIT2: the client has not closed its end yet), and one the client half-closed
 * (CLOSE_WAIT: nginx may still be answering) as alive. */
static void test_probe_states(void **state)
{
	struct conn a, b;
	struct eg_sock_tuple ta, tb;

	if (!privileged())
		skip();
	struct eg_sockdiag *s = eg_sockdiag_open();
	assert_non_null(s);
	open_conn(&a);
	open_conn(&b);
	flowfix_sock(&a.t, &ta);
	flowfix_sock(&b.t, &tb);
	assert_int_equal(eg_sock_exists(s, &ta), 1);
	shutdown(a.s, SHUT_WR); /* nginx's side sends its FIN, the client ACKs it: FIN_WAIT2 */
	shutdown(b.c, SHUT_WR); /* the client half-closes: nginx's socket in CLOSE_WAIT */
	usleep(20000);
	assert_int_equal(eg_sock_exists(s, &ta), 0);
	assert_int_equal(eg_sock_exists(s, &tb), 1);
	assert_int_equal(send(b.s, "x", 1, MSG_NOSIGNAL), 1); /* and can still answer */
	close_conn(&a);
	close_conn(&b);
	eg_sockdiag_close(s);
}

static void test_gone_tuple_spares_listener(void **state)
{
	struct conn a, c;
	struct eg_sock_tuple t;

	if (!privileged())
		skip();
	struct eg_sockdiag *s = eg_sockdiag_open();
	open_conn(&a);
	flowfix_sock(&a.t, &t);
	close_conn(&a); /* the flow ends before the revocation arrives */
	usleep(20000);
	/* The kernel's tuple lookup falls back to the listener for this tuple; we must not destroy it. */
	assert_int_equal(eg_sock_destroy(s, &t), -ENOENT);
	open_conn(&c);
	assert_int_equal(talk(&c), 0);
	close_conn(&c);
	eg_sockdiag_close(s);
}

static void test_table_bounds(void **state)
{
	struct eg_revoke_opts o = { .per_session = 4, .max_flows = 6 };
	struct eg_flow_tuple t, out[8];
	char err[128];

	if (!privileged())
		skip(); /* the bounds refuse only where revocation can kill flows */
	eg_revoke_free(&d);
	eg_revoke_set_opts(&o);
	assert_int_equal(eg_revoke_init(&d, err, sizeof(err)), 0);
	for (int i = 0; i < 4; i++) {
		fake_tuple(&t, 40000 + i);
		assert_int_equal(eg_flows_note(&d, "sessA", &t), EG_FLOW_NOTED);
		assert_int_equal(eg_flows_note(&d, "sessA", &t), EG_FLOW_NOTED); /* keep-alive: the same flow */
	}
	assert_int_equal(eg_flows_tracked(&d), 4);
	assert_int_equal(eg_flows_of(&d, "sessA", out, 8), 4);
	/* at the cap: the session's flows are probed; nothing is behind these fake tuples, so
	 * they are gone and make room (reclaimed, not evicted) */
	fake_tuple(&t, 40004);
	assert_int_equal(eg_flows_note(&d, "sessA", &t), EG_FLOW_NOTED);
	assert_int_equal(eg_flows_of(&d, "sessA", out, 8), 1);
	assert_int_equal(out[0].client_port, 40004);
	/* revocation takes a session's flows out (no real sockets: nothing to destroy) */
	for (int i = 0; i < 4; i++) {
		fake_tuple(&t, 50000 + i);
		assert_int_equal(eg_flows_note(&d, "sessB", &t), EG_FLOW_NOTED);
	}
	assert_int_equal(eg_flows_tracked(&d), 5);
	assert_int_equal(eg_revoke_session_flows(&d, "sessB", "admin"), 4);
	assert_int_equal(eg_flows_tracked(&d), 1);
	assert_int_equal(eg_flows_of(&d, "sessB", out, 8), 0);
	assert_int_equal(eg_revoke_session_flows(&d, "sessB", "admin"), 0);
	assert_int_equal(eg_revoke_session_flows(&d, "nosuch", "admin"), 0);
	/* no flows are noted for a revoked id (it is a tombstone now) */
	fake_tuple(&t, 40010);
	assert_int_equal(eg_flows_note(&d, "sessB", &t), EG_FLOW_NOTED);
	assert_int_equal(eg_flows_of(&d, "sessB", out, 8), 0);
	assert_int_equal(eg_flows_tracked(&d), 1);
	/* global bound: the sixth flow fits, the seventh is refused (not tracked) */
	for (int i = 0; i < 5; i++) {
		fake_tuple(&t, 51000 + i);
		assert_int_equal(eg_flows_note(&d, i < 3 ? "sessC" : "sessD", &t), EG_FLOW_NOTED);
	}
	assert_int_equal(eg_flows_tracked(&d), 6);
	fake_tuple(&t, 51009);
	assert_int_equal(eg_flows_note(&d, "sessD", &t), EG_FLOW_TABLE_FULL);
	/* not tracked (the urgent probe pass below may already be dropping the others) */
	size_t nd = eg_flows_of(&d, "sessD", out, 8);
	assert_true(nd <= 2);
	for (size_t i = 0; i < nd; i++)
		assert_int_not_equal(out[i].client_port, 51009);
	size_t len;
	char *m = eg_metrics_render(d.metrics, &len);
	assert_non_null(strstr(m, "edgegate_flows_untracked_total{why=\"table_full\"} 1"));
	assert_non_null(strstr(m, "edgegate_flows_reclaimed_total 4"));
	assert_null(strstr(m, "why=\"session_full\""));
	free(m);
	/* a full table wakes the GC for a probe pass over every flow, idle or not: these are
	 * closed (nothing behind them), so room comes back without waiting for idle_s */
	for (int i = 0; i < 300 && eg_flows_tracked(&d) == 6; i++)
		usleep(10000);
	assert_true(eg_flows_tracked(&d) < 6);
	assert_int_equal(eg_flows_note(&d, "sessD", &t), EG_FLOW_NOTED);
}

/* One user, many sessions: all of a subject's sessions together hold at most per_subject
 * live flows, so that one subject signing in again and again cannot fill the table that
 * every user shares. Refused like a full session (not tracked, nothing evicted); another
 * subject is served; room comes back when the subject's flows close or its sessions end. */
static void test_subject_bound(void **state)
{
	struct eg_revoke_opts o = { .per_session = 4, .per_subject = 6 };
	struct conn a1[4], a2[3], a3, b;
	struct eg_flow_tuple out[8];
	char err[128];

	if (!privileged())
		skip();
	eg_revoke_free(&d);
	eg_revoke_set_opts(&o);
	assert_int_equal(eg_revoke_init(&d, err, sizeof(err)), 0);
	for (int i = 0; i < 4; i++) {
		open_conn(&a1[i]);
		assert_int_equal(eg_flows_note_subject(&d, "alice-1", "alice", &a1[i].t), EG_FLOW_NOTED);
	}
	for (int i = 0; i < 3; i++)
		open_conn(&a2[i]);
	assert_int_equal(eg_flows_note_subject(&d, "alice-2", "alice", &a2[0].t), EG_FLOW_NOTED);
	assert_int_equal(eg_flows_note_subject(&d, "alice-2", "alice", &a2[1].t), EG_FLOW_NOTED);
	/* the seventh live flow of alice: refused, though alice-2 holds 2 of its 4 */
	assert_int_equal(eg_flows_note_subject(&d, "alice-2", "alice", &a2[2].t), EG_FLOW_SUBJECT_FULL);
	assert_int_equal(eg_flows_note_subject(&d, "alice-2", "alice", &a2[2].t), EG_FLOW_SUBJECT_FULL);
	/* a known flow is still served at the bound (keep-alive) */
	assert_int_equal(eg_flows_note_subject(&d, "alice-2", "alice", &a2[0].t), EG_FLOW_NOTED);
	assert_int_equal(eg_flows_note_subject(&d, "alice-1", "alice", &a1[3].t), EG_FLOW_NOTED);
	/* a third session of alice: refused from its first flow, and leaves no session behind */
	open_conn(&a3);
	assert_int_equal(eg_flows_note_subject(&d, "alice-3", "alice", &a3.t), EG_FLOW_SUBJECT_FULL);
	assert_int_equal(eg_flows_of(&d, "alice-3", out, 8), 0);
	assert_int_equal(eg_flows_of(&d, "alice-2", out, 8), 2);
	assert_int_equal(eg_flows_tracked(&d), 6);
	/* bob is served; a session noted without a subject is not bound by alice's */
	open_conn(&b);
	assert_int_equal(eg_flows_note_subject(&d, "bob-1", "bob", &b.t), EG_FLOW_NOTED);
	size_t len;
	char *m = eg_metrics_render(d.metrics, &len);
	assert_non_null(strstr(m, "edgegate_flows_untracked_total{why=\"subject_full\"} 3"));
	assert_null(strstr(m, "why=\"session_full\""));
	assert_null(strstr(m, "why=\"table_full\""));
	free(m);
	/* one of alice-2's connections closes: after the probe pause its own flows are probed,
	 * the closed one leaves the table and gives its room back to the subject */
	close_conn(&a2[1]);
	usleep(1100000);
	assert_int_equal(eg_flows_note_subject(&d, "alice-2", "alice", &a2[2].t), EG_FLOW_NOTED);
	assert_int_equal(eg_flows_note_subject(&d, "alice-3", "alice", &a3.t), EG_FLOW_SUBJECT_FULL);
	/* alice-1 ends: its 4 flows die and their room is the subject's again */
	assert_int_equal(eg_revoke_session_flows(&d, "alice-1", "admin"), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(client_error(&a1[i]), ECONNRESET);
	assert_int_equal(eg_flows_note_subject(&d, "alice-3", "alice", &a3.t), EG_FLOW_NOTED);
	assert_int_equal(eg_flows_tracked(&d), 4); /* alice-2: 2, alice-3: 1, bob-1: 1 */
	/* and every flow that got an allow still dies with its session */
	assert_int_equal(eg_revoke_session_flows(&d, "alice-3", "sign_out"), 1);
	assert_int_equal(client_error(&a3), ECONNRESET);
	assert_int_equal(eg_revoke_session_flows(&d, "alice-2", "sign_out"), 2);
	assert_int_equal(client_error(&a2[0]), ECONNRESET);
	assert_int_equal(client_error(&a2[2]), ECONNRESET);
	assert_int_equal(talk(&b), 0);
	for (int i = 0; i < 4; i++)
		close_conn(&a1[i]);
	close_conn(&a2[0]);
	close_conn(&a2[2]);
	close_conn(&a3);
	close_conn(&b);
	o = (struct eg_revoke_opts){ .per_session = 4 }; /* as the tests before left it */
	eg_revoke_set_opts(&o);
}

/* The hole this closes: a WebSocket gets one verdict and is then the least recently seen
 * flow of its session; more short connections than the cap used to push it out of the
 * table, and a revocation left it open. Now a live flow is never dropped: past the cap the
 * new flow is refused, closed ones make room, and the revocation kills every flow that got
 * an allow. */
static void test_full_session_keeps_live_flows(void **state)
{
	struct eg_revoke_opts o = { .per_session = 4 };
	struct conn ws, k[3], extra, other;
	struct eg_flow_tuple out[8];
	char err[128];

	if (!privileged())
		skip();
	eg_revoke_free(&d);
	eg_revoke_set_opts(&o);
	assert_int_equal(eg_revoke_init(&d, err, sizeof(err)), 0);
	open_conn(&ws);
	assert_int_equal(eg_flows_note(&d, "S", &ws.t), EG_FLOW_NOTED); /* the upgrade: its only verdict */
	for (int i = 0; i < 3; i++) {
		usleep(1000); /* the WebSocket is the least recently seen */
		open_conn(&k[i]);
		assert_int_equal(eg_flows_note(&d, "S", &k[i].t), EG_FLOW_NOTED);
		assert_int_equal(eg_flows_note(&d, "S", &k[i].t), EG_FLOW_NOTED);
	}
	/* over the cap with every flow live: refused, nothing evicted; refused again at once
	 * without another probe pass (a pass that found nothing gone waits a second) */
	open_conn(&extra);
	assert_int_equal(eg_flows_note(&d, "S", &extra.t), EG_FLOW_SESSION_FULL);
	assert_int_equal(eg_flows_note(&d, "S", &extra.t), EG_FLOW_SESSION_FULL);
	assert_int_equal(eg_flows_of(&d, "S", out, 8), 4);
	close_conn(&k[2]);
	struct conn c;
	open_conn(&c);
	assert_int_equal(eg_flows_note(&d, "S", &c.t), EG_FLOW_SESSION_FULL);
	usleep(1100000);
	assert_int_equal(eg_flows_note(&d, "S", &c.t), EG_FLOW_NOTED); /* k[2] was closed: reclaimed */
	/* 20 short connections, each opened, allowed and closed: the one before is found closed
	 * each time (a pass that reclaimed something may run again at once); the WebSocket, the
	 * least recently seen flow, stays */
	for (int i = 0; i < 20; i++) {
		close_conn(&c);
		open_conn(&c);
		assert_int_equal(eg_flows_note(&d, "S", &c.t), EG_FLOW_NOTED);
	}
	assert_int_equal(eg_flows_of(&d, "S", out, 8), 4);
	bool has_ws = false;
	for (int i = 0; i < 4; i++)
		has_ws |= same_flow(&out[i], &ws.t);
	assert_true(has_ws);
	/* another session is not affected */
	open_conn(&other);
	assert_int_equal(eg_flows_note(&d, "T", &other.t), EG_FLOW_NOTED);
	size_t len;
	char *m = eg_metrics_render(d.metrics, &len);
	assert_non_null(strstr(m, "edgegate_flows_untracked_total{why=\"session_full\"} 3"));
	free(m);
	/* revocation: every flow that got an allow dies, the WebSocket first of all */
	assert_int_equal(eg_revoke_session_flows(&d, "S", "admin"), 4);
	assert_int_equal(client_error(&ws), ECONNRESET);
	assert_int_equal(client_error(&k[0]), ECONNRESET);
	assert_int_equal(client_error(&k[1]), ECONNRESET);
	assert_int_equal(client_error(&c), ECONNRESET);
	assert_int_equal(talk(&other), 0);
	assert_int_equal(talk(&extra), 0); /* it never got an allow: nothing to kill */
	close_conn(&ws);
	close_conn(&k[0]);
	close_conn(&k[1]);
	close_conn(&c);
	close_conn(&extra);
	close_conn(&other);
}

static void test_revoke_kills_sessions_flows(void **state)
{
	struct conn a, b, c, late;

	if (!privileged())
		skip();
	open_conn(&a);
	open_conn(&b);
	open_conn(&c);
	eg_flows_note(&d, "S1", &a.t);
	eg_flows_note(&d, "S1", &b.t);
	eg_flows_note(&d, "S2", &c.t);
	assert_int_equal(eg_revoke_session_flows(&d, "S1", "admin"), 2);
	assert_int_equal(client_error(&a), ECONNRESET);
	assert_int_equal(client_error(&b), ECONNRESET);
	assert_int_equal(talk(&c), 0);
	/* a verdict for S1 that was answered while the revocation ran */
	open_conn(&late);
	eg_flows_note(&d, "S1", &late.t);
	assert_int_equal(client_error(&late), ECONNRESET);
	assert_int_equal(eg_flows_tracked(&d), 1);
	close_conn(&a);
	close_conn(&b);
	close_conn(&c);
	close_conn(&late);
}

static void test_session_end_paths_revoke(void **state)
{
	char err[256], ticket[EG_TICKET_MAX], id1[EG_SESSION_ID_LEN + 1], id2[EG_SESSION_ID_LEN + 1];
	struct conn a, b;

	if (!privileged())
		skip();
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	json_t *claims = json_pack("{s:s}", "sub", "alice");
	struct eg_session_new n = { .claims = claims, .sub = "alice", .sid = "op-sid-1" };
	assert_int_equal(eg_session_create(&d, &n, ticket, sizeof(ticket), id1), 0);
	char ticket2[EG_TICKET_MAX];
	n.sid = "op-sid-2";
	assert_int_equal(eg_session_create(&d, &n, ticket2, sizeof(ticket2), id2), 0);
	json_decref(claims);
	open_conn(&a);
	open_conn(&b);
	eg_flows_note(&d, id1, &a.t);
	eg_flows_note(&d, id2, &b.t);
	/* back-channel logout names the OP session (sid) */
	assert_int_equal(eg_session_revoke(&d, NULL, "alice", "op-sid-1", "backchannel_logout"), 1);
	assert_int_equal(client_error(&a), ECONNRESET);
	assert_int_equal(talk(&b), 0);
	/* sign-out (the ticket holder ends its own session) */
	assert_int_equal(eg_session_end_ticket(&d, ticket2, "sign_out", NULL), 1);
	assert_int_equal(client_error(&b), ECONNRESET);
	assert_int_equal(eg_flows_tracked(&d), 0);
	size_t len;
	char *m = eg_metrics_render(d.metrics, &len);
	assert_non_null(strstr(m, "edgegate_revocations_total{reason=\"backchannel_logout\"} 1"));
	assert_non_null(strstr(m, "edgegate_revoked_flows_total{result=\"destroyed\"} 2"));
	assert_non_null(strstr(m, "edgegate_revoke_duration_seconds_count 2"));
	free(m);
	close_conn(&a);
	close_conn(&b);
}

static void test_gc_probes_idle_flows(void **state)
{
	struct eg_revoke_opts o = { .idle_s = 1 };
	struct eg_flow_tuple t, out[4];
	struct conn a;
	char err[128];

	if (!privileged())
		skip();
	eg_revoke_free(&d);
	eg_revoke_set_opts(&o);
	assert_int_equal(eg_revoke_init(&d, err, sizeof(err)), 0);
	open_conn(&a);
	eg_flows_note(&d, "quiet-websocket", &a.t);
	fake_tuple(&t, 61000); /* nothing behind it */
	eg_flows_note(&d, "quiet-websocket", &t);
	assert_int_equal(eg_revoke_gc(&d), 0); /* not idle yet */
	usleep(1100000);
	assert_int_equal(eg_revoke_gc(&d), 1);
	assert_int_equal(eg_flows_of(&d, "quiet-websocket", out, 4), 1);
	assert_int_equal(out[0].client_port, a.t.client_port);
	/* the live one is still killed by a revocation */
	assert_int_equal(eg_revoke_session_flows(&d, "quiet-websocket", "expired"), 1);
	assert_int_equal(client_error(&a), ECONNRESET);
	close_conn(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reason_codes),
		cmocka_unit_test_setup_teardown(test_sock_destroy_exact, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_gone_tuple_spares_listener, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_probe_states, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_table_bounds, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_full_session_keeps_live_flows, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_subject_bound, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_flows_text_brackets_ipv6, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_revoke_kills_sessions_flows, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_session_end_paths_revoke, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_gc_probes_idle_flows, setup_each, teardown_each),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
