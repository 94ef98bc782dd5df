#!/usr/bin/env node
// mint.mjs - keys and tokens for the verdict benchmark (node `jose`, like the tests).
//   node tools/bench/mint.mjs OUTDIR ISSUER AUDIENCE N_COLD
// Writes OUTDIR/jwks.json (public RS256 + ES256 keys), OUTDIR/rsa.pem (public key
// for Apache's static-key variant) and token files, one token per line:
//   warm-RS256.txt warm-ES256.txt  one allowed token each (the verdict cache case)
//   deny-RS256.txt                 one valid token whose email a deny rule names (403)
//   cold-RS256.txt cold-ES256.txt  N_COLD distinct allowed tokens (jti differs)
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.resolve(process.cwd(), 'package.json'));
const jose = await import(require.resolve('jose'));

const [outdir, iss, aud, nCold] = process.argv.slice(2);
const N = Number(nCold || 4096);
fs.mkdirSync(outdir, { recursive: true });

async function keypair(alg, kid) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, jwk };
}

const now = Math.floor(Date.now() / 1000);
function mint(k, extra = {}) {
  return new jose.SignJWT({ sub: 'bench-user', email: 'alice@example.test', email_verified: true, groups: ['ops', 'dev'],
    preferred_username: 'alice', ...extra })
    .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT' })
    .setIssuer(iss).setAudience(aud).setIssuedAt(now).setExpirationTime(now + 3600)
    .sign(k.privateKey);
}

const keys = { RS256: await keypair('RS256', 'bench-rs'), ES256: await keypair('ES256', 'bench-es') };
fs.writeFileSync(path.join(outdir, 'jwks.json'), JSON.stringify({ keys: [keys.RS256.jwk, keys.ES256.jwk] }));
fs.writeFileSync(path.join(outdir, 'rsa.pem'), await jose.exportSPKI(keys.RS256.publicKey));
fs.writeFileSync(path.join(outdir, 'ec.pem'), await jose.exportSPKI(keys.ES256.publicKey));

for (const alg of ['RS256', 'ES256']) {
  fs.writeFileSync(path.join(outdir, `warm-${alg}.txt`), `${await mint(keys[alg], { jti: 'warm' })}\n`);
  const out = [];
  for (let i = 0; i < N; i++) out.push(await mint(keys[alg], { jti: `cold-${i}` }));
  fs.writeFileSync(path.join(outdir, `cold-${alg}.txt`), `${out.join('\n')}\n`);
}
fs.writeFileSync(path.join(outdir, 'deny-RS256.txt'),
  `${await mint(keys.RS256, { email: 'mallory@example.test', jti: 'deny' })}\n`);
