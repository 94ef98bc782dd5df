#!/usr/bin/env python3
"""flood_report.py - the tables of tools/bench/xdp/flood.sh.

stdin: one line per run, round|kind/filter|name|sent|counted|busy|system|softirq|ok|fail|p50|p99
(CPU figures in /proc/stat units of the generator's CPU). argv: USER_HZ, seconds per run.

Per frame: "gen" = system time / frames sent (the generator: BPF_PROG_RUN + redirect);
"softirq" = softirq time / frames counted (the receiver: veth NAPI, the filter, the skb
for nftables); "over floor" = softirq minus the floor's softirq in the same round (drop
rows: the XDP drop-all program; pass rows: no filter). Ratios are per round; with
several rounds the summary gives their range. With --slices (argv[3]) the input is the
interleaved phase (the "round" field is the slice): per-slice ratios, the slice's ceiling
and the medians."""
import sys
from collections import OrderedDict

hz, secs = float(sys.argv[1]), float(sys.argv[2])
slices = "--slices" in sys.argv[3:]
rounds = OrderedDict()
for line in sys.stdin:
    f = line.rstrip("\n").split("|")
    if len(f) != 12:
        continue
    r, key, name = int(f[0]), f[1], f[2]
    sent, counted, busy, sysj, sq = (float(x) for x in f[3:8])
    row = {"name": name, "sent": sent, "counted": counted, "ok": f[8], "fail": f[9],
           "p50": f[10], "p99": f[11],
           "cpu": busy * 1e9 / hz / sent if sent else 0.0,
           "gen": sysj * 1e9 / hz / sent if sent else 0.0,
           "sq": sq * 1e9 / hz / counted if counted else 0.0,
           "fps": counted / (sq / hz) if sq else 0.0,
           "sqpct": sq / hz / secs * 100}
    rounds.setdefault(r, OrderedDict())[key] = row


def over(rows, key):
    kind = key.split("/")[0]
    floor = rows.get({"drop": "drop/floor", "pass": "pass/none"}.get(kind, ""), None)
    if not floor or key in ("drop/floor", "pass/none") or not rows[key]["counted"]:
        return None
    return rows[key]["sq"] - floor["sq"]


def ratios(rows):
    """name -> value for one round; None where a row is missing or the figure is noise"""
    out = OrderedDict()
    g = rows.get("drop/gate")
    if not g:
        return out
    og = over(rows, "drop/gate")
    for key, label in (("drop/nft", "nftables"), ("drop/xf", "xdp-filter")):
        if key not in rows or not rows[key]["fps"]:
            continue
        out["gate / %s, frames dropped per softirq CPU-second (raw)" % label] = g["fps"] / rows[key]["fps"]
        o = over(rows, key)
        # below 2 ns the gate's own cost is within the tick sampling's noise
        out["%s / gate, own cost per dropped frame over the floor" % label] = \
            o / og if o is not None and og is not None and og >= 2 else None
    oh = over(rows, "drop/hash") if "drop/hash" in rows else None
    if oh is not None and og is not None:
        out["the gate's own cost beyond one hash lookup, ns per dropped frame (not a ratio)"] = og - oh
    if "drop/floor" in rows and "drop/nft" in rows and rows["drop/nft"]["fps"]:
        out["ceiling of the raw gate / nftables ratio (floor / nftables)"] = \
            rows["drop/floor"]["fps"] / rows["drop/nft"]["fps"]
    return out


def median(v):
    v = sorted(x for x in v if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


if slices:
    # flood.sh's interleaved phase: one run of each drop receiver per slice. Per slice,
    # softirq ns per dropped frame of each, the ratios of frames per softirq CPU-second
    # and the slice's ceiling (floor / nftables: what a program costing nothing would
    # reach against nftables in that slice); then medians and how many slices met.
    keys = [("drop/floor", "floor"), ("drop/gate", "gate"), ("drop/xf", "xdp-filter"), ("drop/nft", "nftables")]
    keys = [(k, l) for k, l in keys if any(k in rows for rows in rounds.values())]
    print("%-6s %s %14s %16s %18s" % ("slice", " ".join("%11s" % l for _, l in keys),
                                       "gate/nftables", "gate/xdp-filter", "ceiling floor/nft"))
    print("%-6s %s" % ("", " ".join("%11s" % "ns/frame" for _ in keys)))
    per = {"gn": [], "gx": [], "ceil": [], "over": {k: [] for k, _ in keys}}
    met5 = metx = n = 0
    for r, rows in rounds.items():
        fps = {k: rows[k]["fps"] if k in rows and rows[k]["counted"] else None for k, _ in keys}
        gn = fps["drop/gate"] / fps["drop/nft"] if fps.get("drop/gate") and fps.get("drop/nft") else None
        gx = fps["drop/gate"] / fps["drop/xf"] if fps.get("drop/gate") and fps.get("drop/xf") else None
        ceil = fps["drop/floor"] / fps["drop/nft"] if fps.get("drop/floor") and fps.get("drop/nft") else None
        per["gn"].append(gn)
        per["gx"].append(gx)
        per["ceil"].append(ceil)
        for k, _ in keys:
            o = over(rows, k) if k in rows and k != "drop/floor" else None
            per["over"][k].append(o)
        n += 1
        met5 += gn is not None and gn >= 5
        metx += gx is not None and gx >= 1
        f = lambda v: "%.2fx" % v if v is not None else "-"
        print("%-6d %s %14s %16s %18s" % (r, " ".join("%11s" % ("%.0f" % rows[k]["sq"] if k in rows else "-")
                                                      for k, _ in keys), f(gn), f(gx), f(ceil)))
    f = lambda v: "%.2fx" % v if v is not None else "n/a"
    print("median over %d slices: gate / nftables %s (ceiling %s), gate / xdp-filter %s" % (
        n, f(median(per["gn"])), f(median(per["ceil"])), f(median(per["gx"]))))
    print("own cost over the floor, median ns per dropped frame: %s" % ", ".join(
        "%s %+.0f" % (l, median(per["over"][k])) for k, l in keys
        if k != "drop/floor" and median(per["over"][k]) is not None))
    print("slices meeting the targets: gate / nftables >= 5x in %d of %d, gate / xdp-filter >= 1x in %d of %d" % (
        met5, n, metx, n if "drop/xf" in dict(keys) else 0))
    sys.exit(0)

hdr = "%-40s %10s %10s %6s %6s %8s %8s %12s %8s %-24s" % (
    "receiver", "sent", "counted/s", "gen", "softirq", "over", "CPU", "frames per", "softirq", "legit TCP connects")
hdr2 = "%-40s %10s %10s %6s %6s %8s %8s %12s %8s %-24s" % (
    "", "", "", "ns/fr", "ns/fr", "floor ns", "ns/fr", "softirq-s", "% of CPU", "ok/fail p50/p99 ms")
all_ratios = OrderedDict()
by_row = OrderedDict()
for r, rows in rounds.items():
    print("-- round %d" % r)
    print(hdr)
    print(hdr2)
    for key, x in rows.items():
        o = over(rows, key)
        print("%-40s %10d %10.0f %6.0f %6.0f %8s %8.0f %12.0f %8.0f %-24s" % (
            x["name"], x["sent"], x["counted"] / secs, x["gen"], x["sq"],
            "%+.0f" % o if o is not None else "-", x["cpu"], x["fps"], x["sqpct"],
            "%s/%s %s/%s" % (x["ok"], x["fail"], x["p50"], x["p99"]) if x["ok"] != "-" else "-"))
        d = by_row.setdefault(x["name"], {"sq": [], "over": [], "fps": [], "rate": [], "pct": []})
        d["pct"].append(x["sqpct"])
        d["sq"].append(x["sq"])
        d["fps"].append(x["fps"])
        d["rate"].append(x["counted"] / secs)
        if o is not None:
            d["over"].append(o)
    for name, v in ratios(rows).items():
        all_ratios.setdefault(name, []).append(v)
        print("%s: %s" % (name, ("%+.0f" % v if "not a ratio" in name else "%.2fx" % v)
                           if v is not None else "n/a (the gate's own cost is under 2 ns: noise)"))


def rng(v, fmt):
    v = [x for x in v if x is not None]
    if not v:
        return "n/a"
    lo, hi = min(v), max(v)
    return fmt % lo if fmt % lo == fmt % hi else (fmt % lo) + " ... " + (fmt % hi)


if len(rounds) > 1:
    print("-- %d rounds: ranges" % len(rounds))
    print("%-40s %22s %18s %16s %26s %14s" % ("receiver", "counted/s", "softirq ns/frame",
                                               "over floor ns", "frames per softirq-s",
                                               "softirq % CPU"))
    for name, d in by_row.items():
        print("%-40s %22s %18s %16s %26s %14s" % (name, rng(d["rate"], "%.0f"),
                                                   rng(d["sq"], "%.0f"), rng(d["over"], "%+.0f"),
                                                   rng(d["fps"], "%.0f"), rng(d["pct"], "%.0f")))
    for name, v in all_ratios.items():
        print("%s: %s" % (name, rng(v, "%+.0f" if "not a ratio" in name else "%.2fx")))
print("targets (issue 14): gate / nftables >= 5x, gate / xdp-filter >= 1x, frames dropped per softirq CPU-second")
