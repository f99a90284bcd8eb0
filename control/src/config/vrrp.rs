//! The VRRP sections of the config, in keepalived's vocabulary:
//! `vrrp_instance`, `vrrp_script` and `vrrp_sync_group`, each a list.
//!
//! Layer: control, config schema (serde only). Names and defaults follow
//! keepalived 2.2's `keepalived.conf(5)`: `state`, `interface`,
//! `virtual_router_id`, `priority`, `advert_int`, `version`,
//! `virtual_ipaddress`, `nopreempt`, `preempt_delay`, `unicast_src_ip`,
//! `unicast_peer`, `authentication`, `track_interface`, `track_script`,
//! `notify_master`/`notify_backup`/`notify_fault`/`notify`,
//! `garp_master_delay`/`garp_master_repeat`/`garp_master_refresh`/
//! `garp_master_refresh_repeat`. fulcrum adds `track_service` (a virtual
//! service's quorum moves the priority, as keepalived users do with a
//! `track_script` around `ipvsadm`) and `split_brain_adverts`. The rules
//! across fields are in `validate/vrrp.rs`.
#![forbid(unsafe_code)]

use serde::Deserialize;

use super::health::Seconds;
use super::types::{Ipv4Str, ProtoName, SocketAddrV4Str};

/// A VRRP instance's initial state (keepalived's `state`), written as a
/// string like the config's other words: `"MASTER"` or `"BACKUP"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialState {
    /// `"MASTER"`: become master at startup (sending an advert at once)
    /// unless a better master is heard; keepalived's `state MASTER`.
    Master,
    /// `"BACKUP"`: start as backup and take over when the master-down
    /// timer expires (RFC 5798 §6.4.1).
    Backup,
}

impl<'de> Deserialize<'de> for InitialState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "MASTER" => Ok(InitialState::Master),
            "BACKUP" => Ok(InitialState::Backup),
            _ => Err(serde::de::Error::custom(format!(
                "invalid state {s:?}: expected \"MASTER\" or \"BACKUP\""
            ))),
        }
    }
}

/// keepalived's `authentication { auth_type PASS auth_pass ... }` (VRRPv2
/// only, RFC 3768 §5.3.6.1): `(auth_type: "PASS", auth_pass: "secret")`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `"PASS"` (simple text password); `"AH"` is refused (RFC 5798
    /// removed it; keepalived deprecates it).
    pub auth_type: String,
    /// 1..=8 bytes of printable ASCII; longer passwords are truncated to 8
    /// by keepalived, and refused here so both ends agree visibly.
    pub auth_pass: String,
}

/// One `track_script` entry of an instance: a `vrrp_script` by name, with
/// an optional weight overriding the script's own.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackScriptRef {
    /// The `vrrp_script`'s `name`.
    pub script: String,
    /// -253..=253; overrides the script's `weight` (keepalived's `weight`
    /// after the script name): negative = added while the script fails,
    /// positive = added while it succeeds, 0 = FAULT while it fails.
    #[serde(default)]
    pub weight: Option<i32>,
}

/// One `track_service` entry: a virtual service whose quorum moves this
/// instance's priority, with `track_script`'s sign rule: a negative
/// `weight` is added while the service is below quorum (its health
/// checkers' `quorum - hysteresis`), a positive one while it has quorum,
/// and weight 0 puts the instance in FAULT while it is below quorum.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackServiceRef {
    /// The service's `vip` (`"10.0.0.100:80"`).
    pub vip: SocketAddrV4Str,
    /// The service's protocol. Default `"tcp"`.
    #[serde(default = "default_tcp")]
    pub proto: ProtoName,
    /// -253..=253 (see above). Default -50.
    #[serde(default = "default_track_service_weight")]
    pub weight: i32,
}

fn default_tcp() -> ProtoName {
    ProtoName(dataplane::snapshot::Proto::Tcp)
}

fn default_track_service_weight() -> i32 {
    -50
}

/// A `vrrp_instance` block.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpInstanceConfig {
    /// The instance's name (keepalived's `vrrp_instance NAME`), 1..=64
    /// bytes of `[A-Za-z0-9_.-]`, unique. Notify scripts get it as `$2`.
    pub name: String,
    /// Initial state: `"MASTER"` or `"BACKUP"`. Default `"BACKUP"`.
    #[serde(default = "default_state")]
    pub state: InitialState,
    /// The port (its `name`) the adverts are sent and heard on.
    pub interface: String,
    /// VRID, 1..=255, the same on every director of the virtual router.
    pub virtual_router_id: u8,
    /// 1..=255; 255 only for the owner of every address (RFC 5798 §5.2.4).
    /// Default 100, as keepalived.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Seconds between adverts. VRRPv2: whole seconds 1..=255; VRRPv3:
    /// 0.01..=40.95 in steps of 0.01 (centiseconds). Default 1.
    #[serde(default = "default_advert_int")]
    pub advert_int: Seconds,
    /// 2 (RFC 3768) or 3 (RFC 5798). Default 2, keepalived's default.
    #[serde(default = "default_version")]
    pub version: u8,
    /// The addresses that follow this instance: VIPs of configured
    /// services (their ARP and their traffic), or floating addresses on the
    /// interface's subnets (a NAT real servers' gateway), which the master
    /// answers ARP and ICMP echo for. 1..=20 addresses.
    pub virtual_ipaddress: Vec<Ipv4Str>,
    /// Do not take over from a lower-priority master (keepalived's
    /// `nopreempt`; needs `state: "BACKUP"`). Default false.
    #[serde(default)]
    pub nopreempt: bool,
    /// Seconds after startup during which a backup does not preempt a
    /// lower-priority master, 0..=1000. Default 0.
    #[serde(default)]
    pub preempt_delay: Seconds,
    /// Source address of the adverts: one of the interface's addresses.
    /// Default: the interface's first address.
    #[serde(default)]
    pub unicast_src_ip: Option<Ipv4Str>,
    /// Send adverts by unicast to these peers instead of to 224.0.0.18.
    /// Default: none (multicast).
    #[serde(default)]
    pub unicast_peer: Vec<Ipv4Str>,
    /// VRRPv2 `PASS` authentication. Default none.
    #[serde(default)]
    pub authentication: Option<AuthConfig>,
    /// Ports whose link going down puts the instance in FAULT.
    #[serde(default)]
    pub track_interface: Vec<String>,
    /// `vrrp_script`s whose failures move the priority (or FAULT, weight 0).
    #[serde(default)]
    pub track_script: Vec<TrackScriptRef>,
    /// Virtual services whose lost quorum moves the priority.
    #[serde(default)]
    pub track_service: Vec<TrackServiceRef>,
    /// Run on entering MASTER (no arguments).
    #[serde(default)]
    pub notify_master: Option<String>,
    /// Run on entering BACKUP.
    #[serde(default)]
    pub notify_backup: Option<String>,
    /// Run on entering FAULT.
    #[serde(default)]
    pub notify_fault: Option<String>,
    /// Run on every transition with keepalived's arguments: `INSTANCE`,
    /// the name, the new state (`MASTER`/`BACKUP`/`FAULT`/`STOP`) and the
    /// priority.
    #[serde(default)]
    pub notify: Option<String>,
    /// Seconds after becoming master before the second round of
    /// gratuitous ARPs, 0..=1000 (0: no second round). Default 5.
    #[serde(default = "default_garp_delay")]
    pub garp_master_delay: Seconds,
    /// Gratuitous ARPs per address in each round, 1..=255. Default 5.
    #[serde(default = "default_garp_repeat")]
    pub garp_master_repeat: u32,
    /// Seconds between refresh rounds while master, 0..=86400 (0: none).
    /// Default 0.
    #[serde(default)]
    pub garp_master_refresh: Seconds,
    /// Gratuitous ARPs per address in each refresh round, 1..=255. Default 1.
    #[serde(default = "default_one")]
    pub garp_master_refresh_repeat: u32,
    /// Adverts from another master, in a row while this instance stays
    /// master (it has the better priority or address), after which the
    /// instance reports split brain: a log line each advert interval, the
    /// `split_brain_events` counter and `split-brain` in `fulcrumctl
    /// --vrrp`. 1..=1000. Default 3.
    #[serde(default = "default_split_brain")]
    pub split_brain_adverts: u32,
}

/// A `vrrp_script` block: a command run every `interval`; `fall`
/// failures in a row mark it failed, `rise` successes mark it good again.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpScriptConfig {
    /// Its name, referred to by `track_script`.
    pub name: String,
    /// The command line (split like a shell would, no shell run), its
    /// program an absolute path; subject to `enable_script_security`.
    pub script: String,
    /// Seconds between runs, 0.01..=86400. Default 1.
    #[serde(default = "default_interval")]
    pub interval: Seconds,
    /// Seconds a run may take before it is killed and counts as a failure.
    /// Default: `interval`.
    #[serde(default)]
    pub timeout: Option<Seconds>,
    /// -253..=253: added to the priority while the script is failed; 0
    /// puts the instance in FAULT. Default 0.
    #[serde(default)]
    pub weight: i32,
    /// Successes in a row to mark it good, 1..=1000. Default 1.
    #[serde(default = "default_one")]
    pub rise: u32,
    /// Failures in a row to mark it failed, 1..=1000. Default 1.
    #[serde(default = "default_one")]
    pub fall: u32,
}

/// A `vrrp_sync_group` block: its instances change state together.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpSyncGroupConfig {
    /// Its name (notify scripts get it as `$2` with `GROUP`).
    pub name: String,
    /// The instances, by name, 2 or more; an instance is in one group at most.
    pub group: Vec<String>,
    /// Run when the group enters MASTER.
    #[serde(default)]
    pub notify_master: Option<String>,
    /// Run when the group enters BACKUP.
    #[serde(default)]
    pub notify_backup: Option<String>,
    /// Run when the group enters FAULT.
    #[serde(default)]
    pub notify_fault: Option<String>,
    /// Run on every group transition with `GROUP`, the name, the state.
    #[serde(default)]
    pub notify: Option<String>,
}

fn default_state() -> InitialState {
    InitialState::Backup
}
fn default_priority() -> u8 {
    100
}
fn default_advert_int() -> Seconds {
    Seconds::secs(1)
}
fn default_version() -> u8 {
    2
}
fn default_garp_delay() -> Seconds {
    Seconds::secs(5)
}
fn default_garp_repeat() -> u32 {
    5
}
fn default_one() -> u32 {
    1
}
fn default_split_brain() -> u32 {
    3
}
fn default_interval() -> Seconds {
    Seconds::secs(1)
}

impl VrrpInstanceConfig {
    /// `advert_int` in milliseconds (rounded to the nearest).
    pub fn advert_int_ms(&self) -> u32 {
        ((self.advert_int.0.as_micros() + 500) / 1000).min(u128::from(u32::MAX)) as u32
    }
}
