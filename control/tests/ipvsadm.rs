//! ipvsadm's `--set`, `-Z`, `-S | -R`, `--rate` and `-c` through the real
//! `fulcrumctl` binary against a control plane wired as the daemon wires
//! it: an `Editor` publishing the snapshot a `Core` processes packets with,
//! the admin commands of `control::commands` / `control::conns`, and the
//! rate estimator's state.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use control::admin::{build_status, AdminServer, EditFn, Handlers, RateStatus, StatusFn};
use control::compile::compile;
use control::config::parse;
use control::edit::Editor;
use control::rates::{real_totals, Rates, SAMPLE_INTERVAL};
use dataplane::conn::{ConnRecord, DumpChannel, TcpState};
use dataplane::pipeline::{Core, Verdict};
use dataplane::snapshot::Snapshot;
use dataplane::stats::{RealStats, SharedStats, WorkerStats};
use etherparse::PacketBuilder;

const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 0x02];

/// A TCP NAT service and a UDP one, every neighbour static.
const CFG: &str = r#"(
    eal_args: ["-l", "0-1"],
    workers: [1],
    conn_table_size: 1000,
    ports: [
        (name: "outside", device: "net_null0", addrs: ["10.0.0.1/24"]),
        (name: "inside", device: "net_null1", addrs: ["10.1.0.1/24"]),
    ],
    neighbours: [
        (ip: "10.0.0.2", mac: "02:cc:00:00:00:02"),
        (ip: "10.1.0.11", mac: "02:aa:00:00:00:0b"),
    ],
    services: [
        (vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
         persistence_timeout: 60,
         real_servers: [(addr: "10.1.0.11:8080", weight: 3)]),
        (vip: "10.0.0.100:53", proto: "udp", scheduler: "sh", forwarding: "nat",
         sched_flags: ["sh-port"],
         real_servers: [(addr: "10.1.0.11:53")]),
    ],
)"#;

struct Director {
    dir: PathBuf,
    _server: AdminServer,
    swap: Arc<ArcSwap<Snapshot>>,
    stats: Arc<SharedStats>,
    rates: Arc<Mutex<Rates>>,
}

impl Drop for Director {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn director(dumps: Vec<Arc<DumpChannel>>) -> Director {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "fulcrum-ipvsadm-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cfg = parse(CFG, "ipvsadm.ron").expect("valid");
    let macs = vec![OUT_MAC, IN_MAC];
    let snap = compile(&cfg, &macs, 1, None, &[]);
    let stats = Arc::new(SharedStats::new(snap.reals.len()));
    let swap = Arc::new(ArcSwap::from_pointee(snap));
    let editor = Arc::new(Editor::new(
        cfg,
        macs,
        Arc::clone(&swap),
        vec![Arc::clone(&stats)],
    ));
    let rates = Arc::new(Mutex::new(Rates::new()));
    let status: StatusFn = {
        let (swap, stats, rates) = (Arc::clone(&swap), Arc::clone(&stats), Arc::clone(&rates));
        Arc::new(move || {
            let snap = swap.load();
            let mut st = build_status(&snap, &[Arc::clone(&stats)], &[1], 0, 1000);
            rates.lock().unwrap().apply(&snap, &mut st);
            st
        })
    };
    let edit: EditFn = {
        let editor = Arc::clone(&editor);
        Arc::new(move |req: &serde_json::Value| editor.handle(req))
    };
    let mut commands = vec![
        control::conns::command(dumps),
        control::commands::zero(
            Arc::clone(&rates),
            Arc::clone(&swap),
            vec![Arc::clone(&stats)],
        ),
    ];
    commands.extend(control::commands::editor_commands(editor));
    let server = AdminServer::start_with(
        &dir.join("f.sock"),
        Handlers {
            status,
            edit: Some(edit),
            commands,
        },
    )
    .expect("admin server starts");
    Director {
        dir,
        _server: server,
        swap,
        stats,
        rates,
    }
}

impl Director {
    /// `fulcrumctl ARGS` with `stdin`; (exit code, stdout, stderr).
    fn run(&self, args: &str, stdin: &str) -> (i32, String, String) {
        let sock = self.dir.join("f.sock");
        let mut child = Command::new(env!("CARGO_BIN_EXE_fulcrumctl"))
            .args(args.split_whitespace())
            .arg("--socket")
            .arg(&sock)
            .env_remove("FULCRUM_SOCKET")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run fulcrumctl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("fulcrumctl exits");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &str) -> String {
        self.ok_with(args, "")
    }

    fn ok_with(&self, args: &str, stdin: &str) -> String {
        let (code, out, err) = self.run(args, stdin);
        assert_eq!((code, err.as_str()), (0, ""), "{args}");
        out
    }
}

fn frame_udp(sport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4([10, 0, 0, 2], [10, 0, 0, 100], 64)
        .udp(sport, 53)
        .write(&mut v, b"q")
        .expect("frame");
    v
}

fn frame_tcp(sport: u16, syn: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4([10, 0, 0, 2], [10, 0, 0, 100], 64)
        .tcp(sport, 80, 1000, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut v = Vec::new();
    b.write(&mut v, &[]).expect("frame");
    v
}

/// The expiry (ms) of the connection from client port `cport`.
fn expiry(core: &Core, cport: u16, now_ms: u64) -> (TcpState, u32) {
    let mut buf: Vec<ConnRecord> = Vec::with_capacity(64);
    assert_eq!(core.conns.dump(0, now_ms, 1 << 20, &mut buf), None);
    let r = buf.iter().find(|r| r.cport == cport).expect("listed");
    (r.state, r.expire_ms)
}

#[test]
fn test_set_timeouts_reach_new_connections_only() {
    let d = director(vec![]);
    assert_eq!(
        d.ok("-L --timeout"),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    let mut core = Core::new(0, 1, 1000);
    let snap = d.swap.load_full();
    core.sync(&snap);
    // A UDP connection under the old timeouts.
    assert_eq!(
        core.process(&snap, &mut frame_udp(5000), 0, 0, false),
        Verdict::Tx(1)
    );
    assert_eq!(expiry(&core, 5000, 0), (TcpState::Udp, 300_032));

    // ipvsadm --set: TCP 1000 s, TCPFIN unchanged (0), UDP 7 s.
    assert_eq!(d.ok("--set 1000 0 7"), "");
    assert_eq!(
        d.ok("-L --timeout"),
        "Timeout (tcp tcpfin udp): 1000 120 7\n"
    );
    let snap = d.swap.load_full();
    assert_eq!(snap.generation, 2);
    assert!(core.sync(&snap));
    // A new UDP connection gets 7 s; the old one keeps its timer.
    assert_eq!(
        core.process(&snap, &mut frame_udp(5001), 0, 10, false),
        Verdict::Tx(1)
    );
    let (_, new_udp) = expiry(&core, 5001, 10);
    assert!((7_000..7_064).contains(&new_udp), "{new_udp}");
    let (_, old_udp) = expiry(&core, 5000, 10);
    assert!(old_udp > 299_000, "{old_udp}");
    // A new TCP connection, once ESTABLISHED, gets 1000 s.
    assert_eq!(
        core.process(&snap, &mut frame_tcp(6000, true), 0, 10, false),
        Verdict::Tx(1)
    );
    assert_eq!(
        core.process(&snap, &mut frame_tcp(6000, false), 0, 20, false),
        Verdict::Tx(1)
    );
    let (state, tcp) = expiry(&core, 6000, 20);
    assert_eq!(state, TcpState::Established);
    assert!((1_000_000..1_000_064).contains(&tcp), "{tcp}");

    // Out of range: refused with the config path, nothing published.
    let (code, _, err) = d.run("--set 0 0 9999999", "");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "fulcrumctl: timeouts.udp: invalid timeout 9999999 s: expected 1..=2592000 seconds\n"
    );
    assert_eq!(d.swap.load().generation, 2);
}

/// The real server ids of the snapshot: TCP's first, UDP's second.
fn publish(stats: &SharedStats, n_reals: usize, per_real: RealStats) {
    let mut reals = vec![RealStats::default(); n_reals];
    for r in reals.iter_mut().skip(1) {
        *r = per_real;
    }
    stats.publish(&WorkerStats::default(), &reals);
}

#[test]
fn test_zero_and_rate_listing() {
    let d = director(vec![]);
    let n = d.swap.load().reals.len();
    let mut counters = RealStats {
        conns: 0,
        in_pkts: 0,
        out_pkts: 0,
        in_bytes: 0,
        out_bytes: 0,
        active_conns: 2,
        inactive_conns: 1,
    };
    // 40 conn/s, 400 pkt/s in, 200 out, 40 kB/s in, 80 kB/s out per real
    // server, sampled every 2 s for 80 s (settled: the first sample only
    // starts the estimator, then (3/4)^39 of the gap is left).
    for _ in 0..40 {
        counters.conns += 80;
        counters.in_pkts += 800;
        counters.out_pkts += 400;
        counters.in_bytes += 80_000;
        counters.out_bytes += 160_000;
        publish(&d.stats, n, counters);
        let snap = d.swap.load();
        let stats = [Arc::clone(&d.stats)];
        d.rates
            .lock()
            .unwrap()
            .sample(&snap, |id| real_totals(&stats, id), SAMPLE_INTERVAL);
    }
    let head = "fulcrum 0.1.0 (conn table size=1000 per worker, 1 worker)\n";
    // IPVS's integer EWMA settles just under a steady byte rate: the
    // average stops moving once (rate - avg) >> 2 is 0, 3/32 B/s short.
    assert_eq!(
        d.ok("-L -n --rate"),
        format!(
            "{head}\
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.0.0.100:80                      40      400      200    39999    79999
  -> 10.1.0.11:8080                     40      400      200    39999    79999
UDP  10.0.0.100:53                      40      400      200    39999    79999
  -> 10.1.0.11:53                       40      400      200    39999    79999
"
        )
    );
    let stats_before = d.ok("-L -n --stats --exact");
    assert!(
        stats_before.contains(
            "  -> 10.1.0.11:8080                   3200    32000    16000  3200000  6400000\n"
        ),
        "{stats_before}"
    );

    // -Z -t: that service's counters and rates only.
    assert_eq!(d.ok("-Z -t 10.0.0.100:80"), "");
    let st = control::admin::query(&d.dir.join("f.sock")).expect("status");
    let tcp = &st.services[0];
    assert_eq!((tcp.conns, tcp.in_pkts, tcp.out_bytes), (0, 0, 0));
    assert_eq!(
        (tcp.active_conns, tcp.inactive_conns),
        (2, 1),
        "state stays"
    );
    assert_eq!(tcp.rate, Some(RateStatus::default()));
    assert_eq!(st.services[1].conns, 3200, "the UDP service untouched");
    assert_eq!(st.services[1].rate.map(|r| r.cps), Some(40));
    // -Z of a service that does not exist.
    let (code, _, err) = d.run("-Z -u 10.0.0.100:54", "");
    assert_eq!(
        (code, err.as_str()),
        (1, "fulcrumctl: no such service: UDP 10.0.0.100:54\n")
    );
    // -Z: everything. Counting resumes from the zero.
    assert_eq!(d.ok("-Z"), "");
    counters.conns += 10;
    publish(&d.stats, n, counters);
    let st = control::admin::query(&d.dir.join("f.sock")).expect("status");
    assert_eq!((st.services[0].conns, st.services[1].conns), (10, 10));
    assert_eq!(st.services[1].rate, Some(RateStatus::default()));
}

#[test]
fn test_save_restore_round_trip_and_atomic_refusal() {
    let d = director(vec![]);
    let saved = d.ok("-S -n");
    assert_eq!(
        saved,
        "\
-A -t 10.0.0.100:80 -s rr -p 60
-a -t 10.0.0.100:80 -r 10.1.0.11:8080 -m -w 3
-A -u 10.0.0.100:53 -s sh -b sh-port
-a -u 10.0.0.100:53 -r 10.1.0.11:53 -m -w 1
"
    );
    d.ok("-C");
    assert_eq!(d.ok("-S"), "");
    let g = d.swap.load().generation;
    assert_eq!(d.ok_with("-R", &saved), "");
    assert_eq!(
        d.swap.load().generation,
        g + 1,
        "one publish for the whole batch"
    );
    assert_eq!(d.ok("-S -n"), saved);

    // A bad line: its number, nothing applied.
    let bad = "-A -t 10.0.0.101:80 -s rr\n\n-a -t 10.0.0.101:80 -r 10.1.0.12 -m -w 70000\n";
    let g = d.swap.load().generation;
    let (code, out, err) = d.run("-R", bad);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "fulcrumctl: line 3: services[2].real_servers[0].weight: invalid weight 70000: expected 0..=65535; nothing restored\n"
    );
    // A line the parser refuses never reaches the daemon.
    let (code, _, err) = d.run("-R", "-A -t 10.0.0.101:80\n-a -t 10.0.0.101:80\n");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "fulcrumctl: line 2: -a (add-server) needs -r RIP[:PORT]\n"
    );
    // A rule that conflicts with the running config: all or nothing.
    let (code, _, err) = d.run(
        "-R",
        "-A -t 10.0.0.102:80 -s rr\n-A -t 10.0.0.100:80 -s rr\n",
    );
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "fulcrumctl: line 2: service already exists: TCP 10.0.0.100:80; nothing restored\n"
    );
    assert_eq!(d.swap.load().generation, g);
    assert_eq!(d.ok("-S -n"), saved);
}

#[test]
fn test_connection_listing_through_fulcrumctl() {
    let ch = DumpChannel::new();
    let d = director(vec![Arc::clone(&ch)]);
    let snap = d.swap.load_full();
    let mut core = Core::new(0, 1, 1000);
    core.sync(&snap);
    assert_eq!(
        core.process(&snap, &mut frame_tcp(6000, true), 0, 0, false),
        Verdict::Tx(1)
    );
    assert_eq!(
        core.process(&snap, &mut frame_tcp(6000, false), 0, 1, false),
        Verdict::Tx(1)
    );
    assert_eq!(
        core.process(&snap, &mut frame_tcp(6001, true), 0, 1, false),
        Verdict::Tx(1)
    );
    assert_eq!(
        core.process(&snap, &mut frame_udp(5000), 0, 1, false),
        Verdict::Tx(1)
    );
    // The "worker": serves the channel from its own thread at now = 1 s.
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (ch, stop) = (Arc::clone(&ch), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                ch.serve(&core.conns, 1000, 2);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let all = d.ok("-L -n -c");
    let tcp_only = d.ok("-L -n -c -t 10.0.0.100:80");
    let json = d.ok("-L -n -c --json -u 10.0.0.100:53");
    let none = d.ok("-L -n -c -r 10.1.0.99");
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("worker");
    let head = "IPVS connection entries\npro expire state       source             virtual            destination\n";
    assert_eq!(
        all,
        format!(
            "{head}\
TCP 14:59  ESTABLISHED 10.0.0.2:6000      10.0.0.100:80      10.1.0.11:8080
TCP 00:59  SYN_RECV    10.0.0.2:6001      10.0.0.100:80      10.1.0.11:8080
UDP 04:59  UDP         10.0.0.2:5000      10.0.0.100:53      10.1.0.11:53
"
        )
    );
    assert_eq!(tcp_only.lines().count(), 4);
    assert!(!tcp_only.contains("UDP "));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["state"], "UDP");
    assert_eq!(v[0]["rport"], 53);
    assert_eq!(none, head);
}
