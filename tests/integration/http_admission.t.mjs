#!/usr/bin/env node
// http_admission.t.mjs - edgegated's HTTP front under hostile connections (issue 15) and
// a NUL inside a header value (issue 10).
//
// ~1,300 slowloris connections (a header line every 2 s) from 65 untrusted loopback
// addresses straight at edgegated's TCP listener (the verdict lane's, http.lane: it admits,
// and hands the incomplete blocks to libmicrohttpd with their deadlines), while nginx (the shipped includes) asks
// for verdicts over the same TCP listener on a new connection each time, and over the
// unix socket with keep-alive. The proxies must keep being answered, /healthz too, the
// trickling connections must be closed by the header deadline (10 s, which trickling does
// not extend), and the rejected / timed-out metrics must move. Then the hostile inputs the
// issue lists must still get only 200/400/401/403/413/431, and the daemon must be alive.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as jose from 'jose';
import {
  ROOT, ok, is, done, guard, diag, freePort, startEcho, startEdgegated, startNginx, startJwksServer, request, tmpdir, sleep,
} from '../lib/harness.mjs';

guard(240000);

const ATTACKERS = 1300;
const SOURCES = 65; // 127.0.1.1 .. 127.0.1.65, 20 connections each (under the per-IP limit)
const MAX_CONNS = 1024;
const RESERVED = 64;
const HEADER_TIMEOUT_S = 10; // the default

// Every attacker socket is a descriptor here: make room (tests run as root; prlimit on
// ourselves raises the limit of this process, edgegated raises its own to its hard limit).
function ensureFdLimit(want) {
  const m = fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/);
  const soft = m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
  if (soft >= want) return soft;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${want}:${want}`], { stdio: 'pipe' });
  } catch (e) {
    diag(`prlimit failed: ${e.stderr || e.message}`);
  }
  const m2 = fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+|unlimited)/);
  return m2 && m2[1] !== 'unlimited' ? Number(m2[1]) : Infinity;
}
const fdLimit = ensureFdLimit(8192);
ok(fdLimit >= 4096, `the test process may open enough sockets (RLIMIT_NOFILE ${fdLimit})`);

// ---- a daemon with bearer tokens, behind nginx twice ---------------------------------------
const ISS = 'https://idp.example.test';
const AUD = 'api://orders';
const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
const now = Math.floor(Date.now() / 1000);
const token = await new jose.SignJWT({ sub: 'user-1', email: 'alice@example.test', email_verified: true })
  .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
  .setIssuer(ISS).setAudience(AUD).setIssuedAt(now).setExpirationTime(now + 900).sign(privateKey);
const jwks = await startJwksServer({ keys: [jwk] });
const echo = await startEcho();
const dir = tmpdir('admission-');
const sock = path.join(dir, 'auth.sock');
const tcpPort = await freePort();
const egd = await startEdgegated({
  listen: [`127.0.0.1:${tcpPort}`, `unix:${sock}`],
  trusted_proxies: ['127.0.0.1/32'],
  listen_group: 'nogroup', // this test's nginx workers run as nobody:nogroup
  http: { lane: true, max_connections: MAX_CONNS, reserved_for_proxies: RESERVED, max_connections_per_ip: 32 },
  jwt: { jwks_url: jwks.url, issuer: ISS, audience: AUD, algorithms: ['RS256'] },
  routes: [
    { path: '/public/', auth: 'public' },
    { path: '/api/', auth: 'bearer', allow: { domains: ['example.test'] } },
  ],
}, { dir });
const direct = `http://127.0.0.1:${tcpPort}`;

// server A: the shipped includes, unix socket, keep-alive (what docs/ tell users to do);
// server B: the same include pointed at edgegated's TCP listener with no upstream
// keep-alive, so every verdict needs a new connection while the attack holds the others.
const incTcp = path.join(dir, 'edgegate-tcp.conf');
fs.writeFileSync(incTcp, fs.readFileSync(path.join(ROOT, 'tools/nginx/edgegate.conf'), 'utf8')
  .replaceAll('http://edgegate', 'http://eg_tcp'));
const portA = await freePort();
const portB = await freePort();
const ngx = await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream eg_tcp { server 127.0.0.1:${tcpPort}; }
  upstream app { server 127.0.0.1:${echo.port}; }
  server {
    listen 127.0.0.1:${portA};
    {{EDGEGATE_INCLUDE}}
    location / { {{EDGEGATE_PROTECT}} proxy_pass http://app; }
  }
  server {
    listen 127.0.0.1:${portB};
    include ${incTcp};
    location / { {{EDGEGATE_PROTECT}} proxy_pass http://app; }
  }`, { edgegate: `unix:${sock}`, waitPort: portB });

const bearer = { Authorization: `Bearer ${token}` };
const metrics = async () => (await request(`${direct}/metrics`)).body;
const metric = (text, re) => { const m = text.match(re); return m ? Number(m[1]) : NaN; };

let r = await request(`http://127.0.0.1:${portA}/api/orders`, { headers: bearer });
is(r.status, 200, 'verdict through nginx (unix socket, keep-alive) before the attack');
r = await request(`http://127.0.0.1:${portB}/api/orders`, { headers: bearer });
is(r.status, 200, 'verdict through nginx (TCP, a new connection per verdict) before the attack');
r = await request(`http://127.0.0.1:${portB}/api/orders`);
is(r.status, 401, 'and without a token: 401 (the gate is on)');

// Sequential verdicts for `ms`; returns { n, ok, bad, maxMs }.
async function verdictLoop(base, ms) {
  const end = Date.now() + ms;
  const res = { n: 0, ok: 0, bad: [], maxMs: 0 };
  while (Date.now() < end) {
    const t = Date.now();
    let s;
    try { s = (await request(`${base}/api/orders`, { headers: bearer })).status; } catch (e) { s = String(e.message); }
    res.maxMs = Math.max(res.maxMs, Date.now() - t);
    res.n++;
    if (s === 200) res.ok++; else if (res.bad.length < 5) res.bad.push(s);
  }
  return res;
}
const before = { tcp: await verdictLoop(`http://127.0.0.1:${portB}`, 1500), unix: await verdictLoop(`http://127.0.0.1:${portA}`, 1500) };
diag(`without the attack: ${(before.tcp.n / 1.5).toFixed(0)} verdicts/s over TCP (new connections), ${(before.unix.n / 1.5).toFixed(0)}/s over the unix socket`);

// ---- the slowloris ---------------------------------------------------------------------------
const m0 = await metrics();
const attackers = [];
function attack(i) {
  return new Promise((resolve) => {
    const src = `127.0.1.${1 + (i % SOURCES)}`;
    const a = { i, src, openedAt: 0, closedAt: 0, lines: 0, timer: null };
    const s = net.connect({ host: '127.0.0.1', port: tcpPort, localAddress: src });
    a.sock = s;
    s.on('connect', () => {
      a.openedAt = Date.now();
      s.write('GET /auth HTTP/1.1\r\nHost: slow\r\n');
      // a header line every 2 s: each one restarts libmicrohttpd's idle timer
      a.timer = setInterval(() => { a.lines++; s.write(`X-Slow-${a.lines}: ${'x'.repeat(10)}\r\n`); }, 2000);
      resolve();
    });
    const fin = () => { if (!a.closedAt) a.closedAt = Date.now(); clearInterval(a.timer); };
    s.on('close', fin);
    s.on('error', () => { fin(); resolve(); });
    s.on('data', () => {});
    attackers.push(a);
  });
}
// and one that completes its headers but trickles its body (from the proxy's own address:
// the deadline holds for everyone; only the handler's run is exempt)
const bodyTrickle = await new Promise((resolve) => {
  const b = { openedAt: 0, closedAt: 0 };
  const s = net.connect({ host: '127.0.0.1', port: tcpPort, localAddress: '127.0.0.1' });
  s.on('connect', () => {
    b.openedAt = Date.now();
    s.write('POST /auth HTTP/1.1\r\nHost: slow\r\nX-Original-URI: /public/x\r\nContent-Length: 100\r\n\r\n');
    b.timer = setInterval(() => s.write('x'), 2000);
    resolve(b);
  });
  s.on('close', () => { b.closedAt = Date.now(); clearInterval(b.timer); });
  s.on('error', () => {});
  s.on('data', (d) => { b.answer = String(d).slice(0, 12); });
});
const tAttack = Date.now();
for (let i = 0; i < ATTACKERS; i += 100) {
  await Promise.all(Array.from({ length: Math.min(100, ATTACKERS - i) }, (_, k) => attack(i + k)));
}
await sleep(1500);
const openedAll = Date.now();
const connected = attackers.filter((a) => a.openedAt).length;
const refused = attackers.filter((a) => a.openedAt && a.closedAt && a.closedAt - a.openedAt < 1500);
const held = attackers.filter((a) => a.openedAt && !a.closedAt);
diag(`${connected} attacker connections in ${openedAll - tAttack} ms: ${held.length} held open by edgegated, ${refused.length} refused at once`);
ok(connected >= ATTACKERS - 5, `the attacker got its ${ATTACKERS} TCP connections accepted by the kernel`, { connected });
ok(held.length <= MAX_CONNS - RESERVED && held.length >= MAX_CONNS - RESERVED - 20,
  `other peers hold at most max_connections - reserved_for_proxies (${MAX_CONNS - RESERVED}) slots`, { held: held.length });
ok(refused.length >= ATTACKERS - (MAX_CONNS - RESERVED) - 20, 'the connections beyond that are refused at once', { refused: refused.length });

// while they trickle: the proxies are served on new connections, /healthz answers
const during = { tcp: await verdictLoop(`http://127.0.0.1:${portB}`, 2500), unix: await verdictLoop(`http://127.0.0.1:${portA}`, 1500) };
diag(`under attack: ${(during.tcp.n / 2.5).toFixed(0)} verdicts/s over TCP (new connections), ${(during.unix.n / 1.5).toFixed(0)}/s over the unix socket; slowest ${during.tcp.maxMs} / ${during.unix.maxMs} ms`);
ok(during.tcp.n >= 20 && during.tcp.ok === during.tcp.n,
  'under attack, nginx verdicts on new TCP connections keep being answered (200)', during.tcp);
ok(during.unix.n >= 20 && during.unix.ok === during.unix.n, 'under attack, nginx verdicts over the unix socket keep being answered', during.unix);
r = await request(`${direct}/healthz`);
is(r.status, 200, '/healthz answers under the attack (from a configured proxy address)');
r = await request('/healthz', { socketPath: sock });
is(r.status, 200, '/healthz answers under the attack over the unix socket');
const stillHeld = attackers.filter((a) => a.openedAt && !a.closedAt).length;
ok(stillHeld >= held.length - 5, 'meanwhile the trickling connections are still open (each has sent header lines)', { stillHeld, lines: held[0] && held[0].lines });
const extra = await new Promise((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port: tcpPort, localAddress: '127.0.2.1' });
  const t0 = Date.now();
  s.on('close', () => resolve(Date.now() - t0));
  s.on('error', () => {});
  s.setTimeout(3000, () => { s.destroy(); resolve(-1); });
});
ok(extra >= 0 && extra < 1500, 'a new connection from another untrusted peer is refused at once while the others hold their share', { extra });

// the header deadline: every held connection is closed ~10 s after its accept
const deadlineBy = Math.max(...held.map((a) => a.openedAt)) + (HEADER_TIMEOUT_S + 2.5) * 1000;
while (Date.now() < deadlineBy && attackers.some((a) => a.openedAt && !a.closedAt)) await sleep(250);
const lifetimes = held.map((a) => (a.closedAt || Date.now()) - a.openedAt);
const longest = Math.max(...lifetimes);
const shortest = Math.min(...lifetimes);
diag(`held connections lived ${shortest}..${longest} ms (header deadline ${HEADER_TIMEOUT_S} s, a line every 2 s)`);
ok(held.every((a) => a.closedAt), 'every trickling connection was closed', { open: held.filter((a) => !a.closedAt).length });
ok(longest <= (HEADER_TIMEOUT_S + 1.5) * 1000 && shortest >= (HEADER_TIMEOUT_S - 0.5) * 1000,
  'by the header deadline: trickled lines did not extend it (closed 10-11.5 s after accept)', { shortest, longest });
for (const a of attackers) { clearInterval(a.timer); a.sock.destroy(); }
const bodyLife = (bodyTrickle.closedAt || Date.now()) - bodyTrickle.openedAt;
ok(bodyTrickle.closedAt && bodyLife >= (HEADER_TIMEOUT_S - 0.5) * 1000 && bodyLife <= (HEADER_TIMEOUT_S + 1.5) * 1000 && !bodyTrickle.answer,
  'a body trickled a byte every 2 s is cut at the same deadline, unanswered', { bodyLife, answer: bodyTrickle.answer });

const m1 = await metrics();
const rejected = metric(m1, /^edgegate_http_connections_rejected_total\{reason="limit"\} (\d+)/m) - metric(m0, /^edgegate_http_connections_rejected_total\{reason="limit"\} (\d+)/m);
const timedOut = metric(m1, /^edgegate_http_connections_timed_out_total\{phase="request"\} (\d+)/m) - metric(m0, /^edgegate_http_connections_timed_out_total\{phase="request"\} (\d+)/m);
ok(rejected >= refused.length, 'edgegate_http_connections_rejected_total{reason="limit"} counts the refused connections', { rejected, refused: refused.length });
ok(timedOut >= held.length, 'edgegate_http_connections_timed_out_total{phase="request"} counts the deadline closes', { timedOut, held: held.length });
// the lane (http.lane, on TCP too) admitted them and handed each incomplete block to
// libmicrohttpd with its deadline: the limits, the reserve and the deadline above are the lane's
const incomplete = metric(m1, /^edgegate_http_lane_handovers_total\{reason="incomplete"\} (\d+)/m) - metric(m0, /^edgegate_http_lane_handovers_total\{reason="incomplete"\} (\d+)/m);
ok(incomplete >= held.length, 'the TCP listener is the lane\'s: it handed the held connections over as incomplete', { incomplete, held: held.length });

// per-IP limit: one untrusted address gets 32 connections, no more. First the attack's
// connections must be gone from the daemon too, or the shared limit (not the per-IP one)
// refuses these on a loaded machine.
for (let i = 0; i < 100; i++) {
  const open = metric(await metrics(), /^edgegate_http_connections_open\{peer="other"\} (\d+)/m);
  if (open <= 1) break; // the /metrics request itself
  await sleep(100);
}
const one = [];
for (let i = 0; i < 40; i++) {
  one.push(await new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: tcpPort, localAddress: '127.0.3.1' });
    const rec = { s, closed: false };
    s.on('connect', () => resolve(rec));
    s.on('close', () => { rec.closed = true; });
    s.on('error', () => resolve(rec));
  }));
}
await sleep(800);
const perIpHeld = one.filter((x) => !x.closed).length;
for (const x of one) x.s.destroy();
is(perIpHeld, 32, 'max_connections_per_ip: 32 of 40 connections from one untrusted address are kept');
const m2 = await metrics();
ok(metric(m2, /^edgegate_http_connections_rejected_total\{reason="per_ip"\} (\d+)/m) >= 8, 'rejected_total{reason="per_ip"} moved');

// ---- a NUL inside a header value ----------------------------------------------------------------
// raw: the bytes as sent, one request per connection; resolves with the status line and headers
function raw(bytes, { port = tcpPort, localAddress, wait = 1500, pieces = 0 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    let out = Buffer.alloc(0);
    let closed = false;
    s.on('end', () => { closed = true; });
    const finish = () => {
      s.destroy();
      const text = out.toString('latin1');
      const statuses = [...text.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1]));
      resolve({ status: statuses[0] || 0, statuses, text, closed });
    };
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1');
    const send = (i) => { if (i < buf.length) { s.write(buf.subarray(i, i + pieces)); setTimeout(() => send(i + pieces), 2); } };
    s.on('connect', () => (pieces ? send(0) : s.write(buf)));
    s.on('data', (d) => { out = Buffer.concat([out, d]); });
    s.on('close', finish);
    s.on('error', finish);
    s.setTimeout(wait, finish);
  });
}
// the nginx profile's headers (tools/nginx/edgegate.conf)
const auth = (uri, extra = '') => `HEAD /auth HTTP/1.1\r\nHost: app.test\r\nX-Original-URI: ${uri}\r\nX-Original-Method: GET\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 198.18.0.10\r\n${extra}\r\n`;
let x = await raw(auth('/public/x\0/../../api/orders'));
is(x.status, 403, 'X-Original-URI "/public/x\\0/../../api/orders" -> 403 (not judged as "/public/x")');
x = await raw(auth('/api/or\0ders'));
is(x.status, 403, 'X-Original-URI "/api/or\\0ders" -> 403');
x = await raw(auth('/public/x/../../api/orders'));
is(x.status, 401, 'the same target without the NUL is judged as a whole: 401');
x = await raw(auth('/public/x'));
is(x.status, 200, 'control: a public target from the proxy -> 200');
x = await raw(auth('/public/x', 'X-Other: a\0b\r\n'));
is(x.status, 403, 'a NUL in any other header value -> 403');
x = await raw(auth('/public/x', 'X-Other: ab\0\r\n'));
is(x.status, 403, 'a NUL just before the line end -> 403');
x = await raw(auth('/public/x').replaceAll('\r\n', '\n'));
is(x.status, 200, 'bare-LF line ends (no NUL) are still read: 200');
x = await raw(auth('/api/orders', `Cookie: a=${'b'.repeat(30000)}\r\nX-After: 1\r\n`), { pieces: 1500 });
ok(x.status === 401 && !/malformed/.test(x.text), 'a 30 KB Cookie arriving in 1.5 KB pieces (the read buffer grows) is read whole: 401', x.text.slice(0, 300));
x = await raw(auth('/public/x', 'X-Folded: a\r\n b\r\n'));
is(x.status, 403, 'an obs-fold continuation line (read differently by different parsers) -> 403');
x = await raw(Buffer.concat([Buffer.from('GET /public/x\0/../../api/orders HTTP/1.1\r\nHost: a\r\n', 'latin1'), Buffer.from(`Authorization: x\r\n\r\n`)]), { port: portA });
ok([400, 403].includes(x.status) && !/"url"/.test(x.text), 'through nginx: a NUL in the request target never reaches the upstream', { status: x.status });
x = await raw(`GET /public/x HTTP/1.1\r\nHost: a\r\nX-Other: a\0b\r\n\r\n`, { port: portA });
ok([400, 403].includes(x.status), 'through nginx: a NUL in a client header value -> 400/403', { status: x.status });

// ---- hostile inputs: only 200/400/401/403/413/431, daemon alive ---------------------------------
// A request line too long for edgegated's 64 KiB per connection gets 414 (only reachable
// directly: behind nginx the subrequest's line is always "HEAD /auth"); what is not HTTP at
// all may be closed without an answer - but never left hanging.
const allowed = new Set([200, 400, 401, 403, 413, 431]);
const allowedFor = { 'an oversized request line': new Set([414, 431, 400]) };
const mayClose = new Set(['garbage', 'a bare request line']);
const hostile = {
  '100 KB header': auth('/api/orders', `X-Big: ${'a'.repeat(100 * 1024)}\r\n`),
  '10,000 headers': auth('/api/orders', Array.from({ length: 10000 }, (_, i) => `X-H${i}: v\r\n`).join('')),
  'invalid UTF-8 in the target': Buffer.concat([Buffer.from('HEAD /auth HTTP/1.1\r\nHost: a\r\nX-Original-URI: /api/\xff\xfe\xc0\xae\r\n\r\n', 'latin1')]),
  'HTTP/1.0': 'HEAD /auth HTTP/1.0\r\nX-Original-URI: /public/x\r\n\r\n',
  garbage: Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]),
  'a bare request line': 'GET\r\n\r\n',
  'an oversized request line': `GET /${'a'.repeat(70000)} HTTP/1.1\r\nHost: a\r\n\r\n`,
  'a body on /auth': auth('/public/x', 'Content-Length: 100000\r\n') + 'x'.repeat(100000),
};
for (const [name, bytes] of Object.entries(hostile)) {
  for (const [who, localAddress] of [['proxy', '127.0.0.1'], ['untrusted peer', '127.0.4.1']]) {
    x = await raw(bytes, { localAddress });
    const set = allowedFor[name] || allowed;
    const answered = x.statuses.length > 0 && x.statuses.every((s) => set.has(s));
    const closedSilently = mayClose.has(name) && x.statuses.length === 0 && x.closed;
    ok(answered || closedSilently, `${name} from the ${who} -> ${x.statuses.join(',') || (x.closed ? 'closed without an answer' : 'no answer')}`,
      x.text.slice(0, 300));
  }
}
x = await raw(auth('/public/x') + auth('/api/orders') + auth('/public/y'));
is(x.statuses.join(','), '200,401,200', 'pipelining from the proxy: three answers in order');
x = await raw(auth('/public/x') + auth('/public/y'), { localAddress: '127.0.4.2' });
ok(x.statuses.length >= 1 && x.statuses.every((s) => s === 403) && /Connection: close/i.test(x.text),
  'an untrusted peer gets 403 and "Connection: close" (no keep-alive slot for it)', x.text.slice(0, 300));

// ---- after: still serving, keep-alive intact, nothing odd in nginx's log ----------------------
r = await request(`http://127.0.0.1:${portA}/api/orders`, { headers: bearer });
is(r.status, 200, 'after everything: verdicts through nginx still 200');
r = await request(`${direct}/healthz`);
is(r.status, 200, 'after everything: /healthz 200');
const log = fs.readFileSync(path.join(ngx.dir, 'logs/error.log'), 'utf8');
ok(!/upstream timed out|no live upstreams|connect\(\) .* failed/.test(log), 'nginx saw no upstream failures during the attack', ngx.errorLog());
ok(egd.proc.exitCode === null, 'edgegated is still running', egd.log());
await done();
