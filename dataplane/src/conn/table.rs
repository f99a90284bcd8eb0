//! The per-worker connection table: a preallocated slab of entries, one hash
//! index over both directions' keys, and the expiry wheel.
//!
//! Layer: dataplane, connection table. Owned by exactly one worker: `&mut`
//! access, no locks, no atomics (docs/architecture.md, "Decisions and their reasons": flow
//! ownership).
//!
//! Layout (why it looks like this):
//! - the slab is a `Vec` of 40-byte entries, allocated whole in
//!   [`ConnTable::new`]; free entries form a LIFO list through their wheel
//!   link, so insertion pops an index and removal pushes it back;
//! - an entry holds the connection's key fields once. They are fixed at
//!   insertion: [`ConnTable::get`] returns a copy and only the state can
//!   be changed ([`ConnTable::set_state`]; real-server ids are stable
//!   across snapshots, see `control::compile`), so the index can never
//!   point at keys that changed under it;
//! - the index (`index.rs`) is a bucketed hash of cache-line buckets
//!   holding `slab index | direction bit` values with 16-bit tags. It
//!   stores no key: equality is checked against the slab entry, which the
//!   lookup has to read anyway. It is sized for `2 × max_conns` keys at
//!   80 % load (16 bytes per connection) and deletes without tombstones, so
//!   churn never reallocates or degrades it. Total: 56 bytes per
//!   connection of capacity;
//! - [`ConnTable::hash`], [`ConnTable::prefetch_index`] and
//!   [`ConnTable::prefetch_entry`] let the worker hash a whole RX burst and
//!   start its memory loads before processing the first packet.
//!
//! Hashing: the 5-tuple packed into a `u128`, hashed by
//! `ahash::RandomState::new()`, seeded at random per table. The
//! keys are chosen by the clients (source address and port), so a fixed
//! seed would let an attacker precompute colliding flows and turn every
//! lookup into a long probe; nothing needs the hash to be stable across
//! workers or restarts (flow ownership uses its own hash, see `owner`).
//!
//! Guarantees: after construction no method allocates, none panics for any
//! argument value (ids, keys, timeouts, clock), and every operation except
//! [`ConnTable::expire`] is O(1) expected; `expire` does at most `budget`
//! entry visits plus at most [`WHEEL_SLOTS`](super::WHEEL_SLOTS) empty-slot
//! checks.
//!
//! Refuses: more than [`MAX_CONNS`] entries (the top bit of an index value
//! is the direction). It does not evict live connections when full: the
//! insert fails and the packet path decides (count, or fall back).

use super::index::{prefetch_read, BucketIndex};
use super::wheel::{self, Link, Linked, Wheel, DETACHED, FREE, NIL};
use super::{Conn, ConnId, ConnRecord, Dir, FlowKey, InsertError, TcpState};
use crate::snapshot::{ClientAddress, Method};

/// Largest `max_conns` a table accepts (2^31 − 1); [`ConnTable::new`]
/// clamps larger values. Bit 31 of an index value marks the outbound key.
pub const MAX_CONNS: u32 = (1 << 31) - 1;

/// Bit of an index value that marks the outbound (NAT reply) key.
const OUT_BIT: u32 = 1 << 31;
/// Slab index part of an index value.
const IDX_MASK: u32 = OUT_BIT - 1;

/// One slab entry: the connection's key fields (fixed at insertion), its
/// mutable fields and its wheel link. 40 bytes.
#[derive(Clone, Copy, Debug)]
struct Entry {
    cip: u32,
    vip: u32,
    rip: u32,
    real: u32,
    cport: u16,
    vport: u16,
    rport: u16,
    service: u16,
    proto: u8,
    /// Forwarding method. NAT and FullNAT entries also own an outbound key;
    /// FullNAT's extra fields live in the table's side array
    /// (`ConnTable::fnat`).
    method: Method,
    state: TcpState,
    link: Link,
}

/// The FullNAT fields of one connection, beside its slab entry (same
/// index), so that NAT and DR entries keep their 40 bytes: the array is
/// allocated only once a snapshot has a FullNAT real server. 12 bytes.
#[derive(Clone, Copy, Debug)]
struct FnatExt {
    lip: u32,
    isn1: u32,
    lport: u16,
    client_address: ClientAddress,
}

const FNAT_BLANK: FnatExt = FnatExt {
    lip: 0,
    isn1: 0,
    lport: 0,
    client_address: ClientAddress::None,
};

const _: () = assert!(core::mem::size_of::<FnatExt>() == 12);

impl Entry {
    fn in_use(&self) -> bool {
        self.link.prev != FREE
    }

    fn of(c: &Conn, link: Link) -> Entry {
        Entry {
            cip: c.cip,
            vip: c.vip,
            rip: c.rip,
            real: c.real,
            cport: c.cport,
            vport: c.vport,
            rport: c.rport,
            service: c.service,
            proto: c.proto,
            method: c.method,
            state: c.state,
            link,
        }
    }

    /// The connection, with `ext`'s FullNAT fields when it is FullNAT.
    fn conn(&self, ext: Option<&FnatExt>) -> Conn {
        let x = match (self.method, ext) {
            (Method::FullNat, Some(x)) => *x,
            _ => FNAT_BLANK,
        };
        Conn {
            cip: self.cip,
            cport: self.cport,
            vip: self.vip,
            vport: self.vport,
            rip: self.rip,
            rport: self.rport,
            proto: self.proto,
            method: self.method,
            real: self.real,
            service: self.service,
            state: self.state,
            lip: x.lip,
            lport: x.lport,
            client_address: x.client_address,
            isn1: x.isn1,
        }
    }

    /// Whether this entry, slab index `i`, has key `k` for direction `dir`;
    /// `fnat` is the table's FullNAT side array (a FullNAT outbound key's
    /// destination is LIP:lport), read only for that key.
    #[inline]
    fn has_key(&self, dir: Dir, k: &FlowKey, fnat: &[FnatExt], i: usize) -> bool {
        let (src_ip, dst_ip, src_port, dst_port) = match (dir, self.method) {
            (Dir::In, _) => (self.cip, self.vip, self.cport, self.vport),
            (Dir::Out, Method::FullNat) => match fnat.get(i) {
                Some(x) => (self.rip, x.lip, self.rport, x.lport),
                None => return false,
            },
            (Dir::Out, _) => (self.rip, self.cip, self.rport, self.cport),
        };
        src_ip == k.src_ip
            && dst_ip == k.dst_ip
            && src_port == k.src_port
            && dst_port == k.dst_port
            && self.proto == k.proto
    }
}

impl Linked for Entry {
    fn link(&self) -> &Link {
        &self.link
    }
    fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}

// The design budget (docs/architecture.md): one connection entry fits in a cache line's worth of
// bytes; issue 4's: ≤ 64 bytes per connection with the index. Checked at
// compile time so a new field cannot silently break it.
const _: () = assert!(core::mem::size_of::<Entry>() == 40);

/// The content of a free entry (only its link matters).
const BLANK: Entry = Entry {
    cip: 0,
    vip: 0,
    rip: 0,
    real: 0,
    cport: 0,
    vport: 0,
    rport: 0,
    service: 0,
    proto: 0,
    method: Method::Dr,
    state: TcpState::None,
    link: Link {
        next: NIL,
        prev: FREE,
        expire_tick: 0,
    },
};

/// Direction encoded in an index value.
fn dir_of(v: u32) -> Dir {
    if v & OUT_BIT != 0 {
        Dir::Out
    } else {
        Dir::In
    }
}

/// A 5-tuple packed into one `u128` (addresses, ports, protocol), so it is
/// hashed in a single `write_u128`.
#[inline]
fn pack(k: &FlowKey) -> u128 {
    (u128::from(k.src_ip) << 96)
        | (u128::from(k.dst_ip) << 64)
        | (u128::from(k.src_port) << 48)
        | (u128::from(k.dst_port) << 32)
        | u128::from(k.proto)
}

/// A worker's connection table. See the module documentation.
#[derive(Debug)]
#[repr(align(64))]
pub struct ConnTable {
    /// All entries, live and free; length `max`, never reallocated.
    slab: Vec<Entry>,
    /// FullNAT fields by slab index: empty until
    /// [`ConnTable::enable_fullnat`], then length `max`.
    fnat: Vec<FnatExt>,
    /// `slab index | OUT_BIT for outbound` for every key of every live entry.
    index: BucketIndex,
    hasher: ahash::RandomState,
    wheel: Wheel,
    /// First free entry, [`NIL`] when full.
    free_head: u32,
    /// Live connections.
    len: u32,
    /// Capacity, `max_conns` after clamping.
    max: u32,
}

impl ConnTable {
    /// Bytes of one slab entry (key fields, mutable fields, wheel link): 40.
    pub const ENTRY_BYTES: usize = core::mem::size_of::<Entry>();

    /// A table for at most `max_conns` live connections (clamped to
    /// [`MAX_CONNS`]). Allocates everything it will ever use: the slab
    /// (`max_conns × 40` bytes), the index (64-byte buckets for
    /// `2 × max_conns` keys at 80 % load: 16 bytes per connection) and the
    /// wheel heads (64 KiB). The slab is written once here (the free list),
    /// so its pages are resident from the start; the index is zero-cost
    /// until touched only where the allocator hands out fresh pages.
    ///
    /// # Panics
    /// Only if the allocation fails (Rust's usual out-of-memory abort).
    pub fn new(max_conns: u32) -> Self {
        let max = max_conns.min(MAX_CONNS);
        // Huge pages where the kernel allows (see `hwinit::thp`), asked for
        // before the entries below touch the memory.
        let (mut slab, _) = hwinit::thp::with_capacity(max as usize);
        for i in 0..max {
            let next = if i + 1 < max { i + 1 } else { NIL };
            slab.push(Entry {
                link: Link::free(next),
                ..BLANK
            });
        }
        ConnTable {
            slab,
            fnat: Vec::new(),
            index: BucketIndex::with_keys(2 * max as usize),
            hasher: ahash::RandomState::new(),
            wheel: Wheel::new(),
            free_head: if max == 0 { NIL } else { 0 },
            len: 0,
            max,
        }
    }

    /// Allocates the FullNAT side array (12 bytes per connection of
    /// capacity) if it is not there yet, so that FullNAT connections can be
    /// inserted. Slow path: the worker calls it when it adopts a snapshot
    /// with a FullNAT real server; a table that never sees one never pays
    /// for it.
    pub fn enable_fullnat(&mut self) {
        if self.fnat.len() < self.slab.len() {
            self.fnat = vec![FNAT_BLANK; self.slab.len()];
        }
    }

    /// Whether [`ConnTable::enable_fullnat`] was called.
    pub fn fullnat_enabled(&self) -> bool {
        !self.fnat.is_empty() || self.slab.is_empty()
    }

    /// The connection in slab slot `i` (live or not), FullNAT fields
    /// included.
    #[inline]
    fn conn_at(&self, i: usize) -> Option<Conn> {
        let e = self.slab.get(i)?;
        Some(e.conn(self.fnat.get(i)))
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no connection is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most live connections the table holds (`max_conns` after clamping).
    pub fn capacity(&self) -> usize {
        self.max as usize
    }

    /// Bytes this table allocated: the slab, the index buckets and the
    /// wheel heads. Divide by [`ConnTable::capacity`] for bytes per
    /// connection including both hash keys (56 for large tables).
    pub fn memory_bytes(&self) -> usize {
        self.slab.capacity() * Self::ENTRY_BYTES
            + self.fnat.capacity() * core::mem::size_of::<FnatExt>()
            + self.index.memory_bytes()
            + wheel::WHEEL_SLOTS * 4
    }

    /// The hash [`ConnTable::lookup`] uses for `key` (keyed per table).
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(pack(key))
    }

    /// Starts loading the index line for `hash` (from [`ConnTable::hash`])
    /// into cache, so a lookup a few packets later does not wait for
    /// memory. A hint: no effect on results.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Starts loading the slab entry of the first candidate for `key`
    /// (whose index line should already be cached by
    /// [`ConnTable::prefetch_index`]). A hint: no effect on results.
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) {
        let slab = &self.slab;
        self.index.find(hash, |v| {
            if let Some(e) = slab.get((v & IDX_MASK) as usize) {
                prefetch_read(e);
            }
            true
        });
    }

    #[inline]
    fn find(&self, hash: u64, key: &FlowKey) -> Option<u32> {
        let (slab, fnat) = (&self.slab, &self.fnat);
        self.index.find(hash, |v| {
            let i = (v & IDX_MASK) as usize;
            slab.get(i)
                .is_some_and(|e| e.has_key(dir_of(v), key, fnat, i))
        })
    }

    /// Finds the connection a packet with 5-tuple `key` belongs to, and
    /// whether the packet matched its inbound key ([`Dir::In`], client → VIP)
    /// or its outbound key ([`Dir::Out`], NAT reply). `None` when no live
    /// connection has that key. O(1) expected; no allocation.
    ///
    /// Mirrors `ip_vs_conn_in_get` / `ip_vs_conn_out_get` in
    /// `net/netfilter/ipvs/ip_vs_conn.c`, merged into one probe.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<(ConnId, Dir)> {
        self.lookup_hashed(self.hash(key), key)
    }

    /// [`ConnTable::lookup`] with the hash already computed by
    /// [`ConnTable::hash`] for the same key (a wrong hash finds nothing; it
    /// never returns another key's connection).
    #[inline]
    pub fn lookup_hashed(&self, hash: u64, key: &FlowKey) -> Option<(ConnId, Dir)> {
        let v = self.find(hash, key)?;
        Some((ConnId(v & IDX_MASK), dir_of(v)))
    }

    /// Inserts `conn`, expiring `timeout_ms` after `now_ms` (both
    /// milliseconds on the worker's monotonic clock).
    ///
    /// Keys: inbound `cip:cport → vip:vport`; for [`Method::Nat`] also
    /// outbound `rip:rport → cip:cport`, for [`Method::FullNat`] outbound
    /// `rip:rport → lip:lport` (all with `proto`). They are taken
    /// from `conn` now and kept for the connection's life, as are FullNAT's
    /// `lip`, `lport`, `client_address` and `isn1`.
    ///
    /// # Errors
    /// - [`InsertError::TableFull`] when `capacity()` connections are live
    ///   (checked first), or for a FullNAT connection before
    ///   [`ConnTable::enable_fullnat`];
    /// - [`InsertError::Exists`] when either key is already in the table, or
    ///   when a NAT connection's two keys are equal.
    ///
    /// In both cases nothing changed.
    pub fn insert(
        &mut self,
        conn: Conn,
        timeout_ms: u32,
        now_ms: u64,
    ) -> Result<ConnId, InsertError> {
        if self.len >= self.max || (conn.method == Method::FullNat && self.fnat.is_empty()) {
            return Err(InsertError::TableFull);
        }
        let k_in = conn.inbound_key();
        let h_in = self.hash(&k_in);
        if self.find(h_in, &k_in).is_some() {
            return Err(InsertError::Exists);
        }
        let h_out = match conn.outbound_key() {
            Some(k_out) => {
                let h = self.hash(&k_out);
                if k_out == k_in || self.find(h, &k_out).is_some() {
                    return Err(InsertError::Exists);
                }
                Some(h)
            }
            None => None,
        };
        let idx = self.free_head;
        let Some(e) = self.slab.get_mut(idx as usize) else {
            // `len < max` guarantees a free entry; stay total anyway.
            return Err(InsertError::TableFull);
        };
        let next_free = e.link.next;
        // The index holds 10 slots per 8 keys of capacity, so with
        // `len < max` both inserts find room; checked anyway.
        if !self.index.insert(h_in, idx) {
            return Err(InsertError::TableFull);
        }
        if let Some(h) = h_out {
            if !self.index.insert(h, idx | OUT_BIT) {
                self.index.remove(h_in, idx);
                return Err(InsertError::TableFull);
            }
        }
        self.free_head = next_free;
        if let Some(e) = self.slab.get_mut(idx as usize) {
            *e = Entry::of(
                &conn,
                Link {
                    next: NIL,
                    prev: DETACHED,
                    expire_tick: wheel::expire_tick(now_ms, timeout_ms),
                },
            );
        }
        if conn.method == Method::FullNat {
            if let Some(x) = self.fnat.get_mut(idx as usize) {
                *x = FnatExt {
                    lip: conn.lip,
                    isn1: conn.isn1,
                    lport: conn.lport,
                    client_address: conn.client_address,
                };
            }
        }
        self.wheel.file(&mut self.slab, idx);
        self.len += 1;
        Ok(ConnId(idx))
    }

    /// The live connection `id` (a copy), or `None` for a free slot or an
    /// id out of range.
    #[inline]
    pub fn get(&self, id: ConnId) -> Option<Conn> {
        let i = id.0 as usize;
        self.slab
            .get(i)
            .filter(|e| e.in_use())
            .map(|e| e.conn(self.fnat.get(i)))
    }

    /// Sets the IPVS state of connection `id` and returns the connection as
    /// it is now; `None` (nothing changed) for a free slot or an id out of
    /// range. The key fields cannot be changed after insertion.
    #[inline]
    pub fn set_state(&mut self, id: ConnId, state: TcpState) -> Option<Conn> {
        let i = id.0 as usize;
        let e = self.slab.get_mut(i).filter(|e| e.in_use())?;
        e.state = state;
        let e = *e;
        Some(e.conn(self.fnat.get(i)))
    }

    /// Sets connection `id` to expire `timeout_ms` after `now_ms`
    /// (milliseconds), like IPVS re-arming `cp->timer` on every packet.
    /// O(1): a later expiry only rewrites a field and the wheel re-files the
    /// entry lazily when its old slot comes up; an earlier one (e.g.
    /// ESTABLISHED → CLOSE) re-files it at once. No-op on a stale id.
    pub fn touch(&mut self, id: ConnId, timeout_ms: u32, now_ms: u64) {
        if self.get(id).is_none() {
            return;
        }
        let e = wheel::expire_tick(now_ms, timeout_ms);
        self.wheel.reschedule(&mut self.slab, id.0, e);
    }

    /// Expires due connections: advances the wheel up to `now_ms`
    /// (milliseconds, same clock as `insert`/`touch`), looking at no more
    /// than `budget` entries (those not reached wait for the next call), and
    /// calls `on_expire` with each connection *before* removing it (so the
    /// caller can fix activeconns/inactconns). Returns how many were
    /// removed.
    ///
    /// A connection is removed by the first call whose `now_ms` is at least
    /// its expiry rounded up to the next [`TICK_MS`](super::TICK_MS) boundary — never
    /// earlier, at most one tick later — provided earlier calls were not cut
    /// short by `budget`. Entries whose expiry was moved later by `touch`
    /// are re-filed and count against `budget` without being removed.
    ///
    /// Mirrors `ip_vs_conn_expire` (`net/netfilter/ipvs/ip_vs_conn.c`),
    /// driven from the worker's slow tick instead of kernel timers.
    pub fn expire(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut on_expire: impl FnMut(&Conn),
    ) -> usize {
        let target = now_ms / wheel::TICK_MS;
        self.wheel.catch_up(target);
        let mut left = budget;
        let mut removed = 0;
        while let Some(i) = self.wheel.pop_due(&mut self.slab, target, &mut left) {
            if let Some(c) = self.conn_at(i as usize) {
                on_expire(&c);
            }
            self.release(i);
            removed += 1;
        }
        removed
    }

    /// Removes connection `id` now (e.g. when its real server is deleted).
    /// No-op on a stale id.
    pub fn remove(&mut self, id: ConnId) {
        if self.get(id).is_none() {
            return;
        }
        self.wheel.unlink(&mut self.slab, id.0);
        self.release(id.0);
    }

    /// Copies live connections into `out` for a listing (`ipvsadm -Lcn`),
    /// visiting slab slots from `cursor` on in index order: at most
    /// `scan_budget` slots, and never more records than `out` has spare
    /// capacity for (so it never allocates). Each record's `expire_ms` is
    /// what is left of its timer at `now_ms` (0 when due).
    ///
    /// Returns the slot to resume from, or `None` when the end of the slab
    /// was reached. The cursor is a slab index, so a listing that resumes
    /// with it sees every connection that lived throughout the listing
    /// exactly once; connections created or expired meanwhile may or may not
    /// appear (as with `/proc/net/ip_vs_conn`, read in pages).
    pub fn dump(
        &self,
        cursor: u32,
        now_ms: u64,
        scan_budget: usize,
        out: &mut Vec<ConnRecord>,
    ) -> Option<u32> {
        let now_tick = now_ms / wheel::TICK_MS;
        let mut i = cursor as usize;
        let mut scanned = 0;
        while i < self.slab.len() {
            if scanned >= scan_budget || out.len() >= out.capacity() {
                return Some(i as u32);
            }
            let e = &self.slab[i];
            if e.in_use() {
                // Wrapping tick arithmetic, as the wheel keeps it.
                let ahead = e.link.expire_tick.wrapping_sub(now_tick as u32) as i32;
                let expire_ms = if ahead <= 0 {
                    0
                } else {
                    (ahead as u64 * wheel::TICK_MS).saturating_sub(now_ms % wheel::TICK_MS)
                };
                out.push(ConnRecord {
                    proto: e.proto,
                    state: e.state,
                    expire_ms: expire_ms.min(u64::from(u32::MAX)) as u32,
                    cip: e.cip,
                    cport: e.cport,
                    vip: e.vip,
                    vport: e.vport,
                    rip: e.rip,
                    rport: e.rport,
                });
            }
            scanned += 1;
            i += 1;
        }
        None
    }

    /// Drops entry `i`'s keys from the index and puts it on the free list.
    /// The entry must be live and already out of the wheel.
    fn release(&mut self, i: u32) {
        let Some(c) = self
            .slab
            .get(i as usize)
            .filter(|e| e.in_use())
            .and_then(|_| self.conn_at(i as usize))
        else {
            return;
        };
        let h_in = self.hash(&c.inbound_key());
        self.index.remove(h_in, i);
        if let Some(k) = c.outbound_key() {
            let h = self.hash(&k);
            self.index.remove(h, i | OUT_BIT);
        }
        if let Some(e) = self.slab.get_mut(i as usize) {
            e.link = Link::free(self.free_head);
        }
        self.free_head = i;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Timeouts;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const TICK: u64 = wheel::TICK_MS;

    fn conn(cip: u32, cport: u16, method: Method) -> Conn {
        Conn {
            cip,
            cport,
            vip: 0x0a00_0064,
            vport: 80,
            rip: 0x0a01_0002,
            rport: 8080,
            proto: 6,
            method,
            real: 1,
            service: 0,
            state: TcpState::SynRecv,
            lip: 0,
            lport: 0,
            client_address: ClientAddress::None,
            isn1: 0,
        }
    }

    fn in_key(c: &Conn) -> FlowKey {
        c.inbound_key()
    }

    #[test]
    fn test_dump_slices_and_expiry() {
        let mut t = ConnTable::new(16);
        let mut ids = Vec::new();
        for p in 0..5u16 {
            ids.push(
                t.insert(conn(0xc0a8_0001, 1000 + p, Method::Nat), 60_000, 0)
                    .unwrap(),
            );
        }
        t.remove(ids[2]);
        t.set_state(ids[0], TcpState::Established);
        // Two records per slice: the cursor resumes where the last stopped.
        let mut all = Vec::new();
        let mut cursor = 0;
        let mut slices = 0;
        loop {
            let mut buf = Vec::with_capacity(2);
            let next = t.dump(cursor, 1000, 1 << 20, &mut buf);
            assert!(buf.len() <= 2);
            all.extend(buf);
            slices += 1;
            match next {
                Some(c) => cursor = c,
                None => break,
            }
        }
        assert!(slices >= 2);
        let mut ports: Vec<u16> = all.iter().map(|r| r.cport).collect();
        ports.sort_unstable();
        assert_eq!(ports, vec![1000, 1001, 1003, 1004]);
        let r0 = all.iter().find(|r| r.cport == 1000).unwrap();
        assert_eq!(r0.state, TcpState::Established);
        assert_eq!(
            (r0.vip, r0.vport, r0.rip, r0.rport, r0.proto),
            (0x0a00_0064, 80, 0x0a01_0002, 8080, 6)
        );
        // 60 s timer armed at 0, read at 1 s: 59 s left, rounded up to the
        // wheel's tick (never early).
        assert!(
            (59_000..59_000 + TICK).contains(&u64::from(r0.expire_ms)),
            "{r0:?}"
        );
        // A scan budget of 1 slot stops after one slot.
        let mut buf = Vec::with_capacity(8);
        assert_eq!(t.dump(0, 0, 1, &mut buf), Some(1));
        assert_eq!(buf.len(), 1);
        // Due timers read 0, not a wrapped huge value.
        let mut buf = Vec::with_capacity(8);
        assert_eq!(t.dump(0, 120_000, 1 << 20, &mut buf), None);
        assert!(buf.iter().all(|r| r.expire_ms == 0));
    }

    #[test]
    fn test_sizes() {
        assert_eq!(core::mem::size_of::<Conn>(), 40);
        assert_eq!(core::mem::size_of::<Link>(), 12);
        assert_eq!(ConnTable::ENTRY_BYTES, 40);
    }

    #[test]
    fn test_memory_bytes() {
        let t = ConnTable::new(1 << 20);
        // 40 MiB of slab + 2 Mi keys / 8 per 64-byte bucket = 16 MiB of
        // index + 64 KiB of wheel heads: 56 bytes per connection (issue 4's
        // budget is 64).
        assert_eq!(t.memory_bytes(), (40 << 20) + (16 << 20) + (64 << 10));
        let per_conn = t.memory_bytes() as f64 / t.capacity() as f64;
        assert!(per_conn > 56.0 && per_conn < 56.1, "{per_conn}");
        // An empty table still has one index bucket.
        assert_eq!(
            ConnTable::new(0).memory_bytes(),
            wheel::WHEEL_SLOTS * 4 + 64
        );
    }

    #[test]
    fn test_lookup_nat() {
        let mut t = ConnTable::new(8);
        let c = conn(0xc0a8_0001, 40000, Method::Nat);
        let id = t.insert(c, 60_000, 0).unwrap();
        assert_eq!(t.lookup(&in_key(&c)), Some((id, Dir::In)));
        assert_eq!(t.lookup(&c.outbound_key().unwrap()), Some((id, Dir::Out)));
        assert_eq!(t.get(id), Some(c));
        assert_eq!(t.len(), 1);
        // Same tuple, other protocol / other port / reversed: no match.
        let mut k = in_key(&c);
        k.proto = 17;
        assert_eq!(t.lookup(&k), None);
        let mut k = in_key(&c);
        k.src_port += 1;
        assert_eq!(t.lookup(&k), None);
        let k = in_key(&c);
        let rev = FlowKey {
            src_ip: k.dst_ip,
            dst_ip: k.src_ip,
            src_port: k.dst_port,
            dst_port: k.src_port,
            proto: 6,
        };
        assert_eq!(t.lookup(&rev), None);
    }

    #[test]
    fn test_lookup_fullnat() {
        let mut t = ConnTable::new(8);
        let c = Conn {
            lip: 0x0a01_0064,
            lport: 1024,
            client_address: ClientAddress::ProxyV2,
            isn1: 1001,
            ..conn(0xc0a8_0001, 40000, Method::FullNat)
        };
        // No side array yet: refused, nothing inserted.
        assert_eq!(t.insert(c, 60_000, 0), Err(InsertError::TableFull));
        assert!(t.is_empty());
        t.enable_fullnat();
        assert!(t.fullnat_enabled());
        let id = t.insert(c, 60_000, 0).unwrap();
        assert_eq!(t.get(id), Some(c));
        assert_eq!(t.lookup(&in_key(&c)), Some((id, Dir::In)));
        let out = c.outbound_key().unwrap();
        assert_eq!((out.dst_ip, out.dst_port), (0x0a01_0064, 1024));
        assert_eq!(t.lookup(&out), Some((id, Dir::Out)));
        // The NAT-style reply key (to the client) is not this connection's.
        let nat_out = Conn {
            method: Method::Nat,
            ..c
        }
        .outbound_key()
        .unwrap();
        assert_eq!(t.lookup(&nat_out), None);
        // The expiry callback sees the FullNAT fields (to free the lport).
        let mut seen = Vec::new();
        t.expire(120_000, usize::MAX, |x| seen.push((x.lip, x.lport)));
        assert_eq!(seen, vec![(0x0a01_0064, 1024)]);
        assert_eq!(t.lookup(&out), None);
        // 12 more bytes per connection of capacity once enabled.
        let mut big = ConnTable::new(1 << 10);
        let before = big.memory_bytes();
        big.enable_fullnat();
        assert_eq!(big.memory_bytes() - before, 12 << 10);
    }

    #[test]
    fn test_lookup_dr_inbound_only() {
        let mut t = ConnTable::new(8);
        let c = conn(0xc0a8_0001, 40000, Method::Dr);
        let id = t.insert(c, 60_000, 0).unwrap();
        assert_eq!(t.lookup(&in_key(&c)), Some((id, Dir::In)));
        let would_be_out = Conn {
            method: Method::Nat,
            ..c
        }
        .outbound_key()
        .unwrap();
        assert_eq!(t.lookup(&would_be_out), None);
        assert_eq!(
            t.lookup(&FlowKey {
                src_ip: 1,
                dst_ip: 2,
                src_port: 3,
                dst_port: 4,
                proto: 6
            }),
            None
        );
    }

    #[test]
    fn test_insert_exists() {
        let mut t = ConnTable::new(8);
        let a = conn(0xc0a8_0001, 40000, Method::Nat);
        let id = t.insert(a, 60_000, 0).unwrap();
        // Same inbound key.
        assert_eq!(
            t.insert(
                Conn {
                    rip: 0x0a01_0003,
                    ..a
                },
                1,
                0
            ),
            Err(InsertError::Exists)
        );
        // Different inbound key (other VIP) but same outbound key.
        assert_eq!(
            t.insert(
                Conn {
                    vip: 0x0a00_0065,
                    ..a
                },
                1,
                0
            ),
            Err(InsertError::Exists)
        );
        // A DR connection only collides on its inbound key.
        assert_eq!(
            t.insert(
                Conn {
                    method: Method::Dr,
                    ..a
                },
                1,
                0
            ),
            Err(InsertError::Exists)
        );
        // NAT with both keys equal.
        let same = Conn {
            cip: 5,
            cport: 7,
            vip: 5,
            vport: 7,
            rip: 5,
            rport: 7,
            ..a
        };
        assert_eq!(t.insert(same, 1, 0), Err(InsertError::Exists));
        // Unchanged.
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(id), Some(a));
        assert_eq!(t.lookup(&a.outbound_key().unwrap()), Some((id, Dir::Out)));
        let mut n = 0;
        assert_eq!(t.expire(60_000 + TICK, usize::MAX, |_| n += 1), 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn test_table_full_and_reuse() {
        let mut t = ConnTable::new(4);
        let mut ids = Vec::new();
        for p in 0..4 {
            ids.push(t.insert(conn(1, p, Method::Nat), 1_000, 0).unwrap());
        }
        assert_eq!(t.len(), 4);
        assert_eq!(
            t.insert(conn(1, 99, Method::Nat), 1_000, 0),
            Err(InsertError::TableFull)
        );
        // Full is checked before Exists.
        assert_eq!(
            t.insert(conn(1, 0, Method::Nat), 1_000, 0),
            Err(InsertError::TableFull)
        );
        assert_eq!(t.expire(1_000 + TICK, usize::MAX, |_| {}), 4);
        assert!(t.is_empty());
        for id in &ids {
            assert_eq!(t.get(*id), None);
        }
        for p in 10..14 {
            let id = t.insert(conn(1, p, Method::Nat), 1_000, 2_000).unwrap();
            assert!(id.0 < 4);
        }
        assert_eq!(t.len(), 4);
        // A zero-capacity table is always full.
        let mut z = ConnTable::new(0);
        assert_eq!(
            z.insert(conn(1, 1, Method::Dr), 1, 0),
            Err(InsertError::TableFull)
        );
        assert_eq!(z.expire(u64::MAX, usize::MAX, |_| {}), 0);
    }

    #[test]
    fn test_expire_timing() {
        let mut t = ConnTable::new(8);
        let c = conn(0xc0a8_0001, 40000, Method::Nat);
        let id = t.insert(c, 10_000, 0).unwrap();
        let mut seen = Vec::new();
        assert_eq!(t.expire(9_000, usize::MAX, |x| seen.push(*x)), 0);
        assert_eq!(t.expire(9_999, usize::MAX, |x| seen.push(*x)), 0);
        assert_eq!(t.get(id), Some(c));
        assert_eq!(t.expire(10_000 + TICK, usize::MAX, |x| seen.push(*x)), 1);
        assert_eq!(seen, vec![c]);
        assert_eq!(t.get(id), None);
        assert_eq!(t.lookup(&in_key(&c)), None);
        assert_eq!(t.lookup(&c.outbound_key().unwrap()), None);
        assert!(t.is_empty());
    }

    #[test]
    fn test_expire_at_tick_boundary() {
        // 64 000 ms is a tick boundary: due exactly then, not one ms before.
        let mut t = ConnTable::new(2);
        t.insert(conn(1, 1, Method::Dr), 64_000, 0).unwrap();
        assert_eq!(t.expire(63_999, usize::MAX, |_| {}), 0);
        assert_eq!(t.expire(64_000, usize::MAX, |_| {}), 1);
    }

    #[test]
    fn test_touch_extends() {
        let mut t = ConnTable::new(8);
        let c = conn(0xc0a8_0001, 40000, Method::Dr);
        let id = t.insert(c, 10_000, 0).unwrap();
        t.touch(id, 10_000, 5_000);
        assert_eq!(t.expire(10_000 + TICK, usize::MAX, |_| {}), 0);
        assert_eq!(t.expire(14_999, usize::MAX, |_| {}), 0);
        assert_eq!(t.get(id), Some(c));
        let mut seen = Vec::new();
        assert_eq!(t.expire(15_000 + TICK, usize::MAX, |x| seen.push(*x)), 1);
        assert_eq!(seen, vec![c]);
    }

    #[test]
    fn test_touch_shortens() {
        // ESTABLISHED → CLOSE: 900 s becomes 10 s and must not wait 900 s.
        let to = Timeouts::default();
        let mut t = ConnTable::new(8);
        let c = Conn {
            state: TcpState::Established,
            ..conn(1, 1, Method::Nat)
        };
        let id = t
            .insert(c, TcpState::Established.timeout_ms(&to), 0)
            .unwrap();
        t.set_state(id, TcpState::Close).unwrap();
        t.touch(id, TcpState::Close.timeout_ms(&to), 1_000);
        assert_eq!(t.expire(10_999, usize::MAX, |_| {}), 0);
        let mut seen = Vec::new();
        assert_eq!(
            t.expire(11_000 + TICK, usize::MAX, |x| seen.push(x.state)),
            1
        );
        assert_eq!(seen, vec![TcpState::Close]);
    }

    #[test]
    fn test_expire_budget() {
        let mut t = ConnTable::new(16);
        for p in 0..10 {
            t.insert(conn(1, p, Method::Nat), 1_000, 0).unwrap();
        }
        let now = 1_000 + TICK;
        let mut total = 0;
        for want in [3, 3, 3, 1, 0] {
            let mut n = 0;
            let r = t.expire(now, 3, |_| n += 1);
            assert_eq!(r, want);
            assert_eq!(n, want);
            total += r;
            assert_eq!(t.len(), 10 - total);
        }
        assert_eq!(total, 10);
        // Budget 0 does nothing.
        t.insert(conn(2, 1, Method::Nat), 0, now).unwrap();
        assert_eq!(t.expire(now + TICK, 0, |_| {}), 0);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn test_budget_counts_refiled() {
        // Touched entries re-filed by the wheel cost budget but are not
        // removed.
        let mut t = ConnTable::new(8);
        let a = t.insert(conn(1, 1, Method::Dr), 1_000, 0).unwrap();
        t.insert(conn(1, 2, Method::Dr), 1_000, 0).unwrap();
        t.touch(a, 100_000, 0);
        let mut removed = 0;
        let mut calls = 0;
        while removed == 0 {
            removed += t.expire(2_000, 1, |_| {});
            calls += 1;
        }
        assert!(calls <= 2);
        assert_eq!(t.len(), 1);
        assert!(t.get(a).is_some());
    }

    #[test]
    fn test_remove() {
        let mut t = ConnTable::new(4);
        let c = conn(1, 1, Method::Nat);
        let id = t.insert(c, 10_000, 0).unwrap();
        t.remove(id);
        assert_eq!(t.get(id), None);
        assert_eq!(t.lookup(&in_key(&c)), None);
        assert_eq!(t.lookup(&c.outbound_key().unwrap()), None);
        assert!(t.is_empty());
        // Nothing left for the wheel to expire, and the keys are free again.
        assert_eq!(
            t.expire(100_000, usize::MAX, |_| panic!("expired a removed conn")),
            0
        );
        assert!(t.insert(c, 10_000, 100_000).is_ok());
    }

    #[test]
    fn test_stale_ids() {
        let mut t = ConnTable::new(4);
        let a = t.insert(conn(1, 1, Method::Nat), 10_000, 0).unwrap();
        t.remove(a);
        // Stale and out-of-range ids are no-ops.
        for id in [a, ConnId(3), ConnId(4), ConnId(u32::MAX), ConnId(OUT_BIT)] {
            assert_eq!(t.get(id), None);
            assert!(t.set_state(id, TcpState::Close).is_none());
            t.touch(id, 1, 0);
            t.remove(id);
        }
        assert!(t.is_empty());
        // The slot is reused; the stale id now names the new connection, and
        // the table stays consistent.
        let b = conn(2, 2, Method::Nat);
        let bid = t.insert(b, 10_000, 0).unwrap();
        assert_eq!(bid, a);
        t.remove(a);
        t.remove(a);
        assert!(t.is_empty());
        assert_eq!(t.lookup(&in_key(&b)), None);
    }

    #[test]
    fn test_set_state_keeps_keys() {
        let mut t = ConnTable::new(4);
        let c = conn(1, 1, Method::Nat);
        let id = t.insert(c, 10_000, 0).unwrap();
        let now = t.set_state(id, TcpState::Established).unwrap();
        assert_eq!(
            now,
            Conn {
                state: TcpState::Established,
                ..c
            }
        );
        assert_eq!(t.get(id).unwrap().state, TcpState::Established);
        assert_eq!(t.lookup(&in_key(&c)), Some((id, Dir::In)));
        assert_eq!(t.lookup(&c.outbound_key().unwrap()), Some((id, Dir::Out)));
        t.remove(id);
        assert_eq!(t.lookup(&in_key(&c)), None);
        assert_eq!(t.lookup(&c.outbound_key().unwrap()), None);
        assert_eq!(t.index.len(), 0);
    }

    #[test]
    fn test_hostile_clock_values() {
        let mut t = ConnTable::new(4);
        let id = t
            .insert(conn(1, 1, Method::Nat), u32::MAX, u64::MAX)
            .unwrap();
        t.touch(id, u32::MAX, u64::MAX);
        assert_eq!(t.expire(u64::MAX, usize::MAX, |_| {}), 0);
        // Clock going backwards: nothing is expired early, nothing panics.
        let b = t.insert(conn(1, 2, Method::Dr), 0, 5).unwrap();
        assert_eq!(t.expire(0, usize::MAX, |_| {}), 0);
        assert!(t.get(b).is_some());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn test_no_growth_under_churn() {
        // The slab and the index must never reallocate, and the index must
        // hold exactly the live keys, however long a full table churns.
        let max = 3584u32;
        let mut t = ConnTable::new(max);
        let slab_ptr = t.slab.as_ptr();
        let index_mem = t.index.memory_bytes();
        let index_ptr = t.index.buckets_ptr();
        let mut now = 0u64;
        let mut port = 0u32;
        let mut live = std::collections::VecDeque::new();
        let mut n_expired = 0;
        for round in 0..150_000u32 {
            // Keep the table full: evict the oldest live connection.
            while t.len() == t.capacity() {
                let id = live.pop_front().unwrap();
                t.remove(id);
            }
            let c = Conn {
                cip: port,
                cport: (port >> 3) as u16,
                rport: round as u16,
                ..conn(0, 0, Method::Nat)
            };
            port = port.wrapping_add(0x9e37_79b9);
            if let Ok(id) = t.insert(c, 2_000, now) {
                live.push_back(id);
            }
            if round % 1000 == 0 {
                now += 1_000;
                n_expired += t.expire(now, 100, |_| {});
                live.retain(|&id| t.get(id).is_some());
            }
            assert_eq!(t.index.len(), 2 * t.len());
        }
        assert!(n_expired > 0);
        assert_eq!(t.slab.as_ptr(), slab_ptr);
        assert_eq!(t.slab.capacity(), max as usize);
        assert_eq!(t.index.buckets_ptr(), index_ptr);
        assert_eq!(t.index.memory_bytes(), index_mem);
        for id in live {
            t.remove(id);
        }
        assert_eq!(t.index.len(), 0);
        assert!(t.index.overflow_total() == 0);
    }

    // ---- model-based property test ----

    #[derive(Clone, Debug)]
    enum Op {
        Insert {
            cip: u32,
            cport: u16,
            vip: u32,
            rip: u32,
            rport: u16,
            udp: bool,
            nat: bool,
            timeout_ms: u32,
        },
        Touch {
            pick: usize,
            timeout_ms: u32,
        },
        Remove {
            pick: usize,
        },
        Expire {
            dt_ms: u64,
            budget: Option<usize>,
        },
        Stale {
            id: u32,
            timeout_ms: u32,
        },
    }

    fn timeout() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            Just(1),
            Just(63),
            Just(64),
            Just(65),
            Just(10_000),
            Just(1_048_576),
            Just(2_500_000),
            0u32..200_000,
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        // Small overlapping pools so that inbound and outbound keys collide.
        let ip = 1u32..4;
        let port = 1u16..3;
        prop_oneof![
            4 => (ip.clone(), port.clone(), ip.clone(), ip, port, any::<bool>(), any::<bool>(), timeout()).prop_map(
                |(cip, cport, vip, rip, rport, udp, nat, timeout_ms)| Op::Insert {
                    cip, cport, vip, rip, rport, udp, nat, timeout_ms
                }
            ),
            2 => (any::<usize>(), timeout()).prop_map(|(pick, timeout_ms)| Op::Touch { pick, timeout_ms }),
            1 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
            3 => (
                prop_oneof![Just(0u64), Just(1), Just(63), Just(64), 0u64..300_000, Just(5_000_000)],
                prop_oneof![Just(None), (0usize..4).prop_map(Some)],
            )
                .prop_map(|(dt_ms, budget)| Op::Expire { dt_ms, budget }),
            1 => (any::<u32>(), timeout()).prop_map(|(id, timeout_ms)| Op::Stale { id, timeout_ms }),
        ]
    }

    /// What the model knows about a live connection.
    #[derive(Clone, Debug)]
    struct M {
        conn: Conn,
        id: ConnId,
        expire_ms: u64,
    }

    fn keys_of(c: &Conn) -> impl Iterator<Item = FlowKey> {
        core::iter::once(c.inbound_key()).chain(c.outbound_key())
    }

    fn check_agrees(t: &ConnTable, model: &[M], ever: &HashSet<FlowKey>) {
        assert_eq!(t.len(), model.len());
        let mut live = HashSet::new();
        for m in model {
            assert_eq!(t.get(m.id), Some(m.conn));
            assert_eq!(t.lookup(&m.conn.inbound_key()), Some((m.id, Dir::In)));
            if let Some(k) = m.conn.outbound_key() {
                assert_eq!(t.lookup(&k), Some((m.id, Dir::Out)));
            }
            live.extend(keys_of(&m.conn));
        }
        for k in ever.difference(&live) {
            assert_eq!(t.lookup(k), None, "{k:?} should be gone");
        }
        assert_eq!(t.index.len(), live.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn test_prop_model(
            start in prop_oneof![Just(0u64), 0u64..(1u64 << 45)],
            max in 0u32..12,
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let mut t = ConnTable::new(max);
            let mut model: Vec<M> = Vec::new();
            let mut ever: HashSet<FlowKey> = HashSet::new();
            let mut now = start;
            for op in ops {
                match op {
                    Op::Insert { cip, cport, vip, rip, rport, udp, nat, timeout_ms } => {
                        let c = Conn {
                            cip, cport, vip, vport: 80, rip, rport,
                            proto: if udp { 17 } else { 6 },
                            method: if nat { Method::Nat } else { Method::Dr },
                            real: rip, service: 0,
                            state: if udp { TcpState::Udp } else { TcpState::None },
                            lip: 0, lport: 0, client_address: ClientAddress::None, isn1: 0,
                        };
                        let taken: HashSet<FlowKey> = model.iter().flat_map(|m| keys_of(&m.conn)).collect();
                        let want = if model.len() >= max as usize {
                            Err(InsertError::TableFull)
                        } else if keys_of(&c).any(|k| taken.contains(&k))
                            || c.outbound_key() == Some(c.inbound_key())
                        {
                            Err(InsertError::Exists)
                        } else {
                            Ok(())
                        };
                        let got = t.insert(c, timeout_ms, now);
                        match (want, got) {
                            (Ok(()), Ok(id)) => {
                                prop_assert!(model.iter().all(|m| m.id != id));
                                prop_assert!((id.0 as usize) < t.capacity());
                                ever.extend(keys_of(&c));
                                model.push(M { conn: c, id, expire_ms: now + u64::from(timeout_ms) });
                            }
                            (Err(w), Err(g)) => prop_assert_eq!(w, g),
                            (w, g) => prop_assert!(false, "want {:?}, got {:?}", w, g),
                        }
                    }
                    Op::Touch { pick, timeout_ms } => {
                        if !model.is_empty() {
                            let i = pick % model.len();
                            t.touch(model[i].id, timeout_ms, now);
                            model[i].expire_ms = now + u64::from(timeout_ms);
                        }
                    }
                    Op::Remove { pick } => {
                        if !model.is_empty() {
                            let m = model.swap_remove(pick % model.len());
                            t.remove(m.id);
                        }
                    }
                    Op::Stale { id, timeout_ms } => {
                        if model.iter().all(|m| m.id.0 != id) {
                            prop_assert_eq!(t.get(ConnId(id)), None);
                            t.touch(ConnId(id), timeout_ms, now);
                            t.remove(ConnId(id));
                        }
                    }
                    Op::Expire { dt_ms, budget } => {
                        now += dt_ms;
                        let mut expired = Vec::new();
                        let n = t.expire(now, budget.unwrap_or(usize::MAX), |c| expired.push(*c));
                        prop_assert_eq!(n, expired.len());
                        if let Some(b) = budget {
                            prop_assert!(n <= b);
                        }
                        for c in &expired {
                            let pos = model.iter().position(|m| m.conn == *c);
                            prop_assert!(pos.is_some(), "expired unknown {:?}", c);
                            let m = model.swap_remove(pos.unwrap_or(0));
                            // Never early.
                            prop_assert!(m.expire_ms <= now, "early: due {} now {}", m.expire_ms, now);
                        }
                        if budget.is_none() {
                            // At most one tick late.
                            for m in &model {
                                prop_assert!(
                                    m.expire_ms + TICK > now,
                                    "late: due {} now {}", m.expire_ms, now
                                );
                            }
                        }
                    }
                }
                check_agrees(&t, &model, &ever);
            }
        }
    }
}
