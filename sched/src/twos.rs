//! `twos`: weighted random two choices, as `net/netfilter/ipvs/ip_vs_twos.c`
//! ("the power of two choices", Mitzenmacher).
//!
//! Draws two servers at random, each with probability proportional to its
//! weight (quiesced servers never), and gives the connection to the one with
//! the lower `overhead / weight` ([`conn_overhead`]), compared by 64-bit
//! cross-multiplication; on a tie the first draw wins. This keeps most of
//! `wlc`'s balance without every worker herding onto the same least-loaded
//! server at once.
//!
//! Randomness: a per-worker xorshift64* stream seeded from
//! [`SchedParams::twos_seed`](crate::SchedParams::twos_seed), so a given seed
//! and input sequence always give the same picks (IPVS uses the kernel RNG).
//! O(n) per pick, no allocation.

use crate::{conn_overhead, Dest, FlowInfo, Scheduler};

/// Replaces a zero seed: xorshift's state must never be 0.
const SEED_IF_ZERO: u64 = 0x9e37_79b9_7f4a_7c15;

/// Two-choices scheduler: its random state.
#[derive(Clone, Debug)]
pub struct TwoChoices {
    state: u64,
}

impl TwoChoices {
    /// A `twos` whose random stream starts from `seed` (0 is replaced by a
    /// fixed non-zero constant).
    pub fn new(seed: u64) -> Self {
        TwoChoices {
            state: if seed == 0 { SEED_IF_ZERO } else { seed },
        }
    }

    /// Next value of the xorshift64* stream.
    #[inline]
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl Default for TwoChoices {
    fn default() -> Self {
        TwoChoices::new(1)
    }
}

/// The usable server whose cumulative weight range holds `r`
/// (0 ≤ r < total weight).
#[inline]
fn weighted_nth(dests: &[Dest], mut r: u64) -> Option<usize> {
    for (i, d) in dests.iter().enumerate() {
        let w = u64::from(d.weight);
        if r < w {
            return Some(i);
        }
        r -= w;
    }
    None
}

impl Scheduler for TwoChoices {
    fn pick(&mut self, dests: &[Dest], _flow: &FlowInfo) -> Option<usize> {
        let total: u64 = dests.iter().map(|d| u64::from(d.weight)).sum();
        if total == 0 {
            return None;
        }
        // Modulo bias is below total/2⁶⁴: negligible for ≤ 2³² servers
        // of weight ≤ 65535.
        let c1 = weighted_nth(dests, self.next_u64() % total)?;
        let c2 = weighted_nth(dests, self.next_u64() % total)?;
        let (d1, d2) = (&dests[c1], &dests[c2]);
        // oh2/w2 < oh1/w1 ⇔ oh2·w1 < oh1·w2.
        if conn_overhead(d2) * u64::from(d1.weight) < conn_overhead(d1) * u64::from(d2.weight) {
            Some(c2)
        } else {
            Some(c1)
        }
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

    fn run(s: &mut TwoChoices, dests: &[Dest], n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| s.pick(dests, &FlowInfo::default()).unwrap())
            .collect()
    }

    #[test]
    fn test_seeded_sequence_repeats() {
        let dests = [d(1, 0), d(2, 0), d(3, 0)];
        let a = run(&mut TwoChoices::new(42), &dests, 64);
        assert_eq!(a, run(&mut TwoChoices::new(42), &dests, 64));
        assert_ne!(a, run(&mut TwoChoices::new(43), &dests, 64));
        // Seed 0 is usable (replaced), and differs from seed 1.
        let z = run(&mut TwoChoices::new(0), &dests, 64);
        assert!(z.iter().all(|&i| i < 3));
    }

    #[test]
    fn test_idle_shares_follow_weight() {
        // All idle: every tie goes to the first draw, so shares ∝ weight.
        let dests = [d(1, 0), d(0, 0), d(3, 0)];
        let picks = run(&mut TwoChoices::new(7), &dests, 40_000);
        let c0 = picks.iter().filter(|&&i| i == 0).count();
        assert!(!picks.contains(&1));
        assert!((9_000..11_000).contains(&c0), "{c0}");
    }

    #[test]
    fn test_prefers_less_loaded_of_two() {
        // The loaded server wins only when both draws hit it: p = 1/4.
        let dests = [d(1, 50), d(1, 0)];
        let picks = run(&mut TwoChoices::new(9), &dests, 40_000);
        let loaded = picks.iter().filter(|&&i| i == 0).count();
        assert!((9_000..11_000).contains(&loaded), "{loaded}");
    }

    #[test]
    fn test_single_usable_and_none() {
        let mut s = TwoChoices::default();
        assert_eq!(run(&mut s, &[d(0, 0), d(4, 9), d(0, 0)], 20), vec![1; 20]);
        assert_eq!(s.pick(&[d(0, 0)], &FlowInfo::default()), None);
        assert_eq!(s.pick(&[], &FlowInfo::default()), None);
    }
}
