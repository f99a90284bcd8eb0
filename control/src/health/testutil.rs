//! Test helpers shared by the checker tests: runtimes, probes, local
//! servers, temp dirs and a throw-away network namespace.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CheckKind, Probe};

/// A current-thread runtime with IO and time, as the daemon would run.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A probe of `kind` against 127.0.0.1:`port`.
pub fn tcp_probe(port: u16, kind: CheckKind, timeout: Duration) -> Probe {
    Probe {
        kind,
        target: SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
        bindto: None,
        connect_timeout: timeout,
    }
}

/// A TCP port on 127.0.0.1 nobody listens on (bound, read, released).
pub fn unused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A UDP port on 127.0.0.1 nobody listens on.
pub fn unused_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// A listener that never accepts, with its accept queue (backlog 0, so one
/// connection) already full: Linux drops further SYNs
/// (`tcp_conn_request`: accept queue full), so a connect hangs until its
/// timeout. Returns the port and what must stay alive.
pub async fn full_backlog_listener() -> (u16, Vec<Box<dyn std::any::Any>>) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into())
        .unwrap();
    s.listen(0).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    let mut keep: Vec<Box<dyn std::any::Any>> = vec![Box::new(s)];
    // Fill the queue: connects that complete stay queued (never accepted).
    for _ in 0..2 {
        let c = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
        )
        .await;
        if let Ok(Ok(c)) = c {
            keep.push(Box::new(c));
        }
    }
    (port, keep)
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "fulcrum-health-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes an executable (0755) script `name` with `body` into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Runs `f` on a new thread that first moves into a new, empty network
/// namespace (`unshare(CLONE_NEWNET)`, only that thread), brings `lo` up
/// with 10.255.0.1/32 and routes 10.255.0.0/24 onto `lo`: a packet to
/// another address of that net loops back, is not local, and is dropped
/// without an ICMP error (forwarding is off in a new namespace), so it
/// never answers; 10.254.0.0/24 is an `unreachable` route (EHOSTUNREACH
/// at once). Panics with a clear message if the namespace cannot be
/// made.
pub fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET) failed: these tests need root");
        for args in [
            &["link", "set", "lo", "up"][..],
            &["addr", "add", "10.255.0.1/32", "dev", "lo"],
            &["route", "add", "10.255.0.0/24", "dev", "lo"],
            &["route", "add", "unreachable", "10.254.0.0/24"],
        ] {
            let st = std::process::Command::new("ip")
                .args(args)
                .status()
                .expect("ip(8) is needed");
            assert!(st.success(), "ip {args:?} failed in the test namespace");
        }
        f()
    })
    .join()
    .unwrap()
}
