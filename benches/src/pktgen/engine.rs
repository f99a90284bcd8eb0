//! The TX/RX loop of `fulcrum-pktgen`, generic over the port
//! ([`PortQueue`]) and the clock ([`Clock`]), so the same loop runs on DPDK
//! ports and, in tests, on in-memory queues with a simulated clock.
//!
//! Layer: benchmark tooling, per-packet path. One run-to-completion loop
//! on the calling thread: take tokens → allocate a burst of buffers in one
//! pool call → copy frames from the pre-built [`Pass`] → stamp →
//! `tx_burst` → `rx_burst` → read stamps into the latency histogram → free
//! in bulk. Guarantees: no heap allocation, lock, log or formatting inside
//! the loop (the vectors are sized before it and the histogram's range is
//! fixed, so recording never resizes it); TX stops at the packet or time
//! bound, RX then drains for `drain_ticks` (or until every sent packet
//! came back). Frames the TX queue refuses are freed and sent again, in
//! order, with fresh stamps. Refuses: nothing at run time.

use hdrhistogram::Histogram;
use hwinit::{PacketBuf, PortQueue};

use super::gen::Pass;
use super::rate::TokenBucket;
use super::stamp::{read_stamp, write_stamp};

/// Largest latency the histogram records, in ns (60 s); larger samples are
/// clamped to it.
pub const LATENCY_MAX_NS: u64 = 60_000_000_000;

/// A monotonic tick source.
pub trait Clock {
    /// The current time in ticks.
    fn now(&self) -> u64;
    /// Ticks per second.
    fn hz(&self) -> u64;
}

/// The CPU's time stamp counter through `hwinit` (the stamp unit of
/// `fulcrum-pktgen`); valid after `Eal::init`, whose measured frequency
/// converts ticks to time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tsc;

impl Clock for Tsc {
    #[inline(always)]
    fn now(&self) -> u64 {
        hwinit::tsc_now()
    }
    fn hz(&self) -> u64 {
        hwinit::tsc_hz()
    }
}

/// A new latency histogram: 1 ns ..= [`LATENCY_MAX_NS`], 3 significant
/// digits, never resized.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("constant, valid bounds")
}

/// Where the loop receives.
#[derive(Debug)]
pub enum Rx<'a, Q> {
    /// Transmit only.
    None,
    /// Receive on the TX queue's own RX queue (same port, e.g. `net_ring`
    /// loopback).
    SameQueue,
    /// Receive on another port's queue.
    Other(&'a mut Q),
}

/// Bounds and pacing of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunConfig {
    /// Target rate in packets per second, paced by a token bucket holding
    /// 1 ms of packets (at least one burst); `None` = as fast as the queue
    /// takes them.
    pub rate_pps: Option<u64>,
    /// Stop TX after this many packets.
    pub max_packets: Option<u64>,
    /// Stop TX after this many ticks.
    pub max_ticks: Option<u64>,
    /// After TX stops, keep receiving for this many ticks (ends earlier
    /// once every sent packet came back).
    pub drain_ticks: u64,
    /// Frames per TX burst, 1..=64.
    pub burst: usize,
}

/// Counters of one run. Byte counts are frame bytes without FCS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames the TX queue accepted.
    pub tx_pkts: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Of those, frames that carried a stamp.
    pub tx_stamped: u64,
    /// Bursts the TX queue took only partly (the rest was sent again).
    pub tx_full: u64,
    /// Bursts skipped because the pool had no free buffers.
    pub alloc_fail: u64,
    /// Frames received.
    pub rx_pkts: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Received frames with a stamp (= latency samples).
    pub rx_stamped: u64,
    /// Stamped frames whose sequence number was below one seen before.
    pub rx_reordered: u64,
    /// Ticks from the start to the end of TX.
    pub tx_ticks: u64,
    /// Ticks from the start to the end of the run (TX + drain).
    pub run_ticks: u64,
}

/// Runs the loop: sends frames of `pass` in order from frame 0, looping
/// passes, until a bound of `cfg` (with no bound: one pass), receiving on
/// `rx`; latencies of received stamped frames go into `hist` in ns.
///
/// # Panics
/// If `pass` is empty or `cfg.burst` is outside 1..=64.
pub fn run<Q: PortQueue, C: Clock>(
    pass: &Pass,
    tx: &mut Q,
    mut rx: Rx<'_, Q>,
    cfg: &RunConfig,
    clock: &C,
    hist: &mut Histogram<u64>,
) -> Counters {
    assert!(!pass.is_empty(), "engine::run: empty pass");
    assert!(
        (1..=64).contains(&cfg.burst),
        "engine::run: burst must be 1..=64"
    );
    let hz = u128::from(clock.hz().max(1));
    let n_frames = pass.len();
    let max_packets = match (cfg.max_packets, cfg.max_ticks) {
        (None, None) => Some(n_frames as u64),
        (p, _) => p,
    };
    let receiving = !matches!(rx, Rx::None);
    let mut c = Counters::default();
    let mut txb: Vec<Q::Buf> = Vec::with_capacity(64);
    let mut rxb: Vec<Q::Buf> = Vec::with_capacity(64);
    let start = clock.now();
    // The bucket holds 1 ms of packets (at least one burst): a loop that
    // was descheduled for up to 1 ms catches up, so the average rate holds
    // on a shared CPU; longer stalls are lost, not bunched.
    let mut bucket = cfg.rate_pps.map(|pps| {
        let depth = cfg
            .burst
            .max(usize::try_from(pps / 1000).unwrap_or(usize::MAX));
        TokenBucket::new(pps, clock.hz().max(1), depth, start)
    });
    let mut idx = 0usize;
    let mut seq = 0u32;
    let mut last_seq: Option<u32> = None;
    let mut tx_end: Option<u64> = None;
    loop {
        let now = clock.now();
        let elapsed = now.wrapping_sub(start);
        if tx_end.is_none() {
            let by_count = max_packets.is_some_and(|m| c.tx_pkts >= m);
            let by_time = cfg.max_ticks.is_some_and(|t| elapsed >= t);
            if by_count || by_time {
                tx_end = Some(now);
                c.tx_ticks = elapsed;
            }
        }
        match tx_end {
            Some(end) => {
                let all_back = c.rx_pkts >= c.tx_pkts;
                if !receiving || all_back || now.wrapping_sub(end) >= cfg.drain_ticks {
                    c.run_ticks = elapsed;
                    break;
                }
            }
            None => {
                let left = max_packets.map_or(u64::MAX, |m| m - c.tx_pkts);
                let mut want = (cfg.burst as u64).min(left) as usize;
                if let Some(b) = bucket.as_mut() {
                    want = b.take(now, want);
                }
                if want > 0 {
                    if tx.alloc_bulk(&mut txb, want) {
                        send_burst(
                            pass,
                            tx,
                            &mut txb,
                            &mut idx,
                            &mut seq,
                            &mut c,
                            clock,
                            n_frames,
                            bucket.as_mut(),
                        );
                    } else {
                        c.alloc_fail += 1;
                        if let Some(b) = bucket.as_mut() {
                            b.give_back(want);
                        }
                    }
                }
            }
        }
        let got = match &mut rx {
            Rx::None => 0,
            Rx::SameQueue => tx.rx_burst(&mut rxb, 64),
            Rx::Other(q) => q.rx_burst(&mut rxb, 64),
        };
        if got > 0 {
            let now = clock.now();
            for b in &rxb {
                let d = b.data();
                c.rx_pkts += 1;
                c.rx_bytes += d.len() as u64;
                if let Some((s, t)) = read_stamp(d) {
                    c.rx_stamped += 1;
                    let ns = u128::from(now.wrapping_sub(t)) * 1_000_000_000 / hz;
                    hist.saturating_record((ns.min(u128::from(LATENCY_MAX_NS)) as u64).max(1));
                    if let Some(l) = last_seq {
                        if (s.wrapping_sub(l) as i32) < 0 {
                            c.rx_reordered += 1;
                        }
                    }
                    last_seq = Some(last_seq.map_or(s, |l| {
                        if (s.wrapping_sub(l) as i32) > 0 {
                            s
                        } else {
                            l
                        }
                    }));
                }
            }
            match &mut rx {
                Rx::Other(q) => q.free_bulk(&mut rxb),
                Rx::SameQueue | Rx::None => tx.free_bulk(&mut rxb),
            }
        }
    }
    c
}

/// Fills the freshly allocated `txb` from the pass, stamps, sends; frames
/// the queue refused are freed and `idx`/`seq` rewound so they go again.
#[allow(clippy::too_many_arguments)]
#[inline]
fn send_burst<Q: PortQueue, C: Clock>(
    pass: &Pass,
    tx: &mut Q,
    txb: &mut Vec<Q::Buf>,
    idx: &mut usize,
    seq: &mut u32,
    c: &mut Counters,
    clock: &C,
    n_frames: usize,
    bucket: Option<&mut TokenBucket>,
) {
    let first = *idx;
    let mut k = first;
    for b in txb.iter_mut() {
        let (bytes, _) = pass.frame(k);
        if b.set_data_len(bytes.len()) {
            b.data_mut().copy_from_slice(bytes);
        }
        k += 1;
        if k == n_frames {
            k = 0;
        }
    }
    // One clock read per burst: every frame of the burst leaves together.
    let t = clock.now();
    let mut k = first;
    let mut s = *seq;
    for b in txb.iter_mut() {
        if let Some(at) = pass.frame(k).1.stamp {
            write_stamp(b.data_mut(), at, s, t);
        }
        s = s.wrapping_add(1);
        k += 1;
        if k == n_frames {
            k = 0;
        }
    }
    let n = txb.len();
    let sent = tx.tx_burst(txb);
    let mut k = first;
    for _ in 0..sent {
        let (bytes, r) = pass.frame(k);
        c.tx_bytes += bytes.len() as u64;
        c.tx_stamped += u64::from(r.stamp.is_some());
        k += 1;
        if k == n_frames {
            k = 0;
        }
    }
    c.tx_pkts += sent as u64;
    *idx = k;
    *seq = seq.wrapping_add(sent as u32);
    if sent < n {
        c.tx_full += 1;
        tx.free_bulk(txb);
        if let Some(b) = bucket {
            b.give_back(n - sent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::scenario::Scenario;
    use hwinit::mem::MemBuf;
    use std::cell::Cell;
    use std::collections::VecDeque;

    /// A loopback queue: TX appends to RX after `delay` polls; accepts at
    /// most `tx_room` frames per tx_burst; a pool of `pool` buffers.
    struct Loop {
        q: VecDeque<MemBuf>,
        tx_room: usize,
        pool: usize,
        sent: Vec<Vec<u8>>,
    }

    impl PortQueue for Loop {
        type Buf = MemBuf;
        fn rx_burst(&mut self, out: &mut Vec<MemBuf>, max: usize) -> usize {
            let n = max.min(self.q.len());
            out.extend(self.q.drain(..n));
            n
        }
        fn tx_burst(&mut self, pkts: &mut Vec<MemBuf>) -> usize {
            let n = pkts.len().min(self.tx_room);
            for b in pkts.drain(..n) {
                self.sent.push(b.data().to_vec());
                self.q.push_back(b);
            }
            n
        }
        fn alloc(&mut self) -> Option<MemBuf> {
            (self.pool > 0).then(|| {
                self.pool -= 1;
                MemBuf::from_slice(&[])
            })
        }
        fn free_bulk(&mut self, pkts: &mut Vec<MemBuf>) {
            self.pool += pkts.len();
            pkts.clear();
        }
        fn mac(&self) -> [u8; 6] {
            [0; 6]
        }
    }

    /// A simulated clock: 1 GHz, +250 ticks per read.
    struct Sim(Cell<u64>);
    impl Clock for Sim {
        fn now(&self) -> u64 {
            self.0.set(self.0.get() + 250);
            self.0.get()
        }
        fn hz(&self) -> u64 {
            1_000_000_000
        }
    }

    fn pass(src: &str) -> Pass {
        Pass::build(&Scenario::parse(src, "t.ron").unwrap()).unwrap()
    }

    #[test]
    fn test_loopback_counts_and_samples() {
        let p = pass("(flows: 10, mix: (udp: 1), data_segments: 3, size: Fixed(128))");
        assert_eq!((p.len(), p.n_stampable()), (50, 50));
        let mut q = Loop {
            q: VecDeque::new(),
            tx_room: 7,
            pool: 1000,
            sent: Vec::new(),
        };
        let cfg = RunConfig {
            rate_pps: None,
            max_packets: Some(1234),
            max_ticks: None,
            drain_ticks: 1_000_000,
            burst: 32,
        };
        let mut h = latency_histogram();
        let c = run(&p, &mut q, Rx::SameQueue, &cfg, &Sim(Cell::new(0)), &mut h);
        assert_eq!(
            (c.tx_pkts, c.rx_pkts, c.rx_stamped, c.tx_stamped),
            (1234, 1234, 1234, 1234)
        );
        assert_eq!(
            h.len(),
            1234,
            "one latency sample per received stamped frame"
        );
        assert!(
            c.tx_full > 0,
            "the 7-frame queue refused part of each burst"
        );
        assert_eq!(c.rx_reordered, 0);
        assert_eq!(c.tx_bytes, c.rx_bytes);
        // Frames go out in pass order (retries included), each with its
        // sequence number, and with valid stamps.
        for (k, f) in q.sent.iter().enumerate() {
            let (tmpl, _) = p.frame(k % 50);
            assert_eq!(
                &f[..40],
                &tmpl[..40],
                "frame {k} headers up to the UDP checksum"
            );
            let (s, _) = read_stamp(f).unwrap();
            assert_eq!(s as usize, k);
        }
        assert_eq!(q.pool, 1000, "every buffer returned");
    }

    #[test]
    fn test_rate_limited_and_tx_only() {
        // 64-byte TCP frames have no room for a stamp.
        let p = pass("(flows: 4)");
        let mut q = Loop {
            q: VecDeque::new(),
            tx_room: 64,
            pool: 100,
            sent: Vec::new(),
        };
        // 1 Mpps for 100 µs of simulated time: about 100 packets.
        let cfg = RunConfig {
            rate_pps: Some(1_000_000),
            max_packets: None,
            max_ticks: Some(100_000),
            drain_ticks: 0,
            burst: 8,
        };
        let mut h = latency_histogram();
        let c = run(&p, &mut q, Rx::None, &cfg, &Sim(Cell::new(0)), &mut h);
        assert!((90..=110).contains(&c.tx_pkts), "{}", c.tx_pkts);
        assert_eq!((c.rx_pkts, c.tx_stamped, h.len()), (0, 0, 0));
    }

    #[test]
    fn test_pool_exhaustion_counted() {
        let p = pass("(flows: 4)");
        let mut q = Loop {
            q: VecDeque::new(),
            tx_room: 64,
            pool: 3,
            sent: Vec::new(),
        };
        let cfg = RunConfig {
            rate_pps: None,
            max_packets: Some(10),
            max_ticks: Some(10_000),
            drain_ticks: 0,
            burst: 4,
        };
        let c = run(
            &p,
            &mut q,
            Rx::None,
            &cfg,
            &Sim(Cell::new(0)),
            &mut latency_histogram(),
        );
        // Bursts of 4 never fit a 3-buffer pool: nothing is sent, every
        // attempt is counted, and the time bound ends the run.
        assert_eq!(c.tx_pkts, 0);
        assert!(c.alloc_fail > 0);
    }
}
