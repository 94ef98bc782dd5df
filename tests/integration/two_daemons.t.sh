#!/usr/bin/env bash
# two_daemons.t.sh - one edgegated per state_dir, per socket and per pin root (issue 11):
# a second daemon started with the same config refuses with a clear message, the first
# keeps serving on TCP, on its unix socket and on its admin socket, and a daemon with
# another state_dir but the same sockets refuses too. A stale socket left by a killed
# daemon does not stop the next start; on exit a daemon removes only its own sockets.
set -uo pipefail
cd "$(dirname "$0")/../.."
DAEMON=${EG_DAEMON:-$PWD/build/asan/edgegated}
CTL=${EG_CTL:-$PWD/build/asan/edgegatectl}
. tests/lib/tap.sh
[ -x "$DAEMON" ] && [ -x "$CTL" ] || skip_all "$DAEMON / $CTL not built"
TMP=$(mktemp -d /tmp/eg-two.XXXXXX)
PORT=$(free_port)
P1= P2=
# the nginx profile's headers, as tools/nginx/edgegate.conf sends them
NGX=(-H 'X-Original-URI: /public/x' -H 'X-Original-Method: GET' -H 'Host: app.test' -H 'X-Forwarded-Proto: https' -H 'X-Real-IP: 198.18.0.10')
cleanup() {
	for p in $P1 $P2; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
conf() { # FILE STATE_DIR TCP_PORT
	cat >"$1" <<EOF2
{"listen": ["127.0.0.1:$3", "unix:$TMP/auth.sock"], "admin_socket": "$TMP/admin.sock",
 "state_dir": "$2", "routes": [{"path": "/public/", "auth": "public"}]}
EOF2
}
answers() { # -> 0 when the first daemon answers on TCP, the unix socket and the admin socket
	[ "$(curl -s -o /dev/null -w '%{http_code}' "${NGX[@]}" "http://127.0.0.1:$PORT/auth")" = 200 ] &&
		[ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$TMP/auth.sock" "${NGX[@]}" http://x/auth)" = 200 ] &&
		"$CTL" --config "$TMP/a.json" status --json | grep -q "\"pid\": *$1"
}
start() { # CONF LOG -> PID in $!
	ASAN_OPTIONS=detect_leaks=0 "$DAEMON" --config "$1" >"$2" 2>&1 &
}
conf "$TMP/a.json" "$TMP/state" "$PORT"
start "$TMP/a.json" "$TMP/a.log"; P1=$!
for _ in $(seq 300); do grep -q ' ready (' "$TMP/a.log" && break; sleep 0.1; done
HTTP1=$(pgrep -P "$P1" -x edgegated)
check "the first daemon serves" answers "$HTTP1"

timeout 20 env ASAN_OPTIONS=detect_leaks=0 "$DAEMON" --config "$TMP/a.json" >"$TMP/b.log" 2>&1
rc=$?
check "a second daemon with the same config exits non-zero (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]
check "... saying why" grep -q "another edgegated pid $P1 is running with state_dir $TMP/state" "$TMP/b.log"
check "the first still serves (TCP, unix socket, admin socket)" answers "$HTTP1"

conf "$TMP/c.json" "$TMP/state2" "$(free_port)"
timeout 20 env ASAN_OPTIONS=detect_leaks=0 "$DAEMON" --config "$TMP/c.json" >"$TMP/c.log" 2>&1
rc=$?
check "another state_dir but the same sockets: refused too (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]
check "... saying the socket is another daemon's" grep -q "another edgegated serves it; not taking it over" "$TMP/c.log"
check "the first still serves after that" answers "$HTTP1"

kill -9 "$P1" "$HTTP1"; wait "$P1" 2>/dev/null; P1=
for _ in $(seq 50); do kill -0 "$HTTP1" 2>/dev/null || break; sleep 0.1; done
check "after kill -9 the stale sockets are still there" [ -S "$TMP/auth.sock" -a -S "$TMP/admin.sock" ]
start "$TMP/a.json" "$TMP/d.log"; P2=$!
for _ in $(seq 300); do grep -q ' ready (' "$TMP/d.log" && break; sleep 0.1; done
HTTP2=$(pgrep -P "$P2" -x edgegated)
check "a restart replaces the stale sockets and serves" answers "$HTTP2"
kill "$P2"; wait "$P2"; rc=$?; P2=
check "it exits 0 on SIGTERM (rc $rc)" [ "$rc" = 0 ]
check "and removes the sockets it created" [ ! -e "$TMP/auth.sock" -a ! -e "$TMP/admin.sock" ]
echo "1..$n"
[ "$fails" = 0 ] || { tail -n 5 "$TMP"/*.log >&2; false; }
