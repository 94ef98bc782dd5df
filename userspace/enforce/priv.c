/* priv.c - the privileged process (priv.h, priv_proto.h, docs/privsep.md).
 *
 * Forked first thing, before the store, any thread or any listener. It loads and
 * attaches the XDP gate, opens the sock_diag socket, keeps CAP_NET_ADMIN alone (as
 * `user` when one is configured) and then serves the unprivileged child's requests one
 * at a time, single-threaded, validating each:
 *   - a socket is destroyed or probed only when the child noted its flow for a session
 *     first, and the revoked-flow map entry must name that same session; sockdestroy.c
 *     never destroys a listening or TIME_WAIT socket;
 *   - deny/allow prefixes are at least /8 (IPv4) or /16 (IPv6), expiries at most a year
 *     ahead, reasons known; the config's (static) deny entries are neither deleted nor
 *     overwritten, and no request writes a static entry;
 *   - each kind of request has a token bucket; over it the answer is -EAGAIN;
 *   - a datagram of the wrong size, version or op closes the channel.
 * When the child exits the channel closes: the gate is detached and this process exits
 * with the child's status. SIGTERM/SIGINT/SIGHUP are passed on to the child. */
#include "priv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "config.h"
#include "gate.h"
#include "log.h"
#include "priv_proto.h"
#include "revoke.h"
#include "sockdestroy.h"

#define MAX_NOTED (1u << 17) /* twice the daemon's flow table (EG_MAX_FLOWS) */
#define NOTED_BUCKETS (1u << 17)
#define YEAR_NS (366ull * 86400 * 1000000000ull)
#define DAY_NS (86400ull * 1000000000ull)

/* --- flows the child noted: a hash over a preallocated pool, least recently noted first out */

struct noted {
	struct eg_sock_tuple t;
	uint8_t session[16];
	uint32_t hnext, lprev, lnext; /* indexes + 1; 0 = none */
};

static struct noted *pool;
static uint32_t buckets[NOTED_BUCKETS], n_noted, lru_head, lru_tail; /* head = most recent */

static uint32_t tuple_hash(const struct eg_sock_tuple *t)
{
	const uint8_t *p = (const uint8_t *)t;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < sizeof(*t); i++)
		h = (h ^ p[i]) * 16777619u;
	return h & (NOTED_BUCKETS - 1);
}

static struct noted *noted_find(const struct eg_sock_tuple *t)
{
	for (uint32_t i = buckets[tuple_hash(t)]; i; i = pool[i - 1].hnext)
		if (memcmp(&pool[i - 1].t, t, sizeof(*t)) == 0)
			return &pool[i - 1];
	return NULL;
}

static void lru_unlink(uint32_t i)
{
	struct noted *e = &pool[i - 1];

	if (e->lprev)
		pool[e->lprev - 1].lnext = e->lnext;
	else
		lru_head = e->lnext;
	if (e->lnext)
		pool[e->lnext - 1].lprev = e->lprev;
	else
		lru_tail = e->lprev;
	e->lprev = e->lnext = 0;
}

static void lru_push(uint32_t i)
{
	struct noted *e = &pool[i - 1];

	e->lprev = 0;
	e->lnext = lru_head;
	if (lru_head)
		pool[lru_head - 1].lprev = i;
	lru_head = i;
	if (!lru_tail)
		lru_tail = i;
}

static void hash_unlink(uint32_t i)
{
	uint32_t *p = &buckets[tuple_hash(&pool[i - 1].t)];

	while (*p && *p != i)
		p = &pool[*p - 1].hnext;
	if (*p)
		*p = pool[i - 1].hnext;
}

static struct eg_sockdiag *diag;

#define VICTIM_PROBES 32

/* The pool is full: the least recently noted flow makes room, unless its socket is still
 * open (a WebSocket noted long ago): a live flow goes back to the head, so that it can still
 * be killed when its session is revoked. The daemon tracks at most half the pool's live
 * flows, so a closed one is near; past VICTIM_PROBES live ones (or without sock_diag) the
 * tail goes, and that is logged. */
static uint32_t noted_victim(void)
{
	static bool warned;

	for (int k = 0; diag && k < VICTIM_PROBES; k++) {
		uint32_t i = lru_tail;
		if (eg_sock_exists(diag, &pool[i - 1].t) != 1)
			return i;
		lru_unlink(i);
		lru_push(i);
	}
	if (diag && !warned) {
		warned = true;
		log_warn("privileged process: %u noted flows, the oldest %d still open: one is forgotten and will "
			 "not be killed on revocation (logged once)", MAX_NOTED, VICTIM_PROBES);
	}
	return lru_tail;
}

static void noted_touch(const struct noted *e)
{
	uint32_t i = (uint32_t)(e - pool) + 1;

	lru_unlink(i);
	lru_push(i);
}

static void noted_put(const struct eg_sock_tuple *t, const uint8_t session[16])
{
	struct noted *e = noted_find(t);
	uint32_t i;

	if (e) {
		i = (uint32_t)(e - pool) + 1;
		lru_unlink(i);
	} else {
		if (n_noted < MAX_NOTED) {
			i = ++n_noted;
		} else {
			i = noted_victim();
			lru_unlink(i);
			hash_unlink(i);
		}
		e = &pool[i - 1];
		e->t = *t;
		uint32_t *b = &buckets[tuple_hash(t)];
		e->hnext = *b;
		*b = i;
	}
	memcpy(e->session, session, 16);
	lru_push(i);
}

/* --- rate limits --------------------------------------------------------------------------- */

struct bucket {
	double tokens, rate, burst;
	uint64_t last_ns;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool take(struct bucket *b)
{
	uint64_t now = mono_ns();

	b->tokens += (double)(now - b->last_ns) / 1e9 * b->rate;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
	b->last_ns = now;
	if (b->tokens < 1)
		return false;
	b->tokens -= 1;
	return true;
}

/* Per op: rate/s, burst. Generous for real traffic (a flow note per new nginx connection,
 * a kill per flow of a revoked session; the start-up re-push of stored rules), small enough
 * that a compromised child cannot churn the kernel maps or the noted-flow table at will. */
static struct bucket limits[EG_PRIV__OP_COUNT] = {
	[EG_PRIV_NOTE_FLOW] = { .rate = 50000, .burst = 100000 },
	[EG_PRIV_PROBE_FLOW] = { .rate = 20000, .burst = 70000 },
	[EG_PRIV_KILL_FLOW] = { .rate = 5000, .burst = 20000 },
	[EG_PRIV_REVOKE_FLOW] = { .rate = 10000, .burst = 40000 },
	[EG_PRIV_REVOKE_SESSION] = { .rate = 2000, .burst = 10000 },
	[EG_PRIV_RULE_PUT] = { .rate = 2000, .burst = 100000 },
	[EG_PRIV_RULE_DEL] = { .rate = 2000, .burst = 100000 },
	[EG_PRIV_GC] = { .rate = 2, .burst = 10 },
	/* a batch of notes: each flow in it also takes a NOTE_FLOW token */
	[EG_PRIV_NOTE_FLOWS] = { .rate = 50000, .burst = 100000 },
};

static void limits_start(void)
{
	for (int i = 0; i < EG_PRIV__OP_COUNT; i++) {
		limits[i].tokens = limits[i].burst;
		limits[i].last_ns = mono_ns();
	}
}

/* --- validation and handling --------------------------------------------------------------- */

static struct eg_gate *gate;
static bool net_admin; /* kept after start-up */

static bool is_mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(a, pfx, 12) == 0;
}

static bool expiry_ok(uint64_t expires_ns, uint64_t max_ahead_ns, bool never_ok)
{
	if (!expires_ns)
		return never_ok;
	return expires_ns <= mono_ns() + max_ahead_ns;
}

int eg_priv_rule_ok(const struct eg_priv_rule *r, bool put)
{
	unsigned min = is_mapped(r->addr) ? 96 + 8 : 16;

	if (r->allow > 1 || r->plen > 128 || r->plen < min)
		return -EPERM;
	/* static entries are the config's, written by this process alone (eg_gate_open) */
	if (put && (r->r.reason == EG_RULE_NONE || r->r.reason == EG_RULE_STATIC || r->r.reason >= EG_RULE__COUNT || r->r.flags ||
		    (r->flags != BPF_ANY && r->flags != BPF_NOEXIST) || !expiry_ok(r->r.expires_ns, YEAR_NS, true)))
		return -EPERM;
	/* the note is shown to operators (list, JSON): printable text, terminated */
	if (put && (!memchr(r->note, 0, sizeof(r->note)) || !eg_gate_note_valid(r->note)))
		return -EPERM;
	return 0;
}

/* A TCP connection's two ends: both ports set, both addresses of one family. */
bool eg_priv_flow_ok(const struct eg_sock_tuple *t)
{
	return t->local_port && t->remote_port && is_mapped(t->local) == is_mapped(t->remote);
}

static void to_sock_tuple(const struct eg_flow_key *k, struct eg_sock_tuple *t)
{
	memcpy(t->local, k->daddr, 16);
	memcpy(t->remote, k->saddr, 16);
	t->local_port = k->dport;
	t->remote_port = k->sport;
}

/* A deny entry from the config (reason static) for exactly this prefix: the daemon proper
 * may neither delete nor overwrite it (an overwrite could give it an expiry). Static allow
 * entries are not guarded: removing one only makes the gate stricter. */
static bool static_deny(const struct eg_priv_rule *r)
{
	struct eg_prefix p = { .plen = (uint8_t)r->plen };

	memcpy(p.addr, r->addr, 16);
	return !r->allow && eg_gate_deny_reason(gate, &p) == EG_RULE_STATIC;
}

static int neg_errno(int rc)
{
	return rc ? -(errno ? errno : EIO) : 0;
}

/* One note, alone or in a batch: the same checks and the same bucket either way. */
static int note_one(const struct eg_priv_flow *f)
{
	if (!take(&limits[EG_PRIV_NOTE_FLOW]))
		return -EAGAIN;
	if (!eg_priv_flow_ok(&f->t))
		return -EPERM;
	noted_put(&f->t, f->session);
	return 0;
}

/* Each flow on its own: a refused one does not stop the others. *value: flows recorded. */
static int note_batch(const uint8_t *fl, uint32_t n, int64_t *value)
{
	int first = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct eg_priv_flow f;
		int rc;

		memcpy(&f, fl + (size_t)i * sizeof(f), sizeof(f));
		rc = note_one(&f);
		if (rc == 0)
			(*value)++;
		else if (!first)
			first = rc;
	}
	return first;
}

static int handle(const struct eg_priv_req *q, const uint8_t *extra, int64_t *value)
{
	const struct noted *e;
	struct eg_sock_tuple t;

	if (q->op != EG_PRIV_NOTE_FLOW && !take(&limits[q->op]))
		return -EAGAIN;
	switch (q->op) {
	case EG_PRIV_NOTE_FLOW:
		return note_one(&q->u.flow);
	case EG_PRIV_NOTE_FLOWS:
		return note_batch(extra, q->u.notes.count, value);
	case EG_PRIV_PROBE_FLOW:
		if (!(e = noted_find(&q->u.flow.t)))
			return -EPERM;
		*value = eg_sock_exists(diag, &q->u.flow.t);
		if (*value == 1)
			noted_touch(e); /* alive: the last to be forgotten */
		return *value < 0 ? (int)*value : 0;
	case EG_PRIV_KILL_FLOW:
		if (!noted_find(&q->u.flow.t))
			return -EPERM;
		return eg_sock_destroy(diag, &q->u.flow.t);
	case EG_PRIV_REVOKE_FLOW:
		to_sock_tuple(&q->u.revoke_flow.k, &t);
		e = noted_find(&t);
		if (!gate)
			return -ENODEV;
		if (!e || memcmp(e->session, q->u.revoke_flow.v.session, 16) != 0 ||
		    q->u.revoke_flow.k.proto != IPPROTO_TCP || memcmp(q->u.revoke_flow.k.pad, "\0\0\0", 3) != 0 ||
		    q->u.revoke_flow.v.reason >= EG_RULE__COUNT || q->u.revoke_flow.v.pad ||
		    !expiry_ok(q->u.revoke_flow.v.expires_ns, DAY_NS, false))
			return -EPERM;
		return neg_errno(eg_gate_flow_apply(gate, &q->u.revoke_flow.k, &q->u.revoke_flow.v));
	case EG_PRIV_REVOKE_SESSION: {
		struct eg_sess_val v = q->u.revoke_session.v;

		if (!gate)
			return -ENODEV;
		if (v.reason >= EG_REVOKE__COUNT || v.pad || !expiry_ok(v.expires_ns, YEAR_NS, false))
			return -EPERM;
		v.revoked_unix = (uint64_t)time(NULL);
		return neg_errno(eg_gate_session_apply(gate, &q->u.revoke_session.k, &v));
	}
	case EG_PRIV_RULE_PUT:
	case EG_PRIV_RULE_DEL: {
		const struct eg_priv_rule *r = &q->u.rule;
		bool put = q->op == EG_PRIV_RULE_PUT;
		int rc = eg_priv_rule_ok(r, put);

		if (!gate)
			return -ENODEV;
		if (rc)
			return rc;
		if (static_deny(r))
			return -EPERM;
		errno = 0;
		if (put)
			return neg_errno(eg_gate_rule_apply(gate, r->allow, r->addr, r->plen, &r->r, r->flags, r->note));
		return neg_errno(eg_gate_rule_remove(gate, r->allow, r->addr, r->plen));
	}
	case EG_PRIV_GC:
		if (!gate)
			return -ENODEV;
		*value = eg_gate_gc(gate);
		return *value < 0 ? -EIO : 0;
	}
	return -EINVAL; /* not reached: ops are checked before */
}

/* --- the process ------------------------------------------------------------------------------ */

static pid_t child;

static void forward_signal(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/* Single-threaded, so the capability set applies to the whole process. */
static int keep_only_net_admin(const char *user)
{
	cap_value_t keep[] = { CAP_NET_ADMIN };
	struct passwd *pw = NULL;
	cap_t caps;
	int rc = -1;

	if (user) {
		pw = getpwnam(user);
		if (!pw) {
			log_err("user: no such user \"%s\"", user);
			return -1;
		}
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
		    setuid(pw->pw_uid) != 0) {
			log_err("privileged process: cannot become %s: %s", user, strerror(errno));
			return -1;
		}
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	}
	/* Started without it (not root, or a bounding set without it): carry on with nothing;
	 * revoked flows are then only dropped in XDP, which revoke.c logs. */
	cap_t now = cap_get_proc();
	cap_flag_value_t have = CAP_CLEAR;
	if (!now || cap_get_flag(now, CAP_NET_ADMIN, CAP_PERMITTED, &have) != 0)
		have = CAP_CLEAR;
	cap_free(now);
	net_admin = have == CAP_SET;
	if (have != CAP_SET)
		log_warn("privileged process: started without CAP_NET_ADMIN: sockets of revoked sessions "
			 "cannot be destroyed");
	caps = cap_init();
	if (caps && (have != CAP_SET || (cap_set_flag(caps, CAP_PERMITTED, 1, keep, CAP_SET) == 0 &&
					 cap_set_flag(caps, CAP_EFFECTIVE, 1, keep, CAP_SET) == 0)))
		rc = cap_set_proc(caps);
	cap_free(caps);
	if (rc != 0) {
		log_err("privileged process: cannot keep CAP_NET_ADMIN: %s", strerror(errno));
		return -1;
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return 0;
}

/* One per pin root: a second daemon would replace the first one's XDP program. bpffs
 * directories take flock like any other. */
static int lock_pin_root(const char *pin_root)
{
	const char *root = pin_root && *pin_root ? pin_root : EG_PIN_ROOT_DEFAULT;
	int fd;

	char path[4096];

	/* the gate would create it; create it first, to lock it before loading anything */
	snprintf(path, sizeof(path), "%s", root);
	for (char *p = path + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0700);
			*p = '/';
		}
	mkdir(path, 0700);
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* not there yet (bpffs not mounted): eg_gate_open reports it */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		log_err("gate.pin_root %s is in use by another edgegated; not starting", root);
		close(fd);
		return -1;
	}
	return fd; /* held until exit */
}

static int send_hello(int fd)
{
	struct eg_priv_hello h = { .version = EG_PRIV_VERSION, .sockdiag = diag != NULL };
	int fds[EG_PRIV_MAX_FDS], n = 0;
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t w;

	if (gate) {
		char names[EG_PRIV_MAX_IF][16];
		uint32_t flags[EG_PRIV_MAX_IF];

		n = eg_gate_ro_fds(gate, fds, EG_PRIV_MAX_FDS);
		if (n < 0) {
			log_err("privileged process: read-only map fds: %s", strerror(errno));
			return -1;
		}
		h.n_if = (uint32_t)eg_gate_attachments(gate, names, flags, EG_PRIV_MAX_IF);
		for (uint32_t i = 0; i < h.n_if; i++) {
			memcpy(h.ifs[i].name, names[i], 16);
			h.ifs[i].xdp_flags = flags[i];
		}
		json_t *st = eg_gate_status_json(gate);
		snprintf(h.pin_root, sizeof(h.pin_root), "%s", json_string_value(json_object_get(st, "pin_root")));
		json_decref(st);
		h.n_fds = (uint32_t)n;
		m.msg_control = cbuf.buf;
		m.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
	}
	w = sendmsg(fd, &m, MSG_NOSIGNAL);
	for (int i = 0; i < n; i++)
		close(fds[i]); /* the child has its own copies now */
	return w == (ssize_t)sizeof(h) ? 0 : -1;
}

/* The datagram's size a request of this op and count must have (0: none is valid). */
size_t eg_priv_req_size(const struct eg_priv_req *q)
{
	if (q->op != EG_PRIV_NOTE_FLOWS)
		return sizeof(*q);
	if (q->u.notes.count < 1 || q->u.notes.count > EG_PRIV_NOTE_BATCH)
		return 0;
	return sizeof(*q) + q->u.notes.count * sizeof(struct eg_priv_flow);
}

int eg_priv_answer(const void *buf, size_t len, struct eg_priv_reply *a)
{
	struct eg_priv_req q;

	if (len < sizeof(q))
		return -1;
	memcpy(&q, buf, sizeof(q));
	if (q.version != EG_PRIV_VERSION || q.op == 0 || q.op >= EG_PRIV__OP_COUNT || len != eg_priv_req_size(&q))
		return -1;
	if (!pool && !(pool = calloc(MAX_NOTED, sizeof(*pool))))
		return -1;
	memset(a, 0, sizeof(*a));
	a->version = EG_PRIV_VERSION;
	a->op = q.op;
	a->seq = q.seq;
	a->rc = handle(&q, (const uint8_t *)buf + sizeof(q), &a->value);
	return 0;
}

static void serve(int fd)
{
	union {
		struct eg_priv_req q;
		uint8_t b[EG_PRIV_MAX_DGRAM + 1]; /* a longer datagram is seen as longer */
	} in;
	struct eg_priv_reply a;

	for (;;) {
		ssize_t n = recv(fd, in.b, sizeof(in.b), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the child is gone */
		if (eg_priv_answer(in.b, (size_t)n, &a) != 0) {
			log_err("privileged process: malformed request (%zd bytes, version %u, op %u): closing the channel",
				n, n >= 8 ? in.q.version : 0, n >= 8 ? in.q.op : 0);
			return;
		}
		if (send(fd, &a, sizeof(a), MSG_NOSIGNAL) != (ssize_t)sizeof(a))
			return;
	}
}

void eg_priv_run(const struct eg_config *cfg, int fd)
{
	char err[512];
	int status = 0, pin_lock = -1;
	struct sigaction sa = { .sa_handler = forward_signal }; /* no SA_RESTART: recv returns EINTR */

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	pool = calloc(MAX_NOTED, sizeof(*pool));
	if (!pool)
		goto out;
	limits_start();
	if (cfg->gate.present) {
		pin_lock = lock_pin_root(cfg->gate.pin_root);
		if (pin_lock < 0)
			goto out;
		gate = eg_gate_open(cfg, err, sizeof(err));
		if (!gate) /* fail open on the kernel side only: the verdict path still enforces */
			log_err("gate: %s; continuing without XDP enforcement", err);
		else if (eg_gate_detacher_start(gate) != 0) /* before the drop: it needs root */
			log_warn("gate: cannot start the helper that takes the gate out of the dispatcher "
				 "at stop (%s): it will stay attached, enforcing, until the next start replaces it",
				 strerror(errno));
	}
	diag = eg_sockdiag_open();
	if (!diag) /* the daemon proper still notes flows, so a gate still drops revoked ones */
		log_warn("privileged process: no NETLINK_SOCK_DIAG socket (%s): sockets of revoked sessions "
			 "cannot be destroyed%s", strerror(errno), gate ? "; their flows are dropped in XDP" : "");
	/* The read-only fds are opened by map id, which needs CAP_SYS_ADMIN: hello first. The
	 * child's requests wait in the socket until serve() reads them, after the drop. */
	if (send_hello(fd) != 0 || keep_only_net_admin(cfg->user) != 0)
		goto out;
	log_info("privileged process %d ready (uid %d, %s; gate %s, sock_diag %s)", (int)getpid(), (int)getuid(),
		 net_admin ? "CAP_NET_ADMIN only" : "no capability", gate ? "attached" : "off", diag ? "yes" : "no");
	serve(fd);
out:
	close(fd); /* the child sees EOF and stops, if it was not the one that ended */
	if (child > 0) {
		kill(child, SIGTERM);
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (gate)
		eg_gate_close(gate); /* detaches; pinned maps (bans) stay */
	eg_sockdiag_close(diag);
	free(pool);
	if (pin_lock >= 0)
		close(pin_lock);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

int eg_priv_split(const struct eg_config *cfg, char *err, size_t errlen)
{
	int sv[2];
	pid_t parent = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (child > 0) {
		close(sv[1]);
		eg_priv_run(cfg, sv[0]);
	}
	close(sv[0]);
	/* The child: dies with the privileged process, and holds nothing privileged. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent) {
		snprintf(err, errlen, "the privileged process exited during start-up");
		return -1;
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return sv[1];
}
