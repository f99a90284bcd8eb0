//! Stage `icmp_relay`: ICMP errors about balanced flows, to the other end.
//!
//! Layer: dataplane pipeline, entered from `classify` for ICMP to a VIP
//! (the client's side) and ICMP to an address that is not the director's
//! (the real servers' side, on its way to a client). As IPVS's
//! `ip_vs_in_icmp` and `ip_vs_out_icmp`, an error (destination unreachable
//! including "fragmentation needed", time exceeded, parameter problem) is
//! matched by the TCP/UDP tuple it quotes, reversed, against the
//! connection table, so an error from a router in between (outer source
//! neither client nor real server) works as well as one from the end host:
//!
//! | arrives from | quote | key looked up | sent to | rewrite (NAT) |
//! |---|---|---|---|---|
//! | client side, to the VIP | VIP:vport → CIP:cport | CIP:cport → VIP:vport (inbound) | the real server | outer dst VIP → RIP; quoted src VIP:vport → RIP:rport |
//! | real servers' side, to the CIP | CIP:cport → RIP:rport | RIP:rport → CIP:cport (outbound) | the client | outer src → VIP; quoted dst RIP:rport → VIP:vport |
//!
//! DR relays only the first row, at L2, untouched (the real server holds
//! the VIP, so the quote is already its own packet). NAT decrements the
//! outer TTL (it routes); a relayed error whose TTL would reach 0 is
//! dropped as `ttl_exceeded` (never an error about an error). The rewrites
//! keep the outer IPv4, the ICMP, the quoted IPv4 and the quoted TCP/UDP
//! checksums right with RFC 1624 updates. The error goes to the flow's
//! owner worker (shard on the quote's client end). The connection's state
//! and timer are not touched (IPVS neither).
//!
//! Refuses, each a named drop: `icmp_malformed` (shorter than an ICMP
//! header), `icmp_quote_truncated`, `icmp_quote_malformed`,
//! `icmp_bad_checksum`, `icmp_error_about_error`, `icmp_quote_mismatch`
//! (quoted source ≠ outer destination), `icmp_error_no_conn`. ICMP that is
//! not an error is not this stage's: the caller goes on as before (echo to
//! a VIP is answered by `local`, anything else to another host is
//! `not_for_us`).

use crate::conn::{Conn, Dir, FlowKey};
use crate::snapshot::Method;
use crate::stats::DropReason;
use crate::wire::icmp_quote::{self, IcmpQuote, QuoteSide};
use crate::wire::{self, Ipv4Packet, ICMP_HEADER_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

use super::parse::Parsed;

/// Where an ICMP error came from, as `classify` saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSide {
    /// Addressed to a VIP: about a packet the director (NAT) or a DR real
    /// server sent to a client.
    Client,
    /// Addressed to another host, through the director: about a packet the
    /// director sent to a NAT real server, on its way to that client.
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
    /// The client's address and port (host order), whose owner worker
    /// holds the connection.
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
/// [`match_error`] from `side` (see the module table). `frame[l3..ip_end]`
/// was checked by [`match_error`]. NAT: the outer TTL is decremented (the
/// caller checked it is above 1), the outer address and the quote are
/// rewritten with their checksums. DR: the IP packet is left as it is.
/// The Ethernet header is the caller's.
pub fn rewrite(frame: &mut [u8], p: &Parsed, conn: &Conn, side: ErrorSide) {
    if conn.method != Method::Nat {
        return;
    }
    let (l3, l4, end) = (usize::from(p.l3), usize::from(p.l4), usize::from(p.ip_end));
    let Some(ip) = frame.get_mut(l3..end) else {
        return;
    };
    {
        let mut outer = Ipv4Packet::new_unchecked(&mut *ip);
        let ttl = outer.ttl();
        outer.rewrite_ttl(ttl.saturating_sub(1));
        // ICMP has no pseudo-header: the outer address touches only the
        // IPv4 header checksum.
        match side {
            ErrorSide::Client => outer.rewrite_dst_addr(conn.rip),
            ErrorSide::Real => outer.rewrite_src_addr(conn.vip),
        };
    }
    let Some(msg) = frame.get_mut(l4..end) else {
        return;
    };
    if let Ok(mut q) = IcmpQuote::new_checked(msg) {
        match side {
            ErrorSide::Client => q.rewrite_inner(QuoteSide::Src, conn.rip, conn.rport),
            ErrorSide::Real => q.rewrite_inner(QuoteSide::Dst, conn.vip, conn.vport),
        }
    }
}
