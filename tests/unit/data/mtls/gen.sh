#!/usr/bin/env bash
# gen.sh - regenerates the certificates test_mtls.c uses (committed as files; CI never
# runs this). Long validity on purpose: unit tests must not start failing one day.
#   tests/unit/data/mtls/gen.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tool=$here/../../../../tools/mtls/edgegate-mtls
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pki=$work/pki
days=36500

"$tool" --dir "$pki" init --name "edgegate test CA" --days $((days + 10)) >/dev/null
"$tool" --dir "$pki" issue-client client --days $days \
	--san DNS:svc-a.example.test --san email:svc-a@example.test \
	--san URI:spiffe://example.test/ns/a/sa/b --san IP:127.0.0.1 --san IP:::1 >/dev/null
"$tool" --dir "$pki" issue-client plain --days $days >/dev/null
"$tool" --dir "$pki" issue-client revoked --days $days >/dev/null
"$tool" --dir "$pki" revoke revoked >/dev/null
openssl crl -in "$pki/ca/crl.pem" -outform DER -out "$work/crl.der"

# a second, unrelated CA whose certificate reuses the same serial space
"$tool" --dir "$work/other" init --name "some other CA" --days $((days + 10)) >/dev/null
"$tool" --dir "$work/other" issue-client stranger --days $days --san URI:spiffe://example.test/ns/a/sa/b >/dev/null

# "twin": the other CA, the same serial number as the revoked certificate; a CRL
# entry is for one issuer's serial only
serial=$(openssl x509 -in "$pki/certs/revoked.crt" -noout -serial | cut -d= -f2)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/twin.key" 2>/dev/null
openssl req -new -key "$work/twin.key" -subj "/O=edgegate/CN=revoked" -out "$work/twin.csr"
openssl x509 -req -in "$work/twin.csr" -CA "$work/other/ca/ca.crt" -CAkey "$work/other/ca/ca.key" \
	-set_serial "0x$serial" -days $days -out "$work/twin.crt" 2>/dev/null

# expired and not-yet-valid certificates: openssl ca with explicit dates
cnf=$pki/ca/ca.cnf
mk() { # name start end
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$1.key" 2>/dev/null
	openssl req -new -key "$work/$1.key" -subj "/O=edgegate/CN=$1" -out "$work/$1.csr"
	openssl ca -batch -notext -config "$cnf" -in "$work/$1.csr" -out "$work/$1.crt" \
		-startdate "$2" -enddate "$3" 2>/dev/null
}
mk expired 20200101000000Z 20200102000000Z
mk future 21200101000000Z 21250101000000Z

cp "$pki/ca/ca.crt" "$here/ca.crt"
cp "$pki/ca/crl.pem" "$here/crl.pem"
cp "$work/crl.der" "$here/crl.der"
for n in client plain revoked; do cp "$pki/certs/$n.crt" "$here/$n.crt"; done
cp "$work/other/certs/stranger.crt" "$here/stranger.crt"
cp "$work/other/ca/ca.crt" "$here/other-ca.crt"
cp "$work/expired.crt" "$work/future.crt" "$work/twin.crt" "$here/"
# the expected values the tests compare with, computed by the openssl CLI
for n in client plain revoked stranger expired future twin; do
	openssl x509 -in "$here/$n.crt" -outform DER | openssl dgst -sha256 -r | awk '{print "sha256:" $1}' >"$here/$n.fp"
	openssl x509 -in "$here/$n.crt" -pubkey -noout | openssl pkey -pubin -outform DER |
		openssl dgst -sha256 -r | awk '{print "sha256:" $1}' >"$here/$n.spki"
	openssl x509 -in "$here/$n.crt" -outform DER | openssl dgst -sha256 -binary | basenc --base64url | tr -d '=\n' >"$here/$n.x5t"
done
echo "regenerated the test certificates in $here"
