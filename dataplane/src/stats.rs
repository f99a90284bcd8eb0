//! Per-worker counters: what each worker saw, sent, dropped and why.
//!
//! Layer: dataplane. A worker counts into its own [`WorkerStats`] with plain
//! adds (no atomics, no sharing on the fast path) and copies them into its
//! [`SharedStats`] on the slow tick; the control thread only reads the shared
//! copy. Every drop has exactly one [`DropReason`] and one counter.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// Why a packet was dropped. Each variant has its own counter; the name
        /// is the one shown by `fulcrumctl --counters`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $( $(#[$doc])* $variant, )* }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons (length of the counter array).
            pub const COUNT: usize = Self::ALL.len();
            /// Stable snake_case name used in CLI output and metrics.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }
        }
    };
}

drop_reasons! {
    /// Frame shorter than an Ethernet header, or a VLAN tag cut short.
    EthTruncated => "eth_truncated",
    /// EtherType fulcrum does not handle (IPv6, LLDP, ...).
    EthUnsupported => "eth_unsupported",
    /// Frame not addressed to the port's MAC, broadcast nor VRRP's group
    /// MAC 01:00:5e:00:00:12.
    EthNotForUs => "eth_not_for_us",
    /// Ethernet source address is multicast, broadcast or all zeros: no
    /// station sends from one (IEEE 802.3 §3.2.3, RFC 1812 §5.3.7).
    EthSrcInvalid => "eth_src_invalid",
    /// 802.1Q or 802.1ad tagged frame for a VLAN the port is not configured
    /// for (no port has VLANs yet, so every tagged frame).
    VlanNotConfigured => "vlan_not_configured",
    /// ARP shorter than 28 bytes or not Ethernet/IPv4.
    ArpMalformed => "arp_malformed",
    /// ARP request for an address fulcrum does not own on that port.
    ArpNotForUs => "arp_not_for_us",
    /// ARP whose sender address is not on a connected subnet of the port it
    /// arrived on (a spoof from another segment); nothing is learnt.
    ArpWrongSubnet => "arp_wrong_subnet",
    /// ARP whose sender MAC is multicast, broadcast or all zeros.
    ArpBadSenderMac => "arp_bad_sender_mac",
    /// ARP reply or announcement that teaches nothing: its sender is not a
    /// neighbour we asked for or know, and it is not addressed to us.
    ArpIgnored => "arp_ignored",
    /// IPv4 header cut short, version != 4 or IHL < 5.
    Ipv4Malformed => "ipv4_malformed",
    /// IPv4 total length beyond the frame or shorter than the header.
    Ipv4BadLength => "ipv4_bad_length",
    /// IPv4 header checksum wrong.
    Ipv4BadChecksum => "ipv4_bad_checksum",
    /// IPv4 options area malformed: an option's length runs past the
    /// header or is below 2 (RFC 791 §3.1).
    Ipv4BadOptions => "ipv4_bad_options",
    /// IPv4 loose or strict source route option (Linux drops these by
    /// default: `accept_source_route = 0`).
    Ipv4SourceRoute => "ipv4_source_route",
    /// A fragment (MF set or non-zero offset) to a director address that
    /// is not a VIP's TCP/UDP (a DIP, VRRP, ICMP to a VIP): fulcrum does
    /// not reassemble, so only fragments of balanced flows are forwarded.
    Ipv4Fragment => "ipv4_fragment",
    /// A malformed fragment: its data ends past 65535 bytes, a fragment
    /// with MF set carries 0 bytes or a number not a multiple of 8 (RFC 791
    /// §3.2), a TCP fragment at offset 1 (RFC 1858 §3.2), a first fragment
    /// too short for its TCP/UDP header, or a later fragment in another L2
    /// encapsulation (VLAN tag) than its first.
    FragBad => "frag_bad",
    /// A non-first fragment whose datagram has no decision: its first
    /// fragment never came, was dropped, came more than 1 s earlier, or
    /// comes after it (fulcrum holds no fragments).
    FragNoFirst => "frag_no_first",
    /// A first fragment whose decision found no slot in the worker's
    /// fragment table (4096 slots, 8 probed per datagram, 1 s each).
    FragTableFull => "frag_table_full",
    /// A first fragment that its forwarding method would grow (VS/TUN's
    /// outer header, FullNAT's PROXY v2 header or TOA option): its later
    /// fragments would need an outer header of their own or shifted
    /// offsets, which fulcrum does not write (IPVS tunnels every fragment).
    FragEncap => "frag_encap_unsupported",
    /// Unicast IPv4 carried in an Ethernet broadcast or multicast frame
    /// (RFC 1122 §3.3.6, RFC 1812 §5.3.4).
    Ipv4L2Broadcast => "ipv4_l2_broadcast",
    /// Martian IPv4 source: 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4,
    /// 240.0.0.0/4 (with 255.255.255.255), a connected subnet's broadcast
    /// address, or one of the director's own addresses (RFC 1812 §5.3.7,
    /// RFC 1122 §3.2.1.3).
    Ipv4MartianSource => "ipv4_martian_source",
    /// Source not reachable back through the port the packet came in on
    /// (strict reverse-path check, RFC 3704 §2.2), checked before a
    /// connection is created and for traffic to the director: e.g. a real
    /// server's address arriving from the client side.
    Ipv4RpfFail => "ipv4_rpf_fail",
    /// TTL would reach zero on forwarding.
    TtlExceeded => "ttl_exceeded",
    /// VS/TUN: the frame's buffer has no room for the outer header (20
    /// bytes IPIP, 32 bytes GUE) after the Ethernet header.
    TunNoRoom => "tun_no_room",
    /// VS/TUN: the encapsulated packet would exceed the egress MTU and the
    /// inner packet has DF clear: IPVS would fragment the outer packet;
    /// fulcrum does not fragment. (With DF set the client gets ICMP
    /// "fragmentation needed" with the tunnel's MTU instead, as IPVS sends,
    /// counted `icmp_frag_needed_sent`.)
    TunNeedsFragmentation => "tun_needs_fragmentation",
    /// TCP header cut short or data offset < 5.
    TcpMalformed => "tcp_malformed",
    /// UDP header cut short or length field inconsistent.
    UdpMalformed => "udp_malformed",
    /// TCP or UDP source or destination port 0 (reserved, RFC 6335 §6).
    L4PortZero => "l4_port_zero",
    /// TCP checksum wrong (RFC 9293 §3.1), on a segment that would create a
    /// connection, or on any segment with `verify_checksums: All`.
    TcpBadChecksum => "tcp_bad_checksum",
    /// UDP checksum wrong (RFC 768), checked like TCP's.
    UdpBadChecksum => "udp_bad_checksum",
    /// TCP/UDP checksum field holds only the pseudo-header sum: the sender
    /// offloads TX checksums and its peer (a veth) never filled them in.
    /// Fix: `ethtool -K <peer> tx off`. fulcrum logs this once per port.
    L4ChecksumPartial => "l4_checksum_partial",
    /// ICMP message cut short.
    IcmpMalformed => "icmp_malformed",
    /// ICMP to a director address with a wrong checksum (RFC 792).
    IcmpBadChecksum => "icmp_bad_checksum",
    /// ICMP to a local address that is not an echo request: to a VIP, or to
    /// a DIP with the exception path off (with it on, such ICMP goes to
    /// the kernel).
    IcmpUnsupported => "icmp_unsupported",
    /// IP protocol other than TCP, UDP or ICMP to a director address.
    ProtoUnsupported => "proto_unsupported",
    /// TCP or UDP to a DIP with the exception path off
    /// (`exception_path: (enabled: false)`, or a worker without kernel
    /// interfaces): nothing on the director serves it.
    DipUnserved => "dip_unserved",
    /// Traffic for the director's kernel (TCP/UDP or ICMP other than echo
    /// to a DIP, an ARP reply to a DIP) above the worker's exception-path
    /// rate (`exception_path.rate_pps`, `burst`): a flood to a local
    /// address costs the workers nothing more than this count.
    ExceptionRateLimited => "exception_rate_limited",
    /// TCP segment without a connection that is not a SYN (IPVS does not
    /// schedule those either).
    TcpNoConn => "tcp_no_conn",
    /// Packet to a VIP port without a virtual service.
    NoService => "no_service",
    /// The scheduler found no real server with weight > 0.
    NoRealServer => "no_real_server",
    /// Connection table full.
    ConnTableFull => "conn_table_full",
    /// A new connection's outbound key (RIP:rport -> CIP:cport) is already
    /// another connection's: two clients cannot share a NAT reply tuple.
    ConnKeyCollision => "conn_key_collision",
    /// FullNAT: every lport this worker may book on the service's local
    /// addresses (those of the configured range whose owner is this worker)
    /// is in use, so no connection was created (DPVS counts the same as a
    /// `sa_pool` fetch failure).
    FullnatNoLport => "fullnat_no_lport",
    /// FullNAT with `client_address: "proxy_v2"`: the first client data
    /// segment had no room in its buffer for the 28-byte PROXY v2 header
    /// (the real server's MSS is clamped by 28 so that a conforming client
    /// never sends such a segment); the client retransmits it.
    FullnatProxyNoRoom => "fullnat_proxy_no_room",
    /// `expire_nodest_conn`: a client packet (not a bare SYN) of a
    /// connection whose real server went down or was removed; the
    /// connection was expired with it.
    ConnDestUnavailable => "conn_dest_unavailable",
    /// Neither to a director address nor from a real server: another
    /// host's traffic.
    NotForUs => "not_for_us",
    /// From a NAT real server but matching no connection (a late reply
    /// after expiry, a DR reply routed through us, or a scan).
    ReplyNoConn => "reply_no_conn",
    /// No route to the destination.
    NoRoute => "no_route",
    /// Next hop MAC unknown; an ARP request was sent.
    NeighUnresolved => "neigh_unresolved",
    /// The neighbour table is full: a next hop could not even be queued
    /// for resolution, or an ARP reply could not be learnt.
    NeighTableFull => "neigh_table_full",
    /// Redirect ring to the owner worker full.
    RedirectRingFull => "redirect_ring_full",
    /// TX queue full after retry.
    TxFull => "tx_full",
    /// Packet on a port index the snapshot does not know.
    BadPort => "bad_port",
    /// A verdict named an output port this worker has no queue on.
    TxPortInvalid => "tx_port_invalid",
    /// A redirect named a worker that does not exist (or this one).
    BadWorker => "bad_worker",
    /// A packet to a VIP or floating address whose VRRP instance is not
    /// master here (RFC 5798 §6.4.2: a backup does not forward for the
    /// virtual router).
    VrrpBackup => "vrrp_backup",
    /// An ARP request for a VIP or floating address whose VRRP instance is
    /// not master here: the master answers it (RFC 5798 §6.4.2).
    ArpVrrpBackup => "arp_vrrp_backup",
    /// A VRRP packet (IP protocol 112) neither to 224.0.0.18 nor to a DIP
    /// of its arrival port.
    VrrpNotForUs => "vrrp_not_for_us",
    /// A VRRP advert with an IP TTL other than 255: it crossed a router
    /// (RFC 5798 §7.1, RFC 3768 §7.1).
    VrrpBadTtl => "vrrp_bad_ttl",
    /// A VRRP advert shorter than its header, address list and (v2)
    /// authentication data.
    VrrpTruncated => "vrrp_truncated",
    /// A VRRP advert whose version is not 2 or 3, or whose type is not 1
    /// (advertisement).
    VrrpBadVersion => "vrrp_bad_version",
    /// A VRRP advert with a wrong checksum (v2: over the message, RFC 3768
    /// §5.3.8; v3: with the pseudo-header, RFC 5798 §5.2.8).
    VrrpBadChecksum => "vrrp_bad_checksum",
    /// A VRRP advert whose address count is 0, above 20 or not what its
    /// length holds, or whose advert interval is 0.
    VrrpBadFields => "vrrp_bad_fields",
    /// An ICMP error (destination unreachable, time exceeded, parameter
    /// problem) to a VIP or from a real server's side whose quoted TCP/UDP
    /// tuple, reversed, matches no connection of this director (IPVS
    /// `ip_vs_in_icmp` / `ip_vs_out_icmp` ignore those too); also one
    /// quoting another protocol, a later fragment or an ICMP query.
    IcmpErrorNoConn => "icmp_error_no_conn",
    /// An ICMP error whose quote is shorter than the original IPv4 header
    /// (with its options) and 8 bytes of payload (RFC 792's minimum).
    IcmpQuoteTruncated => "icmp_quote_truncated",
    /// An ICMP error whose quoted header is not IPv4 or has IHL < 5.
    IcmpQuoteMalformed => "icmp_quote_malformed",
    /// An ICMP error quoting an ICMP error: never answered or relayed
    /// (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7).
    IcmpErrorAboutError => "icmp_error_about_error",
    /// An ICMP error whose quoted source is not its outer destination: an
    /// error goes back to the sender of the datagram it quotes (RFC 792),
    /// so anything else is forged or misrouted.
    IcmpQuoteMismatch => "icmp_quote_mismatch",
    /// An ICMP error fulcrum would have sent (time exceeded, fragmentation
    /// needed) above the worker's `icmp_rate_limit` (RFC 1812 §4.3.2.8);
    /// the packet that caused it is dropped under this name.
    IcmpRateLimited => "icmp_rate_limited",
    /// A NAT, DR or FullNAT packet above the egress port's `mtu` without DF
    /// (FullNAT's PROXY header or TOA counted): fulcrum does not fragment
    /// (RFC 1812 §5.2.6 would, a router may refuse). VS/TUN's is
    /// `tun_needs_fragmentation`.
    MtuExceeded => "mtu_exceeded",
    /// An ICMP error fulcrum would have sent does not fit the packet
    /// buffer (the error is longer than the packet that caused it and the
    /// buffer has no tailroom), or the arrival port has no DIP to send it
    /// from; the packet that caused it is dropped under this name.
    IcmpErrorNoRoom => "icmp_error_no_room",
}

macro_rules! worker_counters {
    ($( $(#[$doc:meta])* $field:ident, )*) => {
        /// A worker's own counters. Plain integers: only the owning worker
        /// writes. Each counter is one `u64` field named as
        /// [`WorkerStats::COUNTER_NAMES`] lists it (the name `fulcrumctl
        /// --counters` and the status JSON show), plus the per-reason
        /// [`drops`](WorkerStats::drops).
        #[derive(Clone, Debug)]
        #[repr(align(64))]
        pub struct WorkerStats {
            $( $(#[$doc])* pub $field: u64, )*
            /// Drops, indexed by `DropReason as usize`.
            pub drops: [u64; DropReason::COUNT],
        }

        impl Default for WorkerStats {
            fn default() -> Self {
                WorkerStats { $( $field: 0, )* drops: [0; DropReason::COUNT] }
            }
        }

        impl WorkerStats {
            /// Every counter's name (= its field name), in declaration
            /// order: the order of [`WorkerStats::counter_values`], of the
            /// shared copy and of `fulcrumctl --counters`' rows.
            pub const COUNTER_NAMES: &'static [&'static str] = &[$( stringify!($field), )*];

            /// Every counter's value, in [`WorkerStats::COUNTER_NAMES`]
            /// order (drops not included).
            pub fn counter_values(&self) -> [u64; N_WORKER_COUNTERS] {
                [$( self.$field, )*]
            }

            /// Sets every counter from `v`, in [`WorkerStats::COUNTER_NAMES`]
            /// order; `drops` is left as it is.
            pub fn set_counter_values(&mut self, v: [u64; N_WORKER_COUNTERS]) {
                let [$( $field, )*] = v;
                $( self.$field = $field; )*
            }
        }
    };
}

worker_counters! {
    /// Frames received from the ports.
    rx_pkts,
    /// Bytes received from the ports.
    rx_bytes,
    /// Frames handed to the ports' TX queues.
    tx_pkts,
    /// Bytes handed to the ports' TX queues.
    tx_bytes,
    /// Connections created.
    conns_created,
    /// Connections expired by the timer wheel.
    conns_expired,
    /// Connections expired at once because their real server became
    /// unavailable (`expire_nodest_conn`).
    conns_expired_nodest,
    /// Connections in TIME_WAIT or CLOSE expired at once because a new SYN
    /// reused their tuple (IPVS `conn_reuse_mode`); the SYN was scheduled
    /// afresh.
    conns_reused,
    /// FullNAT `client_address: "toa"` segments that left without the TOA
    /// option because their TCP options area (40 bytes at most) had no
    /// room for its 8 bytes, or their buffer had no room to grow.
    fullnat_toa_no_space,
    /// FullNAT segments that carried a PROXY v2 header to the real server
    /// (first data segments, with their retransmissions).
    fullnat_proxy_sent,
    /// FullNAT segments that carried a TOA option to the real server.
    fullnat_toa_sent,
    /// Packets this worker moved to their owner worker.
    redirects_out,
    /// Packets other workers moved to this worker.
    redirects_in,
    /// ARP requests answered.
    arp_replies,
    /// ARP replies and announcements that taught the neighbour table
    /// something (the `Consumed` verdict): with `arp_replies` (requests
    /// answered) and the `arp_*` drops, every ARP packet is counted once.
    arp_learned,
    /// ARP requests sent to resolve next hops.
    arp_requests,
    /// ICMP echo requests answered.
    icmp_echo_replies,
    /// ICMP errors from the client side about a balanced flow (their
    /// quote: VIP → CIP) relayed to the real server (IPVS
    /// `ip_vs_in_icmp`): NAT rewrites VIP to RIP outside and in the quote,
    /// FullNAT also the client end to LIP:lport, DR and TUN forward at L2.
    icmp_errors_in,
    /// ICMP errors from the real servers' side about a NAT flow (their
    /// quote: CIP → RIP) relayed to the client with RIP rewritten to VIP
    /// outside and in the quote (IPVS `ip_vs_out_icmp`), or about a FullNAT
    /// flow (to the LIP, quote LIP → RIP) with LIP:lport also rewritten
    /// back to CIP:cport.
    icmp_errors_out,
    /// ICMP time exceeded (type 11 code 0) sent for a NAT packet whose TTL
    /// ran out (RFC 1812 §5.3.1).
    icmp_time_exceeded_sent,
    /// ICMP fragmentation needed (type 3 code 4, RFC 1191) sent for a DF
    /// packet above the egress port's `mtu` (with what its method adds: a
    /// tunnel's outer header, FullNAT's PROXY header or TOA).
    icmp_frag_needed_sent,
    /// Frames handed to the kernel over the exception path (taken by the
    /// TAP queue; what it refused is `tx_full`).
    exception_to_kernel,
    /// VRRP adverts that passed the dataplane's checks, handed to the
    /// control thread's VRRP socket through the exception path (also
    /// counted in `exception_to_kernel`).
    vrrp_to_kernel,
    /// Frames the kernel sent on a TAP interface, queued for the matching
    /// port unchanged (the port's `tx_pkts`/`tx_full` count their fate).
    exception_from_kernel,
    /// First fragments of datagrams balanced by this worker whose decision
    /// it keeps for the later fragments (counted in `tx_pkts` as any frame).
    frags_first,
    /// Non-first fragments forwarded with their first fragment's decision.
    frags_forwarded,
    /// Persistent templates held now (a gauge; each worker holds the
    /// templates of all workers, see `persist`).
    persist_templates,
    /// New templates not stored because the template table was full (the
    /// connection was scheduled without one; not a drop).
    persist_table_full,
    /// Ports (bit = port index) on which a TCP/UDP checksum was found
    /// partial (`l4_checksum_partial`): a bitmask, not a count; the daemon
    /// logs the remedy once per port.
    partial_csum_ports,
    /// Poll rounds that handled at least one frame (RX, a redirect ring or
    /// the kernel): with `polls_empty`, the worker's real load (a
    /// busy-polling core is always 100 % busy to the OS).
    polls_busy,
    /// Poll rounds that found nothing to do.
    polls_empty,
}

/// Number of [`WorkerStats`] counters besides the drops (the length of
/// [`WorkerStats::COUNTER_NAMES`]).
pub const N_WORKER_COUNTERS: usize = WorkerStats::COUNTER_NAMES.len();

impl WorkerStats {
    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }
    /// Total drops over all reasons.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

/// Per-real-server counters kept by one worker, as `ipvsadm --stats` shows
/// them: connections scheduled, packets and bytes each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealStats {
    /// Connections scheduled to this real server.
    pub conns: u64,
    /// Packets client → real server.
    pub in_pkts: u64,
    /// Packets real server → client (NAT only; DR replies bypass the director).
    pub out_pkts: u64,
    /// Bytes client → real server (IP length).
    pub in_bytes: u64,
    /// Bytes real server → client (IP length).
    pub out_bytes: u64,
    /// Connections currently ESTABLISHED (IPVS activeconns).
    pub active_conns: u64,
    /// Connections currently in any other state (IPVS inactconns).
    pub inactive_conns: u64,
}

/// A worker's counters as published for the control thread.
///
/// The owning worker stores, the control thread loads; both use `Relaxed`
/// because each value is a monotone or gauge reading, not a synchronisation
/// point. Cache-aligned so two workers never share a line.
#[derive(Debug)]
#[repr(align(64))]
pub struct SharedStats {
    worker: [AtomicU64; N_WORKER_COUNTERS],
    drops: [AtomicU64; DropReason::COUNT],
    /// Per real server id (index 0 unused), 7 counters each in `RealStats`
    /// field order, in chunks of [`REAL_CHUNK`] ids. The directory has a
    /// fixed length ([`MAX_REAL_IDS`] / [`REAL_CHUNK`]) so that the control
    /// thread can add chunks while the worker publishes, without a lock:
    /// chunks are only ever added, in order, by [`SharedStats::reserve`].
    reals: Box<[OnceLock<Box<RealChunk>>]>,
}

/// Real server ids per chunk of [`SharedStats`]' per-real-server counters.
pub const REAL_CHUNK: usize = 1024;
/// Most real server ids one run can use (live ones plus the retired ids the
/// control plane never reuses); [`SharedStats::reserve`] refuses more.
pub const MAX_REAL_IDS: usize = 1 << 20;

type RealChunk = [[AtomicU64; 7]; REAL_CHUNK];

fn new_chunk() -> Box<RealChunk> {
    let v: Vec<[AtomicU64; 7]> = (0..REAL_CHUNK).map(|_| Default::default()).collect();
    match v.into_boxed_slice().try_into() {
        Ok(chunk) => chunk,
        // The Vec above has exactly REAL_CHUNK entries.
        Err(_) => unreachable!("a chunk has REAL_CHUNK entries"),
    }
}

impl SharedStats {
    /// Room for real server ids `0..n_reals` (clamped to [`MAX_REAL_IDS`]);
    /// [`SharedStats::reserve`] adds more later.
    pub fn new(n_reals: usize) -> Self {
        let s = SharedStats {
            worker: Default::default(),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            reals: (0..MAX_REAL_IDS / REAL_CHUNK)
                .map(|_| OnceLock::new())
                .collect(),
        };
        s.reserve(n_reals.min(MAX_REAL_IDS));
        s
    }

    /// Makes room for real server ids `0..n_reals`, allocating zeroed chunks
    /// as needed. Called by the control thread before it publishes a
    /// snapshot with more real servers, so that the worker never allocates.
    /// Returns `false`, adding nothing, when `n_reals > MAX_REAL_IDS`.
    pub fn reserve(&self, n_reals: usize) -> bool {
        if n_reals > MAX_REAL_IDS {
            return false;
        }
        for slot in &self.reals[..n_reals.div_ceil(REAL_CHUNK)] {
            slot.get_or_init(new_chunk);
        }
        true
    }

    /// How many real server ids have room (a multiple of [`REAL_CHUNK`]).
    pub fn real_capacity(&self) -> usize {
        self.reals.iter().take_while(|c| c.get().is_some()).count() * REAL_CHUNK
    }

    fn real_slot(&self, id: usize) -> Option<&[AtomicU64; 7]> {
        let chunk = self.reals.get(id / REAL_CHUNK)?.get()?;
        Some(&chunk[id % REAL_CHUNK])
    }

    /// Publishes `w` and the per-real-server counters `reals` (index = id).
    /// Ids beyond the room made by [`SharedStats::new`] and
    /// [`SharedStats::reserve`] are not published.
    pub fn publish(&self, w: &WorkerStats, reals: &[RealStats]) {
        for (a, x) in self.worker.iter().zip(w.counter_values()) {
            a.store(x, Relaxed);
        }
        for (a, x) in self.drops.iter().zip(w.drops) {
            a.store(x, Relaxed);
        }
        for (id, r) in reals.iter().enumerate() {
            let Some(slot) = self.real_slot(id) else {
                // Chunks are added in order: no room here, none further.
                break;
            };
            let v = [
                r.conns,
                r.in_pkts,
                r.out_pkts,
                r.in_bytes,
                r.out_bytes,
                r.active_conns,
                r.inactive_conns,
            ];
            for (a, x) in slot.iter().zip(v) {
                a.store(x, Relaxed);
            }
        }
    }

    /// Reads the published worker counters.
    pub fn load(&self) -> WorkerStats {
        let mut w = WorkerStats {
            drops: std::array::from_fn(|i| self.drops[i].load(Relaxed)),
            ..WorkerStats::default()
        };
        w.set_counter_values(std::array::from_fn(|i| self.worker[i].load(Relaxed)));
        w
    }

    /// Reads the published counters of real server `id` (zeros if unknown).
    pub fn load_real(&self, id: usize) -> RealStats {
        let Some(s) = self.real_slot(id) else {
            return RealStats::default();
        };
        let g = |i: usize| s[i].load(Relaxed);
        RealStats {
            conns: g(0),
            in_pkts: g(1),
            out_pkts: g(2),
            in_bytes: g(3),
            out_bytes: g(4),
            active_conns: g(5),
            inactive_conns: g(6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_publish_load_roundtrip() {
        let s = SharedStats::new(3);
        let mut w = WorkerStats {
            rx_pkts: 5,
            tx_bytes: 77,
            redirects_in: 2,
            ..Default::default()
        };
        w.drop(DropReason::TcpNoConn);
        w.drop(DropReason::TcpNoConn);
        let r = [
            RealStats::default(),
            RealStats {
                conns: 4,
                active_conns: 1,
                ..Default::default()
            },
        ];
        s.publish(&w, &r);
        let back = s.load();
        assert_eq!(back.rx_pkts, 5);
        assert_eq!(back.tx_bytes, 77);
        assert_eq!(back.redirects_in, 2);
        assert_eq!(back.drops[DropReason::TcpNoConn as usize], 2);
        assert_eq!(back.total_drops(), 2);
        assert_eq!(s.load_real(1).conns, 4);
        assert_eq!(s.load_real(1).active_conns, 1);
        assert_eq!(s.load_real(9), RealStats::default());
    }

    #[test]
    fn test_reserve_grows_room_in_chunks() {
        let s = SharedStats::new(3);
        assert_eq!(s.real_capacity(), REAL_CHUNK);
        let mut r = vec![RealStats::default(); REAL_CHUNK + 5];
        r[REAL_CHUNK + 4].conns = 9;
        r[2].in_pkts = 4;
        // Not published while there is no room for it ...
        s.publish(&WorkerStats::default(), &r);
        assert_eq!(s.load_real(2).in_pkts, 4);
        assert_eq!(s.load_real(REAL_CHUNK + 4), RealStats::default());
        // ... and published once the control thread made room.
        assert!(s.reserve(REAL_CHUNK + 5));
        assert_eq!(s.real_capacity(), 2 * REAL_CHUNK);
        s.publish(&WorkerStats::default(), &r);
        assert_eq!(s.load_real(REAL_CHUNK + 4).conns, 9);
        assert!(!s.reserve(MAX_REAL_IDS + 1));
        assert_eq!(s.real_capacity(), 2 * REAL_CHUNK, "a refusal adds nothing");
        assert_eq!(s.load_real(MAX_REAL_IDS), RealStats::default());
    }

    /// Every declared counter reaches the shared copy and back, by name:
    /// adding a line to `worker_counters!` is all a new counter needs.
    #[test]
    fn test_every_counter_publishes_and_loads() {
        let mut names = WorkerStats::COUNTER_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), N_WORKER_COUNTERS, "names are unique");
        assert_eq!(WorkerStats::COUNTER_NAMES[0], "rx_pkts");
        assert!(WorkerStats::COUNTER_NAMES.contains(&"persist_table_full"));

        let mut w = WorkerStats::default();
        assert_eq!(w.counter_values(), [0; N_WORKER_COUNTERS]);
        // Distinct values, so a counter published into another's slot shows.
        let want: [u64; N_WORKER_COUNTERS] = std::array::from_fn(|i| 1000 + i as u64);
        w.set_counter_values(want);
        assert_eq!((w.rx_pkts, w.rx_bytes), (1000, 1001));
        w.drop(DropReason::NoRoute);
        let s = SharedStats::new(1);
        s.publish(&w, &[]);
        let back = s.load();
        assert_eq!(back.counter_values(), want);
        assert_eq!(back.drops, w.drops);
    }

    #[test]
    fn test_drop_names_unique() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
