//! Stage `classify`: which of the director's paths a parsed packet takes.
//!
//! Layer: dataplane pipeline, after `validate`. One lookup of the
//! destination in the snapshot's local addresses decides between the
//! `local` stage (ARP, and anything for a DIP or for a VIP that is not
//! TCP/UDP: ICMP echo today, later the exception path and VRRP), VIP
//! traffic (client → virtual service) and reply candidates (a real server
//! answering a client through a NAT connection).
//!
//! Refuses with `not_for_us` only a packet that is neither for a director
//! address nor TCP/UDP (which alone could be a NAT reply).

use crate::snapshot::{LocalKind, Snapshot};
use crate::stats::DropReason;

use super::parse::{Parsed, L4};

/// Where a packet goes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// ARP: the `local` stage answers or learns.
    Arp,
    /// To a director address and not VIP TCP/UDP: the `local` stage.
    Local(LocalKind),
    /// TCP/UDP to a VIP: owner check, then the connection table.
    Vip,
    /// TCP/UDP to an address that is not ours: possibly a NAT reply.
    Reply,
}

/// Classifies `p` against `snap`.
///
/// # Errors
/// `not_for_us` for non-TCP/UDP traffic to an address that is not ours.
#[inline]
pub fn classify(p: &Parsed, snap: &Snapshot) -> Result<Class, DropReason> {
    if p.kind == L4::Arp {
        return Ok(Class::Arp);
    }
    match snap.local.get(&p.key.dst_ip).map(|l| l.kind) {
        Some(LocalKind::Vip) if p.has_ports() => Ok(Class::Vip),
        Some(kind) => Ok(Class::Local(kind)),
        None if p.has_ports() => Ok(Class::Reply),
        None => Err(DropReason::NotForUs),
    }
}
