//! `wrr`: weighted round robin, as `net/netfilter/ipvs/ip_vs_wrr.c`.
//!
//! IPVS keeps a current weight `cw` that starts at the maximum weight and
//! steps down by the gcd of all weights each time the index wraps; a server is
//! picked when its weight is at least `cw`. For weights 4,3,2 this yields the
//! period `A A B A B C A B C`. Weights are read on every pick, so a changed
//! weight takes effect at once (IPVS recomputes max/gcd on update).

use crate::{Dest, FlowInfo, Scheduler};

/// Weighted round-robin state.
#[derive(Clone, Debug, Default)]
pub struct WeightedRoundRobin {
    /// Index of the last pick; `None` before the first.
    last: Option<usize>,
    /// Current weight.
    cw: u32,
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Scheduler for WeightedRoundRobin {
    fn pick(&mut self, dests: &[Dest], _flow: &FlowInfo) -> Option<usize> {
        let n = dests.len();
        let mw = dests.iter().map(|d| d.weight).max().unwrap_or(0);
        if n == 0 || mw == 0 {
            return None;
        }
        let di = dests
            .iter()
            .filter(|d| d.weight > 0)
            .fold(0, |g, d| gcd(d.weight, g));
        let mut i = self.last.map_or(n - 1, |l| l.min(n - 1));
        if self.cw > mw {
            self.cw = mw;
        }
        // Each full wrap lowers cw by di ≥ 1, so at most (mw/di + 1)·n steps.
        loop {
            i = (i + 1) % n;
            if i == 0 {
                self.cw = self.cw.saturating_sub(di);
                if self.cw == 0 {
                    self.cw = mw;
                }
            }
            if dests[i].weight >= self.cw && dests[i].weight > 0 {
                self.last = Some(i);
                return Some(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(ws: &[u32]) -> Vec<Dest> {
        ws.iter()
            .map(|&weight| Dest {
                weight,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn test_ipvs_sequence_4_3_2() {
        let mut s = WeightedRoundRobin::default();
        let dests = d(&[4, 3, 2]);
        let seq: Vec<_> = (0..18)
            .map(|_| s.pick(&dests, &FlowInfo::default()).unwrap())
            .collect();
        // A A B A B C A B C, twice.
        assert_eq!(seq, [0, 0, 1, 0, 1, 2, 0, 1, 2, 0, 0, 1, 0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn test_gcd_stepping() {
        // Weights 4 and 2 have gcd 2: period is A A B (cw 4, then 2).
        let mut s = WeightedRoundRobin::default();
        let dests = d(&[4, 2]);
        let seq: Vec<_> = (0..6)
            .map(|_| s.pick(&dests, &FlowInfo::default()).unwrap())
            .collect();
        assert_eq!(seq, [0, 0, 1, 0, 0, 1]);
    }

    #[test]
    fn test_zero_weight_never_picked() {
        let mut s = WeightedRoundRobin::default();
        let dests = d(&[0, 3, 0]);
        for _ in 0..10 {
            assert_eq!(s.pick(&dests, &FlowInfo::default()), Some(1));
        }
        assert_eq!(s.pick(&d(&[0, 0]), &FlowInfo::default()), None);
    }

    proptest! {
        #[test]
        fn prop_share_equals_weight(ws in proptest::collection::vec(0u32..20, 1..8)) {
            let total: u32 = ws.iter().sum();
            prop_assume!(total > 0);
            let mut s = WeightedRoundRobin::default();
            let dests = d(&ws);
            let mut count = vec![0u32; ws.len()];
            // One full period of the IPVS wrr picks each server exactly
            // weight/gcd times; over `total` periods, exactly weight·total/gcd.
            for _ in 0..total * 4 {
                count[s.pick(&dests, &FlowInfo::default()).unwrap()] += 1;
            }
            for (c, w) in count.iter().zip(&ws) {
                prop_assert_eq!(*c, w * 4);
            }
        }
    }
}
