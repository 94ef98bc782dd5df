#!/usr/bin/env node
// admin_slow.t.mjs - a slow admin command does not hold up another client's revocation.
// The daemon (root, dropping to its user) keeps its sessions in a real Redis that also holds
// a few million unrelated keys, so `edgegatectl sessions` (a SCAN over the whole keyspace)
// runs for seconds. A `revoke` sent by another client while it runs answers in about the
// time it takes alone, and is still acknowledged only once recorded: the revoked cookie is
// refused right after the answer. `status` is not held up either. One client's commands are
// still answered in order, and a client that half-closes still gets its answer.
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ok, is, done, guard, ctlAsync, freePort, tmpdir, ensureTestUser, TEST_USER, diag } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';
import { sessionId, stolenProbe } from '../lib/daemon_checks.mjs';
import { startRedis } from '../lib/redis.mjs';

guard(180000);
ensureTestUser();
const redisPort = await freePort();
await startRedis({ port: redisPort, dir: tmpdir('adm-slow-redis-') });
const rcli = (...a) => execFileSync('redis-cli', ['-p', String(redisPort), ...a], { stdio: 'pipe' }).toString().trim();
const { eg, pub } = await startStack({ edgegate: { user: TEST_USER, store: { redis: `redis://127.0.0.1:${redisPort}` } } });
const stolen = stolenProbe(pub);
const ctl = (...args) => ctlAsync(['--admin-socket', eg.admin, ...args]);
const timed = async (...args) => { const t0 = Date.now(); const r = await ctl(...args); return { ...r, ms: Date.now() - t0 }; };

const logins = [];
for (const who of ['alice', 'alice', 'bob']) {
  const jar = new Jar();
  is((await browserLogin(jar, `${pub}/app`, who)).status, 200, `${who} logged in`);
  logins.push(jar.get('_edgegate').value);
}
for (const t of logins) is(await stolen(t), 200, 'control: the cookie is served');

// unrelated keys in the same Redis (another application's, or a big shared instance):
// filled in batches so Redis itself never blocks for long
const FILL = 2000000, BATCH = 200000;
for (let i = 0; i < FILL; i += BATCH)
  rcli('EVAL', `for i=ARGV[1],ARGV[2] do redis.call('SET','other:app:'..i,'x') end return 1`, '0', String(i), String(i + BATCH - 1));
ok(Number(rcli('DBSIZE')) >= FILL, `Redis holds ${rcli('DBSIZE')} keys`);

let slow = await timed('sessions', '--json');
ok(slow.code === 0 && /alice/.test(slow.stdout), `sessions alone: ${slow.ms} ms`, slow.stderr);
const alone = await timed('status');
diag(`sessions alone ${slow.ms} ms, status alone ${alone.ms} ms`);
ok(slow.ms >= 1000, `the slow command is slow enough to measure a wait behind it (${slow.ms} ms >= 1000 ms)`);

// a revoke sent while another client's slow command runs
const revokeAlone = await timed('revoke', '--session', sessionId(logins[1]));
ok(revokeAlone.code === 0 && /revoked 1/.test(revokeAlone.stdout), `revoke alone: ${revokeAlone.ms} ms`, revokeAlone);
const during = ctl('sessions', '--json');
await new Promise((r) => setTimeout(r, 150));
const [rv, st] = await Promise.all([timed('revoke', '--session', sessionId(logins[0])), timed('status')]);
const bg = await during;
ok(rv.code === 0 && /revoked 1/.test(rv.stdout), 'the revoke during the slow command succeeds', rv);
ok(rv.ms < 500 && rv.ms < slow.ms / 2,
  `the revoke answers in ${rv.ms} ms while sessions (${slow.ms} ms alone) runs: not held up behind it`);
is(await stolen(logins[0]), 401, 'acknowledged only once recorded: the revoked cookie is refused right after the answer');
ok(st.code === 0 && st.ms < 500, `status answers in ${st.ms} ms meanwhile`, st);
ok(bg.code === 0 && /bob/.test(bg.stdout), 'the slow command completes with its answer');
is(await stolen(logins[2]), 200, 'control: bob\'s session is untouched');

// one client's lines are answered in order, each after the previous completed
const inOrder = await new Promise((resolve, reject) => {
  const s = net.connect(eg.admin);
  let buf = '';
  s.on('data', (d) => {
    buf += d;
    const lines = buf.split('\n').filter(Boolean);
    if (lines.length === 3) { s.end(); resolve(lines.map((l) => JSON.parse(l))); }
  });
  s.on('error', reject);
  s.write('{"cmd":"sessions"}\n{"cmd":"help"}\n{"cmd":"nonesuch"}\n');
});
ok(Array.isArray(inOrder[0].sessions) && Array.isArray(inOrder[1].commands) && inOrder[2].ok === false,
  'one client\'s three lines: three answers in the order sent', inOrder.map((x) => Object.keys(x)));
// a client that half-closes after its line (`nc -N`, shutdown(SHUT_WR)) still gets the answer
// of a command that outlasts its end of the connection
const halfClosed = await new Promise((resolve, reject) => {
  const s = net.connect(eg.admin, () => { s.write('{"cmd":"sessions"}\n'); s.end(); });
  let buf = '';
  s.on('data', (d) => { buf += d; });
  s.on('close', () => resolve(buf));
  s.on('error', reject);
});
ok(/"sessions":\[/.test(halfClosed) && /bob/.test(halfClosed),
  'a half-closed client gets the answer of its slow command', halfClosed.slice(0, 200));
await done();
