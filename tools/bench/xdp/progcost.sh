#!/usr/bin/env bash
# tools/bench/xdp/progcost.sh - what each receiver's XDP program itself costs per frame
# in the veth flood of flood.sh (needs root; ~SLICES x receivers x SECS seconds).
#
# flood.sh reads the generator CPU's softirq time, tick-sampled, which holds the veth's
# receive path too; this reads the kernel's own timing of each program run
# (BPF_ENABLE_STATS through `xdpbench progstat`: sched_clock before and after every
# run, on only while it measures). The drop-all floor's figure is that clock pair
# alone, so "over floor" is the program's own cost in the flood: the figure to set
# beside BPF_PROG_TEST_RUN's "over empty" (xdpbench paths), where one frame is
# replayed from a hot cache.
#
# Receivers: the floor (xdpdrop.bpf.o), one hash lookup of the source (xdphash.bpf.o),
# the gate (256 x /32 deny, as flood.sh) and, with EG_PROGCOST_BENCH=path, a second gate
# loaded by another xdpbench binary (another tree's gate, as ab.sh builds them) on pins
# of its own. Each slice runs every receiver once in a
# rotated order, SECS seconds each; the medians over slices are printed.
#
# Usage: tools/bench/xdp/progcost.sh [SECS (default 2)] [SLICES (default 5)] [SRCNET]
#   SRCNET (default 198.19.0.0): the flood's /24; every source in it is denied.
set -euo pipefail
cd "$(dirname "$0")/../../.."
SECS=${1:-2}
SLICES=${2:-5}
NET=${3:-198.19.0.0}
B=build/xdpbench
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
bpfcc() { clang -target bpf -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu "$@"; }
bpfcc -c tools/bench/xdp/xdpgen.bpf.c -o build/xdpgen.bpf.o
bpfcc -c tools/bench/xdp/xdpdrop.bpf.c -o build/xdpdrop.bpf.o
bpfcc -DEG_SRC_HASH -c tools/bench/xdp/xdpsrc.bpf.c -o build/xdphash.bpf.o

S=egpc-s-$$ C=egpc-c-$$ PIN=/sys/fs/bpf/edgegate-flood-pc-$$
OUT=$(mktemp /tmp/egpc.XXXXXX)
GCPU=$(($(nproc) - 1))
declare -A PIDS
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$S" 2>/dev/null || true
	ip netns del "$C" 2>/dev/null || true
	rm -f /sys/fs/bpf/egpc-*-$$
	rm -rf "$PIN" "$PIN-x" "$OUT" "$OUT".*
}
trap cleanup EXIT
ip netns add "$S"
ip netns add "$C"
ip link add vps netns "$S" type veth peer name vpc netns "$C"
ip -n "$S" addr add 198.18.210.1/24 dev vps
ip -n "$C" addr add 198.18.210.2/24 dev vpc
ip -n "$S" link set vps up
ip -n "$C" link set vpc up
MAC=$(ip -n "$S" -j link show vps | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
xdp_id() { ip -n "$S" -j -d link show vps | python3 -c 'import json,sys; x = json.load(sys.stdin)[0].get("xdp"); print(x["prog"]["id"] if x else "")'; }
xdp_detach() { ip -n "$S" link set dev vps xdpdrv off; }
xdp_attach_id() { nsenter --net=/var/run/netns/"$S" bpftool net attach xdpdrv id "$1" dev vps; }
# softirq jiffies of the generator's CPU (where the veth's NAPI poll runs), as flood.sh
softirq() { awk -v c="cpu$GCPU" '$1 == c {print $8}' /proc/stat; }
HZ=$(getconf CLK_TCK)
pin_id() { bpftool -j prog show pinned "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

declare -A ids
bpftool prog load build/xdpdrop.bpf.o /sys/fs/bpf/egpc-floor-$$ type xdp
ids[floor]=$(pin_id /sys/fs/bpf/egpc-floor-$$)
bpftool prog load build/xdphash.bpf.o /sys/fs/bpf/egpc-hash-$$ type xdp
ids[hash]=$(pin_id /sys/fs/bpf/egpc-hash-$$)
mid=$(bpftool -j prog show id "${ids[hash]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["map_ids"][0])')
b3=$(echo "$NET" | cut -d. -f1-3 | tr . ' ')
for i in $(seq 0 255); do echo "map update id $mid key $b3 $i value 1 0 0 0"; done >"$OUT.batch"
bpftool batch file "$OUT.batch" >/dev/null
rm -f "$OUT.batch"
# the gate(s): xdpbench attach loads and attaches; pin the program, detach, keep it loaded
gate() { # NAME PIN BENCH
	local name=$1 pin=$2 bench=$3 fifo=$OUT.$1
	mkfifo "$fifo"
	$bench attach "$S" vps "$pin" "=$NET/24" <"$fifo" >"$fifo.out" &
	PIDS[$name]=$!
	exec {fd}>"$fifo"
	eval "FD_$name=$fd"
	for _ in $(seq 1 200); do grep -q ready "$fifo.out" 2>/dev/null && break; sleep 0.1; done
	grep -q ready "$fifo.out" || { echo "gate $name did not attach" >&2; exit 1; }
	ids[$name]=$(xdp_id)
	bpftool prog pin id "${ids[$name]}" /sys/fs/bpf/egpc-$name-$$
	xdp_detach
}
gate gate "$PIN" $B
order="floor hash gate"
if [ -n "${EG_PROGCOST_BENCH:-}" ]; then
	gate gatex "$PIN-x" "$EG_PROGCOST_BENCH"
	order="floor hash gate gatex"
fi
read -r -a order <<<"$order"
echo "# progcost: $SLICES slices x ${#order[@]} receivers x ${SECS}s, flood from $NET/24 (all denied), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for k in $(seq 1 "$SLICES"); do
	for i in $(seq 0 $((${#order[@]} - 1))); do
		r=${order[$(((i + k) % ${#order[@]}))]}
		xdp_detach
		xdp_attach_id "${ids[$r]}"
		ip netns exec "$C" taskset -c "$GCPU" $B gen build/xdpgen.bpf.o vpc "$MAC" "$NET" "$((SECS + 1))" >/dev/null &
		g=$!
		sleep 0.5
		q0=$(softirq)
		read -r _ runs ns < <($B progstat "$SECS" "${ids[$r]}")
		q1=$(softirq)
		wait "$g"
		echo "$k $r $runs $ns $(python3 -c "print('%.1f' % (($q1 - $q0) * 1e9 / $HZ / max($runs, 1)))")" | tee -a "$OUT"
	done
done
xdp_detach
python3 - "$OUT" <<'EOF'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
by, sq = {}, {}
for k, r, runs, ns, q in rows:
    by.setdefault(k, {})[r] = float(ns)
    sq.setdefault(k, {})[r] = float(q)
names = list(dict.fromkeys(r[1] for r in rows))
print("receiver   program ns/run: median, over floor (median of per-slice differences) | softirq ns/frame: median, over floor")
for n in names:
    v = [s[n] for s in by.values() if n in s]
    d = [s[n] - s["floor"] for s in by.values() if n in s and "floor" in s]
    w = [s[n] for s in sq.values() if n in s]
    e = [s[n] - s["floor"] for s in sq.values() if n in s and "floor" in s]
    print("%-10s %6.1f %+6.1f (%s) | %6.1f %+6.1f (%s)" % (n, st.median(v), st.median(d), " ".join("%+.0f" % x for x in d),
          st.median(w), st.median(e), " ".join("%+.0f" % x for x in e)))
EOF
# the gate's own detach (XDP_FLAGS_REPLACE) expects its program attached; the second
# gate last started first: it holds the first one's stdin too (inherited), so the
# first sees its end of input only once the second has gone
for n in gatex gate; do
	[ -n "${PIDS[$n]:-}" ] || continue
	xdp_attach_id "${ids[$n]}"
	eval "exec {FD_$n}>&-"
	wait "${PIDS[$n]}" 2>/dev/null || true
	unset "PIDS[$n]"
	xdp_detach 2>/dev/null || true
done
