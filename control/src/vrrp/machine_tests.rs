//! Unit tests of `vrrp::machine` on a virtual clock (times in ms, all
//! exact); `group`'s tests reuse its helpers.

use super::*;
use Action::{BecomeBackup, BecomeFault, BecomeMaster, SendAdvert, SplitBrain, Stopped};

const OURS: u32 = 0x0a00_0005; // 10.0.0.5
pub(crate) const HIGHER: u32 = 0x0a00_0009; // a peer with a higher address
const LOWER: u32 = 0x0a00_0003; // a peer with a lower address
const VIP: u32 = 0x0a00_0064;
const PASS: [u8; 8] = *b"secret\0\0";

fn params(version: Version, priority: u8, advert_int_ms: u32) -> Params {
    Params {
        name: "VI_1".into(),
        version,
        vrid: 51,
        priority,
        advert_int_ms,
        preempt: true,
        preempt_delay_ms: 0,
        start_master: false,
        primary_ip: OURS,
        addrs: vec![VIP],
        auth_pass: (version == Version::V2).then_some(PASS),
        split_brain_adverts: 3,
    }
}

pub(crate) fn v2(priority: u8) -> Machine {
    Machine::new(params(Version::V2, priority, 1000))
}

/// A v2 machine already in MASTER (keepalived `state MASTER`) at t=0.
fn v2_master(priority: u8) -> Machine {
    let mut m = Machine::new(Params {
        start_master: true,
        ..params(Version::V2, priority, 1000)
    });
    assert_eq!(m.start(0), [SendAdvert { priority }, BecomeMaster]);
    m
}

/// The advert a peer configured like `m` sends with `priority`.
pub(crate) fn from_peer(m: &Machine, priority: u8) -> Advert {
    m.advert(priority)
}

/// Everything a refused advert must leave unchanged.
fn snapshot(m: &Machine) -> impl PartialEq + std::fmt::Debug {
    (
        m.state(),
        m.next_deadline(),
        m.master_ip(),
        m.master_adver_int_ms(),
        m.last_transition(),
        m.split_brain(),
        m.effective_priority(),
        m.stats().adverts_received,
        m.stats().adverts_sent,
    )
}

#[test]
fn test_skew_and_master_down() {
    let m = v2(100);
    assert_eq!((m.skew_ms(), m.master_down_ms()), (609, 3609));
    let m = Machine::new(params(Version::V3, 100, 100));
    assert_eq!((m.skew_ms(), m.master_down_ms()), (60, 360));
    assert_eq!(
        (v2(255).skew_ms(), v2(1).skew_ms(), v2(254).skew_ms()),
        (3, 996, 7)
    );
}

#[test]
fn test_names_display_serde() {
    let states = [State::Init, State::Backup, State::Master, State::Fault];
    let shown: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    assert_eq!(shown, ["INIT", "BACKUP", "MASTER", "FAULT"]);
    assert_eq!(
        serde_json::to_string(&states).unwrap(),
        r#"["INIT","BACKUP","MASTER","FAULT"]"#
    );
    let rejects = [
        Reject::VridMismatch,
        Reject::VersionMismatch,
        Reject::AuthMismatch,
        Reject::IntervalMismatch,
        Reject::AddrMismatch,
        Reject::OwnAdvert,
    ];
    let names: Vec<_> = rejects.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "vrid_mismatch",
            "version_mismatch",
            "auth_mismatch",
            "interval_mismatch",
            "addr_mismatch",
            "own_advert"
        ]
    );
}

#[test]
fn test_advert_fields() {
    let a = v2(100).advert(100);
    assert_eq!(
        (a.version, a.vrid, a.priority, a.advert_int_cs),
        (Version::V2, 51, 100, 100)
    );
    assert_eq!((a.auth_type, a.auth_data, a.addrs()), (1, PASS, &[VIP][..]));
    let a = Machine::new(params(Version::V3, 100, 250)).advert(0);
    assert_eq!(
        (a.version, a.priority, a.advert_int_cs, a.auth_type),
        (Version::V3, 0, 25, 0)
    );
    let mut buf = [0u8; 64];
    assert_eq!(
        dataplane::wire::vrrp::build(&a, OURS, 0xe000_0012, &mut buf),
        Ok(12)
    );
}

#[test]
fn test_startup_transitions() {
    let mut m = v2(100);
    assert_eq!((m.state(), m.next_deadline()), (State::Init, None));
    assert_eq!(m.start(1000), [BecomeBackup]);
    assert_eq!(m.next_deadline(), Some(4609));
    assert_eq!(
        m.last_transition(),
        Some((1000, State::Init, State::Backup, "startup"))
    );
    assert_eq!(m.master_ip(), None);
    assert_eq!(m.start(1001), [], "start twice is a no-op");

    let mut owner = v2(255);
    assert_eq!(
        owner.start(1000),
        [SendAdvert { priority: 255 }, BecomeMaster]
    );
    assert_eq!(
        (owner.state(), owner.next_deadline()),
        (State::Master, Some(2000))
    );
    assert_eq!(owner.last_transition().unwrap().3, "startup as owner");
    assert_eq!(owner.master_ip(), Some(OURS));

    let m = v2_master(100);
    assert_eq!(
        m.last_transition(),
        Some((0, State::Init, State::Master, "startup in state MASTER"))
    );
    assert_eq!((m.stats().became_master, m.stats().adverts_sent), (1, 1));
}

#[test]
fn test_backup_to_master_after_exactly_master_down() {
    let mut m = v2(100);
    m.start(0);
    assert_eq!(m.on_timer(3608), []);
    assert_eq!(m.state(), State::Backup);
    assert_eq!(
        m.on_timer(3609),
        [SendAdvert { priority: 100 }, BecomeMaster]
    );
    assert_eq!(
        m.last_transition(),
        Some((
            3609,
            State::Backup,
            State::Master,
            "master down timer expired"
        ))
    );
    assert_eq!(m.next_deadline(), Some(4609));
    assert_eq!(m.on_timer(4609), [SendAdvert { priority: 100 }]);
    assert_eq!(m.next_deadline(), Some(5609));
    assert_eq!(m.stats().adverts_sent, 2);
}

#[test]
fn test_backup_advert_resets_down_timer() {
    let mut m = v2(100);
    m.start(0);
    let adv = from_peer(&m, 150);
    assert_eq!(m.on_advert(2000, HIGHER, &adv), Ok(vec![]));
    assert_eq!(m.next_deadline(), Some(5609));
    assert_eq!(m.master_ip(), Some(HIGHER));
    assert_eq!(m.on_timer(5608), []);
    assert_eq!(m.stats().adverts_received, 1);
}

#[test]
fn test_backup_priority_zero_sets_skew() {
    let mut m = v2(100);
    m.start(0);
    m.on_advert(1000, HIGHER, &from_peer(&m, 200)).unwrap();
    assert_eq!(m.on_advert(1500, HIGHER, &from_peer(&m, 0)), Ok(vec![]));
    assert_eq!(m.next_deadline(), Some(2109));
    assert_eq!(m.on_timer(2108), []);
    assert_eq!(
        m.on_timer(2109),
        [SendAdvert { priority: 100 }, BecomeMaster]
    );
    assert_eq!(m.stats().priority_zero_received, 1);
}

#[test]
fn test_master_to_backup_on_higher_priority() {
    let mut m = v2_master(100);
    let adv = from_peer(&m, 150);
    assert_eq!(m.on_advert(500, LOWER, &adv), Ok(vec![BecomeBackup]));
    assert_eq!(
        m.last_transition(),
        Some((500, State::Master, State::Backup, "higher priority advert"))
    );
    assert_eq!(
        (m.next_deadline(), m.master_ip()),
        (Some(4109), Some(LOWER))
    );
    assert_eq!(m.stats().released_master, 1);
}

#[test]
fn test_master_equal_priority_tie_break() {
    let mut m = v2_master(100);
    let adv = from_peer(&m, 100);
    assert_eq!(
        m.on_advert(300, LOWER, &adv),
        Ok(vec![]),
        "lower address: we stay"
    );
    assert_eq!((m.state(), m.next_deadline()), (State::Master, Some(1000)));
    assert_eq!(m.on_advert(400, HIGHER, &adv), Ok(vec![BecomeBackup]));
    assert_eq!(
        m.last_transition().unwrap().3,
        "equal priority, higher address"
    );
    assert_eq!(m.next_deadline(), Some(4009));
}

#[test]
fn test_master_ignores_lower_and_answers_priority_zero() {
    let mut m = v2_master(100);
    assert_eq!(m.on_advert(200, HIGHER, &from_peer(&m, 50)), Ok(vec![]));
    assert_eq!((m.state(), m.next_deadline()), (State::Master, Some(1000)));
    assert_eq!(
        m.on_advert(300, HIGHER, &from_peer(&m, 0)),
        Ok(vec![SendAdvert { priority: 100 }])
    );
    assert_eq!(m.next_deadline(), Some(1300));
    assert_eq!(m.state(), State::Master);
}

#[test]
fn test_shutdown() {
    let mut m = v2_master(100);
    assert_eq!(m.shutdown(700), [SendAdvert { priority: 0 }, Stopped]);
    assert_eq!(
        (m.state(), m.next_deadline(), m.master_ip()),
        (State::Init, None, None)
    );
    assert_eq!(
        m.last_transition(),
        Some((700, State::Master, State::Init, "shutdown"))
    );
    assert_eq!(
        (m.stats().priority_zero_sent, m.stats().released_master),
        (1, 1)
    );
    assert_eq!(m.shutdown(800), []);
    let mut b = v2(100);
    b.start(0);
    assert_eq!(b.shutdown(10), [Stopped]);
    assert_eq!(b.stats().priority_zero_sent, 0);
}

/// Drives a backup with a master sending `prio` adverts every second from
/// t=1000; returns the first time it became master (or None by `until`).
fn run_lower_master(m: &mut Machine, prio: u8, until: u64) -> Option<u64> {
    let adv = from_peer(m, prio);
    for t in 1..=until {
        if !m.on_timer(t).is_empty() && m.state() == State::Master {
            return Some(t);
        }
        if t % 1000 == 0 {
            m.on_advert(t, LOWER, &adv).unwrap();
        }
    }
    None
}

#[test]
fn test_preempt_nopreempt_preempt_delay() {
    // preempt: lower adverts are discarded, the timer from start runs out:
    // 3 * 1000 + (56 * 1000 / 256 = 218).
    let mut m = v2(200);
    m.start(0);
    assert_eq!(run_lower_master(&mut m, 100, 20_000), Some(3218));
    assert_eq!(
        m.last_transition().unwrap().3,
        "preempted lower priority master"
    );

    // nopreempt: a lower master keeps resetting the timer.
    let mut m = Machine::new(Params {
        preempt: false,
        ..params(Version::V2, 200, 1000)
    });
    m.start(0);
    assert_eq!(run_lower_master(&mut m, 100, 20_000), None);
    assert_eq!(m.next_deadline(), Some(20_000 + 3218));

    // preempt_delay 10 s after start: adverts before t=10000 are accepted
    // (last at 9000), later ones discarded: takeover at 9000 + 3218.
    let mut m = Machine::new(Params {
        preempt_delay_ms: 10_000,
        ..params(Version::V2, 200, 1000)
    });
    m.start(0);
    assert_eq!(run_lower_master(&mut m, 100, 20_000), Some(12_218));
    assert_eq!(
        m.last_transition().unwrap().3,
        "preempted lower priority master"
    );
}

#[test]
fn test_preempt_delay_restarts_after_higher_master() {
    // keepalived: "after startup or seeing a lower priority master".
    let mut m = Machine::new(Params {
        preempt_delay_ms: 5000,
        ..params(Version::V2, 200, 1000)
    });
    m.start(0);
    for t in (1000..=7000).step_by(1000) {
        m.on_advert(t, LOWER, &from_peer(&m, 250)).unwrap(); // higher: clears the delay
    }
    m.on_advert(8000, LOWER, &from_peer(&m, 100)).unwrap(); // lower: delay until 13000
    assert_eq!(m.next_deadline(), Some(8000 + 3218));
    m.on_advert(12_000, LOWER, &from_peer(&m, 100)).unwrap();
    assert_eq!(m.next_deadline(), Some(12_000 + 3218));
    m.on_advert(13_000, LOWER, &from_peer(&m, 100)).unwrap(); // discarded
    assert_eq!(m.next_deadline(), Some(12_000 + 3218));
}

#[test]
fn test_v3_learns_master_interval() {
    let mut m = Machine::new(params(Version::V3, 100, 100));
    m.start(0);
    assert_eq!(m.next_deadline(), Some(360));
    let mut adv = from_peer(&m, 150);
    adv.advert_int_cs = 50; // the master advertises every 500 ms
    assert_eq!(m.on_advert(100, HIGHER, &adv), Ok(vec![]));
    assert_eq!(m.master_adver_int_ms(), 500);
    assert_eq!((m.skew_ms(), m.master_down_ms()), (304, 1804));
    assert_eq!(m.next_deadline(), Some(1904));
    assert_eq!(
        m.on_timer(1904),
        [SendAdvert { priority: 100 }, BecomeMaster]
    );
    assert_eq!(
        m.master_adver_int_ms(),
        100,
        "a master uses its own interval"
    );
    assert_eq!(m.next_deadline(), Some(2004));
    // A master going backup learns the new master's interval too.
    adv.advert_int_cs = 20;
    assert_eq!(m.on_advert(2100, HIGHER, &adv), Ok(vec![BecomeBackup]));
    assert_eq!(
        (m.master_adver_int_ms(), m.next_deadline()),
        (200, Some(2100 + 600 + 121))
    );
}

#[test]
fn test_rejects_change_nothing() {
    let base = v2(100).advert(150);
    let mut other_addr = base;
    other_addr.addrs[0] = VIP + 1;
    let mut extra_addr = base;
    extra_addr.count = 2;
    extra_addr.addrs[1] = VIP + 1;
    let v3 = Machine::new(params(Version::V3, 100, 1000)).advert(150);
    let cases = [
        ("own", OURS, base, Reject::OwnAdvert),
        (
            "vrid",
            HIGHER,
            Advert { vrid: 52, ..base },
            Reject::VridMismatch,
        ),
        ("version", HIGHER, v3, Reject::VersionMismatch),
        (
            "password",
            HIGHER,
            Advert {
                auth_data: *b"secreT\0\0",
                ..base
            },
            Reject::AuthMismatch,
        ),
        (
            "no auth",
            HIGHER,
            Advert {
                auth_type: 0,
                auth_data: [0; 8],
                ..base
            },
            Reject::AuthMismatch,
        ),
        (
            "interval 2 s",
            HIGHER,
            Advert {
                advert_int_cs: 200,
                ..base
            },
            Reject::IntervalMismatch,
        ),
        ("other address", HIGHER, other_addr, Reject::AddrMismatch),
        ("extra address", HIGHER, extra_addr, Reject::AddrMismatch),
    ];
    for start_master in [false, true] {
        let mut m = Machine::new(Params {
            start_master,
            ..params(Version::V2, 100, 1000)
        });
        m.start(0);
        m.on_advert(100, LOWER, &from_peer(&m, 50)).unwrap();
        let before = snapshot(&m);
        for (name, src, adv, want) in cases {
            assert_eq!(m.on_advert(200, src, &adv), Err(want), "{name}");
            assert_eq!(snapshot(&m), before, "{name} changed state");
        }
        assert_eq!(m.stats().rejected.get("auth_mismatch"), Some(&2));
        assert_eq!(m.stats().rejected.get("addr_mismatch"), Some(&2));
        assert_eq!(m.stats().rejected.get("interval_mismatch"), Some(&1));
        assert_eq!(m.stats().rejected.values().sum::<u64>(), 8);
    }
    // No PASS configured: a PASS advert is refused, a plain one accepted.
    let mut m = Machine::new(Params {
        auth_pass: None,
        ..params(Version::V2, 100, 1000)
    });
    m.start(0);
    assert_eq!(m.on_advert(1, HIGHER, &base), Err(Reject::AuthMismatch));
    let plain = Advert {
        auth_type: 0,
        auth_data: [0; 8],
        ..base
    };
    assert_eq!(m.on_advert(1, HIGHER, &plain), Ok(vec![]));
    // v3: a different interval is not a mismatch; addresses in another
    // order are the same list.
    let mut m = Machine::new(Params {
        addrs: vec![VIP, VIP + 1],
        ..params(Version::V3, 100, 1000)
    });
    m.start(0);
    let mut adv = m.advert(150);
    adv.addrs[..2].copy_from_slice(&[VIP + 1, VIP]);
    adv.advert_int_cs = 30;
    assert_eq!(m.on_advert(1, HIGHER, &adv), Ok(vec![]));
}

#[test]
fn test_tracking_fault_and_recovery() {
    let mut m = v2_master(100);
    assert_eq!(
        m.set_tracking(500, true, 0),
        [SendAdvert { priority: 0 }, BecomeFault]
    );
    assert_eq!(
        (m.state(), m.next_deadline(), m.master_ip()),
        (State::Fault, None, None)
    );
    assert_eq!(
        m.last_transition(),
        Some((500, State::Master, State::Fault, "tracking fault"))
    );
    assert_eq!(
        m.on_advert(600, HIGHER, &from_peer(&m, 50)),
        Ok(vec![]),
        "FAULT ignores adverts"
    );
    assert_eq!(m.on_timer(100_000), []);
    assert_eq!(m.set_tracking(700, true, -10), []);
    assert_eq!(m.set_tracking(1000, false, 0), [BecomeBackup]);
    assert_eq!(
        m.last_transition(),
        Some((1000, State::Fault, State::Backup, "tracking recovered"))
    );
    assert_eq!(m.next_deadline(), Some(4609));

    // An owner comes back as master; a backup goes to FAULT without an advert.
    let mut o = v2(255);
    o.start(0);
    o.set_tracking(10, true, 0);
    assert_eq!(
        o.set_tracking(20, false, 0),
        [SendAdvert { priority: 255 }, BecomeMaster]
    );
    let mut b = v2(100);
    b.start(0);
    assert_eq!(b.set_tracking(10, true, 0), [BecomeFault]);

    // A fault set before start is entered at start.
    let mut f = v2(100);
    assert_eq!(f.set_tracking(0, true, 0), []);
    assert_eq!(f.start(5), [BecomeFault]);
}

#[test]
fn test_track_weight_effective_priority_and_preemption() {
    let mut m = v2(100);
    assert_eq!(m.set_tracking(0, false, 30), []);
    assert_eq!(m.effective_priority(), 130);
    m.set_tracking(0, false, -200);
    assert_eq!(m.effective_priority(), 1);
    m.set_tracking(0, false, 500);
    assert_eq!(m.effective_priority(), 254);
    let mut o = v2(255);
    o.set_tracking(0, false, -50);
    assert_eq!(o.effective_priority(), 255);

    // Weight raises a backup above its master (150): it preempts.
    let mut m = v2(100);
    m.set_tracking(0, false, 0);
    m.start(0);
    let adv = from_peer(&m, 150);
    m.on_advert(1000, LOWER, &adv).unwrap();
    m.set_tracking(1500, false, 60);
    assert_eq!(m.skew_ms(), 375);
    m.on_advert(2000, LOWER, &adv).unwrap(); // 150 < 160: discarded
    assert_eq!(
        m.next_deadline(),
        Some(1000 + 3609),
        "the running timer is kept"
    );
    assert_eq!(
        m.on_timer(4609),
        [SendAdvert { priority: 160 }, BecomeMaster]
    );
    assert_eq!(
        m.last_transition().unwrap().3,
        "preempted lower priority master"
    );

    // Weight lowers a master below a backup (90): it announces at once and
    // yields to the backup's advert.
    let mut m = v2_master(100);
    assert_eq!(
        m.set_tracking(300, false, -60),
        [SendAdvert { priority: 40 }]
    );
    assert_eq!(m.next_deadline(), Some(1300));
    assert_eq!(
        m.on_advert(400, LOWER, &from_peer(&m, 90)),
        Ok(vec![BecomeBackup])
    );
    assert_eq!(m.skew_ms(), 843);
}

#[test]
fn test_split_brain_set_and_cleared() {
    let mut m = v2_master(100);
    let other = from_peer(&m, 50);
    assert_eq!(m.on_advert(100, HIGHER, &other), Ok(vec![]));
    assert_eq!(m.on_advert(1100, HIGHER, &other), Ok(vec![]));
    assert!(!m.split_brain());
    assert_eq!(
        m.on_advert(2100, HIGHER, &other),
        Ok(vec![SplitBrain(true)])
    );
    assert!(m.split_brain());
    assert_eq!(
        m.on_advert(3100, HIGHER, &other),
        Ok(vec![]),
        "declared once"
    );
    assert_eq!(m.stats().split_brain_events, 1);
    // Our adverts go on; the other master falls silent after 3100.
    let mut t = m.next_deadline().unwrap();
    let mut cleared_at = None;
    while t < 10_000 {
        let acts = m.on_timer(t);
        if acts.contains(&SplitBrain(false)) {
            cleared_at = Some(t);
            break;
        }
        assert_eq!(acts, [SendAdvert { priority: 100 }]);
        t = m.next_deadline().unwrap();
    }
    // Our Adver_Timer ticks at 1000, 2000, ...: the first tick with 3 s of
    // silence since 3100 (at or after 6100) is 7000.
    assert_eq!(cleared_at, Some(7000));
    assert!(!m.split_brain());
    assert_eq!(m.state(), State::Master);

    // Non-consecutive adverts (gaps over 3 intervals) never add up.
    let mut m = v2_master(100);
    for t in [0, 4000, 8000, 12_000] {
        assert_eq!(m.on_advert(t + 1, HIGHER, &other), Ok(vec![]));
    }

    // Going backup clears it.
    let mut m = v2_master(100);
    for t in [100, 200, 300] {
        m.on_advert(t, HIGHER, &other).unwrap();
    }
    assert!(m.split_brain());
    assert_eq!(
        m.on_advert(400, HIGHER, &from_peer(&m, 200)),
        Ok(vec![SplitBrain(false), BecomeBackup])
    );
    assert!(!m.split_brain());

    // split_brain_adverts 0 disables detection.
    let mut m = Machine::new(Params {
        split_brain_adverts: 0,
        start_master: true,
        ..params(Version::V2, 100, 1000)
    });
    m.start(0);
    for t in 1..10 {
        assert_eq!(m.on_advert(t * 100, HIGHER, &other), Ok(vec![]));
    }
}
