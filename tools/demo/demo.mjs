// demo.mjs - the process behind `make demo` (see run.sh). Everything listens on
// 127.0.0.1 only; Ctrl-C (or SIGTERM) stops nginx and edgegated and removes the
// temporary directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { startOP } from '../op/op.mjs';
import { freePort, portOpen, startEcho, startEdgegated, startNginx, status, waitFor } from './stack.mjs';

const want = Number(process.env.DEMO_PORT || 8080);
const ngxPort = (await portOpen(want)) ? await freePort() : want; // taken: any free port
const [opPort, egPort] = [await freePort(), await freePort()];
const pub = `http://127.0.0.1:${ngxPort}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgegate-demo-'));
fs.chmodSync(dir, 0o755);
// The XDP edge gate on the loopback interface (generic mode), when we may load BPF.
const gateOn = process.getuid?.() === 0 && process.env.DEMO_GATE !== '0';
const pinRoot = `/sys/fs/bpf/edgegate-demo-${process.pid}`;
const denied = '127.0.0.66';
for (const d of ['eg', 'ngx']) fs.mkdirSync(path.join(dir, d));

const client = {
  client_id: 'edgegate-demo',
  client_secret: 'demo-secret-change-me-0123456789abcdef',
  redirect_uris: [`${pub}/oauth2/callback`],
  post_logout_redirect_uris: [`${pub}/`],
  backchannel_logout_uri: `${pub}/oauth2/backchannel-logout`,
};

let eg;
let nginx;
let stopping = false;
async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  try { if (nginx) process.kill(-nginx.proc.pid, 'SIGTERM'); } catch { /* gone */ }
  try { if (eg) await eg.stop(); } catch { /* gone */ }
  if (gateOn) fs.rmSync(pinRoot, { recursive: true, force: true }); // the demo's bans go with it
  if (!process.env.EG_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGINT', () => { if (!stopping) console.log('\nstopping the demo'); stop(0); });
process.on('SIGTERM', () => stop(0));

try {
  const op = await startOP({ port: opPort, clients: [client] });
  const echo = await startEcho();
  eg = await startEdgegated({
    listen: `127.0.0.1:${egPort}`,
    public_url: pub,
    log_level: 'info',
    cookie: { secure: false }, // plain http on loopback only; keep the default (true) anywhere else
    oidc: {
      issuer: op.issuer,
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_url: `${pub}/oauth2/callback`,
      post_logout_redirect_url: `${pub}/`,
      scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    },
    ...(gateOn ? {
      gate: {
        interfaces: ['lo'], xdp_mode: 'generic', pin_root: pinRoot, protected_ports: [ngxPort],
        syn_rate: 100, syn_burst: 200, deny: [denied],
      },
    } : {}),
    routes: [
      { path: '/public/', auth: 'public' },
      { path: '/admin/', auth: 'session', allow: { groups: ['ops'] } },
      { path: '/', auth: 'session' },
    ],
  }, path.join(dir, 'eg'));
  nginx = await startNginx({ port: ngxPort, echoPort: echo.port, egListen: `127.0.0.1:${egPort}`, dir: path.join(dir, 'ngx') });
  await waitFor(async () => (await status(`${eg.url}/readyz`)) === 200, { what: 'OIDC discovery', timeout: 20000 });
  console.log(`
  edgegate demo is running (all on 127.0.0.1)

    open        ${pub}/
    log in as   alice (any password)   - groups ops, dev: may open ${pub}/admin/
                bob   (any password)   - group dev: ${pub}/admin/ is forbidden (edgegated's 403 page:
                                         who, why, a request id, "sign in as another user")
    public      ${pub}/public/         - no login
    sign out    ${pub}/oauth2/sign_out

  The page shows the request headers the upstream received (X-Auth-Request-*).
  ${gateOn ? `XDP edge gate  attached to lo (generic mode), maps pinned under ${pinRoot}
    curl --interface ${denied} ${pub}/public/      - dropped in the kernel (static deny)
    build/edgegatectl --admin-socket ${eg.admin} deny add 127.0.0.2 --ttl 5m --reason demo
    curl --interface 127.0.0.2 ${pub}/public/       - now dropped too
    build/edgegatectl --admin-socket ${eg.admin} stats
    bpftool map dump pinned ${pinRoot}/eg_deny4_v2` : 'XDP edge gate  off (run the demo as root to attach it to lo)'}

  OpenID Provider: ${op.issuer}   edgegated: ${eg.url} (/metrics, /readyz)
  Logs: ${dir}   -   Ctrl-C stops everything.
`);
  eg.proc.exited.then(({ code, sig }) => { if (stopping) return; console.error(`edgegated exited (${code ?? sig}); see ${eg.logFile}`); stop(1); });
} catch (e) {
  console.error(`demo: ${e.message}`);
  await stop(1);
}
