#!/usr/bin/env node
// admin_concurrent.t.mjs - the admin socket of a real edgegated serves clients side by
// side: while one client holds the socket open sending nothing and another drips a
// partial line, `edgegatectl status` and `edgegatectl revoke` answer within 500 ms (the
// revocation acknowledged only once recorded: its answer names where); past the client
// bound a client is refused at once with a clear error, and a freed slot serves again.
import net from 'node:net';
import { ok, is, done, guard, ctlAsync, sleep, waitFor } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';
import { sessionId, stolenProbe } from '../lib/daemon_checks.mjs';

guard(60000);
const MAX_CLIENTS = 16; // EG_ADMIN_MAX_CLIENTS (userspace/http/admin.h)
// the OIDC stack (real OP, nginx): `revoke` is the session module's command
const { eg, pub } = await startStack();
const stolen = stolenProbe(pub);
const jar = new Jar();
is((await browserLogin(jar, `${pub}/app`, 'alice')).status, 200, 'alice logged in');
const ticket = jar.get('_edgegate').value;
is(await stolen(ticket), 200, 'control: her cookie is served');
const ctl = (...args) => ctlAsync(['--admin-socket', eg.admin, ...args]);
const timed = async (...args) => { const t0 = Date.now(); const r = await ctl(...args); return { ...r, ms: Date.now() - t0 }; };
const connect = () => new Promise((resolve, reject) => {
  const s = net.connect(eg.admin, () => resolve(s));
  s.on('error', reject);
});

let r = await timed('status');
is(r.code, 0, 'control: status answers with no other client');

const idle = await connect();
const slow = await connect();
slow.write('{"cmd":');
const drip = setInterval(() => slow.write(' '), 100);
await sleep(200);
for (let i = 0; i < 3; i++) {
  r = await timed('status');
  ok(r.code === 0 && r.ms < 500, `status answers in ${r.ms} ms beside an idle and a dripping client`, r);
}
r = await timed('revoke', '--session', sessionId(ticket));
ok(r.ms < 500, `revoke answers in ${r.ms} ms beside an idle and a dripping client`, r);
ok(r.code === 0 && /revoked 1/.test(r.stdout), 'alice\'s session is revoked', r);
ok((await stolen(ticket)) !== 200, 'acknowledged only once recorded: her cookie is refused right after the answer');
r = await timed('sessions', '--sub', 'alice', '--json');
ok(r.code === 0 && r.ms < 500, `sessions answers in ${r.ms} ms too`, r);
clearInterval(drip);
idle.destroy();
slow.destroy();

// the bound: MAX_CLIENTS held-open clients, the next one is refused at once
const held = [];
for (let i = 0; i < MAX_CLIENTS; i++) held.push(await connect());
// all taken once one of them gets an answer
const first = await new Promise((resolve) => {
  let buf = '';
  held[0].on('data', (d) => { buf += d; if (buf.includes('\n')) resolve(JSON.parse(buf)); });
  held[0].write('{"cmd":"help"}\n');
});
ok(first.ok === true, 'the held clients are served');
r = await timed('status');
is(r.code, 1, `client ${MAX_CLIENTS + 1} is refused`);
ok(/too many clients/.test(r.stderr) && r.ms < 500, `with a clear error, at once (${r.ms} ms)`, r);
held.pop().destroy();
await waitFor(async () => (await ctl('status')).code === 0, { what: 'a freed slot serving again', timeout: 3000 });
ok(true, 'a freed slot serves again');
for (const s of held) s.destroy();
r = await timed('status');
is(r.code, 0, 'status after every client left');
ok(eg.proc.exitCode === null, 'the daemon is still running');
await eg.stop();
await done();
