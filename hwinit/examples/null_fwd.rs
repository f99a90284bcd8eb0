//! Binding overhead check: forwards frames from `net_null0` to `net_null1`
//! (rx_burst → tx_burst → free what was not sent) on one worker lcore for a
//! few seconds and prints Mpps.
//!
//! Compare with `dpdk-testpmd -l 0-1 --no-huge -m 512 --no-pci
//! --vdev=net_null0 --vdev=net_null1 -- --forward-mode=io -a --stats-period 1`
//! on the same machine; the design target is a ratio near 1.
//!
//! Run: `cargo run -p hwinit --release --example null_fwd [seconds]`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hwinit::dpdk::{Eal, PortSetup};
use hwinit::PortQueue;

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let args: Vec<String> = [
        "-l",
        "0-1",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-shconf",
        &format!("--file-prefix=null-fwd-{}", std::process::id()),
        "--vdev=net_null0,no-rx=0",
        "--vdev=net_null1,no-rx=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let eal = Eal::init(&args).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let pool = eal.create_mempool("fwd_pool", 8191, 0).expect("mempool");
    let cfg = PortSetup {
        rss: false,
        ..PortSetup::default()
    };
    let rx_port = eal.port_by_name("net_null0").expect("net_null0");
    let tx_port = eal.port_by_name("net_null1").expect("net_null1");
    eal.setup_port(rx_port, &cfg, &pool).expect("setup rx");
    eal.setup_port(tx_port, &cfg, &pool).expect("setup tx");
    let mut rxq = eal.queue(rx_port, 0, &pool);
    let mut txq = eal.queue(tx_port, 0, &pool);

    let stop = Arc::new(AtomicBool::new(false));
    let n_fwd_pkts = Arc::new(AtomicU64::new(0));
    let (stop_w, n_w) = (Arc::clone(&stop), Arc::clone(&n_fwd_pkts));
    eal.launch(1, move || {
        let mut burst = Vec::with_capacity(64);
        let mut n: u64 = 0;
        while !stop_w.load(Ordering::Relaxed) {
            for _ in 0..1024 {
                rxq.rx_burst(&mut burst, 32);
                n += txq.tx_burst(&mut burst) as u64;
                if !burst.is_empty() {
                    txq.free_bulk(&mut burst);
                }
            }
        }
        n_w.store(n, Ordering::Relaxed);
        0
    })
    .expect("launch");
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    eal.wait_lcore(1);
    let dt = t0.elapsed().as_secs_f64();
    let n = n_fwd_pkts.load(Ordering::Relaxed);
    println!(
        "forwarded {n} pkts in {dt:.2} s: {:.2} Mpps",
        n as f64 / dt / 1e6
    );

    // Shutdown order that lets rte_eal_cleanup run: workers done (their
    // queue handles dropped with the closure), ports stopped and closed,
    // pool handle dropped.
    for port in [rx_port, tx_port] {
        eal.stop_port(port);
        eal.close_port(port);
    }
    drop(pool);
    assert!(
        eal.cleanup(),
        "rte_eal_cleanup skipped: a handle is still alive"
    );
}
