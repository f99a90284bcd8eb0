#!/usr/bin/python3
"""Proves check.py has teeth, without fulcrum.

Layer: test of the test. Usage: selftest.py DIR (a scratch directory).
Simulates a correct NAT director by writing the frames frames.py expects,
checks that check.py passes on them, then writes five broken variants and
checks that check.py fails each one for the right reason:
  ttl      TTL not decremented (checksums consistent)
  csum     TCP checksum left as it was before the address rewrite
  extra    the ACK without a connection forwarded anyway
  samers   both flows sent to the same real server
  mac      destination MAC not the real server's
Prints `pcap-selftest: N passed, M failed`; exits 1 if any case misbehaved.
"""

import os
import shutil
import subprocess
import sys

from scapy.all import IP, TCP, Ether, wrpcap

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import frames  # noqa: E402


def good_outputs():
    to_reals = [frames.expected_to_real(f, frames.FLOWS[k][3]) for f, (v, k) in frames.outside_frames() if v == "fwd"]
    to_clients = [frames.expected_to_client(f) for f, (v, _k) in frames.inside_frames() if v == "fwd"]
    return to_reals, to_clients


def rebuild(e):
    e = Ether(bytes(e))
    del e[IP].chksum
    del e[TCP].chksum
    return Ether(bytes(e))


def variant(name):
    to_reals, to_clients = good_outputs()
    if name == "ttl":
        e = Ether(bytes(to_reals[0]))
        e[IP].ttl += 1
        to_reals[0] = rebuild(e)
    elif name == "csum":
        inp = frames.outside_frames()[0][0]
        e = Ether(bytes(to_reals[0]))
        e[TCP].chksum = inp[TCP].chksum
        to_reals[0] = Ether(bytes(e))
    elif name == "extra":
        stray = frames.outside_frames()[7][0]
        to_reals.append(frames.expected_to_real(stray, frames.REALS[0]))
    elif name == "samers":
        to_reals = [frames.expected_to_real(f, frames.REALS[0])
                    for f, (v, _k) in frames.outside_frames() if v == "fwd"]
    elif name == "mac":
        e = Ether(bytes(to_reals[1]))
        e.dst = "02:00:00:00:01:99"
        to_reals[1] = Ether(bytes(e))
    return to_reals, to_clients


EXPECT = {
    "good": None,
    "ttl": "TTL 64 != 63",
    "csum": "TCP checksum BAD",
    "extra": "7 frames to real servers, expected 6",
    "samers": "rr: flow 1 went to ['10.1.0.11'], flow 2 to ['10.1.0.11']",
    "mac": "dst MAC '02:00:00:00:01:99' != '02:00:00:00:01:12'",
}


def main():
    base = sys.argv[1]
    passed = failed = 0
    for name, needle in EXPECT.items():
        d = os.path.join(base, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), d], check=True, capture_output=True)
        to_reals, to_clients = variant(name)
        wrpcap(os.path.join(d, "out_in.pcap"), to_reals)
        wrpcap(os.path.join(d, "out_out.pcap"), to_clients)
        p = subprocess.run([sys.executable, os.path.join(HERE, "check.py"), d], capture_output=True, text=True)
        if needle is None:
            ok = p.returncode == 0
            why = "check.py passes a correct director's output"
        else:
            fail_lines = [ln for ln in p.stdout.splitlines() if ln.startswith("  FAIL")]
            ok = p.returncode == 1 and any(needle in ln for ln in fail_lines)
            why = f"check.py rejects '{name}' with '{needle}'"
        if ok:
            passed += 1
            print(f"  ok    {why}")
        else:
            failed += 1
            print(f"  FAIL  {why} (exit {p.returncode}):")
            print(p.stdout[-2000:])
    print(f"pcap-selftest: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
