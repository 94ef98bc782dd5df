#!/usr/bin/env node
// login_binding.t.mjs - login CSRF by cookie tossing. The login state cookie is scoped to
// /oauth2/ (Path), so it cannot carry the __Host- prefix, and a sibling subdomain can plant
// one in a victim's browser (Domain=.example.test). An attacker starts a login of their own,
// stops at the OP's redirect back, tosses their state cookie into the victim's browser and
// sends the victim to their callback URL: without a binding the victim is signed in as the
// attacker (and what the victim then stores lands in the attacker's account). With secure
// cookies edgegated binds every login to a __Host- cookie of the browser that started it,
// which no sibling can set. Real OP, real nginx (shipped snippets), the Jar ignores Secure
// over loopback http like a browser would for a localhost origin.
import { ok, is, done, guard } from '../lib/harness.mjs';
import { Jar, opLogin, startStack } from '../lib/oidc_helpers.mjs';

guard(120000);

const s = await startStack({ edgegate: { cookie: { secure: true, secret: 'cookie-secret-0123456789abcdef0123456789' } } });
const app = `${s.pub}/app/landing`;
const isCallback = (u) => u.startsWith(`${s.pub}/oauth2/callback`);

// The attacker logs in at the OP but does not follow the redirect back: a fresh one per
// victim (a callback works once).
async function attackerLogin(label) {
  const attacker = new Jar();
  let a = await attacker.follow(app);
  ok(/name="login"/.test(a.body), `${label}: attacker reaches the OP login form`);
  a = await opLogin(attacker, a, 'mallory', { stopAt: isCallback });
  ok(a.next && isCallback(a.next), `${label}: the OP sends the attacker back to the callback`, a.next);
  return { attacker, callback: a.next, tossed: attacker.cookies.filter((c) => c.name.startsWith('_edgegate_state_')) };
}

let r;
{
  const { attacker, tossed } = await attackerLogin('cookies');
  const binding = attacker.cookies.find((c) => c.name === '__Host-edgegate_login');
  ok(binding && /;\s*Path=\/(;|$)/i.test(binding.raw) && /Secure/.test(binding.raw) && /HttpOnly/.test(binding.raw) && /SameSite=Lax/i.test(binding.raw),
    'the login start set a __Host- binding cookie (Path=/, Secure, HttpOnly, SameSite=Lax)', attacker.cookies.map((c) => c.raw));
  is(tossed.length, 1, 'the attacker holds one state cookie (Path=/oauth2/, no prefix possible)');
}

// The victim: a fresh browser, and one that started a login of its own, each with the
// attacker's state cookie tossed in (a sibling subdomain can set it for /oauth2/).
for (const [who, prep] of [['a fresh browser', async () => {}], ['a browser with its own login started', async (v) => { await v.fetch(`${s.pub}/oauth2/start?rd=/x`); }]]) {
  const { callback, tossed } = await attackerLogin(who);
  const victim = new Jar();
  await prep(victim);
  victim.cookies.push(...tossed.map((c) => ({ ...c })));
  r = await victim.follow(callback);
  ok(r.status === 400 && !victim.get('__Host-edgegate'), `${who} with the attacker's state cookie: the callback is refused, no session (${r.status})`,
    victim.trace);
}

// Control: the attacker's own browser completes the same login.
const again = new Jar();
r = await again.follow(app);
r = await opLogin(again, r, 'mallory');
ok(r.status === 200 && again.get('__Host-edgegate'), 'control: the browser that started the login completes it', again.trace);
r = await again.fetch(app);
is(r.status, 200, 'control: and its session works');

// Cookie bomb: a page the victim visits sends the browser through /oauth2/start with a long rd
// many times (top-level navigations carry SameSite=Lax cookies). The state cookies must never
// add up to more than nginx reads in one header line (large_client_header_buffers, 8 KB by
// default), or every /oauth2/ request, the callback included, is a 400 until they expire.
{
  const victim = new Jar();
  const rd = `/${'a'.repeat(1990)}`;
  for (let i = 0; i < 12; i++) await victim.fetch(`${s.pub}/oauth2/start?rd=${encodeURIComponent(rd)}`);
  const header = victim.header(`${s.pub}/oauth2/callback`);
  ok(header.length < 6144, `after 12 starts with a 2 KB rd the browser sends ${header.length} bytes of cookies to /oauth2/ (< 6 KiB)`);
  r = await victim.follow(app);
  ok(/name="login"/.test(r.body), 'and it can still start a login', victim.trace.slice(-3));
  r = await opLogin(victim, r, 'bob');
  ok(r.status === 200 && victim.get('__Host-edgegate'), 'and finish it', victim.trace.slice(-3));
}

await done();
