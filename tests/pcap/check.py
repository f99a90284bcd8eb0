#!/usr/bin/python3
"""Checks what fulcrum sent in the pcap golden test.

Layer: independent packet checker (scapy + tshark), never fulcrum's code.
Usage: check.py DIR, where DIR holds gen.py's inputs and fulcrum's outputs
out_in.pcap (sent on "inside", to the real servers) and out_out.pcap (sent on
"outside", to the clients).

Asserts, per forwarded frame:
- to a real server: dst IP = RIP, dst port = rport, dst MAC = the real
  server's neighbour MAC, src MAC = inside port MAC, TTL = input TTL - 1,
  client address/port, seq/ack, flags and payload untouched;
- to a client: src IP = VIP, src port = 80, dst MAC = the client's MAC, src
  MAC = outside port MAC, TTL - 1;
- IP and TCP checksums valid (scapy: delete, rebuild, compare) and the whole
  frame byte-equal to the expected one built from scratch by frames.py;
- flow 1 and flow 2 went to different real servers;
- frame counts exact: the malformed frame (IHL 4), the ACK without a
  connection and the fillers were not forwarded (ARP frames, if any, are
  listed and not counted);
- tshark with checksum validation finds no bad IP/TCP checksum in either
  output, and does find both in the bad_csum.pcap control.
Prints one line per check; exits 1 if any failed.
"""

import os
import subprocess
import sys

from scapy.all import ARP, IP, TCP, Ether, rdpcap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import frames  # noqa: E402

FAILS = []
PASSES = [0]


def check(ok, what):
    if ok:
        PASSES[0] += 1
        print(f"  ok    {what}")
    else:
        FAILS.append(what)
        print(f"  FAIL  {what}")
    return ok


def csum_ok(frame):
    """(ip_ok, tcp_ok): stored checksums equal a from-scratch recompute."""
    e = Ether(bytes(frame))
    ip_c, tcp_c = e[IP].chksum, e[TCP].chksum
    del e[IP].chksum
    del e[TCP].chksum
    r = Ether(bytes(e))
    return ip_c == r[IP].chksum, tcp_c == r[TCP].chksum


def split(frames_out, name):
    """Separates ARP frames (allowed, listed) from the rest."""
    arp = [f for f in frames_out if ARP in f]
    rest = [f for f in frames_out if ARP not in f]
    for f in arp:
        print(f"  note  {name}: ARP frame not counted: {f.summary()}")
    return rest


def tshark_bad_rows(path):
    cmd = ["tshark", "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-r", path,
           "-Y", 'ip.checksum.status=="Bad" || (tcp.checksum.status=="Bad" && !(tcp.checksum==0xffff && tcp.checksum_calculated==0x0000))']
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        return None, p.stderr.strip()
    return [ln for ln in p.stdout.splitlines() if ln.strip()], ""


def compare(kind, got, exp, inp, idx):
    """Field-level facts first (clear messages), then byte equality."""
    tag = f"{kind} #{idx + 1} ({inp[IP].src}:{inp[TCP].sport} > {inp[IP].dst}:{inp[TCP].dport} {inp[TCP].flags})"
    if IP not in got or TCP not in got:
        check(False, f"{tag}: output is not IPv4/TCP: {got.summary()}")
        return
    facts = [
        ("dst MAC", got.dst, exp.dst), ("src MAC", got.src, exp.src),
        ("src IP", got[IP].src, exp[IP].src), ("dst IP", got[IP].dst, exp[IP].dst),
        ("src port", got[TCP].sport, exp[TCP].sport), ("dst port", got[TCP].dport, exp[TCP].dport),
        ("TTL", got[IP].ttl, exp[IP].ttl), ("seq", got[TCP].seq, exp[TCP].seq),
        ("ack", got[TCP].ack, exp[TCP].ack), ("flags", str(got[TCP].flags), str(exp[TCP].flags)),
        ("payload", bytes(got[TCP].payload), bytes(exp[TCP].payload)),
    ]
    bad = [f"{n} {g!r} != {e!r}" for n, g, e in facts if g != e]
    check(not bad, f"{tag}: header facts" + (": " + "; ".join(bad) if bad else ""))
    ip_ok, tcp_ok = csum_ok(got)
    check(ip_ok and tcp_ok, f"{tag}: IP checksum {'valid' if ip_ok else 'BAD'}, TCP checksum {'valid' if tcp_ok else 'BAD'}")
    check(bytes(got) == bytes(exp), f"{tag}: frame byte-equal to the expected ({len(bytes(exp))} bytes)"
          + ("" if bytes(got) == bytes(exp) else f": got {bytes(got).hex()} expected {bytes(exp).hex()}"))


def main():
    if len(sys.argv) != 2:
        print("usage: check.py DIR", file=sys.stderr)
        return 2
    d = sys.argv[1]
    outside_in = frames.outside_frames()
    inside_in = frames.inside_frames()
    try:
        to_reals = split(list(rdpcap(os.path.join(d, "out_in.pcap"))), "out_in.pcap")
        to_clients = split(list(rdpcap(os.path.join(d, "out_out.pcap"))), "out_out.pcap")
    except (OSError, EOFError) as e:
        check(False, f"read fulcrum's output captures: {e}")
        return 1

    # Inbound: client -> VIP rewritten to client -> RIP (NAT, rr).
    fwd_in = [(f, k) for f, (v, k) in outside_in if v == "fwd"]
    check(len(to_reals) == len(fwd_in),
          f"out_in.pcap: {len(to_reals)} frames to real servers, expected {len(fwd_in)} "
          f"(of {len(outside_in)} in; malformed IHL=4 and no-connection ACK dropped)")
    for i, ((inp, k), got) in enumerate(zip(fwd_in, to_reals)):
        compare("to real server", got, frames.expected_to_real(inp, frames.FLOWS[k][3]), inp, i)

    flow_rip = {}
    for (inp, k), got in zip(fwd_in, to_reals):
        if IP in got:
            flow_rip.setdefault(k, set()).add(got[IP].dst)
    f1, f2 = flow_rip.get(0, set()), flow_rip.get(1, set())
    check(len(f1) == 1 and len(f2) == 1 and f1 != f2 and (f1 | f2) <= set(frames.REALS),
          f"rr: flow 1 went to {sorted(f1)}, flow 2 to {sorted(f2)} (one real server each, different)")

    # Outbound: RIP -> client rewritten to VIP -> client.
    fwd_out = [(f, k) for f, (v, k) in inside_in if v == "fwd"]
    check(len(to_clients) == len(fwd_out),
          f"out_out.pcap: {len(to_clients)} frames to clients, expected {len(fwd_out)} "
          f"(of {len(inside_in)} in; {frames.FILLER_FRAMES} fillers for another MAC dropped)")
    for i, ((inp, _k), got) in enumerate(zip(fwd_out, to_clients)):
        compare("to client", got, frames.expected_to_client(inp), inp, i)

    # Independent checksum validation by tshark, with a positive control.
    rows, err = tshark_bad_rows(os.path.join(d, "bad_csum.pcap"))
    check(rows is not None and len(rows) == 2,
          f"tshark control: bad_csum.pcap shows 2 bad-checksum frames (got {err or len(rows or [])})")
    for name in ("out_in.pcap", "out_out.pcap"):
        rows, err = tshark_bad_rows(os.path.join(d, name))
        check(rows == [], f"tshark: no bad IP/TCP checksum in {name}"
              + (f": {err}" if rows is None else "" if not rows else ": " + " | ".join(rows[:3])))

    print(f"check.py: {PASSES[0]} passed, {len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
