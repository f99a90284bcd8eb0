//! The VRRP thread: runs every `vrrp_instance`'s state machine
//! ([`super::machine`]) against the wire, the clock and the tracked
//! objects, and turns its transitions into address ownership (a published
//! snapshot), gratuitous ARPs, notify scripts and the `fulcrumctl --vrrp`
//! report.
//!
//! Layer: control, daemon side, one thread (`fulcrum-vrrp`), never on a
//! worker. Each pass: fire expired timers, re-read tracking (port links,
//! `vrrp_script` results, the services' quorum) every 100 ms, wait on the
//! instances' sockets until the next deadline (at most 20 ms), feed every
//! advert to its instance, send the adverts and ARPs due, publish.
//!
//! Ownership follows RFC 5798 §6.4: on entering MASTER the instance's
//! addresses are published as held ([`Editor::set_vrrp`]) before its
//! gratuitous ARPs go out, so the first ARP request the GARPs provoke is
//! already answered; on leaving it they are published as standby at once.
//! GARPs follow keepalived: `garp_master_repeat` per address at once, the
//! same again after `garp_master_delay`, and `garp_master_refresh_repeat`
//! every `garp_master_refresh` while master.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dataplane::wire::vrrp::{self, Version};
use hwinit::packet_socket::PacketSocket;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tracing::{error, info, warn};

use super::group::{propagate, SyncGroup};
use super::io::{garp_frame, AdvertSocket, GROUP};
use super::machine::{Action, Machine, Params, State};
use super::report::{SharedVrrp, VrrpReport};
use super::scripts::{NotifyJob, Scripts};
use crate::config::{Config, InitialState, VrrpInstanceConfig};
use crate::edit::Editor;

mod publish;
mod track;

/// Longest wait for a packet in one pass, so the stop flag and tracking
/// are looked at often enough.
const MAX_WAIT_MS: u64 = 20;
/// How often tracking is re-read.
const TRACK_EVERY_MS: u64 = 100;

/// Why the VRRP thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum VrrpStartError {
    /// A socket could not be opened.
    #[error("vrrp_instance {instance:?}: {what} on {iface}: {source} (VRRP needs root or CAP_NET_RAW and the exception path's interfaces)")]
    Socket {
        /// The instance (or `-` for a port's ARP socket).
        instance: String,
        /// The kernel interface.
        iface: String,
        /// Which socket.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The script thread could not start.
    #[error("vrrp scripts thread: {0}")]
    Scripts(std::io::Error),
}

/// One instance at run time.
struct Inst {
    cfg: VrrpInstanceConfig,
    m: Machine,
    sock: AdvertSocket,
    port: usize,
    addrs: Vec<u32>,
    /// Unicast peers, host order; empty: multicast.
    peers: Vec<u32>,
    group: Option<usize>,
    /// GARP rounds due: (time ms, ARPs per address).
    garp_due: Vec<(u64, u32)>,
    garps_sent: u64,
    next_refresh: Option<u64>,
    last_split_log: u64,
    /// When a refused advert was last logged (ms), so a stream of them
    /// logs once a second, not once per advert.
    last_reject_log: Option<u64>,
    /// The other master heard while we stay master (split brain).
    other_master: Option<(u32, u8)>,
    tracking: Vec<String>,
    /// Whether this instance counts unknown VRIDs for its interface.
    counts_unknown: bool,
}

/// The running VRRP thread.
pub struct VrrpThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl VrrpThread {
    /// Opens every socket, then starts the thread. `kernel_ifaces[i]` is
    /// port `i`'s TAP interface, `macs[i]` its MAC; `links[i]` is kept
    /// current by the daemon's main loop (port `i`'s link is up).
    /// `None` when no `vrrp_instance` is configured.
    ///
    /// # Errors
    /// [`VrrpStartError`]: nothing was started.
    pub fn start(
        cfg: &Config,
        kernel_ifaces: &[String],
        macs: &[[u8; 6]],
        links: Arc<Vec<AtomicBool>>,
        editor: Arc<Editor>,
        report: SharedVrrp,
    ) -> Result<Option<VrrpThread>, VrrpStartError> {
        if cfg.vrrp_instance.is_empty() {
            return Ok(None);
        }
        let mut insts = Vec::new();
        let mut seen_ports = BTreeSet::new();
        for v in &cfg.vrrp_instance {
            let port = cfg
                .ports
                .iter()
                .position(|p| p.name == v.interface)
                .unwrap_or(0);
            let iface = kernel_ifaces.get(port).cloned().unwrap_or_default();
            let src = v
                .unicast_src_ip
                .map(|s| s.0)
                .or_else(|| cfg.ports[port].addrs.first().map(|a| a.addr))
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            let sock =
                AdvertSocket::open(&iface, src, !v.unicast_peer.is_empty()).map_err(|source| {
                    VrrpStartError::Socket {
                        instance: v.name.clone(),
                        iface: iface.clone(),
                        what: "advert socket",
                        source,
                    }
                })?;
            let auth_pass = v.authentication.as_ref().map(|a| {
                let mut b = [0u8; 8];
                for (d, s) in b.iter_mut().zip(a.auth_pass.bytes()) {
                    *d = s;
                }
                b
            });
            let params = Params {
                name: v.name.clone(),
                version: if v.version == 3 {
                    Version::V3
                } else {
                    Version::V2
                },
                vrid: v.virtual_router_id,
                priority: v.priority,
                advert_int_ms: v.advert_int_ms(),
                preempt: !v.nopreempt,
                preempt_delay_ms: (v.preempt_delay.0.as_millis()).min(u128::from(u32::MAX)) as u32,
                start_master: v.state == InitialState::Master,
                primary_ip: u32::from(src),
                addrs: v.virtual_ipaddress.iter().map(|a| u32::from(a.0)).collect(),
                auth_pass,
                split_brain_adverts: v.split_brain_adverts,
            };
            let group = cfg
                .vrrp_sync_group
                .iter()
                .position(|g| g.group.contains(&v.name));
            insts.push(Inst {
                addrs: params.addrs.clone(),
                m: Machine::new(params),
                cfg: v.clone(),
                sock,
                port,
                peers: v.unicast_peer.iter().map(|p| u32::from(p.0)).collect(),
                group,
                garp_due: Vec::new(),
                garps_sent: 0,
                next_refresh: None,
                last_split_log: 0,
                last_reject_log: None,
                other_master: None,
                tracking: Vec::new(),
                counts_unknown: seen_ports.insert(port),
            });
        }
        let mut arp: Vec<Option<PacketSocket>> = (0..cfg.ports.len()).map(|_| None).collect();
        for &p in &seen_ports {
            let iface = kernel_ifaces.get(p).cloned().unwrap_or_default();
            arp[p] = Some(
                PacketSocket::open(&iface).map_err(|source| VrrpStartError::Socket {
                    instance: "-".into(),
                    iface: iface.clone(),
                    what: "packet socket for gratuitous ARP",
                    source,
                })?,
            );
        }
        let scripts = Scripts::start(&cfg.vrrp_script).map_err(VrrpStartError::Scripts)?;
        let groups: Vec<SyncGroup> = cfg
            .vrrp_sync_group
            .iter()
            .map(|g| SyncGroup {
                name: g.name.clone(),
                members: g
                    .group
                    .iter()
                    .filter_map(|n| cfg.vrrp_instance.iter().position(|v| &v.name == n))
                    .collect(),
            })
            .collect();
        let mut run = Runner {
            insts,
            arp,
            macs: macs.to_vec(),
            links,
            editor,
            report,
            scripts: Some(scripts),
            groups,
            cfg: cfg.clone(),
            start: Instant::now(),
            dropped: Default::default(),
            last_track: None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("fulcrum-vrrp".into())
            .spawn(move || run.run(&stop2))
            .map_err(VrrpStartError::Scripts)?;
        Ok(Some(VrrpThread {
            stop,
            thread: Some(thread),
        }))
    }

    /// Stops the thread: every master sends a priority-0 advert (RFC 5798
    /// §6.4.3, so a backup takes over after its skew time instead of the
    /// whole master-down interval), then the thread is joined.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Runner {
    insts: Vec<Inst>,
    arp: Vec<Option<PacketSocket>>,
    macs: Vec<[u8; 6]>,
    links: Arc<Vec<AtomicBool>>,
    editor: Arc<Editor>,
    report: SharedVrrp,
    scripts: Option<Scripts>,
    groups: Vec<SyncGroup>,
    cfg: Config,
    start: Instant,
    dropped: std::collections::BTreeMap<String, u64>,
    last_track: Option<u64>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Runner {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn run(&mut self, stop: &AtomicBool) {
        let now = self.now();
        self.track(now);
        for i in 0..self.insts.len() {
            let acts = self.insts[i].m.start(now);
            self.apply(i, acts, now, false);
        }
        self.publish();
        let mut buf = vec![0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let now = self.now();
            if self.last_track.is_none_or(|t| now >= t + TRACK_EVERY_MS) {
                self.track(now);
            }
            for i in 0..self.insts.len() {
                if self.insts[i].m.next_deadline().is_some_and(|d| d <= now) {
                    let acts = self.insts[i].m.on_timer(now);
                    self.apply(i, acts, now, false);
                }
            }
            self.garps(now);
            self.split_logs(now);
            self.publish();
            let wait = self
                .insts
                .iter()
                .filter_map(|x| x.m.next_deadline())
                .chain(
                    self.insts
                        .iter()
                        .flat_map(|x| x.garp_due.iter().map(|g| g.0)),
                )
                .min()
                .map_or(MAX_WAIT_MS, |d| d.saturating_sub(self.now()))
                .min(MAX_WAIT_MS);
            let ready: Vec<bool> = {
                let mut fds: Vec<PollFd<'_>> = self
                    .insts
                    .iter()
                    .map(|x| PollFd::new(x.sock.fd(), PollFlags::POLLIN))
                    .collect();
                let t = PollTimeout::try_from(wait as i32).unwrap_or(PollTimeout::ZERO);
                match poll(&mut fds, t) {
                    Ok(n) if n > 0 => fds
                        .iter()
                        .map(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                        .collect(),
                    _ => vec![false; self.insts.len()],
                }
            };
            for (i, r) in ready.into_iter().enumerate() {
                if r {
                    self.read(i, &mut buf);
                }
            }
        }
        let now = self.now();
        for i in 0..self.insts.len() {
            let acts = self.insts[i].m.shutdown(now);
            self.apply(i, acts, now, true);
        }
        self.publish();
        if let Some(s) = self.scripts.take() {
            s.stop();
        }
    }

    /// Every packet waiting on instance `i`'s socket.
    fn read(&mut self, i: usize, buf: &mut [u8]) {
        for _ in 0..64 {
            let pkt = match self.insts[i].sock.recv(buf) {
                Ok(Some(p)) => p,
                Ok(None) => return,
                Err(e) => {
                    warn!(instance = %self.insts[i].cfg.name, "VRRP socket read: {e}");
                    return;
                }
            };
            let (src, _dst, adv) = match vrrp::parse_ip(pkt) {
                Ok(x) => x,
                Err(e) => {
                    if self.insts[i].counts_unknown {
                        *self.dropped.entry(e.name().to_string()).or_default() += 1;
                    }
                    continue;
                }
            };
            let port = self.insts[i].port;
            if adv.vrid != self.insts[i].cfg.virtual_router_id {
                let known = self
                    .insts
                    .iter()
                    .any(|x| x.port == port && x.cfg.virtual_router_id == adv.vrid);
                if !known && self.insts[i].counts_unknown {
                    *self.dropped.entry("unknown_vrid".into()).or_default() += 1;
                }
                continue;
            }
            let now = self.now();
            let was_master = self.insts[i].m.state() == State::Master;
            match self.insts[i].m.on_advert(now, src, &adv) {
                Ok(acts) => {
                    if was_master && adv.priority != 0 {
                        self.insts[i].other_master = Some((src, adv.priority));
                    }
                    self.apply(i, acts, now, false);
                }
                Err(r) => {
                    // Counted by the machine (Stats.rejected); a mismatch
                    // keepalived logs, so do we, at most once a second.
                    let x = &mut self.insts[i];
                    if x.last_reject_log.is_none_or(|t| now >= t + 1000) {
                        x.last_reject_log = Some(now);
                        warn!(instance = %self.insts[i].cfg.name, from = %Ipv4Addr::from(src), "VRRP advert refused: {}", r.name());
                    }
                }
            }
        }
    }

    /// Carries out `acts` of instance `i`; `forced` transitions (sync
    /// group orders, shutdown) do not propagate again.
    fn apply(&mut self, i: usize, acts: Vec<Action>, now: u64, forced: bool) {
        let mut work: Vec<(usize, Vec<Action>, bool)> = vec![(i, acts, forced)];
        while let Some((i, acts, forced)) = work.pop() {
            for a in acts {
                match a {
                    Action::SendAdvert { priority } => self.send_advert(i, priority),
                    Action::BecomeMaster | Action::BecomeBackup | Action::BecomeFault => {
                        let st = self.insts[i].m.state();
                        self.transitioned(i, st, now);
                        if !forced {
                            let states: Vec<State> =
                                self.insts.iter().map(|x| x.m.state()).collect();
                            for (j, to) in propagate(&self.groups, &states, i, st) {
                                let more = self.insts[j].m.force(now, to, "sync group");
                                work.push((j, more, true));
                            }
                        }
                    }
                    Action::Stopped => {
                        let x = &self.insts[i];
                        info!(instance = %x.cfg.name, "VRRP_Instance({}) stopped", x.cfg.name);
                        if let Some(c) = x.cfg.notify.clone() {
                            let args = vec![
                                "INSTANCE".into(),
                                x.cfg.name.clone(),
                                "STOP".into(),
                                "0".into(),
                            ];
                            self.notify(NotifyJob { command: c, args });
                        }
                    }
                    Action::SplitBrain(on) => {
                        let x = &mut self.insts[i];
                        if on {
                            let (who, prio) = x.other_master.unwrap_or((0, 0));
                            error!(
                                instance = %x.cfg.name,
                                other = %Ipv4Addr::from(who),
                                other_priority = prio,
                                "VRRP split brain: another master keeps advertising while this director stays master (adverts lost one way?)"
                            );
                            x.last_split_log = now;
                        } else {
                            info!(instance = %x.cfg.name, "VRRP split brain cleared");
                            x.other_master = None;
                        }
                    }
                }
            }
        }
    }

    /// After instance `i` entered `st`: GARP schedule, notify scripts, log.
    fn transitioned(&mut self, i: usize, st: State, now: u64) {
        // Ownership first: the published view follows every state.
        self.publish();
        let x = &mut self.insts[i];
        let prio = x.m.effective_priority();
        info!(instance = %x.cfg.name, priority = prio, "VRRP_Instance({}) Entering {st} STATE", x.cfg.name);
        if st == State::Master {
            x.garp_due.clear();
            x.garp_due.push((now, x.cfg.garp_master_repeat));
            let delay = x.cfg.garp_master_delay.0.as_millis() as u64;
            if delay > 0 {
                x.garp_due.push((now + delay, x.cfg.garp_master_repeat));
            }
            let refresh = x.cfg.garp_master_refresh.0.as_millis() as u64;
            x.next_refresh = (refresh > 0).then_some(now + refresh);
        } else {
            x.garp_due.clear();
            x.next_refresh = None;
            x.other_master = None;
        }
        let word = st.to_string();
        let specific = match st {
            State::Master => x.cfg.notify_master.clone(),
            State::Backup => x.cfg.notify_backup.clone(),
            State::Fault => x.cfg.notify_fault.clone(),
            State::Init => None,
        };
        let generic = x.cfg.notify.clone();
        let name = x.cfg.name.clone();
        if let Some(c) = specific {
            self.notify(NotifyJob {
                command: c,
                args: Vec::new(),
            });
        }
        if let Some(c) = generic {
            self.notify(NotifyJob {
                command: c,
                args: vec!["INSTANCE".into(), name, word.clone(), prio.to_string()],
            });
        }
        // A group's own scripts run when its last member arrives.
        if let Some(g) = self.insts[i].group {
            let all = self.groups[g]
                .members
                .iter()
                .all(|&j| self.insts[j].m.state() == st);
            if all {
                let gc = &self.cfg.vrrp_sync_group[g];
                let specific = match st {
                    State::Master => gc.notify_master.clone(),
                    State::Backup => gc.notify_backup.clone(),
                    State::Fault => gc.notify_fault.clone(),
                    State::Init => None,
                };
                if let Some(c) = specific {
                    self.notify(NotifyJob {
                        command: c,
                        args: Vec::new(),
                    });
                }
                if let Some(c) = gc.notify.clone() {
                    self.notify(NotifyJob {
                        command: c,
                        args: vec!["GROUP".into(), gc.name.clone(), word],
                    });
                }
            }
        }
    }

    fn notify(&self, job: NotifyJob) {
        if let Some(s) = &self.scripts {
            s.notify(job);
        }
    }

    fn send_advert(&mut self, i: usize, priority: u8) {
        let x = &self.insts[i];
        let adv = x.m.advert(priority);
        let mut msg = [0u8; 128];
        let dsts: Vec<u32> = if x.peers.is_empty() {
            vec![GROUP]
        } else {
            x.peers.clone()
        };
        for d in dsts {
            match vrrp::build(&adv, x.sock.src, d, &mut msg) {
                Ok(n) => {
                    if let Err(e) = x.sock.send(&msg[..n], d) {
                        warn!(instance = %x.cfg.name, to = %Ipv4Addr::from(d), "VRRP advert not sent: {e}");
                    }
                }
                Err(e) => warn!(instance = %x.cfg.name, "VRRP advert not built: {}", e.name()),
            }
        }
    }

    /// Sends the gratuitous ARPs that are due.
    fn garps(&mut self, now: u64) {
        for x in &mut self.insts {
            if x.m.state() != State::Master {
                continue;
            }
            if let Some(r) = x.next_refresh.filter(|&r| r <= now) {
                x.garp_due.push((now, x.cfg.garp_master_refresh_repeat));
                let every = x.cfg.garp_master_refresh.0.as_millis() as u64;
                x.next_refresh = Some(r + every.max(1));
            }
            let due: u32 = x.garp_due.iter().filter(|g| g.0 <= now).map(|g| g.1).sum();
            x.garp_due.retain(|g| g.0 > now);
            if due == 0 {
                continue;
            }
            let (Some(Some(sock)), Some(&mac)) = (self.arp.get(x.port), self.macs.get(x.port))
            else {
                continue;
            };
            for _ in 0..due {
                for &a in &x.addrs {
                    match sock.send(&garp_frame(mac, a)) {
                        Ok(()) => x.garps_sent += 1,
                        Err(e) => warn!(instance = %x.cfg.name, "gratuitous ARP not sent: {e}"),
                    }
                }
            }
        }
    }

    /// While split brain lasts: one error line per advert interval.
    fn split_logs(&mut self, now: u64) {
        for x in &mut self.insts {
            if x.m.split_brain() && now >= x.last_split_log + u64::from(x.cfg.advert_int_ms()) {
                let (who, prio) = x.other_master.unwrap_or((0, 0));
                error!(instance = %x.cfg.name, other = %Ipv4Addr::from(who), other_priority = prio, "VRRP split brain persists: two masters on vrid {}", x.cfg.virtual_router_id);
                x.last_split_log = now;
            }
        }
    }
}

/// An empty report for the daemon to share between the VRRP thread and
/// the `vrrp` admin command.
pub fn new_report() -> SharedVrrp {
    Arc::new(Mutex::new(VrrpReport::default()))
}
