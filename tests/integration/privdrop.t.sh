#!/usr/bin/env bash
# privdrop.t.sh - edgegated started as root with `user` binds its listeners, then runs
# as that user keeping only CAP_NET_ADMIN (socket destroy), and still answers.
set -uo pipefail
cd "$(dirname "$0")/../.."
DAEMON=${EG_DAEMON:-$PWD/build/asan/edgegated}
. tests/lib/tap.sh
[ "$(id -u)" = 0 ] || skip_all "needs root to drop privileges"
TMP=$(mktemp -d /tmp/eg-privdrop.XXXXXX)
chmod 755 "$TMP"
PORT=$((21000 + $$ % 20000))
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
cat >"$TMP/c.json" <<EOF2
{"listen": ["127.0.0.1:$PORT", "unix:$TMP/auth.sock"], "admin_socket": "$TMP/admin.sock",
 "state_dir": "$TMP/state", "user": "nobody", "routes": [{"path": "/public/", "auth": "public"}]}
EOF2
ASAN_OPTIONS=detect_leaks=0 "$DAEMON" --config "$TMP/c.json" >"$TMP/log" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
# the nginx profile's headers, as tools/nginx/edgegate.conf sends them
NGX=(-H 'X-Original-URI: /public/x' -H 'X-Original-Method: GET' -H 'Host: app.test' -H 'X-Forwarded-Proto: https' -H 'X-Real-IP: 198.18.0.10')
code=$(curl -s -o /dev/null -w '%{http_code}' "${NGX[@]}" "http://127.0.0.1:$PORT/auth")
check "answers on TCP after the privilege drop" [ "$code" = 200 ]
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$TMP/auth.sock" "${NGX[@]}" http://x/auth)
check "answers on the unix socket after the privilege drop" [ "$code" = 200 ]
user=$(ps -o user= -p "$PID" | tr -d ' ')
check "runs as the configured user (got $user)" [ "$user" = nobody ]
eff=$(awk '/^CapEff/ {print $2}' "/proc/$PID/status")
check "keeps only CAP_NET_ADMIN (CapEff $eff)" [ "$eff" = 0000000000001000 ]
nnp=$(awk '/^NoNewPrivs/ {print $2}' "/proc/$PID/status")
check "no_new_privs is set" [ "$nnp" = 1 ]
check "logs the drop" grep -q "running as nobody" "$TMP/log"
kill "$PID"; wait "$PID"; rc=$?; PID=
check "exits 0 on SIGTERM (rc $rc)" [ "$rc" = 0 ]
echo "1..$n"
[ "$fails" = 0 ]
