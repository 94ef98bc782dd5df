/* xdpbench - benchmarks of the XDP edge gate (docs/gate.md has the figures).
 *
 *   xdpbench paths [REPEAT]          ns/packet per verdict path via BPF_PROG_TEST_RUN,
 *                                    beside an empty XDP program, same run
 *   xdpbench attach NETNS IF PINROOT CIDR   load the gate denying CIDR, attach to IF
 *                                    inside NETNS, print "ready", run until stdin closes
 *   xdpbench stats PINROOT           "deny <packets>" from the pinned stats map
 *   xdpbench blast IF SRCNET N SECONDS   AF_PACKET UDP flood from N sources of SRCNET/24
 *
 * Built by tools/bench/xdp/run.sh against build/libedgegate.a. Needs root. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "config.h"
#include "gate.h"
#include "../../../tests/bpf/pkt.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int empty_prog(void)
{
	struct bpf_insn insns[] = {
		{ .code = 0xb7, .dst_reg = 0, .imm = XDP_PASS }, /* r0 = XDP_PASS */
		{ .code = 0x95 },                                 /* exit */
	};

	return bpf_prog_load(BPF_PROG_TYPE_XDP, "eg_empty", "GPL", insns, 2, NULL);
}

/* median of 5 runs of `repeat` iterations: ns per packet */
static double ns_per_pkt(int fd, const struct pk *p, unsigned repeat, int *retval)
{
	double d[5];

	for (int i = 0; i < 5; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = (__u32)p->n,
			    .repeat = repeat);
		if (bpf_prog_test_run_opts(fd, &o)) {
			perror("BPF_PROG_TEST_RUN");
			exit(1);
		}
		d[i] = o.duration; /* average ns per repetition */
		*retval = (int)o.retval;
	}
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			if (d[j] < d[i]) {
				double t = d[i];
				d[i] = d[j];
				d[j] = t;
			}
	return d[2];
}

static void tcp4(struct pk *p, const char *src, uint16_t sport, uint16_t dport, uint8_t fl)
{
	pk_eth(p, NULL, 0, 0x0800);
	pk_ip4(p, src, "198.18.0.1", 6, 0, 0, 20);
	pk_tcp(p, sport, dport, fl);
}

static struct eg_prefix P(const char *s)
{
	struct eg_prefix p;

	if (eg_gate_prefix_parse(s, &p)) {
		fprintf(stderr, "bad prefix %s\n", s);
		exit(1);
	}
	return p;
}

static void row(const char *name, double ns, double empty, int ret)
{
	printf("%-34s %8.1f ns  (+%6.1f vs empty)  %s\n", name, ns, ns - empty,
	       ret == XDP_DROP ? "XDP_DROP" : ret == XDP_PASS ? "XDP_PASS" : "?");
}

static int cmd_paths(unsigned repeat)
{
	static uint16_t ports[] = { 443 };
	char pin[64], err[256];
	struct eg_gate_config gc = { .present = true, .protected_ports = ports, .n_protected_ports = 1,
				     .syn_rate = 1, .syn_burst = 1, .max_sources = 262144,
				     .max_deny = 1u << 21 };
	struct eg_gate *g;
	struct eg_prefix p;
	struct pk pk;
	int efd, fd, ret;
	double e, ns;
	double t0;

	snprintf(pin, sizeof(pin), "/sys/fs/bpf/edgegate-bench-%d", (int)getpid());
	gc.pin_root = pin;
	g = eg_gate_load(&gc, err, sizeof(err));
	if (!g) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	fd = eg_gate_prog_fd(g);
	efd = empty_prog();
	if (efd < 0) {
		perror("empty prog");
		return 1;
	}
	tcp4(&pk, "198.18.50.1", 40000, 8080, PK_ACK);
	e = ns_per_pkt(efd, &pk, repeat, &ret);
	row("empty XDP program", e, e, ret);
	ns = ns_per_pkt(fd, &pk, repeat, &ret);
	row("pass (unprotected port)", ns, e, ret);
	tcp4(&pk, "198.18.50.1", 40000, 443, PK_ACK);
	ns = ns_per_pkt(fd, &pk, repeat, &ret);
	row("pass (protected port, ACK)", ns, e, ret);

	p = P("198.18.51.1");
	eg_gate_allow_add(g, &p, 0, EG_RULE_MANUAL);
	tcp4(&pk, "198.18.51.1", 40000, 443, PK_SYN);
	ns = ns_per_pkt(fd, &pk, repeat, &ret);
	row("allow (exact)", ns, e, ret);

	p = P("198.18.52.1");
	eg_gate_deny_add(g, &p, 0, EG_RULE_MANUAL);
	tcp4(&pk, "198.18.52.1", 40000, 443, PK_SYN);
	ns = ns_per_pkt(fd, &pk, repeat, &ret);
	row("deny (exact /32)", ns, e, ret);

	struct eg_flow f = { .client_port = 40000, .server_port = 443 };
	p = P("198.18.53.1");
	memcpy(f.client, p.addr, 16);
	p = P("198.18.0.1");
	memcpy(f.server, p.addr, 16);
	eg_gate_revoke_flow(g, &f, NULL, 0);
	tcp4(&pk, "198.18.53.1", 40000, 443, PK_ACK);
	ns = ns_per_pkt(fd, &pk, repeat, &ret);
	row("revoked flow", ns, e, ret);

	tcp4(&pk, "198.18.54.1", 40000, 443, PK_SYN);
	ns = ns_per_pkt(fd, &pk, repeat, &ret);
	row("rate-limited SYN (1/s, burst 1)", ns, e, ret);

	/* 1M prefixes in the trie: /28s across 16.0.0.0/4 */
	t0 = now_s();
	{
		int lfd = eg_gate_map_fd(g, EG_MAP_DENY_LPM), cfd = eg_gate_map_fd(g, EG_MAP_CFG);
		struct eg_rule r = { .reason = EG_RULE_MANUAL };
		struct eg_lpm_key k = { .plen = 96 + 28 };
		struct eg_cfg c;
		__u32 z = 0;

		k.a[10] = k.a[11] = 0xff;
		for (uint32_t i = 0; i < 1000000; i++) {
			uint32_t ip = htonl(0x10000000u | (i << 4));

			memcpy(&k.a[12], &ip, 4);
			if (bpf_map_update_elem(lfd, &k, &r, BPF_ANY)) {
				perror("trie insert");
				return 1;
			}
		}
		bpf_map_lookup_elem(cfd, &z, &c);
		c.n_deny_lpm = 1000000;
		bpf_map_update_elem(cfd, &z, &c, BPF_ANY);
	}
	printf("# inserted 1,000,000 /28 prefixes into %s in %.1f s\n", EG_MAP_DENY_LPM, now_s() - t0);
	tcp4(&pk, "16.7.161.33", 40000, 443, PK_SYN); /* inside 16.7.161.32/28 */
	ns = ns_per_pkt(fd, &pk, repeat, &ret);
	row("deny (prefix, 1M-entry trie)", ns, e, ret);
	tcp4(&pk, "198.18.50.1", 40000, 8080, PK_ACK);
	ns = ns_per_pkt(fd, &pk, repeat, &ret);
	row("pass (1M-entry trie walked)", ns, e, ret);
	p = P("198.18.52.1");
	tcp4(&pk, "198.18.52.1", 40000, 443, PK_SYN);
	ns = ns_per_pkt(fd, &pk, repeat, &ret);
	row("deny (exact /32, 1M trie behind)", ns, e, ret);

	close(efd);
	eg_gate_close(g);
	{
		static const char *n[] = { EG_MAP_CFG, EG_MAP_PORTS, EG_MAP_DENY, EG_MAP_DENY_LPM,
					   EG_MAP_ALLOW, EG_MAP_ALLOW_LPM, EG_MAP_RATE, EG_MAP_FLOWS,
					   EG_MAP_SESSIONS, EG_MAP_STATS, EG_MAP_FLOOD };
		char path[128];

		for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", pin, n[i]);
			unlink(path);
		}
		rmdir(pin);
	}
	return 0;
}

static int cmd_attach(const char *netns, const char *ifname, const char *pin, const char *cidr)
{
	char path[256], err[256], buf[16];
	struct eg_config cfg = { 0 };
	char *ifs[1] = { (char *)ifname };
	struct eg_prefix d = P(cidr);
	struct eg_gate *g;
	int nfd;

	snprintf(path, sizeof(path), "/var/run/netns/%s", netns);
	nfd = open(path, O_RDONLY);
	if (nfd < 0 || setns(nfd, CLONE_NEWNET)) {
		perror(path);
		return 1;
	}
	cfg.gate.present = true;
	cfg.gate.pin_root = (char *)pin;
	cfg.gate.interfaces.v = ifs;
	cfg.gate.interfaces.n = 1;
	cfg.gate.xdp_mode = (char *)"native";
	cfg.gate.deny = &d;
	cfg.gate.n_deny = 1;
	g = eg_gate_open(&cfg, err, sizeof(err));
	if (!g) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	eg_gate_close(g);
	return 0;
}

static int cmd_stats(const char *pin)
{
	char err[256];
	uint64_t s[EG_REASON__COUNT];
	struct eg_gate *g = eg_gate_open_pinned(pin, err, sizeof(err));

	if (!g || eg_gate_stats(g, s)) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("deny %llu\n", (unsigned long long)s[EG_REASON_DENY]);
	eg_gate_close(g);
	return 0;
}

/* UDP frames from N sources in SRCNET/24, sent with sendmmsg on AF_PACKET with the
 * qdisc bypassed. Prints frames sent and the rate. */
static int cmd_blast(const char *ifname, const char *srcnet, int nsrc, double seconds)
{
	enum { B = 64 };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_halen = 6 };
	static struct pk pk[256];
	struct mmsghdr msg[B];
	struct iovec iov[B];
	unsigned long long sent = 0;
	int one = 1, s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	double t0, t;
	uint32_t base;

	if (s < 0 || nsrc < 1 || nsrc > 256) {
		perror("socket");
		return 1;
	}
	setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	inet_pton(AF_INET, srcnet, &base);
	for (int i = 0; i < nsrc; i++) {
		char a[INET_ADDRSTRLEN];
		uint32_t ip = htonl(ntohl(base) + (uint32_t)i);

		inet_ntop(AF_INET, &ip, a, sizeof(a));
		pk_eth(&pk[i], NULL, 0, 0x0800);
		pk_ip4(&pk[i], a, "198.18.200.1", 17, 0, 0, 8 + 18);
		pk_udp(&pk[i], 4000, 9);
		pk_zero(&pk[i], 18); /* 60-byte frames */
	}
	t0 = now_s();
	do {
		for (int i = 0; i < B; i++) {
			struct pk *p = &pk[(sent + (unsigned)i) % (unsigned)nsrc];

			iov[i].iov_base = p->b;
			iov[i].iov_len = p->n;
			memset(&msg[i], 0, sizeof(msg[i]));
			msg[i].msg_hdr.msg_iov = &iov[i];
			msg[i].msg_hdr.msg_iovlen = 1;
			msg[i].msg_hdr.msg_name = &sll;
			msg[i].msg_hdr.msg_namelen = sizeof(sll);
		}
		int n = sendmmsg(s, msg, B, 0);

		if (n > 0)
			sent += (unsigned)n;
		t = now_s();
	} while (t - t0 < seconds);
	printf("sent %llu %.0f\n", sent, (double)sent / (t - t0));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "paths"))
		return cmd_paths(argc > 2 ? (unsigned)atoi(argv[2]) : 1000000);
	if (argc == 6 && !strcmp(argv[1], "attach"))
		return cmd_attach(argv[2], argv[3], argv[4], argv[5]);
	if (argc == 3 && !strcmp(argv[1], "stats"))
		return cmd_stats(argv[2]);
	if (argc == 6 && !strcmp(argv[1], "blast"))
		return cmd_blast(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
	fprintf(stderr, "usage: see the comment at the top of tools/bench/xdp/xdpbench.c\n");
	return 2;
}
