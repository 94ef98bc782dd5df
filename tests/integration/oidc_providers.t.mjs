#!/usr/bin/env node
// oidc_providers.t.mjs - the real OP (npm oidc-provider) shaped the way each major IdP
// shapes its claims (tests/lib/op.mjs PROFILES), each with the configuration its page
// in docs/providers/ documents, behind nginx: the identity headers and the policy a
// user expects.
import { ok, is, done, guard } from '../lib/harness.mjs';
import { Jar, browserLogin, startStack } from '../lib/oidc_helpers.mjs';

guard(150000);

// profile -> { oidc: documented oidc settings, routes: documented policy, checks }
const CASES = {
  okta: {
    oidc: {},
    allow: { domains: ['example.test'], groups: ['ops'] },
    expect: { alice: { status: 200, email: 'alice@example.test', groups: 'ops,dev' }, mallory: { status: 403 } },
  },
  entra: {
    oidc: {},
    allow: { groups: ['ops'] },
    // groups overage (_claim_names): not resolved, group rules fail closed
    expect: { alice: { status: 403, strict: 403 } },
  },
  keycloak: {
    oidc: { groups_claim: 'realm_access.roles' },
    allow: { groups: ['admin'] },
    expect: { alice: { status: 200, groups: 'admin,user' }, bob: { status: 403 } },
  },
  google: {
    oidc: {},
    allow: { claims: { hd: 'example.test' } },
    expect: { alice: { status: 200, email: 'alice@example.test' }, mallory: { status: 403 } },
  },
  auth0: {
    oidc: { groups_claim: 'https://example.test/roles' },
    allow: { groups: ['admin'] },
    expect: { alice: { status: 200, groups: 'admin' }, bob: { status: 403 } },
  },
};

for (const [profile, c] of Object.entries(CASES)) {
  const s = await startStack({
    op: { profile },
    oidc: c.oidc,
    edgegate: {
      routes: [
        { path: '/public/', auth: 'public' },
        { path: '/team/', auth: 'session', allow: c.allow },
        { path: '/strict/', auth: 'session', deny: { groups: ['suspended'] } },
        { path: '/', auth: 'session' },
      ],
    },
  });
  for (const [user, want] of Object.entries(c.expect)) {
    const jar = new Jar();
    let r = await browserLogin(jar, `${s.pub}/open/`, user);
    is(r.status, 200, `${profile}: ${user} logs in`);
    const strict = await jar.fetch(`${s.pub}/strict/x`);
    is(strict.status, want.strict ?? 200, `${profile}: ${user} on a route that denies a group -> ${want.strict ?? 200}`
      + (want.strict ? ' (groups unknown: the deny rule fails closed)' : ''));
    r = await jar.fetch(`${s.pub}/team/x`);
    is(r.status, want.status, `${profile}: ${user} on the team route -> ${want.status}`);
    if (r.status === 200) {
      const h = JSON.parse(r.body).headers;
      if (want.email) is(h['x-auth-request-email'], want.email, `${profile}: ${user}'s email reaches the upstream`);
      if (want.groups) is(h['x-auth-request-groups'], want.groups, `${profile}: ${user}'s groups reach the upstream`);
      is(h['x-auth-request-user'], user, `${profile}: X-Auth-Request-User`);
    }
  }
  if (profile === 'entra') {
    const jar = new Jar();
    await browserLogin(jar, `${s.pub}/open/`, 'alice');
    const r = await jar.fetch(`${s.pub}/oauth2/userinfo`);
    const claims = r.status === 200 ? JSON.parse(r.body) : {};
    ok(claims._claim_names?.groups && !claims.groups, 'entra: the session holds the groups overage, not groups', claims);
  }
  await s.eg.stop();
  await s.op.stop();
}
await done();
