#!/usr/bin/env bash
# tools/bench/multinode/run.sh - several hosts: time from a revoke on node B to the reset of
# a live WebSocket through node A (EGM_N sessions, default 1000), and what following the
# other nodes costs (CPU, Redis ops/s) at EGM_SIZES sessions in the store (default
# 10000,100000; add 1000000 when memory allows: ~1 GB in Redis). Writes
# build/bench/multinode/results.{json,md}. Needs root; about 1-2 minutes.
set -euo pipefail
cd "$(dirname "$0")/../../.."
if [ "$(id -u)" != 0 ]; then echo "multi-node bench: skipped (needs root: netns, XDP, SOCK_DESTROY)"; exit 0; fi
make -s build/edgegated build/libedgegate.a build/edgegate.bpf.o
mkdir -p build/bench/multinode
CPPFLAGS=$(make -s --no-print-directory print-cppflags) # the library's include path (userspace/<concern>/)
gcc -O2 -g -std=gnu11 $CPPFLAGS -o build/bench/multinode/mksessions \
	tools/bench/mksessions.c build/libedgegate.a \
	-lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb -lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++
ulimit -n 65536 2>/dev/null || true
exec timeout 600 node tools/bench/multinode/bench.mjs "$@"
