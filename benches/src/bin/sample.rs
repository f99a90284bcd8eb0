//! `fulcrum-sample`: reads a running fulcrum's worker counters over its admin
//! socket at precise times, for `benches/pipeline.sh`.
//!
//! Layer: benchmark tooling, never linked into the daemon. It speaks the
//! admin protocol of `control/src/admin/` (one line `{"cmd":"status"}`,
//! one line of JSON back) itself, so a sample costs one socket round trip
//! instead of a `fulcrumctl` process start, and every sample is stamped with
//! `Instant` taken right after the answer arrived. Workers publish their
//! counters every 1 ms (`dataplane::worker::TICK_MS`), which bounds the
//! staleness of a sample.
//!
//! Subcommands (all print `key=value` lines, one per fact):
//!
//! - `wait SECONDS`: succeeds once the socket answers with a status.
//! - `window WARMUP_S WINDOW_S`: sleeps WARMUP_S, samples, sleeps WINDOW_S,
//!   samples; prints `window_s`, the deltas `rx_pkts`, `tx_pkts`,
//!   `conns_created`, `drops_total`, the rates `rx_pps`, `tx_pps`, and
//!   `drop.<reason>=N` for every reason whose delta is non-zero.
//! - `first-pass FLOWS INTERVAL_MS TIMEOUT_S`: polls every INTERVAL_MS from
//!   the first answer until `conns_created` reaches FLOWS (or TIMEOUT_S);
//!   prints the number of samples taken strictly inside (0, FLOWS) and, when
//!   there are at least two, `new_conns_per_s` from the first to the last of
//!   them (the slope of connection creation while the first pass of the
//!   file is being read). Refuses to guess from fewer than two samples.
//!   With a fourth argument PID (fulcrum's process id), every sample also
//!   reads `VmRSS` from `/proc/PID/status` right after the answer, and it
//!   prints the resident memory at the first answer and at the answer that
//!   saw all FLOWS created (`rss_first_kb`, `rss_conns_first`, `rss_last_kb`,
//!   `rss_conns_last`, in kB and connections) and their quotient
//!   `rss_bytes_per_new_conn` = ΔRSS bytes / Δconns_created: the memory that
//!   connections becoming live add (pages of the table touched for the first
//!   time), as opposed to what the table preallocates.
//!
//! Counters are summed over all workers. Errors (socket, JSON shape) are one
//! line on stderr and exit status 1.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// Counters of one status answer, summed over workers.
#[derive(Clone, Debug, Default)]
struct Counters {
    /// When the answer was complete.
    at: Option<Instant>,
    rx_pkts: u64,
    tx_pkts: u64,
    conns_created: u64,
    /// Drops by reason name.
    drops: BTreeMap<String, u64>,
}

/// Longest status answer read, bytes (fulcrumctl's own cap is larger; a
/// benchmark status with one service is a few kB).
const MAX_REPLY_BYTES: u64 = 16 * 1024 * 1024;

fn query(socket: &Path) -> Result<Counters> {
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"{\"cmd\":\"status\"}\n")?;
    let mut reply = String::new();
    s.take(MAX_REPLY_BYTES).read_to_string(&mut reply)?;
    let at = Instant::now();
    let doc: Value = serde_json::from_str(reply.trim()).context("status answer is not JSON")?;
    if let Some(e) = doc.get("error") {
        bail!("fulcrum answered an error: {e}");
    }
    let workers = doc
        .get("workers")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("status JSON: no 'workers' list"))?;
    let mut c = Counters {
        at: Some(at),
        ..Counters::default()
    };
    for (i, w) in workers.iter().enumerate() {
        let num = |k: &str| {
            w.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| anyhow!("status JSON: workers[{i}].{k} missing"))
        };
        c.rx_pkts += num("rx_pkts")?;
        c.tx_pkts += num("tx_pkts")?;
        c.conns_created += num("conns_created")?;
        let drops = w
            .get("drops")
            .and_then(Value::as_object)
            .ok_or_else(|| anyhow!("status JSON: workers[{i}].drops missing"))?;
        for (reason, n) in drops {
            let n = n
                .as_u64()
                .ok_or_else(|| anyhow!("status JSON: drops.{reason} is not a count"))?;
            *c.drops.entry(reason.clone()).or_insert(0) += n;
        }
    }
    Ok(c)
}

fn secs_arg(s: &str, what: &str) -> Result<f64> {
    let v: f64 = s
        .parse()
        .with_context(|| format!("{what}: not a number: {s}"))?;
    if !(v.is_finite() && v >= 0.0) {
        bail!("{what}: must be a finite number >= 0, got {s}");
    }
    Ok(v)
}

fn cmd_wait(socket: &Path, limit_s: f64) -> Result<()> {
    let t0 = Instant::now();
    loop {
        match query(socket) {
            Ok(_) => {
                println!("ready_after_s={:.3}", t0.elapsed().as_secs_f64());
                return Ok(());
            }
            Err(e) if t0.elapsed().as_secs_f64() >= limit_s => {
                return Err(e.context("fulcrum never answered"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn cmd_window(socket: &Path, warmup_s: f64, window_s: f64) -> Result<()> {
    std::thread::sleep(Duration::from_secs_f64(warmup_s));
    let a = query(socket)?;
    std::thread::sleep(Duration::from_secs_f64(window_s));
    let b = query(socket)?;
    let dt =
        b.at.zip(a.at)
            .map(|(b, a)| (b - a).as_secs_f64())
            .unwrap_or(0.0);
    if dt <= 0.0 {
        bail!("window of {dt} s: clock did not advance");
    }
    let rx = b.rx_pkts - a.rx_pkts;
    let tx = b.tx_pkts - a.tx_pkts;
    println!("window_s={dt:.6}");
    println!("rx_pkts={rx}");
    println!("tx_pkts={tx}");
    println!("rx_pps={:.0}", rx as f64 / dt);
    println!("tx_pps={:.0}", tx as f64 / dt);
    println!("conns_created={}", b.conns_created - a.conns_created);
    println!("conns_created_total={}", b.conns_created);
    let mut total = 0;
    for (reason, n) in &b.drops {
        let d = n - a.drops.get(reason).copied().unwrap_or(0);
        total += d;
        if d != 0 {
            println!("drop.{reason}={d}");
        }
    }
    println!("drops_total={total}");
    Ok(())
}

/// `VmRSS` of a `/proc/PID/status` text, in kB (the kernel's unit there).
fn parse_vmrss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

/// Resident set size of process `pid`, kB.
fn vmrss_kb(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vmrss_kb(&text).with_context(|| format!("{path}: no VmRSS line"))
}

fn cmd_first_pass(
    socket: &Path,
    flows: u64,
    interval_ms: u64,
    timeout_s: f64,
    pid: Option<u32>,
) -> Result<()> {
    let t0 = Instant::now();
    let mut inside: Vec<(Instant, u64)> = Vec::new();
    let mut first_seen = None;
    let mut reached = false;
    // (kB, conns_created) at the first answer and at the latest one.
    let mut rss_first: Option<(u64, u64)> = None;
    let mut rss_last: Option<(u64, u64)> = None;
    while t0.elapsed().as_secs_f64() < timeout_s {
        let c = match query(socket) {
            Ok(c) => c,
            Err(_) if first_seen.is_none() => {
                // Not up yet: EAL init and the pcap load come first.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) => return Err(e),
        };
        let at = c.at.unwrap_or_else(Instant::now);
        first_seen.get_or_insert(c.conns_created);
        if let Some(pid) = pid {
            let kb = vmrss_kb(pid)?;
            rss_first.get_or_insert((kb, c.conns_created));
            rss_last = Some((kb, c.conns_created));
        }
        if c.conns_created >= flows {
            reached = true;
            break;
        }
        if c.conns_created > 0 {
            inside.push((at, c.conns_created));
        }
        std::thread::sleep(Duration::from_millis(interval_ms));
    }
    println!("first_sample_conns={}", first_seen.unwrap_or(0));
    println!("reached_all={}", u8::from(reached));
    println!("samples_inside={}", inside.len());
    if let (Some(&(ta, ca)), Some(&(tb, cb))) = (inside.first(), inside.last()) {
        let dt = (tb - ta).as_secs_f64();
        if inside.len() >= 2 && dt > 0.0 {
            println!("span_s={dt:.6}");
            println!("new_conns_per_s={:.0}", (cb - ca) as f64 / dt);
        }
    }
    if let (Some((ka, ca)), Some((kb, cb))) = (rss_first, rss_last) {
        println!("rss_first_kb={ka}");
        println!("rss_conns_first={ca}");
        println!("rss_last_kb={kb}");
        println!("rss_conns_last={cb}");
        if cb > ca {
            let growth = (kb as f64 - ka as f64) * 1024.0;
            println!("rss_bytes_per_new_conn={:.1}", growth / (cb - ca) as f64);
        }
    }
    Ok(())
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fulcrum-sample SOCKET (wait SECONDS | window WARMUP_S WINDOW_S | first-pass FLOWS INTERVAL_MS TIMEOUT_S [PID])";
    let (Some(socket), Some(cmd)) = (args.first(), args.get(1)) else {
        bail!(usage)
    };
    let socket = Path::new(socket);
    match (cmd.as_str(), &args[2..]) {
        ("wait", [s]) => cmd_wait(socket, secs_arg(s, "SECONDS")?),
        ("window", [w, n]) => {
            cmd_window(socket, secs_arg(w, "WARMUP_S")?, secs_arg(n, "WINDOW_S")?)
        }
        ("first-pass", [f, i, t, pid @ ..]) if pid.len() <= 1 => cmd_first_pass(
            socket,
            f.parse()
                .with_context(|| format!("FLOWS: not a count: {f}"))?,
            i.parse()
                .with_context(|| format!("INTERVAL_MS: not a count: {i}"))?,
            secs_arg(t, "TIMEOUT_S")?,
            pid.first()
                .map(|p| {
                    p.parse()
                        .with_context(|| format!("PID: not a process id: {p}"))
                })
                .transpose()?,
        ),
        _ => bail!(usage),
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("fulcrum-sample: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    /// Serves `replies` one per connection, checking each request line.
    fn fake_admin(replies: Vec<String>) -> (std::path::PathBuf, std::thread::JoinHandle<()>) {
        let dir = std::env::temp_dir().join(format!(
            "fulcrum-sample-test-{}-{}",
            std::process::id(),
            replies.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            for r in replies {
                let (mut s, _) = l.accept().unwrap();
                let mut line = String::new();
                BufReader::new(&s).read_line(&mut line).unwrap();
                assert_eq!(line, "{\"cmd\":\"status\"}\n");
                s.write_all(r.as_bytes()).unwrap();
            }
        });
        (path, h)
    }

    fn worker(rx: u64, tx: u64, conns: u64, tx_full: u64) -> String {
        format!(
            r#"{{"id":0,"lcore":1,"rx_pkts":{rx},"rx_bytes":0,"tx_pkts":{tx},"tx_bytes":0,"conns_created":{conns},"conns_expired":0,"redirects_out":0,"redirects_in":0,"arp_replies":0,"arp_requests":0,"icmp_echo_replies":0,"drops":{{"tx_full":{tx_full},"tcp_no_conn":0}}}}"#
        )
    }

    #[test]
    fn test_query_sums_workers() {
        let reply = format!(
            r#"{{"version":"0.1.0","workers":[{},{}],"services":[]}}"#,
            worker(10, 7, 2, 1),
            worker(5, 4, 1, 2)
        ) + "\n";
        let (path, h) = fake_admin(vec![reply]);
        let c = query(&path).unwrap();
        h.join().unwrap();
        assert_eq!((c.rx_pkts, c.tx_pkts, c.conns_created), (15, 11, 3));
        assert_eq!(c.drops.get("tx_full"), Some(&3));
        assert_eq!(c.drops.get("tcp_no_conn"), Some(&0));
        assert!(c.at.is_some());
    }

    #[test]
    fn test_query_bad_shape() {
        let missing = r#"{"workers":[{"id":0,"rx_pkts":1,"tx_pkts":1,"drops":{}}]}"#.to_string();
        let error = r#"{"error":"unknown command"}"#.to_string();
        let (path, h) = fake_admin(vec![missing, error]);
        let e1 = query(&path).unwrap_err().to_string();
        let e2 = query(&path).unwrap_err().to_string();
        h.join().unwrap();
        assert!(e1.contains("conns_created"), "{e1}");
        assert!(e2.contains("unknown command"), "{e2}");
    }

    #[test]
    fn test_parse_vmrss_kb() {
        let status = "Name:\tfulcrum\nVmPeak:\t  900 kB\nVmRSS:\t   123456 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vmrss_kb(status), Some(123_456));
        assert_eq!(
            parse_vmrss_kb("Name:\tkthreadd\n"),
            None,
            "kernel threads have none"
        );
        assert_eq!(
            parse_vmrss_kb("VmRSS:\t12 MB\n"),
            None,
            "only kB is the kernel's unit"
        );
        let me = vmrss_kb(std::process::id()).unwrap();
        assert!(me > 0, "this test process is resident");
    }
}
