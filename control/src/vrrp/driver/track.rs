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
                let what = || format!("track_script {} failed", t.script);
                weigh(failed, w, what, &mut fault, &mut delta, &mut why);
            }
            if let Some(h) = &health {
                for t in &x.cfg.track_service {
                    let key = ServiceKey {
                        vip: u32::from(t.vip.ip()),
                        vport: t.vip.port(),
                        proto: t.proto.0,
                    };
                    let lost = h.sorry.contains(&key);
                    let what = || format!("track_service {} lost quorum", t.vip.0);
                    weigh(lost, t.weight, what, &mut fault, &mut delta, &mut why);
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

/// keepalived's weight rule for one tracked object (`track_script`,
/// `track_service`): a positive weight `w` is added to `delta` while the
/// object is fine, a negative one while it `failed`, and weight 0 sets
/// `fault` while it failed. A failure that counts is explained in `why`
/// as `what()`, with the weight when it lowers the priority.
fn weigh(
    failed: bool,
    w: i32,
    what: impl FnOnce() -> String,
    fault: &mut bool,
    delta: &mut i32,
    why: &mut Vec<String>,
) {
    match (failed, w) {
        (true, 0) => {
            *fault = true;
            why.push(what());
        }
        (true, w) if w < 0 => {
            *delta += w;
            why.push(format!("{} ({w})", what()));
        }
        (false, w) if w > 0 => *delta += w,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::weigh;

    /// (failed, weight) -> (fault, delta, explanation).
    fn run(failed: bool, w: i32) -> (bool, i32, Vec<String>) {
        let (mut fault, mut delta, mut why) = (false, 0, Vec::new());
        weigh(
            failed,
            w,
            || "x failed".to_string(),
            &mut fault,
            &mut delta,
            &mut why,
        );
        (fault, delta, why)
    }

    #[test]
    fn test_weigh_follows_keepalived() {
        assert_eq!(run(true, 0), (true, 0, vec!["x failed".to_string()]));
        assert_eq!(run(false, 0), (false, 0, vec![]));
        assert_eq!(
            run(true, -30),
            (false, -30, vec!["x failed (-30)".to_string()])
        );
        assert_eq!(run(false, -30), (false, 0, vec![]));
        assert_eq!(run(false, 20), (false, 20, vec![]));
        assert_eq!(run(true, 20), (false, 0, vec![]));
    }
}
