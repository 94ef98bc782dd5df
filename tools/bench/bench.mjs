#!/usr/bin/env node
// bench.mjs - the verdict benchmark behind `make bench` (tools/bench/run.sh runs it).
//
// One run, one machine, one table. nginx (one worker) serves a static file behind
// auth_request; wrk drives it on loopback. Cases run in interleaved rounds
// (a b c d ... a b c d ...), so slow drift of the machine hits every case alike, and
// every figure is also given as a ratio to the ceiling (b): the same nginx, the same
// shipped include, but the subrequest answered by a second nginx that always says 204.
//
// env: EGB_ROUNDS (3), EGB_SECONDS (5), EGB_CONNS (32), EGB_SESSIONS (100000),
//      EGB_RSS_VERDICTS (1000000), EGB_RSS_MAX_S (120), EGB_SKIP_APACHE, EGB_SKIP_XDP,
//      EGB_OUT (build/bench), EDGEGATED (build/edgegated), EGB_PERF=1 (perf record the
//      daemon in the last round of the cold cases; or a list of case ids: EGB_PERF=c,d_rs,e_es;
//      reports in OUT/perf-<case>.txt; EGB_PERF_CALLGRAPH=dwarf for callers through libc and
//      OpenSSL, which have no frame pointers), EGB_SLOW_CONNS (2000, the slowloris phase;
//      EGB_SLOW_ROUNDS (5) paired rounds, EGB_SLOW_IDLE_S (12) s of the attack alone),
//      EGB_FLOOR (build/bench/floorsrv: case (floor), the least a process can do per subrequest),
//      EGB_LANE=0 (http.lane off: every request through libmicrohttpd, for a before/after),
//      EGB_EDGEGATED_B (a second daemon binary, also named edgegated, e.g. main's build: case
//      d_rs_b is d_rs against it, in the same interleaved rounds, so a before/after shares
//      every round's load; it listens on its own unix socket with the same configuration;
//      EGB_THREADS_B sets its `threads`, EGB_LANE_THREADS_B its `http.lane_threads`, as EGB_THREADS and
//      EGB_LANE_THREADS do the first's), EGB_NGINX_WORKERS (1: nginx's worker_processes), EGB_SYSCALLS=floor,d_rs (perf stat: system calls by
//      type, context switches and CPU per thread, per request, in the last round of these cases;
//      reports in OUT/syscalls-<case>.txt).
// --only LIST (or EGB_ONLY=LIST): run only these case ids and/or phases, comma-separated,
//      e.g. `--only memory` or `--only b,c,memory`; "memory" is the RSS phase, "crypto" the
//      openssl/josebench figures. Apache starts only for ap_* cases; XDP/revoke benches are
//      skipped. Without it everything runs.
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
process.chdir(ROOT);
const env = (k, d) => (process.env[k] === undefined || process.env[k] === '' ? d : process.env[k]);
const onlyArg = process.argv.indexOf('--only');
const ONLY = (onlyArg >= 0 ? process.argv[onlyArg + 1] || '' : env('EGB_ONLY', '')).split(',').filter(Boolean);
const wanted = (id) => !ONLY.length || ONLY.includes(id);
const ROUNDS = Number(env('EGB_ROUNDS', 3));
const SECONDS = Number(env('EGB_SECONDS', 5));
const CONNS = Number(env('EGB_CONNS', 32));
const NGINX_WORKERS = Number(env('EGB_NGINX_WORKERS', 1)); // nginx worker_processes (every nginx of the run)
const N_SESSIONS = Number(env('EGB_SESSIONS', 100000));
const RSS_VERDICTS = Number(env('EGB_RSS_VERDICTS', 1000000));
const RSS_MAX_S = Number(env('EGB_RSS_MAX_S', 120));
const N_COLD = Number(env('EGB_COLD_TOKENS', 8192));
const OUT = path.resolve(env('EGB_OUT', 'build/bench'));
const EDGEGATED = path.resolve(env('EDGEGATED', 'build/edgegated'));
const MKSESSIONS = path.resolve(env('EGB_MKSESSIONS', 'build/bench/mksessions'));
const ISS = 'https://idp.example.test';
const AUD = 'api://bench';
const HZ = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

const t0 = Date.now();
const load0 = os.loadavg();
const log = (...a) => console.error(`[bench +${((Date.now() - t0) / 1000).toFixed(0)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- processes: every one we start is a process-group leader, killed on exit ----------------
const children = [];
function start(name, cmd, args, opts = {}) {
  const logFile = path.join(W, `${name}.log`);
  const fd = fs.openSync(logFile, 'a');
  const p = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], ...opts });
  p.logFile = logFile;
  p.name = name;
  children.push(p);
  return p;
}
function cleanup() {
  for (const c of children.splice(0)) {
    try { process.kill(-c.pid, 'SIGTERM'); } catch { /* gone */ }
  }
}
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { cleanup(); process.exit(130); });

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function httpStatus(url, headers = {}) {
  const args = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const r = spawnSync('curl', args);
  return Number(r.stdout.toString() || 0);
}

async function waitHttp(url, what, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const s = httpStatus(url);
    if (s >= 200 && s < 500) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what} (${url})`);
}

// CPU ticks of a process tree (live processes; threads are included in a process' stat).
function treePids(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const t of fs.readdirSync(`/proc/${out[i]}/task`)) {
        const kids = fs.readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch { /* exited */ }
  }
  return out;
}
// [utime, stime] ticks of a process tree
function cpuSplit(pid) {
  const sum = [0, 0];
  for (const p of treePids(pid)) {
    try {
      const s = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      sum[0] += Number(f[11]);
      sum[1] += Number(f[12]);
    } catch { /* exited */ }
  }
  return sum;
}
function cpuTicks(pid) {
  let sum = 0;
  for (const p of treePids(pid)) {
    try {
      const s = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      sum += Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
    } catch { /* exited */ }
  }
  return sum;
}
// Context switches of a process tree (every thread): voluntary ones are mostly a thread going
// to sleep in epoll_wait and being woken for the next request.
function ctxSwitches(pid) {
  let sum = 0;
  for (const p of treePids(pid)) {
    try {
      for (const t of fs.readdirSync(`/proc/${p}/task`)) {
        const s = fs.readFileSync(`/proc/${p}/task/${t}/status`, 'utf8');
        sum += Number((s.match(/^voluntary_ctxt_switches:\s+(\d+)/m) || [0, 0])[1]);
      }
    } catch { /* exited */ }
  }
  return sum;
}
function memStatus(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [0, 0])[1]);
  return { rss_kib: kb('VmRSS'), anon_kib: kb('RssAnon'), file_kib: kb('RssFile'), shmem_kib: kb('RssShmem'), hwm_kib: kb('VmHWM') };
}

// ---- wrk ---------------------------------------------------------------------------------
function wrk(url, { seconds = SECONDS, conns = CONNS, threads = 1, file = '', header = 'Authorization', pathname = '/x', extra = '' } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn('wrk', ['-t', String(threads), '-c', String(conns), '-d', `${seconds}s`, '--timeout', '5s',
      '-s', path.join(ROOT, 'tools/bench/wrk.lua'), url], {
      env: { ...process.env, EGB_FILE: file, EGB_HEADER: header, EGB_COOKIE: '__Host-edgegate', EGB_PATH: pathname, EGB_EXTRA: extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('exit', (code) => {
      const m = out.match(/EGB_JSON (\{.*\})/);
      if (code !== 0 || !m) return reject(new Error(`wrk failed (${code}): ${out}`));
      resolve(JSON.parse(m[1]));
    });
  });
}

// ---- set-up --------------------------------------------------------------------------------
const W = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'edgegate-bench-'));
fs.chmodSync(W, 0o755); // nginx workers and Apache (www-data) read files and reach sockets here
process.on('exit', () => { if (!process.env.EGB_KEEP) fs.rmSync(W, { recursive: true, force: true }); });
fs.mkdirSync(OUT, { recursive: true });

const P = { main: {}, trivial: await freePort(), trivialTls: await freePort(), eg: await freePort(), egB: await freePort(), apache: await freePort() };
for (const k of ['a', 'b', 'b_tcp', 'eg', 'eg_tcp', 'ap', 'njs', 'floor', 'eg_b']) P.main[k] = await freePort();

log(`workdir ${W}; minting keys and ${N_COLD} cold tokens per algorithm`);
execFileSync('node', [path.join(ROOT, 'tools/bench/mint.mjs'), W, ISS, AUD, String(N_COLD)], { stdio: 'inherit' });
const tok = (name) => fs.readFileSync(path.join(W, name), 'utf8').split('\n')[0];

// static content: the protected "app" is a 3-byte file nginx serves itself
fs.mkdirSync(path.join(W, 'www'));
fs.writeFileSync(path.join(W, 'www/ok.txt'), 'ok\n');
fs.mkdirSync(path.join(W, 'idp'));
fs.copyFileSync(path.join(W, 'jwks.json'), path.join(W, 'idp/jwks.json'));
const trivialBase = `http://127.0.0.1:${P.trivial}`;
fs.writeFileSync(path.join(W, 'idp/openid-configuration'), JSON.stringify({
  issuer: trivialBase, authorization_endpoint: `${trivialBase}/authorize`, token_endpoint: `${trivialBase}/token`,
  jwks_uri: `${trivialBase}/jwks.json`, response_types_supported: ['code'], subject_types_supported: ['public'],
  id_token_signing_alg_values_supported: ['RS256', 'ES256'],
}));

function nginxConf(name, httpBody, top = '') {
  const d = path.join(W, name);
  fs.mkdirSync(path.join(d, 'logs'), { recursive: true });
  const conf = `${top}
daemon off;
master_process on;
worker_processes ${NGINX_WORKERS};
worker_rlimit_nofile 8192;
pid ${d}/nginx.pid;
error_log ${d}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${d}/cb; proxy_temp_path ${d}/px; fastcgi_temp_path ${d}/fc;
  uwsgi_temp_path ${d}/uw; scgi_temp_path ${d}/sc;
  keepalive_requests 1000000;
  default_type text/plain;
${httpBody}
}
`;
  fs.writeFileSync(path.join(d, 'nginx.conf'), conf);
  execFileSync('nginx', ['-t', '-q', '-p', d, '-c', path.join(d, 'nginx.conf')], { stdio: 'pipe' });
  return start(name, 'nginx', ['-p', d, '-c', path.join(d, 'nginx.conf')]);
}

// mod_auth_openidc only fetches a JWKS over https: a throw-away certificate for it
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
  '-subj', '/CN=127.0.0.1', '-keyout', path.join(W, 'idp/tls.key'), '-out', path.join(W, 'idp/tls.crt')], { stdio: 'pipe' });

// (b) the trivial authorizer: its own nginx, one worker, 204 for everything on /auth.
// It also serves the JWKS (Apache fetches it) and a discovery document (edgegated's oidc).
const trivial = nginxConf('trivial', `
  server {
    listen 127.0.0.1:${P.trivial};
    listen unix:${W}/trivial.sock;
    keepalive_timeout 120s;
    location = /auth { return 204; }
    location = /jwks.json { default_type application/json; alias ${W}/idp/jwks.json; }
    location = /.well-known/openid-configuration { default_type application/json; alias ${W}/idp/openid-configuration; }
  }
  server {
    listen 127.0.0.1:${P.trivialTls} ssl;
    ssl_certificate ${W}/idp/tls.crt;
    ssl_certificate_key ${W}/idp/tls.key;
    location = /jwks.json { default_type application/json; alias ${W}/idp/jwks.json; }
  }`);
await waitHttp(`${trivialBase}/auth`, 'trivial authorizer');

// edgegated: the optimised build, the same config shape a deployment has.
const egCfg = {
  listen: [`127.0.0.1:${P.eg}`, `unix:${W}/eg.sock`],
  listen_group: 'nogroup', // the socket is 0660: the group of the nginx workers (nobody:nogroup)
  admin_socket: path.join(W, 'eg-admin.sock'),
  state_dir: path.join(W, 'eg-state'),
  log_level: 'warn',
  // nginx connects from 127.0.0.1; the slowloris phase attacks from other loopback addresses
  trusted_proxies: ['127.0.0.1/32', '::1/128'],
  oidc: { issuer: trivialBase, client_id: 'bench', client_secret: 'bench-secret', redirect_url: `http://127.0.0.1:${P.main.eg}/oauth2/callback` },
  jwt: {
    jwks_file: path.join(W, 'jwks.json'), issuer: ISS, audience: AUD, algorithms: ['RS256', 'ES256'],
    // Small enough that cycling through N_COLD distinct tokens never hits (checked below
    // with the daemon's own hit counter); the warm cases use one token each.
    cache_entries: 1024,
  },
  routes: [
    { path: '/s/', auth: 'session', allow: { domains: ['example.test'] }, deny: { emails: ['mallory@example.test'] } },
    { path: '/api/', auth: 'bearer', allow: { domains: ['example.test'] }, deny: { emails: ['mallory@example.test'] } },
  ],
};
// case (c) shares one session cookie over all CONNS wrk connections: past the session's cap of
// live connections (revocation.flows_per_session, 128) the rest would get 403
if (CONNS > 128) egCfg.revocation = { flows_per_session: Math.min(CONNS, 4096) };
if (process.env.EGB_THREADS) egCfg.threads = Number(process.env.EGB_THREADS); // MHD worker threads per listener
if (process.env.EGB_LANE) egCfg.http = { lane: process.env.EGB_LANE !== '0' }; // EGB_LANE=0: libmicrohttpd only (before issue 15's lane)
if (process.env.EGB_LANE_THREADS) egCfg.http = { ...egCfg.http, lane_threads: Number(process.env.EGB_LANE_THREADS) }; // verdict-lane threads per listener
fs.writeFileSync(path.join(W, 'edgegate.json'), JSON.stringify(egCfg, null, 2));
execFileSync(EDGEGATED, ['--config', path.join(W, 'edgegate.json'), '--check'], { stdio: 'inherit' });

let sessionsReady = false;
let sessionNote = '';
let tSess = 0;
try {
  log(`creating ${N_SESSIONS} sessions with eg_session_create (tools/bench/mksessions.c)`);
  const ts = Date.now();
  const r = spawnSync(MKSESSIONS, [path.join(W, 'edgegate.json'), String(N_SESSIONS)], { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(r.stderr.toString());
  fs.writeFileSync(path.join(W, 'tickets.txt'), r.stdout);
  tSess = (Date.now() - ts) / 1000;
  sessionsReady = true;
} catch (e) {
  sessionNote = `sessions could not be created: ${String(e.message).split('\n')[0]}`;
  log(sessionNote);
}
if (sessionsReady) fs.writeFileSync(path.join(W, 'ticket1.txt'), `${tok('tickets.txt')}\n`);

const egMain = start('edgegated', EDGEGATED, ['--config', path.join(W, 'edgegate.json')]);
await waitHttp(`http://127.0.0.1:${P.eg}/healthz`, 'edgegated');
// The process that answers verdicts is the privileged process's child (docs/privsep.md):
// CPU, RSS and perf are measured there.
const eg = { pid: Number(execFileSync('pgrep', ['-P', String(egMain.pid), '-x', 'edgegated']).toString().trim()) };

// EGB_EDGEGATED_B: a second daemon (another build) for case d_rs_b, its own socket and state
const EDGEGATED_B = process.env.EGB_EDGEGATED_B ? path.resolve(process.env.EGB_EDGEGATED_B) : '';
let egB = null;
if (EDGEGATED_B && wanted('d_rs_b')) {
  // a TCP listener too, as the first daemon has (its lane threads serve both)
  const cfgB = { ...egCfg, listen: [`127.0.0.1:${P.egB}`, `unix:${W}/egb.sock`], admin_socket: path.join(W, 'egb-admin.sock'), state_dir: path.join(W, 'egb-state') };
  if (process.env.EGB_THREADS_B) cfgB.threads = Number(process.env.EGB_THREADS_B); // the same build, another thread count
  if (process.env.EGB_LANE_THREADS_B) cfgB.http = { ...cfgB.http, lane_threads: Number(process.env.EGB_LANE_THREADS_B) };
  fs.writeFileSync(path.join(W, 'edgegate-b.json'), JSON.stringify(cfgB, null, 2));
  const egBMain = start('edgegated-b', EDGEGATED_B, ['--config', path.join(W, 'edgegate-b.json')]);
  for (let i = 0; i < 100 && !fs.existsSync(path.join(W, 'egb.sock')); i++) await sleep(100);
  await sleep(300);
  egB = { pid: Number(execFileSync('pgrep', ['-P', String(egBMain.pid), '-x', 'edgegated']).toString().trim()) };
}

// (floor) tools/bench/floorsrv.c: one epoll thread answering a fixed 200 on a unix socket,
// the least any authorizer process can spend per subrequest (no parsing, no verdict).
const FLOOR = path.resolve(env('EGB_FLOOR', 'build/bench/floorsrv'));
const floorOk = fs.existsSync(FLOOR) && wanted('floor');
const floor = floorOk ? start('floorsrv', FLOOR, [path.join(W, 'floor.sock')]) : null;

// Apache 2 + Debian's mod_auth_openidc, validating the same JWTs from the JWKS URI.
let apache = null;
let apacheNote = '';
const apacheMod = '/usr/lib/apache2/modules/mod_auth_openidc.so';
if (process.env.EGB_SKIP_APACHE || !(wanted('ap_rs') || wanted('ap_es'))) {
  apacheNote = process.env.EGB_SKIP_APACHE ? 'skipped (EGB_SKIP_APACHE)' : 'not selected (--only)';
} else if (!fs.existsSync(apacheMod) || !fs.existsSync('/usr/sbin/apache2')) {
  apacheNote = 'apache2 or libapache2-mod-auth-openidc not installed';
} else {
  const d = path.join(W, 'apache');
  fs.mkdirSync(path.join(d, 'www'), { recursive: true });
  fs.writeFileSync(path.join(d, 'www/auth'), '');
  const m = (n) => `LoadModule ${n}_module /usr/lib/apache2/modules/mod_${n}.so`;
  fs.writeFileSync(path.join(d, 'httpd.conf'), `ServerRoot ${d}
ServerName 127.0.0.1
Listen 127.0.0.1:${P.apache}
PidFile ${d}/httpd.pid
ErrorLog ${d}/error.log
LogLevel warn
DefaultRuntimeDir ${d}
User www-data
Group www-data
${m('mpm_event')}
${m('authn_core')}
${m('authz_core')}
${m('authz_user')}
LoadModule auth_openidc_module ${apacheMod}
StartServers 2
ServerLimit 4
ThreadsPerChild 32
MaxRequestWorkers 128
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 120
DocumentRoot ${d}/www
<Directory ${d}/www>
  Require all granted
</Directory>
OIDCCryptoPassphrase bench-passphrase
OIDCOAuthVerifyJwksUri https://127.0.0.1:${P.trivialTls}/jwks.json
OIDCOAuthSSLValidateServer Off
OIDCOAuthRemoteUserClaim sub
<Location /auth>
  AuthType oauth20
  Require valid-user
</Location>
`);
  try {
    execFileSync('/usr/sbin/apache2', ['-t', '-f', path.join(d, 'httpd.conf')], { stdio: 'pipe' });
    apache = start('apache', '/usr/sbin/apache2', ['-f', path.join(d, 'httpd.conf'), '-DFOREGROUND']);
    await waitHttp(`http://127.0.0.1:${P.apache}/auth`, 'apache');
  } catch (e) {
    apacheNote = `apache did not start: ${String(e.stderr || e.message).split('\n')[0]}`;
    apache = null;
  }
}

// The main nginx: one worker, one server per variant, each protected with the shipped
// includes (tools/nginx/*.conf); only the upstream name differs between variants.
const NGX_INC = path.resolve(env('EGB_NGINX_DIR', path.join(ROOT, 'tools/nginx')));
const inc = (up) => {
  const f = path.join(W, `edgegate-${up}.conf`);
  fs.writeFileSync(f, fs.readFileSync(path.join(NGX_INC, 'edgegate.conf'), 'utf8')
    .replaceAll('http://edgegate', `http://${up}`));
  return f;
};
const upstreamTpl = fs.readFileSync(path.join(NGX_INC, 'edgegate-upstream.conf'), 'utf8');
const upstream = (name, server) => upstreamTpl
  .replace(/upstream edgegate\b/, `upstream ${name}`)
  .replace(/server unix:[^;]*;[^\n]*/, `server ${server};`);
const protectedServer = (port, up) => `
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${W}/www;
    include ${inc(up)};
    location / {
      include ${NGX_INC}/edgegate-protect.conf;
      try_files /ok.txt =404;
    }
  }`;
// The in-process reference: nginx's own njs (libnginx-mod-http-js) checks an HS256 token
// (signature, exp, iss, aud) in js_set, with no subrequest and no authorizer process.
const NJS_MOD = '/usr/lib/nginx/modules/ngx_http_js_module.so';
const njsOk = fs.existsSync(NJS_MOD);
const HS_KEY = crypto.randomBytes(32).toString('base64url');
{
  const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const h = b64({ alg: 'HS256', typ: 'JWT' });
  const p = b64({ sub: 'bench-user', email: 'alice@example.test', iss: ISS, aud: AUD, exp: Math.floor(Date.now() / 1000) + 3600 });
  fs.writeFileSync(path.join(W, 'warm-HS256.txt'), `${h}.${p}.${crypto.createHmac('sha256', HS_KEY).update(`${h}.${p}`).digest('base64url')}\n`);
  fs.writeFileSync(path.join(W, 'jwt.js'), `const crypto = require('crypto');
function verify(r) {
  const auth = r.headersIn.Authorization || '';
  if (auth.slice(0, 7) !== 'Bearer ') return '0';
  const p = auth.slice(7).split('.');
  if (p.length !== 3) return '0';
  if (crypto.createHmac('sha256', '${HS_KEY}').update(p[0] + '.' + p[1]).digest('base64url') !== p[2]) return '0';
  let c;
  try { c = JSON.parse(Buffer.from(p[1], 'base64url').toString()); } catch (e) { return '0'; }
  return c.exp > Date.now() / 1000 && c.iss === '${ISS}' && c.aud === '${AUD}' ? '1' : '0';
}
export default { verify };
`);
}
const main = nginxConf('main', `
  ${njsOk ? `js_import jwt from ${W}/jwt.js; js_set $jwt_ok jwt.verify;
  server {
    listen 127.0.0.1:${P.main.njs} backlog=4096;
    root ${W}/www;
    location / { if ($jwt_ok != 1) { return 401; } try_files /ok.txt =404; }
  }` : ''}
  ${upstream('edgegate', `unix:${W}/eg.sock`)}
  ${upstream('edgegate_tcp', `127.0.0.1:${P.eg}`)}
  ${upstream('trivial', `unix:${W}/trivial.sock`)}
  ${upstream('trivial_tcp', `127.0.0.1:${P.trivial}`)}
  ${upstream('apache', `127.0.0.1:${P.apache}`)}
  ${upstream('floor', `unix:${W}/floor.sock`)}
  ${egB ? upstream('edgegate_b', `unix:${W}/egb.sock`) : ''}
  server {
    listen 127.0.0.1:${P.main.a} backlog=4096;
    root ${W}/www;
    location / { try_files /ok.txt =404; }
  }
  ${protectedServer(P.main.b, 'trivial')}
  ${protectedServer(P.main.b_tcp, 'trivial_tcp')}
  ${protectedServer(P.main.eg, 'edgegate')}
  ${protectedServer(P.main.eg_tcp, 'edgegate_tcp')}
  ${protectedServer(P.main.ap, 'apache')}
  ${protectedServer(P.main.floor, 'floor')}
  ${egB ? protectedServer(P.main.eg_b, 'edgegate_b') : ''}
`, njsOk ? `load_module ${NJS_MOD};` : '');
await waitHttp(`http://127.0.0.1:${P.main.a}/`, 'nginx');

// ---- the cases -------------------------------------------------------------------------------
const F = (n) => path.join(W, n);
const u = (k) => `http://127.0.0.1:${P.main[k]}`;
const cases = [
  { id: 'a', label: '(a) no auth', url: u('a'), pathname: '/x', expect: 200, ceiling: 'b' },
  { id: 'b', label: '(b) auth_request -> trivial 204 nginx (unix)', url: u('b'), pathname: '/x', expect: 200, ceiling: 'b', cpuOf: () => trivial },
  { id: 'b_tcp', label: '(b) same, over TCP', url: u('b_tcp'), pathname: '/x', expect: 200, ceiling: 'b_tcp', cpuOf: () => trivial },
  // the same request as (d_rs), token included: nginx parses it and forwards it in the subrequest
  // (about 7,700 of its instructions per request, callgrind), whatever answers
  { id: 'floor', label: '(floor) auth_request -> fixed-200 epoll loop (unix)', url: u('floor'), pathname: '/api/x', file: F('warm-RS256.txt'), expect: 200, ceiling: 'b', cpuOf: () => floor, needs: () => floorOk || `${FLOOR} missing or not selected` },
  { id: 'c', label: '(c) edgegated, session cookie', url: u('eg'), pathname: '/s/x', file: F('ticket1.txt'), header: 'Cookie', expect: 200, ceiling: 'b', cpuOf: () => eg, needs: () => sessionsReady || sessionNote },
  { id: 'd_rs', label: '(d) edgegated, bearer RS256, cache warm', url: u('eg'), pathname: '/api/x', file: F('warm-RS256.txt'), expect: 200, ceiling: 'b', cpuOf: () => eg },
  { id: 'd_rs_b', label: '(d) RS256 warm, the second daemon (EGB_EDGEGATED_B)', url: u('eg_b'), pathname: '/api/x', file: F('warm-RS256.txt'), expect: 200, ceiling: 'b', cpuOf: () => egB, needs: () => !!egB || 'EGB_EDGEGATED_B not set' },
  { id: 'd_es', label: '(d) edgegated, bearer ES256, cache warm', url: u('eg'), pathname: '/api/x', file: F('warm-ES256.txt'), expect: 200, ceiling: 'b', cpuOf: () => eg },
  { id: 'd_rs_tcp', label: '(d) RS256 warm, nginx->edgegated over TCP', url: u('eg_tcp'), pathname: '/api/x', file: F('warm-RS256.txt'), expect: 200, ceiling: 'b_tcp', cpuOf: () => eg },
  { id: 'e_rs', label: '(e) edgegated, cold RS256 (verify every request)', url: u('eg'), pathname: '/api/x', file: F('cold-RS256.txt'), expect: 200, ceiling: 'b', cpuOf: () => eg, cold: true },
  { id: 'e_es', label: '(e) edgegated, cold ES256 (verify every request)', url: u('eg'), pathname: '/api/x', file: F('cold-ES256.txt'), expect: 200, ceiling: 'b', cpuOf: () => eg, cold: true },
  { id: 'f', label: '(f) edgegated, policy deny (403)', url: u('eg'), pathname: '/api/x', file: F('deny-RS256.txt'), expect: 403, ceiling: 'b', cpuOf: () => eg },
  { id: 'ap_rs', label: 'Apache+mod_auth_openidc, RS256 (JWKS URI)', url: u('ap'), pathname: '/api/x', file: F('warm-RS256.txt'), expect: 200, ceiling: 'b_tcp', cpuOf: () => apache, needs: () => !!apache || apacheNote },
  { id: 'njs', label: 'njs in nginx, HS256 (in-process, no authorizer)', url: u('njs'), pathname: '/api/x', file: F('warm-HS256.txt'), expect: 200, ceiling: 'b', needs: () => njsOk || `${NJS_MOD} missing (libnginx-mod-http-js)` },
  { id: 'ap_es', label: 'Apache+mod_auth_openidc, ES256 (JWKS URI)', url: u('ap'), pathname: '/api/x', file: F('warm-ES256.txt'), expect: 200, ceiling: 'b_tcp', cpuOf: () => apache, needs: () => !!apache || apacheNote },
];

// Every case must answer what it claims before it is measured.
for (const c of cases) {
  if (!wanted(c.id)) { c.skip = 'not selected (--only)'; continue; }
  const need = c.needs ? c.needs() : true;
  if (need !== true) { c.skip = need; continue; }
  const h = {};
  if (c.file) {
    const t = tok(path.basename(c.file));
    if (c.header === 'Cookie') h.Cookie = `__Host-edgegate=${t}`; else h.Authorization = `Bearer ${t}`;
  }
  const s = httpStatus(`${c.url}${c.pathname}`, h);
  if (s !== c.expect) {
    c.skip = `pre-check answered ${s}, expected ${c.expect}`;
    log(`${c.id}: ${c.skip}`);
  }
}
// the same token must be refused without a credential (the gate is really on)
for (const k of ['b', 'eg', 'ap']) {
  if (k === 'ap' && !apache) continue;
  const s = httpStatus(`${u(k)}/api/x`);
  // edgegated sends browsers to the login (302 via the include's error_page), APIs get 401
  if (k !== 'b' && s !== 401 && s !== 302) throw new Error(`${k}: a request without a token answered ${s}, not 401/302`);
}

async function hits() {
  const r = spawnSync('curl', ['-s', `http://127.0.0.1:${P.eg}/metrics`]);
  const t = r.stdout.toString();
  const g = (re) => Number((t.match(re) || [0, 0])[1]);
  return { hit: g(/edgegate_token_cache_total\{result="hit"\} (\d+)/), miss: g(/edgegate_token_cache_total\{result="miss"\} (\d+)/) };
}

async function measure(c, seconds) {
  const pr = c.cpuOf ? c.cpuOf() : null;
  const cpu0 = pr ? cpuTicks(pr.pid) : 0;
  const split0 = pr ? cpuSplit(pr.pid) : null;
  const cs0 = pr ? ctxSwitches(pr.pid) : 0;
  const box0 = cpuTicks(main.pid);
  const h0 = c.cold ? await hits() : null;
  const r = await wrk(`${c.url}`, { seconds, file: c.file || '', header: c.header || 'Authorization', pathname: c.pathname });
  const boxTicks = cpuTicks(main.pid) - box0;
  if (pr) r.cpu_us_per_req = ((cpuTicks(pr.pid) - cpu0) * 1e6) / HZ / r.requests;
  if (pr) r.sleeps_per_req = (ctxSwitches(pr.pid) - cs0) / r.requests;
  if (pr) {
    const split1 = cpuSplit(pr.pid);
    r.user_us_per_req = ((split1[0] - split0[0]) * 1e6) / HZ / r.requests;
    r.sys_us_per_req = ((split1[1] - split0[1]) * 1e6) / HZ / r.requests;
  }
  // nginx (master + worker) plus the authorizer: the CPU the box spends per request, wrk aside
  r.box_cpu_us_per_req = ((boxTicks + (pr ? cpuTicks(pr.pid) - cpu0 : 0)) * 1e6) / HZ / r.requests;
  if (c.cold) {
    const h1 = await hits();
    r.cache_hits = h1.hit - h0.hit;
    r.cache_misses = h1.miss - h0.miss;
  }
  r.rps = r.requests / (r.duration_us / 1e6);
  return r;
}

// EGB_SYSCALLS=floor,d_rs: count the authorizer's system calls (by type), context switches and
// CPU time per thread with perf stat (tracepoints and software events: no PMU needed) during the
// last round of these cases, and divide by the requests wrk counted. Counts do not depend on the
// machine's load the way times do. Reports in OUT/syscalls-<case>.txt.
async function syscallsStart(c) {
  const pid = String(c.cpuOf().pid);
  const f = (k) => path.join(OUT, `syscalls-${c.id}.${k}.csv`);
  const procs = [
    spawn('perf', ['stat', '-x', ',', '-o', f('threads'), '--per-thread', '-e', 'context-switches,cpu-migrations,task-clock,raw_syscalls:sys_enter', '-p', pid], { stdio: 'ignore' }),
    spawn('perf', ['stat', '-x', ',', '-o', f('calls'), '-e', 'syscalls:sys_enter_*', '-p', pid], { stdio: 'ignore' }),
  ];
  for (const p of procs) p.on('error', (e) => log(`perf stat: ${e.message}`));
  await sleep(500);
  return { procs, f };
}
async function syscallsReport(c, sys, r) {
  for (const p of sys.procs) {
    if (p.exitCode !== null || p.pid === undefined) continue;
    p.kill('SIGINT');
    await new Promise((res) => p.on('exit', res));
  }
  if (!fs.existsSync(sys.f('calls')) || !fs.existsSync(sys.f('threads'))) { log(`syscalls ${c.id}: perf stat wrote nothing`); return; }
  const rows = (k) => fs.readFileSync(sys.f(k), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(','));
  const per = (v) => (Number(v) / r.requests).toFixed(3);
  const out = [`${c.label}: ${r.requests} requests in the measured window (perf attached 0.5 s before it)`, '', 'system calls per request:'];
  for (const x of rows('calls').filter((x) => Number(x[0]) > 0).sort((a, b) => Number(b[0]) - Number(a[0])))
    out.push(`  ${per(x[0]).padStart(8)}  ${x[2].replace('syscalls:sys_enter_', '')}`);
  out.push('', 'per thread, per request (task-clock in µs; perf\'s tracepoints add to it):');
  const th = {};
  for (const x of rows('threads')) {
    if (!Number(x[1])) continue;
    (th[x[0]] ||= {})[x[3]] = Number(x[1]);
  }
  for (const [t, v] of Object.entries(th).sort((a, b) => (b[1]['task-clock'] || 0) - (a[1]['task-clock'] || 0)))
    out.push(`  ${t.padEnd(24)} cs ${per(v['context-switches'] || 0)}  migr ${per(v['cpu-migrations'] || 0)}  syscalls ${per(v['raw_syscalls:sys_enter'] || 0)}  cpu ${((v['task-clock'] || 0) * 1000 / r.requests).toFixed(2)} µs`);
  fs.writeFileSync(path.join(OUT, `syscalls-${c.id}.txt`), `${out.join('\n')}\n`);
  log(`syscalls ${c.id}: ${path.relative(ROOT, path.join(OUT, `syscalls-${c.id}.txt`))}`);
}

const live = cases.filter((c) => !c.skip);
log(`warm-up: 1 s per case; then ${ROUNDS} interleaved rounds x ${live.length} cases x ${SECONDS} s`);
for (const c of live) await measure(c, 1);
const results = Object.fromEntries(cases.map((c) => [c.id, []]));
let perfReport = '';
for (let round = 1; round <= ROUNDS; round++) {
  for (const c of live) {
    let perfProc = null;
    const perfIds = (process.env.EGB_PERF || '').split(',');
    if (round === ROUNDS && c.cpuOf && c.cpuOf() && (perfIds.includes(c.id) || (perfIds.includes('1') && c.cold))) {
      perfProc = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '999', ...(process.env.EGB_PERF_CALLGRAPH ? ['--call-graph', process.env.EGB_PERF_CALLGRAPH] : ['-g']), '-p', String(c.cpuOf().pid), '-o', path.join(OUT, `perf-${c.id}.data`)], { stdio: 'ignore' });
      await sleep(300);
    }
    const sysIds = (process.env.EGB_SYSCALLS || '').split(',');
    const sys = round === ROUNDS && c.cpuOf && sysIds.includes(c.id) ? await syscallsStart(c) : null;
    const r = await measure(c, SECONDS);
    if (sys) await syscallsReport(c, sys, r);
    if (perfProc) {
      perfProc.kill('SIGINT');
      await new Promise((res) => perfProc.on('exit', res));
      const rep = spawnSync('perf', ['report', '--no-children', '--stdio', '-i', path.join(OUT, `perf-${c.id}.data`), '--percent-limit', '1.5', '-g', 'none'], { maxBuffer: 1 << 26 });
      fs.writeFileSync(path.join(OUT, `perf-${c.id}.txt`), rep.stdout);
      perfReport += `perf-${c.id}.txt `;
    }
    results[c.id].push(r);
    log(`round ${round} ${c.id}: ${r.rps.toFixed(0)} req/s p50 ${r.p50_us} us p99 ${r.p99_us} us` +
      (r.cpu_us_per_req !== undefined ? ` cpu ${r.cpu_us_per_req.toFixed(1)} us/req (user ${r.user_us_per_req.toFixed(1)} sys ${r.sys_us_per_req.toFixed(1)}), ${r.sleeps_per_req.toFixed(2)} sleeps/req` : '') +
      ` box ${r.box_cpu_us_per_req.toFixed(1)} us/req` +
      (r.non_2xx ? ` non-2xx ${r.non_2xx}` : '') + (r.cache_hits !== undefined ? ` cache hits ${r.cache_hits}/${r.cache_hits + r.cache_misses}` : ''));
  }
}

// the verdict lane (http.lane): how many connections it handed to libmicrohttpd, and why
{
  const t = spawnSync('curl', ['-s', `http://127.0.0.1:${P.eg}/metrics`]).stdout.toString();
  const h = [...t.matchAll(/edgegate_http_lane_handovers_total\{reason="(\w+)"\} (\d+)/g)].map((m) => `${m[1]} ${m[2]}`);
  const conns = (t.match(/^edgegate_http_connections_total (\d+)/m) || [0, '?'])[1];
  if (h.length) log(`lane handovers: ${h.join(', ')} (connections accepted ${conns})`);
}

// ---- slowloris: the proxy's verdict rate while others hold connections open -----------------
// EGB_SLOW_CONNS (2000) connections from 100 loopback addresses that are not trusted_proxies,
// straight at edgegated's TCP listener, each sending a header line every 2 s and reconnecting
// whenever the daemon closes it (a persistent attacker). The warm RS256 case is measured over
// the unix socket and over TCP (where nginx needs new connections on the attacked listener)
// without and during the attack, each time just after an nginx reload: the new worker
// starts with an empty upstream keep-alive pool and must open new connections, which is what
// the attack denies (already-open keep-alive connections would run on regardless).
// One 5 s sample on a shared 2-CPU box moves by ±30 % (docs/bench.md): EGB_SLOW_ROUNDS (5)
// paired rounds, the attack started and stopped in each, the order alternated (before then
// during, during then before); the target is judged on the median of the per-round ratios.
// In the first round the attack also runs alone for EGB_SLOW_IDLE_S (12) s, a whole cycle of
// the attacker's connections (the 10 s header deadline closes them, they reconnect): the daemon's CPU
// per attacker event, by thread, and the attacker's own CPU (it runs in this process, on the
// same two CPUs as nginx, wrk and the daemon). The proxy's admission is probed directly too:
// fresh connections from 127.0.0.1 (a trusted proxy), one verdict each, one every 25 ms, timed
// without the attack and for as long again under it (through a reconnect wave).
const SLOW_CONNS = Number(env('EGB_SLOW_CONNS', 2000));
const SLOW_ROUNDS = Number(env('EGB_SLOW_ROUNDS', 5));
const SLOW_IDLE_S = Number(env('EGB_SLOW_IDLE_S', 12)); // > header_timeout (10 s): one close-and-reconnect wave
function slowloris(n) {
  const st = { open: 0, opened: 0, closed: 0, lines: 0, stopped: false, socks: new Set(), t0: Date.now(), closeAt: [] };
  const one = (i) => {
    if (st.stopped) return;
    const s = net.connect({ host: '127.0.0.1', port: P.eg, localAddress: `127.0.5.${1 + (i % 100)}` });
    let timer = null;
    s.on('connect', () => {
      st.open++; st.opened++;
      s.write('GET /auth HTTP/1.1\r\nHost: slow\r\n');
      st.lines++;
      let k = 0;
      timer = setInterval(() => { s.write(`X-Slow-${k++}: x\r\n`); st.lines++; }, 2000);
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (timer) { clearInterval(timer); st.open--; }
      st.closed++;
      if (!st.stopped) st.closeAt.push(Date.now());
      st.socks.delete(s);
      if (!st.stopped) setTimeout(() => one(i), 200);
    });
    st.socks.add(s);
  };
  for (let i = 0; i < n; i++) setTimeout(() => one(i), Math.floor(i / 200) * 100);
  st.stop = () => { st.stopped = true; for (const s of st.socks) s.destroy(); };
  return st;
}
// CPU ticks of each thread of one process, summed by thread name (eg-lane, eg-http-sweep,
// libmicrohttpd's workers ...)
function threadTicks(pid) {
  const by = {};
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const s = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        const name = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        by[name] = (by[name] || 0) + Number(f[11]) + Number(f[12]);
      } catch { /* exited */ }
    }
  } catch { /* exited */ }
  return by;
}
const selfCpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
// k fresh connections from 127.0.0.1, one after another, each one warm RS256 verdict in nginx's
// shape (the lane answers it): connect to status line, in ms. In its own process
// (tools/bench/proxyprobe.mjs): this one runs the attacker, whose event loop stalls while its
// connections close and reconnect in a wave.
function proxyProbe(k, gapMs) {
  return new Promise((resolve, reject) => {
    const p = spawn('node', [path.join(ROOT, 'tools/bench/proxyprobe.mjs'), '127.0.0.1', String(P.eg), F('warm-RS256.txt'), String(k), String(gapMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`proxyprobe exited ${code}`))));
  });
}
const PROBES = 480; // 12 s or more at one every 25 ms
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const load1 = () => os.loadavg()[0];
let slow = null;
if (!ONLY.length || ONLY.includes('slowloris')) {
  const sc = cases.filter((c) => ['d_rs', 'd_rs_tcp'].includes(c.id) && !c.skip);
  if (sc.length) {
    const m = () => spawnSync('curl', ['-s', `http://127.0.0.1:${P.eg}/metrics`]).stdout.toString();
    const g = (t, re) => Number((t.match(re) || [0, 0])[1]);
    const counters = (t) => ({
      rejected: g(t, /edgegate_http_connections_rejected_total\{reason="limit"\} (\d+)/) + g(t, /edgegate_http_connections_rejected_total\{reason="per_ip"\} (\d+)/),
      timed_out: g(t, /edgegate_http_connections_timed_out_total\{phase="request"\} (\d+)/),
      accepted: g(t, /^edgegate_http_connections_total (\d+)/m),
    });
    const delta = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));
    slow = { conns: SLOW_CONNS, rounds: [], cases: {}, attack: [], totals: { rejected: 0, timed_out: 0, attacker_connections: 0 } };
    for (const c of sc) slow.cases[c.id] = { label: c.label, ratios: [], before: [], during: [] };
    const reload = async () => { process.kill(main.pid, 'SIGHUP'); await sleep(1500); };
    slow.probe_before = await proxyProbe(PROBES, 25);
    log(`slowloris: ${SLOW_ROUNDS} paired rounds, ${SLOW_CONNS} trickling connections at edgegated's TCP listener; proxy probe without attack: ${JSON.stringify(slow.probe_before)}`);
    for (let round = 1; round <= SLOW_ROUNDS; round++) {
      const order = round % 2 ? ['before', 'during'] : ['during', 'before'];
      const rr = { round, order: order.join('-'), load1: [] };
      for (const phase of order) {
        let atk = null;
        let w = null;
        if (phase === 'during') {
          const c0 = counters(m());
          atk = slowloris(SLOW_CONNS);
          await sleep(4000);
          if (round === 1 && SLOW_IDLE_S > 0) {
            // the attack alone: what each attacker event costs the daemon
            const t0i = threadTicks(eg.pid), a0 = selfCpuMs(), k0 = counters(m()), l0 = atk.lines, o0 = atk.opened, ts = Date.now();
            await sleep(SLOW_IDLE_S * 1000);
            const t1i = threadTicks(eg.pid), a1 = selfCpuMs(), k1 = counters(m()), secs = (Date.now() - ts) / 1000;
            const thr = Object.fromEntries(Object.keys(t1i).map((k) => [k, ((t1i[k] - (t0i[k] || 0)) * 1000) / HZ]).filter((x) => x[1] > 0));
            const dms = Object.values(thr).reduce((s, x) => s + x, 0);
            const ev = { connections: atk.opened - o0, lines: atk.lines - l0, ...delta(k0, k1) };
            slow.attack_alone = {
              seconds: secs, open: atk.open, events: ev, daemon_cpu_ms_by_thread: thr,
              daemon_cpu_pct: (100 * dms) / 1000 / secs, attacker_cpu_pct: (100 * (a1 - a0)) / 1000 / secs,
              daemon_us_per_connection: (dms * 1000) / Math.max(1, ev.connections),
              daemon_us_per_event: (dms * 1000) / Math.max(1, ev.connections + ev.lines + ev.timed_out + ev.rejected),
              load1: load1(),
            };
            slow.probe_during = await proxyProbe(PROBES, 25);
            // each slow probe beside the attacker's connections closed in the 300 ms before it ended
            for (const x of slow.probe_during.slowest) x.attacker_closes_300ms_before = atk.closeAt.filter((t) => t <= x.at && t > x.at - 300).length;
            log(`slowloris alone ${secs.toFixed(1)} s: ${JSON.stringify(slow.attack_alone)}; proxy probe during attack: ${JSON.stringify(slow.probe_during)}`);
          }
          w = { t: threadTicks(eg.pid), a: selfCpuMs(), ts: Date.now(), open0: atk.open, c0 };
        }
        // the case order turns each round too: the attacker's connections close and reconnect
        // in step every ~10 s, and a fixed order would put that wave in the same case's window
        for (const c of round % 2 ? sc : [...sc].reverse()) {
          await reload();
          rr.load1.push(load1());
          const r = await measure(c, SECONDS);
          slow.cases[c.id][phase].push(r);
          (rr[c.id] ||= {})[phase] = r.rps;
        }
        if (atk) {
          const t1 = threadTicks(eg.pid), secs = (Date.now() - w.ts) / 1000;
          const dms = Object.keys(t1).reduce((s, k) => s + t1[k] - (w.t[k] || 0), 0) * 1000 / HZ;
          rr.attack = { open: [w.open0, atk.open], daemon_cpu_pct: (100 * dms) / 1000 / secs, attacker_cpu_pct: (100 * (selfCpuMs() - w.a)) / 1000 / secs };
          atk.stop();
          await sleep(1500); // the daemon sees every attacker connection end before the next phase
          const d = delta(w.c0, counters(m()));
          slow.totals.rejected += d.rejected;
          slow.totals.timed_out += d.timed_out;
          slow.totals.attacker_connections += atk.opened;
          rr.attack.rejected = d.rejected;
          rr.attack.timed_out = d.timed_out;
          rr.attack.connections = atk.opened;
        }
      }
      for (const c of sc) {
        const x = rr[c.id];
        x.ratio = x.during / x.before;
        slow.cases[c.id].ratios.push(x.ratio);
      }
      // the attacked TCP listener against the unix socket's, which no attacker reaches but which
      // shares the daemon and the box: what the box's load does to both, this ratio mostly cancels
      if (rr.d_rs && rr.d_rs_tcp) rr.tcp_vs_unix = rr.d_rs_tcp.ratio / rr.d_rs.ratio;
      slow.rounds.push(rr);
      log(`slowloris round ${round} (${rr.order}, load ${rr.load1.map((x) => x.toFixed(1)).join('/')}): ` +
        sc.map((c) => `${c.id} ${rr[c.id].before.toFixed(0)} -> ${rr[c.id].during.toFixed(0)} req/s (${rr[c.id].ratio.toFixed(2)}x)`).join(', ') +
        (rr.tcp_vs_unix ? `, tcp/unix ${rr.tcp_vs_unix.toFixed(2)}` : '') +
        `; attack ${rr.attack.open.join('->')} open, daemon ${rr.attack.daemon_cpu_pct.toFixed(0)}% attacker ${rr.attack.attacker_cpu_pct.toFixed(0)}% of a CPU, refused ${rr.attack.rejected}, closed at deadline ${rr.attack.timed_out}`);
    }
    for (const c of sc) {
      const x = slow.cases[c.id];
      x.ratio = median(x.ratios);
      x.non_2xx = x.during.reduce((s, r) => s + (r.non_2xx || 0), 0);
      x.errors = x.during.reduce((s, r) => s + r.connect_errors + r.read_errors + r.write_errors + r.timeouts, 0);
      log(`slowloris ${c.id}: median ratio ${x.ratio.toFixed(2)}x of ${x.ratios.map((q) => q.toFixed(2)).join(', ')}; non-2xx ${x.non_2xx}, socket errors/timeouts ${x.errors}`);
    }
    if (slow.rounds.every((r) => r.tcp_vs_unix)) {
      slow.tcp_vs_unix = median(slow.rounds.map((r) => r.tcp_vs_unix));
      log(`slowloris: the TCP case's ratio over the unix case's, median ${slow.tcp_vs_unix.toFixed(2)} of ${slow.rounds.map((r) => r.tcp_vs_unix.toFixed(2)).join(', ')}`);
    }
    slow.daemon_cpu_pct = median(slow.rounds.map((r) => r.attack.daemon_cpu_pct));
    slow.attacker_cpu_pct = median(slow.rounds.map((r) => r.attack.attacker_cpu_pct));
    await sleep(1000);
  }
}

// ---- raw crypto cost, same run -------------------------------------------------------------
function opensslSpeed(alg) {
  const r = spawnSync('openssl', ['speed', '-seconds', '3', alg], { maxBuffer: 1 << 22 });
  const t = r.stdout.toString();
  // "256 bits ecdsa (nistp256)   0.0000s   0.0001s  41230.5  15230.9" / "rsa 2048 bits 0.000580s 0.000017s 1723.6 58344.8"
  const line = t.split('\n').reverse().find((l) => /ecdsa \(nistp256\)|^rsa\s+2048 bits/.test(l)) || '';
  const nums = line.match(/([\d.]+)\s+([\d.]+)\s*$/);
  return nums ? { verify_per_s: Number(nums[2]), verify_us: 1e6 / Number(nums[2]), line: line.trim() } : { line: t.slice(-300) };
}
const doCrypto = wanted('crypto') || wanted('e_rs') || wanted('e_es');
if (doCrypto) log('openssl speed -seconds 3 ecdsap256 / rsa2048');
const speed = doCrypto ? { ecdsap256: opensslSpeed('ecdsap256'), rsa2048: opensslSpeed('rsa2048') } : { ecdsap256: {}, rsa2048: {} };
// eg_jws_verify alone (tools/bench/josebench.c), one thread, the same distinct cold tokens, the
// claims kept in a ring as large as the daemon's verdict cache and the oldest freed, as it does
// (with the public key: also the bare EVP_PKEY_verify on the same signatures, alternating with it)
const josebench = {};
for (const alg of doCrypto ? ['RS256', 'ES256'] : []) {
  const jb = spawnSync(path.resolve(env('EGB_JOSEBENCH', 'build/bench/josebench')), [F('jwks.json'), F(`cold-${alg}.txt`), '3', String(egCfg.jwt.cache_entries), F(alg === 'RS256' ? 'rsa.pem' : 'ec.pem')]);
  const m = jb.stdout.toString().match(/([\d.]+) us per eg_jws_verify/);
  const p = jb.stdout.toString().match(/([\d.]+) us per raw EVP_PKEY_verify.*= ([\d.]+) x raw/);
  josebench[alg] = m ? Number(m[1]) : null;
  josebench[`${alg}_paired`] = p ? { raw_us: Number(p[1]), ratio: Number(p[2]) } : null;
}

// ---- memory: RSS after RSS_VERDICTS verdicts over N_SESSIONS distinct sessions ------------
let rss = null;
if (sessionsReady && wanted('memory')) {
  log(`memory: ${RSS_VERDICTS} verdicts over ${N_SESSIONS} distinct sessions, wrk straight to edgegated /auth`);
  rss = { samples: [{ verdicts: 0, ...memStatus(eg.pid) }], sessions: N_SESSIONS };
  let total = 0;
  const end = Date.now() + RSS_MAX_S * 1000;
  const cpu0 = cpuTicks(eg.pid);
  while (total < RSS_VERDICTS && Date.now() < end) {
    const r = await wrk(`http://127.0.0.1:${P.eg}`, { seconds: 10, conns: CONNS, threads: 2, file: F('tickets.txt'), header: 'Cookie', pathname: '/auth', extra: 'X-Original-URI: /s/x|X-Original-Method: GET|Host: app.test|X-Forwarded-Proto: https|X-Real-IP: 198.18.0.10' });
    if (r.non_2xx) throw new Error(`memory run: ${r.non_2xx} non-2xx answers`);
    total += r.requests;
    rss.samples.push({ verdicts: total, ...memStatus(eg.pid) });
    log(`  ${total} verdicts, RSS ${(memStatus(eg.pid).rss_kib / 1024).toFixed(1)} MiB`);
  }
  rss.verdicts = total;
  rss.cpu_us_per_verdict_direct = ((cpuTicks(eg.pid) - cpu0) * 1e6) / HZ / total;
  rss.complete = total >= RSS_VERDICTS;
}

// ---- other engineers' benches: XDP gate, time to revoke ---------------------------------------
cleanup(); // our daemons must not compete with (or hold the binaries of) the next benches
function runExternal(script, args, secs) {
  if (!fs.existsSync(script)) return null;
  const r = spawnSync('timeout', [String(secs), script, ...args], { maxBuffer: 1 << 24 });
  return { rc: r.status, out: (r.stdout.toString() + r.stderr.toString()).trim() };
}
let xdp = null;
if (!process.env.EGB_SKIP_XDP && !ONLY.length) {
  log('tools/bench/xdp/run.sh 3');
  // the path table with 1M rules, one flood round and the interleaved slices: ~4 min here
  xdp = runExternal(path.join(ROOT, 'tools/bench/xdp/run.sh'), ['3'], 480);
}
const revokeScript = ['tools/bench/revoke/run.sh', 'tools/bench/revoke.sh'].map((p) => path.join(ROOT, p)).find((p) => fs.existsSync(p));
const revoke = revokeScript && !ONLY.length ? runExternal(revokeScript, [], 120) : null;
// several hosts (issue 12): cross-node time to revoke, cost of following the stream
const multiScript = path.join(ROOT, 'tools/bench/multinode/run.sh');
const multi = fs.existsSync(multiScript) && !ONLY.length && !process.env.EGB_SKIP_MULTI ? runExternal(multiScript, [], 600) : null;

cleanup();

// ---- the table ------------------------------------------------------------------------------
const med = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const summary = {};
for (const c of cases) {
  const rs = results[c.id];
  if (!rs.length) { summary[c.id] = { label: c.label, skipped: c.skip || 'not run' }; continue; }
  summary[c.id] = {
    label: c.label,
    rps: med(rs.map((r) => r.rps)), rps_rounds: rs.map((r) => Math.round(r.rps)),
    p50_us: med(rs.map((r) => r.p50_us)), p99_us: med(rs.map((r) => r.p99_us)),
    cpu_us_per_req: rs[0].cpu_us_per_req !== undefined ? med(rs.map((r) => r.cpu_us_per_req)) : undefined,
    box_cpu_us_per_req: med(rs.map((r) => r.box_cpu_us_per_req)),
    non_2xx: rs.reduce((s, r) => s + r.non_2xx, 0), errors: rs.reduce((s, r) => s + r.connect_errors + r.read_errors + r.write_errors + r.timeouts, 0),
    requests: rs.reduce((s, r) => s + r.requests, 0),
    cache_hits: c.cold ? rs.reduce((s, r) => s + r.cache_hits, 0) : undefined,
    ceiling: c.ceiling,
  };
}
for (const c of cases) {
  const s = summary[c.id];
  const b = summary[c.ceiling];
  if (s.skipped || !b || b.skipped) continue;
  s.rps_ratio = s.rps / b.rps;
  s.p50_ratio = s.p50_us / b.p50_us;
  s.p99_ratio = s.p99_us / b.p99_us;
}

const fx = (v, d = 0) => (v === undefined || v === null || Number.isNaN(v) ? '—' : Number(v).toFixed(d));
const lines = [];
lines.push(`# edgegate benchmark — ${new Date().toISOString()}`);
lines.push('');
lines.push(`Machine: ${os.cpus()[0].model}, ${os.cpus().length} CPUs, kernel ${os.release()}; ${execFileSync('nginx', ['-v'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString() || spawnSync('nginx', ['-v']).stderr.toString().trim()}; ${spawnSync('openssl', ['version']).stdout.toString().trim()}.`);
lines.push(`Method: nginx ${NGINX_WORKERS} worker${NGINX_WORKERS === 1 ? '' : 's'}, wrk -t1 -c${CONNS} on loopback, ${ROUNDS} interleaved rounds x ${SECONDS} s per case (median shown; per-round req/s in results.json), 1 s warm-up per case. edgegated: ${path.relative(ROOT, EDGEGATED)} (optimised build), ${egCfg.threads || os.cpus().length} MHD threads, ${egCfg.http?.lane_threads || `max(1, ${os.cpus().length} / 4)`} lane threads per listener. The protected "app" is a static file served by nginx itself, so the ceiling is the auth subrequest alone.`);
lines.push('');
lines.push('| case | req/s | ×(b) | p50 µs | ×(b) | p99 µs | ×(b) | authorizer CPU µs/req | nginx + authorizer CPU µs/req | notes |');
lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
for (const c of cases) {
  const s = summary[c.id];
  if (s.skipped) { lines.push(`| ${c.label} | not measured | | | | | | | | ${s.skipped} |`); continue; }
  const notes = [];
  if (c.ceiling !== 'b') notes.push(`ratio to (b) over TCP`);
  if (s.non_2xx && c.expect === 200) notes.push(`**${s.non_2xx} non-2xx**`);
  if (c.expect === 403) notes.push(`${s.non_2xx}/${s.requests} answered 403`);
  if (s.errors) notes.push(`${s.errors} socket errors`);
  if (c.cold) notes.push(`verdict-cache hits ${s.cache_hits} of ${s.requests}`);
  lines.push(`| ${c.label} | ${fx(s.rps)} | ${fx(s.rps_ratio, 2)} | ${fx(s.p50_us)} | ${fx(s.p50_ratio, 2)} | ${fx(s.p99_us)} | ${fx(s.p99_ratio, 2)} | ${fx(s.cpu_us_per_req, 1)} | ${fx(s.box_cpu_us_per_req, 1)} | ${notes.join('; ')} |`);
}
lines.push('');
lines.push('## Targets (issue 7)');
lines.push('');
const tgt = [];
const T = (name, ok, val) => tgt.push(`| ${name} | ${ok === null ? 'n/a' : ok ? 'met' : '**missed**'} | ${val} |`);
const r = (id) => summary[id] && !summary[id].skipped ? summary[id] : null;
if (r('c')) T('(c) session ≥ 0.9 × (b) req/s', r('c').rps_ratio >= 0.9, fx(r('c').rps_ratio, 2)); else T('(c) session ≥ 0.9 × (b)', null, summary.c.skipped);
for (const id of ['d_rs', 'd_es']) if (r(id)) T(`${summary[id].label} ≥ 0.9 × (b)`, r(id).rps_ratio >= 0.9, fx(r(id).rps_ratio, 2));
if (r('e_rs')) T('(e) cold RS256 ≥ 0.5 × (b)', r('e_rs').rps_ratio >= 0.5, fx(r('e_rs').rps_ratio, 2));
if (r('e_es') && speed.ecdsap256.verify_us) {
  const q = r('e_es').cpu_us_per_req / speed.ecdsap256.verify_us;
  T('(e) cold ES256: edgegated CPU per verdict ≤ 1.2 × raw P-256 verify', q <= 1.2,
    `${fx(r('e_es').cpu_us_per_req, 1)} µs vs ${fx(speed.ecdsap256.verify_us, 1)} µs raw = ${fx(q, 2)}×`);
}
// issue 15: an uncached verdict may cost 1.2 × the raw verify plus what a cached one costs.
// Two readings. The literal one adds the cached verdict's *target* (5 µs), which no separate
// process reaches here (case floor: a do-nothing epoll server is 5.1–5.3 µs), so it charges the
// verify path for the HTTP front's cost. The fair one adds the cached verdict's cost measured in
// the same run (d_rs; a cache hit does the same work whatever the alg): what the uncached path
// adds to a cached one must stay within 1.2 × the bare signature check. Both print; the second
// is the verify path's own target. Caveat for both: openssl speed runs alone, in its own phase,
// while (e) shares the 2 vCPUs with nginx and wrk (see docs/bench.md, issue 15).
for (const [id, alg, raw] of [['e_rs', 'RS256', speed.rsa2048], ['e_es', 'ES256', speed.ecdsap256]]) {
  if (!r(id) || !raw.verify_us) continue;
  const bound = 1.2 * raw.verify_us + 5;
  T(`(e) cold ${alg}: edgegated CPU per verdict ≤ 1.2 × raw verify + 5 µs (issue 15, literal)`, r(id).cpu_us_per_req <= bound,
    `${fx(r(id).cpu_us_per_req, 1)} µs vs ${fx(bound, 1)} µs (raw ${fx(raw.verify_us, 1)} µs; josebench ${fx(josebench[alg], 1)} µs)`);
  const warm = r('d_rs') && r('d_rs').cpu_us_per_req;
  if (!warm) { T(`(e) cold ${alg}: CPU per verdict ≤ 1.2 × raw verify + cached verdict (d_rs, same run)`, null, 'd_rs not measured (add it to --only)'); continue; }
  const fair = 1.2 * raw.verify_us + warm;
  T(`(e) cold ${alg}: CPU per verdict ≤ 1.2 × raw verify + cached verdict (d_rs, same run)`, r(id).cpu_us_per_req <= fair,
    `${fx(r(id).cpu_us_per_req, 1)} µs vs ${fx(fair, 1)} µs (cached ${fx(warm, 1)} µs; uncached − cached = ${fx(r(id).cpu_us_per_req - warm, 1)} µs = ${fx((r(id).cpu_us_per_req - warm) / raw.verify_us, 2)} × raw)`);
}
for (const [d, a] of [['d_rs', 'ap_rs'], ['d_es', 'ap_es']]) {
  if (r(d) && r(a)) T(`${summary[d].label} ≥ 3 × Apache (same alg)`, r(d).rps / r(a).rps >= 3, `${fx(r(d).rps / r(a).rps, 2)}× (Apache at ${fx(r(a).rps_ratio, 2)} of its ceiling)`);
  else if (!r(a)) T(`≥ 3 × Apache (${a})`, null, summary[a].skipped);
}
if (r('c')) T('(c) p99 < 1 ms at 32 connections', CONNS === 32 ? r('c').p99_us < 1000 : null, `${fx(r('c').p99_us)} µs at ${CONNS} connections`);
if (rss) {
  const last = rss.samples[rss.samples.length - 1];
  const limit = 20 * 1024 + N_SESSIONS;
  T(`RSS ≤ 20 MiB + 1 KiB/session after ${rss.verdicts} verdicts, ${N_SESSIONS} sessions`, last.rss_kib <= limit && rss.complete,
    `${fx(last.rss_kib / 1024, 1)} MiB (anon ${fx(last.anon_kib / 1024, 1)}, libraries ${fx(last.file_kib / 1024, 1)}, LMDB map ${fx(last.shmem_kib / 1024, 1)}) vs ${fx(limit / 1024, 1)} MiB limit${rss.complete ? '' : ' — run stopped at the time bound'}`);
  // The same limit on the daemon's own pages only: its private memory (anon) and the
  // libraries (file), without the LMDB store mapped from tmpfs (shmem), which is the
  // store's data set (held by tmpfs whether mapped or not). Both lines are printed.
  const own = last.anon_kib + last.file_kib;
  const first = rss.samples[0];
  T(`RSS without the shared LMDB map (anon + file) ≤ 20 MiB + 1 KiB/session`, own <= limit && rss.complete,
    `${fx(own / 1024, 1)} MiB; anon growth ${fx(((last.anon_kib - first.anon_kib) * 1024) / N_SESSIONS, 0)} bytes/session, LMDB map ${fx((last.shmem_kib * 1024) / N_SESSIONS, 0)} bytes/session`);
} else {
  T('RSS after 1M verdicts, 100k sessions', null, `not measured: ${sessionNote || 'not selected (--only)'}`);
}
if (r('njs')) {
  for (const id of ['d_rs', 'd_es']) {
    if (!r(id)) continue;
    const q = r(id).box_cpu_us_per_req / r('njs').box_cpu_us_per_req;
    T(`${summary[id].label}: nginx + edgegated CPU per request ≤ 1.0 × njs's in-process HS256 check`, q <= 1.0,
      `${fx(r(id).box_cpu_us_per_req, 1)} µs vs ${fx(r('njs').box_cpu_us_per_req, 1)} µs = ${fx(q, 2)}×`);
  }
}
if (slow) {
  for (const [id, x] of Object.entries(slow.cases)) {
    T(`${x.label}: under ${slow.conns} hostile connections ≥ 0.8 × its rate without (median of ${x.ratios.length} paired rounds)`, x.ratio >= 0.8 && !x.non_2xx,
      `${fx(x.ratio, 2)}× (rounds: ${x.ratios.map((q) => fx(q, 2)).join(', ')})${x.non_2xx ? `, **${x.non_2xx} non-2xx**` : ''}`);
  }
}
lines.push('| target | result | measured |');
lines.push('|---|---|---|');
lines.push(...tgt);
lines.push('');
if (slow) {
  const a = slow.attack_alone;
  const pr = (p) => (p ? `${fx(p.p50_ms, 2)} / ${fx(p.p99_ms, 2)} / ${fx(p.max_ms, 1)} ms (${Object.entries(p.statuses).map(([k, v]) => `${v}× ${k}`).join(', ')})` : 'not measured');
  lines.push(`Slowloris phase: ${slow.conns} connections from 100 untrusted loopback addresses at edgegated's TCP listener, a header line every 2 s, reconnecting when closed; ${slow.rounds.length} paired rounds (attack started and stopped in each, order alternated), each after an nginx reload. Over all rounds the attacker made ${slow.totals.attacker_connections} connections; edgegated refused ${slow.totals.rejected} at accept (limit / per-IP) and closed ${slow.totals.timed_out} at the header deadline. During the measured windows (median) the daemon used ${fx(slow.daemon_cpu_pct)} % of one CPU (the verdicts included) and the attacker (node, this process) ${fx(slow.attacker_cpu_pct)} %; the attack alone, below.`);
  lines.push('');
  lines.push('| round | order | load (1 min) | ' + Object.keys(slow.cases).map((id) => `${id} before → during req/s (ratio)`).join(' | ') + ' | daemon / attacker CPU |');
  lines.push('|---|---|---|' + Object.keys(slow.cases).map(() => '---|').join('') + '---|');
  for (const r of slow.rounds)
    lines.push(`| ${r.round} | ${r.order} | ${r.load1.map((x) => fx(x, 1)).join('/')} | ` + Object.keys(slow.cases).map((id) => `${fx(r[id].before)} → ${fx(r[id].during)} (${fx(r[id].ratio, 2)}×)`).join(' | ') + ` | ${fx(r.attack.daemon_cpu_pct)} % / ${fx(r.attack.attacker_cpu_pct)} % |`);
  lines.push('');
  if (slow.tcp_vs_unix) lines.push(`The attacked TCP listener's ratio over the unix socket's (same round; no attacker reaches the socket, but both share the daemon and the box): median ${fx(slow.tcp_vs_unix, 2)} (${slow.rounds.map((r) => fx(r.tcp_vs_unix, 2)).join(', ')}).`);
  if (a) lines.push(`The attack alone (${fx(a.seconds, 1)} s, ${a.open} open, load ${fx(a.load1, 1)}): ${a.events.connections} attacker connections, ${a.events.lines} header lines, ${a.events.timed_out} closed at the deadline, ${a.events.rejected} refused; the daemon used ${fx(a.daemon_cpu_pct, 1)} % of a CPU (${Object.entries(a.daemon_cpu_ms_by_thread).map(([k, v]) => `${k} ${fx(v)} ms`).join(', ')}) = ${fx(a.daemon_us_per_connection, 1)} µs per attacker connection, ${fx(a.daemon_us_per_event, 1)} µs per event (accept, line, close, refusal); the attacker ${fx(a.attacker_cpu_pct, 1)} %.`);
  lines.push(`A trusted proxy's fresh connections (${PROBES} from 127.0.0.1, one every 25 ms, one verdict each, connect to status line, p50 / p99 / max): without the attack ${pr(slow.probe_before)}; under it ${pr(slow.probe_during)}.`);
  lines.push('');
}
lines.push('## Raw crypto, same run (`openssl speed -seconds 3`)');
lines.push('');
lines.push(`- P-256 ECDSA verify: ${fx(speed.ecdsap256.verify_us, 1)} µs (${fx(speed.ecdsap256.verify_per_s)} /s) — \`${speed.ecdsap256.line}\``);
lines.push(`- RSA-2048 verify: ${fx(speed.rsa2048.verify_us, 1)} µs (${fx(speed.rsa2048.verify_per_s)} /s) — \`${speed.rsa2048.line}\``);
lines.push(`- edgegate's whole eg_jws_verify (split, base64url, header and payload JSON, key choice, signature), one thread, CPU time, distinct tokens (tools/bench/josebench.c): RS256 ${fx(josebench.RS256, 1)} µs (${fx(josebench.RS256 / speed.rsa2048.verify_us, 2)}× raw), ES256 ${fx(josebench.ES256, 1)} µs (${fx(josebench.ES256 / speed.ecdsap256.verify_us, 2)}× raw)`);
const pj = (a) => josebench[`${a}_paired`];
if (pj('RS256') || pj('ES256')) lines.push(`- the same, paired with the bare EVP_PKEY_verify on the same signatures in alternating blocks (josebench PEM): RS256 ${fx(pj('RS256')?.ratio, 3)}× (raw ${fx(pj('RS256')?.raw_us, 1)} µs), ES256 ${fx(pj('ES256')?.ratio, 3)}× (raw ${fx(pj('ES256')?.raw_us, 1)} µs)`);
lines.push('');
lines.push('## Memory');
lines.push('');
if (rss) {
  lines.push(`${N_SESSIONS} distinct sessions (created with eg_session_create in ${fx(tSess, 1)} s, stored in LMDB on tmpfs), wrk straight to edgegated's /auth over TCP, every request a session verdict; CPU ${fx(rss.cpu_us_per_verdict_direct, 1)} µs per verdict in this phase.`);
  lines.push('');
  lines.push('RSS = anon (the daemon\'s private heap: session cache, verdict cache, buffers) + file (libraries) + shmem (the LMDB store mapped from tmpfs: shared, reclaimable page cache; on a disk-backed state_dir it would show as file).');
  lines.push('');
  lines.push('| verdicts | RSS MiB | anon MiB | file MiB | shmem (LMDB map) MiB | peak (HWM) MiB |');
  lines.push('|---:|---:|---:|---:|---:|---:|');
  for (const s of rss.samples) lines.push(`| ${s.verdicts} | ${fx(s.rss_kib / 1024, 1)} | ${fx(s.anon_kib / 1024, 1)} | ${fx(s.file_kib / 1024, 1)} | ${fx(s.shmem_kib / 1024, 1)} | ${fx(s.hwm_kib / 1024, 1)} |`);
} else {
  lines.push(`not measured: ${sessionNote}`);
}
lines.push('');
lines.push('## XDP gate and revocation (other benches, same run)');
lines.push('');
if (xdp) {
  lines.push(`tools/bench/xdp/run.sh 3 (exit ${xdp.rc}):`);
  lines.push('');
  lines.push('```');
  lines.push(xdp.out.split('\n').filter((l) => !/^(gcc|make)/.test(l)).slice(-30).join('\n'));
  lines.push('```');
} else {
  lines.push(`| XDP gate drop rate | not measured yet | ${process.env.EGB_SKIP_XDP ? 'EGB_SKIP_XDP set' : 'tools/bench/xdp/run.sh missing'} |`);
}
lines.push('');
if (revoke) {
  lines.push(`${path.relative(ROOT, revokeScript)} (exit ${revoke.rc}):`);
  lines.push('```');
  lines.push(revoke.out.split('\n').slice(-30).join('\n'));
  lines.push('```');
} else {
  lines.push('| time to revoke / propagation | not measured yet | no revocation bench script (tools/bench/revoke/run.sh) in the tree |');
}
if (multi) {
  lines.push('');
  lines.push(`tools/bench/multinode/run.sh (exit ${multi.rc}):`);
  lines.push('');
  lines.push(multi.out.split('\n').filter((l) => !/^(gcc|make)/.test(l)).slice(-30).join('\n'));
}
if (perfReport) lines.push(`\nperf profiles of the cold cases: ${perfReport}in ${path.relative(ROOT, OUT)}/`);
lines.push('');
lines.push(`Total bench time ${((Date.now() - t0) / 1000).toFixed(0)} s. Load average (1/5/15 min) at start ${load0.map((x) => x.toFixed(2)).join('/')}, at end ${os.loadavg().map((x) => x.toFixed(2)).join('/')} — anything well above ~2.5 at the end means other work shared the 2 CPUs with the run; compare the per-round figures in results.json.`);

const md = lines.join('\n');
fs.writeFileSync(path.join(OUT, 'results.md'), `${md}\n`);
fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify({
  date: new Date().toISOString(), rounds: ROUNDS, seconds: SECONDS, conns: CONNS, summary, raw: results, speed, josebench, rss, xdp, revoke, slowloris: slow,
  sessions: { ready: sessionsReady, note: sessionNote, count: N_SESSIONS }, apache: { running: !!apache, note: apacheNote },
}, null, 2));
console.log(md);
process.exit(0);
