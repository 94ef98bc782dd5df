#!/usr/bin/env node
// proxyprobe.mjs - a trusted proxy's fresh connections to edgegated, timed (bench.mjs's
// slowloris phase). Its own process: the attacker runs in bench.mjs, whose event loop is busy
// for tens of milliseconds while thousands of its connections close and reconnect at once,
// and would add that to every latency measured there.
// usage: proxyprobe.mjs HOST PORT TOKEN_FILE COUNT GAP_MS  -> one JSON line on stdout:
// { n, statuses, p50_ms, p99_ms, max_ms, slowest: [{ ms, at }] } (at: ms since the epoch)
import fs from 'node:fs';
import net from 'node:net';

const [host, port, tokenFile, count, gap] = process.argv.slice(2);
const token = fs.readFileSync(tokenFile, 'utf8').split('\n')[0];
const req = `HEAD /auth HTTP/1.1\r\nHost: bench.example.test\r\nX-Original-URI: /api/x\r\nX-Original-Method: GET\r\n` +
  `X-Forwarded-Proto: http\r\nX-Real-IP: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const one = () => new Promise((resolve) => {
  const s = net.connect({ host, port: Number(port) });
  let buf = '';
  let settled = false;
  const done = (v) => { if (settled) return; settled = true; clearTimeout(to); s.destroy(); resolve(v); };
  const to = setTimeout(() => done('timeout'), 5000);
  s.on('connect', () => s.write(req));
  s.on('data', (d) => { buf += d; const m = buf.match(/^HTTP\/1\.1 (\d+)/); if (m) done(m[1]); });
  s.on('error', () => done('error'));
  s.on('close', () => done(buf ? 'short' : 'closed'));
});
const ms = [];
const at = [];
const statuses = {};
for (let i = 0; i < Number(count); i++) {
  const t = process.hrtime.bigint();
  const st = await one();
  statuses[st] = (statuses[st] || 0) + 1;
  ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  at.push(Date.now());
  if (Number(gap)) await sleep(Number(gap));
}
const slowest = ms.map((v, i) => ({ ms: v, at: at[i] })).sort((a, b) => b.ms - a.ms).slice(0, 5);
const sorted = [...ms].sort((a, b) => a - b);
const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
console.log(JSON.stringify({ n: ms.length, statuses, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: sorted[sorted.length - 1], slowest }));
