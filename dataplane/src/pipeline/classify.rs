//! Stage `classify`: which of the director's paths a parsed packet takes.
//!
//! Layer: dataplane pipeline, after `validate`, for IPv4 (ARP goes from
//! `parse` straight to `local`). One lookup of the destination in the
//! worker's copy of the local addresses decides between the `local` stage
//! (anything for a DIP, or for a VIP that is not TCP/UDP: ICMP echo and the
//! exception path), VRRP adverts (to 224.0.0.18 or a DIP), VIP
//! traffic (client → virtual service) and reply candidates (a real server
//! answering a client through a NAT connection, or LIP:lport through a
//! FullNAT one).
//!
//! ICMP to another host is `IcmpError`: `icmp_relay` decides whether it is
//! an error about a NAT flow (else `not_for_us`). ICMP to a VIP or a
//! FullNAT local address is `Local`, and `icmp_relay` sees it first.
//!
//! Refuses with `not_for_us` only a packet that is neither for a director
//! address nor TCP/UDP/ICMP (which alone could be a NAT reply or an error
//! about one); with
//! `vrrp_backup` anything to a VIP or floating address this director does
//! not hold (its VRRP instance is backup), and with `vrrp_not_for_us` VRRP
//! to another address.

use crate::snapshot::{LocalKind, Snapshot};
use crate::stats::DropReason;
use crate::wire::vrrp::{MCAST_ADDR, PROTO_VRRP};

use super::parse::{Parsed, L4};

/// Where an IPv4 packet goes next (ARP never gets here: `parse` already
/// told it apart, and the pipeline hands it to `local` before `validate`,
/// whose IPv4 checks do not apply to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// To a director address and not VIP TCP/UDP: the `local` stage.
    Local(LocalKind),
    /// TCP/UDP to a VIP: owner check, then the connection table.
    Vip,
    /// TCP/UDP to an address that is not ours (possibly a NAT reply) or to
    /// a FullNAT local address (possibly a FullNAT reply).
    Reply,
    /// VRRP (IP protocol 112) to 224.0.0.18 or to a DIP: checked by
    /// `local::vrrp` and handed to the control thread through the kernel.
    Vrrp,
    /// ICMP to an address that is not ours: possibly an error from the
    /// real servers' side about a NAT flow, for `icmp_relay` (ICMP errors
    /// to a VIP or a LIP are `Local(Vip)` / `Local(Lip)`, and `icmp_relay`
    /// sees them first).
    IcmpError,
}

/// The snapshot's local addresses (VIPs and DIPs) as a worker's own small
/// open-addressing table: the per-packet destination lookup costs one
/// multiply and usually one cache line, where the snapshot's `HashMap`
/// (keyed, SipHash-class hashing) cost about a tenth of a packet's time.
///
/// Built by `Core::sync` (slow path). At most half full, so a probe run
/// stays short whatever address a packet carries; its keys are fixed by the
/// configuration, so a sender cannot grow or reshape it.
#[derive(Clone, Debug)]
pub struct LocalIndex {
    /// (address, kind) per slot; `None` marks an empty slot.
    slots: Vec<Option<(u32, LocalKind)>>,
    /// log2 of `slots.len()`.
    bits: u32,
}

impl Default for LocalIndex {
    fn default() -> Self {
        LocalIndex {
            slots: vec![None; 16],
            bits: 4,
        }
    }
}

impl LocalIndex {
    /// The index of every address in `snap.local` (allocates).
    pub fn build(snap: &Snapshot) -> Self {
        let want = (snap.local.len() * 2).max(16).next_power_of_two();
        let bits = want.trailing_zeros();
        let mut idx = LocalIndex {
            slots: vec![None; want],
            bits,
        };
        for (&ip, l) in &snap.local {
            let mut i = idx.home(ip);
            while idx.slots[i].is_some() {
                i = (i + 1) & (want - 1);
            }
            idx.slots[i] = Some((ip, l.kind));
        }
        idx
    }

    #[inline]
    fn home(&self, ip: u32) -> usize {
        (ip.wrapping_mul(0x9e37_79b1) >> (32 - self.bits)) as usize
    }

    /// The kind of director address `ip` (host order) is, if it is one.
    #[inline]
    pub fn get(&self, ip: u32) -> Option<LocalKind> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(ip);
        // At most half full: an empty slot always ends the run.
        for _ in 0..self.slots.len() {
            match self.slots.get(i)? {
                Some((a, kind)) if *a == ip => return Some(*kind),
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
        None
    }
}

/// Classifies the IPv4 packet `p` against the worker's copy of the local
/// addresses.
///
/// # Errors
/// `not_for_us` for non-TCP/UDP traffic to an address that is not ours.
#[inline]
pub fn classify(p: &Parsed, local: &LocalIndex) -> Result<Class, DropReason> {
    match local.get(p.key.dst_ip) {
        Some(LocalKind::Vip) if p.has_ports() => Ok(Class::Vip),
        // A real server answering a FullNAT connection, to LIP:lport.
        Some(LocalKind::Lip) if p.has_ports() => Ok(Class::Reply),
        Some(LocalKind::Standby) => Err(DropReason::VrrpBackup),
        Some(kind) if p.key.proto == PROTO_VRRP => match kind {
            LocalKind::Dip => Ok(Class::Vrrp),
            _ => Err(DropReason::VrrpNotForUs),
        },
        Some(kind) => Ok(Class::Local(kind)),
        None if p.has_ports() => Ok(Class::Reply),
        None if p.kind == L4::Icmp => Ok(Class::IcmpError),
        None if p.key.proto == PROTO_VRRP => match p.key.dst_ip {
            MCAST_ADDR => Ok(Class::Vrrp),
            _ => Err(DropReason::VrrpNotForUs),
        },
        None => Err(DropReason::NotForUs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::LocalAddr;

    #[test]
    fn test_local_index_matches_the_snapshot() {
        let mut snap = Snapshot::default();
        for i in 0..100u32 {
            let kind = if i % 3 == 0 {
                LocalKind::Dip
            } else {
                LocalKind::Vip
            };
            snap.local
                .insert(0x0a00_0000 + i * 7, LocalAddr { kind, arp_ports: 1 });
        }
        let idx = LocalIndex::build(&snap);
        for ip in 0x0a00_0000..0x0a00_0000 + 800 {
            assert_eq!(idx.get(ip), snap.local.get(&ip).map(|l| l.kind), "{ip:#x}");
        }
        assert_eq!(LocalIndex::default().get(1), None);
    }
}
