//! `MISC_CHECK` (keepalived `check_misc.c`, `misc_check_child_thread`):
//! exit 0 is up; with `misc_dynamic`, exit 2..=255 is up with weight
//! `status - 2` (keepalived: "the actual weight set ... is two less than
//! the exit status", range 0..=253); any other exit status (1, or 2..=255
//! without `misc_dynamic`) is down, as is a signal, a timeout or a script
//! that cannot be started.

use super::script::{run_script, ScriptOutcome};
use super::{MiscCheck, Outcome};

pub(super) async fn check(m: &MiscCheck) -> Outcome {
    match run_script(&m.argv, m.timeout).await {
        ScriptOutcome::Exited(0) => Outcome::UP,
        ScriptOutcome::Exited(c) if m.dynamic && (2..=255).contains(&c) => Outcome::Up {
            weight: Some(c as u32 - 2),
        },
        ScriptOutcome::Exited(c) => Outcome::down(format!("exited with status {c}")),
        ScriptOutcome::Signalled(s) => Outcome::down(format!("killed by signal {s}")),
        ScriptOutcome::TimedOut => {
            Outcome::down(format!("timed out after {} ms", m.timeout.as_millis()))
        }
        ScriptOutcome::SpawnFailed(e) => Outcome::down(format!("cannot run: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{rt, script, TempDir};
    use super::super::{probe, CheckKind, MiscCheck, Outcome, Probe};
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Duration;

    fn misc(path: &std::path::Path, dynamic: bool, timeout: Duration) -> Probe {
        Probe {
            kind: CheckKind::Misc(MiscCheck {
                argv: vec![path.display().to_string()],
                timeout,
                dynamic,
            }),
            target: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            bindto: None,
            connect_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn misc_exit_codes() {
        let d = TempDir::new("misc");
        let rt = rt();
        let t = Duration::from_secs(5);
        let run = |code: i32, dynamic: bool| {
            let s = script(d.path(), &format!("x{code}.sh"), &format!("exit {code}"));
            super::super::check_script_security(&s, true).unwrap();
            rt.block_on(probe(&misc(&s, dynamic, t))).outcome
        };
        assert_eq!(run(0, false), Outcome::Up { weight: None });
        assert_eq!(
            run(0, true),
            Outcome::Up { weight: None },
            "0 keeps the configured weight"
        );
        assert_eq!(run(1, false), Outcome::down("exited with status 1"));
        assert_eq!(run(1, true), Outcome::down("exited with status 1"));
        assert_eq!(run(2, true), Outcome::Up { weight: Some(0) });
        assert_eq!(run(12, true), Outcome::Up { weight: Some(10) });
        assert_eq!(run(255, true), Outcome::Up { weight: Some(253) });
        assert_eq!(
            run(12, false),
            Outcome::down("exited with status 12"),
            "without misc_dynamic only 0 is up"
        );
    }

    #[test]
    fn misc_timeout() {
        let d = TempDir::new("misc-t");
        let s = script(d.path(), "slow.sh", "sleep 10");
        let r = rt().block_on(probe(&misc(&s, false, Duration::from_millis(250))));
        assert_eq!(r.outcome, Outcome::down("timed out after 250 ms"));
        assert!(
            r.latency >= Duration::from_millis(250) && r.latency < Duration::from_millis(500),
            "{:?}",
            r.latency
        );
    }
}
