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
//!
//! `fulcrum-mkpcap SCENARIO.ron OUT.pcap --owners N` (N >= 2) instead writes
//! N files `OUT-w0.pcap` .. `OUT-w{N-1}.pcap`: file k holds, in the same
//! order, the frames of the flows that fulcrum's worker k of N owns
//! (`dataplane::owner::owner` of the client address and port). Given to
//! `net_pcap` as one `rx_pcap=` per RX queue, each worker then reads only its
//! own flows, as RSS would spread them on a NIC, and nothing is redirected
//! between workers. It prints `frames:` and `flows:` (totals) and one
//! `part: PATH FRAMES` line per file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use dataplane::owner::owner;
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

/// The path of part `k` of `out`: `OUT.pcap` becomes `OUT-wK.pcap`.
fn part_path(out: &Path, k: u16) -> std::path::PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(Default::default, |s| s.to_string_lossy());
    out.with_file_name(format!("{stem}-w{k}.pcap"))
}

/// Writes one pass of `scenario` split over `n_owners` files by the worker
/// that owns each frame's flow (see the module docs); returns the path and
/// frame count of every part, in worker order.
///
/// # Errors
/// File creation or write failures, with the path in the message.
fn write_split(scenario: &Scenario, out: &Path, n_owners: u16) -> Result<Vec<(PathBuf, u64)>> {
    let mut parts = Vec::new();
    let mut writers = Vec::new();
    for k in 0..n_owners {
        let p = part_path(out, k);
        let file = File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        let w = PcapWriter::new(BufWriter::new(file))
            .with_context(|| format!("writing {}", p.display()))?;
        writers.push((w, 0u64));
        parts.push(p);
    }
    let flows = u64::from(scenario.flows);
    for k in 0..scenario.n_frames() {
        // Scenario::frame's order: the SYNs of flows 0.., then ACK rounds.
        let flow = if k < flows { k } else { (k - flows) % flows } as u32;
        let (cip, cport) = scenario.flow_client(flow);
        let w = usize::from(owner(u32::from_be_bytes(cip), cport, n_owners));
        let (writer, n) = &mut writers[w];
        let frame = scenario.frame(k);
        let ts = Duration::from_micros(*n);
        writer
            .write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
            .with_context(|| format!("writing frame {k} to {}", parts[w].display()))?;
        *n += 1;
    }
    let mut out = Vec::new();
    for ((writer, n), p) in writers.into_iter().zip(parts) {
        writer
            .into_writer()
            .flush()
            .with_context(|| format!("flushing {}", p.display()))?;
        out.push((p, n));
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fulcrum-mkpcap SCENARIO.ron OUT.pcap [--owners N]";
    let (scenario_path, out_path, owners) = match args.as_slice() {
        [s, o] => (s, o, 1u16),
        [s, o, flag, n] if flag == "--owners" => {
            let n: u16 = n
                .parse()
                .ok()
                .filter(|&n| (2..=64).contains(&n))
                .with_context(|| format!("--owners {n}: expected a worker count 2..=64"))?;
            (s, o, n)
        }
        _ => bail!("{usage}"),
    };
    let text = std::fs::read_to_string(scenario_path)
        .with_context(|| format!("reading {scenario_path}"))?;
    let scenario = Scenario::from_ron(&text).with_context(|| format!("in {scenario_path}"))?;
    if owners == 1 {
        let n = write_pcap(&scenario, Path::new(out_path))?;
        println!("frames: {n}");
    } else {
        let parts = write_split(&scenario, Path::new(out_path), owners)?;
        println!("frames: {}", parts.iter().map(|p| p.1).sum::<u64>());
        for (p, n) in &parts {
            println!("part: {} {n}", p.display());
        }
    }
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

    #[test]
    fn test_scenario_1m_file() {
        let s = Scenario::from_ron(include_str!(
            "../../../pktgen-scenarios/nat-established-1m.ron"
        ))
        .unwrap();
        assert_eq!((s.flows, s.n_frames()), (1_000_000, 2_000_000));
        // The last flow still fits the client range (17 hosts x 60000 ports).
        assert_eq!(s.flow_client(999_999), ([172, 16, 0, 17], 1024 + 39_999));
    }

    #[test]
    fn test_write_split_by_owner() {
        let text = include_str!("../../../pktgen-scenarios/nat-established-1k.ron");
        let mut s = Scenario::from_ron(text).unwrap();
        s.flows = 50;
        s.acks_per_flow = 2;
        let dir = std::env::temp_dir().join(format!("fulcrum-mkpcap-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let parts = write_split(&s, &dir.join("t.pcap"), 2).unwrap();
        assert_eq!(parts[0].0, dir.join("t-w0.pcap"));
        assert_eq!(parts[1].0, dir.join("t-w1.pcap"));
        // Every frame is in exactly one part, the part of its flow's owner,
        // and each part keeps the scenario's order.
        let mut expect: Vec<Vec<Vec<u8>>> = vec![Vec::new(), Vec::new()];
        for k in 0..s.n_frames() {
            let f = s.frame(k);
            let cip = u32::from_be_bytes([f[26], f[27], f[28], f[29]]);
            let cport = u16::from_be_bytes([f[34], f[35]]);
            expect[usize::from(owner(cip, cport, 2))].push(f);
        }
        assert!(
            expect.iter().all(|e| !e.is_empty()),
            "50 flows land on both workers"
        );
        for (w, (path, n)) in parts.iter().enumerate() {
            let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
            let mut got = Vec::new();
            while let Some(p) = r.next_packet() {
                got.push(p.unwrap().data.to_vec());
            }
            assert_eq!(got.len() as u64, *n);
            assert_eq!(got, expect[w], "part {w}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
