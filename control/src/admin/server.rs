//! The admin socket server: one std thread answering one client at a time.
//!
//! Layer: control, slow path. See the [protocol](super) for what it
//! answers. Guarantees: a handler that panics loses its own answer, not the
//! server; a client that misbehaves (too long a line, a stall past
//! [`SERVER_CLIENT_TIMEOUT`]) only loses its answer.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use super::status::Status;
use super::{AdminError, MAX_REQUEST_BYTES, SERVER_CLIENT_TIMEOUT};
use crate::edit::EditError;

/// The status provider the server calls for each `status` request.
pub type StatusFn = Arc<dyn Fn() -> Status + Send + Sync>;

/// The edit handler the server calls for each write command, with the whole
/// request object (`cmd` included). `Ok(generation)` is the generation of
/// the snapshot it published; `Err(e)` is answered as `{"error":"<e>"}`
/// (the [`EditError`]'s one-line `Display`). The daemon's is
/// [`crate::edit::Editor::handle`].
pub type EditFn = Arc<dyn Fn(&serde_json::Value) -> Result<u64, EditError> + Send + Sync>;

/// The handler of one extra command ([`Command`]): called with the whole
/// request object (`cmd` included); `Ok(v)` is answered as `v` (one line of
/// JSON), `Err(e)` as `{"error":"<e>"}`.
pub type CommandFn =
    Arc<dyn Fn(&serde_json::Value) -> Result<serde_json::Value, EditError> + Send + Sync>;

/// A command beyond `status` and the [`crate::edit`] commands, registered by
/// the daemon part that owns it (the reload, the connection listing, ...).
#[derive(Clone)]
pub struct Command {
    /// The `cmd` string it answers.
    pub name: &'static str,
    /// `true` when it changes state (a reload, zeroing counters): such a
    /// command is a mutation for access control; `false` for a read-only
    /// query.
    pub mutates: bool,
    /// Its handler.
    pub run: CommandFn,
}

/// What the server answers with.
#[derive(Clone)]
pub struct Handlers {
    /// `{"cmd":"status"}`.
    pub status: StatusFn,
    /// The [`crate::edit::EDIT_COMMANDS`]; `None` makes the socket read-only.
    pub edit: Option<EditFn>,
    /// Further commands, matched by name after `status` and the edits.
    pub commands: Vec<Command>,
}

/// A running admin socket server (one std thread). Stops on [`stop`] or
/// drop, removing the socket file.
///
/// [`stop`]: AdminServer::stop
pub struct AdminServer {
    path: PathBuf,
    /// `(st_dev, st_ino)` of the socket file we bound.
    inode: (u64, u64),
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Serialize)]
struct ErrorReply<'a> {
    error: &'a str,
}

#[derive(Serialize)]
struct OkReply {
    ok: bool,
    generation: u64,
}

impl AdminServer {
    /// Creates `path`'s parent directory, removes a stale socket file, binds
    /// the socket (mode 0600) and spawns the thread that answers clients.
    /// The server is read-only: write commands are answered with an error.
    ///
    /// # Errors
    /// [`AdminError::InUse`] if a process already answers on `path`;
    /// [`AdminError::NotASocket`] if a non-socket file is there;
    /// [`AdminError::CreateDir`] / [`AdminError::Bind`] on OS failures.
    pub fn start(path: &Path, status: StatusFn) -> Result<AdminServer, AdminError> {
        Self::bind(
            path,
            Handlers {
                status,
                edit: None,
                commands: Vec::new(),
            },
        )
    }

    /// Like [`AdminServer::start`], and answers the write commands with
    /// `edit` (called on the server's thread, one request at a time).
    ///
    /// # Errors
    /// As [`AdminServer::start`].
    pub fn start_with_edits(
        path: &Path,
        status: StatusFn,
        edit: EditFn,
    ) -> Result<AdminServer, AdminError> {
        Self::bind(
            path,
            Handlers {
                status,
                edit: Some(edit),
                commands: Vec::new(),
            },
        )
    }

    /// Like [`AdminServer::start`], with every handler given explicitly.
    ///
    /// # Errors
    /// As [`AdminServer::start`].
    pub fn start_with(path: &Path, handlers: Handlers) -> Result<AdminServer, AdminError> {
        Self::bind(path, handlers)
    }

    fn bind(path: &Path, handlers: Handlers) -> Result<AdminServer, AdminError> {
        let owned = path.to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| AdminError::CreateDir {
                path: owned.clone(),
                source,
            })?;
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(AdminError::NotASocket { path: owned });
            }
            if UnixStream::connect(path).is_ok() {
                return Err(AdminError::InUse { path: owned });
            }
            // Nobody listens: a previous daemon died without cleaning up.
            std::fs::remove_file(path).map_err(|source| AdminError::Bind {
                path: owned.clone(),
                source,
            })?;
        }
        let listener = UnixListener::bind(path).map_err(|source| AdminError::Bind {
            path: owned.clone(),
            source,
        })?;
        let bound = std::fs::symlink_metadata(path)
            .map(|m| (m.dev(), m.ino()))
            .and_then(|inode| listener.set_nonblocking(true).map(|()| inode));
        let inode = match bound {
            Ok(i) => i,
            Err(source) => {
                let _ = std::fs::remove_file(path);
                return Err(AdminError::Bind {
                    path: owned,
                    source,
                });
            }
        };
        let perm = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        if let Err(source) = perm {
            let _ = std::fs::remove_file(path);
            return Err(AdminError::Bind {
                path: owned,
                source,
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop_thread = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("fulcrum-admin".into())
            .spawn(move || serve(listener, &stop_thread, &handlers))
            .map_err(|source| {
                let _ = std::fs::remove_file(path);
                AdminError::Bind {
                    path: owned.clone(),
                    source,
                }
            })?;
        Ok(AdminServer {
            path: owned,
            inode,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the thread (within one 20 ms poll, or after the client being
    /// served) and removes the socket file if it is still the one this server
    /// bound. Dropping the server does the same.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        let _ = thread.join();
        // Remove the socket file only if it is still the one we bound: if it
        // was deleted and another daemon bound the path since, it is theirs.
        let ours = std::fs::symlink_metadata(&self.path)
            .map(|m| (m.dev(), m.ino()) == self.inode)
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How often the accept loop looks at the stop flag when idle.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

fn serve(listener: UnixListener, stop: &AtomicBool, handlers: &Handlers) {
    // Non-blocking accept polled against the stop flag, rather than a blocking
    // accept woken by a self-connect: the self-connect cannot reach us if the
    // socket file was deleted meanwhile, and stop() would then hang.
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                // A client that misbehaves only loses its own answer.
                let _ = stream
                    .set_nonblocking(false)
                    .and_then(|()| handle_client(stream, handlers));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(_) => {
                // E.g. EMFILE: back off instead of spinning.
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

/// The one-line answer to one request line.
fn answer(line: &str, handlers: &Handlers) -> String {
    let err = |msg: &str| serde_json::to_string(&ErrorReply { error: msg }).unwrap_or_default();
    let req: serde_json::Value = match serde_json::from_str(line.trim()) {
        Ok(v) => v,
        Err(e) => {
            return err(&format!(
                "bad request: {e}; expected {{\"cmd\":\"status\"}}"
            ))
        }
    };
    let Some(cmd) = req.get("cmd").and_then(serde_json::Value::as_str) else {
        return err(
            "bad request: expected a JSON object with a \"cmd\" string, like {\"cmd\":\"status\"}",
        );
    };
    // A handler that panics loses its answer, not the server.
    let guarded = |f: &dyn Fn() -> String| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or_else(|_| err(&format!("{cmd} failed: its handler panicked")))
    };
    if cmd == "status" {
        return guarded(&|| {
            serde_json::to_string(&(handlers.status)())
                .unwrap_or_else(|e| err(&format!("cannot encode status: {e}")))
        });
    }
    if crate::edit::EDIT_COMMANDS.contains(&cmd) {
        let Some(edit) = &handlers.edit else {
            return err(&format!(
                "{cmd}: this admin socket is read-only (status only)"
            ));
        };
        return guarded(&|| match edit(&req) {
            Ok(generation) => serde_json::to_string(&OkReply {
                ok: true,
                generation,
            })
            .unwrap_or_default(),
            Err(e) => err(&e.to_string()),
        });
    }
    if let Some(c) = handlers.commands.iter().find(|c| c.name == cmd) {
        return guarded(&|| match (c.run)(&req) {
            Ok(v) => serde_json::to_string(&v).unwrap_or_default(),
            Err(e) => err(&e.to_string()),
        });
    }
    let extra: String = handlers
        .commands
        .iter()
        .map(|c| format!(", {}", c.name))
        .collect();
    err(&format!(
        "unknown command {cmd:?}: expected one of status, {}{extra}",
        crate::edit::EDIT_COMMANDS.join(", ")
    ))
}

fn handle_client(stream: UnixStream, handlers: &Handlers) -> std::io::Result<()> {
    stream.set_read_timeout(Some(SERVER_CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(SERVER_CLIENT_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST_BYTES)).read_line(&mut line)?;
    let mut reply = answer(&line, handlers);
    reply.push('\n');
    (&stream).write_all(reply.as_bytes())?;
    (&stream).flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::build_status;
    use dataplane::snapshot::Snapshot;

    #[test]
    fn test_answer_unknown_cmd_and_bad_json() {
        let f: StatusFn = Arc::new(|| build_status(&Snapshot::default(), &[], &[], 0, 0));
        let h = Handlers {
            status: f,
            edit: None,
            commands: vec![Command {
                name: "echo",
                mutates: false,
                run: Arc::new(|v: &serde_json::Value| Ok(v.clone())),
            }],
        };
        assert_eq!(
            answer("{\"cmd\":\"reload\"}\n", &h),
            r#"{"error":"unknown command \"reload\": expected one of status, add_service, edit_service, delete_service, add_real, edit_real, delete_real, clear, echo"}"#
        );
        assert_eq!(
            answer(r#"{"cmd":"echo","x":1}"#, &h),
            r#"{"cmd":"echo","x":1}"#
        );
        assert!(answer("hello", &h).starts_with(r#"{"error":"bad request: "#));
        assert_eq!(
            answer("[1]", &h),
            r#"{"error":"bad request: expected a JSON object with a \"cmd\" string, like {\"cmd\":\"status\"}"}"#
        );
        assert_eq!(
            answer(r#"{"cmd":"clear"}"#, &h),
            r#"{"error":"clear: this admin socket is read-only (status only)"}"#
        );
        let ok: Status = serde_json::from_str(&answer("{\"cmd\":\"status\"}", &h)).expect("status");
        assert!(ok.services.is_empty());
    }

    #[test]
    fn test_answer_edits() {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        let h = Handlers {
            status: Arc::new(|| build_status(&Snapshot::default(), &[], &[], 0, 0)),
            edit: Some(Arc::new(move |v: &serde_json::Value| {
                seen.lock().expect("lock").push(v.clone());
                match v["cmd"].as_str() {
                    Some("clear") => Ok(42),
                    Some("add_real") => Err(EditError::NoService("TCP 10.0.0.1:80".into())),
                    _ => panic!("boom"),
                }
            })),
            commands: Vec::new(),
        };
        assert_eq!(
            answer(r#"{"cmd":"clear"}"#, &h),
            r#"{"ok":true,"generation":42}"#
        );
        assert_eq!(
            answer(r#"{"cmd":"add_real","vip":"10.0.0.1:80"}"#, &h),
            r#"{"error":"no such service: TCP 10.0.0.1:80"}"#
        );
        assert_eq!(
            answer(r#"{"cmd":"edit_real"}"#, &h),
            r#"{"error":"edit_real failed: its handler panicked"}"#
        );
        let calls = calls.lock().expect("lock");
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls[1]["vip"], "10.0.0.1:80",
            "the whole request is passed"
        );
    }
}
