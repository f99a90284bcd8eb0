//! One VRRP instance's state machine (keepalived's `vrrp_instance`).
//!
//! Layer: control, pure. No I/O, no clock reads, no threads: every entry
//! point takes `now_ms` (milliseconds on any monotonic clock the driver
//! chooses) and returns the [`Action`]s the driver must perform, in order.
//! The driver owns the sockets, the timer (it sleeps until
//! [`Machine::next_deadline`] and calls [`Machine::on_timer`]), the
//! snapshot publication and the notify scripts.
//!
//! Guarantees: the transitions of RFC 5798 §6.3-6.4 (and RFC 3768 §6.3-6.4
//! for v2), with the keepalived behaviours named on each method; a refused
//! advert ([`Reject`]) changes nothing but its counter; deterministic for a
//! given sequence of calls. Times are integer milliseconds; the skew is
//! rounded down (`(256 - priority) * Master_Adver_Interval / 256`, in ms),
//! so v2 at priority 100 and 1 s gives 609 ms (keepalived computes
//! 609.375 ms in µs) and v3 at 100 ms gives 60 ms.
//!
//! Refuses: nothing at run time; the [`Params`] are trusted to be
//! validated by the config layer (VRID 1..=255, interval > 0, 1..=20
//! addresses). Split brain is reported, never resolved by anything but the
//! RFC's own rules.

use std::collections::BTreeMap;
use std::fmt;

pub use dataplane::wire::vrrp::{Advert, Version};
use dataplane::wire::vrrp::{AUTH_NONE, AUTH_PASS, MAX_ADDRS};

/// State of an instance (RFC 5798 §6.4; Fault is keepalived's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Not started, or shut down (RFC "Initialize").
    Init,
    /// Monitoring the master; owns no address.
    Backup,
    /// Forwarding for the VIPs and advertising.
    Master,
    /// A tracked interface or weight-0 track script failed (keepalived
    /// FAULT): owns no address, sends nothing, ignores adverts.
    Fault,
}

impl fmt::Display for State {
    /// keepalived's words: `INIT`, `BACKUP`, `MASTER`, `FAULT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// One instance's configuration, keepalived's `vrrp_instance` knobs.
#[derive(Clone, Debug)]
pub struct Params {
    /// Instance name (keepalived's `vrrp_instance NAME`).
    pub name: String,
    /// `version` 2 or 3.
    pub version: Version,
    /// `virtual_router_id`, 1..=255.
    pub vrid: u8,
    /// Configured base `priority`, 1..=255 (255 = address owner).
    pub priority: u8,
    /// `advert_int` in ms (v2: a multiple of 1000; v3: a multiple of 10,
    /// at most 40950).
    pub advert_int_ms: u32,
    /// `!nopreempt`: a backup takes over from a lower-priority master.
    pub preempt: bool,
    /// `preempt_delay` in ms: after startup, or after first seeing a
    /// lower-priority master, a backup waits this long before preempting.
    pub preempt_delay_ms: u32,
    /// keepalived `state MASTER`: at startup go straight to master.
    pub start_master: bool,
    /// Our source address, host order: the tie-break and "own advert".
    pub primary_ip: u32,
    /// `virtual_ipaddress`, host order.
    pub addrs: Vec<u32>,
    /// v2 `auth_type PASS` / `auth_pass`, NUL padded to 8 bytes.
    pub auth_pass: Option<[u8; 8]>,
    /// Consecutive adverts from another master while we stay master after
    /// which split brain is declared (default 3; 0 disables detection).
    pub split_brain_adverts: u32,
}

/// What the driver must do, in the order returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one advert now with this priority (0 on shutdown/release,
    /// RFC 5798 §6.4.3 "Shutdown" event).
    SendAdvert {
        /// Priority field of the advert (build it with [`Machine::advert`]).
        priority: u8,
    },
    /// Entered MASTER: take the addresses (publish ownership, gratuitous
    /// ARPs, notify_master).
    BecomeMaster,
    /// Entered BACKUP (from INIT, MASTER or FAULT): release addresses,
    /// notify_backup.
    BecomeBackup,
    /// Entered FAULT: release addresses, notify_fault.
    BecomeFault,
    /// Entered INIT on [`Machine::shutdown`]: release addresses
    /// (keepalived's notify_stop). Added to the agreed API.
    Stopped,
    /// Split brain detected (true) or cleared (false).
    SplitBrain(bool),
}

/// Why an advert was refused without changing state; each is one counter
/// in [`Stats::rejected`] under [`Reject::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// VRID differs from ours (RFC 5798 §7.1: MUST discard; another
    /// virtual router on the segment).
    VridMismatch,
    /// Version differs from ours.
    VersionMismatch,
    /// v2 auth type or PASS password differs (RFC 3768 §7.1; keepalived
    /// `authtype_mismatch` / `auth_failure`).
    AuthMismatch,
    /// v2 advert interval differs from ours (RFC 3768 §7.1 MUST; keepalived
    /// "advertisement interval mismatch", dropped).
    IntervalMismatch,
    /// Address count or list differs from ours. RFC 3768/5798 §7.1 only
    /// say MAY; keepalived 2.2 discards such adverts ("ip address associated
    /// with VRID not present in MASTER advert", `addr_list_err`), in every
    /// state, so we do too.
    AddrMismatch,
    /// Source is our own `primary_ip` (multicast loopback).
    OwnAdvert,
}

impl Reject {
    /// Stable snake_case counter label.
    pub const fn name(self) -> &'static str {
        match self {
            Reject::VridMismatch => "vrid_mismatch",
            Reject::VersionMismatch => "version_mismatch",
            Reject::AuthMismatch => "auth_mismatch",
            Reject::IntervalMismatch => "interval_mismatch",
            Reject::AddrMismatch => "addr_mismatch",
            Reject::OwnAdvert => "own_advert",
        }
    }
}

/// Counters of one instance (monotonic since [`Machine::new`]).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Stats {
    /// Adverts the machine asked to send (any priority).
    pub adverts_sent: u64,
    /// Adverts accepted (after the [`Reject`] checks).
    pub adverts_received: u64,
    /// Entries into MASTER.
    pub became_master: u64,
    /// Exits from MASTER (to any state).
    pub released_master: u64,
    /// Accepted adverts with priority 0.
    pub priority_zero_received: u64,
    /// Priority-0 adverts asked for (shutdown, fault).
    pub priority_zero_sent: u64,
    /// Times split brain was declared.
    pub split_brain_events: u64,
    /// Refused adverts by [`Reject::name`].
    pub rejected: BTreeMap<&'static str, u64>,
}

/// One VRRP instance. See the module doc.
#[derive(Clone, Debug)]
pub struct Machine {
    p: Params,
    state: State,
    /// Own tracking says FAULT (track_interface down / weight-0 script).
    track_fault: bool,
    /// In FAULT because the sync group ordered it.
    group_fault: bool,
    /// Sum of track weights applying now.
    delta: i32,
    master_adver_int_ms: u32,
    adver_deadline: Option<u64>,
    down_deadline: Option<u64>,
    master_ip: Option<u32>,
    /// preempt_delay: until this time a lower master is not preempted.
    preempt_until: Option<u64>,
    /// A lower master's advert was discarded since the down timer's reset.
    discarded_lower: bool,
    other_master_run: u32,
    other_master_last_ms: Option<u64>,
    split_brain: bool,
    last_transition: Option<(u64, State, State, &'static str)>,
    stats: Stats,
}

impl Machine {
    /// A machine in [`State::Init`] with no timers; nothing happens until
    /// [`Self::start`].
    pub fn new(p: Params) -> Machine {
        Machine {
            master_adver_int_ms: p.advert_int_ms,
            p,
            state: State::Init,
            track_fault: false,
            group_fault: false,
            delta: 0,
            adver_deadline: None,
            down_deadline: None,
            master_ip: None,
            preempt_until: None,
            discarded_lower: false,
            other_master_run: 0,
            other_master_last_ms: None,
            split_brain: false,
            last_transition: None,
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn params(&self) -> &Params {
        &self.p
    }

    /// Startup event (RFC 5798 §6.4.1): priority 255 (owner) or keepalived
    /// `state MASTER` → MASTER at once (advert + BecomeMaster); otherwise
    /// BACKUP with Master_Down_Timer = Master_Down_Interval. A tracking
    /// fault set before start goes to FAULT. No-op unless in INIT.
    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state != State::Init {
            return out;
        }
        self.preempt_until =
            (self.p.preempt_delay_ms > 0).then(|| now_ms + u64::from(self.p.preempt_delay_ms));
        if self.track_fault {
            self.enter(now_ms, State::Fault, "tracking fault", &mut out);
        } else if self.p.priority == 255 {
            self.enter(now_ms, State::Master, "startup as owner", &mut out);
        } else if self.p.start_master {
            self.enter(now_ms, State::Master, "startup in state MASTER", &mut out);
        } else {
            self.enter(now_ms, State::Backup, "startup", &mut out);
        }
        out
    }

    /// Shutdown event (RFC 5798 §6.4.2/§6.4.3): a master sends a priority-0
    /// advert so a backup takes over after Skew_Time; every state goes to
    /// INIT ([`Action::Stopped`]). No-op in INIT.
    pub fn shutdown(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Init {
            return out;
        }
        if self.state == State::Master {
            self.send(0, &mut out);
        }
        self.enter(now_ms, State::Init, "shutdown", &mut out);
        out
    }

    /// An advert from `src` (host order) arrived (RFC 5798 §6.4.2 Backup,
    /// §6.4.3 Master; ignored in INIT and FAULT after the checks).
    ///
    /// # Errors
    /// A [`Reject`], checked in the order own advert, VRID, version,
    /// authentication (v2), interval (v2), addresses; it is counted and
    /// nothing else changes.
    pub fn on_advert(
        &mut self,
        now_ms: u64,
        src: u32,
        adv: &Advert,
    ) -> Result<Vec<Action>, Reject> {
        if let Err(r) = self.check(src, adv) {
            *self.stats.rejected.entry(r.name()).or_insert(0) += 1;
            return Err(r);
        }
        self.stats.adverts_received += 1;
        if adv.priority == 0 {
            self.stats.priority_zero_received += 1;
        }
        let mut out = Vec::new();
        match self.state {
            State::Init | State::Fault => {}
            State::Backup => self.backup_advert(now_ms, src, adv),
            State::Master => self.master_advert(now_ms, src, adv, &mut out),
        }
        Ok(out)
    }

    /// Fires whichever timer has expired at `now_ms`: BACKUP's
    /// Master_Down_Timer → MASTER; MASTER's Adver_Timer → an advert (and
    /// the split-brain clear check). Calling it early is harmless.
    pub fn on_timer(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Backup if self.down_deadline.is_some_and(|d| now_ms >= d) => {
                let reason = if self.discarded_lower {
                    "preempted lower priority master"
                } else {
                    "master down timer expired"
                };
                self.enter(now_ms, State::Master, reason, &mut out);
            }
            State::Master if self.adver_deadline.is_some_and(|d| now_ms >= d) => {
                self.send(self.effective_priority(), &mut out);
                self.adver_deadline = Some(now_ms + u64::from(self.p.advert_int_ms));
                let quiet = self.other_master_last_ms.is_none_or(|t| {
                    now_ms.saturating_sub(t) >= 3 * u64::from(self.p.advert_int_ms)
                });
                if quiet {
                    self.other_master_run = 0;
                    if self.split_brain {
                        self.split_brain = false;
                        out.push(Action::SplitBrain(false));
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// The earliest pending timer in ms: the Master_Down_Timer in BACKUP,
    /// the Adver_Timer in MASTER, `None` in INIT and FAULT.
    pub fn next_deadline(&self) -> Option<u64> {
        match self.state {
            State::Backup => self.down_deadline,
            State::Master => self.adver_deadline,
            State::Init | State::Fault => None,
        }
    }

    /// track_interface / track_script results: `fault` true = some tracked
    /// interface is down or a weight-0 track script failed (keepalived:
    /// instance goes FAULT); `delta` = sum of track weights now applying
    /// (keepalived: priority + delta clamped to 1..=254; an owner (255) is
    /// never changed).
    ///
    /// Entering FAULT from MASTER sends a priority-0 advert first (as on
    /// shutdown) so the peer takes over after Skew_Time. Leaving FAULT
    /// happens only on this instance's own fault clearing (a FAULT ordered
    /// by the sync group waits for the group): to MASTER for an owner,
    /// else BACKUP. A master whose effective priority changes advertises
    /// it at once. Before [`Self::start`] the values are only stored.
    pub fn set_tracking(&mut self, now_ms: u64, fault: bool, delta: i32) -> Vec<Action> {
        let mut out = Vec::new();
        let old_prio = self.effective_priority();
        let was_fault = self.track_fault;
        self.track_fault = fault;
        self.delta = delta;
        let prio = self.effective_priority();
        match self.state {
            State::Init => {}
            State::Fault if was_fault && !fault => {
                self.group_fault = false;
                let to = if prio == 255 {
                    State::Master
                } else {
                    State::Backup
                };
                self.enter(now_ms, to, "tracking recovered", &mut out);
            }
            State::Fault => {}
            _ if fault => self.fault_from(now_ms, "tracking fault", &mut out),
            State::Master if prio != old_prio => {
                self.send(prio, &mut out);
                self.adver_deadline = Some(now_ms + u64::from(self.p.advert_int_ms));
            }
            _ => {}
        }
        out
    }

    /// Sync-group order (see `group::sync`): go to `to` now as a member of
    /// a vrrp_sync_group. MASTER: advert + BecomeMaster; BACKUP: release
    /// and start the Master_Down_Timer; FAULT: as a tracking fault. Orders
    /// to MASTER or BACKUP are refused (empty result) while this instance's
    /// own tracking is at fault; orders in INIT, to INIT, or to the current
    /// state do nothing. `reason` is recorded in [`Self::last_transition`].
    pub fn force(&mut self, now_ms: u64, to: State, reason: &'static str) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Init || to == State::Init {
            return out;
        }
        if to == State::Fault {
            self.group_fault = true;
            if self.state != State::Fault {
                self.fault_from(now_ms, reason, &mut out);
            }
            return out;
        }
        if self.track_fault {
            return out;
        }
        self.group_fault = false;
        self.enter(now_ms, to, reason, &mut out);
        out
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// This instance's own tracking says FAULT (as last given to
    /// [`Self::set_tracking`]).
    pub fn tracking_fault(&self) -> bool {
        self.track_fault
    }

    /// Priority in use: 255 for an owner, else `priority + delta` clamped
    /// to 1..=254 (keepalived's effective_priority).
    pub fn effective_priority(&self) -> u8 {
        if self.p.priority == 255 {
            return 255;
        }
        (i64::from(self.p.priority) + i64::from(self.delta)).clamp(1, 254) as u8
    }

    /// Current master's address, host order: ours in MASTER, the last
    /// advert's source in BACKUP (None until one is heard), None otherwise.
    pub fn master_ip(&self) -> Option<u32> {
        match self.state {
            State::Master => Some(self.p.primary_ip),
            State::Backup => self.master_ip,
            State::Init | State::Fault => None,
        }
    }

    /// Master_Adver_Interval in ms: v3 learns it from the master's accepted
    /// adverts (RFC 5798 §6.4.2); v2 and MASTER use our own advert_int.
    pub fn master_adver_int_ms(&self) -> u32 {
        self.master_adver_int_ms
    }

    /// Master_Down_Interval in ms: `3 * Master_Adver_Interval + Skew_Time`
    /// (RFC 5798 §6.1, RFC 3768 §6.1).
    pub fn master_down_ms(&self) -> u32 {
        self.master_adver_int_ms
            .saturating_mul(3)
            .saturating_add(self.skew_ms())
    }

    /// Skew_Time in ms, `(256 - priority) * Master_Adver_Interval / 256`
    /// rounded down, with the effective priority (RFC 5798 §6.1; v2's
    /// `(256 - priority) / 256` s is the same with a 1000 ms interval).
    pub fn skew_ms(&self) -> u32 {
        let skew = (256 - u64::from(self.effective_priority()))
            * u64::from(self.master_adver_int_ms)
            / 256;
        skew as u32
    }

    /// The last state change: (time ms, from, to, reason).
    pub fn last_transition(&self) -> Option<(u64, State, State, &'static str)> {
        self.last_transition
    }

    /// Split brain is currently declared.
    pub fn split_brain(&self) -> bool {
        self.split_brain
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The advert this instance sends now with `priority`, for the driver
    /// to `build`: our VRID, version, interval (v2 whole seconds, v3
    /// centiseconds, from advert_int_ms / 10), v2 PASS data, and the first
    /// [`MAX_ADDRS`] addresses.
    pub fn advert(&self, priority: u8) -> Advert {
        let mut addrs = [0u32; MAX_ADDRS];
        let count = self.p.addrs.len().min(MAX_ADDRS);
        addrs[..count].copy_from_slice(&self.p.addrs[..count]);
        let (auth_type, auth_data) = match (self.p.version, self.p.auth_pass) {
            (Version::V2, Some(pw)) => (AUTH_PASS, pw),
            _ => (AUTH_NONE, [0; 8]),
        };
        Advert {
            version: self.p.version,
            vrid: self.p.vrid,
            priority,
            advert_int_cs: u16::try_from(self.p.advert_int_ms / 10).unwrap_or(u16::MAX),
            auth_type,
            auth_data,
            count: count as u8,
            addrs,
        }
    }

    fn check(&self, src: u32, adv: &Advert) -> Result<(), Reject> {
        if src == self.p.primary_ip {
            return Err(Reject::OwnAdvert);
        }
        if adv.vrid != self.p.vrid {
            return Err(Reject::VridMismatch);
        }
        if adv.version != self.p.version {
            return Err(Reject::VersionMismatch);
        }
        if self.p.version == Version::V2 {
            let auth_ok = match self.p.auth_pass {
                Some(pw) => adv.auth_type == AUTH_PASS && adv.auth_data == pw,
                None => adv.auth_type == AUTH_NONE,
            };
            if !auth_ok {
                return Err(Reject::AuthMismatch);
            }
            if u32::from(adv.advert_int_cs) * 10 != self.p.advert_int_ms {
                return Err(Reject::IntervalMismatch);
            }
        }
        let theirs = adv.addrs();
        if theirs.len() != self.p.addrs.len() || !self.p.addrs.iter().all(|a| theirs.contains(a)) {
            return Err(Reject::AddrMismatch);
        }
        Ok(())
    }

    /// RFC 5798 §6.4.2 "If an ADVERTISEMENT is received".
    fn backup_advert(&mut self, now_ms: u64, src: u32, adv: &Advert) {
        self.master_ip = Some(src);
        if adv.priority == 0 {
            self.down_deadline = Some(now_ms + u64::from(self.skew_ms()));
            return;
        }
        let ours = self.effective_priority();
        if adv.priority > ours {
            // keepalived: a higher master restarts the preempt_delay count.
            self.preempt_until = None;
        }
        let mut delayed = false;
        if self.p.preempt && adv.priority < ours && self.p.preempt_delay_ms > 0 {
            let until = *self
                .preempt_until
                .get_or_insert(now_ms + u64::from(self.p.preempt_delay_ms));
            delayed = now_ms < until;
        }
        if !self.p.preempt || adv.priority >= ours || delayed {
            if self.p.version == Version::V3 {
                self.master_adver_int_ms = u32::from(adv.advert_int_cs) * 10;
            }
            self.down_deadline = Some(now_ms + u64::from(self.master_down_ms()));
            self.discarded_lower = false;
        } else {
            self.discarded_lower = true;
        }
    }

    /// RFC 5798 §6.4.3 "If an ADVERTISEMENT is received", plus split-brain
    /// counting of the adverts we ignore.
    fn master_advert(&mut self, now_ms: u64, src: u32, adv: &Advert, out: &mut Vec<Action>) {
        let ours = self.effective_priority();
        if adv.priority == 0 {
            self.send(ours, out);
            self.adver_deadline = Some(now_ms + u64::from(self.p.advert_int_ms));
            return;
        }
        let reason = if adv.priority > ours {
            "higher priority advert"
        } else if adv.priority == ours && src > self.p.primary_ip {
            "equal priority, higher address"
        } else {
            self.count_other_master(now_ms, out);
            return;
        };
        self.enter(now_ms, State::Backup, reason, out);
        if self.p.version == Version::V3 {
            self.master_adver_int_ms = u32::from(adv.advert_int_cs) * 10;
        }
        self.down_deadline = Some(now_ms + u64::from(self.master_down_ms()));
        self.master_ip = Some(src);
    }

    fn count_other_master(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let window = 3 * u64::from(self.p.advert_int_ms);
        if self
            .other_master_last_ms
            .is_some_and(|t| now_ms.saturating_sub(t) > window)
        {
            self.other_master_run = 0;
        }
        self.other_master_run = self.other_master_run.saturating_add(1);
        self.other_master_last_ms = Some(now_ms);
        let n = self.p.split_brain_adverts;
        if n > 0 && !self.split_brain && self.other_master_run >= n {
            self.split_brain = true;
            self.stats.split_brain_events += 1;
            out.push(Action::SplitBrain(true));
        }
    }

    /// To FAULT from BACKUP or MASTER; a master releases with priority 0.
    fn fault_from(&mut self, now_ms: u64, reason: &'static str, out: &mut Vec<Action>) {
        if self.state == State::Master {
            self.send(0, out);
        }
        self.enter(now_ms, State::Fault, reason, out);
    }

    fn send(&mut self, priority: u8, out: &mut Vec<Action>) {
        self.stats.adverts_sent += 1;
        if priority == 0 {
            self.stats.priority_zero_sent += 1;
        }
        out.push(Action::SendAdvert { priority });
    }

    /// The one place a state changes: leaves the old state (timers, split
    /// brain), records the transition, enters the new one.
    fn enter(&mut self, now_ms: u64, to: State, reason: &'static str, out: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        if from == State::Master {
            self.stats.released_master += 1;
            self.other_master_run = 0;
            self.other_master_last_ms = None;
            if self.split_brain {
                self.split_brain = false;
                out.push(Action::SplitBrain(false));
            }
        }
        self.state = to;
        self.last_transition = Some((now_ms, from, to, reason));
        self.adver_deadline = None;
        self.down_deadline = None;
        self.discarded_lower = false;
        self.master_adver_int_ms = self.p.advert_int_ms;
        match to {
            State::Master => {
                self.send(self.effective_priority(), out);
                out.push(Action::BecomeMaster);
                self.stats.became_master += 1;
                self.adver_deadline = Some(now_ms + u64::from(self.p.advert_int_ms));
            }
            State::Backup => {
                out.push(Action::BecomeBackup);
                self.master_ip = None;
                self.down_deadline = Some(now_ms + u64::from(self.master_down_ms()));
            }
            State::Fault => out.push(Action::BecomeFault),
            State::Init => out.push(Action::Stopped),
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
pub(crate) mod tests;
