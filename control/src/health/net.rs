//! Socket helpers the network checkers share: a TCP connect honouring
//! `bindto`, and one-line reasons for socket errors.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use super::Probe;

/// Connects to `p.target` from `p.bindto` (port chosen by the kernel).
/// Errors are the reason text: `connect: connection refused`, ...
/// The caller bounds the time.
pub(super) async fn connect_tcp(p: &Probe) -> Result<TcpStream, String> {
    let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {}", io_reason(&e)))?;
    if let Some(src) = p.bindto {
        sock.bind(SocketAddr::V4(SocketAddrV4::new(src, 0)))
            .map_err(|e| format!("bind {src}: {}", io_reason(&e)))?;
    }
    sock.connect(SocketAddr::V4(p.target))
        .await
        .map_err(|e| format!("connect: {}", io_reason(&e)))
}

/// A UDP socket bound to `p.bindto` (or any address) and connected to
/// `p.target`, so the kernel reports an ICMP port unreachable as
/// `ECONNREFUSED` on the next receive, and only the target's datagrams
/// arrive.
pub(super) async fn connect_udp(p: &Probe) -> Result<UdpSocket, String> {
    let src = SocketAddrV4::new(p.bindto.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED), 0);
    let sock = UdpSocket::bind(src)
        .await
        .map_err(|e| format!("bind {src}: {}", io_reason(&e)))?;
    sock.connect(p.target)
        .await
        .map_err(|e| format!("connect: {}", io_reason(&e)))?;
    Ok(sock)
}

/// The error's text without the "(os error N)" suffix std appends,
/// lower-cased the way the reason lines read: `connection refused`.
pub(super) fn io_reason(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut out = s.to_string();
    if let Some(c) = out.get(..1) {
        let lower = c.to_ascii_lowercase();
        out.replace_range(..1, &lower);
    }
    if e.kind() == io::ErrorKind::ConnectionRefused && !out.contains("refused") {
        out = "connection refused".into();
    }
    out
}

/// Runs `fut` for at most `limit`; on expiry the reason is
/// `timeout after N ms (<what>)`.
pub(super) async fn within<T>(
    limit: Duration,
    what: impl FnOnce() -> String,
    fut: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "timeout after {} ms ({})",
            limit.as_millis(),
            what()
        )),
    }
}
