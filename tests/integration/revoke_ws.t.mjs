#!/usr/bin/env node
// revoke_ws.t.mjs - revocation reaches the wire (issue 5), with real parts: the
// OpenID Provider (oidc-provider), nginx proxying a WebSocket upstream (npm ws),
// edgegated with its XDP gate attached to the host end of a veth pair whose other
// end is in a client network namespace (198.19.N.0/24), and edgegatectl.
//
// Users log in (cookie sessions through the OP). From the namespace, WebSockets
// through nginx exchange messages every 20 ms. Then
//   1. `edgegatectl revoke --session ID`: the WebSocket dies with a reset, no
//      message passes after the command returns, the old cookie gets 401, nginx's
//      socket is gone, the revoked flow/session are in the kernel maps (bpftool),
//      another user's WebSocket keeps going;
//   2. the same with back-channel logout from the OP (the user signs out at the OP).
//
// With EG_AS_UNIT=1 (revoke_ws_unit.t.mjs) edgegated runs exactly as the shipped systemd
// unit runs it: started as root under the unit's CapabilityBoundingSet (setpriv), with
// "user" set to an unprivileged system user (created if missing), and the capabilities,
// uids and no_new_privs of every thread of both of its processes are checked
// (docs/privsep.md). In both modes the socket must be reset within 10 ms of the
// revocation call returning, with no message after it.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { WebSocketServer } from 'ws';
import {
  ROOT, EDGEGATECTL, ok, is, done, guard, diag, skipAll, onCleanup, freePort, request, startEdgegated,
  startNginx, tmpdir, waitFor, sleep, portOpen,
} from '../lib/harness.mjs';
import { Jar, browserLogin } from '../lib/oidc_helpers.mjs';
import { startOP } from '../lib/op.mjs';

if (process.getuid() !== 0) skipAll('needs root (netns, XDP, SOCK_DESTROY)');
for (const t of ['ip', 'nginx', 'bpftool', 'ss']) {
  try { execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }); } catch { skipAll(`needs ${t}`); }
}
if (!fs.existsSync(EDGEGATECTL)) skipAll(`${EDGEGATECTL} not built (make asan)`);
guard(170000);

const AS_UNIT = process.env.EG_AS_UNIT === '1';
const UNIT_USER = 'edgegate-test';
let wrap = null;
let unitCaps = [];
if (AS_UNIT) {
  for (const t of ['setpriv', 'useradd']) {
    try { execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }); } catch { skipAll(`needs ${t}`); }
  }
  try { execFileSync('id', [UNIT_USER], { stdio: 'ignore' }); } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', UNIT_USER]);
  }
  const unit = fs.readFileSync(path.join(ROOT, 'tools/systemd/edgegated.service'), 'utf8');
  unitCaps = /^CapabilityBoundingSet=(.*)$/m.exec(unit)[1].trim().split(/\s+/);
  wrap = ['setpriv', '--bounding-set', `-all,${unitCaps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',')}`,
    ...(/^NoNewPrivileges=yes$/m.test(unit) ? ['--no-new-privs'] : []), '--'];
}

const now = () => Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC ms, like wsclient.mjs
const ID = process.pid;
const NS = `egr-${ID}`, HV = `egrh${ID}`, CV = `egrp${ID}`;
const NET = `198.19.${100 + (ID % 150)}`, H = `${NET}.1`, C = `${NET}.2`;
const PIN = `/sys/fs/bpf/edgegate-rv-${ID}`;
const ip = (...a) => execFileSync('ip', a, { stdio: 'pipe' });

onCleanup(() => {
  try { ip('link', 'del', HV); } catch { /* gone */ }
  try { ip('netns', 'del', NS); } catch { /* gone */ }
  fs.rmSync(PIN, { recursive: true, force: true });
});
ip('netns', 'add', NS);
ip('link', 'add', HV, 'type', 'veth', 'peer', 'name', CV, 'netns', NS);
ip('addr', 'add', `${H}/24`, 'dev', HV);
ip('link', 'set', HV, 'up');
ip('-n', NS, 'addr', 'add', `${C}/24`, 'dev', CV);
ip('-n', NS, 'link', 'set', CV, 'up');
ip('-n', NS, 'link', 'set', 'lo', 'up');

// --- the WebSocket upstream: echoes, and remembers when it last heard each client ----------
const upPort = await freePort();
const heard = new Map(); // user -> last message time (ms)
const up = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ user: req.headers['x-auth-request-user'] || null }));
});
const wss = new WebSocketServer({ server: up });
wss.on('connection', (ws, req) => {
  const user = req.headers['x-auth-request-user'];
  ws.on('message', (m) => { heard.set(user, now()); ws.send(m); });
  ws.on('error', () => {});
});
await new Promise((r) => up.listen(upPort, '127.0.0.1', r));
onCleanup(() => new Promise((r) => { for (const c of wss.clients) c.terminate(); up.close(() => r()); }));

// --- OP, edgegated (gate on the host veth), nginx on the host side of the veth ------------------
const [opPort, ngxPort, egPort] = [await freePort(), await freePort(), await freePort()];
// Logins happen from the host on loopback (cookie.secure=false needs a loopback
// public_url); the session cookie is then used by the client in the namespace.
const pub = `http://127.0.0.1:${ngxPort}`;
const client = {
  client_id: 'edgegate-rv', client_secret: 'rv-secret-0123456789abcdef0123456789',
  redirect_uris: [`${pub}/oauth2/callback`], post_logout_redirect_uris: [`${pub}/`],
  backchannel_logout_uri: `${pub}/oauth2/backchannel-logout`,
};
const op = await startOP({ port: opPort, clients: [client] });
onCleanup(() => op.stop());
const dir = tmpdir('eg-rv-');
const eg = await startEdgegated({
  listen: `127.0.0.1:${egPort}`,
  public_url: pub,
  log_level: 'info',
  cookie: { secure: false, secret: 'cookie-secret-0123456789abcdef0123456789' },
  oidc: {
    issuer: op.issuer, client_id: client.client_id, client_secret: client.client_secret,
    redirect_url: `${pub}/oauth2/callback`, scopes: ['openid', 'email', 'profile', 'groups'],
  },
  routes: [{ path: '/', auth: 'session' }],
  gate: {
    interfaces: [HV], xdp_mode: 'native', pin_root: PIN, protected_ports: [ngxPort],
    syn_rate: 1000, syn_burst: 1000,
  },
  ...(AS_UNIT ? { user: UNIT_USER } : {}),
}, { dir, wrap });
await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'OIDC discovery' });

// Every thread of both processes (/proc/PID/task/*/status).
function threads(pid) {
  return fs.readdirSync(`/proc/${pid}/task`).map((t) => {
    const st = Object.fromEntries(fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8').split('\n')
      .map((l) => l.split(':\t')).filter((kv) => kv.length === 2));
    return { t, ...st };
  });
}
const privPid = eg.proc.pid;
const httpPid = Number(execFileSync('pgrep', ['-P', String(privPid), '-x', 'edgegated']).toString().trim());
const uid = AS_UNIT ? Number(execFileSync('id', ['-u', UNIT_USER]).toString()) : 0;
const ZERO = '0000000000000000';
const NET_ADMIN = '0000000000001000';
const wantUid = `${uid}\t${uid}\t${uid}\t${uid}`;
const httpThreads = threads(httpPid);
const httpBad = httpThreads.filter((s) => s.CapEff !== ZERO || s.CapPrm !== ZERO || s.CapInh !== ZERO ||
  s.CapAmb !== ZERO || s.NoNewPrivs !== '1' || s.Uid !== wantUid);
ok(httpThreads.length >= 4 && httpBad.length === 0,
  `daemon process ${httpPid}: ${httpThreads.length} threads, every one uid ${uid}, no capability, no_new_privs`, httpBad);
const privThreads = threads(privPid);
const privBad = privThreads.filter((s) => s.CapEff !== NET_ADMIN || s.CapPrm !== NET_ADMIN || s.CapInh !== ZERO ||
  s.CapAmb !== ZERO || s.NoNewPrivs !== '1' || s.Uid !== wantUid);
ok(privThreads.length === 1 && privBad.length === 0,
  `privileged process ${privPid}: one thread, uid ${uid}, CAP_NET_ADMIN alone, no_new_privs`, privThreads);
if (AS_UNIT) {
  // the bounding set the unit gives: the bit of every CAP_ name in CapabilityBoundingSet
  const bits = { CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_SETGID: 6, CAP_SETUID: 7, CAP_NET_BIND_SERVICE: 10,
    CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_SYS_RESOURCE: 24, CAP_PERFMON: 38, CAP_BPF: 39 };
  // ... within the set this test itself runs under (a container may lack some)
  const own = BigInt(`0x${/^CapBnd:\s*(\w+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]}`);
  const want = unitCaps.reduce((a, c) => a | (1n << BigInt(bits[c] ?? 63)), 0n) & own;
  is(BigInt(`0x${privThreads[0].CapBnd}`).toString(16), want.toString(16), `started under the unit's bounding set (${unitCaps.join(' ')})`);
}
const nginx = await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen ${H}:${ngxPort};
    listen 127.0.0.1:${ngxPort};
    listen [::1]:${ngxPort};
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://127.0.0.1:${upPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 60s;
    }
  }`, { edgegate: `127.0.0.1:${egPort}` });
await waitFor(() => portOpen(ngxPort, H), { what: 'nginx' });

function admin(req) {
  return new Promise((resolve, reject) => {
    const c = net.connect(eg.admin);
    let buf = '';
    // destroy, not end: the admin socket serves one client at a time (5 s idle limit),
    // and an end()'s FIN waits for the event loop, which execFileSync blocks
    c.on('data', (d) => { buf += d; if (buf.includes('\n')) { c.destroy(); resolve(JSON.parse(buf)); } });
    c.on('error', reject);
    c.write(`${JSON.stringify(req)}\n`);
  });
}
async function metrics() { return (await request(`${eg.url}/metrics`)).body; }
function metric(body, line) {
  const l = body.split('\n').find((x) => x.startsWith(line));
  return l ? Number(l.split(' ').pop()) : 0;
}

// WebSocket clients in the namespace: one process per scenario, one socket per cookie.
// (host: true: from the host itself, to url)
function wsClients(cookies, { host = false, url = `ws://${H}:${ngxPort}/app/ws` } = {}) {
  const args = [process.execPath, path.join(ROOT, 'tools/bench/revoke/wsclient.mjs'), url, '20', '--log-msgs'];
  const p = host ? spawn(args[0], args.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], detached: true })
    : spawn('ip', ['netns', 'exec', NS, ...args], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
  onCleanup(() => { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } });
  const ev = [];
  readline.createInterface({ input: p.stdout }).on('line', (l) => { try { ev.push(JSON.parse(l)); } catch { /* noise */ } });
  p.stdin.end(cookies.join('\n') + '\n');
  const of = (i, e) => ev.filter((x) => x.i === i && (!e || x.ev === e));
  return { p, ev, of, msgsAfter: (i, t) => of(i, 'msg').filter((x) => x.t > t).length };
}

async function login(user) {
  const jar = new Jar();
  const r = await browserLogin(jar, `${pub}/app/`, user);
  is(r.status, 200, `${user} logged in through the OP and nginx`);
  const s = await admin({ cmd: 'sessions', sub: user });
  return { jar, cookie: jar.header(`${pub}/app/`), id: s.sessions?.[0]?.session_id };
}

// The verdict edgegated gives nginx for this cookie now.
async function verdict(cookie) {
  return (await request(`${eg.url}/auth`, {
    // the nginx profile's headers, as tools/nginx/edgegate.conf sends them
    headers: { 'x-original-uri': '/app/', 'x-original-method': 'GET', host: H, 'x-forwarded-proto': 'http',
               'x-real-ip': '127.0.0.1', cookie },
  })).status;
}

// Checks shared by both scenarios: the revoked socket died with a reset, nothing
// passed after tDone, the cookie is refused, nginx's socket is gone, others live on.
async function afterRevocation(label, cl, i, tDone, cookie, others) {
  await waitFor(() => cl.of(i, 'close').length > 0, { what: `${label}: WebSocket close`, timeout: 5000 }).catch(() => {});
  const close = cl.of(i, 'close')[0];
  const err = cl.of(i, 'error')[0];
  ok(close, `${label}: the WebSocket closed`);
  is(err?.code, 'ECONNRESET', `${label}: ... with a reset (client error ${err?.code})`);
  ok(close && close.t - tDone < 10, `${label}: within 10 ms of the revocation returning (${close ? (close.t - tDone).toFixed(1) : '?'} ms)`);
  is(cl.msgsAfter(i, tDone), 0, `${label}: no message reached the client after the revocation returned`);
  ok(close && close.last <= tDone, `${label}: last echo at ${close ? (close.last - tDone).toFixed(1) : '?'} ms relative to the return`);
  is(await verdict(cookie), 401, `${label}: a new request with the old cookie gets 401`);
  const est = execFileSync('ss', ['-tnH', 'state', 'established', 'src', `${H}:${ngxPort}`, 'dst', `${C}`]).toString().trim().split('\n').filter(Boolean);
  is(est.length, others.length, `${label}: nginx holds only the other users' sockets (${est.length} established from the client)`);
  for (const o of others) {
    const before = o.cl.of(o.i, 'msg').length;
    await sleep(300);
    ok(o.cl.of(o.i, 'msg').length > before + 5, `${label}: another user's WebSocket keeps exchanging messages`);
  }
}

// ---- 1. edgegatectl revoke --session ------------------------------------------------------------
const alice = await login('alice');
const carol = await login('carol');
ok(/^[0-9a-f]{64}$/.test(alice.id || ''), 'alice has a session id', alice.id);
const c1 = wsClients([alice.cookie, carol.cookie]);
await waitFor(() => c1.of(0, 'msg').length >= 10 && c1.of(1, 'msg').length >= 10, { what: 'WebSocket echoes', timeout: 8000 })
  .catch((e) => diag(`${e.message}\n${JSON.stringify(c1.ev.slice(-5))}\n${nginx.errorLog()}`));
ok(c1.of(0, 'msg').length >= 10, "alice's WebSocket through nginx exchanges messages");
const fl = await admin({ cmd: 'flows', session: alice.id });
const wsFlow = (fl.flows || []).find((f) => f.startsWith(`${C}:`) && f.endsWith(`${H}:${ngxPort}`));
ok(wsFlow, `edgegated tracks alice's WebSocket flow: ${wsFlow} (and her login flows: ${fl.flows?.length} in all)`, fl);
const cport = Number(/:(\d+) ->/.exec(wsFlow || '')?.[1]);
const ttr0 = metric(await metrics(), 'edgegate_revoke_duration_seconds_count');

const t0 = now();
const out = execFileSync(EDGEGATECTL, ['--admin-socket', eg.admin, 'revoke', '--session', alice.id],
  { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } }).toString();
const t1 = now();
ok(/revoked 1 session/.test(out), `edgegatectl revoke --session: ${out.trim()} (${(t1 - t0).toFixed(1)} ms)`);
await afterRevocation('revoke', c1, 0, t1, alice.cookie, [{ cl: c1, i: 1 }]);

const m = await metrics();
is(metric(m, 'edgegate_revoke_duration_seconds_count') - ttr0, 1, 'time-to-revoke histogram observed the revocation');
ok(metric(m, 'edgegate_revoked_flows_total{result="destroyed"}') >= 1, 'edgegate_revoked_flows_total{result="destroyed"}');
ok(/^edgegate_flows_tracked \d/m.test(m), 'edgegate_flows_tracked exported');
is(metric(m, 'edgegate_revoked_flows_total{result="failed"}'), 0, 'no flow failed to be destroyed');
const rflow = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${PIN}/eg_rflow_v1`]).toString());
ok(rflow.some((e) => e.formatted?.key?.sport === cport && e.formatted?.key?.dport === ngxPort),
  `bpftool: the flow ${C}:${cport} is in eg_rflow_v1`, rflow.map((e) => e.formatted?.key));
const rsess = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${PIN}/eg_rsess_v1`]).toString());
ok(rsess.some((e) => e.formatted?.value?.reason === 1 && e.formatted?.value?.revoked_unix > 0),
  'bpftool: eg_rsess_v1 holds the session hash, revocation time, reason 1 (admin)', rsess.map((e) => e.formatted));
const fl2 = await admin({ cmd: 'flows', session: alice.id });
is(fl2.flows?.length, 0, 'no flows tracked for the revoked session');
diag(`time to revoke (call to last socket destroyed, through the privileged process): ${JSON.stringify(fl2.time_to_revoke)}`);

// ---- 2. back-channel logout from the OP ---------------------------------------------------------
const bob = await login('bob');
const c2 = wsClients([bob.cookie]);
await waitFor(() => c2.of(0, 'msg').length >= 10, { what: "bob's echoes", timeout: 8000 }).catch(() => {});
ok(c2.of(0, 'msg').length >= 10, "bob's WebSocket exchanges messages");
let r = await bob.jar.follow(`${op.issuer}/session/end`);
const form = /<form[^>]*action="([^"]+)"[^>]*>/.exec(r.body);
const xsrf = /name="xsrf" value="([^"]+)"/.exec(r.body)?.[1];
ok(form && xsrf, 'the OP shows its sign-out form');
const calls = op.stats.backchannelCalls;
const t2 = now();
r = await bob.jar.follow(new URL(form[1], op.issuer).toString(), { method: 'POST', form: { xsrf, logout: 'yes' } });
const t3 = now();
is(op.stats.backchannelCalls - calls, 1, `the OP delivered the logout_token (sign-out took ${(t3 - t2).toFixed(1)} ms)`, op.stats.backchannelErrors);
await afterRevocation('back-channel logout', c2, 0, t3, bob.cookie, [{ cl: c1, i: 1 }]);
ok(c1.of(1, 'close').length === 0, "carol's WebSocket survived both revocations");

// ---- 3. an IPv6 loopback client: nginx listens on [::1] too -------------------------------------
// No XDP on loopback: the kill is the socket destroy alone, on an IPv6 4-tuple.
const dave = await login('dave');
const c3 = wsClients([dave.cookie, carol.cookie], { host: true, url: `ws://[::1]:${ngxPort}/app/ws` });
await waitFor(() => c3.of(0, 'msg').length >= 10 && c3.of(1, 'msg').length >= 10, { what: '[::1] echoes', timeout: 8000 }).catch(() => {});
ok(c3.of(0, 'msg').length >= 10, "dave's WebSocket to [::1] through nginx exchanges messages");
const fl3 = await admin({ cmd: 'flows', session: dave.id });
ok((fl3.flows || []).some((f) => /^\[::1\]:\d+ -> \[::1\]:/.test(f) && f.endsWith(`]:${ngxPort}`)),
  `edgegated tracks dave's IPv6 loopback flow (${JSON.stringify(fl3.flows)})`, fl3);
const t4 = now();
execFileSync(EDGEGATECTL, ['--admin-socket', eg.admin, 'revoke', '--session', dave.id],
  { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
const t5 = now();
await waitFor(() => c3.of(0, 'close').length > 0, { what: '[::1] close', timeout: 5000 }).catch(() => {});
const close6 = c3.of(0, 'close')[0];
ok(close6, '[::1]: the WebSocket closed');
is(c3.of(0, 'error')[0]?.code, 'ECONNRESET', '[::1]: ... with a reset');
ok(t5 - t4 < 1000, `[::1]: the revocation call returned in ${(t5 - t4).toFixed(1)} ms`);
ok(close6 && close6.t - t5 < 10, `[::1]: within 10 ms of the revocation returning (${close6 ? (close6.t - t5).toFixed(1) : '?'} ms)`);
is(c3.msgsAfter(0, t5), 0, '[::1]: no message reached the client after the revocation returned');
is(await verdict(dave.cookie), 401, '[::1]: the old cookie gets 401');
const est6 = execFileSync('ss', ['-tnH', 'state', 'established', 'src', `[::1]:${ngxPort}`]).toString().trim().split('\n').filter(Boolean);
is(est6.length, 1, `[::1]: nginx holds only carol's IPv6 socket (${est6.length})`);
{
  const before = c3.of(1, 'msg').length;
  await sleep(300);
  ok(c3.of(1, 'msg').length > before + 5, "[::1]: carol's IPv6 WebSocket keeps exchanging messages");
}

// ---- 4. headless Chromium: a page's WebSocket dies with the session ---------------------------
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
let chromium = null;
try { ({ chromium } = await import('playwright-core')); } catch { /* below */ }
if (!chromium || !fs.existsSync(CHROMIUM)) {
  ok(process.env.CI !== 'true', `# SKIP Chromium part: no playwright-core or no ${CHROMIUM}`);
} else {
  const erin = await login('erin');
  const profile = fs.mkdtempSync(path.join(dir, 'chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  onCleanup(() => browser.close().catch(() => {}));
  await browser.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()));
  await browser.addCookies(erin.cookie.split(/;\s*/).filter(Boolean).map((kv) => {
    const i = kv.indexOf('=');
    return { name: kv.slice(0, i), value: kv.slice(i + 1), url: pub };
  }));
  const page = browser.pages()[0] || await browser.newPage();
  const res = await page.goto(`${pub}/app/`);
  let seenUser = null;
  try { seenUser = JSON.parse(await page.textContent('body')).user; } catch { /* below */ }
  ok(res.status() === 200 && seenUser, `Chromium with erin's session: the page loads through nginx (${res.status()}, upstream user ${seenUser})`);
  // Epoch milliseconds on both sides (performance.timeOrigin + now()): the page's events
  // and this process's revocation time are on the same clock.
  const wall = () => performance.timeOrigin + performance.now();
  await page.evaluate((url) => {
    const t = () => performance.timeOrigin + performance.now();
    window.ev = [];
    const ws = new WebSocket(url);
    let seq = 0;
    ws.onopen = () => { window.ev.push({ ev: 'open', t: t() }); setInterval(() => { if (ws.readyState === 1) ws.send(JSON.stringify({ seq: seq++ })); }, 20); };
    ws.onmessage = () => window.ev.push({ ev: 'msg', t: t() });
    ws.onerror = () => window.ev.push({ ev: 'error', t: t() });
    ws.onclose = (e) => window.ev.push({ ev: 'close', code: e.code, clean: e.wasClean, t: t() });
  }, `ws://127.0.0.1:${ngxPort}/app/ws`);
  const evs = () => page.evaluate(() => window.ev);
  await waitFor(async () => (await evs()).filter((e) => e.ev === 'msg').length >= 10, { what: 'Chromium echoes', timeout: 8000 }).catch(() => {});
  ok((await evs()).filter((e) => e.ev === 'msg').length >= 10, "erin's WebSocket in Chromium exchanges messages");
  const tc = now();
  execFileSync(EDGEGATECTL, ['--admin-socket', eg.admin, 'revoke', '--session', erin.id],
    { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
  const tw = wall();
  ok(now() - tc < 1000, `Chromium: the revocation call returned in ${(now() - tc).toFixed(1)} ms`);
  await waitFor(async () => (await evs()).some((e) => e.ev === 'close'), { what: 'Chromium close', timeout: 5000 }).catch(() => {});
  const ev = await evs();
  const cl = ev.find((e) => e.ev === 'close');
  ok(cl && !cl.clean && cl.code === 1006, `Chromium: the WebSocket closed abnormally (code ${cl?.code}, clean ${cl?.clean})`);
  ok(cl && cl.t - tw < 10, `Chromium: the page saw it within 10 ms of the revocation returning (${cl ? (cl.t - tw).toFixed(1) : '?'} ms)`);
  is(ev.filter((e) => e.ev === 'msg' && e.t > tw).length, 0, 'Chromium: no message reached the page after the revocation returned');
  // (the browser also holds the OP's session cookie: a page load now signs in again
  // through the OP, with a new session; the revoked one stays refused)
  is(await verdict(erin.cookie), 401, "Chromium: erin's revoked session cookie gets 401");
  const s2 = await admin({ cmd: 'sessions', sub: 'erin' });
  ok(!(s2.sessions || []).some((x) => x.session_id === erin.id), 'Chromium: the revoked session is not among erin\'s live sessions', s2);
  await browser.close();
}

await done();
