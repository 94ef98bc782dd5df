#!/usr/bin/env node
// check_user.t.mjs - `edgegated --check` looks up the accounts the config names: the `user` it
// drops to and the `listen_group` of its unix sockets. A typo is found by the check, naming
// the key, not at the first start as root. The start itself, as root with the same typo, fails
// with the same message and leaves nothing listening.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ok, is, done, guard, tmpdir, ensureTestUser, TEST_USER, EDGEGATED, freePort, portOpen, sleep } from '../lib/harness.mjs';

guard(60000);
ensureTestUser();
const dir = tmpdir('check-user-');
const NO_USER = 'edgegate-no-such-user-q7';
const run = (cfg, args = ['--check']) => {
  const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(f, JSON.stringify({ listen: '127.0.0.1:9180', state_dir: path.join(dir, 'state'),
    admin_socket: path.join(dir, 'admin.sock'), routes: [{ path: '/', auth: 'public' }], ...cfg }));
  try {
    const out = execFileSync(EDGEGATED, ['--config', f, ...args], { stdio: 'pipe', timeout: 20000, env: { ASAN_OPTIONS: 'detect_leaks=0' } });
    return { code: 0, out: String(out), err: '' };
  } catch (e) { return { code: e.status, out: String(e.stdout || ''), err: String(e.stderr || '') }; }
};

let r = run({ user: TEST_USER });
is(r.code, 0, `control: --check passes with an existing user (${TEST_USER})`);
r = run({ user: NO_USER });
ok(r.code === 1 && /: user: no user "edgegate-no-such-user-q7"/.test(r.err), '--check: an unknown user fails, naming the key "user"', r);
r = run({ user: '' });
ok(r.code === 1 && /user/.test(r.err), '--check: an empty user fails, naming the key', r);
r = run({ listen_group: 'edgegate-no-such-group-q7' });
ok(r.code === 1 && /listen_group: no group/.test(r.err), '--check: an unknown listen_group fails, naming the key', r);
r = run({ user: TEST_USER, listen_group: 'www-data' });
is(r.code, 0, 'control: --check passes with an existing user and group');

// the start as root: the same message, nothing left listening
const port = await freePort();
r = run({ user: NO_USER, listen: `127.0.0.1:${port}` }, []);
ok(r.code === 1 && /user: no user/.test(r.err), 'the start as root with an unknown user fails the same way', r);
await sleep(100);
ok(!(await portOpen(port)), 'and nothing listens');

await done();
