//! `process()`: one packet in, one verdict out. The heart of the director.
//!
//! Layer: dataplane, per worker, no I/O. [`Core`] holds everything a worker
//! owns except its queues: connection table, neighbour table, scheduler
//! state, counters. [`Core::process`] takes one frame as a mutable byte slice,
//! rewrites it in place and says what to do with it, so the same code runs
//! from a unit test with a byte array, under the pcap driver and in the DPDK
//! loop.
//!
//! Guarantees: never panics on any byte pattern (every header is checked with
//! `check_len` before use); never allocates once warm (scheduler scratch and
//! tables are preallocated); every packet that is not forwarded gets exactly
//! one [`DropReason`]. Refuses: fragments, IPv6, and traffic to the
//! director's own addresses other than ARP and ICMP echo (there is no kernel
//! exception path yet).

use hashbrown::{HashMap, HashSet};
use sched::{AnyScheduler, Dest, FlowInfo, SchedFlags, SchedKind, SchedParams, Scheduler};

use crate::conn::{Conn, ConnId, ConnTable, Dir, FlowKey, InsertError, TcpState};
use crate::neigh::{self, Lookup, NeighTable};
use crate::owner::owner;
use crate::persist::{self, Template, TemplateFact, TemplateKey, TemplateTable};
use crate::snapshot::{LocalKind, Method, Proto, RealServer, Service, ServiceKey, Snapshot};
use crate::stats::{DropReason, RealStats, WorkerStats};
use crate::wire::{
    self, checksum, ArpPacket, ArpRepr, EthernetFrame, Icmpv4Packet, Ipv4Packet, TcpPacket,
    UdpPacket, VlanHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_VLAN, PROTO_ICMP, PROTO_TCP,
    PROTO_UDP,
};
use crate::xmit;

/// Most ARP requests a worker queues between two drains of its loop.
pub const MAX_ARP_OUT: usize = 64;
/// Most learnt neighbours a worker queues for the other workers between drains.
pub const MAX_NEIGH_OUT: usize = 64;
/// Most persistent templates a worker queues for the other workers between
/// drains; more are not shared (see [`Core::learn_template`] for why that
/// only delays convergence).
pub const MAX_TEMPLATE_OUT: usize = 256;

/// What the worker loop must do with a processed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) frame on this port index.
    Tx(u8),
    /// Free the frame; the reason has already been counted.
    Drop(DropReason),
    /// The frame was consumed without a reply (an ARP reply we learnt from).
    Consumed,
    /// Move the frame, untouched, to this worker: it owns the flow.
    Redirect(u16),
}

/// An ARP request the worker loop must build and send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRequest {
    /// Output port index.
    pub port: u8,
    /// Sender protocol address (a DIP of that port), host order.
    pub sender_ip: u32,
    /// Address to resolve, host order.
    pub target_ip: u32,
}

/// A neighbour fact to forward to the other workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighFact {
    /// IPv4 address, host order.
    pub ip: u32,
    /// Its MAC, wire order.
    pub mac: [u8; 6],
    /// Port index it was seen on.
    pub port: u8,
}

/// What a service's scheduler state depends on: if all of it is the same
/// in a new snapshot, the state is kept ([`Core::sync_schedulers`]).
#[derive(Clone, Debug, PartialEq, Eq)]
struct SchedSig {
    key: ServiceKey,
    kind: SchedKind,
    flags: SchedFlags,
    params: SchedParams,
    /// (RIP, port) of each real server in scheduler order, host order;
    /// (0, 0) for an id missing from the snapshot.
    reals: Vec<(u32, u16)>,
}

impl SchedSig {
    fn of(svc: &Service, snap: &Snapshot) -> Self {
        SchedSig {
            key: svc.key,
            kind: svc.scheduler,
            flags: svc.sched_flags,
            params: svc.sched_params,
            reals: svc
                .reals
                .iter()
                .map(|&id| {
                    snap.reals
                        .get(id as usize)
                        .map_or((0, 0), |r| (r.ip, r.port))
                })
                .collect(),
        }
    }
}

/// Everything one worker owns except its queues.
#[repr(align(64))]
pub struct Core {
    /// This worker's index, 0..n_workers.
    pub id: u16,
    /// How many workers share the flows.
    pub n_workers: u16,
    /// Connections this worker owns.
    pub conns: ConnTable,
    /// Next-hop MACs.
    pub neigh: NeighTable,
    /// Counters.
    pub stats: WorkerStats,
    /// Per-real-server counters, indexed by dense real server id.
    pub reals: Vec<RealStats>,
    /// ARP requests to send (drained by the worker loop).
    pub arp_out: Vec<ArpRequest>,
    /// Learnt neighbours to tell the other workers (drained by the loop).
    pub neigh_out: Vec<NeighFact>,
    /// Persistent templates of this worker's (and, replicated, the other
    /// workers') persistent services. A one-template placeholder until a
    /// snapshot with a persistent service is adopted; [`Core::sync`] then
    /// allocates it at full size once (slow path), so a director without
    /// persistence does not pay 20 bytes per connection of capacity for it.
    pub persist: TemplateTable,
    /// Templates the full-size table holds: `persist::max_templates_for`
    /// of `max_conns`.
    persist_cap: u32,
    /// Templates to tell the other workers (drained by the loop; only
    /// filled when there are other workers).
    pub template_out: Vec<TemplateFact>,
    scheds: Vec<AnyScheduler>,
    /// What each of `scheds` was set up for, same order.
    sched_sigs: Vec<SchedSig>,
    dests: Vec<Dest>,
    /// Next-hop cache for `next_hop`, indexed by a hash of the destination.
    hops: Box<[Hop; 1 << HOP_CACHE_BITS]>,
    /// RIP:rport of every NAT real server in the snapshot: what a reply that
    /// RSS put on the wrong worker may come from.
    nat_reals: HashSet<(u32, u16), ahash::RandomState>,
    generation: Option<u64>,
}

/// log2 of the next-hop cache's slots (64 × 32 bytes).
const HOP_CACHE_BITS: u32 = 6;

/// One cached `next_hop` answer and what it was valid for.
#[derive(Clone, Copy, Debug)]
struct Hop {
    valid: bool,
    /// Destination the answer is for, host order.
    dst: u32,
    port: u8,
    port_mac: [u8; 6],
    mac: [u8; 6],
    /// `NeighTable::version` when it was resolved.
    neigh_version: u64,
    /// `Snapshot::generation` it was routed with.
    generation: u64,
}

impl Hop {
    const EMPTY: Hop = Hop {
        valid: false,
        dst: 0,
        port: 0,
        port_mac: [0; 6],
        mac: [0; 6],
        neigh_version: 0,
        generation: 0,
    };
}

impl Core {
    /// A worker core with room for `max_conns` connections and, once a
    /// snapshot has a persistent service,
    /// [`persist::max_templates_for`]`(max_conns)` persistent templates.
    pub fn new(id: u16, n_workers: u16, max_conns: u32) -> Self {
        Core {
            id,
            n_workers: n_workers.max(1),
            conns: ConnTable::new(max_conns),
            neigh: NeighTable::new(neigh::DEFAULT_CAPACITY),
            stats: WorkerStats::default(),
            reals: Vec::new(),
            arp_out: Vec::with_capacity(MAX_ARP_OUT),
            neigh_out: Vec::with_capacity(MAX_NEIGH_OUT),
            persist: TemplateTable::new(1),
            persist_cap: persist::max_templates_for(max_conns),
            template_out: Vec::with_capacity(MAX_TEMPLATE_OUT),
            scheds: Vec::new(),
            sched_sigs: Vec::new(),
            dests: Vec::with_capacity(1024),
            hops: Box::new([Hop::EMPTY; 1 << HOP_CACHE_BITS]),
            nat_reals: HashSet::default(),
            generation: None,
        }
    }

    /// Adopts `snap` if it is a new generation: carries scheduler state over
    /// or rebuilds it ([`Core::sync_schedulers`]), sizes the per-real-server
    /// counters and installs permanent neighbours.
    /// Slow path (allocates); called once per burst, returns `false` at once
    /// when the generation is unchanged and `true` when it adopted a new one.
    pub fn sync(&mut self, snap: &Snapshot) -> bool {
        if self.generation == Some(snap.generation) {
            return false;
        }
        self.generation = Some(snap.generation);
        if self.persist.capacity() < self.persist_cap
            && snap.services.iter().any(|s| s.persistence.is_some())
        {
            // The placeholder holds no template: no service was persistent.
            self.persist = TemplateTable::new(self.persist_cap);
        }
        self.sync_schedulers(snap);
        let longest = snap
            .services
            .iter()
            .map(|s| s.reals.len())
            .max()
            .unwrap_or(0);
        self.dests.reserve(longest);
        self.nat_reals = snap
            .reals
            .iter()
            .skip(1)
            .filter(|r| r.method == Method::Nat)
            .map(|r| (r.ip, r.port))
            .collect();
        if self.reals.len() < snap.reals.len() {
            self.reals.resize(snap.reals.len(), RealStats::default());
        }
        for &(port, ip, mac) in &snap.static_neighbours {
            let _ = self.neigh.set_permanent(port, ip, mac);
        }
        true
    }

    /// The connection-table hash of `frame`'s 5-tuple as it stands in the
    /// packet, for a well-formed-looking untagged or 802.1Q IPv4 TCP/UDP
    /// first fragment; `None` for anything else. A read-only peek for
    /// prefetching: it checks only what it needs to read the tuple in
    /// bounds (no checksums, no lengths beyond the headers), so its answer
    /// is a hint and [`Core::process`] still validates everything.
    #[inline]
    pub fn flow_hash(&self, frame: &[u8]) -> Option<u64> {
        let mut l3 = 14;
        let mut et = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
        if et == ETHERTYPE_VLAN {
            et = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
            l3 = 18;
        }
        if et != ETHERTYPE_IPV4 {
            return None;
        }
        let ip = frame.get(l3..l3 + 20)?;
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let proto = ip[9];
        // Not a first fragment (offset != 0) has no ports to hash.
        if ip[0] >> 4 != 4
            || ihl < 20
            || (proto != PROTO_TCP && proto != PROTO_UDP)
            || (ip[7] != 0 || ip[6] & 0x1f != 0)
        {
            return None;
        }
        let l4 = frame.get(l3 + ihl..l3 + ihl + 4)?;
        let key = FlowKey {
            src_ip: u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]),
            dst_ip: u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]),
            src_port: u16::from_be_bytes([l4[0], l4[1]]),
            dst_port: u16::from_be_bytes([l4[2], l4[3]]),
            proto,
        };
        Some(self.conns.hash(&key))
    }

    /// Gives every service of `snap` its scheduler state.
    ///
    /// A service (matched by [`ServiceKey`], not by its index, which moves
    /// when services are added or removed) keeps its previous state — the
    /// `rr` position, `wrr` sequence, `lblc`/`lblcr` locality tables, the
    /// `twos` random stream — when its scheduler kind, flags, parameters and
    /// real-server list (RIP, port, in order) are unchanged: the state holds
    /// indices into that list, so it stays meaningful. Weights may differ;
    /// they reach the scheduler with every pick. IPVS likewise keeps a
    /// service's scheduler data when only a destination's weight is edited
    /// (`ip_vs_edit_dest`), and resets it on `ipvsadm -E -s`.
    ///
    /// Anything else gets fresh state, and an `mh` service always takes the
    /// new snapshot's shared table ([`AnyScheduler::with_table`]: nothing is
    /// built here): its only state is that table.
    fn sync_schedulers(&mut self, snap: &Snapshot) {
        let mut old: HashMap<ServiceKey, (SchedSig, AnyScheduler)> =
            std::mem::take(&mut self.sched_sigs)
                .into_iter()
                .zip(std::mem::take(&mut self.scheds))
                .map(|(sig, s)| (sig.key, (sig, s)))
                .collect();
        for svc in &snap.services {
            let sig = SchedSig::of(svc, snap);
            let kept = match old.remove(&sig.key) {
                Some((prev, s)) if prev == sig && svc.scheduler != SchedKind::Mh => Some(s),
                _ => None,
            };
            let sched = kept.unwrap_or_else(|| {
                // The snapshot's params were validated by control; should
                // they not be, the defaults still schedule correctly.
                AnyScheduler::with_table(
                    svc.scheduler,
                    svc.sched_flags,
                    &svc.sched_params,
                    svc.mh_table.clone(),
                )
                .unwrap_or_else(|_| AnyScheduler::new(svc.scheduler))
            });
            self.scheds.push(sched);
            self.sched_sigs.push(sig);
        }
    }

    /// This worker's scheduler state for service index `svc` of the last
    /// snapshot adopted by [`Core::sync`], for inspection (tests, status).
    pub fn scheduler(&self, svc: u16) -> Option<&AnyScheduler> {
        self.scheds.get(usize::from(svc))
    }

    /// Queues ARP requests for every next hop the snapshot will need (each
    /// real server's, each static route's gateway) that this worker does not
    /// know yet, up to [`MAX_ARP_OUT`] at once; the rest resolve on first use.
    /// Resolving ahead means the first connection to a real server is not
    /// dropped for `neigh_unresolved` (keepalived's health checks have the
    /// same side effect on an LVS director). The workers share the answers.
    pub fn prime_neighbours(&mut self, snap: &Snapshot, now_ms: u64) {
        let hops = snap
            .reals
            .iter()
            .skip(1)
            .map(|r| r.ip)
            .chain(snap.routes.iter().filter_map(|r| r.via));
        for ip in hops {
            if self.arp_out.len() >= MAX_ARP_OUT {
                break;
            }
            let Some((port, nh)) = snap.route(ip) else {
                continue;
            };
            if self.neigh.lookup(port, nh, now_ms) == Lookup::SendRequest {
                self.queue_arp(snap, port, nh);
            }
        }
    }

    /// Processes one frame that arrived on port `in_port`, in place.
    ///
    /// `frame` is the whole Ethernet frame (no FCS). `now_ms` is the worker's
    /// monotonic clock in milliseconds. `redirected` is true when another
    /// worker already classified the frame and moved it here; such a frame is
    /// never redirected again. Counts `rx_*` only for frames from a port
    /// (`redirected == false`); `tx_*` are counted by the loop that sends.
    pub fn process(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        in_port: u8,
        now_ms: u64,
        redirected: bool,
    ) -> Verdict {
        if !redirected {
            self.stats.rx_pkts += 1;
            self.stats.rx_bytes += frame.len() as u64;
        }
        let v = self.classify(snap, frame, in_port, now_ms, redirected);
        if let Verdict::Drop(r) = v {
            self.stats.drop(r);
        }
        v
    }

    fn classify(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        in_port: u8,
        now_ms: u64,
        redirected: bool,
    ) -> Verdict {
        let Some(port) = snap.ports.get(usize::from(in_port)) else {
            return Verdict::Drop(DropReason::BadPort);
        };
        let port_mac = port.mac;
        let (ethertype, l3) = {
            let Ok(eth) = EthernetFrame::new_checked(&*frame) else {
                return Verdict::Drop(DropReason::EthTruncated);
            };
            let dst = eth.dst_addr();
            if dst != port_mac && dst != wire::BROADCAST {
                return Verdict::Drop(DropReason::EthNotForUs);
            }
            let mut ethertype = eth.ethertype();
            let mut l3 = wire::ethernet::HEADER_LEN;
            if ethertype == ETHERTYPE_VLAN {
                let Ok(tag) = VlanHeader::new_checked(eth.payload()) else {
                    return Verdict::Drop(DropReason::EthTruncated);
                };
                ethertype = tag.ethertype();
                l3 += wire::vlan::HEADER_LEN;
            }
            (ethertype, l3)
        };
        match ethertype {
            ETHERTYPE_ARP => self.arp(snap, frame, l3, in_port, port_mac, now_ms),
            ETHERTYPE_IPV4 => self.ipv4(snap, frame, l3, in_port, port_mac, now_ms, redirected),
            _ => Verdict::Drop(DropReason::EthUnsupported),
        }
    }

    /// ARP (RFC 826): learn, and answer requests for our addresses.
    fn arp(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        l3: usize,
        in_port: u8,
        port_mac: [u8; 6],
        now_ms: u64,
    ) -> Verdict {
        let Some(body) = frame.get(l3..) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        let Ok(pkt) = ArpPacket::new_checked(body) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        let Ok(repr) = ArpRepr::parse(&pkt) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        let ours = snap
            .local
            .get(&repr.target_ip)
            .is_some_and(|l| l.arp_ports & (1u64 << (in_port & 63)) != 0);
        // RFC 826 merge: update a sender we already know; add it when the
        // packet is for us. Never learn 0.0.0.0 (ARP probes, RFC 5227).
        if repr.sender_ip != 0
            && (ours || self.neigh.knows(in_port, repr.sender_ip))
            && self
                .neigh
                .learn(in_port, repr.sender_ip, repr.sender_mac, now_ms)
                .is_news()
            && self.neigh_out.len() < MAX_NEIGH_OUT
        {
            self.neigh_out.push(NeighFact {
                ip: repr.sender_ip,
                mac: repr.sender_mac,
                port: in_port,
            });
        }
        if repr.operation != wire::arp::OP_REQUEST {
            return Verdict::Consumed;
        }
        if !ours {
            return Verdict::Drop(DropReason::ArpNotForUs);
        }
        let reply = ArpRepr {
            operation: wire::arp::OP_REPLY,
            sender_mac: port_mac,
            sender_ip: repr.target_ip,
            target_mac: repr.sender_mac,
            target_ip: repr.sender_ip,
        };
        let Some(body) = frame.get_mut(l3..) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        reply.emit(&mut ArpPacket::new_unchecked(body));
        xmit::set_macs(frame, port_mac, repr.sender_mac);
        self.stats.arp_replies += 1;
        Verdict::Tx(in_port)
    }

    #[allow(clippy::too_many_arguments)]
    fn ipv4(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        l3: usize,
        in_port: u8,
        port_mac: [u8; 6],
        now_ms: u64,
        redirected: bool,
    ) -> Verdict {
        let Some(ipbuf) = frame.get(l3..) else {
            return Verdict::Drop(DropReason::Ipv4Malformed);
        };
        let ip = match Ipv4Packet::new_checked(ipbuf) {
            Ok(p) => p,
            Err(wire::Error::BadTotalLen) => return Verdict::Drop(DropReason::Ipv4BadLength),
            Err(_) => return Verdict::Drop(DropReason::Ipv4Malformed),
        };
        if !ip.verify_checksum() {
            return Verdict::Drop(DropReason::Ipv4BadChecksum);
        }
        if ip.more_frags() || ip.frag_offset() != 0 {
            // No reassembly: a non-first fragment has no ports to look up, and
            // forwarding only first fragments would strand the rest.
            return Verdict::Drop(DropReason::Ipv4Fragment);
        }
        let (src, dst, proto, hl, ttl) = (
            ip.src_addr(),
            ip.dst_addr(),
            ip.protocol(),
            ip.header_len(),
            ip.ttl(),
        );
        let total_len = usize::from(ip.total_len());
        let ip_end = l3 + total_len;

        let local = snap.local.get(&dst).map(|l| l.kind);
        if let Some(kind) = local {
            if proto == PROTO_ICMP {
                return self.icmp_echo(frame, l3, hl, ip_end, in_port, port_mac);
            }
            if kind == LocalKind::Dip {
                return Verdict::Drop(DropReason::NotForUs);
            }
        }

        // Ports of a TCP or UDP packet, plus TCP flags.
        let l4 = &frame[l3 + hl..ip_end];
        let (sport, dport, flags) = match proto {
            PROTO_TCP => match TcpPacket::new_checked(l4) {
                Ok(t) => (t.src_port(), t.dst_port(), t.flags()),
                Err(_) => return Verdict::Drop(DropReason::TcpMalformed),
            },
            PROTO_UDP => match UdpPacket::new_checked(l4) {
                Ok(u) => (u.src_port(), u.dst_port(), 0),
                Err(_) => return Verdict::Drop(DropReason::UdpMalformed),
            },
            _ => return Verdict::Drop(DropReason::NotForUs),
        };
        let l4proto = Proto::from_number(proto);
        let is_vip = local == Some(LocalKind::Vip);

        // Client → VIP. The connection is looked up before the service, as
        // IPVS does: an established flow never pays the service lookup.
        if is_vip {
            let service = |snap: &Snapshot| l4proto.and_then(|p| snap.service(dst, dport, p));
            let o = owner(src, sport, self.n_workers);
            if o != self.id && !redirected {
                // Junk for a port without a service stays on this worker.
                if service(snap).is_none() {
                    return Verdict::Drop(DropReason::NoService);
                }
                self.stats.redirects_out += 1;
                return Verdict::Redirect(o);
            }
            let key = FlowKey {
                src_ip: src,
                dst_ip: dst,
                src_port: sport,
                dst_port: dport,
                proto,
            };
            let id = match self.conns.lookup(&key) {
                Some((id, _)) => id,
                None => {
                    let Some(svc) = service(snap) else {
                        return Verdict::Drop(DropReason::NoService);
                    };
                    match self.new_conn(snap, svc, &key, flags, ttl, now_ms) {
                        Ok(id) => id,
                        Err(r) => return Verdict::Drop(r),
                    }
                }
            };
            return self.forward(snap, frame, l3, total_len, ttl, id, flags, Dir::In, now_ms);
        }

        // Real server → client: a NAT reply, owned by the client's worker.
        let key = FlowKey {
            src_ip: src,
            dst_ip: dst,
            src_port: sport,
            dst_port: dport,
            proto,
        };
        let o = owner(dst, dport, self.n_workers);
        if o != self.id && !redirected {
            // Only redirect what could be a reply of a connection elsewhere:
            // the source must be a real server we balance to.
            if self.may_be_reply(src, sport) {
                self.stats.redirects_out += 1;
                return Verdict::Redirect(o);
            }
            return Verdict::Drop(DropReason::NotForUs);
        }
        match self.conns.lookup(&key) {
            Some((id, Dir::Out)) => {
                self.forward(snap, frame, l3, total_len, ttl, id, flags, Dir::Out, now_ms)
            }
            _ => Verdict::Drop(DropReason::NotForUs),
        }
    }

    /// Whether `ip:port` is a NAT real server of the current snapshot. A
    /// port-0 service's real servers answer from any port, so their address
    /// alone qualifies.
    #[inline]
    fn may_be_reply(&self, ip: u32, port: u16) -> bool {
        self.nat_reals.contains(&(ip, port)) || self.nat_reals.contains(&(ip, 0))
    }

    /// Schedules a new connection for service `svc` (`ttl` of the packet that
    /// asks for it: NAT refuses to route one that would expire).
    fn new_conn(
        &mut self,
        snap: &Snapshot,
        svc: u16,
        key: &FlowKey,
        flags: u8,
        ttl: u8,
        now_ms: u64,
    ) -> Result<ConnId, DropReason> {
        let Some(service) = snap.services.get(usize::from(svc)) else {
            return Err(DropReason::NoService);
        };
        if key.proto == PROTO_TCP {
            // IPVS schedules only on a SYN (without sloppy_tcp); anything else
            // without a connection is stray or an attack.
            let syn_only = flags
                & (wire::tcp::FLAG_SYN
                    | wire::tcp::FLAG_ACK
                    | wire::tcp::FLAG_RST
                    | wire::tcp::FLAG_FIN)
                == wire::tcp::FLAG_SYN;
            if !syn_only {
                return Err(DropReason::TcpNoConn);
            }
        }
        // Persistence (IPVS `ip_vs_sched_persist()`): a live template whose
        // real server is still in the service decides; otherwise schedule
        // and create one. The template key's vport is the service's, so a
        // port-0 service sends every port of one client to one real server.
        let tkey = service.persistence.map(|p| TemplateKey {
            vip: service.key.vip,
            cnet: key.src_ip & p.mask,
            vport: service.key.vport,
            proto: key.proto,
        });
        let templated = tkey.and_then(|tk| self.template_pick(snap, service, &tk, now_ms));
        let pick = match templated {
            Some(i) => i,
            None => self.schedule(snap, svc, service, key)?,
        };
        let Some(&rid) = service.reals.get(pick) else {
            return Err(DropReason::NoRealServer);
        };
        let Some(real) = snap.reals.get(rid as usize) else {
            return Err(DropReason::NoRealServer);
        };
        if real.method == Method::Nat && ttl <= 1 {
            // NAT routes, so the TTL would reach 0: no connection for it.
            return Err(DropReason::TtlExceeded);
        }
        if let (Some(tk), Some(p), None) = (tkey, service.persistence, templated) {
            self.create_template(tk, real, p.timeout_ms, now_ms);
        }
        let state = if key.proto == PROTO_TCP {
            TcpState::None
        } else {
            TcpState::Udp
        };
        let conn = Conn {
            cip: key.src_ip,
            cport: key.src_port,
            vip: key.dst_ip,
            vport: key.dst_port,
            rip: real.ip,
            // A port-0 service keeps the client's destination port.
            rport: if real.port == 0 {
                key.dst_port
            } else {
                real.port
            },
            proto: key.proto,
            method: real.method,
            real: rid,
            service: svc,
            state,
        };
        let timeout = state.timeout_ms(&snap.timeouts);
        match self.conns.insert(conn, timeout, now_ms) {
            Ok(id) => {
                self.stats.conns_created += 1;
                if let Some(s) = self.reals.get_mut(rid as usize) {
                    s.conns += 1;
                    if state.is_active() {
                        s.active_conns += 1;
                    } else {
                        s.inactive_conns += 1;
                    }
                }
                Ok(id)
            }
            Err(InsertError::TableFull) => Err(DropReason::ConnTableFull),
            Err(_) => Err(DropReason::ConnTableFull),
        }
    }

    /// Runs service `svc`'s scheduler over its real servers for the flow
    /// `key`; returns the index into `service.reals` it picked.
    fn schedule(
        &mut self,
        snap: &Snapshot,
        svc: u16,
        service: &Service,
        key: &FlowKey,
    ) -> Result<usize, DropReason> {
        self.dests.clear();
        for &rid in &service.reals {
            let (w, id, s) = match (snap.reals.get(rid as usize), self.reals.get(rid as usize)) {
                // The identity hashing schedulers (mh) key on: RIP and port.
                (Some(r), Some(s)) => (r.weight, r.sched_id(), *s),
                _ => (0, 0, RealStats::default()),
            };
            self.dests.push(Dest {
                weight: w,
                id,
                active_conns: s.active_conns.min(u64::from(u32::MAX)) as u32,
                inactive_conns: s.inactive_conns.min(u64::from(u32::MAX)) as u32,
            });
        }
        let flow = FlowInfo {
            src_ip: key.src_ip,
            src_port: key.src_port,
            dst_ip: key.dst_ip,
            dst_port: key.dst_port,
        };
        let Some(sched) = self.scheds.get_mut(usize::from(svc)) else {
            return Err(DropReason::NoService);
        };
        sched
            .pick(&self.dests, &flow)
            .ok_or(DropReason::NoRealServer)
    }

    /// The index into `service.reals` of the real server a live template
    /// for `tk` names, refreshing the template to `now_ms` + the service's
    /// timeout (each new connection through a template extends it, as
    /// IPVS re-arms the template's timer). `None` when there is no live
    /// template or its RIP:rport is no longer one of the service's real
    /// servers; a quiesced (weight 0) real server still counts, as with
    /// IPVS's default `expire_quiescent_template = 0`.
    fn template_pick(
        &mut self,
        snap: &Snapshot,
        service: &Service,
        tk: &TemplateKey,
        now_ms: u64,
    ) -> Option<usize> {
        let timeout_ms = u64::from(service.persistence?.timeout_ms);
        let found = match self.persist.lookup(tk, now_ms) {
            Some(t) => real_index(snap, service, t.rip, t.rport).inspect(|_| {
                t.expires_ms = now_ms + timeout_ms;
            }),
            None => None,
        };
        // The lookup may have removed an expired template.
        self.stats.persist_templates = u64::from(self.persist.len());
        found
    }

    /// Stores a new template for `tk` naming `real`, and queues it for the
    /// other workers; a full table is counted (`persist_table_full`) and the
    /// connection goes on without a template.
    fn create_template(
        &mut self,
        tk: TemplateKey,
        real: &RealServer,
        timeout_ms: u32,
        now_ms: u64,
    ) {
        let t = Template {
            key: tk,
            rip: real.ip,
            rport: real.port,
            creator: self.id,
            created_ms: now_ms,
            expires_ms: now_ms + u64::from(timeout_ms),
        };
        match self.persist.upsert(t) {
            Ok(()) => self.share_template(t, timeout_ms),
            Err(persist::Full) => self.stats.persist_table_full += 1,
        }
        self.stats.persist_templates = u64::from(self.persist.len());
    }

    fn share_template(&mut self, template: Template, timeout_ms: u32) {
        if self.n_workers > 1 && self.template_out.len() < MAX_TEMPLATE_OUT {
            self.template_out.push(TemplateFact {
                template,
                timeout_ms,
            });
        }
    }

    /// Installs a template another worker created or defends, so that one
    /// client's connections (owned by different workers, since ownership
    /// hashes the client port too) reach the same real server.
    ///
    /// Conflict rule: when this worker holds a live, usable template for the
    /// same key, the one with the smaller `(created_ms, creator)` stays
    /// ([`Template::beats`]). If ours wins, it is queued for every other
    /// worker, so the sender and anyone that installed the loser switch to
    /// it: every exchange moves a worker to a strictly smaller template, so
    /// all converge on one. A lost message (full ring, full queue) only
    /// delays that: the next conflict on the key repairs it.
    ///
    /// Window: two first connections of one client that reach two workers
    /// before either's template crosses the rings (about one loop round)
    /// may go to different real servers; later connections agree.
    ///
    /// Ignored: facts for a service that is gone or not persistent, or
    /// naming a real server not in this worker's snapshot of the service.
    /// The installed copy expires `timeout_ms` after `now_ms` (this worker's
    /// clock). A full table is counted as `persist_table_full`.
    pub fn learn_template(&mut self, snap: &Snapshot, fact: &TemplateFact, now_ms: u64) {
        let t = fact.template;
        let Some(proto) = Proto::from_number(t.key.proto) else {
            return;
        };
        let sk = ServiceKey {
            vip: t.key.vip,
            vport: t.key.vport,
            proto,
        };
        let Some(service) = snap
            .service_index
            .get(&sk)
            .and_then(|&i| snap.services.get(usize::from(i)))
        else {
            return;
        };
        let Some(p) = service.persistence else {
            return;
        };
        if real_index(snap, service, t.rip, t.rport).is_none() {
            return;
        }
        let mine = self.persist.lookup(&t.key, now_ms).copied();
        match mine {
            Some(m) if !t.beats(&m) && real_index(snap, service, m.rip, m.rport).is_some() => {
                if !m.same_origin(&t) {
                    self.share_template(m, p.timeout_ms);
                }
            }
            _ => {
                let incoming = Template {
                    expires_ms: now_ms + u64::from(fact.timeout_ms),
                    ..t
                };
                if self.persist.upsert(incoming).is_err() {
                    self.stats.persist_table_full += 1;
                }
            }
        }
        self.stats.persist_templates = u64::from(self.persist.len());
    }

    /// Moves a connection to its next state and refreshes its timer,
    /// keeping the real server's active/inactive counts in step.
    fn advance(
        &mut self,
        snap: &Snapshot,
        id: ConnId,
        flags: u8,
        dir: Dir,
        now_ms: u64,
    ) -> Option<Conn> {
        let c = self.conns.get(id)?;
        let old = c.state;
        let new = if c.proto == PROTO_TCP {
            old.next(flags, dir, c.method == Method::Dr)
        } else {
            old
        };
        let conn = if new == old {
            c
        } else {
            self.conns.set_state(id, new)?
        };
        if old.is_active() != new.is_active() {
            if let Some(s) = self.reals.get_mut(conn.real as usize) {
                if new.is_active() {
                    s.active_conns += 1;
                    s.inactive_conns = s.inactive_conns.saturating_sub(1);
                } else {
                    s.inactive_conns += 1;
                    s.active_conns = s.active_conns.saturating_sub(1);
                }
            }
        }
        let timeout = new.timeout_ms(&snap.timeouts);
        self.conns.touch(id, timeout, now_ms);
        Some(conn)
    }

    /// Forwards a packet of connection `id` travelling in direction `dir`:
    /// state update, rewrite for the connection's forwarding method, next hop.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        l3: usize,
        total_len: usize,
        ttl: u8,
        id: ConnId,
        flags: u8,
        dir: Dir,
        now_ms: u64,
    ) -> Verdict {
        // NAT routes (TTL - 1); DR hands the packet on untouched.
        if ttl <= 1 && self.conns.get(id).is_some_and(|c| c.method == Method::Nat) {
            return Verdict::Drop(DropReason::TtlExceeded);
        }
        let Some(conn) = self.advance(snap, id, flags, dir, now_ms) else {
            return Verdict::Drop(DropReason::NotForUs);
        };
        let towards = match dir {
            Dir::In => conn.rip,
            Dir::Out => conn.cip,
        };
        let (out_port, port_mac, mac) = match self.next_hop(snap, towards, now_ms) {
            Ok(hop) => hop,
            Err(r) => return Verdict::Drop(r),
        };
        let ip = &mut frame[l3..l3 + total_len];
        match (conn.method, dir) {
            (Method::Nat, Dir::In) => {
                xmit::decrement_ttl(ip);
                xmit::nat::rewrite_inbound(ip, conn.rip, conn.rport);
                xmit::set_macs(frame, port_mac, mac);
            }
            (Method::Nat, Dir::Out) => {
                xmit::decrement_ttl(ip);
                xmit::nat::rewrite_outbound(ip, conn.vip, conn.vport);
                xmit::set_macs(frame, port_mac, mac);
            }
            // A DR connection has no outbound key, so only Dir::In gets here.
            (Method::Dr, _) => xmit::dr::rewrite(frame, port_mac, mac),
        }
        if let Some(s) = self.reals.get_mut(conn.real as usize) {
            match dir {
                Dir::In => {
                    s.in_pkts += 1;
                    s.in_bytes += total_len as u64;
                }
                Dir::Out => {
                    s.out_pkts += 1;
                    s.out_bytes += total_len as u64;
                }
            }
        }
        Verdict::Tx(out_port)
    }

    /// Output port, its MAC and the next hop's MAC for a packet to `dst`
    /// (host order); a neighbour miss queues an ARP request.
    ///
    /// Answers come from a small direct-mapped cache of earlier successes
    /// (route + neighbour hit), valid while the snapshot generation and the
    /// neighbour table's version are unchanged; a miss takes the full path.
    #[inline]
    fn next_hop(
        &mut self,
        snap: &Snapshot,
        dst: u32,
        now_ms: u64,
    ) -> Result<(u8, [u8; 6], [u8; 6]), DropReason> {
        let slot = (dst.wrapping_mul(0x9e37_79b1) >> (32 - HOP_CACHE_BITS)) as usize;
        let version = self.neigh.version();
        if let Some(h) = self.hops.get(slot) {
            if h.valid
                && h.dst == dst
                && h.neigh_version == version
                && h.generation == snap.generation
            {
                return Ok((h.port, h.port_mac, h.mac));
            }
        }
        let (out_port, nh) = snap.route(dst).ok_or(DropReason::NoRoute)?;
        let mac = self.resolve(snap, out_port, nh, now_ms)?;
        let port = snap
            .ports
            .get(usize::from(out_port))
            .ok_or(DropReason::BadPort)?;
        if let Some(h) = self.hops.get_mut(slot) {
            *h = Hop {
                valid: true,
                dst,
                port: out_port,
                port_mac: port.mac,
                mac,
                neigh_version: self.neigh.version(),
                generation: snap.generation,
            };
        }
        Ok((out_port, port.mac, mac))
    }

    /// Next-hop MAC for `nh` on `port`, or queues an ARP request.
    fn resolve(
        &mut self,
        snap: &Snapshot,
        port: u8,
        nh: u32,
        now_ms: u64,
    ) -> Result<[u8; 6], DropReason> {
        match self.neigh.lookup(port, nh, now_ms) {
            Lookup::Hit(mac) => Ok(mac),
            Lookup::SendRequest => {
                self.queue_arp(snap, port, nh);
                Err(DropReason::NeighUnresolved)
            }
            Lookup::Pending | Lookup::Refused(_) => Err(DropReason::NeighUnresolved),
        }
    }

    /// Queues an ARP request for `target` on `port`, from the port address on
    /// the target's subnet (or the port's first address).
    pub fn queue_arp(&mut self, snap: &Snapshot, port: u8, target: u32) {
        let Some(p) = snap.ports.get(usize::from(port)) else {
            return;
        };
        let sender = p
            .addrs
            .iter()
            .find(|(_, pfx)| pfx.contains(target))
            .or(p.addrs.first())
            .map(|(a, _)| *a);
        if let Some(sender_ip) = sender {
            if self.arp_out.len() < MAX_ARP_OUT {
                self.arp_out.push(ArpRequest {
                    port,
                    sender_ip,
                    target_ip: target,
                });
            }
        }
    }

    /// Answers an ICMP echo request to a local address in place (RFC 792).
    fn icmp_echo(
        &mut self,
        frame: &mut [u8],
        l3: usize,
        hl: usize,
        ip_end: usize,
        in_port: u8,
        port_mac: [u8; 6],
    ) -> Verdict {
        {
            let Ok(icmp) = Icmpv4Packet::new_checked(&frame[l3 + hl..ip_end]) else {
                return Verdict::Drop(DropReason::IcmpMalformed);
            };
            if icmp.msg_type() != wire::icmp::TYPE_ECHO_REQUEST || icmp.msg_code() != 0 {
                return Verdict::Drop(DropReason::IcmpUnsupported);
            }
        }
        {
            let mut icmp = Icmpv4Packet::new_unchecked(&mut frame[l3 + hl..ip_end]);
            let c = checksum::update_u16(
                icmp.checksum(),
                u16::from(wire::icmp::TYPE_ECHO_REQUEST) << 8,
                u16::from(wire::icmp::TYPE_ECHO_REPLY) << 8,
            );
            icmp.set_msg_type(wire::icmp::TYPE_ECHO_REPLY);
            icmp.set_checksum(c);
        }
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..ip_end]);
            let (s, d) = (ip.src_addr(), ip.dst_addr());
            // Swapping the addresses leaves the header sum unchanged; the new
            // TTL is fixed incrementally.
            ip.set_src_addr(d);
            ip.set_dst_addr(s);
            ip.rewrite_ttl(64);
        }
        let peer = EthernetFrame::new_unchecked(&*frame).src_addr();
        xmit::set_macs(frame, port_mac, peer);
        self.stats.icmp_echo_replies += 1;
        Verdict::Tx(in_port)
    }

    /// Slow-tick work at `now_ms`: expires at most `budget` connections and
    /// ages the neighbour table, queueing re-probes.
    pub fn tick(&mut self, snap: &Snapshot, now_ms: u64, budget: usize) {
        let reals = &mut self.reals;
        let n = self.conns.expire(now_ms, budget, |c| {
            if let Some(s) = reals.get_mut(c.real as usize) {
                if c.state.is_active() {
                    s.active_conns = s.active_conns.saturating_sub(1);
                } else {
                    s.inactive_conns = s.inactive_conns.saturating_sub(1);
                }
            }
        });
        self.stats.conns_expired += n as u64;
        self.persist.sweep(now_ms, persist::SWEEP_SLOTS_PER_TICK);
        self.stats.persist_templates = u64::from(self.persist.len());
        // lblc/lblcr age their locality tables; a no-op for the others.
        for s in &mut self.scheds {
            s.tick(now_ms);
        }
        let mut probes: [(u8, u32); 16] = [(0, 0); 16];
        let mut n_probes = 0;
        self.neigh
            .age(now_ms, neigh::DEFAULT_AGE_BUDGET, |port, ip| {
                if n_probes < probes.len() {
                    probes[n_probes] = (port, ip);
                    n_probes += 1;
                    return true;
                }
                false
            });
        for &(port, ip) in &probes[..n_probes] {
            self.queue_arp(snap, port, ip);
        }
    }
}

/// The index into `service.reals` of the real server `rip:rport` (host
/// order; `rport` as configured, 0 in a port-0 service), if it is one.
fn real_index(snap: &Snapshot, service: &Service, rip: u32, rport: u16) -> Option<usize> {
    service.reals.iter().position(|&rid| {
        snap.reals
            .get(rid as usize)
            .is_some_and(|r| r.ip == rip && r.port == rport)
    })
}

/// Writes a broadcast ARP request into `buf` and returns its length in bytes
/// (60: a minimum Ethernet frame, zero-padded), or 0 if `buf` is shorter.
///
/// RFC 826: htype 1, ptype 0x0800, op 1, target MAC zero.
pub fn emit_arp_request(buf: &mut [u8], port_mac: [u8; 6], req: &ArpRequest) -> usize {
    const LEN: usize = 60;
    let Some(buf) = buf.get_mut(..LEN) else {
        return 0;
    };
    buf.fill(0);
    {
        let mut eth = EthernetFrame::new_unchecked(&mut *buf);
        eth.set_dst_addr(wire::BROADCAST);
        eth.set_src_addr(port_mac);
        eth.set_ethertype(ETHERTYPE_ARP);
    }
    let repr = ArpRepr {
        operation: wire::arp::OP_REQUEST,
        sender_mac: port_mac,
        sender_ip: req.sender_ip,
        target_mac: [0; 6],
        target_ip: req.target_ip,
    };
    repr.emit(&mut ArpPacket::new_unchecked(
        &mut buf[wire::ethernet::HEADER_LEN..],
    ));
    LEN
}
