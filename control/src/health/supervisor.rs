//! The health supervisor: runs every configured checker, turns their
//! results into real-server and quorum transitions ([`Pool`]), runs the
//! `notify_*` / `quorum_*` scripts, and publishes each change as a new
//! snapshot through the [`Editor`] (the same compile-and-publish path as a
//! runtime edit).
//!
//! Layer: control, health. One thread with a tokio current-thread runtime,
//! started by the daemon after the workers; nothing here touches a worker.
//! A runtime edit (`fulcrumctl -a/-d/...`) is picked up within
//! [`RESYNC_EVERY`]: the pool is rebuilt from the new config, checkers keep
//! their states ([`Pool::from_config`]'s `prev`), and all checkers restart.
//!
//! Log lines (tracing, target `fulcrum::health`): every checker transition
//! with keepalived's wording (`HTTP_GET 10.1.0.12:80: status 503, expected
//! 200 (retry 1/1)`), every real-server and quorum transition, every
//! script that fails or times out.
#![forbid(unsafe_code)]

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tracing::{info, warn};

use super::pool::{Action, CheckerPlan, Pool};
use super::report::{CheckerReport, HealthReport, RealReport, ServiceReport};
use super::{
    parse_command, run_script, CheckKind, CheckerEvent, CheckerId, CheckerSpec, Checkers, DnsCheck,
    DnsType, FileCheck, HttpCheck, MiscCheck, Outcome, Probe, ScriptOutcome, TlsCheck, UdpCheck,
    UrlCheck,
};
use crate::config::{CheckerConfig, Config};
use crate::edit::Editor;

/// How often the supervisor looks for a runtime edit (and for `stop`).
pub const RESYNC_EVERY: Duration = Duration::from_millis(200);
/// Fewest probes allowed in flight at once.
pub const MIN_IN_FLIGHT: usize = 256;
/// Most probes in flight at once, however many checkers there are (the
/// rest wait their turn): the bound on sockets and probe load.
pub const MAX_IN_FLIGHT: usize = 4096;
/// Checker results taken together into one snapshot publish when they
/// arrive at once (a start-up with many servers down, a switch failing).
pub const MAX_BATCH: usize = 1024;

/// Probes in flight for `n` checkers: one each, within
/// [`MIN_IN_FLIGHT`]..=[`MAX_IN_FLIGHT`], so that checkers whose probes
/// all time out still keep their `delay_loop` (with 256 for 1000 checkers
/// timing out after 0.5 s, only about 512 probes a second could run).
pub fn in_flight(n: usize) -> usize {
    n.clamp(MIN_IN_FLIGHT, MAX_IN_FLIGHT)
}
/// Time a `notify_*` / `quorum_*` script may run before it is killed.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The report the admin socket reads, shared with the supervisor.
pub type SharedReport = Arc<Mutex<HealthReport>>;

/// The running supervisor; [`Supervisor::stop`] ends it.
pub struct Supervisor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts the supervisor thread over `editor`'s config; `report` is
    /// filled at once (every real server, checkers `pending`) and kept up to
    /// date.
    ///
    /// # Errors
    /// The thread or its runtime could not be created.
    pub fn start(editor: Arc<Editor>, report: SharedReport) -> std::io::Result<Supervisor> {
        let stop = Arc::new(AtomicBool::new(false));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("fulcrum-health".into())
                .spawn(move || rt.block_on(run(editor, report, stop)))?
        };
        Ok(Supervisor {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops every checker and the thread (within [`RESYNC_EVERY`]); running
    /// scripts are left to finish on their own timeout.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The probe of plan `p`, in the checker library's terms.
pub fn probe_of(p: &CheckerPlan) -> Probe {
    let prm = p.config.params();
    let http = |tls: Option<TlsCheck>| {
        CheckKind::Http(HttpCheck {
            urls: prm
                .url
                .iter()
                .map(|u| UrlCheck {
                    path: u.path.clone(),
                    status_code: u.status_code.as_ref().map(|s| s.0.clone()),
                    digest: u.digest.map(|d| d.0),
                })
                .collect(),
            virtualhost: p.virtualhost.clone(),
            tls,
        })
    };
    let kind = match &p.config {
        CheckerConfig::TCP_CHECK(_) => CheckKind::Tcp,
        CheckerConfig::HTTP_GET(_) => http(None),
        CheckerConfig::SSL_GET(_) => http(Some(TlsCheck {
            verify: prm.verify_cert,
            sni: if prm.enable_sni {
                p.virtualhost.clone()
            } else {
                None
            },
            ca_file: None,
        })),
        CheckerConfig::UDP_CHECK(_) => CheckKind::Udp(UdpCheck {
            payload: prm.payload.clone().unwrap_or_default().0,
            require_reply: prm.require_reply.clone().map(|b| b.0),
            min_reply_length: prm.min_reply_length.unwrap_or(0) as usize,
            max_reply_length: prm.max_reply_length.unwrap_or(255) as usize,
        }),
        CheckerConfig::PING_CHECK(_) => CheckKind::Ping,
        CheckerConfig::DNS_CHECK(_) => CheckKind::Dns(DnsCheck {
            name: prm.name.clone().unwrap_or_else(|| ".".into()),
            qtype: dns_type(prm.qtype.map_or(6, |t| t.0)),
            // keepalived: any NOERROR response with our id is up.
            require_answer: false,
        }),
        CheckerConfig::MISC_CHECK(_) => CheckKind::Misc(MiscCheck {
            argv: prm
                .misc_path
                .as_deref()
                .and_then(|c| parse_command(c).ok())
                .unwrap_or_default(),
            timeout: prm.misc_timeout.map_or(p.timing.delay_loop, |t| t.0),
            dynamic: prm.misc_dynamic,
        }),
        CheckerConfig::FILE_CHECK(_) => CheckKind::File(FileCheck {
            path: PathBuf::from(prm.file.clone().unwrap_or_default()),
            dynamic: prm.dynamic,
        }),
    };
    Probe {
        kind,
        target: SocketAddrV4::new(p.ip, p.port),
        bindto: prm.bindto.map(|b| b.0),
        connect_timeout: p.timing.connect_timeout,
    }
}

/// The library's record type for an RFC 1035 type number the config
/// accepted (`config::health::DNS_TYPES`); SOA for any other.
fn dns_type(n: u16) -> DnsType {
    match n {
        1 => DnsType::A,
        2 => DnsType::Ns,
        5 => DnsType::Cname,
        15 => DnsType::Mx,
        16 => DnsType::Txt,
        28 => DnsType::Aaaa,
        _ => DnsType::Soa,
    }
}

/// The checker specs of `plans`: id = the plan's index.
fn specs(plans: &[CheckerPlan]) -> Vec<CheckerSpec> {
    plans
        .iter()
        .map(|p| CheckerSpec {
            id: CheckerId(p.index as u32),
            label: p.label(),
            probe: probe_of(p),
            timing: super::Timing {
                delay_loop: p.timing.delay_loop,
                retry: p.timing.retry,
                delay_before_retry: p.timing.delay_before_retry,
                warmup: p.timing.warmup,
                alpha: p.timing.alpha,
            },
        })
        .collect()
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `TCP 10.0.0.100:80`, as ipvsadm names a service.
fn service_name(cfg: &Config, si: usize) -> String {
    cfg.services.get(si).map_or_else(String::new, |s| {
        format!("{} {}:{}", s.proto.0, s.vip.ip(), s.vip.port())
    })
}

/// The report of a freshly built pool: every real server of `cfg`.
fn initial_report(
    cfg: &Config,
    pool: &Pool,
    plans: &[CheckerPlan],
    old: &HealthReport,
) -> HealthReport {
    let mut rep = HealthReport {
        publishes: old.publishes,
        last_publish_us: old.last_publish_us,
        ..HealthReport::default()
    };
    for (ri, r) in pool.reals.iter().enumerate() {
        let service = service_name(cfg, r.service);
        let address = format!("{}:{}", std::net::Ipv4Addr::from(r.key.1), r.key.2);
        let prev = old
            .reals
            .iter()
            .find(|o| o.service == service && o.address == address);
        let checkers = r
            .checkers
            .iter()
            .filter_map(|&ci| plans.get(ci))
            .map(|p| {
                let target = match &p.config {
                    CheckerConfig::MISC_CHECK(c) => c.misc_path.clone().unwrap_or_default(),
                    CheckerConfig::FILE_CHECK(c) => c.file.clone().unwrap_or_default(),
                    _ => format!("{}:{}", p.ip, p.port),
                };
                let kept = prev
                    .and_then(|o| o.checkers.get(p.nth))
                    .filter(|c| c.kind == p.config.name() && c.target == target);
                kept.cloned().unwrap_or_else(|| CheckerReport {
                    kind: p.config.name().into(),
                    target,
                    state: if pool.checker_up(p.index) == Some(false) {
                        "down".into()
                    } else {
                        "pending".into()
                    },
                    ..CheckerReport::default()
                })
            })
            .collect();
        rep.reals.push(RealReport {
            service,
            address,
            state: if r.up { "up" } else { "down" }.into(),
            weight: pool.effective_weight(ri),
            inhibit: r.inhibit,
            transitions: prev.map_or(0, |o| o.transitions),
            last_transition_ms: prev.and_then(|o| o.last_transition_ms),
            last_reason: prev.and_then(|o| o.last_reason.clone()),
            checkers,
        });
    }
    for (si, s) in pool.services.iter().enumerate() {
        let sorry = cfg.services.get(si).and_then(|c| c.sorry_server);
        rep.services.push(ServiceReport {
            service: service_name(cfg, si),
            quorum: s.quorum,
            hysteresis: s.hysteresis,
            live_weight: pool.live_weight(si),
            quorum_ok: s.quorum_ok,
            sorry_server: sorry.map(|a| a.0.to_string()),
            sorry_active: !s.quorum_ok && sorry.is_some(),
        });
    }
    rep
}

/// Runs `cmd` (a config command line) with `extra` appended, in the
/// background, logging a failure.
fn spawn_script(what: &'static str, cmd: &str, subject: String) {
    let Ok(argv) = parse_command(cmd) else {
        warn!(target: "fulcrum::health", "{what} \"{cmd}\" cannot be parsed: not run");
        return;
    };
    tokio::spawn(async move {
        match run_script(&argv, SCRIPT_TIMEOUT).await {
            ScriptOutcome::Exited(0) => {
                info!(target: "fulcrum::health", "{what} for {subject}: {} exited 0", argv[0]);
            }
            other => {
                warn!(target: "fulcrum::health", "{what} for {subject}: {} failed: {other:?}", argv[0]);
            }
        }
    });
}

struct State {
    editor: Arc<Editor>,
    report: SharedReport,
    cfg: Config,
    pool: Pool,
    plans: Vec<CheckerPlan>,
}

impl State {
    fn lock_report(&self) -> std::sync::MutexGuard<'_, HealthReport> {
        self.report.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One checker result: report, transitions, scripts (the caller
    /// publishes, once per batch).
    fn on_event(&mut self, ev: CheckerEvent) {
        let ci = ev.id.0 as usize;
        let Some(plan) = self.plans.get(ci).cloned() else {
            return;
        };
        let weight = match &ev.result.outcome {
            Outcome::Up { weight } => *weight,
            Outcome::Down { .. } => None,
        };
        if let Some(t) = &ev.transition {
            if t.up {
                info!(target: "fulcrum::health", "{}", t.reason);
            } else {
                warn!(target: "fulcrum::health", "{}", t.reason);
            }
        }
        let actions = self.pool.on_checker(ci, ev.up, weight);
        {
            let now = unix_ms(ev.at);
            let mut rep = self.lock_report();
            if let Some(c) = rep
                .reals
                .get_mut(plan.real)
                .and_then(|r| r.checkers.get_mut(plan.nth))
            {
                c.state = if ev.up { "up" } else { "down" }.into();
                c.checks += 1;
                c.last_check_ms = Some(now);
                c.latency_us = Some(ev.result.latency.as_micros() as u64);
                c.last_result = Some(match &ev.result.outcome {
                    Outcome::Up { .. } => "ok".into(),
                    Outcome::Down { reason } => {
                        c.failures += 1;
                        reason.clone()
                    }
                });
                if ev.transition.is_some() {
                    c.last_transition_ms = Some(now);
                }
            }
            for a in &actions {
                self.apply_action(&mut rep, a, &ev, now);
            }
            if let Some(r) = rep.reals.get_mut(plan.real) {
                r.weight = self.pool.effective_weight(plan.real);
            }
        }
    }

    fn apply_action(&self, rep: &mut HealthReport, a: &Action, ev: &CheckerEvent, now: u64) {
        match *a {
            Action::RealUp { real } | Action::RealDown { real } => {
                let up = matches!(a, Action::RealUp { .. });
                let r = &self.pool.reals[real];
                let service = service_name(&self.cfg, r.service);
                let addr = format!("{}:{}", std::net::Ipv4Addr::from(r.key.1), r.key.2);
                let reason = ev
                    .transition
                    .as_ref()
                    .map_or_else(|| "checker result".to_string(), |t| t.reason.clone());
                if up {
                    info!(target: "fulcrum::health", "real server {addr} of {service} is up: back in rotation ({reason})");
                } else if r.inhibit {
                    warn!(target: "fulcrum::health", "real server {addr} of {service} is down: weight 0, inhibit_on_failure ({reason})");
                } else {
                    warn!(target: "fulcrum::health", "real server {addr} of {service} is down: removed from rotation ({reason})");
                }
                if let Some(rr) = rep.reals.get_mut(real) {
                    rr.state = if up { "up" } else { "down" }.into();
                    rr.transitions += 1;
                    rr.last_transition_ms = Some(now);
                    rr.last_reason = Some(reason);
                }
                let script = if up { &r.notify_up } else { &r.notify_down };
                if let Some(cmd) = script {
                    spawn_script(
                        if up { "notify_up" } else { "notify_down" },
                        cmd,
                        format!("{addr} of {service}"),
                    );
                }
            }
            Action::QuorumUp { service, weight } | Action::QuorumDown { service, weight } => {
                let up = matches!(a, Action::QuorumUp { .. });
                let s = &self.pool.services[service];
                let name = service_name(&self.cfg, service);
                if up {
                    info!(target: "fulcrum::health", "{name}: quorum regained (live weight {weight} >= {} + {})", s.quorum, s.hysteresis);
                } else {
                    warn!(target: "fulcrum::health", "{name}: quorum lost (live weight {weight} < {} - {}){}", s.quorum, s.hysteresis,
                        if s.has_sorry { ": the sorry server takes new connections" } else { "" });
                }
                if let Some(sr) = rep.services.get_mut(service) {
                    sr.quorum_ok = up;
                    sr.live_weight = weight;
                    sr.sorry_active = !up && sr.sorry_server.is_some();
                }
                let script = if up { &s.quorum_up } else { &s.quorum_down };
                if let Some(cmd) = script {
                    spawn_script(if up { "quorum_up" } else { "quorum_down" }, cmd, name);
                }
            }
        }
        for (si, sr) in rep.services.iter_mut().enumerate() {
            sr.live_weight = self.pool.live_weight(si);
        }
    }

    /// Publishes the pool's view if it changed.
    fn publish(&self, since: Instant) {
        match self.editor.set_health(self.pool.view()) {
            Ok(Some(generation)) => {
                let us = since.elapsed().as_micros() as u64;
                let mut rep = self.lock_report();
                rep.publishes += 1;
                rep.last_publish_us = us;
                info!(target: "fulcrum::health", generation, publish_us = us, "health change published");
            }
            Ok(None) => {}
            Err(e) => warn!(target: "fulcrum::health", "health change not published: {e}"),
        }
    }

    /// Rebuilds pool, report and checkers from the editor's current config.
    fn resync(&mut self, events: &tokio::sync::mpsc::UnboundedSender<CheckerEvent>) -> Checkers {
        self.cfg = self.editor.config();
        let (pool, plans) = Pool::from_config(&self.cfg, Some(&self.pool));
        self.pool = pool;
        self.plans = plans;
        {
            let old = self.lock_report().clone();
            *self.lock_report() = initial_report(&self.cfg, &self.pool, &self.plans, &old);
        }
        self.publish(Instant::now());
        Checkers::start(
            specs(&self.plans),
            events.clone(),
            in_flight(self.plans.len()),
        )
    }
}

async fn run(editor: Arc<Editor>, report: SharedReport, stop: Arc<AtomicBool>) {
    let (tx, mut rx): (_, UnboundedReceiver<CheckerEvent>) = unbounded_channel();
    let mut version = editor.config_version();
    let cfg = editor.config();
    let (pool, plans) = Pool::from_config(&cfg, None);
    let mut st = State {
        editor,
        report,
        cfg,
        pool,
        plans,
    };
    {
        let init = initial_report(&st.cfg, &st.pool, &st.plans, &HealthReport::default());
        *st.lock_report() = init;
    }
    info!(target: "fulcrum::health", checkers = st.plans.len(), "health checking started");
    let mut checkers = Checkers::start(specs(&st.plans), tx.clone(), in_flight(st.plans.len()));
    let mut tick = tokio::time::interval(RESYNC_EVERY);
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            Some(ev) = rx.recv() => {
                // Everything already queued goes into the same publish.
                let received = Instant::now();
                st.on_event(ev);
                for _ in 1..MAX_BATCH {
                    match rx.try_recv() {
                        Ok(ev) => st.on_event(ev),
                        Err(_) => break,
                    }
                }
                st.publish(received);
            }
            _ = tick.tick() => {
                let v = st.editor.config_version();
                if v != version {
                    version = v;
                    checkers.stop();
                    // Results of the old checkers still queued are stale.
                    while rx.try_recv().is_ok() {}
                    checkers = st.resync(&tx);
                    info!(target: "fulcrum::health", checkers = st.plans.len(), "config changed: checkers restarted");
                }
            }
        }
    }
    checkers.stop();
}
