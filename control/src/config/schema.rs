//! The configuration schema: the serde structs a RON file deserializes
//! into, with every default and unit documented.
//!
//! Layer: control, first stage. Guarantees: every struct refuses unknown
//! fields (`deny_unknown_fields`); each field's doc names its default and
//! range, as docs/config.md does. Value checks live in the field types
//! ([`super::types`]); cross-field rules in [`super::validate()`](mod@super::validate).
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;

use dataplane::snapshot::{Method, TunConf, TunType};
use sched::{SchedFlags, SchedKind, SchedParams};
use serde::Deserialize;

use super::health::{CheckerConfig, Seconds, Timing, TimingLevel};
use super::types::{
    ChecksumCheckName, Cidr, ClientAddressName, ForwardingName, Ipv4Net, Ipv4Str, MacAddr, Netmask,
    ProtoName, SchedulerName, SocketAddrV4Str, TimeoutSecs, TunTypeName, Weight,
};
use super::vrrp::{VrrpInstanceConfig, VrrpScriptConfig, VrrpSyncGroupConfig};
use super::DEFAULT_ADMIN_SOCKET;

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
    /// A group (name, as in `/etc/group`) whose members may run the admin
    /// socket's read-only requests (`fulcrumctl -L`, `--stats`, `--json`,
    /// ...); mutations (edits, `--reload`) stay root's (or the daemon's
    /// uid's). With it the socket is mode 0660 and owned by the group.
    /// Default none: mode 0600, root only. Must exist when the file is
    /// loaded. A reload cannot change it (restart).
    #[serde(default)]
    pub admin_group: Option<String>,
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
    /// IPVS's `expire_nodest_conn` sysctl: a client packet of a connection
    /// whose real server went down (failed its checks) or was removed
    /// expires the connection at once, so the client reconnects to a live
    /// server instead of waiting out the timeout. Default false, as IPVS.
    #[serde(default)]
    pub expire_nodest_conn: bool,
    /// First local port FullNAT books on each local address. Default 1024.
    #[serde(default = "default_lport_min")]
    pub fullnat_lport_min: u16,
    /// Last local port FullNAT books on each local address, at least
    /// `fullnat_lport_min`. Default 65535.
    #[serde(default = "default_lport_max")]
    pub fullnat_lport_max: u16,
    /// keepalived's `enable_script_security`: refuse a `MISC_CHECK`,
    /// `notify_*` or `quorum_*` script that anyone but its owner may
    /// change (the file or a directory above it), or that is owned by
    /// another user than root when fulcrum runs as root. Default **true**
    /// (keepalived's default is off with a warning; fulcrum refuses).
    #[serde(default = "default_true")]
    pub enable_script_security: bool,
    /// The exception path to the kernel: a TAP interface per port (named by
    /// the port's `kernel_iface`) that carries the traffic to the
    /// director's own addresses the dataplane does not serve. Default on,
    /// 10000 packets per second per worker, burst 1000.
    #[serde(default)]
    pub exception_path: ExceptionPathConfig,
    /// The rate limit of the ICMP errors each worker sends (time exceeded,
    /// fragmentation needed; RFC 1812 §4.3.2.8). Default 1000 per second
    /// per worker, burst 50.
    #[serde(default)]
    pub icmp_rate_limit: IcmpRateLimitConfig,
    /// The Prometheus endpoint (`/metrics`) and the status page (`/`) on
    /// one HTTP listener. Default on, `127.0.0.1:9469`, loopback only.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// VRRP instances (keepalived's `vrrp_instance` blocks): the VIPs and
    /// floating addresses this director holds only while master. Default
    /// none: every VIP is always held. See `docs/config.md` "VRRP".
    #[serde(default)]
    pub vrrp_instance: Vec<VrrpInstanceConfig>,
    /// Scripts `track_script` refers to (keepalived's `vrrp_script`).
    #[serde(default)]
    pub vrrp_script: Vec<VrrpScriptConfig>,
    /// Instances that change state together (keepalived's
    /// `vrrp_sync_group`).
    #[serde(default)]
    pub vrrp_sync_group: Vec<VrrpSyncGroupConfig>,
}

/// The metrics listener (`metrics: (enabled: true, listen:
/// "127.0.0.1:9469", allow_remote: false)`): Prometheus text format at
/// `/metrics`, the HTML status page at `/`. Each field is optional.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve it. Default `true`.
    pub enabled: bool,
    /// `IP:port` to listen on (IPv4 `"127.0.0.1:9469"` or IPv6
    /// `"[::1]:9469"`), port 1..=65535. Default `"127.0.0.1:9469"` (9469
    /// is free in Prometheus' default port allocations list).
    pub listen: String,
    /// Allow a `listen` address other than loopback (the endpoint has no
    /// authentication: anyone who reaches it reads every service and real
    /// server). Default `false`.
    pub allow_remote: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: "127.0.0.1:9469".to_string(),
            allow_remote: false,
        }
    }
}

impl MetricsConfig {
    /// `listen` as a socket address; `None` when it does not parse (which
    /// validation refuses).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.parse().ok()
    }
}

fn default_true() -> bool {
    true
}

/// The exception path (`exception_path: (enabled: true, rate_pps: 10000,
/// burst: 1000)`): every port gets a kernel TAP interface (DPDK `net_tap`)
/// with the port's MAC and DIPs; TCP/UDP and non-echo ICMP to a DIP, and
/// ARP replies to a DIP, go to it, and what the kernel sends on it leaves
/// on the port. Each field is optional.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExceptionPathConfig {
    /// Create the TAP interfaces and hand the kernel its traffic. Default
    /// `true`; `false` drops that traffic (`dip_unserved`) as before and
    /// needs no `/dev/net/tun`.
    pub enabled: bool,
    /// Packets per second each worker hands the kernel at most, on average,
    /// 1..=10000000 (token-bucket rate). Default 10000. Above it:
    /// `exception_rate_limited`.
    pub rate_pps: u32,
    /// Packets a worker may hand the kernel at once (token-bucket depth),
    /// 1..=1000000. Default 1000.
    pub burst: u32,
}

impl Default for ExceptionPathConfig {
    fn default() -> Self {
        ExceptionPathConfig {
            enabled: true,
            rate_pps: 10_000,
            burst: 1000,
        }
    }
}

/// The ICMP error rate limit (`icmp_rate_limit: (rate_pps: 1000, burst:
/// 50)`), a token bucket per worker; each field is optional. Above it the
/// packet that would have caused the error is dropped as
/// `icmp_rate_limited`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IcmpRateLimitConfig {
    /// ICMP errors per second each worker sends at most, on average,
    /// 1..=1000000. Default 1000.
    pub rate_pps: u32,
    /// ICMP errors a worker may send at once (bucket depth), 1..=100000.
    /// Default 50.
    pub burst: u32,
}

impl Default for IcmpRateLimitConfig {
    fn default() -> Self {
        IcmpRateLimitConfig {
            rate_pps: 1000,
            burst: 50,
        }
    }
}

/// Longest Linux interface name, bytes (`IFNAMSIZ` 16 less the NUL).
pub const MAX_IFACE_NAME: usize = 15;

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
    /// Which TCP/UDP checksums are verified on packets from this port:
    /// `"new_flows"` (default; a SYN or first datagram that would create a
    /// connection, as IPVS verifies NAT traffic) or `"all"` (every packet,
    /// for links that corrupt in flight).
    #[serde(default)]
    pub verify_checksums: ChecksumCheckName,
    /// Name of the port's kernel (TAP) interface on the exception path,
    /// 1..=15 bytes of `[A-Za-z0-9_.-]`, unique. Default `fc-<name>`, cut to
    /// 15 bytes ([`PortConfig::kernel_iface`]).
    #[serde(default)]
    pub kernel_iface: Option<String>,
    /// The largest IPv4 datagram (bytes, the Ethernet header not counted)
    /// fulcrum forwards out of this port, 576..=9000. Default 1500. A NAT
    /// or DR packet above it with DF set is answered with ICMP
    /// "fragmentation needed" carrying this MTU (RFC 1191), rate limited
    /// by `icmp_rate_limit`; without DF it is dropped (`mtu_exceeded`).
    #[serde(default = "default_mtu")]
    pub mtu: u16,
}

fn default_mtu() -> u16 {
    dataplane::snapshot::DEFAULT_MTU
}

impl PortConfig {
    /// The kernel interface name in effect: `kernel_iface`, else `fc-` and
    /// the port's name, cut to [`MAX_IFACE_NAME`] bytes (at a character
    /// boundary). Validation checks the result.
    pub fn kernel_iface(&self) -> String {
        if let Some(n) = &self.kernel_iface {
            return n.clone();
        }
        let mut n = format!("fc-{}", self.name);
        let mut end = n.len().min(MAX_IFACE_NAME);
        while !n.is_char_boundary(end) {
            end -= 1;
        }
        n.truncate(end);
        n
    }
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
    /// VS/TUN: the outer source address of every tunnelled packet of this
    /// service, a DIP or VIP of the director. Default: the DIP of the
    /// egress port on the real server's subnet (else the port's first).
    /// Only in a service with a `"tun"` real server.
    #[serde(default)]
    pub tun_src: Option<Ipv4Str>,
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
    /// keepalived's `delay_loop`: seconds between two checks of each real
    /// server, inherited by every checker (which may override it); default
    /// 60 s.
    #[serde(default)]
    pub delay_loop: Option<Seconds>,
    /// Default `connect_timeout` of this service's checkers (default 5 s).
    #[serde(default)]
    pub connect_timeout: Option<Seconds>,
    /// Default `retry` of this service's checkers (default keepalived's: 1;
    /// 0 for MISC_CHECK/FILE_CHECK, 3 for DNS_CHECK).
    #[serde(default)]
    pub retry: Option<u32>,
    /// Default `delay_before_retry` of this service's checkers (default 1 s;
    /// 3 s for HTTP_GET/SSL_GET).
    #[serde(default)]
    pub delay_before_retry: Option<Seconds>,
    /// Default `warmup` of this service's checkers (default `delay_loop`).
    #[serde(default)]
    pub warmup: Option<Seconds>,
    /// keepalived's `alpha`: real servers with checkers start down and enter
    /// rotation on their first success. Default false (they start up).
    #[serde(default)]
    pub alpha: bool,
    /// keepalived's `inhibit_on_failure`, for every real server of the
    /// service that does not set its own: a failed server stays listed at
    /// weight 0 (quiesced) instead of being removed. Default false.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// Default `Host:` of the HTTP_GET/SSL_GET checkers.
    #[serde(default)]
    pub virtualhost: Option<String>,
    /// keepalived's `quorum`: the least total weight of live real servers
    /// for the service to be "up"; default 1.
    #[serde(default = "default_quorum")]
    pub quorum: u32,
    /// keepalived's `hysteresis`: quorum is lost below `quorum -
    /// hysteresis` and regained at `quorum + hysteresis`; default 0.
    #[serde(default)]
    pub hysteresis: u32,
    /// Script run when quorum is regained (keepalived `quorum_up`).
    #[serde(default)]
    pub quorum_up: Option<String>,
    /// Script run when quorum is lost (keepalived `quorum_down`).
    #[serde(default)]
    pub quorum_down: Option<String>,
    /// keepalived's `sorry_server`: RIP:port that takes new connections
    /// while the service has lost quorum (with the default quorum: while
    /// no real server is alive), and leaves when quorum returns.
    #[serde(default)]
    pub sorry_server: Option<SocketAddrV4Str>,
    /// keepalived's `sorry_server_inhibit`: the sorry server stays listed
    /// at weight 0 while quorum holds instead of being absent.
    #[serde(default)]
    pub sorry_server_inhibit: bool,
    /// keepalived's `sorry_server_lvs_method`: its forwarding method;
    /// default the service's.
    #[serde(default)]
    pub sorry_server_forwarding: Option<ForwardingName>,
    /// FullNAT local addresses (LIPs, DPVS `laddr`): the source addresses
    /// the real servers see for this service's FullNAT connections. Each on
    /// a connected subnet of a port (fulcrum answers ARP for it there), none
    /// a DIP or VIP. Required (non-empty) when a real server or the sorry
    /// server uses `"fullnat"`; default none.
    #[serde(default)]
    pub local_addresses: Vec<Ipv4Str>,
    /// How FullNAT connections tell the real server the client's address:
    /// `"none"` (default), `"toa"` or `"proxy_v2"`; the latter two for TCP
    /// services only.
    #[serde(default)]
    pub client_address: ClientAddressName,
}

fn default_quorum() -> u32 {
    1
}

fn default_lport_min() -> u16 {
    1024
}

fn default_lport_max() -> u16 {
    65535
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
    /// ipvsadm's per-destination `-m`/`-g`/`-i` does.
    #[serde(default)]
    pub forwarding: Option<ForwardingName>,
    /// VS/TUN only: the encapsulation, `"ipip"` (default, RFC 2003) or
    /// `"gue"` (IPVS `--tun-type gue`).
    #[serde(default)]
    pub tun_type: Option<TunTypeName>,
    /// VS/TUN with `tun_type: "gue"` only, and required there: the outer
    /// UDP destination port 1..=65535 the real server decapsulates on
    /// (IPVS `--tun-port`).
    #[serde(default)]
    pub tun_port: Option<u16>,
    /// keepalived's checkers of this real server: the server is alive
    /// while every one of them is up. Default none: always alive.
    #[serde(default)]
    pub checkers: Vec<CheckerConfig>,
    /// keepalived's `inhibit_on_failure` for this server; default the
    /// service's.
    #[serde(default)]
    pub inhibit_on_failure: Option<bool>,
    /// `alpha` for this server; default the service's.
    #[serde(default)]
    pub alpha: Option<bool>,
    /// `delay_loop` for this server's checkers; default the service's.
    #[serde(default)]
    pub delay_loop: Option<Seconds>,
    /// `connect_timeout` for this server's checkers.
    #[serde(default)]
    pub connect_timeout: Option<Seconds>,
    /// `retry` for this server's checkers.
    #[serde(default)]
    pub retry: Option<u32>,
    /// `delay_before_retry` for this server's checkers.
    #[serde(default)]
    pub delay_before_retry: Option<Seconds>,
    /// `warmup` for this server's checkers.
    #[serde(default)]
    pub warmup: Option<Seconds>,
    /// Script run when the server comes up (keepalived `notify_up`).
    #[serde(default)]
    pub notify_up: Option<String>,
    /// Script run when the server goes down (keepalived `notify_down`).
    #[serde(default)]
    pub notify_down: Option<String>,
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

    /// The tunnel parameters in effect: for a `"tun"` server its
    /// `tun_type` (default IPIP), `tun_port` and the service's `tun_src`
    /// (0 = the egress DIP); the default (all zero) for other methods.
    pub fn tun(&self, svc: &ServiceConfig) -> TunConf {
        if self.method(svc) != Method::Tun {
            return TunConf::default();
        }
        TunConf {
            kind: self.tun_type.map_or(TunType::Ipip, |t| t.0),
            port: self.tun_port.unwrap_or(0),
            src: svc.tun_src.map_or(0, |a| u32::from(a.0)),
        }
    }

    /// Whether a failed server stays listed at weight 0: its own
    /// `inhibit_on_failure`, else the service's.
    pub fn inhibit(&self, svc: &ServiceConfig) -> bool {
        self.inhibit_on_failure.unwrap_or(svc.inhibit_on_failure)
    }

    /// The timing of checker `c` of this server in service `svc`: the
    /// checker's own knobs, else the server's, else the service's, else
    /// keepalived's defaults.
    pub fn timing(&self, svc: &ServiceConfig, c: &CheckerConfig) -> Timing {
        let rs = TimingLevel {
            delay_loop: self.delay_loop,
            connect_timeout: self.connect_timeout,
            retry: self.retry,
            delay_before_retry: self.delay_before_retry,
            warmup: self.warmup,
            alpha: self.alpha,
        };
        let vs = TimingLevel {
            delay_loop: svc.delay_loop,
            connect_timeout: svc.connect_timeout,
            retry: svc.retry,
            delay_before_retry: svc.delay_before_retry,
            warmup: svc.warmup,
            alpha: Some(svc.alpha),
        };
        TimingLevel::resolve_for(c, &[TimingLevel::of_checker(c.params()), rs, vs])
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

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
}
