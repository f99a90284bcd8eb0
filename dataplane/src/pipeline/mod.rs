//! The packet path as a staged pipeline: one frame in, one verdict out.
//!
//! Layer: dataplane, per worker, no I/O. [`Core`] is a plain set of parts
//! (connection table, per-real-server counters, scheduler state,
//! persistence templates, neighbours and the next-hop cache, counters,
//! outboxes); each stage is one file and borrows only the parts it needs:
//!
//! | stage | file | decides |
//! |---|---|---|
//! | parse | `parse.rs` | offsets, tuple, flags, flow hash; L2 and header-length drops |
//! | validate | `validate.rs` | checksums, options, malformed fragments, martians, port 0 |
//! | frag | `frag.rs` | fragments: their datagram's home and owner worker, later fragments' rewrite |
//! | classify | `classify.rs` | local / VIP / reply / ICMP error |
//! | icmp_relay | `icmp_relay.rs` | an ICMP error about a balanced flow, to the other end |
//! | local | `local.rs` | ARP, ICMP echo, VRRP adverts, the exception path to the kernel |
//! | shard | `shard.rs` | the flow's owner worker, redirect |
//! | conn | `conn.rs` | lookup, creation (persistence, scheduler), TCP state |
//! | forward | `forward.rs` | state update, next hop, egress MTU, then `route` and `xmit` |
//! | route | `route.rs` | next hop from the cache, routes and neighbours |
//! | xmit | `crate::xmit` | the forwarding method's rewrite |
//! | icmp_error | `icmp_error.rs` | time exceeded, fragmentation needed (egress MTU) |
//!
//! [`Core::process_burst`] runs `parse` over a whole burst and prefetches
//! every frame's connection-table lines before the first frame is acted
//! on, as VPP and DPDK's graph nodes do; [`Core::process`] runs the same
//! stages on one frame, callable from a unit test with a byte array.
//!
//! Guarantees: never panics on any byte pattern (every header is checked
//! with `check_len` before use); never allocates once warm; every packet
//! that is not forwarded gets exactly one [`DropReason`] (or is
//! `Consumed`, having taught the neighbour table something).

pub mod classify;
pub mod conn;
mod entry;
mod forward;
pub mod frag;
pub mod icmp_error;
pub mod icmp_relay;
pub mod local;
pub mod parse;
pub mod route;
pub mod schedulers;
pub mod shard;
pub mod templates;
pub mod validate;

use hashbrown::HashSet;
use sched::AnyScheduler;

use crate::conn::{ConnTable, Dir};
use crate::frag::FragTable;
use crate::frame::Frame;
use crate::lport::LportPools;
use crate::neigh::{self, Lookup, NeighTable};
use crate::persist::{self, Template, TemplateFact, TemplateTable};
use crate::snapshot::{LocalKind, Method, PortConf, Proto, ServiceKey, Snapshot};
use crate::stats::{DropReason, RealStats, WorkerStats};

use self::classify::{Class, LocalIndex};
use self::conn::{account, ConnParts};
use self::icmp_error::IcmpErrorParts;
use self::icmp_relay::ErrorSide;
use self::local::{LocalParts, TokenBucket};
use self::parse::Parsed;
pub use self::route::emit_arp_request;
use self::route::{HopCache, RouteParts};
use self::schedulers::SchedSet;
use self::templates::{real_index, TemplateParts};

pub use self::route::MAX_ARP_OUT;
pub use self::templates::MAX_TEMPLATE_OUT;

/// Most frames [`Core::process_burst`] takes at once.
pub const MAX_BURST: usize = 64;
/// Most learnt neighbours a worker queues for the other workers between drains.
pub const MAX_NEIGH_OUT: usize = 64;

/// What the worker loop must do with a processed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) frame on this port index.
    Tx(u8),
    /// Free the frame; the reason has already been counted.
    Drop(DropReason),
    /// The frame was consumed without a reply: an ARP reply or announcement
    /// that taught the neighbour table something.
    Consumed,
    /// Move the frame, untouched, to this worker: it owns the flow.
    Redirect(u16),
    /// Hand the frame, unchanged, to the kernel: this worker's TX queue of
    /// the kernel (TAP) interface of this port index, the arrival port
    /// (the exception path; see `local`).
    Kernel(u8),
}

/// What every stage may know about the packet in hand besides its bytes:
/// the snapshot, the port it arrived on, the clock. `Copy`, built once per
/// frame.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The snapshot this burst is processed with.
    pub snap: &'a Snapshot,
    /// The arrival port's configuration.
    pub port: &'a PortConf,
    /// The arrival port's index.
    pub in_port: u8,
    /// The worker's monotonic clock, milliseconds.
    pub now_ms: u64,
    /// Another worker already classified and moved this frame here.
    pub redirected: bool,
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
    /// Templates to tell the other workers (drained by the loop; only
    /// filled when there are other workers).
    pub template_out: Vec<TemplateFact>,
    /// Templates the full-size table holds: `persist::max_templates_for`
    /// of `max_conns`.
    persist_cap: u32,
    sched: SchedSet,
    hops: HopCache,
    /// The snapshot's local addresses, for `classify`.
    local_index: LocalIndex,
    /// FullNAT local ports this worker may book (only those it owns).
    pub lports: LportPools,
    /// RIP:rport of every NAT and FullNAT real server in the snapshot: what
    /// a reply that RSS put on the wrong worker may come from.
    nat_reals: HashSet<(u32, u16), ahash::RandomState>,
    /// RIP of every NAT real server: what a non-first fragment of a reply
    /// (no port) may come from.
    nat_real_ips: HashSet<u32, ahash::RandomState>,
    /// Decisions for the later fragments of datagrams (`frag`).
    frags: FragTable,
    generation: Option<u64>,
    /// `parse`'s records for the burst in hand (valid where `refused` is
    /// `None`), written in place by [`parse::parse_into`]. Taken out of the
    /// core while a burst is processed, so that the stages can read each
    /// record by reference while they borrow the core: copying it out
    /// instead costs a store-forwarding stall per frame. Always `Some`
    /// between bursts.
    burst: Option<Box<[Parsed; MAX_BURST]>>,
    /// Why `parse` refused each frame of the burst in hand, if it did.
    refused: [Option<DropReason>; MAX_BURST],
    /// The exception path's rate limit; `None` while it is off (see
    /// [`Core::enable_kernel`]).
    kernel: Option<TokenBucket>,
    /// The rate limit of the ICMP errors this worker sends
    /// (`icmp_error`); [`Core::set_icmp_rate_limit`].
    icmp: TokenBucket,
    /// The next outer IPv4 identification of a VS/TUN packet: a counter
    /// per worker, started at `id << 12` so that workers sending to one
    /// real server rarely reuse each other's recent values (RFC 6864 §4.1
    /// only needs uniqueness for packets that may be fragmented).
    tun_ident: u16,
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
            template_out: Vec::with_capacity(MAX_TEMPLATE_OUT),
            persist_cap: persist::max_templates_for(max_conns),
            sched: SchedSet::default(),
            hops: HopCache::default(),
            local_index: LocalIndex::default(),
            lports: LportPools::new(id, n_workers),
            nat_reals: HashSet::default(),
            nat_real_ips: HashSet::default(),
            frags: FragTable::new(crate::frag::FRAG_TABLE_SLOTS),
            generation: None,
            burst: Some(Box::new([Parsed::EMPTY; MAX_BURST])),
            refused: [None; MAX_BURST],
            kernel: None,
            icmp: TokenBucket::new(icmp_error::DEFAULT_RATE_PPS, icmp_error::DEFAULT_BURST, 0),
            tun_ident: id.wrapping_shl(12),
        }
    }

    /// Sets the rate limit of the ICMP errors this worker sends (time
    /// exceeded, fragmentation needed; RFC 1812 §4.3.2.8): at most `burst`
    /// at once and `rate_pps` per second on average, a [`TokenBucket`] on
    /// the worker's clock starting full at `now_ms`; above it the packet
    /// that caused the error is dropped as `icmp_rate_limited`. Default
    /// 1000 per second, burst 50 (the config's `icmp_rate_limit`).
    pub fn set_icmp_rate_limit(&mut self, rate_pps: u32, burst: u32, now_ms: u64) {
        self.icmp = TokenBucket::new(rate_pps, burst, now_ms);
    }

    /// The ICMP error rate limit's bucket (for inspection).
    pub fn icmp_bucket(&self) -> &TokenBucket {
        &self.icmp
    }

    /// Turns the exception path on: from now on the traffic `local` hands
    /// the kernel gets [`Verdict::Kernel`], at most `burst` packets at once
    /// and `rate_pps` per second on average (a [`TokenBucket`] on the
    /// worker's clock, starting full at `now_ms`); above that it is dropped
    /// as `exception_rate_limited`. Whoever acts on the verdicts must have a
    /// kernel queue for every port ([`crate::worker::Worker::with_kernel`]
    /// calls this). Until then such traffic is dropped (`dip_unserved`,
    /// `icmp_unsupported`, `arp_ignored`).
    pub fn enable_kernel(&mut self, rate_pps: u32, burst: u32, now_ms: u64) {
        self.kernel = Some(TokenBucket::new(rate_pps, burst, now_ms));
    }

    /// The exception path's bucket, if the path is on (for inspection).
    pub fn kernel_bucket(&self) -> Option<&TokenBucket> {
        self.kernel.as_ref()
    }

    /// Adopts `snap` if it is a new generation: carries scheduler state over
    /// or rebuilds it ([`SchedSet::sync`]), sizes the per-real-server
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
        self.sched.sync(snap);
        self.local_index = LocalIndex::build(snap);
        self.nat_reals = snap
            .reals
            .iter()
            .skip(1)
            .filter(|r| matches!(r.method, Method::Nat | Method::FullNat))
            .map(|r| (r.ip, r.port))
            .collect();
        self.nat_real_ips = self.nat_reals.iter().map(|&(ip, _)| ip).collect();
        if snap
            .reals
            .iter()
            .skip(1)
            .any(|r| r.method == Method::FullNat)
        {
            self.conns.enable_fullnat();
        }
        self.lports.sync(snap);
        if self.reals.len() < snap.reals.len() {
            self.reals.resize(snap.reals.len(), RealStats::default());
        }
        for &(port, ip, mac) in &snap.static_neighbours {
            // Control validated these MACs; a full table evicts learnt
            // entries for them (see `NeighTable::set_permanent`).
            let _ = self.neigh.set_permanent(port, ip, mac);
        }
        true
    }

    /// This worker's scheduler state for service index `svc` of the last
    /// snapshot adopted by [`Core::sync`], for inspection (tests, status).
    pub fn scheduler(&self, svc: u16) -> Option<&AnyScheduler> {
        self.sched.get(svc)
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
                route::queue_arp(&mut self.arp_out, snap, port, nh);
            }
        }
    }

    /// Queues an ARP request for `target` on `port` ([`route::queue_arp`]).
    pub fn queue_arp(&mut self, snap: &Snapshot, port: u8, target: u32) {
        route::queue_arp(&mut self.arp_out, snap, port, target);
    }

    /// Runs stage `parse` alone on `frame` as if it arrived on `in_port`:
    /// what prefetching and the later stages will see. Read-only.
    ///
    /// # Errors
    /// `bad_port` for a port the snapshot lacks; otherwise as
    /// [`parse::parse`].
    pub fn parse(&self, snap: &Snapshot, frame: &[u8], in_port: u8) -> Result<Parsed, DropReason> {
        let port = snap
            .ports
            .get(usize::from(in_port))
            .ok_or(DropReason::BadPort)?;
        parse::parse(frame, port, &self.conns)
    }

    /// validate → (frag) → classify → local | shard → conn → route → xmit.
    #[inline]
    fn stages(
        &mut self,
        ctx: &Ctx<'_>,
        whole: &mut Frame<'_>,
        p: &Parsed,
    ) -> Result<Verdict, DropReason> {
        let (snap, redirected) = (ctx.snap, ctx.redirected);
        let frame = whole.bytes_mut();
        if p.kind == parse::L4::Arp {
            return Ok(self.local().arp(ctx, frame, p));
        }
        validate::ipv4(frame, p, ctx.port)?;
        if p.fragment {
            if let Some(v) = self.fragment(ctx, frame, p)? {
                return Ok(v);
            }
        }
        let dir = match classify::classify(p, &self.local_index)? {
            Class::Local(kind) => {
                // An error to a VIP is from the client's side; one to a
                // FullNAT local address from the real servers' side (their
                // packets of a FullNAT flow go to LIP:lport).
                let side = match kind {
                    LocalKind::Vip => Some(ErrorSide::Client),
                    LocalKind::Lip => Some(ErrorSide::Real),
                    _ => None,
                };
                if let (Some(side), parse::L4::Icmp) = (side, p.kind) {
                    if let Some(m) = icmp_relay::match_error(frame, p, side)? {
                        return self.relay_icmp(ctx, whole, p, m, side);
                    }
                }
                validate::source(p, snap, ctx.in_port)?;
                return Ok(self.local().director(ctx, frame, p, kind));
            }
            Class::IcmpError => {
                return match icmp_relay::match_error(frame, p, ErrorSide::Real)? {
                    Some(m) => self.relay_icmp(ctx, whole, p, m, ErrorSide::Real),
                    None => Err(DropReason::NotForUs),
                };
            }
            Class::Vrrp => {
                validate::source(p, snap, ctx.in_port)?;
                return Ok(self.local().vrrp(ctx, frame, p));
            }
            Class::Vip => {
                if let Some(o) = shard::redirect_to(
                    p.key.src_ip,
                    p.key.src_port,
                    self.id,
                    self.n_workers,
                    redirected,
                ) {
                    // Junk for a port without a service stays on this worker.
                    p.proto()
                        .and_then(|proto| snap.service(p.key.dst_ip, p.key.dst_port, proto))
                        .ok_or(DropReason::NoService)?;
                    self.stats.redirects_out += 1;
                    return Ok(Verdict::Redirect(o));
                }
                Dir::In
            }
            Class::Reply => {
                // Only what could be a reply of a connection is ours: the
                // source must be a NAT real server we balance to.
                if !self.may_be_reply(p.key.src_ip, p.key.src_port) {
                    return Err(DropReason::NotForUs);
                }
                if let Some(o) = shard::redirect_to(
                    p.key.dst_ip,
                    p.key.dst_port,
                    self.id,
                    self.n_workers,
                    redirected,
                ) {
                    self.stats.redirects_out += 1;
                    return Ok(Verdict::Redirect(o));
                }
                Dir::Out
            }
        };
        let id = {
            let mut c = self.conn_parts();
            match dir {
                Dir::In => c.inbound(ctx, frame, p),
                Dir::Out => c.outbound(p),
            }
        };
        match id.and_then(|id| self.forward(ctx, whole, p, id, dir)) {
            // NAT routes: a TTL that runs out is answered as a router does
            // (RFC 1812 §5.3.1), rate limited.
            Err(DropReason::TtlExceeded) => self.icmp_errors().time_exceeded(ctx, whole, p),
            v => v,
        }
    }

    /// Whether `ip:port` is a NAT or FullNAT real server of the current snapshot
    /// (retired ones included: a deleted service's connections drain). A port-0
    /// service's real servers answer from any port, so their address alone
    /// qualifies.
    #[inline]
    fn may_be_reply(&self, ip: u32, port: u16) -> bool {
        self.nat_reals.contains(&(ip, port)) || self.nat_reals.contains(&(ip, 0))
    }

    /// The parts sending an ICMP error borrows ([`icmp_error`]), for this
    /// core's stages and for other forwarding methods' (a tunnel's
    /// "fragmentation needed").
    pub fn icmp_errors(&mut self) -> IcmpErrorParts<'_> {
        IcmpErrorParts {
            bucket: &mut self.icmp,
            stats: &mut self.stats,
        }
    }

    fn local(&mut self) -> LocalParts<'_> {
        LocalParts {
            neigh: &mut self.neigh,
            neigh_out: &mut self.neigh_out,
            stats: &mut self.stats,
            kernel: &mut self.kernel,
        }
    }

    /// The parts stage `route` borrows (the next-hop cache, neighbours,
    /// the ARP requests to send).
    fn route(&mut self) -> RouteParts<'_> {
        RouteParts {
            hops: &mut self.hops,
            neigh: &mut self.neigh,
            arp_out: &mut self.arp_out,
        }
    }

    fn conn_parts(&mut self) -> ConnParts<'_> {
        ConnParts {
            conns: &mut self.conns,
            reals: &mut self.reals,
            sched: &mut self.sched,
            templates: &mut self.persist,
            template_out: &mut self.template_out,
            stats: &mut self.stats,
            lports: &mut self.lports,
            worker: self.id,
            n_workers: self.n_workers,
        }
    }

    fn templates(&mut self) -> TemplateParts<'_> {
        TemplateParts {
            table: &mut self.persist,
            out: &mut self.template_out,
            stats: &mut self.stats,
            worker: self.id,
            n_workers: self.n_workers,
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
                    self.templates().share(m, p.timeout_ms);
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

    /// Slow-tick work at `now_ms`: expires at most `budget` connections,
    /// sweeps templates, ages scheduler state and (incrementally) the
    /// neighbour table, queueing re-probes.
    pub fn tick(&mut self, snap: &Snapshot, now_ms: u64, budget: usize) {
        let (reals, lports) = (&mut self.reals, &mut self.lports);
        let n = self.conns.expire(now_ms, budget, |c| {
            account(reals, c.real, Some(c.state.is_active()), None);
            if c.method == Method::FullNat {
                lports.release(c.lip, c.lport);
            }
        });
        self.stats.conns_expired += n as u64;
        self.persist.sweep(now_ms, persist::SWEEP_SLOTS_PER_TICK);
        self.stats.persist_templates = u64::from(self.persist.len());
        self.sched.tick(now_ms);
        let mut probes: [(u8, u32); 16] = [(0, 0); 16];
        let mut n_probes = 0;
        // Incremental: at most DEFAULT_AGE_BUDGET slots per tick; a probe
        // that does not fit is offered again on the next tick.
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
            route::queue_arp(&mut self.arp_out, snap, port, ip);
        }
    }
}
