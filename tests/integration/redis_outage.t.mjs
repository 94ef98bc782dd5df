#!/usr/bin/env node
// redis_outage.t.mjs - two edgegated nodes (A, B) on one private redis-server (AOF on),
// each behind its own nginx, started as root and dropping to an unprivileged user (when
// run as root). The outage behaviour of docs/sessions.md ("Several hosts"):
//   0. Redis paused while A (one libmicrohttpd thread) is asked for a session it does not
//      hold (a store read that hangs for store.timeout): public verdicts on that same
//      thread are not held up (the store read runs on a store worker), in several pauses;
//      a store-needing verdict that finds the workers' queue full is answered at once as
//      in an outage; a ban decided by a verdict during a pause (its record waits for the
//      store) does not hold up the public verdicts either.
//   1. Redis paused (SIGSTOP) for 6 s under load through A: cookie-less (public) verdicts
//      keep their speed, no 5xx from nginx, sessions in A's and B's memory are served
//      (outage grace), a login fails with an honest message (not "already used"), a
//      revocation on B during the outage is acknowledged as local, enforced on B at once,
//      and reaches A through the stream once Redis resumes; the outage is logged once
//      with its end and duration.
//   2. Redis killed (SIGKILL) and restarted from its AOF: a revocation on A during the
//      crash is enforced on A at once and on B after the restart.
//   3. Node B stopped, a ban decided on A, B restarted: B catches up from its saved
//      stream id (stream.id in state_dir).
//   4. B's daemon frozen while the stream is trimmed past its last id: B resyncs (reads
//      the ban records whole) and applies the ban it missed.
//   5. SIGHUP, then SIGTERM, to A while verdicts wait on store workers for a hung Redis:
//      every request is answered or closed (none hangs), A exits cleanly.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  EDGEGATECTL, ok, is, done, guard, diag, skipAll, onCleanup, freePort, tmpdir, sleep,
  startEdgegated, startEcho, waitFor, ctlAsync, request,
} from '../lib/harness.mjs';
import { Jar, browserLogin } from '../lib/oidc_helpers.mjs';
import { signOutAt } from '../lib/daemon_checks.mjs';
import {
  TEST_USER, ensureTestUser, startRedis as startRedisServer, badTokenMaker, startSharedOP, startNodes, startFronts, admin,
} from '../lib/redis.mjs';

if (!fs.existsSync('/usr/bin/redis-server')) skipAll('redis-server not installed');
if (!fs.existsSync(EDGEGATECTL)) skipAll(`${EDGEGATECTL} not built (make asan)`);
guard(150000);
const ROOTUSER = process.getuid() === 0;
const USER = TEST_USER;
if (ROOTUSER) ensureTestUser(USER);
const dir = tmpdir('eg-outage-');
const PIN = `/sys/fs/bpf/edgegate-outage-${process.pid}`;
onCleanup(() => { try { fs.rmSync(PIN, { recursive: true, force: true }); } catch { /* not ours */ } });
fs.chmodSync(dir, 0o755);

// ---- Redis (AOF, fsync always: a crash loses nothing it acknowledged) ----------------------
const redisPort = await freePort();
let redis;
const startRedis = async () => {
  redis = await startRedisServer({ port: redisPort, dir, persistence: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  await waitFor(() => { try { return cli('PING') === 'PONG'; } catch { return false; } }, { what: 'redis loaded' });
};
const cli = (...a) => execFileSync('redis-cli', ['-p', String(redisPort), ...a], { encoding: 'utf8' }).trim();
onCleanup(() => { try { process.kill(redis.pid, 'SIGCONT'); } catch { /* gone */ } });
await startRedis();

const badToken = badTokenMaker(dir, 'outage-test');

const [opPort, ngxA, ngxB, egA, egB] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
const pubA = `http://127.0.0.1:${ngxA}`, pubB = `http://127.0.0.1:${ngxB}`;
const { op, client } = await startSharedOP('outage', opPort, [pubA, pubB]);
const echo = await startEcho();
const PREFIX = `egout${redisPort}:`;

const STORE_TIMEOUT_MS = 300; // store.timeout's default
const nodeConfig = (name, port, pub) => ({
  listen: `127.0.0.1:${port}`,
  // A: one libmicrohttpd thread, so a verdict waiting for the store and the public ones
  // certainly share it (section 0); one store worker and a queue of one: the third
  // store-needing verdict at once finds them full
  ...(name === 'A' ? { threads: 1, http: { store_workers: 1, store_queue: 1 } } : {}),
  public_url: pub,
  log_level: 'info',
  trusted_proxies: ['127.0.0.1/32'],
  ...(ROOTUSER ? { user: USER } : {}),
  cookie: { secure: false, secret: 'shared-cookie-secret-0123456789abcdef' },
  store: { redis: `redis://127.0.0.1:${redisPort}/0`, prefix: PREFIX, outage_grace: '30s', stream_maxlen: 1000 },
  jwt: { jwks_file: path.join(dir, 'jwks.json'), issuer: 'outage-test', audience: '*', algorithms: ['ES256'] },
  oidc: { issuer: op.issuer, client_id: client.client_id, client_secret: client.client_secret, redirect_url: `${pub}/oauth2/callback` },
  routes: [{ path: '/public/', auth: 'public' }, { path: '/api/', auth: 'bearer' }, { path: '/', auth: 'session' }],
  gate: {
    // one pin root per node, as on two hosts; an interface that does not exist: bans in userspace
    interfaces: ['ego-none0'], pin_root: `${PIN}/${name}`, protected_ports: [ngxA, ngxB],
    syn_rate: 1000, syn_burst: 1000, ban_threshold: 5, ban_window: '30s', ban_time: '60s', ban_max: '120s',
  },
});
const nodes = await startNodes(dir, [['A', egA, pubA], ['B', egB, pubB]], nodeConfig);
await startFronts(dir, echo.port, [['A', ngxA, egA], ['B', ngxB, egB]]);

// GET through nginx; resolves { status, ms }.
function get(port, { cookie, token, pathname = '/app/', from = '127.0.0.1' } = {}) {
  return new Promise((resolve) => {
    const headers = {};
    if (cookie) headers.cookie = cookie;
    if (token) headers.authorization = `Bearer ${token}`;
    const t0 = performance.now();
    const req = http.request({ host: '127.0.0.1', port, path: pathname, headers, agent: false, localAddress: from }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.on('error', (e) => resolve({ status: e.code || 'error', ms: performance.now() - t0 }));
    req.setTimeout(15000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}
const ctl = (node, ...args) => ctlAsync(['--admin-socket', node.admin, ...args]);
const logOf = (node) => fs.readFileSync(node.logFile, 'utf8');
const countIn = (text, re) => (text.match(re) || []).length;
const pct = (v, p) => { const s = [...v].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor((s.length - 1) * p))] : NaN; };
const refused = (s) => s === 401 || s === 302;

async function login(user, pub) {
  const jar = new Jar();
  const r = await browserLogin(jar, `${pub}/app/`, user);
  is(r.status, 200, `${user} logged in through ${pub === pubA ? 'A' : 'B'}`);
  const id = (await admin(pub === pubA ? nodes.A : nodes.B, { cmd: 'sessions', sub: user })).sessions?.[0]?.session_id;
  return { cookie: jar.header(`${pub}/app/`), id };
}
const alice = await login('alice', pubA);
const bob = await login('bob', pubA);
const daveJar = new Jar();
is((await browserLogin(daveJar, `${pubA}/app/`, 'dave')).status, 200, 'dave logged in through A');
const dave = { cookie: daveJar.header(`${pubA}/app/`) };
// both nodes hold both sessions in memory
for (const [n, port] of [['A', ngxA], ['B', ngxB]]) {
  for (const [u, s] of [['alice', alice], ['bob', bob]]) is((await get(port, { cookie: s.cookie })).status, 200, `${u} served by ${n}`);
}

// ---- 0. store-needing verdicts during a hang do not hold up the others ------------------------
// erin's session is in B's memory only: on A it is a store read, which hangs for
// store.timeout at the start of each pause (then the outage is declared and commands
// fail at once). Public verdicts sent meanwhile, on A's one thread, must not wait for it.
const erin = await login('erin', pubB);
const gina = await login('gina', pubB); // for section 5: never used on A before
const outagesOver = () => countIn(logOf(nodes.A), /outage over/g);
const HANG_CYCLES = Number(process.env.EG_HANG_CYCLES || 3);
const hangMax = [];
const hangStatuses = new Map();
const fastest = [];
for (let cycle = 0; cycle < HANG_CYCLES; cycle++) {
  const over0 = outagesOver();
  process.kill(redis.pid, 'SIGSTOP');
  const needing = [0, 1, 2].map(() => get(ngxA, { cookie: erin.cookie }));
  const pubs = [];
  const t0 = performance.now();
  await sleep(10);
  while (performance.now() - t0 < 2 * STORE_TIMEOUT_MS) pubs.push(await get(ngxA, { pathname: '/public/x' }));
  const needed = await Promise.all(needing);
  process.kill(redis.pid, 'SIGCONT');
  for (const r of [...pubs.map((x) => ({ ...x, what: 'public' })), ...needed.map((x) => ({ ...x, what: 'erin' }))]) {
    hangStatuses.set(`${r.what} ${r.status}`, (hangStatuses.get(`${r.what} ${r.status}`) || 0) + 1);
  }
  const mx = Math.max(...pubs.map((x) => x.ms));
  hangMax.push(mx);
  fastest.push(Math.min(...needed.map((x) => x.ms)));
  diag(`hang ${cycle + 1}: ${pubs.length} public verdicts on A, max ${mx.toFixed(1)} ms; store-needing (erin) ${needed.map((x) => `${x.status} ${x.ms.toFixed(0)} ms`).join(', ')}`);
  await waitFor(() => outagesOver() > over0, { what: 'A to see the store again', timeout: 5000 }).catch((e) => diag(e.message));
}
// Judged on the median pause: a whole-process stall of this shared 2-CPU machine (seen once
// in ~30 pauses: 400 ms, the store-needing verdicts 100 ms late too) must not decide it. Held
// up by the store read, every pause's slowest is >= store.timeout (294-331 ms in 15 of 15).
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
ok(median(hangMax) < STORE_TIMEOUT_MS / 2,
  `public verdicts on A's one thread not held up by store reads during ${HANG_CYCLES} hangs: max ${hangMax.map((m) => m.toFixed(0)).join(', ')} ms (median < store.timeout/2 = ${STORE_TIMEOUT_MS / 2} ms)`);
ok(![...hangStatuses.keys()].some((k) => / 5\d\d$/.test(k) || / E/.test(k)), `no 5xx during the hangs: ${JSON.stringify([...hangStatuses])}`);
ok(!hangStatuses.has('erin 200'), 'erin (not in A\'s memory) was not served by A while the store hung');
// one worker, a queue of one: the third of the three went past the queue and was decided at
// once (401 session_store_unavailable, which the snippet turns into the sign-in redirect)
ok(median(fastest) < STORE_TIMEOUT_MS / 2,
  `a store-needing verdict beyond the full queue answered at once: ${fastest.map((m) => m.toFixed(0)).join(', ')} ms`);
// a source crossing the ban threshold during a pause: banned at once, its record written
// by a store worker (it waits for the store) while public verdicts flow on A's thread
{
  const over0 = outagesOver();
  const BANNED = '127.0.0.9';
  process.kill(redis.pid, 'SIGSTOP');
  const pubs = [];
  let stop = false;
  const flow = (async () => { while (!stop) pubs.push(await get(ngxA, { pathname: '/public/x' })); })();
  const tries = [];
  for (let i = 0; i < 5; i++) tries.push(await get(ngxA, { token: badToken(100 + i), pathname: '/api/x', from: BANNED }));
  const after = await get(ngxA, { pathname: '/api/x', from: BANNED });
  await sleep(2 * STORE_TIMEOUT_MS);
  stop = true;
  await flow;
  process.kill(redis.pid, 'SIGCONT');
  const mx = Math.max(...pubs.map((x) => x.ms));
  diag(`ban during a pause: tries ${tries.map((x) => `${x.status} ${x.ms.toFixed(0)} ms`).join(', ')}; then ${after.status}; ${pubs.length} public verdicts, max ${mx.toFixed(1)} ms`);
  is(after.status, 403, `${BANNED} banned at once during the pause`);
  ok(mx < STORE_TIMEOUT_MS / 2, `public verdicts not held up by the ban's record (max ${mx.toFixed(0)} ms)`);
  await waitFor(() => outagesOver() > over0, { what: 'A to see the store again', timeout: 5000 }).catch((e) => diag(e.message));
}

// with the store back, erin's session is read by a store worker and served
is((await get(ngxA, { cookie: erin.cookie })).status, 200, 'erin served by A once the store answers (read on a store worker)');
const metricsA = (await request(`${nodes.A.url}/metrics`)).body;
ok(/edgegate_store_workers_total\{result="queued"\} [1-9]/.test(metricsA), 'A counted the verdicts that went to a store worker');
ok(/edgegate_store_workers_total\{result="saturated"\} [1-9]/.test(metricsA), 'and those decided at once because the queue was full');

// ---- 1. Redis paused ---------------------------------------------------------------------------
const base = [];
for (let i = 0; i < 100; i++) base.push((await get(ngxA, { pathname: '/public/x' })).ms);
diag(`public verdicts through A before the outage: p50 ${pct(base, 0.5).toFixed(1)} ms, p99 ${pct(base, 0.99).toFixed(1)} ms`);
const logA0 = logOf(nodes.A).length, logB0 = logOf(nodes.B).length;

process.kill(redis.pid, 'SIGSTOP');
const tStop = Date.now();
const pub = [], sess = [], statuses = new Map(), slowPub = [];
const note = (what, s) => statuses.set(`${what} ${s}`, (statuses.get(`${what} ${s}`) || 0) + 1);
let loading = true;
const loadPublic = (async () => {
  while (loading) { const at = Date.now() - tStop; const r = await get(ngxA, { pathname: '/public/x' }); pub.push(r.ms); note('public', r.status); if (r.ms > 50) slowPub.push(`${r.ms.toFixed(0)} ms at +${at} ms`); }
})();
const loadSession = (async () => {
  while (loading) {
    for (const port of [ngxA, ngxB]) { const r = await get(port, { cookie: alice.cookie }); sess.push(r.ms); note('alice', r.status); }
    await sleep(50);
  }
})();
await sleep(1000);
// a revocation on B during the outage
const rv = await ctl(nodes.B, 'revoke', '--session', bob.id);
const tRevB = Date.now();
ok(rv.code === 0 && /revoked 1 session/.test(rv.stdout) && /state_dir|local/.test(rv.stdout + rv.stderr),
  `revoke on B during the outage acknowledged as local: ${rv.stdout.trim()} ${rv.stderr.trim()}`);
const bobOnB = await get(ngxB, { cookie: bob.cookie });
ok(refused(bobOnB.status), `bob refused on B at once (${bobOnB.status}, ${(Date.now() - tRevB)} ms after)`);
// a login during the outage: /oauth2/start needs no store (its state is a sealed cookie)
// and redirects to the OP; the callback cannot record the login and answers the "Login
// failed" page with 409 and Retry-After (docs/sessions.md: no 5xx from nginx in an outage)
let loginMsg = '', loginRes = null, loginJar = new Jar();
try {
  loginRes = await browserLogin(loginJar, `${pubA}/app/`, 'carol');
  loginMsg = `${loginRes.status} ${loginRes.body}`;
} catch (e) { loginMsg = e.message; }
ok(/temporarily unavailable/i.test(loginMsg) && !/already used/.test(loginMsg), 'a login during the outage fails honestly', loginMsg.slice(0, 200));
const hops = loginJar.trace.map((t) => `${t.status} ${new URL(t.url).pathname}`);
is(loginRes?.status, 409, `the callback answers 409 during the outage (${hops.join(', ')})`);
is(loginRes?.headers?.['retry-after'], '5', 'with Retry-After: 5');
ok(loginJar.trace.some((t) => /\/oauth2\/start$/.test(new URL(t.url).pathname) && t.status === 302 && /\/auth\?|authorize|\/auth$/.test(t.location || '')),
  '/oauth2/start redirected to the OP during the outage');
ok(loginJar.trace.length >= 4 && loginJar.trace.every((t) => t.status < 500), `no 5xx on any step of the login (${loginJar.trace.length} steps)`);
ok(!loginJar.names().some((n) => /edgegate$/.test(n)), 'no session cookie was set');
// sign-out during the outage: the confirmation page, then the POST recorded locally
const soPage = await daveJar.fetch(`${pubA}/oauth2/sign_out`);
is(soPage.status, 200, 'the sign-out page during the outage: 200');
const so = await signOutAt(pubA)(daveJar);
ok(so.status === 302 || so.status === 303, `sign-out during the outage: ${so.status} (Edgegate-Revocation: ${so.headers['edgegate-revocation']})`);
is(so.headers['edgegate-revocation'], 'local', 'the sign-out is recorded locally (state_dir) and says so');
ok(refused((await get(ngxA, { cookie: dave.cookie })).status), 'dave refused on A at once after signing out');
await sleep(Math.max(0, 6000 - (Date.now() - tStop)));
loading = false;
await Promise.all([loadPublic, loadSession]);
process.kill(redis.pid, 'SIGCONT');
const tCont = Date.now();
diag(`during the 6 s pause: ${pub.length} public verdicts, p50 ${pct(pub, 0.5).toFixed(1)} ms, p99 ${pct(pub, 0.99).toFixed(1)} ms, max ${Math.max(...pub).toFixed(1)} ms; statuses ${JSON.stringify([...statuses])}`);
if (slowPub.length) diag(`slow public verdicts during the pause: ${slowPub.join(', ')}`);
ok(pub.length > 300, `public verdicts kept flowing during the pause (${pub.length} in 6 s)`);
ok(pct(pub, 0.99) < 50, `public verdict p99 during the pause ${pct(pub, 0.99).toFixed(1)} ms (< 50 ms)`);
ok(Math.max(...pub) < 1000, `no public verdict waited 1 s (max ${Math.max(...pub).toFixed(0)} ms)`);
ok(![...statuses.keys()].some((k) => / 5\d\d$/.test(k) || / E/.test(k)), 'no 5xx and no connection error from nginx during the pause');
is(statuses.get('alice 200') || 0, sess.length, `alice's session (in memory) served on both nodes during the pause (${sess.length} requests)`);
// bob, revoked on B, reaches A once Redis is back
let bobA = null;
await waitFor(async () => refused((bobA = await get(ngxA, { cookie: bob.cookie })).status), { what: 'bob refused on A', timeout: 5000, interval: 20 }).catch((e) => diag(e.message));
ok(refused(bobA?.status), `bob refused on A ${Date.now() - tCont} ms after Redis resumed (${bobA?.status})`);
await waitFor(() => /revocation now recorded in the store/.test(logOf(nodes.B).slice(logB0)), { what: 'B publishes', timeout: 5000 }).catch(() => {});
ok(/revocation now recorded in the store/.test(logOf(nodes.B).slice(logB0)), 'B recorded the local revocation in the store after the outage');
await waitFor(() => /outage over/.test(logOf(nodes.A).slice(logA0)), { what: 'A logs the end', timeout: 5000 }).catch(() => {});
const la = logOf(nodes.A).slice(logA0);
is(countIn(la, /outage begins/g), 1, 'A logged the outage once');
ok(/outage over after \d+\.\d s/.test(la), `A logged its end and duration: ${(la.match(/outage over after [^)]*\)/) || [''])[0]}`);
ok(countIn(la, /store\.redis/g) <= 3, `A's log has ${countIn(la, /store\.redis/g)} store.redis lines for the outage (not one per request)`);
is((await get(ngxA, { cookie: alice.cookie })).status, 200, 'alice still served on A after the outage');

// ---- 2. Redis crashed and restarted --------------------------------------------------------------
process.kill(redis.pid, 'SIGKILL');
await redis.exited?.catch?.(() => {});
await sleep(300);
is((await get(ngxA, { pathname: '/public/x' })).status, 200, 'public verdicts while Redis is down: 200');
is((await get(ngxB, { cookie: alice.cookie })).status, 200, 'alice served on B while Redis is down (grace)');
const rvA = await ctl(nodes.A, 'revoke', '--session', alice.id);
ok(rvA.code === 0 && /revoked 1 session/.test(rvA.stdout), `revoke on A while Redis is down: ${rvA.stdout.trim()} ${rvA.stderr.trim()}`);
ok(refused((await get(ngxA, { cookie: alice.cookie })).status), 'alice refused on A at once');
is((await get(ngxB, { cookie: alice.cookie })).status, 200, 'alice still served on B until Redis returns (bounded by the grace)');
await startRedis();
const tUp = Date.now();
let aliceB = null;
await waitFor(async () => refused((aliceB = await get(ngxB, { cookie: alice.cookie })).status), { what: 'alice refused on B', timeout: 6000, interval: 20 }).catch((e) => diag(e.message));
ok(refused(aliceB?.status), `alice refused on B ${Date.now() - tUp} ms after Redis restarted (${aliceB?.status})`);
ok(/^\{/.test(cli('GET', `${PREFIX}revoked:${alice.id}`).slice(8)) || cli('EXISTS', `${PREFIX}revoked:${alice.id}`) === '1', 'the revocation is in the store');

// ---- 3. node B stopped, catches up from its stream id -----------------------------------------------
const B1 = nodes.B;
await B1.stop();
const BAD = '127.0.0.5';
for (let i = 0; i < 5; i++) await get(ngxA, { token: badToken(i), pathname: '/api/x', from: BAD });
is((await get(ngxA, { pathname: '/api/x', from: BAD })).status, 403, `A banned ${BAD}`);
const tail = cli('XREVRANGE', `${PREFIX}events`, '+', '-', 'COUNT', '1').split('\n')[0];
nodes.B = await startEdgegated(nodeConfig('B', egB, pubB), { dir: path.join(dir, 'B') });
await waitFor(async () => (await admin(nodes.B, { cmd: 'events' })).last_id === tail, { what: 'B to catch up', timeout: 5000 }).catch((e) => diag(e.message));
const evB = await admin(nodes.B, { cmd: 'events' });
ok(/catching up from stream id/.test(logOf(nodes.B)), 'B restarted from its saved stream id');
is(evB.last_id, tail, `B caught up to the stream's end (${tail})`);
ok(evB.applied >= 1 && evB.resyncs === 0, `B applied the missed event(s) without a resync (${JSON.stringify(evB)})`);
is((await get(ngxB, { pathname: '/api/x', from: BAD })).status, 403, `B refuses ${BAD}`);

// ---- 4. B frozen while the stream is trimmed past its id: resync ----------------------------------
const httpPid = (n) => Number(execFileSync('pgrep', ['-P', String(n.proc.pid), '-x', 'edgegated']).toString().trim() || n.proc.pid);
let frozen = nodes.B.proc.pid;
try { frozen = httpPid(nodes.B); } catch { /* no privilege separation child */ }
process.kill(frozen, 'SIGSTOP');
diag(`froze B's daemon, pid ${frozen} (started as ${nodes.B.proc.pid}); events ${JSON.stringify(evB)}`);
const BAD2 = '127.0.0.7';
for (let i = 0; i < 5; i++) await get(ngxA, { token: badToken(i), pathname: '/api/x', from: BAD2 });
is((await get(ngxA, { pathname: '/api/x', from: BAD2 })).status, 403, `A banned ${BAD2} while B is frozen`);
const script = `for i=1,1500 do redis.call('XADD', KEYS[1], 'MAXLEN', '~', '1000', '*', 't', 'noop', 'k', 'x') end return 1`;
cli('EVAL', script, '1', `${PREFIX}events`);
ok(Number(cli('XLEN', `${PREFIX}events`)) <= 1100, `the stream was trimmed (XLEN ${cli('XLEN', `${PREFIX}events`)})`);
process.kill(frozen, 'SIGCONT');
await waitFor(async () => (await admin(nodes.B, { cmd: 'events' })).resyncs >= 1, { what: 'B to resync', timeout: 6000 }).catch((e) => diag(e.message));
const evB2 = await admin(nodes.B, { cmd: 'events' });
diag(`B after the trim: ${JSON.stringify(evB2)}`);
is(evB2.resyncs, 1, 'B noticed the trimmed events and resynced once');
ok(/trimmed from the stream/.test(logOf(nodes.B)), 'B logged why');
is((await get(ngxB, { pathname: '/api/x', from: BAD2 })).status, 403, `B refuses ${BAD2} (the ban it missed)`);

// ---- 5. SIGHUP and SIGTERM with verdicts parked on the store workers ------------------------------
process.kill(redis.pid, 'SIGSTOP');
const parked = [0, 1, 2, 3, 4, 5].map(() => get(ngxA, { cookie: gina.cookie }));
await sleep(30);
process.kill(nodes.A.proc.pid, 'SIGHUP');
await sleep(20);
const tTerm = Date.now();
const exitA = await nodes.A.stop();
const termMs = Date.now() - tTerm;
const settled = await Promise.race([Promise.all(parked), sleep(5000).then(() => null)]);
process.kill(redis.pid, 'SIGCONT');
diag(`A stopped in ${termMs} ms (${JSON.stringify(exitA)}); parked requests: ${settled ? settled.map((r) => r.status).join(', ') : 'still waiting'}`);
is(exitA?.code, 0, 'A exited with 0 after SIGTERM with verdicts waiting for the store');
ok(termMs < 3000, `A stopped within 3 s (${termMs} ms)`);
ok(settled !== null, 'no request was left hanging by the stop');
const logEnd = logOf(nodes.A);
ok(!/AddressSanitizer|runtime error|suspended connections/.test(logEnd), 'no sanitizer report or libmicrohttpd panic in A\'s log');
await done();
