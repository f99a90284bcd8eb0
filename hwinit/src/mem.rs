//! Pure-Rust in-memory port queues for tests, benches and pktgen loopback.
//!
//! Layer: I/O, no DPDK. A [`MemQueue`] keeps an RX queue of frames that a test
//! injects and a TX list that a test reads back. In replay mode it behaves like
//! DPDK's `net_pcap` with `infinite_rx=1`: RX cycles through a fixed set of
//! template frames forever, reusing buffers, so a bench measures the dataplane
//! and not the allocator.

use std::collections::VecDeque;

use crate::port::{PacketBuf, PortQueue};

/// Room of one in-memory buffer in bytes, as a default DPDK mbuf data room.
pub const MEM_BUF_ROOM: usize = 2048;

/// A heap-backed packet buffer; `len` bytes of `bytes` are the frame.
#[derive(Clone, Debug)]
pub struct MemBuf {
    bytes: Box<[u8; MEM_BUF_ROOM]>,
    len: usize,
}

impl MemBuf {
    /// Copies `frame` into a new buffer.
    ///
    /// # Panics
    /// Panics if `frame` is longer than [`MEM_BUF_ROOM`]; test input only.
    pub fn from_slice(frame: &[u8]) -> Self {
        assert!(
            frame.len() <= MEM_BUF_ROOM,
            "frame longer than MEM_BUF_ROOM"
        );
        let mut b = MemBuf {
            bytes: Box::new([0u8; MEM_BUF_ROOM]),
            len: frame.len(),
        };
        b.bytes[..frame.len()].copy_from_slice(frame);
        b
    }

    fn empty() -> Self {
        MemBuf {
            bytes: Box::new([0u8; MEM_BUF_ROOM]),
            len: 0,
        }
    }
}

impl PacketBuf for MemBuf {
    fn data(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }
    fn set_data_len(&mut self, len: usize) -> bool {
        if len > MEM_BUF_ROOM {
            return false;
        }
        self.len = len;
        true
    }
    fn rss_hash(&self) -> Option<u32> {
        None
    }
    fn room_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..]
    }
}

/// An in-memory RX/TX queue pair.
#[derive(Debug)]
pub struct MemQueue {
    mac: [u8; 6],
    rx: VecDeque<MemBuf>,
    /// Frames transmitted so far, oldest first (capture mode).
    pub tx: Vec<MemBuf>,
    templates: Vec<MemBuf>,
    next_template: usize,
    spare: Vec<MemBuf>,
    capture_tx: bool,
    /// Frames transmitted so far (both modes).
    pub n_tx: u64,
    /// Frames freed through `free_bulk` so far.
    pub n_freed: u64,
}

impl MemQueue {
    /// A queue whose RX is fed by [`MemQueue::inject`] and whose TX is kept in
    /// [`MemQueue::tx`].
    pub fn new(mac: [u8; 6]) -> Self {
        MemQueue {
            mac,
            rx: VecDeque::new(),
            tx: Vec::new(),
            templates: Vec::new(),
            next_template: 0,
            spare: Vec::new(),
            capture_tx: true,
            n_tx: 0,
            n_freed: 0,
        }
    }

    /// A queue whose RX replays `frames` forever and whose TX discards
    /// (counting only), like `net_pcap,infinite_rx=1` → `net_null`.
    pub fn replay(mac: [u8; 6], frames: &[Vec<u8>]) -> Self {
        let mut q = MemQueue::new(mac);
        q.templates = frames.iter().map(|f| MemBuf::from_slice(f)).collect();
        q.capture_tx = false;
        q.spare = (0..256).map(|_| MemBuf::empty()).collect();
        q
    }

    /// Queues `frame` for the next `rx_burst`.
    pub fn inject(&mut self, frame: &[u8]) {
        self.rx.push_back(MemBuf::from_slice(frame));
    }

    /// Takes every captured TX frame as byte vectors.
    pub fn take_tx(&mut self) -> Vec<Vec<u8>> {
        self.tx.drain(..).map(|b| b.data().to_vec()).collect()
    }

    fn recycle(&mut self, b: MemBuf) {
        if !self.templates.is_empty() {
            self.spare.push(b);
        }
    }
}

impl PortQueue for MemQueue {
    type Buf = MemBuf;

    fn rx_burst(&mut self, out: &mut Vec<MemBuf>, max: usize) -> usize {
        let mut n = 0;
        if self.templates.is_empty() {
            while n < max {
                match self.rx.pop_front() {
                    Some(b) => {
                        out.push(b);
                        n += 1;
                    }
                    None => break,
                }
            }
            return n;
        }
        while n < max {
            let Some(mut b) = self.spare.pop() else { break };
            let t = &self.templates[self.next_template];
            b.bytes[..t.len].copy_from_slice(&t.bytes[..t.len]);
            b.len = t.len;
            self.next_template += 1;
            if self.next_template == self.templates.len() {
                self.next_template = 0;
            }
            out.push(b);
            n += 1;
        }
        n
    }

    fn tx_burst(&mut self, pkts: &mut Vec<MemBuf>) -> usize {
        let n = pkts.len();
        self.n_tx += n as u64;
        if self.capture_tx {
            self.tx.append(pkts);
        } else {
            while let Some(b) = pkts.pop() {
                self.recycle(b);
            }
        }
        n
    }

    fn alloc(&mut self) -> Option<MemBuf> {
        Some(self.spare.pop().map_or_else(MemBuf::empty, |mut b| {
            b.len = 0;
            b
        }))
    }

    fn free_bulk(&mut self, pkts: &mut Vec<MemBuf>) {
        self.n_freed += pkts.len() as u64;
        while let Some(b) = pkts.pop() {
            self.recycle(b);
        }
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_inject_rx_tx() {
        let mut q = MemQueue::new([2, 0, 0, 0, 0, 1]);
        q.inject(&[1, 2, 3]);
        q.inject(&[4, 5]);
        let mut v = Vec::with_capacity(32);
        assert_eq!(q.rx_burst(&mut v, 32), 2);
        assert_eq!(v[0].data(), &[1, 2, 3]);
        assert_eq!(q.tx_burst(&mut v), 2);
        assert!(v.is_empty());
        assert_eq!(q.take_tx(), vec![vec![1, 2, 3], vec![4, 5]]);
    }

    #[test]
    fn test_replay_cycles_and_recycles() {
        let mut q = MemQueue::replay([0; 6], &[vec![9; 60], vec![8; 64]]);
        let mut v = Vec::with_capacity(32);
        assert_eq!(q.rx_burst(&mut v, 3), 3);
        assert_eq!(v[0].data()[0], 9);
        assert_eq!(v[1].data()[0], 8);
        assert_eq!(v[2].data()[0], 9);
        q.free_bulk(&mut v);
        assert_eq!(q.n_freed, 3);
        assert_eq!(q.rx_burst(&mut v, 300), 256);
    }

    #[test]
    fn test_set_data_len_bounds() {
        let mut b = MemBuf::from_slice(&[0; 10]);
        assert!(b.set_data_len(MEM_BUF_ROOM));
        assert!(!b.set_data_len(MEM_BUF_ROOM + 1));
        assert_eq!(b.data().len(), MEM_BUF_ROOM);
    }
}
