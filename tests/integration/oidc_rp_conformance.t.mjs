#!/usr/bin/env node
// oidc_rp_conformance.t.mjs - the OpenID Foundation RP conformance cases the real OP (npm
// oidc-provider, tools/op/op.mjs) can produce, behind nginx: what the RP sends and accepts
// when the OP does everything right. The cases that need a misbehaving OP (bad signatures,
// wrong iss/aud/nonce/sub, kid-less tokens, userinfo with another sub) are in
// oidc_rp_negative.t.mjs (an OP we control); rotation right after start-up in oidc_hardening.t.mjs.
//   rp-response_type-code, rp-scope-userinfo-claims, rp-token_endpoint-client_secret_basic,
//   rp-id_token-sig-rs256, rp-userinfo-bearer-header, rp-key-rotation-op-sign-key, rp-claims-aggregated,
//   rp-claims-distributed (neither is resolved: the claims they name are absent, rules on them
//   fail closed, and no access token is ever sent to a distributed endpoint).
import http from 'node:http';
import crypto from 'node:crypto';
import { ok, is, done, guard, freePort, onCleanup } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';
import { startOP, newSigningKeys } from '../lib/op.mjs';

guard(150000);

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwtParts = (t) => (t || '..').split('.').slice(0, 2).map((p) => { try { return JSON.parse(Buffer.from(p, 'base64url')); } catch { return {}; } });

// --- the default OP: claims in the id_token and at userinfo ----------------------------------
{
  const s = await startStack({
    edgegate: { routes: [{ path: '/public/', auth: 'public' }, { path: '/', auth: 'session' }] },
  });
  const reqs = s.op.stats.requests;
  const jar = new Jar();
  const start = await jar.follow(`${s.pub}/app/x`, { stopAt: (u) => u.startsWith(`${s.op.issuer}/auth`) });
  const authz = new URL(start.next || 'http://x/');
  // rp-response_type-code
  is(authz.searchParams.get('response_type'), 'code', 'rp-response_type-code: the authorization request asks for a code');
  ok(!authz.searchParams.has('response_mode') || authz.searchParams.get('response_mode') === 'query',
    'no implicit/fragment response mode', authz.search);
  // rp-scope-userinfo-claims: openid plus the configured scopes
  const scopes = (authz.searchParams.get('scope') || '').split(' ');
  ok(['openid', 'email', 'profile', 'groups'].every((x) => scopes.includes(x)), 'rp-scope-userinfo-claims: scope is openid + the configured scopes', scopes);

  const seenBefore = reqs.length;
  const r = await browserLogin(new Jar(), `${s.pub}/app/x`, 'alice');
  is(r.status, 200, 'alice logs in at the real OP');
  const ours = reqs.slice(seenBefore);
  // rp-token_endpoint-client_secret_basic
  const tok = ours.filter((q) => q.method === 'POST' && q.url.split('?')[0] === '/token');
  is(tok.length, 1, 'one token request');
  const basic = /^Basic (.+)$/.exec(tok[0]?.headers.authorization || '');
  const [id, secret] = basic ? Buffer.from(basic[1], 'base64').toString().split(':').map(decodeURIComponent) : [];
  ok(id === s.client.client_id && secret === s.client.client_secret,
    'rp-token_endpoint-client_secret_basic: HTTP Basic with the form-encoded client_id and secret (the OP accepted it)');
  // rp-id_token-sig-rs256: the OP signs with RS256 (its default); the RP accepted that token
  const [hdr, claims] = jwtParts(s.op.stats.lastIdToken);
  is(hdr.alg, 'RS256', 'rp-id_token-sig-rs256: the id_token the OP issued was RS256');
  is(claims.sub, 'alice', 'and it is the one the session was made from');
  // rp-userinfo-bearer-header
  const ui = ours.filter((q) => q.url.split('?')[0] === '/me');
  is(ui.length, 1, 'userinfo fetched once at login');
  ok(/^Bearer [A-Za-z0-9_-]{20,}$/.test(ui[0]?.headers.authorization || ''), 'rp-userinfo-bearer-header: the access token in the Authorization header', ui[0]?.headers.authorization?.slice(0, 12));
  ok(ui[0]?.method === 'GET' && !/access_token/.test(ui[0]?.url || ''), 'and not in the query (GET, no access_token parameter)', ui[0]);
  // rp-scope-userinfo-claims: the scope's claims reach the upstream
  const h = r.status === 200 ? JSON.parse(r.body).headers : {};
  is(h['x-auth-request-email'], 'alice@example.test', 'the email scope\'s claim reaches the upstream');
  is(h['x-auth-request-groups'], 'ops,dev', 'the groups scope\'s claim reaches the upstream');

  // rp-key-rotation-op-sign-key: a login, the OP rotates its signing keys (new kids, the old
  // ones gone), another login; the first session does not depend on the OP's keys
  const aliceJar = new Jar();
  is((await browserLogin(aliceJar, `${s.pub}/app/y`, 'alice')).status, 200, 'a login under the first keys');
  const kid1 = jwtParts(s.op.stats.lastIdToken)[0].kid;
  await s.op.stop();
  const op2 = await startOP({ port: Number(new URL(s.op.issuer).port), clients: [s.client], keys: newSigningKeys('2') });
  onCleanup(() => op2.stop());
  const r2 = await browserLogin(new Jar(), `${s.pub}/app/z`, 'bob');
  const kid2 = jwtParts(op2.stats.lastIdToken)[0].kid;
  ok(r2.status === 200 && kid2 && kid2 !== kid1, `rp-key-rotation-op-sign-key: signed with ${kid2} after ${kid1}, accepted`, r2.status);
  is((await aliceJar.fetch(`${s.pub}/app/y`)).status, 200, 'the session made under the old key still works');
  await s.eg.stop();
  await op2.stop();
}

// --- aggregated and distributed claims (OpenID Connect Core 5.6.2) ------------------------------
// groups come as an aggregated claim: a JWT signed by another claims provider saying "ops";
// realm_access as a distributed claim: an endpoint and an access token for it. The RP resolves
// neither: believing the JWT would need that provider's keys, and fetching the endpoint would
// hand the access token to whatever URL the claims name.
{
  const distPort = await freePort();
  const distHits = [];
  const dist = http.createServer((req, res) => {
    distHits.push({ url: req.url, auth: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ realm_access: { roles: ['admin'] } }));
  });
  await new Promise((res) => dist.listen(distPort, '127.0.0.1', res));
  onCleanup(() => new Promise((res) => { dist.closeAllConnections?.(); dist.close(() => res()); }));
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const aggregated = (sub, groups) => {
    const input = `${b64({ alg: 'RS256', kid: 'claims-1' })}.${b64({ iss: 'https://claims.example.test', sub, groups })}`;
    return `${input}.${crypto.sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
  };
  const shape = ({ groups, ...c }) => ({
    ...c,
    _claim_names: { groups: 'agg', realm_access: 'dist' },
    _claim_sources: {
      agg: { JWT: aggregated(c.sub, groups) },
      dist: { endpoint: `http://127.0.0.1:${distPort}/claims`, access_token: 'dist-token-0123456789' },
    },
  });
  const s = await startStack({
    op: { shape },
    oidc: { groups_claim: 'groups' },
    edgegate: {
      routes: [
        { path: '/team/', auth: 'session', allow: { groups: ['ops'] } },
        { path: '/realm/', auth: 'session', allow: { claims: { 'realm_access.roles': 'admin' } } },
        { path: '/strict/', auth: 'session', deny: { groups: ['suspended'] } },
        { path: '/', auth: 'session' },
      ],
    },
  });
  const jar = new Jar();
  let r = await browserLogin(jar, `${s.pub}/open/`, 'alice');
  is(r.status, 200, 'alice logs in (the aggregated and distributed claims do not break the login)');
  const h = r.status === 200 ? JSON.parse(r.body).headers : {};
  ok(!h['x-auth-request-groups'], 'no groups header: the aggregated JWT\'s groups are not believed', h['x-auth-request-groups']);
  r = await jar.fetch(`${s.pub}/team/x`);
  is(r.status, 403, 'rp-claims-aggregated: a groups rule is not met by the aggregated claim -> 403');
  r = await jar.fetch(`${s.pub}/strict/x`);
  is(r.status, 403, 'a deny rule on groups fails closed when groups are only aggregated');
  r = await jar.fetch(`${s.pub}/realm/x`);
  is(r.status, 403, 'rp-claims-distributed: a claims rule is not met by the distributed claim -> 403');
  is(distHits.length, 0, 'the distributed claims endpoint was never called (no access token leaves for it)', distHits);
  r = await jar.fetch(`${s.pub}/oauth2/userinfo`);
  const c = r.status === 200 ? JSON.parse(r.body) : {};
  ok(c._claim_names?.groups === 'agg' && !c.groups && !c.realm_access, 'the session holds the claim references, not the claims', c);
  await s.eg.stop();
  await s.op.stop();
}
await done();
