#!/usr/bin/env bash
# run.sh - runs every test through prove (TAP) and ends with prove's summary.
#   tests/run.sh            everything
#   tests/run.sh unit       C unit tests only (ASan+UBSan)
#   tests/run.sh bpf        BPF program tests (BPF_PROG_TEST_RUN; need root)
#   tests/run.sh fuzz|integration
# The list comes from the sources, not from what happens to be built or executable: a
# test whose binary is missing or whose script lost its run bit is an error, never a
# silent skip. Tests needing root or BPF print "skip" with a reason outside CI; under
# CI=true they fail instead. EG_TEST_TIMEOUT (seconds, default 600) bounds each test.
set -uo pipefail
cd "$(dirname "$0")/.."
export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export EG_ROOT=$PWD

what=${1:-all}
tests=()
missing=()
# C tests: one binary per source file, built by `make asan`.
add_built() { for src in "$@"; do
	[ -e "$src" ] || continue
	bin=build/asan/tests/$(basename "$src" .c)
	if [ -x "$bin" ]; then tests+=("$bin"); else missing+=("$bin (from $src; run make asan)"); fi
done; }
# Scripts: run directly, so each must be executable.
add_script() { for f in "$@"; do
	[ -e "$f" ] || continue
	if [ -x "$f" ]; then tests+=("$f"); else missing+=("$f (not executable: chmod +x)"); fi
done; }
case "$what" in
all | unit) add_built tests/unit/test_*.c ;;&
all | bpf) add_built tests/bpf/test_*.c ;;&
all | fuzz) add_script tests/fuzz/*.t.sh ;;&
all | integration) add_script tests/integration/*.t.mjs tests/integration/*.t.sh ;;&
all | unit | bpf | fuzz | integration) ;;
*) echo "usage: tests/run.sh [all|unit|bpf|fuzz|integration]" >&2; exit 2 ;;
esac
if [ "${#missing[@]}" -gt 0 ]; then
	printf 'run.sh: cannot run:\n' >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi
[ "${#tests[@]}" -gt 0 ] || { echo "no tests found for '$what'"; exit 1; }
# Each test runs under timeout(1) (its whole process group): a hung test fails alone
# instead of eating the CI budget. The slowest (fuzz smoke) takes about 4 minutes.
exec prove --exec "timeout -k 10 ${EG_TEST_TIMEOUT:-600}" --timer "${tests[@]}"
