//! `lblc`: locality-based least connections, as
//! `net/netfilter/ipvs/ip_vs_lblc.c`.
//!
//! Meant for cache clusters: the director remembers which real server last
//! served each destination IP and keeps sending that destination there, so
//! the server's cache stays hot. On a miss, or when the remembered server is
//! quiesced or overloaded, it picks by `wlc` and remembers that instead.
//!
//! "Overloaded" is IPVS's rule: activeconns > weight *and* some server in the
//! service has activeconns·2 < weight (moving only helps if someone has
//! room).
//!
//! Bounded memory: the table is direct-mapped, [`SchedParams::lblc_table_len`]
//! entries (default 16384, allocated at the first pick), indexed by a hash of
//! the destination IP. A destination whose slot holds another destination
//! evicts it (the newer one wins, an LRU of depth one), so `pick` never
//! allocates after the first call. IPVS instead chains entries in a 1024-bucket
//! hash and garbage-collects when it passes 16 × 1024 entries.
//!
//! Time: `pick` has no clock; [`AnyScheduler::tick`] sets it. Entries unused
//! for `lblc_expire_ms` (default 24 h, IPVS's `lblc_expiration`) are dropped
//! at the next tick that sweeps (at most one sweep per second). The table is
//! emptied when the list of real-server identities changes, because its
//! entries are indices into that list.
//!
//! [`SchedParams::lblc_table_len`]: crate::SchedParams::lblc_table_len
//! [`AnyScheduler::tick`]: crate::AnyScheduler::tick

use crate::dh::bucket_of;
use crate::wlc::wlc_pick;
use crate::{BuiltFor, Dest, FlowInfo, Scheduler};

/// Minimum time between two expiry sweeps of a locality table.
pub(crate) const SWEEP_INTERVAL_MS: u64 = 1000;

/// IPVS `is_overloaded` of `lblc`/`lblcr`: `d` has more active connections
/// than its weight while some server of the service is under half its
/// weight.
#[inline]
pub(crate) fn is_overloaded(d: &Dest, dests: &[Dest]) -> bool {
    d.active_conns > d.weight
        && dests
            .iter()
            .any(|o| u64::from(o.active_conns) * 2 < u64::from(o.weight))
}

/// Slot value meaning "no entry".
const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Entry {
    dst_ip: u32,
    /// Index into `dests`, or [`EMPTY`].
    dest: u32,
    lastuse_ms: u64,
}

const VACANT: Entry = Entry {
    dst_ip: 0,
    dest: EMPTY,
    lastuse_ms: 0,
};

/// Locality-based least-connection state: the destination-IP table and the
/// clock set by `tick`.
#[derive(Clone, Debug)]
pub struct LocalityLeastConn {
    table: Vec<Entry>,
    table_len: usize,
    expire_ms: u64,
    now_ms: u64,
    clock_started: bool,
    last_sweep_ms: u64,
    built_for: BuiltFor,
}

impl LocalityLeastConn {
    /// An `lblc` with `table_len` entries (power of two; default 16384) that
    /// forgets a destination unused for `expire_ms` (default 24 h).
    pub fn new(table_len: usize, expire_ms: u64) -> Self {
        LocalityLeastConn {
            table: Vec::new(),
            table_len: table_len.max(1),
            expire_ms,
            now_ms: 0,
            clock_started: false,
            last_sweep_ms: 0,
            built_for: BuiltFor::default(),
        }
    }

    /// The server index remembered for `dst_ip` (host order), if any.
    pub fn remembered(&self, dst_ip: u32) -> Option<usize> {
        let e = self.table.get(bucket_of(dst_ip, self.table_len))?;
        (e.dest != EMPTY && e.dst_ip == dst_ip).then_some(e.dest as usize)
    }

    /// Sets the clock to `now_ms` and, at most once per second, drops entries
    /// unused for longer than the expiry. The first tick only starts the
    /// clock (entries made before it are stamped with it), so a monotonic
    /// clock that starts far from 0 does not expire everything at once.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        if !self.clock_started {
            self.clock_started = true;
            self.last_sweep_ms = now_ms;
            for e in &mut self.table {
                e.lastuse_ms = now_ms;
            }
            return;
        }
        if now_ms.saturating_sub(self.last_sweep_ms) < SWEEP_INTERVAL_MS {
            return;
        }
        self.last_sweep_ms = now_ms;
        for e in &mut self.table {
            if e.dest != EMPTY && now_ms.saturating_sub(e.lastuse_ms) > self.expire_ms {
                *e = VACANT;
            }
        }
    }
}

impl Default for LocalityLeastConn {
    fn default() -> Self {
        let p = crate::SchedParams::default();
        LocalityLeastConn::new(p.lblc_table_len, p.lblc_expire_ms)
    }
}

impl Scheduler for LocalityLeastConn {
    fn pick(&mut self, dests: &[Dest], flow: &FlowInfo) -> Option<usize> {
        if !self.built_for.matches_ids(dests) {
            // Indices would name other servers now: forget them all.
            self.table.clear();
            self.built_for.set(dests);
        }
        if self.table.is_empty() {
            self.table.resize(self.table_len, VACANT);
        }
        let now = self.now_ms;
        let b = bucket_of(flow.dst_ip, self.table_len);
        let e = self.table.get_mut(b)?;
        if e.dest != EMPTY && e.dst_ip == flow.dst_ip {
            let i = e.dest as usize;
            if let Some(d) = dests.get(i) {
                if d.weight > 0 && !is_overloaded(d, dests) {
                    e.lastuse_ms = now;
                    return Some(i);
                }
            }
        }
        let i = wlc_pick(dests)?;
        *e = Entry {
            dst_ip: flow.dst_ip,
            dest: i as u32,
            lastuse_ms: now,
        };
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
    const Y: u32 = 0x0a00_0002;

    #[test]
    fn test_sticks_to_remembered_server() {
        let mut s = LocalityLeastConn::default();
        assert_eq!(s.pick(&[d(1, 0), d(1, 0)], &to(X)), Some(0));
        assert_eq!(s.remembered(X), Some(0));
        // wlc would now prefer 1, but X stays on 0 (not overloaded).
        assert_eq!(s.pick(&[d(1, 1), d(1, 0)], &to(X)), Some(0));
        // A new destination gets the wlc choice.
        assert_eq!(s.pick(&[d(1, 1), d(1, 0)], &to(Y)), Some(1));
        assert_eq!(s.remembered(Y), Some(1));
    }

    #[test]
    fn test_overloaded_moves_and_is_remembered() {
        let mut s = LocalityLeastConn::default();
        assert_eq!(s.pick(&[d(1, 0), d(1, 0)], &to(X)), Some(0));
        // 0 has 2 active > weight 1 and 1 is under half its weight: move.
        assert_eq!(s.pick(&[d(1, 2), d(1, 0)], &to(X)), Some(1));
        assert_eq!(s.remembered(X), Some(1));
        // 0 recovered, but X now lives on 1.
        assert_eq!(s.pick(&[d(1, 0), d(1, 1)], &to(X)), Some(1));
    }

    #[test]
    fn test_over_weight_but_nobody_has_room_stays() {
        let mut s = LocalityLeastConn::default();
        assert_eq!(s.pick(&[d(1, 0), d(1, 0)], &to(X)), Some(0));
        // 0 is over weight, but 1 (1 active, weight 1) is not under half.
        assert_eq!(s.pick(&[d(1, 2), d(1, 1)], &to(X)), Some(0));
    }

    #[test]
    fn test_quiesced_remembered_server_rescheduled() {
        let mut s = LocalityLeastConn::default();
        assert_eq!(s.pick(&[d(1, 0), d(1, 5)], &to(X)), Some(0));
        assert_eq!(s.pick(&[d(0, 0), d(1, 5)], &to(X)), Some(1));
        assert_eq!(s.pick(&[d(0, 0), d(0, 5)], &to(X)), None);
    }

    #[test]
    fn test_expiry_by_tick() {
        let exp = 10_000;
        let mut s = LocalityLeastConn::new(64, exp);
        s.tick(5_000_000);
        assert_eq!(s.pick(&[d(1, 0), d(1, 0)], &to(X)), Some(0));
        s.tick(5_000_000 + exp);
        // Not yet older than the expiry.
        assert_eq!(s.pick(&[d(1, 1), d(1, 0)], &to(X)), Some(0));
        s.tick(5_000_000 + 2 * exp + 1);
        assert_eq!(s.remembered(X), None);
        assert_eq!(s.pick(&[d(1, 1), d(1, 0)], &to(X)), Some(1));
    }

    #[test]
    fn test_first_tick_does_not_expire() {
        let mut s = LocalityLeastConn::new(64, 1000);
        assert_eq!(s.pick(&[d(1, 0), d(1, 0)], &to(X)), Some(0));
        s.tick(1 << 40);
        s.tick((1 << 40) + 1000);
        assert_eq!(s.remembered(X), Some(0));
    }

    #[test]
    fn test_collision_evicts() {
        // One slot: Y evicts X.
        let mut s = LocalityLeastConn::new(1, 1000);
        assert_eq!(s.pick(&[d(1, 0), d(1, 0)], &to(X)), Some(0));
        assert_eq!(s.pick(&[d(1, 1), d(1, 0)], &to(Y)), Some(1));
        assert_eq!(s.remembered(X), None);
        assert_eq!(s.pick(&[d(1, 0), d(1, 1)], &to(X)), Some(0));
    }

    #[test]
    fn test_identity_change_forgets() {
        let mut s = LocalityLeastConn::default();
        let mut dests = [d(1, 0), d(1, 0)];
        assert_eq!(s.pick(&dests, &to(X)), Some(0));
        dests[0].active_conns = 1;
        dests[1].id = 7;
        assert_eq!(s.pick(&dests, &to(X)), Some(1));
    }
}
