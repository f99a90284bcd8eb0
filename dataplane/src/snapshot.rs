//! The immutable, compiled view of the configuration that workers read.
//!
//! Layer: control → dataplane contract. `control` compiles a validated config
//! into a [`Snapshot`] and publishes it through `arc-swap`; each worker loads it
//! once per burst. Nothing here is ever mutated after publication, and nothing
//! here parses text. Addresses are IPv4 as `u32` in host order (so `10.0.0.1` is
//! `0x0a00_0001`); ports are `u16` in host order.

use std::sync::Arc;

use hashbrown::HashMap;

/// Transport protocol of a virtual service, with its IANA protocol number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Proto {
    /// TCP, IP protocol 6.
    Tcp = 6,
    /// UDP, IP protocol 17.
    Udp = 17,
}

impl Proto {
    /// The IP protocol number (RFC 790 / IANA registry).
    pub fn number(self) -> u8 {
        self as u8
    }
    /// The protocol for an IP protocol number, if fulcrum balances it.
    pub fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// How a packet reaches the real server (ipvsadm `-m`, `-g`, `-i`; DPVS's
/// `--fullnat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Masquerading (ipvsadm `-m`): destination VIP:vport becomes RIP:rport and
    /// replies come back through the director, which restores VIP:vport.
    Nat,
    /// Direct routing (ipvsadm `-g`): only the destination MAC changes; the real
    /// server holds the VIP on a loopback and answers the client directly.
    Dr,
    /// IP tunnelling (ipvsadm `-i`, VS/TUN): the packet is carried to the real
    /// server inside an outer IPv4 header (IPIP, RFC 2003) or an outer
    /// IPv4/UDP/GUE header ([`TunType::Gue`]); the real server holds the VIP,
    /// decapsulates and answers the client directly. Parameters per real
    /// server: [`RealServer::tun`].
    Tun,
    /// FullNAT (DPVS `fullnat`, ipvsadm `--fullnat`): the source CIP:cport
    /// becomes a local address and port (LIP:lport) of the service's pool and
    /// the destination VIP:vport becomes RIP:rport, so the real server may
    /// sit on any routed subnet with no route back through the director; its
    /// replies to LIP:lport are turned back into VIP:vport → CIP:cport.
    FullNat,
}

/// The encapsulation of a [`Method::Tun`] real server, as IPVS's
/// `--tun-type` (`IP_VS_CONN_F_TUNNEL_TYPE_IPIP` / `_GUE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TunType {
    /// IPv4 in IPv4 (RFC 2003): a 20-byte outer header, protocol 4.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation (draft-ietf-intarea-gue, variant 0): an
    /// outer IPv4 header, an 8-byte UDP header to [`TunConf::port`] and a
    /// 4-byte GUE header whose protocol field is 4 (IPv4), 32 bytes in all.
    Gue,
}

/// Tunnel parameters of one real server; meaningful only with
/// [`Method::Tun`] (all zero/default otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TunConf {
    /// Encapsulation.
    pub kind: TunType,
    /// GUE only: the outer UDP destination port, host order (IPVS
    /// `--tun-port`); 0 for IPIP.
    pub port: u16,
    /// Outer source address, host order (the service's `tun_src`); 0 = the
    /// egress port's DIP on the real server's subnet (else its first DIP).
    pub src: u32,
}

/// How a FullNAT service tells the real server the client's address, which
/// the source rewrite hides (per service; DPVS and Alibaba LVS offer TOA,
/// haproxy's PROXY protocol is the other common way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClientAddress {
    /// Nothing: the real server sees LIP:lport.
    #[default]
    None,
    /// The TOA TCP option (kind 254, length 8: client port then client
    /// IPv4, network order), as DPVS's and Alibaba LVS's TOA kernel modules
    /// read it.
    Toa,
    /// A PROXY protocol version 2 header (haproxy's proxy-protocol.txt §2.2)
    /// in front of the first client data segment; later sequence and
    /// acknowledgment numbers are shifted by its 28 bytes.
    ProxyV2,
}

impl ClientAddress {
    /// The config word: `"none"`, `"toa"`, `"proxy_v2"`.
    pub fn config_name(self) -> &'static str {
        match self {
            ClientAddress::None => "none",
            ClientAddress::Toa => "toa",
            ClientAddress::ProxyV2 => "proxy_v2",
        }
    }
}

/// Reads the config words `none`, `toa`, `proxy_v2`.
impl std::str::FromStr for ClientAddress {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "none" => Ok(ClientAddress::None),
            "toa" => Ok(ClientAddress::Toa),
            "proxy_v2" => Ok(ClientAddress::ProxyV2),
            _ => Err(UnknownName {
                what: "client address method",
                found: s.to_string(),
                expected: "none, toa, proxy_v2",
            }),
        }
    }
}

/// The local ports (lports) FullNAT may book on every local address,
/// inclusive, host order. Default 1024..=65535 (DPVS's `sa_pool` leaves the
/// well-known ports alone too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LportRange {
    /// First port, 1..=65535.
    pub lo: u16,
    /// Last port, `lo..=65535`.
    pub hi: u16,
}

impl Default for LportRange {
    fn default() -> Self {
        LportRange {
            lo: 1024,
            hi: 65535,
        }
    }
}

/// An IPv4 prefix: `addr` in host order, `len` in bits (0..=32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// Network address, host order. Bits beyond `len` are zero.
    pub addr: u32,
    /// Prefix length in bits, 0..=32.
    pub len: u8,
}

impl Prefix {
    /// The netmask for `len`, host order (`len = 0` gives 0).
    pub fn mask(self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }
    /// Whether `ip` (host order) lies inside this prefix.
    pub fn contains(self, ip: u32) -> bool {
        ip & self.mask() == self.addr
    }
}

/// Which TCP/UDP checksums a port's packets have verified.
///
/// IPVS verifies the L4 checksum of NAT packets (`tcp_snat_handler`);
/// fulcrum always verifies it where it matters most, on the packet that
/// would create a connection, so a corrupt or forged SYN never holds a slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChecksumCheck {
    /// Only packets that would create a connection (a TCP SYN, the first UDP
    /// datagram of a flow) and packets to the director itself. The default:
    /// established traffic is the real servers' and clients' to check.
    #[default]
    NewFlows,
    /// Every TCP and UDP packet, for links that corrupt in flight.
    All,
}

/// A port's MTU when the config names none, bytes (Ethernet's, RFC 894).
pub const DEFAULT_MTU: u16 = 1500;
/// The smallest port MTU the config accepts, bytes: every IPv4 host must
/// take a 576-byte datagram (RFC 791 §3.1, RFC 1122 §3.3.3).
pub const MIN_MTU: u16 = 576;
/// The largest port MTU the config accepts, bytes (a jumbo frame).
pub const MAX_MTU: u16 = 9000;

/// One dataplane port as the workers see it.
#[derive(Clone, Debug)]
pub struct PortConf {
    /// Operator's name for the port (from the config), for logs and stats.
    pub name: String,
    /// The port's MAC address, wire order. Used as the source MAC of every
    /// frame fulcrum sends on this port and in ARP replies.
    pub mac: [u8; 6],
    /// The director's own addresses on this port (DIPs), with their prefixes.
    pub addrs: Vec<(u32, Prefix)>,
    /// 802.1Q VLAN ids accepted on this port, tagged. Empty (the default,
    /// and the only value until VLAN sub-interfaces exist): every tagged
    /// frame is dropped as `vlan_not_configured`.
    pub vlans: Vec<u16>,
    /// Which L4 checksums are verified on packets from this port.
    pub verify_checksums: ChecksumCheck,
    /// The largest IPv4 datagram (total length, bytes; the Ethernet header
    /// not counted) fulcrum sends on this port, [`MIN_MTU`]..=[`MAX_MTU`],
    /// default [`DEFAULT_MTU`]. A forwarded NAT or DR packet above it gets
    /// ICMP "fragmentation needed" with DF set, else `mtu_exceeded`.
    pub mtu: u16,
}

impl Default for PortConf {
    fn default() -> Self {
        PortConf {
            name: String::new(),
            mac: [0; 6],
            addrs: Vec::new(),
            vlans: Vec::new(),
            verify_checksums: ChecksumCheck::default(),
            mtu: DEFAULT_MTU,
        }
    }
}

impl PortConf {
    /// Whether `ip` (host order) is the directed broadcast address of one
    /// of this port's connected subnets (prefixes up to /30; a /31 or /32
    /// has no broadcast address, RFC 3021).
    pub fn is_subnet_broadcast(&self, ip: u32) -> bool {
        self.addrs
            .iter()
            .any(|(_, p)| p.len <= 30 && p.contains(ip) && ip | p.mask() == u32::MAX)
    }

    /// Whether `ip` (host order) lies in one of this port's connected
    /// subnets: where a neighbour on this port may have its address.
    pub fn on_link(&self, ip: u32) -> bool {
        self.addrs.iter().any(|(_, p)| p.contains(ip))
    }
}

/// One route: packets to `dst` leave on `port`, to `via` (a gateway, host
/// order) or, when `via` is `None`, directly to the destination (connected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub dst: Prefix,
    /// Output port index into [`Snapshot::ports`].
    pub port: u8,
    /// Next-hop gateway address, host order; `None` for a connected route.
    pub via: Option<u32>,
}

/// What the director answers for at an address of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalKind {
    /// A director interface address (DIP): answers ARP and ICMP echo.
    Dip,
    /// A virtual IP: answers ARP and ICMP echo, and balances its services.
    Vip,
    /// A VRRP floating address that is not a VIP (a NAT real servers'
    /// gateway, keepalived's `virtual_ipaddress`), held here because its
    /// instance is master: answers ARP and ICMP echo, serves nothing else.
    Floating,
    /// A VIP or floating address whose VRRP instance is not master on this
    /// director (RFC 5798 §6.4.2: a backup "MUST NOT respond to ARP
    /// requests for the IPvX address(es)" and "MUST discard packets with a
    /// destination link-layer MAC address equal to the virtual router MAC
    /// address" — fulcrum, which uses the port's MAC as keepalived does
    /// without `use_vmac`, discards packets to the address instead): no
    /// ARP answer (`arp_vrrp_backup`), every packet to it dropped
    /// (`vrrp_backup`).
    Standby,
    /// A FullNAT local address (LIP, DPVS `laddr`): answers ARP and ICMP
    /// echo on the ports that reach the real servers; TCP/UDP to it is a
    /// real server's reply to a FullNAT connection.
    Lip,
}

/// An address the director answers ARP and ICMP echo for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddr {
    /// What the address is.
    pub kind: LocalKind,
    /// Bit `i` set: answer ARP for this address on port `i`.
    pub arp_ports: u64,
}

/// Key of a virtual service: VIP, virtual port and protocol (host order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// Virtual IP, host order.
    pub vip: u32,
    /// Virtual port, host order; 0 means "all ports" (IPVS port-0 service).
    pub vport: u16,
    /// Protocol.
    pub proto: Proto,
}

/// One virtual service.
#[derive(Clone, Debug)]
pub struct Service {
    /// VIP:vport/proto.
    pub key: ServiceKey,
    /// IPVS scheduler for new connections.
    pub scheduler: sched::SchedKind,
    /// Scheduler flags (ipvsadm `-b`: `sh-port`, `sh-fallback`, `mh-port`,
    /// `mh-fallback`); only those of `scheduler` are ever set.
    pub sched_flags: sched::SchedFlags,
    /// Scheduler table sizes and seeds (`dh`/`sh` buckets, `mh` M and hash
    /// seed); valid by [`sched::SchedParams::validate`].
    pub sched_params: sched::SchedParams,
    /// For an `mh` service, its Maglev table, built by the control thread
    /// from `reals` in order (identities [`RealServer::sched_id`], the
    /// snapshot's weights, `sched_params.mh_table_len` slots,
    /// `sched_params.mh_seed`) and shared by every worker; `None` for every
    /// other scheduler (and for an `mh` service whose workers are to build
    /// the table themselves).
    pub mh_table: Option<Arc<sched::MhTable>>,
    /// Dense ids into [`Snapshot::reals`] of this service's real servers, in
    /// configuration order. The scheduler's index `i` means `reals[i]`.
    pub reals: Vec<u32>,
    /// Persistence (ipvsadm `-p`/`-M`, keepalived `persistence_timeout`);
    /// `None` for a service without it.
    pub persistence: Option<Persistence>,
    /// FullNAT local addresses (LIPs, DPVS `laddr`), host order, in config
    /// order; empty unless a real server of the service uses
    /// [`Method::FullNat`].
    pub local_addresses: Vec<u32>,
    /// How FullNAT connections of this service carry the client address.
    pub client_address: ClientAddress,
}

/// Persistence of a virtual service: new connections from one client
/// network reuse the real server its earlier connection was given, until
/// `timeout_ms` after the last of them (IPVS `ip_vs_sched_persist()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Template lifetime after its last use, ms (ipvsadm `-p` seconds ×
    /// 1000; 1 s ..= 30 days).
    pub timeout_ms: u32,
    /// Client netmask, host order (ipvsadm `-M`; `u32::MAX` = one template
    /// per client address, `0xffff_ff00` = per /24).
    pub mask: u32,
}

/// [`RealServer::service`] of a retired real server: one that a runtime edit
/// removed and whose id is kept, in no service, for connections that still
/// point at it. Never a valid service index (at most 65535 services).
pub const NO_SERVICE: u16 = u16::MAX;

/// One real server of one service. Ids start at 1 because 0 is kept for
/// "none" in connection entries. An id names the same (service key, RIP,
/// rport) for the whole run: the control plane keeps it across recompiles
/// and never reuses it, so a connection's `real` always counts on the right
/// real server. A removed real server stays as a retired entry (weight 0,
/// `service` = [`NO_SERVICE`], listed by no service): the ids are dense over
/// everything ever compiled in this run, with such holes.
#[derive(Clone, Debug)]
pub struct RealServer {
    /// Real server IP (RIP), host order.
    pub ip: u32,
    /// Real server port, host order (equal to the vport in DR mode).
    pub port: u16,
    /// IPVS weight, 0..=65535; 0 quiesces it (no new connections).
    pub weight: u32,
    /// Forwarding method towards this real server.
    pub method: Method,
    /// Tunnel parameters ([`Method::Tun`] only; default otherwise).
    pub tun: TunConf,
    /// Index into [`Snapshot::services`] of the owning service, or
    /// [`NO_SERVICE`] for a retired real server.
    pub service: u16,
    /// IPVS `IP_VS_DEST_F_AVAILABLE`: the real server is in its service and
    /// its health checks pass. `false` for a retired one, and for one whose
    /// checks failed (removed from the scheduler's list, or kept at weight 0
    /// with `inhibit_on_failure`). With [`Snapshot::expire_nodest_conn`] a
    /// packet of a connection to an unavailable real server expires that
    /// connection.
    pub available: bool,
}

impl RealServer {
    /// The identity schedulers hash for this real server (`mh`'s
    /// permutation follows it, not the server's position):
    /// `RIP << 16 | port`, both host order, so bits 16..48 are the RIP and
    /// bits 0..16 the port. Never 0 for a valid real server (its RIP is a
    /// unicast host address).
    #[inline]
    pub fn sched_id(&self) -> u64 {
        (u64::from(self.ip) << 16) | u64::from(self.port)
    }
}

/// Connection timeouts in milliseconds, per IPVS state.
///
/// Defaults mirror `net/netfilter/ipvs/ip_vs_proto_tcp.c` and `_udp.c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// ESTABLISHED, default 900 s.
    pub tcp_established_ms: u32,
    /// SYN_SENT, default 120 s.
    pub tcp_syn_sent_ms: u32,
    /// SYN_RECV, default 60 s.
    pub tcp_syn_recv_ms: u32,
    /// FIN_WAIT, default 120 s.
    pub tcp_fin_wait_ms: u32,
    /// TIME_WAIT, default 120 s.
    pub tcp_time_wait_ms: u32,
    /// CLOSE, default 10 s.
    pub tcp_close_ms: u32,
    /// CLOSE_WAIT, default 60 s.
    pub tcp_close_wait_ms: u32,
    /// LAST_ACK, default 30 s.
    pub tcp_last_ack_ms: u32,
    /// LISTEN, default 120 s.
    pub tcp_listen_ms: u32,
    /// SYNACK, default 120 s.
    pub tcp_synack_ms: u32,
    /// UDP, default 300 s.
    pub udp_ms: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_established_ms: 900_000,
            tcp_syn_sent_ms: 120_000,
            tcp_syn_recv_ms: 60_000,
            tcp_fin_wait_ms: 120_000,
            tcp_time_wait_ms: 120_000,
            tcp_close_ms: 10_000,
            tcp_close_wait_ms: 60_000,
            tcp_last_ack_ms: 30_000,
            tcp_listen_ms: 120_000,
            tcp_synack_ms: 120_000,
            udp_ms: 300_000,
        }
    }
}

/// Everything the workers need, compiled and immutable.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Bumped by every publication; workers rebuild per-snapshot state when it
    /// changes.
    pub generation: u64,
    /// Ports, indexed by dataplane port index (config order).
    pub ports: Vec<PortConf>,
    /// Routes, sorted by descending prefix length (first match = longest).
    pub routes: Vec<Route>,
    /// Permanent neighbours: (port index, IP host order, MAC).
    pub static_neighbours: Vec<(u8, u32, [u8; 6])>,
    /// Addresses the director answers for.
    pub local: HashMap<u32, LocalAddr>,
    /// Virtual services, indexed by service id.
    pub services: Vec<Service>,
    /// VIP:vport/proto → index into `services`.
    pub service_index: HashMap<ServiceKey, u16>,
    /// Real servers by id; index 0 is an unused placeholder, retired ones
    /// stay (see [`RealServer`]), so the length never shrinks within a run.
    pub reals: Vec<RealServer>,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// IPVS's `expire_nodest_conn` sysctl: a client packet of a connection
    /// whose real server is not [`RealServer::available`] expires the
    /// connection at once; a bare SYN is then scheduled afresh, anything
    /// else is dropped (`conn_dest_unavailable`), so the client's
    /// retransmission or reconnect reaches a live server instead of
    /// waiting out the connection's timeout. Default `false` (IPVS's too).
    pub expire_nodest_conn: bool,
    /// The lports FullNAT books on each local address.
    pub lport_range: LportRange,
}

impl Snapshot {
    /// Longest-prefix route lookup for `dst` (host order).
    ///
    /// Returns the output port and the next-hop IP (the gateway, or `dst`
    /// itself on a connected route), or `None` when no route matches.
    pub fn route(&self, dst: u32) -> Option<(u8, u32)> {
        self.routes
            .iter()
            .find(|r| r.dst.contains(dst))
            .map(|r| (r.port, r.via.unwrap_or(dst)))
    }

    /// Finds the virtual service for a packet to `vip:vport/proto`, falling back
    /// to the port-0 ("all ports") service of that VIP as IPVS does.
    pub fn service(&self, vip: u32, vport: u16, proto: Proto) -> Option<u16> {
        let k = ServiceKey { vip, vport, proto };
        if let Some(&s) = self.service_index.get(&k) {
            return Some(s);
        }
        self.service_index
            .get(&ServiceKey {
                vip,
                vport: 0,
                proto,
            })
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_prefix_contains() {
        let p = Prefix {
            addr: 0x0a00_0000,
            len: 24,
        };
        assert!(p.contains(0x0a00_0064));
        assert!(!p.contains(0x0a00_0164));
        let d = Prefix { addr: 0, len: 0 };
        assert!(d.contains(0xffff_ffff));
        assert_eq!(Prefix { addr: 1, len: 32 }.mask(), u32::MAX);
    }

    #[test]
    fn test_route_longest_prefix_first() {
        let s = Snapshot {
            routes: vec![
                Route {
                    dst: Prefix {
                        addr: 0x0a01_0000,
                        len: 24,
                    },
                    port: 1,
                    via: None,
                },
                Route {
                    dst: Prefix { addr: 0, len: 0 },
                    port: 0,
                    via: Some(0x0a00_00fe),
                },
            ],
            ..Default::default()
        };
        assert_eq!(s.route(0x0a01_000b), Some((1, 0x0a01_000b)));
        assert_eq!(s.route(0x0808_0808), Some((0, 0x0a00_00fe)));
    }
}

// ---------------------------------------------------------------------------
// Names: each protocol and forwarding method spelled in one place
// ---------------------------------------------------------------------------

/// A name that [`Proto`]'s or [`Method`]'s `FromStr` does not know. Its
/// `Display` is the one-line message the config loader shows, e.g.
/// `invalid protocol "sctp": expected one of tcp, udp`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {found:?}: expected one of {expected}")]
pub struct UnknownName {
    /// What kind of name was expected (`protocol`, `forwarding method`).
    pub what: &'static str,
    /// The text as given.
    pub found: String,
    /// The accepted names, comma separated.
    pub expected: &'static str,
}

impl Proto {
    /// Every protocol fulcrum balances, in IP protocol number order (the
    /// order ipvsadm lists services in).
    pub const ALL: [Proto; 2] = [Proto::Tcp, Proto::Udp];

    /// The config word (`"tcp"`, `"udp"`, as the README's `proto` field
    /// spells it): what `FromStr` reads back.
    pub fn config_name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// ipvsadm's spelling in listings and messages: `TCP`, `UDP`.
impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        })
    }
}

/// Reads the config words `tcp` and `udp` (exactly; ipvsadm's `-t`/`-u`
/// are options, not names).
impl std::str::FromStr for Proto {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Proto::ALL
            .into_iter()
            .find(|p| p.config_name() == s)
            .ok_or_else(|| UnknownName {
                what: "protocol",
                found: s.to_string(),
                expected: "tcp, udp",
            })
    }
}

impl Method {
    /// Every forwarding method fulcrum implements.
    pub const ALL: [Method; 4] = [Method::Nat, Method::Dr, Method::Tun, Method::FullNat];

    /// The canonical config word (`"nat"`, `"dr"`, `"tun"`, `"fullnat"`, as
    /// the README's `forwarding` field spells it): what `FromStr` reads back.
    pub fn config_name(self) -> &'static str {
        match self {
            Method::Nat => "nat",
            Method::Dr => "dr",
            Method::Tun => "tun",
            Method::FullNat => "fullnat",
        }
    }
}

/// ipvsadm's forwarding column (`fwd_name()` in ipvsadm.c: `Masq`, `Route`,
/// `Tunnel`; `Local` is the one fulcrum does not have), plus `FullNat` as
/// DPVS's ipvsadm prints it.
impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Nat => "Masq",
            Method::Dr => "Route",
            Method::Tun => "Tunnel",
            Method::FullNat => "FullNat",
        })
    }
}

/// Reads the config words: `nat` or its alias `masq` (ipvsadm `-m`), `dr`
/// or its alias `route` (ipvsadm `-g`), `tun` or its alias `tunnel`
/// (ipvsadm `-i`), `fullnat` (DPVS), exactly as the README lists them.
impl std::str::FromStr for Method {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "nat" | "masq" => Ok(Method::Nat),
            "dr" | "route" => Ok(Method::Dr),
            "tun" | "tunnel" => Ok(Method::Tun),
            "fullnat" => Ok(Method::FullNat),
            _ => Err(UnknownName {
                what: "forwarding method",
                found: s.to_string(),
                expected: "nat, masq, dr, route, tun, tunnel, fullnat",
            }),
        }
    }
}

impl TunType {
    /// The config word (`"ipip"`, `"gue"`, as IPVS's `--tun-type`): what
    /// `FromStr` reads back.
    pub fn config_name(self) -> &'static str {
        match self {
            TunType::Ipip => "ipip",
            TunType::Gue => "gue",
        }
    }
}

/// Reads `ipip` or `gue`.
impl std::str::FromStr for TunType {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "ipip" => Ok(TunType::Ipip),
            "gue" => Ok(TunType::Gue),
            _ => Err(UnknownName {
                what: "tunnel type",
                found: s.to_string(),
                expected: "ipip, gue",
            }),
        }
    }
}

impl ChecksumCheck {
    /// The config word (`"new_flows"`, `"all"`): what `FromStr` reads back.
    pub fn config_name(self) -> &'static str {
        match self {
            ChecksumCheck::NewFlows => "new_flows",
            ChecksumCheck::All => "all",
        }
    }
}

impl std::str::FromStr for ChecksumCheck {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "new_flows" => Ok(ChecksumCheck::NewFlows),
            "all" => Ok(ChecksumCheck::All),
            _ => Err(UnknownName {
                what: "checksum verification",
                found: s.to_string(),
                expected: "new_flows, all",
            }),
        }
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn test_proto_names() {
        for p in Proto::ALL {
            assert_eq!(p.config_name().parse::<Proto>(), Ok(p));
        }
        assert_eq!(Proto::Tcp.to_string(), "TCP");
        assert_eq!(Proto::Udp.to_string(), "UDP");
        assert_eq!(
            "TCP".parse::<Proto>().map_err(|e| e.to_string()),
            Err("invalid protocol \"TCP\": expected one of tcp, udp".to_string())
        );
    }

    #[test]
    fn test_method_names() {
        for m in Method::ALL {
            assert_eq!(m.config_name().parse::<Method>(), Ok(m));
        }
        assert_eq!("masq".parse::<Method>(), Ok(Method::Nat));
        assert_eq!("route".parse::<Method>(), Ok(Method::Dr));
        assert_eq!(Method::Nat.to_string(), "Masq");
        assert_eq!(Method::Dr.to_string(), "Route");
        assert_eq!(Method::Tun.to_string(), "Tunnel");
        assert_eq!("tunnel".parse::<Method>(), Ok(Method::Tun));
        assert_eq!(
            "ipip".parse::<Method>().map_err(|e| e.to_string()),
            Err("invalid forwarding method \"ipip\": expected one of nat, masq, dr, route, tun, tunnel, fullnat".into())
        );
        assert_eq!(Method::FullNat.to_string(), "FullNat");
        assert_eq!(
            "full_nat".parse::<Method>().map_err(|e| e.to_string()),
            Err("invalid forwarding method \"full_nat\": expected one of nat, masq, dr, route, tun, tunnel, fullnat".into())
        );
        for t in [TunType::Ipip, TunType::Gue] {
            assert_eq!(t.config_name().parse::<TunType>(), Ok(t));
        }
        assert!("vxlan".parse::<TunType>().is_err());
    }
}
