#!/usr/bin/env node
// http_lane.t.mjs - the verdict lane (userspace/http/lane.c, issue 15) and libmicrohttpd
// judge alike.
//
// Two daemons with one config, except http.lane: one answers nginx's auth-subrequest shape
// on its own path, the other leaves everything to libmicrohttpd. A corpus of raw requests
// (the exact shape nginx sends, and everything the lane must hand over whole: another path
// or method, a query, a body, chunked, obs-fold, bare LF, a NUL, obs-text, HTTP/1.0, no Host,
// a header block sent in two pieces, an oversized block, a session cookie that is not in
// memory, pipelined requests mixing both) goes to each over its unix socket, over TCP from
// the configured proxy (127.0.0.1) and over TCP/IPv6 from a peer that is not one (::1: the
// lane admits TCP peers as libmicrohttpd's accept does, and answers them with Connection:
// close, judged as themselves); the answers
// (status, headers but Date and the random request id/denial key, body) must be the same,
// in the same order, except that libmicrohttpd closes a connection the lane handed over after
// its answer (Connection: close). The lane's metrics must show it both answered and handed
// over, and a keep-alive connection must serve many verdicts. A verdict that needs the store
// (a session not in memory) is tried by the lane without it and handed over, then parked by
// libmicrohttpd for a store worker and answered. On TCP, a third daemon shows that both
// fronts key bans and rate limits on the real peer address (and believe X-Real-IP only from
// the proxy), a fourth that a listener's max_connections is one budget for the lane and
// libmicrohttpd together; the header deadline runs from the accept across a handover. Then
// the real front: nginx with the shipped includes over the lane's socket, where /oauth2/ and
// the 403 page share upstream edgegate.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import * as jose from 'jose';
import {
  ok, is, done, guard, diag, startEcho, startEdgegated, startNginx, startJwksServer, request, tmpdir, sleep, freePort, waitFor,
} from '../lib/harness.mjs';

guard(180000);

const ISS = 'https://idp.example.test';
const AUD = 'api://orders';
const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
const now = Math.floor(Date.now() / 1000);
const mint = (claims) => new jose.SignJWT({ email_verified: true, ...claims })
  .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
  .setIssuer(ISS).setAudience(AUD).setIssuedAt(now).setExpirationTime(now + 900).sign(privateKey);
const alice = await mint({ sub: 'alice', email: 'alice@example.test', groups: ['ops'] });
const mallory = await mint({ sub: 'mallory', email: 'mallory@example.test' });
const jwks = await startJwksServer({ keys: [jwk] });
// A genuine session ticket (session.c: id part = HMAC of the secret part under the key derived
// from cookie.secret) for a session no store holds: only a store read can tell it has ended.
const COOKIE_SECRET = crypto.randomBytes(24).toString('hex');
const tkey = Buffer.from(crypto.hkdfSync('sha256', COOKIE_SECRET, Buffer.alloc(0), 'edgegate ticket v1', 32));
const tsecret = crypto.randomBytes(32).toString('base64url');
const ticket = `${crypto.createHmac('sha256', tkey).update(tsecret).digest().subarray(0, 16).toString('base64url')}.${tsecret}`;

async function daemon(lane) {
  const dir = tmpdir(`lane-${lane}-`);
  const sock = path.join(dir, 'auth.sock');
  const port = await freePort();
  const port6 = await freePort();
  const egd = await startEdgegated({
    listen: [`127.0.0.1:${port}`, `unix:${sock}`, `[::1]:${port6}`],
    trusted_proxies: ['127.0.0.1/32'],
    listen_group: 'nogroup',
    http: { lane, header_timeout: '1s', idle_timeout: '2s' },
    cookie: { secret: COOKIE_SECRET },
    jwt: { jwks_url: jwks.url, issuer: ISS, audience: AUD, algorithms: ['RS256'] },
    routes: [
      { path: '/public/', auth: 'public' },
      { path: '/api/', auth: 'bearer', allow: { domains: ['example.test'] }, deny: { emails: ['mallory@example.test'] } },
      { path: '/s/', auth: 'any', allow: { domains: ['example.test'] } },
    ],
  }, { dir });
  return {
    egd, sock, url: `http://127.0.0.1:${port}`, tcp: { host: '127.0.0.1', port }, tcp6: { host: '::1', port: port6 },
  };
}
const L = await daemon(true);
const M = await daemon(false);

// ---- raw exchanges -------------------------------------------------------------------------
// Sends the pieces (a pause between them), reads until `count` complete answers arrived.
// sock: a unix socket path or { host, port }.
function exchange(sock, pieces, count, heads) {
  return new Promise((resolve) => {
    const s = net.connect(typeof sock === 'string' ? { path: sock } : sock);
    let buf = Buffer.alloc(0);
    const answers = [];
    const finish = (why) => { s.destroy(); resolve({ answers, why }); };
    const timer = setTimeout(() => finish('timeout'), 8000);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1').split('\r\n');
        const m = head[0].match(/^HTTP\/1\.[01] (\d{3})/);
        const headers = head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]);
        const cl = Number((headers.find(([k]) => k === 'content-length') || [0, 0])[1]);
        const isHead = heads[answers.length];
        const len = isHead ? 0 : cl;
        if (buf.length < end + 4 + len) return;
        const body = buf.subarray(end + 4, end + 4 + len).toString('latin1');
        buf = buf.subarray(end + 4 + len);
        answers.push({
          status: m ? Number(m[1]) : 0,
          // an answer to HEAD: the lane leaves Content-Length out (RFC 9110 9.3.2; lane.c
          // build_answer), libmicrohttpd sends it; framing is the same (no body either way)
          headers: headers.filter(([k]) => k !== 'date' && !(isHead && k === 'content-length'))
            .map(([k, v]) => [k, /^x-edgegate-(request-id|denial-key)$/.test(k) ? '<random>' : v])
            .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
          body: body.replace(/[A-Za-z0-9_-]{22}/g, '<id>'),
        });
        if (answers.length === count) { clearTimeout(timer); finish('complete'); return; }
      }
    });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve({ answers, why: 'closed' }); });
    s.on('connect', async () => {
      for (let i = 0; i < pieces.length; i++) {
        if (i) await sleep(150);
        if (!s.destroyed) s.write(pieces[i]);
      }
    });
  });
}

const NGINX = 'Host: app.test\r\nX-Original-Host: app.test\r\nX-Forwarded-Proto: https\r\nX-Real-IP: 198.18.0.10\r\nX-Real-Port: 40000\r\nX-Server-Addr: 127.0.0.1\r\nX-Server-Port: 443\r\n';
const req = ({ method = 'HEAD', target = '/auth', version = 'HTTP/1.1', uri = '/api/orders', omethod = 'GET', extra = '', nginx = NGINX, eol = '\r\n' } = {}) =>
  `${method} ${target} ${version}${eol}${nginx}X-Original-URI: ${uri}${eol}X-Original-Method: ${omethod}${eol}${extra}${eol}`.replaceAll('\r\n', eol);
const bearer = (t) => `Authorization: Bearer ${t}\r\n`;

const corpus = [
  // the lane's own shape
  { name: 'HEAD /auth, valid bearer', pieces: [req({ extra: bearer(alice) })], lane: true },
  { name: 'GET /auth, valid bearer', pieces: [req({ method: 'GET', extra: bearer(alice) })], lane: true },
  { name: 'no credential (401)', pieces: [req()], lane: true },
  { name: 'GET, no credential (401 body)', pieces: [req({ method: 'GET' })], lane: true },
  { name: 'bad signature', pieces: [req({ extra: bearer(`${alice.slice(0, -4)}AAAA`) })], lane: true },
  { name: 'denied user (403)', pieces: [req({ method: 'GET', extra: bearer(mallory) })], lane: true },
  { name: 'public route', pieces: [req({ uri: '/public/x' })], lane: true },
  { name: 'unrouted path', pieces: [req({ uri: '/nowhere' })], lane: true },
  { name: 'two Authorization headers', pieces: [req({ extra: bearer(alice) + bearer(alice) })], lane: true },
  // the header index matches names in any case (http.c known_eq, word by word)
  { name: 'header names lower- and upper-case', pieces: [req({ nginx: NGINX.toLowerCase(), extra: `AUTHORIZATION: Bearer ${alice}\r\nx-fORWARDED-pROTO-nOT: x\r\n` })], lane: true },
  { name: 'smuggled identity header', pieces: [req({ extra: `${bearer(alice)}X_Auth_Request_User: root\r\n` })], lane: true },
  { name: 'dot segments in the target', pieces: [req({ uri: '/public/../api/orders' })], lane: true },
  { name: 'Content-Length: 0', pieces: [req({ extra: `${bearer(alice)}Content-Length: 0\r\n` })], lane: true },
  { name: 'no X-Forwarded-Proto', pieces: [req({ nginx: 'Host: app.test\r\nX-Real-IP: 198.18.0.10\r\n' })], lane: true },
  { name: 'method override header', pieces: [req({ extra: `${bearer(alice)}X-HTTP-Method-Override: DELETE\r\n` })], lane: true },
  { name: 'forged session cookie, bearer route', pieces: [req({ uri: '/s/x', extra: 'Cookie: a=b\r\n' })], lane: true },
  // handed over whole
  { name: 'session cookie not in memory', pieces: [req({ uri: '/s/x', extra: `Cookie: __Host-edgegate=${ticket}\r\n` })], store: true },
  { name: 'forged session cookie', pieces: [req({ uri: '/s/x', extra: `Cookie: __Host-edgegate=${'A'.repeat(22)}.${'B'.repeat(43)}\r\n` })], lane: true },
  // the lane reads a lone Cookie line from its header index, more than one by walking them
  { name: 'session cookie twice in one Cookie line', pieces: [req({ uri: '/s/x', extra: `Cookie: __Host-edgegate=${'A'.repeat(22)}.${'B'.repeat(43)}; __Host-edgegate=${ticket}\r\n` })], lane: true },
  { name: 'two Cookie lines, the session cookie in the second', pieces: [req({ uri: '/s/x', extra: `Cookie: a=b\r\ncookie: __Host-edgegate=${'A'.repeat(22)}.${'B'.repeat(43)}\r\n` })], lane: true },
  { name: 'query on /auth', pieces: [req({ target: '/auth?x=1' })] },
  { name: 'POST /auth with a body', pieces: [`${req({ method: 'POST', extra: 'Content-Length: 4\r\n' })}abcd`] },
  { name: 'chunked', pieces: [`${req({ method: 'GET', extra: 'Transfer-Encoding: chunked\r\n' })}0\r\n\r\n`] },
  { name: 'GET /healthz', pieces: ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'] },
  { name: 'GET /metrics-like unknown path', pieces: ['GET /nope HTTP/1.1\r\nHost: x\r\n\r\n'] },
  { name: 'HTTP/1.0', pieces: [req({ version: 'HTTP/1.0', extra: bearer(alice) })] },
  { name: 'no Host', pieces: [req({ nginx: 'X-Forwarded-Proto: https\r\nX-Real-IP: 198.18.0.10\r\n', extra: bearer(alice) })] },
  { name: 'two Host headers', pieces: [req({ extra: `Host: evil.test\r\n${bearer(alice)}` })] },
  { name: 'bare LF line ends', pieces: [req({ eol: '\n', extra: bearer(alice) })] },
  { name: 'obs-fold', pieces: [req({ extra: `${bearer(alice)}X-Folded: a\r\n b\r\n` })] },
  { name: 'NUL in X-Original-URI', pieces: [req({ uri: '/public/x\0/../../api/orders' })] },
  { name: 'obs-text (UTF-8) in a value', pieces: [req({ extra: `${bearer(alice)}X-Name: caf\u00c3\u00a9\r\n` })] },
  { name: 'trailing whitespace in a value', pieces: [req({ extra: `${bearer(alice).slice(0, -2)}  \r\n` })] },
  { name: 'Connection: close', pieces: [req({ extra: `${bearer(alice)}Connection: close\r\n` })] },
  { name: 'header block in two pieces', pieces: (() => { const r = req({ extra: bearer(alice) }); return [r.slice(0, 40), r.slice(40)]; })() },
  { name: 'header block over 16 KiB', pieces: [req({ extra: `${bearer(alice)}X-Pad: ${'p'.repeat(17000)}\r\n` })] },
  { name: 'garbage', pieces: ['\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n'] },
  // pipelined
  { name: 'pipelined: three verdicts', pieces: [req({ extra: bearer(alice) }) + req({ method: 'GET' }) + req({ extra: bearer(mallory) })], n: 3, lane: true },
  { name: 'pipelined: verdict, then /healthz', pieces: [req({ extra: bearer(alice) }) + 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'], n: 2, leadsLane: true },
  { name: 'pipelined: verdict, then a verdict with a query', pieces: [req({ extra: bearer(alice) }) + req({ target: '/auth?a=b', extra: bearer(alice) })], n: 2, leadsLane: true },
];

// Every listener of L is the lane's, so each scrape of L's metrics is itself handed over
// (reason "shape", counted before the page is made): handovers() leaves those out.
let scrapes = 0;
const metrics = async (url) => {
  const body = (await request(`${url}/metrics`)).body;
  return url === L.url ? `${body}\n# test scrapes ${++scrapes}\n` : body;
};
const scrapesIn = (t) => Number((t.match(/^# test scrapes (\d+)$/m) || [0, 0])[1]);
const handovers = (t) => [...t.matchAll(/edgegate_http_lane_handovers_total\{reason="(\w+)"\} (\d+)/g)].reduce((s, m) => s + Number(m[2]), 0) - scrapesIn(t);
const handoversFor = (t, why) => Number((t.match(new RegExp(`edgegate_http_lane_handovers_total\\{reason="${why}"\\} (\\d+)`)) || [0, 0])[1]);
const storeQueued = (t) => Number((t.match(/edgegate_store_workers_total\{result="queued"\} (\d+)/) || [0, 0])[1]);
const hasClose = (x) => x.headers.some(([k, v]) => k === 'connection' && v.toLowerCase() === 'close');

const transports = [
  { name: 'unix', key: 'sock', trusted: true },
  { name: 'TCP', key: 'tcp', trusted: true },
  { name: 'TCP/IPv6, not a proxy', key: 'tcp6', trusted: false },
];
for (const via of transports) {
  for (const c0 of corpus) {
    const c = { ...c0, name: `${via.name}: ${c0.name}` };
    const n = c.n || 1;
    const heads = c.pieces.join('').split(/(?=(?:GET|HEAD|POST) \/)/).map((r) => r.startsWith('HEAD'));
    const m0 = await metrics(L.url);
    const h0 = handovers(m0);
    const a = await exchange(L[via.key], c.pieces, n, heads);
    const b = await exchange(M[via.key], c.pieces, n, heads);
    const m1 = await metrics(L.url);
    const h1 = handovers(m1);
    if (!via.trusted) {
      // no keep-alive for it on either front: Connection: close, then closed
      ok([...a.answers, ...b.answers].every(hasClose) && a.why !== 'timeout' && b.why !== 'timeout',
        `${c.name}: Connection: close from both fronts`, { lane: a, mhd: b });
    } else if (!c.lane && a.answers.length) {
      // handed over: libmicrohttpd answers, then closes, so nginx's next connection is the lane's
      const last = a.answers[a.answers.length - 1];
      ok(hasClose(last) && a.why === 'complete', `${c.name}: libmicrohttpd closes the handed-over connection after its answer`, a.answers);
      // libmicrohttpd-only keeps it open (unless the request itself asked otherwise): compare the rest
      for (const x of [...a.answers, ...b.answers]) x.headers = x.headers.filter(([k]) => k !== 'connection');
    }
    if (c.store && via.trusted) {
      is(handoversFor(m1, 'store') - handoversFor(m0, 'store'), 1, `${c.name}: the lane tried it without the store and handed it over for the store`);
      ok(storeQueued(m1) > storeQueued(m0), `${c.name}: libmicrohttpd parked it for a store worker`, { before: storeQueued(m0), after: storeQueued(m1) });
      is(a.answers.length === 1 && a.answers[0].status, 401, `${c.name}: answered from the store: no such session, 401`);
    }
    if (!via.trusted && (c.lane || c.store))
      ok(a.answers.length === 1 && a.answers[0].status === 403, `${c.name}: 403 to a peer that is not a proxy`, a.answers);
    ok(JSON.stringify(a.answers) === JSON.stringify(b.answers) && a.answers.length === b.answers.length,
      `${c.name}: the lane and libmicrohttpd answer alike (${b.answers.map((x) => x.status).join(',') || b.why})`,
      { lane: a, mhd: b });
    // a peer that is not a proxy gets one answer per connection: a pipelined case that starts
    // with a verdict ends on the lane
    if (c.lane || (!via.trusted && (c.store || c.leadsLane))) is(h1 - h0, 0, `${c.name}: answered by the lane itself`);
    else ok(h1 - h0 === 1 || a.answers.length === 0, `${c.name}: handed over to libmicrohttpd`, { handovers: h1 - h0 });
  }
}

// ---- the peer address on TCP: what both fronts key on ------------------------------------
// A third daemon with a verdict rate of 1/s, burst 4, per source. From ::1 (not a proxy:
// judged as itself) verdicts the lane hands over (a query) and verdicts it answers (GET /auth)
// alternate, each on its own connection, all six opened first (so that the requests come
// faster than the rate refills): the fifth and sixth are refused as rate_limited whichever
// front answers, so both counted one source, ::1. The first is handed over while ::1 holds
// six connections, its max_connections_per_ip: answered all the same, because the lane
// admitted it once and libmicrohttpd does not admit it again. 127.0.0.2 is not a proxy either
// and its X-Real-IP is not believed; 127.0.0.1 is, and its X-Real-IP is.
{
  const port4 = await freePort();
  const port6 = await freePort();
  const P = await startEdgegated({
    listen: [`127.0.0.1:${port4}`, `[::1]:${port6}`],
    trusted_proxies: ['127.0.0.1/32'],
    http: { lane: true, max_connections_per_ip: 6 },
    gate: { verdict_rate: 1, verdict_burst: 4 },
    jwt: { jwks_url: jwks.url, issuer: ISS, audience: AUD, algorithms: ['RS256'] },
    routes: [{ path: '/api/', auth: 'bearer' }],
  }, { dir: tmpdir('lane-peer-') });
  const pm = async () => (await request(`http://127.0.0.1:${port4}/metrics`)).body;
  const json = 'Accept: application/json\r\n';
  const connectTo = (to) => new Promise((resolve) => {
    const s = net.connect(to);
    s.chunks = [];
    s.on('data', (d) => s.chunks.push(d));
    s.ended = new Promise((res) => s.on('close', res));
    s.on('error', () => {});
    s.on('connect', () => resolve(s));
  });
  // one request on an open connection; the answer's JSON error (its peers get Connection: close)
  const askOn = async (s, target, nginx) => {
    s.write(req({ method: 'GET', target, nginx, extra: json }));
    const t = setTimeout(() => s.destroy(), 5000);
    await s.ended;
    clearTimeout(t);
    const text = Buffer.concat(s.chunks).toString('latin1');
    try { return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error; } catch { return `no answer: ${text.slice(0, 40)}`; }
  };
  const askAll = async (to, targets, nginxOf) => {
    const socks = [];
    for (let i = 0; i < targets.length; i++) socks.push(await connectTo(to));
    await sleep(100);
    const out = [];
    for (let i = 0; i < targets.length; i++) out.push(await askOn(socks[i], targets[i], nginxOf(i)));
    return out;
  };
  const fromX = (ip) => NGINX.replace('198.18.0.10', ip);
  const hv = (t) => [...t.matchAll(/edgegate_http_lane_handovers_total\{reason="(\w+)"\} (\d+)/g)].reduce((s, m) => s + Number(m[2]), 0);
  const h0 = hv(await pm());
  const t0 = Date.now();
  const seen = await askAll({ host: '::1', port: port6 }, ['/auth?v=1', '/auth', '/auth?v=2', '/auth', '/auth?v=3', '/auth'], () => fromX('198.18.0.60'));
  const h1 = hv(await pm());
  is(seen.join(','), 'untrusted_peer,untrusted_peer,untrusted_peer,untrusted_peer,rate_limited,rate_limited',
    `peer ::1 over TCP/IPv6: four verdicts (two handed over, two on the lane), then rate_limited on both fronts: one source (${Date.now() - t0} ms)`);
  is(h1 - h0, 3 + 1, 'peer ::1: the three verdicts with a query were handed over (and the scrape)');
  const other = await askAll({ host: '127.0.0.1', port: port4, localAddress: '127.0.0.2' }, ['/auth', '/auth?x', '/auth', '/auth?x', '/auth', '/auth?x'],
    (i) => fromX(`198.18.0.${70 + i}`));
  is(other.slice(0, 4).join(','), 'untrusted_peer,untrusted_peer,untrusted_peer,untrusted_peer', 'peer 127.0.0.2 (not a proxy): a source of its own');
  ok(other.slice(4).every((e) => e === 'rate_limited'), 'peer 127.0.0.2: limited as itself although each request named another X-Real-IP', other);
  const proxied = await askAll({ host: '127.0.0.1', port: port4 }, ['/auth', '/auth?y', '/auth'], () => fromX('198.18.0.60'));
  is(proxied.join(','), 'no_identity,no_identity,no_identity', 'the proxy 127.0.0.1: judged by its X-Real-IP, which ::1 used in vain');
  await P.stop('SIGTERM');
  ok(!/AddressSanitizer|LeakSanitizer|runtime error/.test(fs.readFileSync(P.logFile, 'utf8')), 'peer daemon: no sanitizer report at exit');
}

// ---- one budget per listener, shared by the lane and libmicrohttpd -----------------------
// max_connections 16 on a unix listener: 8 connections wait on the lane, 8 were handed over
// (an incomplete block). A 17th is not served until one of them ends (it waits in the
// backlog, as at libmicrohttpd's own limit), then answered; the TCP listener has its own 16.
{
  const qdir = tmpdir('lane-budget-');
  const qsock = path.join(qdir, 'auth.sock');
  const qport = await freePort();
  const Q = await startEdgegated({
    listen: [`127.0.0.1:${qport}`, `unix:${qsock}`],
    trusted_proxies: ['127.0.0.1/32'],
    http: { lane: true, max_connections: 16, reserved_for_proxies: 4 },
    jwt: { jwks_url: jwks.url, issuer: ISS, audience: AUD, algorithms: ['RS256'] },
    routes: [{ path: '/api/', auth: 'bearer' }],
  }, { dir: qdir });
  const open = (write) => new Promise((resolve) => {
    const s = net.connect({ path: qsock });
    s.on('connect', () => { if (write) s.write(write); resolve(s); });
    s.on('error', () => resolve(s));
  });
  const held = [];
  for (let i = 0; i < 8; i++) held.push(await open(null));
  for (let i = 0; i < 8; i++) held.push(await open('HEAD /auth HTTP/1.1\r\nHost: x\r\n'));
  await sleep(300);
  const qm = (await request(`http://127.0.0.1:${qport}/metrics`)).body;
  is(Number((qm.match(/edgegate_http_connections_open\{peer="proxy"\} (\d+)/) || [0, -1])[1]), 17,
    'budget: 16 unix connections open (8 on the lane, 8 handed over) and the scrape over TCP: its own budget');
  is(handoversFor(qm, 'incomplete'), 8, 'budget: 8 of them were handed over');
  const t0 = Date.now();
  const late = exchange(qsock, [req({ extra: bearer(alice) })], 1, [true]);
  await sleep(800);
  held[12].destroy(); // a handed-over one ends: its slot is the lane's again
  const got = await late;
  const waited = Date.now() - t0;
  ok(got.answers.length === 1 && got.answers[0].status === 200 && waited >= 750 && waited < 2500,
    `budget: a 17th connection waits until one of the 16 ends (libmicrohttpd's too), then is served (${waited} ms)`, got);
  for (const s of held) s.destroy();
  await Q.stop('SIGTERM');
  ok(!/AddressSanitizer|LeakSanitizer|runtime error/.test(fs.readFileSync(Q.logFile, 'utf8')), 'budget daemon: no sanitizer report at exit');
}

// ---- keep-alive: many verdicts on one connection, all on the lane --------------------------
{
  const h0 = handovers(await metrics(L.url));
  const many = Array.from({ length: 50 }, (_, i) => req({ extra: bearer(i % 5 ? alice : mallory) }));
  const r = await exchange(L.sock, [many.join('')], 50, many.map(() => true));
  is(r.answers.length, 50, 'keep-alive: 50 pipelined verdicts answered on one connection');
  ok(r.answers.every((x, i) => x.status === (i % 5 ? 200 : 403)), 'keep-alive: each answer matches its request, in order');
  is(handovers(await metrics(L.url)) - h0, 0, 'keep-alive: none of them handed over');
}

// ---- bans: the lane answers the denial that starts one; the ban is recorded on a store worker
// (offload.h, eg_offload_call) and refused at once from then on ------------------------------
{
  const bad = bearer(`${alice.slice(0, -4)}AAAA`);
  const fromX = (extra) => req({ nginx: NGINX.replace('198.18.0.10', '198.18.0.99'), extra });
  const run = async (g) => {
    const h0 = handovers(await metrics(g.url));
    const first = await exchange(g.sock, [Array.from({ length: 19 }, () => fromX(bad)).join('')], 19, Array(19).fill(true));
    const h1 = handovers(await metrics(g.url));
    const last = await exchange(g.sock, [fromX(bad)], 1, [true]);
    const h2 = handovers(await metrics(g.url));
    const after = await exchange(g.sock, [fromX(bearer(alice))], 1, [true]);
    return { first: first.answers.map((x) => x.status), last: last.answers.map((x) => x.status), after: after.answers.map((x) => x.status), lane: [h1 - h0, h2 - h1] };
  };
  const a = await run(L);
  const b = await run(M);
  ok(JSON.stringify([a.first, a.last, a.after]) === JSON.stringify([b.first, b.last, b.after]) && a.after[0] === 403,
    'ban threshold (20): the lane and libmicrohttpd answer the same 21 requests alike, the source banned after', { lane: a, mhd: b });
  ok(a.lane[0] === 0 && a.lane[1] === 0, 'all 20 failures, the one that bans included, were the lane\'s (the ban is written on a store worker)', a.lane);
  await waitFor(async () => /edgegate_bans_total\{where="\w+"\} [1-9]/.test(await metrics(L.url)), { what: 'the lane daemon recorded the ban' });
  ok(/abuse: banned 198\.18\.0\.99/.test(L.egd.log()), 'the lane daemon logged the recorded ban of 198.18.0.99', L.egd.log().slice(-2000));
}

// ---- deadlines: admission.c's sweeper closes the lane's connections too -------------------
{
  const timedOut = async (phase) => Number(((await metrics(L.url)).match(new RegExp(`edgegate_http_connections_timed_out_total\\{phase="${phase}"\\} (\\d+)`)) || [0, 0])[1]);
  const closedWithin = (pieces, ms) => new Promise((resolve) => {
    const s = net.connect(L.sock);
    const t0 = Date.now();
    const timer = setTimeout(() => { s.destroy(); resolve(null); }, ms);
    s.on('connect', () => { for (const p of pieces) s.write(p); });
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve(Date.now() - t0); });
  });
  const r0 = await timedOut('request');
  const silent = await closedWithin([], 5000);
  ok(silent !== null && silent >= 900, `a lane connection that sends nothing is closed at header_timeout (after ${silent} ms)`);
  ok(await timedOut('request') > r0, 'and counted in edgegate_http_connections_timed_out_total{phase="request"}');
  const i0 = await timedOut('idle');
  const idle = await closedWithin([req({ extra: bearer(alice) })], 6000);
  ok(idle !== null && idle >= 1900, `a kept-alive lane connection is closed at idle_timeout after its answer (after ${idle} ms)`);
  ok(await timedOut('idle') > i0, 'and counted in edgegate_http_connections_timed_out_total{phase="idle"}');
  // the deadline runs from the accept, not from the handover: 800 ms of silence on the lane,
  // then a header block trickled to libmicrohttpd (handed over as incomplete) is cut at
  // header_timeout (1 s) after the accept, not 1 s after the handover
  for (const [who, to] of [['TCP', L.tcp], ['TCP/IPv6, not a proxy', L.tcp6], ['unix', { path: L.sock }]]) {
    const life = await new Promise((resolve) => {
      const s = net.connect(to);
      let t0 = 0;
      let tick = null;
      s.on('connect', () => {
        t0 = Date.now();
        setTimeout(() => {
          s.write('HEAD /auth HTTP/1.1\r\nHost: slow\r\n');
          tick = setInterval(() => s.write('X-Slow: x\r\n'), 100);
        }, 800);
      });
      const timer = setTimeout(() => { s.destroy(); resolve(null); }, 5000);
      s.on('data', () => {});
      s.on('error', () => {});
      s.on('close', () => { clearTimeout(timer); clearInterval(tick); resolve(Date.now() - t0); });
    });
    ok(life !== null && life >= 900 && life < 1750, `${who}: a block trickled after 800 ms is cut at header_timeout after the accept, across the handover (${life} ms)`);
  }
}

// ---- the real front: nginx with the shipped includes, over the lane's socket ----------------
const echo = await startEcho();
const port = await freePort();
await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream app { server 127.0.0.1:${echo.port}; }
  server {
    listen 127.0.0.1:${port};
    {{EDGEGATE_INCLUDE}}
    location / { {{EDGEGATE_PROTECT}} proxy_pass http://app; }
  }`, { edgegate: `unix:${L.sock}`, waitPort: port });
const site = `http://127.0.0.1:${port}`;
const h0 = handovers(await metrics(L.url));
const req0 = Number(((await metrics(L.url)).match(/edgegate_http_requests_total\{endpoint="\/auth"\} (\d+)/) || [0, 0])[1]);
let allOk = true;
for (let i = 0; i < 40; i++) {
  const r = await request(`${site}/api/orders`, { headers: { Authorization: `Bearer ${alice}` }, agent: undefined });
  if (r.status !== 200 || !/alice/.test(r.body)) allOk = false;
}
ok(allOk, 'nginx: 40 verdicts through the shipped includes, each 200 with the identity passed on');
let r = await request(`${site}/api/orders`, { headers: { Authorization: `Bearer ${mallory}` } });
is(r.status, 403, 'nginx: a denied user gets 403 (the page from upstream edgegate, on the lane too)');
ok(/deny_rule/.test(r.body), 'nginx: the 403 page (GET /forbidden) was served with the denial', r.body.slice(0, 200));
r = await request(`${site}/api/orders`);
is(r.status, 401, 'nginx: no credential, 401');
const m1 = await metrics(L.url);
const req1 = Number((m1.match(/edgegate_http_requests_total\{endpoint="\/auth"\} (\d+)/) || [0, 0])[1]);
ok(req1 - req0 >= 42, `nginx: the verdicts reached /auth (${req1 - req0})`);
is(handovers(m1) - h0, 0, 'nginx: nothing was handed over: the verdicts and the 403 page stayed on the lane (a flood of denials costs no new connections)');
ok(/edgegate_http_requests_total\{endpoint="\/forbidden"\} [1-9]/.test(m1), 'nginx: the 403 page was answered (edgegate_http_requests_total{endpoint="/forbidden"})');
// /oauth2/ shares upstream edgegate: its request is handed over, answered and its connection
// closed, so the verdicts after it come to the lane again
r = await request(`${site}/oauth2/userinfo`);
is(r.status, 404, 'nginx: /oauth2/ proxied to upstream edgegate, answered by libmicrohttpd (no OIDC here: 404)');
allOk = true;
for (let i = 0; i < 10; i++) {
  const v = await request(`${site}/api/orders`, { headers: { Authorization: `Bearer ${alice}` } });
  if (v.status !== 200) allOk = false;
}
ok(allOk, 'nginx: the verdicts after /oauth2/ answered 200');
is(handovers(await metrics(L.url)) - h0, 1, 'nginx: the /oauth2/ request was handed over, the verdicts after it stayed on the lane');
// the same on one pooled connection, seen from the socket: a verdict (the lane), then /oauth2/
// (libmicrohttpd: answered, Connection: close, closed)
{
  const conns = async () => Number(((await metrics(L.url)).match(/^edgegate_http_connections_total (\d+)/m) || [0, -1])[1]);
  const c1 = await conns();
  const x = await exchange(L.sock, [req({ extra: bearer(alice) }) + 'GET /oauth2/userinfo HTTP/1.1\r\nHost: app.test\r\n\r\n'], 2, [true, false]);
  // the scrape's own connection and the pooled one, which the lane answered before handing it over
  is(await conns() - c1, 2, 'pooled connection: counted once in edgegate_http_connections_total, not by both fronts');
  is(x.answers.map((y) => y.status).join(','), '200,404', 'pooled connection: the verdict, then /oauth2/, both answered');
  ok(!hasClose(x.answers[0]) && hasClose(x.answers[1]), 'pooled connection: kept alive after the verdict, Connection: close after /oauth2/', x.answers);
  const y = await exchange(L.sock, [req({ extra: bearer(alice) }) + 'GET /oauth2/userinfo HTTP/1.1\r\nHost: app.test\r\n\r\n'], 3, [true, false, true]);
  is(y.why, 'closed', 'pooled connection: libmicrohttpd closed it after the /oauth2/ answer');
}

// ---- SIGHUP (systemctl reload): caches flushed, the lane keeps answering -------------------
{
  const h0 = handovers(await metrics(L.url));
  process.kill(L.egd.proc.pid, 'SIGHUP');
  await waitFor(() => /SIGHUP: caches flushed/.test(L.egd.log()), { what: 'SIGHUP handled' });
  const r = await exchange(L.sock, [req({ extra: bearer(alice) }) + req({ extra: bearer(mallory) })], 2, [true, true]);
  is(r.answers.map((x) => x.status).join(','), '200,403', 'after SIGHUP the lane answers verdicts as before');
  is(handovers(await metrics(L.url)) - h0, 0, 'after SIGHUP: still on the lane');
}

// ---- shutdown: the lane's threads and connections go with the daemon ------------------------
const idle = net.connect(L.sock);
await new Promise((res) => idle.on('connect', res));
const t0 = Date.now();
const { code, sig } = await L.egd.stop('SIGTERM');
ok(code === 0 && Date.now() - t0 < 5000, `SIGTERM with an idle lane connection open: clean exit (code ${code}, signal ${sig})`, L.egd.log());
ok(!/AddressSanitizer|LeakSanitizer|runtime error/.test(fs.readFileSync(L.egd.logFile, 'utf8')), 'no sanitizer report in the lane daemon\'s log');
idle.destroy();
await done();
