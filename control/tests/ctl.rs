//! The admin socket and `fulcrumctl`, end to end: a real `AdminServer` on a
//! temporary socket, the client `query`, and the built `fulcrumctl` binary's
//! ipvsadm-style text byte for byte.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;

use std::sync::Arc;

use arc_swap::ArcSwap;
use control::admin::{
    build_status, query, AdminError, AdminServer, EditFn, RealStatus, ServiceStatus, Status,
    StatusFn, WorkerStatus,
};
use control::compile::compile;
use control::config::parse;
use control::edit::Editor;
use dataplane::snapshot::Snapshot;
use dataplane::stats::{DropReason, SharedStats};
use serde_json::json;
mod common;
use common::TempDir;

fn temp_dir() -> TempDir {
    common::temp_dir_named("fulcrum-ctl")
}

fn worker(id: u32, lcore: u32, rx_pkts: u64, no_route: u64) -> WorkerStatus {
    let mut drops: BTreeMap<String, u64> = DropReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), 0))
        .collect();
    drops.insert("no_route".into(), no_route);
    WorkerStatus {
        id,
        lcore,
        counters: [
            ("rx_pkts", rx_pkts),
            ("rx_bytes", rx_pkts * 100),
            ("tx_pkts", rx_pkts),
            ("tx_bytes", rx_pkts * 100),
            ("conns_created", 150),
            ("conns_expired", 10),
            ("redirects_out", 0),
            ("redirects_in", 0),
            ("arp_replies", 2),
            ("arp_requests", 1),
            ("icmp_echo_replies", 0),
            ("persist_templates", 3),
            ("persist_table_full", 0),
        ]
        .iter()
        .map(|&(n, v)| (n.to_string(), v))
        .collect(),
        drops,
    }
}

/// One TCP service with two NAT real servers, listed in reverse address
/// order to check that the listing sorts them as ipvsadm does.
fn fixture() -> Status {
    let real = |ip: &str, weight, active, inactive, c: [u64; 5]| RealStatus {
        ip: ip.into(),
        port: 80,
        forwarding: "Masq".into(),
        weight,
        active_conns: active,
        inactive_conns: inactive,
        conns: c[0],
        in_pkts: c[1],
        out_pkts: c[2],
        in_bytes: c[3],
        out_bytes: c[4],
        rate: None,
    };
    Status {
        version: "0.1.0".into(),
        uptime_s: 5,
        conn_table_size: 1_048_576,
        workers: vec![worker(0, 1, 1000, 0), worker(1, 2, 2000, 4)],
        services: vec![ServiceStatus {
            proto: "TCP".into(),
            vip: "10.0.0.100".into(),
            vport: 80,
            scheduler: "rr".into(),
            forwarding: "nat".into(),
            conns: 300,
            in_pkts: 1800,
            out_pkts: 1500,
            in_bytes: 123_456_789,
            out_bytes: 654_000,
            active_conns: 3,
            inactive_conns: 1,
            reals: vec![
                real("10.1.0.12", 2, 0, 0, [100, 600, 500, 23_456_789, 254_000]),
                real(
                    "10.1.0.11",
                    1,
                    3,
                    1,
                    [200, 1200, 1000, 100_000_000, 400_000],
                ),
            ],
            persistence_timeout_s: None,
            persistence_netmask: None,
            sched_flags: Vec::new(),
            rate: None,
        }],
        health: Default::default(),
        ports: Vec::new(),
        reload: None,
    }
}

const LIST: &str = "\
fulcrum 0.1.0 (conn table size=1048576 per worker, 2 workers)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 rr
  -> 10.1.0.11:80                 Masq    1      3          1         
  -> 10.1.0.12:80                 Masq    2      0          0         
";

const LIST_STATS: &str = "\
fulcrum 0.1.0 (conn table size=1048576 per worker, 2 workers)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:80                     300     1800     1500  123456K   654000
  -> 10.1.0.11:80                      200     1200     1000  100000K   400000
  -> 10.1.0.12:80                      100      600      500 23456789   254000
";

const LIST_STATS_EXACT: &str = "\
fulcrum 0.1.0 (conn table size=1048576 per worker, 2 workers)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:80                     300     1800     1500 123456789   654000
  -> 10.1.0.11:80                      200     1200     1000 100000000   400000
  -> 10.1.0.12:80                      100      600      500 23456789   254000
";

/// `fulcrumctl --counters` for [`fixture`]: every counter row in
/// declaration order, only the non-zero drop reasons, then the total.
const COUNTERS: &str = "\
fulcrum 0.1.0 (conn table size=1048576 per worker, 2 workers)
Counter                    worker 0    worker 1       total
lcore                             1           2           -
rx_pkts                        1000        2000        3000
rx_bytes                     100000      200000      300000
tx_pkts                        1000        2000        3000
tx_bytes                     100000      200000      300000
conns_created                   150         150         300
conns_expired                    10          10          20
conns_expired_nodest              0           0           0
conns_reused                      0           0           0
fullnat_toa_no_space              0           0           0
fullnat_proxy_sent                0           0           0
fullnat_toa_sent                  0           0           0
redirects_out                     0           0           0
redirects_in                      0           0           0
arp_replies                       2           2           4
arp_learned                       0           0           0
arp_requests                      1           1           2
icmp_echo_replies                 0           0           0
icmp_errors_in                    0           0           0
icmp_errors_out                   0           0           0
icmp_time_exceeded_sent           0           0           0
icmp_frag_needed_sent             0           0           0
exception_to_kernel               0           0           0
vrrp_to_kernel                    0           0           0
exception_from_kernel             0           0           0
frags_first                       0           0           0
frags_forwarded                   0           0           0
persist_templates                 3           3           6
persist_table_full                0           0           0
partial_csum_ports                0           0           0
polls_busy                        0           0           0
polls_empty                       0           0           0
drop/no_route                     0           4           4
drops_total                       0           4           4
";

/// Whether `text` has a line whose whitespace-separated fields are `row`
/// (the column widths follow the longest counter name).
fn has_row(text: &str, row: &[&str]) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().eq(row.iter().copied()))
}

fn start(dir: &Path, st: Status) -> AdminServer {
    let sock = dir.join("fulcrum.sock");
    AdminServer::start(&sock, Arc::new(move || st.clone())).expect("admin server starts")
}

fn ctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fulcrumctl"))
        .args(args)
        .env_remove("FULCRUM_SOCKET")
        .output()
        .expect("run fulcrumctl")
}

/// `fulcrumctl ARGS` against a server answering `st`: its stdout, after
/// checking it exited 0 and printed nothing on stderr.
fn ctl_output(st: Status, args: &str) -> String {
    let dir = temp_dir();
    let _server = start(&dir, st);
    let sock = dir.join("fulcrum.sock");
    let mut all: Vec<&str> = args.split_whitespace().collect();
    all.extend(["--socket", sock.to_str().expect("utf8")]);
    let out = ctl(&all);
    assert_succeeded(&out, args);
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Asserts that the `fulcrumctl` run `out` (of `args`) exited 0 with an
/// empty stderr.
fn assert_succeeded(out: &std::process::Output, args: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "{args}");
}

/// Persistence and scheduler flags show as ipvsadm prints them in `-L`
/// and as the options that recreate them in `-S`.
#[test]
fn test_fulcrumctl_list_and_save_persistence_and_flags() {
    let mut st = fixture();
    let s = &mut st.services[0];
    s.scheduler = "sh".into();
    s.sched_flags = vec!["sh-fallback".into(), "sh-port".into()];
    s.persistence_timeout_s = Some(300);
    s.persistence_netmask = Some("255.255.255.0".into());
    let list = ctl_output(st.clone(), "-Ln");
    assert!(
        list.contains(
            "\nTCP  10.0.0.100:80 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0\n"
        ),
        "{list}"
    );
    let save = ctl_output(st.clone(), "-S");
    assert_eq!(
        save,
        "-A -t 10.0.0.100:80 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port\n\
         -a -t 10.0.0.100:80 -r 10.1.0.11:80 -m -w 1\n\
         -a -t 10.0.0.100:80 -r 10.1.0.12:80 -m -w 2\n"
    );
    // A /32 netmask is ipvsadm's default: not printed.
    st.services[0].persistence_netmask = Some("255.255.255.255".into());
    let list = ctl_output(st, "-Ln");
    assert!(list.contains("persistent 300\n"), "{list}");
}

#[test]
fn test_fulcrumctl_list_sorts_services_like_ipvsadm() {
    let mut st = fixture();
    let mut udp = st.services[0].clone();
    udp.proto = "UDP".into();
    udp.vip = "10.0.0.5".into();
    udp.reals.truncate(1);
    udp.reals[0].forwarding = "Route".into();
    let mut tcp2 = st.services[0].clone();
    tcp2.vip = "10.0.0.9".into();
    tcp2.vport = 0;
    tcp2.scheduler = "wrr".into();
    tcp2.reals.clear();
    st.services.insert(0, udp);
    st.services.push(tcp2);
    let text = ctl_output(st.clone(), "-Ln");
    let heads: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(' '))
        .skip(2)
        .collect();
    // TCP (6) before UDP (17); 10.0.0.9 before 10.0.0.100 numerically.
    assert_eq!(
        heads,
        vec![
            "TCP  10.0.0.9:0 wrr",
            "TCP  10.0.0.100:80 rr",
            "UDP  10.0.0.5:80 rr"
        ]
    );
    // -S: the same order, -u for UDP and -g for a direct-routing server.
    assert_eq!(
        ctl_output(st, "-S"),
        "-A -t 10.0.0.9:0 -s wrr\n\
         -A -t 10.0.0.100:80 -s rr\n\
         -a -t 10.0.0.100:80 -r 10.1.0.11:80 -m -w 1\n\
         -a -t 10.0.0.100:80 -r 10.1.0.12:80 -m -w 2\n\
         -A -u 10.0.0.5:80 -s rr\n\
         -a -u 10.0.0.5:80 -r 10.1.0.12:80 -g -w 2\n"
    );
}

#[test]
fn test_admin_roundtrip() {
    let dir = temp_dir();
    let server = start(&dir, fixture());
    let sock = dir.join("fulcrum.sock");
    assert_eq!(server.path(), sock.as_path());
    let got = query(&sock).expect("query");
    assert_eq!(got, fixture());
    // Served more than once.
    assert_eq!(
        query(&sock).expect("second query").services[0].reals.len(),
        2
    );
    server.stop();
    assert!(!sock.exists(), "stop removes the socket file");
    let e = query(&sock).expect_err("server is gone");
    assert!(matches!(e, AdminError::Connect { .. }));
}

#[test]
fn test_admin_unknown_cmd() {
    let dir = temp_dir();
    let _server = start(&dir, fixture());
    let mut s = UnixStream::connect(dir.join("fulcrum.sock")).expect("connect");
    s.write_all(b"{\"cmd\":\"reboot\"}\n").expect("write");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read");
    assert_eq!(
        reply,
        "{\"error\":\"unknown command \\\"reboot\\\": expected one of status, add_service, edit_service, delete_service, add_real, edit_real, delete_real, clear\"}\n"
    );
}

#[test]
fn test_admin_status_reply_is_one_line() {
    let dir = temp_dir();
    let _server = start(&dir, fixture());
    let mut s = UnixStream::connect(dir.join("fulcrum.sock")).expect("connect");
    s.write_all(b"{\"cmd\":\"status\"}\n").expect("write");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read");
    assert_eq!(reply.matches('\n').count(), 1);
    assert!(reply.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(&reply).expect("json");
    assert_eq!(v["services"][0]["reals"][1]["forwarding"], "Masq");
    assert_eq!(v["workers"][1]["drops"]["no_route"], 4);
    assert_eq!(v["conn_table_size"], 1_048_576);
}

#[test]
fn test_admin_refuses_live_socket_and_replaces_stale_one() {
    let dir = temp_dir();
    let sock = dir.join("fulcrum.sock");
    let first = start(&dir, fixture());
    let e = AdminServer::start(&sock, Arc::new(fixture))
        .err()
        .expect("second daemon refused");
    assert!(matches!(e, AdminError::InUse { .. }), "{e}");
    assert!(e.to_string().contains(sock.to_str().expect("utf8")));
    // The live server still answers.
    assert_eq!(query(&sock).expect("still served"), fixture());
    drop(first);
    assert!(!sock.exists());

    // A stale socket file (its listener is gone) is replaced.
    drop(UnixListener::bind(&sock).expect("bind"));
    assert!(sock.exists());
    let second = start(&dir, fixture());
    assert_eq!(query(&sock).expect("served").version, "0.1.0");
    drop(second);
}

#[test]
fn test_admin_leaves_regular_file_alone() {
    let dir = temp_dir();
    let sock = dir.join("fulcrum.sock");
    std::fs::write(&sock, b"not a socket").expect("write");
    let e = AdminServer::start(&sock, Arc::new(fixture))
        .err()
        .expect("refused");
    assert!(matches!(e, AdminError::NotASocket { .. }), "{e}");
    assert_eq!(std::fs::read(&sock).expect("still there"), b"not a socket");
}

#[test]
fn test_admin_creates_parent_dir() {
    let dir = temp_dir();
    let sock = dir.join("run/fulcrum/fulcrum.sock");
    let server = AdminServer::start(&sock, Arc::new(fixture)).expect("start");
    assert_eq!(query(&sock).expect("query").uptime_s, 5);
    drop(server);
}

#[test]
fn test_fulcrumctl_list() {
    let dir = temp_dir();
    let _server = start(&dir, fixture());
    let sock = dir.join("fulcrum.sock");
    let sock = sock.to_str().expect("utf8");
    for args in [
        vec!["-Ln"],
        vec!["-L", "-n"],
        vec!["--list", "--numeric"],
        vec!["-l"],
    ] {
        let mut all = args.clone();
        all.extend(["--socket", sock]);
        let out = ctl(&all);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), LIST, "{args:?}");
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn test_fulcrumctl_stats_exact_json_counters() {
    let dir = temp_dir();
    let _server = start(&dir, fixture());
    let sock = dir.join("fulcrum.sock");
    let sock = sock.to_str().expect("utf8");

    let out = ctl(&["-Ln", "--stats", "--socket", sock]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), LIST_STATS);
    let out = ctl(&["-Ln", "--stats", "--exact", "--socket", sock]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), LIST_STATS_EXACT);

    let out = ctl(&["--json", "--socket", sock]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() > 10, "pretty-printed");
    let back: Status = serde_json::from_str(&text).expect("json status");
    assert_eq!(back, fixture());

    let out = ctl(&["--counters", "--socket", sock]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, COUNTERS);
    assert!(
        has_row(&text, &["rx_pkts", "1000", "2000", "3000"]),
        "{text}"
    );
    assert!(has_row(&text, &["drop/no_route", "0", "4", "4"]), "{text}");
    assert!(
        has_row(&text, &["persist_templates", "3", "3", "6"]),
        "{text}"
    );
    assert!(!text.contains("drop/tx_full"));
    let out = ctl(&["--counters", "--exact", "--socket", sock]);
    let text = String::from_utf8_lossy(&out.stdout);
    // --exact shows zero rows too (column widths follow the longest name).
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().eq(["drop/tx_full", "0", "0", "0"])),
        "{text}"
    );
}

#[test]
fn test_fulcrumctl_socket_from_env() {
    let dir = temp_dir();
    let _server = start(&dir, fixture());
    let out = Command::new(env!("CARGO_BIN_EXE_fulcrumctl"))
        .arg("-Ln")
        .env("FULCRUM_SOCKET", dir.join("fulcrum.sock"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), LIST);
}

#[test]
fn test_fulcrumctl_missing_socket() {
    let dir = temp_dir();
    let sock = dir.join("nothing.sock");
    let out = ctl(&["-Ln", "--socket", sock.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.ends_with('\n'));
    assert!(
        err.starts_with("fulcrumctl: cannot connect to admin socket "),
        "{err}"
    );
    assert!(err.contains(sock.to_str().expect("utf8")), "{err}");
    assert!(err.contains("is fulcrum running?"), "{err}");
}

#[test]
fn test_fulcrumctl_usage_and_bad_flag() {
    let out = ctl(&[]);
    assert_eq!(out.status.code(), Some(0));
    let usage = String::from_utf8_lossy(&out.stdout);
    assert!(usage.contains("Usage: fulcrumctl"), "{usage}");
    assert!(usage.contains("--stats"));

    let out = ctl(&["-L", "--frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.starts_with("fulcrumctl: "), "{err}");
    assert!(err.contains("--frobnicate"), "{err}");
}

#[test]
fn test_admin_stop_after_socket_deleted() {
    let dir = temp_dir();
    let sock = dir.join("fulcrum.sock");
    let server = start(&dir, fixture());
    std::fs::remove_file(&sock).expect("delete socket file");
    // Someone else binds the path meanwhile; stopping must neither hang nor
    // delete their socket.
    let other = UnixListener::bind(&sock).expect("rebind");
    // A hang detector, not a speed check: stop() polls its flag every 20 ms,
    // so 30 s only ever runs out if it waits for a connection forever.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        server.stop();
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("AdminServer::stop hung after its socket file was replaced");
    assert!(sock.exists(), "the other socket file is left alone");
    drop(other);
}

// ---------------------------------------------------------------------------
// Runtime edits through the real fulcrumctl binary
// ---------------------------------------------------------------------------

/// One NAT service with one real server; the inside subnet is connected so
/// DR real servers on it are valid.
const EDIT_CFG: &str = r#"(
    eal_args: ["-l", "0-1"],
    workers: [1],
    conn_table_size: 1000,
    ports: [
        (name: "outside", device: "net_null0", addrs: ["10.0.0.1/24"]),
        (name: "inside", device: "net_null1", addrs: ["10.1.0.1/24"]),
    ],
    services: [
        (vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
         real_servers: [(addr: "10.1.0.11:80")]),
    ],
)"#;

/// A control plane wired as the daemon wires it: an `Editor` publishing
/// into the snapshot the status is built from, behind a real `AdminServer`.
struct Director {
    _dir: TempDir,
    _server: AdminServer,
    sock: String,
    swap: Arc<ArcSwap<Snapshot>>,
    editor: Arc<Editor>,
}

fn director() -> Director {
    let dir = temp_dir();
    let cfg = parse(EDIT_CFG, "edit.ron").expect("valid");
    let macs = vec![[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]];
    let snap = compile(&cfg, &macs, 1, None, &[]);
    let stats = vec![Arc::new(SharedStats::new(snap.reals.len()))];
    let swap = Arc::new(ArcSwap::from_pointee(snap));
    let editor = Arc::new(Editor::new(cfg, macs, Arc::clone(&swap), stats.clone()));
    let status: StatusFn = {
        let swap = Arc::clone(&swap);
        Arc::new(move || build_status(&swap.load(), &stats, &[1], 0, 1000))
    };
    let edit: EditFn = {
        let editor = Arc::clone(&editor);
        Arc::new(move |req: &serde_json::Value| editor.handle(req))
    };
    let sock = dir.join("fulcrum.sock");
    let server = AdminServer::start_with_edits(&sock, status, edit).expect("admin server starts");
    Director {
        sock: sock.to_str().expect("utf8").to_string(),
        _dir: dir,
        _server: server,
        swap,
        editor,
    }
}

impl Director {
    /// Runs fulcrumctl with `args` (split on spaces) against this director.
    fn ctl(&self, args: &str) -> std::process::Output {
        let mut all: Vec<&str> = args.split_whitespace().collect();
        all.extend(["--socket", &self.sock]);
        ctl(&all)
    }

    /// Runs a command that must succeed silently.
    fn ok(&self, args: &str) {
        let out = self.ctl(args);
        assert_succeeded(&out, args);
        assert!(out.stdout.is_empty(), "{args}: an edit prints nothing");
    }

    /// Runs a command that must fail with exactly one stderr line; returns it
    /// without the `fulcrumctl: ` prefix and newline.
    fn refused(&self, args: &str) -> String {
        let out = self.ctl(args);
        assert_eq!(out.status.code(), Some(1), "{args}");
        assert!(out.stdout.is_empty(), "{args}");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(err.lines().count(), 1, "{args}: {err:?}");
        err.strip_prefix("fulcrumctl: ")
            .and_then(|e| e.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("{args}: {err:?}"))
            .to_string()
    }

    fn stdout(&self, args: &str) -> String {
        let out = self.ctl(args);
        assert_eq!(out.status.code(), Some(0), "{args}");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn generation(&self) -> u64 {
        self.swap.load().generation
    }
}

const HEAD: &str = "\
fulcrum 0.1.0 (conn table size=1000 per worker, 1 worker)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
";

#[test]
fn test_fulcrumctl_edit_commands() {
    let d = director();
    d.ok("-A -t 10.0.0.100:81 -s sh");
    assert_eq!(d.generation(), 2);
    // No port: the virtual port. -m: masquerading.
    d.ok("-a -t 10.0.0.100:81 -r 10.1.0.21 -m -w 2");
    // No method: direct routing, which always uses the virtual port.
    d.ok("-a -t 10.0.0.100:81 -r 10.1.0.22:8080");
    assert_eq!(
        d.stdout("-L -n"),
        format!(
            "{HEAD}\
TCP  10.0.0.100:80 rr
  -> 10.1.0.11:80                 Masq    1      0          0         
TCP  10.0.0.100:81 sh
  -> 10.1.0.21:81                 Masq    2      0          0         
  -> 10.1.0.22:81                 Route   1      0          0         
"
        )
    );
    d.ok("-e -t 10.0.0.100:81 -r 10.1.0.21 -m -w 5");
    // -E replaces the settings (scheduler) and keeps the real servers.
    d.ok("-E -t 10.0.0.100:81 -s rr");
    d.ok("-A -u 10.0.0.100:53");
    let cfg = d.editor.config();
    assert_eq!(
        cfg.services[2].scheduler.0.name(),
        "wlc",
        "ipvsadm's default"
    );
    assert_eq!(cfg.services[1].real_servers.len(), 2);
    let saved = d.stdout("-S -n");
    assert_eq!(
        saved,
        "\
-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.1.0.11:80 -m -w 1
-A -t 10.0.0.100:81 -s rr
-a -t 10.0.0.100:81 -r 10.1.0.21:81 -m -w 5
-a -t 10.0.0.100:81 -r 10.1.0.22:81 -g -w 1
-A -u 10.0.0.100:53 -s wlc
"
    );
    assert_eq!(d.generation(), 7);

    d.ok("-d -t 10.0.0.100:81 -r 10.1.0.22");
    d.ok("-D -u 10.0.0.100:53");
    d.ok("-D -t 10.0.0.100:81");
    assert_eq!(
        d.stdout("-Ln"),
        format!("{HEAD}TCP  10.0.0.100:80 rr\n  -> 10.1.0.11:80                 Masq    1      0          0         \n")
    );
    d.ok("-C");
    assert_eq!(d.stdout("-Ln"), HEAD);
    assert_eq!(d.generation(), 11);

    // What -S printed rebuilds the same rules.
    for line in saved.lines() {
        d.ok(line);
    }
    assert_eq!(d.stdout("-S"), saved);
}

#[test]
fn test_fulcrumctl_edit_errors_change_nothing() {
    let d = director();
    let before = d.swap.load_full();
    let cfg_before = d.editor.config();
    let list_before = d.stdout("-Ln");

    assert_eq!(
        d.refused("-A -t 10.0.0.100:81 -s bogus"),
        format!(
            "services[1].scheduler: invalid scheduler \"bogus\": expected one of {}",
            sched::SchedKind::NAMES.join(", ")
        )
    );
    assert_eq!(
        d.refused("-a -t 10.0.0.100:80 -r 10.1.0.12 -m -w 70000"),
        "services[0].real_servers[1].weight: invalid weight 70000: expected 0..=65535"
    );
    assert_eq!(
        d.refused("-D -t 10.0.0.100:99"),
        "no such service: TCP 10.0.0.100:99"
    );
    assert_eq!(
        d.refused("-a -u 10.0.0.100:80 -r 10.1.0.12 -m"),
        "no such service: UDP 10.0.0.100:80"
    );
    assert_eq!(
        d.refused("-A -t 10.0.0.100:80 -s rr"),
        "service already exists: TCP 10.0.0.100:80"
    );
    assert_eq!(
        d.refused("-a -t 10.0.0.100:80 -r 10.1.0.11 -m"),
        "real server already exists: 10.1.0.11:80 in TCP 10.0.0.100:80"
    );
    assert_eq!(
        d.refused("-e -t 10.0.0.100:80 -r 10.1.0.99 -m"),
        "no such real server: 10.1.0.99:80 in TCP 10.0.0.100:80"
    );
    assert_eq!(
        d.refused("-d -t 10.0.0.100:80 -r 10.1.0.99"),
        "no such real server: 10.1.0.99:80 in TCP 10.0.0.100:80"
    );
    // A rule of the file loader, checked on the edited config as a whole.
    let e = d.refused("-a -t 10.0.0.100:80 -r 10.9.0.5");
    assert!(
        e.starts_with("services[0].real_servers[1].addr: direct-routing real server 10.9.0.5 is not on a connected subnet"),
        "{e}"
    );
    // Refused by fulcrumctl itself.
    assert_eq!(
        d.refused("-a -t 10.0.0.100:80 -r 10.1.0.12 -m --tun-type gue"),
        "--tun-type and --tun-port need -i (IP tunnelling)"
    );
    assert_eq!(
        d.refused("-a -t 10.0.0.100:80 -r 10.1.0.12 -i --fullnat"),
        "the argument '--ipip' cannot be used with '--fullnat'"
    );
    assert_eq!(
        d.refused("-a -t 10.0.0.100:80 -r 10.1.0.12 -s rr"),
        "option -s is not allowed with -a (add-server)"
    );
    assert_eq!(
        d.refused("-a -t 10.0.0.100:80"),
        "-a (add-server) needs -r RIP[:PORT]"
    );
    assert_eq!(
        d.refused("-D"),
        "-D (delete-service) needs -t or -u VIP:PORT"
    );

    // Nothing half-applied: same snapshot, generation, config and listing.
    assert!(Arc::ptr_eq(&before, &d.swap.load_full()));
    assert_eq!(d.generation(), 1);
    assert_eq!(d.editor.config(), cfg_before);
    assert_eq!(d.stdout("-Ln"), list_before);
    // And the next good edit is generation 2.
    d.ok("-e -t 10.0.0.100:80 -r 10.1.0.11 -m -w 3");
    assert_eq!(d.generation(), 2);
}

#[test]
fn test_fulcrumctl_sends_ipvsadm_options() {
    // A recording server: checks the request each flag turns into, whether
    // or not the daemon's config knows the field yet.
    let dir = temp_dir();
    let sock = dir.join("fulcrum.sock");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let edit: EditFn = {
        let seen = Arc::clone(&seen);
        Arc::new(move |req: &serde_json::Value| {
            seen.lock().expect("lock").push(req.clone());
            Ok(7)
        })
    };
    let _server =
        AdminServer::start_with_edits(&sock, Arc::new(fixture), edit).expect("admin server");
    let sock = sock.to_str().expect("utf8");
    let cases = [
        (
            "-A -t 10.0.0.100:80 -p",
            json!({"cmd": "add_service", "service": {"vip": "10.0.0.100:80", "proto": "tcp",
                "scheduler": "wlc", "forwarding": "dr", "persistence_timeout": 300}}),
        ),
        (
            "-E -u 10.0.0.100:53 -s sh -p 60 -M 255.255.255.0 -b sh-port,sh-fallback",
            json!({"cmd": "edit_service", "service": {"vip": "10.0.0.100:53", "proto": "udp",
                "scheduler": "sh", "persistence_timeout": 60,
                "persistence_netmask": "255.255.255.0",
                "sched_flags": ["sh-port", "sh-fallback"]}}),
        ),
        (
            "-a -t 10.0.0.100:80 -r 10.1.0.11:8080",
            json!({"cmd": "add_real", "vip": "10.0.0.100:80", "proto": "tcp",
                "real": {"addr": "10.1.0.11:80", "weight": 1, "forwarding": "dr"}}),
        ),
        (
            "-e -t 10.0.0.100:80 -r 10.1.0.11:8080 -m -w 0",
            json!({"cmd": "edit_real", "vip": "10.0.0.100:80", "proto": "tcp",
                "real": {"addr": "10.1.0.11:8080", "weight": 0, "forwarding": "nat"}}),
        ),
        (
            "-d -t 10.0.0.100:80 -r 10.1.0.11",
            json!({"cmd": "delete_real", "vip": "10.0.0.100:80", "proto": "tcp",
                "real": {"addr": "10.1.0.11:80"}}),
        ),
        (
            "-D -u 10.0.0.100:53",
            json!({"cmd": "delete_service", "vip": "10.0.0.100:53", "proto": "udp"}),
        ),
        ("-C", json!({"cmd": "clear"})),
    ];
    for (args, want) in &cases {
        let mut all: Vec<&str> = args.split_whitespace().collect();
        all.extend(["--socket", sock]);
        let out = ctl(&all);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = seen.lock().expect("lock").pop().expect("one request");
        assert_eq!(&got, want, "{args}");
    }
}

#[test]
fn test_fulcrumctl_every_scheduler() {
    // Issue 3: any scheduler name ipvsadm accepts works in -A -s NAME.
    let d = director();
    let names = sched::SchedKind::NAMES;
    for (i, name) in names.iter().enumerate() {
        d.ok(&format!("-A -t 10.0.0.100:{} -s {name}", 1000 + i));
        d.ok(&format!(
            "-a -t 10.0.0.100:{} -r 10.1.0.{} -m -w {}",
            1000 + i,
            20 + i,
            i
        ));
    }
    let listed = d.stdout("-Ln");
    for (i, name) in names.iter().enumerate() {
        let head = format!("TCP  10.0.0.100:{} {name}", 1000 + i);
        assert!(listed.lines().any(|l| l == head), "{head} in {listed}");
    }
    let snap = d.swap.load();
    assert_eq!(snap.services.len(), 1 + names.len());
    for (i, name) in names.iter().enumerate() {
        assert_eq!(snap.services[1 + i].scheduler.name(), *name);
        assert_eq!(
            snap.reals[snap.services[1 + i].reals[0] as usize].weight,
            i as u32
        );
    }
}
