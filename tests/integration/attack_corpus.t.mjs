#!/usr/bin/env node
// attack_corpus.t.mjs - attacks from public corpora and peer advisories that the other suites
// do not send, raw through real nginx (shipped snippets) to an upstream that records what it
// was asked for, with edgegated started as root and dropping to its user. Bearer tokens only
// (no OP): each check is about the request, not the login. A control for each class shows the
// same setup serves the legitimate request.
import fs from 'node:fs';
import path from 'node:path';
import {
  ROOT, ok, is, done, guard, freePort, startEdgegated, startNginx, request, tmpdir, onCleanup,
} from '../lib/harness.mjs';
import { rawRequest } from '../lib/rawhttp.mjs';
import { startRecorder, startGroupsIssuer } from '../lib/recorder.mjs';

guard(120000);

const ISS = 'https://idp.example.test';
const AUD = 'api://app';

const { port: upstreamPort, heads: seen } = await startRecorder(); // each request's header block
const { jwks, mint } = await startGroupsIssuer({ iss: ISS, aud: AUD });

const dir = tmpdir('attacks-');
const [ngxPort, egPort] = [await freePort(), await freePort()];
fs.mkdirSync(path.join(dir, 'eg'));
const eg = await startEdgegated({
  listen: `127.0.0.1:${egPort}`,
  user: 'nobody', // the documented deployment: started as root, drops to its user
  public_url: `http://app.example.test:${ngxPort}`,
  jwt: { jwks_url: jwks.url, issuer: ISS, audience: AUD, algorithms: ['ES256'] },
  routes: [
    { host: 'admin.example.test', path: '/vault/', auth: 'any', allow: { groups: ['admins'] } },
    { host: 'admin.example.test', path: '/', auth: 'any', allow: { groups: ['admins', 'dev'] } },
    { path: '/public/', auth: 'public' },
    { path: '/admin/', auth: 'any', allow: { groups: ['admins'] } },
    { path: '/', auth: 'any' },
  ],
}, { dir: path.join(dir, 'eg') });
fs.mkdirSync(path.join(dir, 'ngx'));
await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream recorder { server 127.0.0.1:${upstreamPort}; }
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen 127.0.0.1:${ngxPort};
    server_name app.example.test;
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://recorder;
    }
    # the usual WebSocket recipe: the client's Upgrade goes to the upstream
    location /public/ws/ {
      {{EDGEGATE_PROTECT}}
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_pass http://recorder;
    }
  }`, { dir: path.join(dir, 'ngx'), edgegate: `127.0.0.1:${egPort}`, waitPort: ngxPort });

const user = `Authorization: Bearer ${await mint(['dev'])}`;
const admin = `Authorization: Bearer ${await mint(['admins'])}`;

// One raw request through nginx; returns { status, reached: [request lines the upstream got] }.
async function send(target, lines = [], method = 'GET') {
  const before = seen.length;
  const text = `${method} ${target} HTTP/1.1\r\nHost: app.example.test\r\n${lines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`;
  const res = await rawRequest(ngxPort, text, { timeout: 10000 });
  return { status: res.status, reached: seen.slice(before).map((h) => h.split('\r\n')[0]), res };
}

// ---- header-borne targets: X-Original-URL / X-Rewrite-URL -----------------------------------
// Symfony before CVE-2018-14773, Zend Framework / Laminas and IIS applications take the path
// from X-Original-URL or X-Rewrite-URL when the request carries one (the PortSwigger "URL-based
// access control can be circumvented" class). nginx passes the client's header on to the
// upstream, so the path named there must be judged too.
let r = await send('/public/x');
ok(r.status === 200 && r.reached.length === 1, 'control: /public/x is served to no one');
r = await send('/public/x', ['X-Original-URL: /public/y']);
ok(r.status === 200 && r.reached.length === 1, 'control: X-Original-URL naming a public path is served');
r = await send('/x', [user, 'X-Rewrite-URL: /other']);
ok(r.status === 200 && r.reached.length === 1, 'control: a user with X-Rewrite-URL naming a path it may enter is served');
for (const [who, cred] of [['no one', []], ['a non-admin token', [user]]]) {
  for (const h of ['X-Original-URL: /admin/secret', 'X-Rewrite-URL: /admin/secret', 'x-original-url: /ADMIN/secret',
    'X-Original-URL: http://app.example.test/admin/secret', 'X-Original-URL: /public/../admin/secret',
    'X-Original-URL: /public/x\r\nX-Original-URL: /admin/secret', 'X-Original-URL: http://other.example/public/x']) {
    r = await send(who === 'no one' ? '/public/x' : '/x', [...cred, h]);
    ok(r.reached.length === 0 && (r.status === 302 || r.status === 401 || r.status === 403),
      `${who}, ${JSON.stringify(h)}: the header's path is judged too, not served (${r.status})`, r.reached);
  }
}
// The whole hostile-target corpus (issue 10) once more, as X-Original-URL of a public request:
// the header's path is read exactly like a request target, so what is refused as a target is
// refused as a header too (no one; the controls above show the header alone can be served).
{
  const corpus = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/integration/data/hostile_targets.json'), 'utf8'));
  const misses = [];
  let compared = 0;
  for (const c of corpus) {
    const bytes = Buffer.from(c.target, c.encoding || 'utf8');
    if (bytes.some((b) => b < 0x20 || b === 0x7f)) continue; // not a header value
    const target = bytes.toString('latin1');
    const direct = await rawRequest(ngxPort, `GET ${target} HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n`, { timeout: 10000 });
    if (direct.status === 200 || direct.status === 400) continue; // served, or nginx refused the line itself
    compared++;
    const before = seen.length;
    const via = await rawRequest(ngxPort, `GET /public/x HTTP/1.1\r\nHost: app.example.test\r\nX-Original-URL: ${target}\r\nConnection: close\r\n\r\n`, { timeout: 10000 });
    if (via.status === 200 || seen.length !== before) misses.push(`${JSON.stringify(c.target)}: as the target ${direct.status}, as X-Original-URL ${via.status}`);
  }
  ok(compared >= 200 && misses.length === 0, `${compared} hostile targets refused as the request target are refused as X-Original-URL too`, misses.slice(0, 20));
}
r = await send('/x', [admin, 'X-Original-URL: /admin/secret']);
ok(r.status === 200 && r.reached.length === 1, 'control: an admin token with X-Original-URL: /admin/secret is served');

// ---- encoded control characters: cut at or dropped -------------------------------------------
// A control escape (%09, or %2500 decoded twice) keeps a target to public routes, but
// "..%2500" is ".." to C code that decodes twice and stops at the NUL ("/public/.." = "/"),
// and "..%09" is ".." to normalisers that drop or trim controls: both readings are judged.
r = await send('/public/a%09b.txt');
ok(r.status === 200 && r.reached.length === 1, 'control: /public/a%09b.txt (every reading public) is served');
r = await send('/public/a%2500b.txt');
ok(r.status === 200 && r.reached.length === 1, 'control: /public/a%2500b.txt is served');
for (const [who, cred] of [['no one', []], ['a non-admin token', [user]]]) {
  for (const target of ['/public/..%2500/admin/x', '/public/..%09/admin/x', '/public/..%2509/admin/x', '/public/.%00./admin/x',
    '/public/%252e%252e%2500/admin/x', '/public/%2500/../admin/x', '/public/..%7f/admin/x', '/public/..%251f/admin/x']) {
    r = await send(target, cred);
    const deny = who === 'no one' ? r.reached.length === 0 : r.reached.every((l) => !/admin/.test(l));
    ok(deny && (who !== 'no one' || r.status >= 300), `${who}, ${target}: not served as a public target (${r.status})`, r.reached);
  }
}

// ---- found by boundary_property.t.mjs (generative) ---------------------------------------------
// Readings the fixed plans missed. A router that matches the undecoded path (Express's req.path)
// keeps "%2e%2e" as a name: /admin/%2e%2e/x is under /admin/ there, /x to every decoder. One
// that ignores ASCII case without compatibility folding reads /ADMIN/x／..／..／public under
// /admin/, while NFKC splits at the fullwidth '/' and climbs to /public. And an X-Original-URL
// no two parsers read alike (IIS reads %u002f as '/') is refused outright.
r = await send('/x/%2e%2e/y', [user]);
ok(r.status === 200 && r.reached.length === 1, 'control: a dev token on /x/%2e%2e/y (every reading under /) is served');
for (const target of ['/admin/%2e%2e/x', '/admin/%2E%2E/x', '/admin/.%2e/public/x',
  '/ADMIN/x%ef%bc%8f..%ef%bc%8f..%ef%bc%8fpublic/x', '/Admin/x%EF%BC%8F..%EF%BC%8F..%EF%BC%8Fx']) {
  r = await send(target, [user]);
  ok(r.reached.length === 0 && r.status === 403, `a dev token, ${target}: judged under /admin/ too, not served (${r.status})`, r.reached);
}
r = await send('/public/x', ['X-Original-URL: /public/y%2e']);
ok(r.status === 200 && r.reached.length === 1, 'control: X-Original-URL /public/y%2e (plain) is served');
for (const h of ['X-Original-URL: /public/x%u002f..%u002fadmin/', 'X-Rewrite-URL: /public/.%00./admin%5csecret',
  'X-Original-URL: /public/%252e%252e%252fadmin/']) {
  r = await send('/public/x', [h]);
  ok(r.reached.length === 0 && r.status === 403, `no one, ${JSON.stringify(h)}: a header target no two parsers read alike is refused (${r.status})`, r.reached);
}

// ---- client X-Forwarded-Host -----------------------------------------------------------------
// Express ("trust proxy"), Django (USE_X_FORWARDED_HOST), Symfony and Rails take the host from
// X-Forwarded-Host when the request comes from their proxy; nginx passes the client's on. Under
// the nginx profile (host = $host) a client's X-Forwarded-Host naming a host-scoped route must
// be judged under that route too.
r = await send('/public/x', ['X-Forwarded-Host: app.example.test']);
ok(r.status === 200 && r.reached.length === 1, 'control: X-Forwarded-Host naming the routed host is served');
r = await send('/vault/x', [admin, 'X-Forwarded-Host: admin.example.test']);
ok(r.status === 200 && r.reached.length === 1, 'control: an admin token with X-Forwarded-Host: admin.example.test on /vault/x is served');
r = await send('/vault/x', [user]);
ok(r.status === 200 && r.reached.length === 1, 'control: a non-admin token on /vault/x of the routed host is served');
// Both at once: Symfony takes the host from X-Forwarded-Host and the path from X-Original-URL.
r = await send('/x', [user, 'X-Forwarded-Host: admin.example.test']);
ok(r.status === 200 && r.reached.length === 1, 'control: a dev token with X-Forwarded-Host: admin.example.test on /x is served (dev may enter admin.example.test/)');
r = await send('/x', [user, 'X-Original-URL: /vault/secret']);
ok(r.status === 200 && r.reached.length === 1, 'control: a dev token with X-Original-URL: /vault/secret on the routed host is served');
r = await send('/x', [user, 'X-Forwarded-Host: admin.example.test', 'X-Original-URL: /vault/secret']);
ok(r.reached.length === 0 && r.status === 403, `a dev token with both: admin.example.test/vault/ is judged and refused (${r.status})`, r.reached);
r = await send('/public/x', ['Forwarded: for=198.18.0.1;proto=https;host=app.example.test']);
ok(r.status === 200 && r.reached.length === 1, 'control: Forwarded naming the routed host is served');
r = await send('/public/x', ['Forwarded: for=198.18.0.1']);
ok(r.status === 200 && r.reached.length === 1, 'control: Forwarded without host= is served');
r = await rawRequest(ngxPort, `GET /public/x HTTP/1.1\r\nHost: admin.example.test\r\nConnection: close\r\n\r\n`);
is(r.status, 401, 'control: /public/x on admin.example.test itself wants an identity (401: no OIDC here)');
for (const [who, target, cred] of [['no one', '/public/x', []], ['a non-admin token', '/vault/x', [user]]]) {
  for (const h of ['X-Forwarded-Host: admin.example.test', 'X-Forwarded-Host: ADMIN.Example.Test.:443',
    'X-Forwarded-Host: app.example.test, admin.example.test', 'X-Forwarded-Host: app.example.test\r\nX-Forwarded-Host: admin.example.test',
    'X-Forwarded-Host: admin.example.test/x', 'Forwarded: host=admin.example.test', 'Forwarded: for=1.2.3.4;Host="admin.example.test:443"',
    'Forwarded: host=app.example.test, for=1.2.3.4;host=admin.example.test', 'forwarded: proto=https; host=admin.example.test']) {
    r = await send(target, [...cred, h]);
    ok(r.reached.length === 0 && (r.status === 302 || r.status === 401 || r.status === 403),
      `${who}, ${JSON.stringify(h)}: judged under admin.example.test's route too, not served (${r.status})`, r.reached);
  }
}

// ---- other host-override headers ---------------------------------------------------------------
// Ktor's XForwardedHeaders takes the host from X-Forwarded-Server as well as X-Forwarded-Host;
// X-Host and X-HTTP-Host-Override are the other host overrides that attack corpora (PortSwigger's
// Host-header attacks, Param Miner's list) send. nginx passes each on to the upstream, so each is
// judged like X-Forwarded-Host (found in the proxy-boundary audit: all three were served).
r = await send('/public/x', ['X-Host: app.example.test', 'X-Forwarded-Server: app.example.test', 'X-HTTP-Host-Override: app.example.test']);
ok(r.status === 200 && r.reached.length === 1, 'control: X-Host, X-Forwarded-Server, X-HTTP-Host-Override naming the routed host are served');
r = await send('/vault/x', [admin, 'X-Host: admin.example.test', 'X-Forwarded-Server: admin.example.test']);
ok(r.status === 200 && r.reached.length === 1, 'control: an admin token with X-Host/X-Forwarded-Server: admin.example.test on /vault/x is served');
for (const [who, target, cred] of [['no one', '/public/x', []], ['a non-admin token', '/vault/x', [user]]]) {
  for (const h of ['X-Host: admin.example.test', 'X-Forwarded-Server: admin.example.test', 'X-HTTP-Host-Override: admin.example.test',
    'x-host: ADMIN.Example.Test.:443', 'X-Forwarded-Server: app.example.test, admin.example.test',
    'X-Host: app.example.test\r\nX-Host: admin.example.test', 'X-HTTP-HOST-OVERRIDE: admin.example.test:80']) {
    r = await send(target, [...cred, h]);
    ok(r.reached.length === 0 && (r.status === 302 || r.status === 401 || r.status === 403),
      `${who}, ${JSON.stringify(h)}: judged under admin.example.test's route too, not served (${r.status})`, r.reached);
  }
  r = await send(target, [...cred, 'X-Host: app.example.test@admin.example.test']);
  ok(r.reached.length === 0 && r.status === 403, `${who}, X-Host with userinfo: 403, not served (${r.status})`, r.reached);
}

// ---- the routed host vs the request line vs Host (raw, as a client may send them) --------------
// A public path on app.example.test, asked for in ways that name admin.example.test somewhere:
// whatever nginx routes on or an upstream reads, the admin host's route must allow it too.
r = await rawThrough('GET http://app.example.test/public/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n');
ok(r.status === 200 && r.reached.length === 1, 'control: absolute-form naming the routed host, same Host, is served');
for (const [name, text] of [
  ['absolute-form app, Host: admin', 'GET http://app.example.test/public/x HTTP/1.1\r\nHost: admin.example.test\r\nConnection: close\r\n\r\n'],
  ['absolute-form https://admin over http', 'GET https://admin.example.test/public/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['absolute-form ADMIN.EXAMPLE.TEST. (case, trailing dot)', 'GET http://ADMIN.EXAMPLE.TEST./public/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['absolute-form admin with a port', 'GET http://admin.example.test:80/public/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['absolute-form app@admin (userinfo)', 'GET http://app.example.test@admin.example.test/public/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['HTTP/1.0 absolute-form admin, no Host', 'GET http://admin.example.test/public/x HTTP/1.0\r\n\r\n'],
  ['Host: admin with a port', 'GET /public/x HTTP/1.1\r\nHost: admin.example.test:8080\r\nConnection: close\r\n\r\n'],
  ['Host: admin, trailing dot', 'GET /public/x HTTP/1.1\r\nHost: admin.example.test.\r\nConnection: close\r\n\r\n'],
  ['Host: ADMIN.example.TEST', 'GET /public/x HTTP/1.1\r\nHost: ADMIN.example.TEST\r\nConnection: close\r\n\r\n'],
  ['Host: admin, trailing space', 'GET /public/x HTTP/1.1\r\nHost: admin.example.test \r\nConnection: close\r\n\r\n'],
  ['Host: app\\admin', 'GET /public/x HTTP/1.1\r\nHost: app.example.test\\admin.example.test\r\nConnection: close\r\n\r\n'],
  ['Host: admin, tab', 'GET /public/x HTTP/1.1\r\nHost:\tadmin.example.test\r\nConnection: close\r\n\r\n'],
  ['Host: admin%2eexample.test', 'GET /public/x HTTP/1.1\r\nHost: admin%2eexample.test\r\nConnection: close\r\n\r\n'],
]) {
  r = await rawThrough(text);
  ok(r.reached.length === 0 && r.status !== 0 && r.status < 500, `${name}: not served to no one (${r.status})`, r.reached);
}

// ---- request-line and header tricks that already hold (no other suite sends them) ------------
// Each must neither reach the upstream under /admin/ nor make nginx answer 5xx.
async function rawThrough(text) {
  const before = seen.length;
  const res = await rawRequest(ngxPort, text, { timeout: 10000 }).catch(() => ({ status: 0 }));
  return { status: res.status, reached: seen.slice(before).map((h) => h.split('\r\n')[0]) };
}
const held = [
  ['HTTP/1.0 without Host', 'GET /admin/x HTTP/1.0\r\n\r\n'],
  ['HTTP/1.0 without Host, a non-admin token', `GET /admin/x HTTP/1.0\r\n${user}\r\n\r\n`],
  ['OPTIONS', 'OPTIONS /admin/x HTTP/1.1\r\nHost: app.example.test\r\nOrigin: https://evil.test\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n'],
  ['TRACE', 'TRACE /admin/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['CONNECT', 'CONNECT app.example.test:80 HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['PROPFIND', 'PROPFIND /admin/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['absolute-form naming admin.example.test', 'GET http://admin.example.test/public/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['two Host headers', 'GET /public/x HTTP/1.1\r\nHost: app.example.test\r\nHost: admin.example.test\r\nConnection: close\r\n\r\n'],
  ['Host with userinfo', 'GET /public/x HTTP/1.1\r\nHost: app.example.test@admin.example.test\r\nConnection: close\r\n\r\n'],
  ['client X-Original-URI', `GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\nX-Original-URI: /public/x\r\n${user}\r\nConnection: close\r\n\r\n`],
  ['client x-original-uri (lower case)', `GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\nx-original-uri: /public/x\r\n${user}\r\nConnection: close\r\n\r\n`],
  ['client X-Original-Method', `GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\nX-Original-Method: OPTIONS\r\n${user}\r\nConnection: close\r\n\r\n`],
  ['obs-fold continuation of Authorization', `GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\nAuthorization: Bearer\r\n ${admin.slice(22)}\r\nConnection: close\r\n\r\n`],
  ['space before the colon', `GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\nAuthorization : Bearer x\r\nConnection: close\r\n\r\n`],
  ['user and admin Authorization lines', `GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\n${user}\r\n${admin}\r\nConnection: close\r\n\r\n`],
  ['two tokens in one Authorization', `GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\n${user}, ${admin.slice(15)}\r\nConnection: close\r\n\r\n`],
  ['Transfer-Encoding and Content-Length', 'POST /admin/x HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n'],
  ['a 16 KB target', `GET /admin/${'a'.repeat(16384)} HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n`],
  // added by the proxy-boundary audit
  ['CL.TE with /admin/x smuggled in the body', 'POST /public/x HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: app.example.test\r\n\r\n'],
  ['TE.TE (chunked, identity)', 'POST /public/x HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nConnection: close\r\n\r\n0\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: app.example.test\r\n\r\n'],
  ['two Content-Length', 'POST /public/x HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 5\r\nContent-Length: 40\r\nConnection: close\r\n\r\nabcdeGET /admin/x HTTP/1.1\r\nHost: a\r\n\r\n'],
  ['HTTP/0.9 request line', 'GET /admin/x HTTP/0.9\r\n\r\n'],
  ['HTTP/2 preface on the HTTP/1 port', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
  ['lower-case method', 'get /admin/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['two targets in the request line', 'GET /public/x /admin/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['two spaces before the target', 'GET  /admin/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n'],
  ['bare LF line ends', 'GET /admin/x HTTP/1.1\nHost: app.example.test\nConnection: close\n\n'],
  ['hop-by-hop: Connection names Authorization, X-Original-URI', `GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\n${user}\r\nX-Original-URI: /public/x\r\nConnection: close, Authorization, X-Original-URI, X-Real-IP\r\n\r\n`],
  ['a WebSocket upgrade on /admin/, no identity', 'GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\nUpgrade: websocket\r\nConnection: close, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'],
  ['a WebSocket upgrade on /admin/, a non-admin token', `GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\n${user}\r\nUpgrade: websocket\r\nConnection: close, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`],
];
for (const [name, text] of held) {
  r = await rawThrough(text);
  ok(r.status !== 0 && r.status < 500 && r.reached.every((l) => !/admin/.test(l)), `${name}: not served under /admin/, no 5xx (${r.status})`, r.reached);
}
r = await rawThrough('GET /public/x HTTP/1.0\r\n\r\n');
ok(r.status === 200 && r.reached.length === 1, 'control: HTTP/1.0 without Host reaches a public path');
r = await rawThrough(`GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\nauthorization: bearer ${admin.slice(22)}\r\nConnection: close\r\n\r\n`);
ok(r.status === 200 && r.reached.length === 1, 'control: an admin token with a lower-case scheme (RFC 7235) is served');

// Pipelined: a public request and an /admin/ one on the same connection; each is judged.
{
  const before = seen.length;
  const res = await rawRequest(ngxPort, 'GET /public/x HTTP/1.1\r\nHost: app.example.test\r\n\r\nGET /admin/x HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n', { timeout: 10000 });
  const statuses = [...res.raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  const reachedNow = seen.slice(before).map((h) => h.split('\r\n')[0]);
  ok(statuses.length === 2 && statuses[0] === 200 && statuses[1] === 401 && reachedNow.length === 1 && !/admin/.test(reachedNow[0]),
    `pipelined /public/x then /admin/x: 200 then 401, only the public one reached the upstream (${statuses})`, reachedNow);
}
// An unknown Transfer-Encoding is nginx's own 501: the request never reaches a parser behind it.
r = await rawThrough('POST /admin/x HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: xchunked\r\nConnection: close\r\n\r\n0\r\n\r\n');
ok(r.reached.length === 0 && r.status === 501, `Transfer-Encoding: xchunked: nginx's 501, nothing reached (${r.status})`, r.reached);
// Hop-by-hop: a client's Connection header naming the identity header does not make nginx drop
// the snippet's value, and the client's own value never reaches the upstream.
r = await send('/public/ws/x', ['X-Auth-Request-User: admin', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Connection: Upgrade, X-Auth-Request-User']);
{
  const head = r.reached.length ? seen[seen.length - 1] : '';
  ok(r.reached.length === 1 && !/\r\nx-auth-request-user: *admin/i.test(head),
    'Connection: Upgrade, X-Auth-Request-User with a forged X-Auth-Request-User: the forged value never reaches the upstream', head);
}

// ---- h2c smuggling ----------------------------------------------------------------------------
// Behind the usual WebSocket recipe nginx passes any Upgrade on; an upstream that speaks h2c
// (Go's h2c handler, Jetty, Netty ...) switches protocols and the client then sends HTTP/2
// requests for any path through the tunnel, none of them judged (BishopFox h2csmuggler).
// Only WebSocket upgrades are let through, on every route.
r = await send('/public/ws/x', ['Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']);
ok(r.status === 200 && r.reached.length === 1 && /\r\nupgrade: websocket/i.test(seen[seen.length - 1]),
  'control: a WebSocket upgrade on a public path is passed on', seen[seen.length - 1]);
for (const [who, cred] of [['no one', []], ['a user token', [user]]]) {
  for (const h of [['Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA'], ['Upgrade: h2c'], ['Upgrade: H2C'],
    ['Upgrade: websocket, h2c'], ['Upgrade: h2'], ['Upgrade: TLS/1.2'], ['Upgrade: websocket', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA']]) {
    r = await send('/public/ws/x', [...cred, ...h]);
    ok(r.reached.length === 0 && r.status === 403, `${who}, ${h.join(' + ')}: refused, nothing reaches the upstream (${r.status})`, r.reached);
  }
}

// ---- a header line libmicrohttpd skips ----------------------------------------------------------
// A line starting with a NUL has no colon to libmicrohttpd (it reads it as a C string) and is
// dropped without a word: a request two parsers read differently, refused like a NUL inside a
// value (found by fuzz_http; seeds nul_line_*). Straight at the daemon, from a trusted peer.
{
  const proxyHeaders = 'Host: app.example.test\r\nX-Original-URI: /public/x\r\nX-Original-Method: GET\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 198.18.0.10\r\n';
  let d = await rawRequest(egPort, `GET /auth HTTP/1.1\r\n${proxyHeaders}Connection: close\r\n\r\n`);
  is(d.status, 200, 'control: the proxy headers alone, straight at /auth -> 200');
  d = await rawRequest(egPort, `GET /auth HTTP/1.1\r\n\0X-Original-URI: /admin/x\r\n${proxyHeaders}Connection: close\r\n\r\n`);
  is(d.status, 403, 'a NUL-led header line before the proxy headers -> 403');
  d = await rawRequest(egPort, `GET /healthz HTTP/1.1\r\n\0\0Host: a\r\nConnection: close\r\n\r\n`);
  ok(d.status !== 200, `/healthz with a NUL-led header line is not answered 200 (${d.status})`);
}

// ---- one challenge per 401 -----------------------------------------------------------------------
// nginx's auth_request copies the subrequest's WWW-Authenticate into the 401 itself; the
// snippet must not add it a second time (clients that read one header saw it twice).
{
  const res = await rawRequest(ngxPort, `GET /admin/x HTTP/1.1\r\nHost: app.example.test\r\nAuthorization: Bearer abc.def.ghi\r\nConnection: close\r\n\r\n`);
  const lines = res.raw.split('\r\n\r\n')[0].split('\r\n').filter((l) => /^www-authenticate:/i.test(l));
  ok(res.status === 401 && lines.length === 1 && /^WWW-Authenticate: Bearer .*error="invalid_token"/i.test(lines[0]),
    'a bad token gets a 401 with exactly one WWW-Authenticate: Bearer ... error="invalid_token"', res.raw.slice(0, 600));
}

const alive = await request(`${eg.url}/healthz`).then((x) => x.status === 200, () => false);
ok(alive && eg.proc.exitCode === null, 'edgegated is alive at the end', eg.log());
await done();
