#!/usr/bin/env node
// oidc_private_key_jwt.t.mjs - token endpoint client authentication with private_key_jwt
// (RFC 7523) against the real OP (npm oidc-provider): ES256 and RS256 client keys, and a
// client key the OP does not know (login refused).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ok, is, done, guard, tmpdir } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';

guard(120000);
const dir = tmpdir('pkjwt-');

let nkeys = 0;
function clientKey(type, opts, kid) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync(type, opts);
  const file = path.join(dir, `key${++nkeys}.pem`);
  fs.writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { file, kid, jwk: { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig' } };
}

const es = clientKey('ec', { namedCurve: 'P-256' }, 'client-es');
const rs = clientKey('rsa', { modulusLength: 2048 }, 'client-rs');
const stranger = clientKey('ec', { namedCurve: 'P-256' }, 'client-es'); // same kid, other key

for (const [name, key, published, alg, works] of [
  ['ES256', es, es, undefined, true],
  ['RS256', rs, rs, 'RS256', true],
  ['a key the OP does not know', stranger, es, undefined, false],
]) {
  const s = await startStack({
    client: { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [published.jwk] } },
    oidc: { token_auth_method: 'private_key_jwt', client_key_file: key.file, client_key_id: key.kid,
      ...(alg ? { client_key_alg: alg } : {}) },
  });
  const jar = new Jar();
  let r;
  try {
    r = await browserLogin(jar, `${s.pub}/app/`, 'alice');
  } catch (e) {
    r = { status: 0, body: String(e) };
  }
  if (works) {
    is(r.status, 200, `private_key_jwt (${name}): login succeeds`);
    is(r.status === 200 ? JSON.parse(r.body).headers['x-auth-request-user'] : null, 'alice', `${name}: the session works`);
  } else {
    ok(r.status === 502 && !jar.get('_edgegate'), `private_key_jwt with ${name}: the token endpoint refuses, no session`, { status: r.status });
  }
  if (!works) ok(/token endpoint: HTTP 401/.test(s.eg.log()), 'the refusal is logged (HTTP 401 from the token endpoint)', s.eg.log());
  await s.eg.stop();
  await s.op.stop();
}
await done();
