//! IPVS schedulers: which real server gets a new connection.
//!
//! Layer: pure policy. A scheduler sees the real servers of one virtual
//! service as a slice of [`Dest`] (weights and connection counts) and returns
//! an index into it. Schedulers are deterministic, allocate only when built,
//! never panic on any input, and never pick a server whose weight is 0 (IPVS
//! "quiesced": it keeps existing connections but gets no new ones).
//!
//! Each worker owns its own scheduler state, so `rr`/`wrr` sequences are per
//! worker, as each CPU's view would be in a sharded director.
#![forbid(unsafe_code)]

pub mod rr;
pub mod wrr;

pub use rr::RoundRobin;
pub use wrr::WeightedRoundRobin;

/// One real server as a scheduler sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dest {
    /// IPVS weight, 0..=65535. 0 = quiesced: never picked.
    pub weight: u32,
    /// Connections in ESTABLISHED state (IPVS activeconns).
    pub active_conns: u32,
    /// Connections in any other state (IPVS inactconns).
    pub inactive_conns: u32,
}

/// Inputs a hashing scheduler may use; addresses and ports in host order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowInfo {
    /// Client IP (CIP).
    pub src_ip: u32,
    /// Client port.
    pub src_port: u16,
    /// Virtual IP.
    pub dst_ip: u32,
    /// Virtual port.
    pub dst_port: u16,
}

/// A scheduling algorithm with its per-worker state.
pub trait Scheduler {
    /// Picks an index into `dests` for a new connection.
    ///
    /// Returns `None` when no destination has a weight above 0 (IPVS logs
    /// "no destination available"; fulcrum counts `no_real_server`).
    fn pick(&mut self, dests: &[Dest], flow: &FlowInfo) -> Option<usize>;
}

/// The scheduler names fulcrum accepts, as ipvsadm `-s` spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedKind {
    /// `rr`: round robin.
    Rr,
    /// `wrr`: weighted round robin.
    Wrr,
}

impl SchedKind {
    /// Parses an ipvsadm scheduler name.
    ///
    /// # Errors
    /// Returns `None` for a name fulcrum does not implement.
    pub fn from_name(name: &str) -> Option<SchedKind> {
        match name {
            "rr" => Some(SchedKind::Rr),
            "wrr" => Some(SchedKind::Wrr),
            _ => None,
        }
    }
    /// The ipvsadm name.
    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
        }
    }
    /// Every implemented scheduler's name, for error messages.
    pub const NAMES: &'static [&'static str] = &["rr", "wrr"];
}

/// Any scheduler, dispatched by `match` (no boxed trait object on the path
/// that creates connections).
#[derive(Clone, Debug)]
pub enum AnyScheduler {
    /// Round robin.
    Rr(RoundRobin),
    /// Weighted round robin.
    Wrr(WeightedRoundRobin),
}

impl AnyScheduler {
    /// Fresh state for `kind`.
    pub fn new(kind: SchedKind) -> Self {
        match kind {
            SchedKind::Rr => AnyScheduler::Rr(RoundRobin::default()),
            SchedKind::Wrr => AnyScheduler::Wrr(WeightedRoundRobin::default()),
        }
    }
}

impl Scheduler for AnyScheduler {
    #[inline]
    fn pick(&mut self, dests: &[Dest], flow: &FlowInfo) -> Option<usize> {
        match self {
            AnyScheduler::Rr(s) => s.pick(dests, flow),
            AnyScheduler::Wrr(s) => s.pick(dests, flow),
        }
    }
}
