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
      { path: '/up/', auth: 'mtls' },
    ],
  }, { dir: path.join(dir, 'egd') });
} catch (e) {
  ok(false, 'edgegated started', e.message);
  await done();
}

const port = await freePort();
const upPort = await freePort();
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
const out = tool('--dir', pki, 'renew', '--within', '2');
ok(/renewed [1-9]/.test(out), `renew re-issues certificates expiring within 2 days (${out.trim().split('\n').pop()})`);
ok(tool('--dir', pki, 'fingerprint', 'alice').trim() !== fpAlice, 'the renewed certificate is a new certificate');

const healthy = (await request(`http://127.0.0.1:${egdPort}/healthz`)).status === 200;
ok(healthy, 'edgegated healthy at the end');
if (!healthy) { diag(egd.log()); diag(ngx.errorLog()); }
await done();
