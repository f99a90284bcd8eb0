//! `sed`: shortest expected delay, as `net/netfilter/ipvs/ip_vs_sed.c`.
//!
//! The expected delay of server i is `(activeconns_i + 1) / weight_i`: the
//! new connection would be served after the ones already active, at a speed
//! proportional to the weight. IPVS counts only active connections here
//! (`ip_vs_sed_dest_overhead`), not the 256·active + inactive overhead of
//! `wlc`. Compared by 64-bit cross-multiplication, ties to the first in list
//! order. Stateless.

use crate::{Dest, FlowInfo, Scheduler};

/// `activeconns + 1`, IPVS `ip_vs_sed_dest_overhead`.
#[inline]
pub(crate) fn sed_overhead(d: &Dest) -> u64 {
    u64::from(d.active_conns) + 1
}

/// The `sed` choice, shared with `nq` (which adds an idle-server shortcut).
/// `None` if no weight is above 0.
pub(crate) fn sed_pick(dests: &[Dest]) -> Option<usize> {
    crate::wlc::least_per_weight(dests, sed_overhead)
}

/// Shortest-expected-delay scheduler (no state).
#[derive(Clone, Copy, Debug, Default)]
pub struct ShortestExpectedDelay;

impl Scheduler for ShortestExpectedDelay {
    #[inline]
    fn pick(&mut self, dests: &[Dest], _flow: &FlowInfo) -> Option<usize> {
        sed_pick(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(w: u32, a: u32, i: u32) -> Dest {
        Dest {
            weight: w,
            active_conns: a,
            inactive_conns: i,
            id: 0,
        }
    }

    #[test]
    fn test_expected_delay() {
        let f = FlowInfo::default();
        // (2+1)/1 = 3, (4+1)/2 = 2.5, (8+1)/3 = 3.
        let dests = [d(1, 2, 0), d(2, 4, 0), d(3, 8, 0)];
        assert_eq!(ShortestExpectedDelay.pick(&dests, &f), Some(1));
    }

    #[test]
    fn test_inactive_ignored() {
        let f = FlowInfo::default();
        // wlc would prefer the second (256 < 1000); sed sees 2/1 vs 2/1 → first.
        let dests = [d(1, 1, 1000), d(1, 1, 0)];
        assert_eq!(ShortestExpectedDelay.pick(&dests, &f), Some(0));
        let dests = [d(1, 1, 1000), d(1, 0, 0)];
        assert_eq!(ShortestExpectedDelay.pick(&dests, &f), Some(1));
    }

    #[test]
    fn test_idle_heavier_server_wins_tie_break_first() {
        let f = FlowInfo::default();
        // (0+1)/1 = 1 vs (1+1)/2 = 1: tie → first.
        let dests = [d(1, 0, 0), d(2, 1, 0)];
        assert_eq!(ShortestExpectedDelay.pick(&dests, &f), Some(0));
        // All idle: 1/w, the heaviest wins.
        let dests = [d(1, 0, 0), d(5, 0, 0), d(5, 0, 0)];
        assert_eq!(ShortestExpectedDelay.pick(&dests, &f), Some(1));
    }

    #[test]
    fn test_quiesced_never_picked() {
        let f = FlowInfo::default();
        let dests = [d(0, 0, 0), d(1, 50, 0)];
        assert_eq!(ShortestExpectedDelay.pick(&dests, &f), Some(1));
        assert_eq!(ShortestExpectedDelay.pick(&[d(0, 0, 0)], &f), None);
    }
}
