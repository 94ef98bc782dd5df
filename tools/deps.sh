#!/usr/bin/env bash
# deps.sh - installs what building, testing and the demo need. Idempotent: it only
# calls apt-get when a package is missing, and npm ci only when the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
	build-essential pkg-config clang llvm lld libclang-rt-14-dev
	libmicrohttpd-dev libjansson-dev libsimdjson-dev libcurl4-openssl-dev libssl-dev
	libbpf-dev libelf-dev zlib1g-dev linux-libc-dev bpftool
	liblmdb-dev libhiredis-dev libcap-dev libcmocka-dev libicu-dev
	nginx caddy redis-server redis-sentinel chromium iproute2 iputils-ping nftables
	curl jq openssl procps psmisc wrk python3 python3-cryptography ethtool nodejs npm
	xdp-tools libxdp-dev
	qemu-system-x86 busybox-static cpio
)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# node/npm may come from outside Debian (nodesource, nvm): accept them when present.
if command -v node >/dev/null && command -v npm >/dev/null; then
	filtered=()
	for p in "${missing[@]}"; do
		case "$p" in nodejs|npm) ;; *) filtered+=("$p") ;; esac
	done
	missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian nginx package starts a system nginx on :80; tests start their own.
if command -v systemctl >/dev/null 2>&1; then
	for unit in nginx caddy redis-server redis-sentinel; do # one at a time: a missing unit fails the call
		$SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
	done
fi

stamp=node_modules/.edgegate-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
	echo "deps: npm ci"
	npm ci --no-audit --no-fund --loglevel=error
	cp package-lock.json "$stamp"
fi
echo "deps: ok"
