#!/usr/bin/env node
// redis_sync.t.mjs - two edgegated nodes (A, B) sharing one private redis-server, each
// behind its own nginx. Cross-node events (the store's stream, followed by events.c):
//   a. a source banned through A (bad bearer tokens) gets 403 from B within 500 ms
//      (userspace enforcement: the gate is configured on an interface that does not exist);
//   b. `edgegatectl --admin-socket B bans` lists it;
//   c. `edgegatectl --admin-socket A bans del` lifts it on B within 500 ms;
//   d. (root: SOCK_DESTROY) a session logged in through B with a live keep-alive
//      connection via B, revoked through A's admin socket, has that connection reset
//      by B within 500 ms of the call (usually before edgegatectl has even exited);
//      A does not count B's flows, B does not count the revocation;
//   e. (root) a session logged in through B with a keep-alive connection via B, whose
//      browser signs in again through A (the "relogin" revocation of the old session,
//      decided on A): B resets that connection too, and the new session works on B.
// Clients connect from 127.0.0.5/.6 while trusted_proxies is 127.0.0.1/32, so nginx's
// X-Real-IP is an untrusted, bannable source without a network namespace.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {
  EDGEGATECTL, ok, is, done, guard, diag, skipAll, onCleanup, freePort, request, tmpdir,
  startEcho, waitFor, ctlAsync,
} from '../lib/harness.mjs';
import { Jar, browserLogin, opLogin } from '../lib/oidc_helpers.mjs';
import { startRedis, badTokenMaker, startSharedOP, startNodes, startFronts, admin } from '../lib/redis.mjs';

if (!fs.existsSync('/usr/bin/redis-server')) skipAll('redis-server not installed');
if (!fs.existsSync(EDGEGATECTL)) skipAll(`${EDGEGATECTL} not built (make asan)`);
guard(60000);
const ROOTUSER = process.getuid() === 0;
const dir = tmpdir('eg-sync-');
const PIN = `/sys/fs/bpf/edgegate-sync-${process.pid}`;
onCleanup(() => { try { fs.rmSync(PIN, { recursive: true, force: true }); } catch { /* not ours */ } });

const redisPort = await freePort();
await startRedis({ port: redisPort, dir });

// signing key for bearer tokens (only bad tokens are sent, but the JWKS must load)
const badToken = badTokenMaker(dir, 'sync-test');

const [opPort, ngxA, ngxB, egA, egB] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
const pubA = `http://127.0.0.1:${ngxA}`, pubB = `http://127.0.0.1:${ngxB}`;
const { op, client } = await startSharedOP('sync', opPort, [pubA, pubB]);
const echo = await startEcho();

const nodes = await startNodes(dir, [['A', egA, pubA], ['B', egB, pubB]], (name, port, pub) => ({
  listen: `127.0.0.1:${port}`,
  public_url: pub,
  log_level: 'info',
  trusted_proxies: ['127.0.0.1/32'],
  cookie: { secure: false, secret: 'shared-cookie-secret-0123456789abcdef' },
  store: { redis: `redis://127.0.0.1:${redisPort}/0`, prefix: `egsync${redisPort}:` },
  jwt: { jwks_file: path.join(dir, 'jwks.json'), issuer: 'sync-test', audience: 'sync-api', algorithms: ['ES256'] },
  oidc: { issuer: op.issuer, client_id: client.client_id, client_secret: client.client_secret, redirect_url: `${pub}/oauth2/callback` },
  routes: [{ path: '/api/', auth: 'bearer' }, { path: '/', auth: 'session' }],
  gate: {
    // one pin root per node, as on two hosts (a second daemon on one pin root refuses)
    interfaces: ['egs-none0'], pin_root: `${PIN}/${name}`, protected_ports: [ngxA, ngxB],
    syn_rate: 1000, syn_burst: 1000,
    ban_threshold: 5, ban_window: '30s', ban_time: '60s', ban_max: '120s',
  },
}));
const A = nodes.A, B = nodes.B;
await startFronts(dir, echo.port, [['A', ngxA, egA], ['B', ngxB, egB]], ['keepalive_timeout 60s;']);

// GET through nginx from a chosen loopback source address; resolves the status.
function get(port, from, { token, cookie, pathname = '/api/x' } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (cookie) headers.cookie = cookie;
    const req = http.request({ host: '127.0.0.1', port, path: pathname, localAddress: from, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.on('response', (res) => res.on('error', reject));
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}
const ctl = (node, ...args) => ctlAsync(['--admin-socket', node.admin, ...args]);
async function metric(node, line) {
  const body = (await request(`${node.url}/metrics`)).body;
  const l = body.split('\n').find((x) => x.startsWith(line));
  return l ? Number(l.split(' ').pop()) : 0;
}
const BAD = '127.0.0.5', OTHER = '127.0.0.6';

// ---- a. ban through A, enforced by B ---------------------------------------------------------
is(await get(ngxB, BAD), 401, 'B: the source is not banned yet (anonymous: 401)');
const codes = [];
for (let i = 0; i < 5; i++) codes.push(await get(ngxA, BAD, { token: badToken(i) }));
is(codes.join(','), '401,401,401,401,401', 'A: five bad tokens answered 401');
is(await get(ngxA, BAD), 403, 'A: the source is banned (userspace 403)');
let t0 = Date.now();
await waitFor(async () => (await get(ngxB, BAD)) === 403, { what: 'B to apply the ban', timeout: 4000 }).catch((e) => diag(e.message));
let dt = Date.now() - t0;
ok(dt < 500, `B answers 403 for ${BAD} ${dt} ms after the ban on A`);
is(await get(ngxB, OTHER), 401, 'B: another source is unaffected (401)');

// ---- b. B lists it --------------------------------------------------------------------------
const lb = await ctl(B, 'bans');
ok(lb.code === 0 && lb.stdout.includes(BAD), `edgegatectl --admin-socket B bans lists ${BAD}`, lb.stdout + lb.stderr);
const ab = await admin(B, { cmd: 'abuse' });
ok(ab.sync?.enabled === true && ab.sync?.applied >= 1, 'B admin "abuse": sync enabled, 1 ban applied', ab.sync);
is(await metric(B, 'edgegate_sync_total{what="bans",result="applied"}'), 1, 'B: edgegate_sync_total{what="bans",result="applied"} 1');
is(await metric(B, 'edgegate_bans_total'), 0, 'B: edgegate_bans_total not moved (the ban was decided on A)');

// ---- c. lifted through A, gone on B ---------------------------------------------------------
const del = await ctl(A, 'bans', 'del', BAD);
is(del.code, 0, `edgegatectl --admin-socket A bans del ${BAD}`);
t0 = Date.now();
await waitFor(async () => (await get(ngxB, BAD)) === 401, { what: 'B to lift the ban', timeout: 4000 }).catch((e) => diag(e.message));
dt = Date.now() - t0;
ok(dt < 500, `B serves ${BAD} again (401) ${dt} ms after bans del on A`);
const lb2 = await ctl(B, 'bans');
ok(!lb2.stdout.includes(BAD), 'B bans no longer lists it', lb2.stdout);
is(await metric(B, 'edgegate_sync_total{what="bans",result="removed"}'), 1, 'B: edgegate_sync_total{what="bans",result="removed"} 1');

// ---- d. a session revoked on A: its connection via B is reset ---------------------------------
if (!ROOTUSER && process.env.CI !== 'true') {
  ok(true, '# SKIP revocation across nodes needs root (SOCK_DESTROY)');
} else {
  const jar = new Jar();
  const r0 = await browserLogin(jar, `${pubB}/app/`, 'alice');
  is(r0.status, 200, 'alice logged in through B');
  const cookie = jar.header(`${pubB}/app/`);
  const id = (await admin(B, { cmd: 'sessions', sub: 'alice' })).sessions?.[0]?.session_id;
  ok(/^[0-9a-f]{64}$/.test(id || ''), 'B knows alice\'s session id');
  // a keep-alive connection through B's nginx that carried an allowed request
  const sock = net.connect(ngxB, '127.0.0.1');
  let got = '', closed = null, err = null;
  sock.on('data', (d) => { got += d; });
  sock.on('error', (e) => { err = e; });
  sock.on('close', () => { closed = Date.now(); });
  await new Promise((r) => sock.on('connect', r));
  sock.write(`GET /app/ HTTP/1.1\r\nHost: 127.0.0.1:${ngxB}\r\nCookie: ${cookie}\r\nConnection: keep-alive\r\n\r\n`);
  await waitFor(() => /\r\n\r\n/.test(got), { what: 'response on the keep-alive connection', timeout: 5000 }).catch(() => {});
  ok(/^HTTP\/1\.1 200/.test(got), 'the keep-alive connection via B got 200', got.slice(0, 80));
  const flowsB = await admin(B, { cmd: 'flows', session: id });
  ok((flowsB.flows || []).some((f) => f.endsWith(`127.0.0.1:${ngxB}`) && f.includes(`:${sock.localPort} ->`)),
    'B tracks the keep-alive flow', flowsB.flows);
  const destroyedA0 = await metric(A, 'edgegate_revoked_flows_total{result="destroyed"}');
  const tRev = Date.now();
  ok(closed === null, 'the connection is open before the revocation');
  const rv = await ctl(A, 'revoke', '--session', id);
  ok(rv.code === 0 && /revoked 1 session/.test(rv.stdout), `edgegatectl --admin-socket A revoke --session: ${rv.stdout.trim()}`, rv.stderr);
  await waitFor(() => closed !== null, { what: 'B to reset the connection', timeout: 4000 }).catch((e) => diag(e.message));
  ok(closed !== null && closed - tRev < 500, `connection via B closed ${closed ? closed - tRev : '?'} ms after edgegatectl revoke on A was started`);
  is(err?.code, 'ECONNRESET', `... with a reset (${err?.code})`);
  is(await metric(B, 'edgegate_sync_total{what="revocations",result="applied"}'), 1, 'B: edgegate_sync_total{what="revocations",result="applied"} 1');
  ok(await metric(B, 'edgegate_revoked_flows_total{result="destroyed"}') >= 1, 'B: its flow counted as destroyed');
  is(await metric(B, 'edgegate_revocations_total{reason="admin"}'), 0, 'B: the revocation itself is not counted again');
  is(await metric(A, 'edgegate_revoked_flows_total{result="destroyed"}') - destroyedA0, 0, 'A: destroyed none of B\'s flows');
  is(await metric(A, 'edgegate_sync_total{what="revocations",result="applied"}'), 0, 'A: its own revocation is not re-applied by its sync');
  const fl = await admin(B, { cmd: 'flows' });
  ok(fl.sync?.enabled === true && fl.sync?.sessions_applied === 1, 'B admin "flows": sync section', fl.sync);
  // B's session cache may still hold the session for a few seconds (session.c re-checks
  // a shared store every 5 s); a request it still lets through has its connection killed
  // when the flow is noted (revocation tombstone left by the sync). Never a 200.
  const seen = new Set();
  await waitFor(async () => {
    const c = await get(ngxB, '127.0.0.1', { cookie, pathname: '/app/' }).catch((e) => e.code || 'error');
    seen.add(c);
    return c === 401 || c === 302; // 302: nginx sends a browser to sign in
  }, { what: 'old cookie refused on B', timeout: 8000, interval: 250 }).catch((e) => diag(e.message));
  ok((seen.has(401) || seen.has(302)) && !seen.has(200), `the old cookie on B: ${[...seen].join(', ')} (never 200), then refused`);
}

// ---- e. a re-login on A ends the old session: its connection via B is reset too ----------------
if (!ROOTUSER && process.env.CI !== 'true') {
  ok(true, '# SKIP relogin across nodes needs root (SOCK_DESTROY)');
} else {
  const jar = new Jar(); // cookies per host, not port: A and B see the same browser
  is((await browserLogin(jar, `${pubB}/app/`, 'carol')).status, 200, 'carol logged in through B');
  const oldCookie = jar.header(`${pubB}/app/`);
  const oldId = (await admin(B, { cmd: 'sessions', sub: 'carol' })).sessions?.[0]?.session_id;
  ok(/^[0-9a-f]{64}$/.test(oldId || ''), 'B knows carol\'s session id');
  const sock = net.connect(ngxB, '127.0.0.1');
  let got = '', closed = null, err = null;
  sock.on('data', (d) => { got += d; });
  sock.on('error', (e) => { err = e; });
  sock.on('close', () => { closed = Date.now(); });
  await new Promise((r) => sock.on('connect', r));
  sock.write(`GET /app/ HTTP/1.1\r\nHost: 127.0.0.1:${ngxB}\r\nCookie: ${oldCookie}\r\nConnection: keep-alive\r\n\r\n`);
  await waitFor(() => /\r\n\r\n/.test(got), { what: 'response on the keep-alive connection', timeout: 5000 }).catch(() => {});
  ok(/^HTTP\/1\.1 200/.test(got), 'the keep-alive connection via B got 200', got.slice(0, 80));
  const flowsB = await admin(B, { cmd: 'flows', session: oldId });
  ok((flowsB.flows || []).some((f) => f.includes(`:${sock.localPort} ->`)), 'B tracks the keep-alive flow', flowsB.flows);
  const destroyedB0 = await metric(B, 'edgegate_revoked_flows_total{result="destroyed"}');
  const appliedB0 = await metric(B, 'edgegate_sync_total{what="revocations",result="applied"}');
  // "sign in again" through A, with the old session cookie: the callback ends the old session
  const start = await jar.follow(`${pubA}/oauth2/start?rd=%2Fapp%2F&prompt=login`);
  ok(/name="login"/.test(start.body), 'the OP asks carol to sign in again', `${start.status} ${start.url}`);
  const tLogin = Date.now();
  const r1 = await opLogin(jar, start, 'carol');
  is(r1.status, 200, 'carol signed in again through A');
  const newCookie = jar.header(`${pubA}/app/`);
  ok(newCookie && newCookie !== oldCookie, 'A set a new session cookie');
  is(await metric(A, 'edgegate_revocations_total{reason="relogin"}'), 1, 'A: the old session ended as "relogin"');
  await waitFor(() => closed !== null, { what: 'B to reset the old session\'s connection', timeout: 4000 }).catch((e) => diag(e.message));
  ok(closed !== null, `connection via B closed ${closed ? closed - tLogin : '?'} ms after the sign-in on A began`);
  is(err?.code, 'ECONNRESET', `... with a reset (${err?.code})`);
  is(await metric(B, 'edgegate_revoked_flows_total{result="destroyed"}') - destroyedB0, 1, 'B: the old session\'s flow counted as destroyed');
  is(await metric(B, 'edgegate_sync_total{what="revocations",result="applied"}') - appliedB0, 1, 'B: the relogin revocation applied once');
  is(await metric(B, 'edgegate_revocations_total{reason="relogin"}'), 0, 'B: the revocation itself is not counted again');
  const flowsOld = await admin(B, { cmd: 'flows', session: oldId });
  is((flowsOld.flows || []).length, 0, 'B tracks no flow of the old session any more', flowsOld.flows);
  is(await get(ngxB, '127.0.0.1', { cookie: newCookie, pathname: '/app/' }), 200, 'the new session works through B');
}
await done();
