/* priv_client.c - the unprivileged process's side of privilege separation (priv.h,
 * priv_proto.h, docs/privsep.md): one request at a time over the socketpair, and the
 * drop to zero capabilities in every thread. */
#include "priv.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gate.h"
#include "log.h"
#include "priv_proto.h"

static struct {
	int fd;
	pid_t priv_pid;
	bool active, sockdiag, dead;
	uint64_t seq;
	pthread_mutex_t mu;
} ch = { .fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER };

bool eg_privc_active(void)
{
	return ch.active;
}

bool eg_privc_has_sockdiag(void)
{
	return ch.sockdiag;
}

/* The privileged process is gone: nothing can be enforced any more, so this one stops too
 * (systemd restarts both). Requests fail closed meanwhile. */
static void channel_lost(const char *why)
{
	if (!__atomic_exchange_n(&ch.dead, true, __ATOMIC_RELAXED)) {
		log_err("privileged process: %s; stopping", why);
		kill(getpid(), SIGTERM);
	}
}

/* One round trip, ch.mu held: one datagram of q and tail (NOTE_FLOWS: its flows). Returns
 * the reply's rc (0 / -errno) and *value. */
static int roundtrip_locked(struct eg_priv_req *q, const void *tail, size_t tail_len, int64_t *value)
{
	struct eg_priv_reply a;
	struct iovec iov[2] = { { .iov_base = q, .iov_len = sizeof(*q) },
				{ .iov_base = (void *)tail, .iov_len = tail_len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = tail_len ? 2 : 1 };
	ssize_t n;

	q->seq = ++ch.seq;
	do
		n = sendmsg(ch.fd, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)(sizeof(*q) + tail_len)) {
		channel_lost(n < 0 ? strerror(errno) : "short write");
		return -EPIPE;
	}
	do
		n = recv(ch.fd, &a, sizeof(a), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(a) || a.version != EG_PRIV_VERSION || a.seq != q->seq || a.op != q->op) {
		channel_lost(n == 0 ? "channel closed" : "bad reply");
		return -EPIPE;
	}
	if (value)
		*value = a.value;
	return a.rc;
}

/* --- the verdict path's notes, queued ---------------------------------------------------------- */

static struct {
	pthread_mutex_t mu; /* taken after ch.mu, never before it */
	uint32_t n;
	struct eg_priv_flow f[EG_PRIV_NOTE_BATCH];
	bool warned;
} nq = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* Sends what is queued, ch.mu held: every later request is sent after it, so the privileged
 * side has recorded these flows before it reads a probe, kill or revoked-flow write. */
static int flush_locked(void)
{
	struct eg_priv_flow f[EG_PRIV_NOTE_BATCH];
	struct eg_priv_req q = { .version = EG_PRIV_VERSION, .op = EG_PRIV_NOTE_FLOWS };
	int64_t recorded = 0;
	int rc;

	pthread_mutex_lock(&nq.mu);
	q.u.notes.count = nq.n;
	memcpy(f, nq.f, nq.n * sizeof(f[0]));
	nq.n = 0;
	pthread_mutex_unlock(&nq.mu);
	if (!q.u.notes.count)
		return 0;
	rc = roundtrip_locked(&q, f, q.u.notes.count * sizeof(f[0]), &recorded);
	if (rc == -EPIPE)
		return rc;
	if (rc && !__atomic_exchange_n(&nq.warned, true, __ATOMIC_RELAXED))
		log_warn("revocation: the privileged process recorded %lld of %u flows (%s): the others are neither "
			 "destroyed nor dropped in XDP when their session is revoked (logged once)",
			 (long long)recorded, q.u.notes.count, strerror(-rc));
	return 0;
}

/* One request, after the queued notes. Returns the reply's rc (0 / -errno) and *value. */
static int call(struct eg_priv_req *q, int64_t *value)
{
	int rc;

	if (!ch.active || __atomic_load_n(&ch.dead, __ATOMIC_RELAXED))
		return -EPIPE;
	q->version = EG_PRIV_VERSION;
	pthread_mutex_lock(&ch.mu);
	rc = flush_locked();
	if (rc == 0)
		rc = roundtrip_locked(q, NULL, 0, value);
	pthread_mutex_unlock(&ch.mu);
	return rc;
}

int eg_privc_flush_notes(void)
{
	int rc;

	if (!ch.active || __atomic_load_n(&ch.dead, __ATOMIC_RELAXED)) {
		errno = EPIPE;
		return -1;
	}
	pthread_mutex_lock(&ch.mu);
	rc = flush_locked();
	pthread_mutex_unlock(&ch.mu);
	if (rc) {
		errno = -rc;
		return -1;
	}
	return 0;
}

int eg_privc_note_flow_queued(const struct eg_sock_tuple *t, const uint8_t session[16])
{
	bool full;

	if (!ch.active || __atomic_load_n(&ch.dead, __ATOMIC_RELAXED)) {
		errno = EPIPE;
		return -1;
	}
	if (!eg_priv_flow_ok(t)) {
		errno = EPERM; /* what the privileged side would answer */
		return -1;
	}
	for (;;) {
		pthread_mutex_lock(&nq.mu);
		full = nq.n == EG_PRIV_NOTE_BATCH;
		if (!full) {
			nq.f[nq.n].t = *t;
			memcpy(nq.f[nq.n].session, session, 16);
			nq.n++;
		}
		pthread_mutex_unlock(&nq.mu);
		if (!full)
			return 0;
		if (eg_privc_flush_notes() != 0)
			return -1;
	}
}

static int errno_of(int rc)
{
	if (rc) {
		errno = -rc;
		return -1;
	}
	return 0;
}

int eg_privc_note_flow(const struct eg_sock_tuple *t, const uint8_t session[16])
{
	struct eg_priv_req q = { .op = EG_PRIV_NOTE_FLOW };

	q.u.flow.t = *t;
	memcpy(q.u.flow.session, session, 16);
	return errno_of(call(&q, NULL));
}

int eg_privc_probe_flow(const struct eg_sock_tuple *t)
{
	struct eg_priv_req q = { .op = EG_PRIV_PROBE_FLOW };
	int64_t v = 0;
	int rc;

	q.u.flow.t = *t;
	rc = call(&q, &v);
	return rc ? rc : (int)v;
}

int eg_privc_kill_flow(const struct eg_sock_tuple *t)
{
	struct eg_priv_req q = { .op = EG_PRIV_KILL_FLOW };

	q.u.flow.t = *t;
	return call(&q, NULL);
}

int eg_privc_revoke_flow(const struct eg_flow_key *k, const struct eg_flow_val *v)
{
	struct eg_priv_req q = { .op = EG_PRIV_REVOKE_FLOW };

	q.u.revoke_flow.k = *k;
	q.u.revoke_flow.v = *v;
	return errno_of(call(&q, NULL));
}

int eg_privc_revoke_session(const struct eg_sess_key *k, const struct eg_sess_val *v)
{
	struct eg_priv_req q = { .op = EG_PRIV_REVOKE_SESSION };

	q.u.revoke_session.k = *k;
	q.u.revoke_session.v = *v;
	return errno_of(call(&q, NULL));
}

int eg_privc_rule_put(bool allow, const uint8_t addr[16], unsigned plen, const struct eg_rule *r,
		      uint64_t flags, const char *note)
{
	struct eg_priv_req q = { .op = EG_PRIV_RULE_PUT };

	if (note && strlen(note) >= sizeof(q.u.rule.note)) {
		errno = EINVAL;
		return -1;
	}
	if (note)
		memcpy(q.u.rule.note, note, strlen(note)); /* the rest stays NUL */

	memcpy(q.u.rule.addr, addr, 16);
	q.u.rule.plen = plen;
	q.u.rule.allow = allow;
	q.u.rule.r = *r;
	q.u.rule.flags = flags;
	return errno_of(call(&q, NULL));
}

int eg_privc_rule_del(bool allow, const uint8_t addr[16], unsigned plen)
{
	struct eg_priv_req q = { .op = EG_PRIV_RULE_DEL };

	memcpy(q.u.rule.addr, addr, 16);
	q.u.rule.plen = plen;
	q.u.rule.allow = allow;
	return errno_of(call(&q, NULL));
}

long eg_privc_gate_gc(void)
{
	struct eg_priv_req q = { .op = EG_PRIV_GC };
	int64_t v = 0;
	int rc = call(&q, &v);

	return rc ? errno_of(rc) : (long)v;
}

/* --- start ------------------------------------------------------------------------------------ */

int eg_privc_start(int fd, struct eg_gate **gate, char *err, size_t errlen)
{
	struct eg_priv_hello h;
	int fds[EG_PRIV_MAX_FDS];
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
			    .msg_controllen = sizeof(cbuf.buf) };
	int nfds = 0;
	ssize_t n;

	*gate = NULL;
	do
		n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds, CMSG_DATA(c), (size_t)nfds * sizeof(int));
		}
	if (n != (ssize_t)sizeof(h) || h.version != EG_PRIV_VERSION || (m.msg_flags & MSG_CTRUNC) ||
	    (unsigned)nfds != h.n_fds || h.n_if > EG_PRIV_MAX_IF) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		snprintf(err, errlen, "the privileged process %s", n == 0 ? "exited during start-up (see above)"
									 : "sent no valid hello");
		return -1;
	}
	ch.fd = fd;
	ch.priv_pid = getppid();
	ch.sockdiag = h.sockdiag != 0;
	ch.active = true;
	if (nfds) {
		char names[EG_PRIV_MAX_IF][16];
		uint32_t flags[EG_PRIV_MAX_IF];

		for (uint32_t i = 0; i < h.n_if; i++) {
			memcpy(names[i], h.ifs[i].name, 16);
			names[i][15] = '\0';
			flags[i] = h.ifs[i].xdp_flags;
		}
		h.pin_root[sizeof(h.pin_root) - 1] = '\0';
		*gate = eg_gate_remote(h.pin_root, fds, nfds, (const char(*)[16])names, flags, (int)h.n_if, err,
				       errlen);
		if (!*gate) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			return -1;
		}
	}
	return 0;
}

/* --- dropping everything ------------------------------------------------------------------------ */

int eg_privc_trim_caps(bool will_setuid)
{
	static const cap_value_t keep[] = { CAP_SETUID, CAP_SETGID, CAP_NET_BIND_SERVICE, CAP_DAC_OVERRIDE };
	cap_t now = cap_get_proc(), caps = cap_init();
	int rc = -1;

	/* Only ever lower: a capability outside the bounding set (systemd's
	 * CapabilityBoundingSet) is not in the permitted set and cannot be asked for. */
	for (size_t i = 0; will_setuid && now && caps && i < sizeof(keep) / sizeof(keep[0]); i++) {
		cap_flag_value_t v = CAP_CLEAR;

		if (cap_get_flag(now, keep[i], CAP_PERMITTED, &v) == 0 && v == CAP_SET) {
			cap_set_flag(caps, CAP_PERMITTED, 1, &keep[i], CAP_SET);
			cap_set_flag(caps, CAP_EFFECTIVE, 1, &keep[i], CAP_SET);
		}
	}
	if (now && caps)
		rc = cap_set_proc(caps);
	cap_free(now);
	cap_free(caps);
	/* Ambient caps would survive an exec; none are expected, clear them anyway. */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		rc = -1;
	return rc;
}

/* Every thread of this process: uid (when want_uid >= 0) and no capability at all. */
static int verify_threads(long want_uid, char *bad, size_t badlen)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	int rc = 0;

	if (!dir)
		return -1;
	while (rc == 0 && (e = readdir(dir))) {
		char path[300], line[256];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue; /* the thread ended */
		while (rc == 0 && fgets(line, sizeof(line), f)) {
			unsigned long long caps;
			long ruid, euid;

			if ((sscanf(line, "CapEff: %llx", &caps) == 1 || sscanf(line, "CapPrm: %llx", &caps) == 1 ||
			     sscanf(line, "CapAmb: %llx", &caps) == 1 || sscanf(line, "CapInh: %llx", &caps) == 1) &&
			    caps != 0)
				rc = -1;
			else if (sscanf(line, "Uid: %ld %ld", &ruid, &euid) == 2 && want_uid >= 0 &&
				 (ruid != want_uid || euid != want_uid))
				rc = -1;
			if (rc)
				snprintf(bad, badlen, "thread %s: %s", e->d_name, line);
		}
		fclose(f);
	}
	closedir(dir);
	return rc;
}

int eg_privc_drop_all(const char *user)
{
	long uid = -1;
	char bad[640] = "";

	if (user) {
		struct passwd *pw = getpwnam(user);

		if (!pw) {
			log_err("user: no such user \"%s\"", user);
			return -1;
		}
		/* glibc runs set*id in every thread (POSIX semantics); leaving uid 0 without
		 * PR_SET_KEEPCAPS clears each thread's permitted and effective sets. */
		if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
			log_err("cannot drop privileges to %s: %s", user, strerror(errno));
			return -1;
		}
		if (setuid(0) == 0) {
			log_err("privilege drop did not stick");
			return -1;
		}
		uid = (long)pw->pw_uid;
	}
	/* A change of effective uid clears the parent-death signal: arm it again, and make sure
	 * the privileged process did not die in between. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || (ch.active && getppid() != ch.priv_pid)) {
		log_err("the privileged process is gone");
		return -1;
	}
	if (verify_threads(uid, bad, sizeof(bad)) != 0) {
		log_err("privilege drop incomplete: %s", bad);
		return -1;
	}
	if (user)
		log_info("running as %s with no capabilities in any thread", user);
	else
		log_info("running as uid %d (no \"user\" configured) with no capabilities in any thread", (int)getuid());
	return 0;
}
