// paths.mjs - how upstream path readers transform a path, for the tests' own oracles
// (written apart from the daemon's C code, so a shared mistake cannot hide itself).

// Windows (IIS, NTFS) on one segment: "::$DATA" and trailing spaces go; a segment of dots
// only then climbs ("...", ".. "); otherwise trailing dots and spaces go too.
export function windowsTrim(seg) {
  let s = seg;
  for (;;) {
    if (/::\$data$/i.test(s)) s = s.slice(0, -7);
    else if (s.endsWith(' ')) s = s.slice(0, -1);
    else break;
  }
  if (/^\.+$/.test(s)) return s.length === 1 ? '.' : '..';
  return s.replace(/[. ]+$/, '');
}
