#!/usr/bin/env node
// boundary_property.t.mjs - a property-based (generative) test of the proxy trust boundary.
// A seeded grammar of known-dangerous pieces (percent-encodings of separators, dots, controls
// and overlong UTF-8, dot segments, ;params, // runs, backslashes, #/? placement, trailing
// dots/spaces, case and fullwidth forms, absolute-form targets, Host variants, method
// overrides, X-Original-URL and path-prefix headers, host-override headers) composes a few
// thousand raw HTTP/1.1 requests, sent through real nginx with the shipped snippets to an
// upstream that records the exact request line and headers nginx sends it; edgegated is
// started as root and drops to its user.
//
// The property (the project's promise): the authorizer decides on exactly the request the
// upstream gets; when readings differ the most restrictive wins; what no two parsers read
// alike is denied. So for every request the recorder saw, every plausible reading of what it
// received (computed here in JS, independently of userspace/authz/readings.c) must fall under a
// route the caller may enter, under the documented matching rule (docs/config.md: first route
// in file order whose host, path prefix and methods match). No hard-coded status per payload.
// Also: nginx never answers 5xx (a 500 from auth_request is edgegated failing), edgegated
// answers /healthz throughout, and controls show the setup is not "deny everything".
//
// EG_PROP_SEED (default 20261204) and EG_PROP_COUNT (default 3000) change the run; the seed
// is printed so that a failure can be replayed.
//
// What the oracle models, and why it is no stricter than the upstream can be: nginx with
// proxy_pass without a URI sends the client's target bytes unchanged (an absolute-form line
// loses its scheme and host), so the recorded request line is what an app parses; the readings
// are the full product of the transforms docs/config.md lists, plus ASCII-only case folding
// (routers that ignore case without NFKC) and the Windows trim. The host is what the app gets
// behind `proxy_set_header Host $http_host` plus every host-override header that reached it.
// Underscore spellings (X_HTTP_Method_Override) are judged only if they reach the recorder
// (nginx drops them by default).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  ok, is, done, guard, diag, freePort, startEdgegated, startNginx, request, tmpdir, ensureTestUser, TEST_USER,
} from '../lib/harness.mjs';
import { startRecorder, startGroupsIssuer } from '../lib/recorder.mjs';
import { windowsTrim } from '../lib/paths.mjs';

guard(240000);
ensureTestUser();

const SEED = Number(process.env.EG_PROP_SEED ?? 20261204) >>> 0;
const COUNT = Number(process.env.EG_PROP_COUNT ?? 3000);
const CONCURRENCY = 4; // bounded load: the machine is shared
diag(`seed ${SEED} (EG_PROP_SEED), ${COUNT} requests (EG_PROP_COUNT)`);

const ISS = 'https://idp.example.test';
const AUD = 'api://app';
const APP = 'app.example.test';
const ADMIN_HOST = 'admin.example.test';
// A mix: a host-scoped route, public areas, a protected area for one group, a bearer area,
// an area protected for one method only, and a public root.
const ROUTES = [
  { host: ADMIN_HOST, path: '/', auth: 'any', allow: { groups: ['admins'] } },
  { path: '/public/', auth: 'public' },
  { path: '/admin/', auth: 'any', allow: { groups: ['admins'] } },
  { path: '/api/', auth: 'bearer' },
  { path: '/board/', methods: ['GET', 'HEAD'], auth: 'public' },
  { path: '/board/', auth: 'bearer' },
  { path: '/', auth: 'public' },
];

// ---- seeded PRNG (mulberry32) ------------------------------------------------------------------
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(SEED);
const chance = (p) => rand() < p;
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

// Strings below are byte strings: one char per byte (latin1), so raw UTF-8 is spelled out.
const utf8 = (s) => Buffer.from(s, 'utf8').toString('latin1');
const hex2 = (b, upper) => { const h = b.toString(16).padStart(2, '0'); return `%${upper ? h.toUpperCase() : h}`; };

// ---- the grammar -------------------------------------------------------------------------------
// One character of a name, spelled a dangerous way.
function spellChar(c) {
  const code = c.charCodeAt(0);
  switch (int(0, 11)) {
    case 0: return hex2(code, chance(0.5)); // %61
    case 1: return `%25${hex2(code, chance(0.5)).slice(1)}`; // %2561: decoded twice
    case 2: return c.toUpperCase(); // ADMIN
    case 3: return utf8(String.fromCharCode(0xff00 + code - 0x20)); // fullwidth, raw UTF-8
    case 4: return [...Buffer.from(String.fromCharCode(0xff00 + code - 0x20), 'utf8')].map((b) => hex2(b, chance(0.5))).join('');
    case 5: return `${hex2(0xc0 | (code >> 6), chance(0.5))}${hex2(0x80 | (code & 0x3f), chance(0.5))}`; // overlong 2-byte
    case 6: return `%u00${code.toString(16)}`; // IIS %u
    case 7: return c === 'i' ? utf8('\u0131') : c; // dotless i (Java toUpperCase -> I)
    default: return c;
  }
}
function spellName(name) {
  if (chance(0.4)) return name;
  if (chance(0.2)) return pick([name.toUpperCase(), name[0].toUpperCase() + name.slice(1)]);
  return [...name].map((c) => (chance(0.3) ? spellChar(c) : c)).join('');
}
const SEPARATORS = ['/', '/', '/', '/', '//', '///', '\\', '%2f', '%2F', '%252f', '%5c', '%5C', '%255c', '%c0%af', '%C0%AF',
  '%e0%80%af', '%u002f', utf8('\uff0f'), '%ef%bc%8f', '/./', '/;/', '/%2e/', '/;x=1/'];
const DOTS = ['..', '..', '..', '.', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '%252e%252e', '..;', '..;x=1', '%2e%2e;', '%c0%ae%c0%ae',
  '%e0%80%ae%e0%80%ae', '%u002e%u002e', '..%00', '..%2500', '..%09', '..%20', '..%5c', '...', '..%2f', '..\\', '.%00.', '..::$DATA',
  utf8('\uff0e\uff0e')];
const TRAILERS = ['', '', '', '/', '.', '..', '%20', '%09', '%00', '%2500', ';', ';jsessionid=1', '.json', '::$DATA', '%2e', '/.',
  '%23', '%3f', '#', '#/../x', '?x=1', '?/../../admin/', '#/../../admin/', '%3f/../../public/x', '?_method=DELETE', '%0a', '%0d%0a',
  '%ff', '%', '%zz'];
const PROTECTED = ['admin', 'admin', 'api', 'board'];
const PUBLIC_STARTS = [[], ['public'], ['public', 'x'], ['board'], ['x'], ['public', 'a', 'b']];

function sep() { return chance(0.65) ? '/' : pick(SEPARATORS); }

// A request path built from a public start, a climb of dot segments, a protected name and a tail.
function genPath() {
  const parts = [];
  for (const s of pick(PUBLIC_STARTS)) parts.push(chance(0.15) ? spellName(s) : s);
  if (chance(0.6)) for (let i = int(1, 3); i > 0; i--) parts.push(pick(DOTS));
  if (chance(0.8)) parts.push(spellName(pick(PROTECTED)));
  if (chance(0.6)) parts.push(pick(['secret', 'x', 'v1', 'users', 'a.txt', spellName('secret')]));
  if (!parts.length) parts.push('x');
  let p = chance(0.85) ? '/' : pick(['//', '///', '/\\', '/;/', '/./', '/%2e/', '/../']);
  p += parts.map((s, i) => (i ? sep() : '') + s).join('');
  if (chance(0.5)) p += pick(TRAILERS);
  if (chance(0.05)) p = p.replace('/', pick(['\t', '\x00', '\x7f', ' ', '\x0b'])); // raw controls (nginx mostly 400s)
  return p;
}

const HOSTS = [APP, APP, APP, APP.toUpperCase(), `${APP}.`, `${APP}:80`, `${APP}:8080`, ADMIN_HOST, ADMIN_HOST.toUpperCase(),
  `${ADMIN_HOST}.`, `${ADMIN_HOST}:443`, `${ADMIN_HOST}..`, `user@${ADMIN_HOST}`, `${APP}@${ADMIN_HOST}`, `${ADMIN_HOST}@${APP}`,
  'Admin.Example.Test', `${ADMIN_HOST}%2e`, `admin%2eexample.test`, `${APP}\\${ADMIN_HOST}`, `[::1]`, '127.0.0.1'];
const METHODS = ['GET', 'GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'PROPFIND', 'get', 'Delete'];
const OVERRIDE_NAMES = ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', 'x-http-method-override', 'X_HTTP_Method_Override'];
const TARGET_HEADERS = ['X-Original-URL', 'X-Rewrite-URL', 'X-Original-URI', 'x-original-url', 'X-Forwarded-Path'];
const PREFIX_HEADERS = ['X-Forwarded-Prefix', 'X-Script-Name', 'X-Forwarded-PathBase', 'X-Forwarded-Path'];
const HOST_HEADERS = ['X-Forwarded-Host', 'X-Host', 'X-HTTP-Host-Override', 'X-Forwarded-Server'];

// One raw request: { method, target, headers: [[name, value]], caller }.
function genRequest() {
  const method = chance(0.7) ? 'GET' : pick(METHODS);
  let target = genPath();
  if (chance(0.12)) target = `${pick(['http', 'https', 'HTTP'])}://${pick(HOSTS.filter((h) => !/[\\%[]/.test(h)))}${target}`;
  const headers = [];
  if (chance(0.97)) headers.push(['Host', pick(HOSTS)]);
  if (chance(0.04)) headers.push(['Host', pick(HOSTS)]); // duplicate
  if (chance(0.12)) headers.push([pick(OVERRIDE_NAMES), pick(['DELETE', 'PUT', 'POST', 'delete', 'GET', 'GET, DELETE'])]);
  if (chance(0.12)) headers.push([pick(TARGET_HEADERS), genPath().replace(/[\x00-\x1f\x7f]/g, '')]);
  if (chance(0.08)) headers.push([pick(PREFIX_HEADERS), pick(['/admin', '/api', '/public', '/admin/', '/ADMIN', '/board', '//evil.test'])]);
  if (chance(0.1)) headers.push([pick(HOST_HEADERS), pick(HOSTS)]);
  if (chance(0.04)) headers.push(['Forwarded', `for=198.18.0.1;host=${pick(HOSTS)}`]);
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') headers.push(['Content-Length', '0']);
  const caller = chance(0.15) ? 'user' : 'none';
  return { method, target, headers, caller };
}

// ---- readings (independent of the C code) -------------------------------------------------------
const isHex = (c) => /^[0-9a-fA-F]$/.test(c);
// One percent-decoding of a byte string. seps=false keeps %2f/%5c encoded (the strict RFC reading).
function pctDecode(s, seps) {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && i + 2 < s.length + 0 && isHex(s[i + 1] ?? '') && isHex(s[i + 2] ?? '')) {
      const v = parseInt(s.slice(i + 1, i + 3), 16);
      if (seps || (v !== 0x2f && v !== 0x5c)) { out += String.fromCharCode(v); i += 2; continue; }
    }
    // IIS %uXXXX of ASCII
    if (s[i] === '%' && (s[i + 1] === 'u' || s[i + 1] === 'U') && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) {
      const v = parseInt(s.slice(i + 2, i + 6), 16);
      if (v < 0x80 && (seps || (v !== 0x2f && v !== 0x5c))) { out += String.fromCharCode(v); i += 5; continue; }
    }
    out += s[i];
  }
  return out;
}
// Lenient UTF-8 decoders read overlong forms of ASCII as ASCII.
function overlongToAscii(s) {
  return s.replace(/[\xc0\xc1][\x80-\xbf]|\xe0[\x80-\x9f][\x80-\xbf]/g, (m) => {
    const v = m.length === 2 ? ((m.charCodeAt(0) & 0x1f) << 6) | (m.charCodeAt(1) & 0x3f)
      : ((m.charCodeAt(1) & 0x3f) << 6) | (m.charCodeAt(2) & 0x3f);
    return v < 0x80 ? String.fromCharCode(v) : m;
  });
}
// Case and compatibility folding, as a case-insensitive, NFKC-normalising router reads it.
function fold(s) {
  const u = Buffer.from(overlongToAscii(s), 'latin1').toString('utf8');
  const f = u.toUpperCase().normalize('NFKC').toLowerCase().normalize('NFKC');
  return Buffer.from(f, 'utf8').toString('latin1');
}
// RFC 3986 remove_dot_segments over "/"-split segments, with the per-upstream options.
function resolve(s, o) {
  if (!s.startsWith('/')) s = `/${s}`;
  let rest = s.slice(1);
  if (o.authority) { // "//host/x" read as a network-path reference
    if (!s.startsWith('//')) return null;
    const i = s.indexOf('/', 2);
    rest = i < 0 ? '' : s.slice(i + 1);
  }
  const segs = rest.split('/');
  const out = [];
  let slash = false;
  segs.forEach((raw, i) => {
    let seg = raw;
    if (o.params) seg = seg.split(';')[0];
    if (o.windows) seg = windowsTrim(seg);
    const last = i === segs.length - 1;
    if (seg === '.' || seg === '..') { if (seg === '..') out.pop(); slash = true; } else if (seg === '') {
      if (last) slash = true; else if (!o.merge) { out.push(''); slash = false; }
    } else { out.push(seg); slash = false; }
  });
  if (o.suffix && out.length && !slash) out[out.length - 1] = out[out.length - 1].replace(/^([^.]+)\..*$/, '$1');
  return `/${out.join('/')}${out.length && slash ? '/' : ''}`;
}
const RESOLVE_OPTS = [];
for (let m = 0; m < 32; m++) {
  RESOLVE_OPTS.push({ params: !!(m & 1), windows: !!(m & 2), merge: !!(m & 4), authority: !!(m & 8), suffix: !!(m & 16) });
}
const CONTROL = /[\x00-\x1f\x7f]/;
// Every reading of one target (path part; the query never takes part, a fragment may).
function pathReadings(target) {
  let t = target;
  const q = t.indexOf('?');
  if (q >= 0) t = t.slice(0, q);
  const pre = new Set();
  for (const p of t.includes('#') ? [t, t.slice(0, t.indexOf('#'))] : [t]) {
    for (const dec of ['raw', 'keep', 'once', 'twice', 'keep2']) {
      let s = p;
      if (dec === 'keep') s = pctDecode(p, false);
      if (dec === 'once') s = pctDecode(p, true);
      if (dec === 'twice') s = pctDecode(pctDecode(p, true), true);
      if (dec === 'keep2') s = pctDecode(pctDecode(p, false), false);
      const variants = [s];
      // code that decodes and parses again: a decoded ? or # ends the path
      const cut = s.search(/[?#]/);
      if (dec !== 'raw' && cut >= 0) variants.push(s.slice(0, cut));
      for (const v of [...variants]) {
        if (CONTROL.test(v)) { variants.push(v.slice(0, v.search(CONTROL))); variants.push(v.replace(/[\x00-\x1f\x7f]/g, '')); }
      }
      for (const v of variants) {
        for (const f of [v, fold(v)]) {
          pre.add(f);
          pre.add(f.replaceAll('\\', '/'));
        }
      }
    }
  }
  const out = new Set();
  for (const s of pre) for (const o of RESOLVE_OPTS) {
    const r = resolve(s, o);
    if (r !== null) out.add(r);
  }
  return [...out];
}

// Readings of a host value: raw lowercased, userinfo cut (both sides), port and trailing dots off.
function hostReadings(v) {
  const out = new Set();
  const base = v.trim().toLowerCase();
  for (const h of [base, base.slice(base.lastIndexOf('@') + 1), base.split('@')[0], ...base.split(/[\\,]/)]) {
    let x = h.trim();
    if (!x.startsWith('[')) x = x.replace(/:\d*$/, '');
    x = x.replace(/\.+$/, '');
    out.add(x);
    out.add(pctDecode(x, true));
  }
  return [...out];
}

function routeFor(host, p, method) {
  const lp = p.toLowerCase(); // folded readings are lower case; matching them case-insensitively is a superset
  for (const r of ROUTES) {
    if (r.host && r.host !== host) continue;
    if (r.methods && !r.methods.includes(method)) continue;
    const base = r.path.length > 1 && r.path.endsWith('/') ? r.path.slice(0, -1) : r.path;
    for (const c of [p, lp]) {
      if (!c.startsWith(base)) continue;
      const next = c[base.length];
      if (base.endsWith('/') || next === undefined || next === '/' || next === ';') return r;
    }
  }
  return null;
}
const mayEnter = (caller, route) => !!route && (route.auth === 'public' || (caller === 'user' && route.auth !== 'mtls' && !route.allow));

// What no two parsers read alike (docs/config.md "Path readings"): kept to public routes.
function ambiguousTarget(target) {
  const q = target.indexOf('?');
  const p = q < 0 ? target : target.slice(0, q);
  if (/[\x00-\x20\x7f#\\]/.test(p)) return true;
  if (/%(?![0-9a-fA-F]{2})/.test(p)) return true;
  const once = pctDecode(p, true);
  if (/%(?![0-9a-fA-F]{2})/.test(once) && /%/.test(p.replace(/%25/gi, ''))) { /* a literal % is fine */ }
  for (const s of [p, once]) if (/%(2f|5c|3b|[01][0-9a-f]|7f)/i.test(s)) return true;
  const valid = (s) => { try { new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(s, 'latin1')); return true; } catch { return false; } };
  if (!valid(once) || !valid(pctDecode(once, true))) return true;
  return /%u[0-9a-f]{4}/i.test(p);
}

// Parse a header block the recorder saw: { method, target, headers: Map(lower -> [values]) }.
function parseHead(head) {
  const [line, ...rest] = head.split('\r\n');
  const sp1 = line.indexOf(' ');
  const sp2 = line.lastIndexOf(' ');
  const headers = new Map();
  for (const l of rest) {
    const i = l.indexOf(':');
    if (i <= 0) continue;
    const k = l.slice(0, i).trim().toLowerCase();
    if (!headers.has(k)) headers.set(k, []);
    headers.get(k).push(l.slice(i + 1).trim());
  }
  return { method: line.slice(0, sp1), target: line.slice(sp1 + 1, sp2), headers };
}

// The request as an upstream may read it: targets, hosts, methods.
function upstreamView({ method, target, headers }) {
  const get = (n) => headers.get(n) ?? [];
  const targets = [target];
  const hosts = new Set();
  for (const v of get('host')) for (const h of hostReadings(v)) hosts.add(h);
  for (const n of ['x-original-url', 'x-rewrite-url', 'x-original-uri', 'x-forwarded-path']) {
    for (const v of get(n)) {
      const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)(.*)$/i.exec(v);
      if (m) { targets.push(m[2] || '/'); for (const h of hostReadings(m[1])) hosts.add(h); } else targets.push(v);
    }
  }
  for (const n of ['x-forwarded-prefix', 'x-script-name', 'x-forwarded-path', 'x-forwarded-pathbase']) {
    for (const v of get(n)) targets.push(`${v.replace(/\/+$/, '')}${target}`);
  }
  for (const n of ['x-forwarded-host', 'x-host', 'x-http-host-override', 'x-forwarded-server']) {
    for (const v of get(n)) for (const h of hostReadings(v)) hosts.add(h);
  }
  for (const v of get('forwarded')) for (const m of v.matchAll(/host\s*=\s*"?([^;,"]*)/gi)) for (const h of hostReadings(m[1])) hosts.add(h);
  if (!hosts.size) hosts.add('');
  const methods = new Set([method, method.toUpperCase()]);
  for (const n of ['x-http-method-override', 'x-http-method', 'x-method-override', 'x_http_method_override']) {
    for (const v of get(n)) for (const m of v.split(',')) { methods.add(m.trim()); methods.add(m.trim().toUpperCase()); }
  }
  const q = target.indexOf('?');
  if (q >= 0) {
    for (const kv of target.slice(q + 1).split('&')) {
      const [k, v = ''] = kv.split('=');
      if (/^[_. []method$/i.test(pctDecode(k, true).replace(/\+/g, ' '))) methods.add(pctDecode(v, true).toUpperCase());
    }
  }
  return { targets, hosts: [...hosts], methods: [...methods] };
}

// Why this caller must not have been served this view, or null.
function violation(caller, view) {
  for (const t of view.targets) {
    const rs = pathReadings(t);
    for (const h of view.hosts) for (const m of view.methods) for (const r of rs) {
      const route = routeFor(h, r, m);
      if (!mayEnter(caller, route)) return `reading host ${JSON.stringify(h)} ${m} ${JSON.stringify(r)} of ${JSON.stringify(t)} is under ${route ? `${route.host ?? ''}${route.path} (${route.auth})` : 'no route'}`;
    }
    if (caller !== 'none' && ambiguousTarget(t)) {
      for (const h of view.hosts) for (const m of view.methods) for (const r of rs) {
        if (routeFor(h, r, m)?.auth !== 'public') return `ambiguous target ${JSON.stringify(t)} served outside public routes (reading ${JSON.stringify(r)})`;
      }
    }
  }
  return null;
}

// The client's own request read the same way (for the "legitimate public" control).
function clientView(req) {
  const headers = new Map();
  for (const [k, v] of req.headers) { const n = k.toLowerCase(); if (!headers.has(n)) headers.set(n, []); headers.get(n).push(v); }
  let target = req.target;
  const abs = /^[a-z]+:\/\/([^/]*)(.*)$/i.exec(target);
  if (abs) target = abs[2] || '/';
  const view = upstreamView({ method: req.method, target, headers });
  if (abs) for (const h of hostReadings(abs[1])) view.hosts.push(h);
  return view;
}
// A request with nothing odd about it: plain hosts, plain header values, no ambiguous target.
function plain(req) {
  const names = req.headers.map(([k]) => k.toLowerCase());
  if (new Set(names).size !== names.length || !names.includes('host')) return false;
  for (const [k, v] of req.headers) {
    if (/host|server|forwarded/i.test(k) && !/^[a-z0-9.-]+(:\d+)?$/i.test(v.replace(/^for=198\.18\.0\.1;host=/, ''))) return false;
    if (/url|uri|path|prefix|script/i.test(k) && (ambiguousTarget(v) || !/^\/(?!\/)/.test(v) || /(^|\/)\.\.?(\/|$)/.test(pctDecode(v, true)))) return false;
    if (/[_]/.test(k)) return false;
  }
  const abs = /^[a-z]+:\/\/([^/]*)(.*)$/i.exec(req.target);
  if (abs && !/^[a-z0-9.-]+(:\d+)?$/i.test(abs[1])) return false;
  if (!/^[A-Z]+$/.test(req.method)) return false;
  return !ambiguousTarget(abs ? abs[2] || '/' : req.target);
}

// ---- the oracle is not vacuous ------------------------------------------------------------------
const v = (target, extra = [], caller = 'none', method = 'GET') => violation(caller, upstreamView(parseHead(
  `${method} ${target} HTTP/1.0\r\nHost: ${APP}\r\n${extra.map((h) => `${h}\r\n`).join('')}`)));
ok(v('/public/..;/admin/x'), 'oracle flags /public/..;/admin/x for no one');
ok(v('/%2561dmin/x'), 'oracle flags /%2561dmin/x');
ok(v('/public/%2e%2e%2fadmin/x'), 'oracle flags /public/%2e%2e%2fadmin/x');
ok(v(`/${utf8('\uff41')}dmin/x`), 'oracle flags fullwidth /ａdmin/x');
ok(v('/ADMIN./x'), 'oracle flags /ADMIN./x');
ok(v('/public/x', ['X-Original-URL: /admin/x']), 'oracle flags X-Original-URL: /admin/x');
ok(v('/public/x', ['X-Forwarded-Prefix: /admin']), 'oracle flags X-Forwarded-Prefix: /admin');
ok(v('/public/x', [`X-Forwarded-Host: ${ADMIN_HOST}`]), 'oracle flags X-Forwarded-Host naming the admin host');
ok(v('/board/x', [], 'none', 'DELETE') && v('/board/x', ['X-HTTP-Method-Override: DELETE']), 'oracle flags DELETE (or an override to it) on /board/');
ok(v('/api/a%2fb', [], 'user'), 'oracle flags an ambiguous target on /api/ for a user');
ok(!v('/public/a%25b.txt') && !v('/board/x') && !v('/x/y') && !v('/api/x', [], 'user'), 'oracle passes plain public requests and a user on /api/');
ok(v('/api/x', [], 'user', 'GET') === null && v('/admin/x', [], 'user'), 'oracle: a user may enter /api/, not /admin/');

// ---- the stack ----------------------------------------------------------------------------------
const { port: upstreamPort, heads } = await startRecorder();
const { jwks, mint } = await startGroupsIssuer({ iss: ISS, aud: AUD });
const dir = tmpdir('propfuzz-');
const [ngxPort, egPort] = [await freePort(), await freePort()];
fs.mkdirSync(path.join(dir, 'eg'));
const eg = await startEdgegated({
  listen: `127.0.0.1:${egPort}`,
  user: TEST_USER, // the documented deployment: started as root, drops to its user
  public_url: `http://${APP}:${ngxPort}`,
  jwt: { jwks_url: jwks.url, issuer: ISS, audience: AUD, algorithms: ['ES256'] },
  routes: ROUTES,
}, { dir: path.join(dir, 'eg') });
fs.mkdirSync(path.join(dir, 'ngx'));
// The common recipe `proxy_set_header Host $http_host` (inside the location: the snippet's own
// proxy_set_header lines stop inheritance), so the recorder sees the client's Host as the app
// would, not nginx's upstream name.
const ngx = await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream recorder { server 127.0.0.1:${upstreamPort}; }
  server {
    listen 127.0.0.1:${ngxPort};
    server_name ${APP} ${ADMIN_HOST};
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_set_header Host $http_host;
      proxy_pass http://recorder;
    }
  }`, { dir: path.join(dir, 'ngx'), edgegate: `127.0.0.1:${egPort}`, waitPort: ngxPort });

const tokens = { user: `Bearer ${await mint(['dev'])}`, admin: `Bearer ${await mint(['admins'])}` };

// One raw request on its own connection, tagged with X-Probe-Id so that the recorder's hits
// can be told apart under concurrency.
function send(req, id) {
  const lines = [...req.headers];
  if (req.caller !== 'none') lines.push(['Authorization', tokens[req.caller]]);
  lines.push(['X-Probe-Id', String(id)], ['Connection', 'close']);
  const text = `${req.method} ${req.target} HTTP/1.1\r\n${lines.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return new Promise((resolve) => {
    const sock = net.connect(ngxPort, '127.0.0.1');
    const chunks = [];
    sock.on('connect', () => sock.write(Buffer.from(text, 'latin1')));
    sock.on('data', (d) => chunks.push(d));
    const finish = () => {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'));
      resolve({ status: m ? Number(m[1]) : 0, text });
    };
    sock.on('close', finish);
    sock.on('error', () => {});
    sock.setTimeout(15000, () => sock.destroy());
  });
}
const hitsById = () => {
  const m = new Map();
  for (const h of heads) {
    const id = /\r\nx-probe-id: (\d+)/i.exec(h)?.[1];
    if (id !== undefined) { if (!m.has(id)) m.set(id, []); m.get(id).push(h); }
  }
  return m;
};
const healthy = () => request(`${eg.url}/healthz`).then((x) => x.status === 200, () => false);

// ---- fixed controls -----------------------------------------------------------------------------
let nextId = 1;
async function control(req) {
  const id = nextId++;
  const res = await send({ caller: 'none', method: 'GET', ...req }, id);
  return { status: res.status, reached: (hitsById().get(String(id)) ?? []).length };
}
for (const [name, req, want] of [
  ['/public/x, no one', { target: '/public/x', headers: [['Host', APP]] }, true],
  ['/, no one', { target: '/', headers: [['Host', APP]] }, true],
  ['/board/x GET, no one', { target: '/board/x', headers: [['Host', APP]] }, true],
  ['/api/x, a user token', { target: '/api/x', headers: [['Host', APP]], caller: 'user' }, true],
  ['DELETE /board/x, a user token', { method: 'DELETE', target: '/board/x', headers: [['Host', APP]], caller: 'user' }, true],
  ['/admin/x, an admin token', { target: '/admin/x', headers: [['Host', APP]], caller: 'admin' }, true],
  ['admin host /x, an admin token', { target: '/x', headers: [['Host', ADMIN_HOST]], caller: 'admin' }, true],
  ['/admin/x, no one', { target: '/admin/x', headers: [['Host', APP]] }, false],
  ['/admin/x, a user token', { target: '/admin/x', headers: [['Host', APP]], caller: 'user' }, false],
  ['/api/x, no one', { target: '/api/x', headers: [['Host', APP]] }, false],
  ['admin host /public/x, no one', { target: '/public/x', headers: [['Host', ADMIN_HOST]] }, false],
]) {
  const r = await control(req);
  ok(want ? r.status === 200 && r.reached === 1 : r.reached === 0 && [302, 401, 403].includes(r.status),
    `control: ${name} ${want ? 'served' : 'refused'} (${r.status})`);
}

// ---- the generated run --------------------------------------------------------------------------
const reqs = Array.from({ length: COUNT }, genRequest);
const results = new Array(COUNT);
const started = Date.now();
let cursor = 0;
let healthFailures = 0;
async function worker() {
  while (cursor < COUNT) {
    const i = cursor++;
    const id = nextId + i;
    results[i] = await send(reqs[i], id);
    if (i % 250 === 0 && !(await healthy())) healthFailures++;
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const elapsed = (Date.now() - started) / 1000;
const hits = hitsById();

const failures = [];
const fiveHundreds = [];
const statusCount = {};
let reached = 0;
let plainPublic = 0;
let plainPublicServed = 0;
const plainMissed = [];
for (let i = 0; i < COUNT; i++) {
  const req = reqs[i];
  const res = results[i];
  const got = hits.get(String(nextId + i)) ?? [];
  statusCount[res.status] = (statusCount[res.status] ?? 0) + 1;
  if (res.status >= 500 || res.status === 0) fiveHundreds.push(`${res.status || 'no answer'} for ${JSON.stringify(res.text)}`);
  if (got.length) reached++;
  for (const h of got) {
    const why = violation(req.caller, upstreamView(parseHead(h)));
    if (why) failures.push(`caller ${req.caller}\n  sent:     ${JSON.stringify(res.text)}\n  upstream: ${JSON.stringify(h.split('\r\n').filter((l) => !/^(x-probe-id|connection|authorization):/i.test(l)).join('\r\n'))}\n  ${why}`);
  }
  // Control: nginx accepted it, nothing about it is odd, and every client-side reading is public.
  if (res.status !== 400 && res.status !== 414 && res.status !== 405 && plain(req) && !violation(req.caller, clientView(req))) {
    plainPublic++;
    if (got.length && res.status === 200) plainPublicServed++;
    else plainMissed.push(`${res.status} ${JSON.stringify(res.text.split('\r\nX-Probe-Id')[0])}`);
  }
}
const nReached = reached;
diag(`${COUNT} requests in ${elapsed.toFixed(1)} s; ${nReached} reached the upstream; statuses ${JSON.stringify(statusCount)}`);
diag(`legitimate public requests (plain, every reading public, accepted by nginx): ${plainPublicServed}/${plainPublic} served`);
if (plainMissed.length) diag(`not served, e.g.:\n${plainMissed.slice(0, 8).join('\n')}`);
ok(failures.length === 0, `no request reached the upstream with a reading the caller may not enter (${nReached} reached)`,
  `${failures.length} failures (seed ${SEED}):\n${failures.slice(0, 15).join('\n')}`);
ok(fiveHundreds.length === 0, 'nginx never answered 5xx (or nothing)', fiveHundreds.slice(0, 10).join('\n'));
ok(healthFailures === 0 && await healthy() && eg.proc.exitCode === null, 'edgegated answered /healthz throughout and is alive at the end', eg.log());
ok(nReached >= COUNT / 10, `the run is not "deny everything": ${nReached} of ${COUNT} requests reached the upstream`);
ok(plainPublic >= 100 && plainPublicServed >= 0.95 * plainPublic,
  `legitimate public requests are served: ${plainPublicServed}/${plainPublic} (at least 95%)`, plainMissed.slice(0, 20).join('\n'));
// every thread of the daemon runs as its user (it was started as root)
const tasks = fs.readdirSync(`/proc/${eg.proc.pid}/task`);
const uids = tasks.map((t) => /^Uid:\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync(`/proc/${eg.proc.pid}/task/${t}/status`, 'utf8')));
ok(tasks.length > 0 && uids.every((m) => m && m[1] !== '0' && m[2] !== '0'), `all ${tasks.length} daemon threads dropped root`);
ok(!/\[(crit|alert|emerg)\]/.test(fs.readFileSync(path.join(ngx.dir, 'logs/error.log'), 'utf8')), 'no critical errors in the nginx log', ngx.errorLog());
is(eg.proc.exitCode, null, 'edgegated still running');
await done();
