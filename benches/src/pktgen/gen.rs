//! The frame sequence of a [`Scenario`]: a streaming [`Generator`] (for
//! pcap files of any size) and the pre-built [`Pass`] arena the DPDK TX
//! loop sends from.
//!
//! Layer: benchmark tooling, slow path (frames are built before
//! transmission). Guarantees: the order documented on [`Scenario`] (round
//! 0 = every flow's first step, then one step of every established flow
//! per round); TCP flows are SYN (seq = ISN), ACK (seq ISN+1, ack 1: the
//! server's ISN is taken as 0), data segments whose sequence numbers
//! advance by the bytes sent (RFC 9293 §3.4), then FIN+ACK; every checksum
//! is a full RFC 1071 sum except the one a malformed packet's defect
//! concerns; the same scenario always yields the same bytes (draws come
//! from a seeded SplitMix64). Refuses: a pass larger than
//! [`PASS_MAX_BYTES`] in memory.

use super::scenario::{Defect, IcmpError, Kind, Scenario, SizeDist, FCS_LEN};
use super::stamp::{StampAt, STAMP_LEN};
use super::wire::{
    fill_ipv4_checksum, icmp_frame, l4_checksum, tcp_frame, udp_frame, write_ipv4, Addrs, TcpSeg,
    ACK, ETH_LEN, FIN, IPV4_LEN, MIN_FRAME_LEN, PROTO_TCP, PROTO_UDP, PSH, SYN, TCP_LEN, UDP_LEN,
};

/// Client-side TCP initial sequence number of every generated flow (SYN
/// floods draw theirs at random).
pub const CLIENT_ISN: u32 = 1_000;
/// Largest pre-built pass, in frame bytes (4 GiB).
pub const PASS_MAX_BYTES: u64 = 4 << 30;

/// Protocol of one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowProto {
    /// TCP to `vip:vport`.
    Tcp,
    /// UDP to `vip:vport`.
    Udp,
    /// ICMP echo requests to the VIP.
    Icmp,
}

/// What one generated frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// TCP SYN opening the flow.
    Syn,
    /// TCP ACK completing the client's side of the handshake.
    Ack,
    /// TCP data segment (ACK, plus PSH when it carries bytes).
    Data,
    /// TCP FIN+ACK.
    Fin,
    /// UDP datagram.
    Udp,
    /// ICMP echo request.
    Echo,
    /// ICMP error about the flow.
    IcmpError(IcmpError),
    /// A TCP segment of the flow with this defect.
    Malformed(Defect),
    /// A SYN-flood SYN (random source).
    FloodSyn,
}

/// Description of one generated frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Flow index (the SYN index for a SYN flood).
    pub flow: u32,
    /// What the frame is.
    pub step: Step,
    /// TCP payload bytes (0 for other frames).
    pub tcp_payload_len: u32,
    /// Where a TX stamp fits, if the payload has room for one.
    pub stamp: Option<StampAt>,
}

/// SplitMix64: a small, well-mixed deterministic generator (Steele et al.,
/// "Fast splittable pseudorandom number generators", 2014).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }
}

/// SplitMix64's output function: a bijective mix of 64 bits.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The scenario's frames in order, one at a time, into a caller's buffer.
#[derive(Debug)]
pub struct Generator<'s> {
    s: &'s Scenario,
    total: u64,
    emitted: u64,
    round: u32,
    next_flow: u32,
    n_established: u32,
    /// Payload bytes sent so far by each established TCP flow.
    sent: Vec<u32>,
    rng: SplitMix64,
    /// (cumulative weight, wire size) of the size distribution.
    sizes: Vec<(u64, u16)>,
    flow_rng_seed: u64,
}

impl<'s> Generator<'s> {
    /// A generator at the first frame of one pass of `s`.
    ///
    /// # Panics
    /// If `s` does not validate ([`Scenario::validate`]).
    pub fn new(s: &'s Scenario) -> Self {
        if let Err(e) = s.validate() {
            panic!("Generator::new: invalid scenario: {e}");
        }
        let mut acc = 0u64;
        let sizes = match &s.size {
            SizeDist::Fixed(n) => vec![(1, *n)],
            SizeDist::Weighted(v) => v
                .iter()
                .filter(|&&(_, w)| w > 0)
                .map(|&(n, w)| {
                    acc += u64::from(w);
                    (acc, n)
                })
                .collect(),
        };
        let n_established = s.n_established_flows();
        Generator {
            s,
            total: s.frames_per_pass(),
            emitted: 0,
            round: 0,
            next_flow: 0,
            n_established,
            sent: vec![0; n_established as usize],
            rng: SplitMix64::new(s.seed),
            sizes,
            flow_rng_seed: mix64(s.seed ^ 0x5eed_f10e),
        }
    }

    /// Frames in one pass.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The protocol of flow `i`: drawn from the scenario's `mix` weights by
    /// a hash of the seed and `i` (so it does not depend on the order of
    /// generation).
    pub fn flow_proto(&self, i: u32) -> FlowProto {
        let m = self.s.mix;
        let total = u64::from(m.tcp) + u64::from(m.udp) + u64::from(m.icmp);
        let r =
            mix64(self.flow_rng_seed ^ u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)) % total;
        if r < u64::from(m.tcp) {
            FlowProto::Tcp
        } else if r < u64::from(m.tcp) + u64::from(m.udp) {
            FlowProto::Udp
        } else {
            FlowProto::Icmp
        }
    }

    /// Draws a data frame's wire size (FCS included) from the distribution.
    fn draw_size(&mut self) -> u16 {
        if self.sizes.len() == 1 {
            return self.sizes[0].1;
        }
        let total = self.sizes.last().map_or(1, |&(c, _)| c);
        let r = self.rng.next_u64() % total;
        self.sizes
            .iter()
            .find(|&&(c, _)| r < c)
            .map_or(self.sizes[0].1, |&(_, n)| n)
    }

    /// Writes the next frame into `out` (cleared first) and describes it;
    /// `None` after the last frame of the pass.
    pub fn next_frame(&mut self, out: &mut Vec<u8>) -> Option<FrameInfo> {
        if self.emitted == self.total {
            return None;
        }
        self.emitted += 1;
        if self.s.kind == Kind::SynFlood {
            let flow = (self.emitted - 1) as u32;
            return Some(self.flood_syn(out, flow));
        }
        let limit = if self.round == 0 {
            self.s.flows
        } else {
            self.n_established
        };
        if self.next_flow == limit {
            self.round += 1;
            self.next_flow = 0;
        }
        let flow = self.next_flow;
        self.next_flow += 1;
        Some(self.flow_frame(out, flow, self.round))
    }

    fn client_addrs(&self, flow: u32) -> (Addrs, u16) {
        let (cip, cport) = self.s.flow_client(flow);
        let a = Addrs {
            dst_mac: self.s.dst_mac.0,
            src_mac: self.s.src_mac.0,
            src: cip,
            dst: u32::from(self.s.vip),
        };
        (a, cport)
    }

    fn flood_syn(&mut self, out: &mut Vec<u8>, flow: u32) -> FrameInfo {
        let r = self.rng.next_u64();
        let host = self.s.clients.net + 1 + ((r >> 32) % self.s.clients.hosts()) as u32;
        let sport = 1024 + ((r >> 16) as u16 % (65_535 - 1024 + 1));
        let isn = self.rng.next_u64() as u32;
        let a = Addrs {
            dst_mac: self.s.dst_mac.0,
            src_mac: self.s.src_mac.0,
            src: host,
            dst: u32::from(self.s.vip),
        };
        let t = TcpSeg {
            sport,
            dport: self.s.vport,
            seq: isn,
            ack: 0,
            flags: SYN,
        };
        tcp_frame(out, &a, &t, 0);
        FrameInfo {
            flow,
            step: Step::FloodSyn,
            tcp_payload_len: 0,
            stamp: None,
        }
    }

    /// Index of the extra (ICMP error / malformed) step, if the kind has one.
    fn extra_step(&self) -> Option<u32> {
        match self.s.kind {
            Kind::IcmpErrors(_) | Kind::Malformed(_) => Some(2 + self.s.data_segments),
            Kind::Flows | Kind::SynFlood => None,
        }
    }

    fn flow_frame(&mut self, out: &mut Vec<u8>, flow: u32, step: u32) -> FrameInfo {
        let (a, cport) = self.client_addrs(flow);
        let proto = self.flow_proto(flow);
        if Some(step) == self.extra_step() {
            let k = flow as usize;
            match &self.s.kind {
                Kind::IcmpErrors(v) => {
                    let e = v[k % v.len()];
                    self.icmp_error(out, &a, cport, proto, e);
                    return info(flow, Step::IcmpError(e), 0, None);
                }
                Kind::Malformed(v) => {
                    let d = v[k % v.len()];
                    let seq = CLIENT_ISN.wrapping_add(1).wrapping_add(self.sent[k]);
                    malformed(out, &a, cport, self.s.vport, seq, d);
                    return info(flow, Step::Malformed(d), 0, None);
                }
                Kind::Flows | Kind::SynFlood => unreachable!("no extra step"),
            }
        }
        match proto {
            FlowProto::Tcp => self.tcp_step(out, &a, cport, flow, step),
            FlowProto::Udp => {
                let payload = self.data_payload(ETH_LEN + IPV4_LEN + UDP_LEN);
                udp_frame(out, &a, cport, self.s.vport, payload);
                let stamp = stamp_at(
                    payload,
                    ETH_LEN + IPV4_LEN + UDP_LEN,
                    ETH_LEN + IPV4_LEN + 6,
                    true,
                );
                info(flow, Step::Udp, 0, stamp)
            }
            FlowProto::Icmp => {
                let payload = self.data_payload(ETH_LEN + IPV4_LEN + 8);
                let id = (flow as u16).to_be_bytes();
                let seq = (step as u16).to_be_bytes();
                let body = &ZEROS[..payload];
                icmp_frame(out, &a, 8, 0, [id[0], id[1], seq[0], seq[1]], body);
                let stamp = stamp_at(
                    payload,
                    ETH_LEN + IPV4_LEN + 8,
                    ETH_LEN + IPV4_LEN + 2,
                    false,
                );
                info(flow, Step::Echo, 0, stamp)
            }
        }
    }

    /// Payload bytes of a data frame whose headers take `hdr_len` bytes.
    fn data_payload(&mut self, hdr_len: usize) -> usize {
        let frame = usize::from(self.draw_size() - FCS_LEN);
        frame.saturating_sub(hdr_len)
    }

    fn tcp_step(
        &mut self,
        out: &mut Vec<u8>,
        a: &Addrs,
        cport: u16,
        flow: u32,
        step: u32,
    ) -> FrameInfo {
        let k = flow as usize;
        let last = self.s.steps_per_flow() - 1;
        let mut t = TcpSeg {
            sport: cport,
            dport: self.s.vport,
            seq: CLIENT_ISN,
            ack: 0,
            flags: SYN,
        };
        let (kind, payload) = if step == 0 {
            (Step::Syn, 0)
        } else {
            // A SYN consumes one sequence number (RFC 9293 §3.4).
            t.seq = CLIENT_ISN.wrapping_add(1).wrapping_add(self.sent[k]);
            t.ack = 1;
            if step == 1 {
                t.flags = ACK;
                (Step::Ack, 0)
            } else if self.s.close && step == last {
                t.flags = FIN | ACK;
                (Step::Fin, 0)
            } else {
                // A minimum frame stays a pure ACK (its last 6 bytes are
                // Ethernet padding), as the bench scenarios always were.
                let mut payload = self.data_payload(ETH_LEN + IPV4_LEN + TCP_LEN);
                if payload + ETH_LEN + IPV4_LEN + TCP_LEN <= MIN_FRAME_LEN {
                    payload = 0;
                }
                t.flags = if payload > 0 { ACK | PSH } else { ACK };
                self.sent[k] = self.sent[k].wrapping_add(payload as u32);
                (Step::Data, payload)
            }
        };
        tcp_frame(out, a, &t, payload);
        let stamp = stamp_at(
            payload,
            ETH_LEN + IPV4_LEN + TCP_LEN,
            ETH_LEN + IPV4_LEN + 16,
            false,
        );
        info(flow, kind, payload as u32, stamp)
    }

    /// An ICMP error toward the VIP about flow (`a`, `cport`), quoting the
    /// reply-direction packet `vip:vport → cip:cport` (RFC 792: the IP
    /// header plus the first 64 bits of its data).
    fn icmp_error(&self, out: &mut Vec<u8>, a: &Addrs, cport: u16, proto: FlowProto, e: IcmpError) {
        let gw = u32::from(self.s.gateway);
        let (src, icmp_type, code, rest, quoted_len) = match e {
            IcmpError::PortUnreachable => (a.src, 3, 3, [0; 4], 0),
            IcmpError::HostUnreachable => (gw, 3, 1, [0; 4], 0),
            IcmpError::FragNeeded(mtu) => {
                let m = mtu.to_be_bytes();
                // RFC 1191 §4: next-hop MTU in the low 16 bits.
                (gw, 3, 4, [0, 0, m[0], m[1]], 1500)
            }
            IcmpError::TimeExceeded => (gw, 11, 0, [0; 4], 0),
        };
        let (l4_proto, l4_hdr) = match proto {
            FlowProto::Udp => (PROTO_UDP, UDP_LEN),
            FlowProto::Tcp | FlowProto::Icmp => (PROTO_TCP, TCP_LEN),
        };
        let total = if quoted_len > 0 {
            quoted_len
        } else {
            (IPV4_LEN + l4_hdr) as u16
        };
        let mut q = [0u8; IPV4_LEN + 8];
        write_ipv4(&mut q[..IPV4_LEN], a.dst, a.src, l4_proto, total, 64);
        q[20..22].copy_from_slice(&self.s.vport.to_be_bytes());
        q[22..24].copy_from_slice(&cport.to_be_bytes());
        if l4_proto == PROTO_TCP {
            // The server's first data byte: ISN 0 + 1, what the client acks.
            q[24..28].copy_from_slice(&1u32.to_be_bytes());
        } else {
            q[24..26].copy_from_slice(&(total - IPV4_LEN as u16).to_be_bytes());
        }
        let err_addrs = Addrs {
            src,
            dst: a.dst,
            ..*a
        };
        icmp_frame(out, &err_addrs, icmp_type, code, rest, &q);
    }
}

const ZEROS: [u8; 1518] = [0; 1518];

fn info(flow: u32, step: Step, tcp_payload_len: u32, stamp: Option<StampAt>) -> FrameInfo {
    FrameInfo {
        flow,
        step,
        tcp_payload_len,
        stamp,
    }
}

fn stamp_at(payload: usize, off: usize, csum_off: usize, udp: bool) -> Option<StampAt> {
    (payload >= STAMP_LEN).then_some(StampAt {
        off: off as u16,
        csum_off: csum_off as u16,
        udp,
    })
}

/// Writes a 60-byte TCP ACK of the flow (`a`, `sport` → `dport`, `seq`)
/// into `out`, then applies `d` (see [`Defect`] for each one's shape).
pub fn malformed(out: &mut Vec<u8>, a: &Addrs, sport: u16, dport: u16, seq: u32, d: Defect) {
    let t = TcpSeg {
        sport,
        dport,
        seq,
        ack: 1,
        flags: ACK,
    };
    tcp_frame(out, a, &t, 0);
    const IP: usize = ETH_LEN;
    const TCP: usize = ETH_LEN + IPV4_LEN;
    let set_total = |out: &mut Vec<u8>, n: u16| {
        out[IP + 2..IP + 4].copy_from_slice(&n.to_be_bytes());
        fill_ipv4_checksum(&mut out[IP..IP + IPV4_LEN]);
    };
    let refill_tcp = |out: &mut Vec<u8>| {
        out[TCP + 16..TCP + 18].copy_from_slice(&[0, 0]);
        let c = l4_checksum(&out[TCP..TCP + TCP_LEN], a.src, a.dst, PROTO_TCP);
        out[TCP + 16..TCP + 18].copy_from_slice(&c.to_be_bytes());
    };
    match d {
        Defect::TruncatedEthernet => out.truncate(10),
        Defect::TruncatedIpv4 => out.truncate(IP + 12),
        Defect::BadIpVersion => {
            out[IP] = 0x55;
            fill_ipv4_checksum(&mut out[IP..IP + IPV4_LEN]);
        }
        Defect::BadIhl => {
            out[IP] = 0x44;
            fill_ipv4_checksum(&mut out[IP..IP + IPV4_LEN]);
        }
        // ±1 in one word can never keep a ones'-complement sum at 0xffff.
        Defect::BadIpChecksum => out[IP + 11] ^= 1,
        Defect::TotalLengthTooLong => set_total(out, (IPV4_LEN + TCP_LEN + 100) as u16),
        Defect::TotalLengthTooShort => set_total(out, 16),
        Defect::TcpDataOffsetShort => {
            out[TCP + 12] = 4 << 4;
            refill_tcp(out);
        }
        Defect::TcpDataOffsetLong => {
            out[TCP + 12] = 15 << 4;
            refill_tcp(out);
        }
        Defect::TcpTruncated => set_total(out, (IPV4_LEN + 8) as u16),
        Defect::BadTcpChecksum => out[TCP + 17] ^= 1,
        Defect::TcpSynFin => {
            out[TCP + 13] = SYN | FIN;
            refill_tcp(out);
        }
    }
}

/// Placement of one frame in a [`Pass`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef {
    /// Offset of the frame in the arena, in bytes.
    pub off: usize,
    /// Frame length in bytes (no FCS).
    pub len: u16,
    /// Where the TX stamp goes, if the frame has room for one.
    pub stamp: Option<StampAt>,
}

/// One pass of a scenario, pre-built: every frame's bytes back to back in
/// one arena, plus their placement. The DPDK TX loop copies from here, so
/// it never builds or allocates a frame.
#[derive(Debug)]
pub struct Pass {
    bytes: Vec<u8>,
    frames: Vec<FrameRef>,
}

impl Pass {
    /// Builds one pass of `s`.
    ///
    /// # Errors
    /// A message if the pass would take more than [`PASS_MAX_BYTES`].
    ///
    /// # Panics
    /// If `s` does not validate.
    pub fn build(s: &Scenario) -> Result<Pass, String> {
        let mut g = Generator::new(s);
        let n = g.total();
        let mut bytes = Vec::new();
        let mut frames = Vec::with_capacity(n as usize);
        let mut buf = Vec::with_capacity(2048);
        while let Some(fi) = g.next_frame(&mut buf) {
            if (bytes.len() + buf.len()) as u64 > PASS_MAX_BYTES {
                return Err(format!(
                    "one pass of the scenario ({n} frames) needs more than {} GiB: \
                     lower flows or data_segments",
                    PASS_MAX_BYTES >> 30
                ));
            }
            frames.push(FrameRef {
                off: bytes.len(),
                len: buf.len() as u16,
                stamp: fi.stamp,
            });
            bytes.extend_from_slice(&buf);
        }
        Ok(Pass { bytes, frames })
    }

    /// Frames in the pass.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the pass has no frame (never, for a valid scenario).
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frame `k`'s bytes and placement.
    ///
    /// # Panics
    /// If `k >= len()`.
    #[inline]
    pub fn frame(&self, k: usize) -> (&[u8], FrameRef) {
        let r = self.frames[k];
        (&self.bytes[r.off..r.off + usize::from(r.len)], r)
    }

    /// Frames that carry a stamp when sent.
    pub fn n_stampable(&self) -> usize {
        self.frames.iter().filter(|f| f.stamp.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use std::collections::HashSet;

    fn scen(src: &str) -> Scenario {
        Scenario::parse(src, "t.ron").unwrap_or_else(|e| panic!("{e}"))
    }

    fn all(s: &Scenario) -> Vec<(Vec<u8>, FrameInfo)> {
        let mut g = Generator::new(s);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(i) = g.next_frame(&mut buf) {
            out.push((buf.clone(), i));
        }
        assert_eq!(out.len() as u64, s.frames_per_pass());
        out
    }

    /// Decoded TCP/UDP/ICMP view of a valid frame, every checksum checked
    /// with etherparse: (src, sport, dst, dport, proto, flags, seq, payload).
    struct D {
        src: [u8; 4],
        sport: u16,
        dport: u16,
        proto: u8,
        flags: (bool, bool, bool, bool),
        seq: u32,
        payload: usize,
    }

    fn decode(f: &[u8]) -> D {
        let p = SlicedPacket::from_ethernet(f).expect("etherparse parses the frame");
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
        assert!(f.len() >= 60 && f.len() <= 1514, "frame length {}", f.len());
        let src = h.source;
        match &p.transport {
            Some(TransportSlice::Tcp(t)) => {
                let th = t.to_header();
                assert_eq!(
                    th.checksum,
                    th.calc_checksum_ipv4(&h, t.payload()).unwrap(),
                    "TCP checksum"
                );
                D {
                    src,
                    sport: th.source_port,
                    dport: th.destination_port,
                    proto: 6,
                    flags: (th.syn, th.ack, th.fin, th.psh),
                    seq: th.sequence_number,
                    payload: t.payload().len(),
                }
            }
            Some(TransportSlice::Udp(u)) => {
                let uh = u.to_header();
                assert_eq!(
                    uh.checksum,
                    uh.calc_checksum_ipv4(&h, u.payload()).unwrap(),
                    "UDP checksum"
                );
                D {
                    src,
                    sport: uh.source_port,
                    dport: uh.destination_port,
                    proto: 17,
                    flags: (false, false, false, false),
                    seq: 0,
                    payload: u.payload().len(),
                }
            }
            Some(TransportSlice::Icmpv4(i)) => {
                assert_eq!(
                    i.header().checksum,
                    i.icmp_type().calc_checksum(i.payload()),
                    "ICMP checksum"
                );
                D {
                    src,
                    sport: 0,
                    dport: 0,
                    proto: 1,
                    flags: (false, false, false, false),
                    seq: 0,
                    payload: i.payload().len(),
                }
            }
            _ => panic!("no transport"),
        }
    }

    #[test]
    fn test_tcp_flow_sequence_and_flags() {
        let s = scen("(flows: 3, data_segments: 4, close: true, size: Weighted([(64, 1), (200, 1), (1518, 1)]))");
        let frames = all(&s);
        assert_eq!(frames.len(), 3 * 7);
        let mut per_flow: Vec<Vec<D>> = (0..3).map(|_| Vec::new()).collect();
        for (k, (f, i)) in frames.iter().enumerate() {
            // Round-robin: frame k is flow k % 3, step k / 3.
            assert_eq!(i.flow as usize, k % 3, "frame {k}");
            per_flow[k % 3].push(decode(f));
        }
        for (flow, seg) in per_flow.iter().enumerate() {
            let (cip, cport) = s.flow_client(flow as u32);
            assert!(seg
                .iter()
                .all(|d| d.src == cip.to_be_bytes() && d.sport == cport && d.dport == 80));
            assert_eq!(seg[0].flags, (true, false, false, false), "SYN first");
            assert_eq!(seg[0].seq, CLIENT_ISN);
            assert_eq!(seg[1].flags, (false, true, false, false), "then ACK");
            assert_eq!(seg[1].seq, CLIENT_ISN + 1);
            let mut next = CLIENT_ISN + 1;
            for d in &seg[2..6] {
                assert_eq!(d.seq, next, "data seq advances by bytes sent");
                assert_eq!((d.flags.0, d.flags.1, d.flags.2), (false, true, false));
                assert_eq!(d.flags.3, d.payload > 0, "PSH with data");
                next += d.payload as u32;
            }
            assert_eq!(seg[6].flags, (false, true, true, false), "FIN+ACK last");
            assert_eq!(seg[6].seq, next);
        }
    }

    #[test]
    fn test_legacy_order_new_flows() {
        // 4 flows, half new: round 0 = 4 SYNs, then the 2 established flows.
        let s = scen("(flows: 4, new_flows_pct: 50, data_segments: 1)");
        let f = all(&s);
        let steps: Vec<(u32, Step)> = f.iter().map(|(_, i)| (i.flow, i.step)).collect();
        assert_eq!(
            steps,
            vec![
                (0, Step::Syn),
                (1, Step::Syn),
                (2, Step::Syn),
                (3, Step::Syn),
                (0, Step::Ack),
                (1, Step::Ack),
                (0, Step::Data),
                (1, Step::Data),
            ]
        );
        for (b, _) in &f {
            assert_eq!(b.len(), 60);
        }
    }

    #[test]
    fn test_size_distribution_imix() {
        let s = scen("(flows: 100, mix: (udp: 1), data_segments: 118, size: Weighted([(64, 7), (594, 4), (1518, 1)]))");
        let mut n = [0u32; 3];
        for (b, i) in all(&s) {
            assert_eq!(i.step, Step::Udp);
            let wire = b.len() + 4;
            let idx = [64, 594, 1518]
                .iter()
                .position(|&x| x == wire)
                .expect("an IMIX size");
            n[idx] += 1;
        }
        let total: u32 = n.iter().sum();
        assert_eq!(total, 12_000);
        for (got, w) in n.iter().zip([7.0, 4.0, 1.0]) {
            let want = f64::from(total) * w / 12.0;
            assert!((f64::from(*got) - want).abs() < want * 0.05, "{n:?}");
        }
    }

    #[test]
    fn test_protocol_mix() {
        let s = scen("(flows: 3000, mix: (tcp: 1, udp: 1, icmp: 1), size: Fixed(128))");
        let mut n = [0u32; 3];
        for (b, i) in all(&s) {
            let d = decode(&b);
            n[match d.proto {
                6 => 0,
                17 => 1,
                _ => 2,
            }] += 1;
            match i.step {
                Step::Udp | Step::Echo => assert_eq!(d.payload, 128 - 4 - 42),
                Step::Syn | Step::Ack => assert_eq!(d.payload, 0),
                other => panic!("{other:?}"),
            }
        }
        for x in n {
            assert!((1700..2300).contains(&x), "{n:?}");
        }
    }

    #[test]
    fn test_one_million_distinct_flows() {
        let s = scen("(flows: 1000000, new_flows_pct: 100)");
        let mut g = Generator::new(&s);
        let mut buf = Vec::new();
        let mut seen = HashSet::with_capacity(1_000_000);
        while let Some(i) = g.next_frame(&mut buf) {
            assert_eq!(i.step, Step::Syn);
            let key = (
                u32::from_be_bytes([buf[26], buf[27], buf[28], buf[29]]),
                u16::from_be_bytes([buf[34], buf[35]]),
            );
            assert!(seen.insert(key), "duplicate 5-tuple {key:?}");
        }
        assert_eq!(seen.len(), 1_000_000);
        // Full check of a sample with etherparse.
        for k in [0u32, 59_999, 60_000, 999_999] {
            let (cip, cport) = s.flow_client(k);
            let d = decode(&all_frame(&s, u64::from(k)));
            assert_eq!((d.src, d.sport), (cip.to_be_bytes(), cport));
        }
    }

    fn all_frame(s: &Scenario, k: u64) -> Vec<u8> {
        let mut g = Generator::new(s);
        let mut buf = Vec::new();
        for _ in 0..=k {
            g.next_frame(&mut buf).unwrap();
        }
        buf
    }

    #[test]
    fn test_syn_flood_random_sources() {
        let s = scen("(kind: SynFlood, flows: 5000, clients: \"10.128.0.0/9\")");
        let mut srcs = HashSet::new();
        for (b, i) in all(&s) {
            let d = decode(&b);
            assert_eq!(i.step, Step::FloodSyn);
            assert_eq!(d.flags, (true, false, false, false));
            let ip = u32::from_be_bytes(d.src);
            assert!((0x0a80_0001..0x0aff_ffff).contains(&ip));
            assert!(d.sport >= 1024);
            srcs.insert(ip);
        }
        assert!(srcs.len() > 4900, "sources are random: {}", srcs.len());
    }

    #[test]
    fn test_icmp_errors_quote_the_flow() {
        let s = scen("(kind: IcmpErrors([PortUnreachable, FragNeeded(1400), HostUnreachable, TimeExceeded]), flows: 8, mix: (tcp: 1, udp: 1))");
        let g = Generator::new(&s);
        let mut n = 0;
        for (b, i) in all(&s) {
            let Step::IcmpError(e) = i.step else { continue };
            n += 1;
            let d = decode(&b);
            assert_eq!(d.proto, 1);
            let (cip, cport) = s.flow_client(i.flow);
            let want_src = if e == IcmpError::PortUnreachable {
                cip
            } else {
                0x0a00_00fe
            };
            assert_eq!(u32::from_be_bytes(d.src), want_src);
            let icmp = &b[34..];
            let (ty, code) = match e {
                IcmpError::PortUnreachable => (3, 3),
                IcmpError::HostUnreachable => (3, 1),
                IcmpError::FragNeeded(_) => (3, 4),
                IcmpError::TimeExceeded => (11, 0),
            };
            assert_eq!((icmp[0], icmp[1]), (ty, code));
            if let IcmpError::FragNeeded(m) = e {
                assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), m);
            }
            // Quoted: VIP:80 -> CIP:cport, valid header, the flow's protocol.
            let q = etherparse::Ipv4HeaderSlice::from_slice(&icmp[8..28])
                .unwrap()
                .to_header();
            assert_eq!(q.header_checksum, q.calc_header_checksum());
            assert_eq!(
                (q.source, q.destination),
                ([10, 0, 0, 100], cip.to_be_bytes())
            );
            let want_proto = if g.flow_proto(i.flow) == FlowProto::Udp {
                17
            } else {
                6
            };
            assert_eq!(q.protocol.0, want_proto);
            assert_eq!(u16::from_be_bytes([icmp[28], icmp[29]]), 80);
            assert_eq!(u16::from_be_bytes([icmp[30], icmp[31]]), cport);
        }
        assert_eq!(n, 8);
    }

    #[test]
    fn test_malformed_defects() {
        let list: Vec<String> = Defect::ALL.iter().map(|d| format!("{d:?}")).collect();
        let s = scen(&format!(
            "(kind: Malformed([{}]), flows: 12)",
            list.join(", ")
        ));
        let mut seen = Vec::new();
        for (b, i) in all(&s) {
            let Step::Malformed(d) = i.step else {
                decode(&b);
                continue;
            };
            seen.push(d);
            let tcp = &b.get(34..).unwrap_or(&[]);
            let ip_ok = |b: &[u8]| {
                let h = etherparse::Ipv4HeaderSlice::from_slice(&b[14..34]).map(|h| h.to_header());
                h.map(|h| h.header_checksum == h.calc_header_checksum())
            };
            let total = |b: &[u8]| usize::from(u16::from_be_bytes([b[16], b[17]]));
            match d {
                Defect::TruncatedEthernet => {
                    assert_eq!(b.len(), 10);
                    assert!(etherparse::Ethernet2HeaderSlice::from_slice(&b).is_err());
                }
                Defect::TruncatedIpv4 => {
                    assert_eq!(b.len(), 26);
                    assert!(etherparse::Ipv4HeaderSlice::from_slice(&b[14..]).is_err());
                }
                Defect::BadIpVersion => {
                    assert_eq!(b[14] >> 4, 5);
                    assert!(etherparse::Ipv4HeaderSlice::from_slice(&b[14..]).is_err());
                }
                Defect::BadIhl => {
                    assert_eq!(b[14] & 0xf, 4);
                    assert!(etherparse::Ipv4HeaderSlice::from_slice(&b[14..]).is_err());
                }
                Defect::BadIpChecksum => assert!(!ip_ok(&b).unwrap()),
                Defect::TotalLengthTooLong => {
                    assert!(ip_ok(&b).unwrap());
                    assert!(14 + total(&b) > b.len());
                    assert!(
                        SlicedPacket::from_ethernet(&b).is_err(),
                        "length past the frame"
                    );
                }
                Defect::TotalLengthTooShort => {
                    assert_eq!(total(&b), 16);
                    assert!(SlicedPacket::from_ethernet(&b).is_err());
                }
                Defect::TcpDataOffsetShort | Defect::TcpDataOffsetLong => {
                    assert!(ip_ok(&b).unwrap());
                    let off = tcp[12] >> 4;
                    assert_eq!(
                        off,
                        if d == Defect::TcpDataOffsetShort {
                            4
                        } else {
                            15
                        }
                    );
                    assert!(etherparse::TcpHeaderSlice::from_slice(&b[34..54]).is_err());
                }
                Defect::TcpTruncated => {
                    assert!(ip_ok(&b).unwrap());
                    assert_eq!(total(&b), 28);
                    assert!(
                        etherparse::TcpHeaderSlice::from_slice(&b[34..14 + total(&b)]).is_err()
                    );
                }
                Defect::BadTcpChecksum => {
                    let p = SlicedPacket::from_ethernet(&b).unwrap();
                    let Some(NetSlice::Ipv4(ip)) = &p.net else {
                        panic!()
                    };
                    let Some(TransportSlice::Tcp(t)) = &p.transport else {
                        panic!()
                    };
                    let h = ip.header().to_header();
                    assert_ne!(
                        t.checksum(),
                        t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap()
                    );
                }
                Defect::TcpSynFin => {
                    let dd = decode(&b);
                    assert_eq!((dd.flags.0, dd.flags.2), (true, true));
                }
            }
        }
        assert_eq!(
            seen,
            Defect::ALL.to_vec(),
            "one defect per flow, in list order"
        );
    }

    #[test]
    fn test_deterministic_and_pass_matches_generator() {
        let s = scen("(flows: 50, mix: (tcp: 2, udp: 1, icmp: 1), data_segments: 3, size: Weighted([(64, 1), (300, 1)]), seed: 9)");
        let a = all(&s);
        let b = all(&s);
        assert_eq!(a, b);
        let p = Pass::build(&s).unwrap();
        assert_eq!(p.len(), a.len());
        for (k, (f, i)) in a.iter().enumerate() {
            let (bytes, r) = p.frame(k);
            assert_eq!(bytes, &f[..]);
            assert_eq!(r.stamp, i.stamp);
            if let Some(st) = i.stamp {
                assert!(f.len() >= usize::from(st.off) + STAMP_LEN);
                assert!(f[usize::from(st.off)..].iter().all(|&x| x == 0));
            }
        }
        assert!(p.n_stampable() > 0);
    }

    #[test]
    fn test_bench_scenarios_unchanged() {
        // The bench scenarios' frames, as the former fixture generator
        // built them with etherparse: SYNs, then ACKs with seq ISN+1, ack 1.
        let s = scen(include_str!(
            "../../../pktgen-scenarios/nat-established-1k.ron"
        ));
        assert_eq!(s.frames_per_pass(), 32_000);
        let f = all(&s);
        for (k, (b, _)) in f.iter().enumerate().step_by(997) {
            let flow = (k % 1000) as u32;
            let (cip, cport) = s.flow_client(flow);
            let mut e = Vec::new();
            let bld =
                etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xfe], [2, 0, 0, 0, 0, 1])
                    .ipv4(cip.to_be_bytes(), [10, 0, 0, 100], 64);
            if k < 1000 {
                bld.tcp(cport, 80, CLIENT_ISN, 65_535)
                    .syn()
                    .write(&mut e, &[])
                    .unwrap();
            } else {
                bld.tcp(cport, 80, CLIENT_ISN + 1, 65_535)
                    .ack(1)
                    .write(&mut e, &[])
                    .unwrap();
            }
            e.resize(60, 0);
            assert_eq!(b, &e, "frame {k}");
        }
        let syn = scen(include_str!("../../../pktgen-scenarios/nat-syn-new.ron"));
        assert_eq!(syn.frames_per_pass(), 200_000);
        let est = scen(include_str!(
            "../../../pktgen-scenarios/nat-established-100k.ron"
        ));
        assert_eq!(est.frames_per_pass(), 200_000);
    }
}
