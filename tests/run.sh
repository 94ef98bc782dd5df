#!/usr/bin/env bash
# run.sh - runs every test through prove (TAP) and ends with prove's summary.
#   tests/run.sh            everything
#   tests/run.sh unit       C unit tests only (ASan+UBSan)
#   tests/run.sh bpf|fuzz|integration
# Tests needing root or BPF print "skip" with a reason outside CI; under CI=true
# they fail instead.
set -uo pipefail
cd "$(dirname "$0")/.."
export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export EG_ROOT=$PWD

what=${1:-all}
tests=()
add() { for f in "$@"; do [ -x "$f" ] && tests+=("$f"); done; }
case "$what" in
all | unit) add build/asan/tests/test_* ;;&
all | bpf) add tests/bpf/*.t.sh ;;&
all | fuzz) add tests/fuzz/smoke.t.sh ;;&
all | integration) add tests/integration/*.t.mjs tests/integration/*.t.sh ;;
esac
[ "${#tests[@]}" -gt 0 ] || { echo "no tests found for '$what'"; exit 1; }
exec prove --exec '' --timer "${tests[@]}"
