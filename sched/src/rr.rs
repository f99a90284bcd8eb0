//! `rr`: round robin, as `net/netfilter/ipvs/ip_vs_rr.c`.
//!
//! Walks the destination list from just after the last pick and takes the
//! first server whose weight is above 0. Quiesced servers (weight 0) are
//! skipped, so the sequence over the rest stays a strict rotation.

use crate::{Dest, FlowInfo, Scheduler};

/// Round-robin state: the index of the last pick.
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    last: Option<usize>,
}

impl Scheduler for RoundRobin {
    fn pick(&mut self, dests: &[Dest], _flow: &FlowInfo) -> Option<usize> {
        let n = dests.len();
        if n == 0 {
            return None;
        }
        let start = self.last.map_or(0, |l| (l + 1) % n);
        for k in 0..n {
            let i = (start + k) % n;
            if dests[i].weight > 0 {
                self.last = Some(i);
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ws: &[u32]) -> Vec<Dest> {
        ws.iter()
            .map(|&weight| Dest {
                weight,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn test_rotation() {
        let mut s = RoundRobin::default();
        let dests = d(&[1, 1, 1]);
        let seq: Vec<_> = (0..7)
            .map(|_| s.pick(&dests, &FlowInfo::default()).unwrap())
            .collect();
        assert_eq!(seq, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn test_skips_quiesced() {
        let mut s = RoundRobin::default();
        let dests = d(&[1, 0, 5]);
        let seq: Vec<_> = (0..4)
            .map(|_| s.pick(&dests, &FlowInfo::default()).unwrap())
            .collect();
        assert_eq!(seq, [0, 2, 0, 2]);
    }

    #[test]
    fn test_none_when_all_quiesced_or_empty() {
        let mut s = RoundRobin::default();
        assert_eq!(s.pick(&d(&[0, 0]), &FlowInfo::default()), None);
        assert_eq!(s.pick(&[], &FlowInfo::default()), None);
    }

    #[test]
    fn test_survives_shrinking_list() {
        let mut s = RoundRobin::default();
        let big = d(&[1, 1, 1, 1]);
        for _ in 0..4 {
            s.pick(&big, &FlowInfo::default());
        }
        assert_eq!(s.pick(&d(&[1, 1]), &FlowInfo::default()), Some(0));
    }
}
