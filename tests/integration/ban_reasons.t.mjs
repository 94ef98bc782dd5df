#!/usr/bin/env node
// ban_reasons.t.mjs - bans are for attacks, not for expiry (issue 11), through nginx with
// the real OP: a NAT of 50 users whose sessions expired (plus anonymous requests) and a
// single-page app polling with an expired session are never banned; a forged-ticket brute
// force is, and `bans` says why; a gate.never_ban source is never banned. Clients use
// distinct loopback source addresses; only nginx (127.0.0.1) is a trusted proxy.
import crypto from 'node:crypto';
import http from 'node:http';
import { ok, is, done, guard, sleep } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';
import { adminClient } from '../lib/daemon_checks.mjs';

guard(240000);
const THRESHOLD = 5;
const stack = await startStack({
  edgegate: {
    trusted_proxies: ['127.0.0.1/32'],
    cookie: { secure: false, idle: '3s', secret: 'cookie-secret-0123456789abcdef0123456789' },
    gate: { ban_threshold: THRESHOLD, ban_window: '60s', ban_time: '60s', verdict_rate: 100000, never_ban: ['127.0.0.55/32'] },
  },
});
const { pub, eg } = stack;

// GET through nginx from a given loopback source address
function from(src, url, headers = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, headers, localAddress: src, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}
const admin = adminClient(() => eg);
const forged = () => `${crypto.randomBytes(16).toString('base64url')}.${crypto.randomBytes(32).toString('base64url')}`;
const json = { accept: 'application/json' }; // an XHR client: a 401, no login redirect

// 50 users behind one NAT address log in (the logins themselves come from nginx's side)
const tickets = [];
const t0 = Date.now();
for (let i = 0; i < 50; i++) {
  const jar = new Jar();
  const r = await browserLogin(jar, `${pub}/app`, `user${i}`);
  if (r.status !== 200) { ok(false, `login ${i}: ${r.status}`); break; }
  tickets.push(jar.get('_edgegate').value);
}
is(tickets.length, 50, `50 users logged in (${Date.now() - t0} ms)`);
is(await from('127.0.0.77', `${pub}/app`, { ...json, cookie: `_edgegate=${tickets[tickets.length - 1]}` }), 200, 'a session works from the NAT address (idle 3s: the newest one)');
await sleep(4500); // idle: 3s, every session has expired

// the NAT: 50 expired sessions polling 3 times each, plus 30 anonymous requests
const codes = {};
for (let round = 0; round < 3; round++) {
  for (const t of tickets) {
    const c = await from('127.0.0.77', `${pub}/app`, { ...json, cookie: `_edgegate=${t}` });
    codes[c] = (codes[c] || 0) + 1;
  }
}
for (let i = 0; i < 30; i++) {
  const c = await from('127.0.0.77', `${pub}/app`, json);
  codes[c] = (codes[c] || 0) + 1;
}
is(JSON.stringify(codes), JSON.stringify({ 401: 180 }), `NAT of 50 expired sessions + anonymous: only 401s, never banned (${JSON.stringify(codes)})`);

// a single-page app polling with its (now expired) session, 100 times
let spa = 0;
for (let i = 0; i < 100; i++) spa += (await from('127.0.0.78', `${pub}/api/poll`, { ...json, cookie: `_edgegate=${tickets[1]}` })) === 401;
is(spa, 100, 'a polling client with an expired session gets 100 x 401, no ban');

// a forged-ticket brute force is banned at the threshold
const brute = [];
for (let i = 0; i < THRESHOLD + 3; i++) brute.push(await from('127.0.0.99', `${pub}/app`, { ...json, cookie: `_edgegate=${forged()}` }));
is(brute.slice(0, THRESHOLD).join(','), Array(THRESHOLD).fill(401).join(','), `forged tickets below the threshold: 401s (${brute.join(',')})`);
ok(brute.slice(THRESHOLD).every((c) => c === 403), 'then the brute force is banned (403)');
is(await from('127.0.0.99', `${pub}/app`, { ...json, cookie: `_edgegate=${tickets[2]}` }), 403, 'the banned source is refused even with a genuine ticket');
// the never_ban source (the admin's own address) is never banned
const adm = [];
for (let i = 0; i < THRESHOLD + 3; i++) adm.push(await from('127.0.0.55', `${pub}/app`, { ...json, cookie: `_edgegate=${forged()}` }));
ok(adm.every((c) => c === 401), `gate.never_ban source: forged tickets are refused but never banned (${adm.join(',')})`);

const bans = (await admin({ cmd: 'bans' })).bans;
is(bans.length, 1, `exactly one ban (${JSON.stringify(bans)})`);
const b = bans[0] || {};
is(b.prefix, '127.0.0.99', 'the brute-forcing source is the one banned');
is(JSON.stringify(b.reasons), JSON.stringify({ forged_session: THRESHOLD }), 'bans says why: forged_session x threshold');
ok(b.first_offense > 0 && b.last_offense >= b.first_offense && b.last_offense <= Date.now() / 1000 + 1,
  `bans shows the first and last offence (${b.first_offense}..${b.last_offense})`);
const m = await (await fetch(`${eg.url}/metrics`)).text();
ok(/edgegate_verdicts_total\{result="unauthenticated",reason="session_ended"\} (\d+)/.test(m) &&
  Number(m.match(/reason="session_ended"\} (\d+)/)[1]) >= 250, 'metrics: ended sessions counted as session_ended');
ok(/reason="forged_session"\} (\d+)/.test(m), 'metrics: forged tickets counted as forged_session');
await done();
