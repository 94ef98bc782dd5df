#!/usr/bin/env node
// upstream_headers.t.mjs - what the protected app receives of the headers edgegated's own
// protocol uses (X-Original-*, X-Real-*, X-Server-*, X-Edgegate-*) and of the path-prefix
// headers (X-Forwarded-Prefix and kin), raw through real nginx with the shipped snippets, the
// daemon started as root and dropping to its user. The snippet sets those headers on the auth
// subrequest only; a client's own must not reach the app (an app that reads X-Original-URI or
// X-Real-IP would believe the client). An operator's own proxy_set_header for such a header in
// the protected location still gets through, exactly once. A client's X-Forwarded-Prefix is
// also judged by edgegated (prefix + path, most restrictive wins), for proxies that pass it on.
import fs from 'node:fs';
import path from 'node:path';
import {
  ok, is, done, guard, freePort, startEdgegated, startNginx, tmpdir, ensureTestUser, TEST_USER, request,
  nginxHeaders,
} from '../lib/harness.mjs';
import { rawRequest } from '../lib/rawhttp.mjs';
import { startRecorder, startGroupsIssuer } from '../lib/recorder.mjs';

guard(90000);
ensureTestUser();

const { port: upstreamPort, heads: seen } = await startRecorder();
const ISS = 'https://idp.example.test';
const AUD = 'api://app';
const { jwks } = await startGroupsIssuer({ iss: ISS, aud: AUD });
const dir = tmpdir('uphdr-');
const [ngxPort, egPort] = [await freePort(), await freePort()];
fs.mkdirSync(path.join(dir, 'eg'));
const eg = await startEdgegated({
  listen: `127.0.0.1:${egPort}`,
  user: TEST_USER, // started as root, drops to its user (the documented deployment)
  public_url: `http://app.example.test:${ngxPort}`,
  jwt: { jwks_url: jwks.url, issuer: ISS, audience: AUD, algorithms: ['ES256'] },
  routes: [
    { host: 'admin.example.test', path: '/vault/', auth: 'any' },
    { path: '/public/', auth: 'public' },
    { path: '/admin/', auth: 'any' },
    { path: '/', auth: 'public' },
  ],
}, { dir: path.join(dir, 'eg') });
fs.mkdirSync(path.join(dir, 'ngx'));
await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream recorder { server 127.0.0.1:${upstreamPort}; }
  server {
    listen 127.0.0.1:${ngxPort};
    server_name app.example.test;
    # an operator's server-level line: not inherited by the protected locations below
    # (they have proxy_set_header lines of their own, the snippet's)
    proxy_set_header X-Server-Level yes;
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://recorder;
    }
    # an operator who gives the app the true values sets them in the location: the
    # snippet's empty lines do not conflict with them
    location /own/ {
      {{EDGEGATE_PROTECT}}
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Forwarded-Prefix /mounted;
      proxy_pass http://recorder;
    }
  }`, { dir: path.join(dir, 'ngx'), edgegate: `127.0.0.1:${egPort}`, waitPort: ngxPort });

async function send(target, lines = []) {
  const before = seen.length;
  const text = `GET ${target} HTTP/1.1\r\nHost: app.example.test\r\n${lines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`;
  const res = await rawRequest(ngxPort, text, { timeout: 10000 });
  return { status: res.status, heads: seen.slice(before) };
}
// the values of a header in a recorded header block (every occurrence, any case)
const values = (head, name) => head.split('\r\n').slice(1)
  .filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))
  .map((l) => l.slice(name.length + 1).trim());

// ---- 1. edgegated's protocol headers ---------------------------------------------------------
const FORGED = {
  'X-Original-URI': '/admin/secret',
  'X-Original-Host': 'admin.example.test',
  'X-Original-Method': 'DELETE',
  'X-Original-Upgrade': 'websocket',
  'X-Real-IP': '203.0.113.66',
  'X-Real-Port': '6666',
  'X-Server-Addr': '203.0.113.1',
  'X-Server-Port': '6667',
  'X-Edgegate-Request-Id': 'forged-request-id',
  'X-Edgegate-Denial-Key': 'forged-denial-key',
};
let r = await send('/public/x', ['X-Unrelated: kept']);
ok(r.status === 200 && r.heads.length === 1, 'control: /public/x is served to no one', r);
is(values(r.heads[0] || '', 'X-Unrelated').join(), 'kept', 'control: an unrelated client header reaches the app');
r = await send('/public/x', Object.entries(FORGED).map(([k, v]) => `${k}: ${v}`));
ok(r.status === 200 && r.heads.length === 1, 'the request with forged protocol headers is served (public route)', r);
for (const [name, value] of Object.entries(FORGED)) {
  const got = values(r.heads[0] || '', name);
  ok(got.length === 0, `the client's ${name}: ${value} does not reach the app`, got);
}
// lower case, as some clients send them
r = await send('/public/x', ['x-original-uri: /admin/secret', 'x-real-ip: 203.0.113.66']);
ok(r.status === 200 && values(r.heads[0] || '', 'X-Original-URI').length === 0 &&
  values(r.heads[0] || '', 'X-Real-IP').length === 0, 'lower-case spellings do not reach the app either', r);

r = await send('/own/x', ['X-Real-IP: 203.0.113.66', 'X-Original-URI: /admin/secret']);
ok(r.status === 200 && r.heads.length === 1, 'control: /own/x is served', r);
is(JSON.stringify(values(r.heads[0] || '', 'X-Real-IP')), JSON.stringify(['127.0.0.1']),
  'an operator\'s own X-Real-IP $remote_addr reaches the app once, with the true address');
is(JSON.stringify(values(r.heads[0] || '', 'X-Original-URI')), JSON.stringify(['/own/x']),
  'an operator\'s own X-Original-URI $request_uri reaches the app once, with the true target');
r = await send('/public/x');
is(values(r.heads[0] || '', 'X-Server-Level').length, 0,
  'nginx: a server-level proxy_set_header is not inherited into a protected location (docs/trust-model.md)');

// ---- 2. path-prefix headers ------------------------------------------------------------------
const PREFIXES = ['X-Forwarded-Prefix', 'X-Script-Name', 'X-Forwarded-Path', 'X-Forwarded-PathBase'];
r = await send('/public/x', PREFIXES.map((h) => `${h}: /public`));
ok(r.status === 200 && r.heads.length === 1, 'a prefix inside the public area: served', r);
for (const h of PREFIXES)
  is(values(r.heads[0] || '', h).length, 0, `the client's ${h} does not reach the app`);
r = await send('/own/x', ['X-Forwarded-Prefix: /evil']);
is(JSON.stringify(values(r.heads[0] || '', 'X-Forwarded-Prefix')), JSON.stringify(['/mounted']),
  'an operator\'s own X-Forwarded-Prefix reaches the app once, the client\'s never');

// judged by edgegated: Spring (ForwardedHeaderFilter) serves prefix + path as the request URI,
// Flask/ASP.NET build links and redirects from it. Straight at /auth, as from a proxy that
// passes the client's header on (Caddy, Traefik, an older snippet).
const auth = (uri, extra) => request(`${eg.url}/auth`, { headers: nginxHeaders(uri, extra) });
is((await auth('/public/x', {})).status, 200, 'control: /auth allows /public/x');
is((await auth('/public/x', { 'X-Forwarded-Prefix': '/public' })).status, 200,
  'X-Forwarded-Prefix /public on /public/x: /public/public/x is public too, allowed');
is((await auth('/public/x', { 'X-Forwarded-Prefix': '/admin' })).status, 401,
  'X-Forwarded-Prefix /admin on /public/x: judged as /admin/public/x, needs a login (401)');
is((await auth('/public/x', { 'X-Forwarded-Prefix': '/admin/' })).status, 401,
  'X-Forwarded-Prefix /admin/ (trailing slash, Spring trims it): needs a login');
for (const bad of ['//evil.test', 'https://evil.test', '/a,/admin', '\\evil', 'admin', '/a/../admin', '/a%2fb'])
  is((await auth('/public/x', { 'X-Forwarded-Prefix': bad })).status, 403,
    `X-Forwarded-Prefix ${JSON.stringify(bad)}: no two apps read it alike, 403`);
// with a host override as well: the app may take both (prefix + path on that host)
is((await auth('/public/x', { 'X-Forwarded-Host': 'admin.example.test' })).status, 200,
  'control: X-Forwarded-Host admin.example.test on /public/x: public there too');
is((await auth('/public/x', { 'X-Forwarded-Prefix': '/vault' })).status, 200,
  'control: X-Forwarded-Prefix /vault on /public/x: /vault/public/x is public on this host');
is((await auth('/public/x', { 'X-Forwarded-Host': 'admin.example.test', 'X-Forwarded-Prefix': '/vault' })).status, 401,
  'both: /vault/public/x on admin.example.test needs a login');
r = await auth('/public/x', { 'X-Forwarded-Prefix': '//evil.test', Accept: 'application/json' });
ok(r.status === 403 && /bad_header_target/.test(r.body), 'the refusal names bad_header_target', r);
// the kin: each is another mount-path header some stack reads (Flask/WSGI X-Script-Name,
// ASP.NET X-Forwarded-PathBase, Kong X-Forwarded-Path, the whole original path there)
for (const h of PREFIXES.slice(1)) {
  is((await auth('/public/x', { [h]: '/public' })).status, 200, `${h} /public on /public/x: public, allowed`);
  is((await auth('/public/x', { [h]: '/admin' })).status, 401, `${h} /admin on /public/x: judged as /admin/public/x, 401`);
  r = await auth('/public/x', { [h]: '//evil.test', Accept: 'application/json' });
  ok(r.status === 403 && /bad_header_target/.test(r.body), `${h} //evil.test: 403 bad_header_target`, r);
  is((await auth('/public/x', { [h]: ['/public', '/public'] })).status, 403, `${h} sent twice: 403`);
}
is((await auth('/public/x', { 'X-Forwarded-Prefix': '/public', 'X-Script-Name': '/admin' })).status, 401,
  'X-Forwarded-Prefix /public and X-Script-Name /admin: each is judged, the login one wins (401)');
is((await auth('/public/x', { 'X-Forwarded-Path': '/admin/' })).status, 401,
  'X-Forwarded-Path /admin/ on /public/x: judged as a target too (Kong: the original path), 401');
is((await auth('/public/x', { 'X-Forwarded-Path': '/public/x' })).status, 200,
  'control: X-Forwarded-Path equal to the public path: allowed');
is((await auth('/public/x', { 'X-Forwarded-Host': 'admin.example.test', 'X-Script-Name': '/vault' })).status, 401,
  'X-Forwarded-Host admin.example.test and X-Script-Name /vault: /vault/public/x there needs a login');
r = await send('/public/x', ['X-Forwarded-Prefix: /admin']);
ok((r.status === 401 || r.status === 302) && r.heads.length === 0,
  'through nginx: /public/x with X-Forwarded-Prefix /admin needs a login, the app is not asked', r);

await done();
