#!/usr/bin/env bash
# tools/bench/xdp/run.sh - XDP edge gate benchmarks (needs root; ~90 s).
#   1. ns/packet per verdict path via BPF_PROG_TEST_RUN repeat, beside an empty XDP
#      program in the same run (xdpbench paths).
#   2. veth flood of live xdp_frames (xdpgen.bpf.o through BPF_PROG_RUN live frames,
#      redirected into a veth, so the receiver's XDP sees real xdp_frames, no skb):
#      the gate, an nftables netdev-ingress set, and xdp-filter, same 256 exact entries,
#      same run; drops, CPU per frame and the ratios.
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
	build/libedgegate.a -lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb \
	-lhiredis -lcap -lpthread -lm -licuuc

echo "== BPF_PROG_TEST_RUN, repeat $REPEAT, best of 15 (kernel $(uname -r), $(nproc) CPUs)"
$B paths "$REPEAT"

S=egfl-s-$$ C=egfl-c-$$ PIN=/sys/fs/bpf/edgegate-flood-$$
cleanup() {
	[ -n "${GATE_PID:-}" ] && kill "$GATE_PID" 2>/dev/null || true
	[ -n "${XF_PID:-}" ] && kill "$XF_PID" 2>/dev/null || true
	[ -n "${LSRV:-}" ] && kill "$LSRV" 2>/dev/null || true
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
# NAPI on the receiving veth: without an XDP program it turns the xdp_frames into skbs
ip netns exec "$S" ethtool -K vfs gro on >/dev/null 2>&1 || true
MAC=$(ip -n "$S" -j link show vfs | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
clang -target bpf -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu \
	-c tools/bench/xdp/xdpgen.bpf.c -o build/xdpgen.bpf.o

# CPU jiffies over all CPUs: busy (everything but idle/iowait) and softirq. The generator
# runs BPF_PROG_RUN in process context (sys); the receiving veth's NAPI poll, where the
# gate, xdp-filter or the skb path + nftables run, is softirq.
cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $8}' /proc/stat; }
xdp_drops() { ip netns exec "$S" ethtool -S vfs | awk '/rx_queue_[0-9]+_xdp_drops/ {s += $2} END {print s + 0}'; }
# Legitimate TCP beside the flood: a listener on the receiving side, a client doing
# sequential connects from a clean source for the flood's duration.
LPORT=$((20000 + $$ % 20000))
ip netns exec "$S" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.200.1", int(sys.argv[1]))); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()' "$LPORT" &
LSRV=$!
legit() { # prints connects that succeeded and failed in $SECS seconds
	ip netns exec "$C" python3 -c '
import socket, sys, time
end, ok, bad = time.time() + float(sys.argv[2]), 0, 0
while time.time() < end:
    s = socket.socket(); s.settimeout(0.2)
    try: s.connect(("198.18.200.1", int(sys.argv[1]))); ok += 1
    except OSError: bad += 1
    s.close()
print(ok, bad)' "$LPORT" "$SECS"
}
# flood NAME SRCNET COUNT_CMD [mixed]: one run (with legitimate TCP alongside when
# "mixed"); one result line
flood() {
	local name=$1 net=$2 c0 c1 b0 q0 b1 q1 sent rate lok=- lbad=- lpid=
	c0=$($3)
	read -r b0 q0 < <(cpu)
	if [ "${4:-}" = mixed ]; then
		legit >"/tmp/egbench-legit.$$" &
		lpid=$!
	fi
	read -r _ sent rate < <(ip netns exec "$C" build/xdpbench gen build/xdpgen.bpf.o vfc "$MAC" "$net" "$SECS")
	[ -n "$lpid" ] && wait "$lpid"
	read -r b1 q1 < <(cpu)
	c1=$($3)
	if [ -n "$lpid" ]; then
		read -r lok lbad <"/tmp/egbench-legit.$$"
		rm -f "/tmp/egbench-legit.$$"
	fi
	echo "$name|$sent|$((c1 - c0))|$((b1 - b0))|$((q1 - q0))|$lok|$lbad"
}
R=()
echo "== veth flood: live xdp_frames (BPF_PROG_RUN live frames, redirected into the veth), 60-byte UDP"
echo "   from 256 sources in 198.19.0.0/24, the same 256 exact entries everywhere, ${SECS}s per run"

# 1. the gate: the 256 addresses as /32 deny entries
coproc GATE { exec build/xdpbench attach "$S" vfs "$PIN" =198.19.0.0/24; }
GATE_PID=$GATE_PID
read -r ready <&"${GATE[0]}"
[ "$ready" = ready ] || { echo "gate did not attach" >&2; exit 1; }
ip -n "$S" link show vfs | grep -o 'xdp[a-z]*' | head -1 | sed 's/^/# gate attach mode: /'
gate_deny() { build/xdpbench stats "$PIN" | awk '{print $2}'; }
R+=("$(flood "XDP gate (256 x /32 deny)" 198.19.0.0 gate_deny)")
gate_pass() { ip -n "$S" -s -j link show vfs | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }
R+=("$(flood "XDP gate, pass path (clean sources)" 198.18.201.0 gate_pass)")
R+=("$(flood "mixed: XDP gate + legit TCP" 198.19.0.0 gate_deny mixed)")
exec {GATE[1]}>&-
wait "$GATE_PID" 2>/dev/null || true
GATE_PID=

# 2. nftables: netdev ingress (the earliest nft hook), a set of the same 256 addresses
{
	echo "table netdev egbench {"
	echo "  set bad { type ipv4_addr; elements = { $(for i in $(seq 0 255); do printf '198.19.0.%d,' "$i"; done | sed 's/,$//') } }"
	echo "  chain in { type filter hook ingress device vfs priority -500; policy accept; ip saddr @bad counter drop; }"
	echo "}"
} | ip netns exec "$S" nft -f -
nft_drops() { ip netns exec "$S" nft list chain netdev egbench in | grep -o 'packets [0-9]*' | awk '{print $2}'; }
R+=("$(flood "nftables netdev ingress (set)" 198.19.0.0 nft_drops)")
R+=("$(flood "mixed: nftables + legit TCP" 198.19.0.0 nft_drops mixed)")
ip netns exec "$S" nft delete table netdev egbench

# 3. xdp-filter (xdp-tools; libxdp attaches it alone where the kernel refuses the dispatcher):
#    the same 256 exact addresses.
# libxdp wants a bpffs; ip netns exec gives each command a fresh /sys, so one shell keeps it.
if command -v xdp-filter >/dev/null; then
	XF_DONE=$(mktemp -u)
	# xdp-filter keeps a lock in /run/xdp-filter.lck; a stale one (dead pid) blocks it
	if [ -e /run/xdp-filter.lck ] && ! kill -0 "$(cat /run/xdp-filter.lck 2>/dev/null || echo 0)" 2>/dev/null; then
		rm -f /run/xdp-filter.lck
	fi
	ip netns exec "$S" bash -c 'mount -t bpf bpf /sys/fs/bpf && xdp-filter load -m native vfs &&
		for i in $(seq 0 255); do xdp-filter ip 198.19.0.$i -m src || exit 1; done &&
		echo loaded; while [ ! -e "$1" ]; do sleep 0.2; done; xdp-filter unload vfs' _ "$XF_DONE" >/tmp/egbench-xf.$$ 2>&1 &
	XF_PID=$!
	for _ in $(seq 1 100); do grep -q loaded /tmp/egbench-xf.$$ 2>/dev/null && break; sleep 0.1; done
	if grep -q loaded /tmp/egbench-xf.$$; then
		R+=("$(flood "xdp-filter (native, 256 exact)" 198.19.0.0 xdp_drops)")
	else
		echo "# xdp-filter did not load:"; sed 's/^/#   /' /tmp/egbench-xf.$$
	fi
	touch "$XF_DONE"; wait "$XF_PID" 2>/dev/null || true; XF_PID=
	rm -f "$XF_DONE" /tmp/egbench-xf.$$
else
	echo "# xdp-filter not installed (apt-get install xdp-tools): no xdp-filter row"
fi

hz=$(getconf CLK_TCK)
printf '%s\n' "${R[@]}" | awk -F'|' -v s="$SECS" -v hz="$hz" '
{ name[NR] = $1; sent[NR] = $2; dr[NR] = $3; busy[NR] = $4; sq[NR] = $5; lok[NR] = $6; lbad[NR] = $7 }
END {
	printf "%-38s %11s %11s %12s %14s %16s %18s %16s\n", "receiver", "sent", "counted", "counted/s", "CPU ns/frame", "softirq ns/frame", "frames/softirq-s", "legit TCP ok/fail"
	for (i = 1; i <= NR; i++) {
		fps[i] = sq[i] ? dr[i] / (sq[i] / hz) : 0
		printf "%-38s %11d %11d %12.0f %14.0f %16.0f %18.0f %10s/%s\n", name[i], sent[i], dr[i], dr[i] / s,
			busy[i] * 1e9 / hz / sent[i], sq[i] * 1e9 / hz / sent[i], fps[i], lok[i], lbad[i]
	}
	for (i = 1; i <= NR; i++) {
		if (name[i] ~ /^nftables/ && fps[i]) printf "gate / nftables, frames dropped per softirq CPU-second: %.2fx (target >= 5x)\n", fps[1] / fps[i]
		if (name[i] ~ /^xdp-filter/ && fps[i]) printf "gate / xdp-filter, frames dropped per softirq CPU-second: %.2fx (target >= 1x)\n", fps[1] / fps[i]
	}
}'
