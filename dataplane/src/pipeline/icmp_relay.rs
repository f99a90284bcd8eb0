//! Stage `icmp_relay`: ICMP errors about balanced flows, to the other end.
//!
//! Layer: dataplane pipeline, entered from `classify` for ICMP to a VIP
//! (the client's side), ICMP to a FullNAT local address (the real servers'
//! side of a FullNAT flow) and ICMP to an address that is not the
//! director's (the real servers' side of a NAT flow, on its way to a
//! client). As IPVS's `ip_vs_in_icmp` and `ip_vs_out_icmp` (and DPVS's
//! `__dp_vs_in_icmp4` / `__dp_vs_xmit_icmp4` for FullNAT), an error
//! (destination unreachable including "fragmentation needed", time
//! exceeded, parameter problem) is matched by the TCP/UDP tuple it quotes,
//! reversed, against the connection table, so an error from a router in
//! between (outer source neither client nor real server) works as well as
//! one from the end host:
//!
//! | arrives from | quote | key looked up | sent to | rewrite (NAT) |
//! |---|---|---|---|---|
//! | client side, to the VIP | VIP:vport → CIP:cport | CIP:cport → VIP:vport (inbound) | the real server | outer dst VIP → RIP; quoted src VIP:vport → RIP:rport |
//! | real servers' side, to the CIP | CIP:cport → RIP:rport | RIP:rport → CIP:cport (outbound) | the client | outer src → VIP; quoted dst RIP:rport → VIP:vport |
//!
//! FullNAT rewrites both ends, as its packets do (the real server knows
//! only LIP:lport, the client only VIP:vport):
//!
//! | arrives from | quote | key looked up | sent to | rewrite (FullNAT) |
//! |---|---|---|---|---|
//! | client side, to the VIP | VIP:vport → CIP:cport | CIP:cport → VIP:vport (inbound) | the real server | outer src → LIP, dst VIP → RIP; quoted VIP:vport → RIP:rport, CIP:cport → LIP:lport |
//! | real servers' side, to the LIP | LIP:lport → RIP:rport | RIP:rport → LIP:lport (outbound) | the client | outer src → VIP, dst LIP → CIP; quoted LIP:lport → CIP:cport, RIP:rport → VIP:vport |
//!
//! With `client_address: "proxy_v2"` the quoted client segment's sequence
//! number is in the real server's space (shifted by the 28-byte header) and
//! is moved back to the client's ([`fullnat::unshift`]); a quoted real
//! server segment's sequence number is the real server's own and needs
//! nothing. A quoted acknowledgment (beyond RFC 792's 8 bytes) is left as
//! it is: neither end's stack reads it (Linux's `tcp_v4_err` checks the
//! sequence number only).
//!
//! DR and TUN relay only the first row, at L2, untouched (the real server
//! holds the VIP, so the quote is already its own packet). NAT and FullNAT
//! decrement the outer TTL (they route); a relayed error whose TTL would
//! reach 0 is dropped as `ttl_exceeded` (never an error about an error).
//! The rewrites keep the outer IPv4, the ICMP, the quoted IPv4 and the
//! quoted TCP/UDP checksums right with RFC 1624 updates. The error goes to
//! the flow's owner worker (shard on the quote's client end, or on
//! LIP:lport for FullNAT's real servers' side, as its replies). The
//! connection's state and timer are not touched (IPVS neither).
//!
//! Refuses, each a named drop: `icmp_malformed` (shorter than an ICMP
//! header), `icmp_quote_truncated`, `icmp_quote_malformed`,
//! `icmp_bad_checksum`, `icmp_error_about_error`, `icmp_quote_mismatch`
//! (quoted source ≠ outer destination), `icmp_error_no_conn`. ICMP that is
//! not an error is not this stage's: the caller goes on as before (echo to
//! a VIP or LIP is answered by `local`, anything else to another host is
//! `not_for_us`).

use crate::conn::{Conn, Dir, FlowKey};
use crate::frame::Frame;
use crate::snapshot::{ClientAddress, Method};
use crate::stats::DropReason;
use crate::wire::icmp_quote::{self, IcmpQuote, QuoteSide};
use crate::wire::{self, Ipv4Packet, ICMP_HEADER_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::xmit::{self, fullnat};

use super::parse::Parsed;
use super::route;
use super::shard;
use super::{Core, Ctx, Verdict};

/// Where an ICMP error came from, as `classify` saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSide {
    /// Addressed to a VIP: about a packet the director (NAT) or a DR real
    /// server sent to a client.
    Client,
    /// Addressed to another host, through the director (about a packet the
    /// director sent to a NAT real server, on its way to that client), or
    /// to a FullNAT local address (about a packet the director sent from
    /// LIP:lport to a FullNAT real server).
    Real,
}

/// What a relayed error is about: the connection key to look up, the
/// direction that key must have, and the client end (for the owner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorMatch {
    /// The quoted tuple reversed: a connection's inbound key for
    /// [`ErrorSide::Client`], its outbound key for [`ErrorSide::Real`].
    pub key: FlowKey,
    /// The direction `key` must have in the connection table.
    pub dir: Dir,
    /// The address and port (host order) whose owner worker holds the
    /// connection: the client's, or for an error to a FullNAT local
    /// address LIP:lport (FullNAT books only lports its worker owns).
    pub client: (u32, u16),
}

/// Reads the ICMP message of `p` (already parsed as ICMP) and decides
/// whether it is an error about a balanced flow's packet.
///
/// Returns `Ok(None)` for ICMP that is not an error (type other than 3,
/// 11, 12): not this stage's.
///
/// # Errors
/// In this order: `icmp_malformed`, `icmp_quote_truncated`,
/// `icmp_quote_malformed`, `icmp_bad_checksum`, `icmp_error_about_error`,
/// `icmp_error_no_conn` (the quote is not TCP/UDP with its ports),
/// `icmp_quote_mismatch`.
pub fn match_error(
    frame: &[u8],
    p: &Parsed,
    side: ErrorSide,
) -> Result<Option<ErrorMatch>, DropReason> {
    let msg = frame
        .get(usize::from(p.l4)..usize::from(p.ip_end))
        .unwrap_or(&[]);
    if msg.len() < ICMP_HEADER_LEN {
        return Err(DropReason::IcmpMalformed);
    }
    if !icmp_quote::is_error_type(msg[0]) {
        return Ok(None);
    }
    let q = match IcmpQuote::new_checked(msg) {
        Ok(q) => q,
        Err(wire::Error::Truncated) => return Err(DropReason::IcmpQuoteTruncated),
        Err(_) => return Err(DropReason::IcmpQuoteMalformed),
    };
    if !q.verify_checksum() {
        return Err(DropReason::IcmpBadChecksum);
    }
    let proto = q.inner_protocol();
    if proto == PROTO_ICMP && icmp_quote::is_error_type(q.inner_l4_first_byte()) {
        return Err(DropReason::IcmpErrorAboutError);
    }
    if (proto != PROTO_TCP && proto != PROTO_UDP) || q.inner_frag_offset() != 0 {
        return Err(DropReason::IcmpErrorNoConn);
    }
    // An error goes to the source of the datagram it quotes (RFC 792).
    if q.inner_src_addr() != p.key.dst_ip {
        return Err(DropReason::IcmpQuoteMismatch);
    }
    let key = FlowKey {
        src_ip: q.inner_dst_addr(),
        dst_ip: q.inner_src_addr(),
        src_port: q.inner_dst_port(),
        dst_port: q.inner_src_port(),
        proto,
    };
    Ok(Some(match side {
        ErrorSide::Client => ErrorMatch {
            key,
            dir: Dir::In,
            client: (key.src_ip, key.src_port),
        },
        ErrorSide::Real => ErrorMatch {
            key,
            dir: Dir::Out,
            client: (key.dst_ip, key.dst_port),
        },
    }))
}

/// Rewrites the error `p` in `frame` for connection `conn`, found by
/// [`match_error`] from `side` (see the module tables). `frame[l3..ip_end]`
/// was checked by [`match_error`]. NAT and FullNAT: the outer TTL is
/// decremented (the caller checked it is above 1), the outer addresses and
/// the quote are rewritten with their checksums. DR and TUN: the IP packet
/// is left as it is. The Ethernet header is the caller's.
pub fn rewrite(frame: &mut [u8], p: &Parsed, conn: &Conn, side: ErrorSide) {
    if !matches!(conn.method, Method::Nat | Method::FullNat) {
        return;
    }
    let fnat = conn.method == Method::FullNat;
    let (l3, l4, end) = (usize::from(p.l3), usize::from(p.l4), usize::from(p.ip_end));
    let Some(ip) = frame.get_mut(l3..end) else {
        return;
    };
    {
        let mut outer = Ipv4Packet::new_unchecked(&mut *ip);
        let ttl = outer.ttl();
        outer.rewrite_ttl(ttl.saturating_sub(1));
        // ICMP has no pseudo-header: the outer addresses touch only the
        // IPv4 header checksum.
        match side {
            ErrorSide::Client => {
                outer.rewrite_dst_addr(conn.rip);
                if fnat {
                    // The real server may have no route to the client's
                    // side: the error comes from the connection's LIP.
                    outer.rewrite_src_addr(conn.lip);
                }
            }
            ErrorSide::Real => {
                outer.rewrite_src_addr(conn.vip);
                if fnat {
                    outer.rewrite_dst_addr(conn.cip);
                }
            }
        };
    }
    let Some(msg) = frame.get_mut(l4..end) else {
        return;
    };
    let Ok(mut q) = IcmpQuote::new_checked(msg) else {
        return;
    };
    match side {
        ErrorSide::Client => {
            q.rewrite_inner(QuoteSide::Src, conn.rip, conn.rport);
            if fnat {
                q.rewrite_inner(QuoteSide::Dst, conn.lip, conn.lport);
            }
        }
        ErrorSide::Real => {
            q.rewrite_inner(QuoteSide::Dst, conn.vip, conn.vport);
            if fnat {
                q.rewrite_inner(QuoteSide::Src, conn.cip, conn.cport);
                if conn.client_address == ClientAddress::ProxyV2 {
                    let seq = q.inner_tcp_seq();
                    q.set_inner_tcp_seq(fullnat::unshift(seq, conn.isn1));
                }
            }
        }
    }
}

impl Core {
    /// Stage `icmp_relay` after [`icmp_relay::match_error`] found that the
    /// ICMP error `p` from `side` is about the flow `m`: hands it to the
    /// flow's owner, finds the connection, and sends the error on to the
    /// real server (client side) or the client (real servers' side).
    ///
    /// An error for a VS/TUN flow from the client's side goes through the
    /// flow's tunnel, as IPVS's `ip_vs_in_icmp` sends it with the
    /// connection's `packet_xmit`: the real server may be on no link of
    /// the director's.
    ///
    /// # Errors
    /// `icmp_error_no_conn`, `ttl_exceeded` (a routing method: NAT, TUN,
    /// FullNAT; outer TTL ≤ 1), the route drops; through a tunnel
    /// `mtu_exceeded` (no error is sent about an error, RFC 1812 §4.3.2.7)
    /// and those of [`xmit::tun::encapsulate`].
    #[cold]
    pub(super) fn relay_icmp(
        &mut self,
        ctx: &Ctx<'_>,
        whole: &mut Frame<'_>,
        p: &Parsed,
        m: ErrorMatch,
        side: ErrorSide,
    ) -> Result<Verdict, DropReason> {
        if let Some(o) = shard::redirect_to(
            m.client.0,
            m.client.1,
            self.id,
            self.n_workers,
            ctx.redirected,
        ) {
            self.stats.redirects_out += 1;
            return Ok(Verdict::Redirect(o));
        }
        let conn = match self.conns.lookup(&m.key) {
            Some((id, dir)) if dir == m.dir => {
                self.conns.get(id).ok_or(DropReason::IcmpErrorNoConn)?
            }
            _ => return Err(DropReason::IcmpErrorNoConn),
        };
        xmit::may_forward(conn.method, p.ttl)?;
        let towards = match side {
            ErrorSide::Client => conn.rip,
            ErrorSide::Real => conn.cip,
        };
        let hop = self.route().next_hop(ctx.snap, towards, ctx.now_ms)?;
        if conn.method == Method::Tun && side == ErrorSide::Client {
            // The tunnel's source port hashes the flow (m.key, the
            // connection's inbound key), so GUE spreads it with its flow.
            let outer = self.tun_outer(ctx.snap, &conn, hop.port, &m.key);
            let mtu = route::egress_mtu(ctx.snap, hop.port);
            if p.ip_len() + xmit::tun::overhead(outer.conf.kind) > usize::from(mtu) {
                return Err(DropReason::MtuExceeded);
            }
            xmit::tun::encapsulate(whole, usize::from(p.l3), usize::from(p.ip_end), &outer)?;
        } else {
            rewrite(whole.bytes_mut(), p, &conn, side);
        }
        xmit::set_macs(whole.bytes_mut(), hop.src_mac, hop.dst_mac);
        match side {
            ErrorSide::Client => self.stats.icmp_errors_in += 1,
            ErrorSide::Real => self.stats.icmp_errors_out += 1,
        }
        Ok(Verdict::Tx(hop.port))
    }
}
