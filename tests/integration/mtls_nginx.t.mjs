#!/usr/bin/env node
// mtls_nginx.t.mjs - client certificates end to end with real nginx and TLS on loopback,
// certificates made by tools/mtls/edgegate-mtls and nginx snippets it writes:
// a verified certificate passes (identity headers reach the upstream), no certificate
// -> 401, another CA's certificate is refused by nginx, SAN mismatch -> 403, a
// certificate revoked while everything runs -> 403 (edgegated reloads the list, nginx
// is not reloaded), an RFC 8705 certificate-bound token with the wrong certificate ->
// 401, and nginx -> upstream over mTLS where the upstream verifies nginx's certificate.
// edgegated caches the outcome of a certificate header: the same certificate twice gives
// the same answer from the cache, and a certificate cached as allowed is refused once a
// CRL naming it is loaded.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import * as jose from 'jose';
import {
  ROOT, ok, is, done, guard, diag, freePort, portOpen, startEcho, startEdgegated, startNginx, request, tmpdir, sleep, waitFor,
} from '../lib/harness.mjs';

guard(120000);

const TOOL = path.join(ROOT, 'tools/mtls/edgegate-mtls');
const SPIFFE_A = 'spiffe://example.test/ns/a/sa/b';
const ISS = 'https://idp.example.test';
const AUD = 'api://svc';

const dir = tmpdir('mtls-');
const pki = path.join(dir, 'pki');
const other = path.join(dir, 'other');
const tool = (...args) => execFileSync(TOOL, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

// --- certificates, with the tool --------------------------------------------------------------
try {
  tool('--dir', pki, 'init', '--name', 'test CA');
  tool('--dir', pki, 'issue-client', 'alice', '--san', `URI:${SPIFFE_A}`, '--san', 'email:alice@example.test');
  tool('--dir', pki, 'issue-client', 'bob', '--san', 'URI:spiffe://example.test/ns/x/sa/y');
  tool('--dir', pki, 'issue-client', 'carol', '--san', `URI:${SPIFFE_A}`);
  tool('--dir', pki, 'issue-client', 'dave', '--san', `URI:${SPIFFE_A}`);
  tool('--dir', pki, 'issue-client', 'nginx-proxy', '--hours', '48');
  tool('--dir', pki, 'issue-server', '127.0.0.1', '--name', 'front');
  tool('--dir', pki, 'issue-server', 'upstream.internal', '--name', 'upstream');
  tool('--dir', other, 'init', '--name', 'other CA');
  tool('--dir', other, 'issue-client', 'mallory', '--san', `URI:${SPIFFE_A}`);
  tool('--dir', pki, 'nginx-snippets', '--server', 'front', '--proxy-client', 'nginx-proxy',
    '--upstream-server', 'upstream', '--verify', 'optional');
} catch (e) {
  ok(false, 'edgegate-mtls made the certificates', `${e.message}\n${e.stderr}`);
  await done();
}
ok(true, 'edgegate-mtls made a CA, client and server certificates and nginx snippets');
const certOf = (d, n) => ({
  cert: fs.readFileSync(path.join(d, 'certs', `${n}.crt`)),
  key: fs.readFileSync(path.join(d, 'certs', `${n}.key`)),
});
const ca = fs.readFileSync(path.join(pki, 'ca/ca.crt'));
const alice = certOf(pki, 'alice');
const bob = certOf(pki, 'bob');
const carol = certOf(pki, 'carol');
const dave = certOf(pki, 'dave');
const mallory = certOf(other, 'mallory');
const fpAlice = tool('--dir', pki, 'fingerprint', 'alice').trim();
const x5t = (pem) => Buffer.from(
  fs.readFileSync(pem).toString().replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const thumb = (n) => crypto.createHash('sha256').update(x5t(path.join(pki, 'certs', `${n}.crt`))).digest('base64url');

// --- bearer keys (jose) ---------------------------------------------------------------------------
const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
const jwksFile = path.join(dir, 'jwks.json');
fs.writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
async function mint(claims = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ sub: 'svc-client', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
    .setIssuer(ISS).setAudience(AUD).setIssuedAt(now).setExpirationTime(now + 600).sign(privateKey);
}

// --- edgegated, the echo app, nginx ---------------------------------------------------------------
const echo = await startEcho();
const egdPort = await freePort();
const frontCert = path.join(pki, 'certs/front.crt');
// edgegated's CRL: a copy, replaced by the test (the tool's own CRL is nginx's)
const crlCopy = path.join(dir, 'crl-edgegated.pem');
fs.copyFileSync(path.join(pki, 'ca/crl.pem'), crlCopy);
let egd;
fs.mkdirSync(path.join(dir, 'egd'));
fs.mkdirSync(path.join(dir, 'ngx'));
try {
  egd = await startEdgegated({
    listen: `127.0.0.1:${egdPort}`,
    jwt: { jwks_file: jwksFile, issuer: ISS, audience: AUD },
    mtls: { revoked_file: path.join(pki, 'revoked.txt'), crl_files: [crlCopy], cert_files: [frontCert] },
    routes: [
      { path: '/svc/', auth: 'mtls', allow: { cert_sans: [`URI:${SPIFFE_A}`] } },
      { path: '/api/', auth: 'mtls' },
      { path: '/subj/', auth: 'mtls', allow: { cert_subjects: ['CN=alice,O=edgegate'] } },
      { path: '/up/', auth: 'mtls' },
    ],
  }, { dir: path.join(dir, 'egd') });
} catch (e) {
  ok(false, 'edgegated started', e.message);
  await done();
}

const port = await freePort();
const upPort = await freePort();
const portNoCa = await freePort();
const snip = (n) => `include ${path.join(pki, 'nginx', n)};`;
let ngx;
try {
  ngx = await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream app { server 127.0.0.1:${echo.port}; }
  server {
    listen 127.0.0.1:${port} ssl;
    ${snip('mtls-server.conf')}
    {{EDGEGATE_INCLUDE}}
    location /up/ {
      {{EDGEGATE_PROTECT}}
      proxy_pass https://127.0.0.1:${upPort};
      ${snip('mtls-proxy.conf')}
    }
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://app;
    }
  }
  # optional_no_ca: nginx lets a failed verification through as $ssl_client_verify
  # FAILED:... (expired, other CA, self-signed), with the certificate in
  # $ssl_client_escaped_cert; edgegated must take no identity from it
  server {
    listen 127.0.0.1:${portNoCa} ssl;
    ssl_certificate ${path.join(pki, 'certs/front.chain.crt')};
    ssl_certificate_key ${path.join(pki, 'certs/front.key')};
    ssl_client_certificate ${path.join(pki, 'ca/ca.crt')};
    ssl_verify_client optional_no_ca;
    ssl_verify_depth 2;
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://app;
    }
  }
  # the upstream: its own TLS server that accepts only clients of our CA
  server {
    listen 127.0.0.1:${upPort} ssl;
    ${snip('mtls-upstream.conf')}
    location / {
      add_header X-Upstream-Client-Verify $ssl_client_verify always;
      add_header X-Upstream-Client-DN $ssl_client_s_dn always;
      return 200 "upstream ok\\n";
    }
  }`, { edgegate: `127.0.0.1:${egdPort}`, waitPort: port, dir: path.join(dir, 'ngx') });
} catch (e) {
  ok(false, 'nginx started', e.message);
  await done();
}
await waitFor(() => portOpen(upPort), { what: 'upstream TLS server' });

// an HTTPS request with or without a client certificate
function tls(p, { client, headers = {}, port: pt = port, servername } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: pt, path: p, method: 'GET', headers, ca, agent: false,
      ...(servername ? { servername } : {}),
      ...(client ? { cert: client.cert, key: client.key } : {}),
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}
const seen = (r) => { try { return JSON.parse(r.body).headers; } catch { return {}; } };

// --- the checks ----------------------------------------------------------------------------------
let r = await tls('/svc/hello', { client: alice });
is(r.status, 200, 'valid certificate with the required SPIFFE SAN -> 200');
let h = seen(r);
is(h['x-auth-request-cert-subject'], 'CN=alice,O=edgegate', 'upstream sees the certificate subject (RFC 4514)');
is(h['x-auth-request-cert-fingerprint'], fpAlice, 'upstream sees the sha256 fingerprint, same as edgegate-mtls fingerprint');
ok((h['x-auth-request-cert-sans'] || '').includes(`URI:${SPIFFE_A}`), 'upstream sees the SANs', h);
is(h['x-auth-request-user'], 'CN=alice,O=edgegate', 'certificate-only identity: X-Auth-Request-User is the subject');

r = await tls('/svc/hello');
is(r.status, 401, 'no client certificate on an mtls route -> 401');

r = await tls('/svc/hello', { client: bob });
is(r.status, 403, 'verified certificate whose SAN does not match the route -> 403');

let refused;
try {
  r = await tls('/svc/hello', { client: mallory });
  refused = r.status === 400 ? 'nginx 400' : `status ${r.status}`;
} catch (e) {
  refused = `TLS error: ${e.code || e.message}`;
}
ok(/^nginx 400|^TLS error/.test(refused), `certificate from another CA is refused by nginx (${refused})`);

// forged certificate headers from the client never count: nginx overwrites them
r = await tls('/svc/hello', { headers: { 'X-SSL-Client-Verify': 'SUCCESS', 'X-SSL-Client-Cert': 'x' } });
is(r.status, 401, 'client-sent X-SSL-Client-* headers are ignored (overwritten by nginx)');
// --- adversarial audit (docs/advisories.md "Edge gate, mTLS and revocation audit") -------------
// Client-supplied certificate headers under every spelling: never an identity.
const forged = encodeURIComponent(alice.cert.toString());
const fpBob = tool('--dir', pki, 'fingerprint', 'bob').trim();
const spellings = ['X-SSL-Client-Cert', 'x-ssl-client-cert', 'X-SSL-CLIENT-CERT', 'X-Client-Cert', 'SSL-Client-Cert',
  'ssl-client-cert', 'X-Forwarded-Client-Cert', 'X-ARR-ClientCert', 'X-SSL-Cert', 'X_SSL_Client_Cert', 'ssl_client_cert'];
const verifyHdrs = { 'X-SSL-Client-Verify': 'SUCCESS', 'X-Client-Verify': 'SUCCESS', 'SSL-Client-Verify': 'SUCCESS',
  X_SSL_Client_Verify: 'SUCCESS' };
for (const name of spellings) {
  r = await tls('/svc/hello', { headers: { [name]: forged, ...verifyHdrs } });
  is(r.status, 401, `no client certificate, alice's certificate in ${name} (+ verify headers saying SUCCESS) -> 401`);
}
const allForged = Object.fromEntries(spellings.map((n) => [n, forged]));
r = await tls('/svc/hello', { client: bob, headers: { ...allForged, ...verifyHdrs } });
is(r.status, 403, "bob's certificate with alice's in every header spelling: bob's identity, refused on alice's route");
r = await tls('/api/x', { client: bob, headers: { ...allForged, ...verifyHdrs } });
h = seen(r);
ok(r.status === 200 && h['x-auth-request-cert-subject'] === 'CN=bob,O=edgegate' && h['x-auth-request-cert-fingerprint'] === fpBob,
  "... and where bob may pass, the upstream is told bob's subject and fingerprint, not alice's", { status: r.status, h });
const leaked = ['x-ssl-client-cert', 'x-ssl-client-verify', 'x-client-cert', 'ssl-client-cert', 'x-forwarded-client-cert']
  .filter((k) => k in h);
ok(r.status === 200 && leaked.length === 0, `... and none of the client's certificate headers reach the upstream (protect snippet)`, leaked);

// Failed verification never yields an identity. `optional` (the shipped snippet): nginx
// refuses the handshake's result itself; `optional_no_ca`: nginx passes FAILED:... on.
// a self-signed look-alike of alice: same subject and SANs, its own key
// Debian's python3 with python3-cryptography (tools/deps.sh), not whatever python3 is first on PATH.
const mkcert = (name, spec) => {
  execFileSync('/usr/bin/python3', ['-c', `
import json, sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
out, cacrt, cakey, spec = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec["o"]),
                  x509.NameAttribute(NameOID.COMMON_NAME, spec["cn"])])
if spec.get("self"):
    issuer, signer = name, key
else:
    ca = x509.load_pem_x509_certificate(open(cacrt, "rb").read())
    issuer, signer = ca.subject, serialization.load_pem_private_key(open(cakey, "rb").read(), None)
now = datetime.datetime.now(datetime.timezone.utc)
kinds = {"URI": x509.UniformResourceIdentifier, "DNS": x509.DNSName, "email": x509.RFC822Name}
b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer).public_key(key.public_key())
     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
     .not_valid_after(now + datetime.timedelta(minutes=-1 if spec.get("expired") else 60))
     .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
     .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
if spec["sans"]:
    b = b.add_extension(x509.SubjectAlternativeName([kinds[t](v) for t, v in spec["sans"]]), critical=False)
cert = b.sign(signer, hashes.SHA256())
open(out + ".crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(out + ".key", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
`, path.join(dir, name), path.join(pki, 'ca/ca.crt'), path.join(pki, 'ca/ca.key'), JSON.stringify(spec)]);
  return { cert: fs.readFileSync(path.join(dir, `${name}.crt`)), key: fs.readFileSync(path.join(dir, `${name}.key`)) };
};
// alice's look-alike from our CA, expired a minute ago
const oldCert = mkcert('old', { o: 'edgegate', cn: 'alice', sans: [['URI', SPIFFE_A]], expired: true });
ok(new Date(new crypto.X509Certificate(oldCert.cert).validTo) < new Date(), 'the look-alike is expired', new crypto.X509Certificate(oldCert.cert).validTo);
const selfAlice = mkcert('self-alice', { self: true, o: 'edgegate', cn: 'alice', sans: [['URI', SPIFFE_A]] });
const refusedBy = async (p, opts) => {
  try {
    const x = await tls(p, opts);
    return x.status;
  } catch (e) {
    return `TLS error ${e.code || e.message}`;
  }
};
// optional_no_ca lets only the issuer errors through (unknown CA, self-signed): nginx
// itself answers 400 to an expired certificate of a CA it knows
for (const [label, c, noCa] of [['expired', oldCert, 400], ['self-signed look-alike', selfAlice, 401], ['other CA', mallory, 401]]) {
  const st = await refusedBy('/svc/hello', { client: c });
  ok(st === 400 || /^TLS error/.test(String(st)), `verify optional: ${label} certificate refused by nginx (${st})`);
  const st2 = await refusedBy('/svc/hello', { client: c, port: portNoCa });
  is(st2, noCa, `verify optional_no_ca: ${label} certificate gives no identity -> ${noCa}${noCa === 401 ? ' (FAILED:... reaches edgegated)' : ' (nginx)'}`);
  const st3 = await refusedBy('/api/x', { client: c, port: portNoCa, headers: { 'X-SSL-Client-Verify': 'SUCCESS', 'X-SSL-Client-Cert': forged } });
  is(st3, noCa, `verify optional_no_ca: ${label} certificate with client-sent X-SSL-Client-Verify: SUCCESS and alice's X-SSL-Client-Cert -> ${noCa}`);
}
r = await tls('/svc/hello', { client: alice, port: portNoCa });
ok(r.status === 200 && seen(r)['x-auth-request-cert-subject'] === 'CN=alice,O=edgegate',
  'control: verify optional_no_ca with a valid certificate -> 200, alice', r.status);

// The certificate -> identity mapping is exact (issued by our CA, so nginx verifies them).
const sanCase = [
  ['suffix', [['URI', `${SPIFFE_A}/x`]]],
  ['prefix', [['URI', SPIFFE_A.slice(0, -1)]]],
  ['upper case', [['URI', SPIFFE_A.toUpperCase()]]],
  ['embedded NUL', [['URI', `${SPIFFE_A}\u0000.evil`]]],
  ['as a DNS name', [['DNS', 'example.test'], ['email', `alice@example.test`]]],
];
for (const [label, sans] of sanCase) {
  const c = mkcert(`san-${label.replace(/ /g, '-')}`, { o: 'edgegate', cn: 'alice', sans });
  r = await tls('/svc/hello', { client: c });
  is(r.status, 403, `SAN ${label} (${sans.map((x) => x.join(':')).join(', ').replace(/\0/g, '\\0')}) does not match URI:${SPIFFE_A} -> 403`);
}
const multi = mkcert('san-multi', { o: 'edgegate', cn: 'multi', sans: [['DNS', 'a.example.test'], ['email', 'm@example.test'],
  ['URI', `${SPIFFE_A}x`], ['URI', SPIFFE_A]] });
r = await tls('/svc/hello', { client: multi });
h = seen(r);
ok(r.status === 200 && h['x-auth-request-cert-sans'] === `DNS:a.example.test,email:m@example.test,URI:${SPIFFE_A}x,URI:${SPIFFE_A}`,
  'several SANs: one equal to the route\'s passes, the upstream sees all of them in order', { status: r.status, sans: h['x-auth-request-cert-sans'] });
r = await tls('/subj/x', { client: alice });
is(r.status, 200, 'control: alice matches cert_subjects CN=alice,O=edgegate');
const comma = mkcert('cn-comma', { o: 'evil', cn: 'alice,O=edgegate', sans: [] });
r = await tls('/subj/x', { client: comma });
is(r.status, 403, 'CN "alice,O=edgegate" under O=evil does not pass as CN=alice,O=edgegate');
r = await tls('/api/x', { client: comma });
is(seen(r)['x-auth-request-cert-subject'], 'CN=alice\\,O=edgegate,O=evil', '... its subject reaches the upstream escaped (RFC 4514)');
const nulcn = mkcert('cn-nul', { o: 'edgegate', cn: 'alice\u0000', sans: [] });
r = await tls('/subj/x', { client: nulcn });
is(r.status, 403, 'CN "alice\\0" does not pass as CN=alice,O=edgegate');
r = await tls('/api/x', { client: nulcn });
ok(r.status !== 200 || !/^CN=alice,/.test(seen(r)['x-auth-request-cert-subject'] || ''),
  `... and is never rendered as alice (${r.status} ${seen(r)['x-auth-request-cert-subject']})`);

// revocation while running: the tool updates revoked.txt (and the CRL, which this
// nginx has not reloaded); edgegated notices within a second
r = await tls('/svc/hello', { client: carol });
is(r.status, 200, 'carol passes before revocation');
tool('--dir', pki, 'revoke', 'carol');
await sleep(1200);
r = await tls('/svc/hello', { client: carol });
is(r.status, 403, 'revoked fingerprint -> 403 (edgegated reloaded revoked_file, nginx untouched)');
r = await tls('/svc/hello', { client: alice });
is(r.status, 200, 'other certificates still pass after the revocation');

// the outcome cache: nginx forwards the same escaped PEM on every request with dave's
// certificate; the second answer comes from the cache and is the same
const cacheHits = async () => {
  const m2 = (await request(`http://127.0.0.1:${egdPort}/metrics`)).body.match(/edgegate_mtls_cache_total\{result="hit"\} (\d+)/);
  return m2 ? Number(m2[1]) : 0;
};
const hits0 = await cacheHits();
const d1 = await tls('/svc/hello', { client: dave });
const d2 = await tls('/svc/hello', { client: dave });
is(d1.status, 200, 'dave passes (first request: decided, cached)');
is(d2.status, 200, 'dave again, a new TLS connection: the same answer');
is(seen(d2)['x-auth-request-cert-fingerprint'], seen(d1)['x-auth-request-cert-fingerprint'], 'the same identity both times');
ok(seen(d1)['x-auth-request-cert-subject'] === 'CN=dave,O=edgegate', 'the identity is dave\'s', seen(d1));
const hits1 = await cacheHits();
ok(hits1 > hits0, `the second verdict was a cache hit (hits ${hits0} -> ${hits1})`);
// SIGHUP (systemctl reload) flushes it: the next verdict for dave is decided again
const cacheCount = async (what) => {
  const m2 = (await request(`http://127.0.0.1:${egdPort}/metrics`)).body.match(new RegExp(`edgegate_mtls_cache_total\\{result="${what}"\\} (\\d+)`));
  return m2 ? Number(m2[1]) : 0;
};
const miss0 = await cacheCount('miss');
process.kill(egd.proc.pid, 'SIGHUP');
await waitFor(() => /SIGHUP: caches flushed/.test(egd.log()), { what: 'SIGHUP handled' });
r = await tls('/svc/hello', { client: dave });
is(r.status, 200, 'dave after SIGHUP -> 200');
const miss1 = await cacheCount('miss');
ok(miss1 === miss0 + 1 && await cacheCount('hit') === hits1, `after SIGHUP dave's verdict was a miss (misses ${miss0} -> ${miss1})`);

// dave revoked in a CRL only (not in revoked.txt): a copy of the CA revokes him, its CRL
// replaces edgegated's crl_files copy; edgegated reloads within a second and the cached
// allow goes with the old CRL
const pki2 = path.join(dir, 'pki2');
fs.cpSync(pki, pki2, { recursive: true });
const cnf2 = path.join(pki2, 'ca/ca.cnf');
fs.writeFileSync(cnf2, fs.readFileSync(cnf2, 'utf8').split(pki).join(pki2));
tool('--dir', pki2, 'revoke', 'dave');
fs.copyFileSync(path.join(pki2, 'ca/crl.pem'), `${crlCopy}.tmp`);
fs.renameSync(`${crlCopy}.tmp`, crlCopy);
const fpDave = tool('--dir', pki, 'fingerprint', 'dave').trim();
ok(!fs.readFileSync(path.join(pki, 'revoked.txt'), 'utf8').includes(fpDave.replace(/^sha256:/, '')),
  'dave is not in edgegated\'s revoked_file (only the CRL names him)');
await sleep(1200);
const revokedCount = async () => {
  const m2 = (await request(`http://127.0.0.1:${egdPort}/metrics`)).body.match(/edgegate_mtls_rejected_total\{reason="certificate_revoked"\} (\d+)/);
  return m2 ? Number(m2[1]) : 0;
};
const rev0 = await revokedCount();
r = await tls('/svc/hello', { client: dave });
is(r.status, 403, 'dave, cached as allowed, is refused after the CRL reload');
const rev1 = await revokedCount();
ok(rev1 === rev0 + 1, `refused as certificate_revoked (edgegate_mtls_rejected_total ${rev0} -> ${rev1})`);
r = await tls('/svc/hello', { client: dave });
is(r.status, 403, 'and stays refused');
r = await tls('/svc/hello', { client: alice });
is(r.status, 200, 'alice still passes after the CRL reload');

// RFC 8705 certificate-bound tokens
const bound = await mint({ cnf: { 'x5t#S256': thumb('alice') } });
r = await tls('/api/x', { client: alice, headers: { Authorization: `Bearer ${bound}` } });
is(r.status, 200, 'token bound to alice presented with alice\'s certificate -> 200');
is(seen(r)['x-auth-request-user'], 'svc-client', 'with a token, X-Auth-Request-User is the token subject');
r = await tls('/api/x', { client: bob, headers: { Authorization: `Bearer ${bound}` } });
is(r.status, 401, 'token bound to alice presented with bob\'s certificate -> 401');
r = await tls('/api/x', { headers: { Authorization: `Bearer ${bound}` } });
is(r.status, 401, 'bound token without any certificate -> 401');
r = await tls('/api/x', { client: bob, headers: { Authorization: `Bearer ${await mint()}` } });
is(r.status, 200, 'unbound token with a verified certificate -> 200');

// nginx -> upstream over mTLS
r = await tls('/up/ping', { client: alice });
is(r.status, 200, 'nginx -> upstream over mTLS -> 200');
is(r.headers['x-upstream-client-verify'], 'SUCCESS', 'the upstream verified nginx\'s client certificate');
is(r.headers['x-upstream-client-dn'], 'CN=nginx-proxy,O=edgegate', 'the upstream saw nginx-proxy as the client');
r = await tls('/', { port: upPort, servername: 'upstream.internal' });
is(r.status, 400, 'the upstream refuses a client without a certificate');
r = await tls('/', { port: upPort, servername: 'upstream.internal', client: mallory }).catch((e) => ({ status: `TLS error ${e.code}` }));
ok(r.status === 400 || /TLS error/.test(String(r.status)), `the upstream refuses another CA's client (${r.status})`);

// expiry gauge for the configured certificate
r = await request(`http://127.0.0.1:${egdPort}/metrics`);
const m = r.body.match(new RegExp(`edgegate_cert_expiry_days\\{file="${frontCert.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"\\} ([0-9.eE+-]+)`));
ok(m && Number(m[1]) > 6.9 && Number(m[1]) <= 7.01, 'edgegate_cert_expiry_days reports ~7 days for the server certificate', m ? m[0] : r.body.slice(0, 1500));
ok(/edgegate_verdicts_total\{result="forbidden",reason="certificate_revoked"\} [1-9]/.test(r.body), 'revoked verdicts are counted');

// renew: nothing is due yet; with --within 2 the 24h client certificates are re-issued
const fpCarol = tool('--dir', pki, 'fingerprint', 'carol').trim();
const out = tool('--dir', pki, 'renew', '--within', '2');
ok(/renewed [1-9]/.test(out), `renew re-issues certificates expiring within 2 days (${out.trim().split('\n').pop()})`);
ok(tool('--dir', pki, 'fingerprint', 'alice').trim() !== fpAlice, 'the renewed certificate is a new certificate');
ok(tool('--dir', pki, 'fingerprint', 'carol').trim() === fpCarol, 'renew leaves revoked carol without a fresh certificate');

const healthy = (await request(`http://127.0.0.1:${egdPort}/healthz`)).status === 200;
ok(healthy, 'edgegated healthy at the end');
if (!healthy) { diag(egd.log()); diag(ngx.errorLog()); }
await done();
