//! The rate estimator behind `fulcrumctl -L -n --rate` (CPS, InPPS, OutPPS,
//! InBPS, OutBPS) and the counter baselines behind `fulcrumctl -Z`.
//!
//! Layer: control, slow path; pure (no clock, no threads): the daemon calls
//! [`Rates::sample`] every [`SAMPLE_INTERVAL`] from its main loop with the
//! time that really passed, and [`Rates::apply`] when it builds a status.
//!
//! The estimator mirrors IPVS's (`net/netfilter/ipvs/ip_vs_est.c`): every
//! 2 s it takes the difference of each counter since the last sample, turns
//! it into a per-second rate in fixed point (2^10 units for connections and
//! packets, 2^5 for bytes, as IPVS's `<< 9` / `<< 4` over 2 s), and folds it
//! into an exponentially weighted average with weight 1/4
//! (`avg += (rate - avg) >> 2`); reading rounds as `ip_vs_read_estimator`
//! does (`(avg + 0x1FF) >> 10`, `(avg + 0xF) >> 5`). A steady rate is
//! therefore reached to within 10 % after 9 samples (18 s): (3/4)^9 < 0.1.
//!
//! Guarantees:
//! - a rate is never negative and never jumps because a counter went
//!   backwards: each real server's delta is taken from its own last reading
//!   with a saturating difference, and a service's rate is fed with the sum
//!   of its current real servers' deltas, so removing a real server (a
//!   reload, `-d`) lowers the service's rate instead of producing a negative
//!   sample;
//! - a real server or service that leaves the snapshot loses its estimator
//!   and baseline; one that appears starts from its current counters, at
//!   rate 0 (IPVS's `ip_vs_start_estimator`);
//! - `-Z` ([`Rates::zero`]) records the current counters as the baseline
//!   that [`Rates::apply`] subtracts from `conns`, `in_pkts`, `out_pkts`,
//!   `in_bytes`, `out_bytes` (activeconns/inactconns are state and stay), and
//!   restarts the estimators at rate 0 from those counters, as IPVS's
//!   `ip_vs_zero_stats` / `ip_vs_zero_estimator` do; the rates never see a
//!   negative delta because they read the workers' raw counters, which only
//!   grow.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dataplane::snapshot::{ServiceKey, Snapshot};
use dataplane::stats::{RealStats, SharedStats};

use crate::admin::{RateStatus, Status};

/// How often the daemon samples the counters: IPVS's 2 s.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(2);

/// The five counters an estimator follows (a real server's, summed over
/// every worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → real server.
    pub in_pkts: u64,
    /// Packets real server → client.
    pub out_pkts: u64,
    /// Bytes client → real server.
    pub in_bytes: u64,
    /// Bytes real server → client.
    pub out_bytes: u64,
}

impl Counters {
    /// `self - earlier`, field by field, saturating at 0.
    pub fn since(self, earlier: Counters) -> Counters {
        Counters {
            conns: self.conns.saturating_sub(earlier.conns),
            in_pkts: self.in_pkts.saturating_sub(earlier.in_pkts),
            out_pkts: self.out_pkts.saturating_sub(earlier.out_pkts),
            in_bytes: self.in_bytes.saturating_sub(earlier.in_bytes),
            out_bytes: self.out_bytes.saturating_sub(earlier.out_bytes),
        }
    }

    fn add(&mut self, d: Counters) {
        self.conns = self.conns.saturating_add(d.conns);
        self.in_pkts = self.in_pkts.saturating_add(d.in_pkts);
        self.out_pkts = self.out_pkts.saturating_add(d.out_pkts);
        self.in_bytes = self.in_bytes.saturating_add(d.in_bytes);
        self.out_bytes = self.out_bytes.saturating_add(d.out_bytes);
    }
}

impl From<RealStats> for Counters {
    fn from(r: RealStats) -> Counters {
        Counters {
            conns: r.conns,
            in_pkts: r.in_pkts,
            out_pkts: r.out_pkts,
            in_bytes: r.in_bytes,
            out_bytes: r.out_bytes,
        }
    }
}

/// Real server `id`'s counters summed over every worker's published copy.
pub fn real_totals(stats: &[Arc<SharedStats>], id: u32) -> Counters {
    let mut sum = Counters::default();
    for s in stats {
        sum.add(s.load_real(id as usize).into());
    }
    sum
}

/// One smoothed rate set, in IPVS's fixed point: `cps`, `inpps`, `outpps`
/// in 2^-10 per second, `inbps`, `outbps` in 2^-5 bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimator {
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

/// `delta` over `elapsed_ms` as a per-second rate scaled by 2^`shift`
/// (IPVS: `delta << 9` for cps over exactly 2 s = 2^10 / 2).
fn scaled(delta: u64, elapsed_ms: u64, shift: u32) -> i64 {
    let r = (u128::from(delta) << shift) * 1000 / u128::from(elapsed_ms.max(1));
    r.min(i64::MAX as u128) as i64
}

/// One EWMA step with weight 1/4.
fn ewma(avg: &mut i64, rate: i64) {
    *avg = avg.saturating_add(rate.saturating_sub(*avg) >> 2).max(0);
}

impl Estimator {
    /// Folds one sample, `delta` counted over `elapsed`, into the averages.
    pub fn update(&mut self, delta: Counters, elapsed: Duration) {
        let ms = elapsed.as_millis().min(u128::from(u64::MAX)) as u64;
        ewma(&mut self.cps, scaled(delta.conns, ms, 10));
        ewma(&mut self.inpps, scaled(delta.in_pkts, ms, 10));
        ewma(&mut self.outpps, scaled(delta.out_pkts, ms, 10));
        ewma(&mut self.inbps, scaled(delta.in_bytes, ms, 5));
        ewma(&mut self.outbps, scaled(delta.out_bytes, ms, 5));
    }

    /// The rates as `ipvsadm -L --rate` shows them, rounded as
    /// `ip_vs_read_estimator`.
    pub fn rate(&self) -> RateStatus {
        let r10 = |v: i64| (v.max(0) as u64).saturating_add(0x1FF) >> 10;
        let r5 = |v: i64| (v.max(0) as u64).saturating_add(0xF) >> 5;
        RateStatus {
            cps: r10(self.cps),
            inpps: r10(self.inpps),
            outpps: r10(self.outpps),
            inbps: r5(self.inbps),
            outbps: r5(self.outbps),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct RealEntry {
    /// Raw counters at the last sample (or zero).
    last: Counters,
    /// Raw counters at the last `-Z`, subtracted from what is shown.
    baseline: Counters,
    est: Estimator,
}

/// The estimators and `-Z` baselines of every real server (by its stable
/// id) and service (by VIP, port, protocol) of the running snapshot.
#[derive(Debug, Default)]
pub struct Rates {
    reals: HashMap<u32, RealEntry>,
    services: HashMap<ServiceKey, Estimator>,
}

impl Rates {
    /// No estimators yet: the first [`Rates::sample`] starts them.
    pub fn new() -> Rates {
        Rates::default()
    }

    /// One estimator step over `snap`'s services and real servers, with
    /// `totals(id)` the raw counters of real server `id` now and `elapsed`
    /// the time since the previous step (nominally [`SAMPLE_INTERVAL`]).
    /// Entries for services and real servers no longer in `snap` are
    /// dropped; new ones start at their current counters.
    pub fn sample(&mut self, snap: &Snapshot, totals: impl Fn(u32) -> Counters, elapsed: Duration) {
        let mut reals = HashMap::with_capacity(snap.reals.len());
        let mut services = HashMap::with_capacity(snap.services.len());
        for svc in &snap.services {
            let mut sum = Counters::default();
            for &id in &svc.reals {
                let now = totals(id);
                let mut e = match self.reals.get(&id) {
                    Some(e) => *e,
                    None => RealEntry {
                        last: now,
                        ..RealEntry::default()
                    },
                };
                let delta = now.since(e.last);
                e.est.update(delta, elapsed);
                e.last = now;
                sum.add(delta);
                reals.insert(id, e);
            }
            let mut est = self.services.get(&svc.key).copied().unwrap_or_default();
            est.update(sum, elapsed);
            services.insert(svc.key, est);
        }
        self.reals = reals;
        self.services = services;
    }

    /// `fulcrumctl -Z`: zeroes the shown counters and the rates of the
    /// service `only` (all services when `None`) and its real servers, with
    /// `totals` as in [`Rates::sample`]. Returns how many services were
    /// zeroed (0 when `only` names no service of `snap`).
    pub fn zero(
        &mut self,
        snap: &Snapshot,
        totals: impl Fn(u32) -> Counters,
        only: Option<ServiceKey>,
    ) -> usize {
        let mut n = 0;
        for svc in snap
            .services
            .iter()
            .filter(|s| only.is_none_or(|k| k == s.key))
        {
            for &id in &svc.reals {
                let now = totals(id);
                self.reals.insert(
                    id,
                    RealEntry {
                        last: now,
                        baseline: now,
                        est: Estimator::default(),
                    },
                );
            }
            self.services.insert(svc.key, Estimator::default());
            n += 1;
        }
        n
    }

    /// Fills `st` (built by [`crate::admin::build_status`] from the same
    /// `snap`, so its services and real servers are `snap`'s in order):
    /// every service and real server gets its `rate`, and the `-Z`
    /// baselines are subtracted from the counters, the services' totals
    /// being the sums over their real servers again.
    pub fn apply(&self, snap: &Snapshot, st: &mut Status) {
        for (svc, s) in snap.services.iter().zip(st.services.iter_mut()) {
            let ids = svc
                .reals
                .iter()
                .filter(|&&id| snap.reals.get(id as usize).is_some());
            for (&id, r) in ids.zip(s.reals.iter_mut()) {
                let e = self.reals.get(&id).copied().unwrap_or_default();
                let b = e.baseline;
                r.conns = r.conns.saturating_sub(b.conns);
                r.in_pkts = r.in_pkts.saturating_sub(b.in_pkts);
                r.out_pkts = r.out_pkts.saturating_sub(b.out_pkts);
                r.in_bytes = r.in_bytes.saturating_sub(b.in_bytes);
                r.out_bytes = r.out_bytes.saturating_sub(b.out_bytes);
                r.rate = Some(e.est.rate());
            }
            let total = |f: fn(&crate::admin::RealStatus) -> u64| s.reals.iter().map(f).sum();
            s.conns = total(|r| r.conns);
            s.in_pkts = total(|r| r.in_pkts);
            s.out_pkts = total(|r| r.out_pkts);
            s.in_bytes = total(|r| r.in_bytes);
            s.out_bytes = total(|r| r.out_bytes);
            s.rate = Some(
                self.services
                    .get(&svc.key)
                    .copied()
                    .unwrap_or_default()
                    .rate(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::build_status;
    use dataplane::snapshot::{Method, Proto, RealServer, Service};
    use sched::SchedKind;
    use std::cell::RefCell;

    const TWO_S: Duration = SAMPLE_INTERVAL;

    fn c(conns: u64, pkts: u64, bytes: u64) -> Counters {
        Counters {
            conns,
            in_pkts: pkts,
            out_pkts: pkts / 2,
            in_bytes: bytes,
            out_bytes: bytes * 3,
        }
    }

    /// One TCP service with real servers 1 and 2 (and 3 when `three`).
    fn snap(three: bool) -> Snapshot {
        let real = |ip: u32| RealServer {
            ip,
            port: 80,
            weight: 1,
            method: Method::Nat,
            tun: Default::default(),
            service: 0,
            available: true,
        };
        let mut reals = vec![real(0), real(0x0a01_000b), real(0x0a01_000c)];
        let mut ids = vec![1, 2];
        if three {
            reals.push(real(0x0a01_000d));
            ids.push(3);
        }
        Snapshot {
            reals,
            services: vec![Service {
                key: ServiceKey {
                    vip: 0x0a00_0064,
                    vport: 80,
                    proto: Proto::Tcp,
                },
                scheduler: SchedKind::Rr,
                sched_flags: Default::default(),
                sched_params: Default::default(),
                mh_table: None,
                reals: ids,
                persistence: None,
                local_addresses: Vec::new(),
                client_address: Default::default(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn test_estimator_matches_ipvs_fixed_point() {
        // One sample of 200 connections in 2 s from rest: IPVS's
        // cps = (200 << 9) >> 2 = 25600, read (25600 + 511) >> 10 = 25.
        let mut e = Estimator::default();
        e.update(c(200, 2000, 200_000), TWO_S);
        assert_eq!(e.cps, 25_600);
        let r = e.rate();
        assert_eq!((r.cps, r.inpps, r.outpps), (25, 250, 125));
        // bytes: (200000 << 4) >> 2 = 800000, read (800000 + 15) >> 5 = 25000.
        assert_eq!((r.inbps, r.outbps), (25_000, 75_000));
    }

    #[test]
    fn test_steady_rate_converges_within_10_percent_in_9_samples() {
        let mut e = Estimator::default();
        let mut seen = Vec::new();
        for _ in 0..12 {
            e.update(c(200, 0, 0), TWO_S);
            seen.push(e.rate().cps);
        }
        // 100·(1 − (3/4)^n), rounded.
        for (n, &cps) in seen.iter().enumerate() {
            let want = 100.0 * (1.0 - 0.75f64.powi(n as i32 + 1));
            assert!(
                (cps as f64 - want).abs() <= 1.0,
                "sample {n}: {cps} vs {want}"
            );
        }
        assert!(seen[4] < 90, "not settled after 5 samples: {}", seen[4]);
        assert!(
            seen[8..].iter().all(|&v| (91..=100).contains(&v)),
            "{seen:?}"
        );
    }

    #[test]
    fn test_step_and_elapsed_scaling() {
        let mut e = Estimator::default();
        for _ in 0..30 {
            e.update(c(200, 0, 0), TWO_S);
        }
        assert_eq!(e.rate().cps, 100);
        // The rate steps down to 20/s: after 9 samples within 10 % of the
        // step (100 → 20: within 8 of 20).
        for _ in 0..9 {
            e.update(c(40, 0, 0), TWO_S);
        }
        let cps = e.rate().cps;
        assert!((20..=28).contains(&cps), "{cps}");
        // A late sample (4 s for 400 conns) is the same 100/s, not 200/s.
        let mut late = Estimator::default();
        let mut nominal = Estimator::default();
        late.update(c(400, 0, 0), Duration::from_secs(4));
        nominal.update(c(200, 0, 0), TWO_S);
        assert_eq!(late, nominal);
        // Idle decays to 0 and never below.
        for _ in 0..200 {
            e.update(Counters::default(), TWO_S);
        }
        assert_eq!(e.rate(), RateStatus::default());
        assert_eq!(e, Estimator::default());
    }

    /// Raw per-id counters the "workers" publish, growing by `per_sample`
    /// each step.
    struct Feed {
        now: RefCell<HashMap<u32, Counters>>,
    }

    impl Feed {
        fn new() -> Feed {
            Feed {
                now: RefCell::new(HashMap::new()),
            }
        }
        fn grow(&self, id: u32, d: Counters) {
            self.now.borrow_mut().entry(id).or_default().add(d);
        }
        fn set(&self, id: u32, v: Counters) {
            self.now.borrow_mut().insert(id, v);
        }
        fn totals(&self) -> impl Fn(u32) -> Counters + '_ {
            move |id| self.now.borrow().get(&id).copied().unwrap_or_default()
        }
    }

    #[test]
    fn test_service_rate_is_the_sum_and_survives_removal() {
        let feed = Feed::new();
        let mut rates = Rates::new();
        let s3 = snap(true);
        // Real 1 and 2 run at 50 conn/s each, 3 at 100; 3 had history.
        feed.set(3, c(1_000_000, 0, 0));
        for _ in 0..40 {
            feed.grow(1, c(100, 0, 0));
            feed.grow(2, c(100, 0, 0));
            feed.grow(3, c(200, 0, 0));
            rates.sample(&s3, feed.totals(), TWO_S);
        }
        let mut st = build_status(&s3, &[], &[], 0, 0);
        rates.apply(&s3, &mut st);
        let svc = &st.services[0];
        assert_eq!(svc.rate.map(|r| r.cps), Some(200));
        let per: Vec<u64> = svc.reals.iter().map(|r| r.rate.unwrap().cps).collect();
        assert_eq!(per, vec![50, 50, 100]);

        // Real 3 is removed (a reload) and its counters vanish: no negative
        // or huge sample; the service's rate decays towards 100.
        let s2 = snap(false);
        feed.set(3, Counters::default());
        let mut prev = 200;
        for _ in 0..12 {
            feed.grow(1, c(100, 0, 0));
            feed.grow(2, c(100, 0, 0));
            rates.sample(&s2, feed.totals(), TWO_S);
            let cps = rates.services[&s2.services[0].key].rate().cps;
            assert!(cps <= prev && cps >= 100, "{cps} after {prev}");
            prev = cps;
        }
        assert!(prev <= 110, "{prev}");
        assert!(!rates.reals.contains_key(&3), "removed real forgotten");
        // Re-added later, it starts at rate 0 from its counters then.
        feed.set(3, c(5_000_000, 0, 0));
        rates.sample(&s3, feed.totals(), TWO_S);
        assert_eq!(rates.reals[&3].est.rate().cps, 0);
    }

    #[test]
    fn test_zero_subtracts_baseline_and_restarts_rates() {
        let feed = Feed::new();
        let mut rates = Rates::new();
        let sn = snap(false);
        for _ in 0..20 {
            feed.grow(1, c(100, 1000, 50_000));
            feed.grow(2, c(10, 100, 5_000));
            rates.sample(&sn, feed.totals(), TWO_S);
        }
        // A zero for another service changes nothing.
        let other = ServiceKey {
            vport: 81,
            ..sn.services[0].key
        };
        assert_eq!(rates.zero(&sn, feed.totals(), Some(other)), 0);
        assert_eq!(rates.zero(&sn, feed.totals(), Some(sn.services[0].key)), 1);
        // What the status shows: the raw counters (what build_status sums
        // from the workers) minus the baseline.
        let mut st = build_status(&sn, &[], &[], 0, 0);
        st.services[0].reals[0].conns = 2000;
        st.services[0].reals[0].in_bytes = 1_000_000;
        st.services[0].reals[0].active_conns = 4;
        st.services[0].reals[1].conns = 200;
        rates.apply(&sn, &mut st);
        let s = &st.services[0];
        assert_eq!((s.reals[0].conns, s.reals[0].in_bytes), (0, 0));
        assert_eq!(s.reals[0].active_conns, 4, "state is not a counter");
        assert_eq!((s.reals[1].conns, s.conns), (0, 0));
        assert_eq!(s.rate, Some(RateStatus::default()));
        assert_eq!(s.reals[0].rate, Some(RateStatus::default()));
        // After the zero the rates climb again from 0, never negative or huge.
        let mut seen = Vec::new();
        for _ in 0..12 {
            feed.grow(1, c(100, 1000, 50_000));
            feed.grow(2, c(10, 100, 5_000));
            rates.sample(&sn, feed.totals(), TWO_S);
            seen.push(rates.services[&sn.services[0].key].rate().cps);
        }
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert!(seen[0] > 0 && *seen.last().unwrap() <= 55, "{seen:?}");
        // The counters count again from the zero: one more sample's worth.
        let mut st = build_status(&sn, &[], &[], 0, 0);
        st.services[0].reals[0].conns = 2000 + 12 * 100;
        rates.apply(&sn, &mut st);
        assert_eq!(st.services[0].reals[0].conns, 1200);
    }
}
