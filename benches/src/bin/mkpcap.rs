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
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fulcrum_benches::Scenario;
use pcap_file::pcap::{PcapPacket, PcapWriter};

/// Writes one pass of `scenario` to `out` as a pcap; returns the number of
/// frames written.
///
/// # Errors
/// File creation or write failures, with the path in the message.
fn write_pcap(scenario: &Scenario, out: &Path) -> Result<u64> {
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = PcapWriter::new(BufWriter::new(file))
        .with_context(|| format!("writing {}", out.display()))?;
    let n = scenario.n_frames();
    for k in 0..n {
        let frame = scenario.frame(k);
        let ts = Duration::from_micros(k);
        w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
            .with_context(|| format!("writing frame {k} to {}", out.display()))?;
    }
    let mut inner = w.into_writer();
    inner
        .flush()
        .with_context(|| format!("flushing {}", out.display()))?;
    Ok(n)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [scenario_path, out_path] = args.as_slice() else {
        bail!("usage: fulcrum-mkpcap SCENARIO.ron OUT.pcap");
    };
    let text = std::fs::read_to_string(scenario_path)
        .with_context(|| format!("reading {scenario_path}"))?;
    let scenario = Scenario::from_ron(&text).with_context(|| format!("in {scenario_path}"))?;
    let n = write_pcap(&scenario, Path::new(out_path))?;
    println!("frames: {n}");
    println!("flows: {}", scenario.flows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;
    use pcap_file::DataLink;

    #[test]
    fn test_write_pcap_roundtrip() {
        let text = include_str!("../../../pktgen-scenarios/nat-established-1k.ron");
        let mut s = Scenario::from_ron(text).unwrap();
        s.flows = 5;
        s.acks_per_flow = 3;
        let dir = std::env::temp_dir().join(format!("fulcrum-mkpcap-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pcap");
        assert_eq!(write_pcap(&s, &path).unwrap(), 20);
        let mut r = PcapReader::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(r.header().datalink, DataLink::ETHERNET);
        let mut k = 0u64;
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            assert_eq!(&p.data[..], &s.frame(k)[..], "frame {k}");
            assert_eq!(p.orig_len, 60);
            assert_eq!(p.timestamp, Duration::from_micros(k));
            k += 1;
        }
        assert_eq!(k, 20);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
