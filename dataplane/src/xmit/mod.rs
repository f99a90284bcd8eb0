//! Forwarding methods: how a balanced packet is rewritten for its real server.
//!
//! Layer: dataplane, pure byte rewriting, in place. One file per method, as in
//! IPVS (`ip_vs_xmit.c` has `ip_vs_nat_xmit`, `ip_vs_dr_xmit`, ...). Each
//! function takes the IPv4 packet (from its first header byte to the end of
//! the frame) whose header and L4 header the caller already checked with
//! `check_len`, and never panics on such input. Checksums are updated
//! incrementally (RFC 1624), never recomputed. The Ethernet header is the
//! caller's: it is rewritten for every method after the next-hop lookup.

pub mod dr;
pub mod fullnat;
pub mod nat;
pub mod tun;

use crate::conn::{Conn, Dir};
use crate::frame::Frame;
use crate::pipeline::route::NextHop;
use crate::snapshot::Method;
use crate::stats::DropReason;
use crate::wire::ipv4::MIN_HEADER_LEN;
use crate::wire::Ipv4Packet;

/// Whether a packet with IPv4 TTL `ttl` may leave by `method`: NAT, TUN and
/// FullNAT route (RFC 1812 §5.3.1: a router decrements the TTL and never
/// forwards one that reaches 0; IPVS's `decrement_ttl` for tunnels); DR
/// hands the frame on at L2, TTL untouched.
///
/// # Errors
/// `ttl_exceeded`.
#[inline]
pub fn may_forward(method: Method, ttl: u8) -> Result<(), DropReason> {
    match method {
        Method::Nat | Method::Tun | Method::FullNat if ttl <= 1 => Err(DropReason::TtlExceeded),
        _ => Ok(()),
    }
}

/// Rewrites a packet of connection `conn` travelling `dir` for the
/// connection's forwarding method, in place, and sets the frame's MACs to
/// `hop.src_mac` → `hop.dst_mac` (wire order). `frame[l3..ip_end]` is the
/// IPv4 datagram, its header and L4 header already checked with
/// `check_len`. `tun` is the outer header of a [`Method::Tun`] connection
/// (ignored by the others). This is the one entry of every method; each
/// method's rewrite is its own file, so a new method is a new file and a
/// new arm here. TUN grows the frame in front (the outer header), FullNAT
/// may grow it inside (a TOA option, a PROXY header): `frame.len()` is its
/// new length. Returns what FullNAT added besides the addresses, for the
/// counters ([`fullnat::Sent::Plain`] for every other method).
///
/// Source: IPVS `ip_vs_nat_xmit` / `ip_vs_dr_xmit` / `ip_vs_tunnel_xmit`
/// and their `_out` forms; DPVS `dp_vs_xmit_fnat` / `dp_vs_out_xmit_fnat`.
///
/// # Errors
/// TUN as [`tun::encapsulate`] (`tun_no_room`), also when `tun` is
/// `None`; FullNAT `fullnat_proxy_no_room` (see
/// [`fullnat::rewrite_inbound`]). The frame is unchanged then. NAT and DR
/// never fail. The egress MTU is the caller's check, with what the method
/// adds ([`tun::overhead`], [`fullnat::inbound_growth`]).
#[inline]
pub fn transmit(
    frame: &mut Frame<'_>,
    l3: usize,
    ip_end: usize,
    conn: &Conn,
    dir: Dir,
    hop: &NextHop,
    tun: Option<&tun::Outer>,
) -> Result<fullnat::Sent, DropReason> {
    match (conn.method, dir) {
        (Method::Nat, dir) => {
            let bytes = frame.bytes_mut();
            let Some(ip) = bytes.get_mut(l3..ip_end) else {
                return Ok(fullnat::Sent::Plain);
            };
            decrement_ttl(ip);
            match dir {
                Dir::In => nat::rewrite_inbound(ip, conn.rip, conn.rport),
                Dir::Out => nat::rewrite_outbound(ip, conn.vip, conn.vport),
            }
            set_macs(bytes, hop.src_mac, hop.dst_mac);
        }
        (Method::FullNat, Dir::In) => {
            if ip_end > frame.len() || l3 + MIN_HEADER_LEN > ip_end {
                return Ok(fullnat::Sent::Plain);
            }
            let sent = fullnat::rewrite_inbound(frame, l3, ip_end, conn)?;
            set_macs(frame.bytes_mut(), hop.src_mac, hop.dst_mac);
            return Ok(sent);
        }
        (Method::FullNat, Dir::Out) => {
            let bytes = frame.bytes_mut();
            let Some(ip) = bytes.get_mut(l3..ip_end) else {
                return Ok(fullnat::Sent::Plain);
            };
            decrement_ttl(ip);
            fullnat::rewrite_outbound(ip, conn);
            set_macs(bytes, hop.src_mac, hop.dst_mac);
        }
        // A DR connection has no outbound key, so only Dir::In gets here.
        (Method::Dr, _) => dr::rewrite(frame.bytes_mut(), hop.src_mac, hop.dst_mac),
        // Nor has a TUN connection.
        (Method::Tun, _) => {
            let outer = tun.ok_or(DropReason::TunNoRoom)?;
            tun::encapsulate(frame, l3, ip_end, outer)?;
            set_macs(frame.bytes_mut(), hop.src_mac, hop.dst_mac);
        }
    }
    Ok(fullnat::Sent::Plain)
}

/// Decrements the IPv4 TTL by one, fixing the header checksum (RFC 1624 over
/// the TTL/protocol word), as a router does on forwarding (RFC 1812 §5.3.1).
///
/// The caller has checked `ttl() > 1`.
#[inline]
pub fn decrement_ttl(ip: &mut [u8]) {
    let mut p = Ipv4Packet::new_unchecked(ip);
    let ttl = p.ttl();
    p.rewrite_ttl(ttl.wrapping_sub(1));
}

/// Rewrites the source MAC and destination MAC of an Ethernet frame.
#[inline]
pub fn set_macs(frame: &mut [u8], src: [u8; 6], dst: [u8; 6]) {
    if frame.len() >= 12 {
        frame[0..6].copy_from_slice(&dst);
        frame[6..12].copy_from_slice(&src);
    }
}
