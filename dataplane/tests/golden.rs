//! Golden packets through `Core::process`: input bytes, expected output bytes
//! and verdict, for NAT and DR in both directions, ARP, ICMP echo, and every
//! malformed-input drop reason the fast-path issue names.
//!
//! Inputs and expected outputs are built by `etherparse`, an independent
//! implementation that computes every checksum from scratch, so a byte-exact
//! match also proves fulcrum's incremental checksum updates (RFC 1624).

use dataplane::conn::TcpState;
use dataplane::neigh::Learn;
use dataplane::pipeline::{ArpRequest, Core, Verdict};
use dataplane::snapshot::*;
use dataplane::stats::DropReason;
use etherparse::PacketBuilder;

mod common;
use common::*;

fn core(snap: &Snapshot) -> Core {
    let mut c = Core::new(0, 1, 1024);
    c.sync(snap);
    c
}

#[derive(Clone, Copy)]
enum Flags {
    Syn,
    SynAck,
    Ack,
    FinAck,
}

#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    smac: [u8; 6],
    dmac: [u8; 6],
    sip: [u8; 4],
    dip: [u8; 4],
    ttl: u8,
    sport: u16,
    dport: u16,
    flags: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(smac, dmac)
        .ipv4(sip, dip, ttl)
        .tcp(sport, dport, 1000, 65535);
    let b = match flags {
        Flags::Syn => b.syn(),
        Flags::SynAck => b.syn().ack(1),
        Flags::Ack => b.ack(1),
        Flags::FinAck => b.fin().ack(1),
    };
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

#[allow(clippy::too_many_arguments)]
fn udp_frame(
    smac: [u8; 6],
    dmac: [u8; 6],
    sip: [u8; 4],
    dip: [u8; 4],
    ttl: u8,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(smac, dmac)
        .ipv4(sip, dip, ttl)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn run(c: &mut Core, s: &Snapshot, frame: &mut [u8], port: u8, now: u64) -> Verdict {
    c.process(s, frame, port, now, false)
}

fn drops(c: &Core, r: DropReason) -> u64 {
    c.stats.drops[r as usize]
}

#[test]
fn test_nat_inbound_syn_byte_exact() {
    let s = snapshot(Method::Nat, true);
    let mut c = core(&s);
    let mut f = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        40000,
        80,
        Flags::Syn,
        b"",
    );
    let want = tcp_frame(IN_MAC, RS1_MAC, CIP, RIP1, 63, 40000, 8080, Flags::Syn, b"");
    assert_eq!(run(&mut c, &s, &mut f, 0, 0), Verdict::Tx(1));
    assert_eq!(f, want);
    assert_eq!(c.stats.conns_created, 1);
    assert_eq!(c.reals[1].conns, 1);
    assert_eq!(c.reals[1].inactive_conns, 1);
}

#[test]
fn test_nat_both_directions_with_data_byte_exact() {
    let s = snapshot(Method::Nat, true);
    let mut c = core(&s);
    let mut syn = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        40000,
        80,
        Flags::Syn,
        b"",
    );
    assert_eq!(run(&mut c, &s, &mut syn, 0, 0), Verdict::Tx(1));

    // The real server's SYN-ACK: source RIP:8080 becomes VIP:80.
    let mut synack = tcp_frame(
        RS1_MAC,
        IN_MAC,
        RIP1,
        CIP,
        64,
        8080,
        40000,
        Flags::SynAck,
        b"",
    );
    let want = tcp_frame(
        OUT_MAC,
        CLIENT_MAC,
        VIP,
        CIP,
        63,
        80,
        40000,
        Flags::SynAck,
        b"",
    );
    assert_eq!(run(&mut c, &s, &mut synack, 1, 1), Verdict::Tx(0));
    assert_eq!(synack, want);

    let mut ack = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        40000,
        80,
        Flags::Ack,
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let want = tcp_frame(
        IN_MAC,
        RS1_MAC,
        CIP,
        RIP1,
        63,
        40000,
        8080,
        Flags::Ack,
        b"GET / HTTP/1.0\r\n\r\n",
    );
    assert_eq!(run(&mut c, &s, &mut ack, 0, 2), Verdict::Tx(1));
    assert_eq!(ack, want);
    assert_eq!(c.reals[1].active_conns, 1, "ESTABLISHED counts as active");
    assert_eq!(c.reals[1].inactive_conns, 0);

    let mut reply = tcp_frame(
        RS1_MAC,
        IN_MAC,
        RIP1,
        CIP,
        64,
        8080,
        40000,
        Flags::Ack,
        b"HTTP/1.0 200 OK\r\n\r\nrs1\n",
    );
    let want = tcp_frame(
        OUT_MAC,
        CLIENT_MAC,
        VIP,
        CIP,
        63,
        80,
        40000,
        Flags::Ack,
        b"HTTP/1.0 200 OK\r\n\r\nrs1\n",
    );
    assert_eq!(run(&mut c, &s, &mut reply, 1, 3), Verdict::Tx(0));
    assert_eq!(reply, want);
    assert_eq!(c.reals[1].in_pkts, 2);
    assert_eq!(c.reals[1].out_pkts, 2);
    assert_eq!(c.reals[1].in_bytes, 40 + 58);
}

#[test]
fn test_nat_rr_alternates_real_servers() {
    let s = snapshot(Method::Nat, true);
    let mut c = core(&s);
    let mut a = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        40000,
        80,
        Flags::Syn,
        b"",
    );
    let mut b = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        40001,
        80,
        Flags::Syn,
        b"",
    );
    run(&mut c, &s, &mut a, 0, 0);
    run(&mut c, &s, &mut b, 0, 0);
    assert_eq!(&a[0..6], &RS1_MAC);
    assert_eq!(&b[0..6], &RS2_MAC);
    assert_eq!(&b[30..34], &RIP2);
}

#[test]
fn test_nat_udp_both_directions_byte_exact() {
    let s = snapshot(Method::Nat, true);
    let mut c = core(&s);
    let mut q = udp_frame(CLIENT_MAC, OUT_MAC, CIP, VIP, 64, 33333, 53, b"query");
    let want = udp_frame(IN_MAC, RS1_MAC, CIP, RIP1, 63, 33333, 5353, b"query");
    assert_eq!(run(&mut c, &s, &mut q, 0, 0), Verdict::Tx(1));
    assert_eq!(q, want);
    let mut r = udp_frame(RS1_MAC, IN_MAC, RIP1, CIP, 64, 5353, 33333, b"answer");
    let want = udp_frame(OUT_MAC, CLIENT_MAC, VIP, CIP, 63, 53, 33333, b"answer");
    assert_eq!(run(&mut c, &s, &mut r, 1, 1), Verdict::Tx(0));
    assert_eq!(r, want);
}

#[test]
fn test_dr_inbound_only_macs_change() {
    let s = snapshot(Method::Dr, true);
    let mut c = core(&s);
    for (flags, payload) in [
        (Flags::Syn, &b""[..]),
        (Flags::Ack, &b"GET /"[..]),
        (Flags::FinAck, &b""[..]),
    ] {
        let mut f = tcp_frame(CLIENT_MAC, OUT_MAC, CIP, VIP, 64, 40000, 80, flags, payload);
        let want = tcp_frame(IN_MAC, RS1_MAC, CIP, VIP, 64, 40000, 80, flags, payload);
        assert_eq!(run(&mut c, &s, &mut f, 0, 0), Verdict::Tx(1));
        assert_eq!(f, want, "DR must not touch the IP packet");
    }
    assert_eq!(c.stats.conns_created, 1);
    let (id, _) = c
        .conns
        .lookup(&dataplane::conn::FlowKey {
            src_ip: ip(CIP),
            dst_ip: ip(VIP),
            src_port: 40000,
            dst_port: 80,
            proto: 6,
        })
        .unwrap();
    assert_eq!(
        c.conns.get(id).unwrap().state,
        TcpState::FinWait,
        "IPVS input-only table: FIN from ESTABLISHED"
    );
}

#[test]
fn test_dr_reply_is_not_for_us() {
    // In DR the real server answers the client directly; a stray reply that
    // reaches the director has no outbound key and is dropped, counted.
    let s = snapshot(Method::Dr, true);
    let mut c = core(&s);
    let mut syn = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        40000,
        80,
        Flags::Syn,
        b"",
    );
    run(&mut c, &s, &mut syn, 0, 0);
    let mut r = tcp_frame(RS1_MAC, IN_MAC, VIP, CIP, 64, 80, 40000, Flags::SynAck, b"");
    assert_eq!(
        run(&mut c, &s, &mut r, 1, 0),
        Verdict::Drop(DropReason::NotForUs)
    );
}

fn arp_frame(
    op: u16,
    smac: [u8; 6],
    sip: [u8; 4],
    tmac: [u8; 6],
    tip: [u8; 4],
    dmac: [u8; 6],
) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&dmac);
    v.extend_from_slice(&smac);
    v.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&smac);
    v.extend_from_slice(&sip);
    v.extend_from_slice(&tmac);
    v.extend_from_slice(&tip);
    v.resize(60, 0);
    v
}

#[test]
fn test_arp_reply_for_vip_and_dip() {
    let s = snapshot(Method::Nat, false);
    let mut c = core(&s);
    for target in [VIP, DIP_OUT] {
        let mut f = arp_frame(1, CLIENT_MAC, CIP, [0; 6], target, [0xff; 6]);
        let want = arp_frame(2, OUT_MAC, target, CLIENT_MAC, CIP, CLIENT_MAC);
        assert_eq!(run(&mut c, &s, &mut f, 0, 0), Verdict::Tx(0));
        assert_eq!(f, want);
    }
    assert_eq!(c.stats.arp_replies, 2);
    // The VIP is only announced on the outside port.
    let mut f = arp_frame(1, RS1_MAC, RIP1, [0; 6], VIP, [0xff; 6]);
    assert_eq!(
        run(&mut c, &s, &mut f, 1, 0),
        Verdict::Drop(DropReason::ArpNotForUs)
    );
    // Requests for someone else's address are not answered.
    let mut f = arp_frame(1, CLIENT_MAC, CIP, [0; 6], [10, 0, 0, 77], [0xff; 6]);
    assert_eq!(
        run(&mut c, &s, &mut f, 0, 0),
        Verdict::Drop(DropReason::ArpNotForUs)
    );
}

#[test]
fn test_neighbour_resolution_by_arp() {
    let s = snapshot(Method::Nat, false);
    let mut c = core(&s);
    let syn = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        40000,
        80,
        Flags::Syn,
        b"",
    );
    let mut f = syn.clone();
    assert_eq!(
        run(&mut c, &s, &mut f, 0, 0),
        Verdict::Drop(DropReason::NeighUnresolved)
    );
    assert_eq!(
        c.arp_out,
        vec![ArpRequest {
            port: 1,
            sender_ip: 0x0a01_0001,
            target_ip: ip(RIP1)
        }]
    );
    let mut req = [0u8; 60];
    assert_eq!(
        dataplane::pipeline::emit_arp_request(&mut req, IN_MAC, &c.arp_out[0]),
        60
    );
    assert_eq!(
        req.to_vec(),
        arp_frame(1, IN_MAC, [10, 1, 0, 1], [0; 6], RIP1, [0xff; 6])
    );
    c.arp_out.clear();
    // The real server answers; the SYN retransmission now goes through.
    let mut reply = arp_frame(2, RS1_MAC, RIP1, IN_MAC, [10, 1, 0, 1], IN_MAC);
    assert_eq!(run(&mut c, &s, &mut reply, 1, 10), Verdict::Consumed);
    assert_eq!(
        c.neigh_out.len(),
        1,
        "learnt neighbours are shared with other workers"
    );
    let mut f = syn.clone();
    assert_eq!(run(&mut c, &s, &mut f, 0, 20), Verdict::Tx(1));
    assert_eq!(&f[0..6], &RS1_MAC);
}

#[test]
fn test_icmp_echo_reply_for_vip() {
    let s = snapshot(Method::Nat, true);
    let mut c = core(&s);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4(CIP, VIP, 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut f, b"ping-payload")
        .unwrap();
    let mut want = Vec::new();
    PacketBuilder::ethernet2(OUT_MAC, CLIENT_MAC)
        .ipv4(VIP, CIP, 64)
        .icmpv4_echo_reply(7, 1)
        .write(&mut want, b"ping-payload")
        .unwrap();
    assert_eq!(run(&mut c, &s, &mut f, 0, 0), Verdict::Tx(0));
    assert_eq!(f, want);
    assert_eq!(c.stats.icmp_echo_replies, 1);
}

/// Fixes the IPv4 header checksum of a frame after a test edited the header.
fn refill_ip_checksum(f: &mut [u8]) {
    let hl = usize::from(f[14] & 0x0f) * 4;
    f[24] = 0;
    f[25] = 0;
    let c = dataplane::wire::checksum::checksum(&f[14..14 + hl.min(f.len() - 14)]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn test_malformed_drops_are_counted_by_reason() {
    let s = snapshot(Method::Nat, true);
    let mut c = core(&s);
    let good = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        40000,
        80,
        Flags::Syn,
        b"",
    );

    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        (
            "truncated ethernet",
            good[..10].to_vec(),
            DropReason::EthTruncated,
        ),
        (
            "truncated ipv4",
            good[..14 + 12].to_vec(),
            DropReason::Ipv4Malformed,
        ),
        (
            "ihl 4",
            {
                let mut f = good.clone();
                f[14] = 0x44;
                f
            },
            DropReason::Ipv4Malformed,
        ),
        (
            "total length beyond frame",
            {
                let mut f = good.clone();
                f[16..18].copy_from_slice(&1500u16.to_be_bytes());
                refill_ip_checksum(&mut f);
                f
            },
            DropReason::Ipv4BadLength,
        ),
        (
            "bad ip checksum",
            {
                let mut f = good.clone();
                f[24] ^= 0xff;
                f
            },
            DropReason::Ipv4BadChecksum,
        ),
        (
            "non-first fragment without its first",
            {
                let mut f = good.clone();
                f[20..22].copy_from_slice(&0x0010u16.to_be_bytes());
                refill_ip_checksum(&mut f);
                f
            },
            DropReason::FragNoFirst,
        ),
        (
            "first fragment of a ragged size",
            {
                let mut f = good.clone();
                f[20..22].copy_from_slice(&0x2000u16.to_be_bytes());
                refill_ip_checksum(&mut f);
                f
            },
            // MF set on 20 bytes of data: not a multiple of 8.
            DropReason::FragBad,
        ),
        (
            // Its time exceeded would not fit the fixed 54-byte frame.
            "ttl 1",
            tcp_frame(CLIENT_MAC, OUT_MAC, CIP, VIP, 1, 40000, 80, Flags::Syn, b""),
            DropReason::IcmpErrorNoRoom,
        ),
        (
            "tcp truncated",
            {
                let mut f = good.clone();
                f.truncate(14 + 20 + 10);
                f[16..18].copy_from_slice(&30u16.to_be_bytes());
                refill_ip_checksum(&mut f);
                f
            },
            DropReason::TcpMalformed,
        ),
        (
            "tcp data offset 4",
            {
                let mut f = good.clone();
                f[14 + 20 + 12] = 0x40;
                f
            },
            DropReason::TcpMalformed,
        ),
        (
            "ack without connection",
            tcp_frame(
                CLIENT_MAC,
                OUT_MAC,
                CIP,
                VIP,
                64,
                41000,
                80,
                Flags::Ack,
                b"",
            ),
            DropReason::TcpNoConn,
        ),
        (
            "bad arp",
            {
                let mut f = arp_frame(1, CLIENT_MAC, CIP, [0; 6], VIP, [0xff; 6]);
                f[14 + 4] = 8; // hardware length 8
                f
            },
            DropReason::ArpMalformed,
        ),
        (
            "short arp",
            arp_frame(1, CLIENT_MAC, CIP, [0; 6], VIP, [0xff; 6])[..14 + 20].to_vec(),
            DropReason::ArpMalformed,
        ),
        (
            "other mac",
            tcp_frame(
                CLIENT_MAC,
                [2, 9, 9, 9, 9, 9],
                CIP,
                VIP,
                64,
                40000,
                80,
                Flags::Syn,
                b"",
            ),
            DropReason::EthNotForUs,
        ),
        (
            "ipv6",
            {
                let mut f = good.clone();
                f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
                f
            },
            DropReason::EthUnsupported,
        ),
        (
            "no service on port",
            tcp_frame(
                CLIENT_MAC,
                OUT_MAC,
                CIP,
                VIP,
                64,
                40000,
                443,
                Flags::Syn,
                b"",
            ),
            DropReason::NoService,
        ),
        (
            "not for us",
            tcp_frame(
                CLIENT_MAC,
                OUT_MAC,
                CIP,
                [10, 0, 0, 99],
                64,
                40000,
                80,
                Flags::Syn,
                b"",
            ),
            DropReason::NotForUs,
        ),
    ];
    for (name, mut f, reason) in cases {
        let before = drops(&c, reason);
        assert_eq!(
            run(&mut c, &s, &mut f, 0, 0),
            Verdict::Drop(reason),
            "{name}"
        );
        assert_eq!(drops(&c, reason), before + 1, "{name}: counter");
    }
    assert_eq!(
        c.stats.conns_created, 0,
        "no malformed packet created a connection"
    );
}

#[test]
fn test_redirect_to_owner_and_process_there() {
    let s = snapshot(Method::Nat, true);
    let mut w0 = Core::new(0, 2, 1024);
    let mut w1 = Core::new(1, 2, 1024);
    w0.sync(&s);
    w1.sync(&s);
    let cport = (40000..41000)
        .find(|&p| dataplane::owner::owner(ip(CIP), p, 2) == 1)
        .unwrap();
    let mut f = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        cport,
        80,
        Flags::Syn,
        b"",
    );
    assert_eq!(w0.process(&s, &mut f, 0, 0, false), Verdict::Redirect(1));
    assert_eq!(w0.stats.redirects_out, 1);
    assert_eq!(w1.process(&s, &mut f, 0, 0, true), Verdict::Tx(1));
    // The NAT reply also belongs to worker 1, wherever RSS put it.
    let mut r = tcp_frame(
        RS1_MAC,
        IN_MAC,
        RIP1,
        CIP,
        64,
        8080,
        cport,
        Flags::SynAck,
        b"",
    );
    assert_eq!(w0.process(&s, &mut r, 1, 0, false), Verdict::Redirect(1));
    assert_eq!(w1.process(&s, &mut r, 1, 0, true), Verdict::Tx(0));
    assert_eq!(&r[26..30], &VIP);
    assert_eq!(w0.conns.len(), 0);
    assert_eq!(w1.conns.len(), 1);
}

#[test]
fn test_expiry_releases_counts() {
    let s = snapshot(Method::Nat, true);
    let mut c = core(&s);
    let mut f = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        40000,
        80,
        Flags::Syn,
        b"",
    );
    run(&mut c, &s, &mut f, 0, 0);
    assert_eq!(c.reals[1].inactive_conns, 1);
    c.tick(&s, 1_000, 4096);
    assert_eq!(c.conns.len(), 1);
    // SYN_RECV times out after 60 s (IPVS default).
    c.tick(&s, 61_000, 4096);
    assert_eq!(c.conns.len(), 0);
    assert_eq!(c.stats.conns_expired, 1);
    assert_eq!(c.reals[1].inactive_conns, 0);
    assert_eq!(
        c.reals[1].conns, 1,
        "conns is a running total, as in ipvsadm --stats"
    );
}

#[test]
fn test_quiesced_and_empty_service_drop_no_real_server() {
    let mut s = snapshot(Method::Nat, true);
    for r in s.reals.iter_mut() {
        r.weight = 0;
    }
    let mut c = core(&s);
    let mut f = tcp_frame(
        CLIENT_MAC,
        OUT_MAC,
        CIP,
        VIP,
        64,
        40000,
        80,
        Flags::Syn,
        b"",
    );
    assert_eq!(
        run(&mut c, &s, &mut f, 0, 0),
        Verdict::Drop(DropReason::NoRealServer)
    );
}

/// The per-core next-hop cache never serves a stale answer: a neighbour's
/// new MAC and a new snapshot's port MAC show up on the very next packet.
#[test]
fn test_next_hop_cache_follows_neighbour_and_snapshot_changes() {
    let s = snapshot(Method::Dr, false);
    let mut c = core(&s);
    assert_eq!(c.neigh.learn(1, ip(RIP1), RS1_MAC, 0), Learn::New);
    let send = |c: &mut Core, s: &Snapshot, flags| {
        let mut f = tcp_frame(CLIENT_MAC, OUT_MAC, CIP, VIP, 64, 40000, 80, flags, b"");
        assert_eq!(run(c, s, &mut f, 0, 0), Verdict::Tx(1));
        f
    };
    let f = send(&mut c, &s, Flags::Syn);
    assert_eq!((&f[0..6], &f[6..12]), (&RS1_MAC[..], &IN_MAC[..]));
    let f = send(&mut c, &s, Flags::Ack);
    assert_eq!(&f[0..6], &RS1_MAC[..], "cached answer");
    // The real server moved to another MAC (gratuitous ARP).
    let moved = [0x02, 0xaa, 0, 0, 0, 0x99];
    assert_eq!(c.neigh.learn(1, ip(RIP1), moved, 0), Learn::Updated);
    let f = send(&mut c, &s, Flags::Ack);
    assert_eq!(&f[0..6], &moved[..]);
    // A new snapshot changes the inside port's MAC.
    let mut s2 = s.clone();
    s2.generation += 1;
    let new_port_mac = [0x02, 0, 0, 0, 0x01, 0x77];
    s2.ports[1].mac = new_port_mac;
    c.sync(&s2);
    let f = send(&mut c, &s2, Flags::Ack);
    assert_eq!((&f[0..6], &f[6..12]), (&moved[..], &new_port_mac[..]));
}
