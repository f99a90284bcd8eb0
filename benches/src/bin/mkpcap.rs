//! `fulcrum-mkpcap SCENARIO.ron OUT.pcap [--owners N]`: writes a benchmark
//! scenario as pcap for DPDK's `net_pcap` vdev
//! (`rx_pcap=OUT.pcap,infinite_rx=1`). Without `--owners` it is an alias of
//! `fulcrum-pktgen --scenario SCENARIO.ron --pcap OUT.pcap`, kept for
//! `benches/pipeline.sh`.
//!
//! Layer: benchmark tooling, never linked into the daemon. Writes the
//! scenario's frames (one pass unless its `duration` says `Packets(n)` or
//! `Passes(p)`; schema in `pktgen-scenarios/README.md`): Ethernet link type,
//! microsecond timestamps 1 µs apart at rate `Max`. Refuses scenarios that
//! do not validate, with `file:line:col: what was expected`.
//!
//! On success it prints `frames: N` (frames written) and `flows: F`, one per
//! line, for `benches/pipeline.sh` to parse.
//!
//! With `--owners N` (2..=64) it instead writes N files `OUT-w0.pcap` ..
//! `OUT-w{N-1}.pcap`: file k holds, in the same order, the frames whose flow
//! fulcrum's worker k of N owns (`dataplane::owner::owner` of the client
//! address and port, read from the frame; frames without TCP/UDP ports go to
//! file 0). Given to `net_pcap` as one `rx_pcap=` per RX queue, each worker
//! then reads only its own flows, as RSS would spread them on a NIC, and
//! nothing is redirected between workers. It also prints one
//! `part: PATH FRAMES` line per file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use dataplane::owner::owner;
use fulcrum_benches::pktgen::gen::Generator;
use fulcrum_benches::pktgen::scenario::Scenario;
use fulcrum_benches::pktgen::{pcap_frames, write_pcap};
use pcap_file::pcap::{PcapPacket, PcapWriter};

/// The path of part `k` of `out`: `OUT.pcap` becomes `OUT-wK.pcap`.
fn part_path(out: &Path, k: u16) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(Default::default, |s| s.to_string_lossy());
    out.with_file_name(format!("{stem}-w{k}.pcap"))
}

/// Client address (host order) and port of an untagged IPv4 TCP/UDP frame
/// as the generator writes them, or `None` for any other frame.
fn client_of(f: &[u8]) -> Option<(u32, u16)> {
    let ip = f.get(14..34)?;
    if f.get(12..14)? != [0x08, 0x00] || !matches!(ip[9], 6 | 17) {
        return None;
    }
    let l4 = 14 + usize::from(ip[0] & 0x0f) * 4;
    let p = f.get(l4..l4 + 2)?;
    Some((
        u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]),
        u16::from_be_bytes([p[0], p[1]]),
    ))
}

/// Writes `n_packets` frames of `s` (the pass looped as needed) split over
/// `n_owners` files by the worker that owns each frame's flow (see the
/// module docs); returns the path and frame count of every part, in worker
/// order.
///
/// # Errors
/// File creation or write failures, with the path in the message.
fn write_split(
    s: &Scenario,
    out: &Path,
    n_packets: u64,
    n_owners: u16,
) -> Result<Vec<(PathBuf, u64)>> {
    let mut parts = Vec::new();
    let mut writers = Vec::new();
    for k in 0..n_owners {
        let p = part_path(out, k);
        let file = File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        let w = PcapWriter::new(BufWriter::with_capacity(1 << 20, file))
            .with_context(|| format!("writing {}", p.display()))?;
        writers.push((w, 0u64));
        parts.push(p);
    }
    let mut g = Generator::new(s);
    let mut buf = Vec::with_capacity(2048);
    for k in 0..n_packets {
        if g.next_frame(&mut buf).is_none() {
            g = Generator::new(s);
            if g.next_frame(&mut buf).is_none() {
                bail!("the scenario generates no frames");
            }
        }
        let w = client_of(&buf).map_or(0, |(cip, cport)| usize::from(owner(cip, cport, n_owners)));
        let (writer, n) = &mut writers[w];
        writer
            .write_packet(&PcapPacket::new(
                Duration::from_micros(*n),
                buf.len() as u32,
                &buf,
            ))
            .with_context(|| format!("writing frame {k} to {}", parts[w].display()))?;
        *n += 1;
    }
    let mut done = Vec::new();
    for ((writer, n), p) in writers.into_iter().zip(parts) {
        writer
            .into_writer()
            .flush()
            .with_context(|| format!("flushing {}", p.display()))?;
        done.push((p, n));
    }
    Ok(done)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fulcrum-mkpcap SCENARIO.ron OUT.pcap [--owners N] \
                 (without --owners = fulcrum-pktgen --scenario S --pcap OUT)";
    let (scenario_path, out_path, owners) = match args.as_slice() {
        [s, o] => (s, o, 1u16),
        [s, o, flag, n] if flag == "--owners" => {
            let n: u16 = n
                .parse()
                .ok()
                .filter(|&n| (2..=64).contains(&n))
                .ok_or_else(|| anyhow!("--owners: expected a worker count in 2..=64, got {n:?}"))?;
            (s, o, n)
        }
        _ => bail!("{usage}"),
    };
    let s = Scenario::load(Path::new(scenario_path)).map_err(|e| anyhow!("{e}"))?;
    let n = pcap_frames(&s);
    if owners == 1 {
        let n = write_pcap(&s, Path::new(out_path), n).map_err(|e| anyhow!(e))?;
        println!("frames: {n}");
    } else {
        let parts = write_split(&s, Path::new(out_path), n, owners)?;
        println!("frames: {}", parts.iter().map(|(_, n)| n).sum::<u64>());
        for (p, n) in &parts {
            println!("part: {} {n}", p.display());
        }
    }
    println!("flows: {}", s.flows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    #[test]
    fn test_scenario_1m_file() {
        let text = include_str!("../../../pktgen-scenarios/nat-established-1m.ron");
        let s = Scenario::parse(text, "nat-established-1m.ron").unwrap();
        assert_eq!((s.flows, pcap_frames(&s)), (1_000_000, 2_000_000));
    }

    #[test]
    fn test_write_split_by_owner() {
        let text = include_str!("../../../pktgen-scenarios/nat-established-1k.ron");
        let mut s = Scenario::parse(text, "nat-established-1k.ron").unwrap();
        s.flows = 50;
        s.data_segments = 2;
        let n = pcap_frames(&s);
        let dir = std::env::temp_dir().join(format!("fulcrum-mkpcap-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let parts = write_split(&s, &dir.join("t.pcap"), n, 2).unwrap();
        assert_eq!(parts[0].0, dir.join("t-w0.pcap"));
        assert_eq!(parts[1].0, dir.join("t-w1.pcap"));
        // Every frame is in exactly one part, the part of its flow's owner,
        // and each part keeps the scenario's order.
        let mut expect: Vec<Vec<Vec<u8>>> = vec![Vec::new(), Vec::new()];
        let mut g = Generator::new(&s);
        let mut f = Vec::new();
        while g.next_frame(&mut f).is_some() {
            let cip = u32::from_be_bytes([f[26], f[27], f[28], f[29]]);
            let cport = u16::from_be_bytes([f[34], f[35]]);
            expect[usize::from(owner(cip, cport, 2))].push(f.clone());
        }
        assert_eq!(expect.iter().map(Vec::len).sum::<usize>() as u64, n);
        assert!(
            expect.iter().all(|e| !e.is_empty()),
            "50 flows land on both workers"
        );
        for (w, (path, cnt)) in parts.iter().enumerate() {
            let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
            let mut got = Vec::new();
            while let Some(p) = r.next_packet() {
                got.push(p.unwrap().data.to_vec());
            }
            assert_eq!(got.len() as u64, *cnt);
            assert_eq!(got, expect[w], "part {w}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
