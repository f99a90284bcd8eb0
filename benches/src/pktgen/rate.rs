//! The token bucket that paces `fulcrum-pktgen`'s TX loop.
//!
//! Layer: benchmark tooling, per-burst path: integer arithmetic only, no
//! allocation. Time is in ticks of any clock (TSC ticks in DPDK mode) whose
//! frequency `hz` is given; credit is kept in packet × tick units
//! (`pps` per elapsed tick) so no precision is lost at any rate.
//! Guarantees: over any interval of `T` ticks at most
//! `pps × T / hz + burst` packets are granted. Refuses: nothing; a clock
//! going backwards grants nothing.

/// A token bucket granting `pps` packets per second, at most `burst` at once.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    pps: u64,
    hz: u64,
    /// Credit in packet × tick units (one packet = `hz`).
    credit: u128,
    cap: u128,
    last: u64,
}

impl TokenBucket {
    /// A bucket for `pps` packets per second on a clock of `hz` ticks per
    /// second, holding at most `burst` packets, empty at time `now`.
    ///
    /// # Panics
    /// If `pps`, `hz` or `burst` is 0.
    pub fn new(pps: u64, hz: u64, burst: usize, now: u64) -> Self {
        assert!(
            pps > 0 && hz > 0 && burst > 0,
            "TokenBucket::new: zero argument"
        );
        TokenBucket {
            pps,
            hz,
            credit: 0,
            cap: u128::from(hz) * burst as u128,
            last: now,
        }
    }

    /// Grants up to `want` packets at time `now` (ticks); returns how many.
    #[inline]
    pub fn take(&mut self, now: u64, want: usize) -> usize {
        let dt = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        self.credit = (self.credit + u128::from(dt) * u128::from(self.pps)).min(self.cap);
        let n = (self.credit / u128::from(self.hz)).min(want as u128) as usize;
        self.credit -= n as u128 * u128::from(self.hz);
        n
    }

    /// Returns `n` granted packets that were not sent after all.
    #[inline]
    pub fn give_back(&mut self, n: usize) {
        self.credit = (self.credit + n as u128 * u128::from(self.hz)).min(self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_rate_exact_over_time() {
        // 1 Mpps on a 1 GHz clock: one packet per 1000 ticks.
        let mut b = TokenBucket::new(1_000_000, 1_000_000_000, 32, 0);
        let mut granted = 0;
        let mut now = 0;
        for step in [1u64, 7, 333, 1000, 4999, 12_345] {
            for _ in 0..10_000 {
                now += step;
                granted += b.take(now, 64);
            }
        }
        let ideal = now / 1000;
        assert!(
            granted <= ideal as usize + 32 && granted + 32 >= ideal as usize,
            "{granted} vs {ideal}"
        );
    }

    #[test]
    fn test_burst_cap_and_give_back() {
        let mut b = TokenBucket::new(10, 100, 4, 0);
        assert_eq!(b.take(0, 64), 0, "starts empty");
        assert_eq!(b.take(1_000_000, 64), 4, "idle time is capped at one burst");
        assert_eq!(b.take(1_000_000, 64), 0);
        b.give_back(3);
        assert_eq!(b.take(1_000_000, 2), 2);
        assert_eq!(b.take(1_000_000, 5), 1);
        assert_eq!(
            b.take(999_999, 5),
            0,
            "clock going backwards grants nothing"
        );
    }
}
