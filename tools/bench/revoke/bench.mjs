#!/usr/bin/env node
// bench.mjs - time to revoke (issue 5). Run through tools/bench/revoke/run.sh.
//
// N sessions (created through the daemon's own session module by mksessions) each
// hold a WebSocket through nginx from a client network namespace; the XDP gate is
// attached to the host end of the veth. Each session is revoked over the admin socket
// (what edgegatectl revoke sends), one after the other, while all the others keep
// exchanging messages. Measured per revocation:
//   daemon  - edgegated's time-to-revoke: revocation call -> last flow destroyed
//             (kernel maps written + SOCK_DESTROY acknowledged), the histogram
//             edgegate_revoke_duration_seconds; exact samples from admin "flows"
//   admin   - the admin "revoke" round trip (includes the store writes)
//   reset   - revocation call -> the client process sees ECONNRESET (CLOCK_MONOTONIC
//             in both processes)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { admin, benchStack, freePort, now, pct, sleep, startUpstream, until, vethPair } from '../lib/stack.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const N = Number(process.env.EGR_N || 200);
const OUT = path.join(ROOT, 'build/bench/revoke');
const ID = process.pid;
const NS = `egrb-${ID}`, HV = `egbb${ID}`, CV = `egbc${ID}`;
const NET = `198.19.${(ID % 90) + 5}`, H = `${NET}.1`, C = `${NET}.2`;
const PIN = `/sys/fs/bpf/edgegate-rb-${ID}`;
const { TMP, start, startNginx, wsClients } = benchStack({ ns: NS, hostVeth: HV, pin: PIN, tmpPrefix: 'eg-rbench-' });

// --- network, upstream, daemon, nginx --------------------------------------------------------
vethPair({ ns: NS, hostVeth: HV, clientVeth: CV, host: H, client: C });

const [upPort, ngxPort, egPort] = [await freePort(), await freePort(), await freePort()];
// The upstream also serves a minimal OIDC discovery document: session routes need an
// oidc section, and the sessions here are made by mksessions, not by a login.
const iss = await startUpstream(upPort);

const adminSock = path.join(TMP, 'admin.sock');
const cfgFile = path.join(TMP, 'edgegate.json');
fs.writeFileSync(cfgFile, JSON.stringify({
  listen: `127.0.0.1:${egPort}`, admin_socket: adminSock, state_dir: path.join(TMP, 'state'), log_level: 'warn',
  cookie: { secure: true, secret: 'bench-cookie-secret-0123456789abcdef' },
  oidc: { issuer: iss, client_id: 'bench', client_secret: 'bench-secret-0123456789', redirect_url: `http://${H}:${ngxPort}/oauth2/callback` },
  routes: [{ path: '/', auth: 'session' }],
  gate: { interfaces: [HV], xdp_mode: 'native', pin_root: PIN, protected_ports: [ngxPort], syn_rate: 100000, syn_burst: 100000 },
}, null, 2));
const tickets = execFileSync(path.join(OUT, 'mksessions'), [cfgFile, String(N)]).toString().trim().split('\n');
start(path.join(ROOT, 'build/edgegated'), ['--config', cfgFile], 'edgegated.log');
await until(() => fs.existsSync(adminSock) && admin(adminSock, { cmd: 'status' }).then((s) => s.ready), 'edgegated');

await startNginx({ host: H, ngxPort, egPort, upPort });

// --- N WebSockets from the namespace ---------------------------------------------------------
const { opened, resetAt, closedAt, status: wsStatus } = wsClients({ ns: NS, url: `ws://${H}:${ngxPort}/ws`, intervalMs: 100,
  cookies: tickets.map((t) => `__Host-edgegate=${t}`) });
await until(() => opened.size === N, () => `${N} WebSockets open (${wsStatus()})`, 30000);
await sleep(300);

const list = (await admin(adminSock, { cmd: 'sessions' })).sessions;
const idOf = new Map(list.map((s) => [s.sub, s.session_id]));
const before = (await admin(adminSock, { cmd: 'flows' })).time_to_revoke.samples;

// --- revoke them one by one -----------------------------------------------------------------
const adminMs = [], resetMs = [];
let missing = 0;
for (let i = 0; i < N; i++) {
  const t0 = now();
  const r = await admin(adminSock, { cmd: 'revoke', session: idOf.get(`bench-${i}`) });
  const t1 = now();
  if (r.revoked !== 1) throw new Error(`revoke ${i}: ${JSON.stringify(r)}`);
  adminMs.push(t1 - t0);
  try { await until(() => closedAt.has(i), `close of ${i}`, 3000); } catch { missing++; continue; }
  resetMs.push((resetAt.get(i) ?? closedAt.get(i)) - t0);
}
const fl = await admin(adminSock, { cmd: 'flows', samples: true });
const daemonMs = fl.time_to_revoke.us.slice(before).map((us) => us / 1000);
const stillOpen = N - closedAt.size;
const resets = [...resetAt.keys()].length;

const f = (v) => `${v.toFixed(3)} ms`;
const rows = [
  ['daemon time-to-revoke (call -> last flow destroyed)', daemonMs],
  ['admin revoke round trip', adminMs],
  ['revocation call -> client sees the reset', resetMs],
];
const md = [
  `time to revoke, ${N} sessions with live WebSockets through nginx (XDP gate on the veth, ${os.cpus().length} CPUs, kernel ${os.release()})`,
  '',
  '| measure | n | p50 | p99 | max |',
  '|---|---|---|---|---|',
  ...rows.map(([name, v]) => `| ${name} | ${v.length} | ${f(pct(v, 0.5))} | ${f(pct(v, 0.99))} | ${f(Math.max(...v))} |`),
  '',
  `client sockets reset: ${resets}/${N}; not closed within 3 s: ${missing}; still open at the end: ${stillOpen}; ` +
    `flows destroyed ${fl.destroyed}, already gone ${fl.gone}, failed ${fl.failed}`,
];
fs.writeFileSync(path.join(OUT, 'results.md'), `${md.join('\n')}\n`);
fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify({
  n: N, daemon_ms: daemonMs, admin_ms: adminMs, reset_ms: resetMs, resets, missing, flows: fl,
}, null, 1));
console.log(md.join('\n'));
process.exit(missing || stillOpen || resets < N ? 1 : 0);
