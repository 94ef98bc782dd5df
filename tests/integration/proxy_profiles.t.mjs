#!/usr/bin/env node
// proxy_profiles.t.mjs - the traefik and envoy profiles (neither proxy is packaged for
// Debian 12): edgegated gets exactly the header set each proxy's shipped snippet makes it
// send (tools/traefik/edgegate.yml, tools/envoy/edgegate.yaml), plus whatever a client adds.
// For each profile: its own headers decide, every other profile's headers are ignored, a
// missing required header is a 403 missing_proxy_header, a repeated one a 403.
import fs from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import { ok, is, done, guard, diag, startEdgegated, request, tmpdir } from '../lib/harness.mjs';
import { rawGet } from '../lib/rawhttp.mjs';

guard(120000);

const dir = tmpdir('proxyprof-');
const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwksFile = path.join(dir, 'jwks.json');
fs.writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
const now = Math.floor(Date.now() / 1000);
const token = await new jose.SignJWT({ sub: 'user-9' }).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
  .setIssuer('https://idp.test').setAudience('api://x').setIssuedAt(now).setExpirationTime(now + 600).sign(privateKey);

const routes = [
  { host: 'admin.example', path: '/', auth: 'bearer' },
  { path: '/public/', auth: 'public' },
  { path: '/readonly/', methods: ['GET', 'HEAD'], auth: 'public' },
  { path: '/', auth: 'bearer' },
];
const jwt = { jwks_file: jwksFile, issuer: 'https://idp.test', audience: 'api://x' };

// What a client may add to try another profile's reading: /public/ on www.example by GET.
const otherFamilies = {
  nginx: ['X-Original-URI: /public/x', 'X-Original-Method: GET', 'X-Real-IP: 198.18.3.3'],
  traefik: ['X-Forwarded-Uri: /public/x', 'X-Forwarded-Method: GET', 'X-Forwarded-Host: www.example'],
  envoy: ['X-Envoy-Original-Path: /public/x'],
  any: ['X-Original-URL: http://www.example/public/x'],
};

// Each profile: how the proxy states (method, target, host, client) to edgegated.
const profiles = {
  traefik: {
    send: (port, { method, target, host, client = '198.18.0.20', extra = [] }) => rawGet(port, '/auth', [
      `X-Forwarded-Method: ${method}`, `X-Forwarded-Proto: https`, `X-Forwarded-Host: ${host}`,
      `X-Forwarded-Uri: ${target}`, `X-Forwarded-For: ${client}`, 'Accept: application/json', ...extra]),
    others: [...otherFamilies.nginx, ...otherFamilies.envoy, ...otherFamilies.any],
    required: ['X-Forwarded-Method', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'X-Forwarded-Uri', 'X-Forwarded-For'],
  },
  envoy: {
    // ext_authz HTTP: the original method and :authority, path_prefix /auth + the original path
    send: (port, { method, target, host, client = '198.18.0.20', extra = [] }) => rawGet(port, `/auth${target}`, [
      `Host: ${host}`, 'X-Forwarded-Proto: https', `X-Forwarded-For: ${client}`, 'Accept: application/json',
      'Content-Length: 0', ...extra], { method }),
    others: [...otherFamilies.nginx, ...otherFamilies.traefik, ...otherFamilies.any],
    required: ['X-Forwarded-Proto', 'X-Forwarded-For'],
  },
};

for (const [name, p] of Object.entries(profiles)) {
  const egd = await startEdgegated({ proxy: name, jwt, routes }, { dir: tmpdir(`prof-${name}-`) });
  const send = (o) => p.send(egd.port, o);
  let r = await send({ method: 'GET', target: '/public/x', host: 'www.example' });
  is(r.status, 200, `${name}: its own headers for GET www.example /public/x -> 200`);
  r = await send({ method: 'GET', target: '/private/x', host: 'www.example' });
  is(r.status, 401, `${name}: /private/x without a token -> 401`);
  r = await send({ method: 'GET', target: '/private/x', host: 'www.example', extra: [`Authorization: Bearer ${token}`] });
  ok(r.status === 200 && r.headers['x-auth-request-user'] === 'user-9', `${name}: with a token -> 200 and X-Auth-Request-User`, r.headers);
  r = await send({ method: 'GET', target: '/public/x', host: 'admin.example' });
  is(r.status, 401, `${name}: the host the proxy names is judged (admin.example)`);
  r = await send({ method: 'DELETE', target: '/readonly/x', host: 'www.example' });
  is(r.status, 401, `${name}: DELETE is judged as DELETE (GET-only public route does not match)`);
  r = await send({ method: 'GET', target: '/private/x', host: 'admin.example', extra: p.others });
  is(r.status, 401, `${name}: a client sending every other profile's headers gets its own profile's verdict`);
  r = await send({ method: 'GET', target: '/private/x', host: 'www.example', extra: ['Host: www.example'] });
  ok(r.status === 401 || r.status === 403, `${name}: an extra Host header never allows (${r.status})`);
  // Traefik sets X-Forwarded-Server to its own hostname: under that profile it is not a host
  // reading; a client's X-Host naming another host still is (docs/trust-model.md)
  r = await send({ method: 'GET', target: '/public/x', host: 'www.example', extra: ['X-Forwarded-Server: admin.example'] });
  is(r.status, name === 'traefik' ? 200 : 401, `${name}: X-Forwarded-Server: admin.example ${name === 'traefik' ? 'is Traefik\'s own name, not judged' : 'is judged as another host'} (${r.status})`);
  r = await send({ method: 'GET', target: '/public/x', host: 'www.example', extra: ['X-Host: admin.example'] });
  is(r.status, 401, `${name}: a client's X-Host: admin.example is judged as another host`);
  // X-Forwarded-For: only the last element (the proxy's own peer) is the client. 20 bad
  // tokens ban that one; the client-written element before it is not touched.
  const bad = ['Authorization: Bearer e30.e30.bad'];
  for (let i = 0; i < 20; i++) await send({ method: 'GET', target: '/x', host: 'www.example', client: '198.18.3.3, 198.18.0.77', extra: bad });
  r = await send({ method: 'GET', target: '/x', host: 'www.example', client: '198.18.0.77', extra: bad });
  ok(r.status === 403 && /banned|too many/.test(r.body), `${name}: the last X-Forwarded-For element is the client (banned after 20 failures)`, r.body);
  r = await send({ method: 'GET', target: '/x', host: 'www.example', client: '198.18.3.3', extra: bad });
  ok(r.status === 401, `${name}: the client-written element before it was never counted`, r.body);
  r = await send({ method: 'GET', target: '/public/x', host: 'www.example', client: 'not-an-ip' });
  ok(r.status === 403 && /bad_client_address/.test(r.body), `${name}: an unparsable client address -> 403 bad_client_address`, r.body);
  for (const h of p.required) {
    // the profile's request for GET www.example /public/x without that header
    const full = [];
    const lines = (name === 'traefik'
      ? [`X-Forwarded-Method: GET`, 'X-Forwarded-Proto: https', 'X-Forwarded-Host: www.example', 'X-Forwarded-Uri: /public/x', 'X-Forwarded-For: 198.18.0.20']
      : ['Host: www.example', 'X-Forwarded-Proto: https', 'X-Forwarded-For: 198.18.0.20']).filter((l) => !l.startsWith(`${h}:`));
    full.push(...lines, 'Accept: application/json');
    r = await rawGet(egd.port, name === 'envoy' ? '/auth/public/x' : '/auth', full);
    ok(r.status === 403 && /missing_proxy_header/.test(r.body), `${name}: without ${h} -> 403 missing_proxy_header`, r.body);
    r = await rawGet(egd.port, name === 'envoy' ? '/auth/public/x' : '/auth', [...full, `${h}: x`, `${h}: y`]);
    ok(r.status === 403, `${name}: ${h} twice -> 403`, r.body);
  }
  const log = fs.readFileSync(egd.logFile, 'utf8');
  ok(new RegExp(`proxy ${name}: the auth request has no \\S+ header.*fix: use tools/${name}/`).test(log), `${name}: the log names the fix`, log.slice(-1500));
  if (name === 'envoy') {
    r = await rawGet(egd.port, '/auth', ['Host: www.example', 'X-Forwarded-Proto: https', 'X-Forwarded-For: 198.18.0.20',
      'X-Original-URI: /public/x', 'Accept: application/json']);
    ok(r.status === 403 && /missing_proxy_header/.test(r.body), 'envoy: /auth without the original path -> 403 (X-Original-URI is not read)', r.body);
    r = await send({ method: 'GET', target: '/public/%2e%2e/private/x', host: 'www.example' });
    ok(r.status !== 200, `envoy: the raw (undecoded) path is judged: /public/%2e%2e/private/x -> ${r.status}`);
    r = await send({ method: 'POST', target: '/public/x?a=1', host: 'www.example' });
    is(r.status, 200, 'envoy: POST with a query on a public path -> 200');
  }
  const alive = (await request(`${egd.url}/healthz`)).status === 200;
  ok(alive, `${name}: daemon alive`);
  if (!alive) diag(egd.log());
  await egd.stop();
}
await done();
