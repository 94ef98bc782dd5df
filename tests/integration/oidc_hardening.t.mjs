#!/usr/bin/env node
// oidc_hardening.t.mjs - issue 13 against the real OP (npm oidc-provider) behind nginx:
//  - claims only in userinfo (Okta-like): email and groups still reach policy and headers;
//  - email without email_verified: refused by a domains rule, not passed on as a header;
//  - the session cookie is __Host-edgegate (Secure, Path=/, no Domain) by default;
//  - a second session cookie of the same name (a sibling subdomain's) is refused;
//  - sign-out: a cross-site GET does not log out (confirmation page), a POST without
//    the CSRF token is refused, a POST with it signs out;
//  - back-channel logout with a wrong Content-Type: 415;
//  - the OP rotates its signing key seconds after edgegated's first JWKS fetch: the
//    id_token with the new kid is accepted at once.
import { ok, is, done, guard, request, diag } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';
import { startOP, newSigningKeys } from '../lib/op.mjs';

guard(120000);

const s = await startStack({
  op: { claimsInIdToken: false },
  edgegate: {
    cookie: { secret: 'cookie-secret-0123456789abcdef0123456789' }, // secure (the default)
    routes: [
      { path: '/public/', auth: 'public' },
      { path: '/corp/', auth: 'session', allow: { domains: ['example.test'] } },
      { path: '/', auth: 'session' },
    ],
  },
});
const app = `${s.pub}/app/`;
const COOKIE = '__Host-edgegate';

// --- userinfo by default, __Host- cookie -----------------------------------------------
const a = new Jar();
let r = await browserLogin(a, app, 'alice');
is(r.status, 200, 'alice logged in (claims only from userinfo)');
let seen = r.status === 200 ? JSON.parse(r.body).headers : {};
is(seen['x-auth-request-email'], 'alice@example.test', 'email from the userinfo endpoint reaches the upstream');
is(seen['x-auth-request-groups'], 'ops,dev', 'groups from the userinfo endpoint reach the upstream');
const ck = a.get(COOKIE);
ok(ck, `the session cookie is named ${COOKIE}`, a.names());
ok(ck && /;\s*Secure/i.test(ck.raw) && /;\s*Path=\/(;|$)/.test(ck.raw) && !/Domain=/i.test(ck.raw),
  '__Host- rules: Secure, Path=/, no Domain', ck && ck.raw);
r = await a.fetch(`${s.pub}/corp/x`);
is(r.status, 200, 'verified email in an allowed domain -> 200 on the domains route');

// --- unverified email ------------------------------------------------------------------
const m = new Jar();
r = await browserLogin(m, app, 'mallory');
is(r.status, 200, 'mallory (no email_verified) logs in');
seen = r.status === 200 ? JSON.parse(r.body).headers : {};
ok(!seen['x-auth-request-email'], 'an unverified email is not passed on as X-Auth-Request-Email', seen);
r = await m.fetch(`${s.pub}/corp/x`);
is(r.status, 403, 'missing email_verified does not satisfy a domains rule -> 403');

// --- duplicate session cookies -----------------------------------------------------------
const good = a.get(COOKIE).value;
r = await request(app, { headers: { cookie: `${COOKIE}=${good}` } });
is(r.status, 200, 'control: the one session cookie -> 200');
r = await request(app, { headers: { cookie: `${COOKIE}=${good}; ${COOKIE}=${m.get(COOKIE).value}` } });
ok(r.status === 401 || r.status === 302, `two session cookies of the same name are refused (${r.status})`);
r = await request(app, { headers: { cookie: `${COOKIE}=${m.get(COOKIE).value}; ${COOKIE}=${good}` } });
ok(r.status === 401 || r.status === 302, `...in either order (${r.status})`);
r = await request(app, { headers: { cookie: `${COOKIE}=${good}`, 'x-extra': '1' } });
is(r.status, 200, 'the session itself is untouched');

// --- sign-out needs a POST with the CSRF token ---------------------------------------------
r = await a.fetch(`${s.pub}/oauth2/sign_out?rd=${encodeURIComponent('/signed-out')}`, { headers: { 'sec-fetch-site': 'cross-site' } });
is(r.status, 200, 'GET /oauth2/sign_out shows a confirmation page');
ok(/<form method="post"/.test(r.body) && /name="csrf"/.test(r.body), 'the page has a POST form with a csrf field', r.body.slice(0, 400));
ok(/frame-ancestors 'none'/.test(r.headers['content-security-policy'] || ''), 'the confirmation page cannot be framed');
r = await a.fetch(app);
is(r.status, 200, 'after a (cross-site) GET the session is still alive');
r = await a.fetch(`${s.pub}/oauth2/sign_out`, { method: 'POST', form: { rd: '/signed-out' } });
is(r.status, 403, 'POST without the CSRF token -> 403');
r = await a.fetch(`${s.pub}/oauth2/sign_out`, { method: 'POST', form: { rd: '/signed-out', csrf: 'A'.repeat(43) } });
is(r.status, 403, 'POST with a wrong CSRF token -> 403');
const mpage = await m.fetch(`${s.pub}/oauth2/sign_out`);
const mtok = /name="csrf" value="([^"]+)"/.exec(mpage.body)?.[1];
r = await a.fetch(`${s.pub}/oauth2/sign_out`, { method: 'POST', form: { rd: '/signed-out', csrf: mtok } });
is(r.status, 403, "POST with another session's CSRF token -> 403");
r = await a.fetch(app);
is(r.status, 200, 'the session survived every refused sign-out');
r = await a.fetch(`${s.pub}/oauth2/sign_out?rd=${encodeURIComponent('https://evil.test/')}`);
is(r.status, 400, 'rd is still validated on the GET');
const page = await a.fetch(`${s.pub}/oauth2/sign_out?rd=${encodeURIComponent('/signed-out')}`);
const tok = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
const rd = /name="rd" value="([^"]+)"/.exec(page.body)?.[1];
ok(tok && rd === '/signed-out', 'the form carries the token and rd', { tok, rd });
r = await a.fetch(`${s.pub}/oauth2/sign_out`, { method: 'POST', form: { rd: 'https://evil.test/', csrf: tok } });
is(r.status, 400, 'rd is validated on the POST');
r = await a.fetch(`${s.pub}/oauth2/sign_out`, { method: 'POST', form: { rd, csrf: tok } });
is(r.status, 302, 'POST with the CSRF token signs out');
ok(/\/session\/end|\/signed-out/.test(r.headers.location || ''), 'and redirects (RP-initiated logout at the OP, or rd)', r.headers.location);
r = await request(app, { headers: { cookie: `${COOKIE}=${good}` } });
ok(r.status === 302 || r.status === 401, `the old session cookie no longer works (${r.status})`);

// --- front-channel logout: iss + the OP's sid end that OP session's sessions ----------------------
const f = new Jar();
r = await browserLogin(f, app, 'bob');
is(r.status, 200, 'bob logged in');
const sid = JSON.parse((await f.fetch(`${s.pub}/oauth2/userinfo`)).body || '{}').sid;
ok(typeof sid === 'string' && sid.length > 8, 'the session knows the OP session id (sid)', sid);
const fcl = (q) => request(`${s.pub}/oauth2/frontchannel-logout?${q}`);
is((await fcl(`iss=${encodeURIComponent(s.op.issuer)}&sid=not-the-sid`)).status, 200, 'an unknown sid: 200, nothing ended');
is((await f.fetch(app)).status, 200, 'bob still signed in');
is((await fcl(`iss=${encodeURIComponent('http://evil.test')}&sid=${encodeURIComponent(sid)}`)).status, 400, 'another iss -> 400');
is((await fcl(`sid=${encodeURIComponent(sid)}`)).status, 400, 'no iss -> 400');
is((await fcl(`iss=${encodeURIComponent(s.op.issuer)}&sid=${encodeURIComponent(sid)}&sid=x`)).status, 400, 'sid twice -> 400');
is((await f.fetch(app)).status, 200, 'bob still signed in after the refused requests');
r = await fcl(`iss=${encodeURIComponent(s.op.issuer)}&sid=${encodeURIComponent(sid)}`);
is(r.status, 200, 'front-channel logout with the right iss and sid -> 200');
r = await f.fetch(app);
ok(r.status === 302 || r.status === 401, `bob's session ended (${r.status})`);

// --- back-channel logout: form Content-Type only ---------------------------------------------
const bcl = (ct, body) => request(`${s.pub}/oauth2/backchannel-logout`, {
  method: 'POST', headers: { 'content-type': ct, 'content-length': Buffer.byteLength(body) }, body,
});
r = await bcl('application/json', JSON.stringify({ logout_token: 'x.y.z' }));
is(r.status, 415, 'back-channel logout with application/json -> 415');
r = await bcl('text/plain', 'logout_token=x.y.z');
is(r.status, 415, 'back-channel logout with text/plain (a form-looking body) -> 415');
r = await bcl('application/x-www-form-urlencoded-evil', 'logout_token=x.y.z');
is(r.status, 415, 'a look-alike Content-Type -> 415');
r = await bcl('application/x-www-form-urlencoded; charset=UTF-8', 'logout_token=x.y.z');
is(r.status, 400, 'the form Content-Type (with a charset) gets to the token check (bad token -> 400)');

// --- key rotation right after start-up ----------------------------------------------------------
// A fresh stack: edgegated fetches the JWKS at start-up; the OP then restarts with
// new signing keys (new kids) and the login happens within jwks_min_refetch (10 s).
const t = await startStack({});
const started = Date.now();
const opPort = Number(new URL(t.op.issuer).port);
await t.op.stop();
const rotated = await startOP({ port: opPort, clients: [t.client], keys: newSigningKeys('2') });
const j = new Jar();
r = await browserLogin(j, `${t.pub}/app/`, 'bob');
const took = Date.now() - started;
is(r.status, 200, `id_token signed with a new kid ${took} ms after start-up is accepted`);
ok(took < 10000, 'the login happened within the default jwks_min_refetch (10 s)', { took });
seen = r.status === 200 ? JSON.parse(r.body).headers : {};
is(seen['x-auth-request-user'], 'bob', 'and the session works');
const log = t.eg.log();
ok(!/id_token rejected/.test(log), 'no id_token was rejected', log);
await rotated.stop();

const alive = (await request(`${s.eg.url}/healthz`)).status === 200;
ok(alive, 'edgegated alive at the end');
if (!alive) diag(s.eg.log());
await done();
