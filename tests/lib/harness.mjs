// harness.mjs - shared helpers for integration tests: TAP output, free ports, and
// real processes (nginx, edgegated, an echo upstream, a JWKS server) that are cleaned
// up when the test exits, whatever the outcome.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, freePort, portOpen } from '../../tools/demo/stack.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const EDGEGATED = process.env.EDGEGATED || path.join(ROOT, 'build/asan/edgegated');
export const EDGEGATECTL = process.env.EDGEGATECTL || path.join(ROOT, 'build/asan/edgegatectl');

// ---- TAP -------------------------------------------------------------------------------
let n = 0;
let failed = 0;
const children = [];
const cleanups = [];

export function ok(cond, name, diag) {
  n++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond) {
    failed++;
    if (diag !== undefined) {
      const text = typeof diag === 'string' ? diag : JSON.stringify(diag, null, 2);
      for (const line of String(text).split('\n')) console.log(`# ${line}`);
    }
  }
  return cond;
}

export function is(got, want, name) {
  return ok(got === want, name, `got: ${JSON.stringify(got)}\nwant: ${JSON.stringify(want)}`);
}

export function diag(msg) {
  for (const line of String(msg).split('\n')) console.log(`# ${line}`);
}

// Skips the whole file outside CI; fails it under CI=true (a test that cannot run
// in CI is a failure there, not a pass).
export function skipAll(reason) {
  if (process.env.CI === 'true') {
    console.log('1..1');
    console.log(`not ok 1 - cannot run: ${reason}`);
    process.exit(1);
  }
  console.log(`1..0 # SKIP ${reason}`);
  process.exit(0);
}

export function onCleanup(fn) {
  cleanups.push(fn);
}

async function cleanup() {
  for (const fn of cleanups.splice(0).reverse()) {
    try { await fn(); } catch { /* best effort */ }
  }
  for (const c of children.splice(0)) {
    try { process.kill(-c.pid, 'SIGTERM'); } catch { /* gone */ }
  }
}

export async function done() {
  await cleanup();
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}

// Any crash or timeout still cleans up and reports.
export function guard(timeoutMs = 120000) {
  const t = setTimeout(async () => {
    ok(false, `test timed out after ${timeoutMs} ms`);
    await done();
  }, timeoutMs);
  t.unref();
  process.on('uncaughtException', async (e) => { ok(false, `uncaught: ${e.stack || e}`); await done(); });
  process.on('unhandledRejection', async (e) => { ok(false, `unhandled: ${e && e.stack || e}`); await done(); });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, async () => { await cleanup(); process.exit(1); });
}

// ---- processes --------------------------------------------------------------------------
export function tmpdir(prefix = 'eg-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(d, 0o755); // nginx workers (www-data) must reach unix sockets in here
  onCleanup(() => { if (!process.env.EG_KEEP_TMP) fs.rmSync(d, { recursive: true, force: true }); });
  return d;
}

export { freePort, portOpen };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(fn, { timeout = 15000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try { if (await fn()) return true; } catch (e) { last = e; }
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

// The demo's launcher (tools/demo/stack.mjs), plus: the process group is killed when the
// test ends.
export function spawnLogged(cmd, args, { env, logFile, cwd } = {}) {
  const child = launch(cmd, args, { env, logFile, cwd });
  children.push(child);
  return child;
}

export function tail(file, lines = 30) {
  try { return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n'); } catch { return ''; }
}

// edgegated with a config object. Returns { url, port, socket, admin, proc, config, file, stop() }.
// wrap: a command prefix that execs edgegated (e.g. setpriv --bounding-set ... --).
export async function startEdgegated(config, { dir = tmpdir('egd-'), wait = '/healthz', wrap = null } = {}) {
  const port = config.listen ? null : await freePort();
  const cfg = {
    listen: `127.0.0.1:${port}`,
    admin_socket: path.join(dir, 'admin.sock'),
    state_dir: path.join(dir, 'state'),
    ...config,
  };
  const file = path.join(dir, 'edgegate.json');
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  const logFile = path.join(dir, 'edgegated.log');
  const proc = spawnLogged(wrap ? wrap[0] : EDGEGATED, [...(wrap ? [...wrap.slice(1), EDGEGATED] : []), '--config', file], {
    logFile,
    env: { ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' },
  });
  const listen = Array.isArray(cfg.listen) ? cfg.listen[0] : cfg.listen;
  const url = listen.startsWith('unix:') ? null : `http://${listen}`;
  const g = { url, port: url ? Number(listen.split(':').pop()) : null, admin: cfg.admin_socket, proc, config: cfg, file, logFile, dir };
  g.log = () => tail(logFile, 60);
  g.stop = async (sig = 'SIGTERM') => {
    try { process.kill(proc.pid, sig); } catch { /* gone */ }
    return proc.exited;
  };
  if (url && wait) {
    try {
      await waitFor(async () => (await request(`${url}${wait}`)).status === 200, { what: 'edgegated', timeout: 20000 });
    } catch (e) {
      throw new Error(`${e.message}\n${g.log()}`);
    }
  }
  return g;
}

// nginx with the given http{} body (server blocks etc.). The shipped includes are
// available as {{EDGEGATE_INCLUDE}} / {{EDGEGATE_PROTECT}}; {{EDGEGATE_UPSTREAM}} is a
// server line for the given edgegated listen address.
// workerConnections: nginx's worker_connections (a burst of N requests through an auth
// subrequest and a proxied upstream holds about 3N); past 1024 the descriptor limit follows.
export async function startNginx(httpBody, { dir = tmpdir('ngx-'), edgegate, waitPort, workerConnections = 1024 } = {}) {
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const body = httpBody
    .replaceAll('{{EDGEGATE_INCLUDE}}', `include ${ROOT}/tools/nginx/edgegate.conf;`)
    .replaceAll('{{EDGEGATE_PROTECT}}', `include ${ROOT}/tools/nginx/edgegate-protect.conf;`)
    .replaceAll('{{EDGEGATE_UPSTREAM}}', edgegate
      ? `upstream edgegate { server ${edgegate.replace(/^unix:/, 'unix:')}; keepalive 16; }` : '');
  const conf = `
daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log info;
${workerConnections > 1024 ? `worker_rlimit_nofile ${2 * workerConnections};` : ''}
events { worker_connections ${workerConnections}; }
http {
  access_log ${dir}/logs/access.log;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc;
  uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
  ${body}
}
`;
  const file = path.join(dir, 'nginx.conf');
  fs.writeFileSync(file, conf);
  try {
    execFileSync('nginx', ['-t', '-q', '-p', dir, '-c', file], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`nginx -t failed: ${e.stderr}\n${conf}`);
  }
  const proc = spawnLogged('nginx', ['-p', dir, '-c', file], { logFile: path.join(dir, 'logs/stderr.log') });
  if (waitPort) await waitFor(() => portOpen(waitPort), { what: `nginx on ${waitPort}` });
  return { proc, dir, errorLog: () => tail(path.join(dir, 'logs/error.log'), 40) };
}


// The common protected site: nginx on a free port with the shipped includes, every location
// protected and proxied to the app on appPort. Returns { port, ...startNginx's result }.
export async function startProtectedSite({ appPort, edgegate, dir } = {}) {
  const port = await freePort();
  const ngx = await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream app { server 127.0.0.1:${appPort}; }
  server {
    listen 127.0.0.1:${port};
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://app;
    }
  }`, { dir, edgegate, waitPort: port });
  return { port, ...ngx };
}

// The system user the daemon drops to when a test runs it as root (its `user` key).
export const TEST_USER = 'edgegate-test';
export function ensureTestUser(user = TEST_USER) {
  try { execFileSync('id', [user], { stdio: 'ignore' }); } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
  }
}

// An upstream that answers every request with a JSON echo of what it received.
export async function startEcho() {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }));
  return { port, server };
}

// A JWKS endpoint whose contents the test can change (key rotation) and count.
export async function startJwksServer(initial) {
  const port = await freePort();
  const state = { jwks: initial, hits: 0, down: false };
  const server = http.createServer((req, res) => {
    state.hits++;
    if (state.down) { res.writeHead(503); res.end('down'); return; }
    const body = JSON.stringify(state.jwks);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }));
  return { port, url: `http://127.0.0.1:${port}/jwks.json`, state };
}

// A plain HTTP request (no keep-alive pooling surprises). Returns { status, headers, body }.
export function request(url, { method = 'GET', headers = {}, body, socketPath, agent = false } = {}) {
  return new Promise((resolve, reject) => {
    const u = socketPath ? null : new URL(url);
    const opts = socketPath
      ? { socketPath, path: url, method, headers, agent }
      : { host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, agent };
    const req = http.request(opts, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error('request timeout')));
    if (body) req.write(body);
    req.end();
  });
}

export function ctl(args, { input } = {}) {
  try {
    const stdout = execFileSync(EDGEGATECTL, args, {
      input, stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' },
    });
    return { code: 0, stdout: stdout.toString(), stderr: '' };
  } catch (e) {
    return { code: e.status, stdout: String(e.stdout || ''), stderr: String(e.stderr || '') };
  }
}

// Like ctl(), without blocking the event loop (servers in this process keep answering).
export function ctlAsync(args, { input } = {}) {
  return new Promise((resolve) => {
    const child = execFile(EDGEGATECTL, args, { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) }));
    if (input !== undefined) child.stdin.end(input); else child.stdin.end();
  });
}

// The headers tools/nginx/edgegate.conf sends with every /auth subrequest (the nginx proxy
// profile): a direct request to /auth must carry all of them, or it is a 403
// missing_proxy_header whatever else it says.
export function nginxHeaders(uri, extra = {}) {
  return { 'X-Original-URI': uri, 'X-Original-Method': 'GET', Host: 'app.test', 'X-Forwarded-Proto': 'https',
    'X-Real-IP': '198.18.0.10', ...extra };
}
