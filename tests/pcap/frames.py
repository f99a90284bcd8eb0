"""The frames of the pcap golden test, shared by gen.py and check.py.

Layer: test data. Defines the director's pinned port MACs, the static
neighbours, the two client flows of a NAT virtual service and the frames
that must be dropped; builds every frame with scapy so that checksums are
full RFC 1071 recomputations, independent of fulcrum's incremental
(RFC 1624) updates.

Facts the test relies on:
- rr starts at the first real server (as IPVS `ip_vs_rr_schedule` starts at
  the head of the destination list), so flow 1 (10.0.0.2:40000) goes to
  10.1.0.11:80 and flow 2 (10.0.0.3:40001) to 10.1.0.12:80; the real server
  replies in in_in.pcap are written for that assignment.
- The inside capture starts with FILLER_FRAMES frames addressed to another
  MAC (dropped as `eth_not_for_us`). A worker reads at most 64 frames per
  rx_burst (dataplane MAX_BURST), so whatever order it polls the two ports
  in, every client frame is processed before the first real server reply:
  net_pcap replays files as fast as it is polled, and a reply seen before
  its connection exists would be dropped.
"""

from scapy.all import IP, TCP, UDP, Ether, Raw

OUTSIDE_MAC = "02:00:00:00:00:01"
INSIDE_MAC = "02:00:00:00:01:01"
VIP = "10.0.0.100"
VPORT = 80
RPORT = 80
# Static neighbours in the fulcrum config: ip -> (port name, MAC).
NEIGHBOURS = {
    "10.0.0.2": ("outside", "02:00:00:00:00:02"),
    "10.0.0.3": ("outside", "02:00:00:00:00:03"),
    "10.1.0.11": ("inside", "02:00:00:00:01:11"),
    "10.1.0.12": ("inside", "02:00:00:00:01:12"),
}
REALS = ["10.1.0.11", "10.1.0.12"]
TTL_IN = 64
FILLER_FRAMES = 64
# Ethernet minimum frame without FCS: shorter frames are padded, as on a real
# wire, so the director must use the IP total length, not the frame length.
MIN_FRAME_LEN = 60

# (client ip, client port, client ISN, real server ip, real server ISN)
FLOWS = [
    ("10.0.0.2", 40000, 1000, "10.1.0.11", 5000),
    ("10.0.0.3", 40001, 2000, "10.1.0.12", 7000),
]


def mac(ip):
    return NEIGHBOURS[ip][1]


def request(flow_no):
    return f"GET /{flow_no} HTTP/1.1\r\nHost: {VIP}\r\nUser-Agent: fulcrum-pcap-test\r\n\r\n".encode()


def response(flow_no):
    body = f"rs{flow_no}\n"
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()


def padded(pkt):
    """Frame bytes padded with zeros to MIN_FRAME_LEN, parsed back by scapy."""
    raw = bytes(pkt)
    if len(raw) < MIN_FRAME_LEN:
        raw += bytes(MIN_FRAME_LEN - len(raw))
    return Ether(raw)


def client_frame(flow, flags, seq, ack, payload=b"", ip_id=1):
    """A frame from a client to the VIP, as it arrives on the outside port."""
    cip, cport, _, _, _ = flow
    opts = [("MSS", 1460)] if flags == "S" else []
    pkt = (Ether(src=mac(cip), dst=OUTSIDE_MAC)
           / IP(src=cip, dst=VIP, ttl=TTL_IN, id=ip_id, flags="DF")
           / TCP(sport=cport, dport=VPORT, flags=flags, seq=seq, ack=ack, window=64240, options=opts))
    if payload:
        pkt = pkt / Raw(payload)
    return padded(pkt)


def real_frame(flow, flags, seq, ack, payload=b"", ip_id=1):
    """A NAT reply from a real server to a client, as it arrives on the inside port."""
    cip, cport, _, rip, _ = flow
    opts = [("MSS", 1460)] if "S" in flags else []
    pkt = (Ether(src=mac(rip), dst=INSIDE_MAC)
           / IP(src=rip, dst=cip, ttl=TTL_IN, id=ip_id, flags="DF")
           / TCP(sport=RPORT, dport=cport, flags=flags, seq=seq, ack=ack, window=65160, options=opts))
    if payload:
        pkt = pkt / Raw(payload)
    return padded(pkt)


def outside_frames():
    """Frames arriving on the outside port, in order, with what fulcrum must do.

    Returns a list of (frame, expected) where expected is ("fwd", flow index)
    or ("drop", reason name).
    """
    out = []
    f1, f2 = FLOWS
    out.append((client_frame(f1, "S", f1[2], 0, ip_id=101), ("fwd", 0)))
    out.append((client_frame(f2, "S", f2[2], 0, ip_id=201), ("fwd", 1)))
    out.append((client_frame(f1, "A", f1[2] + 1, f1[4] + 1, ip_id=102), ("fwd", 0)))
    out.append((client_frame(f2, "A", f2[2] + 1, f2[4] + 1, ip_id=202), ("fwd", 1)))
    out.append((client_frame(f1, "PA", f1[2] + 1, f1[4] + 1, request(1), ip_id=103), ("fwd", 0)))
    out.append((client_frame(f2, "PA", f2[2] + 1, f2[4] + 1, request(2), ip_id=203), ("fwd", 1)))
    # Malformed: IHL = 4 (a 16-byte header cannot exist; RFC 791 minimum is 5).
    bad = bytearray(bytes(client_frame(f1, "A", 1, 1, ip_id=104)))
    bad[14] = 0x44
    out.append((Ether(bytes(bad)), ("drop", "ipv4_malformed")))
    # A bare ACK for a connection that does not exist: IPVS schedules only SYNs.
    stray = ("10.0.0.2", 40002, 3000, None, 0)
    out.append((client_frame(stray, "A", 3001, 9001, ip_id=105), ("drop", "tcp_no_conn")))
    return out


def inside_frames():
    """Frames arriving on the inside port, in order, with what fulcrum must do."""
    out = []
    for i in range(FILLER_FRAMES):
        filler = (Ether(src=mac("10.1.0.11"), dst="02:00:00:00:99:99")
                  / IP(src="10.1.0.11", dst="10.1.0.99", ttl=TTL_IN, id=900 + i)
                  / UDP(sport=9999, dport=9) / Raw(b"filler"))
        out.append((padded(filler), ("drop", "eth_not_for_us")))
    f1, f2 = FLOWS
    out.append((real_frame(f1, "SA", f1[4], f1[2] + 1, ip_id=501), ("fwd", 0)))
    out.append((real_frame(f2, "SA", f2[4], f2[2] + 1, ip_id=701), ("fwd", 1)))
    out.append((real_frame(f1, "PA", f1[4] + 1, f1[2] + 1 + len(request(1)), response(1), ip_id=502),
                ("fwd", 0)))
    out.append((real_frame(f2, "PA", f2[4] + 1, f2[2] + 1 + len(request(2)), response(2), ip_id=702),
                ("fwd", 1)))
    return out


def expected_to_real(frame, rip):
    """What NAT must send to real server `rip` for a client frame: destination
    rewritten to RIP:RPORT, TTL - 1, MACs inside-port -> real server, both
    checksums recomputed from scratch."""
    e = Ether(bytes(frame))
    e.src, e.dst = INSIDE_MAC, mac(rip)
    e[IP].dst = rip
    e[IP].ttl -= 1
    e[TCP].dport = RPORT
    del e[IP].chksum
    del e[TCP].chksum
    return Ether(bytes(e))


def expected_to_client(frame):
    """What NAT must send to the client for a real server reply: source
    rewritten to VIP:VPORT, TTL - 1, MACs outside-port -> client."""
    e = Ether(bytes(frame))
    e.src, e.dst = OUTSIDE_MAC, mac(e[IP].dst)
    e[IP].src = VIP
    e[IP].ttl -= 1
    e[TCP].sport = VPORT
    del e[IP].chksum
    del e[TCP].chksum
    return Ether(bytes(e))
