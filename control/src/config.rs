//! The director's configuration file: RON text → validated [`Config`].
//!
//! Layer: control, first stage (`RON → Config → validate() → compile()`).
//!
//! Guarantees: [`load`] and [`parse`] return either a whole, validated
//! [`Config`] or one [`ConfigError`] whose `Display` is a single line
//! `file:line:col: message` (1-based line, 1-based column counted in
//! characters). Nothing half-applies: there is no partially filled config on
//! error.
//!
//! How positions are found:
//! - Syntax and type errors carry the position `ron` reports.
//! - Value errors (bad IPv4 address, netmask, CIDR, MAC, port number,
//!   scheduler, protocol, forwarding method, weight, timeout) are raised *inside*
//!   deserialization by the small newtypes below ([`Cidr`], [`MacAddr`],
//!   [`SchedulerName`], ...), so `ron` knows where the value is; the position is
//!   then moved back from the end of the offending value to its start.
//! - Cross-field errors found by [`validate`] name a [`PathSeg`] path (such as
//!   `services[1].real_servers[0].addr`); [`locate`] finds that value's text in
//!   the source with a small comment-aware RON tokenizer.
//!
//! Refuses: unknown fields (`deny_unknown_fields` everywhere), IPv6, host names
//! (fulcrum never resolves names, like `ipvsadm -n`), and anything listed
//! under [`validate`]. `Option` fields may be written bare (`mac: "02:..."`)
//! or as `Some(...)`: the parser enables RON's `implicit_some` extension.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use dataplane::snapshot::{Method, Proto};
use sched::{SchedFlags, SchedKind, SchedParams};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Most workers (and, separately, most ports) one director may have: port and
/// worker sets are 64-bit masks in the snapshot (`LocalAddr::arp_ports`).
pub const MAX_WORKERS: usize = 64;
/// Most dataplane ports; see [`MAX_WORKERS`].
pub const MAX_PORTS: usize = 64;
/// Largest `burst` (packets per `rte_eth_rx_burst`), matching the workers'
/// fixed-size burst arrays.
pub const MAX_BURST: u16 = 64;
/// Largest IPVS weight (`ipvsadm -w` accepts 0..=65535).
pub const MAX_WEIGHT: u32 = 65_535;
/// Longest connection timeout in seconds (30 days), so that the value in
/// milliseconds still fits the snapshot's `u32`.
pub const MAX_TIMEOUT_S: u32 = 2_592_000;
/// Default admin socket path.
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/fulcrum/fulcrum.sock";

// ---------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------

/// The whole director: one RON file. See `docs/config.md` for the commented
/// schema; defaults below are the ones documented there.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// EAL arguments passed to `rte_eal_init` verbatim (`argv[0]` is added by
    /// the daemon). Required.
    pub eal_args: Vec<String>,
    /// EAL lcore ids that run workers, one worker each; every worker gets one
    /// RX and one TX queue on every port. Required, 1..=64 distinct ids.
    pub workers: Vec<u32>,
    /// Mbufs in each NUMA socket's packet pool. Default 16383 (2^n - 1 is the
    /// size DPDK's ring-backed mempool uses best).
    #[serde(default = "default_mbufs_per_socket")]
    pub mbufs_per_socket: u32,
    /// RX descriptors per queue. Default 1024.
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    /// TX descriptors per queue. Default 1024.
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    /// Packets per `rx_burst`, 1..=64. Default 32.
    #[serde(default = "default_burst")]
    pub burst: u16,
    /// Microseconds a worker sleeps after a poll round that received nothing;
    /// 0 (default) = pure busy polling.
    #[serde(default)]
    pub idle_sleep_us: u32,
    /// Most connections each worker tracks. Default 1048576.
    #[serde(default = "default_conn_table_size")]
    pub conn_table_size: u32,
    /// Unix socket the admin API listens on. Default
    /// `/run/fulcrum/fulcrum.sock`.
    #[serde(default = "default_admin_socket")]
    pub admin_socket: PathBuf,
    /// Dataplane ports, in DPDK port order. Required, 1..=64.
    pub ports: Vec<PortConfig>,
    /// Static routes; connected routes come from the ports' addresses.
    /// Default none.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Permanent neighbours (`ip neigh add ... nud permanent`). Default none.
    #[serde(default)]
    pub neighbours: Vec<NeighbourConfig>,
    /// IPVS connection timeouts. Default: the IPVS defaults.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// Virtual services. Default none.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
}

fn default_mbufs_per_socket() -> u32 {
    16_383
}
fn default_desc() -> u16 {
    1024
}
fn default_burst() -> u16 {
    32
}
fn default_conn_table_size() -> u32 {
    1_048_576
}
fn default_admin_socket() -> PathBuf {
    PathBuf::from(DEFAULT_ADMIN_SOCKET)
}

/// One dataplane port.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Operator's label, unique, used in logs and status output.
    pub name: String,
    /// DPDK device name: a vdev name (`net_af_packet0`) or a PCI address
    /// (`0000:03:00.0`). Unique.
    pub device: String,
    /// The director's own addresses on this port (DIPs) with their prefix
    /// length; each also yields a connected route. At least one, because ARP
    /// requests for next hops need a sender address.
    pub addrs: Vec<Cidr>,
    /// Pins the port's MAC address; `None` keeps the NIC's own.
    #[serde(default)]
    pub mac: Option<MacAddr>,
}

/// One static route (`ip route add dst via via`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Destination prefix; host bits must be zero.
    pub dst: Ipv4Net,
    /// Gateway; must lie on a connected subnet (one of the ports' prefixes).
    pub via: Ipv4Str,
}

/// One permanent neighbour (`ip neigh add ip lladdr mac nud permanent`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighbourConfig {
    /// Neighbour IPv4 address; must lie on a connected subnet.
    pub ip: Ipv4Str,
    /// Its MAC address.
    pub mac: MacAddr,
}

/// IPVS connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp` plus
/// the per-state ones IPVS keeps in `ip_vs_proto_tcp.c`'s
/// `tcp_timeouts[]`). Each field is optional and defaults to IPVS; range
/// 1..=2592000.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// ESTABLISHED, default 900 s.
    pub tcp_established: TimeoutSecs,
    /// SYN_SENT, default 120 s.
    pub tcp_syn_sent: TimeoutSecs,
    /// SYN_RECV, default 60 s.
    pub tcp_syn_recv: TimeoutSecs,
    /// FIN_WAIT, default 120 s.
    pub tcp_fin_wait: TimeoutSecs,
    /// TIME_WAIT, default 120 s.
    pub tcp_time_wait: TimeoutSecs,
    /// CLOSE, default 10 s.
    pub tcp_close: TimeoutSecs,
    /// CLOSE_WAIT, default 60 s.
    pub tcp_close_wait: TimeoutSecs,
    /// LAST_ACK, default 30 s.
    pub tcp_last_ack: TimeoutSecs,
    /// LISTEN, default 120 s.
    pub tcp_listen: TimeoutSecs,
    /// SYNACK, default 120 s.
    pub tcp_synack: TimeoutSecs,
    /// UDP, default 300 s.
    pub udp: TimeoutSecs,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        // Same values as `dataplane::snapshot::Timeouts::default()`, which
        // mirrors net/netfilter/ipvs/ip_vs_proto_{tcp,udp}.c.
        TimeoutsConfig {
            tcp_established: TimeoutSecs(900),
            tcp_syn_sent: TimeoutSecs(120),
            tcp_syn_recv: TimeoutSecs(60),
            tcp_fin_wait: TimeoutSecs(120),
            tcp_time_wait: TimeoutSecs(120),
            tcp_close: TimeoutSecs(10),
            tcp_close_wait: TimeoutSecs(60),
            tcp_last_ack: TimeoutSecs(30),
            tcp_listen: TimeoutSecs(120),
            tcp_synack: TimeoutSecs(120),
            udp: TimeoutSecs(300),
        }
    }
}

/// One virtual service (`ipvsadm -A -t|-u VIP:port -s sched`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// VIP:vport; vport 0 = every port (IPVS port-0 service).
    pub vip: SocketAddrV4Str,
    /// `"tcp"` or `"udp"`.
    pub proto: ProtoName,
    /// An ipvsadm `-s` name fulcrum implements (`sched::SchedKind::NAMES`).
    pub scheduler: SchedulerName,
    /// Default forwarding method of the service's real servers.
    pub forwarding: ForwardingName,
    /// Scheduler flags, as ipvsadm `-b` / keepalived `scheduler_flags`
    /// spell them: `"sh-port"`, `"sh-fallback"` (scheduler `sh`),
    /// `"mh-port"`, `"mh-fallback"` (scheduler `mh`), or the generic
    /// `"flag-1"` (= the scheduler's `-fallback`) and `"flag-2"` (= its
    /// `-port`). Each at most once; a flag of another scheduler is an error.
    /// Default none.
    #[serde(default)]
    pub sched_flags: Vec<String>,
    /// The scheduler's table size. `dh`/`sh`: hash buckets, a power of two
    /// in 2..=1048576, default 256 (IPVS `CONFIG_IP_VS_{DH,SH}_TAB_BITS`).
    /// `mh`: Maglev table size M, a prime ≥ 100 × the service's real
    /// servers and ≤ 16777216, default 65537. Any other scheduler: an error.
    #[serde(default)]
    pub table_size: Option<u32>,
    /// `mh` only: the hash seed of the Maglev permutations and lookups.
    /// Directors with the same config and seed pick the same real server
    /// for a flow (active-active scale-out). Default
    /// `sched::MH_SEED_DEFAULT`. Any other scheduler: an error.
    #[serde(default)]
    pub hash_seed: Option<u64>,
    /// Real servers, in scheduler order. Default none (every new connection
    /// is then dropped as `no_real_server`, as IPVS does).
    #[serde(default)]
    pub real_servers: Vec<RealServerConfig>,
    /// Persistence timeout in seconds, 1..=2592000 (ipvsadm `-p`,
    /// keepalived `persistence_timeout`): new connections from one client
    /// (network, see `persistence_netmask`) go to the real server its
    /// earlier connection got, until this long after the last of them.
    /// Default none: every connection is scheduled on its own.
    #[serde(default)]
    pub persistence_timeout: Option<TimeoutSecs>,
    /// Client netmask for persistence, a contiguous dotted-quad mask
    /// (ipvsadm `-M`, keepalived `persistence_granularity`); default
    /// `"255.255.255.255"` (one template per client address). Only with
    /// `persistence_timeout`.
    #[serde(default)]
    pub persistence_netmask: Option<Netmask>,
}

/// One real server (`ipvsadm -a -t VIP:port -r RIP:port -w weight -m|-g`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerConfig {
    /// RIP:rport. In DR the port must equal the vport; rport 0 only in a
    /// port-0 service.
    pub addr: SocketAddrV4Str,
    /// IPVS weight 0..=65535, default 1; 0 quiesces the server.
    #[serde(default)]
    pub weight: Weight,
    /// Overrides the service's forwarding method for this server, as
    /// ipvsadm's per-destination `-m`/`-g` does.
    #[serde(default)]
    pub forwarding: Option<ForwardingName>,
}

impl ServiceConfig {
    /// The scheduler flags in effect: `sched_flags` resolved for this
    /// service's scheduler ([`SchedKind::canonical_flag`]); names that do not
    /// apply are skipped (a validated config has none).
    pub fn sched_flags(&self) -> SchedFlags {
        let mut f = SchedFlags::default();
        for name in &self.sched_flags {
            if let Some(c) = self.scheduler.0.canonical_flag(name) {
                f.set(c);
            }
        }
        f
    }

    /// The scheduler parameters in effect: [`SchedParams::default`] with
    /// `table_size` applied to the scheduler that has a table (`dh`, `sh`:
    /// buckets; `mh`: M) and `hash_seed` to `mh`.
    pub fn sched_params(&self) -> SchedParams {
        let mut p = SchedParams::default();
        let size = self.table_size.map(|n| n as usize);
        match self.scheduler.0 {
            SchedKind::Dh => p.dh_table_len = size.unwrap_or(p.dh_table_len),
            SchedKind::Sh => p.sh_table_len = size.unwrap_or(p.sh_table_len),
            SchedKind::Mh => {
                p.mh_table_len = size.unwrap_or(p.mh_table_len);
                p.mh_seed = self.hash_seed.unwrap_or(p.mh_seed);
            }
            _ => {}
        }
        p
    }
}

impl RealServerConfig {
    /// The forwarding method in effect: the per-server override, else the
    /// service's default.
    pub fn method(&self, svc: &ServiceConfig) -> Method {
        self.forwarding.map_or(svc.forwarding.0, |f| f.0)
    }
}

impl Config {
    /// The port whose connected subnet holds `ip`: the longest matching
    /// prefix over all ports' addresses, the first port in config order on a
    /// tie. `None` when `ip` is on no connected subnet.
    pub fn connected_port(&self, ip: Ipv4Addr) -> Option<usize> {
        let mut best: Option<(usize, u8)> = None;
        for (i, p) in self.ports.iter().enumerate() {
            for a in &p.addrs {
                if a.contains(ip) && !matches!(best, Some((_, len)) if a.len <= len) {
                    best = Some((i, a.len));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// Whether some connected or static route covers `ip`.
    pub fn has_route(&self, ip: Ipv4Addr) -> bool {
        self.connected_port(ip).is_some() || self.routes.iter().any(|r| r.dst.contains(ip))
    }

    /// The port index owning DIP `ip`, if `ip` is one of the director's
    /// interface addresses.
    pub fn dip_port(&self, ip: Ipv4Addr) -> Option<usize> {
        self.ports
            .iter()
            .position(|p| p.addrs.iter().any(|a| a.addr == ip))
    }
}

// ---------------------------------------------------------------------------
// Value newtypes, each checked inside deserialization
// ---------------------------------------------------------------------------

/// Marks a message as a value error raised by one of our newtypes, so the
/// error position is moved from the end of the value to its start.
pub(crate) const VALUE_MARK: char = '\u{1}';

/// Deserializes a string and converts it with `parse`, turning a refusal into
/// a positioned value error.
fn de_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<'de, T> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(|m| E::custom(format_args!("{VALUE_MARK}{m}")))
        }
    }
    d.deserialize_str(V { expecting, parse })
}

/// Deserializes an unsigned integer and checks it with `check`.
fn de_uint<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(u64) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        check: fn(u64) -> Result<T, String>,
    }
    impl<'de, T> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.check)(v).map_err(|m| E::custom(format_args!("{VALUE_MARK}{m}")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            match u64::try_from(v) {
                Ok(u) => self.visit_u64(u),
                Err(_) => Err(E::custom(format_args!(
                    "{VALUE_MARK}invalid value {v}: expected {}",
                    self.expecting
                ))),
            }
        }
    }
    // `deserialize_any` (not `_u64`) so that a string or float is reported
    // with what was expected instead of ron's bare "expected integer".
    d.deserialize_any(V { expecting, check })
}

/// Strict dotted-quad parser (no leading zeros, no short forms), so that a
/// typo is an error rather than a surprising address.
fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    s.parse::<Ipv4Addr>().ok()
}

fn parse_prefix_len(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u8>().ok().filter(|&l| l <= 32)
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

/// Whether `ip` may be a unicast host address on the wire: not 0.0.0.0/8,
/// loopback, multicast/reserved (224.0.0.0/3) nor limited broadcast.
fn is_unicast_host(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(o[0] == 0 || o[0] == 127 || o[0] >= 224)
}

/// A director interface address with its prefix length, as `ip addr add`
/// takes it: `"10.0.0.1/24"`. The address must be a unicast host address and,
/// for prefixes up to /30, neither the subnet's network nor its broadcast
/// address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address itself.
    pub addr: Ipv4Addr,
    /// Prefix length in bits, 0..=32.
    pub len: u8,
}

impl Cidr {
    /// The connected subnet: the address with host bits cleared.
    pub fn network(self) -> Ipv4Net {
        Ipv4Net {
            addr: Ipv4Addr::from(u32::from(self.addr) & mask(self.len)),
            len: self.len,
        }
    }
    /// Whether `ip` lies on this address's subnet.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        self.network().contains(ip)
    }

    fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || {
            format!("invalid CIDR {s:?}: expected IPv4 address/prefix length like \"10.0.0.1/24\"")
        };
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr = parse_ipv4(a).ok_or_else(bad)?;
        let len = parse_prefix_len(l).ok_or_else(bad)?;
        if !is_unicast_host(addr) {
            return Err(format!(
                "invalid CIDR {s:?}: {addr} is not a unicast host address"
            ));
        }
        if len <= 30 {
            let host = u32::from(addr) & !mask(len);
            if host == 0 || host == !mask(len) {
                return Err(format!(
                    "invalid CIDR {s:?}: {addr} is the subnet's network or broadcast address, expected a host address"
                ));
            }
        }
        Ok(Cidr { addr, len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(
            d,
            "an IPv4 address with prefix length like \"10.0.0.1/24\"",
            Cidr::parse,
        )
    }
}

/// A network prefix as `ip route` takes it: `"10.2.0.0/16"`, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// Network address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length in bits, 0..=32.
    pub len: u8,
}

impl Ipv4Net {
    /// Whether `ip` lies inside the prefix.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.len) == u32::from(self.addr)
    }

    fn parse(s: &str) -> Result<Ipv4Net, String> {
        let bad =
            || format!("invalid prefix {s:?}: expected network/prefix length like \"10.2.0.0/16\"");
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr = parse_ipv4(a).ok_or_else(bad)?;
        let len = parse_prefix_len(l).ok_or_else(bad)?;
        let net = Ipv4Addr::from(u32::from(addr) & mask(len));
        if net != addr {
            return Err(format!(
                "invalid prefix {s:?}: host bits set, expected \"{net}/{len}\""
            ));
        }
        Ok(Ipv4Net { addr, len })
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "an IPv4 prefix like \"10.2.0.0/16\"", Ipv4Net::parse)
    }
}

/// A unicast IPv4 host address written as a string: `"10.0.0.254"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Str(pub Ipv4Addr);

impl Ipv4Str {
    fn parse(s: &str) -> Result<Ipv4Str, String> {
        let ip = parse_ipv4(s).ok_or_else(|| {
            format!("invalid IPv4 address {s:?}: expected a dotted quad like \"10.0.0.254\"")
        })?;
        if !is_unicast_host(ip) {
            return Err(format!(
                "invalid IPv4 address {s:?}: not a unicast host address"
            ));
        }
        Ok(Ipv4Str(ip))
    }
}

impl<'de> Deserialize<'de> for Ipv4Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "an IPv4 address like \"10.0.0.254\"", Ipv4Str::parse)
    }
}

/// A contiguous IPv4 netmask written as a dotted quad: `"255.255.255.0"`
/// (ones from the top, then zeros; `"0.0.0.0"` and `"255.255.255.255"`
/// included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Netmask(pub Ipv4Addr);

impl Netmask {
    /// The mask as a host-order `u32` (`255.255.255.0` is `0xffff_ff00`).
    pub fn bits(self) -> u32 {
        u32::from(self.0)
    }
    fn parse(s: &str) -> Result<Netmask, String> {
        let ip = parse_ipv4(s).ok_or_else(|| {
            format!("invalid netmask {s:?}: expected a dotted quad like \"255.255.255.0\"")
        })?;
        let m = u32::from(ip);
        // Contiguous: the inverted mask is 2^k - 1.
        if (!m).wrapping_add(1) & !m != 0 {
            return Err(format!(
                "invalid netmask {s:?}: not contiguous, expected ones then zeros like \"255.255.255.0\""
            ));
        }
        Ok(Netmask(ip))
    }
}

impl<'de> Deserialize<'de> for Netmask {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "a netmask like \"255.255.255.0\"", Netmask::parse)
    }
}

/// A unicast IPv4 address and port written as a string: `"10.0.0.100:80"`.
/// Port 0..=65535 (0 has the IPVS meaning "all ports" for a VIP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketAddrV4Str(pub SocketAddrV4);

impl SocketAddrV4Str {
    /// The IPv4 address.
    pub fn ip(self) -> Ipv4Addr {
        *self.0.ip()
    }
    /// The port, host order.
    pub fn port(self) -> u16 {
        self.0.port()
    }

    fn parse(s: &str) -> Result<SocketAddrV4Str, String> {
        let bad = || format!("invalid address {s:?}: expected IPv4:port like \"10.0.0.100:80\"");
        let (a, p) = s.rsplit_once(':').ok_or_else(bad)?;
        let ip = parse_ipv4(a).ok_or_else(bad)?;
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let port: u32 = p.parse().map_err(|_| bad())?;
        let port = u16::try_from(port)
            .map_err(|_| format!("invalid address {s:?}: port {port} out of range 0..=65535"))?;
        if !is_unicast_host(ip) {
            return Err(format!(
                "invalid address {s:?}: {ip} is not a unicast host address"
            ));
        }
        Ok(SocketAddrV4Str(SocketAddrV4::new(ip, port)))
    }
}

impl<'de> Deserialize<'de> for SocketAddrV4Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(
            d,
            "an IPv4:port string like \"10.0.0.100:80\"",
            SocketAddrV4Str::parse,
        )
    }
}

/// A unicast Ethernet address, `"02:00:00:00:01:01"`: six two-digit hex
/// octets separated by `:` (either case). Group (multicast/broadcast) and
/// all-zero addresses are refused because neither a port nor a neighbour can
/// own them. Stored in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    fn parse(s: &str) -> Result<MacAddr, String> {
        let bad = || {
            format!("invalid MAC address {s:?}: expected six hex octets like \"02:00:00:00:01:01\"")
        };
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            if n == 6 || part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| bad())?;
            n += 1;
        }
        if n != 6 {
            return Err(bad());
        }
        if out[0] & 1 != 0 {
            return Err(format!(
                "invalid MAC address {s:?}: multicast/broadcast, expected a unicast MAC"
            ));
        }
        if out == [0; 6] {
            return Err(format!(
                "invalid MAC address {s:?}: all zero, expected a unicast MAC"
            ));
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(
            d,
            "a MAC address like \"02:00:00:00:01:01\"",
            MacAddr::parse,
        )
    }
}

/// A scheduler name as ipvsadm `-s` spells it, limited to the ones fulcrum
/// implements ([`SchedKind::NAMES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchedulerName(pub SchedKind);

impl<'de> Deserialize<'de> for SchedulerName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "a scheduler name like \"rr\"", |s| {
            SchedKind::from_name(s).map(SchedulerName).ok_or_else(|| {
                format!(
                    "invalid scheduler {s:?}: expected one of {}",
                    SchedKind::NAMES.join(", ")
                )
            })
        })
    }
}

/// A virtual service protocol: `"tcp"` (ipvsadm `-t`) or `"udp"` (`-u`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtoName(pub Proto);

impl<'de> Deserialize<'de> for ProtoName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "\"tcp\" or \"udp\"", |s| match s {
            "tcp" => Ok(ProtoName(Proto::Tcp)),
            "udp" => Ok(ProtoName(Proto::Udp)),
            _ => Err(format!("invalid protocol {s:?}: expected one of tcp, udp")),
        })
    }
}

/// A forwarding method: `"nat"` (alias `"masq"`, ipvsadm `-m`) or `"dr"`
/// (alias `"route"`, ipvsadm `-g`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ForwardingName(pub Method);

impl<'de> Deserialize<'de> for ForwardingName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "a forwarding method like \"nat\"", |s| match s {
            "nat" | "masq" => Ok(ForwardingName(Method::Nat)),
            "dr" | "route" => Ok(ForwardingName(Method::Dr)),
            _ => Err(format!(
                "invalid forwarding method {s:?}: expected one of nat, masq, dr, route"
            )),
        })
    }
}

/// An IPVS weight, 0..=65535; default 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Weight(pub u32);

impl Default for Weight {
    fn default() -> Self {
        Weight(1)
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_uint(d, "a weight 0..=65535", |v| {
            if v <= u64::from(MAX_WEIGHT) {
                Ok(Weight(v as u32))
            } else {
                Err(format!("invalid weight {v}: expected 0..=65535"))
            }
        })
    }
}

/// A connection timeout in seconds, 1..=2592000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeoutSecs(pub u32);

impl TimeoutSecs {
    /// The timeout in milliseconds (fits `u32` thanks to the range check).
    pub fn as_ms(self) -> u32 {
        self.0.saturating_mul(1000)
    }
}

impl<'de> Deserialize<'de> for TimeoutSecs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_uint(d, "a timeout in seconds 1..=2592000", |v| {
            if (1..=u64::from(MAX_TIMEOUT_S)).contains(&v) {
                Ok(TimeoutSecs(v as u32))
            } else {
                Err(format!(
                    "invalid timeout {v} s: expected 1..=2592000 seconds"
                ))
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a config could not be loaded. `Display` is always one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read: `{file}: cannot read config: {source}`.
    #[error("{file}: cannot read config: {source}")]
    Io {
        /// Path as given.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Syntax, type or value error found while parsing.
    #[error("{file}:{line}:{col}: {message}")]
    Parse {
        /// File name as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// Cross-field error found by [`validate`].
    #[error("{file}:{line}:{col}: {message}")]
    Invalid {
        /// File name as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// What was wrong and what was expected.
        message: String,
        /// Where in the config the offending value is.
        path: String,
    },
}

impl ConfigError {
    /// `(line, col)`, 1-based, or `None` for an I/O error.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Parse { line, col, .. } | ConfigError::Invalid { line, col, .. } => {
                Some((*line, *col))
            }
        }
    }
}

/// One step of a path into the config tree: a struct field or a list index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathSeg {
    /// A field name, as written in the file.
    Field(&'static str),
    /// A 0-based list index.
    Index(usize),
}

/// A cross-field error: what is wrong and where (a path, since a [`Config`]
/// built in memory has no source text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", display_path(path))]
pub struct ValidationError {
    /// Path to the offending value, e.g. `services[1].real_servers[0].addr`.
    pub path: Vec<PathSeg>,
    /// What was wrong and what was expected.
    pub message: String,
}

/// Renders a path as `services[1].real_servers[0].addr`.
pub fn display_path(path: &[PathSeg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            PathSeg::Field(f) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(f);
            }
            PathSeg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

/// Reads, parses and validates the config file at `path`.
///
/// # Errors
/// [`ConfigError::Io`] if the file cannot be read (or is not UTF-8),
/// otherwise whatever [`parse`] returns; error positions name `path` as
/// given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: file.clone(),
        source,
    })?;
    parse(&src, &file)
}

/// Parses and validates config text; `file_name` only labels error positions.
///
/// # Errors
/// [`ConfigError::Parse`] for RON syntax, unknown or missing fields, wrong
/// types and bad values; [`ConfigError::Invalid`] for the cross-field rules
/// of [`validate`]. Either way the message is `file:line:col: what`.
pub fn parse(src: &str, file_name: &str) -> Result<Config, ConfigError> {
    let opts =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let cfg: Config = opts
        .from_str(src)
        .map_err(|e| ron_error(src, file_name, &e))?;
    validate(&cfg).map_err(|e| {
        let offset = locate_best(src, &e.path);
        let (line, col) = line_col(src, offset);
        ConfigError::Invalid {
            file: file_name.to_string(),
            line,
            col,
            message: e.message,
            path: display_path(&e.path),
        }
    })?;
    Ok(cfg)
}

/// How to move ron's cursor position onto the value the error is about.
enum Anchor {
    /// ron's cursor already points at the problem.
    Cursor,
    /// ron's cursor is just past the offending value (or field name).
    AfterValue,
    /// ron's cursor is on the closing bracket of the offending struct.
    AtClose,
    /// ron's cursor is either on the value or just past it.
    Value,
}

fn section_name(rust_name: &str) -> &str {
    match rust_name {
        "Config" => "the top level",
        "PortConfig" => "a port",
        "RouteConfig" => "a route",
        "NeighbourConfig" => "a neighbour",
        "TimeoutsConfig" => "timeouts",
        "ServiceConfig" => "a service",
        "RealServerConfig" => "a real server",
        other => other,
    }
}

fn in_section(outer: &Option<String>) -> String {
    outer
        .as_deref()
        .map(|o| format!(" in {}", section_name(o)))
        .unwrap_or_default()
}

/// Converts a ron error into our one-line, positioned form.
fn ron_error(src: &str, file: &str, e: &ron::error::SpannedError) -> ConfigError {
    use ron::Error as E;
    let (message, anchor) = match &e.code {
        E::Message(m) => match m.strip_prefix(VALUE_MARK) {
            Some(m) => (m.to_string(), Anchor::AfterValue),
            None => (m.clone(), Anchor::Cursor),
        },
        E::NoSuchStructField {
            expected,
            found,
            outer,
        } => (
            format!(
                "unknown field `{found}`{}: expected one of {}",
                in_section(outer),
                expected.join(", ")
            ),
            Anchor::AfterValue,
        ),
        E::MissingStructField { field, outer } => (
            format!("missing field `{field}`{}", in_section(outer)),
            Anchor::AtClose,
        ),
        E::DuplicateStructField { field, outer } => (
            format!("duplicate field `{field}`{}", in_section(outer)),
            Anchor::AfterValue,
        ),
        E::InvalidValueForType { expected, found } => (
            format!("expected {expected}, found {found}"),
            Anchor::AfterValue,
        ),
        E::IntegerOutOfBounds => (
            "integer out of range for this field".to_string(),
            Anchor::Value,
        ),
        E::ExpectedDifferentStructName { found, .. } => (
            // Our structs' Rust names mean nothing to an operator; names are
            // optional in RON, so suggest dropping it.
            format!("unexpected struct name `{found}`: expected `(` without a name"),
            Anchor::AfterValue,
        ),
        E::ExpectedNamedStructLike(_) | E::ExpectedStructLike => {
            ("expected `(`".to_string(), Anchor::Cursor)
        }
        E::ExpectedComma => ("expected `,`".to_string(), Anchor::Cursor),
        E::ExpectedMapColon => ("expected `:`".to_string(), Anchor::Cursor),
        E::Eof => ("unexpected end of file".to_string(), Anchor::Cursor),
        other => {
            let s = other.to_string();
            let mut c = s.chars();
            let lowered = match c.next() {
                Some(first) => first.to_lowercase().chain(c).collect(),
                None => s,
            };
            (lowered, Anchor::Cursor)
        }
    };
    let cursor = offset_of(src, e.position.line, e.position.col);
    let offset = match anchor {
        Anchor::Cursor => cursor,
        Anchor::AfterValue => value_start_before(src, cursor),
        Anchor::AtClose => struct_start_at(src, cursor),
        Anchor::Value => value_start_at_or_before(src, cursor),
    };
    let (line, col) = line_col(src, offset);
    ConfigError::Parse {
        file: file.to_string(),
        line,
        col,
        message,
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

fn verr(path: Vec<PathSeg>, message: String) -> ValidationError {
    ValidationError { path, message }
}

/// Checks the rules a parsed config must meet beyond types and single
/// values; stops at the first failure, checking in this order: workers,
/// scalar settings, ports, routes, neighbours, services (each list in
/// config order).
///
/// Rules: 1..=64 distinct `workers`; `burst` 1..=64; non-zero `rx_desc`,
/// `tx_desc`, `mbufs_per_socket`, `conn_table_size` and a non-empty
/// `admin_socket`; 1..=64 ports with unique non-empty `name` and `device`, at
/// least one address each and no DIP on two ports; each route's `dst` unique
/// and its `via` on a connected subnet and not a DIP; each neighbour on a
/// connected subnet, unique and not a DIP; at most 65535 services; each
/// VIP:port/proto once; a VIP may not be a DIP; in each service no real
/// server twice, no real server on a director address (DIP or VIP); a DR
/// real server on a connected subnet with its port equal to the vport; a NAT
/// real server reachable by some route, with port 0 exactly when the vport
/// is 0; a `persistence_netmask` only together with a
/// `persistence_timeout`.
///
/// # Errors
/// The first broken rule, with the path of the offending value.
pub fn validate(cfg: &Config) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};

    // Workers.
    if cfg.workers.is_empty() {
        return Err(verr(
            vec![F("workers")],
            "no workers: expected at least one worker lcore, like workers: [1]".into(),
        ));
    }
    if cfg.workers.len() > MAX_WORKERS {
        return Err(verr(
            vec![F("workers"), I(MAX_WORKERS)],
            format!(
                "too many workers ({}): expected at most {MAX_WORKERS}",
                cfg.workers.len()
            ),
        ));
    }
    let mut lcores = HashSet::new();
    for (i, &l) in cfg.workers.iter().enumerate() {
        if !lcores.insert(l) {
            return Err(verr(
                vec![F("workers"), I(i)],
                format!(
                    "duplicate worker lcore {l}: expected each lcore once (one worker per lcore)"
                ),
            ));
        }
    }

    // Scalars.
    if !(1..=MAX_BURST).contains(&cfg.burst) {
        return Err(verr(
            vec![F("burst")],
            format!("invalid burst {}: expected 1..=64 packets", cfg.burst),
        ));
    }
    for (name, zero) in [
        ("mbufs_per_socket", cfg.mbufs_per_socket == 0),
        ("rx_desc", cfg.rx_desc == 0),
        ("tx_desc", cfg.tx_desc == 0),
        ("conn_table_size", cfg.conn_table_size == 0),
    ] {
        if zero {
            return Err(verr(
                vec![F(name)],
                format!("invalid {name} 0: expected at least 1"),
            ));
        }
    }
    if cfg.admin_socket.as_os_str().is_empty() {
        return Err(verr(
            vec![F("admin_socket")],
            "empty admin_socket: expected a path like \"/run/fulcrum/fulcrum.sock\"".into(),
        ));
    }

    // Ports.
    if cfg.ports.is_empty() {
        return Err(verr(
            vec![F("ports")],
            "no ports: expected at least one port".into(),
        ));
    }
    if cfg.ports.len() > MAX_PORTS {
        return Err(verr(
            vec![F("ports"), I(MAX_PORTS)],
            format!(
                "too many ports ({}): expected at most {MAX_PORTS}",
                cfg.ports.len()
            ),
        ));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut devices: HashMap<&str, usize> = HashMap::new();
    let mut dips: HashMap<Ipv4Addr, usize> = HashMap::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        if p.name.is_empty() {
            return Err(verr(
                vec![F("ports"), I(i), F("name")],
                "empty port name: expected a label like \"outside\"".into(),
            ));
        }
        if let Some(&first) = names.get(p.name.as_str()) {
            return Err(verr(
                vec![F("ports"), I(i), F("name")],
                format!(
                    "duplicate port name {:?}: already used by ports[{first}]",
                    p.name
                ),
            ));
        }
        names.insert(&p.name, i);
        if p.device.is_empty() {
            return Err(verr(
                vec![F("ports"), I(i), F("device")],
                "empty device: expected a DPDK device name like \"net_af_packet0\"".into(),
            ));
        }
        if let Some(&first) = devices.get(p.device.as_str()) {
            return Err(verr(
                vec![F("ports"), I(i), F("device")],
                format!(
                    "duplicate device {:?}: already used by ports[{first}]",
                    p.device
                ),
            ));
        }
        devices.insert(&p.device, i);
        if p.addrs.is_empty() {
            return Err(verr(
                vec![F("ports"), I(i), F("addrs")],
                format!(
                    "port {:?} has no address: expected at least one DIP like \"10.0.0.1/24\"",
                    p.name
                ),
            ));
        }
        for (j, a) in p.addrs.iter().enumerate() {
            if let Some(&other) = dips.get(&a.addr) {
                return Err(verr(
                    vec![F("ports"), I(i), F("addrs"), I(j)],
                    format!(
                        "duplicate director address {}: already on port {:?}",
                        a.addr, cfg.ports[other].name
                    ),
                ));
            }
            dips.insert(a.addr, i);
        }
    }
    let connected = || {
        let mut v: Vec<String> = Vec::new();
        for p in &cfg.ports {
            for a in &p.addrs {
                let n = a.network().to_string();
                if !v.contains(&n) {
                    v.push(n);
                }
            }
        }
        v.join(", ")
    };

    // Routes.
    let mut dsts = HashSet::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        if !dsts.insert(r.dst) {
            return Err(verr(
                vec![F("routes"), I(i), F("dst")],
                format!(
                    "duplicate route to {}: expected each destination once",
                    r.dst
                ),
            ));
        }
        let via = r.via.0;
        if dips.contains_key(&via) {
            return Err(verr(
                vec![F("routes"), I(i), F("via")],
                format!("gateway {via} is a director address: expected a neighbouring router"),
            ));
        }
        if cfg.connected_port(via).is_none() {
            return Err(verr(
                vec![F("routes"), I(i), F("via")],
                format!(
                    "gateway {via} is not on a connected subnet: expected an address inside {}",
                    connected()
                ),
            ));
        }
    }

    // Neighbours.
    let mut neigh = HashSet::new();
    for (i, n) in cfg.neighbours.iter().enumerate() {
        let ip = n.ip.0;
        if !neigh.insert(ip) {
            return Err(verr(
                vec![F("neighbours"), I(i), F("ip")],
                format!("duplicate neighbour {ip}: expected each address once"),
            ));
        }
        if dips.contains_key(&ip) {
            return Err(verr(
                vec![F("neighbours"), I(i), F("ip")],
                format!("neighbour {ip} is a director address: expected another host"),
            ));
        }
        if cfg.connected_port(ip).is_none() {
            return Err(verr(
                vec![F("neighbours"), I(i), F("ip")],
                format!(
                    "neighbour {ip} is not on a connected subnet: expected an address inside {}",
                    connected()
                ),
            ));
        }
    }

    // Services.
    // Index u16::MAX is `NO_SERVICE`, the mark of a retired real server.
    if cfg.services.len() > usize::from(u16::MAX) {
        return Err(verr(
            vec![F("services"), I(usize::from(u16::MAX))],
            "too many services: expected at most 65535".into(),
        ));
    }
    let vips: HashSet<Ipv4Addr> = cfg.services.iter().map(|s| s.vip.ip()).collect();
    let mut keys: HashMap<(Ipv4Addr, u16, Proto), usize> = HashMap::new();
    for (i, s) in cfg.services.iter().enumerate() {
        let (vip, vport, proto) = (s.vip.ip(), s.vip.port(), s.proto.0);
        let pname = proto_upper(proto);
        if s.persistence_netmask.is_some() && s.persistence_timeout.is_none() {
            return Err(verr(
                vec![F("services"), I(i), F("persistence_netmask")],
                "persistence_netmask without persistence_timeout: expected a persistence_timeout in seconds too (ipvsadm -M needs -p)".into(),
            ));
        }
        if let Some(&first) = keys.get(&(vip, vport, proto)) {
            return Err(verr(
                vec![F("services"), I(i), F("vip")],
                format!(
                    "duplicate virtual service {pname} {vip}:{vport}: already defined by services[{first}]"
                ),
            ));
        }
        keys.insert((vip, vport, proto), i);
        if let Some(&p) = dips.get(&vip) {
            return Err(verr(
                vec![F("services"), I(i), F("vip")],
                format!(
                    "VIP {vip} is a director address (DIP) of port {:?}: expected a separate address",
                    cfg.ports[p].name
                ),
            ));
        }
        validate_sched(i, s)?;
        let mut seen = HashSet::new();
        for (j, r) in s.real_servers.iter().enumerate() {
            let path = || vec![F("services"), I(i), F("real_servers"), I(j), F("addr")];
            let (rip, rport) = (r.addr.ip(), r.addr.port());
            if !seen.insert((rip, rport)) {
                return Err(verr(
                    path(),
                    format!(
                        "duplicate real server {rip}:{rport} in virtual service {pname} {vip}:{vport}"
                    ),
                ));
            }
            if dips.contains_key(&rip) || vips.contains(&rip) {
                return Err(verr(
                    path(),
                    format!("real server {rip} is one of the director's own addresses: expected another host"),
                ));
            }
            match r.method(s) {
                Method::Dr => {
                    if rport != vport {
                        return Err(verr(
                            path(),
                            format!(
                                "direct routing cannot change the port: real server port {rport} must equal the virtual port {vport}"
                            ),
                        ));
                    }
                    if cfg.connected_port(rip).is_none() {
                        return Err(verr(
                            path(),
                            format!(
                                "direct-routing real server {rip} is not on a connected subnet: DR only rewrites the MAC, expected an address inside {}",
                                connected()
                            ),
                        ));
                    }
                }
                Method::Nat => {
                    if vport == 0 && rport != 0 {
                        return Err(verr(
                            path(),
                            format!(
                                "real server port {rport} in a port-0 service: expected port 0 (every port is forwarded unchanged)"
                            ),
                        ));
                    }
                    if vport != 0 && rport == 0 {
                        return Err(verr(
                            path(),
                            "real server port 0: expected a port 1..=65535 (0 only in a port-0 service)".to_string(),
                        ));
                    }
                    if !cfg.has_route(rip) {
                        return Err(verr(
                            path(),
                            format!(
                                "no route to NAT real server {rip}: expected it on a connected subnet ({}) or covered by a static route",
                                connected()
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Smallest `mh` table size per real server (Maglev §3.4: M ≥ 100·N keeps
/// the shares within about 1 %).
pub const MH_SLOTS_PER_REAL: u64 = 100;

/// A valid `mh` table size to suggest: the smallest prime ≥ both `m` and
/// `need`, or the largest prime allowed when that one is too big.
fn mh_size_hint(m: u64, need: u64) -> u64 {
    let max = sched::MH_TABLE_LEN_MAX as u64;
    let up = (m.max(need).max(2)..=max).find(|&p| sched::is_prime(p));
    up.or_else(|| (2..=max).rev().find(|&p| sched::is_prime(p)))
        .unwrap_or(2)
}

/// The scheduler settings of service `i`: `sched_flags`, `table_size`,
/// `hash_seed`, and, for `mh`, M ≥ 100·N and at most 65535 real servers
/// (slots are u16). Rules and messages are listed in docs/config.md.
fn validate_sched(i: usize, s: &ServiceConfig) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let kind = s.scheduler.0;
    let sname = kind.name();
    let accepted = || {
        let n = kind.flag_names();
        if n.is_empty() {
            format!(
                "scheduler \"{sname}\" takes no flags (only sh takes sh-port, sh-fallback and mh takes mh-port, mh-fallback)"
            )
        } else {
            format!(
                "scheduler \"{sname}\" accepts {}, {}, flag-1 (= {0}), flag-2 (= {1})",
                n[0], n[1]
            )
        }
    };
    let mut set: Vec<(&str, usize)> = Vec::new();
    for (j, name) in s.sched_flags.iter().enumerate() {
        let path = || vec![F("services"), I(i), F("sched_flags"), I(j)];
        let known = SchedKind::ALL
            .iter()
            .any(|k| k.flag_names().contains(&name.as_str()))
            || matches!(name.as_str(), "flag-1" | "flag-2");
        let Some(c) = kind.canonical_flag(name) else {
            let what = if known {
                format!("scheduler flag {name:?} does not apply to scheduler \"{sname}\"")
            } else {
                format!("unknown scheduler flag {name:?}")
            };
            return Err(verr(path(), format!("{what}: {}", accepted())));
        };
        if let Some(&(_, first)) = set.iter().find(|(n, _)| *n == c) {
            let alias = if c == name {
                String::new()
            } else {
                format!(" ({name} = {c})")
            };
            return Err(verr(
                path(),
                format!(
                    "duplicate scheduler flag {c:?}{alias}: already set by sched_flags[{first}]; expected each flag once"
                ),
            ));
        }
        set.push((c, j));
    }

    let n_reals = s.real_servers.len() as u64;
    match (kind, s.table_size) {
        (SchedKind::Dh | SchedKind::Sh, Some(n)) => {
            let n = n as usize;
            if n < 2 || !n.is_power_of_two() || n > sched::POW2_TABLE_LEN_MAX {
                return Err(verr(
                    vec![F("services"), I(i), F("table_size")],
                    format!(
                        "invalid table_size {n} for scheduler \"{sname}\": expected a power of two between 2 and {} (hash buckets)",
                        sched::POW2_TABLE_LEN_MAX
                    ),
                ));
            }
        }
        (SchedKind::Mh, size) => {
            let m = size.map_or(sched::MH_TABLE_LEN_DEFAULT as u64, u64::from);
            let need = MH_SLOTS_PER_REAL * n_reals;
            let max = sched::MH_TABLE_LEN_MAX as u64;
            if size.is_some() && (m > max || !sched::is_prime(m)) {
                return Err(verr(
                    vec![F("services"), I(i), F("table_size")],
                    format!(
                        "invalid table_size {m} for scheduler \"mh\": expected a prime between 2 and {max} (Maglev table size), like {}",
                        mh_size_hint(m, need)
                    ),
                ));
            }
            if n_reals > u64::from(sched::mh::NO_SERVER) {
                return Err(verr(
                    vec![
                        F("services"),
                        I(i),
                        F("real_servers"),
                        I(usize::from(sched::mh::NO_SERVER)),
                    ],
                    format!(
                        "too many real servers ({n_reals}) for scheduler \"mh\": expected at most {}",
                        sched::mh::NO_SERVER
                    ),
                ));
            }
            if m < need {
                let hint = format!(
                    "{} real servers need table_size ≥ {MH_SLOTS_PER_REAL} × {n_reals} = {need} (Maglev: M ≥ 100·N keeps shares within 1 %), like {}",
                    n_reals,
                    mh_size_hint(need, need)
                );
                return Err(match size {
                    Some(_) => verr(
                        vec![F("services"), I(i), F("table_size")],
                        format!("table_size {m} is too small for scheduler \"mh\": {hint}"),
                    ),
                    // Point at the first real server the default cannot
                    // hold, so the operator sees why a size is needed.
                    None => verr(
                        vec![
                            F("services"),
                            I(i),
                            F("real_servers"),
                            I((m / MH_SLOTS_PER_REAL) as usize),
                        ],
                        format!("the default mh table_size {m} is too small: {hint}"),
                    ),
                });
            }
        }
        (_, Some(_)) => {
            return Err(verr(
                vec![F("services"), I(i), F("table_size")],
                format!(
                    "table_size does not apply to scheduler \"{sname}\": expected it only with dh or sh (hash buckets) or mh (Maglev table size)"
                ),
            ));
        }
        (_, None) => {}
    }
    if s.hash_seed.is_some() && kind != SchedKind::Mh {
        return Err(verr(
            vec![F("services"), I(i), F("hash_seed")],
            format!(
                "hash_seed does not apply to scheduler \"{sname}\": expected it only with mh (Maglev)"
            ),
        ));
    }
    Ok(())
}

fn proto_upper(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
    }
}

// ---------------------------------------------------------------------------
// Positions: byte offsets, line/column, and a tiny RON tokenizer
// ---------------------------------------------------------------------------

/// Byte offset of ron's `line:col` (1-based; ron counts columns in bytes).
/// Clamped to `src.len()`.
fn offset_of(src: &str, line: usize, col: usize) -> usize {
    let mut start = 0usize;
    for _ in 1..line {
        match src[start..].find('\n') {
            Some(n) => start += n + 1,
            None => return src.len(),
        }
    }
    let mut off = (start + col.saturating_sub(1)).min(src.len());
    while !src.is_char_boundary(off) {
        off -= 1;
    }
    off
}

/// 1-based `(line, column)` of byte `offset` in `src`; the column counts
/// characters, not bytes. Offsets past the end give the position just after
/// the last character.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut off = offset.min(src.len());
    while !src.is_char_boundary(off) {
        off -= 1;
    }
    let before = &src[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let col = src[line_start..off].chars().count() + 1;
    (line, col)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokKind {
    Open(u8),
    Close(u8),
    Colon,
    Comma,
    Str,
    Ident,
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    kind: TokKind,
    start: usize,
    end: usize,
}

/// Splits RON text into tokens, skipping whitespace and (nested) comments.
/// Never panics; unterminated constructs simply end the token stream.
fn tokenize(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                toks.push(Tok {
                    kind: TokKind::Str,
                    start,
                    end: i,
                });
            }
            b'r' if matches!(b.get(i + 1), Some(b'"') | Some(b'#'))
                && raw_string_hashes(b, i + 1).is_some() =>
            {
                let hashes = raw_string_hashes(b, i + 1).unwrap_or(0);
                i += 2 + hashes;
                loop {
                    if i >= b.len() {
                        break;
                    }
                    if b[i] == b'"'
                        && b[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == b'#')
                            .count()
                            == hashes
                    {
                        i += 1 + hashes;
                        break;
                    }
                    i += 1;
                }
                i = i.min(b.len());
                toks.push(Tok {
                    kind: TokKind::Str,
                    start,
                    end: i,
                });
            }
            b'\'' => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                toks.push(Tok {
                    kind: TokKind::Other,
                    start,
                    end: i,
                });
            }
            b'(' | b'[' | b'{' => {
                i += 1;
                toks.push(Tok {
                    kind: TokKind::Open(c),
                    start,
                    end: i,
                });
            }
            b')' | b']' | b'}' => {
                i += 1;
                toks.push(Tok {
                    kind: TokKind::Close(c),
                    start,
                    end: i,
                });
            }
            b':' => {
                i += 1;
                toks.push(Tok {
                    kind: TokKind::Colon,
                    start,
                    end: i,
                });
            }
            b',' => {
                i += 1;
                toks.push(Tok {
                    kind: TokKind::Comma,
                    start,
                    end: i,
                });
            }
            _ if c == b'_' || c.is_ascii_alphabetic() => {
                // `r#name` raw identifiers included.
                if c == b'r' && b.get(i + 1) == Some(&b'#') {
                    i += 2;
                }
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                toks.push(Tok {
                    kind: TokKind::Ident,
                    start,
                    end: i,
                });
            }
            _ if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => {
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
                toks.push(Tok {
                    kind: TokKind::Other,
                    start,
                    end: i,
                });
            }
            _ => {
                // Any other character (`#`, `!`, non-ASCII): one token per
                // UTF-8 sequence so offsets stay on char boundaries.
                i += src[i..].chars().next().map_or(1, char::len_utf8);
                toks.push(Tok {
                    kind: TokKind::Other,
                    start,
                    end: i,
                });
            }
        }
    }
    toks
}

/// For a raw string starting at `b[i]` (just after the `r`): the number of
/// `#` before the opening quote, if this really is `#*"`.
fn raw_string_hashes(b: &[u8], i: usize) -> Option<usize> {
    let mut n = 0;
    while b.get(i + n) == Some(&b'#') {
        n += 1;
    }
    (b.get(i + n) == Some(&b'"')).then_some(n)
}

/// Index of the bracket matching the open bracket at `i`, if any.
fn matching_close(toks: &[Tok], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(i) {
        match t.kind {
            TokKind::Open(_) => depth += 1,
            TokKind::Close(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Index of the open bracket matching the close bracket at `i`, if any.
fn matching_open(toks: &[Tok], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    for k in (0..=i).rev() {
        match toks[k].kind {
            TokKind::Close(_) => depth += 1,
            TokKind::Open(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Start offset of the value whose tokens span `open..` (with `open` an open
/// bracket): includes a struct name or `Some` written just before it.
fn group_start(toks: &[Tok], open: usize) -> usize {
    if open > 0 && toks[open - 1].kind == TokKind::Ident && toks[open].kind == TokKind::Open(b'(') {
        toks[open - 1].start
    } else {
        toks[open].start
    }
}

/// Start of the value (or field name) that ends at or just before `offset`.
fn value_start_before(src: &str, offset: usize) -> usize {
    let toks = tokenize(src);
    let Some(k) = toks.iter().rposition(|t| t.end <= offset) else {
        return offset;
    };
    match toks[k].kind {
        TokKind::Close(_) => {
            matching_open(&toks, k).map_or(toks[k].start, |o| group_start(&toks, o))
        }
        _ => toks[k].start,
    }
}

/// Start of the value at `offset`, or of the one ending just before it when
/// `offset` is on punctuation (`,` `:` or a closing bracket) or whitespace.
fn value_start_at_or_before(src: &str, offset: usize) -> usize {
    let toks = tokenize(src);
    match toks.iter().find(|t| t.start == offset) {
        Some(t)
            if matches!(
                t.kind,
                TokKind::Str | TokKind::Ident | TokKind::Other | TokKind::Open(_)
            ) =>
        {
            offset
        }
        _ => value_start_before(src, offset),
    }
}

/// Start of the struct whose closing bracket is at `offset`.
fn struct_start_at(src: &str, offset: usize) -> usize {
    let toks = tokenize(src);
    match toks.iter().position(|t| t.start >= offset) {
        Some(k) if matches!(toks[k].kind, TokKind::Close(_)) => {
            matching_open(&toks, k).map_or(offset, |o| group_start(&toks, o))
        }
        _ => offset,
    }
}

/// Index just past the value starting at token `i`.
fn skip_value(toks: &[Tok], i: usize) -> usize {
    let Some(t) = toks.get(i) else { return i };
    match t.kind {
        TokKind::Open(_) => matching_close(toks, i).map_or(toks.len(), |c| c + 1),
        TokKind::Ident if kind_at(toks, i + 1) == Some(TokKind::Open(b'(')) => {
            matching_close(toks, i + 1).map_or(toks.len(), |c| c + 1)
        }
        _ => i + 1,
    }
}

fn kind_at(toks: &[Tok], i: usize) -> Option<TokKind> {
    toks.get(i).map(|t| t.kind)
}

/// Walks `path` from the value at token `i`. Returns the token index of the
/// deepest value reached and whether the whole path was found.
fn walk(src: &str, toks: &[Tok], mut i: usize, path: &[PathSeg]) -> (usize, bool) {
    let Some((head, rest)) = path.split_first() else {
        return (i, true);
    };
    let here = i;
    let text = |k: usize| toks.get(k).map_or("", |t| &src[t.start..t.end]);
    if kind_at(toks, i) == Some(TokKind::Ident) && kind_at(toks, i + 1) == Some(TokKind::Open(b'('))
    {
        if text(i) == "Some" {
            // `Some(x)` written explicitly: the path continues inside.
            let (d, found) = walk(src, toks, i + 2, path);
            return if found { (d, true) } else { (here, false) };
        }
        // A struct name before `(`.
        i += 1;
    }
    match *head {
        PathSeg::Field(name) => {
            if kind_at(toks, i) != Some(TokKind::Open(b'(')) {
                return (here, false);
            }
            let mut k = i + 1;
            while let Some(t) = toks.get(k) {
                match t.kind {
                    TokKind::Close(_) => break,
                    TokKind::Comma => k += 1,
                    TokKind::Ident if kind_at(toks, k + 1) == Some(TokKind::Colon) => {
                        let field = text(k);
                        if field == name || field.strip_prefix("r#") == Some(name) {
                            return walk(src, toks, k + 2, rest);
                        }
                        k = skip_value(toks, k + 2);
                    }
                    _ => return (here, false),
                }
            }
            (here, false)
        }
        PathSeg::Index(n) => {
            if kind_at(toks, i) != Some(TokKind::Open(b'[')) {
                return (here, false);
            }
            let mut k = i + 1;
            let mut idx = 0;
            while let Some(t) = toks.get(k) {
                match t.kind {
                    TokKind::Close(_) => break,
                    TokKind::Comma => k += 1,
                    _ => {
                        if idx == n {
                            return walk(src, toks, k, rest);
                        }
                        idx += 1;
                        k = skip_value(toks, k);
                    }
                }
            }
            (here, false)
        }
    }
}

/// Byte offset where the value at `path` starts in RON text `src`, e.g. the
/// opening quote of `"10.1.0.11:80"` for
/// `[Field("services"), Index(0), Field("real_servers"), Index(0), Field("addr")]`.
///
/// Comments, strings and nesting are honoured, so a commented-out copy of a
/// value is never matched. A struct name (`Config(...)`) and an explicit
/// `Some(...)` around a value are stepped over.
///
/// Returns `None` when the path does not exist in the text (e.g. a field left
/// to its default).
pub fn locate(src: &str, path: &[PathSeg]) -> Option<usize> {
    let toks = tokenize(src);
    if toks.is_empty() {
        return None;
    }
    let (k, found) = walk(src, &toks, 0, path);
    found.then(|| toks[k].start)
}

/// Like [`locate`], but falls back to the deepest existing ancestor of `path`
/// (e.g. the service when the field was omitted), and to offset 0.
fn locate_best(src: &str, path: &[PathSeg]) -> usize {
    let toks = tokenize(src);
    if toks.is_empty() {
        return 0;
    }
    let (k, _) = walk(src, &toks, 0, path);
    toks[k].start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_cidr() {
        assert_eq!(
            Cidr::parse("10.0.0.1/24"),
            Ok(Cidr {
                addr: Ipv4Addr::new(10, 0, 0, 1),
                len: 24
            })
        );
        assert_eq!(
            Cidr::parse("10.0.0.1/24").map(|c| c.network().to_string()),
            Ok("10.0.0.0/24".to_string())
        );
        // /31 and /32 have no network/broadcast addresses (RFC 3021).
        assert!(Cidr::parse("10.0.0.0/31").is_ok());
        assert!(Cidr::parse("10.0.0.7/32").is_ok());
        for bad in [
            "10.0.0.1",
            "10.0.0.1/",
            "10.0.0.1/33",
            "10.0.0.1/+8",
            "10.0.0/24",
            "010.0.0.1/24",
            "10.0.0.255/24",
            "224.0.0.1/4",
            "0.0.0.1/8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn test_parse_ipv4_net() {
        assert_eq!(
            Ipv4Net::parse("0.0.0.0/0"),
            Ok(Ipv4Net {
                addr: Ipv4Addr::UNSPECIFIED,
                len: 0
            })
        );
        let n = Ipv4Net::parse("10.2.0.0/16").expect("valid");
        assert!(n.contains(Ipv4Addr::new(10, 2, 255, 1)));
        assert!(!n.contains(Ipv4Addr::new(10, 3, 0, 1)));
        assert_eq!(
            Ipv4Net::parse("10.2.0.1/16"),
            Err("invalid prefix \"10.2.0.1/16\": host bits set, expected \"10.2.0.0/16\"".into())
        );
    }

    #[test]
    fn test_parse_socket_addr() {
        let a = SocketAddrV4Str::parse("10.0.0.100:0").expect("port 0 is allowed");
        assert_eq!((a.ip(), a.port()), (Ipv4Addr::new(10, 0, 0, 100), 0));
        assert_eq!(
            SocketAddrV4Str::parse("10.0.0.100:65535").map(|a| a.port()),
            Ok(65535)
        );
        for bad in [
            "10.0.0.100",
            "10.0.0.100:",
            "10.0.0.100:-1",
            "10.0.0.100:123456",
            "10.0.0.100:8o",
            ":80",
            "0.0.0.0:80",
            "255.255.255.255:80",
        ] {
            assert!(SocketAddrV4Str::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            SocketAddrV4Str::parse("10.0.0.1:70000"),
            Err("invalid address \"10.0.0.1:70000\": port 70000 out of range 0..=65535".into())
        );
    }

    #[test]
    fn test_parse_mac() {
        assert_eq!(
            MacAddr::parse("02:00:0A:01:00:0b"),
            Ok(MacAddr([2, 0, 0x0a, 1, 0, 0x0b]))
        );
        assert_eq!(
            MacAddr([2, 0, 0x0a, 1, 0, 0x0b]).to_string(),
            "02:00:0a:01:00:0b"
        );
        for bad in [
            "02:00:00:00:01",
            "02:00:00:00:01:01:01",
            "02-00-00-00-01-01",
            "2:00:00:00:01:01",
            "02:00:00:00:01:0g",
            "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00",
            "01:00:5e:00:00:01",
        ] {
            assert!(MacAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn test_connected_port_longest_match() {
        let src = r#"(eal_args: [], workers: [1], ports: [
            (name: "a", device: "d0", addrs: ["10.0.0.1/16"]),
            (name: "b", device: "d1", addrs: ["10.0.5.1/24"]),
        ])"#;
        let cfg = parse(src, "t.ron").expect("valid");
        assert_eq!(cfg.connected_port(Ipv4Addr::new(10, 0, 5, 9)), Some(1));
        assert_eq!(cfg.connected_port(Ipv4Addr::new(10, 0, 6, 9)), Some(0));
        assert_eq!(cfg.connected_port(Ipv4Addr::new(10, 1, 0, 1)), None);
        assert!(!cfg.has_route(Ipv4Addr::new(10, 1, 0, 1)));
        assert_eq!(cfg.dip_port(Ipv4Addr::new(10, 0, 5, 1)), Some(1));
    }

    #[test]
    fn test_tokenize() {
        let src =
            "Config( a: r#\"x\"y\"#, /* c /* nested */ */ b: [-1, 'z'], // tail\n c: Some(\"é\") )";
        let kinds: Vec<TokKind> = tokenize(src).iter().map(|t| t.kind).collect();
        use TokKind::*;
        assert_eq!(
            kinds,
            vec![
                Ident,
                Open(b'('),
                Ident,
                Colon,
                Str,
                Comma,
                Ident,
                Colon,
                Open(b'['),
                Other,
                Comma,
                Other,
                Close(b']'),
                Comma,
                Ident,
                Colon,
                Ident,
                Open(b'('),
                Str,
                Close(b')'),
                Close(b')')
            ]
        );
        let toks = tokenize(src);
        assert_eq!(&src[toks[4].start..toks[4].end], "r#\"x\"y\"#");
        assert_eq!(&src[toks[9].start..toks[9].end], "-1");
    }

    #[test]
    fn test_value_start_before() {
        let src = "(a: [1, 2], b: \"xyz\", c: (d: 1))";
        // Just past `"xyz"`.
        let after_str = src.find("\", c").expect("pos") + 1;
        assert_eq!(
            value_start_before(src, after_str),
            src.find("\"xyz").expect("pos")
        );
        // Just past the inner struct `(d: 1)`.
        let after_struct = src.len() - 1;
        assert_eq!(
            value_start_before(src, after_struct),
            src.find("(d").expect("pos")
        );
        // On the closing bracket of the list: its start.
        let close = src.find(']').expect("pos");
        assert_eq!(struct_start_at(src, close), src.find('[').expect("pos"));
    }

    #[test]
    fn test_locate_through_some() {
        use PathSeg::{Field as F, Index as I};
        let src = "(x: Some((y: [3, Some(4)])))";
        let off = locate(src, &[F("x"), F("y"), I(1)]).expect("found");
        assert_eq!(&src[off..off + 4], "Some");
        assert_eq!(
            display_path(&[F("services"), I(1), F("real_servers"), I(0), F("addr")]),
            "services[1].real_servers[0].addr"
        );
    }

    #[test]
    fn test_validate_in_memory_error_has_path() {
        let src = r#"(eal_args: [], workers: [1], burst: 0, ports: [(name: "a", device: "d", addrs: ["10.0.0.1/24"])])"#;
        let opts = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let cfg: Config = opts.from_str(src).expect("parses");
        let e = validate(&cfg).expect_err("burst 0");
        assert_eq!(e.path, vec![PathSeg::Field("burst")]);
        assert_eq!(
            e.to_string(),
            "burst: invalid burst 0: expected 1..=64 packets"
        );
    }

    #[test]
    fn test_parse_struct_name_error() {
        let src = r#"(eal_args: [], workers: [1], ports: [Port(name: "a", device: "d", addrs: ["10.0.0.1/24"])])"#;
        let e = parse(src, "t.ron").expect_err("named struct");
        assert_eq!(
            e.to_string(),
            "t.ron:1:38: unexpected struct name `Port`: expected `(` without a name"
        );
    }
}
