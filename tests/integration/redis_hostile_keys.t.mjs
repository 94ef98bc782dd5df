#!/usr/bin/env node
// redis_hostile_keys.t.mjs - client-chosen bytes never become Redis keys or patterns
// (mod_auth_openidc 2.4.9: a crafted cache key crashed it on an unencrypted Redis). Real
// nginx with the shipped snippets, edgegated started as root dropping to its user, a real
// Redis store, a real OP login. Hostile session cookies and front-channel logout sids
// (glob characters, RESP framing, CR/LF escapes, long values) go through nginx; afterwards
// every key in Redis is one edgegated derived itself (hex digests and ids), the daemon and
// Redis are alive, and the honest session still works: `sid=*` ended no one.
import fs from 'node:fs';
import net from 'node:net';
import { ok, is, done, guard, diag, freePort, request, skipAll, tmpdir } from '../lib/harness.mjs';
import { rawGet } from '../lib/rawhttp.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';
import { TEST_USER, ensureTestUser, startRedis } from '../lib/redis.mjs';

if (!fs.existsSync('/usr/bin/redis-server')) skipAll('redis-server not installed');
if (process.getuid() !== 0) skipAll('needs root (the daemon starts as root and drops to its user)');
guard(120000);
ensureTestUser(TEST_USER);

const redisPort = await freePort();
const prefix = `eghk${redisPort}:`;
const rdir = tmpdir('eg-rhk-');
await startRedis({ port: redisPort, dir: rdir });

// One RESP command to Redis; returns the raw reply text.
function redis(...args) {
  return new Promise((resolve, reject) => {
    const c = net.connect(redisPort, '127.0.0.1');
    let buf = '';
    c.on('connect', () => c.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    c.on('data', (d) => { buf += d.toString('latin1'); if (/\r\n$/.test(buf)) { c.end(); } });
    c.on('end', () => resolve(buf));
    c.on('error', reject);
    setTimeout(() => { c.destroy(); resolve(buf); }, 3000);
  });
}
const keys = async () => (await redis('KEYS', `${prefix}*`)).split('\r\n').filter((l) => l.startsWith(prefix));

const s = await startStack({ edgegate: { user: TEST_USER, store: { redis: `redis://127.0.0.1:${redisPort}/0`, prefix } } });
const jar = new Jar();
const r0 = await browserLogin(jar, `${s.pub}/x`);
ok(r0.status === 200 && /"url"/.test(r0.body), 'control: alice logs in through nginx (Redis store)', r0.status);
const cookie = jar.header(`${s.pub}/x`);
const served = async () => (await rawGet(s.ngxPort, '/x', ['Host: 127.0.0.1', `Cookie: ${cookie}`])).status === 200;
ok(await served(), 'control: her session is served');
const before = await keys();
ok(before.length > 0, `control: the store holds keys under ${prefix} (${before.length})`);

// hostile session cookies: each is a login (302) or a refusal, never a 5xx
const name = cookie.split('=')[0];
const hostileTickets = ['*', '?', '[a-z]*', '\\*', '*\r\n', `${'A'.repeat(22)}.*`, `*.${'B'.repeat(43)}`, '%0D%0AFLUSHALL%0D%0A',
  '*1%0D%0A$8%0D%0AFLUSHALL', `${'A'.repeat(22)}.${'B'.repeat(43)}%00`, '..%2F..%2F', 'A'.repeat(3000), '"*"', `${prefix}session:*`];
const bad = [];
for (const t of hostileTickets) {
  if (/[\r\n]/.test(t)) continue; // not a header value
  const r = await rawGet(s.ngxPort, '/x', ['Host: 127.0.0.1', `Cookie: ${name}=${t}`]);
  if (![302, 400, 401].includes(r.status)) bad.push(`${JSON.stringify(t)} -> ${r.status}`);
}
is(bad.length, 0, `${hostileTickets.length - 1} hostile session cookies through nginx: a login or a refusal each`);
if (bad.length) diag(bad.join('\n'));

// hostile front-channel logout sids: glob patterns must not match anyone's sid index
const iss = encodeURIComponent(s.op.issuer);
const statuses = [];
for (const sid of ['*', '%2A', '?*', '[^x]*', '%5C*', '%0D%0A*', '*%00', 'a'.repeat(250) + '*', encodeURIComponent(`${prefix}*`), '%2A%3A%2A']) {
  const r = await rawGet(s.ngxPort, `/oauth2/frontchannel-logout?iss=${iss}&sid=${sid}`, ['Host: 127.0.0.1']);
  statuses.push(r.status);
}
ok(statuses.every((x) => x === 200 || x === 400), `front-channel logout with glob/framing sids: 200 (nothing to end) or 400 each (${statuses})`);
ok(await served(), 'after sid=* and the other glob sids alice\'s session still works: no pattern ended it');

// every key edgegated wrote is its own: prefix, a namespace, then hex/base64url/':' only
const after = await keys();
if (process.env.EG_DEBUG_KEYS) diag(after.join("\n"));
const foreign = after.filter((k) => !/^[a-z]+:[A-Za-z0-9_:.\-]*$/.test(k.slice(prefix.length)) || /[*?[\]\\\r\n\0%"]/.test(k));
is(foreign.length, 0, `no Redis key carries client bytes (${after.length} keys)`);
if (foreign.length) diag(foreign.slice(0, 10).join('\n'));
ok(/PONG/.test(await redis('PING')), 'Redis is alive (no command was injected)');
const alive = await request(`${s.eg.url}/healthz`).then((x) => x.status === 200, () => false);
ok(alive && s.eg.proc.exitCode === null, 'edgegated is alive at the end', s.eg.log());
await done();
