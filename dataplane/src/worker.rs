//! The per-worker run-to-completion loop.
//!
//! Layer: dataplane I/O glue, generic over [`PortQueue`] so it runs on DPDK
//! mbufs and on in-memory queues alike. One round: drain the rings from other
//! workers, then for every port `rx_burst` → [`Core::process`] each frame →
//! coalesce per output port; then send ARP requests, `tx_burst` every port
//! (retry once, then free and count what the NIC did not take), and free all
//! dropped frames in bulk. A slow tick (every [`TICK_MS`]) expires connections,
//! ages neighbours, publishes counters and answers a pending connection
//! listing slice ([`Worker::with_conn_dump`]).
//!
//! With the exception path ([`Worker::with_kernel`]) the worker also owns
//! one queue on each port's kernel (TAP) interface: frames with
//! [`Verdict::Kernel`] go to it unchanged at the end of the round, and every
//! round it polls the kernel's frames from it and queues them, unchanged,
//! with the matching port's other TX, every round when idle and every
//! [`KERNEL_POLL_EVERY`] rounds when busy (an empty `net_tap` poll can be a
//! system call; docs/architecture.md has the numbers).
//!
//! Cross-worker traffic goes only through bounded lock-free rings
//! ([`crossbeam::queue::ArrayQueue`], one per ordered worker pair): frames
//! redirected to their flow's owner, learnt neighbours, and persistent
//! templates (so one client's connections, owned by different workers,
//! reach the same real server; see [`Core::learn_template`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam::queue::ArrayQueue;
use hwinit::{PacketBuf, PortQueue};

use crate::conn::dump::DUMP_SCAN_BUDGET;
use crate::conn::DumpChannel;
use crate::persist::TemplateFact;
use crate::pipeline::{emit_arp_request, Core, NeighFact, Verdict};
use crate::snapshot::Snapshot;
use crate::stats::{DropReason, SharedStats};

/// Slow-tick period in milliseconds.
pub const TICK_MS: u64 = 1;
/// Connections examined per slow tick at most (bounds the tick's latency).
pub const EXPIRE_BUDGET: usize = 4096;
/// Capacity of each inter-worker ring, in messages.
pub const RING_LEN: usize = 4096;
/// Most frames per `rx_burst`.
pub const MAX_BURST: usize = crate::pipeline::MAX_BURST;
/// A busy worker polls its kernel (TAP) queues every this many rounds; a
/// round after one that found no work polls them always. `net_tap`'s
/// `rx_burst` makes a `readv` system call (about 1 µs) per queue until the
/// kernel has sent its first frame, and after each frame the kernel sends,
/// so polling every busy round would cost a syscall per port per round;
/// every 32nd round keeps that under 2 % of a 32-frame round and the
/// kernel's frames wait at most 32 rounds (tens of µs).
pub const KERNEL_POLL_EVERY: u32 = 32;

/// A message from one worker to another.
pub enum RingMsg<B> {
    /// A frame the sender classified as belonging to the receiver's flows,
    /// with the port it arrived on.
    Frame(B, u8),
    /// A neighbour the sender learnt.
    Neigh(NeighFact),
    /// A persistent template the sender created or defends.
    Template(TemplateFact),
}

/// The rings between `n` workers: `ring(from, to)`.
pub struct Mesh<B> {
    n: usize,
    rings: Vec<ArrayQueue<RingMsg<B>>>,
}

impl<B> Mesh<B> {
    /// Rings for `n` workers, [`RING_LEN`] messages each (n² rings; the
    /// diagonal is unused but keeps indexing trivial).
    pub fn new(n: usize) -> Arc<Self> {
        Arc::new(Mesh {
            n,
            rings: (0..n * n).map(|_| ArrayQueue::new(RING_LEN)).collect(),
        })
    }
    fn ring(&self, from: usize, to: usize) -> &ArrayQueue<RingMsg<B>> {
        &self.rings[from * self.n + to]
    }
}

/// Tuning of one worker loop.
#[derive(Clone, Copy, Debug)]
pub struct LoopConf {
    /// Frames per `rx_burst` (1..=[`MAX_BURST`]).
    pub burst: usize,
    /// Sleep after a round that found no work (`Duration::ZERO` = busy poll).
    pub idle_sleep: Duration,
}

/// One worker: its core, its queues (one per port, index = port index) and
/// its links to the others.
pub struct Worker<Q: PortQueue> {
    /// Per-packet state and counters.
    pub core: Core,
    /// This worker's RX/TX queue on each port.
    pub queues: Vec<Q>,
    /// This worker's RX/TX queue on each port's kernel interface (same
    /// index as `queues`); empty while the exception path is off.
    pub kernel: Vec<Q>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    /// The snapshot in use, re-read only when the published one changes, so
    /// a round costs no write to the shared reference count.
    current: Option<Arc<Snapshot>>,
    mesh: Arc<Mesh<Q::Buf>>,
    shared: Arc<SharedStats>,
    conf: LoopConf,
    rx: Vec<Q::Buf>,
    /// Verdicts of the current RX burst.
    verdicts: [Verdict; MAX_BURST],
    tx: Vec<Vec<Q::Buf>>,
    /// Frames for each port's kernel interface, sent at the end of a round.
    ktx: Vec<Vec<Q::Buf>>,
    free: Vec<Q::Buf>,
    epoch: Instant,
    next_tick_ms: u64,
    /// Rounds run, for [`KERNEL_POLL_EVERY`].
    rounds: u32,
    /// The last round found no work.
    was_idle: bool,
    /// The connection listing's channel ([`Worker::with_conn_dump`]),
    /// looked at on the slow tick.
    dump: Option<Arc<DumpChannel>>,
}

impl<Q: PortQueue> Worker<Q> {
    /// Builds worker `core.id` over `queues`.
    ///
    /// # Panics
    /// Panics if `queues` is empty or has more than 64 ports (the daemon's
    /// validation forbids both).
    pub fn new(
        core: Core,
        queues: Vec<Q>,
        snapshot: Arc<ArcSwap<Snapshot>>,
        mesh: Arc<Mesh<Q::Buf>>,
        shared: Arc<SharedStats>,
        conf: LoopConf,
    ) -> Self {
        assert!(!queues.is_empty() && queues.len() <= 64, "1..=64 ports");
        let burst = conf.burst.clamp(1, MAX_BURST);
        let n_ports = queues.len();
        Worker {
            core,
            queues,
            kernel: Vec::new(),
            snapshot,
            current: None,
            mesh,
            shared,
            conf: LoopConf { burst, ..conf },
            rx: Vec::with_capacity(MAX_BURST),
            verdicts: [Verdict::Consumed; MAX_BURST],
            tx: (0..n_ports)
                .map(|_| Vec::with_capacity(4 * MAX_BURST))
                .collect(),
            ktx: Vec::new(),
            free: Vec::with_capacity(4 * MAX_BURST),
            epoch: Instant::now(),
            next_tick_ms: 0,
            rounds: 0,
            was_idle: true,
            dump: None,
        }
    }

    /// Answers connection listings (`fulcrumctl -L -n -c`) on `channel`: on
    /// each slow tick the worker serves at most one pending slice request,
    /// examining at most [`DUMP_SCAN_BUDGET`] table slots
    /// ([`DumpChannel::serve`]).
    pub fn with_conn_dump(mut self, channel: Arc<DumpChannel>) -> Self {
        self.dump = Some(channel);
        self
    }

    /// Turns the exception path on over `kernel`, this worker's queue on
    /// each port's kernel interface (index = port index): the core hands
    /// the kernel what `local` does not serve, at most `burst` frames at
    /// once and `rate_pps` per second ([`Core::enable_kernel`]), and the
    /// worker sends what the kernel wrote on those queues out of the
    /// matching port (polled after an idle round, and every
    /// [`KERNEL_POLL_EVERY`] rounds when busy). Frames and mbufs of both kinds of queue must come
    /// from one pool (one `free_bulk` frees them all).
    ///
    /// # Panics
    /// Panics if `kernel` does not have one queue per port.
    pub fn with_kernel(mut self, kernel: Vec<Q>, rate_pps: u32, burst: u32) -> Self {
        assert_eq!(kernel.len(), self.queues.len(), "one kernel queue per port");
        self.core.enable_kernel(rate_pps, burst, self.now_ms());
        self.ktx = (0..kernel.len())
            .map(|_| Vec::with_capacity(MAX_BURST))
            .collect();
        self.kernel = kernel;
        self
    }

    /// The worker's clock: milliseconds since it was built.
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Runs rounds until `stop` is set, then publishes the counters one last
    /// time and frees whatever is still queued.
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let now_ms = self.now_ms();
            let work = self.poll_once(now_ms);
            if work == 0 && !self.conf.idle_sleep.is_zero() {
                std::thread::sleep(self.conf.idle_sleep);
            }
        }
        self.publish();
        for q in 0..self.tx.len() {
            let mut pending = std::mem::take(&mut self.tx[q]);
            self.queues[0].free_bulk(&mut pending);
        }
        for q in 0..self.ktx.len() {
            let mut pending = std::mem::take(&mut self.ktx[q]);
            self.queues[0].free_bulk(&mut pending);
        }
    }

    /// One round at `now_ms`; returns how many frames it handled.
    pub fn poll_once(&mut self, now_ms: u64) -> usize {
        let snap = match self.current.take() {
            Some(cur) if Arc::ptr_eq(&cur, &self.snapshot.load()) => cur,
            _ => self.snapshot.load_full(),
        };
        if self.core.sync(&snap) && self.core.id == 0 {
            self.core.prime_neighbours(&snap, now_ms);
        }
        let mut work = self.drain_rings(&snap, now_ms);
        for port in 0..self.queues.len() {
            let n = self.queues[port].rx_burst(&mut self.rx, self.conf.burst);
            work += n;
            let mut rx = std::mem::take(&mut self.rx);
            // rx_burst returns at most conf.burst <= MAX_BURST frames: one
            // round of this loop (a queue that returned more would just take
            // more rounds, each frame with its own verdict).
            while !rx.is_empty() {
                let k = rx.len().min(MAX_BURST);
                self.core.process_burst(
                    &snap,
                    &mut rx[..k],
                    port as u8,
                    now_ms,
                    false,
                    &mut self.verdicts,
                );
                for (i, buf) in rx.drain(..k).enumerate() {
                    let v = self.verdicts[i];
                    self.dispatch(buf, port as u8, v);
                }
            }
            self.rx = rx;
        }
        self.rounds = self.rounds.wrapping_add(1);
        if self.was_idle || self.rounds.is_multiple_of(KERNEL_POLL_EVERY) {
            work += self.poll_kernel();
        }
        self.was_idle = work == 0;
        if work == 0 {
            self.core.stats.polls_empty += 1;
        } else {
            self.core.stats.polls_busy += 1;
        }
        self.send_arp_requests(&snap);
        self.share_neighbours();
        self.share_templates();
        self.flush();
        if now_ms >= self.next_tick_ms {
            self.next_tick_ms = now_ms + TICK_MS;
            self.core.tick(&snap, now_ms, EXPIRE_BUDGET);
            if let Some(d) = &self.dump {
                d.serve(&self.core.conns, now_ms, DUMP_SCAN_BUDGET);
            }
            self.send_arp_requests(&snap);
            self.flush();
            self.publish();
        }
        self.current = Some(snap);
        work
    }

    /// Queues what the kernel sent on each port's kernel interface for
    /// that port, unchanged; returns how many frames.
    fn poll_kernel(&mut self) -> usize {
        let mut n = 0;
        for port in 0..self.kernel.len() {
            let k = self.kernel[port].rx_burst(&mut self.rx, self.conf.burst);
            if k == 0 {
                continue;
            }
            n += k;
            self.core.stats.exception_from_kernel += k as u64;
            self.tx[port].append(&mut self.rx);
        }
        n
    }

    fn drain_rings(&mut self, snap: &Snapshot, now_ms: u64) -> usize {
        let me = usize::from(self.core.id);
        let mut n = 0;
        for from in 0..self.mesh.n {
            if from == me {
                continue;
            }
            for _ in 0..self.conf.burst {
                let Some(msg) = self.mesh.ring(from, me).pop() else {
                    break;
                };
                match msg {
                    RingMsg::Frame(mut buf, port) => {
                        n += 1;
                        self.core.stats.redirects_in += 1;
                        let v = self.core.process_buf(snap, &mut buf, port, now_ms, true);
                        self.dispatch(buf, port, v);
                    }
                    RingMsg::Neigh(f) => {
                        // The sender checked and counted it; a refusal here
                        // (table full) leaves this worker to ARP itself.
                        let _ = self.core.neigh.learn(f.port, f.ip, f.mac, now_ms);
                    }
                    RingMsg::Template(f) => self.core.learn_template(snap, &f, now_ms),
                }
            }
        }
        n
    }

    #[inline]
    fn dispatch(&mut self, buf: Q::Buf, in_port: u8, v: Verdict) {
        match v {
            Verdict::Tx(p) => match self.tx.get_mut(usize::from(p)) {
                Some(q) => q.push(buf),
                None => {
                    self.core.stats.drop(DropReason::TxPortInvalid);
                    self.free.push(buf);
                }
            },
            Verdict::Kernel(p) => match self.ktx.get_mut(usize::from(p)) {
                Some(q) => q.push(buf),
                None => {
                    self.core.stats.drop(DropReason::TxPortInvalid);
                    self.free.push(buf);
                }
            },
            Verdict::Drop(_) | Verdict::Consumed => self.free.push(buf),
            Verdict::Redirect(w) => {
                let me = usize::from(self.core.id);
                let w = usize::from(w);
                if w >= self.mesh.n || w == me {
                    self.core.stats.drop(DropReason::BadWorker);
                    self.free.push(buf);
                    return;
                }
                // Templates this round created go first, so a redirected
                // SYN of the same client finds its template at the owner.
                self.share_templates();
                if let Err(RingMsg::Frame(buf, _)) =
                    self.mesh.ring(me, w).push(RingMsg::Frame(buf, in_port))
                {
                    self.core.stats.drop(DropReason::RedirectRingFull);
                    self.free.push(buf);
                }
            }
        }
    }

    fn send_arp_requests(&mut self, snap: &Snapshot) {
        for i in 0..self.core.arp_out.len() {
            let req = self.core.arp_out[i];
            let p = usize::from(req.port);
            let (Some(q), Some(pc)) = (self.queues.get_mut(p), snap.ports.get(p)) else {
                continue;
            };
            let Some(mut buf) = q.alloc() else { continue };
            if !buf.set_data_len(60) {
                self.free.push(buf);
                continue;
            }
            let len = emit_arp_request(buf.data_mut(), pc.mac, &req);
            if len == 0 {
                self.free.push(buf);
                continue;
            }
            self.core.stats.arp_requests += 1;
            self.tx[p].push(buf);
        }
        self.core.arp_out.clear();
    }

    /// Pushes one message from `make` onto the ring to every other worker;
    /// a full ring loses that copy.
    fn broadcast(&self, make: impl Fn() -> RingMsg<Q::Buf>) {
        let me = usize::from(self.core.id);
        for to in (0..self.mesh.n).filter(|&to| to != me) {
            let _ = self.mesh.ring(me, to).push(make());
        }
    }

    fn share_neighbours(&mut self) {
        // A lost copy only delays learning: the other worker resolves the
        // address itself on its next miss.
        let mut out = std::mem::take(&mut self.core.neigh_out);
        for f in out.drain(..) {
            self.broadcast(|| RingMsg::Neigh(f));
        }
        self.core.neigh_out = out;
    }

    fn share_templates(&mut self) {
        // A lost copy only delays agreement: the next conflict on this
        // template repairs it (`Core::learn_template`).
        let mut out = std::mem::take(&mut self.core.template_out);
        for f in out.drain(..) {
            self.broadcast(|| RingMsg::Template(f));
        }
        self.core.template_out = out;
    }

    fn flush(&mut self) {
        for p in 0..self.tx.len() {
            if self.tx[p].is_empty() {
                continue;
            }
            let bytes: u64 = self.tx[p].iter().map(|b| b.data().len() as u64).sum();
            let sent = send(&mut self.queues[p], &mut self.tx[p]);
            let unsent = self.tx[p].len();
            let unsent_bytes: u64 = self.tx[p].iter().map(|b| b.data().len() as u64).sum();
            self.core.stats.tx_pkts += sent as u64;
            self.core.stats.tx_bytes += bytes - unsent_bytes;
            for _ in 0..unsent {
                self.core.stats.drop(DropReason::TxFull);
            }
            self.free.append(&mut self.tx[p]);
        }
        for p in 0..self.ktx.len() {
            if self.ktx[p].is_empty() {
                continue;
            }
            let sent = send(&mut self.kernel[p], &mut self.ktx[p]);
            self.core.stats.exception_to_kernel += sent as u64;
            for _ in 0..self.ktx[p].len() {
                self.core.stats.drop(DropReason::TxFull);
            }
            self.free.append(&mut self.ktx[p]);
        }
        if !self.free.is_empty() {
            self.queues[0].free_bulk(&mut self.free);
        }
    }

    /// Copies this worker's counters to its shared, readable copy.
    pub fn publish(&self) {
        self.shared.publish(&self.core.stats, &self.core.reals);
    }
}

/// `tx_burst` of `pkts` on `q`, retried once for what the queue did not
/// take; returns how many frames were sent (the rest stay in `pkts`).
fn send<Q: PortQueue>(q: &mut Q, pkts: &mut Vec<Q::Buf>) -> usize {
    let before = pkts.len();
    q.tx_burst(pkts);
    if !pkts.is_empty() {
        q.tx_burst(pkts);
    }
    before - pkts.len()
}
