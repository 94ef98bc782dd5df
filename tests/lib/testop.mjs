// testop.mjs - a small OpenID Provider the tests control, for relying-party negative
// tests: jose-minted id_tokens, a switchable JWKS (rotation), a discovery document
// whose issuer can lie. Authorization auto-approves and redirects straight back.
//
//   const op = await startTestOP({ clientId, clientSecret });
//   op.state.mint = async (ctx) => token   // ctx: { nonce, clientId, issuer, code, accessToken }
//   op.state.discovery = { ... }            // extra members of the discovery document
//   op.state.authzIss = 'https://...'      // an iss parameter in the authorization response (RFC 9207)
//   op.state.authzError = 'access_denied'  // answer the authorization request with this error
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import * as jose from 'jose';
import { freePort, onCleanup } from './harness.mjs';

export async function newKey(alg, kid) {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(publicKey);
  return { alg, kid, privateKey, jwk: { ...jwk, ...(kid ? { kid } : {}), alg, use: 'sig' } };
}

export async function sign(claims, key, header = {}) {
  const h = { alg: key.alg, typ: 'JWT', ...(key.kid ? { kid: key.kid } : {}), ...header };
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  return new jose.SignJWT(claims).setProtectedHeader(h).sign(key.privateKey);
}

// tls: { key, cert } serves https (an OP behind a private CA: oidc.ca_file).
export async function startTestOP({ clientId, clientSecret, tls }) {
  const port = await freePort();
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const rs = await newKey('RS256', 'rs-1');
  const state = {
    issuer,
    docIssuer: issuer,
    keys: [rs],
    codes: new Map(),
    userinfo: null,
    tokenCalls: 0,
    lastTokenRequest: null,
    jwksHits: 0,
    discovery: {},
    authzIss: undefined,
    authzError: undefined,
    // default: a valid id_token for "alice"
    claims: (ctx) => {
      const now = Math.floor(Date.now() / 1000);
      return { iss: issuer, sub: 'alice', aud: clientId, exp: now + 300, iat: now, nonce: ctx.nonce, email: 'alice@example.test' };
    },
    mint: async (ctx) => sign(state.claims(ctx), state.keys[0]),
  };
  const server = (tls ? (h) => https.createServer(tls, h) : (h) => http.createServer(h))(async (req, res) => {
    const u = new URL(req.url, issuer);
    const json = (code, obj) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(obj)); };
    try {
      if (u.pathname === '/.well-known/openid-configuration') {
        return json(200, {
          issuer: state.docIssuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          userinfo_endpoint: `${issuer}/userinfo`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256', 'ES256'],
          ...state.discovery,
        });
      }
      if (u.pathname === '/jwks') {
        state.jwksHits++;
        return json(200, { keys: state.keys.filter((k) => !k.hidden).map((k) => k.jwk) });
      }
      if (u.pathname === '/authorize') {
        const p = Object.fromEntries(u.searchParams);
        const code = crypto.randomBytes(16).toString('hex');
        state.codes.set(code, p);
        const back = new URL(p.redirect_uri);
        if (state.authzError) back.searchParams.set('error', state.authzError);
        else back.searchParams.set('code', code);
        back.searchParams.set('state', p.state);
        if (state.authzIss !== undefined) back.searchParams.set('iss', state.authzIss);
        res.writeHead(302, { location: back.toString() });
        return res.end();
      }
      if (u.pathname === '/token' && req.method === 'POST') {
        let body = '';
        for await (const c of req) body += c;
        const p = Object.fromEntries(new URLSearchParams(body));
        state.tokenCalls++;
        state.lastTokenRequest = { params: p, authorization: req.headers.authorization };
        const basic = req.headers.authorization?.startsWith('Basic ')
          ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':').map(decodeURIComponent) : null;
        const [cid, csec] = basic || [p.client_id, p.client_secret];
        if (cid !== clientId || csec !== clientSecret) return json(401, { error: 'invalid_client' });
        const a = state.codes.get(p.code);
        state.codes.delete(p.code);
        if (!a || p.grant_type !== 'authorization_code' || p.redirect_uri !== a.redirect_uri) return json(400, { error: 'invalid_grant' });
        const chal = crypto.createHash('sha256').update(p.code_verifier || '').digest('base64url');
        if (a.code_challenge_method !== 'S256' || chal !== a.code_challenge) return json(400, { error: 'invalid_grant', error_description: 'PKCE' });
        const idToken = await state.mint({ nonce: a.nonce, clientId, issuer, code: p.code, accessToken: `at-${p.code}` });
        return json(200, { access_token: `at-${p.code}`, token_type: 'Bearer', expires_in: 3600, id_token: idToken });
      }
      if (u.pathname === '/userinfo') {
        return json(200, state.userinfo || { sub: 'alice', email: 'alice@example.test' });
      }
      res.writeHead(404);
      res.end();
    } catch (e) {
      json(500, { error: String(e) });
    }
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }));
  return { issuer, port, state, newKey, sign };
}
