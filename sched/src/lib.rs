//! IPVS schedulers: which real server gets a new connection.
//!
//! Layer: pure policy. A scheduler sees the real servers of one virtual
//! service as a slice of [`Dest`] (weights and connection counts) and returns
//! an index into it. Schedulers are deterministic, allocate only when built
//! (or when a table is rebuilt because the weights or identities of the real
//! servers changed; an `mh` table published by the control thread
//! ([`MhTable`], [`AnyScheduler::with_table`]) is shared, not rebuilt),
//! never panic on any input, and never pick a server whose
//! weight is 0 (IPVS "quiesced": it keeps existing connections but gets no
//! new ones).
//!
//! Each worker owns its own scheduler state, so `rr`/`wrr` sequences,
//! `twos` random streams and `lblc`/`lblcr` locality tables are per worker, as
//! each CPU's view would be in a sharded director. Table-driven schedulers
//! (`dh`, `sh`, `mh`) build the same table from the same inputs on every
//! worker, so a flow hashes to the same real server whichever worker sees it.
//!
//! Refused: IPVS's per-destination `u_threshold`/`l_threshold` (the
//! `IP_VS_DEST_F_OVERLOAD` flag) is not modelled, so "overloaded" below only
//! ever means what each scheduler's own rule says (`lblc`/`lblcr`, `ovf`).
#![forbid(unsafe_code)]

use std::sync::Arc;

pub mod dh;
pub mod fo;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

pub use dh::DestinationHashing;
pub use fo::WeightedFailover;
pub use lblc::LocalityLeastConn;
pub use lblcr::LocalityLeastConnReplicated;
pub use lc::LeastConn;
pub use mh::{build_table, is_prime, Maglev, MhTable};
pub use nq::NeverQueue;
pub use ovf::Overflow;
pub use rr::RoundRobin;
pub use sed::ShortestExpectedDelay;
pub use sh::SourceHashing;
pub use twos::TwoChoices;
pub use wlc::WeightedLeastConn;
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
    /// Stable identity of the real server, e.g. `RIP << 16 | port` (RIP and
    /// port in host order). Only `mh` reads it: Maglev's permutation must
    /// follow the server, not its position, so that removing one server does
    /// not move the others. 0 = unknown: `mh` then uses the index as the
    /// identity (removing a server reshuffles the ones after it).
    pub id: u64,
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
    /// "no destination available"; fulcrum counts `no_real_server`), and in
    /// the per-scheduler cases IPVS returns NULL (e.g. `dh` hashing to a
    /// quiesced server, `ovf` with every server over its weight).
    fn pick(&mut self, dests: &[Dest], flow: &FlowInfo) -> Option<usize>;
}

/// IPVS `ip_vs_dest_conn_overhead`: `activeconns · 256 + inactconns`.
///
/// Active connections weigh 256 times an inactive one because they hold the
/// server's resources (IPVS comment: "active connections … are much more
/// expensive"). In u64 so that the cross-multiplications by a weight in
/// `wlc` and friends cannot overflow: (2³²·2⁸ + 2³²)·2¹⁶ < 2⁶⁴.
#[inline]
pub fn conn_overhead(d: &Dest) -> u64 {
    (u64::from(d.active_conns) << 8) + u64::from(d.inactive_conns)
}

/// What a table-driven scheduler's table was built from: the (id, weight) of
/// every destination in order. Compared on every pick (O(n), no hashing, so
/// no false "unchanged"); the buffer is reused, so a rebuild allocates only
/// when the list grows past its largest size so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct BuiltFor {
    key: Vec<(u64, u32)>,
    valid: bool,
}

impl BuiltFor {
    /// `true` when `dests` has the same ids and weights as at the last
    /// [`BuiltFor::set`].
    #[inline]
    pub(crate) fn matches(&self, dests: &[Dest]) -> bool {
        self.valid
            && self.key.len() == dests.len()
            && self
                .key
                .iter()
                .zip(dests)
                .all(|(k, d)| k.0 == d.id && k.1 == d.weight)
    }

    /// `true` when `dests` has the same ids in the same order as at the last
    /// [`BuiltFor::set`] (weights may differ): indices remembered since then
    /// still name the same real servers.
    #[inline]
    pub(crate) fn matches_ids(&self, dests: &[Dest]) -> bool {
        self.valid
            && self.key.len() == dests.len()
            && self.key.iter().zip(dests).all(|(k, d)| k.0 == d.id)
    }

    /// Records `dests` as the inputs of the table just built.
    pub(crate) fn set(&mut self, dests: &[Dest]) {
        self.key.clear();
        self.key.extend(dests.iter().map(|d| (d.id, d.weight)));
        self.valid = true;
    }
}

/// Per-service scheduler flags, as ipvsadm `-b` / keepalived
/// `scheduler_flags` spell them (`sh-port`, `sh-fallback`, `mh-port`,
/// `mh-fallback`; the generic `flag-1`/`flag-2` resolve to these through
/// [`SchedKind::canonical_flag`]). Flags that do not apply to a scheduler
/// are ignored by [`AnyScheduler::with_flags`]; the config rejects them
/// earlier with [`SchedKind::accepts_flag`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags {
    /// `sh-port`: `sh` hashes the client port as well as the client IP
    /// (IPVS `IP_VS_SVC_F_SCHED_SH_PORT`).
    pub sh_port: bool,
    /// `sh-fallback`: when the bucket's server is quiesced, `sh` tries the
    /// following buckets (IPVS `IP_VS_SVC_F_SCHED_SH_FALLBACK`).
    pub sh_fallback: bool,
    /// `mh-port`: `mh` hashes the client port as well as the client IP
    /// (IPVS `IP_VS_SVC_F_SCHED_MH_PORT`).
    pub mh_port: bool,
    /// `mh-fallback`: when the slot's server is quiesced, `mh` rehashes with
    /// an offset until it finds one that is not
    /// (IPVS `IP_VS_SVC_F_SCHED_MH_FALLBACK`).
    pub mh_fallback: bool,
}

/// Default `mh` table size M: the prime the Maglev paper uses (NSDI'16 §3.4,
/// 65537). IPVS defaults to 251 (`CONFIG_IP_VS_MH_TAB_INDEX`); fulcrum takes
/// the paper's value so that M ≥ 100·N holds up to 655 real servers.
pub const MH_TABLE_LEN_DEFAULT: usize = 65537;
/// Default fixed `mh` hash seed, so that every worker and every director
/// built from the same config fills identical tables.
pub const MH_SEED_DEFAULT: u64 = 0x6675_6c63_7275_6d31; // "fulcrum1"

/// Table sizes, seeds and timeouts of the schedulers that have any.
///
/// Every field has a documented default ([`SchedParams::default`]); each is
/// checked by [`SchedParams::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchedParams {
    /// `dh` buckets: a power of two in 1..=2²⁰. Default 256 (IPVS
    /// `CONFIG_IP_VS_DH_TAB_BITS` = 8).
    pub dh_table_len: usize,
    /// `sh` buckets: a power of two in 1..=2²⁰. Default 256 (IPVS
    /// `CONFIG_IP_VS_SH_TAB_BITS` = 8).
    pub sh_table_len: usize,
    /// `mh` table size M: a prime in 2..=2²⁴. Default
    /// [`MH_TABLE_LEN_DEFAULT`] (65537). Maglev wants M ≥ 100·N for
    /// near-equal shares; checking that against N is the caller's job
    /// (see [`is_prime`]).
    pub mh_table_len: usize,
    /// `mh` hash seed. Default [`MH_SEED_DEFAULT`].
    pub mh_seed: u64,
    /// `lblc`/`lblcr` locality table entries (destination IPs remembered):
    /// a power of two in 1..=2²⁰. Default 16384 (IPVS's default table is
    /// 1024 buckets × 16 = its `max_size`).
    pub lblc_table_len: usize,
    /// `lblc`/`lblcr`: an entry not used for this long is dropped by
    /// [`AnyScheduler::tick`]. Default 24 h (IPVS
    /// `lblc_expiration`/`lblcr_expiration` sysctls).
    pub lblc_expire_ms: u64,
    /// `lblcr`: a server set with more than one member that has not changed
    /// for this long loses its most loaded member. Default 6 min.
    pub lblcr_set_expire_ms: u64,
    /// `twos` random seed (xorshift64*); 0 is replaced by a fixed non-zero
    /// constant because xorshift's state must not be 0. Default 1.
    pub twos_seed: u64,
}

impl Default for SchedParams {
    fn default() -> Self {
        SchedParams {
            dh_table_len: 256,
            sh_table_len: 256,
            mh_table_len: MH_TABLE_LEN_DEFAULT,
            mh_seed: MH_SEED_DEFAULT,
            lblc_table_len: 16384,
            lblc_expire_ms: 24 * 60 * 60 * 1000,
            lblcr_set_expire_ms: 6 * 60 * 1000,
            twos_seed: 1,
        }
    }
}

/// Largest power-of-two table (`dh`, `sh`, `lblc`, `lblcr`) accepted.
pub const POW2_TABLE_LEN_MAX: usize = 1 << 20;
/// Largest `mh` table size accepted (the table holds u16 indices, 2 bytes
/// per slot, so 32 MiB per service per worker at most).
pub const MH_TABLE_LEN_MAX: usize = 1 << 24;

/// Why a [`SchedParams`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    /// A `dh`/`sh`/`lblc` table length is not a power of two in
    /// 1..=[`POW2_TABLE_LEN_MAX`].
    #[error("{field} = {len}: expected a power of two between 1 and {max}", max = POW2_TABLE_LEN_MAX)]
    TableLenNotPowerOfTwo {
        /// The [`SchedParams`] field name.
        field: &'static str,
        /// The value given.
        len: usize,
    },
    /// The `mh` table size is not a prime in 2..=[`MH_TABLE_LEN_MAX`].
    #[error("mh_table_len = {0}: expected a prime between 2 and {max}", max = MH_TABLE_LEN_MAX)]
    MhTableLenNotPrime(usize),
}

impl SchedParams {
    /// Checks every table size.
    ///
    /// # Errors
    /// [`SchedError::TableLenNotPowerOfTwo`] for a `dh`, `sh` or `lblc`
    /// size that is not a power of two in range;
    /// [`SchedError::MhTableLenNotPrime`] for an `mh` size that is not a
    /// prime in range.
    pub fn validate(&self) -> Result<(), SchedError> {
        for (field, len) in [
            ("dh_table_len", self.dh_table_len),
            ("sh_table_len", self.sh_table_len),
            ("lblc_table_len", self.lblc_table_len),
        ] {
            if !len.is_power_of_two() || len > POW2_TABLE_LEN_MAX {
                return Err(SchedError::TableLenNotPowerOfTwo { field, len });
            }
        }
        if self.mh_table_len > MH_TABLE_LEN_MAX || !is_prime(self.mh_table_len as u64) {
            return Err(SchedError::MhTableLenNotPrime(self.mh_table_len));
        }
        Ok(())
    }
}

/// The scheduler names fulcrum accepts, as ipvsadm `-s` spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedKind {
    /// `rr`: round robin.
    Rr,
    /// `wrr`: weighted round robin.
    Wrr,
    /// `lc`: least connections.
    Lc,
    /// `wlc`: weighted least connections.
    Wlc,
    /// `lblc`: locality-based least connections.
    Lblc,
    /// `lblcr`: locality-based least connections with replication.
    Lblcr,
    /// `dh`: destination hashing.
    Dh,
    /// `sh`: source hashing.
    Sh,
    /// `sed`: shortest expected delay.
    Sed,
    /// `nq`: never queue.
    Nq,
    /// `fo`: weighted failover.
    Fo,
    /// `ovf`: overflow connection.
    Ovf,
    /// `mh`: Maglev hashing.
    Mh,
    /// `twos`: weighted random twos choices.
    Twos,
}

impl SchedKind {
    /// Every kind, in [`SchedKind::NAMES`] order.
    pub const ALL: &'static [SchedKind] = &[
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Wlc,
        SchedKind::Lblc,
        SchedKind::Lblcr,
        SchedKind::Dh,
        SchedKind::Sh,
        SchedKind::Sed,
        SchedKind::Nq,
        SchedKind::Fo,
        SchedKind::Ovf,
        SchedKind::Mh,
        SchedKind::Twos,
    ];

    /// Parses an ipvsadm scheduler name.
    ///
    /// # Errors
    /// Returns `None` for a name fulcrum does not implement.
    pub fn from_name(name: &str) -> Option<SchedKind> {
        SchedKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The ipvsadm name.
    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Lblc => "lblc",
            SchedKind::Lblcr => "lblcr",
            SchedKind::Dh => "dh",
            SchedKind::Sh => "sh",
            SchedKind::Sed => "sed",
            SchedKind::Nq => "nq",
            SchedKind::Fo => "fo",
            SchedKind::Ovf => "ovf",
            SchedKind::Mh => "mh",
            SchedKind::Twos => "twos",
        }
    }

    /// Every implemented scheduler's name, for error messages, in the order
    /// ipvsadm(8) lists them (then `twos`, added to IPVS later).
    pub const NAMES: &'static [&'static str] = &[
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
        "twos",
    ];

    /// `true` when the scheduler flag `flag` (ipvsadm `-b` spelling:
    /// `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`, or the generic
    /// `flag-1`/`flag-2`) applies to this scheduler, so the config can reject
    /// e.g. `sh-port` on a `wlc` service. Same as
    /// [`SchedKind::canonical_flag`]`(flag).is_some()`.
    pub fn accepts_flag(self, flag: &str) -> bool {
        self.canonical_flag(flag).is_some()
    }

    /// The specific name of scheduler flag `flag` for this scheduler, or
    /// `None` when it does not apply.
    ///
    /// ipvsadm's generic names are service flag bits whose meaning depends
    /// on the scheduler (`include/uapi/linux/ip_vs.h`): `flag-1` is
    /// `IP_VS_SVC_F_SCHED1`, which `sh` reads as `sh-fallback` and `mh` as
    /// `mh-fallback`; `flag-2` is `IP_VS_SVC_F_SCHED2`, i.e. `sh-port` /
    /// `mh-port`. `flag-3` has no meaning for any scheduler, so it is
    /// refused like an unknown name.
    pub fn canonical_flag(self, flag: &str) -> Option<SchedFlag> {
        let &[fallback, port] = self.flags() else {
            return None;
        };
        match flag {
            "flag-1" => Some(fallback),
            "flag-2" => Some(port),
            f => f.parse().ok().filter(|x| self.flags().contains(x)),
        }
    }

    /// The specific scheduler flags this scheduler takes, fallback first
    /// (`flag-1`, then `flag-2`): `sh-fallback`, `sh-port` for `sh`;
    /// `mh-fallback`, `mh-port` for `mh`; none for the others.
    pub fn flags(self) -> &'static [SchedFlag] {
        match self {
            SchedKind::Sh => &[SchedFlag::ShFallback, SchedFlag::ShPort],
            SchedKind::Mh => &[SchedFlag::MhFallback, SchedFlag::MhPort],
            _ => &[],
        }
    }
}

/// One scheduler flag, by its scheduler-specific name (ipvsadm `-b`,
/// keepalived `scheduler_flags`). ipvsadm's generic `flag-1`/`flag-2` are
/// not names of their own: their meaning depends on the scheduler, see
/// [`SchedKind::canonical_flag`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedFlag {
    /// `sh-fallback` (IPVS `IP_VS_SVC_F_SCHED_SH_FALLBACK`).
    ShFallback,
    /// `sh-port` (IPVS `IP_VS_SVC_F_SCHED_SH_PORT`).
    ShPort,
    /// `mh-fallback` (IPVS `IP_VS_SVC_F_SCHED_MH_FALLBACK`).
    MhFallback,
    /// `mh-port` (IPVS `IP_VS_SVC_F_SCHED_MH_PORT`).
    MhPort,
}

impl SchedFlag {
    /// Every flag, in the order listings print them.
    pub const ALL: [SchedFlag; 4] = [
        SchedFlag::ShFallback,
        SchedFlag::ShPort,
        SchedFlag::MhFallback,
        SchedFlag::MhPort,
    ];
}

/// The specific name: `sh-fallback`, `sh-port`, `mh-fallback`, `mh-port`.
impl std::fmt::Display for SchedFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SchedFlag::ShFallback => "sh-fallback",
            SchedFlag::ShPort => "sh-port",
            SchedFlag::MhFallback => "mh-fallback",
            SchedFlag::MhPort => "mh-port",
        })
    }
}

/// A scheduler flag name that is none of the specific ones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheduler flag {0:?}")]
pub struct UnknownSchedFlag(pub String);

/// Reads a specific name (what `Display` prints); the generic `flag-N`
/// names are refused here, see [`SchedKind::canonical_flag`].
impl std::str::FromStr for SchedFlag {
    type Err = UnknownSchedFlag;
    fn from_str(s: &str) -> Result<Self, UnknownSchedFlag> {
        SchedFlag::ALL
            .into_iter()
            .find(|f| f.to_string() == s)
            .ok_or_else(|| UnknownSchedFlag(s.to_string()))
    }
}

impl SchedFlags {
    /// Turns on `flag`.
    pub fn set(&mut self, flag: SchedFlag) {
        *self.get_mut(flag) = true;
    }

    /// Whether `flag` is on.
    pub fn contains(self, flag: SchedFlag) -> bool {
        match flag {
            SchedFlag::ShFallback => self.sh_fallback,
            SchedFlag::ShPort => self.sh_port,
            SchedFlag::MhFallback => self.mh_fallback,
            SchedFlag::MhPort => self.mh_port,
        }
    }

    /// The flags that are on, in [`SchedFlag::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = SchedFlag> {
        SchedFlag::ALL
            .into_iter()
            .filter(move |&f| self.contains(f))
    }

    fn get_mut(&mut self, flag: SchedFlag) -> &mut bool {
        match flag {
            SchedFlag::ShFallback => &mut self.sh_fallback,
            SchedFlag::ShPort => &mut self.sh_port,
            SchedFlag::MhFallback => &mut self.mh_fallback,
            SchedFlag::MhPort => &mut self.mh_port,
        }
    }
}

/// Any scheduler, dispatched by `match` (no boxed trait object on the path
/// that creates connections).
#[derive(Clone, Debug)]
pub enum AnyScheduler {
    /// Round robin.
    Rr(RoundRobin),
    /// Weighted round robin.
    Wrr(WeightedRoundRobin),
    /// Least connections.
    Lc(LeastConn),
    /// Weighted least connections.
    Wlc(WeightedLeastConn),
    /// Locality-based least connections.
    Lblc(LocalityLeastConn),
    /// Locality-based least connections with replication.
    Lblcr(LocalityLeastConnReplicated),
    /// Destination hashing.
    Dh(DestinationHashing),
    /// Source hashing.
    Sh(SourceHashing),
    /// Shortest expected delay.
    Sed(ShortestExpectedDelay),
    /// Never queue.
    Nq(NeverQueue),
    /// Weighted failover.
    Fo(WeightedFailover),
    /// Overflow connection.
    Ovf(Overflow),
    /// Maglev hashing.
    Mh(Maglev),
    /// Weighted random two choices.
    Twos(TwoChoices),
}

impl AnyScheduler {
    /// Fresh state for `kind` with no flags and [`SchedParams::default`].
    pub fn new(kind: SchedKind) -> Self {
        Self::build(kind, SchedFlags::default(), &SchedParams::default())
    }

    /// Fresh state for `kind` with `flags` (those that do not apply to
    /// `kind` are ignored) and `params`. Tables are built lazily at the first
    /// pick, not here.
    ///
    /// # Errors
    /// Whatever [`SchedParams::validate`] returns, whichever `kind` it is
    /// (a bad size is a config error even if this service does not use it).
    pub fn with_flags(
        kind: SchedKind,
        flags: SchedFlags,
        params: &SchedParams,
    ) -> Result<Self, SchedError> {
        params.validate()?;
        Ok(Self::build(kind, flags, params))
    }

    /// Like [`AnyScheduler::with_flags`], but an `mh` service adopts
    /// `mh_table`, a table built off the fast path (by the control thread,
    /// [`MhTable::build`]) and shared by `Arc`: nothing is copied or built.
    ///
    /// The table is adopted only when `kind` is [`SchedKind::Mh`] and the
    /// table's size and seed are `params.mh_table_len` and `params.mh_seed`;
    /// otherwise it is ignored and the scheduler builds its own at the first
    /// pick, as [`AnyScheduler::with_flags`] does. See
    /// [`Maglev::with_table`] for when an adopted table is still rebuilt.
    ///
    /// # Errors
    /// Whatever [`SchedParams::validate`] returns.
    pub fn with_table(
        kind: SchedKind,
        flags: SchedFlags,
        params: &SchedParams,
        mh_table: Option<Arc<MhTable>>,
    ) -> Result<Self, SchedError> {
        params.validate()?;
        match mh_table {
            Some(t)
                if kind == SchedKind::Mh
                    && t.len() == params.mh_table_len
                    && t.seed() == params.mh_seed =>
            {
                Ok(AnyScheduler::Mh(Maglev::with_table(
                    t,
                    flags.mh_port,
                    flags.mh_fallback,
                )))
            }
            _ => Ok(Self::build(kind, flags, params)),
        }
    }

    /// The `mh` table in use (shared or built by this scheduler); `None`
    /// for other kinds and for an `mh` that has not built one yet.
    pub fn mh_table(&self) -> Option<&Arc<MhTable>> {
        match self {
            AnyScheduler::Mh(m) => m.shared_table(),
            _ => None,
        }
    }

    fn build(kind: SchedKind, flags: SchedFlags, p: &SchedParams) -> Self {
        match kind {
            SchedKind::Rr => AnyScheduler::Rr(RoundRobin::default()),
            SchedKind::Wrr => AnyScheduler::Wrr(WeightedRoundRobin::default()),
            SchedKind::Lc => AnyScheduler::Lc(LeastConn),
            SchedKind::Wlc => AnyScheduler::Wlc(WeightedLeastConn),
            SchedKind::Lblc => {
                AnyScheduler::Lblc(LocalityLeastConn::new(p.lblc_table_len, p.lblc_expire_ms))
            }
            SchedKind::Lblcr => AnyScheduler::Lblcr(LocalityLeastConnReplicated::new(
                p.lblc_table_len,
                p.lblc_expire_ms,
                p.lblcr_set_expire_ms,
            )),
            SchedKind::Dh => AnyScheduler::Dh(DestinationHashing::new(p.dh_table_len)),
            SchedKind::Sh => AnyScheduler::Sh(SourceHashing::new(
                p.sh_table_len,
                flags.sh_port,
                flags.sh_fallback,
            )),
            SchedKind::Sed => AnyScheduler::Sed(ShortestExpectedDelay),
            SchedKind::Nq => AnyScheduler::Nq(NeverQueue),
            SchedKind::Fo => AnyScheduler::Fo(WeightedFailover),
            SchedKind::Ovf => AnyScheduler::Ovf(Overflow),
            SchedKind::Mh => AnyScheduler::Mh(Maglev::new(
                p.mh_table_len,
                p.mh_seed,
                flags.mh_port,
                flags.mh_fallback,
            )),
            SchedKind::Twos => AnyScheduler::Twos(TwoChoices::new(p.twos_seed)),
        }
    }

    /// The kind this state belongs to.
    pub fn kind(&self) -> SchedKind {
        match self {
            AnyScheduler::Rr(_) => SchedKind::Rr,
            AnyScheduler::Wrr(_) => SchedKind::Wrr,
            AnyScheduler::Lc(_) => SchedKind::Lc,
            AnyScheduler::Wlc(_) => SchedKind::Wlc,
            AnyScheduler::Lblc(_) => SchedKind::Lblc,
            AnyScheduler::Lblcr(_) => SchedKind::Lblcr,
            AnyScheduler::Dh(_) => SchedKind::Dh,
            AnyScheduler::Sh(_) => SchedKind::Sh,
            AnyScheduler::Sed(_) => SchedKind::Sed,
            AnyScheduler::Nq(_) => SchedKind::Nq,
            AnyScheduler::Fo(_) => SchedKind::Fo,
            AnyScheduler::Ovf(_) => SchedKind::Ovf,
            AnyScheduler::Mh(_) => SchedKind::Mh,
            AnyScheduler::Twos(_) => SchedKind::Twos,
        }
    }

    /// Advances the scheduler's clock to `now_ms` (any monotonic
    /// milliseconds; only differences matter) and runs its periodic work.
    ///
    /// `pick` has no clock, so `lblc`/`lblcr` read time from here: entries
    /// unused for `lblc_expire_ms` are dropped and `lblcr` set ages are
    /// measured against it. Call it from the worker's slow tick (≈ 1 Hz is
    /// plenty; IPVS sweeps every 30 s). A no-op for every other scheduler.
    pub fn tick(&mut self, now_ms: u64) {
        match self {
            AnyScheduler::Lblc(s) => s.tick(now_ms),
            AnyScheduler::Lblcr(s) => s.tick(now_ms),
            _ => {}
        }
    }
}

impl Scheduler for AnyScheduler {
    #[inline]
    fn pick(&mut self, dests: &[Dest], flow: &FlowInfo) -> Option<usize> {
        match self {
            AnyScheduler::Rr(s) => s.pick(dests, flow),
            AnyScheduler::Wrr(s) => s.pick(dests, flow),
            AnyScheduler::Lc(s) => s.pick(dests, flow),
            AnyScheduler::Wlc(s) => s.pick(dests, flow),
            AnyScheduler::Lblc(s) => s.pick(dests, flow),
            AnyScheduler::Lblcr(s) => s.pick(dests, flow),
            AnyScheduler::Dh(s) => s.pick(dests, flow),
            AnyScheduler::Sh(s) => s.pick(dests, flow),
            AnyScheduler::Sed(s) => s.pick(dests, flow),
            AnyScheduler::Nq(s) => s.pick(dests, flow),
            AnyScheduler::Fo(s) => s.pick(dests, flow),
            AnyScheduler::Ovf(s) => s.pick(dests, flow),
            AnyScheduler::Mh(s) => s.pick(dests, flow),
            AnyScheduler::Twos(s) => s.pick(dests, flow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_usable(dests: &[Dest]) -> bool {
        dests.iter().any(|d| d.weight > 0)
    }

    /// Small tables so that the property tests stay fast in debug builds.
    fn small_params() -> SchedParams {
        SchedParams {
            mh_table_len: 251,
            lblc_table_len: 64,
            ..SchedParams::default()
        }
    }

    fn all_scheds() -> Vec<AnyScheduler> {
        SchedKind::ALL
            .iter()
            .map(|&k| {
                let flags = SchedFlags {
                    sh_fallback: true,
                    mh_fallback: true,
                    ..SchedFlags::default()
                };
                AnyScheduler::with_flags(k, flags, &small_params()).unwrap()
            })
            .collect()
    }

    fn arb_dests() -> impl Strategy<Value = Vec<Dest>> {
        proptest::collection::vec(
            (0u32..6, 0u32..12, 0u32..12, 0u64..4).prop_map(|(weight, a, i, id)| Dest {
                weight,
                active_conns: a,
                inactive_conns: i,
                id,
            }),
            0..10,
        )
    }

    fn arb_flow() -> impl Strategy<Value = FlowInfo> {
        (any::<u32>(), any::<u16>(), any::<u32>(), any::<u16>()).prop_map(
            |(src_ip, src_port, dst_ip, dst_port)| FlowInfo {
                src_ip,
                src_port,
                dst_ip,
                dst_port,
            },
        )
    }

    #[test]
    fn test_names_round_trip() {
        assert_eq!(SchedKind::ALL.len(), SchedKind::NAMES.len());
        for (&k, &n) in SchedKind::ALL.iter().zip(SchedKind::NAMES) {
            assert_eq!(k.name(), n);
            assert_eq!(SchedKind::from_name(n), Some(k));
            assert_eq!(AnyScheduler::new(k).kind(), k);
        }
        assert_eq!(SchedKind::from_name("wrrr"), None);
        assert_eq!(SchedKind::from_name(""), None);
    }

    #[test]
    fn test_sched_flag_names() {
        for f in SchedFlag::ALL {
            assert_eq!(f.to_string().parse::<SchedFlag>(), Ok(f));
            let mut set = SchedFlags::default();
            set.set(f);
            assert_eq!(set.iter().collect::<Vec<_>>(), vec![f]);
        }
        assert_eq!(SchedFlag::ShPort.to_string(), "sh-port");
        assert_eq!(
            "flag-1".parse::<SchedFlag>(),
            Err(UnknownSchedFlag("flag-1".into()))
        );
        let mut both = SchedFlags::default();
        both.set(SchedFlag::ShPort);
        both.set(SchedFlag::ShFallback);
        let names: Vec<String> = both.iter().map(|f| f.to_string()).collect();
        assert_eq!(names, ["sh-fallback", "sh-port"]);
    }

    #[test]
    fn test_accepts_flag() {
        assert!(SchedKind::Sh.accepts_flag("sh-port"));
        assert!(SchedKind::Sh.accepts_flag("sh-fallback"));
        assert!(!SchedKind::Sh.accepts_flag("mh-port"));
        assert!(SchedKind::Mh.accepts_flag("mh-port"));
        assert!(SchedKind::Mh.accepts_flag("mh-fallback"));
        assert!(!SchedKind::Mh.accepts_flag("sh-fallback"));
        assert!(!SchedKind::Wlc.accepts_flag("sh-port"));
        assert!(!SchedKind::Rr.accepts_flag("mh-port"));
        // ipvsadm's generic bits: SCHED1 = fallback, SCHED2 = port.
        use SchedFlag as F;
        assert_eq!(SchedKind::Sh.canonical_flag("flag-1"), Some(F::ShFallback));
        assert_eq!(SchedKind::Sh.canonical_flag("flag-2"), Some(F::ShPort));
        assert_eq!(SchedKind::Mh.canonical_flag("flag-1"), Some(F::MhFallback));
        assert_eq!(SchedKind::Mh.canonical_flag("flag-2"), Some(F::MhPort));
        assert_eq!(SchedKind::Mh.canonical_flag("mh-port"), Some(F::MhPort));
        assert_eq!(SchedKind::Sh.canonical_flag("mh-port"), None);
        for k in SchedKind::ALL {
            assert_eq!(k.canonical_flag("flag-3"), None);
            assert_eq!(k.canonical_flag(""), None);
            if !matches!(k, SchedKind::Sh | SchedKind::Mh) {
                assert!(k.flags().is_empty());
                assert!(!k.accepts_flag("flag-1") && !k.accepts_flag("flag-2"));
            }
        }
    }

    #[test]
    fn test_sched_flags_set() {
        let mut f = SchedFlags::default();
        f.set(SchedFlag::ShPort);
        f.set(SchedFlag::MhFallback);
        assert!(f.contains(SchedFlag::ShPort) && !f.contains(SchedFlag::ShFallback));
        assert_eq!(
            f,
            SchedFlags {
                sh_port: true,
                mh_fallback: true,
                ..SchedFlags::default()
            }
        );
    }

    #[test]
    fn test_with_table_adopts_only_matching_mh_table() {
        let p = small_params();
        let dests: Vec<Dest> = (1..=3)
            .map(|id| Dest {
                weight: 1,
                id,
                ..Dest::default()
            })
            .collect();
        let t = Arc::new(MhTable::for_dests(&dests, p.mh_table_len, p.mh_seed));
        let flags = SchedFlags::default();
        let s = AnyScheduler::with_table(SchedKind::Mh, flags, &p, Some(t.clone())).unwrap();
        assert!(Arc::ptr_eq(s.mh_table().unwrap(), &t));
        // Another size or seed than the params say: not adopted.
        let other = SchedParams {
            mh_table_len: 257,
            ..p
        };
        let s = AnyScheduler::with_table(SchedKind::Mh, flags, &other, Some(t.clone())).unwrap();
        assert!(s.mh_table().is_none());
        // Not mh: ignored.
        let s = AnyScheduler::with_table(SchedKind::Sh, flags, &p, Some(t.clone())).unwrap();
        assert_eq!(s.kind(), SchedKind::Sh);
        assert!(s.mh_table().is_none());
        // Bad params are still refused.
        let bad = SchedParams {
            mh_table_len: 256,
            ..p
        };
        assert!(AnyScheduler::with_table(SchedKind::Mh, flags, &bad, Some(t)).is_err());
    }

    #[test]
    fn test_params_validate() {
        assert_eq!(SchedParams::default().validate(), Ok(()));
        let bad = SchedParams {
            dh_table_len: 100,
            ..SchedParams::default()
        };
        assert_eq!(
            bad.validate(),
            Err(SchedError::TableLenNotPowerOfTwo {
                field: "dh_table_len",
                len: 100
            })
        );
        let bad = SchedParams {
            lblc_table_len: 0,
            ..SchedParams::default()
        };
        assert!(matches!(
            AnyScheduler::with_flags(SchedKind::Rr, SchedFlags::default(), &bad),
            Err(SchedError::TableLenNotPowerOfTwo {
                field: "lblc_table_len",
                len: 0
            })
        ));
        let bad = SchedParams {
            mh_table_len: 65536,
            ..SchedParams::default()
        };
        assert_eq!(bad.validate(), Err(SchedError::MhTableLenNotPrime(65536)));
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "mh_table_len = 65536: expected a prime between 2 and 16777216"
        );
    }

    #[test]
    fn test_conn_overhead() {
        let d = Dest {
            weight: 1,
            active_conns: 3,
            inactive_conns: 7,
            id: 0,
        };
        assert_eq!(conn_overhead(&d), 3 * 256 + 7);
        let max = Dest {
            weight: 1,
            active_conns: u32::MAX,
            inactive_conns: u32::MAX,
            id: 0,
        };
        assert_eq!(
            conn_overhead(&max),
            (u64::from(u32::MAX) << 8) + u64::from(u32::MAX)
        );
    }

    #[test]
    fn test_every_scheduler_none_on_empty_or_all_quiesced() {
        let quiesced = [
            Dest::default(),
            Dest {
                active_conns: 1,
                ..Dest::default()
            },
        ];
        for s in &mut all_scheds() {
            for _ in 0..3 {
                assert_eq!(s.pick(&[], &FlowInfo::default()), None, "{:?}", s.kind());
                assert_eq!(
                    s.pick(&quiesced, &FlowInfo::default()),
                    None,
                    "{:?}",
                    s.kind()
                );
            }
        }
    }

    #[test]
    fn test_tick_is_harmless_for_stateless() {
        let dests = [Dest {
            weight: 1,
            ..Dest::default()
        }];
        for s in &mut all_scheds() {
            s.tick(1_000);
            s.tick(u64::MAX);
            assert_eq!(
                s.pick(&dests, &FlowInfo::default()),
                Some(0),
                "{:?}",
                s.kind()
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn prop_in_range_never_quiesced_deterministic(
            dests in arb_dests(),
            flows in proptest::collection::vec(arb_flow(), 1..24),
        ) {
            let mut a = all_scheds();
            let mut b = all_scheds();
            for (sa, sb) in a.iter_mut().zip(b.iter_mut()) {
                for f in &flows {
                    let pa = sa.pick(&dests, f);
                    let pb = sb.pick(&dests, f);
                    // Same state, same inputs: same answer.
                    prop_assert_eq!(pa, pb, "{:?}", sa.kind());
                    if let Some(i) = pa {
                        prop_assert!(i < dests.len(), "{:?} {}", sa.kind(), i);
                        prop_assert!(dests[i].weight > 0, "{:?} picked quiesced {}", sa.kind(), i);
                    } else if !matches!(sa.kind(), SchedKind::Dh | SchedKind::Ovf) {
                        // Only dh (bucket of a quiesced server) and ovf
                        // (everyone over weight) may refuse while some
                        // server is usable; sh and mh fall back here.
                        prop_assert!(!any_usable(&dests), "{:?} refused {:?}", sa.kind(), dests);
                    }
                }
            }
        }

        #[test]
        fn prop_table_schedulers_same_on_every_worker(
            dests in arb_dests(),
            flows in proptest::collection::vec(arb_flow(), 1..16),
        ) {
            // dh/sh/mh keep no per-worker history: a worker that saw other
            // flows first answers like a fresh one.
            for k in [SchedKind::Dh, SchedKind::Sh, SchedKind::Mh] {
                let mut warm = AnyScheduler::with_flags(k, SchedFlags::default(), &small_params()).unwrap();
                for f in &flows {
                    warm.pick(&dests, f);
                }
                for f in &flows {
                    let mut fresh = AnyScheduler::with_flags(k, SchedFlags::default(), &small_params()).unwrap();
                    prop_assert_eq!(warm.pick(&dests, f), fresh.pick(&dests, f));
                }
            }
        }
    }
}
