//! The VRRP scripts: `vrrp_script` tracking (run every `interval`, `rise`
//! and `fall` as keepalived counts them) and the `notify*` scripts, on one
//! thread of their own with a current-thread tokio runtime, so that a slow
//! script never delays an advert.
//!
//! Layer: control, daemon side. Scripts run through
//! [`crate::health::run_script`] (no shell, own process group killed on
//! timeout); their commands passed `enable_script_security` when the
//! config was validated.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::VrrpScriptConfig;
use crate::health::{parse_command, run_script, ScriptOutcome};

/// Longest a `notify*` script may run before its process group is killed.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// One notify run: the command line and the arguments appended to it.
#[derive(Clone, Debug)]
pub struct NotifyJob {
    /// The configured command line.
    pub command: String,
    /// Appended arguments (keepalived's `notify`: `INSTANCE`/`GROUP`, the
    /// name, the state, the priority); empty for `notify_master` & co.
    pub args: Vec<String>,
}

/// The script thread: each `vrrp_script`'s current result (`true` =
/// failed) and the queue of notify runs.
pub struct Scripts {
    /// Per `vrrp_script`, config order: failed now (keepalived's state after
    /// `fall` failures; good again after `rise` successes). Scripts start
    /// good, as keepalived's do without `init_fail`.
    pub failed: Arc<Vec<AtomicBool>>,
    notify: mpsc::UnboundedSender<NotifyJob>,
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Scripts {
    /// Starts the thread with one tracking task per script.
    ///
    /// # Errors
    /// The runtime or the thread could not be created.
    pub fn start(scripts: &[VrrpScriptConfig]) -> std::io::Result<Scripts> {
        let failed: Arc<Vec<AtomicBool>> =
            Arc::new(scripts.iter().map(|_| AtomicBool::new(false)).collect());
        let (tx, mut rx) = mpsc::unbounded_channel::<NotifyJob>();
        let stop = Arc::new(AtomicBool::new(false));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let list: Vec<VrrpScriptConfig> = scripts.to_vec();
        let (failed2, stop2) = (Arc::clone(&failed), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("fulcrum-vrrp-scripts".into())
            .spawn(move || {
                rt.block_on(async move {
                    for (i, s) in list.into_iter().enumerate() {
                        tokio::spawn(track(s, i, Arc::clone(&failed2), Arc::clone(&stop2)));
                    }
                    // Notify runs one after another, in the order of the
                    // transitions.
                    while let Some(job) = rx.recv().await {
                        run_notify(job).await;
                    }
                });
            })?;
        Ok(Scripts {
            failed,
            notify: tx,
            thread: Some(thread),
            stop,
        })
    }

    /// Queues a notify run (never blocks).
    pub fn notify(&self, job: NotifyJob) {
        let _ = self.notify.send(job);
    }

    /// Stops the tracking tasks, lets queued notify runs finish (each
    /// within [`NOTIFY_TIMEOUT`]) and joins the thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let (tx, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.notify, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn run_notify(job: NotifyJob) {
    let mut argv = match parse_command(&job.command) {
        Ok(a) => a,
        Err(e) => {
            warn!(command = %job.command, "notify script not run: {e}");
            return;
        }
    };
    argv.extend(job.args.iter().cloned());
    match run_script(&argv, NOTIFY_TIMEOUT).await {
        ScriptOutcome::Exited(0) => {
            info!(command = %job.command, args = ?job.args, "notify script ran")
        }
        o => warn!(command = %job.command, args = ?job.args, "notify script: {o:?}"),
    }
}

/// One `vrrp_script`'s loop: run, count, flip `failed[i]` after `fall`
/// failures or `rise` successes in a row.
async fn track(s: VrrpScriptConfig, i: usize, failed: Arc<Vec<AtomicBool>>, stop: Arc<AtomicBool>) {
    let Ok(argv) = parse_command(&s.script) else {
        return;
    };
    let timeout = s.timeout.unwrap_or(s.interval).0;
    let (mut ok_run, mut bad_run) = (0u32, 0u32);
    let mut tick = tokio::time::interval(s.interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let good = matches!(run_script(&argv, timeout).await, ScriptOutcome::Exited(0));
        if good {
            ok_run += 1;
            bad_run = 0;
        } else {
            bad_run += 1;
            ok_run = 0;
        }
        let was = failed[i].load(Ordering::Relaxed);
        if was && ok_run >= s.rise {
            failed[i].store(false, Ordering::Relaxed);
            info!(script = %s.name, "vrrp_script succeeded {} time(s): good", s.rise);
        } else if !was && bad_run >= s.fall {
            failed[i].store(true, Ordering::Relaxed);
            warn!(script = %s.name, "vrrp_script failed {} time(s): failed", s.fall);
        }
    }
}
