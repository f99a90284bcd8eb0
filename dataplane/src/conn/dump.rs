//! The connection listing (`fulcrumctl -L -n -c`, ipvsadm's `-Lcn`): how
//! the control thread reads a worker's connection table without stopping
//! the worker or sharing the table.
//!
//! Layer: dataplane, slow path. The table is owned by its worker, so the
//! control thread asks for it in slices: it puts a [`DumpRequest`]
//! ("records from slab slot C on, into this buffer") on the worker's
//! [`DumpChannel`]; the worker looks at the channel once per slow tick
//! (never per packet), fills the buffer with [`ConnTable::dump`] up to the
//! buffer's capacity and [`DUMP_SCAN_BUDGET`] slots, and hands it back as a
//! [`DumpReply`] with the cursor to resume from. The buffer arrives with its
//! capacity, so the worker allocates nothing; both queues hold one message,
//! so a listing can never queue work up on a worker.
//!
//! Guarantees: a connection that lives through the whole listing is listed
//! exactly once (the cursor is a slab index); a worker that does not answer
//! within the caller's deadline makes [`DumpChannel::collect`] fail with
//! [`DumpError::Timeout`] instead of waiting for ever, and its late answer is
//! recognised by its sequence number and discarded by the next listing.
//!
//! Mirrors what `/proc/net/ip_vs_conn` gives ipvsadm (protocol, addresses,
//! state, seconds left on the timer), read per worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;

use super::{ConnTable, TcpState};

/// Slab slots one slow tick examines for a listing at most: 16384 slots
/// of 40 bytes (640 KiB read) is about 10–20 µs, so a listing never costs a
/// worker a noticeable pause, and a 1 M-slot table is walked in 64 ticks.
pub const DUMP_SCAN_BUDGET: usize = 16_384;

/// One connection as the listing reports it. Addresses and ports in host
/// order; 28 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnRecord {
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    /// IPVS state ([`TcpState::Udp`] for UDP).
    pub state: TcpState,
    /// Milliseconds left before the connection expires, at the time the
    /// worker copied it (ipvsadm's `expire` column, in ms).
    pub expire_ms: u32,
    /// Client address (CIP).
    pub cip: u32,
    /// Client port.
    pub cport: u16,
    /// Virtual IP.
    pub vip: u32,
    /// Virtual port.
    pub vport: u16,
    /// Real server address (RIP).
    pub rip: u32,
    /// Real server port.
    pub rport: u16,
}

/// A request for one slice: records from slab slot `cursor` on, into
/// `buf` (which the worker clears and fills up to its capacity).
#[derive(Debug)]
pub struct DumpRequest {
    /// Matches the reply to its request.
    pub seq: u64,
    /// Slab slot to start from (0 for the first slice).
    pub cursor: u32,
    /// The buffer to fill; its capacity bounds the slice.
    pub buf: Vec<ConnRecord>,
}

/// A worker's answer to a [`DumpRequest`].
#[derive(Debug)]
pub struct DumpReply {
    /// The request's `seq`.
    pub seq: u64,
    /// The slot to resume from, `None` when the table was walked to its end.
    pub next: Option<u32>,
    /// The records of this slice.
    pub buf: Vec<ConnRecord>,
}

/// Why [`DumpChannel::collect`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    /// The worker did not answer a slice within the deadline (stopped,
    /// stuck, or not running a slow tick).
    #[error("did not answer within {0:?}")]
    Timeout(Duration),
    /// A previous listing's request is still with the worker.
    #[error("is still busy with an earlier listing")]
    Busy,
}

/// The control ↔ worker channel of one worker: a one-slot request queue and
/// a one-slot reply queue (lock-free, [`ArrayQueue`]).
#[derive(Debug)]
pub struct DumpChannel {
    requests: ArrayQueue<DumpRequest>,
    replies: ArrayQueue<DumpReply>,
    seq: AtomicU64,
}

impl Default for DumpChannel {
    fn default() -> Self {
        DumpChannel {
            requests: ArrayQueue::new(1),
            replies: ArrayQueue::new(1),
            seq: AtomicU64::new(0),
        }
    }
}

impl DumpChannel {
    /// A channel with nothing in flight.
    pub fn new() -> Arc<Self> {
        Arc::new(DumpChannel::default())
    }

    /// Worker side, on its slow tick: answers the pending request, if any,
    /// from `table` at `now_ms` (the worker's clock), examining at most
    /// `scan_budget` slots. Returns whether there was one. Never allocates:
    /// the records go into the request's buffer, and the reply queue is
    /// empty whenever a request is pending (the control side drains it
    /// before asking).
    pub fn serve(&self, table: &ConnTable, now_ms: u64, scan_budget: usize) -> bool {
        let Some(mut req) = self.requests.pop() else {
            return false;
        };
        req.buf.clear();
        let next = table.dump(req.cursor, now_ms, scan_budget, &mut req.buf);
        // Cannot be full (see above); if a caller broke that rule, the
        // reply is dropped and that caller times out.
        let _ = self.replies.push(DumpReply {
            seq: req.seq,
            next,
            buf: req.buf,
        });
        true
    }

    /// Control side: every connection of the worker, in slices of
    /// `slice_len` records, waiting at most `deadline` for each slice
    /// (polling every 200 µs). Call from one thread at a time per channel
    /// (the admin server serialises its commands).
    ///
    /// # Errors
    /// [`DumpError::Timeout`] when a slice is not answered in time (the
    /// request is withdrawn when the worker has not taken it yet);
    /// [`DumpError::Busy`] when an earlier timed-out request is still with
    /// the worker.
    pub fn collect(
        &self,
        slice_len: usize,
        deadline: Duration,
    ) -> Result<Vec<ConnRecord>, DumpError> {
        // A reply to an earlier, timed-out listing is stale.
        while self.replies.pop().is_some() {}
        let mut out = Vec::new();
        let mut cursor = 0u32;
        let mut buf = Vec::with_capacity(slice_len.max(1));
        loop {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
            let req = DumpRequest { seq, cursor, buf };
            if self.requests.push(req).is_err() {
                return Err(DumpError::Busy);
            }
            let start = Instant::now();
            let reply = loop {
                match self.replies.pop() {
                    Some(r) if r.seq == seq => break r,
                    Some(_) => continue,
                    None => {}
                }
                if start.elapsed() >= deadline {
                    // Withdraw the request if the worker has not taken it.
                    let _ = self.requests.pop();
                    return Err(DumpError::Timeout(deadline));
                }
                std::thread::sleep(Duration::from_micros(200));
            };
            out.extend_from_slice(&reply.buf);
            buf = reply.buf;
            match reply.next {
                Some(c) => cursor = c,
                None => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Conn;
    use crate::snapshot::Method;

    #[test]
    fn test_collect_times_out_without_a_worker() {
        let ch = DumpChannel::new();
        let d = Duration::from_millis(5);
        assert_eq!(ch.collect(4, d), Err(DumpError::Timeout(d)));
        // The request was withdrawn: nothing is left for a worker.
        assert!(ch.requests.is_empty());
    }

    #[test]
    fn test_serve_and_collect() {
        let mut t = ConnTable::new(64);
        for p in 0..10u16 {
            let c = Conn {
                cip: 0x0a00_0002,
                cport: 2000 + p,
                vip: 0x0a00_0064,
                vport: 80,
                rip: 0x0a01_000b,
                rport: 80,
                proto: 6,
                method: Method::Dr,
                real: 1,
                service: 0,
                state: TcpState::SynRecv,
                lip: 0,
                lport: 0,
                client_address: Default::default(),
                isn1: 0,
            };
            t.insert(c, 30_000, 0).unwrap();
        }
        let ch = DumpChannel::new();
        assert!(!ch.serve(&t, 0, DUMP_SCAN_BUDGET), "nothing asked");
        std::thread::scope(|s| {
            let worker = s.spawn(|| {
                // The "worker": serves until the listing is done.
                let mut served = 0;
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(5) {
                    if ch.serve(&t, 1000, 3) {
                        served += 1;
                    }
                    if served > 0 && ch.requests.is_empty() && ch.replies.is_empty() {
                        std::thread::sleep(Duration::from_millis(20));
                        if ch.requests.is_empty() {
                            break;
                        }
                    }
                    std::thread::yield_now();
                }
                served
            });
            let got = ch.collect(4, Duration::from_secs(2)).expect("answered");
            assert_eq!(got.len(), 10);
            let mut ports: Vec<u16> = got.iter().map(|r| r.cport).collect();
            ports.sort_unstable();
            assert_eq!(ports, (2000..2010).collect::<Vec<_>>());
            assert!(got.iter().all(|r| (29_000..29_064).contains(&r.expire_ms)));
            // 64 slots, 3 per tick: 22 slices at least.
            assert!(worker.join().unwrap() >= 22);
        });
    }
}
