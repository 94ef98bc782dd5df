#!/usr/bin/env node
// bearer_introspection.t.mjs - opaque access tokens of the real OP (npm oidc-provider,
// client_credentials) behind nginx: edgegated asks the OP's introspection endpoint
// (RFC 7662), caches an active answer briefly (introspection_cache), and a token
// revoked at the OP (RFC 7009) stops working once that short cache expires.
import {
  ok, is, done, guard, freePort, request, startEcho, startEdgegated, sleep, startProtectedSite,
} from '../lib/harness.mjs';
import { startOP } from '../lib/op.mjs';

guard(90000);
const opPort = await freePort();
const client = {
  client_id: 'api-client', client_secret: 'api-secret-0123456789abcdef0123456789',
  grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
};
const rs = { client_id: 'edgegate-rs', client_secret: 'rs-secret-0123456789abcdef0123456789', grant_types: [], response_types: [], redirect_uris: [] };
const other = { ...client, client_id: 'other-client', client_secret: 'other-secret-0123456789abcdef01234567' };
const op = await startOP({ port: opPort, clients: [client, rs, other], introspection: true });
const basic = (c) => `Basic ${Buffer.from(`${encodeURIComponent(c.client_id)}:${encodeURIComponent(c.client_secret)}`).toString('base64')}`;
const form = (o) => new URLSearchParams(o).toString();
async function post(pathname, body, c) {
  const b = form(body);
  return request(`${op.issuer}${pathname}`, { method: 'POST', body: b,
    headers: { authorization: basic(c), 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(b) } });
}
async function accessToken(c = client) {
  const r = await post('/token', { grant_type: 'client_credentials' }, c);
  const j = JSON.parse(r.body);
  if (!j.access_token) throw new Error(`no access token: ${r.status} ${r.body}`);
  return j.access_token;
}

const echo = await startEcho();
const egPort = await freePort();
const eg = await startEdgegated({
  listen: `127.0.0.1:${egPort}`,
  jwt: {
    jwks_url: `${op.issuer}/jwks`, issuer: op.issuer, audience: '*',
    introspection_url: `${op.issuer}/token/introspection`,
    introspection_client_id: rs.client_id, introspection_client_secret: rs.client_secret,
    introspection_cache: '1s',
  },
  routes: [{ path: '/api/', auth: 'bearer', allow: { claims: { client_id: 'api-client' } } }],
});
const { port } = await startProtectedSite({ appPort: echo.port, edgegate: `127.0.0.1:${egPort}` });
const get = (tok) => request(`http://127.0.0.1:${port}/api/orders`, { headers: { authorization: `Bearer ${tok}` } });

const tok = await accessToken();
ok(tok.split('.').length !== 3, 'control: the OP issued an opaque (non-JWS) access token', tok.length);
let r = await get(tok);
is(r.status, 200, 'an active opaque token (introspected at the OP) -> 200');
r = await get(tok);
is(r.status, 200, 'again (cached) -> 200');
r = await get('opaque-token-the-op-never-issued_0123456789');
is(r.status, 401, 'a token the OP does not know (active: false) -> 401');

// revoked at the OP: refused once the short introspection cache has expired
const rv = await post('/token/revocation', { token: tok, token_type_hint: 'access_token' }, client);
is(rv.status, 200, 'the OP revoked the token');
await sleep(1300);
r = await get(tok);
is(r.status, 401, 'a token revoked at the OP -> 401 after introspection_cache (1 s)');

// a token of another client: active, but the claims from introspection fail the policy
r = await get(await accessToken(other));
is(r.status, 403, "another client's active token: the claims rule (client_id) refuses it -> 403");

const m = (await request(`${eg.url}/metrics`)).body;
ok(/edgegate_verdicts_total\{result="unauthenticated",reason="inactive"\} [1-9]/.test(m), 'inactive tokens are counted with reason "inactive"', m.slice(0, 1500));
const alive = (await request(`${eg.url}/healthz`)).status === 200;
ok(alive, 'edgegated alive');
await done();
