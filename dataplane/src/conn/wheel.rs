//! A hashed timer wheel whose lists run through the connection slab.
//!
//! Layer: dataplane, connection table (private to [`super`]). Each worker
//! owns one wheel next to its table; nothing here is shared or locked.
//!
//! Time is cut into ticks of [`TICK_MS`]; slot `t mod WHEEL_SLOTS` holds the
//! connections filed for tick `t`. The lists are intrusive and doubly linked
//! through the slab (`u32` indices in each entry's [`Link`]), so filing,
//! unlinking and popping are O(1) and never allocate: the only allocation is
//! the slot-head array, made once in [`Wheel::new`].
//!
//! Guarantees:
//! - never early: an entry whose expiry tick is `e` is only returned by
//!   [`Wheel::pop_due`] for a tick `t >= e`, and callers convert an expiry in
//!   milliseconds to `e` by rounding *up* ([`expire_tick`]), so `e * TICK_MS`
//!   is never before the requested expiry;
//! - at most one tick late: every entry sits in a slot whose next visit is no
//!   later than its expiry tick (or the wheel's current tick if that is
//!   already past), so once the wheel has been advanced to `now` without
//!   running out of budget, everything with `e * TICK_MS <= now` is gone;
//! - lazy: moving an expiry *later* only rewrites `expire_tick`; the entry is
//!   re-filed when its old slot comes up. Moving it *earlier* re-files it at
//!   once (O(1)), because otherwise a connection going from ESTABLISHED
//!   (900 s) to CLOSE (10 s) would linger for the old timeout.
//!
//! Refuses: expiries more than 2^31 ticks (about 4.3 years at 64 ms) away
//! from the wheel's position — ticks are stored as wrapping `u32` to keep
//! entries small, and comparisons are made on the wrapping difference.
//! Timeouts are `u32` milliseconds (at most 49.7 days), far inside that.

/// Wheel resolution in milliseconds. 64 ms keeps a connection's lateness
/// well under any IPVS timeout (the shortest, NONE, is 2 s) while the
/// worker's slow tick only has to visit about 16 slots per second.
pub const TICK_MS: u64 = 64;

/// Number of wheel slots (a power of two). 16384 × 64 ms ≈ 1049 s, longer
/// than the default ESTABLISHED timeout (900 s), so an idle connection is
/// normally visited once, at its expiry. Longer timeouts still work: the
/// entry is visited once per revolution and re-filed until it is due.
/// The heads cost 64 KiB per worker.
pub const WHEEL_SLOTS: usize = 1 << 14;

const SLOT_MASK: u32 = (WHEEL_SLOTS as u32) - 1;

/// "No entry" in `next` and in a slot head.
pub(crate) const NIL: u32 = u32::MAX;
/// `prev` of a slab entry that is free (on the free list).
pub(crate) const FREE: u32 = u32::MAX;
/// `prev` of a live entry that is currently in no wheel list (just inserted,
/// or just popped by [`Wheel::pop_due`]).
pub(crate) const DETACHED: u32 = u32::MAX - 1;
/// `prev` of the first entry of a slot list: `HEAD_TAG | slot`. Slab indices
/// stay below 2^31, so the tag bit tells the two apart.
const HEAD_TAG: u32 = 1 << 31;

/// A slab entry's place in the wheel. 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    /// Next entry in the same slot list, or in the free list; [`NIL`] at the
    /// end.
    pub next: u32,
    /// Previous entry in the slot list, `HEAD_TAG | slot` for the first one,
    /// [`DETACHED`] when in no list, [`FREE`] when the entry is free.
    pub prev: u32,
    /// Expiry in ticks of [`TICK_MS`] (wrapping `u32`).
    pub expire_tick: u32,
}

impl Link {
    /// A free entry whose free-list successor is `next`.
    pub const fn free(next: u32) -> Link {
        Link {
            next,
            prev: FREE,
            expire_tick: 0,
        }
    }
}

/// Anything stored in the slab the wheel links through.
pub(crate) trait Linked {
    fn link(&self) -> &Link;
    fn link_mut(&mut self) -> &mut Link;
}

impl Linked for Link {
    fn link(&self) -> &Link {
        self
    }
    fn link_mut(&mut self) -> &mut Link {
        self
    }
}

/// The expiry tick for a timeout of `timeout_ms` starting at `now_ms`:
/// `ceil((now_ms + timeout_ms) / TICK_MS)`, rounded up so that expiry is never
/// early, saturating instead of overflowing, and truncated to the wrapping
/// `u32` tick space.
pub(crate) fn expire_tick(now_ms: u64, timeout_ms: u32) -> u32 {
    let at_ms = now_ms.saturating_add(u64::from(timeout_ms));
    let t = at_ms / TICK_MS + u64::from(at_ms % TICK_MS != 0);
    t as u32
}

/// Whether an entry expiring at tick `e` is due at tick `t` (wrapping).
fn is_due(e: u32, t: u64) -> bool {
    (t as u32).wrapping_sub(e) as i32 >= 0
}

/// Whether tick `a` is strictly before tick `b` (wrapping).
pub(crate) fn tick_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// The wheel: one list head per slot and the next tick to process.
#[derive(Debug)]
pub(crate) struct Wheel {
    /// First entry of each slot's list, [`NIL`] when empty. Length
    /// [`WHEEL_SLOTS`].
    heads: Vec<u32>,
    /// The next tick whose slot [`Wheel::pop_due`] will visit. Everything
    /// before it has been processed.
    next_tick: u64,
}

impl Wheel {
    /// An empty wheel positioned at tick 0 (the first [`Wheel::catch_up`]
    /// moves it to the present). Allocates the slot heads (64 KiB).
    pub fn new() -> Wheel {
        Wheel {
            heads: vec![NIL; WHEEL_SLOTS],
            next_tick: 0,
        }
    }

    /// The next tick to be processed.
    #[cfg(test)]
    pub fn next_tick(&self) -> u64 {
        self.next_tick
    }

    /// The slot an entry expiring at `e` goes to so that the slot's next
    /// visit is no later than `max(e, next_tick)`:
    /// - already due: the slot being (or about to be) processed;
    /// - due in the same slot one or more revolutions later: the slot just
    ///   before, visited `WHEEL_SLOTS - 1` ticks from now (early, so it is
    ///   re-filed then); never the current slot, or [`Wheel::pop_due`] would
    ///   meet it again in the same visit;
    /// - otherwise: the slot of `e` (visited at `e`, or earlier when `e` is
    ///   more than a revolution away, and then re-filed).
    fn slot_for(&self, e: u32) -> u32 {
        let nt = self.next_tick as u32;
        let t = if !tick_before(nt, e) {
            nt
        } else if (e ^ nt) & SLOT_MASK == 0 {
            nt.wrapping_sub(1)
        } else {
            e
        };
        t & SLOT_MASK
    }

    /// Files detached entry `i` by its `expire_tick` (pushes it at the head
    /// of its slot). No-op for an index outside `nodes`.
    pub fn file<T: Linked>(&mut self, nodes: &mut [T], i: u32) {
        let Some(n) = nodes.get(i as usize) else {
            return;
        };
        let s = self.slot_for(n.link().expire_tick);
        let Some(head) = self.heads.get_mut(s as usize) else {
            return;
        };
        let old = *head;
        *head = i;
        if let Some(h) = nodes.get_mut(old as usize) {
            h.link_mut().prev = i;
        }
        if let Some(n) = nodes.get_mut(i as usize) {
            let l = n.link_mut();
            l.next = old;
            l.prev = HEAD_TAG | s;
        }
    }

    /// Takes entry `i` out of its slot list (O(1)) and marks it
    /// [`DETACHED`]. No-op when it is not in a list.
    pub fn unlink<T: Linked>(&mut self, nodes: &mut [T], i: u32) {
        let Some(n) = nodes.get(i as usize) else {
            return;
        };
        let Link { next, prev, .. } = *n.link();
        if prev == FREE || prev == DETACHED {
            return;
        }
        if prev & HEAD_TAG != 0 {
            if let Some(h) = self.heads.get_mut((prev & SLOT_MASK) as usize) {
                *h = next;
            }
        } else if let Some(p) = nodes.get_mut(prev as usize) {
            p.link_mut().next = next;
        }
        if let Some(nx) = nodes.get_mut(next as usize) {
            nx.link_mut().prev = prev;
        }
        if let Some(n) = nodes.get_mut(i as usize) {
            let l = n.link_mut();
            l.next = NIL;
            l.prev = DETACHED;
        }
    }

    /// Sets entry `i`'s expiry tick to `e`. Later than before: only the field
    /// is written (the old slot re-files it lazily). Earlier: it is re-filed
    /// now, so it is not expired late.
    pub fn reschedule<T: Linked>(&mut self, nodes: &mut [T], i: u32, e: u32) {
        let Some(n) = nodes.get_mut(i as usize) else {
            return;
        };
        let l = n.link_mut();
        let old = l.expire_tick;
        l.expire_tick = e;
        if tick_before(e, old) && l.prev != DETACHED && l.prev != FREE {
            self.unlink(nodes, i);
            self.file(nodes, i);
        }
    }

    /// Moves the wheel so that at most one revolution separates it from
    /// `target_tick`: slots visited in the last `WHEEL_SLOTS` ticks up to
    /// `target_tick` cover every slot once, which is all that catching up
    /// after a long pause needs (each entry is compared against its own
    /// expiry tick when its slot is visited).
    pub fn catch_up(&mut self, target_tick: u64) {
        let n = WHEEL_SLOTS as u64;
        if target_tick >= self.next_tick.saturating_add(n) {
            self.next_tick = target_tick + 1 - n;
        }
    }

    /// Advances towards `target_tick` and returns the next due entry,
    /// detached from the wheel, or `None` when the wheel has reached
    /// `target_tick + 1` or `budget` is exhausted. Every entry looked at
    /// (returned or re-filed because its expiry moved later) costs one unit
    /// of `budget`; empty slots are free. The wheel stays consistent whenever
    /// this returns, so a caller may stop at any point.
    pub fn pop_due<T: Linked>(
        &mut self,
        nodes: &mut [T],
        target_tick: u64,
        budget: &mut usize,
    ) -> Option<u32> {
        while *budget > 0 && self.next_tick <= target_tick {
            let s = (self.next_tick as u32 & SLOT_MASK) as usize;
            let &head = self.heads.get(s)?;
            if head == NIL {
                self.next_tick += 1;
                continue;
            }
            let Some(n) = nodes.get(head as usize) else {
                // Unreachable by construction; drop the broken list rather
                // than spin on it.
                if let Some(h) = self.heads.get_mut(s) {
                    *h = NIL;
                }
                continue;
            };
            *budget -= 1;
            let e = n.link().expire_tick;
            self.unlink(nodes, head);
            if is_due(e, self.next_tick) {
                return Some(head);
            }
            self.file(nodes, head);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<Link> {
        vec![
            Link {
                next: NIL,
                prev: DETACHED,
                expire_tick: 0
            };
            n
        ]
    }

    fn drain(w: &mut Wheel, ns: &mut [Link], target: u64) -> Vec<u32> {
        w.catch_up(target);
        let mut budget = usize::MAX;
        let mut out = Vec::new();
        while let Some(i) = w.pop_due(ns, target, &mut budget) {
            out.push(i);
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn test_expire_tick_rounds_up() {
        assert_eq!(expire_tick(0, 0), 0);
        assert_eq!(expire_tick(0, 1), 1);
        assert_eq!(expire_tick(0, 64), 1);
        assert_eq!(expire_tick(0, 65), 2);
        assert_eq!(expire_tick(0, 10_000), 157);
        assert_eq!(expire_tick(64, 10_000), 158);
        // Saturates instead of overflowing.
        assert_eq!(
            expire_tick(u64::MAX, u32::MAX),
            (u64::MAX / TICK_MS + 1) as u32
        );
    }

    #[test]
    fn test_pop_due_in_tick_order() {
        let mut w = Wheel::new();
        let mut ns = nodes(3);
        for (i, e) in [(0u32, 5u32), (1, 3), (2, 5)] {
            ns[i as usize].expire_tick = e;
            w.file(&mut ns, i);
        }
        assert_eq!(drain(&mut w, &mut ns, 2), Vec::<u32>::new());
        assert_eq!(w.next_tick(), 3);
        assert_eq!(drain(&mut w, &mut ns, 3), vec![1]);
        assert_eq!(drain(&mut w, &mut ns, 10), vec![0, 2]);
        assert_eq!(ns[0].prev, DETACHED);
        assert!(w.heads.iter().all(|&h| h == NIL));
    }

    #[test]
    fn test_unlink_middle_and_head() {
        let mut w = Wheel::new();
        let mut ns = nodes(3);
        for i in 0..3 {
            ns[i as usize].expire_tick = 7;
            w.file(&mut ns, i);
        }
        // List is 2 → 1 → 0; unlink the middle, then the head.
        w.unlink(&mut ns, 1);
        assert_eq!(ns[2].next, 0);
        assert_eq!(ns[0].prev, 2);
        w.unlink(&mut ns, 2);
        assert_eq!(w.heads[7], 0);
        assert_eq!(ns[0].prev, HEAD_TAG | 7);
        assert_eq!(drain(&mut w, &mut ns, 7), vec![0]);
        // Unlinking a detached entry is a no-op.
        w.unlink(&mut ns, 1);
        assert_eq!(ns[1].prev, DETACHED);
    }

    #[test]
    fn test_lazy_later_and_eager_earlier() {
        let mut w = Wheel::new();
        let mut ns = nodes(2);
        ns[0].expire_tick = 10;
        w.file(&mut ns, 0);
        ns[1].expire_tick = 100;
        w.file(&mut ns, 1);
        // Later: only the field changes, the entry stays in slot 10.
        w.reschedule(&mut ns, 0, 50);
        assert_eq!(w.heads[10], 0);
        // Earlier: re-filed at once.
        w.reschedule(&mut ns, 1, 20);
        assert_eq!(w.heads[100], NIL);
        assert_eq!(w.heads[20], 1);
        // Slot 10 re-files entry 0 to 50 without returning it.
        let mut budget = usize::MAX;
        assert_eq!(w.pop_due(&mut ns, 19, &mut budget), None);
        assert_eq!(budget, usize::MAX - 1);
        assert_eq!(w.heads[50], 0);
        assert_eq!(drain(&mut w, &mut ns, 20), vec![1]);
        assert_eq!(drain(&mut w, &mut ns, 49), Vec::<u32>::new());
        assert_eq!(drain(&mut w, &mut ns, 50), vec![0]);
    }

    #[test]
    fn test_same_slot_next_revolution() {
        let mut w = Wheel::new();
        let mut ns = nodes(1);
        // Due exactly one revolution after the current tick: must not be
        // filed in the current slot (it would be seen now and re-filed
        // forever), and must come out at its tick.
        let e = WHEEL_SLOTS as u32;
        ns[0].expire_tick = e;
        w.file(&mut ns, 0);
        assert_eq!(w.heads[0], NIL);
        assert_eq!(drain(&mut w, &mut ns, u64::from(e) - 1), Vec::<u32>::new());
        assert_eq!(drain(&mut w, &mut ns, u64::from(e)), vec![0]);
    }

    #[test]
    fn test_long_timeout_rewraps() {
        let mut w = Wheel::new();
        let mut ns = nodes(1);
        let e = 3 * WHEEL_SLOTS as u32 + 5;
        ns[0].expire_tick = e;
        w.file(&mut ns, 0);
        let mut t = 0u64;
        while t < u64::from(e) {
            assert_eq!(drain(&mut w, &mut ns, t), Vec::<u32>::new(), "early at {t}");
            t += 1000;
        }
        assert_eq!(drain(&mut w, &mut ns, u64::from(e)), vec![0]);
    }

    #[test]
    fn test_past_due_filed_now() {
        let mut w = Wheel::new();
        let mut ns = nodes(1);
        assert!(drain(&mut w, &mut ns, 500).is_empty());
        // Expiry already behind the wheel: goes to the next processed slot,
        // not a revolution later.
        ns[0].expire_tick = 100;
        w.file(&mut ns, 0);
        assert_eq!(drain(&mut w, &mut ns, 501), vec![0]);
    }

    #[test]
    fn test_catch_up_after_long_pause() {
        let mut w = Wheel::new();
        let mut ns = nodes(2);
        ns[0].expire_tick = 10;
        w.file(&mut ns, 0);
        ns[1].expire_tick = 1_000_000;
        w.file(&mut ns, 1);
        let target = 999_999u64;
        w.catch_up(target);
        assert_eq!(w.next_tick(), target + 1 - WHEEL_SLOTS as u64);
        assert_eq!(drain(&mut w, &mut ns, target), vec![0]);
        assert_eq!(drain(&mut w, &mut ns, target + 1), vec![1]);
    }

    #[test]
    fn test_budget_stops_and_resumes() {
        let mut w = Wheel::new();
        let mut ns = nodes(5);
        for i in 0..5 {
            ns[i as usize].expire_tick = 3;
            w.file(&mut ns, i);
        }
        let mut budget = 2;
        let mut got = Vec::new();
        while let Some(i) = w.pop_due(&mut ns, 3, &mut budget) {
            got.push(i);
        }
        assert_eq!(got.len(), 2);
        assert_eq!(w.next_tick(), 3);
        got.extend(drain(&mut w, &mut ns, 3));
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn test_wrapping_ticks() {
        let mut w = Wheel::new();
        let start = u64::from(u32::MAX) - 10;
        assert!(drain(&mut w, &mut nodes(0), start).is_empty());
        let mut ns = nodes(1);
        // Expiry 20 ticks later wraps past u32::MAX.
        ns[0].expire_tick = (start + 20) as u32;
        w.file(&mut ns, 0);
        assert!(drain(&mut w, &mut ns, start + 19).is_empty());
        assert_eq!(drain(&mut w, &mut ns, start + 20), vec![0]);
    }
}
