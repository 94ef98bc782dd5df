#!/usr/bin/env bash
# privdrop.t.sh - privilege separation as deployed (docs/privsep.md): edgegated started as
# root with `user` and an XDP gate on a veth, and again without `user` (the lab setting).
# Every thread of every edgegated process is read from /proc/PID/task/*/status:
#   - the daemon proper (HTTP, admin, GC threads): CapEff/CapPrm/CapInh/CapAmb all 0,
#     Uid the configured user (0 without one), NoNewPrivs 1; its BPF map fds read-only,
#     no BPF program fd;
#   - the privileged process: one thread, CAP_NET_ADMIN alone (permitted = effective),
#     nothing inheritable or ambient, the configured user, NoNewPrivs 1.
# Then the gate still takes a deny through the privileged process, refuses to delete the
# config's static deny, and SIGTERM ends both.
set -uo pipefail
cd "$(dirname "$0")/../.."
DAEMON=${EG_DAEMON:-$PWD/build/asan/edgegated}
CTL=${EG_CTL:-$PWD/build/asan/edgegatectl}
. tests/lib/tap.sh
[ "$(id -u)" = 0 ] || skip_all "needs root to drop privileges"
command -v ip >/dev/null || skip_all "needs ip"
[ -x "$DAEMON" ] && [ -x "$CTL" ] || skip_all "$DAEMON / $CTL not built"
ID=$$
TMP=$(mktemp -d /tmp/eg-privdrop.XXXXXX)
chmod 755 "$TMP"
NS=egpd-$ID HV=egpdh$ID CV=egpdp$ID
NET=198.19.$((60 + ID % 150))
PIN=/sys/fs/bpf/edgegate-pd-$ID
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && reap "$PID"
	ip link del "$HV" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	[ "$fails" = 0 ] || cat "$TMP"/log* >&2
	rm -rf "$TMP" "$PIN"
}
trap cleanup EXIT
ip netns add "$NS"
ip link add "$HV" type veth peer name "$CV" netns "$NS"
ip addr add "$NET.1/24" dev "$HV"
ip link set "$HV" up
ip -n "$NS" link set "$CV" up

NET_ADMIN=0000000000001000 # 1 << CAP_NET_ADMIN (12)
ZERO=0000000000000000
# the nginx profile's headers, as tools/nginx/edgegate.conf sends them
NGX=(-H 'X-Original-URI: /public/x' -H 'X-Original-Method: GET' -H 'Host: app.test' -H 'X-Forwarded-Proto: https' -H 'X-Real-IP: 198.18.0.10')

# field PID TID NAME -> value (first column) from the thread's status
field() { awk -v k="$3:" '$1 == k {print $2}' "/proc/$1/task/$2/status"; }

# check_threads PID WANT_UID WANT_CAPS LABEL: every thread of PID
check_threads() {
	local pid=$1 uid=$2 caps=$3 label=$4 bad="" nt=0
	NTHREADS=0
	[ -n "$pid" ] && [ -d "/proc/$pid/task" ] || { nok "$label" "no process '$pid'"; return; }
	for t in /proc/"$pid"/task/*; do
		t=${t##*/}
		nt=$((nt + 1))
		for f in CapEff CapPrm; do
			[ "$(field "$pid" "$t" $f)" = "$caps" ] || bad="$bad $t:$f=$(field "$pid" "$t" $f)"
		done
		for f in CapInh CapAmb; do
			[ "$(field "$pid" "$t" $f)" = "$ZERO" ] || bad="$bad $t:$f=$(field "$pid" "$t" $f)"
		done
		[ "$(field "$pid" "$t" NoNewPrivs)" = 1 ] || bad="$bad $t:NoNewPrivs"
		u=$(awk '$1 == "Uid:" {print $2 "," $3 "," $4 "," $5}' "/proc/$pid/task/$t/status")
		[ "$u" = "$uid,$uid,$uid,$uid" ] || bad="$bad $t:Uid=$u"
	done
	if [ -z "$bad" ]; then ok "$label: $nt thread(s), uid $uid, caps $caps"; else nok "$label" "$bad"; fi
	NTHREADS=$nt
}

# no writable BPF map fd and no BPF program fd in PID
check_bpf_fds() {
	local pid=$1 label=$2 maps=0 bad=""
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || { nok "$label" "no process '$pid'"; return; }
	for fi in /proc/"$pid"/fdinfo/*; do
		if grep -q '^map_type:' "$fi" 2>/dev/null; then
			maps=$((maps + 1))
			fl=$(awk '$1 == "flags:" {print $2}' "$fi")
			[ $((8#$fl & 3)) = 0 ] || bad="$bad map fd ${fi##*/} flags $fl"
		fi
		grep -q '^prog_type:' "$fi" 2>/dev/null && bad="$bad prog fd ${fi##*/}"
	done
	if [ -z "$bad" ] && [ "$maps" -gt 0 ]; then ok "$label: $maps BPF map fds, all read-only, no program"
	else nok "$label" "maps=$maps$bad"; fi
}

# Both processes log " ready ("; the daemon proper's line comes last. 60 s: each start
# creates or opens the gate's maps, slow on a cold two-core machine.
wait_ready() { for _ in $(seq 600); do grep -qE 'edgegated [^ ]+ ready \(' "$TMP/log" && return; sleep 0.1; done; }
# Waits up to 10 s for PID to end, then kills it: a test never hangs on a wait.
# The exit status lands in REAPED (137 when it had to be killed).
reap() {
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$1" 2>/dev/null && { echo "# $1 still running after 10 s: SIGKILL"; kill -9 "$1"; }
	wait "$1" 2>/dev/null; REAPED=$?
}

run_case() { # USER_JSON WANT_UID LABEL
	local userjson=$1 uid=$2 label=$3 port
	port=$(free_port)
	rm -rf "$TMP/state" "$PIN"
	cat >"$TMP/c.json" <<EOF2
{"listen": ["127.0.0.1:$port", "unix:$TMP/auth.sock"], "admin_socket": "$TMP/admin.sock",
 "state_dir": "$TMP/state", $userjson "routes": [{"path": "/public/", "auth": "public"}],
 "gate": {"interfaces": ["$HV"], "xdp_mode": "generic", "pin_root": "$PIN", "protected_ports": [8443], "deny": ["$NET.77"]}}
EOF2
	ASAN_OPTIONS=detect_leaks=0 "$DAEMON" --config "$TMP/c.json" >"$TMP/log" 2>&1 &
	PID=$!
	wait_ready
	cp "$TMP/log" "$TMP/log-start-${uid}"
	code=$(curl -s -o /dev/null -w '%{http_code}' "${NGX[@]}" "http://127.0.0.1:$port/auth")
	check "$label: answers on TCP" [ "$code" = 200 ]
	code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$TMP/auth.sock" "${NGX[@]}" http://x/auth)
	check "$label: answers on the unix socket" [ "$code" = 200 ]
	kids=$(pgrep -P "$PID" -x edgegated | tr '\n' ' ')
	check "$label: two processes, the privileged one ($PID) and one child ($kids)" [ "$(echo $kids | wc -w)" = 1 ]
	HTTP=${kids%% *}
	check_threads "$HTTP" "$uid" "$ZERO" "$label: daemon process, every thread without capabilities"
	check "$label: the daemon process has its threads (HTTP, admin, GC: $NTHREADS)" [ "$NTHREADS" -ge 4 ]
	check_threads "$PID" "$uid" "$NET_ADMIN" "$label: privileged process keeps CAP_NET_ADMIN alone"
	check "$label: the privileged process is single-threaded" [ "$NTHREADS" = 1 ]
	check_bpf_fds "$HTTP" "$label: daemon process"
	st=$("$CTL" --config "$TMP/c.json" status --json 2>&1)
	check "$label: edgegatectl reaches the daemon, its gate view is attached" python3 -c "import json,sys; s=json.loads(sys.argv[1]); g=s['gate']; assert s['pid'] and g['loaded'] and g['interfaces'][0]['name']=='$HV', s" "$st"
	out=$("$CTL" --config "$TMP/c.json" deny add "$NET.9" 2>&1)
	check "$label: deny add goes through the privileged process ($out)" bash -c \
		"'$CTL' --config '$TMP/c.json' deny list | grep -q '$NET.9'"
	# the note (--reason text) travels in RULE_PUT; the privileged process, already `user`,
	# writes it under the writers' lock (flock on an fd it opened before the drop)
	out=$("$CTL" --config "$TMP/c.json" deny add "$NET.10" --ttl 1h --reason "privsep note $uid" 2>&1)
	check "$label: deny add --reason TEXT keeps the note through the privileged process ($out)" bash -c \
		"'$CTL' --config '$TMP/c.json' deny list | grep -Eq '^${NET//./\\.}\\.10 +manual .*privsep note $uid\$'"
	out=$("$CTL" --config "$TMP/c.json" deny del "$NET.10" 2>&1)
	check "$label: deny del goes through the privileged process ($out)" bash -c \
		"! '$CTL' --config '$TMP/c.json' deny list | grep -q '^$NET.10 '"
	out=$("$CTL" --config "$TMP/c.json" deny add 10.0.0.0/4 2>&1)
	check "$label: the privileged process refuses a /4 ($out)" bash -c \
		"! '$CTL' --config '$TMP/c.json' deny list | grep -q '10.0.0.0'"
	# the config's static deny: the daemon proper cannot delete it (a compromised one neither)
	out=$("$CTL" --config "$TMP/c.json" deny del "$NET.77" 2>&1)
	rc=$?
	check "$label: deny del of the static $NET.77 is refused (rc $rc: $out)" bash -c "[ $rc != 0 ] && grep -q 'static entry' <<<'$out'"
	check "$label: ... and $NET.77 is still denied as static" bash -c \
		"'$CTL' --config '$TMP/c.json' deny list | grep -Eq '^${NET//./\\.}\\.77 +static'"
	if [ "$uid" != 0 ]; then # one daemon per pin root: another state_dir and sockets, same gate
		sed -e "s|$TMP/state|$TMP/state2|; s|$TMP/auth.sock|$TMP/auth2.sock|; s|$TMP/admin.sock|$TMP/admin2.sock|; s|127.0.0.1:$port|127.0.0.1:$(free_port)|" \
			"$TMP/c.json" >"$TMP/c2.json"
		timeout 20 env ASAN_OPTIONS=detect_leaks=0 "$DAEMON" --config "$TMP/c2.json" >"$TMP/log2" 2>&1
		rc=$?
		check "$label: a second daemon on the same pin root refuses (rc $rc)" [ "$rc" != 0 -a "$rc" != 124 ]
		check "$label: ... saying the pin root is in use" grep -q "gate.pin_root $PIN is in use by another edgegated" "$TMP/log2"
		check "$label: the first keeps its gate attached" bash -c "ip -d link show '$HV' | grep -q 'prog/xdp'"
		code=$(curl -s -o /dev/null -w '%{http_code}' "${NGX[@]}" "http://127.0.0.1:$port/auth")
		check "$label: ... and keeps answering" [ "$code" = 200 ]
	fi
	kill -HUP "$PID" # systemctl reload signals the MainPID: the privileged process
	for _ in $(seq 30); do grep -q "SIGHUP: caches flushed" "$TMP/log" && break; sleep 0.1; done
	check "$label: SIGHUP to the privileged process reaches the daemon" grep -q "SIGHUP: caches flushed" "$TMP/log"
	kill "$PID"; reap "$PID"; rc=$REAPED; PID=
	check "$label: exits 0 on SIGTERM (rc $rc)" [ "$rc" = 0 ]
	check "$label: the child is gone too" bash -c "! kill -0 $HTTP 2>/dev/null"
	check "$label: the gate was detached" bash -c "! ip -d link show '$HV' | grep -q xdp"
}

# When either process dies the other exits (systemd then restarts both).
dies_with() { # WHICH(priv|child) LABEL [USER_JSON]
	local port http
	port=$(free_port)
	rm -rf "$TMP/state"
	cat >"$TMP/c.json" <<EOF2
{"listen": "127.0.0.1:$port", "admin_socket": "$TMP/admin.sock", "state_dir": "$TMP/state", ${3:-}
 "routes": [{"path": "/public/", "auth": "public"}],
 "gate": {"interfaces": ["$HV"], "xdp_mode": "generic", "pin_root": "$PIN", "protected_ports": [8443]}}
EOF2
	ASAN_OPTIONS=detect_leaks=0 "$DAEMON" --config "$TMP/c.json" >"$TMP/log" 2>&1 &
	PID=$!
	wait_ready
	http=$(pgrep -P "$PID" -x edgegated)
	if [ -z "$http" ]; then # never kill '' and wait on a process that will not end
		nok "$2: the daemon process started (no child of $PID)" "$(tail -5 "$TMP/log" | tr '\n' ' ')"
		reap "$PID"; PID=
		return
	fi
	if [ "$1" = child ]; then
		kill -9 "$http"
		reap "$PID"; rc=$REAPED
		check "$2: the privileged process exits non-zero (rc $rc)" [ "$rc" != 0 ]
		check "$2: ... and detaches the gate" bash -c "! ip -d link show '$HV' | grep -q 'prog/xdp'"
	else
		kill -9 "$PID"; reap "$PID"
		for _ in $(seq 30); do kill -0 "$http" 2>/dev/null || break; sleep 0.1; done
		check "$2: the daemon process exits within 3 s" bash -c "! kill -0 $http 2>/dev/null"
		ip link set dev "$HV" xdp off 2>/dev/null; ip link set dev "$HV" xdpgeneric off 2>/dev/null
	fi
	PID=
}

NOBODY=$(id -u nobody)
run_case '"user": "nobody",' "$NOBODY" "user nobody"
check "logs the drop" grep -q "running as nobody with no capabilities in any thread" "$TMP/log"
run_case '' 0 "no user"
dies_with child "kill -9 of the daemon process"
dies_with priv "kill -9 of the privileged process"
dies_with priv "kill -9 of the privileged process (user nobody)" '"user": "nobody",'

echo "1..$n"
[ "$fails" = 0 ]
