/* gate_xdp.c - attaching the gate through libxdp's multi-program dispatcher, so it
 * runs beside other XDP programs (xdp-filter, a load balancer) on one interface,
 * first by default (gate.run_priority; lower runs first). The dispatcher and its
 * links are pinned by libxdp under /sys/fs/bpf/xdp, so the gate keeps enforcing
 * when the daemon dies, as the plain attach does. The program is loaded a second
 * time from the embedded object, as an extension of the dispatcher; its maps are
 * the pinned ones the daemon already uses.
 *
 * The dispatcher needs the kernel to load freplace (BPF_PROG_TYPE_EXT) programs.
 * Where it refuses them, libxdp's compatibility check fails and libxdp attaches
 * the program alone, saying so only on its own log; we catch that message, so the
 * daemon's log line names the kernel's answer (docs/gate.md). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "gate_priv.h"
#include "log.h"
#include "edgegate.skel.h"

/* What libxdp (and libbpf under it) said during one attach: kept for the one log
 * line of the fallback instead of a dozen lines on stderr (libbpf's "permission
 * error ... try raising 'ulimit -l'?" is misleading here). Both libraries report
 * through one process-wide callback; attaches happen at start, in the privileged
 * process, one at a time. */
static struct {
	libxdp_print_fn_t prev;
	libbpf_print_fn_t prev_bpf;
	char compat[256]; /* "Compatibility check for dispatcher program failed: ..." */
	char load[256];   /* "Failed to load program xdp_pass: ..." (the kernel's errno) */
	char warn[256];   /* libxdp's last warning */
	bool fell_back;   /* "Falling back to loading single prog without dispatcher" */
} said;

static int xdp_said(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	char buf[256], *msg = buf;
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (!strncmp(msg, "libxdp: ", 8)) /* libxdp prefixes its own messages */
		msg += 8;
	if (!strncmp(msg, "Compatibility check", 19))
		snprintf(said.compat, sizeof(said.compat), "%s", msg);
	else if (!strncmp(msg, "Failed to load program", 22) && !said.load[0])
		snprintf(said.load, sizeof(said.load), "%s", msg);
	else if (!strncmp(msg, "Falling back", 12))
		said.fell_back = true;
	else if (level == LIBXDP_WARN)
		snprintf(said.warn, sizeof(said.warn), "%s", msg);
	return 0;
}

static int bpf_said(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	if (level != LIBBPF_WARN || said.warn[0])
		return 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	snprintf(said.warn, sizeof(said.warn), "%s", msg);
	return 0;
}

static void xdp_err(long rc, char *buf, size_t len)
{
	if (libxdp_strerror((int)rc, buf, len))
		snprintf(buf, len, "%s", strerror(rc < 0 ? (int)-rc : (int)rc));
}

int eg_gate_xdp_detach_named(int ifindex)
{
	struct xdp_multiprog *mp;
	struct xdp_program *p;
	char e[128];
	long rc = 0;
	int n = 0;

	/* libbpf warns about the dispatcher object's sections on every load: not the log's */
	memset(&said, 0, sizeof(said));
	said.prev = libxdp_set_print(xdp_said);
	said.prev_bpf = libbpf_set_print(bpf_said);
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (mp && !libxdp_get_error(mp)) {
		if (!xdp_multiprog__is_legacy(mp))
			for (p = xdp_multiprog__next_prog(NULL, mp); p; p = xdp_multiprog__next_prog(p, mp))
				if (!strcmp(xdp_program__name(p), "edgegate_xdp")) {
					/* the detach rebuilt the dispatcher: mp describes the old one */
					rc = xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp), 0);
					n = rc ? -1 : 1;
					break;
				}
		xdp_multiprog__close(mp);
	}
	libbpf_set_print(said.prev_bpf);
	libxdp_set_print(said.prev);
	if (rc) {
		xdp_err(rc, e, sizeof(e));
		log_warn("gate: libxdp: detaching edgegate_xdp from the dispatcher on ifindex %d: %s", ifindex, e);
	}
	return n;
}

/* An edgegate_xdp left in the dispatcher by a daemon that died: replaced, never
 * another program. */
static void drop_stale(int ifindex)
{
	if (eg_gate_xdp_detach_named(ifindex) > 0)
		log_info("gate: replaced a stale edgegate_xdp in the dispatcher");
}

static bool in_dispatcher(int ifindex)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	bool ok;

	if (!mp || libxdp_get_error(mp))
		return false;
	ok = !xdp_multiprog__is_legacy(mp);
	xdp_multiprog__close(mp);
	return ok;
}

/* The reason for the log line: the kernel's refusal when libxdp's compatibility
 * check failed, else libxdp's own error. */
static void refusal(long rc, char *why, size_t whylen)
{
	char e[128];

	if (said.compat[0] || said.fell_back) {
		snprintf(why, whylen, "the kernel refuses the freplace (BPF_PROG_TYPE_EXT) program "
			 "the dispatcher is built on: %s%s%s", said.load[0] ? said.load : "",
			 said.load[0] && said.compat[0] ? "; " : "", said.compat);
		return;
	}
	xdp_err(rc, e, sizeof(e));
	snprintf(why, whylen, "libxdp: %s%s%s", said.warn[0] ? said.warn : "",
		 said.warn[0] ? ": " : "", e);
}

int eg_gate_xdp_attach(struct eg_gate *g, int ifindex, bool native, unsigned prio, void **out,
		       char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = g->pin_root);
	enum xdp_attach_mode mode = native ? XDP_MODE_NATIVE : XDP_MODE_SKB;
	struct xdp_program *xp;
	struct bpf_object *obj;
	struct bpf_map *m;
	const void *elf;
	size_t sz;
	long rc;

	elf = edgegate_bpf__elf_bytes(&sz);
	obj = bpf_object__open_mem(elf, sz, &oo);
	if (!obj) {
		snprintf(why, whylen, "opening the object: %s", strerror(errno));
		return EG_XDP_FAILED;
	}
	bpf_object__for_each_map(m, obj)
		eg_gate_size_map(g, m, 0); /* the pinned sizes, or libbpf refuses to reuse */
	if (eg_gate_set_slots_rodata(obj, why, whylen)) { /* the buckets' sizes, as pinned */
		bpf_object__close(obj);
		return EG_XDP_FAILED;
	}
	xp = xdp_program__from_bpf_obj(obj, "xdp");
	rc = libxdp_get_error(xp);
	if (rc) {
		xdp_err(rc, why, whylen);
		bpf_object__close(obj);
		return EG_XDP_FAILED;
	}
	xdp_program__set_run_prio(xp, prio);
	drop_stale(ifindex);
	memset(&said, 0, sizeof(said));
	said.prev = libxdp_set_print(xdp_said);
	said.prev_bpf = libbpf_set_print(bpf_said);
	rc = xdp_program__attach(xp, ifindex, mode, 0);
	libbpf_set_print(said.prev_bpf);
	libxdp_set_print(said.prev);
	if (rc) {
		refusal(rc, why, whylen);
		xdp_program__close(xp);
		return EG_XDP_FAILED;
	}
	/* libxdp falls back on its own to a lone program when the kernel refuses the
	 * dispatcher; that is not coexistence. The lone copy stays attached (same
	 * pinned maps, same verdicts) until the plain attach swaps it atomically for
	 * the daemon's program, so the interface is never left without the gate. */
	if (!in_dispatcher(ifindex)) {
		if (!said.compat[0] && !said.fell_back)
			snprintf(said.compat, sizeof(said.compat),
				 "libxdp attached the program without a dispatcher");
		refusal(0, why, whylen);
		xdp_program__close(xp);
		return EG_XDP_NO_DISPATCHER;
	}
	*out = xp;
	return 0;
}

void eg_gate_xdp_detach(void *xp, int ifindex, bool native)
{
	if (!xp)
		return;
	if (xdp_program__detach(xp, ifindex, native ? XDP_MODE_NATIVE : XDP_MODE_SKB, 0))
		log_warn("gate: detaching from the dispatcher failed");
	xdp_program__close(xp);
}

void eg_gate_xdp_forget(void *xp)
{
	xdp_program__close(xp);
}
