#!/usr/bin/env node
// redis_deny.t.mjs - deny/allow changes of the XDP gate travel between nodes as events.
// Two edgegated nodes (root, dropping to a user) share a private redis-server; each has
// its gate attached (generic XDP) to a veth of its own and its own pin root.
// `edgegatectl deny add` on A appears in B's kernel deny map (read back through B's
// admin socket, which reads the pinned map) within 500 ms, with its reason and expiry;
// `deny del` on A removes it from B; `allow add` likewise; B's own entries are untouched.
// Then B misses events (frozen with SIGSTOP while A deletes one entry, adds another and
// the stream is trimmed past B's id): after SIGCONT B resyncs, and the resync lifts the
// entry deleted on A and applies the one added, leaving B's own entry alone.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  EDGEGATECTL, ok, is, done, guard, diag, skipAll, onCleanup, freePort, tmpdir, startEdgegated, waitFor, ctlAsync,
} from '../lib/harness.mjs';
import { TEST_USER, ensureTestUser, startRedis, admin } from '../lib/redis.mjs';

if (!fs.existsSync('/usr/bin/redis-server')) skipAll('redis-server not installed');
if (!fs.existsSync(EDGEGATECTL)) skipAll(`${EDGEGATECTL} not built (make asan)`);
if (process.getuid() !== 0) {
  if (process.env.CI === 'true') { ok(false, 'needs root (BPF, a veth pair)'); await done(); }
  skipAll('needs root (BPF, a veth pair)');
}
guard(90000);
const USER = TEST_USER;
ensureTestUser(USER);
const dir = tmpdir('eg-deny-');
fs.chmodSync(dir, 0o755);
const ID = process.pid;
const PIN = `/sys/fs/bpf/edgegate-deny-${ID}`;
const IFS = { A: `egdA${ID % 100000}`, B: `egdB${ID % 100000}` };
onCleanup(() => {
  for (const i of Object.values(IFS)) { try { execFileSync('ip', ['link', 'del', i], { stdio: 'ignore' }); } catch { /* gone */ } }
  try { fs.rmSync(PIN, { recursive: true, force: true }); } catch { /* not ours */ }
});
for (const i of Object.values(IFS)) {
  execFileSync('ip', ['link', 'add', i, 'type', 'veth', 'peer', 'name', `${i}p`]);
  execFileSync('ip', ['link', 'set', i, 'up']);
}
const redisPort = await freePort();
await startRedis({ port: redisPort, dir });

const STATIC_B = '198.18.202.0/24'; // B's config: never in the store, never lifted by a resync
const nodes = {};
for (const name of ['A', 'B']) {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  nodes[name] = await startEdgegated({
    user: USER,
    store: { redis: `redis://127.0.0.1:${redisPort}/0`, prefix: `egdeny${redisPort}:` },
    gate: { interfaces: [IFS[name]], xdp_mode: 'generic', pin_root: `${PIN}/${name}`, protected_ports: [443], ...(name === 'B' ? { deny: [STATIC_B] } : {}) },
  }, { dir: d });
}
const ctl = (node, ...a) => ctlAsync(['--admin-socket', node.admin, ...a]);
const list = async (node, what = 'deny') => (await ctl(node, what, 'list')).stdout;
const { A, B } = nodes;
const st = await ctl(B, 'deny', 'list');
if (st.code !== 0) diag(`B deny list: ${st.stderr}`);
is(st.code, 0, 'B: the gate is loaded (deny list answers)');

const NET = '198.51.100.0/24';
const add = await ctl(A, 'deny', 'add', NET, '--ttl', '10m', '--reason', 'abuse');
ok(add.code === 0, `A: deny add ${NET}`, add.stdout + add.stderr);
let t0 = Date.now();
await waitFor(async () => (await list(B)).includes(NET), { what: 'B to hold the entry', timeout: 3000, interval: 10 }).catch((e) => diag(e.message));
let dt = Date.now() - t0;
const lb = await list(B);
ok(lb.includes(NET) && dt < 500, `B's kernel map holds ${NET} ${dt} ms after deny add on A`, lb);
ok(/abuse/.test(lb.split('\n').find((l) => l.includes(NET)) || ''), 'with its reason (abuse)', lb);

const OWN = '203.0.113.7';
is((await ctl(B, 'deny', 'add', OWN)).code, 0, `B: its own deny add ${OWN}`);
is((await ctl(A, 'deny', 'del', NET)).code, 0, `A: deny del ${NET}`);
t0 = Date.now();
await waitFor(async () => !(await list(B)).includes(NET), { what: 'B to drop the entry', timeout: 3000, interval: 10 }).catch((e) => diag(e.message));
dt = Date.now() - t0;
const lb2 = await list(B);
ok(!lb2.includes(NET) && dt < 500, `B dropped ${NET} ${dt} ms after deny del on A`);
ok(lb2.includes(OWN), `B kept its own entry ${OWN}`);
ok((await list(A)).includes(OWN), `A holds B's entry ${OWN} too`);

const ALLOW = '192.0.2.0/28';
is((await ctl(A, 'allow', 'add', ALLOW)).code, 0, `A: allow add ${ALLOW}`);
await waitFor(async () => (await list(B, 'allow')).includes(ALLOW), { what: 'B to hold the allow entry', timeout: 3000 }).catch((e) => diag(e.message));
ok((await list(B, 'allow')).includes(ALLOW), `B's allow map holds ${ALLOW}`);

// ---- events B missed (frozen, the stream trimmed past its id): the resync reconciles ----
const GONE = '198.18.200.0/24', NEWER = '198.18.201.0/24';
is((await ctl(A, 'deny', 'add', GONE, '--reason', 'abuse')).code, 0, `A: deny add ${GONE}`);
await waitFor(async () => (await list(B)).includes(GONE), { what: `B to hold ${GONE}`, timeout: 3000 }).catch((e) => diag(e.message));
ok((await list(B)).includes(GONE), `B holds ${GONE}`);
const resyncsBefore = (await admin(B, { cmd: 'events' })).resyncs;
// the process started stays the privileged one; the daemon (follower included) is its child
const bDaemon = Number(execFileSync('pgrep', ['-P', String(B.proc.pid)], { encoding: 'utf8' }).trim().split('\n')[0]);
ok(bDaemon > 0, `B's daemon process ${bDaemon} (child of the privileged ${B.proc.pid})`);
process.kill(bDaemon, 'SIGSTOP');
try {
  is((await ctl(A, 'deny', 'del', GONE)).code, 0, `A: deny del ${GONE} while B is frozen`);
  is((await ctl(A, 'deny', 'add', NEWER)).code, 0, `A: deny add ${NEWER} while B is frozen`);
  // more events than the stream keeps (MAXLEN ~ 1000): B's id and both changes are trimmed away
  const stream = `egdeny${redisPort}:events`;
  execFileSync('redis-cli', ['-p', String(redisPort)], { input: `XADD ${stream} MAXLEN ~ 1000 * t filler k x n test\n`.repeat(1500), stdio: ['pipe', 'ignore', 'inherit'] });
  const first = execFileSync('redis-cli', ['-p', String(redisPort), 'XRANGE', stream, '-', '+', 'COUNT', '1'], { encoding: 'utf8' });
  ok(/filler/.test(first), 'the stream no longer holds the deny changes (trimmed)');
} finally {
  process.kill(bDaemon, 'SIGCONT');
}
await waitFor(async () => (await admin(B, { cmd: 'events' })).resyncs > resyncsBefore, { what: 'B to resync', timeout: 10000 }).catch((e) => diag(e.message));
ok((await admin(B, { cmd: 'events' })).resyncs > resyncsBefore, 'B resynced (its stream id was trimmed)');
const lb3 = await list(B);
ok(!lb3.includes(GONE), `B lifted ${GONE}, deleted on A while B missed the event`, lb3);
ok(lb3.includes(NEWER), `B applied ${NEWER}, added on A while B missed the event`, lb3);
ok(lb3.includes(OWN), `B kept its own entry ${OWN}`);
ok(lb3.includes(STATIC_B), `B kept its config's entry ${STATIC_B} (never in the store)`);
ok((await list(A)).includes(NEWER) && !(await list(A)).includes(GONE), 'A unchanged by it');
await done();
