#!/usr/bin/env node
// crash_durable.t.mjs - kill -9 of edgegated at a random moment under revoke, deny and ban
// load, then a restart (and a restart with the pinned maps gone): nothing acknowledged is
// lost (issue 11). The XDP gate is attached to the host end of a veth pair; attackers in a
// network namespace (198.18.N.20-29) brute-force forged session tickets through nginx on
// 198.18.N.1; logins, revocations and the stolen-cookie checks go through nginx on
// loopback; denies are added with edgegatectl. Acknowledged means: the admin socket
// answered ok (revoke), edgegatectl exited 0 (deny), an attacker was seen banned (403 or
// its connection dropped in XDP) - each before the kill was sent.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { ok, is, done, guard, request, freePort, tmpdir, startEdgegated, startNginx, startEcho, waitFor, sleep, skipAll, onCleanup, EDGEGATECTL } from '../lib/harness.mjs';
import { Jar, browserLogin } from '../lib/oidc_helpers.mjs';
import { startOP } from '../lib/op.mjs';

const need = process.getuid() === 0 && fs.existsSync('/sys/fs/bpf');
if (!need) {
  if (process.env.CI === 'true') throw new Error('needs root and bpffs (netns, XDP)');
  skipAll('needs root (netns, XDP)');
}
guard(300000);
const ID = process.pid;
const NS = `egc-${ID}`, HV = `egch${ID % 100000}`, CV = `egcp${ID % 100000}`;
const PIN = `/sys/fs/bpf/edgegate-crash-${ID}`;
const NET = `198.18.${100 + (ID % 150)}`;
const H = `${NET}.1`;
const ATTACKERS = Array.from({ length: 16 }, (_, i) => `${NET}.${20 + i}`);
const sh = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
onCleanup(() => {
  for (const c of [['ip', ['link', 'del', HV]], ['ip', ['netns', 'del', NS]], ['rm', ['-rf', PIN]]]) { try { sh(...c); } catch { /* gone */ } }
});
sh('ip', ['netns', 'add', NS]);
sh('ip', ['link', 'add', HV, 'type', 'veth', 'peer', 'name', CV, 'netns', NS]);
sh('ip', ['addr', 'add', `${H}/24`, 'dev', HV]);
sh('ip', ['link', 'set', HV, 'up']);
for (const a of ATTACKERS) sh('ip', ['-n', NS, 'addr', 'add', `${a}/24`, 'dev', CV]);
sh('ip', ['-n', NS, 'link', 'set', CV, 'up']);
sh('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);

const dir = tmpdir('eg-crash-');
const [opPort, ngxPort, egPort, gatePort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const pub = `http://127.0.0.1:${ngxPort}`;
const client = { client_id: 'edgegate-crash', client_secret: 'crash-secret-0123456789abcdef0123456789', redirect_uris: [`${pub}/oauth2/callback`] };
const op = await startOP({ port: opPort, clients: [client] });
onCleanup(() => op.stop());
const echo = await startEcho();
fs.mkdirSync(path.join(dir, 'eg'));
const config = {
  listen: `127.0.0.1:${egPort}`,
  public_url: pub,
  cookie: { secure: false, secret: 'crash-cookie-secret-0123456789abcdef' },
  oidc: { issuer: op.issuer, client_id: client.client_id, client_secret: client.client_secret, redirect_url: `${pub}/oauth2/callback` },
  routes: [{ path: '/', auth: 'session' }],
  trusted_proxies: ['127.0.0.1/32'],
  gate: {
    interfaces: [HV], xdp_mode: 'native', pin_root: PIN, protected_ports: [gatePort],
    syn_rate: 10000, syn_burst: 10000, verdict_rate: 100000,
    ban_threshold: 3, ban_window: '60s', ban_time: '600s', ban_max: '600s',
  },
};
let eg = await startEdgegated(config, { dir: path.join(dir, 'eg') });
fs.mkdirSync(path.join(dir, 'ngx'));
await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream echo { server 127.0.0.1:${echo.port}; }
  server {
    listen 127.0.0.1:${ngxPort};
    listen ${H}:${gatePort};
    {{EDGEGATE_INCLUDE}}
    location / { {{EDGEGATE_PROTECT}} proxy_pass http://echo; }
  }`, { dir: path.join(dir, 'ngx'), edgegate: `127.0.0.1:${egPort}`, waitPort: ngxPort });
await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'discovery' });

function admin(obj) {
  return new Promise((resolve, reject) => {
    const c = net.connect(eg.admin);
    let buf = '';
    c.on('data', (d) => { buf += d; if (buf.includes('\n')) { c.end(); resolve(JSON.parse(buf)); } });
    c.on('error', reject);
    c.on('close', () => reject(new Error('closed')));
    c.write(JSON.stringify(obj) + '\n');
  });
}
const run = (cmd, args) => new Promise((resolve) => execFile(cmd, args, { timeout: 10000 }, (err, stdout) => resolve({ code: err ? (err.code ?? 1) : 0, stdout: String(stdout) })));
const sessionId = (t) => crypto.createHash('sha256').update(t.slice(0, 22)).digest('hex');
const forged = () => `${crypto.randomBytes(16).toString('base64url')}.${crypto.randomBytes(32).toString('base64url')}`;
const attack = (src) => run('ip', ['netns', 'exec', NS, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--interface', src,
  '--connect-timeout', '1', '-m', '3', '-H', 'accept: application/json', '-H', `cookie: _edgegate=${forged()}`, `http://${H}:${gatePort}/app`])
  .then((r) => r.stdout.trim());
const stolen = async (t) => (await request(`${pub}/app`, { headers: { cookie: `_edgegate=${t}`, accept: 'application/json' } })).status;

const acked = { revoked: [], denied: [], banned: [] };
let nextDeny = 100;
let attackerIdx = 0;

async function round(label, sessions) {
  const tickets = [];
  for (let i = 0; i < sessions; i++) {
    const jar = new Jar();
    const r = await browserLogin(jar, `${pub}/app`, `u${label}${i}`);
    if (r.status === 200) tickets.push(jar.get('_edgegate').value);
  }
  is(tickets.length, sessions, `${label}: ${sessions} sessions logged in`);
  let killedAt = Infinity;
  const before = () => Date.now() < killedAt;
  const revoker = (async () => {
    for (const t of tickets) {
      try {
        const r = await admin({ cmd: 'revoke', session: sessionId(t) });
        if (r.ok && before()) acked.revoked.push(t);
      } catch { return; }
      await sleep(80);
    }
  })();
  const denier = (async () => {
    while (before()) {
      const p = `${NET}.${nextDeny++}`;
      if (nextDeny > 250) return;
      const r = await run(EDGEGATECTL, ['--config', eg.file, 'deny', 'add', `${p}/32`, '--ttl', '1h', '--reason', 'manual']);
      if (r.code === 0 && before()) acked.denied.push(p);
      await sleep(20);
    }
  })();
  const banner = async () => {
    while (before() && attackerIdx < ATTACKERS.length) {
      const src = ATTACKERS[attackerIdx++];
      for (let i = 0; i < 8 && before(); i++) {
        const c = await attack(src);
        if ((c === '403' || c === '000') && before()) { acked.banned.push(src); break; }
      }
    }
  };
  const banners = [banner(), banner(), banner()];
  await sleep(2500 + Math.floor(Math.random() * 2000));
  killedAt = Date.now();
  await eg.stop('SIGKILL');
  await Promise.allSettled([revoker, denier, ...banners]);
  ok(true, `${label}: kill -9 after load (${acked.revoked.length} revocations, ${acked.denied.length} denies, ${acked.banned.length} bans acknowledged so far)`);
}

async function verify(label) {
  await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'discovery after restart' });
  const served = [];
  for (const t of acked.revoked) if ((await stolen(t)) === 200) served.push(sessionId(t).slice(0, 12));
  is(served.length, 0, `${label}: all ${acked.revoked.length} acknowledged revocations hold (served: ${served.join(',')})`);
  const list = (await run(EDGEGATECTL, ['--config', eg.file, 'deny', 'list'])).stdout;
  const lostDeny = acked.denied.filter((p) => !new RegExp(`^${p.replaceAll('.', '\\.')}(/32)?\\s`, 'm').test(list));
  is(lostDeny.length, 0, `${label}: all ${acked.denied.length} acknowledged denies are in the deny map (lost: ${lostDeny.join(',')})`);
  const bans = JSON.stringify((await admin({ cmd: 'bans' })).bans);
  const lostBan = acked.banned.filter((a) => !bans.includes(`"${a}"`));
  is(lostBan.length, 0, `${label}: all ${acked.banned.length} acknowledged bans are in force (lost: ${lostBan.join(',')})`);
  const still = [];
  for (const a of acked.banned) { const c = await attack(a); if (c !== '000' && c !== '403') still.push(`${a}:${c}`); }
  is(still.length, 0, `${label}: banned attackers are still refused (${still.join(',')})`);
}

await round('round 1', 30);
eg = await startEdgegated(config, { dir: path.join(dir, 'eg') });
await verify('restart');
await round('round 2', 30);
sh('rm', ['-rf', PIN]);
eg = await startEdgegated(config, { dir: path.join(dir, 'eg') });
await verify('restart with the pinned maps gone');
ok(acked.revoked.length > 0 && acked.banned.length > 0 && acked.denied.length > 0, 'load of every kind was acknowledged before the kills');
await done();
