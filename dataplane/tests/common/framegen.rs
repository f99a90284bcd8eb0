//! Structured frames from unstructured bytes: the generator shared by the
//! fuzz target `fuzz/fuzz_targets/process.rs` (which includes this file by
//! `#[path]`) and the proptest in `tests/robustness.rs`.
//!
//! Random bytes almost never carry the port's MAC, so a fuzzer feeding
//! them to `Core::process` raw stops at `eth_not_for_us`. Here the input
//! bytes instead choose, field by field, a frame that is well-formed up to
//! the point the input decides to break it: an Ethernet header to the
//! arrival port's MAC (sometimes broadcast) from a unicast MAC (sometimes
//! not), an optional 802.1Q tag, then ARP or IPv4 carrying TCP, UDP, ICMP
//! or another protocol, with addresses and ports drawn from the director's
//! own (VIP, DIPs, real servers, the client) or from the input, correct
//! IPv4 and L4 checksums unless a flag breaks them, and optional IPv4
//! options, fragment bits, a wrong total length, truncation, padding and a
//! few byte overwrites. A case is one to three frames, the later ones
//! possibly a real server's reply to the first, so a single input can
//! create a connection and use it.
//!
//! Checksums are computed here (RFC 1071), not with `dataplane::wire`, so
//! a checksum bug in fulcrum is not mirrored by its own test input.

use super::*;
use dataplane::conn::FlowKey;
use dataplane::snapshot::{ChecksumCheck, Method, Snapshot};
use dataplane::{Core, Verdict};

/// The VLAN id [`snapshot`] configures on port 0.
pub const VLAN: u16 = 10;

/// The shared two-port director ([`super::snapshot`], all neighbours
/// known) with VLAN [`VLAN`] on port 0 and every L4 checksum verified on
/// port 1, so both VLAN paths and `verify_checksums: All` are reachable.
pub fn snapshot(method: Method) -> Snapshot {
    let mut s = super::snapshot(method, true);
    s.ports[0].vlans = vec![VLAN];
    s.ports[1].verify_checksums = ChecksumCheck::All;
    s
}

/// Reads the input front to back; past its end every read is 0, so any
/// input, even an empty one, makes a case.
pub struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, at: 0 }
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at = self.at.saturating_add(1);
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// True with probability `n`/256; false past the end of the input, so
    /// a short input builds an unbroken frame.
    pub fn rare(&mut self, n: u8) -> bool {
        self.u8() > 255 - n
    }

    /// `n` bytes, zero-filled past the end of the input.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

/// One frame and the port it arrives on (2 is a port the snapshot lacks).
pub struct Frame {
    pub port: u8,
    pub bytes: Vec<u8>,
}

/// One input's worth of traffic for one director.
pub struct Case {
    /// The forwarding method, an index of `Method::ALL` (NAT, DR, TUN,
    /// FullNAT).
    pub method: usize,
    /// Which of two workers receives the frames first.
    pub worker: u16,
    pub frames: Vec<Frame>,
}

/// RFC 1071 sum of `data` added to `acc` (not folded).
fn sum(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]));
    }
    acc
}

/// Folds and complements an RFC 1071 sum.
fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn pick<T: Copy>(r: &mut Reader<'_>, palette: &[T]) -> T {
    palette[usize::from(r.u8()) % palette.len()]
}

/// Source addresses: the client, its neighbours and a client no route
/// reaches, the real servers, the director's own and
/// martian or broadcast ones, or any.
fn src_ip(r: &mut Reader<'_>) -> [u8; 4] {
    match r.u8() % 12 {
        0 | 1 | 11 => CIP,
        2 | 3 => [10, 0, 0, 2 + r.u8() % 250],
        10 => [192, 0, 2, r.u8()],
        4 => RIP1,
        5 => RIP2,
        6 => pick(r, &[VIP, DIP_OUT, [10, 1, 0, 1]]),
        7 => pick(
            r,
            &[
                [127, 0, 0, 1],
                [0, 0, 0, 0],
                [224, 0, 0, 5],
                [10, 0, 0, 255],
            ],
        ),
        _ => r.u32().to_be_bytes(),
    }
}

/// Destination addresses: mostly the VIP, then DIPs, clients, others.
fn dst_ip(r: &mut Reader<'_>) -> [u8; 4] {
    match r.u8() % 10 {
        0..=4 => VIP,
        5 => DIP_OUT,
        6 => [10, 1, 0, 1],
        7 => pick(
            r,
            &[
                CIP,
                RIP1,
                [10, 0, 0, 77],
                [255, 255, 255, 255],
                [10, 0, 0, 255],
            ],
        ),
        _ => r.u32().to_be_bytes(),
    }
}

/// Ports: the services' and real servers', a client's, 0, or any.
fn l4_port(r: &mut Reader<'_>) -> u16 {
    match r.u8() % 8 {
        0..=2 => 80,
        3 => 53,
        4 => pick(r, &[8080, 5353, 22, 0]),
        5 | 6 => 40000 + u16::from(r.u8()),
        _ => r.u16(),
    }
}

/// A real server's reply to `key` (an inbound flow), as NAT would see it.
fn reply_of(key: &FlowKey, r: &mut Reader<'_>) -> ([u8; 4], [u8; 4], u16, u16) {
    let rip = if r.u8() & 3 != 3 { RIP1 } else { RIP2 };
    let rport = if key.proto == 17 { 5353 } else { 8080 };
    (rip, key.src_ip.to_be_bytes(), rport, key.src_port)
}

/// The case `data` describes: see the module documentation.
pub fn case(data: &[u8]) -> Case {
    let mut r = Reader::new(data);
    let ctl = r.u8();
    let mut frames = Vec::new();
    let mut last: Option<FlowKey> = None;
    for _ in 0..1 + (ctl >> 2) % 3 {
        let f = frame(&mut r, &mut last);
        frames.push(f);
    }
    Case {
        method: usize::from(ctl & 1) | usize::from(ctl >> 7) << 1,
        worker: u16::from((ctl >> 1) & 1),
        frames,
    }
}

/// One frame; `last` is the previous inbound TCP/UDP flow, which a reply
/// mirrors, and is updated.
fn frame(r: &mut Reader<'_>, last: &mut Option<FlowKey>) -> Frame {
    // 0, 1: TCP; 2: UDP; 3: ICMP; 4: ARP; 5: a reply; 6: another IP
    // protocol; 7: another EtherType.
    let kind = match r.u8() % 16 {
        0..=5 => 0,
        6 | 7 => 2,
        8 => 3,
        9 | 10 => 4,
        11..=13 => 5,
        14 => 6,
        _ => 7,
    };
    // After a flow, a quarter of the frames more are its real server's reply.
    let kind = if last.is_some() && r.rare(64) {
        5
    } else {
        kind
    };
    let port: u8 = if r.rare(8) { 2 } else { r.u8() & 1 };
    let port_mac = if port == 1 { IN_MAC } else { OUT_MAC };
    // Ethernet: destination the port's MAC, rarely broadcast or multicast
    // (ARP requests: broadcast half of the time); source a neighbour's
    // unicast MAC, rarely another or an invalid one.
    let dst_mac = if (kind == 4 && r.u8() & 1 == 0) || r.rare(16) {
        [0xff; 6]
    } else if r.rare(8) {
        [0x01, 0x00, 0x5e, 0, 0, r.u8()]
    } else {
        port_mac
    };
    let src_mac = if r.rare(8) {
        pick(r, &[[0; 6], [0x01, 0x80, 0xc2, 0, 0, 0], [0xff; 6]])
    } else if r.rare(16) {
        [0x02, r.u8(), r.u8(), r.u8(), r.u8(), r.u8()]
    } else if port == 1 {
        pick(r, &[RS1_MAC, RS2_MAC])
    } else {
        CLIENT_MAC
    };
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&dst_mac);
    out.extend_from_slice(&src_mac);
    if r.rare(16) {
        let vid = if r.rare(64) { r.u16() & 0x0fff } else { VLAN };
        let tpid: u16 = if r.rare(32) { 0x88a8 } else { 0x8100 };
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&vid.to_be_bytes());
    }
    match kind {
        4 => arp(r, &mut out),
        7 => {
            // Any EtherType and body.
            out.extend_from_slice(&r.u16().to_be_bytes());
            let n = usize::from(r.u8() % 64);
            out.extend(r.bytes(n));
        }
        _ => ipv4(r, &mut out, kind, last),
    }
    if r.u8() & 1 != 0 && out.len() < 60 {
        out.resize(60, 0);
    }
    if r.rare(32) {
        for _ in 0..1 + r.u8() % 4 {
            let at = usize::from(r.u8()) % out.len();
            out[at] = r.u8();
        }
    }
    if r.rare(24) {
        let cut = usize::from(r.u8()) % (out.len() + 1);
        out.truncate(cut);
    }
    Frame { port, bytes: out }
}

/// An ARP packet (RFC 826), Ethernet/IPv4 unless the input says otherwise.
fn arp(r: &mut Reader<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(&0x0806u16.to_be_bytes());
    let c = r.u8();
    let hw: [u8; 6] = if c & 0xf0 == 0xf0 {
        [r.u8(), r.u8(), r.u8(), r.u8(), r.u8(), r.u8()]
    } else {
        [0, 1, 0x08, 0x00, 6, 4]
    };
    out.extend_from_slice(&hw);
    let op: u16 = match c & 3 {
        0 | 1 => 1,
        2 => 2,
        _ => r.u16(),
    };
    out.extend_from_slice(&op.to_be_bytes());
    let sender_mac = match c & 0x0c {
        0x0c => [0x01, 0, 0x5e, 0, 0, 1],
        0x08 => RS1_MAC,
        _ => CLIENT_MAC,
    };
    out.extend_from_slice(&sender_mac);
    out.extend_from_slice(&src_ip(r));
    out.extend_from_slice(&[0; 6]);
    let target = match r.u8() % 4 {
        0 | 1 => VIP,
        2 => DIP_OUT,
        _ => dst_ip(r),
    };
    out.extend_from_slice(&target);
}

/// IPv4 with TCP (kinds 0, 1), UDP (2), ICMP (3), a reply to `last` (5)
/// or another protocol (6).
fn ipv4(r: &mut Reader<'_>, out: &mut Vec<u8>, kind: u8, last: &mut Option<FlowKey>) {
    out.extend_from_slice(&0x0800u16.to_be_bytes());
    let (mut src, mut dst) = (src_ip(r), dst_ip(r));
    let (mut sport, mut dport) = (l4_port(r), l4_port(r));
    let mut proto: u8 = match kind {
        0 | 1 => 6,
        2 => 17,
        3 => 1,
        5 => {
            if r.u8() & 1 == 0 {
                6
            } else {
                17
            }
        }
        _ => pick(r, &[47, 50, 132, 2]),
    };
    if kind == 5 {
        let key = last.unwrap_or(FlowKey {
            src_ip: ip(CIP),
            dst_ip: ip(VIP),
            src_port: 40000,
            dst_port: 80,
            proto,
        });
        proto = key.proto;
        (src, dst, sport, dport) = reply_of(&key, r);
    }
    let ttl = if r.rare(24) { r.u8() } else { 64 };
    let options: Vec<u8> = if r.rare(24) {
        match r.u8() % 5 {
            0 => vec![1, 1, 1, 0],                  // NOP NOP NOP END
            1 => vec![0x83, 7, 4, 10, 1, 0, 11, 0], // loose source route
            2 => vec![0x07, 1, 0, 0],               // record route, length 1
            3 => vec![0x44, 40, 5, 0],              // timestamp past the end
            _ => {
                let n = usize::from(r.u8() % 11) * 4;
                r.bytes(n)
            }
        }
    } else {
        Vec::new()
    };
    let frag: u16 = if r.rare(16) { r.u16() & 0x3fff } else { 0x4000 };
    // The L4 part, checksum field zero for now.
    let payload_len = match r.u8() {
        0..=199 => usize::from(r.u8() % 32),
        200..=249 => usize::from(r.u8()) * 4,
        _ => 1400 + usize::from(r.u8()),
    };
    let mut l4 = Vec::with_capacity(20 + payload_len);
    let csum_at = match proto {
        6 => {
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            l4.extend_from_slice(&r.u32().to_be_bytes());
            l4.extend_from_slice(&r.u32().to_be_bytes());
            let flags = match (kind, r.u8() % 5) {
                (5, _) => 0x12,
                (_, 0..=1) => 0x02,
                (_, 2) => 0x10,
                (_, 3) => 0x11,
                _ => r.u8(),
            };
            let off = if r.rare(16) { r.u8() >> 4 } else { 5 };
            l4.extend_from_slice(&[off << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
            Some(16)
        }
        17 => {
            l4.extend_from_slice(&sport.to_be_bytes());
            l4.extend_from_slice(&dport.to_be_bytes());
            let len = (8 + payload_len) as u16;
            let len = if r.rare(16) { r.u16() } else { len };
            l4.extend_from_slice(&len.to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
            Some(6)
        }
        1 => {
            let t = pick(r, &[8, 8, 8, 0, 13, 3]);
            let code = if r.rare(32) { r.u8() } else { 0 };
            l4.extend_from_slice(&[t, code, 0, 0]);
            l4.extend_from_slice(&r.u32().to_be_bytes());
            Some(2)
        }
        _ => None,
    };
    l4.extend(r.bytes(payload_len));
    if let Some(at) = csum_at {
        let c = if proto == 1 {
            fold(sum(&l4, 0))
        } else {
            let mut pseudo = Vec::with_capacity(12);
            pseudo.extend_from_slice(&src);
            pseudo.extend_from_slice(&dst);
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            let c = fold(sum(&l4, sum(&pseudo, 0)));
            // UDP sends an all-ones checksum for a computed 0 (RFC 768).
            if proto == 17 && c == 0 {
                0xffff
            } else {
                c
            }
        };
        let c = if r.rare(24) {
            c ^ u16::from(r.u8() | 1)
        } else {
            c
        };
        if let Some(field) = l4.get_mut(at..at + 2) {
            field.copy_from_slice(&c.to_be_bytes());
        }
    }
    let hl = 20 + options.len();
    let total = (hl + l4.len()) as u16;
    let total = if r.rare(16) { r.u16() } else { total };
    let mut iph = Vec::with_capacity(hl);
    iph.push(0x40 | (hl / 4) as u8);
    iph.push(0);
    iph.extend_from_slice(&total.to_be_bytes());
    iph.extend_from_slice(&r.u16().to_be_bytes());
    iph.extend_from_slice(&frag.to_be_bytes());
    iph.extend_from_slice(&[ttl, proto, 0, 0]);
    iph.extend_from_slice(&src);
    iph.extend_from_slice(&dst);
    iph.extend_from_slice(&options);
    let c = fold(sum(&iph, 0));
    let c = if r.rare(16) { c ^ 0x0101 } else { c };
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&iph);
    out.extend_from_slice(&l4);
    if kind != 5 && matches!(proto, 6 | 17) {
        *last = Some(FlowKey {
            src_ip: u32::from_be_bytes(src),
            dst_ip: u32::from_be_bytes(dst),
            src_port: sport,
            dst_port: dport,
            proto,
        });
    }
}

/// What one frame did: whether stage `parse` accepted it, and the verdict
/// (after the owner worker processed it, for a redirect).
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub parsed: bool,
    pub verdict: Verdict,
}

/// Processes `frame` on `core` and checks what must hold for any input:
/// no panic, the frame's length unchanged, a `Drop` counted exactly once
/// and anything else not counted as a drop, a parse refusal final, `rx_*`
/// counted only for frames from a port, at most one connection created,
/// `Tx` only to a port the snapshot has.
pub fn check(
    core: &mut Core,
    snap: &Snapshot,
    frame: &mut [u8],
    port: u8,
    now_ms: u64,
    redirected: bool,
) -> Seen {
    let len = frame.len();
    let parsed = core.parse(snap, frame, port);
    let (drops, conns, rx) = (
        core.stats.total_drops(),
        core.stats.conns_created,
        core.stats.rx_pkts,
    );
    let verdict = core.process(snap, frame, port, now_ms, redirected);
    assert_eq!(frame.len(), len, "process never changes a frame's length");
    let counted = core.stats.total_drops() - drops;
    match verdict {
        Verdict::Drop(_) => assert_eq!(counted, 1, "{verdict:?} counted once"),
        _ => assert_eq!(counted, 0, "{verdict:?} counts no drop"),
    }
    if let Err(r) = parsed {
        assert_eq!(verdict, Verdict::Drop(r), "a parse refusal is final");
    }
    if let Verdict::Tx(p) = verdict {
        assert!(usize::from(p) < snap.ports.len(), "Tx({p}) to a real port");
    }
    assert!(core.stats.conns_created - conns <= 1);
    assert_eq!(core.stats.rx_pkts - rx, u64::from(!redirected));
    core.arp_out.clear();
    core.neigh_out.clear();
    core.template_out.clear();
    Seen {
        parsed: parsed.is_ok(),
        verdict,
    }
}

/// Runs `case` on two workers sharing `snap` (`cores[i].id == i`): each
/// frame on `cores[case.worker]`, a redirected frame then on its owner
/// (which must not redirect it again). Reports each frame to `seen`.
pub fn drive(
    cores: &mut [Core; 2],
    snap: &Snapshot,
    case: &mut Case,
    now_ms: u64,
    mut seen: impl FnMut(Seen),
) {
    for fr in &mut case.frames {
        let first = check(
            &mut cores[usize::from(case.worker)],
            snap,
            &mut fr.bytes,
            fr.port,
            now_ms,
            false,
        );
        let s = match first.verdict {
            Verdict::Redirect(o) => {
                assert!(o < 2 && o != case.worker, "redirect to the other worker");
                let again = check(
                    &mut cores[usize::from(o)],
                    snap,
                    &mut fr.bytes,
                    fr.port,
                    now_ms,
                    true,
                );
                assert!(
                    !matches!(again.verdict, Verdict::Redirect(_)),
                    "never redirected twice"
                );
                Seen {
                    parsed: true,
                    ..again
                }
            }
            _ => first,
        };
        seen(s);
    }
}

/// Two workers' cores for [`drive`], synced to `snap`, each with room for
/// `max_conns` connections.
pub fn cores(snap: &Snapshot, max_conns: u32) -> [Core; 2] {
    let mut c = [Core::new(0, 2, max_conns), Core::new(1, 2, max_conns)];
    for core in &mut c {
        core.sync(snap);
    }
    c
}
