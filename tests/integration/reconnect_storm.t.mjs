#!/usr/bin/env node
// reconnect_storm.t.mjs - every client of a node comes back at once (after a deploy or a
// restart): hundreds of valid sessions the daemon does not hold in memory, each a store read
// on a store worker (userspace/http/offload.c), all through nginx with the shipped snippets,
// the daemon started as root and dropping to its user, sessions in a private redis-server.
//   1. 600 simultaneous verdicts for 600 sessions: every one is allowed, as its own user.
//      Again with the store stalled for a moment (Redis stopped until every verdict is
//      queued, then resumed well within store.timeout: a slow fsync, a restart): still every
//      one (the store queue used to be 256 long and answered the rest at once 401
//      session_store_unavailable, which nginx turns into the sign-in redirect).
//   2. 600 simultaneous verdicts for 6 sessions not in memory: all allowed, and the store is
//      read about once per session, not once per request.
//   3. Redis hung (SIGSTOP), then killed: 200 simultaneous verdicts for sessions not in
//      memory each time; none is allowed, none waits past nginx's timeout (no 5xx).
// The sessions are made by build/asan/mksessions (tools/bench/mksessions.c: the daemon's own
// eg_session_create, what the login callback runs after the token exchange).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  ROOT, ok, is, done, guard, diag, skipAll, onCleanup, freePort, tmpdir, startEdgegated, startEcho, startNginx,
  waitFor, request, TEST_USER, ensureTestUser,
} from '../lib/harness.mjs';
import { startRedis, startSharedOP } from '../lib/redis.mjs';

const MKSESSIONS = process.env.EG_MKSESSIONS || path.join(ROOT, 'build/asan/mksessions');
if (!fs.existsSync('/usr/bin/redis-server')) skipAll('redis-server not installed');
if (!fs.existsSync(MKSESSIONS)) {
  // built by `make asan`: missing is an error, like a missing daemon
  console.log(`not ok 1 - ${MKSESSIONS} not built (make asan)`);
  console.log('1..1');
  process.exit(1);
}
guard(90000);
const ROOTUSER = process.getuid() === 0;
if (ROOTUSER) ensureTestUser(TEST_USER);
// SAME_EACH stays under revocation.flows_per_session (128): more connections of one session
// at once get 403 too_many_connections by design (docs/revocation.md)
const N = 600, SAME = 6, SAME_EACH = 100, DOWN_N = 200;

const dir = tmpdir('eg-storm-');
fs.chmodSync(dir, 0o755);
const redisPort = await freePort();
const redis = await startRedis({ port: redisPort, dir });
onCleanup(() => { try { process.kill(redis.pid, 'SIGKILL'); } catch { /* gone */ } });
const cli = (...a) => execFileSync('redis-cli', ['-p', String(redisPort), ...a], { encoding: 'utf8' }).trim();
await waitFor(() => { try { return cli('PING') === 'PONG'; } catch { return false; } }, { what: 'redis' });

const [opPort, ngxPort, egPort] = [await freePort(), await freePort(), await freePort()];
const pub = `http://127.0.0.1:${ngxPort}`;
const { op, client } = await startSharedOP('storm', opPort, [pub]);
const echo = await startEcho();
const PREFIX = `egstorm${redisPort}:`;
const config = {
  listen: `127.0.0.1:${egPort}`,
  public_url: pub,
  log_level: 'warn',
  trusted_proxies: ['127.0.0.1/32'],
  ...(ROOTUSER ? { user: TEST_USER } : {}),
  cookie: { secure: false, secret: 'storm-cookie-secret-0123456789abcdef' },
  // a stall of a second is not an outage here (section 1); the default is 300 ms
  store: { redis: `redis://127.0.0.1:${redisPort}/0`, prefix: PREFIX, timeout: '3s' },
  oidc: { issuer: op.issuer, client_id: client.client_id, client_secret: client.client_secret, redirect_url: `${pub}/oauth2/callback` },
  routes: [{ path: '/', auth: 'session' }],
  gate: { interfaces: [`egstnone${process.pid % 10000}`], pin_root: `/sys/fs/bpf/edgegate-storm-${process.pid}` }, // bans in userspace
};
onCleanup(() => fs.rmSync(config.gate.pin_root, { recursive: true, force: true }));
const egDir = path.join(dir, 'eg');
fs.mkdirSync(egDir);
const eg = await startEdgegated(config, { dir: egDir });
await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'discovery' });
await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream echo { server 127.0.0.1:${echo.port}; keepalive 16; }
  server {
    listen 127.0.0.1:${ngxPort} backlog=4096;
    {{EDGEGATE_INCLUDE}}
    location / { {{EDGEGATE_PROTECT}} proxy_pass http://echo; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }`, { dir: path.join(dir, 'ngx'), edgegate: `127.0.0.1:${egPort}`, waitPort: ngxPort, workerConnections: 4096 });

// Sessions in the store only (mksessions writes them through the same config, with a state
// dir of its own): subjects bench-0..n-1, one cookie each.
let batch = 0;
function sessions(n) {
  const file = path.join(dir, `mksessions-${batch}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...config, user: undefined, state_dir: path.join(dir, `mks-state-${batch++}`) }));
  const out = execFileSync(MKSESSIONS, [file, String(n)], { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
  return out.toString().trim().split('\n').map((t, i) => ({ cookie: `_edgegate=${t}`, user: `bench-${i}` }));
}

// All at once, each on its own connection; resolves [{ status, user (the upstream's
// X-Auth-Request-User), ms }] in order.
function burst(list) {
  const t0 = performance.now();
  return Promise.all(list.map(({ cookie }) => new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: ngxPort, path: '/app/', headers: { cookie, accept: 'application/json' }, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let user = null;
          try { user = JSON.parse(Buffer.concat(chunks).toString()).headers['x-auth-request-user'] ?? null; } catch { /* not the echo */ }
          resolve({ status: res.statusCode, user, ms: performance.now() - t0 });
        });
      });
    req.on('error', (e) => resolve({ status: e.code || 'error', user: null, ms: performance.now() - t0 }));
    req.setTimeout(20000, () => req.destroy(new Error('timeout')));
    req.end();
  })));
}
const tally = (rs) => JSON.stringify(Object.fromEntries(rs.reduce((m, r) => m.set(r.status, (m.get(r.status) || 0) + 1), new Map())));
const maxMs = (rs) => Math.max(...rs.map((r) => r.ms));
const metrics = async () => (await request(`${eg.url}/metrics`)).body;
const series = (text, re) => Number((text.match(re) || [0, 0])[1]);
const saturated = (t) => series(t, /edgegate_store_workers_total\{result="saturated"\} (\d+)/);
const waitedTooLong = (t) => series(t, /edgegate_store_workers_total\{result="waited_too_long"\} (\d+)/);
const gets = () => Number((/cmdstat_get:calls=(\d+)/.exec(cli('INFO', 'commandstats')) || [0, 0])[1]);

// ---- 1. a reconnect storm: N sessions, none in memory --------------------------------------
const storm = sessions(N);
const m0 = await metrics();
const rs = await burst(storm);
const m1 = await metrics();
diag(`${N} sessions at once: ${tally(rs)}, slowest ${maxMs(rs).toFixed(0)} ms; saturated ${saturated(m1) - saturated(m0)}, waited too long ${waitedTooLong(m1) - waitedTooLong(m0)}`);
is(rs.filter((r) => r.status === 200).length, N, `every one of ${N} valid sessions reconnecting at once is allowed`);
is(rs.filter((r, i) => r.status === 200 && r.user !== storm[i].user).length, 0, 'each as its own user');
is(saturated(m1) - saturated(m0), 0, 'none decided as in an outage for want of a queue slot');
const queued = (t) => series(t, /edgegate_store_workers_total\{result="queued"\} (\d+)/);
ok(queued(m1) - queued(m0) >= N, 'each read by a store worker (not from memory)');

const stalled = sessions(N);
const s0 = await metrics();
process.kill(redis.pid, 'SIGSTOP');
const pending = burst(stalled);
let depth = 0;
try {
  // every verdict parked for a worker (or, past a full queue, answered at once)
  await waitFor(async () => { const t = await metrics(); depth = queued(t) - queued(s0); return depth + saturated(t) - saturated(s0) >= N; },
    { what: 'the burst queued', timeout: 2000, interval: 20 });
} catch { /* resume anyway: what was decided shows below */ }
process.kill(redis.pid, 'SIGCONT');
const rs1 = await pending;
const s1 = await metrics();
diag(`${N} sessions at once, the store stalled until ${depth} were queued: ${tally(rs1)}, slowest ${maxMs(rs1).toFixed(0)} ms; saturated ${saturated(s1) - saturated(s0)}, waited too long ${waitedTooLong(s1) - waitedTooLong(s0)}`);
is(rs1.filter((r) => r.status === 200).length, N, `a stall of the store during the storm: still all ${N} allowed`);
is(rs1.filter((r, i) => r.status === 200 && r.user !== stalled[i].user).length, 0, 'each as its own user');

// ---- 2. many requests for a few sessions not in memory: one store read each -----------------
const few = sessions(SAME);
const same = [];
for (let k = 0; k < SAME_EACH; k++) same.push(...few);
const g0 = gets();
const rs2 = await burst(same);
const reads = gets() - g0;
diag(`${same.length} requests for ${SAME} sessions: ${tally(rs2)}, ${reads} GETs in Redis`);
is(rs2.filter((r) => r.status === 200).length, same.length, `all ${same.length} allowed`);
// a load is a GET of the record and one of its revoked marker; at most one load per store
// worker can be under way for a session before the first is in memory (4 workers)
ok(reads <= SAME * 2 * 4, `the store read about once per session, not per request (${reads} GETs for ${same.length} requests)`);

// ---- 3. the store really unavailable: fail closed ------------------------------------------
const hung = sessions(DOWN_N), gone = sessions(DOWN_N);
process.kill(redis.pid, 'SIGSTOP');
const rs3 = await burst(hung);
diag(`Redis hung, ${DOWN_N} sessions not in memory: ${tally(rs3)}, slowest ${maxMs(rs3).toFixed(0)} ms`);
is(rs3.filter((r) => r.status === 200).length, 0, 'Redis hung: no session the node does not hold is allowed');
is(rs3.filter((r) => r.status === 401 || r.status === 302).length, DOWN_N, 'each refused as unauthenticated (no 5xx, no timeout)');
process.kill(redis.pid, 'SIGKILL');
const rs4 = await burst(gone);
diag(`Redis killed, ${DOWN_N} sessions not in memory: ${tally(rs4)}, slowest ${maxMs(rs4).toFixed(0)} ms`);
is(rs4.filter((r) => r.status === 200).length, 0, 'Redis down: none allowed');
is(rs4.filter((r) => r.status === 401 || r.status === 302).length, DOWN_N, 'each refused as unauthenticated');
const m4 = await metrics();
ok(series(m4, /edgegate_verdicts_total\{result="unauthenticated",reason="session_store_unavailable"\} (\d+)/) >= 2 * DOWN_N,
  'the refusals say the store was unavailable');
await done();
