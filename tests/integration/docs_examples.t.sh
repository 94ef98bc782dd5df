#!/usr/bin/env bash
# docs_examples.t.sh - every JSON config example in README.md and docs/ passes
# `edgegated --config FILE --check` (TAP), so the docs cannot drift from config.c.
#
# Each ```json block is one check. A block that is a whole config (an object with "listen")
# is checked as written. Any other block must say what it is on the line before its fence:
#   <!-- example: fragment -->    members of the top-level object (wrapped with a "listen")
#   <!-- example: route -->       one element of "routes"
#   <!-- example: not-config -->  not a config (an answer body, a store record)
# An unmarked block that is not a whole config fails: a new example must be checked too.
# Paths under /etc/edgegate/ are redirected to a temporary directory holding stand-ins
# (a PEM certificate, an EC key, a secret), since --check reads the files a config names.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DAEMON=${EG_DAEMON:-$ROOT/build/edgegated}

. tests/lib/tap.sh

command -v python3 >/dev/null || skip_all "needs python3"
command -v openssl >/dev/null || skip_all "needs openssl"
[ -x "$DAEMON" ] || skip_all "build/edgegated not built"

# --check looks up `user`: the examples name the account the README has the operator
# create first (`useradd --system edgegate`), so this test does that step too.
if ! id edgegate >/dev/null 2>&1; then
	[ "$(id -u)" -eq 0 ] || skip_all "needs the edgegate user (useradd --system edgegate) or root"
	useradd --system --no-create-home --shell /usr/sbin/nologin edgegate 2>/dev/null || id edgegate >/dev/null 2>&1 ||
		skip_all "cannot create the edgegate user"
fi

TMP=$(mktemp -d /tmp/eg-docs-it.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=docs \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null || skip_all "openssl cannot make a certificate"

# Writes one config per block into $TMP/cases/, prints "FILE<TAB>DESC" or "!<TAB>DESC<TAB>PROBLEM".
python3 - "$TMP" README.md docs/*.md docs/providers/*.md > "$TMP/cases.txt" <<'PY'
import json, os, re, shutil, sys
tmp, files = sys.argv[1], sys.argv[2:]
os.makedirs(f"{tmp}/cases", exist_ok=True)
fence = re.compile(r'^([ \t]*)```json[ \t]*\n(.*?)^[ \t]*```', re.S | re.M)
marker = re.compile(r'<!--\s*example:\s*([a-z-]+)\s*-->')

def stand_in(path):
	# Same name under $TMP; the content fits the extension well enough for --check.
	local = tmp + path
	if not os.path.exists(local):
		os.makedirs(os.path.dirname(local), exist_ok=True)
		if path.endswith(('.crt', '.pem')) and 'crl' not in path:
			shutil.copy(f"{tmp}/cert.pem", local)
		elif path.endswith('.key'):
			shutil.copy(f"{tmp}/key.pem", local)
		elif 'crl' in path or path.endswith('.txt'):
			open(local, 'w').write('')
		else:
			open(local, 'w').write('docs-example-secret-0123456789abcdef0123456789\n')
	return local

def redirect(v):
	if isinstance(v, dict):
		return {k: redirect(x) for k, x in v.items()}
	if isinstance(v, list):
		return [redirect(x) for x in v]
	if isinstance(v, str) and v.startswith('/etc/edgegate/'):
		return stand_in(v)
	return v

for f in files:
	text = open(f).read()
	for i, m in enumerate(fence.finditer(text)):
		line = text[:m.start()].count('\n') + 1
		desc = f"{f}:{line}"
		before = text[:m.start()].rstrip('\n').split('\n')[-1]
		mk = marker.search(before)
		kind = mk.group(1) if mk else None
		body = m.group(2)
		try:
			if kind == 'not-config':
				continue
			if kind == 'fragment':
				cfg = json.loads('{"listen": "127.0.0.1:9180",\n' + body + '}')
			elif kind == 'route':
				cfg = {"listen": "127.0.0.1:9180", "routes": [json.loads(body)]}
			elif kind is None:
				cfg = json.loads(body)
				if not (isinstance(cfg, dict) and 'listen' in cfg):
					raise ValueError('not a whole config and not marked <!-- example: fragment|route|not-config -->')
			else:
				raise ValueError(f'unknown marker "{kind}"')
		except ValueError as e:
			print(f"!\t{desc}\t{str(e).splitlines()[0]}")
			continue
		out = f"{tmp}/cases/{len(os.listdir(tmp + '/cases')):03d}.json"
		json.dump(redirect(cfg), open(out, 'w'), indent=1)
		print(f"{out}\t{desc}" + (f" ({kind})" if kind else ""))
PY

checked=0
while IFS=$'\t' read -r file desc problem; do
	if [ "$file" = "!" ]; then nok "$desc is a checkable example" "$problem"; continue; fi
	checked=$((checked + 1))
	if out=$("$DAEMON" --config "$file" --check 2>&1); then ok "$desc passes --check"
	else nok "$desc passes --check" "$(echo "$out" | head -3)"; fi
done < "$TMP/cases.txt"
[ "$checked" -ge 8 ] && ok "found $checked config examples" || nok "found $checked config examples (expected at least 8)"

# The check itself can fail: a documented-looking key that config.c refuses.
printf '{"listen": "127.0.0.1:9180", "revocation": {"flows_per_sesion": 8}}\n' > "$TMP/typo.json"
out=$("$DAEMON" --config "$TMP/typo.json" --check 2>&1)
[ $? -ne 0 ] && grep -q 'revocation.flows_per_sesion' <<<"$out" && ok "a misspelt key fails --check, naming its path" \
	|| nok "a misspelt key fails --check, naming its path" "$out"

# Every key config.c accepts is named in docs/config.md (as `key`, `section.key` or "key"):
# an operator must be able to find what a key does.
missing=$(python3 - userspace/core/config.c docs/config.md <<'PY2'
import re, sys
src, doc = open(sys.argv[1]).read(), open(sys.argv[2]).read()
lists = re.findall(r'static const char \*const keys\[\] = \{(.*?)NULL \}', src, re.S)
keys = sorted({k for l in lists for k in re.findall(r'"([a-z_0-9]+)"', l)})
for k in keys:
	if not re.search(r'`(?:[a-z_]+\.)?' + k + r'`|"' + k + r'"', doc):
		print(k)
PY2
)
keys_found=$(python3 -c 'import re,sys; s=open(sys.argv[1]).read(); print(len(re.findall(r"static const char \*const keys\[\]", s)))' userspace/core/config.c)
if [ "$keys_found" -ge 10 ] && [ -z "$missing" ]; then ok "docs/config.md names every key of the $keys_found key lists in config.c"
else nok "docs/config.md names every key of the $keys_found key lists in config.c" "missing: $(echo $missing)"; fi

# Metric names: every series the code exports is named in README.md or docs/, and every
# documented counter, histogram or gauge of days exists in the code.
metrics=$(python3 - <<'PY2'
import glob, re
code = set()
for f in glob.glob('userspace/**/*.c', recursive=True):
	code |= set(re.findall(r'eg_metric_[a-z_]+\([^,]+,\s*"(edgegate_[a-z_0-9]+)"', open(f).read()))
docs = set()
for f in ['README.md'] + glob.glob('docs/**/*.md', recursive=True):
	docs |= set(re.findall(r'\b(edgegate_[a-z_0-9]+)', open(f).read()))
print(len(code))
for m in sorted(code - docs): print('undocumented:', m)
for m in sorted(d for d in docs - code if re.search(r'_(total|seconds|days)$', d)): print('not exported:', m)
PY2
)
n_metrics=$(head -1 <<<"$metrics")
problems=$(tail -n +2 <<<"$metrics")
if [ "$n_metrics" -ge 20 ] && [ -z "$problems" ]; then ok "the $n_metrics metric names in the code and the docs agree"
else nok "the $n_metrics metric names in the code and the docs agree" "$(echo $problems)"; fi

# The README's nginx example, written exactly as shown (the shipped snippets where it includes
# them from /etc/edgegate/nginx/, a throwaway certificate), passes `nginx -t`.
if command -v nginx >/dev/null; then
	python3 - "$TMP" "$ROOT" > "$TMP/nginx.conf" <<'PY2'
import re, sys
tmp, root = sys.argv[1], sys.argv[2]
m = re.search(r'```nginx\n(http \{.*?)```', open('README.md').read(), re.S)
conf = m.group(1) if m else ''
conf = conf.replace('/etc/edgegate/nginx/', root + '/tools/nginx/')
conf = re.sub(r'ssl_certificate\s+\S+;', f'ssl_certificate {tmp}/cert.pem;', conf)
conf = re.sub(r'ssl_certificate_key\s+\S+;', f'ssl_certificate_key {tmp}/key.pem;', conf)
print(f'error_log {tmp}/nginx.err;\npid {tmp}/nginx.pid;\nevents {{}}\n' + conf)
PY2
	if grep -q 'edgegate-protect.conf' "$TMP/nginx.conf" && out=$(nginx -t -q -p "$TMP" -c "$TMP/nginx.conf" 2>&1); then
		ok "the README's nginx example passes nginx -t"
	else nok "the README's nginx example passes nginx -t" "$out"; fi
else
	nok "the README's nginx example passes nginx -t" "nginx is not installed (tools/deps.sh)"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
