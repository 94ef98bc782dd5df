#!/usr/bin/env node
// oidc_rp_audit.t.mjs - the conformance audit's relying-party cases (docs/conformance.md):
//   RFC 9207 iss in the authorization response: against the real OP (npm oidc-provider sends
//   it and advertises authorization_response_iss_parameter_supported) and against the test OP
//   (iss absent / wrong / required when advertised, also on error responses);
//   at_hash and c_hash checked when the id_token carries them (OIDC Core 3.1.3.6, 3.3.2.11);
//   logout_token typ spellings (Back-Channel Logout 1.0 2.4, RFC 7515 4.1.9), events member
//   exactly, sid and/or sub, a JWE-shaped (5 part) logout_token.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ok, is, done, guard, request, startEdgegated, freePort, tmpdir, waitFor, EDGEGATED } from '../lib/harness.mjs';
import { Jar, opLogin, startStack } from '../lib/oidc_helpers.mjs';
import { startTestOP, newKey, sign } from '../lib/testop.mjs';

guard(150000);

// --- RFC 9207 against the real OP, behind nginx ---------------------------------------------------
{
  const s = await startStack();
  const toCallback = async () => {
    const jar = new Jar();
    const r = await jar.follow(`${s.pub}/app/x`);
    const cb = await opLogin(jar, r, 'alice', { stopAt: (u) => u.includes('/oauth2/callback') });
    return { jar, cb: new URL(cb.next || 'http://x/') };
  };
  let { jar, cb } = await toCallback();
  is(cb.searchParams.get('iss'), s.op.issuer, 'the real OP sends iss in the authorization response (RFC 9207)');
  let r = await jar.follow(cb.toString());
  is(r.status, 200, 'and that callback logs in');

  ({ jar, cb } = await toCallback());
  cb.searchParams.set('iss', `${s.op.issuer}/`);
  r = await jar.fetch(cb.toString());
  ok(r.status === 400 && /another issuer/.test(r.body) && !jar.get('_edgegate'), 'iss with a trailing slash: refused (exact match)', { status: r.status });

  ({ jar, cb } = await toCallback());
  cb.searchParams.delete('iss');
  r = await jar.fetch(cb.toString());
  ok(r.status === 400 && /another issuer/.test(r.body) && !jar.get('_edgegate'),
    'iss left out although the OP advertises it: refused (a mix-up attacker strips it)', { status: r.status });
  await s.eg.stop();
  await s.op.stop();
}

// --- the test OP ------------------------------------------------------------------------------------
const clientId = 'rp-audit';
const clientSecret = 'rp-audit-secret-0123456789abcdef0123';
const op = await startTestOP({ clientId, clientSecret });

async function daemon(oidcExtra = {}) {
  const port = await freePort();
  const pub = `http://127.0.0.1:${port}`;
  const eg = await startEdgegated({
    listen: `127.0.0.1:${port}`,
    public_url: pub,
    cookie: { secure: false },
    oidc: { issuer: op.issuer, client_id: clientId, client_secret: clientSecret, redirect_url: `${pub}/oauth2/callback`, ...oidcExtra },
    routes: [{ path: '/', auth: 'session' }],
  }, { dir: tmpdir('eg-rpa-') });
  await waitFor(async () => (await request(`${eg.url}/readyz`)).status === 200, { what: 'discovery' });
  return eg;
}

async function login(eg) {
  const jar = new Jar();
  const r = await jar.follow(`${eg.url}/oauth2/start?rd=/done`, { stopAt: (u) => u.endsWith('/done') });
  return { r, jar };
}
async function expect(eg, name, accepted, { page } = {}) {
  const { r, jar } = await login(eg);
  if (accepted) ok(r.status === 302 && r.next?.endsWith('/done') && jar.get('_edgegate'), `${name}: accepted`, { status: r.status, body: r.body?.slice(0, 300) });
  else ok(r.status >= 400 && !jar.get('_edgegate') && (!page || page.test(r.body)), `${name}: rejected`, { status: r.status, body: r.body?.slice(0, 300) });
}
const base = op.state.claims;
const withClaims = (fn) => { op.state.mint = async (ctx) => sign(fn(base(ctx), ctx), op.state.keys[0]); };
const reset = () => { op.state.mint = async (ctx) => sign(base(ctx), op.state.keys[0]); op.state.authzIss = undefined; op.state.authzError = undefined; };
const half = (alg, v) => { const h = crypto.createHash(alg).update(v).digest(); return h.subarray(0, h.length / 2).toString('base64url'); };

const bcl = (egd, tok) => request(`${egd.url}/oauth2/backchannel-logout`, {
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `logout_token=${tok}`,
});
const EV = 'http://schemas.openid.net/event/backchannel-logout';
const logoutClaims = (extra = {}) => {
  const now = Math.floor(Date.now() / 1000);
  return { iss: op.issuer, aud: clientId, iat: now, exp: now + 120, jti: crypto.randomUUID(), sub: 'alice', events: { [EV]: {} }, ...extra };
};

// The default oidc.algorithms is RS256, the registration default (OIDC Core 3.1.3.7 step 7), for
// ID and logout tokens alike: another algorithm, even by a key the OP publishes, is refused
// (oidcc-client-test-rp-backchannel-rpinitlogout-wrong-alg signs with ES256 by its published EC key)
{
  const es = await newKey('ES256', 'es-default');
  op.state.keys.push(es);
  const egd = await daemon();
  op.state.mint = async (ctx) => sign(base(ctx), es);
  await expect(egd, 'default algorithms: an ES256 id_token by a published key', false);
  ok(/alg ES256 is not in oidc\.algorithms \(default RS256\)/.test(fs.readFileSync(egd.logFile, 'utf8')), 'logged: alg ES256 is not in oidc.algorithms (default RS256)');
  reset();
  await expect(egd, 'default algorithms: an RS256 id_token', true);
  is((await bcl(egd, await sign(logoutClaims(), es, { typ: 'logout+jwt' }))).status, 400, 'wrong-alg: an ES256 logout_token by a published key -> 400');
  is((await bcl(egd, await sign(logoutClaims(), op.state.keys[0], { typ: 'logout+jwt' }))).status, 200, 'the same logout_token in RS256 -> 200');
  op.state.keys.pop();
  await egd.stop();
}

// RFC 9207 with an OP that does not advertise the parameter (ES384 allowed too: at_hash below)
const eg = await daemon({ algorithms: ['RS256', 'ES384'] });
await expect(eg, 'no iss, OP does not advertise it', true);
op.state.authzIss = op.issuer;
await expect(eg, 'iss = our issuer', true);
op.state.authzIss = 'http://127.0.0.1:1';
await expect(eg, 'iss of another issuer (mix-up)', false, { page: /another issuer/ });
op.state.authzError = 'access_denied';
await expect(eg, 'an error response with another issuer\'s iss: refused as a mix-up, not shown as that OP\'s error', false, { page: /another issuer/ });
op.state.authzIss = undefined;
await expect(eg, 'an error response without iss (OP does not advertise it): the OP\'s error page', false, { page: /access_denied/ });
reset();

// OpenID Connect Core 4, login initiated by the OP or a third party (oidcc-client-test-3rd-party-init-login):
// /oauth2/start is the initiate_login_uri; iss must be our OP, target_link_uri is checked like rd
{
  const jar = new Jar();
  const start = `${eg.url}/oauth2/start?iss=${encodeURIComponent(op.issuer)}&target_link_uri=${encodeURIComponent('/done')}&login_hint=${encodeURIComponent('alice@example.test')}`;
  const r1 = await jar.follow(start, { stopAt: (u) => u.startsWith(`${op.issuer}/authorize`) });
  const az = new URL(r1.next || 'http://x/');
  ok(az.searchParams.get('login_hint') === 'alice@example.test' && az.searchParams.get('code_challenge_method') === 'S256',
    '3rd-party initiated login: on to the OP with login_hint and PKCE', r1.next);
  const r2 = await jar.follow(r1.next, { stopAt: (u) => u.endsWith('/done') });
  ok(r2.status === 302 && r2.next?.endsWith('/done') && jar.get('_edgegate'), '... and back on target_link_uri, signed in', { status: r2.status, next: r2.next });
  for (const [what, q] of [
    ['iss of another OP', `iss=${encodeURIComponent('http://127.0.0.1:1')}`],
    ['iss twice', `iss=${encodeURIComponent(op.issuer)}&iss=${encodeURIComponent(op.issuer)}`],
    ['target_link_uri off-site', `iss=${encodeURIComponent(op.issuer)}&target_link_uri=${encodeURIComponent('https://evil.test/')}`],
  ]) {
    const r = await request(`${eg.url}/oauth2/start?${q}`);
    ok(r.status === 400 && !r.headers.location, `3rd-party initiated login with ${what}: 400, no redirect`, { status: r.status, location: r.headers.location });
  }
}

// at_hash / c_hash: checked when present (RS256 -> SHA-256 left half)
withClaims((c, ctx) => ({ ...c, at_hash: half('sha256', ctx.accessToken) }));
await expect(eg, 'at_hash of the access token', true);
withClaims((c, ctx) => ({ ...c, at_hash: half('sha256', `${ctx.accessToken}x`) }));
await expect(eg, 'at_hash of another access token', false);
withClaims((c, ctx) => ({ ...c, at_hash: half('sha384', ctx.accessToken) }));
await expect(eg, 'at_hash with the wrong hash for RS256', false);
withClaims((c) => ({ ...c, at_hash: 7 }));
await expect(eg, 'at_hash not a string', false);
withClaims((c, ctx) => ({ ...c, c_hash: half('sha256', ctx.code) }));
await expect(eg, 'c_hash of the code', true);
withClaims((c, ctx) => ({ ...c, c_hash: half('sha256', `${ctx.code}0`) }));
await expect(eg, 'c_hash of another code', false);
{
  const es = await newKey('ES384', 'es384-1');
  op.state.keys.push(es);
  op.state.mint = async (ctx) => sign({ ...base(ctx), at_hash: half('sha384', ctx.accessToken) }, es);
  await expect(eg, 'ES384 id_token with a SHA-384 at_hash (new kid: refetched)', true);
  op.state.mint = async (ctx) => sign({ ...base(ctx), at_hash: half('sha256', ctx.accessToken) }, es);
  await expect(eg, 'ES384 id_token with a SHA-256 at_hash', false);
  op.state.keys.pop();
}
reset();

// back-channel logout_token: typ spellings, events, sid/sub, shape
{
  const now = Math.floor(Date.now() / 1000);
  const EV = 'http://schemas.openid.net/event/backchannel-logout';
  const good = (extra = {}) => ({ iss: op.issuer, aud: clientId, iat: now, exp: now + 120, jti: crypto.randomUUID(), sub: 'alice', events: { [EV]: {} }, ...extra });
  const post = (tok) => request(`${eg.url}/oauth2/backchannel-logout`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `logout_token=${tok}`,
  });
  const key = op.state.keys[0];
  for (const [typ, want] of [['logout+jwt', 200], ['application/logout+jwt', 200], ['LOGOUT+JWT', 200], ['JWT', 200],
    [undefined, 200], ['secevent+jwt', 400], ['id_token+jwt', 400], ['at+jwt', 400], [7, 400], ['application/jwt+logout', 400]]) {
    is((await post(await sign(good(), key, { typ }))).status, want, `logout_token typ ${JSON.stringify(typ)} -> ${want}`);
  }
  const cases = [
    ['events member value not an object', good({ events: { [EV]: 'yes' } }), 400],
    ['events an array', good({ events: [EV] }), 400],
    ['event URI with a trailing slash', good({ events: { [`${EV}/`]: {} } }), 400],
    ['events with another member besides the logout event', good({ events: { [EV]: {}, 'urn:x:other': {} } }), 200],
    ['sid only', { ...good({ sid: 'op-sid-1' }), sub: undefined }, 200],
    ['sid and sub', good({ sid: 'op-sid-2' }), 200],
    ['sub not a string', good({ sub: 5 }), 400],
    ['aud as an array holding us', good({ aud: [clientId] }), 200],
    ['iat in the future', good({ iat: now + 3600 }), 400],
    ['iat not a number', good({ iat: String(now) }), 400],
    ['exp fractional, in the future', good({ exp: now + 60.5 }), 200],
    ['exp not a number', good({ exp: 'soon' }), 400],
  ];
  for (const [name, claims, want] of cases) is((await post(await sign(claims, key, { typ: 'logout+jwt' }))).status, want, `logout_token ${name} -> ${want}`);
  const five = `${(await sign(good(), key)).split('.').slice(0, 2).join('.')}.AAAA.AAAA.AAAA`;
  is((await post(five)).status, 400, 'a five-part (JWE-shaped) logout_token -> 400');
  const t = await sign(good(), key, { typ: 'logout+jwt' });
  is((await post(t)).status, 200, 'a logout_token ...');
  is((await post(t)).status, 400, '... and its replay (same jti) -> 400');
}
await eg.stop();

// rp-id_token-sig-hs256: only with oidc.algorithms naming HS256, keyed with the client_secret's
// octets (OIDC Core 10.1); never with an oct key the OP publishes in its (public) JWKS
{
  const { SignJWT } = await import('jose');
  const hs = (secret, kid) => async (ctx) => new SignJWT(base(ctx)).setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(kid ? { kid } : {}) })
    .sign(new TextEncoder().encode(secret));
  const egh = await daemon({ algorithms: ['RS256', 'HS256'] });
  op.state.mint = hs(clientSecret);
  await expect(egh, 'rp-id_token-sig-hs256: HS256 with the client_secret, no kid', true);
  op.state.mint = hs(clientSecret, 'any-kid');
  await expect(egh, 'HS256 with the client_secret and a kid', true);
  op.state.mint = hs(`${clientSecret}x`);
  await expect(egh, 'rp-id_token-bad-sig-hs256: HS256 with another secret', false);
  const pubSecret = 'a-secret-the-op-published-in-its-jwks-0123';
  op.state.keys.push({ kid: 'oct-1', jwk: { kty: 'oct', kid: 'oct-1', alg: 'HS256', k: Buffer.from(pubSecret).toString('base64url') } });
  op.state.mint = hs(pubSecret, 'oct-1');
  await expect(egh, 'HS256 keyed with an oct key from the OP\'s JWKS', false);
  op.state.keys.pop();
  op.state.mint = async (ctx) => sign({ ...base(ctx), at_hash: half('sha256', ctx.accessToken) }, op.state.keys[0]);
  await expect(egh, 'RS256 still accepted next to HS256', true);
  reset();
  await egh.stop();
  op.state.mint = hs(clientSecret);
  const egr = await daemon();
  await expect(egr, 'HS256 with the client_secret when oidc.algorithms does not name it', false);
  reset();
  await egr.stop();
  // a client_secret too short for the HS algorithm named: a configuration error naming the key
  const dir = tmpdir('eg-rpa-');
  const file = path.join(dir, 'short.json');
  fs.writeFileSync(file, JSON.stringify({
    listen: '127.0.0.1:1', public_url: 'http://127.0.0.1:1', cookie: { secure: false }, state_dir: dir,
    oidc: { issuer: op.issuer, client_id: clientId, client_secret: 'short-secret', redirect_url: 'http://127.0.0.1:1/oauth2/callback', algorithms: ['RS256', 'HS384'] },
    routes: [{ path: '/', auth: 'session' }],
  }));
  const chk = spawnSync(EDGEGATED, ['--check', '--config', file], { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
  ok(chk.status !== 0 && /oidc\.algorithms\[1\].*HS384 needs a client_secret of at least 48 bytes/.test(chk.stderr + chk.stdout),
    'a 12-byte client_secret with HS384: --check fails, naming oidc.algorithms[1]', { status: chk.status, out: (chk.stderr + chk.stdout).slice(0, 400) });
}

// kid absent (OIDC Core 10.1): the OpenID RP tests publish one signing key of each type, none with a
// kid or an alg (oidcc-client-test-kid-absent-single-jwks), beside encryption keys and keys the RP
// cannot parse (oidcc-client-test-ignores-unparseable-key-in-jwks): the one key that fits the token's
// alg verifies it. Several keys that fit and no kid: refused (kid-absent-multiple-jwks allows either).
{
  const saved = op.state.keys;
  const noKidNoAlg = async (alg) => { const k = await newKey(alg); delete k.jwk.alg; delete k.jwk.use; return k; };
  const rsa = await noKidNoAlg('RS256');
  const p256 = await noKidNoAlg('ES256');
  const ed = await noKidNoAlg('EdDSA');
  const k1 = crypto.generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ format: 'jwk' });
  const encRsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
  const extra = [
    { jwk: k1 },
    { jwk: { ...encRsa, use: 'enc', alg: 'RSA-OAEP-256' } },
    { jwk: { kty: 'AKP', alg: 'ML-DSA-99', kid: 'pq-1', pub: 'AAAA' } },
    { jwk: { kty: 'made-up', kid: 'x-1', v: 1 } },
    // parseable keys whose alg or curve does not exist (the suite's AddUnusableKeysToServerPublicJwks)
    { jwk: { ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), alg: 'RS9999', kid: 'u-rsa', use: 'sig' } },
    { jwk: { ...crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), alg: 'ES9999', kid: 'u-ec', use: 'sig' } },
    { jwk: { ...crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), crv: 'P-9999', kid: 'u-crv', use: 'sig' } },
  ];
  op.state.keys = [rsa, p256, ed, ...extra];
  const egk = await daemon({ algorithms: ['RS256', 'ES256', 'EdDSA'] });
  op.state.mint = async (ctx) => sign(base(ctx), rsa);
  await expect(egk, 'kid-absent-single-jwks: RS256 without kid, one RSA key beside EC, OKP, secp256k1, enc and unparseable keys', true);
  op.state.mint = async (ctx) => sign(base(ctx), p256);
  await expect(egk, 'ES256 without kid: the one P-256 key', true);
  op.state.mint = async (ctx) => sign(base(ctx), ed);
  await expect(egk, 'EdDSA without kid: the one Ed25519 key', true);
  const stranger = await noKidNoAlg('RS256');
  op.state.mint = async (ctx) => sign(base(ctx), stranger);
  await expect(egk, 'RS256 without kid by a key the OP does not publish', false);
  await egk.stop();
  const rsa2 = await noKidNoAlg('RS256');
  op.state.keys = [rsa, rsa2, p256];
  const egm = await daemon({ algorithms: ['RS256', 'ES256'] });
  op.state.mint = async (ctx) => sign(base(ctx), rsa);
  await expect(egm, 'kid-absent-multiple-jwks: RS256 without kid, two RSA keys: refused', false);
  op.state.mint = async (ctx) => sign(base(ctx), p256);
  await expect(egm, 'ES256 without kid beside the two RSA keys: the one P-256 key', true);
  await egm.stop();
  op.state.keys = saved;
  reset();
}

// RFC 9207 with an OP that advertises the parameter: then it is required
op.state.discovery = { authorization_response_iss_parameter_supported: true };
const eg2 = await daemon();
await expect(eg2, 'OP advertises iss, response without it', false, { page: /another issuer/ });
op.state.authzIss = op.issuer;
await expect(eg2, 'OP advertises iss, response with it', true);
op.state.authzIss = `${op.issuer}/`;
await expect(eg2, 'OP advertises iss, iss with a trailing slash', false, { page: /another issuer/ });
reset();
await eg2.stop();
await done();
