// SPDX-License-Identifier: GPL-2.0
/* xdpdrop.bpf.c - the floor of tools/bench/xdp/flood.sh: drops every frame, looks
 * at nothing. What the receiving veth costs per dropped xdp_frame with any XDP
 * program at all (ring, frame conversion, program call, page return); a filter's
 * own cost is what it adds above this, measured in the same run. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int xdp_drop_all(struct xdp_md *ctx)
{
	return XDP_DROP;
}
