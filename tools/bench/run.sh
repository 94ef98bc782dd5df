#!/usr/bin/env bash
# tools/bench/run.sh - what `make bench` runs: installs what the benchmark needs (idempotent),
# builds its helper, runs tools/bench/bench.mjs, and leaves the table in
# build/bench/results.md and build/bench/results.json. Bounded: about 8 minutes on 2 cores.
# Options via environment: see the header of tools/bench/bench.mjs (EGB_ROUNDS, EGB_SECONDS ...).
set -euo pipefail
cd "$(dirname "$0")/../.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in wrk nginx curl apache2 libapache2-mod-auth-openidc libnginx-mod-http-js openssl linux-perf; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "bench: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages start system services on :80; the bench starts its own.
if command -v systemctl >/dev/null 2>&1; then
	$SUDO systemctl disable --now apache2 nginx >/dev/null 2>&1 || true
fi
[ -d node_modules/jose ] || npm ci --no-audit --no-fund --loglevel=error

# The optimised daemon, never the sanitizer build.
make -s build/edgegated build/libedgegate.a
mkdir -p build/bench
CPPFLAGS=$(make -s --no-print-directory print-cppflags) # the library's include path (userspace/<concern>/)
gcc -O2 -g -std=gnu11 $CPPFLAGS -o build/bench/mksessions \
	tools/bench/mksessions.c build/libedgegate.a \
	-lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb -lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++
gcc -O2 -g -std=gnu11 -Wall -Wextra -Werror -o build/bench/floorsrv tools/bench/floorsrv.c
gcc -O2 -g -std=gnu11 $CPPFLAGS -o build/bench/josebench \
	tools/bench/josebench.c build/libedgegate.a \
	-lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb -lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++
gcc -O2 -g -std=gnu11 $CPPFLAGS -o build/bench/readingsbench \
	tools/bench/readingsbench.c build/libedgegate.a \
	-lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb -lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++
# mtls.c's certificate parse and outcome cache (docs/bench.md); run by hand: EG_ROOT=$PWD build/bench/mtlsbench
gcc -O2 -g -std=gnu11 $CPPFLAGS -o build/bench/mtlsbench \
	tools/bench/mtlsbench.c build/libedgegate.a \
	-lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb -lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++
# the verdict path's flow note (revoke.c; docs/bench.md); run by hand as root: build/bench/flowsbench
gcc -O2 -g -std=gnu11 $CPPFLAGS -o build/bench/flowsbench \
	tools/bench/flowsbench.c build/libedgegate.a \
	-lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb -lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++
# privilege separation's round trips (docs/privsep.md); run by hand: build/bench/privbench
gcc -O2 -g -std=gnu11 $CPPFLAGS -o build/bench/privbench \
	tools/bench/privbench.c build/libedgegate.a \
	-lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb -lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++

ulimit -n 65536 2>/dev/null || true
exec timeout 900 node tools/bench/bench.mjs "$@"
