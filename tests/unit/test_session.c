/* test_session.c - tickets, sealed records, cache vs store, restart, revocation by
 * session/sub/sid, lifetimes, single-flight refresh with rotation, cookies. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "testutil.h"
#include "config.h"
#include "daemon.h"
#include "identity.h"
#include "log.h"
#include "session.h"
#include "store.h"
#include "util.h"

static char tmpdir[256];
static struct eg_config cfg;
static struct eg_daemon d;

static int refresh_calls;
static char last_rt[64];
static int refresh_fail;

static int fake_refresh(struct eg_daemon *dd, const char *rt, const char *sub,
			struct eg_session_new *out)
{
	__atomic_add_fetch(&refresh_calls, 1, __ATOMIC_SEQ_CST);
	snprintf(last_rt, sizeof(last_rt), "%s", rt);
	usleep(200000); /* slow OP: concurrent requests must not refresh again */
	if (refresh_fail)
		return -1;
	out->claims = json_pack("{s:s, s:s, s:i}", "sub", sub, "email", "new@x.test", "gen", 2);
	out->access_token = strdup("at-2");
	out->refresh_token = xasprintf("rt-%d", refresh_calls + 1);
	out->token_exp = now_realtime_s() + 3600;
	return 0;
}

static int setup(void **state)
{
	char err[256];

	eg_log_set_level("warn");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/eg-test-session-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	memset(&cfg, 0, sizeof(cfg));
	memset(&d, 0, sizeof(d));
	cfg.state_dir = tmpdir;
	cfg.cookie.idle_s = 3600;
	cfg.cookie.lifetime_s = 86400;
	cfg.cookie.secure = true;
	cfg.oidc.refresh_before_s = 60;
	d.cfg = &cfg;
	if (eg_sessions_init(&d, err, sizeof(err))) {
		fprintf(stderr, "init: %s\n", err);
		return -1;
	}
	eg_sessions_set_refresher(d.sessions, fake_refresh);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	eg_sessions_free(&d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void mk(const char *sub, const char *sid, const char *email, int64_t token_exp,
	       const char *rt, char *ticket, char *sid_out)
{
	struct eg_session_new n = { 0 };
	char idbuf[EG_SESSION_ID_LEN + 1];

	n.claims = json_pack("{s:s, s:s, s:[s]}", "sub", sub, "email", email, "groups", "ops");
	n.sub = (char *)sub;
	n.sid = (char *)sid;
	n.id_token = "id.token.value";
	n.access_token = "secret-access-token";
	n.refresh_token = (char *)rt;
	n.token_exp = token_exp;
	assert_int_equal(eg_session_create(&d, &n, ticket, EG_TICKET_MAX, idbuf), 0);
	json_decref(n.claims);
	if (sid_out)
		strcpy(sid_out, idbuf);
}

static int check(const char *ticket, const char *want_email)
{
	struct eg_identity id;
	int rc;

	memset(&id, 0, sizeof(id));
	rc = eg_session_identity_ticket(&d, ticket, &id);
	if (rc == 0) {
		assert_int_equal(id.kind, EG_ID_SESSION);
		assert_int_equal(strlen(id.session_id), EG_SESSION_ID_LEN);
		if (want_email)
			assert_string_equal(json_string_value(json_object_get(id.claims, "email")),
					    want_email);
	}
	json_decref(id.claims);
	return rc;
}

static void test_create_and_lookup(void **state)
{
	char t[EG_TICKET_MAX], t2[EG_TICKET_MAX], bad[EG_TICKET_MAX], sid[80];

	mk("alice", "sid-a", "alice@x.test", 0, NULL, t, sid);
	assert_int_equal(strlen(t), 22 + 1 + 43);
	assert_int_equal(t[22], '.');
	assert_int_equal(check(t, "alice@x.test"), 0);
	/* a second login gets a different id and secret */
	mk("alice", "sid-a", "alice@x.test", 0, NULL, t2, NULL);
	assert_memory_not_equal(t, t2, 22);
	/* wrong secret, with the entry cached and not cached: the id is the MAC of the
	 * secret, so this is a ticket never issued here (forged, no store read) */
	strcpy(bad, t);
	bad[40] = bad[40] == 'A' ? 'B' : 'A';
	assert_int_equal(check(bad, NULL), EG_SESSION_FORGED);
	eg_sessions_flush_cache(&d);
	assert_int_equal(check(bad, NULL), EG_SESSION_FORGED);
	assert_int_equal(check(t, "alice@x.test"), 0);
	/* malformed tickets */
	assert_int_equal(check("", NULL), EG_SESSION_FORGED);
	assert_int_equal(check("abc.def", NULL), EG_SESSION_FORGED);
	strcpy(bad, t);
	bad[22] = '_';
	assert_int_equal(check(bad, NULL), EG_SESSION_FORGED);
	strcpy(bad, t);
	bad[5] = '=';
	assert_int_equal(check(bad, NULL), EG_SESSION_FORGED);
	strcpy(bad, t);
	strcat(bad, "A");
	assert_int_equal(check(bad, NULL), EG_SESSION_FORGED);
	assert_int_equal(check(NULL, NULL), -1);
}

/* A ticket's store id is remembered per thread (session.c, ticket_id): forty tickets, each
 * more than once and interleaved (so that ids share and replace the memo's slots), each
 * still names its own session. */
static void test_many_tickets_own_ids(void **state)
{
	enum { N = 40 };
	static char t[N][EG_TICKET_MAX], sid[N][EG_SESSION_ID_LEN + 1];
	char email[32];

	for (int i = 0; i < N; i++) {
		snprintf(email, sizeof(email), "u%d@x.test", i);
		mk("alice", "sid-a", email, 0, NULL, t[i], sid[i]);
	}
	for (int round = 0; round < 3; round++)
		for (int k = 0; k < N; k++) {
			int i = (k * 7 + round) % N;
			struct eg_identity id = { 0 };
			assert_int_equal(eg_session_identity_ticket(&d, t[i], &id), 0);
			assert_string_equal(id.session_id, sid[i]);
			snprintf(email, sizeof(email), "u%d@x.test", i);
			assert_string_equal(json_string_value(json_object_get(id.claims, "email")), email);
			json_decref(id.claims);
		}
}

static void test_store_dump_is_useless(void **state)
{
	char t[EG_TICKET_MAX], id[80];
	void *val = NULL;
	size_t len;

	mk("carol", NULL, "carol-secret-mail@x.test", 0, "carol-refresh", t, id);
	/* stored under the hash of the ticket id, never under the ticket */
	assert_int_equal(eg_store_get(d.store, EG_NS_SESSION, id, &val, &len, NULL), 1);
	assert_null(strstr(val, "carol-secret-mail"));
	assert_null(strstr(val, "secret-access-token"));
	assert_null(strstr(val, "carol-refresh"));
	assert_null(memmem(val, len, t, 22));
	free(val);
	char idpart[23];
	memcpy(idpart, t, 22);
	idpart[22] = 0;
	assert_int_equal(eg_store_get(d.store, EG_NS_SESSION, idpart, &val, &len, NULL), 0);
}

static void test_restart_keeps_sessions(void **state)
{
	char t[EG_TICKET_MAX], err[256];

	mk("dave", NULL, "dave@x.test", 0, NULL, t, NULL);
	eg_sessions_free(&d);
	assert_null(d.store);
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	eg_sessions_set_refresher(d.sessions, fake_refresh);
	assert_int_equal(eg_sessions_cached(&d), 0);
	assert_int_equal(check(t, "dave@x.test"), 0);
	assert_int_equal(eg_sessions_cached(&d), 1);
}

static void test_revoke(void **state)
{
	char a1[EG_TICKET_MAX], a2[EG_TICKET_MAX], b1[EG_TICKET_MAX], e1[EG_TICKET_MAX];
	char a1id[80], b1id[80];
	void *val = NULL;
	size_t len;

	mk("erin", "op-sid-1", "erin@x.test", 0, NULL, a1, a1id);
	mk("erin", "op-sid-2", "erin@x.test", 0, NULL, a2, NULL);
	mk("frank", "op-sid-1", "frank@x.test", 0, NULL, b1, b1id);
	mk("gina", "op-sid-9", "gina@x.test", 0, NULL, e1, NULL);
	assert_int_equal(eg_session_revoke(&d, NULL, NULL, NULL, "x"), -1);
	/* sid + sub: only that subject's sessions with that sid */
	assert_int_equal(eg_session_revoke(&d, NULL, "erin", "op-sid-1", "backchannel"), 1);
	assert_int_equal(check(a1, NULL), -1);
	assert_int_equal(check(b1, NULL), 0);
	assert_int_equal(check(a2, NULL), 0);
	/* recorded for the kernel side */
	assert_int_equal(eg_store_get(d.store, EG_NS_REVOKED, a1id, &val, &len, NULL), 1);
	assert_non_null(strstr(val, "backchannel"));
	free(val);
	/* sub: every session of that subject */
	assert_int_equal(eg_session_revoke(&d, NULL, "erin", NULL, "admin"), 1);
	assert_int_equal(check(a2, NULL), -1);
	/* by session id */
	assert_int_equal(eg_session_revoke(&d, b1id, NULL, NULL, "admin"), 1);
	assert_int_equal(check(b1, NULL), -1);
	assert_int_equal(eg_session_revoke(&d, b1id, NULL, NULL, "admin"), 0);
	/* sid alone */
	assert_int_equal(eg_session_revoke(&d, NULL, NULL, "op-sid-9", "bc"), 1);
	assert_int_equal(check(e1, NULL), -1);
	/* ended sessions stay dead after a cache flush (no resurrection from the store) */
	eg_sessions_flush_cache(&d);
	assert_int_equal(check(a1, NULL), -1);
	assert_int_equal(check(b1, NULL), -1);
}

static void test_end_ticket(void **state)
{
	char t[EG_TICKET_MAX], bad[EG_TICKET_MAX], *idt = NULL;

	mk("hank", NULL, "hank@x.test", 0, NULL, t, NULL);
	strcpy(bad, t);
	bad[50] = bad[50] == 'x' ? 'y' : 'x';
	assert_int_equal(eg_session_end_ticket(&d, bad, "sign_out", &idt), 0);
	assert_null(idt);
	assert_int_equal(check(t, NULL), 0);
	assert_int_equal(eg_session_end_ticket(&d, t, "sign_out", &idt), 1);
	assert_string_equal(idt, "id.token.value");
	free(idt);
	assert_int_equal(check(t, NULL), -1);
	assert_int_equal(eg_session_end_ticket(&d, t, "sign_out", NULL), 0);
}

static void test_lifetimes(void **state)
{
	char t[EG_TICKET_MAX], u[EG_TICKET_MAX];

	/* 2 s, not 1: a check that lands on the next second boundary must still be inside */
	cfg.cookie.lifetime_s = 2;
	mk("ivy", NULL, "ivy@x.test", 0, NULL, t, NULL);
	cfg.cookie.lifetime_s = 86400;
	cfg.cookie.idle_s = 2;
	mk("jack", NULL, "jack@x.test", 0, NULL, u, NULL);
	assert_int_equal(check(t, NULL), 0);
	assert_int_equal(check(u, NULL), 0);
	sleep(3);
	assert_int_equal(check(t, NULL), -1); /* absolute */
	assert_int_equal(check(u, NULL), -1); /* idle */
	eg_sessions_flush_cache(&d);
	assert_int_equal(check(u, NULL), -1);
	cfg.cookie.idle_s = 3600;
}

static void *worker(void *arg)
{
	long rc = check(arg, NULL);
	return (void *)rc;
}

static void test_refresh_single_flight(void **state)
{
	char t[EG_TICKET_MAX];
	pthread_t th[8];

	refresh_calls = 0;
	refresh_fail = 0;
	/* token already expired: every concurrent request waits for the one refresh */
	mk("kate", NULL, "kate@x.test", now_realtime_s() - 5, "rt-1", t, NULL);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, t), 0);
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(th[i], &r);
		assert_int_equal((long)r, 0);
	}
	assert_int_equal(refresh_calls, 1);
	assert_string_equal(last_rt, "rt-1");
	assert_int_equal(check(t, "new@x.test"), 0); /* claims updated */
	assert_int_equal(refresh_calls, 1);          /* fresh token: no more refreshes */
	/* the rotated refresh token survived a restart */
	eg_sessions_flush_cache(&d);
	assert_int_equal(check(t, "new@x.test"), 0);
}

static void test_refresh_failure_ends_session(void **state)
{
	char t[EG_TICKET_MAX];

	refresh_calls = 0;
	refresh_fail = 1;
	mk("liam", NULL, "liam@x.test", now_realtime_s() + 10, "rt-x", t, NULL);
	assert_int_equal(check(t, NULL), -1);
	assert_int_equal(refresh_calls, 1);
	assert_int_equal(check(t, NULL), -1);
	refresh_fail = 0;
	/* no refresh token: the session lives on its own lifetimes */
	mk("mia", NULL, "mia@x.test", now_realtime_s() - 100, NULL, t, NULL);
	assert_int_equal(check(t, "mia@x.test"), 0);
	assert_int_equal(refresh_calls, 1);
}

static void test_list(void **state)
{
	char t[EG_TICKET_MAX];

	mk("nina", "s-n", "nina@x.test", 0, NULL, t, NULL);
	mk("nina", "s-n2", "nina@x.test", 0, NULL, t, NULL);
	json_t *all = eg_sessions_list(&d, NULL), *mine = eg_sessions_list(&d, "nina");
	assert_true(json_array_size(all) >= 2);
	assert_int_equal(json_array_size(mine), 2);
	json_t *e = json_array_get(mine, 0);
	assert_string_equal(json_string_value(json_object_get(e, "sub")), "nina");
	assert_int_equal(strlen(json_string_value(json_object_get(e, "session_id"))), 64);
	assert_true(json_integer_value(json_object_get(e, "expires")) > now_realtime_s());
	json_decref(all);
	json_decref(mine);
}

static void test_cookie_header(void **state)
{
	char *c = eg_cookie_header(&cfg, "_edgegate", "abc", NULL, 100);
	assert_string_equal(c, "_edgegate=abc; Path=/; Max-Age=100; HttpOnly; Secure; SameSite=Lax");
	free(c);
	cfg.cookie.domain = "x.test";
	cfg.cookie.secure = false;
	c = eg_cookie_header(&cfg, "n", "", "/oauth2/", 0);
	assert_non_null(strstr(c, "n=; Path=/oauth2/; Domain=x.test; Max-Age=0;"));
	assert_null(strstr(c, "Secure"));
	assert_non_null(strstr(c, "HttpOnly"));
	free(c);
	cfg.cookie.domain = NULL;
	cfg.cookie.secure = true;
}

/* --- issue 11/17: forged vs ended, sealed metadata, durable revocation ------------------ */

static void test_forged_vs_ended(void **state)
{
	char t[EG_TICKET_MAX], forged[EG_TICKET_MAX];

	mk("olga", NULL, "olga@x.test", 0, NULL, t, NULL);
	/* a well-formed ticket this deployment never issued: forged (an attack signal) */
	memcpy(forged, "AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", 67);
	assert_int_equal(check(forged, NULL), EG_SESSION_FORGED);
	/* a genuine ticket whose session was signed out: ended, not forged */
	assert_int_equal(eg_session_end_ticket(&d, t, "sign_out", NULL), 1);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
	eg_sessions_flush_cache(&d);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
}

/* Rewrites one clear field of a stored record. */
static void tamper(const char *id, const char *field, json_t *value)
{
	void *val = NULL;
	size_t len;
	int64_t exp;

	assert_int_equal(eg_store_get(d.store, EG_NS_SESSION, id, &val, &len, &exp), 1);
	json_t *rec = json_loadb(val, len, 0, NULL);
	free(val);
	json_object_set_new(rec, field, value);
	char *txt = json_dumps(rec, JSON_COMPACT);
	assert_int_equal(eg_store_put(d.store, EG_NS_SESSION, id, txt, strlen(txt), exp), 0);
	free(txt);
	json_decref(rec);
}

static void test_metadata_sealed(void **state)
{
	char t[EG_TICKET_MAX], id[80];
	void *orig = NULL;
	size_t olen;
	int64_t oexp;
	const char *fields[] = { "exp", "last", "created", "token_exp", "sub", "sid", "v" };

	mk("pete", "sid-p", "pete@x.test", 0, NULL, t, id);
	assert_int_equal(eg_store_get(d.store, EG_NS_SESSION, id, &orig, &olen, &oexp), 1);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		eg_sessions_flush_cache(&d);
		if (strcmp(fields[i], "sub") == 0 || strcmp(fields[i], "sid") == 0)
			tamper(id, fields[i], json_string("mallory"));
		else if (strcmp(fields[i], "v") == 0)
			tamper(id, fields[i], json_integer(1)); /* an old-format record */
		else
			tamper(id, fields[i], json_integer(now_realtime_s() + 10 * 86400));
		assert_int_equal(check(t, NULL), EG_SESSION_NONE);
		/* back as it was: the session works again */
		assert_int_equal(eg_store_put(d.store, EG_NS_SESSION, id, orig, olen, oexp), 0);
		assert_int_equal(check(t, "pete@x.test"), 0);
	}
	/* a record moved to another id does not open either */
	free(orig);
}

static void revoke_in_load_window(struct eg_daemon *dd, const char *session_id, void *arg)
{
	int *done = arg;

	if (*done)
		return;
	*done = 1;
	assert_int_equal(eg_session_revoke(dd, session_id, NULL, NULL, "admin"), 1);
}

static void test_reload_race(void **state)
{
	char t[EG_TICKET_MAX], id[80];
	int fired = 0;

	mk("quinn", NULL, "quinn@x.test", 0, NULL, t, id);
	eg_sessions_flush_cache(&d);
	/* the revocation lands after this load read the record, before it caches it */
	eg_sessions_set_load_hook(d.sessions, revoke_in_load_window, &fired);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
	eg_sessions_set_load_hook(d.sessions, NULL, NULL);
	assert_int_equal(fired, 1);
	assert_int_equal(eg_sessions_cached(&d), 0);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
}

/* The same window for a revocation decided on another node: it writes the revoked marker
 * and deletes the record in the shared store, then its event reaches this node, which
 * evicts the session from its cache (eg_session_forget, what eg_revoke_remote calls) while
 * a load that read the record before is still on its way to caching it. */
static void remote_revoke_in_load_window(struct eg_daemon *dd, const char *session_id, void *arg)
{
	int *done = arg;

	if (*done)
		return;
	*done = 1;
	assert_int_equal(eg_store_put(dd->store, EG_NS_REVOKED, session_id, "{\"reason\":\"admin\"}", 18,
				      now_realtime_s() + 3600), 0);
	assert_int_equal(eg_store_del(dd->store, EG_NS_SESSION, session_id), 0);
	eg_session_forget(dd, session_id);
}

static void test_remote_reload_race(void **state)
{
	char t[EG_TICKET_MAX], id[80];
	int fired = 0;

	mk("rita", NULL, "rita@x.test", 0, NULL, t, id);
	eg_sessions_flush_cache(&d);
	eg_sessions_set_load_hook(d.sessions, remote_revoke_in_load_window, &fired);
	int first = check(t, NULL);
	eg_sessions_set_load_hook(d.sessions, NULL, NULL);
	assert_int_equal(fired, 1);
	assert_int_equal(first, EG_SESSION_NONE);
	assert_int_equal(eg_sessions_cached(&d), 0);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
}

/* A real LMDB store with faults injected on demand (reads or writes fail). */
static int fail_reads, fail_writes;
static void f_close(void *impl) { eg_store_lmdb_ops.close(impl); }
static int f_put(void *impl, enum eg_store_ns ns, const char *key, const void *val, size_t len, int64_t exp,
		 int only_if_absent)
{
	return fail_writes ? -1 : eg_store_lmdb_ops.put(impl, ns, key, val, len, exp, only_if_absent);
}
static int f_get(void *impl, enum eg_store_ns ns, const char *key, void **val, size_t *len, int64_t *exp)
{
	return fail_reads ? -1 : eg_store_lmdb_ops.get(impl, ns, key, val, len, exp);
}
static int f_del(void *impl, enum eg_store_ns ns, const char *key)
{
	return fail_writes ? -1 : eg_store_lmdb_ops.del(impl, ns, key);
}
static int f_foreach(void *impl, enum eg_store_ns ns, const char *prefix, eg_store_iter_fn fn, void *arg)
{
	return fail_reads ? -1 : eg_store_lmdb_ops.foreach(impl, ns, prefix, fn, arg);
}
static long f_gc(void *impl) { return eg_store_lmdb_ops.gc(impl); }
static const struct eg_store_ops fault_ops = { "lmdb", f_close, f_put, f_get, f_del, f_foreach, f_gc, NULL, NULL, NULL, NULL };

/* The same, saying it is down while writes fail and keeping the hook the sessions set
 * for "the store answers again" (store_redis.c calls it from its prober). */
static void (*up_fn)(void *arg);
static void *up_arg;
static int64_t f_down_since(void *impl) { return fail_writes ? 1 : 0; }
static void f_set_on_up(void *impl, void (*fn)(void *arg), void *arg)
{
	up_fn = fn;
	up_arg = arg;
}
static const struct eg_store_ops prober_ops = { "lmdb", f_close, f_put, f_get, f_del, f_foreach, f_gc, NULL, NULL,
						f_down_since, f_set_on_up };

/* The same faults behind a store that says it is shared (sessions re-check it every 5 s). */
static const struct eg_store_ops shared_fault_ops = { "shared-fault", f_close, f_put, f_get, f_del, f_foreach, f_gc,
						      NULL, NULL, NULL, NULL };

static void wait_second(int64_t s)
{
	while (now_realtime_s() < s)
		usleep(20000);
}

/* Outage grace (docs/sessions.md): with a shared store that cannot be read, a session in
 * memory is served from the cache until the re-check is due (5 s), then while the store
 * last confirmed it less than store.outage_grace ago; after that it is refused as a store
 * error (never served stale), and served again once the store answers. */
static void test_shared_outage_grace(void **state)
{
	char t[EG_TICKET_MAX], err[256], dir[300];
	struct eg_daemon saved = d;
	struct eg_config c2 = cfg;

	snprintf(dir, sizeof(dir), "%s/shared", tmpdir);
	c2.store.outage_grace_s = 6;
	memset(&d, 0, sizeof(d));
	d.cfg = &c2;
	d.store = eg_store_wrap(&shared_fault_ops, eg_store_lmdb_open(dir, 0, err, sizeof(err)));
	assert_non_null(d.store);
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	/* start on a fresh second so that "confirmed at t0" is exact */
	int64_t t0 = now_realtime_s() + 1;
	wait_second(t0);
	mk("vera", NULL, "vera@x.test", 0, NULL, t, NULL);
	assert_int_equal(check(t, "vera@x.test"), 0);
	assert_int_equal(now_realtime_s(), t0);
	fail_reads = 1;
	assert_int_equal(check(t, "vera@x.test"), 0); /* cached, no re-check due */
	wait_second(t0 + 5);
	assert_int_equal(check(t, "vera@x.test"), 0); /* re-check fails: within the grace */
	wait_second(t0 + 6);
	assert_int_equal(check(t, NULL), EG_SESSION_STORE_ERROR); /* the grace is over */
	assert_int_equal(eg_sessions_cached(&d), 0);
	assert_int_equal(check(t, NULL), EG_SESSION_STORE_ERROR); /* not in memory: no grace */
	fail_reads = 0;
	assert_int_equal(check(t, "vera@x.test"), 0); /* the store answers: served again */
	eg_sessions_free(&d);
	eg_store_close(d.store);
	d = saved;
}

static size_t pending_after_ms(int ms)
{
	uint64_t end = now_mono_ns() + (uint64_t)ms * 1000000ull;

	while (eg_sessions_tombs_pending(&d) && now_mono_ns() < end)
		usleep(5000);
	return eg_sessions_tombs_pending(&d);
}

/* A revocation recorded locally during an outage is published as soon as the store
 * answers again: the hook wakes the retry, it does not wait for the periodic pass (1 s). */
static void test_store_back_wakes_retry(void **state)
{
	char t[EG_TICKET_MAX], id[80], err[256], dir[300];
	struct eg_daemon saved = d;
	struct eg_revoke_result res;

	snprintf(dir, sizeof(dir), "%s/prober", tmpdir);
	memset(&d, 0, sizeof(d));
	d.cfg = &cfg;
	d.store = eg_store_wrap(&prober_ops, eg_store_lmdb_open(dir, 0, err, sizeof(err)));
	assert_non_null(d.store);
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	assert_non_null(up_fn);
	mk("una", NULL, "una@x.test", 0, NULL, t, id);
	fail_writes = 1;
	assert_int_equal(eg_session_end_ticket_ex(&d, t, "sign_out", NULL, &res), 1);
	assert_string_equal(eg_revoke_result_durability(&res), "local");
	/* the pass woken by the local record, then the periodic one 1 s later, both fail
	 * (the next one is another second away) */
	assert_int_equal(pending_after_ms(1100), 1);
	fail_writes = 0;
	up_fn(up_arg);
	assert_int_equal(pending_after_ms(300), 0);
	void *v = NULL;
	assert_int_equal(eg_store_get(d.store, EG_NS_REVOKED, id, &v, NULL, NULL), 1);
	free(v);
	eg_sessions_free(&d);
	assert_null(up_fn); /* unset before the sessions are freed */
	eg_store_close(d.store);
	d = saved;
}

/* A shared store that counts every command (and can say it is down). */
static int store_calls, count_down;
static int c_put(void *impl, enum eg_store_ns ns, const char *key, const void *val, size_t len, int64_t exp,
		 int only_if_absent)
{
	store_calls++;
	return eg_store_lmdb_ops.put(impl, ns, key, val, len, exp, only_if_absent);
}
static int c_get(void *impl, enum eg_store_ns ns, const char *key, void **val, size_t *len, int64_t *exp)
{
	store_calls++;
	return count_down ? -1 : eg_store_lmdb_ops.get(impl, ns, key, val, len, exp);
}
static int c_del(void *impl, enum eg_store_ns ns, const char *key)
{
	store_calls++;
	return eg_store_lmdb_ops.del(impl, ns, key);
}
static int c_foreach(void *impl, enum eg_store_ns ns, const char *prefix, eg_store_iter_fn fn, void *arg)
{
	store_calls++;
	return eg_store_lmdb_ops.foreach(impl, ns, prefix, fn, arg);
}
static int64_t c_down_since(void *impl) { return count_down ? 1 : 0; }
static const struct eg_store_ops counting_ops = { "shared-count", f_close, c_put, c_get, c_del, c_foreach, f_gc,
						  NULL, NULL, c_down_since, NULL };

static int check_use(const char *ticket, enum eg_store_use use)
{
	struct eg_identity id;
	memset(&id, 0, sizeof(id));
	int rc = eg_session_identity_ticket_ex(&d, ticket, &id, use);
	json_decref(id.claims);
	return rc;
}

/* The passes without the store (offload.h): USE_NONE answers from memory or says the
 * store is needed, without a single store command; USE_DOWN decides as in an outage
 * (grace for sessions in memory, fail closed otherwise), without one either. */
static void test_store_use_modes(void **state)
{
	char t[EG_TICKET_MAX], old[EG_TICKET_MAX], ref[EG_TICKET_MAX], exp[EG_TICKET_MAX], err[256], dir[300];
	struct eg_daemon saved = d;
	struct eg_config c2 = cfg;

	snprintf(dir, sizeof(dir), "%s/counting", tmpdir);
	c2.store.outage_grace_s = 30;
	memset(&d, 0, sizeof(d));
	d.cfg = &c2;
	d.store = eg_store_wrap(&counting_ops, eg_store_lmdb_open(dir, 0, err, sizeof(err)));
	assert_non_null(d.store);
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	eg_sessions_set_refresher(d.sessions, fake_refresh);
	mk("nora", NULL, "nora@x.test", 0, NULL, t, NULL);
	mk("otto", NULL, "otto@x.test", 0, NULL, old, NULL);
	c2.cookie.lifetime_s = 2;
	mk("pia", NULL, "pia@x.test", 0, NULL, exp, NULL);
	c2.cookie.lifetime_s = 86400;
	refresh_calls = 0;
	refresh_fail = 0;
	mk("quin", NULL, "quin@x.test", now_realtime_s() + 10, "rt-q", ref, NULL);
	store_calls = 0;

	/* in memory, nothing due: answered without the store */
	assert_int_equal(check_use(t, EG_STORE_USE_NONE), 0);
	/* a ticket never issued: forged, without the store */
	assert_int_equal(check_use("AAAAAAAAAAAAAAAAAAAAAA." "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", EG_STORE_USE_NONE),
			 EG_SESSION_FORGED);
	/* a refresh is due: only with the store (and not started); DOWN serves without it */
	assert_int_equal(check_use(ref, EG_STORE_USE_NONE), EG_SESSION_NEEDS_STORE);
	assert_int_equal(check_use(ref, EG_STORE_USE_DOWN), 0);
	assert_int_equal(refresh_calls, 0);
	assert_int_equal(store_calls, 0);
	/* not in memory: the store is needed; DOWN fails closed */
	eg_sessions_flush_cache(&d);
	assert_int_equal(check_use(t, EG_STORE_USE_NONE), EG_SESSION_NEEDS_STORE);
	assert_int_equal(check_use(t, EG_STORE_USE_DOWN), EG_SESSION_STORE_ERROR);
	assert_int_equal(store_calls, 0);
	assert_int_equal(eg_sessions_cached(&d), 0);
	/* a store known to be down: decided at once, as it would answer */
	count_down = 1;
	assert_int_equal(check_use(t, EG_STORE_USE_NONE), EG_SESSION_STORE_ERROR);
	assert_int_equal(store_calls, 0);
	count_down = 0;
	/* with the store: loaded (a store read), then in memory */
	assert_int_equal(check_use(t, EG_STORE_USE_ANY), 0);
	assert_true(store_calls > 0);
	assert_int_equal(check_use(old, EG_STORE_USE_ANY), 0);
	assert_int_equal(check_use(exp, EG_STORE_USE_ANY), 0);
	store_calls = 0;
	assert_int_equal(check_use(t, EG_STORE_USE_NONE), 0);
	assert_int_equal(store_calls, 0);

	/* the shared store's re-check is due (5 s): needed; DOWN serves within the grace, and
	 * keeps the session (it was not refused by the store, only not asked) */
	sleep(6);
	assert_int_equal(check_use(t, EG_STORE_USE_NONE), EG_SESSION_NEEDS_STORE);
	assert_int_equal(check_use(old, EG_STORE_USE_DOWN), 0);
	/* expired (lifetime 2 s): needed to end it; DOWN says it ended, without the store */
	assert_int_equal(check_use(exp, EG_STORE_USE_NONE), EG_SESSION_NEEDS_STORE);
	assert_int_equal(check_use(exp, EG_STORE_USE_DOWN), EG_SESSION_NONE);
	assert_int_equal(store_calls, 0);
	size_t cached = eg_sessions_cached(&d);
	/* the full pass: re-read (store commands), served; the expired one ends */
	assert_int_equal(check_use(t, EG_STORE_USE_ANY), 0);
	assert_true(store_calls > 0);
	assert_int_equal(check_use(exp, EG_STORE_USE_ANY), EG_SESSION_NONE);
	assert_int_equal(eg_sessions_cached(&d), cached - 1);
	store_calls = 0;
	assert_int_equal(check_use(t, EG_STORE_USE_NONE), 0);
	assert_int_equal(store_calls, 0);
	eg_sessions_free(&d);
	eg_store_close(d.store);
	d = saved;
}

static void test_store_faults(void **state)
{
	char t[EG_TICKET_MAX], id[80], err[256], dir[300], path[320];
	struct eg_daemon saved = d;
	struct eg_revoke_result res;

	snprintf(dir, sizeof(dir), "%s/faulty", tmpdir);
	memset(&d, 0, sizeof(d));
	d.cfg = &cfg;
	d.store = eg_store_wrap(&fault_ops, eg_store_lmdb_open(dir, 0, err, sizeof(err)));
	assert_non_null(d.store);
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	mk("rita", "sid-r", "rita@x.test", 0, NULL, t, id);
	/* a read error is a deny, never the cached or a stale record */
	eg_sessions_flush_cache(&d);
	fail_reads = 1;
	assert_int_equal(check(t, NULL), EG_SESSION_STORE_ERROR);
	/* ... and a revocation by sub cannot be acknowledged: its sessions cannot be listed */
	assert_int_equal(eg_session_revoke_ex(&d, NULL, "rita", NULL, "admin", &res), 0);
	assert_true(res.lookup_failed);
	assert_string_equal(eg_revoke_result_durability(&res), "none");
	fail_reads = 0;
	assert_int_equal(check(t, "rita@x.test"), 0);
	/* the store refuses writes: the sign-out is recorded in state_dir, not lost */
	fail_writes = 1;
	assert_int_equal(eg_session_end_ticket_ex(&d, t, "sign_out", NULL, &res), 1);
	assert_int_equal(res.ended, 1);
	assert_int_equal(res.local, 1);
	assert_string_equal(eg_revoke_result_durability(&res), "local");
	assert_int_equal(eg_sessions_tombs_pending(&d), 1);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
	/* the record is still in the store (its delete failed) */
	void *v = NULL;
	assert_int_equal(eg_store_get(d.store, EG_NS_SESSION, id, &v, NULL, NULL), 1);
	free(v);
	snprintf(path, sizeof(path), "%s/revoked.tombs", tmpdir);
	size_t len;
	char *file = read_file(path, 1 << 20, &len);
	assert_non_null(file);
	assert_non_null(strstr(file, id));
	free(file);
	/* restart: the tombstone is read back and still refuses the session */
	eg_sessions_free(&d);
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	assert_int_equal(eg_sessions_tombs_pending(&d), 1);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
	assert_int_equal(eg_sessions_retry_tombs(&d), 0); /* still down */
	/* the store is back: the retry records it there */
	fail_writes = 0;
	assert_int_equal(eg_sessions_retry_tombs(&d), 1);
	assert_int_equal(eg_sessions_tombs_pending(&d), 0);
	assert_int_equal(eg_store_get(d.store, EG_NS_SESSION, id, &v, NULL, NULL), 0);
	assert_int_equal(eg_store_get(d.store, EG_NS_REVOKED, id, &v, NULL, NULL), 1);
	free(v);
	/* after a restart, the store's marker alone refuses it */
	eg_sessions_free(&d);
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	assert_int_equal(eg_sessions_tombs_pending(&d), 0);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
	eg_sessions_free(&d);
	eg_store_close(d.store);
	d = saved;
}

/* LMDB map full (store.map_size), the real thing: revocation goes to state_dir. */
static void test_lmdb_map_full_revoke(void **state)
{
	char t[EG_TICKET_MAX], id[80], err[256], dir[300];
	struct eg_daemon saved = d;
	struct eg_config c2 = cfg;
	struct eg_revoke_result res;
	char big[4096];

	snprintf(dir, sizeof(dir), "%s/small", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	c2.state_dir = dir;
	c2.store.map_size = 1 << 20;
	memset(&d, 0, sizeof(d));
	d.cfg = &c2;
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	mk("sam", NULL, "sam@x.test", 0, NULL, t, id);
	assert_int_equal(check(t, "sam@x.test"), 0);
	memset(big, 'f', sizeof(big));
	/* fill it: big values, then ever smaller ones, until nothing fits */
	int n = 0, full = 0;
	for (size_t sz = sizeof(big); sz >= 8; sz /= 4) {
		/* the last round fills the namespace the revoked markers go to */
		enum eg_store_ns ns = sz < 64 ? EG_NS_REVOKED : EG_NS_META;
		for (int fails = 0; fails < 5 && n < 100000; n++) {
			char k[32];
			snprintf(k, sizeof(k), "filler%d", n);
			if (eg_store_put(d.store, ns, k, big, sz < 64 ? 100 : sz, 0) != 0)
				fails++, full = 1;
			else
				fails = 0;
		}
	}
	assert_true(full);
	assert_int_equal(eg_session_revoke_ex(&d, NULL, "sam", NULL, "admin", &res), 1);
	assert_int_equal(res.local, 1);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
	/* restart with the map still full: the tombstone holds */
	eg_sessions_free(&d);
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
	assert_int_equal(eg_sessions_tombs_pending(&d), 1);
	eg_sessions_free(&d);
	/* a bigger map: the pending revocation reaches the store */
	c2.store.map_size = 16 << 20;
	assert_int_equal(eg_sessions_init(&d, err, sizeof(err)), 0);
	assert_int_equal(eg_sessions_retry_tombs(&d), 1);
	void *v = NULL;
	assert_int_equal(eg_store_get(d.store, EG_NS_REVOKED, id, &v, NULL, NULL), 1);
	free(v);
	assert_int_equal(check(t, NULL), EG_SESSION_NONE);
	eg_sessions_free(&d);
	d = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_lookup),
		cmocka_unit_test(test_many_tickets_own_ids),
		cmocka_unit_test(test_store_dump_is_useless),
		cmocka_unit_test(test_restart_keeps_sessions),
		cmocka_unit_test(test_revoke),
		cmocka_unit_test(test_end_ticket),
		cmocka_unit_test(test_lifetimes),
		cmocka_unit_test(test_refresh_single_flight),
		cmocka_unit_test(test_refresh_failure_ends_session),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_cookie_header),
		cmocka_unit_test(test_forged_vs_ended),
		cmocka_unit_test(test_metadata_sealed),
		cmocka_unit_test(test_reload_race),
		cmocka_unit_test(test_remote_reload_race),
		cmocka_unit_test(test_store_faults),
		cmocka_unit_test(test_store_back_wakes_retry),
		cmocka_unit_test(test_shared_outage_grace),
		cmocka_unit_test(test_store_use_modes),
		cmocka_unit_test(test_lmdb_map_full_revoke),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
