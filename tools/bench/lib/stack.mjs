// stack.mjs - what the network benchmarks (tools/bench/revoke, tools/bench/multinode) share:
// a scratch directory, child processes that die with the script, a veth pair into a client
// network namespace, the admin-socket client, and the upstream that doubles as a minimal
// OIDC discovery document (session routes need an oidc section; the benchmarks' sessions
// are made by mksessions, not by a login).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export const now = () => Number(process.hrtime.bigint()) / 1e6;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const ip = (...a) => execFileSync('ip', a, { stdio: 'pipe' });
export const pct = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((s.length - 1) * p))]; };

export async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// what: a string, or a function giving it when the wait times out (a count it reports is
// then the count at the end, not the one when the wait began).
export async function until(fn, what, timeout = 20000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) { try { if (await fn()) return; } catch { /* retry */ } await sleep(50); }
  throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
}

export function admin(sock, req) {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let buf = '';
    c.on('data', (d) => { buf += d; if (buf.includes('\n')) { c.end(); resolve(JSON.parse(buf)); } });
    c.on('error', reject);
    c.write(`${JSON.stringify(req)}\n`);
  });
}

// One benchmark's scratch state: TMP (world-readable, nginx workers read it), the child
// processes (each in its own process group, killed on exit), the veth HV <-> CV (in NS)
// and the pin directory PIN, all removed on exit. EG_KEEP_TMP keeps TMP for the logs.
export function benchStack({ ns, hostVeth, clientVeth, pin, tmpPrefix }) {
  const TMP = fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix));
  fs.chmodSync(TMP, 0o755);
  const procs = [];
  function cleanup() {
    for (const p of procs) { try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ } }
    try { ip('link', 'del', hostVeth); } catch { /* gone */ }
    try { ip('netns', 'del', ns); } catch { /* gone */ }
    fs.rmSync(pin, { recursive: true, force: true });
    if (!process.env.EG_KEEP_TMP) fs.rmSync(TMP, { recursive: true, force: true });
  }
  process.on('exit', cleanup);
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(1));
  function start(cmd, args, log) {
    const fd = fs.openSync(path.join(TMP, log), 'a');
    const p = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd] });
    procs.push(p);
    return p;
  }
  // nginx on host:ngxPort in front of edgegated on 127.0.0.1:egPort (the shipped snippets),
  // passing WebSockets through to the upstream on upPort.
  async function startNginx({ host, ngxPort, egPort, upPort }) {
    fs.mkdirSync(path.join(TMP, 'ngx/logs'), { recursive: true });
    fs.writeFileSync(path.join(TMP, 'ngx/nginx.conf'), `
daemon off; worker_processes 1; pid ${TMP}/ngx/nginx.pid; error_log ${TMP}/ngx/logs/error.log warn;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${TMP}/ngx/cb; proxy_temp_path ${TMP}/ngx/px; fastcgi_temp_path ${TMP}/ngx/fc;
  uwsgi_temp_path ${TMP}/ngx/uw; scgi_temp_path ${TMP}/ngx/sc;
  upstream edgegate { server 127.0.0.1:${egPort}; keepalive 32; }
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    # a backlog for every client connecting at once (nginx's default is 511: the rest
    # would wait for a SYN retransmit, a second, and be counted as the daemon's)
    listen ${host}:${ngxPort} backlog=4096;
    include ${ROOT}/tools/nginx/edgegate.conf;
    location / {
      include ${ROOT}/tools/nginx/edgegate-protect.conf;
      proxy_pass http://127.0.0.1:${upPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 120s;
    }
  }
}`);
    start('nginx', ['-p', path.join(TMP, 'ngx'), '-c', path.join(TMP, 'ngx/nginx.conf')], 'nginx.log');
    await sleep(300);
  }
  // tools/bench/revoke/wsclient.mjs in namespace ns: one WebSocket to url per cookie, a
  // message every intervalMs; its events (CLOCK_MONOTONIC ms) land in opened, resetAt, closedAt.
  // openAt: when each opened (openAt.start: when the client began connecting); status() says how the others ended: refused by status, errors
  // by code (the message of a wait that timed out).
  function wsClients({ ns, url, intervalMs, cookies }) {
    const cl = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(ROOT, 'tools/bench/revoke/wsclient.mjs'),
      url, String(intervalMs)], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    procs.push(cl);
    const opened = new Set(), openAt = new Map(), resetAt = new Map(), closedAt = new Map(), refused = new Map(), errors = new Map();
    const bump = (m, k) => m.set(k, (m.get(k) || 0) + 1);
    readline.createInterface({ input: cl.stdout }).on('line', (l) => {
      const e = JSON.parse(l);
      if (e.ev === 'start') openAt.start = e.t;
      if (e.ev === 'open') { opened.add(e.i); openAt.set(e.i, e.t); }
      if (e.ev === 'refused') bump(refused, e.status);
      if (e.ev === 'error' && !opened.has(e.i)) bump(errors, e.code);
      if (e.ev === 'error' && e.code === 'ECONNRESET' && !resetAt.has(e.i)) resetAt.set(e.i, e.t);
      if (e.ev === 'close') closedAt.set(e.i, e.t);
    });
    cl.stdin.end(cookies.join('\n') + '\n');
    const status = () => `${opened.size} open; refused ${JSON.stringify(Object.fromEntries(refused))}; ` +
      `errors before open ${JSON.stringify(Object.fromEntries(errors))}`;
    return { opened, openAt, resetAt, closedAt, status };
  }
  return { TMP, procs, start, startNginx, wsClients };
}

// The veth pair: host end HV with address H, client end CV in NS with address C (/24).
export function vethPair({ ns, hostVeth, clientVeth, host, client }) {
  ip('netns', 'add', ns);
  ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', clientVeth, 'netns', ns);
  ip('addr', 'add', `${host}/24`, 'dev', hostVeth);
  ip('link', 'set', hostVeth, 'up');
  ip('-n', ns, 'addr', 'add', `${client}/24`, 'dev', clientVeth);
  ip('-n', ns, 'link', 'set', clientVeth, 'up');
  ip('-n', ns, 'link', 'set', 'lo', 'up');
}

// The upstream on 127.0.0.1:port: WebSocket echo, "ok" for plain requests, and the OIDC
// discovery document of issuer http://127.0.0.1:port with an empty JWKS. Returns the issuer.
export async function startUpstream(port) {
  const iss = `http://127.0.0.1:${port}`;
  const up = http.createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: iss, authorization_endpoint: `${iss}/auth`, token_endpoint: `${iss}/token`,
        jwks_uri: `${iss}/jwks`, response_types_supported: ['code'], subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'] }));
    } else if (req.url === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"keys":[]}');
    } else { res.writeHead(200); res.end('ok'); }
  });
  new WebSocketServer({ server: up }).on('connection', (ws) => { ws.on('message', (m) => ws.send(m)); ws.on('error', () => {}); });
  // nginx opens one upstream connection per WebSocket, all at once: Node's default backlog
  // (511) would leave the rest to a SYN retransmit a second later
  await new Promise((r) => up.listen({ port, host: '127.0.0.1', backlog: 4096 }, r));
  return iss;
}
