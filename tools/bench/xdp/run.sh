#!/usr/bin/env bash
# tools/bench/xdp/run.sh - XDP edge gate benchmarks (needs root; ~40 s).
#   1. ns/packet per verdict path via BPF_PROG_TEST_RUN repeat, beside an empty XDP
#      program in the same run (xdpbench paths).
#   2. veth flood: frames/s dropped by the gate (native XDP on the receiving veth)
#      versus an nftables netdev-ingress drop rule for the same 256 sources, same run.
# Usage: tools/bench/xdp/run.sh [SECONDS_PER_FLOOD (default 5)] [REPEAT (default 1000000)]
set -euo pipefail
cd "$(dirname "$0")/../../.."
SECS=${1:-5}
REPEAT=${2:-1000000}
B=build/xdpbench
[ "$(id -u)" = 0 ] || { echo "xdp bench needs root" >&2; exit 1; }
make -s build/libedgegate.a
CPPFLAGS=$(make -s --no-print-directory print-cppflags) # the library's include path (userspace/<concern>/)
gcc -O2 -g $CPPFLAGS -o $B tools/bench/xdp/xdpbench.c \
	build/libedgegate.a -lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lbpf -lelf -lz -llmdb \
	-lhiredis -lcap -lpthread -lm -licuuc

echo "== BPF_PROG_TEST_RUN, repeat $REPEAT, median of 5 (kernel $(uname -r), $(nproc) CPUs)"
$B paths "$REPEAT"

S=egfl-s-$$ C=egfl-c-$$ PIN=/sys/fs/bpf/edgegate-flood-$$
cleanup() {
	[ -n "${GATE_PID:-}" ] && kill "$GATE_PID" 2>/dev/null || true
	ip netns del "$S" 2>/dev/null || true
	ip netns del "$C" 2>/dev/null || true
	rm -rf "$PIN"
}
trap cleanup EXIT
ip netns add "$S"
ip netns add "$C"
ip link add vfs netns "$S" type veth peer name vfc netns "$C"
ip -n "$S" addr add 198.18.200.1/24 dev vfs
ip -n "$C" addr add 198.18.200.2/24 dev vfc
ip -n "$S" link set vfs up
ip -n "$C" link set vfc up
ip -n "$S" link set lo up
# veth native XDP needs GRO/NAPI on the receiving side in older kernels; harmless here
ip netns exec "$S" ethtool -K vfs gro on >/dev/null 2>&1 || true

# CPU jiffies (all CPUs): busy (everything but idle/iowait) and softirq. On veth the sender
# saturates first, so frames/s shows parity; the CPU spent per frame shows the cost of
# each drop path (XDP drops before an skb reaches the stack; nft's ingress hook is later).
cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $8}' /proc/stat; }

echo "== veth flood, 60-byte UDP frames from 256 sources in 198.19.0.0/24, ${SECS}s per run"
# XDP: the gate denies 198.19.0.0/24
coproc GATE { exec $B attach "$S" vfs "$PIN" 198.19.0.0/24; }
GATE_PID=$GATE_PID
read -r ready <&"${GATE[0]}"
[ "$ready" = ready ] || { echo "gate did not attach" >&2; exit 1; }
ip -n "$S" link show vfs | grep -o 'xdp[a-z]*' | head -1 | sed 's/^/# attach mode: /'
before=$($B stats "$PIN" | awk '{print $2}')
read -r xb0 xs0 < <(cpu)
read -r _ xsent xrate < <(ip netns exec "$C" $B blast vfc 198.19.0.0 256 "$SECS")
read -r xb1 xs1 < <(cpu)
after=$($B stats "$PIN" | awk '{print $2}')
xdrop=$((after - before))
exec {GATE[1]}>&-
wait "$GATE_PID" 2>/dev/null || true
GATE_PID=

# nftables: same sources, netdev ingress hook (the earliest nft hook)
ip netns exec "$S" nft -f - <<NFT
table netdev egbench {
	chain in {
		type filter hook ingress device vfs priority -500; policy accept;
		ip saddr 198.19.0.0/24 counter drop
	}
}
NFT
read -r nb0 ns0 < <(cpu)
read -r _ nsent nrate < <(ip netns exec "$C" $B blast vfc 198.19.0.0 256 "$SECS")
read -r nb1 ns1 < <(cpu)
ndrop=$(ip netns exec "$S" nft list chain netdev egbench in | grep -o 'packets [0-9]*' | awk '{print $2}')

hz=$(getconf CLK_TCK)
awk -v s="$SECS" -v xs="$xsent" -v xd="$xdrop" -v ns="$nsent" -v nd="$ndrop" -v hz="$hz" \
	-v xb=$((xb1 - xb0)) -v xq=$((xs1 - xs0)) -v nb=$((nb1 - nb0)) -v nq=$((ns1 - ns0)) 'BEGIN {
	printf "%-28s %12s %12s %14s %16s %16s\n", "drop path", "sent", "dropped", "dropped/s", "CPU ns/frame", "softirq ns/frame"
	printf "%-28s %12d %12d %14.0f %16.0f %16.0f\n", "XDP gate (deny /24)", xs, xd, xd / s, xb * 1e9 / hz / xs, xq * 1e9 / hz / xs
	printf "%-28s %12d %12d %14.0f %16.0f %16.0f\n", "nftables netdev ingress", ns, nd, nd / s, nb * 1e9 / hz / ns, nq * 1e9 / hz / ns
	printf "XDP/nft CPU per frame: %.2f (sender included: both runs saturate the sender)\n", (xb / xs) / (nb / ns)
}'
