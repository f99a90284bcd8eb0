//! The result of a `fulcrum-pktgen` run: a human table or one JSON object.
//!
//! Layer: benchmark tooling, after the run (allocates freely). Units:
//! rates in Mpps (10^6 frames per second) over the TX window (from the
//! first burst until the packet or time bound), bytes without FCS,
//! latencies in µs (round trip from TX stamp to RX, same process, TSC
//! converted with the EAL-measured frequency). Loss is `tx - rx` when
//! receiving, never negative.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::engine::Counters;

/// Latency percentiles in µs over `samples` round trips.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// Number of samples (received stamped frames).
    pub samples: u64,
    /// Smallest, in µs.
    pub min_us: f64,
    /// Mean, in µs.
    pub mean_us: f64,
    /// 50th percentile, in µs.
    pub p50_us: f64,
    /// 90th percentile, in µs.
    pub p90_us: f64,
    /// 99th percentile, in µs.
    pub p99_us: f64,
    /// 99.9th percentile, in µs.
    pub p999_us: f64,
    /// Largest, in µs.
    pub max_us: f64,
}

/// Everything `fulcrum-pktgen` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The scenario file.
    pub scenario: String,
    /// Frames sent.
    pub tx_pkts: u64,
    /// Bytes sent (no FCS).
    pub tx_bytes: u64,
    /// Frames sent with a stamp.
    pub tx_stamped: u64,
    /// Seconds from the first burst to the end of TX.
    pub tx_seconds: f64,
    /// Sent rate, Mpps over the TX window.
    pub tx_mpps: f64,
    /// Whether an RX side was polled.
    pub receiving: bool,
    /// Frames received.
    pub rx_pkts: u64,
    /// Bytes received (no FCS).
    pub rx_bytes: u64,
    /// Received rate, Mpps over the TX window.
    pub rx_mpps: f64,
    /// `tx_pkts - rx_pkts` when receiving (0 otherwise, and never negative).
    pub lost_pkts: u64,
    /// Lost frames in percent of sent.
    pub loss_pct: f64,
    /// Received stamped frames out of TX order.
    pub rx_reordered: u64,
    /// Bursts the TX queue took only partly.
    pub tx_full: u64,
    /// Bursts skipped for lack of pool buffers.
    pub alloc_fail: u64,
    /// Round-trip latency, if any stamped frame came back.
    pub latency: Option<Latency>,
}

impl Report {
    /// Builds the report of a run from its counters, the clock frequency
    /// `hz` (ticks per second) and the latency histogram (ns).
    pub fn new(
        scenario: &str,
        c: &Counters,
        hz: u64,
        receiving: bool,
        hist: &Histogram<u64>,
    ) -> Report {
        let secs = c.tx_ticks as f64 / hz.max(1) as f64;
        let mpps = |n: u64| {
            if secs > 0.0 {
                n as f64 / secs / 1e6
            } else {
                0.0
            }
        };
        let lost = if receiving {
            c.tx_pkts.saturating_sub(c.rx_pkts)
        } else {
            0
        };
        let us = |ns: u64| ns as f64 / 1e3;
        let latency = (!hist.is_empty()).then(|| Latency {
            samples: hist.len(),
            min_us: us(hist.min()),
            mean_us: hist.mean() / 1e3,
            p50_us: us(hist.value_at_quantile(0.50)),
            p90_us: us(hist.value_at_quantile(0.90)),
            p99_us: us(hist.value_at_quantile(0.99)),
            p999_us: us(hist.value_at_quantile(0.999)),
            max_us: us(hist.max()),
        });
        Report {
            scenario: scenario.to_string(),
            tx_pkts: c.tx_pkts,
            tx_bytes: c.tx_bytes,
            tx_stamped: c.tx_stamped,
            tx_seconds: secs,
            tx_mpps: mpps(c.tx_pkts),
            receiving,
            rx_pkts: c.rx_pkts,
            rx_bytes: c.rx_bytes,
            rx_mpps: mpps(c.rx_pkts),
            lost_pkts: lost,
            loss_pct: if c.tx_pkts > 0 {
                lost as f64 * 100.0 / c.tx_pkts as f64
            } else {
                0.0
            },
            rx_reordered: c.rx_reordered,
            tx_full: c.tx_full,
            alloc_fail: c.alloc_fail,
            latency,
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Report always serializes")
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "scenario     {}", self.scenario)?;
        writeln!(
            f,
            "tx           {:>12} pkts {:>14} bytes {:>9.3} Mpps over {:.3} s ({} stamped)",
            self.tx_pkts, self.tx_bytes, self.tx_mpps, self.tx_seconds, self.tx_stamped
        )?;
        if self.receiving {
            writeln!(
                f,
                "rx           {:>12} pkts {:>14} bytes {:>9.3} Mpps",
                self.rx_pkts, self.rx_bytes, self.rx_mpps
            )?;
            writeln!(
                f,
                "loss         {:>12} pkts ({:.3} %), {} reordered",
                self.lost_pkts, self.loss_pct, self.rx_reordered
            )?;
        } else {
            writeln!(f, "rx           (no --rx-port)")?;
        }
        writeln!(
            f,
            "tx stalls    {} partial bursts, {} empty-pool bursts",
            self.tx_full, self.alloc_fail
        )?;
        match &self.latency {
            Some(l) => {
                writeln!(
                    f,
                    "latency (µs) {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  samples",
                    "p50", "p90", "p99", "p99.9", "max", "mean"
                )?;
                writeln!(
                    f,
                    "             {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {}",
                    l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.mean_us, l.samples
                )
            }
            None => writeln!(f, "latency      no samples (no stamped frame came back)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::engine::latency_histogram;

    #[test]
    fn test_report_numbers_and_json() {
        let c = Counters {
            tx_pkts: 2_000_000,
            tx_bytes: 120_000_000,
            tx_stamped: 1000,
            rx_pkts: 1_500_000,
            rx_bytes: 90_000_000,
            rx_stamped: 1000,
            tx_ticks: 2_000_000_000,
            run_ticks: 2_100_000_000,
            ..Counters::default()
        };
        let mut h = latency_histogram();
        for ns in 1..=1000u64 {
            h.record(ns * 1000).unwrap();
        }
        let r = Report::new("x.ron", &c, 1_000_000_000, true, &h);
        assert_eq!(
            (r.tx_mpps, r.rx_mpps, r.lost_pkts, r.loss_pct),
            (1.0, 0.75, 500_000, 25.0)
        );
        let l = r.latency.clone().unwrap();
        assert_eq!(l.samples, 1000);
        assert!(
            (l.p50_us - 500.0).abs() < 1.0 && (l.p99_us - 990.0).abs() < 1.0,
            "{l:?}"
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["latency"]["samples"], 1000);
        assert_eq!(v["lost_pkts"], 500_000);
        let text = r.to_string();
        assert!(
            text.contains("p99.9") && text.contains("500000 pkts (25.000 %)"),
            "{text}"
        );
        let none = Report::new("x.ron", &c, 1_000_000_000, false, &latency_histogram());
        assert_eq!((none.lost_pkts, none.latency), (0, None));
    }
}
