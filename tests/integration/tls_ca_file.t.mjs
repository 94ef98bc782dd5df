#!/usr/bin/env node
// tls_ca_file.t.mjs - jwt.ca_file and oidc.ca_file: an IdP behind a private CA. The
// JWKS and the OP's discovery are served over https with a certificate of a CA made
// here; edgegated trusts it only through the configured ca_file (CURLOPT_CAINFO).
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import * as jose from 'jose';
import { EDGEGATED, ok, is, done, guard, freePort, request, nginxHeaders, startEdgegated, tmpdir, waitFor, onCleanup, sleep } from '../lib/harness.mjs';
import { startTestOP } from '../lib/testop.mjs';

guard(90000);
const dir = tmpdir('ca-');
const f = (n) => path.join(dir, n);
const openssl = (...a) => execFileSync('openssl', a, { stdio: ['ignore', 'ignore', 'pipe'] });
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'),
  '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=edgegate test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
  '-addext', 'keyUsage=critical,keyCertSign');
openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('srv.key'), '-out', f('srv.csr'),
  '-subj', '/CN=127.0.0.1');
fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
openssl('x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('srv.pem'),
  '-days', '2', '-extfile', f('ext.cnf'));
const tls = { key: fs.readFileSync(f('srv.key')), cert: fs.readFileSync(f('srv.pem')) };
// the daemons run as root and drop to `nobody` (the documented deployment): libcurl reads
// the CA bundle at each fetch, after the drop
fs.chmodSync(dir, 0o755);
fs.chmodSync(f('ca.pem'), 0o644);
const asUser = process.getuid() === 0 ? { user: 'nobody' } : {};

// --- jwt.jwks_url over https with jwt.ca_file -------------------------------------------------
const ISS = 'https://idp.example.test';
const AUD = 'api';
const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
const jwksPort = await freePort();
const jwksKeys = [jwk];
let jwksHits = 0;
const srv = https.createServer(tls, (req, res) => {
  jwksHits++;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ keys: jwksKeys }));
});
await new Promise((r) => srv.listen(jwksPort, '127.0.0.1', r));
onCleanup(() => new Promise((r) => { srv.closeAllConnections?.(); srv.close(() => r()); }));
const now = Math.floor(Date.now() / 1000);
const tok = await new jose.SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' })
  .setIssuer(ISS).setAudience(AUD).setIssuedAt(now).setExpirationTime(now + 600).sign(privateKey);
const jwt = { jwks_url: `https://127.0.0.1:${jwksPort}/jwks`, issuer: ISS, audience: AUD };
const withCa = await startEdgegated({ ...asUser, jwt: { ...jwt, ca_file: f('ca.pem'), jwks_min_refetch: '1s' },
  routes: [{ path: '/', auth: 'bearer' }] });
const noCa = await startEdgegated({ ...asUser, jwt, routes: [{ path: '/', auth: 'bearer' }] });
const verdict = (eg) => request(`${eg.url}/auth`, { headers: nginxHeaders('/x', { Authorization: `Bearer ${tok}` }) });
is((await verdict(withCa)).status, 200, 'jwks_url behind a private CA with jwt.ca_file: the token verifies');
if (asUser.user) {
  const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${withCa.proc.pid}/status`, 'utf8'))?.[1];
  ok(uid && uid !== '0', 'the daemon dropped root (uid ' + uid + ')');
}
// a key published after the drop: the refetch (as nobody) reads the CA bundle again
const { publicKey: pub2, privateKey: priv2 } = await jose.generateKeyPair('ES256', { extractable: true });
jwksKeys.push({ ...(await jose.exportJWK(pub2)), kid: 'k2', alg: 'ES256', use: 'sig' });
const tok2 = await new jose.SignJWT({ sub: 'bob' }).setProtectedHeader({ alg: 'ES256', kid: 'k2' })
  .setIssuer(ISS).setAudience(AUD).setIssuedAt(now).setExpirationTime(now + 600).sign(priv2);
const r2 = await request(`${withCa.url}/auth`, { headers: nginxHeaders('/x', { Authorization: `Bearer ${tok2}` }) });
is(r2.status, 200, `a new kid is fetched over https after the privilege drop${asUser.user ? ' (running as nobody)' : ''}`);
is((await verdict(noCa)).status, 401, 'without ca_file the JWKS cannot be fetched (TLS verification fails): 401');
ok(/jwks fetch .*(certificate|SSL)/i.test(noCa.log()), 'the failure is logged as a certificate problem', noCa.log());
ok(jwksHits >= 1, 'the https JWKS was fetched', { jwksHits });

// --- oidc: discovery, JWKS over https with oidc.ca_file -----------------------------------------
const op = await startTestOP({ clientId: 'c', clientSecret: 'client-secret-0123456789abcdef0123', tls });
ok(op.issuer.startsWith('https://'), 'control: the test OP serves https', op.issuer);
const oidc = { issuer: op.issuer, client_id: 'c', client_secret: 'client-secret-0123456789abcdef0123',
  redirect_url: 'https://app.test/oauth2/callback' };
const base = { public_url: 'https://app.test', routes: [{ path: '/', auth: 'session' }] };
const opCa = await startEdgegated({ ...asUser, ...base, oidc: { ...oidc, ca_file: f('ca.pem') } });
const opNoCa = await startEdgegated({ ...asUser, ...base, oidc });
const ready = await waitFor(async () => (await request(`${opCa.url}/readyz`)).status === 200, { timeout: 10000 }).then(() => true, () => false);
ok(ready, 'oidc.ca_file: discovery over https succeeds (/readyz 200)', opCa.log());
await waitFor(async () => op.state.jwksHits > 0, { timeout: 5000 }).catch(() => {});
ok(op.state.jwksHits > 0, 'and the OP JWKS was fetched over https');
await sleep(1500);
is((await request(`${opNoCa.url}/readyz`)).status, 503, 'without oidc.ca_file discovery fails (/readyz 503)');

// --- a ca_file that is not there is a config error naming the key -------------------------------
const bad = path.join(dir, 'bad.json');
fs.writeFileSync(bad, JSON.stringify({ listen: '127.0.0.1:1', oidc: { ...oidc, ca_file: f('nope.pem') } }));
const chk = spawnSync(EDGEGATED, ['--config', bad, '--check'], { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
ok(chk.status === 1 && /oidc\.ca_file: cannot read/.test(String(chk.stderr)), '--check: a missing oidc.ca_file names the key', String(chk.stderr));
await done();
