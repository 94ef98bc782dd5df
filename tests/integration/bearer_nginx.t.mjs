#!/usr/bin/env node
// bearer_nginx.t.mjs - edgegated behind real nginx as the auth_request target for
// bearer JWTs: public route, protected /api/ route, claims to the upstream, 401/403,
// JWKS rotation over HTTP, forged X-Original-URI from an untrusted peer, unix socket
// listener with keep-alive.
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as jose from 'jose';
import {
  EDGEGATED, ok, is, done, guard, diag, freePort, startEcho, startEdgegated, startNginx, startJwksServer, request, tmpdir, waitFor,
} from '../lib/harness.mjs';

guard(180000);

const ISS = 'https://idp.example.test';
const AUD = 'api://orders';

async function keypair(alg, kid) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, jwk };
}

async function mint(k, claims = {}, header = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ sub: 'user-1', email: 'alice@example.test', email_verified: true, groups: ['ops', 'dev'], tier: 'gold', ...claims })
    .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT', ...header })
    .setIssuer(claims.iss ?? ISS).setAudience(claims.aud ?? AUD).setIssuedAt(now).setExpirationTime(now + 600)
    .sign(k.privateKey);
}

const rsa = await keypair('RS256', 'rsa-1');
const ec = await keypair('ES256', 'ec-1');
const rotated = await keypair('ES256', 'ec-2');
const stranger = await keypair('RS256', 'rsa-1'); // same kid, different key

const jwks = await startJwksServer({ keys: [rsa.jwk, ec.jwk] });
const echo = await startEcho();
const dir = tmpdir('bearer-');
const sock = path.join(dir, 'auth.sock');
const tcpPort = await freePort();

const egd = await startEdgegated({
  listen: [`127.0.0.1:${tcpPort}`, `unix:${sock}`],
  listen_group: 'nogroup', // the group of this test's nginx workers (nobody:nogroup)
  jwt: { jwks_url: jwks.url, issuer: ISS, audience: AUD, algorithms: ['RS256', 'ES256'], leeway: '5s', jwks_min_refetch: '1s',
         cookie: 'eg_jwt', query_param: 'access_token' },
  routes: [
    { path: '/public/', auth: 'public' },
    { path: '/api/admin/', auth: 'bearer', allow: { groups: ['admins'] } },
    { path: '/api/', auth: 'bearer', allow: { domains: ['example.test'] }, deny: { emails: ['mallory@example.test'] },
      headers: { 'X-User-Tier': 'tier' } },
  ],
}, { dir });

const port = await freePort();
const ngx = await startNginx(`
  {{EDGEGATE_UPSTREAM}}
  upstream app { server 127.0.0.1:${echo.port}; }
  server {
    listen 127.0.0.1:${port};
    {{EDGEGATE_INCLUDE}}
    location / {
      {{EDGEGATE_PROTECT}}
      auth_request_set $eg_tier $upstream_http_x_user_tier;
      proxy_set_header X-User-Tier $eg_tier;
      proxy_pass http://app;
    }
    # the app (Node, 16 KB header limit) does not get the client's large headers
    location /api/lean/ {
      {{EDGEGATE_PROTECT}}
      proxy_pass_request_headers off;
      proxy_pass http://app;
    }
  }`, { edgegate: `unix:${sock}`, waitPort: port });

const base = `http://127.0.0.1:${port}`;
const get = (p, headers = {}) => request(`${base}${p}`, { headers });
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

// public route
let r = await get('/public/page');
is(r.status, 200, 'public route is served without a token');

// protected route, valid tokens
const good = await mint(rsa);
r = await get('/api/orders', bearer(good));
is(r.status, 200, 'valid RS256 token -> 200');
let seen = r.status === 200 ? JSON.parse(r.body).headers : {};
is(seen['x-auth-request-email'], 'alice@example.test', 'upstream sees X-Auth-Request-Email');
is(seen['x-auth-request-user'], 'user-1', 'upstream sees X-Auth-Request-User (sub)');
is(seen['x-auth-request-groups'], 'ops,dev', 'upstream sees X-Auth-Request-Groups');
is(seen['x-user-tier'], 'gold', 'route claim-to-header mapping reaches the upstream');

r = await get('/api/orders', bearer(await mint(ec)));
is(r.status, 200, 'valid ES256 token -> 200');

// client-supplied identity headers never reach the upstream unless edgegated set them
r = await get('/api/orders', { ...bearer(good), 'X-Auth-Request-Email': 'forged@evil.test' });
seen = r.status === 200 ? JSON.parse(r.body).headers : {};
is(seen['x-auth-request-email'], 'alice@example.test', 'a forged X-Auth-Request-Email from the client is overwritten');

// failures
r = await get('/api/orders');
is(r.status, 401, 'no token -> 401');
ok(/Bearer/.test(r.headers['www-authenticate'] || ''), 'WWW-Authenticate: Bearer on 401', r.headers);

const parts = good.split('.');
const flipped = parts[2].startsWith('A') ? `B${parts[2].slice(1)}` : `A${parts[2].slice(1)}`;
r = await get('/api/orders', bearer(`${parts[0]}.${parts[1]}.${flipped}`));
is(r.status, 401, 'bad signature -> 401');
r = await get('/api/orders', bearer(await mint(stranger)));
is(r.status, 401, 'token signed by a different key with a known kid -> 401');
r = await get('/api/orders', bearer(await mint(rsa, { iss: 'https://evil.test' })));
is(r.status, 401, 'wrong issuer -> 401');
r = await get('/api/orders', bearer(await mint(rsa, { aud: 'api://other' })));
is(r.status, 401, 'wrong audience -> 401');
const noneTok = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${parts[1]}.`;
r = await get('/api/orders', bearer(noneTok));
is(r.status, 401, 'alg none -> 401');
r = await get('/api/orders', bearer('not-a-jwt'));
is(r.status, 401, 'garbage token -> 401');
r = await get('/api/orders', { Authorization: `Bearer ${good}`, 'X-Extra': 'x'.repeat(10) });
is(r.status, 200, 'same token again (verdict cache) -> 200');
// characters outside base64url are checked on a cache miss only: a cached token's bytes
// passed that check, and nothing else can hit its entry
for (const bad of [`${good}!`, `${good.slice(0, -1)}$`, `${good.slice(0, 40)}*${good.slice(41)}`]) {
  for (const round of [1, 2]) {
    r = await get('/api/orders', bearer(bad));
    is(r.status, 401, `the cached token with a character outside base64url (round ${round}) -> 401`);
  }
}
r = await get('/api/orders', bearer(good));
is(r.status, 200, 'and the cached token itself still -> 200');

// token from a cookie or a query parameter (auth_jwt's token=$cookie_x / $arg_x)
r = await get('/api/orders', { Cookie: `other=1; eg_jwt=${good}` });
is(r.status, 200, 'token in the configured cookie -> 200');
r = await get(`/api/orders?x=1&access_token=${good}`);
is(r.status, 200, 'token in the configured query parameter -> 200');
r = await get(`/api/orders?access_token=${good}&access_token=${good}`);
is(r.status, 401, 'duplicated token query parameter -> 401');
r = await get('/api/orders', { Cookie: 'eg_jwt=garbage' });
is(r.status, 401, 'garbage token in the cookie -> 401');
// the token cookie twice: neither is believed, like the session cookie
r = await get('/api/orders', { Cookie: `eg_jwt=${good}; other=1; eg_jwt=garbage` });
is(r.status, 401, 'token cookie twice (valid first, garbage second) -> 401');
r = await get('/api/orders', { Cookie: [`eg_jwt=${good}`, `eg_jwt=${good}`] });
is(r.status, 401, 'token cookie twice (same valid token, two Cookie headers) -> 401');
r = await get('/api/orders', { Cookie: `xeg_jwt=1; eg_jwt=${good}; eg_jwt_old=1` });
is(r.status, 200, 'other cookies whose names contain the token cookie\'s -> 200');

// policy
r = await get('/api/orders', bearer(await mint(rsa, { email: 'mallory@example.test' })));
is(r.status, 403, 'deny rule on email -> 403');
r = await get('/api/orders', bearer(await mint(rsa, { email: 'bob@evilexample.test' })));
is(r.status, 403, 'look-alike email domain -> 403');
r = await get('/api/orders', bearer(await mint(rsa, { email_verified: undefined, jti: 'unverified' })));
is(r.status, 403, 'email without email_verified does not satisfy a domains rule -> 403');
r = await get('/api/orders', bearer(await mint(rsa, { email_verified: false, jti: 'unverified2' })));
is(r.status, 403, 'email_verified false -> 403');
r = await get('/api/orders', bearer(await mint(rsa, { email: 'mallory@example.test', email_verified: undefined })));
is(r.status, 403, 'a deny rule on email matches even an unverified address -> 403');
r = await get('/api/admin/users', bearer(good));
is(r.status, 403, 'missing group on /api/admin/ -> 403');
r = await get('/api/admin/users', bearer(await mint(rsa, { groups: ['admins'] })));
is(r.status, 200, 'admins group on /api/admin/ -> 200');
r = await get('/api/./admin/users', bearer(good));
is(r.status, 403, 'dot-segment spelling of /api/admin/ gets the admin policy');
r = await get('/api//admin/users', bearer(good));
is(r.status, 403, 'double-slash spelling of /api/admin/ gets the admin policy');
r = await get('/api/%61dmin/users', bearer(good));
is(r.status, 403, 'percent-encoded spelling of /api/admin/ gets the admin policy');
r = await get('/other', bearer(good));
is(r.status, 403, 'no matching route -> 403 (default deny)');

// JWKS rotation: a token with a new kid triggers one refetch of the JWKS URL
const hitsBefore = jwks.state.hits;
const rotTok = await mint(rotated);
r = await get('/api/orders', bearer(rotTok));
is(r.status, 401, 'token with a kid the IdP has not published yet -> 401');
jwks.state.jwks = { keys: [rsa.jwk, ec.jwk, rotated.jwk] };
await new Promise((res) => setTimeout(res, 1100)); // past jwks_min_refetch
r = await get('/api/orders', bearer(await mint(rotated, { jti: 'second' })));
is(r.status, 200, 'after the IdP publishes the new key, its tokens are accepted (refetch on unknown kid)');
ok(jwks.state.hits > hitsBefore, 'the JWKS URL was refetched', { hitsBefore, after: jwks.state.hits });

// JWKS endpoint down: last good set kept
jwks.state.down = true;
await new Promise((res) => setTimeout(res, 1100));
r = await get('/api/orders', bearer(await mint(rsa, { jti: 'while-down' })));
is(r.status, 200, 'JWKS endpoint down: known keys still verify');
r = await get('/api/orders', bearer(await mint(await keypair('ES256', 'ec-3'))));
is(r.status, 401, 'JWKS endpoint down: unknown kid still rejected');
jwks.state.down = false;

// Only access tokens: an ID token or a logout token of the same issuer is refused,
// and so is a token without the configured iss or aud (issue 10 item 6)
const mintRaw = (k, claims, header = { typ: 'JWT' }) => new jose.SignJWT(claims)
  .setProtectedHeader({ alg: k.alg, kid: k.kid, ...header }).sign(k.privateKey);
const nowS = () => Math.floor(Date.now() / 1000);
const baseClaims = () => ({ sub: 'user-1', email: 'alice@example.test', email_verified: true, groups: ['ops'], iat: nowS(), exp: nowS() + 600 });
r = await get('/api/orders', bearer(await mintRaw(rsa, { ...baseClaims(), iss: ISS, aud: AUD })));
is(r.status, 200, 'control: a raw-minted access token with iss and aud -> 200');
r = await get('/api/orders', bearer(await mintRaw(rsa, { ...baseClaims(), aud: AUD })));
is(r.status, 401, 'token without iss -> 401 (issuer configured)');
r = await get('/api/orders', bearer(await mintRaw(rsa, { ...baseClaims(), iss: ISS })));
is(r.status, 401, 'token without aud -> 401 (audience configured)');
r = await get('/api/orders', bearer(await mintRaw(rsa, { ...baseClaims(), iss: ISS, aud: AUD, nonce: 'n-123', azp: AUD })));
is(r.status, 401, 'an ID token (nonce, typ JWT, aud = the client) is not an access token -> 401');
r = await get('/api/orders', bearer(await mintRaw(rsa, { ...baseClaims(), iss: ISS, aud: AUD, at_hash: 'x' })));
is(r.status, 401, 'an ID token with at_hash -> 401');
const logoutClaims = { iss: ISS, aud: AUD, iat: nowS(), jti: 'j1', sub: 'user-1', email: 'alice@example.test',
  events: { 'http://schemas.openid.net/event/backchannel-logout': {} } };
r = await get('/api/orders', bearer(await mintRaw(rsa, logoutClaims, { typ: 'logout+jwt' })));
is(r.status, 401, 'a logout token (typ logout+jwt) is not an access token -> 401');
r = await get('/api/orders', bearer(await mintRaw(rsa, { ...logoutClaims, exp: nowS() + 600 })));
is(r.status, 401, 'a logout token with typ JWT (events claim) -> 401');

// Direct requests to edgegated: trusted-proxy check and the 200/401/403 contract. A
// direct request must carry the whole nginx profile, as tools/nginx/edgegate.conf sends it.
const direct = `http://127.0.0.1:${tcpPort}/auth`;
const asNginx = (uri, extra = {}) => ({ headers: {
  'X-Original-URI': uri, 'X-Original-Method': 'GET', Host: 'app.test', 'X-Forwarded-Proto': 'https',
  'X-Real-IP': '198.18.0.10', ...extra } });
r = await request(direct, asNginx('/public/x'));
is(r.status, 200, 'loopback peer is a trusted proxy by default');
r = await request(direct, asNginx('/api/orders', { Accept: 'application/json' }));
is(r.status, 401, 'direct /auth without token -> 401');
ok(/^application\/json/.test(r.headers['content-type'] || '') && JSON.parse(r.body).error, 'API clients get a JSON body', r);
r = await request(direct, asNginx('/a%2fb'));
is(r.status, 403, 'ambiguous encoded slash in the path -> 403');
r = await request(direct, {});
is(r.status, 403, 'no proxy headers -> 403 (never 5xx, never allow)');
r = await request(direct, { headers: { 'X-Forwarded-Uri': '/public/x', 'X-Forwarded-Method': 'GET', 'X-Forwarded-Host': 'app.test',
  'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '198.18.0.10', Accept: 'application/json' } });
ok(r.status === 403 && /"missing_proxy_header"/.test(r.body), 'Traefik/Caddy headers are not read under the nginx profile -> 403 missing_proxy_header', r);
const { 'X-Original-URI': _drop, ...noUri } = asNginx('/x').headers;
r = await request(direct, { headers: { ...noUri, 'X-Original-URL': 'https://app.test/public/x' } });
is(r.status, 403, 'X-Original-URL (another family) is not a fallback for X-Original-URI');
r = await request(direct, asNginx('/api/orders', { 'X-Forwarded-Uri': '/public/x' }));
is(r.status, 401, 'X-Forwarded-Uri beside X-Original-URI changes nothing');
r = await request(direct, asNginx('/public/x', { Host: 'a b' }));
is(r.status, 403, 'malformed Host -> 403');
// a second daemon that trusts only 10.0.0.0/8: loopback requests are now untrusted
const strict = await startEdgegated({ trusted_proxies: ['10.0.0.0/8'], routes: [{ path: '/', auth: 'public' }] });
r = await request(`${strict.url}/auth`, asNginx('/public/x'));
is(r.status, 403, 'forged X-Original-URI from an untrusted peer -> 403');

// A key removed from the JWKS takes its cached verdicts with it; RFC 9068 at+jwt when
// configured; "issuer": "*" accepts any issuer only because the config says so.
const kdir = tmpdir('bearer-keys-');
const kfile = path.join(kdir, 'jwks.json');
fs.writeFileSync(kfile, JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
const second = await startEdgegated({
  jwt: { jwks_file: kfile, issuer: '*', audience: AUD, require_at_jwt: true },
  routes: [{ path: '/', auth: 'bearer' }],
}, { dir: kdir });
const auth2 = (tok) => request(`${second.url}/auth`, asNginx('/x', { Authorization: `Bearer ${tok}`, Accept: 'application/json' }));
const atTok = await mint(ec, { iss: 'https://any-issuer.test' }, { typ: 'at+jwt' });
r = await auth2(atTok);
is(r.status, 200, 'issuer "*": an at+jwt token of any issuer -> 200');
r = await auth2(await mint(ec, { jti: 'plain' }));
is(r.status, 401, 'require_at_jwt: a typ JWT token -> 401');
is(JSON.parse(r.body || '{}').error, 'token_type', 'the reason given is token_type');
r = await auth2(await mint(ec, { nonce: 'n-1' }, { typ: 'at+jwt' }));
is(r.status, 401, 'an ID token (nonce) even with typ at+jwt -> 401');
r = await auth2(atTok);
is(r.status, 200, 'same at+jwt token again (cached) -> 200');
fs.writeFileSync(`${kfile}.new`, JSON.stringify({ keys: [rsa.jwk] }));
fs.renameSync(`${kfile}.new`, kfile);
await new Promise((res) => setTimeout(res, 1200)); // the file is looked at once per second
r = await auth2(atTok);
is(r.status, 401, 'its signing key removed from the JWKS: the cached verdict is gone -> 401');
const m2 = (await request(`${second.url}/metrics`)).body;
ok(/edgegate_token_cache_total\{result="hit"\} [1-9]/.test(m2), 'the second daemon did use its verdict cache', m2.slice(0, 1500));

// jwt.cache_entries: 0 turns the verdict cache off
const third = await startEdgegated({
  jwt: { jwks_file: kfile, issuer: ISS, audience: AUD, cache_entries: 0 },
  routes: [{ path: '/', auth: 'bearer' }],
});
const rsaTok = await mint(rsa);
for (let i = 0; i < 3; i++) {
  r = await request(`${third.url}/auth`, asNginx('/x', { Authorization: `Bearer ${rsaTok}` }));
  is(r.status, 200, `cache_entries 0: request ${i + 1} -> 200`);
}
const m3 = (await request(`${third.url}/metrics`)).body;
ok(!/edgegate_token_cache_total\{result="(hit|miss)"\} [1-9]/.test(m3), 'cache_entries 0: no cache hits or misses counted', m3.slice(0, 1500));

// metrics
r = await request(`http://127.0.0.1:${tcpPort}/metrics`);
ok(/edgegate_verdicts_total\{result="allow",reason="allowed"\} [1-9]/.test(r.body), 'metrics count allowed verdicts', r.body.slice(0, 2000));
ok(/edgegate_token_cache_total\{result="hit"\} [1-9]/.test(r.body), 'metrics count verdict-cache hits');
ok(/edgegate_verdict_duration_seconds_bucket/.test(r.body), 'metrics have the latency histogram');
ok(/edgegate_jwks_fetches_total/.test(r.body), 'metrics count JWKS fetches');

// keep-alive: 100 verdicts through nginx reuse a handful of upstream connections
const metric = async (re) => {
  const m = (await request(`http://127.0.0.1:${tcpPort}/metrics`)).body.match(re);
  return m ? Number(m[1]) : NaN;
};
const connsBefore = await metric(/^edgegate_http_connections_total (\d+)/m);
const authBefore = await metric(/^edgegate_http_requests_total\{endpoint="\/auth"\} (\d+)/m);
for (let i = 0; i < 100; i++) await get('/public/ka');
const connsAfter = await metric(/^edgegate_http_connections_total (\d+)/m);
const authAfter = await metric(/^edgegate_http_requests_total\{endpoint="\/auth"\} (\d+)/m);
ok(authAfter - authBefore >= 100 && connsAfter - connsBefore <= 5,
  'nginx upstream keep-alive: 100 verdicts over at most 5 new connections',
  { connsBefore, connsAfter, authBefore, authAfter });

// Large values of the headers edgegated reads still get a verdict, and no size nginx
// accepts makes the auth subrequest a 500.
const pad = (n) => 'x'.repeat(n);
r = await get(`/api/lean/orders?q=${pad(7000)}`, { Cookie: `big=${pad(7000)}; eg_jwt=${good}`, Accept: `application/json, ${pad(7000)}` });
is(r.status, 200, '7 KB target + 7 KB Cookie (token in the cookie, after a 7 KB one) + 7 KB Accept -> 200', r.body.slice(0, 200));
r = await get(`/api/lean/orders?q=${pad(7000)}`, { Cookie: `big=${pad(7000)}`, Authorization: `Bearer ${good}`, 'X-Requested-With': pad(7000) });
is(r.status, 200, '7 KB target, Cookie and X-Requested-With beside the bearer token -> 200', r.body.slice(0, 200));
for (const [what, h, target = '/api/orders'] of [
  ['a 7.9 KB target and four 7.9 KB header lines', { Cookie: `a=${pad(7900)}`, Authorization: `Bearer ${pad(7900)}`, Accept: pad(7900), 'X-Requested-With': pad(7900) }, `/api/orders?q=${pad(7900)}`],
  ['a 7.9 KB target and three 7.9 KB lines', { Cookie: `a=${pad(7900)}`, Accept: pad(7900), 'X-Requested-With': pad(7900) }, `/api/orders?q=${pad(7900)}`],
  ['seven 3.9 KB Cookie lines', { Cookie: Array.from({ length: 7 }, (_, i) => `c${i}=${pad(3900)}`) }],
]) {
  r = await get(target, h);
  ok(r.status !== 500 && [400, 401, 403, 414, 494].includes(r.status), `${what}: ${r.status} (a verdict or nginx's own limit, never 500)`, r.body.slice(0, 200));
}
// the largest allowed request nginx's default buffers let through, with the largest
// identity answer its token can carry (groups), through the edgegated memory both share
let groups = [];
let wide = good;
for (let n = 100; ; n += 20) {
  const g = Array.from({ length: n }, (_, i) => `group-${String(i).padStart(14, '0')}`);
  const t = await mint(rsa, { groups: g });
  if (t.length > 7800) break;
  groups = g;
  wide = t;
}
r = await get(`/api/lean/orders?q=${pad(7800)}`, { Authorization: `Bearer ${wide}`, Cookie: `a=${pad(7800)}`, Accept: pad(7800) });
is(r.status, 200, `7.8 KB target, Cookie, Accept and a ${wide.length}-byte token with ${groups.length} groups -> 200`, r.body.slice(0, 200));
r = await get('/api/orders', { Authorization: `Bearer ${wide}` });
seen = r.status === 200 ? JSON.parse(r.body).headers : {};
is(seen['x-auth-request-groups'], groups.join(','), `the ${groups.join(',').length}-byte groups header reaches the upstream`);
r = await get('/api/orders', { Authorization: [`Bearer ${good}`, `Bearer ${await mint(rsa, { email: 'mallory@example.test' })}`] });
ok(r.status !== 200 && r.status !== 500, `two Authorization lines: ${r.status}, not allowed`);
r = await get('/api/orders', { Cookie: ['a=1', `eg_jwt=${good}`] });
is(r.status, 200, 'two Cookie lines: the token in the second one is found (nginx joins them)');
r = await get('/api/lean/orders', { ...bearer(good), 'User-Agent': pad(7000), 'X-Anything': pad(7000) });
is(r.status, 200, 'other large client headers beside the token: 200');

// keep-alive through the unix socket: nginx's error log must not show reconnect churn
const logText = fs.readFileSync(path.join(ngx.dir, 'logs/error.log'), 'utf8');
ok(!/upstream prematurely closed|connect\(\) to unix.*failed/.test(logText), 'no upstream errors in the nginx log', ngx.errorLog());

// --check names the key path of a bad value and exits 1; a good file exits 0
const badCfg = path.join(dir, 'bad.json');
fs.writeFileSync(badCfg, JSON.stringify({ listen: '127.0.0.1:1', routes: [{ path: '/', auth: 'public' }, { path: '/x', allow: { domains: ['@bad'] } }] }));
const chk = spawnSync(EDGEGATED, ['--config', badCfg, '--check'], { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
is(chk.status, 1, '--check on an invalid config exits 1');
ok(/routes\[1\]\.allow\.domains\[0\]/.test(String(chk.stderr)), '--check names the key path', String(chk.stderr));
const chk2 = spawnSync(EDGEGATED, ['--config', egd.file, '--check']);
is(chk2.status, 0, '--check on the running config exits 0');
fs.writeFileSync(badCfg, JSON.stringify({ listen: '127.0.0.1:1', rutes: [] }));
const chk3 = spawnSync(EDGEGATED, ['--config', badCfg, '--check']);
ok(chk3.status === 1 && /rutes: unknown key/.test(String(chk3.stderr)), 'unknown keys are errors', String(chk3.stderr));

// --check: a jwt section without issuer/audience names the key path
fs.writeFileSync(badCfg, JSON.stringify({ listen: '127.0.0.1:1', jwt: { jwks_file: kfile, audience: AUD } }));
const chk4 = spawnSync(EDGEGATED, ['--config', badCfg, '--check'], { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
ok(chk4.status === 1 && /jwt\.issuer: required/.test(String(chk4.stderr)), '--check: jwt without issuer -> jwt.issuer', String(chk4.stderr));
fs.writeFileSync(badCfg, JSON.stringify({ listen: '127.0.0.1:1', jwt: { jwks_file: kfile, issuer: ISS } }));
const chk5 = spawnSync(EDGEGATED, ['--config', badCfg, '--check'], { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
ok(chk5.status === 1 && /jwt\.audience: required/.test(String(chk5.stderr)), '--check: jwt without audience -> jwt.audience', String(chk5.stderr));

const alive = await waitFor(async () => (await request(`http://127.0.0.1:${tcpPort}/healthz`)).status === 200, { timeout: 2000 });
ok(alive, 'daemon still healthy after all the bad input');
if (!alive) diag(egd.log());
await done();
