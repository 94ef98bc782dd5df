#!/usr/bin/env bash
# run.sh - `make demo`: a protected sample app on loopback, no docker, no external IdP.
#   a local OpenID Provider (npm oidc-provider, login form accepts any user/password)
#   an upstream that echoes the request headers it receives
#   nginx with the shipped include (tools/nginx/)
#   edgegated (build/edgegated)
# Prints the URL to open and the login to use; Ctrl-C stops everything it started.
# Ports: DEMO_PORT (nginx, default 8080); the others are picked free.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d node_modules/oidc-provider ] || { echo "demo: node_modules missing; run 'make deps' first" >&2; exit 1; }
command -v nginx >/dev/null || { echo "demo: nginx not installed; run 'make deps' first" >&2; exit 1; }
export EDGEGATED=${EDGEGATED:-$PWD/build/edgegated}
[ -x "$EDGEGATED" ] || { echo "demo: $EDGEGATED missing; run 'make' first" >&2; exit 1; }
exec node tools/demo/demo.mjs "$@"
