//! Persistence templates on the packet path (IPVS `ip_vs_sched_persist()`).
//!
//! Layer: dataplane, per worker. The `conn` stage asks [`TemplateParts::pick`]
//! before scheduling a persistent service and [`TemplateParts::create`]
//! after; templates this worker creates are queued for the other workers
//! (see `Core::learn_template` for the conflict rule), because ownership
//! hashes the client port too, so one client's connections land on several
//! workers.

use crate::persist::{self, Template, TemplateFact, TemplateKey, TemplateTable};
use crate::snapshot::{RealServer, Service, Snapshot};
use crate::stats::WorkerStats;

/// Most persistent templates a worker queues for the other workers between
/// drains; more are not shared (that only delays convergence).
pub const MAX_TEMPLATE_OUT: usize = 256;

/// The parts of a worker persistence borrows.
pub struct TemplateParts<'a> {
    /// The worker's templates (its own and replicated ones).
    pub table: &'a mut TemplateTable,
    /// Templates to share with the other workers.
    pub out: &'a mut Vec<TemplateFact>,
    /// Counters (`persist_templates`, `persist_table_full`).
    pub stats: &'a mut WorkerStats,
    /// This worker's id (a template's `creator`).
    pub worker: u16,
    /// Workers in all: nothing is queued when there is one.
    pub n_workers: u16,
}

impl TemplateParts<'_> {
    /// The index into `service.reals` of the real server a live template
    /// for `tk` names, refreshing the template to `now_ms` + the service's
    /// timeout (each new connection through a template extends it, as
    /// IPVS re-arms the template's timer). `None` when there is no live
    /// template or its RIP:rport is no longer one of the service's real
    /// servers; a quiesced (weight 0) real server still counts, as with
    /// IPVS's default `expire_quiescent_template = 0`.
    pub fn pick(
        &mut self,
        snap: &Snapshot,
        service: &Service,
        tk: &TemplateKey,
        now_ms: u64,
    ) -> Option<usize> {
        let timeout_ms = u64::from(service.persistence?.timeout_ms);
        let found = match self.table.lookup(tk, now_ms) {
            Some(t) => real_index(snap, service, t.rip, t.rport).inspect(|_| {
                t.expires_ms = now_ms + timeout_ms;
            }),
            None => None,
        };
        // The lookup may have removed an expired template.
        self.stats.persist_templates = u64::from(self.table.len());
        found
    }

    /// Stores a new template for `tk` naming `real`, and queues it for the
    /// other workers; a full table is counted (`persist_table_full`) and the
    /// connection goes on without a template.
    pub fn create(&mut self, tk: TemplateKey, real: &RealServer, timeout_ms: u32, now_ms: u64) {
        let t = Template {
            key: tk,
            rip: real.ip,
            rport: real.port,
            creator: self.worker,
            created_ms: now_ms,
            expires_ms: now_ms + u64::from(timeout_ms),
        };
        match self.table.upsert(t) {
            Ok(()) => self.share(t, timeout_ms),
            Err(persist::Full) => self.stats.persist_table_full += 1,
        }
        self.stats.persist_templates = u64::from(self.table.len());
    }

    /// Queues `template` for the other workers (when there are any and the
    /// queue has room).
    pub fn share(&mut self, template: Template, timeout_ms: u32) {
        if self.n_workers > 1 && self.out.len() < MAX_TEMPLATE_OUT {
            self.out.push(TemplateFact {
                template,
                timeout_ms,
            });
        }
    }
}

/// The index into `service.reals` of the real server `rip:rport` (host
/// order; `rport` as configured, 0 in a port-0 service), if it is one.
pub fn real_index(snap: &Snapshot, service: &Service, rip: u32, rport: u16) -> Option<usize> {
    service.reals.iter().position(|&rid| {
        snap.reals
            .get(rid as usize)
            .is_some_and(|r| r.ip == rip && r.port == rport)
    })
}
