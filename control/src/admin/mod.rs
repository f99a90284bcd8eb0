//! The daemon's local admin socket: the status it serves, the server and
//! the client.
//!
//! Layer: control (slow path only; the workers never see any of this).
//! [`status`] holds the DTOs and builds a [`Status`] from the snapshot and
//! the workers' counters; [`server`] answers on the socket; [`client`] is
//! what `fulcrumctl` calls. The ipvsadm-style text `fulcrumctl` prints is
//! the binary's own (`src/bin/fulcrumctl/format.rs`).
//!
//! Protocol: a Unix stream socket. The client connects and sends one line of
//! JSON; the server answers one line of JSON and closes.
//! - `{"cmd":"status"}` → a [`Status`].
//! - The write commands of [`crate::edit`] (`add_service`, `edit_service`,
//!   `delete_service`, `add_real`, `edit_real`, `delete_real`, `clear`) →
//!   `{"ok":true,"generation":N}` once the edited snapshot is published, when
//!   the server was started with an [`EditFn`] ([`AdminServer::start_with_edits`]).
//! - The daemon parts' own [`Command`]s (registered in [`Handlers`]), each
//!   answering its own JSON: `{"cmd":"reload"}` ([`reload`]) reads the
//!   config file again and applies its difference.
//! - Anything else, a failed edit, or a request that is not JSON →
//!   `{"error":"..."}`, one line.
//!
//! Access ([`Access`]): every request is checked against the caller's
//! `SO_PEERCRED` credentials. Root and the daemon's own uid may do
//! everything; members of the config's `admin_group` may run the read-only
//! requests (`status` and the [`Command`]s with `mutates: false`) and are
//! answered `{"error":"permission denied: uid N ..."}` for mutations (the
//! edits, `reload`, every [`Command`] with `mutates: true`); anyone else is
//! refused everything.
//!
//! Up to [`MAX_CLIENTS`] clients are served at once, each on its own thread
//! and with a [`SERVER_CLIENT_TIMEOUT`] deadline for its whole conversation,
//! so a slow or stuck client never delays another; edits stay serialised by
//! the editor's own lock. The accept loop polls a stop flag every 20 ms, so
//! stopping never hangs.
//!
//! Guarantees: [`AdminServer::start`] never steals a socket from a live
//! daemon (it connects first and refuses if someone answers), only removes a
//! stale *socket* file (never a regular file), and the socket file is removed
//! again when the server stops. The socket is never open to others, even
//! for an instant: it is bound in a private 0700 directory, given mode 0600
//! (0660 and the admin group's ownership with an `admin_group`) and only
//! then renamed into place, because the admin API is for the operator
//! (ipvsadm likewise needs root).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

pub mod client;
pub mod reload;
pub mod server;
pub mod status;

pub use client::{edit, query, request};
pub use reload::{notify, Reloader, SharedReload};
pub use server::{
    Access, AdminGroup, AdminServer, Command, CommandFn, EditFn, Handlers, Role, StatusFn,
    MAX_CLIENTS,
};
pub use status::{
    build_status, PortStatus, RateStatus, RealStatus, ReloadStatus, ServiceStatus, Status,
    WorkerStatus,
};

/// Per-client deadline on the server side: the whole conversation (reading
/// the request, writing the answer) must be done within it.
pub const SERVER_CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Client-side connect/read/write timeout of [`query`].
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request line the server reads, in bytes; longer ones are refused.
pub const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// Longest reply the client accepts, in bytes.
pub const MAX_REPLY_BYTES: u64 = 256 * 1024 * 1024;

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
    /// The configured `admin_group` cannot be resolved.
    #[error("admin_group {name:?}: {message}: expected an existing group (see getent group)")]
    Group {
        /// The group name.
        name: String,
        /// What went wrong.
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
