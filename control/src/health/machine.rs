//! keepalived's per-checker state machine, without clock or I/O: it is
//! fed each [`ProbeResult`] and says when the next probe is due and whether
//! the checker changed state.
//!
//! The rules, from keepalived's `check_tcp.c` `tcp_epilog()` (the other
//! checkers' epilogues are the same) and `check_data.c`:
//! - A success sets the retry count to 0; a down checker goes up on one
//!   success. The next probe is `delay_loop` later.
//! - An up checker that fails is retried `retry` times, each
//!   `delay_before_retry` after the previous attempt; it goes down on the
//!   failure after the last retry, i.e. on `retry + 1` consecutive
//!   failures, and the next probe is `delay_loop` later.
//! - A down checker that fails stays down; next probe `delay_loop` later.
//! - Start-up: the checker is up unless `alpha`; before its first result
//!   the retry count starts exhausted (`check_data.c` sets
//!   `retry_it = retry`: "one failure is enough initially"), so a non-alpha
//!   checker whose very first probe fails goes down at once, without
//!   retries.
//! - The first probe runs a random time up to `warmup` after start
//!   ([`Machine::first_delay`]; keepalived adds a fixed one-second bootstrap
//!   delay on top, the driver's business).

use std::time::Duration;

use super::{Outcome, ProbeResult};

/// A checker's timing knobs, keepalived's names. keepalived's defaults
/// (`check_data.c`, `check_api.c`; applied by the config, not here):
/// `delay_loop` 60 s; `retry` 1 (DNS_CHECK 3, MISC_CHECK 0);
/// `delay_before_retry` 1 s (HTTP_GET/SSL_GET 3 s, DNS_CHECK `delay_loop`);
/// `warmup` = `delay_loop`; `alpha` off. All may be set per virtual
/// server, real server or checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Interval between probes while the state holds.
    pub delay_loop: Duration,
    /// Further attempts after a failure before an up checker goes down.
    pub retry: u32,
    /// Interval between those attempts.
    pub delay_before_retry: Duration,
    /// Upper bound of the random delay before the first probe.
    pub warmup: Duration,
    /// Start down, up only after a first success.
    pub alpha: bool,
}

/// One checker's state. See the module docs for the rules.
#[derive(Clone, Debug)]
pub struct Machine {
    label: String,
    t: Timing,
    up: bool,
    has_run: bool,
    retry_it: u32,
}

/// What the driver does after a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// `Some` when the checker changed state with this result.
    pub transition: Option<Transition>,
    /// When the next probe is due, from now.
    pub next_in: Duration,
    /// A failure that did not (yet) change state, for a debug log:
    /// `"<label>: <reason> (retry n/N)"`; `None` otherwise.
    pub note: Option<String>,
}

/// A change of state, with its log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub up: bool,
    /// `"<label>: success"` going up; going down `"<label>: <reason>"`,
    /// followed by `" (retry N/N)"` when retries were made, e.g.
    /// `"HTTP_GET 10.1.0.12:80: status 503, expected 200 (retry 3/3)"`.
    pub reason: String,
}

impl Machine {
    /// A checker named `label` (used as the prefix of every reason, e.g.
    /// `"HTTP_GET 10.1.0.12:80"`), up unless `t.alpha`.
    pub fn new(label: String, t: Timing) -> Self {
        Machine {
            label,
            t,
            up: !t.alpha,
            has_run: false,
            retry_it: t.retry,
        }
    }

    /// The current state.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The label given to [`Machine::new`].
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The timing given to [`Machine::new`].
    pub fn timing(&self) -> &Timing {
        &self.t
    }

    /// The delay before the first probe: `warmup * jitter`, `jitter` a
    /// random number in `0..1` (clamped), so checkers started together
    /// spread over the warmup window as keepalived's do.
    pub fn first_delay(&self, jitter: f64) -> Duration {
        let j = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.t.warmup.mul_f64(j)
    }

    /// Feeds one probe's result; returns the transition, if any, and when
    /// to probe next.
    pub fn on_result(&mut self, r: &ProbeResult) -> Step {
        let first = !self.has_run;
        self.has_run = true;
        match &r.outcome {
            Outcome::Up { .. } => {
                self.retry_it = 0;
                let transition = (!self.up).then(|| {
                    self.up = true;
                    Transition {
                        up: true,
                        reason: format!("{}: success", self.label),
                    }
                });
                Step {
                    transition,
                    next_in: self.t.delay_loop,
                    note: None,
                }
            }
            Outcome::Down { reason } => {
                if (self.up || first) && self.retry_it >= self.t.retry {
                    // Exhausted: down (keepalived names the retries only
                    // when some were made, i.e. not on the first result).
                    self.retry_it = 0;
                    let was_up = self.up;
                    self.up = false;
                    let text = if self.t.retry > 0 && !first {
                        format!(
                            "{}: {} (retry {}/{})",
                            self.label, reason, self.t.retry, self.t.retry
                        )
                    } else {
                        format!("{}: {}", self.label, reason)
                    };
                    let (transition, note) = if was_up {
                        (
                            Some(Transition {
                                up: false,
                                reason: text,
                            }),
                            None,
                        )
                    } else {
                        (None, Some(text))
                    };
                    Step {
                        transition,
                        next_in: self.t.delay_loop,
                        note,
                    }
                } else if self.up {
                    let note = format!(
                        "{}: {} (retry {}/{})",
                        self.label, reason, self.retry_it, self.t.retry
                    );
                    self.retry_it += 1;
                    Step {
                        transition: None,
                        next_in: self.t.delay_before_retry,
                        note: Some(note),
                    }
                } else {
                    Step {
                        transition: None,
                        next_in: self.t.delay_loop,
                        note: Some(format!("{}: {}", self.label, reason)),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn timing(retry: u32, alpha: bool) -> Timing {
        Timing {
            delay_loop: 10 * S,
            retry,
            delay_before_retry: 2 * S,
            warmup: 6 * S,
            alpha,
        }
    }
    fn ok() -> ProbeResult {
        ProbeResult {
            outcome: Outcome::UP,
            latency: Duration::ZERO,
        }
    }
    fn bad(why: &str) -> ProbeResult {
        ProbeResult {
            outcome: Outcome::down(why),
            latency: Duration::ZERO,
        }
    }

    /// Drives the machine on a virtual clock: each result is applied at
    /// the time the previous step asked for; returns (time, step) pairs.
    fn run(m: &mut Machine, start: Duration, results: &[ProbeResult]) -> Vec<(Duration, Step)> {
        let mut now = start;
        let mut out = Vec::new();
        for r in results {
            let s = m.on_result(r);
            out.push((now, s.clone()));
            now += s.next_in;
        }
        out
    }

    #[test]
    fn retry_three_goes_down_on_the_fourth_consecutive_failure() {
        let mut m = Machine::new("HTTP_GET 10.1.0.12:80".into(), timing(3, false));
        assert!(m.is_up());
        let steps = run(
            &mut m,
            Duration::ZERO,
            &[
                ok(),
                bad("status 503, expected 200"),
                bad("status 503, expected 200"),
                bad("status 503, expected 200"),
                bad("status 503, expected 200"),
                bad("x"),
            ],
        );
        // success at t=0 (already up: no transition), next after delay_loop
        assert_eq!(
            steps[0].1,
            Step {
                transition: None,
                next_in: 10 * S,
                note: None
            }
        );
        // three failures held steady, each retried after delay_before_retry
        for (i, (t, s)) in steps[1..4].iter().enumerate() {
            assert_eq!(*t, 10 * S + 2 * S * i as u32);
            assert_eq!(s.transition, None);
            assert_eq!(s.next_in, 2 * S);
            assert_eq!(
                s.note.as_deref(),
                Some(
                    format!("HTTP_GET 10.1.0.12:80: status 503, expected 200 (retry {i}/3)")
                        .as_str()
                )
            );
        }
        // the fourth: down, at delay_loop + 3 * delay_before_retry
        assert_eq!(steps[4].0, 16 * S);
        assert_eq!(
            steps[4].1.transition,
            Some(Transition {
                up: false,
                reason: "HTTP_GET 10.1.0.12:80: status 503, expected 200 (retry 3/3)".into()
            })
        );
        assert_eq!(steps[4].1.next_in, 10 * S);
        assert!(!m.is_up());
        // down and failing: no transition, polled at delay_loop
        assert_eq!(steps[5].1.transition, None);
        assert_eq!(steps[5].1.next_in, 10 * S);
    }

    #[test]
    fn one_success_brings_it_back_and_resets_the_retries() {
        let mut m = Machine::new("TCP_CHECK 10.0.0.1:80".into(), timing(2, false));
        let steps = run(
            &mut m,
            Duration::ZERO,
            &[
                ok(),
                bad("a"),
                bad("b"),
                bad("c"),
                ok(),
                bad("d"),
                bad("e"),
                bad("f"),
            ],
        );
        assert_eq!(steps[3].1.transition.as_ref().map(|t| t.up), Some(false));
        assert_eq!(
            steps[4].1.transition,
            Some(Transition {
                up: true,
                reason: "TCP_CHECK 10.0.0.1:80: success".into()
            })
        );
        assert_eq!(steps[4].1.next_in, 10 * S);
        // after recovery the full retry budget applies again
        assert_eq!(steps[5].1.transition, None);
        assert_eq!(steps[6].1.transition, None);
        assert_eq!(
            steps[7].1.transition.as_ref().unwrap().reason,
            "TCP_CHECK 10.0.0.1:80: f (retry 2/2)"
        );
    }

    #[test]
    fn flapping_within_the_retry_budget_holds_steady() {
        let mut m = Machine::new("c".into(), timing(1, false));
        let mut seq = vec![ok()];
        for _ in 0..20 {
            seq.push(bad("flap"));
            seq.push(ok());
        }
        let steps = run(&mut m, Duration::ZERO, &seq);
        assert!(
            steps.iter().all(|(_, s)| s.transition.is_none()),
            "one failure in a row never takes it down with retry 1"
        );
        assert!(m.is_up());
        // and the retry gap is delay_before_retry, the success gap delay_loop
        assert_eq!(steps[1].1.next_in, 2 * S);
        assert_eq!(steps[2].1.next_in, 10 * S);
    }

    #[test]
    fn alpha_starts_down_and_needs_a_success() {
        let mut m = Machine::new("c".into(), timing(3, true));
        assert!(!m.is_up());
        let s = m.on_result(&bad("no"));
        assert_eq!(s.transition, None, "already down");
        assert_eq!(
            s.next_in,
            10 * S,
            "a down checker is polled at delay_loop, not retried"
        );
        assert!(!m.is_up());
        let s = m.on_result(&ok());
        assert_eq!(
            s.transition,
            Some(Transition {
                up: true,
                reason: "c: success".into()
            })
        );
        assert!(m.is_up());
    }

    #[test]
    fn first_failure_takes_a_non_alpha_checker_down_without_retries() {
        // keepalived check_data.c: retry_it starts at retry
        let mut m = Machine::new("c".into(), timing(3, false));
        let s = m.on_result(&bad("connect: connection refused"));
        assert_eq!(
            s.transition,
            Some(Transition {
                up: false,
                reason: "c: connect: connection refused".into()
            })
        );
        assert_eq!(s.next_in, 10 * S);
    }

    #[test]
    fn retry_zero_goes_down_on_the_first_failure_after_up() {
        let mut m = Machine::new("c".into(), timing(0, false));
        m.on_result(&ok());
        let s = m.on_result(&bad("x"));
        assert_eq!(
            s.transition,
            Some(Transition {
                up: false,
                reason: "c: x".into()
            })
        );
    }

    #[test]
    fn warmup_spreads_the_first_probe() {
        let m = Machine::new("c".into(), timing(1, false));
        assert_eq!(m.first_delay(0.0), Duration::ZERO);
        assert_eq!(m.first_delay(0.5), 3 * S);
        assert_eq!(m.first_delay(1.0), 6 * S);
        assert_eq!(m.first_delay(7.0), 6 * S, "clamped to warmup");
        assert_eq!(m.first_delay(f64::NAN), Duration::ZERO);
        let no_warmup = Machine::new(
            "c".into(),
            Timing {
                warmup: Duration::ZERO,
                ..timing(1, false)
            },
        );
        assert_eq!(no_warmup.first_delay(0.9), Duration::ZERO);
    }
}
