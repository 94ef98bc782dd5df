#!/usr/bin/env node
// lmdb_full.t.mjs - the embedded store full (LMDB MDB_MAP_FULL, a tiny store.map_size), the
// real OP and nginx: users log in until the store takes no more; revoking one of them (admin)
// and signing another out are acknowledged as recorded locally (state_dir), their cookies
// get 401 at once, after a daemon restart with the store still full, and after a restart
// with a bigger map the pending revocations reach the store (issue 11).
import fs from 'node:fs';
import path from 'node:path';
import { ok, is, done, guard, request, startEdgegated, waitFor } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';
import { adminClient, metricReader, sessionId, stolenProbe, signOutAt } from '../lib/daemon_checks.mjs';

guard(240000);
const stack = await startStack({ edgegate: { store: { map_size: 131072 } } });
const { pub } = stack;
let eg = stack.eg;

const admin = adminClient(() => eg);
const metric = metricReader(() => eg);
const stolen = stolenProbe(pub);
const signOut = signOutAt(pub);

// log in until the store is full (a login then fails)
const users = [];
let full = false;
for (let i = 0; i < 400 && !full; i++) {
  const jar = new Jar();
  let r;
  try { r = await browserLogin(jar, `${pub}/app`, `user${i}`); } catch { r = { status: 0 }; }
  const t = jar.get('_edgegate')?.value;
  if (r.status === 200 && t) users.push({ jar, t });
  else full = true;
}
ok(full, `the store is full after ${users.length} logins (store.map_size 128 KiB)`);
ok(users.length >= 3, 'at least three users got in before');
for (const u of users.slice(0, 3)) is(await stolen(u.t), 200, 'an earlier session still works');

// revocations until the store refuses one (a revocation that fits in freed pages is
// recorded there): each acknowledged, each never served again
const revoked = [];
const local = [];
for (const u of users.slice(0, users.length - 2)) {
  const rv = await admin({ cmd: 'revoke', session: sessionId(u.t) });
  if (!rv.ok) { ok(false, `revoke refused: ${JSON.stringify(rv)}`); break; }
  revoked.push(u);
  if (rv.durable === 'local') {
    local.push(u);
    ok(/state_dir/.test(rv.warning || ''), `revoke with the store full: "durable":"local" and a warning (after ${revoked.length - 1} that still fit)`);
    break;
  }
  is(rv.durable, 'store', 'a revocation that still fits is recorded in the store');
}
is(local.length, 1, 'a revocation was refused by the full store and recorded in state_dir');
const bad = [];
for (const u of revoked) if ((await stolen(u.t)) !== 401) bad.push(sessionId(u.t).slice(0, 12));
is(bad.length, 0, `every revoked cookie gets 401 (${revoked.length})`);
const b = users[users.length - 2], c = users[users.length - 1];
const so = await signOut(b.jar);
ok(so.status === 302 || so.status === 303, `sign-out with the store full: ${so.status}`);
is(so.headers['edgegate-revocation'], 'local', 'sign-out answer: Edgegate-Revocation: local');
revoked.push(b);
local.push(b);
is(await stolen(b.t), 401, 'the signed-out cookie: 401');
is(await metric('edgegate_revocations_pending'), local.length, `metrics: ${local.length} revocations pending`);
ok((await metric('edgegate_store_write_failures_total')) >= local.length, 'metrics: store write failures counted');

// restart, the store still full: the tombstones hold
await eg.stop('SIGKILL');
eg = await startEdgegated(eg.config, { dir: eg.dir });
await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'discovery after restart' });
let served = [];
for (const u of revoked) if ((await stolen(u.t)) !== 401) served.push(u);
is(served.length, 0, `after kill -9 + restart (store full): all ${revoked.length} revoked cookies get 401`);
is(await stolen(c.t), 200, 'a session that was not revoked still works');

// restart with a bigger map: the pending revocations reach the store
await eg.stop('SIGTERM');
const cfg = { ...eg.config, store: { map_size: 16 << 20 } };
eg = await startEdgegated(cfg, { dir: eg.dir });
await waitFor(async () => (await metric('edgegate_revocations_pending')) === 0, { what: 'the pending revocations to reach the store', timeout: 20000 })
  .catch((e) => ok(false, e.message));
const tombs = fs.readFileSync(path.join(eg.config.state_dir, 'revoked.tombs'), 'utf8');
ok(local.every((u) => tombs.includes(`"confirm":"${sessionId(u.t)}"`)), 'revoked.tombs records that the store took them');
served = [];
for (const u of revoked) if ((await stolen(u.t)) !== 401) served.push(u);
is(served.length, 0, 'all revoked cookies: still 401');
const sessions = (await admin({ cmd: 'sessions' })).sessions.map((x) => x.session_id);
ok(revoked.every((u) => !sessions.includes(sessionId(u.t))), 'their records are gone from the store');
is(await stolen(c.t), 200, 'the session that was not revoked still works');
await done();
