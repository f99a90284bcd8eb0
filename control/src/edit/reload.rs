//! Safe reload: the config file read again, and only its difference
//! applied (keepalived's SIGHUP reload, ipvsadm's view of it).
//!
//! Layer: control, slow path. [`Editor::reload`] takes a whole new,
//! validated [`Config`] and publishes it through the same path as a runtime
//! edit: compiled against the running snapshot (so real servers that remain
//! keep their ids, and with them their connections and counters), with the
//! current health view and drains, generation + 1 (a real server it adds
//! with `alpha` starts out of rotation, as at startup). Real servers and
//! services the file no longer has drain as after `fulcrumctl -d`/`-D`: their
//! connections go on, no new ones are scheduled to them.
//!
//! Refuses, changing nothing: a file that does not load
//! ([`EditError::ConfigFile`], `file:line:col: message`), and a file that
//! changes a setting only a restart can apply ([`EditError::NeedsRestart`]
//! naming the fields): everything but [`RELOADABLE`]. The reloadable set
//! is explicit on purpose: a setting added to [`Config`] later needs a
//! restart until someone makes it reloadable here.
//!
//! Runtime edits do not survive a reload: the file wins (as keepalived
//! rebuilds IPVS from its file on SIGHUP). The file is the one source of
//! truth an operator can read and review; merging edits into it would make
//! the running state depend on the order of reloads and edits. The
//! outcome counts the runtime changes dropped, so the log line says so.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;

use super::{EditError, Editor};
use crate::compile::{compile_with_health, HealthView, RealKey};
use crate::config::Config;
use crate::health::pool::Pool;

/// The top-level settings a reload applies; every other one needs a
/// restart. `neighbours` is not among them: workers add permanent
/// neighbours from a snapshot but never remove one.
pub const RELOADABLE: &[&str] = &[
    "services",
    "routes",
    "timeouts",
    "expire_nodest_conn",
    "fullnat_lport_min",
    "fullnat_lport_max",
    "enable_script_security",
];

/// What a successful reload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// The generation now running: the published one, or the running one
    /// when the file changed nothing.
    pub generation: u64,
    /// `false` when the file's config equals the running one (nothing was
    /// published).
    pub changed: bool,
    /// Real servers (per service) the file adds.
    pub reals_added: usize,
    /// Real servers (per service) the file removes; they drain.
    pub reals_removed: usize,
    /// Real servers that stay (same service, RIP:port), keeping their ids.
    pub reals_kept: usize,
    /// Runtime changes (a service or real server added, removed or edited
    /// with `fulcrumctl` since the file was last read) the reload dropped.
    pub dropped_edits: usize,
}

/// `(proto, VIP:port, RIP:port)` of every real server of `cfg`.
fn real_keys(cfg: &Config) -> HashSet<(String, String, String)> {
    cfg.services
        .iter()
        .flat_map(|s| {
            s.real_servers.iter().map(move |r| {
                (
                    s.proto.0.to_string(),
                    s.vip.0.to_string(),
                    r.addr.0.to_string(),
                )
            })
        })
        .collect()
}

/// How many services and real servers differ between `file` and
/// `running`: added, removed or changed. A service whose own settings
/// changed counts once, plus each of its real servers that differs.
pub fn count_changes(file: &Config, running: &Config) -> usize {
    let key = |s: &crate::config::ServiceConfig| (s.proto.0.to_string(), s.vip.0.to_string());
    let before: HashMap<_, _> = file.services.iter().map(|s| (key(s), s)).collect();
    let mut n = file
        .services
        .iter()
        .filter(|s| !running.services.iter().any(|r| key(r) == key(s)))
        .count();
    for s in &running.services {
        let Some(f) = before.get(&key(s)) else {
            n += 1;
            continue;
        };
        let (mut a, mut b) = (s.clone(), (*f).clone());
        a.real_servers.clear();
        b.real_servers.clear();
        n += usize::from(a != b);
        n += s
            .real_servers
            .iter()
            .filter(|r| !f.real_servers.contains(r))
            .count();
        n += f
            .real_servers
            .iter()
            .filter(|r| !s.real_servers.iter().any(|x| x.addr == r.addr))
            .count();
    }
    n
}

/// The top-level settings outside [`RELOADABLE`] in which `new` differs
/// from `old`, by name.
pub fn restart_fields(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! differ {
        ($($f:ident),+) => {
            $(
                if old.$f != new.$f {
                    out.push(stringify!($f));
                }
            )+
        };
    }
    differ!(
        eal_args,
        workers,
        mbufs_per_socket,
        rx_desc,
        tx_desc,
        burst,
        idle_sleep_us,
        conn_table_size,
        admin_socket,
        admin_group,
        ports,
        neighbours,
        exception_path,
        icmp_rate_limit,
        vrrp_instance,
        vrrp_script,
        vrrp_sync_group
    );
    if out.is_empty() {
        // A setting this list does not name yet: restart-only as well.
        let mut same = new.clone();
        same.services.clone_from(&old.services);
        same.routes.clone_from(&old.routes);
        same.timeouts.clone_from(&old.timeouts);
        same.expire_nodest_conn = old.expire_nodest_conn;
        same.fullnat_lport_min = old.fullnat_lport_min;
        same.fullnat_lport_max = old.fullnat_lport_max;
        same.enable_script_security = old.enable_script_security;
        if same != *old {
            out.push("a setting outside the reloadable ones");
        }
    }
    out
}

/// The health view to publish `new` with: `cur` (the running view, of
/// `old`'s real servers), plus the initial state of every real server
/// `new` adds: down when it starts with keepalived's `alpha`, so that it
/// takes no connection before its checkers pass. The supervisor then
/// takes over from the same initial states.
fn health_for(old: &Config, new: &Config, cur: &HealthView) -> HealthView {
    let known: HashSet<RealKey> = Pool::from_config(old, None)
        .0
        .reals
        .iter()
        .map(|r| r.key)
        .collect();
    let fresh = Pool::from_config(new, None).0.view();
    let mut health = cur.clone();
    health
        .down
        .extend(fresh.down.into_iter().filter(|k| !known.contains(k)));
    health
}

impl Editor {
    /// Reads, validates and applies the config file at `path`
    /// ([`Editor::reload`]).
    ///
    /// # Errors
    /// [`EditError::ConfigFile`] with the loader's `file:line:col: message`
    /// when the file cannot be read or is invalid; otherwise as
    /// [`Editor::reload`]. Either way nothing was changed.
    pub fn reload_file(&self, path: &Path) -> Result<ReloadOutcome, EditError> {
        let cfg = crate::config::load(path).map_err(|e| EditError::ConfigFile(e.to_string()))?;
        self.reload(cfg)
    }

    /// Replaces the running config with `new` (validated by the loader):
    /// publishes its difference as one snapshot (generation + 1), or
    /// nothing when `new` equals the running config. Runtime edits made
    /// since the file was last read are dropped (counted in the outcome).
    /// The health supervisor restarts its checkers for the new config, as
    /// after an edit.
    ///
    /// # Errors
    /// [`EditError::NeedsRestart`] naming the settings outside
    /// [`RELOADABLE`] that `new` changes; [`EditError::IdsExhausted`]. Then
    /// nothing was changed.
    pub fn reload(&self, new: Config) -> Result<ReloadOutcome, EditError> {
        let mut cur = self.lock();
        let fields = restart_fields(&cur.cfg, &new);
        if !fields.is_empty() {
            return Err(EditError::NeedsRestart(fields.join(", ")));
        }
        let dropped_edits = count_changes(&cur.file, &cur.cfg);
        let (old_keys, new_keys) = (real_keys(&cur.cfg), real_keys(&new));
        let prev = self.snapshot.load_full();
        let mut out = ReloadOutcome {
            generation: prev.generation,
            changed: new != cur.cfg,
            reals_added: new_keys.difference(&old_keys).count(),
            reals_removed: old_keys.difference(&new_keys).count(),
            reals_kept: new_keys.intersection(&old_keys).count(),
            dropped_edits,
        };
        if !out.changed {
            cur.file = new;
            return Ok(out);
        }
        out.generation = prev.generation + 1;
        let drains = self.drains_after(&prev, &cur.drains, &new);
        let health = health_for(&cur.cfg, &new, &cur.health);
        let snap = compile_with_health(
            &new,
            &self.port_macs,
            out.generation,
            Some(&prev),
            &drains,
            &health,
            &cur.vrrp,
        );
        self.publish(snap)?;
        cur.file = new.clone();
        cur.cfg = new;
        cur.drains = drains;
        cur.health = health;
        self.config_version.fetch_add(1, Ordering::Release);
        Ok(out)
    }
}
