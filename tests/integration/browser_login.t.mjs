#!/usr/bin/env node
// browser_login.t.mjs - headless Chromium (playwright-core) through nginx: a protected
// URL sends the browser to the OP, the user logs in, lands on the original URL and the
// upstream saw X-Auth-Request-Email; two tabs logging in concurrently both succeed;
// sign-out ends the session (the next visit asks for a login again).
import fs from 'node:fs';
import path from 'node:path';
import { ok, is, done, guard, skipAll, diag } from '../lib/harness.mjs';
import { startStack } from '../lib/oidc_helpers.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) skipAll(`no chromium at ${CHROMIUM}`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  skipAll(`playwright-core not installed: ${e.message}`);
}

guard(120000);
// The OP shaped like Okta (claims only from userinfo; docs/providers/okta.md): the
// identity the upstream sees comes through edgegated's default userinfo fetch.
const s = await startStack({ op: { profile: 'okta' } });
const profile = fs.mkdtempSync(path.join(s.dir, 'chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
// Loopback only: anything else (web fonts of OP pages...) is refused, never fetched.
await browser.route('**/*', (route) => {
  const u = new URL(route.request().url());
  return u.hostname === '127.0.0.1' ? route.continue() : route.abort();
});

async function echoOf(page) {
  const text = await page.textContent('body');
  try { return JSON.parse(text); } catch { return { raw: text }; }
}

async function submitLogin(page, login) {
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'secret');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type="submit"]')]);
}

try {
  // 1. two tabs start a login at the same time (two state cookies)
  const tab1 = await browser.newPage();
  const tab2 = await browser.newPage();
  const url1 = `${s.pub}/app/one?q=1`;
  const url2 = `${s.pub}/app/two`;
  await tab1.goto(url1);
  await tab2.goto(url2);
  ok(tab1.url().startsWith(s.op.issuer) && (await tab1.$('input[name="login"]')), 'tab 1 is at the OP login form', tab1.url());
  ok(tab2.url().startsWith(s.op.issuer) && (await tab2.$('input[name="login"]')), 'tab 2 is at the OP login form', tab2.url());
  const states = (await browser.cookies()).filter((c) => c.name.startsWith('_edgegate_state_'));
  is(states.length, 2, 'one state cookie per login in flight');

  // 2. log in on tab 1: back on the original URL; the upstream saw the identity
  await submitLogin(tab1, 'alice');
  await tab1.waitForURL(url1, { timeout: 15000 });
  is(tab1.url(), url1, 'tab 1 landed on its original URL');
  const e1 = await echoOf(tab1);
  is(e1.headers?.['x-auth-request-email'], 'alice@example.test', 'upstream saw X-Auth-Request-Email (from userinfo)');
  is(e1.headers?.['x-auth-request-groups'], 'ops,dev', 'upstream saw X-Auth-Request-Groups (from userinfo)');
  is(e1.url, '/app/one?q=1', 'upstream got the original path and query');

  // 3. tab 2 finishes its own login afterwards: its state is still valid
  await submitLogin(tab2, 'alice');
  await tab2.waitForURL(url2, { timeout: 15000 });
  is(tab2.url(), url2, 'tab 2 (concurrent login) landed on its original URL');
  is((await echoOf(tab2)).headers?.['x-auth-request-email'], 'alice@example.test', 'tab 2 is logged in');
  const session = (await browser.cookies(s.pub)).find((c) => c.name === '_edgegate');
  ok(session && session.httpOnly && session.sameSite === 'Lax', 'session cookie HttpOnly, SameSite=Lax', session);
  ok(!(await browser.cookies()).some((c) => c.name.startsWith('_edgegate_state_')), 'state cookies consumed');

  // 4. sign out: our session ends, then the OP confirms and sends us back
  await tab1.goto(`${s.pub}/oauth2/sign_out?rd=${encodeURIComponent('/signed-out')}`);
  ok((await browser.cookies(s.pub)).some((c) => c.name === '_edgegate'), 'the sign-out page alone (a GET) does not sign out');
  await Promise.all([tab1.waitForNavigation({ waitUntil: 'load' }), tab1.click('#sign-out')]);
  ok(tab1.url().startsWith(`${s.op.issuer}/session/end`), 'sign-out goes to the OP end_session_endpoint', tab1.url());
  await Promise.all([tab1.waitForNavigation({ waitUntil: 'load' }), tab1.click('#yes')]);
  ok(!(await browser.cookies(s.pub)).some((c) => c.name === '_edgegate'), 'session cookie removed');
  // after the OP logout, post_logout_redirect_uri (/signed-out) is protected again: login form
  await tab1.goto(url1);
  ok(tab1.url().startsWith(s.op.issuer) && (await tab1.$('input[name="login"]')), 'after sign-out the protected URL asks for a login', tab1.url());
  await tab2.reload();
  ok(tab2.url().startsWith(s.op.issuer), 'the other tab is signed out too', tab2.url());
} catch (e) {
  ok(false, `browser flow: ${e.message}`);
  diag(s.eg.log());
} finally {
  await browser.close();
}
await done();
