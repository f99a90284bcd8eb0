//! What `fulcrumctl --health` shows: per real server, its state and each
//! checker's last result; per service, its quorum.
//!
//! Layer: control, health. Plain serde DTOs, part of the admin status JSON
//! (`Status::health`); the supervisor keeps one up to date, the admin
//! socket copies it out. Times are Unix milliseconds (UTC); latencies
//! microseconds.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// The health of every checked pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// One entry per configured real server (checked or not), config order.
    pub reals: Vec<RealReport>,
    /// One entry per virtual service, config order.
    pub services: Vec<ServiceReport>,
    /// Snapshots published because of health changes since start.
    pub publishes: u64,
    /// Time from the checker result to the published snapshot, of the last
    /// health publish, microseconds.
    pub last_publish_us: u64,
}

/// One real server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealReport {
    /// Its virtual service, ipvsadm style: `TCP 10.0.0.100:80`.
    pub service: String,
    /// RIP:port.
    pub address: String,
    /// `"up"` or `"down"` (alive = every checker up).
    pub state: String,
    /// The weight it is scheduled with while up (dynamic or configured).
    pub weight: u32,
    /// `inhibit_on_failure`: kept at weight 0 when down.
    pub inhibit: bool,
    /// Up/down transitions since start.
    pub transitions: u64,
    /// Time of the last transition, if any.
    pub last_transition_ms: Option<u64>,
    /// The reason of the last transition (the checker's log text).
    pub last_reason: Option<String>,
    /// Its checkers, config order (empty: always alive).
    pub checkers: Vec<CheckerReport>,
}

/// One checker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckerReport {
    /// keepalived's name: `TCP_CHECK`, `HTTP_GET`, ...
    pub kind: String,
    /// What it probes: `ip:port` (a script's path for MISC_CHECK, the file
    /// for FILE_CHECK).
    pub target: String,
    /// `"up"`, `"down"`, or `"pending"` before its first result.
    pub state: String,
    /// `"ok"` or the reason of the last failure.
    pub last_result: Option<String>,
    /// Duration of the last probe, microseconds.
    pub latency_us: Option<u64>,
    /// Time of the last result.
    pub last_check_ms: Option<u64>,
    /// Time of the checker's last up/down transition.
    pub last_transition_ms: Option<u64>,
    /// Probes run.
    pub checks: u64,
    /// Probes that failed.
    pub failures: u64,
}

/// One virtual service's quorum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// ipvsadm style: `TCP 10.0.0.100:80`.
    pub service: String,
    /// `quorum`.
    pub quorum: u32,
    /// `hysteresis`.
    pub hysteresis: u32,
    /// Total weight of its live real servers.
    pub live_weight: u64,
    /// Quorum held.
    pub quorum_ok: bool,
    /// The sorry server, if configured.
    pub sorry_server: Option<String>,
    /// Whether the sorry server is in rotation (quorum lost).
    pub sorry_active: bool,
}
