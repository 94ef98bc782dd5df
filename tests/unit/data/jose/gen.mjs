// gen.mjs - regenerates the JOSE test keys (run from the repo root:
//   node tests/unit/data/jose/gen.mjs). Output is committed; tests never run this.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { exportJWK, SignJWT } from 'jose';
import { createSecretKey } from 'node:crypto';

const dir = new URL('.', import.meta.url).pathname;
const out = (name, data) => writeFileSync(dir + name, data);

const pairs = {
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  rsa1024: generateKeyPairSync('rsa', { modulusLength: 1024 }),
  ec256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  ec384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  ec521: generateKeyPairSync('ec', { namedCurve: 'P-521' }),
  ed25519: generateKeyPairSync('ed25519'),
};
const keys = [];
for (const [name, { publicKey, privateKey }] of Object.entries(pairs)) {
  out(`${name}.key.pem`, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  out(`${name}.pub.pem`, publicKey.export({ type: 'spki', format: 'pem' }));
  const jwk = { kid: name, ...(await exportJWK(publicKey)) };
  out(`${name}.jwk.json`, JSON.stringify(jwk, null, 1) + '\n');
  if (name !== 'rsa1024') keys.push(jwk);
}
const hs = randomBytes(64);
out('hs.key.b64u', hs.toString('base64url') + '\n');
keys.push({ kid: 'hs', kty: 'oct', k: hs.toString('base64url') });
out('jwks.json', JSON.stringify({ keys }, null, 1) + '\n');

// Tokens signed by an independent implementation (node jose), one per algorithm.
const claims = { sub: 'alice', iss: 'https://issuer.test', aud: 'api', exp: 4102444800, iat: 1700000000 };
const signers = [
  ['RS256', 'rsa'], ['RS384', 'rsa'], ['RS512', 'rsa'], ['PS256', 'rsa'], ['PS384', 'rsa'],
  ['PS512', 'rsa'], ['ES256', 'ec256'], ['ES384', 'ec384'], ['ES512', 'ec521'], ['EdDSA', 'ed25519'],
  ['HS256', 'hs'], ['HS384', 'hs'], ['HS512', 'hs'],
];
const tokens = {};
for (const [alg, kid] of signers) {
  const key = kid === 'hs' ? createSecretKey(hs) : pairs[kid].privateKey;
  tokens[alg] = await new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key);
}
out('tokens.json', JSON.stringify(tokens, null, 1) + '\n');
