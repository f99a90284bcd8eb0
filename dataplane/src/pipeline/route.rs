//! Stage `route`: the next hop of a packet leaving the director.
//!
//! Layer: dataplane pipeline, after `conn` and before the MACs are written.
//! The output port, its MAC and the next hop's MAC come from a small
//! direct-mapped per-worker cache of earlier answers, valid while the
//! snapshot generation and the neighbour table's version are unchanged;
//! a miss takes the full path (the snapshot's routes, longest prefix
//! first, then the neighbour table of that port). A neighbour miss queues
//! one ARP request and drops the packet as `neigh_unresolved`; TCP's
//! retransmission recovers once the reply is in.

use crate::neigh::{Lookup, NeighTable};
use crate::snapshot::{Snapshot, DEFAULT_MTU};
use crate::stats::DropReason;

use crate::wire::{self, ArpPacket, ArpRepr, EthernetFrame, ETHERTYPE_ARP};

use super::ArpRequest;

/// Most ARP requests a worker queues between two drains of its loop.
pub const MAX_ARP_OUT: usize = 64;

/// log2 of the next-hop cache's slots (64 × 32 bytes).
const HOP_CACHE_BITS: u32 = 6;

/// Where a packet leaves: port index, that port's MAC and the next hop's
/// MAC (both wire order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Output port index.
    pub port: u8,
    /// The output port's MAC: the frame's new source.
    pub src_mac: [u8; 6],
    /// The next hop's MAC: the frame's new destination.
    pub dst_mac: [u8; 6],
}

/// One cached answer and what it was valid for.
#[derive(Clone, Copy, Debug)]
struct Hop {
    valid: bool,
    /// Destination the answer is for, host order.
    dst: u32,
    hop: NextHop,
    /// `NeighTable::version` when it was resolved.
    neigh_version: u64,
    /// `Snapshot::generation` it was routed with.
    generation: u64,
}

impl Hop {
    const EMPTY: Hop = Hop {
        valid: false,
        dst: 0,
        hop: NextHop {
            port: 0,
            src_mac: [0; 6],
            dst_mac: [0; 6],
        },
        neigh_version: 0,
        generation: 0,
    };
}

/// A worker's next-hop cache (64 slots, 2 KiB, allocated once).
pub struct HopCache {
    slots: Box<[Hop; 1 << HOP_CACHE_BITS]>,
}

impl Default for HopCache {
    fn default() -> Self {
        HopCache {
            slots: Box::new([Hop::EMPTY; 1 << HOP_CACHE_BITS]),
        }
    }
}

/// The parts of a worker the `route` stage borrows.
pub struct RouteParts<'a> {
    /// The next-hop cache.
    pub hops: &'a mut HopCache,
    /// The neighbour table.
    pub neigh: &'a mut NeighTable,
    /// Where ARP requests for unresolved next hops are queued.
    pub arp_out: &'a mut Vec<ArpRequest>,
}

impl RouteParts<'_> {
    /// The next hop for a packet to `dst` (host order) at `now_ms`.
    ///
    /// # Errors
    /// `no_route` when no route covers `dst`; `neigh_unresolved` when the
    /// next hop's MAC is unknown (an ARP request is queued at most once per
    /// `neigh::RETRY_MS`); `neigh_table_full` when it cannot even be queued
    /// for resolution (pending or table bound reached); `bad_port` when a route names a port the
    /// snapshot lacks (control never publishes one).
    #[inline]
    pub fn next_hop(
        &mut self,
        snap: &Snapshot,
        dst: u32,
        now_ms: u64,
    ) -> Result<NextHop, DropReason> {
        let slot = (dst.wrapping_mul(0x9e37_79b1) >> (32 - HOP_CACHE_BITS)) as usize;
        let version = self.neigh.version();
        if let Some(h) = self.hops.slots.get(slot) {
            if h.valid
                && h.dst == dst
                && h.neigh_version == version
                && h.generation == snap.generation
            {
                return Ok(h.hop);
            }
        }
        let (out_port, nh) = snap.route(dst).ok_or(DropReason::NoRoute)?;
        let port = snap
            .ports
            .get(usize::from(out_port))
            .ok_or(DropReason::BadPort)?;
        let dst_mac = match self.neigh.lookup(out_port, nh, now_ms) {
            Lookup::Hit(mac) => mac,
            Lookup::SendRequest => {
                queue_arp(self.arp_out, snap, out_port, nh);
                return Err(DropReason::NeighUnresolved);
            }
            Lookup::Pending => return Err(DropReason::NeighUnresolved),
            Lookup::Refused(_) => return Err(DropReason::NeighTableFull),
        };
        let hop = NextHop {
            port: out_port,
            src_mac: port.mac,
            dst_mac,
        };
        if let Some(h) = self.hops.slots.get_mut(slot) {
            *h = Hop {
                valid: true,
                dst,
                hop,
                neigh_version: self.neigh.version(),
                generation: snap.generation,
            };
        }
        Ok(hop)
    }
}

/// The MTU of egress port `port` in bytes (its IPv4 datagrams, the
/// Ethernet header not counted): the port's configured `mtu`, else
/// [`DEFAULT_MTU`] (1500) for a port the snapshot lacks.
#[inline]
pub fn egress_mtu(snap: &Snapshot, port: u8) -> u16 {
    snap.ports
        .get(usize::from(port))
        .map_or(DEFAULT_MTU, |p| p.mtu)
}

/// Queues an ARP request for `target` (host order) on `port`, from the
/// port address on the target's subnet (or the port's first address); at
/// most [`MAX_ARP_OUT`] wait at once, more are not queued (the next miss
/// asks again).
pub fn queue_arp(arp_out: &mut Vec<ArpRequest>, snap: &Snapshot, port: u8, target: u32) {
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
        if arp_out.len() < MAX_ARP_OUT {
            arp_out.push(ArpRequest {
                port,
                sender_ip,
                target_ip: target,
            });
        }
    }
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
