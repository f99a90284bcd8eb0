//! The VRRP thread's publish step: the addresses of every MASTER instance
//! become the snapshot's held VRRP addresses ([`Editor::set_vrrp`], a no-op
//! when unchanged), and every instance's state and counters become the
//! report `fulcrumctl --vrrp` prints.
//!
//! Layer: control, daemon side, on the `fulcrum-vrrp` thread once a pass.
//!
//! [`Editor::set_vrrp`]: crate::edit::Editor::set_vrrp

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::PoisonError;

use tracing::error;

use super::super::machine::State;
use super::super::report::{InstanceReport, Transition, VrrpReport};
use super::{unix_ms, Runner};
use crate::compile::VrrpView;

impl Runner {
    /// Publishes the held addresses (a no-op when unchanged) and the report.
    pub(super) fn publish(&mut self) {
        let held: BTreeSet<u32> = self
            .insts
            .iter()
            .filter(|x| x.m.state() == State::Master)
            .flat_map(|x| x.addrs.iter().copied())
            .collect();
        if let Err(e) = self.editor.set_vrrp(VrrpView { held }) {
            error!("VRRP ownership not published: {e}");
        }
        let now_unix = unix_ms();
        let now = self.now();
        let instances = self
            .insts
            .iter()
            .map(|x| {
                let s = x.m.stats();
                InstanceReport {
                    name: x.cfg.name.clone(),
                    interface: x.cfg.interface.clone(),
                    vrid: x.cfg.virtual_router_id,
                    version: x.cfg.version,
                    state: x.m.state().to_string(),
                    split_brain: x.m.split_brain(),
                    priority: x.cfg.priority,
                    effective_priority: x.m.effective_priority(),
                    master: x.m.master_ip().map(|a| Ipv4Addr::from(a).to_string()),
                    advert_int_ms: x.cfg.advert_int_ms(),
                    master_down_ms: x.m.master_down_ms(),
                    addresses: x
                        .addrs
                        .iter()
                        .map(|&a| Ipv4Addr::from(a).to_string())
                        .collect(),
                    sync_group: x.group.map(|g| self.groups[g].name.clone()),
                    tracking: x.tracking.clone(),
                    adverts_sent: s.adverts_sent,
                    adverts_received: s.adverts_received,
                    adverts_rejected: s
                        .rejected
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), *v))
                        .collect(),
                    became_master: s.became_master,
                    released_master: s.released_master,
                    split_brain_events: s.split_brain_events,
                    garps_sent: x.garps_sent,
                    last_transition: x.m.last_transition().map(|(at, from, to, why)| Transition {
                        at_unix_ms: now_unix.saturating_sub(now.saturating_sub(at)),
                        from: from.to_string(),
                        to: to.to_string(),
                        reason: why.to_string(),
                    }),
                }
            })
            .collect();
        *self.report.lock().unwrap_or_else(PoisonError::into_inner) = VrrpReport {
            instances,
            dropped: self.dropped.clone(),
        };
    }
}
