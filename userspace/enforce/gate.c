/* gate.c - the XDP edge gate from userspace (see gate.h, docs/gate.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "config.h"
#include "gate.h"
#include "gate_priv.h"
#include "log.h"
#include "priv.h"
#include "store.h"
#include "edgegate.skel.h"

const char *const eg_gate_map_names[M__COUNT] = {
	[M_CFG] = EG_MAP_CFG,             [M_PORTS] = EG_MAP_PORTS,
	[M_DENY4] = EG_MAP_DENY4,         [M_ALLOW4] = EG_MAP_ALLOW4,
	[M_DENY6] = EG_MAP_DENY6,         [M_ALLOW6] = EG_MAP_ALLOW6,
	[M_DENY4_IDX] = EG_MAP_DENY4_IDX, [M_ALLOW4_IDX] = EG_MAP_ALLOW4_IDX,
	[M_DENY4_SLOTS] = EG_MAP_DENY4_SLOTS, [M_DENY6_IDX] = EG_MAP_DENY6_IDX,
	[M_TABLES] = EG_MAP_TABLES,       [M_NOTES] = EG_MAP_NOTES,
	[M_RATE] = EG_MAP_RATE,           [M_FLOWS] = EG_MAP_FLOWS,
	[M_SESSIONS] = EG_MAP_SESSIONS,   [M_STATS] = EG_MAP_STATS,
	[M_FLOWSLOTS] = EG_MAP_FLOWSLOTS, [M_FLOOD] = EG_MAP_FLOOD,
	[M_SYNBOX] = EG_MAP_SYNBOX,       [M_DENY6S] = EG_MAP_DENY6S,
	[M_DENY6S_SLOTS] = EG_MAP_DENY6S_SLOTS, [M_DENY6_SLOTS] = EG_MAP_DENY6_SLOTS,
	[M_ALLOW4_SLOTS] = EG_MAP_ALLOW4_SLOTS, [M_ALLOW6_IDX] = EG_MAP_ALLOW6_IDX,
	[M_ALLOW6S_SLOTS] = EG_MAP_ALLOW6S_SLOTS, [M_ALLOW6_SLOTS] = EG_MAP_ALLOW6_SLOTS,
};
#define map_names eg_gate_map_names

static const char *const reason_names[EG_REASON__COUNT] = {
	[EG_REASON_PASS] = "pass",           [EG_REASON_NONIP] = "nonip",
	[EG_REASON_ALLOW] = "allow",         [EG_REASON_DENY] = "deny",
	[EG_REASON_BAN] = "ban",             [EG_REASON_REVOKED] = "revoked",
	[EG_REASON_RATELIMIT] = "ratelimit", [EG_REASON_PKTLIMIT] = "pktlimit",
	[EG_REASON_MALFORMED] = "malformed", [EG_REASON_SHED] = "shed",
	[EG_REASON_OBSERVED] = "observed",   [EG_REASON_FRAGMENT] = "fragment",
};

static const char *const rule_names[EG_RULE__COUNT] = {
	[EG_RULE_NONE] = "none",   [EG_RULE_STATIC] = "static", [EG_RULE_MANUAL] = "manual",
	[EG_RULE_BAN] = "ban",     [EG_RULE_ABUSE] = "abuse",   [EG_RULE_SCANNER] = "scanner",
};

const char *eg_gate_reason_name(unsigned reason)
{
	return reason < EG_REASON__COUNT ? reason_names[reason] : "unknown";
}

const char *eg_gate_rule_name(uint32_t reason)
{
	return reason < EG_RULE__COUNT ? rule_names[reason] : "unknown";
}

int eg_gate_rule_parse(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	for (uint32_t i = 1; i < EG_RULE__COUNT; i++)
		if (strcmp(s, rule_names[i]) == 0)
			return *out = i, 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v >= EG_RULE__COUNT)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 3, 4))) static void errf(char *err, size_t errlen,
							const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* --- config map ---------------------------------------------------------------- */

static int cfg_read(struct eg_gate *g, struct eg_cfg *c)
{
	__u32 z = 0;

	return bpf_map_lookup_elem(g->fd[M_CFG], &z, c);
}

static int cfg_write(struct eg_gate *g, const struct eg_cfg *c)
{
	__u32 z = 0;

	return bpf_map_update_elem(g->fd[M_CFG], &z, c, BPF_ANY);
}

uint64_t eg_gate_now_ns(struct eg_gate *g)
{
	struct eg_cfg c;

	if (cfg_read(g, &c))
		return mono_ns();
	return mono_ns() + (uint64_t)c.clock_offset_ns;
}

/* Empties the SYN-refusal slots (abi.h EG_SYNBOX_SLOTS) whose time has passed, or
 * all of them (a config push: their times came from the previous rates). A clock
 * change needs nothing: a slot's time is the bucket's tat - tolerance, same clock.
 * A slot XDP rewrites meanwhile may be emptied: it is a cache, the bucket decides. */
static void synbox_sweep(struct eg_gate *g, bool all, uint64_t now)
{
	__u32 now_u = (__u32)(now >> EG_SYNBOX_SHIFT), n = EG_SYNBOX_SLOTS, out_b;
	__u32 *ks = malloc(EG_SYNBOX_SLOTS * sizeof(*ks));
	__u64 *vs = malloc(EG_SYNBOX_SLOTS * sizeof(*vs)), zero = 0;

	/* one batch read of the whole array; an error leaves the slots as they are */
	if (ks && vs && (bpf_map_lookup_batch(g->fd[M_SYNBOX], NULL, &out_b, ks, vs, &n, NULL) == 0 ||
			 errno == ENOENT))
		for (__u32 i = 0; i < n; i++)
			if (vs[i] && (all || (int32_t)((__u32)vs[i] - now_u) <= 0))
				bpf_map_update_elem(g->fd[M_SYNBOX], &ks[i], &zero, BPF_ANY);
	free(ks);
	free(vs);
}

int eg_gate_set_clock_offset(struct eg_gate *g, int64_t offset_ns)
{
	struct eg_cfg c;
	int rc;

	pthread_mutex_lock(&g->mu);
	rc = cfg_read(g, &c);
	if (!rc) {
		c.clock_offset_ns = offset_ns;
		rc = cfg_write(g, &c);
	}
	pthread_mutex_unlock(&g->mu);
	return rc;
}

int eg_gate_set_observe(struct eg_gate *g, bool on)
{
	struct eg_cfg c;
	int rc;

	pthread_mutex_lock(&g->mu);
	rc = cfg_read(g, &c);
	if (!rc) {
		c.flags = on ? (c.flags | EG_CFG_OBSERVE) : (c.flags & ~EG_CFG_OBSERVE);
		rc = cfg_write(g, &c);
	}
	pthread_mutex_unlock(&g->mu);
	return rc;
}

/* --- prefixes ------------------------------------------------------------------- */

void eg_gate_mask_addr(uint8_t a[16], unsigned plen)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned lo = i * 8;

		if (lo >= plen)
			a[i] = 0;
		else if (lo + 8 > plen)
			a[i] &= (uint8_t)(0xff << (8 - (plen - lo)));
	}
}

bool eg_gate_is_v4mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(a, pfx, 12) == 0;
}

void eg_gate_prefix_text(const uint8_t addr[16], unsigned plen, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (eg_gate_is_v4mapped(addr) && plen >= 96) {
		inet_ntop(AF_INET, addr + 12, a, sizeof(a));
		if (plen == 128)
			snprintf(buf, len, "%s", a);
		else
			snprintf(buf, len, "%s/%u", a, plen - 96);
	} else {
		inet_ntop(AF_INET6, addr, a, sizeof(a));
		if (plen == 128)
			snprintf(buf, len, "%s", a);
		else
			snprintf(buf, len, "%s/%u", a, plen);
	}
}

/* --- stats -------------------------------------------------------------------------------- */

int eg_gate_stats_bytes(struct eg_gate *g, uint64_t pkts[EG_REASON__COUNT],
			uint64_t bytes[EG_REASON__COUNT])
{
	struct eg_stat *v = calloc((size_t)g->ncpus, sizeof(*v));

	if (!v)
		return -1;
	for (__u32 i = 0; i < EG_REASON__COUNT; i++) {
		pkts[i] = 0;
		if (bytes)
			bytes[i] = 0;
		if (bpf_map_lookup_elem(g->fd[M_STATS], &i, v)) {
			free(v);
			return -1;
		}
		for (int c = 0; c < g->ncpus; c++) {
			pkts[i] += v[c].packets;
			if (bytes)
				bytes[i] += v[c].bytes;
		}
	}
	free(v);
	return 0;
}

int eg_gate_stats(struct eg_gate *g, uint64_t out[EG_REASON__COUNT])
{
	return eg_gate_stats_bytes(g, out, NULL);
}

json_t *eg_gate_stats_json(struct eg_gate *g)
{
	uint64_t p[EG_REASON__COUNT], b[EG_REASON__COUNT];
	json_t *pk, *by;

	if (eg_gate_stats_bytes(g, p, b))
		return NULL;
	pk = json_object();
	by = json_object();
	for (unsigned i = 0; i < EG_REASON__COUNT; i++) {
		json_object_set_new(pk, reason_names[i], json_integer((json_int_t)p[i]));
		json_object_set_new(by, reason_names[i], json_integer((json_int_t)b[i]));
	}
	return json_pack("{s:o, s:o}", "packets", pk, "bytes", by);
}

/* --- revocation ------------------------------------------------------------------------ */

static void flow_key(const struct eg_flow *f, struct eg_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->saddr, f->client, 16);
	memcpy(k->daddr, f->server, 16);
	k->sport = f->client_port;
	k->dport = f->server_port;
	k->proto = IPPROTO_TCP;
}

int eg_gate_revoke_flow(struct eg_gate *g, const struct eg_flow *f, const uint8_t session[16],
			int64_t ttl_s)
{
	struct eg_flow_key k;
	struct eg_flow_val v = { .reason = EG_RULE_MANUAL };

	flow_key(f, &k);
	if (session)
		memcpy(v.session, session, 16);
	if (ttl_s > 0)
		v.expires_ns = eg_gate_now_ns(g) + (uint64_t)ttl_s * 1000000000ull;
	if (g->remote)
		return eg_privc_revoke_flow(&k, &v);
	return eg_gate_flow_apply(g, &k, &v);
}

int eg_gate_unrevoke_flow(struct eg_gate *g, const struct eg_flow *f)
{
	struct eg_flow_key k;
	int rc;

	flow_key(f, &k);
	if (g->remote) {
		errno = EPERM; /* not part of the protocol: nothing in the daemon un-revokes */
		return -1;
	}
	eg_gate_wlock(g);
	rc = eg_flows_del(g, &k);
	eg_gate_wunlock(g);
	return rc;
}

int eg_gate_revoke_session(struct eg_gate *g, const uint8_t session_hash[16], uint32_t reason,
			   int64_t ttl_s)
{
	struct eg_sess_key k;
	struct eg_sess_val v = { .revoked_unix = (__u64)time(NULL), .reason = reason };

	memcpy(k.hash, session_hash, 16);
	if (ttl_s > 0)
		v.expires_ns = eg_gate_now_ns(g) + (uint64_t)ttl_s * 1000000000ull;
	if (g->remote)
		return eg_privc_revoke_session(&k, &v);
	return bpf_map_update_elem(g->fd[M_SESSIONS], &k, &v, BPF_ANY) ? -1 : 0;
}

bool eg_gate_session_revoked(struct eg_gate *g, const uint8_t session_hash[16])
{
	struct eg_sess_key k;
	struct eg_sess_val v;

	memcpy(k.hash, session_hash, 16);
	if (bpf_map_lookup_elem(g->fd[M_SESSIONS], &k, &v))
		return false;
	return v.expires_ns == 0 || v.expires_ns > eg_gate_now_ns(g);
}

/* --- GC --------------------------------------------------------------------------------- */

/* Generic expiry walk for maps whose value starts with... different layouts, so two
 * small walkers: flows and sessions. */
static long gc_expiring(struct eg_gate *g, int m, size_t ksz, size_t vsz, size_t exp_off,
			uint64_t now)
{
	uint8_t cur[64], prev[64], val[64];
	bool have_prev = false;
	long removed = 0;

	/* Walk with the previous key; after a delete, continue from the same prev
	 * (the deleted key is gone, next_key of prev still advances). */
	while (bpf_map_get_next_key(g->fd[m], have_prev ? prev : NULL, cur) == 0) {
		uint64_t exp;

		if (bpf_map_lookup_elem(g->fd[m], cur, val) == 0) {
			memcpy(&exp, val + exp_off, sizeof(exp));
			if (exp && exp <= now && bpf_map_delete_elem(g->fd[m], cur) == 0) {
				removed++;
				continue; /* prev unchanged */
			}
		}
		memcpy(prev, cur, ksz);
		have_prev = true;
	}
	(void)vsz;
	return removed;
}

/* The revoked-flow slots from the flows the map holds (gate_flows.c). */
static void flowslots_rebuild(struct eg_gate *g)
{
	eg_gate_wlock(g);
	if (eg_flows_rebuild(g))
		log_warn("gate: rebuilding the revoked-flow slots failed: %s", strerror(errno));
	eg_gate_wunlock(g);
}

static long gate_gc(struct eg_gate *g, bool force)
{
	uint64_t now = eg_gate_now_ns(g);
	long removed;

	if (g->remote)
		return eg_privc_gate_gc();
	eg_gate_wlock(g);
	removed = eg_rules_gc(g, now, force);
	eg_gate_wunlock(g);
	if (removed < 0)
		return -1;
	{
		long fr = gc_expiring(g, M_FLOWS, sizeof(struct eg_flow_key), sizeof(struct eg_flow_val),
				      offsetof(struct eg_flow_val, expires_ns), now);

		if (fr || force)
			flowslots_rebuild(g);
		removed += fr;
	}
	removed += gc_expiring(g, M_SESSIONS, sizeof(struct eg_sess_key), sizeof(struct eg_sess_val),
			       offsetof(struct eg_sess_val, expires_ns), now);
	synbox_sweep(g, false, now);
	return removed;
}

long eg_gate_gc(struct eg_gate *g)
{
	return gate_gc(g, false);
}

/* --- load / open ----------------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -1;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) && errno != EEXIST ? -1 : 0;
}

/* Pins need a bpffs; many hosts mount it at /sys/fs/bpf, some do not. */
static int ensure_bpffs(const char *pin_root)
{
	struct statfs st;

	if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return mkdir_p(pin_root);
	if (strncmp(pin_root, "/sys/fs/bpf/", 12) == 0) {
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") && errno != EBUSY)
			return -1;
	}
	if (mkdir_p(pin_root))
		return -1;
	if (statfs(pin_root, &st) || st.f_type != BPF_FS_MAGIC) {
		errno = ENOTSUP;
		return -1;
	}
	return 0;
}

/* The config key that sizes map `name` (for the warning below). */
static const char *size_key(const char *name)
{
	return !strcmp(name, EG_MAP_RATE) ? "gate.max_sources" : "gate.max_deny";
}

/* A pinned map keeps its size; adopting it keeps its entries (bans survive a
 * config change of max_deny). The deny buckets too: XDP and every writer take their
 * size from the array itself, so a pinned array of another size stays consistent. */
void eg_gate_size_map(struct eg_gate *g, struct bpf_map *m, uint32_t want)
{
	char path[PATH_MAX + 64];
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", g->pin_root, bpf_map__name(m));
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
			if (want && info.max_entries != want)
				log_warn("gate: %s keeps its pinned size %u (%s asks %u); "
					 "remove the pin to resize", path, info.max_entries,
					 size_key(bpf_map__name(m)), want);
			want = info.max_entries;
		}
		close(fd);
	}
	if (want)
		bpf_map__set_max_entries(m, want);
}

/* log2 of a deny bucket array's size, or -1 when it is not a power of two in range. */
static int slots_log2_of(__u32 entries)
{
	for (int l = EG_SLOTS_MIN_LOG2; l <= EG_SLOTS4_MAX_LOG2; l++)
		if (entries == 1u << l)
			return l;
	return -1;
}

static struct bpf_map *rodata_map(struct bpf_object *obj)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		const char *n = bpf_map__name(m);
		size_t len = strlen(n);

		if (bpf_map__is_internal(m) && len >= 7 && !strcmp(n + len - 7, ".rodata"))
			return m;
	}
	return NULL;
}

int eg_gate_set_slots_rodata(struct bpf_object *obj, char *err, size_t errlen)
{
	struct bpf_map *m4 = bpf_object__find_map_by_name(obj, EG_MAP_DENY4_SLOTS),
		       *m6 = bpf_object__find_map_by_name(obj, EG_MAP_DENY6S_SLOTS),
		       *m6l = bpf_object__find_map_by_name(obj, EG_MAP_DENY6_SLOTS), *ro = rodata_map(obj);
	struct edgegate_bpf__rodata *v;
	const void *init = NULL;
	size_t sz = 0;
	int l4, l6, l6l, rc;

	if (ro)
		init = bpf_map__initial_value(ro, &sz);
	if (!m4 || !m6 || !m6l || !init || sz < sizeof(*v)) {
		errf(err, errlen, "gate: %sthe BPF object has no deny bucket arrays or .rodata: %s", "",
		     strerror(ENOENT));
		return -1;
	}
	l4 = slots_log2_of(bpf_map__max_entries(m4));
	l6 = slots_log2_of(bpf_map__max_entries(m6));
	l6l = slots_log2_of(bpf_map__max_entries(m6l));
	if (l4 < 0 || l6 < 0 || l6l < 0) {
		errf(err, errlen, "gate: the pinned %s (%u), %s (%u) or %s (%u) is not a power of two of "
		     "2^%d..2^%d buckets; remove those pins (they are rebuilt from the rule hashes, "
		     "sized by gate.max_deny)", EG_MAP_DENY4_SLOTS, bpf_map__max_entries(m4),
		     EG_MAP_DENY6S_SLOTS, bpf_map__max_entries(m6), EG_MAP_DENY6_SLOTS,
		     bpf_map__max_entries(m6l), EG_SLOTS_MIN_LOG2, EG_SLOTS4_MAX_LOG2);
		return -1;
	}
	v = malloc(sz);
	if (!v) {
		errf(err, errlen, "gate: %s%s", "", strerror(ENOMEM));
		return -1;
	}
	memcpy(v, init, sz);
	v->eg_slots4_log2 = (__u32)l4;
	v->eg_slots6_log2 = (__u32)l6;
	v->eg_slots6l_log2 = (__u32)l6l;
	rc = bpf_map__set_initial_value(ro, v, sz);
	free(v);
	if (rc) {
		errf(err, errlen, "gate: %ssetting the deny buckets' sizes: %s", "", strerror(-rc));
		return -1;
	}
	return 0;
}

static void push_cfg(struct eg_gate *g, const struct eg_gate_config *gc)
{
	struct eg_cfg c = {};
	__u64 ports[EG_PORTS_WORDS] = {};

	cfg_read(g, &c); /* keep the test clock */
	c.flags = EG_CFG_ENABLED | (gc->observe ? EG_CFG_OBSERVE : 0) |
		  (gc->ban_scope_all ? EG_CFG_BAN_ALL : 0);
	c.syn_rate = gc->syn_rate;
	c.syn_burst = gc->syn_burst ? gc->syn_burst : gc->syn_rate;
	c.pkt_rate = gc->pkt_rate;
	c.pkt_burst = gc->pkt_burst ? gc->pkt_burst : gc->pkt_rate;
	c.syn_t_ns = c.syn_rate ? (__u32)(1000000000ull / c.syn_rate) : 0;
	c.pkt_t_ns = c.pkt_rate ? (__u32)(1000000000ull / c.pkt_rate) : 0;
	c.v6_plen = gc->ipv6_group_plen ? gc->ipv6_group_plen : 64;
	/* Flood: more new sources per second than a quarter of the table means the
	 * table would churn in a few seconds; split across CPUs (per-CPU windows). */
	c.flood_interval_ns = 1000000000ull;
	c.flood_max_new = (gc->flood_new_sources ? gc->flood_new_sources
						 : (gc->max_sources ? gc->max_sources : 262144) / 4) /
			  (unsigned)g->ncpus;
	if (!c.flood_max_new)
		c.flood_max_new = 1;
	cfg_write(g, &c);
	synbox_sweep(g, true, 0);

	for (size_t i = 0; i < gc->n_protected_ports; i++)
		ports[gc->protected_ports[i] >> 6] |= 1ull << (gc->protected_ports[i] & 63);
	for (__u32 w = 0; w < EG_PORTS_WORDS; w++)
		bpf_map_update_elem(g->fd[M_PORTS], &w, &ports[w], BPF_ANY);
}

/* Static lists are the config's: entries of an earlier config go, these come in. */
static int push_static(struct eg_gate *g, const struct eg_gate_config *gc)
{
	struct eg_rule r = { .reason = EG_RULE_STATIC };
	int rc = 0;

	eg_gate_wlock(g);
	if (eg_rules_drop_static(g))
		rc = -1;
	for (size_t i = 0; !rc && i < gc->n_deny; i++)
		if (eg_rules_put(g, false, gc->deny[i].addr, gc->deny[i].plen, &r, BPF_ANY, NULL))
			rc = -1;
	for (size_t i = 0; !rc && i < gc->n_allow; i++)
		if (eg_rules_put(g, true, gc->allow[i].addr, gc->allow[i].plen, &r, BPF_ANY, NULL))
			rc = -1;
	eg_gate_wunlock(g);
	return rc;
}

/* The writers' lock is a directory of its own under the pin root, not the pin root:
 * the privileged process holds an flock on the pin root itself for its lifetime (one
 * daemon per pin root, priv.c), and a second open of the same directory would block
 * on it. Opened once, before the privileged process drops to `user`; flock on an
 * open fd needs no permission, so the drop does not matter. */
static int open_lock(struct eg_gate *g, bool create)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", g->pin_root, EG_GATE_WLOCK_DIR);
	if (create && mkdir(path, 0700) && errno != EEXIST)
		return -1;
	g->lockfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g->lockfd < 0 && !create && errno == ENOENT && access(g->pin_root, F_OK) == 0 &&
	    mkdir(path, 0700) == 0) /* pins of an older daemon */
		g->lockfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return g->lockfd < 0 ? -1 : 0;
}

/* One BPF array mapped shared, read and write; NULL (errno set) when it cannot be. */
static void *map_shared(int fd, size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* The rules' buckets (deny and allow), mapped shared: the writers update them with ordered
 * 8-byte stores (abi.h eg_slots4), bulk loads and GC without a system call per bucket. */
static int map_slots(struct eg_gate *g)
{
	struct bpf_map_info i4 = {}, i6 = {}, i6l = {};
	__u32 len4 = sizeof(i4), len6 = sizeof(i6), len6l = sizeof(i6l);
	int l4, l6, l6l;

	if (bpf_obj_get_info_by_fd(g->fd[M_DENY4_SLOTS], &i4, &len4) ||
	    bpf_obj_get_info_by_fd(g->fd[M_DENY6S_SLOTS], &i6, &len6) ||
	    bpf_obj_get_info_by_fd(g->fd[M_DENY6_SLOTS], &i6l, &len6l))
		return -1;
	l4 = slots_log2_of(i4.max_entries);
	l6 = slots_log2_of(i6.max_entries);
	l6l = slots_log2_of(i6l.max_entries);
	if (l4 < 0 || l6 < 0 || l6l < 0) { /* not one this program can index */
		errno = EINVAL;
		return -1;
	}
	g->slots4_log2 = (__u32)l4;
	g->slots6_log2 = (__u32)l6;
	g->slots6l_log2 = (__u32)l6l;
	if (!(g->slots4 = map_shared(g->fd[M_DENY4_SLOTS], ((size_t)1 << l4) * sizeof(struct eg_slots4))))
		return -1;
	if (!(g->slots6 = map_shared(g->fd[M_DENY6S_SLOTS], ((size_t)1 << l6) * sizeof(struct eg_slots6))))
		return -1;
	if (!(g->slots6l = map_shared(g->fd[M_DENY6_SLOTS], ((size_t)1 << l6l) * sizeof(struct eg_slots6l))))
		return -1;
	if (!(g->aslots4 = map_shared(g->fd[M_ALLOW4_SLOTS], (size_t)EG_ALLOW4_SLOTS * sizeof(struct eg_slots4))))
		return -1;
	if (!(g->aslots6 = map_shared(g->fd[M_ALLOW6S_SLOTS], (size_t)EG_ALLOW6_SLOTS * sizeof(struct eg_slots6))))
		return -1;
	if (!(g->aslots6l = map_shared(g->fd[M_ALLOW6_SLOTS], (size_t)EG_ALLOW6_SLOTS * sizeof(struct eg_slots6l))))
		return -1;
	return 0;
}

static struct eg_gate *gate_new(const char *pin_root)
{
	struct eg_gate *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	for (int i = 0; i < M__COUNT; i++)
		g->fd[i] = -1;
	g->lockfd = -1;
	g->detacher_fd = -1;
	snprintf(g->pin_root, sizeof(g->pin_root), "%s",
		 pin_root && *pin_root ? pin_root : EG_PIN_ROOT_DEFAULT);
	g->ncpus = libbpf_num_possible_cpus();
	if (g->ncpus < 1)
		g->ncpus = 1;
	pthread_mutex_init(&g->mu, NULL);
	return g;
}

struct eg_gate *eg_gate_load(const struct eg_gate_config *gc, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct eg_gate *g = gate_new(gc->pin_root);
	struct bpf_map *m;
	int rc;

	if (!g) {
		errf(err, errlen, "gate: %s%s", "", strerror(ENOMEM));
		return NULL;
	}
	if (ensure_bpffs(g->pin_root)) {
		errf(err, errlen, "gate: cannot use %s as a bpffs pin root: %s", g->pin_root, strerror(errno));
		goto fail;
	}
	if (open_lock(g, true)) {
		errf(err, errlen, "gate: cannot open %s for its lock: %s", g->pin_root, strerror(errno));
		goto fail;
	}
	oo.pin_root_path = g->pin_root;
	g->skel = edgegate_bpf__open_opts(&oo);
	if (!g->skel) {
		errf(err, errlen, "gate: %sopening the BPF object: %s", "", strerror(errno));
		goto fail;
	}
	bpf_object__for_each_map(m, g->skel->obj) {
		const char *n = bpf_map__name(m);
		uint32_t want = 0;

		if (!strcmp(n, EG_MAP_DENY4) || !strcmp(n, EG_MAP_DENY6) || !strcmp(n, EG_MAP_DENY6S))
			want = gc->max_deny;
		else if (!strcmp(n, EG_MAP_DENY4_SLOTS)) /* 0: the default's, 1,048,576 */
			want = 1u << eg_slots_log2(gc->max_deny ? gc->max_deny : 1048576, 4);
		else if (!strcmp(n, EG_MAP_DENY6S_SLOTS) || !strcmp(n, EG_MAP_DENY6_SLOTS))
			want = 1u << eg_slots_log2(gc->max_deny ? gc->max_deny : 1048576, 6);
		else if (!strcmp(n, EG_MAP_RATE))
			want = gc->max_sources;
		eg_gate_size_map(g, m, want);
	}
	if (eg_gate_set_slots_rodata(g->skel->obj, err, errlen))
		goto fail;
	rc = edgegate_bpf__load(g->skel);
	if (rc) {
		errf(err, errlen, "gate: loading the XDP program%s failed: %s (a pinned map with "
			"another layout? see docs/gate.md)", "", strerror(-rc));
		goto fail;
	}
	for (int i = 0; i < M__COUNT; i++) {
		m = bpf_object__find_map_by_name(g->skel->obj, map_names[i]);
		g->fd[i] = m ? bpf_map__fd(m) : -1;
		if (g->fd[i] < 0) {
			errf(err, errlen, "gate: map %s missing: %s", map_names[i], strerror(ENOENT));
			goto fail;
		}
	}
	if (map_slots(g)) {
		errf(err, errlen, "gate: %smapping the rule buckets: %s", "", strerror(errno));
		goto fail;
	}
	push_cfg(g, gc);
	if (push_static(g, gc)) {
		errf(err, errlen, "gate: %spushing static deny/allow: %s", "", strerror(errno));
		goto fail;
	}
	if (gate_gc(g, true) < 0) { /* exact counts and index from what the pins hold */
		errf(err, errlen, "gate: %sreading the pinned rule tables: %s", "", strerror(errno));
		goto fail;
	}
	return g;
fail:
	eg_gate_close(g);
	return NULL;
}

/* Through libxdp's dispatcher first (coexistence, issue 14), else the plain
 * netlink attach below. */
static int attach_dispatcher(struct eg_gate *g, const struct eg_gate_config *gc, const char *ifname,
			     const char *mode)
{
	struct eg_gate_if *gi = &g->ifs[g->n_if];
	int ifindex = (int)if_nametoindex(ifname);
	bool native = !mode || !strcmp(mode, "auto") || !strcmp(mode, "native");
	bool generic = !mode || !strcmp(mode, "auto") || !strcmp(mode, "generic");
	char why[384] = "";
	int rc = EG_XDP_FAILED;

	if (!gc->xdp_dispatcher || g->n_if >= EG_GATE_MAX_IF || !ifindex)
		return -1;
	if (native)
		rc = eg_gate_xdp_attach(g, ifindex, true, gc->run_priority, &gi->xp, why, sizeof(why));
	if (rc == 0)
		gi->flags = XDP_FLAGS_DRV_MODE;
	/* a kernel that refuses the dispatcher refuses it in every mode */
	else if (generic && rc != EG_XDP_NO_DISPATCHER &&
		 eg_gate_xdp_attach(g, ifindex, false, gc->run_priority, &gi->xp, why,
				    sizeof(why)) == 0)
		gi->flags = XDP_FLAGS_SKB_MODE;
	else {
		log_warn("gate: libxdp dispatcher unavailable on %s (%s): attaching the plain way, "
			 "alone on the interface", ifname, why);
		return -1;
	}
	snprintf(gi->name, sizeof(gi->name), "%s", ifname);
	gi->ifindex = ifindex;
	gi->dispatcher = true;
	g->n_if++;
	log_info("gate: attached to %s (%s, libxdp dispatcher, run priority %u)", ifname,
		 gi->flags == XDP_FLAGS_DRV_MODE ? "native" : "generic", gc->run_priority);
	return 0;
}

/* Swaps our program attached on ifindex (ofd) for this daemon's, in the mode it
 * is attached in (XDP_FLAGS_REPLACE: the kernel checks it is still ofd). */
static int replace_ours(struct eg_gate *g, int ifindex, int ofd, bool native, bool generic,
			__u32 *flags)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = ofd);
	int prog = bpf_program__fd(g->skel->progs.edgegate_xdp);
	__u32 id = 0;

	if (native && bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id) == 0 && id) {
		*flags = XDP_FLAGS_DRV_MODE;
	} else if (generic && bpf_xdp_query_id(ifindex, XDP_FLAGS_SKB_MODE, &id) == 0 && id) {
		*flags = XDP_FLAGS_SKB_MODE;
	} else {
		return -1;
	}
	return bpf_xdp_attach(ifindex, prog, *flags | XDP_FLAGS_REPLACE, &ao) ? -1 : 0;
}

static int attach_one(struct eg_gate *g, const char *ifname, const char *mode, char *err,
		      size_t errlen)
{
	int prog = bpf_program__fd(g->skel->progs.edgegate_xdp);
	struct eg_gate_if *gi = &g->ifs[g->n_if];
	__u32 cur = 0;
	int ifindex = (int)if_nametoindex(ifname), rc = -1;
	bool native = !mode || !strcmp(mode, "auto") || !strcmp(mode, "native");
	bool generic = !mode || !strcmp(mode, "auto") || !strcmp(mode, "generic");
	__u32 flags = 0;

	if (g->n_if >= EG_GATE_MAX_IF) {
		errf(err, errlen, "gate: too many interfaces (%s): %s", ifname, strerror(E2BIG));
		return -1;
	}
	if (!ifindex) {
		errf(err, errlen, "gate: interface %s: %s", ifname, strerror(errno));
		return -1;
	}
	/* Replace only our own program (left attached by a daemon that died); never
	 * silently take over someone else's XDP program. */
	if (bpf_xdp_query_id(ifindex, 0, &cur) == 0 && cur) {
		int ofd = bpf_prog_get_fd_by_id(cur);
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		bool ours = ofd >= 0 && bpf_obj_get_info_by_fd(ofd, &info, &len) == 0 &&
			    strncmp(info.name, "edgegate_xdp", sizeof(info.name)) == 0;

		if (!ours) {
			if (ofd >= 0)
				close(ofd);
			errf(err, errlen, "gate: %s already has another XDP program attached: %s",
			     ifname, strerror(EBUSY));
			return -1;
		}
		/* ours (a dead daemon's, or libxdp's lone copy): swapped in one step, so
		 * the interface is never without the gate; detach + attach otherwise */
		if (replace_ours(g, ifindex, ofd, native, generic, &flags) == 0) {
			close(ofd);
			goto attached;
		}
		if (ofd >= 0)
			close(ofd);
		bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL);
		bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, NULL);
	}
	if (native) {
		flags = XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST;
		rc = bpf_xdp_attach(ifindex, prog, flags, NULL);
	}
	if (rc && generic) {
		flags = XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST;
		rc = bpf_xdp_attach(ifindex, prog, flags, NULL);
	}
	if (rc) {
		errf(err, errlen, "gate: attaching XDP to %s: %s", ifname, strerror(-rc));
		return -1;
	}
attached:
	snprintf(gi->name, sizeof(gi->name), "%s", ifname);
	gi->ifindex = ifindex;
	gi->flags = flags & (XDP_FLAGS_DRV_MODE | XDP_FLAGS_SKB_MODE);
	g->n_if++;
	log_info("gate: attached to %s (%s)", ifname,
		 gi->flags == XDP_FLAGS_DRV_MODE ? "native" : "generic");
	return 0;
}

struct eg_gate *eg_gate_open(const struct eg_config *cfg, char *err, size_t errlen)
{
	const struct eg_gate_config *gc = &cfg->gate;
	struct eg_gate *g = eg_gate_load(gc, err, errlen);

	if (!g)
		return NULL;
	for (size_t i = 0; i < gc->interfaces.n; i++) {
		if (attach_dispatcher(g, gc, gc->interfaces.v[i], gc->xdp_mode) == 0)
			continue;
		if (attach_one(g, gc->interfaces.v[i], gc->xdp_mode, err, errlen)) {
			eg_gate_close(g);
			return NULL;
		}
	}
	return g;
}

struct eg_gate *eg_gate_open_pinned(const char *pin_root, char *err, size_t errlen)
{
	struct eg_gate *g = gate_new(pin_root);
	char path[PATH_MAX + 64];

	if (!g)
		return NULL;
	g->own_fd = true;
	if (open_lock(g, false)) {
		errf(err, errlen, "gate: %s: %s (is the gate loaded?)", g->pin_root, strerror(errno));
		eg_gate_close(g);
		return NULL;
	}
	for (int i = 0; i < M__COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", g->pin_root, map_names[i]);
		g->fd[i] = bpf_obj_get(path);
		if (g->fd[i] < 0) {
			errf(err, errlen, "gate: %s: %s (is the gate loaded?)", path, strerror(errno));
			eg_gate_close(g);
			return NULL;
		}
	}
	if (map_slots(g)) {
		errf(err, errlen, "gate: %s: mapping the rule buckets: %s", g->pin_root, strerror(errno));
		eg_gate_close(g);
		return NULL;
	}
	return g;
}

void eg_gate_close(struct eg_gate *g)
{
	if (!g)
		return;
	if (g->skel) {
		struct bpf_xdp_attach_opts ao = { .sz = sizeof(ao) };

		bool helped = eg_gate_detacher_finish(g); /* dispatcher: the root helper did it */

		ao.old_prog_fd = bpf_program__fd(g->skel->progs.edgegate_xdp);
		for (int i = 0; i < g->n_if; i++) {
			if (g->ifs[i].xp && helped)
				eg_gate_xdp_forget(g->ifs[i].xp);
			else if (g->ifs[i].xp)
				eg_gate_xdp_detach(g->ifs[i].xp, g->ifs[i].ifindex,
						   g->ifs[i].flags == XDP_FLAGS_DRV_MODE);
			if (g->ifs[i].xp)
				continue;
			/* REPLACE with the expected old fd: detaches only if it is still ours */
			if (bpf_xdp_detach(g->ifs[i].ifindex, g->ifs[i].flags | XDP_FLAGS_REPLACE,
					   &ao))
				log_warn("gate: detaching from %s failed", g->ifs[i].name);
		}
		edgegate_bpf__destroy(g->skel);
	}
	eg_gate_shared_free(g);
	if (g->slots4)
		munmap(g->slots4, ((size_t)1 << g->slots4_log2) * sizeof(struct eg_slots4));
	if (g->slots6)
		munmap(g->slots6, ((size_t)1 << g->slots6_log2) * sizeof(struct eg_slots6));
	if (g->slots6l)
		munmap(g->slots6l, ((size_t)1 << g->slots6l_log2) * sizeof(struct eg_slots6l));
	if (g->aslots4)
		munmap(g->aslots4, (size_t)EG_ALLOW4_SLOTS * sizeof(struct eg_slots4));
	if (g->aslots6)
		munmap(g->aslots6, (size_t)EG_ALLOW6_SLOTS * sizeof(struct eg_slots6));
	if (g->aslots6l)
		munmap(g->aslots6l, (size_t)EG_ALLOW6_SLOTS * sizeof(struct eg_slots6l));
	if (g->lockfd >= 0)
		close(g->lockfd);
	if (g->own_fd)
		for (int i = 0; i < M__COUNT; i++)
			if (g->fd[i] >= 0)
				close(g->fd[i]);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

int eg_gate_prog_fd(struct eg_gate *g)
{
	return g->skel ? bpf_program__fd(g->skel->progs.edgegate_xdp) : -1;
}

int eg_gate_map_fd(struct eg_gate *g, const char *name)
{
	for (int i = 0; i < M__COUNT; i++)
		if (!strcmp(name, map_names[i]))
			return g->fd[i];
	return -1;
}

/* --- store re-push ----------------------------------------------------------------------- */

struct repush_ctx {
	struct eg_gate *g;
	long n;
};

static int repush_one(const char *key, const void *val, size_t len, int64_t expires_unix,
		      void *arg)
{
	struct repush_ctx *rc = arg;
	struct eg_prefix p;
	struct eg_rule r = { .reason = EG_RULE_MANUAL };
	const char *sp = strchr(key, ' ');
	bool allow;
	json_t *j;
	char note[EG_NOTE_MAX] = "";

	if (!sp)
		return 0;
	allow = !strncmp(key, "allow ", 6);
	if (!allow && strncmp(key, "deny ", 5))
		return 0;
	if (eg_gate_prefix_parse(sp + 1, &p))
		return 0;
	if (p.plen <= 128) {
		char ckey[96];
		eg_gate_store_key(allow, p.addr, p.plen, ckey, sizeof(ckey));
		eg_gate_shared_mark(rc->g, ckey, true); /* under the lock eg_gate_use_store holds */
	}
	j = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL);
	if (j) {
		json_int_t reason = json_integer_value(json_object_get(j, "reason"));

		const char *n = json_string_value(json_object_get(j, "note"));

		if (reason > 0 && reason < EG_RULE__COUNT)
			r.reason = (uint32_t)reason;
		if (n && eg_gate_note_valid(n))
			snprintf(note, sizeof(note), "%s", n);
		json_decref(j);
	}
	if (expires_unix) {
		int64_t left = expires_unix - (int64_t)time(NULL);

		if (left <= 0)
			return 0;
		r.expires_ns = eg_gate_now_ns(rc->g) + (uint64_t)left * 1000000000ull;
	}
	/* NOEXIST: an entry the pinned map still holds is left as it is */
	if (eg_rules_put(rc->g, allow, p.addr, p.plen, &r, BPF_NOEXIST, note) == 0)
		rc->n++;
	return 0;
}

long eg_gate_use_store(struct eg_gate *g, struct eg_store *s)
{
	struct repush_ctx rc = { .g = g };

	g->store = s;
	if (!s)
		return 0;
	eg_gate_wlock(g);
	if (eg_store_foreach(s, EG_NS_DENY, repush_one, &rc)) {
		eg_gate_wunlock(g);
		return -1;
	}
	eg_gate_wunlock(g);
	if (rc.n)
		log_info("gate: re-pushed %ld stored deny/allow entries", rc.n);
	return rc.n;
}

/* --- status ---------------------------------------------------------------------------------- */

json_t *eg_gate_status_json(struct eg_gate *g)
{
	json_t *o = json_object(), *ifs = json_array(), *ports = json_array();
	struct eg_cfg c = {};

	for (int i = 0; i < g->n_if; i++)
		json_array_append_new(ifs, json_pack("{s:s, s:s, s:b}", "name", g->ifs[i].name, "mode",
						     g->ifs[i].flags == XDP_FLAGS_DRV_MODE
							     ? "native"
							     : "generic",
						     "dispatcher", g->ifs[i].dispatcher));
	for (__u32 w = 0; w < EG_PORTS_WORDS; w++) {
		__u64 bits = 0;

		if (bpf_map_lookup_elem(g->fd[M_PORTS], &w, &bits) || !bits)
			continue;
		for (int b = 0; b < 64; b++)
			if (bits & (1ull << b))
				json_array_append_new(ports, json_integer(w * 64 + b));
	}
	cfg_read(g, &c);
	json_object_set_new(o, "pin_root", json_string(g->pin_root));
	json_object_set_new(o, "loaded", json_boolean(g->skel != NULL || g->remote));
	json_object_set_new(o, "enabled", json_boolean(c.flags & EG_CFG_ENABLED));
	json_object_set_new(o, "observe", json_boolean(c.flags & EG_CFG_OBSERVE));
	json_object_set_new(o, "ban_scope",
			    json_string(c.flags & EG_CFG_BAN_ALL ? "all" : "protected"));
	json_object_set_new(o, "interfaces", ifs);
	json_object_set_new(o, "protected_ports", ports);
	json_object_set_new(o, "syn_rate", json_integer(c.syn_rate));
	json_object_set_new(o, "syn_burst", json_integer(c.syn_burst));
	json_object_set_new(o, "pkt_rate", json_integer(c.pkt_rate));
	json_object_set_new(o, "pkt_burst", json_integer(c.pkt_burst));
	json_object_set_new(o, "deny_entries", json_integer(eg_gate_deny_list(g, NULL, NULL)));
	json_object_set_new(o, "allow_entries", json_integer(eg_gate_allow_list(g, NULL, NULL)));
	return o;
}

/* --- prefix text (also used by gate_admin.c and edgegatectl) -------------------------------- */

int eg_gate_prefix_parse(const char *s, struct eg_prefix *out)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	long plen = -1;
	uint8_t a4[4];

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -1;
	slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		errno = 0;
		plen = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || slash[1] == '-' || slash[1] == '+')
			return -1;
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, a4) == 1) {
		if (plen > 32)
			return -1;
		out->addr[10] = out->addr[11] = 0xff;
		memcpy(out->addr + 12, a4, 4);
		out->plen = (uint8_t)(plen < 0 ? 128 : plen + 96);
		out->v4 = true;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		if (plen > 128)
			return -1;
		out->plen = (uint8_t)(plen < 0 ? 128 : plen);
	} else {
		return -1;
	}
	eg_gate_mask_addr(out->addr, out->plen);
	return 0;
}

void eg_gate_prefix_format(const struct eg_prefix *p, char *buf, size_t len)
{
	eg_gate_prefix_text(p->addr, p->plen, buf, len);
}

/* --- privilege separation (priv.c, priv_client.c, docs/privsep.md) ---------------------------- */

int eg_gate_ro_fds(struct eg_gate *g, int *fds, int max)
{
	if (max < M__COUNT) {
		errno = ENOSPC;
		return -1;
	}
	for (int i = 0; i < M__COUNT; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		LIBBPF_OPTS(bpf_get_fd_by_id_opts, o, .open_flags = BPF_F_RDONLY);

		fds[i] = -1;
		if (bpf_obj_get_info_by_fd(g->fd[i], &info, &len) == 0)
			fds[i] = bpf_map_get_fd_by_id_opts(info.id, &o);
		if (fds[i] < 0) {
			int e = errno;
			while (i-- > 0)
				close(fds[i]);
			errno = e;
			return -1;
		}
	}
	return M__COUNT;
}

int eg_gate_attachments(struct eg_gate *g, char (*names)[16], uint32_t *flags, int max)
{
	int n = 0;

	for (int i = 0; i < g->n_if && n < max; i++, n++) {
		snprintf(names[n], 16, "%s", g->ifs[i].name);
		flags[n] = g->ifs[i].flags | (g->ifs[i].dispatcher ? EG_GATE_IF_DISPATCHER : 0);
	}
	return n;
}

struct eg_gate *eg_gate_remote(const char *pin_root, const int *fds, int n, const char (*names)[16],
			       const uint32_t *flags, int n_if, char *err, size_t errlen)
{
	struct eg_gate *g;

	if (n != M__COUNT) {
		errf(err, errlen, "gate: %d map fds from the privileged process, expected %d", n, M__COUNT);
		return NULL;
	}
	g = gate_new(pin_root);
	if (!g)
		return NULL;
	g->remote = true;
	g->own_fd = true;
	for (int i = 0; i < M__COUNT; i++)
		g->fd[i] = fds[i];
	for (int i = 0; i < n_if && i < EG_GATE_MAX_IF; i++, g->n_if++) {
		snprintf(g->ifs[i].name, sizeof(g->ifs[i].name), "%s", names[i]);
		g->ifs[i].ifindex = (int)if_nametoindex(names[i]);
		g->ifs[i].flags = flags[i] & ~EG_GATE_IF_DISPATCHER;
		g->ifs[i].dispatcher = (flags[i] & EG_GATE_IF_DISPATCHER) != 0;
	}
	return g;
}

int eg_gate_rule_apply(struct eg_gate *g, bool allow, const uint8_t addr[16], unsigned plen,
		       const struct eg_rule *r, uint64_t flags, const char *note)
{
	int rc;

	eg_gate_wlock(g);
	rc = eg_rules_put(g, allow, addr, plen, r, flags, note);
	eg_gate_wunlock(g);
	return rc ? -1 : 0;
}

int eg_gate_rule_remove(struct eg_gate *g, bool allow, const uint8_t addr[16], unsigned plen)
{
	int rc;

	eg_gate_wlock(g);
	rc = eg_rules_del(g, allow, addr, plen);
	eg_gate_wunlock(g);
	return rc ? -1 : 0;
}

int eg_gate_flow_apply(struct eg_gate *g, const struct eg_flow_key *k, const struct eg_flow_val *v)
{
	int rc;

	eg_gate_wlock(g);
	rc = eg_flows_put(g, k, v);
	eg_gate_wunlock(g);
	return rc ? -1 : 0;
}

int eg_gate_session_apply(struct eg_gate *g, const struct eg_sess_key *k, const struct eg_sess_val *v)
{
	return bpf_map_update_elem(g->fd[M_SESSIONS], k, v, BPF_ANY) ? -1 : 0;
}
