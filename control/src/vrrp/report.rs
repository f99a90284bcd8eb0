//! What `fulcrumctl --vrrp` shows: each VRRP instance's state, priorities,
//! master, counters and last transition, as the admin command `vrrp`
//! answers it (JSON) and as the CLI prints it (a table).
//!
//! Layer: control, shared by the daemon (which fills it from its VRRP
//! thread) and the CLI (which reads it). Pure data and formatting.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::admin::server::Command;

/// One instance's last state change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// When, Unix time in milliseconds.
    pub at_unix_ms: u64,
    /// The state before (`INIT`, `BACKUP`, `MASTER`, `FAULT`).
    pub from: String,
    /// The state after.
    pub to: String,
    /// Why, in words (`master down timer expired`, `higher priority
    /// advert`, `sync group`, ...).
    pub reason: String,
}

/// One `vrrp_instance`, as of the VRRP thread's last pass (at most 20 ms
/// old while it runs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceReport {
    /// The instance's name.
    pub name: String,
    /// Its port (`interface`).
    pub interface: String,
    /// `virtual_router_id`.
    pub vrid: u8,
    /// VRRP version, 2 or 3.
    pub version: u8,
    /// `INIT`, `BACKUP`, `MASTER` or `FAULT`.
    pub state: String,
    /// Another master's adverts keep arriving while this one stays master
    /// (see `split_brain_adverts`).
    pub split_brain: bool,
    /// The configured priority.
    pub priority: u8,
    /// The priority sent now (configured + tracking weights, 1..=254; 255
    /// for an owner; 0 while releasing).
    pub effective_priority: u8,
    /// The master's address: ours while master, the last heard master's
    /// while backup; `None` when no master is known.
    pub master: Option<String>,
    /// Our advert interval, milliseconds.
    pub advert_int_ms: u32,
    /// The master-down interval now (3 × the master's advert interval +
    /// skew), milliseconds.
    pub master_down_ms: u32,
    /// The addresses that follow the instance.
    pub addresses: Vec<String>,
    /// Its sync group, if any.
    pub sync_group: Option<String>,
    /// Why the instance is in FAULT or its priority is lowered (`track_interface
    /// int down`, `track_script chk_nginx failed (-20)`, ...), empty otherwise.
    pub tracking: Vec<String>,
    /// Adverts sent.
    pub adverts_sent: u64,
    /// Adverts received and accepted for this instance.
    pub adverts_received: u64,
    /// Adverts refused, by reason (`auth_mismatch`, `interval_mismatch`, ...).
    pub adverts_rejected: BTreeMap<String, u64>,
    /// Times it became master.
    pub became_master: u64,
    /// Times it left master.
    pub released_master: u64,
    /// Times split brain was detected.
    pub split_brain_events: u64,
    /// Gratuitous ARPs sent.
    pub garps_sent: u64,
    /// The last state change, if any.
    pub last_transition: Option<Transition>,
}

/// Every instance, plus the packets no instance took.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpReport {
    /// In config order.
    pub instances: Vec<InstanceReport>,
    /// Packets refused before any instance saw them, by reason
    /// (`bad_ttl`, `bad_checksum`, `unknown_vrid`, ...); the dataplane's
    /// own `vrrp_*` drops are in the worker counters.
    pub dropped: BTreeMap<String, u64>,
}

/// The report the VRRP thread writes and the `vrrp` command reads.
pub type SharedVrrp = Arc<Mutex<VrrpReport>>;

/// The read-only admin command `vrrp`: `{"cmd":"vrrp"}` → the
/// [`VrrpReport`] as JSON.
pub fn command(shared: SharedVrrp) -> Command {
    Command {
        name: "vrrp",
        mutates: false,
        run: Arc::new(move |_req| {
            let r = shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            Ok(serde_json::to_value(r).unwrap_or(serde_json::Value::Null))
        }),
    }
}

/// The state column: the state, with `(split-brain)` appended while split
/// brain is reported.
pub fn state_word(i: &InstanceReport) -> String {
    if i.split_brain {
        format!("{} (split-brain)", i.state)
    } else {
        i.state.clone()
    }
}

/// `fulcrumctl --vrrp`: one block per instance, keepalived's words.
/// `now_unix_ms` dates the last transition ("12.3 s ago").
pub fn format(r: &VrrpReport, now_unix_ms: u64) -> String {
    let mut out = String::new();
    if r.instances.is_empty() {
        out.push_str("no vrrp_instance configured\n");
    }
    for i in &r.instances {
        let _ = writeln!(
            out,
            "VRRP Instance {} ({} vrid {} v{}): {}",
            i.name,
            i.interface,
            i.vrid,
            i.version,
            state_word(i)
        );
        let _ = writeln!(
            out,
            "  priority {} effective {}  master {}  advert_int {} ms  master_down {} ms",
            i.priority,
            i.effective_priority,
            i.master.as_deref().unwrap_or("-"),
            i.advert_int_ms,
            i.master_down_ms
        );
        let _ = writeln!(out, "  addresses {}", i.addresses.join(" "));
        if let Some(g) = &i.sync_group {
            let _ = writeln!(out, "  sync group {g}");
        }
        for t in &i.tracking {
            let _ = writeln!(out, "  tracking: {t}");
        }
        let rejected: u64 = i.adverts_rejected.values().sum();
        let _ = writeln!(
            out,
            "  adverts sent {} received {} rejected {}  became master {} released {}  split brain {}  garps {}",
            i.adverts_sent,
            i.adverts_received,
            rejected,
            i.became_master,
            i.released_master,
            i.split_brain_events,
            i.garps_sent
        );
        for (k, v) in &i.adverts_rejected {
            let _ = writeln!(out, "    rejected {k}: {v}");
        }
        match &i.last_transition {
            Some(t) => {
                let ago = now_unix_ms.saturating_sub(t.at_unix_ms) as f64 / 1000.0;
                let _ = writeln!(
                    out,
                    "  last transition {} -> {} {ago:.1} s ago: {}",
                    t.from, t.to, t.reason
                );
            }
            None => out.push_str("  last transition: none\n"),
        }
    }
    for (k, v) in &r.dropped {
        let _ = writeln!(out, "dropped before any instance: {k}: {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_format_names_split_brain_and_the_transition() {
        let r = VrrpReport {
            instances: vec![InstanceReport {
                name: "VI_1".into(),
                interface: "ext".into(),
                vrid: 51,
                version: 3,
                state: "MASTER".into(),
                split_brain: true,
                priority: 150,
                effective_priority: 130,
                master: Some("10.0.0.2".into()),
                advert_int_ms: 100,
                master_down_ms: 341,
                addresses: vec!["10.0.0.100".into()],
                tracking: vec!["track_script chk failed (-20)".into()],
                adverts_rejected: [("auth_mismatch".to_string(), 2)].into_iter().collect(),
                last_transition: Some(Transition {
                    at_unix_ms: 1000,
                    from: "BACKUP".into(),
                    to: "MASTER".into(),
                    reason: "master down timer expired".into(),
                }),
                ..Default::default()
            }],
            dropped: [("unknown_vrid".to_string(), 4)].into_iter().collect(),
        };
        let s = format(&r, 3500);
        assert!(
            s.contains("VRRP Instance VI_1 (ext vrid 51 v3): MASTER (split-brain)"),
            "{s}"
        );
        assert!(
            s.contains("priority 150 effective 130  master 10.0.0.2"),
            "{s}"
        );
        assert!(s.contains("rejected 2"), "{s}");
        assert!(s.contains("rejected auth_mismatch: 2"), "{s}");
        assert!(
            s.contains("BACKUP -> MASTER 2.5 s ago: master down timer expired"),
            "{s}"
        );
        assert!(s.contains("tracking: track_script chk failed (-20)"), "{s}");
        assert!(
            s.contains("dropped before any instance: unknown_vrid: 4"),
            "{s}"
        );
        let back: VrrpReport =
            serde_json::from_value(serde_json::to_value(&r).expect("json")).expect("back");
        assert_eq!(back, r);
    }
}
