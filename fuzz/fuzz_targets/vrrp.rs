//! Fuzz the VRRP advert codec (`dataplane::wire::vrrp`) with arbitrary
//! bytes.
//!
//! Each input is tried twice: as a whole IPv4 packet (`parse_ip`, what the
//! raw socket returns) and as a bare VRRP message (`parse`, with the
//! pseudo-header addresses taken from the input's first 8 bytes so both
//! v3 checksum paths are reached). Properties: no panic; whatever parses
//! builds back (`build` / `build_ip`) to bytes that parse to the same
//! advert, of exactly `message_len` bytes; and a rebuilt message equals
//! the input bytes except the ignored v3 reserved bits and the IPv4 header
//! fields `build_ip` chooses itself.
//!
//! Any panic or failed assertion is a defect in `dataplane::wire::vrrp`.
#![no_main]

use dataplane::wire::vrrp::{build, build_ip, message_len, parse, parse_ip, Version};
use libfuzzer_sys::fuzz_target;

/// Reads a big-endian u32 from `data` at `at`, or 0 past the end.
fn u32_at(data: &[u8], at: usize) -> u32 {
    match data.get(at..at + 4) {
        Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut out = [0u8; 128];
    if let Ok((src, dst, adv)) = parse_ip(data) {
        let n = build_ip(&adv, src, dst, &mut out).expect("a parsed advert builds");
        assert_eq!(n, 20 + message_len(adv.version, adv.count));
        assert_eq!(parse_ip(&out[..n]), Ok((src, dst, adv)));
    }
    let (src, dst) = (u32_at(data, 0), u32_at(data, 4));
    let msg = data.get(8..).unwrap_or(&[]);
    if let Ok(adv) = parse(msg, src, dst) {
        let n = build(&adv, src, dst, &mut out).expect("a parsed advert builds");
        assert_eq!(n, msg.len());
        assert_eq!(parse(&out[..n], src, dst), Ok(adv));
        let mut expect = msg.to_vec();
        if adv.version == Version::V3 {
            // Reserved bits are ignored on receipt and sent as zero, which
            // changes the checksum too.
            expect[4] &= 0x0f;
            expect[6..8].copy_from_slice(&out[6..8]);
        }
        assert_eq!(&out[..n], &expect[..]);
    }
});
