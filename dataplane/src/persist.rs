//! Persistent templates: one worker's table of "this client goes to that real
//! server" records, as IPVS keeps for services with `-p timeout` (keepalived
//! `persistence_timeout`).
//!
//! Layer: dataplane, per worker, no sharing. A template is keyed by the
//! virtual service (VIP, vport — 0 for a port-0 "all ports" service —,
//! protocol) and the client address masked with the service's persistence
//! netmask (ipvsadm `-M`). It names the chosen real server by RIP:rport, not
//! by dense id, so it survives a reload that renumbers real servers; the
//! caller maps it back through the service's current real-server list and
//! treats "no longer in the service" as "no template". This mirrors
//! `ip_vs_sched_persist()` in `net/netfilter/ipvs/ip_vs_core.c`, with the
//! template's validity check of `ip_vs_check_template()` at its default
//! `expire_quiescent_template = 0` (a quiesced, weight-0 real server keeps
//! its templates).
//!
//! Departure from IPVS: an IPVS template also stays alive while connections
//! it controls are alive (`n_control`). fulcrum does not count controlled
//! connections, so a template expires `timeout` after the last *new*
//! connection that used it, even if an older connection is still open.
//!
//! Layout (why it looks like this): open addressing with linear probing over
//! a power-of-two slot array at most half full, allocated whole in
//! [`TemplateTable::new`] and never reallocated; deletion shifts the rest of
//! the probe run back (no tombstones), so a table under churn never degrades
//! and never needs a rehash. A slot is just the template (40 bytes): the
//! shift recomputes the hash of each 12-byte key it moves instead of storing
//! it, which would cost 8 more bytes a slot. Expired templates are removed lazily by the lookup that
//! finds them and by a bounded [`TemplateTable::sweep`] from the slow tick,
//! whose cursor walks the slots round-robin.
//!
//! Hashing: `ahash::RandomState::new()`, seeded at random per table: the
//! client chooses its address, so a fixed seed would let it aim at one probe
//! run.
//!
//! Guarantees: no method allocates after [`TemplateTable::new`]; none panics
//! for any argument; lookups and inserts are O(1) expected (load ≤ 1/2);
//! `sweep` visits at most `budget` slots. Refuses: more than
//! [`TemplateTable::capacity`] live templates (the insert reports
//! [`Full`] and the caller schedules without a template).

/// Fewest templates a worker's table holds, whatever `max_conns` is.
pub const MIN_TEMPLATES: u32 = 1024;
/// Most templates a worker's table holds (2^20: 2^21 slots, 80 MiB).
pub const MAX_TEMPLATES: u32 = 1 << 20;
/// Slots the slow tick's sweep examines per call (at the worker's 1 ms tick
/// a full table of 2^21 slots is swept in about 2 s).
pub const SWEEP_SLOTS_PER_TICK: usize = 1024;

/// The template capacity a worker with room for `max_conns` connections
/// gets: `max_conns / 4`, clamped to [`MIN_TEMPLATES`]..=[`MAX_TEMPLATES`].
///
/// Why a quarter: a template stands for a client (or a client network), and
/// persistent services are used by clients that open several connections
/// each; every worker also holds the templates the others create (they are
/// replicated), so the table is per director, not per worker, in content.
pub fn max_templates_for(max_conns: u32) -> u32 {
    (max_conns / 4).clamp(MIN_TEMPLATES, MAX_TEMPLATES)
}

/// What a template is keyed by: virtual service and masked client address.
/// All fields host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    /// VIP of the virtual service.
    pub vip: u32,
    /// Client address ANDed with the persistence netmask (CIP & mask).
    pub cnet: u32,
    /// Virtual port of the service; 0 for a port-0 ("all ports") service,
    /// so every port of one client shares the template.
    pub vport: u16,
    /// IP protocol number (6 TCP, 17 UDP); never 0, which marks a free slot.
    pub proto: u8,
}

/// One persistent template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Template {
    /// Virtual service and client network.
    pub key: TemplateKey,
    /// Chosen real server's address (RIP), host order.
    pub rip: u32,
    /// Chosen real server's configured port, host order (0 in a port-0
    /// service: the connection keeps the client's destination port).
    pub rport: u16,
    /// Worker that scheduled the real server (conflict tie-break).
    pub creator: u16,
    /// Creation stamp on the creator's millisecond clock. Only ever compared
    /// with other templates' stamps (the conflict rule), never with a local
    /// clock: workers' clocks may differ by their start-up offsets.
    pub created_ms: u64,
    /// Local time (this worker's clock, ms) at which the template expires.
    pub expires_ms: u64,
}

impl Template {
    /// Whether `self` wins a conflict with `other` for the same key: the
    /// smaller `(created_ms, creator)` pair wins, a total order every worker
    /// evaluates identically, so all converge on one template.
    pub fn beats(&self, other: &Template) -> bool {
        (self.created_ms, self.creator) < (other.created_ms, other.creator)
    }
    /// Same origin: created by the same worker at the same stamp.
    pub fn same_origin(&self, other: &Template) -> bool {
        (self.created_ms, self.creator) == (other.created_ms, other.creator)
    }
}

/// A template one worker created (or defends in a conflict) and tells the
/// others about over the worker rings. The receiver installs it with
/// `expires_ms = its own now + timeout_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateFact {
    /// The template; its `expires_ms` is the sender's and is ignored.
    pub template: Template,
    /// The service's persistence timeout when sent, ms.
    pub timeout_ms: u32,
}

/// The table is full: no template was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("persistent template table full")]
pub struct Full;

/// A free slot (protocol 0; no service has it).
const FREE: Template = Template {
    key: TemplateKey {
        vip: 0,
        cnet: 0,
        vport: 0,
        proto: 0,
    },
    rip: 0,
    rport: 0,
    creator: 0,
    created_ms: 0,
    expires_ms: 0,
};

impl Template {
    fn is_free(&self) -> bool {
        self.key.proto == 0
    }
}

/// A worker's persistent-template table. See the module documentation.
#[derive(Debug)]
pub struct TemplateTable {
    /// Power-of-two slot array, at least twice the capacity; never resized.
    slots: Vec<Template>,
    /// `slots.len() - 1`.
    mask: usize,
    hasher: ahash::RandomState,
    /// Live (possibly expired but not yet removed) templates.
    len: u32,
    /// Most templates stored at once.
    max: u32,
    /// Next slot the sweep examines.
    cursor: usize,
}

impl TemplateTable {
    /// Bytes of one slot (a [`Template`]): 40.
    pub const SLOT_BYTES: usize = core::mem::size_of::<Template>();

    /// A table for at most `max_templates` templates (at least 1). Allocates
    /// everything it will use: `next_power_of_two(2 × max_templates)` slots
    /// of [`Self::SLOT_BYTES`] bytes.
    ///
    /// # Panics
    /// Only if the allocation fails (Rust's usual out-of-memory abort).
    pub fn new(max_templates: u32) -> Self {
        let max = max_templates.max(1);
        let n_slots = (2 * max as usize).next_power_of_two();
        TemplateTable {
            slots: vec![FREE; n_slots],
            mask: n_slots - 1,
            hasher: ahash::RandomState::new(),
            len: 0,
            max,
            cursor: 0,
        }
    }

    /// Templates stored (expired ones count until a lookup or the sweep
    /// removes them).
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether no template is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most templates the table stores at once.
    pub fn capacity(&self) -> u32 {
        self.max
    }

    /// Home slot of `key`.
    fn home(&self, key: &TemplateKey) -> usize {
        self.hasher.hash_one(key) as usize & self.mask
    }

    /// Slot index holding `key`, if any.
    fn find(&self, key: &TemplateKey) -> Option<usize> {
        let mut i = self.home(key);
        loop {
            let s = self.slots.get(i)?;
            if s.is_free() {
                return None;
            }
            if s.key == *key {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Empties slot `i` and shifts the rest of its probe run back so every
    /// remaining key stays reachable from its home slot.
    fn remove_at(&mut self, i: usize) {
        let mask = self.mask;
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let Some(&s) = self.slots.get(j) else { break };
            if s.is_free() {
                break;
            }
            let home = self.home(&s.key);
            // The entry at `j` may fill the hole unless its home lies
            // cyclically within (hole, j].
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.slots[hole] = s;
                hole = j;
            }
        }
        if let Some(h) = self.slots.get_mut(hole) {
            *h = FREE;
        }
        self.len = self.len.saturating_sub(1);
    }

    /// The live template for `key` at local time `now_ms`. An expired one
    /// is removed and `None` returned (lazy expiry).
    pub fn lookup(&mut self, key: &TemplateKey, now_ms: u64) -> Option<&mut Template> {
        let i = self.find(key)?;
        if self.slots[i].expires_ms <= now_ms {
            self.remove_at(i);
            return None;
        }
        self.slots.get_mut(i)
    }

    /// Stores `t`, replacing any template with the same key.
    ///
    /// # Errors
    /// [`Full`] when the key is new and [`Self::capacity`] templates are
    /// stored; the table is unchanged.
    pub fn upsert(&mut self, t: Template) -> Result<(), Full> {
        if t.key.proto == 0 {
            // Protocol 0 marks a free slot; no service has it.
            return Err(Full);
        }
        let mut i = self.home(&t.key);
        loop {
            let Some(s) = self.slots.get_mut(i) else {
                return Err(Full);
            };
            if s.is_free() {
                if self.len >= self.max {
                    return Err(Full);
                }
                *s = t;
                self.len += 1;
                return Ok(());
            }
            if s.key == t.key {
                *s = t;
                return Ok(());
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Removes the template for `key`; returns whether there was one.
    pub fn remove(&mut self, key: &TemplateKey) -> bool {
        match self.find(key) {
            Some(i) => {
                self.remove_at(i);
                true
            }
            None => false,
        }
    }

    /// Examines at most `budget` slots from the sweep cursor on, removing
    /// the templates expired at `now_ms`; returns how many it removed.
    pub fn sweep(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..budget {
            if self.len == 0 {
                break;
            }
            let i = self.cursor;
            match self.slots.get(i) {
                Some(s) if !s.is_free() && s.expires_ms <= now_ms => {
                    // The shift may pull a later entry into slot `i`: look
                    // at the same slot again on the next step.
                    self.remove_at(i);
                    removed += 1;
                }
                _ => self.cursor = (i + 1) & self.mask,
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cnet: u32) -> TemplateKey {
        TemplateKey {
            vip: 0x0a00_0064,
            cnet,
            vport: 80,
            proto: 6,
        }
    }

    fn tpl(cnet: u32, rip: u32, expires_ms: u64) -> Template {
        Template {
            key: key(cnet),
            rip,
            rport: 80,
            creator: 0,
            created_ms: 0,
            expires_ms,
        }
    }

    #[test]
    fn test_slot_size() {
        assert_eq!(TemplateTable::SLOT_BYTES, 40);
    }

    #[test]
    fn test_sizing() {
        assert_eq!(max_templates_for(0), MIN_TEMPLATES);
        assert_eq!(max_templates_for(1_048_576), 262_144);
        assert_eq!(max_templates_for(u32::MAX), MAX_TEMPLATES);
        let t = TemplateTable::new(1000);
        assert_eq!(t.slots.len(), 2048);
        assert_eq!(TemplateTable::new(0).capacity(), 1);
    }

    #[test]
    fn test_upsert_lookup_replace() {
        let mut t = TemplateTable::new(16);
        t.upsert(tpl(1, 11, 100)).unwrap();
        t.upsert(tpl(2, 12, 100)).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(&key(1), 0).map(|x| x.rip), Some(11));
        t.upsert(tpl(1, 13, 100)).unwrap();
        assert_eq!(t.len(), 2, "same key replaces");
        assert_eq!(t.lookup(&key(1), 0).map(|x| x.rip), Some(13));
        assert!(t.lookup(&key(3), 0).is_none());
        let mut other = key(2);
        other.vport = 81;
        assert!(t.lookup(&other, 0).is_none(), "vport is part of the key");
    }

    #[test]
    fn test_lazy_expiry() {
        let mut t = TemplateTable::new(16);
        t.upsert(tpl(1, 11, 100)).unwrap();
        assert!(t.lookup(&key(1), 99).is_some());
        assert!(t.lookup(&key(1), 100).is_none());
        assert_eq!(t.len(), 0, "the expired template was removed");
    }

    #[test]
    fn test_full_then_room_after_remove() {
        let mut t = TemplateTable::new(3);
        for c in 0..3 {
            t.upsert(tpl(c, 1, 100)).unwrap();
        }
        assert_eq!(t.upsert(tpl(9, 1, 100)), Err(Full));
        assert!(t.upsert(tpl(2, 7, 100)).is_ok(), "replacing needs no room");
        assert!(t.remove(&key(0)));
        assert!(!t.remove(&key(0)));
        assert!(t.upsert(tpl(9, 1, 100)).is_ok());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn test_sweep_bounded_and_complete() {
        let mut t = TemplateTable::new(64);
        for c in 0..64 {
            t.upsert(tpl(c, 1, if c % 2 == 0 { 10 } else { 1000 }))
                .unwrap();
        }
        assert_eq!(t.sweep(50, 0), 0);
        let mut removed = 0;
        let mut calls = 0;
        while removed < 32 {
            let n = t.sweep(50, 8);
            assert!(n <= 8);
            removed += n;
            calls += 1;
            assert!(calls < 100, "sweep must make progress");
        }
        assert_eq!(removed, 32);
        assert_eq!(t.len(), 32);
        for c in 0..64u32 {
            assert_eq!(t.lookup(&key(c), 50).is_some(), c % 2 == 1, "cnet {c}");
        }
    }

    #[test]
    fn test_conflict_order() {
        let a = Template {
            created_ms: 5,
            creator: 1,
            ..tpl(1, 1, 0)
        };
        let b = Template {
            created_ms: 5,
            creator: 0,
            ..tpl(1, 2, 0)
        };
        let c = Template {
            created_ms: 4,
            creator: 3,
            ..tpl(1, 3, 0)
        };
        assert!(b.beats(&a) && !a.beats(&b));
        assert!(c.beats(&a) && c.beats(&b));
        assert!(!a.beats(&a) && a.same_origin(&a) && !a.same_origin(&b));
    }

    proptest::proptest! {
        /// Against a model map: after any mix of inserts, removals, lookups
        /// and sweeps, the table answers exactly as the model does (the
        /// backward shift never strands a key), and never holds more than
        /// its capacity.
        #[test]
        fn test_matches_model(ops in proptest::collection::vec((0u8..4, 0u32..48, 0u64..200), 1..400)) {
            let mut t = TemplateTable::new(32);
            let mut model: std::collections::HashMap<u32, Template> = Default::default();
            let mut now = 0u64;
            for (op, c, x) in ops {
                now += 1;
                match op {
                    0 => {
                        let tp = tpl(c, x as u32, now + x);
                        let full = !model.contains_key(&c) && model.len() >= 32;
                        let r = t.upsert(tp);
                        proptest::prop_assert_eq!(r.is_err(), full);
                        if !full { model.insert(c, tp); }
                    }
                    1 => {
                        proptest::prop_assert_eq!(t.remove(&key(c)), model.remove(&c).is_some());
                    }
                    2 => {
                        let want = model.get(&c).copied().filter(|m| m.expires_ms > now);
                        if model.get(&c).is_some_and(|m| m.expires_ms <= now) { model.remove(&c); }
                        proptest::prop_assert_eq!(t.lookup(&key(c), now).copied(), want);
                    }
                    _ => {
                        let n = t.sweep(now, x as usize % 20);
                        proptest::prop_assert!(n <= x as usize % 20);
                        // Sweep removes only expired ones: the model drops
                        // them lazily, so compare live contents below.
                        let live = model.values().filter(|m| m.expires_ms > now).count() as u32;
                        proptest::prop_assert!(t.len() >= live);
                        model.retain(|k, m| m.expires_ms > now || t.find(&key(*k)).is_some());
                    }
                }
                proptest::prop_assert_eq!(t.len() as usize, model.len());
                proptest::prop_assert!(t.len() <= t.capacity());
            }
        }
    }
}
