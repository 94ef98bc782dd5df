#!/usr/bin/env node
// hostile_targets.t.mjs - issue 10's regression corpus: several hundred hostile request
// targets (tests/integration/data/hostile_targets.json) sent raw over a socket through
// real nginx, configured with the shipped snippets only, to an upstream that records the
// request line it received. Sent as no one, as a non-admin session (a real login at the
// OP) and as a non-admin bearer token. Fails on any request that reached the upstream at
// a target that some reading puts under a route the caller may not enter, on any nginx
// 5xx, and when the daemon is not alive at the end. The readings are computed here, in
// JavaScript, independently of the C code, as the full product of the transforms.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  ROOT, ok, is, done, guard, diag, freePort, startEdgegated, startNginx, request, tmpdir, onCleanup, waitFor,
} from '../lib/harness.mjs';
import { Jar, browserLogin } from '../lib/oidc_helpers.mjs';
import { startOP } from '../lib/op.mjs';
import { startRecorder, startGroupsIssuer } from '../lib/recorder.mjs';
import { windowsTrim } from '../lib/paths.mjs';

guard(300000);

const ISS = 'https://idp.example.test';
const AUD = 'api://app';
const ROUTES = [
  { path: '/public/', auth: 'public' },
  { path: '/admin/', auth: 'any', allow: { groups: ['admins'] } },
  { path: '/api/admin/', auth: 'any', allow: { groups: ['admins'] } },
  { path: '/', auth: 'any' },
];

// ---- the readings, written independently of userspace/authz/readings.c -------------------------
const isHex = (b) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

// One percent-decoding. Controls stay encoded; '/' and '\' decode only when seps.
function decode(buf, seps) {
  const out = [];
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 0x25 && i + 2 < buf.length && isHex(buf[i + 1]) && isHex(buf[i + 2])) {
      const v = parseInt(String.fromCharCode(buf[i + 1], buf[i + 2]), 16);
      const keep = v < 0x20 || v === 0x7f || ((v === 0x2f || v === 0x5c) && !seps);
      if (!keep) { out.push(v); i += 2; continue; }
    }
    out.push(buf[i]);
  }
  return Buffer.from(out);
}

// Lenient decoders read overlong forms of ASCII; fold to what they read.
function overlong(buf) {
  const out = [];
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    const cont = (k) => i + k < buf.length && (buf[i + k] & 0xc0) === 0x80;
    let v = -1, len = 0;
    if ((c === 0xc0 || c === 0xc1) && cont(1)) { v = ((c & 0x1f) << 6) | (buf[i + 1] & 0x3f); len = 2; }
    else if (c === 0xe0 && cont(1) && cont(2)) { v = ((buf[i + 1] & 0x3f) << 6) | (buf[i + 2] & 0x3f); len = 3; }
    else if (c === 0xf0 && cont(1) && cont(2) && cont(3)) { v = ((buf[i + 1] & 0x3f) << 12) | ((buf[i + 2] & 0x3f) << 6) | (buf[i + 3] & 0x3f); len = 4; }
    if (len && v >= 0x20 && v < 0x80 && v !== 0x7f) { out.push(v); i += len - 1; } else out.push(c);
  }
  return Buffer.from(out);
}

const IGNORABLE = /[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]/gu;
function fold(buf) {
  const s = new TextDecoder('utf-8').decode(overlong(buf)); // ill-formed -> U+FFFD
  const f = s.toUpperCase().normalize('NFKC').toLowerCase().normalize('NFKC').replace(IGNORABLE, '');
  return Buffer.from(f, 'utf8');
}

function resolve(str, { params, windows, merge, authority, suffix }) {
  let rest = str.slice(1);
  if (authority) {
    if (!str.startsWith('//')) return null;
    const i = str.indexOf('/', 2);
    if (i < 0) return '/';
    rest = str.slice(i + 1);
  }
  const segs = rest.split('/');
  const stack = [];
  let trailing = false;
  segs.forEach((raw, i) => {
    let s = raw;
    if (params && s.includes(';')) s = s.slice(0, s.indexOf(';'));
    if (windows && s !== '.' && s !== '..') s = windowsTrim(s);
    const last = i === segs.length - 1;
    if (s === '.' || s === '..') { if (s === '..') stack.pop(); trailing = true; }
    else if (s === '') { if (last) trailing = true; else if (!merge) { stack.push(''); trailing = false; } }
    else { stack.push(s); trailing = false; }
  });
  if (suffix && stack.length && !trailing) {
    const last = stack[stack.length - 1];
    const dot = last.indexOf('.', 1);
    if (dot > 0 && !/^\.+$/.test(last.slice(0, dot))) stack[stack.length - 1] = last.slice(0, dot);
  }
  return `/${stack.join('/')}${stack.length && trailing ? '/' : ''}`;
}

// Every combination of the transforms: a superset of what the daemon computes.
function readings(target) {
  const raw = target.subarray(0, target.indexOf(0x3f) < 0 ? target.length : target.indexOf(0x3f));
  const out = new Map();
  for (const frag of [false, true]) {
    const hash = raw.indexOf(0x23);
    if (frag && hash < 0) continue;
    const p = frag ? raw.subarray(0, hash) : raw;
    for (const dec of ['once', 'seps', 'twice']) {
      let b = decode(p, dec !== 'once');
      if (dec === 'twice') b = decode(b, true);
      for (const reparse of [false, true]) for (const folded of [false, true]) {
        let bb = b;
        if (reparse) {
          const cut = [bb.indexOf(0x3f), bb.indexOf(0x23)].filter((x) => x >= 0);
          if (!cut.length) continue;
          bb = bb.subarray(0, Math.min(...cut));
        }
        const f = folded ? fold(bb) : bb;
        for (const bs of [false, true]) {
          const s = bs ? f.toString('latin1').replaceAll('\\', '/') : f.toString('latin1');
          for (const params of [false, true]) for (const windows of [false, true]) for (const merge of [false, true]) {
            for (const authority of [false, true]) for (const suffix of [false, true]) {
              const r = resolve(s, { params, windows, merge, authority, suffix });
              if (r !== null) out.set(`${folded ? 'f' : 'n'}${r}`, { path: Buffer.from(r, 'latin1').toString('utf8'), folded });
            }
          }
        }
      }
    }
  }
  return [...out.values()];
}

function validUtf8(buf) {
  try { new TextDecoder('utf-8', { fatal: true }).decode(buf); return true; } catch { return false; }
}

// What no two parsers read alike (the daemon must keep it to public routes).
function ambiguous(target) {
  const q = target.indexOf(0x3f);
  const p = q < 0 ? target : target.subarray(0, q);
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c < 0x21 || c === 0x7f || c === 0x23 || c === 0x5c) return true;
    if (c === 0x25) {
      if (!(i + 2 < p.length && isHex(p[i + 1]) && isHex(p[i + 2]))) return true;
      const v = parseInt(String.fromCharCode(p[i + 1], p[i + 2]), 16);
      if (v < 0x20 || v === 0x7f || v === 0x2f || v === 0x5c || v === 0x3b) return true;
    }
  }
  const once = decode(p, true);
  const twice = decode(once, true);
  if (!validUtf8(once) || !validUtf8(twice)) return true;
  return /%(0[0-9a-f]|1[0-9a-f]|7f)/i.test(once.toString('latin1'));
}

function routeFor(reading) {
  for (const r of ROUTES) {
    const base = r.path.length > 1 && r.path.endsWith('/') ? r.path.slice(0, -1) : r.path;
    const p = reading.folded ? reading.path.toLowerCase() : reading.path;
    if (!p.startsWith(base)) continue;
    const next = p[base.length];
    if (base.endsWith('/') || next === undefined || next === '/' || next === ';') return r;
  }
  return null;
}

const mayEnter = (caller, route) => route && (route.auth === 'public' || (caller !== 'none' && !route.allow));

// Why the upstream must not have served this target to this caller, or null.
function violation(caller, target) {
  const rs = readings(target);
  const bad = rs.filter((r) => !mayEnter(caller, routeFor(r)));
  if (bad.length) return `reading ${JSON.stringify(bad[0].path)}${bad[0].folded ? ' (folded)' : ''} is under ${routeFor(bad[0])?.path ?? 'no route'}`;
  if (ambiguous(target) && rs.some((r) => routeFor(r)?.auth !== 'public')) return 'ambiguous target served outside public routes';
  return null;
}

// ---- the stack ---------------------------------------------------------------------------
// An upstream that records the raw request-target and header block, and answers 200.
const { port: upstreamPort, targets: seen, heads } = await startRecorder();
const { jwks, mint } = await startGroupsIssuer({ iss: ISS, aud: AUD });

const dir = tmpdir('hostile-');
const [opPort, ngxPort, egPort] = [await freePort(), await freePort(), await freePort()];
const pub = `http://127.0.0.1:${ngxPort}`;
const client = {
  client_id: 'edgegate-hostile', client_secret: 'hostile-secret-0123456789abcdef0123456789',
  redirect_uris: [`${pub}/oauth2/callback`], post_logout_redirect_uris: [`${pub}/`],
};
const op = await startOP({ port: opPort, clients: [client] });
onCleanup(() => op.stop());
fs.mkdirSync(path.join(dir, 'eg'));
const eg = await startEdgegated({
  listen: `127.0.0.1:${egPort}`,
  user: 'nobody', // the documented deployment: started as root, drops to its user
  public_url: pub,
  cookie: { secure: false, secret: 'cookie-secret-0123456789abcdef0123456789' },
  oidc: {
    issuer: op.issuer, client_id: client.client_id, client_secret: client.client_secret,
    redirect_url: `${pub}/oauth2/callback`, scopes: ['openid', 'email', 'profile', 'groups'],
  },
  jwt: { jwks_url: jwks.url, issuer: ISS, audience: AUD, algorithms: ['ES256'] },
  routes: ROUTES,
}, { dir: path.join(dir, 'eg') });
await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'OIDC discovery', timeout: 20000 })
  .catch((e) => { throw new Error(`${e.message}\n${eg.log()}`); });
fs.mkdirSync(path.join(dir, 'ngx'));
const ngx = await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream recorder { server 127.0.0.1:${upstreamPort}; }
  server {
    listen 127.0.0.1:${ngxPort};
    server_name 127.0.0.1;
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://recorder;
    }
  }`, { dir: path.join(dir, 'ngx'), edgegate: `127.0.0.1:${egPort}`, waitPort: ngxPort });

// A non-admin session through the real login (bob is in "dev" only).
const jar = new Jar();
const login = await browserLogin(jar, `${pub}/app/login-landing`, 'bob');
is(login.status, 200, 'bob logs in at the OP through nginx');
const session = jar.get('_edgegate')?.value;
ok(session, 'bob has a session cookie');
const userToken = await mint(['dev']);
const adminToken = await mint(['admins']);

// ---- raw requests ----------------------------------------------------------------------------
function rawGet(target, headers = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(ngxPort, '127.0.0.1');
    const chunks = [];
    const head = Object.entries({ Host: '127.0.0.1', ...headers, Connection: 'close' }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    sock.on('connect', () => sock.write(Buffer.concat([Buffer.from('GET '), target, Buffer.from(` HTTP/1.1\r\n${head}\r\n`)])));
    sock.on('data', (d) => chunks.push(d));
    const finish = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    };
    sock.on('end', finish);
    sock.on('error', finish);
    sock.setTimeout(10000, () => { sock.destroy(); });
  });
}

const callers = {
  none: {},
  session: { Cookie: `_edgegate=${session}` },
  bearer: { Authorization: `Bearer ${userToken}` },
};

// Controls: the setup can tell allowed from denied at all.
let r = await rawGet(Buffer.from('/admin/x'), { Authorization: `Bearer ${adminToken}` });
is(r.status, 200, 'control: an admin token reaches /admin/');
r = await rawGet(Buffer.from('/admin/x'), callers.bearer);
is(r.status, 403, 'control: a non-admin token gets 403 on /admin/');
r = await rawGet(Buffer.from('/admin/x'), callers.session);
is(r.status, 403, 'control: a non-admin session gets 403 on /admin/');
r = await rawGet(Buffer.from('/admin/x'));
is(r.status, 302, 'control: no one is sent to the login on /admin/');
r = await rawGet(Buffer.from('/ADMIN/x'), { Authorization: `Bearer ${adminToken}` });
is(r.status, 200, 'control: an admin token reaches /ADMIN/ (every reading allowed)');
r = await rawGet(Buffer.from('/admin'), callers.bearer);
is(r.status, 403, 'route prefix: /admin/ covers the bare /admin');
r = await rawGet(Buffer.from('/admin;x'), callers.bearer);
is(r.status, 403, 'route prefix: /admin/ covers /admin;x');
r = await rawGet(Buffer.from('/admin/..;/public/x'), callers.bearer);
is(r.status, 403, '/admin/..;/public/x is judged under /admin/ (nginx, Express, Go read it there)');

// Several routes reached: identity from the strict reading's route, or from the route that
// needed one when the strict reading's is public; 403 outranks 401; ambiguous on public.
const adminAuth = { Authorization: `Bearer ${adminToken}` };
let before = heads.length;
r = await rawGet(Buffer.from('/public/..;/admin/x'), adminAuth);
is(r.status, 200, 'an admin token on /public/..;/admin/x (public and admin readings) -> 200');
ok(/\r\nx-auth-request-user: u-admins\r\n/i.test(heads.slice(before).join('')),
  'identity headers come from the admin route when the strict reading is public', heads.slice(before).join('\n'));
r = await rawGet(Buffer.from('/public/..;/admin/x'));
is(r.status, 302, 'no one on /public/..;/admin/x -> login (401 from the admin reading)');
r = await rawGet(Buffer.from('/public/..;/admin/x'), callers.session);
is(r.status, 403, 'a non-admin session on /public/..;/admin/x -> 403');
r = await rawGet(Buffer.from('/app/..;/admin/x'), { Cookie: 'x=1' });
is(r.status, 302, 'no one on /app/..;/admin/x -> 401 (both readings want a login)');
r = await rawGet(Buffer.from('/app/..;/admin/x'), callers.bearer);
is(r.status, 403, 'a non-admin token on /app/..;/admin/x -> 403 outranks the allowed /app reading');
before = seen.length;
r = await rawGet(Buffer.from('/public/a%2fb'));
ok(r.status === 200 && seen.length === before + 1, 'ambiguous target whose every reading is public is served (/public/a%2fb)', r.text.slice(0, 200));
r = await rawGet(Buffer.from('/app/a%2fb'), callers.session);
is(r.status, 403, 'ambiguous target outside public routes -> 403 even with a session');
// nginx replaces a 403's body; ask the daemon directly (loopback is a trusted peer)
r = await request(`${eg.url}/auth`, { headers: { 'X-Original-URI': '/app/a%2fb', 'X-Original-Method': 'GET', Host: '127.0.0.1', 'X-Forwarded-Proto': 'http', 'X-Real-IP': '127.0.0.1', ...callers.bearer, Accept: 'application/json' } });
ok(r.status === 403 && /"error":"ambiguous_path"/.test(r.body), 'its JSON names ambiguous_path', r.body);

const corpus = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/integration/data/hostile_targets.json'), 'utf8'));
ok(corpus.filter((c) => c.class !== 'benign').length >= 300, `corpus has at least 300 hostile targets (${corpus.length} entries)`);

const stats = {};
const failures = [];
let fiveHundreds = 0;
for (const [caller, headers] of Object.entries(callers)) {
  for (const c of corpus) {
    const target = Buffer.from(c.target, c.encoding || 'utf8');
    const before = seen.length;
    const res = await rawGet(target, headers);
    const reached = seen.slice(before);
    const s = (stats[c.class] ??= {});
    const row = (s[caller] ??= { sent: 0, upstream: 0, denied: 0, nginx400: 0 });
    row.sent++;
    if (reached.length) row.upstream++;
    else if (res.status === 400) row.nginx400++;
    else row.denied++;
    if (res.status >= 500 || res.status === 0) {
      fiveHundreds++;
      failures.push(`${caller} ${c.class} ${JSON.stringify(c.target)}: nginx answered ${res.status || 'nothing'}`);
    }
    if (process.env.EG_TRACE && reached.length) diag(`reached ${caller} ${c.class} ${reached[0].toString("latin1")}`);
    for (const got of reached) {
      const why = violation(caller, got);
      if (why) failures.push(`${caller} ${c.class} ${JSON.stringify(c.target)} reached the upstream as ${JSON.stringify(got.toString('latin1'))}: ${why}`);
    }
    if (c.class === 'benign') {
      const want = c.expect === 'public' || caller !== 'none';
      if (want !== (reached.length === 1 && res.status === 200))
        failures.push(`${caller} benign ${JSON.stringify(c.target)}: ${want ? 'not served' : 'served'} (status ${res.status})`);
    }
  }
}

for (const [cls, byCaller] of Object.entries(stats)) {
  diag(`${cls.padEnd(24)} ${Object.entries(byCaller).map(([who, x]) => `${who}: ${x.sent} sent, ${x.upstream} upstream, ${x.denied} denied, ${x.nginx400} nginx 400`).join(' | ')}`);
}
for (const cls of Object.keys(stats)) {
  const mine = failures.filter((f) => f.split(' ')[1] === cls);
  ok(mine.length === 0, `${cls}: nothing reached the upstream under a route the caller may not enter${cls === 'benign' ? '; benign targets served' : ''}`, mine.slice(0, 20).join('\n'));
}
is(fiveHundreds, 0, 'no nginx 5xx for any target');
const total = Object.values(stats).reduce((a, b) => a + Object.values(b).reduce((x, y) => x + y.sent, 0), 0);
ok(total >= 900, `${total} raw requests sent`);

// the judge itself is not vacuous: known bypasses are flagged by the JS readings
ok(violation('bearer', Buffer.from('/public/..;/admin/')), 'JS readings flag /public/..;/admin/ for a non-admin');
ok(violation('bearer', Buffer.from('/%2561dmin/')), 'JS readings flag /%2561dmin/ for a non-admin');
ok(violation('none', Buffer.from('//public/x')), 'JS readings flag //public/x for no one');
ok(!violation('none', Buffer.from('/public/a%25b.txt')), 'JS readings allow /public/a%25b.txt for no one');

// every thread of the daemon runs as nobody (it was started as root)
const tasks = fs.readdirSync(`/proc/${eg.proc.pid}/task`);
const uids = tasks.map((t) => /^Uid:\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync(`/proc/${eg.proc.pid}/task/${t}/status`, 'utf8')));
ok(tasks.length > 0 && uids.every((m) => m && m[1] !== '0' && m[2] !== '0'), `all ${tasks.length} daemon threads dropped root`, uids.map((m) => m && m[0]));
const alive = await request(`${eg.url}/healthz`).then((x) => x.status === 200, () => false);
ok(alive && eg.proc.exitCode === null, 'edgegated is alive at the end', eg.log());
ok(!/\[(crit|alert|emerg)\]/.test(fs.readFileSync(path.join(ngx.dir, 'logs/error.log'), 'utf8')), 'no critical errors in the nginx log', ngx.errorLog());
await done();
