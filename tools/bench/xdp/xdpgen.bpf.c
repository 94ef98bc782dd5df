// SPDX-License-Identifier: GPL-2.0
/* xdpgen.bpf.c - the flood generator of tools/bench/xdp/run.sh: run with
 * BPF_PROG_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES), it gives each
 * frame a random last source byte (256 sources in the template's /24; fewer with
 * gen_cfg.src_mask) and
 * redirects it out of `ifindex`: on a veth, the peer's XDP program receives real
 * xdp_frames, no skb (what xdp-trafficgen does; Debian's 1.3.1 no longer loads on
 * kernels without the xdp_redirect_map_err tracepoint). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

/* set before load by xdpbench gen: the veth to redirect into, and which bits of the
 * source's last byte vary (0xff: 256 sources; EG_GEN_SRCMASK, 0: one source) */
volatile const struct {
	__u32 ifindex;
	__u32 src_mask;
} gen_cfg = { 0, 0xff };

SEC("xdp")
int xdpgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if ((void *)(ip + 1) > end)
		return XDP_ABORTED;
	ip->saddr = (ip->saddr & bpf_htonl(0xffffff00)) |
		    bpf_htonl(bpf_get_prandom_u32() & gen_cfg.src_mask & 0xff);
	return bpf_redirect(gen_cfg.ifindex, 0);
}
