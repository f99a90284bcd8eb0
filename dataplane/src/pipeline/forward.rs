//! Stage `forward` (after `conn`): the connection's state update, the
//! next hop (`route`), the egress MTU with what the method adds, and the
//! forwarding method's rewrite (`crate::xmit`), with the real server's
//! counters; and the outer header inputs of a VS/TUN packet.
//!
//! Layer: dataplane pipeline, per worker. fulcrum does not fragment: a
//! packet that would exceed the egress port's `mtu` once rewritten gets
//! "fragmentation needed" (DF set, RFC 1191) or is a named drop.

use crate::conn::{Conn, ConnId, Dir, FlowKey};
use crate::frame::Frame;
use crate::snapshot::{Method, Snapshot, TunType};
use crate::stats::DropReason;
use crate::xmit;

use super::icmp_error;
use super::parse::Parsed;
use super::route;
use super::{Core, Ctx, Verdict};

impl Core {
    /// Forwards a packet of connection `id` travelling in direction `dir`:
    /// state update, next hop, the forwarding method's rewrite.
    #[inline]
    pub(super) fn forward(
        &mut self,
        ctx: &Ctx<'_>,
        frame: &mut Frame<'_>,
        p: &Parsed,
        id: ConnId,
        dir: Dir,
    ) -> Result<Verdict, DropReason> {
        let (snap, now_ms) = (ctx.snap, ctx.now_ms);
        let conn = self.conn_parts().advance(snap, id, p, dir, now_ms)?;
        let towards = match dir {
            Dir::In => conn.rip,
            Dir::Out => conn.cip,
        };
        let hop = self.route().next_hop(snap, towards, now_ms)?;
        let mtu = route::egress_mtu(snap, hop.port);
        let outer = match conn.method {
            Method::Tun => Some(self.tun_outer(snap, &conn, hop.port, &p.key)),
            _ => None,
        };
        // What the method adds must fit the egress MTU too: a tunnel's
        // outer headers, FullNAT's PROXY v2 header or TOA option.
        let overhead = match (&outer, conn.method, dir) {
            (Some(o), _, _) => xmit::tun::overhead(o.conf.kind),
            (None, Method::FullNat, Dir::In) => xmit::fullnat::inbound_growth(
                frame,
                usize::from(p.l3),
                usize::from(p.ip_end),
                &conn,
            ),
            _ => 0,
        };
        if p.ip_len() + overhead > usize::from(mtu) {
            // fulcrum does not fragment: DF asks for path-MTU discovery's
            // answer (RFC 1191) with the MTU the sender may use inside the
            // tunnel (or before the director's additions), anything else is
            // dropped.
            if icmp_error::dont_fragment(frame.bytes(), p) {
                let room = usize::from(mtu).saturating_sub(overhead) as u16;
                return self.icmp_errors().frag_needed(ctx, frame, p, room);
            }
            return Err(match conn.method {
                // IPVS would fragment the outer packet.
                Method::Tun => DropReason::TunNeedsFragmentation,
                _ => DropReason::MtuExceeded,
            });
        }
        if p.fragment && overhead > 0 {
            // The method grows the first fragment (outer header, PROXY v2,
            // TOA): the later ones could not follow by `frag::apply`.
            return Err(DropReason::FragEncap);
        }
        let sent = xmit::transmit(
            frame,
            usize::from(p.l3),
            usize::from(p.ip_end),
            &conn,
            dir,
            &hop,
            outer.as_ref(),
        )?;
        match sent {
            xmit::fullnat::Sent::Plain => {}
            xmit::fullnat::Sent::Proxy => self.stats.fullnat_proxy_sent += 1,
            xmit::fullnat::Sent::Toa => self.stats.fullnat_toa_sent += 1,
            xmit::fullnat::Sent::ToaNoSpace => self.stats.fullnat_toa_no_space += 1,
        }
        if p.fragment {
            // A first fragment: its rewrite is what the later ones get.
            self.frag_record(frame.bytes(), p, Verdict::Tx(hop.port), now_ms)?;
        }
        if let Some(s) = self.reals.get_mut(conn.real as usize) {
            let len = p.ip_len() as u64;
            match dir {
                Dir::In => {
                    s.in_pkts += 1;
                    s.in_bytes += len;
                }
                Dir::Out => {
                    s.out_pkts += 1;
                    s.out_bytes += len;
                }
            }
        }
        Ok(Verdict::Tx(hop.port))
    }

    /// The outer header inputs of a VS/TUN packet of connection `conn`
    /// leaving by port `out_port`, whose flow (as it arrived) is `key`: the
    /// real server's tunnel parameters, the outer source (the service's
    /// `tun_src`, else the egress port's DIP on the RIP's subnet, else its
    /// first DIP), the next identification and GUE's source port.
    #[inline]
    pub(super) fn tun_outer(
        &mut self,
        snap: &Snapshot,
        conn: &Conn,
        out_port: u8,
        key: &FlowKey,
    ) -> xmit::tun::Outer {
        let rip = conn.rip;
        let conf = snap
            .reals
            .get(conn.real as usize)
            .map(|r| r.tun)
            .unwrap_or_default();
        let src = if conf.src != 0 {
            conf.src
        } else {
            let addrs = snap
                .ports
                .get(usize::from(out_port))
                .map_or(&[][..], |p| &p.addrs[..]);
            addrs
                .iter()
                .find(|(_, net)| net.contains(rip))
                .or_else(|| addrs.first())
                .map_or(0, |&(a, _)| a)
        };
        let ident = self.tun_ident;
        self.tun_ident = ident.wrapping_add(1);
        xmit::tun::Outer {
            conf,
            src,
            dst: rip,
            ident,
            sport: match conf.kind {
                TunType::Gue => xmit::tun::gue_src_port(key),
                TunType::Ipip => 0,
            },
        }
    }
}
