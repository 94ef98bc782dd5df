#!/usr/bin/env node
// metrics_access.t.mjs - who may read GET /metrics: the peers edgegated trusts (trusted_proxies,
// default loopback 127.0.0.1 and ::1; the unix socket) and the addresses in metrics.allow, not
// any address that reaches the listener (127.0.0.2 here, a local user's or container's
// address). /healthz and /readyz stay open to every peer (load balancers). The daemon is
// started as root and drops to its user; --check names the key path of a bad metrics entry.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  ok, is, done, guard, startEdgegated, tmpdir, ensureTestUser, TEST_USER, EDGEGATED,
} from '../lib/harness.mjs';

guard(60000);
ensureTestUser();

// a GET from a chosen local address
const get = (url, localAddress, socketPath) => new Promise((resolve, reject) => {
  const u = socketPath ? null : new URL(url);
  const req = http.request(socketPath ? { socketPath, path: url, agent: false }
    : { host: u.hostname, port: u.port, path: u.pathname, localAddress, agent: false }, (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => resolve({ status: res.statusCode, body }));
  });
  req.on('error', reject);
  req.setTimeout(10000, () => req.destroy(new Error('timeout')));
  req.end();
});

const base = { user: TEST_USER, routes: [{ path: '/', auth: 'public' }] };
const eg = await startEdgegated(base);
let r = await get(`${eg.url}/metrics`, '127.0.0.1');
ok(r.status === 200 && /edgegate_up 1/.test(r.body), 'a trusted peer (127.0.0.1) reads /metrics', r.status);
r = await get(`${eg.url}/metrics`, '127.0.0.2');
is(r.status, 403, 'another local address (127.0.0.2) may not read /metrics');
ok(!/edgegate_/.test(r.body), 'and its answer carries no series', r.body);
for (const p of ['/healthz', '/readyz']) {
  r = await get(`${eg.url}${p}`, '127.0.0.2');
  is(r.status, 200, `${p} still answers 127.0.0.2 (load balancers, probes)`);
}
r = await get(`${eg.url}/metrics`, '127.0.0.1');
ok(/edgegate_http_requests_total\{endpoint="\/metrics"\}/.test(r.body), 'the refused read is counted like any request');

// metrics.allow: a Prometheus server's address
const eg2 = await startEdgegated({ ...base, metrics: { allow: ['127.0.0.3/32'] } });
r = await get(`${eg2.url}/metrics`, '127.0.0.3');
ok(r.status === 200 && /edgegate_up 1/.test(r.body), 'metrics.allow ["127.0.0.3/32"]: 127.0.0.3 reads /metrics', r.status);
is((await get(`${eg2.url}/metrics`, '127.0.0.2')).status, 403, 'metrics.allow: 127.0.0.2 still may not');
is((await get(`${eg2.url}/metrics`, '127.0.0.1')).status, 200, 'metrics.allow: the trusted proxies still may');

// the unix socket (mode 0660, the proxy's group): its peers are trusted
const dir = tmpdir('metrics-unix-');
fs.chmodSync(dir, 0o755);
const sock = path.join(dir, 'auth.sock');
const eg3 = await startEdgegated({ ...base, listen: `unix:${sock}` }, { wait: null });
const t0 = Date.now();
while (!fs.existsSync(sock) && Date.now() - t0 < 15000) await new Promise((res) => setTimeout(res, 50));
r = await get('/metrics', null, sock);
ok(r.status === 200 && /edgegate_up 1/.test(r.body), 'a unix-socket peer reads /metrics', r.status);
void eg3;

// --check: the key path of a bad entry
const check = (cfg) => {
  const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(f, JSON.stringify({ listen: '127.0.0.1:9180', ...cfg }));
  try { execFileSync(EDGEGATED, ['--config', f, '--check'], { stdio: 'pipe', env: { ASAN_OPTIONS: 'detect_leaks=0' } }); return { code: 0, err: '' }; } catch (e) { return { code: e.status, err: String(e.stderr) }; }
};
r = check({ metrics: { allow: ['10.0.0.0/8', 'prometheus.internal'] } });
ok(r.code === 1 && /metrics\.allow\[1\]/.test(r.err), '--check: a bad metrics.allow entry names metrics.allow[1]', r);
r = check({ metrics: { listen: '127.0.0.1:9181' } });
ok(r.code === 1 && /metrics\.listen/.test(r.err), '--check: an unknown metrics key names metrics.listen', r);
r = check({ metrics: { allow: ['192.0.2.10', '2001:db8::/32'] } });
is(r.code, 0, '--check: control: addresses and prefixes of both families pass');

await done();
