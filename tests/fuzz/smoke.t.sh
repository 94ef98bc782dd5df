#!/usr/bin/env bash
# smoke.t.sh - runs every libFuzzer target briefly (FUZZ_SECONDS each, default 20) from
# its seed corpus; a crash, leak or sanitizer report fails the test. The random seed is fixed
# (FUZZ_SEED, default 1) so that a failure seen in CI replays here; the reproducer is kept in
# build/fuzz/findings/ and printed (base64) with the report. Long, random campaigns:
# `make fuzz FUZZ_SECONDS=3600`.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-20}
# One target per tests/fuzz/fuzz_*.c: a missing or stale binary is a failure, not a skip.
targets=()
missing=()
for src in tests/fuzz/fuzz_*.c; do
	t=build/fuzz/$(basename "$src" .c)
	if [ -x "$t" ] && [ "$t" -nt "$src" ]; then targets+=("$t"); else missing+=("$t"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "${CI:-}" = true ] || [ "${#targets[@]}" -gt 0 ]; then
		echo "1..1"; echo "not ok 1 - fuzz targets not built or older than their source: ${missing[*]} (make test builds them)"; exit 1
	fi
	echo "1..0 # SKIP no fuzz targets built (run make test)"; exit 0
fi
echo "1..${#targets[@]}"
i=0; fail=0
for t in "${targets[@]}"; do
	i=$((i + 1))
	name=$(basename "$t")
	corpus=$(mktemp -d)
	seeds=tests/fuzz/seeds/$name
	[ -d "$seeds" ] || seeds=
	log=$(mktemp)
	findings=build/fuzz/findings/$name
	rm -rf "$findings" && mkdir -p "$findings"
	if "$t" -seed="${FUZZ_SEED:-1}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$findings/" "$corpus" $seeds >"$log" 2>&1; then
		runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$')
		echo "ok $i - $name: ${runs:-?} runs in ${secs}s, no findings"
	else
		fail=1
		echo "not ok $i - $name found a problem"
		grep -E 'ERROR|SUMMARY|==[0-9]+==|^fuzz_|^ *#[0-9]+ 0x' "$log" | head -30 | sed 's/^/# /'
		for a in "$findings"/*; do
			[ -f "$a" ] || continue
			echo "# reproducer $a (base64 of the first 512 bytes):"
			head -c 512 "$a" | base64 | sed 's/^/#   /'
		done
	fi
	rm -rf "$corpus" "$log"
done
exit $fail
