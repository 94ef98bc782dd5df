#!/usr/bin/env bash
# tools/bench/xdp/flood.sh - veth flood of live xdp_frames (needs root; ~75 s a round).
#
# xdpgen.bpf.o, run with BPF_PROG_RUN live frames, redirects 60-byte UDP frames from 256
# sources into a veth, so the receiver's XDP program gets real xdp_frames (no skb). The
# same 256 exact addresses are denied by every filter: the gate, an nftables
# netdev-ingress set, xdp-filter. Same veth pair, same run.
#
# Where the CPU goes. The generator is pinned to one CPU (the last). Its BPF_PROG_RUN
# and the redirect into the veth run in its process context (system time). The
# receiving veth's NAPI poll is scheduled on the same CPU and runs in softirq, at the
# generator's local_bh_enable() or in ksoftirqd: the veth ring, the xdp_frame, the
# filter, and for nftables the skb built around the frame. So "softirq ns/frame" of
# that CPU (/proc/stat, tick-sampled at HZ) is the receiver's cost, the generator's is
# "system", and other CPUs' load is left out. The receiver's cost includes what the
# veth costs any XDP program: the floor, measured in the same round with a program that
# drops everything unconditionally (xdpdrop.bpf.o; for the pass path: no filter at
# all). "over floor" is a filter's own cost per frame above it.
#
# The rounds run each receiver once, minutes apart, so a ratio of two rows also holds
# whatever the machine's load did in between. The interleaved phase after them (section 5)
# keeps the floor, the gate, xdp-filter and nftables set up at once and switches between
# them by attaching a program that is already loaded (nftables: no XDP program): SLICES
# slices of SLICE_SECS, each receiver once per slice in an order rotated per slice, and
# prints every slice's ratios (with the slice's ceiling, floor / nftables) and their medians.
#
# Usage: tools/bench/xdp/flood.sh [SECONDS_PER_RUN (default 5)] [ROUNDS (default 1)]
#   env EG_FLOOD_SLICES (default 8; 0: no interleaved phase), EG_FLOOD_SLICE_SECS (default 3)
set -euo pipefail
cd "$(dirname "$0")/../../.."
SECS=${1:-5}
ROUNDS=${2:-1}
B=build/xdpbench
[ "$(id -u)" = 0 ] || { echo "xdp flood bench needs root" >&2; exit 1; }
if [ ! -x $B ] || [ tools/bench/xdp/xdpbench.c -nt $B ]; then
	make -s build/libedgegate.a
	gcc -O2 -g $(make -s --no-print-directory print-cppflags) -o $B tools/bench/xdp/xdpbench.c \
		build/libedgegate.a -lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz \
		-llmdb -lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++
fi
bpfcc() { clang -target bpf -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu "$@"; }
for o in xdpgen xdpdrop xdpsrc; do
	bpfcc -c tools/bench/xdp/$o.bpf.c -o build/$o.bpf.o
done
bpfcc -DEG_SRC_HASH -c tools/bench/xdp/xdpsrc.bpf.c -o build/xdphash.bpf.o

S=egfl-s-$$ C=egfl-c-$$ PIN=/sys/fs/bpf/edgegate-flood-$$
OUT=$(mktemp /tmp/egflood.XXXXXX)
GCPU=$(($(nproc) - 1))
cleanup() {
	[ -n "${GATE_PID:-}" ] && kill "$GATE_PID" 2>/dev/null || true
	[ -n "${XF_PID:-}" ] && kill "$XF_PID" 2>/dev/null || true
	[ -n "${LSRV:-}" ] && kill "$LSRV" 2>/dev/null || true
	ip netns del "$S" 2>/dev/null || true
	ip netns del "$C" 2>/dev/null || true
	rm -f /sys/fs/bpf/egfl-*-$$
	rm -rf "$PIN" "$PIN-il" "$OUT" "$OUT.il" "/tmp/egbench-legit.$$" "/tmp/egbench-xf.$$"
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

# jiffies of the generator's CPU: busy (all but idle/iowait), system, softirq
cpu() { awk -v c="cpu$GCPU" '$1 == c {print $2+$3+$4+$7+$8+$9, $4, $8}' /proc/stat; }
xdp_drops() { ip netns exec "$S" ethtool -S vfs | awk '/rx_queue_[0-9]+_xdp_drops/ {s += $2} END {print s + 0}'; }
rx_pkts() { ip -n "$S" -s -j link show vfs | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }
gate_deny() { $B stats "$PIN" | awk '{print $2}'; }
nft_drops() { ip netns exec "$S" nft list chain netdev egbench in | grep -o 'packets [0-9]*' | awk '{s += $2} END {print s + 0}'; }
# Legitimate TCP beside the flood: a listener on the receiving side, a client doing
# sequential connects (200 ms timeout) from a clean source for the flood's duration.
LPORT=$((20000 + $$ % 20000))
ip netns exec "$S" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.200.1", int(sys.argv[1]))); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()' "$LPORT" &
LSRV=$!
legit() { # prints connects that succeeded, failed, and the p50/p99 connect time (ms)
	ip netns exec "$C" python3 -c '
import socket, sys, time
end, ok, bad, ms = time.time() + float(sys.argv[2]), 0, 0, []
while time.time() < end:
    s = socket.socket(); s.settimeout(0.2)
    t = time.time()
    try: s.connect(("198.18.200.1", int(sys.argv[1]))); ok += 1; ms.append((time.time() - t) * 1e3)
    except OSError: bad += 1
    s.close()
ms.sort()
q = lambda p: "%.2f" % ms[min(len(ms) - 1, int(p * len(ms)))] if ms else "-"
print(ok, bad, q(0.5), q(0.99))' "$LPORT" "$SECS"
}
# flood ROUND KEY NAME SRCNET COUNT_CMD [mixed]: one run, one line in $OUT.
# KEY = kind/filter: kind drop|pass|mixed; filter floor|none|gate|nft|nftall|xf.
# A mixed run offers every receiver the same flood, paced to $MIXED_RATE frames/s on
# average (bursts of 131,072 frames: xdpbench gen), below what any of them absorbs, with
# a client's sequential TCP connects alongside.
MIXED_RATE=${MIXED_RATE:-500000}
flood() {
	local round=$1 key=$2 name=$3 net=$4 count=$5 c0 c1 b0 s0 q0 b1 s1 q1 sent rate
	local lok=- lbad=- l50=- l99=- lpid= pace=
	c0=$($count)
	read -r b0 s0 q0 < <(cpu)
	if [ "${6:-}" = mixed ]; then
		legit >"/tmp/egbench-legit.$$" &
		lpid=$!
		pace=$MIXED_RATE
	fi
	read -r _ sent rate < <(ip netns exec "$C" taskset -c "$GCPU" \
		$B gen build/xdpgen.bpf.o vfc "$MAC" "$net" "$SECS" $pace)
	[ -n "$lpid" ] && wait "$lpid"
	read -r b1 s1 q1 < <(cpu)
	c1=$($count)
	if [ -n "$lpid" ]; then
		read -r lok lbad l50 l99 <"/tmp/egbench-legit.$$"
	fi
	echo "$round|$key|$name|$sent|$((c1 - c0))|$((b1 - b0))|$((s1 - s0))|$((q1 - q0))|$lok|$lbad|$l50|$l99" >>"$OUT"
}
DENY=198.19.0.0 CLEAN=198.18.201.0
# the 256 denied sources into xdphash.bpf.o's map (the program attached to vfs)
fill_src_hash() {
	local pid mid
	pid=$(ip -n "$S" -j -d link show vfs | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["xdp"]["prog"]["id"])')
	mid=$(bpftool -j prog show id "$pid" | python3 -c 'import json,sys; print(json.load(sys.stdin)["map_ids"][0])')
	for i in $(seq 0 255); do echo "map update id $mid key 198 19 0 $i value 1 0 0 0"; done >"$OUT.batch"
	bpftool batch file "$OUT.batch" >/dev/null
	rm -f "$OUT.batch"
}

round() {
	local r=$1
	# 0. no filter: frames into the stack (the pass path's floor)
	flood "$r" pass/none "no filter (into the stack)" $CLEAN rx_pkts
	flood "$r" mixed/none "mixed: no filter + legit TCP" $DENY rx_pkts mixed
	# 1. the drop floor: an XDP program that drops everything
	ip -n "$S" link set dev vfs xdpdrv obj build/xdpdrop.bpf.o sec xdp
	flood "$r" drop/floor "XDP drop-all program (floor)" $DENY xdp_drops
	ip -n "$S" link set dev vfs xdpdrv off
	# references: reading the source (no map), then one hash lookup of it
	ip -n "$S" link set dev vfs xdpdrv obj build/xdpsrc.bpf.o sec xdp
	flood "$r" drop/src "XDP reads the IPv4 source (no map)" $DENY xdp_drops
	ip -n "$S" link set dev vfs xdpdrv off
	ip -n "$S" link set dev vfs xdpdrv obj build/xdphash.bpf.o sec xdp
	fill_src_hash
	flood "$r" drop/hash "XDP one hash lookup (256 entries)" $DENY xdp_drops
	ip -n "$S" link set dev vfs xdpdrv off

	# 2. the gate: the 256 addresses as /32 deny entries
	coproc GATE { exec $B attach "$S" vfs "$PIN" =198.19.0.0/24; }
	GATE_PID=$GATE_PID
	read -r ready <&"${GATE[0]}"
	[ "$ready" = ready ] || { echo "gate did not attach" >&2; exit 1; }
	flood "$r" drop/gate "XDP gate (256 x /32 deny)" $DENY gate_deny
	flood "$r" pass/gate "XDP gate, pass path (clean sources)" $CLEAN rx_pkts
	flood "$r" mixed/gate "mixed: XDP gate + legit TCP" $DENY gate_deny mixed
	exec {GATE[1]}>&-
	wait "$GATE_PID" 2>/dev/null || true
	GATE_PID=

	# 3. nftables: netdev ingress (the earliest nft hook), a set of the same 256 addresses;
	#    then the same hook dropping everything (the skb path's floor)
	{
		echo "table netdev egbench {"
		echo "  set bad { type ipv4_addr; elements = { $(for i in $(seq 0 255); do printf '198.19.0.%d,' "$i"; done | sed 's/,$//') } }"
		echo "  chain in { type filter hook ingress device vfs priority -500; policy accept; ip saddr @bad counter drop; }"
		echo "}"
	} | ip netns exec "$S" nft -f -
	flood "$r" drop/nft "nftables netdev ingress (set)" $DENY nft_drops
	flood "$r" pass/nft "nftables, pass path (clean sources)" $CLEAN rx_pkts
	flood "$r" mixed/nft "mixed: nftables + legit TCP" $DENY nft_drops mixed
	ip netns exec "$S" nft flush chain netdev egbench in
	ip netns exec "$S" nft add rule netdev egbench in counter drop
	flood "$r" drop/nftall "nftables ingress drop-all (skb floor)" $DENY nft_drops
	ip netns exec "$S" nft delete table netdev egbench

	# 4. xdp-filter (xdp-tools): the same 256 exact addresses. libxdp wants a bpffs;
	#    ip netns exec gives each command a fresh /sys, so one shell keeps it.
	if ! command -v xdp-filter >/dev/null; then
		echo "# xdp-filter not installed (apt-get install xdp-tools): no xdp-filter rows"
		return
	fi
	local xf_done
	xf_done=$(mktemp -u)
	# xdp-filter keeps a lock in /run/xdp-filter.lck; a stale one (dead pid) blocks it
	if [ -e /run/xdp-filter.lck ] && ! kill -0 "$(cat /run/xdp-filter.lck 2>/dev/null || echo 0)" 2>/dev/null; then
		rm -f /run/xdp-filter.lck
	fi
	ip netns exec "$S" bash -c 'mount -t bpf bpf /sys/fs/bpf && xdp-filter load -m native vfs &&
		for i in $(seq 0 255); do xdp-filter ip 198.19.0.$i -m src || exit 1; done &&
		echo loaded; while [ ! -e "$1" ]; do sleep 0.2; done; xdp-filter unload vfs' _ "$xf_done" \
		>/tmp/egbench-xf.$$ 2>&1 &
	XF_PID=$!
	for _ in $(seq 1 100); do grep -q loaded /tmp/egbench-xf.$$ 2>/dev/null && break; sleep 0.1; done
	if grep -q loaded /tmp/egbench-xf.$$; then
		flood "$r" drop/xf "xdp-filter (native, 256 exact)" $DENY xdp_drops
		flood "$r" pass/xf "xdp-filter, pass path (clean sources)" $CLEAN rx_pkts
		flood "$r" mixed/xf "mixed: xdp-filter + legit TCP" $DENY xdp_drops mixed
	else
		echo "# xdp-filter did not load:"; sed 's/^/#   /' /tmp/egbench-xf.$$
	fi
	touch "$xf_done"; wait "$XF_PID" 2>/dev/null || true; XF_PID=
	rm -f "$xf_done"
}

# 5. the drop rows interleaved. Every receiver is loaded once and stays loaded: the floor
#    and the gate's program and xdp-filter's are pinned (bpffs of this mount namespace) and
#    attached by id in turn (nsenter --net: `ip netns exec` would remount /sys); the nftables
#    set stays in place and sees the flood only while no XDP program is attached.
SLICES=${EG_FLOOD_SLICES:-8}
SLICE_SECS=${EG_FLOOD_SLICE_SECS:-3}
xdp_id() { ip -n "$S" -j -d link show vfs | python3 -c 'import json,sys; x = json.load(sys.stdin)[0].get("xdp"); print(x["prog"]["id"] if x else "")'; }
xdp_detach() { ip -n "$S" link set dev vfs xdpdrv off; }
xdp_attach_id() { nsenter --net=/var/run/netns/"$S" bpftool net attach xdpdrv id "$1" dev vfs; }
interleaved() {
	local gate_id xf_id floor_id xf_done k i recv id order
	declare -A ids names
	{
		echo "table netdev egbench {"
		echo "  set bad { type ipv4_addr; elements = { $(for i in $(seq 0 255); do printf '198.19.0.%d,' "$i"; done | sed 's/,$//') } }"
		echo "  chain in { type filter hook ingress device vfs priority -500; policy accept; ip saddr @bad counter drop; }"
		echo "}"
	} | ip netns exec "$S" nft -f -
	bpftool prog load build/xdpdrop.bpf.o /sys/fs/bpf/egfl-floor-$$ type xdp
	floor_id=$(bpftool -j prog show pinned /sys/fs/bpf/egfl-floor-$$ | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
	coproc GATE { exec $B attach "$S" vfs "$PIN-il" =198.19.0.0/24; }
	GATE_PID=$GATE_PID
	read -r ready <&"${GATE[0]}"
	[ "$ready" = ready ] || { echo "gate did not attach" >&2; exit 1; }
	gate_id=$(xdp_id)
	bpftool prog pin id "$gate_id" /sys/fs/bpf/egfl-gate-$$
	xdp_detach
	ids=([floor]=$floor_id [gate]=$gate_id [nft]=)
	names=([floor]="XDP drop-all program (floor)" [gate]="XDP gate (256 x /32 deny)"
	       [nft]="nftables netdev ingress (set)" [xf]="xdp-filter (native, 256 exact)")
	order="floor gate nft"
	if command -v xdp-filter >/dev/null; then
		xf_done=$(mktemp -u)
		if [ -e /run/xdp-filter.lck ] && ! kill -0 "$(cat /run/xdp-filter.lck 2>/dev/null || echo 0)" 2>/dev/null; then
			rm -f /run/xdp-filter.lck
		fi
		ip netns exec "$S" bash -c 'mount -t bpf bpf /sys/fs/bpf && xdp-filter load -m native vfs &&
			for i in $(seq 0 255); do xdp-filter ip 198.19.0.$i -m src || exit 1; done &&
			echo loaded; while [ ! -e "$1" ]; do sleep 0.2; done' _ "$xf_done" >/tmp/egbench-xf.$$ 2>&1 &
		XF_PID=$!
		for _ in $(seq 1 100); do grep -q loaded /tmp/egbench-xf.$$ 2>/dev/null && break; sleep 0.1; done
		if grep -q loaded /tmp/egbench-xf.$$; then
			xf_id=$(xdp_id)
			bpftool prog pin id "$xf_id" /sys/fs/bpf/egfl-xf-$$
			ids[xf]=$xf_id
			order="floor gate xf nft"
		fi
		xdp_detach
	fi
	read -r -a order <<<"$order"
	for k in $(seq 1 "$SLICES"); do
		for i in $(seq 0 $((${#order[@]} - 1))); do
			recv=${order[$(((i + k) % ${#order[@]}))]}
			id=${ids[$recv]}
			xdp_detach
			if [ -n "$id" ]; then
				xdp_attach_id "$id"
				SECS=$SLICE_SECS OUT=$OUT.il flood "$k" "drop/$recv" "${names[$recv]}" $DENY xdp_drops
			else
				SECS=$SLICE_SECS OUT=$OUT.il flood "$k" "drop/$recv" "${names[$recv]}" $DENY nft_drops
			fi
		done
	done
	xdp_attach_id "$gate_id" # the gate's own detach (XDP_FLAGS_REPLACE) expects it
	exec {GATE[1]}>&-
	wait "$GATE_PID" 2>/dev/null || true
	GATE_PID=
	xdp_detach 2>/dev/null || true
	if [ -n "${XF_PID:-}" ]; then
		touch "$xf_done"; wait "$XF_PID" 2>/dev/null || true; XF_PID=
		rm -f "$xf_done"
	fi
	ip netns exec "$S" nft delete table netdev egbench
	rm -f /sys/fs/bpf/egfl-*-$$
}

echo "== veth flood: live xdp_frames (BPF_PROG_RUN live frames, redirected into the veth), 60-byte UDP"
echo "   from 256 sources, the same 256 exact entries everywhere, ${SECS}s per run, $ROUNDS round(s);"
echo "   generator pinned to CPU $GCPU, CPU time of that CPU (kernel $(uname -r), $(nproc) CPUs; /proc/stat, tick-sampled)"
for r in $(seq 1 "$ROUNDS"); do
	round "$r"
done
python3 tools/bench/xdp/flood_report.py "$(getconf CLK_TCK)" "$SECS" <"$OUT"
if [ "$SLICES" -gt 0 ]; then
	echo "== interleaved: the drop rows in $SLICES slices of ${SLICE_SECS}s, one run of each receiver per slice, order rotated"
	interleaved
	python3 tools/bench/xdp/flood_report.py "$(getconf CLK_TCK)" "$SLICE_SECS" --slices <"$OUT.il"
fi

# Operators' bulk load (issue 14 item 4): 100,000 /32s from a file into the gate's pins
# left by the runs above (daemon down), through edgegatectl's batch updates.
make -s build/edgegatectl
echo "{ \"gate\": { \"pin_root\": \"$PIN\" } }" >"$OUT.json"
python3 -c '
for i in range(100000): print("10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255))' >"$OUT.list"
t0=$(date +%s.%N)
n=$(build/edgegatectl --config "$OUT.json" deny load "$OUT.list")
t1=$(date +%s.%N)
echo "== edgegatectl deny load FILE: $n in $(python3 -c "print('%.2f' % ($t1 - $t0))") s (wall, parsing included)"
rm -f "$OUT.json" "$OUT.list"
