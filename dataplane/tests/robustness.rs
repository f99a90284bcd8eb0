//! `process()` on hostile input: structured frames from random bytes
//! (`common/framegen.rs`, the generator the fuzz target
//! `fuzz/fuzz_targets/process.rs` uses under libFuzzer), arbitrary bytes,
//! and valid frames with random bytes overwritten or cut short, on every
//! port, in NAT and DR, redirected or not. Runs on stable in every `make test`.
//!
//! Properties: no panic; the frame's length never changes; a `Drop` verdict
//! counts exactly one drop and any other verdict none; at most one
//! connection is created per frame. The structured test also asserts how
//! far its frames get, stage by stage, so a generator that stopped reaching
//! the deeper stages fails instead of silently testing `parse` alone.

mod common;
use common::*;

use std::cell::RefCell;
use std::collections::BTreeMap;

use common::framegen::{self, Seen};
use dataplane::pipeline::{Core, Verdict};
use dataplane::snapshot::Method;
use dataplane::stats::DropReason;
use etherparse::PacketBuilder;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut push = |f: Vec<u8>| v.push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4(CIP, VIP, 64)
        .tcp(40000, 80, 1, 100)
        .syn()
        .write(&mut f, &[])
        .unwrap();
    push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(RS1_MAC, IN_MAC)
        .ipv4(RIP1, CIP, 64)
        .tcp(8080, 40000, 1, 100)
        .syn()
        .ack(2)
        .write(&mut f, b"x")
        .unwrap();
    push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4(CIP, VIP, 64)
        .udp(5000, 53)
        .write(&mut f, b"q")
        .unwrap();
    push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4(CIP, VIP, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut f, b"ping")
        .unwrap();
    push(f);
    // ICMP errors for the relay: a client's about VIP:80 -> CIP:40000, and
    // a real server's about CIP:40000 -> RIP1:8080 (both quote 28 bytes).
    let quote = |sip, dip, sport, dport| {
        let mut q = Vec::new();
        PacketBuilder::ipv4(sip, dip, 63)
            .tcp(sport, dport, 1, 100)
            .syn()
            .write(&mut q, &[])
            .unwrap();
        q.truncate(28);
        q
    };
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4(CIP, VIP, 64)
        .icmpv4_raw(3, 4, [0, 0, 5, 0])
        .write(&mut f, &quote(VIP, CIP, 80, 40000))
        .unwrap();
    push(f);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(RS1_MAC, IN_MAC)
        .ipv4(RIP1, CIP, 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut f, &quote(CIP, RIP1, 40000, 8080))
        .unwrap();
    push(f);
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&CIP);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&VIP);
    push(arp);
    v
}

fn check(
    core: &mut Core,
    snap: &dataplane::Snapshot,
    frame: &mut [u8],
    port: u8,
    redirected: bool,
) -> Result<(), TestCaseError> {
    let len = frame.len();
    // Stage parse alone (what prefetching reads) must be total too.
    let _ = core.parse(snap, frame, port);
    let drops = core.stats.total_drops();
    let conns = core.stats.conns_created;
    let v = core.process(snap, frame, port, 5, redirected);
    prop_assert_eq!(frame.len(), len);
    let counted = core.stats.total_drops() - drops;
    match v {
        Verdict::Drop(_) => prop_assert_eq!(counted, 1),
        _ => prop_assert_eq!(counted, 0),
    }
    prop_assert!(core.stats.conns_created - conns <= 1);
    Ok(())
}

/// Stage parse hashes exactly the key `process()` looks up, and sets no
/// ports (hash 0) on what has no 5-tuple.
#[test]
fn test_parse_hash_matches_lookup_key() {
    use dataplane::conn::FlowKey;
    let core = Core::new(0, 1, 64);
    let snap = snapshot(Method::Nat, true);
    let s = seeds();
    let hash = |f: &[u8], port: u8| {
        core.parse(&snap, f, port)
            .ok()
            .filter(|p| p.has_ports())
            .map(|p| (p.key, p.hash))
    };
    let tcp = FlowKey {
        src_ip: ip(CIP),
        dst_ip: ip(VIP),
        src_port: 40000,
        dst_port: 80,
        proto: 6,
    };
    assert_eq!(hash(&s[0], 0), Some((tcp, core.conns.hash(&tcp))));
    let reply = FlowKey {
        src_ip: ip(RIP1),
        dst_ip: ip(CIP),
        src_port: 8080,
        dst_port: 40000,
        proto: 6,
    };
    assert_eq!(hash(&s[1], 1), Some((reply, core.conns.hash(&reply))));
    let udp = FlowKey {
        src_port: 5000,
        dst_port: 53,
        proto: 17,
        ..tcp
    };
    assert_eq!(hash(&s[2], 0), Some((udp, core.conns.hash(&udp))));
    // ICMP and ARP: no 5-tuple.
    assert_eq!(hash(&s[3], 0), None);
    assert_eq!(hash(&s[4], 0), None);
    // A non-first fragment (offset 8) has no ports.
    let mut frag = s[0].clone();
    frag[14 + 7] = 1;
    assert_eq!(hash(&frag, 0), None);
    // Cut anywhere before the ports end: refused, never a panic.
    for cut in 0..14 + 20 + 4 {
        assert!(core.parse(&snap, &s[0][..cut], 0).is_err(), "cut at {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The ICMP error view: any bytes, checked, never make a getter or a
    /// rewrite panic.
    #[test]
    fn prop_icmp_quote_view(bytes in proptest::collection::vec(any::<u8>(), 0..120), addr: u32, port: u16) {
        use dataplane::wire::icmp_quote::{IcmpQuote, QuoteSide};
        let mut b = bytes;
        if let Ok(mut q) = IcmpQuote::new_checked(&mut b[..]) {
            let _ = (q.msg_type(), q.inner_src_addr(), q.inner_dst_port(), q.next_hop_mtu());
            let _ = (q.inner_l4_first_byte(), q.verify_checksum(), q.inner_frag_offset());
            q.rewrite_inner(QuoteSide::Src, addr, port);
            q.rewrite_inner(QuoteSide::Dst, addr, port);
        }
    }

    /// A frame with tailroom (`process_frame`): an ICMP error may grow
    /// it, never past its room, and the verdict counts as in `check`.
    #[test]
    fn prop_frames_with_room(which in 0usize..7, ttl in 0u8..3, cut in 0usize..1600, grow in 0usize..700, m in 0usize..4) {
        let snap = snapshot(Method::ALL[m], true);
        let mut core = Core::new(0, 1, 64);
        core.sync(&snap);
        let mut f = seeds()[which].clone();
        if let Some(t) = f.get_mut(22) {
            *t = ttl;
        }
        f.truncate(cut.max(1));
        let len = f.len();
        f.resize(len + grow, 0);
        let drops = core.stats.total_drops();
        let mut fr = dataplane::Frame::new(&mut f, len);
        let v = core.process_frame(&snap, &mut fr, 0, 5, false);
        prop_assert!(fr.len() <= len + grow);
        let counted = core.stats.total_drops() - drops;
        match v {
            Verdict::Drop(_) => prop_assert_eq!(counted, 1),
            _ => prop_assert_eq!(counted, 0),
        }
    }

    #[test]
    fn prop_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200), port in 0u8..4, m in 0usize..4, redirected: bool, id in 0u16..2) {
        let snap = snapshot(Method::ALL[m], true);
        let mut core = Core::new(id, 2, 64);
        core.sync(&snap);
        let mut f = bytes;
        check(&mut core, &snap, &mut f, port, redirected)?;
    }

    #[test]
    fn prop_mutated_valid_frames(
        which in 0usize..7,
        edits in proptest::collection::vec((0usize..128, any::<u8>()), 1..6),
        cut in proptest::option::of(0usize..128),
        port in 0u8..2,
        m in 0usize..4,
        redirected: bool,
    ) {
        let snap = snapshot(Method::ALL[m], true);
        let mut core = Core::new(0, 1, 64);
        core.sync(&snap);
        let mut f = seeds()[which].clone();
        for (pos, b) in edits {
            if let Some(x) = f.get_mut(pos) {
                *x = b;
            }
        }
        if let Some(c) = cut {
            f.truncate(c);
        }
        check(&mut core, &snap, &mut f, port, redirected)?;
        // The same frame again hits whatever the first one created.
        check(&mut core, &snap, &mut f, port, redirected)?;
        core.tick(&snap, 10_000_000, 1024);
    }
}

/// The pipeline stage that decided a drop (`pipeline/mod.rs`' table; a
/// reason some stage shares with a later one is put at its usual place).
/// Exhaustive, so a new reason must be placed.
fn stage_of(r: DropReason) -> &'static str {
    use DropReason::*;
    match r {
        EthTruncated | EthUnsupported | EthNotForUs | EthSrcInvalid | VlanNotConfigured
        | Ipv4Malformed | Ipv4BadLength | TcpMalformed | UdpMalformed | BadPort => "parse",
        Ipv4BadChecksum | Ipv4BadOptions | Ipv4SourceRoute | Ipv4Fragment | Ipv4L2Broadcast
        | Ipv4MartianSource | Ipv4RpfFail | L4PortZero | TcpBadChecksum | UdpBadChecksum
        | L4ChecksumPartial | FragBad => "validate",
        FragNoFirst | FragTableFull => "classify",
        NotForUs | VrrpBackup | VrrpNotForUs => "classify",
        IcmpErrorNoConn | IcmpQuoteTruncated | IcmpQuoteMalformed | IcmpErrorAboutError
        | IcmpQuoteMismatch => "icmp_relay",
        IcmpRateLimited | MtuExceeded | TunNeedsFragmentation | IcmpErrorNoRoom => "icmp_error",
        ArpMalformed | ArpNotForUs | ArpWrongSubnet | ArpBadSenderMac | ArpIgnored
        | IcmpMalformed | IcmpBadChecksum | IcmpUnsupported | ProtoUnsupported | DipUnserved
        | ExceptionRateLimited | ArpVrrpBackup | VrrpBadTtl | VrrpTruncated | VrrpBadVersion
        | VrrpBadChecksum | VrrpBadFields => "local",
        TcpNoConn | NoService | NoRealServer | ConnTableFull | ConnKeyCollision
        | ConnDestUnavailable | ReplyNoConn | TtlExceeded | FullnatNoLport => "conn",
        NoRoute | NeighUnresolved | NeighTableFull => "route",
        TunNoRoom | FullnatProxyNoRoom | FragEncap => "xmit",
        RedirectRingFull | TxFull | TxPortInvalid | BadWorker => "worker",
    }
}

/// Where a frame's processing ended: the stage of its drop, `local` for
/// a consumed ARP, `tx` for a forwarded or answered frame.
fn stage(s: &Seen) -> &'static str {
    match s.verdict {
        Verdict::Tx(_) => "tx",
        Verdict::Consumed => "local",
        Verdict::Redirect(_) => "redirect",
        Verdict::Kernel(_) => "kernel",
        Verdict::Drop(r) if !s.parsed => {
            assert_eq!(stage_of(r), "parse", "{r:?} refused by parse");
            "parse"
        }
        Verdict::Drop(r) => stage_of(r),
    }
}

/// Structured frames (`framegen`) on two workers in every forwarding method, with the
/// invariants of `framegen::check`; then the share of frames that ended
/// at each stage, which must show the generator gets past `parse` (at
/// least 30 %) and through to `tx` (at least 5 %), and that every stage
/// before `route` decides some. `--nocapture` prints the shares.
#[test]
fn test_structured_frames_reach_every_stage() {
    let snaps = Method::ALL.map(framegen::snapshot);
    let counts: RefCell<BTreeMap<&'static str, u64>> = RefCell::new(BTreeMap::new());
    let reasons: RefCell<BTreeMap<&'static str, u64>> = RefCell::new(BTreeMap::new());
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..400), |data| {
            let mut case = framegen::case(&data);
            let snap = &snaps[case.method];
            let mut cores = framegen::cores(snap, 64);
            framegen::drive(&mut cores, snap, &mut case, 1, |s| {
                *counts.borrow_mut().entry(stage(&s)).or_default() += 1;
                if let Verdict::Drop(r) = s.verdict {
                    *reasons.borrow_mut().entry(r.name()).or_default() += 1;
                }
            });
            Ok(())
        })
        .unwrap();
    let counts = counts.into_inner();
    let total: u64 = counts.values().sum();
    let share = |k: &str| counts.get(k).copied().unwrap_or(0) as f64 / total as f64;
    for (k, n) in &counts {
        println!("{k:<9} {n:>6} {:>5.1} %", 100.0 * share(k));
    }
    println!("drops by reason: {:?}", reasons.borrow());
    assert!(1.0 - share("parse") >= 0.30, "past parse: {counts:?}");
    assert!(share("tx") >= 0.05, "reached tx: {counts:?}");
    // `route` drops need a reply to a client without a known neighbour:
    // a few per thousand frames, too few to require of every run.
    for k in ["validate", "classify", "local", "conn"] {
        assert!(share(k) > 0.0, "no frame ended in stage {k}: {counts:?}");
    }
}
