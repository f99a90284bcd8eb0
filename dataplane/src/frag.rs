//! The per-worker fragment table: what to do with the fragments of one
//! IPv4 datagram after its first fragment was seen.
//!
//! Layer: dataplane state, per worker, no I/O. fulcrum does not reassemble
//! (a datagram may be up to 65535 bytes, far more than one mbuf), and a
//! non-first fragment carries no ports to look a connection up by. Instead,
//! as Maglev does (NSDI 2016, §4.3), the first fragment (offset 0, which holds the
//! TCP/UDP header) is balanced like any packet, and the decision taken for
//! it is remembered here, keyed by the datagram's identity
//! (source, destination, protocol, IP identification: RFC 791 §3.2, "the
//! identification field is used to distinguish the fragments of one
//! datagram from those of another"). Every later fragment of the datagram
//! gets the same decision: the same output port, MACs and L3 rewrite.
//!
//! Every fragment of a datagram is first moved to one "home" worker,
//! [`home`] of the key (all workers compute it alike, from any fragment).
//! The home worker either owns the flow itself and keeps a
//! [`FragAction::Forward`], or keeps a [`FragAction::Owner`] and moves each
//! fragment on to the flow's owner, which keeps the `Forward` decision
//! (docs/architecture.md, "Fragments").
//!
//! Guarantees: bounded, allocated once ([`FragTable::new`]); never grows;
//! an entry lives [`FRAG_TIMEOUT_MS`] from its first fragment (a short
//! `ipfrag_time`: Linux keeps 30 s for reassembly, a forwarding decision
//! needs only the datagram's own spread in time). Lookups and inserts probe
//! at most [`FRAG_PROBE`] slots; a full window refuses the insert (the
//! caller counts `frag_table_full`). Refuses: nothing else; never panics.

use crate::owner::owner;

/// Slots of each worker's fragment table (a power of two): 4096 slots of
/// [`FragTable::SLOT_BYTES`] bytes, about 256 KiB per worker.
pub const FRAG_TABLE_SLOTS: usize = 4096;
/// Slots a lookup or an insert examines from a key's home slot.
pub const FRAG_PROBE: usize = 8;
/// How long a datagram's decision is kept after its first fragment, in
/// milliseconds.
pub const FRAG_TIMEOUT_MS: u64 = 1000;

/// The identity of one IPv4 datagram, as its fragments carry it (RFC 791
/// §3.2): addresses and protocol as received (before any rewrite), and the
/// identification field. Host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FragKey {
    /// Source address as received, host order.
    pub src: u32,
    /// Destination address as received, host order.
    pub dst: u32,
    /// IPv4 identification field, host order.
    pub id: u16,
    /// IP protocol number.
    pub proto: u8,
}

/// The L2 and L3 rewrite the first fragment of a datagram got, to be
/// applied to each later fragment: the fragment's own header stays, its
/// addresses become `src`/`dst`, its TTL drops by `ttl_dec`, and its L2
/// header (the first `l2_len` bytes of the frame: MACs, an 802.1Q tag,
/// the EtherType) becomes `l2[..l2_len]`. Ports and the L4 checksum live
/// in the first fragment only, where the forwarding method fixed them for
/// the whole datagram (an incremental RFC 1624 update is correct for the
/// reassembled datagram, whatever the fragment holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrite {
    /// Output port index.
    pub port: u8,
    /// Length of the L2 header in `l2`: 14, or 18 with one 802.1Q tag.
    pub l2_len: u8,
    /// The first fragment's L2 header as it left, wire order.
    pub l2: [u8; 18],
    /// Source address the first fragment left with, host order.
    pub src: u32,
    /// Destination address the first fragment left with, host order.
    pub dst: u32,
    /// How much the forwarding method lowered the TTL (1 for NAT, 0 for DR).
    pub ttl_dec: u8,
}

/// What a worker does with a datagram's fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragAction {
    /// Move them to this worker, the flow's owner (kept by the home worker
    /// when it does not own the flow).
    Owner(u16),
    /// Rewrite and transmit them as the first fragment was.
    Forward(Rewrite),
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: FragKey,
    /// 0 marks a slot that never held an entry; otherwise the worker clock
    /// (ms) at which the entry stops answering.
    expires_ms: u64,
    action: FragAction,
}

const FREE: Slot = Slot {
    key: FragKey {
        src: 0,
        dst: 0,
        id: 0,
        proto: 0,
    },
    expires_ms: 0,
    action: FragAction::Owner(0),
};

/// The insert found no free or expired slot in the key's probe window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragTableFull;

/// A worker's fragment table. See the module documentation.
#[derive(Debug)]
pub struct FragTable {
    slots: Box<[Slot]>,
    mask: usize,
    hasher: ahash::RandomState,
}

impl FragTable {
    /// Bytes of one slot.
    pub const SLOT_BYTES: usize = core::mem::size_of::<Slot>();

    /// A table of `slots` slots, rounded up to a power of two and at least
    /// [`FRAG_PROBE`]. Allocates everything it will use, once. The hash is
    /// seeded at random per table (`ahash`), so a sender cannot aim
    /// identification values at one probe window of every director.
    pub fn new(slots: usize) -> Self {
        let n = slots.max(FRAG_PROBE).next_power_of_two();
        FragTable {
            slots: vec![FREE; n].into_boxed_slice(),
            mask: n - 1,
            hasher: ahash::RandomState::new(),
        }
    }

    /// Slots in the table.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn home_slot(&self, key: &FragKey) -> usize {
        self.hasher.hash_one(key) as usize & self.mask
    }

    /// The live action for `key` at `now_ms`, if any.
    #[inline]
    pub fn lookup(&self, key: &FragKey, now_ms: u64) -> Option<FragAction> {
        let h = self.home_slot(key);
        (0..FRAG_PROBE)
            .filter_map(|i| self.slots.get((h + i) & self.mask))
            .find(|s| s.key == *key && s.expires_ms > now_ms)
            .map(|s| s.action)
    }

    /// Whether [`FragTable::insert`] of `key` at `now_ms` would succeed: the
    /// key is live already, or its probe window has a free or expired slot.
    #[inline]
    pub fn can_insert(&self, key: &FragKey, now_ms: u64) -> bool {
        let h = self.home_slot(key);
        (0..FRAG_PROBE)
            .filter_map(|i| self.slots.get((h + i) & self.mask))
            .any(|s| s.expires_ms <= now_ms || s.key == *key)
    }

    /// Stores `action` for `key` until `now_ms + timeout_ms`, replacing a
    /// live entry of the same key (a first fragment sent again, or a reused
    /// identification). Takes the first slot of the probe window that holds
    /// the key, is free or has expired.
    ///
    /// # Errors
    /// [`FragTableFull`] when every slot of the window holds another live
    /// datagram; nothing changed.
    pub fn insert(
        &mut self,
        key: FragKey,
        action: FragAction,
        now_ms: u64,
        timeout_ms: u64,
    ) -> Result<(), FragTableFull> {
        let h = self.home_slot(&key);
        let mask = self.mask;
        let same = (0..FRAG_PROBE)
            .map(|i| (h + i) & mask)
            .find(|&i| self.slots[i].key == key && self.slots[i].expires_ms > now_ms);
        let idx = same.or_else(|| {
            (0..FRAG_PROBE)
                .map(|i| (h + i) & mask)
                .find(|&i| self.slots[i].expires_ms <= now_ms)
        });
        let Some(i) = idx else {
            return Err(FragTableFull);
        };
        self.slots[i] = Slot {
            key,
            // Never 0, which would read as "never used" (harmless, but
            // keeps the slot's meaning exact).
            expires_ms: now_ms.saturating_add(timeout_ms).max(1),
            action,
        };
        Ok(())
    }

    /// Entries still live at `now_ms` (walks the whole table: tests and
    /// status only).
    pub fn live(&self, now_ms: u64) -> usize {
        self.slots.iter().filter(|s| s.expires_ms > now_ms).count()
    }
}

/// The home worker (0..n_workers) of the datagram `key`: the worker all of
/// its fragments are moved to first. A function of the key alone, so every
/// worker computes it alike from any fragment; the same mixing as
/// [`owner`], on the addresses and protocol folded into one word and the
/// identification in place of a port.
#[inline]
pub fn home(key: &FragKey, n_workers: u16) -> u16 {
    let addr = key.src ^ key.dst.rotate_left(16) ^ (u32::from(key.proto) << 8);
    owner(addr, key.id, n_workers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> FragKey {
        FragKey {
            src: 0x0a00_0002,
            dst: 0x0a00_0064,
            id,
            proto: 17,
        }
    }

    fn fwd(port: u8) -> FragAction {
        FragAction::Forward(Rewrite {
            port,
            l2_len: 14,
            l2: [port; 18],
            src: 1,
            dst: 2,
            ttl_dec: 1,
        })
    }

    #[test]
    fn test_insert_lookup_timeout() {
        let mut t = FragTable::new(64);
        assert_eq!(t.lookup(&key(1), 0), None);
        t.insert(key(1), fwd(1), 100, FRAG_TIMEOUT_MS).unwrap();
        assert_eq!(t.lookup(&key(1), 100), Some(fwd(1)));
        assert_eq!(t.lookup(&key(1), 100 + FRAG_TIMEOUT_MS - 1), Some(fwd(1)));
        assert_eq!(t.lookup(&key(1), 100 + FRAG_TIMEOUT_MS), None, "expired");
        assert_eq!(t.lookup(&key(2), 100), None);
        let mut other = key(1);
        other.dst += 1;
        assert_eq!(t.lookup(&other, 100), None, "another datagram");
        assert_eq!(t.live(100), 1);
        assert_eq!(t.live(100 + FRAG_TIMEOUT_MS), 0);
    }

    #[test]
    fn test_same_key_replaces() {
        let mut t = FragTable::new(64);
        t.insert(key(7), FragAction::Owner(1), 0, 1000).unwrap();
        t.insert(key(7), fwd(3), 10, 1000).unwrap();
        assert_eq!(t.lookup(&key(7), 20), Some(fwd(3)));
        assert_eq!(t.live(20), 1, "replaced, not added");
    }

    #[test]
    fn test_capacity_is_bounded_and_expiry_frees() {
        // 8 slots = one probe window: the ninth live datagram is refused.
        let mut t = FragTable::new(1);
        assert_eq!(t.capacity(), FRAG_PROBE);
        for id in 0..FRAG_PROBE as u16 {
            t.insert(key(id), fwd(0), 0, 1000).unwrap();
        }
        assert!(!t.can_insert(&key(100), 0));
        assert!(t.can_insert(&key(3), 0), "a live key may be replaced");
        assert_eq!(t.insert(key(100), fwd(0), 0, 1000), Err(FragTableFull));
        assert_eq!(t.lookup(&key(100), 0), None);
        for id in 0..FRAG_PROBE as u16 {
            assert_eq!(t.lookup(&key(id), 999), Some(fwd(0)), "{id}");
        }
        // Once they expire, their slots take new datagrams.
        t.insert(key(100), fwd(5), 1000, 1000).unwrap();
        assert_eq!(t.lookup(&key(100), 1500), Some(fwd(5)));
        assert_eq!(t.lookup(&key(0), 1500), None);
    }

    #[test]
    fn test_home_in_range_and_same_for_every_fragment() {
        let mut seen = [0u32; 3];
        for id in 0..3000u16 {
            let h = home(&key(id), 3);
            assert_eq!(h, home(&key(id), 3));
            seen[usize::from(h)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "uneven homes {seen:?}");
        assert_eq!(home(&key(1), 1), 0);
    }
}
