#!/usr/bin/env node
// redis_deny.t.mjs - deny/allow changes of the XDP gate travel between nodes as events.
// Two edgegated nodes (root, dropping to a user) share a private redis-server; each has
// its gate attached (generic XDP) to a veth of its own and its own pin root.
// `edgegatectl deny add` on A appears in B's kernel deny map (read back through B's
// admin socket, which reads the pinned map) within 500 ms, with its reason and expiry;
// `deny del` on A removes it from B; `allow add` likewise; B's own entries are untouched.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  EDGEGATECTL, ok, is, done, guard, diag, skipAll, onCleanup, freePort, tmpdir, startEdgegated, waitFor, ctlAsync,
} from '../lib/harness.mjs';
import { TEST_USER, ensureTestUser, startRedis } from '../lib/redis.mjs';

if (!fs.existsSync('/usr/bin/redis-server')) skipAll('redis-server not installed');
if (!fs.existsSync(EDGEGATECTL)) skipAll(`${EDGEGATECTL} not built (make asan)`);
if (process.getuid() !== 0) {
  if (process.env.CI === 'true') { ok(false, 'needs root (BPF, a veth pair)'); await done(); }
  skipAll('needs root (BPF, a veth pair)');
}
guard(60000);
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

const nodes = {};
for (const name of ['A', 'B']) {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  nodes[name] = await startEdgegated({
    user: USER,
    store: { redis: `redis://127.0.0.1:${redisPort}/0`, prefix: `egdeny${redisPort}:` },
    gate: { interfaces: [IFS[name]], xdp_mode: 'generic', pin_root: `${PIN}/${name}`, protected_ports: [443] },
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
await done();
