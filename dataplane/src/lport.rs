//! FullNAT local ports: which (LIP, lport) pairs a worker may book.
//!
//! Layer: dataplane, per worker. A FullNAT connection's reply comes from
//! RIP:rport to LIP:lport, and the reply path shards by destination
//! ([`crate::owner::owner`] of the reply's destination address and port),
//! so a worker books only lports whose `owner(lip, lport, n_workers)` is
//! itself: both directions of its connections then reach it with no
//! redirect (the software form of DPVS's per-lcore `sa_pool` with its
//! flow-director rules).
//!
//! Guarantees:
//! - a (LIP, lport) pair is booked at most once at a time, so no two live
//!   connections share a reply tuple (and no (LIP, lport, RIP, rport) is
//!   booked twice);
//! - [`LportPools::book`] and [`LportPools::release`] never allocate and
//!   never panic; [`LportPools::sync`] (slow path, on snapshot adoption)
//!   allocates each pool once, whole;
//! - free ports are reused oldest first (a FIFO ring), so a port goes back
//!   to a real server as late as possible after its last use (the real
//!   server may hold the old tuple in TIME_WAIT).
//!
//! Refuses: booking when every owned port of every LIP is in use (the
//! caller counts `fullnat_no_lport`).

use std::collections::VecDeque;

use crate::owner::owner;
use crate::snapshot::{LportRange, Method, Snapshot};

/// One local address's pool: its free owned ports and which ports are booked.
#[derive(Clone, Debug)]
struct Pool {
    /// The LIP, host order.
    lip: u32,
    /// Free ports of the current range owned by this worker, oldest first.
    /// Its capacity is the number of owned ports, so pushing a released
    /// port never grows it.
    free: VecDeque<u16>,
    /// Bit `p` set: port `p` is booked. 8 KiB.
    booked: Box<[u64; 1024]>,
}

impl Pool {
    fn new(lip: u32, range: LportRange, worker: u16, n_workers: u16) -> Pool {
        let mut p = Pool {
            lip,
            free: VecDeque::new(),
            booked: Box::new([0; 1024]),
        };
        p.refill(range, worker, n_workers);
        p
    }

    /// Rebuilds the free ring for `range`: owned ports not booked now.
    fn refill(&mut self, range: LportRange, worker: u16, n_workers: u16) {
        let owned: Vec<u16> = (range.lo.max(1)..=range.hi)
            .filter(|&port| owner(self.lip, port, n_workers) == worker)
            .collect();
        let mut free = VecDeque::with_capacity(owned.len());
        free.extend(owned.into_iter().filter(|&p| !self.is_booked(p)));
        self.free = free;
    }

    fn is_booked(&self, port: u16) -> bool {
        let (w, b) = (usize::from(port) / 64, port % 64);
        self.booked.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    fn set_booked(&mut self, port: u16, on: bool) {
        let (w, b) = (usize::from(port) / 64, port % 64);
        if let Some(x) = self.booked.get_mut(w) {
            if on {
                *x |= 1 << b;
            } else {
                *x &= !(1 << b);
            }
        }
    }
}

/// A worker's lport pools, one per local address of the snapshot's FullNAT
/// services. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct LportPools {
    pools: Vec<Pool>,
    range: LportRange,
    worker: u16,
    n_workers: u16,
    /// Where [`LportPools::book`] starts looking next (round-robin over a
    /// service's LIPs, as DPVS's `laddr` list is walked).
    cursor: usize,
}

impl LportPools {
    /// No pools, for worker `worker` of `n_workers`.
    pub fn new(worker: u16, n_workers: u16) -> Self {
        LportPools {
            worker,
            n_workers: n_workers.max(1),
            ..Default::default()
        }
    }

    /// Adopts `snap`'s local addresses and lport range: a pool for every
    /// LIP of a service with a FullNAT real server (allocating each new one
    /// once, whole), keeping what the LIPs still present have booked.
    /// A changed range rebuilds the free rings; a booked port outside the
    /// new range is released without going back to a ring. Pools of LIPs no
    /// longer configured stay while their ports are booked (connections
    /// drain), and are dropped once none is.
    pub fn sync(&mut self, snap: &Snapshot) {
        let range_changed = snap.lport_range != self.range;
        self.range = snap.lport_range;
        let mut lips: Vec<u32> = snap
            .services
            .iter()
            .filter(|s| {
                s.reals.iter().any(|&r| {
                    snap.reals
                        .get(r as usize)
                        .is_some_and(|r| r.method == Method::FullNat)
                })
            })
            .flat_map(|s| s.local_addresses.iter().copied())
            .collect();
        lips.sort_unstable();
        lips.dedup();
        let (range, worker, n) = (self.range, self.worker, self.n_workers);
        self.pools
            .retain(|p| lips.binary_search(&p.lip).is_ok() || p.booked.iter().any(|&w| w != 0));
        if range_changed {
            for p in &mut self.pools {
                p.refill(range, worker, n);
            }
        }
        for lip in lips {
            if !self.pools.iter().any(|p| p.lip == lip) {
                self.pools.push(Pool::new(lip, range, worker, n));
            }
        }
    }

    /// Books a free lport on one of `lips` (tried round-robin), returning
    /// (LIP, lport), both host order. The port's owner is this worker.
    /// No allocation.
    ///
    /// # Errors
    /// `None` when every owned port of every one of `lips` is booked (or
    /// none of them has a pool).
    pub fn book(&mut self, lips: &[u32]) -> Option<(u32, u16)> {
        let n = lips.len();
        for k in 0..n {
            let lip = lips[(self.cursor + k) % n];
            let Some(pool) = self.pools.iter_mut().find(|p| p.lip == lip) else {
                continue;
            };
            if let Some(port) = pool.free.pop_front() {
                pool.set_booked(port, true);
                self.cursor = (self.cursor + k + 1) % n;
                return Some((lip, port));
            }
        }
        None
    }

    /// Gives `lip:lport` back (a FullNAT connection expired or was removed).
    /// Releasing a pair that is not booked does nothing, so a double release
    /// cannot put a port on the ring twice. No allocation.
    pub fn release(&mut self, lip: u32, lport: u16) {
        let range = self.range;
        let Some(pool) = self.pools.iter_mut().find(|p| p.lip == lip) else {
            return;
        };
        if !pool.is_booked(lport) {
            return;
        }
        pool.set_booked(lport, false);
        if (range.lo..=range.hi).contains(&lport) && pool.free.len() < pool.free.capacity() {
            pool.free.push_back(lport);
        }
    }

    /// Free ports of `lip`'s pool (0 without one).
    pub fn free_ports(&self, lip: u32) -> usize {
        self.pools
            .iter()
            .find(|p| p.lip == lip)
            .map_or(0, |p| p.free.len())
    }

    /// Whether `lip:lport` is booked now.
    pub fn is_booked(&self, lip: u32, lport: u16) -> bool {
        self.pools
            .iter()
            .find(|p| p.lip == lip)
            .is_some_and(|p| p.is_booked(lport))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{RealServer, Service, ServiceKey, NO_SERVICE};
    use std::collections::HashSet;

    const LIP1: u32 = 0x0a02_0001;
    const LIP2: u32 = 0x0a02_0002;

    fn snap(lips: &[u32], lo: u16, hi: u16) -> Snapshot {
        let real = RealServer {
            ip: 0x0a01_000b,
            port: 80,
            weight: 1,
            method: Method::FullNat,
            tun: Default::default(),
            service: 0,
            available: true,
        };
        let placeholder = RealServer {
            service: NO_SERVICE,
            ..real.clone()
        };
        Snapshot {
            services: vec![Service {
                key: ServiceKey {
                    vip: 0x0a00_0064,
                    vport: 80,
                    proto: crate::snapshot::Proto::Tcp,
                },
                scheduler: sched::SchedKind::Rr,
                sched_flags: Default::default(),
                sched_params: Default::default(),
                mh_table: None,
                reals: vec![1],
                persistence: None,
                local_addresses: lips.to_vec(),
                client_address: Default::default(),
            }],
            reals: vec![placeholder, real],
            lport_range: LportRange { lo, hi },
            ..Default::default()
        }
    }

    #[test]
    fn test_owner_property_and_no_double_booking() {
        for w in 0..3u16 {
            let mut pools = LportPools::new(w, 3);
            pools.sync(&snap(&[LIP1, LIP2], 1024, 65535));
            let mut seen = HashSet::new();
            while let Some((lip, port)) = pools.book(&[LIP1, LIP2]) {
                assert_eq!(owner(lip, port, 3), w, "{lip:#x}:{port}");
                assert!((1024..=65535).contains(&port));
                assert!(seen.insert((lip, port)), "booked twice: {lip:#x}:{port}");
            }
            // Exhausted: roughly a third of 2 × 64512 ports each.
            assert!((40_000..46_000).contains(&seen.len()), "{}", seen.len());
        }
    }

    #[test]
    fn test_exhaustion_and_release_fifo() {
        let mut pools = LportPools::new(0, 1);
        pools.sync(&snap(&[LIP1], 2000, 2003));
        let got: Vec<_> = (0..4).map(|_| pools.book(&[LIP1]).unwrap()).collect();
        assert_eq!(
            got,
            vec![(LIP1, 2000), (LIP1, 2001), (LIP1, 2002), (LIP1, 2003)]
        );
        assert_eq!(pools.book(&[LIP1]), None);
        pools.release(LIP1, 2001);
        pools.release(LIP1, 2001);
        assert_eq!(pools.free_ports(LIP1), 1, "double release is ignored");
        assert_eq!(pools.book(&[LIP1]), Some((LIP1, 2001)));
        assert_eq!(pools.book(&[LIP1]), None);
        // Unknown LIP, unknown port: no effect.
        pools.release(LIP2, 2000);
        pools.release(LIP1, 9);
        assert_eq!(pools.book(&[LIP2]), None);
        assert_eq!(pools.book(&[]), None);
    }

    #[test]
    fn test_sync_keeps_bookings() {
        let mut pools = LportPools::new(0, 1);
        pools.sync(&snap(&[LIP1], 3000, 3001));
        assert_eq!(pools.book(&[LIP1]), Some((LIP1, 3000)));
        // A new generation with the same LIP and a wider range: 3000 stays
        // booked, the rest is free.
        pools.sync(&snap(&[LIP1], 3000, 3003));
        assert!(pools.is_booked(LIP1, 3000));
        assert_eq!(pools.free_ports(LIP1), 3);
        // The LIP leaves the config: its pool stays while 3000 is booked.
        pools.sync(&snap(&[LIP2], 3000, 3003));
        assert!(pools.is_booked(LIP1, 3000));
        pools.release(LIP1, 3000);
        pools.sync(&snap(&[LIP2], 3000, 3003));
        assert!(!pools.is_booked(LIP1, 3000));
        assert_eq!(pools.free_ports(LIP1), 0);
        assert_eq!(pools.free_ports(LIP2), 4);
    }
}
