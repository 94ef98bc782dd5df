#!/usr/bin/env node
// callgrind.mjs - instructions per cached bearer verdict, counted by valgrind's callgrind.
//
// Instruction counts do not depend on what else the machine runs, so this is the
// before/after figure for changes to the request path (wrk figures on a shared 2-CPU VM
// move by 20 % between runs). It starts the daemon (build/edgegated, or EDGEGATED) under
// callgrind with one HTTP thread and a unix listener, sends the request nginx's shipped
// auth location sends (HEAD /auth, X-Original-*, X-Real-IP ..., an RS256 bearer token),
// N times over one keep-alive connection, then SIGTERM. It does this twice (N1 and N2
// requests) and reports (Ir(N2) - Ir(N1)) / (N2 - N1): start-up and shutdown cancel out.
//
//   node tools/bench/callgrind.mjs [--keep]     (env: EGB_CG_N1=200, EGB_CG_N2=1200)
//   node tools/bench/callgrind.mjs --cpu        (no valgrind: CPU µs per verdict; EGB_CPU_N)
//   EGB_CG_SESSION=1 node tools/bench/callgrind.mjs
//                                               (a session cookie instead of the token: one
//                                               session made by build/bench/mksessions, in
//                                               memory after the first request)
//   EGB_CG_FLOWS=N (with EGB_CG_SESSION=1): the client port cycles over N values, as when N
//                                               client connections to nginx share one session
//                                               (bench case c: 32 wrk connections, one cookie);
//                                               (before: a session kept 16 flows, so with N > 16
//                                               every verdict replaced one and noted a "new" flow;
//                                               now up to revocation.flows_per_session, 128, and
//                                               past it closed ones are probed and reclaimed)
//   EGB_CG_COLD=RS256 (or ES256): every request a distinct token, so every verdict is a
//   cache miss (a verify, a cache insert and, with a small cache, an eviction): the
//   uncached verdict's cost, to read beside the cached one.
//   EGB_CG_TCP=1: the requests over TCP (127.0.0.1, a trusted proxy address) instead of the
//   unix socket (which stays as the readiness signal); EGB_CG_LANE=0: http.lane off (every
//   request through libmicrohttpd), for the before/after of the verdict lane.
//   EGB_CG_TARGET=<raw request target>: that target instead of /api/orders?page=2, with a
//   public route "/" after the others, so that an ambiguous target (docs/config.md "Cost of an
//   ambiguous target") whose readings are all public is allowed: the cost of judging it,
//   e.g. EGB_CG_TARGET='/public%5cx/..;/a%ef%bd%84min%0d%0a'.
// Prints the figure and leaves callgrind.out.* and an annotated top list in build/bench/.
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EDGEGATED = path.resolve(process.env.EDGEGATED || path.join(ROOT, 'build/edgegated'));
const OUT = path.resolve(process.env.EGB_OUT || path.join(ROOT, 'build/bench'));
const N1 = Number(process.env.EGB_CG_N1 || 200);
const N2 = Number(process.env.EGB_CG_N2 || 1200);
const ISS = 'https://idp.example.test';
const AUD = 'api://bench';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

fs.mkdirSync(OUT, { recursive: true });
const W = fs.mkdtempSync(path.join(os.tmpdir(), 'eg-callgrind-'));
process.on('exit', () => { if (!process.argv.includes('--keep')) fs.rmSync(W, { recursive: true, force: true }); });
const COLD = process.env.EGB_CG_COLD || '';
if (COLD && !['RS256', 'ES256'].includes(COLD)) throw new Error('EGB_CG_COLD: RS256 or ES256');
const N_COLD = COLD ? (process.argv.includes('--cpu') ? Number(process.env.EGB_CPU_N || 20000) : N2) + 2000 : 1;
execFileSync('node', [path.join(ROOT, 'tools/bench/mint.mjs'), W, ISS, AUD, String(N_COLD)], { stdio: 'ignore', cwd: ROOT });
const tokens = fs.readFileSync(path.join(W, COLD ? `cold-${COLD}.txt` : 'warm-RS256.txt'), 'utf8').split('\n').filter(Boolean);
const TARGET = process.env.EGB_CG_TARGET || '';
const KIND = (COLD ? `uncached ${COLD}` : process.env.EGB_CG_SESSION === '1' ? 'cached session-cookie' : 'cached RS256') +
  (TARGET ? ` (target ${TARGET})` : '');

const sock = path.join(W, 'eg.sock');
const TCP = process.env.EGB_CG_TCP === '1';
const tcpPort = TCP ? await new Promise((resolve) => {
  const srv = net.createServer().listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
}) : 0;
const VIA = TCP ? 'TCP 127.0.0.1' : 'unix socket';
const cfgFile = path.join(W, 'edgegate.json');
fs.writeFileSync(cfgFile, JSON.stringify({
  listen: TCP ? [`127.0.0.1:${tcpPort}`, `unix:${sock}`] : [`unix:${sock}`],
  ...(process.env.EGB_CG_LANE === '0' ? { http: { lane: false } } : {}),
  admin_socket: path.join(W, 'admin.sock'),
  state_dir: path.join(W, 'state'),
  log_level: 'warn',
  threads: 1,
  jwt: {
    jwks_file: path.join(W, 'jwks.json'), issuer: ISS, audience: AUD, algorithms: ['RS256', 'ES256'],
    // cold: a small cache, so inserts evict as they do under load (bench.mjs's e_* cases)
    ...(COLD ? { cache_entries: 64 } : {}),
  },
  cookie: { name: 'egs', secret: 'callgrind-cookie-secret-0123456789abcdef' },
  // sessions need an OP; verdicts on existing sessions never ask it (discovery may fail)
  oidc: { issuer: 'http://127.0.0.1:9', client_id: 'cg', client_secret: 'cg-secret', redirect_url: 'http://127.0.0.1:9/oauth2/callback' },
  routes: [{ path: '/api/', auth: 'bearer', allow: { domains: ['example.test'] } },
    { path: '/app/', auth: 'session', allow: { domains: ['example.test'] } },
    ...(TARGET ? [{ path: '/', auth: 'public' }] : [])],
}));
const SESSION = process.env.EGB_CG_SESSION === '1';
const ticket = SESSION
  ? execFileSync(path.resolve(process.env.EGB_MKSESSIONS || path.join(ROOT, 'build/bench/mksessions')), [cfgFile, '1'])
    .toString().trim()
  : null;

// What nginx sends for `auth_request` with tools/nginx/edgegate.conf: its own headers and,
// of the client's, only Cookie, Authorization, Accept and X-Requested-With (here an API
// client with a bearer token). EGB_CG_ALL_HEADERS=1 adds what the include forwarded
// before it stopped passing every client header (User-Agent, Accept-Encoding ...).
const FLOWS = Math.max(1, Number(process.env.EGB_CG_FLOWS || 1));
const request = (token, i = 0) => [
  'HEAD /auth HTTP/1.1',
  'Host: app.example.test',
  `X-Original-URI: ${TARGET || (SESSION ? '/app/orders?page=2' : '/api/orders?page=2')}`,
  'X-Original-Method: GET',
  'X-Forwarded-Proto: https',
  'X-Real-IP: 198.18.0.10',
  `X-Real-Port: ${51234 + (i % FLOWS)}`,
  'X-Server-Addr: 198.18.0.1',
  'X-Server-Port: 443',
  'X-Original-Host: app.example.test', // the client's raw Host ($http_host)
  ...(process.env.EGB_CG_ALL_HEADERS === '1' ? [
    'X-Forwarded-Host: app.example.test',
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench',
    'Accept-Encoding: gzip, deflate, br',
    'Accept-Language: en-GB,en;q=0.9',
  ] : []),
  'Accept: application/json',
  SESSION ? `Cookie: egs=${ticket}` : `Authorization: Bearer ${token}`,
  '', '',
].join('\r\n');

// Sends n requests one after another on one connection; resolves with the status lines seen.
// A connection closed after an answer (libmicrohttpd closes those the lane hands over, e.g.
// a session's first verdict, which needs the store) is replaced, as nginx would.
function drive(n) {
  return new Promise((resolve, reject) => {
    let sent = 0, answered = 0;
    const statuses = {};
    const open = () => {
      const c = TCP ? net.connect(tcpPort, '127.0.0.1') : net.connect(sock);
      let buf = '';
      let closing = false;
      const next = () => { if (sent < n && !closing) { c.write(request(tokens[sent % tokens.length], sent)); sent++; } else { c.end(); } };
      c.on('connect', next);
      c.on('data', (d) => {
        buf += d.toString('latin1');
        let i;
        while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
          const status = buf.slice(9, 12);
          statuses[status] = (statuses[status] || 0) + 1;
          answered++;
          closing = /\r\nconnection: close\r\n/i.test(buf.slice(0, i + 2));
          buf = buf.slice(i + 4); // HEAD: no body
          next();
        }
      });
      c.on('close', () => {
        if (answered < n && sent === answered) open();
        else resolve(statuses);
      });
      c.on('error', (e) => { if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') reject(e); });
    };
    open();
  });
}

async function run(n) {
  const outFile = path.join(OUT, `callgrind.out.${n}`);
  try { fs.unlinkSync(sock); } catch { /* none */ }
  for (const f of fs.readdirSync(OUT)) if (f.startsWith(`callgrind.out.${n}.`)) fs.unlinkSync(path.join(OUT, f));
  // One file per process (%p): the privileged helper forks off at start-up and would
  // otherwise overwrite the HTTP process's profile with its own.
  const vg = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${outFile}.%p`, EDGEGATED, '--config', cfgFile],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  vg.stderr.on('data', (d) => { err += d; });
  const end = Date.now() + 120000;
  while (!fs.existsSync(sock)) {
    if (Date.now() > end || vg.exitCode !== null) throw new Error(`edgegated did not start:\n${err}`);
    await sleep(200);
  }
  await sleep(500);
  const statuses = await drive(n);
  vg.kill('SIGTERM');
  await new Promise((r) => vg.on('exit', r));
  if (statuses['200'] !== n) throw new Error(`expected ${n} x 200, got ${JSON.stringify(statuses)}\n${err}`);
  const m = [...err.matchAll(/Collected : (\d+)/g)];
  if (!m.length) throw new Error(`no callgrind summary:\n${err}`);
  // Every process's count (the helper's start-up cancels out between the two runs); the
  // per-function list is of the largest profile, the daemon's.
  const files = fs.readdirSync(OUT).filter((f) => f.startsWith(`callgrind.out.${n}.`)).map((f) => path.join(OUT, f));
  const biggest = files.sort((x, y) => fs.statSync(y).size - fs.statSync(x).size)[0] || outFile;
  return { n, ir: m.reduce((s, x) => s + Number(x[1]), 0), outFile: biggest };
}

// --cpu: no valgrind; the daemon's own CPU time (utime+stime of /proc/PID/stat, all its
// threads) per request over EGB_CPU_N requests on one connection, three times. Serial
// requests measure each verdict's full wake-up path; read it beside the instruction count.
if (process.argv.includes('--cpu')) {
  const N = Number(process.env.EGB_CPU_N || 20000);
  const tick = 1e6 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  // the process tree: the daemon forks its privileged helper (or serves from a child)
  const cpuUs = (pid) => {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    let us = (Number(f[11]) + Number(f[12])) * tick;
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      const kids = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      for (const k of kids ? kids.split(' ') : []) us += cpuUs(k);
    }
    return us;
  };
  try { fs.unlinkSync(sock); } catch { /* none */ }
  const eg = spawn(EDGEGATED, ['--config', cfgFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  while (!fs.existsSync(sock)) await sleep(100);
  await sleep(300);
  await drive(2000); // warm: the verdict cache, the response cache, the allocator
  if (COLD) tokens.splice(0, 2000); // drive() starts at the first token: use unseen ones
  const per = [];
  for (let i = 0; i < 3; i++) {
    const c0 = cpuUs(eg.pid), t0 = process.hrtime.bigint();
    const st = await drive(N);
    const c1 = cpuUs(eg.pid), t1 = process.hrtime.bigint();
    if (st['200'] !== N) throw new Error(`expected ${N} x 200, got ${JSON.stringify(st)}`);
    per.push({ cpu: (c1 - c0) / N, wall: Number(t1 - t0) / 1e3 / N });
  }
  eg.kill('SIGTERM');
  console.log(`edgegated CPU per ${KIND} verdict, serial on one connection (${VIA}${process.env.EGB_CG_LANE === '0' ? ', lane off' : ''}): ${per.map((x) => x.cpu.toFixed(2)).join(' / ')} µs` +
    ` (wall per request ${per.map((x) => x.wall.toFixed(1)).join(' / ')} µs; load ${os.loadavg()[0].toFixed(1)})`);
  process.exit(0);
}

const a = await run(N1);
const b = await run(N2);
const perReq = (b.ir - a.ir) / (b.n - a.n);
const rep = spawnSync('callgrind_annotate', ['--inclusive=no', b.outFile], { maxBuffer: 1 << 26 }).stdout.toString();
const TOP = COLD ? `callgrind-top-cold-${COLD}.txt` : 'callgrind-top.txt';
fs.writeFileSync(path.join(OUT, TOP), rep);
console.log(`instructions per ${SESSION ? 'cached session-cookie' : `${KIND} bearer`} verdict (HEAD /auth, keep-alive, ${VIA}${process.env.EGB_CG_LANE === '0' ? ', lane off' : ''}): ${Math.round(perReq)}`);
console.log(`  Ir(${a.n}) = ${a.ir}, Ir(${b.n}) = ${b.ir}; per-function list of the ${b.n}-request run: ${path.relative(ROOT, OUT)}/${TOP}`);
