/* test_gate.c - the XDP edge gate through BPF_PROG_TEST_RUN with crafted frames.
 *
 * Loads the real program with eg_gate_load() (maps pinned under a private
 * /sys/fs/bpf/edgegate-test-<pid>), runs every frame once and checks both the XDP
 * action and that exactly the expected per-reason counter moved by one.
 * Needs root (BPF); without it: a TAP skip, or a failure under CI=true. */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <sys/wait.h>
#include <sys/file.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "testutil.h"
#include "config.h"
#include "gate.h"
#include "abuse.h"
#include "daemon.h"
#include "pkt.h"
#include "store.h"

#define PROT 443   /* protected port */
#define OPEN 8080  /* unprotected port */
#define DST4 "198.18.0.1"
#define DST6 "2001:db8:ffff::1"

static struct eg_gate *G;
static char pin_root[128];
static uint16_t ports[] = { PROT };

static struct eg_gate_config gcfg(void)
{
	struct eg_gate_config c = {
		.present = true,
		.pin_root = pin_root,
		.protected_ports = ports,
		.n_protected_ports = 1,
		.syn_rate = 10, /* T = 100 ms */
		.syn_burst = 5,
		.max_sources = 1024,
		.max_deny = 4096,
		.ipv6_group_plen = 64,
	};
	return c;
}

static void rm_pins(void)
{
	static const char *names[] = { EG_MAP_CFG, EG_MAP_PORTS, EG_MAP_DENY4, EG_MAP_ALLOW4,
				       EG_MAP_DENY6, EG_MAP_ALLOW6, EG_MAP_DENY4_IDX,
				       EG_MAP_ALLOW4_IDX, EG_MAP_DENY4_SLOTS, EG_MAP_DENY6_IDX, EG_MAP_TABLES, EG_MAP_NOTES, EG_MAP_RATE,
				       EG_MAP_FLOWS, EG_MAP_SESSIONS, EG_MAP_STATS, EG_MAP_FLOWSLOTS,
				       EG_MAP_FLOOD, EG_MAP_SYNBOX, EG_MAP_DENY6S, EG_MAP_DENY6S_SLOTS,
				       EG_MAP_DENY6_SLOTS, EG_MAP_ALLOW4_SLOTS,
				       EG_MAP_ALLOW6_IDX, EG_MAP_ALLOW6S_SLOTS, EG_MAP_ALLOW6_SLOTS };
	char p[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", pin_root, names[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/eg_wlock", pin_root); /* the writers' lock directory */
	rmdir(p);
	rmdir(pin_root);
}

static int setup(void **state)
{
	struct eg_gate_config c = gcfg();
	char err[256];

	G = eg_gate_load(&c, err, sizeof(err));
	if (!G)
		fprintf(stderr, "# %s\n", err);
	return G ? 0 : -1;
}

static int teardown(void **state)
{
	eg_gate_close(G);
	G = NULL;
	rm_pins();
	return 0;
}

static struct eg_prefix P(const char *s)
{
	struct eg_prefix p;

	assert_int_equal(eg_gate_prefix_parse(s, &p), 0);
	return p;
}

static int eg_addr_parse_test(const char *s, uint8_t out[16])
{
	struct eg_prefix p;

	if (eg_gate_prefix_parse(s, &p) || p.plen != 128)
		return -1;
	memcpy(out, p.addr, 16);
	return 0;
}

static int run(const struct pk *p)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = (__u32)p->n,
		    .repeat = 1);
	int rc = bpf_prog_test_run_opts(eg_gate_prog_fd(G), &o);

	assert_int_equal(rc, 0);
	return (int)o.retval;
}

/* Runs the frame; asserts the action and that only `reason` (and `observed` when
 * asked) moved, by one. */
static void expect_ex(const struct pk *p, int action, unsigned reason, bool observed, int line)
{
	uint64_t a[EG_REASON__COUNT], b[EG_REASON__COUNT];
	int got;

	assert_int_equal(eg_gate_stats(G, a), 0);
	got = run(p);
	assert_int_equal(eg_gate_stats(G, b), 0);
	if (got != action)
		fail_msg("line %d: action %d, want %d", line, got, action);
	for (unsigned i = 0; i < EG_REASON__COUNT; i++) {
		uint64_t want = (i == reason || (observed && i == EG_REASON_OBSERVED)) ? 1 : 0;

		if (b[i] - a[i] != want)
			fail_msg("line %d: counter %s moved by %llu, want %llu (expected reason %s)",
				 line, eg_gate_reason_name(i), (unsigned long long)(b[i] - a[i]),
				 (unsigned long long)want, eg_gate_reason_name(reason));
	}
}
#define expect(p, act, why) expect_ex(p, act, why, false, __LINE__)

static void tcp4(struct pk *p, const char *src, uint16_t dport, uint8_t flags)
{
	pk_eth(p, NULL, 0, 0x0800);
	pk_ip4(p, src, DST4, 6, 0, 0, 20);
	pk_tcp(p, 40000, dport, flags);
}

static void tcp6(struct pk *p, const char *src, uint16_t sport, uint16_t dport, uint8_t flags)
{
	pk_eth(p, NULL, 0, 0x86dd);
	pk_ip6(p, src, DST6, 6, 20);
	pk_tcp(p, sport, dport, flags);
}

static void reset_clock(void)
{
	assert_int_equal(eg_gate_set_clock_offset(G, 0), 0);
}

/* --- tests ---------------------------------------------------------------------------- */

static void test_pass_and_nonip(void **s)
{
	struct pk p;

	tcp4(&p, "198.18.1.1", OPEN, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	pk_eth(&p, NULL, 0, 0x0806); /* ARP */
	pk_zero(&p, 28);
	expect(&p, XDP_PASS, EG_REASON_NONIP);
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.1.1", DST4, 1, 0, 0, 8);
	pk_icmp(&p, 8);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.1.1", DST4, 17, 0, 0, 8);
	pk_udp(&p, 5353, PROT);
	expect(&p, XDP_PASS, EG_REASON_PASS); /* UDP to a protected port, no pkt_rate */
}

static void test_deny_exact_vlan_qinq(void **s)
{
	static const uint16_t q[] = { 0x8100 }, qinq[] = { 0x88a8, 0x8100 },
			      three[] = { 0x88a8, 0x8100, 0x8100 };
	struct eg_prefix d = P("198.18.2.2");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	tcp4(&p, "198.18.2.2", OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);

	pk_eth(&p, q, 1, 0x0800);
	pk_ip4(&p, "198.18.2.2", DST4, 6, 0, 0, 20);
	pk_tcp(&p, 1, OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);

	pk_eth(&p, qinq, 2, 0x0800);
	pk_ip4(&p, "198.18.2.2", DST4, 17, 0, 0, 8);
	pk_udp(&p, 1, 53);
	expect(&p, XDP_DROP, EG_REASON_DENY);

	/* a third tag cannot be seen through: refused as malformed, never passed */
	pk_eth(&p, three, 3, 0x0800);
	pk_ip4(&p, "198.18.2.2", DST4, 17, 0, 0, 8);
	pk_udp(&p, 1, 53);
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);

	/* QinQ from a clean source passes */
	pk_eth(&p, qinq, 2, 0x0800);
	pk_ip4(&p, "198.18.2.3", DST4, 17, 0, 0, 8);
	pk_udp(&p, 1, 53);
	expect(&p, XDP_PASS, EG_REASON_PASS);

	assert_int_equal(eg_gate_deny_del(G, &d), 0);
	tcp4(&p, "198.18.2.2", OPEN, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_del(G, &d), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_deny_prefix_and_ban(void **s)
{
	struct eg_prefix net = P("198.18.3.0/24"), ban = P("198.18.4.4");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &net, 0, EG_RULE_ABUSE), 0);
	assert_int_equal(eg_gate_deny_add(G, &ban, 0, EG_RULE_BAN), 0);
	tcp4(&p, "198.18.3.77", OPEN, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* gate.ban_scope "protected" (the default): a ban drops the protected ports only */
	tcp4(&p, "198.18.4.4", OPEN, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp4(&p, "198.18.4.4", PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp4(&p, "198.18.5.77", OPEN, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);

	json_t *l = eg_gate_list_json(G, false);
	char *txt = json_dumps(l, JSON_SORT_KEYS | JSON_COMPACT);
	assert_non_null(strstr(txt, "\"prefix\":\"198.18.3.0/24\",\"reason\":\"abuse\",\"ttl\":-1"));
	assert_non_null(strstr(txt, "\"prefix\":\"198.18.4.4\",\"reason\":\"ban\""));
	free(txt);
	json_decref(l);
	assert_int_equal(eg_gate_deny_del(G, &net), 0);
	assert_int_equal(eg_gate_deny_del(G, &ban), 0);
	tcp4(&p, "198.18.3.77", OPEN, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
}

static void test_ipv6_ext_headers(void **s)
{
	struct eg_prefix d = P("2001:db8:bad::/48"), e = P("2001:db8:1::66");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &e, 0, EG_RULE_MANUAL), 0);

	/* hop-by-hop -> routing -> dest-opts -> fragment(first) -> TCP */
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:bad:1::9", DST6, 0, 8 + 16 + 8 + 8 + 20);
	pk_ext6(&p, 43, 0);
	pk_ext6(&p, 60, 1);
	pk_ext6(&p, 44, 0);
	pk_frag6(&p, 6, 0, 1);
	pk_tcp(&p, 1, PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);

	/* exact /128 behind a dest-opts header, ICMPv6 */
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:1::66", DST6, 60, 16);
	pk_ext6(&p, 58, 0);
	pk_icmp(&p, 128);
	expect(&p, XDP_DROP, EG_REASON_DENY);

	/* a clean source behind dest-opts x2 reaches L4 and passes */
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:2::1", DST6, 0, 8 + 8 + 20);
	pk_ext6(&p, 60, 0);
	pk_ext6(&p, 6, 0);
	pk_tcp(&p, 1, OPEN, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);

	/* chain of 9 extension headers: longer than we walk -> malformed */
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:2::1", DST6, 60, 9 * 8 + 20);
	for (int i = 0; i < 9; i++)
		pk_ext6(&p, i == 8 ? 6 : 60, 0);
	pk_tcp(&p, 1, OPEN, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);

	/* (the chain is part of L3 parsing: an over-long chain is malformed even when
	 * its source is denied; either way it is dropped) */

	/* AH then TCP */
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:bad::5", DST6, 51, 16 + 20);
	pk_u8(&p, 6);
	pk_u8(&p, 2); /* (2+2)*4 = 16 bytes */
	pk_zero(&p, 14);
	pk_tcp(&p, 1, OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);

	assert_int_equal(eg_gate_deny_del(G, &d), 0);
	assert_int_equal(eg_gate_deny_del(G, &e), 0);
}

static void test_ipv4_options(void **s)
{
	struct eg_prefix d = P("198.18.6.6");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.6.6", DST4, 6, 40, 0, 20); /* IHL 15 */
	pk_tcp(&p, 1, PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &d), 0);

	/* with options the ports are read after them: 6 SYNs from one source to the
	 * protected port: the 6th is over the burst of 5 */
	for (int i = 0; i < 6; i++) {
		pk_eth(&p, NULL, 0, 0x0800);
		pk_ip4(&p, "198.18.6.7", DST4, 6, 8, 0, 20);
		pk_tcp(&p, (uint16_t)(1000 + i), PROT, PK_SYN);
		expect(&p, i < 5 ? XDP_PASS : XDP_DROP,
		       i < 5 ? EG_REASON_PASS : EG_REASON_RATELIMIT);
	}
}

static void test_fragments(void **s)
{
	struct eg_prefix d = P("198.18.7.7"), d6 = P("2001:db8:7::7");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &d6, 0, EG_RULE_MANUAL), 0);
	/* non-first fragment from a denied source: dropped (source check first) */
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.7.7", DST4, 6, 0, 185, 20); /* offset 185*8 */
	pk_tcp(&p, 1, PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);

	/* non-first fragments whose payload looks like a SYN to the protected port,
	 * from a clean source: never read as L4, so never rate limited */
	for (int i = 0; i < 8; i++) {
		pk_eth(&p, NULL, 0, 0x0800);
		pk_ip4(&p, "198.18.7.8", DST4, 6, 0, 0x2000 | 10, 20); /* MF, offset 80 */
		pk_tcp(&p, 1, PROT, PK_SYN);
		expect(&p, XDP_PASS, EG_REASON_PASS);
	}
	/* a non-first fragment too short to hold a TCP header is not malformed */
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.7.8", DST4, 6, 0, 10, 4);
	pk_zero(&p, 4);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* first fragment: L4 read; truncated L4 in it is malformed */
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.7.8", DST4, 6, 0, 0x2000, 8);
	pk_zero(&p, 8);
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);

	/* IPv6 fragment header: later fragment from denied source, and clean */
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:7::7", DST6, 44, 8 + 20);
	pk_frag6(&p, 6, 100, 0);
	pk_tcp(&p, 1, PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	for (int i = 0; i < 8; i++) {
		pk_eth(&p, NULL, 0, 0x86dd);
		pk_ip6(&p, "2001:db8:7::8", DST6, 44, 8 + 20);
		pk_frag6(&p, 6, 100, 1);
		pk_tcp(&p, 1, PROT, PK_SYN);
		expect(&p, XDP_PASS, EG_REASON_PASS);
	}
	assert_int_equal(eg_gate_deny_del(G, &d), 0);
	assert_int_equal(eg_gate_deny_del(G, &d6), 0);
}

static void test_truncated(void **s)
{
	static const uint16_t q[] = { 0x8100 };
	struct eg_prefix d = P("198.18.8.8");
	struct pk p, full;

	/* Ethernet: shorter than a header (the kernel may refuse < 14 bytes) */
	tcp4(&full, "198.18.8.9", PROT, PK_SYN);
	/* VLAN tag cut */
	pk_eth(&p, q, 1, 0x0800);
	p.n = 14 + 2;
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	/* IPv4 header cut at every length 0..19 */
	for (size_t cut = 14; cut < 14 + 20; cut++) {
		p = full;
		p.n = cut;
		expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	}
	/* IHL < 5 */
	p = full;
	p.b[14] = 0x44;
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	/* wrong version */
	p = full;
	p.b[14] = 0x65;
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	/* IHL 15 but only 20 bytes of header + 20 of TCP (options cut) */
	p = full;
	p.b[14] = 0x4f;
	p.n = 14 + 40 + 10;
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	/* total length smaller than the header */
	p = full;
	p.b[14 + 2] = 0;
	p.b[14 + 3] = 12;
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	/* TCP header cut at every length 0..19 */
	for (size_t cut = 34; cut < 34 + 20; cut++) {
		p = full;
		p.n = cut;
		expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	}
	/* TCP data offset < 5 */
	p = full;
	p.b[34 + 12] = 0x40;
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	/* UDP and ICMP cut */
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.8.9", DST4, 17, 0, 0, 8);
	pk_zero(&p, 7);
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.8.9", DST4, 1, 0, 0, 8);
	pk_zero(&p, 3);
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	/* IPv6 header cut at every length, then ext header cut, then TCP cut */
	tcp6(&full, "2001:db8:8::9", 1, PROT, PK_SYN);
	for (size_t cut = 14; cut < 14 + 40; cut++) {
		p = full;
		p.n = cut;
		expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	}
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:8::9", DST6, 0, 16);
	pk_ext6(&p, 6, 1); /* claims 16 bytes */
	p.n -= 9;
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:8::9", DST6, 44, 8);
	pk_frag6(&p, 6, 0, 1);
	p.n -= 1;
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	p = full;
	p.n = 14 + 40 + 19;
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:8::9", DST6, 58, 4);
	pk_zero(&p, 3);
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);

	/* A denied source with a truncated TCP header is counted as denied: the
	 * source check comes before L4 parsing. */
	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	tcp4(&p, "198.18.8.8", PROT, PK_SYN);
	p.n = 34 + 5;
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &d), 0);

	/* Ethernet header itself cut: the test runner may refuse frames < 14 bytes */
	p = full;
	p.n = 13;
	{
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p.b, .data_size_in = 13, .repeat = 1);
		int rc = bpf_prog_test_run_opts(eg_gate_prog_fd(G), &o);

		if (rc == 0)
			assert_int_equal(o.retval, XDP_DROP);
		else
			assert_int_equal(rc, -EINVAL);
	}
}

static void test_observe(void **s)
{
	struct eg_prefix d = P("198.18.9.9");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_set_observe(G, true), 0);
	tcp4(&p, "198.18.9.9", OPEN, PK_ACK);
	expect_ex(&p, XDP_PASS, EG_REASON_DENY, true, __LINE__);
	p.n = 20;
	expect_ex(&p, XDP_PASS, EG_REASON_MALFORMED, true, __LINE__);
	assert_int_equal(eg_gate_set_observe(G, false), 0);
	tcp4(&p, "198.18.9.9", OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &d), 0);
}

static void test_allow_bypass(void **s)
{
	struct eg_prefix dn = P("198.18.10.0/24"), al = P("198.18.10.10"),
			 al6 = P("2001:db8:a::/64"), dn6 = P("2001:db8:a::/48");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &dn, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_allow_add(G, &al, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &dn6, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_allow_add(G, &al6, 0, EG_RULE_MANUAL), 0);
	tcp4(&p, "198.18.10.10", PROT, PK_SYN);
	for (int i = 0; i < 10; i++) /* allowed: no rate limit either */
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp4(&p, "198.18.10.11", PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:a::5", 1, PROT, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "2001:db8:a:1::5", 1, PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_allow_list(G, NULL, NULL), 2);
	assert_int_equal(eg_gate_allow_del(G, &al), 0);
	assert_int_equal(eg_gate_allow_del(G, &al6), 0);
	assert_int_equal(eg_gate_deny_del(G, &dn), 0);
	assert_int_equal(eg_gate_deny_del(G, &dn6), 0);
}

static void test_expiry_and_gc(void **s)
{
	struct eg_prefix d = P("198.18.11.11"), n = P("198.18.12.0/24");
	struct pk p;

	reset_clock();
	assert_int_equal(eg_gate_deny_add(G, &d, 10, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &n, 20, EG_RULE_MANUAL), 0);
	tcp4(&p, "198.18.11.11", OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp4(&p, "198.18.12.1", OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_gc(G), 0); /* nothing expired yet */

	assert_int_equal(eg_gate_set_clock_offset(G, 11000000000ll), 0);
	tcp4(&p, "198.18.11.11", OPEN, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp4(&p, "198.18.12.1", OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_list(G, NULL, NULL), 1);
	assert_int_equal(eg_gate_gc(G), 1);

	assert_int_equal(eg_gate_set_clock_offset(G, 21000000000ll), 0);
	tcp4(&p, "198.18.12.1", OPEN, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_gc(G), 1);
	assert_int_equal(eg_gate_deny_list(G, NULL, NULL), 0);
	reset_clock();
}

static void test_rate_limit_refill(void **s)
{
	struct pk p;

	reset_clock();
	tcp4(&p, "198.18.13.1", PROT, PK_SYN);
	for (int i = 0; i < 5; i++)
		expect(&p, XDP_PASS, EG_REASON_PASS);
	expect(&p, XDP_DROP, EG_REASON_RATELIMIT);
	expect(&p, XDP_DROP, EG_REASON_RATELIMIT);
	/* only SYNs are charged: ACKs of established flows pass */
	tcp4(&p, "198.18.13.1", PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* SYN to an unprotected port: not limited */
	tcp4(&p, "198.18.13.1", OPEN, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* another source has its own bucket */
	tcp4(&p, "198.18.13.2", PROT, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);

	/* 150 ms later: one token (T = 100 ms) */
	assert_int_equal(eg_gate_set_clock_offset(G, 150000000ll), 0);
	tcp4(&p, "198.18.13.1", PROT, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	expect(&p, XDP_DROP, EG_REASON_RATELIMIT);
	/* 10 s later: a full burst again, not more */
	assert_int_equal(eg_gate_set_clock_offset(G, 10150000000ll), 0);
	for (int i = 0; i < 5; i++)
		expect(&p, XDP_PASS, EG_REASON_PASS);
	expect(&p, XDP_DROP, EG_REASON_RATELIMIT);

	/* IPv6 sources share a bucket per /64 */
	for (int i = 0; i < 5; i++) {
		char a[64];

		snprintf(a, sizeof(a), "2001:db8:13::%x", i + 1);
		tcp6(&p, a, 1, PROT, PK_SYN);
		expect(&p, XDP_PASS, EG_REASON_PASS);
	}
	tcp6(&p, "2001:db8:13::ffff", 1, PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_RATELIMIT);
	tcp6(&p, "2001:db8:13:1::1", 1, PROT, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	reset_clock();
}

/* The rate bucket's key (eg_rate_v1, read by operators with bpftool): an IPv4 source
 * IPv4-mapped, an IPv6 source cut to gate.ipv6_group_prefix (v6_plen) bits, at a
 * length under 64, of 64, and over 64. */
static bool rate_bucket_of(const char *addr)
{
	struct eg_prefix a = P(addr);
	struct eg_bucket b;

	return bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_RATE), a.addr, &b) == 0;
}

static void test_rate_key(void **s)
{
	static const struct { __u32 plen; const char *src, *key, *not_key; } v6[] = {
		{ 56, "2001:db8:16:ab:1:2:3:4", "2001:db8:16::", "2001:db8:16:ab::" },
		{ 64, "2001:db8:17:ab:1:2:3:4", "2001:db8:17:ab::", "2001:db8:17::" },
		{ 100, "2001:db8:18:0:1:2:3456:789a", "2001:db8:18:0:1:2:3000:0", "2001:db8:18:0:1:2::" },
		{ 128, "2001:db8:19::5", "2001:db8:19::5", "2001:db8:19::" },
	};
	int fd = eg_gate_map_fd(G, EG_MAP_CFG);
	struct eg_cfg c, old;
	__u32 z = 0;
	struct pk p;

	reset_clock();
	tcp4(&p, "198.18.16.77", PROT, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_true(rate_bucket_of("::ffff:198.18.16.77"));
	assert_false(rate_bucket_of("198.18.16.78"));
	assert_int_equal(bpf_map_lookup_elem(fd, &z, &old), 0);
	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		c = old;
		c.v6_plen = v6[i].plen;
		assert_int_equal(bpf_map_update_elem(fd, &z, &c, BPF_ANY), 0);
		tcp6(&p, v6[i].src, 1, PROT, PK_SYN);
		expect(&p, XDP_PASS, EG_REASON_PASS);
		if (!rate_bucket_of(v6[i].key) || rate_bucket_of(v6[i].not_key))
			fail_msg("/%u: %s not keyed %s", v6[i].plen, v6[i].src, v6[i].key);
	}
	assert_int_equal(bpf_map_update_elem(fd, &z, &old, BPF_ANY), 0);
}

static void test_pkt_rate(void **s)
{
	int fd = eg_gate_map_fd(G, EG_MAP_CFG);
	struct eg_cfg c, old;
	__u32 z = 0;
	struct pk p;

	reset_clock();
	assert_int_equal(bpf_map_lookup_elem(fd, &z, &old), 0);
	c = old;
	c.pkt_rate = 100; /* T = 10 ms */
	c.pkt_burst = 3;
	assert_int_equal(bpf_map_update_elem(fd, &z, &c, BPF_ANY), 0);
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.14.1", DST4, 17, 0, 0, 8);
	pk_udp(&p, 9, PROT);
	for (int i = 0; i < 3; i++)
		expect(&p, XDP_PASS, EG_REASON_PASS);
	expect(&p, XDP_DROP, EG_REASON_PKTLIMIT);
	/* +25 ms: 2 tokens (2.5 T; the program's clock has the tick's resolution, 4 ms at
	 * HZ=250, so the test leaves half a token of margin either way) */
	assert_int_equal(eg_gate_set_clock_offset(G, 25000000ll), 0);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	expect(&p, XDP_DROP, EG_REASON_PKTLIMIT);
	assert_int_equal(bpf_map_lookup_elem(fd, &z, &c), 0);
	old.clock_offset_ns = 0;
	assert_int_equal(bpf_map_update_elem(fd, &z, &old, BPF_ANY), 0);
}

static void test_revoked_flow(void **s)
{
	struct eg_flow f = { .client_port = 40000, .server_port = PROT };
	struct pk p;

	reset_clock();
	assert_int_equal(eg_addr_parse_test("198.18.15.1", f.client), 0);
	assert_int_equal(eg_addr_parse_test(DST4, f.server), 0);
	assert_int_equal(eg_gate_revoke_flow(G, &f, NULL, 30), 0);
	tcp4(&p, "198.18.15.1", PROT, PK_ACK); /* sport 40000 */
	expect(&p, XDP_DROP, EG_REASON_REVOKED);
	/* another connection of the same client is not affected */
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.15.1", DST4, 6, 0, 0, 20);
	pk_tcp(&p, 40001, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* expired after 30 s, and GC removes it */
	assert_int_equal(eg_gate_set_clock_offset(G, 31000000000ll), 0);
	tcp4(&p, "198.18.15.1", PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_gc(G), 1);
	reset_clock();

	uint8_t h[16] = { 1, 2, 3 };
	assert_false(eg_gate_session_revoked(G, h));
	assert_int_equal(eg_gate_revoke_session(G, h, EG_RULE_MANUAL, 60), 0);
	assert_true(eg_gate_session_revoked(G, h));
}

/* Flows in one bucket of eg_rflow_slots_v1: two are held in its slots, a third and
 * fourth in the neighbour's (EG_FLOW_MORE_NEXT), a fifth only in eg_rflow_v1
 * (EG_FLOW_MORE_HASH); unrevoke, expiry and GC keep every answer right. */
struct flow4 {
	char addr[32];
	uint16_t port;
};

static struct eg_flow_key flow4_key(const struct flow4 *f)
{
	struct eg_flow_key k = { .sport = f->port, .dport = PROT, .proto = 6 };
	struct eg_prefix c = P(f->addr), d = P(DST4);

	memcpy(k.saddr, c.addr, 16);
	memcpy(k.daddr, d.addr, 16);
	return k;
}

static struct eg_flow flow4_flow(const struct flow4 *f)
{
	struct eg_flow e = { .client_port = f->port, .server_port = PROT };
	struct eg_prefix c = P(f->addr), d = P(DST4);

	memcpy(e.client, c.addr, 16);
	memcpy(e.server, d.addr, 16);
	return e;
}

static void flow4_pkt(struct pk *p, const struct flow4 *f)
{
	pk_eth(p, NULL, 0, 0x0800);
	pk_ip4(p, f->addr, DST4, 6, 0, 0, 20);
	pk_tcp(p, f->port, PROT, PK_ACK);
}

static struct eg_flow_bucket flow_bucket(__u32 i)
{
	struct eg_flow_bucket b;

	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_FLOWSLOTS), &i, &b), 0);
	return b;
}

/* n flows of client 198.18.<net>.x whose key falls in bucket `bucket`. */
static void flows_of_bucket(unsigned net, __u32 bucket, struct flow4 *f, int n)
{
	int got = 0;

	for (unsigned a = 1; a < 256 && got < n; a++)
		for (unsigned port = 1024; port < 65535 && got < n; port++) {
			struct flow4 c = { .port = (uint16_t)port };
			struct eg_flow_key k;

			snprintf(c.addr, sizeof(c.addr), "198.18.%u.%u", net, a);
			k = flow4_key(&c);
			if (eg_flow_slot_of(&k) == bucket)
				f[got++] = c;
		}
	assert_int_equal(got, n);
}

static bool bucket_holds(__u32 i, const struct flow4 *f)
{
	struct eg_flow_bucket b = flow_bucket(i);
	struct eg_flow_key k = flow4_key(f);

	return !memcmp(&b.s[0].key, &k, sizeof(k)) || !memcmp(&b.s[1].key, &k, sizeof(k));
}

static void flow_expect(const struct flow4 *f, int action)
{
	struct pk p;

	flow4_pkt(&p, f);
	expect(&p, action, action == XDP_DROP ? EG_REASON_REVOKED : EG_REASON_PASS);
}

static void flow_revoke(const struct flow4 *f, unsigned ttl)
{
	struct eg_flow e = flow4_flow(f);

	assert_int_equal(eg_gate_revoke_flow(G, &e, NULL, ttl), 0);
}

static void flow_unrevoke(const struct flow4 *f)
{
	struct eg_flow e = flow4_flow(f);

	assert_int_equal(eg_gate_unrevoke_flow(G, &e), 0);
}

static void test_flow_buckets(void **s)
{
	struct flow4 f[6], g[2];
	struct eg_flow_key k;
	__u32 home, next;

	reset_clock();
	snprintf(f[0].addr, sizeof(f[0].addr), "198.18.21.1");
	f[0].port = 1024;
	k = flow4_key(&f[0]);
	home = eg_flow_slot_of(&k);
	next = eg_flow_spill_of(home);
	flows_of_bucket(21, home, f, 6); /* f[0] is the first found again */
	flows_of_bucket(23, next, g, 2);
	assert_int_equal(flow_bucket(home).more, 0);
	assert_int_equal(flow_bucket(next).more, 0);
	for (int i = 0; i < 3; i++)
		flow_revoke(&f[i], i == 2 ? 30 : 0);
	/* the third spills to the neighbour's slot */
	assert_int_equal(flow_bucket(home).more, EG_FLOW_MORE_NEXT);
	assert_true(bucket_holds(home, &f[0]) && bucket_holds(home, &f[1]));
	assert_true(bucket_holds(next, &f[2]));
	assert_int_equal(flow_bucket(next).more, 0); /* its own flows are all held: none */
	for (int i = 0; i < 3; i++)
		flow_expect(&f[i], XDP_DROP);
	flow_expect(&f[5], XDP_PASS); /* same bucket, not revoked: neighbour read, no hash */
	/* the fourth takes the neighbour's other slot, the fifth only the hash */
	flow_revoke(&f[3], 0);
	assert_true(bucket_holds(next, &f[3]));
	assert_int_equal(flow_bucket(home).more, EG_FLOW_MORE_NEXT);
	flow_revoke(&f[4], 0);
	assert_false(bucket_holds(home, &f[4]) || bucket_holds(next, &f[4]));
	assert_int_equal(flow_bucket(home).more, EG_FLOW_MORE_NEXT | EG_FLOW_MORE_HASH);
	/* a flow of the neighbour's own finds its slots taken: the hash */
	flow_revoke(&g[0], 0);
	assert_int_equal(flow_bucket(next).more, EG_FLOW_MORE_HASH);
	for (int i = 0; i < 5; i++)
		flow_expect(&f[i], XDP_DROP);
	flow_expect(&g[0], XDP_DROP);
	flow_expect(&g[1], XDP_PASS);
	flow_expect(&f[5], XDP_PASS);
	/* a revoked flow revoked again keeps its one slot (the neighbour's), new expiry */
	flow_revoke(&f[3], 0);
	assert_false(bucket_holds(home, &f[3]));
	assert_true(bucket_holds(next, &f[3]));
	/* unrevoking a spilled flow frees the neighbour's slot; the others stay revoked */
	flow_unrevoke(&f[3]);
	assert_false(bucket_holds(next, &f[3]));
	flow_expect(&f[3], XDP_PASS);
	/* unrevoking one held at home frees that slot */
	flow_unrevoke(&f[0]);
	assert_false(bucket_holds(home, &f[0]));
	flow_expect(&f[0], XDP_PASS);
	for (int i = 1; i < 5; i++)
		if (i != 3)
			flow_expect(&f[i], XDP_DROP);
	flow_expect(&g[0], XDP_DROP);
	/* f[2] (in the neighbour) expires: XDP lets it through at once; GC removes it and
	 * rebuilds: each bucket's own flows first (f[4] home, g[0] in the neighbour),
	 * nothing left in the hash only, no spill */
	assert_int_equal(eg_gate_set_clock_offset(G, 31000000000ll), 0);
	flow_expect(&f[2], XDP_PASS);
	assert_int_equal(eg_gate_gc(G), 1);
	reset_clock();
	assert_true(bucket_holds(home, &f[1]) && bucket_holds(home, &f[4]));
	assert_true(bucket_holds(next, &g[0]));
	assert_false(bucket_holds(next, &f[2]));
	assert_int_equal(flow_bucket(home).more, 0);
	assert_int_equal(flow_bucket(next).more, 0);
	flow_expect(&f[1], XDP_DROP);
	flow_expect(&f[4], XDP_DROP);
	flow_expect(&g[0], XDP_DROP);
	flow_expect(&f[2], XDP_PASS);
	flow_expect(&f[0], XDP_PASS);
	/* home full again: f[0] spills beside g[0], then g[1] (the neighbour's own) finds
	 * the neighbour full and goes to the hash; after a GC a spilled flow keeps its slot
	 * even when a home slot is free (no slot changes flow needlessly) */
	flow_revoke(&f[0], 0);
	flow_revoke(&g[1], 30);
	assert_true(bucket_holds(next, &f[0]) && bucket_holds(next, &g[0]));
	assert_int_equal(flow_bucket(next).more, EG_FLOW_MORE_HASH);
	flow_expect(&g[1], XDP_DROP);
	flow_unrevoke(&f[4]); /* a home slot free, f[0] still in the neighbour */
	flow_expect(&f[0], XDP_DROP);
	assert_int_equal(eg_gate_set_clock_offset(G, 31000000000ll), 0);
	assert_int_equal(eg_gate_gc(G), 1); /* g[1] expired */
	reset_clock();
	assert_true(bucket_holds(next, &f[0])); /* a flow in a slot keeps it */
	assert_int_equal(flow_bucket(home).more, EG_FLOW_MORE_NEXT);
	assert_int_equal(flow_bucket(next).more, 0);
	flow_expect(&f[0], XDP_DROP);
	flow_expect(&f[1], XDP_DROP);
	flow_expect(&g[0], XDP_DROP);
	flow_expect(&g[1], XDP_PASS);
	flow_unrevoke(&f[0]);
	flow_unrevoke(&f[1]);
	flow_unrevoke(&g[0]);
	for (int i = 0; i < 6; i++)
		flow_expect(&f[i], XDP_PASS);
	flow_expect(&g[0], XDP_PASS);
}

/* Six flows of each bucket of a pair, revoked, unrevoked and expired in a fixed
 * pseudo-random order with GC between: after every step each flow is dropped exactly
 * when revoked and live (counter asserted), and no flow sits in two slots. */
static void test_flow_buckets_churn(void **s)
{
	struct flow4 f[12], first = { .addr = "198.18.24.1", .port = 1024 };
	struct eg_flow_key k = flow4_key(&first);
	__u32 home = eg_flow_slot_of(&k), pair[2] = { home, eg_flow_spill_of(home) };
	int state[12] = { 0 }; /* 0 not revoked, 1 revoked, 2 revoked for 30 s */
	uint64_t seed = 14;

	reset_clock();
	flows_of_bucket(24, pair[0], f, 6);
	flows_of_bucket(25, pair[1], f + 6, 6);
	for (int step = 0; step < 80; step++) {
		int i, copies;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		i = (int)((seed >> 33) % 12);
		switch ((seed >> 40) % 5) {
		case 0:
		case 1:
			flow_revoke(&f[i], 0);
			state[i] = 1;
			break;
		case 2:
			flow_revoke(&f[i], 30);
			state[i] = 2;
			break;
		case 3:
			if (state[i])
				flow_unrevoke(&f[i]);
			state[i] = 0;
			break;
		default: /* 31 s on: the 30-s flows expire; GC removes them and rebuilds */
			assert_int_equal(eg_gate_set_clock_offset(G, 31000000000ll), 0);
			assert_true(eg_gate_gc(G) >= 0);
			reset_clock();
			for (int j = 0; j < 12; j++)
				if (state[j] == 2)
					state[j] = 0;
		}
		for (int j = 0; j < 12; j++) {
			copies = bucket_holds(pair[0], &f[j]) + bucket_holds(pair[1], &f[j]);
			if (copies > 1 || (copies && !state[j]))
				fail_msg("step %d: flow %d in %d slots, state %d", step, j, copies, state[j]);
			flow_expect(&f[j], state[j] ? XDP_DROP : XDP_PASS);
		}
	}
	for (int j = 0; j < 12; j++)
		if (state[j])
			flow_unrevoke(&f[j]);
	for (int j = 0; j < 12; j++)
		flow_expect(&f[j], XDP_PASS);
}

/* The SYN-refusal slot (eg_synbox_v1): set when the bucket refuses a SYN, to the time
 * it conforms again; refuses until then without the bucket; never past it. */
static void test_synbox(void **s)
{
	uint32_t a;
	__u32 i;
	__u64 v;
	struct pk p;

	reset_clock();
	inet_pton(AF_INET, "198.18.22.1", &a);
	a = ntohl(a);
	i = eg_synbox_slot(a);
	tcp4(&p, "198.18.22.1", PROT, PK_SYN);
	for (int n = 0; n < 5; n++) /* burst 5 */
		expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_SYNBOX), &i, &v), 0);
	assert_false((v >> 32) == a);
	expect(&p, XDP_DROP, EG_REASON_RATELIMIT);
	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_SYNBOX), &i, &v), 0);
	assert_true((v >> 32) == a);
	expect(&p, XDP_DROP, EG_REASON_RATELIMIT); /* from the slot */
	/* another source of the same slot is judged by its own bucket */
	tcp4(&p, "198.18.22.2", PROT, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* +250 ms: 2 tokens at 10/s (100 ms); GC empties the slot, its time has passed */
	assert_int_equal(eg_gate_set_clock_offset(G, 250000000ll), 0);
	assert_true(eg_gate_gc(G) >= 0);
	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_SYNBOX), &i, &v), 0);
	assert_int_equal(v, 0);
	tcp4(&p, "198.18.22.1", PROT, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	expect(&p, XDP_DROP, EG_REASON_RATELIMIT);
	/* the slot is read before the revoked flows: a SYN of a revoked flow (tcp4 sends
	 * from port 40000) is "revoked" while its source's slot is empty, "ratelimit" once
	 * the slot refuses it; its ACKs stay "revoked" */
	{
		struct eg_flow f = { .client_port = 40000, .server_port = PROT };

		assert_int_equal(eg_addr_parse_test("198.18.22.3", f.client), 0);
		assert_int_equal(eg_addr_parse_test(DST4, f.server), 0);
		assert_int_equal(eg_gate_revoke_flow(G, &f, NULL, 0), 0);
		tcp4(&p, "198.18.22.3", PROT, PK_SYN);
		expect(&p, XDP_DROP, EG_REASON_REVOKED);
		i = eg_synbox_slot(a + 2);
		v = (__u64)(a + 2) << 32 | 0x7fffffffu; /* refused for a long while */
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_SYNBOX), &i, &v, BPF_ANY), 0);
		expect(&p, XDP_DROP, EG_REASON_RATELIMIT);
		tcp4(&p, "198.18.22.3", PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_REVOKED);
		assert_int_equal(eg_gate_unrevoke_flow(G, &f), 0);
		v = 0;
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_SYNBOX), &i, &v, BPF_ANY), 0);
	}
	reset_clock();
}

static void test_flood_shed(void **s)
{
	int fd = eg_gate_map_fd(G, EG_MAP_CFG);
	struct eg_cfg c, old;
	__u32 z = 0;
	struct pk p;
	char a[32];

	reset_clock();
	{ /* fresh per-CPU windows */
		int ff = eg_gate_map_fd(G, EG_MAP_FLOOD), n = libbpf_num_possible_cpus();
		struct eg_flood *zf = calloc((size_t)n, sizeof(*zf));

		assert_int_equal(bpf_map_update_elem(ff, &z, zf, BPF_ANY), 0);
		free(zf);
	}
	assert_int_equal(bpf_map_lookup_elem(fd, &z, &old), 0);
	c = old;
	c.flood_max_new = 3;
	c.flood_interval_ns = 3600ull * 1000000000ull;
	assert_int_equal(bpf_map_update_elem(fd, &z, &c, BPF_ANY), 0);
	/* prog test run executes on one CPU: its window takes 3 new sources */
	for (int i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "198.18.16.%d", i + 1);
		tcp4(&p, a, PROT, PK_SYN);
		expect(&p, XDP_PASS, EG_REASON_PASS);
	}
	for (int i = 0; i < 10; i++) { /* untracked, passed and counted "shed" */
		tcp4(&p, "198.18.16.200", PROT, PK_SYN);
		expect(&p, XDP_PASS, EG_REASON_SHED);
	}
	/* known sources are still limited */
	tcp4(&p, "198.18.16.1", PROT, PK_SYN);
	for (int i = 0; i < 4; i++)
		expect(&p, XDP_PASS, EG_REASON_PASS);
	expect(&p, XDP_DROP, EG_REASON_RATELIMIT);
	/* the window ends: tracking resumes */
	assert_int_equal(eg_gate_set_clock_offset(G, 3601ll * 1000000000ll), 0);
	tcp4(&p, "198.18.16.200", PROT, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(bpf_map_lookup_elem(fd, &z, &c), 0);
	old.clock_offset_ns = 0;
	assert_int_equal(bpf_map_update_elem(fd, &z, &old, BPF_ANY), 0);
}

/* Maps persist across a reload: dynamic entries stay, static ones follow the config. */
static void test_pin_reuse(void **s)
{
	struct eg_prefix dyn = P("198.18.17.1"), st = P("198.18.17.0/28"), st2 = P("198.18.18.0/28");
	struct eg_gate_config c = gcfg();
	struct eg_gate *pinned;
	char err[256];
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &dyn, 0, EG_RULE_MANUAL), 0);
	eg_gate_close(G);
	c.deny = &st;
	c.n_deny = 1;
	G = eg_gate_load(&c, err, sizeof(err));
	assert_non_null(G);
	tcp4(&p, "198.18.17.1", OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp4(&p, "198.18.17.9", OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	eg_gate_close(G);
	c.deny = &st2;
	G = eg_gate_load(&c, err, sizeof(err));
	assert_non_null(G);
	tcp4(&p, "198.18.17.9", OPEN, PK_ACK); /* static entry of the old config gone */
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp4(&p, "198.18.18.9", OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);

	/* the pinned-only view (edgegatectl with the daemon down) sees the same state */
	pinned = eg_gate_open_pinned(pin_root, err, sizeof(err));
	assert_non_null(pinned);
	assert_int_equal(eg_gate_deny_list(pinned, NULL, NULL), 2);
	assert_int_equal(eg_gate_deny_del(pinned, &dyn), 0);
	tcp4(&p, "198.18.17.1", OPEN, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	uint64_t st_a[EG_REASON__COUNT], st_b[EG_REASON__COUNT];
	assert_int_equal(eg_gate_stats(G, st_a), 0);
	assert_int_equal(eg_gate_stats(pinned, st_b), 0);
	assert_memory_equal(st_a, st_b, sizeof(st_a));
	eg_gate_close(pinned);
}

/* Pins of an older tree without the IPv6 allow slot arrays: the arrays are created at
 * load and the forced GC pass fills them from the hash (the record), so the allows hold
 * from their slots at once. */
static __u64 hi64_of(const char *a)
{
	struct eg_prefix q = P(a);
	__u64 h = 0;

	for (int i = 0; i < 8; i++)
		h = h << 8 | q.addr[i];
	return h;
}

static void test_allow6_slots_at_load(void **s)
{
	struct eg_prefix d = P("2001:db8:b000::/36"), a = P("2001:db8:b100:7::/64"), l = P("2001:db8:b200::5");
	struct eg_gate_config c = gcfg();
	char err[256], path[512];
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_allow_add(G, &a, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_allow_add(G, &l, 0, EG_RULE_MANUAL), 0);
	eg_gate_close(G);
	snprintf(path, sizeof(path), "%s/%s", pin_root, EG_MAP_ALLOW6S_SLOTS);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/%s", pin_root, EG_MAP_ALLOW6_SLOTS);
	assert_int_equal(unlink(path), 0);
	G = eg_gate_load(&c, err, sizeof(err));
	assert_non_null(G);
	{
		struct eg_slots6 b;
		struct eg_slots6l bl;
		__u64 hi = hi64_of("2001:db8:b100:7::"), lhi = hi64_of("2001:db8:b200::");
		__u32 i = eg_slots6_of(hi, 64, EG_ALLOW6_SLOTS_LOG2), il = eg_slots6l_of(lhi, 5, 128, EG_ALLOW6_SLOTS_LOG2);
		int found = 0;

		assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_ALLOW6S_SLOTS), &i, &b), 0);
		for (int j = 0; j < 2; j++)
			found += b.s[j].tag >> 8 == (64 | EG_SLOT_USED) && b.s[j].hi == hi;
		assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_ALLOW6_SLOTS), &il, &bl), 0);
		for (int j = 0; j < 2; j++)
			found += bl.tag[j] >> 8 == 128 && bl.s[j].hi == lhi && bl.s[j].lo == 5;
		assert_int_equal(found, 2);
	}
	tcp6(&p, "2001:db8:b100:7::1", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "2001:db8:b200::5", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "2001:db8:b100:8::1", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_allow_del(G, &a), 0);
	assert_int_equal(eg_gate_allow_del(G, &l), 0);
	assert_int_equal(eg_gate_deny_del(G, &d), 0);
}

/* --- issue 14: the rule tables ------------------------------------------------------------ */

static void set_pkt_rate(uint32_t rate, uint32_t burst)
{
	int fd = eg_gate_map_fd(G, EG_MAP_CFG);
	struct eg_cfg c;
	__u32 z = 0;

	assert_int_equal(bpf_map_lookup_elem(fd, &z, &c), 0);
	c.pkt_rate = rate;
	c.pkt_burst = burst;
	assert_int_equal(bpf_map_update_elem(fd, &z, &c, BPF_ANY), 0);
}

static void set_cfg_flag(uint32_t flag, bool on)
{
	int fd = eg_gate_map_fd(G, EG_MAP_CFG);
	struct eg_cfg c;
	__u32 z = 0;

	assert_int_equal(bpf_map_lookup_elem(fd, &z, &c), 0);
	c.flags = on ? (c.flags | flag) : (c.flags & ~flag);
	assert_int_equal(bpf_map_update_elem(fd, &z, &c, BPF_ANY), 0);
}

static struct eg_table read_table(unsigned id)
{
	struct eg_table t;
	__u32 k = id;

	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_TABLES), &k, &t), 0);
	return t;
}

/* The /24's byte of length groups in an IPv4 index. */
static unsigned idx_byte(const char *map, const char *ip)
{
	uint32_t a;
	__u64 v;
	__u32 w;

	inet_pton(AF_INET, ip, &a);
	a = ntohl(a) >> 8;
	w = a >> 3;
	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, map), &w, &v), 0);
	return (unsigned)(v >> ((a & 7) * 8)) & 0xff;
}

/* Longest live prefix wins, whatever the order of insertion; every length group. */
static void test_longest_match_v4(void **s)
{
	struct eg_prefix p16 = P("198.18.32.0/20"), p24 = P("198.18.33.0/24"), p32 = P("198.18.33.33"),
			 p31 = P("198.18.34.2/31"), p9 = P("198.128.0.0/9"), p0 = P("0.0.0.0/0");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &p32, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &p24, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_deny_add(G, &p16, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &p31, 0, EG_RULE_BAN), 0);
	tcp4(&p, "198.18.33.33", PROT, PK_ACK); /* the /32 (deny) inside the /24 (ban) */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp4(&p, "198.18.33.34", PROT, PK_ACK); /* the /24 */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp4(&p, "198.18.34.1", PROT, PK_ACK); /* the /20 only */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp4(&p, "198.18.34.3", PROT, PK_ACK); /* the /31 inside the /20 */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp4(&p, "198.18.48.1", PROT, PK_ACK); /* just outside the /20 */
	expect(&p, XDP_PASS, EG_REASON_PASS);

	/* the index names the groups each /24 needs */
	assert_int_equal(idx_byte(EG_MAP_DENY4_IDX, "198.18.33.1"), (1u << 0) | (1u << 2) | (1u << 3));
	assert_int_equal(idx_byte(EG_MAP_DENY4_IDX, "198.18.34.1"), (1u << 1) | (1u << 3));
	assert_int_equal(idx_byte(EG_MAP_DENY4_IDX, "198.18.48.1"), 0);

	/* delete the /24: its addresses fall back to the /20 */
	assert_int_equal(eg_gate_deny_del(G, &p24), 0);
	tcp4(&p, "198.18.33.34", PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* a delete leaves the index bit (a "may"); GC clears it */
	assert_true(idx_byte(EG_MAP_DENY4_IDX, "198.18.33.1") & (1u << 2));
	assert_true(eg_gate_gc(G) >= 0);
	assert_false(idx_byte(EG_MAP_DENY4_IDX, "198.18.33.1") & (1u << 2));
	tcp4(&p, "198.18.33.34", PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);

	/* /9 and /0: the widest groups */
	assert_int_equal(eg_gate_deny_add(G, &p9, 0, EG_RULE_ABUSE), 0);
	tcp4(&p, "198.200.1.1", OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp4(&p, "198.127.1.1", OPEN, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_add(G, &p0, 0, EG_RULE_BAN), 0);
	tcp4(&p, "203.0.113.1", PROT, PK_ACK); /* only the /0 */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp4(&p, "198.18.34.1", PROT, PK_ACK); /* the /20 is longer than the /0 */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:99::1", 1, PROT, PK_ACK); /* an IPv4 /0 is not IPv6 */
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_del(G, &p0), 0);
	tcp4(&p, "203.0.113.1", PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);

	struct eg_table t = read_table(EG_TBL_DENY4);
	assert_int_equal(t.count[32], 1);
	assert_int_equal(t.count[31], 1);
	assert_int_equal(t.count[20], 1);
	assert_int_equal(t.count[9], 1);
	assert_int_equal(t.count[24], 0);
	assert_int_equal(t.count[0], 0);
	assert_false(t.lens[0] & (1ull << 24));
	assert_int_equal(eg_gate_deny_del(G, &p32), 0);
	assert_int_equal(eg_gate_deny_del(G, &p16), 0);
	/* the shorter /20 gone: the /31 inside it stays, its neighbours are free */
	tcp4(&p, "198.18.34.3", PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp4(&p, "198.18.34.1", PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_del(G, &p31), 0);
	assert_int_equal(eg_gate_deny_del(G, &p9), 0);
	t = read_table(EG_TBL_DENY4);
	assert_int_equal(t.lens[0] & ((1ull << 32) | (1ull << 31) | (1ull << 20) | (1ull << 9)), 0);
	tcp4(&p, "198.18.33.33", PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
}

/* The deny rules' buckets (eg_deny4_slots_v1): a /32 hit decides first, a miss falls
 * through to the shorter lengths of the /24's byte, and a /24 with only /32s answers
 * "no rule" once the /32 missed. A bucket whose `more` is set (here by hand, no rule
 * behind it) sends the miss to the hash, which misses too: the /22 still matches. */
/* A deny bucket array's size (sized from gate.max_deny, or as pinned). */
static __u32 slots_entries(const char *name)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	assert_int_equal(bpf_obj_get_info_by_fd(eg_gate_map_fd(G, name), &info, &len), 0);
	return info.max_entries;
}

static __u32 slots_log2(const char *name)
{
	__u32 n = slots_entries(name), l = 0;

	while ((1u << l) < n)
		l++;
	assert_int_equal(1u << l, n);
	return l;
}

#define SLOTS4_OF(ip, len) eg_slots4_of((ip), (len), slots_log2(EG_MAP_DENY4_SLOTS))
#define SLOTS6_OF(hi, len) eg_slots6_of((hi), (len), slots_log2(EG_MAP_DENY6S_SLOTS))

static struct eg_slots4 bucket4(__u32 ip /* host order, masked */, unsigned len)
{
	struct eg_slots4 b;
	__u32 i = SLOTS4_OF(ip, len);

	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_DENY4_SLOTS), &i, &b), 0);
	return b;
}

static __u32 ip4h(const char *ip)
{
	uint32_t a;

	assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
	return ntohl(a);
}

/* The slot of (ip, len) in its bucket, -1 when none holds it; *reason its reason. */
static int slot4_of(__u32 ip, unsigned len, unsigned *reason)
{
	struct eg_slots4 b = bucket4(ip, len);

	for (int i = 0; i < 3; i++)
		if (b.s[i].key && b.s[i].key >> 8 == eg_slot4_key(ip, len, 0) >> 8) {
			if (reason)
				*reason = (unsigned)(b.s[i].key & 0xff);
			return i;
		}
	return -1;
}

static void set_more4(__u32 ip, unsigned len)
{
	struct eg_slots4 b = bucket4(ip, len);
	__u32 i = SLOTS4_OF(ip, len);

	b.more = 1;
	assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_DENY4_SLOTS), &i, &b, BPF_ANY), 0);
}

/* The deny buckets are sized from gate.max_deny (4096 here: 4096 IPv4 buckets, the
 * floor of 1024 for IPv6), not the 72 MiB of the default; a reload asking another
 * size keeps the pinned arrays (and their rules), and XDP indexes them as pinned. */
static void test_slots_sized(void **s)
{
	struct eg_prefix d = P("198.18.61.5");
	struct eg_gate_config c = gcfg();
	char err[256];
	struct pk p;

	assert_int_equal(slots_entries(EG_MAP_DENY4_SLOTS), 4096);
	assert_int_equal(slots_entries(EG_MAP_DENY6S_SLOTS), 1u << EG_SLOTS_MIN_LOG2);
	assert_int_equal(eg_slots_log2(1048576, 4), EG_SLOTS4_LOG2);
	assert_int_equal(eg_slots_log2(1048576, 6), EG_SLOTS6_LOG2);
	assert_int_equal(eg_slots_log2(5000, 4), 13);
	assert_int_equal(eg_slots_log2(1, 6), EG_SLOTS_MIN_LOG2);
	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	eg_gate_close(G);
	c.max_deny = 1u << 16;
	G = eg_gate_load(&c, err, sizeof(err));
	assert_non_null(G);
	assert_int_equal(slots_entries(EG_MAP_DENY4_SLOTS), 4096); /* as pinned */
	assert_true(slot4_of(ip4h("198.18.61.5"), 32, NULL) >= 0);
	tcp4(&p, "198.18.61.5", PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* XDP finds a slot where the writers put it: a rule in a bucket only (written
	 * by hand, no hash entry; the /24 already names /32s) drops only if XDP indexes
	 * the 4096 buckets as the writers do (a wrong size misses it and passes). */
	{
		__u32 ip = ip4h("198.18.61.6"), i = SLOTS4_OF(ip, 32);
		struct eg_slots4 b = bucket4(ip, 32), z;

		z = b;
		assert_int_equal(b.s[2].key, 0);
		b.s[2].key = eg_slot4_key(ip, 32, EG_RULE_MANUAL);
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_DENY4_SLOTS), &i, &b, BPF_ANY), 0);
		tcp4(&p, "198.18.61.6", PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_DENY4_SLOTS), &i, &z, BPF_ANY), 0);
		expect(&p, XDP_PASS, EG_REASON_PASS);
	}
	assert_int_equal(eg_gate_deny_del(G, &d), 0);
}

static void test_slots_first(void **s)
{
	struct eg_prefix p22 = P("198.18.60.0/22"), p32 = P("198.18.60.7"), q32 = P("198.18.64.9");
	unsigned why = 0;
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &p22, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &p32, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_deny_add(G, &q32, 0, EG_RULE_MANUAL), 0);
	assert_true(slot4_of(ip4h("198.18.60.7"), 32, &why) >= 0);
	assert_int_equal(why, EG_RULE_BAN);
	assert_true(slot4_of(ip4h("198.18.60.0"), 22, &why) >= 0);
	assert_int_equal(why, EG_RULE_MANUAL);
	tcp4(&p, "198.18.60.7", PROT, PK_ACK); /* the /32 hit decides */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp4(&p, "198.18.60.77", PROT, PK_ACK); /* no /32: the /22 */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	set_more4(ip4h("198.18.60.77"), 32); /* the bucket cannot tell: the hash misses, the /22 */
	tcp4(&p, "198.18.60.77", PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp4(&p, "198.18.64.9", PROT, PK_ACK); /* a /24 with only a /32 */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	set_more4(ip4h("198.18.64.10"), 32);
	tcp4(&p, "198.18.64.10", PROT, PK_ACK); /* its /32 misses: nothing else to look up */
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp4(&p, "198.18.64.11", PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_del(G, &p32), 0);
	assert_int_equal(slot4_of(ip4h("198.18.60.7"), 32, NULL), -1); /* the slot goes with it */
	tcp4(&p, "198.18.60.7", PROT, PK_ACK); /* the /32 gone: the /22 */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &p22), 0);
	assert_int_equal(eg_gate_deny_del(G, &q32), 0);
	tcp4(&p, "198.18.60.7", PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_true(eg_gate_gc(G) >= 0); /* GC rebuilds the buckets: the hand-set `more` goes */
	assert_int_equal(bucket4(ip4h("198.18.64.10"), 32).more, 0);
	assert_int_equal(bucket4(ip4h("198.18.60.77"), 32).more, 0);
	tcp4(&p, "198.18.64.10", PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
}

/* Four /32s of one bucket (three slots): the fourth lives in the hash only and the
 * bucket says `more`; each is dropped, a neighbour is not. A delete frees a slot (the
 * fourth is still found through the hash), GC moves the fourth into it and clears
 * `more`, an expired slot hides nothing, and bulk loads fill buckets the same way.
 * The addresses are searched in 10.0.0.0/8 (frames to BPF_PROG_TEST_RUN only): the
 * multiplicative hash spreads the addresses of one /15 over distinct buckets. */
static void same_bucket4(__u32 first, __u32 *out, int n)
{
	__u32 l = slots_log2(EG_MAP_DENY4_SLOTS), want = eg_slots4_of(first, 32, l);

	out[0] = first;
	for (__u32 a = first + 1, k = 1; k < (__u32)n; a++) {
		assert_true(a < 0x0b000000u); /* found in 10.0.0.0/8 */
		if (eg_slots4_of(a, 32, l) == want)
			out[k++] = a;
	}
}

static struct eg_prefix P4h(__u32 ip, unsigned len)
{
	char t[40];
	uint32_t be = htonl(ip);

	inet_ntop(AF_INET, &be, t, sizeof(t));
	snprintf(t + strlen(t), sizeof(t) - strlen(t), "/%u", len);
	return P(t);
}

static void tcp4h(struct pk *p, __u32 ip)
{
	char t[INET_ADDRSTRLEN];
	uint32_t be = htonl(ip);

	inet_ntop(AF_INET, &be, t, sizeof(t));
	tcp4(p, t, PROT, PK_ACK);
}

static void test_slot_overflow4(void **s)
{
	__u32 a[5];
	struct eg_prefix r[5];
	struct pk p;
	int in_slot = 0;

	reset_clock();
	same_bucket4(0x0a000001u, a, 5);
	for (int i = 0; i < 5; i++)
		r[i] = P4h(a[i], 32);
	for (int i = 0; i < 4; i++)
		assert_int_equal(eg_gate_deny_add(G, &r[i], 0, EG_RULE_MANUAL), 0);
	for (int i = 0; i < 4; i++)
		in_slot += slot4_of(a[i], 32, NULL) >= 0;
	assert_int_equal(in_slot, 3);
	assert_int_equal(slot4_of(a[3], 32, NULL), -1);
	assert_int_equal(bucket4(a[0], 32).more, 1);
	for (int i = 0; i < 4; i++) {
		tcp4h(&p, a[i]);
		expect(&p, XDP_DROP, EG_REASON_DENY);
	}
	tcp4h(&p, a[4]); /* same bucket, no rule: the hash says no */
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp4h(&p, a[0] + 1); /* its /24 has a /32, its bucket none */
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_del(G, &r[0]), 0);
	assert_int_equal(slot4_of(a[0], 32, NULL), -1);
	tcp4h(&p, a[0]);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp4h(&p, a[3]); /* still in the hash only: `more` */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_true(eg_gate_gc(G) >= 0);
	assert_true(slot4_of(a[3], 32, NULL) >= 0);
	assert_int_equal(bucket4(a[0], 32).more, 0);
	tcp4h(&p, a[3]);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* a rule with an expiry: the slot carries it, XDP ignores it once past, GC empties it */
	assert_int_equal(eg_gate_deny_add(G, &r[4], 10, EG_RULE_BAN), 0);
	tcp4h(&p, a[4]); /* the bucket is full again: the hash */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_deny_del(G, &r[1]), 0);
	assert_true(eg_gate_gc(G) >= 0);
	assert_true(slot4_of(a[4], 32, NULL) >= 0); /* GC gave it the freed slot */
	tcp4h(&p, a[4]);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_set_clock_offset(G, 11000000000ll), 0);
	tcp4h(&p, a[4]);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_true(eg_gate_gc(G) >= 1);
	assert_int_equal(slot4_of(a[4], 32, NULL), -1);
	reset_clock();
	/* a reason change stays in its slot */
	assert_int_equal(eg_gate_deny_add(G, &r[2], 0, EG_RULE_BAN), 0);
	tcp4h(&p, a[2]);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_deny_del(G, &r[2]), 0);
	assert_int_equal(eg_gate_deny_del(G, &r[3]), 0);
	/* bulk: all five go in, three slots and `more` */
	assert_int_equal(eg_gate_bulk_add(G, false, r, 5, 0, EG_RULE_MANUAL), 5);
	in_slot = 0;
	for (int i = 0; i < 5; i++)
		in_slot += slot4_of(a[i], 32, NULL) >= 0;
	assert_int_equal(in_slot, 3);
	assert_int_equal(bucket4(a[0], 32).more, 1);
	for (int i = 0; i < 5; i++) {
		tcp4h(&p, a[i]);
		expect(&p, XDP_DROP, EG_REASON_DENY);
	}
	for (int i = 0; i < 5; i++)
		assert_int_equal(eg_gate_deny_del(G, &r[i]), 0);
	assert_true(eg_gate_gc(G) >= 0);
	assert_int_equal(bucket4(a[0], 32).more, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(bucket4(a[0], 32).s[i].key, 0);
	tcp4h(&p, a[3]);
	expect(&p, XDP_PASS, EG_REASON_PASS);
}

/* The IPv4 allow rules direct-mapped (eg_allow4_slots_v1, fixed 2^16 buckets): an allow
 * /32 and a /16 in their slots beat a deny around them; a fourth /32 of a full bucket is
 * found through the hash and moves into a freed slot at GC; a rule in an allow bucket only
 * is honoured (XDP reads that array); an expired allow /32 lets the deny decide, before GC
 * and after; a bulk allow load fills the slots. */
static struct eg_slots4 abucket4(__u32 ip, unsigned len)
{
	struct eg_slots4 b;
	__u32 i = eg_slots4_of(ip, len, EG_ALLOW4_SLOTS_LOG2);

	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_ALLOW4_SLOTS), &i, &b), 0);
	return b;
}

static int aslot4_of(__u32 ip, unsigned len)
{
	struct eg_slots4 b = abucket4(ip, len);

	for (int i = 0; i < 3; i++)
		if (b.s[i].key && b.s[i].key >> 8 == eg_slot4_key(ip, len, 0) >> 8)
			return i;
	return -1;
}

static void test_allow_slots(void **s)
{
	__u32 a[4], want = eg_slots4_of(0x0a000001u, 32, EG_ALLOW4_SLOTS_LOG2);
	struct eg_prefix r[4], d = P("10.0.0.0/8"), a16 = P("198.17.0.0/16"), d8 = P("198.0.0.0/8");
	struct pk p;
	int in_slot = 0, n = 1;

	reset_clock();
	a[0] = 0x0a000001u;
	for (__u32 x = a[0] + 1; n < 4; x++) { /* /32s of 10.0.0.0/8 sharing a[0]'s bucket */
		assert_true(x < 0x0b000000u);
		if (eg_slots4_of(x, 32, EG_ALLOW4_SLOTS_LOG2) == want)
			a[n++] = x;
	}
	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &d8, 0, EG_RULE_MANUAL), 0);
	for (int i = 0; i < 4; i++) {
		r[i] = P4h(a[i], 32);
		assert_int_equal(eg_gate_allow_add(G, &r[i], 0, EG_RULE_MANUAL), 0);
	}
	for (int i = 0; i < 4; i++)
		in_slot += aslot4_of(a[i], 32) >= 0;
	assert_int_equal(in_slot, 3);
	assert_int_equal(aslot4_of(a[3], 32), -1);
	assert_int_equal(abucket4(a[0], 32).more, 1);
	assert_int_equal(slot4_of(a[0], 32, NULL), -1); /* not in the deny array */
	for (int i = 0; i < 4; i++) { /* three from their slots, the fourth from the hash */
		tcp4h(&p, a[i]);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
	}
	tcp4h(&p, a[0] + 0x100); /* another /24 of the /8: denied */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* a /16 allow beats the /8 deny around it */
	assert_int_equal(eg_gate_allow_add(G, &a16, 0, EG_RULE_STATIC), 0);
	assert_true(aslot4_of(ip4h("198.17.0.0"), 16) >= 0);
	tcp4(&p, "198.17.200.9", PROT, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	assert_int_equal(eg_gate_allow_del(G, &a16), 0);
	assert_int_equal(aslot4_of(ip4h("198.17.0.0"), 16), -1);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* delete one in a slot: at once out of it; GC moves the fourth in */
	assert_int_equal(eg_gate_allow_del(G, &r[0]), 0);
	assert_int_equal(aslot4_of(a[0], 32), -1);
	tcp4h(&p, a[0]);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_true(eg_gate_gc(G) >= 0);
	assert_true(aslot4_of(a[3], 32) >= 0);
	assert_int_equal(abucket4(a[0], 32).more, 0);
	tcp4h(&p, a[3]);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	/* a rule in its allow bucket only (no hash entry; its /24 already names /32s) */
	{
		__u32 x = a[1] + 1, i;
		struct eg_slots4 b, z;
		int j = -1;

		while (eg_slots4_of(x, 32, EG_ALLOW4_SLOTS_LOG2) == want)
			x++;
		assert_int_equal(x >> 8, a[1] >> 8);
		i = eg_slots4_of(x, 32, EG_ALLOW4_SLOTS_LOG2);
		b = z = abucket4(x, 32);
		for (int k = 2; k >= 0; k--)
			if (!b.s[k].key)
				j = k;
		assert_true(j >= 0);
		b.s[j].key = eg_slot4_key(x, 32, EG_RULE_MANUAL);
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_ALLOW4_SLOTS), &i, &b, BPF_ANY), 0);
		tcp4h(&p, x);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_ALLOW4_SLOTS), &i, &z, BPF_ANY), 0);
		expect(&p, XDP_DROP, EG_REASON_DENY);
	}
	/* an allow that expires: the deny decides, before GC and after */
	assert_int_equal(eg_gate_allow_del(G, &r[1]), 0);
	assert_int_equal(eg_gate_allow_add(G, &r[1], 10, EG_RULE_MANUAL), 0);
	tcp4h(&p, a[1]);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	assert_int_equal(eg_gate_set_clock_offset(G, 11000000000ll), 0);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_true(eg_gate_gc(G) >= 1);
	assert_int_equal(aslot4_of(a[1], 32), -1);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* bulk */
	{
		struct eg_prefix v[2] = { P("10.250.91.7"), P("10.250.92.0/25") };

		assert_int_equal(eg_gate_bulk_add(G, true, v, 2, 0, EG_RULE_STATIC), 2);
		assert_true(aslot4_of(ip4h("10.250.91.7"), 32) >= 0);
		assert_true(aslot4_of(ip4h("10.250.92.0"), 25) >= 0);
		tcp4(&p, "10.250.92.100", PROT, PK_ACK);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
		tcp4(&p, "10.250.92.200", PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		assert_int_equal(eg_gate_allow_del(G, &v[0]), 0);
		assert_int_equal(eg_gate_allow_del(G, &v[1]), 0);
	}
	for (int i = 2; i < 4; i++)
		assert_int_equal(eg_gate_allow_del(G, &r[i]), 0);
	assert_int_equal(eg_gate_deny_del(G, &d), 0);
	assert_int_equal(eg_gate_deny_del(G, &d8), 0);
	assert_true(eg_gate_gc(G) >= 0);
	reset_clock();
}

/* The same for short IPv6 deny rules (eg_deny6s_slots_v1, two slots a bucket): three
 * /64s of one bucket, the third through the hash; a /48 and the /64 inside it. */
static __u64 hi6(const char *a)
{
	struct eg_prefix q = P(a);
	__u64 h = 0;

	for (int i = 0; i < 8; i++)
		h = h << 8 | q.addr[i];
	return h;
}

static int slot6_of(__u64 hi, unsigned len)
{
	struct eg_slots6 b;
	__u32 i = SLOTS6_OF(hi, len);

	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_DENY6S_SLOTS), &i, &b), 0);
	for (int j = 0; j < 2; j++)
		if (b.s[j].tag && b.s[j].tag >> 8 == eg_slot6_tag(len, 0) >> 8 && b.s[j].hi == hi)
			return j;
	return -1;
}

static unsigned more6(__u64 hi, unsigned len)
{
	struct eg_slots6 b;
	__u32 i = SLOTS6_OF(hi, len);

	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_DENY6S_SLOTS), &i, &b), 0);
	return b.more;
}

static void test_slot_overflow6(void **s)
{
	__u64 h[3], base = hi6("2001:db8:7700::");
	struct eg_prefix r[3], r48 = P("2001:db8:7800::/48");
	char t[64];
	struct pk p;
	int n = 1;

	reset_clock();
	h[0] = base;
	for (__u64 x = base + 1; n < 3; x++) { /* /64s of 2001:db8:7700::/40 */
		assert_true(x < base + (1ull << 24));
		if (SLOTS6_OF(x, 64) == SLOTS6_OF(base, 64))
			h[n++] = x;
	}
	for (int i = 0; i < 3; i++) {
		snprintf(t, sizeof(t), "%x:%x:%x:%x::/64", (unsigned)(h[i] >> 48), (unsigned)(h[i] >> 32) & 0xffff,
			 (unsigned)(h[i] >> 16) & 0xffff, (unsigned)h[i] & 0xffff);
		r[i] = P(t);
		assert_int_equal(eg_gate_deny_add(G, &r[i], 0, i == 2 ? EG_RULE_BAN : EG_RULE_MANUAL), 0);
	}
	assert_true(slot6_of(h[0], 64) >= 0 && slot6_of(h[1], 64) >= 0);
	assert_int_equal(slot6_of(h[2], 64), -1);
	assert_int_equal(more6(h[0], 64), 1);
	for (int i = 0; i < 3; i++) {
		snprintf(t, sizeof(t), "%x:%x:%x:%x::5", (unsigned)(h[i] >> 48), (unsigned)(h[i] >> 32) & 0xffff,
			 (unsigned)(h[i] >> 16) & 0xffff, (unsigned)h[i] & 0xffff);
		tcp6(&p, t, 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, i == 2 ? EG_REASON_BAN : EG_REASON_DENY);
	}
	assert_int_equal(eg_gate_deny_del(G, &r[0]), 0);
	assert_true(eg_gate_gc(G) >= 0);
	assert_true(slot6_of(h[2], 64) >= 0);
	assert_int_equal(more6(h[0], 64), 0);
	snprintf(t, sizeof(t), "%x:%x:%x:%x::5", (unsigned)(h[2] >> 48), (unsigned)(h[2] >> 32) & 0xffff,
		 (unsigned)(h[2] >> 16) & 0xffff, (unsigned)h[2] & 0xffff);
	tcp6(&p, t, 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	snprintf(t, sizeof(t), "%x:%x:%x:%x::5", (unsigned)(h[0] >> 48), (unsigned)(h[0] >> 32) & 0xffff,
		 (unsigned)(h[0] >> 16) & 0xffff, (unsigned)h[0] & 0xffff);
	tcp6(&p, t, 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* a /48 in its slot; an address of it is dropped, one beside it is not */
	assert_int_equal(eg_gate_deny_add(G, &r48, 0, EG_RULE_MANUAL), 0);
	assert_true(slot6_of(hi6("2001:db8:7800::"), 48) >= 0);
	tcp6(&p, "2001:db8:7800:ffff::1", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:7801::1", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_del(G, &r48), 0);
	assert_int_equal(slot6_of(hi6("2001:db8:7800::"), 48), -1);
	tcp6(&p, "2001:db8:7800:ffff::1", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_del(G, &r[1]), 0);
	assert_int_equal(eg_gate_deny_del(G, &r[2]), 0);
	assert_true(eg_gate_gc(G) >= 0);
}

/* The IPv6 allow rules direct-mapped (eg_allow6s_slots_v1 for /0../64, eg_allow6_slots_v1
 * for /65../128, fixed 2^15 buckets each): allows in their slots beat the deny around
 * them and a deny inside them; the third /64 of a full bucket is found through the hash
 * (`more`) and moves into a freed slot at GC; a rule whose slot is gone while its hash
 * entry stays (a writer killed inside a delete) is not honoured until GC rebuilds it
 * (fails closed); expiry, bulk load, and the lengths /0 /48 /64 /65 /128. */
static int aslot6_of(__u64 hi, unsigned len, unsigned *more)
{
	struct eg_slots6 b;
	__u32 i = eg_slots6_of(hi, len, EG_ALLOW6_SLOTS_LOG2);

	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_ALLOW6S_SLOTS), &i, &b), 0);
	if (more)
		*more = b.more;
	for (int j = 0; j < 2; j++)
		if (b.s[j].tag && b.s[j].tag >> 8 == eg_slot6_tag(len, 0) >> 8 && b.s[j].hi == hi)
			return j;
	return -1;
}

static int aslot6l_of(__u64 hi, __u64 lo, unsigned len)
{
	struct eg_slots6l b;
	__u32 i = eg_slots6l_of(hi, lo, len, EG_ALLOW6_SLOTS_LOG2);

	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_ALLOW6_SLOTS), &i, &b), 0);
	for (int j = 0; j < 2; j++)
		if (b.tag[j] && b.tag[j] >> 8 == (len & 0xff) && b.s[j].hi == hi && b.s[j].lo == lo)
			return j;
	return -1;
}

static __u64 lo6(const char *a)
{
	struct eg_prefix q = P(a);
	__u64 l = 0;

	for (int i = 8; i < 16; i++)
		l = l << 8 | q.addr[i];
	return l;
}

static void src6(struct pk *p, __u64 hi, unsigned low)
{
	char t[64];

	snprintf(t, sizeof(t), "%x:%x:%x:%x::%x", (unsigned)(hi >> 48), (unsigned)(hi >> 32) & 0xffff,
		 (unsigned)(hi >> 16) & 0xffff, (unsigned)hi & 0xffff, low);
	tcp6(p, t, 1, PROT, PK_ACK);
}

static void test_allow6_slots(void **s)
{
	__u64 h[3], base = hi6("2001:db8:a100::");
	struct eg_prefix d = P("2001:db8:a000::/36"), r[3], a48 = P("2001:db8:a200::/48"),
			 d128 = P("2001:db8:a200:1::9"), a65 = P("2001:db8:a300:1:8000::/65"),
			 a128 = P("2001:db8:a400::77"), a0 = P("::/0");
	__u32 want = eg_slots6_of(base, 64, EG_ALLOW6_SLOTS_LOG2);
	unsigned more = 9;
	char t[64];
	struct pk p;
	int n = 1, in_slot = 0;

	reset_clock();
	h[0] = base;
	for (__u64 x = base + 1; n < 3; x++) { /* /64s of 2001:db8:a100::/40 sharing a bucket */
		assert_true(x < base + (1ull << 24));
		if (eg_slots6_of(x, 64, EG_ALLOW6_SLOTS_LOG2) == want)
			h[n++] = x;
	}
	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(t, sizeof(t), "%x:%x:%x:%x::/64", (unsigned)(h[i] >> 48), (unsigned)(h[i] >> 32) & 0xffff,
			 (unsigned)(h[i] >> 16) & 0xffff, (unsigned)h[i] & 0xffff);
		r[i] = P(t);
		assert_int_equal(eg_gate_allow_add(G, &r[i], 0, EG_RULE_MANUAL), 0);
	}
	for (int i = 0; i < 3; i++)
		in_slot += aslot6_of(h[i], 64, NULL) >= 0;
	assert_int_equal(in_slot, 2);
	assert_int_equal(aslot6_of(h[2], 64, &more), -1);
	assert_int_equal(more, 1);
	assert_int_equal(slot6_of(h[0], 64), -1); /* not in the deny array */
	for (int i = 0; i < 3; i++) { /* two from their slots, the third from the hash */
		src6(&p, h[i], 5);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
	}
	src6(&p, base + (1ull << 25), 5); /* another /64 of the /36: denied */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* delete one in a slot: at once out of it; GC moves the third in */
	assert_int_equal(eg_gate_allow_del(G, &r[0]), 0);
	assert_int_equal(aslot6_of(h[0], 64, NULL), -1);
	src6(&p, h[0], 5);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_true(eg_gate_gc(G) >= 0);
	assert_true(aslot6_of(h[2], 64, &more) >= 0);
	assert_int_equal(more, 0);
	src6(&p, h[2], 5);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	/* a writer killed inside a delete (slot out, hash entry still there): closed until GC */
	{
		__u32 i = eg_slots6_of(h[1], 64, EG_ALLOW6_SLOTS_LOG2);
		struct eg_slots6 b, z;
		int j = aslot6_of(h[1], 64, NULL);

		assert_true(j >= 0);
		assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_ALLOW6S_SLOTS), &i, &b), 0);
		z = b;
		z.s[j].tag = 0;
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_ALLOW6S_SLOTS), &i, &z, BPF_ANY), 0);
		src6(&p, h[1], 5);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		/* the next rebuild (here an expiry) puts the record back in its slot */
		{
			struct eg_prefix e = P("2001:db8:a100:ffff::1");

			assert_int_equal(eg_gate_allow_add(G, &e, 1, EG_RULE_MANUAL), 0);
			assert_int_equal(eg_gate_set_clock_offset(G, 2000000000ll), 0);
			assert_true(eg_gate_gc(G) >= 1);
			reset_clock();
		}
		assert_true(aslot6_of(h[1], 64, NULL) >= 0);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
	}
	/* /48 with a deny /128 inside it: the allow wins; beside it the /36 deny */
	assert_int_equal(eg_gate_allow_add(G, &a48, 0, EG_RULE_STATIC), 0);
	assert_int_equal(eg_gate_deny_add(G, &d128, 0, EG_RULE_BAN), 0);
	assert_true(aslot6_of(hi6("2001:db8:a200::"), 48, NULL) >= 0);
	tcp6(&p, "2001:db8:a200:1::9", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "2001:db8:a200:ffff:ffff::1", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "2001:db8:a201::1", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_allow_del(G, &a48), 0);
	assert_int_equal(aslot6_of(hi6("2001:db8:a200::"), 48, NULL), -1);
	tcp6(&p, "2001:db8:a200:1::9", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_deny_del(G, &d128), 0);
	/* /65: bit 64 decides */
	assert_int_equal(eg_gate_allow_add(G, &a65, 0, EG_RULE_MANUAL), 0);
	assert_true(aslot6l_of(hi6("2001:db8:a300:1::"), 1ull << 63, 65) >= 0);
	tcp6(&p, "2001:db8:a300:1:8000::5", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "2001:db8:a300:1:ffff:ffff:ffff:ffff", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "2001:db8:a300:1:7fff:ffff:ffff:ffff", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_allow_del(G, &a65), 0);
	assert_int_equal(aslot6l_of(hi6("2001:db8:a300:1::"), 1ull << 63, 65), -1);
	tcp6(&p, "2001:db8:a300:1:8000::5", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* /128 that expires: the deny decides, before GC and after */
	assert_int_equal(eg_gate_allow_add(G, &a128, 10, EG_RULE_MANUAL), 0);
	assert_true(aslot6l_of(hi6("2001:db8:a400::"), lo6("2001:db8:a400::77"), 128) >= 0);
	tcp6(&p, "2001:db8:a400::77", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "2001:db8:a400::78", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_set_clock_offset(G, 11000000000ll), 0);
	tcp6(&p, "2001:db8:a400::77", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_true(eg_gate_gc(G) >= 1);
	assert_int_equal(aslot6l_of(hi6("2001:db8:a400::"), lo6("2001:db8:a400::77"), 128), -1);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	reset_clock();
	/* /0: everything, from its slot */
	assert_int_equal(eg_gate_allow_add(G, &a0, 0, EG_RULE_MANUAL), 0);
	assert_true(aslot6_of(0, 0, NULL) >= 0);
	tcp6(&p, "2001:db8:a400::77", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	assert_int_equal(eg_gate_allow_del(G, &a0), 0);
	assert_int_equal(aslot6_of(0, 0, NULL), -1);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* bulk: a /56, a /100, a /128 */
	{
		struct eg_prefix v[3] = { P("2001:db8:a500::/56"), P("2001:db8:a600::1:0:0/100"),
					  P("2001:db8:a700::9") };

		assert_int_equal(eg_gate_bulk_add(G, true, v, 3, 0, EG_RULE_STATIC), 3);
		assert_true(aslot6_of(hi6("2001:db8:a500::"), 56, NULL) >= 0);
		assert_true(aslot6l_of(hi6("2001:db8:a600::"), lo6("2001:db8:a600::1:0:0"), 100) >= 0);
		assert_true(aslot6l_of(hi6("2001:db8:a700::"), lo6("2001:db8:a700::9"), 128) >= 0);
		tcp6(&p, "2001:db8:a500:ff::1", 1, PROT, PK_ACK);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
		tcp6(&p, "2001:db8:a500:100::1", 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		tcp6(&p, "2001:db8:a600::1:fff:1", 1, PROT, PK_ACK);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
		tcp6(&p, "2001:db8:a600::2:0:1", 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		tcp6(&p, "2001:db8:a700::9", 1, PROT, PK_ACK);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
		for (int i = 0; i < 3; i++)
			assert_int_equal(eg_gate_allow_del(G, &v[i]), 0);
		assert_int_equal(aslot6_of(hi6("2001:db8:a500::"), 56, NULL), -1);
		expect(&p, XDP_DROP, EG_REASON_DENY);
	}
	assert_int_equal(eg_gate_allow_del(G, &r[1]), 0);
	assert_int_equal(eg_gate_allow_del(G, &r[2]), 0);
	assert_int_equal(eg_gate_deny_del(G, &d), 0);
	assert_true(eg_gate_gc(G) >= 0);
	reset_clock();
}

/* Long IPv6 deny rules (/65../128, eg_deny6_slots_v2, two whole 128-bit rules a
 * bucket): three /128s of one bucket, the third through the hash (`more`); a rule in a
 * bucket only (no hash entry) is seen, so XDP reads the slot and indexes the array as
 * the writers do; delete + GC moves the third into the freed slot with its reason. */
#define SLOTS6L_OF(hi, lo, len) eg_deny6l_of((hi), (lo), (len), slots_log2(EG_MAP_DENY6_SLOTS))

static struct eg_slots6l bucket6l(__u64 hi, __u64 lo, unsigned len)
{
	struct eg_slots6l b;
	__u32 i = SLOTS6L_OF(hi, lo, len);

	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_DENY6_SLOTS), &i, &b), 0);
	return b;
}

static int slot6l_of(__u64 hi, __u64 lo, unsigned len, unsigned *reason)
{
	struct eg_slots6l b = bucket6l(hi, lo, len);

	for (int j = 0; j < 2; j++)
		if (b.tag[j] && b.tag[j] >> 8 == (len & 0xff) && b.s[j].hi == hi && b.s[j].lo == lo) {
			if (reason)
				*reason = b.tag[j] & 0xff;
			return j;
		}
	return -1;
}

static void addr6_text(__u64 hi, __u64 lo, char *t, size_t n)
{
	snprintf(t, n, "%x:%x:%x:%x:%x:%x:%x:%x", (unsigned)(hi >> 48), (unsigned)(hi >> 32) & 0xffff,
		 (unsigned)(hi >> 16) & 0xffff, (unsigned)hi & 0xffff, (unsigned)(lo >> 48),
		 (unsigned)(lo >> 32) & 0xffff, (unsigned)(lo >> 16) & 0xffff, (unsigned)lo & 0xffff);
}

static void test_slot_overflow6l(void **s)
{
	__u64 hi = hi6("2001:db8:7a00:1::"), lo[3] = { 1 };
	struct eg_prefix r[3];
	unsigned why = 0;
	char t[80];
	struct pk p;
	int n = 1;

	reset_clock();
	for (__u64 x = 2; n < 3; x++) { /* hosts of one /64 that share lo[0]'s bucket */
		assert_true(x < (1u << 24));
		if (SLOTS6L_OF(hi, x, 128) == SLOTS6L_OF(hi, 1, 128))
			lo[n++] = x;
	}
	for (int i = 0; i < 3; i++) {
		addr6_text(hi, lo[i], t, sizeof(t));
		r[i] = P(t);
		assert_int_equal(eg_gate_deny_add(G, &r[i], 0, i == 2 ? EG_RULE_BAN : EG_RULE_MANUAL), 0);
	}
	assert_true(slot6l_of(hi, lo[0], 128, &why) >= 0);
	assert_int_equal(why, EG_RULE_MANUAL);
	assert_true(slot6l_of(hi, lo[1], 128, NULL) >= 0);
	assert_int_equal(slot6l_of(hi, lo[2], 128, NULL), -1);
	assert_int_equal(bucket6l(hi, lo[0], 128).more, 1);
	for (int i = 0; i < 3; i++) { /* two from the slots, the third from the hash */
		addr6_text(hi, lo[i], t, sizeof(t));
		tcp6(&p, t, 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, i == 2 ? EG_REASON_BAN : EG_REASON_DENY);
	}
	addr6_text(hi, lo[2] + 1, t, sizeof(t)); /* beside them: no rule */
	tcp6(&p, t, 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* a delete leaves the slot at once; GC moves the third into it */
	assert_int_equal(eg_gate_deny_del(G, &r[0]), 0);
	assert_int_equal(slot6l_of(hi, lo[0], 128, NULL), -1);
	addr6_text(hi, lo[0], t, sizeof(t));
	tcp6(&p, t, 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_true(eg_gate_gc(G) >= 0);
	assert_true(slot6l_of(hi, lo[2], 128, &why) >= 0);
	assert_int_equal(why, EG_RULE_BAN);
	assert_int_equal(bucket6l(hi, lo[0], 128).more, 0);
	addr6_text(hi, lo[2], t, sizeof(t));
	tcp6(&p, t, 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	/* a rule in its bucket only: dropped, so XDP reads this slot (and no other) */
	{
		__u64 l = lo[2] + 7 + (1ull << 32); /* another /96: its own bucket (eg_deny6l_of) */
		__u32 i;
		struct eg_slots6l b, z, after;
		int j;

		while (SLOTS6L_OF(hi, l, 128) == SLOTS6L_OF(hi, lo[0], 128))
			l++;
		i = SLOTS6L_OF(hi, l, 128);
		b = z = bucket6l(hi, l, 128);
		j = b.tag[0] ? 1 : 0;

		assert_int_equal(b.tag[j], 0);
		b.s[j].hi = hi;
		b.s[j].lo = l;
		b.tag[j] = eg_slot6l_tag(128, EG_RULE_ABUSE);
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_DENY6_SLOTS), &i, &b, BPF_ANY), 0);
		addr6_text(hi, l, t, sizeof(t));
		tcp6(&p, t, 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_DENY6_SLOTS), &i, &z, BPF_ANY), 0);
		after = bucket6l(hi, l, 128);
		assert_int_equal(memcmp(&z, &after, sizeof(z)), 0);
		expect(&p, XDP_PASS, EG_REASON_PASS);
	}
	assert_int_equal(eg_gate_deny_del(G, &r[1]), 0);
	assert_int_equal(eg_gate_deny_del(G, &r[2]), 0);
	assert_true(eg_gate_gc(G) >= 0);
}

/* The /96 group (eg_deny6_slots_v2, abi.h eg_deny6l_of): every deny rule of /96 to
 * /128 lies in the bucket of its /96, so XDP answers those lengths from one bucket while
 * its `more` is clear, and one length at a time (slot, then the hash) when it is set.
 * ::/0, /64, /96, /127, /128 nested in one /96 with ban and deny alternating, so each
 * verdict names the longest match: two rules of the group in the slots (one read), a
 * third in the hash only (the hash's /128 must beat the slot's /127), a delete and GC
 * moving it into the freed slot and clearing `more`, an expiring /128 before GC and
 * after (the bucket left with the /96 alone), and a bulk load into another /96. */
static void test_v6_group96(void **s)
{
	__u64 hi = hi6("2001:db8:7d00:1::"), g = 0x0000000a00000000ull; /* the /96 ...:0:a::/96 */
	struct eg_prefix r0 = P("::/0"), r64 = P("2001:db8:7d00:1::/64"), r96 = P("2001:db8:7d00:1:0:a::/96"),
			 r127 = P("2001:db8:7d00:1:0:a:0:4/127"), r128 = P("2001:db8:7d00:1:0:a:0:5"),
			 r128e = P("2001:db8:7d00:1:0:a:0:7");
	struct eg_slots6l b;
	unsigned why = 0;
	struct pk p;

	reset_clock();
	assert_int_equal(SLOTS6L_OF(hi, g, 96), SLOTS6L_OF(hi, g | 5, 128));
	assert_int_equal(SLOTS6L_OF(hi, g, 96), SLOTS6L_OF(hi, g | 4, 127));
	assert_int_equal(eg_gate_deny_add(G, &r0, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_deny_add(G, &r64, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &r96, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_deny_add(G, &r127, 0, EG_RULE_SCANNER), 0);
	/* two of the group: both in the slots, `more` clear (the one-read path) */
	b = bucket6l(hi, g, 96);
	assert_int_equal(b.more, 0);
	assert_true(slot6l_of(hi, g, 96, &why) >= 0);
	assert_int_equal(why, EG_RULE_BAN);
	assert_true(slot6l_of(hi, g | 4, 127, &why) >= 0);
	assert_int_equal(why, EG_RULE_SCANNER);
	for (int round = 0; round < 2; round++) { /* the one-read path, then one length at a time */
		tcp6(&p, "2001:db8:7d00:1:0:a:0:5", 1, PROT, PK_ACK); /* /127 */
		expect(&p, XDP_DROP, round ? EG_REASON_BAN : EG_REASON_DENY);
		tcp6(&p, "2001:db8:7d00:1:0:a:0:4", 1, PROT, PK_ACK); /* /127 */
		expect(&p, XDP_DROP, EG_REASON_DENY);
		tcp6(&p, "2001:db8:7d00:1:0:a:ffff:9", 1, PROT, PK_ACK); /* /96 only */
		expect(&p, XDP_DROP, EG_REASON_BAN);
		tcp6(&p, "2001:db8:7d00:1:0:a:ffff:9", 1, OPEN, PK_ACK); /* a ban: open port passes */
		expect(&p, XDP_PASS, EG_REASON_PASS);
		tcp6(&p, "2001:db8:7d00:1:0:b::9", 1, PROT, PK_ACK); /* the next /96: the /64 */
		expect(&p, XDP_DROP, EG_REASON_DENY);
		tcp6(&p, "2001:db8:7d00:2::9", 1, PROT, PK_ACK); /* another /64: ::/0 */
		expect(&p, XDP_DROP, EG_REASON_BAN);
		if (round == 0) { /* a third rule of the group: the hash only, `more` */
			assert_int_equal(eg_gate_deny_add(G, &r128, 0, EG_RULE_BAN), 0);
			assert_int_equal(slot6l_of(hi, g | 5, 128, NULL), -1);
			assert_int_equal(bucket6l(hi, g, 96).more, 1);
		}
	}
	/* the /127 deleted: its slot at once, `more` until GC, which moves the /128 in */
	assert_int_equal(eg_gate_deny_del(G, &r127), 0);
	assert_int_equal(slot6l_of(hi, g | 4, 127, NULL), -1);
	tcp6(&p, "2001:db8:7d00:1:0:a:0:4", 1, PROT, PK_ACK); /* the /96 now */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_true(eg_gate_gc(G) >= 0);
	assert_true(slot6l_of(hi, g | 5, 128, &why) >= 0);
	assert_int_equal(why, EG_RULE_BAN);
	assert_int_equal(bucket6l(hi, g, 96).more, 0);
	tcp6(&p, "2001:db8:7d00:1:0:a:0:5", 1, OPEN, PK_ACK); /* a ban (the /128): open port */
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* the /128 replaced by an expiring deny /128 beside it: its slot, then the /96 */
	assert_int_equal(eg_gate_deny_del(G, &r128), 0);
	assert_int_equal(eg_gate_deny_add(G, &r128e, 10, EG_RULE_MANUAL), 0);
	assert_true(slot6l_of(hi, g | 7, 128, NULL) >= 0);
	assert_int_equal(bucket6l(hi, g, 96).more, 0);
	tcp6(&p, "2001:db8:7d00:1:0:a:0:7", 1, OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_set_clock_offset(G, 11000000000ll), 0);
	for (int round = 0; round < 2; round++) { /* expired, before GC and after */
		tcp6(&p, "2001:db8:7d00:1:0:a:0:7", 1, OPEN, PK_ACK); /* the /96's ban */
		expect(&p, XDP_PASS, EG_REASON_PASS);
		tcp6(&p, "2001:db8:7d00:1:0:a:0:7", 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_BAN);
		if (round == 0)
			assert_true(eg_gate_gc(G) >= 1);
	}
	/* the last /128 of the /96 gone: the bucket holds the /96 alone */
	assert_int_equal(bucket6l(hi, g, 96).more, 0);
	assert_int_equal(slot6l_of(hi, g | 7, 128, NULL), -1);
	assert_int_equal(slot6l_of(hi, g | 5, 128, NULL), -1);
	assert_true(slot6l_of(hi, g, 96, NULL) >= 0);
	/* the /96 deleted: the /64 decides its addresses, ::/0 the rest */
	assert_int_equal(eg_gate_deny_del(G, &r96), 0);
	tcp6(&p, "2001:db8:7d00:1:0:a:0:7", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &r64), 0);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_deny_del(G, &r0), 0);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_true(eg_gate_gc(G) >= 0);
	assert_int_equal(slot6l_of(hi, g, 96, NULL), -1);
	/* bulk: a /100 and a /128 inside it, in their /96's bucket */
	{
		struct eg_prefix v[2] = { P("2001:db8:7d00:1:0:c:0:9"), P("2001:db8:7d00:1:0:c::/100") };

		assert_int_equal(eg_gate_bulk_add(G, false, v, 1, 0, EG_RULE_BAN), 1);
		assert_int_equal(eg_gate_bulk_add(G, false, v + 1, 1, 0, EG_RULE_SCANNER), 1);
		assert_true(slot6l_of(hi, 0x0000000c00000009ull, 128, NULL) >= 0);
		assert_true(slot6l_of(hi, 0x0000000c00000000ull, 100, NULL) >= 0);
		assert_int_equal(bucket6l(hi, 0x0000000c00000000ull, 96).more, 0);
		tcp6(&p, "2001:db8:7d00:1:0:c:0:9", 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_BAN);
		tcp6(&p, "2001:db8:7d00:1:0:c:fff:9", 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		tcp6(&p, "2001:db8:7d00:1:0:c:1000:9", 1, PROT, PK_ACK); /* past the /100 */
		expect(&p, XDP_PASS, EG_REASON_PASS);
		assert_int_equal(eg_gate_deny_del(G, &v[0]), 0);
		assert_int_equal(eg_gate_deny_del(G, &v[1]), 0);
	}
	assert_true(eg_gate_gc(G) >= 0);
	reset_clock();
}

/* Upgrade to eg_deny6_slots_v2: a gate started on pins without it (a v1 daemon's) creates
 * it and fills it from eg_deny6_v3 before the program runs, a /96 and a /128 inside it in
 * the /96's bucket with `more` clear, so both drop at once. */
static void test_deny6_group96_at_load(void **s)
{
	struct eg_prefix r96 = P("2001:db8:7e00:1:0:3::/96"), r128 = P("2001:db8:7e00:1:0:3:0:8");
	struct eg_gate_config c = gcfg();
	__u64 hi = hi6("2001:db8:7e00:1::"), g = 0x0000000300000000ull;
	char err[256], path[512];
	unsigned why = 0;
	struct pk p;

	reset_clock();
	assert_int_equal(eg_gate_deny_add(G, &r96, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &r128, 0, EG_RULE_BAN), 0);
	eg_gate_close(G);
	snprintf(path, sizeof(path), "%s/%s", pin_root, EG_MAP_DENY6_SLOTS);
	assert_int_equal(unlink(path), 0);
	G = eg_gate_load(&c, err, sizeof(err));
	assert_non_null(G);
	assert_true(slot6l_of(hi, g, 96, &why) >= 0);
	assert_int_equal(why, EG_RULE_MANUAL);
	assert_true(slot6l_of(hi, g | 8, 128, &why) >= 0);
	assert_int_equal(why, EG_RULE_BAN);
	assert_int_equal(bucket6l(hi, g, 96).more, 0);
	tcp6(&p, "2001:db8:7e00:1:0:3:0:8", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp6(&p, "2001:db8:7e00:1:0:3:0:9", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &r128), 0);
	assert_int_equal(eg_gate_deny_del(G, &r96), 0);
	assert_true(eg_gate_gc(G) >= 0);
}

/* A writer killed between the record and the bucket: a /128 deny in eg_deny6_v3 only (no
 * slot, no index bit, no count), inside a /96 ban whose bucket says `more` clear. XDP's one
 * read finds the /96 (the source is still dropped on protected ports, under the ban), the
 * /128 waits for GC, as any rule a crashed writer left out of its bucket did before v2; GC's
 * recount differs, rebuilds the index and the bucket, and the /128 decides on every port. */
static void test_deny6_group96_crashed_writer(void **s)
{
	struct eg_prefix r96 = P("2001:db8:7f00:1:0:4::/96"), r128 = P("2001:db8:7f00:1:0:4:0:6");
	__u64 hi = hi6("2001:db8:7f00:1::"), g = 0x0000000400000000ull;
	struct eg_key6 k = { .plen = 128 };
	struct eg_rule rule = { .reason = EG_RULE_MANUAL };
	struct pk p;

	reset_clock();
	assert_int_equal(eg_gate_deny_add(G, &r96, 0, EG_RULE_BAN), 0);
	memcpy(k.a, r128.addr, 16);
	assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_DENY6), &k, &rule, BPF_NOEXIST), 0);
	assert_int_equal(bucket6l(hi, g, 96).more, 0);
	assert_int_equal(slot6l_of(hi, g | 6, 128, NULL), -1);
	tcp6(&p, "2001:db8:7f00:1:0:4:0:6", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_true(eg_gate_gc(G) >= 0);
	assert_true(slot6l_of(hi, g | 6, 128, NULL) >= 0);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:7f00:1:0:4:0:6", 1, OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:7f00:1:0:4:0:7", 1, OPEN, PK_ACK); /* the /96's ban: open port */
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_del(G, &r128), 0);
	assert_int_equal(eg_gate_deny_del(G, &r96), 0);
	assert_true(eg_gate_gc(G) >= 0);
}

/* IPv6 lengths around the short/long split and the ends: /0, /64, /65, /127, /128
 * nested in one /64, each the longest match somewhere; an expired /65 hides neither
 * the live /127 inside it nor the /64 around it (before GC and after), and an expired
 * /127 inside a live /65 falls back to the /65. Bulk load takes the same path. */
static void test_v6_long_edges(void **s)
{
	struct eg_prefix r0 = P("::/0"), r64 = P("2001:db8:7b00:1::/64"),
			 r65 = P("2001:db8:7b00:1::/65"), r127 = P("2001:db8:7b00:1::4/127"),
			 r128 = P("2001:db8:7b00:1::5"), r65b = P("2001:db8:7b00:1:8000::/65"),
			 r127b = P("2001:db8:7b00:1:8000::2/127");
	unsigned why = 0;
	struct pk p;

	reset_clock();
	assert_int_equal(eg_gate_deny_add(G, &r0, 0, EG_RULE_ABUSE), 0);
	assert_int_equal(eg_gate_deny_add(G, &r64, 0, EG_RULE_SCANNER), 0);
	assert_int_equal(eg_gate_deny_add(G, &r65, 10, EG_RULE_MANUAL), 0); /* expires */
	assert_int_equal(eg_gate_deny_add(G, &r127, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_deny_add(G, &r128, 0, EG_RULE_MANUAL), 0);
	assert_true(slot6l_of(hi6("2001:db8:7b00:1::"), 0, 65, &why) >= 0);
	assert_int_equal(why, EG_RULE_MANUAL);
	assert_true(slot6l_of(hi6("2001:db8:7b00:1::"), 4, 127, &why) >= 0);
	assert_int_equal(why, EG_RULE_BAN);
	assert_true(slot6l_of(hi6("2001:db8:7b00:1::"), 5, 128, NULL) >= 0);
	assert_true(slot6_of(hi6("2001:db8:7b00:1::"), 64) >= 0);
	tcp6(&p, "2001:db8:7b00:1::5", 1, PROT, PK_ACK); /* /128 (manual) */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:7b00:1::4", 1, PROT, PK_ACK); /* /127 (ban), the /128's pair */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp6(&p, "2001:db8:7b00:1::6", 1, PROT, PK_SYN); /* /65 (manual, live) */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &r0), 0);
	assert_int_equal(eg_gate_deny_add(G, &r0, 0, EG_RULE_BAN), 0); /* ::/0 bans; protected port only */
	assert_int_equal(eg_gate_set_clock_offset(G, 11000000000ll), 0);
	for (int round = 0; round < 2; round++) { /* before GC, then after */
		tcp6(&p, "2001:db8:7b00:1::4", 1, PROT, PK_ACK); /* /127 inside the expired /65 */
		expect(&p, XDP_DROP, EG_REASON_BAN);
		tcp6(&p, "2001:db8:7b00:1::6", 1, PROT, PK_ACK); /* expired /65: the /64 */
		expect(&p, XDP_DROP, EG_REASON_DENY);
		tcp6(&p, "2001:db8:7b00:2::6", 1, OPEN, PK_ACK); /* only ::/0 (a ban): open port */
		expect(&p, XDP_PASS, EG_REASON_PASS);
		if (round == 0) { /* >= 1: an earlier test's rule may expire with it */
			assert_true(eg_gate_gc(G) >= 1);
			assert_int_equal(slot6l_of(hi6("2001:db8:7b00:1::"), 0, 65, NULL), -1);
		}
	}
	/* the other half of the /64: a live /65 with an expiring /127 inside */
	assert_int_equal(eg_gate_deny_add(G, &r65b, 0, EG_RULE_SCANNER), 0);
	assert_int_equal(eg_gate_deny_add(G, &r127b, 10, EG_RULE_BAN), 0);
	tcp6(&p, "2001:db8:7b00:1:8000::3", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_set_clock_offset(G, 22000000000ll), 0);
	expect(&p, XDP_DROP, EG_REASON_DENY); /* the /65 now */
	assert_true(eg_gate_gc(G) >= 1);
	assert_int_equal(slot6l_of(hi6("2001:db8:7b00:1::"), 0x80000000000002ull, 127, NULL), -1);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(read_table(EG_TBL_DENY6).count[127], 1);
	assert_int_equal(read_table(EG_TBL_DENY6).count[65], 1);
	/* deletes leave their slots; the /64 and ::/0 remain */
	assert_int_equal(eg_gate_deny_del(G, &r128), 0);
	assert_int_equal(eg_gate_deny_del(G, &r127), 0);
	assert_int_equal(eg_gate_deny_del(G, &r65b), 0);
	assert_int_equal(slot6l_of(hi6("2001:db8:7b00:1::"), 5, 128, NULL), -1);
	tcp6(&p, "2001:db8:7b00:1::5", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &r64), 0);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_deny_del(G, &r0), 0);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* bulk: long rules go into their slots straight after the hash */
	{
		struct eg_prefix v[2] = { P("2001:db8:7b00:3::9"), P("2001:db8:7b00:3::/100") };

		assert_int_equal(eg_gate_bulk_add(G, false, v, 2, 0, EG_RULE_SCANNER), 2);
		assert_true(slot6l_of(hi6("2001:db8:7b00:3::"), 9, 128, &why) >= 0);
		assert_int_equal(why, EG_RULE_SCANNER);
		assert_true(slot6l_of(hi6("2001:db8:7b00:3::"), 0, 100, NULL) >= 0);
		tcp6(&p, "2001:db8:7b00:3::9", 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		tcp6(&p, "2001:db8:7b00:3::fff:1", 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		tcp6(&p, "2001:db8:7b00:3::1:0:0", 1, PROT, PK_ACK); /* past the /100 */
		expect(&p, XDP_PASS, EG_REASON_PASS);
		assert_int_equal(eg_gate_deny_del(G, &v[0]), 0);
		assert_int_equal(eg_gate_deny_del(G, &v[1]), 0);
	}
	assert_true(eg_gate_gc(G) >= 0);
	reset_clock();
}

/* An expired prefix hides neither a longer nor a shorter live one, before GC and after. */
static void test_prefix_expiry_nesting(void **s)
{
	struct eg_prefix outer = P("198.18.40.0/21"), inner = P("198.18.41.0/24"),
			 o2 = P("198.18.44.0/22"), i2 = P("198.18.45.0/25");
	struct pk p;

	reset_clock();
	assert_int_equal(eg_gate_deny_add(G, &outer, 10, EG_RULE_MANUAL), 0); /* expires first */
	assert_int_equal(eg_gate_deny_add(G, &inner, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_deny_add(G, &o2, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &i2, 10, EG_RULE_BAN), 0); /* the longer one expires */
	tcp4(&p, "198.18.45.1", PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_set_clock_offset(G, 11000000000ll), 0);
	for (int round = 0; round < 2; round++) { /* before GC, then after */
		tcp4(&p, "198.18.41.9", PROT, PK_ACK); /* inner (live) inside expired outer */
		expect(&p, XDP_DROP, EG_REASON_BAN);
		tcp4(&p, "198.18.40.9", PROT, PK_ACK); /* only the expired outer */
		expect(&p, XDP_PASS, EG_REASON_PASS);
		tcp4(&p, "198.18.45.1", PROT, PK_ACK); /* expired /25 inside live /22 */
		expect(&p, XDP_DROP, EG_REASON_DENY);
		if (round == 0)
			assert_true(eg_gate_gc(G) >= 2); /* and any flow an earlier test left to expire */
	}
	assert_int_equal(read_table(EG_TBL_DENY4).count[21], 0);
	assert_int_equal(read_table(EG_TBL_DENY4).count[25], 0);
	assert_int_equal(eg_gate_deny_del(G, &inner), 0);
	assert_int_equal(eg_gate_deny_del(G, &o2), 0);
	reset_clock();
}

static void test_longest_match_v6(void **s)
{
	struct eg_prefix a = P("2001:db8:20::/48"), b = P("2001:db8:20:1::/64"),
			 c = P("2001:db8:20:1::5"), all = P("::/0");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &c, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &a, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &b, 0, EG_RULE_BAN), 0);
	tcp6(&p, "2001:db8:20:1::5", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:20:1::6", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp6(&p, "2001:db8:20:2::6", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:21::6", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_add(G, &all, 0, EG_RULE_ABUSE), 0);
	tcp6(&p, "2001:db8:21::6", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp4(&p, "198.18.20.1", PROT, PK_ACK); /* ::/0 is IPv6 only */
	expect(&p, XDP_PASS, EG_REASON_PASS);
	struct eg_table t = read_table(EG_TBL_DENY6);
	assert_int_equal(t.count[128], 1);
	assert_int_equal(t.count[64], 1);
	assert_int_equal(t.count[48], 1);
	assert_int_equal(t.count[0], 1);
	assert_int_equal(t.lens[2], 1);
	assert_int_equal(eg_gate_deny_del(G, &b), 0);
	tcp6(&p, "2001:db8:20:1::6", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &all), 0);
	assert_int_equal(eg_gate_deny_del(G, &a), 0);
	assert_int_equal(eg_gate_deny_del(G, &c), 0);
	tcp6(&p, "2001:db8:20:1::5", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	t = read_table(EG_TBL_DENY6);
	assert_true(t.lens[0] == 0 && t.lens[1] == 0 && t.lens[2] == 0);
}

/* The IPv6 deny index (v3): one byte per /48 hash, a bit per length group; set
 * before a rule shows, cleared by GC after a delete. Lengths under 48 are always
 * looked up; a shorter rule's deletion leaves a longer one inside it intact. */
static __u64 idx6_byte(const char *addr48)
{
	struct eg_prefix a = P(addr48);
	__u64 hi = 0, v;
	__u32 b, w;

	for (int i = 0; i < 8; i++)
		hi = hi << 8 | a.addr[i];
	b = eg_idx6_slot(hi);
	w = b >> 3;
	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_DENY6_IDX), &w, &v), 0);
	return (v >> ((b & 7) * 8)) & 0xff;
}

/* The IPv6 allow index (eg_allow6_idx_v1, as the deny one): an allow /48 and a /128 in
 * another /48 set their group bits; a source is allowed only through its /48's byte (a
 * byte cleared by hand makes XDP skip the /48's lengths: the deny decides), lengths
 * under /48 are always looked up, and bulk allows set the bits too. */
static __u64 aidx6_word(const char *addr48, __u32 *w, unsigned *shift)
{
	struct eg_prefix a = P(addr48);
	__u64 hi = 0, v;
	__u32 b;

	for (int i = 0; i < 8; i++)
		hi = hi << 8 | a.addr[i];
	b = eg_idx6_slot(hi);
	*w = b >> 3;
	*shift = (b & 7) * 8;
	assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_ALLOW6_IDX), w, &v), 0);
	return v;
}

static unsigned aidx6_byte(const char *addr48)
{
	__u32 w;
	unsigned sh;
	__u64 v = aidx6_word(addr48, &w, &sh);

	return (unsigned)(v >> sh) & 0xff;
}

static void test_allow6_index(void **s)
{
	struct eg_prefix deny = P("2001:db8:5000::/36"), a48 = P("2001:db8:5050::/48"),
			 a128 = P("2001:db8:5051::9"), a40 = P("2001:db8:5100::/40");
	__u32 w;
	unsigned sh;
	__u64 v;
	struct pk p;

	reset_clock();
	assert_int_equal(eg_gate_deny_add(G, &deny, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_allow_add(G, &a48, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_allow_add(G, &a128, 0, EG_RULE_MANUAL), 0);
	assert_true(aidx6_byte("2001:db8:5050::") & (1u << eg_group6(48)));
	assert_true(aidx6_byte("2001:db8:5051::") & (1u << eg_group6(128)));
	tcp6(&p, "2001:db8:5050::77", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "2001:db8:5051::9", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "2001:db8:5051::8", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* the byte is a promise: cleared, the /48's allow is not looked up */
	{
		__u64 z;

		v = aidx6_word("2001:db8:5050::", &w, &sh);
		z = v & ~(0xffull << sh);
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_ALLOW6_IDX), &w, &z, BPF_ANY), 0);
		tcp6(&p, "2001:db8:5050::77", 1, PROT, PK_ACK);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		assert_int_equal(bpf_map_update_elem(eg_gate_map_fd(G, EG_MAP_ALLOW6_IDX), &w, &v, BPF_ANY), 0);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
	}
	/* under /48: no byte of its own, always looked up */
	assert_int_equal(eg_gate_allow_add(G, &a40, 0, EG_RULE_MANUAL), 0);
	tcp6(&p, "2001:db8:51ff::1", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	/* GC clears the bits of a deleted allow */
	assert_int_equal(eg_gate_allow_del(G, &a128), 0);
	assert_true(eg_gate_gc(G) >= 0);
	assert_false(aidx6_byte("2001:db8:5051::") & (1u << eg_group6(128)));
	tcp6(&p, "2001:db8:5051::9", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* bulk allows set their bits */
	{
		struct eg_prefix b[2] = { P("2001:db8:5060::5"), P("2001:db8:5061::/64") };

		assert_int_equal(eg_gate_bulk_add(G, true, b, 2, 0, EG_RULE_STATIC), 2);
		assert_true(aidx6_byte("2001:db8:5060::") & (1u << eg_group6(128)));
		assert_true(aidx6_byte("2001:db8:5061::") & (1u << eg_group6(64)));
		tcp6(&p, "2001:db8:5060::5", 1, PROT, PK_ACK);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
		tcp6(&p, "2001:db8:5061:0:1::1", 1, PROT, PK_ACK);
		expect(&p, XDP_PASS, EG_REASON_ALLOW);
		assert_int_equal(eg_gate_allow_del(G, &b[0]), 0);
		assert_int_equal(eg_gate_allow_del(G, &b[1]), 0);
	}
	assert_int_equal(eg_gate_allow_del(G, &a48), 0);
	assert_int_equal(eg_gate_allow_del(G, &a40), 0);
	assert_int_equal(eg_gate_deny_del(G, &deny), 0);
	assert_true(eg_gate_gc(G) >= 0);
}

/* Several candidate lengths in one length group (IPv4 17-23, IPv6 97-127): the longest
 * is found by smearing the candidate word (hibit's path for more than one bit), one
 * alone by its bit; ban and deny alternate with the length, so a wrong order shows in
 * the counter. */
static void test_hibit_candidates(void **s)
{
	static const struct { const char *rule; unsigned reason; } rules[] = {
		{ "198.18.96.0/20", EG_RULE_MANUAL }, { "198.18.100.0/22", EG_RULE_BAN },
		{ "198.18.102.0/23", EG_RULE_MANUAL }, { "2001:db8:96::/100", EG_RULE_MANUAL },
		{ "2001:db8:96::/112", EG_RULE_BAN }, { "2001:db8:96::/120", EG_RULE_MANUAL },
	};
	static const struct { const char *src; unsigned want; } v4[] = {
		{ "198.18.102.5", EG_REASON_DENY }, /* /23 */
		{ "198.18.100.5", EG_REASON_BAN },  /* /22 */
		{ "198.18.97.5", EG_REASON_DENY },  /* /20 */
		{ "198.18.112.5", EG_REASON_PASS },
	}, v6[] = {
		{ "2001:db8:96::5", EG_REASON_DENY },   /* /120 */
		{ "2001:db8:96::1ff", EG_REASON_BAN },  /* /112 */
		{ "2001:db8:96::1:5", EG_REASON_DENY }, /* /100 */
		{ "2001:db8:96::1000:5", EG_REASON_PASS },
	};
	struct eg_prefix r;
	struct pk p;

	reset_clock();
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		r = P(rules[i].rule);
		assert_int_equal(eg_gate_deny_add(G, &r, 0, rules[i].reason), 0);
	}
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		tcp4(&p, v4[i].src, PROT, PK_ACK);
		expect(&p, v4[i].want == EG_REASON_PASS ? XDP_PASS : XDP_DROP, v4[i].want);
		tcp6(&p, v6[i].src, 1, PROT, PK_ACK);
		expect(&p, v6[i].want == EG_REASON_PASS ? XDP_PASS : XDP_DROP, v6[i].want);
	}
	/* the longest gone, the next decides; one length left: its bit alone */
	static const struct { size_t del4, del6; unsigned want; } steps[] = {
		{ 2, 5, EG_REASON_BAN }, { 1, 4, EG_REASON_DENY }, { 0, 3, EG_REASON_PASS },
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		r = P(rules[steps[i].del4].rule);
		assert_int_equal(eg_gate_deny_del(G, &r), 0);
		r = P(rules[steps[i].del6].rule);
		assert_int_equal(eg_gate_deny_del(G, &r), 0);
		int act = steps[i].want == EG_REASON_PASS ? XDP_PASS : XDP_DROP;
		tcp4(&p, "198.18.102.5", PROT, PK_ACK);
		expect(&p, act, steps[i].want);
		tcp6(&p, "2001:db8:96::5", 1, PROT, PK_ACK);
		expect(&p, act, steps[i].want);
	}
	assert_true(eg_gate_gc(G) >= 0);
}

static void test_v6_filter(void **s)
{
	struct eg_prefix r48 = P("2001:db8:40::/48"), r32 = P("2001:db8::/32"),
			 r128 = P("2001:db8:40:5::1"), r64 = P("2001:db8:40:6::/64");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &r48, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(idx6_byte("2001:db8:40::"), 1u << eg_group6(48));
	tcp6(&p, "2001:db8:40:5::1", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:41::1", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* a /32 covers /48s without a byte: lengths under 48 are always looked up (the
	 * /48's byte is empty: without lengths under 48 the match ends at that byte) */
	assert_int_equal(idx6_byte("2001:db8:41::"), 0);
	assert_int_equal(eg_gate_deny_add(G, &r32, 0, EG_RULE_ABUSE), 0);
	tcp6(&p, "2001:db8:41::1", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &r32), 0);
	tcp6(&p, "2001:db8:41::1", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	/* a /128 (ban) and a /64 inside the /48: their groups join the byte */
	assert_int_equal(eg_gate_deny_add(G, &r128, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_deny_add(G, &r64, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(idx6_byte("2001:db8:40::"),
			 (1u << eg_group6(48)) | (1u << eg_group6(128)) | (1u << eg_group6(64)));
	tcp6(&p, "2001:db8:40:5::1", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN); /* the longest rule decides */
	/* deleting the shorter /48 leaves the /128 and the /64 inside it */
	assert_int_equal(eg_gate_deny_del(G, &r48), 0);
	tcp6(&p, "2001:db8:40:5::2", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp6(&p, "2001:db8:40:5::1", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp6(&p, "2001:db8:40:6::9", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* GC: the byte keeps exactly the groups still in use, then none */
	assert_true(eg_gate_gc(G) >= 0);
	assert_int_equal(idx6_byte("2001:db8:40::"), (1u << eg_group6(128)) | (1u << eg_group6(64)));
	assert_int_equal(eg_gate_deny_del(G, &r128), 0);
	assert_int_equal(eg_gate_deny_del(G, &r64), 0);
	tcp6(&p, "2001:db8:40:5::1", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_true(eg_gate_gc(G) >= 0);
	assert_int_equal(idx6_byte("2001:db8:40::"), 0);
}

/* IPv6 deny rules of /64 or shorter live in the short-key hash (eg_deny6s_v1, key:
 * the upper 64 bits), longer ones in eg_deny6_v3: /0 /63 /64 on one side, /65 /128 on
 * the other, the longest live rule still wins across the two, and deletes, expiry,
 * listing and GC's recount see both. */
static bool in_short6(const struct eg_prefix *p)
{
	struct eg_key6s k = { .plen = p->plen };
	struct eg_rule r;

	memcpy(k.a, p->addr, 8);
	return bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_DENY6S), &k, &r) == 0;
}

static bool in_long6(const struct eg_prefix *p)
{
	struct eg_key6 k = { .plen = p->plen };
	struct eg_rule r;

	memcpy(k.a, p->addr, 16);
	return bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_DENY6), &k, &r) == 0;
}

static int find_entry(const struct eg_gate_entry *e, void *arg)
{
	const struct eg_prefix *p = arg;

	return e->plen == p->plen && !memcmp(e->addr, p->addr, 16);
}

static void test_v6_short_keys(void **s)
{
	struct eg_prefix r0 = P("::/0"), r63 = P("2001:db8:60::/63"), r64 = P("2001:db8:60:1::/64"),
			 r65 = P("2001:db8:60:1:8000::/65"), r128 = P("2001:db8:60:1:8000::1"),
			 r56 = P("2001:db8:70::/56");
	struct eg_table t0 = read_table(EG_TBL_DENY6), t1, t2;
	struct pk p;

	reset_clock();
	assert_int_equal(eg_gate_deny_add(G, &r128, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &r65, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_deny_add(G, &r64, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &r63, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_deny_add(G, &r0, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &r56, 10, EG_RULE_BAN), 0);
	assert_true(in_short6(&r0) && in_short6(&r63) && in_short6(&r64) && in_short6(&r56));
	assert_false(in_long6(&r0) || in_long6(&r63) || in_long6(&r64));
	assert_true(in_long6(&r65) && in_long6(&r128));
	assert_false(in_short6(&r65) || in_short6(&r128));
	assert_int_equal(eg_gate_deny_reason(G, &r64), EG_RULE_MANUAL);
	assert_int_equal(eg_gate_deny_reason(G, &r65), EG_RULE_BAN);
	t1 = read_table(EG_TBL_DENY6);
	for (unsigned l = 0; l <= 128; l++)
		assert_int_equal(t1.count[l] - t0.count[l],
				 l == 0 || l == 56 || l == 63 || l == 64 || l == 65 || l == 128);
	tcp6(&p, "2001:db8:60:1:8000::1", 1, PROT, PK_ACK); /* the /128 */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:60:1:8000::2", 1, PROT, PK_ACK); /* the /65 (bit 64 set) */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp6(&p, "2001:db8:60:1::2", 1, PROT, PK_ACK); /* the /64 (bit 64 clear) */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:60::5", 1, PROT, PK_ACK); /* the /63 */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp6(&p, "2001:db8:70:ff::5", 1, PROT, PK_ACK); /* the /56 */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp6(&p, "2001:db8:62::5", 1, PROT, PK_ACK); /* only the /0 */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_list(G, find_entry, &r64) > 0, 1);
	/* expiry of the /56 (short map): passed over before GC, removed by it */
	assert_int_equal(eg_gate_set_clock_offset(G, 11000000000ll), 0);
	tcp6(&p, "2001:db8:70:ff::5", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY); /* the /0 */
	assert_int_equal(eg_gate_gc(G), 1);
	assert_false(in_short6(&r56));
	t2 = read_table(EG_TBL_DENY6);
	assert_int_equal(t2.count[56], t0.count[56]);
	reset_clock();
	/* deletes, longest first falls back through both maps */
	assert_int_equal(eg_gate_deny_del(G, &r64), 0);
	assert_false(in_short6(&r64));
	tcp6(&p, "2001:db8:60:1::2", 1, PROT, PK_ACK); /* now the /63 */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_deny_del(G, &r63), 0);
	tcp6(&p, "2001:db8:60:1::2", 1, PROT, PK_ACK); /* now the /0 */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &r0), 0);
	tcp6(&p, "2001:db8:60:1::2", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp6(&p, "2001:db8:60:1:8000::2", 1, PROT, PK_ACK); /* the /65 stays */
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_deny_del(G, &r65), 0);
	tcp6(&p, "2001:db8:60:1:8000::2", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp6(&p, "2001:db8:60:1:8000::1", 1, PROT, PK_ACK); /* the /128 stays */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &r128), 0);
	tcp6(&p, "2001:db8:60:1:8000::1", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_true(eg_gate_gc(G) >= 0);
	t2 = read_table(EG_TBL_DENY6);
	assert_memory_equal(t2.count, t0.count, sizeof(t0.count));
	assert_memory_equal(t2.lens, t0.lens, sizeof(t0.lens));
}

/* A bulk load beside existing rules (issue 14): it counts only entries that are new
 * (an entry already there, or twice in the list, once), sets the index bits of what
 * it loads, and leaves counts a full recount (GC) agrees with. */
static void test_bulk_incremental(void **s)
{
	struct eg_prefix pre[] = { P("198.18.90.0/24"), P("198.18.91.7"), P("2001:db8:90::/48") };
	struct eg_prefix v[] = {
		P("198.18.91.7"),      /* exists (single add) */
		P("198.18.91.8"),      /* new /32 in the same /24 */
		P("198.18.91.8"),      /* twice in the list */
		P("198.18.96.0/20"),   /* new, 16 /24s */
		P("198.18.90.0/24"),   /* exists */
		P("2001:db8:90::/48"), /* exists */
		P("2001:db8:91::1"),   /* new /128 */
		P("2001:db8:92::/64"), /* new /64 */
		P("::/0"),             /* new /0 */
	};
	struct eg_table b4 = read_table(EG_TBL_DENY4), b6 = read_table(EG_TBL_DENY6), a4, a6, g4, g6;
	struct pk p;

	for (size_t i = 0; i < 3; i++)
		assert_int_equal(eg_gate_deny_add(G, &pre[i], 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_bulk_add(G, false, v, sizeof(v) / sizeof(v[0]), 0, EG_RULE_ABUSE),
			 (long)(sizeof(v) / sizeof(v[0])));
	a4 = read_table(EG_TBL_DENY4);
	a6 = read_table(EG_TBL_DENY6);
	assert_int_equal(a4.count[32] - b4.count[32], 2);
	assert_int_equal(a4.count[24] - b4.count[24], 1);
	assert_int_equal(a4.count[20] - b4.count[20], 1);
	assert_int_equal(a6.count[48] - b6.count[48], 1);
	assert_int_equal(a6.count[128] - b6.count[128], 1);
	assert_int_equal(a6.count[64] - b6.count[64], 1);
	assert_int_equal(a6.count[0] - b6.count[0], 1);
	assert_true(a4.lens[0] & (1ull << 20));
	assert_true(a6.lens[0] & 1);
	/* a full recount agrees */
	assert_true(eg_gate_gc(G) >= 0);
	g4 = read_table(EG_TBL_DENY4);
	g6 = read_table(EG_TBL_DENY6);
	assert_memory_equal(g4.count, a4.count, sizeof(a4.count));
	assert_memory_equal(g6.count, a6.count, sizeof(a6.count));
	assert_memory_equal(g4.lens, a4.lens, sizeof(a4.lens));
	assert_memory_equal(g6.lens, a6.lens, sizeof(a6.lens));
	/* index bits: the new /20 in each of its /24s, the /32s beside the existing /24 */
	assert_int_equal(idx_byte(EG_MAP_DENY4_IDX, "198.18.96.1"), 1u << eg_group4(20));
	assert_int_equal(idx_byte(EG_MAP_DENY4_IDX, "198.18.111.1"), 1u << eg_group4(20));
	assert_int_equal(idx_byte(EG_MAP_DENY4_IDX, "198.18.112.1"), 0);
	assert_int_equal(idx_byte(EG_MAP_DENY4_IDX, "198.18.91.1"), 1u << eg_group4(32));
	assert_int_equal(idx_byte(EG_MAP_DENY4_IDX, "198.18.90.1"), 1u << eg_group4(24));
	assert_int_equal(idx6_byte("2001:db8:91::"), 1u << eg_group6(128));
	/* verdicts: the loaded reason replaced the existing entries' */
	tcp4(&p, "198.18.91.8", PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp4(&p, "198.18.91.9", PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp4(&p, "198.18.111.200", PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_reason(G, &pre[0]), EG_RULE_ABUSE);
	tcp6(&p, "2001:db8:91::1", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:92::77", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2001:db8:5::1", 1, PROT, PK_ACK); /* the ::/0 */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* deleting loaded entries counts down as for any other */
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (i != 2)
			assert_int_equal(eg_gate_deny_del(G, &v[i]), 0);
	tcp6(&p, "2001:db8:5::1", 1, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp4(&p, "198.18.111.200", PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	a4 = read_table(EG_TBL_DENY4);
	a6 = read_table(EG_TBL_DENY6);
	assert_memory_equal(a4.count, b4.count, sizeof(a4.count));
	assert_memory_equal(a6.count, b6.count, sizeof(a6.count));
	assert_true(eg_gate_gc(G) >= 0);
	assert_int_equal(idx_byte(EG_MAP_DENY4_IDX, "198.18.96.1"), 0);
}

/* issue 17: ::ffff:a.b.c.d on the wire is neither the IPv4 source nor a real IPv6
 * one: it never matches an IPv4 allow entry, and cannot evade an IPv4 deny. */
static void test_mapped_sources(void **s)
{
	struct eg_prefix al = P("198.18.30.1"), dn = P("198.18.30.2");
	struct pk p;

	assert_int_equal(eg_gate_allow_add(G, &al, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &dn, 0, EG_RULE_MANUAL), 0);
	tcp4(&p, "198.18.30.1", PROT, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_ALLOW);
	tcp6(&p, "::ffff:198.18.30.1", 1, PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	tcp6(&p, "::ffff:198.18.30.2", 1, OPEN, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	tcp6(&p, "::ffff:198.18.30.3", 1, OPEN, PK_SYN); /* any mapped source */
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	tcp6(&p, "::198.18.30.3", 1, OPEN, PK_SYN); /* not mapped: ordinary IPv6 */
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_allow_del(G, &al), 0);
	assert_int_equal(eg_gate_deny_del(G, &dn), 0);
}

/* issue 17: first fragments to a protected port are dropped (the datagram can never
 * be reassembled); later fragments are charged to the source's packet bucket. */
static void test_fragment_policy(void **s)
{
	struct eg_prefix ban = P("198.18.31.9");
	struct pk p;

	reset_clock();
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.31.1", DST4, 6, 0, 0x2000, 20); /* first fragment (MF, offset 0) */
	pk_tcp(&p, 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_FRAGMENT);
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.31.1", DST4, 17, 0, 0x2000, 8);
	pk_udp(&p, 1, PROT);
	expect(&p, XDP_DROP, EG_REASON_FRAGMENT);
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.31.1", DST4, 17, 0, 0x2000, 8); /* to an open port: passes */
	pk_udp(&p, 1, OPEN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:31::1", DST6, 44, 8 + 20);
	pk_frag6(&p, 6, 0, 1);
	pk_tcp(&p, 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_FRAGMENT);

	/* later fragments share the source's packet bucket */
	set_pkt_rate(100, 3);
	for (int i = 0; i < 4; i++) {
		pk_eth(&p, NULL, 0, 0x0800);
		pk_ip4(&p, "198.18.31.2", DST4, 6, 0, 0x2000 | 100, 20);
		pk_zero(&p, 20);
		expect(&p, i < 3 ? XDP_PASS : XDP_DROP, i < 3 ? EG_REASON_PASS : EG_REASON_PKTLIMIT);
	}
	for (int i = 0; i < 4; i++) {
		pk_eth(&p, NULL, 0, 0x86dd);
		pk_ip6(&p, "2001:db8:31:5::1", DST6, 44, 8 + 20);
		pk_frag6(&p, 6, 100, 1);
		pk_zero(&p, 20);
		expect(&p, i < 3 ? XDP_PASS : XDP_DROP, i < 3 ? EG_REASON_PASS : EG_REASON_PKTLIMIT);
	}
	set_pkt_rate(0, 0);

	/* a banned source's later fragments: no port to judge, dropped (fail closed) */
	assert_int_equal(eg_gate_deny_add(G, &ban, 0, EG_RULE_BAN), 0);
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.31.9", DST4, 17, 0, 100, 8);
	pk_zero(&p, 8);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	assert_int_equal(eg_gate_deny_del(G, &ban), 0);
}

/* issue 11: gate.ban_scope. Bans drop the protected ports only, unless "all". */
static void test_ban_scope(void **s)
{
	struct eg_prefix ban = P("198.18.35.5"), den = P("198.18.35.6");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &ban, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_deny_add(G, &den, 0, EG_RULE_MANUAL), 0);
	tcp4(&p, "198.18.35.5", PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	tcp4(&p, "198.18.35.5", 22, PK_SYN); /* SSH is not a protected port */
	expect(&p, XDP_PASS, EG_REASON_PASS);
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.35.5", DST4, 1, 0, 0, 8);
	pk_icmp(&p, 8);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp4(&p, "198.18.35.6", 22, PK_SYN); /* a deny (not a ban) drops everything */
	expect(&p, XDP_DROP, EG_REASON_DENY);
	set_cfg_flag(EG_CFG_BAN_ALL, true);
	tcp4(&p, "198.18.35.5", 22, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	set_cfg_flag(EG_CFG_BAN_ALL, false);

	/* the config key reaches the program */
	{
		struct eg_gate_config c = gcfg();
		char err[256];

		eg_gate_close(G);
		c.ban_scope_all = true;
		c.flood_new_sources = 1000u * (unsigned)libbpf_num_possible_cpus();
		G = eg_gate_load(&c, err, sizeof(err));
		assert_non_null(G);
		{ /* gate.flood_new_sources reaches the program, split across CPUs */
			struct eg_cfg cf;
			__u32 z = 0;

			assert_int_equal(bpf_map_lookup_elem(eg_gate_map_fd(G, EG_MAP_CFG), &z, &cf), 0);
			assert_int_equal(cf.flood_max_new, 1000);
		}
		tcp4(&p, "198.18.35.5", 22, PK_SYN);
		expect(&p, XDP_DROP, EG_REASON_BAN);
		json_t *st = eg_gate_status_json(G);
		assert_string_equal(json_string_value(json_object_get(st, "ban_scope")), "all");
		json_decref(st);
		eg_gate_close(G);
		c.ban_scope_all = false;
		G = eg_gate_load(&c, err, sizeof(err));
		assert_non_null(G);
		tcp4(&p, "198.18.35.5", 22, PK_SYN);
		expect(&p, XDP_PASS, EG_REASON_PASS);
	}
	assert_int_equal(eg_gate_deny_del(G, &ban), 0);
	assert_int_equal(eg_gate_deny_del(G, &den), 0);
}

/* --reason TEXT: a note beside the category, listed, removed with the rule. */
static void test_notes(void **s)
{
	struct eg_prefix d = P("198.18.36.0/24");
	struct eg_note_key nk, next;
	json_t *l;
	char *txt;

	assert_int_equal(eg_gate_deny_add_note(G, &d, 300, EG_RULE_MANUAL, "demo"), 0);
	l = eg_gate_list_json(G, false);
	txt = json_dumps(l, JSON_SORT_KEYS | JSON_COMPACT);
	assert_non_null(strstr(txt, "\"note\":\"demo\",\"prefix\":\"198.18.36.0/24\",\"reason\":\"manual\""));
	free(txt);
	json_decref(l);
	errno = 0;
	assert_int_equal(eg_gate_deny_add_note(G, &d, 0, EG_RULE_MANUAL, "bad\nnote"), -1);
	assert_int_equal(errno, EINVAL);
	char longnote[EG_NOTE_MAX + 1];
	memset(longnote, 'x', sizeof(longnote) - 1);
	longnote[EG_NOTE_MAX] = 0;
	assert_int_equal(eg_gate_deny_add_note(G, &d, 0, EG_RULE_MANUAL, longnote), -1);
	assert_int_equal(eg_gate_deny_del(G, &d), 0);
	memset(&nk, 0, sizeof(nk));
	assert_int_not_equal(bpf_map_get_next_key(eg_gate_map_fd(G, EG_MAP_NOTES), NULL, &next), 0);
}

/* issue 11 item 5: writers in other processes (edgegatectl with the daemon down)
 * and GC race add/del on the same prefix length while a sentinel rule of that
 * length must stay matched on every packet, and the counts come out exact. */
static void test_concurrent_writers(void **s)
{
	struct eg_prefix sentinel = P("198.18.64.0/20");
	enum { WRITERS = 2, ROUNDS = 400 };
	pid_t kids[WRITERS];
	struct pk p;
	long misses = 0, runs = 0;

	assert_int_equal(eg_gate_deny_add(G, &sentinel, 0, EG_RULE_MANUAL), 0);
	for (int w = 0; w < WRITERS; w++) {
		kids[w] = fork();
		assert_true(kids[w] >= 0);
		if (kids[w] == 0) {
			char err[256];
			struct eg_gate *g = eg_gate_open_pinned(pin_root, err, sizeof(err));
			int bad = !g;

			for (int i = 0; g && i < ROUNDS; i++) {
				char a[32];
				struct eg_prefix x;

				/* same length as the sentinel, and /32s in its /24s */
				snprintf(a, sizeof(a), "198.%d.%d.0/20", 100 + w, (i % 16) * 16);
				eg_gate_prefix_parse(a, &x);
				bad |= eg_gate_deny_add(g, &x, 0, EG_RULE_MANUAL) != 0;
				snprintf(a, sizeof(a), "198.18.%d.%d", 64 + w, i % 250 + 1);
				eg_gate_prefix_parse(a, &x);
				bad |= eg_gate_deny_add(g, &x, 1, EG_RULE_BAN) != 0;
				bad |= eg_gate_deny_del(g, &x) != 0;
				snprintf(a, sizeof(a), "198.%d.%d.0/20", 100 + w, (i % 16) * 16);
				eg_gate_prefix_parse(a, &x);
				bad |= eg_gate_deny_del(g, &x) != 0;
			}
			eg_gate_close(g);
			_exit(bad);
		}
	}
	tcp4(&p, "198.18.70.7", PROT, PK_ACK);
	for (;;) {
		int alive = 0;

		for (int w = 0; w < WRITERS; w++)
			if (kids[w] > 0 && waitpid(kids[w], NULL, WNOHANG) == 0)
				alive++;
		if (!alive)
			break;
		for (int i = 0; i < 50; i++, runs++)
			if (run(&p) != XDP_DROP)
				misses++;
		if (runs % 5000 == 0)
			assert_true(eg_gate_gc(G) >= 0); /* GC recounts while they write */
	}
	for (int w = 0; w < WRITERS; w++) {
		int st = 0;

		waitpid(kids[w], &st, 0);
		if (WIFEXITED(st))
			assert_int_equal(WEXITSTATUS(st), 0);
	}
	fprintf(stderr, "# %ld packets during the race, %ld missed the sentinel\n", runs, misses);
	assert_true(runs > 0);
	assert_int_equal(misses, 0);
	struct eg_table t = read_table(EG_TBL_DENY4);
	assert_int_equal(t.count[20], 1);
	assert_int_equal(t.count[32], 0);
	assert_int_equal(eg_gate_deny_list(G, NULL, NULL), 1);
	assert_true(eg_gate_gc(G) >= 0);
	assert_int_equal(read_table(EG_TBL_DENY4).count[20], 1);
	assert_int_equal(eg_gate_deny_del(G, &sentinel), 0);
	assert_int_equal(read_table(EG_TBL_DENY4).lens[0] & (1ull << 20), 0);
}

/* The daemon holds an flock on the pin root for its lifetime (priv.c, one daemon per pin
 * root); the writers' lock must be another object, or the daemon's own writes and
 * edgegatectl's would wait on it forever. A writer on the pins (another process, as
 * edgegatectl) adds, GCs and deletes while this process holds that lifetime lock; it
 * must finish within seconds, and a second pin-root lock is refused as before. */
static void test_daemon_lock_apart(void **s)
{
	int lk = open(pin_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), other, st = 0;
	pid_t kid;

	assert_true(lk >= 0);
	assert_int_equal(flock(lk, LOCK_EX | LOCK_NB), 0);
	other = open(pin_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_not_equal(flock(other, LOCK_EX | LOCK_NB), 0); /* a second daemon: refused */
	close(other);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		char err[256];
		struct eg_prefix x = P("198.18.99.0/24");
		struct eg_gate *g;
		int bad;

		alarm(10); /* a deadlock ends as SIGALRM, not a hung test */
		g = eg_gate_open_pinned(pin_root, err, sizeof(err));
		bad = !g || eg_gate_deny_add_note(g, &x, 60, EG_RULE_MANUAL, "lock test") != 0 ||
		      eg_gate_gc(g) < 0 || eg_gate_deny_del(g, &x) != 0;
		eg_gate_close(g);
		_exit(bad);
	}
	/* and this process's own gate writes too (the privileged process's case) */
	{
		struct eg_prefix y = P("198.18.98.0/24");

		alarm(10);
		assert_int_equal(eg_gate_deny_add(G, &y, 0, EG_RULE_MANUAL), 0);
		assert_true(eg_gate_gc(G) >= 0);
		assert_int_equal(eg_gate_deny_del(G, &y), 0);
		alarm(0);
	}
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(lk);
}

/* A deny/undeny event another node published must never lift this node's own config
 * (static) entry: the shared store does not hold static entries, so an undeny of the same
 * prefix, or a deny that rewrites it with an expiry, would open what the config closes. */
static void test_remote_keeps_static(void **s)
{
	struct eg_prefix net = P("198.18.72.0/24");
	char val[96];
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &net, 0, EG_RULE_STATIC), 0);
	assert_true(eg_gate_apply_remote(G, false, "deny 198.18.72.0/24", NULL, 0) >= 0);
	tcp4(&p, "198.18.72.9", OPEN, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	snprintf(val, sizeof(val), "{\"reason\":%d,\"exp\":%lld}", EG_RULE_MANUAL, (long long)time(NULL) + 1);
	assert_true(eg_gate_apply_remote(G, true, "deny 198.18.72.0/24", val, strlen(val)) >= 0);
	json_t *l = eg_gate_list_json(G, false);
	char *txt = json_dumps(l, JSON_SORT_KEYS | JSON_COMPACT);
	assert_non_null(strstr(txt, "\"prefix\":\"198.18.72.0/24\",\"reason\":\"static\",\"ttl\":-1"));
	free(txt);
	json_decref(l);
	tcp4(&p, "198.18.72.9", OPEN, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	assert_int_equal(eg_gate_deny_del(G, &net), 0);
}

/* Lifting a ban (edgegatectl ban del, or another node's unban event) ends the ban only:
 * a deny entry of the same prefix that is not a ban (manual, static) stays in the kernel. */
static void test_unban_keeps_deny(void **s)
{
	struct eg_prefix x = P("198.18.73.7");
	struct eg_config c = { 0 };
	struct eg_daemon dd = { .cfg = &c, .gate = G };
	char err[256], dir[] = "/tmp/eg-test-gate-unban-XXXXXX";
	struct pk p;

	assert_non_null(mkdtemp(dir));
	c.state_dir = dir;
	assert_int_equal(eg_abuse_init(&dd, err, sizeof(err)), 0);
	assert_int_equal(eg_gate_deny_add(G, &x, 0, EG_RULE_MANUAL), 0);
	eg_abuse_unban(&dd, &x);
	tcp4(&p, "198.18.73.7", OPEN, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	eg_abuse_remote_unban(&dd, "198.18.73.7");
	tcp4(&p, "198.18.73.7", OPEN, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	eg_abuse_free(&dd);
	assert_int_equal(eg_gate_deny_del(G, &x), 0);
	rmdir(dir);
}

/* A ban (here one from another node) never rewrites a deny entry that is not a ban: the
 * manual deny would become an expiring ban entry, and be gone when the ban ends. */
static void test_ban_keeps_deny(void **s)
{
	struct eg_prefix x = P("198.18.74.7");
	struct eg_config c = { 0 };
	struct eg_daemon dd = { .cfg = &c, .gate = G };
	char err[256], dir[] = "/tmp/eg-test-gate-ban-XXXXXX", val[96];

	assert_non_null(mkdtemp(dir));
	c.state_dir = dir;
	assert_int_equal(eg_abuse_init(&dd, err, sizeof(err)), 0);
	assert_int_equal(eg_gate_deny_add(G, &x, 0, EG_RULE_MANUAL), 0);
	snprintf(val, sizeof(val), "{\"until\":%lld,\"offenses\":1}", (long long)time(NULL) + 60);
	eg_abuse_remote_ban(&dd, "198.18.74.7", val, strlen(val));
	json_t *l = eg_gate_list_json(G, false);
	char *txt = json_dumps(l, JSON_SORT_KEYS | JSON_COMPACT);
	assert_non_null(strstr(txt, "\"prefix\":\"198.18.74.7\",\"reason\":\"manual\",\"ttl\":-1"));
	free(txt);
	json_decref(l);
	eg_abuse_free(&dd);
	assert_int_equal(eg_gate_deny_del(G, &x), 0);
	rmdir(dir);
}

/* A node that missed events resyncs its deny/allow entries with the shared store
 * (events.c -> eg_gate_resync): an entry another node deleted is lifted, one it added is
 * applied; an entry the store never held (a bulk load, the config's) is left alone. */
static void test_resync_with_store(void **s)
{
	struct eg_prefix kept = P("198.18.75.0/24"), gone = P("198.18.76.0/24"), bulk = P("198.18.77.0/24"),
			 added = P("198.18.78.0/24"), stat = P("198.18.79.0/24");
	char err[256], dir[] = "/tmp/eg-test-gate-resync-XXXXXX", val[64];
	struct pk p;
	long lifted = -1;

	assert_non_null(mkdtemp(dir));
	struct eg_store *st = eg_store_wrap(&eg_store_lmdb_ops, eg_store_lmdb_open(dir, 0, err, sizeof(err)));
	assert_non_null(st);
	assert_true(eg_gate_use_store(G, st) >= 0);
	assert_int_equal(eg_gate_deny_add(G, &kept, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &gone, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_bulk_add(G, false, &bulk, 1, 0, EG_RULE_MANUAL), 1);
	assert_int_equal(eg_gate_deny_add(G, &stat, 0, EG_RULE_STATIC), 0);
	/* meanwhile on another node: one deleted, one added (the events were missed) */
	assert_int_equal(eg_store_del(st, EG_NS_DENY, "deny 198.18.76.0/24"), 0);
	snprintf(val, sizeof(val), "{\"reason\":%d}", EG_RULE_ABUSE);
	assert_int_equal(eg_store_put(st, EG_NS_DENY, "deny 198.18.78.0/24", val, strlen(val), 0), 0);
	assert_int_equal(eg_gate_resync(G, &lifted), 2); /* every stored record: kept and added */
	assert_int_equal(lifted, 1);
	tcp4(&p, "198.18.76.9", OPEN, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	const char *denied[] = { "198.18.75.9", "198.18.77.9", "198.18.78.9", "198.18.79.9" };
	for (size_t i = 0; i < 4; i++) {
		tcp4(&p, denied[i], OPEN, PK_SYN);
		expect(&p, XDP_DROP, EG_REASON_DENY);
	}
	/* a second resync finds nothing more to lift */
	assert_int_equal(eg_gate_resync(G, &lifted), 2);
	assert_int_equal(lifted, 0);
	assert_true(eg_gate_use_store(G, NULL) >= 0);
	eg_store_close(st);
	const struct eg_prefix *all[] = { &kept, &bulk, &added, &stat };
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(eg_gate_deny_del(G, all[i]), 0);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* --- adversarial audit (docs/advisories.md "Edge gate, mTLS and revocation audit") ----- */

/* What follows the IP header never lets a denied source through: other protocols,
 * options, tiny and overlapping fragments, IPv6 chains of every kind. */
static void test_evasion_denied_source(void **s)
{
	static const uint16_t qinq[] = { 0x88a8, 0x8100 };
	static const uint8_t protos[] = { 132 /* SCTP */, 2 /* IGMP */, 47 /* GRE */, 50 /* ESP */,
					  4 /* IPIP */, 41 /* 6in4 */, 255, 0 };
	struct eg_prefix d = P("198.18.40.4"), d6 = P("2001:db8:40::4");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &d6, 0, EG_RULE_MANUAL), 0);
	for (size_t i = 0; i < sizeof(protos); i++) {
		pk_eth(&p, NULL, 0, 0x0800);
		pk_ip4(&p, "198.18.40.4", DST4, protos[i], 0, 0, 12);
		pk_zero(&p, 12);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		pk_eth(&p, NULL, 0, 0x86dd);
		pk_ip6(&p, "2001:db8:40::4", DST6, protos[i] ? protos[i] : 59, 12);
		pk_zero(&p, 12);
		expect(&p, XDP_DROP, EG_REASON_DENY);
	}
	/* IPv6 next headers the walk does not know: Mobility, HIP, Shim6, experimental */
	static const uint8_t unknown6[] = { 135, 139, 140, 253, 254, 59 };
	for (size_t i = 0; i < sizeof(unknown6); i++) {
		pk_eth(&p, NULL, 0, 0x86dd);
		pk_ip6(&p, "2001:db8:40::4", DST6, 60, 8 + 20);
		pk_ext6(&p, unknown6[i], 0);
		pk_tcp(&p, 1, PROT, PK_SYN);
		expect(&p, XDP_DROP, EG_REASON_DENY);
	}
	/* IPv4 options (IHL 6..15) with QinQ, first fragment with options, UDP */
	for (size_t opt = 4; opt <= 40; opt += 4) {
		pk_eth(&p, qinq, 2, 0x0800);
		pk_ip4(&p, "198.18.40.4", DST4, 17, opt, 0x2000, 8);
		pk_udp(&p, 53, PROT);
		expect(&p, XDP_DROP, EG_REASON_DENY);
	}
	/* tiny first fragment (RFC 1858: 8 bytes, ports but no flags) and the overlapping
	 * offset-1 fragment that would carry the flags */
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.40.4", DST4, 6, 0, 0x2000, 8);
	pk_zero(&p, 8);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.40.4", DST4, 6, 0, 1, 12);
	pk_zero(&p, 12);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* IPv6: the longest chain walked (8 headers), then TCP; a first fragment whose
	 * chain goes on after the fragment header; a tiny first fragment */
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:40::4", DST6, 0, 8 * 8 + 20);
	pk_ext6(&p, 43, 0);
	for (int i = 0; i < 6; i++)
		pk_ext6(&p, i == 5 ? 44 : 60, 0);
	pk_frag6(&p, 6, 0, 0); /* atomic fragment */
	pk_tcp(&p, 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:40::4", DST6, 44, 8 + 8 + 20);
	pk_frag6(&p, 60, 0, 1);
	pk_ext6(&p, 6, 0);
	pk_tcp(&p, 1, PROT, PK_SYN);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:40::4", DST6, 44, 8 + 8);
	pk_frag6(&p, 6, 0, 1);
	pk_zero(&p, 8);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	/* the same tiny first fragments from a clean source: malformed, never passed */
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:40::5", DST6, 44, 8 + 8);
	pk_frag6(&p, 6, 0, 1);
	pk_zero(&p, 8);
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	pk_eth(&p, NULL, 0, 0x86dd); /* the chain cut inside the first fragment */
	pk_ip6(&p, "2001:db8:40::5", DST6, 44, 8 + 4);
	pk_frag6(&p, 60, 0, 1);
	pk_zero(&p, 4);
	expect(&p, XDP_DROP, EG_REASON_MALFORMED);
	assert_int_equal(eg_gate_deny_del(G, &d), 0);
	assert_int_equal(eg_gate_deny_del(G, &d6), 0);
}

/* IPv6 sources that stand for an IPv4 address (IPv4-compatible, 6to4, NAT64 64:ff9b::/96,
 * Teredo) meet the IPv4 deny rules; an IPv4 allow lifts no IPv6 deny; :: and ::1 are not
 * IPv4 addresses. */
static void test_embedded_v4_sources(void **s)
{
	static const char *denied[] = {
		"::198.18.41.1", "2002:c612:2901::1", "2002:c612:2901:ffff:1:2:3:4",
		"64:ff9b::198.18.41.1", "64:ff9b::c612:2901",
		"2001:0:4136:e378:8000:63bf:39ed:d6fe", /* Teredo, client 198.18.41.1 */
	};
	static const char *clean[] = {
		"::198.18.41.2", "2002:c612:2902::1", "64:ff9b::198.18.41.2",
		"2001:0:4136:e378:8000:63bf:39ed:d6fd", "64:ff9b:1::c612:2901", "2003:c612:2901::1",
		"::1", "::",
	};
	struct eg_prefix d = P("198.18.41.1"), net = P("198.18.41.128/25"), ban = P("198.18.41.9"),
			 al = P("198.18.41.3"), d6 = P("2002:c612:2903::/48"), zero = P("0.0.0.0/8");
	struct pk p;

	assert_int_equal(eg_gate_deny_add(G, &d, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &net, 0, EG_RULE_ABUSE), 0);
	assert_int_equal(eg_gate_deny_add(G, &ban, 0, EG_RULE_BAN), 0);
	assert_int_equal(eg_gate_allow_add(G, &al, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &d6, 0, EG_RULE_MANUAL), 0);
	assert_int_equal(eg_gate_deny_add(G, &zero, 0, EG_RULE_MANUAL), 0);
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		tcp6(&p, denied[i], 1, OPEN, PK_SYN);
		expect(&p, XDP_DROP, EG_REASON_DENY);
		pk_eth(&p, NULL, 0, 0x86dd); /* whatever follows */
		pk_ip6(&p, denied[i], DST6, 44, 8 + 8);
		pk_frag6(&p, 17, 10, 1);
		pk_zero(&p, 8);
		expect(&p, XDP_DROP, EG_REASON_DENY);
	}
	for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++) {
		tcp6(&p, clean[i], 1, OPEN, PK_SYN);
		expect(&p, XDP_PASS, EG_REASON_PASS);
	}
	/* a prefix rule, a ban (protected ports only, as for IPv4) */
	tcp6(&p, "64:ff9b::198.18.41.200", 1, OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "2002:c612:2909::1", 1, OPEN, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp6(&p, "2002:c612:2909::1", 1, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_BAN);
	/* allowed as IPv4, denied as IPv6: the IPv6 rule stands; clean as IPv6: the IPv4
	 * allow bypasses nothing (the packet takes the ordinary path) */
	tcp6(&p, "2002:c612:2903::1", 1, OPEN, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_DENY);
	tcp6(&p, "64:ff9b::198.18.41.3", 1, OPEN, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_deny_del(G, &d), 0);
	assert_int_equal(eg_gate_deny_del(G, &net), 0);
	assert_int_equal(eg_gate_deny_del(G, &ban), 0);
	assert_int_equal(eg_gate_allow_del(G, &al), 0);
	assert_int_equal(eg_gate_deny_del(G, &d6), 0);
	assert_int_equal(eg_gate_deny_del(G, &zero), 0);
	tcp6(&p, "64:ff9b::198.18.41.1", 1, OPEN, PK_SYN);
	expect(&p, XDP_PASS, EG_REASON_PASS);
}

/* TCP of a revoked flow with options of its own, a TCP header with options, flags a
 * client would use to tear down or confuse state, tags, IPv6 chains, fragments. */
static void test_revoked_flow_evasion(void **s)
{
	static const uint8_t flags[] = { 0x04 /* RST */, 0x14 /* RST+ACK */, 0x01 /* FIN */,
					 0x11 /* FIN+ACK */, 0x12 /* SYN+ACK */, 0x02 /* SYN */,
					 0x18 /* PSH+ACK */, 0x30 /* URG+ACK */, 0x00, 0xff,
					 0xd0 /* CWR+ECE+ACK */ };
	static const uint16_t q[] = { 0x8100 }, qinq[] = { 0x88a8, 0x8100 };
	struct eg_flow f4 = { .client_port = 40000, .server_port = PROT };
	struct eg_flow f6 = { .client_port = 40006, .server_port = PROT };
	struct pk p;

	reset_clock();
	assert_int_equal(eg_addr_parse_test("198.18.42.1", f4.client), 0);
	assert_int_equal(eg_addr_parse_test(DST4, f4.server), 0);
	assert_int_equal(eg_addr_parse_test("2001:db8:42::1", f6.client), 0);
	assert_int_equal(eg_addr_parse_test(DST6, f6.server), 0);
	assert_int_equal(eg_gate_revoke_flow(G, &f4, NULL, 60), 0);
	assert_int_equal(eg_gate_revoke_flow(G, &f6, NULL, 60), 0);
	for (size_t i = 0; i < sizeof(flags); i++) {
		tcp4(&p, "198.18.42.1", PROT, flags[i]);
		expect(&p, XDP_DROP, EG_REASON_REVOKED);
		tcp6(&p, "2001:db8:42::1", 40006, PROT, flags[i]);
		expect(&p, XDP_DROP, EG_REASON_REVOKED);
	}
	/* TCP options (doff 15, 40 bytes of NOP/timestamps), IPv4 options, VLAN, QinQ */
	tcp4(&p, "198.18.42.1", PROT, PK_ACK);
	p.b[p.l4 + 12] = 15 << 4;
	for (int i = 0; i < 40; i++)
		pk_u8(&p, 1);
	expect(&p, XDP_DROP, EG_REASON_REVOKED);
	pk_eth(&p, q, 1, 0x0800);
	pk_ip4(&p, "198.18.42.1", DST4, 6, 12, 0, 20);
	pk_tcp(&p, 40000, PROT, 0x04);
	expect(&p, XDP_DROP, EG_REASON_REVOKED);
	pk_eth(&p, qinq, 2, 0x86dd);
	pk_ip6(&p, "2001:db8:42::1", DST6, 0, 8 + 8 + 8 + 20);
	pk_ext6(&p, 43, 0);
	pk_ext6(&p, 60, 0);
	pk_frag6(&p, 6, 0, 0); /* atomic fragment: a whole packet */
	pk_tcp(&p, 40006, PROT, 0x11);
	expect(&p, XDP_DROP, EG_REASON_REVOKED);
	/* AH before TCP */
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:42::1", DST6, 51, 16 + 20);
	pk_u8(&p, 6);
	pk_u8(&p, 2);
	pk_zero(&p, 14);
	pk_tcp(&p, 40006, PROT, PK_ACK);
	expect(&p, XDP_DROP, EG_REASON_REVOKED);
	/* fragmented: the first fragment is dropped (fragment), so the datagram can never be
	 * reassembled; later fragments carry no ports and are left to the packet bucket */
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.42.1", DST4, 6, 0, 0x2000, 24);
	pk_tcp(&p, 40000, PROT, 0x18);
	pk_zero(&p, 4);
	expect(&p, XDP_DROP, EG_REASON_FRAGMENT);
	pk_eth(&p, NULL, 0, 0x86dd);
	pk_ip6(&p, "2001:db8:42::1", DST6, 44, 8 + 24);
	pk_frag6(&p, 6, 0, 1);
	pk_tcp(&p, 40006, PROT, 0x18);
	pk_zero(&p, 4);
	expect(&p, XDP_DROP, EG_REASON_FRAGMENT);
	/* the other connections of the same clients are untouched */
	pk_eth(&p, NULL, 0, 0x0800);
	pk_ip4(&p, "198.18.42.1", DST4, 6, 0, 0, 20);
	pk_tcp(&p, 40001, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	tcp6(&p, "2001:db8:42::1", 40007, PROT, PK_ACK);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_int_equal(eg_gate_set_clock_offset(G, 61000000000ll), 0);
	tcp4(&p, "198.18.42.1", PROT, 0x04);
	expect(&p, XDP_PASS, EG_REASON_PASS);
	assert_true(eg_gate_gc(G) >= 2); /* and any flow an earlier test left to expire */
	reset_clock();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_and_nonip),
		cmocka_unit_test(test_deny_exact_vlan_qinq),
		cmocka_unit_test(test_deny_prefix_and_ban),
		cmocka_unit_test(test_ipv6_ext_headers),
		cmocka_unit_test(test_ipv4_options),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_observe),
		cmocka_unit_test(test_allow_bypass),
		cmocka_unit_test(test_expiry_and_gc),
		cmocka_unit_test(test_rate_limit_refill),
		cmocka_unit_test(test_pkt_rate),
		cmocka_unit_test(test_rate_key),
		cmocka_unit_test(test_hibit_candidates),
		cmocka_unit_test(test_revoked_flow),
		cmocka_unit_test(test_flow_buckets),
		cmocka_unit_test(test_flow_buckets_churn),
		cmocka_unit_test(test_synbox),
		cmocka_unit_test(test_flood_shed),
		cmocka_unit_test(test_pin_reuse),
		cmocka_unit_test(test_allow6_slots_at_load),
		cmocka_unit_test(test_longest_match_v4),
		cmocka_unit_test(test_slots_sized),
		cmocka_unit_test(test_slots_first),
		cmocka_unit_test(test_slot_overflow4),
		cmocka_unit_test(test_slot_overflow6),
		cmocka_unit_test(test_allow_slots),
		cmocka_unit_test(test_allow6_slots),
		cmocka_unit_test(test_slot_overflow6l),
		cmocka_unit_test(test_v6_long_edges),
		cmocka_unit_test(test_v6_group96),
		cmocka_unit_test(test_deny6_group96_at_load),
		cmocka_unit_test(test_deny6_group96_crashed_writer),
		cmocka_unit_test(test_prefix_expiry_nesting),
		cmocka_unit_test(test_longest_match_v6),
		cmocka_unit_test(test_v6_filter),
		cmocka_unit_test(test_allow6_index),
		cmocka_unit_test(test_v6_short_keys),
		cmocka_unit_test(test_bulk_incremental),
		cmocka_unit_test(test_mapped_sources),
		cmocka_unit_test(test_fragment_policy),
		cmocka_unit_test(test_ban_scope),
		cmocka_unit_test(test_notes),
		cmocka_unit_test(test_concurrent_writers),
		cmocka_unit_test(test_daemon_lock_apart),
		cmocka_unit_test(test_remote_keeps_static),
		cmocka_unit_test(test_unban_keeps_deny),
		cmocka_unit_test(test_ban_keeps_deny),
		cmocka_unit_test(test_resync_with_store),
		cmocka_unit_test(test_evasion_denied_source),
		cmocka_unit_test(test_embedded_v4_sources),
		cmocka_unit_test(test_revoked_flow_evasion),
	};

	if (geteuid() != 0) {
		if (getenv("CI") && !strcmp(getenv("CI"), "true")) {
			printf("not ok 1 - BPF tests need root (CI=true)\n");
			return 1;
		}
		printf("1..0 # SKIP BPF tests need root (CAP_BPF, bpffs)\n");
		return 0;
	}
	/* one CPU: the per-CPU flood window is then deterministic */
	{
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(0, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	snprintf(pin_root, sizeof(pin_root), "/sys/fs/bpf/edgegate-test-%d", (int)getpid());
	return cmocka_run_group_tests(tests, setup, teardown);
}
