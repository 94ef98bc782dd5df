#!/usr/bin/env node
// advisories.t.mjs - peers' published advisories (docs/advisories.md) replayed against the
// deployment we document: real nginx with only the shipped snippets, edgegated as tests start
// it, an OP (tests/lib/testop.mjs) for the logins. Every attack has a control that shows the
// setup tells allow from deny. Covered here:
//   open redirects through nginx on /oauth2/start and /oauth2/sign_out (oauth2-proxy GHSA-qqxw,
//   GHSA-j7px, GHSA-5m6c, GHSA-4mf2, Vouch 910943a, Authelia GHSA-36f2, mod_auth_openidc
//   CVE-2022-23527 and 2.4.9), identity-header smuggling incl. underscore/case variants and
//   public paths (oauth2-proxy GHSA-vjrc, mod_auth_openidc forged OIDC_* headers), a@evil@good
//   e-mail (GHSA-c5c4), health-check bypass (GHSA-5hvv), path+query route matching (GHSA-7rh7),
//   `#`/%23 (GHSA-pxq7, Pomerium CVE-2021-39206), wildcard host case (Authelia GHSA-j748),
//   unsupported policy config fails closed (GHSA-652x), session fixation (GHSA-f24x),
//   duplicated state/code (mod_auth_openidc 2026-08), crafted Cookie headers (CVE-2023-28625,
//   CVE-2024-24814), ban bypass by address notation (Authelia GHSA-hjj4).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as jose from 'jose';
import {
  ok, is, done, guard, diag, freePort, sleep, startEcho, startEdgegated, startNginx, request, tmpdir, waitFor, EDGEGATED,
} from '../lib/harness.mjs';
import { rawGet, rawRequest } from '../lib/rawhttp.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';
import { setAccount } from '../lib/op.mjs';
import { startTestOP } from '../lib/testop.mjs';

guard(120000);

const dir = tmpdir('advis-');
const clientId = 'adv-test';
const clientSecret = 'adv-secret-0123456789abcdef0123456789';
const op = await startTestOP({ clientId, clientSecret });

// who the OP says logs in next (id_token and userinfo agree)
let who = { sub: 'alice', email: 'alice@good.test', email_verified: true, preferred_username: 'alice' };
op.state.claims = (ctx) => {
  const now = Math.floor(Date.now() / 1000);
  const { groups, ...small } = who; // huge group lists come from userinfo only (id_tokens are capped at 16 KB)
  return { iss: op.issuer, aud: clientId, exp: now + 300, iat: now, nonce: ctx.nonce, ...(who.bigGroups ? small : who) };
};
Object.defineProperty(op.state, 'userinfo', { get: () => ({ ...who }), set: () => {} });

const { publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwksFile = path.join(dir, 'jwks.json');
fs.writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));

const echo = await startEcho();
const seen = []; // every request the upstream received: { url, headers }
echo.server.prependListener('request', (req) => seen.push({ url: req.url, headers: req.headers, raw: req.rawHeaders }));
const egPort = await freePort();
const port = await freePort();
const uportAll = await freePort(); // a server with underscores_in_headers on (an operator's choice)
const pub = `http://127.0.0.1:${port}`;

const routes = [
  { host: '*.Example.test', path: '/', auth: 'session' },
  { path: '/public/', auth: 'public' },
  { path: '/corp/', auth: 'session', allow: { domains: ['good.test'] } },
  { path: '/claims/', auth: 'session', headers: { 'X-User-Sub': 'sub' } },
  { path: '/api/', auth: 'bearer' },
  { path: '/board/', methods: ['GET', 'HEAD', 'POST'], auth: 'public' },
  { path: '/board/', auth: 'session', allow: { groups: ['moderators'] } },
  { path: '/many/', auth: 'session', headers: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`X-Claim-${i}`, 'sub'])) },
  { path: '/', auth: 'session' },
];
fs.mkdirSync(path.join(dir, 'eg')); fs.mkdirSync(path.join(dir, 'ngx'));
const egd = await startEdgegated({
  listen: `127.0.0.1:${egPort}`,
  public_url: pub,
  redirect_domains: ['127.0.0.1', '.corp.test'],
  cookie: { secure: false, secret: 'cookie-secret-0123456789abcdef0123456789' },
  oidc: { issuer: op.issuer, client_id: clientId, client_secret: clientSecret, redirect_url: `${pub}/oauth2/callback` },
  jwt: { jwks_file: jwksFile, issuer: 'https://idp.test', audience: 'api://x' },
  routes,
}, { dir: path.join(dir, 'eg') });
await waitFor(async () => (await request(`${egd.url}/readyz`)).status === 200, { what: 'OIDC discovery' });

// The route's claim header is wired the way docs/config.md says (auth_request_set + proxy_set_header).
const server = (listen, extra = '') => `
  server {
    listen 127.0.0.1:${listen} default_server;
    server_name 127.0.0.1;
    ${extra}
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      auth_request_set $eg_user_sub $upstream_http_x_user_sub;
      proxy_set_header X-User-Sub $eg_user_sub;
      proxy_pass http://app;
    }
  }`;
await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream app { server 127.0.0.1:${echo.port}; }
  ${server(port)} ${server(uportAll, 'underscores_in_headers on;')}`,
{ dir: path.join(dir, 'ngx'), edgegate: `127.0.0.1:${egPort}`, waitPort: port });

const reached = (r) => r.status === 200 && /"url"/.test(r.body);
const lastSeen = () => seen[seen.length - 1];
const cookieName = (jar) => jar.cookies.find((c) => /edgegate$/.test(c.name))?.name;

async function login(user, target = `${pub}/claims/x`) {
  who = { sub: user, email: `${user}@good.test`, email_verified: true, preferred_username: user, ...(user === 'mallory' ? {} : {}) };
  const jar = new Jar();
  const r = await jar.follow(target);
  return { jar, r };
}

// ---- 1. open redirects through nginx: rd of /oauth2/start and /oauth2/sign_out ------------------
// Sent raw: the bytes after rd= are exactly what a link would carry.
const goodRd = ['/app/x', '/app/page?x=1&y=%2F', `${pub}/app/`, 'https://corp.test/', 'https://x.corp.test/a', '/a/b/c#frag'];
const badRd = [
  // GHSA-qqxw-m5fj-f7gv / mod_auth_openidc 2.4.9: backslashes
  '/\\evil.test', '/%5Cevil.test', '%2F%5Cevil.test', '\\\\evil.test', '%5C%5Cevil.test', '/\\/evil.test',
  '/./\\evil.test', '%2F.%2F%5Cevil.test', '/../\\evil.test', 'https:/\\evil.test',
  // GHSA-j7px-6hwj-hpjg: (encoded) whitespace between the slashes
  '/%09/evil.test', '/%0A/evil.test', '/%0D/evil.test', '/%0B/evil.test', '/%0C/evil.test', '/%20/evil.test',
  '%2F%09%2Fevil.test', '/%2509/evil.test', '/%E2%80%8B/evil.test', '%20//evil.test',
  // GHSA-5m6c-jp6f-2vcv: protocol-relative and dot variants
  '//evil.test', '%2F%2Fevil.test', '///evil.test', '/.//evil.test', '/..//evil.test', '/%2F/evil.test',
  '/%2e%2e/%2fevil.test', 'https:evil.test', 'https:/evil.test', '/%00/evil.test',
  // schemes
  'javascript:alert(1)', 'JaVaScRiPt%3Aalert(1)', 'java%09script:alert(1)', 'data:text/html,x', 'file:///etc/passwd',
  // userinfo tricks
  'https://127.0.0.1@evil.test/', 'https://corp.test@evil.test/', 'https://corp.test%40evil.test/',
  'https://evil.test%23@corp.test/', 'https://corp.test:443@evil.test/', 'https://a:b@x.corp.test/',
  'https://corp.test%5C@evil.test/',
  // look-alikes (GHSA-4mf2-f3wh-gvf2, Vouch 910943a)
  'https://corp.test.evil.test/', 'https://evilcorp.test/', 'https://x.corp.testevil.test/', 'https://corp.test./',
  'https://127.0.0.1.evil.test/', 'https://x.corp.test%252eevil.test/', 'https://x.corp.test%252fevil.test', 'https://x.corp.test%2eevil.test/',
  'https://xn--corp-test.evil.test/', 'https://corp.tes/',
  // added by the proxy-boundary audit: WHATWG readings of special schemes (extra slashes,
  // backslashes, case), leading controls, CRLF into the Location, '?'/'#'/'/' before the
  // allowed suffix, NUL and ideographic/fullwidth dots and slashes, numeric hosts
  'https:///evil.test', 'HTTPS://EVIL.TEST/', 'https:\\\\evil.test', 'HtTp:\\\\evil.test', 'http:evil.test', 'http:/evil.test',
  'https://evil.test\\@corp.test/', 'https://corp.test\\@evil.test/', '%09https://evil.test', '%0Ahttps://evil.test',
  '%0D%0A//evil.test', '/x%0D%0ALocation:%20https://evil.test', 'https://x.corp.test%0D%0ASet-Cookie:%20a=b',
  'https://evil.test?.corp.test', 'https://evil.test#.corp.test', 'https://evil.test/.corp.test', 'https://evil.test%3F.corp.test/',
  'https://evil.test%23.corp.test/', 'https://evil.test%2F.corp.test/', 'https://x.corp.test:@evil.test', 'https://[::1]@evil.test',
  'https://evil.test%00.corp.test', 'https://x.corp.test%00@evil.test', 'vbscript:msgbox(1)', '/%5C/evil.test', '//%5Cevil.test',
  '\\/evil.test', 'http://x.corp.test%E3%80%82evil.test', 'https://%EF%BD%85vil.test', 'https://evil.test%EF%BC%8Fx.corp.test/',
  'https://evil.test%E2%88%95x.corp.test/', 'https://x.corp.test%09.evil.test', 'https://0x7f.1/', 'https://2130706433/',
  '%2F%2F%65vil.test', '/%25%32%66/evil.test', './/evil.test', 'https://x.corp.test%5C.evil.test',
  // overlong and look-alike slashes a normalising reader turns into '//', a right-to-left override
  '/%C0%AF/evil.test', '%C0%AF%C0%AFevil.test', '/%EF%BC%8Fevil.test', '%EF%BC%8F%EF%BC%8Fevil.test', '/%E2%81%84evil.test',
  '%E2%80%AE/evil.test',
];
for (const ep of ['/oauth2/start', '/oauth2/sign_out']) {
  for (const rd of goodRd) {
    const r = await rawGet(port, `${ep}?rd=${encodeURIComponent(rd)}`, ['Host: 127.0.0.1']);
    ok(r.status === 302 || r.status === 200, `control: ${ep} accepts rd=${rd} (${r.status})`, r.raw.slice(0, 300));
  }
  let leaked = [];
  for (const rd of badRd) {
    const r = await rawGet(port, `${ep}?rd=${rd}`, ['Host: 127.0.0.1']);
    if (r.status !== 400) leaked.push({ rd, status: r.status, location: r.headers.location });
  }
  is(leaked.length, 0, `${ep}: ${badRd.length} open-redirect vectors through nginx -> 400 each`);
  if (leaked.length) diag(JSON.stringify(leaked, null, 1));
}
// the redirect after a login goes where rd said, and only there (start -> OP -> callback -> rd)
{
  const jar = new Jar();
  const r = await jar.follow(`${pub}/oauth2/start?rd=${encodeURIComponent('https://x.corp.test/landing')}`,
    { stopAt: (u) => u.startsWith('https://x.corp.test/') });
  ok(r.next === 'https://x.corp.test/landing', 'control: a login with an allowed absolute rd lands exactly there', r.next);
}

// ---- 2. identity-header smuggling ---------------------------------------------------------------
const identityNames = ['X-Auth-Request-User', 'X-Auth-Request-Email', 'X-Auth-Request-Groups',
  'X-Auth-Request-Preferred-Username', 'X-Auth-Request-Cert-Subject', 'X-Auth-Request-Cert-Fingerprint',
  'X-Auth-Request-Cert-Sans', 'X-User-Sub'];
const variants = (n) => [n, n.toLowerCase(), n.toUpperCase(), n.replaceAll('-', '_'), n.toLowerCase().replaceAll('-', '_'),
  n.replace('Auth', 'AUTH').replaceAll('-', '_')];
const forgedLines = identityNames.flatMap((n) => variants(n).map((v) => `${v}: forged-admin`));
const forgedInUpstream = (h) => Object.entries(h).filter(([k, v]) =>
  identityNames.some((n) => k.replaceAll('_', '-').toLowerCase() === n.toLowerCase()) && /forged/.test(String(v)));

const { jar: alice } = await login('alice');
const aliceCookie = alice.header(`${pub}/claims/x`);
ok(aliceCookie.length > 0, 'alice logged in through nginx (testop)');
let r = await rawGet(port, '/claims/x', ['Host: 127.0.0.1', `Cookie: ${aliceCookie}`]);
ok(reached(r) && lastSeen().headers['x-auth-request-user'] === 'alice' && lastSeen().headers['x-user-sub'] === 'alice',
  'control: with a session the upstream receives X-Auth-Request-User and the route claim header X-User-Sub', lastSeen()?.headers);
for (const [what, target, cookie] of [['public route, no session', '/public/x', null], ['protected route, alice', '/claims/x', aliceCookie]]) {
  r = await rawGet(port, target, ['Host: 127.0.0.1', ...(cookie ? [`Cookie: ${cookie}`] : []), ...forgedLines]);
  ok(reached(r), `${what}: served (the forged headers do not break the request)`, r.raw.slice(0, 200));
  const bad = forgedInUpstream(lastSeen().headers);
  is(bad.length, 0, `${what}: none of ${forgedLines.length} forged identity headers (case/underscore variants) reach the upstream`);
  if (bad.length) diag(JSON.stringify(bad));
}
is(lastSeen().headers['x-auth-request-user'], 'alice', 'protected route: the upstream sees alice, not the forged value');
ok(!Object.keys(lastSeen().headers).some((k) => k.includes('_')),
  'default nginx (underscores_in_headers off) dropped every underscore name: the upstream got none', Object.keys(lastSeen().headers));
// underscores_in_headers on (an operator's choice): nginx now passes X_Auth_Request_User on, which
// upstreams that map _ to - (CGI, PHP, Django, Rack) read as X-Auth-Request-User.
r = await rawGet(uportAll, '/public/x', ['Host: 127.0.0.1', 'X_Custom_Probe: 1']);
ok(reached(r) && lastSeen().headers.x_custom_probe === '1', 'control: with underscores_in_headers on nginx forwards underscore names');
for (const [what, target, cookie] of [['public route', '/public/x', null], ['protected route, alice', '/claims/x', aliceCookie]]) {
  const before = seen.length;
  r = await rawGet(uportAll, target, ['Host: 127.0.0.1', ...(cookie ? [`Cookie: ${cookie}`] : []), ...forgedLines]);
  const got = seen.length > before ? forgedInUpstream(lastSeen().headers) : [];
  ok(got.length === 0 && r.status === 403, `underscores_in_headers on, ${what}: refused (${r.status}), no forged identity reaches the upstream`, got);
}
{
  const before = seen.length;
  r = await rawGet(uportAll, '/public/x', ['Host: 127.0.0.1', 'X_SSL_Client_Verify: SUCCESS', 'X_SSL_Client_Cert: -----BEGIN%20CERTIFICATE-----']);
  ok(r.status === 403 && seen.length === before, `underscores_in_headers on: X_SSL_Client_Cert / X_SSL_Client_Verify refused (${r.status}), nothing reached the upstream`);
}
r = await rawGet(uportAll, '/public/x', ['Host: 127.0.0.1', 'X_Forwarded_For: 1.2.3.4', 'X_Request_Id: 7']);
ok(reached(r), 'underscores_in_headers on: other underscore headers still pass (only identity names are refused)', r.raw.slice(0, 200));
// a forged client certificate on plain HTTP: the snippet sends $ssl_client_* (empty), never the client's
r = await rawGet(port, '/claims/x', ['Host: 127.0.0.1', 'X-SSL-Client-Verify: SUCCESS', 'X-SSL-Client-Cert: -----BEGIN%20CERTIFICATE-----']);
ok(!reached(r), `forged X-SSL-Client-* headers give no identity (${r.status})`);

// ---- 3. a@evil.test@good.test against a domains rule (GHSA-c5c4-8r6x-56w3) ------------------------
for (const [email, want] of [['bob@good.test', 200], ['a@evil.test@good.test', 403], ['"a@evil.test"@good.test', 403],
  ['a@evil.test', 403], ['a@good.test.evil.test', 403], ['a@evilgood.test', 403]]) {
  who = { sub: `u-${email}`, email, email_verified: true };
  const jar = new Jar();
  const res = await jar.follow(`${pub}/corp/x`);
  is(res.status, want, `email ${email} (verified) on a domains ["good.test"] route -> ${want}`);
}

// ---- 4. health-check bypass (GHSA-5hvv-m4w4-gf6v) ---------------------------------------------------
r = await request(`${egd.url}/healthz`);
is(r.status, 200, 'control: edgegated answers /healthz directly');
const healthBody = r.body;
for (const ua of ['kube-probe/1.29', 'ELB-HealthChecker/2.0', 'GoogleHC/1.0', 'Go-http-client/1.1', 'edgegate', '']) {
  r = await rawGet(port, '/claims/x', ['Host: 127.0.0.1', `User-Agent: ${ua}`]);
  ok(!reached(r) && r.status === 302, `User-Agent "${ua}" on a protected path -> login (${r.status})`);
}
for (const t of ['/healthz', '/oauth2/healthz', '/oauth2/../healthz', '/oauth2/%2e%2e/healthz', '/oauth2/..%2fhealthz',
  '/oauth2//healthz', '/_edgegate/auth', '/auth', '/oauth2/../auth', '/oauth2/..%2Fauth', '/readyz', '/oauth2/%2E%2E/readyz',
  '/metrics', '/forbidden', '/oauth2/..%2fclaims/x', '/oauth2/%2e%2e/claims/x']) {
  r = await rawGet(port, t, ['Host: 127.0.0.1']);
  ok(!reached(r) && !(r.status === 200 && r.body === healthBody) && r.status !== 500,
    `${t} through nginx: no bypass, not edgegated's health answer (${r.status})`, r.raw.slice(0, 200));
}

// ---- 5. route matched on path only, never path+query (GHSA-7rh7-c77v-6434) ------------------------
r = await rawGet(port, '/public/x?next=/claims/x', ['Host: 127.0.0.1']);
ok(reached(r), 'control: /public/x?next=/claims/x is public (the query does not make it protected)');
for (const t of ['/claims/x?/public/', '/claims/x?x=/public/y', '/claims/x?%2Fpublic%2F', '/claims?/public/', '/api/private?path=/public/']) {
  r = await rawGet(port, t, ['Host: 127.0.0.1']);
  ok(!reached(r), `${t}: the query does not select the public route (${r.status})`);
}

// ---- 6. '#' and %23 in the path (GHSA-pxq7-h93f-9jrg, Pomerium CVE-2021-39206) -------------------
for (const t of ['/public/x#/../../claims/x', '/public/x%23/../../claims/x', '/public/x%2523/../../claims/x',
  '/claims/x#/../../public/x', '/claims%23/../public/x', '/public/%23/..%2f..%2fclaims/x']) {
  const before = seen.length;
  r = await rawGet(port, t, ['Host: 127.0.0.1']);
  ok(!reached(r) && seen.length === before, `${t}: never served without a session (${r.status})`);
}

// ---- 7. wildcard host rule is case-insensitive (Authelia GHSA-j748-h363-wqj8) ----------------------
r = await rawGet(port, '/public/x', ['Host: other.test']);
ok(reached(r), 'control: /public/x on another host is public');
for (const h of ['admin.example.test', 'ADMIN.example.test', 'Admin.EXAMPLE.TEST', 'a.b.example.test', 'admin.example.test.']) {
  r = await rawGet(port, '/public/x', [`Host: ${h}`]);
  ok(!reached(r), `Host ${h}: the *.Example.test session rule applies (${r.status})`);
  r = await rawGet(port, `http://${h}/public/x`, ['Host: other.test']);
  ok(!reached(r), `absolute-form http://${h}/: the *.Example.test rule applies (${r.status})`);
}
r = await rawGet(port, '/public/x', ['Host: example.test']);
ok(reached(r), 'control: the bare example.test is not under *.Example.test');

// ---- 8. unsupported policy config fails closed at startup (GHSA-652x-m2gr-hppm) ------------------
const check = (cfg) => {
  const f = path.join(dir, `check-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(f, JSON.stringify({ listen: '127.0.0.1:1', ...cfg }));
  const c = spawnSync(EDGEGATED, ['--config', f, '--check'], { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
  return { code: c.status, err: String(c.stderr) };
};
let c = check({ routes: [{ path: '/', auth: 'public' }] });
is(c.code, 0, 'control: --check passes a supported policy');
for (const [what, route, key] of [
  ['allow.gitlab_groups', { path: '/', auth: 'session', allow: { gitlab_groups: ['g'] } }, /routes\[0\]\.allow/],
  ['allow.group (typo)', { path: '/', auth: 'session', allow: { group: ['ops'] } }, /routes\[0\]\.allow/],
  ['auth: "oauth"', { path: '/', auth: 'oauth' }, /routes\[0\]\.auth/],
  ['skip_auth_regex', { path: '/', auth: 'session', skip_auth_regex: '^/x' }, /routes\[0\]/],
  ['allow.claims with an object value', { path: '/', auth: 'session', allow: { claims: { tier: { x: 1 } } } }, /routes\[0\]\.allow\.claims/],
  ['deny.domains "@x.test"', { path: '/', auth: 'session', deny: { domains: ['@x.test'] } }, /routes\[0\]\.deny\.domains/],
]) {
  c = check({ routes: [route] });
  ok(c.code !== 0 && key.test(c.err), `--check refuses ${what} and names the key`, c.err);
}

// ---- 9. session fixation (GHSA-f24x-5g9q-753f, mod_auth_openidc 2026-08) ---------------------------
{
  const { jar: mal } = await login('mallory');
  const name = cookieName(mal);
  const malTicket = mal.get(name)?.value;
  ok(malTicket, `mallory has a session ticket (${name})`);
  // the victim's browser carries mallory's ticket (planted), then the victim logs in
  const victim = new Jar();
  victim.store(pub, [`${name}=${malTicket}; Path=/`]);
  who = { sub: 'victim', email: 'victim@good.test', email_verified: true, preferred_username: 'victim' };
  r = await victim.follow(`${pub}/oauth2/start?rd=/claims/v`);
  ok(reached(r) && JSON.parse(r.body).headers['x-auth-request-user'] === 'victim', 'the victim logs in (planted cookie present)', r.body?.slice(0, 200));
  const vt = victim.get(name)?.value;
  ok(vt && vt !== malTicket, 'the login issued a new ticket, it did not adopt the planted one');
  r = await rawGet(port, '/claims/x', ['Host: 127.0.0.1', `Cookie: ${name}=${malTicket}`]);
  ok(!reached(r) && [302, 401].includes(r.status), `the planted ticket ended at the login, it never carries the victim's identity (${r.status})`);
  // a made-up ticket planted before login is never adopted either
  const fake = new Jar();
  fake.store(pub, [`${name}=AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB; Path=/`]);
  r = await fake.follow(`${pub}/claims/f`);
  ok(reached(r) && !/^A{22}\./.test(fake.get(name)?.value || ''), 'a made-up planted ticket is replaced at login');
}

// ---- 10. duplicated state / code on the callback (mod_auth_openidc 2026-08) ------------------------
{
  const jar = new Jar();
  const first = await jar.follow(`${pub}/oauth2/start?rd=/claims/d`, { stopAt: (u) => u.includes('/oauth2/callback') });
  const cb = new URL(first.next);
  const st = cb.searchParams.get('state');
  const code = cb.searchParams.get('code');
  const snapshot = JSON.stringify(jar.cookies);
  for (const [what, q] of [
    ['state twice (same value)', `code=${code}&state=${st}&state=${st}`],
    ['state twice (other first)', `code=${code}&state=${'X'.repeat(st.length)}&state=${st}`],
    ['code twice', `code=${code}&code=${code}&state=${st}`],
    ['code twice (other last)', `code=${code}&code=forged&state=${st}`],
  ]) {
    jar.cookies = JSON.parse(snapshot);
    r = await jar.fetch(`${pub}/oauth2/callback?${q}`);
    is(r.status, 400, `callback with ${what} -> 400`);
  }
  jar.cookies = JSON.parse(snapshot);
  r = await jar.fetch(cb.toString());
  ok(r.status === 302 && r.headers.location?.endsWith('/claims/d'), 'control: the same callback with single parameters logs in', r.status);
}

// ---- 11. crafted Cookie headers (mod_auth_openidc CVE-2023-28625, CVE-2024-24814) ---------------
{
  const name = cookieName(alice);
  const many = Array.from({ length: 400 }, (_, i) => `c${i}=${'v'.repeat(8)}`).join('; ');
  const cases = [
    ['empty', ''], ['only separators', ';;; ;=;=='], ['name only', name], [`${name}=`, `${name}=`],
    ['quoted value', `${name}="${'a'.repeat(20)}"`], ['value with =', `${name}=a=b=c`], ['NUL-like %00', `${name}=%00`],
    ['400 cookies', many], ['200 copies of the session name', Array(200).fill(`${name}=x`).join('; ')],
    ['7 KB value', `${name}=${'A'.repeat(7000)}`], ['unicode', `${name}=\u00ff\u00fe`],
  ];
  for (const [what, v] of cases) {
    const t0 = Date.now();
    r = await rawGet(port, '/claims/x', ['Host: 127.0.0.1', `Cookie: ${v}`]);
    ok([302, 400, 401].includes(r.status) && Date.now() - t0 < 3000, `Cookie ${what} through nginx: ${r.status} (login or refusal, no crash)`);
  }
  r = await rawGet(port, '/claims/x', ['Host: 127.0.0.1', `Cookie: ${many}`, `Cookie: ${aliceCookie}`]);
  ok(reached(r), 'control: alice\'s session next to 400 other cookies still works (bounded, not refused wholesale)', r.status);
  // straight at edgegated (past nginx's 8 KB header limit): 64 KB and 5,000 cookies
  const hdrs = (ck) => ['Host: 127.0.0.1', 'X-Original-URI: /claims/x', 'X-Original-Method: GET', 'X-Forwarded-Proto: http',
    'X-Real-IP: 198.18.0.20', `Cookie: ${ck}`];
  for (const [what, v] of [['64 KB value', `${name}=${'A'.repeat(65536)}`],
    ['5,000 cookies', Array.from({ length: 5000 }, (_, i) => `k${i}=v`).join('; ')],
    ['5,000 session names', Array(5000).fill(`${name}=x`).join(';')]]) {
    const t0 = Date.now();
    r = await rawGet(egPort, '/auth', hdrs(v));
    const ms = Date.now() - t0;
    ok(r.status >= 400 && r.status < 500 && ms < 3000, `Cookie ${what} straight at /auth: ${r.status} in ${ms} ms (bounded)`);
  }
  r = await rawGet(egPort, '/auth', hdrs(aliceCookie));
  is(r.status, 200, 'control: alice\'s cookie straight at /auth -> 200');
}

// ---- 11b. cookie tossing: a sibling subdomain plants its own session cookie next to the victim's ----
// A cookie set with Domain=<parent> by another host (or a nameless one, which browsers send as
// "name=value") arrives next to the victim's own under the same name. Whichever one an app or a
// second parser takes, the request must not be served as anyone: refused or a login.
{
  const { jar: mal } = await login('mallory');
  const name = cookieName(mal);
  const malTicket = mal.get(name)?.value;
  const { jar: vic } = await login('alice');
  const aliceTicket = vic.get(name)?.value;
  r = await rawGet(port, '/claims/x', ['Host: 127.0.0.1', `Cookie: ${name}=${aliceTicket}`]);
  ok(reached(r) && lastSeen().headers['x-auth-request-user'] === 'alice', 'control: alice\'s own session cookie alone is served as alice');
  for (const [what, lines] of [
    ['tossed first', [`Cookie: ${name}=${malTicket}; ${name}=${aliceTicket}`]],
    ['tossed last', [`Cookie: ${name}=${aliceTicket}; ${name}=${malTicket}`]],
    ['two Cookie lines', [`Cookie: ${name}=${aliceTicket}`, `Cookie: ${name}=${malTicket}`]],
    ['comma-joined', [`Cookie: ${name}=${aliceTicket}, ${name}=${malTicket}`]],
    ['a forged ticket tossed', [`Cookie: ${name}=${aliceTicket}; ${name}=AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB`]],
  ]) {
    const before = seen.length;
    r = await rawGet(port, '/claims/x', ['Host: 127.0.0.1', ...lines]);
    ok(seen.length === before && [302, 400, 401].includes(r.status), `cookie tossing, ${what}: neither alice nor mallory is served (${r.status})`,
      seen.slice(before).map((x) => x.headers['x-auth-request-user']));
  }
  // Only the cookie named exactly so is a session: a raw nameless "=name=value" (browsers send a
  // nameless cookie as its bare value, the duplicate above) or a name with spaces is another
  // cookie, so alice stays alice and mallory's ticket never counts.
  for (const [what, ck] of [['nameless, raw "=name=value"', `${name}=${aliceTicket}; =${name}=${malTicket}`],
    ['with a space before "="', `${name}=${aliceTicket};  ${name} =${malTicket}`], ['nameless first', `=${name}=${malTicket}; ${name}=${aliceTicket}`]]) {
    const before = seen.length;
    r = await rawGet(port, '/claims/x', ['Host: 127.0.0.1', `Cookie: ${ck}`]);
    const users = seen.slice(before).map((x) => x.headers['x-auth-request-user']);
    ok(users.every((u) => u === 'alice') && (users.length === 1 || [302, 400, 401].includes(r.status)),
      `cookie tossing, ${what}: served as alice or refused, never as mallory (${r.status})`, users);
  }
  // mallory's ticket under another spelling of the name is not the session cookie
  for (const spelled of [name.toUpperCase(), `${name} `, `%${name.charCodeAt(0).toString(16)}${name.slice(1)}`]) {
    const before = seen.length;
    r = await rawGet(port, '/claims/x', ['Host: 127.0.0.1', `Cookie: ${spelled}=${malTicket}`]);
    ok(seen.length === before && [302, 401].includes(r.status), `mallory's ticket as cookie ${JSON.stringify(spelled)}: not a session (${r.status})`);
  }
}

// ---- 12. ban bypass by address notation (Authelia GHSA-hjj4-hfjm-fmrj) ------------------------------
{
  const direct = (ip, route = '/api/x') => rawGet(egPort, '/auth', ['Host: 127.0.0.1', `X-Original-URI: ${route}`, 'X-Original-Method: GET',
    'X-Forwarded-Proto: http', `X-Real-IP: ${ip}`, 'Authorization: Bearer e30.e30.bad', 'Accept: application/json']);
  for (let i = 0; i < 20; i++) await direct('198.18.9.9');
  r = await direct('198.18.9.9');
  ok(r.status === 403 && /banned/.test(r.body), 'control: 20 bad bearer tokens from 198.18.9.9 ban it', r.body);
  r = await direct('198.18.9.10');
  ok(r.status === 401, 'control: the neighbour 198.18.9.10 is not banned', r.body);
  for (const ip of ['::ffff:198.18.9.9', '::FFFF:198.18.9.9', '::ffff:c612:909', '0:0:0:0:0:ffff:c612:0909',
    '0000:0000:0000:0000:0000:ffff:198.18.9.9', '198.018.009.009', '198.18.9.09', '0xc6.18.9.9', '3323071753',
    '198.18.2313', ' 198.18.9.9', '198.18.9.9 ', '198.18.9.9%eth0', '[::ffff:198.18.9.9]']) {
    r = await direct(ip);
    ok(r.status === 403 && (/banned/.test(r.body) || /bad_client_address/.test(r.body)),
      `X-Real-IP "${ip}": still banned or refused, never a fresh source (${r.status})`, r.body);
  }
}

// ---- 13. unauthenticated answers never carry upstream content (mod_auth_openidc GHSA-59jp) ---------
for (const method of ['GET', 'POST', 'PUT', 'HEAD', 'OPTIONS']) {
  const before = seen.length;
  const body = method === 'GET' || method === 'HEAD' ? '' : 'a=1&b=2';
  r = await rawRequest(port, `${method} /claims/secret HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
    `${body ? `Content-Length: ${body.length}\r\n` : ''}Connection: close\r\n\r\n${body}`);
  ok(seen.length === before && !/"url"/.test(r.body) && [302, 401].includes(r.status),
    `${method} /claims/secret without a session: ${r.status}, the upstream was not asked and nothing of it is shown`);
}
r = await rawGet(port, '/claims/secret', ['Host: 127.0.0.1', `Cookie: ${aliceCookie}`], { method: 'POST' });
ok(reached(r), 'control: the same POST with a session reaches the upstream');

// ---- 14. a request edgegated cannot parse is never allowed (Authelia CVE-2021-32637) ----------------
{
  const direct = (uri, extra = []) => rawGet(egPort, '/auth', ['Host: 127.0.0.1', `X-Original-URI: ${uri}`, 'X-Original-Method: GET',
    'X-Forwarded-Proto: http', 'X-Real-IP: 198.18.0.21', 'Accept: application/json', ...extra]);
  r = await direct('/public/x');
  is(r.status, 200, 'control: a well-formed public target straight at /auth -> 200');
  for (const uri of ['', '*', '%', '/claims/%zz', '/claims/%', '/claims/x%00', 'http://[::1/claims/', 'claims/x',
    '/claims/\x01', '//', 'http://other.test/public/x', '/claims/%c0%af']) {
    r = await direct(uri);
    ok(r.status !== 200 && r.status < 500, `X-Original-URI ${JSON.stringify(uri)}: ${r.status}, never 200`);
  }
  r = await direct('/public/x', ['X-Original-Method: G ET']);
  ok(r.status !== 200, `a malformed (repeated) X-Original-Method is not allowed (${r.status})`);
}

// ---- 15. redirect-bearing parameters are bound, not taken from the callback (Pomerium CVE-2021-29652)
{
  const jar = new Jar();
  const first = await jar.follow(`${pub}/oauth2/start?rd=/claims/bound`, { stopAt: (u) => u.includes('/oauth2/callback') });
  r = await jar.fetch(`${first.next}&rd=${encodeURIComponent('https://evil.test/')}`);
  ok((r.status === 302 && r.headers.location?.endsWith('/claims/bound')) || r.status === 400,
    `a callback with an added rd=https://evil.test/ goes to the rd sealed at start, or is refused (${r.status} ${r.headers.location})`);
  ok(!/evil/.test(r.headers.location || ''), 'never to evil.test');
}

// ---- 17. claim values cannot forge another header or another list element -----------------------
// (the forged-OIDC_* class from the IdP side: a user-chosen display name or group name)
{
  who = { sub: 'u-inj', email: 'eve@good.test', email_verified: true, preferred_username: 'eve\r\nX-Auth-Request-Groups: admins',
    groups: ['dev', 'ops,admins', 'x\r\nX-Injected: 1'] };
  const jar = new Jar();
  r = await jar.follow(`${pub}/claims/inj`);
  const h = reached(r) ? JSON.parse(r.body).headers : {};
  ok(reached(r) && !h['x-injected'] && !/[\r\n]/.test(h['x-auth-request-preferred-username'] || ''),
    'a CR/LF in a claim never splits the header (no X-Injected, no line break)', h);
  const groups = String(h['x-auth-request-groups'] || '').split(',').map((g) => g.trim());
  ok(groups.includes('dev') && !groups.includes('admins'),
    `a group named "ops,admins" does not add "admins" to X-Auth-Request-Groups (${h['x-auth-request-groups']})`);
}

// ---- 18. method-override headers: the method the upstream may serve is judged too -----------------
// Express's method-override reads X-HTTP-Method-Override on POST by default (first comma element);
// other frameworks X-HTTP-Method or X-Method-Override. /board/ is public for GET/HEAD/POST only.
r = await rawRequest(port, 'POST /board/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
ok(reached(r), 'control: a plain POST on the GET/HEAD/POST public route is served');
r = await rawGet(port, '/board/x', ['Host: 127.0.0.1'], { method: 'DELETE' });
ok(!reached(r), `control: DELETE on it needs the moderators rule (${r.status})`);
for (const h of ['X-HTTP-Method-Override: DELETE', 'x-http-method-override: delete', 'X-HTTP-Method: DELETE',
  'X-Method-Override: DELETE', 'X-HTTP-Method-Override: DELETE, POST', 'X-HTTP-Method-Override: PUT']) {
  const before = seen.length;
  r = await rawRequest(port, `POST /board/x HTTP/1.1\r\nHost: 127.0.0.1\r\n${h}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  ok(!reached(r) && seen.length === before, `POST with ${h}: judged as that method too, not served (${r.status})`);
}
r = await rawRequest(port, 'POST /board/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-HTTP-Method-Override: GET\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
ok(reached(r), 'control: an override to a method the route also allows (GET) is served');
// Symfony with the method parameter override on (Laravel turns it on) reads _method from the query
// string too: POST /board/x?_method=DELETE is served as a DELETE.
for (const q of ['_method=DELETE', '_method=delete', 'a=1&_method=PUT', '_method=GET&_method=DELETE', '_method=%44ELETE', '.method=DELETE', '+method=DELETE', '%5Fmethod=DELETE', 'a=1&%5fmethod=PUT']) {
  const before = seen.length;
  r = await rawRequest(port, `POST /board/x?${q} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  ok(!reached(r) && seen.length === before && r.status !== 500, `POST /board/x?${q}: judged as that method too, not served (${r.status})`);
}
r = await rawRequest(port, 'POST /board/x?_method=GET HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
ok(reached(r), 'control: ?_method=GET (a method the route also allows) is served');
// underscores_in_headers on (an operator's choice): nginx passes X_HTTP_Method_Override to the
// upstream, and PHP (Symfony, Laravel), CGI and Rack read it as X-HTTP-Method-Override.
r = await rawRequest(uportAll, 'POST /board/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
ok(reached(r), 'control: underscores_in_headers on, a plain POST on the public route is served');
for (const h of ['X_HTTP_Method_Override: DELETE', 'x_http_method: DELETE', 'X_Method-Override: DELETE',
  'X-HTTP-Method-Override: GET\r\nX_HTTP_Method_Override: DELETE']) {
  const before = seen.length;
  r = await rawRequest(uportAll, `POST /board/x HTTP/1.1\r\nHost: 127.0.0.1\r\n${h}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  ok(!reached(r) && seen.length === before && r.status !== 500,
    `underscores_in_headers on, POST with ${h.replace(/\r\n/g, ' + ')}: judged as that method too, not served (${r.status})`);
}

// ---- 18b. a route mapping more claims than an answer has header slots: never a cut-down identity ----
{
  r = await request(`${egd.url}/auth`, { method: 'HEAD', headers: { Host: '127.0.0.1', 'X-Original-URI': '/many/x',
    'X-Original-Method': 'GET', 'X-Forwarded-Proto': 'http', 'X-Real-IP': '127.0.0.1', Cookie: aliceCookie } });
  const mapped = Object.keys(r.headers).filter((k) => /^x-claim-\d+$/.test(k)).length;
  ok(r.status === 403 || (r.status === 200 && mapped === 30),
    `/auth for a route mapping 30 claim headers: all 30 or a 403, never part of them (${r.status}, ${mapped} mapped)`);
  r = await request(`${egd.url}/auth`, { method: 'HEAD', headers: { Host: '127.0.0.1', 'X-Original-URI': '/claims/x',
    'X-Original-Method': 'GET', 'X-Forwarded-Proto': 'http', 'X-Real-IP': '127.0.0.1', Cookie: aliceCookie } });
  ok(r.status === 200 && r.headers['x-user-sub'], `control: /auth straight from 127.0.0.1 with alice's cookie on /claims/ (${r.status})`);
}

// ---- 19. huge claims never turn into an nginx error (answer headers past proxy_buffer_size) --------
{
  who = { sub: 'u-big', email: 'big@good.test', email_verified: true, preferred_username: 'big',
    bigGroups: true, groups: Array.from({ length: 2000 }, (_, i) => `group-with-a-long-name-${i}`) };
  const jar = new Jar();
  r = await jar.follow(`${pub}/claims/big`);
  ok(r.status === 403 && /identity_too_large/.test(r.body), `a user with 2,000 groups (~50 KB of claims): ${r.status} identity_too_large, never an nginx 5xx`, r.body?.slice(0, 300));
  r = await rawGet(port, '/claims/big', ['Host: 127.0.0.1', `Cookie: ${jar.header(`${pub}/claims/big`)}`, 'Accept: application/json']);
  ok(r.status === 403 && /"identity_too_large"/.test(r.body), 'its JSON names identity_too_large', r.body);
  r = await rawGet(port, '/public/x', ['Host: 127.0.0.1', `Cookie: ${jar.header(`${pub}/claims/big`)}`]);
  ok(reached(r), 'control: the same user on a public route is served');
  who = { sub: 'u-mid', email: 'mid@good.test', email_verified: true, bigGroups: true,
    groups: Array.from({ length: 200 }, (_, i) => `group-with-a-long-name-${i}`) };
  const mid = new Jar();
  r = await mid.follow(`${pub}/claims/mid`);
  ok(reached(r) && JSON.parse(r.body).headers['x-auth-request-groups'].split(',').length === 200,
    'control: 200 groups (~5 KB) are passed on whole', r.status);
}

// ---- 20. the login redirect built from a hostile target never leaves the site -----------------------
for (const t of ['//evil.test/x', '/\\evil.test/x', '/%2F%2Fevil.test/x', '/%5Cevil.test', '//evil.test@127.0.0.1/x', '/.//evil.test']) {
  const jar = new Jar();
  who = { sub: 'u-rd', email: 'rd@good.test', email_verified: true };
  const hops = [];
  let url = `${pub}${t}`;
  let res = await rawGet(port, t, ['Host: 127.0.0.1', 'Accept: text/html']);
  for (let i = 0; i < 6 && res.status >= 300 && res.status < 400 && res.headers.location; i++) {
    url = new URL(res.headers.location, url).toString();
    hops.push(url);
    if (!url.startsWith(pub) && !url.startsWith(op.issuer)) break;
    res = await jar.fetch(url);
  }
  ok(hops.every((u) => u.startsWith(pub) || u.startsWith(op.issuer)), `target ${t}: every redirect stays on the site or the OP (${res.status})`, hops);
}

// ---- 16. claims changed at the IdP reach the session at its next refresh (Pomerium CVE-2021-41230) --
// The real OP (tools/op/op.mjs): access tokens live 4 s, edgegated refreshes 2 s before.
{
  const s2 = await startStack({ op: { accessTokenTTL: 4 }, oidc: { refresh_before: '2s' },
    edgegate: { routes: [{ path: '/ops/', auth: 'session', allow: { groups: ['ops'] } }, { path: '/', auth: 'session' }] } });
  setAccount('carol', { groups: ['ops'] });
  const jar = new Jar();
  r = await browserLogin(jar, `${s2.pub}/ops/x`, 'carol');
  is(r.status, 200, 'control: carol (in ops) reaches /ops/');
  setAccount('carol', { groups: ['dev'] }); // removed from ops at the IdP
  await sleep(2600);
  r = await jar.fetch(`${s2.pub}/ops/x`);
  is(r.status, 403, 'after the refresh the removed group no longer lets carol in');
  r = await jar.fetch(`${s2.pub}/app/`);
  is(r.status, 200, 'and the session itself lives on (only its claims changed)');
}

const alive = (await request(`${egd.url}/healthz`)).status === 200;
ok(alive, 'edgegated alive at the end');
if (!alive) diag(egd.log());
await done();
