// redis.mjs - what the multi-node Redis tests (redis_*.t.mjs) share: the unprivileged
// test user, a private redis-server, the OP client both nodes log in through, the two
// daemons, an nginx in front of each, and the admin-socket client.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { onCleanup, request, spawnLogged, startEdgegated, startNginx, waitFor } from './harness.mjs';
import { startOP } from './op.mjs';

export { TEST_USER, ensureTestUser } from './harness.mjs'; // the redis tests import them from here

// redis-server on 127.0.0.1:port with its data in dir, no RDB snapshots; persistence
// gives the AOF options. Resolves once it accepts connections; returns the process.
export async function startRedis({ port, dir, persistence = ['--appendonly', 'no'] }) {
  const proc = spawnLogged('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir],
    { logFile: path.join(dir, 'redis.log') });
  await waitFor(() => new Promise((res) => { const c = net.connect(port, '127.0.0.1', () => { c.end(); res(true); }); c.on('error', () => res(false)); }), { what: 'redis' });
  return proc;
}

// An ES256 JWKS in dir/jwks.json (readable by the dropped user) and a maker of tokens
// with the right header and issuer but a random signature: bad bearer tokens.
export function badTokenMaker(dir, iss) {
  const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  fs.chmodSync(path.join(dir, 'jwks.json'), 0o644);
  return (i) => {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `${b64({ alg: 'ES256', kid: 'k1', typ: 'JWT' })}.${b64({ sub: 'mallory', iss, n: i, exp: Math.floor(Date.now() / 1000) + 600 })}.${crypto.randomBytes(64).toString('base64url')}`;
  };
}

// The OP on opPort with one client (edgegate-<name>) that may come back to every public URL.
export async function startSharedOP(name, opPort, pubs) {
  const client = {
    client_id: `edgegate-${name}`, client_secret: `${name}-secret-0123456789abcdef0123456789`,
    redirect_uris: pubs.map((p) => `${p}/oauth2/callback`), post_logout_redirect_uris: pubs.map((p) => `${p}/`),
  };
  const op = await startOP({ port: opPort, clients: [client] });
  onCleanup(() => op.stop());
  return { op, client };
}

// One daemon per [name, port, pub] with config(name, port, pub), each in dir/<name>;
// resolves once every one is ready (OIDC discovery done).
export async function startNodes(dir, specs, config) {
  const nodes = {};
  for (const [name, port, pub] of specs) {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    nodes[name] = await startEdgegated(config(name, port, pub), { dir: d });
  }
  for (const n of Object.values(nodes)) await waitFor(async () => (await request(`${n.url}/readyz`)).status === 200, { what: 'discovery' });
  return nodes;
}

// An nginx per [name, nginx port, daemon port] (in dir/ngx<name>) protecting everything
// in front of the echo upstream; serverLines go into each server block.
export async function startFronts(dir, echoPort, fronts, serverLines = []) {
  for (const [name, ngx, eg] of fronts) {
    await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream echo { server 127.0.0.1:${echoPort}; keepalive 4; }
  server {
    listen 127.0.0.1:${ngx};
${serverLines.map((l) => `    ${l}\n`).join('')}    {{EDGEGATE_INCLUDE}}
    location / { {{EDGEGATE_PROTECT}} proxy_pass http://echo; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }`, { dir: path.join(dir, `ngx${name}`), edgegate: `127.0.0.1:${eg}`, waitPort: ngx });
  }
}

// One request on a node's admin socket; resolves the JSON answer, {} when there is none.
export function admin(node, req) {
  return new Promise((resolve) => {
    const c = net.connect(node.admin);
    let buf = '';
    c.on('data', (d) => { buf += d; if (buf.includes('\n')) { c.end(); try { resolve(JSON.parse(buf)); } catch { resolve({}); } } });
    c.on('error', () => resolve({}));
    c.write(`${JSON.stringify(req)}\n`);
  });
}
