/* test_abuse.c - failed-verdict counting, canonical sources, bans with exponential
 * back-off and a cap, expiry, allowlists, verdict rate limits (configured and the
 * gate.syn_rate fallback when no gate is attached), persistence across a restart. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "abuse.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "store.h"

#define S 1000000000ll

static char tmpdir[256];
static struct eg_config cfg;
static struct eg_daemon d;
static struct eg_prefix allow[1], trusted[1];

static void addr(const char *s, uint8_t out[16])
{
	assert_int_equal(eg_addr_parse(s, out), 0);
}

static void fail_n(const char *ip, int n)
{
	uint8_t a[16];
	addr(ip, a);
	for (int i = 0; i < n; i++)
		eg_abuse_note(&d, a, 401, "signature");
}

/* 0 = may proceed, otherwise 1 and the reason */
static int blocked(const char *ip, const char **why)
{
	uint8_t a[16];
	const char *w = NULL;
	addr(ip, a);
	int rc = eg_abuse_check(&d, a, &w);
	if (why)
		*why = w;
	return rc != 0;
}

static void start(void)
{
	char err[256];
	if (!d.store) {
		d.store = eg_store_open(&cfg, err, sizeof(err));
		assert_non_null(d.store);
	}
	assert_int_equal(eg_abuse_init(&d, err, sizeof(err)), 0);
}

static int setup_each(void **state)
{
	eg_log_set_level("error");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/eg-test-abuse-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	memset(&cfg, 0, sizeof(cfg));
	memset(&d, 0, sizeof(d));
	cfg.state_dir = tmpdir;
	cfg.gate.ban_threshold = 5;
	cfg.gate.ban_window_s = 60;
	cfg.gate.ban_time_s = 10;
	cfg.gate.ban_max_s = 40;
	cfg.gate.ipv6_group_plen = 64;
	eg_parse_prefix("198.18.9.0/24", &allow[0]);
	cfg.gate.allow = allow;
	cfg.gate.n_allow = 1;
	eg_parse_prefix("127.0.0.0/8", &trusted[0]);
	cfg.trusted_proxies = trusted;
	cfg.n_trusted_proxies = 1;
	d.cfg = &cfg;
	return 0;
}

static int teardown_each(void **state)
{
	char cmd[300];
	eg_abuse_free(&d);
	if (d.store)
		eg_store_close(d.store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_counts(void **state)
{
	assert_true(eg_abuse_counts(401, "signature"));
	assert_true(eg_abuse_counts(401, "malformed_token"));
	assert_true(eg_abuse_counts(401, "malformed"));
	assert_true(eg_abuse_counts(401, "alg"));
	assert_true(eg_abuse_counts(401, "forged_session"));
	assert_true(eg_abuse_counts(401, "certificate_binding"));
	assert_true(eg_abuse_counts(403, "bad_client_cert"));
	assert_true(eg_abuse_counts(403, "certificate_revoked"));
	/* expiry and sessions that ended normally are not attacks (issue 11) */
	assert_false(eg_abuse_counts(401, "expired"));
	assert_false(eg_abuse_counts(401, "session_ended"));
	assert_false(eg_abuse_counts(401, "invalid_session"));
	assert_false(eg_abuse_counts(403, "certificate_expired"));
	assert_false(eg_abuse_counts(401, "session_store_unavailable"));
	assert_false(eg_abuse_counts(401, NULL));
	assert_false(eg_abuse_counts(401, "issuer"));
	assert_false(eg_abuse_counts(401, "audience"));
	/* not credential guessing */
	assert_false(eg_abuse_counts(401, "no_identity"));
	assert_false(eg_abuse_counts(401, "no_key"));
	assert_false(eg_abuse_counts(401, "not_yet"));
	assert_false(eg_abuse_counts(403, "no_route"));
	assert_false(eg_abuse_counts(403, "not_allowed"));
	assert_false(eg_abuse_counts(403, "client_cert_missing"));
	assert_false(eg_abuse_counts(200, "allowed"));
}

static void test_canonical(void **state)
{
	struct eg_prefix a, b;
	uint8_t x[16], y[16];

	addr("198.18.0.7", x);
	addr("::ffff:198.18.0.7", y);
	eg_abuse_canonical(&cfg, x, &a);
	eg_abuse_canonical(&cfg, y, &b);
	assert_int_equal(a.plen, 128);
	assert_memory_equal(a.addr, b.addr, 16);

	addr("2001:db8:1:2:aaaa::1", x);
	addr("2001:db8:1:2:bbbb:cccc:dddd:eeee", y);
	eg_abuse_canonical(&cfg, x, &a);
	eg_abuse_canonical(&cfg, y, &b);
	assert_int_equal(a.plen, 64);
	assert_memory_equal(a.addr, b.addr, 16);
	addr("2001:db8:1:3::1", y);
	eg_abuse_canonical(&cfg, y, &b);
	assert_memory_not_equal(a.addr, b.addr, 16);

	cfg.gate.ipv6_group_plen = 48;
	eg_abuse_canonical(&cfg, x, &a);
	eg_abuse_canonical(&cfg, y, &b);
	assert_int_equal(b.plen, 48);
	assert_memory_equal(a.addr, b.addr, 16);
}

static void test_ban_threshold_and_expiry(void **state)
{
	const char *why;

	start();
	fail_n("198.18.0.2", 4);
	assert_false(blocked("198.18.0.2", NULL));
	fail_n("198.18.0.2", 1);
	assert_true(blocked("198.18.0.2", &why));
	assert_string_equal(why, "banned");
	/* the same source in another notation */
	assert_true(blocked("::ffff:198.18.0.2", NULL));
	/* a different client is unaffected */
	assert_false(blocked("198.18.0.3", NULL));
	assert_int_equal(eg_abuse_bans_active(&d), 1);
	json_t *l = eg_abuse_bans_json(&d);
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "prefix")), "198.18.0.2");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "ttl_s")), 10);
	json_decref(l);

	eg_abuse_set_clock_offset(&d, 9 * S);
	assert_true(blocked("198.18.0.2", NULL));
	eg_abuse_set_clock_offset(&d, 11 * S);
	assert_false(blocked("198.18.0.2", NULL));
	assert_int_equal(eg_abuse_bans_active(&d), 0);
}

static void test_backoff_and_cap(void **state)
{
	static const int64_t want[] = { 10, 20, 40, 40 }; /* ban_time doubling, capped at ban_max */
	int64_t t = 0;

	start();
	for (int i = 0; i < 4; i++) {
		eg_abuse_set_clock_offset(&d, t * S);
		fail_n("198.18.0.5", 5);
		assert_true(blocked("198.18.0.5", NULL));
		eg_abuse_set_clock_offset(&d, (t + want[i] - 1) * S);
		assert_true(blocked("198.18.0.5", NULL));
		eg_abuse_set_clock_offset(&d, (t + want[i] + 1) * S);
		assert_false(blocked("198.18.0.5", NULL));
		t += want[i] + 1;
	}
	/* reformed: after ban_max without a ban, back to the base time */
	t += 41;
	eg_abuse_set_clock_offset(&d, t * S);
	fail_n("198.18.0.5", 5);
	eg_abuse_set_clock_offset(&d, (t + 11) * S);
	assert_false(blocked("198.18.0.5", NULL));
}

static void test_window(void **state)
{
	start();
	fail_n("198.18.0.6", 4);
	eg_abuse_set_clock_offset(&d, 61 * S); /* the window restarts */
	fail_n("198.18.0.6", 4);
	assert_false(blocked("198.18.0.6", NULL));
	fail_n("198.18.0.6", 1);
	assert_true(blocked("198.18.0.6", NULL));
}

static void test_ipv6_group(void **state)
{
	start();
	fail_n("2001:db8:7:7::1", 3);
	fail_n("2001:db8:7:7::2", 2); /* another address in the same /64 */
	assert_true(blocked("2001:db8:7:7:ffff::9", NULL));
	assert_false(blocked("2001:db8:7:8::1", NULL));
}

static void test_allowlisted_never_banned(void **state)
{
	uint8_t a[16];
	start();
	fail_n("198.18.9.4", 50);
	assert_false(blocked("198.18.9.4", NULL));
	fail_n("127.0.0.1", 50); /* nginx itself (a trusted proxy) */
	assert_false(blocked("127.0.0.1", NULL));
	/* uncounted outcomes do not ban */
	addr("198.18.0.8", a);
	for (int i = 0; i < 50; i++) {
		eg_abuse_note(&d, a, 401, "no_identity");
		eg_abuse_note(&d, a, 403, "no_route");
		eg_abuse_note(&d, a, 200, "allowed");
	}
	assert_false(blocked("198.18.0.8", NULL));
	assert_int_equal(eg_abuse_bans_active(&d), 0);
}

static void test_threshold_zero_disables(void **state)
{
	cfg.gate.ban_threshold = 0;
	start();
	fail_n("198.18.0.2", 100);
	assert_false(blocked("198.18.0.2", NULL));
}

static void test_verdict_rate(void **state)
{
	const char *why;
	cfg.gate.verdict_rate = 5;
	cfg.gate.verdict_burst = 5;
	start();
	eg_abuse_set_clock_offset(&d, 1000 * S); /* a fixed instant: no refill during the loop */
	for (int i = 0; i < 5; i++)
		assert_false(blocked("198.18.0.10", NULL));
	assert_true(blocked("198.18.0.10", &why));
	assert_string_equal(why, "rate_limited");
	assert_false(blocked("198.18.0.11", NULL));
	eg_abuse_set_clock_offset(&d, 1000 * S + S / 5 + 1000); /* one token back */
	assert_false(blocked("198.18.0.10", NULL));
	assert_true(blocked("198.18.0.10", NULL));
	/* allowlisted: never limited */
	for (int i = 0; i < 20; i++)
		assert_false(blocked("198.18.9.9", NULL));
}

static void test_syn_rate_fallback_without_gate(void **state)
{
	cfg.gate.present = true; /* configured, but d.gate == NULL: not attached */
	cfg.gate.syn_rate = 3;
	cfg.gate.syn_burst = 3;
	start();
	eg_abuse_set_clock_offset(&d, 1000 * S);
	for (int i = 0; i < 3; i++)
		assert_false(blocked("198.18.0.12", NULL));
	assert_true(blocked("198.18.0.12", NULL));
}

/* issue 11: expiry and ended sessions never ban; gate.never_ban; bans say why */
static void test_attacks_not_expiry(void **state)
{
	struct eg_prefix nb[1];
	uint8_t a[16];

	eg_parse_prefix("198.18.7.7/32", &nb[0]);
	cfg.gate.never_ban = nb;
	cfg.gate.n_never_ban = 1;
	start();
	addr("198.18.0.30", a);
	for (int i = 0; i < 100; i++) {
		eg_abuse_note(&d, a, 401, "expired");
		eg_abuse_note(&d, a, 401, "session_ended");
		eg_abuse_note(&d, a, 403, "certificate_expired");
	}
	assert_false(blocked("198.18.0.30", NULL));
	/* the admin's own address: attacks from it are refused, never banned or limited */
	fail_n("198.18.7.7", 50);
	assert_false(blocked("198.18.7.7", NULL));
	assert_int_equal(eg_abuse_bans_active(&d), 0);
	/* a mix of attacks bans, and the ban says why */
	addr("198.18.0.31", a);
	eg_abuse_note(&d, a, 401, "forged_session");
	eg_abuse_note(&d, a, 401, "expired"); /* not counted, not listed */
	eg_abuse_note(&d, a, 401, "forged_session");
	eg_abuse_note(&d, a, 401, "signature");
	eg_abuse_note(&d, a, 403, "bad_client_cert");
	assert_false(blocked("198.18.0.31", NULL));
	eg_abuse_note(&d, a, 401, "forged_session");
	assert_true(blocked("198.18.0.31", NULL));
	json_t *bans = eg_abuse_bans_json(&d);
	assert_int_equal(json_array_size(bans), 1);
	json_t *b = json_array_get(bans, 0);
	char *why = json_dumps(json_object_get(b, "reasons"), JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(why, "{\"bad_client_cert\":1,\"forged_session\":3,\"signature\":1}");
	free(why);
	int64_t first = json_integer_value(json_object_get(b, "first_offense"));
	int64_t last = json_integer_value(json_object_get(b, "last_offense"));
	assert_true(first > 0 && last >= first);
	json_decref(bans);
	/* the reasons survive a restart (they are in the ban record) */
	eg_abuse_free(&d);
	start();
	bans = eg_abuse_bans_json(&d);
	assert_int_equal(json_array_size(bans), 1);
	b = json_array_get(bans, 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "reasons"), "forged_session")), 3);
	assert_int_equal(json_integer_value(json_object_get(b, "first_offense")), first);
	json_decref(bans);
	cfg.gate.never_ban = NULL;
	cfg.gate.n_never_ban = 0;
}

static void test_persisted_across_restart(void **state)
{
	start();
	fail_n("198.18.0.20", 5);
	assert_true(blocked("198.18.0.20", NULL));
	void *val = NULL;
	size_t len;
	assert_int_equal(eg_store_get(d.store, EG_NS_BAN, "198.18.0.20", &val, &len, NULL), 1);
	json_t *j = json_loadb(val, len, 0, NULL);
	free(val);
	assert_int_equal(json_integer_value(json_object_get(j, "offenses")), 1);
	json_decref(j);

	eg_abuse_free(&d); /* restart */
	start();
	assert_true(blocked("198.18.0.20", NULL));
	assert_false(blocked("198.18.0.21", NULL));
	/* the offence count survived: the next ban is doubled */
	eg_abuse_set_clock_offset(&d, 11 * S);
	assert_false(blocked("198.18.0.20", NULL));
	fail_n("198.18.0.20", 5);
	eg_abuse_set_clock_offset(&d, 30 * S);
	assert_true(blocked("198.18.0.20", NULL));
	eg_abuse_set_clock_offset(&d, 32 * S);
	assert_false(blocked("198.18.0.20", NULL));
}

static void test_unban(void **state)
{
	struct eg_prefix p;
	start();
	fail_n("198.18.0.30", 5);
	assert_true(blocked("198.18.0.30", NULL));
	eg_parse_prefix("198.18.0.30", &p);
	assert_int_equal(eg_abuse_unban(&d, &p), 0);
	assert_false(blocked("198.18.0.30", NULL));
	assert_int_equal(eg_abuse_unban(&d, &p), -1);
	/* and it is gone from the store: not re-applied after a restart */
	eg_abuse_free(&d);
	start();
	assert_false(blocked("198.18.0.30", NULL));
}

static void test_gc_keeps_bans(void **state)
{
	start();
	fail_n("198.18.0.41", 1);
	eg_abuse_set_clock_offset(&d, 30 * S);
	fail_n("198.18.0.40", 5); /* banned 30..40 */
	eg_abuse_set_clock_offset(&d, 61 * S);
	long removed = eg_abuse_gc(&d);
	assert_int_equal(removed, 1); /* .41 idle; .40 remembered as an offender */
	assert_false(blocked("198.18.0.40", NULL));
	fail_n("198.18.0.40", 5); /* second offence: 20 s */
	eg_abuse_set_clock_offset(&d, 80 * S);
	assert_true(blocked("198.18.0.40", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test_setup_teardown(test_canonical, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_ban_threshold_and_expiry, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_backoff_and_cap, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_window, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_ipv6_group, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_allowlisted_never_banned, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_threshold_zero_disables, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_verdict_rate, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_syn_rate_fallback_without_gate, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_attacks_not_expiry, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_persisted_across_restart, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_unban, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(test_gc_keeps_bans, setup_each, teardown_each),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
