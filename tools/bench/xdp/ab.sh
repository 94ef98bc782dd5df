#!/usr/bin/env bash
# tools/bench/xdp/ab.sh - before/after of the per-path table (xdpbench paths), interleaved.
#   One run of each build says little on a shared machine: load moves a row by more than a
#   change does. This builds the per-path bench twice from this tree's xdpbench.c, against
#   this tree's library and against REF's (git archive of REF, built in a temporary
#   directory), then runs them alternately ROUNDS times (A B A B ...; every row of a run is
#   itself best-of-N, gate and empty program alternating) and prints, per row, the range of
#   "ns over the empty program" for each build and how many runs kept every path within +30.
# Usage: tools/bench/xdp/ab.sh REF [ROUNDS (default 4)] [REPEAT (default 250000)]
#   env EG_BENCH_BEST (best of N per row, default 15), EG_BENCH_NOFILL=1 (no 1M-rule fill),
#   EG_AB_KEEP=DIR (keep the runs' outputs there).
# Needs root (BPF_PROG_TEST_RUN).
set -euo pipefail
cd "$(dirname "$0")/../../.."
REF=${1:?usage: ab.sh REF [ROUNDS] [REPEAT]}
ROUNDS=${2:-4}
REPEAT=${3:-250000}
[ "$(id -u)" = 0 ] || { echo "xdp bench needs root" >&2; exit 1; }
TMP=$(mktemp -d /tmp/eg-ab.XXXXXX)
OUT=${EG_AB_KEEP:-$TMP/out}
mkdir -p "$OUT"
trap 'rm -rf "$TMP"' EXIT
LIBS="-lmicrohttpd -ljansson -lcurl -lssl -lcrypto -lxdp -lbpf -lelf -lz -llmdb -lhiredis -lcap -lpthread -lm -licuuc -lsimdjson -lstdc++"

bench_for() { # TREE BIN: this tree's xdpbench.c against TREE's library and headers
	make -s -C "$1" build/libedgegate.a >/dev/null
	# shellcheck disable=SC2046
	gcc -O2 $(make -s -C "$1" --no-print-directory print-cppflags | sed "s|-I\([a-z]\)|-I$1/\1|g") \
		-I"$1/build" -o "$2" tools/bench/xdp/xdpbench.c "$1/build/libedgegate.a" $LIBS
}

git archive --format=tar "$REF" | tar -x -C "$TMP" --one-top-level=ref
bench_for "$TMP/ref" "$TMP/bench.A"
bench_for "$PWD" "$TMP/bench.B"
echo "== A = $REF ($(git rev-parse --short "$REF")), B = this tree ($(git rev-parse --short HEAD)$(git diff --quiet || echo +changes)); $ROUNDS rounds, alternating, repeat $REPEAT"
for r in $(seq "$ROUNDS"); do
	for s in A B; do
		"$TMP/bench.$s" paths "$REPEAT" > "$OUT/$s.$r.txt"
		echo "round $r $s: $(grep '^# worst' "$OUT/$s.$r.txt")  (load $(cut -d' ' -f1 /proc/loadavg))"
	done
done
python3 - "$OUT" "$ROUNDS" <<'EOF'
import sys, re, collections
out, rounds = sys.argv[1], int(sys.argv[2])
rows = collections.OrderedDict()
within = {'A': 0, 'B': 0}
for s in 'AB':
    for r in range(1, rounds + 1):
        worst = None
        for line in open(f'{out}/{s}.{r}.txt'):
            m = re.match(r'^(.{44}) +[\d.]+ ns +([+-][\d.]+) vs empty', line)
            if m:
                rows.setdefault(m.group(1).strip(), {'A': [], 'B': []})[s].append(float(m.group(2)))
            m = re.match(r'^# worst path: ([+-][\d.]+)', line)
            if m:
                worst = float(m.group(1))
        if worst is not None and worst <= 30:
            within[s] += 1
def rng(v):
    if not v:
        return '-'
    m = sorted(v)[(len(v) - 1) // 2]
    return f'{min(v):+.0f}..{max(v):+.0f} ({m:+.0f})'
print(f'{"path (ns over the empty program, min..max (median))":46} {"A":>18} {"B":>18}')
for name, v in rows.items():
    print(f'{name:46} {rng(v["A"]):>18} {rng(v["B"]):>18}')
print(f'runs with every budgeted path within +30: A {within["A"]}/{rounds}, B {within["B"]}/{rounds}')
EOF
