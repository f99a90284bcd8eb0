//! The TX stamp `fulcrum-pktgen` writes into each data-bearing frame it
//! sends, and reads back from each frame it receives.
//!
//! Layer: benchmark tooling, per-packet path: no allocation, no panic on
//! any received bytes. Shape (16 bytes at the start of the L4 payload, all
//! big-endian): magic `FPG1` (4 bytes), sequence number (u32, the TX
//! order, wrapping), TX time (u64, TSC ticks of the sending process,
//! `hwinit::tsc_now`; converted to ns with `hwinit::tsc_hz` when reported).
//! Writing the stamp updates the L4 checksum incrementally (RFC 1624
//! eqn. 3), so stamped frames stay valid. Only frames whose payload has
//! room for 16 bytes carry a stamp (not 64-byte TCP frames, whose payload
//! is empty).
//!
//! Refuses (on RX): frames that are not IPv4 (one 802.1Q tag is skipped),
//! fragments, and payloads without the magic.

use dataplane::wire::checksum::update_u16;

use super::wire::{ETH_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// Stamp length in bytes.
pub const STAMP_LEN: usize = 16;
/// The stamp's first four bytes.
pub const STAMP_MAGIC: [u8; 4] = *b"FPG1";

/// Where a frame's stamp goes and which checksum covers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StampAt {
    /// Offset of the stamp (the L4 payload) in the frame, in bytes.
    pub off: u16,
    /// Offset of the L4 checksum field (2 bytes, big-endian) in the frame.
    pub csum_off: u16,
    /// The checksum is UDP's, whose computed 0 is sent as 0xffff (RFC 768).
    pub udp: bool,
}

/// Writes the stamp (`seq`, `tsc`) at `at` and updates the L4 checksum.
///
/// The 16 bytes at `at.off` must be zero (as generated), so the checksum
/// update is exact. Does nothing if the frame is too short for `at`.
#[inline]
pub fn write_stamp(frame: &mut [u8], at: StampAt, seq: u32, tsc: u64) {
    let off = usize::from(at.off);
    let c_off = usize::from(at.csum_off);
    if frame.len() < off + STAMP_LEN || frame.len() < c_off + 2 {
        return;
    }
    let mut st = [0u8; STAMP_LEN];
    st[0..4].copy_from_slice(&STAMP_MAGIC);
    st[4..8].copy_from_slice(&seq.to_be_bytes());
    st[8..16].copy_from_slice(&tsc.to_be_bytes());
    let mut c = u16::from_be_bytes([frame[c_off], frame[c_off + 1]]);
    for w in st.chunks_exact(2) {
        c = update_u16(c, 0, u16::from_be_bytes([w[0], w[1]]));
    }
    if at.udp && c == 0 {
        c = 0xffff;
    }
    frame[off..off + STAMP_LEN].copy_from_slice(&st);
    frame[c_off..c_off + 2].copy_from_slice(&c.to_be_bytes());
}

/// Reads the stamp of a received frame: `(seq, tsc)`, or `None` if the
/// frame carries none (see the module doc for what is refused).
#[inline]
pub fn read_stamp(frame: &[u8]) -> Option<(u32, u64)> {
    let mut l3 = ETH_LEN;
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        l3 += 4;
    }
    if ethertype != 0x0800 {
        return None;
    }
    let vihl = *frame.get(l3)?;
    if vihl >> 4 != 4 {
        return None;
    }
    let frag = u16::from_be_bytes([*frame.get(l3 + 6)?, *frame.get(l3 + 7)?]);
    if frag & 0x3fff != 0 {
        return None;
    }
    let l4 = l3 + usize::from(vihl & 0x0f) * 4;
    let payload = match *frame.get(l3 + 9)? {
        PROTO_TCP => l4 + usize::from(*frame.get(l4 + 12)? >> 4) * 4,
        PROTO_UDP | PROTO_ICMP => l4 + 8,
        _ => return None,
    };
    let st = frame.get(payload..payload + STAMP_LEN)?;
    if st[0..4] != STAMP_MAGIC {
        return None;
    }
    let seq = u32::from_be_bytes([st[4], st[5], st[6], st[7]]);
    let mut t = [0u8; 8];
    t.copy_from_slice(&st[8..16]);
    Some((seq, u64::from_be_bytes(t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::wire::{tcp_frame, udp_frame, Addrs, TcpSeg, ACK, TEST_ADDRS};
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const A: Addrs = TEST_ADDRS;

    fn l4_ok(f: &[u8]) -> bool {
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        let h = ip.header().to_header();
        match &p.transport {
            Some(TransportSlice::Tcp(t)) => {
                t.checksum() == t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap()
            }
            Some(TransportSlice::Udp(u)) => {
                u.checksum() == u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap()
            }
            _ => panic!("not TCP/UDP"),
        }
    }

    #[test]
    fn test_stamp_roundtrip_keeps_checksums() {
        let mut v = Vec::new();
        let t = TcpSeg {
            sport: 1024,
            dport: 80,
            seq: 1,
            ack: 1,
            flags: ACK,
        };
        tcp_frame(&mut v, &A, &t, 40);
        let at = StampAt {
            off: 54,
            csum_off: 50,
            udp: false,
        };
        assert_eq!(read_stamp(&v), None, "no magic before stamping");
        write_stamp(&mut v, at, 0xdead_beef, 0x0123_4567_89ab_cdef);
        assert!(l4_ok(&v), "TCP checksum after the incremental update");
        assert_eq!(read_stamp(&v), Some((0xdead_beef, 0x0123_4567_89ab_cdef)));
        for seq in [0u32, 1, 0xffff, u32::MAX] {
            for tsc in [0u64, 0xffff_ffff_ffff_ffff, 12345] {
                udp_frame(&mut v, &A, 7, 9, 20);
                let at = StampAt {
                    off: 42,
                    csum_off: 40,
                    udp: true,
                };
                write_stamp(&mut v, at, seq, tsc);
                assert!(l4_ok(&v), "UDP checksum seq {seq} tsc {tsc}");
                assert_eq!(read_stamp(&v), Some((seq, tsc)));
            }
        }
    }

    #[test]
    fn test_read_stamp_refuses() {
        assert_eq!(read_stamp(&[]), None);
        assert_eq!(read_stamp(&[0u8; 13]), None);
        let mut v = Vec::new();
        udp_frame(&mut v, &A, 7, 9, 20);
        let at = StampAt {
            off: 42,
            csum_off: 40,
            udp: true,
        };
        write_stamp(&mut v, at, 5, 6);
        for cut in 0..v.len() {
            // Any truncation either still finds the full stamp or none.
            let r = read_stamp(&v[..cut]);
            assert!(r.is_none() || cut >= 58, "cut {cut}");
        }
        let mut frag = v.clone();
        frag[20] = 0x20; // MF
        assert_eq!(read_stamp(&frag), None);
        let mut arp = v.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(read_stamp(&arp), None);
    }
}
