// op.mjs - a real OpenID Provider for the demo and the tests (shipped tooling; the tests
// import it through tests/lib/op.mjs): the npm `oidc-provider`
// (OpenID Certified) on loopback, with devInteractions (any login/password), PKCE,
// refresh tokens with rotation, RP-initiated and back-channel logout.
//
//   const op = await startOP({ port, clients: [{ client_id, client_secret, redirect_uris,
//                              post_logout_redirect_uris, backchannel_logout_uri }] });
//   op.issuer, op.stop(), op.backchannelCalls (count of logout tokens delivered)
// Options: claimsInIdToken (default true; false = scope claims only from userinfo, as
// Okta does for the code flow), keys (signing JWKs to use instead of fresh ones: a
// restarted OP with other keys is a key rotation), profile (claims shaped the way a
// major IdP shapes them, see PROFILES), shape (a claims function of the test's own, over
// the profile's). op.stats.requests lists what the RP sent (method, url, headers),
// op.stats.lastIdToken the last id_token the token endpoint issued.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

// Accounts: the login name is the account id; a few known users have groups.
const USERS = {
  alice: { email: 'alice@example.test', name: 'Alice Example', groups: ['ops', 'dev'] },
  bob: { email: 'bob@example.test', name: 'Bob Example', groups: ['dev'] },
  // a provider where users type their own address: no email_verified at all
  mallory: { email: 'mallory@example.test', name: 'Mallory', groups: [], unverified: true },
};

// How each major IdP shapes the claims a policy uses (docs/providers/*.md).
export const PROFILES = {
  // Okta: for the code flow, scope claims come only from the userinfo endpoint
  okta: { claimsInIdToken: false, shape: (c) => c },
  // Microsoft Entra: past ~200 groups the token carries a groups overage instead
  entra: {
    shape: ({ groups, ...c }) => ({ ...c, _claim_names: { groups: 'src1' },
      _claim_sources: { src1: { endpoint: 'https://graph.microsoft.com/v1.0/users/x/getMemberObjects' } } }),
  },
  // Keycloak: realm roles nested in realm_access.roles
  keycloak: { shape: ({ groups, ...c }) => ({ ...c, realm_access: { roles: groups.includes('ops') ? ['admin', 'user'] : ['user'] } }) },
  // Google: the Workspace domain in hd (absent for consumer accounts)
  google: { shape: ({ groups, ...c }) => (c.email_verified ? { ...c, hd: 'example.test' } : c) },
  // Auth0: custom claims must be namespaced with a URL
  auth0: { shape: ({ groups, ...c }) => ({ ...c, 'https://example.test/roles': groups.includes('ops') ? ['admin'] : [] }) },
};

// Changes an account at the IdP (tests: claims that change while a session lives).
export function setAccount(id, fields) {
  USERS[id] = { ...(USERS[id] || { email: `${id}@example.test`, name: id, groups: [] }), ...fields };
}

function account(id, shape = (c) => c) {
  const u = USERS[id] || { email: `${id}@example.test`, name: id, groups: [] };
  return {
    accountId: id,
    async claims() {
      const verified = u.unverified ? {} : { email_verified: true };
      return shape({ sub: id, email: u.email, ...verified, name: u.name, preferred_username: id, groups: u.groups });
    },
  };
}

const page = (title, body) => `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;

export function newSigningKeys(suffix = '1') {
  const jwk = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  return [{ ...rsa, kid: `rsa-${suffix}`, alg: 'RS256', use: 'sig' }, { ...jwk, kid: `ec-${suffix}`, alg: 'ES256', use: 'sig' }];
}

export async function startOP({ port, host = '127.0.0.1', clients, accessTokenTTL = 3600, idTokenTTL = 3600, quiet = true,
  claimsInIdToken = true, keys, profile, shape, introspection = false } = {}) {
  const prof = profile ? PROFILES[profile] : null;
  if (profile && !prof) throw new Error(`unknown OP profile ${profile}`);
  if (prof && prof.claimsInIdToken === false) claimsInIdToken = false;
  const issuer = `http://${host}:${port}`;
  const stats = { backchannelCalls: 0, backchannelErrors: [], requests: [] };
  const configuration = {
    clients: clients.map((c) => ({
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      backchannel_logout_session_required: true,
      ...c,
    })),
    jwks: { keys: keys || newSigningKeys('1') },
    findAccount: async (_ctx, id) => account(id, shape || prof?.shape),
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups', 'realm_access', 'hd', 'https://example.test/roles'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    conformIdTokenClaims: !claimsInIdToken, // false: claims in the id_token too (userinfo is also served)
    features: {
      devInteractions: { enabled: true },
      // opaque access tokens for API clients, checked with RFC 7662 and revocable (RFC 7009)
      clientCredentials: { enabled: introspection },
      introspection: { enabled: introspection },
      revocation: { enabled: introspection },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page('Sign out', `${form}<button id="yes" type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`);
        },
        postLogoutSuccessSource: async (ctx) => { ctx.body = page('Signed out', '<p>Signed out at the OP.</p>'); },
      },
    },
    pkce: { required: () => true },
    // Skip the consent screen for our first-party clients (documented recipe).
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email profile groups offline_access');
      await grant.save();
      return grant;
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: { AccessToken: accessTokenTTL, IdToken: idTokenTTL, RefreshToken: 86400, Session: 86400, Grant: 86400, Interaction: 600 },
    // oidc-provider 9 refuses outgoing requests to special-use addresses (loopback)
    // through its protective dispatcher; the back-channel logout target is on loopback.
    fetch: async (url, options) => {
      delete options.dispatcher;
      try {
        if (String(url).includes('backchannel')) stats.lastLogoutBody = String(options.body);
        const r = await globalThis.fetch(url, options);
        if (String(url).includes('backchannel')) { stats.backchannelCalls++; stats.lastLogoutStatus = r.status; }
        return r;
      } catch (e) {
        stats.backchannelErrors.push(String(e));
        throw e;
      }
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('OP error', `<pre>${JSON.stringify(out).replace(/[<>&]/g, '')}</pre>`);
    },
  };
  const provider = new Provider(issuer, configuration);
  if (quiet) provider.on('server_error', () => {});
  provider.on('backchannel.error', (_ctx, err) => stats.backchannelErrors.push(String(err)));
  provider.on('grant.success', (ctx) => { stats.lastIdToken = ctx.body?.id_token; });
  const cb = provider.callback();
  const server = http.createServer((req, res) => {
    stats.requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    if (stats.requests.length > 500) stats.requests.shift(); // the demo runs for long
    cb(req, res);
  });
  await new Promise((r) => server.listen(port, host, r));
  return {
    issuer,
    provider,
    stats,
    stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

// Run standalone: node tools/op/op.mjs PORT CLIENT_JSON
if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2]);
  const client = JSON.parse(process.argv[3]);
  const op = await startOP({ port, clients: [client], quiet: false });
  console.log(`oidc-provider listening on ${op.issuer}`);
}
