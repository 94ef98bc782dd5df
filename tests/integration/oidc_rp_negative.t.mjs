#!/usr/bin/env node
// oidc_rp_negative.t.mjs - relying-party checks against a test OP we control
// (jose-minted tokens), after the OpenID Foundation RP certification cases:
// rp-id_token-bad-sig-{rs256,es256,hs256}, -issuer-mismatch, -aud, -iat, -sub,
// rp-nonce-invalid, rp-id_token-kid-absent-{single,multiple}-jwks, rp-key-rotation-op-sign-key,
// rp-discovery-issuer-not-matching-config, plus PKCE, client auth and userinfo sub.
import path from 'node:path';
import fs from 'node:fs';
import { ok, is, done, guard, request, nginxHeaders, sleep, startEdgegated, freePort, tmpdir, waitFor } from '../lib/harness.mjs';
import { Jar } from '../lib/oidc_helpers.mjs';
import { startTestOP, newKey, sign } from '../lib/testop.mjs';

guard(120000);
const clientId = 'rp-test';
const clientSecret = 'rp-secret-0123456789abcdef0123456789';

async function daemon(op, extra = {}, { ready = true, routes = [{ path: '/', auth: 'session' }] } = {}) {
  const port = await freePort();
  const dir = tmpdir('eg-rp-');
  const pub = `http://127.0.0.1:${port}`;
  const eg = await startEdgegated({
    listen: `127.0.0.1:${port}`,
    public_url: pub,
    cookie: { secure: false },
    oidc: { issuer: op.issuer, client_id: clientId, client_secret: clientSecret, redirect_url: `${pub}/oauth2/callback`, ...extra },
    routes,
  }, { dir });
  if (ready) await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'discovery' });
  return eg;
}

// One login; returns the callback's response (302 to rd on success).
async function login(eg) {
  const jar = new Jar();
  const r = await jar.follow(`${eg.url}/oauth2/start?rd=/done`, { stopAt: (u) => u.endsWith('/done') });
  return { r, jar };
}

const op = await startTestOP({ clientId, clientSecret });
const es = await newKey('ES256', 'es-1');
// the daemon sees three keys from the start: rs-1, es-1 and a second RSA key, rs-b (two keys
// fit an RS256 token, so one without kid is refused: kid-absent-multiple-jwks)
op.state.keys.push(es, await newKey('RS256', 'rs-b'));
// ES256 as well as the default RS256: the cases below sign with both (oidc.algorithms, the
// algorithms "registered" for this client)
const eg = await daemon(op, { algorithms: ['RS256', 'ES256'] });
const t0 = Date.now();
const base = op.state.claims;
const setClaims = (fn) => { op.state.claims = (ctx) => fn(base(ctx), ctx); };
const reset = () => { op.state.claims = base; op.state.mint = async (ctx) => sign(op.state.claims(ctx), op.state.keys[0]); };

async function expect(name, accepted) {
  const { r, jar } = await login(eg);
  if (accepted) {
    ok(r.status === 302 && r.next?.endsWith('/done') && jar.get('_edgegate'), `${name}: accepted`, { status: r.status, body: r.body?.slice(0, 200) });
  } else {
    ok(r.status >= 400 && !jar.get('_edgegate'), `${name}: rejected`, { status: r.status, next: r.next });
  }
  reset();
  return r;
}

// the baseline works, and the token request carried PKCE and client_secret_basic
await expect('valid id_token (RS256, kid)', true);
ok(/^Basic /.test(op.state.lastTokenRequest.authorization || ''), 'client_secret_basic used');
ok(op.state.lastTokenRequest.params.code_verifier?.length >= 43, 'code_verifier sent');

// signatures
const otherRs = await newKey('RS256', 'rs-1'); // same kid, other key
op.state.mint = async (ctx) => sign(op.state.claims(ctx), otherRs);
await expect('rp-id_token-bad-sig-rs256', false);
const otherEs = await newKey('ES256', 'es-1');
op.state.mint = async (ctx) => sign(op.state.claims(ctx), otherEs);
await expect('rp-id_token-bad-sig-es256', false);
op.state.mint = async (ctx) => sign(op.state.claims(ctx), es);
await expect('valid ES256 id_token', true);
op.state.mint = async (ctx) => {
  const { SignJWT } = await import('jose');
  return new SignJWT(op.state.claims(ctx)).setProtectedHeader({ alg: 'HS256', kid: 'rs-1' })
    .sign(new TextEncoder().encode(clientSecret));
};
await expect('rp-id_token-bad-sig-hs256 (HS256 not allowed)', false);
op.state.mint = async (ctx) => {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'none' })}.${enc(op.state.claims(ctx))}.`;
};
await expect('alg none', false);

// claims
setClaims((c) => ({ ...c, iss: 'http://127.0.0.1:1' }));
await expect('rp-id_token-issuer-mismatch', false);
setClaims((c) => ({ ...c, aud: 'someone-else' }));
await expect('rp-id_token-aud (wrong audience)', false);
setClaims((c) => ({ ...c, aud: [clientId, 'other'] }));
await expect('several audiences without azp', false);
setClaims((c) => ({ ...c, aud: [clientId, 'other'], azp: clientId }));
await expect('several audiences with azp = client_id', true);
setClaims((c) => ({ ...c, azp: 'other' }));
await expect('azp of another client', false);
setClaims((c) => { const { iat, ...rest } = c; void iat; return rest; });
await expect('rp-id_token-iat (missing iat)', false);
setClaims((c) => { const { sub, ...rest } = c; void sub; return rest; });
await expect('rp-id_token-sub (missing sub)', false);
setClaims((c) => ({ ...c, nonce: 'not-the-nonce-we-sent-0123456789abcdef' }));
await expect('rp-nonce-invalid', false);
setClaims((c) => { const { nonce, ...rest } = c; void nonce; return rest; });
await expect('missing nonce', false);
setClaims((c) => ({ ...c, exp: Math.floor(Date.now() / 1000) - 3600 }));
await expect('expired id_token', false);
setClaims((c) => ({ ...c, exp: '9999999999' }));
await expect('exp not a number', false);

// kid handling: two keys fit RS256 (rs-1, rs-b) and no kid -> refuse
op.state.mint = async (ctx) => sign(op.state.claims(ctx), op.state.keys[0], { kid: undefined });
await expect('rp-id_token-kid-absent-multiple-jwks', false);

// a key the OP publishes seconds after start-up: unknown kid -> refetch at once -> accepted
// (the first unknown-kid refetch after a scheduled fetch is never throttled)
const since = Date.now() - t0;
const rotated = await newKey('RS256', 'rs-2');
op.state.keys = [rotated];
const hits = op.state.jwksHits;
op.state.mint = async (ctx) => sign(op.state.claims(ctx), rotated);
await expect(`rp-key-rotation-op-sign-key right after start-up (${since} ms)`, true);
ok(since < 10000, 'the rotation came within jwks_min_refetch (10 s) of the first fetch', { since });
ok(op.state.jwksHits > hits, 'the JWKS was refetched');

// a flood of made-up kids costs a few JWKS fetches (token bucket), not one per login
{
  const h0 = op.state.jwksHits;
  for (let i = 0; i < 8; i++) {
    const bogus = await newKey('ES256', `bogus-${i}`);
    op.state.mint = async (ctx) => sign(op.state.claims(ctx), bogus);
    await expect(`made-up kid ${i}`, false);
  }
  ok(op.state.jwksHits - h0 <= 3, 'eight made-up kids: at most 3 JWKS fetches', { fetches: op.state.jwksHits - h0 });
}

// single key, no kid: accepted
op.state.keys = [rotated];
op.state.mint = async (ctx) => sign(op.state.claims(ctx), { ...rotated, kid: undefined });
await expect('rp-id_token-kid-absent-single-jwks', true);

// email_verified missing (a provider where users type their own address): a domains rule refuses
{
  const egm = await daemon(op, {}, { routes: [{ path: '/corp/', auth: 'session', allow: { domains: ['example.test'] } },
    { path: '/', auth: 'session' }] });
  const corp = async (jar) => (await request(`${egm.url}/auth`, { headers: nginxHeaders('/corp/x', { cookie: `_edgegate=${jar.get('_edgegate')?.value}` }) })).status;
  op.state.userinfo = { sub: 'alice', email: 'alice@example.test' };
  setClaims((c) => ({ ...c, email: 'alice@example.test' }));
  let { r: r1, jar: j1 } = await login(egm);
  ok(r1.status === 302 && j1.get('_edgegate'), 'login without email_verified (id_token and userinfo)');
  is(await corp(j1), 403, 'unverified email does not satisfy the domains rule -> 403');
  setClaims((c) => ({ ...c, email: 'alice@example.test', email_verified: true }));
  ({ r: r1, jar: j1 } = await login(egm));
  is(await corp(j1), 200, 'email_verified true -> 200');
  op.state.userinfo = { sub: 'alice', email: 'alice@example.test', email_verified: false };
  setClaims((c) => ({ ...c, email: 'alice@example.test', email_verified: true }));
  ({ r: r1, jar: j1 } = await login(egm));
  is(await corp(j1), 403, 'userinfo says email_verified false (merged over the id_token) -> 403');
  op.state.userinfo = null;
  reset();
  await egm.stop();
}

// back-channel logout_token rules (Back-Channel Logout 1.0 section 2.6)
{
  const { jar: victim } = await login(eg);
  const ticket = victim.get('_edgegate')?.value;
  const alive = async () => (await request(`${eg.url}/oauth2/userinfo`, { headers: { cookie: `_edgegate=${ticket}` } })).status === 200;
  ok(await alive(), 'a session to log out');
  const now = Math.floor(Date.now() / 1000);
  const good = () => ({ iss: op.issuer, aud: clientId, iat: now, jti: `j-${Math.random()}`, sub: 'alice',
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
  const post = async (claims, key = rotated, header = { typ: 'logout+jwt' }) => request(`${eg.url}/oauth2/backchannel-logout`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `logout_token=${await sign(claims, key, header)}`,
  });
  const drop = (k) => { const c = good(); delete c[k]; return c; };
  const cases = [
    ['no events', drop('events')],
    ['wrong event', { ...good(), events: { 'http://schemas.openid.net/event/other': {} } }],
    ['nonce present', { ...good(), nonce: 'n' }],
    ['no iat', drop('iat')],
    ['iat far in the past', { ...good(), iat: now - 3600 }],
    ['no jti', drop('jti')],
    ['neither sid nor sub', drop('sub')],
    ['wrong iss', { ...good(), iss: 'http://127.0.0.1:1' }],
    ['wrong aud', { ...good(), aud: 'other' }],
    ['expired', { ...good(), exp: now - 600 }],
  ];
  for (const [name, claims] of cases) {
    const r = await post(claims);
    is(r.status, 400, `logout_token ${name}: refused`);
  }
  is((await post(good(), await newKey('RS256', 'rs-2'))).status, 400, 'logout_token with a bad signature: refused');
  is((await post(good(), rotated, { typ: 'at+jwt' })).status, 400, 'logout_token with typ at+jwt: refused');
  ok(await alive(), 'session still alive after the forged tokens');
  const valid = good();
  is((await post(valid)).status, 200, 'valid logout_token accepted');
  ok(!(await alive()), 'session ended by it');
  is((await post(valid)).status, 400, 'the same jti again: refused (replay)');
}

// OP errors shown as a page, duplicate parameters refused
let r = await request(`${eg.url}/oauth2/callback?error=access_denied&error_description=${encodeURIComponent('<b>no</b>')}&state=x`);
is(r.status, 400, 'OP error -> 400 page');
ok(/access_denied/.test(r.body) && !/<b>no<\/b>/.test(r.body) && /&lt;b&gt;/.test(r.body), 'error shown, HTML-escaped', r.body);
r = await request(`${eg.url}/oauth2/callback?code=a&code=b&state=x`);
is(r.status, 400, 'duplicate code refused');
r = await request(`${eg.url}/oauth2/callback?code=a&state=${'A'.repeat(32)}`);
is(r.status, 400, 'callback without the state cookie refused');
const { jar } = await login(eg); // a state cookie for another state does not help
r = await jar.fetch(`${eg.url}/oauth2/callback?code=a&state=${'B'.repeat(32)}`);
is(r.status, 400, 'callback with a foreign state refused');

// userinfo: sub must match the id_token
const eg2 = await daemon(op, { use_userinfo: true });
op.state.userinfo = { sub: 'mallory', email: 'mallory@example.test' };
{
  const { r: r2, jar: j2 } = await login(eg2);
  ok(r2.status >= 400 && !j2.get('_edgegate'), 'userinfo with another sub: rejected', r2.status);
  op.state.userinfo = { sub: 'alice', email: 'alice-userinfo@example.test' };
  const { r: r3, jar: j3 } = await login(eg2);
  is(r3.status, 302, 'userinfo with the same sub: accepted');
  const u = await j3.fetch(`${eg2.url}/oauth2/userinfo`);
  is(JSON.parse(u.body).email, 'alice-userinfo@example.test', 'userinfo claims merged');
}

// discovery whose issuer does not match the configuration: never ready, no login
op.state.docIssuer = `${op.issuer}/other`;
const eg3 = await daemon(op, {}, { ready: false });
await sleep(1500);
r = await request(`${eg3.url}/readyz`);
is(r.status, 503, 'rp-discovery-issuer-not-matching-config: /readyz false');
r = await request(`${eg3.url}/oauth2/start?rd=/`);
is(r.status, 503, 'and /oauth2/start unavailable');
ok(/issuer mismatch/.test(fs.readFileSync(eg3.logFile, 'utf8')), 'logged: issuer mismatch');
// ...and it recovers once discovery is right (background retry)
op.state.docIssuer = op.issuer;
await waitFor(async () => (await request(`${eg3.url}/readyz`)).status === 200, { what: 'rediscovery', timeout: 20000 });
ok(true, 'discovery retried in the background until it succeeded');
void path;
await done();
