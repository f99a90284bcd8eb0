//! Shared fixtures for fulcrum's benches: a two-port NAT snapshot and
//! generated traffic (established flows, 64-byte frames).
//!
//! Layer: test support, never linked into the daemon. Frames are built with
//! `etherparse` (an independent builder), so the bench input is well-formed
//! by a second implementation's standard.

use dataplane::snapshot::*;
use etherparse::PacketBuilder;
use hashbrown::HashMap;

/// MAC of the director's one port.
pub const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// VIP 10.0.0.100, host order.
pub const VIP: u32 = 0x0a00_0064;

/// A one-armed director (LVS's classic "one NIC" setup): port 0 holds both
/// 10.0.0.1/24 (clients' side) and 10.1.0.1/16 (real servers). VIP
/// 10.0.0.100:80/TCP, rr over `n_reals` real servers 10.1.0.11.. on port 80,
/// with permanent neighbours for the real servers and the clients' gateway
/// 10.0.0.254. One arm keeps in-memory replay buffers recycling on one queue.
pub fn nat_snapshot(n_reals: u32, method: Method) -> Snapshot {
    let mut local = HashMap::new();
    local.insert(
        0x0a00_0001,
        LocalAddr {
            kind: LocalKind::Dip,
            arp_ports: 1,
        },
    );
    local.insert(
        0x0a01_0001,
        LocalAddr {
            kind: LocalKind::Dip,
            arp_ports: 1,
        },
    );
    local.insert(
        VIP,
        LocalAddr {
            kind: LocalKind::Vip,
            arp_ports: 1,
        },
    );
    let key = ServiceKey {
        vip: VIP,
        vport: 80,
        proto: Proto::Tcp,
    };
    let mut service_index = HashMap::new();
    service_index.insert(key, 0);
    let mut reals = vec![RealServer {
        ip: 0,
        port: 0,
        weight: 0,
        method,
        service: 0,
    }];
    let mut static_neighbours = vec![(0u8, 0x0a00_00fe, [0x02, 0xfe, 0, 0, 0, 0xfe])];
    for i in 0..n_reals {
        let ip = 0x0a01_000b + i;
        reals.push(RealServer {
            ip,
            port: 80,
            weight: 1,
            method,
            service: 0,
        });
        static_neighbours.push((0, ip, [0x02, 0xaa, 0, 0, (i >> 8) as u8, i as u8]));
    }
    Snapshot {
        generation: 1,
        ports: vec![PortConf {
            name: "lan".into(),
            mac: OUT_MAC,
            addrs: vec![
                (
                    0x0a00_0001,
                    Prefix {
                        addr: 0x0a00_0000,
                        len: 24,
                    },
                ),
                (
                    0x0a01_0001,
                    Prefix {
                        addr: 0x0a01_0000,
                        len: 16,
                    },
                ),
            ],
        }],
        routes: vec![
            Route {
                dst: Prefix {
                    addr: 0x0a00_0000,
                    len: 24,
                },
                port: 0,
                via: None,
            },
            Route {
                dst: Prefix {
                    addr: 0x0a01_0000,
                    len: 16,
                },
                port: 0,
                via: None,
            },
            Route {
                dst: Prefix { addr: 0, len: 0 },
                port: 0,
                via: Some(0x0a00_00fe),
            },
        ],
        static_neighbours,
        local,
        services: vec![Service {
            key,
            scheduler: sched::SchedKind::Rr,
            sched_flags: Default::default(),
            sched_params: Default::default(),
            mh_table: None,
            reals: (1..=n_reals).collect(),
        }],
        service_index,
        reals,
        timeouts: Timeouts::default(),
    }
}

/// Client address and port of flow `i`: clients 172.16.0.0/12 behind the
/// gateway, 60000 ports each.
pub fn client(i: u32) -> ([u8; 4], u16) {
    let host = 0xac10_0000 + i / 60_000;
    (host.to_be_bytes(), 1024 + (i % 60_000) as u16)
}

/// A client → VIP TCP frame of flow `i`: a SYN, or an ACK padded to a
/// 60-byte frame (64 bytes on the wire with the FCS).
pub fn client_frame(i: u32, syn: bool) -> Vec<u8> {
    let (cip, cport) = client(i);
    let b = PacketBuilder::ethernet2([0x02, 0xfe, 0, 0, 0, 0xfe], OUT_MAC)
        .ipv4(cip, VIP.to_be_bytes(), 64)
        .tcp(cport, 80, 1, 65535);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut v = Vec::new();
    b.write(&mut v, &[]).expect("etherparse writes to a Vec");
    v.resize(60, 0);
    v
}

/// Errors of a traffic [`Scenario`]: its RON text, or values that cannot
/// describe the traffic asked for.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The RON text does not parse into a [`Scenario`] (position included).
    #[error("scenario: {0}")]
    Parse(#[from] ron::error::SpannedError),
    /// `clients` is not `a.b.c.d/len` with len 0..=30 and zero host bits.
    #[error(
        "scenario: invalid clients prefix {0:?}: expected a.b.c.d/len, len 0..=30, host bits zero"
    )]
    BadClients(String),
    /// A MAC string is not six `:`-separated hex bytes.
    #[error("scenario: invalid MAC {0:?}: expected six hex bytes like 02:00:00:00:00:01")]
    BadMac(String),
    /// `frame_len` is outside 60..=1514.
    #[error("scenario: frame_len {0} outside 60..=1514 (bytes without FCS)")]
    BadFrameLen(u16),
    /// `flows` is 0, `ports_per_client` is 0, or the client ports run past 65535.
    #[error("scenario: {0}")]
    BadCounts(&'static str),
    /// More flows than client addresses × ports per client.
    #[error("scenario: {flows} flows do not fit {hosts} client hosts x {ports} ports")]
    TooManyFlows {
        /// Flows asked for.
        flows: u32,
        /// Usable host addresses in `clients`.
        hosts: u64,
        /// `ports_per_client`.
        ports: u16,
    },
}

/// A generated-traffic scenario for the whole-pipeline benchmark, as read
/// from `pktgen-scenarios/*.ron` (the schema is documented there too).
///
/// Frame order ([`Scenario::frame`]): first the SYN of every flow (flow 0,
/// 1, ...), then `acks_per_flow` rounds of one ACK for every flow. With
/// `acks_per_flow == 0` the file holds SYNs only (new connections).
/// Flow `i` comes from client host `clients.network + 1 + i /
/// ports_per_client` (the network address itself is skipped), port
/// `first_client_port + i % ports_per_client`, to `vip:vport`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Distinct TCP flows (CIP, client port) pairs, ≥ 1.
    pub flows: u32,
    /// ACK frames per flow after its SYN; 0 = SYN-only scenario.
    pub acks_per_flow: u32,
    /// Length of the ACK frames in bytes without the 4-byte FCS, 60..=1514
    /// (60 = a minimum 64-byte frame on the wire). Up to 60 the IP packet is
    /// 40 bytes and the rest is Ethernet padding; above 60 the extra bytes
    /// are TCP payload (zeros). SYN frames are always 60 bytes (no payload).
    pub frame_len: u16,
    /// VIP the clients connect to (dotted quad).
    pub vip: std::net::Ipv4Addr,
    /// Virtual port (TCP destination port).
    pub vport: u16,
    /// Client addresses (CIP range), CIDR `a.b.c.d/len`, len 0..=30.
    pub clients: String,
    /// First TCP source port of every client host.
    pub first_client_port: u16,
    /// Source ports used per client host before moving to the next host.
    pub ports_per_client: u16,
    /// Destination MAC of every frame: the director's outside port.
    pub dst_mac: String,
    /// Source MAC of every frame: the clients' gateway.
    pub src_mac: String,
}

/// Client-side TCP initial sequence number of every generated flow.
pub const SCENARIO_CLIENT_ISN: u32 = 1_000;

impl Scenario {
    /// Parses and validates a scenario from RON text.
    ///
    /// # Errors
    /// [`ScenarioError::Parse`] for RON syntax, type or unknown-field errors;
    /// the other variants for values that fail [`Scenario::validate`].
    pub fn from_ron(text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = ron::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    /// Checks every field (see the field docs for the ranges).
    ///
    /// # Errors
    /// One [`ScenarioError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if !(60..=1514).contains(&self.frame_len) {
            return Err(ScenarioError::BadFrameLen(self.frame_len));
        }
        parse_mac(&self.dst_mac)?;
        parse_mac(&self.src_mac)?;
        let (_, len) = self.clients_prefix()?;
        if self.flows == 0 {
            return Err(ScenarioError::BadCounts("flows must be at least 1"));
        }
        if self.ports_per_client == 0 {
            return Err(ScenarioError::BadCounts(
                "ports_per_client must be at least 1",
            ));
        }
        if u32::from(self.first_client_port) + u32::from(self.ports_per_client) - 1 > 65_535 {
            return Err(ScenarioError::BadCounts(
                "first_client_port + ports_per_client - 1 exceeds 65535",
            ));
        }
        if self.first_client_port == 0 {
            return Err(ScenarioError::BadCounts(
                "first_client_port must be at least 1",
            ));
        }
        let hosts = (1u64 << (32 - len)) - 2;
        if u64::from(self.flows) > hosts * u64::from(self.ports_per_client) {
            return Err(ScenarioError::TooManyFlows {
                flows: self.flows,
                hosts,
                ports: self.ports_per_client,
            });
        }
        Ok(())
    }

    /// The clients prefix as (network address host order, length).
    ///
    /// # Errors
    /// [`ScenarioError::BadClients`] unless `clients` is `a.b.c.d/len` with
    /// len 0..=30 and no host bits set.
    pub fn clients_prefix(&self) -> Result<(u32, u32), ScenarioError> {
        let bad = || ScenarioError::BadClients(self.clients.clone());
        let (a, l) = self.clients.split_once('/').ok_or_else(bad)?;
        let addr: std::net::Ipv4Addr = a.parse().map_err(|_| bad())?;
        let len: u32 = l.parse().map_err(|_| bad())?;
        if len > 30 {
            return Err(bad());
        }
        let net = u32::from(addr);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        if net & !mask != 0 {
            return Err(bad());
        }
        Ok((net, len))
    }

    /// Frames in one pass of the file: `flows * (1 + acks_per_flow)`.
    pub fn n_frames(&self) -> u64 {
        u64::from(self.flows) * (1 + u64::from(self.acks_per_flow))
    }

    /// CIP (network byte order) and client port of flow `i`.
    ///
    /// # Panics
    /// If the scenario does not validate or `i >= flows`.
    pub fn flow_client(&self, i: u32) -> ([u8; 4], u16) {
        assert!(i < self.flows, "flow {i} out of 0..{}", self.flows);
        let (net, _) = self.clients_prefix().expect("validated scenario");
        let ppc = u32::from(self.ports_per_client);
        let host = net + 1 + i / ppc;
        (
            host.to_be_bytes(),
            self.first_client_port + (i % ppc) as u16,
        )
    }

    /// Frame `k` of one pass (see the type docs for the order): a SYN for
    /// `k < flows`, else an ACK of flow `(k - flows) % flows`. Built with
    /// `etherparse`, so IP and TCP checksums are full RFC 1071 sums.
    ///
    /// # Panics
    /// If the scenario does not validate or `k >= n_frames()`.
    pub fn frame(&self, k: u64) -> Vec<u8> {
        assert!(
            k < self.n_frames(),
            "frame {k} out of 0..{}",
            self.n_frames()
        );
        let flows = u64::from(self.flows);
        let syn = k < flows;
        let flow = if syn { k } else { (k - flows) % flows } as u32;
        let (cip, cport) = self.flow_client(flow);
        let dst = parse_mac(&self.dst_mac).expect("validated scenario");
        let src = parse_mac(&self.src_mac).expect("validated scenario");
        let b = PacketBuilder::ethernet2(src, dst).ipv4(cip, self.vip.octets(), 64);
        let mut v = Vec::with_capacity(usize::from(self.frame_len));
        if syn {
            b.tcp(cport, self.vport, SCENARIO_CLIENT_ISN, 65_535)
                .syn()
                .write(&mut v, &[])
                .expect("etherparse writes to a Vec");
            v.resize(60, 0);
        } else {
            // A SYN consumes one sequence number (RFC 9293 §3.4), so data
            // starts at ISN + 1; the server's ISN is never seen here.
            // Up to the 60-byte minimum the tail is Ethernet padding (IEEE
            // 802.3 §4.2.3.3); longer frames carry TCP payload instead, so
            // the IP length always covers every byte after the padding.
            let payload_len = if self.frame_len > 60 {
                usize::from(self.frame_len) - 54
            } else {
                0
            };
            let payload = vec![0u8; payload_len];
            b.tcp(cport, self.vport, SCENARIO_CLIENT_ISN + 1, 65_535)
                .ack(1)
                .write(&mut v, &payload)
                .expect("etherparse writes to a Vec");
            v.resize(usize::from(self.frame_len), 0);
        }
        v
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (hex, either case).
///
/// # Errors
/// [`ScenarioError::BadMac`] for anything else.
pub fn parse_mac(s: &str) -> Result<[u8; 6], ScenarioError> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts
            .next()
            .ok_or_else(|| ScenarioError::BadMac(s.into()))?;
        if p.len() != 2 {
            return Err(ScenarioError::BadMac(s.into()));
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| ScenarioError::BadMac(s.into()))?;
    }
    if parts.next().is_some() {
        return Err(ScenarioError::BadMac(s.into()));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetHeaders, PacketHeaders, TransportHeader};

    fn small() -> Scenario {
        Scenario {
            flows: 3,
            acks_per_flow: 2,
            frame_len: 60,
            vip: "10.0.0.100".parse().unwrap(),
            vport: 80,
            clients: "172.16.0.0/12".into(),
            first_client_port: 1024,
            ports_per_client: 2,
            dst_mac: "02:00:00:00:00:01".into(),
            src_mac: "02:00:00:00:00:FE".into(),
        }
    }

    /// Decodes one generated frame with etherparse and checks both
    /// checksums; returns (src ip, src port, dst ip, dst port, syn, ack,
    /// payload length, IP total length).
    fn decode(f: &[u8]) -> ([u8; 4], u16, [u8; 4], u16, bool, bool, usize, u16) {
        let h = PacketHeaders::from_ethernet_slice(f).expect("etherparse parses the frame");
        let eth = h.link.expect("ethernet header");
        assert_eq!(eth.destination, [2, 0, 0, 0, 0, 1]);
        assert_eq!(eth.source, [2, 0, 0, 0, 0, 0xfe]);
        let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
            panic!("not IPv4")
        };
        assert_eq!(
            ip.header_checksum,
            ip.calc_header_checksum(),
            "IPv4 header checksum"
        );
        let Some(TransportHeader::Tcp(tcp)) = h.transport else {
            panic!("not TCP")
        };
        let total = usize::from(ip.total_len);
        let payload = &f[54..14 + total];
        assert_eq!(
            tcp.checksum,
            tcp.calc_checksum_ipv4(&ip, payload).unwrap(),
            "TCP checksum"
        );
        (
            ip.source,
            tcp.source_port,
            ip.destination,
            tcp.destination_port,
            tcp.syn,
            tcp.ack,
            payload.len(),
            ip.total_len,
        )
    }

    #[test]
    fn test_scenario_frame_order() {
        let s = small();
        s.validate().unwrap();
        assert_eq!(s.n_frames(), 9);
        let got: Vec<_> = (0..9).map(|k| decode(&s.frame(k))).collect();
        // SYNs of flows 0, 1, 2: two ports per client, so flow 2 is on the
        // second host (network + 2).
        let flow = |i: usize| match i {
            0 => ([172, 16, 0, 1], 1024),
            1 => ([172, 16, 0, 1], 1025),
            _ => ([172, 16, 0, 2], 1024),
        };
        for (k, g) in got.iter().enumerate() {
            let syn = k < 3;
            let i = if syn { k } else { (k - 3) % 3 };
            let (cip, cport) = flow(i);
            assert_eq!(
                (g.0, g.1, g.2, g.3),
                (cip, cport, [10, 0, 0, 100], 80),
                "frame {k}"
            );
            assert_eq!((g.4, g.5), (syn, !syn), "frame {k} flags");
            assert_eq!((g.6, g.7), (0, 40), "frame {k} lengths");
        }
        for k in 0..9 {
            assert_eq!(s.frame(k).len(), 60, "frame {k} is a minimum frame");
        }
    }

    #[test]
    fn test_scenario_frame_len_payload() {
        let mut s = small();
        s.frame_len = 128;
        let ack = s.frame(3);
        assert_eq!(ack.len(), 128);
        let d = decode(&ack);
        assert_eq!(
            (d.6, d.7),
            (74, 114),
            "extra bytes are TCP payload, not padding"
        );
        assert_eq!(s.frame(0).len(), 60, "SYNs stay minimum frames");
    }

    #[test]
    fn test_scenario_files() {
        let cases = [
            (
                include_str!("../../pktgen-scenarios/nat-established-1k.ron"),
                1_000,
                32_000,
            ),
            (
                include_str!("../../pktgen-scenarios/nat-established-100k.ron"),
                100_000,
                200_000,
            ),
            (
                include_str!("../../pktgen-scenarios/nat-syn-new.ron"),
                200_000,
                200_000,
            ),
        ];
        for (text, flows, frames) in cases {
            let s = Scenario::from_ron(text).unwrap();
            assert_eq!((s.flows, s.n_frames()), (flows, frames));
            assert_eq!(
                parse_mac(&s.dst_mac).unwrap(),
                OUT_MAC,
                "frames must reach fulcrum's pinned MAC"
            );
            let last = decode(&s.frame(frames - 1));
            assert_eq!(last.4, s.acks_per_flow == 0, "last frame's SYN flag");
        }
    }

    #[test]
    fn test_scenario_bad_fields() {
        let text = include_str!("../../pktgen-scenarios/nat-established-1k.ron");
        let unknown = text.replace("vport: 80,", "vport: 80, vprot: 1,");
        assert!(matches!(
            Scenario::from_ron(&unknown),
            Err(ScenarioError::Parse(_))
        ));
        let short = text.replace("frame_len: 60", "frame_len: 59");
        assert!(matches!(
            Scenario::from_ron(&short),
            Err(ScenarioError::BadFrameLen(59))
        ));
        let host_bits = text.replace("172.16.0.0/12", "172.16.0.1/12");
        assert!(matches!(
            Scenario::from_ron(&host_bits),
            Err(ScenarioError::BadClients(_))
        ));
        let mac = text.replace("02:00:00:00:00:01", "02:00:00:00:01");
        assert!(matches!(
            Scenario::from_ron(&mac),
            Err(ScenarioError::BadMac(_))
        ));
        let mut s = small();
        s.clients = "172.16.0.0/30".into(); // 2 hosts x 2 ports = 4 flows
        s.flows = 5;
        assert!(matches!(
            s.validate(),
            Err(ScenarioError::TooManyFlows {
                flows: 5,
                hosts: 2,
                ports: 2
            })
        ));
        s.flows = 4;
        s.validate().unwrap();
        s.first_client_port = 65_535;
        assert!(matches!(s.validate(), Err(ScenarioError::BadCounts(_))));
    }

    #[test]
    fn test_parse_mac() {
        assert_eq!(
            parse_mac("02:aB:00:10:ff:09").unwrap(),
            [2, 0xab, 0, 0x10, 0xff, 9]
        );
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "2:00:00:00:00:00",
            "0g:00:00:00:00:00",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad:?}");
        }
    }
}
