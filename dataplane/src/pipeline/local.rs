//! Stage `local`: traffic for the director itself.
//!
//! Layer: dataplane pipeline, taken from `classify` for ARP and for
//! packets to a director address that are not VIP TCP/UDP. It answers ARP
//! requests for the director's addresses, learns neighbours, answers ICMP
//! echo, and hands the kernel (the exception path, [`Verdict::Kernel`])
//! what the dataplane does not serve itself: TCP/UDP to a DIP, ICMP to a
//! DIP other than an echo request (echo replies and errors, which the
//! kernel's own ping and UDP sockets need), and ARP replies addressed to a
//! DIP of the arrival port (after learning from them), so the kernel's
//! neighbour resolution works. Nothing to a VIP goes to the kernel, and ARP
//! requests stay answered here. The hand-off is rate limited per worker by
//! a [`TokenBucket`] (`exception_rate_limited` above it); without one (the
//! exception path off) those packets are dropped as before
//! (`dip_unserved`, `icmp_unsupported`, `arp_ignored`). VRRP will be a new
//! arm here.
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

/// A per-worker token bucket over the worker's millisecond clock: at most
/// `burst` packets at once, refilled at `rate_pps` packets per second.
///
/// Kept in thousandths of a token so that one millisecond adds exactly
/// `rate_pps` of them: a refill is one multiply and one `min`, at most once
/// per clock tick, and taking a token is a compare and a subtract (no float,
/// no division). Starts full. A clock that goes backwards refills nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens held, in thousandths.
    milli: u64,
    /// `burst` in thousandths.
    cap_milli: u64,
    /// Thousandths of a token added per millisecond (= packets per second).
    per_ms: u64,
    /// The clock of the last refill, ms.
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `rate_pps` tokens per
    /// second, its clock at `now_ms`. `burst` 0 admits nothing.
    pub fn new(rate_pps: u32, burst: u32, now_ms: u64) -> Self {
        let cap_milli = u64::from(burst) * 1000;
        TokenBucket {
            milli: cap_milli,
            cap_milli,
            per_ms: u64::from(rate_pps),
            last_ms: now_ms,
        }
    }

    /// Takes one token at `now_ms`; `false` (and nothing taken) when the
    /// bucket is empty.
    #[inline]
    pub fn take(&mut self, now_ms: u64) -> bool {
        if now_ms > self.last_ms {
            let add = (now_ms - self.last_ms).saturating_mul(self.per_ms);
            self.milli = self.milli.saturating_add(add).min(self.cap_milli);
            self.last_ms = now_ms;
        }
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }

    /// Whole tokens held now (without a refill).
    pub fn tokens(&self) -> u64 {
        self.milli / 1000
    }
}

/// The parts of a worker the `local` stage borrows.
pub struct LocalParts<'a> {
    /// The neighbour table ARP learns into.
    pub neigh: &'a mut NeighTable,
    /// Learnt neighbours to share with the other workers.
    pub neigh_out: &'a mut Vec<NeighFact>,
    /// Counters (`arp_replies`, `icmp_echo_replies`).
    pub stats: &'a mut WorkerStats,
    /// The exception path's rate limit; `None` when this worker has no
    /// kernel interfaces (the path is off).
    pub kernel: &'a mut Option<TokenBucket>,
}

impl LocalParts<'_> {
    /// ARP (RFC 826) from `ctx.in_port`: learn, and
    /// answer requests for our addresses, in place.
    ///
    /// Returns `Tx(in_port)` with the reply written over the request,
    /// `Kernel(in_port)` for a reply to a DIP of this port when the
    /// exception path is on (after learning from it, as below),
    /// `Consumed` when a reply or announcement updated a neighbour, or a
    /// drop: `arp_malformed`, `arp_bad_sender_mac`, `arp_wrong_subnet`,
    /// `arp_not_for_us`, `arp_ignored`, `exception_rate_limited`.
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
        let target = snap
            .local
            .get(&repr.target_ip)
            .filter(|l| l.arp_ports & (1u64 << (in_port & 63)) != 0);
        let ours = target.is_some();
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
            if learnt {
                self.stats.arp_learned += 1;
            }
            // The kernel asked (its own neighbour resolution over the TAP
            // interface) or may as well know: a reply to our DIP from a
            // neighbour on this port's subnet.
            if self.kernel.is_some()
                && repr.operation == wire::arp::OP_REPLY
                && repr.sender_ip != 0
                && target.is_some_and(|l| l.kind == LocalKind::Dip)
                && !snap.local.contains_key(&repr.sender_ip)
            {
                return self.hand_to_kernel(ctx, DropReason::ArpIgnored);
            }
            return match (learnt, full) {
                (true, _) => Verdict::Consumed,
                (false, true) => Verdict::Drop(DropReason::NeighTableFull),
                (false, false) => Verdict::Drop(DropReason::ArpIgnored),
            };
        }
        match target {
            None => return Verdict::Drop(DropReason::ArpNotForUs),
            Some(l) if l.kind == LocalKind::Standby => {
                return Verdict::Drop(DropReason::ArpVrrpBackup)
            }
            Some(_) => {}
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
    /// (RFC 792); `Kernel(in_port)`, the frame unchanged, for TCP/UDP and
    /// other (checksum-verified) ICMP to a DIP when the exception path is
    /// on; or a drop: `icmp_malformed`, `icmp_bad_checksum`,
    /// `icmp_unsupported` (other ICMP to a VIP, or to a DIP with the path
    /// off), `dip_unserved` (TCP/UDP to a DIP with the path off),
    /// `exception_rate_limited` (above the worker's rate),
    /// `proto_unsupported` (other protocols).
    pub fn director(
        &mut self,
        ctx: &Ctx<'_>,
        frame: &mut [u8],
        p: &Parsed,
        kind: LocalKind,
    ) -> Verdict {
        match p.kind {
            L4::Icmp => match self.icmp_echo(ctx.port, frame, p, ctx.in_port) {
                Verdict::Drop(DropReason::IcmpUnsupported) if kind == LocalKind::Dip => {
                    self.hand_to_kernel(ctx, DropReason::IcmpUnsupported)
                }
                v => v,
            },
            L4::Tcp | L4::Udp if kind == LocalKind::Dip => {
                self.hand_to_kernel(ctx, DropReason::DipUnserved)
            }
            _ => Verdict::Drop(DropReason::ProtoUnsupported),
        }
    }

    /// A VRRP packet (IP protocol 112) to 224.0.0.18 or to a DIP of the
    /// arrival port, after `validate::source`: checked here with the wire
    /// view (TTL 255, RFC 5798 §7.1 / RFC 3768 §7.1; version, type, length,
    /// address count, checksum) so that a malformed advert is a named drop
    /// before it costs the control thread anything, then handed to the
    /// kernel, where the control thread's VRRP socket on the port's TAP
    /// interface reads it (the instance-level checks — VRID, interval,
    /// authentication — are the control side's, per instance).
    ///
    /// Returns `Kernel(in_port)`, or a drop: `vrrp_bad_ttl`,
    /// `vrrp_truncated`, `vrrp_bad_version`, `vrrp_bad_checksum`,
    /// `vrrp_bad_fields`, `exception_rate_limited`, `dip_unserved` (a
    /// worker without the exception path).
    pub fn vrrp(&mut self, ctx: &Ctx<'_>, frame: &[u8], p: &Parsed) -> Verdict {
        if p.ttl != wire::vrrp::TTL {
            return Verdict::Drop(DropReason::VrrpBadTtl);
        }
        let msg = frame
            .get(usize::from(p.l4)..usize::from(p.ip_end))
            .unwrap_or(&[]);
        if let Err(e) = wire::vrrp::parse(msg, p.key.src_ip, p.key.dst_ip) {
            return Verdict::Drop(vrrp_drop(e));
        }
        let v = self.hand_to_kernel(ctx, DropReason::DipUnserved);
        if let Verdict::Kernel(_) = v {
            self.stats.vrrp_to_kernel += 1;
        }
        v
    }

    /// `Kernel(in_port)` if the exception path is on and its bucket has a
    /// token, `exception_rate_limited` if it has none, `off` without the
    /// path.
    #[inline]
    fn hand_to_kernel(&mut self, ctx: &Ctx<'_>, off: DropReason) -> Verdict {
        match self.kernel.as_mut().map(|b| b.take(ctx.now_ms)) {
            None => Verdict::Drop(off),
            Some(true) => Verdict::Kernel(ctx.in_port),
            Some(false) => Verdict::Drop(DropReason::ExceptionRateLimited),
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

/// The drop reason of a VRRP codec error.
fn vrrp_drop(e: wire::vrrp::VrrpError) -> DropReason {
    use wire::vrrp::VrrpError as E;
    match e {
        E::BadTtl => DropReason::VrrpBadTtl,
        E::Truncated | E::BadIpHeader => DropReason::VrrpTruncated,
        E::BadVersion | E::BadType => DropReason::VrrpBadVersion,
        E::BadChecksum => DropReason::VrrpBadChecksum,
        E::BadAddrCount | E::BadInterval => DropReason::VrrpBadFields,
    }
}

#[cfg(test)]
mod tests {
    use super::TokenBucket;

    #[test]
    fn test_token_bucket_burst_then_rate() {
        let mut b = TokenBucket::new(1000, 5, 10);
        assert_eq!((0..8).filter(|_| b.take(10)).count(), 5, "burst at once");
        // 1000 pps = one token per ms.
        assert!(b.take(11));
        assert!(!b.take(11));
        // A long pause refills only up to the burst.
        assert_eq!((0..9).filter(|_| b.take(10_000)).count(), 5);
        // A clock that goes backwards adds nothing.
        assert!(!b.take(5));
        // 1500 pps: 3 tokens every 2 ms, no rounding lost.
        let mut c = TokenBucket::new(1500, 100, 0);
        while c.take(0) {}
        let got: usize = (1..=20)
            .map(|t| (0..10).filter(|_| c.take(t)).count())
            .sum();
        assert_eq!(got, 30);
        assert!(
            !TokenBucket::new(10, 0, 0).take(1000),
            "burst 0 admits nothing"
        );
    }
}
