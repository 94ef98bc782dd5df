#!/usr/bin/env node
// ctl_verify.t.mjs - `edgegatectl jws verify` and `edgegatectl jwt verify`: output,
// exit codes (0 valid, 1 invalid with the reason on stderr, 2 usage) and stdin input.
import fs from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import { ok, is, done, guard, ctl, ctlAsync, tmpdir, startJwksServer } from '../lib/harness.mjs';

guard(60000);
const dir = tmpdir('ctl-');
const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
const jwksFile = path.join(dir, 'jwks.json');
fs.writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
const now = Math.floor(Date.now() / 1000);
const mint = (claims, exp = now + 300) => new jose.SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' })
  .setIssuer('https://idp.test').setAudience('api').setIssuedAt(now).setExpirationTime(exp).sign(privateKey);

const tok = await mint({ sub: 'alice' });
let r = ctl(['jws', 'verify', '--jwks', jwksFile, tok]);
is(r.code, 0, 'jws verify: valid signature exits 0');
ok(JSON.parse(r.stdout).sub === 'alice', 'jws verify prints the payload', r);

r = ctl(['jws', 'verify', '--jwks', jwksFile, '-'], { input: `${tok}\n` });
is(r.code, 0, 'jws verify reads the token from stdin');

const bad = tok.slice(0, -4) + (tok.endsWith('AAAA') ? 'BBBB' : 'AAAA');
r = ctl(['jws', 'verify', '--jwks', jwksFile, bad]);
is(r.code, 1, 'jws verify: bad signature exits 1');
ok(r.stderr.length > 0 && r.stdout === '', 'the reason is on stderr, nothing on stdout', r);

r = ctl(['jws', 'verify', '--jwks', jwksFile, '--alg', 'RS256', tok]);
is(r.code, 1, 'jws verify --alg RS256 refuses an ES256 token');

// RFC 7515: a JWS with an empty payload is valid (signed by node jose, compact form "h..s")
const emptyJws = await new jose.CompactSign(new Uint8Array(0)).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);
ok(/^[^.]+\.\.[^.]+$/.test(emptyJws), 'control: the empty-payload JWS has an empty middle segment', emptyJws);
r = ctl(['jws', 'verify', '--jwks', jwksFile, emptyJws]);
is(r.code, 0, 'jws verify: a valid JWS with an empty payload exits 0');
is(r.stdout, '', 'and prints the (empty) payload');
r = ctl(['jwt', 'verify', '--jwks', jwksFile, emptyJws]);
is(r.code, 1, 'jwt verify: an empty payload is not a JWT (exits 1)');
const emptyBad = emptyJws.slice(0, -4) + (emptyJws.endsWith('AAAA') ? 'BBBB' : 'AAAA');
r = ctl(['jws', 'verify', '--jwks', jwksFile, emptyBad]);
is(r.code, 1, 'jws verify: an empty payload with a bad signature exits 1');

const expired = await mint({ sub: 'alice' }, now - 3600);
r = ctl(['jws', 'verify', '--jwks', jwksFile, expired]);
is(r.code, 0, 'jws verify checks the signature only (expired token still verifies)');
r = ctl(['jwt', 'verify', '--jwks', jwksFile, expired]);
is(r.code, 1, 'jwt verify: expired token exits 1');

r = ctl(['jwt', 'verify', '--jwks', jwksFile, '--issuer', 'https://idp.test', '--audience', 'api', tok]);
is(r.code, 0, 'jwt verify: signature, issuer and audience ok exits 0');
ok(JSON.parse(r.stdout).iss === 'https://idp.test', 'jwt verify prints the claims as JSON', r);
r = ctl(['jwt', 'verify', '--jwks', jwksFile, '--issuer', 'https://other.test', tok]);
is(r.code, 1, 'jwt verify: wrong issuer exits 1');
r = ctl(['jwt', 'verify', '--jwks', jwksFile, '--audience', 'other', tok]);
is(r.code, 1, 'jwt verify: wrong audience exits 1');
r = ctl(['jwt', 'verify', '--jwks', jwksFile, '--leeway', '2h', expired]);
is(r.code, 0, 'jwt verify --leeway 2h accepts a token expired an hour ago');

const srv = await startJwksServer({ keys: [jwk] });
r = await ctlAsync(['jwt', 'verify', '--jwks-url', srv.url, tok]);
is(r.code, 0, 'jwt verify --jwks-url fetches the keys');

r = ctl(['jws', 'verify', tok]);
is(r.code, 2, 'missing --jwks is a usage error (2)');
r = ctl(['jwt', 'verify', '--jwks', jwksFile, '--leeway', 'soon', tok]);
is(r.code, 2, 'bad --leeway is a usage error (2)');
r = ctl(['jws', 'verify', '--jwks', path.join(dir, 'missing.json'), tok]);
ok(r.code === 1 || r.code === 2, 'unreadable JWKS file is an error', r);
r = ctl(['jws', 'verify', '--jwks', jwksFile, 'e30.e30.']);
is(r.code, 1, 'alg-less/none token exits 1');
await done();
