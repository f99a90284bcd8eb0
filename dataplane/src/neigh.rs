//! Neighbour (ARP) table of one worker: next-hop IPv4 → MAC.
//!
//! Layer: dataplane, per worker, no sharing. Entries are learnt from ARP
//! packets addressed to the director (RFC 826 "merge" rule: a sender we
//! already know is updated by any ARP it sends) and from other workers, which
//! forward what they learn over the worker rings. Static entries from the
//! snapshot never age.
//!
//! Ageing mirrors Linux's REACHABLE → STALE → gone cycle in a simplified
//! form: an entry is used freely for [`REACHABLE_MS`]; after that it is still
//! used, but the worker re-sends an ARP request at most once per
//! [`RETRY_MS`]; an entry not confirmed within [`STALE_MS`] of its last update
//! is deleted. Lookups that miss queue one ARP request per [`RETRY_MS`] per
//! address; the packet that missed is dropped and counted (`neigh_unresolved`),
//! and TCP's retransmission recovers the flow once the reply arrives.

use hashbrown::HashMap;

/// How long a learnt entry is trusted without re-confirmation (ms).
pub const REACHABLE_MS: u64 = 30_000;
/// How long after its last confirmation an unconfirmed entry is removed (ms).
pub const STALE_MS: u64 = 90_000;
/// Minimum interval between two ARP requests for the same address (ms).
pub const RETRY_MS: u64 = 1_000;
/// Most addresses with a pending ARP request at once; more misses are still
/// dropped and counted, but do not create entries (bounds memory under a scan).
pub const MAX_PENDING: usize = 1024;

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// MAC in wire order; all-zero while unresolved.
    mac: [u8; 6],
    port: u8,
    resolved: bool,
    permanent: bool,
    confirmed_ms: u64,
    last_request_ms: u64,
}

/// The outcome of a neighbour lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The next hop's MAC, wire order.
    Hit([u8; 6]),
    /// Unknown: the caller should send an ARP request for the address now.
    SendRequest,
    /// Unknown and a request went out less than [`RETRY_MS`] ago.
    Pending,
}

/// One worker's ARP cache.
#[derive(Debug, Default)]
pub struct NeighTable {
    map: HashMap<u32, Entry, ahash::RandomState>,
    n_pending: usize,
    /// Bumped whenever a resolved entry appears, changes or disappears, so
    /// a cache of lookup hits knows when to drop them (see
    /// [`NeighTable::version`]).
    version: u64,
}

impl NeighTable {
    /// An empty table with room for `capacity` addresses before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        NeighTable {
            map: HashMap::with_capacity_and_hasher(capacity, ahash::RandomState::new()),
            n_pending: 0,
            version: 0,
        }
    }

    /// Looks up the MAC of next hop `ip` (host order).
    ///
    /// A miss records the address as pending and returns
    /// [`Lookup::SendRequest`] at most once per [`RETRY_MS`]; a hit on an entry
    /// past [`REACHABLE_MS`] still returns the MAC (the slow tick re-probes it).
    #[inline]
    pub fn lookup(&mut self, ip: u32, port: u8, now_ms: u64) -> Lookup {
        if let Some(e) = self.map.get_mut(&ip) {
            if e.resolved {
                return Lookup::Hit(e.mac);
            }
            if now_ms.saturating_sub(e.last_request_ms) >= RETRY_MS {
                e.last_request_ms = now_ms;
                e.port = port;
                return Lookup::SendRequest;
            }
            return Lookup::Pending;
        }
        if self.n_pending >= MAX_PENDING {
            return Lookup::Pending;
        }
        self.n_pending += 1;
        self.map.insert(
            ip,
            Entry {
                mac: [0; 6],
                port,
                resolved: false,
                permanent: false,
                confirmed_ms: now_ms,
                last_request_ms: now_ms,
            },
        );
        Lookup::SendRequest
    }

    /// Records that `ip` is at `mac` behind `port`, as learnt from an ARP
    /// packet or from another worker at `now_ms`.
    ///
    /// Returns `true` when this changed what the table knew (a new address, a
    /// new MAC, or a pending entry resolved): only then is the fact worth
    /// forwarding to the other workers. Permanent entries are never changed.
    pub fn learn(&mut self, ip: u32, mac: [u8; 6], port: u8, now_ms: u64) -> bool {
        match self.map.get_mut(&ip) {
            Some(e) if e.permanent => false,
            Some(e) => {
                let changed = !e.resolved || e.mac != mac || e.port != port;
                if !e.resolved {
                    self.n_pending = self.n_pending.saturating_sub(1);
                }
                e.mac = mac;
                e.port = port;
                e.resolved = true;
                e.confirmed_ms = now_ms;
                if changed {
                    self.version += 1;
                }
                changed
            }
            None => {
                self.version += 1;
                self.map.insert(
                    ip,
                    Entry {
                        mac,
                        port,
                        resolved: true,
                        permanent: false,
                        confirmed_ms: now_ms,
                        last_request_ms: 0,
                    },
                );
                true
            }
        }
    }

    /// Whether `ip` has an entry of any kind (resolved or pending).
    pub fn knows(&self, ip: u32) -> bool {
        self.map.contains_key(&ip)
    }

    /// Installs a permanent entry (from the config's `neighbours`).
    pub fn set_permanent(&mut self, ip: u32, mac: [u8; 6], port: u8) {
        self.version += 1;
        if let Some(e) = self.map.get(&ip) {
            if !e.resolved {
                self.n_pending = self.n_pending.saturating_sub(1);
            }
        }
        self.map.insert(
            ip,
            Entry {
                mac,
                port,
                resolved: true,
                permanent: true,
                confirmed_ms: 0,
                last_request_ms: 0,
            },
        );
    }

    /// Ages the table at `now_ms`: removes entries unconfirmed for
    /// [`STALE_MS`] (and pending ones unanswered for as long), and calls
    /// `reprobe(port, ip)` for resolved entries past [`REACHABLE_MS`] whose last
    /// request is older than [`RETRY_MS`]. Slow path: walks the whole table.
    pub fn age(&mut self, now_ms: u64, mut reprobe: impl FnMut(u8, u32)) {
        let mut gone_pending = 0;
        let mut gone = 0u64;
        self.map.retain(|&ip, e| {
            if e.permanent {
                return true;
            }
            let since = now_ms.saturating_sub(e.confirmed_ms);
            if since >= STALE_MS {
                if !e.resolved {
                    gone_pending += 1;
                }
                gone += 1;
                return false;
            }
            if e.resolved
                && since >= REACHABLE_MS
                && now_ms.saturating_sub(e.last_request_ms) >= RETRY_MS
            {
                e.last_request_ms = now_ms;
                reprobe(e.port, ip);
            }
            true
        });
        self.n_pending = self.n_pending.saturating_sub(gone_pending);
        if gone > 0 {
            self.version += 1;
        }
    }

    /// A counter that changes whenever a [`Lookup::Hit`] answer may have
    /// changed (an address resolved, re-learnt with another MAC or port,
    /// made permanent, or aged out). Equal versions mean every hit seen
    /// since is still the answer, so callers may cache hits keyed by it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of entries, resolved or pending.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];

    #[test]
    fn test_miss_then_learn() {
        let mut t = NeighTable::with_capacity(8);
        assert_eq!(t.lookup(0x0a01_000b, 1, 0), Lookup::SendRequest);
        assert_eq!(t.lookup(0x0a01_000b, 1, 10), Lookup::Pending);
        assert_eq!(t.lookup(0x0a01_000b, 1, RETRY_MS), Lookup::SendRequest);
        assert!(t.learn(0x0a01_000b, M, 1, 1500));
        assert_eq!(t.lookup(0x0a01_000b, 1, 1600), Lookup::Hit(M));
        assert!(
            !t.learn(0x0a01_000b, M, 1, 1700),
            "same facts are no change"
        );
    }

    #[test]
    fn test_ageing_reprobes_then_removes() {
        let mut t = NeighTable::with_capacity(8);
        t.learn(7, M, 0, 0);
        let mut probes = vec![];
        t.age(REACHABLE_MS - 1, |p, ip| probes.push((p, ip)));
        assert!(probes.is_empty());
        t.age(REACHABLE_MS, |p, ip| probes.push((p, ip)));
        assert_eq!(probes, vec![(0, 7)]);
        assert_eq!(
            t.lookup(7, 0, REACHABLE_MS + 1),
            Lookup::Hit(M),
            "stale entries stay usable"
        );
        t.age(STALE_MS, |_, _| {});
        assert!(!t.knows(7));
    }

    #[test]
    fn test_permanent_never_ages_or_changes() {
        let mut t = NeighTable::with_capacity(8);
        t.set_permanent(9, M, 1);
        assert!(!t.learn(9, [1; 6], 1, 5));
        t.age(10 * STALE_MS, |_, _| {
            panic!("permanent entries are not probed")
        });
        assert_eq!(t.lookup(9, 1, 10 * STALE_MS), Lookup::Hit(M));
    }

    #[test]
    fn test_pending_is_bounded() {
        let mut t = NeighTable::with_capacity(8);
        for ip in 0..MAX_PENDING as u32 {
            assert_eq!(t.lookup(ip, 0, 0), Lookup::SendRequest);
        }
        assert_eq!(t.lookup(u32::MAX, 0, 0), Lookup::Pending);
        assert_eq!(t.len(), MAX_PENDING);
        t.age(STALE_MS, |_, _| {});
        assert!(t.is_empty());
        assert_eq!(t.lookup(u32::MAX, 0, STALE_MS), Lookup::SendRequest);
    }
}
