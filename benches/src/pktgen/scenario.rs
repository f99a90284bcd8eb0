//! The traffic scenario schema of `fulcrum-pktgen` (`pktgen-scenarios/*.ron`).
//!
//! Layer: benchmark tooling, startup only. A [`Scenario`] is read from RON
//! with `deny_unknown_fields`, then [`Scenario::validate`]d as a whole; any
//! failure is one [`ScenarioError`] whose `Display` is a single line
//! `file:line:col: what was expected` (1-based line and column), the way
//! `control::config` reports fulcrum's own config. Syntax, type and
//! unknown-field errors use the position `ron` reports; a value a newtype
//! refuses (a MAC, a CIDR) points at the start of that value; a rule across
//! fields points at the field's name (or the opening `(` when the field was
//! left at its default). The full reference is `pktgen-scenarios/README.md`.
//!
//! Refuses: anything that cannot describe real traffic (sizes outside
//! 64..=1518 bytes on the wire, zero flows, more flows than client
//! address × port pairs, a malformed-packet or ICMP-error scenario without
//! its list).

use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize;

/// Smallest Ethernet frame on the wire, FCS included (IEEE 802.3 §4.4.2).
pub const MIN_WIRE_LEN: u16 = 64;
/// Largest untagged Ethernet frame on the wire, FCS included.
pub const MAX_WIRE_LEN: u16 = 1518;
/// Length of the Ethernet FCS, which generated frames do not carry (the NIC
/// appends it), in bytes.
pub const FCS_LEN: u16 = 4;

/// A scenario that failed to load. `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The path as given.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Syntax, type, unknown field, bad value or a rule across fields.
    #[error("{file}:{line}:{col}: {message}")]
    At {
        /// The path as given (or the label passed to [`Scenario::parse`]).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// What was expected.
        message: String,
    },
}

/// A MAC address written `aa:bb:cc:dd:ee:ff` (hex, either case); the six
/// bytes are kept in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Mac(pub [u8; 6]);

impl TryFrom<String> for Mac {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_mac(&s).map(Mac)
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (hex, either case) into wire-order bytes.
///
/// # Errors
/// A message naming the bad text for anything else.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("invalid MAC {s:?}: expected six hex bytes like 02:00:00:00:00:01");
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(mac)
}

/// An IPv4 prefix written `a.b.c.d/len`, len 0..=30, no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    /// Network address, host order.
    pub net: u32,
    /// Prefix length in bits, 0..=30.
    pub len: u32,
}

impl Cidr {
    /// Usable host addresses: all but the network and broadcast addresses.
    pub fn hosts(&self) -> u64 {
        (1u64 << (32 - self.len)) - 2
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || {
            format!("invalid prefix {s:?}: expected a.b.c.d/len with len 0..=30 and host bits zero")
        };
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let len: u32 = l.parse().map_err(|_| bad())?;
        if len > 30 {
            return Err(bad());
        }
        let net = u32::from(addr);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        if net & !mask != 0 {
            return Err(bad());
        }
        Ok(Cidr { net, len })
    }
}

/// What the scenario generates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Kind {
    /// Client flows as described by the other fields (the default).
    #[default]
    Flows,
    /// `flows` TCP SYNs, each from a random client address in `clients`,
    /// a random source port (1024..=65535) and a random ISN, to `vip:vport`:
    /// a SYN flood. `mix`, `size`, `new_flows_pct`, `data_segments` and
    /// `close` are ignored.
    SynFlood,
    /// Flows as in [`Kind::Flows`]; after its data segments every
    /// established flow receives one ICMP error about it (RFC 792), the
    /// kinds taken in turn from this non-empty list. Flows must be TCP or
    /// UDP (`mix.icmp` 0).
    IcmpErrors(Vec<IcmpError>),
    /// TCP flows as in [`Kind::Flows`]; after its data segments every
    /// established flow sends one malformed packet, the defects taken in
    /// turn from this non-empty list. `mix` must be TCP only.
    Malformed(Vec<Defect>),
}

/// An ICMP error sent toward the VIP about one flow. It quotes the IPv4
/// header and first 8 bytes of the flow's reply-direction packet
/// (`vip:vport → client`), as RFC 792 requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum IcmpError {
    /// Type 3 code 3, sent by the client host itself.
    PortUnreachable,
    /// Type 3 code 1, sent by the clients' gateway.
    HostUnreachable,
    /// Type 3 code 4 with this next-hop MTU in bytes (RFC 1191 §4), sent by
    /// the clients' gateway about a 1500-byte reply with DF set.
    FragNeeded(u16),
    /// Type 11 code 0 (TTL exceeded in transit), sent by the gateway.
    TimeExceeded,
}

/// One named defect of a malformed packet. Each is applied to a valid TCP
/// data segment of the flow (a 64-byte frame unless stated), fixing every
/// checksum the defect does not itself concern, so exactly one thing is
/// wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Defect {
    /// The frame is cut to 10 bytes: shorter than the 14-byte Ethernet
    /// header.
    TruncatedEthernet,
    /// The frame is cut to 26 bytes: it ends 12 bytes into the IPv4 header.
    TruncatedIpv4,
    /// IPv4 version field 5 instead of 4 (RFC 791 §3.1).
    BadIpVersion,
    /// IHL 4 (16 bytes), below the minimum of 5 (RFC 791 §3.1).
    BadIhl,
    /// Header checksum off by one (RFC 791 §3.1, RFC 1071).
    BadIpChecksum,
    /// Total length 100 bytes more than the frame carries.
    TotalLengthTooLong,
    /// Total length 16, less than the 20-byte header it covers.
    TotalLengthTooShort,
    /// TCP data offset 4 (16 bytes), below the minimum of 5 (RFC 9293 §3.1).
    TcpDataOffsetShort,
    /// TCP data offset 15 (60 bytes), past the end of a 20-byte segment.
    TcpDataOffsetLong,
    /// IPv4 total length covers only 8 bytes of the 20-byte TCP header.
    TcpTruncated,
    /// TCP checksum off by one.
    BadTcpChecksum,
    /// SYN and FIN both set, a combination no TCP sends (RFC 9293 §3.10.7.4
    /// processes SYN before FIN, scanners use it).
    TcpSynFin,
}

impl Defect {
    /// Every defect, in declaration order.
    pub const ALL: [Defect; 12] = [
        Defect::TruncatedEthernet,
        Defect::TruncatedIpv4,
        Defect::BadIpVersion,
        Defect::BadIhl,
        Defect::BadIpChecksum,
        Defect::TotalLengthTooLong,
        Defect::TotalLengthTooShort,
        Defect::TcpDataOffsetShort,
        Defect::TcpDataOffsetLong,
        Defect::TcpTruncated,
        Defect::BadTcpChecksum,
        Defect::TcpSynFin,
    ];
}

/// Protocol weights of the flows: flow `i` is TCP, UDP or ICMP echo with
/// probability proportional to its weight (drawn from the scenario seed).
/// A field left out is 0; the whole `mix` left out is TCP only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// Weight of TCP flows.
    #[serde(default)]
    pub tcp: u32,
    /// Weight of UDP flows.
    #[serde(default)]
    pub udp: u32,
    /// Weight of ICMP echo flows.
    #[serde(default)]
    pub icmp: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            tcp: 1,
            udp: 0,
            icmp: 0,
        }
    }
}

/// Frame sizes of data-bearing packets, in bytes on the wire including the
/// 4-byte FCS (the frames generated are 4 bytes shorter), each 64..=1518.
/// TCP SYN, pure ACK and FIN segments are always 64-byte frames.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub enum SizeDist {
    /// Every data packet is this long.
    Fixed(u16),
    /// `(size, weight)` pairs; each data packet draws a size with
    /// probability weight / total (IMIX: `[(64, 7), (594, 4), (1518, 1)]`).
    Weighted(Vec<(u16, u32)>),
}

impl Default for SizeDist {
    fn default() -> Self {
        SizeDist::Fixed(MIN_WIRE_LEN)
    }
}

/// How fast `fulcrum-pktgen` transmits in DPDK mode (ignored by `--pcap`,
/// except for the spacing of the pcap timestamps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Rate {
    /// As fast as the TX queue takes packets.
    #[default]
    Max,
    /// Packets per second, token bucket of one burst (≥ 1).
    Pps(u64),
}

/// When transmission stops. A pass is the scenario's frame sequence once;
/// later passes repeat the same frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Duration {
    /// This many passes (≥ 1).
    Passes(u32),
    /// Exactly this many packets (≥ 1), looping passes or ending mid-pass.
    Packets(u64),
    /// Transmit for this many seconds (≥ 1); a pcap gets one pass.
    Seconds(u32),
}

impl Default for Duration {
    fn default() -> Self {
        Duration::Passes(1)
    }
}

fn default_vip() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 100)
}
fn default_vport() -> u16 {
    80
}
fn default_clients() -> Cidr {
    Cidr {
        net: 0xac10_0000,
        len: 12,
    }
}
fn default_first_port() -> u16 {
    1024
}
fn default_ports_per_client() -> u16 {
    60_000
}
fn default_dst_mac() -> Mac {
    Mac(crate::OUT_MAC)
}
fn default_src_mac() -> Mac {
    Mac(crate::GATEWAY_MAC)
}
fn default_gateway() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 254)
}
fn default_seed() -> u64 {
    1
}

/// A traffic scenario: which flows exist, what each sends, how fast and
/// for how long. Defaults match the bench fixtures in this crate
/// ([`crate::nat_snapshot`]): VIP 10.0.0.100:80, clients 172.16.0.0/12
/// behind gateway 10.0.0.254, director MAC 02:00:00:00:00:01.
///
/// Frame order of one pass ([`crate::pktgen::gen::Generator`]): round 0
/// sends step 0 of every flow (flow 0, 1, ...); round r ≥ 1 sends step r of
/// every established flow. An established TCP flow's steps are SYN, ACK,
/// `data_segments` data segments, the ICMP error or malformed packet of
/// its kind if any, then FIN+ACK if `close`. A new flow sends only step 0
/// (a TCP SYN, one UDP datagram or one echo request). UDP and ICMP echo
/// flows send one datagram / echo request per step.
///
/// Flow `i` comes from client host `clients.net + 1 + i / ports_per_client`
/// and port `first_client_port + i % ports_per_client`; flows
/// `0..flows - new` are established, the last `new` flows (`new_flows_pct`
/// percent, rounded down) are new.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What to generate; default [`Kind::Flows`].
    #[serde(default)]
    pub kind: Kind,
    /// Concurrent flows (SYNs per pass for a SYN flood), ≥ 1.
    pub flows: u32,
    /// Protocol weights; default TCP only.
    #[serde(default)]
    pub mix: Mix,
    /// Sizes of data-bearing frames; default `Fixed(64)`.
    #[serde(default)]
    pub size: SizeDist,
    /// Percent of the flows (0..=100) that are new: they send only their
    /// first packet (a SYN for TCP). Default 0.
    #[serde(default)]
    pub new_flows_pct: u8,
    /// Data segments per established flow after the handshake. A 64-byte
    /// TCP frame has no room for data (54 bytes of headers + 6 of padding),
    /// so its "data segments" are pure ACKs. Default 0.
    #[serde(default)]
    pub data_segments: u32,
    /// Whether established TCP flows end with FIN+ACK. Default false (the
    /// connection stays established when the pass repeats).
    #[serde(default)]
    pub close: bool,
    /// Transmit rate in DPDK mode; default `Max`.
    #[serde(default)]
    pub rate: Rate,
    /// When to stop; default `Passes(1)`.
    #[serde(default)]
    pub duration: Duration,
    /// The VIP the clients connect to.
    #[serde(default = "default_vip")]
    pub vip: Ipv4Addr,
    /// Virtual port (TCP/UDP destination port).
    #[serde(default = "default_vport")]
    pub vport: u16,
    /// Client addresses (CIP range).
    #[serde(default = "default_clients")]
    pub clients: Cidr,
    /// First source port of every client host, ≥ 1.
    #[serde(default = "default_first_port")]
    pub first_client_port: u16,
    /// Source ports per client host before the next host, ≥ 1.
    #[serde(default = "default_ports_per_client")]
    pub ports_per_client: u16,
    /// Destination MAC of every frame: the director's client-side port.
    #[serde(default = "default_dst_mac")]
    pub dst_mac: Mac,
    /// Source MAC of every frame: the clients' gateway.
    #[serde(default = "default_src_mac")]
    pub src_mac: Mac,
    /// The clients' gateway (source of routers' ICMP errors).
    #[serde(default = "default_gateway")]
    pub gateway: Ipv4Addr,
    /// Seed of the deterministic draws (protocols, sizes, flood sources).
    #[serde(default = "default_seed")]
    pub seed: u64,
}

/// A rule across fields that failed: the field to point at and the message.
struct Invalid {
    field: &'static str,
    message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

impl Scenario {
    /// Reads and validates the scenario file at `path`.
    ///
    /// # Errors
    /// [`ScenarioError::Io`] if it cannot be read, else as [`Scenario::parse`]
    /// with `path` as the file label.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            file: file.clone(),
            source,
        })?;
        Scenario::parse(&src, &file)
    }

    /// Parses and validates scenario text; `file` only labels positions.
    ///
    /// # Errors
    /// [`ScenarioError::At`] for RON syntax, wrong types, unknown or missing
    /// fields, refused values and broken cross-field rules.
    pub fn parse(src: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = ron::from_str(src).map_err(|e| ron_error(src, file, &e))?;
        s.check().map_err(|e| {
            let (line, col) = line_col(src, field_offset(src, e.field));
            ScenarioError::At {
                file: file.to_string(),
                line,
                col,
                message: e.message,
            }
        })?;
        Ok(s)
    }

    /// Checks the rules across fields (see the field docs).
    ///
    /// # Errors
    /// A one-line message naming the first broken rule (without position).
    pub fn validate(&self) -> Result<(), String> {
        self.check()
            .map_err(|e| format!("{}: {}", e.field, e.message))
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.flows == 0 {
            return Err(invalid("flows", "flows must be at least 1"));
        }
        let sizes: Vec<u16> = match &self.size {
            SizeDist::Fixed(n) => vec![*n],
            SizeDist::Weighted(v) => {
                if v.is_empty() || v.iter().all(|&(_, w)| w == 0) {
                    return Err(invalid(
                        "size",
                        "Weighted needs at least one (size, weight) with weight > 0",
                    ));
                }
                v.iter().map(|&(s, _)| s).collect()
            }
        };
        if let Some(bad) = sizes
            .iter()
            .find(|s| !(MIN_WIRE_LEN..=MAX_WIRE_LEN).contains(*s))
        {
            return Err(invalid(
                "size",
                format!("frame size {bad} outside 64..=1518 (bytes on the wire, FCS included)"),
            ));
        }
        if self.mix.tcp == 0 && self.mix.udp == 0 && self.mix.icmp == 0 {
            return Err(invalid("mix", "mix needs at least one weight > 0"));
        }
        if self.new_flows_pct > 100 {
            return Err(invalid("new_flows_pct", "new_flows_pct must be 0..=100"));
        }
        match &self.kind {
            Kind::IcmpErrors(v) if v.is_empty() => {
                return Err(invalid("kind", "IcmpErrors needs at least one ICMP error"));
            }
            Kind::IcmpErrors(v) => {
                if self.mix.icmp != 0 {
                    return Err(invalid(
                        "mix",
                        "IcmpErrors quotes TCP or UDP flows: mix.icmp must be 0",
                    ));
                }
                if let Some(IcmpError::FragNeeded(mtu)) = v
                    .iter()
                    .find(|e| matches!(e, IcmpError::FragNeeded(m) if !(68..1500).contains(m)))
                {
                    return Err(invalid(
                        "kind",
                        format!(
                            "FragNeeded({mtu}): next-hop MTU must be 68..=1499 \
                             (below the 1500-byte reply it refuses)"
                        ),
                    ));
                }
            }
            Kind::Malformed(v) if v.is_empty() => {
                return Err(invalid("kind", "Malformed needs at least one defect"));
            }
            Kind::Malformed(_) if self.mix.udp != 0 || self.mix.icmp != 0 => {
                return Err(invalid(
                    "mix",
                    "Malformed damages TCP segments: mix must be TCP only",
                ));
            }
            _ => {}
        }
        if self.ports_per_client == 0 {
            return Err(invalid(
                "ports_per_client",
                "ports_per_client must be at least 1",
            ));
        }
        if self.first_client_port == 0 {
            return Err(invalid(
                "first_client_port",
                "first_client_port must be at least 1",
            ));
        }
        if u32::from(self.first_client_port) + u32::from(self.ports_per_client) - 1 > 65_535 {
            return Err(invalid(
                "ports_per_client",
                "first_client_port + ports_per_client - 1 exceeds 65535",
            ));
        }
        let hosts = self.clients.hosts();
        if self.kind != Kind::SynFlood
            && u64::from(self.flows) > hosts * u64::from(self.ports_per_client)
        {
            return Err(invalid(
                "flows",
                format!(
                    "{} flows do not fit {hosts} client hosts x {} ports: widen clients \
                     or raise ports_per_client",
                    self.flows, self.ports_per_client
                ),
            ));
        }
        match self.rate {
            Rate::Pps(0) => return Err(invalid("rate", "Pps must be at least 1")),
            Rate::Pps(_) | Rate::Max => {}
        }
        match self.duration {
            Duration::Passes(0) | Duration::Packets(0) | Duration::Seconds(0) => {
                return Err(invalid("duration", "duration must be at least 1"));
            }
            _ => {}
        }
        Ok(())
    }

    /// Flows that are new (send only their first packet): `new_flows_pct`
    /// percent of `flows`, rounded down; all of them for a SYN flood.
    pub fn n_new_flows(&self) -> u32 {
        if self.kind == Kind::SynFlood {
            return self.flows;
        }
        (u64::from(self.flows) * u64::from(self.new_flows_pct) / 100) as u32
    }

    /// Flows that are established (send every step).
    pub fn n_established_flows(&self) -> u32 {
        self.flows - self.n_new_flows()
    }

    /// Steps (packets) of one established flow: SYN + ACK + data segments,
    /// plus one for an ICMP error or malformed packet, plus one for FIN.
    pub fn steps_per_flow(&self) -> u32 {
        let extra = match self.kind {
            Kind::IcmpErrors(_) | Kind::Malformed(_) => 1,
            Kind::Flows | Kind::SynFlood => 0,
        };
        2 + self.data_segments + extra + u32::from(self.close)
    }

    /// Frames in one pass: every flow's first step plus the other steps of
    /// the established flows.
    pub fn frames_per_pass(&self) -> u64 {
        if self.kind == Kind::SynFlood {
            return u64::from(self.flows);
        }
        u64::from(self.flows)
            + u64::from(self.n_established_flows()) * u64::from(self.steps_per_flow() - 1)
    }

    /// CIP (host order) and client port of flow `i`.
    ///
    /// # Panics
    /// If `i >= flows` or the scenario does not validate.
    pub fn flow_client(&self, i: u32) -> (u32, u16) {
        assert!(i < self.flows, "flow {i} out of 0..{}", self.flows);
        let ppc = u32::from(self.ports_per_client);
        (
            self.clients.net + 1 + i / ppc,
            self.first_client_port + (i % ppc) as u16,
        )
    }
}

/// Converts a ron error into a positioned one-line error.
fn ron_error(src: &str, file: &str, e: &ron::error::SpannedError) -> ScenarioError {
    use ron::Error as E;
    let cursor = offset_of(src, e.position.line, e.position.col);
    let (message, offset) = match &e.code {
        // A newtype refused the value: ron's cursor is just past it.
        E::Message(m) => (m.clone(), value_start_before(src, cursor)),
        E::NoSuchStructField {
            expected, found, ..
        } => (
            format!(
                "unknown field `{found}`: expected one of {}",
                expected.join(", ")
            ),
            value_start_before(src, cursor),
        ),
        E::NoSuchEnumVariant {
            expected, found, ..
        } => (
            format!(
                "unknown variant `{found}`: expected one of {}",
                expected.join(", ")
            ),
            value_start_before(src, cursor),
        ),
        E::MissingStructField { field, .. } => (format!("missing field `{field}`"), cursor),
        other => {
            let s = other.to_string();
            let mut c = s.chars();
            let lowered = match c.next() {
                Some(first) => first.to_lowercase().chain(c).collect(),
                None => s,
            };
            (lowered, cursor)
        }
    };
    let (line, col) = line_col(src, offset);
    ScenarioError::At {
        file: file.to_string(),
        line,
        col,
        message,
    }
}

/// Byte offset of ron's 1-based (line, col) position (col in characters).
fn offset_of(src: &str, line: usize, col: usize) -> usize {
    let mut off = 0;
    for (i, l) in src.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return off
                + l.char_indices()
                    .nth(col.saturating_sub(1))
                    .map_or(l.len(), |(b, _)| b);
        }
        off += l.len();
    }
    src.len()
}

/// 1-based (line, column in characters) of byte offset `off`.
fn line_col(src: &str, off: usize) -> (usize, usize) {
    let before = &src[..off.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Start of the token that ends just before `cursor` (skipping blanks and
/// one `,`): a quoted string, or a run of identifier/number characters.
fn value_start_before(src: &str, cursor: usize) -> usize {
    let b = src.as_bytes();
    let mut i = cursor.min(b.len());
    while i > 0 && (b[i - 1].is_ascii_whitespace() || b[i - 1] == b',' || b[i - 1] == b':') {
        i -= 1;
    }
    if i > 0 && b[i - 1] == b'"' {
        i -= 1;
        while i > 0 && b[i - 1] != b'"' {
            i -= 1;
        }
        return i.saturating_sub(1);
    }
    while i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.') {
        i -= 1;
    }
    i
}

/// Offset of `field:` outside comments, or of the first `(` when the field
/// is absent (left at its default).
fn field_offset(src: &str, field: &str) -> usize {
    let mut off = 0;
    let mut open = None;
    for line in src.split_inclusive('\n') {
        let code = line.split("//").next().unwrap_or("");
        if open.is_none() {
            open = code.find('(').map(|p| off + p);
        }
        let mut from = 0;
        while let Some(p) = code[from..].find(field) {
            let at = from + p;
            let before_ok = at == 0
                || !code.as_bytes()[at - 1].is_ascii_alphanumeric()
                    && code.as_bytes()[at - 1] != b'_';
            let rest = code[at + field.len()..].trim_start();
            if before_ok && rest.starts_with(':') {
                return off + at;
            }
            from = at + field.len();
        }
        off += line.len();
    }
    open.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        Scenario::parse(src, "s.ron").unwrap_err().to_string()
    }

    #[test]
    fn test_parse_defaults() {
        let s = Scenario::parse("(flows: 3)", "s.ron").unwrap();
        assert_eq!(s.kind, Kind::Flows);
        assert_eq!(s.mix, Mix::default());
        assert_eq!(s.size, SizeDist::Fixed(64));
        assert_eq!(s.vip, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(s.dst_mac.0, crate::OUT_MAC);
        assert_eq!(s.src_mac.0, crate::GATEWAY_MAC);
        assert_eq!(s.duration, Duration::Passes(1));
        assert_eq!((s.steps_per_flow(), s.frames_per_pass()), (2, 6));
    }

    #[test]
    fn test_parse_full() {
        let src = r#"(
            kind: IcmpErrors([PortUnreachable, FragNeeded(1400)]),
            flows: 10, mix: (tcp: 3, udp: 1),
            size: Weighted([(64, 7), (594, 4), (1518, 1)]),
            new_flows_pct: 20, data_segments: 3, close: true,
            rate: Pps(1000), duration: Seconds(5),
            dst_mac: "02:00:00:00:00:AA", clients: "10.9.0.0/16", seed: 7,
        )"#;
        let s = Scenario::parse(src, "s.ron").unwrap();
        assert_eq!(s.n_new_flows(), 2);
        // SYN, ACK, 3 data, ICMP error, FIN.
        assert_eq!(s.steps_per_flow(), 7);
        assert_eq!(s.frames_per_pass(), 10 + 8 * 6);
        assert_eq!(
            s.clients,
            Cidr {
                net: 0x0a09_0000,
                len: 16
            }
        );
        assert_eq!(s.dst_mac.0, [2, 0, 0, 0, 0, 0xaa]);
    }

    #[test]
    fn test_parse_errors_positioned() {
        assert_eq!(
            err("(\n  flows: 1,\n  flowz: 2,\n)"),
            "s.ron:3:3: unknown field `flowz`: expected one of kind, flows, mix, size, \
             new_flows_pct, data_segments, close, rate, duration, vip, vport, clients, \
             first_client_port, ports_per_client, dst_mac, src_mac, gateway, seed"
        );
        assert_eq!(
            err("(\n  flows: 1,\n  dst_mac: \"02:00\",\n)"),
            "s.ron:3:12: invalid MAC \"02:00\": expected six hex bytes like 02:00:00:00:00:01"
        );
        assert!(
            err("(flows: 1, clients: \"10.0.0.1/24\")").starts_with("s.ron:1:21: invalid prefix")
        );
        assert_eq!(
            err("(\n  flows: 1,\n  size: Fixed(63),\n)"),
            "s.ron:3:3: frame size 63 outside 64..=1518 (bytes on the wire, FCS included)"
        );
        assert_eq!(err("(flows: 0)"), "s.ron:1:2: flows must be at least 1");
        assert!(err("(flows: 1, rate: Fast)").starts_with("s.ron:1:18: unknown variant `Fast`"));
        assert!(
            err("()").starts_with("s.ron:1:"),
            "missing field positioned"
        );
        assert!(err("(flows: 1,\n kind: Malformed([]))").starts_with("s.ron:2:2: Malformed"));
        assert!(err("(flows: 1, kind: Malformed([BadIhl]), mix: (udp: 1))")
            .starts_with("s.ron:1:39: Malformed damages TCP"));
        // Defaulted field: position of the opening parenthesis.
        assert_eq!(
            err("// c\n(flows: 70000, clients: \"10.0.0.0/30\", ports_per_client: 1)"),
            "s.ron:2:2: 70000 flows do not fit 2 client hosts x 1 ports: widen clients or \
             raise ports_per_client"
        );
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

    #[test]
    fn test_shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pktgen-scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "ron") {
                let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
                assert!(s.frames_per_pass() > 0);
                n += 1;
            }
        }
        assert!(
            n >= 9,
            "the 3 bench scenarios and the 6 pktgen scenarios: found {n}"
        );
    }
}
