//! `lblcr`: locality-based least connections with replication, as
//! `net/netfilter/ipvs/ip_vs_lblcr.c`.
//!
//! Like `lblc`, but each destination IP maps to a *set* of real servers: a
//! hot destination can be served by several caches. A connection goes to the
//! set's least loaded usable member (least `overhead / weight`); if there is
//! none, or it is overloaded (IPVS's rule, see `lblc`), the service-wide
//! `wlc` choice serves it and joins the set. A set with more than one member
//! that has not gained a member for `lblcr_set_expire_ms` (default 6 min)
//! sheds its most loaded member on each pick until one is left, as IPVS does
//! (IPVS measures that age against its 24 h `lblcr_expiration`; fulcrum
//! uses a separate, shorter knob so sets shrink back in minutes).
//!
//! Bounded memory: direct-mapped table as `lblc` (default 16384 entries,
//! allocated at the first pick; a colliding destination evicts the older
//! one), and at most [`SET_MAX`] members per set: joining a full set replaces
//! a quiesced member if any, else the most loaded. `pick` never allocates
//! after the first call. Time comes from [`AnyScheduler::tick`], as in
//! `lblc`; entries unused for `lblc_expire_ms` (24 h) are dropped.
//!
//! [`AnyScheduler::tick`]: crate::AnyScheduler::tick

use crate::dh::bucket_of;
use crate::lblc::{is_overloaded, SWEEP_INTERVAL_MS};
use crate::wlc::wlc_pick;
use crate::{conn_overhead, BuiltFor, Dest, FlowInfo, Scheduler};

/// Most servers one destination IP's set holds.
pub const SET_MAX: usize = 8;

#[derive(Clone, Copy, Debug)]
struct Entry {
    dst_ip: u32,
    used: bool,
    set_len: u8,
    /// Indices into `dests`; the first `set_len` are members.
    set: [u32; SET_MAX],
    lastuse_ms: u64,
    /// When a member last joined.
    lastmod_ms: u64,
}

const VACANT: Entry = Entry {
    dst_ip: 0,
    used: false,
    set_len: 0,
    set: [0; SET_MAX],
    lastuse_ms: 0,
    lastmod_ms: 0,
};

impl Entry {
    fn members(&self) -> &[u32] {
        &self.set[..usize::from(self.set_len).min(SET_MAX)]
    }

    /// Position in the set of the least loaded usable member
    /// (IPVS `ip_vs_dest_set_min`), ties to the first.
    fn min_pos(&self, dests: &[Dest]) -> Option<usize> {
        let mut least: Option<(usize, u64, u64)> = None;
        for (k, &i) in self.members().iter().enumerate() {
            let Some(d) = dests.get(i as usize) else {
                continue;
            };
            if d.weight == 0 {
                continue;
            }
            let (doh, dw) = (conn_overhead(d), u64::from(d.weight));
            match least {
                Some((_, loh, lw)) if loh * dw <= doh * lw => {}
                _ => least = Some((k, doh, dw)),
            }
        }
        least.map(|(k, _, _)| k)
    }

    /// Position in the set of the most loaded usable member
    /// (IPVS `ip_vs_dest_set_max`), ties to the first.
    fn max_pos(&self, dests: &[Dest]) -> Option<usize> {
        let mut most: Option<(usize, u64, u64)> = None;
        for (k, &i) in self.members().iter().enumerate() {
            let Some(d) = dests.get(i as usize) else {
                continue;
            };
            if d.weight == 0 {
                continue;
            }
            let (doh, dw) = (conn_overhead(d), u64::from(d.weight));
            match most {
                // moh/mw < doh/dw ⇔ moh·dw < doh·mw.
                Some((_, moh, mw)) if moh * dw >= doh * mw => {}
                _ => most = Some((k, doh, dw)),
            }
        }
        most.map(|(k, _, _)| k)
    }

    fn remove_at(&mut self, k: usize) {
        let len = usize::from(self.set_len).min(SET_MAX);
        if k < len {
            self.set.copy_within(k + 1..len, k);
            self.set_len -= 1;
        }
    }

    /// Adds server `i` (IPVS `ip_vs_dest_set_insert`): no-op if present.
    fn insert(&mut self, i: u32, dests: &[Dest], now_ms: u64) {
        if self.members().contains(&i) {
            return;
        }
        if usize::from(self.set_len) >= SET_MAX {
            let unusable = self
                .members()
                .iter()
                .position(|&j| match dests.get(j as usize) {
                    Some(d) => d.weight == 0,
                    None => true,
                });
            match unusable.or_else(|| self.max_pos(dests)) {
                Some(k) => self.remove_at(k),
                None => self.remove_at(0),
            }
        }
        self.set[usize::from(self.set_len)] = i;
        self.set_len += 1;
        self.lastmod_ms = now_ms;
    }
}

/// Locality-based least-connection-with-replication state.
#[derive(Clone, Debug)]
pub struct LocalityLeastConnReplicated {
    table: Vec<Entry>,
    table_len: usize,
    expire_ms: u64,
    set_expire_ms: u64,
    now_ms: u64,
    clock_started: bool,
    last_sweep_ms: u64,
    built_for: BuiltFor,
}

impl LocalityLeastConnReplicated {
    /// An `lblcr` with `table_len` entries (power of two; default 16384),
    /// entry expiry `expire_ms` (default 24 h) and set shrink age
    /// `set_expire_ms` (default 6 min).
    pub fn new(table_len: usize, expire_ms: u64, set_expire_ms: u64) -> Self {
        LocalityLeastConnReplicated {
            table: Vec::new(),
            table_len: table_len.max(1),
            expire_ms,
            set_expire_ms,
            now_ms: 0,
            clock_started: false,
            last_sweep_ms: 0,
            built_for: BuiltFor::default(),
        }
    }

    /// The server set remembered for `dst_ip` (host order): indices into
    /// the current `dests`, in joining order. Empty when unknown.
    pub fn servers_for(&self, dst_ip: u32) -> &[u32] {
        match self.table.get(bucket_of(dst_ip, self.table_len)) {
            Some(e) if e.used && e.dst_ip == dst_ip => e.members(),
            _ => &[],
        }
    }

    /// Sets the clock; drops entries unused for the expiry (at most one
    /// sweep per second; the first tick only starts the clock), as
    /// [`LocalityLeastConn::tick`](crate::LocalityLeastConn::tick).
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        if !self.clock_started {
            self.clock_started = true;
            self.last_sweep_ms = now_ms;
            for e in &mut self.table {
                e.lastuse_ms = now_ms;
                e.lastmod_ms = now_ms;
            }
            return;
        }
        if now_ms.saturating_sub(self.last_sweep_ms) < SWEEP_INTERVAL_MS {
            return;
        }
        self.last_sweep_ms = now_ms;
        for e in &mut self.table {
            if e.used && now_ms.saturating_sub(e.lastuse_ms) > self.expire_ms {
                *e = VACANT;
            }
        }
    }
}

impl Default for LocalityLeastConnReplicated {
    fn default() -> Self {
        let p = crate::SchedParams::default();
        LocalityLeastConnReplicated::new(p.lblc_table_len, p.lblc_expire_ms, p.lblcr_set_expire_ms)
    }
}

impl Scheduler for LocalityLeastConnReplicated {
    fn pick(&mut self, dests: &[Dest], flow: &FlowInfo) -> Option<usize> {
        if !self.built_for.matches_ids(dests) {
            self.table.clear();
            self.built_for.set(dests);
        }
        if self.table.is_empty() {
            self.table.resize(self.table_len, VACANT);
        }
        let now = self.now_ms;
        let b = bucket_of(flow.dst_ip, self.table_len);
        let e = self.table.get_mut(b)?;
        if !(e.used && e.dst_ip == flow.dst_ip) {
            let i = wlc_pick(dests)?;
            *e = Entry {
                dst_ip: flow.dst_ip,
                used: true,
                set_len: 1,
                set: [i as u32; SET_MAX],
                lastuse_ms: now,
                lastmod_ms: now,
            };
            return Some(i);
        }
        e.lastuse_ms = now;
        let min = e.min_pos(dests).map(|k| e.set[k] as usize);
        if e.set_len > 1 && now.saturating_sub(e.lastmod_ms) > self.set_expire_ms {
            if let Some(k) = e.max_pos(dests) {
                e.remove_at(k);
            }
        }
        if let Some(i) = min {
            if !is_overloaded(&dests[i], dests) {
                return Some(i);
            }
        }
        let i = wlc_pick(dests)?;
        e.insert(i as u32, dests, now);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(w: u32, a: u32) -> Dest {
        Dest {
            weight: w,
            active_conns: a,
            inactive_conns: 0,
            id: 0,
        }
    }

    fn to(dst_ip: u32) -> FlowInfo {
        FlowInfo {
            dst_ip,
            ..FlowInfo::default()
        }
    }

    const X: u32 = 0x0a00_0001;

    #[test]
    fn test_miss_then_sticky() {
        let mut s = LocalityLeastConnReplicated::default();
        assert_eq!(s.pick(&[d(1, 0), d(1, 0)], &to(X)), Some(0));
        assert_eq!(s.servers_for(X), [0]);
        assert_eq!(s.pick(&[d(1, 1), d(1, 0)], &to(X)), Some(0));
        assert_eq!(s.servers_for(X), [0]);
    }

    #[test]
    fn test_overload_replicates() {
        let mut s = LocalityLeastConnReplicated::default();
        assert_eq!(s.pick(&[d(1, 0), d(1, 0), d(1, 0)], &to(X)), Some(0));
        // 0 overloaded (2 > 1, others have room): wlc picks 1, which joins.
        assert_eq!(s.pick(&[d(1, 2), d(1, 0), d(1, 1)], &to(X)), Some(1));
        assert_eq!(s.servers_for(X), [0, 1]);
        // Both members serve X now: the less loaded one wins; 2 never does.
        assert_eq!(s.pick(&[d(1, 0), d(1, 1), d(1, 0)], &to(X)), Some(0));
        assert_eq!(s.pick(&[d(1, 1), d(1, 0), d(1, 0)], &to(X)), Some(1));
        // A quiesced member is skipped.
        assert_eq!(s.pick(&[d(1, 1), d(0, 0), d(1, 0)], &to(X)), Some(0));
    }

    #[test]
    fn test_set_shrinks_after_set_expire() {
        let set_exp = 360_000;
        let mut s = LocalityLeastConnReplicated::new(64, 86_400_000, set_exp);
        s.tick(1_000);
        assert_eq!(s.pick(&[d(1, 0), d(1, 0)], &to(X)), Some(0));
        assert_eq!(s.pick(&[d(1, 2), d(1, 0)], &to(X)), Some(1));
        assert_eq!(s.servers_for(X), [0, 1]);
        // Not yet: equal age.
        s.tick(1_000 + set_exp);
        assert_eq!(s.pick(&[d(1, 1), d(1, 0)], &to(X)), Some(1));
        assert_eq!(s.servers_for(X), [0, 1]);
        // Older than set_expire: the most loaded (0) leaves; 1 serves.
        s.tick(2_000 + set_exp);
        assert_eq!(s.pick(&[d(1, 1), d(1, 0)], &to(X)), Some(1));
        assert_eq!(s.servers_for(X), [1]);
        // One member left: no further shrinking.
        s.tick(4_000 + 2 * set_exp);
        assert_eq!(s.pick(&[d(1, 0), d(1, 1)], &to(X)), Some(1));
        assert_eq!(s.servers_for(X), [1]);
    }

    #[test]
    fn test_set_bounded() {
        let n = SET_MAX + 3;
        let mut s = LocalityLeastConnReplicated::default();
        let mut dests = vec![d(1, 0); n];
        assert_eq!(s.pick(&dests, &to(X)), Some(0));
        // Overload each newest member in turn: every server joins once.
        for k in 0..n - 1 {
            dests[k].active_conns = 2;
            assert_eq!(s.pick(&dests, &to(X)), Some(k + 1));
            assert!(s.servers_for(X).len() <= SET_MAX);
            assert!(s.servers_for(X).contains(&((k + 1) as u32)));
        }
        assert_eq!(s.servers_for(X).len(), SET_MAX);
    }

    #[test]
    fn test_entry_expiry_and_none() {
        let mut s = LocalityLeastConnReplicated::new(64, 5_000, 1_000);
        s.tick(0);
        assert_eq!(s.pick(&[d(1, 0), d(1, 0)], &to(X)), Some(0));
        s.tick(6_000);
        assert_eq!(s.servers_for(X), [] as [u32; 0]);
        assert_eq!(s.pick(&[d(0, 0), d(0, 0)], &to(X)), None);
    }
}
