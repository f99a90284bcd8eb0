//! `ovf`: overflow connection, as `net/netfilter/ipvs/ip_vs_ovf.c`.
//!
//! Connections go to the usable server with the highest weight until its
//! activeconns exceeds its weight, then overflow to the next highest. As in
//! IPVS, a server is eligible while `activeconns <= weight` (IPVS skips it
//! when `activeconns > weight`), so a weight-2 server takes its third
//! connection. Ties go to the first in list order. When every server is over
//! its weight, `ovf` refuses (`None`), as IPVS does. Only active connections
//! count, so the scheduler is a poor fit for UDP (as the IPVS source notes).
//! Stateless.

use crate::{Dest, FlowInfo, Scheduler};

/// Overflow-connection scheduler (no state).
#[derive(Clone, Copy, Debug, Default)]
pub struct Overflow;

impl Scheduler for Overflow {
    fn pick(&mut self, dests: &[Dest], _flow: &FlowInfo) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for (i, d) in dests.iter().enumerate() {
            if d.weight == 0 || d.active_conns > d.weight {
                continue;
            }
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
    fn test_overflow_sequence() {
        let f = FlowInfo::default();
        // Weights 2 and 1: the first takes connections while active ≤ 2.
        let mut dests = [d(1, 0), d(2, 0)];
        let mut seq = Vec::new();
        while let Some(i) = Overflow.pick(&dests, &f) {
            seq.push(i);
            dests[i].active_conns += 1;
        }
        // 3 to the weight-2 server (active 0, 1, 2), then 2 to the weight-1.
        assert_eq!(seq, [1, 1, 1, 0, 0]);
    }

    #[test]
    fn test_tie_first_and_quiesced() {
        let f = FlowInfo::default();
        assert_eq!(Overflow.pick(&[d(3, 9), d(2, 0), d(2, 0)], &f), Some(1));
        assert_eq!(Overflow.pick(&[d(0, 0), d(1, 1)], &f), Some(1));
        assert_eq!(Overflow.pick(&[d(0, 0), d(1, 2)], &f), None);
    }
}
