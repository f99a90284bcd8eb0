//! The admin socket's access control and concurrency, against a real
//! `AdminServer` and the built `fulcrumctl` run as another user.
//!
//! The unprivileged callers are child processes that drop to uid 65534
//! (`nobody`) with a chosen gid, as root can (`setgid`/`setuid` through
//! `std::os::unix::process::CommandExt`, which also clears supplementary
//! groups). The group is Debian's `nogroup` (gid 65534). These tests need
//! root; run as another user they fail saying so.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use control::admin::{
    build_status, query, Access, AdminServer, Command as AdminCommand, Handlers, StatusFn,
};
use dataplane::snapshot::Snapshot;

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;
mod common;
use common::TempDir;

/// A fresh 0755 directory under the temp dir (short, for `sun_path`),
/// holding a copy of `fulcrumctl` that `nobody` may execute, removed when
/// the test ends.
fn temp_dir() -> TempDir {
    let d = common::temp_dir_named("fadm");
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // The build tree may be unreachable for nobody (a 0700 home): a copy.
    std::fs::copy(env!("CARGO_BIN_EXE_fulcrumctl"), d.0.join("fulcrumctl")).expect("copy");
    d
}

fn need_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the admin access tests need root (they run clients as uid 65534)"
    );
}

/// Handlers whose edits and `reload` count their calls.
fn handlers(calls: &Arc<AtomicUsize>) -> Handlers {
    let status: StatusFn = Arc::new(|| build_status(&Snapshot::default(), &[], &[], 0, 0));
    let (a, b) = (Arc::clone(calls), Arc::clone(calls));
    Handlers {
        status,
        edit: Some(Arc::new(move |_: &serde_json::Value| {
            a.fetch_add(1, Ordering::SeqCst);
            Ok(2)
        })),
        commands: vec![AdminCommand {
            name: "reload",
            mutates: true,
            run: Arc::new(move |_: &serde_json::Value| {
                b.fetch_add(1, Ordering::SeqCst);
                Ok(serde_json::json!({"ok": true, "generation": 2, "changed": false, "file": "x"}))
            }),
        }],
    }
}

/// `fulcrumctl --socket SOCK ARGS` run as uid `uid`, gid `gid`.
fn ctl_as(dir: &TempDir, uid: u32, gid: u32, sock: &Path, args: &[&str]) -> Output {
    Command::new(dir.0.join("fulcrumctl"))
        .arg("--socket")
        .arg(sock)
        .args(args)
        .uid(uid)
        .gid(gid)
        .output()
        .expect("run fulcrumctl")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn test_caller_without_permission_is_refused() {
    need_root();
    let dir = temp_dir();
    let sock = dir.0.join("f.sock");
    let calls = Arc::new(AtomicUsize::new(0));
    let server =
        AdminServer::start_with_access(&sock, handlers(&calls), Access::default()).expect("start");
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "no admin_group: root only");
    // nobody cannot even connect (the kernel refuses: mode 0600, root's).
    for args in [&["-L", "-n"][..], &["-C"][..], &["--reload"][..]] {
        let o = ctl_as(&dir, NOBODY, NOGROUP, &sock, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    }
    // Behind the file mode, the credential check: a socket made
    // world-connectable by mistake still refuses nobody everything.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let o = ctl_as(&dir, NOBODY, NOGROUP, &sock, &["-L", "-n"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "fulcrumctl: permission denied: uid 65534 may not use this admin socket: status needs root (uid 0) or the daemon's uid 0 (no admin_group is configured)\n"
    );
    let o = ctl_as(&dir, NOBODY, NOGROUP, &sock, &["-C"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("fulcrumctl: permission denied: uid 65534 may not use this admin socket: clear needs root"),
        "{}",
        stderr(&o)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no handler ran for nobody");
    // Root (the test) is served.
    let o = Command::new(env!("CARGO_BIN_EXE_fulcrumctl"))
        .arg("--socket")
        .arg(&sock)
        .arg("-C")
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.stop();
    assert!(!sock.exists());
}

#[test]
fn test_group_member_reads_but_cannot_mutate() {
    need_root();
    let dir = temp_dir();
    let sock = dir.0.join("f.sock");
    let calls = Arc::new(AtomicUsize::new(0));
    let access = Access::for_group(Some("nogroup")).expect("nogroup exists on Debian");
    let server = AdminServer::start_with_access(&sock, handlers(&calls), access).expect("start");
    let meta = std::fs::metadata(&sock).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), NOGROUP);

    // A member (primary group nogroup) reads.
    let o = ctl_as(&dir, NOBODY, NOGROUP, &sock, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status JSON");
    assert!(st["services"].as_array().is_some_and(|s| s.is_empty()));
    // ... and is refused every mutation, with who and what is needed.
    for (args, cmd) in [
        (&["-C"][..], "clear"),
        (&["-D", "-t", "10.0.0.100:80"][..], "delete_service"),
        (&["--reload"][..], "reload"),
    ] {
        let o = ctl_as(&dir, NOBODY, NOGROUP, &sock, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&o),
            format!("fulcrumctl: permission denied: uid 65534 (admin_group \"nogroup\") may only run read-only requests; {cmd} changes state and needs root (uid 0) or the daemon's uid\n")
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no mutation ran");
    // A non-member (gid 4242, no supplementary groups) cannot connect.
    let o = ctl_as(&dir, NOBODY, 4242, &sock, &["-L", "-n"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    // Root mutates.
    let o = Command::new(env!("CARGO_BIN_EXE_fulcrumctl"))
        .arg("--socket")
        .arg(&sock)
        .arg("--reload")
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.stop();
}

#[test]
fn test_unknown_group_is_refused() {
    let e = Access::for_group(Some("no-such-group-fulcrum")).expect_err("refused");
    assert_eq!(
        e.to_string(),
        "admin_group \"no-such-group-fulcrum\": no such group: expected an existing group (see getent group)"
    );
}

#[test]
fn test_admin_group_config() {
    let text = |group: &str| {
        format!(
            "(\n    eal_args: [],\n    workers: [1],\n    admin_group: \"{group}\",\n    ports: [(name: \"a\", device: \"net_null0\", addrs: [\"10.0.0.1/24\"])],\n)\n"
        )
    };
    let cfg = control::config::parse(&text("nogroup"), "f.ron").expect("valid");
    assert_eq!(cfg.admin_group.as_deref(), Some("nogroup"));
    assert_eq!(
        control::config::parse(&text("no-such-group-fulcrum"), "f.ron")
            .expect_err("refused")
            .to_string(),
        "f.ron:4:18: no such group \"no-such-group-fulcrum\": expected an existing group name (getent group), or no admin_group"
    );
}

#[test]
fn test_slow_client_does_not_delay_another() {
    let dir = temp_dir();
    let sock = dir.0.join("f.sock");
    let calls = Arc::new(AtomicUsize::new(0));
    let server =
        AdminServer::start_with_access(&sock, handlers(&calls), Access::default()).expect("start");
    // Clients that connect and stall: one sends nothing, one half a line.
    let mut silent = UnixStream::connect(&sock).expect("connect");
    let mut trickle = UnixStream::connect(&sock).expect("connect");
    trickle.write_all(b"{\"cmd\":").expect("write");
    std::thread::sleep(Duration::from_millis(50));
    // Statuses are answered while both stalled clients are still being
    // served: neither has been cut off yet (a read finds no EOF), so no
    // answer waited for a stalled client's deadline.
    for _ in 0..5 {
        query(&sock).expect("status while two clients stall");
    }
    for (name, c) in [("silent", &silent), ("trickle", &trickle)] {
        c.set_nonblocking(true).expect("nonblocking");
        let mut b = [0u8; 1];
        let r = (&*c).read(&mut b);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the {name} client was already answered or cut when the statuses came back: {r:?}"
        );
        c.set_nonblocking(false).expect("blocking");
    }
    // The stalled clients are then cut off by the server (EOF, no answer),
    // not left open: the read ends before this generous bound.
    for c in [&mut silent, &mut trickle] {
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = Vec::new();
        c.read_to_end(&mut buf)
            .expect("the server closes a stalled client");
        assert!(buf.is_empty(), "no answer to a request never completed");
    }
    // More stalled clients than the pool holds: the server still answers
    // a status once the first ones reach their deadline.
    let stalled: Vec<UnixStream> = (0..20)
        .map(|_| UnixStream::connect(&sock).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    query(&sock).expect("status behind 20 stalled clients");
    drop(stalled);
    server.stop();
}

/// Polls `path`'s mode as fast as it can until `done`; returns every
/// distinct mode seen (permission bits) and how many polls found the file.
fn watch_mode(path: PathBuf, done: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<u32>, u64)> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut hits = 0u64;
        while !done.load(Ordering::Relaxed) {
            if let Ok(m) = std::fs::symlink_metadata(&path) {
                hits += 1;
                let mode = m.permissions().mode() & 0o777;
                if !seen.contains(&mode) {
                    seen.push(mode);
                }
            }
        }
        (seen, hits)
    })
}

#[test]
fn test_socket_never_world_accessible() {
    need_root();
    for (access, want) in [
        (Access::default(), 0o600),
        (Access::for_group(Some("nogroup")).expect("nogroup"), 0o660),
    ] {
        let dir = temp_dir();
        let sock = dir.0.join("f.sock");
        let done = Arc::new(AtomicBool::new(false));
        let watcher = watch_mode(sock.clone(), Arc::clone(&done));
        let calls = Arc::new(AtomicUsize::new(0));
        for _ in 0..200 {
            let s = AdminServer::start_with_access(&sock, handlers(&calls), access.clone())
                .expect("start");
            s.stop();
        }
        done.store(true, Ordering::Relaxed);
        let (seen, hits) = watcher.join().expect("watcher");
        assert!(hits > 0, "the watcher never saw the socket");
        assert_eq!(
            seen,
            vec![want],
            "modes seen at the socket path ({hits} polls)"
        );
        // Nothing of the private bind directory is left behind.
        let left: Vec<_> = std::fs::read_dir(&dir.0)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("fulcrumctl")]);
    }
}
