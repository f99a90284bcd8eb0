//! The daemon's local admin socket, the status it serves, and the
//! ipvsadm-style text `fulcrumctl` prints from it.
//!
//! Layer: control (slow path only; the workers never see any of this).
//!
//! Protocol: a Unix stream socket. The client connects and sends one line of
//! JSON; the server answers one line of JSON and closes.
//! - `{"cmd":"status"}` → a [`Status`].
//! - The write commands of [`crate::edit`] (`add_service`, `edit_service`,
//!   `delete_service`, `add_real`, `edit_real`, `delete_real`, `clear`) →
//!   `{"ok":true,"generation":N}` once the edited snapshot is published, when
//!   the server was started with an [`EditFn`] ([`AdminServer::start_with_edits`]).
//! - Anything else, a failed edit, or a request that is not JSON →
//!   `{"error":"..."}`, one line.
//!
//! One client is served at a time (so edits are also serialised), each with
//! a 2 s read/write timeout so a stuck client cannot hold the socket; the
//! accept loop polls a stop flag every 20 ms, so stopping never hangs.
//!
//! Guarantees: [`AdminServer::start`] never steals a socket from a live
//! daemon (it connects first and refuses if someone answers), only removes a
//! stale *socket* file (never a regular file), and the socket file is removed
//! again when the server stops. The socket is created mode 0600 because the
//! admin API is for the operator only (ipvsadm likewise needs root).
//!
//! The text formats mirror `ipvsadm -L -n` (and `--stats`, `--exact`) from
//! ipvsadm 1.31 `print_title()` / `print_service_entry()` /
//! `print_largenum()`: same headers, same column widths, same K/M/G/T
//! units in base 1000, services sorted by protocol, VIP, port and real
//! servers by address, port, as ipvsadm sorts by default. fulcrum never
//! resolves names, so `-n` is the only mode.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use dataplane::snapshot::{Method, Snapshot};
use dataplane::stats::{DropReason, RealStats, SharedStats, WorkerStats};
use serde::{Deserialize, Serialize};

/// Per-client read/write timeout on the server side.
pub const SERVER_CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Client-side connect/read/write timeout of [`query`].
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request line the server reads, in bytes; longer ones are refused.
pub const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// Longest reply the client accepts, in bytes.
pub const MAX_REPLY_BYTES: u64 = 256 * 1024 * 1024;

/// What `{"cmd":"status"}` returns: the whole director at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// fulcrum's version (the crate version, e.g. `"0.1.0"`).
    pub version: String,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// Connection-table capacity of each worker (config `conn_table_size`).
    pub conn_table_size: u64,
    /// One entry per worker, in worker id order.
    pub workers: Vec<WorkerStatus>,
    /// One entry per virtual service, in config order.
    pub services: Vec<ServiceStatus>,
}

/// One worker's counters, as last published by the worker on its slow tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Worker id (0-based, dense).
    pub id: u32,
    /// EAL lcore the worker runs on.
    pub lcore: u32,
    /// The worker's counters by name ([`WorkerStats::COUNTER_NAMES`]:
    /// `rx_pkts`, `tx_bytes`, `conns_created`, ...), flattened into the
    /// worker's JSON object. A daemon lists every counter it has, zeros
    /// included; one that an older daemon lacks is absent here and reads as
    /// 0 through [`WorkerStatus::counter`].
    #[serde(flatten)]
    pub counters: BTreeMap<String, u64>,
    /// Drops by [`DropReason::name`]; every reason present, zeros included.
    pub drops: BTreeMap<String, u64>,
}

impl WorkerStatus {
    /// The counter named `name`, 0 when the daemon did not report it.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// One virtual service with its totals (the sums over its real servers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// `"TCP"` or `"UDP"`, as ipvsadm prints it.
    pub proto: String,
    /// VIP, dotted quad.
    pub vip: String,
    /// Virtual port, 0 = all ports.
    pub vport: u16,
    /// ipvsadm scheduler name.
    pub scheduler: String,
    /// `"nat"` or `"dr"`: the method of the service's first real server (the
    /// snapshot keeps methods per real server only), `"nat"` when it has none.
    pub forwarding: String,
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → real servers.
    pub in_pkts: u64,
    /// Packets real servers → clients (NAT only).
    pub out_pkts: u64,
    /// Bytes client → real servers (IP length).
    pub in_bytes: u64,
    /// Bytes real servers → clients (IP length).
    pub out_bytes: u64,
    /// ESTABLISHED connections (IPVS activeconns).
    pub active_conns: u64,
    /// Connections in other states (IPVS inactconns).
    pub inactive_conns: u64,
    /// Real servers, in config (scheduler) order.
    pub reals: Vec<RealStatus>,
    /// Persistence timeout in seconds (ipvsadm `-p`), `None` when the
    /// service is not persistent.
    #[serde(default)]
    pub persistence_timeout_s: Option<u32>,
    /// Persistence netmask, dotted quad (ipvsadm `-M`); present only with
    /// a timeout.
    #[serde(default)]
    pub persistence_netmask: Option<String>,
    /// Scheduler flags by their scheduler-specific names (ipvsadm `-b`),
    /// e.g. `["sh-port"]`; empty when none is set.
    #[serde(default)]
    pub sched_flags: Vec<String>,
}

/// One real server with its counters summed over all workers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealStatus {
    /// RIP, dotted quad.
    pub ip: String,
    /// Real server port.
    pub port: u16,
    /// `"Masq"` or `"Route"`, as ipvsadm's `fwd_name()` prints it.
    pub forwarding: String,
    /// IPVS weight.
    pub weight: u32,
    /// ESTABLISHED connections (IPVS activeconns).
    pub active_conns: u64,
    /// Connections in other states (IPVS inactconns).
    pub inactive_conns: u64,
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → real server.
    pub in_pkts: u64,
    /// Packets real server → client (NAT only).
    pub out_pkts: u64,
    /// Bytes client → real server.
    pub in_bytes: u64,
    /// Bytes real server → client.
    pub out_bytes: u64,
}

/// Admin socket failures, server and client side. Every message names the
/// socket path.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The socket's parent directory could not be created.
    #[error("admin socket {path}: cannot create its directory: {source}")]
    CreateDir {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Another process answers on the socket: a second daemon must not steal
    /// it.
    #[error("admin socket {path} is in use: another fulcrum is running")]
    InUse {
        /// Socket path.
        path: PathBuf,
    },
    /// Something that is not a socket sits at the path; it is left alone.
    #[error("admin socket {path} exists and is not a socket")]
    NotASocket {
        /// Socket path.
        path: PathBuf,
    },
    /// `bind(2)` or the accept thread's creation failed.
    #[error("admin socket {path}: cannot listen: {source}")]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The client could not connect.
    #[error("cannot connect to admin socket {path}: {source} (is fulcrum running?)")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Reading or writing the conversation failed (e.g. timed out).
    #[error("admin socket {path}: {source} (is fulcrum running?)")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The reply was not the JSON expected.
    #[error("admin socket {path}: bad reply: {message}")]
    Protocol {
        /// Socket path.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The daemon answered with `{"error": ...}`.
    #[error("admin socket {path}: fulcrum answered: {message}")]
    Server {
        /// Socket path.
        path: PathBuf,
        /// The daemon's error text.
        message: String,
    },
}

/// Builds the status from the published snapshot and the workers' shared
/// counters.
///
/// `stats[i]` and `lcores[i]` belong to worker `i`; a worker without an
/// lcore entry is reported on lcore `u32::MAX`. Each real server's counters
/// are the sum over all workers of `SharedStats::load_real(id)`; a service's
/// totals are the sums over its real servers (as `ipvsadm --stats` shows
/// them), so counters of a real server removed by a reload disappear from the
/// totals (IPVS keeps them in the service; fulcrum keeps no history).
pub fn build_status(
    snap: &Snapshot,
    stats: &[Arc<SharedStats>],
    lcores: &[u32],
    uptime_s: u64,
    conn_table_size: u64,
) -> Status {
    let workers = stats
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let w = s.load();
            let drops = DropReason::ALL
                .iter()
                .map(|&r| (r.name().to_string(), w.drops[r as usize]))
                .collect();
            WorkerStatus {
                id: i as u32,
                lcore: lcores.get(i).copied().unwrap_or(u32::MAX),
                counters: WorkerStats::COUNTER_NAMES
                    .iter()
                    .zip(w.counter_values())
                    .map(|(&n, v)| (n.to_string(), v))
                    .collect(),
                drops,
            }
        })
        .collect();

    let services = snap
        .services
        .iter()
        .map(|svc| {
            let reals: Vec<RealStatus> = svc
                .reals
                .iter()
                .filter_map(|&id| snap.reals.get(id as usize).map(|r| (id, r)))
                .map(|(id, r)| {
                    let mut sum = RealStats::default();
                    for s in stats {
                        let x = s.load_real(id as usize);
                        sum.conns += x.conns;
                        sum.in_pkts += x.in_pkts;
                        sum.out_pkts += x.out_pkts;
                        sum.in_bytes += x.in_bytes;
                        sum.out_bytes += x.out_bytes;
                        sum.active_conns += x.active_conns;
                        sum.inactive_conns += x.inactive_conns;
                    }
                    RealStatus {
                        ip: Ipv4Addr::from(r.ip).to_string(),
                        port: r.port,
                        forwarding: r.method.to_string(),
                        weight: r.weight,
                        active_conns: sum.active_conns,
                        inactive_conns: sum.inactive_conns,
                        conns: sum.conns,
                        in_pkts: sum.in_pkts,
                        out_pkts: sum.out_pkts,
                        in_bytes: sum.in_bytes,
                        out_bytes: sum.out_bytes,
                    }
                })
                .collect();
            let forwarding = svc
                .reals
                .first()
                .and_then(|&id| snap.reals.get(id as usize))
                .map_or(Method::Nat, |r| r.method);
            let total = |f: fn(&RealStatus) -> u64| reals.iter().map(f).sum::<u64>();
            ServiceStatus {
                proto: svc.key.proto.to_string(),
                vip: Ipv4Addr::from(svc.key.vip).to_string(),
                vport: svc.key.vport,
                scheduler: svc.scheduler.name().to_string(),
                forwarding: forwarding.config_name().to_string(),
                conns: total(|r| r.conns),
                in_pkts: total(|r| r.in_pkts),
                out_pkts: total(|r| r.out_pkts),
                in_bytes: total(|r| r.in_bytes),
                out_bytes: total(|r| r.out_bytes),
                active_conns: total(|r| r.active_conns),
                inactive_conns: total(|r| r.inactive_conns),
                reals,
                persistence_timeout_s: svc.persistence.map(|p| p.timeout_ms / 1000),
                persistence_netmask: svc.persistence.map(|p| Ipv4Addr::from(p.mask).to_string()),
                sched_flags: svc.sched_flags.iter().map(|f| f.to_string()).collect(),
            }
        })
        .collect();

    Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s,
        conn_table_size,
        workers,
        services,
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// The status provider the server calls for each `status` request.
pub type StatusFn = Arc<dyn Fn() -> Status + Send + Sync>;

/// The edit handler the server calls for each write command, with the whole
/// request object (`cmd` included). `Ok(generation)` is the generation of
/// the snapshot it published; `Err(message)` is answered as
/// `{"error":message}`. The daemon's is [`crate::edit::Editor::handle`].
pub type EditFn = Arc<dyn Fn(&serde_json::Value) -> Result<u64, String> + Send + Sync>;

/// What the server answers with.
#[derive(Clone)]
struct Handlers {
    status: StatusFn,
    edit: Option<EditFn>,
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
        Self::bind(path, Handlers { status, edit: None })
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
            },
        )
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
            Err(msg) => err(&msg),
        });
    }
    err(&format!(
        "unknown command {cmd:?}: expected one of status, {}",
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

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// Sends one request object to the daemon listening on `path` and returns
/// its reply object (5 s timeout each way).
///
/// # Errors
/// [`AdminError::Connect`] when nothing listens (the message names the path
/// and asks "is fulcrum running?"), [`AdminError::Io`] on timeouts,
/// [`AdminError::Server`] if the daemon answered `{"error":...}`,
/// [`AdminError::Protocol`] if the reply is not JSON.
pub fn request(path: &Path, req: &serde_json::Value) -> Result<serde_json::Value, AdminError> {
    let owned = || path.to_path_buf();
    let stream = UnixStream::connect(path).map_err(|source| AdminError::Connect {
        path: owned(),
        source,
    })?;
    let io = |source| AdminError::Io {
        path: owned(),
        source,
    };
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    let mut line = req.to_string();
    line.push('\n');
    (&stream).write_all(line.as_bytes()).map_err(io)?;
    let mut reply = String::new();
    (&stream)
        .take(MAX_REPLY_BYTES)
        .read_to_string(&mut reply)
        .map_err(io)?;
    let value: serde_json::Value =
        serde_json::from_str(reply.trim()).map_err(|e| AdminError::Protocol {
            path: owned(),
            message: format!("not JSON: {e}"),
        })?;
    if let Some(msg) = value.get("error") {
        return Err(AdminError::Server {
            path: owned(),
            message: msg.as_str().map_or_else(|| msg.to_string(), str::to_string),
        });
    }
    Ok(value)
}

/// Asks the daemon listening on `path` for its [`Status`] (5 s timeout).
///
/// # Errors
/// As [`request`]; [`AdminError::Protocol`] also if the reply is not a
/// `Status`.
pub fn query(path: &Path) -> Result<Status, AdminError> {
    let value = request(path, &serde_json::json!({ "cmd": "status" }))?;
    serde_json::from_value(value).map_err(|e| AdminError::Protocol {
        path: path.to_path_buf(),
        message: format!("not a status: {e}"),
    })
}

/// Sends one write command (see [`crate::edit`]) and returns the generation
/// of the snapshot the daemon published for it.
///
/// # Errors
/// As [`request`]; a refused edit is [`AdminError::Server`] carrying the
/// daemon's one-line reason; [`AdminError::Protocol`] if the reply lacks
/// `"ok":true` and a generation.
pub fn edit(path: &Path, req: &serde_json::Value) -> Result<u64, AdminError> {
    let value = request(path, req)?;
    match (
        value.get("ok"),
        value.get("generation").and_then(serde_json::Value::as_u64),
    ) {
        (Some(serde_json::Value::Bool(true)), Some(g)) => Ok(g),
        _ => Err(AdminError::Protocol {
            path: path.to_path_buf(),
            message: format!("expected {{\"ok\":true,\"generation\":N}}, got {value}"),
        }),
    }
}

// ---------------------------------------------------------------------------
// Text output
// ---------------------------------------------------------------------------

/// ipvsadm's `print_largenum()`: a right-aligned counter 9 columns wide
/// (wider when `--exact` needs it), abbreviated with K/M/G/T (base 1000)
/// from 100 million up unless `exact`.
pub fn format_largenum(i: u64, exact: bool) -> String {
    if exact {
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        return format!("{i:>width$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

fn proto_rank(p: &str) -> u8 {
    // IP protocol numbers, as ipvsadm's ipvs_cmp_services() compares them.
    match p {
        "TCP" => 6,
        "UDP" => 17,
        _ => u8::MAX,
    }
}

/// Sort key of an address string: numeric when it parses, else after all.
fn ip_key(s: &str) -> (u32, String) {
    match s.parse::<Ipv4Addr>() {
        Ok(ip) => (u32::from(ip), String::new()),
        Err(_) => (u32::MAX, s.to_string()),
    }
}

/// The header line standing in for ipvsadm's
/// `IP Virtual Server version 1.2.1 (size=4096)`.
fn banner(st: &Status) -> String {
    let n = st.workers.len();
    format!(
        "fulcrum {} (conn table size={} per worker, {} worker{})\n",
        st.version,
        st.conn_table_size,
        n,
        if n == 1 { "" } else { "s" }
    )
}

/// `fulcrumctl -L -n` output (with `stats`: `--stats`; with `exact`:
/// `--exact`), byte for byte in ipvsadm's layout:
///
/// ```text
/// fulcrum 0.1.0 (conn table size=1048576 per worker, 2 workers)
/// Prot LocalAddress:Port Scheduler Flags
///   -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
/// TCP  10.0.0.100:80 rr
///   -> 10.1.0.11:80                 Masq    1      0          0
/// ```
///
/// (the real-server lines keep ipvsadm's trailing padding of the
/// `%-10u` InActConn column). Services are sorted by protocol number, VIP,
/// port; real servers by address, port.
pub fn format_list(st: &Status, stats: bool, exact: bool) -> String {
    let mut out = banner(st);
    if stats {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
        out.push_str("  -> RemoteAddress:Port\n");
    } else {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
    for s in sorted_services(st) {
        let svc_name = format!("{}  {}:{}", s.proto, s.vip, s.vport);
        if stats {
            let _ = write!(out, "{svc_name:<33}");
            for v in [s.conns, s.in_pkts, s.out_pkts, s.in_bytes, s.out_bytes] {
                out.push_str(&format_largenum(v, exact));
            }
            out.push('\n');
        } else {
            // ipvsadm -L: "rr (flags) persistent 300 mask 255.255.255.0".
            let _ = write!(out, "{svc_name} {}", s.scheduler);
            if !s.sched_flags.is_empty() {
                let _ = write!(out, " ({})", s.sched_flags.join(","));
            }
            if let Some((t, mask)) = persistence_shown(s) {
                let _ = write!(out, " persistent {t}");
                if let Some(m) = mask {
                    let _ = write!(out, " mask {m}");
                }
            }
            out.push('\n');
        }
        for r in sorted_reals(s) {
            let dname = format!("{}:{}", r.ip, r.port);
            if stats {
                let _ = write!(out, "  -> {dname:<28}");
                for v in [r.conns, r.in_pkts, r.out_pkts, r.in_bytes, r.out_bytes] {
                    out.push_str(&format_largenum(v, exact));
                }
                out.push('\n');
            } else {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                    r.forwarding, r.weight, r.active_conns, r.inactive_conns
                );
            }
        }
    }
    out
}

/// Services in ipvsadm's listing order: protocol number, VIP, port.
fn sorted_services(st: &Status) -> Vec<&ServiceStatus> {
    let mut services: Vec<&ServiceStatus> = st.services.iter().collect();
    services.sort_by_key(|s| (proto_rank(&s.proto), ip_key(&s.vip), s.vport));
    services
}

/// A service's real servers in ipvsadm's listing order: address, port.
fn sorted_reals(s: &ServiceStatus) -> Vec<&RealStatus> {
    let mut reals: Vec<&RealStatus> = s.reals.iter().collect();
    reals.sort_by_key(|r| (ip_key(&r.ip), r.port));
    reals
}

/// `fulcrumctl -S` output: the current rules as the commands that rebuild
/// them, in ipvsadm `-S -n` form (`print_service_entry()` with `FMT_RULE`)
/// and listing order, one per line:
///
/// ```text
/// -A -t 10.0.0.100:80 -s rr
/// -a -t 10.0.0.100:80 -r 10.1.0.11:80 -m -w 1
/// ```
///
/// `-t` for TCP, `-u` for UDP; `-m` for masquerading (NAT), `-g` for direct
/// routing. Only what [`Status`] carries is saved: scheduler, real servers,
/// forwarding methods and weights.
pub fn format_save(st: &Status) -> String {
    let mut out = String::new();
    for s in sorted_services(st) {
        let proto = if s.proto == "UDP" { "-u" } else { "-t" };
        let svc = format!("{proto} {}:{}", s.vip, s.vport);
        let mut opts = String::new();
        if let Some((t, mask)) = persistence_shown(s) {
            let _ = write!(opts, " -p {t}");
            if let Some(m) = mask {
                let _ = write!(opts, " -M {m}");
            }
        }
        if !s.sched_flags.is_empty() {
            let _ = write!(opts, " -b {}", s.sched_flags.join(","));
        }
        let _ = writeln!(out, "-A {svc} -s {}{opts}", s.scheduler);
        for r in sorted_reals(s) {
            let fwd = if r.forwarding == "Route" { "-g" } else { "-m" };
            let _ = writeln!(out, "-a {svc} -r {}:{} {fwd} -w {}", r.ip, r.port, r.weight);
        }
    }
    out
}

/// A persistent service's timeout (seconds) and its netmask unless it is
/// ipvsadm's default `255.255.255.255` (which ipvsadm neither prints in
/// `-L` nor saves in `-S`); `None` when the service is not persistent.
fn persistence_shown(s: &ServiceStatus) -> Option<(u32, Option<&str>)> {
    let t = s.persistence_timeout_s?;
    let mask = s
        .persistence_netmask
        .as_deref()
        .filter(|&m| m != "255.255.255.255");
    Some((t, mask))
}

/// `fulcrumctl --counters` output: one row per counter, one column per
/// worker (headed `worker N`, with its lcore on the next row) and a `total`
/// column; all numbers exact. Drop rows are `drop/<reason>` in
/// [`DropReason`] order followed by a `drops_total` row. A drop reason that
/// is zero on every worker is left out unless `show_zero_drops` (what
/// `fulcrumctl --counters --exact` asks for).
pub fn format_counters(st: &Status, show_zero_drops: bool) -> String {
    // Counters in declaration order, then any the daemon has and we do not.
    let mut counters: Vec<String> = WorkerStats::COUNTER_NAMES
        .iter()
        .map(|n| n.to_string())
        .collect();
    for w in &st.workers {
        for k in w.counters.keys() {
            if !counters.contains(k) {
                counters.push(k.clone());
            }
        }
    }
    let mut rows: Vec<(String, Vec<u64>)> = counters
        .iter()
        .map(|n| (n.clone(), st.workers.iter().map(|w| w.counter(n)).collect()))
        .collect();

    // Reasons in counter order, then any the daemon knows and we do not.
    let mut names: Vec<String> = DropReason::ALL
        .iter()
        .map(|r| r.name().to_string())
        .collect();
    for w in &st.workers {
        for k in w.drops.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let drop_of = |w: &WorkerStatus, n: &str| w.drops.get(n).copied().unwrap_or(0);
    for n in &names {
        let vals: Vec<u64> = st.workers.iter().map(|w| drop_of(w, n)).collect();
        if show_zero_drops || vals.iter().any(|&v| v != 0) {
            rows.push((format!("drop/{n}"), vals));
        }
    }
    let totals: Vec<u64> = st
        .workers
        .iter()
        .map(|w| w.drops.values().fold(0u64, |a, &b| a.saturating_add(b)))
        .collect();
    rows.push(("drops_total".to_string(), totals));

    let heads: Vec<String> = st
        .workers
        .iter()
        .map(|w| format!("worker {}", w.id))
        .collect();
    let lcores: Vec<String> = st.workers.iter().map(|w| w.lcore.to_string()).collect();
    let row_total = |v: &[u64]| v.iter().fold(0u64, |a, &b| a.saturating_add(b));
    let mut width = 10usize;
    for h in heads.iter().chain(&lcores) {
        width = width.max(h.len());
    }
    for (_, v) in &rows {
        for x in v.iter().copied().chain(std::iter::once(row_total(v))) {
            width = width.max(x.to_string().len());
        }
    }
    let name_w = rows
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0)
        .max("Counter".len());

    let mut out = banner(st);
    let _ = write!(out, "{:<name_w$}", "Counter");
    for h in &heads {
        let _ = write!(out, "  {h:>width$}");
    }
    let _ = writeln!(out, "  {:>width$}", "total");
    let _ = write!(out, "{:<name_w$}", "lcore");
    for l in &lcores {
        let _ = write!(out, "  {l:>width$}");
    }
    let _ = writeln!(out, "  {:>width$}", "-");
    for (name, vals) in &rows {
        let _ = write!(out, "{name:<name_w$}");
        for v in vals {
            let _ = write!(out, "  {v:>width$}");
        }
        let _ = writeln!(out, "  {:>width$}", row_total(vals));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::snapshot::{Proto, RealServer, Service, ServiceKey};
    use sched::SchedKind;

    fn snap() -> Snapshot {
        Snapshot {
            reals: vec![
                RealServer {
                    ip: 0,
                    port: 0,
                    weight: 0,
                    method: Method::Nat,
                    service: 0,
                },
                RealServer {
                    ip: 0x0a01_000b,
                    port: 80,
                    weight: 2,
                    method: Method::Dr,
                    service: 0,
                },
                RealServer {
                    ip: 0x0a01_000c,
                    port: 80,
                    weight: 1,
                    method: Method::Nat,
                    service: 0,
                },
            ],
            services: vec![Service {
                key: ServiceKey {
                    vip: 0x0a00_0064,
                    vport: 80,
                    proto: Proto::Tcp,
                },
                scheduler: SchedKind::Wrr,
                sched_flags: Default::default(),
                sched_params: Default::default(),
                mh_table: None,
                reals: vec![1, 2],
                persistence: None,
            }],
            ..Default::default()
        }
    }

    /// A service's persistence and flags reach the status in ipvsadm terms.
    #[test]
    fn test_build_status_persistence_and_flags() {
        let mut sn = snap();
        sn.services[0].persistence = Some(dataplane::snapshot::Persistence {
            timeout_ms: 300_000,
            mask: 0xffff_ff00,
        });
        sn.services[0].sched_flags.sh_port = true;
        let st = build_status(&sn, &[], &[], 0, 1000);
        let s = &st.services[0];
        assert_eq!(s.persistence_timeout_s, Some(300));
        assert_eq!(s.persistence_netmask.as_deref(), Some("255.255.255.0"));
        assert_eq!(s.sched_flags, vec!["sh-port".to_string()]);
    }

    #[test]
    fn test_build_status_sums_workers() {
        let a = Arc::new(SharedStats::new(3));
        let b = Arc::new(SharedStats::new(3));
        let mut w = WorkerStats {
            rx_pkts: 10,
            icmp_echo_replies: 4,
            ..Default::default()
        };
        w.drop(DropReason::NoRoute);
        let r1 = RealStats {
            conns: 3,
            in_pkts: 30,
            in_bytes: 3000,
            active_conns: 1,
            ..Default::default()
        };
        let r2 = RealStats {
            conns: 1,
            out_pkts: 5,
            out_bytes: 500,
            inactive_conns: 2,
            ..Default::default()
        };
        a.publish(&w, &[RealStats::default(), r1, r2]);
        b.publish(
            &WorkerStats::default(),
            &[RealStats::default(), r1, RealStats::default()],
        );
        let st = build_status(&snap(), &[a, b], &[1, 3], 42, 1000);
        assert_eq!(st.version, env!("CARGO_PKG_VERSION"));
        assert_eq!((st.uptime_s, st.conn_table_size), (42, 1000));
        assert_eq!(st.workers.len(), 2);
        assert_eq!((st.workers[0].id, st.workers[0].lcore), (0, 1));
        assert_eq!((st.workers[1].id, st.workers[1].lcore), (1, 3));
        assert_eq!(st.workers[0].counter("rx_pkts"), 10);
        assert_eq!(st.workers[0].counter("icmp_echo_replies"), 4);
        assert_eq!(
            st.workers[0].counters.len(),
            WorkerStats::COUNTER_NAMES.len()
        );
        assert_eq!(st.workers[0].drops.len(), DropReason::COUNT);
        assert_eq!(st.workers[0].drops["no_route"], 1);
        assert_eq!(st.workers[1].drops["no_route"], 0);
        let s = &st.services[0];
        assert_eq!(
            (s.proto.as_str(), s.vip.as_str(), s.vport),
            ("TCP", "10.0.0.100", 80)
        );
        assert_eq!(s.scheduler, "wrr");
        assert_eq!(s.forwarding, "dr");
        assert_eq!((s.persistence_timeout_s, s.sched_flags.len()), (None, 0));
        assert_eq!(s.reals[0].ip, "10.1.0.11");
        assert_eq!(s.reals[0].forwarding, "Route");
        assert_eq!(s.reals[1].forwarding, "Masq");
        assert_eq!(s.reals[0].weight, 2);
        assert_eq!(
            (s.reals[0].conns, s.reals[0].in_pkts, s.reals[0].in_bytes),
            (6, 60, 6000)
        );
        assert_eq!(s.reals[0].active_conns, 2);
        assert_eq!(
            (
                s.reals[1].conns,
                s.reals[1].out_pkts,
                s.reals[1].inactive_conns
            ),
            (1, 5, 2)
        );
        assert_eq!((s.conns, s.in_pkts, s.out_pkts), (7, 60, 5));
        assert_eq!((s.in_bytes, s.out_bytes), (6000, 500));
        assert_eq!((s.active_conns, s.inactive_conns), (2, 2));
    }

    #[test]
    fn test_format_largenum() {
        assert_eq!(format_largenum(0, false), "        0");
        assert_eq!(format_largenum(99_999_999, false), " 99999999");
        assert_eq!(format_largenum(123_456_789, false), "  123456K");
        assert_eq!(format_largenum(1_234_567_890, false), "    1234M");
        assert_eq!(format_largenum(123_456_789_012, false), "     123G");
        assert_eq!(format_largenum(123_456_789_012_345, false), "     123T");
        assert_eq!(format_largenum(123_456_789, true), " 123456789");
        assert_eq!(format_largenum(12, true), "       12");
    }

    #[test]
    fn test_answer_unknown_cmd_and_bad_json() {
        let f: StatusFn = Arc::new(|| build_status(&Snapshot::default(), &[], &[], 0, 0));
        let h = Handlers {
            status: f,
            edit: None,
        };
        assert_eq!(
            answer("{\"cmd\":\"reload\"}\n", &h),
            r#"{"error":"unknown command \"reload\": expected one of status, add_service, edit_service, delete_service, add_real, edit_real, delete_real, clear"}"#
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
                    Some("add_real") => Err("no such service: TCP 10.0.0.1:80".to_string()),
                    _ => panic!("boom"),
                }
            })),
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

    #[test]
    fn test_format_counters() {
        let mut st = build_status(&snap(), &[Arc::new(SharedStats::new(3))], &[5], 0, 10);
        st.workers[0].counters.insert("rx_pkts".into(), 1234);
        *st.workers[0].drops.get_mut("no_service").expect("reason") = 7;
        let text = format_counters(&st, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "fulcrum 0.1.0 (conn table size=10 per worker, 1 worker)"
        );
        assert_eq!(lines[1], "Counter               worker 0       total");
        assert_eq!(lines[2], "lcore                        5           -");
        assert_eq!(lines[3], "rx_pkts                   1234        1234");
        assert!(text.contains("\ndrop/no_service              7           7\n"));
        assert!(!text.contains("drop/no_route"));
        assert!(text.ends_with("\ndrops_total                  7           7\n"));
        assert_eq!(
            lines.len(),
            2 + WorkerStats::COUNTER_NAMES.len() + 1 + 1 + 1
        );
        assert!(text.contains("\npersist_templates            0           0\n"));
        assert!(text.contains("\npersist_table_full           0           0\n"));
        let all = format_counters(&st, true);
        assert_eq!(all.matches("drop/").count(), DropReason::COUNT);
    }
}
