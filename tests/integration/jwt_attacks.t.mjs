#!/usr/bin/env node
// jwt_attacks.t.mjs - the JWT attack corpus (docs/conformance.md, column X) as bearer tokens
// through real nginx with the shipped snippets: alg none and its spellings, HS256 keyed with
// the RSA public key, keys in the header (jwk/jku/x5u/x5c), kid injection, crit and b64,
// non-canonical base64url, duplicate members, nested and five-part tokens, ES256 as DER and
// the psychic signature. Each attack that needs a valid signature carries one by the real key,
// so only the rule under test can refuse it; controls show the same keys and claims pass.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  ok, is, done, guard, freePort, startEcho, startEdgegated, request, tmpdir, startProtectedSite,
} from '../lib/harness.mjs';

guard(120000);
const ISS = 'https://idp.example.test';
const AUD = 'api://attacks';
const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const evil = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwkOf = (k, extra) => ({ ...k.publicKey.export({ format: 'jwk' }), use: 'sig', ...extra });
const keys = { keys: [jwkOf(rsa, { kid: 'rsa-1', alg: 'RS256' }), jwkOf(ec, { kid: 'ec-1', alg: 'ES256' })] };

const now = () => Math.floor(Date.now() / 1000);
const claims = (extra = {}) => ({ iss: ISS, aud: AUD, sub: 'user-1', iat: now(), exp: now() + 600, ...extra });
// Signs the exact header/payload strings given (JSON text, so duplicates and odd spellings survive).
function signRaw(alg, key, hdrText, payloadText) {
  const input = `${b64(hdrText)}.${b64(payloadText)}`;
  let sig;
  if (alg.startsWith('HS')) sig = crypto.createHmac(`sha${alg.slice(2)}`, key).update(input).digest();
  else if (alg.startsWith('RS')) sig = crypto.sign(`sha${alg.slice(2)}`, Buffer.from(input), key);
  else sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: alg === 'ES256-DER' ? 'der' : 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}
const tok = (alg, key, hdr, payload = claims()) => signRaw(alg, key, JSON.stringify(hdr), JSON.stringify(payload));

const dir = tmpdir('jwtatk-');
const kfile = path.join(dir, 'jwks.json');
fs.writeFileSync(kfile, JSON.stringify(keys));
const echo = await startEcho();
const egPort = await freePort();
await startEdgegated({
  listen: `127.0.0.1:${egPort}`,
  jwt: { jwks_file: kfile, issuer: ISS, audience: AUD },
  routes: [{ path: '/api/', auth: 'bearer' }],
}, { dir });
const { port } = await startProtectedSite({ appPort: echo.port, edgegate: `127.0.0.1:${egPort}` });
const get = (t) => request(`http://127.0.0.1:${port}/api/x`, { headers: { Authorization: `Bearer ${t}` } });

// controls
const goodRs = tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'rsa-1', typ: 'JWT' });
const goodEs = tok('ES256', ec.privateKey, { alg: 'ES256', kid: 'ec-1' });
is((await get(goodRs)).status, 200, 'control: RS256 by the published key -> 200');
is((await get(goodEs)).status, 200, 'control: ES256 by the published key -> 200');
is((await get(tok('RS256', rsa.privateKey, { alg: 'RS256' }))).status, 200, 'control: RS256 without kid -> 200');

const [h0, p0, s0] = goodRs.split('.');
const attacks = [];
// alg none
for (const a of ['none', 'None', 'nOnE', 'NONE', '']) {
  attacks.push([`alg "${a}", empty signature`, `${b64({ alg: a, typ: 'JWT' })}.${p0}.`]);
  attacks.push([`alg "${a}", the RS256 signature kept`, `${b64({ alg: a, typ: 'JWT' })}.${p0}.${s0}`]);
}
attacks.push(['alg missing', `${b64({ typ: 'JWT' })}.${p0}.${s0}`]);
// algorithm confusion: HS256 keyed with the RSA public key as the server would hold it
const spki = rsa.publicKey.export({ type: 'spki', format: 'pem' });
const pkcs1 = rsa.publicKey.export({ type: 'pkcs1', format: 'pem' });
const nBytes = Buffer.from(keys.keys[0].n, 'base64url');
for (const [what, secret] of [['SPKI PEM', spki], ['PKCS#1 PEM', pkcs1], ['modulus bytes', nBytes], ['JWK JSON', JSON.stringify(keys.keys[0])]]) {
  attacks.push([`HS256 keyed with the RSA public key (${what}), kid rsa-1`, tok('HS256', secret, { alg: 'HS256', kid: 'rsa-1' })]);
  attacks.push([`HS256 keyed with the RSA public key (${what}), no kid`, tok('HS256', secret, { alg: 'HS256' })]);
}
// keys in the header
const evilJwk = evil.publicKey.export({ format: 'jwk' });
attacks.push(['embedded jwk (attacker key), no kid', tok('ES256', evil.privateKey, { alg: 'ES256', jwk: evilJwk })]);
attacks.push(['embedded jwk (attacker key) with kid ec-1', tok('ES256', evil.privateKey, { alg: 'ES256', kid: 'ec-1', jwk: { ...evilJwk, kid: 'ec-1' } })]);
attacks.push(['jku to an attacker JWKS', tok('ES256', evil.privateKey, { alg: 'ES256', kid: 'evil', jku: 'http://127.0.0.1:9/jwks.json' })]);
attacks.push(['x5u to an attacker certificate', tok('ES256', evil.privateKey, { alg: 'ES256', x5u: 'http://127.0.0.1:9/cert.pem' })]);
attacks.push(['x5c with an attacker chain', tok('ES256', evil.privateKey, { alg: 'ES256', x5c: ['MIIBszCCAVmgAwIBAgIUAA=='] })]);
attacks.push(['embedded oct jwk with its HMAC', tok('HS256', 'attacker-secret-0123456789abcdef0', { alg: 'HS256', jwk: { kty: 'oct', k: b64('attacker-secret-0123456789abcdef0') } })]);
// kid injection
for (const kid of ['../../../../../../dev/null', '/dev/null', "x' UNION SELECT 'key'--", 'rsa-1\u0000', 'RSA-1', 'rsa-1 ', '|cat /etc/passwd']) {
  attacks.push([`kid ${JSON.stringify(kid)} with HS256 and an empty key`, tok('HS256', '', { alg: 'HS256', kid })]);
}
attacks.push(['kid naming the EC key on an RS256 token', tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'ec-1' })]);
// header rules, each token validly signed by the real key
attacks.push(['crit with an unknown extension', tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'rsa-1', crit: ['http://example.com/x'], 'http://example.com/x': 1 })]);
attacks.push(['b64 false with crit (RFC 7797)', tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'rsa-1', b64: false, crit: ['b64'] })]);
attacks.push(['b64 false without crit', tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'rsa-1', b64: false })]);
attacks.push(['zip in a JWS', tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'rsa-1', zip: 'DEF' })]);
attacks.push(['duplicate alg in the header', signRaw('RS256', rsa.privateKey, '{"alg":"RS256","kid":"rsa-1","alg":"none"}', JSON.stringify(claims()))]);
attacks.push(['duplicate sub in the claims', signRaw('RS256', rsa.privateKey, '{"alg":"RS256","kid":"rsa-1"}',
  `{"iss":"${ISS}","aud":"${AUD}","sub":"user-1","sub":"admin","exp":${now() + 600}}`)]);
attacks.push(['exp as a string', tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }, claims({ exp: String(now() + 600) }))]);
attacks.push(['expired', tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }, claims({ exp: now() - 3600 }))]);
attacks.push(['nbf in the future', tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }, claims({ nbf: now() + 3600 }))]);
attacks.push(['iss with a trailing slash', tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }, claims({ iss: `${ISS}/` }))]);
attacks.push(['aud of another service', tok('RS256', rsa.privateKey, { alg: 'RS256', kid: 'rsa-1' }, claims({ aud: ['api://other'] }))]);
attacks.push(['nested JWT (cty JWT, a JWT as payload)', signRaw('RS256', rsa.privateKey, '{"alg":"RS256","kid":"rsa-1","cty":"JWT"}', goodEs)]);
// shape and encoding
attacks.push(['five parts (JWE-shaped)', `${goodRs}.AAAA.AAAA`]);
attacks.push(['four parts', `${goodRs}.AAAA`]);
attacks.push(['signature stripped (two parts)', `${h0}.${p0}`]);
attacks.push(['empty signature', `${h0}.${p0}.`]);
attacks.push(['padded signature', `${goodRs}=`]);
attacks.push(['padded header', `${h0}=.${p0}.${s0}`]);
attacks.push(['standard-alphabet signature (+ and /)', `${h0}.${p0}.${Buffer.from(s0, 'base64url').toString('base64').replace(/=+$/, '')}`]);
attacks.push(['a space after a dot', `${h0}. ${p0}.${s0}`]);
// ECDSA
const [eh, ep] = goodEs.split('.');
attacks.push(['psychic signature (r = s = 0)', `${eh}.${ep}.${Buffer.alloc(64).toString('base64url')}`]);
attacks.push(['ES256 as DER (a genuine signature by the right key)', signRaw('ES256-DER', ec.privateKey, JSON.stringify({ alg: 'ES256', kid: 'ec-1' }), JSON.stringify(claims()))]);
attacks.push(['ES256 signature labelled ES384', signRaw('ES256', ec.privateKey, JSON.stringify({ alg: 'ES384', kid: 'ec-1' }), JSON.stringify(claims()))]);
attacks.push(['signed by a stranger key under a published kid', tok('ES256', evil.privateKey, { alg: 'ES256', kid: 'ec-1' })]);

for (const [name, t] of attacks) {
  const r = await get(t);
  is(r.status, 401, `${name} -> 401`);
}
is((await get(goodRs)).status, 200, 'control again at the end: the genuine token -> 200');
await done();
