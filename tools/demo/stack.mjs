// stack.mjs - the demo's processes: an echo upstream, edgegated and nginx with the shipped
// includes (tools/nginx/), all on 127.0.0.1. The demo's own, so that it depends on
// nothing under tests/ (the test harness imports its launcher and port helpers from
// here instead); demo.mjs stops what it starts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

export function portOpen(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

export async function waitFor(fn, { timeout = 15000, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    try { if (await fn()) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function status(url) {
  return new Promise((resolve) => {
    http.get(url, { agent: false }, (res) => { res.resume(); resolve(res.statusCode); }).on('error', () => resolve(0));
  });
}

// The process launcher (the test harness's too): cmd in a process group of its
// own (stop it with process.kill(-pid)), stdout and stderr appended to logFile (none:
// discarded), proc.exited resolves to { code, sig }.
export function launch(cmd, args, { logFile, env = {}, cwd } = {}) {
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const proc = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out], env: { ...process.env, ...env }, cwd });
  proc.logFile = logFile;
  proc.exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })));
  return proc;
}

// The sample app: answers every request with the method, URL and headers it received.
export async function startEcho() {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { port, server };
}

// edgegated (EDGEGATED, default build/edgegated) with config written into dir.
export async function startEdgegated(config, dir) {
  const cfg = { admin_socket: path.join(dir, 'admin.sock'), state_dir: path.join(dir, 'state'), ...config };
  const file = path.join(dir, 'edgegate.json');
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  const logFile = path.join(dir, 'edgegated.log');
  const bin = process.env.EDGEGATED || path.join(ROOT, 'build/edgegated');
  const proc = launch(bin, ['--config', file], { logFile });
  const url = `http://${cfg.listen}`;
  const eg = { url, admin: cfg.admin_socket, proc, logFile };
  eg.stop = async () => { try { process.kill(proc.pid, 'SIGTERM'); } catch { /* gone */ } return proc.exited; };
  await waitFor(async () => (await status(`${url}/healthz`)) === 200, { what: 'edgegated', timeout: 20000 })
    .catch((e) => { throw new Error(`${e.message}; see ${logFile}`); });
  return eg;
}

// nginx serving the app on port behind the shipped includes, edgegated at egListen.
export async function startNginx({ port, echoPort, egListen, dir }) {
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const conf = `
daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log info;
events { worker_connections 1024; }
http {
  access_log ${dir}/logs/access.log;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc;
  uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
  upstream edgegate { server ${egListen}; keepalive 16; }
  upstream app { server 127.0.0.1:${echoPort}; }
  server {
    listen 127.0.0.1:${port};
    server_name 127.0.0.1;
    include ${ROOT}/tools/nginx/edgegate.conf;
    location / {
      include ${ROOT}/tools/nginx/edgegate-protect.conf;
      proxy_pass http://app;
    }
  }
}
`;
  const file = path.join(dir, 'nginx.conf');
  fs.writeFileSync(file, conf);
  const proc = launch('nginx', ['-p', dir, '-c', file], { logFile: path.join(dir, 'logs/stderr.log') });
  await waitFor(() => portOpen(port), { what: `nginx on ${port} (see ${dir}/logs)` });
  return { proc };
}
