//! `fulcrum-pktgen`: a traffic generator driven by `pktgen-scenarios/*.ron`.
//!
//! Two modes:
//! - `--scenario S --pcap OUT`: writes the scenario's frames to a pcap
//!   (one pass, or the scenario's `Packets(n)` / `Passes(p)`, or
//!   `--packets N`), prints `frames: N` and `flows: F`. `fulcrum-mkpcap S
//!   OUT` is the same thing.
//! - `--scenario S --eal "ARGS" --tx-port DEV [--rx-port DEV]`: DPDK mode.
//!   Builds one pass in memory, then one loop on the main lcore sends it in
//!   bursts (looping passes) at the scenario's rate until its duration or
//!   packet bound, stamping every frame with room for it (16 bytes at the
//!   start of the L4 payload: magic, sequence number, TSC ticks), and
//!   receives on the RX port (the TX port's own RX queue when both are the
//!   same device, e.g. `net_ring` loopback). Prints sent/received Mpps,
//!   loss and round-trip latency percentiles, as a table or `--json`.
//!
//! Layer: benchmark tooling, never linked into the daemon; every `unsafe`
//! lives in `hwinit`. Exit status 0 on success, 1 with one line on stderr
//! naming the problem otherwise.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use fulcrum_benches::pktgen::engine::{self, latency_histogram, Clock, RunConfig, Rx, Tsc};
use fulcrum_benches::pktgen::gen::Pass;
use fulcrum_benches::pktgen::report::Report;
use fulcrum_benches::pktgen::scenario::{Duration, Rate, Scenario};
use fulcrum_benches::pktgen::{pcap_frames, write_pcap};
use hwinit::dpdk::{Eal, PortSetup};

/// fulcrum's traffic generator: scenario → pcap file, or → DPDK port with
/// RX counting and a latency histogram.
#[derive(Debug, Parser)]
#[command(name = "fulcrum-pktgen", version)]
struct Args {
    /// Scenario file (RON, schema in pktgen-scenarios/README.md).
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// Write the frames to this pcap file instead of a DPDK port.
    #[arg(long, value_name = "OUT", conflicts_with_all = ["eal", "tx_port", "rx_port"])]
    pcap: Option<PathBuf>,
    /// DPDK EAL arguments, one string split on whitespace (give each DPDK
    /// process its own --file-prefix).
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    eal: Option<String>,
    /// DPDK device to transmit on (a vdev name like net_ring0 or a PCI address).
    #[arg(long, value_name = "DEV", requires = "eal")]
    tx_port: Option<String>,
    /// DPDK device to receive on (may equal --tx-port); none = TX only.
    #[arg(long, value_name = "DEV", requires = "eal")]
    rx_port: Option<String>,
    /// Override the scenario's duration: send exactly N packets.
    #[arg(long, value_name = "N", conflicts_with = "seconds")]
    packets: Option<u64>,
    /// Override the scenario's duration: send for S seconds (DPDK mode).
    #[arg(long, value_name = "S")]
    seconds: Option<u32>,
    /// Override the scenario's rate: packets per second, or "max".
    #[arg(long, value_name = "PPS|max")]
    rate: Option<String>,
    /// Frames per TX burst, 1..=64.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=64))]
    burst: u16,
    /// After TX ends, keep receiving up to this many ms for frames in flight.
    #[arg(long, default_value_t = 200)]
    drain_ms: u64,
    /// Mbufs in the pool (DPDK mode).
    #[arg(long, default_value_t = 16_383)]
    mbufs: u32,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("fulcrum-pktgen: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    let mut s = Scenario::load(&args.scenario).map_err(|e| anyhow!("{e}"))?;
    if let Some(n) = args.packets {
        if n == 0 {
            bail!("--packets must be at least 1");
        }
        s.duration = Duration::Packets(n);
    }
    if let Some(sec) = args.seconds {
        if sec == 0 {
            bail!("--seconds must be at least 1");
        }
        s.duration = Duration::Seconds(sec);
    }
    if let Some(r) = &args.rate {
        s.rate = match r.as_str() {
            "max" => Rate::Max,
            n => Rate::Pps(n.parse().ok().filter(|&p: &u64| p > 0).ok_or_else(|| {
                anyhow!("--rate {n:?}: expected packets per second (>= 1) or max")
            })?),
        };
    }
    if let Some(out) = &args.pcap {
        let n = write_pcap(&s, out, pcap_frames(&s)).map_err(|e| anyhow!(e))?;
        println!("frames: {n}");
        println!("flows: {}", s.flows);
        return Ok(());
    }
    let (Some(eal), Some(tx_dev)) = (&args.eal, &args.tx_port) else {
        bail!("give --pcap OUT, or DPDK mode: --eal \"ARGS\" --tx-port DEV [--rx-port DEV]");
    };
    dpdk_mode(&args, &s, eal, tx_dev)
}

fn dpdk_mode(args: &Args, s: &Scenario, eal_args: &str, tx_dev: &str) -> Result<()> {
    let pass = Pass::build(s).map_err(|e| anyhow!("{}: {e}", args.scenario.display()))?;
    let eal_args: Vec<String> = eal_args.split_whitespace().map(String::from).collect();
    let eal = Eal::init(&eal_args).context("EAL init (check --eal)")?;
    let pool = eal
        .create_mempool("pktgen_pool", args.mbufs, -1)
        .context("mbuf pool (lower --mbufs or give EAL more memory with -m)")?;
    let setup = PortSetup {
        rss: false,
        promiscuous: true,
        ..PortSetup::default()
    };
    let tx_id = eal.port_by_name(tx_dev).context("--tx-port")?;
    eal.setup_port(tx_id, &setup, &pool)
        .context("--tx-port setup")?;
    let rx_id = match &args.rx_port {
        Some(d) if d != tx_dev => {
            let id = eal.port_by_name(d).context("--rx-port")?;
            eal.setup_port(id, &setup, &pool)
                .context("--rx-port setup")?;
            Some(id)
        }
        Some(_) => Some(tx_id),
        None => None,
    };
    let hz = Tsc.hz();
    let cfg = RunConfig {
        rate_pps: match s.rate {
            Rate::Max => None,
            Rate::Pps(p) => Some(p),
        },
        max_packets: match s.duration {
            Duration::Packets(n) => Some(n),
            Duration::Passes(p) => Some(u64::from(p) * pass.len() as u64),
            Duration::Seconds(_) => None,
        },
        max_ticks: match s.duration {
            Duration::Seconds(sec) => Some(u64::from(sec) * hz),
            Duration::Packets(_) | Duration::Passes(_) => None,
        },
        drain_ticks: args.drain_ms * hz / 1000,
        burst: usize::from(args.burst),
    };
    let mut hist = latency_histogram();
    let counters = {
        let mut txq = eal.queue(tx_id, 0, &pool);
        match rx_id {
            None => engine::run(&pass, &mut txq, Rx::None, &cfg, &Tsc, &mut hist),
            Some(id) if id == tx_id => {
                engine::run(&pass, &mut txq, Rx::SameQueue, &cfg, &Tsc, &mut hist)
            }
            Some(id) => {
                let mut rxq = eal.queue(id, 0, &pool);
                engine::run(&pass, &mut txq, Rx::Other(&mut rxq), &cfg, &Tsc, &mut hist)
            }
        }
    };
    let report = Report::new(
        &display(&args.scenario),
        &counters,
        hz,
        rx_id.is_some(),
        &hist,
    );
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    let mut ports = vec![tx_id];
    ports.extend(rx_id.filter(|&id| id != tx_id));
    for p in ports {
        eal.stop_port(p);
        eal.close_port(p);
    }
    drop(pool);
    eal.cleanup();
    Ok(())
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
