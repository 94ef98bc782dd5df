/* test_store.c - both store backends through the one interface: put/get/add/del,
 * expiry, prefix iteration, gc, persistence across reopen (LMDB), and Redis when
 * redis-server is installed (a private instance on a loopback port). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "config.h"
#include "store.h"
#include "store_tomb.h"
#include "util.h"
#include <fcntl.h>
#include <hiredis/hiredis.h>

static char tmpdir[256];
static pid_t redis_pid;
static int redis_port;

static struct eg_store *open_lmdb(void)
{
	char err[256] = "", dir[300];

	snprintf(dir, sizeof(dir), "%s/db", tmpdir);
	struct eg_store *s = eg_store_wrap(&eg_store_lmdb_ops, eg_store_lmdb_open(dir, 0, err, sizeof(err)));
	if (!s)
		fail_msg("lmdb open: %s", err);
	return s;
}

static struct eg_store *open_redis(void)
{
	char err[256] = "", url[64];

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
	for (int i = 0; i < 50; i++) {
		void *impl = eg_store_redis_open(url, "egtest:", err, sizeof(err));
		if (impl)
			return eg_store_wrap(&eg_store_redis_ops, impl);
		usleep(100000);
	}
	fail_msg("redis open: %s", err);
	return NULL;
}

struct collect {
	int n;
	char keys[16][64];
};

static int collect_fn(const char *key, const void *val, size_t len, int64_t exp, void *arg)
{
	struct collect *c = arg;

	if (c->n < 16)
		snprintf(c->keys[c->n++], 64, "%s=%.*s", key, (int)len, (const char *)val);
	return 0;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void exercise(struct eg_store *s)
{
	void *v = NULL;
	size_t len = 0;
	int64_t exp = 0, now = time(NULL);
	const uint8_t bin[5] = { 0, 1, 0, 0xff, 0 };

	assert_int_equal(eg_store_get(s, EG_NS_SESSION, "missing", &v, &len, &exp), 0);
	assert_int_equal(eg_store_put(s, EG_NS_SESSION, "k1", "hello", 5, 0), 0);
	assert_int_equal(eg_store_get(s, EG_NS_SESSION, "k1", &v, &len, &exp), 1);
	assert_int_equal(len, 5);
	assert_memory_equal(v, "hello", 5);
	assert_int_equal(exp, 0);
	free(v);
	/* namespaces are separate */
	assert_int_equal(eg_store_get(s, EG_NS_STATE, "k1", &v, &len, &exp), 0);
	/* binary values and overwrite with expiry */
	assert_int_equal(eg_store_put(s, EG_NS_SESSION, "k1", bin, sizeof(bin), now + 100), 0);
	assert_int_equal(eg_store_get(s, EG_NS_SESSION, "k1", &v, &len, &exp), 1);
	assert_int_equal(len, sizeof(bin));
	assert_memory_equal(v, bin, sizeof(bin));
	assert_int_equal(exp, now + 100);
	free(v);
	/* already expired reads as absent */
	assert_int_equal(eg_store_put(s, EG_NS_SESSION, "old", "x", 1, now - 5), 0);
	assert_int_equal(eg_store_get(s, EG_NS_SESSION, "old", &v, &len, &exp), 0);
	/* add: only if absent; an expired key counts as absent */
	assert_int_equal(eg_store_add(s, EG_NS_JTI, "jti-1", "1", 1, now + 60), 1);
	assert_int_equal(eg_store_add(s, EG_NS_JTI, "jti-1", "2", 1, now + 60), 0);
	assert_int_equal(eg_store_get(s, EG_NS_JTI, "jti-1", &v, &len, NULL), 1);
	assert_memory_equal(v, "1", 1);
	free(v);
	assert_int_equal(eg_store_put(s, EG_NS_JTI, "jti-old", "1", 1, now - 1), 0);
	assert_int_equal(eg_store_add(s, EG_NS_JTI, "jti-old", "2", 1, now + 60), 1);
	/* delete */
	assert_int_equal(eg_store_del(s, EG_NS_SESSION, "k1"), 0);
	assert_int_equal(eg_store_get(s, EG_NS_SESSION, "k1", &v, &len, &exp), 0);
	assert_int_equal(eg_store_del(s, EG_NS_SESSION, "k1"), 0);
	/* prefix iteration skips expired keys and other prefixes */
	assert_int_equal(eg_store_put(s, EG_NS_INDEX, "sub:a:1", "", 0, 0), 0);
	assert_int_equal(eg_store_put(s, EG_NS_INDEX, "sub:a:2", "v", 1, now + 100), 0);
	assert_int_equal(eg_store_put(s, EG_NS_INDEX, "sub:a:3", "", 0, now - 1), 0);
	assert_int_equal(eg_store_put(s, EG_NS_INDEX, "sub:ab:1", "", 0, 0), 0);
	assert_int_equal(eg_store_put(s, EG_NS_INDEX, "sid:a:1", "", 0, 0), 0);
	assert_int_equal(eg_store_put(s, EG_NS_INDEX, "sub:*:1", "", 0, 0), 0);
	struct collect c = { 0 };
	assert_int_equal(eg_store_foreach_prefix(s, EG_NS_INDEX, "sub:a:", collect_fn, &c), 0);
	qsort(c.keys, (size_t)c.n, 64, cmpstr);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.keys[0], "sub:a:1=");
	assert_string_equal(c.keys[1], "sub:a:2=v");
	memset(&c, 0, sizeof(c));
	assert_int_equal(eg_store_foreach_prefix(s, EG_NS_INDEX, "sub:*", collect_fn, &c), 0);
	assert_int_equal(c.n, 1); /* glob characters are literal */
	memset(&c, 0, sizeof(c));
	assert_int_equal(eg_store_foreach(s, EG_NS_INDEX, collect_fn, &c), 0);
	assert_int_equal(c.n, 5);
	/* invalid arguments */
	assert_int_equal(eg_store_put(s, EG_NS__COUNT, "k", "v", 1, 0), -1);
	assert_int_equal(eg_store_put(s, EG_NS_META, "", "v", 1, 0), -1);
	assert_true(eg_store_gc(s) >= 0);
}

static void test_lmdb(void **state)
{
	struct eg_store *s = open_lmdb();

	assert_string_equal(eg_store_backend(s), "lmdb");
	exercise(s);
	/* gc removes the expired keys physically */
	assert_int_equal(eg_store_put(s, EG_NS_BAN, "gone", "x", 1, time(NULL) - 10), 0);
	assert_true(eg_store_gc(s) >= 1);
	assert_int_equal(eg_store_gc(s), 0);
	assert_int_equal(eg_store_put(s, EG_NS_SESSION, "persist", "yes", 3, time(NULL) + 3600), 0);
	eg_store_close(s);
	/* a restart keeps everything */
	s = open_lmdb();
	void *v = NULL;
	size_t len;
	assert_int_equal(eg_store_get(s, EG_NS_SESSION, "persist", &v, &len, NULL), 1);
	assert_memory_equal(v, "yes", 3);
	free(v);
	eg_store_close(s);
}

static void test_lmdb_map_full_gc(void **state)
{
	char err[256], dir[300];
	char val[2048];

	snprintf(dir, sizeof(dir), "%s/small", tmpdir);
	struct eg_store *s = eg_store_wrap(&eg_store_lmdb_ops,
					   eg_store_lmdb_open(dir, 1 << 20, err, sizeof(err)));
	assert_non_null(s);
	memset(val, 'x', sizeof(val));
	int64_t past = time(NULL) - 1;
	int i, ok = 0;
	/* fill with expired entries until full; the next put must gc and succeed */
	for (i = 0; i < 2000; i++) {
		char k[32];
		snprintf(k, sizeof(k), "e%d", i);
		if (eg_store_put(s, EG_NS_STATE, k, val, sizeof(val), past) == 0)
			ok++;
	}
	assert_int_equal(ok, 2000);
	eg_store_close(s);
}

static void test_config_open(void **state)
{
	/* store.c picks LMDB under state_dir/store when no redis URL is configured */
	struct eg_config cfg;
	char dir[300], err[256] = "";
	struct stat st;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(dir, sizeof(dir), "%s/state", tmpdir);
	cfg.state_dir = dir;
	struct eg_store *s = eg_store_open(&cfg, err, sizeof(err));
	if (!s)
		fail_msg("open: %s", err);
	assert_string_equal(eg_store_backend(s), "lmdb");
	assert_int_equal(eg_store_put(s, EG_NS_META, "k", "v", 1, 0), 0);
	eg_store_close(s);
	snprintf(dir, sizeof(dir), "%s/state/store/data.mdb", tmpdir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0077, 0);
	/* a redis URL that does not parse is an error, not a silent fallback */
	cfg.store.redis = "redis://";
	assert_null(eg_store_open(&cfg, err, sizeof(err)));
}

static int start_redis(void)
{
	char port[16], dir[300];

	if (access("/usr/bin/redis-server", X_OK) != 0)
		return -1;
	srand((unsigned)getpid());
	redis_port = 20000 + rand() % 20000;
	snprintf(port, sizeof(port), "%d", redis_port);
	snprintf(dir, sizeof(dir), "%s", tmpdir);
	redis_pid = fork();
	if (redis_pid == 0) {
		int fd = open("/dev/null", 1);
		dup2(fd, 1);
		dup2(fd, 2);
		execl("/usr/bin/redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
		      "--save", "", "--appendonly", "no", "--dir", dir, (char *)NULL);
		_exit(127);
	}
	return redis_pid > 0 ? 0 : -1;
}

static void test_redis(void **state)
{
	if (!redis_pid) {
		if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
			fail_msg("redis-server not installed");
		skip();
	}
	struct eg_store *s = open_redis();
	assert_string_equal(eg_store_backend(s), "redis");
	exercise(s);
	/* Redis expires by itself */
	assert_int_equal(eg_store_put(s, EG_NS_BAN, "short", "x", 1, time(NULL) + 1), 0);
	sleep(2);
	void *v = NULL;
	assert_int_equal(eg_store_get(s, EG_NS_BAN, "short", &v, NULL, NULL), 0);
	eg_store_close(s);
	char err[128];
	assert_null(eg_store_redis_open("http://x", NULL, err, sizeof(err)));
	assert_null(eg_store_redis_open("redis://127.0.0.1:1/0", NULL, err, sizeof(err)));
}

/* Issue 17: a reconnect whose SELECT fails must be a failed connection, not a
 * connection left on database 0. The ACL takes SELECT away from the default user and
 * every client is killed: the store's reconnect then fails its SELECT. */
static redisReply *admin_cmd(redisContext *c, const char *fmt, const char *arg)
{
	redisReply *r = arg ? redisCommand(c, fmt, arg) : redisCommand(c, fmt);
	if (!r || r->type == REDIS_REPLY_ERROR)
		fail_msg("redis admin command %s failed: %s", fmt, r ? r->str : c->errstr);
	return r;
}

static void test_redis_select_after_reconnect(void **state)
{
	if (!redis_pid) {
		if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
			fail_msg("redis-server not installed");
		skip();
	}
	char err[256] = "", url[64];
	struct timeval tv = { 2, 0 };
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", redis_port);
	struct eg_store *s = NULL;
	for (int i = 0; i < 50 && !s; i++) {
		void *impl = eg_store_redis_open(url, "egsel:", err, sizeof(err));
		s = impl ? eg_store_wrap(&eg_store_redis_ops, impl) : NULL;
		if (!s)
			usleep(100000);
	}
	assert_non_null(s);
	assert_int_equal(eg_store_put(s, EG_NS_META, "before", "1", 1, 0), 0);
	redisContext *adm = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
	assert_true(adm && !adm->err);
	freeReplyObject(admin_cmd(adm, "ACL SETUSER default -select", NULL));
	freeReplyObject(admin_cmd(adm, "CLIENT KILL TYPE normal SKIPME yes", NULL));
	/* every write while SELECT fails is refused, the first and all that follow */
	for (int i = 0; i < 3; i++)
		assert_int_equal(eg_store_put(s, EG_NS_META, "during", "1", 1, 0), -1);
	void *v = NULL;
	assert_int_equal(eg_store_get(s, EG_NS_META, "before", &v, NULL, NULL), -1);
	/* nothing landed in database 0 */
	redisReply *r = admin_cmd(adm, "EXISTS %s", "egsel:meta:during");
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	freeReplyObject(admin_cmd(adm, "ACL SETUSER default +select", NULL));
	/* SELECT works again: once the fail-fast second is over, the next command
	 * reconnects onto database 3 */
	usleep(1100000);
	assert_int_equal(eg_store_put(s, EG_NS_META, "after", "1", 1, 0), 0);
	assert_int_equal(eg_store_get(s, EG_NS_META, "before", &v, NULL, NULL), 1);
	free(v);
	r = admin_cmd(adm, "EXISTS %s", "egsel:meta:after");
	assert_int_equal(r->integer, 0); /* not in database 0 */
	freeReplyObject(r);
	freeReplyObject(admin_cmd(adm, "SELECT 3", NULL));
	r = admin_cmd(adm, "EXISTS %s", "egsel:meta:after");
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	redisFree(adm);
	eg_store_close(s);
}

/* The local revocation tombstones: persisted, confirmed, a torn last line, restart. */
static void test_tombstones(void **state)
{
	char err[256], dir[300], path[340];
	int64_t now = time(NULL);

	snprintf(dir, sizeof(dir), "%s/tombs", tmpdir);
	struct eg_tombs *t = eg_tombs_open(dir, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(eg_tombs_note(t, "aaaa", "sign_out", "alice", now, now + 3600), 0);
	assert_int_equal(eg_tombs_note(t, "bbbb", "admin", NULL, now, now + 3600), 0);
	assert_int_equal(eg_tombs_note(t, "cccc", "admin", NULL, now, now + 3600), 0);
	assert_true(eg_tombs_has(t, "cccc")); /* noted only: in memory */
	assert_int_equal(eg_tombs_pending_count(t), 0);
	assert_int_equal(eg_tombs_persist(t, "aaaa"), 0);
	assert_int_equal(eg_tombs_persist(t, "bbbb"), 0);
	assert_int_equal(eg_tombs_pending_count(t), 2);
	eg_tombs_confirm(t, "bbbb");
	assert_int_equal(eg_tombs_pending_count(t), 1);
	struct eg_tomb v[4];
	assert_int_equal(eg_tombs_pending(t, v, 4), 1);
	assert_string_equal(v[0].id, "aaaa");
	assert_string_equal(v[0].reason, "sign_out");
	assert_string_equal(v[0].sub, "alice");
	eg_tomb_clear(&v[0]);
	/* noted-only and confirmed entries are forgotten after the memory window */
	assert_int_equal(eg_tombs_sweep(t, now + 200, 120), 2);
	assert_true(eg_tombs_has(t, "aaaa"));
	assert_false(eg_tombs_has(t, "cccc"));
	eg_tombs_close(t);
	/* a crash in the middle of an append: the torn line was never acknowledged */
	snprintf(path, sizeof(path), "%s/revoked.tombs", dir);
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs("{\"id\":\"dddd\",\"reason\":\"adm", f);
	fclose(f);
	t = eg_tombs_open(dir, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(eg_tombs_pending_count(t), 1);
	assert_true(eg_tombs_has(t, "aaaa"));
	assert_false(eg_tombs_has(t, "bbbb"));
	assert_false(eg_tombs_has(t, "dddd"));
	/* the file was rewritten with the pending entry only */
	size_t len;
	char *data = read_file(path, 1 << 20, &len);
	assert_non_null(data);
	assert_non_null(strstr(data, "aaaa"));
	assert_null(strstr(data, "bbbb"));
	assert_null(strstr(data, "dddd"));
	free(data);
	/* expired ones are dropped */
	assert_int_equal(eg_tombs_sweep(t, now + 7200, 120), 1);
	assert_int_equal(eg_tombs_pending_count(t), 0);
	eg_tombs_close(t);
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/eg-test-store-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	if (start_redis() != 0)
		redis_pid = 0;
	return 0;
}

static int teardown(void **state)
{
	char cmd[400];

	if (redis_pid > 0) {
		kill(redis_pid, SIGTERM);
		waitpid(redis_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Issue 12: an outage is declared by the first failing command (a server paused with
 * SIGSTOP: a timeout), every later command fails at once, and the prober notices the
 * end; events are published to the stream with the publishing node's id. */
static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_redis_outage_and_events(void **state)
{
	if (!redis_pid) {
		if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
			fail_msg("redis-server not installed");
		skip();
	}
	char err[256], url[64];
	struct timespec t0;
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
	struct eg_store_redis_opts o = { .url = url, .prefix = "egout:", .timeout_ms = 200, .stream_maxlen = 1000 };
	struct eg_store *s = eg_store_wrap(&eg_store_redis_ops, eg_store_redis_open_ex(&o, err, sizeof(err)));
	assert_non_null(s);
	assert_int_equal(eg_store_publish(s, "revoke", "abc", "{\"reason\":\"admin\"}"), 0);
	redisContext *c = eg_store_redis_dial(eg_store_impl(s), 1000, err, sizeof(err));
	assert_non_null(c);
	redisReply *r = redisCommand(c, "XRANGE %s - +", eg_store_redis_stream(eg_store_impl(s)));
	assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	redisReply *f = r->element[0]->element[1];
	assert_int_equal(f->elements, 8);
	assert_string_equal(f->element[1]->str, "revoke");
	assert_string_equal(f->element[3]->str, "abc");
	assert_string_equal(f->element[7]->str, eg_store_node(s));
	freeReplyObject(r);
	redisFree(c);
	assert_int_equal(eg_store_down_since_ms(s), 0);

	kill(redis_pid, SIGSTOP);
	void *v = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(eg_store_get(s, EG_NS_META, "x", &v, NULL, NULL), -1);
	double first = ms_since(&t0);
	assert_true(first < 1000); /* store.timeout, one reconnect at most */
	assert_true(eg_store_down_since_ms(s) > 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(eg_store_put(s, EG_NS_META, "x", "1", 1, 0), -1);
	assert_int_equal(eg_store_publish(s, "ban", "198.51.100.7", "{}"), -1);
	assert_true(ms_since(&t0) < 50); /* failed at once, not 100 timeouts */
	kill(redis_pid, SIGCONT);
	for (int i = 0; i < 50 && eg_store_down_since_ms(s); i++)
		usleep(50000);
	assert_int_equal(eg_store_down_since_ms(s), 0);
	assert_int_equal(eg_store_put(s, EG_NS_META, "x", "1", 1, 0), 0);
	assert_int_equal(eg_store_get(s, EG_NS_META, "x", &v, NULL, NULL), 1);
	free(v);
	eg_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lmdb),
		cmocka_unit_test(test_lmdb_map_full_gc),
		cmocka_unit_test(test_config_open),
		cmocka_unit_test(test_redis),
		cmocka_unit_test(test_redis_select_after_reconnect),
		cmocka_unit_test(test_redis_outage_and_events),
		cmocka_unit_test(test_tombstones),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
