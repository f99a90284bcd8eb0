//! `fulcrum-healthbench apply`: from a checker transition to the first
//! frame the worker schedules differently.
//!
//! One process: a `dataplane::worker::Worker` over in-memory queues
//! (`hwinit::mem::MemQueue`) runs in its own thread, busy-polling, and is
//! fed new client SYNs (a new client port each) for a NAT rr service of 3
//! real servers, at a steady rate (one SYN per `--syn-gap-ns`, injected in
//! the worker's own loop before each round, at most 32 per round). Every
//! transmitted frame is logged with the time the round that sent it ended
//! and the real server it went to. The main thread flips real server 2
//! down and up through the daemon's path: `Pool::on_checker` (the checker
//! result) → `Pool::view` → `Editor::set_health` (compile, make room for
//! ids, publish the new snapshot with `ArcSwap::store`); the worker loads
//! the published snapshot at the start of its next round.
//!
//! The first frame scheduled differently is the first frame after the call
//! whose real server is not the one rr would have picked next under the
//! old set (the successor of the previous frame's real server in the
//! order observed before the flip). After it, a downed server must get no
//! frame until the next flip, and a returned one must get frames: both are
//! checked and counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use arc_swap::ArcSwap;
use control::compile::compile;
use control::config::parse;
use control::edit::Editor;
use control::health::pool::Pool;
use dataplane::pipeline::Core;
use dataplane::stats::SharedStats;
use dataplane::worker::{LoopConf, Mesh, Worker};
use etherparse::PacketBuilder;
use hwinit::mem::{MemBuf, MemQueue};

use super::{stats_ms, Args};

const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const VIP: [u8; 4] = [10, 0, 0, 100];

/// One NAT rr service, 3 real servers with one TCP_CHECK each (the checker
/// only gives the pool its indices: nothing probes here); every neighbour
/// static, so the worker never waits for ARP.
const CFG: &str = r#"(
    eal_args: ["-l", "0-1"],
    workers: [1],
    ports: [
        (name: "outside", device: "net_null0", addrs: ["10.0.0.1/24"]),
        (name: "inside", device: "net_null1", addrs: ["10.1.0.1/24"]),
    ],
    routes: [ (dst: "0.0.0.0/0", via: "10.0.0.254") ],
    neighbours: [
        (ip: "10.0.0.254", mac: "02:00:00:00:00:fe"),
        (ip: "10.1.0.11", mac: "02:00:00:00:01:11"),
        (ip: "10.1.0.12", mac: "02:00:00:00:01:12"),
        (ip: "10.1.0.13", mac: "02:00:00:00:01:13"),
    ],
    services: [
        (vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
         delay_loop: 1,
         real_servers: [
            (addr: "10.1.0.11:80", checkers: [TCP_CHECK()]),
            (addr: "10.1.0.12:80", checkers: [TCP_CHECK()]),
            (addr: "10.1.0.13:80", checkers: [TCP_CHECK()]),
         ]),
    ],
)"#;

/// The real server flipped (config index 1: 10.1.0.12) as its last octet.
const FLIPPED: u8 = 12;

fn syn(sport: u16, cip: [u8; 4]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4(cip, VIP, 64)
        .tcp(sport, 80, 1, 64240)
        .syn()
        .write(&mut v, &[])
        .expect("a SYN fits");
    v
}

/// One frame the worker sent: when its round ended, and the last octet of
/// its destination address (the real server).
#[derive(Clone, Copy)]
struct Sent {
    at: Instant,
    /// How long the round that sent it took, ns.
    round_ns: u32,
    rip: u8,
}

/// The worker thread: SYNs in, frames logged, until `stop`.
fn worker_loop(mut w: Worker<MemQueue>, stop: &AtomicBool, gap: Duration, cap: usize) -> Vec<Sent> {
    let mut log = Vec::with_capacity(cap);
    let epoch = Instant::now();
    let mut next_syn = epoch;
    let mut n: u32 = 0;
    // A distinct (client address, port) per SYN: 60000 ports per address.
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut k = 0;
        while next_syn <= now && k < 32 {
            let cip = [172, 16, 0, (n / 60_000) as u8 + 1];
            w.queues[0].inject(&syn(1024 + (n % 60_000) as u16, cip));
            n += 1;
            next_syn += gap;
            k += 1;
        }
        if next_syn + gap * 64 < now {
            next_syn = now; // fell far behind (descheduled): do not catch up
        }
        let started = Instant::now();
        w.poll_once(epoch.elapsed().as_millis() as u64);
        let at = Instant::now();
        let round_ns = (at - started).as_nanos().min(u128::from(u32::MAX)) as u32;
        for f in w.queues[1].tx.drain(..) {
            let d: &[u8] = hwinit::port::PacketBuf::data(&f);
            if log.len() < cap && d.len() >= 34 {
                log.push(Sent {
                    at,
                    round_ns,
                    rip: d[33],
                });
            }
            drop::<MemBuf>(f);
        }
    }
    log
}

/// One flip: when the call started and returned, which way it went.
struct Flip {
    t0: Instant,
    t1: Instant,
    down: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let cfg = parse(CFG, "healthbench.ron").map_err(|e| anyhow::anyhow!("{e}"))?;
    let macs = vec![OUT_MAC, IN_MAC];
    let snap0 = compile(&cfg, &macs, 1, None, &[]);
    let n_reals = snap0.reals.len();
    let snap = Arc::new(ArcSwap::from_pointee(snap0));
    let stats = Arc::new(SharedStats::new(n_reals));
    let editor = Editor::new(
        cfg.clone(),
        macs,
        Arc::clone(&snap),
        vec![Arc::clone(&stats)],
    );
    let (mut pool, plans) = Pool::from_config(&cfg, None);
    if plans.len() != 3 {
        bail!(
            "expected 3 checkers in the bench config, got {}",
            plans.len()
        );
    }

    let w = Worker::new(
        Core::new(0, 1, 1 << 20),
        vec![MemQueue::new(OUT_MAC), MemQueue::new(IN_MAC)],
        Arc::clone(&snap),
        Mesh::new(1),
        Arc::clone(&stats),
        LoopConf {
            burst: 32,
            idle_sleep: Duration::ZERO,
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let gap = Duration::from_nanos(args.syn_gap_ns);
    let cap = 4_000_000;
    let worker = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("bench-worker".into())
            .spawn(move || worker_loop(w, &stop, gap, cap))?
    };
    let load_before = super::loadavg();
    // Warm up: the worker's first rounds, the first conns.
    std::thread::sleep(Duration::from_millis(100));
    let mut flips = Vec::new();
    for i in 0..2 * args.transitions {
        let down = i % 2 == 0;
        // A random moment, 5-15 ms after the previous flip.
        std::thread::sleep(Duration::from_micros(5_000 + fastrand::u64(..10_000)));
        let t0 = Instant::now();
        pool.on_checker(1, !down, None);
        let g = editor
            .set_health(pool.view())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let t1 = Instant::now();
        if g.is_none() {
            bail!("flip {i}: the health view did not change");
        }
        flips.push(Flip { t0, t1, down });
    }
    std::thread::sleep(Duration::from_millis(10));
    stop.store(true, Ordering::Relaxed);
    let log = worker
        .join()
        .map_err(|_| anyhow::anyhow!("worker thread panicked"))?;
    let load_after = super::loadavg();
    if log.len() >= cap {
        bail!("frame log full ({cap}): raise --syn-gap-ns");
    }

    let mut first = Vec::new(); // t_first - t0, ms, per flip (down, up)
    let mut publish = Vec::new(); // t1 - t0
    let mut pickup = Vec::new(); // t_first - t1
    let mut violations = 0usize;
    let mut frames_between = Vec::new();
    let mut round = Vec::new(); // duration of the round that sent the first new frame
    let mut usual = Vec::new(); // rounds before the flip, for comparison
    for (fi, f) in flips.iter().enumerate() {
        let end = flips.get(fi + 1).map(|n| n.t0);
        let start = log.partition_point(|s| s.at < f.t0);
        // The old order: successor of each real server, from the frames
        // just before the flip.
        let before = &log[start.saturating_sub(64)..start];
        let mut succ = [0u8; 256];
        for w in before.windows(2) {
            succ[usize::from(w[0].rip)] = w[1].rip;
        }
        let mut j = start.max(1);
        while j < log.len() && succ[usize::from(log[j - 1].rip)] == log[j].rip {
            j += 1;
        }
        if j >= log.len() || end.is_some_and(|e| log[j].at >= e) {
            bail!("flip {fi}: no frame scheduled differently before the next flip");
        }
        first.push((f.down, (log[j].at - f.t0).as_secs_f64() * 1e3));
        publish.push((f.down, (f.t1 - f.t0).as_secs_f64() * 1e3));
        pickup.push((
            f.down,
            log[j].at.saturating_duration_since(f.t1).as_secs_f64() * 1e3,
        ));
        frames_between.push(j - start);
        round.push((f.down, f64::from(log[j].round_ns) / 1e6));
        usual.extend(before.iter().map(|s| (f.down, f64::from(s.round_ns) / 1e6)));
        // From the first new frame to the next flip: the flipped server
        // gets none (down) or some (up).
        let stop_at = end.map_or(log.len(), |e| log.partition_point(|s| s.at < e));
        let to_flipped = log[j..stop_at].iter().filter(|s| s.rip == FLIPPED).count();
        if (f.down && to_flipped > 0) || (!f.down && to_flipped == 0) {
            violations += 1;
        }
    }
    let sel = |v: &[(bool, f64)], down: bool| -> Vec<f64> {
        v.iter()
            .filter(|x| x.0 == down)
            .map(|x| x.1 * 1e3)
            .collect()
    };
    let span = log.last().map_or(0.0, |l| (l.at - log[0].at).as_secs_f64());
    println!(
        "One worker thread busy-polling 2 in-memory ports (burst 32, idle_sleep 0), fed one new \
         client SYN every {} ns ({:.0} k SYN/s offered; {} frames sent in {span:.2} s, {:.0} k/s), \
         NAT rr over 3 real servers; {} flips each way of 10.1.0.{FLIPPED} through \
         `Pool::on_checker` → `Pool::view` → `Editor::set_health`, 5-15 ms apart; load average \
         {load_before} before, {load_after} after. Times in µs.",
        args.syn_gap_ns,
        1e6 / args.syn_gap_ns as f64,
        log.len(),
        log.len() as f64 / span.max(1e-9) / 1e3,
        args.transitions
    );
    println!();
    println!("| flip | call → first frame scheduled differently: median | worst | of which `set_health` (compile + publish): median | worst | publish → first frame: median | worst | the worker round that sent it: median | worst | a round before the flip: median |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, down) in [("server down", true), ("server up", false)] {
        let (fm, fw) = stats_ms(&sel(&first, down));
        let (pm, pw) = stats_ms(&sel(&publish, down));
        let (km, kw) = stats_ms(&sel(&pickup, down));
        let (rm, rw) = stats_ms(&sel(&round, down));
        let (um, _) = stats_ms(&sel(&usual, down));
        println!(
            "| {name} | {fm:.1} | {fw:.1} | {pm:.1} | {pw:.1} | {km:.1} | {kw:.1} | {rm:.1} | {rw:.1} | {um:.2} |"
        );
    }
    println!();
    let fb_max = frames_between.iter().max().copied().unwrap_or(0);
    println!(
        "Checks: after the first differently scheduled frame the downed server got no frame and \
         the returned one got frames until the next flip in {} of {} flips; at most {fb_max} \
         frame(s) left the worker between a call and its first new frame.",
        flips.len() - violations,
        flips.len()
    );
    if violations > 0 {
        bail!("{violations} flips were not followed by the new scheduling");
    }
    Ok(())
}
