#!/usr/bin/env node
// durable_revoke.t.mjs - a revocation is durable before it is acknowledged (issue 11), with
// a real redis-server the test pauses (SIGSTOP) and kills (SIGKILL), the real OP and nginx:
//   - sign-out while Redis is paused: answered only once recorded (here: in state_dir,
//     "Edgegate-Revocation: local"); the stolen cookie is never served, not while Redis is
//     paused (a store read error is a deny) and not after it comes back (the pending
//     revocation reaches the store); /metrics shows the pending gauge and the failures;
//   - `revoke` while Redis is dead: "durable":"local" with a warning; the daemon is then
//     killed with SIGKILL, Redis restarts from its append-only file with the session record
//     still in it, the daemon restarts: the stolen cookie still gets 401, and the revoked
//     marker reaches Redis.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ok, is, done, guard, request, freePort, tmpdir, startEdgegated, waitFor, skipAll, sleep } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';
import { startRedis as startRedisServer } from '../lib/redis.mjs';
import { adminClient, metricReader, sessionId, stolenProbe, signOutAt } from '../lib/daemon_checks.mjs';

if (!fs.existsSync('/usr/bin/redis-server')) {
  if (process.env.CI === 'true') throw new Error('redis-server not installed');
  skipAll('redis-server not installed');
}
guard(300000);
const rdir = tmpdir('eg-durable-redis-');
const redisPort = await freePort();
let redis;
async function startRedis() {
  redis = await startRedisServer({ port: redisPort, dir: rdir, persistence: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  await waitFor(() => cli('PING') === 'PONG', { what: 'redis PING' });
}
function cli(...args) {
  try { return execFileSync('/usr/bin/redis-cli', ['-p', String(redisPort), ...args], { timeout: 3000 }).toString().trim(); } catch { return null; }
}
await startRedis();
const prefix = `egdur${redisPort}:`;
const stack = await startStack({ edgegate: { store: { redis: `redis://127.0.0.1:${redisPort}/0`, prefix } } });
const { pub } = stack;
let eg = stack.eg;
const admin = adminClient(() => eg);
const metric = metricReader(() => eg);
const stolen = stolenProbe(pub);
const signOut = signOutAt(pub);

// --- sign-out while Redis is paused -------------------------------------------------------
const jar = new Jar();
is((await browserLogin(jar, `${pub}/app`, 'alice')).status, 200, 'alice logged in (Redis store)');
const ta = jar.get('_edgegate').value;
is(await stolen(ta), 200, 'the cookie works (a copy of it is the "stolen" one)');
process.kill(redis.pid, 'SIGSTOP');
const t0 = Date.now();
const so = await signOut(jar);
ok(so.status === 302 || so.status === 303, `sign-out with Redis paused answers ${so.status} after ${Date.now() - t0} ms`);
is(so.headers['edgegate-revocation'], 'local', 'the answer says the revocation is recorded locally (state_dir)');
const tomb = fs.readFileSync(path.join(eg.config.state_dir, 'revoked.tombs'), 'utf8');
ok(tomb.includes(sessionId(ta)), 'the tombstone is in state_dir/revoked.tombs');
const during = await stolen(ta);
ok(during !== 200, `stolen cookie while Redis is paused: ${during} (a store read error is a deny)`);
is(await metric('edgegate_revocations_pending'), 1, 'metrics: edgegate_revocations_pending 1');
ok((await metric('edgegate_store_write_failures_total')) >= 1, 'metrics: edgegate_store_write_failures_total counts it');
process.kill(redis.pid, 'SIGCONT');
await waitFor(async () => (await metric('edgegate_revocations_pending')) === 0, { what: 'the pending revocation to reach Redis', timeout: 30000 })
  .catch((e) => ok(false, e.message));
ok(cli('EXISTS', `${prefix}revoked:${sessionId(ta)}`) === '1', 'the revoked marker is in Redis now');
is(await stolen(ta), 401, 'stolen cookie after Redis is back: 401');

// --- back-channel logout while Redis is paused: not acknowledged, delivered again later -----
const jc = new Jar();
is((await browserLogin(jc, `${pub}/app`, 'carol')).status, 200, 'carol logged in');
const tc = jc.get('_edgegate').value;
process.kill(redis.pid, 'SIGSTOP');
let r = await jc.follow(`${stack.op.issuer}/session/end`);
const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(r.body);
const xsrf = /name="xsrf" value="([^"]+)"/.exec(r.body)?.[1];
const calls = stack.op.stats.backchannelCalls;
r = await jc.follow(new URL(form[1], stack.op.issuer).toString(), { method: 'POST', form: { xsrf, logout: 'yes' } });
is(stack.op.stats.backchannelCalls - calls, 1, 'the OP delivered a logout_token while Redis is paused');
is(stack.op.stats.lastLogoutStatus, 400, 'our back-channel endpoint did not acknowledge it (400, the failed logout of Back-Channel Logout 1.0 2.8, not a 5xx: the sessions of the sid cannot be listed during the outage)');
process.kill(redis.pid, 'SIGCONT');
await sleep(1200); // the store's fail-fast second
r = await request(`${pub}/oauth2/backchannel-logout`, {
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: stack.op.stats.lastLogoutBody,
});
is(r.status, 200, 'the same logout_token delivered again once Redis is back: 200 (its jti was not kept)');
is(await stolen(tc), 401, 'carol\'s stolen cookie: 401');

// --- revoke while Redis is dead, then kill -9 and restart everything ----------------------
const jb = new Jar();
is((await browserLogin(jb, `${pub}/app`, 'bob')).status, 200, 'bob logged in');
const tb = jb.get('_edgegate').value;
is(await stolen(tb), 200, 'bob\'s cookie works');
ok(cli('EXISTS', `${prefix}session:${sessionId(tb)}`) === '1', 'bob\'s record is in Redis (append-only, fsync always)');
process.kill(redis.pid, 'SIGKILL');
await redis.exited;
const rv = await admin({ cmd: 'revoke', session: sessionId(tb) });
is(rv.ok, true, `revoke with Redis dead is acknowledged (${JSON.stringify(rv)})`);
is(rv.durable, 'local', '... as "durable":"local"');
ok(typeof rv.warning === 'string' && /state_dir/.test(rv.warning), '... with a warning');
ok((await stolen(tb)) !== 200, 'stolen cookie with Redis dead: not served');
await eg.stop('SIGKILL');
await startRedis();
ok(cli('EXISTS', `${prefix}session:${sessionId(tb)}`) === '1', 'Redis came back with bob\'s record still in it');
eg = await startEdgegated(eg.config, { dir: eg.dir });
await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'discovery after restart' });
is(await stolen(tb), 401, 'after kill -9 and restart: the stolen cookie gets 401');
await waitFor(async () => cli('EXISTS', `${prefix}revoked:${sessionId(tb)}`) === '1', { what: 'the revoked marker in Redis', timeout: 30000 })
  .catch((e) => ok(false, e.message));
ok(cli('EXISTS', `${prefix}session:${sessionId(tb)}`) === '0', 'the pending revocation reached Redis: record gone, marker written');
is(await metric('edgegate_revocations_pending'), 0, 'nothing pending any more');
is(await stolen(tb), 401, 'still 401');
is(await stolen(ta), 401, 'alice\'s stolen cookie too');
await done();
