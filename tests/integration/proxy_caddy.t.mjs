#!/usr/bin/env node
// proxy_caddy.t.mjs - edgegated behind real Caddy (forward_auth) configured only with the
// shipped tools/caddy/Caddyfile snippet, proxy profile "caddy": the host judged is the host
// Caddy routed on, client-supplied headers of every profile (Caddy's own X-Forwarded-* too)
// never change a verdict, identity headers reach the app only from edgegated, long targets
// never get a 500 and the 401's Location stays under 2 KiB.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as jose from 'jose';
import {
  ROOT, ok, is, done, guard, diag, freePort, startEcho, startEdgegated, spawnLogged, request, tmpdir, waitFor, skipAll,
} from '../lib/harness.mjs';
import { rawGet } from '../lib/rawhttp.mjs';

guard(180000);
try { execFileSync('caddy', ['version'], { stdio: 'pipe' }); } catch { skipAll('caddy is not installed (tools/deps.sh)'); }

const dir = tmpdir('proxycaddy-');
const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwksFile = path.join(dir, 'jwks.json');
fs.writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));

const echo = await startEcho();
const seen = [];
echo.server.prependListener('request', (req) => seen.push({ url: req.url, headers: req.headers }));
const port = await freePort();
const pub = `http://www.example:${port}`;
const egd = await startEdgegated({
  proxy: 'caddy',
  public_url: pub,
  oidc: { issuer: 'http://127.0.0.1:9/', client_id: 'c', client_secret: 's', redirect_url: `${pub}/oauth2/callback` },
  jwt: { jwks_file: jwksFile, issuer: 'https://idp.test', audience: 'api://x' },
  routes: [
    { host: 'admin.example', path: '/', auth: 'bearer' },
    { path: '/public/', auth: 'public' },
    { path: '/readonly/', methods: ['GET', 'HEAD'], auth: 'public' },
    { path: '/', auth: 'any' },
  ],
}, { dir });

const caddyfile = path.join(dir, 'Caddyfile');
fs.writeFileSync(caddyfile, `{
	admin off
	auto_https off
	storage file_system ${dir}/caddy-data
}
import ${ROOT}/tools/caddy/Caddyfile
http://www.example:${port}, http://admin.example:${port} {
	bind 127.0.0.1
	import edgegate 127.0.0.1:${egd.port}
	reverse_proxy 127.0.0.1:${echo.port}
}
`);
const caddy = spawnLogged('caddy', ['run', '--config', caddyfile, '--adapter', 'caddyfile'], {
  logFile: path.join(dir, 'caddy.log'), env: { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
});
try {
  await waitFor(async () => (await rawGet(port, '/public/x', ['Host: www.example'])).status === 200, { what: 'caddy', timeout: 20000 });
} catch (e) {
  diag(fs.readFileSync(path.join(dir, 'caddy.log'), 'utf8').slice(-3000));
  throw e;
}

const reached = (r) => r.status === 200 && /"url"/.test(r.body);

let r = await rawGet(port, '/public/x', ['Host: www.example']);
ok(reached(r), 'www.example /public/x is public (control)');
r = await rawGet(port, '/public/x', ['Host: admin.example']);
is(r.status, 401, 'admin.example /public/x needs a bearer token (host-scoped route)');
r = await rawGet(port, `http://admin.example:${port}/public/x`, ['Host: www.example']);
is(r.status, 401, 'absolute-form request line for admin.example with Host: www.example is judged as admin.example');
r = await rawGet(port, '/public/x', ['Host: admin.example', 'X-Forwarded-Host: www.example']);
is(r.status, 401, 'a client X-Forwarded-Host is replaced by Caddy: still admin.example');

const forged = [
  ['X-Forwarded-Uri: /public/x'], ['X-Forwarded-Method: GET'], ['X-Forwarded-Host: www.example'],
  ['X-Forwarded-Proto: http'], ['X-Forwarded-For: 198.18.3.3'], ['X-Original-URI: /public/x'],
  ['X-Original-URL: http://www.example/public/x'], ['X-Original-Method: GET'], ['X-Real-IP: 198.18.3.3'],
  ['X-Envoy-Original-Path: /public/x'],
];
for (const h of forged) {
  r = await rawGet(port, '/private/x', ['Host: www.example', ...h]);
  is(r.status, 401, `client ${h[0]} on /private/x: still 401, never 200`);
}
r = await rawGet(port, '/private/x', ['Host: www.example', ...forged.flat()]);
is(r.status, 401, 'every profile\'s headers at once: still the caddy verdict');
r = await rawGet(port, '/readonly/x', ['Host: www.example', 'X-Forwarded-Method: GET', 'X-Original-Method: GET'], { method: 'DELETE' });
ok(!reached(r), `DELETE on a GET-only public route with forged method headers is judged as DELETE (${r.status})`);
r = await rawGet(port, '/readonly/x', ['Host: www.example']);
ok(reached(r), 'GET on the GET-only public route is served (control)');
ok(!seen.some((s) => /\/private\//.test(s.url)), 'the upstream never received a /private/ request', seen.map((s) => s.url));

r = await rawGet(port, '/public/x', ['Host: www.example', 'X-Auth-Request-User: admin', 'X-Auth-Request-Groups: admins']);
const last = seen[seen.length - 1] || { headers: {} };
ok(reached(r) && !last.headers['x-auth-request-user'] && !last.headers['x-auth-request-groups'],
  'client X-Auth-Request-* headers never reach the app', last.headers);

// Underscore spellings (oauth2-proxy GHSA-vjrc-mh2v-45x6): Caddy passes X_Auth_Request_User to the
// app untouched and many frameworks read it as X-Auth-Request-User; edgegated sees it in the
// forward_auth request and refuses it (docs/advisories.md).
{
  const before = seen.length;
  r = await rawGet(port, '/public/x', ['Host: www.example', 'X_Auth_Request_User: admin', 'x_auth_request_groups: admins']);
  ok(r.status === 403 && seen.length === before, `underscore spellings of identity headers -> 403, the app never sees them (${r.status})`);
  r = await rawGet(port, '/public/x', ['Host: www.example', 'X_Other_Header: 1']);
  ok(reached(r), 'control: other underscore headers pass through Caddy');
}

// h2c smuggling: Caddy's reverse_proxy passes any Upgrade on by default; an h2c upstream would
// then serve any path through the tunnel. edgegated refuses every upgrade but WebSocket.
{
  const before = seen.length;
  r = await rawGet(port, '/public/x', ['Host: www.example', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA', 'Connection: Upgrade, HTTP2-Settings']);
  ok(r.status === 403 && seen.length === before, `Upgrade: h2c on a public path -> 403, the app never sees it (${r.status})`);
  r = await rawGet(port, '/public/x', ['Host: www.example', 'Upgrade: h2c', 'Connection: Upgrade']);
  ok(r.status === 403 && seen.length === before, `Upgrade: h2c without HTTP2-Settings -> 403 (${r.status})`);
}

const now = Math.floor(Date.now() / 1000);
const tok = await new jose.SignJWT({ sub: 'user-7', email: 'u7@example.test', email_verified: true }).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
  .setIssuer('https://idp.test').setAudience('api://x').setIssuedAt(now).setExpirationTime(now + 600).sign(privateKey);
r = await rawGet(port, '/x', ['Host: admin.example', `Authorization: Bearer ${tok}`, 'X-Auth-Request-User: admin']);
const got = seen[seen.length - 1] || { headers: {} };
ok(reached(r) && got.headers['x-auth-request-user'] === 'user-7' && got.headers['x-auth-request-email'] === 'u7@example.test',
  'a valid token on admin.example: the app gets edgegated\'s identity headers, not the client\'s', got.headers);

for (const kb of [3, 8, 16]) {
  const q = 'q='.padEnd(kb * 1024, 'a');
  r = await rawGet(port, `/public/x?${q}`, ['Host: www.example']);
  // 431: the echo upstream's (Node's) 16 KB header limit, not Caddy's nor edgegated's answer
  ok(r.status !== 500 && (reached(r) || [400, 414, 431].includes(r.status)), `${kb} KB public target: ${r.status}, not 500`);
  r = await rawGet(port, `/private/${'p'.repeat(64)}?${q}`, ['Host: www.example', 'Accept: text/html']);
  ok(r.status === 401, `${kb} KB protected target: ${r.status} (401 from edgegated)`);
  const loc = r.headers.location || '';
  ok(loc.length > 0 && loc.length < 2048, `${kb} KB target: Location is ${loc.length} bytes (< 2 KiB)`);
}
r = await rawGet(port, '/private/short?x=1', ['Host: www.example', 'Accept: text/html']);
is(new URL(r.headers.location || 'http://x/').searchParams.get('rd'), `${pub}/private/short?x=1`, 'rd is on the configured origin, with the query');

// /oauth2/* is served by edgegated, not judged: the login start answers (503: the test OP is absent)
r = await rawGet(port, '/oauth2/start?rd=/x', ['Host: www.example']);
ok(r.status !== 401 && r.status !== 0, `/oauth2/start reaches edgegated unjudged (${r.status})`);

const alive = (await request(`${egd.url}/healthz`)).status === 200;
ok(alive, 'daemon alive at the end');
if (!alive) diag(egd.log());
caddy.kill?.();
await done();
