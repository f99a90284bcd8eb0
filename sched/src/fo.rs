//! `fo`: weighted failover, as `net/netfilter/ipvs/ip_vs_fo.c`.
//!
//! Every new connection goes to the usable server with the highest weight;
//! ties go to the first in list order (IPVS replaces its candidate only on a
//! strictly higher weight). Connection counts are ignored, so lowering the
//! active server's weight (or quiescing it) is how traffic fails over.
//! Stateless.

use crate::{Dest, FlowInfo, Scheduler};

/// Weighted-failover scheduler (no state).
#[derive(Clone, Copy, Debug, Default)]
pub struct WeightedFailover;

impl Scheduler for WeightedFailover {
    fn pick(&mut self, dests: &[Dest], _flow: &FlowInfo) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for (i, d) in dests.iter().enumerate() {
            if d.weight > best.map_or(0, |(_, w)| w) {
                best = Some((i, d.weight));
            }
        }
        best.map(|(i, _)| i)
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

    #[test]
    fn test_highest_weight_ignores_counts() {
        let f = FlowInfo::default();
        let dests = [d(1, 0), d(5, 1000), d(3, 0)];
        for _ in 0..3 {
            assert_eq!(WeightedFailover.pick(&dests, &f), Some(1));
        }
    }

    #[test]
    fn test_tie_first_and_failover() {
        let f = FlowInfo::default();
        assert_eq!(
            WeightedFailover.pick(&[d(2, 0), d(7, 0), d(7, 0)], &f),
            Some(1)
        );
        // The primary is quiesced: the next highest takes over.
        assert_eq!(
            WeightedFailover.pick(&[d(2, 0), d(0, 0), d(7, 0)], &f),
            Some(2)
        );
        assert_eq!(WeightedFailover.pick(&[d(0, 0), d(0, 9)], &f), None);
    }
}
