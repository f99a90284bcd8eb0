//! Neighbour (ARP) table of one worker: (port, next-hop IPv4) → MAC.
//!
//! Layer: dataplane, per worker, no sharing, no allocation after
//! [`NeighTable::new`]. Entries are learnt from ARP packets the caller has
//! accepted (RFC 826 "merge" rule: a sender we already know on that port is
//! updated by any ARP it sends there) and from other workers, which forward
//! what they learn over the worker rings. Permanent entries from the snapshot
//! never age.
//!
//! What it guarantees, against hostile ARP:
//! - **Per-port keys.** An entry is keyed by (port, IPv4 address): a lookup
//!   for an address on port P only ever answers with what was learnt on P, so
//!   an ARP sent on the client segment cannot redirect traffic meant for the
//!   real-server segment. The same address may be known on two ports
//!   independently. (Linux keys its neighbour cache by device the same way,
//!   `neigh_lookup(tbl, pkey, dev)`.)
//! - **No nonsense learnt.** [`NeighTable::learn`] refuses broadcast,
//!   multicast (I/G bit set) and all-zero MACs (RFC 1812 §3.3.2: a router
//!   must not believe an ARP reply that claims a broadcast or multicast link
//!   address) and addresses that are never a unicast neighbour (0.0.0.0/8,
//!   127.0.0.0/8, 224.0.0.0/4 and above; RFC 1122 §3.2.1.3). Each refusal is
//!   a typed [`Refusal`] the caller counts under its own name.
//! - **Fixed size.** The table is one array of slots allocated once by
//!   [`NeighTable::new`]; it never grows. When `capacity` entries are in use
//!   a new address is refused ([`Refusal::TableFull`]); unresolved entries
//!   have their own, smaller bound [`MAX_PENDING`]
//!   ([`Refusal::PendingFull`]), so a scan of unknown addresses cannot push
//!   out resolved neighbours.
//! - **Bounded ageing work.** [`NeighTable::age`] examines at most `budget`
//!   slots per call, resuming where the last call stopped; see its doc for
//!   the worst-case revisit time.
//!
//! Layout: open addressing with linear probing over `2^k ≥ 2 × capacity`
//! slots (load ≤ 1/2, so a probe ends at an empty slot within a few steps on
//! average), keyed by a per-table random `ahash` of (port, address) so that
//! nobody can choose addresses that collide. Deletion is by backward shift
//! (no tombstones), which keeps probe chains short without ever rehashing.
//! A fixed array was chosen over `hashbrown` with a reserved capacity because
//! hashbrown may still reallocate when tombstones pile up under churn, and
//! because the ageing cursor needs stable slot positions.
//!
//! Ageing mirrors Linux's REACHABLE → STALE → gone cycle in a simplified
//! form: an entry is used freely for [`REACHABLE_MS`]; after that it is still
//! used, but the worker re-sends an ARP request at most once per
//! [`RETRY_MS`]; an entry not confirmed within [`STALE_MS`] of its last update
//! is deleted. Lookups that miss queue one ARP request per [`RETRY_MS`] per
//! address; the packet that missed is dropped and counted (`neigh_unresolved`),
//! and TCP's retransmission recovers the flow once the reply arrives.

use core::fmt;

/// How long a learnt entry is trusted without re-confirmation (ms).
pub const REACHABLE_MS: u64 = 30_000;
/// How long after its last confirmation an unconfirmed entry is removed (ms).
pub const STALE_MS: u64 = 90_000;
/// Minimum interval between two ARP requests for the same address (ms).
pub const RETRY_MS: u64 = 1_000;
/// Most entries awaiting an ARP reply at once (or `capacity`, if smaller);
/// more misses are still dropped and counted by the caller, but do not create
/// entries (bounds the table's share taken by a scan of unknown addresses).
pub const MAX_PENDING: usize = 1024;
/// Entries a worker's table holds by default: next hops on connected
/// subnets (real servers, gateways, on-link clients of NAT replies). Linux's
/// default hard limit for a whole host is 1024 (`gc_thresh3`).
pub const DEFAULT_CAPACITY: usize = 4096;
/// Slots [`NeighTable::age`] examines per call by default (one call per
/// worker slow tick). With [`DEFAULT_CAPACITY`] (8192 slots) an entry is
/// examined at least once every ⌈(8192 + 4096) / 64⌉ = 192 calls, i.e.
/// within 192 ms at the 1 ms tick, well under [`RETRY_MS`].
pub const DEFAULT_AGE_BUDGET: usize = 64;
/// Largest `capacity` [`NeighTable::new`] accepts (16 Mi entries, 512 MiB).
pub const MAX_CAPACITY: usize = 1 << 24;

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Empty,
    /// Unresolved: an ARP request went out at `last_request_ms`.
    Pending,
    /// Learnt from ARP; ages.
    Resolved,
    /// From the snapshot; never ages, never changes by ARP.
    Permanent,
}

/// One slot of the table (32 bytes).
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Next-hop address, host order.
    ip: u32,
    /// Low 32 bits of the key's hash; the home slot is `hash & mask`.
    hash: u32,
    port: u8,
    state: State,
    /// MAC in wire order; all-zero while pending.
    mac: [u8; 6],
    confirmed_ms: u64,
    last_request_ms: u64,
}

impl Slot {
    const EMPTY: Slot = Slot {
        ip: 0,
        hash: 0,
        port: 0,
        state: State::Empty,
        mac: [0; 6],
        confirmed_ms: 0,
        last_request_ms: 0,
    };
}

/// Why the table refused to record or create an entry. Each is one named
/// situation for the caller's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The MAC is broadcast, multicast (I/G bit of the first octet set) or
    /// all-zero: never a neighbour's address (RFC 1812 §3.3.2).
    BadMac,
    /// The address is never a unicast neighbour: 0.0.0.0/8, 127.0.0.0/8 or
    /// 224.0.0.0 and above (multicast, reserved, limited broadcast; RFC 1122
    /// §3.2.1.3).
    BadAddress,
    /// The address is new and the table already holds `capacity` entries.
    TableFull,
    /// The address is new (a lookup miss) and [`MAX_PENDING`] entries (or
    /// `capacity`, if smaller) already await an ARP reply.
    PendingFull,
    /// The address has a permanent entry (from the snapshot) with another
    /// MAC; ARP never overrides configuration.
    Permanent,
}

/// The outcome of [`NeighTable::learn`] and [`NeighTable::set_permanent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learn {
    /// A resolved entry appeared: the address was unknown or pending on that
    /// port. [`NeighTable::version`] was bumped.
    New,
    /// A known entry changed: a new MAC (version bumped) or, for
    /// [`NeighTable::set_permanent`], a learnt entry became permanent.
    Updated,
    /// The table already knew exactly this (a learnt entry's confirmation
    /// time was refreshed).
    Unchanged,
    /// Nothing was recorded.
    Refused(Refusal),
}

impl Learn {
    /// Whether the table's answers changed ([`Learn::New`] or
    /// [`Learn::Updated`]): only then is the fact worth forwarding to the
    /// other workers.
    pub fn is_news(self) -> bool {
        matches!(self, Learn::New | Learn::Updated)
    }
}

/// The outcome of a neighbour lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The next hop's MAC, wire order.
    Hit([u8; 6]),
    /// Unknown: a pending entry was made (or its retry timer ran out); the
    /// caller should send an ARP request for the address now.
    SendRequest,
    /// Unknown and a request went out less than [`RETRY_MS`] ago.
    Pending,
    /// Unknown and no entry could be made: [`Refusal::BadAddress`],
    /// [`Refusal::TableFull`] or [`Refusal::PendingFull`]. No request should
    /// be sent.
    Refused(Refusal),
}

/// What one [`NeighTable::age`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgeRound {
    /// Slots examined (≤ the call's budget).
    pub visited: usize,
    /// Entries removed (resolved or pending, unconfirmed for [`STALE_MS`]).
    pub removed: usize,
    /// Re-probes handed to the callback and accepted by it.
    pub probed: usize,
}

/// One worker's ARP cache: a fixed array of slots, see the module doc.
pub struct NeighTable {
    /// `mask + 1` slots, a power of two ≥ 2 × `capacity`.
    slots: Box<[Slot]>,
    mask: usize,
    capacity: usize,
    max_pending: usize,
    /// Occupied slots (pending, resolved or permanent).
    len: usize,
    n_pending: usize,
    /// Next slot [`NeighTable::age`] examines.
    cursor: usize,
    /// Bumped whenever a resolved entry appears, changes or disappears, so
    /// a cache of lookup hits knows when to drop them (see
    /// [`NeighTable::version`]).
    version: u64,
    hasher: ahash::RandomState,
}

impl fmt::Debug for NeighTable {
    /// A summary (counts, not the slots).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NeighTable")
            .field("capacity", &self.capacity)
            .field("slots", &self.slots.len())
            .field("len", &self.len)
            .field("n_pending", &self.n_pending)
            .field("cursor", &self.cursor)
            .field("version", &self.version)
            .finish()
    }
}

/// Whether `mac` (wire order) may be a neighbour's: not all-zero and the I/G
/// bit (least significant bit of the first octet, IEEE 802-2014 §8.2) clear,
/// which rules out broadcast and every multicast address.
#[inline]
pub fn is_unicast_mac(mac: [u8; 6]) -> bool {
    mac[0] & 1 == 0 && mac != [0; 6]
}

/// Whether `ip` (host order) may be a neighbour's address: not in
/// 0.0.0.0/8, 127.0.0.0/8 or 224.0.0.0/3 (multicast, reserved, limited
/// broadcast).
#[inline]
pub fn is_unicast_ip(ip: u32) -> bool {
    let first = ip >> 24;
    first != 0 && first != 127 && first < 224
}

impl NeighTable {
    /// An empty table for `capacity` entries (at least 1), with
    /// `(2 × capacity).next_power_of_two()` slots of 32 bytes allocated now
    /// and never again. Slow path.
    ///
    /// # Panics
    /// If `capacity` exceeds [`MAX_CAPACITY`].
    pub fn new(capacity: usize) -> Self {
        assert!(
            capacity <= MAX_CAPACITY,
            "neighbour table capacity {capacity} exceeds {MAX_CAPACITY}"
        );
        let capacity = capacity.max(1);
        let n_slots = (2 * capacity).next_power_of_two();
        NeighTable {
            slots: vec![Slot::EMPTY; n_slots].into_boxed_slice(),
            mask: n_slots - 1,
            capacity,
            max_pending: MAX_PENDING.min(capacity),
            len: 0,
            n_pending: 0,
            cursor: 0,
            version: 0,
            hasher: ahash::RandomState::new(),
        }
    }

    #[inline]
    fn hash(&self, port: u8, ip: u32) -> u32 {
        // Truncation is intended: slot indices fit in 32 bits (MAX_CAPACITY).
        self.hasher.hash_one((port, ip)) as u32
    }

    /// The slot holding (`port`, `ip`), or the empty slot where it would go.
    /// Terminates: at most half the slots are occupied.
    #[inline]
    fn probe(&self, port: u8, ip: u32, hash: u32) -> Result<usize, usize> {
        let mut i = hash as usize & self.mask;
        loop {
            let s = &self.slots[i];
            if s.state == State::Empty {
                return Err(i);
            }
            if s.ip == ip && s.port == port {
                return Ok(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Fills the empty slot `i` (from [`NeighTable::probe`]) with `key` =
    /// (port, ip, hash).
    fn fill(&mut self, i: usize, key: (u8, u32, u32), state: State, mac: [u8; 6], now_ms: u64) {
        let (port, ip, hash) = key;
        self.slots[i] = Slot {
            ip,
            hash,
            port,
            state,
            mac,
            confirmed_ms: now_ms,
            last_request_ms: if state == State::Pending { now_ms } else { 0 },
        };
        self.len += 1;
        if state == State::Pending {
            self.n_pending += 1;
        }
    }

    /// Empties slot `hole` and shifts the rest of its probe chain back so
    /// that every entry stays reachable from its home slot (Knuth's
    /// algorithm R for linear probing). Entries only move into the hole,
    /// which starts at `hole` and moves forward, so an ageing cursor standing
    /// on `hole` sees each moved entry.
    fn remove_at(&mut self, mut hole: usize) {
        match self.slots[hole].state {
            State::Empty => return,
            State::Pending => self.n_pending -= 1,
            State::Resolved | State::Permanent => self.version += 1,
        }
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let s = self.slots[j];
            if s.state == State::Empty {
                break;
            }
            let home = s.hash as usize & self.mask;
            // `s` may fill the hole unless its home lies cyclically in
            // (hole, j], i.e. unless it is closer to home than the hole is.
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = Slot::EMPTY;
        self.len -= 1;
    }

    /// Looks up the MAC of next hop `ip` (host order) on `port`. Hot path:
    /// one hash and a short probe, no allocation.
    ///
    /// A hit on an entry past [`REACHABLE_MS`] still returns the MAC (ageing
    /// re-probes it). A miss makes a pending entry and returns
    /// [`Lookup::SendRequest`]; while it stays unanswered, at most one
    /// [`Lookup::SendRequest`] per [`RETRY_MS`], else [`Lookup::Pending`].
    /// [`Lookup::Refused`] when no entry can be made (see [`Refusal`]).
    #[inline]
    pub fn lookup(&mut self, port: u8, ip: u32, now_ms: u64) -> Lookup {
        if !is_unicast_ip(ip) {
            return Lookup::Refused(Refusal::BadAddress);
        }
        let hash = self.hash(port, ip);
        match self.probe(port, ip, hash) {
            Ok(i) => {
                let e = &mut self.slots[i];
                if e.state != State::Pending {
                    return Lookup::Hit(e.mac);
                }
                if now_ms.saturating_sub(e.last_request_ms) >= RETRY_MS {
                    e.last_request_ms = now_ms;
                    return Lookup::SendRequest;
                }
                Lookup::Pending
            }
            Err(_) if self.len >= self.capacity => Lookup::Refused(Refusal::TableFull),
            Err(_) if self.n_pending >= self.max_pending => Lookup::Refused(Refusal::PendingFull),
            Err(i) => {
                self.fill(i, (port, ip, hash), State::Pending, [0; 6], now_ms);
                Lookup::SendRequest
            }
        }
    }

    /// Records that `ip` (host order) is at `mac` (wire order) behind `port`,
    /// as learnt at `now_ms` from an ARP packet the caller accepted on that
    /// port, or from another worker. The caller decides *whether* to learn
    /// (the subnet check, RFC 826's merge rule); this refuses what is never
    /// true of a neighbour.
    ///
    /// Returns [`Learn::New`] (unknown or pending before), [`Learn::Updated`]
    /// (new MAC), [`Learn::Unchanged`] (same MAC; the entry is confirmed
    /// again), or [`Learn::Refused`] with [`Refusal::BadMac`],
    /// [`Refusal::BadAddress`], [`Refusal::TableFull`] or
    /// [`Refusal::Permanent`] (a permanent entry with another MAC; with the
    /// same MAC it is [`Learn::Unchanged`]).
    #[must_use]
    pub fn learn(&mut self, port: u8, ip: u32, mac: [u8; 6], now_ms: u64) -> Learn {
        if !is_unicast_mac(mac) {
            return Learn::Refused(Refusal::BadMac);
        }
        if !is_unicast_ip(ip) {
            return Learn::Refused(Refusal::BadAddress);
        }
        let hash = self.hash(port, ip);
        match self.probe(port, ip, hash) {
            Ok(i) => {
                let e = &mut self.slots[i];
                match e.state {
                    State::Permanent if e.mac == mac => Learn::Unchanged,
                    State::Permanent => Learn::Refused(Refusal::Permanent),
                    State::Pending => {
                        e.state = State::Resolved;
                        e.mac = mac;
                        e.confirmed_ms = now_ms;
                        self.n_pending -= 1;
                        self.version += 1;
                        Learn::New
                    }
                    State::Resolved | State::Empty => {
                        e.confirmed_ms = now_ms;
                        if e.mac == mac {
                            return Learn::Unchanged;
                        }
                        e.mac = mac;
                        self.version += 1;
                        Learn::Updated
                    }
                }
            }
            Err(_) if self.len >= self.capacity => Learn::Refused(Refusal::TableFull),
            Err(i) => {
                self.fill(i, (port, ip, hash), State::Resolved, mac, now_ms);
                self.version += 1;
                Learn::New
            }
        }
    }

    /// Installs a permanent entry (from the config's `neighbours`, like `ip
    /// neigh add ... nud permanent`): it never ages and ARP never changes
    /// it. Slow path.
    ///
    /// Configuration outranks learning: when the table is full, one learnt
    /// or pending entry is evicted to make room (this may delay the ageing
    /// of one other entry by one sweep). Returns [`Learn::New`],
    /// [`Learn::Updated`] (a learnt entry became permanent, or a permanent
    /// one got another MAC), [`Learn::Unchanged`], or [`Learn::Refused`]
    /// with [`Refusal::BadMac`], [`Refusal::BadAddress`] or
    /// [`Refusal::TableFull`] (every entry is permanent already).
    pub fn set_permanent(&mut self, port: u8, ip: u32, mac: [u8; 6]) -> Learn {
        if !is_unicast_mac(mac) {
            return Learn::Refused(Refusal::BadMac);
        }
        if !is_unicast_ip(ip) {
            return Learn::Refused(Refusal::BadAddress);
        }
        let hash = self.hash(port, ip);
        let mut at = self.probe(port, ip, hash);
        if let Ok(i) = at {
            let e = &mut self.slots[i];
            let before = (e.state, e.mac);
            e.state = State::Permanent;
            e.mac = mac;
            return match before {
                (State::Permanent, m) if m == mac => Learn::Unchanged,
                (State::Resolved, m) if m == mac => Learn::Updated,
                (State::Pending, _) => {
                    self.n_pending -= 1;
                    self.version += 1;
                    Learn::New
                }
                _ => {
                    self.version += 1;
                    Learn::Updated
                }
            };
        }
        if self.len >= self.capacity {
            // Prefer dropping an unresolved entry over a resolved one.
            let victim = (0..self.slots.len())
                .find(|&i| self.slots[i].state == State::Pending)
                .or_else(|| {
                    (0..self.slots.len()).find(|&i| self.slots[i].state == State::Resolved)
                });
            let Some(v) = victim else {
                return Learn::Refused(Refusal::TableFull);
            };
            self.remove_at(v);
            at = self.probe(port, ip, hash);
        }
        match at {
            Err(i) => {
                self.fill(i, (port, ip, hash), State::Permanent, mac, 0);
                self.version += 1;
                Learn::New
            }
            // Unreachable: the key was absent and eviction never adds one.
            Ok(_) => Learn::Unchanged,
        }
    }

    /// Ages the table at `now_ms`, examining at most `budget` slots from where
    /// the previous call stopped (wrapping around). Slow tick; no allocation.
    ///
    /// An entry (resolved or pending) unconfirmed for [`STALE_MS`] is
    /// removed. A resolved entry past [`REACHABLE_MS`] whose last request is
    /// older than [`RETRY_MS`] is offered to `on_probe(port, ip)`, which
    /// returns whether it queued the ARP request; on `false` the call stops
    /// there and the next call offers the same entry again (so a full
    /// outbox loses no probe). Permanent entries are never touched.
    ///
    /// Worst case: a removal re-examines its slot (the backward shift may
    /// have moved another entry there), and a full sweep removes at most the
    /// entries present when it started, so every entry is examined at least
    /// once every ⌈(slots + capacity) / budget⌉ calls: 192 calls at
    /// [`DEFAULT_CAPACITY`] and [`DEFAULT_AGE_BUDGET`] (192 ms at the 1 ms
    /// tick). An entry therefore goes stale, is re-probed or is removed at
    /// most that late.
    pub fn age(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut on_probe: impl FnMut(u8, u32) -> bool,
    ) -> AgeRound {
        let mut round = AgeRound::default();
        while round.visited < budget {
            round.visited += 1;
            let i = self.cursor;
            let e = self.slots[i];
            if matches!(e.state, State::Pending | State::Resolved) {
                let since = now_ms.saturating_sub(e.confirmed_ms);
                if since >= STALE_MS {
                    self.remove_at(i);
                    round.removed += 1;
                    // The cursor stays: slot i may hold a shifted entry now.
                    continue;
                }
                if e.state == State::Resolved
                    && since >= REACHABLE_MS
                    && now_ms.saturating_sub(e.last_request_ms) >= RETRY_MS
                {
                    if !on_probe(e.port, e.ip) {
                        break;
                    }
                    self.slots[i].last_request_ms = now_ms;
                    round.probed += 1;
                }
            }
            self.cursor = (i + 1) & self.mask;
        }
        round
    }

    /// Whether (`port`, `ip`) has an entry of any kind (resolved, pending or
    /// permanent). Entries on other ports do not count.
    pub fn knows(&self, port: u8, ip: u32) -> bool {
        self.probe(port, ip, self.hash(port, ip)).is_ok()
    }

    /// The resolved MAC of (`port`, `ip`), without side effects (no pending
    /// entry is made on a miss). For inspection: status, tests.
    pub fn mac(&self, port: u8, ip: u32) -> Option<[u8; 6]> {
        let i = self.probe(port, ip, self.hash(port, ip)).ok()?;
        let e = &self.slots[i];
        (e.state != State::Pending).then_some(e.mac)
    }

    /// A counter that changes whenever a [`Lookup::Hit`] answer may have
    /// changed (an address resolved, re-learnt with another MAC, made
    /// permanent with another MAC, evicted, or aged out). Equal versions mean
    /// every hit seen since is still the answer, so callers may cache hits
    /// keyed by it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of entries, resolved, pending or permanent (≤ capacity).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of pending (unresolved) entries (≤ `min(MAX_PENDING,
    /// capacity)`).
    pub fn n_pending(&self) -> usize {
        self.n_pending
    }

    /// Most entries the table holds, as given to [`NeighTable::new`] (at
    /// least 1).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of slots (a power of two ≥ 2 × capacity): what one ageing
    /// sweep walks.
    pub fn n_slots(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const M: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];
    const M2: [u8; 6] = [2, 0, 0, 0, 0, 0x0c];
    const RIP: u32 = 0x0a01_000b; // 10.1.0.11

    /// Checks the table's internal invariants: counts match the slots, every
    /// entry is reachable from its home slot and no key appears twice.
    fn check(t: &NeighTable) {
        let used: Vec<(usize, &Slot)> = t
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state != State::Empty)
            .collect();
        assert_eq!(used.len(), t.len, "len matches occupied slots");
        assert!(
            t.len <= t.capacity,
            "len {} > capacity {}",
            t.len,
            t.capacity
        );
        let pending = used
            .iter()
            .filter(|(_, s)| s.state == State::Pending)
            .count();
        assert_eq!(pending, t.n_pending, "n_pending matches pending slots");
        assert!(t.n_pending <= t.max_pending);
        for &(i, s) in &used {
            assert_eq!(s.hash, t.hash(s.port, s.ip), "stored hash");
            assert_eq!(
                t.probe(s.port, s.ip, s.hash),
                Ok(i),
                "entry reachable from its home"
            );
        }
    }

    #[test]
    fn test_slot_is_32_bytes() {
        // 2 slots per entry: 64 bytes of table per neighbour, 256 KiB per
        // worker at DEFAULT_CAPACITY (the figure docs/architecture.md gives).
        assert_eq!(core::mem::size_of::<Slot>(), 32);
        let t = NeighTable::new(DEFAULT_CAPACITY);
        assert_eq!(t.n_slots() * core::mem::size_of::<Slot>(), 256 << 10);
    }

    #[test]
    fn test_miss_then_learn() {
        let mut t = NeighTable::new(8);
        assert_eq!(t.lookup(1, RIP, 0), Lookup::SendRequest);
        assert_eq!(t.lookup(1, RIP, 10), Lookup::Pending);
        assert_eq!(t.lookup(1, RIP, RETRY_MS), Lookup::SendRequest);
        assert_eq!(t.n_pending(), 1);
        assert_eq!(t.learn(1, RIP, M, 1500), Learn::New);
        assert_eq!(t.n_pending(), 0);
        assert_eq!(t.lookup(1, RIP, 1600), Lookup::Hit(M));
        assert_eq!(
            t.learn(1, RIP, M, 1700),
            Learn::Unchanged,
            "same facts are no change"
        );
        assert_eq!(t.learn(1, RIP, M2, 1800), Learn::Updated);
        assert_eq!(t.lookup(1, RIP, 1900), Lookup::Hit(M2));
        assert_eq!(t.len(), 1);
        check(&t);
    }

    #[test]
    fn test_lookup_isolated_per_port() {
        let mut t = NeighTable::new(8);
        assert_eq!(t.learn(1, RIP, M, 0), Learn::New);
        // Learnt on port 1: port 0 knows nothing of it.
        assert!(t.knows(1, RIP));
        assert!(!t.knows(0, RIP));
        assert_eq!(t.mac(0, RIP), None);
        assert_eq!(t.lookup(0, RIP, 0), Lookup::SendRequest, "a miss on port 0");
        // A spoofed claim on port 0 resolves port 0's entry only.
        assert_eq!(t.learn(0, RIP, M2, 5), Learn::New);
        assert_eq!(t.lookup(1, RIP, 10), Lookup::Hit(M));
        assert_eq!(t.lookup(0, RIP, 10), Lookup::Hit(M2));
        assert_eq!(t.len(), 2);
        check(&t);
    }

    #[test]
    fn test_learn_refuses_bad_mac() {
        let mut t = NeighTable::new(8);
        let v = t.version();
        for mac in [
            [0xff; 6],                         // broadcast
            [0x01, 0x00, 0x5e, 0x00, 0x00, 1], // IPv4 multicast
            [0x33, 0x33, 0, 0, 0, 1],          // IPv6 multicast
            [0x03, 0, 0, 0, 0, 1],             // any I/G-bit address
            [0; 6],                            // all-zero
        ] {
            assert_eq!(
                t.learn(0, RIP, mac, 0),
                Learn::Refused(Refusal::BadMac),
                "{mac:02x?}"
            );
            assert_eq!(
                t.set_permanent(0, RIP, mac),
                Learn::Refused(Refusal::BadMac)
            );
        }
        assert!(t.is_empty());
        assert_eq!(t.version(), v);
        // A locally administered unicast MAC is fine.
        assert_eq!(t.learn(0, RIP, [0x02, 0, 0, 0, 0, 0], 0), Learn::New);
    }

    #[test]
    fn test_learn_refuses_bad_address() {
        let mut t = NeighTable::new(8);
        for ip in [
            0,
            0x00ff_ffff,
            0x7f00_0001,
            0xe000_0001,
            0xefff_ffff,
            0xf000_0001,
            u32::MAX,
        ] {
            assert_eq!(
                t.learn(0, ip, M, 0),
                Learn::Refused(Refusal::BadAddress),
                "{ip:#x}"
            );
            assert_eq!(
                t.lookup(0, ip, 0),
                Lookup::Refused(Refusal::BadAddress),
                "{ip:#x}"
            );
        }
        assert!(t.is_empty());
        assert_eq!(
            t.learn(0, 0xdfff_fffe, M, 0),
            Learn::New,
            "223.255.255.254 is unicast"
        );
    }

    #[test]
    fn test_permanent_never_ages_or_changes() {
        let mut t = NeighTable::new(8);
        assert_eq!(t.set_permanent(1, 9 << 24, M), Learn::New);
        assert_eq!(t.set_permanent(1, 9 << 24, M), Learn::Unchanged);
        assert_eq!(
            t.learn(1, 9 << 24, [2; 6], 5),
            Learn::Refused(Refusal::Permanent)
        );
        assert_eq!(t.learn(1, 9 << 24, M, 5), Learn::Unchanged);
        let r = t.age(10 * STALE_MS, t.n_slots(), |_, _| {
            panic!("permanent entries are not probed")
        });
        assert_eq!(r.removed, 0);
        assert_eq!(t.lookup(1, 9 << 24, 10 * STALE_MS), Lookup::Hit(M));
    }

    #[test]
    fn test_set_permanent_over_learnt_and_pending() {
        let mut t = NeighTable::new(8);
        let _ = t.learn(0, RIP, M, 0);
        let v = t.version();
        assert_eq!(
            t.set_permanent(0, RIP, M),
            Learn::Updated,
            "learnt → permanent"
        );
        assert_eq!(t.version(), v, "same MAC: hits unchanged");
        assert_eq!(t.set_permanent(0, RIP, M2), Learn::Updated);
        assert_eq!(t.version(), v + 1);
        assert_eq!(t.lookup(0, RIP + 1, 0), Lookup::SendRequest);
        assert_eq!(
            t.set_permanent(0, RIP + 1, M),
            Learn::New,
            "pending → permanent"
        );
        assert_eq!(t.n_pending(), 0);
        assert_eq!(t.lookup(0, RIP + 1, 0), Lookup::Hit(M));
        check(&t);
    }

    #[test]
    fn test_capacity_refuses_new_addresses() {
        let mut t = NeighTable::new(4);
        let slots = t.n_slots();
        assert_eq!(slots, 8);
        for k in 0..4 {
            assert_eq!(t.learn(0, RIP + k, M, 0), Learn::New);
        }
        assert_eq!(
            t.learn(0, RIP + 4, M, 0),
            Learn::Refused(Refusal::TableFull)
        );
        assert_eq!(
            t.learn(1, RIP, M, 0),
            Learn::Refused(Refusal::TableFull),
            "another port is another key"
        );
        assert_eq!(t.lookup(0, RIP + 4, 0), Lookup::Refused(Refusal::TableFull));
        // Known addresses still update.
        assert_eq!(t.learn(0, RIP, M2, 1), Learn::Updated);
        assert_eq!(t.len(), 4);
        assert_eq!(t.n_slots(), slots, "never grows");
        // Once entries age out there is room again.
        let r = t.age(STALE_MS, 2 * slots, |_, _| true);
        assert_eq!(r.removed, 3, "the entry refreshed at 1 ms is not stale yet");
        assert_eq!(t.learn(0, RIP + 4, M, STALE_MS), Learn::New);
        check(&t);
    }

    #[test]
    fn test_set_permanent_evicts_when_full() {
        let mut t = NeighTable::new(2);
        assert_eq!(t.learn(0, RIP, M, 0), Learn::New);
        assert_eq!(t.lookup(0, RIP + 1, 0), Lookup::SendRequest);
        // Full: the pending entry goes first.
        assert_eq!(t.set_permanent(0, RIP + 2, M2), Learn::New);
        assert!(!t.knows(0, RIP + 1));
        assert_eq!(t.mac(0, RIP), Some(M));
        let v = t.version();
        assert_eq!(
            t.set_permanent(0, RIP + 3, M2),
            Learn::New,
            "then a learnt one"
        );
        assert!(!t.knows(0, RIP));
        assert!(t.version() > v);
        assert_eq!(
            t.set_permanent(0, RIP + 4, M2),
            Learn::Refused(Refusal::TableFull)
        );
        check(&t);
    }

    #[test]
    fn test_pending_is_bounded() {
        let mut t = NeighTable::new(2 * MAX_PENDING);
        for k in 0..MAX_PENDING as u32 {
            assert_eq!(t.lookup(0, RIP + k, 0), Lookup::SendRequest);
        }
        assert_eq!(
            t.lookup(0, 0x0b00_0000, 0),
            Lookup::Refused(Refusal::PendingFull)
        );
        assert_eq!(t.len(), MAX_PENDING);
        // Resolved entries still fit beside them.
        assert_eq!(t.learn(0, 0x0b00_0000, M, 0), Learn::New);
        let n = t.n_slots();
        let r = t.age(STALE_MS, 2 * n, |_, _| true);
        assert_eq!(r.removed, MAX_PENDING + 1);
        assert!(t.is_empty());
        assert_eq!(t.lookup(0, 0x0b00_0001, STALE_MS), Lookup::SendRequest);
        // A small table bounds pending by its capacity.
        let mut s = NeighTable::new(3);
        for k in 0..3 {
            assert_eq!(s.lookup(0, RIP + k, 0), Lookup::SendRequest);
        }
        assert_eq!(s.lookup(0, RIP + 3, 0), Lookup::Refused(Refusal::TableFull));
    }

    #[test]
    fn test_ageing_reprobes_then_removes() {
        let mut t = NeighTable::new(8);
        let n = t.n_slots();
        let _ = t.learn(0, 7 << 24, M, 0);
        let mut probes = vec![];
        t.age(REACHABLE_MS - 1, n, |p, ip| {
            probes.push((p, ip));
            true
        });
        assert!(probes.is_empty());
        t.age(REACHABLE_MS, n, |p, ip| {
            probes.push((p, ip));
            true
        });
        assert_eq!(probes, vec![(0, 7 << 24)]);
        t.age(REACHABLE_MS + RETRY_MS - 1, n, |_, _| {
            panic!("re-probed within RETRY_MS")
        });
        assert_eq!(
            t.lookup(0, 7 << 24, REACHABLE_MS + 1),
            Lookup::Hit(M),
            "stale entries stay usable"
        );
        let v = t.version();
        let r = t.age(STALE_MS, n, |_, _| true);
        assert_eq!(r.removed, 1);
        assert!(!t.knows(0, 7 << 24));
        assert!(t.version() > v, "a resolved entry disappeared");
    }

    #[test]
    fn test_ageing_refused_probe_is_offered_again() {
        let mut t = NeighTable::new(8);
        let n = t.n_slots();
        let _ = t.learn(0, RIP, M, 0);
        let r = t.age(REACHABLE_MS, n, |_, _| false);
        assert_eq!(r.probed, 0);
        assert!(r.visited <= n);
        let mut got = vec![];
        let r = t.age(REACHABLE_MS, n, |p, ip| {
            got.push((p, ip));
            true
        });
        assert_eq!((r.probed, got), (1, vec![(0, RIP)]));
    }

    /// Incremental ageing: no call examines more than `budget` slots or
    /// removes/probes more than `budget` entries, and one sweep of
    /// ⌈(slots + capacity) / budget⌉ calls reaches every entry.
    #[test]
    fn test_ageing_is_incremental() {
        let cap = 300;
        let budget = 7;
        let mut t = NeighTable::new(cap);
        let n = t.n_slots();
        for k in 0..cap as u32 {
            assert_eq!(t.learn((k % 3) as u8, RIP + k, M, 0), Learn::New);
        }
        // Every entry past REACHABLE is probed once within n / budget calls.
        let mut seen: HashMap<(u8, u32), usize> = HashMap::new();
        for _ in 0..n.div_ceil(budget) {
            let mut this_call = 0;
            let r = t.age(REACHABLE_MS, budget, |p, ip| {
                *seen.entry((p, ip)).or_default() += 1;
                this_call += 1;
                true
            });
            assert!(r.visited <= budget && this_call <= budget, "{r:?}");
        }
        assert_eq!(seen.len(), cap, "every entry probed within one sweep");
        assert!(seen.values().all(|&c| c == 1), "probed once per RETRY_MS");
        // Removal: at most `budget` per call, all gone within one sweep.
        let calls = (n + cap).div_ceil(budget);
        for _ in 0..calls {
            let before = t.len();
            let r = t.age(STALE_MS, budget, |_, _| true);
            assert!(r.visited <= budget && r.removed <= budget);
            assert_eq!(before - t.len(), r.removed);
            check(&t);
        }
        assert!(t.is_empty(), "{} left after {calls} calls", t.len());
    }

    #[test]
    fn test_version_bumps() {
        let mut t = NeighTable::new(8);
        let n = t.n_slots();
        let mut v = t.version();
        let mut bumped = |t: &NeighTable, want: bool, what: &str| {
            assert_eq!(t.version() != v, want, "{what}");
            v = t.version();
        };
        let _ = t.learn(0, RIP, M, 0);
        bumped(&t, true, "new resolved entry");
        let _ = t.learn(0, RIP, M, 1);
        bumped(&t, false, "confirmation only");
        let _ = t.learn(0, RIP, M2, 2);
        bumped(&t, true, "MAC changed");
        let _ = t.learn(0, RIP, [0xff; 6], 3);
        bumped(&t, false, "refused");
        t.lookup(0, RIP + 1, 0);
        bumped(&t, false, "pending entry made");
        t.age(STALE_MS - 1, n, |_, _| true);
        bumped(&t, false, "nothing aged");
        let _ = t.learn(0, RIP + 2, M, STALE_MS - 1);
        bumped(&t, true, "another resolved entry");
        t.lookup(0, RIP + 3, STALE_MS - 1);
        bumped(&t, false, "pending");
        // At STALE_MS: RIP (confirmed at 2) and the pending RIP+1 go. A
        // removal uses up budget without moving the cursor, so a full sweep
        // with two removals needs n + 2 (wherever the random hash put them).
        t.age(STALE_MS + 2, n + 2, |_, _| true);
        bumped(&t, true, "a resolved entry aged out");
        let _ = t.learn(0, RIP + 3, M, STALE_MS + 3);
        bumped(&t, true, "pending resolved");
        t.age(2 * STALE_MS - 2, n, |_, _| true);
        assert!(t.knows(0, RIP + 2) && t.knows(0, RIP + 3));
        bumped(&t, false, "only probes");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Lookup(u8, u8),
        Learn(u8, u8, u8),
        Permanent(u8, u8, u8),
        Age(u16, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3, any::<u8>()).prop_map(|(p, i)| Op::Lookup(p, i)),
            (0u8..3, any::<u8>(), any::<u8>()).prop_map(|(p, i, m)| Op::Learn(p, i, m)),
            (0u8..3, any::<u8>(), any::<u8>()).prop_map(|(p, i, m)| Op::Permanent(p, i, m)),
            (any::<u16>(), 0u8..20).prop_map(|(dt, b)| Op::Age(dt, b)),
        ]
    }

    proptest! {
        /// Random operations never panic, never exceed capacity or the
        /// pending bound, keep every entry reachable (backward-shift deletion
        /// is sound) and answer with the last MAC learnt for that key.
        #[test]
        fn prop_random_ops_keep_invariants(cap in 1usize..24, ops in proptest::collection::vec(op(), 1..400)) {
            let mut t = NeighTable::new(cap);
            let mut now = 0u64;
            let mut model: HashMap<(u8, u32), [u8; 6]> = HashMap::new();
            let slots = t.n_slots();
            for o in ops {
                // Addresses 10.0.0.0..=10.0.0.255 plus a few bad ones.
                let addr = |i: u8| if i >= 250 { u32::from(i) << 24 } else { 0x0a00_0000 | u32::from(i) };
                // MAC byte 0 from the op: odd values are multicast, 0 gives zero MACs.
                let mac = |m: u8| if m == 0 { [0; 6] } else { [m & 0x03, 0, 0, 0, 1, m] };
                match o {
                    Op::Lookup(p, i) => {
                        let r = t.lookup(p, addr(i), now);
                        if let Lookup::Hit(m) = r {
                            prop_assert_eq!(Some(&m), model.get(&(p, addr(i))));
                        }
                    }
                    Op::Learn(p, i, m) => {
                        let r = t.learn(p, addr(i), mac(m), now);
                        if r.is_news() {
                            model.insert((p, addr(i)), mac(m));
                        }
                        if !is_unicast_mac(mac(m)) {
                            prop_assert_eq!(r, Learn::Refused(Refusal::BadMac));
                        }
                    }
                    Op::Permanent(p, i, m) => {
                        let r = t.set_permanent(p, addr(i), mac(m));
                        if r.is_news() {
                            model.insert((p, addr(i)), mac(m));
                        }
                    }
                    Op::Age(dt, b) => {
                        now += u64::from(dt) * 8;
                        let r = t.age(now, usize::from(b), |_, _| true);
                        prop_assert!(r.visited <= usize::from(b));
                    }
                }
                check(&t);
                prop_assert!(t.len() <= cap);
                prop_assert_eq!(t.n_slots(), slots);
                for s in t.slots.iter().filter(|s| matches!(s.state, State::Resolved | State::Permanent)) {
                    prop_assert_eq!(Some(&s.mac), model.get(&(s.port, s.ip)));
                }
            }
        }
    }
}
