//! `fulcrum-mkpcap SCENARIO.ron OUT.pcap`: writes one pass of a benchmark
//! scenario (`pktgen-scenarios/*.ron`, schema in [`fulcrum_benches::Scenario`])
//! as a pcap file for DPDK's `net_pcap` vdev (`rx_pcap=OUT.pcap,infinite_rx=1`).
//!
//! Layer: benchmark tooling, never linked into the daemon. It guarantees the
//! frame order of [`fulcrum_benches::Scenario::frame`] (every flow's SYN, then
//! `acks_per_flow` rounds of ACKs) and Ethernet link type, microsecond
//! timestamps 1 µs apart (the timestamps do not matter: `infinite_rx` replays
//! as fast as the reader polls). It refuses scenarios that do not validate.
//!
//! On success it prints `frames: N` (frames in the file) and
//! `flows: F`, one per line, for `benches/pipeline.sh` to parse.

use std::fs::File;
use std::io::BufWriter;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fulcrum_benches::Scenario;
use pcap_file::pcap::{PcapPacket, PcapWriter};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [scenario_path, out_path] = args.as_slice() else {
        bail!("usage: fulcrum-mkpcap SCENARIO.ron OUT.pcap");
    };
    let text = std::fs::read_to_string(scenario_path).with_context(|| format!("reading {scenario_path}"))?;
    let scenario = Scenario::from_ron(&text).with_context(|| format!("in {scenario_path}"))?;
    let file = File::create(out_path).with_context(|| format!("creating {out_path}"))?;
    let mut w = PcapWriter::new(BufWriter::new(file)).with_context(|| format!("writing {out_path}"))?;
    let n = scenario.n_frames();
    for k in 0..n {
        let frame = scenario.frame(k);
        let ts = Duration::from_micros(k);
        w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
            .with_context(|| format!("writing frame {k} to {out_path}"))?;
    }
    let mut inner = w.into_writer();
    std::io::Write::flush(&mut inner).with_context(|| format!("flushing {out_path}"))?;
    println!("frames: {n}");
    println!("flows: {}", scenario.flows);
    Ok(())
}
