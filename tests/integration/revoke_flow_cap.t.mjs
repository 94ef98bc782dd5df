#!/usr/bin/env node
// revoke_flow_cap.t.mjs - a revocation kills every connection that ever got an allow, however
// many connections the session opened (issue: flows evicted from a full session were not
// killed, so a WebSocket followed by 16 short connections survived its session's revocation).
//
// The documented deployment: edgegated started as root, dropping to an unprivileged user (the
// privileged process does the probing and the SOCK_DESTROYs), nginx with the shipped includes
// over the unix socket, the real OP. revocation.flows_per_session is CAP (32) to keep the test
// small; the old fixed cap was 16.
//   1. a WebSocket (its upgrade is its one verdict) and a long-lived keep-alive connection,
//      then 3*CAP short connections (open, one request, close) and 20 more long-lived ones:
//      all allowed (closed flows are probed and reclaimed at the cap); revoking the session
//      resets every open connection, the WebSocket and the first one included.
//   2. past the cap with every flow live: the next connection's request gets 403
//      too_many_connections (JSON and metric), is logged once, and the session's allowed
//      connections are untouched; once one closes, the refused connection is served (after
//      the one-second probe pause) and is killed by the revocation like the others.
//   3. one user, several sessions (revocation.flows_per_subject is SUBJ, 48): erin signs in three
//      times (three browsers); two sessions holding CAP + CAP/2 live connections reach the bound,
//      and the next connection of either, or of the third session, gets 403 too_many_connections
//      (metric why="subject_full", logged once for the subject) while bob and a new user are
//      served; when one of erin's sessions is revoked its room comes back to the others.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {
  ok, is, done, guard, diag, skipAll, freePort, request, startEdgegated, startNginx, startEcho, tmpdir, waitFor, sleep,
  onCleanup, TEST_USER, ensureTestUser,
} from '../lib/harness.mjs';
import { WebSocketServer } from 'ws';
import { Jar, browserLogin } from '../lib/oidc_helpers.mjs';
import { startOP } from '../lib/op.mjs';
import { adminClient, metricReader } from '../lib/daemon_checks.mjs';

if (process.getuid() !== 0) {
  if (process.env.CI === 'true') throw new Error('needs root (privilege separation, SOCK_DESTROY)');
  skipAll('needs root (privilege separation, SOCK_DESTROY)');
}
guard(180000);
const CAP = 32;
const SUBJ = CAP + CAP / 2;


const USER = TEST_USER;
ensureTestUser();

const dir = tmpdir('eg-rfc-');
fs.chmodSync(dir, 0o755);
const [opPort, ngxPort, egPort] = [await freePort(), await freePort(), await freePort()];
const pub = `http://127.0.0.1:${ngxPort}`;
const client = {
  client_id: 'edgegate-rfc', client_secret: 'rfc-secret-0123456789abcdef0123456789',
  redirect_uris: [`${pub}/oauth2/callback`], post_logout_redirect_uris: [`${pub}/`],
};
const op = await startOP({ port: opPort, clients: [client] });
onCleanup(() => op.stop());
const echo = await startEcho();
const sock = path.join(dir, 'eg.sock');
fs.mkdirSync(path.join(dir, 'eg'), { recursive: true });
fs.chmodSync(path.join(dir, 'eg'), 0o777); // state_dir and admin socket of the dropped user
const eg = await startEdgegated({
  listen: [`127.0.0.1:${egPort}`, `unix:${sock}`],
  listen_group: 'nogroup',
  user: USER,
  public_url: pub,
  log_level: 'info',
  cookie: { secure: false, secret: 'cookie-secret-0123456789abcdef0123456789' },
  oidc: {
    issuer: op.issuer, client_id: client.client_id, client_secret: client.client_secret,
    redirect_url: `${pub}/oauth2/callback`, scopes: ['openid', 'email', 'profile'],
  },
  routes: [{ path: '/', auth: 'session' }],
  revocation: { flows_per_session: CAP, flows_per_subject: SUBJ },
}, { dir: path.join(dir, 'eg') });
await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'OIDC discovery' });
const admin = adminClient(() => eg);
const metric = metricReader(() => eg);

const httpPid = Number(execFileSync('pgrep', ['-P', String(eg.proc.pid), '-x', 'edgegated']).toString().trim());
const uid = Number(execFileSync('id', ['-u', USER]).toString());
const st = fs.readFileSync(`/proc/${httpPid}/status`, 'utf8');
ok(new RegExp(`^Uid:\\s+${uid}\\s+${uid}`, 'm').test(st) && /^CapEff:\s+0+$/m.test(st),
  `the daemon proper runs as ${USER} (uid ${uid}) with no capability; the privileged process is ${eg.proc.pid}`);

// A WebSocket upstream (npm ws) that echoes.
const wsPort = await freePort();
const wsUp = http.createServer((req, res) => res.end('{}'));
const wss = new WebSocketServer({ server: wsUp });
wss.on('connection', (ws) => { ws.on('message', (m) => ws.send(m)); ws.on('error', () => {}); });
await new Promise((r) => wsUp.listen(wsPort, '127.0.0.1', r));
onCleanup(() => new Promise((r) => { for (const c of wss.clients) c.terminate(); wsUp.close(() => r()); }));

// nginx reaches edgegated over the unix socket (the verdict lane).
const ngxBody = (port) => `
  {{EDGEGATE_UPSTREAM}}
  upstream echo { server 127.0.0.1:${echo.port}; }
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen 127.0.0.1:${port};
    server_name 127.0.0.1;
    keepalive_timeout 60s;
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://echo;
    }
    location /ws/ {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://127.0.0.1:${wsPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 60s;
    }
  }`;
await startNginx(ngxBody(ngxPort), { dir: path.join(dir, 'ngx'), edgegate: `unix:${sock}`, waitPort: ngxPort });

// A keep-alive connection to nginx that can send requests and reports how it ended.
function openConn(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const c = { s, buf: '', ended: null, waiters: [] };
    s.on('data', (d) => { c.buf += d; for (const w of c.waiters.splice(0)) w(); });
    s.on('error', (e) => { c.ended = c.ended || e.code; for (const w of c.waiters.splice(0)) w(); });
    s.on('close', () => { c.ended = c.ended || 'close'; for (const w of c.waiters.splice(0)) w(); });
    s.on('connect', () => resolve(c));
    s.once('error', reject);
  });
}
// One GET on c; resolves with the status once the whole (small, Content-Length) answer is in.
async function get(c, cookie) {
  c.buf = '';
  c.s.write(`GET /app/x HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nCookie: ${cookie}\r\n\r\n`);
  for (;;) {
    const m = /^HTTP\/1\.1 (\d+)[^]*?\r\ncontent-length: (\d+)\r\n[^]*?\r\n\r\n/i.exec(c.buf);
    if (m && c.buf.length >= m.index + m[0].length + Number(m[2])) return Number(m[1]);
    if (c.ended) return `ended (${c.ended})`;
    await new Promise((r) => c.waiters.push(r));
  }
}
async function endedWithin(c, ms) {
  const t = Date.now();
  while (!c.ended && Date.now() - t < ms) await new Promise((r) => { c.waiters.push(r); setTimeout(r, 5); });
  return c.ended;
}

async function login(user) {
  const jar = new Jar();
  const r = await browserLogin(jar, `${pub}/app/`, user);
  is(r.status, 200, `${user} logged in through the OP and nginx`);
  const s = await admin({ cmd: 'sessions', sub: user });
  ok(/^[0-9a-f]{64}$/.test(s.sessions?.[0]?.session_id || ''), `${user} has a session id`);
  return { cookie: jar.header(`${pub}/app/`), id: s.sessions?.[0]?.session_id };
}


// A WebSocket through nginx on a raw socket: the upgrade (one verdict), then masked text
// frames echoed back.
async function openWs(cookie) {
  const c = await openConn(ngxPort);
  c.s.write(`GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: ${cookie}\r\n\r\n`);
  while (!/\r\n\r\n/.test(c.buf) && !c.ended) await new Promise((r) => c.waiters.push(r));
  c.status = Number(/^HTTP\/1\.1 (\d+)/.exec(c.buf)?.[1]);
  c.buf = '';
  return c;
}
async function wsEcho(c, text) {
  const p = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  c.buf = '';
  c.s.write(Buffer.concat([Buffer.from([0x81, 0x80 | p.length]), mask, Buffer.from(p.map((b, i) => b ^ mask[i % 4]))]));
  const t = Date.now();
  while (!c.buf.includes(text) && !c.ended && Date.now() - t < 2000)
    await new Promise((r) => { c.waiters.push(r); setTimeout(r, 20); });
  return c.buf.includes(text);
}

// opens n keep-alive connections and sends each one request
async function openAllowed(n, cookie) {
  const cs = [];
  for (let i = 0; i < n; i++) cs.push(await openConn(ngxPort));
  const st = await Promise.all(cs.map((c) => get(c, cookie)));
  return { cs, st };
}
async function getBody(c, cookie) {
  const status = await get(c, cookie);
  return { status, body: c.buf.slice(c.buf.indexOf('\r\n\r\n') + 4) };
}

// --- 1. the first connection survives any number of later ones, and dies with the session ---
const u = await login('carol');
const ws = await openWs(u.cookie);
is(ws.status, 101, 'carol: a WebSocket through nginx (its upgrade is its one verdict)');
ok(await wsEcho(ws, 'hello-1'), 'the WebSocket echoes');
const first = await openConn(ngxPort);
is(await get(first, u.cookie), 200, 'carol: a long-lived keep-alive connection, one allowed verdict');
let shortOk = 0;
for (let i = 0; i < 3 * CAP; i++) {
  const c = await openConn(ngxPort);
  if ((await get(c, u.cookie)) === 200) shortOk++;
  c.s.end();
  await endedWithin(c, 1000);
}
is(shortOk, 3 * CAP, `${3 * CAP} short connections after it (open, one request, close): all allowed`);
const reclaimed = (await metric('edgegate_flows_reclaimed_total')) || 0;
ok(reclaimed >= 2 * CAP, `closed flows were probed and reclaimed at the cap (edgegate_flows_reclaimed_total ${reclaimed})`);
const long = await openAllowed(20, u.cookie);
is(long.st.filter((x) => x === 200).length, 20, '20 more long-lived connections: all allowed');
is(await get(first, u.cookie), 200, 'the first keep-alive connection is still open and served');
ok(await wsEcho(ws, 'hello-2'), 'the WebSocket still echoes');
let fl = await admin({ cmd: 'flows', session: u.id });
ok(fl.flows?.length >= 22 && fl.flows.length <= CAP, `the session's tracked flows: ${fl.flows?.length} (22 open, at most ${CAP})`);
is(((await metric('edgegate_flows_untracked_total{why="session_full"}')) || 0), 0, 'no flow went untracked');
const failed0 = (await metric('edgegate_revoked_flows_total{result="failed"}')) || 0;
let rv = await admin({ cmd: 'revoke', session: u.id });
ok(rv.ok === true, 'carol revoked', rv);
let ends = await Promise.all([ws, first, ...long.cs].map((c) => endedWithin(c, 500)));
is(ends[0], 'ECONNRESET', 'the WebSocket was reset by the revocation');
is(ends[1], 'ECONNRESET', 'the first keep-alive connection was reset by the revocation');
is(ends.filter((e) => e === 'ECONNRESET').length, 22, `every open connection that got an allow was reset (${JSON.stringify(ends.filter((e) => e !== 'ECONNRESET'))} not)`);
is(((await metric('edgegate_revoked_flows_total{result="failed"}')) || 0) - failed0, 0, 'no kill failed');
for (const c of [ws, first, ...long.cs]) c.s.destroy();

// --- 2. past the cap with every flow live: refused, with its reason, logged once ---------
const v = await login('dave');
const bob = await login('bob');
const bobConn = await openConn(ngxPort);
is(await get(bobConn, bob.cookie), 200, "bob's connection: allowed");
const full = await openAllowed(CAP, v.cookie);
is(full.st.filter((x) => x === 200).length, CAP, `dave: ${CAP} long-lived connections, all allowed`);
const refused0 = (await metric('edgegate_verdicts_total{result="forbidden",reason="too_many_connections"}')) || 0;
const untracked0 = (await metric('edgegate_flows_untracked_total{why="session_full"}')) || 0;
const over = await openConn(ngxPort);
const r1 = await getBody(over, v.cookie);
is(r1.status, 403, `connection ${CAP + 1}: 403 (nginx passes the auth answer's 403; never a 500, never a login redirect)`);
ok(/"too_many_connections"/.test(r1.body), 'its JSON names too_many_connections', r1.body.slice(0, 300));
const over2 = await openConn(ngxPort);
is((await get(over2, v.cookie)), 403, `connection ${CAP + 2}: 403 as well`);
is((await get(over, v.cookie)), 403, `connection ${CAP + 1} again (keep-alive): still 403`);
is(((await metric('edgegate_verdicts_total{result="forbidden",reason="too_many_connections"}')) || 0) - refused0, 3,
  'edgegate_verdicts_total{result="forbidden",reason="too_many_connections"} counts the 3 refusals');
is(((await metric('edgegate_flows_untracked_total{why="session_full"}')) || 0) - untracked0, 3,
  'edgegate_flows_untracked_total{why="session_full"} counts them too');
is(await get(full.cs[0], v.cookie), 200, "dave's first connection is still served (nothing was evicted)");
is(await get(bobConn, bob.cookie), 200, "bob's connection is not affected by dave's cap");
const logTxt = fs.readFileSync(eg.logFile, 'utf8');
const lines = logTxt.split('\n').filter((l) => l.includes(`session ${v.id.slice(0, 12)}`) && /live connections/.test(l));
is(lines.length, 1, 'the refusal is logged once for the session, not once per request');
fl = await admin({ cmd: 'flows', session: v.id });
is(fl.flows?.length, CAP, `dave's tracked flows: ${CAP}`);
ok(fl.flows_per_session === CAP && fl.untracked_session_full >= 3 && fl.reclaimed >= 2 * CAP,
  `admin "flows" shows the cap (${fl.flows_per_session}), the refusals (${fl.untracked_session_full}) and the reclaimed flows (${fl.reclaimed})`);
// one closes: after the probe pause, the refused connection gets room
full.cs[CAP - 1].s.end();
await endedWithin(full.cs[CAP - 1], 1000);
await sleep(1100);
is(await get(over, v.cookie), 200, `a connection closed: connection ${CAP + 1} is served now (the closed flow was reclaimed)`);
rv = await admin({ cmd: 'revoke', session: v.id });
ok(rv.ok === true, 'dave revoked', rv);
const live = [...full.cs.slice(0, CAP - 1), over];
ends = await Promise.all(live.map((c) => endedWithin(c, 500)));
is(ends.filter((e) => e === 'ECONNRESET').length, CAP, `every connection that got an allow (${CAP}) was reset`);
const e2 = await endedWithin(over2, 300);
ok(e2 !== 'ECONNRESET', `connection ${CAP + 2}, never allowed, was not tracked (${e2 || 'open'})`);
is(await get(bobConn, bob.cookie), 200, "bob's connection lived through dave's revocation");
is(((await metric('edgegate_revoked_flows_total{result="failed"}')) || 0) - failed0, 0, 'no kill failed');
for (const c of [...live, over2]) c.s.destroy();

// --- 3. one subject, several sessions: the subject's bound, other users served ------------
async function loginNew(user) {
  const before = new Set(((await admin({ cmd: 'sessions', sub: user })).sessions || []).map((x) => x.session_id));
  const { cookie } = await login(user);
  const after = ((await admin({ cmd: 'sessions', sub: user })).sessions || []).map((x) => x.session_id);
  const id = after.find((x) => !before.has(x));
  ok(/^[0-9a-f]{64}$/.test(id || ''), `${user}: a new session (${after.length} in all)`);
  return { cookie, id };
}
const erin1 = await loginNew('erin');
const erin2 = await loginNew('erin');
const erin3 = await loginNew('erin');
const sub0 = (await metric('edgegate_flows_untracked_total{why="subject_full"}')) || 0;
const s1 = await openAllowed(CAP, erin1.cookie);
is(s1.st.filter((x) => x === 200).length, CAP, `erin's first session: ${CAP} long-lived connections, all allowed`);
// erin's second session, one connection at a time until refused. The sign-in requests of her
// sessions ran on connections closed since (Connection: close) that are still counted until
// probed: erin2's own at its refusal, erin3's by the probe pass over every flow that a refusal
// at the subject's bound starts (on the GC thread).
const s2 = { cs: [] };
let o2 = null;
let r2 = null;
for (let i = 0; i <= SUBJ - CAP && !o2; i++) {
  const c = await openConn(ngxPort);
  const r = await getBody(c, erin2.cookie);
  if (r.status === 200) s2.cs.push(c);
  else [o2, r2] = [c, r];
}
ok(o2 && s2.cs.length <= SUBJ - CAP && s2.cs.length >= SUBJ - CAP - 3,
  `erin's second session: ${s2.cs.length} connections allowed (${SUBJ - CAP} less her closed sign-in connections), then refused`);
is(r2?.status, 403, `the refused connection: 403 (${CAP + s2.cs.length} live connections of erin's)`);
ok(/"too_many_connections"/.test(r2?.body || ''), 'its JSON names too_many_connections', (r2?.body || '').slice(0, 300));
let served = false;
for (let t = Date.now(); Date.now() - t < 15000 && !served;) {
  served = (await get(o2, erin2.cookie)) === 200;
  if (!served) await sleep(200);
}
ok(served, "erin's closed sign-in connections were probed and dropped: the refused connection is served now");
s2.cs.push(o2);
o2 = null;
while (!o2 && s2.cs.length <= SUBJ - CAP) {
  const c = await openConn(ngxPort);
  const r = await getBody(c, erin2.cookie);
  if (r.status === 200) s2.cs.push(c);
  else [o2, r2] = [c, r];
}
is(CAP + s2.cs.length, SUBJ, `erin holds exactly ${SUBJ} live connections over two sessions when refused again`);
is(r2?.status, 403, `the next one: 403 too_many_connections (${s2.cs.length} of its session's ${CAP})`);
const tracked = [];
for (const e of [erin1, erin2, erin3]) tracked.push((await admin({ cmd: 'flows', session: e.id })).flows?.length);
is(JSON.stringify(tracked), JSON.stringify([CAP, SUBJ - CAP, 0]), `erin's sessions' tracked flows: ${tracked}`);
const sub1 = (await metric('edgegate_flows_untracked_total{why="subject_full"}')) || 0;
const tmc1 = (await metric('edgegate_verdicts_total{result="forbidden",reason="too_many_connections"}')) || 0;
ok(sub1 - sub0 >= 2, `edgegate_flows_untracked_total{why="subject_full"} counted the refusals (${sub1 - sub0})`);
const o3 = await openConn(ngxPort);
is(await get(o3, erin3.cookie), 403, "erin's third session: its first connection is refused too");
is(await get(o2, erin2.cookie), 403, 'the refused connection again (keep-alive): still 403');
is(((await metric('edgegate_flows_untracked_total{why="subject_full"}')) || 0) - sub1, 2,
  'edgegate_flows_untracked_total{why="subject_full"} counts these 2 refusals');
is(((await metric('edgegate_verdicts_total{result="forbidden",reason="too_many_connections"}')) || 0) - tmc1, 2,
  'edgegate_verdicts_total{reason="too_many_connections"} counts them');
is(await get(s1.cs[0], erin1.cookie), 200, "erin's allowed connections are still served (nothing evicted)");
is(await get(s2.cs[0], erin2.cookie), 200, "... in both sessions");
is((await admin({ cmd: 'flows', session: erin3.id })).flows?.length, 0, "erin's third session tracks no flow (refused whole)");
const bob2 = await openConn(ngxPort);
is(await get(bob2, bob.cookie), 200, "bob's new connection is served while erin is at her bound");
is(await get(bobConn, bob.cookie), 200, "bob's old connection too");
const fr = await loginNew('frank');
const frConn = await openConn(ngxPort);
is(await get(frConn, fr.cookie), 200, 'a user signing in now is served');
const subjLines = fs.readFileSync(eg.logFile, 'utf8').split('\n')
  .filter((l) => l.includes('subject "erin"') && /flows_per_subject/.test(l));
is(subjLines.length, 1, 'the refusal is logged once for the subject, not once per request or session');
ok(!fs.readFileSync(eg.logFile, 'utf8').split('\n').some((l) => /live connections \(revocation\.flows_per_session/.test(l) &&
  [erin1, erin2, erin3].some((e) => l.includes(e.id.slice(0, 12)))), "no session of erin's was at its own bound");
fl = await admin({ cmd: 'flows' });
ok(fl.flows_per_subject === SUBJ && fl.untracked_subject_full >= 3,
  `admin "flows" shows the subject bound (${fl.flows_per_subject}) and its refusals (${fl.untracked_subject_full})`);
// a session of erin's ends: its connections die and its room is erin's again
rv = await admin({ cmd: 'revoke', session: erin1.id });
ok(rv.ok === true, "erin's first session revoked", rv);
ends = await Promise.all(s1.cs.map((c) => endedWithin(c, 500)));
is(ends.filter((e) => e === 'ECONNRESET').length, CAP, `its ${CAP} connections were reset`);
is(await get(o3, erin3.cookie), 200, "erin's third session is served now on the connection refused before");
is(await get(o2, erin2.cookie), 200, "and the second session's refused connection too");
rv = await admin({ cmd: 'revoke', session: erin2.id });
ends = await Promise.all([...s2.cs, o2].map((c) => endedWithin(c, 500)));
is(ends.filter((e) => e === 'ECONNRESET').length, SUBJ - CAP + 1,
  'revoking the second session resets every connection that got an allow, the once-refused one included');
rv = await admin({ cmd: 'revoke', session: erin3.id });
is(await endedWithin(o3, 500), 'ECONNRESET', "the third session's connection is reset with it");
is(await get(bob2, bob.cookie), 200, "bob's connection lived through erin's revocations");
is(((await metric('edgegate_revoked_flows_total{result="failed"}')) || 0) - failed0, 0, 'no kill failed');
for (const c of [...s1.cs, ...s2.cs, o2, o3, bob2, bobConn, frConn]) c.s.destroy();
await sleep(10);
await done();
