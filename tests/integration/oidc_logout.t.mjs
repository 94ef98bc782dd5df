#!/usr/bin/env node
// oidc_logout.t.mjs - against the real OP: back-channel logout (the OP's logout
// ends our session within that one request; other users untouched; replayed and
// forged logout tokens refused), admin listing/revocation over the admin socket,
// and refresh with rotating refresh tokens (single-flight under concurrency).
import net from 'node:net';
import { ok, is, done, guard, request, sleep } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';

guard(90000);
const s = await startStack({ op: { accessTokenTTL: 4 }, oidc: { refresh_before: '2s' } });
const app = `${s.pub}/app/`;

function admin(req) {
  return new Promise((resolve, reject) => {
    const c = net.connect(s.eg.admin);
    let buf = '';
    c.on('data', (d) => { buf += d; if (buf.includes('\n')) { c.end(); resolve(JSON.parse(buf)); } });
    c.on('error', reject);
    c.write(JSON.stringify(req) + '\n');
  });
}
async function metric(name) {
  const r = await request(`${s.eg.url}/metrics`);
  const line = r.body.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

// Two users, logged in in two browsers.
const a = new Jar();
const b = new Jar();
let r = await browserLogin(a, app, 'alice');
is(r.status, 200, 'alice logged in');
r = await browserLogin(b, app, 'bob');
is(r.status, 200, 'bob logged in');

// --- refresh with rotation -------------------------------------------------------
await sleep(2600); // access token (4 s) now within refresh_before (2 s)
const before = await metric('edgegate_sessions_total{event="refreshed"}');
const many = await Promise.all(Array.from({ length: 8 }, () => a.fetch(app)));
ok(many.every((x) => x.status === 200), 'concurrent requests during refresh all pass', many.map((x) => x.status));
const after1 = await metric('edgegate_sessions_total{event="refreshed"}');
is(after1 - before, 1, 'exactly one refresh for 8 concurrent requests (single-flight)');
await sleep(2600);
r = await a.fetch(app);
is(r.status, 200, 'second refresh (rotated refresh token kept) succeeds');
const after2 = await metric('edgegate_sessions_total{event="refreshed"}');
is(after2 - after1, 1, 'second refresh happened');
is(JSON.parse(r.body).headers['x-auth-request-email'], 'alice@example.test', 'claims kept after refresh');

// --- admin socket ------------------------------------------------------------------
let res = await admin({ cmd: 'sessions' });
ok(res.ok && res.sessions.length >= 2, 'admin sessions lists the sessions', res);
res = await admin({ cmd: 'sessions', sub: 'bob' });
is(res.sessions?.length, 1, 'admin sessions --sub bob');

// --- back-channel logout --------------------------------------------------------------
// alice signs out at the OP (not through us): the OP calls our back-channel endpoint.
r = await a.follow(`${s.op.issuer}/session/end`);
const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(r.body);
ok(form, 'OP shows its sign-out confirmation', r.body.slice(0, 300));
const xsrf = /name="xsrf" value="([^"]+)"/.exec(r.body)?.[1];
const calls = s.op.stats.backchannelCalls;
r = await a.follow(new URL(form[1], s.op.issuer).toString(), { method: 'POST', form: { xsrf, logout: 'yes' } });
is(s.op.stats.backchannelCalls - calls, 1, 'OP delivered one logout_token', s.op.stats.backchannelErrors);
is(s.op.stats.lastLogoutStatus, 200, 'our back-channel endpoint answered 200');
r = await a.fetch(app);
is(r.status, 302, "alice's session ended within the OP's logout request");
r = await b.fetch(app);
is(r.status, 200, "bob's session untouched");

// replay of the same logout_token
r = await request(`${s.pub}/oauth2/backchannel-logout`, {
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: s.op.stats.lastLogoutBody,
});
is(r.status, 400, 'replayed logout_token refused');
ok(/replay/.test(r.body), 'reason: replayed', r.body);
for (const [name, body] of [
  ['no token', ''],
  ['garbage', 'logout_token=abc.def.ghi'],
  ['duplicate parameter', `${s.op.stats.lastLogoutBody}&${s.op.stats.lastLogoutBody}`],
  ['an id_token is not a logout_token', 'logout_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.'],
]) {
  r = await request(`${s.pub}/oauth2/backchannel-logout`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
  });
  is(r.status, 400, `back-channel: ${name} refused`);
}
r = await b.fetch(app);
is(r.status, 200, 'bob still in after the forged attempts');

// --- admin revocation ----------------------------------------------------------------
res = await admin({ cmd: 'revoke', sub: 'bob' });
is(res.revoked, 1, 'admin revoke --sub bob ended one session');
r = await b.fetch(app);
is(r.status, 302, "bob's session ended by the admin");
res = await admin({ cmd: 'revoke' });
is(res.ok, false, 'revoke without a selector is an error');
await done();
