//! `fulcrum-mkpcap SCENARIO.ron OUT.pcap`: an alias of `fulcrum-pktgen
//! --scenario SCENARIO.ron --pcap OUT.pcap`, kept for `benches/pipeline.sh`.
//!
//! Layer: benchmark tooling, never linked into the daemon. Writes the
//! scenario's frames (one pass unless its `duration` says `Packets(n)` or
//! `Passes(p)`; schema in `pktgen-scenarios/README.md`) as a pcap for DPDK's
//! `net_pcap` vdev (`rx_pcap=OUT.pcap,infinite_rx=1`): Ethernet link type,
//! microsecond timestamps 1 µs apart at rate `Max`. Refuses scenarios that
//! do not validate, with `file:line:col: what was expected`.
//!
//! On success it prints `frames: N` (frames in the file) and `flows: F`,
//! one per line, for `benches/pipeline.sh` to parse.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use fulcrum_benches::pktgen::scenario::Scenario;
use fulcrum_benches::pktgen::{pcap_frames, write_pcap};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [scenario_path, out_path] = args.as_slice() else {
        bail!("usage: fulcrum-mkpcap SCENARIO.ron OUT.pcap (= fulcrum-pktgen --scenario S --pcap OUT)");
    };
    let s = Scenario::load(Path::new(scenario_path)).map_err(|e| anyhow!("{e}"))?;
    let n = write_pcap(&s, Path::new(out_path), pcap_frames(&s)).map_err(|e| anyhow!(e))?;
    println!("frames: {n}");
    println!("flows: {}", s.flows);
    Ok(())
}
