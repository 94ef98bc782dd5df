#!/usr/bin/env node
// oidc_demo.t.mjs - `make demo` works as the README promises: tools/demo/run.sh
// starts OP + echo + nginx + edgegated, prints the URL and the login; alice logs in
// and sees her headers, bob is forbidden /admin/, Ctrl-C stops everything.
import { spawn, execFileSync } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { ok, is, done, guard, freePort, ROOT, EDGEGATED, waitFor, portOpen, onCleanup } from '../lib/harness.mjs';
import { Jar, browserLogin } from '../lib/oidc_helpers.mjs';

guard(60000);
const port = await freePort();
const proc = spawn(path.join(ROOT, 'tools/demo/run.sh'), [], {
  env: { ...process.env, DEMO_PORT: String(port), EDGEGATED, ASAN_OPTIONS: 'detect_leaks=0' },
  stdio: ['ignore', 'pipe', 'pipe'], detached: true,
});
onCleanup(() => { try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } });
let out = '';
proc.stdout.on('data', (d) => { out += d; });
proc.stderr.on('data', (d) => { out += d; });
const exited = new Promise((r) => proc.on('exit', (code, sig) => r({ code, sig })));

await waitFor(() => /Ctrl-C stops everything/.test(out), { timeout: 30000, what: 'the demo banner' })
  .catch((e) => ok(false, e.message, out));
const url = /open\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1];
is(url, `http://127.0.0.1:${port}/`, 'prints the URL to open');
ok(/log in as\s+alice/.test(out), 'prints the login to use');
const logs = /Logs: (\S+)/.exec(out)?.[1];

const alice = new Jar();
let r = await browserLogin(alice, `${url}hello`, 'alice');
is(r.status, 200, 'alice logs in through the demo');
is(JSON.parse(r.body).headers['x-auth-request-email'], 'alice@example.test', 'the echo shows X-Auth-Request-Email');
r = await alice.fetch(`${url}admin/`);
is(r.status, 200, 'alice (group ops) may open /admin/');
const bob = new Jar();
r = await browserLogin(bob, `${url}hello`, 'bob');
is(r.status, 200, 'bob logs in');
r = await bob.fetch(`${url}admin/`);
is(r.status, 403, 'bob (no ops group) is forbidden /admin/');
ok(/Access denied/.test(r.body) && /bob@example\.test/.test(r.body) && /Request id/.test(r.body),
  "bob gets edgegated's 403 page with his identity and a request id", r.body);
const demoFiles = fs.readdirSync(path.join(ROOT, 'tools/demo')).map((f) => fs.readFileSync(path.join(ROOT, 'tools/demo', f), 'utf8'));
ok(!demoFiles.some((t) => /tests\/lib|from '\.\.\/\.\.\/tests/.test(t)), 'the demo imports nothing from tests/');

// As root the demo attaches the XDP gate to lo: the statically denied source cannot
// even complete a TCP handshake with nginx, while 127.0.0.1 is served.
const root = process.getuid() === 0;
const lo = () => execFileSync('ip', ['link', 'show', 'lo']).toString();
const connectFrom = (localAddress) => new Promise((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port, localAddress, timeout: 1500 });
  s.on('connect', () => { s.destroy(); resolve(true); });
  s.on('timeout', () => { s.destroy(); resolve(false); });
  s.on('error', () => resolve(false));
});
if (root) {
  ok(/XDP edge gate\s+attached to lo/.test(out), 'the banner says the XDP gate is attached to lo', out);
  ok(/xdpgeneric/.test(lo()), 'lo carries the XDP program (generic mode)');
  is(await connectFrom('127.0.0.66'), false, 'a connect from the denied 127.0.0.66 is dropped in XDP');
  is(await connectFrom('127.0.0.1'), true, 'a connect from 127.0.0.1 is served');
} else {
  ok(/XDP edge gate\s+off/.test(out), 'without root the banner says the gate is off');
}

process.kill(proc.pid, 'SIGINT');
const ex = await exited;
is(ex.code, 0, 'Ctrl-C stops the demo cleanly');
ok(!(await portOpen(port)), 'nginx is gone');
ok(logs && !fs.existsSync(logs), 'temporary directory removed');
if (root) ok(!/xdp/.test(lo()), 'the XDP program is detached from lo after Ctrl-C', lo());
await done();
