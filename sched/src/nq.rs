//! `nq`: never queue, as `net/netfilter/ipvs/ip_vs_nq.c`.
//!
//! If some usable server (weight above 0) is idle (activeconns 0), the new
//! connection goes to the first such server in list order, whatever its
//! weight: it will not have to queue. Otherwise `nq` is `sed`: the least
//! `(activeconns + 1) / weight`, ties to the first. Stateless.

use crate::sed::sed_pick;
use crate::{Dest, FlowInfo, Scheduler};

/// Never-queue scheduler (no state).
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverQueue;

impl Scheduler for NeverQueue {
    fn pick(&mut self, dests: &[Dest], _flow: &FlowInfo) -> Option<usize> {
        match dests
            .iter()
            .position(|d| d.weight > 0 && d.active_conns == 0)
        {
            Some(i) => Some(i),
            None => sed_pick(dests),
        }
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
    fn test_idle_first() {
        let f = FlowInfo::default();
        // sed would pick index 0 ((1+1)/100); nq prefers the idle weight-1 one.
        let dests = [d(100, 1, 0), d(1, 0, 9), d(1, 0, 0)];
        assert_eq!(NeverQueue.pick(&dests, &f), Some(1));
    }

    #[test]
    fn test_idle_but_quiesced_skipped() {
        let f = FlowInfo::default();
        // The idle server is quiesced; fall back to sed: 3/1 vs 3/2 → index 2.
        let dests = [d(0, 0, 0), d(1, 2, 0), d(2, 2, 0)];
        assert_eq!(NeverQueue.pick(&dests, &f), Some(2));
    }

    #[test]
    fn test_sed_tie_first() {
        let f = FlowInfo::default();
        // (1+1)/1 = 2 vs (3+1)/2 = 2: tie → first.
        let dests = [d(1, 1, 0), d(2, 3, 0)];
        assert_eq!(NeverQueue.pick(&dests, &f), Some(0));
        assert_eq!(NeverQueue.pick(&[d(0, 0, 0), d(0, 3, 0)], &f), None);
    }
}
