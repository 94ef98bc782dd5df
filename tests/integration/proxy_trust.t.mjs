#!/usr/bin/env node
// proxy_trust.t.mjs - the proxy boundary behind real nginx configured only with the shipped
// snippets (proxy profile "nginx"): the host judged is the host nginx routed on (absolute-form
// request lines, conflicting Host headers) and, when it differs, the client's raw Host too (what an
// upstream behind `proxy_set_header Host $http_host` gets: it can tighten a verdict, never loosen
// it; an older snippet without X-Original-Host keeps the old verdicts and is logged once), client-supplied proxy headers of any family never
// change a verdict, 3/8/16 KB targets never make nginx answer 500 and the 401's Location stays
// under 2 KiB, an untrusted local peer forging X-Real-IP or a client certificate gets 403 and
// causes no ban, the unix socket is 0660 with listen_group, a missing profile header is a 403
// with one log line naming the fix.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as jose from 'jose';
import {
  ok, is, done, guard, diag, freePort, startEcho, startEdgegated, startNginx, request, tmpdir, waitFor, EDGEGATED,
} from '../lib/harness.mjs';
import { rawGet } from '../lib/rawhttp.mjs';

guard(240000);

const dir = tmpdir('proxytrust-');
const sock = path.join(dir, 'auth.sock');
const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwksFile = path.join(dir, 'jwks.json');
fs.writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));

const now = Math.floor(Date.now() / 1000);
const bearer = `Authorization: Bearer ${await new jose.SignJWT({ sub: 'svc' }).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
  .setIssuer('https://idp.test').setAudience('api://x').setIssuedAt(now).setExpirationTime(now + 900).sign(privateKey)}`;

const echo = await startEcho();
const seenUrls = [];
echo.server.prependListener('request', (req) => seenUrls.push(`${req.headers.host} ${req.method} ${req.url}`));
const tcpPort = await freePort();
const port = await freePort();
const bigPort = await freePort();
const pub = `http://www.example:${port}`;

const egd = await startEdgegated({
  listen: [`127.0.0.1:${tcpPort}`, `unix:${sock}`],
  listen_group: 'nogroup', // this test's nginx workers run as nobody:nogroup
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

const site = (name, listen, extra = '') => `
  server {
    listen 127.0.0.1:${listen}${name === 'www.example' ? ' default_server' : ''};
    server_name ${name};
    ${extra}
    {{EDGEGATE_INCLUDE}}
    location / { {{EDGEGATE_PROTECT}} proxy_pass http://app; }
    # the common upstream recipe that passes the client's raw Host on (not $host)
    location /public/raw/ { {{EDGEGATE_PROTECT}} proxy_set_header Host $http_host; proxy_pass http://app; }
  }`;
// The second listener has room for 32 KB request lines so 16 KB targets reach edgegated.
const big = 'large_client_header_buffers 4 32k;';
// --- before nginx: the auth request as an older snippet sends it (no X-Original-Host) --------
const direct = (headers, localAddress) => rawGet(tcpPort, '/auth', headers, { localAddress });
const nginxBase = ['X-Original-Method: GET', 'X-Forwarded-Proto: http', 'X-Real-IP: 198.18.0.2', 'Accept: application/json'];
const oldSnippet = (host, uri) => direct([`Host: ${host}`, `X-Original-URI: ${uri}`, ...nginxBase]);
let r;
for (let i = 0; i < 3; i++) r = await oldSnippet('www.example', '/public/x');
ok(r.status === 200, 'older snippet (no X-Original-Host): judged on Host alone, as before', r.body);
r = await oldSnippet('admin.example', '/public/x');
is(r.status, 401, 'older snippet: the host-scoped route of Host still applies');
const oldLines = () => fs.readFileSync(egd.logFile, 'utf8').split('\n').filter((l) => /no X-Original-Host header/.test(l));
is(oldLines().length, 1, 'one log line says the snippet predates X-Original-Host');
ok(/fix: update the snippet from tools\/nginx\//.test(oldLines()[0] || ''), 'the log line names the fix', oldLines()[0]);
// the new header as nginx sends it, straight to the daemon
const withRaw = (host, raw, uri = '/public/x') => direct([`Host: ${host}`, `X-Original-Host: ${raw}`, `X-Original-URI: ${uri}`, ...nginxBase]);
r = await withRaw('www.example', 'www.example');
is(r.status, 200, 'X-Original-Host equal to Host: same verdict (control)');
r = await withRaw('www.example', 'www.example:8080');
is(r.status, 200, 'X-Original-Host with a port is the same host');
r = await withRaw('www.example', 'admin.example');
is(r.status, 401, 'X-Original-Host naming a host-scoped route: that route is judged too');
r = await withRaw('admin.example', 'www.example');
is(r.status, 401, 'X-Original-Host naming a public host does not loosen the routed host\'s verdict');
for (const bad of ['www!example', 'www.example@admin.example', '[::1', 'www.example:', 'a b']) {
  r = await withRaw('www.example', bad);
  ok(r.status === 403 && /bad_original_host/.test(r.body), `unparsable X-Original-Host ${JSON.stringify(bad)} -> 403 bad_original_host`, r.body);
}
r = await direct(['Host: www.example', 'X-Original-Host: www.example', 'X-Original-Host: admin.example', 'X-Original-URI: /public/x', ...nginxBase]);
ok(r.status === 403 && /duplicate_proxy_header/.test(r.body), 'a repeated X-Original-Host -> 403 duplicate_proxy_header', r.body);

await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream app { server 127.0.0.1:${echo.port}; }
  ${site('www.example', port)} ${site('admin.example', port)}
  ${site('www.example', bigPort, big)} ${site('admin.example', bigPort, big)}`,
{ edgegate: `unix:${sock}`, waitPort: port });
await waitFor(async () => (await rawGet(bigPort, '/public/x', ['Host: www.example'])).status === 200, { what: 'nginx big listener' });

const reached = (r) => r.status === 200 && /"url"/.test(r.body);

// --- the host judged is the host nginx routed on --------------------------------------------
r = await rawGet(port, '/public/x', ['Host: www.example']);
ok(reached(r), 'www.example /public/x is public (control)', r.raw.slice(0, 300));
r = await rawGet(port, '/public/x', ['Host: admin.example']);
is(r.status, 401, 'admin.example /public/x needs a bearer token (host-scoped route)');
r = await rawGet(port, 'http://admin.example/public/x', ['Host: www.example']);
is(r.status, 401, 'absolute-form request line for admin.example with Host: www.example is judged as admin.example');
r = await rawGet(port, 'http://ADMIN.Example/public/x', ['Host: www.example']);
is(r.status, 401, 'absolute-form with a mixed-case host is judged as admin.example');
// The client's Host cannot loosen the verdict of the host nginx routed on (above), but it is
// another reading of the host: an upstream behind proxy_set_header Host $http_host gets it.
r = await rawGet(port, 'http://www.example/public/x', ['Host: admin.example']);
is(r.status, 401, 'absolute-form www.example with Host: admin.example: admin.example\'s route is judged too (tightened)');
r = await rawGet(port, 'http://www.example/public/x', ['Host: admin.example', bearer]);
ok(reached(r), 'the same request with a token admin.example accepts is served: both readings allow', r.raw.slice(0, 300));
r = await rawGet(port, 'http://www.example/public/x', [`Host: www.example:${port}`]);
ok(reached(r), 'absolute-form with the same host (and a port) in Host is served as before');
r = await rawGet(port, '/public/x', ['Host: admin.example', 'X-Forwarded-Host: www.example']);
is(r.status, 401, 'a client X-Forwarded-Host does not change the host judged');
r = await rawGet(port, '/public/x', ['Host: admin.example.']);
is(r.status, 401, 'a trailing-dot Host is the same host');

// --- a location that passes the client's raw Host on (content served, not `return`) -----------
const hostsSeen = (p) => seenUrls.filter((u) => u.endsWith(` GET ${p}`)).map((u) => u.split(' ')[0]);
r = await rawGet(port, '/public/raw/a', ['Host: www.example']);
ok(reached(r) && JSON.parse(r.body).headers.host === 'www.example', 'control: /public/raw/ is served with the client\'s Host', r.body);
for (const [target, host, what] of [
  ['http://www.example/public/raw/b', 'admin.example', 'absolute-form www.example, Host: admin.example'],
  ['http://www.example/public/raw/c', `admin.example:${port}`, 'Host: admin.example with a port'],
  ['http://www.example/public/raw/d', 'ADMIN.Example.', 'Host: ADMIN.Example. (case, trailing dot)'],
  ['http://admin.example/public/raw/e', 'www.example', 'absolute-form admin.example, Host: www.example (cannot loosen)'],
]) {
  r = await rawGet(port, target, [`Host: ${host}`]);
  const p = new URL(target).pathname;
  ok(r.status === 401 && hostsSeen(p).length === 0, `${what}: 401, the upstream never gets it`, [r.status, hostsSeen(p)]);
}
r = await rawGet(port, 'http://www.example/public/raw/f', ['Host: admin.example', 'X-Original-Host: www.example']);
ok(r.status === 401 && hostsSeen('/public/raw/f').length === 0, 'a client X-Original-Host cannot stand in for its Host (nginx overwrites it)', r.status);
r = await rawGet(port, 'http://www.example/public/raw/g', ['Host: admin.example', bearer]);
ok(reached(r) && JSON.parse(r.body).headers.host === 'admin.example',
  'with a token admin.example accepts it is served, and the upstream got Host admin.example (what was judged)', r.body);
r = await rawGet(port, 'http://www.example/public/raw/h', ['Host: www!example']);
ok(r.status === 403 && hostsSeen('/public/raw/h').length === 0, 'a raw Host nginx lets through but no host parser reads alike: 403', r.status);

// --- client-supplied proxy headers never change a verdict -----------------------------------
const forged = [
  ['X-Original-URI: /public/x'], ['X-Forwarded-Uri: /public/x'], ['X-Original-URL: http://www.example/public/x'],
  ['X-Original-Method: GET'], ['X-Forwarded-Method: GET'], ['X-Forwarded-Host: www.example'],
  ['X-Forwarded-Proto: http'], ['X-Original-Host: www.example'], ['X-Real-IP: 198.18.3.3'], ['X-Forwarded-For: 198.18.3.3'],
  ['X-Envoy-Original-Path: /public/x'], ['X-Envoy-External-Address: 198.18.3.3'],
];
const everyFamily = forged.flat();
for (const h of forged) {
  r = await rawGet(port, '/private/x', ['Host: www.example', ...h]);
  is(r.status === 302 ? 401 : r.status, 401, `client ${h[0]} on /private/x: still 401 (login), never 200`);
}
r = await rawGet(port, '/private/x', ['Host: www.example', ...everyFamily]);
ok(r.status === 302 || r.status === 401, 'every other profile\'s headers at once: still the nginx verdict (login)', r.raw.slice(0, 300));
r = await rawGet(port, '/readonly/x', ['Host: www.example', 'X-Original-Method: GET', 'X-Forwarded-Method: GET'], { method: 'DELETE' });
ok(!reached(r) && [302, 401].includes(r.status), `DELETE on a GET-only public route with forged method headers is judged as DELETE (${r.status}, the catch-all route)`);
r = await rawGet(port, '/readonly/x', ['Host: www.example']);
ok(reached(r), 'GET on the GET-only public route is served (control)');
r = await rawGet(port, '/public/x', ['Host: www.example', 'X-Original-URI: /private/x']);
ok(reached(r), 'a client X-Original-URI cannot make a public path protected either (nginx overwrites it)');
ok(!seenUrls.some((u) => /\/private\//.test(u)), 'the upstream never received a /private/ request', seenUrls);

// --- long targets: never a 500, Location under 2 KiB ----------------------------------------
for (const kb of [3, 8, 16]) {
  const q = 'q='.padEnd(kb * 1024, 'a');
  for (const [p, what] of [[bigPort, 'big buffers'], [port, 'default buffers']]) {
    r = await rawGet(p, `/public/x?${q}`, ['Host: www.example']);
    // 414/400: nginx's own limit on the request line; 431: the echo upstream's (Node's 16 KB header limit)
    ok(r.status !== 500 && (reached(r) || [400, 414, 431].includes(r.status)), `${kb} KB public target (${what}): ${r.status}, not 500`);
    r = await rawGet(p, `/private/${'p'.repeat(64)}?${q}`, ['Host: www.example', 'Accept: text/html']);
    ok(r.status !== 500 && [302, 400, 414].includes(r.status), `${kb} KB protected target (${what}): ${r.status}, not 500`);
    if (r.status === 302) {
      const loc = r.headers.location || '';
      ok(loc.length > 0 && loc.length < 2048, `${kb} KB target: Location is ${loc.length} bytes (< 2 KiB)`);
      const rd = new URL(loc).searchParams.get('rd') || '';
      ok(rd.startsWith(`${pub}/private/ppp`), `${kb} KB target: rd keeps the path on the configured origin`, rd.slice(0, 120));
    }
  }
}
r = await rawGet(bigPort, '/private/short?x=1', ['Host: www.example', 'Accept: text/html']);
is(new URL(r.headers.location || 'http://x/').searchParams.get('rd'), `${pub}/private/short?x=1`, 'a short target keeps its query in rd');
r = await rawGet(port, '/private/x', ['Host: elsewhere.example', 'Accept: text/html']);
is(new URL(r.headers.location || 'http://x/').searchParams.get('rd'), '/private/x',
  'a host with no configured origin gets a relative rd (never an origin from the client)');

// --- untrusted local peer: forged X-Real-IP / client certificate -> 403, no ban -------------
const nginxSet = (ip) => ['Host: www.example', 'X-Original-URI: /private/x', 'X-Original-Method: GET',
  'X-Forwarded-Proto: https', `X-Real-IP: ${ip}`, 'Authorization: Bearer e30.e30.bad', 'Accept: application/json'];
// control: from the trusted proxy, 20 bad tokens from one client address get it banned
for (let i = 0; i < 20; i++) await direct(nginxSet('198.18.9.9'));
r = await direct(nginxSet('198.18.9.9'));
ok(r.status === 403 && /banned|too many/.test(r.body), 'control: 20 failures reported by the trusted proxy ban 198.18.9.9', r.body);
for (let i = 0; i < 30; i++) {
  r = await direct([...nginxSet('198.18.7.7'), 'X-SSL-Client-Verify: SUCCESS', 'X-SSL-Client-Cert: -----BEGIN%20CERTIFICATE-----'], '127.0.0.2');
}
ok(r.status === 403 && /untrusted_peer/.test(r.body), 'forged X-Real-IP and client certificate from 127.0.0.2 -> 403 untrusted_peer', r.body);
r = await direct(nginxSet('198.18.7.7'));
ok(r.status === 401 && !/banned/.test(r.body), '30 forged failures from an untrusted peer did not ban the forged 198.18.7.7', r.body);
r = await direct(['Host: www.example', 'X-Original-URI: /public/x', 'X-Original-Method: GET', 'X-Forwarded-Proto: https',
  'X-Real-IP: 198.18.7.8'], '127.0.0.2');
is(r.status, 403, '127.0.0.2 is not a trusted proxy by default (trusted_proxies 127.0.0.1/32, ::1/128)');

// --- missing or repeated profile headers --------------------------------------------------------
for (let i = 0; i < 5; i++) {
  r = await direct(['Host: www.example', 'X-Original-URI: /public/x', 'X-Original-Method: GET', 'X-Forwarded-Proto: https',
    'Accept: application/json']);
}
ok(r.status === 403 && /missing_proxy_header/.test(r.body), 'no X-Real-IP -> 403 missing_proxy_header', r.body);
const logLines = fs.readFileSync(egd.logFile, 'utf8').split('\n').filter((l) => /no X-Real-IP header/.test(l));
is(logLines.length, 1, 'one log line (rate-limited) names the missing header');
ok(/fix: include tools\/nginx\/edgegate\.conf/.test(logLines[0] || ''), 'the log line names the fix', logLines[0]);
r = await direct(['Host: www.example', 'X-Original-URI: /public/x', 'X-Original-Method: GET', 'X-Forwarded-Proto: https',
  'X-Real-IP: 198.18.0.1', 'Accept: application/json']);
ok(r.status === 200, 'with the full nginx set the same request is allowed (control)', r.body);
r = await direct(['Host: www.example', 'X-Original-URI: /public/x', 'X-Original-URI: /public/y', 'X-Original-Method: GET',
  'X-Forwarded-Proto: https', 'X-Real-IP: 198.18.0.1', 'Accept: application/json']);
ok(r.status === 403 && /duplicate_proxy_header/.test(r.body), 'a repeated X-Original-URI -> 403 duplicate_proxy_header', r.body);
r = await direct(['Host: www.example', 'X-Original-URI: /public/x', 'X-Forwarded-Proto: https', 'X-Real-IP: 198.18.0.1',
  'Accept: application/json']);
ok(r.status === 403 && /missing_proxy_header/.test(r.body), 'no X-Original-Method -> 403 (a missing method is not GET)', r.body);
r = await direct(['Host: admin.example', 'X-Original-URI: http://www.example/public/x', 'X-Original-Method: GET',
  'X-Forwarded-Proto: https', 'X-Real-IP: 198.18.0.1', 'Accept: application/json']);
ok(r.status === 403 && /host_mismatch/.test(r.body), 'an absolute target naming another host than Host -> 403 host_mismatch', r.body);

is(oldLines().length, 1, 'the older-snippet line was said once (requests without X-Original-Host followed it)');

// --- the unix socket -------------------------------------------------------------------------------
const st = fs.statSync(sock);
is(st.mode & 0o777, 0o660, 'unix socket mode is 0660');
const nogroup = Number(spawnSync('getent', ['group', 'nogroup']).stdout.toString().split(':')[2]);
is(st.gid, nogroup, 'unix socket group is listen_group (nogroup)');
const probe = `require('net').connect(${JSON.stringify(sock)}).on('connect',()=>{console.log('connected');process.exit(0)}).on('error',e=>{console.log(e.code);process.exit(0)})`;
const asDaemon = spawnSync(process.execPath, ['-e', probe], { uid: 1, gid: 1 });
is(asDaemon.stdout.toString().trim(), 'EACCES', 'a local user outside listen_group cannot connect to the socket');
const asNobody = spawnSync(process.execPath, ['-e', probe], { uid: 65534, gid: nogroup });
is(asNobody.stdout.toString().trim(), 'connected', 'a member of listen_group can');

// --- config errors name the key ----------------------------------------------------------------------
const bad = path.join(dir, 'bad.json');
fs.writeFileSync(bad, JSON.stringify({ listen: '127.0.0.1:1', proxy: 'haproxy' }));
let chk = spawnSync(EDGEGATED, ['--config', bad, '--check'], { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
ok(chk.status === 1 && /proxy: must be nginx, traefik, caddy or envoy/.test(String(chk.stderr)), 'unknown proxy profile: --check names the key', String(chk.stderr));
fs.writeFileSync(bad, JSON.stringify({ listen: '127.0.0.1:1', listen_group: 'no-such-group-eg' }));
chk = spawnSync(EDGEGATED, ['--config', bad, '--check'], { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
ok(chk.status === 1 && /listen_group: no group/.test(String(chk.stderr)), 'unknown listen_group: --check names the key', String(chk.stderr));

const alive = (await request(`http://127.0.0.1:${tcpPort}/healthz`)).status === 200;
ok(alive, 'daemon alive at the end');
if (!alive) diag(egd.log());
await done();
