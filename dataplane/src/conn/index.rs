//! The connection table's hash index: cache-line buckets of 10 slots, each
//! slot a 16-bit tag and a 32-bit value, with bucket-to-bucket linear
//! probing counted per bucket.
//!
//! Layer: dataplane, connection table (private to `conn`). Owned by one
//! worker; no locks, no atomics.
//!
//! Why not `hashbrown`: the first table was a `hashbrown::HashTable<u32>`
//! sized for 4 × `max_conns` keys so that deletions never forced a
//! reallocation (hashbrown reallocates on tombstone build-up past half
//! full). At 1 M connections that is 8 Mi buckets (40 MB); a lookup
//! touched one control-byte group and one value, both random, and the
//! profile showed `ConnTable::lookup` at 42–47 % of the packet path. This
//! index
//! - packs everything a probe reads (tags and values) into one 64-byte
//!   line, so a hit costs one line here plus the slab entry, and
//!   [`BucketIndex::prefetch`] can fetch that line ahead of the packet;
//! - deletes without tombstones: a bucket's `overflow` counts the keys that
//!   probed *past* it, lookups stop at the first bucket whose count is 0,
//!   and a removal decrements the counts along its probe path. Churn
//!   therefore never degrades probes and never needs a rehash;
//! - is sized for the keys it will hold at ≤ 80 % slot load (8 bytes per
//!   key: 6.4 bytes of slot plus headroom), with the bucket count not
//!   rounded to a power of two (the bucket is picked by multiply-shift), so
//!   1 M NAT connections (2 M keys) cost 16 MB instead of 40 MB.
//!
//! A value is opaque to the index (the table stores `slab index | OUT_BIT`);
//! `u32::MAX` is reserved for an empty slot. Equality of keys is the
//! caller's business: [`BucketIndex::find`] offers each tag match to a
//! closure, which compares the real key stored in the slab.
//!
//! Guarantees: no allocation after [`BucketIndex::with_keys`], no panic for
//! any hash or value, every operation O(1) expected and bounded by the
//! bucket count in the worst case.

/// Slots per bucket: 10 × (2-byte tag + 4-byte value) + 4-byte overflow
/// count = 64 bytes.
pub(crate) const SLOTS: usize = 10;

/// Value of an empty slot.
pub(crate) const EMPTY: u32 = u32::MAX;

/// Average keys per bucket the index is sized for (8 of 10 slots).
const KEYS_PER_BUCKET: usize = 8;

/// One cache line of the index.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Bucket {
    /// Low 16 bits of each stored key's hash (meaningless where `vals` is
    /// [`EMPTY`]).
    tags: [u16; SLOTS],
    /// Stored values; [`EMPTY`] marks a free slot.
    vals: [u32; SLOTS],
    /// Keys whose home bucket is this one or an earlier one on their probe
    /// path, stored in a later bucket. Lookups continue past this bucket
    /// only while it is non-zero.
    overflow: u32,
}

const _: () = assert!(core::mem::size_of::<Bucket>() == 64);

const EMPTY_BUCKET: Bucket = Bucket {
    tags: [0; SLOTS],
    vals: [EMPTY; SLOTS],
    overflow: 0,
};

/// The index. See the module documentation.
#[derive(Debug)]
pub(crate) struct BucketIndex {
    buckets: Vec<Bucket>,
    /// Stored values.
    len: usize,
    /// Most values accepted: all slots (insertion never fails below it).
    cap: usize,
}

impl BucketIndex {
    /// An index sized for `keys` values at 80 % slot load: `ceil(keys / 8)`
    /// buckets of 64 bytes (at least one). It accepts up to
    /// `10 × buckets` values; beyond 80 % probes just get longer.
    pub(crate) fn with_keys(keys: usize) -> Self {
        let n = keys.div_ceil(KEYS_PER_BUCKET).max(1);
        // Huge pages where the kernel allows: random lookups over tens of
        // MB otherwise pay a TLB miss each (see `hwinit::thp`).
        let (mut buckets, _) = hwinit::thp::with_capacity(n);
        buckets.resize(n, EMPTY_BUCKET);
        BucketIndex {
            buckets,
            len: 0,
            cap: n * SLOTS,
        }
    }

    /// Stored values.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Address of the bucket array (tests check it never moves).
    #[cfg(test)]
    pub(crate) fn buckets_ptr(&self) -> *const u8 {
        self.buckets.as_ptr().cast()
    }

    /// Sum of every bucket's overflow count (0 when nothing overflowed).
    #[cfg(test)]
    pub(crate) fn overflow_total(&self) -> u64 {
        self.buckets.iter().map(|b| u64::from(b.overflow)).sum()
    }

    /// Bytes allocated for buckets.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.buckets.capacity() * core::mem::size_of::<Bucket>()
    }

    /// Home bucket of `hash`: the high 32 bits scaled onto `0..n`
    /// (Lemire's multiply-shift; no power-of-two rounding needed).
    #[inline]
    fn home(&self, hash: u64) -> usize {
        (((hash >> 32) * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// Asks the CPU to start loading `hash`'s home bucket into cache. A
    /// hint only: no effect on results, never faults.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        if let Some(b) = self.buckets.get(self.home(hash)) {
            prefetch_read(b);
        }
    }

    /// Candidates for `hash`'s key in probe order: calls `is_key(value)` for
    /// each stored value whose tag matches, and returns the first value for
    /// which it is true.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = hash as u16;
        let mut b = self.home(hash);
        for _ in 0..self.buckets.len() {
            let bucket = self.buckets.get(b)?;
            for i in 0..SLOTS {
                let v = bucket.vals[i];
                if bucket.tags[i] == tag && v != EMPTY && is_key(v) {
                    return Some(v);
                }
            }
            if bucket.overflow == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Stores `value` under `hash`. The caller guarantees the key is not
    /// stored yet. Returns `false` (and changes nothing) when every slot is
    /// taken or `value` is [`EMPTY`].
    pub(crate) fn insert(&mut self, hash: u64, value: u32) -> bool {
        if self.len >= self.cap || value == EMPTY {
            return false;
        }
        let tag = hash as u16;
        let mut b = self.home(hash);
        // `len < cap` guarantees a free slot within one lap.
        for _ in 0..self.buckets.len() {
            let Some(bucket) = self.buckets.get_mut(b) else {
                return false;
            };
            if let Some(i) = bucket.vals.iter().position(|&v| v == EMPTY) {
                bucket.vals[i] = value;
                bucket.tags[i] = tag;
                self.len += 1;
                return true;
            }
            bucket.overflow += 1;
            b = self.next(b);
        }
        // Unreachable while `len < cap`; undo the counts to stay exact.
        self.unwind(self.home(hash), self.buckets.len());
        false
    }

    /// Removes `value` stored under `hash`; `false` if it is not there.
    pub(crate) fn remove(&mut self, hash: u64, value: u32) -> bool {
        if value == EMPTY {
            return false;
        }
        let tag = hash as u16;
        let home = self.home(hash);
        let mut b = home;
        for step in 0..self.buckets.len() {
            let Some(bucket) = self.buckets.get_mut(b) else {
                return false;
            };
            if let Some(i) = (0..SLOTS).find(|&i| bucket.vals[i] == value && bucket.tags[i] == tag)
            {
                bucket.vals[i] = EMPTY;
                self.len -= 1;
                self.unwind(home, step);
                return true;
            }
            if bucket.overflow == 0 {
                return false;
            }
            b = self.next(b);
        }
        false
    }

    /// Decrements the overflow counts of the `steps` buckets from `home`.
    fn unwind(&mut self, home: usize, steps: usize) {
        let mut b = home;
        for _ in 0..steps {
            if let Some(bucket) = self.buckets.get_mut(b) {
                bucket.overflow = bucket.overflow.saturating_sub(1);
            }
            b = self.next(b);
        }
    }
}

pub(crate) use hwinit::prefetch_read;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn test_sizes() {
        let i = BucketIndex::with_keys(2 << 20);
        assert_eq!(i.buckets.len(), 262_144);
        assert_eq!(i.memory_bytes(), 16 << 20);
        assert_eq!(BucketIndex::with_keys(0).buckets.len(), 1);
    }

    #[test]
    fn test_collisions_overflow_and_remove() {
        // 25 values with one hash: 3 buckets deep from the home bucket.
        let mut i = BucketIndex::with_keys(64);
        let h = 0x1234_5678_0000_abcd;
        for v in 0..25 {
            assert!(i.insert(h, v));
        }
        for v in 0..25 {
            assert_eq!(i.find(h, |x| x == v), Some(v));
        }
        let home = i.home(h);
        assert_eq!(i.buckets[home].overflow, 15);
        assert_eq!(i.buckets[i.next(home)].overflow, 5);
        // Removing from the last bucket unwinds both counts.
        assert!(i.remove(h, 24));
        assert_eq!(i.buckets[home].overflow, 14);
        assert_eq!(i.buckets[i.next(home)].overflow, 4);
        assert!(!i.remove(h, 24));
        assert_eq!(i.find(h, |x| x == 24), None);
        for v in 0..24 {
            assert!(i.remove(h, v));
        }
        assert!(i.buckets.iter().all(|b| b.overflow == 0));
        assert_eq!(i.len, 0);
    }

    #[test]
    fn test_full_and_reserved() {
        let mut i = BucketIndex::with_keys(1); // one bucket, 10 slots
        for v in 0..10 {
            assert!(i.insert(u64::from(v) << 40, v));
        }
        assert!(!i.insert(7, 10));
        assert!(!i.insert(7, EMPTY));
        assert!(!i.remove(7, EMPTY));
        assert_eq!(i.buckets[0].overflow, 0);
        for v in 0..10 {
            assert_eq!(i.find(u64::from(v) << 40, |x| x == v), Some(v));
        }
    }

    #[test]
    fn test_wraps_around() {
        let mut i = BucketIndex::with_keys(16); // 2 buckets
        let h = u64::MAX; // home = last bucket
        assert_eq!(i.home(h), 1);
        for v in 0..15 {
            assert!(i.insert(h, v));
        }
        assert_eq!(i.find(h, |x| x == 14), Some(14));
        assert!(i.remove(h, 14));
        assert_eq!(i.buckets[1].overflow, 4);
    }

    proptest! {
        /// Against a model under random insert/remove churn with few
        /// distinct hashes (heavy collisions): every stored value is found,
        /// removed ones are not, and the overflow counts return to zero.
        #[test]
        fn test_prop_model(ops in proptest::collection::vec((any::<bool>(), 0u32..200, 0u64..8), 1..600)) {
            let mut i = BucketIndex::with_keys(120);
            let mut model: HashMap<u32, u64> = HashMap::new();
            for (ins, v, hsel) in ops {
                let h = hsel.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                if ins {
                    if model.contains_key(&v) { continue; }
                    let ok = i.insert(h, v);
                    prop_assert_eq!(ok, model.len() < i.cap);
                    if ok { model.insert(v, h); }
                } else if let Some(h) = model.remove(&v) {
                    prop_assert!(i.remove(h, v));
                }
                for (&v, &h) in &model {
                    prop_assert_eq!(i.find(h, |x| x == v), Some(v));
                }
            }
            for (v, h) in model.drain() {
                prop_assert!(i.remove(h, v));
            }
            prop_assert!(i.buckets.iter().all(|b| b.overflow == 0));
            prop_assert!(i.buckets.iter().all(|b| b.vals.iter().all(|&v| v == EMPTY)));
        }
    }
}
