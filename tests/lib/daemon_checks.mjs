// daemon_checks.mjs - what the single-daemon store tests (durable_revoke, lmdb_full,
// ban_reasons) ask of the daemon and of nginx in front of it. The daemon is passed as a
// function returning the current one: those tests restart it and reassign their variable.
import crypto from 'node:crypto';
import net from 'node:net';
import { request } from './harness.mjs';

// One request on the admin socket; rejects on a socket error.
export function adminClient(current) {
  return (obj) => new Promise((resolve, reject) => {
    const c = net.connect(current().admin);
    let buf = '';
    c.on('data', (d) => { buf += d; if (buf.includes('\n')) { c.end(); resolve(JSON.parse(buf)); } });
    c.on('error', reject);
    c.write(JSON.stringify(obj) + '\n');
  });
}

// The value of one /metrics series (any labels), null when absent.
export function metricReader(current) {
  return async (name) => {
    const m = (await request(`${current().url}/metrics`)).body;
    const x = m.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'));
    return x ? Number(x[1]) : null;
  };
}

// The session id the daemon keys a ticket's record by.
export const sessionId = (ticket) => crypto.createHash('sha256').update(ticket.slice(0, 22)).digest('hex');

// The status nginx at pub answers a copy of a session cookie (an XHR: no login redirect).
export function stolenProbe(pub) {
  return async (ticket) => (await request(`${pub}/app`, { headers: { cookie: `_edgegate=${ticket}`, accept: 'application/json' } })).status;
}

// Sign-out at pub: GET signs out, or shows a confirmation page whose form POSTs (with a CSRF token).
export function signOutAt(pub) {
  return async (j) => {
    let r = await j.fetch(`${pub}/oauth2/sign_out`);
    const form = r.status === 200 && /<form[^>]*method="post"[^>]*action="([^"]*)"/i.exec(r.body);
    if (form) {
      const fields = {};
      for (const m of r.body.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[m[1]] = m[2];
      r = await j.fetch(new URL(form[1], `${pub}/oauth2/sign_out`).toString(), { method: 'POST', form: fields });
    }
    return r;
  };
}
