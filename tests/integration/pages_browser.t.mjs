#!/usr/bin/env node
// pages_browser.t.mjs - the pages people see, in headless Chromium through nginx with the
// shipped snippets: bob (group dev) opens /admin/ (group ops only) and gets edgegated's
// 403 page with his identity, the reason, the route and a request id that is in the
// daemon's log; "sign in as another user" logs in as alice and lands on /admin/; API
// clients get JSON; a request id alone shows nobody's details; a tampered login and an
// IdP refusal show the login error page with a logged request id. Every page is
// screenshotted into the test's directory and carries the strict CSP.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ok, is, done, guard, skipAll, diag, request, startEdgegated } from '../lib/harness.mjs';
import { startStack } from '../lib/oidc_helpers.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) skipAll(`no chromium at ${CHROMIUM}`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  skipAll(`playwright-core not installed: ${e.message}`);
}

guard(150000);
// As deployed: started as root, running as an unprivileged user, behind the shipped snippets.
const s = await startStack({
  edgegate: {
    ...(process.getuid?.() === 0 ? { user: 'nobody' } : {}),
    routes: [
      { path: '/public/', auth: 'public' },
      { path: '/api/admin/', auth: 'session', api: true, allow: { groups: ['ops'] } },
      { path: '/admin/', auth: 'session', allow: { groups: ['ops'] } },
      { path: '/ops/', auth: 'session', explain: true, allow: { groups: ['ops', 'sre'], emails: ['carol@example.test'], claims: { tier: ['gold', 'silver'] } } },
      { path: '/', auth: 'session' },
    ],
  },
});
const shots = path.join(s.dir, 'screenshots');
fs.mkdirSync(shots);
const profile = fs.mkdtempSync(path.join(s.dir, 'chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
await browser.route('**/*', (route) => {
  const u = new URL(route.request().url());
  return u.hostname === '127.0.0.1' ? route.continue() : route.abort();
});

const daemonLog = () => fs.readFileSync(s.eg.logFile, 'utf8');
const ridOf = (text) => (/Request id\s*([A-Za-z0-9_-]{22})/.exec(text) || [])[1];

async function submitLogin(page, login) {
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'secret');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type="submit"]')]);
}

// The page's own hygiene: strict CSP whose style hash is the inline style, no script,
// no external reference; then a screenshot that is a real PNG.
async function checkPage(page, resp, name) {
  const csp = resp.headers()['content-security-policy'] || '';
  ok(/default-src 'none'/.test(csp) && /frame-ancestors 'none'/.test(csp) && /form-action 'self'/.test(csp),
    `${name}: strict CSP header`, csp);
  const html = await page.content();
  const style = (/<style>([\s\S]*?)<\/style>/.exec(html) || [])[1] || '';
  const hash = crypto.createHash('sha256').update(style).digest('base64');
  ok(style && csp.includes(`'sha256-${hash}'`), `${name}: CSP allows exactly the inline style (by hash)`, csp);
  is(await page.$eval('main', (el) => getComputedStyle(el).maxWidth), '608px', `${name}: the style applied under the CSP`);
  ok(!/<script|src=|href="http(?!:\/\/127\.0\.0\.1)/i.test(html), `${name}: no script and no external asset`);
  is(resp.headers()['x-content-type-options'], 'nosniff', `${name}: nosniff`);
  const file = path.join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  const png = fs.readFileSync(file);
  ok(png.length > 2000 && png.subarray(1, 4).toString() === 'PNG', `${name}: screenshot ${file}`);
}

try {
  if (process.getuid?.() === 0) ok(/running as nobody/.test(daemonLog()), 'edgegated dropped to its user', s.eg.log());
  const page = await browser.newPage();
  const admin = `${s.pub}/admin/reports?x=1`;

  // 1. bob logs in on the way to /admin/ and is refused: the 403 page
  await page.goto(admin);
  ok(await page.$('input[name="login"]'), 'the protected page asks for a login', page.url());
  await submitLogin(page, 'bob');
  await page.waitForURL(admin, { timeout: 15000 });
  const r403 = await page.reload();
  is(r403.status(), 403, '403 page: status stays 403');
  const text = await page.innerText('body');
  ok(/Access denied/.test(text), '403 page: title', text);
  ok(/signed in as bob \(bob@example\.test\)/.test(text), '403 page: shows who bob is signed in as', text);
  ok(/Your groups\s*dev/.test(text), "403 page: shows bob's groups", text);
  ok(/Route\s*\/admin\//.test(text) && /Reason\s*not_allowed/.test(text), '403 page: route and reason code', text);
  ok(/not among those allowed/.test(text), '403 page: the reason in words', text);
  ok(!/Required/.test(text), '403 page: without routes[].explain, nothing of the rule', text);
  ok(/127\.0\.0\.1(:\d+)?\/admin\/reports/.test(text), '403 page: the page that was asked for', text);
  const rid = ridOf(text);
  ok(rid, '403 page: a request id', text);
  ok(new RegExp(`verdict 403 request=${rid} reason=not_allowed route=/admin/ .*user=bob`).test(daemonLog()),
    '403 page: the same request id is in the daemon log line of the verdict', daemonLog().split('\n').filter((l) => /verdict 403/.test(l)).join('\n'));
  ok(!r403.headers()['x-edgegate-denial-key'] && !r403.headers()['x-edgegate-request-id'],
    '403 page: the denial key never reaches the browser');
  ok(!daemonLog().includes('Denial-Key') && !/key=/.test(daemonLog()), 'the denial key is not logged');
  await checkPage(page, r403, 'forbidden');

  // 2. API clients keep JSON, through the same snippet
  const jar = (await browser.cookies(s.pub)).map((c) => `${c.name}=${c.value}`).join('; ');
  const api = await request(`${s.pub}/api/admin/users`, { headers: { cookie: jar } });
  let body = {};
  try { body = JSON.parse(api.body); } catch { /* asserted below */ }
  is(api.status, 403, 'API route: 403');
  ok(/application\/json/.test(api.headers['content-type']) && body.error === 'not_allowed' && /^[A-Za-z0-9_-]{22}$/.test(body.request_id),
    'API route: JSON body with reason and request id', api.body);
  const xhr = await request(`${s.pub}/admin/`, { headers: { cookie: jar, accept: 'application/json' } });
  ok(xhr.status === 403 && JSON.parse(xhr.body).error === 'not_allowed', 'Accept: application/json on a page route: JSON 403', xhr.body);

  // 3. a request id alone shows nothing; identity only with the denied session
  const peek = await request(`${s.eg.url}/forbidden`, { headers: { 'x-edgegate-request-id': rid, 'x-edgegate-denial-key': 'A'.repeat(22), cookie: jar } });
  ok(peek.status === 403 && !peek.body.includes('bob') && !peek.body.includes(rid) && /no longer available/.test(peek.body),
    'a request id with a wrong key shows no details', peek.body);
  const authHeaders = { 'x-original-uri': '/admin/', 'x-original-method': 'GET', host: '127.0.0.1', 'x-forwarded-proto': 'http', 'x-real-ip': '127.0.0.1' };
  const auth = await request(`${s.eg.url}/auth`, { headers: { ...authHeaders, cookie: jar } });
  const [id2, key2] = [auth.headers['x-edgegate-request-id'], auth.headers['x-edgegate-denial-key']];
  ok(auth.status === 403 && id2 && key2 && id2 !== key2, '/auth 403 answers a request id and a denial key', auth.headers);
  const other = await request(`${s.eg.url}/forbidden`, { headers: { 'x-edgegate-request-id': id2, 'x-edgegate-denial-key': key2 } });
  ok(other.status === 403 && other.body.includes(id2) && !other.body.includes('bob'),
    'the right key without the denied session: reason and id, but not whose denial it was', other.body);
  const mine = await request(`${s.eg.url}/forbidden`, { headers: { 'x-edgegate-request-id': id2, 'x-edgegate-denial-key': key2, cookie: jar } });
  ok(mine.body.includes('bob@example.test'), 'with the denied session: the identity', mine.body);
  const ops = await request(`${s.eg.url}/auth`, { headers: { ...authHeaders, 'x-original-uri': '/ops/', cookie: jar } });
  const opsPage = await request(`${s.eg.url}/forbidden`, { headers: { 'x-edgegate-request-id': ops.headers['x-edgegate-request-id'], 'x-edgegate-denial-key': ops.headers['x-edgegate-denial-key'], cookie: jar } });
  ok(/<dt>Required<\/dt><dd>group ops or group sre or tier in gold, silver<\/dd>/.test(opsPage.body) && !opsPage.body.includes('carol'),
    'routes[].explain: the page says what the route asks for, never its e-mail list', opsPage.body);

  // 4. "sign in as another user": the OP asks again (prompt=login), alice lands on /admin/
  await page.goto(admin);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('text=Sign in as another user')]);
  ok(page.url().startsWith(s.op.issuer) && (await page.$('input[name="login"]')), 'sign in as another user: the OP login form, despite the OP session', page.url());
  await submitLogin(page, 'alice');
  await page.waitForURL(admin, { timeout: 15000 });
  const echo = JSON.parse(await page.textContent('body'));
  is(echo.headers?.['x-auth-request-email'], 'alice@example.test', 'signed in as alice: /admin/ is served');
  is(echo.url, '/admin/reports?x=1', 'back on the page that was refused, query kept');

  // 5. login errors: a tampered state, and the IdP refusing (with markup in its text). Both carry
  // the OP's iss, as the real OP's responses do (it advertises RFC 9207, so one without is refused)
  const issQ = `&iss=${encodeURIComponent(s.op.issuer)}`;
  const tampered = await page.goto(`${s.pub}/oauth2/callback?state=${'A'.repeat(32)}&code=abc${issQ}`);
  is(tampered.status(), 400, 'tampered state: 400');
  const t1 = await page.innerText('body');
  const rid1 = ridOf(t1);
  ok(/Login failed/.test(t1) && /expired or was started in another browser/.test(t1) && /same browser/.test(t1),
    'tampered state: what happened and what to try', t1);
  ok(rid1 && daemonLog().includes(`login failed at step state request=${rid1}`), 'tampered state: request id in the daemon log', t1);
  ok(await page.$('a[href$="/oauth2/start"]'), 'login error: a link to sign in again');
  await checkPage(page, tampered, 'login-error-state');

  const refused = await page.goto(`${s.pub}/oauth2/callback?error=access_denied&error_description=${encodeURIComponent('<b id="x">no</b>')}&state=${'B'.repeat(32)}${issQ}`);
  const t2 = await page.innerText('body');
  const rid2 = ridOf(t2);
  ok(/access_denied/.test(t2) && t2.includes('<b id="x">no</b>') && !(await page.$('#x')),
    'IdP error: shown as text, its markup escaped', t2);
  ok(rid2 && rid2 !== rid1 && daemonLog().includes(`request=${rid2}`), 'IdP error: its own request id, logged', t2);
  await checkPage(page, refused, 'login-error-idp');

  const badRd = await page.goto(`${s.pub}/oauth2/start?rd=${encodeURIComponent('https://evil.example/')}`);
  const t4 = await page.innerText('body');
  const rid4 = ridOf(t4);
  ok(badRd.status() === 400 && /not allowed/.test(t4) && /outside this site/.test(t4) && rid4 &&
    daemonLog().includes(`login failed at step bad_redirect request=${rid4}`), 'a foreign rd: login error page, logged request id', t4);

  // 6. the sign-out confirmation (a POST form with a CSRF token) where the daemon serves one
  const so = await page.goto(`${s.pub}/oauth2/sign_out`);
  const form = page.url().startsWith(s.pub) && (await page.$('form[method="post"][action$="sign_out"]'));
  if (form) {
    const t3 = await page.innerText('body');
    ok(/Sign out/.test(t3) && (await page.$('input[type="hidden"]')), 'sign-out: a confirmation form with a token', t3);
    await checkPage(page, so, 'sign-out');
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type="submit"]')]);
    ok(page.url().startsWith(s.op.issuer), "sign-out: the form's POST may redirect to the OP (form-action names its origin)", page.url());
    ok(!(await browser.cookies(s.pub)).some((c) => c.name === '_edgegate'), 'sign-out: session cookie removed');
  } else {
    ok(true, '# SKIP sign-out confirmation page: GET /oauth2/sign_out still signs out directly here');
  }
  // 7. proxies that pass the auth answer on (Traefik, Caddy, Envoy): the page is the answer
  const tr = await startEdgegated({ proxy: 'traefik', log_level: 'info', routes: [{ path: '/public/', auth: 'public' }] });
  const tra = await request(`${tr.url}/auth`, { headers: { 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https',
    'x-forwarded-host': 'app.example', 'x-forwarded-uri': '/secret/', 'x-forwarded-for': '198.18.0.9', accept: 'text/html' } });
  const trId = tra.headers['x-edgegate-request-id'];
  ok(tra.status === 403 && /<title>Access denied<\/title>/.test(tra.body) && trId && tra.body.includes(trId) && /no_route/.test(tra.body),
    'traefik profile: the 403 answer is the page, with its request id', tra.body);
  ok(/content-security-policy/i.test(Object.keys(tra.headers).join(' ')) && !tra.headers['x-edgegate-denial-key'],
    'traefik profile: CSP, and no denial key (only nginx needs it)', tra.headers);
  ok(fs.readFileSync(tr.logFile, 'utf8').includes(`verdict 403 request=${trId} reason=no_route`), 'traefik profile: the request id is logged');
} catch (e) {
  ok(false, `browser flow: ${e.stack || e.message}`);
  diag(s.eg.log());
} finally {
  await browser.close();
}
await done();
