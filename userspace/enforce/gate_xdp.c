/* gate_xdp.c - attaching the gate through libxdp's multi-program dispatcher, so it
 * runs beside other XDP programs (xdp-filter, a load balancer) on one interface,
 * first by default (gate.run_priority; lower runs first). The dispatcher and its
 * links are pinned by libxdp under /sys/fs/bpf/xdp, so the gate keeps enforcing
 * when the daemon dies, as the plain attach does. The program is loaded a second
 * time from the embedded object, as an extension of the dispatcher; its maps are
 * the pinned ones the daemon already uses. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "gate_priv.h"
#include "log.h"
#include "edgegate.skel.h"

static void xdp_err(long rc, char *buf, size_t len)
{
	if (libxdp_strerror((int)rc, buf, len))
		snprintf(buf, len, "%s", strerror(rc < 0 ? (int)-rc : (int)rc));
}

/* An edgegate_xdp left in the dispatcher by a daemon that died: replaced, never
 * another program. */
static void drop_stale(int ifindex)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	struct xdp_program *p;

	if (!mp || libxdp_get_error(mp))
		return;
	if (!xdp_multiprog__is_legacy(mp))
		for (p = xdp_multiprog__next_prog(NULL, mp); p; p = xdp_multiprog__next_prog(p, mp))
			if (!strcmp(xdp_program__name(p), "edgegate_xdp") &&
			    xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp), 0) == 0)
				log_info("gate: replaced a stale edgegate_xdp in the dispatcher");
	xdp_multiprog__close(mp);
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

int eg_gate_xdp_attach(struct eg_gate *g, int ifindex, bool native, unsigned prio, void **out,
		       char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = g->pin_root);
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
		return -1;
	}
	bpf_object__for_each_map(m, obj)
		eg_gate_size_map(g, m, 0); /* the pinned sizes, or libbpf refuses to reuse */
	xp = xdp_program__from_bpf_obj(obj, "xdp");
	rc = libxdp_get_error(xp);
	if (rc) {
		xdp_err(rc, why, whylen);
		bpf_object__close(obj);
		return -1;
	}
	xdp_program__set_run_prio(xp, prio);
	drop_stale(ifindex);
	rc = xdp_program__attach(xp, ifindex, native ? XDP_MODE_NATIVE : XDP_MODE_SKB, 0);
	if (rc) {
		xdp_err(rc, why, whylen);
		xdp_program__close(xp);
		return -1;
	}
	/* libxdp falls back on its own to a lone program when the kernel refuses the
	 * dispatcher (freplace); that is not coexistence: undo, let the caller say so */
	if (!in_dispatcher(ifindex)) {
		snprintf(why, whylen, "the kernel refused the dispatcher's freplace links, libxdp "
			 "attached the program alone");
		xdp_program__detach(xp, ifindex, native ? XDP_MODE_NATIVE : XDP_MODE_SKB, 0);
		xdp_program__close(xp);
		return -1;
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
