//! The per-worker scheduler state of every virtual service.
//!
//! Layer: dataplane, slow path except [`SchedSet::pick`]. Each worker keeps
//! its own scheduler state per service (the `rr` position, `wrr` sequence,
//! `lblc`/`lblcr` locality tables, the `twos` random stream), so picking
//! takes no lock. [`SchedSet::sync`] carries that state across snapshots
//! when nothing it depends on changed, as IPVS keeps a service's scheduler
//! data when only a destination's weight is edited (`ip_vs_edit_dest`) and
//! resets it on `ipvsadm -E -s`.

use hashbrown::HashMap;
use sched::{AnyScheduler, Dest, FlowInfo, SchedFlags, SchedKind, SchedParams, Scheduler};

use crate::conn::FlowKey;
use crate::snapshot::{Service, ServiceKey, Snapshot};
use crate::stats::{DropReason, RealStats};

/// What a service's scheduler state depends on: if all of it is the same
/// in a new snapshot, the state is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SchedSig {
    key: ServiceKey,
    kind: SchedKind,
    flags: SchedFlags,
    params: SchedParams,
    /// (RIP, port) of each real server in scheduler order, host order;
    /// (0, 0) for an id missing from the snapshot.
    reals: Vec<(u32, u16)>,
}

impl SchedSig {
    fn of(svc: &Service, snap: &Snapshot) -> Self {
        SchedSig {
            key: svc.key,
            kind: svc.scheduler,
            flags: svc.sched_flags,
            params: svc.sched_params,
            reals: svc
                .reals
                .iter()
                .map(|&id| {
                    snap.reals
                        .get(id as usize)
                        .map_or((0, 0), |r| (r.ip, r.port))
                })
                .collect(),
        }
    }
}

/// One worker's schedulers, indexed like the adopted snapshot's services.
#[derive(Default)]
pub struct SchedSet {
    scheds: Vec<AnyScheduler>,
    /// What each of `scheds` was set up for, same order.
    sigs: Vec<SchedSig>,
    /// Scratch for [`SchedSet::pick`]: one entry per real server of the
    /// longest service (reserved by `sync`, so picking never allocates).
    dests: Vec<Dest>,
}

impl SchedSet {
    /// Gives every service of `snap` its scheduler state (slow path,
    /// allocates). A service, matched by [`ServiceKey`] (its index moves when
    /// services are added or removed), keeps its state when its scheduler
    /// kind, flags, parameters and real-server list (RIP, port, in order) are
    /// unchanged: the state holds indices into that list. Weights may
    /// differ; they reach the scheduler with every pick. Anything else gets
    /// fresh state, and an `mh` service always takes the new snapshot's
    /// shared table ([`AnyScheduler::with_table`]: nothing is built here).
    pub fn sync(&mut self, snap: &Snapshot) {
        let mut old: HashMap<ServiceKey, (SchedSig, AnyScheduler)> = std::mem::take(&mut self.sigs)
            .into_iter()
            .zip(std::mem::take(&mut self.scheds))
            .map(|(sig, s)| (sig.key, (sig, s)))
            .collect();
        for svc in &snap.services {
            let sig = SchedSig::of(svc, snap);
            let kept = match old.remove(&sig.key) {
                Some((prev, s)) if prev == sig && svc.scheduler != SchedKind::Mh => Some(s),
                _ => None,
            };
            let sched = kept.unwrap_or_else(|| {
                // The snapshot's params were validated by control; should
                // they not be, the defaults still schedule correctly.
                AnyScheduler::with_table(
                    svc.scheduler,
                    svc.sched_flags,
                    &svc.sched_params,
                    svc.mh_table.clone(),
                )
                .unwrap_or_else(|_| AnyScheduler::new(svc.scheduler))
            });
            self.scheds.push(sched);
            self.sigs.push(sig);
        }
        let longest = snap
            .services
            .iter()
            .map(|s| s.reals.len())
            .max()
            .unwrap_or(0);
        self.dests.reserve(longest);
    }

    /// The scheduler of service index `svc`, for inspection.
    pub fn get(&self, svc: u16) -> Option<&AnyScheduler> {
        self.scheds.get(usize::from(svc))
    }

    /// Runs service `svc`'s scheduler over its real servers for the flow
    /// `key`, with each real server's weight from `snap` and its
    /// activeconns/inactconns from `counts` (this worker's, indexed by
    /// real-server id); returns the index into `service.reals` it picked.
    ///
    /// # Errors
    /// `no_real_server` when every real server has weight 0 (or the list is
    /// empty); `no_service` when `svc` has no scheduler (a snapshot not
    /// adopted by [`SchedSet::sync`]).
    pub fn pick(
        &mut self,
        snap: &Snapshot,
        svc: u16,
        service: &Service,
        counts: &[RealStats],
        key: &FlowKey,
    ) -> Result<usize, DropReason> {
        self.dests.clear();
        for &rid in &service.reals {
            let (w, id, s) = match (snap.reals.get(rid as usize), counts.get(rid as usize)) {
                // The identity hashing schedulers (mh) key on: RIP and port.
                (Some(r), Some(s)) => (r.weight, r.sched_id(), *s),
                _ => (0, 0, RealStats::default()),
            };
            self.dests.push(Dest {
                weight: w,
                id,
                active_conns: s.active_conns.min(u64::from(u32::MAX)) as u32,
                inactive_conns: s.inactive_conns.min(u64::from(u32::MAX)) as u32,
            });
        }
        let flow = FlowInfo {
            src_ip: key.src_ip,
            src_port: key.src_port,
            dst_ip: key.dst_ip,
            dst_port: key.dst_port,
        };
        let sched = self
            .scheds
            .get_mut(usize::from(svc))
            .ok_or(DropReason::NoService)?;
        sched
            .pick(&self.dests, &flow)
            .ok_or(DropReason::NoRealServer)
    }

    /// Lets every scheduler age its state at `now_ms` (lblc/lblcr locality
    /// tables; a no-op for the others).
    pub fn tick(&mut self, now_ms: u64) {
        for s in &mut self.scheds {
            s.tick(now_ms);
        }
    }
}
