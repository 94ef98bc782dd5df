# tap.sh - TAP helpers for the shell integration tests (source it).
#   ok DESC | nok DESC [DIAG] | check DESC COMMAND... | skip_all REASON | tap_done
# skip_all fails under CI=true: a test that cannot run in CI is a failure there.
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# $2"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
skip_all() {
	if [ "${CI:-}" = true ]; then echo "1..1"; echo "not ok 1 - $1 (CI=true)"; exit 1; fi
	echo "1..0 # SKIP $1"; exit 0
}

# A TCP port on 127.0.0.1 nothing listens on now (the kernel's pick, not one derived from a pid).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
