//! The driver: one tokio task per checker, each running its [`Machine`]
//! on the runtime's clock and reporting every result.
//!
//! Probe load is bounded by a semaphore (`max_in_flight` probes at once,
//! across all checkers) and spread: each checker's first probe waits a
//! random part of its `warmup` ([`Machine::first_delay`]). A probe that
//! hangs holds one permit for at most its deadline ([`Probe::deadline`],
//! enforced again here), and never delays a checker that has a permit.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{probe, CheckerId, Machine, Outcome, Probe, ProbeResult, Timing, Transition};

/// What the driver runs for one checker.
#[derive(Clone, Debug)]
pub struct CheckerSpec {
    /// Carried back in each event.
    pub id: CheckerId,
    /// The reasons' prefix, e.g. `"HTTP_GET 10.1.0.12:80"`.
    pub label: String,
    /// What each probe does.
    pub probe: Probe,
    /// When probes run and when the state changes.
    pub timing: Timing,
}

/// One probe's result, sent after every probe of every checker.
#[derive(Clone, Debug)]
pub struct CheckerEvent {
    /// The checker's [`CheckerSpec::id`].
    pub id: CheckerId,
    /// This probe's verdict and latency.
    pub result: ProbeResult,
    /// The checker's state after this result.
    pub up: bool,
    /// `Some` when this result changed the state.
    pub transition: Option<Transition>,
    /// When the probe finished (wall clock).
    pub at: SystemTime,
}

/// The running checkers. Dropping it, or [`Checkers::stop`], aborts every
/// task (a probe in flight is dropped: its socket closed, its script's
/// process group killed).
pub struct Checkers {
    tasks: Vec<JoinHandle<()>>,
}

impl Checkers {
    /// Starts one task per spec on the current tokio runtime (panics
    /// outside one, as `tokio::spawn`). At most `max_in_flight` probes run
    /// at once (0 is taken as 1). A task ends by itself when `events` is
    /// closed.
    pub fn start(
        specs: Vec<CheckerSpec>,
        events: UnboundedSender<CheckerEvent>,
        max_in_flight: usize,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
        let tasks = specs
            .into_iter()
            .map(|spec| {
                let jitter = fastrand::f64();
                tokio::spawn(run(spec, events.clone(), permits.clone(), jitter))
            })
            .collect();
        Checkers { tasks }
    }

    /// How many checker tasks were started.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when no checker was started.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Aborts every checker task.
    pub fn stop(self) {
        drop(self)
    }
}

impl Drop for Checkers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Slack over a probe's own deadline before the driver gives up on it
/// (the probes enforce their deadline themselves; this only guards).
const DEADLINE_SLACK: Duration = Duration::from_millis(500);

async fn run(
    spec: CheckerSpec,
    events: UnboundedSender<CheckerEvent>,
    permits: Arc<Semaphore>,
    jitter: f64,
) {
    let mut m = Machine::new(spec.label, spec.timing);
    tokio::time::sleep(m.first_delay(jitter)).await;
    let limit = spec.probe.deadline() + DEADLINE_SLACK;
    loop {
        let result = {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            let start = std::time::Instant::now();
            match tokio::time::timeout(limit, probe(&spec.probe)).await {
                Ok(r) => r,
                Err(_) => ProbeResult {
                    outcome: Outcome::down(format!(
                        "probe overran its deadline of {} ms",
                        limit.as_millis()
                    )),
                    latency: start.elapsed(),
                },
            }
        };
        let step = m.on_result(&result);
        let ev = CheckerEvent {
            id: spec.id,
            result,
            up: m.is_up(),
            transition: step.transition,
            at: SystemTime::now(),
        };
        if events.send(ev).is_err() {
            return;
        }
        tokio::time::sleep(step.next_in).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{full_backlog_listener, rt, tcp_probe};
    use super::super::{CheckKind, MiscCheck};
    use super::*;
    use std::collections::HashMap;
    use std::time::Instant;

    fn timing(loop_ms: u64) -> Timing {
        Timing {
            delay_loop: Duration::from_millis(loop_ms),
            retry: 1,
            delay_before_retry: Duration::from_millis(loop_ms),
            warmup: Duration::ZERO,
            alpha: false,
        }
    }

    #[test]
    fn a_hung_target_does_not_delay_a_fast_one() {
        rt().block_on(async {
            let fast = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let fast_port = fast.local_addr().unwrap().port();
            tokio::spawn(async move {
                while let Ok((s, _)) = fast.accept().await {
                    drop(s);
                }
            });
            let (hung_port, _keep) = full_backlog_listener().await;
            let specs = vec![
                CheckerSpec {
                    id: CheckerId(1),
                    label: "TCP_CHECK hung".into(),
                    probe: tcp_probe(hung_port, CheckKind::Tcp, Duration::from_secs(3)),
                    timing: timing(50),
                },
                CheckerSpec {
                    id: CheckerId(2),
                    label: "TCP_CHECK fast".into(),
                    probe: tcp_probe(fast_port, CheckKind::Tcp, Duration::from_secs(3)),
                    timing: timing(50),
                },
            ];
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let start = Instant::now();
            let c = Checkers::start(specs, tx, 4);
            let mut fast_results = 0;
            while fast_results < 10 {
                let ev = rx.recv().await.unwrap();
                assert_eq!(
                    ev.id,
                    CheckerId(2),
                    "the hung checker cannot finish within its 3 s timeout yet"
                );
                assert!(ev.up && ev.result.outcome.is_up());
                fast_results += 1;
            }
            // 10 probes 50 ms apart: ~450 ms, far below the hung probe's 3 s
            assert!(
                start.elapsed() < Duration::from_millis(1500),
                "{:?}",
                start.elapsed()
            );
            c.stop();
        });
    }

    #[test]
    fn max_in_flight_is_honoured() {
        let d = super::super::testutil::TempDir::new("inflight");
        // Each probe records its start and end (pid-tagged lines), sleeping
        // in between, so overlapping runs can be counted afterwards.
        let log = d.path().join("log");
        let s = super::super::testutil::script(
            d.path(),
            "busy.sh",
            &format!(
                "echo \"+ $$\" >> {0}; sleep 0.15; echo \"- $$\" >> {0}",
                log.display()
            ),
        );
        rt().block_on(async {
            let specs = (0..6)
                .map(|i| CheckerSpec {
                    id: CheckerId(i),
                    label: format!("MISC_CHECK {i}"),
                    probe: super::super::Probe {
                        kind: CheckKind::Misc(MiscCheck {
                            argv: vec![s.display().to_string()],
                            timeout: Duration::from_secs(5),
                            dynamic: false,
                        }),
                        ..tcp_probe(0, CheckKind::Tcp, Duration::from_secs(1))
                    },
                    timing: timing(10),
                })
                .collect();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let c = Checkers::start(specs, tx, 2);
            let mut per: HashMap<CheckerId, usize> = HashMap::new();
            for _ in 0..12 {
                let ev = rx.recv().await.unwrap();
                assert!(ev.up, "{:?}", ev.result);
                *per.entry(ev.id).or_default() += 1;
            }
            drop(c);
            assert_eq!(per.len(), 6, "every checker gets its turn: {per:?}");
        });
        let text = std::fs::read_to_string(&log).unwrap();
        let (mut cur, mut max) = (0i32, 0i32);
        for line in text.lines() {
            cur += if line.starts_with('+') { 1 } else { -1 };
            max = max.max(cur);
        }
        assert_eq!(
            max, 2,
            "at most 2 probes at once, and 2 did overlap:\n{text}"
        );
    }

    #[test]
    fn transitions_are_reported_and_drop_stops_everything() {
        rt().block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            drop(l); // nothing listens: the first probe fails
            let spec = CheckerSpec {
                id: CheckerId(9),
                label: "TCP_CHECK 127.0.0.1".into(),
                probe: tcp_probe(port, CheckKind::Tcp, Duration::from_secs(1)),
                timing: timing(30),
            };
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let c = Checkers::start(vec![spec], tx, 1);
            let ev = rx.recv().await.unwrap();
            assert!(!ev.up);
            assert_eq!(
                ev.transition.unwrap().reason,
                "TCP_CHECK 127.0.0.1: connect: connection refused"
            );
            // bring the server up: one success brings it back
            let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            let ev = loop {
                let ev = rx.recv().await.unwrap();
                if ev.transition.is_some() {
                    break ev;
                }
            };
            assert!(ev.up);
            assert_eq!(
                ev.transition.unwrap().reason,
                "TCP_CHECK 127.0.0.1: success"
            );
            drop(c);
            drop(l);
            // the task is aborted: its sender goes away and the channel closes
            tokio::time::timeout(Duration::from_secs(1), async {
                while rx.recv().await.is_some() {}
            })
            .await
            .expect("the checker task did not stop");
        });
    }
}
