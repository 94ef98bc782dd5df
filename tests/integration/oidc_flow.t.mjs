#!/usr/bin/env node
// oidc_flow.t.mjs - the full login against the real OP (oidc-provider) through nginx:
// protected URL -> /oauth2/start -> OP login -> /oauth2/callback -> original URL with
// identity headers; the session survives a daemon restart; /oauth2/userinfo;
// RP-initiated logout (end_session_endpoint with id_token_hint) ends it.
import { ok, is, done, guard, request, diag, ROOT } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';
import fs from 'node:fs';

guard(90000);
const s = await startStack();
const app = `${s.pub}/app/page?x=1`;

// 1. unauthenticated: sent to the login start, with rd = the original URL
const jar = new Jar();
let r = await jar.fetch(app);
is(r.status, 302, 'unauthenticated request is redirected');
ok(r.headers.location && r.headers.location.startsWith(`${s.pub}/oauth2/start?rd=`), 'to /oauth2/start with rd', r.headers.location);

// 2. the start endpoint: PKCE S256, nonce, state; a sealed state cookie
r = await jar.fetch(r.headers.location);
is(r.status, 302, '/oauth2/start redirects to the OP');
const authz = new URL(r.headers.location);
ok(authz.href.startsWith(`${s.op.issuer}/auth`), 'to the authorization endpoint', authz.href);
is(authz.searchParams.get('code_challenge_method'), 'S256', 'PKCE S256');
ok(/^[A-Za-z0-9_-]{43}$/.test(authz.searchParams.get('code_challenge') || ''), 'code_challenge present');
ok((authz.searchParams.get('nonce') || '').length >= 32, 'nonce present');
is(authz.searchParams.get('state')?.length, 32, 'state present');
is(authz.searchParams.get('redirect_uri'), `${s.pub}/oauth2/callback`, 'redirect_uri');
const stateCookie = jar.cookies.find((c) => c.name.startsWith('_edgegate_state_'));
ok(stateCookie && /HttpOnly/.test(stateCookie.raw) && /SameSite=Lax/.test(stateCookie.raw) && /Path=\/oauth2\//.test(stateCookie.raw),
  'state cookie: HttpOnly, SameSite=Lax, Path=/oauth2/', stateCookie?.raw);
ok(stateCookie && !stateCookie.value.includes(authz.searchParams.get('nonce')), 'state cookie is opaque (sealed)');

// 3. log in at the OP and come back to the original URL
const fresh = await browserLogin(new Jar(), app).catch((e) => ({ status: 0, body: String(e) }));
ok(fresh.status === 200 && fresh.url === app, 'a fresh browser logs in end to end', fresh.body?.slice(0, 200));
r = await jar.follow(authz.href);
const m = /action="([^"]+)"/.exec(r.body);
ok(m, 'OP login form shown', r.body.slice(0, 200));
r = await jar.follow(new URL(m[1], r.url).toString(), { method: 'POST', form: { prompt: 'login', login: 'alice', password: 'x' } });
is(r.status, 200, 'after login the original URL answers 200');
is(r.url, app, 'landed on the original URL');
let echo = JSON.parse(r.body || '{}');
is(echo.headers?.['x-auth-request-email'], 'alice@example.test', 'upstream saw X-Auth-Request-Email');
is(echo.headers?.['x-auth-request-user'], 'alice', 'upstream saw X-Auth-Request-User');
ok(String(echo.headers?.['x-auth-request-groups'] || '').includes('ops'), 'upstream saw groups', echo.headers);
const sess = jar.get('_edgegate');
ok(sess && /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/.test(sess.value), 'session cookie is an opaque ticket', sess?.value);
ok(sess && /HttpOnly/.test(sess.raw) && /SameSite=Lax/.test(sess.raw), 'session cookie HttpOnly SameSite=Lax', sess?.raw);
ok(!jar.cookies.some((c) => c.name.startsWith('_edgegate_state_')), 'state cookie cleared after use');

// 4. replaying the callback (same state and code) fails
const cb = jar.trace.find((t) => t.url.includes('/oauth2/callback'));
const j2 = new Jar();
j2.cookies = jar.cookies.filter((c) => c.name !== '_edgegate').concat(stateCookie);
r = await j2.fetch(cb.url);
is(r.status, 400, 'replayed callback is refused');

// 5. /oauth2/userinfo returns the session claims
r = await jar.fetch(`${s.pub}/oauth2/userinfo`);
is(r.status, 200, '/oauth2/userinfo with a session');
is(JSON.parse(r.body).email, 'alice@example.test', 'userinfo claims');
r = await request(`${s.pub}/oauth2/userinfo`);
is(r.status, 401, '/oauth2/userinfo without a session is 401');

// 6. a restart of edgegated logs nobody out
await s.eg.stop();
const { startEdgegated } = await import('../lib/harness.mjs');
const eg2 = await startEdgegated(s.eg.config, { dir: s.eg.dir });
await new Promise((res) => setTimeout(res, 300));
r = await jar.fetch(app);
is(r.status, 200, 'session valid after a daemon restart');
echo = JSON.parse(r.body || '{}');
is(echo.headers?.['x-auth-request-email'], 'alice@example.test', 'same identity after restart');

// 7. a new login gives a new session id (no fixation)
const before = jar.get('_edgegate').value;
r = await jar.follow(`${s.pub}/oauth2/start?rd=${encodeURIComponent('/app/again')}`);
is(r.url, `${s.pub}/app/again`, 'second login (OP session reused) lands on rd');
ok(jar.get('_edgegate') && jar.get('_edgegate').value !== before, 'new ticket at every login');
r = await request(app, { headers: { cookie: `_edgegate=${before}` } });
is(r.status, 302, 'the previous ticket no longer works');

// 8. RP-initiated logout: session ends here, then the OP's end_session endpoint
const current = jar.get('_edgegate').value;
r = await jar.fetch(`${s.pub}/oauth2/sign_out?rd=${encodeURIComponent('/signed-out')}`);
is(r.status, 200, 'GET sign_out shows the confirmation page');
const csrf = /name="csrf" value="([^"]+)"/.exec(r.body)?.[1];
r = await jar.fetch(`${s.pub}/oauth2/sign_out`, { method: 'POST', form: { csrf, rd: '/signed-out' } });
is(r.status, 302, 'confirmed sign_out (POST with the CSRF token) redirects');
const es = new URL(r.headers.location);
is(es.origin + es.pathname, `${s.op.issuer}/session/end`, 'to the OP end_session_endpoint');
ok((es.searchParams.get('id_token_hint') || '').split('.').length === 3, 'with id_token_hint');
is(es.searchParams.get('post_logout_redirect_uri'), `${s.pub}/signed-out`, 'with post_logout_redirect_uri');
ok(!jar.get('_edgegate'), 'session cookie cleared');
r = await request(app, { headers: { cookie: `_edgegate=${current}` } });
is(r.status, 302, 'old ticket denied after sign-out');
r = await jar.follow(es.href);
ok(/sign/i.test(r.body), 'OP asks to confirm sign-out', r.body.slice(0, 200));

// 9. open redirects refused on start and sign_out
for (const bad of ['//evil.test/', 'https://evil.test/', '/\\evil.test', 'javascript:alert(1)']) {
  r = await request(`${s.pub}/oauth2/start?rd=${encodeURIComponent(bad)}`);
  is(r.status, 400, `start refuses rd=${bad}`);
  r = await request(`${s.pub}/oauth2/sign_out?rd=${encodeURIComponent(bad)}`);
  is(r.status, 400, `sign_out refuses rd=${bad}`);
}
r = await request(`${s.pub}/oauth2/start?rd=/a&rd=/b`);
is(r.status, 400, 'duplicate rd refused');

// 10. concurrent logins are capped at oidc.max_states (default 8) state cookies
const tabs = new Jar();
for (let i = 0; i < 11; i++) await tabs.fetch(`${s.pub}/oauth2/start?rd=/t${i}`);
const n = tabs.cookies.filter((c) => c.name.startsWith('_edgegate_state_')).length;
ok(n === 8, `state cookies capped at 8 (have ${n})`);

const leaks = fs.readFileSync(eg2.logFile, 'utf8');
ok(!leaks.includes(before), 'no ticket in the daemon log');
diag(`trace hops: ${jar.trace.length}`);
void ROOT;
await done();
