//! `fulcrum-pktgen`'s library: scenarios, frame generation, the TX/RX
//! loop and its report (the binary is `src/bin/pktgen.rs`).
//!
//! Layer: benchmark tooling, never linked into the daemon. Modules:
//! [`scenario`] (the RON schema, positioned errors), [`wire`] (header
//! emitters), [`gen`] (the frame sequence and the pre-built [`gen::Pass`]),
//! [`stamp`] (the 16-byte TX stamp), [`rate`] (token bucket), [`engine`]
//! (the loop, generic over `hwinit::PortQueue`), [`report`] (table and
//! JSON), and [`write_pcap`] for `--pcap` / `fulcrum-mkpcap`.

pub mod engine;
pub mod gen;
pub mod rate;
pub mod report;
pub mod scenario;
pub mod stamp;
pub mod wire;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use pcap_file::pcap::{PcapPacket, PcapWriter};

use gen::Generator;
use scenario::{Rate, Scenario};

/// Writes `n_packets` frames of `s` to a pcap file at `out` (Ethernet link
/// type, microsecond timestamps): the pass in order, looped as often as
/// needed. Timestamps start at 0 and are spaced by the scenario's rate
/// (1 µs apart for `Max`, the spacing `fulcrum-mkpcap` always used; DPDK's
/// `net_pcap` with `infinite_rx=1` ignores them). Returns the frames
/// written.
///
/// # Errors
/// File creation or write failures, with the path in the message.
///
/// # Panics
/// If `s` does not validate.
pub fn write_pcap(s: &Scenario, out: &Path, n_packets: u64) -> Result<u64, String> {
    let ctx = |e: &dyn std::fmt::Display| format!("writing {}: {e}", out.display());
    let file = File::create(out).map_err(|e| ctx(&e))?;
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, file)).map_err(|e| ctx(&e))?;
    let gap_ns: u64 = match s.rate {
        Rate::Max => 1_000,
        Rate::Pps(p) => (1_000_000_000 / p).max(1),
    };
    let mut g = Generator::new(s);
    let mut buf = Vec::with_capacity(2048);
    for k in 0..n_packets {
        if g.next_frame(&mut buf).is_none() {
            g = Generator::new(s);
            g.next_frame(&mut buf).expect("a valid scenario has frames");
        }
        let ts = std::time::Duration::from_nanos(k * gap_ns);
        w.write_packet(&PcapPacket::new(ts, buf.len() as u32, &buf))
            .map_err(|e| ctx(&e))?;
    }
    w.into_writer().flush().map_err(|e| ctx(&e))?;
    Ok(n_packets)
}

/// Frames a pcap of `s` holds: `Packets(n)` → n, `Passes(p)` → p passes,
/// `Seconds(_)` → one pass (a file has no duration).
pub fn pcap_frames(s: &Scenario) -> u64 {
    match s.duration {
        scenario::Duration::Packets(n) => n,
        scenario::Duration::Passes(p) => u64::from(p) * s.frames_per_pass(),
        scenario::Duration::Seconds(_) => s.frames_per_pass(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;
    use pcap_file::DataLink;

    #[test]
    fn test_write_pcap_loops_passes() {
        let s = Scenario::parse("(flows: 5, data_segments: 2, rate: Pps(1000))", "t.ron").unwrap();
        assert_eq!(s.frames_per_pass(), 20);
        let dir = std::env::temp_dir().join(format!("fulcrum-pktgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pcap");
        assert_eq!(write_pcap(&s, &path, 50).unwrap(), 50);
        let p = gen::Pass::build(&s).unwrap();
        let mut r = PcapReader::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(r.header().datalink, DataLink::ETHERNET);
        let mut k = 0usize;
        while let Some(pkt) = r.next_packet() {
            let pkt = pkt.unwrap();
            assert_eq!(&pkt.data[..], p.frame(k % 20).0, "frame {k}");
            assert_eq!(pkt.timestamp, std::time::Duration::from_millis(k as u64));
            k += 1;
        }
        assert_eq!(k, 50);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
