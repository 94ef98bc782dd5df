// recorder.mjs - an upstream for the attack suites: it records the raw request line and
// header block of every request nginx passes on (before any parser of ours sees them)
// and answers 200 "upstream", closing the connection.
import net from 'node:net';
import * as jose from 'jose';
import { freePort, onCleanup, startJwksServer } from './harness.mjs';

export async function startRecorder() {
  const heads = []; // whole header blocks, latin1
  const targets = []; // request-targets as raw bytes
  const port = await freePort();
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const line = buf.subarray(0, buf.indexOf('\r\n'));
      targets.push(line.subarray(line.indexOf(0x20) + 1, line.lastIndexOf(0x20)));
      heads.push(buf.subarray(0, end).toString('latin1'));
      sock.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n\r\nupstream');
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => server.close(() => r())));
  return { port, heads, targets };
}

// An ES256 issuer behind a JWKS server: mint(groups) signs a 15-minute token for
// sub "u-<groups>" carrying those groups.
export async function startGroupsIssuer({ iss, aud }) {
  const key = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(key.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const jwks = await startJwksServer({ keys: [jwk] });
  const mint = (groups) => {
    const now = Math.floor(Date.now() / 1000);
    return new jose.SignJWT({ sub: `u-${groups.join('-') || 'none'}`, groups }).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .setIssuer(iss).setAudience(aud).setIssuedAt(now).setExpirationTime(now + 900).sign(key.privateKey);
  };
  return { jwks, mint };
}
