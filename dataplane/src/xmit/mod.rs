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
pub mod nat;

use crate::wire::Ipv4Packet;

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
