//! `lc`: least connections, as `net/netfilter/ipvs/ip_vs_lc.c`.
//!
//! Picks the usable server (weight above 0) with the smallest
//! [`conn_overhead`] `activeconns · 256 + inactconns`,
//! ignoring weights otherwise. Ties go to the first in list order, because
//! IPVS only replaces its candidate on a strictly smaller overhead.
//! Stateless: the answer depends only on the counts passed in.

use crate::{conn_overhead, Dest, FlowInfo, Scheduler};

/// Least-connection scheduler (no state).
#[derive(Clone, Copy, Debug, Default)]
pub struct LeastConn;

impl Scheduler for LeastConn {
    fn pick(&mut self, dests: &[Dest], _flow: &FlowInfo) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (i, d) in dests.iter().enumerate() {
            if d.weight == 0 {
                continue;
            }
            let oh = conn_overhead(d);
            match least {
                Some((_, loh)) if oh >= loh => {}
                _ => least = Some((i, oh)),
            }
        }
        least.map(|(i, _)| i)
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
    fn test_least_overhead() {
        let f = FlowInfo::default();
        // Overheads 2·256+0 = 512, 1·256+300 = 556, 0·256+511 = 511.
        let dests = [d(1, 2, 0), d(1, 1, 300), d(1, 0, 511)];
        assert_eq!(LeastConn.pick(&dests, &f), Some(2));
        // One more inactive on the last: 512 ties with the first → first.
        let dests = [d(1, 2, 0), d(1, 1, 300), d(1, 0, 512)];
        assert_eq!(LeastConn.pick(&dests, &f), Some(0));
    }

    #[test]
    fn test_ignores_weight_but_not_quiesced() {
        let f = FlowInfo::default();
        // Weight does not scale lc; weight 0 excludes.
        let dests = [d(100, 5, 0), d(1, 4, 0), d(0, 0, 0)];
        assert_eq!(LeastConn.pick(&dests, &f), Some(1));
        assert_eq!(LeastConn.pick(&[d(0, 0, 0)], &f), None);
        assert_eq!(LeastConn.pick(&[], &f), None);
    }

    #[test]
    fn test_tie_first_in_list() {
        let f = FlowInfo::default();
        let dests = [d(0, 0, 0), d(3, 1, 1), d(1, 1, 1), d(2, 1, 1)];
        assert_eq!(LeastConn.pick(&dests, &f), Some(1));
    }
}
