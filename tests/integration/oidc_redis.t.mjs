#!/usr/bin/env node
// oidc_redis.t.mjs - several edgegated nodes sharing a Redis store behind one nginx
// upstream (round robin): a login whose steps land on different nodes works, every
// node honours the session, and a revocation on one node reaches the others within
// seconds (cached entries are re-checked against the shared store).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ok, is, done, guard, request, freePort, tmpdir, spawnLogged, startEdgegated, startEcho, startNginx, waitFor, sleep, skipAll } from '../lib/harness.mjs';
import { Jar, browserLogin } from '../lib/oidc_helpers.mjs';
import { startOP } from '../lib/op.mjs';

if (!fs.existsSync('/usr/bin/redis-server')) skipAll('redis-server not installed');
guard(90000);
const dir = tmpdir('eg-redis-');
const redisPort = await freePort();
spawnLogged('/usr/bin/redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
  { logFile: path.join(dir, 'redis.log') });
await waitFor(() => new Promise((res) => { const c = net.connect(redisPort, '127.0.0.1', () => { c.end(); res(true); }); c.on('error', () => res(false)); }), { what: 'redis' });

const [opPort, ngxPort, p1, p2] = [await freePort(), await freePort(), await freePort(), await freePort()];
const pub = `http://127.0.0.1:${ngxPort}`;
const client = {
  client_id: 'edgegate-multi', client_secret: 'multi-secret-0123456789abcdef0123456789',
  redirect_uris: [`${pub}/oauth2/callback`], post_logout_redirect_uris: [`${pub}/`],
  backchannel_logout_uri: `${pub}/oauth2/backchannel-logout`,
};
const op = await startOP({ port: opPort, clients: [client] });
const echo = await startEcho();
const nodes = [];
for (const port of [p1, p2]) {
  const d = path.join(dir, `n${port}`);
  fs.mkdirSync(d);
  nodes.push(await startEdgegated({
    listen: `127.0.0.1:${port}`,
    public_url: pub,
    cookie: { secure: false, secret: 'shared-cookie-secret-0123456789abcdef' },
    store: { redis: `redis://127.0.0.1:${redisPort}/0`, prefix: `egtest${ngxPort}:` },
    oidc: { issuer: op.issuer, client_id: client.client_id, client_secret: client.client_secret, redirect_url: `${pub}/oauth2/callback` },
    routes: [{ path: '/', auth: 'session' }],
  }, { dir: d }));
}
for (const n of nodes) await waitFor(async () => (await request(`${n.url}/readyz`)).status === 200, { what: 'discovery' });
fs.mkdirSync(path.join(dir, 'ngx'));
await startNginx(`
  upstream edgegate { server 127.0.0.1:${p1}; server 127.0.0.1:${p2}; keepalive 8; }
  upstream echo { server 127.0.0.1:${echo.port}; }
  server {
    listen 127.0.0.1:${ngxPort};
    {{EDGEGATE_INCLUDE}}
    location / { {{EDGEGATE_PROTECT}} proxy_pass http://echo; }
  }`, { dir: path.join(dir, 'ngx'), waitPort: ngxPort });

const jar = new Jar();
const r0 = await browserLogin(jar, `${pub}/multi`, 'alice');
is(r0.status, 200, 'login through two round-robin nodes');
const ticket = jar.get('_edgegate')?.value;
for (const n of nodes) {
  const r = await request(`${n.url}/oauth2/userinfo`, { headers: { cookie: `_edgegate=${ticket}` } });
  is(r.status, 200, `node ${n.port} knows the session`);
}
let ok10 = true;
for (let i = 0; i < 10; i++) ok10 = ok10 && (await jar.fetch(`${pub}/multi`)).status === 200;
ok(ok10, 'ten requests across both nodes pass');

// revoke on node 1; node 2 notices within its re-check interval (5 s)
const res = await new Promise((resolve, reject) => {
  const c = net.connect(nodes[0].admin);
  let buf = '';
  c.on('data', (d) => { buf += d; if (buf.includes('\n')) { c.end(); resolve(JSON.parse(buf)); } });
  c.on('error', reject);
  c.write(JSON.stringify({ cmd: 'revoke', sub: 'alice' }) + '\n');
});
is(res.revoked, 1, 'revoked on node 1');
const t0 = Date.now();
await waitFor(async () => (await request(`${nodes[1].url}/oauth2/userinfo`, { headers: { cookie: `_edgegate=${ticket}` } })).status === 401,
  { what: 'node 2 to drop the session', timeout: 8000 }).catch((e) => ok(false, e.message));
ok(Date.now() - t0 < 7000, `node 2 dropped it after ${Date.now() - t0} ms`);
await sleep(10);
await done();
