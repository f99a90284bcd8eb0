//! The admin socket server: an accept thread and one short-lived thread per
//! client, at most [`MAX_CLIENTS`] at once.
//!
//! Layer: control, slow path. See the [protocol](super) for what it
//! answers and who may ask it ([`Access`]). Guarantees:
//! - the socket file is never reachable by anyone but its owner (and the
//!   admin group) even for an instant: it is bound inside a fresh 0700
//!   directory next to its final path, given its final mode (0600, or 0660
//!   and the admin group), and only then renamed into place;
//! - every request is authorised from the caller's kernel-reported
//!   credentials (`SO_PEERCRED`), never from anything the client says;
//! - a client that stalls or trickles bytes only loses its own answer once
//!   its [`SERVER_CLIENT_TIMEOUT`] deadline (for the whole conversation, not
//!   per read) has passed; the other clients are served meanwhile;
//! - a handler that panics loses its own answer, not the server.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::status::Status;
use super::{AdminError, MAX_REQUEST_BYTES, SERVER_CLIENT_TIMEOUT};
use crate::edit::EditError;

/// Clients served at once; further connections wait in the listen backlog
/// until one of them is done (each is done within its
/// [`SERVER_CLIENT_TIMEOUT`] plus its handler's time).
pub const MAX_CLIENTS: usize = 16;

/// The status provider the server calls for each `status` request.
pub type StatusFn = Arc<dyn Fn() -> Status + Send + Sync>;

/// The edit handler the server calls for each write command, with the whole
/// request object (`cmd` included). `Ok(generation)` is the generation of
/// the snapshot it published; `Err(e)` is answered as `{"error":"<e>"}`
/// (the [`EditError`]'s one-line `Display`). The daemon's is
/// [`crate::edit::Editor::handle`]. Called from the clients' threads, so
/// possibly from several at once: the editor serialises edits itself.
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

/// The config's `admin_group`, resolved: its name and gid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminGroup {
    /// The group name, as configured.
    pub name: String,
    /// Its gid.
    pub gid: u32,
}

/// Who may use the admin socket, and for what.
///
/// - root (uid 0) and the daemon's own effective uid: everything;
/// - members of [`Access::group`] (primary or supplementary group): the
///   read-only requests (`status`, and each [`Command`] with `mutates:
///   false`), answered `permission denied` for mutations;
/// - anyone else: nothing. Without a group the socket is mode 0600, so the
///   kernel already refuses their `connect(2)`; with one it is 0660 and
///   group-owned, so only members reach the daemon at all. The credential
///   check is the second, authoritative fence (ipvsadm itself needs
///   `CAP_NET_ADMIN`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The group whose members may read, if configured.
    pub group: Option<AdminGroup>,
}

impl Access {
    /// The access policy of a config's `admin_group` (`None`: root and the
    /// daemon's uid only).
    ///
    /// # Errors
    /// [`AdminError::Group`] if the group does not exist (any more: the
    /// config loader checked it) or the group database cannot be read.
    pub fn for_group(name: Option<&str>) -> Result<Access, AdminError> {
        let Some(name) = name else {
            return Ok(Access::default());
        };
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Ok(Access {
                group: Some(AdminGroup {
                    name: name.to_string(),
                    gid: g.gid.as_raw(),
                }),
            }),
            Ok(None) => Err(AdminError::Group {
                name: name.to_string(),
                message: "no such group".into(),
            }),
            Err(e) => Err(AdminError::Group {
                name: name.to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// The socket file's mode: 0660 with a group, else 0600.
    pub fn socket_mode(&self) -> u32 {
        if self.group.is_some() {
            0o660
        } else {
            0o600
        }
    }

    /// What a caller with these credentials may do. `groups` are its
    /// supplementary groups; `own_uid` is the daemon's effective uid.
    pub fn role(&self, uid: u32, gid: u32, groups: &[u32], own_uid: u32) -> Role {
        if uid == 0 || uid == own_uid {
            return Role::Admin;
        }
        match &self.group {
            Some(g) if gid == g.gid || groups.contains(&g.gid) => Role::ReadOnly {
                uid,
                group: g.name.clone(),
            },
            Some(g) => Role::None {
                uid,
                needed: format!("root (uid 0), the daemon's uid {own_uid}, or membership of admin_group {:?} for read-only requests", g.name),
            },
            None => Role::None {
                uid,
                needed: format!("root (uid 0) or the daemon's uid {own_uid} (no admin_group is configured)"),
            },
        }
    }
}

/// A caller's rights, from [`Access::role`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Root or the daemon's uid: every request.
    Admin,
    /// A member of the admin group: read-only requests.
    ReadOnly {
        /// The caller's uid.
        uid: u32,
        /// The admin group's name.
        group: String,
    },
    /// Nothing.
    None {
        /// The caller's uid.
        uid: u32,
        /// Who may use the socket, for the refusal.
        needed: String,
    },
}

impl Role {
    /// `None` when `cmd` is allowed (a mutation when `mutates`), else the
    /// refusal, starting `permission denied: ` and naming the caller's uid
    /// and what is needed.
    fn refusal(&self, cmd: &str, mutates: bool) -> Option<String> {
        match self {
            Role::Admin => None,
            Role::ReadOnly { .. } if !mutates => None,
            Role::ReadOnly { uid, group } => Some(format!(
                "permission denied: uid {uid} (admin_group {group:?}) may only run read-only requests; {cmd} changes state and needs root (uid 0) or the daemon's uid"
            )),
            Role::None { uid, needed } => Some(format!(
                "permission denied: uid {uid} may not use this admin socket: {cmd} needs {needed}"
            )),
        }
    }
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
            Access::default(),
        )
    }

    /// Like [`AdminServer::start`], and answers the write commands with
    /// `edit` (called on the clients' threads).
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
            Access::default(),
        )
    }

    /// Like [`AdminServer::start`], with every handler given explicitly.
    ///
    /// # Errors
    /// As [`AdminServer::start`].
    pub fn start_with(path: &Path, handlers: Handlers) -> Result<AdminServer, AdminError> {
        Self::bind(path, handlers, Access::default())
    }

    /// Like [`AdminServer::start_with`], with the access policy `access`
    /// (the socket is 0660 and owned by the admin group when it has one).
    ///
    /// # Errors
    /// As [`AdminServer::start`]; [`AdminError::Bind`] also if the socket
    /// cannot be given to the group.
    pub fn start_with_access(
        path: &Path,
        handlers: Handlers,
        access: Access,
    ) -> Result<AdminServer, AdminError> {
        Self::bind(path, handlers, access)
    }

    fn bind(path: &Path, handlers: Handlers, access: Access) -> Result<AdminServer, AdminError> {
        let owned = path.to_path_buf();
        let bind_err = |source| AdminError::Bind {
            path: owned.clone(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|source| AdminError::CreateDir {
            path: owned.clone(),
            source,
        })?;
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(AdminError::NotASocket { path: owned });
            }
            if UnixStream::connect(path).is_ok() {
                return Err(AdminError::InUse { path: owned });
            }
            // Nobody listens: a previous daemon died without cleaning up;
            // the rename below replaces its file.
        }
        let (listener, inode) = bind_private(dir, path, &access).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(|source| {
            let _ = std::fs::remove_file(path);
            bind_err(source)
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_thread = Arc::clone(&stop);
        let shared = Arc::new((handlers, access));
        let thread = std::thread::Builder::new()
            .name("fulcrum-admin".into())
            .spawn(move || serve(listener, &stop_thread, &shared))
            .map_err(|source| {
                let _ = std::fs::remove_file(path);
                bind_err(source)
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

    /// Stops the accept thread (within one 20 ms poll), waits for the
    /// clients being served (at most their deadline), and removes the socket
    /// file if it is still the one this server bound. Dropping the server
    /// does the same.
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

/// Binds the socket inside a fresh 0700 directory in `dir`, gives it its
/// final mode and group there, and renames it to `path`: at no instant is a
/// socket at `path` (or reachable through the private directory) open to
/// anyone else. Returns the listener and the file's `(st_dev, st_ino)`.
fn bind_private(
    dir: &Path,
    path: &Path,
    access: &Access,
) -> std::io::Result<(UnixListener, (u64, u64))> {
    // Short names: the private path must fit sun_path (108 bytes) as the
    // final one does. Unique per process and per bind.
    static BINDS: AtomicUsize = AtomicUsize::new(0);
    let n = BINDS.fetch_add(1, Ordering::Relaxed);
    let private = dir.join(format!(".f{:x}-{n:x}", std::process::id()));
    if std::fs::symlink_metadata(&private).is_ok() {
        // Left by a crashed process that had our pid.
        std::fs::remove_dir_all(&private)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let tmp = private.join("s");
    let result = (|| {
        let listener = UnixListener::bind(&tmp)?;
        if let Some(g) = &access.group {
            std::os::unix::fs::chown(&tmp, None, Some(g.gid))?;
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(access.socket_mode()))?;
        std::fs::rename(&tmp, path)?;
        let m = std::fs::symlink_metadata(path)?;
        Ok((listener, (m.dev(), m.ino())))
    })();
    let _ = std::fs::remove_dir_all(&private);
    result
}

/// How often the accept loop looks at the stop flag when idle.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Decrements the count of clients being served when dropped (the client's
/// thread ends, or could not be spawned).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve(listener: UnixListener, stop: &AtomicBool, shared: &Arc<(Handlers, Access)>) {
    let own_uid = nix::unistd::geteuid().as_raw();
    let active = Arc::new(AtomicUsize::new(0));
    // Non-blocking accept polled against the stop flag, rather than a blocking
    // accept woken by a self-connect: the self-connect cannot reach us if the
    // socket file was deleted meanwhile, and stop() would then hang.
    while !stop.load(Ordering::SeqCst) {
        if active.load(Ordering::SeqCst) >= MAX_CLIENTS {
            // Full: new connections wait in the backlog.
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let deadline = Instant::now() + SERVER_CLIENT_TIMEOUT;
                active.fetch_add(1, Ordering::SeqCst);
                let slot = Slot(Arc::clone(&active));
                let shared = Arc::clone(shared);
                // A client that misbehaves only loses its own answer; if the
                // thread cannot be made, the connection is closed.
                let _ = std::thread::Builder::new()
                    .name("fulcrum-admin-client".into())
                    .spawn(move || {
                        let _slot = slot;
                        let (handlers, access) = &*shared;
                        let _ = handle_client(stream, handlers, access, own_uid, deadline);
                    });
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
    // Let the clients being served finish (each within its deadline, plus a
    // handler's time) before the caller tears down what handlers use.
    let until = Instant::now() + SERVER_CLIENT_TIMEOUT + Duration::from_secs(1);
    while active.load(Ordering::SeqCst) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The caller's role, from its `SO_PEERCRED` credentials and its
/// supplementary groups (`/proc/<pid>/status`, else the group database's
/// member lists).
fn peer_role(stream: &UnixStream, access: &Access, own_uid: u32) -> std::io::Result<Role> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(std::io::Error::from)?;
    let (uid, gid) = (cred.uid(), cred.gid());
    let needs_groups =
        uid != 0 && uid != own_uid && access.group.as_ref().is_some_and(|g| g.gid != gid);
    let groups = if needs_groups {
        supplementary_groups(cred.pid(), uid, access)
    } else {
        Vec::new()
    };
    Ok(access.role(uid, gid, &groups, own_uid))
}

/// The supplementary groups of process `pid` (the `Groups:` line of
/// `/proc/<pid>/status`); when that cannot be read (hidepid), the admin
/// group if the user `uid` is listed as its member in the group database.
fn supplementary_groups(pid: i32, uid: u32, access: &Access) -> Vec<u32> {
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        if let Some(line) = text.lines().find(|l| l.starts_with("Groups:")) {
            return line["Groups:".len()..]
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect();
        }
    }
    let Some(g) = &access.group else {
        return Vec::new();
    };
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid));
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(g.gid));
    match (user, group) {
        (Ok(Some(u)), Ok(Some(grp))) if grp.mem.contains(&u.name) => vec![g.gid],
        _ => Vec::new(),
    }
}

/// The one-line answer to one request line from a caller with `role`.
fn answer(line: &str, handlers: &Handlers, role: &Role) -> String {
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
    let refused = |mutates: bool| role.refusal(cmd, mutates).map(|m| err(&m));
    if cmd == "status" {
        if let Some(no) = refused(false) {
            return no;
        }
        return guarded(&|| {
            serde_json::to_string(&(handlers.status)())
                .unwrap_or_else(|e| err(&format!("cannot encode status: {e}")))
        });
    }
    if crate::edit::EDIT_COMMANDS.contains(&cmd) {
        if let Some(no) = refused(true) {
            return no;
        }
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
        if let Some(no) = refused(c.mutates) {
            return no;
        }
        return guarded(&|| match (c.run)(&req) {
            Ok(v) => serde_json::to_string(&v).unwrap_or_default(),
            Err(e) => err(&e.to_string()),
        });
    }
    if let Some(no) = refused(false) {
        return no;
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

/// Time left before `deadline`, or a `TimedOut` error once it has passed
/// (a zero timeout would mean "none" to the socket).
fn left(deadline: Instant) -> std::io::Result<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "admin client deadline passed",
        ));
    }
    Ok(d)
}

/// Reads one request line (at most [`MAX_REQUEST_BYTES`]) before
/// `deadline`.
fn read_request(stream: &UnixStream, deadline: Instant) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        stream.set_read_timeout(Some(left(deadline)?))?;
        let n = match (&*stream).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(line);
        }
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..i]);
            return Ok(line);
        }
        line.extend_from_slice(&buf[..n]);
        if line.len() as u64 > MAX_REQUEST_BYTES {
            return Ok(line);
        }
    }
}

fn handle_client(
    stream: UnixStream,
    handlers: &Handlers,
    access: &Access,
    own_uid: u32,
    deadline: Instant,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let role = peer_role(&stream, access, own_uid)?;
    let line = read_request(&stream, deadline)?;
    let mut reply = if line.len() as u64 > MAX_REQUEST_BYTES {
        serde_json::to_string(&ErrorReply {
            error: &format!("bad request: longer than {MAX_REQUEST_BYTES} bytes"),
        })
        .unwrap_or_default()
    } else {
        answer(&String::from_utf8_lossy(&line), handlers, &role)
    };
    reply.push('\n');
    for chunk in reply.as_bytes().chunks(64 * 1024) {
        stream.set_write_timeout(Some(left(deadline)?))?;
        (&stream).write_all(chunk)?;
    }
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
            answer("{\"cmd\":\"reload\"}\n", &h, &Role::Admin),
            r#"{"error":"unknown command \"reload\": expected one of status, add_service, edit_service, delete_service, add_real, edit_real, delete_real, clear, echo"}"#
        );
        assert_eq!(
            answer(r#"{"cmd":"echo","x":1}"#, &h, &Role::Admin),
            r#"{"cmd":"echo","x":1}"#
        );
        assert!(answer("hello", &h, &Role::Admin).starts_with(r#"{"error":"bad request: "#));
        assert_eq!(
            answer("[1]", &h, &Role::Admin),
            r#"{"error":"bad request: expected a JSON object with a \"cmd\" string, like {\"cmd\":\"status\"}"}"#
        );
        assert_eq!(
            answer(r#"{"cmd":"clear"}"#, &h, &Role::Admin),
            r#"{"error":"clear: this admin socket is read-only (status only)"}"#
        );
        let ok: Status = serde_json::from_str(&answer("{\"cmd\":\"status\"}", &h, &Role::Admin))
            .expect("status");
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
            answer(r#"{"cmd":"clear"}"#, &h, &Role::Admin),
            r#"{"ok":true,"generation":42}"#
        );
        assert_eq!(
            answer(
                r#"{"cmd":"add_real","vip":"10.0.0.1:80"}"#,
                &h,
                &Role::Admin
            ),
            r#"{"error":"no such service: TCP 10.0.0.1:80"}"#
        );
        assert_eq!(
            answer(r#"{"cmd":"edit_real"}"#, &h, &Role::Admin),
            r#"{"error":"edit_real failed: its handler panicked"}"#
        );
        let calls = calls.lock().expect("lock");
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls[1]["vip"], "10.0.0.1:80",
            "the whole request is passed"
        );
    }

    #[test]
    fn test_roles_and_refusals() {
        let h = Handlers {
            status: Arc::new(|| build_status(&Snapshot::default(), &[], &[], 0, 0)),
            edit: Some(Arc::new(|_: &serde_json::Value| Ok(7))),
            commands: vec![
                Command {
                    name: "conns",
                    mutates: false,
                    run: Arc::new(|_: &serde_json::Value| Ok(serde_json::json!({"n": 0}))),
                },
                Command {
                    name: "reload",
                    mutates: true,
                    run: Arc::new(|_: &serde_json::Value| Ok(serde_json::json!({"ok": true}))),
                },
            ],
        };
        let group = Access {
            group: Some(AdminGroup {
                name: "fulcrum-ro".into(),
                gid: 900,
            }),
        };
        assert_eq!(group.socket_mode(), 0o660);
        assert_eq!(Access::default().socket_mode(), 0o600);
        assert_eq!(group.role(0, 0, &[], 1000), Role::Admin);
        assert_eq!(group.role(1000, 1000, &[], 1000), Role::Admin, "own uid");
        let member = group.role(1001, 100, &[5, 900], 0);
        assert_eq!(
            member,
            Role::ReadOnly {
                uid: 1001,
                group: "fulcrum-ro".into()
            }
        );
        assert_eq!(group.role(1002, 900, &[], 0), member_of(1002));
        let ok_status = answer(r#"{"cmd":"status"}"#, &h, &member);
        assert!(
            ok_status.starts_with(r#"{"version""#) || ok_status.contains("services"),
            "{ok_status}"
        );
        assert_eq!(answer(r#"{"cmd":"conns"}"#, &h, &member), r#"{"n":0}"#);
        for cmd in ["reload", "add_real", "clear"] {
            assert_eq!(
                answer(&format!("{{\"cmd\":\"{cmd}\"}}"), &h, &member),
                format!("{{\"error\":\"permission denied: uid 1001 (admin_group \\\"fulcrum-ro\\\") may only run read-only requests; {cmd} changes state and needs root (uid 0) or the daemon's uid\"}}")
            );
        }
        let stranger = group.role(1003, 100, &[5], 0);
        assert!(matches!(stranger, Role::None { uid: 1003, .. }));
        let no = answer(r#"{"cmd":"status"}"#, &h, &stranger);
        assert!(
            no.starts_with(r#"{"error":"permission denied: uid 1003 may not use this admin socket: status needs root (uid 0), the daemon's uid 0, or membership of admin_group \"fulcrum-ro\""#),
            "{no}"
        );
        let no = answer(
            r#"{"cmd":"status"}"#,
            &h,
            &Access::default().role(1003, 1003, &[], 0),
        );
        assert!(no.contains("no admin_group is configured"), "{no}");
        assert_eq!(
            answer(r#"{"cmd":"clear"}"#, &h, &Role::Admin),
            r#"{"ok":true,"generation":7}"#
        );
    }

    fn member_of(uid: u32) -> Role {
        Role::ReadOnly {
            uid,
            group: "fulcrum-ro".into(),
        }
    }
}
