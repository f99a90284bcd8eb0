//! Stage `shard`: which worker owns a flow, and whether to hand it over.
//!
//! Layer: dataplane pipeline, after `classify`. A flow belongs to the
//! worker [`owner`] names for its client address and port, computable from
//! an inbound packet (its source) and from a NAT reply (its destination),
//! so both directions meet in one connection table. A packet that landed
//! on another worker (RSS does not hash on the client side alone on most
//! vdevs) moves to its owner over a ring; one that was already moved is
//! never moved again.

use crate::owner::owner;

/// The worker to redirect to, or `None` when worker `me` of `n_workers`
/// should process the packet itself: it owns the flow of client
/// `client_ip:client_port` (host order), or the packet was already
/// redirected once.
#[inline]
pub fn redirect_to(
    client_ip: u32,
    client_port: u16,
    me: u16,
    n_workers: u16,
    redirected: bool,
) -> Option<u16> {
    if redirected || n_workers <= 1 {
        return None;
    }
    let o = owner(client_ip, client_port, n_workers);
    (o != me).then_some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_redirect_only_to_another_owner_once() {
        assert_eq!(redirect_to(1, 2, 0, 1, false), None);
        let o = owner(0x0a00_0002, 40000, 2);
        assert_eq!(redirect_to(0x0a00_0002, 40000, o, 2, false), None);
        assert_eq!(redirect_to(0x0a00_0002, 40000, 1 - o, 2, false), Some(o));
        assert_eq!(redirect_to(0x0a00_0002, 40000, 1 - o, 2, true), None);
    }
}
