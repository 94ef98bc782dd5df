// oidc_helpers.mjs - what the OIDC integration tests, the browser test and the demo
// share: a cookie-jar HTTP client that follows redirects like a browser, the
// devInteractions login, and a full stack (OP + echo upstream + edgegated + nginx).
import fs from 'node:fs';
import path from 'node:path';
import { freePort, request, startEcho, startEdgegated, startNginx, tmpdir, onCleanup, waitFor } from './harness.mjs';
import { startOP } from './op.mjs';

// A tiny browser: cookies per host (not per port, like real browsers), path-scoped,
// Max-Age=0 deletes; redirects followed manually so tests can look at each hop.
export class Jar {
  constructor() { this.cookies = []; this.trace = []; }

  store(url, setCookie) {
    const u = new URL(url);
    for (const line of [].concat(setCookie || [])) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let p = '/';
      let del = false;
      for (const a of attrs) {
        const [k, v] = a.split('=');
        if (k.toLowerCase() === 'path') p = v;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) del = true;
      }
      this.cookies = this.cookies.filter((c) => !(c.host === u.hostname && c.name === name && c.path === p));
      if (!del) this.cookies.push({ host: u.hostname, name, value, path: p, raw: line });
    }
  }

  header(url) {
    const u = new URL(url);
    return this.cookies.filter((c) => c.host === u.hostname && u.pathname.startsWith(c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }

  get(name) { return this.cookies.find((c) => c.name === name); }
  names() { return this.cookies.map((c) => c.name); }

  async fetch(url, { method = 'GET', form, headers = {} } = {}) {
    const h = { ...headers };
    const ck = this.header(url);
    if (ck) h.cookie = ck;
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      h['content-type'] = 'application/x-www-form-urlencoded';
      h['content-length'] = Buffer.byteLength(body);
    }
    const r = await request(url, { method, headers: h, body });
    this.store(url, r.headers['set-cookie']);
    this.trace.push({ method, url, status: r.status, location: r.headers.location });
    return r;
  }

  // Follows redirects (GET) until a non-3xx answer or stopAt(url) is true.
  async follow(url, { max = 15, stopAt, method, form } = {}) {
    let r = await this.fetch(url, { method, form });
    let cur = url;
    for (let i = 0; i < max && r.status >= 300 && r.status < 400 && r.headers.location; i++) {
      const next = new URL(r.headers.location, cur).toString();
      if (stopAt && stopAt(next)) return { ...r, url: cur, next };
      cur = next;
      r = await this.fetch(cur);
    }
    return { ...r, url: cur };
  }
}

// Fills the devInteractions login form on the page r (from `url`) and follows on.
export async function opLogin(jar, r, login = 'alice', opts = {}) {
  const m = /action="([^"]+)"/.exec(r.body);
  if (!m) throw new Error(`no login form at ${r.url}: ${r.status} ${r.body.slice(0, 300)}`);
  const action = new URL(m[1].replace(/&amp;/g, '&'), r.url).toString();
  return jar.follow(action, { method: 'POST', form: { prompt: 'login', login, password: 'any' }, ...opts });
}

// A full login through nginx: protected URL -> OP -> login -> back. Returns the last response.
export async function browserLogin(jar, protectedUrl, login = 'alice') {
  const r = await jar.follow(protectedUrl);
  if (!/name="login"/.test(r.body)) throw new Error(`expected the OP login form, got ${r.status} at ${r.url}: ${r.body.slice(0, 300)}`);
  return opLogin(jar, r, login);
}

// OP + echo + edgegated + nginx, all on loopback. opts: { edgegate: {...config overrides},
// op: {...startOP options}, redis }.
export async function startStack(opts = {}) {
  const dir = tmpdir('eg-oidc-');
  const [opPort, ngxPort, egPort] = [await freePort(), await freePort(), await freePort()];
  const pub = `http://127.0.0.1:${ngxPort}`;
  const client = {
    client_id: 'edgegate-test',
    client_secret: 'test-secret-0123456789abcdef0123456789',
    redirect_uris: [`${pub}/oauth2/callback`],
    post_logout_redirect_uris: [`${pub}/`, `${pub}/signed-out`],
    backchannel_logout_uri: `${pub}/oauth2/backchannel-logout`,
    ...(opts.client || {}),
  };
  const op = await startOP({ port: opPort, clients: [client], ...(opts.op || {}) });
  onCleanup(() => op.stop());
  const echo = await startEcho();
  fs.mkdirSync(path.join(dir, 'eg'), { recursive: true });
  const eg = opts.noEdgegated ? null : await startEdgegated({
    listen: `127.0.0.1:${egPort}`,
    public_url: pub,
    log_level: 'debug',
    cookie: { secure: false, secret: 'cookie-secret-0123456789abcdef0123456789' },
    oidc: {
      issuer: op.issuer,
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_url: `${pub}/oauth2/callback`,
      scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
      ...(opts.oidc || {}),
    },
    routes: [
      { path: '/public/', auth: 'public' },
      { path: '/', auth: 'session' },
    ],
    ...(opts.edgegate || {}),
  }, { dir: path.join(dir, 'eg'), wait: '/healthz' });
  fs.mkdirSync(path.join(dir, 'ngx'), { recursive: true });
  const nginx = await startNginx(nginxBody(ngxPort, echo.port), {
    dir: path.join(dir, 'ngx'), edgegate: `127.0.0.1:${egPort}`, waitPort: ngxPort,
  });
  if (eg) {
    await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'OIDC discovery', timeout: 20000 })
      .catch((e) => { throw new Error(`${e.message}\n${eg.log()}`); });
  }
  return { dir, op, echo, eg, nginx, pub, client, ngxPort, egPort };
}

export function nginxBody(port, echoPort) {
  return `
  {{EDGEGATE_UPSTREAM}}
  upstream echo { server 127.0.0.1:${echoPort}; }
  server {
    listen 127.0.0.1:${port};
    server_name 127.0.0.1;
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      proxy_pass http://echo;
    }
  }`;
}
