//! `wlc`: weighted least connections, as `net/netfilter/ipvs/ip_vs_wlc.c`
//! (the IPVS default scheduler).
//!
//! Picks the usable server minimising `overhead / weight`, where overhead is
//! [`conn_overhead`]. As IPVS does, the quotients are
//! compared by cross-multiplying in 64 bits (`loh · dw > doh · lw`) so there
//! is no division and no rounding; the candidate changes only on a strictly
//! better ratio, so ties go to the first in list order. Stateless.

use crate::{conn_overhead, Dest, FlowInfo, Scheduler};

/// The `wlc` choice over `dests`, shared with `lblc`/`lblcr` which fall back
/// to it (IPVS `__ip_vs_lblc_schedule` is the same loop).
///
/// Returns the index of the usable server with the least overhead per unit
/// of weight, ties to the first; `None` if no weight is above 0.
pub fn wlc_pick(dests: &[Dest]) -> Option<usize> {
    least_per_weight(dests, conn_overhead)
}

/// The usable server (weight > 0) minimising `overhead(d) / weight`, ties to
/// the first; the loop shared by `wlc` and `sed`, which differ only in the
/// overhead they weigh. Quotients are compared by cross-multiplying in 64
/// bits, as IPVS does, so there is no division and no rounding.
pub(crate) fn least_per_weight(dests: &[Dest], overhead: impl Fn(&Dest) -> u64) -> Option<usize> {
    let mut least: Option<(usize, u64, u64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if d.weight == 0 {
            continue;
        }
        let (doh, dw) = (overhead(d), u64::from(d.weight));
        match least {
            // loh/lw > doh/dw  ⇔  loh·dw > doh·lw  (lw, dw > 0).
            Some((_, loh, lw)) if loh * dw <= doh * lw => {}
            _ => least = Some((i, doh, dw)),
        }
    }
    least.map(|(i, _, _)| i)
}

/// Weighted least-connection scheduler (no state).
#[derive(Clone, Copy, Debug, Default)]
pub struct WeightedLeastConn;

impl Scheduler for WeightedLeastConn {
    #[inline]
    fn pick(&mut self, dests: &[Dest], _flow: &FlowInfo) -> Option<usize> {
        wlc_pick(dests)
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
    fn test_overhead_per_weight() {
        let f = FlowInfo::default();
        // 512/1 = 512, 768/3 = 256, 300/1 = 300.
        let dests = [d(1, 2, 0), d(3, 3, 0), d(1, 0, 300)];
        assert_eq!(WeightedLeastConn.pick(&dests, &f), Some(1));
    }

    #[test]
    fn test_tie_first_in_list() {
        let f = FlowInfo::default();
        // 256/1 = 512/2: equal ratio, the first wins.
        let dests = [d(1, 1, 0), d(2, 2, 0)];
        assert_eq!(WeightedLeastConn.pick(&dests, &f), Some(0));
        let dests = [d(2, 2, 0), d(1, 1, 0)];
        assert_eq!(WeightedLeastConn.pick(&dests, &f), Some(0));
        // All idle: every ratio is 0, the first usable wins.
        let dests = [d(0, 0, 0), d(1, 0, 0), d(9, 0, 0)];
        assert_eq!(WeightedLeastConn.pick(&dests, &f), Some(1));
    }

    #[test]
    fn test_quiesced_never_picked() {
        let f = FlowInfo::default();
        let dests = [d(0, 0, 0), d(1, 100, 100)];
        assert_eq!(WeightedLeastConn.pick(&dests, &f), Some(1));
        assert_eq!(WeightedLeastConn.pick(&[d(0, 0, 0)], &f), None);
    }

    #[test]
    fn test_no_overflow_at_extremes() {
        let f = FlowInfo::default();
        let dests = [
            d(65535, u32::MAX, u32::MAX),
            d(65535, u32::MAX, u32::MAX - 1),
        ];
        assert_eq!(WeightedLeastConn.pick(&dests, &f), Some(1));
    }
}
