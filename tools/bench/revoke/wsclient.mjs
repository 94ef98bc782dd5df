#!/usr/bin/env node
// wsclient.mjs - WebSocket clients for the revocation test and bench, meant to run
// inside a client network namespace (`ip netns exec NS node wsclient.mjs ...`).
//
//   node wsclient.mjs URL INTERVAL_MS [--log-msgs] < cookies.txt
//
// Opens one WebSocket per stdin line (a Cookie header value; "-" = none), sends
// {"seq":N} on each every INTERVAL_MS, and prints one JSON line per event on stdout:
//   {"ev":"start","n":N,"t":...} once, then
//   {"i":0,"ev":"open","t":...}  {"i":0,"ev":"msg","seq":N,"t":...} (with --log-msgs)
//   {"i":0,"ev":"error","code":"ECONNRESET","t":...}  {"i":0,"ev":"close","code":1006,"last":T,"n":K,"t":...}
// t and last are CLOCK_MONOTONIC milliseconds (process.hrtime), the clock of every
// process on the host whatever its namespace, so the caller can compare them with
// its own. Exits when every socket has closed.
import readline from 'node:readline';
import WebSocket from 'ws';

const [url, intervalArg, ...flags] = process.argv.slice(2);
const interval = Number(intervalArg || 50);
const logMsgs = flags.includes('--log-msgs');
const now = () => Number(process.hrtime.bigint()) / 1e6;
const out = (o) => process.stdout.write(`${JSON.stringify({ ...o, t: now() })}\n`);

const cookies = [];
for await (const line of readline.createInterface({ input: process.stdin })) if (line.trim()) cookies.push(line.trim());
let open = cookies.length;
out({ ev: 'start', n: open }); // when the first connect begins (node's own start-up is not counted)
cookies.forEach((cookie, i) => {
  const headers = cookie === '-' ? {} : { cookie };
  const ws = new WebSocket(url, { headers, handshakeTimeout: 5000 });
  let seq = 0, last = 0, n = 0, timer;
  // ws closes with 1006 on a socket error without emitting it: listen on the socket.
  ws.on('upgrade', (res) => res.socket.on('error', (e) => out({ i, ev: 'error', code: e.code || String(e.message) })));
  ws.on('open', () => {
    out({ i, ev: 'open' });
    timer = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ seq: seq++ })); }, interval);
  });
  ws.on('message', (data) => {
    last = now();
    n++;
    if (logMsgs) out({ i, ev: 'msg', seq: JSON.parse(data).seq });
  });
  ws.on('unexpected-response', (_req, res) => out({ i, ev: 'refused', status: res.statusCode }));
  ws.on('error', (e) => out({ i, ev: 'error', code: e.code || String(e.message) }));
  ws.on('close', (code) => {
    clearInterval(timer);
    out({ i, ev: 'close', code, last, n });
    if (--open === 0) process.exit(0);
  });
});
if (!open) process.exit(0);
