//! Stage `local`: traffic for the director itself.
//!
//! Layer: dataplane pipeline, taken from `classify` for ARP and for
//! packets to a director address that are not VIP TCP/UDP. Today it
//! answers ARP requests for the director's addresses, learns neighbours,
//! and answers ICMP echo; the exception path to the kernel and VRRP will
//! be added here as new arms, not as branches elsewhere.
//!
//! ARP is where a spoofer on the client segment attacks a director, so it
//! learns only what it can trust (RFC 826's merge rule, narrowed):
//! - a sender is learnt only on the port whose connected subnet holds its
//!   address, into that port's entries: a claim for a real server's
//!   address arriving from the client side is `arp_wrong_subnet`;
//! - a multicast, broadcast or zero sender MAC is `arp_bad_sender_mac`;
//! - a new neighbour is added only from a packet for one of our addresses;
//!   a known one is updated by any ARP it sends on its own port;
//! - a reply or announcement that teaches nothing is `arp_ignored`, so
//!   every ARP packet is counted.

use crate::neigh::{Learn, NeighTable, Refusal};
use crate::snapshot::{LocalKind, PortConf};
use crate::stats::{DropReason, WorkerStats};
use crate::wire::{self, checksum, ArpPacket, ArpRepr, EthernetFrame, Icmpv4Packet, Ipv4Packet};
use crate::xmit;

use super::parse::{is_multicast_mac, Parsed, L4};
use super::{Ctx, NeighFact, Verdict, MAX_NEIGH_OUT};

/// The parts of a worker the `local` stage borrows.
pub struct LocalParts<'a> {
    /// The neighbour table ARP learns into.
    pub neigh: &'a mut NeighTable,
    /// Learnt neighbours to share with the other workers.
    pub neigh_out: &'a mut Vec<NeighFact>,
    /// Counters (`arp_replies`, `icmp_echo_replies`).
    pub stats: &'a mut WorkerStats,
}

impl LocalParts<'_> {
    /// ARP (RFC 826) from `ctx.in_port`: learn, and
    /// answer requests for our addresses, in place.
    ///
    /// Returns `Tx(in_port)` with the reply written over the request,
    /// `Consumed` when a reply or announcement updated a neighbour, or a
    /// drop: `arp_malformed`, `arp_bad_sender_mac`, `arp_wrong_subnet`,
    /// `arp_not_for_us`, `arp_ignored`.
    pub fn arp(&mut self, ctx: &Ctx<'_>, frame: &mut [u8], p: &Parsed) -> Verdict {
        let (snap, port, in_port, now_ms) = (ctx.snap, ctx.port, ctx.in_port, ctx.now_ms);
        let l3 = usize::from(p.l3);
        let Some(body) = frame.get(l3..) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        let Ok(pkt) = ArpPacket::new_checked(body) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        let Ok(repr) = ArpRepr::parse(&pkt) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        if is_multicast_mac(&repr.sender_mac) || repr.sender_mac == [0; 6] {
            return Verdict::Drop(DropReason::ArpBadSenderMac);
        }
        // 0.0.0.0 is an ARP probe (RFC 5227 §2.1.1): answered, never learnt.
        if repr.sender_ip != 0 && !port.on_link(repr.sender_ip) {
            return Verdict::Drop(DropReason::ArpWrongSubnet);
        }
        let ours = snap
            .local
            .get(&repr.target_ip)
            .is_some_and(|l| l.arp_ports & (1u64 << (in_port & 63)) != 0);
        let mut learnt = false;
        let mut full = false;
        if repr.sender_ip != 0
            && !snap.local.contains_key(&repr.sender_ip)
            && (ours || self.neigh.knows(in_port, repr.sender_ip))
        {
            match self
                .neigh
                .learn(in_port, repr.sender_ip, repr.sender_mac, now_ms)
            {
                l if l.is_news() => {
                    learnt = true;
                    if self.neigh_out.len() < MAX_NEIGH_OUT {
                        self.neigh_out.push(NeighFact {
                            ip: repr.sender_ip,
                            mac: repr.sender_mac,
                            port: in_port,
                        });
                    }
                }
                // A confirmation of what we knew refreshes the entry.
                Learn::Unchanged => learnt = true,
                Learn::Refused(Refusal::TableFull | Refusal::PendingFull) => full = true,
                _ => {}
            }
        }
        if repr.operation != wire::arp::OP_REQUEST {
            return match (learnt, full) {
                (true, _) => {
                    self.stats.arp_learned += 1;
                    Verdict::Consumed
                }
                (false, true) => Verdict::Drop(DropReason::NeighTableFull),
                (false, false) => Verdict::Drop(DropReason::ArpIgnored),
            };
        }
        if !ours {
            return Verdict::Drop(DropReason::ArpNotForUs);
        }
        let reply = ArpRepr {
            operation: wire::arp::OP_REPLY,
            sender_mac: port.mac,
            sender_ip: repr.target_ip,
            target_mac: repr.sender_mac,
            target_ip: repr.sender_ip,
        };
        let Some(body) = frame.get_mut(l3..) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        reply.emit(&mut ArpPacket::new_unchecked(body));
        xmit::set_macs(frame, port.mac, repr.sender_mac);
        self.stats.arp_replies += 1;
        Verdict::Tx(in_port)
    }

    /// An IPv4 packet to a director address of `kind`, from `ctx.in_port`,
    /// after `validate::source`.
    ///
    /// Returns `Tx(in_port)` for an ICMP echo request, answered in place
    /// (RFC 792), or a drop: `icmp_malformed`, `icmp_bad_checksum`,
    /// `icmp_unsupported` (other ICMP), `dip_unserved` (TCP/UDP to a DIP:
    /// no exception path yet), `proto_unsupported` (other protocols).
    pub fn director(
        &mut self,
        ctx: &Ctx<'_>,
        frame: &mut [u8],
        p: &Parsed,
        kind: LocalKind,
    ) -> Verdict {
        match p.kind {
            L4::Icmp => self.icmp_echo(ctx.port, frame, p, ctx.in_port),
            L4::Tcp | L4::Udp if kind == LocalKind::Dip => Verdict::Drop(DropReason::DipUnserved),
            _ => Verdict::Drop(DropReason::ProtoUnsupported),
        }
    }

    fn icmp_echo(&mut self, port: &PortConf, frame: &mut [u8], p: &Parsed, in_port: u8) -> Verdict {
        let (l3, l4, end) = (usize::from(p.l3), usize::from(p.l4), usize::from(p.ip_end));
        let Some(body) = frame.get(l4..end) else {
            return Verdict::Drop(DropReason::IcmpMalformed);
        };
        {
            let Ok(icmp) = Icmpv4Packet::new_checked(body) else {
                return Verdict::Drop(DropReason::IcmpMalformed);
            };
            if !icmp.verify_checksum() {
                return Verdict::Drop(DropReason::IcmpBadChecksum);
            }
            if icmp.msg_type() != wire::icmp::TYPE_ECHO_REQUEST || icmp.msg_code() != 0 {
                return Verdict::Drop(DropReason::IcmpUnsupported);
            }
        }
        {
            let mut icmp = Icmpv4Packet::new_unchecked(&mut frame[l4..end]);
            let c = checksum::update_u16(
                icmp.checksum(),
                u16::from(wire::icmp::TYPE_ECHO_REQUEST) << 8,
                u16::from(wire::icmp::TYPE_ECHO_REPLY) << 8,
            );
            icmp.set_msg_type(wire::icmp::TYPE_ECHO_REPLY);
            icmp.set_checksum(c);
        }
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..end]);
            let (s, d) = (ip.src_addr(), ip.dst_addr());
            // Swapping the addresses leaves the header sum unchanged; the new
            // TTL is fixed incrementally.
            ip.set_src_addr(d);
            ip.set_dst_addr(s);
            ip.rewrite_ttl(64);
        }
        let peer = EthernetFrame::new_unchecked(&*frame).src_addr();
        xmit::set_macs(frame, port.mac, peer);
        self.stats.icmp_echo_replies += 1;
        Verdict::Tx(in_port)
    }
}
