//! Runtime edits of the virtual services: the admin socket's write commands
//! (`fulcrumctl -A/-E/-D/-a/-e/-d/-C`, ipvsadm's command set).
//!
//! Layer: control, slow path only. An edit is applied to a *clone* of the
//! current [`Config`], checked by the same [`validate()`] the file loader runs,
//! compiled with the previous snapshot (so real-server ids stay put, see
//! [`crate::compile::compile`]) and published through the workers' `ArcSwap`
//! with generation + 1; only then does the edited config become current.
//! Any failure returns an [`EditError`] and leaves config, snapshot and
//! generation exactly as they were: nothing half-applies.
//!
//! Edits are runtime only, like `ipvsadm` next to a keepalived config: the
//! config file is never written, and a restart or a reload ([`reload`],
//! `SIGHUP`) starts from the file again, dropping them.
//!
//! Requests are JSON objects (one line on the admin socket):
//! - `{"cmd":"add_service","service":{...}}` and `edit_service`: `service`
//!   has the config file's service shape (field names as in the RON file,
//!   unknown fields refused). `edit_service` replaces the service's settings;
//!   when `real_servers` is absent it keeps the service's real servers, and
//!   when `forwarding` is absent it keeps the service's default forwarding
//!   method.
//! - `{"cmd":"delete_service","vip":"10.0.0.100:80","proto":"tcp"}`.
//! - `{"cmd":"add_real"|"edit_real"|"delete_real","vip":...,"proto":...,
//!   "real":{"addr":"10.1.0.11:80","weight":1,"forwarding":"nat"}}`:
//!   `real` has the config file's real-server shape (`delete_real` only
//!   needs `addr`); `edit_real` replaces the real server's weight and
//!   method, and keeps its checkers and health knobs unless it names them
//!   (ipvsadm has no words for those; `edit_service` likewise keeps the
//!   service's health knobs).
//! - `{"cmd":"clear"}`: removes every virtual service (`ipvsadm -C`).
//! - `{"cmd":"set_timeouts","tcp":S,"tcpfin":S,"udp":S}`: `ipvsadm --set`
//!   ([`set_timeouts`]); registered as its own admin command by
//!   `crate::commands`, like `restore` ([`Editor::handle_all`]: many
//!   requests, one publish).
//!
//! Refuses, with ipvsadm's words (libipvs `ipvs_strerror()`): adding a
//! service or real server that exists ("service already exists", "real
//! server already exists"), editing or deleting one that does not ("no such
//! service", "no such real server"); any value or rule the config file would
//! refuse, named by its path in the config (`services[2].scheduler: ...`,
//! there is no file:line:col since there is no file); more real-server ids
//! than one run can hold ([`MAX_REAL_IDS`]).
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use dataplane::snapshot::{LocalKind, Method, Snapshot};
use dataplane::stats::{SharedStats, MAX_REAL_IDS};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::compile::{compile_with_health, DrainingVip, HealthView, VrrpView};
use crate::config::{
    display_path, validate, Config, ProtoName, RealServerConfig, ServiceConfig, SocketAddrV4Str,
    TimeoutsConfig, VALUE_MARK,
};

pub mod reload;
pub use reload::{count_changes, restart_fields, ReloadOutcome, RELOADABLE};

/// The admin socket's write commands, in ipvsadm's `-A -E -D -a -e -d -C`
/// order.
pub const EDIT_COMMANDS: &[&str] = &[
    "add_service",
    "edit_service",
    "delete_service",
    "add_real",
    "edit_real",
    "delete_real",
    "clear",
];

/// Why an edit was refused. `Display` is one line, the text the admin socket
/// answers in `{"error": ...}` and `fulcrumctl` prints.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The request is not one of the shapes in the module doc.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A value or rule the config file would refuse, at `path` (e.g.
    /// `services[2].real_servers[0].weight`).
    #[error("{path}: {message}")]
    Invalid {
        /// Where the offending value is, in config terms.
        path: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// `add_service` of a VIP:port/proto that exists (ipvsadm: "Service
    /// already exists").
    #[error("service already exists: {0}")]
    ServiceExists(String),
    /// A service command naming no existing service (ipvsadm: "No such
    /// service", "Service not defined").
    #[error("no such service: {0}")]
    NoService(String),
    /// `add_real` of a RIP:port the service has (ipvsadm: "Destination
    /// already exists").
    #[error("real server already exists: {real} in {service}")]
    RealExists {
        /// RIP:port.
        real: String,
        /// `TCP VIP:port`.
        service: String,
    },
    /// `edit_real`/`delete_real` of a RIP:port the service lacks (ipvsadm:
    /// "No such destination").
    #[error("no such real server: {real} in {service}")]
    NoReal {
        /// RIP:port.
        real: String,
        /// `TCP VIP:port`.
        service: String,
    },
    /// A command refused as a whole, or a daemon part that could not answer
    /// (a `restore` rule refused at an input line, a worker that did not
    /// answer the connection listing in time); the text says which and why.
    #[error("{0}")]
    Refused(String),
    /// A reload whose file changes settings that only a restart can apply
    /// (`ports`, `workers`, `eal_args`, ...); nothing was changed.
    #[error("needs a restart: {0} changed (a reload applies services, routes, timeouts, expire_nodest_conn, fullnat_lport_min, fullnat_lport_max and enable_script_security only); nothing was changed")]
    NeedsRestart(String),
    /// A reload whose file cannot be read or fails validation: the config
    /// loader's one-line `file:line:col: message`; nothing was changed.
    #[error("{0}")]
    ConfigFile(String),
    /// The edit would need more real-server ids than one run can use.
    #[error("real server ids exhausted: this run has used {used} of {MAX_REAL_IDS} (ids are never reused); restart fulcrum to renumber")]
    IdsExhausted {
        /// Ids the edited snapshot would need.
        used: usize,
    },
}

/// Identifies a virtual service in a request: VIP:port and protocol, as in
/// the config file. Other fields of the surrounding object are ignored.
#[derive(Deserialize)]
struct ServiceRef {
    vip: SocketAddrV4Str,
    proto: ProtoName,
}

impl ServiceRef {
    fn matches(&self, s: &ServiceConfig) -> bool {
        s.vip == self.vip && s.proto == self.proto
    }
    fn name(&self) -> String {
        format!("{} {}", self.proto.0, self.vip.0)
    }
}

/// Deserializes `value` as `T`, naming a refusal by its path under `prefix`
/// (`services[2]` + `real_servers[0].weight`).
fn decode<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, EditError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut path = prefix.to_string();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                serde_path_to_error::Segment::Map { key } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                serde_path_to_error::Segment::Enum { variant } => {
                    path.push('.');
                    path.push_str(variant);
                }
                serde_path_to_error::Segment::Unknown => path.push_str(".?"),
            }
        }
        if path.is_empty() {
            path.push_str("request");
        }
        // Value errors of the config newtypes carry a marker meant for the
        // RON position finder; it means nothing here.
        let message = e.inner().to_string().replace(VALUE_MARK, "");
        EditError::Invalid { path, message }
    })
}

fn object<'a>(req: &'a Value, field: &str, cmd: &str) -> Result<&'a Value, EditError> {
    match req.get(field) {
        Some(v) if v.is_object() => Ok(v),
        _ => Err(EditError::BadRequest(format!(
            "{cmd} needs a {field:?} object"
        ))),
    }
}

/// Applies one edit request to a copy of `cfg` and validates the result.
///
/// `req` is a request object as described in the module doc, `cmd`
/// included. Returns the edited, validated config; `cfg` is not touched.
///
/// # Errors
/// Any [`EditError`]; see the module doc.
pub fn apply(cfg: &Config, req: &Value) -> Result<Config, EditError> {
    let cmd = req
        .get("cmd")
        .and_then(Value::as_str)
        .ok_or_else(|| EditError::BadRequest("expected a \"cmd\" string".into()))?;
    let mut new = cfg.clone();
    let find = |r: &ServiceRef| service_index(cfg, r);
    match cmd {
        "add_service" => {
            let obj = object(req, "service", cmd)?;
            let key: ServiceRef = decode(obj, "service")?;
            if find(&key).is_some() {
                return Err(EditError::ServiceExists(key.name()));
            }
            let path = format!("services[{}]", cfg.services.len());
            new.services.push(decode(obj, &path)?);
        }
        "edit_service" => {
            let obj = object(req, "service", cmd)?;
            let key: ServiceRef = decode(obj, "service")?;
            let i = find(&key).ok_or_else(|| EditError::NoService(key.name()))?;
            let old = &cfg.services[i];
            let mut obj = obj.clone();
            if let Some(map) = obj.as_object_mut() {
                map.entry("forwarding")
                    .or_insert_with(|| Value::from(old.forwarding.0.config_name()));
            }
            let mut svc: ServiceConfig = decode(&obj, &format!("services[{i}]"))?;
            if obj.get("real_servers").is_none() {
                svc.real_servers = old.real_servers.clone();
            }
            keep_service_health(&mut svc, old, &obj);
            new.services[i] = svc;
        }
        "delete_service" => {
            let key: ServiceRef = decode(req, "")?;
            let i = find(&key).ok_or_else(|| EditError::NoService(key.name()))?;
            new.services.remove(i);
        }
        "add_real" | "edit_real" | "delete_real" => {
            let key: ServiceRef = decode(req, "")?;
            let i = find(&key).ok_or_else(|| EditError::NoService(key.name()))?;
            let reals = &cfg.services[i].real_servers;
            let robj = object(req, "real", cmd)?;
            // Decode the address alone first, so that a bad one is named
            // before anything else and `delete_real` needs nothing more.
            let at = reals.len();
            let addr: SocketAddrV4Str = decode(
                robj.get("addr").unwrap_or(&Value::Null),
                &format!("services[{i}].real_servers[{at}].addr"),
            )?;
            let j = reals.iter().position(|r| r.addr == addr);
            let missing = || EditError::NoReal {
                real: addr.0.to_string(),
                service: key.name(),
            };
            match (cmd, j) {
                ("add_real", Some(_)) => {
                    return Err(EditError::RealExists {
                        real: addr.0.to_string(),
                        service: key.name(),
                    })
                }
                ("add_real", None) => {
                    let r: RealServerConfig =
                        decode(robj, &format!("services[{i}].real_servers[{at}]"))?;
                    new.services[i].real_servers.push(r);
                }
                ("edit_real", Some(j)) => {
                    let mut r: RealServerConfig =
                        decode(robj, &format!("services[{i}].real_servers[{j}]"))?;
                    keep_real_health(&mut r, &reals[j], robj);
                    new.services[i].real_servers[j] = r;
                }
                ("delete_real", Some(j)) => {
                    new.services[i].real_servers.remove(j);
                }
                _ => return Err(missing()),
            }
        }
        "clear" => new.services.clear(),
        "set_timeouts" => new.timeouts = set_timeouts(cfg, req)?,
        other => {
            return Err(EditError::BadRequest(format!(
                "unknown command {other:?}: expected one of {}",
                EDIT_COMMANDS.join(", ")
            )))
        }
    }
    validate(&new).map_err(|e| EditError::Invalid {
        path: display_path(&e.path),
        message: e.message,
    })?;
    Ok(new)
}

/// `ipvsadm --set TCP TCPFIN UDP`: the timeouts `cfg` would have after
/// `{"cmd":"set_timeouts","tcp":S,"tcpfin":S,"udp":S}` (seconds; a missing
/// field or 0 leaves that timeout unchanged, as ipvsadm's 0 does). `tcp` is
/// the ESTABLISHED timeout (`tcp_established`), `tcpfin` FIN_WAIT's
/// (`tcp_fin_wait`), `udp` UDP's, as `ip_vs_set_timeout` maps them. Only new
/// timers use them: a connection keeps the expiry it has until its next
/// packet re-arms it (the dataplane reads `snapshot.timeouts` per packet).
///
/// # Errors
/// [`EditError::Invalid`] at `timeouts.<field>` for a value outside
/// 1..=2592000 or not a number.
pub fn set_timeouts(cfg: &Config, req: &Value) -> Result<TimeoutsConfig, EditError> {
    let mut t = cfg.timeouts.clone();
    for (key, field, slot) in [
        ("tcp", "tcp_established", &mut t.tcp_established),
        ("tcpfin", "tcp_fin_wait", &mut t.tcp_fin_wait),
        ("udp", "udp", &mut t.udp),
    ] {
        match req.get(key) {
            None => {}
            Some(v) if v.as_u64() == Some(0) => {}
            Some(v) => *slot = decode(v, &format!("timeouts.{field}"))?,
        }
    }
    Ok(t)
}

/// Copies into `new` each field named in `fields` that the request object
/// `obj` does not set, from `old`.
macro_rules! keep_unset {
    ($new:ident, $old:ident, $obj:ident, $($f:ident),+) => {
        $(
            if $obj.get(stringify!($f)).is_none() {
                $new.$f = $old.$f.clone();
            }
        )+
    };
}

/// `-E` (edit_service) changes what ipvsadm can say (scheduler, flags,
/// persistence); the service's health knobs, which ipvsadm has no words
/// for, stay as they were unless the request names them.
fn keep_service_health(new: &mut ServiceConfig, old: &ServiceConfig, obj: &Value) {
    keep_unset!(
        new,
        old,
        obj,
        delay_loop,
        connect_timeout,
        retry,
        delay_before_retry,
        warmup,
        alpha,
        inhibit_on_failure,
        virtualhost,
        quorum,
        hysteresis,
        quorum_up,
        quorum_down,
        sorry_server,
        sorry_server_inhibit,
        sorry_server_forwarding,
        tun_src,
        local_addresses,
        client_address
    );
}

/// `-e` (edit_real) changes the weight and method; the real server's
/// checkers and health knobs stay unless the request names them.
fn keep_real_health(new: &mut RealServerConfig, old: &RealServerConfig, obj: &Value) {
    keep_unset!(
        new,
        old,
        obj,
        checkers,
        inhibit_on_failure,
        alpha,
        delay_loop,
        connect_timeout,
        retry,
        delay_before_retry,
        warmup,
        notify_up,
        notify_down,
        tun_type,
        tun_port
    );
    // A server that stops being tunnelled leaves its tunnel settings.
    if matches!(new.forwarding, Some(f) if f.0 != Method::Tun) {
        if obj.get("tun_type").is_none() {
            new.tun_type = None;
        }
        if obj.get("tun_port").is_none() {
            new.tun_port = None;
        }
    }
}

fn service_index(cfg: &Config, key: &ServiceRef) -> Option<usize> {
    cfg.services.iter().position(|s| key.matches(s))
}

/// The control plane's writer: holds the current config and publishes a new
/// snapshot for each edit. One per daemon; `handle` may be called from any
/// thread (a mutex serialises edits; the workers never touch it).
pub struct Editor {
    /// The current config, the VIPs that drain and the health view,
    /// changed together.
    state: Mutex<EditorState>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    port_macs: Vec<[u8; 6]>,
    stats: Vec<Arc<SharedStats>>,
    /// Bumped after every published config change (not health changes), so
    /// the health supervisor can pick up added or removed checkers.
    config_version: AtomicU64,
}

/// What one publish compiles from.
struct EditorState {
    cfg: Config,
    /// The config as the file last gave it (at start or the last reload):
    /// `cfg` less the runtime edits since.
    file: Config,
    drains: Vec<DrainingVip>,
    health: HealthView,
    /// The VRRP addresses held (instances in MASTER), of the last publish.
    vrrp: VrrpView,
}

impl Editor {
    /// An editor over the running daemon's state.
    ///
    /// `cfg` is the config `snapshot`'s current value was compiled from,
    /// `port_macs` the MACs that compile was given (one per configured port,
    /// wire order), `stats` every worker's shared counters, which each edit
    /// makes room in for new real-server ids before publishing.
    pub fn new(
        cfg: Config,
        port_macs: Vec<[u8; 6]>,
        snapshot: Arc<ArcSwap<Snapshot>>,
        stats: Vec<Arc<SharedStats>>,
    ) -> Editor {
        Editor::with_health(cfg, port_macs, snapshot, stats, HealthView::default())
    }

    /// [`Editor::new`] for a snapshot that was compiled with the health
    /// view `health` ([`compile_with_health`]).
    pub fn with_health(
        cfg: Config,
        port_macs: Vec<[u8; 6]>,
        snapshot: Arc<ArcSwap<Snapshot>>,
        stats: Vec<Arc<SharedStats>>,
        health: HealthView,
    ) -> Editor {
        Editor {
            state: Mutex::new(EditorState {
                file: cfg.clone(),
                cfg,
                drains: Vec::new(),
                health,
                vrrp: VrrpView::default(),
            }),
            snapshot,
            port_macs,
            stats,
            config_version: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, EditorState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many config changes were published so far (0 at start); health
    /// changes do not count.
    pub fn config_version(&self) -> u64 {
        self.config_version.load(Ordering::Acquire)
    }

    /// The health view of the last publish.
    pub fn health(&self) -> HealthView {
        self.lock().health.clone()
    }

    /// Publishes the current config under a new health view (a checker
    /// transition, a quorum change): compile, make room for ids, publish
    /// with generation + 1. Returns the generation, or `None` when the view
    /// is the one already published (nothing done).
    ///
    /// # Errors
    /// [`EditError::IdsExhausted`] (nothing published).
    pub fn set_health(&self, health: HealthView) -> Result<Option<u64>, EditError> {
        let mut st = self.lock();
        if st.health == health {
            return Ok(None);
        }
        let generation = self.republish(&st, &health, &st.vrrp)?;
        st.health = health;
        Ok(Some(generation))
    }

    /// Compiles the current config of `st` with `health` and `vrrp` and
    /// publishes it with generation + 1; returns the generation.
    fn republish(
        &self,
        st: &EditorState,
        health: &HealthView,
        vrrp: &VrrpView,
    ) -> Result<u64, EditError> {
        let prev = self.snapshot.load_full();
        let generation = prev.generation + 1;
        let snap = compile_with_health(
            &st.cfg,
            &self.port_macs,
            generation,
            Some(&prev),
            &st.drains,
            health,
            vrrp,
        );
        self.publish(snap)?;
        Ok(generation)
    }

    /// Publishes the current config with the VRRP addresses `vrrp` held
    /// (an instance became master, or stopped being master): compile,
    /// publish with generation + 1. The workers answer ARP for the held
    /// addresses and forward to them from their next burst; the others are
    /// [`LocalKind::Standby`].
    /// Returns the generation, or `None` when the view is the one already
    /// published.
    ///
    /// # Errors
    /// [`EditError::IdsExhausted`] (nothing published).
    pub fn set_vrrp(&self, vrrp: VrrpView) -> Result<Option<u64>, EditError> {
        let mut st = self.lock();
        if st.vrrp == vrrp {
            return Ok(None);
        }
        let generation = self.republish(&st, &st.health, &vrrp)?;
        st.vrrp = vrrp;
        Ok(Some(generation))
    }

    /// Makes room for `snap`'s real-server ids in every worker's counters
    /// and publishes it.
    fn publish(&self, snap: Snapshot) -> Result<(), EditError> {
        let used = snap.reals.len();
        if used > MAX_REAL_IDS {
            return Err(EditError::IdsExhausted { used });
        }
        for s in &self.stats {
            // Cannot fail: `used` was checked above.
            s.reserve(used);
        }
        self.snapshot.store(Arc::new(snap));
        Ok(())
    }

    /// A copy of the current config (the last one published).
    pub fn config(&self) -> Config {
        self.lock().cfg.clone()
    }

    /// The VIPs that still drain (their last service deleted, connections
    /// alive), as of the last publish.
    pub fn draining(&self) -> Vec<DrainingVip> {
        self.lock().drains.clone()
    }

    /// Connections (activeconns + inactconns, every worker) real server
    /// `id` still has.
    fn live_conns(&self, id: u32) -> u64 {
        self.stats
            .iter()
            .map(|s| {
                let r = s.load_real(id as usize);
                r.active_conns + r.inactive_conns
            })
            .sum()
    }

    /// The draining VIPs after `new` replaces the config `prev` was compiled
    /// from: every VIP of `prev` that no service of `new` has any more, with
    /// the real-server ids its services had (added to those of an earlier
    /// drain of the same VIP), kept while one of them has a connection.
    fn drains_after(&self, prev: &Snapshot, old: &[DrainingVip], new: &Config) -> Vec<DrainingVip> {
        let still_vip = |vip: u32| new.services.iter().any(|s| u32::from(s.vip.ip()) == vip);
        let mut out: Vec<DrainingVip> = old.iter().filter(|d| !still_vip(d.vip)).cloned().collect();
        for (&vip, l) in &prev.local {
            if l.kind != LocalKind::Vip || still_vip(vip) {
                continue;
            }
            // Every real server of its services, in rotation or taken out
            // by a failed health check: connections to either drain.
            let ids = prev.reals.iter().enumerate().filter_map(|(id, r)| {
                let svc = prev.services.get(usize::from(r.service))?;
                (svc.key.vip == vip).then_some(id as u32)
            });
            match out.iter_mut().find(|d| d.vip == vip) {
                Some(d) => d.reals.extend(ids),
                None => out.push(DrainingVip {
                    vip,
                    arp_ports: l.arp_ports,
                    reals: ids.collect(),
                }),
            }
        }
        out.retain(|d| d.reals.iter().any(|&id| self.live_conns(id) > 0));
        out
    }

    /// Ends the drain of every VIP whose connections are all gone: publishes
    /// a snapshot (generation + 1) without them, so the director stops
    /// answering ARP for them. Returns the VIPs (host order) it ended; none
    /// (and nothing published) when every draining VIP still has
    /// connections. Called by the daemon about once a second.
    pub fn sweep_drains(&self) -> Vec<u32> {
        let mut st = self.lock();
        let (ended, kept): (Vec<DrainingVip>, Vec<DrainingVip>) = std::mem::take(&mut st.drains)
            .into_iter()
            .partition(|d| d.reals.iter().all(|&id| self.live_conns(id) == 0));
        st.drains = kept;
        if ended.is_empty() {
            return Vec::new();
        }
        let prev = self.snapshot.load_full();
        let snap = compile_with_health(
            &st.cfg,
            &self.port_macs,
            prev.generation + 1,
            Some(&prev),
            &st.drains,
            &st.health,
            &st.vrrp,
        );
        self.snapshot.store(Arc::new(snap));
        ended.iter().map(|d| d.vip).collect()
    }

    /// Applies one request ([`apply`]), compiles it against the current
    /// snapshot, makes room for new real-server ids in every worker's
    /// counters, publishes the snapshot with generation + 1 and makes the
    /// edited config current. Returns the new generation.
    ///
    /// # Errors
    /// Any [`EditError`]; then nothing was changed.
    pub fn handle(&self, req: &Value) -> Result<u64, EditError> {
        self.handle_all(std::slice::from_ref(req))
            .map_err(|(_, e)| e)
    }

    /// `fulcrumctl -R` (ipvsadm `--restore`): applies `reqs` in order, each
    /// to the config the previous one produced ([`apply`], so each step is
    /// validated), then compiles and publishes the result once, with
    /// generation + 1: all of them or none. Returns the new generation.
    ///
    /// # Errors
    /// `(i, e)`: request `i` (0-based) was refused with `e`, or `i ==
    /// reqs.len()` when the final publish failed; nothing was changed.
    pub fn handle_all(&self, reqs: &[Value]) -> Result<u64, (usize, EditError)> {
        // A poisoned lock still holds the last *published* config: it is
        // only replaced after a successful publish.
        let mut cur = self.lock();
        let mut new = cur.cfg.clone();
        for (i, req) in reqs.iter().enumerate() {
            new = apply(&new, req).map_err(|e| (i, e))?;
        }
        let prev = self.snapshot.load_full();
        let generation = prev.generation + 1;
        let drains = self.drains_after(&prev, &cur.drains, &new);
        let snap = compile_with_health(
            &new,
            &self.port_macs,
            generation,
            Some(&prev),
            &drains,
            &cur.health,
            &cur.vrrp,
        );
        self.publish(snap).map_err(|e| (reqs.len(), e))?;
        cur.cfg = new;
        cur.drains = drains;
        self.config_version.fetch_add(1, Ordering::Release);
        Ok(generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use serde_json::json;

    const CFG: &str = r#"(
        eal_args: ["-l", "0-1"],
        workers: [1],
        ports: [
            (name: "outside", device: "net_null0", addrs: ["10.0.0.1/24"]),
            (name: "inside", device: "net_null1", addrs: ["10.1.0.1/24"]),
        ],
        services: [
            (vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
             real_servers: [(addr: "10.1.0.11:80", weight: 3), (addr: "10.1.0.12:80")]),
        ],
    )"#;

    fn cfg() -> Config {
        parse(CFG, "t.ron").expect("valid")
    }

    fn err(req: serde_json::Value) -> String {
        apply(&cfg(), &req).expect_err("refused").to_string()
    }

    #[test]
    fn test_edits_keep_health_config() {
        let src = CFG.replacen(
            "(addr: \"10.1.0.11:80\"",
            "(addr: \"10.1.0.11:80\", checkers: [TCP_CHECK()], notify_down: \"/bin/true\"",
            1,
        );
        let src = src.replacen(
            "forwarding: \"nat\",",
            "forwarding: \"nat\", delay_loop: 3, quorum: 2,",
            1,
        );
        let c = parse(&src, "t.ron").expect("valid");
        assert_eq!(c.services[0].real_servers[0].checkers.len(), 1);
        let req = json!({"cmd": "edit_real", "vip": "10.0.0.100:80", "proto": "tcp",
                         "real": {"addr": "10.1.0.11:80", "weight": 5}});
        let new = apply(&c, &req).expect("applied");
        let r = &new.services[0].real_servers[0];
        assert_eq!(r.weight.0, 5);
        assert_eq!(r.checkers, c.services[0].real_servers[0].checkers);
        assert_eq!(r.notify_down.as_deref(), Some("/bin/true"));
        let req = json!({"cmd": "edit_service", "service":
                         {"vip": "10.0.0.100:80", "proto": "tcp", "scheduler": "wrr"}});
        let new = apply(&c, &req).expect("applied");
        let s = &new.services[0];
        assert_eq!(s.scheduler.0, sched::SchedKind::Wrr);
        assert_eq!((s.delay_loop, s.quorum), (c.services[0].delay_loop, 2));
        assert_eq!(s.real_servers[0].checkers.len(), 1);
    }

    #[test]
    fn test_add_service() {
        let new = apply(
            &cfg(),
            &json!({"cmd": "add_service", "service": {
                "vip": "10.0.0.100:81", "proto": "tcp", "scheduler": "sh", "forwarding": "dr"}}),
        )
        .expect("applied");
        assert_eq!(new.services.len(), 2);
        assert_eq!(new.services[1].scheduler.0.name(), "sh");
        assert!(new.services[1].real_servers.is_empty());
        assert_eq!(new.services[0], cfg().services[0], "the others untouched");
    }

    #[test]
    fn test_add_service_refusals() {
        let svc = |sched: &str| {
            json!({"cmd": "add_service", "service": {
                "vip": "10.0.0.100:81", "proto": "tcp", "scheduler": sched, "forwarding": "nat"}})
        };
        assert_eq!(
            err(svc("bogus")),
            format!(
                "services[1].scheduler: invalid scheduler \"bogus\": expected one of {}",
                sched::SchedKind::NAMES.join(", ")
            )
        );
        let mut dup = svc("rr");
        dup["service"]["vip"] = json!("10.0.0.100:80");
        assert_eq!(err(dup), "service already exists: TCP 10.0.0.100:80");
        let mut unknown = svc("rr");
        unknown["service"]["frobnicate"] = json!(300);
        let e = err(unknown);
        assert!(
            e.starts_with(
                "services[1].frobnicate: unknown field `frobnicate`, expected one of `vip`"
            ),
            "{e}"
        );
        let mut missing = svc("rr");
        missing["service"]
            .as_object_mut()
            .expect("object")
            .remove("scheduler");
        assert_eq!(err(missing), "services[1]: missing field `scheduler`");
        let mut bad_vip = svc("rr");
        bad_vip["service"]["vip"] = json!("10.0.0.300:80");
        assert_eq!(
            err(bad_vip),
            "service.vip: invalid address \"10.0.0.300:80\": expected IPv4:port like \"10.0.0.100:80\""
        );
        // A cross-field rule of the file loader: the VIP may not be a DIP.
        let mut dip = svc("rr");
        dip["service"]["vip"] = json!("10.0.0.1:81");
        assert_eq!(
            err(dip),
            "services[1].vip: VIP 10.0.0.1 is a director address (DIP) of port \"outside\": expected a separate address"
        );
        assert_eq!(
            err(json!({"cmd": "add_service"})),
            "bad request: add_service needs a \"service\" object"
        );
    }

    #[test]
    fn test_edit_service_keeps_reals_and_forwarding() {
        let new = apply(
            &cfg(),
            &json!({"cmd": "edit_service", "service": {
                "vip": "10.0.0.100:80", "proto": "tcp", "scheduler": "wlc"}}),
        )
        .expect("applied");
        assert_eq!(new.services[0].scheduler.0.name(), "wlc");
        assert_eq!(new.services[0].forwarding.0, Method::Nat);
        assert_eq!(new.services[0].real_servers, cfg().services[0].real_servers);
        // Given real servers replace the old ones.
        let new = apply(
            &cfg(),
            &json!({"cmd": "edit_service", "service": {
                "vip": "10.0.0.100:80", "proto": "tcp", "scheduler": "rr",
                "forwarding": "nat", "real_servers": [{"addr": "10.1.0.13:80"}]}}),
        )
        .expect("applied");
        assert_eq!(new.services[0].real_servers.len(), 1);
        assert_eq!(new.services[0].real_servers[0].weight.0, 1);
        assert_eq!(
            err(json!({"cmd": "edit_service", "service": {
                "vip": "10.0.0.100:80", "proto": "udp", "scheduler": "rr"}})),
            "no such service: UDP 10.0.0.100:80"
        );
        // A DR default applies to the given real servers, and the loader's
        // DR rule (rport = vport) is checked on the result.
        let e = err(json!({"cmd": "edit_service", "service": {
            "vip": "10.0.0.100:80", "proto": "tcp", "scheduler": "rr", "forwarding": "dr",
            "real_servers": [{"addr": "10.1.0.11:8080"}]}}));
        assert!(
            e.starts_with(
                "services[0].real_servers[0].addr: direct routing cannot change the port"
            ),
            "{e}"
        );
    }

    #[test]
    fn test_delete_service_and_clear() {
        let new = apply(
            &cfg(),
            &json!({"cmd": "delete_service", "vip": "10.0.0.100:80", "proto": "tcp"}),
        )
        .expect("applied");
        assert!(new.services.is_empty());
        assert_eq!(
            err(json!({"cmd": "delete_service", "vip": "10.0.0.100:81", "proto": "tcp"})),
            "no such service: TCP 10.0.0.100:81"
        );
        assert_eq!(
            err(json!({"cmd": "delete_service", "vip": "10.0.0.100:80"})),
            "request: missing field `proto`"
        );
        let new = apply(&cfg(), &json!({"cmd": "clear"})).expect("applied");
        assert!(new.services.is_empty());
        assert_eq!(new.ports, cfg().ports);
    }

    #[test]
    fn test_real_server_commands() {
        let real = |cmd: &str, real: serde_json::Value| json!({"cmd": cmd, "vip": "10.0.0.100:80", "proto": "tcp", "real": real});
        let new = apply(
            &cfg(),
            &real("add_real", json!({"addr": "10.1.0.13:8080", "weight": 2})),
        )
        .expect("applied");
        let r = &new.services[0].real_servers[2];
        assert_eq!((r.addr.port(), r.weight.0, r.forwarding), (8080, 2, None));

        let new = apply(
            &cfg(),
            &real(
                "edit_real",
                json!({"addr": "10.1.0.11:80", "forwarding": "dr"}),
            ),
        )
        .expect("applied");
        let r = &new.services[0].real_servers[0];
        assert_eq!(
            r.weight.0, 1,
            "edit_real replaces: weight back to its default"
        );
        assert_eq!(r.method(&new.services[0]), Method::Dr);

        let new = apply(
            &cfg(),
            &real("delete_real", json!({"addr": "10.1.0.11:80"})),
        )
        .expect("applied");
        assert_eq!(new.services[0].real_servers.len(), 1);
        assert_eq!(new.services[0].real_servers[0].addr.port(), 80);

        assert_eq!(
            err(real("add_real", json!({"addr": "10.1.0.11:80"}))),
            "real server already exists: 10.1.0.11:80 in TCP 10.0.0.100:80"
        );
        assert_eq!(
            err(real("edit_real", json!({"addr": "10.1.0.19:80"}))),
            "no such real server: 10.1.0.19:80 in TCP 10.0.0.100:80"
        );
        assert_eq!(
            err(real("delete_real", json!({"addr": "10.1.0.19:80"}))),
            "no such real server: 10.1.0.19:80 in TCP 10.0.0.100:80"
        );
        assert_eq!(
            err(real(
                "add_real",
                json!({"addr": "10.1.0.13:80", "weight": 70000})
            )),
            "services[0].real_servers[2].weight: invalid weight 70000: expected 0..=65535"
        );
        assert_eq!(
            err(real("add_real", json!({"addr": "10.1.0.13:80", "forwarding": "ipip"}))),
            "services[0].real_servers[2].forwarding: invalid forwarding method \"ipip\": expected one of nat, masq, dr, route, tun, tunnel, fullnat"
        );
        assert_eq!(
            err(real("add_real", json!({"addr": "10.0.0.100:80"}))),
            "services[0].real_servers[2].addr: real server 10.0.0.100 is one of the director's own addresses: expected another host"
        );
        let mut other = real("add_real", json!({"addr": "10.1.0.13:80"}));
        other["vip"] = json!("10.0.0.101:80");
        assert_eq!(err(other), "no such service: TCP 10.0.0.101:80");
        assert_eq!(
            err(json!({"cmd": "add_real", "vip": "10.0.0.100:80", "proto": "tcp"})),
            "bad request: add_real needs a \"real\" object"
        );
        assert_eq!(
            err(json!({"cmd": "reload"})),
            format!(
                "bad request: unknown command \"reload\": expected one of {}",
                EDIT_COMMANDS.join(", ")
            )
        );
    }

    fn editor_with(c: Config) -> (Editor, Arc<ArcSwap<Snapshot>>, Arc<SharedStats>) {
        let macs = vec![[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
        let snap = crate::compile::compile(&c, &macs, 1, None, &[]);
        let stats = Arc::new(SharedStats::new(snap.reals.len()));
        let swap = Arc::new(ArcSwap::from_pointee(snap));
        let ed = Editor::new(c, macs, Arc::clone(&swap), vec![Arc::clone(&stats)]);
        (ed, swap, stats)
    }

    fn editor() -> (Editor, Arc<ArcSwap<Snapshot>>, Arc<SharedStats>) {
        editor_with(cfg())
    }

    #[test]
    fn test_editor_publishes_next_generation() {
        let (ed, swap, _) = editor();
        let g = ed
            .handle(&json!({"cmd": "add_service", "service": {
                "vip": "10.0.0.101:53", "proto": "udp", "scheduler": "rr", "forwarding": "nat",
                "real_servers": [{"addr": "10.1.0.21:53"}]}}))
            .expect("applied");
        assert_eq!(g, 2);
        let snap = swap.load();
        assert_eq!(snap.generation, 2);
        assert_eq!(snap.services.len(), 2);
        // Ids continue after the first compile's (1, 2).
        assert_eq!(snap.services[1].reals, vec![3]);
        assert_eq!(ed.config().services.len(), 2);
        assert_eq!(ed.handle(&json!({"cmd": "clear"})).expect("applied"), 3);
        assert!(swap.load().services.is_empty());
        assert_eq!(swap.load().reals.len(), 4, "retired ids stay");
    }

    #[test]
    fn test_editor_failure_changes_nothing() {
        let (ed, swap, _) = editor();
        let before = swap.load_full();
        let e = ed
            .handle(
                &json!({"cmd": "add_real", "vip": "10.0.0.100:80", "proto": "tcp",
                "real": {"addr": "10.1.0.13:80", "weight": 70000}}),
            )
            .expect_err("refused");
        assert!(matches!(e, EditError::Invalid { .. }), "{e}");
        assert!(Arc::ptr_eq(&before, &swap.load_full()), "same snapshot");
        assert_eq!(swap.load().generation, 1);
        assert_eq!(ed.config(), cfg());
        // The next good edit still gets generation 2.
        let g = ed
            .handle(
                &json!({"cmd": "delete_real", "vip": "10.0.0.100:80", "proto": "tcp",
                "real": {"addr": "10.1.0.12:80"}}),
            )
            .expect("applied");
        assert_eq!(g, 2);
    }

    #[test]
    fn test_editor_makes_room_in_worker_counters() {
        // A /16 inside subnet, so that 1100 real servers have a route.
        let (ed, swap, stats) =
            editor_with(parse(&CFG.replace("10.1.0.1/24", "10.1.0.1/16"), "t.ron").expect("valid"));
        assert_eq!(stats.real_capacity(), dataplane::stats::REAL_CHUNK);
        let reals: Vec<serde_json::Value> = (0..1100)
            .map(|i| json!({"addr": format!("10.1.{}.{}:80", 4 + i / 200, 10 + i % 200)}))
            .collect();
        ed.handle(&json!({"cmd": "add_service", "service": {
            "vip": "10.0.0.101:80", "proto": "tcp", "scheduler": "rr", "forwarding": "nat",
            "real_servers": reals}}))
            .expect("applied");
        assert_eq!(swap.load().reals.len(), 3 + 1100);
        assert_eq!(stats.real_capacity(), 2 * dataplane::stats::REAL_CHUNK);
    }
}
