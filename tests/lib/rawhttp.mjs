// rawhttp.mjs - one HTTP/1.1 request written byte for byte on a fresh socket (absolute-form
// request lines, conflicting Host headers, huge targets: what a client library would
// refuse or rewrite). Returns { status, headers (lower-case names, arrays joined), body }.
import net from 'node:net';

export function rawRequest(port, text, { host = '127.0.0.1', localAddress, timeout = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, localAddress });
    const chunks = [];
    s.setTimeout(timeout, () => s.destroy(new Error('raw request timeout')));
    s.on('connect', () => s.write(text));
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const raw = Buffer.concat(chunks).toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      const head = end < 0 ? raw : raw.slice(0, end);
      const [statusLine, ...lines] = head.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine || '');
      const headers = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) {
          const k = l.slice(0, i).trim().toLowerCase();
          const v = l.slice(i + 1).trim();
          headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
        }
      }
      resolve({ status: m ? Number(m[1]) : 0, headers, body: end < 0 ? '' : raw.slice(end + 4), raw });
    });
  });
}

// "GET <target> HTTP/1.1" with the given header lines and Connection: close.
export function rawGet(port, target, headerLines = [], { method = 'GET', ...opts } = {}) {
  const text = `${method} ${target} HTTP/1.1\r\n${headerLines.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;
  return rawRequest(port, text, opts);
}
