#!/usr/bin/env bash
# tools/bench/xdp/run.sh - XDP edge gate benchmarks (needs root; ~90 s).
#   1. ns/packet per verdict path via BPF_PROG_TEST_RUN repeat, beside an empty XDP
#      program in the same run (xdpbench paths).
#   2. veth flood of live xdp_frames (tools/bench/xdp/flood.sh: xdpgen.bpf.o through
#      BPF_PROG_RUN live frames, redirected into a veth, so the receiver's XDP sees real
#      xdp_frames, no skb): the gate, an nftables netdev-ingress set, and xdp-filter, same
#      256 exact entries, same run, beside the floor every receiver pays (an XDP program
#      that drops everything; no filter for the pass path); drops, CPU per frame, each
#      filter's own cost over the floor, and the ratios; then the drop rows again,
#      interleaved (8 slices of 3 s, every receiver once per slice: per-slice ratios with
#      the slice's ceiling, and their medians; EG_FLOOD_SLICES=0 skips it).
# Usage: tools/bench/xdp/run.sh [SECONDS_PER_FLOOD (default 5)] [REPEAT (default 1000000)]
#                               [FLOOD_ROUNDS (default 1)]
#   env EG_BENCH_BEST=N: best of N per row (default 15; gate and empty program runs
#   alternate, so both figures of a row come from the same seconds; rows are measured in
#   sweeps, every row once per sweep; EG_BENCH_SWEEP=0: each row's runs back to back), EG_BENCH_NOFILL=1:
#   no 1M-rule fill, EG_BENCH_DUMP=PATH: the verifier's output beside PATH.
#   A change is judged with tools/bench/xdp/ab.sh REF (both builds alternately, ranges).
set -euo pipefail
cd "$(dirname "$0")/../../.."
SECS=${1:-5}
REPEAT=${2:-1000000}
ROUNDS=${3:-1}
B=build/xdpbench
[ "$(id -u)" = 0 ] || { echo "xdp bench needs root" >&2; exit 1; }
make -s build/libedgegate.a
CPPFLAGS=$(make -s --no-print-directory print-cppflags) # the library's include path (userspace/<concern>/)
gcc -O2 -g $CPPFLAGS -o $B tools/bench/xdp/xdpbench.c \
	build/libedgegate.a -lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb \
	-lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++

echo "== BPF_PROG_TEST_RUN, repeat $REPEAT, best of ${EG_BENCH_BEST:-15}, gate and empty program alternating (kernel $(uname -r), $(nproc) CPUs)"
$B paths "$REPEAT"

# 2. the veth flood: floors, drop / pass / mixed rows per filter, raw and marginal
#    ratios, and a 100,000-entry bulk load (tools/bench/xdp/flood.sh)
tools/bench/xdp/flood.sh "$SECS" "$ROUNDS"
