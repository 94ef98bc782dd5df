#!/usr/bin/env node
// nginx-callgrind.mjs - nginx's own instructions per protected request, counted by valgrind's
// callgrind: the steady figure for nginx's share of a verdict (issue 15), as callgrind.mjs is
// for the daemon's. nginx (one process, master_process off) runs under callgrind with the
// shipped includes (tools/nginx/, or the directory given) in front of an authorizer already
// listening on SOCKET, and serves a static file behind auth_request to one keep-alive client
// sending `GET /api/x` with `Authorization: Bearer <first line of TOKEN_FILE>` ('-': none).
// Twice (N1 and N2 requests, after 50 to warm the upstream connection); prints
// (Ir(N2) - Ir(N1)) / (N2 - N1). Start-up and shutdown cancel out.
//
//   node tools/bench/nginx-callgrind.mjs SOCKET TOKEN_FILE [INCLUDE_DIR]   (env N1=300 N2=1300)
//
// E.g. against build/bench/floorsrv (the do-nothing answer) and against edgegated with the
// same token: the difference is what nginx spends on the daemon's answer (docs/bench.md).
import { spawn } from 'node:child_process';
import fs from 'node:fs'; import net from 'node:net'; import path from 'node:path'; import os from 'node:os';
import { fileURLToPath } from 'node:url';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const [sock, tokfile, incDir = path.join(ROOT, 'tools/nginx')] = process.argv.slice(2);
if (!sock || !tokfile) { console.error('usage: nginx-callgrind.mjs SOCKET TOKEN_FILE [INCLUDE_DIR]'); process.exit(2); }
const N1 = Number(process.env.N1 || 300), N2 = Number(process.env.N2 || 1300);
const tok = tokfile === '-' ? null : fs.readFileSync(tokfile, 'utf8').split('\n')[0];
const W = fs.mkdtempSync(path.join(os.tmpdir(), 'ngxcg-'));
fs.mkdirSync(path.join(W, 'www')); fs.writeFileSync(path.join(W, 'www/ok.txt'), 'ok\n');
fs.mkdirSync(path.join(W, 'logs'));
const port = await new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const { port: p } = s.address(); s.close(() => resolve(p)); }); });
const inc = path.join(W, 'eg.conf');
fs.writeFileSync(inc, fs.readFileSync(path.join(incDir, 'edgegate.conf'), 'utf8'));
const up = fs.readFileSync(path.join(incDir, 'edgegate-upstream.conf'), 'utf8').replace(/server unix:[^;]*;[^\n]*/, `server unix:${sock};`);
fs.writeFileSync(path.join(W, 'nginx.conf'), `daemon off; master_process off; worker_processes 1;
pid ${W}/nginx.pid; error_log ${W}/logs/error.log warn; events { worker_connections 1024; }
http { access_log off; client_body_temp_path ${W}/cb; proxy_temp_path ${W}/px; fastcgi_temp_path ${W}/fc;
 uwsgi_temp_path ${W}/uw; scgi_temp_path ${W}/sc; keepalive_requests 1000000; default_type text/plain;
 ${up}
 server { listen 127.0.0.1:${port}; root ${W}/www; include ${inc};
   location / { include ${incDir}/edgegate-protect.conf; try_files /ok.txt =404; } } }
`);
const req = `GET /api/x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${tok ? `Authorization: Bearer ${tok}\r\n` : ''}\r\n`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function drive(n) {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1'); let sent = 0, got = 0, buf = ''; const st = {};
    c.on('connect', () => { c.write(req); sent++; });
    c.on('data', (d) => { buf += d.toString('latin1'); let i;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) { const s = buf.slice(9, 12); st[s] = (st[s] || 0) + 1;
        const m = /content-length: (\d+)/i.exec(buf.slice(0, i)); const len = m ? Number(m[1]) : 0;
        if (buf.length < i + 4 + len) break; buf = buf.slice(i + 4 + len); got++;
        if (sent < n) { c.write(req); sent++; } else { c.end(); resolve(st); } } });
    c.on('error', reject);
  });
}
async function run(n) {
  const out = path.join(W, `cg.${n}`);
  const vg = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, 'nginx', '-p', W, '-c', path.join(W, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = ''; vg.stderr.on('data', (d) => { err += d; });
  for (let i = 0; ; i++) { try { await new Promise((res, rej) => { const c = net.connect(port, '127.0.0.1', () => { c.end(); res(); }); c.on('error', rej); }); break; } catch { if (i > 100) throw new Error(err); await sleep(200); } }
  await drive(50); // warm the upstream connection and caches
  const st = await drive(n);
  vg.kill('SIGTERM'); await new Promise((r) => vg.on('exit', r));
  const m = /Collected : (\d+)/.exec(err);
  return { n, st, ir: Number(m[1]), out };
}
const a = await run(N1), b = await run(N2);
console.log(`nginx instructions per request: ${Math.round((b.ir - a.ir) / (N2 - N1))} (statuses ${JSON.stringify(b.st)}; ${tok ? 'token' : 'no token'}; ${sock})`);
fs.rmSync(W, { recursive: true, force: true });
