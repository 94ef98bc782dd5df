#!/usr/bin/env bash
# tools/bench/revoke/run.sh - time to revoke: N (default 200) sessions each holding a
# live WebSocket through nginx from a client network namespace (XDP gate attached to
# the host veth) are revoked one by one over the admin socket; prints p50/p99 of
#   - the daemon's time-to-revoke (revocation call -> last flow destroyed),
#   - the admin revoke round trip, and
#   - revocation call -> the client sees the reset,
# and writes build/bench/revoke/results.{json,md}. Needs root; about 20 s.
#   EGR_N=200 tools/bench/revoke/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
if [ "$(id -u)" != 0 ]; then echo "revoke bench: skipped (needs root: netns, XDP, SOCK_DESTROY)"; exit 0; fi
make -s build/edgegated build/libedgegate.a build/edgegate.bpf.o
mkdir -p build/bench/revoke
CPPFLAGS=$(make -s --no-print-directory print-cppflags) # the library's include path (userspace/<concern>/)
gcc -O2 -g -std=gnu11 $CPPFLAGS -o build/bench/revoke/mksessions \
	tools/bench/mksessions.c build/libedgegate.a \
	-lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb -lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++
ulimit -n 65536 2>/dev/null || true
exec timeout 110 node tools/bench/revoke/bench.mjs "$@"
