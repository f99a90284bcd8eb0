#!/usr/bin/python3
"""Writes the input captures of the pcap golden test.

Layer: test data generator (scapy). Usage: gen.py DIR. Writes
  DIR/in_out.pcap    frames arriving on fulcrum's "outside" port (net_pcap0)
  DIR/in_in.pcap     frames arriving on its "inside" port (net_pcap1)
  DIR/bad_csum.pcap  a control: two frames with a wrong IP and a wrong TCP
                     checksum, to prove the tshark checksum filter used by
                     check.py does report bad checksums
and prints `frames: N` (the total run.sh waits for in fulcrum's rx_pkts).
The frames themselves are defined in frames.py.
"""

import os
import sys

from scapy.all import IP, TCP, wrpcap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import frames  # noqa: E402


def main():
    if len(sys.argv) != 2:
        print("usage: gen.py DIR", file=sys.stderr)
        return 2
    d = sys.argv[1]
    outside = [f for f, _ in frames.outside_frames()]
    inside = [f for f, _ in frames.inside_frames()]
    wrpcap(os.path.join(d, "in_out.pcap"), outside)
    wrpcap(os.path.join(d, "in_in.pcap"), inside)

    good = frames.expected_to_real(outside[0], frames.REALS[0])
    bad_ip = good.copy()
    bad_ip[IP].chksum = (good[IP].chksum + 1) & 0xFFFF
    bad_tcp = good.copy()
    bad_tcp[TCP].chksum = (good[TCP].chksum + 1) & 0xFFFF
    wrpcap(os.path.join(d, "bad_csum.pcap"), [bad_ip, bad_tcp])

    print(f"frames: {len(outside) + len(inside)}")
    print(f"  in_out.pcap: {len(outside)} frames, in_in.pcap: {len(inside)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
