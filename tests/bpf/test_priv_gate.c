/* test_priv_gate.c - the privileged process with a real gate (docs/privsep.md).
 *
 * The privileged side runs in a forked process (eg_priv_run) with a gate loaded and pinned
 * under a private /sys/fs/bpf/edgegate-test-privgate-<pid> (attached nowhere, one static
 * deny from the config) and a seccomp filter that makes socket(AF_NETLINK, *,
 * NETLINK_SOCK_DIAG) fail, as a kernel without inet_diag or a sandbox denying netlink
 * would. This process is the daemon proper:
 *   - revoke.c notes a session's real loopback flow there, and the revocation must still
 *     put the flow into the revoked-flow map (XDP drops it) although no socket can be
 *     destroyed (docs/revocation.md "Privileges");
 *   - the config's static deny can be neither deleted nor overwritten through the
 *     protocol, and no request writes a static entry; other entries come and go.
 * Needs root (BPF, seccomp): skipped without it (failed under CI=true). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "testutil.h"
#include "flowfix.h"
#include "admin.h"
#include "config.h"
#include "daemon.h"
#include "gate.h"
#include "jose.h"
#include "log.h"
#include "metrics.h"
#include "priv.h"
#include "revoke.h"
#include "sockdestroy.h"

static struct eg_config cfg;
static struct eg_daemon d;
static char pin_root[128];
static uint16_t ports[] = { 443 };
/* the config's deny list: 198.18.77.0/24 */
static struct eg_prefix static_deny[] = { { .addr = { [10] = 0xff, [11] = 0xff, 198, 18, 77, 0 }, .plen = 120, .v4 = true } };
static int chan = -1, lfd = -1;
static pid_t priv_pid;

/* socket(AF_NETLINK, *, NETLINK_SOCK_DIAG) -> EPROTONOSUPPORT; everything else allowed.
 * The low 32 bits of an argument sit first in seccomp_data on little-endian hosts. */
static int deny_sock_diag(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NETLINK_SOCK_DIAG, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPROTONOSUPPORT),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* every pin under the test's root, whatever maps this version of the gate has */
static void rm_pins(void)
{
	char p[512];
	DIR *dir = opendir(pin_root);
	struct dirent *e;

	while (dir && (e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", pin_root, e->d_name);
		if (unlink(p) != 0)
			rmdir(p);
	}
	if (dir)
		closedir(dir);
	rmdir(pin_root);
}

static int setup(void **state)
{
	char err[256];

	if (geteuid() != 0) {
		if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
			fail_msg("needs root under CI=true");
		return 0;
	}
	eg_log_set_level("error");
	signal(SIGTERM, SIG_IGN); /* a lost channel makes the client signal itself */
	snprintf(pin_root, sizeof(pin_root), "/sys/fs/bpf/edgegate-test-privgate-%d", (int)getpid());
	cfg.gate = (struct eg_gate_config){
		.present = true,
		.pin_root = pin_root,
		.protected_ports = ports,
		.n_protected_ports = 1,
		.syn_rate = 10,
		.syn_burst = 5,
		.max_sources = 1024,
		.max_deny = 4096,
		.ipv6_group_plen = 64,
		.deny = static_deny,
		.n_deny = 1,
	};
	lfd = flowfix_listener();
	/* the gate loads; sock_diag does not open */
	priv_pid = flowfix_priv_fork(&cfg, lfd, deny_sock_diag, &chan);
	assert_int_equal(eg_privc_start(chan, &d.gate, err, sizeof(err)), 0);
	assert_non_null(d.gate);
	assert_true(eg_privc_active());
	assert_false(eg_privc_has_sockdiag()); /* the premise: the filter took */
	d.cfg = &cfg;
	d.metrics = eg_metrics_new();
	assert_int_equal(eg_revoke_init(&d, err, sizeof(err)), 0);
	return 0;
}

static int teardown(void **state)
{
	int status;

	if (priv_pid <= 0)
		return 0;
	eg_revoke_free(&d);
	eg_gate_close(d.gate);
	eg_metrics_free(d.metrics);
	close(chan);
	assert_int_equal(waitpid(priv_pid, &status, 0), priv_pid);
	close(lfd);
	rm_pins();
	return 0;
}

#define NEED_ROOT()                    \
	do {                           \
		if (priv_pid <= 0)     \
			skip();        \
	} while (0)

/* A real loopback connection; *t as the verdict path sees it (client -> nginx). */
static void open_conn(int *c, int *s, struct eg_flow_tuple *t)
{
	struct flowfix_conn k;

	flowfix_open(lfd, &k);
	*c = k.c;
	*s = k.s;
	*t = k.t;
}

static bool flow_revoked(const struct eg_flow_tuple *t, const uint8_t sh[16])
{
	struct eg_flow_key k = { .sport = t->client_port, .dport = t->server_port, .proto = IPPROTO_TCP };
	struct eg_flow_val v;

	memcpy(k.saddr, t->client, 16);
	memcpy(k.daddr, t->server, 16);
	if (bpf_map_lookup_elem(eg_gate_map_fd(d.gate, EG_MAP_FLOWS), &k, &v) != 0)
		return false;
	return memcmp(v.session, sh, 16) == 0 && v.expires_ns > 0;
}

/* The revoked session's flow is dropped in XDP although its socket cannot be destroyed;
 * a flow of another session is left alone. */
static void test_revoked_flow_dropped_without_sock_diag(void **state)
{
	static const char *sid = "nodiag-session-0123456789abcdef";
	struct eg_flow_tuple t, other;
	uint8_t h[32];
	int c, s, c2, s2;

	NEED_ROOT();
	assert_false(eg_sockdiag_can_destroy(NULL));
	open_conn(&c, &s, &t);
	open_conn(&c2, &s2, &other);
	eg_flows_note(&d, sid, &t);
	eg_flows_note(&d, "some-other-session", &other);
	assert_int_equal(eg_revoke_session_flows(&d, sid, "admin"), 1);
	eg_sha256(sid, strlen(sid), h);
	assert_true(flow_revoked(&t, h));
	assert_false(flow_revoked(&other, h));
	/* the socket itself lives on: nothing could destroy it */
	assert_int_equal(send(s, "x", 1, MSG_NOSIGNAL), 1);
	char b;
	assert_int_equal(recv(c, &b, 1, 0), 1);
	close(c);
	close(s);
	close(c2);
	close(s2);
}

/* What the operator sees: no socket destroy, the flow counted as failed (XDP only). */
static void test_flows_status_is_truthful(void **state)
{
	char path[108], err[256];

	NEED_ROOT();
	snprintf(path, sizeof(path), "/tmp/eg-test-privgate-%d.sock", (int)getpid());
	assert_int_equal(eg_admin_start(&d, path), 0);
	json_t *req = json_pack("{s:s}", "cmd", "flows");
	json_t *st = eg_admin_call(path, req, err, sizeof(err));
	json_decref(req);
	eg_admin_stop();
	assert_non_null(st);
	assert_true(json_is_true(json_object_get(st, "ok")));
	assert_true(json_is_false(json_object_get(st, "sock_destroy")));
	assert_int_equal(json_integer_value(json_object_get(st, "failed")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "destroyed")), 0);
	json_decref(st);
}

static struct eg_prefix pfx(uint8_t third)
{
	struct eg_prefix p = { .addr = { [10] = 0xff, [11] = 0xff, 198, 18, third, 0 }, .plen = 120, .v4 = true };
	return p;
}

static bool deny_entry(const struct eg_prefix *p, struct eg_rule *out)
{
	struct eg_key4 k = { .addr = htonl((uint32_t)p->addr[12] << 24 | (uint32_t)p->addr[13] << 16 |
					   (uint32_t)p->addr[14] << 8 | p->addr[15]),
			     .plen = p->plen - 96u };

	return bpf_map_lookup_elem(eg_gate_map_fd(d.gate, EG_MAP_DENY4), &k, out) == 0;
}

/* A compromised daemon proper cannot open a hole in the config's deny list. */
static void test_static_deny_guarded(void **state)
{
	struct eg_prefix st = pfx(77), fresh = pfx(78), manual = pfx(79);
	struct eg_rule r, ban = { .reason = EG_RULE_BAN }, man = { .reason = EG_RULE_MANUAL },
			  stat = { .reason = EG_RULE_STATIC };

	NEED_ROOT();
	assert_int_equal(eg_gate_deny_reason(d.gate, &st), EG_RULE_STATIC); /* pushed from the config */
	errno = 0;
	assert_int_equal(eg_privc_rule_del(false, st.addr, st.plen), -1);
	assert_int_equal(errno, EPERM);
	ban.expires_ns = eg_gate_now_ns(d.gate) + 60ull * 1000000000ull;
	errno = 0;
	assert_int_equal(eg_privc_rule_put(false, st.addr, st.plen, &ban, BPF_ANY, NULL), -1);
	assert_int_equal(errno, EPERM);
	assert_true(deny_entry(&st, &r));
	assert_int_equal(r.reason, EG_RULE_STATIC);
	assert_true(r.expires_ns == 0); /* still never expires */
	/* the daemon proper writes no static entry, even a new one */
	errno = 0;
	assert_int_equal(eg_privc_rule_put(false, fresh.addr, fresh.plen, &stat, BPF_ANY, NULL), -1);
	assert_int_equal(errno, EPERM);
	assert_false(deny_entry(&fresh, &r));
	/* the guard is about static entries only */
	assert_int_equal(eg_privc_rule_put(false, manual.addr, manual.plen, &man, BPF_ANY, "test"), 0);
	assert_int_equal(eg_gate_deny_reason(d.gate, &manual), EG_RULE_MANUAL);
	assert_int_equal(eg_privc_rule_put(false, manual.addr, manual.plen, &ban, BPF_ANY, NULL), 0);
	assert_int_equal(eg_gate_deny_reason(d.gate, &manual), EG_RULE_BAN);
	assert_int_equal(eg_privc_rule_del(false, manual.addr, manual.plen), 0);
	assert_int_equal(eg_gate_deny_reason(d.gate, &manual), -1);
	assert_int_equal(eg_privc_rule_put(false, st.addr, st.plen, &man, BPF_ANY, NULL), -1); /* still */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revoked_flow_dropped_without_sock_diag),
		cmocka_unit_test(test_flows_status_is_truthful),
		cmocka_unit_test(test_static_deny_guarded),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
