#!/usr/bin/python3
"""tests/pktgen/check.py NAME PCAP: checks a fulcrum-pktgen pcap independently.

Layer: system test. Reads the pcap records with struct (fast, every
frame) for counts, flags, sequence numbers and tuples, and hands frames to
scapy (every frame of small files, a sample of large ones) to recompute the
IPv4/TCP/UDP/ICMP checksums. NAME picks the expectations of one shipped
scenario, or `stamped` for a capture of DPDK TX (every frame must carry the
FPG1 stamp with consecutive sequence numbers and valid checksums).
Prints one `ok`/`FAIL` line per check; exit status 1 if any failed.
"""
import collections
import struct
import sys

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

FAILS = 0


def check(cond, what):
    global FAILS
    print(("  ok    " if cond else "  FAIL  ") + what)
    if not cond:
        FAILS += 1


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    # Microsecond (ours) or nanosecond (DPDK net_pcap) little-endian pcap.
    assert magic in (0xA1B2C3D4, 0xA1B23C4D), "little-endian pcap"
    assert struct.unpack_from("<I", data, 20)[0] == 1, "Ethernet link type"
    off = 24
    out = []
    while off < len(data):
        _, _, incl, _ = struct.unpack_from("<IIII", data, off)
        out.append(data[off + 16 : off + 16 + incl])
        off += 16 + incl
    return out


def ip4(f):
    """(proto, src, dst, l4 offset, ip total length) or None."""
    if len(f) < 34 or f[12:14] != b"\x08\x00" or f[14] != 0x45:
        return None
    total = struct.unpack_from(">H", f, 16)[0]
    return f[23], f[26:30], f[30:34], 34, total


def tcp(f):
    """(sport, dport, seq, flags, payload length) of a TCP frame."""
    _, _, _, l4, total = ip4(f)
    sport, dport, seq = struct.unpack_from(">HHI", f, l4)
    doff = (f[l4 + 12] >> 4) * 4
    return sport, dport, seq, f[l4 + 13], total - 20 - doff


def scapy_checksums_ok(f):
    """Recomputes every checksum with scapy; True if all match."""
    p = Ether(f)
    for layer in (IP, TCP, UDP, ICMP):
        if layer in p:
            got = p[layer].chksum
            q = Ether(f)
            del q[layer].chksum
            want = Ether(bytes(q))[layer].chksum
            if got != want:
                return False
    return True


def ones(b):
    """RFC 1071 ones'-complement sum of b, folded to 16 bits."""
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return t


def sums_ok(f):
    """Python's own check of the IPv4 and L4 checksums (independent of scapy)."""
    h = ip4(f)
    if not h or ones(f[14:34]) != 0xFFFF:
        return False
    proto, src, dst, l4, total = h
    seg = f[l4 : 14 + total]
    if proto == 1:
        return ones(seg) == 0xFFFF
    pseudo = src + dst + struct.pack(">BBH", 0, proto, len(seg))
    return ones(pseudo + seg) == 0xFFFF


def sample(fs, n=300):
    if len(fs) <= n:
        return fs
    step = len(fs) // (n - 150)
    return fs[:100] + fs[100:-50:step] + fs[-50:]


def checksums(fs, every=True):
    s = fs if every else sample(fs, 20000)
    bad = sum(1 for f in s if not sums_ok(f))
    check(bad == 0, f"python: IPv4 + L4 checksums of {len(s)} frames ({bad} wrong)")
    s = sample(fs)
    bad = sum(1 for f in s if not scapy_checksums_ok(f))
    check(bad == 0, f"scapy: checksums of {len(s)} sampled frames ({bad} wrong)")


def tcp_flows(fs):
    """Per (src, sport): list of (flags, seq, payload) in file order."""
    flows = collections.defaultdict(list)
    for f in fs:
        h = ip4(f)
        if h and h[0] == 6:
            sport, _, seq, flags, pl = tcp(f)
            flows[(h[1], sport)].append((flags, seq, pl))
    return flows


def tcp_sequences_ok(flows, close):
    bad = 0
    for segs in flows.values():
        if segs[0][0] != 0x02:
            bad += 1
            continue
        nxt = (segs[0][1] + 1) & 0xFFFFFFFF
        for flags, seq, pl in segs[1:]:
            if seq != nxt or not flags & 0x10 or flags & 0x02:
                bad += 1
                break
            nxt = (nxt + pl) & 0xFFFFFFFF
        if close and len(segs) > 1 and segs[-1][0] != 0x11:
            bad += 1
    return bad


def main():
    name, path = sys.argv[1], sys.argv[2]
    fs = frames(path)
    print(f"{name}: {len(fs)} frames")
    if name == "syn-flood":
        check(len(fs) == 100000, "100000 SYNs")
        ok = all(ip4(f) and ip4(f)[0] == 6 and tcp(f)[3] == 0x02 for f in fs)
        check(ok, "every frame is a TCP SYN (flags 0x02)")
        srcs = {ip4(f)[1] for f in fs}
        check(all(s[0] == 100 and 64 <= s[1] < 128 for s in srcs), "sources in 100.64.0.0/10")
        # 100000 draws from 4 M addresses: about 1250 birthday collisions.
        check(len(srcs) > 98000, f"random sources: {len(srcs)} distinct")
        checksums(fs)
    elif name == "imix":
        flows = tcp_flows(fs)
        est = {k: v for k, v in flows.items() if len(v) > 1}
        check(tcp_sequences_ok(est, True) == 0, f"{len(est)} established TCP flows: SYN, ACK+data with consistent seq, FIN last")
        sizes = collections.Counter(len(f) + 4 for f in fs)
        check(set(sizes) <= {64, 594, 1518}, f"wire sizes {sorted(sizes)} within IMIX")
        ratio = sizes[594] / max(sizes[1518], 1)
        check(3.6 < ratio < 4.4, f"594:1518 ratio {ratio:.2f} (IMIX 4:1)")
        protos = collections.Counter(ip4(f)[0] for f in fs)
        check(all(protos[p] > 0 for p in (1, 6, 17)), f"TCP, UDP and ICMP present: {dict(protos)}")
        checksums(fs)
    elif name == "elephant":
        check(len(fs) == 16012, "4 flows x 4003 frames")
        flows = tcp_flows(fs)
        check(len(flows) == 4 and tcp_sequences_ok(flows, True) == 0, "4 flows: SYN, ACK, data with seq += 1460, FIN")
        check(all(sum(pl for _, _, pl in v) == 4000 * 1460 for v in flows.values()), "4000 x 1460 data bytes per flow")
        checksums(fs)
    elif name == "nat-1m-flows":
        check(len(fs) == 3000000, "3 M frames")
        syn = {(f[26:30], f[34:36]) for f in fs[:1000000] if f[47] == 0x02}
        check(len(syn) == 1000000, f"1 M distinct SYN 5-tuples ({len(syn)})")
        acks = {(f[26:30], f[34:36]) for f in fs[1000000:2000000] if f[47] == 0x10}
        check(acks == syn, "round 2: an ACK for every flow")
        check(all(f[47] == 0x10 for f in fs[2000000:]), "round 3: pure ACK data segments")
        checksums(fs, every=False)
    elif name == "icmp-errors":
        check(len(fs) == 6000, "6000 frames")
        clients = {(ip4(f)[1], f[34:36]) for f in fs if ip4(f)[0] != 1}
        errs = [f for f in fs if ip4(f)[0] == 1]
        kinds = collections.Counter((f[34], f[35]) for f in errs)
        check(kinds == {(3, 3): 250, (3, 4): 250, (3, 1): 250, (11, 0): 250}, f"error kinds {dict(kinds)}")
        quoted_ok = sum(1 for f in errs if (f[58:62], f[64:66]) in clients and f[54:58] == bytes([10, 0, 0, 100]))
        check(quoted_ok == 1000, f"every error quotes VIP -> an existing client flow ({quoted_ok})")
        mtu = {struct.unpack_from(">H", f, 40)[0] for f in errs if (f[34], f[35]) == (3, 4)}
        check(mtu == {1400}, f"frag-needed next-hop MTU {mtu}")
        checksums(fs)
    elif name == "malformed":
        check(len(fs) == 6000, "6000 frames")
        kinds = collections.Counter()
        for f in fs:
            if len(f) == 10:
                kinds["TruncatedEthernet"] += 1
            elif len(f) == 26:
                kinds["TruncatedIpv4"] += 1
            elif f[14] == 0x55:
                kinds["BadIpVersion"] += 1
            elif f[14] == 0x44:
                kinds["BadIhl"] += 1
            elif ip4(f) and ip4(f)[4] == 140:
                kinds["TotalLengthTooLong"] += 1
            elif ip4(f) and ip4(f)[4] == 16:
                kinds["TotalLengthTooShort"] += 1
            elif ip4(f) and ip4(f)[4] == 28:
                kinds["TcpTruncated"] += 1
            elif f[46] >> 4 == 4:
                kinds["TcpDataOffsetShort"] += 1
            elif f[46] >> 4 == 15:
                kinds["TcpDataOffsetLong"] += 1
            elif f[47] == 0x03:
                kinds["TcpSynFin"] += 1
            elif ones(f[14:34]) != 0xFFFF:
                kinds["BadIpChecksum"] += 1
            elif not sums_ok(f):
                kinds["BadTcpChecksum"] += 1
            else:
                kinds["valid"] += 1
        defects = {k: v for k, v in kinds.items() if k != "valid"}
        check(len(defects) == 12 and set(defects.values()) == {100}, f"12 defects x 100: {dict(kinds)}")
        check(kinds["valid"] == 4800, "4800 valid frames (SYN, ACK, data, FIN of 1200 flows)")
        valid = [f for f in fs if len(f) >= 60 and f[14] == 0x45 and ip4(f)[4] not in (16, 28, 140) and 5 == f[46] >> 4 and f[47] != 3 and sums_ok(f)]
        checksums(valid)
    elif name == "stamped":
        seqs = []
        for f in fs:
            h = ip4(f)
            l4 = 34 + (20 if h[0] == 6 else 8)
            if f[l4 : l4 + 4] == b"FPG1":
                seqs.append(struct.unpack_from(">I", f, l4 + 4)[0])
        check(len(seqs) == len(fs) and seqs == list(range(len(fs))), f"every frame stamped, seq 0..{len(fs) - 1}")
        checksums(fs)
    else:
        check(False, f"unknown scenario name {name}")
    sys.exit(1 if FAILS else 0)


main()
