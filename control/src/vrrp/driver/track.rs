//! The VRRP thread's tracking pass: every instance's `track_interface`
//! (the port's link), `track_script` (the script thread's last result,
//! with keepalived's weight rule) and `track_service` (a virtual service
//! below quorum, from the health results) become the fault flag and the
//! priority change its machine is told ([`Machine::set_tracking`]).
//!
//! Layer: control, daemon side, on the `fulcrum-vrrp` thread every 100 ms.
//!
//! [`Machine::set_tracking`]: super::super::machine::Machine::set_tracking

use std::sync::atomic::Ordering;

use dataplane::snapshot::ServiceKey;

use super::Runner;

impl Runner {
    /// Re-reads every instance's tracked objects and tells its machine.
    pub(super) fn track(&mut self, now: u64) {
        self.last_track = Some(now);
        let health = if self.insts.iter().any(|x| !x.cfg.track_service.is_empty()) {
            Some(self.editor.health())
        } else {
            None
        };
        for i in 0..self.insts.len() {
            let x = &self.insts[i];
            let mut fault = false;
            let mut delta = 0i32;
            let mut why = Vec::new();
            for t in &x.cfg.track_interface {
                let p = self.cfg.ports.iter().position(|p| &p.name == t);
                let up = p
                    .and_then(|p| self.links.get(p))
                    .is_none_or(|l| l.load(Ordering::Relaxed));
                if !up {
                    fault = true;
                    why.push(format!("track_interface {t} down"));
                }
            }
            for t in &x.cfg.track_script {
                let Some(k) = self.cfg.vrrp_script.iter().position(|s| s.name == t.script) else {
                    continue;
                };
                let w = t.weight.unwrap_or(self.cfg.vrrp_script[k].weight);
                let failed = self
                    .scripts
                    .as_ref()
                    .and_then(|s| s.failed.get(k))
                    .is_some_and(|f| f.load(Ordering::Relaxed));
                // keepalived: a positive weight is added while the script
                // succeeds, a negative one while it fails, 0 = FAULT on failure.
                match (failed, w) {
                    (true, 0) => {
                        fault = true;
                        why.push(format!("track_script {} failed", t.script));
                    }
                    (true, w) if w < 0 => {
                        delta += w;
                        why.push(format!("track_script {} failed ({w})", t.script));
                    }
                    (false, w) if w > 0 => delta += w,
                    _ => {}
                }
            }
            if let Some(h) = &health {
                for t in &x.cfg.track_service {
                    let key = ServiceKey {
                        vip: u32::from(t.vip.ip()),
                        vport: t.vip.port(),
                        proto: t.proto.0,
                    };
                    let lost = h.sorry.contains(&key);
                    match (lost, t.weight) {
                        (true, 0) => {
                            fault = true;
                            why.push(format!("track_service {} lost quorum", t.vip.0));
                        }
                        (true, w) if w < 0 => {
                            delta += w;
                            why.push(format!("track_service {} lost quorum ({w})", t.vip.0));
                        }
                        (false, w) if w > 0 => delta += w,
                        _ => {}
                    }
                }
            }
            self.insts[i].tracking = why;
            let acts = self.insts[i].m.set_tracking(now, fault, delta);
            if !acts.is_empty() {
                self.apply(i, acts, now, false);
            }
        }
    }
}
