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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::machine::tests::{from_peer, v2, HIGHER};
    use Action::{BecomeBackup, BecomeFault, BecomeMaster, SendAdvert};

    #[test]
    fn test_propagate_orders() {
        let groups = [SyncGroup {
            name: "G".into(),
            members: vec![0, 1, 2],
        }];
        let s = [State::Master, State::Backup, State::Init, State::Backup];
        assert_eq!(
            propagate(&groups, &s, 0, State::Master),
            [(1, State::Master)]
        );
        let s = [State::Fault, State::Master, State::Backup, State::Master];
        assert_eq!(
            propagate(&groups, &s, 0, State::Fault),
            [(1, State::Fault), (2, State::Fault)]
        );
        assert_eq!(
            propagate(&groups, &s, 3, State::Backup),
            [],
            "3 is in no group"
        );
        assert_eq!(propagate(&groups, &s, 0, State::Init), []);
    }

    #[test]
    fn test_sync_group_propagation_and_fault() {
        let groups = [SyncGroup {
            name: "G".into(),
            members: vec![0, 1, 2],
        }];
        let mut ms: Vec<Machine> = (0..3).map(|_| v2(100)).collect();
        for m in &mut ms {
            m.start(0);
        }
        // 0 takes over: all follow to MASTER.
        assert_eq!(
            ms[0].on_timer(3609),
            [SendAdvert { priority: 100 }, BecomeMaster]
        );
        let out = sync(&groups, &mut ms, 0, 3609);
        let both = vec![SendAdvert { priority: 100 }, BecomeMaster];
        assert_eq!(out, [(1, both.clone()), (2, both)]);
        assert_eq!(
            ms[2].last_transition(),
            Some((3609, State::Backup, State::Master, "sync group"))
        );
        // 1 hears a higher master: all go BACKUP.
        let adv = from_peer(&ms[1], 200);
        ms[1].on_advert(4000, HIGHER, &adv).unwrap();
        let out = sync(&groups, &mut ms, 1, 4000);
        assert_eq!(out, [(0, vec![BecomeBackup]), (2, vec![BecomeBackup])]);
        // 0 faults: all to FAULT. Then 2 faults on its own too.
        ms[0].set_tracking(5000, true, 0);
        assert_eq!(
            sync(&groups, &mut ms, 0, 5000),
            [(1, vec![BecomeFault]), (2, vec![BecomeFault])]
        );
        assert_eq!(ms[2].set_tracking(5100, true, 0), []);
        // A forced member does not leave FAULT on its own tracking's good news.
        assert_eq!(ms[1].set_tracking(5200, false, 0), []);
        // 0 recovers, but 2 is still faulted: the group stays in FAULT.
        assert_eq!(ms[0].set_tracking(6000, false, 0), [BecomeBackup]);
        let out = sync(&groups, &mut ms, 0, 6000);
        assert_eq!(
            out,
            [
                (1, vec![BecomeBackup]),
                (0, vec![BecomeFault]),
                (1, vec![BecomeFault])
            ]
        );
        assert!(ms.iter().all(|m| m.state() == State::Fault));
        // 2 recovers: no member is faulted any more, all go BACKUP.
        assert_eq!(ms[2].set_tracking(7000, false, 0), [BecomeBackup]);
        let out = sync(&groups, &mut ms, 2, 7000);
        assert_eq!(out, [(0, vec![BecomeBackup]), (1, vec![BecomeBackup])]);
        assert!(ms.iter().all(|m| m.state() == State::Backup));
        assert!(ms.iter().all(|m| m.next_deadline() == Some(7000 + 3609)));
    }
}
