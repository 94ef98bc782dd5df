#!/usr/bin/env node
// redis_sentinel.t.mjs - the store behind Redis Sentinel: a master, a replica and three
// sentinels on loopback; two edgegated nodes (A, B, started as root dropping to a user
// when run as root) with store.sentinels, each behind its own nginx. Under verdict load
// through A and revocations through A, the master is killed (SIGKILL): the sentinels
// promote the replica, both nodes follow, verdicts continue with no 5xx from nginx, and
// every acknowledged revocation is in the new master (published with WAIT 1: on the
// replica before it was acknowledged) and enforced on B. Those recorded locally while
// no master answered must all be published within PUBLISH_BOUND_MS of the sentinels
// naming the new master (the store's prober sees it within ~0.1 s and wakes the retry:
// docs/sessions.md); the test prints the time from the kill and from the promotion.
// A request whose session is being revoked may see its connection reset: that is the
// revocation killing the session's live flows (revoke.c), not the failover; every other
// request must get an answer, and no answer may be a 5xx.
// Then the old master returns as a replica and the new master is frozen (SIGSTOP) under
// load: the same bound, and one outage logged (stale pooled connections are retired, not
// each left to time out and declare another one).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import {
  EDGEGATECTL, ok, is, done, guard, diag, skipAll, onCleanup, freePort, tmpdir, spawnLogged, sleep,
  startEcho, waitFor, ctlAsync, request,
} from '../lib/harness.mjs';
import { Jar, browserLogin } from '../lib/oidc_helpers.mjs';
import { TEST_USER, ensureTestUser, startSharedOP, startNodes, startFronts, admin } from '../lib/redis.mjs';

if (!fs.existsSync('/usr/bin/redis-server')) skipAll('redis-server not installed');
if (!fs.existsSync('/usr/bin/redis-sentinel')) skipAll('redis-sentinel not installed (tools/deps.sh)');
if (!fs.existsSync(EDGEGATECTL)) skipAll(`${EDGEGATECTL} not built (make asan)`);
guard(170000);
const ROOTUSER = process.getuid() === 0;
const USER = TEST_USER;
if (ROOTUSER) ensureTestUser(USER);
const dir = tmpdir('eg-sentinel-');
fs.chmodSync(dir, 0o755);
const PIN = `/sys/fs/bpf/edgegate-sent-${process.pid}`;
onCleanup(() => { try { fs.rmSync(PIN, { recursive: true, force: true }); } catch { /* not ours */ } });
const MASTER = `egm${process.pid}`;

const cli = (port, ...a) => execFileSync('redis-cli', ['-p', String(port), ...a], { encoding: 'utf8', timeout: 5000 }).trim();
const cliAsync = (port, ...a) => new Promise((resolve) => execFile('redis-cli', ['-p', String(port), ...a], { encoding: 'utf8', timeout: 5000 },
  (e, out) => resolve(e ? '' : out.trim())));
const PUBLISH_BOUND_MS = 5000;
// the promotion: the first moment any sentinel names the new master
const anyNames = async (port) => (await Promise.all(sPorts.map((p) => cliAsync(p, 'SENTINEL', 'get-master-addr-by-name', MASTER))))
  .some((a) => a.split('\n')[1] === String(port));
const up = (port) => waitFor(() => { try { return cli(port, 'PING') === 'PONG'; } catch { return false; } }, { what: `redis on ${port}` });

// ---- master, replica, three sentinels ------------------------------------------------------------
const [mPort, rPort] = [await freePort(), await freePort()];
const procs = {};
for (const [name, port, extra] of [['master', mPort, []], ['replica', rPort, ['--replicaof', '127.0.0.1', String(mPort)]]]) {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  procs[name] = spawnLogged('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', d, ...extra], { logFile: path.join(d, 'redis.log') });
  await up(port);
}
await waitFor(() => /master_link_status:up/.test(cli(rPort, 'INFO', 'replication')), { what: 'replica in sync' });
const sPorts = [await freePort(), await freePort(), await freePort()];
for (const [i, port] of sPorts.entries()) {
  const conf = path.join(dir, `sentinel${i}.conf`);
  fs.writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
    `sentinel monitor ${MASTER} 127.0.0.1 ${mPort} 2`, `sentinel down-after-milliseconds ${MASTER} 1000`,
    `sentinel failover-timeout ${MASTER} 4000`, `sentinel parallel-syncs ${MASTER} 1`, ''].join('\n'));
  procs[`s${i}`] = spawnLogged('/usr/bin/redis-sentinel', [conf], { logFile: path.join(dir, `sentinel${i}.log`) });
  await up(port);
}
await waitFor(() => sPorts.every((p) => /num-other-sentinels/.test(cli(p, 'SENTINEL', 'master', MASTER)) &&
  Number(cli(p, 'SENTINEL', 'master', MASTER).split('\n').reduce((v, l, i, a) => (l === 'num-other-sentinels' ? a[i + 1] : v), 0)) === 2),
{ what: 'sentinels to know each other', timeout: 15000 });
const masterPort = () => Number(cli(sPorts[0], 'SENTINEL', 'get-master-addr-by-name', MASTER).split('\n')[1]);
is(masterPort(), mPort, 'the sentinels name the first master');

// ---- OP, echo, two nodes, two nginx --------------------------------------------------------------
const [opPort, ngxA, ngxB, egA, egB] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
const pubA = `http://127.0.0.1:${ngxA}`, pubB = `http://127.0.0.1:${ngxB}`;
const { op, client } = await startSharedOP('sentinel', opPort, [pubA, pubB]);
const echo = await startEcho();
const PREFIX = `egsent${mPort}:`;
const nodes = await startNodes(dir, [['A', egA, pubA], ['B', egB, pubB]], (name, port, pub) => ({
  listen: `127.0.0.1:${port}`,
  public_url: pub,
  log_level: 'info',
  trusted_proxies: ['127.0.0.1/32'],
  ...(ROOTUSER ? { user: USER } : {}),
  cookie: { secure: false, secret: 'shared-cookie-secret-0123456789abcdef' },
  store: { sentinels: sPorts.map((p) => `127.0.0.1:${p}`), master_name: MASTER, prefix: PREFIX, outage_grace: '60s' },
  oidc: { issuer: op.issuer, client_id: client.client_id, client_secret: client.client_secret, redirect_url: `${pub}/oauth2/callback` },
  routes: [{ path: '/public/', auth: 'public' }, { path: '/', auth: 'session' }],
  gate: { interfaces: ['egt-none0'], pin_root: `${PIN}/${name}`, protected_ports: [ngxA, ngxB], syn_rate: 1000, syn_burst: 1000 },
}));
await startFronts(dir, echo.port, [['A', ngxA, egA], ['B', ngxB, egB]]);
function get(port, { cookie, pathname = '/app/' } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request({ host: '127.0.0.1', port, path: pathname, headers: cookie ? { cookie } : {}, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.on('error', (e) => resolve({ status: e.code || 'error', ms: performance.now() - t0 }));
    req.setTimeout(15000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}
const refused = (s) => s === 401 || s === 302;

// ---- sessions ----------------------------------------------------------------------------------------
const N = 12;
const sessions = [];
for (let i = 0; i < N; i++) {
  const jar = new Jar();
  const user = `user${i}`;
  const r = await browserLogin(jar, `${pubA}/app/`, user);
  const id = (await admin(nodes.A, { cmd: 'sessions', sub: user })).sessions?.[0]?.session_id;
  sessions.push({ user, cookie: jar.header(`${pubA}/app/`), id, ok: r.status === 200 });
}
ok(sessions.every((s) => s.ok && /^[0-9a-f]{64}$/.test(s.id || '')), `${N} users logged in through A`);
for (const s of sessions) await get(ngxB, { cookie: s.cookie }); // into B's memory as well

// ---- load, revocations, failover ---------------------------------------------------------------------
const statuses = new Map();
const note = (k) => statuses.set(k, (statuses.get(k) || 0) + 1);
let loading = true;
const load = (async () => {
  let i = 0;
  while (loading) {
    const s = sessions[i++ % N];
    const r = await get(ngxA, i % 2 ? { pathname: '/public/x' } : { cookie: s.cookie });
    // a session whose revocation began before this answer: its flow may be reset
    note(`${i % 2 ? 'public' : s.revoking ? 'revoked-session' : 'session'} ${r.status}`);
  }
})();
const acked = [];
const revokeOne = async (s) => {
  s.revoking = true;
  const r = await ctlAsync(['--admin-socket', nodes.A.admin, 'revoke', '--session', s.id]);
  if (r.code === 0 && /revoked 1 session/.test(r.stdout)) acked.push({ ...s, local: /state_dir|local/.test(r.stdout + r.stderr) });
  else diag(`revoke ${s.user}: not acknowledged: ${r.stdout} ${r.stderr}`);
};
const pendingOnA = async () => Number((/^edgegate_revocations_pending (\d+)/m.exec((await request(`${nodes.A.url}/metrics`)).body) || [])[1] ?? -1);
const revoking = (async () => { for (const s of sessions.slice(0, N / 2)) { await revokeOne(s); await sleep(300); } })();
await sleep(600);
const tKill = Date.now();
procs.master.kill('SIGKILL');
diag('master killed');
// From the kill: when a sentinel names the replica, and when every revocation acknowledged
// before then is in the new master with nothing pending on A (polled every 50 ms).
let tPromoted = 0, tPublished = 0, revokedBefore = false;
revoking.then(() => { revokedBefore = true; });
const watch = (async () => {
  while (Date.now() - tKill < 40000) {
    if (!tPromoted && await anyNames(rPort)) tPromoted = Date.now();
    if (tPromoted && revokedBefore) {
      const all = acked.slice();
      const present = Number(await cliAsync(rPort, 'EXISTS', ...all.map((s) => `${PREFIX}revoked:${s.id}`)));
      if (present === all.length && await pendingOnA() === 0) { tPublished = Date.now(); return; }
    }
    await sleep(50);
  }
})();
await revoking;
await waitFor(() => tPromoted || tKill + 40000 < Date.now(), { what: 'failover', timeout: 41000 });
diag(`sentinels promoted the replica ${tPromoted - tKill} ms after the kill`);
// (the others learn it from the first within a couple of seconds)
await waitFor(async () => (await Promise.all(sPorts.map((p) => cliAsync(p, 'SENTINEL', 'get-master-addr-by-name', MASTER))))
  .every((a) => a.split('\n')[1] === String(rPort)), { what: 'every sentinel to name the replica', timeout: 10000 }).catch((e) => diag(e.message));
is(masterPort(), rPort, 'the sentinels promoted the replica');
const localBefore = acked.filter((s) => s.local).length;
await watch;
const published = tPublished ? tPublished - tPromoted : Infinity;
diag(`revocations acknowledged before the promotion (${acked.length}, ${localBefore} recorded locally) all published: ` +
  `${tPublished ? tPublished - tKill : 'never'} ms after the kill, ${tPublished ? published : 'never'} ms after the promotion`);
ok(localBefore > 0, `some revocations were recorded locally while no master answered (${localBefore})`);
ok(published <= PUBLISH_BOUND_MS, `all of them published within ${PUBLISH_BOUND_MS} ms of the promotion (${published} ms)`);
for (const s of sessions.slice(N / 2, N - 2)) await revokeOne(s); // after the failover
await sleep(1500);
loading = false;
await load;
diag(`verdicts through A during the failover: ${JSON.stringify([...statuses])}`);
const bad = (k) => / 5\d\d$/.test(k) || / E[A-Z]+$/.test(k) || / error$/.test(k);
ok(![...statuses.keys()].some((k) => bad(k) && !/^revoked-session E/.test(k)), 'no 5xx from nginx, and no connection error but the resets of revoked sessions');
ok((statuses.get('public 200') || 0) > 50, `public verdicts continued (${statuses.get('public 200') || 0})`);
ok((statuses.get('session 200') || 0) > 50, `verdicts of live sessions continued (${statuses.get('session 200') || 0})`);
is(acked.length, N - 2, `${N - 2} revocations acknowledged`);

// every acknowledged revocation: in the new master, and enforced on both nodes
await waitFor(async () => await pendingOnA() === 0, { what: 'no revocation pending on A', timeout: PUBLISH_BOUND_MS }).catch((e) => diag(e.message));
const missing = acked.filter((s) => cli(rPort, 'EXISTS', `${PREFIX}revoked:${s.id}`) !== '1');
is(missing.length, 0, `every acknowledged revocation is in the new master (${acked.filter((s) => s.local).length} of them first recorded locally)`);
let servedB = [];
await waitFor(async () => {
  servedB = [];
  for (const s of acked) if (!refused((await get(ngxB, { cookie: s.cookie })).status)) servedB.push(s.user);
  return servedB.length === 0;
}, { what: 'B to refuse every revoked session', timeout: PUBLISH_BOUND_MS, interval: 200 }).catch(() => {});
is(servedB.join(','), '', 'B refuses every acknowledged revocation');
const servedA = [];
for (const s of acked) if (!refused((await get(ngxA, { cookie: s.cookie })).status)) servedA.push(s.user);
is(servedA.join(','), '', 'A refuses every acknowledged revocation');
const live = sessions.slice(N - 2);
for (const s of live) is((await get(ngxB, { cookie: s.cookie })).status, 200, `${s.user} (not revoked) still served on B`);
// a revocation after the failover reaches the other node through the stream on the new master
const t0 = Date.now();
await revokeOne(live[0]);
let st = null;
await waitFor(async () => refused((st = await get(ngxB, { cookie: live[0].cookie })).status), { what: 'B to apply', timeout: 3000, interval: 10 }).catch(() => {});
ok(refused(st?.status), `a revocation on A after the failover applied on B in ${Date.now() - t0} ms`);
const evB = await admin(nodes.B, { cmd: 'events' });
ok(evB.following === true && evB.applied >= 1, `B follows the stream on the new master (${JSON.stringify(evB)})`);

// ---- a second failover, from a master that hangs (SIGSTOP) rather than dies -----------------------------
// The old master returns as a replica of the new one; the new one is then frozen under load:
// every connection to it times out instead of failing at once (pooled connections dialled
// before the outage must not each wait out their timeout and declare new outages).
const dOld = path.join(dir, 'master');
procs.master = spawnLogged('/usr/bin/redis-server', ['--port', String(mPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
  '--dir', dOld, '--replicaof', '127.0.0.1', String(rPort)], { logFile: path.join(dOld, 'redis.log') });
await up(mPort);
await waitFor(() => /master_link_status:up/.test(cli(mPort, 'INFO', 'replication')), { what: 'old master in sync as a replica', timeout: 15000 });
await waitFor(() => sPorts.every((p) => { const r = cli(p, 'SENTINEL', 'replicas', MASTER); return r.includes(String(mPort)) && !/s_down|disconnected/.test(r); }),
  { what: 'sentinels to see the replica', timeout: 15000 });
const more = [];
for (let i = 0; i < 6; i++) {
  const jar = new Jar();
  const user = `later${i}`;
  const r = await browserLogin(jar, `${pubA}/app/`, user);
  const id = (await admin(nodes.A, { cmd: 'sessions', sub: user })).sessions?.[0]?.session_id;
  more.push({ user, cookie: jar.header(`${pubA}/app/`), id, ok: r.status === 200 });
}
ok(more.every((x) => x.ok && /^[0-9a-f]{64}$/.test(x.id || '')), '6 more users logged in through A');
for (const x of more) await get(ngxB, { cookie: x.cookie });
const statuses2 = new Map();
let loading2 = true;
const load2 = (async () => {
  let i = 0;
  while (loading2) {
    const x = more[i++ % more.length];
    const r = await get(ngxA, i % 2 ? { pathname: '/public/x' } : { cookie: x.cookie });
    const k = `${i % 2 ? 'public' : x.revoking ? 'revoked-session' : 'session'} ${r.status}`;
    statuses2.set(k, (statuses2.get(k) || 0) + 1);
  }
})();
const acked0 = acked.length;
const revoking2 = (async () => { for (const x of more.slice(0, 4)) { await revokeOne(x); await sleep(300); } })();
await sleep(600);
const logA2From = fs.statSync(nodes.A.logFile).size;
const tStop = Date.now();
process.kill(procs.replica.pid, 'SIGSTOP');
onCleanup(() => { try { process.kill(procs.replica.pid, 'SIGKILL'); } catch { /* gone */ } });
diag('new master frozen (SIGSTOP)');
let tPromoted2 = 0, tPublished2 = 0, revoked2 = false;
revoking2.then(() => { revoked2 = true; });
while (Date.now() - tStop < 40000 && !tPublished2) {
  if (!tPromoted2 && await anyNames(mPort)) tPromoted2 = Date.now();
  if (tPromoted2 && revoked2) {
    const all = acked.slice(acked0);
    const present = Number(await cliAsync(mPort, 'EXISTS', ...all.map((x) => `${PREFIX}revoked:${x.id}`)));
    if (present === all.length && await pendingOnA() === 0) tPublished2 = Date.now();
  }
  await sleep(50);
}
await revoking2;
const published2 = tPublished2 && tPromoted2 ? tPublished2 - tPromoted2 : Infinity;
const local2 = acked.slice(acked0).filter((x) => x.local).length;
diag(`frozen master: the sentinels promoted the old one ${tPromoted2 ? tPromoted2 - tStop : 'never'} ms after the SIGSTOP; ` +
  `the ${acked.length - acked0} revocations (${local2} recorded locally) all published ${tPublished2 ? tPublished2 - tStop : 'never'} ms after it, ` +
  `${published2} ms after the promotion`);
is(acked.length - acked0, 4, '4 revocations acknowledged around the freeze');
ok(local2 > 0, `some were recorded locally while no master answered (${local2})`);
ok(published2 <= PUBLISH_BOUND_MS, `all published within ${PUBLISH_BOUND_MS} ms of the promotion (${published2} ms)`);
await sleep(1000);
loading2 = false;
await load2;
diag(`verdicts through A around the freeze: ${JSON.stringify([...statuses2])}`);
ok(![...statuses2.keys()].some((k) => bad(k) && !/^revoked-session E/.test(k)), 'no 5xx from nginx, and no connection error but the resets of revoked sessions');
ok((statuses2.get('session 200') || 0) > 20, `verdicts of live sessions continued (${statuses2.get('session 200') || 0})`);
const logA2 = fs.readFileSync(nodes.A.logFile).subarray(logA2From).toString('utf8'); // a byte offset
const outages2 = (logA2.match(/outage begins/g) || []).length;
is(outages2, 1, `A logged one outage for the freeze, not one per stale connection (${(logA2.match(/unreachable \([^)]*\)/g) || []).join('; ')})`);
let servedB2 = [];
await waitFor(async () => {
  servedB2 = [];
  for (const x of more.slice(0, 4)) if (!refused((await get(ngxB, { cookie: x.cookie })).status)) servedB2.push(x.user);
  return servedB2.length === 0;
}, { what: 'B to refuse them', timeout: PUBLISH_BOUND_MS, interval: 200 }).catch(() => {});
is(servedB2.join(','), '', 'B refuses every revocation acknowledged around the freeze');
for (const x of more.slice(4)) is((await get(ngxB, { cookie: x.cookie })).status, 200, `${x.user} (not revoked) still served on B`);

// ---- a long outage with no master to find: the prober backs off ------------------------------------------
// The master killed while its only replica is frozen: no sentinel can promote anyone. Each
// node's prober asked every sentinel on a fresh connection every 100 ms before (~30 sentinel
// connections a second per node); it now backs off to one probe a second, woken early only
// by a failover event (sentinel_watch.c). Counted on the sentinels (INFO stats).
const sentinelConns = () => sPorts.reduce((n, p) => n + Number((/total_connections_received:(\d+)/.exec(cli(p, 'INFO', 'stats')) || [])[1] || 0), 0);
process.kill(procs.master.pid, 'SIGKILL');
diag('master killed, its replica frozen: no master for the sentinels to name');
// make sure both nodes are in the outage (a store command each), then let the back-off ramp up (0.1+0.2+0.4+0.8 s)
for (const n of [nodes.A, nodes.B]) await ctlAsync(['--admin-socket', n.admin, 'revoke', '--session', 'f'.repeat(64)]);
await sleep(2000);
const WINDOW_MS = 5000;
const c0 = sentinelConns();
await sleep(WINDOW_MS);
const perNode = (sentinelConns() - c0 - sPorts.length) / 2 / (WINDOW_MS / 1000); // minus the INFO connections of the first count
diag(`sentinel connections during the outage: ${perNode.toFixed(1)} per node per second (${sPorts.length} sentinels)`);
ok(perNode <= 2 * sPorts.length, `the probers back off: ${perNode.toFixed(1)} sentinel connections per node per second (at most ${2 * sPorts.length}; ~30 without the back-off)`);
await done();
