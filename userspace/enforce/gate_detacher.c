/* gate_detacher.c - takes the gate out of libxdp's dispatcher when the daemon stops.
 *
 * Removing one program from a dispatcher means loading a new dispatcher and linking the
 * other programs into it again, found by id: CAP_SYS_ADMIN and CAP_BPF, and write access
 * to libxdp's pins under /sys/fs/bpf/xdp. The privileged process keeps CAP_NET_ADMIN
 * alone (docs/privsep.md), enough for a plain detach but not for this. So before it drops
 * the rest it forks this helper, which keeps root: it closes every fd but its socket,
 * ignores the stop signals (a service manager signals the whole group; the detach is the
 * privileged process's to ask), keeps only the four capabilities the detach needs and
 * sleeps in read(). It parses nothing: one byte makes it
 * detach the gate on each dispatcher interface, answer and exit. EOF (the privileged
 * process died, SIGKILL included) makes it exit and leave the gate enforcing, as a plain
 * attach stays (fail closed). */
#include <errno.h>
#include <signal.h>
#include <sys/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gate.h"
#include "gate_priv.h"
#include "log.h"

static bool any_dispatcher(const struct eg_gate *g)
{
	for (int i = 0; i < g->n_if; i++)
		if (g->ifs[i].dispatcher)
			return true;
	return false;
}

static void close_all_but(int keep)
{
	if (keep > 3)
		close_range(3, (unsigned)keep - 1, 0);
	close_range((unsigned)keep + 1, ~0u, 0);
}

/* What the detach needs (prog fds by id, a new dispatcher loaded, the netlink swap) and
 * nothing else: no CAP_SETUID, CAP_DAC_OVERRIDE, CAP_SYS_PTRACE..., none inheritable, and
 * no way back to more through exec. */
static int keep_only_detach_caps(void)
{
	const cap_value_t want[] = { CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN };
	cap_value_t keep[4];
	int n = 0, rc = -1;
	cap_t now = cap_get_proc(), caps = cap_init();

	for (int i = 0; now && i < 4; i++) { /* a bounding set may lack one: keep what is there */
		cap_flag_value_t have = CAP_CLEAR;
		if (cap_get_flag(now, want[i], CAP_PERMITTED, &have) == 0 && have == CAP_SET)
			keep[n++] = want[i];
	}
	if (now && caps && (n == 0 || (cap_set_flag(caps, CAP_PERMITTED, n, keep, CAP_SET) == 0 &&
				       cap_set_flag(caps, CAP_EFFECTIVE, n, keep, CAP_SET) == 0)) &&
	    cap_set_proc(caps) == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
		rc = 0;
	cap_free(now);
	cap_free(caps);
	return rc;
}

static _Noreturn void helper(const struct eg_gate *g, int s)
{
	char c = 0, ok = '0';
	ssize_t n;

	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, 0);
	prctl(PR_SET_NAME, "edgegated-xdp"); /* ps tells it from the daemon's processes */
	close_all_but(s);
	if (keep_only_detach_caps() != 0) {
		log_warn("gate: the dispatcher detach helper cannot drop its other capabilities: %s; "
			 "the gate will stay in the dispatcher at stop", strerror(errno));
		_exit(0);
	}
	do
		n = read(s, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || c != 'd')
		_exit(0);
	for (int i = 0; i < g->n_if; i++)
		if (g->ifs[i].dispatcher && eg_gate_xdp_detach_named(g->ifs[i].ifindex) < 0) {
			log_warn("gate: detaching from the dispatcher on %s failed", g->ifs[i].name);
			ok = '1';
		}
	(void)!write(s, &ok, 1);
	_exit(0);
}

int eg_gate_detacher_start(struct eg_gate *g)
{
	int sv[2];
	pid_t pid;

	if (!g || !any_dispatcher(g))
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		helper(g, sv[1]);
	}
	close(sv[1]);
	g->detacher_fd = sv[0];
	g->detacher_pid = pid;
	return 0;
}

bool eg_gate_detacher_finish(struct eg_gate *g)
{
	char c = 'd', ok = '1';
	int status;

	if (g->detacher_fd < 0)
		return false;
	if (send(g->detacher_fd, &c, 1, MSG_NOSIGNAL) == 1)
		while (read(g->detacher_fd, &ok, 1) < 0 && errno == EINTR)
			;
	close(g->detacher_fd);
	g->detacher_fd = -1;
	while (waitpid(g->detacher_pid, &status, 0) < 0 && errno == EINTR)
		;
	return ok == '0';
}
