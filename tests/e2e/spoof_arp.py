#!/usr/bin/python3
"""Sends spoofed ARP on one segment, for the e2e case "arp-spoof".

Layer: test tooling (Debian's python3-scapy). Run inside the client
namespace; every frame carries the client's own MAC as Ethernet and ARP
sender, and claims a real server's address (RIP), which lives on the other
segment. Three kinds, one per RIP given, so each can be told apart by which
real server it would black-hole:

  request  who-has DIP tell RIP1        (broadcast; asks the director, so an
                                         RFC 826 "merge" learns RIP1 at us)
  garp     who-has RIP2 tell RIP2       (broadcast gratuitous ARP, RFC 5227)
  reply    RIP3 is-at <client MAC>      (unsolicited reply to the director's
                                         DIP and MAC)

Usage: spoof_arp.py IFACE DIP DIRECTOR_MAC RIP1 RIP2 RIP3 [--rounds N]
       [--interval S]
Sends the three frames N times (default 1), S seconds apart (default 0.5),
prints one line per round, exits 0; exits 2 on bad arguments.
"""

import argparse
import sys
import time

from scapy.all import ARP, Ether, get_if_hwaddr, sendp  # noqa: E402


def frames(iface, dip, dir_mac, rip1, rip2, rip3):
    me = get_if_hwaddr(iface)
    bcast = "ff:ff:ff:ff:ff:ff"
    return [
        ("request", Ether(src=me, dst=bcast)
         / ARP(op=1, hwsrc=me, psrc=rip1, hwdst="00:00:00:00:00:00", pdst=dip)),
        ("garp", Ether(src=me, dst=bcast)
         / ARP(op=1, hwsrc=me, psrc=rip2, hwdst="00:00:00:00:00:00", pdst=rip2)),
        ("reply", Ether(src=me, dst=dir_mac)
         / ARP(op=2, hwsrc=me, psrc=rip3, hwdst=dir_mac, pdst=dip)),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for a in ("iface", "dip", "director_mac", "rip1", "rip2", "rip3"):
        ap.add_argument(a)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.5)
    args = ap.parse_args()
    fs = frames(args.iface, args.dip, args.director_mac, args.rip1, args.rip2, args.rip3)
    for r in range(args.rounds):
        if r:
            time.sleep(args.interval)
        sendp([f for _, f in fs], iface=args.iface, verbose=False)
        print(f"round {r + 1}: sent " + ", ".join(
            f"{name} ({f[ARP].psrc} at {f[ARP].hwsrc})" for name, f in fs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
