#!/usr/bin/env python3
"""Reads `fulcrumctl --json -L -n` output for the demo and the tests.

Layer: test/ops tooling (standard library only). It prints aligned tables
for people and checks the e2e expectations for scripts.

Subcommands (FILE holds one `fulcrumctl --json -L -n` answer):
  workers FILE            per-worker table: rx/tx pkts, conns, redirects,
                          ARP/ICMP answered, drops by non-zero reason
  drops FILE              every non-zero drop reason summed over workers,
                          marked benign or UNEXPECTED (see --benign)
  value FILE KEY          one number: `workers.FIELD` (sum over workers),
                          `drops.REASON` (sum over workers) or
                          `services.I.FIELD` (service I, from 0)
  each FILE FIELD         one number per worker (`workers[i].FIELD`), in
                          worker order, space-separated
  real FILE IP FIELD      one field of real server IP of service 0
  e2e FILE --total N --access IP=COUNT... [--benign R,R] [--tolerance T]
                          the e2e assertions; prints one line per failure and
                          exits 1 if any

It refuses JSON that lacks the documented keys: a missing key is a failure
with its name, never a silent zero.
"""

import argparse
import json
import sys

BENIGN_DEFAULT = "eth_unsupported,eth_not_for_us,arp_not_for_us,not_for_us"


class Bad(Exception):
    """The JSON does not have the shape `fulcrumctl --json -L -n` documents."""


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def need(obj, key, where):
    if not isinstance(obj, dict) or key not in obj:
        raise Bad(f"fulcrumctl JSON: missing key '{key}' in {where}")
    return obj[key]


def workers(doc):
    ws = need(doc, "workers", "top level")
    if not isinstance(ws, list) or not ws:
        raise Bad("fulcrumctl JSON: 'workers' is empty or not a list")
    return ws


def drop_totals(doc):
    """Drop counts summed over workers, by reason name."""
    tot = {}
    for i, w in enumerate(workers(doc)):
        for reason, n in need(w, "drops", f"workers[{i}]").items():
            tot[reason] = tot.get(reason, 0) + int(n)
    return tot


def table(rows, header):
    """Prints rows (lists of str) aligned under header, numbers right-aligned."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        cells = []
        for i, c in enumerate(r):
            c = str(c)
            last = i == len(r) - 1
            if c.isdigit():
                cells.append(c.rjust(widths[i]))
            else:
                cells.append(c if last else c.ljust(widths[i]))
        print("  " + "  ".join(cells).rstrip())


def cmd_workers(doc, _args):
    rows = []
    for i, w in enumerate(workers(doc)):
        drops = {k: v for k, v in need(w, "drops", f"workers[{i}]").items() if v}
        dtxt = ", ".join(f"{k}={v}" for k, v in sorted(drops.items())) or "-"
        rows.append([
            str(need(w, "id", f"workers[{i}]")), str(need(w, "lcore", f"workers[{i}]")),
            str(need(w, "rx_pkts", f"workers[{i}]")), str(need(w, "tx_pkts", f"workers[{i}]")),
            str(need(w, "conns_created", f"workers[{i}]")),
            str(need(w, "redirects_out", f"workers[{i}]")), str(need(w, "redirects_in", f"workers[{i}]")),
            str(need(w, "arp_replies", f"workers[{i}]")), str(need(w, "arp_requests", f"workers[{i}]")),
            str(need(w, "icmp_echo_replies", f"workers[{i}]")), dtxt,
        ])
    table(rows, ["worker", "lcore", "rx_pkts", "tx_pkts", "conns", "redir_out", "redir_in",
                 "arp_rep", "arp_req", "echo_rep", "drops (non-zero)"])


def cmd_drops(doc, args):
    benign = set(args.benign.split(","))
    tot = {k: v for k, v in drop_totals(doc).items() if v}
    if not tot:
        print("  (no drops)")
    for k, v in sorted(tot.items()):
        print(f"  {k:<22} {v:>8}  {'benign' if k in benign else 'UNEXPECTED'}")


def cmd_value(doc, args):
    parts = args.key.split(".")
    if parts[0] == "workers" and len(parts) == 2:
        print(sum(int(need(w, parts[1], f"workers[{i}]")) for i, w in enumerate(workers(doc))))
    elif parts[0] == "drops" and len(parts) == 2:
        tot = drop_totals(doc)
        if parts[1] not in tot:
            raise Bad(f"fulcrumctl JSON: no drop reason '{parts[1]}'")
        print(tot[parts[1]])
    elif parts[0] == "services" and len(parts) == 3:
        svcs = need(doc, "services", "top level")
        i = int(parts[1])
        if i >= len(svcs):
            raise Bad(f"fulcrumctl JSON: no service #{i}")
        print(need(svcs[i], parts[2], f"services[{i}]"))
    else:
        raise Bad(f"unknown key '{args.key}'")


def cmd_each(doc, args):
    print(" ".join(str(int(need(w, args.field, f"workers[{i}]"))) for i, w in enumerate(workers(doc))))


def cmd_real(doc, args):
    svcs = need(doc, "services", "top level")
    if not svcs:
        raise Bad("fulcrumctl JSON: no virtual service")
    for r in need(svcs[0], "reals", "services[0]"):
        if need(r, "ip", "services[0].reals[]") == args.ip:
            print(need(r, args.field, f"real {args.ip}"))
            return
    raise Bad(f"fulcrumctl JSON: no real server {args.ip}")


def cmd_e2e(doc, args):
    """The e2e assertions; returns the list of failure reasons."""
    fails = []
    svcs = need(doc, "services", "top level")
    if len(svcs) != 1:
        return [f"expected 1 virtual service, fulcrumctl shows {len(svcs)}"]
    svc = svcs[0]
    conns = int(need(svc, "conns", "services[0]"))
    if conns != args.total:
        fails.append(f"service conns = {conns}, expected {args.total}")
    reals = {r["ip"]: r for r in need(svc, "reals", "services[0]")}
    lo, hi = args.total // len(args.access) - args.tolerance, args.total // len(args.access) + args.tolerance
    for spec in args.access:
        ip, logged = spec.split("=")
        logged = int(logged)
        if not lo <= logged <= hi:
            fails.append(f"real server {ip}: nginx logged {logged} requests, expected {lo}..{hi} (rr)")
        if ip not in reals:
            fails.append(f"real server {ip} missing from fulcrumctl")
            continue
        rc = int(need(reals[ip], "conns", f"real {ip}"))
        if rc != logged:
            fails.append(f"real server {ip}: fulcrum conns = {rc} but nginx logged {logged}")
    benign = set(args.benign.split(","))
    for k, v in sorted(drop_totals(doc).items()):
        if v and k not in benign:
            fails.append(f"unexpected drops: {k} = {v}")
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("workers", "drops", "value", "each", "real", "e2e"):
        p = sub.add_parser(name)
        p.add_argument("file")
        if name == "value":
            p.add_argument("key")
        if name == "each":
            p.add_argument("field")
        if name == "real":
            p.add_argument("ip")
            p.add_argument("field")
        if name in ("drops", "e2e"):
            p.add_argument("--benign", default=BENIGN_DEFAULT)
        if name == "e2e":
            p.add_argument("--total", type=int, required=True)
            p.add_argument("--access", nargs="+", required=True, metavar="IP=COUNT")
            p.add_argument("--tolerance", type=int, default=5)
    args = ap.parse_args()
    try:
        doc = load(args.file)
        if args.cmd == "e2e":
            fails = cmd_e2e(doc, args)
            for f in fails:
                print(f"  reason: {f}")
            return 1 if fails else 0
        {"workers": cmd_workers, "drops": cmd_drops, "value": cmd_value, "each": cmd_each,
         "real": cmd_real}[args.cmd](doc, args)
        return 0
    except (Bad, OSError, ValueError, KeyError, TypeError) as e:
        print(f"  reason: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
