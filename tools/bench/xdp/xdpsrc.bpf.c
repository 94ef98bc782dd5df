// SPDX-License-Identifier: GPL-2.0
/* xdpsrc.bpf.c - two reference filters for tools/bench/xdp/flood.sh, between the
 * floor (xdpdrop.bpf.o, which reads nothing) and a real filter:
 *   xdp_src_drop  reads the Ethernet and IPv4 headers and drops when the source is
 *                 in 198.19.0.0/24 (no map): what touching the frame costs;
 *   xdp_src_hash  the same, with one lookup of the source in a 256-entry hash (the
 *                 flood's deny list): the least a map-based filter does.
 * flood.sh builds it twice, without and with -DEG_SRC_HASH (xdpsrc.bpf.o,
 * xdphash.bpf.o: one program in section "xdp" each, for ip link). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} src_deny SEC(".maps");

static __always_inline struct iphdr *ip4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	return ip;
}

#ifndef EG_SRC_HASH
SEC("xdp")
int xdp_src_drop(struct xdp_md *ctx)
{
	struct iphdr *ip = ip4(ctx);

	if (!ip)
		return XDP_PASS;
	return (ip->saddr & bpf_htonl(0xffffff00)) == bpf_htonl(0xc6130000) ? XDP_DROP : XDP_PASS;
}
#else
SEC("xdp")
int xdp_src_hash(struct xdp_md *ctx)
{
	struct iphdr *ip = ip4(ctx);
	__u32 src;

	if (!ip)
		return XDP_PASS;
	src = ip->saddr;
	return bpf_map_lookup_elem(&src_deny, &src) ? XDP_DROP : XDP_PASS;
}
#endif
