//! The `reload` admin command and `SIGHUP`: read the config file again and
//! apply its difference ([`crate::edit::Editor::reload_file`]), keep the
//! last result for the status ([`ReloadStatus`]), log it, and tell systemd
//! (`RELOADING=1` ... `READY=1`).
//!
//! Layer: control, slow path. One [`Reloader`] per daemon; reloads are
//! serialised (a `SIGHUP` and a `fulcrumctl --reload` arriving together run
//! one after the other). A failed reload changes nothing and is reported
//! three ways: a log line, `Status.reload` (`ok: false` and the error), and
//! the admin command's `{"error":"file:line:col: message"}`.
//!
//! Reply of `{"cmd":"reload"}`: `{"ok":true,"generation":N,"changed":bool,
//! "reals_added":a,"reals_removed":r,"reals_kept":k,"dropped_edits":d,
//! "file":"/etc/fulcrum/fulcrum.ron"}`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use super::server::Command;
use super::status::ReloadStatus;
use crate::edit::{EditError, Editor, ReloadOutcome};

/// The last reload's result, shared with the status provider.
pub type SharedReload = Arc<Mutex<Option<ReloadStatus>>>;

/// Reloads one daemon's config file.
pub struct Reloader {
    editor: Arc<Editor>,
    path: PathBuf,
    last: SharedReload,
    /// Held for a whole reload, so two never interleave.
    busy: Mutex<()>,
}

impl Reloader {
    /// A reloader of the file at `path` (the one the daemon was started
    /// with) into `editor`; each result is stored in `last`.
    pub fn new(editor: Arc<Editor>, path: PathBuf, last: SharedReload) -> Reloader {
        Reloader {
            editor,
            path,
            last,
            busy: Mutex::new(()),
        }
    }

    /// Reloads the file now; `trigger` (`"SIGHUP"`, `"fulcrumctl"`) is
    /// only logged. Tells systemd `RELOADING=1` before and `READY=1` after
    /// (nothing when not started by systemd).
    ///
    /// # Errors
    /// As [`Editor::reload_file`]; then nothing was changed.
    pub fn reload(&self, trigger: &str) -> Result<ReloadOutcome, EditError> {
        let _one = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        notify(&[sd_notify::NotifyState::Reloading]);
        let file = self.path.display().to_string();
        let result = self.editor.reload_file(&self.path);
        match &result {
            Ok(o) if o.changed => info!(
                file, trigger, generation = o.generation,
                "config reloaded: {} real server(s) added, {} removed (draining), {} kept; {} runtime edit(s) dropped (the file wins)",
                o.reals_added, o.reals_removed, o.reals_kept, o.dropped_edits
            ),
            Ok(o) => info!(
                file, trigger, generation = o.generation,
                "config reloaded: unchanged, nothing published"
            ),
            Err(e) => warn!(file, trigger, "config reload failed, the running config stays: {e}"),
        }
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let count = last.as_ref().map_or(0, |l| l.count) + 1;
        *last = Some(ReloadStatus {
            at_unix_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            ok: result.is_ok(),
            generation: result.as_ref().ok().map(|o| o.generation),
            error: result
                .as_ref()
                .err()
                .map_or_else(String::new, ToString::to_string),
            count,
        });
        notify(&[sd_notify::NotifyState::Ready]);
        result
    }

    /// The last reload's result (`None` before the first).
    pub fn status(&self) -> Option<ReloadStatus> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The admin socket's `reload` command (a mutation: root only).
    pub fn command(self: &Arc<Self>) -> Command {
        let me = Arc::clone(self);
        Command {
            name: "reload",
            mutates: true,
            run: Arc::new(move |_req: &serde_json::Value| {
                let o = me.reload("fulcrumctl")?;
                Ok(serde_json::json!({
                    "ok": true,
                    "generation": o.generation,
                    "changed": o.changed,
                    "reals_added": o.reals_added,
                    "reals_removed": o.reals_removed,
                    "reals_kept": o.reals_kept,
                    "dropped_edits": o.dropped_edits,
                    "file": me.path.display().to_string(),
                }))
            }),
        }
    }
}

/// Sends `state` to systemd's `$NOTIFY_SOCKET` (sd_notify(3)), logging a
/// failure; does nothing when the variable is unset.
pub fn notify(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        warn!("sd_notify to $NOTIFY_SOCKET failed: {e}");
    }
}
