//! The health of every virtual service's pool: checker results → real
//! server up/down → quorum and the sorry server → the [`HealthView`] the
//! snapshot is compiled with.
//!
//! Layer: control, health. Pure: no clock, no I/O, no tasks; the
//! supervisor feeds it checker results and carries out the [`Action`]s it
//! returns (log lines, scripts, a new snapshot).
//!
//! Mirrors keepalived's check daemon (`check/ipwrapper.c`): a real server
//! is alive while every one of its checkers is up (one without checkers is
//! always alive); a service's quorum state follows the total weight of its
//! live real servers: it is lost when that falls below
//! `quorum - hysteresis` (run `quorum_down`, bring in the sorry server) and
//! regained when it reaches `quorum + hysteresis` (run `quorum_up`, the
//! sorry server leaves). No script runs at start-up: the initial states
//! are computed, not transitions.
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;

use dataplane::snapshot::ServiceKey;

use crate::compile::{HealthView, RealKey};
use crate::config::{CheckerConfig, Config, Timing};

/// One checker of the pool, as the supervisor starts it.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckerPlan {
    /// Dense index of the checker in the pool (0..).
    pub index: usize,
    /// Index of its real server in [`Pool::reals`].
    pub real: usize,
    /// Which checker of that real server (config order).
    pub nth: usize,
    /// The checker as configured.
    pub config: CheckerConfig,
    /// The address probed: `connect_ip`, else the RIP.
    pub ip: Ipv4Addr,
    /// The port probed: `connect_port`, else the real server's port.
    pub port: u16,
    /// Its timing after inheritance.
    pub timing: Timing,
    /// `Host:` for HTTP_GET/SSL_GET: the checker's, else the service's
    /// `virtualhost`.
    pub virtualhost: Option<String>,
}

impl CheckerPlan {
    /// `TYPE ip:port`, the prefix of every log line of this checker (as
    /// keepalived names a checker in its logs).
    pub fn label(&self) -> String {
        format!("{} {}:{}", self.config.name(), self.ip, self.port)
    }
}

/// One real server under health checking.
#[derive(Clone, Debug, PartialEq)]
pub struct RealHealth {
    /// (service, RIP, rport).
    pub key: RealKey,
    /// Index of its service in [`Pool::services`].
    pub service: usize,
    /// The configured weight.
    pub weight: u32,
    /// `inhibit_on_failure` in effect.
    pub inhibit: bool,
    /// Its checkers' indices.
    pub checkers: Vec<usize>,
    /// `notify_up` command, as configured.
    pub notify_up: Option<String>,
    /// `notify_down` command, as configured.
    pub notify_down: Option<String>,
    /// Alive (every checker up).
    pub up: bool,
}

/// One virtual service's quorum.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceHealth {
    /// VIP:vport/proto.
    pub key: ServiceKey,
    /// `quorum`.
    pub quorum: u32,
    /// `hysteresis`.
    pub hysteresis: u32,
    /// `quorum_up` command.
    pub quorum_up: Option<String>,
    /// `quorum_down` command.
    pub quorum_down: Option<String>,
    /// Whether a sorry server is configured.
    pub has_sorry: bool,
    /// Quorum held.
    pub quorum_ok: bool,
}

/// A checker's last state as the pool knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CheckerState {
    up: bool,
    /// `misc_dynamic` / FILE_CHECK weight of the last success.
    weight: Option<u32>,
}

/// What the supervisor must do after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Real server `real` came up (log, count, run `notify_up`).
    RealUp {
        /// Index into [`Pool::reals`].
        real: usize,
    },
    /// Real server `real` went down (log, count, run `notify_down`).
    RealDown {
        /// Index into [`Pool::reals`].
        real: usize,
    },
    /// Service `service` regained quorum with live weight `weight`
    /// (run `quorum_up`; the sorry server leaves).
    QuorumUp {
        /// Index into [`Pool::services`].
        service: usize,
        /// Total weight of its live real servers.
        weight: u64,
    },
    /// Service `service` lost quorum (run `quorum_down`; the sorry server
    /// takes new connections).
    QuorumDown {
        /// Index into [`Pool::services`].
        service: usize,
        /// Total weight of its live real servers.
        weight: u64,
    },
}

/// Every service's pool under health checking.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    /// Services, config order.
    pub services: Vec<ServiceHealth>,
    /// Real servers, config order (service by service).
    pub reals: Vec<RealHealth>,
    checkers: Vec<CheckerState>,
    /// Each checker's config, by index (to match checkers across edits).
    configs: Vec<CheckerConfig>,
}

impl Pool {
    /// The pool of `cfg` and the checkers to start, with every checker in
    /// its initial state (down with `alpha`, up otherwise) and the quorum
    /// states that follow; `prev` (the pool being replaced after a runtime
    /// edit) hands each checker that still exists, by (real server, nth
    /// checker, same config), its last state, so an edit does not flap
    /// servers.
    pub fn from_config(cfg: &Config, prev: Option<&Pool>) -> (Pool, Vec<CheckerPlan>) {
        let mut pool = Pool::default();
        let mut plans = Vec::new();
        for s in &cfg.services {
            let key = ServiceKey {
                vip: u32::from(s.vip.ip()),
                vport: s.vip.port(),
                proto: s.proto.0,
            };
            let si = pool.services.len();
            for r in &s.real_servers {
                let ri = pool.reals.len();
                let rkey = (key, u32::from(r.addr.ip()), r.addr.port());
                let mut ids = Vec::with_capacity(r.checkers.len());
                for (nth, c) in r.checkers.iter().enumerate() {
                    let p = c.params();
                    let timing = r.timing(s, c);
                    let plan = CheckerPlan {
                        index: pool.checkers.len(),
                        real: ri,
                        nth,
                        config: c.clone(),
                        ip: p.connect_ip.map_or(r.addr.ip(), |a| a.0),
                        port: p.connect_port.unwrap_or(r.addr.port()),
                        timing,
                        virtualhost: p.virtualhost.clone().or_else(|| s.virtualhost.clone()),
                    };
                    let state = prev
                        .and_then(|old| old.checker_state(&rkey, nth, c))
                        .unwrap_or(CheckerState {
                            up: !timing.alpha,
                            weight: None,
                        });
                    ids.push(plan.index);
                    pool.checkers.push(state);
                    pool.configs.push(c.clone());
                    plans.push(plan);
                }
                pool.reals.push(RealHealth {
                    key: rkey,
                    service: si,
                    weight: r.weight.0,
                    inhibit: r.inhibit(s),
                    checkers: ids,
                    notify_up: r.notify_up.clone(),
                    notify_down: r.notify_down.clone(),
                    up: true,
                });
                let up = pool.real_alive(ri);
                pool.reals[ri].up = up;
            }
            pool.services.push(ServiceHealth {
                key,
                quorum: s.quorum,
                hysteresis: s.hysteresis,
                quorum_up: s.quorum_up.clone(),
                quorum_down: s.quorum_down.clone(),
                has_sorry: s.sorry_server.is_some(),
                quorum_ok: true,
            });
            let w = pool.live_weight(si);
            let prev_ok = prev
                .and_then(|old| old.services.iter().find(|o| o.key == key))
                .map(|o| o.quorum_ok);
            // From scratch: quorum holds when the live weight reaches it.
            // After an edit: keep the old state unless the new weights
            // cross a threshold.
            pool.services[si].quorum_ok = match prev_ok {
                Some(true) => w >= u64::from(s.quorum.saturating_sub(s.hysteresis)),
                Some(false) => w >= u64::from(s.quorum) + u64::from(s.hysteresis),
                None => w >= u64::from(s.quorum),
            };
        }
        (pool, plans)
    }

    /// The last state of checker `nth` of real server `rkey`, when that
    /// checker is configured the same.
    fn checker_state(&self, rkey: &RealKey, nth: usize, c: &CheckerConfig) -> Option<CheckerState> {
        let r = self.reals.iter().find(|r| &r.key == rkey)?;
        let &i = r.checkers.get(nth)?;
        if self.configs.get(i) != Some(c) {
            return None;
        }
        self.checkers.get(i).copied()
    }

    /// Every checker up.
    fn real_alive(&self, ri: usize) -> bool {
        self.reals[ri]
            .checkers
            .iter()
            .all(|&c| self.checkers.get(c).is_some_and(|s| s.up))
    }

    /// The weight real server `ri` counts with while alive: the last
    /// dynamic weight of one of its checkers, else the configured one.
    pub fn effective_weight(&self, ri: usize) -> u32 {
        let r = &self.reals[ri];
        r.checkers
            .iter()
            .find_map(|&c| self.checkers.get(c).and_then(|s| s.weight))
            .unwrap_or(r.weight)
    }

    /// Total weight of the live real servers of service `si`.
    pub fn live_weight(&self, si: usize) -> u64 {
        (0..self.reals.len())
            .filter(|&ri| self.reals[ri].service == si && self.reals[ri].up)
            .map(|ri| u64::from(self.effective_weight(ri)))
            .sum()
    }

    /// Whether checker `index` is up, as last reported.
    pub fn checker_up(&self, index: usize) -> Option<bool> {
        self.checkers.get(index).map(|s| s.up)
    }

    /// Records checker `index`'s state (`weight`: a dynamic weight that
    /// came with a success) and returns what changed, in order: the real
    /// server's transition, then its service's quorum transition. An
    /// unknown index changes nothing.
    pub fn on_checker(&mut self, index: usize, up: bool, weight: Option<u32>) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(st) = self.checkers.get_mut(index) else {
            return out;
        };
        let old_weight = st.weight;
        *st = CheckerState {
            up,
            weight: if up { weight } else { st.weight },
        };
        let Some(ri) = self.reals.iter().position(|r| r.checkers.contains(&index)) else {
            return out;
        };
        let alive = self.real_alive(ri);
        if alive != self.reals[ri].up {
            self.reals[ri].up = alive;
            out.push(if alive {
                Action::RealUp { real: ri }
            } else {
                Action::RealDown { real: ri }
            });
        } else if old_weight == weight || !up {
            return out;
        }
        let si = self.reals[ri].service;
        let w = self.live_weight(si);
        let s = &mut self.services[si];
        if s.quorum_ok && w < u64::from(s.quorum.saturating_sub(s.hysteresis)) {
            s.quorum_ok = false;
            out.push(Action::QuorumDown {
                service: si,
                weight: w,
            });
        } else if !s.quorum_ok && w >= u64::from(s.quorum) + u64::from(s.hysteresis) {
            s.quorum_ok = true;
            out.push(Action::QuorumUp {
                service: si,
                weight: w,
            });
        }
        out
    }

    /// The view [`crate::compile::compile_with_health`] applies: dead real
    /// servers, dynamic weights of live ones, services without quorum.
    pub fn view(&self) -> HealthView {
        let mut v = HealthView::default();
        for (ri, r) in self.reals.iter().enumerate() {
            if !r.up {
                v.down.insert(r.key);
            } else {
                let w = self.effective_weight(ri);
                if w != r.weight {
                    v.weights.insert(r.key, w);
                }
            }
        }
        for s in &self.services {
            if !s.quorum_ok {
                v.sorry.insert(s.key);
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn cfg(extra_svc: &str, rs: &str) -> Config {
        let src = format!(
            r#"(eal_args: [], workers: [1],
            ports: [(name: "o", device: "d0", addrs: ["10.0.0.1/24"]),
                    (name: "i", device: "d1", addrs: ["10.1.0.1/24"])],
            services: [(vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
                {extra_svc}
                real_servers: [{rs}])])"#
        );
        parse(&src, "t.ron").expect("valid")
    }

    const THREE: &str = r#"
        (addr: "10.1.0.11:80", weight: 2, checkers: [TCP_CHECK()]),
        (addr: "10.1.0.12:80", weight: 1, checkers: [TCP_CHECK(), TCP_CHECK(connect_port: 81)]),
        (addr: "10.1.0.13:80", weight: 1),
    "#;

    #[test]
    fn test_pool_real_needs_every_checker() {
        let (mut p, plans) = Pool::from_config(&cfg("", THREE), None);
        assert_eq!(plans.len(), 3);
        assert_eq!(plans[2].port, 81);
        assert_eq!(plans[0].label(), "TCP_CHECK 10.1.0.11:80");
        assert!(p.reals.iter().all(|r| r.up));
        // One of rs2's two checkers fails: rs2 is down.
        assert_eq!(
            p.on_checker(2, false, None),
            vec![Action::RealDown { real: 1 }]
        );
        // Its other checker failing too changes nothing more.
        assert_eq!(p.on_checker(1, false, None), vec![]);
        assert_eq!(p.on_checker(1, true, None), vec![]);
        assert_eq!(
            p.on_checker(2, true, None),
            vec![Action::RealUp { real: 1 }]
        );
        // rs3 has no checker: counted alive always.
        assert_eq!(p.live_weight(0), 4);
    }

    #[test]
    fn test_pool_quorum_and_sorry_with_hysteresis() {
        let c = cfg(
            r#"quorum: 3, hysteresis: 1, sorry_server: "10.1.0.99:80","#,
            THREE,
        );
        let (mut p, _) = Pool::from_config(&c, None);
        assert!(p.services[0].quorum_ok, "weight 4 >= 3");
        // rs1 (weight 2) down: live 2, not below 3-1=2: quorum holds.
        assert_eq!(
            p.on_checker(0, false, None),
            vec![Action::RealDown { real: 0 }]
        );
        assert!(p.services[0].quorum_ok);
        assert!(p.view().sorry.is_empty());
        // rs2 down too: live 1 < 2: lost.
        assert_eq!(
            p.on_checker(1, false, None),
            vec![
                Action::RealDown { real: 1 },
                Action::QuorumDown {
                    service: 0,
                    weight: 1
                }
            ]
        );
        let v = p.view();
        assert!(v.sorry.contains(&p.services[0].key));
        assert_eq!(v.down.len(), 2);
        // rs2 back: live 2 < 3+1: still lost (hysteresis).
        assert_eq!(
            p.on_checker(1, true, None),
            vec![Action::RealUp { real: 1 }]
        );
        assert!(!p.services[0].quorum_ok);
        // rs1 back: live 4 >= 4: regained.
        assert_eq!(
            p.on_checker(0, true, None),
            vec![
                Action::RealUp { real: 0 },
                Action::QuorumUp {
                    service: 0,
                    weight: 4
                }
            ]
        );
        assert!(p.view().sorry.is_empty() && p.view().down.is_empty());
    }

    #[test]
    fn test_pool_alpha_starts_down_and_dynamic_weight() {
        let c = cfg(
            "alpha: true,",
            r#"(addr: "10.1.0.11:80", weight: 5, checkers: [MISC_CHECK(misc_path: "/bin/true", misc_dynamic: true)])"#,
        );
        let (mut p, plans) = Pool::from_config(&c, None);
        assert!(plans[0].timing.alpha);
        assert!(!p.reals[0].up);
        assert!(!p.services[0].quorum_ok, "nothing alive at start");
        assert_eq!(p.view().down.len(), 1);
        let acts = p.on_checker(0, true, Some(9));
        assert_eq!(
            acts,
            vec![
                Action::RealUp { real: 0 },
                Action::QuorumUp {
                    service: 0,
                    weight: 9
                }
            ]
        );
        let key = p.reals[0].key;
        assert_eq!(p.view().weights.get(&key), Some(&9));
        // A new dynamic weight alone is not a transition but changes the view.
        assert_eq!(p.on_checker(0, true, Some(3)), vec![]);
        assert_eq!(p.view().weights.get(&key), Some(&3));
        // Back to the configured weight: no entry.
        p.on_checker(0, true, Some(5));
        assert!(p.view().weights.is_empty());
    }

    #[test]
    fn test_pool_edit_keeps_states() {
        let c = cfg("", THREE);
        let (mut p, _) = Pool::from_config(&c, None);
        p.on_checker(0, false, None);
        let (q, _) = Pool::from_config(&c, Some(&p));
        assert!(!q.reals[0].up, "rs1 stays down across the rebuild");
        assert!(q.reals[1].up);
        // A checker whose config changed starts afresh (up: no alpha).
        let mut c2 = c.clone();
        c2.services[0].real_servers[0].checkers[0] =
            crate::config::CheckerConfig::TCP_CHECK(crate::config::CheckerParams {
                connect_port: Some(81),
                ..Default::default()
            });
        let (q2, _) = Pool::from_config(&c2, Some(&p));
        assert!(q2.reals[0].up);
    }
}
