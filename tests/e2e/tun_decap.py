#!/usr/bin/python3
"""tests/e2e/tun_decap.py: a userspace VS/TUN decapsulator for a test real server.

Test tooling (this kernel has no ipip module). Runs in a real server's
network namespace: reads IPIP packets (IP protocol 4, RFC 2003) from a raw
socket, or GUE packets (UDP to --gue-port, variant 0 header of 4 bytes whose
protocol field is 4) from a UDP socket, checks that the inner packet is IPv4
addressed to --vip, and writes it to the TUN device --tun (IFF_TUN |
IFF_NO_PI: raw IPv4), where the kernel delivers it to nginx as if it had
arrived on that interface. Counts what it did in --stats (a JSON file,
rewritten at exit and every second).

Bounded: exits after --lifetime seconds (default 600) or on SIGTERM.
"""
import argparse
import fcntl
import json
import os
import select
import signal
import socket
import struct
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def inner_ok(pkt, vip):
    """The inner packet is IPv4 with a sane header and total length, to vip."""
    if len(pkt) < 20 or pkt[0] >> 4 != 4:
        return False
    ihl = (pkt[0] & 0x0F) * 4
    total = struct.unpack("!H", pkt[2:4])[0]
    return ihl >= 20 and ihl <= total <= len(pkt) and pkt[16:20] == vip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tun", required=True)
    ap.add_argument("--vip", required=True)
    ap.add_argument("--gue-port", type=int, default=0)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--lifetime", type=float, default=600.0)
    a = ap.parse_args()
    vip = socket.inet_aton(a.vip)

    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", a.tun.encode(), IFF_TUN | IFF_NO_PI))
    socks = []
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)
    socks.append(raw)
    udp = None
    if a.gue_port:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("0.0.0.0", a.gue_port))
        socks.append(udp)

    stats = {"ipip": 0, "gue": 0, "bad": 0, "gue_bad_header": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    end = time.monotonic() + a.lifetime
    last_dump = 0.0

    def dump():
        with open(a.stats + ".tmp", "w") as f:
            json.dump(stats, f)
        os.replace(a.stats + ".tmp", a.stats)

    while not stop and time.monotonic() < end:
        try:
            ready, _, _ = select.select(socks, [], [], 0.2)
        except InterruptedError:
            continue
        for s in ready:
            if s is raw:
                pkt = raw.recv(65535)
                # A raw IPv4 socket hands over the outer header too.
                inner = pkt[(pkt[0] & 0x0F) * 4:] if pkt else b""
                kind = "ipip"
            else:
                data = udp.recv(65535)
                # GUE variant 0, no extensions, data message, protocol 4.
                if len(data) < 4 or data[0] != 0 or data[1] != 4:
                    stats["gue_bad_header"] += 1
                    continue
                inner = data[4:]
                kind = "gue"
            if not inner_ok(inner, vip):
                stats["bad"] += 1
                continue
            total = struct.unpack("!H", inner[2:4])[0]
            os.write(tun, inner[:total])
            stats[kind] += 1
        now = time.monotonic()
        if now - last_dump > 1.0:
            dump()
            last_dump = now
    dump()


if __name__ == "__main__":
    main()
