//! vrrp_sync_group: instances that change state together (keepalived
//! semantics).
//!
//! Layer: control, pure. [`propagate`] turns one member's state change into
//! orders for the other members; [`sync`] applies them to the machines with
//! [`Machine::force`] and settles the group's FAULT state.
//!
//! Rules (keepalived 2.2 `vrrp_sync.c` behaviour): a member going MASTER
//! pulls the others to MASTER, BACKUP pulls them to BACKUP, FAULT pushes
//! them all to FAULT. Return from FAULT: the group stays FAULT while any
//! member's own tracking is at fault; when the last faulted member
//! recovers (it enters BACKUP, or MASTER if it owns its addresses), every
//! member is ordered to BACKUP with it (to MASTER after an owner) and the
//! normal election follows. Members still in INIT (not started) are left
//! alone.

use super::machine::{Action, Machine, State};

/// One `vrrp_sync_group`.
#[derive(Clone, Debug)]
pub struct SyncGroup {
    /// Group name.
    pub name: String,
    /// Indices into the instance list.
    pub members: Vec<usize>,
}

/// After instance `changed` entered `new_state`, the orders `(member,
/// state)` for the other members of every group holding `changed`, in
/// member order. Only members whose state differs and which are started
/// get an order; a member index outside `states` is skipped. New state INIT
/// (a shutdown) orders nothing.
///
/// `states` gives each instance's current state. That is not enough to
/// know whether a FAULT member is faulted by its own tracking; [`sync`]
/// settles that with the machines themselves.
pub fn propagate(
    groups: &[SyncGroup],
    states: &[State],
    changed: usize,
    new_state: State,
) -> Vec<(usize, State)> {
    let mut orders = Vec::new();
    if new_state == State::Init {
        return orders;
    }
    for g in groups.iter().filter(|g| g.members.contains(&changed)) {
        for &m in &g.members {
            let Some(&s) = states.get(m) else { continue };
            if m == changed || s == State::Init || s == new_state {
                continue;
            }
            if !orders.iter().any(|&(o, _)| o == m) {
                orders.push((m, new_state));
            }
        }
    }
    orders
}

/// Applies instance `changed`'s new state (its current one) to its sync
/// groups: forces the other members per [`propagate`], then, if some
/// member is still faulted by its own tracking (it refused the order), sends
/// the whole group back to FAULT. Returns each forced member's actions, in
/// the order applied (members with no actions are omitted). `now_ms` as
/// for [`Machine`]; an out-of-range `changed` does nothing.
pub fn sync(
    groups: &[SyncGroup],
    machines: &mut [Machine],
    changed: usize,
    now_ms: u64,
) -> Vec<(usize, Vec<Action>)> {
    let mut out = Vec::new();
    let Some(new_state) = machines.get(changed).map(Machine::state) else {
        return out;
    };
    let states: Vec<State> = machines.iter().map(Machine::state).collect();
    for (m, to) in propagate(groups, &states, changed, new_state) {
        let actions = machines[m].force(now_ms, to, "sync group");
        if !actions.is_empty() {
            out.push((m, actions));
        }
    }
    if new_state == State::Fault || new_state == State::Init {
        return out;
    }
    let still_faulted = groups
        .iter()
        .filter(|g| g.members.contains(&changed))
        .flat_map(|g| g.members.iter())
        .any(|&m| {
            machines
                .get(m)
                .is_some_and(|mc| mc.state() == State::Fault && mc.tracking_fault())
        });
    if still_faulted {
        let members: Vec<usize> = groups
            .iter()
            .filter(|g| g.members.contains(&changed))
            .flat_map(|g| g.members.iter().copied())
            .collect();
        for m in members {
            let Some(mc) = machines.get_mut(m) else {
                continue;
            };
            let actions = mc.force(now_ms, State::Fault, "sync group");
            if !actions.is_empty() {
                out.push((m, actions));
            }
        }
    }
    out
}
