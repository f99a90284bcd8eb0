//! The admin socket client `fulcrumctl` uses: one request, one reply.
//!
//! Layer: control, slow path. Guarantees: every call gives up after
//! [`CLIENT_TIMEOUT`] each way and reads at most [`MAX_REPLY_BYTES`]; every
//! error names the socket path.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::status::Status;
use super::{AdminError, CLIENT_TIMEOUT, MAX_REPLY_BYTES};

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
