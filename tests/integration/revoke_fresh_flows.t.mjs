#!/usr/bin/env node
// revoke_fresh_flows.t.mjs - a revocation right after verdicts on fresh flows kills those flows
// (issue 15: the verdict path queues its flow notes to the privileged process and sends them
// in batches; a note still in the queue must reach the privileged process before the
// revocation's kills, or it refuses to destroy a socket it was never told about).
//
// Real parts: the OP, nginx with the shipped includes talking to edgegated over its unix
// socket (the verdict lane) and over TCP (libmicrohttpd), edgegated started as root and
// dropping to an unprivileged user (privilege separation: the kills are the privileged
// process's SOCK_DESTROY). Per round, a user opens fresh keep-alive connections to nginx
// (fewer than a batch, so their notes are still queued), each gets one allowed verdict, and
// the session is revoked at once over the admin socket: every one of those connections must
// be reset by the time the answer is read, another user's connection must live on, and
// edgegate_revoked_flows_total{result="failed"} must not move.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  ok, is, done, guard, diag, skipAll, freePort, request, startEdgegated, startNginx, startEcho, tmpdir, waitFor, sleep,
  onCleanup, TEST_USER, ensureTestUser,
} from '../lib/harness.mjs';
import { Jar, browserLogin } from '../lib/oidc_helpers.mjs';
import { startOP } from '../lib/op.mjs';
import { adminClient, metricReader } from '../lib/daemon_checks.mjs';

if (process.getuid() !== 0) {
  if (process.env.CI === 'true') throw new Error('needs root (privilege separation, SOCK_DESTROY)');
  skipAll('needs root (privilege separation, SOCK_DESTROY)');
}
guard(180000);

const USER = TEST_USER;
ensureTestUser();

const dir = tmpdir('eg-rff-');
fs.chmodSync(dir, 0o755);
const [opPort, ngxPort, egPort] = [await freePort(), await freePort(), await freePort()];
const pub = `http://127.0.0.1:${ngxPort}`;
const client = {
  client_id: 'edgegate-rff', client_secret: 'rff-secret-0123456789abcdef0123456789',
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
}, { dir: path.join(dir, 'eg') });
await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'OIDC discovery' });
const admin = adminClient(() => eg);
const metric = metricReader(() => eg);

const httpPid = Number(execFileSync('pgrep', ['-P', String(eg.proc.pid), '-x', 'edgegated']).toString().trim());
const uid = Number(execFileSync('id', ['-u', USER]).toString());
const st = fs.readFileSync(`/proc/${httpPid}/status`, 'utf8');
ok(new RegExp(`^Uid:\\s+${uid}\\s+${uid}`, 'm').test(st) && /^CapEff:\s+0+$/m.test(st),
  `the daemon proper runs as ${USER} (uid ${uid}) with no capability; the privileged process is ${eg.proc.pid}`);

// Two nginx servers: one reaches edgegated over the unix socket (the lane), one over TCP.
const tcpPort = await freePort();
const ngxBody = (port) => `
  {{EDGEGATE_UPSTREAM}}
  upstream echo { server 127.0.0.1:${echo.port}; }
  server {
    listen 127.0.0.1:${port};
    server_name 127.0.0.1;
    keepalive_timeout 60s;
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://echo;
    }
  }`;
await startNginx(ngxBody(ngxPort), { dir: path.join(dir, 'ngx'), edgegate: `unix:${sock}`, waitPort: ngxPort });
await startNginx(ngxBody(tcpPort), { dir: path.join(dir, 'ngx-tcp'), edgegate: `127.0.0.1:${egPort}`, waitPort: tcpPort });

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
  return { cookie: jar.header(`${pub}/app/`), id: s.sessions?.[0]?.session_id };
}

const bob = await login('bob');
const bobConn = await openConn(ngxPort);
is(await get(bobConn, bob.cookie), 200, "bob's connection: allowed");

const failed0 = (await metric('edgegate_revoked_flows_total{result="failed"}')) || 0;
const ROUNDS = 4;
const PER = 10; // fresh flows per round: under a batch (64), and under flows per session (128)
for (let round = 1; round <= ROUNDS; round++) {
  const port = round % 2 ? ngxPort : tcpPort; // the lane, then libmicrohttpd
  const via = port === ngxPort ? 'unix socket (lane)' : 'TCP (libmicrohttpd)';
  const u = await login(`alice${round}`);
  ok(/^[0-9a-f]{64}$/.test(u.id || ''), `round ${round}: alice${round} has a session id`);
  const conns = [];
  for (let i = 0; i < PER; i++) conns.push(await openConn(port));
  const st = await Promise.all(conns.map((c) => get(c, u.cookie)));
  is(st.filter((x) => x === 200).length, PER, `round ${round} (${via}): ${PER} fresh connections, one allowed verdict each`);
  // at once: no other request to the privileged process has been made since those verdicts
  const t0 = Date.now();
  const rv = await admin({ cmd: 'revoke', session: u.id });
  const dt = Date.now() - t0;
  ok(rv.ok === true, `round ${round}: revoked (${dt} ms)`, rv);
  const ends = await Promise.all(conns.map((c) => endedWithin(c, 200)));
  const reset = ends.filter((e) => e === 'ECONNRESET').length;
  is(reset, PER, `round ${round}: every fresh connection was reset (${JSON.stringify(ends.filter((e) => e !== 'ECONNRESET'))} not)`);
  const fl = await admin({ cmd: 'flows', session: u.id });
  is(fl.flows?.length, 0, `round ${round}: no flow of the revoked session is tracked any more`);
  for (const c of conns) c.s.destroy();
}
is(((await metric('edgegate_revoked_flows_total{result="failed"}')) || 0) - failed0, 0,
  'edgegate_revoked_flows_total{result="failed"}: no kill was refused or failed');
ok(((await metric('edgegate_revoked_flows_total{result="destroyed"}')) || 0) >= ROUNDS * PER,
  `edgegate_revoked_flows_total{result="destroyed"} counts at least ${ROUNDS * PER}`);
is(await get(bobConn, bob.cookie), 200, "bob's connection lived through the other sessions' revocations");
ok(!bobConn.ended, "bob's connection is still open");
const log = fs.readFileSync(eg.logFile, 'utf8');
ok(!/did not record|recorded \d+ of \d+ flows/.test(log), 'the daemon logged no refused note');
if (!/did not record|recorded \d+ of/.test(log)) diag(`time to revoke: ${JSON.stringify((await admin({ cmd: 'flows' })).time_to_revoke)}`);
bobConn.s.destroy();
await sleep(10);
await done();
